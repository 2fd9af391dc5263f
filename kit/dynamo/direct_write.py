"""Storage tested in isolation: the kit writes, reads back, queries and deletes one item of its own.

The first step of the seed write-up ("Test DynamoDB storage in isolation"): a ``PutItem`` of an item shaped
like the one the ``$connect`` handler writes, made with the kit's own credentials, then a consistent
``GetItem`` of it, a ``Query`` of the ``workspaceIndex`` GSI for its workspace (retried for a few seconds,
because a GSI is eventually consistent), and a ``DeleteItem``. When all four work, the table and its index
take writes and the fault lies on the way to them (the route, the handler, the execution role); when one
fails, its AWS error code says what the table refuses. The execution role plays no part here, so an
``AccessDenied`` points at the table (a resource-based policy, its KMS key) or at the kit's own identity.

    run(target)              the four calls, one :class:`StepAnswer` each (I/O; writable targets only)
    steps_frame(answers)     those answers → one row per step (:data:`DIRECT_WRITE_COLUMNS`), pure
    not_run(reason)          the frame of a test that did not run: every step skipped, with the reason
    storage_test(target)     ``run`` then ``steps_frame``
    read_item / delete_item  the consistent read-back and the removal of one connection's item: the calls
                             this test and :mod:`kit.dynamo.exercise` (the handlers run here) both make

What this module must not do: write to a read-only target (``Target.read_only``: a real account without
``--allow-writes``; the lab is writable), touch any item but its own (connection id and workspace id
``kit-probe-<random>``, deleted only while its workspace is still that one; ``read_item`` and ``delete_item``
act on the id their caller made), or leave its item behind when the delete can be made. It creates no boto3
client of its own: the client comes from ``Target.client``.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from kit import frames
from kit.errors import error_facts

if TYPE_CHECKING:
    from kit.target import Target

log = logging.getLogger("kit.dynamo.direct_write")

# One prefix marks every item the kit itself causes: kit.probe's workspaces use it too.
ITEM_PREFIX: Final = "kit-probe-"
STEPS: Final = ("put", "get", "query", "delete")
OPERATIONS: Final[dict[str, str]] = {
    "put": "PutItem",
    "get": "GetItem",
    "query": "Query",
    "delete": "DeleteItem",
}

DIRECT_WRITE_COLUMNS: Final[dict[str, str]] = {
    "step": "string",  # put | get | query | delete, in that order
    "operation": "string",  # PutItem | GetItem | Query | DeleteItem
    "ok": "boolean",  # True it worked, False it did not (detail says what happened), NA not run
    "error_code": "string",  # the AWS error code (or botocore error class) of a failed call; NA otherwise
    "attempts": "Int64",  # calls made: the query is repeated while the GSI catches up; 0 when not run
    "latency_ms": "Float64",  # from the step's first call to its last answer
    "connection_id": "string",  # the test item's key, kit-probe-<random>
    "detail": "string",  # what happened, in words; "skipped: <why>" when not run
    "ts": frames.UTC_DTYPE,  # when the step started
}
"""One row per step of one storage test, in :data:`STEPS` order."""

INDEX_WAIT_S: Final = 5.0  # GSIs normally catch up in well under a second
_BACKOFF_INITIAL_S: Final = 0.05
_BACKOFF_MAX_S: Final = 0.5


@dataclass(frozen=True)
class StepAnswer:
    """What one step did: ``ok`` None means it was not run."""

    step: str
    ok: bool | None
    error_code: str | None = None
    attempts: int = 0
    latency_ms: float | None = None
    detail: str = ""
    ts: datetime | None = None


def new_connection_id() -> str:
    """``kit-probe-<16 hex digits>``: not an id API Gateway issues, and never one of a real user's."""
    return ITEM_PREFIX + secrets.token_hex(8)


