"""The lab gateway's logs: execution-log lines and access-log lines, as API Gateway writes them.

For every CONNECT, MESSAGE and DISCONNECT the shell builds one log context with
:func:`build_log_context` (the ``$context`` variables of that request), renders the stage's access-log
format with :func:`access_log_line` and asks :func:`execution_log_lines` for the
``(<requestId>) ...`` lines. Together they let the root causes of "connected but no row" be told apart
locally the way they are on AWS: a swallowed DynamoDB error still logs ``Status: 200``; a missing
``$connect`` integration logs no ``Endpoint request URI`` line.

Like :mod:`kit.lab.gateway_core`, this module must not do I/O (writing the lines is the shell's job)
and never imports ``websockets``, ``asyncio`` or ``boto3``.

Access-log variables are AWS's documented WebSocket ``$context`` variables. Execution-log wording
is only partly verified, see :func:`execution_log_lines`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

from kit.lab.gateway_config import IntegrationConfig, LoggingLevel, RouteDecision
from kit.lab.gateway_core import CloseDecision
from kit.lab.gateway_events import (
    MALFORMED_PROXY_RESPONSE,
    Connection,
    EventType,
    IntegrationResult,
    clf_time,
    integration_endpoint_uri,
)

# ---------------------------------------------------------------------------------------------
# Log context and access logs
# ---------------------------------------------------------------------------------------------

_IDENTITY_FIELDS = (
    "accountId",
    "apiKey",
    "apiKeyId",
    "caller",
    "cognitoAuthenticationProvider",
    "cognitoAuthenticationType",
    "cognitoIdentityId",
    "cognitoIdentityPoolId",
    "principalOrgId",
    "sourceIp",
    "user",
    "userAgent",
    "userArn",
)
WEBSOCKET_CONTEXT_VARIABLES: frozenset[str] = frozenset(
    {
        "apiId",
        "awsEndpointRequestId",
        "connectedAt",
        "connectionId",
        "domainName",
        "eventType",
        "extendedRequestId",
        "messageId",
        "requestId",
        "requestTime",
        "requestTimeEpoch",
        "routeKey",
        "stage",
        "status",
        "error.message",
        "error.messageString",
        "error.responseType",
        "error.validationErrorString",
        "integration.error",
        "integration.integrationStatus",
        "integration.latency",
        "integration.requestId",
        "integration.status",
        "integrationErrorMessage",
        "integrationLatency",
        "integrationStatus",
        *(f"identity.{name}" for name in _IDENTITY_FIELDS),
        *(f"authorize.{name}" for name in ("error", "latency", "status")),
        *(f"authenticate.{name}" for name in ("error", "latency", "status")),
        *(f"waf.{name}" for name in ("error", "latency", "status")),
        *(
            f"authorizer.{name}"
            for name in (
                "error",
                "integrationLatency",
                "integrationStatus",
                "latency",
                "requestId",
                "status",
                "principalId",
            )
        ),
    }
)
"""The ``$context`` variables AWS documents for WebSocket access logs (plus ``authorizer.<key>``)."""

DEFAULT_ACCESS_LOG_FORMAT = (
    '{"requestId":"$context.requestId","connectionId":"$context.connectionId",'
    '"eventType":"$context.eventType","routeKey":"$context.routeKey","status":"$context.status",'
    '"integrationStatus":"$context.integration.status",'
    '"lambdaStatus":"$context.integration.integrationStatus",'
    '"integrationError":"$context.integration.error","error":"$context.error.message",'
    '"responseType":"$context.error.responseType","requestTimeEpoch":"$context.requestTimeEpoch",'
    '"connectedAt":"$context.connectedAt","messageId":"$context.messageId",'
    '"sourceIp":"$context.identity.sourceIp","userAgent":"$context.identity.userAgent",'
    '"integrationLatency":"$context.integrationLatency",'
    '"integrationRequestId":"$context.integration.requestId"}'
)
"""A JSON access-log format for debugging WebSocket APIs; every value is quoted because AWS writes
``-`` for a missing one. ``disconnectStatusCode`` is no ``$context`` variable, so the close code
is only in the execution log and the ``$disconnect`` event."""

_CONTEXT_VARIABLE = re.compile(r"\$context\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)")
MISSING_VALUE = "-"


def _integration_error(result: IntegrationResult) -> str | None:
    if result.kind in ("function-error", "invoke-error", "timeout"):
        return result.error_message or result.kind
    if result.kind == "response" and result.status is None:
        return result.error_message or MALFORMED_PROXY_RESPONSE
    return None


def build_log_context(
    connection: Connection,
    *,
    event_type: EventType,
    route_key: str | None,
    request_id: str,
    request_time_ms: int,
    status: int,
    message_id: str | None = None,
    integration: IntegrationConfig | None = None,
    result: IntegrationResult | None = None,
    error_message: str | None = None,
    response_type: str | None = None,
) -> dict[str, object]:
    """The ``$context`` variables of one request, keyed without the ``$context.`` prefix.

    ``status``, ``error_message`` and ``response_type`` come from the gateway's decision
    (``HandshakeDecision`` / ``RouteOutcome``). ``integration.status`` is the status the function or
    backend returned; ``integration.integrationStatus`` is Lambda's own invoke status (200 once the
    function ran, even if it raised) or, for HTTP, the backend's. Absent values are None.
    """
    integration_status: int | None = None
    service_status: int | None = None
    integration_error: str | None = None
    latency: int | None = None
    integration_request_id: str | None = None
    if result is not None and result.kind != "not-invoked":
        integration_status = result.status
        is_lambda = integration is None or integration.integration_type == "AWS_PROXY"
        if is_lambda:
            service_status = 200 if result.kind in ("response", "function-error") else None
        else:
            service_status = result.status
        integration_error = _integration_error(result)
        latency = result.latency_ms
        integration_request_id = result.integration_request_id
    return {
        "apiId": connection.api_id,
        "connectedAt": connection.connected_at_ms,
        "connectionId": connection.connection_id,
        "domainName": connection.domain_name,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "messageId": message_id,
        "requestId": request_id,
        "requestTime": clf_time(request_time_ms),
        "requestTimeEpoch": request_time_ms,
        "routeKey": route_key,
        "stage": connection.stage,
        "status": status,
        "error.message": error_message,
        "error.messageString": None if error_message is None else f'"{error_message}"',
        "error.responseType": response_type,
        "identity.sourceIp": connection.source_ip,
        "identity.userAgent": connection.user_agent,
        "integration.error": integration_error,
        "integrationErrorMessage": integration_error,
        "integration.integrationStatus": service_status,
        "integration.status": integration_status,
        "integrationStatus": integration_status,
        "integration.latency": latency,
        "integrationLatency": latency,
        "integration.requestId": integration_request_id,
        "awsEndpointRequestId": integration_request_id,
    }


def _is_variable(name: str, context: Mapping[str, object]) -> bool:
    return name in context or name in WEBSOCKET_CONTEXT_VARIABLES or name.startswith("authorizer.")


def _render(value: object) -> str:
    if value is None or value == "":
        return MISSING_VALUE
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def access_log_line(format_template: str, context: Mapping[str, object]) -> str:
    """Substitute every ``$context.<name>`` in ``format_template`` from ``context``.

    Dotted names (``$context.identity.sourceIp``) match the longest known variable, so
    ``$context.requestId.`` keeps its trailing text. Missing, None or empty values render as ``-``,
    as AWS writes them. Values are not escaped: AWS does not escape them either, which is why
    ``error.messageString`` exists.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        rest = ""
        while not _is_variable(name, context) and "." in name:
            name, _, tail = name.rpartition(".")
            rest = f".{tail}{rest}"
        return _render(context.get(name)) + rest

    return _CONTEXT_VARIABLE.sub(substitute, format_template)


