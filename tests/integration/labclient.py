"""What the lab's end-to-end tests do from outside: connect WebSocket clients, read the table and the logs,
call @connections, and change configuration through AWS APIs (restoring it afterwards).

Everything here goes through the lab's public surface (the WebSocket URL, the management URL, boto3 clients
from ``lab.target()``), as a user's notebook would; nothing reads the gateway's memory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import socket
import struct
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import boto3
import websocket
from botocore.config import Config
from websocket import ABNF

from kit.config import lambda_integration_uri
from kit.lab import engines
from kit.lab.lab import Lab
from kit.lab.provision import allow_invoke_from_api, handler_zip
from kit.local import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from kit.target import Target

T = TypeVar("T")

CONNECTION_ID = r"[A-Za-z0-9_-]{15}="
FORBIDDEN_FRAME = (
    r'\{"message": "Forbidden", "connectionId":"(?P<connectionId>[A-Za-z0-9_-]{15}=)", '
    r'"requestId":"(?P<requestId>[A-Za-z0-9_-]{15}=)"\}'
)
INTERNAL_ERROR_FRAME = (
    r'\{"message": "Internal server error", "connectionId":"(?P<connectionId>[A-Za-z0-9_-]{15}=)", '
    r'"requestId":"(?P<requestId>[A-Za-z0-9_-]{15}=)"\}'
)
ECHO_HANDLER = "tests.functions.echo_event.handler"
POST_TO_SELF_HANDLER = "tests.functions.echo_event.post_to_self"
HANG_HANDLER = "tests.functions.echo_event.hang"
EVENT_MARKER = "EVENT "

# What ``Lab(dynamodb=...)`` takes; ``empty_dynamodb()`` (conftest.py) gives the session's engine, emptied.
DynamoDBChoice = Literal["auto", "dynamodb-local", "moto"] | engines.Engine
EmptyDynamoDB = Callable[[], DynamoDBChoice]


def info(lab: Lab) -> Any:
    assert lab.info is not None, "the lab is not running"
    return lab.info


_targets: weakref.WeakKeyDictionary[Lab, dict[tuple[str, str | None], Target]] = weakref.WeakKeyDictionary()


def lab_target(lab: Lab, region: str | None = None) -> Target:
    """``lab.target(region)``, made once per running lab and region: a target builds its boto3 clients once,
    and making one costs about 0.2 s of CPU, which the helpers below would otherwise pay at every poll."""
    key = (info(lab).websocket_url, region)
    made = _targets.setdefault(lab, {})
    if key not in made:
        made[key] = lab.target(region)
    return made[key]


def unique_user(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def query(token: str | None, workspace_id: str | None) -> str:
    parts = []
    if token is not None:
        parts.append(f"token={token}")
    if workspace_id is not None:
        parts.append(f"workspaceId={workspace_id}")
    return "&".join(parts)


def open_socket(
    lab: Lab, query_string: str | None = None, *, timeout: float = 15, **options: Any
) -> websocket.WebSocket:
    """A connected websocket-client socket; raises WebSocketBadStatusException when the handshake fails."""
    url = info(lab).websocket_url + (f"?{query_string}" if query_string else "")
    return websocket.create_connection(url, timeout=timeout, **options)


def connect_user(lab: Lab, token: str, workspace_id: str = "ws-1") -> websocket.WebSocket:
    return open_socket(lab, query(token, workspace_id))


def handshake_status(lab: Lab, query_string: str | None) -> int:
    """101 when the upgrade was accepted (the socket is closed again at once), else the HTTP status."""
    try:
        ws = open_socket(lab, query_string)
    except websocket.WebSocketBadStatusException as exc:
        return int(exc.status_code)
    ws.close()
    return 101


# -- raw upgrade requests: what a browser sends, or something broken ---------------------------------------------

# Upgrade requests the gateway must refuse before $connect, and the status it answers each with.
REFUSED_UPGRADES: dict[str, tuple[dict[str, str | None], int]] = {
    "plain GET": ({"Upgrade": None, "Connection": None}, 426),
    "no key": ({"Sec-WebSocket-Key": None}, 400),
    "bad key": ({"Sec-WebSocket-Key": "not-sixteen-bytes"}, 400),
    "version 8": ({"Sec-WebSocket-Version": "8"}, 400),
}


def websocket_address(lab: Lab) -> tuple[str, int]:
    url = urlsplit(info(lab).websocket_url)
    assert url.hostname is not None and url.port is not None
    return url.hostname, url.port


def management_address(lab: Lab) -> tuple[str, int]:
    url = urlsplit(info(lab).management_url)
    assert url.hostname is not None and url.port is not None
    return url.hostname, url.port


def upgrade_request(
    lab: Lab, query_string: str | None = None, changes: Mapping[str, str | None] | None = None
) -> bytes:
    """The bytes of a browser's upgrade request to the stage, with ``changes`` (None: header left out)."""
    host, port = websocket_address(lab)
    headers: dict[str, str | None] = {
        "Host": f"{host}:{port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
        "User-Agent": "kit-tests/raw",
    }
    headers.update(changes or {})
    target = f"/{info(lab).stage}" + (f"?{query_string}" if query_string else "")
    lines = [
        f"GET {target} HTTP/1.1",
        *(f"{name}: {value}" for name, value in headers.items() if value is not None),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def upgrade_answer(lab: Lab, request: bytes) -> tuple[int, list[tuple[str, str]]]:
    """Send a raw upgrade request; the answer's status and headers (a 101 included: the socket is then
    dropped)."""
    reader, writer = await asyncio.open_connection(*websocket_address(lab))
    try:
        writer.write(request)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 60)
        headers = []
        while (line := await asyncio.wait_for(reader.readline(), 60)) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
    finally:
        writer.close()
    return int(status_line.split()[1]), headers


