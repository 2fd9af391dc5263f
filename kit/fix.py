"""The fix for a ranked cause: what to change, shown as AWS CLI commands and as boto3 calls, applied only
where that is allowed, and each change's undo.

    plan(diagnosis, evidence) -> Fix        pure: the root cause and the evidence → the changes
    Fix.text()                              the fix for a reader: JSON documents, CLI commands, boto3 calls
    apply(target, fix) -> Applied           I/O: each change read, then written; what undoes it, recorded
    undo(target, applied)                   the recorded undo, in reverse order
    verify(target, fix, read, diagnose)     apply, diagnose again from then on: "fixed" or "not enough"

A change is one of a few operations (:data:`OPERATIONS`): an inline policy added to the execution role, the
function's environment patched (only the named variables; the others, secrets included, are read at apply
time and never printed), the ``$connect`` route wired to the function's integration, the connection id
mapped on an HTTP integration, API Gateway let invoke the ``$connect`` function (a statement added to the
function's resource policy), the API's route selection expression set (and deployed), the API deployed to its
stage (after a route or integration change, or for a stage serving an older deployment; undone by pointing
the stage back), the stage's throttling of ``$connect`` raised to the account's own limits (its other route
settings kept; undone by putting them back), or the kit's fixed handler
(``kit/handler/app.py`` or ``app.mjs``) deployed in place of the function's code. A cause the client must fix
(it omits ``workspaceId``, it closes at once) changes the client instead: ``Fix.client`` holds the probe's
settings that stand for the fixed client.

What this module must not do: change a real account unless the caller passes ``allow_writes`` and the
target is writable (:meth:`kit.target.Target.require_writes`), print or record a variable's value other than
the ones it sets, or apply anything it did not show.
"""

from __future__ import annotations

import io
import json
import shlex
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from kit import policy
from kit.config import lambda_integration_uri
from kit.diagnose import delivery_checks
from kit.diagnose.findings import CONNECT, Diagnosis, Evidence
from kit.errors import ConfigurationError, error_code
from kit.mirror import download_code

if TYPE_CHECKING:
    from kit.target import Target

HANDLER_DIR: Final = Path(__file__).resolve().parent / "handler"
CONNECTION_ID_PARAMETER: Final = ("integration.request.header.ConnectionId", "context.connectionId")
# An HTTP backend sees only what is mapped: the id, and the query parameters the connect contract carries.
QUERY_PARAMETERS: Final = {
    f"integration.request.querystring.{name}": f"route.request.querystring.{name}"
    for name in ("token", "workspaceId")
}
# What a throttled stage is set to: the account-level limits (AWSDOCS limits: 10,000 requests a second, burst
# 5,000), the values AWS's own 2018 create-stage output shows; a stage limit cannot exceed them anyway.
SANE_THROTTLING: Final = {"ThrottlingBurstLimit": 5000, "ThrottlingRateLimit": 10000.0}
POLICY_PREFIX: Final = "kit-fix-"
MANAGEMENT_ENDPOINT: Final = "MANAGEMENT_ENDPOINT"  # the kit's handlers' variable (kit/handler/app.py)
PERMISSION_ID: Final = "kit-fix-apigateway-invoke"
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
        return _RENDER[self.operation][0](self.params)

    def boto3(self) -> list[str]:
        return _RENDER[self.operation][1](self.params)


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


def _arn_parts(arn: str) -> tuple[str, str, str]:
    """(partition, region, account) of an ARN."""
    parts = arn.split(":")
    if len(parts) < 5:
        raise ConfigurationError(f"{arn!r} is not an ARN; the fix needs the function's ARN.")
    return parts[1], parts[3], parts[4]