# ---------------------------------------------------------------------------------------------
# Execution logs
# ---------------------------------------------------------------------------------------------

MAX_EXECUTION_LOG_EVENT_BYTES = 1024
TRUNCATED_MARKER = " [TRUNCATED]"
_LineLevel = Literal["INFO", "ERROR"]


def _truncate(line: str) -> str:
    encoded = line.encode("utf-8")
    if len(encoded) <= MAX_EXECUTION_LOG_EVENT_BYTES:
        return line
    keep = MAX_EXECUTION_LOG_EVENT_BYTES - len(TRUNCATED_MARKER.encode("utf-8"))
    return encoded[:keep].decode("utf-8", errors="ignore") + TRUNCATED_MARKER


def _integration_lines(
    integration: IntegrationConfig,
    result: IntegrationResult,
    *,
    data_trace: bool,
    request_body: str | None,
    response_body: str | None,
) -> list[tuple[_LineLevel, str]]:
    uri = integration_endpoint_uri(integration)
    is_lambda = integration.integration_type == "AWS_PROXY"
    lines: list[tuple[_LineLevel, str]] = [("INFO", f"Endpoint request URI: {uri}")]
    if data_trace and request_body is not None:
        lines.append(("INFO", f"Endpoint request body after transformations: {request_body}"))
    lines.append(("INFO", f"Sending request to {uri}"))
    reached = result.kind in ("function-error", "response")
    if reached:
        received = 200 if is_lambda else result.status
        latency = MISSING_VALUE if result.latency_ms is None else result.latency_ms
        lines.append(("INFO", f"Received response. Status: {received}, Integration latency: {latency} ms"))
        if data_trace and response_body is not None:
            lines.append(("INFO", f"Endpoint response body before transformations: {response_body}"))
    if result.kind == "function-error":
        lines.append(
            (
                "ERROR",
                "Lambda execution failed with status 200 due to customer function error: "
                f"{result.error_message or ''}. Lambda request id: "
                f"{result.integration_request_id or MISSING_VALUE}",
            )
        )
    elif result.kind == "response" and result.status is None:
        lines.append(("ERROR", f"Execution failed due to configuration error: {MALFORMED_PROXY_RESPONSE}"))
    elif result.kind == "invoke-error":
        reason = result.error_message or "Invalid permissions on Lambda function"
        lines.append(("ERROR", f"Execution failed due to configuration error: {reason}"))
    elif result.kind == "timeout":
        lines.append(("ERROR", "Execution failed due to a timeout error"))
    if reached and is_lambda and result.integration_request_id:
        lines.append(("INFO", f"AWS Integration Endpoint RequestId : {result.integration_request_id}"))
    return lines