async def upgrade_status(lab: Lab, request: bytes) -> int:
    """Send a raw upgrade request; the status of the answer."""
    status, _ = await upgrade_answer(lab, request)
    return status


async def drop_after_sending(lab: Lab, request: bytes, *, reset: bool = False) -> None:
    """Send an upgrade request and close the TCP connection at once, long before $connect can answer.

    ``reset``: with a RST (SO_LINGER 0) rather than a FIN; the server may then lose the request unread.
    """
    _, writer = await asyncio.open_connection(*websocket_address(lab))
    writer.write(request)
    await writer.drain()
    if reset:
        writer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


def held_until_closed(address: tuple[str, int], sends: list[bytes], every: float, limit: float) -> float:
    """Seconds from connecting until the server closed the socket, sending ``sends`` meanwhile: the first at
    once, each next after ``every`` s without an end of stream.

    The wait ends when the server closes (end of stream or reset); ``limit`` only bounds a failure.
    """
    started = time.monotonic()
    with socket.create_connection(address, timeout=limit) as sock:
        pending = list(sends)
        while True:
            if pending:
                try:
                    sock.sendall(pending.pop(0))
                except (BrokenPipeError, ConnectionResetError):
                    break
            sock.settimeout(every if pending else max(0.01, limit - (time.monotonic() - started)))
            try:
                while sock.recv(65536):
                    pass  # an answer: keep reading until the server closes
                break
            except TimeoutError:
                if not pending:
                    raise AssertionError(f"the server still held the socket after {limit} s") from None
            except ConnectionResetError:
                break
    return time.monotonic() - started


def read_close(ws: websocket.WebSocket, timeout: float = 10) -> tuple[int, str]:
    """Read frames until the server's close frame; its (code, reason). Data frames are skipped.

    websocket-client answers the close frame itself but then treats the socket as closed and never
    closes the TCP connection (its ``close()`` returns at once), so the server would wait for its close
    timeout before ``$disconnect`` runs. The handshake is complete here, so the socket is shut down.
    """
    ws.settimeout(timeout)
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == ABNF.OPCODE_CLOSE:
            ws.shutdown()  # type: ignore[no-untyped-call]
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
            return code, data[2:].decode()


def recv_text(ws: websocket.WebSocket, timeout: float = 5) -> str | None:
    """The next text frame, or None when nothing arrives within ``timeout``."""
    ws.settimeout(timeout)
    try:
        frame = ws.recv()
    except websocket.WebSocketTimeoutException:
        return None
    return frame if isinstance(frame, str) else frame.decode()


def send_fragmented(ws: websocket.WebSocket, fragments: list[str]) -> None:
    """One text message in several frames (first TEXT, then CONT, the last with FIN)."""
    for index, fragment in enumerate(fragments):
        opcode = ABNF.OPCODE_TEXT if index == 0 else ABNF.OPCODE_CONT
        fin = 1 if index == len(fragments) - 1 else 0
        ws.send_frame(ABNF.create_frame(fragment, opcode, fin=fin))


