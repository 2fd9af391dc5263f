"""One test per row of docs/fidelity.md: the "this lab" column, checked against a running lab.

Each docstring names its row. All tests share one lab; a test that changes configuration (through AWS APIs)
puts it back. The two timer rows shorten the running gateway's timers for the test, after checking the
lab's defaults are AWS's 10 minutes and 2 hours.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
import websocket
from botocore.exceptions import ClientError

from kit.lab.gateway_core import IdlePolicy
from kit.lab.lab import Lab
from kit.local import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from kit.probe import run_probe
from kit.probe_core import ProbePlan

from .labclient import (
    CONNECTION_ID,
    ECHO_HANDLER,
    FORBIDDEN_FRAME,
    HANG_HANDLER,
    INTERNAL_ERROR_FRAME,
    POST_TO_SELF_HANDLER,
    EmptyDynamoDB,
    access_log,
    close_quietly,
    connect_user,
    connection_id_of,
    deploy,
    drop_index_resources,
    echoed_events,
    environment_changed,
    execution_group,
    function_changed,
    handshake_status,
    info,
    invoke_permission_removed,
    items_of,
    lambda_lines,
    log_messages,
    management_client,
    now_ms,
    open_socket,
    query,
    read_close,
    recv_text,
    role_policy_changed,
    route_added,
    route_removed,
    routes,
    send_close_without_status,
    send_fragmented,
    starts,
    table_items,
    unique_user,
    wait_for_count,
    wait_for_no_items,
    wait_until,
)

pytestmark = pytest.mark.integration

KB = 1024


@pytest.fixture(scope="module")
def lab(empty_dynamodb: EmptyDynamoDB) -> Iterator[Lab]:
    with Lab("healthy", write_lab_file=False, dynamodb=empty_dynamodb()) as running:
        yield running


@contextlib.contextmanager
def echo_handler(lab: Lab) -> Iterator[int]:
    """The function prints each event it gets; yields the time to read events from."""
    started = now_ms()
    with function_changed(lab, Handler=ECHO_HANDLER):
        yield started


def _events(lab: Lab, started: int, event_type: str) -> list[dict[str, Any]]:
    return [e for e in echoed_events(lab, started) if e["requestContext"]["eventType"] == event_type]


@contextlib.contextmanager
def short_timers(lab: Lab, idle_s: float, max_s: float) -> Iterator[None]:
    assert lab.gateway is not None
    settings = lab.gateway.settings
    previous = settings.idle
    settings.idle = IdlePolicy(idle_s, max_s)
    try:
        yield
    finally:
        settings.idle = previous


def _disconnect_line(lab: Lab, connection_id: str, started: int) -> str:
    (line,) = wait_until(
        lambda: [
            text
            for text in log_messages(lab, execution_group(lab), started)
            if f"Client [Connection Id: {connection_id}] disconnected" in text
        ]
    )
    return line


# -- connection ids and the handshake ------------------------------------------------------------------------------


def test_connection_id_shape(lab: Lab) -> None:
    """Row: connection id shape."""
    user = unique_user()
    started = now_ms()
    ws = connect_user(lab, user)
    try:
        connection_id = connection_id_of(lab, user)
        (connect,) = access_log(lab, started, connection_id)
    finally:
        ws.close()
    assert re.fullmatch(CONNECTION_ID, connection_id), connection_id
    assert connect["requestId"][:5] == connection_id[:5]
    wait_for_no_items(lab, user)


def test_connect_completes_before_the_101(lab: Lab) -> None:
    """Row: $connect runs before the 101."""
    user = unique_user()
    ws = connect_user(lab, user)
    try:
        assert items_of(lab, user)
    finally:
        ws.close()
    wait_for_no_items(lab, user)


def test_no_connect_route(lab: Lab) -> None:
    """Row: no $connect route."""
    user = unique_user()
    started = now_ms()
    with route_removed(lab, "$connect"):
        ws = connect_user(lab, user)
        try:
            lines = lambda_lines(lab, started)
            (connect,) = [line for line in access_log(lab, started) if line["eventType"] == "CONNECT"]
        finally:
            ws.close()
    assert starts(lines) == []
    assert connect["status"] == "200" and connect["integrationRequestId"] == "-"
    assert not items_of(lab, user)


def test_connect_handler_throws(lab: Lab) -> None:
    """Row: $connect handler throws."""
    with function_changed(lab, Handler="app.no_such_function"):
        assert handshake_status(lab, query(unique_user(), "ws-1")) == 502


def test_connect_returns_non_2xx(lab: Lab) -> None:
    """Row: $connect returns a non-2xx status."""
    with pytest.raises(websocket.WebSocketBadStatusException) as rejected:
        open_socket(lab, query(unique_user(), None))  # the fixed handler answers 400 without workspaceId
    assert rejected.value.status_code == 400
    assert json.loads(rejected.value.resp_body or b"{}")["reason"] == "MissingParameter"


def test_connect_function_times_out(lab: Lab) -> None:
    """Row: $connect function times out."""
    started = now_ms()
    with function_changed(lab, Handler=HANG_HANDLER, Timeout=1):
        assert handshake_status(lab, query(unique_user(), "ws-1")) == 502
    assert any(
        "due to customer function error: " in line and "Task timed out after 1.00 seconds" in line
        for line in log_messages(lab, execution_group(lab), started)
    )


def test_invoke_permission_missing(lab: Lab) -> None:
    """Row: API Gateway may not invoke the function."""
    started = now_ms()
    with invoke_permission_removed(lab):
        assert handshake_status(lab, query(unique_user(), "ws-1")) == 500
        # A grant whose SourceArn names another API is no grant for this one.
        client = lab.target().client("lambda")
        name, resources = info(lab).functions["$connect"], lab.resources
        assert resources is not None
        other_api = f"arn:aws:execute-api:{resources.region}:{resources.account_id}:otherapi99/*"
        client.add_permission(
            FunctionName=name,
            StatementId="other-api",
            Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
            SourceArn=other_api,
        )
        try:
            assert handshake_status(lab, query(unique_user(), "ws-1")) == 500
        finally:
            client.remove_permission(FunctionName=name, StatementId="other-api")
    refused = [
        line
        for line in log_messages(lab, execution_group(lab), started)
        if line.endswith(
            "Execution failed due to configuration error: Invalid permissions on Lambda function"
        )
    ]
    assert len(refused) == 2, refused
    assert handshake_status(lab, query(unique_user(), "ws-1")) == 101  # the grant back: invoked again


def test_aws_iam_on_connect(lab: Lab) -> None:
    """Row: AWS_IAM on $connect."""
    resources = lab.resources
    assert resources is not None and lab.gateway is not None
    apigw = lab.target().client("apigatewayv2")
    connect = routes(lab)["$connect"]
    route_arn = (
        f"arn:aws:execute-api:{resources.region}:{resources.account_id}:{resources.api_id}/prod/$connect"
    )
    # A browser's credentials: the lab's STS issues them for a role (here the function's, which has no
    # execute-api:Invoke of its own).
    issued = lab.gateway.issuer.issue(resources.role_arn, "alice")
    started = now_ms()
    apigw.update_route(ApiId=resources.api_id, RouteId=connect["RouteId"], AuthorizationType="AWS_IAM")
    try:
        assert handshake_status(lab, query(unique_user(), "ws-1")) == 101, "not deployed yet: still NONE"
        deploy(lab)
        user = unique_user()
        url = f"{info(lab).websocket_url}?{query(user, 'ws-1')}"
        unsigned = _handshake(url)
        assert unsigned == (403, {"message": "Missing Authentication Token"}), unsigned
        status, body = _handshake(_presigned(url, resources.region, issued))
        assert status == 403 and body["Message"] == (
            f"User: arn:aws:sts::{resources.account_id}:assumed-role/{resources.role_name}/alice is not "
            f"authorized to perform: execute-api:Invoke on resource: {route_arn}"
        ), body
        assert items_of(lab, user) == []  # $connect never ran
        allow = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": route_arn}],
        }
        iam = lab.target().client("iam")
        iam.put_role_policy(
            RoleName=resources.role_name, PolicyName="connect", PolicyDocument=json.dumps(allow)
        )
        try:
            ws = websocket.create_connection(_presigned(url, resources.region, issued), timeout=15)
        finally:
            iam.delete_role_policy(RoleName=resources.role_name, PolicyName="connect")
        try:  # $connect stores before the 101; $disconnect, once closed, removes it again
            assert items_of(lab, user), "the signed, allowed handshake reached $connect"
        finally:
            ws.close()
        # The kit's probe reads the route and signs its handshake with the target's own credentials.
        probe = run_probe(lab.target(), ProbePlan(clients=1, actions=()))
        connected = probe[probe["step"] == "connect"].iloc[0]
        assert bool(connected["ok"]) and "SigV4-signed" in str(connected["detail"]), connected["detail"]
    finally:
        apigw.update_route(ApiId=resources.api_id, RouteId=connect["RouteId"], AuthorizationType="NONE")
        deploy(lab)
    unsigned_line = (
        "IAM authorization of the $connect handshake failed: MissingAuthenticationTokenException: Missing "
        "Authentication Token"
    )
    wait_until(
        lambda: (
            any(line.endswith(unsigned_line) for line in log_messages(lab, execution_group(lab), started))
            or None
        )
    )
    statuses = [line["status"] for line in access_log(lab, started) if line["eventType"] == "CONNECT"]
    assert statuses.count("403") == 2, statuses


def _handshake(url: str) -> tuple[int, dict[str, Any]]:
    """The handshake's status and, for a refusal, its JSON body."""
    try:
        websocket.create_connection(url, timeout=15).close()
    except websocket.WebSocketBadStatusException as exc:
        return int(exc.status_code), json.loads(exc.resp_body or b"{}")
    return 101, {}


