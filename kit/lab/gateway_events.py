"""What the lab gateway sends to an integration and makes of its answer, as plain code.

The events a Lambda proxy integration receives for ``$connect``, a message and ``$disconnect`` (exactly the
keys real captures have), the request an HTTP_PROXY integration gets, and what a Lambda proxy result or an
HTTP answer means (``IntegrationResult``); with the ids and times those carry (connection, request and trace
ids; CLF and ISO 8601 times). Part of the gateway's sans-I/O core (:mod:`kit.lab.gateway_core` says what the
core must not do).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any, Literal
from urllib.parse import quote, unquote

from kit.lab.gateway_config import MISSING, IntegrationConfig, stringify, walk_path

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
    # What a $connect Lambda authorizer allowed with (principalId, then its context, as strings): every
    # event of the connection carries it in requestContext.authorizer. Empty without an authorizer.
    authorizer: tuple[tuple[str, str], ...] = ()


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
    if connection.authorizer:
        context["authorizer"] = dict(connection.authorizer)
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


def source_value(source: str, event: Mapping[str, Any]) -> str | None:
    """The value of one source expression (a RequestParameters source, an authorizer's identity source)
    in ``event``, or None when it has none."""
    if len(source) >= 2 and source[0] == source[-1] == "'":
        return source[1:-1]
    prefix, _, rest = source.partition(".")
    if prefix == "context":
        value = walk_path(event.get("requestContext", {}), rest)
        return None if value is MISSING or value is None else stringify(value)
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
        value = walk_path(_json_or_missing(event.get("body")), name)
        return None if value is MISSING or value is None else stringify(value)
    return None


def _json_or_missing(body: object) -> object:
    if not isinstance(body, str):
        return MISSING
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return MISSING


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
        value = source_value(source, event)
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
