"""Every lab scenario shows its symptom from outside: through the WebSocket, the table and the logs.

Each scenario starts its own lab, connects two clients of one workspace the way its ``ClientPlan`` says,
has the first client send a chat message, and checks what a user or an investigator would see: the
handshake result, what is stored (boto3 scans and GSI queries), what the other client receives, and the
lines in CloudWatch Logs. A scenario added to ``SCENARIOS`` without an entry in ``SYMPTOMS`` fails here.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import websocket

from kit.lab.lab import Lab
from kit.lab.scenarios import AUTHORIZER_FUNCTION, OLD_CONNECT_FUNCTION, SCENARIOS, ClientPlan

from .labclient import (
    FORBIDDEN_FRAME,
    INTERNAL_ERROR_FRAME,
    DynamoDBChoice,
    EmptyDynamoDB,
    access_log,
    close_quietly,
    execution_group,
    info,
    lambda_lines,
    log_messages,
    now_ms,
    open_socket,
    query,
    read_close,
    recv_text,
    starts,
    table_items,
    wait_for_count,
    wait_until,
)

pytestmark = pytest.mark.integration

WORKSPACE = "ws-scenario"
MESSAGE = {"action": "message", "message": "hello from alice"}
PLATFORM_PREFIXES = ("INIT_START ", "START RequestId:", "END RequestId:", "REPORT RequestId:")


@dataclass
class Client:
    user: str
    status: int  # 101, or the HTTP status the handshake was answered with
    ws: websocket.WebSocket | None = None
    close: tuple[int, str] | None = None  # set when the gateway closed it


@dataclass
class Observed:
    """What the test saw, for the scenario's checks."""

    lab: Lab
    started_ms: int
    alice: Client
    bob: Client
    alice_frames: list[str] = field(default_factory=list)
    bob_frames: list[str] = field(default_factory=list)
    lambda_before_close: list[str] = field(default_factory=list)


def _connect(lab: Lab, user: str, plan: ClientPlan) -> Client:
    query_string = query(
        user if plan.include_token else None, WORKSPACE if plan.include_workspace_id else None
    )
    try:
        ws = open_socket(lab, query_string or None)
    except websocket.WebSocketBadStatusException as exc:
        return Client(user, int(exc.status_code))
    client = Client(user, 101, ws)
    if plan.send_oversize_frame:
        ws.send("x" * (32 * 1024 + 1))
        client.close = read_close(ws)
    elif plan.close_after_connect:
        ws.close()
    elif plan.join_after_connect:
        ws.send(json.dumps({"action": "join", "workspaceId": WORKSPACE, "token": user}))
    return client


def _frames(ws: websocket.WebSocket | None, timeout: float) -> list[str]:
    if ws is None or not ws.connected:
        return []
    frames = []
    while (frame := recv_text(ws, timeout)) is not None:
        frames.append(frame)
        timeout = 0.2
    return frames


@contextlib.contextmanager
def scenario_run(name: str, dynamodb: DynamoDBChoice) -> Iterator[Observed]:
    """Start the scenario's lab, connect alice then bob, let alice send a message; close both at the end."""
    plan = SCENARIOS[name].client
    with Lab(name, write_lab_file=False, dynamodb=dynamodb) as lab:
        started = now_ms()
        alice = _connect(lab, "alice@example.com", plan)
        bob = _connect(lab, "bob@example.com", plan)
        observed = Observed(lab, started, alice, bob)
        try:
            if alice.ws is not None and alice.ws.connected and bob.ws is not None and bob.ws.connected:
                if plan.join_after_connect:  # as the app does, talk once joined
                    wait_for_count(lambda: table_items(lab), 2)
                alice.ws.send(json.dumps(MESSAGE))
                # Once the gateway logged the MESSAGE, the function has run and posted whatever it posts.
                wait_for_count(lambda: _access_lines(observed, "MESSAGE"), 1)
                observed.bob_frames = _frames(bob.ws, timeout=0.5)
                observed.alice_frames = _frames(alice.ws, timeout=0.5)
            observed.lambda_before_close = lambda_lines(lab, started)
            yield observed
        finally:
            close_quietly(alice.ws, bob.ws)