def _allow(sid: str, action: str, resource: str) -> str:
    statement = {"Sid": sid, "Effect": "Allow", "Action": [action], "Resource": [resource]}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _policy_change(function: pd.Series, evidence: Evidence, action: str, index: bool) -> Change:
    role = str(function["role"]).rsplit("/", 1)[-1]
    partition, _, account = _arn_parts(str(function["function_arn"]))
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
            f"Deploy the kit's fixed handler ({_handler_file(runtime)}, Handler app.handler) on function "
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
    partition, _, account = _arn_parts(str(function["function_arn"]))
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
    partition, _, account = _arn_parts(arn)
    stage = str(evidence.stage.iloc[0]["stage_name"])
    served = set(evidence.routes.loc[evidence.routes["function_arn"] == arn, "route_key"].dropna())
    route_key = CONNECT if served <= {CONNECT} else "*"
    source = policy.execute_api_route_arn(
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


def _handler_file(runtime: str) -> str:
    return "app.mjs" if runtime.startswith("nodejs") else "app.py"


def handler_package(runtime: str) -> bytes:
    """The kit's fixed handler as a deployment package for ``runtime`` (app.py or app.mjs at the root)."""
    name = _handler_file(runtime)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(HANDLER_DIR / name, arcname=name)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# Rendering (pure)


def _q(value: Any) -> str:
    return shlex.quote(value if isinstance(value, str) else json.dumps(value, separators=(",", ":")))


def _py(value: Any) -> str:
    return (
        repr(value)
        if not isinstance(value, str) or "\n" not in value
        else f"json.dumps({json.loads(value)!r})"
    )


def _cli_policy(p: Mapping[str, Any]) -> list[str]:
    compact = json.dumps(json.loads(p["PolicyDocument"]), separators=(",", ":"))
    return [
        f"aws iam put-role-policy --role-name {_q(p['RoleName'])} --policy-name {_q(p['PolicyName'])} "
        f"--policy-document {_q(compact)}"
    ]


def _boto_policy(p: Mapping[str, Any]) -> list[str]:
    document = json.loads(p["PolicyDocument"])
    return [
        f'boto3.client("iam").put_role_policy(RoleName={p["RoleName"]!r}, PolicyName={p["PolicyName"]!r}, '
        f"PolicyDocument=json.dumps({document!r}))"
    ]


def _cli_env(p: Mapping[str, Any]) -> list[str]:
    edits = [f"set {k} to {v}" for k, v in p["Set"].items()] + [f"remove {k}" for k in p["Remove"]]
    name = _q(p["FunctionName"])
    return [
        f"aws lambda get-function-configuration --function-name {name} --query Environment "
        "> environment.json",
        f"# edit environment.json: {', '.join(edits)} (keep every other variable as it is)",
        f"aws lambda update-function-configuration --function-name {name} "
        "--environment file://environment.json",
    ]


def _boto_env(p: Mapping[str, Any]) -> list[str]:
    lines = [
        'lam = boto3.client("lambda")',
        f"answer = lam.get_function_configuration(FunctionName={p['FunctionName']!r})",
        'variables = answer["Environment"]["Variables"]',
    ]
    lines += [f"variables[{k!r}] = {v!r}" for k, v in p["Set"].items()]
    lines += [f"variables.pop({k!r}, None)" for k in p["Remove"]]
    lines.append(
        f"lam.update_function_configuration(FunctionName={p['FunctionName']!r}, "
        'Environment={"Variables": variables})'
    )
    return lines


def _source_arn(region: str, account: str, api_id: str) -> str:
    return f"arn:aws:execute-api:{region}:{account}:{api_id}/*"


# A call: (service, boto3 operation, parameters); _NEW_INTEGRATION stands for the id the call before made.
_NEW_INTEGRATION: Final = object()
_ApiCall = tuple[str, str, dict[str, Any]]


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name)).replace(
        "_", "-"
    )


def _cli_call(call: _ApiCall) -> str:
    service, operation, params = call
    args = []
    for name, value in params.items():
        shown = "integrations/$INTEGRATION_ID" if value is _NEW_INTEGRATION else _q(value)
        args.append(f"--{_kebab(name)} {shown}")
    return f"aws {service} {operation.replace('_', '-')} {' '.join(args)}"


def _boto_call(call: _ApiCall) -> str:
    service, operation, params = call
    args = ", ".join(
        f'{k}="integrations/" + integration["IntegrationId"]' if v is _NEW_INTEGRATION else f"{k}={v!r}"
        for k, v in params.items()
    )
    return f'boto3.client("{service}").{operation}({args})'