def _presigned(url: str, region: str, credentials: Any) -> str:
    """``url`` presigned for execute-api with botocore, as a browser's SigV4 library presigns a wss:// URL."""
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url=url.replace("ws://", "http://", 1))
    keys = Credentials(credentials.access_key_id, credentials.secret_access_key, credentials.session_token)
    SigV4QueryAuth(keys, "execute-api", region, expires=60).add_auth(request)
    return str(request.url).replace("http://", "ws://", 1)


# -- routing and error frames -----------------------------------------------------------------------------------------


def test_forbidden_frame(lab: Lab) -> None:
    """Row: message no route takes, no $default."""
    assert "$default" not in routes(lab)
    ws = open_socket(lab, query(unique_user(), "ws-1"))
    try:
        ws.send(json.dumps({"action": "nothing-matches"}))
        first = recv_text(ws)
        ws.send("not JSON")
        second = recv_text(ws)
    finally:
        ws.close()
    assert first is not None and re.fullmatch(FORBIDDEN_FRAME, first), first
    assert second is not None and re.fullmatch(FORBIDDEN_FRAME, second), "the socket stayed open"


def test_default_route_fallback(lab: Lab) -> None:
    """Row: $default fallback."""
    with echo_handler(lab) as started, route_added(lab, "$default"):
        ws = open_socket(lab, query(unique_user(), "ws-1"))
        try:
            ws.send("not JSON")
            ws.send(json.dumps({"action": "nothing-matches"}))
            messages = wait_for_count(lambda: _events(lab, started, "MESSAGE"), 2)
        finally:
            ws.close()
    assert [m["requestContext"]["routeKey"] for m in messages] == ["$default", "$default"]
    assert [m["body"] for m in messages] == ["not JSON", json.dumps({"action": "nothing-matches"})]


