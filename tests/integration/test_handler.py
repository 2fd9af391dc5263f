"""The handlers against real DynamoDB Local: what is stored, what is refused, what fails, and what is posted.

One table of cases, two implementations: every test runs against the Python handlers (``app.py``,
``seed.py``, called in this process) and the JavaScript ones (``app.mjs``, ``seed.mjs``, run by the lab's
Lambda runtime on nodejs20.x, one runtime for the module). Both read the same environment (the Node.js
function gets it as its configuration and Lambda's variables) and their log lines come back as log records.

Each test gets its own connections table (key ``connectionId``, GSI ``workspaceIndex`` on ``workspaceId``)
created here rather than from the kit's schema module, and points the handler at the session engine purely
through the environment, as the lab and a real Lambda do. Broadcasts go to a small stdlib HTTP server on
127.0.0.1 that plays the API Gateway @connections endpoint: 200 for live ids, 410 GoneException for stale ones.

The seed's handler is exercised too, to pin down the reported bug: it answers 200 while nothing is stored, and
its only evidence is an INFO line that Lambda's default WARNING level drops.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import hypothesis
import pytest

# tests/conftest.py is imported by pytest as the top-level module ``conftest`` (no __init__ files).
from conftest import local_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit.dynamo import lambda_handlers
from kit.dynamo.lambda_handlers import HandlerCode
from kit.errors import EngineError
from kit.handler import app, seed
from kit.lab import engines
from kit.lab.provision import HANDLER_DIR
from kit.lab.runtime import LambdaRuntime
from kit.local import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY

pytestmark = pytest.mark.integration

REGION = "us-east-2"
EVENTS = Path(__file__).resolve().parents[1] / "events"
FIELDS = {"connectionId", "workspaceId", "userId", "timestamp", "status"}
ISO_MS_Z = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
SECRET = "integration-test-secret"
# Everything that could steer the handler somewhere other than the engine under test.
HANDLER_ENVIRONMENT = (
    *lambda_handlers.FUNCTION_VARIABLES,  # what a function is configured with, in either language
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
)


# --- helpers -----------------------------------------------------------------------------------------------


def aws_id(seed_text: str) -> str:
    """A connection id of AWS's shape (15 base64url characters and ``=``), stable for a given seed."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(seed_text.encode()).digest()).decode()
    return digest[:15] + "="