def _route_calls(p: Mapping[str, Any]) -> list[_ApiCall]:
    arn = p["FunctionArn"]
    _, region, account = _arn_parts(arn)
    calls: list[_ApiCall] = []
    target: Any = f"integrations/{p['IntegrationId']}"
    if not p["IntegrationId"]:
        uri = lambda_integration_uri(region, arn)
        calls.append(
            (
                "apigatewayv2",
                "create_integration",
                {"ApiId": p["ApiId"], "IntegrationType": "AWS_PROXY", "IntegrationUri": uri},
            )
        )
        target = _NEW_INTEGRATION
    route_key = p.get("RouteKey", CONNECT)
    calls.append(
        ("apigatewayv2", "create_route", {"ApiId": p["ApiId"], "RouteKey": route_key, "Target": target})
    )
    calls.append(_permission_call(arn, PERMISSION_ID, _source_arn(region, account, p["ApiId"])))
    if p.get("Stage"):
        calls.append(("apigatewayv2", "create_deployment", {"ApiId": p["ApiId"], "StageName": p["Stage"]}))
    return calls


def _permission_call(function_arn: str, statement_id: str, source_arn: str) -> _ApiCall:
    """AddPermission: API Gateway may invoke the function for requests whose source is ``source_arn``."""
    return (
        "lambda",
        "add_permission",
        {
            "FunctionName": function_arn,
            "StatementId": statement_id,
            "Action": policy.INVOKE_FUNCTION,
            "Principal": policy.APIGATEWAY_PRINCIPAL,
            "SourceArn": source_arn,
        },
    )


def _cli_permission(p: Mapping[str, Any]) -> list[str]:
    return [_cli_call(_permission_call(p["FunctionName"], p["StatementId"], p["SourceArn"]))]


def _boto_permission(p: Mapping[str, Any]) -> list[str]:
    return [_boto_call(_permission_call(p["FunctionName"], p["StatementId"], p["SourceArn"]))]


def _cli_route(p: Mapping[str, Any]) -> list[str]:
    calls = _route_calls(p)
    lines = [_cli_call(c) for c in calls]
    if calls[0][1] == "create_integration":  # keep the new integration's id for the route
        lines[0] = f"INTEGRATION_ID=$({lines[0]} --query IntegrationId --output text)"
    return lines


def _boto_route(p: Mapping[str, Any]) -> list[str]:
    lines = [_boto_call(c) for c in _route_calls(p)]
    if lines[0].startswith('boto3.client("apigatewayv2").create_integration('):
        lines[0] = f"integration = {lines[0]}"
    return lines


def _integration_call(p: Mapping[str, Any]) -> _ApiCall:
    return ("apigatewayv2", "update_integration", dict(p))


def _cli_integration(p: Mapping[str, Any]) -> list[str]:
    return [_cli_call(_integration_call(p))]


def _boto_integration(p: Mapping[str, Any]) -> list[str]:
    return [_boto_call(_integration_call(p))]


def _api_call(p: Mapping[str, Any]) -> _ApiCall:
    return ("apigatewayv2", "update_api", dict(p))


def _cli_api(p: Mapping[str, Any]) -> list[str]:
    return [_cli_call(_api_call(p))]


def _boto_api(p: Mapping[str, Any]) -> list[str]:
    return [_boto_call(_api_call(p))]


def _deployment_call(p: Mapping[str, Any]) -> _ApiCall:
    return ("apigatewayv2", "create_deployment", {"ApiId": p["ApiId"], "StageName": p["StageName"]})


def _cli_deployment(p: Mapping[str, Any]) -> list[str]:
    return [_cli_call(_deployment_call(p))]


def _boto_deployment(p: Mapping[str, Any]) -> list[str]:
    return [_boto_call(_deployment_call(p))]


_CONNECT_SETTINGS: Final = f"RouteSettings[{CONNECT}]"


def _limits(p: Mapping[str, Any]) -> dict[str, Any]:
    return {name: p[name] for name in SANE_THROTTLING}


