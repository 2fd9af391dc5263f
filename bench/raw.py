"""The baselines (the same work done raw, straight against the lab's engines) and the bench's table reads.

* ``put_items``: boto3 ``put_item`` of the handler's item shape (same attributes, same condition) straight to
  DynamoDB Local from a pool of threads, the client side of the ``$connect``/s figure.
* ``post_sequentially``: ``post_to_connection`` to each connection in turn from one boto3 client, what the
  handler's broadcast loop does, without the Lambda around it. It runs in a process of its own (see
  ``RawPoster``) so its interpreter lock is not shared with the clients receiving the frames.
* ``count_items`` / ``stored_connections`` / ``delete_items``: reading and cleaning the connections table.

Every client comes from a lab ``kit.target.Target``; nothing here builds an endpoint or credentials itself.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from kit.target import MANAGEMENT_SERVICE, Target, client_config

# A scan of the connections table reads at most this many pages (1 MB each): far beyond any bench size.
MAX_PAGES = 1000
BATCH_WRITE_LIMIT = 25
MAX_UNPROCESSED_RETRIES = 20


def lab_target(info: Mapping[str, Any]) -> Target:
    """The lab target for a lab host's ready message: DynamoDB Local directly, and its @connections URL."""
    return Target.local(
        {"dynamodb": str(info["dynamodb_url"])},
        region=str(info["region"]),
        table=str(info["table"]),
        index=str(info["index"]),
        management_url=str(info["management_url"]),
        source="bench lab",
    )


def dynamodb_for_threads(target: Target, threads: int) -> Any:
    """A DynamoDB client whose connection pool fits ``threads`` callers (the default pool holds 10)."""
    config = client_config(target.kind).merge(Config(max_pool_connections=max(10, threads)))
    return target.session().client(
        "dynamodb", region_name=target.region, endpoint_url=target.endpoint_for("dynamodb"), config=config
    )


def connection_item(connection_id: str, workspace_id: str, user_id: str, at: datetime) -> dict[str, Any]:
    """The item the handler's ``$connect`` stores, in DynamoDB's attribute-value form (pure)."""
    timestamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
    return {
        "connectionId": {"S": connection_id},
        "workspaceId": {"S": workspace_id},
        "userId": {"S": user_id},
        "timestamp": {"S": timestamp},
        "status": {"S": "connected"},
    }


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "ClientError")
    return type(exc).__name__


@dataclass
class Timed:
    """A batch of calls: wall time, each call's latency, and failures by error code."""

    wall_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return len(self.latencies_s)


def put_items(dynamodb: Any, table: str, items: Sequence[dict[str, Any]], *, threads: int) -> Timed:
    """Put every item with the handler's condition, ``threads`` at a time; timed as a whole and per call."""
    timed = Timed()

    def put(item: dict[str, Any]) -> float | str:
        started = time.monotonic()
        try:
            dynamodb.put_item(
                TableName=table, Item=item, ConditionExpression="attribute_not_exists(connectionId)"
            )
        except (ClientError, BotoCoreError) as exc:
            return _error_code(exc)
        return time.monotonic() - started

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bench-put") as pool:
        outcomes = list(pool.map(put, items))
    timed.wall_s = time.monotonic() - started
    for outcome in outcomes:
        if isinstance(outcome, str):
            timed.errors[outcome] = timed.errors.get(outcome, 0) + 1
        else:
            timed.latencies_s.append(outcome)
    return timed


def delete_items(dynamodb: Any, table: str, connection_ids: Sequence[str]) -> None:
    """Delete the items by key, 25 per ``BatchWriteItem``, retrying unprocessed ones (bounded)."""
    for start in range(0, len(connection_ids), BATCH_WRITE_LIMIT):
        requests = [
            {"DeleteRequest": {"Key": {"connectionId": {"S": connection_id}}}}
            for connection_id in connection_ids[start : start + BATCH_WRITE_LIMIT]
        ]
        pending: dict[str, Any] = {table: requests}
        for _attempt in range(MAX_UNPROCESSED_RETRIES):
            answer = dynamodb.batch_write_item(RequestItems=pending)
            pending = answer.get("UnprocessedItems") or {}
            if not pending:
                break
            time.sleep(0.05)


