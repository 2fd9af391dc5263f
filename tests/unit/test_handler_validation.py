"""The fixed handler's answers to bad input, configuration errors and storage errors, without any engine.

Every AWS client the handler asks for is replaced by a recorder: for rejected input the tests assert that no
client was even created, so "nothing written" holds by construction here; the integration tests check it again
against DynamoDB Local.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from kit.handler import app

TABLE = "must-not-be-touched"
CONNECTION_ID = "Cx3kYdZNiAMCIbw="
EMAIL = "ada@example.com"
SECRET = "unit-test-secret"


class FakeDynamoDB:
    """Records calls; answers PutItem with ``put_error`` raised when set."""

    def __init__(self, put_error: BaseException | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.put_error = put_error
        self.meta = type("Meta", (), {"endpoint_url": "http://fake-dynamodb"})()

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("PutItem", kwargs))
        if self.put_error is not None:
            raise self.put_error
        return {}

    def delete_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("DeleteItem", kwargs))
        return {}


class ClientRecorder:
    """Stands in for ``app._client``: remembers which services were asked for."""

    def __init__(self, dynamodb: FakeDynamoDB | None = None) -> None:
        self.services: list[str] = []
        self.dynamodb = dynamodb or FakeDynamoDB()

    def __call__(self, service: str, region: str | None, endpoint_url: str | None = None) -> Any:
        self.services.append(service)
        if service == "dynamodb":
            return self.dynamodb
        raise AssertionError(f"unexpected client {service}")


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> ClientRecorder:
    recorder = ClientRecorder()
    monkeypatch.setattr(app, "_client", recorder)
    for name in ("TABLE_REGION", "AUTH_MODE", "AUTH_SECRET", "INDEX_NAME", "MANAGEMENT_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TABLE_NAME", TABLE)
    return recorder


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


def context(route_key: object = "$connect", connection_id: object = CONNECTION_ID) -> dict[str, Any]:
    return {
        "routeKey": route_key,
        "eventType": "CONNECT",
        "stage": "prod",
        "domainName": "k7d2xq9wme.execute-api.us-east-2.amazonaws.com",
        "connectionId": connection_id,
        "requestId": "Cx3kYFe4iAMF8aQ=",
    }


def connect_event(query: object = None, *, absent: bool = False) -> dict[str, Any]:
    event: dict[str, Any] = {"requestContext": context(), "isBase64Encoded": False}
    if not absent:
        event["queryStringParameters"] = query
    return event


def message_event(route_key: str, body: object, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"requestContext": context(route_key), "isBase64Encoded": False, **extra}
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


def answer(event: object) -> tuple[int, dict[str, Any]]:
    response = app.handler(event, None)
    assert set(response) == {"statusCode", "body"}
    assert isinstance(response["statusCode"], int)
    return response["statusCode"], json.loads(response["body"])


GOOD = {"token": EMAIL, "workspaceId": "ws-general"}

BAD_CONNECT_QUERIES = [
    pytest.param(None, "MissingParameter", "token", id="query-null"),
    pytest.param({}, "MissingParameter", "token", id="query-empty"),
    pytest.param({"workspaceId": "ws-general"}, "MissingParameter", "token", id="token-missing"),
    pytest.param({"token": None, "workspaceId": "ws"}, "MissingParameter", "token", id="token-null"),
    pytest.param({"token": "", "workspaceId": "ws"}, "EmptyParameter", "token", id="token-empty"),
    pytest.param({"token": EMAIL}, "MissingParameter", "workspaceId", id="workspace-missing"),
    pytest.param({"token": EMAIL, "workspaceId": ""}, "EmptyParameter", "workspaceId", id="workspace-empty"),
    pytest.param(
        {"token": EMAIL, "workspaceId": "w" * 129}, "ParameterTooLong", "workspaceId", id="workspace-129"
    ),
    pytest.param(
        {"token": "a@b.co" + "x" * 2043, "workspaceId": "ws"}, "ParameterTooLong", "token", id="token-2049"
    ),
    pytest.param(
        {"token": EMAIL, "workspaceId": "espace-général"}, "InvalidParameter", "workspaceId", id="ws-unicode"
    ),
    pytest.param({"token": EMAIL, "workspaceId": "ws 1"}, "InvalidParameter", "workspaceId", id="ws-space"),
    pytest.param({"token": EMAIL, "workspaceId": "ws/1"}, "InvalidParameter", "workspaceId", id="ws-slash"),
    pytest.param({"token": EMAIL, "workspaceId": "   "}, "InvalidParameter", "workspaceId", id="ws-blank"),
    pytest.param(
        {"token": "ädä@example.com", "workspaceId": "ws"}, "InvalidParameter", "token", id="tok-utf"
    ),
    pytest.param({"token": EMAIL + "\n", "workspaceId": "ws"}, "InvalidParameter", "token", id="tok-newline"),
    pytest.param({"token": "a\x00@b.co", "workspaceId": "ws"}, "InvalidParameter", "token", id="tok-nul"),
    pytest.param({"token": "a b@c.de", "workspaceId": "ws"}, "InvalidParameter", "token", id="tok-space"),
    pytest.param({"token": [EMAIL], "workspaceId": "ws"}, "InvalidParameter", "token", id="tok-list"),
    pytest.param({"token": EMAIL, "workspaceId": 7}, "InvalidParameter", "workspaceId", id="ws-int"),
]


@pytest.mark.parametrize(("query", "reason", "parameter"), BAD_CONNECT_QUERIES)
def test_bad_connect_parameters_are_400_and_touch_nothing(
    clients: ClientRecorder, query: object, reason: str, parameter: str
) -> None:
    status, body = answer(connect_event(query))
    assert (status, body["reason"], body["parameter"]) == (400, reason, parameter)
    assert clients.services == []


def test_connect_without_a_query_string_key_is_400_not_an_exception(clients: ClientRecorder) -> None:
    status, body = answer(connect_event(absent=True))
    assert (status, body["reason"]) == (400, "MissingParameter")
    assert clients.services == []


def test_query_string_that_is_not_an_object_is_400(clients: ClientRecorder) -> None:
    status, body = answer(connect_event(["token", EMAIL]))
    assert (status, body["reason"]) == (400, "MalformedQueryString")


@pytest.mark.parametrize(
    "token",
    ["not-an-email", "ada@", "@example.com", "ada@example", "ada@@example.com", "a" * 65 + "@example.com"],
)
def test_email_mode_rejects_tokens_that_are_not_emails_with_401(clients: ClientRecorder, token: str) -> None:
    status, body = answer(connect_event({"token": token, "workspaceId": "ws"}))
    assert (status, body["reason"]) == (401, "InvalidToken")
    assert clients.services == []


BAD_EVENTS = [
    pytest.param(None, "MalformedEvent", id="event-null"),
    pytest.param([], "MalformedEvent", id="event-list"),
    pytest.param("event", "MalformedEvent", id="event-str"),
    pytest.param({}, "MissingRequestContext", id="no-request-context"),
    pytest.param({"requestContext": None}, "MissingRequestContext", id="request-context-null"),
    pytest.param({"requestContext": "x"}, "MissingRequestContext", id="request-context-str"),
    pytest.param({"requestContext": {"connectionId": CONNECTION_ID}}, "MissingRouteKey", id="no-route"),
    pytest.param({"requestContext": context(None)}, "MissingRouteKey", id="route-null"),
    pytest.param({"requestContext": context("")}, "MissingRouteKey", id="route-empty"),
    pytest.param({"requestContext": context(5)}, "MissingRouteKey", id="route-int"),
    pytest.param({"requestContext": context("$default")}, "UnknownRoute", id="route-default"),
    pytest.param({"requestContext": context("sendmessage")}, "UnknownRoute", id="route-unknown"),
    pytest.param({"requestContext": context("MESSAGE")}, "UnknownRoute", id="route-case"),
    pytest.param({"requestContext": context("x" * 10_000)}, "UnknownRoute", id="route-huge"),
    pytest.param({"requestContext": {"routeKey": "$connect"}}, "MissingConnectionId", id="no-connection"),
    pytest.param({"requestContext": context(connection_id=None)}, "MissingConnectionId", id="conn-null"),
    pytest.param({"requestContext": context(connection_id="")}, "MissingConnectionId", id="conn-empty"),
    pytest.param({"requestContext": context(connection_id=12)}, "MissingConnectionId", id="conn-int"),
    pytest.param({"requestContext": context(connection_id="a b=")}, "InvalidConnectionId", id="conn-space"),
    pytest.param({"requestContext": context(connection_id="é" * 16)}, "InvalidConnectionId", id="conn-utf"),
    pytest.param({"requestContext": context(connection_id="x" * 129)}, "InvalidConnectionId", id="conn-long"),
]


@pytest.mark.parametrize(("event", "reason"), BAD_EVENTS)
def test_malformed_events_are_400_and_touch_nothing(
    clients: ClientRecorder, event: object, reason: str
) -> None:
    status, body = answer(event)
    assert (status, body["reason"]) == (400, reason)
    assert clients.services == []


@pytest.mark.parametrize("route_key", ["$connect", "$disconnect", "message", "presence", "typing"])
def test_every_route_rejects_a_missing_connection_id(clients: ClientRecorder, route_key: str) -> None:
    status, body = answer({"requestContext": {"routeKey": route_key}, "body": "{}"})
    assert (status, body["reason"]) == (400, "MissingConnectionId")


DEEPLY_NESTED = "[" * 50_000 + "]" * 50_000  # under 128 KB, but deeper than Python's recursion limit
BAD_BODIES = [
    pytest.param("message", None, {}, "MissingBody", id="no-body"),
    pytest.param("message", "", {}, "MissingBody", id="body-empty"),
    pytest.param("message", "hello", {}, "BodyNotJson", id="body-text"),
    pytest.param("message", "{'action': 'message'}", {}, "BodyNotJson", id="body-python-repr"),
    pytest.param("message", DEEPLY_NESTED, {}, "BodyNotJson", id="body-deep"),
    pytest.param("message", "[1, 2]", {}, "BodyNotObject", id="body-list"),
    pytest.param("message", '"message"', {}, "BodyNotObject", id="body-string"),
    pytest.param("message", "null", {}, "BodyNotObject", id="body-null"),
    pytest.param("message", json.dumps({"message": "hi"}), {}, "ActionMismatch", id="no-action"),
    pytest.param("message", {"action": "typing", "message": "hi"}, {}, "ActionMismatch", id="other-action"),
    pytest.param("message", {"action": 5, "message": "hi"}, {}, "ActionMismatch", id="action-int"),
    pytest.param("message", {"action": "message"}, {}, "MissingMessage", id="no-message"),
    pytest.param("message", {"action": "message", "message": ""}, {}, "MissingMessage", id="empty-text"),
    pytest.param("message", {"action": "message", "message": "  \n"}, {}, "MissingMessage", id="blank"),
    pytest.param("message", {"action": "message", "message": 5}, {}, "MissingMessage", id="text-int"),
    pytest.param("message", {"action": "message", "text": "hi"}, {}, "MissingMessage", id="text-field"),
    pytest.param(
        "message", '{"action": "message", "message": "\\ud800"}', {}, "InvalidMessage", id="lone-surrogate"
    ),
    pytest.param(
        "message", {"action": "message", "message": "x" * 20_000}, {}, "MessageTooLarge", id="text-20k"
    ),
    pytest.param(
        "message", {"action": "message", "message": "\x00" * 4_000}, {}, "MessageTooLarge", id="escapes"
    ),
    pytest.param(
        "message", {"action": "message", "message": "x" * 131_072}, {}, "BodyTooLarge", id="body-128k"
    ),
    pytest.param(
        "message", {"action": "message", "message": "é" * 70_000}, {}, "BodyTooLarge", id="utf8-128k"
    ),
    pytest.param(
        "message",
        {"action": "message", "message": "hi"},
        {"isBase64Encoded": True},
        "BinaryBody",
        id="binary",
    ),
    pytest.param("presence", {"action": "presence"}, {}, "InvalidStatus", id="no-status"),
    pytest.param("presence", {"action": "presence", "status": "gone"}, {}, "InvalidStatus", id="status-bad"),
    pytest.param(
        "presence", {"action": "presence", "status": "ONLINE"}, {}, "InvalidStatus", id="status-case"
    ),
    pytest.param("presence", {"action": "presence", "status": 1}, {}, "InvalidStatus", id="status-int"),
    pytest.param("typing", {"action": "typing"}, {}, "InvalidIsTyping", id="no-is-typing"),
    pytest.param("typing", {"action": "typing", "isTyping": "true"}, {}, "InvalidIsTyping", id="typing-str"),
    pytest.param("typing", {"action": "typing", "isTyping": 1}, {}, "InvalidIsTyping", id="typing-int"),
    pytest.param("typing", {"action": "typing", "isTyping": None}, {}, "InvalidIsTyping", id="typing-null"),
]


@pytest.mark.parametrize(("route_key", "body", "extra", "reason"), BAD_BODIES)
def test_bad_message_bodies_are_400_and_touch_nothing(
    clients: ClientRecorder, route_key: str, body: object, extra: dict[str, Any], reason: str
) -> None:
    status, answer_body = answer(message_event(route_key, body, **extra))
    assert (status, answer_body["reason"]) == (400, reason)
    assert clients.services == []


@pytest.mark.parametrize(
    ("domain_name", "stage", "reason"),
    [
        (None, "prod", "MissingDomainName"),
        ("evil.example/x?y=", "prod", "MissingDomainName"),
        ("k7d2xq9wme.execute-api.us-east-2.amazonaws.com", None, "MissingStage"),
        ("k7d2xq9wme.execute-api.us-east-2.amazonaws.com", "../admin", "MissingStage"),
    ],
)
def test_broadcast_without_a_usable_reply_endpoint_is_400(
    clients: ClientRecorder, domain_name: object, stage: object, reason: str
) -> None:
    event = message_event("message", {"action": "message", "message": "hi"})
    event["requestContext"].update(domainName=domain_name, stage=stage)
    status, body = answer(event)
    assert (status, body["reason"]) == (400, reason)
    assert clients.services == []


# --- configuration -------------------------------------------------------------------------------------------


def test_missing_table_name_is_500_with_a_clear_log_line(
    clients: ClientRecorder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("TABLE_NAME")
    with caplog.at_level(logging.INFO, logger=app.LOGGER_NAME):
        status, body = answer(connect_event(GOOD))
    assert (status, body["error"]) == (500, "MissingTableName")
    assert clients.services == []
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    line = json.loads(record.getMessage())
    assert line["error_code"] == "MissingTableName"
    assert "TABLE_NAME is not set" in line["detail"]


@pytest.mark.parametrize("route_key", ["$disconnect", "message"])
def test_missing_table_name_is_500_on_other_routes(
    clients: ClientRecorder, monkeypatch: pytest.MonkeyPatch, route_key: str
) -> None:
    monkeypatch.delenv("TABLE_NAME")
    status, body = answer(message_event(route_key, {"action": route_key, "message": "hi"}))
    assert (status, body["error"]) == (500, "MissingTableName")


def test_signed_mode_without_a_secret_is_500(
    clients: ClientRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_MODE", "signed")
    status, body = answer(connect_event(GOOD))
    assert (status, body["error"]) == (500, "MissingAuthSecret")
    assert clients.services == []


def test_unknown_auth_mode_is_500(clients: ClientRecorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_MODE", "none")
    status, body = answer(connect_event(GOOD))
    assert (status, body["error"]) == (500, "InvalidAuthMode")


def test_config_is_read_from_the_environment_on_every_call() -> None:
    settings = app._config({"TABLE_NAME": "t", "AWS_REGION": "eu-west-3", "AUTH_SECRET": "hunter2-value"})
    assert (settings.table_name, settings.table_region, settings.index_name) == (
        "t",
        "eu-west-3",
        "workspaceIndex",
    )
    assert settings.auth_mode == "email"
    assert "hunter2-value" not in repr(settings)  # the secret stays out of reprs and tracebacks
    assert app._config({"TABLE_REGION": "us-east-2", "AWS_REGION": "eu-west-3"}).table_region == "us-east-2"
    assert app._config({"AWS_DEFAULT_REGION": "ap-south-1"}).table_region == "ap-south-1"
    assert app._config({}).table_name is None


# --- storage answers (fake client) ------------------------------------------------------------------------


def client_error(code: str, operation: str = "PutItem") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} for the test"}}, operation)


def test_connect_writes_the_five_fields_with_a_conditional_put(clients: ClientRecorder) -> None:
    status, _ = answer(connect_event(GOOD))
    assert status == 200
    [(operation, call)] = clients.dynamodb.calls
    assert operation == "PutItem"
    assert call["TableName"] == TABLE
    assert call["ConditionExpression"] == "attribute_not_exists(connectionId)"
    item = call["Item"]
    assert set(item) == {"connectionId", "workspaceId", "userId", "timestamp", "status"}
    assert item["connectionId"] == {"S": CONNECTION_ID}
    assert item["workspaceId"] == {"S": "ws-general"}
    assert item["userId"] == {"S": EMAIL}
    assert item["status"] == {"S": "connected"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", item["timestamp"]["S"])


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (client_error("AccessDeniedException"), 500, "AccessDeniedException"),
        (client_error("ResourceNotFoundException"), 500, "ResourceNotFoundException"),
        (client_error("ValidationException"), 500, "ValidationException"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), 500, "EndpointConnectionError"),
        (client_error("ConditionalCheckFailedException"), 409, "ConnectionExists"),
    ],
)
def test_failed_puts_are_never_2xx(
    clients: ClientRecorder,
    caplog: pytest.LogCaptureFixture,
    error: BaseException,
    status: int,
    code: str,
) -> None:
    clients.dynamodb.put_error = error
    with caplog.at_level(logging.INFO, logger=app.LOGGER_NAME):
        answered, body = answer(connect_event(GOOD))
    assert answered == status
    assert body.get("error", body.get("reason")) == code
    [record] = caplog.records
    assert record.levelno >= logging.WARNING
    line = json.loads(record.getMessage())
    assert (line["status"], line["error_code"], line["route"]) == (status, code, "$connect")
    assert line["connection_id"] == CONNECTION_ID


def test_an_unexpected_exception_is_a_logged_500(
    clients: ClientRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    clients.dynamodb.put_error = RuntimeError("boom")
    with caplog.at_level(logging.INFO, logger=app.LOGGER_NAME):
        status, body = answer(connect_event(GOOD))
    assert (status, body["error"]) == (500, "InternalError")
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert json.loads(record.getMessage())["error_code"] == "RuntimeError"


def test_signed_mode_stores_the_token_subject(
    clients: ClientRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_MODE", "signed")
    monkeypatch.setenv("AUTH_SECRET", SECRET)
    token = app.sign_token("user-42", SECRET, 4_102_444_800)
    status, _ = answer(connect_event({"token": token, "workspaceId": "ws"}))
    assert status == 200
    assert clients.dynamodb.calls[0][1]["Item"]["userId"] == {"S": "user-42"}


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda: app.sign_token("user-42", SECRET, 1), "TokenExpired"),
        (lambda: app.sign_token("user-42", "another-secret", 4_102_444_800), "InvalidToken"),
        (lambda: EMAIL, "InvalidToken"),
    ],
)
def test_signed_mode_rejects_bad_tokens_with_401(
    clients: ClientRecorder, monkeypatch: pytest.MonkeyPatch, make_token: Any, reason: str
) -> None:
    monkeypatch.setenv("AUTH_MODE", "signed")
    monkeypatch.setenv("AUTH_SECRET", SECRET)
    status, body = answer(connect_event({"token": make_token(), "workspaceId": "ws"}))
    assert (status, body["reason"]) == (401, reason)
    assert clients.services == []


# --- logging ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lambda_level", "expected"),
    [
        (None, logging.INFO),
        ("", logging.INFO),
        ("DEBUG", logging.DEBUG),
        ("TRACE", logging.DEBUG),
        ("info", logging.INFO),
        ("WARN", logging.WARNING),
        ("ERROR", logging.ERROR),
        ("FATAL", logging.CRITICAL),
        ("nonsense", logging.INFO),
    ],
)
def test_logger_level_follows_lambda_or_defaults_to_info(lambda_level: str | None, expected: int) -> None:
    assert app.logger_level(lambda_level) == expected


def test_success_lines_reach_the_root_handler_at_lambdas_default_level(
    clients: ClientRecorder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    root_at_warning: None,
) -> None:
    monkeypatch.setenv("AUTH_MODE", "signed")
    monkeypatch.setenv("AUTH_SECRET", SECRET)
    token = app.sign_token("user-42", SECRET, 4_102_444_800)
    # caplog's handler sits on the root logger, where Lambda's handler sits; nothing lowers levels here.
    status, _ = answer(connect_event({"token": token, "workspaceId": "ws"}))
    assert status == 200
    [record] = [r for r in caplog.records if r.name == app.LOGGER_NAME]
    assert record.levelno == logging.INFO
    line = json.loads(record.getMessage())
    assert line["outcome"] == "stored" and line["status"] == 200 and line["error_code"] is None
    assert line["user_hash"] == app.user_hash("user-42")
    assert line["dynamodb_endpoint"] == "http://fake-dynamodb"


def test_email_mode_warns_and_never_logs_the_email_or_the_token(
    clients: ClientRecorder, caplog: pytest.LogCaptureFixture, root_at_warning: None
) -> None:
    status, _ = answer(connect_event(GOOD))
    bad_status, _ = answer(connect_event({"token": "Not-An-Email-XYZ", "workspaceId": "ws"}))
    assert (status, bad_status) == (200, 401)
    records = [r for r in caplog.records if r.name == app.LOGGER_NAME]
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    text = "\n".join(r.getMessage() for r in records)
    assert EMAIL not in text and "ada" not in text and "Not-An-Email-XYZ" not in text
    first = json.loads(records[0].getMessage())
    assert first["auth_mode"] == "email" and "insecure_auth" in first
    assert first["user_hash"] == app.user_hash(EMAIL)


def test_request_id_comes_from_the_lambda_context(
    clients: ClientRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    lambda_context = type("Context", (), {"aws_request_id": "8f5e6c1a-0000-4000-8000-000000000001"})()
    with caplog.at_level(logging.INFO, logger=app.LOGGER_NAME):
        app.handler({"requestContext": context("$default")}, lambda_context)
    line = json.loads(caplog.records[0].getMessage())
    assert line["request_id"] == "8f5e6c1a-0000-4000-8000-000000000001"
    assert line["apigw_request_id"] == "Cx3kYFe4iAMF8aQ="
    assert (line["outcome"], line["error_code"]) == ("rejected", "UnknownRoute")


# --- packaging --------------------------------------------------------------------------------------------

HANDLER_DIR = Path(app.__file__).parent
ALLOWED_THIRD_PARTY = {"boto3", "botocore"}


@pytest.mark.parametrize("module", ["app.py", "seed.py"])
def test_handler_modules_import_only_stdlib_boto3_and_botocore(module: str) -> None:
    import ast

    tree = ast.parse((HANDLER_DIR / module).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative imports break the single-file deployment"
            imported.add((node.module or "").split(".")[0])
    assert imported - set(sys.stdlib_module_names) - ALLOWED_THIRD_PARTY - {"__future__"} == set()


def test_package_init_has_no_imports() -> None:
    import ast

    tree = ast.parse((HANDLER_DIR / "__init__.py").read_text())
    assert not [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]


def test_app_py_runs_alone_as_a_single_file_lambda(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_bytes((HANDLER_DIR / "app.py").read_bytes())
    script = (
        "import json, sys, app\n"
        "assert 'kit' not in sys.modules\n"
        "response = app.handler({'requestContext': {'routeKey': '$connect'}}, None)\n"
        "print(json.dumps(response))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout)
    assert response["statusCode"] == 400
