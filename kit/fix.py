"""The fix for a ranked cause: what to change, and how a reader sees it before anything is applied.

    plan(diagnosis, evidence) -> Fix        pure: the root cause and the evidence → the changes
    Fix.text()                              the fix for a reader: JSON documents, CLI commands, boto3 calls
    for_account(fix) -> Fix                 only what the kit changes on a real account

The changes are rendered as commands by :mod:`kit.fix_commands`, and applied, undone and verified by
:mod:`kit.fix_apply`.

A change is one of a few operations (:data:`kit.fix_commands.OPERATIONS`): an inline policy added to the
execution role, the function's environment patched (only the named variables; the others, secrets included,
are read at apply time and never printed), the ``$connect`` route wired to the function's integration, the
connection id mapped on an HTTP integration, API Gateway let invoke the ``$connect`` function (a statement
added to the function's resource policy), the API's route selection expression set (and deployed), the API
deployed to its stage (after a route or integration change, or for a stage serving an older deployment; undone
by pointing the stage back), the stage's throttling of ``$connect`` raised to the account's own limits (its
other route settings kept; undone by putting them back), or the kit's fixed handler (``kit/handler/app.py`` or
``app.mjs``) deployed in place of the function's code. A cause the client must fix (it omits ``workspaceId``,
it closes at once) changes the client instead: ``Fix.client`` holds the probe's settings that stand for the
fixed client.

What this module must not do: reach AWS (it is pure; the evidence comes in), or print a variable's value
other than the ones a change sets.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import pandas as pd

from kit import permissions
from kit.diagnose import delivery_checks
from kit.diagnose.findings import CONNECT, Diagnosis, Evidence
from kit.errors import ConfigurationError
from kit.fix_commands import (
    ACCOUNT_OPERATIONS,
    RENDER,
    SANE_THROTTLING,
    arn_parts,
    handler_file,
)

HANDLER_DIR: Final = Path(__file__).resolve().parent / "handler"
CONNECTION_ID_PARAMETER: Final = ("integration.request.header.ConnectionId", "context.connectionId")
# An HTTP backend sees only what is mapped: the id, and the query parameters the connect contract carries.
QUERY_PARAMETERS: Final = {
    f"integration.request.querystring.{name}": f"route.request.querystring.{name}"
    for name in ("token", "workspaceId")
}
POLICY_PREFIX: Final = "kit-fix-"
MANAGEMENT_ENDPOINT: Final = "MANAGEMENT_ENDPOINT"  # the kit's handlers' variable (kit/handler/app.py)
CONNECT_PERMISSION_ID: Final = "kit-fix-apigateway-connect"


@dataclass(frozen=True)
class Change:
    """One change to the stack: ``operation`` (a key of :data:`OPERATIONS`) with its parameters."""

    operation: str
    summary: str
    params: Mapping[str, Any]

    def document(self) -> Any:
        """The JSON a reader checks before applying (the policy statement), or None."""
        if self.operation == "put_role_policy":
            return json.loads(str(self.params["PolicyDocument"]))
        if self.operation == "patch_environment":
            return {"set": self.params.get("Set", {}), "remove": list(self.params.get("Remove", []))}
        return None

    def cli(self) -> list[str]:
        return RENDER[self.operation][0](self.params)

    def boto3(self) -> list[str]:
        return RENDER[self.operation][1](self.params)


@dataclass(frozen=True)
class Fix:
    cause: str
    summary: str
    changes: tuple[Change, ...] = ()
    handler: str = ""  # the place in the user's handler and the kit's pattern, for handler causes
    client: Mapping[str, bool] = field(default_factory=dict)  # ProbePlan settings of the fixed client
    advice: str = ""  # what to do when the kit has nothing it can apply
    function: str = ""

    @property
    def applicable(self) -> bool:
        return bool(self.changes or self.client)

    def advice_lines(self) -> list[tuple[str, str]]:
        """(label, text) of what is not an API change: the client, the handler, what to do instead."""
        lines = []
        if self.client:
            settings = ", ".join(f"{k}={v}" for k, v in self.client.items())
            lines.append(
                ("The client", f"{CLIENT_ADVICE.get(self.cause, '')} (verified with a probe: {settings})")
            )
        if self.handler:
            lines.append(("In your handler", self.handler))
        if self.advice:
            lines.append(("", self.advice))
        return lines

    def text(self) -> str:
        lines = [f"Fix for {self.cause}: {self.summary}"]
        for number, change in enumerate(self.changes, 1):
            lines.append(f"\n{number}. {change.summary}")
            document = change.document()
            if document is not None:
                lines.append("   JSON:")
                lines += [f"     {line}" for line in json.dumps(document, indent=2).splitlines()]
            for label, rendered in (("AWS CLI", change.cli()), ("boto3", change.boto3())):
                lines.append(f"   {label}:")
                lines += [f"     {line}" for line in rendered]
        lines += [f"\n{label}: {text}" if label else f"\n{text}" for label, text in self.advice_lines()]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cause": self.cause,
            "summary": self.summary,
            "changes": [
                {
                    "operation": c.operation,
                    "summary": c.summary,
                    "document": c.document(),
                    "cli": c.cli(),
                    "boto3": c.boto3(),
                }
                for c in self.changes
            ],
            "client": dict(self.client),
            "handler": self.handler,
            "advice": self.advice,
            "applicable": self.applicable,
        }


# --------------------------------------------------------------------------------------------------
# Planning (pure)

CLIENT_ADVICE = {
    "workspace-id-missing": "open the WebSocket URL with workspaceId in its query string, as the hook should",
    "early-disconnect": "keep the connection open: one socket per mount, no close right after open, "
    "reconnect only after a close you did not ask for",
}

_HANDLER_PATTERNS = {
    "handler-crash": "the function fails before answering; read its [ERROR] line ({evidence}). The kit's "
    "fixed handler (kit/handler/app.py, app.mjs) exports `handler` from `app`: Handler app.handler.",
    "write-not-awaited": "await the PutItem before answering ({evidence}): "
    "`await ddb.send(new PutCommand(...))` inside try/catch, and answer 500 when it throws, as "
    "kit/handler/app.mjs's connect() does (app.py: connect()).",
    "write-on-message": "store the connection in the $connect handler, from the query string ({evidence}); "
    "a join message may update the item, never create it (kit/handler/app.mjs and app.py: connect()).",
    "workspace-id-missing": "answer 400 to a $connect without workspaceId instead of storing an item the "
    "index never sees (kit/handler/app.py: parse_connect_parameters(); app.mjs: connectParameters()).",
}


# Causes with no change the kit can stand behind, and why.
_NO_SAFE_CHANGE = {
    "authorizer-denied": "The kit changes no authorizer: detaching it, or loosening its policy, would let "
    "anyone connect, and only you know whether the token or the authorizer is wrong. Fix the client's token "
    "or the authorizer's code, then deploy the stage.",
    "authorizer-context-missing": "The change belongs in code the kit does not write for you: the "
    "authorizer's (return the user in its context) or the handler's (authenticate the token itself, which "
    "changes whom it trusts). Deploy the stage after changing the authorizer.",
    "connect-iam-denied": "The kit does not know your clients' identities or how they sign, so it changes "
    "nothing: sign each handshake for execute-api and allow execute-api:Invoke on the $connect route in the "
    "policy of the identity your clients use (or take AWS_IAM off the route).",
}


def _connect_function(evidence: Evidence) -> pd.Series | None:
    routes = evidence.routes[evidence.routes["route_key"] == CONNECT]
    names = [str(n) for n in routes["function_name"].dropna()] or [
        str(n) for n in evidence.functions["function_name"].dropna()
    ]
    rows = (
        evidence.functions[evidence.functions["function_name"].isin(names)] if names else evidence.functions
    )
    return rows.iloc[0] if not rows.empty else None


def _allow(sid: str, action: str, resource: str) -> str:
    statement = {"Sid": sid, "Effect": "Allow", "Action": [action], "Resource": [resource]}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _policy_change(function: pd.Series, evidence: Evidence, action: str, index: bool) -> Change:
    role = str(function["role"]).rsplit("/", 1)[-1]
    partition, _, account = arn_parts(str(function["function_arn"]))
    table_arn = f"arn:{partition}:dynamodb:{evidence.region}:{account}:table/{evidence.table}"
    resource = f"{table_arn}/index/*" if index else table_arn
    name = f"{POLICY_PREFIX}{'index-query' if index else 'put-item'}"
    sid = "KitFixIndexQuery" if index else "KitFixPutItem"
    return Change(
        "put_role_policy",
        f"Allow {action} on {resource} in role {role} (a new inline policy, {name}).",
        {"RoleName": role, "PolicyName": name, "PolicyDocument": _allow(sid, action, resource)},
    )


def _denying_statement(
    evidence: Evidence, action: str, permissions: pd.DataFrame | None = None
) -> str | None:
    permissions = evidence.permissions if permissions is None else permissions
    if permissions is None or permissions.empty:
        return None
    rows = permissions[(permissions["action"] == action) & (permissions["decision"] == "explicit-deny")]
    return str(rows.iloc[0]["statement"]) if not rows.empty else None


def plan(diagnosis: Diagnosis, evidence: Evidence) -> Fix:
    """The fix for the diagnosis's root cause, from the evidence it was read from (pure)."""
    cause = str(diagnosis.root_cause["id"])
    summary = str(diagnosis.root_cause.get("next_step", ""))
    evidence_line = "; ".join(str(e) for e in diagnosis.root_cause.get("evidence", []))[:300]
    function = _connect_function(evidence)
    name = str(function["function_name"]) if function is not None else ""
    nothing = Fix(cause, summary, function=name)
    if cause in ("none",):
        return Fix(cause, "Nothing to fix.", advice="The diagnosis found no cause.")
    if cause in ("target-not-found", "target-unreachable", "evidence-unread", "evidence-missing"):
        return Fix(
            cause,
            summary,
            advice="There is nothing to fix in the stack yet: the diagnosis is "
            "inconclusive. Do what it says, then diagnose and ask for the fix again.",
        )
    if cause in ("handshake-refused", "not-stored", "not-delivered"):
        return Fix(
            cause,
            summary,
            advice="The diagnosis names a symptom, not its cause, so the kit has no "
            "change it can stand behind; read what the evidence points at.",
        )
    if cause in _NO_SAFE_CHANGE:
        return Fix(cause, summary, advice=_NO_SAFE_CHANGE[cause], function=name)
    if cause == "early-disconnect":
        return Fix(cause, summary, client={"close_after_connect": False}, function=name)
    if cause == "connection-id-not-mapped":
        return _connection_id_fix(cause, summary, evidence)
    if cause == "stale-deployment":
        return _deployment_fix(cause, summary, evidence)
    if cause == "throttled":
        return _throttling_fix(cause, summary, evidence)
    if cause == "connect-route-missing":
        return _connect_route_fix(cause, summary, evidence, function)
    if cause == "route-selection-mismatch":
        return _selection_fix(cause, summary, evidence)
    if cause == "message-route-missing":
        return _message_route_fix(cause, summary, evidence, function)
    if cause == "management-endpoint-wrong":
        return _endpoint_fix(cause, summary, evidence)
    if cause == "invoke-permission-missing":
        return _invoke_permission_fix(cause, summary, evidence)
    if function is None:
        return Fix(
            cause,
            summary,
            advice="The $connect function's configuration was not read, so the kit "
            "cannot say what to change; give it the API (--websocket-url or --api-id).",
        )
    if cause == "manage-connections-denied":
        return _manage_connections_fix(cause, summary, evidence, function)
    if cause in ("put-access-denied", "index-access-denied"):
        if pd.isna(function["role"]) or pd.isna(function["function_arn"]):
            return Fix(
                cause,
                summary,
                function=name,
                advice="The function's execution role was not read, so "
                "the kit cannot name the policy to change; let it read the function's configuration.",
            )
        action = "dynamodb:PutItem" if cause == "put-access-denied" else "dynamodb:Query"
        denying = _denying_statement(evidence, action)
        if denying:
            return Fix(
                cause,
                summary,
                function=name,
                advice=f"An explicit Deny decides {action}: remove or "
                f"narrow statement {denying} of the role's policies; an Allow added beside it changes "
                "nothing.",
            )
        return Fix(
            cause,
            summary,
            (_policy_change(function, evidence, action, cause == "index-access-denied"),),
            function=name,
        )
    if cause == "table-not-found":
        change = Change(
            "patch_environment",
            f"Set TABLE_NAME={evidence.table} on function {name}.",
            {"FunctionName": name, "Set": {"TABLE_NAME": evidence.table}, "Remove": []},
        )
        return Fix(cause, summary, (change,), function=name)
    if cause == "wrong-region":
        change = Change(
            "patch_environment",
            f"Remove TABLE_REGION from function {name}, so it writes in its own region.",
            {"FunctionName": name, "Set": {}, "Remove": ["TABLE_REGION"]},
        )
        return Fix(cause, summary, (change,), function=name)
    if cause in _HANDLER_PATTERNS:
        runtime = str(function["runtime"]) if pd.notna(function["runtime"]) else ""
        deploy = Change(
            "deploy_fixed_handler",
            f"Deploy the kit's fixed handler ({handler_file(runtime)}, Handler app.handler) on function "
            f"{name}, in place of its code: to verify on the lab or a mirror; on your account, port the "
            "pattern.",
            {"FunctionName": name, "Runtime": runtime},
        )
        client = {"include_workspace_id": True} if cause == "workspace-id-missing" else {}
        return Fix(
            cause,
            summary,
            (deploy,),
            _HANDLER_PATTERNS[cause].format(evidence=evidence_line),
            client,
            function=name,
        )
    if cause in ("table-schema-mismatch", "table-write-denied"):
        return Fix(
            cause,
            summary,
            advice="The kit does not change a table's key, index or policy for you: "
            "it would lose data. " + summary,
            function=name,
        )
    return nothing