def _scan_pages(dynamodb: Any, **request: Any) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    for _page in range(MAX_PAGES):
        answer = dynamodb.scan(**request)
        pages.append(answer)
        last = answer.get("LastEvaluatedKey")
        if not last:
            break
        request["ExclusiveStartKey"] = last
    return pages


def count_items(dynamodb: Any, table: str, workspace_id: str | None = None) -> int:
    """Items in the table (those of ``workspace_id`` when given), by a consistent scan."""
    request: dict[str, Any] = {"TableName": table, "Select": "COUNT", "ConsistentRead": True}
    if workspace_id is not None:
        request["FilterExpression"] = "workspaceId = :workspace_id"
        request["ExpressionAttributeValues"] = {":workspace_id": {"S": workspace_id}}
    return sum(int(page.get("Count", 0)) for page in _scan_pages(dynamodb, **request))


def stored_connections(dynamodb: Any, table: str, workspace_id: str) -> dict[str, str]:
    """``userId -> connectionId`` of the workspace's stored connections."""
    pages = _scan_pages(
        dynamodb,
        TableName=table,
        ConsistentRead=True,
        FilterExpression="workspaceId = :workspace_id",
        ExpressionAttributeValues={":workspace_id": {"S": workspace_id}},
        ProjectionExpression="connectionId, userId",
    )
    stored: dict[str, str] = {}
    for page in pages:
        for item in page.get("Items", []):
            user_id = item.get("userId", {}).get("S")
            connection_id = item.get("connectionId", {}).get("S")
            if user_id and connection_id:
                stored[user_id] = connection_id
    return stored


# -- raw @connections posts, in a process of their own ---------------------------------------------------

_management_clients: dict[str, Any] = {}


def _management_client(management_url: str, region: str) -> Any:
    client = _management_clients.get(management_url)
    if client is None:
        target = Target.local(
            {MANAGEMENT_SERVICE: management_url},
            region=region,
            management_url=management_url,
            source="bench raw poster",
        )
        client = target.client("apigatewaymanagementapi")
        _management_clients[management_url] = client
    return client


@dataclass(frozen=True)
class PostRun:
    """One sequential run: when the first post started and the last ended (monotonic), failures by code."""

    started: float
    ended: float
    errors: dict[str, int]


def post_sequentially(
    management_url: str, region: str, connection_ids: Sequence[str], data: bytes, warm_up_id: str | None
) -> PostRun:
    """Post ``data`` to each connection in turn with one client, as the handler's broadcast loop does.

    ``warm_up_id`` gets one untimed post first, so the client's set-up (endpoint resolution, the first TCP
    connection) is not counted: the handler's client is warm too after its first broadcast.
    """
    client = _management_client(management_url, region)
    if warm_up_id is not None:
        with contextlib.suppress(ClientError, BotoCoreError):
            client.post_to_connection(ConnectionId=warm_up_id, Data=b'{"message":"bench-warm-up"}')
    errors: dict[str, int] = {}
    started = time.monotonic()
    for connection_id in connection_ids:
        try:
            client.post_to_connection(ConnectionId=connection_id, Data=data)
        except (ClientError, BotoCoreError) as exc:
            code = _error_code(exc)
            errors[code] = errors.get(code, 0) + 1
    return PostRun(started=started, ended=time.monotonic(), errors=errors)


class RawPoster:
    """A single spawned process that runs ``post_sequentially``; use as a context manager."""

    def __init__(self) -> None:
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn")
        )

    def __enter__(self) -> RawPoster:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(
        self,
        management_url: str,
        region: str,
        connection_ids: Sequence[str],
        data: bytes,
        warm_up_id: str | None,
    ) -> concurrent.futures.Future[PostRun]:
        return self._pool.submit(
            post_sequentially, management_url, region, list(connection_ids), data, warm_up_id
        )