def _stored(lab: Lab, region: str | None = None) -> dict[str, dict[str, str]]:
    return {item["userId"]: item for item in table_items(lab, region) if "userId" in item}


def _gsi_count(lab: Lab, workspace_id: str) -> int:
    client = lab.target().client("dynamodb")
    answer = client.query(
        TableName=info(lab).table,
        IndexName="workspaceIndex",
        KeyConditionExpression="workspaceId = :w",
        ExpressionAttributeValues={":w": {"S": workspace_id}},
    )
    return int(answer["Count"])


def _both_accepted(observed: Observed) -> None:
    assert (observed.alice.status, observed.bob.status) == (101, 101)


def _app_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line and not line.startswith(PLATFORM_PREFIXES)]


def _access_lines(observed: Observed, event_type: str) -> list[dict[str, str]]:
    return [line for line in access_log(observed.lab, observed.started_ms) if line["eventType"] == event_type]


# -- the symptom of each scenario ---------------------------------------------------------------------------------------


def healthy(observed: Observed) -> None:
    _both_accepted(observed)
    stored = _stored(observed.lab)
    assert set(stored) == {"alice@example.com", "bob@example.com"}
    assert all(item["workspaceId"] == WORKSPACE for item in stored.values())
    (frame,) = observed.bob_frames
    assert json.loads(frame) == {
        "type": "message",
        "from": "alice@example.com",
        "workspaceId": WORKSPACE,
        "message": MESSAGE["message"],
    }
    assert observed.alice_frames == [], "the sender gets nothing back on a one-way route"


def seed_put_denied(observed: Observed) -> None:
    _both_accepted(observed)
    assert table_items(observed.lab) == []
    swallowed = [
        line
        for line in observed.lambda_before_close
        if line.startswith("[INFO]")
        and "Error handling WebSocket event" in line
        and "AccessDeniedException" in line
        and "PutItem" in line
    ]
    assert len(swallowed) == 2, "one swallowed AccessDenied line per connection, logged at INFO"
    assert observed.bob_frames == []


def seed_logs_dropped(observed: Observed) -> None:
    _both_accepted(observed)
    assert table_items(observed.lab) == []
    assert len(starts(observed.lambda_before_close)) == 3, "both $connect and the message ran"
    assert _app_lines(observed.lambda_before_close) == [], (
        "only START/END/REPORT: the handler's lines are dropped"
    )


def seed_wrong_table(observed: Observed) -> None:
    _both_accepted(observed)
    assert table_items(observed.lab) == []
    tables = observed.lab.target().client("dynamodb").list_tables()["TableNames"]
    assert tables == [info(observed.lab).table], "nothing created chatgenius-connection"
    assert any(
        "Error handling WebSocket event" in line and "chatgenius-connection" in line
        for line in observed.lambda_before_close
    )


def wrong_region(observed: Observed) -> None:
    _both_accepted(observed)
    assert table_items(observed.lab) == [], "the app's region (us-east-2) has nothing"
    elsewhere = _stored(observed.lab, "us-east-1")
    assert set(elsewhere) == {"alice@example.com", "bob@example.com"}
    assert info(observed.lab).table == "chatgenius-connections"


def no_connect_integration(observed: Observed) -> None:
    _both_accepted(observed)
    assert table_items(observed.lab) == []
    connects = _access_lines(observed, "CONNECT")
    assert len(connects) == 2 and all(line["integrationRequestId"] == "-" for line in connects)
    assert all(line["status"] == "200" for line in connects)
    # The only invocation before the clients closed is alice's message (the handler finds no sender).
    assert len(starts(observed.lambda_before_close)) == 1
    assert not any('"route": "$connect"' in line for line in observed.lambda_before_close)


