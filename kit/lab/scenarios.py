"""Scenarios: named sets of configuration changes, made through AWS APIs, that reproduce one root cause each.

A scenario is only (a) boto3 calls against the lab after the healthy stack is provisioned and (b) how the
client (the browser hook, played by the probe) connects. There are no hidden switches in the gateway, the
runtime or the handler: whatever a scenario does, the same call against a real account would do too, and the
diagnosis finds it by reading configuration, logs and the table back through the same APIs.

The stage serves its deployment, as on AWS: a scenario that changes routes or integrations deploys them
afterwards, as their user did (``_deploy``), unless not deploying is the fault (``stale-deployment``).

``reproduces`` names the root-cause id a correct diagnosis should rank first. It is documentation and test
data: the diagnosis must never import this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kit.config import lambda_integration_uri
from kit.errors import ConfigurationError
from kit.lab.provision import (
    ACCOUNT_ID,
    DEFAULT_RUNTIME,
    INVOKE_STATEMENT_ID,
    ClientFactory,
    LabResources,
    allow_invoke_from_api,
    handler_zip,
    load_policy,
)


@dataclass(frozen=True)
class ClientPlan:
    """How the client connects in a scenario (what the browser hook would do)."""

    include_workspace_id: bool = True
    include_token: bool = True
    close_after_connect: bool = False  # a reconnect loop / double mount that closes right away
    send_oversize_frame: bool = False  # a frame over 32 KB: API Gateway closes with 1009
    join_after_connect: bool = False  # sends {"action": "join", workspaceId, token} once connected


@dataclass(frozen=True)
class LabContext:
    """What a scenario may touch: the AWS clients of the lab and what provisioning created."""

    aws: ClientFactory
    resources: LabResources
    http_backend_url: str  # the local stand-in for the Next.js route app/api/websocket/route.ts
    aws_in_region: Callable[[str], ClientFactory]  # the same lab, seen from another region


Apply = Callable[[LabContext], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    reproduces: str
    apply: Apply = field(repr=False)
    client: ClientPlan = ClientPlan()
    # The runtime the scenario switches the function to (through UpdateFunctionConfiguration), when its
    # handler exists in one language only; the lab checks the machine can run it before starting.
    runtime: str | None = None
    # The scenario swaps the function's handler for one of the kit's: meaningless with the user's own code.
    replaces_handler: bool = False


# --- building blocks: each is one or two ordinary AWS API calls -------------------------------------------


def _update_environment(ctx: LabContext, **changes: str | None) -> None:
    lambda_client = ctx.aws.client("lambda")
    current = lambda_client.get_function_configuration(FunctionName=ctx.resources.function_name)
    variables = dict(current.get("Environment", {}).get("Variables", {}))
    for key, value in changes.items():
        if value is None:
            variables.pop(key, None)
        else:
            variables[key] = value
    lambda_client.update_function_configuration(
        FunctionName=ctx.resources.function_name, Environment={"Variables": variables}
    )


def _set_handler(ctx: LabContext, handler: str) -> None:
    ctx.aws.client("lambda").update_function_configuration(
        FunctionName=ctx.resources.function_name, Handler=handler
    )


def _edit_policy(ctx: LabContext, edit: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite the role's inline policy (from iam-policies.json) with ``edit`` applied, via PutRolePolicy."""
    from kit.lab.provision import POLICY_NAME

    document = json.loads(load_policy())
    edit(document)
    ctx.aws.client("iam").put_role_policy(
        RoleName=ctx.resources.role_name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(document)
    )


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _drop_action(action: str) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        for statement in _statements(document):
            actions = statement.get("Action")
            if isinstance(actions, list) and action in actions:
                actions.remove(action)

    return edit


def _drop_index_resources(document: dict[str, Any]) -> None:
    for statement in _statements(document):
        resources = statement.get("Resource")
        if isinstance(resources, list):
            statement["Resource"] = [r for r in resources if "/index/" not in r]


def _route_id(ctx: LabContext, route_key: str) -> str:
    routes = ctx.aws.client("apigatewayv2").get_routes(ApiId=ctx.resources.api_id)["Items"]
    for route in routes:
        if route["RouteKey"] == route_key:
            return str(route["RouteId"])
    raise ConfigurationError(f"route {route_key} not found on API {ctx.resources.api_id}")


