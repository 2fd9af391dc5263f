"""The lab's DynamoDB front door: checks the signature and the caller's IAM role, then forwards to DynamoDB.

Lambda functions in the lab get their own credentials (as Lambda gets temporary credentials for the execution
role) and ``AWS_ENDPOINT_URL_DYNAMODB`` pointing here. For each request this server first verifies its SigV4
signature with :mod:`kit.lab.sigv4` (the secret and session token the key was issued with, the scope's region
and service, the time) and answers AWS's ``InvalidSignatureException``, ``UnrecognizedClientException`` or
``IncompleteSignatureException`` when it fails. Then it finds the principal from the signing access key, the
action from ``X-Amz-Target`` and the resources from the body (table ARN, or ``table/<name>/index/<index>``
when ``IndexName`` is given), asks an authorizer, and either answers AWS's ``AccessDeniedException`` (HTTP
400, JSON protocol) or forwards the request unchanged but for the access key, so DynamoDB Local keeps the
region apart as AWS does.

Requests signed with the lab's own key (the kit itself, the user's notebook) are forwarded without IAM
checks, as an administrator's would be (their signature is verified all the same). What decides a request is
the authorizer's business; this module only parses, asks and forwards. It must not read configuration
itself.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from kit.lab import sigv4
from kit.lab.engines import LOOPBACK
from kit.lab.hops import DYNAMODB_ENGINE, FRONT_DOOR, Hops
from kit.local import LOCAL_ACCESS_KEY_ID

log = logging.getLogger("kit.lab")

JSON_CONTENT_TYPE = "application/x-amz-json-1.0"


@dataclass(frozen=True)
class SignedScope:
    access_key_id: str
    region: str
    service: str


def parse_scope(authorization: str) -> SignedScope | None:
    """The access key, region and service of a SigV4 ``Authorization`` header, or None when unsigned."""
    marker = "Credential="
    if marker not in authorization:
        return None
    parts = authorization.split(marker, 1)[1].split(",", 1)[0].strip().split("/")
    if len(parts) < 5:
        return None
    return SignedScope(parts[0], parts[2], parts[3])


def resign_for_engine(authorization: str, access_key_id: str) -> str:
    """The same header with the engine's access key in place of the caller's (DynamoDB Local keeps one
    database per access key and region; every lab caller must land in the same per-region database)."""
    scope = parse_scope(authorization)
    if scope is None:
        return authorization
    return authorization.replace(f"Credential={scope.access_key_id}/", f"Credential={access_key_id}/", 1)


def table_arn(region: str, account_id: str, table: str) -> str:
    return f"arn:aws:dynamodb:{region}:{account_id}:table/{table}"


def requested_resources(operation: str, body: dict[str, Any], region: str, account_id: str) -> list[str]:
    """Every resource ARN a DynamoDB request touches, as IAM sees them (pure; tested by table)."""
    if operation == "ListTables":
        return [f"arn:aws:dynamodb:{region}:{account_id}:table/*"]
    tables: list[tuple[str, str | None]] = []
    if "RequestItems" in body and isinstance(body["RequestItems"], dict):
        tables.extend((str(name), None) for name in body["RequestItems"])
    elif "TransactItems" in body and isinstance(body["TransactItems"], list):
        for item in body["TransactItems"]:
            for part in item.values() if isinstance(item, dict) else ():
                if isinstance(part, dict) and "TableName" in part:
                    tables.append((str(part["TableName"]), None))
    elif "TableName" in body:
        index = body.get("IndexName")
        tables.append((str(body["TableName"]), str(index) if index else None))
    arns = []
    for table, index in tables:
        arn = table_arn(region, account_id, table)
        arns.append(f"{arn}/index/{index}" if index else arn)
    return arns or [f"arn:aws:dynamodb:{region}:{account_id}:*"]


# authorize(access_key_id, action, resource_arn) -> None when allowed, else the AccessDenied message.
# It raises KeyError for an access key the lab never issued.
Authorizer = Callable[[str, str, str], str | None]


def error_body(code: str, message: str, message_key: str = "Message") -> bytes:
    """AWS's JSON error body; authentication errors spell the key ``message`` (see kit.lab.sigv4)."""
    return json.dumps({"__type": f"com.amazon.coral.service#{code}", message_key: message}).encode()