def _cli_throttling(p: Mapping[str, Any]) -> list[str]:
    names = f"--api-id {_q(p['ApiId'])} --stage-name {_q(p['StageName'])}"
    args = []
    if "DefaultRouteSettings" in p["Settings"]:
        args.append(f"--default-route-settings {_q(_limits(p))}")
    if _CONNECT_SETTINGS in p["Settings"]:
        args.append(f"--route-settings {_q({CONNECT: _limits(p)})}")
    return [
        f"# keep the settings' other fields: copy LoggingLevel, DataTraceEnabled, ... from aws apigatewayv2 "
        f"get-stage {names} into the JSON below",
        f"aws apigatewayv2 update-stage {names} {' '.join(args)}",
    ]


def _boto_throttling(p: Mapping[str, Any]) -> list[str]:
    lines = [
        'apigw = boto3.client("apigatewayv2")',
        f"stage = apigw.get_stage(ApiId={p['ApiId']!r}, StageName={p['StageName']!r})",
        f"limits = {_limits(p)!r}",
    ]
    args = []
    if "DefaultRouteSettings" in p["Settings"]:
        lines.append('defaults = {**stage.get("DefaultRouteSettings", {}), **limits}')
        args.append("DefaultRouteSettings=defaults")
    if _CONNECT_SETTINGS in p["Settings"]:
        lines.append('routes = stage.get("RouteSettings", {})')
        lines.append(f"routes[{CONNECT!r}] = {{**routes.get({CONNECT!r}, {{}}), **limits}}")
        args.append("RouteSettings=routes")
    lines.append(f"apigw.update_stage(ApiId={p['ApiId']!r}, StageName={p['StageName']!r}, {', '.join(args)})")
    return lines


def _cli_handler(p: Mapping[str, Any]) -> list[str]:
    file = _handler_file(str(p["Runtime"]))
    name = _q(p["FunctionName"])
    return [
        f"zip -j fixed-handler.zip kit/handler/{file}",
        f"aws lambda update-function-code --function-name {name} --zip-file fileb://fixed-handler.zip",
        f"aws lambda update-function-configuration --function-name {name} --handler app.handler",
    ]


def _boto_handler(p: Mapping[str, Any]) -> list[str]:
    return [
        'lam = boto3.client("lambda")',
        f"lam.update_function_code(FunctionName={p['FunctionName']!r}, "
        f"ZipFile=kit.fix.handler_package({p['Runtime']!r}))",
        f'lam.update_function_configuration(FunctionName={p["FunctionName"]!r}, Handler="app.handler")',
    ]


_RENDER: Final[
    dict[str, tuple[Callable[[Mapping[str, Any]], list[str]], Callable[[Mapping[str, Any]], list[str]]]]
] = {
    "put_role_policy": (_cli_policy, _boto_policy),
    "patch_environment": (_cli_env, _boto_env),
    "connect_route": (_cli_route, _boto_route),
    "update_integration": (_cli_integration, _boto_integration),
    "update_api": (_cli_api, _boto_api),
    "add_invoke_permission": (_cli_permission, _boto_permission),
    "deploy_stage": (_cli_deployment, _boto_deployment),
    "stage_throttling": (_cli_throttling, _boto_throttling),
    "deploy_fixed_handler": (_cli_handler, _boto_handler),
}
OPERATIONS: Final = tuple(_RENDER)


# The changes the kit makes on a real account; the fixed handler is a pattern to port there, never a
# replacement of the user's code.
ACCOUNT_OPERATIONS: Final = frozenset(
    {
        "put_role_policy",
        "patch_environment",
        "connect_route",
        "update_integration",
        "update_api",
        "add_invoke_permission",
        "deploy_stage",
        "stage_throttling",
    }
)


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


# --------------------------------------------------------------------------------------------------
# Applying (I/O, through the target's clients only)


@dataclass
class Applied:
    """What applying a fix did: every call made (as shown to the user), and the changes that undo it."""

    calls: list[str] = field(default_factory=list)
    undo: list[Change] = field(default_factory=list)  # run in reverse order
    saved: dict[str, bytes] = field(default_factory=dict)  # code packages the undo puts back, by key
    target: str = ""  # where it was applied (Target.label and API): an undo goes there, nowhere else

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "undo": [
                {"operation": c.operation, "summary": c.summary, "params": dict(c.params)} for c in self.undo
            ],
        }


