"""The deployed configuration as frames: routes and integrations, functions, the stage, and the tables.

Causes 2 and 3 of the ranked list (the write goes to another table or region; ``$connect`` is not wired, or
an HTTP integration never passes the connection id) are visible in configuration alone. This module reads it
and lays it out one row per thing, with a ``problem`` column that says, in a sentence, what is wrong.

Fetch and shape are separate: ``fetch_api``, ``fetch_functions``, ``functions_for_api`` and ``fetch_tables``
call AWS through the target; ``routes_frame``, ``function_frame`` and ``stage_frame`` are pure and take the
answers as AWS gives them (tests feed recorded ones). The app's ``.env.local`` is compared with all of it in
:mod:`kit.env_check`.

What this module must not do: write to AWS (it only calls Get*/List* operations), create boto3 clients
(``Target.client`` does), or show a secret: environment values whose names look secret are masked as
``***``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from kit import frames, throttling
from kit.errors import AwsError, ConfigurationError, TargetNotFoundError, error_code, error_response
from kit.redact_structure import is_secret_variable
from kit.target import (
    DEFAULT_TABLE,
)

if TYPE_CHECKING:
    from kit.target import Target

log = logging.getLogger("kit.config")

# The routes the seed's API has (websocket-debugging.md); a missing one is a finding.
EXPECTED_ROUTE_KEYS: Final[tuple[str, ...]] = ("$connect", "$disconnect", "message", "presence", "typing")
MASK: Final = "***"
UTC_DTYPE: Final = frames.UTC_DTYPE

# An API's own endpoint on its execute-api host (https for @connections, wss for clients), e.g.
# https://abc123.execute-api.us-east-2.amazonaws.com/prod: the API id, its region and (when given) the stage.
EXECUTE_API_URL: Final = re.compile(
    r"^(?:https?|wss?)://(?P<api>[A-Za-z0-9]+)\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com"
    r"(?:/(?P<stage>[^/?#]*))?"
)

# One row per route, plus one per expected route that is missing.
ROUTES_COLUMNS: Final[dict[str, str]] = {
    "route_key": "string",
    "route_id": "string",  # NA for a missing route
    "target": "string",  # as written: integrations/<id>
    "integration_id": "string",
    "integration_type": "string",  # AWS_PROXY | HTTP_PROXY | HTTP | MOCK | AWS
    "integration_method": "string",
    "integration_uri": "string",
    "function_name": "string",  # from a Lambda integration URI
    "function_arn": "string",
    "request_parameters": "string",  # the integration's RequestParameters as JSON text; NA when none
    "connection_id_mapped": "boolean",  # HTTP integrations: is context.connectionId mapped? NA otherwise
    "authorization_type": "string",  # NONE | AWS_IAM | CUSTOM (a Lambda authorizer; $connect only)
    "authorizer_id": "string",
    "authorizer_name": "string",  # the authorizer the route names (GetAuthorizers); NA when none or unread
    "authorizer_function": "string",  # the Lambda function the authorizer invokes
    "authorizer_identity_source": "string",  # its IdentitySource, comma-separated
    "ok": "boolean",
    "problem": "string",  # every fault of the row, as sentences; NA when ok
}

# One row per function.
FUNCTION_COLUMNS: Final[dict[str, str]] = {
    "function_name": "string",
    "function_arn": "string",
    "region": "string",  # from the ARN: where the function runs
    "runtime": "string",
    "handler": "string",
    "role": "string",
    "timeout_s": "Int64",
    "memory_mb": "Int64",
    "state": "string",
    "last_update_status": "string",
    "log_format": "string",  # Text | JSON
    "log_level": "string",  # the application log level in effect
    "log_level_source": "string",  # where log_level comes from
    "log_group": "string",
    "table_name": "string",  # TABLE_NAME; NA when unset
    "table_region": "string",  # TABLE_REGION; NA when unset
    "environment": "string",  # all variables as JSON text, secret-looking values masked
    "last_modified": UTC_DTYPE,
    "problem": "string",
}

# One row per stage.
STAGE_COLUMNS: Final[dict[str, str]] = {
    "stage_name": "string",
    "deployment_id": "string",
    "auto_deploy": "boolean",
    "logging_level": "string",  # execution logs of the default route settings: OFF | ERROR | INFO
    "connect_logging_level": "string",  # the $connect route's own setting, else the default
    "data_trace": "boolean",
    "detailed_metrics": "boolean",
    "access_log_destination": "string",
    "access_log_format_present": "boolean",
    "access_log_connection_id": "boolean",  # does the format hold $context.connectionId?
    "access_log_status": "boolean",  # $context.status
    "access_log_integration_status": "boolean",  # $context.integration.status (or integrationStatus)
    "access_log_error": "boolean",  # $context.error.message
    "access_log_variables": "string",  # every $context variable in the format, comma-separated
    "last_updated": UTC_DTYPE,
    "deployment_created": UTC_DTYPE,  # the CreatedDate of the deployment the stage serves; NA when unread
    # The stage's throttling of $connect (kit.throttling.route_limit: RouteSettings["$connect"], else
    # DefaultRouteSettings, field by field); all NA when the stage sets no limit for it.
    "connect_throttle_rate": "Float64",
    "connect_throttle_burst": "Int64",
    "connect_throttle_source": "string",  # e.g. "DefaultRouteSettings", "RouteSettings[$connect]"
    "problem": "string",
}

_LAMBDA_PATH_URI = re.compile(
    r"^arn:[\w-]+:apigateway:[\w-]+:lambda:path/[^/]+/functions/(?P<arn>arn:[^/]+)/invocations$"
)
_LAMBDA_ARN = re.compile(
    r"^arn:[\w-]+:lambda:(?P<region>[\w-]+):\d{12}:function:(?P<name>[\w-]+)(?::[\w$-]+)?$"
)
_CONTEXT_VARIABLE = re.compile(r"\$context\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)")


def strip_metadata(answer: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key != "ResponseMetadata"}


# --------------------------------------------------------------------------------------------------
# Routes and integrations


def lambda_integration_uri(region: str, function_arn: str) -> str:
    """The integration URI API Gateway uses to invoke a Lambda function (the inverse of
    :func:`function_of_uri`)."""
    return f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations"


def function_of_uri(uri: str) -> tuple[str, str] | None:
    """``(function name, function ARN)`` of a Lambda integration URI (either form), else None."""
    match = _LAMBDA_PATH_URI.match(uri)
    arn = match["arn"] if match else uri
    function = _LAMBDA_ARN.match(arn)
    if function is None:
        return None
    return function["name"], arn


def _maps_connection_id(parameters: Mapping[str, Any]) -> bool:
    return any(
        isinstance(source, str) and source.strip().lstrip("$").lower() == "context.connectionid"
        for source in parameters.values()
    )


_MISSING_ROUTE: Final[dict[str, str]] = {
    "$connect": (
        "The API has no $connect route: API Gateway accepts every connection without invoking anything, "
        "so no connection is ever stored."
    ),
    "$disconnect": (
        "The API has no $disconnect route: closed connections are never deleted, so the table fills with "
        "stale rows."
    ),
}


def routes_frame(
    routes: Iterable[Mapping[str, Any]],
    integrations: Iterable[Mapping[str, Any]],
    authorizers: Iterable[Mapping[str, Any]] = (),
) -> pd.DataFrame:
    """One row per route with its integration, plus one per expected route that is missing (pure).

    ``routes``, ``integrations`` and ``authorizers`` are the ``Items`` of every page of ``get_routes``,
    ``get_integrations`` and ``get_authorizers`` (the route's authorizer, its function and identity source).
    ``problem`` names: a missing expected route, a route without a target, a target
    that is not ``integrations/<id>``, a dangling integration id, a Lambda integration whose URI names no
    function, an HTTP integration that does not map ``context.connectionId``. :data:`ROUTES_COLUMNS`.
    """
    by_id: dict[str, Mapping[str, Any]] = {}
    for integration in integrations:
        if isinstance(integration, Mapping) and integration.get("IntegrationId"):
            by_id[str(integration["IntegrationId"])] = integration
    authorizers_by_id = {
        str(a["AuthorizerId"]): a for a in authorizers if isinstance(a, Mapping) and a.get("AuthorizerId")
    }
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for route in routes:
        if not isinstance(route, Mapping):
            rows.append(
                {"problem": f"A get_routes item is a {type(route).__name__}, not an object.", "ok": False}
            )
            continue
        row = _route_row(route, by_id) | _authorizer_facts(route, authorizers_by_id)
        seen.add(str(row.get("route_key")))
        rows.append(row)
    for route_key in EXPECTED_ROUTE_KEYS:
        if route_key not in seen:
            problem = _MISSING_ROUTE.get(
                route_key,
                f"The API has no {route_key} route: frames with action {route_key!r} go to $default, or are "
                "answered Forbidden when there is none.",
            )
            rows.append({"route_key": route_key, "ok": False, "problem": problem})
    order = {key: position for position, key in enumerate(EXPECTED_ROUTE_KEYS)}
    rows.sort(key=lambda r: (order.get(str(r.get("route_key")), len(order)), str(r.get("route_key") or "")))
    return frames.from_rows(rows, ROUTES_COLUMNS)


def _authorizer_facts(
    route: Mapping[str, Any], authorizers: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The route's authorization: its type and, for a Lambda authorizer, which function reads which source."""
    facts: dict[str, Any] = {"authorization_type": route.get("AuthorizationType") or "NONE"}
    authorizer_id = route.get("AuthorizerId")
    if facts["authorization_type"] != "CUSTOM" or not authorizer_id:
        return facts
    facts["authorizer_id"] = str(authorizer_id)
    authorizer = authorizers.get(str(authorizer_id))
    if authorizer is not None:
        function = function_of_uri(str(authorizer.get("AuthorizerUri") or ""))
        sources = authorizer.get("IdentitySource") or []
        facts |= {
            "authorizer_name": authorizer.get("Name"),
            "authorizer_function": function[0] if function else None,
            "authorizer_identity_source": ", ".join(sources) if isinstance(sources, list) else str(sources),
        }
    return facts


def _route_row(route: Mapping[str, Any], integrations: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    route_key = str(route.get("RouteKey") or "")
    target = route.get("Target")
    row: dict[str, Any] = {
        "route_key": route_key or None,
        "route_id": route.get("RouteId"),
        "target": target,
        "authorization_type": route.get("AuthorizationType") or "NONE",
    }
    problems: list[str] = []
    invokes = "no connection is stored" if route_key == "$connect" else "nothing is invoked"
    if not route_key:
        problems.append("A route has no RouteKey.")
    if not target:
        problems.append(
            f"Route {route_key} has no integration target, so API Gateway invokes nothing ({invokes})."
        )
    else:
        prefix, _, integration_id = str(target).partition("/")
        if prefix != "integrations" or not integration_id:
            problems.append(
                f"Route {route_key} has target {target!r}, which is not 'integrations/<IntegrationId>'."
            )
        else:
            row["integration_id"] = integration_id
            integration = integrations.get(integration_id)
            if integration is None:
                problems.append(
                    f"Route {route_key} targets integration {integration_id}, which get_integrations does "
                    f"not list (deleted, or another API's), so {invokes}."
                )
            else:
                problems.extend(_integration_facts(route_key, integration, row))
    row["ok"] = not problems
    row["problem"] = " ".join(problems) or None
    return row


def _integration_facts(route_key: str, integration: Mapping[str, Any], row: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    kind = str(integration.get("IntegrationType") or "")
    uri = str(integration.get("IntegrationUri") or "")
    parameters = integration.get("RequestParameters")
    row |= {
        "integration_type": kind or None,
        "integration_method": integration.get("IntegrationMethod"),
        "integration_uri": uri or None,
    }
    if isinstance(parameters, Mapping) and parameters:
        row["request_parameters"] = json.dumps(dict(parameters), sort_keys=True)
    elif parameters is not None and not isinstance(parameters, Mapping):
        problems.append(
            f"Integration {integration.get('IntegrationId')} has RequestParameters that are not a map."
        )
    function = function_of_uri(uri)
    if function is not None:
        row["function_name"], row["function_arn"] = function
    elif kind == "AWS_PROXY" and "${stageVariables." not in uri:
        problems.append(
            f"Route {route_key} uses an AWS_PROXY integration whose URI names no Lambda function."
        )
    if kind in ("HTTP", "HTTP_PROXY"):
        mapped = isinstance(parameters, Mapping) and _maps_connection_id(parameters)
        row["connection_id_mapped"] = mapped
        if not mapped:
            problems.append(
                f"Route {route_key} goes to an {kind} integration ({uri or 'no URI'}) whose "
                "RequestParameters do not map context.connectionId (e.g. "
                "integration.request.header.connectionId), so the backend never learns the connection id "
                "and cannot store the connection or post to it."
            )
    return problems


@dataclass(frozen=True)
class ApiAnswers:
    """What ``fetch_api`` read: ``get_api`` and every page of routes, integrations and stages.

    ``found_by`` says how the API was chosen when no id was given (the only WebSocket API of the region);
    empty when the caller named it.
    """

    api: Mapping[str, Any]
    routes: list[dict[str, Any]] = field(default_factory=list)
    integrations: list[dict[str, Any]] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)
    found_by: str = ""
    authorizers: list[dict[str, Any]] = field(default_factory=list)  # read only when a route names one

    @property
    def api_id(self) -> str:
        return str(self.api.get("ApiId", ""))

    @property
    def selection_expression(self) -> str:
        """The API's RouteSelectionExpression; "" when get_api had none."""
        return str(self.api.get("RouteSelectionExpression") or "")

    def stage(self, name: str | None) -> dict[str, Any] | None:
        """The stage called ``name``, or None."""
        return next((s for s in self.stages if s.get("StageName") == name), None)

    def settled(self, api_id: str | None, stage: str | None) -> tuple[str | None, str]:
        """The stage the checks should name, and why it differs from ``stage`` ("" when it does not) (pure).

        An API found by listing takes its only stage; a stage the API does not have (a custom domain's base
        path read as one) gives way to the API's only stage, or to none when it has several."""
        names = [str(s.get("StageName")) for s in self.stages]
        if self.found_by:
            chosen = self.chosen_stage(None)
            return (str(chosen["StageName"]) if chosen else None), f"API {self.api_id}: {self.found_by}"
        if stage is None or stage in names:
            return stage, ""
        only = names[0] if len(names) == 1 else None
        instead = f"its only stage, {only}" if only else f"none of its stages ({', '.join(names) or 'none'})"
        where = f"API {api_id or self.api_id} has no stage {stage!r} (from the URL's path)"
        return only, f"{where}; the kit reads {instead}"

    def stage_for(self, api_id: str | None, stage: str | None) -> dict[str, Any] | None:
        """The stage answer the checks read for a target's API and stage (:meth:`settled`)."""
        return self.chosen_stage(self.settled(api_id, stage)[0])

    def chosen_stage(self, name: str | None) -> dict[str, Any] | None:
        """The stage called ``name``; with no name, the API's only stage (None when it has several)."""
        if name:
            return self.stage(name)
        return self.stages[0] if len(self.stages) == 1 else None


def _apigateway_error(exc: Exception, operation: str, api_id: str | None, target: Target) -> AwsError:
    return AwsError.from_botocore(
        exc,
        "apigatewayv2",
        operation,
        api_id,
        resource_type="API" if api_id else "",
        region=target.region,
        hints={
            "NotFoundException": (
                f"check the API id (from the WebSocket URL) and that it lives in {target.region}"
            )
        },
        otherwise="check the credentials (apigateway:GET is needed) and the network",
    )


def websocket_apis(target: Target) -> list[dict[str, Any]]:
    """Every WebSocket API of the target's region (``get_apis``, every page), as AWS gives them."""
    client = target.client("apigatewayv2")
    try:
        return [
            dict(item)
            for page in client.get_paginator("get_apis").paginate()
            for item in page.get("Items", [])
            if str(item.get("ProtocolType", "")).upper() == "WEBSOCKET"
        ]
    except (ClientError, BotoCoreError) as exc:
        raise _apigateway_error(exc, "GetApis", None, target) from exc


def choose_api(apis: list[dict[str, Any]], region: str) -> tuple[str, str]:
    """(API id, how it was found) when the caller named none: the region's only WebSocket API (pure).

    None at all is a :class:`TargetNotFoundError` (the target is wrong, not the stack); several is a
    ``ConfigurationError`` naming them, since guessing would diagnose someone else's API.
    """
    if not apis:
        raise TargetNotFoundError(
            f"No WebSocket API exists in {region} for these credentials; check the region (--region) and the "
            "account (--profile), or give the WebSocket URL (--websocket-url) or --api-id."
        )
    if len(apis) > 1:
        named = ", ".join(f"{a.get('ApiId')} ({a.get('Name', '')})" for a in apis[:10])
        more = f" and {len(apis) - 10} more" if len(apis) > 10 else ""
        raise ConfigurationError(
            f"{len(apis)} WebSocket APIs exist in {region}: {named}{more}; say which with --api-id or the "
            "WebSocket URL (--websocket-url)."
        )
    only = apis[0]
    return str(
        only["ApiId"]
    ), f"the only WebSocket API in {region} ({only.get('Name', '')}), found by listing"


def fetch_api(target: Target, api_id: str | None = None) -> ApiAnswers:
    """``get_api``, then every page of ``get_routes``, ``get_integrations`` and ``get_stages`` (and of
    ``get_authorizers`` when a route names an authorizer).

    With no id (none given, none in the target), the region's only WebSocket API (:func:`choose_api`). An id
    the region does not have is a :class:`TargetNotFoundError`.
    """
    api_id = api_id or target.api_id
    found_by = ""
    if not api_id:
        api_id, found_by = choose_api(websocket_apis(target), target.region)
    client = target.client("apigatewayv2")
    operation = "GetApi"
    try:
        api = strip_metadata(client.get_api(ApiId=api_id))
        collected: dict[str, list[dict[str, Any]]] = {}
        for name, step in (
            ("get_routes", "GetRoutes"),
            ("get_integrations", "GetIntegrations"),
            ("get_stages", "GetStages"),
        ):
            operation = step
            collected[name] = [
                dict(item)
                for page in client.get_paginator(name).paginate(ApiId=api_id)
                for item in page.get("Items", [])
            ]
        operation = "GetAuthorizers"
        authorizers = (
            _authorizers(client, api_id)
            if any(r.get("AuthorizerId") for r in collected["get_routes"])
            else []
        )
    except (ClientError, BotoCoreError) as exc:
        error = _apigateway_error(exc, operation, api_id, target)
        if error.code == "NotFoundException" and operation == "GetApi":
            raise TargetNotFoundError(str(error)) from exc
        raise error from exc
    return ApiAnswers(
        api,
        collected["get_routes"],
        collected["get_integrations"],
        collected["get_stages"],
        found_by,
        authorizers,
    )


def _authorizers(client: Any, api_id: str) -> list[dict[str, Any]]:
    """Every page of ``get_authorizers`` (botocore has no paginator for it)."""
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = client.get_authorizers(ApiId=api_id, **({"NextToken": token} if token else {}))
        found += [dict(item) for item in page.get("Items", [])]
        token = page.get("NextToken")
        if not token:
            return found


def functions_for_api(target: Target, answers: ApiAnswers | None = None) -> list[str]:
    """The names of the Lambda functions the API's routes invoke, in route order, each once."""
    answers = answers or fetch_api(target)
    frame = routes_frame(answers.routes, answers.integrations, answers.authorizers)
    return list(dict.fromkeys(str(name) for name in frame["function_name"].dropna()))


# --------------------------------------------------------------------------------------------------
# Functions


def mask_environment(variables: Mapping[str, Any]) -> dict[str, str]:
    """The variables, each secret one (:func:`kit.redact_structure.is_secret_variable`) shown as ``***``."""
    return {str(k): MASK if is_secret_variable(str(k)) else str(v) for k, v in sorted(variables.items())}


def _log_level(answer: Mapping[str, Any], variables: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """(log format, log level in effect, where it comes from)."""
    logging_config = answer.get("LoggingConfig")
    config = logging_config if isinstance(logging_config, Mapping) else {}
    log_format = str(config.get("LogFormat") or "Text")
    if log_format == "JSON":
        level = config.get("ApplicationLogLevel")
        if level:
            return log_format, str(level), "LoggingConfig.ApplicationLogLevel"
        return log_format, "INFO", "JSON log format default"
    if variables.get("AWS_LAMBDA_LOG_LEVEL"):
        return log_format, str(variables["AWS_LAMBDA_LOG_LEVEL"]).upper(), "AWS_LAMBDA_LOG_LEVEL"
    if str(answer.get("Runtime") or "").startswith("python"):
        # The Python runtime leaves the root logger at WARNING: logger.info lines never reach CloudWatch.
        return log_format, "WARNING", "Python runtime default (root logger)"
    return log_format, "", None


def function_frame(answer: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per ``get_function_configuration`` answer (one answer or several), secrets masked (pure).

    An answer that is an error record (``{"FunctionName": …, "Error": {"Code": …}}``, as
    :func:`fetch_functions` keeps it) gives a row with only the name and ``problem``.
    :data:`FUNCTION_COLUMNS`.
    """
    answers = [answer] if isinstance(answer, Mapping) else list(answer)
    rows: list[dict[str, Any]] = []
    for item in answers:
        if not isinstance(item, Mapping):
            rows.append({"problem": f"A function answer is a {type(item).__name__}, not an object."})
            continue
        rows.append(_function_row(item))
    return frames.from_rows(rows, FUNCTION_COLUMNS)


def _function_row(answer: Mapping[str, Any]) -> dict[str, Any]:
    name = answer.get("FunctionName")
    error = answer.get("Error")
    if isinstance(error, Mapping):
        code = error.get("Code", "Unknown")
        message = str(error.get("Message") or "").rstrip(".")
        return {
            "function_name": name,
            "problem": f"GetFunctionConfiguration failed with {code}{': ' + message if message else ''}.",
        }
    problems: list[str] = []
    environment = answer.get("Environment")
    raw_variables = environment.get("Variables") if isinstance(environment, Mapping) else None
    if raw_variables is not None and not isinstance(raw_variables, Mapping):
        problems.append("Environment.Variables is not a map.")
    variables: Mapping[str, Any] = raw_variables if isinstance(raw_variables, Mapping) else {}
    if isinstance(environment, Mapping) and environment.get("Error"):
        problems.append("Lambda could not decrypt or apply the environment (Environment.Error).")
    arn = str(answer.get("FunctionArn") or "")
    arn_parts = arn.split(":")
    region = arn_parts[3] if arn.startswith("arn:") and len(arn_parts) > 3 else None
    log_format, log_level, source = _log_level(answer, variables)
    logging_config = answer.get("LoggingConfig")
    log_group = logging_config.get("LogGroup") if isinstance(logging_config, Mapping) else None
    if not name:
        problems.append("The answer has no FunctionName.")
    if variables.get("TABLE_NAME") in (None, ""):
        problems.append(f"TABLE_NAME is not set; the seed's handler then writes to {DEFAULT_TABLE}.")
    state = answer.get("State")
    if state not in (None, "Active"):
        problems.append(
            f"The function is {state}, not Active"
            + (f": {answer['StateReason']}." if answer.get("StateReason") else ".")
        )
    return {
        "function_name": name,
        "function_arn": arn or None,
        "region": region,
        "runtime": answer.get("Runtime"),
        "handler": answer.get("Handler"),
        "role": answer.get("Role"),
        "timeout_s": _int_or_none(answer.get("Timeout")),
        "memory_mb": _int_or_none(answer.get("MemorySize")),
        "state": state,
        "last_update_status": answer.get("LastUpdateStatus"),
        "log_format": log_format,
        "log_level": log_level or None,
        "log_level_source": source,
        "log_group": log_group or (f"/aws/lambda/{name}" if name else None),
        "table_name": variables.get("TABLE_NAME") or None,
        "table_region": variables.get("TABLE_REGION") or None,
        "environment": json.dumps(mask_environment(variables), sort_keys=True),
        "last_modified": answer.get("LastModified"),
        "problem": " ".join(problems) or None,
    }


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def fetch_functions(target: Target, function_names: Iterable[str]) -> list[dict[str, Any]]:
    """``get_function_configuration`` for each name or ARN; a failure is kept as an error record."""
    client = target.client("lambda")
    answers: list[dict[str, Any]] = []
    for name in dict.fromkeys(function_names):
        try:
            answers.append(strip_metadata(client.get_function_configuration(FunctionName=name)))
        except (ClientError, BotoCoreError) as exc:
            answers.append({"FunctionName": name, "Error": dict(error_response(exc).get("Error", {}))})
    return answers


def fetch_function_policy(target: Target, function: str) -> str | None:
    """``GetPolicy``: the function's resource policy (who may invoke it) as JSON text; None when it has
    none (``ResourceNotFoundException``, which is itself the evidence: nobody may invoke it). Any other
    failure, AccessDenied included, raises: a policy not read is not a policy that is missing."""
    try:
        return str(target.client("lambda").get_policy(FunctionName=function)["Policy"])
    except (ClientError, BotoCoreError) as exc:
        if isinstance(exc, ClientError) and error_code(exc) == "ResourceNotFoundException":
            return None
        raise AwsError.from_botocore(
            exc,
            "lambda",
            "GetPolicy",
            function,
            resource_type="function",
            region=target.region,
            hints={
                "AccessDeniedException": "let the kit's identity read the function's resource policy "
                "(lambda:GetPolicy); until then whether API Gateway may invoke it is not known"
            },
        ) from exc


# --------------------------------------------------------------------------------------------------
# Stage


def access_log_variables(log_format: str) -> list[str]:
    """The ``$context`` variables an access-log format uses, in order, each once."""
    return list(dict.fromkeys(m.rstrip(".") for m in _CONTEXT_VARIABLE.findall(log_format)))


def stage_frame(
    stage: Mapping[str, Any] | Iterable[Mapping[str, Any]],
    deployments: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """One row per ``get_stage`` answer (one, or the ``Items`` of ``get_stages``); pure.

    :data:`STAGE_COLUMNS`; ``problem`` names missing access logging, a format without the variables that
    tell the causes apart, and execution logging that is OFF for ``$connect``. ``deployments`` are
    ``get_deployment`` answers by id, for each stage's ``deployment_created``.
    """
    stages = [stage] if isinstance(stage, Mapping) else list(stage)
    rows = [
        _stage_row(item) if isinstance(item, Mapping) else {"problem": "A stage answer is not an object."}
        for item in stages
    ]
    for row in rows:
        deployment = (deployments or {}).get(str(row.get("deployment_id")))
        row["deployment_created"] = deployment.get("CreatedDate") if deployment else None
    return frames.from_rows(rows, STAGE_COLUMNS)


def fetch_deployment(target: Target, api_id: str, deployment_id: str) -> dict[str, Any]:
    """``get_deployment``: when the stage's deployment was created (AWS shows nothing of what it holds)."""
    try:
        return strip_metadata(
            target.client("apigatewayv2").get_deployment(ApiId=api_id, DeploymentId=deployment_id)
        )
    except (ClientError, BotoCoreError) as exc:
        raise _apigateway_error(exc, "GetDeployment", api_id, target) from exc


def _stage_row(stage: Mapping[str, Any]) -> dict[str, Any]:
    defaults = stage.get("DefaultRouteSettings")
    defaults = defaults if isinstance(defaults, Mapping) else {}
    route_settings = stage.get("RouteSettings")
    connect = route_settings.get("$connect") if isinstance(route_settings, Mapping) else None
    level = str(defaults.get("LoggingLevel") or "OFF")
    connect_level = (
        str(connect.get("LoggingLevel"))
        if isinstance(connect, Mapping) and connect.get("LoggingLevel")
        else level
    )
    access = stage.get("AccessLogSettings")
    access = access if isinstance(access, Mapping) else {}
    log_format = str(access.get("Format") or "")
    variables = access_log_variables(log_format)
    has = set(variables)
    problems: list[str] = []
    destination = access.get("DestinationArn")
    if not destination:
        problems.append("No access logging: nothing records each connection's status and integration status.")
    elif not log_format:
        problems.append("Access logging has a destination but no format.")
    else:
        missing = [
            name
            for name, present in (
                ("$context.connectionId", "connectionId" in has),
                ("$context.status", "status" in has),
                (
                    "$context.integration.status",
                    bool(has & {"integration.status", "integrationStatus", "integration.integrationStatus"}),
                ),
            )
            if not present
        ]
        if missing:
            problems.append(f"The access-log format lacks {', '.join(missing)}.")
    if connect_level == "OFF":
        problems.append(
            "Execution logging is OFF for $connect: there is no 'Received response. Status' line to compare "
            "with the Lambda's log."
        )
    try:
        connect_limit = throttling.route_limit(stage, "$connect")
    except (TypeError, ValueError):  # a value that is no number: shown as a problem, not a crash
        connect_limit = None
        problems.append("The stage's throttling settings for $connect are not numbers.")
    return {
        "connect_throttle_rate": connect_limit.rate if connect_limit else None,
        "connect_throttle_burst": connect_limit.burst if connect_limit else None,
        "connect_throttle_source": connect_limit.source if connect_limit else None,
        "stage_name": stage.get("StageName"),
        "deployment_id": stage.get("DeploymentId"),
        "auto_deploy": stage.get("AutoDeploy") if isinstance(stage.get("AutoDeploy"), bool) else None,
        "logging_level": level,
        "connect_logging_level": connect_level,
        "data_trace": bool(defaults.get("DataTraceEnabled", False)),
        "detailed_metrics": bool(defaults.get("DetailedMetricsEnabled", False)),
        "access_log_destination": destination,
        "access_log_format_present": bool(log_format),
        "access_log_connection_id": "connectionId" in has,
        "access_log_status": "status" in has,
        "access_log_integration_status": bool(
            has & {"integration.status", "integrationStatus", "integration.integrationStatus"}
        ),
        "access_log_error": "error.message" in has or "error.messageString" in has,
        "access_log_variables": ", ".join(variables) or None,
        "last_updated": stage.get("LastUpdatedDate"),
        "problem": " ".join(problems) or None,
    }


# --------------------------------------------------------------------------------------------------
# Tables


def fetch_tables(target: Target, regions: Iterable[str] | None = None) -> dict[str, list[str]]:
    """The table names in each region (``list_tables``, every page); default: the target's region."""
    found: dict[str, list[str]] = {}
    for region in dict.fromkeys(regions or [target.region]):
        regional = target if region == target.region else replace(target, region=region)
        try:
            pages = regional.client("dynamodb").get_paginator("list_tables").paginate()
            found[region] = [str(name) for page in pages for name in page.get("TableNames", [])]
        except (ClientError, BotoCoreError) as exc:
            raise AwsError.from_botocore(
                exc,
                "dynamodb",
                "ListTables",
                region=region,
                otherwise="the kit's identity needs dynamodb:ListTables (read-only) to say whether the app's "
                "table exists",
            ) from exc
    return found