def load_event(name: str, **request_context: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    event["requestContext"].update(request_context)
    return event


def connect_event(connection_id: str, token: str | None, workspace_id: str | None) -> dict[str, Any]:
    event = load_event("connect_with_query.json", connectionId=connection_id)
    query = {k: v for k, v in {"token": token, "workspaceId": workspace_id}.items() if v is not None}
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    return event


def broadcast_event(route_key: str, connection_id: str, body: dict[str, Any] | str) -> dict[str, Any]:
    event = load_event(f"{route_key}.json", connectionId=connection_id)
    event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


@dataclass(frozen=True)
class Implementation:
    """One language's handlers: ``fixed`` and ``seed`` as ``handler(event, context)``, and the loggers their
    lines arrive on as log records."""

    name: str
    fixed: Any
    seed: Any
    fixed_logger: str
    seed_logger: str
    # What the fixed handler names a refused connection to a dead DynamoDB: botocore's exception, or what
    # Node's socket says.
    unreachable: str


PYTHON = Implementation(
    "python", app.handler, seed.handler, app.LOGGER_NAME, seed.__name__, "EndpointConnectionError"
)


@pytest.fixture(scope="module")
def node_runtime() -> Iterator[tuple[LambdaRuntime, lambda_handlers.Sink]]:
    if shutil.which("node") is None:
        pytest.skip("no `node` on PATH: the JavaScript handlers cannot run")
    sink = lambda_handlers.Sink()
    with LambdaRuntime(sink) as runtime:
        yield runtime, sink


@pytest.fixture(params=["python", "node"])
def impl(request: pytest.FixtureRequest) -> Implementation:
    if request.param == "python":
        return PYTHON
    runtime, sink = request.getfixturevalue("node_runtime")

    def run(handler: str) -> Any:
        code = HandlerCode(handler, handler, "nodejs20.x", str(HANDLER_DIR))
        return lambda_handlers.runtime_handler(runtime, sink, code, REGION)

    logger = lambda_handlers.LOGGER_NAME
    return Implementation("node", run("app.handler"), run("seed.handler"), logger, logger, "ECONNREFUSED")


def invoke(handler: Any, event: Any) -> tuple[int, dict[str, Any]]:
    response = handler(event, None)
    assert isinstance(response["statusCode"], int)
    return response["statusCode"], json.loads(response["body"])


def create_connections_table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "connectionId", "AttributeType": "S"},
            {"AttributeName": "workspaceId", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "connectionId", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "workspaceIndex",
                "KeySchema": [{"AttributeName": "workspaceId", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    deadline = time.monotonic() + 10
    while client.describe_table(TableName=name)["Table"]["TableStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, f"table {name} never became ACTIVE"
        time.sleep(0.05)


def scan_items(client: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items.extend(page["Items"])
    return items


def get_item(client: Any, table: str, connection_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = client.get_item(
        TableName=table, Key={"connectionId": {"S": connection_id}}, ConsistentRead=True
    ).get("Item")
    return item


def workspace_members(client: Any, table: str, workspace_id: str) -> set[str]:
    response = client.query(
        TableName=table,
        IndexName="workspaceIndex",
        KeyConditionExpression="workspaceId = :w",
        ExpressionAttributeValues={":w": {"S": workspace_id}},
    )
    return {item["connectionId"]["S"] for item in response["Items"]}


def point_handler_at(monkeypatch: pytest.MonkeyPatch, endpoint_url: str, table: str) -> None:
    """Configure the handler the way the lab's Lambda runtime does: environment only."""
    for name in HANDLER_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TABLE_NAME", table)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint_url)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", LOCAL_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET_ACCESS_KEY)
    # No profile from the developer's machine may add an endpoint, region or credentials.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    # The seed uses boto3's default session, which caches credentials from whatever ran before.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


@dataclass
class ConnectionsServer:
    """What the fake @connections endpoint saw, and how it should answer."""

    url: str
    gone: set[str] = field(default_factory=set)
    forbidden: bool = False
    posts: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # When set, a post is answered only once this many posts are in flight at once (else 500 after 5 s).
    together: threading.Barrier | None = None

    def payloads_by_recipient(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {connection_id: json.loads(data) for connection_id, data in self.posts}


def connections_handler(state: ConnectionsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            prefix = "/prod/@connections/"
            if not self.path.startswith(prefix):
                self._reply(404, "NotFoundException")
                return
            connection_id = unquote(self.path[len(prefix) :])
            with state.lock:
                state.posts.append((connection_id, data))
            if state.together is not None:
                try:
                    state.together.wait()
                except threading.BrokenBarrierError:
                    self._reply(500, "InternalServerError")
                    return
            if state.forbidden:
                self._reply(403, "ForbiddenException")
            elif connection_id in state.gone:
                self._reply(410, "GoneException")
            else:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def _reply(self, status: int, error_type: str) -> None:
            body = json.dumps({"message": error_type}).encode()
            self.send_response(status)
            self.send_header("x-amzn-ErrorType", error_type)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            return

    return Handler


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture
def table(
    dynamodb: Any, dynamodb_engine: engines.Engine, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    create_connections_table(dynamodb, table_name)
    point_handler_at(monkeypatch, dynamodb_engine.endpoint_url, table_name)
    yield table_name
    dynamodb.delete_table(TableName=table_name)


@pytest.fixture
def connections_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectionsServer]:
    server = ThreadingHTTPServer((engines.LOOPBACK, 0), BaseHTTPRequestHandler)
    state = ConnectionsServer(url=f"http://{engines.LOOPBACK}:{server.server_port}/prod")
    server.RequestHandlerClass = connections_handler(state)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-connections", daemon=True)
    thread.start()
    monkeypatch.setenv("MANAGEMENT_ENDPOINT", state.url)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def root_at_warning() -> Iterator[None]:
    """The root logger as Lambda's Python runtime leaves it when AWS_LAMBDA_LOG_LEVEL is unset."""
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(before)


# --- $connect ----------------------------------------------------------------------------------------------


def test_connect_stores_every_field_with_the_right_types(
    impl: Implementation, table: str, dynamodb: Any
) -> None:
    event = load_event("connect_with_query.json")
    started = time.time()
    status, body = invoke(impl.fixed, event)
    assert status == 200, body
    item = get_item(dynamodb, table, "Cx3kYdZNiAMCIbw=")
    assert item is not None
    assert set(item) == FIELDS
    assert all(set(value) == {"S"} for value in item.values()), item
    assert item["connectionId"]["S"] == "Cx3kYdZNiAMCIbw="
    assert item["workspaceId"]["S"] == "ws-general"
    assert item["userId"]["S"] == "ada@example.com"
    assert item["status"]["S"] == "connected"
    stamp = item["timestamp"]["S"]
    assert re.fullmatch(ISO_MS_Z, stamp), stamp
    written = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    assert started - 1 <= written <= time.time() + 1
    assert scan_items(dynamodb, table) == [item]


def test_connect_accepts_old_captures_with_null_valued_keys(
    impl: Implementation, table: str, dynamodb: Any
) -> None:
    status, _ = invoke(impl.fixed, load_event("connect_null_fields.json"))
    assert status == 200
    item = get_item(dynamodb, table, "BxKz1dC4CGYCF0g=")
    assert item is not None and item["workspaceId"]["S"] == "ws-design"


def test_a_reused_connection_id_is_refused_and_not_overwritten(
    impl: Implementation, table: str, dynamodb: Any
) -> None:
    connection_id = aws_id("reused")
    assert invoke(impl.fixed, connect_event(connection_id, "ada@example.com", "ws-general"))[0] == 200
    original = get_item(dynamodb, table, connection_id)
    status, body = invoke(impl.fixed, connect_event(connection_id, "grace@example.org", "ws-random"))
    assert (status, body["reason"]) == (409, "ConnectionExists")
    assert get_item(dynamodb, table, connection_id) == original
    assert len(scan_items(dynamodb, table)) == 1


def test_the_workspace_index_finds_a_new_connection(impl: Implementation, table: str, dynamodb: Any) -> None:
    connection_id = aws_id("gsi")
    assert invoke(impl.fixed, connect_event(connection_id, "ada@example.com", "ws-gsi"))[0] == 200
    # GSIs are eventually consistent on AWS (ConsistentRead is not allowed on them), so poll, but briefly.
    deadline = time.monotonic() + 5
    while connection_id not in workspace_members(dynamodb, table, "ws-gsi"):
        assert time.monotonic() < deadline, "the connection never appeared in workspaceIndex"
        time.sleep(0.05)


def test_signed_mode_stores_the_subject_and_refuses_an_expired_token(
    impl: Implementation, table: str, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_MODE", "signed")
    monkeypatch.setenv("AUTH_SECRET", SECRET)
    good = app.sign_token("user-42", SECRET, int(time.time()) + 3600)
    expired = app.sign_token("user-43", SECRET, int(time.time()) - 1)
    assert invoke(impl.fixed, connect_event(aws_id("signed-ok"), good, "ws-general"))[0] == 200
    status, body = invoke(impl.fixed, connect_event(aws_id("signed-old"), expired, "ws-general"))
    assert (status, body["reason"]) == (401, "TokenExpired")
    assert [item["userId"]["S"] for item in scan_items(dynamodb, table)] == ["user-42"]


@pytest.mark.parametrize(
    ("authorizer", "status"),
    [
        ({"principalId": "p", "userId": "user-7"}, 200),
        ({"principalId": "p", "workspaceId": "ws-general"}, 500),  # the authorizer dropped the user
        ({"principalId": "p", "userId": ""}, 500),
        (None, 500),  # no authorizer ran (attached but never deployed)
    ],
)
def test_authorizer_mode_takes_the_user_from_the_authorizer_context_or_writes_nothing(
    impl: Implementation,
    table: str,
    dynamodb: Any,
    monkeypatch: pytest.MonkeyPatch,
    authorizer: dict[str, str] | None,
    status: int,
) -> None:
    monkeypatch.setenv("AUTH_MODE", "authorizer")
    event = connect_event(aws_id(f"authorizer-{status}-{authorizer}"), "ada@example.com", "ws-general")
    if authorizer is not None:
        event["requestContext"]["authorizer"] = authorizer
    answered, body = invoke(impl.fixed, event)
    assert answered == status, body
    if status == 200:
        assert [item["userId"]["S"] for item in scan_items(dynamodb, table)] == ["user-7"]
    else:
        assert body["error"] == "MissingAuthorizerContext"
        assert scan_items(dynamodb, table) == [], "a 500, and nothing written"


def _event_with(name: str, **changes: Any) -> dict[str, Any]:
    event = load_event(name)
    for key, value in changes.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    return event


BAD_INPUTS = [
    pytest.param(load_event("connect_no_query.json"), 400, id="connect-no-query-string"),
    pytest.param(
        _event_with("connect_with_query.json", queryStringParameters={}), 400, id="connect-empty-query"
    ),
    pytest.param(connect_event(aws_id("b1"), "", "ws-general"), 400, id="connect-empty-token"),
    pytest.param(connect_event(aws_id("b2"), "ada@example.com", ""), 400, id="connect-empty-workspace"),
    pytest.param(connect_event(aws_id("b3"), "ada@example.com", None), 400, id="connect-no-workspace"),
    pytest.param(connect_event(aws_id("b4"), "ada@example.com", "espace-général"), 400, id="connect-unicode"),
    pytest.param(connect_event(aws_id("b5"), "a@b.co" + "x" * 5000, "ws"), 400, id="connect-huge-token"),
    pytest.param(connect_event(aws_id("b6"), "ada@example.com", "w" * 500), 400, id="connect-huge-workspace"),
    pytest.param(connect_event(aws_id("b7"), "not-an-email", "ws-general"), 401, id="connect-not-email"),
    pytest.param(
        load_event("connect_with_query.json", connectionId=None), 400, id="connect-no-connection-id"
    ),
    pytest.param(load_event("connect_with_query.json", routeKey="$default"), 400, id="unknown-route"),
    pytest.param({"requestContext": {}}, 400, id="empty-request-context"),
    pytest.param(broadcast_event("message", aws_id("b8"), "not json"), 400, id="message-not-json"),
    pytest.param(broadcast_event("message", aws_id("b9"), "x" * 140_000), 400, id="message-140k"),
    pytest.param(
        broadcast_event("message", aws_id("b10"), {"action": "message", "message": "hi"}),
        403,
        id="message-unregistered-sender",
    ),
    pytest.param(broadcast_event("typing", aws_id("b11"), {"action": "typing"}), 400, id="typing-no-flag"),
]


@pytest.mark.parametrize(("event", "status"), BAD_INPUTS)
def test_bad_input_is_4xx_and_writes_nothing(
    impl: Implementation,
    table: str,
    dynamodb: Any,
    connections_server: ConnectionsServer,
    event: dict[str, Any],
    status: int,
) -> None:
    answered, body = invoke(impl.fixed, copy.deepcopy(event))
    assert answered == status
    assert "reason" in body and body["message"]
    assert scan_items(dynamodb, table) == []
    assert connections_server.posts == []


# --- $disconnect -------------------------------------------------------------------------------------------


def test_disconnect_deletes_the_connection(impl: Implementation, table: str, dynamodb: Any) -> None:
    assert invoke(impl.fixed, load_event("connect_with_query.json"))[0] == 200
    status, _ = invoke(impl.fixed, load_event("disconnect.json"))
    assert status == 200
    assert scan_items(dynamodb, table) == []


def test_disconnect_of_an_unknown_connection_is_fine(
    impl: Implementation, table: str, dynamodb: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=impl.fixed_logger):
        status, _ = invoke(impl.fixed, load_event("disconnect.json"))
    assert status == 200
    line = json.loads(caplog.records[-1].getMessage())
    assert (line["outcome"], line["disconnect_status_code"]) == ("absent", 1001)


# --- storage failures --------------------------------------------------------------------------------------


def test_a_missing_table_is_500_not_200(
    impl: Implementation,
    table: str,
    dynamodb: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("TABLE_NAME", table + "-typo")
    with caplog.at_level(logging.INFO, logger=impl.fixed_logger):
        status, body = invoke(impl.fixed, load_event("connect_with_query.json"))
        disconnect_status, _ = invoke(impl.fixed, load_event("disconnect.json"))
    assert (status, body["error"]) == (500, "ResourceNotFoundException")
    assert disconnect_status == 500
    line = json.loads(caplog.records[0].getMessage())
    assert caplog.records[0].levelno == logging.ERROR
    assert (line["outcome"], line["error_code"], line["table"]) == (
        "error",
        "ResourceNotFoundException",
        table + "-typo",
    )
    assert line["region"] == REGION and line["dynamodb_endpoint"].startswith("http://127.0.0.1:")
    assert scan_items(dynamodb, table) == []


def test_the_table_in_another_region_is_500_not_200(
    impl: Implementation, table: str, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DynamoDB Local keeps regions apart as AWS does: the right name in the wrong region is a missing table.
    monkeypatch.setenv("TABLE_REGION", "us-east-1")
    status, body = invoke(impl.fixed, load_event("connect_with_query.json"))
    assert (status, body["error"]) == (500, "ResourceNotFoundException")
    assert scan_items(dynamodb, table) == []


def test_a_dead_engine_is_500_quickly(
    impl: Implementation, monkeypatch: pytest.MonkeyPatch, table_name: str
) -> None:
    try:
        engine = engines.start_dynamodb_local()
    except EngineError as exc:
        pytest.skip(f"needs DynamoDB Local: {exc}")
    try:
        create_connections_table(local_client("dynamodb", engine.endpoint_url), table_name)
        point_handler_at(monkeypatch, engine.endpoint_url, table_name)
        # The same configuration works while the engine is up...
        assert invoke(impl.fixed, connect_event(aws_id("alive"), "ada@example.com", "ws"))[0] == 200
    finally:
        engine.stop()
    started = time.monotonic()
    status, body = invoke(impl.fixed, connect_event(aws_id("dead"), "ada@example.com", "ws"))
    assert (status, body["error"]) == (500, impl.unreachable)
    assert time.monotonic() - started < 15


# --- broadcast ---------------------------------------------------------------------------------------------

SENDER, LIVE_1, LIVE_2, STALE, ELSEWHERE = (aws_id(name) for name in ("a", "b", "c", "d", "e"))


@pytest.fixture
def workspace(impl: Implementation, table: str, connections_server: ConnectionsServer) -> str:
    """Five connections: the sender, two live peers and a stale one in ws-general, one in ws-random."""
    members = [
        (SENDER, "ada@example.com", "ws-general"),
        (LIVE_1, "grace@example.org", "ws-general"),
        (LIVE_2, "alan@example.net", "ws-general"),
        (STALE, "edsger@example.com", "ws-general"),
        (ELSEWHERE, "barbara@example.com", "ws-random"),
    ]
    for connection_id, email, workspace_id in members:
        assert invoke(impl.fixed, connect_event(connection_id, email, workspace_id))[0] == 200
    connections_server.gone.add(STALE)
    return table


@pytest.mark.parametrize(
    ("route_key", "body", "fields"),
    [
        ("message", {"action": "message", "message": "hello team ✓"}, {"message": "hello team ✓"}),
        ("presence", {"action": "presence", "status": "away"}, {"status": "away"}),
        ("typing", {"action": "typing", "isTyping": False}, {"isTyping": False}),
    ],
)
def test_broadcast_reaches_the_others_and_prunes_the_stale(
    impl: Implementation,
    workspace: str,
    dynamodb: Any,
    connections_server: ConnectionsServer,
    route_key: str,
    body: dict[str, Any],
    fields: dict[str, Any],
) -> None:
    status, answer = invoke(impl.fixed, broadcast_event(route_key, SENDER, body))
    assert status == 200, answer
    assert {k: answer[k] for k in ("delivered", "pruned", "failed")} == {
        "delivered": 2,
        "pruned": 1,
        "failed": 0,
    }
    payloads = connections_server.payloads_by_recipient()
    assert set(payloads) == {LIVE_1, LIVE_2, STALE}  # not the sender, not the other workspace
    expected = {"type": route_key, "from": "ada@example.com", "workspaceId": "ws-general", **fields}
    assert payloads[LIVE_1] == payloads[LIVE_2] == expected
    assert get_item(dynamodb, workspace, STALE) is None
    remaining = {item["connectionId"]["S"] for item in scan_items(dynamodb, workspace)}
    assert remaining == {SENDER, LIVE_1, LIVE_2, ELSEWHERE}


def test_broadcast_posts_to_the_recipients_at_the_same_time(
    impl: Implementation, workspace: str, connections_server: ConnectionsServer
) -> None:
    """On AWS each post is a network round trip: one by one, 1,000 recipients take seconds."""
    recipients = 3  # the two live peers and the stale one
    connections_server.together = threading.Barrier(recipients, timeout=5)
    status, answer = invoke(
        impl.fixed, broadcast_event("message", SENDER, {"action": "message", "message": "x"})
    )
    assert (status, answer["delivered"], answer["pruned"], answer["failed"]) == (200, 2, 1, 0), answer


def test_botocores_own_endpoint_override_is_honoured(
    workspace: str, connections_server: ConnectionsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MANAGEMENT_ENDPOINT")
    monkeypatch.setenv("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI", connections_server.url)
    status, answer = invoke(
        app.handler, broadcast_event("typing", SENDER, {"action": "typing", "isTyping": True})
    )
    assert (status, answer["delivered"], answer["pruned"]) == (200, 2, 1)


def test_a_broadcast_that_reaches_nobody_is_502(
    workspace: str, dynamodb: Any, connections_server: ConnectionsServer
) -> None:
    connections_server.forbidden = True  # e.g. the role lacks execute-api:ManageConnections
    status, answer = invoke(
        app.handler, broadcast_event("message", SENDER, {"action": "message", "message": "hi"})
    )
    assert (status, answer["error"], answer["failed"], answer["delivered"]) == (502, "BroadcastFailed", 3, 0)
    assert len(scan_items(dynamodb, workspace)) == 5  # nothing pruned on 403


def test_a_sender_alone_in_its_workspace_is_200_with_nobody_to_tell(
    workspace: str, connections_server: ConnectionsServer
) -> None:
    status, answer = invoke(
        app.handler, broadcast_event("presence", ELSEWHERE, {"action": "presence", "status": "online"})
    )
    assert (status, answer["delivered"], answer["failed"]) == (200, 0, 0)
    assert connections_server.posts == []


def test_a_failing_workspace_query_is_500(
    workspace: str, connections_server: ConnectionsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INDEX_NAME", "noSuchIndex")
    status, answer = invoke(
        app.handler, broadcast_event("message", SENDER, {"action": "message", "message": "hi"})
    )
    # DynamoDB Local (like AWS) says ValidationException for a missing index; moto, the fallback, says
    # ResourceNotFoundException. Either way: a 500, and nothing posted.
    assert status == 500
    assert answer["error"] in {"ValidationException", "ResourceNotFoundException"}
    assert connections_server.posts == []


def test_broadcast_follows_every_page_of_the_workspace_query(
    impl: Implementation, table: str, dynamodb: Any, connections_server: ConnectionsServer
) -> None:
    assert invoke(impl.fixed, connect_event(SENDER, "ada@example.com", "ws-big"))[0] == 200
    peers = [aws_id(f"peer-{n}") for n in range(6)]
    padding = "x" * 250_000  # six 250 KB items cannot fit in one 1 MB query page
    for connection_id in peers:
        dynamodb.put_item(
            TableName=table,
            Item={
                "connectionId": {"S": connection_id},
                "workspaceId": {"S": "ws-big"},
                "userId": {"S": f"{connection_id}@example.com"},
                "timestamp": {"S": "2024-11-11T11:35:24.071Z"},
                "status": {"S": "connected"},
                "padding": {"S": padding},
            },
        )
    first_page = dynamodb.query(
        TableName=table,
        IndexName="workspaceIndex",
        KeyConditionExpression="workspaceId = :w",
        ExpressionAttributeValues={":w": {"S": "ws-big"}},
        ProjectionExpression="connectionId",
    )
    assert "LastEvaluatedKey" in first_page, "the test needs more than one page to mean anything"
    status, answer = invoke(
        app.handler, broadcast_event("message", SENDER, {"action": "message", "message": "hi"})
    )
    assert (status, answer["delivered"]) == (200, 6)
    assert set(connections_server.payloads_by_recipient()) == set(peers)


# --- every event, generated --------------------------------------------------------------------------------

POOL = [aws_id(f"pool-{n}") for n in range(6)]
ABSENT: Any = object()  # a key left out of the event entirely, which is not the same as null
KNOWN_ROUTES = ["$connect", "$disconnect", "message", "presence", "typing"]
EMAILS = ["ada@example.com", "grace@example.org"]
WORKSPACES = ["ws-general", "ws-random"]

# Mostly plausible events (so stores, broadcasts and disconnects really happen), some of everything else.
route_keys = st.sampled_from([*KNOWN_ROUTES * 4, *["$connect"] * 4, "$default", "chat", "", None, ABSENT, 7])
connection_ids = st.sampled_from([*POOL * 3, None, ABSENT, "", "a b=", "é" * 16, "x" * 200])
parameter_values = st.one_of(
    st.sampled_from([None, ABSENT, "", "not-an-email", *EMAILS, *WORKSPACES]),
    st.text(max_size=12),
    st.builds(
        lambda char, n: char * n, st.sampled_from(["a", "é", "@", " ", "\x00"]), st.integers(100, 3000)
    ),
)
valid_queries = st.fixed_dictionaries(
    {"token": st.sampled_from(EMAILS), "workspaceId": st.sampled_from(WORKSPACES)}
)
odd_queries = st.one_of(
    st.sampled_from([ABSENT, None, {}, [], "token=x"]),
    st.fixed_dictionaries({}, optional={"token": parameter_values, "workspaceId": parameter_values}).map(
        lambda query: {key: value for key, value in query.items() if value is not ABSENT}
    ),
)
valid_bodies = {
    "message": st.fixed_dictionaries(
        {"action": st.just("message"), "message": st.text(min_size=1, max_size=40)}
    ),
    "presence": st.fixed_dictionaries(
        {"action": st.just("presence"), "status": st.sampled_from(["online", "away"])}
    ),
    "typing": st.fixed_dictionaries({"action": st.just("typing"), "isTyping": st.booleans()}),
}
odd_bodies = st.one_of(
    st.sampled_from(
        [ABSENT, None, "", "[]", "null", "{", json.dumps({"action": "message", "message": "x" * 140_000})]
    ),
    st.text(max_size=30),
    st.fixed_dictionaries(
        {},
        optional={
            "action": st.one_of(st.sampled_from(KNOWN_ROUTES), st.integers()),
            "message": st.one_of(st.text(max_size=20), st.integers(), st.none()),
            "status": st.sampled_from(["online", "gone", ""]),
            "isTyping": st.one_of(st.booleans(), st.integers(0, 1)),
        },
    ).map(json.dumps),
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.integers(0, 19)) == 0:
        return {"requestContext": draw(st.sampled_from([None, "x", [], {}]))}
    route_key = draw(route_keys)
    request_context = {
        "routeKey": route_key,
        "connectionId": draw(connection_ids),
        "stage": "prod",
        "domainName": "k7d2xq9wme.execute-api.us-east-2.amazonaws.com",
    }
    plausible = draw(st.booleans())
    event = {
        "requestContext": {key: value for key, value in request_context.items() if value is not ABSENT},
        "queryStringParameters": draw(valid_queries if plausible else odd_queries),
        "body": draw(
            valid_bodies[route_key].map(json.dumps)
            if plausible and isinstance(route_key, str) and route_key in valid_bodies
            else odd_bodies
        ),
        "isBase64Encoded": draw(st.sampled_from([False, False, False, True, ABSENT])),
    }
    return {key: value for key, value in event.items() if value is not ABSENT}


def _storable_id(value: object) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= 128 and app.CONNECTION_ID_PATTERN.fullmatch(value):
        return value
    return None


@settings(
    max_examples=100,
    deadline=None,
    # The table and the fake endpoint are meant to outlive single examples: state builds up across them.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(event=events())
def test_any_event_gets_an_answer_and_never_a_partial_write(
    impl: Implementation,
    table: str,
    dynamodb: Any,
    connections_server: ConnectionsServer,
    event: dict[str, Any],
) -> None:
    request_context = event.get("requestContext") if isinstance(event.get("requestContext"), dict) else {}
    assert isinstance(request_context, dict)
    route_key = request_context.get("routeKey")
    connection_id = _storable_id(request_context.get("connectionId"))
    before = get_item(dynamodb, table, connection_id) if connection_id else None

    response = impl.fixed(copy.deepcopy(event), None)

    status = response["statusCode"]
    # Shown by --hypothesis-show-statistics: proof that stores, broadcasts and disconnects really happen.
    hypothesis.event(f"{route_key!r:.20} -> {status}")
    assert isinstance(status, int) and 200 <= status < 600
    assert isinstance(json.loads(response["body"])["message"], str)
    if connection_id:
        after = get_item(dynamodb, table, connection_id)
        if route_key == "$connect" and status == 200:
            query = event["queryStringParameters"]
            assert after is not None and set(after) == FIELDS
            assert after["workspaceId"]["S"] == query["workspaceId"]
            assert after["userId"]["S"] == query["token"]
        elif route_key == "$disconnect" and status == 200:
            assert after is None
        else:
            assert after == before
    for item in scan_items(dynamodb, table):
        assert set(item) == FIELDS and all(set(value) == {"S"} for value in item.values()), item
        assert item["status"]["S"] == "connected"


# --- the seed's handler: the reported bug ------------------------------------------------------------------


def test_seed_stores_a_well_formed_connection(impl: Implementation, table: str, dynamodb: Any) -> None:
    """The port is faithful, not broken everywhere: the happy path works, as it did for the team."""
    status, _ = invoke(impl.seed, load_event("connect_with_query.json"))
    assert status == 200
    item = get_item(dynamodb, table, "Cx3kYdZNiAMCIbw=")
    assert item is not None and set(item) == FIELDS


def test_seed_answers_200_when_the_write_fails_and_says_so_only_at_info(
    impl: Implementation,
    table: str,
    dynamodb: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    root_at_warning: None,
) -> None:
    monkeypatch.setenv("TABLE_NAME", "chatgenius-connections")  # not the table that exists
    with caplog.at_level(logging.DEBUG, logger=impl.seed_logger):
        status, _ = invoke(impl.seed, load_event("connect_with_query.json"))
    assert status == 200  # the handshake succeeds...
    assert scan_items(dynamodb, table) == []  # ...and nothing is stored
    said = [
        r
        for r in caplog.records
        if r.name == impl.seed_logger and "ResourceNotFoundException" in r.getMessage()
    ]
    if impl.name == "python":
        # Lambda's Python runtime keeps WARNING and above unless told otherwise, and nothing between the
        # seed's logger and the root sets a level: the line exists only below what Lambda keeps.
        assert logging.getLogger(seed.__name__).getEffectiveLevel() == logging.WARNING
        assert [r.levelno for r in said] == [logging.INFO]
    else:
        # Node's console.log is INFO and Lambda keeps it by default: the evidence reaches CloudWatch.
        assert [(r.levelno, r.lambda_kept) for r in said] == [(logging.INFO, True)]  # type: ignore[attr-defined]

    # The fixed handler fails the handshake instead, and says why at a level Lambda keeps.
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=impl.fixed_logger):
        status, body = invoke(impl.fixed, load_event("connect_with_query.json"))
    assert (status, body["error"]) == (500, "ResourceNotFoundException")
    assert [r.levelno for r in caplog.records if r.name == impl.fixed_logger] == [logging.ERROR]


def test_seed_answers_200_when_dynamodb_rejects_an_empty_workspace(
    impl: Implementation, table: str, dynamodb: Any
) -> None:
    # An empty string is not a valid GSI key: DynamoDB answers ValidationException, the seed hides it.
    status, _ = invoke(impl.seed, connect_event(aws_id("empty-ws"), "ada@example.com", ""))
    assert status == 200
    assert scan_items(dynamodb, table) == []
    assert invoke(impl.fixed, connect_event(aws_id("empty-ws"), "ada@example.com", ""))[0] == 400


def test_seed_without_query_string_stores_a_row_the_workspace_index_cannot_see(
    impl: Implementation, table: str, dynamodb: Any
) -> None:
    status, _ = invoke(impl.seed, load_event("connect_no_query.json"))
    assert status == 200
    item = get_item(dynamodb, table, "Cx3phc8qiAMCJ-g=")
    assert item is not None and {"workspaceId", "userId"}.isdisjoint(item)
    assert all("Cx3phc8qiAMCJ-g=" not in workspace_members(dynamodb, table, ws) for ws in WORKSPACES)


def test_seed_answers_200_to_garbage(impl: Implementation, table: str, dynamodb: Any) -> None:
    for event in ({}, {"requestContext": {"routeKey": "message"}}, load_event("message.json")):
        assert invoke(impl.seed, event)[0] == 200
    assert scan_items(dynamodb, table) == []