def _call(target: Target, applied: Applied, service: str, operation: str, **params: Any) -> Any:
    shown = {k: ("<zip>" if k == "ZipFile" else v) for k, v in params.items()}
    applied.calls.append(f"{service}.{operation}({', '.join(f'{k}={v!r}' for k, v in shown.items())})")
    return getattr(target.client(service), operation)(**params)


def _apply_one(target: Target, change: Change, applied: Applied) -> None:  # noqa: PLR0915
    p = change.params
    op = change.operation
    if op == "put_role_policy":
        try:
            before = target.client("iam").get_role_policy(RoleName=p["RoleName"], PolicyName=p["PolicyName"])
            document = before["PolicyDocument"]
            undo = Change(
                "put_role_policy",
                f"Put policy {p['PolicyName']} back as it was.",
                {**p, "PolicyDocument": document if isinstance(document, str) else json.dumps(document)},
            )
        except Exception as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
            undo = Change(
                "delete_role_policy",
                f"Delete policy {p['PolicyName']}.",
                {"RoleName": p["RoleName"], "PolicyName": p["PolicyName"]},
            )
        _call(target, applied, "iam", "put_role_policy", **p)
        applied.undo.append(undo)
    elif op == "delete_role_policy":
        _call(target, applied, "iam", "delete_role_policy", **p)
    elif op == "patch_environment":
        lam = target.client("lambda")
        current = dict(
            (lam.get_function_configuration(FunctionName=p["FunctionName"]).get("Environment") or {}).get(
                "Variables"
            )
            or {}
        )
        touched = [*p["Set"], *p["Remove"]]
        undo = Change(
            "patch_environment",
            "Put the variables back as they were.",
            {
                "FunctionName": p["FunctionName"],
                "Set": {k: current[k] for k in touched if k in current},
                "Remove": [k for k in touched if k not in current],
            },
        )
        variables = {k: v for k, v in current.items() if k not in p["Remove"]} | dict(p["Set"])
        edits = [f"{k}={v}" for k, v in p["Set"].items()] + [f"without {k}" for k in p["Remove"]]
        applied.calls.append(
            f"lambda.update_function_configuration(FunctionName={p['FunctionName']!r}, "
            f"Environment=<its variables, {', '.join(edits)}>)"
        )
        lam.update_function_configuration(
            FunctionName=p["FunctionName"], Environment={"Variables": variables}
        )
        applied.undo.append(undo)
    elif op == "connect_route":
        integration = p["IntegrationId"]
        _, region, account = _arn_parts(p["FunctionArn"])
        if not integration:
            uri = lambda_integration_uri(region, p["FunctionArn"])
            made = _call(
                target,
                applied,
                "apigatewayv2",
                "create_integration",
                ApiId=p["ApiId"],
                IntegrationType="AWS_PROXY",
                IntegrationMethod="POST",
                IntegrationUri=uri,
            )
            integration = str(made["IntegrationId"])
            applied.undo.append(
                Change(
                    "delete_integration",
                    "Delete the integration the fix created.",
                    {"ApiId": p["ApiId"], "IntegrationId": integration},
                )
            )
        route_key = p.get("RouteKey", CONNECT)
        route = _call(
            target,
            applied,
            "apigatewayv2",
            "create_route",
            ApiId=p["ApiId"],
            RouteKey=route_key,
            Target=f"integrations/{integration}",
        )
        applied.undo.append(
            Change(
                "delete_route",
                f"Delete the {route_key} route the fix created.",
                {"ApiId": p["ApiId"], "RouteId": str(route["RouteId"])},
            )
        )
        _add_permission(
            target,
            applied,
            _permission_call(p["FunctionArn"], PERMISSION_ID, _source_arn(region, account, p["ApiId"])),
        )
        if p.get("Stage"):
            _deploy_stage_now(target, applied, p["ApiId"], p["Stage"])
    elif op == "add_invoke_permission":
        _add_permission(
            target, applied, _permission_call(p["FunctionName"], p["StatementId"], p["SourceArn"])
        )
    elif op == "deploy_stage":
        _deploy_stage_now(target, applied, p["ApiId"], p["StageName"])
    elif op == "point_stage":  # the undo of a deployment: the stage serves what it served before
        _call(
            target,
            applied,
            "apigatewayv2",
            "update_stage",
            ApiId=p["ApiId"],
            StageName=p["StageName"],
            DeploymentId=p["DeploymentId"],
        )
        _call(
            target, applied, "apigatewayv2", "delete_deployment", ApiId=p["ApiId"], DeploymentId=p["Created"]
        )
    elif op == "stage_throttling":
        _raise_throttling(target, applied, p)
    elif op == "stage_settings":  # the undo of stage_throttling: the settings as they were
        _call(target, applied, "apigatewayv2", "update_stage", **p)
    elif op in ("delete_route", "delete_integration"):
        _call(target, applied, "apigatewayv2", op, **p)
    elif op == "remove_permission":
        _call(target, applied, "lambda", "remove_permission", **p)
    elif op == "update_integration":
        before = target.client("apigatewayv2").get_integration(
            ApiId=p["ApiId"], IntegrationId=p["IntegrationId"]
        )
        previous = dict(before.get("RequestParameters") or {})
        added = [k for k in p["RequestParameters"] if k not in previous]
        # API Gateway v2 merges RequestParameters; an empty value removes a key it added.
        undo_params = {**previous, **dict.fromkeys(added, "")}
        _call(target, applied, "apigatewayv2", "update_integration", **p)
        applied.undo.append(
            Change(
                "update_integration",
                "Put the request parameters back.",
                {**p, "RequestParameters": undo_params},
            )
        )
    elif op == "update_api":
        before = target.client("apigatewayv2").get_api(ApiId=p["ApiId"])
        _call(target, applied, "apigatewayv2", "update_api", **p)
        applied.undo.append(
            Change(
                "update_api",
                "Put the route selection expression back.",
                {"ApiId": p["ApiId"], "RouteSelectionExpression": str(before["RouteSelectionExpression"])},
            )
        )
    elif op == "deploy_fixed_handler":
        lam = target.client("lambda")
        current = lam.get_function(FunctionName=p["FunctionName"])
        previous_handler = str(current["Configuration"].get("Handler") or "")
        key = f"code-{p['FunctionName']}"
        applied.saved[key] = download_code(
            p["FunctionName"],
            current["Code"]["Location"],
            "the fix keeps the code it replaces to undo the change, so it stops here; retry",
        )
        _deploy(target, applied, p["FunctionName"], handler_package(str(p["Runtime"])), "app.handler")
        applied.undo.append(
            Change(
                "restore_code",
                f"Put {p['FunctionName']}'s own code and Handler back.",
                {"FunctionName": p["FunctionName"], "Handler": previous_handler, "Saved": key},
            )
        )
    elif op == "restore_code":
        _deploy(target, applied, p["FunctionName"], applied.saved[p["Saved"]], p["Handler"])
    else:
        raise ConfigurationError(f"The fix has no operation {op!r}; this is a defect of the kit.")