def execution_log_lines(
    context: Mapping[str, object],
    *,
    decision: RouteDecision | None = None,
    result: IntegrationResult | None = None,
    close: CloseDecision | None = None,
    logging_level: LoggingLevel = "INFO",
    data_trace: bool = False,
    request_body: str | None = None,
    response_body: str | None = None,
    throttled_by: str | None = None,
    authorizer_lines: Sequence[tuple[_LineLevel, str]] = (),
) -> list[str]:
    """The execution-log lines of one request, each prefixed ``(<requestId>) ``.

    ``context`` comes from :func:`build_log_context`; ``decision`` is the route decision (its
    integration is what was invoked), ``result`` the integration result, ``close`` the close code
    and reason for DISCONNECT; ``authorizer_lines`` the ``$connect`` authorizer step's lines
    (:func:`kit.lab.authorizer_core.log_lines`), written before the integration's. ``logging_level``
    OFF gives no lines, ERROR only failure lines, INFO
    all; ``data_trace`` adds the request and response bodies. Lines over 1024 bytes are cut and end
    in `` [TRUNCATED]`` (AWS truncates at 1024 bytes; the marker is inferred from REST logs).

    Wording provenance:
    - REST wording known from AWS material, WebSocket use unverified: ``Extended Request Id: ``,
      ``Starting execution for request: ``, ``Endpoint request URI: ``, ``Sending request to ``,
      ``Received response. Status: <n>, Integration latency: <n> ms``, ``Endpoint request body
      after transformations: ``, ``Endpoint response body before transformations: ``,
      ``AWS Integration Endpoint RequestId : ``, ``Execution failed due to configuration error:
      Invalid permissions on Lambda function`` / ``Malformed Lambda proxy response``, ``Lambda
      execution failed with status 200 due to customer function error: <m>. Lambda request id:
      <id>``, ``Execution failed due to a timeout error``;
    - WebSocket wording seen only in an unattributed emulator (unverified): ``WebSocket Request
      Route: [<key>]``, ``Client [UserAgent: <ua>, SourceIp: <ip>] is connecting to WebSocket API
      [<api>].`` (``null`` without a User-Agent: inferred), ``WebSocket API [<api>] received message
      from client [Connection Id: <id>].``, ``Client [Connection Id: <id>] connected to API [<api>]
      successfully.``, ``Message from client [Connection Id: <id>] sent to API [<api>] with response
      status code [<n>].``, ``Client [Connection Id: <id>] disconnected from API [<api>] with
      integration response status code [<n>]. Close reason: [<code>: <reason>]``;
    - the lab's own wording (nothing to compare with): the ``Execution failed: ...`` lines for a
      rejected handshake, a message no route takes, and a route without an integration.
    """
    if logging_level == "OFF":
        return []
    request_id = _render(context.get("requestId"))
    api_id = _render(context.get("apiId"))
    connection_id = _render(context.get("connectionId"))
    event_type = context.get("eventType")
    route_key = context.get("routeKey")
    lines: list[tuple[_LineLevel, str]] = [
        ("INFO", f"Extended Request Id: {_render(context.get('extendedRequestId'))}"),
        ("INFO", f"Starting execution for request: {request_id}"),
    ]
    if route_key is not None:
        lines.append(("INFO", f"WebSocket Request Route: [{route_key}]"))
    if event_type == "CONNECT":
        user_agent = context.get("identity.userAgent") or "null"
        source_ip = _render(context.get("identity.sourceIp"))
        lines.append(
            (
                "INFO",
                f"Client [UserAgent: {user_agent}, SourceIp: {source_ip}] is connecting to "
                f"WebSocket API [{api_id}].",
            )
        )
    elif event_type == "MESSAGE":
        lines.append(
            (
                "INFO",
                f"WebSocket API [{api_id}] received message from client [Connection Id: {connection_id}].",
            )
        )
    lines += authorizer_lines
    integration = decision.integration if decision is not None else None
    if integration is not None and result is not None and result.kind != "not-invoked":
        lines += _integration_lines(
            integration,
            result,
            data_trace=data_trace,
            request_body=request_body,
            response_body=response_body,
        )
    status = context.get("status")
    if throttled_by is not None:
        lines.append(("ERROR", f"Execution failed: throttled by {throttled_by}"))
    elif event_type == "MESSAGE" and decision is not None and decision.kind == "no-route":
        lines.append(
            (
                "ERROR",
                f"Execution failed: no route matches route selection value "
                f"[{decision.selection_value}] and the API has no $default route",
            )
        )
    elif event_type == "MESSAGE" and decision is not None and decision.kind == "no-integration":
        lines.append(
            (
                "ERROR",
                "Execution failed due to configuration error: no integration defined for route "
                f"[{decision.route_key}]",
            )
        )
    if event_type == "CONNECT":
        if status == 200:
            lines.append(
                ("INFO", f"Client [Connection Id: {connection_id}] connected to API [{api_id}] successfully.")
            )
        else:
            lines.append(
                (
                    "ERROR",
                    f"Execution failed: client [Connection Id: {connection_id}] rejected with "
                    f"status code [{_render(status)}]",
                )
            )
    elif event_type == "MESSAGE":
        lines.append(
            (
                "INFO",
                f"Message from client [Connection Id: {connection_id}] sent to API [{api_id}] "
                f"with response status code [{_render(status)}].",
            )
        )
    elif event_type == "DISCONNECT":
        reason = MISSING_VALUE if close is None else f"{close.code}: {close.reason}"
        lines.append(
            (
                "INFO",
                f"Client [Connection Id: {connection_id}] disconnected from API [{api_id}] with "
                f"integration response status code [{_render(context.get('integration.status'))}]. "
                f"Close reason: [{reason}]",
            )
        )
    wanted = {"INFO", "ERROR"} if logging_level == "INFO" else {"ERROR"}
    return [_truncate(f"({request_id}) {text}") for level, text in lines if level in wanted]