def send_close_without_status(ws: websocket.WebSocket) -> None:
    """A close frame with no payload: API Gateway reports 1005 for it."""
    ws.send_frame(ABNF.create_frame(b"", ABNF.OPCODE_CLOSE))
    with contextlib.suppress(Exception):
        read_close(ws, timeout=5)
    ws.shutdown()  # type: ignore[no-untyped-call]


def wait_until(predicate: Callable[[], T | None], timeout: float = 15, interval: float = 0.05) -> T:
    """Poll until ``predicate()`` is truthy and return it; fail the test with the last value otherwise."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")
        time.sleep(interval)
        value = predicate()
    return value


def wait_for_count(fetch: Callable[[], list[T]], count: int, timeout: float = 15) -> list[T]:
    """Poll ``fetch()`` until it returns at least ``count`` things, and return them."""
    found: list[T] = []

    def enough() -> bool:
        found[:] = fetch()
        return len(found) >= count

    wait_until(enough, timeout)
    return found


def now_ms() -> int:
    return int(time.time() * 1000)


# -- the table -----------------------------------------------------------------------------------------------


def table_items(lab: Lab, region: str | None = None, table: str | None = None) -> list[dict[str, Any]]:
    """Every item of the connections table (all pages), plain strings instead of attribute values."""
    client = lab_target(lab, region).client("dynamodb")
    paginator = client.get_paginator("scan")
    items = []
    for page in paginator.paginate(TableName=table or info(lab).table, ConsistentRead=True):
        for item in page["Items"]:
            items.append({name: next(iter(value.values())) for name, value in item.items()})
    return items


def items_of(lab: Lab, user: str) -> list[dict[str, Any]]:
    return [item for item in table_items(lab) if item.get("userId") == user]


def connection_id_of(lab: Lab, user: str) -> str:
    """The connection id the handler stored for ``user`` (each test connects with a unique token)."""
    items = items_of(lab, user)
    assert len(items) == 1, f"expected one stored connection for {user}, found {items}"
    return str(items[0]["connectionId"])


def get_item(lab: Lab, connection_id: str) -> dict[str, Any] | None:
    client = lab_target(lab).client("dynamodb")
    answer = client.get_item(
        TableName=info(lab).table, Key={"connectionId": {"S": connection_id}}, ConsistentRead=True
    )
    item = answer.get("Item")
    return None if item is None else {k: next(iter(v.values())) for k, v in item.items()}


def wait_for_no_items(lab: Lab, user: str, timeout: float = 15) -> None:
    wait_until(lambda: not items_of(lab, user), timeout)


# -- @connections ----------------------------------------------------------------------------------------------


def management_client(lab: Lab, region: str | None = None, secret: str | None = None) -> Any:
    """A boto3 ``apigatewaymanagementapi`` client for the lab's stage, signed with the lab admin key (for the
    lab's region and with the key's secret unless told otherwise)."""
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=info(lab).management_url,
        region_name=region or info(lab).region,
        aws_access_key_id=LOCAL_ACCESS_KEY_ID,
        aws_secret_access_key=secret or LOCAL_SECRET_ACCESS_KEY,
        config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=2, read_timeout=10),
    )


# -- logs --------------------------------------------------------------------------------------------------------


def log_messages(lab: Lab, group: str, start_ms: int = 0) -> list[str]:
    """Every message in ``group`` since ``start_ms`` (after the lab flushed what it had), in time order."""
    assert lab.flush_logs(15), "the lab's log writer did not flush"
    client = lab_target(lab).client("logs")
    events = []
    for page in client.get_paginator("filter_log_events").paginate(logGroupName=group, startTime=start_ms):
        events.extend(page["events"])
    events.sort(key=lambda event: (event["timestamp"], event.get("ingestionTime", 0)))
    return [str(event["message"]) for event in events]


def lambda_group(lab: Lab) -> str:
    return f"/aws/lambda/{info(lab).functions['$connect']}"


def execution_group(lab: Lab) -> str:
    return f"API-Gateway-Execution-Logs_{info(lab).api_id}/{info(lab).stage}"


ACCESS_GROUP = "/aws/apigateway/chatgenius-websocket-access"


def access_log(lab: Lab, start_ms: int = 0, connection_id: str | None = None) -> list[dict[str, str]]:
    lines = [json.loads(line) for line in log_messages(lab, ACCESS_GROUP, start_ms)]
    return [line for line in lines if connection_id in (None, line["connectionId"])]


def lambda_lines(lab: Lab, start_ms: int = 0) -> list[str]:
    """The function's log lines, without the newline each one ends with (as Lambda writes them)."""
    return [line.rstrip("\n") for line in log_messages(lab, lambda_group(lab), start_ms)]


