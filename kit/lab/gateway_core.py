"""The lab gateway's decisions: everything API Gateway WebSocket APIs decide, as plain functions.

The lab emulates an API Gateway WebSocket API. This module is its sans-I/O core, the way
``websockets.protocol`` is the core of that library: facts in, decisions out. The asyncio shell
built on ``websockets`` asks it which route a frame takes, which event dict a Lambda receives, what
an HTTP backend receives, whether an upgrade is accepted and with which status, which text frame
or close code a client gets, when a connection times out, and what each @connections request
answers. The shell then does what the answer says.

This module must not do I/O: no sockets, no files, no clocks (times come in as epoch
milliseconds), no global randomness (a ``random.Random`` is passed in), and it never imports
``websockets``, ``asyncio`` or ``boto3``. Tests drive it with plain calls.

The behaviour follows the reference notes on API Gateway (event shapes from real captures, routing
and failure semantics, @connections wire contract, limits). Where AWS behaviour is not documented,
the choice made here is marked "Inferred" in the docstring or comment next to it; the log wording
lives in :mod:`kit.lab.gateway_logs`.

Sections: ids and times; configuration snapshot; route selection; events; integrations (Lambda
proxy results, HTTP_PROXY requests); handshake, message and disconnect outcomes; inbound limits and
close codes; timers; connection registry; @connections.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any, Literal
from urllib.parse import quote, unquote

from kit.errors import ConfigurationError, KitError

# ---------------------------------------------------------------------------------------------
# Ids and times
# ---------------------------------------------------------------------------------------------

_CONNECTION_ID = re.compile(r"[A-Za-z0-9_-]{15}=")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Fixed English abbreviations: strftime("%b") follows the process locale, AWS's CLF does not.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Real request ids share their first characters with the connection id they were minted with.
_SHARED_ID_PREFIX = 5


def _new_id(rng: Random) -> str:
    # Real ids are the base64 text of 11 bytes: 15 characters, then one "=" of padding.
    return base64.urlsafe_b64encode(rng.getrandbits(88).to_bytes(11, "big")).decode("ascii")


def new_connection_id(rng: Random) -> str:
    """A connection id in AWS's shape, e.g. ``BFHPhfCWIAMCKlQ=`` (15 of [A-Za-z0-9_-], then ``=``)."""
    return _new_id(rng)


def new_request_id(rng: Random, *, like: str | None = None) -> str:
    """A request id (also used as extendedRequestId and messageId) in the connection id's shape.

    With ``like`` (the connection id, on CONNECT) the first five characters are copied, as in real
    captures where ``BFHPhfCWIAMCKlQ=`` was connected by request ``BFHPhFe3IAMF95g=``.
    """
    fresh = _new_id(rng)
    if like is None:
        return fresh
    return like[:_SHARED_ID_PREFIX] + fresh[_SHARED_ID_PREFIX:]


def is_valid_connection_id(value: str) -> bool:
    """Whether ``value`` has AWS's connection id shape; @connections answers 400 for others."""
    return _CONNECTION_ID.fullmatch(value) is not None


def new_trace_id(rng: Random, now_ms: int) -> str:
    """An ``X-Amzn-Trace-Id`` value: ``Root=1-<epoch seconds, 8 hex>-<96 random bits, 24 hex>``."""
    return f"Root=1-{now_ms // 1000:08x}-{rng.getrandbits(96):024x}"


def _utc(epoch_ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=epoch_ms)


def clf_time(epoch_ms: int) -> str:
    """``requestTime`` in AWS's common-log form, e.g. ``11/Nov/2024:11:35:24 +0000``."""
    t = _utc(epoch_ms)
    return f"{t.day:02d}/{_MONTHS[t.month - 1]}/{t.year:04d}:{t.hour:02d}:{t.minute:02d}:{t.second:02d} +0000"


def iso8601(epoch_ms: int) -> str:
    """An ISO 8601 UTC time with milliseconds, as GetConnection answers: ``2024-11-11T11:35:24.553Z``."""
    t = _utc(epoch_ms)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{epoch_ms % 1000:03d}Z"


# ---------------------------------------------------------------------------------------------
# Configuration snapshot (built from apigatewayv2 get_api / get_routes / get_integrations / get_stage)
# ---------------------------------------------------------------------------------------------

LoggingLevel = Literal["OFF", "ERROR", "INFO"]
_LOGGING_LEVELS: dict[str, LoggingLevel] = {"OFF": "OFF", "ERROR": "ERROR", "INFO": "INFO"}
DEFAULT_INTEGRATION_TIMEOUT_MS = 29_000  # the maximum AWS allows for WebSocket integrations


@dataclass(frozen=True)
class StageConfig:
    """The deployed stage: access-log settings and execution-log settings of its default route."""

    name: str
    access_log_destination_arn: str | None = None
    access_log_format: str | None = None
    logging_level: LoggingLevel = "OFF"
    data_trace: bool = False


@dataclass(frozen=True)
class RouteConfig:
    """One route. ``target_integration_id`` is None when the route has no integration."""

    route_key: str
    target_integration_id: str | None = None
    route_response_selection_expression: str | None = None
    authorization_type: str = "NONE"  # NONE | AWS_IAM | CUSTOM, as the deployment captured the route

    @property
    def two_way(self) -> bool:
        """Whether the integration's body goes back to the client (route response ``$default``).

        Inferred: AWS also needs a ``$default`` RouteResponse resource, which get_routes does not
        show; the lab takes the selection expression as the signal, as serverless-offline does.
        """
        return self.route_response_selection_expression == "$default"


@dataclass(frozen=True)
class IntegrationConfig:
    """One integration: ``AWS_PROXY`` (Lambda) or ``HTTP_PROXY``; other types are kept as read."""

    integration_id: str
    integration_type: str
    uri: str
    request_parameters: Mapping[str, str] = field(default_factory=dict)
    timeout_ms: int = DEFAULT_INTEGRATION_TIMEOUT_MS
    method: str = "POST"