def _connection_id_fix(cause: str, summary: str, evidence: Evidence) -> Fix:
    connect = evidence.routes[evidence.routes["route_key"] == CONNECT]
    if connect.empty or pd.isna(connect.iloc[0]["integration_id"]):
        return Fix(cause, summary, advice="The $connect integration was not read; read the API first.")
    row = connect.iloc[0]
    current = json.loads(str(row["request_parameters"])) if pd.notna(row["request_parameters"]) else {}
    key, value = CONNECTION_ID_PARAMETER
    wanted = {key: value, **{k: v for k, v in QUERY_PARAMETERS.items() if k not in current}}
    change = Change(
        "update_integration",
        f"Map {key} to {value} on the $connect integration {row['integration_id']}, and pass the client's "
        "token and workspaceId query parameters on (an HTTP backend sees nothing it is not given).",
        {
            "ApiId": evidence.api_id,
            "IntegrationId": str(row["integration_id"]),
            "RequestParameters": {**current, **wanted},
        },
    )
    stage = _deploy_stage(evidence)
    deploy = (_deploy_change(evidence.api_id, stage),) if stage else ()
    return Fix(cause, summary, (change, *deploy))


def _deploy_change(api_id: str, stage: str) -> Change:
    return Change(
        "deploy_stage",
        f"Deploy the API's routes and integrations to stage {stage} (a new deployment the stage serves).",
        {"ApiId": api_id, "StageName": stage},
    )


