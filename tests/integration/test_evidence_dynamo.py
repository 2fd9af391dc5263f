"""kit.dynamo against the lab: real clients connect over the WebSocket, the kit reads the table back.

One lab per scenario, shared by the module's tests (``indirect`` parametrization keeps one lab up at a time).
Each test connects its own users (unique e-mails), so tests sharing a lab do not see each other's rows as
theirs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pandas as pd
import pytest
import websocket

from kit.dynamo.items import (
    EXPECTED_FIELDS,
    index_coverage,
    index_pages,
    items_frame,
    items_frame_slow,
    scan_items,
    scan_pages,
)
from kit.dynamo.stale import stale_rows
from kit.dynamo.table import describe_frame, fetch_description, schema_diff_frame
from kit.lab.lab import Lab

from .labclient import EmptyDynamoDB

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest, empty_dynamodb: EmptyDynamoDB) -> Iterator[Lab]:
    with Lab(request.param, write_lab_file=False, dynamodb=empty_dynamodb()) as running:
        yield running


def _user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}@example.com"


def _connect(stack: ExitStack, lab: Lab, user: str, workspace_id: str | None = "ws-1") -> websocket.WebSocket:
    assert lab.info is not None
    query = f"?token={user}" + (f"&workspaceId={workspace_id}" if workspace_id else "")
    ws = websocket.create_connection(lab.info.websocket_url + query, timeout=10)
    stack.callback(ws.close)
    return ws


def _rows_of(items: pd.DataFrame, users: list[str]) -> pd.DataFrame:
    return items[items["userId"].isin(users)].reset_index(drop=True)


def _wait_for(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


@pytest.mark.parametrize("lab", ["healthy"], indirect=True)
def test_scan_items_reads_every_connected_client(lab: Lab) -> None:
    target = lab.target()
    users = [_user() for _ in range(3)]
    with ExitStack() as stack:
        for user, workspace in zip(users, ["ws-1", "ws-1", "ws-2"], strict=True):
            _connect(stack, lab, user, workspace)
        items = scan_items(target, segments=4, progress=False)
        mine = _rows_of(items, users)
        assert sorted(mine["userId"]) == sorted(users)
        assert sorted(mine["workspaceId"]) == ["ws-1", "ws-1", "ws-2"]
        assert set(mine["status"]) == {"connected"}
        assert mine["timestamp_utc"].notna().all()
        for field in EXPECTED_FIELDS:
            assert set(mine[f"{field}__type"]) == {"S"}
        assert mine["_problem"].isna().all()
        assert items["connectionId"].is_monotonic_increasing
        # One segment or four, fast or baseline: the same items.
        pages = scan_pages(target, segments=1, progress=False)
        single = items_frame(pages).sort_values("connectionId").reset_index(drop=True)
        pd.testing.assert_frame_equal(single, items, check_like=False)
        pd.testing.assert_frame_equal(items_frame(pages), items_frame_slow(pages))


@pytest.mark.parametrize("lab", ["healthy"], indirect=True)
def test_the_healthy_table_matches_the_schema(lab: Lab) -> None:
    target = lab.target()
    assert schema_diff_frame(target).empty
    described = describe_frame(fetch_description(target))
    assert described["name"].tolist() == ["chatgenius-connections", "workspaceIndex"]
    assert described["status"].tolist() == ["ACTIVE", "ACTIVE"]


@pytest.mark.parametrize("lab", ["healthy"], indirect=True)
def test_stale_rows_asks_api_gateway_about_each_stored_connection(lab: Lab) -> None:
    target = lab.target()
    staying, leaving = _user(), _user()
    with ExitStack() as stack:
        _connect(stack, lab, staying)
        closing = _connect(stack, lab, leaving)
        # A row no $connect wrote: an id API Gateway never issued (an emulator's, say).
        target.client("dynamodb").put_item(
            TableName=target.table,
            Item={"connectionId": {"S": "local-0001"}, "userId": {"S": "ghost@example.com"}},
        )
        # The snapshot is taken while both are open; the handler deletes the leaver's row on close,
        # so the snapshot's row for it is exactly a stale row.
        items = _rows_of(scan_items(target, progress=False), [staying, leaving, "ghost@example.com"])
        assert len(items) == 3
        closing.close()

        def settled() -> pd.DataFrame | None:
            frame = stale_rows(target, items)
            states = dict(zip(frame["user_id"], frame["state"], strict=True))
            return frame if states[leaving] == "gone" else None

        frame = _wait_for(settled)
        assert frame is not None, "the closed connection never answered 410"
    states = dict(zip(frame["user_id"], frame["state"], strict=True))
    assert states == {staying: "alive", leaving: "gone", "ghost@example.com": "invalid-id"}
    alive = frame[frame["user_id"] == staying].iloc[0]
    assert alive["http_status"] == 200
    assert alive["connected_at"] <= alive["last_active_at"]
    assert str(frame["connected_at"].dtype) == "datetime64[ns, UTC]"
    assert frame[frame["user_id"] == leaving].iloc[0]["http_status"] == 410
    unchecked = stale_rows(target, items, check=False)
    assert set(unchecked["state"]) == {"unchecked"}


@pytest.mark.parametrize("lab", ["missing-workspace"], indirect=True)
def test_index_coverage_finds_the_connection_without_a_workspace(lab: Lab) -> None:
    target = lab.target()
    with_workspace, without_workspace = _user(), _user()
    with ExitStack() as stack:
        _connect(stack, lab, with_workspace, "ws-1")
        _connect(stack, lab, without_workspace, None)
        items = _rows_of(scan_items(target, progress=False), [with_workspace, without_workspace])
        coverage = index_coverage(items, index_pages(target))
    by_user = dict(zip(items["connectionId"], items["userId"], strict=True))
    reasons = {by_user[c]: w for c, w in zip(coverage["connection_id"], coverage["why_not"], strict=True)}
    assert reasons[without_workspace] == "attribute-absent"
    assert reasons[with_workspace] is pd.NA
    missing = coverage[coverage["why_not"] == "attribute-absent"].iloc[0]
    assert not bool(missing["in_index"])
    assert "sparse index workspaceIndex" in missing["detail"]
    assert pd.isna(missing["workspace_id_type"])