def _raise_throttling(target: Target, applied: Applied, p: Mapping[str, Any]) -> None:
    """The stage's settings named in ``p["Settings"]`` with the new limits, their other fields as read now;
    the undo puts each settings object back as it was."""
    names = {"ApiId": p["ApiId"], "StageName": p["StageName"]}
    before = target.client("apigatewayv2").get_stage(**names)
    defaults = dict(before.get("DefaultRouteSettings") or {})
    routes = {key: dict(value) for key, value in (before.get("RouteSettings") or {}).items()}
    update: dict[str, Any] = {}
    if "DefaultRouteSettings" in p["Settings"]:
        update["DefaultRouteSettings"] = defaults | _limits(p)
    if _CONNECT_SETTINGS in p["Settings"]:
        update["RouteSettings"] = routes | {CONNECT: routes.get(CONNECT, {}) | _limits(p)}
    _call(target, applied, "apigatewayv2", "update_stage", **names, **update)
    previous = {"DefaultRouteSettings": defaults, "RouteSettings": routes}
    applied.undo.append(
        Change(
            "stage_settings",
            f"Put stage {p['StageName']}'s route settings back as they were.",
            {**names, **{name: previous[name] for name in update}},
        )
    )


def _add_permission(target: Target, applied: Applied, call: _ApiCall) -> None:
    """The statement added, and its removal recorded; the same statement already there is left alone
    (nothing to add, nothing to undo). A statement of that id granting another source is a one-line error:
    the fix would change nothing, and verifying it would fail without saying why."""
    service, operation, params = call
    try:
        _call(target, applied, service, operation, **params)
    except Exception as exc:
        if error_code(exc) != "ResourceConflictException":
            raise
        found = _statement_source(target, str(params["FunctionName"]), str(params["StatementId"]))
        if found != params["SourceArn"]:
            raise ConfigurationError(
                f"Function {params['FunctionName']} already has a statement {params['StatementId']} that "
                f"lets API Gateway invoke it for {found or 'another source'}, not {params['SourceArn']}; "
                f"remove it (aws lambda remove-permission --function-name {params['FunctionName']} "
                f"--statement-id {params['StatementId']}) and run the fix again."
            ) from exc
        return
    applied.undo.append(
        Change(
            "remove_permission",
            "Remove the invoke permission the fix added.",
            {"FunctionName": params["FunctionName"], "StatementId": params["StatementId"]},
        )
    )