def _deployment_fix(cause: str, summary: str, evidence: Evidence) -> Fix:
    if evidence.stage.empty or pd.isna(evidence.stage.iloc[0]["stage_name"]) or not evidence.api_id:
        return Fix(cause, summary, advice="The stage was not read, so the kit cannot name what to deploy.")
    stage = str(evidence.stage.iloc[0]["stage_name"])
    return Fix(cause, summary, (_deploy_change(evidence.api_id, stage),))


def _throttling_fix(cause: str, summary: str, evidence: Evidence) -> Fix:
    """The stage's settings that throttle ``$connect`` raised to the account's limits; none to change when no
    stage setting limits it (the account's quota refused the handshakes)."""
    if evidence.stage.empty or pd.isna(evidence.stage.iloc[0]["stage_name"]) or not evidence.api_id:
        return Fix(cause, summary, advice="The stage was not read, so the kit cannot name what to change.")
    row = evidence.stage.iloc[0]
    if pd.isna(row["connect_throttle_source"]):
        return Fix(
            cause,
            summary,
            advice="No stage setting limits $connect: the account's quota of new connections (500 a second "
            "per region) refused them, and the stack has nothing to change. Make clients reconnect with "
            "backoff and jitter, or ask for a higher quota (Service Quotas).",
        )
    stage = str(row["stage_name"])
    settings = [part.strip() for part in str(row["connect_throttle_source"]).split(",")]
    change = Change(
        "stage_throttling",
        f"Set {' and '.join(settings)} of stage {stage} to burst {SANE_THROTTLING['ThrottlingBurstLimit']} "
        f"and rate {SANE_THROTTLING['ThrottlingRateLimit']:g} a second (the account's own limits), keeping "
        "their other settings; no deployment is needed (stage settings are live).",
        {"ApiId": evidence.api_id, "StageName": stage, "Settings": settings, **SANE_THROTTLING},
    )
    return Fix(cause, summary, (change,))