def shaped_item(connection_id: str, workspace_id: str, now: datetime) -> dict[str, dict[str, str]]:
    """The item the fixed handler writes on ``$connect`` (DynamoDB JSON), with the kit's ids in it."""
    return {
        "connectionId": {"S": connection_id},
        "workspaceId": {"S": workspace_id},
        "userId": {"S": ITEM_PREFIX.rstrip("-")},
        "timestamp": {"S": now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")},
        "status": {"S": "connected"},
    }


# --------------------------------------------------------------------------------------------------
# Pure


def steps_frame(answers: Sequence[StepAnswer], connection_id: str | None = None) -> pd.DataFrame:
    """``answers`` as one row per step (:data:`DIRECT_WRITE_COLUMNS`); a step without an answer is skipped."""
    by_step = {answer.step: answer for answer in answers}
    rows = []
    for step in STEPS:
        answer = by_step.get(step) or StepAnswer(step, None, detail="skipped: no answer was recorded")
        rows.append(
            {
                "step": step,
                "operation": OPERATIONS[step],
                "ok": answer.ok,
                "error_code": answer.error_code,
                "attempts": answer.attempts,
                "latency_ms": answer.latency_ms,
                "connection_id": connection_id,
                "detail": answer.detail,
                "ts": answer.ts,
            }
        )
    return frames.from_rows(rows, DIRECT_WRITE_COLUMNS)


def not_run(reason: str) -> pd.DataFrame:
    """The frame of a storage test that did not run: every step skipped, ``detail`` "skipped: <reason>"."""
    return steps_frame([StepAnswer(step, None, detail=f"skipped: {reason}") for step in STEPS])


def read_only_reason(target: Target) -> str:
    """Why a read-only target gets no storage test, in the words ``not_run`` shows."""
    return (
        f"target {target.label} is read-only, so the kit wrote nothing to {target.table}; pass "
        "--allow-writes (Target.aws(allow_writes=True)) to let it write, read back and delete one "
        f"{ITEM_PREFIX}… item"
    )


# --------------------------------------------------------------------------------------------------
# I/O


def read_item(client: Any, table: str, connection_id: str) -> dict[str, Any] | None:
    """The item stored under ``connection_id`` in ``table`` (DynamoDB JSON), by a consistent ``GetItem``;
    None when there is none. What botocore raises (``ClientError``, ``BotoCoreError``) is the caller's."""
    answer = client.get_item(TableName=table, Key={"connectionId": {"S": connection_id}}, ConsistentRead=True)
    item = answer.get("Item") if isinstance(answer, Mapping) else None
    return dict(item) if isinstance(item, Mapping) else None


def delete_item(client: Any, table: str, connection_id: str, *, workspace_id: str | None) -> None:
    """``DeleteItem`` of ``connection_id`` from ``table``; with ``workspace_id``, only while the item is still
    in that workspace (else DynamoDB answers ``ConditionalCheckFailedException``), so an item that is no
    longer the caller's stays. Raises what botocore raises."""
    condition: dict[str, Any] = (
        {
            "ConditionExpression": "workspaceId = :workspace_id",
            "ExpressionAttributeValues": {":workspace_id": {"S": workspace_id}},
        }
        if workspace_id is not None
        else {}
    )
    client.delete_item(TableName=table, Key={"connectionId": {"S": connection_id}}, **condition)


def _failure(exc: BaseException) -> tuple[str, str]:
    code, message = error_facts(exc)
    return code, f"{code}: {message}" if message else code


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


_Call = Callable[[str, Callable[[], Any]], tuple[Any, "StepAnswer | None"]]


def _call(step: str, request: Callable[[], Any], resource: str, region: str) -> tuple[Any, StepAnswer | None]:
    """``request()``'s answer, or the failed step's answer when DynamoDB (or botocore) refused it."""
    started, begin = datetime.now(UTC), time.monotonic()
    try:
        return request(), None
    except (ClientError, BotoCoreError) as exc:
        code, detail = _failure(exc)
        return None, StepAnswer(
            step,
            False,
            code,
            1,
            _ms(time.monotonic() - begin),
            f"{OPERATIONS[step]} on {resource} in {region} failed with {detail}",
            started,
        )


def run(
    target: Target,
    *,
    connection_id: str | None = None,
    index_wait_s: float = INDEX_WAIT_S,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[StepAnswer]:
    """Put, get, query and delete one test item in the target's table; one answer per step, never raises
    for what DynamoDB answers. A read-only target raises ``ConfigurationError`` before anything is sent.
    """
    target.require_writes(f"write a test item to table {target.table}")
    connection_id = connection_id or new_connection_id()
    workspace_id = connection_id  # a workspace of its own: no broadcast reaches it, no query finds others
    client = target.client("dynamodb")
    table, index = target.table, target.index
    answers: list[StepAnswer] = []

    def call(step: str, request: Callable[[], Any]) -> tuple[Any, StepAnswer | None]:
        return _call(step, request, f"{table}/index/{index}" if step == "query" else table, target.region)

    started, begin = datetime.now(UTC), time.monotonic()
    item = shaped_item(connection_id, workspace_id, started)
    _, failed = call(
        "put",
        lambda: client.put_item(
            TableName=table, Item=item, ConditionExpression="attribute_not_exists(connectionId)"
        ),
    )
    if failed is not None:
        answers.append(failed)
        skipped = "the PutItem failed, so there is nothing to read, query or delete"
        answers += [StepAnswer(step, None, detail=f"skipped: {skipped}") for step in STEPS[1:]]
        return answers
    answers.append(
        StepAnswer(
            "put",
            True,
            attempts=1,
            latency_ms=_ms(time.monotonic() - begin),
            detail=f"PutItem of {connection_id} into {table} in {target.region} worked",
            ts=started,
        )
    )
    try:
        answers.append(_get(client, call, table, connection_id, workspace_id))
        answers.append(
            _query(
                client,
                table=table,
                index=index,
                connection_id=connection_id,
                workspace_id=workspace_id,
                region=target.region,
                index_wait_s=index_wait_s,
                sleep=sleep,
                clock=clock,
            )
        )
    finally:
        answers.append(_delete(client, call, table, connection_id, workspace_id))
    return answers


def _get(client: Any, call: _Call, table: str, connection_id: str, workspace_id: str) -> StepAnswer:
    started, begin = datetime.now(UTC), time.monotonic()
    item, failed = call("get", lambda: read_item(client, table, connection_id))
    if failed is not None:
        return failed
    latency = _ms(time.monotonic() - begin)
    stored = item.get("workspaceId", {}).get("S") if isinstance(item, dict) else None
    if stored != workspace_id:
        what = "no item" if not item else f"an item with workspaceId {stored!r}"
        detail = f"a consistent GetItem of {connection_id} returned {what} right after the PutItem worked"
        return StepAnswer("get", False, None, 1, latency, detail, started)
    detail = f"a consistent GetItem returned {connection_id} as written"
    return StepAnswer("get", True, None, 1, latency, detail, started)


def _query(
    client: Any,
    *,
    table: str,
    index: str,
    connection_id: str,
    workspace_id: str,
    region: str,
    index_wait_s: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> StepAnswer:
    started, begin = datetime.now(UTC), clock()
    deadline = begin + index_wait_s
    delay = _BACKOFF_INITIAL_S
    attempts = 0
    while True:
        attempts += 1
        try:
            answer = client.query(
                TableName=table,
                IndexName=index,
                KeyConditionExpression="workspaceId = :workspace_id",
                ExpressionAttributeValues={":workspace_id": {"S": workspace_id}},
            )
        except (ClientError, BotoCoreError) as exc:
            code, detail = _failure(exc)
            return StepAnswer(
                "query",
                False,
                code,
                attempts,
                _ms(clock() - begin),
                f"Query on {table}/index/{index} in {region} failed with {detail}",
                started,
            )
        found = {
            item.get("connectionId", {}).get("S")
            for item in answer.get("Items", [])
            if isinstance(item, dict)
        }
        if connection_id in found:
            detail = (
                f"{index} returned {connection_id} after {attempts} quer{'y' if attempts == 1 else 'ies'}"
            )
            return StepAnswer("query", True, None, attempts, _ms(clock() - begin), detail, started)
        if clock() + delay > deadline:
            detail = (
                f"{index} did not return {connection_id} in {attempts} queries over {index_wait_s:g} s, "
                "although the item has a string workspaceId"
            )
            return StepAnswer("query", False, None, attempts, _ms(clock() - begin), detail, started)
        sleep(delay)
        delay = min(delay * 2, _BACKOFF_MAX_S)


def _delete(client: Any, call: _Call, table: str, connection_id: str, workspace_id: str) -> StepAnswer:
    started, begin = datetime.now(UTC), time.monotonic()
    # Only the item this test wrote: if its workspace changed, it is no longer the kit's to remove.
    _, failed = call("delete", lambda: delete_item(client, table, connection_id, workspace_id=workspace_id))
    if failed is not None:
        log.warning("the storage test could not delete %s from %s: %s", connection_id, table, failed.detail)
        return StepAnswer(
            "delete",
            False,
            failed.error_code,
            1,
            failed.latency_ms,
            f"{failed.detail}; delete {connection_id} from {table} by hand",
            started,
        )
    detail = f"DeleteItem removed {connection_id}"
    return StepAnswer("delete", True, None, 1, _ms(time.monotonic() - begin), detail, started)


def storage_test(target: Target, **options: Any) -> pd.DataFrame:
    """:func:`run` on ``target`` as a frame (:data:`DIRECT_WRITE_COLUMNS`); ``not_run`` when read-only."""
    if target.read_only:
        return not_run(read_only_reason(target))
    connection_id = options.pop("connection_id", None) or new_connection_id()
    return steps_frame(run(target, connection_id=connection_id, **options), connection_id)