class DynamoDBFront:
    """A threaded HTTP server on loopback in front of one DynamoDB engine."""

    def __init__(
        self,
        engine_url: str,
        authorize: Authorizer,
        account_id: str,
        secrets: sigv4.SecretLookup,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        hops: Hops | None = None,
    ) -> None:
        self.engine_url = engine_url
        self.hops = hops or Hops()
        self.authorize = authorize
        self.account_id = account_id
        self.secrets = secrets
        self.clock = clock
        self._local = threading.local()
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The headers and the body go out in two writes; with Nagle on, the body waits for the client's
            # delayed ACK of the headers (40 ms on Linux) on every kept-alive request.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with front.hops.span(FRONT_DOOR):
                    status, headers, payload = front.handle(
                        "POST", self.path, list(self.headers.items()), body
                    )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        # shutdown() returns at the loop's next poll (socketserver's default 0.5 s was paid at each lab stop).
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="dynamodb-front",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_port}"

    def start(self) -> DynamoDBFront:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def handle(
        self, method: str, target: str, received: list[tuple[str, str]], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Verify, decide and forward one request; returns (status, headers, body) for the caller."""
        headers = dict(received)
        lower = {k.lower(): v for k, v in headers.items()}
        json_headers = {"Content-Type": JSON_CONTENT_TYPE}
        received_request = sigv4.ReceivedRequest(method, target, received, body)
        scope = sigv4.verify(received_request, sigv4.DYNAMODB, self.secrets, self.clock())
        if isinstance(scope, sigv4.Rejection):
            return scope.status, json_headers, error_body(scope.code, scope.message, "message")
        operation = lower.get("x-amz-target", "").rsplit(".", 1)[-1]
        if scope.access_key_id != LOCAL_ACCESS_KEY_ID:
            try:
                request = json.loads(body or b"{}")
            except ValueError:
                request = {}
            action = f"dynamodb:{operation}"
            for resource in requested_resources(
                operation, request if isinstance(request, dict) else {}, scope.region, self.account_id
            ):
                try:
                    denial = self.authorize(scope.access_key_id, action, resource)
                except KeyError:  # a key with a secret but no role: refused, as a stranger's
                    return (
                        400,
                        json_headers,
                        error_body(sigv4.UNRECOGNIZED_CLIENT, sigv4.INVALID_TOKEN_MESSAGE, "message"),
                    )
                if denial is not None:
                    return 400, json_headers, error_body("AccessDeniedException", denial)
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            headers["Authorization"] = resign_for_engine(lower["authorization"], LOCAL_ACCESS_KEY_ID)
        return self._forward(headers, body)

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            parts = urlsplit(self.engine_url)
            connection = http.client.HTTPConnection(parts.hostname or LOOPBACK, parts.port, timeout=30)
            self._local.connection = connection
        return connection

    def _forward(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        skip = {"host", "content-length", "connection", "keep-alive"}
        forwarded = {k: v for k, v in headers.items() if k.lower() not in skip}
        for attempt in (1, 2):  # a kept-alive connection may have been closed by the engine meanwhile
            connection = self._connection()
            try:
                with self.hops.span(DYNAMODB_ENGINE):
                    connection.request("POST", "/", body=body, headers=forwarded)
                    response = connection.getresponse()
                    payload = response.read()
                keep = {
                    k: v
                    for k, v in response.getheaders()
                    if k.lower() in ("content-type", "x-amzn-requestid", "x-amz-crc32")
                }
                return response.status, keep, payload
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    log.warning("DynamoDB engine at %s did not answer: %s", self.engine_url, exc)
        # The engine is down: answer as an unavailable service would, so callers fail loudly, not silently.
        return (
            503,
            {"Content-Type": JSON_CONTENT_TYPE},
            error_body(
                "ServiceUnavailableException", "DynamoDB is unavailable (the lab's engine does not answer)."
            ),
        )