def _connect_route_fix(cause: str, summary: str, evidence: Evidence, function: pd.Series | None) -> Fix:
    others = evidence.routes[
        evidence.routes["integration_id"].notna() & evidence.routes["function_arn"].notna()
    ]
    arn = (
        str(function["function_arn"])
        if function is not None
        else (str(others.iloc[0]["function_arn"]) if not others.empty else "")
    )
    if not arn:
        return Fix(
            cause,
            summary,
            advice="No function is wired to the API's other routes, so the kit cannot "
            "tell which one $connect should invoke; create the route with your connect function.",
        )
    integration = str(others.iloc[0]["integration_id"]) if not others.empty else ""
    change = Change(
        "connect_route",
        f"Create the $connect route with target integrations/{integration or '<new AWS_PROXY integration>'} "
        f"(function {arn.rsplit(':', 1)[-1]}), let API Gateway invoke the function, and deploy the stage.",
        {
            "ApiId": evidence.api_id,
            "IntegrationId": integration,
            "FunctionArn": arn,
            "Stage": _deploy_stage(evidence),
        },
    )
    return Fix(cause, summary, (change,), function=arn.rsplit(":", 1)[-1])


def _selection_fix(cause: str, summary: str, evidence: Evidence) -> Fix:
    wanted = delivery_checks.unrouted_messages(evidence).wanted_expression
    if not wanted or not evidence.api_id:
        return Fix(
            cause,
            summary,
            advice="No field of the clients' frames names a route of the API, so the kit cannot say "
            "which expression to set; compare the frames with the route keys.",
        )
    change = Change(
        "update_api",
        f"Set the API's route selection expression to {wanted} (the field the clients' frames name "
        f"the route in; it was {evidence.route_selection_expression!r}).",
        {"ApiId": evidence.api_id, "RouteSelectionExpression": wanted},
    )
    stage = _deploy_stage(evidence)
    return Fix(cause, summary, (change, *((_deploy_change(evidence.api_id, stage),) if stage else ())))