def test_internal_server_error_frame(lab: Lab) -> None:
    """Row: integration failure on a message route."""
    user = unique_user()
    ws = connect_user(lab, user)
    try:
        connection_id = connection_id_of(lab, user)
        with function_changed(lab, Handler="app.no_such_function"):
            ws.send(json.dumps({"action": "message", "message": "hi"}))
            frame = recv_text(ws, timeout=10)
    finally:
        ws.close()
    assert frame is not None
    match = re.fullmatch(INTERNAL_ERROR_FRAME, frame)
    assert match and match.group("connectionId") == connection_id, frame
    wait_for_no_items(lab, user)


# -- limits and timers --------------------------------------------------------------------------------------------------


def test_frame_over_32_kb(lab: Lab) -> None:
    """Row: frame over 32 KB."""
    ws = open_socket(lab, query(unique_user(), "ws-1"))
    try:
        ws.send("x" * (32 * KB))
        at_limit = recv_text(ws)
        assert at_limit is not None and re.fullmatch(FORBIDDEN_FRAME, at_limit), "exactly 32 KB is routed"
        ws.send("x" * (32 * KB + 1))
        assert read_close(ws) == (1009, "Message too big")
    finally:
        close_quietly(ws)


def test_message_over_128_kb(lab: Lab) -> None:
    """Row: message over 128 KB (in frames of 32 KB or less)."""
    ws = open_socket(lab, query(unique_user(), "ws-1"))
    try:
        send_fragmented(ws, ["y" * (32 * KB)] * 4)
        at_limit = recv_text(ws)
        assert at_limit is not None and re.fullmatch(FORBIDDEN_FRAME, at_limit), "exactly 128 KB is routed"
        send_fragmented(ws, ["y" * (32 * KB)] * 4 + ["y"])
        assert read_close(ws)[0] == 1009
    finally:
        close_quietly(ws)