def stale_deployment(observed: Observed) -> None:
    """The stage still invokes the old $connect function; the fixed one, which the API now names, never runs."""
    _both_accepted(observed)
    assert table_items(observed.lab) == []  # the old handler wrote to a misspelt table and said 200
    old_function = log_messages(observed.lab, f"/aws/lambda/{OLD_CONNECT_FUNCTION}", observed.started_ms)
    assert len(starts(old_function)) == 2, old_function
    assert not any('"route": "$connect"' in line for line in observed.lambda_before_close)
    uris = [
        line
        for line in log_messages(observed.lab, execution_group(observed.lab), observed.started_ms)
        if "Endpoint request URI: " in line
    ]
    assert sum(f"function:{OLD_CONNECT_FUNCTION}/invocations" in line for line in uris) == 2, uris


def throttled_connects(observed: Observed) -> None:
    """Every handshake is answered 429 before $connect runs: nothing invoked, nothing stored; both logs say so."""
    assert (observed.alice.status, observed.bob.status) == (429, 429)
    assert table_items(observed.lab) == []
    assert starts(observed.lambda_before_close) == []
    connects = _access_lines(observed, "CONNECT")
    assert [(line["status"], line["responseType"]) for line in connects] == [("429", "THROTTLED")] * 2
    execution = log_messages(observed.lab, execution_group(observed.lab), observed.started_ms)
    throttled = [
        line for line in execution if "Execution failed: throttled by the stage's throttling" in line
    ]
    assert len(throttled) == 2 and all("burst 0 (DefaultRouteSettings)" in line for line in throttled), (
        throttled
    )


def missing_workspace(observed: Observed) -> None:
    _both_accepted(observed)
    stored = _stored(observed.lab)
    assert set(stored) == {"alice@example.com", "bob@example.com"}
    assert all("workspaceId" not in item for item in stored.values())
    index = observed.lab.target().client("dynamodb")
    scanned = index.scan(TableName=info(observed.lab).table, IndexName="workspaceIndex", Select="COUNT")
    assert scanned["Count"] == 0, "the sparse GSI holds none of them"
    assert _gsi_count(observed.lab, WORKSPACE) == 0
    assert observed.bob_frames == []


def index_denied(observed: Observed) -> None:
    _both_accepted(observed)
    assert set(_stored(observed.lab)) == {"alice@example.com", "bob@example.com"}
    assert observed.bob_frames == [], "the broadcast reaches nobody"
    (frame,) = observed.alice_frames
    assert re.fullmatch(INTERNAL_ERROR_FRAME, frame), frame
    (failure,) = [line for line in observed.lambda_before_close if '"route": "message"' in line]
    assert failure.startswith("[ERROR]")
    assert '"error_code": "AccessDeniedException"' in failure and '"operation": "Query"' in failure
    # The GSI is what was denied: the same role still reads the table itself.
    assert _gsi_count(observed.lab, WORKSPACE) == 2


def early_disconnect(observed: Observed) -> None:
    _both_accepted(observed)
    wait_until(lambda: table_items(observed.lab) == [])
    lines = wait_for_count(lambda: access_log(observed.lab, observed.started_ms), 4)
    for user_lines in _by_connection(lines).values():
        assert [line["eventType"] for line in user_lines] == ["CONNECT", "DISCONNECT"]
        connect, disconnect = user_lines
        lifetime_ms = int(disconnect["requestTimeEpoch"]) - int(disconnect["connectedAt"])
        # connectedAt is taken when the upgrade arrives, so the lifetime includes $connect's own run
        # (a cold start); seconds, where an idle client would be closed after 10 minutes.
        assert 0 <= lifetime_ms < 10_000, "DISCONNECT follows CONNECT at once"
        assert connect["status"] == disconnect["status"] == "200"


def handler_crash(observed: Observed) -> None:
    assert (observed.alice.status, observed.bob.status) == (502, 502)
    assert table_items(observed.lab) == []
    assert any("Runtime.HandlerNotFound" in line for line in observed.lambda_before_close)


def http_no_connection_id(observed: Observed) -> None:
    _both_accepted(observed)
    assert table_items(observed.lab) == []
    connects = _access_lines(observed, "CONNECT")
    assert len(connects) == 2
    assert all(line["status"] == "200" and line["integrationStatus"] == "200" for line in connects)
    # $connect went to the HTTP backend: no Lambda ran for it (only alice's message reached the function).
    assert len(starts(observed.lambda_before_close)) == 1
    assert not any('"route": "$connect"' in line for line in observed.lambda_before_close)