def _deploy(ctx: LabContext) -> None:
    """Deploy the API's routes and integrations to the stage, as the console's Deploy API does."""
    ctx.aws.client("apigatewayv2").create_deployment(
        ApiId=ctx.resources.api_id, StageName=ctx.resources.stage
    )


# --- the scenarios ------------------------------------------------------------------------------------------


def _healthy(ctx: LabContext) -> None:
    """Nothing to change: the provisioned stack is the correct one."""


def _seed_put_denied(ctx: LabContext) -> None:
    _set_handler(ctx, "seed.handler")
    _update_environment(ctx, AWS_LAMBDA_LOG_LEVEL="INFO")
    _edit_policy(ctx, _drop_action("dynamodb:PutItem"))


def _seed_logs_dropped(ctx: LabContext) -> None:
    _set_handler(ctx, "seed.handler")
    _edit_policy(ctx, _drop_action("dynamodb:PutItem"))
    # Python's runtime drops INFO unless told otherwise. Node's keeps every level unless the function's
    # log level says otherwise: there, the team turned its noisy logs down to WARN.
    runtime = ctx.aws.client("lambda").get_function_configuration(FunctionName=ctx.resources.function_name)
    if str(runtime.get("Runtime", "")).startswith("nodejs"):
        _update_environment(ctx, AWS_LAMBDA_LOG_LEVEL="WARN")


def _seed_wrong_table(ctx: LabContext) -> None:
    _set_handler(ctx, "seed.handler")
    _update_environment(ctx, TABLE_NAME="chatgenius-connection", AWS_LAMBDA_LOG_LEVEL="INFO")


def _wrong_region(ctx: LabContext) -> None:
    from kit.dynamo import schema

    other = "us-east-1"
    schema.create_table(ctx.aws_in_region(other).client("dynamodb"), name=ctx.resources.table)
    _update_environment(ctx, TABLE_REGION=other)


def _no_connect_integration(ctx: LabContext) -> None:
    ctx.aws.client("apigatewayv2").delete_route(
        ApiId=ctx.resources.api_id, RouteId=_route_id(ctx, "$connect")
    )
    _deploy(ctx)


def _missing_workspace(ctx: LabContext) -> None:
    _set_handler(ctx, "seed.handler")
    _update_environment(ctx, AWS_LAMBDA_LOG_LEVEL="INFO")


def _index_denied(ctx: LabContext) -> None:
    _edit_policy(ctx, _drop_index_resources)


def _early_disconnect(ctx: LabContext) -> None:
    """The stack is healthy; the client closes right after connecting (a reconnect loop)."""


def _handler_crash(ctx: LabContext) -> None:
    _set_handler(ctx, "app.handle")  # a typo in the handler string: Runtime.HandlerNotFound on every event


NODE_SCENARIO_RUNTIME = "nodejs20.x"


def _node_handler(ctx: LabContext, handler: str) -> None:
    """Run the function on Node.js with one of the lab's handler variants (kit/lab/functions)."""
    ctx.aws.client("lambda").update_function_configuration(
        FunctionName=ctx.resources.function_name, Runtime=NODE_SCENARIO_RUNTIME, Handler=handler
    )


def _write_not_awaited(ctx: LabContext) -> None:
    _node_handler(ctx, "write_not_awaited.handler")


def _write_on_message(ctx: LabContext) -> None:
    apigw = ctx.aws.client("apigatewayv2")
    connect = apigw.get_route(ApiId=ctx.resources.api_id, RouteId=_route_id(ctx, "$connect"))
    apigw.create_route(ApiId=ctx.resources.api_id, RouteKey="join", Target=connect["Target"])
    _deploy(ctx)
    _node_handler(ctx, "write_on_message.handler")


def _http_no_connection_id(ctx: LabContext) -> None:
    apigw = ctx.aws.client("apigatewayv2")
    integration = apigw.create_integration(
        ApiId=ctx.resources.api_id,
        IntegrationType="HTTP_PROXY",
        IntegrationMethod="POST",
        IntegrationUri=ctx.http_backend_url,
        # No RequestParameters: API Gateway then never tells the backend which connection this is.
    )
    apigw.update_route(
        ApiId=ctx.resources.api_id,
        RouteId=_route_id(ctx, "$connect"),
        Target=f"integrations/{integration['IntegrationId']}",
    )
    _deploy(ctx)