@dataclass(frozen=True)
class ApiConfig:
    """What the gateway needs to know about one WebSocket API and the stage it serves."""

    api_id: str
    route_selection_expression: str
    routes: Mapping[str, RouteConfig]
    stage: StageConfig
    integrations: Mapping[str, IntegrationConfig] = field(default_factory=dict)


def _target_integration_id(route: Mapping[str, Any], api_id: str) -> str | None:
    target = route.get("Target")
    if not target:
        return None
    prefix, _, integration_id = str(target).partition("/")
    if prefix != "integrations" or not integration_id:
        raise ConfigurationError(
            f"Route {route.get('RouteKey')!r} of API {api_id} has target {target!r}; the lab only "
            "understands targets of the form 'integrations/<IntegrationId>'."
        )
    return integration_id


def api_config_from_answers(
    api: Mapping[str, Any],
    routes: Sequence[Mapping[str, Any]],
    integrations: Sequence[Mapping[str, Any]],
    stage: Mapping[str, Any],
) -> ApiConfig:
    """Translate boto3 apigatewayv2 answers into an :class:`ApiConfig`; pure, no calls.

    ``routes`` and ``integrations`` are the ``Items`` of get_routes / get_integrations (all pages).
    Raises :class:`~kit.errors.ConfigurationError` when the API is not a WebSocket API, has no route
    selection expression, or a route targets an integration that is not in ``integrations``.
    """
    api_id = str(api.get("ApiId", ""))
    protocol = api.get("ProtocolType", "WEBSOCKET")
    if protocol != "WEBSOCKET":
        raise ConfigurationError(
            f"API {api_id} has ProtocolType {protocol}; the lab gateway only serves WEBSOCKET APIs."
        )
    expression = api.get("RouteSelectionExpression")
    if not expression:
        raise ConfigurationError(
            f"API {api_id} has no RouteSelectionExpression; WebSocket APIs require one, "
            "usually '$request.body.action'."
        )
    integration_configs: dict[str, IntegrationConfig] = {}
    for item in integrations:
        integration_id = str(item["IntegrationId"])
        integration_configs[integration_id] = IntegrationConfig(
            integration_id=integration_id,
            integration_type=str(item.get("IntegrationType", "")),
            uri=str(item.get("IntegrationUri", "")),
            request_parameters=dict(item.get("RequestParameters") or {}),
            timeout_ms=int(item.get("TimeoutInMillis") or DEFAULT_INTEGRATION_TIMEOUT_MS),
            method=str(item.get("IntegrationMethod") or "POST"),
        )
    route_configs: dict[str, RouteConfig] = {}
    for item in routes:
        route_key = str(item["RouteKey"])
        target_id = _target_integration_id(item, api_id)
        if target_id is not None and target_id not in integration_configs:
            raise ConfigurationError(
                f"Route {route_key!r} of API {api_id} targets integration {target_id}, which "
                "get_integrations did not return; pass every page of get_integrations."
            )
        route_configs[route_key] = RouteConfig(
            route_key=route_key,
            target_integration_id=target_id,
            route_response_selection_expression=item.get("RouteResponseSelectionExpression"),
            authorization_type=str(item.get("AuthorizationType") or "NONE"),
        )
    access = stage.get("AccessLogSettings") or {}
    defaults = stage.get("DefaultRouteSettings") or {}
    level = _LOGGING_LEVELS.get(str(defaults.get("LoggingLevel") or "OFF").upper(), "OFF")
    stage_config = StageConfig(
        name=str(stage.get("StageName", "")),
        access_log_destination_arn=access.get("DestinationArn"),
        access_log_format=access.get("Format"),
        logging_level=level,
        data_trace=bool(defaults.get("DataTraceEnabled", False)),
    )
    return ApiConfig(
        api_id=api_id,
        route_selection_expression=str(expression),
        routes=route_configs,
        stage=stage_config,
        integrations=integration_configs,
    )


# ---------------------------------------------------------------------------------------------
# Route selection
# ---------------------------------------------------------------------------------------------