def test_binary_frame(lab: Lab) -> None:
    """Row: binary frame."""
    ws = open_socket(lab, query(unique_user(), "ws-1"))
    try:
        ws.send_binary(b"\x89PNG")
        assert read_close(ws)[0] == 1003
    finally:
        close_quietly(ws)


def test_idle_timeout(lab: Lab) -> None:
    """Row: idle timeout."""
    assert lab.gateway is not None and lab.gateway.settings.idle == IdlePolicy(600, 7200)
    with short_timers(lab, idle_s=1, max_s=60):
        started = time.monotonic()
        ws = open_socket(lab, query(unique_user(), "ws-1"))
        try:
            assert read_close(ws) == (1001, "Going away")
        finally:
            close_quietly(ws)
    assert 0.9 <= time.monotonic() - started < 5


def test_maximum_duration(lab: Lab) -> None:
    """Row: maximum connection duration."""
    assert lab.gateway is not None and lab.gateway.settings.idle.max_duration_s == 7200
    with short_timers(lab, idle_s=60, max_s=2):
        started = time.monotonic()
        ws = open_socket(lab, query(unique_user(), "ws-1"))
        try:
            ws.send(json.dumps({"action": "typing", "isTyping": True}))
            assert read_close(ws) == (1001, "Going away")
        finally:
            close_quietly(ws)
    assert 1.9 <= time.monotonic() - started < 6


# -- event shapes -------------------------------------------------------------------------------------------------------


def test_disconnect_event_fields(lab: Lab) -> None:
    """Row: $disconnect event fields."""
    with echo_handler(lab) as started:
        with_status = open_socket(lab, query(unique_user(), "ws-1"))
        without_status = open_socket(lab, query(unique_user(), "ws-1"))
        with_status.close(status=4000, reason=b"tab closed")
        send_close_without_status(without_status)
        disconnects = wait_for_count(lambda: _events(lab, started, "DISCONNECT"), 2)
    closes = {
        (d["requestContext"]["disconnectStatusCode"], d["requestContext"]["disconnectReason"])
        for d in disconnects
    }
    assert closes == {(4000, "tab closed"), (1005, "Client-side close frame status not set")}
    assert all(
        set(d["headers"]) == {"Host", "x-api-key", "X-Forwarded-For", "x-restapi"} for d in disconnects
    )


def test_message_id_only_on_message(lab: Lab) -> None:
    """Row: messageId only on MESSAGE."""
    with echo_handler(lab) as started:
        ws = open_socket(lab, query(unique_user(), "ws-1"))
        ws.send(json.dumps({"action": "message", "message": "hi"}))
        wait_for_count(lambda: _events(lab, started, "MESSAGE"), 1)
        ws.close()
        wait_for_count(lambda: _events(lab, started, "DISCONNECT"), 1)
        events = echoed_events(lab, started)
    kinds = {e["requestContext"]["eventType"]: "messageId" in e["requestContext"] for e in events}
    assert kinds == {"CONNECT": False, "MESSAGE": True, "DISCONNECT": False}