def _message_route_fix(cause: str, summary: str, evidence: Evidence, function: pd.Series | None) -> Fix:
    found = delivery_checks.unrouted_messages(evidence)
    stage = _deploy_stage(evidence)
    if not found.missing:  # the routes exist: the stage's deployment lacks them
        if evidence.stage.empty or not evidence.api_id:
            return Fix(
                cause, summary, advice="The stage was not read, so the kit cannot name what to deploy."
            )
        deploy_to = str(evidence.stage.iloc[0]["stage_name"])
        return Fix(cause, summary, (_deploy_change(evidence.api_id, deploy_to),))
    wired = evidence.routes[
        evidence.routes["route_id"].notna()
        & evidence.routes["integration_id"].notna()
        & evidence.routes["function_arn"].notna()
        & ~evidence.routes["route_key"].isin([CONNECT, "$disconnect"])
    ]
    wired = wired if not wired.empty else _connect_routes(evidence)
    if wired.empty:
        return Fix(
            cause,
            summary,
            advice="No route of the API invokes a function, so the kit cannot tell which one the missing "
            "route should invoke; create it with your message function.",
        )
    row = wired.iloc[0]
    changes = tuple(
        Change(
            "connect_route",
            f"Create the {key} route with target integrations/{row['integration_id']} (the integration "
            f"route {row['route_key']} uses), let API Gateway invoke it"
            + (", and deploy the stage." if stage and index == len(found.missing) - 1 else "."),
            {
                "ApiId": evidence.api_id,
                "RouteKey": key,
                "IntegrationId": str(row["integration_id"]),
                "FunctionArn": str(row["function_arn"]),
                "Stage": stage if index == len(found.missing) - 1 else "",
            },
        )
        for index, key in enumerate(found.missing)
    )
    return Fix(cause, summary, changes, function=str(row["function_name"]))