RouteDecisionKind = Literal["integration", "no-integration", "no-route"]
_RESERVED_CONNECTION_ROUTES = frozenset({"$connect", "$disconnect"})
_BODY_EXPRESSION = "$request.body."
_WRAPPED_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_PATH_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]|\[['\"]([^'\"]*)['\"]\]|(\.)")
_MISSING = object()


@dataclass(frozen=True)
class RouteDecision:
    """Where an event goes.

    ``kind``: ``"integration"`` (invoke ``integration``), ``"no-integration"`` (the route exists
    but has no target), ``"no-route"`` (nothing matched and there is no ``$default``).
    ``route_key`` is the event's routeKey: the matched key, or ``$default`` when the selection value
    matched nothing; None for ``"no-route"``. ``selection_value`` is what the route selection
    expression evaluated to ("" when it could not be evaluated).
    """

    kind: RouteDecisionKind
    route_key: str | None
    selection_value: str
    route: RouteConfig | None = None
    integration: IntegrationConfig | None = None

    @property
    def two_way(self) -> bool:
        return self.route is not None and self.route.two_way


def route_for_key(api: ApiConfig, route_key: str) -> RouteDecision:
    """The decision for a fixed route key (``$connect``, ``$disconnect``); no ``$default`` fallback."""
    route = api.routes.get(route_key)
    if route is None:
        return RouteDecision("no-route", None, route_key)
    integration = api.integrations.get(route.target_integration_id) if route.target_integration_id else None
    if integration is None:
        return RouteDecision("no-integration", route_key, route_key, route)
    return RouteDecision("integration", route_key, route_key, route, integration)


def _stringify(value: object) -> str:
    # Inferred from AWS's "arrays become [a, b]": Java-style toString of the JSON value.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(_stringify(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_stringify(v)}" for k, v in value.items()) + "}"
    return str(value)


def _walk_path(document: object, path: str) -> object:
    """Follow a JSONPath-like path (``a.b``, ``items[0].name``, ``['odd key']``) or return _MISSING."""
    if not path:
        return _MISSING
    current = document
    position = 0
    while position < len(path):
        match = _PATH_SEGMENT.match(path, position)
        if match is None:
            return _MISSING
        position = match.end()
        name, index, quoted, dot = match.groups()
        if dot is not None:
            continue
        if index is not None:
            if not isinstance(current, list) or int(index) >= len(current):
                return _MISSING
            current = current[int(index)]
            continue
        key = name if name is not None else quoted
        if not isinstance(current, dict) or key not in current:
            return _MISSING
        current = current[key]
    return current


def _body_value(body: str, path: str, parsed: list[object]) -> str:
    if not parsed:
        try:
            parsed.append(json.loads(body))
        except (ValueError, RecursionError):
            parsed.append(_MISSING)
    document = parsed[0]
    if document is _MISSING:
        return ""
    value = _walk_path(document, path)
    return "" if value is _MISSING else _stringify(value)


def evaluate_selection_expression(expression: str, body: str) -> str:
    """Evaluate a route selection expression against a text frame; "" when it cannot be evaluated.

    Forms: ``$request.body.<path>``, ``${request.body.<path>}`` and templates mixing literal text
    with several ``${request.body.<path>}`` variables; a literal expression evaluates to itself
    (``\\$`` unescaped). Non-JSON bodies and missing paths evaluate to "".
    """
    parsed: list[object] = []  # the body is parsed at most once, and only if needed
    try:
        text = expression.strip()
        if text.startswith(_BODY_EXPRESSION):
            return _body_value(body, text[len(_BODY_EXPRESSION) :], parsed)

        def substitute(match: re.Match[str]) -> str:
            variable = match.group(1)
            if variable.startswith(_BODY_EXPRESSION[1:]):
                return _body_value(body, variable[len(_BODY_EXPRESSION) - 1 :], parsed)
            return ""

        return _WRAPPED_VARIABLE.sub(substitute, text).replace("\\$", "$")
    except RecursionError:
        # A pathologically nested body: AWS cannot evaluate it either, so it goes to $default.
        return ""


def select_route(api: ApiConfig, body: str) -> RouteDecision:
    """Choose the route for an inbound text frame.

    An exact route key match wins; otherwise (no match, non-JSON body, path not found) ``$default``
    takes the message and the event's routeKey is ``$default``; without ``$default`` the decision is
    ``"no-route"`` (the client gets the Forbidden frame). Inferred: ``$connect``/``$disconnect``
    are never selected by a message, even when the body names them.
    """
    value = evaluate_selection_expression(api.route_selection_expression, body)
    key = value if value in api.routes and value not in _RESERVED_CONNECTION_ROUTES else "$default"
    if key not in api.routes:
        return RouteDecision("no-route", None, value)
    decision = route_for_key(api, key)
    return replace(decision, selection_value=value)


# ---------------------------------------------------------------------------------------------
# Events (Lambda proxy input), with exactly the keys real captures have
# ---------------------------------------------------------------------------------------------

Header = tuple[str, str]
EventType = Literal["CONNECT", "MESSAGE", "DISCONNECT"]
# Hop-by-hop headers of the upgrade request never reach the integration (absent in captures).
_DROPPED_UPGRADE_HEADERS = frozenset({"connection", "upgrade"})


@dataclass(frozen=True)
class Connection:
    """Facts fixed when a client connects; every event of the connection repeats them."""

    connection_id: str
    connected_at_ms: int
    source_ip: str
    user_agent: str | None
    api_id: str
    domain_name: str
    stage: str


def header_value(headers: Sequence[Header], name: str) -> str | None:
    """The last value of header ``name`` (case-insensitive), or None when it was not sent."""
    wanted = name.lower()
    found: str | None = None
    for key, value in headers:
        if key.lower() == wanted:
            found = value
    return found


def forwarded_connect_headers(
    client_headers: Sequence[Header],
    *,
    source_ip: str,
    trace_id: str,
    port: str = "443",
    proto: str = "https",
) -> list[Header]:
    """The upgrade request's headers as API Gateway forwards them on CONNECT.

    Drops ``Connection``/``Upgrade``, then adds ``X-Amzn-Trace-Id``, ``X-Forwarded-For`` (appending
    the source IP to any value the client sent), ``X-Forwarded-Port`` and ``X-Forwarded-Proto``,
    replacing client-sent values of the others. The order follows the real capture.
    """
    added = {"x-amzn-trace-id", "x-forwarded-for", "x-forwarded-port", "x-forwarded-proto"}
    kept = [(k, v) for k, v in client_headers if k.lower() not in _DROPPED_UPGRADE_HEADERS | added]
    sent_for = header_value(client_headers, "X-Forwarded-For")
    forwarded_for = f"{sent_for}, {source_ip}" if sent_for else source_ip
    return [
        *kept,
        ("X-Amzn-Trace-Id", trace_id),
        ("X-Forwarded-For", forwarded_for),
        ("X-Forwarded-Port", port),
        ("X-Forwarded-Proto", proto),
    ]


def _single_and_multi(pairs: Sequence[Header]) -> tuple[dict[str, str], dict[str, list[str]]]:
    # Like REST payload 1.0: the single-value map keeps the last value, the multi map keeps all.
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def parse_query_string(raw_query: str) -> list[Header]:
    """``a=1&b=x%20y&flag`` as decoded (name, value) pairs in order; ``+`` stays literal (inferred)."""
    pairs: list[Header] = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote(name), unquote(value)))
    return pairs