def test_query_string_keys_only_with_a_query_string(lab: Lab) -> None:
    """Row: queryStringParameters absent without a query string."""
    with echo_handler(lab) as started:
        close_quietly(open_socket(lab), open_socket(lab, "token=t%40example.com&workspaceId=ws-1"))
        connects = wait_for_count(lambda: _events(lab, started, "CONNECT"), 2)
    with_query = [c for c in connects if "queryStringParameters" in c]
    assert len(with_query) == 1
    assert with_query[0]["queryStringParameters"] == {"token": "t@example.com", "workspaceId": "ws-1"}
    assert "multiValueQueryStringParameters" in with_query[0]
    (bare,) = [c for c in connects if "queryStringParameters" not in c]
    assert "multiValueQueryStringParameters" not in bare


def test_identity_user_agent_only_when_sent(lab: Lab) -> None:
    """Row: identity.userAgent."""
    with echo_handler(lab) as started:
        close_quietly(open_socket(lab), open_socket(lab, header=["User-Agent: Mozilla/5.0 kit"]))
        connects = wait_for_count(lambda: _events(lab, started, "CONNECT"), 2)
    identities = sorted((c["requestContext"]["identity"] for c in connects), key=len)
    assert identities == [
        {"sourceIp": "127.0.0.1"},
        {"userAgent": "Mozilla/5.0 kit", "sourceIp": "127.0.0.1"},
    ]


def test_subprotocol_echoed_only_when_connect_returns_it(lab: Lab) -> None:
    """Row: Sec-WebSocket-Protocol."""
    # The fixed handler returns no headers: the 101 names no subprotocol, so a client that asked fails.
    with pytest.raises(websocket.WebSocketException, match="Invalid WebSocket Header"):
        open_socket(lab, query(unique_user(), "ws-1"), subprotocols=["chat"])
    with echo_handler(lab):
        ws = open_socket(lab, query(unique_user(), "ws-1"), subprotocols=["chat", "json"])
        try:
            assert ws.getsubprotocol() == "chat"
        finally:
            ws.close()


# -- @connections -------------------------------------------------------------------------------------------------------


def test_connections_get(lab: Lab) -> None:
    """Row: @connections GET."""
    user = unique_user()
    ws = open_socket(lab, query(user, "ws-1"), header=["User-Agent: kit-fidelity"])
    try:
        described = management_client(lab).get_connection(ConnectionId=connection_id_of(lab, user))
    finally:
        ws.close()
    assert described["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "kit-fidelity"}
    assert described["ConnectedAt"] <= described["LastActiveAt"]
    wait_for_no_items(lab, user)


def test_connections_gone_and_pending(lab: Lab) -> None:
    """Row: @connections 410 for gone and pending ids."""
    user = unique_user()
    ws = connect_user(lab, user)
    connection_id = connection_id_of(lab, user)
    ws.close()
    wait_for_no_items(lab, user)
    management = management_client(lab)
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId=connection_id, Data=b"late")
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId="AAAAAAAAAAAAAAA=", Data=b"never connected")
    started = now_ms()
    with function_changed(lab, Handler=POST_TO_SELF_HANDLER):
        close_quietly(open_socket(lab, query(unique_user(), "ws-1")))
    assert [line for line in lambda_lines(lab, started) if line.startswith("POST_TO_SELF ")] == [
        "POST_TO_SELF 410 GoneException"
    ]


def test_connections_payload_too_large(lab: Lab) -> None:
    """Row: @connections POST over 131072 bytes."""
    user = unique_user()
    ws = connect_user(lab, user)
    try:
        management = management_client(lab)
        connection_id = connection_id_of(lab, user)
        management.post_to_connection(ConnectionId=connection_id, Data=b"z" * 131_072)  # at the limit
        with pytest.raises(management.exceptions.PayloadTooLargeException):
            management.post_to_connection(ConnectionId=connection_id, Data=b"z" * 131_073)
        with pytest.raises(management.exceptions.PayloadTooLargeException):  # size before existence
            management.post_to_connection(ConnectionId="AAAAAAAAAAAAAAA=", Data=b"z" * 131_073)
    finally:
        ws.close()
    wait_for_no_items(lab, user)