def starts(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("START RequestId:")]


def echoed_events(lab: Lab, start_ms: int = 0) -> list[dict[str, Any]]:
    """The events the echo handler printed since ``start_ms``."""
    events = []
    for line in lambda_lines(lab, start_ms):
        if line.startswith(EVENT_MARKER):
            events.append(json.loads(line[len(EVENT_MARKER) :]))
    return events


# -- configuration changes through AWS APIs, restored afterwards ----------------------------------------------


@contextlib.contextmanager
def function_changed(lab: Lab, **changes: Any) -> Iterator[None]:
    """``update_function_configuration(**changes)`` for the block; the previous values are put back."""
    client = lab_target(lab).client("lambda")
    name = info(lab).functions["$connect"]
    current = client.get_function_configuration(FunctionName=name)
    previous: dict[str, Any] = {}
    for key in changes:
        if key == "Environment":
            previous[key] = {"Variables": dict(current.get("Environment", {}).get("Variables", {}))}
        else:
            previous[key] = current[key]
    client.update_function_configuration(FunctionName=name, **changes)
    try:
        yield
    finally:
        client.update_function_configuration(FunctionName=name, **previous)


@contextlib.contextmanager
def environment_changed(lab: Lab, **variables: str) -> Iterator[None]:
    client = lab_target(lab).client("lambda")
    current = client.get_function_configuration(FunctionName=info(lab).functions["$connect"])
    merged = dict(current.get("Environment", {}).get("Variables", {})) | variables
    with function_changed(lab, Environment={"Variables": merged}):
        yield


