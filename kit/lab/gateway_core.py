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

Sections: handshake, message and disconnect outcomes; inbound limits and close codes; timers;
connection registry; @connections. The configuration snapshot and route selection are
:mod:`kit.lab.gateway_config`; the events, integrations, ids and times are :mod:`kit.lab.gateway_events`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import unquote

from kit.errors import KitError
from kit.lab.gateway_config import RouteDecision
from kit.lab.gateway_events import (
    Connection,
    Header,
    IntegrationResult,
    header_value,
    is_valid_connection_id,
    iso8601,
)
from kit.throttling import (
    THROTTLED_RESPONSE_TYPE,
    TOO_MANY_REQUESTS,
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


# A throttled handshake: 429 with the JSON body HTTP APIs send (terraform-aws-apigateway-v2#13,
# pulumi/pulumi-aws#2363); the WebSocket body is inferred. Nothing is invoked.
THROTTLED_HANDSHAKE = HandshakeDecision(
    accept=False,
    status=429,
    headers=(("Content-Type", "application/json"),),
    body=json.dumps({"message": TOO_MANY_REQUESTS}),
    context_status=429,
    error_message=TOO_MANY_REQUESTS,
    response_type=THROTTLED_RESPONSE_TYPE,
)


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


def throttled_message_outcome(connection_id: str, request_id: str) -> RouteOutcome:
    """A message the stage's or the account's limit refused: nothing is invoked; the client gets an error
    frame ``Too Many Requests`` and the socket stays open (inferred: no capture of a throttled WebSocket
    message exists; the frame is shaped as AWS's other gateway error frames, the words are the 429's)."""
    return RouteOutcome(
        (error_frame(TOO_MANY_REQUESTS, connection_id, request_id),),
        429,
        TOO_MANY_REQUESTS,
        THROTTLED_RESPONSE_TYPE,
    )


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
# BOTO-MGMT: LimitExceededException, HTTP 429; the body's message is inferred (the 429's words).
THROTTLED_MANAGEMENT = management_error(429, "LimitExceededException", TOO_MANY_REQUESTS)
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