def test_connections_delete(lab: Lab) -> None:
    """Row: @connections DELETE."""
    user = unique_user()
    started = now_ms()
    ws = connect_user(lab, user)
    try:
        connection_id = connection_id_of(lab, user)
        answer = management_client(lab).delete_connection(ConnectionId=connection_id)
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 204
        assert read_close(ws) == (1000, "Connection Closed Normally")
    finally:
        close_quietly(ws)
    assert _disconnect_line(lab, connection_id, started).endswith(
        "Close reason: [1000: Connection Closed Normally]"
    )


def test_connections_malformed_id(lab: Lab) -> None:
    """Row: @connections with a malformed id."""
    management = management_client(lab)
    with pytest.raises(management.exceptions.ClientError) as bad:
        management.post_to_connection(ConnectionId="cjy8i76bx002884le6n17d49b", Data=b"x")
    assert bad.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert bad.value.response["Error"]["Code"] == "BadRequestException"
    assert bad.value.response["Error"]["Message"] == "Invalid connectionId: cjy8i76bx002884le6n17d49b"


def test_connections_at_another_stage(lab: Lab) -> None:
    """Row: @connections at another stage or host."""
    user = unique_user()
    ws = connect_user(lab, user)
    try:
        connection_id = connection_id_of(lab, user)
        other_stage = info(lab).management_url.rsplit("/", 1)[0] + "/production"
        wrong = boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=other_stage,
            region_name=info(lab).region,
            aws_access_key_id=LOCAL_ACCESS_KEY_ID,
            aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
        )
        with pytest.raises(wrong.exceptions.ForbiddenException):
            wrong.post_to_connection(ConnectionId=connection_id, Data=b"to another stage")
        assert recv_text(ws, timeout=0.5) is None  # nothing reached the client
    finally:
        close_quietly(ws)


# -- the stack around the gateway ---------------------------------------------------------------------------------------


def test_iam_enforcement_including_the_index_arn(lab: Lab) -> None:
    """Row: IAM enforcement of the execution role, index ARN included."""
    alice, bob = unique_user("alice"), unique_user("bob")
    started = now_ms()
    with role_policy_changed(lab, drop_index_resources):
        sender, receiver = connect_user(lab, alice), connect_user(lab, bob)
        try:
            assert items_of(lab, alice) and items_of(lab, bob), "PutItem on the table is still allowed"
            sender.send(json.dumps({"action": "message", "message": "hi"}))
            frame = recv_text(sender, timeout=10)
            assert recv_text(receiver, timeout=0.5) is None
        finally:
            close_quietly(sender, receiver)
    assert frame is not None and re.fullmatch(INTERNAL_ERROR_FRAME, frame), frame
    assert any(
        '"operation": "Query"' in line and '"error_code": "AccessDeniedException"' in line
        for line in lambda_lines(lab, started)
    )
    wait_for_no_items(lab, alice)
    wait_for_no_items(lab, bob)

    def drop_manage_connections(document: dict[str, Any]) -> None:
        document["Statement"] = [
            statement
            for statement in document["Statement"]
            if statement.get("Action") != "execute-api:ManageConnections"
        ]

    started = now_ms()
    with role_policy_changed(lab, drop_manage_connections):
        sender, receiver = connect_user(lab, alice), connect_user(lab, bob)
        try:
            sender.send(json.dumps({"action": "message", "message": "hi"}))
            frame = recv_text(sender, timeout=10)
            assert recv_text(receiver, timeout=0.5) is None
        finally:
            close_quietly(sender, receiver)
    assert frame is not None and re.fullmatch(INTERNAL_ERROR_FRAME, frame), frame
    assert any('"failures": {"ForbiddenException": 1}' in line for line in lambda_lines(lab, started))
    wait_for_no_items(lab, alice)
    wait_for_no_items(lab, bob)

    # An explicit Deny in another policy of the role wins over the Allow.
    iam = lab.target().client("iam")
    role_name = info(lab).role.rsplit("/", 1)[-1]
    deny = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "dynamodb:PutItem", "Resource": "*"}],
    }
    iam.put_role_policy(RoleName=role_name, PolicyName="deny-put", PolicyDocument=json.dumps(deny))
    try:
        assert handshake_status(lab, query(alice, "ws-1")) == 500
    finally:
        iam.delete_role_policy(RoleName=role_name, PolicyName="deny-put")
    assert not items_of(lab, alice)