def _connect_routes(evidence: Evidence) -> pd.DataFrame:
    routes = evidence.routes
    return routes[
        (routes["route_key"] == CONNECT) & routes["integration_id"].notna() & routes["function_arn"].notna()
    ]


def _endpoint_fix(cause: str, summary: str, evidence: Evidence) -> Fix:
    wrong = delivery_checks.wrong_endpoints(evidence)
    if not wrong:
        return Fix(
            cause,
            summary,
            advice="The wrong endpoint is in the function's code or log, not in a variable the kit can "
            f"change: post to {delivery_checks.own_endpoint(evidence)}.",
        )
    own = delivery_checks.own_endpoint(evidence)
    changes = []
    for item in wrong:
        if item.variable == MANAGEMENT_ENDPOINT:  # the kit's handlers build it from the event without it
            changes.append(
                Change(
                    "patch_environment",
                    f"Remove {item.variable} from function {item.function_name}: the handler then posts to "
                    "https://{requestContext.domainName}/{requestContext.stage}, the API's own endpoint (the "
                    "kit's handlers do; a handler of yours must too).",
                    {"FunctionName": item.function_name, "Set": {}, "Remove": [item.variable]},
                )
            )
        else:
            scheme = item.value.split("://", 1)[0]
            value = own.replace("https", scheme, 1)
            changes.append(
                Change(
                    "patch_environment",
                    f"Set {item.variable}={value} on function {item.function_name}: the API's own endpoint.",
                    {"FunctionName": item.function_name, "Set": {item.variable: value}, "Remove": []},
                )
            )
    return Fix(cause, summary, tuple(changes), function=wrong[0].function_name)


