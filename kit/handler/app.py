"""The fixed WebSocket handler for the chat app: store connections on ``$connect``, broadcast to a workspace.

One Lambda serves every route of the API Gateway WebSocket API (``requestContext.routeKey``):

    $connect     validate ``token`` and ``workspaceId`` from the query string, authenticate, then PutItem
                 ``{connectionId, workspaceId, userId, timestamp, status}`` unless the id is already stored
    $disconnect  DeleteItem by connectionId (absent is fine: $disconnect is best-effort and may repeat)
    message      body ``{"action": "message", "message": "<text>"}`` (a non-empty string, at most 16 KB)
    presence     body ``{"action": "presence", "status": "online|away|busy|offline"}``
    typing       body ``{"action": "typing", "isTyping": true|false}``

Broadcasts post ``{"type": <route>, "from": <sender userId>, "workspaceId": ..., <the route's field>}`` to
every other connection in the sender's workspace (found through the ``workspaceIndex`` GSI, all pages); a
410 Gone deletes that stale row. The answer is 200 with ``{delivered, pruned, failed}`` counts.

The seed's handler stored nothing and still answered 200, because it swallowed every DynamoDB error and
logged it at INFO, a level Lambda drops by default. This one never answers 2xx after a failed write, and logs
one JSON line per event at a level Lambda keeps. Status codes:

    400  malformed event, query parameter or body; unknown route        (nothing written)
    401  token rejected: not an e-mail (AUTH_MODE=email), bad signature or expired (AUTH_MODE=signed)
    403  sender's connection is not stored, so it has no workspace
    409  the connectionId is already stored (conditional put failed; the stored item is left as it was)
    500  configuration missing (TABLE_NAME, AUTH_SECRET, the user in the authorizer's context) or DynamoDB
         failed (any ClientError, unreachable endpoint, missing table, missing region or credentials); also
         any unexpected exception, logged with its traceback, because a caught 500 with a log line says more
         than the 502 an uncaught one gives
    502  a broadcast reached nobody: every post to @connections failed for a reason other than 410 Gone

Environment, read on every invocation: ``TABLE_NAME`` (required), ``TABLE_REGION`` (else ``AWS_REGION`` /
``AWS_DEFAULT_REGION``), ``INDEX_NAME`` (default ``workspaceIndex``), ``AUTH_MODE`` (``email`` default,
``signed``, or ``authorizer``: a $connect Lambda authorizer checked the token, and the user is the ``userId``
of its context in ``requestContext.authorizer``), ``AUTH_SECRET`` (required when signed),
``MANAGEMENT_ENDPOINT`` (else ``https://{domainName}/{stage}`` from the event; set it when the API sits
behind a custom domain).

What this module must not do: import anything from ``kit`` (it is zipped alone as ``app.py``); choose
endpoints itself (botocore honours ``AWS_ENDPOINT_URL_DYNAMODB`` and
``AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI``, so the same code runs on AWS and in the lab); log a token, an
e-mail address or a secret (users appear as a short hash).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

# ----------------------------------------------------------------------------------------------------
# Limits and vocabularies

ROUTE_CONNECT: Final = "$connect"
ROUTE_DISCONNECT: Final = "$disconnect"
ROUTE_MESSAGE: Final = "message"
ROUTE_PRESENCE: Final = "presence"
ROUTE_TYPING: Final = "typing"
BROADCAST_ROUTES: Final = frozenset({ROUTE_MESSAGE, ROUTE_PRESENCE, ROUTE_TYPING})
KNOWN_ROUTES: Final = frozenset({ROUTE_CONNECT, ROUTE_DISCONNECT}) | BROADCAST_ROUTES

MAX_TOKEN_LENGTH: Final = 2048
MAX_WORKSPACE_ID_LENGTH: Final = 128
# AWS ids are 16 characters; emulators (serverless-offline) use UUIDs, so allow more but not without bound.
MAX_CONNECTION_ID_LENGTH: Final = 128
MAX_USER_ID_LENGTH: Final = 256
MAX_EMAIL_LENGTH: Final = 254
# API Gateway closes the socket (1009) for messages over 128 KB, so a larger body never comes from AWS.
MAX_BODY_BYTES: Final = 128 * 1024
# Each @connections post is one frame, and frames over 32 KB are refused; half of that for the text leaves
# room for the envelope (sender, workspace) whatever the text's JSON escaping costs.
MAX_MESSAGE_JSON_BYTES: Final = 16 * 1024
MAX_FRAME_BYTES: Final = 32 * 1024
PRESENCE_STATUSES: Final = frozenset({"online", "away", "busy", "offline"})

WORKSPACE_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._:-]+")
# Printable ASCII without space: a token travels in a URL query string and never needs anything else.
TOKEN_PATTERN: Final = re.compile(r"[\x21-\x7e]+")
CONNECTION_ID_PATTERN: Final = re.compile(r"[\x21-\x7e]+")
_EMAIL_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
EMAIL_PATTERN: Final = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@" + _EMAIL_LABEL + r"(?:\." + _EMAIL_LABEL + r")+"
)
# The event's domainName and stage become an URL; accept host names and stage names only.
DOMAIN_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?")
STAGE_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
EXECUTE_API_HOST_PATTERN: Final = re.compile(
    r"[a-z0-9]+\.execute-api\.(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9])\.amazonaws\.com(?:\.cn)?"
)

DEFAULT_INDEX_NAME: Final = "workspaceIndex"
AUTH_MODES: Final = frozenset({"email", "signed", "authorizer"})

# Short timeouts so a dead or unreachable DynamoDB turns into a 500 in seconds, well inside API Gateway's
# 29 s integration timeout, instead of botocore's 60 s default hanging the handshake.
# A broadcast posts to this many connections at a time. On AWS each post to @connections is a network round
# trip, so a workspace of 1,000 posted one by one takes seconds (the Node.js handlers this kit replaces post
# with Promise.all); the client's connection pool is as large, so no thread waits for a connection.
POST_CONCURRENCY: Final = 16
CLIENT_CONFIG: Final = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 2},
    max_pool_connections=POST_CONCURRENCY,
)

# ----------------------------------------------------------------------------------------------------
# Logging

# Not "kit.handler": as the parent of "kit.handler.seed" it would lift the seed to INFO and show the
# swallowed errors that Lambda hides; the seed must stay as invisible in the lab as it is on AWS.
LOGGER_NAME: Final = "kit.handler.app"
_LAMBDA_LEVELS: Final = {"TRACE": logging.DEBUG, "WARN": logging.WARNING, "FATAL": logging.CRITICAL}


def logger_level(lambda_log_level: str | None) -> int:
    """The level for this module's logger, given ``AWS_LAMBDA_LOG_LEVEL`` (None when unset).

    Lambda's Python runtime sets the root level only when ``AWS_LAMBDA_LOG_LEVEL`` is set; otherwise the root
    stays at WARNING and every ``info()`` line vanishes (the seed's bug). So: INFO unless Lambda was told
    otherwise, in which case follow Lambda.
    """
    if not lambda_log_level:
        return logging.INFO
    name = lambda_log_level.strip().upper()
    if name in _LAMBDA_LEVELS:
        return _LAMBDA_LEVELS[name]
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else logging.INFO


logger = logging.getLogger(LOGGER_NAME)
# No handler is added: on Lambda the root logger has one, and a library adding its own would print twice.
# Locally, call logging.basicConfig(level=logging.INFO) to see the INFO lines.
logger.setLevel(logger_level(os.environ.get("AWS_LAMBDA_LOG_LEVEL")))


def user_hash(user_id: str) -> str:
    """A short, stable stand-in for a user id in logs: the id itself may be an e-mail address."""
    return hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _loggable(value: object, limit: int = 128) -> object:
    """Event values for log lines: strings cut to ``limit``, other types named, so odd events stay short."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return value[:limit]
    return f"<{type(value).__name__}>"


# ----------------------------------------------------------------------------------------------------
# Errors and results


class HandlerError(Exception):
    """An expected failure, answered with ``status`` and a JSON body naming ``code``; never escapes."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        outcome: str = "rejected",
        details: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.outcome = outcome
        self.details = dict(details or {})


class TokenError(Exception):
    """A signed token was rejected; ``reason`` is ``InvalidToken`` or ``TokenExpired``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Result:
    """What one invocation answers and logs."""

    status: int
    outcome: str
    message: str
    error_code: str | None = None
    body: dict[str, object] = field(default_factory=dict)
    log_fields: dict[str, object] = field(default_factory=dict)
    level: int = logging.INFO


def proxy_response(status: int, message: str, **fields: object) -> dict[str, Any]:
    """A Lambda proxy response: ``{"statusCode": status, "body": '{"message": ..., ...}'}``."""
    return {"statusCode": status, "body": json.dumps({"message": message, **fields})}


def _error_body(status: int, code: str) -> dict[str, object]:
    # 4xx: the caller's fault, so a "reason"; 5xx: ours, so an "error".
    return {"reason": code} if status < 500 else {"error": code}


# ----------------------------------------------------------------------------------------------------
# Signed tokens (AUTH_MODE=signed)


def _b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.b64decode(padded, altchars=b"-_", validate=True)


def _secret_bytes(secret: str | bytes) -> bytes:
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not raw:
        raise ValueError("The token secret is empty; set AUTH_SECRET.")
    return raw


def _signature(payload_part: str, secret: bytes) -> str:
    return _b64url_encode(hmac.new(secret, payload_part.encode("ascii"), hashlib.sha256).digest())


def sign_token(user_id: str, secret: str | bytes, expires_at_epoch: int) -> str:
    """A token for ``user_id`` valid until ``expires_at_epoch`` (seconds): ``b64url(payload).b64url(hmac)``.

    The payload is the JSON ``{"exp": expires_at_epoch, "sub": user_id}``; the signature is HMAC-SHA256 of the
    encoded payload under ``secret``. Both parts are unpadded base64url, so the token is URL-safe as is.
    """
    if not isinstance(user_id, str) or not TOKEN_PATTERN.fullmatch(user_id):
        raise ValueError("user_id must be printable ASCII without whitespace.")
    if len(user_id) > MAX_USER_ID_LENGTH:
        raise ValueError(f"user_id is longer than {MAX_USER_ID_LENGTH} characters.")
    if isinstance(expires_at_epoch, bool) or not isinstance(expires_at_epoch, int):
        raise ValueError("expires_at_epoch must be an integer number of seconds.")
    payload = json.dumps({"exp": expires_at_epoch, "sub": user_id}, separators=(",", ":"), sort_keys=True)
    payload_part = _b64url_encode(payload.encode("utf-8"))
    return f"{payload_part}.{_signature(payload_part, _secret_bytes(secret))}"


def verify_token(token: str, secret: str | bytes, now: float) -> str:
    """The user id in ``token`` if its signature is ``secret``'s and it has not expired at ``now`` (seconds).

    Raises ``TokenError`` (reason ``InvalidToken`` or ``TokenExpired``) for anything else, and ``ValueError``
    for an empty secret, which is a configuration error rather than a bad token.
    """
    key = _secret_bytes(secret)
    if not isinstance(token, str) or not token.isascii() or token.count(".") != 1:
        raise TokenError("InvalidToken", "The token is not two base64url parts joined by a dot.")
    payload_part, signature_part = token.split(".")
    # Compare before decoding anything, so the payload of an unsigned token is never parsed.
    if not hmac.compare_digest(_signature(payload_part, key), signature_part):
        raise TokenError("InvalidToken", "The token's signature does not match.")
    try:
        claims = json.loads(_b64url_decode(payload_part))
    except (binascii.Error, ValueError, RecursionError) as exc:
        raise TokenError("InvalidToken", "The token's payload is not base64url JSON.") from exc
    if not isinstance(claims, dict):
        raise TokenError("InvalidToken", "The token's payload is not a JSON object.")
    subject, expires = claims.get("sub"), claims.get("exp")
    if not isinstance(subject, str) or not subject or len(subject) > MAX_USER_ID_LENGTH:
        raise TokenError("InvalidToken", "The token has no usable subject.")
    if not TOKEN_PATTERN.fullmatch(subject):
        raise TokenError("InvalidToken", "The token's subject is not printable ASCII.")
    if isinstance(expires, bool) or not isinstance(expires, int):
        raise TokenError("InvalidToken", "The token has no integer expiry.")
    if now >= expires:
        raise TokenError("TokenExpired", "The token has expired.")
    return subject


def is_email(token: str) -> bool:
    """A basic e-mail shape check (local@domain.tld), the only check AUTH_MODE=email can make."""
    return len(token) <= MAX_EMAIL_LENGTH and EMAIL_PATTERN.fullmatch(token) is not None


# ----------------------------------------------------------------------------------------------------
# Configuration and clients


@dataclass(frozen=True)
class Settings:
    """The function's configuration, read from the environment on every invocation."""

    table_name: str | None
    table_region: str | None
    index_name: str
    auth_mode: str
    auth_secret: str | None = field(repr=False)
    management_endpoint: str | None


def _config(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the configuration now: tests and the lab change the environment between invocations."""
    env = os.environ if environ is None else environ
    return Settings(
        table_name=env.get("TABLE_NAME") or None,
        # botocore itself reads only AWS_DEFAULT_REGION; Lambda sets both, a shell often only AWS_REGION.
        table_region=env.get("TABLE_REGION")
        or env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
        or None,
        index_name=env.get("INDEX_NAME") or DEFAULT_INDEX_NAME,
        auth_mode=(env.get("AUTH_MODE") or "email").strip().lower(),
        auth_secret=env.get("AUTH_SECRET") or None,
        management_endpoint=env.get("MANAGEMENT_ENDPOINT") or None,
    )


def _require_table(settings: Settings) -> str:
    if settings.table_name is None:
        raise HandlerError(
            500,
            "MissingTableName",
            "TABLE_NAME is not set in the function's environment, so there is no table to write to.",
            outcome="config_error",
        )
    return settings.table_name


# Everything that changes which endpoint, region or credentials botocore picks: a client built under other
# values must not be reused. On Lambda these never change, so warm invocations always hit the cache.
_CLIENT_ENVIRONMENT: Final = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
_CLIENT_CACHE_LIMIT: Final = 32
_clients: dict[tuple[object, ...], Any] = {}


def _environment_fingerprint() -> str:
    # Hashed so the cache keys never hold credentials in clear.
    values = "\x00".join(os.environ.get(name, "\x01") for name in _CLIENT_ENVIRONMENT)
    return hashlib.sha256(values.encode("utf-8", "surrogatepass")).hexdigest()


def _client(service: str, region: str | None, endpoint_url: str | None = None) -> Any:
    """A cached boto3 client; a fresh botocore session per key, because a session caches its credentials."""
    key = (service, region, endpoint_url, _environment_fingerprint())
    client = _clients.get(key)
    if client is None:
        if len(_clients) >= _CLIENT_CACHE_LIMIT:
            _clients.clear()
        session = boto3.session.Session()
        client = session.client(service, region_name=region, endpoint_url=endpoint_url, config=CLIENT_CONFIG)
        _clients[key] = client
    return client


def _dynamodb(settings: Settings) -> Any:
    return _client("dynamodb", settings.table_region)


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "ClientError")
    return type(exc).__name__


def _storage_error(exc: BaseException, operation: str, settings: Settings) -> HandlerError:
    """A 500 naming the operation, table, region and endpoint: "the write went elsewhere" shows up here."""
    code = _error_code(exc)
    return HandlerError(
        500,
        code,
        f"DynamoDB {operation} on table {settings.table_name} failed with {code}.",
        outcome="error",
        details={
            "operation": operation,
            "table": settings.table_name,
            "region": settings.table_region,
            "dynamodb_endpoint": _dynamodb_endpoint(settings),
        },
    )


def _dynamodb_endpoint(settings: Settings) -> str | None:
    """Where the DynamoDB client sends requests, or None when it cannot even be built (no region...)."""
    try:
        endpoint = _dynamodb(settings).meta.endpoint_url
    except BotoCoreError:
        return None
    return endpoint if isinstance(endpoint, str) else None


# ----------------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True)
class Request:
    """The parts of an API Gateway WebSocket event every route needs."""

    route_key: str
    connection_id: str
    request_context: Mapping[str, Any]


def parse_request(event: object) -> Request:
    """Route key and connection id from ``event``; ``HandlerError`` 400 when they are missing or malformed."""
    if not isinstance(event, Mapping):
        raise HandlerError(400, "MalformedEvent", "The event is not a JSON object.")
    request_context = event.get("requestContext")
    if not isinstance(request_context, Mapping):
        raise HandlerError(400, "MissingRequestContext", "The event has no requestContext object.")
    route_key = request_context.get("routeKey")
    if not isinstance(route_key, str) or not route_key:
        raise HandlerError(400, "MissingRouteKey", "requestContext.routeKey is missing or not a string.")
    if route_key not in KNOWN_ROUTES:
        raise HandlerError(
            400,
            "UnknownRoute",
            f"No handler for route {route_key[:64]!r}; known routes: {', '.join(sorted(KNOWN_ROUTES))}.",
        )
    connection_id = request_context.get("connectionId")
    if not isinstance(connection_id, str) or not connection_id:
        raise HandlerError(
            400, "MissingConnectionId", "requestContext.connectionId is missing or not a string."
        )
    if len(connection_id) > MAX_CONNECTION_ID_LENGTH or not CONNECTION_ID_PATTERN.fullmatch(connection_id):
        raise HandlerError(400, "InvalidConnectionId", "requestContext.connectionId is malformed.")
    return Request(route_key, connection_id, request_context)


def _query_parameter(query: Mapping[str, Any], name: str, max_length: int, pattern: re.Pattern[str]) -> str:
    value = query.get(name)
    details = {"parameter": name}
    if value is None:
        raise HandlerError(400, "MissingParameter", f"Query parameter {name} is missing.", details=details)
    if not isinstance(value, str):
        raise HandlerError(
            400, "InvalidParameter", f"Query parameter {name} is not a string.", details=details
        )
    if not value:
        raise HandlerError(400, "EmptyParameter", f"Query parameter {name} is empty.", details=details)
    if len(value) > max_length:
        raise HandlerError(
            400,
            "ParameterTooLong",
            f"Query parameter {name} is longer than {max_length} characters.",
            details=details,
        )
    if not pattern.fullmatch(value):
        raise HandlerError(
            400,
            "InvalidParameter",
            f"Query parameter {name} has characters it may not have.",
            details=details,
        )
    return value


def parse_connect_parameters(event: Mapping[str, Any]) -> tuple[str, str]:
    """``(token, workspace_id)`` from the $connect query string, validated; ``HandlerError`` 400 otherwise.

    The ``queryStringParameters`` key is absent when the URL had no query string, and null in old captures.
    """
    query = event.get("queryStringParameters") or {}
    if not isinstance(query, Mapping):
        raise HandlerError(400, "MalformedQueryString", "queryStringParameters is not an object.")
    token = _query_parameter(query, "token", MAX_TOKEN_LENGTH, TOKEN_PATTERN)
    workspace_id = _query_parameter(query, "workspaceId", MAX_WORKSPACE_ID_LENGTH, WORKSPACE_ID_PATTERN)
    return token, workspace_id


def parse_body(event: Mapping[str, Any], route_key: str) -> dict[str, Any]:
    """The JSON object sent on ``route_key``; ``HandlerError`` 400 unless it is one, with that action."""
    if event.get("isBase64Encoded") is True:
        raise HandlerError(400, "BinaryBody", "Binary frames are not accepted; send a JSON text frame.")
    body = event.get("body")
    if not isinstance(body, str) or not body:
        raise HandlerError(400, "MissingBody", "The message has no body.")
    # Length in characters first: a cheap bound before encoding a possibly huge string.
    if len(body) > MAX_BODY_BYTES or len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise HandlerError(400, "BodyTooLarge", f"The body is larger than {MAX_BODY_BYTES} bytes.")
    try:
        message = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise HandlerError(400, "BodyNotJson", "The body is not valid JSON.") from exc
    if not isinstance(message, dict):
        raise HandlerError(400, "BodyNotObject", "The body is JSON but not an object.")
    action = message.get("action")
    if action != route_key:
        raise HandlerError(
            400,
            "ActionMismatch",
            f"The body's action does not match the route {route_key!r}.",
            details={"action": _loggable(action, 64)},
        )
    return message


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which json.loads lets through from "\ud800"
        return False
    return True


def _message_fields(message: Mapping[str, Any]) -> dict[str, object]:
    text = message.get("message")
    if not isinstance(text, str) or not text.strip():
        raise HandlerError(400, "MissingMessage", "The body needs a non-empty string field 'message'.")
    if not _encodable(text):
        raise HandlerError(400, "InvalidMessage", "The field 'message' is not valid Unicode text.")
    if len(json.dumps(text, ensure_ascii=False).encode("utf-8")) > MAX_MESSAGE_JSON_BYTES:
        raise HandlerError(
            400, "MessageTooLarge", f"The field 'message' is larger than {MAX_MESSAGE_JSON_BYTES} bytes."
        )
    return {"message": text}


def _presence_fields(message: Mapping[str, Any]) -> dict[str, object]:
    status = message.get("status")
    if not isinstance(status, str) or status not in PRESENCE_STATUSES:
        raise HandlerError(
            400,
            "InvalidStatus",
            f"The field 'status' must be one of {', '.join(sorted(PRESENCE_STATUSES))}.",
        )
    return {"status": status}


def _typing_fields(message: Mapping[str, Any]) -> dict[str, object]:
    is_typing = message.get("isTyping")
    if not isinstance(is_typing, bool):
        raise HandlerError(400, "InvalidIsTyping", "The field 'isTyping' must be true or false.")
    return {"isTyping": is_typing}


BROADCAST_FIELDS: Final[Mapping[str, Callable[[Mapping[str, Any]], dict[str, object]]]] = {
    ROUTE_MESSAGE: _message_fields,
    ROUTE_PRESENCE: _presence_fields,
    ROUTE_TYPING: _typing_fields,
}


def broadcast_fields(event: Mapping[str, Any], route_key: str) -> dict[str, object]:
    """The validated route-specific fields to broadcast (e.g. ``{"message": "hi"}``); ``HandlerError`` 400."""
    return BROADCAST_FIELDS[route_key](parse_body(event, route_key))


def management_endpoint(settings: Settings, request_context: Mapping[str, Any]) -> str | None:
    """Where to post: MANAGEMENT_ENDPOINT, else None when botocore has its own override, else from the event.

    ``https://{domainName}/{stage}`` is right for the execute-api host; behind a custom domain the stage is
    not a path segment, so such deployments must set MANAGEMENT_ENDPOINT.
    """
    if settings.management_endpoint:
        return settings.management_endpoint
    if os.environ.get("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"):
        return None  # botocore reads it itself; passing endpoint_url would override it
    domain_name = request_context.get("domainName")
    stage = request_context.get("stage")
    if not isinstance(domain_name, str) or not DOMAIN_NAME_PATTERN.fullmatch(domain_name):
        raise HandlerError(
            400, "MissingDomainName", "requestContext.domainName is missing or malformed; cannot reply."
        )
    if not isinstance(stage, str) or not STAGE_PATTERN.fullmatch(stage):
        raise HandlerError(400, "MissingStage", "requestContext.stage is missing or malformed; cannot reply.")
    return f"https://{domain_name}/{stage}"


def management_region(request_context: Mapping[str, Any]) -> str | None:
    """The region to sign @connections calls for: the API's, read from its execute-api host when it is one.

    Falls back to the function's own region (``AWS_REGION``, then ``AWS_DEFAULT_REGION``; botocore itself
    reads only the latter) for custom domains and the lab.
    """
    domain_name = request_context.get("domainName")
    if isinstance(domain_name, str):
        match = EXECUTE_API_HOST_PATTERN.fullmatch(domain_name)
        if match:
            return match.group("region")
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def utc_timestamp(now: datetime | None = None) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``, like JavaScript's ``toISOString()``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ----------------------------------------------------------------------------------------------------
# Routes


def _authorizer_user(request_context: Mapping[str, Any]) -> tuple[str, dict[str, object]]:
    """The user a $connect Lambda authorizer allowed (``requestContext.authorizer.userId``); a 500 when its
    context does not carry one: the authorizer, not the client, is misconfigured, and nothing is written."""
    context = request_context.get("authorizer")
    user_id = context.get("userId") if isinstance(context, Mapping) else None
    if not isinstance(user_id, str) or not user_id or len(user_id) > MAX_TOKEN_LENGTH:
        raise HandlerError(
            500,
            "MissingAuthorizerContext",
            "AUTH_MODE=authorizer but requestContext.authorizer carries no userId: the $connect authorizer "
            "must return the user in its context.",
            outcome="config_error",
            details={"authorizer_keys": sorted(context) if isinstance(context, Mapping) else []},
        )
    return user_id, {"auth_mode": "authorizer"}


def _authenticate(
    token: str, settings: Settings, request_context: Mapping[str, Any]
) -> tuple[str, dict[str, object]]:
    """The user id ``token`` (or the authorizer) proves, plus log fields; ``HandlerError`` 401 or 500."""
    if settings.auth_mode not in AUTH_MODES:
        raise HandlerError(
            500,
            "InvalidAuthMode",
            f"AUTH_MODE must be one of {', '.join(sorted(AUTH_MODES))}.",
            outcome="config_error",
        )
    if settings.auth_mode == "authorizer":
        return _authorizer_user(request_context)
    if settings.auth_mode == "email":
        if not is_email(token):
            raise HandlerError(401, "InvalidToken", "The token is not an e-mail address.")
        return token, {
            "auth_mode": "email",
            "insecure_auth": "AUTH_MODE=email trusts the token as the user's e-mail: anyone can claim any "
            "user. Set AUTH_MODE=signed and AUTH_SECRET.",
        }
    if settings.auth_secret is None:
        raise HandlerError(
            500,
            "MissingAuthSecret",
            "AUTH_MODE=signed but AUTH_SECRET is not set, so no token can be verified.",
            outcome="config_error",
        )
    try:
        return verify_token(token, settings.auth_secret, time.time()), {"auth_mode": "signed"}
    except TokenError as exc:
        raise HandlerError(401, exc.reason, str(exc)) from exc


def connect(request: Request, event: Mapping[str, Any], settings: Settings) -> Result:
    """$connect: validate, authenticate, then store the connection unless its id is already stored."""
    token, workspace_id = parse_connect_parameters(event)
    table_name = _require_table(settings)
    user_id, auth_fields = _authenticate(token, settings, request.request_context)
    item = {
        "connectionId": {"S": request.connection_id},
        "workspaceId": {"S": workspace_id},
        "userId": {"S": user_id},
        "timestamp": {"S": utc_timestamp()},
        "status": {"S": "connected"},
    }
    log_fields: dict[str, object] = {
        "workspace_id": workspace_id,
        "user_hash": user_hash(user_id),
        "table": table_name,
        **auth_fields,
    }
    try:
        _dynamodb(settings).put_item(
            TableName=table_name,
            Item=item,
            # A reused id means the event was replayed or ids collide; never overwrite another connection.
            ConditionExpression="attribute_not_exists(connectionId)",
        )
    except ClientError as exc:
        if _error_code(exc) == "ConditionalCheckFailedException":
            raise HandlerError(
                409,
                "ConnectionExists",
                "A connection with this connectionId is already stored; it was left unchanged.",
                outcome="conflict",
                details=log_fields,
            ) from exc
        raise _storage_error(exc, "PutItem", settings) from exc
    except BotoCoreError as exc:
        raise _storage_error(exc, "PutItem", settings) from exc
    log_fields["dynamodb_endpoint"] = _dynamodb_endpoint(settings)
    # Email mode works but is insecure: say so on every connect, at a level nobody's default hides.
    level = logging.WARNING if auth_fields.get("auth_mode") == "email" else logging.INFO
    return Result(200, "stored", "Connected.", log_fields=log_fields, level=level)


def disconnect(request: Request, event: Mapping[str, Any], settings: Settings) -> Result:
    """$disconnect: delete the connection; an id that is not stored is fine (best-effort, may repeat)."""
    table_name = _require_table(settings)
    try:
        response = _dynamodb(settings).delete_item(
            TableName=table_name,
            Key={"connectionId": {"S": request.connection_id}},
            ReturnValues="ALL_OLD",
        )
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "DeleteItem", settings) from exc
    existed = bool(response.get("Attributes"))
    log_fields: dict[str, object] = {
        "table": table_name,
        "disconnect_status_code": _loggable(request.request_context.get("disconnectStatusCode")),
    }
    return Result(200, "deleted" if existed else "absent", "Disconnected.", log_fields=log_fields)


def _sender(request: Request, settings: Settings, table_name: str) -> tuple[str, str | None]:
    """The sender's ``(workspace_id, user_id)`` from its stored connection; 403 when it is not stored."""
    try:
        response = _dynamodb(settings).get_item(
            TableName=table_name,
            Key={"connectionId": {"S": request.connection_id}},
            ConsistentRead=True,
        )
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "GetItem", settings) from exc
    item = response.get("Item") or {}
    workspace_id = item.get("workspaceId", {}).get("S")
    if not workspace_id:
        raise HandlerError(
            403,
            "SenderNotRegistered",
            "The sender's connection is not stored with a workspaceId, so there is no one to send to.",
        )
    user_id = item.get("userId", {}).get("S")
    return workspace_id, user_id