def invoke_permission_missing(observed: Observed) -> None:
    # Lambda refuses API Gateway (the statement names a former API): 500 before any handler code runs.
    assert (observed.alice.status, observed.bob.status) == (500, 500)
    assert table_items(observed.lab) == []
    assert starts(observed.lambda_before_close) == []
    refusal = "Execution failed due to configuration error: Invalid permissions on Lambda function"

    def refused() -> list[str]:
        lines = log_messages(observed.lab, execution_group(observed.lab), observed.started_ms)
        return [line for line in lines if line.endswith(refusal)]

    assert len(wait_for_count(refused, 2)) == 2
    connects = wait_for_count(lambda: _access_lines(observed, "CONNECT"), 2)
    assert [line["status"] for line in connects] == ["500", "500"]


NODE_LINE = re.compile(r"\S+Z\t(?P<request_id>[^\t]+)\t[A-Z]+\t(?P<message>.*)", re.S)


def _requests_of(lines: list[str], pattern: str) -> dict[str, str]:
    """Connection id → the request id of the Node console line whose message matches ``pattern``."""
    found = {}
    for line in lines:
        console = NODE_LINE.fullmatch(line)
        match = re.fullmatch(pattern, console.group("message")) if console else None
        if console and match:
            found[match.group(1)] = console.group("request_id")
    return found


def write_not_awaited(observed: Observed) -> None:
    _both_accepted(observed)
    attempts = _requests_of(observed.lambda_before_close, r"Connection attempt (\S+) for workspace .*")
    stored = _requests_of(observed.lambda_before_close, r"Stored connection (\S+)")
    assert len(attempts) == 2
    # Each $connect ended with its write still pending: no store line in its own invocation. The write
    # resumes when an invocation thaws the environment; its line lands in a later one, or not before the
    # clients close (its response waits, frozen, for the next invocation), so only "never in its own".
    assert all(stored.get(connection_id) != request_id for connection_id, request_id in attempts.items())


def write_on_message(observed: Observed) -> None:
    _both_accepted(observed)
    assert set(_stored(observed.lab)) == {"alice@example.com", "bob@example.com"}
    joins = [line for line in access_log(observed.lab, observed.started_ms) if line["routeKey"] == "join"]
    assert len(joins) == 2, "each client's join was a message on the join route"
    stored = _requests_of(observed.lambda_before_close, r"Stored connection (\S+)")
    attempts = _requests_of(observed.lambda_before_close, r"Connection attempt (\S+), waiting for its join")
    assert set(stored) == set(attempts) and len(stored) == 2
    assert all(stored[connection_id] != attempts[connection_id] for connection_id in stored)
    (frame,) = observed.bob_frames  # once joined, the chat works
    assert json.loads(frame)["message"] == MESSAGE["message"]


def _stored_and_not_delivered(observed: Observed, alice_frame: str) -> None:
    """Both connections stored, bob gets nothing, alice gets the error frame ``alice_frame`` (a pattern)."""
    _both_accepted(observed)
    assert set(_stored(observed.lab)) == {"alice@example.com", "bob@example.com"}
    assert observed.bob_frames == [], "the broadcast reaches nobody"
    (frame,) = observed.alice_frames
    assert re.fullmatch(alice_frame, frame), frame


def route_selection_mismatch(observed: Observed) -> None:
    _stored_and_not_delivered(observed, FORBIDDEN_FRAME)
    execution = log_messages(observed.lab, execution_group(observed.lab), observed.started_ms)
    assert any("no route matches route selection value []" in line for line in execution), execution
    assert not any('"route": "message"' in line for line in observed.lambda_before_close)


def manage_connections_denied(observed: Observed) -> None:
    _stored_and_not_delivered(observed, INTERNAL_ERROR_FRAME)
    (failure,) = [line for line in observed.lambda_before_close if '"route": "message"' in line]
    assert '"ForbiddenException": 1' in failure, failure


