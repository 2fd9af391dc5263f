"""kit.dynamo.direct_write offline: the four calls against a stubbed client, the frame's contract, read-only targets.

The client is the target's own (``Target.local`` on a loopback port nothing listens on), wrapped in botocore's
``Stubber``, so every request is checked against the recorded answer and nothing leaves the process.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from botocore.stub import ANY, Stubber

from kit.dynamo import direct_write
from kit.dynamo.direct_write import DIRECT_WRITE_COLUMNS, STEPS, StepAnswer
from kit.errors import ConfigurationError
from kit.target import Target

TABLE = "chatgenius-connections"
INDEX = "workspaceIndex"
ITEM_ID = "kit-probe-00112233aabbccdd"
KEY = {"connectionId": {"S": ITEM_ID}}
OWN_WORKSPACE = {":workspace_id": {"S": ITEM_ID}}


def lab_target() -> Target:
    return Target.local({"dynamodb": "http://127.0.0.1:9"}, table=TABLE, index=INDEX)


@pytest.fixture
def stubbed() -> Iterator[tuple[Target, Stubber]]:
    target = lab_target()
    with Stubber(target.client("dynamodb")) as stubber:
        yield target, stubber
        stubber.assert_no_pending_responses()


class FakeClock:
    """``time.monotonic`` and ``time.sleep`` for the query's retries: sleeping moves the clock."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def expect_put(stubber: Stubber, error: str | None = None) -> None:
    params = {"TableName": TABLE, "Item": ANY, "ConditionExpression": "attribute_not_exists(connectionId)"}
    if error:
        stubber.add_client_error("put_item", error, "denied", expected_params=params)
    else:
        stubber.add_response("put_item", {}, params)


def expect_get(stubber: Stubber, item: dict[str, Any] | None) -> None:
    answer = {"Item": item} if item is not None else {}
    stubber.add_response("get_item", answer, {"TableName": TABLE, "Key": KEY, "ConsistentRead": True})


def expect_query(stubber: Stubber, ids: list[str], error: str | None = None) -> None:
    params = {
        "TableName": TABLE,
        "IndexName": INDEX,
        "KeyConditionExpression": "workspaceId = :workspace_id",
        "ExpressionAttributeValues": OWN_WORKSPACE,
    }
    if error:
        stubber.add_client_error("query", error, "The table does not have the specified index", 400, params)
    else:
        stubber.add_response("query", {"Items": [{"connectionId": {"S": i}} for i in ids]}, params)


def expect_delete(stubber: Stubber, error: str | None = None) -> None:
    params = {
        "TableName": TABLE,
        "Key": KEY,
        "ConditionExpression": "workspaceId = :workspace_id",
        "ExpressionAttributeValues": OWN_WORKSPACE,
    }
    if error:
        stubber.add_client_error("delete_item", error, "denied", expected_params=params)
    else:
        stubber.add_response("delete_item", {}, params)


STORED = direct_write.shaped_item(ITEM_ID, ITEM_ID, datetime(2025, 1, 1, tzinfo=UTC))


def run(target: Target, clock: FakeClock | None = None, index_wait_s: float = 5.0) -> pd.DataFrame:
    clock = clock or FakeClock()
    answers = direct_write.run(
        target,
        connection_id=ITEM_ID,
        index_wait_s=index_wait_s,
        sleep=clock.sleep,
        clock=clock.monotonic,
    )
    return direct_write.steps_frame(answers, ITEM_ID)


def outcome(frame: pd.DataFrame) -> list[tuple[str, Any, Any]]:
    return [
        (row["step"], None if pd.isna(row["ok"]) else bool(row["ok"]), None if pd.isna(c) else c)
        for (_, row), c in zip(frame.iterrows(), frame["error_code"], strict=True)
    ]


def test_the_item_is_shaped_like_the_handlers() -> None:
    assert set(STORED) == {"connectionId", "workspaceId", "userId", "timestamp", "status"}
    assert all(set(value) == {"S"} for value in STORED.values())
    assert STORED["timestamp"]["S"] == "2025-01-01T00:00:00.000Z"
    assert direct_write.new_connection_id().startswith(direct_write.ITEM_PREFIX)
    assert direct_write.new_connection_id() != direct_write.new_connection_id()


def test_every_step_works(stubbed: tuple[Target, Stubber]) -> None:
    target, stubber = stubbed
    expect_put(stubber)
    expect_get(stubber, STORED)
    expect_query(stubber, [ITEM_ID])
    expect_delete(stubber)
    frame = run(target)
    assert outcome(frame) == [
        ("put", True, None),
        ("get", True, None),
        ("query", True, None),
        ("delete", True, None),
    ]
    assert set(frame["connection_id"]) == {ITEM_ID}
    assert frame["attempts"].tolist() == [1, 1, 1, 1]