def _manage_connections_fix(cause: str, summary: str, evidence: Evidence, function: pd.Series) -> Fix:
    if evidence.message_permissions is not None:  # the message function runs under another role: that one
        routes = evidence.routes
        message = routes[routes["route_id"].notna() & ~routes["route_key"].isin([CONNECT, "$disconnect"])]
        rows = evidence.functions[evidence.functions["function_name"].isin(message["function_name"].dropna())]
        function = rows.iloc[0] if not rows.empty else function
    name = str(function["function_name"])
    denying = _denying_statement(evidence, delivery_checks.MANAGE_CONNECTIONS, evidence.message_permissions)
    if denying:
        return Fix(
            cause,
            summary,
            function=name,
            advice=f"An explicit Deny decides {delivery_checks.MANAGE_CONNECTIONS}: remove or narrow "
            f"statement {denying} of the role's policies; an Allow added beside it changes nothing.",
        )
    if pd.isna(function["role"]) or pd.isna(function["function_arn"]) or evidence.stage.empty:
        return Fix(
            cause,
            summary,
            function=name,
            advice="The function's execution role or the stage was not read, so the kit cannot name the "
            "policy to add.",
        )
    role = str(function["role"]).rsplit("/", 1)[-1]
    partition, _, account = arn_parts(str(function["function_arn"]))
    stage = str(evidence.stage.iloc[0]["stage_name"])
    api = f"{evidence.api_id}/{stage}"
    resource = f"arn:{partition}:execute-api:{evidence.region}:{account}:{api}/POST/@connections/*"
    policy_name = f"{POLICY_PREFIX}manage-connections"
    change = Change(
        "put_role_policy",
        f"Allow {delivery_checks.MANAGE_CONNECTIONS} on {resource} in role {role} (a new inline policy, "
        f"{policy_name}).",
        {
            "RoleName": role,
            "PolicyName": policy_name,
            "PolicyDocument": _allow("KitFixManageConnections", delivery_checks.MANAGE_CONNECTIONS, resource),
        },
    )
    return Fix(cause, summary, (change,), function=name)


def _invoke_permission_fix(cause: str, summary: str, evidence: Evidence) -> Fix:
    """A statement letting API Gateway invoke the $connect function for the ARN it presents: the stage's
    ``$connect`` (``…/{stage}/$connect``), or every route of the stage (``…/{stage}/*``) when the function
    serves other routes too, whose grant is just as missing. Lambda reads its policy on every call: nothing
    to deploy."""
    connect = evidence.routes[
        (evidence.routes["route_key"] == CONNECT) & evidence.routes["function_arn"].notna()
    ]
    if connect.empty or evidence.stage.empty or not evidence.api_id:
        return Fix(
            cause,
            summary,
            advice="The $connect function or the stage was not read, so the kit cannot name the source ARN; "
            "read the API first.",
        )
    arn = str(connect.iloc[0]["function_arn"])
    partition, _, account = arn_parts(arn)
    stage = str(evidence.stage.iloc[0]["stage_name"])
    served = set(evidence.routes.loc[evidence.routes["function_arn"] == arn, "route_key"].dropna())
    route_key = CONNECT if served <= {CONNECT} else "*"
    source = permissions.execute_api_route_arn(
        evidence.region, account, evidence.api_id, stage, route_key, partition=partition
    )
    name = arn.rsplit(":", 1)[-1]
    change = Change(
        "add_invoke_permission",
        f"Let apigateway.amazonaws.com invoke function {name} for {source} (a statement added to its "
        f"resource policy, {CONNECT_PERMISSION_ID}).",
        {"FunctionName": arn, "StatementId": CONNECT_PERMISSION_ID, "SourceArn": source},
    )
    return Fix(cause, summary, (change,), function=name)


def _deploy_stage(evidence: Evidence) -> str:
    """The stage to redeploy after a route change: none when it deploys itself (AutoDeploy)."""
    if evidence.stage.empty:
        return ""
    row = evidence.stage.iloc[0]
    return "" if bool(pd.notna(row["auto_deploy"]) and row["auto_deploy"]) else str(row["stage_name"])


def handler_package(runtime: str) -> bytes:
    """The kit's fixed handler as a deployment package for ``runtime`` (app.py or app.mjs at the root)."""
    name = handler_file(runtime)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(HANDLER_DIR / name, arcname=name)
    return buffer.getvalue()


def for_account(fix: Fix) -> Fix:
    """``fix`` with only what the kit applies to a real account (pure); a fix left with nothing to apply is a
    ConfigurationError saying what to do instead."""
    kept = tuple(c for c in fix.changes if c.operation in ACCOUNT_OPERATIONS)
    if not kept:
        raise ConfigurationError(
            f"kit fix --apply does not replace the code of a function on a real account: the fix for "
            f"{fix.cause} is a change in your handler (`kit fix` shows where and the pattern); port it, "
            "deploy it your way, then run the diagnosis again."
        )
    return replace(fix, changes=kept)
