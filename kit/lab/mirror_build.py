"""Build a mirrored account (:class:`kit.mirror.AccountCopy`) in the lab, through AWS APIs only, the way
:mod:`kit.lab.provision` builds the seed's stack, and say in a :class:`kit.mirror.Manifest` what was copied
and what had to change.

    rewrite(value, replacements)        every string in a JSON-like value with each old part replaced (pure)
    build(aws, copy, ...)               the tables, roles, functions, API and stages; the lab's resources

What changes, always named in the manifest: the account id in every ARN (the lab's account is
:data:`kit.lab.provision.ACCOUNT_ID`), the API's id (the lab's API gets its own), an HTTP integration's URL
(the lab calls its stand-in of the app's Next.js route, never the account's backend), a provisioned table's
billing (the lab's tables are on demand). Everything else is copied as it was read.

This module must not start servers, read the account, or write anything but the lab's own AWS APIs and the
code folder it is given.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from kit.dynamo import schema
from kit.errors import error_code
from kit.lab import function_source
from kit.lab.provision import ACCOUNT_ID, ClientFactory, LabResources
from kit.mirror import AccountCopy, FunctionCopy, Manifest, RoleCopy, TableCopy, environment_record

MIRRORED_POLICY_PATH = "/mirrored/"
CONNECT = "$connect"
_INTEGRATION_FIELDS = (
    "IntegrationType",
    "IntegrationMethod",
    "RequestParameters",
    "RequestTemplates",
    "TemplateSelectionExpression",
    "PassthroughBehavior",
    "ContentHandlingStrategy",
    "TimeoutInMillis",
    "Description",
    "PayloadFormatVersion",
)
_ROUTE_FIELDS = (
    "ModelSelectionExpression",
    "OperationName",
    "RequestModels",
    "RouteResponseSelectionExpression",
)
_ROUTE_RESPONSE_FIELDS = (
    "RouteResponseKey",
    "ModelSelectionExpression",
    "ResponseModels",
    "ResponseParameters",
)
_STAGE_FIELDS = ("DefaultRouteSettings", "RouteSettings", "StageVariables", "Description", "AutoDeploy")


def rewrite(value: Any, replacements: Mapping[str, str]) -> Any:
    """``value`` (a JSON-like structure) with each key of ``replacements`` replaced in every string (pure)."""
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, Mapping):
        return {key: rewrite(item, replacements) for key, item in value.items()}
    if isinstance(value, list):
        return [rewrite(item, replacements) for item in value]
    return value


def shown_uri(uri: str) -> str:
    """A URL as the manifest may show it: no user info, query or fragment, which can carry keys (pure)."""
    parts = urlsplit(uri)
    if not parts.scheme or not parts.hostname:
        return "(not a URL)"
    port = f":{parts.port}" if parts.port else ""
    hidden = "?…" if parts.query or parts.fragment else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}{hidden}"


def _present(source: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: source[name] for name in names if source.get(name) not in (None, {}, [], "")}


def build(
    aws: ClientFactory,
    copy: AccountCopy,
    *,
    code_dir: Path,
    http_backend_url: str,
    aws_in_region: Callable[[str], ClientFactory],
) -> tuple[LabResources, Manifest]:
    """Create the copy in the lab; the resources the lab serves, and the manifest of what was done."""
    manifest = Manifest(
        source={
            "region": copy.region,
            "account": copy.account_id,
            "api": f"{copy.api.api.get('Name', '')} ({copy.api.api_id})",
            "stage": copy.stage or "",
            "read_from": copy.read_from,
        },
        not_reproduced=[gap.as_dict() for gap in copy.gaps],
    )
    manifest.change(
        "log history", "the account's log events", "empty log groups: the mirror's runs fill them"
    )
    replacements: dict[str, str] = {}
    if copy.account_id != ACCOUNT_ID:
        replacements[f":{copy.account_id}:"] = f":{ACCOUNT_ID}:"
        manifest.change("account id in every ARN", copy.account_id, ACCOUNT_ID)

    def in_region(region: str) -> ClientFactory:
        return aws if region == copy.region else aws_in_region(region)

    for table in copy.tables:
        _create_table(in_region(table.region).client("dynamodb"), table, manifest)
    if not any(t.name == copy.table and t.region == copy.region for t in copy.tables):
        manifest.copy("table", copy.table, f"absent in {copy.region} in the account, so absent in the mirror")

    role_arns = {
        role.arn: _create_role(aws.client("iam"), role, replacements, manifest) for role in copy.roles
    }

    lambda_client = aws.client("lambda")
    created: dict[str, Mapping[str, Any]] = {}
    for function in copy.functions:
        created[function.name] = _create_function(
            lambda_client, aws.client("logs"), function, role_arns, manifest
        )

    apigw = aws.client("apigatewayv2")
    api_id = _create_api(apigw, copy, replacements, manifest)
    integration_ids = _create_integrations(
        apigw,
        api_id,
        copy=copy,
        replacements=replacements,
        http_backend_url=http_backend_url,
        manifest=manifest,
    )
    authorizer_ids = _create_authorizers(apigw, api_id, copy, replacements, manifest)
    routes = _create_routes(
        apigw, api_id, copy, integration_ids, manifest=manifest, authorizer_ids=authorizer_ids
    )
    groups = _create_stages(
        apigw, aws.client("logs"), api_id=api_id, copy=copy, replacements=replacements, manifest=manifest
    )

    # Resource policies name the API's ARN: only now is the new id known.
    for function in copy.functions:
        _add_permissions(lambda_client, function, replacements, manifest)

    connect = routes.get(CONNECT) or next(iter(routes.values()), "")
    chosen = copy.function(connect) or (copy.functions[0] if copy.functions else None)
    sha = ""
    code_dir.mkdir(parents=True, exist_ok=True)
    if chosen is not None:
        function_source.extract_package(chosen.code, code_dir, f"the code of {chosen.name}")
        sha = str(created[chosen.name].get("CodeSha256", ""))
    served = next((t for t in copy.tables if t.name == copy.table and t.region == copy.region), None)
    indexes = (served.description.get("GlobalSecondaryIndexes") or []) if served else []
    role_arn = role_arns.get(chosen.role_arn, "") if chosen else ""
    resources = LabResources(
        region=copy.region,
        account_id=ACCOUNT_ID,
        table=copy.table,
        index=str(indexes[0]["IndexName"]) if indexes else schema.EXPECTED.indexes[0].name,
        api_id=api_id,
        stage=copy.stage or "",
        role_name=role_arn.rsplit("/", 1)[-1],
        role_arn=role_arn,
        function_name=chosen.name if chosen else "",
        function_arn=str(created[chosen.name]["FunctionArn"]) if chosen else "",
        functions=routes,
        code_dir=str(code_dir),
        code_sha256=sha,
        log_groups=groups | ({"lambda": f"/aws/lambda/{chosen.name}"} if chosen else {}),
        loaded=manifest.summary(),
    )
    return resources, manifest


def table_request(table: TableCopy) -> dict[str, Any]:
    """CreateTable's request for a copied table: its keys and indexes, on demand (pure)."""
    described = table.description
    request: dict[str, Any] = {
        "TableName": table.name,
        "KeySchema": described["KeySchema"],
        "AttributeDefinitions": described["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        indexes = [
            {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
            for i in described.get(kind) or []
        ]
        if indexes:
            request[kind] = indexes
    return request


def _create_table(client: Any, table: TableCopy, manifest: Manifest) -> None:
    described = table.description
    client.create_table(**table_request(table))
    billing = (described.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
    if billing != "PAY_PER_REQUEST":
        manifest.change(f"table {table.name}: billing", billing, "PAY_PER_REQUEST (the lab has no capacity)")
    for item in table.items:
        client.put_item(TableName=table.name, Item=item)
    gsis = ", ".join(i["IndexName"] for i in described.get("GlobalSecondaryIndexes") or []) or "none"
    items = f"; {len(table.items)} items, masked" if table.items else "; schema only"
    manifest.copy("table", f"{table.name} ({table.region})", f"keys and indexes (GSIs: {gsis}){items}")


def _create_role(iam: Any, role: RoleCopy, replacements: Mapping[str, str], manifest: Manifest) -> str:
    arn = str(
        iam.create_role(RoleName=role.name, AssumeRolePolicyDocument=json.dumps(role.trust))["Role"]["Arn"]
    )
    for key, document in role.documents.items():
        kind, _, name = key.partition(":")
        body = json.dumps(rewrite(document, replacements))
        if kind == "inline":
            iam.put_role_policy(RoleName=role.name, PolicyName=name, PolicyDocument=body)
            manifest.copy("role policy", f"{role.name}/{name}", "inline")
            continue
        policy_arn = _managed_policy(iam, name, body, manifest)
        iam.attach_role_policy(RoleName=role.name, PolicyArn=policy_arn)
        manifest.copy("role policy", f"{role.name}/{name.rsplit('/', 1)[-1]}", "managed, attached")
    manifest.copy("role", role.name, f"{len(role.documents)} policies")
    return arn


def _managed_policy(iam: Any, arn: str, body: str, manifest: Manifest) -> str:
    """The lab's ARN of a managed policy: AWS's own where the lab's IAM knows it, else a copy of the
    document as a customer managed policy of the same name (named in the manifest)."""
    if ":iam::aws:policy/" in arn:
        try:
            iam.get_policy(PolicyArn=arn)
            return arn
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
    name = arn.rsplit("/", 1)[-1]
    made = iam.create_policy(PolicyName=name, Path=MIRRORED_POLICY_PATH, PolicyDocument=body)
    lab_arn = str(made["Policy"]["Arn"])
    if ":iam::aws:policy/" in arn:
        manifest.change(f"managed policy {name}", arn, lab_arn)
    return lab_arn


def _create_function(
    client: Any, logs: Any, function: FunctionCopy, role_arns: Mapping[str, str], manifest: Manifest
) -> Mapping[str, Any]:
    configuration = function.configuration
    request: dict[str, Any] = {
        "FunctionName": function.name,
        "Runtime": function.runtime,
        "Role": role_arns.get(function.role_arn, function.role_arn),
        "Handler": str(configuration.get("Handler") or ""),
        "Code": {"ZipFile": function.code},
        "Timeout": int(configuration.get("Timeout") or 3),
        "MemorySize": int(configuration.get("MemorySize") or 128),
        "Environment": {"Variables": function.environment},
        "Description": str(configuration.get("Description") or ""),
    }
    if configuration.get("LoggingConfig"):
        request["LoggingConfig"] = configuration["LoggingConfig"]
    created = client.create_function(**request)
    group = str((configuration.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{function.name}")
    _log_group(logs, group)
    names = environment_record(function.environment)
    secrets = [name for name, value in names.items() if value == function_source.SECRET_PLACEHOLDER]
    kept = f"; secret-looking values kept in memory only: {', '.join(secrets)}" if secrets else ""
    manifest.copy(
        "function",
        function.name,
        f"{function.runtime}, handler {request['Handler']}, code from {function.code_from} "
        f"({len(function.code) // 1024} KB), environment {', '.join(names) or 'none'}{kept}",
    )
    return dict(created)


def _add_permissions(
    client: Any, function: FunctionCopy, replacements: Mapping[str, str], manifest: Manifest
) -> None:
    statements = (function.resource_policy or {}).get("Statement") or []
    listed = statements if isinstance(statements, list) else [statements]
    for number, statement in enumerate(rewrite(listed, replacements)):
        principal = statement.get("Principal") or {}
        principal = (
            principal.get("Service") or principal.get("AWS") if isinstance(principal, dict) else principal
        )
        action = statement.get("Action")
        request: dict[str, Any] = {
            "FunctionName": function.name,
            "StatementId": str(statement.get("Sid") or f"mirrored-{number}"),
            "Action": action[0] if isinstance(action, list) else str(action),
            "Principal": str(principal),
        }
        conditions = statement.get("Condition") or {}
        source_arn = (conditions.get("ArnLike") or conditions.get("ArnEquals") or {}).get("AWS:SourceArn")
        if source_arn:
            request["SourceArn"] = source_arn
        source_account = (conditions.get("StringEquals") or {}).get("AWS:SourceAccount")
        if source_account:
            request["SourceAccount"] = source_account
        client.add_permission(**request)
        manifest.copy("permission", f"{function.name}/{request['StatementId']}", f"{request['Principal']}")


def _create_api(apigw: Any, copy: AccountCopy, replacements: dict[str, str], manifest: Manifest) -> str:
    api = copy.api.api
    request = {"Name": str(api.get("Name") or "mirrored-api"), "ProtocolType": "WEBSOCKET"}
    for name in ("RouteSelectionExpression", "ApiKeySelectionExpression", "Description"):
        if api.get(name):
            request[name] = str(api[name])
    api_id = str(apigw.create_api(**request)["ApiId"])
    replacements[copy.api.api_id] = api_id
    manifest.copy("api", request["Name"], f"selection expression {api.get('RouteSelectionExpression', '')}")
    manifest.change("API id", copy.api.api_id, api_id)
    return api_id


def _create_integrations(
    apigw: Any,
    api_id: str,
    *,
    copy: AccountCopy,
    replacements: Mapping[str, str],
    http_backend_url: str,
    manifest: Manifest,
) -> dict[str, str]:
    ids = {}
    for integration in copy.api.integrations:
        request = _present(integration, _INTEGRATION_FIELDS)
        uri = str(integration.get("IntegrationUri") or "")
        if str(integration.get("IntegrationType", "")).startswith("HTTP") and uri:
            manifest.change(
                f"integration {integration.get('IntegrationId')}: HTTP endpoint",
                shown_uri(uri),
                "the lab's stand-in for the app's Next.js route (the lab never calls your backend)",
            )
            uri = http_backend_url
        if uri:
            request["IntegrationUri"] = rewrite(uri, replacements)
        if integration.get("CredentialsArn"):
            request["CredentialsArn"] = rewrite(integration["CredentialsArn"], replacements)
        made = apigw.create_integration(ApiId=api_id, **request)
        ids[str(integration["IntegrationId"])] = str(made["IntegrationId"])
        parameters = sorted(integration.get("RequestParameters") or {})
        manifest.copy(
            "integration",
            str(integration.get("IntegrationId")),
            f"{integration.get('IntegrationType')}; request parameters {', '.join(parameters) or 'none'}",
        )
    return ids


def _create_authorizers(
    apigw: Any, api_id: str, copy: AccountCopy, replacements: Mapping[str, str], manifest: Manifest
) -> dict[str, str]:
    """Each Lambda authorizer a route names, invoking its copied function; account id → mirror id."""
    named = {str(r.get("AuthorizerId")) for r in copy.api.routes if r.get("AuthorizationType") == "CUSTOM"}
    ids = {}
    for authorizer in copy.api.authorizers:
        if str(authorizer.get("AuthorizerId")) not in named:
            continue
        request = _present(authorizer, ("AuthorizerType", "IdentitySource", "Name"))
        for field in ("AuthorizerUri", "AuthorizerCredentialsArn"):
            if authorizer.get(field):
                request[field] = rewrite(str(authorizer[field]), replacements)
        made = apigw.create_authorizer(ApiId=api_id, **request)
        ids[str(authorizer["AuthorizerId"])] = str(made["AuthorizerId"])
        sources = ", ".join(authorizer.get("IdentitySource") or []) or "none"
        manifest.copy("authorizer", str(authorizer.get("Name")), f"identity source {sources}")
    return ids


def _create_routes(
    apigw: Any,
    api_id: str,
    copy: AccountCopy,
    integration_ids: Mapping[str, str],
    *,
    manifest: Manifest,
    authorizer_ids: Mapping[str, str],
) -> dict[str, str]:
    """Every route, pointed at its copied integration (and authorizer); route key → the function it
    invokes."""
    from kit.config import function_of_uri

    uris = {str(i["IntegrationId"]): str(i.get("IntegrationUri") or "") for i in copy.api.integrations}
    functions: dict[str, str] = {}
    for route in copy.api.routes:
        key = str(route["RouteKey"])
        request = _present(route, _ROUTE_FIELDS)
        target = str(route.get("Target") or "")
        old = target.removeprefix("integrations/")
        if target.startswith("integrations/") and old in integration_ids:
            request["Target"] = f"integrations/{integration_ids[old]}"
            function = function_of_uri(uris.get(old, ""))
            if function is not None:
                functions[key] = function[0]
        authorizer = authorizer_ids.get(str(route.get("AuthorizerId")))
        if route.get("AuthorizationType") == "CUSTOM" and authorizer:
            request |= {"AuthorizationType": "CUSTOM", "AuthorizerId": authorizer}
        elif route.get("AuthorizationType") == "AWS_IAM":  # the lab's gateway checks SigV4 and IAM too
            request |= {"AuthorizationType": "AWS_IAM"}
        made = apigw.create_route(ApiId=api_id, RouteKey=key, **request)
        manifest.copy("route", key, f"to integration {old}" if old else "no integration")
        for response in copy.route_responses.get(key, []):
            apigw.create_route_response(
                ApiId=api_id, RouteId=made["RouteId"], **_present(response, _ROUTE_RESPONSE_FIELDS)
            )
            manifest.copy("route response", key, f"key {response.get('RouteResponseKey')}")
    return functions


def _create_stages(
    apigw: Any,
    logs: Any,
    *,
    api_id: str,
    copy: AccountCopy,
    replacements: Mapping[str, str],
    manifest: Manifest,
) -> dict[str, str]:
    """Every stage with its settings and logging; the log groups of the target's stage.

    A stage that serves a deployment in the account serves one of the copied routes and integrations here (a
    deployment's own routes cannot be read on AWS: the manifest's not_reproduced list says so); a stage with
    none serves none here either; a stage with AutoDeploy deploys itself."""
    groups: dict[str, str] = {}
    deployment = ""
    for stage in copy.api.stages:
        name = str(stage["StageName"])
        request = _present(stage, _STAGE_FIELDS)
        if stage.get("DeploymentId") and not stage.get("AutoDeploy"):
            if not deployment:
                made = apigw.create_deployment(
                    ApiId=api_id, Description="kit mirror: the account's current routes and integrations"
                )
                deployment = str(made["DeploymentId"])
            request["DeploymentId"] = deployment
            manifest.change(f"stage {name}: deployment", str(stage["DeploymentId"]), deployment)
        access = stage.get("AccessLogSettings") or {}
        if access.get("DestinationArn"):
            request["AccessLogSettings"] = rewrite(dict(access), replacements)
            group = str(access["DestinationArn"]).split(":log-group:", 1)[-1].removesuffix(":*")
            _log_group(logs, group)
            if name == copy.stage:
                groups["access"] = group
        apigw.create_stage(ApiId=api_id, StageName=name, **request)
        execution = f"API-Gateway-Execution-Logs_{api_id}/{name}"
        _log_group(logs, execution)
        if name == copy.stage:
            groups["execution"] = execution
        level = (stage.get("DefaultRouteSettings") or {}).get("LoggingLevel", "OFF")
        manifest.copy("stage", name, f"execution logging {level}; access logging {'on' if access else 'off'}")
    return groups


def _log_group(logs: Any, name: str) -> None:
    try:
        logs.create_log_group(logGroupName=name)
    except ClientError as exc:
        if error_code(exc) != "ResourceAlreadyExistsException":
            raise