def test_region_separation(lab: Lab) -> None:
    """Row: region separation."""
    from kit.dynamo import schema

    user = unique_user()
    other = lab.target("us-east-1").client("dynamodb")
    schema.create_table(other, name=info(lab).table)
    try:
        with environment_changed(lab, TABLE_REGION="us-east-1"):
            ws = connect_user(lab, user)
            try:
                stored_elsewhere = [i for i in table_items(lab, "us-east-1") if i.get("userId") == user]
                stored_here = items_of(lab, user)
            finally:
                ws.close()
            wait_until(lambda: not [i for i in table_items(lab, "us-east-1") if i.get("userId") == user])
        assert len(stored_elsewhere) == 1, "the same-named table in us-east-1 got the item"
        assert stored_here == [], "us-east-2's table did not"
    finally:
        other.delete_table(TableName=info(lab).table)


def test_signing_for_another_region(lab: Lab) -> None:
    """Row: a handler that signs for another region than its endpoint's."""
    other = "us-east-1"
    assert info(lab).region != other
    wrong_region = f"Credential should be scoped to a valid region, not '{other}'. "
    never_connected = "AAAAAAAAAAAAAAA="

    # A handler whose @connections client has another region hard-wired (the endpoint is the API's).
    started = now_ms()
    with function_changed(lab, Handler=POST_TO_SELF_HANDLER), environment_changed(lab, SIGNING_REGION=other):
        close_quietly(open_socket(lab, query(unique_user(), "ws-1")))
    lines = lambda_lines(lab, started)
    assert [line for line in lines if line.startswith("POST_TO_SELF ")] == [
        "POST_TO_SELF 403 InvalidSignatureException"
    ]
    messages = [
        line.removeprefix("POST_TO_SELF_MESSAGE ") for line in lines if "POST_TO_SELF_MESSAGE " in line
    ]
    assert [json.loads(message) for message in messages] == [wrong_region]

    # The same from outside, and a wrong secret; signed right, the call gets past authentication (410).
    with pytest.raises(ClientError) as refused:
        management_client(lab, region=other).get_connection(ConnectionId=never_connected)
    assert _error(refused.value) == (403, "InvalidSignatureException", wrong_region)
    with pytest.raises(ClientError) as refused:
        management_client(lab, secret="not-the-secret").get_connection(ConnectionId=never_connected)
    status, code, message = _error(refused.value)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith(
        "The request signature we calculated does not match the signature you provided."
    )
    with pytest.raises(ClientError) as gone:
        management_client(lab).get_connection(ConnectionId=never_connected)
    assert _error(gone.value)[:2] == (410, "GoneException")

    # DynamoDB: the front door serves every region, so only a region AWS does not have is refused.
    started = now_ms()
    with environment_changed(lab, TABLE_REGION="eu-east-2"):
        assert handshake_status(lab, query(unique_user(), "ws-1")) == 500
    assert any(
        '"error_code": "InvalidSignatureException"' in line and '"region": "eu-east-2"' in line
        for line in lambda_lines(lab, started)
    )


def _error(exc: ClientError) -> tuple[int, str, str]:
    return (
        exc.response["ResponseMetadata"]["HTTPStatusCode"],
        exc.response["Error"]["Code"],
        exc.response["Error"]["Message"],
    )