def _identity(connection: Connection) -> dict[str, str]:
    identity: dict[str, str] = {}
    if connection.user_agent is not None:
        identity["userAgent"] = connection.user_agent
    identity["sourceIp"] = connection.source_ip
    return identity


def _request_context(
    connection: Connection,
    *,
    route_key: str,
    event_type: EventType,
    request_id: str,
    request_time_ms: int,
    message_id: str | None = None,
    disconnect: tuple[int, str] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"routeKey": route_key}
    if message_id is not None:
        context["messageId"] = message_id
    if disconnect is not None:
        context["disconnectStatusCode"] = disconnect[0]
    context["eventType"] = event_type
    context["extendedRequestId"] = request_id
    context["requestTime"] = clf_time(request_time_ms)
    context["messageDirection"] = "IN"
    if disconnect is not None:
        context["disconnectReason"] = disconnect[1]
    context.update(
        {
            "stage": connection.stage,
            "connectedAt": connection.connected_at_ms,
            "requestTimeEpoch": request_time_ms,
            "identity": _identity(connection),
            "requestId": request_id,
            "domainName": connection.domain_name,
            "connectionId": connection.connection_id,
            "apiId": connection.api_id,
        }
    )
    return context


def connect_event(
    connection: Connection,
    *,
    request_id: str,
    request_time_ms: int,
    headers: Sequence[Header],
    raw_query: str | None,
) -> dict[str, Any]:
    """The CONNECT event: headers, multiValueHeaders, requestContext, isBase64Encoded.

    ``headers`` are the forwarded headers (see :func:`forwarded_connect_headers`), names kept as
    sent; for a repeated header ``headers`` holds the last value and ``multiValueHeaders`` all of
    them, as in REST payload 1.0 (inferred for WebSocket). The query-string keys appear only when
    the URL had a non-empty query string. No ``body``, no ``messageId``.
    """
    single, multi = _single_and_multi(headers)
    event: dict[str, Any] = {"headers": single, "multiValueHeaders": multi}
    query = parse_query_string(raw_query) if raw_query else []
    if query:
        query_single, query_multi = _single_and_multi(query)
        event["queryStringParameters"] = query_single
        event["multiValueQueryStringParameters"] = query_multi
    event["requestContext"] = _request_context(
        connection,
        route_key="$connect",
        event_type="CONNECT",
        request_id=request_id,
        request_time_ms=request_time_ms,
    )
    event["isBase64Encoded"] = False
    return event


def message_event(
    connection: Connection,
    *,
    route_key: str,
    request_id: str,
    message_id: str,
    request_time_ms: int,
    body: str,
) -> dict[str, Any]:
    """The MESSAGE event: requestContext (with messageId), body, isBase64Encoded; no headers or query."""
    return {
        "requestContext": _request_context(
            connection,
            route_key=route_key,
            event_type="MESSAGE",
            request_id=request_id,
            request_time_ms=request_time_ms,
            message_id=message_id,
        ),
        "body": body,
        "isBase64Encoded": False,
    }


def disconnect_event(
    connection: Connection,
    *,
    request_id: str,
    request_time_ms: int,
    status_code: int,
    reason: str,
) -> dict[str, Any]:
    """The DISCONNECT event: the four fixed headers, disconnectStatusCode and disconnectReason."""
    fixed = [
        ("Host", connection.domain_name),
        ("x-api-key", ""),
        ("X-Forwarded-For", ""),
        ("x-restapi", ""),
    ]
    single, multi = _single_and_multi(fixed)
    return {
        "headers": single,
        "multiValueHeaders": multi,
        "requestContext": _request_context(
            connection,
            route_key="$disconnect",
            event_type="DISCONNECT",
            request_id=request_id,
            request_time_ms=request_time_ms,
            disconnect=(status_code, reason),
        ),
        "isBase64Encoded": False,
    }


# ---------------------------------------------------------------------------------------------
# Integrations: Lambda proxy results and HTTP_PROXY requests
# ---------------------------------------------------------------------------------------------

IntegrationKind = Literal["response", "function-error", "invoke-error", "timeout", "not-invoked"]
MALFORMED_PROXY_RESPONSE = "Malformed Lambda proxy response"
_LAMBDA_PATH_URI = re.compile(
    r"arn:aws[a-z-]*:apigateway:([a-z0-9-]+):lambda:path/2015-03-31/functions/(.+)/invocations"
)
_LAMBDA_ARN = re.compile(r"arn:aws[a-z-]*:lambda:([a-z0-9-]+):\d{12}:function:.+")


@dataclass(frozen=True)
class IntegrationResult:
    """What came back from an integration, as the shell saw it.

    ``kind``:
    - ``"response"``: a proxy response; ``status`` None means it was malformed (see
      :func:`lambda_proxy_result`), ``error_message`` then says why;
    - ``"function-error"``: the Lambda function raised (``error_message`` = its errorMessage);
    - ``"invoke-error"``: the invoke itself failed: no permission, function or endpoint missing;
    - ``"timeout"``: no answer within the integration timeout;
    - ``"not-invoked"``: there was nothing to invoke.
    ``integration_request_id`` (Lambda's request id) and ``latency_ms`` feed the logs.
    """

    kind: IntegrationKind
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None
    error_message: str | None = None
    integration_request_id: str | None = None
    latency_ms: int | None = None


NOT_INVOKED = IntegrationResult("not-invoked")


