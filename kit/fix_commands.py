"""A fix's changes as a reader runs them: each operation rendered as AWS CLI commands and as boto3 calls.

    RENDER[operation] -> (cli(params), boto3(params))    pure: the lines ``Fix.text()`` shows for a change
    OPERATIONS, ACCOUNT_OPERATIONS                         what a fix may change; what the kit changes on a
                                                           real account (never the user's code)

The API calls a change makes (``permission_call`` and the others) are built here once, so what is shown and
what :mod:`kit.fix_apply` calls are the same calls. Pure: nothing here reaches AWS.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping
from typing import Any, Final

from kit import policy
from kit.config import lambda_integration_uri
from kit.diagnose.findings import CONNECT
from kit.errors import ConfigurationError

PERMISSION_ID: Final = "kit-fix-apigateway-invoke"
# What a throttled stage is set to: the account-level limits (AWSDOCS limits: 10,000 requests a second, burst
# 5,000), the values AWS's own 2018 create-stage output shows; a stage limit cannot exceed them anyway.
SANE_THROTTLING: Final = {"ThrottlingBurstLimit": 5000, "ThrottlingRateLimit": 10000.0}


def arn_parts(arn: str) -> tuple[str, str, str]:
    """(partition, region, account) of an ARN."""
    parts = arn.split(":")
    if len(parts) < 5:
        raise ConfigurationError(f"{arn!r} is not an ARN; the fix needs the function's ARN.")
    return parts[1], parts[3], parts[4]


def handler_file(runtime: str) -> str:
    return "app.mjs" if runtime.startswith("nodejs") else "app.py"


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


def source_arn(region: str, account: str, api_id: str) -> str:
    return f"arn:aws:execute-api:{region}:{account}:{api_id}/*"


# A call: (service, boto3 operation, parameters); _NEW_INTEGRATION stands for the id the call before made.
_NEW_INTEGRATION: Final = object()
ApiCall = tuple[str, str, dict[str, Any]]


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name)).replace(
        "_", "-"
    )


def _cli_call(call: ApiCall) -> str:
    service, operation, params = call
    args = []
    for name, value in params.items():
        shown = "integrations/$INTEGRATION_ID" if value is _NEW_INTEGRATION else _q(value)
        args.append(f"--{_kebab(name)} {shown}")
    return f"aws {service} {operation.replace('_', '-')} {' '.join(args)}"


def _boto_call(call: ApiCall) -> str:
    service, operation, params = call
    args = ", ".join(
        f'{k}="integrations/" + integration["IntegrationId"]' if v is _NEW_INTEGRATION else f"{k}={v!r}"
        for k, v in params.items()
    )
    return f'boto3.client("{service}").{operation}({args})'


def _route_calls(p: Mapping[str, Any]) -> list[ApiCall]:
    arn = p["FunctionArn"]
    _, region, account = arn_parts(arn)
    calls: list[ApiCall] = []
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
    calls.append(permission_call(arn, PERMISSION_ID, source_arn(region, account, p["ApiId"])))
    if p.get("Stage"):
        calls.append(("apigatewayv2", "create_deployment", {"ApiId": p["ApiId"], "StageName": p["Stage"]}))
    return calls


def permission_call(function_arn: str, statement_id: str, source_arn: str) -> ApiCall:
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
    return [_cli_call(permission_call(p["FunctionName"], p["StatementId"], p["SourceArn"]))]


def _boto_permission(p: Mapping[str, Any]) -> list[str]:
    return [_boto_call(permission_call(p["FunctionName"], p["StatementId"], p["SourceArn"]))]


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


def _integration_call(p: Mapping[str, Any]) -> ApiCall:
    return ("apigatewayv2", "update_integration", dict(p))


def _cli_integration(p: Mapping[str, Any]) -> list[str]:
    return [_cli_call(_integration_call(p))]


def _boto_integration(p: Mapping[str, Any]) -> list[str]:
    return [_boto_call(_integration_call(p))]


def _api_call(p: Mapping[str, Any]) -> ApiCall:
    return ("apigatewayv2", "update_api", dict(p))


def _cli_api(p: Mapping[str, Any]) -> list[str]:
    return [_cli_call(_api_call(p))]


def _boto_api(p: Mapping[str, Any]) -> list[str]:
    return [_boto_call(_api_call(p))]


def _deployment_call(p: Mapping[str, Any]) -> ApiCall:
    return ("apigatewayv2", "create_deployment", {"ApiId": p["ApiId"], "StageName": p["StageName"]})


def _cli_deployment(p: Mapping[str, Any]) -> list[str]:
    return [_cli_call(_deployment_call(p))]


def _boto_deployment(p: Mapping[str, Any]) -> list[str]:
    return [_boto_call(_deployment_call(p))]


CONNECT_SETTINGS: Final = f"RouteSettings[{CONNECT}]"


def limits(p: Mapping[str, Any]) -> dict[str, Any]:
    return {name: p[name] for name in SANE_THROTTLING}


def _cli_throttling(p: Mapping[str, Any]) -> list[str]:
    names = f"--api-id {_q(p['ApiId'])} --stage-name {_q(p['StageName'])}"
    args = []
    if "DefaultRouteSettings" in p["Settings"]:
        args.append(f"--default-route-settings {_q(limits(p))}")
    if CONNECT_SETTINGS in p["Settings"]:
        args.append(f"--route-settings {_q({CONNECT: limits(p)})}")
    return [
        f"# keep the settings' other fields: copy LoggingLevel, DataTraceEnabled, ... from aws apigatewayv2 "
        f"get-stage {names} into the JSON below",
        f"aws apigatewayv2 update-stage {names} {' '.join(args)}",
    ]


def _boto_throttling(p: Mapping[str, Any]) -> list[str]:
    lines = [
        'apigw = boto3.client("apigatewayv2")',
        f"stage = apigw.get_stage(ApiId={p['ApiId']!r}, StageName={p['StageName']!r})",
        f"limits = {limits(p)!r}",
    ]
    args = []
    if "DefaultRouteSettings" in p["Settings"]:
        lines.append('defaults = {**stage.get("DefaultRouteSettings", {}), **limits}')
        args.append("DefaultRouteSettings=defaults")
    if CONNECT_SETTINGS in p["Settings"]:
        lines.append('routes = stage.get("RouteSettings", {})')
        lines.append(f"routes[{CONNECT!r}] = {{**routes.get({CONNECT!r}, {{}}), **limits}}")
        args.append("RouteSettings=routes")
    lines.append(f"apigw.update_stage(ApiId={p['ApiId']!r}, StageName={p['StageName']!r}, {', '.join(args)})")
    return lines


def _cli_handler(p: Mapping[str, Any]) -> list[str]:
    file = handler_file(str(p["Runtime"]))
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


RENDER: Final[
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
OPERATIONS: Final = tuple(RENDER)


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