def _workspace_connections(settings: Settings, table_name: str, workspace_id: str) -> Iterator[str]:
    # A GSI query is paged at 1 MB; without the paginator a large workspace silently loses recipients.
    paginator = _dynamodb(settings).get_paginator("query")
    pages = paginator.paginate(
        TableName=table_name,
        IndexName=settings.index_name,
        KeyConditionExpression="workspaceId = :workspace_id",
        ExpressionAttributeValues={":workspace_id": {"S": workspace_id}},
        ProjectionExpression="connectionId",
    )
    for page in pages:
        for item in page.get("Items", []):
            connection_id = item.get("connectionId", {}).get("S")
            if connection_id:
                yield connection_id


def broadcast(request: Request, event: Mapping[str, Any], settings: Settings) -> Result:
    """message / presence / typing: post the validated payload to every other connection in the workspace."""
    fields = broadcast_fields(event, request.route_key)
    table_name = _require_table(settings)
    endpoint_url = management_endpoint(settings, request.request_context)
    workspace_id, user_id = _sender(request, settings, table_name)
    payload = {"type": request.route_key, "from": user_id, "workspaceId": workspace_id, **fields}
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    if len(data) > MAX_FRAME_BYTES:
        raise HandlerError(400, "MessageTooLarge", f"The frame would be larger than {MAX_FRAME_BYTES} bytes.")
    try:
        recipients = sorted(set(_workspace_connections(settings, table_name, workspace_id)))
    except (ClientError, BotoCoreError) as exc:
        raise _storage_error(exc, "Query", settings) from exc
    recipients = [connection_id for connection_id in recipients if connection_id != request.connection_id]

    counts = {"delivered": 0, "pruned": 0, "failed": 0}
    failures: dict[str, int] = {}
    if recipients:
        try:
            management = _client(
                "apigatewaymanagementapi", management_region(request.request_context), endpoint_url
            )
        except BotoCoreError as exc:
            raise HandlerError(
                500, _error_code(exc), "Could not create the @connections client.", outcome="error"
            ) from exc
        _dynamodb(settings)  # built here, once, not by several posting threads at once (a 410's delete)
        with ThreadPoolExecutor(min(POST_CONCURRENCY, len(recipients)), "broadcast-post") as posting:
            outcomes = list(
                posting.map(
                    lambda connection_id: _post(management, connection_id, data, settings, table_name),
                    recipients,
                )
            )
        for outcome in outcomes:
            if outcome in counts:
                counts[outcome] += 1
            else:
                counts["failed"] += 1
                failures[outcome] = failures.get(outcome, 0) + 1
    log_fields: dict[str, object] = {
        "workspace_id": workspace_id,
        "user_hash": user_hash(user_id) if user_id else None,
        "recipients": len(recipients),
        **counts,
        "failures": failures,
        "management_endpoint": endpoint_url,
    }
    if counts["failed"] and not counts["delivered"]:
        # Nobody got it: as silent a failure as the seed's, so make it visible to API Gateway too.
        return Result(
            502,
            "error",
            "The message reached nobody: every post to @connections failed.",
            error_code="BroadcastFailed",
            body=_error_body(502, "BroadcastFailed") | counts,
            log_fields=log_fields,
            level=logging.ERROR,
        )
    level = logging.WARNING if counts["failed"] else logging.INFO
    outcome = "partial" if counts["failed"] else "broadcast"
    return Result(200, outcome, "Sent.", body=dict(counts), log_fields=log_fields, level=level)