def _statement_source(target: Target, function: str, statement_id: str) -> str | None:
    """The ``AWS:SourceArn`` of the function's resource-policy statement ``statement_id`` (None: none)."""
    document = json.loads(target.client("lambda").get_policy(FunctionName=function)["Policy"])
    for statement in document.get("Statement", []):
        if statement.get("Sid") == statement_id:
            source = statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")
            return str(source) if source is not None else None
    return None


def _deploy_stage_now(target: Target, applied: Applied, api_id: str, stage: str) -> None:
    """A new deployment the stage serves; its undo points the stage back at the one it served (none to undo
    for a stage that deploys itself: its DeploymentId cannot be chosen)."""
    before = target.client("apigatewayv2").get_stage(ApiId=api_id, StageName=stage)
    made = _call(target, applied, "apigatewayv2", "create_deployment", ApiId=api_id, StageName=stage)
    previous = before.get("DeploymentId")
    if previous and not before.get("AutoDeploy"):
        applied.undo.append(
            Change(
                "point_stage",
                f"Point stage {stage} back at deployment {previous}, and delete the fix's deployment.",
                {
                    "ApiId": api_id,
                    "StageName": stage,
                    "DeploymentId": str(previous),
                    "Created": str(made["DeploymentId"]),
                },
            )
        )


def _deploy(target: Target, applied: Applied, name: str, package: bytes, handler: str) -> None:
    """New code, then its Handler, each once Lambda has finished the update before it."""
    lam = target.client("lambda")
    _call(target, applied, "lambda", "update_function_code", FunctionName=name, ZipFile=package)
    _wait_updated(lam, name)
    _call(target, applied, "lambda", "update_function_configuration", FunctionName=name, Handler=handler)
    _wait_updated(lam, name)