@contextlib.contextmanager
def role_policy_changed(lab: Lab, edit: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """Rewrite the role's inline policy with ``edit`` (PutRolePolicy) for the block, then put it back."""
    iam = lab_target(lab).client("iam")
    role_name = info(lab).role.rsplit("/", 1)[-1]
    (policy_name,) = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    original = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    document = json.loads(json.dumps(original))
    edit(document)
    iam.put_role_policy(RoleName=role_name, PolicyName=policy_name, PolicyDocument=json.dumps(document))
    try:
        yield
    finally:
        iam.put_role_policy(RoleName=role_name, PolicyName=policy_name, PolicyDocument=json.dumps(original))


def drop_action(action: str) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        for statement in document["Statement"]:
            actions = statement.get("Action")
            if isinstance(actions, list) and action in actions:
                actions.remove(action)

    return edit


def drop_index_resources(document: dict[str, Any]) -> None:
    for statement in document["Statement"]:
        resources = statement.get("Resource")
        if isinstance(resources, list):
            statement["Resource"] = [r for r in resources if "/index/" not in r]


def routes(lab: Lab) -> dict[str, dict[str, Any]]:
    client = lab_target(lab).client("apigatewayv2")
    return {route["RouteKey"]: route for route in client.get_routes(ApiId=info(lab).api_id)["Items"]}


def deploy(lab: Lab) -> str:
    """Deploy the API's routes and integrations to the lab's stage, as a user does after changing them."""
    client = lab_target(lab).client("apigatewayv2")
    made = client.create_deployment(ApiId=info(lab).api_id, StageName=info(lab).stage)
    return str(made["DeploymentId"])


@contextlib.contextmanager
def route_removed(lab: Lab, route_key: str) -> Iterator[None]:
    """``delete_route`` (deployed) for the block; the route is created again with its target afterwards."""
    client = lab_target(lab).client("apigatewayv2")
    route = routes(lab)[route_key]
    client.delete_route(ApiId=info(lab).api_id, RouteId=route["RouteId"])
    deploy(lab)
    try:
        yield
    finally:
        client.create_route(ApiId=info(lab).api_id, RouteKey=route_key, Target=route["Target"])
        deploy(lab)


@contextlib.contextmanager
def route_added(lab: Lab, route_key: str, **options: Any) -> Iterator[None]:
    """``create_route`` (deployed) on the Lambda integration for the block; deleted afterwards."""
    client = lab_target(lab).client("apigatewayv2")
    target = routes(lab)["$disconnect"]["Target"]
    route = client.create_route(ApiId=info(lab).api_id, RouteKey=route_key, Target=target, **options)
    deploy(lab)
    try:
        yield
    finally:
        client.delete_route(ApiId=info(lab).api_id, RouteId=route["RouteId"])
        deploy(lab)


@contextlib.contextmanager
def invoke_permission_removed(lab: Lab) -> Iterator[None]:
    """Remove API Gateway's ``lambda:InvokeFunction`` permission for the block; add it back afterwards."""
    client = lab_target(lab).client("lambda")
    name = info(lab).functions["$connect"]
    policy = json.loads(client.get_policy(FunctionName=name)["Policy"])
    (statement,) = policy["Statement"]
    client.remove_permission(FunctionName=name, StatementId=statement["Sid"])
    try:
        yield
    finally:
        client.add_permission(
            FunctionName=name,
            StatementId=statement["Sid"],
            Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
            SourceArn=statement["Condition"]["ArnLike"]["AWS:SourceArn"],
        )


def close_quietly(*sockets: websocket.WebSocket | None) -> None:
    for ws in sockets:
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close(timeout=2)
            ws.shutdown()  # type: ignore[no-untyped-call]  # close() is a no-op once a close frame was received; see read_close


def hold_engine_restart(monkeypatch: Any, timeout: float = 180) -> threading.Event:
    """Hold the lab's own restart of a dead DynamoDB Local until the returned event is set, as if the engine
    took that long to come back, so what a test sees during the outage is certain."""
    from kit.lab import engines

    release = threading.Event()
    real_restart = engines.restart_dynamodb_local

    def held_restart(dead: engines.Engine, start_timeout: float = 60.0) -> engines.Engine:
        assert release.wait(timeout), "the test never ended the outage"
        return real_restart(dead, start_timeout)

    monkeypatch.setattr(engines, "restart_dynamodb_local", held_restart)
    return release


AUTHORIZER_CASES = "tests.functions.authorizer_cases"


@contextlib.contextmanager
def authorizer_attached(
    lab: Lab,
    handler: str,
    *,
    identity_source: tuple[str, ...] = ("route.request.querystring.token",),
    timeout_s: int = 3,
    deployed: bool = True,
    permitted: bool = True,
    credentials_arn: str | None = None,
) -> Iterator[str]:
    """A Lambda REQUEST authorizer on $connect for the block, made and removed with boto3 as a user would:
    its function (``handler``), API Gateway's permission to invoke it (or a role, ``credentials_arn``), the
    authorizer, the $connect route's
    ``AuthorizationType=CUSTOM`` and a deployment (unless ``deployed`` is False). Yields the authorizer id."""
    target = lab_target(lab)
    lambda_client, apigw = target.client("lambda"), target.client("apigatewayv2")
    resources = info(lab)
    name = f"authorizer-{secrets.token_hex(4)}"
    role = lambda_client.get_function_configuration(FunctionName=resources.functions["$connect"])["Role"]
    created = lambda_client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler=handler if "." in handler else f"{AUTHORIZER_CASES}.{handler}",
        Code={"ZipFile": handler_zip()},
        Timeout=timeout_s,
    )
    target.client("logs").create_log_group(logGroupName=f"/aws/lambda/{name}")
    if permitted:
        allow_invoke_from_api(
            lambda_client, name, region=resources.region, api_id=resources.api_id, source="authorizers/*"
        )
    authorizer = apigw.create_authorizer(
        ApiId=resources.api_id,
        AuthorizerType="REQUEST",
        AuthorizerUri=lambda_integration_uri(resources.region, created["FunctionArn"]),
        IdentitySource=list(identity_source),
        Name=name,
        **({"AuthorizerCredentialsArn": credentials_arn} if credentials_arn else {}),
    )
    connect = routes(lab)["$connect"]
    apigw.update_route(
        ApiId=resources.api_id,
        RouteId=connect["RouteId"],
        AuthorizationType="CUSTOM",
        AuthorizerId=authorizer["AuthorizerId"],
    )
    if deployed:
        deploy(lab)
    try:
        yield str(authorizer["AuthorizerId"])
    finally:
        apigw.update_route(ApiId=resources.api_id, RouteId=connect["RouteId"], AuthorizationType="NONE")
        deploy(lab)
        apigw.delete_authorizer(ApiId=resources.api_id, AuthorizerId=authorizer["AuthorizerId"])
        lambda_client.delete_function(FunctionName=name)


def authorizer_events(lab: Lab, authorizer_function: str, start_ms: int = 0) -> list[dict[str, Any]]:
    """The events an authorizer of tests/functions/authorizer_cases.py printed since ``start_ms``."""
    marker = "AUTHORIZER_EVENT "
    lines = log_messages(lab, f"/aws/lambda/{authorizer_function}", start_ms)
    return [json.loads(line.strip()[len(marker) :]) for line in lines if line.startswith(marker)]
