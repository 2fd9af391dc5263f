"""The lab's API Gateway WebSocket endpoint, end to end: every behaviour of the emulator checklist.

A real client (websocket-client) and boto3 against a running lab: handshake outcomes, route selection and
error frames, frame and message limits, timers, ``$disconnect``, event shapes, @connections, live
configuration changes made through AWS APIs, and the logs API Gateway and Lambda write. Tests that change
configuration put it back before they end, so they share one lab; the timer tests, last in the file, use a
second lab with short timeouts, started once the first has stopped (a process holds one lab at a time).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import websocket

from kit.lab.hops import HOPS
from kit.lab.lab import Lab

from .labclient import (
    CONNECTION_ID,
    ECHO_HANDLER,
    FORBIDDEN_FRAME,
    HANG_HANDLER,
    INTERNAL_ERROR_FRAME,
    POST_TO_SELF_HANDLER,
    REFUSED_UPGRADES,
    EmptyDynamoDB,
    access_log,
    close_quietly,
    connect_user,
    connection_id_of,
    drop_action,
    drop_after_sending,
    echoed_events,
    environment_changed,
    execution_group,
    function_changed,
    get_item,
    handshake_status,
    held_until_closed,
    info,
    invoke_permission_removed,
    items_of,
    lab_target,
    lambda_lines,
    log_messages,
    management_address,
    management_client,
    now_ms,
    open_socket,
    query,
    read_close,
    recv_text,
    role_policy_changed,
    route_added,
    route_removed,
    send_close_without_status,
    send_fragmented,
    starts,
    unique_user,
    upgrade_answer,
    upgrade_request,
    upgrade_status,
    wait_for_count,
    wait_for_no_items,
    wait_until,
    websocket_address,
)

pytestmark = pytest.mark.integration

KB = 1024


class OneLabAtATime:
    """The labs this module needs, one running at a time (a process can hold only one lab: moto's state
    is global). Asking for a lab with other options stops the current one first."""

    def __init__(self, dynamodb: EmptyDynamoDB) -> None:
        self.dynamodb = dynamodb
        self.current: Lab | None = None
        self.options: dict[str, int] = {}

    def get(self, **options: int) -> Lab:
        if self.current is None or options != self.options:
            self.close()
            self.current = Lab(
                "healthy",
                write_lab_file=False,
                dynamodb=self.dynamodb(),
                **options,  # type: ignore[arg-type]
            ).start()
            self.options = options
        return self.current

    def close(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


@pytest.fixture(scope="module")
def labs(empty_dynamodb: EmptyDynamoDB) -> Iterator[OneLabAtATime]:
    holder = OneLabAtATime(empty_dynamodb)
    yield holder
    holder.close()


@pytest.fixture
def lab(labs: OneLabAtATime) -> Lab:
    return labs.get()


@pytest.fixture
def timer_lab(labs: OneLabAtATime) -> Lab:
    """A lab whose connections idle out after 2 s and end after 4 s (AWS: 10 min and 2 h), whose requests
    must arrive within 1 s and whose idle @connections sockets close after 1 s (lab: 10 s and 60 s).

    A first connection starts the function's worker, so that the timer tests, which time from before the
    handshake, measure the timers and not a cold start (seconds on a loaded machine)."""
    lab = labs.get(idle_timeout_s=2, max_duration_s=4, header_timeout_s=1, management_idle_timeout_s=1)
    assert handshake_status(lab, query(unique_user("warm-up"), "ws-1")) == 101
    return lab


# -- the handshake ----------------------------------------------------------------------------------------------


def test_connect_runs_before_the_101(lab: Lab) -> None:
    user = unique_user()
    lab.hops.reset()
    ws = connect_user(lab, user)
    try:
        # No waiting: the upgrade is pending until $connect's integration has returned.
        assert items_of(lab, user), "the item must be stored before create_connection returns"
        # ... and each hop of it was timed, each inside the one before (the bench's per-hop breakdown).
        timed = lab.hops.snapshot()
        assert set(timed) == set(HOPS)
        # A $disconnect of an earlier test may still be running (its invoke, not its handshake, counted
        # then): the nesting is compared on this handshake's spans alone, i.e. the last of each hop.
        last = [timed[hop].recent_ms[-1] for hop in HOPS]
        if all(timed[hop].count == 1 for hop in HOPS):
            assert last == sorted(last, reverse=True), dict(zip(HOPS, last, strict=True))
    finally:
        ws.close()
    wait_for_no_items(lab, user)


@pytest.mark.parametrize("kind", sorted(REFUSED_UPGRADES))
def test_a_refused_upgrade_runs_no_connect_and_stores_nothing(lab: Lab, kind: str) -> None:
    changes, status = REFUSED_UPGRADES[kind]
    user = unique_user()
    before = now_ms()
    assert asyncio.run(upgrade_status(lab, upgrade_request(lab, query(user, "ws-1"), changes))) == status
    # Had $connect run, it would have run before this answer: its item and log line would be there now.
    assert not items_of(lab, user)
    assert [line for line in access_log(lab, before) if line["eventType"] == "CONNECT"] == []
    assert starts(lambda_lines(lab, before)) == []


def test_a_client_that_drops_before_the_101_gets_disconnect_and_leaves_no_item(lab: Lab) -> None:
    user = unique_user()
    before = now_ms()
    asyncio.run(drop_after_sending(lab, upgrade_request(lab, query(user, "ws-1"))))
    (connect,) = wait_for_count(
        lambda: [line for line in access_log(lab, before) if line["eventType"] == "CONNECT"], 1
    )
    assert connect["status"] == "200"  # $connect accepted (and stored) before the 101 could go out
    connection_id = connect["connectionId"]
    (disconnect,) = wait_for_count(
        lambda: [
            line for line in access_log(lab, before, connection_id) if line["eventType"] == "DISCONNECT"
        ],
        1,
    )
    assert disconnect["status"] == "200"
    wait_for_no_items(lab, user)
    # No close frame ever came: reported as any TCP drop.
    assert any(
        f"Client [Connection Id: {connection_id}] disconnected" in line
        and line.endswith("Close reason: [1006: ]")
        for line in log_messages(lab, execution_group(lab), before)
    )
    with pytest.raises(management_client(lab).exceptions.GoneException):
        management_client(lab).get_connection(ConnectionId=connection_id)


def test_a_non_2xx_connect_answer_becomes_the_handshake_status(lab: Lab) -> None:
    user = unique_user()
    with pytest.raises(websocket.WebSocketBadStatusException) as rejected:
        open_socket(lab, query(user, None))
    assert rejected.value.status_code == 400
    assert json.loads(rejected.value.resp_body or b"{}")["reason"] == "MissingParameter"
    assert not items_of(lab, user)


def test_an_unhandled_error_in_connect_is_502(lab: Lab) -> None:
    user = unique_user()
    with function_changed(lab, Handler="app.no_such_function"):
        status, headers = asyncio.run(upgrade_answer(lab, upgrade_request(lab, query(user, "ws-1"))))
    assert status == 502
    # AWS's JSON error body, said once: the gateway's Content-Type replaces websockets' text/plain.
    assert [value for name, value in headers if name.lower() == "content-type"] == ["application/json"]
    assert not items_of(lab, user)


def test_a_connect_function_ended_by_its_timeout_is_502(lab: Lab) -> None:
    before = now_ms()
    with function_changed(lab, Handler=HANG_HANDLER, Timeout=1):
        assert handshake_status(lab, query(unique_user(), "ws-1")) == 502
    assert any(
        "Lambda execution failed with status 200 due to customer function error: " in line
        and "Task timed out after 1.00 seconds" in line
        for line in log_messages(lab, execution_group(lab), before)
    )


def test_without_a_connect_route_the_connection_is_accepted_and_nothing_is_invoked(lab: Lab) -> None:
    user = unique_user()
    with route_removed(lab, "$connect"):
        before = now_ms()
        ws = connect_user(lab, user)
        try:
            (connect,) = [line for line in access_log(lab, before) if line["eventType"] == "CONNECT"]
            lines = lambda_lines(lab, before)
        finally:
            ws.close()
    assert connect["status"] == "200"
    assert connect["integrationRequestId"] == "-"
    assert starts(lines) == [], "no Lambda invocation may happen for $connect"
    assert not items_of(lab, user)
    executed = [
        line for line in log_messages(lab, execution_group(lab), before) if connect["requestId"] in line
    ]
    assert not any("Endpoint request URI" in line for line in executed)


def test_invoke_permission_missing_is_500(lab: Lab) -> None:
    user = unique_user()
    before = now_ms()
    with invoke_permission_removed(lab):
        assert handshake_status(lab, query(user, "ws-1")) == 500
    assert not items_of(lab, user)
    assert any(
        "Execution failed due to configuration error: Invalid permissions on Lambda function" in line
        for line in log_messages(lab, execution_group(lab), before)
    )


# -- routing and error frames -----------------------------------------------------------------------------------


def test_non_json_goes_to_the_default_route_when_there_is_one(lab: Lab) -> None:
    user = unique_user()
    ws = connect_user(lab, user)
    try:
        connection_id = connection_id_of(lab, user)
        with route_added(lab, "$default"):
            before = now_ms()
            ws.send("this is not JSON")
            (message,) = wait_for_count(lambda: _access_events(lab, before, connection_id, "MESSAGE"), 1)
            assert message["routeKey"] == "$default"
            assert message["integrationRequestId"] != "-", "the $default route's integration ran"
            # The fixed handler has no $default branch: it answers 400, which a one-way route never shows.
            assert message["integrationStatus"] == "400"
            assert recv_text(ws, timeout=0.5) is None
    finally:
        ws.close()
    wait_for_no_items(lab, user)


def test_without_default_an_unmatched_message_gets_forbidden_and_the_socket_stays_open(lab: Lab) -> None:
    user = unique_user()
    ws = connect_user(lab, user)
    try:
        connection_id = connection_id_of(lab, user)
        ws.send("not JSON at all")
        first = recv_text(ws)
        assert first is not None
        match = re.fullmatch(FORBIDDEN_FRAME, first)
        assert match, first
        assert match.group("connectionId") == connection_id
        ws.send(json.dumps({"action": "no-such-route"}))
        second = recv_text(ws)
        assert second is not None
        again = re.fullmatch(FORBIDDEN_FRAME, second)
        assert again, second
        assert again.group("requestId") != match.group("requestId")
        assert get_item(lab, connection_id) is not None, "the connection is still open and stored"
    finally:
        ws.close()
    wait_for_no_items(lab, user)


def test_a_failing_message_integration_sends_the_internal_server_error_frame(lab: Lab) -> None:
    user = unique_user()
    ws = connect_user(lab, user)
    try:
        connection_id = connection_id_of(lab, user)
        with function_changed(lab, Handler="app.no_such_function"):
            ws.send(json.dumps({"action": "message", "message": "hi"}))
            frame = recv_text(ws, timeout=10)
        assert frame is not None
        match = re.fullmatch(INTERNAL_ERROR_FRAME, frame)
        assert match, frame
        assert match.group("connectionId") == connection_id
    finally:
        ws.close()
    wait_for_no_items(lab, user)


# -- limits ---------------------------------------------------------------------------------------------------------


def test_a_32_kb_frame_passes_and_one_byte_more_closes_1009(lab: Lab) -> None:
    user = unique_user()
    ws = connect_user(lab, user)
    try:
        ws.send("x" * (32 * KB))  # at the limit: routed (no $default, so Forbidden), not closed
        frame = recv_text(ws)
        assert frame is not None and re.fullmatch(FORBIDDEN_FRAME, frame), frame
        ws.send("x" * (32 * KB + 1))
        assert read_close(ws)[0] == 1009
    finally:
        close_quietly(ws)
    wait_for_no_items(lab, user)  # $disconnect ran


def test_a_message_over_128_kb_in_32_kb_frames_closes_1009(lab: Lab) -> None:
    user = unique_user()
    ws = connect_user(lab, user)
    try:
        send_fragmented(ws, ["y" * (32 * KB)] * 4)  # exactly 128 KB: allowed
        frame = recv_text(ws)
        assert frame is not None and re.fullmatch(FORBIDDEN_FRAME, frame), frame
        send_fragmented(ws, ["y" * (32 * KB)] * 4 + ["y"])
        assert read_close(ws)[0] == 1009
    finally:
        close_quietly(ws)
    wait_for_no_items(lab, user)


def test_a_binary_frame_closes_1003(lab: Lab) -> None:
    user = unique_user()
    ws = connect_user(lab, user)
    try:
        ws.send_binary(b"\x00\x01\x02")
        assert read_close(ws)[0] == 1003
    finally:
        close_quietly(ws)
    wait_for_no_items(lab, user)


# -- $disconnect ----------------------------------------------------------------------------------------------------


def _access_events(lab: Lab, start_ms: int, connection_id: str, event_type: str) -> list[dict[str, str]]:
    return [line for line in access_log(lab, start_ms, connection_id) if line["eventType"] == event_type]


def _disconnect_lines(lab: Lab, connection_id: str, start_ms: int) -> list[str]:
    return [
        line
        for line in log_messages(lab, execution_group(lab), start_ms)
        if f"Client [Connection Id: {connection_id}] disconnected" in line
    ]


def test_disconnect_runs_after_the_close_with_the_clients_code_and_reason(lab: Lab) -> None:
    user = unique_user()
    before = now_ms()
    ws = connect_user(lab, user)
    connection_id = connection_id_of(lab, user)
    ws.close(status=4001, reason=b"bye")
    wait_for_no_items(lab, user)  # the fixed handler's $disconnect deleted the item
    (line,) = wait_until(lambda: _disconnect_lines(lab, connection_id, before))
    assert line.endswith("Close reason: [4001: bye]")
    (event,) = _access_events(lab, before, connection_id, "DISCONNECT")
    assert event["status"] == "200"


def test_a_close_frame_without_status_is_reported_as_1005(lab: Lab) -> None:
    user = unique_user()
    before = now_ms()
    ws = connect_user(lab, user)
    connection_id = connection_id_of(lab, user)
    send_close_without_status(ws)
    wait_for_no_items(lab, user)
    (line,) = wait_until(lambda: _disconnect_lines(lab, connection_id, before))
    assert line.endswith("Close reason: [1005: Client-side close frame status not set]")


# -- events -----------------------------------------------------------------------------------------------------------

CONTEXT_KEYS = {
    "routeKey",
    "eventType",
    "extendedRequestId",
    "requestTime",
    "messageDirection",
    "stage",
    "connectedAt",
    "requestTimeEpoch",
    "identity",
    "requestId",
    "domainName",
    "connectionId",
    "apiId",
}
CLF_TIME = r"\d{2}/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/\d{4}:\d{2}:\d{2}:\d{2} \+0000"


def test_ids_have_aws_shape(lab: Lab) -> None:
    user = unique_user()
    before = now_ms()
    ws = connect_user(lab, user)
    try:
        connection_id = connection_id_of(lab, user)
        (connect,) = access_log(lab, before, connection_id)
    finally:
        ws.close()
    assert re.fullmatch(CONNECTION_ID, connection_id)
    assert re.fullmatch(CONNECTION_ID, connect["requestId"])
    assert connect["requestId"][:5] == connection_id[:5], "real ids share their first characters"
    wait_for_no_items(lab, user)


def test_events_have_exactly_the_keys_aws_sends(lab: Lab) -> None:
    before = now_ms()
    with function_changed(lab, Handler=ECHO_HANDLER):
        with_query = open_socket(lab, query("ada@example.com", "ws-1"), header=["User-Agent: kit-tests/1"])
        without_query = open_socket(lab)
        try:
            connects = wait_for_count(lambda: _echoed(lab, before, "CONNECT"), 2)
            (connect,) = [e for e in connects if "queryStringParameters" in e]
            (bare_connect,) = [e for e in connects if "queryStringParameters" not in e]
            connection_id = connect["requestContext"]["connectionId"]
            with_query.send(json.dumps({"action": "message", "message": "hi"}))
            (message,) = wait_for_count(lambda: _echoed(lab, before, "MESSAGE"), 1)
        finally:
            with_query.close(status=4001, reason=b"bye")
            without_query.close()
        disconnects = wait_for_count(lambda: _echoed(lab, before, "DISCONNECT"), 2)
    (disconnect,) = [e for e in disconnects if e["requestContext"]["connectionId"] == connection_id]

    assert set(connect) == {
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "requestContext",
        "isBase64Encoded",
    }
    assert connect["queryStringParameters"] == {"token": "ada@example.com", "workspaceId": "ws-1"}
    assert connect["multiValueQueryStringParameters"] == {
        "token": ["ada@example.com"],
        "workspaceId": ["ws-1"],
    }
    assert set(connect["requestContext"]) == CONTEXT_KEYS
    assert connect["requestContext"]["identity"] == {"userAgent": "kit-tests/1", "sourceIp": "127.0.0.1"}
    assert {
        "Host",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "X-Amzn-Trace-Id",
        "X-Forwarded-For",
    } <= set(connect["headers"])
    assert not {"Connection", "Upgrade"} & set(connect["headers"])
    assert connect["isBase64Encoded"] is False

    assert set(bare_connect) == {"headers", "multiValueHeaders", "requestContext", "isBase64Encoded"}
    assert set(bare_connect["requestContext"]) == CONTEXT_KEYS
    assert bare_connect["requestContext"]["identity"] == {"sourceIp": "127.0.0.1"}

    assert message["requestContext"]["connectionId"] == connection_id
    assert set(message) == {"requestContext", "body", "isBase64Encoded"}
    assert set(message["requestContext"]) == CONTEXT_KEYS | {"messageId"}
    assert message["requestContext"]["routeKey"] == "message"
    assert message["body"] == json.dumps({"action": "message", "message": "hi"})

    assert set(disconnect) == {"headers", "multiValueHeaders", "requestContext", "isBase64Encoded"}
    assert set(disconnect["headers"]) == {"Host", "x-api-key", "X-Forwarded-For", "x-restapi"}
    assert set(disconnect["requestContext"]) == CONTEXT_KEYS | {"disconnectStatusCode", "disconnectReason"}
    assert disconnect["requestContext"]["disconnectStatusCode"] == 4001
    assert disconnect["requestContext"]["disconnectReason"] == "bye"

    for event in (connect, message, disconnect):
        context = event["requestContext"]
        assert context["requestId"] == context["extendedRequestId"]
        assert context["connectedAt"] == connect["requestContext"]["connectedAt"]
        assert re.fullmatch(CLF_TIME, context["requestTime"])
        assert context["messageDirection"] == "IN"
        assert context["apiId"] == info(lab).api_id and context["stage"] == "prod"
        assert context["domainName"] == f"{info(lab).api_id}.execute-api.{info(lab).region}.amazonaws.com"


def _echoed(lab: Lab, start_ms: int, event_type: str) -> list[dict[str, Any]]:
    return [e for e in echoed_events(lab, start_ms) if e["requestContext"]["eventType"] == event_type]


# -- @connections -----------------------------------------------------------------------------------------------------


def test_post_delivers_a_frame_and_get_describes_the_connection(lab: Lab) -> None:
    user = unique_user()
    ws = open_socket(lab, query(user, "ws-1"), header=["User-Agent: kit-tests/2"])
    try:
        connection_id = connection_id_of(lab, user)
        management = management_client(lab)
        answer = management.post_to_connection(ConnectionId=connection_id, Data=b"hello from the server")
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert recv_text(ws) == "hello from the server"
        described = management.get_connection(ConnectionId=connection_id)
        assert described["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert described["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "kit-tests/2"}
        assert described["ConnectedAt"] <= described["LastActiveAt"]
        assert described["ConnectedAt"].tzinfo is not None
    finally:
        ws.close()
    wait_for_no_items(lab, user)


def test_post_to_a_closed_connection_is_410_gone(lab: Lab) -> None:
    user = unique_user()
    ws = connect_user(lab, user)
    connection_id = connection_id_of(lab, user)
    ws.close()
    wait_for_no_items(lab, user)
    management = management_client(lab)
    with pytest.raises(management.exceptions.GoneException) as gone:
        management.post_to_connection(ConnectionId=connection_id, Data=b"anyone there?")
    assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
    with pytest.raises(management.exceptions.GoneException):
        management.get_connection(ConnectionId=connection_id)


def test_post_over_131072_bytes_is_413(lab: Lab) -> None:
    user = unique_user()
    ws = connect_user(lab, user)
    try:
        connection_id = connection_id_of(lab, user)
        management = management_client(lab)
        with pytest.raises(management.exceptions.PayloadTooLargeException) as too_large:
            management.post_to_connection(ConnectionId=connection_id, Data=b"z" * 131_073)
        assert too_large.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
        assert recv_text(ws, timeout=0.5) is None
    finally:
        ws.close()
    wait_for_no_items(lab, user)


def test_delete_answers_204_and_the_client_sees_close_1000(lab: Lab) -> None:
    user = unique_user()
    before = now_ms()
    ws = connect_user(lab, user)
    try:
        connection_id = connection_id_of(lab, user)
        answer = management_client(lab).delete_connection(ConnectionId=connection_id)
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 204
        assert read_close(ws) == (1000, "Connection Closed Normally")
    finally:
        close_quietly(ws)
    wait_for_no_items(lab, user)
    (line,) = wait_until(lambda: _disconnect_lines(lab, connection_id, before))
    assert line.endswith("Close reason: [1000: Connection Closed Normally]")


def test_a_malformed_connection_id_is_400_bad_request(lab: Lab) -> None:
    management = management_client(lab)
    with pytest.raises(management.exceptions.ClientError) as bad:
        management.post_to_connection(ConnectionId="0b7f3c1e-uuid-from-serverless-offline", Data=b"x")
    error = bad.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "BadRequestException"
    assert "Invalid connectionId" in error["Error"]["Message"]


def test_posting_to_the_connection_during_its_own_connect_is_410(lab: Lab) -> None:
    before = now_ms()
    with function_changed(lab, Handler=POST_TO_SELF_HANDLER):
        ws = open_socket(lab, query(unique_user(), "ws-1"))
        ws.close()
    outcomes = [line for line in lambda_lines(lab, before) if line.startswith("POST_TO_SELF ")]
    assert outcomes == ["POST_TO_SELF 410 GoneException"]


# -- live configuration -------------------------------------------------------------------------------------------------


def test_removing_put_item_from_the_role_fails_the_next_handshake_with_500(lab: Lab) -> None:
    denied_user, restored_user = unique_user("denied"), unique_user("restored")
    with role_policy_changed(lab, drop_action("dynamodb:PutItem")):
        assert handshake_status(lab, query(denied_user, "ws-1")) == 500
    assert not items_of(lab, denied_user)
    ws = connect_user(lab, restored_user)
    try:
        assert items_of(lab, restored_user), "the restored policy allows PutItem again"
    finally:
        ws.close()
    wait_for_no_items(lab, restored_user)


def test_a_function_environment_change_applies_to_the_next_connection(lab: Lab) -> None:
    before = now_ms()
    typo_user, fixed_user = unique_user("typo"), unique_user("fixed")
    with environment_changed(lab, TABLE_NAME="chatgenius-connection"):
        assert handshake_status(lab, query(typo_user, "ws-1")) == 500
    assert not items_of(lab, typo_user)
    # The role grants only table/chatgenius-connections, so IAM answers before DynamoDB could say
    # ResourceNotFound: AccessDenied for the misspelt table, as on AWS.
    assert any(
        '"table": "chatgenius-connection"' in line and '"error_code": "AccessDeniedException"' in line
        for line in lambda_lines(lab, before)
    )
    ws = connect_user(lab, fixed_user)
    try:
        assert items_of(lab, fixed_user)
    finally:
        ws.close()
    wait_for_no_items(lab, fixed_user)


# -- logs --------------------------------------------------------------------------------------------------------------


def test_execution_access_and_lambda_logs_for_one_connection(lab: Lab) -> None:
    user = unique_user()
    before = now_ms()
    ws = connect_user(lab, user)
    connection_id = connection_id_of(lab, user)
    ws.send(json.dumps({"action": "presence", "status": "away"}))
    wait_until(lambda: len(access_log(lab, before, connection_id)) >= 2)
    ws.close()
    wait_for_no_items(lab, user)
    access = wait_for_count(lambda: access_log(lab, before, connection_id), 3)

    # One access-log JSON line per event.
    assert [line["eventType"] for line in access] == ["CONNECT", "MESSAGE", "DISCONNECT"]
    assert [line["routeKey"] for line in access] == ["$connect", "presence", "$disconnect"]
    assert all(line["status"] == "200" and line["integrationStatus"] == "200" for line in access)

    # Execution log: every line of these requests carries the "(<requestId>) " prefix.
    execution = log_messages(lab, execution_group(lab), before)
    for line in access:
        mine = [text for text in execution if line["requestId"] in text]
        assert mine and all(text.startswith(f"({line['requestId']}) ") for text in mine)
        assert any(text.endswith(f"Starting execution for request: {line['requestId']}") for text in mine)
    assert any(f"Client [Connection Id: {connection_id}] connected to API" in text for text in execution)

    # Lambda: START / END / REPORT for each invocation the access log names.
    lambda_log = lambda_lines(lab, before)
    for line in access:
        request_id = line["integrationRequestId"]
        assert f"START RequestId: {request_id} Version: $LATEST" in lambda_log
        assert f"END RequestId: {request_id}" in lambda_log
        assert any(text.startswith(f"REPORT RequestId: {request_id}\tDuration: ") for text in lambda_log)


# -- timers (last: they need the other lab) -----------------------------------------------------------------


def test_an_idle_connection_closes_1001_going_away(timer_lab: Lab) -> None:
    user = unique_user()
    started = time.monotonic()
    ws = connect_user(timer_lab, user)
    try:
        assert read_close(ws, timeout=10) == (1001, "Going away")
        elapsed = time.monotonic() - started
    finally:
        close_quietly(ws)
    assert 1.8 <= elapsed < 3.9, elapsed  # idle 2 s, well before the 4 s maximum
    wait_for_no_items(timer_lab, user)


def test_the_maximum_duration_closes_1001_even_when_active(timer_lab: Lab) -> None:
    user = unique_user()
    started = time.monotonic()
    ws = connect_user(timer_lab, user)
    try:
        close = None
        while close is None and time.monotonic() - started < 8:
            ws.send(json.dumps({"action": "typing", "isTyping": True}))  # activity resets the idle timer
            try:
                close = read_close(ws, timeout=0.5)
            except websocket.WebSocketTimeoutException:
                continue
        elapsed = time.monotonic() - started
    finally:
        close_quietly(ws)
    assert close == (1001, "Going away")
    assert 3.8 <= elapsed < 6, elapsed
    wait_for_no_items(timer_lab, user)


SLOW_HEADERS = [f"X-Slow-{index}: {index}\r\n".encode() for index in range(8)]


@pytest.mark.parametrize(
    ("port", "sends"),
    [
        ("websocket", []),  # connects and says nothing
        ("websocket", [b"GET /prod HTTP/1.1\r\n", *SLOW_HEADERS]),
        ("management", []),
        ("management", [b"GET /prod/@connections/AAAAAAAAAAAAAAA= HTTP/1.1\r\n", *SLOW_HEADERS]),
        # The head in time, then a body that never comes.
        ("management", [b"POST /prod/@connections/AAAAAAAAAAAAAAA= HTTP/1.1\r\nContent-Length: 10\r\n\r\n"]),
    ],
)
def test_a_silent_or_slow_request_is_dropped_after_the_header_timeout(
    timer_lab: Lab, port: str, sends: list[bytes]
) -> None:
    address = websocket_address(timer_lab) if port == "websocket" else management_address(timer_lab)
    # A header line every 0.3 s would hold the socket for ever if each line restarted the clock.
    held = held_until_closed(address, sends, every=0.3, limit=8)
    assert 0.9 <= held < 2.5, held  # header timeout 1 s


def test_an_idle_kept_alive_management_socket_is_closed_after_the_idle_timeout(timer_lab: Lab) -> None:
    request = b"GET /prod/@connections/AAAAAAAAAAAAAAA= HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    # Three requests in time (each answered 403: unsigned), 0.6 s apart: longer together than the header
    # timeout, each within the idle timeout. Then silence: closed 1 s after the last answer.
    held = held_until_closed(management_address(timer_lab), [request] * 3, every=0.6, limit=8)
    assert 2.1 <= held < 3.7, held


# -- a function's code: GetFunction's Code.Location, and UpdateFunctionCode taking effect ------------------------


def _package(files: dict[str, str]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def test_updated_code_is_fetched_from_its_code_location_and_runs(lab: Lab) -> None:
    """GetFunction hands out a URL that downloads the code (a presigned S3 URL on AWS, valid 10 minutes);
    UpdateFunctionCode takes effect on the next invocation, as on Lambda, and back again."""
    import base64
    import hashlib
    import urllib.error
    import urllib.request

    lam = lab_target(lab).client("lambda")
    name = info(lab).functions["$connect"]
    answer = lam.get_function(FunctionName=name)
    url = answer["Code"]["Location"]
    assert url.startswith(info(lab).endpoints["lambda"] + "/_lab/code/us-east-2/")
    with urllib.request.urlopen(url, timeout=10) as download:
        original = download.read()
    assert (
        base64.b64encode(hashlib.sha256(original).digest()).decode() == answer["Configuration"]["CodeSha256"]
    )
    for tampered in (url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), url.split("&X-Kit-Expires-At")[0]):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(tampered, timeout=10)
        assert refused.value.code == 403

    refusing = "def handler(event, context):\n    return {'statusCode': 403}\n"
    lam.update_function_code(FunctionName=name, ZipFile=_package({"app.py": refusing}))
    try:
        assert handshake_status(lab, query(unique_user("new-code"), "ws-1")) == 403
    finally:
        lam.update_function_code(FunctionName=name, ZipFile=original)
    assert handshake_status(lab, query(unique_user("old-code"), "ws-1")) == 101