def _post(management: Any, connection_id: str, data: bytes, settings: Settings, table_name: str) -> str:
    """Post one frame: ``delivered``, ``pruned`` (410 Gone, item deleted), or the failing error code."""
    try:
        management.post_to_connection(ConnectionId=connection_id, Data=data)
    # GoneException subclasses ClientError, so it must be caught first or stale rows are never pruned.
    except management.exceptions.GoneException:
        try:
            _dynamodb(settings).delete_item(TableName=table_name, Key={"connectionId": {"S": connection_id}})
        except (ClientError, BotoCoreError) as exc:
            return f"PruneFailed:{_error_code(exc)}"
        return "pruned"
    except (ClientError, BotoCoreError) as exc:
        return _error_code(exc)
    return "delivered"


ROUTES: Final[Mapping[str, Callable[[Request, Mapping[str, Any], Settings], Result]]] = {
    ROUTE_CONNECT: connect,
    ROUTE_DISCONNECT: disconnect,
    ROUTE_MESSAGE: broadcast,
    ROUTE_PRESENCE: broadcast,
    ROUTE_TYPING: broadcast,
}


# ----------------------------------------------------------------------------------------------------
# Entry point


def _failure_result(exc: HandlerError) -> Result:
    # Every failure at WARNING or above: Lambda keeps those whatever the function's log level.
    level = logging.ERROR if exc.status >= 500 else logging.WARNING
    return Result(
        exc.status,
        exc.outcome,
        exc.message,
        error_code=exc.code,
        body=_error_body(exc.status, exc.code) | {k: v for k, v in exc.details.items() if k == "parameter"},
        log_fields=dict(exc.details),
        level=level,
    )


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point for every route; always returns a proxy response, never raises (see module doc)."""
    request_context = event.get("requestContext") if isinstance(event, Mapping) else None
    request_context = request_context if isinstance(request_context, Mapping) else {}
    line: dict[str, object] = {
        "route": _loggable(request_context.get("routeKey"), 64),
        "connection_id": _loggable(request_context.get("connectionId"), 64),
        "request_id": getattr(context, "aws_request_id", None),
        "apigw_request_id": _loggable(request_context.get("requestId"), 64),
    }
    exc_info = False
    try:
        request = parse_request(event)
        result = ROUTES[request.route_key](request, event, _config())
    except HandlerError as exc:
        result = _failure_result(exc)
    except Exception as exc:  # the last line of defence: answer 500 and log the traceback
        result = Result(500, "error", "Unexpected error.", error_code=type(exc).__name__, level=logging.ERROR)
        result.body = _error_body(500, "InternalError")
        exc_info = True
    line.update(
        outcome=result.outcome,
        status=result.status,
        error_code=result.error_code,
        detail=result.message if result.status >= 300 else None,
        **result.log_fields,
    )
    logger.log(result.level, json.dumps(line, default=str), exc_info=exc_info)
    return proxy_response(result.status, result.message, **result.body)