def _proxy_status(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        status = int(value)
    except (ValueError, OverflowError):
        return None
    # 1xx is not a final HTTP status and the WebSocket handshake cannot answer it (inferred).
    return status if 200 <= status <= 599 else None


def lambda_proxy_result(
    payload: object,
    *,
    integration_request_id: str | None = None,
    latency_ms: int | None = None,
) -> IntegrationResult:
    """Read a Lambda's return value (JSON-decoded) as a proxy response.

    Malformed (``status`` None) when the payload is not an object, ``statusCode`` is missing or not
    an integer 200-599, or ``body`` is present and not a string: the REST proxy rule, which AWS's
    Lambda docs state for API Gateway in general (inferred for WebSocket; see module docstring).
    ``headers`` merges ``headers`` with ``multiValueHeaders`` (values comma-joined).
    """

    def malformed() -> IntegrationResult:
        return IntegrationResult(
            "response",
            error_message=MALFORMED_PROXY_RESPONSE,
            integration_request_id=integration_request_id,
            latency_ms=latency_ms,
        )

    if not isinstance(payload, dict):
        return malformed()
    status = _proxy_status(payload.get("statusCode"))
    body = payload.get("body")
    if status is None or (body is not None and not isinstance(body, str)):
        return malformed()
    headers: dict[str, str] = {}
    multi = payload.get("multiValueHeaders")
    if isinstance(multi, dict):
        for name, values in multi.items():
            if isinstance(values, list):
                headers[str(name)] = ", ".join(str(v) for v in values)
    single = payload.get("headers")
    if isinstance(single, dict):
        headers.update({str(k): str(v) for k, v in single.items()})
    return IntegrationResult(
        "response",
        status=status,
        headers=headers,
        body=body,
        integration_request_id=integration_request_id,
        latency_ms=latency_ms,
    )


def lambda_function_arn(uri: str) -> str | None:
    """The function ARN an ``AWS_PROXY`` integration invokes, from either URI form; else None."""
    match = _LAMBDA_PATH_URI.fullmatch(uri)
    if match:
        return match.group(2)
    return uri if _LAMBDA_ARN.fullmatch(uri) else None


def integration_endpoint_uri(integration: IntegrationConfig) -> str:
    """The URI the execution log names: Lambda's invocations URL for ``AWS_PROXY``, else the URI."""
    function_arn = lambda_function_arn(integration.uri)
    if function_arn is None:
        return integration.uri
    region = function_arn.split(":")[3]
    return f"https://lambda.{region}.amazonaws.com/2015-03-31/functions/{function_arn}/invocations"


@dataclass(frozen=True)
class HttpRequestSpec:
    """The request an ``HTTP_PROXY`` backend receives."""

    method: str
    url: str
    headers: tuple[Header, ...]
    body: str


def _mapped_value(source: str, event: Mapping[str, Any]) -> str | None:
    """The value of one RequestParameters source expression, or None when it has none."""
    if len(source) >= 2 and source[0] == source[-1] == "'":
        return source[1:-1]
    prefix, _, rest = source.partition(".")
    if prefix == "context":
        value = _walk_path(event.get("requestContext", {}), rest)
        return None if value is _MISSING or value is None else _stringify(value)
    if prefix == "stageVariables":
        variables = event.get("stageVariables") or {}
        return variables.get(rest) if isinstance(variables, dict) else None
    if prefix != "route" or not rest.startswith("request."):
        return None
    kind, _, name = rest[len("request.") :].partition(".")
    if kind == "header":
        return header_value(list((event.get("headers") or {}).items()), name)
    if kind == "querystring":
        return (event.get("queryStringParameters") or {}).get(name)
    if kind == "body":
        value = _walk_path(_json_or_missing(event.get("body")), name)
        return None if value is _MISSING or value is None else _stringify(value)
    return None


def _json_or_missing(body: object) -> object:
    if not isinstance(body, str):
        return _MISSING
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return _MISSING


def http_integration_request(integration: IntegrationConfig, event: Mapping[str, Any]) -> HttpRequestSpec:
    """What API Gateway sends to an ``HTTP_PROXY`` backend for ``event`` (the Lambda event it built).

    The backend learns only what ``RequestParameters`` map: ``integration.request.header.<n>``,
    ``integration.request.querystring.<n>`` and ``integration.request.path.<n>`` (replacing ``{n}``
    in the URI), from ``context.<var>`` (e.g. ``context.connectionId``), ``route.request.body.<path>``,
    ``route.request.header.<n>``, ``route.request.querystring.<n>``, ``stageVariables.<n>`` or a
    static ``'value'``. Without a ``context.connectionId`` mapping the backend never sees the id.

    Inferred: client headers are not passed through; a mapping whose source has no value is
    dropped; MESSAGE sends the frame text as the body, CONNECT and DISCONNECT send an empty body.
    """
    headers: list[Header] = []
    query: list[Header] = []
    url = integration.uri
    for target, source in integration.request_parameters.items():
        value = _mapped_value(source, event)
        if value is None:
            continue
        location, _, name = target.removeprefix("integration.request.").partition(".")
        if location == "header":
            headers.append((name, value))
        elif location == "querystring":
            query.append((name, value))
        elif location == "path":
            url = url.replace("{" + name + "}", quote(value, safe=""))
    if query:
        encoded = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
        url = f"{url}{'&' if '?' in url else '?'}{encoded}"
    event_type = event.get("requestContext", {}).get("eventType")
    body = event.get("body") if event_type == "MESSAGE" else None
    return HttpRequestSpec(
        method=integration.method.upper(),
        url=url,
        headers=tuple(headers),
        body=body if isinstance(body, str) else "",
    )


# ---------------------------------------------------------------------------------------------
# Outcomes: handshake ($connect), message, disconnect
# ---------------------------------------------------------------------------------------------

INTERNAL_SERVER_ERROR = "Internal server error"
ENDPOINT_TIMED_OUT = "Endpoint request timed out"
FORBIDDEN = "Forbidden"
# Inferred from aws-samples/simple-websockets-chat-app#42 (a handler that *returned* 500 on a
# one-way route made the client receive the Internal server error frame).
ONE_WAY_ERROR_STATUS = 500


@dataclass(frozen=True)
class _Failure:
    status: int
    message: str
    response_type: str


def _integration_failure(result: IntegrationResult) -> _Failure | None:
    """How API Gateway itself fails when the integration did not produce a usable response.

    Function error or malformed proxy response: 502; invoke not permitted or target missing: 500
    (AWS Lambda docs for API Gateway). Timeout: 504 "Endpoint request timed out", inferred from
    REST. Response types: INTEGRATION_TIMEOUT for the timeout, DEFAULT_5XX otherwise (inferred).
    """
    if result.kind == "function-error" or (result.kind == "response" and result.status is None):
        return _Failure(502, INTERNAL_SERVER_ERROR, "DEFAULT_5XX")
    if result.kind == "invoke-error":
        return _Failure(500, INTERNAL_SERVER_ERROR, "DEFAULT_5XX")
    if result.kind == "timeout":
        return _Failure(504, ENDPOINT_TIMED_OUT, "INTEGRATION_TIMEOUT")
    return None


@dataclass(frozen=True)
class HandshakeDecision:
    """The answer to an upgrade request once ``$connect`` has run (or was not needed).

    ``accept``: send 101 (with ``subprotocol`` in ``Sec-WebSocket-Protocol`` when set). Otherwise
    answer HTTP ``status`` with ``headers`` and ``body``. ``context_status`` is what
    ``$context.status`` logs (200 for an accepted connection); ``error_message`` and
    ``response_type`` feed ``$context.error.*``.
    """

    accept: bool
    status: int
    subprotocol: str | None = None
    headers: tuple[Header, ...] = ()
    body: str = ""
    context_status: int = 200
    error_message: str | None = None
    response_type: str | None = None


def connect_outcome(result: IntegrationResult) -> HandshakeDecision:
    """Decide the handshake from the ``$connect`` integration result.

    - not invoked (no ``$connect`` route or no integration): accept;
    - 2xx: accept; ``Sec-WebSocket-Protocol`` echoed only if the integration returned it;
    - other status: reject with that status and the integration's body (body: inferred);
    - function error or malformed response 502, invoke error 500, timeout 504, each with AWS's
      JSON error body ``{"message": ...}`` (bodies inferred from REST).
    """
    if result.kind == "not-invoked":
        return HandshakeDecision(accept=True, status=101)
    failure = _integration_failure(result)
    if failure is not None:
        return HandshakeDecision(
            accept=False,
            status=failure.status,
            headers=(("Content-Type", "application/json"),),
            body=json.dumps({"message": failure.message}),
            context_status=failure.status,
            error_message=failure.message,
            response_type=failure.response_type,
        )
    status = result.status if result.status is not None else 502
    if 200 <= status <= 299:
        protocol = header_value(list(result.headers.items()), "Sec-WebSocket-Protocol")
        return HandshakeDecision(accept=True, status=101, subprotocol=protocol)
    return HandshakeDecision(accept=False, status=status, body=result.body or "", context_status=status)


def error_frame(message: str, connection_id: str, request_id: str) -> str:
    """A gateway error frame, spaced exactly as AWS sends it.

    ``{"message": "Forbidden", "connectionId":"XDmENcnwIE0CFEQ=", "requestId":"XDmGEE2RoE0FRdQ="}``
    """
    return (
        f'{{"message": {json.dumps(message)}, "connectionId":{json.dumps(connection_id)}, '
        f'"requestId":{json.dumps(request_id)}}}'
    )


def forbidden_frame(connection_id: str, request_id: str) -> str:
    """The frame for a message no route takes (the socket stays open)."""
    return error_frame(FORBIDDEN, connection_id, request_id)


def internal_error_frame(connection_id: str, request_id: str) -> str:
    """The frame for a message whose integration failed (sent even on one-way routes)."""
    return error_frame(INTERNAL_SERVER_ERROR, connection_id, request_id)


@dataclass(frozen=True)
class RouteOutcome:
    """What the client gets for one message (``frames``, in order; the socket stays open) and what
    the access log records (``context_status``, ``error_message``, ``response_type``)."""

    frames: tuple[str, ...] = ()
    context_status: int = 200
    error_message: str | None = None
    response_type: str | None = None


def message_outcome(
    decision: RouteDecision,
    result: IntegrationResult,
    *,
    connection_id: str,
    request_id: str,
) -> RouteOutcome:
    """Decide what a client sees after its message was routed and (maybe) integrated.

    - ``"no-route"``: Forbidden frame, status 403;
    - ``"no-integration"``: Internal server error frame, status 500. Inferred: the route matched
      but execution has nothing to run, which REST calls a configuration error (500); the special
      "integration is optional" rule is documented for ``$connect``/``$disconnect`` only;
    - integration failed: Internal server error frame (Endpoint request timed out on timeout);
    - two-way route (route response ``$default``): the response body as a frame, whatever the
      status (yai333 chat app #2), nothing if the body is empty (inferred);
    - one-way route: nothing, unless the status is 500 or more (see ``ONE_WAY_ERROR_STATUS``).
    """
    if decision.kind == "no-route":
        return RouteOutcome((forbidden_frame(connection_id, request_id),), 403, FORBIDDEN, None)
    if decision.kind == "no-integration":
        return RouteOutcome(
            (internal_error_frame(connection_id, request_id),),
            500,
            INTERNAL_SERVER_ERROR,
            "DEFAULT_5XX",
        )
    failure = _integration_failure(result)
    if failure is not None:
        frame = error_frame(failure.message, connection_id, request_id)
        return RouteOutcome((frame,), failure.status, failure.message, failure.response_type)
    status = result.status if result.status is not None else 200
    if decision.two_way:
        return RouteOutcome((result.body,) if result.body else ())
    if status >= ONE_WAY_ERROR_STATUS:
        return RouteOutcome(
            (internal_error_frame(connection_id, request_id),),
            500,
            INTERNAL_SERVER_ERROR,
            "DEFAULT_5XX",
        )
    return RouteOutcome()


def disconnect_outcome(result: IntegrationResult) -> RouteOutcome:
    """``$disconnect`` is best-effort and its result is ignored; only the logs see failures."""
    failure = _integration_failure(result)
    if failure is None:
        return RouteOutcome()
    return RouteOutcome((), failure.status, failure.message, failure.response_type)


# ---------------------------------------------------------------------------------------------
# Inbound limits and close codes
# ---------------------------------------------------------------------------------------------

MAX_FRAME_BYTES = 32 * 1024
MAX_MESSAGE_BYTES = 128 * 1024


@dataclass(frozen=True)
class CloseDecision:
    """A close frame the gateway sends (or reports in ``$disconnect``): code and reason."""

    code: int
    reason: str


CLOSED_BY_DELETE = CloseDecision(1000, "Connection Closed Normally")
GOING_AWAY = CloseDecision(1001, "Going away")
# The reasons below are not in any capture; they follow the style of AWS's other reasons.
BINARY_NOT_SUPPORTED = CloseDecision(1003, "Binary frames are not supported")
MESSAGE_TOO_BIG = CloseDecision(1009, "Message too big")
NO_STATUS_RECEIVED = CloseDecision(1005, "Client-side close frame status not set")


def check_inbound(*, is_binary: bool, frame_len: int, message_len: int) -> CloseDecision | None:
    """Whether an inbound data frame ends the connection.

    ``message_len`` counts the message so far, this frame included. Binary: 1003. A frame over
    32 KB or a message over 128 KB: 1009. Exactly at the limit is allowed.
    """
    if is_binary:
        return BINARY_NOT_SUPPORTED
    if frame_len > MAX_FRAME_BYTES or message_len > MAX_MESSAGE_BYTES:
        return MESSAGE_TOO_BIG
    return None


def client_close(code: int | None, reason: str, *, close_frame_received: bool = True) -> CloseDecision:
    """What ``$disconnect`` reports when the client closed.

    A close frame without a status: 1005 "Client-side close frame status not set" (capture).
    With a status: that status and reason as sent (capture: 1001 ""). No close frame at all (the
    TCP connection dropped): 1006 "" (inferred).
    """
    if not close_frame_received:
        return CloseDecision(1006, "")
    if code is None:
        return NO_STATUS_RECEIVED
    return CloseDecision(code, reason)


# ---------------------------------------------------------------------------------------------
# Timers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdlePolicy:
    """AWS's idle timeout (10 min, no activity) and maximum connection duration (2 h)."""

    idle_timeout_s: float = 600
    max_duration_s: float = 7200


def timer_decision(
    now_ms: int, connected_at_ms: int, last_active_at_ms: int, policy: IdlePolicy
) -> CloseDecision | None:
    """1001 "Going away" once the connection is idle or too old; None while it may live on.

    Activity means inbound data frames and successful @connections POSTs to the connection (as
    serverless-offline counts it; whether pings count is not documented). The idle close is seen
    in a capture (1001 "Going away" after about 604 s); the code at the 2 h cap is inferred.
    """
    if now_ms - connected_at_ms >= policy.max_duration_s * 1000:
        return GOING_AWAY
    if now_ms - last_active_at_ms >= policy.idle_timeout_s * 1000:
        return GOING_AWAY
    return None


def next_timer_deadline_ms(connected_at_ms: int, last_active_at_ms: int, policy: IdlePolicy) -> int:
    """The epoch ms at which :func:`timer_decision` will next close, barring new activity."""
    return int(
        min(
            connected_at_ms + policy.max_duration_s * 1000,
            last_active_at_ms + policy.idle_timeout_s * 1000,
        )
    )


# ---------------------------------------------------------------------------------------------
# Connection registry
# ---------------------------------------------------------------------------------------------

ConnectionState = Literal["pending", "accepted", "open", "closed"]


class ConnectionStateError(KitError):
    """The shell asked the registry for a transition the connection's state does not allow."""


@dataclass(frozen=True)
class ConnectionRecord:
    """One connection's place in its life: pending ($connect running), accepted ($connect said yes, the
    101 not yet delivered), open, closed."""

    connection: Connection
    state: ConnectionState
    last_active_at_ms: int
    close: CloseDecision | None = None


class ConnectionRegistry:
    """In-memory connections by id, with their state; no I/O, no clock.

    Closed connections are kept (so repeated closes are harmless) until :meth:`forget`.
    """

    def __init__(self) -> None:
        self._records: dict[str, ConnectionRecord] = {}

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, connection_id: object) -> bool:
        return connection_id in self._records

    def get(self, connection_id: str) -> ConnectionRecord | None:
        return self._records.get(connection_id)

    def open_ids(self) -> list[str]:
        return [cid for cid, record in self._records.items() if record.state == "open"]

    def _require(self, connection_id: str) -> ConnectionRecord:
        record = self._records.get(connection_id)
        if record is None:
            raise ConnectionStateError(
                f"Connection {connection_id} is not in the lab gateway's registry; register it "
                "with register_pending when the upgrade request arrives."
            )
        return record

    def register_pending(self, connection: Connection) -> ConnectionRecord:
        """Record an upgrade request whose ``$connect`` is about to run."""
        if connection.connection_id in self._records:
            raise ConnectionStateError(
                f"Connection id {connection.connection_id} is already registered; "
                "mint a new id for each upgrade request."
            )
        record = ConnectionRecord(connection, "pending", connection.connected_at_ms)
        self._records[connection.connection_id] = record
        return record

    def _advance(
        self, connection_id: str, before: ConnectionState, after: ConnectionState
    ) -> ConnectionRecord:
        record = self._require(connection_id)
        if record.state != before:
            raise ConnectionStateError(
                f"Connection {connection_id} is {record.state}; it must be {before} to become {after}."
            )
        record = replace(record, state=after)
        self._records[connection_id] = record
        return record

    def mark_accepted(self, connection_id: str) -> ConnectionRecord:
        """``$connect`` accepted the upgrade; from now on a close is followed by ``$disconnect``."""
        return self._advance(connection_id, "pending", "accepted")

    def mark_open(self, connection_id: str) -> ConnectionRecord:
        """The 101 was delivered: the connection now takes messages and @connections calls."""
        return self._advance(connection_id, "accepted", "open")

    def mark_closed(self, connection_id: str, code: int, reason: str) -> bool:
        """Close the connection; True when ``$connect`` had accepted it, i.e. when ``$disconnect`` is due.

        A rejected handshake (pending to closed) gets no ``$disconnect`` (inferred: there was no
        connection). An accepted one whose 101 never reached the client does, as on AWS, where
        ``$connect`` succeeded. Closing a closed connection changes nothing and returns False.
        """
        record = self._require(connection_id)
        if record.state == "closed":
            return False
        self._records[connection_id] = replace(record, state="closed", close=CloseDecision(code, reason))
        return record.state in ("accepted", "open")

    def touch(self, connection_id: str, now_ms: int) -> None:
        """Count activity on an open connection (inbound data frame, successful POST)."""
        record = self._records.get(connection_id)
        if record is not None and record.state == "open" and now_ms > record.last_active_at_ms:
            self._records[connection_id] = replace(record, last_active_at_ms=now_ms)

    def forget(self, connection_id: str) -> None:
        self._records.pop(connection_id, None)