def management_endpoint_wrong(observed: Observed) -> None:
    _stored_and_not_delivered(observed, INTERNAL_ERROR_FRAME)
    (failure,) = [line for line in observed.lambda_before_close if '"route": "message"' in line]
    assert f'{info(observed.lab).api_id}.execute-api.us-east-2.amazonaws.com/production"' in failure, failure
    assert '"EndpointConnectionError": 1' in failure, failure  # the lab reaches no host but loopback


def message_route_missing(observed: Observed) -> None:
    _stored_and_not_delivered(observed, FORBIDDEN_FRAME)
    execution = log_messages(observed.lab, execution_group(observed.lab), observed.started_ms)
    assert any("no route matches route selection value [message]" in line for line in execution), execution


def authorizer_denies(observed: Observed) -> None:
    """The authorizer's policy denies both handshakes: 403, $connect never runs, nothing is stored."""
    assert (observed.alice.status, observed.bob.status) == (403, 403)
    assert table_items(observed.lab) == []
    assert starts(observed.lambda_before_close) == [], "the $connect function never ran"
    connects = _access_lines(observed, "CONNECT")
    assert [line["status"] for line in connects] == ["403", "403"]
    authorizer = log_messages(observed.lab, f"/aws/lambda/{AUTHORIZER_FUNCTION}", observed.started_ms)
    assert sum('"authorizer": "deny"' in line for line in authorizer) == 2, authorizer
    execution = log_messages(observed.lab, execution_group(observed.lab), observed.started_ms)
    assert sum("Authorizer denied the request: " in line for line in execution) == 2, execution


def authorizer_drops_context(observed: Observed) -> None:
    """The authorizer allows, its context lacks the user: the handler answers 500 and writes nothing."""
    assert (observed.alice.status, observed.bob.status) == (500, 500)
    assert table_items(observed.lab) == []
    failures = [
        line for line in observed.lambda_before_close if '"error_code": "MissingAuthorizerContext"' in line
    ]
    assert len(failures) == 2 and all(line.startswith("[ERROR]") for line in failures), failures
    assert all('"authorizer_keys": ["principalId", "workspaceId"]' in line for line in failures), failures


def _by_connection(lines: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    grouped: dict[str, list[dict[str, str]]] = {}
    for line in lines:
        grouped.setdefault(line["connectionId"], []).append(line)
    return grouped


SYMPTOMS: dict[str, Callable[[Observed], None]] = {
    "healthy": healthy,
    "seed-put-denied": seed_put_denied,
    "seed-logs-dropped": seed_logs_dropped,
    "seed-wrong-table": seed_wrong_table,
    "wrong-region": wrong_region,
    "no-connect-integration": no_connect_integration,
    "missing-workspace": missing_workspace,
    "index-denied": index_denied,
    "early-disconnect": early_disconnect,
    "handler-crash": handler_crash,
    "http-no-connection-id": http_no_connection_id,
    "write-not-awaited": write_not_awaited,
    "write-on-message": write_on_message,
    "stale-deployment": stale_deployment,
    "throttled-connects": throttled_connects,
    "route-selection-mismatch": route_selection_mismatch,
    "manage-connections-denied": manage_connections_denied,
    "management-endpoint-wrong": management_endpoint_wrong,
    "message-route-missing": message_route_missing,
    "authorizer-denies": authorizer_denies,
    "authorizer-drops-context": authorizer_drops_context,
    "invoke-permission-missing": invoke_permission_missing,
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_shows_its_symptom_from_outside(name: str, empty_dynamodb: EmptyDynamoDB) -> None:
    assert name in SYMPTOMS, f"scenario {name} has no observable symptom checked in this file"
    with scenario_run(name, empty_dynamodb()) as observed:
        SYMPTOMS[name](observed)
        # The Next.js stand-in's process starts with the first request an HTTP integration sends it, and
        # only then (kit.lab.activation): a lab whose routes all reach Lambda never pays for it.
        backend = observed.lab.backend
        assert backend is not None and backend.failure is None
        assert (backend.process is not None) == _integrates_http(observed.lab)


def _integrates_http(lab: Lab) -> bool:
    apigw = lab.target().client("apigatewayv2")
    integrations = apigw.get_integrations(ApiId=info(lab).api_id)["Items"]
    return any(each["IntegrationType"].startswith("HTTP") for each in integrations)