OLD_CONNECT_FUNCTION = "chatgenius-connect-v1"


def _stale_deployment(ctx: LabContext) -> None:
    """What production ran: $connect on an older function (the seed's handler, writing to a misspelt table,
    errors swallowed), deployed. Then the fix: the $connect integration re-pointed at the fixed function,
    never deployed, so the stage still invokes the old one."""
    resources = ctx.resources
    lambda_client = ctx.aws.client("lambda")
    old = lambda_client.create_function(
        FunctionName=OLD_CONNECT_FUNCTION,
        Runtime=DEFAULT_RUNTIME,
        Role=resources.role_arn,
        Handler="seed.handler",
        Code={"ZipFile": handler_zip()},
        Timeout=6,
        MemorySize=256,
        Environment={"Variables": {"TABLE_NAME": "chatgenius-connection"}},
        Description="WebSocket $connect handler, first version",
    )
    ctx.aws.client("logs").create_log_group(logGroupName=f"/aws/lambda/{OLD_CONNECT_FUNCTION}")
    allow_invoke_from_api(
        lambda_client, OLD_CONNECT_FUNCTION, region=resources.region, api_id=resources.api_id
    )
    apigw = ctx.aws.client("apigatewayv2")
    integration = apigw.create_integration(
        ApiId=resources.api_id,
        IntegrationType="AWS_PROXY",
        IntegrationMethod="POST",
        IntegrationUri=lambda_integration_uri(resources.region, old["FunctionArn"]),
    )
    apigw.update_route(
        ApiId=resources.api_id,
        RouteId=_route_id(ctx, "$connect"),
        Target=f"integrations/{integration['IntegrationId']}",
    )
    _deploy(ctx)
    # The fix, made in the console or a script, and never deployed.
    apigw.update_integration(
        ApiId=resources.api_id,
        IntegrationId=integration["IntegrationId"],
        IntegrationUri=lambda_integration_uri(resources.region, resources.function_arn),
    )


def _throttled_connects(ctx: LabContext) -> None:
    """The stage's default route settings as Terraform's aws_apigatewayv2_stage writes them when its
    default_route_settings block sets only logging (hashicorp/terraform-provider-aws#14742): the throttling
    limits left out are sent as 0/0, so API Gateway answers every request 429, handshakes included. Stage
    settings apply at once: no deployment."""
    apigw = ctx.aws.client("apigatewayv2")
    stage = apigw.get_stage(ApiId=ctx.resources.api_id, StageName=ctx.resources.stage)
    defaults = dict(stage.get("DefaultRouteSettings") or {})
    apigw.update_stage(
        ApiId=ctx.resources.api_id,
        StageName=ctx.resources.stage,
        DefaultRouteSettings=defaults | {"ThrottlingBurstLimit": 0, "ThrottlingRateLimit": 0.0},
    )


def _route_selection_mismatch(ctx: LabContext) -> None:
    """The API is set to select routes on ``type`` (another app's convention); the clients send ``action``."""
    ctx.aws.client("apigatewayv2").update_api(
        ApiId=ctx.resources.api_id, RouteSelectionExpression="$request.body.type"
    )
    _deploy(ctx)


def _drop_manage_connections(document: dict[str, Any]) -> None:
    document["Statement"] = [
        statement
        for statement in _statements(document)
        if "execute-api:ManageConnections" not in json.dumps(statement.get("Action"))
    ]


def _manage_connections_denied(ctx: LabContext) -> None:
    _edit_policy(ctx, _drop_manage_connections)


def _management_endpoint_wrong(ctx: LabContext) -> None:
    """The handler is told to post to the production stage's endpoint (copied from another stack)."""
    resources = ctx.resources
    wrong = f"https://{resources.api_id}.execute-api.{resources.region}.amazonaws.com/production"
    _update_environment(ctx, MANAGEMENT_ENDPOINT=wrong)


def _message_route_missing(ctx: LabContext) -> None:
    ctx.aws.client("apigatewayv2").delete_route(ApiId=ctx.resources.api_id, RouteId=_route_id(ctx, "message"))
    _deploy(ctx)


AUTHORIZER_FUNCTION = "chatgenius-connect-authorizer"
AUTHORIZER_SECRET = "lab-authorizer-signing-key"  # lab-only; the kit shows it masked, like any secret