# ---------------------------------------------------------------------------------------------
# @connections (the management API)
# ---------------------------------------------------------------------------------------------

MAX_POST_BYTES = 131_072  # botocore's max for PostToConnection Data
ManagementAction = Literal["none", "send", "close"]
_JSON = ("Content-Type", "application/json")


@dataclass(frozen=True)
class ManagementDecision:
    """The HTTP answer to an @connections request and what the shell must then do.

    ``action``: ``"send"`` the POST body as a text frame (then ``touch`` the connection),
    ``"close"`` the connection with ``close``, or ``"none"``.
    """

    status: int
    body: str = ""
    headers: tuple[Header, ...] = ()
    action: ManagementAction = "none"
    close: CloseDecision | None = None


def management_error(status: int, error_type: str, message: str | None) -> ManagementDecision:
    """An error answer botocore maps to ``error_type``: it reads the ``x-amzn-ErrorType`` header.

    ``message`` None sends an empty body: a real 410 has no JSON body (the PHP SDK fails to parse
    it, boto3 shows an empty message), so botocore says "... PostToConnection operation: ".
    """
    body = "" if message is None else json.dumps({"message": message})
    headers = (("x-amzn-ErrorType", error_type), _JSON) if body else (("x-amzn-ErrorType", error_type),)
    return ManagementDecision(status, body, headers)