def _wait_updated(lam: Any, name: str, timeout_s: float = 60) -> None:
    """Until the function's last update is done (Lambda refuses a second update while one is in progress)."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = lam.get_function_configuration(FunctionName=name).get("LastUpdateStatus", "Successful")
        if status != "InProgress":
            return
        time.sleep(0.5)


def where(target: Target) -> str:
    """The target a journal is bound to: its label and API (an undo elsewhere is refused)."""
    return f"{target.label} api {target.api_id or '-'}"


def apply(target: Target, fix: Fix, into: Applied | None = None) -> Applied:
    """Make the fix's changes on ``target`` (writable targets only), recording each call and its undo in
    ``into`` (a new record by default).

    A change that fails stops the rest; what was already done stays recorded in ``into``, so the caller can
    journal it and :func:`undo` can take it back."""
    target.require_writes(f"apply the fix for {fix.cause}")
    applied = into if into is not None else Applied()
    applied.target = where(target)
    from botocore.exceptions import BotoCoreError, ClientError

    from kit.errors import AwsError

    for change in fix.changes:
        try:
            _apply_one(target, change, applied)
        except (ClientError, BotoCoreError) as exc:
            raise AwsError.from_botocore(
                exc,
                "fix",
                change.operation,
                change.summary,
                otherwise="nothing after it was applied; `kit fix --undo` takes back what was",
            ) from exc
    return applied


def undo(target: Target, applied: Applied) -> Applied:
    """Run the recorded undo changes, last first; returns the calls made."""
    target.require_writes("undo the fix")
    if applied.target and applied.target != where(target):
        raise ConfigurationError(
            f"The last fix was applied to {applied.target}, not {where(target)}; undo it with the same "
            "--target, --profile, --region and API."
        )
    done = Applied(saved=applied.saved)
    for change in reversed(applied.undo):
        _apply_one(target, change, done)
    return done


# --------------------------------------------------------------------------------------------------
# Verifying: the fix applied, then the diagnosis again from that moment


@dataclass(frozen=True)
class Verdict:
    fixed: bool
    text: str
    before: str
    after: str


def verdict(fix: Fix, after: Diagnosis) -> Verdict:
    """ "fixed" only when nothing is wrong any more and the storage test passes (pure)."""
    root = str(after.root_cause["id"])
    verdicts = {str(r["check"]): str(r["verdict"]) for _, r in after.findings.iterrows()}
    stored = verdicts.get("probe") == "pass" or verdicts.get("direct-write") == "pass"
    if root == "none" and stored:
        return Verdict(True, "fixed: the root cause is gone and the storage test passes", fix.cause, root)
    if root == "none":
        return Verdict(
            False, "not enough: nothing fails, but no storage test ran (run with a probe)", fix.cause, root
        )
    summary = str(after.root_cause.get("summary", ""))
    return Verdict(False, f"not enough: the next cause is {root} ({summary})", fix.cause, root)


def verify(
    target: Target,
    fix: Fix,
    read: Callable[[Any, Mapping[str, bool]], Evidence],
    diagnose: Callable[[Evidence], Diagnosis],
    into: Applied | None = None,
) -> tuple[Verdict, Applied]:
    """Apply ``fix`` on ``target`` (the lab or a mirror), read the evidence again from then on with the fixed
    client (``read(since, client_settings)``), and judge. The fix stays applied; the undo is in ``into``."""
    from datetime import UTC, datetime

    since = datetime.now(UTC)
    applied = apply(target, fix, into)
    after = diagnose(read(since, fix.client))
    return verdict(fix, after), applied


def journal(applied: Applied, folder: Path) -> Path:
    """Write what undoes a fix under ``folder`` (the state dir's ``fixes/``): the undo changes as JSON and the
    code packages it puts back. No variable's value but the ones the fix set or restores."""
    import time

    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = folder / f"{stamp}.json"
    for key, data in applied.saved.items():
        (folder / f"{stamp}-{key}.zip").write_bytes(data)
    record = applied.as_dict() | {
        "saved": {key: f"{stamp}-{key}.zip" for key in applied.saved},
        "target": applied.target,
    }
    path.write_text(json.dumps(record, indent=2))
    (folder / "last").write_text(path.name)
    return path


def read_journal(folder: Path) -> Applied:
    """The last fix's undo, as :func:`journal` wrote it."""
    try:
        name = (folder / "last").read_text().strip()
        record = json.loads((folder / name).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"No applied fix is recorded in {folder}; nothing to undo.") from exc
    saved = {key: (folder / file).read_bytes() for key, file in record.get("saved", {}).items()}
    changes = [Change(c["operation"], c["summary"], c["params"]) for c in record.get("undo", [])]
    return Applied(
        calls=list(record.get("calls", [])), undo=changes, saved=saved, target=str(record.get("target", ""))
    )