def _attach_authorizer(ctx: LabContext, handler: str, variables: dict[str, str] | None = None) -> None:
    """A Lambda REQUEST authorizer on $connect, as a team adds one: the function (one of the lab's, in
    kit/lab/functions/authorizers.py), API Gateway's permission to invoke it, the authorizer reading
    ?token=, the $connect route pointed at it, and a deployment."""
    resources = ctx.resources
    lambda_client = ctx.aws.client("lambda")
    created = lambda_client.create_function(
        FunctionName=AUTHORIZER_FUNCTION,
        Runtime=DEFAULT_RUNTIME,
        Role=resources.role_arn,
        Handler=f"authorizers.{handler}",
        Code={"ZipFile": handler_zip()},
        Timeout=3,
        MemorySize=128,
        Environment={"Variables": variables or {}},
        Description="WebSocket $connect authorizer (kit lab)",
    )
    ctx.aws.client("logs").create_log_group(logGroupName=f"/aws/lambda/{AUTHORIZER_FUNCTION}")
    allow_invoke_from_api(
        lambda_client,
        AUTHORIZER_FUNCTION,
        region=resources.region,
        api_id=resources.api_id,
        source="authorizers/*",
    )
    apigw = ctx.aws.client("apigatewayv2")
    authorizer = apigw.create_authorizer(
        ApiId=resources.api_id,
        AuthorizerType="REQUEST",
        AuthorizerUri=lambda_integration_uri(resources.region, created["FunctionArn"]),
        IdentitySource=["route.request.querystring.token"],
        Name="chatgenius-token",
    )
    apigw.update_route(
        ApiId=resources.api_id,
        RouteId=_route_id(ctx, "$connect"),
        AuthorizationType="CUSTOM",
        AuthorizerId=authorizer["AuthorizerId"],
    )
    _deploy(ctx)


def _authorizer_denies(ctx: LabContext) -> None:
    """The authorizer accepts only signed tokens; the app still sends the user's e-mail as its token."""
    _attach_authorizer(ctx, "signed_token", {"AUTH_SECRET": AUTHORIZER_SECRET})


def _authorizer_drops_context(ctx: LabContext) -> None:
    """The handler now trusts the authorizer for the user (AUTH_MODE=authorizer); the authorizer allows
    every token but its context names only the workspace, not the user."""
    _attach_authorizer(ctx, "without_user")
    _update_environment(ctx, AUTH_MODE="authorizer")


# The id of the API the stack had before it was deleted and created again (infrastructure as code): the
# function's invoke permission still names it.
FORMER_API_ID = "a1b2c3d4e5"