def test_the_query_is_retried_while_the_index_catches_up(stubbed: tuple[Target, Stubber]) -> None:
    target, stubber = stubbed
    expect_put(stubber)
    expect_get(stubber, STORED)
    expect_query(stubber, [])
    expect_query(stubber, [])
    expect_query(stubber, [ITEM_ID])
    expect_delete(stubber)
    clock = FakeClock()
    frame = run(target, clock)
    query = frame.set_index("step").loc["query"]
    assert bool(query["ok"]) and query["attempts"] == 3
    assert clock.slept == [0.05, 0.1]
    assert "after 3 queries" in query["detail"]


def test_an_index_that_never_shows_the_item_gives_up_in_time(stubbed: tuple[Target, Stubber]) -> None:
    target, stubber = stubbed
    expect_put(stubber)
    expect_get(stubber, STORED)
    for _ in range(5):  # 0.05 + 0.1 + 0.2 + 0.4 s, then the next pause would pass the 1 s deadline
        expect_query(stubber, [])
    expect_delete(stubber)
    clock = FakeClock()
    frame = run(target, clock, index_wait_s=1.0)
    assert outcome(frame)[2] == ("query", False, None)
    assert sum(clock.slept) <= 1.0
    assert "did not return" in frame.set_index("step").loc["query", "detail"]
    assert outcome(frame)[3] == ("delete", True, None)  # removed all the same


def test_a_denied_put_skips_the_rest(stubbed: tuple[Target, Stubber]) -> None:
    target, stubber = stubbed
    expect_put(stubber, "AccessDeniedException")
    frame = run(target)
    assert outcome(frame) == [
        ("put", False, "AccessDeniedException"),
        ("get", None, None),
        ("query", None, None),
        ("delete", None, None),
    ]
    assert (
        frame["detail"]
        .iloc[0]
        .startswith(f"PutItem on {TABLE} in us-east-2 failed with AccessDeniedException")
    )
    assert frame["detail"].iloc[1:].str.startswith("skipped: the PutItem failed").all()


def test_a_failed_query_still_deletes_the_item(stubbed: tuple[Target, Stubber]) -> None:
    target, stubber = stubbed
    expect_put(stubber)
    expect_get(stubber, STORED)
    expect_query(stubber, [], error="ValidationException")
    expect_delete(stubber)
    frame = run(target)
    assert outcome(frame)[2:] == [("query", False, "ValidationException"), ("delete", True, None)]
    assert f"{TABLE}/index/{INDEX}" in frame["detail"].iloc[2]


def test_a_get_that_returns_nothing_fails_without_a_code(stubbed: tuple[Target, Stubber]) -> None:
    target, stubber = stubbed
    expect_put(stubber)
    expect_get(stubber, None)
    expect_query(stubber, [ITEM_ID])
    expect_delete(stubber)
    frame = run(target)
    assert outcome(frame)[1] == ("get", False, None)
    assert "returned no item" in frame["detail"].iloc[1]


def test_a_failed_delete_says_to_remove_the_item_by_hand(stubbed: tuple[Target, Stubber]) -> None:
    target, stubber = stubbed
    expect_put(stubber)
    expect_get(stubber, STORED)
    expect_query(stubber, [ITEM_ID])
    expect_delete(stubber, "AccessDeniedException")
    frame = run(target)
    assert outcome(frame)[3] == ("delete", False, "AccessDeniedException")
    assert f"delete {ITEM_ID} from {TABLE} by hand" in frame["detail"].iloc[3]


def test_a_read_only_target_is_not_written() -> None:
    target = Target(kind="aws", region="us-east-2", table=TABLE)
    assert target.read_only
    with pytest.raises(ConfigurationError, match="read-only"):
        direct_write.run(target)
    frame = direct_write.storage_test(target)
    assert frame["ok"].isna().all()
    assert frame["detail"].str.startswith("skipped: target aws us-east-2 is read-only").all()
    assert "--allow-writes" in frame["detail"].iloc[0]


@pytest.mark.parametrize(
    "frame",
    [
        direct_write.not_run("read-only"),
        direct_write.steps_frame([]),
        direct_write.steps_frame([StepAnswer("put", True, attempts=1, latency_ms=3.5, ts=datetime.now(UTC))]),
    ],
    ids=["not run", "no answers", "one answer"],
)
def test_the_frame_keeps_its_contract(frame: pd.DataFrame) -> None:
    assert {column: str(dtype) for column, dtype in frame.dtypes.items()} == DIRECT_WRITE_COLUMNS
    assert frame["step"].tolist() == list(STEPS)
    assert frame["operation"].tolist() == ["PutItem", "GetItem", "Query", "DeleteItem"]