GONE = management_error(410, "GoneException", None)
FORBIDDEN_MANAGEMENT = management_error(403, "ForbiddenException", FORBIDDEN)


def parse_management_path(path: str, stage: str) -> str | ManagementDecision:
    """The decoded connection id of ``/{stage}/@connections/{id}``, or the 403 AWS gives otherwise.

    Accepts URL-encoded segments (``%40connections``, ``%3D``) and ignores a query string. Any
    other path (no stage prefix, extra segments such as ``@connections/@connections/<id>``,
    empty id) is 403 ForbiddenException, as a wrong endpoint or stage is on AWS (inferred body).
    """
    segments = path.split("?", 1)[0].split("/")
    if len(segments) != 4 or segments[0] != "":
        return FORBIDDEN_MANAGEMENT
    stage_part, resource, encoded_id = (unquote(s) for s in segments[1:])
    if stage_part != stage or resource != "@connections" or not encoded_id:
        return FORBIDDEN_MANAGEMENT
    return encoded_id


def management_decision(
    method: str, connection_id: str, body_len: int, registry: ConnectionRegistry
) -> ManagementDecision:
    """Answer PostToConnection (POST), GetConnection (GET) or DeleteConnection (DELETE).

    Checks in order: method (other methods 403, inferred), id shape (400 BadRequestException
    ``Invalid connectionId: <id>``, not a modelled error), POST size (413 over 131072 bytes; checked
    before the connection, inferred), connection open (pending, accepted, closed or unknown: 410 Gone).
    Then POST 200 empty + send; GET 200 JSON; DELETE 204 + close 1000 "Connection Closed Normally".
    Pure: the shell calls ``registry.touch`` after a successful send and ``mark_closed`` on close.
    """
    verb = method.upper()
    if verb not in ("POST", "GET", "DELETE"):
        return FORBIDDEN_MANAGEMENT
    if not is_valid_connection_id(connection_id):
        return management_error(400, "BadRequestException", f"Invalid connectionId: {connection_id}")
    if verb == "POST" and body_len > MAX_POST_BYTES:
        return management_error(
            413, "PayloadTooLargeException", f"Message too long. Max size is {MAX_POST_BYTES} bytes."
        )
    record = registry.get(connection_id)
    if record is None or record.state != "open":
        return GONE
    if verb == "POST":
        return ManagementDecision(200, "", (_JSON,), "send")
    if verb == "DELETE":
        return ManagementDecision(204, "", (), "close", CLOSED_BY_DELETE)
    connection = record.connection
    answer = {
        "connectedAt": iso8601(connection.connected_at_ms),
        "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
        "lastActiveAt": iso8601(record.last_active_at_ms),
    }
    return ManagementDecision(200, json.dumps(answer), (_JSON,))