def _invoke_permission_missing(ctx: LabContext) -> None:
    """The API was created again under a new id, and the function's invoke permission was never renewed: its
    one statement lets API Gateway invoke it only for the former API. No deployment: Lambda's resource policy
    is not part of the API."""
    resources = ctx.resources
    lambda_client = ctx.aws.client("lambda")
    lambda_client.remove_permission(FunctionName=resources.function_name, StatementId=INVOKE_STATEMENT_ID)
    lambda_client.add_permission(
        FunctionName=resources.function_name,
        StatementId=INVOKE_STATEMENT_ID,
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{resources.region}:{ACCOUNT_ID}:{FORMER_API_ID}/*",
    )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "healthy",
            "the fixed handler, the correct role and routes: connections are stored",
            "none",
            _healthy,
        ),
        Scenario(
            "seed-put-denied",
            "the seed's handler; the role lacks dynamodb:PutItem; the error is swallowed and 200 returned",
            "put-access-denied",
            _seed_put_denied,
            replaces_handler=True,
        ),
        Scenario(
            "seed-logs-dropped",
            "as seed-put-denied, but the function's log level drops the handler's INFO error lines",
            "put-access-denied",
            _seed_logs_dropped,
            replaces_handler=True,
        ),
        Scenario(
            "seed-wrong-table",
            "the seed's handler with TABLE_NAME=chatgenius-connection (no such table); error swallowed",
            "table-not-found",
            _seed_wrong_table,
            replaces_handler=True,
        ),
        Scenario(
            "wrong-region",
            "the handler writes to a same-named table in us-east-1 while the app reads us-east-2",
            "wrong-region",
            _wrong_region,
        ),
        Scenario(
            "no-connect-integration",
            "the $connect route is deleted: connections are accepted and nothing is invoked",
            "connect-route-missing",
            _no_connect_integration,
        ),
        Scenario(
            "missing-workspace",
            "the client omits workspaceId; the seed's handler stores items the workspaceIndex never sees",
            "workspace-id-missing",
            _missing_workspace,
            ClientPlan(include_workspace_id=False),
            replaces_handler=True,
        ),
        Scenario(
            "index-denied",
            "the role allows the table but not table/.../index/*: broadcasts fail on Query",
            "index-access-denied",
            _index_denied,
        ),
        Scenario(
            "early-disconnect",
            "the client closes right after connecting (reconnect loop): $disconnect deletes the item",
            "early-disconnect",
            _early_disconnect,
            ClientPlan(close_after_connect=True),
        ),
        Scenario(
            "handler-crash",
            "the handler string names a missing function: every $connect fails with 502",
            "handler-crash",
            _handler_crash,
            replaces_handler=True,
        ),
        Scenario(
            "write-not-awaited",
            "a Node.js handler starts its $connect write and does not await it: the environment is frozen "
            "with the write pending, so the row is missing or appears an invocation late",
            "write-not-awaited",
            _write_not_awaited,
            runtime=NODE_SCENARIO_RUNTIME,
            replaces_handler=True,
        ),
        Scenario(
            "write-on-message",
            "$connect stores nothing; the connection is stored only when the client's join message arrives",
            "write-on-message",
            _write_on_message,
            ClientPlan(join_after_connect=True),
            runtime=NODE_SCENARIO_RUNTIME,
            replaces_handler=True,
        ),
        Scenario(
            "http-no-connection-id",
            "$connect goes to the Next.js route over HTTP_PROXY without the connectionId mapping",
            "connection-id-not-mapped",
            _http_no_connection_id,
        ),
        Scenario(
            "stale-deployment",
            "the $connect integration was re-pointed at the fixed function and never deployed: the stage "
            "still invokes the old one, the seed's handler writing to a misspelt table",
            "stale-deployment",
            _stale_deployment,
        ),
        Scenario(
            "throttled-connects",
            "the stage's default route settings throttle at 0/0, as Terraform writes a settings block that "
            "only turns logging on: every handshake gets 429 and $connect never runs",
            "throttled",
            _throttled_connects,
        ),
        Scenario(
            "route-selection-mismatch",
            "the API selects routes on $request.body.type while the clients send action: every message is "
            "answered Forbidden, connections are stored",
            "route-selection-mismatch",
            _route_selection_mismatch,
        ),
        Scenario(
            "manage-connections-denied",
            "the role lost execute-api:ManageConnections: every PostToConnection is refused, so broadcasts "
            "reach nobody",
            "manage-connections-denied",
            _manage_connections_denied,
        ),
        Scenario(
            "management-endpoint-wrong",
            "MANAGEMENT_ENDPOINT names the production stage's @connections endpoint: the handler's posts go "
            "to another stage",
            "management-endpoint-wrong",
            _management_endpoint_wrong,
        ),
        Scenario(
            "message-route-missing",
            "the message route is deleted (and deployed): the clients' messages get the Forbidden frame",
            "message-route-missing",
            _message_route_missing,
        ),
        Scenario(
            "authorizer-denies",
            "a Lambda REQUEST authorizer on $connect accepts only signed tokens and the app sends the user's "
            "e-mail: its policy denies, every handshake is refused with 403 and $connect never runs",
            "authorizer-denied",
            _authorizer_denies,
        ),
        Scenario(
            "authorizer-drops-context",
            "the handler reads the user from requestContext.authorizer (AUTH_MODE=authorizer); the $connect "
            "authorizer allows but its context omits the user, so the handler answers 500 and writes nothing",
            "authorizer-context-missing",
            _authorizer_drops_context,
            replaces_handler=True,
        ),
        Scenario(
            "invoke-permission-missing",
            "the function's resource policy lets API Gateway invoke it only for a former API's id: every "
            "$connect fails with 500 before the handler runs",
            "invoke-permission-missing",
            _invoke_permission_missing,
        ),
    )
}


def get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown scenario {name!r}; `kit lab scenarios` lists them: {', '.join(SCENARIOS)}"
        ) from None