class _RecordingBackend:
    """A loopback HTTP endpoint for an HTTP_PROXY integration; records what API Gateway sent it."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}  # case-insensitive
                backend.requests.append({"path": self.path, "headers": headers, "body": body})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/api/websocket"

    def __enter__(self) -> _RecordingBackend:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _connect_through_http(lab: Lab, backend: _RecordingBackend, **integration: Any) -> str:
    """Point $connect at ``backend`` over HTTP_PROXY, connect once, restore; the connection's id."""
    apigw = lab.target().client("apigatewayv2")
    api_id = info(lab).api_id
    connect_route = routes(lab)["$connect"]
    created = apigw.create_integration(
        ApiId=api_id,
        IntegrationType="HTTP_PROXY",
        IntegrationMethod="POST",
        IntegrationUri=backend.url,
        **integration,
    )
    apigw.update_route(
        ApiId=api_id, RouteId=connect_route["RouteId"], Target=f"integrations/{created['IntegrationId']}"
    )
    deploy(lab)
    started = now_ms()
    try:
        ws = open_socket(lab, query(unique_user(), "ws-1"))
        ws.close()
    finally:
        apigw.update_route(ApiId=api_id, RouteId=connect_route["RouteId"], Target=connect_route["Target"])
        apigw.delete_integration(ApiId=api_id, IntegrationId=created["IntegrationId"])
        deploy(lab)
    (connect,) = [line for line in access_log(lab, started) if line["eventType"] == "CONNECT"]
    return str(connect["connectionId"])


def test_http_integration_without_connection_id_mapping(lab: Lab) -> None:
    """Row: HTTP integration without a connectionId mapping."""
    with _RecordingBackend() as backend:
        unmapped_id = _connect_through_http(lab, backend)
        mapped_id = _connect_through_http(
            lab,
            backend,
            RequestParameters={"integration.request.header.ConnectionId": "context.connectionId"},
        )
    unmapped, mapped = backend.requests
    assert unmapped_id not in json.dumps({**unmapped, "body": unmapped["body"].decode()})
    assert unmapped["body"] == b"" and "sec-websocket-key" not in unmapped["headers"]
    assert mapped["headers"].get("connectionid") == mapped_id


def test_execution_and_access_logs(lab: Lab) -> None:
    """Row: execution and access logs."""
    user = unique_user()
    started = now_ms()
    ws = connect_user(lab, user)
    connection_id = connection_id_of(lab, user)
    ws.close()
    wait_for_no_items(lab, user)
    access = wait_for_count(lambda: access_log(lab, started, connection_id), 2)
    assert [line["eventType"] for line in access] == ["CONNECT", "DISCONNECT"]
    execution = log_messages(lab, execution_group(lab), started)
    for line in access:
        mine = [text for text in execution if line["requestId"] in text]
        assert mine and all(text.startswith(f"({line['requestId']}) ") for text in mine)
        assert all(len(text.encode()) <= 1024 for text in mine)


def test_every_row_of_the_table_has_a_test() -> None:
    """Not a row: docs/fidelity.md and these tests (here, test_runtime_node.py, test_lab_deployments.py and
    test_lab_throttling.py's classes, test_lab_authorizers.py) name the same rows."""
    document = (Path(__file__).resolve().parents[2] / "docs" / "fidelity.md").read_text()
    table_rows = {
        line.split("|")[1].strip()
        for line in document.splitlines()
        if line.startswith("| ") and not line.startswith(("| behaviour", "|---"))
    }
    # the Node.js runtime's, deployments', throttling's and authorizers' rows
    from . import test_lab_authorizers, test_lab_deployments, test_lab_throttling, test_runtime_node

    tests = [
        *globals().values(),
        *vars(test_runtime_node).values(),
        *vars(test_lab_deployments).values(),
        *(
            method
            for owner in vars(test_lab_throttling).values()
            if isinstance(owner, type)
            for method in vars(owner).values()
        ),
        *vars(test_lab_authorizers).values(),
    ]
    tested_rows = {
        match.group(1)
        for test in tests
        if callable(test) and getattr(test, "__name__", "").startswith("test_") and test.__doc__
        for match in [re.match(r"Row: (.+)\.$", test.__doc__.strip())]
        if match
    }
    assert table_rows == tested_rows, (table_rows - tested_rows, tested_rows - table_rows)
