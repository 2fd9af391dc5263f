"""kit.dynamo.exercise offline: the handlers run in this process, their items read back and removed, and the
kernel's os.environ and boto3.DEFAULT_SESSION put back on every exit (return, exception, KeyboardInterrupt),
whether the handler raises or the read-back does.

The target is ``Target.local`` on a loopback port nothing listens on, its DynamoDB client wrapped in botocore's
``Stubber``; the handlers are stand-ins, so nothing leaves the process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import boto3
import pandas as pd
import pytest
from botocore.stub import ANY, Stubber

from kit.dynamo import direct_write, exercise
from kit.target import Target

TABLE = "chatgenius-connections"
ENDPOINT = "http://127.0.0.1:9"
CASE = exercise.CONNECT_CASES[0]  # the browser hook: token and workspaceId
KERNEL_SESSION = object()  # stands for the kernel's own boto3 default session


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A kernel with variables a handler must not see, and a default session of its own; yields the
    environment as it is before the test, to compare with after."""
    monkeypatch.setenv("AWS_PROFILE", "kernel-profile")
    monkeypatch.setenv("AUTH_SECRET", "kernel-auth-secret")
    monkeypatch.setenv("TABLE_NAME", "kernel-table")
    monkeypatch.delenv("SET_BY_HANDLER", raising=False)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", KERNEL_SESSION)
    yield _environment()


def _environment() -> dict[str, str]:
    # pytest itself names the phase it runs in (setup, call) in PYTEST_CURRENT_TEST
    return {name: value for name, value in os.environ.items() if name != "PYTEST_CURRENT_TEST"}


def assert_kernel_restored(before: Mapping[str, str]) -> None:
    assert _environment() == before
    assert boto3.DEFAULT_SESSION is KERNEL_SESSION


@pytest.fixture
def stubbed() -> Iterator[tuple[Target, Stubber]]:
    target = Target.local({"dynamodb": ENDPOINT}, table=TABLE)
    with Stubber(target.client("dynamodb")) as stubber:
        yield target, stubber
        stubber.assert_no_pending_responses()


def expect_get(stubber: Stubber, item: dict[str, Any] | None) -> None:
    answer = {"Item": item} if item is not None else {}
    stubber.add_response("get_item", answer, {"TableName": TABLE, "Key": ANY, "ConsistentRead": True})


def expect_delete(stubber: Stubber, key: dict[str, Any] | None = None) -> None:
    stubber.add_response("delete_item", {}, {"TableName": TABLE, "Key": key or ANY})


# --------------------------------------------------------------------------------------------------------
# The environment swap itself

EXITS: dict[str, BaseException | None] = {
    "return": None,
    "exception": RuntimeError("the handler failed"),
    "keyboard interrupt": KeyboardInterrupt(),
}


@pytest.mark.parametrize("exit_by", list(EXITS), ids=list(EXITS))
def test_handler_environment_restores_on_every_exit(kernel: dict[str, str], exit_by: str) -> None:
    error = EXITS[exit_by]
    values = {"TABLE_NAME": "lab-table", "AWS_REGION": "us-east-2"}
    expected = pytest.raises(type(error)) if error else contextlib.nullcontext()
    with expected, exercise.handler_environment(values):
        assert "AWS_PROFILE" not in os.environ and "AUTH_SECRET" not in os.environ  # cleared
        assert os.environ["TABLE_NAME"] == "lab-table" and os.environ["AWS_REGION"] == "us-east-2"
        assert boto3.DEFAULT_SESSION is None
        # what the block changes goes too: a variable it set, one it overwrote, a session it made
        os.environ["SET_BY_HANDLER"] = "1"
        os.environ["TABLE_NAME"] = "changed-by-handler"
        boto3.DEFAULT_SESSION = object()  # type: ignore[assignment]
        if error is not None:
            raise error
    assert_kernel_restored(kernel)


def test_the_handler_environment_aims_at_the_target(stubbed: tuple[Target, Stubber]) -> None:
    target, _ = stubbed
    values = exercise._handler_environment_values(target, TABLE + "-missing")
    assert values["TABLE_NAME"] == TABLE + "-missing"
    assert values["AWS_REGION"] == values["TABLE_REGION"] == target.region
    assert values["AWS_ENDPOINT_URL_DYNAMODB"] == ENDPOINT
    assert values["AWS_CONFIG_FILE"] == values["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull  # the lab's own
    assert target.credentials is not None
    assert values["AWS_ACCESS_KEY_ID"] == target.credentials.access_key_id


# --------------------------------------------------------------------------------------------------------
# Running the handlers

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def answering(status: int, seen: list[dict[str, Any]] | None = None) -> Handler:
    """A handler that answers ``status``; it records what it saw and leaves a variable behind."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if seen is not None:
            seen.append(
                {
                    "table": os.environ.get("TABLE_NAME"),
                    "profile": os.environ.get("AWS_PROFILE"),
                    "session": boto3.DEFAULT_SESSION,
                    "connection_id": event["requestContext"]["connectionId"],
                }
            )
        os.environ["SET_BY_HANDLER"] = "1"
        return {"statusCode": status, "body": ""}

    return handler


def raising(error: BaseException) -> Handler:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        os.environ["SET_BY_HANDLER"] = "1"
        boto3.DEFAULT_SESSION = object()  # type: ignore[assignment]
        raise error

    return handler


def item(connection_id: str = "abc=", workspace: str | None = "kit-notebook-x") -> dict[str, Any]:
    stored: dict[str, Any] = {"connectionId": {"S": connection_id}, "userId": {"S": "ada@example.com"}}
    if workspace is not None:
        stored["workspaceId"] = {"S": workspace}
    return stored


def test_both_handlers_run_in_the_targets_environment_and_their_items_go(
    kernel: dict[str, str], stubbed: tuple[Target, Stubber]
) -> None:
    target, stubber = stubbed
    seen: list[dict[str, Any]] = []
    expect_get(stubber, item())  # the seed stored one
    expect_get(stubber, None)  # the fixed handler did not
    expect_delete(stubber)
    frame = exercise.exercise_connect_handlers(
        target, [CASE], handlers={"seed": answering(200, seen), "fixed": answering(400, seen)}
    )
    assert_kernel_restored(kernel)
    assert [(s["table"], s["profile"], s["session"]) for s in seen] == [(TABLE, None, None)] * 2
    assert list(frame.columns) == list(exercise.HANDLER_RUN_COLUMNS)
    assert frame["handler"].tolist() == ["seed", "fixed"]
    assert frame["status_code"].tolist() == [200, 400]
    assert frame["item_stored"].tolist() == [True, False]
    assert frame["in_index"].tolist()[0] is True and pd.isna(frame["in_index"].tolist()[1])
    assert frame["stored_fields"].tolist()[0] == "connectionId, userId, workspaceId"
    assert frame["connection_id"].tolist() == [s["connection_id"] for s in seen]
    assert frame["query"].tolist()[0].startswith("token=ada%40example.com&workspaceId=kit-notebook-")
    assert frame.attrs["cleanup"] == f"the 1 item(s) written were removed from {TABLE}"


def test_the_seed_item_without_a_workspace_is_not_in_the_index(
    kernel: dict[str, str], stubbed: tuple[Target, Stubber]
) -> None:
    target, stubber = stubbed
    expect_get(stubber, item(workspace=None))
    expect_delete(stubber)
    frame = exercise.exercise_connect_handlers(target, [CASE], handlers={"seed": answering(200)})
    assert frame["item_stored"].tolist() == [True] and frame["in_index"].tolist() == [False]
    assert_kernel_restored(kernel)


def test_a_failed_read_back_is_a_note_and_the_item_is_deleted_all_the_same(
    kernel: dict[str, str], stubbed: tuple[Target, Stubber]
) -> None:
    target, stubber = stubbed
    stubber.add_client_error("get_item", "ProvisionedThroughputExceededException", "slow down")
    expect_delete(stubber)
    frame = exercise.exercise_connect_handlers(target, [CASE], handlers={"seed": answering(200)})
    assert pd.isna(frame["item_stored"].iloc[0])
    assert frame["note"].iloc[0] == (
        f"GetItem on {TABLE} failed with ProvisionedThroughputExceededException, so whether it was stored "
        "is unknown"
    )
    assert frame.attrs["cleanup"].startswith(f"the 0 item(s) written were removed from {TABLE}; 1 more")
    assert_kernel_restored(kernel)


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()], ids=["exception", "interrupt"])
def test_a_handler_that_raises_leaves_the_kernel_as_it_was_and_nothing_behind(
    kernel: dict[str, str], stubbed: tuple[Target, Stubber], error: BaseException
) -> None:
    target, stubber = stubbed
    expect_get(stubber, item())  # the first handler stored its item
    expect_delete(stubber)  # ... removed
    expect_delete(stubber)  # and the raising one's, which may have written before it raised
    with pytest.raises(type(error)):
        exercise.exercise_connect_handlers(
            target, [CASE], handlers={"seed": answering(200), "fixed": raising(error)}
        )
    assert_kernel_restored(kernel)


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()], ids=["exception", "interrupt"])
def test_a_read_back_that_raises_leaves_the_kernel_as_it_was_and_nothing_behind(
    kernel: dict[str, str],
    stubbed: tuple[Target, Stubber],
    monkeypatch: pytest.MonkeyPatch,
    error: BaseException,
) -> None:
    target, stubber = stubbed
    seen: list[dict[str, Any]] = []

    def read_item(client: Any, table: str, connection_id: str) -> dict[str, Any] | None:
        raise error

    monkeypatch.setattr(direct_write, "read_item", read_item)
    expect_delete(stubber)  # the handler ran: its item, if any, is removed
    with pytest.raises(type(error)):
        exercise.exercise_connect_handlers(target, [CASE], handlers={"seed": answering(200, seen)})
    assert len(seen) == 1
    assert_kernel_restored(kernel)


def test_a_read_only_account_runs_nothing(kernel: dict[str, str]) -> None:
    target = Target(kind="aws", region="us-east-2", table=TABLE)
    ran: list[dict[str, Any]] = []
    frame = exercise.exercise_connect_handlers(
        target, exercise.CONNECT_CASES, handlers={"seed": answering(200, ran)}
    )
    assert ran == []
    assert len(frame) == len(exercise.CONNECT_CASES)
    assert frame["note"].str.startswith("not run (allow_writes is False): seed handler() would run").all()
    assert frame.attrs["cleanup"] == "nothing ran (allow_writes is False), nothing was written"
    assert_kernel_restored(kernel)


# --------------------------------------------------------------------------------------------------------
# The events and the comparison (pure)


@pytest.mark.parametrize(
    ("token", "workspace_id", "query"),
    [
        ("ada@example.com", "ws-1", {"token": "ada@example.com", "workspaceId": "ws-1"}),
        ("ada@example.com", None, {"token": "ada@example.com"}),
        (None, "ws-1", {"workspaceId": "ws-1"}),
        (None, None, None),  # no query string: the keys are absent, as in a real event
    ],
)
def test_a_sample_event_carries_the_hooks_query_string(
    token: str | None, workspace_id: str | None, query: dict[str, str] | None
) -> None:
    event = exercise.sample_connect_event(token, workspace_id, connection_id="abc=", now_ms=1_700_000_000_000)
    assert event.get("queryStringParameters") == query
    assert ("multiValueQueryStringParameters" in event) == (query is not None)
    context = event["requestContext"]
    assert (context["connectionId"], context["routeKey"], context["eventType"]) == (
        "abc=",
        "$connect",
        "CONNECT",
    )


def test_compare_handlers_puts_the_two_side_by_side() -> None:
    results = pd.DataFrame(
        {
            "case": [CASE.name, CASE.name],
            "handler": ["seed", "fixed"],
            "status_code": pd.array([200, 500], dtype="Int64"),
            "item_stored": pd.array([True, False], dtype="boolean"),
            "in_index": pd.array([False, None], dtype="boolean"),
        }
    )
    table = exercise.compare_handlers(results)
    row = table.loc[CASE.name]
    assert (row["seed status"], row["fixed status"]) == (200, 500)
    assert bool(row["seed stored"]) and not bool(row["fixed stored"])
    assert row["what it shows"] == CASE.shows


def test_compare_handlers_shows_the_handlers_that_ran() -> None:
    results = pd.DataFrame(
        {
            "case": [CASE.name],
            "handler": ["mine"],
            "status_code": pd.array([201], dtype="Int64"),
            "item_stored": pd.array([True], dtype="boolean"),
            "in_index": pd.array([True], dtype="boolean"),
        }
    )
    table = exercise.compare_handlers(results)
    assert list(table.columns) == ["mine status", "mine stored", "mine in index", "what it shows"]
    assert table.loc[CASE.name, "mine status"] == 201


def test_compare_handlers_of_nothing_has_the_default_handlers_columns() -> None:
    empty = pd.DataFrame({"case": [], "handler": [], "status_code": [], "item_stored": [], "in_index": []})
    table = exercise.compare_handlers(empty)
    assert table.empty
    assert [c for c in table.columns if c.endswith(" status")] == [f"{h} status" for h in exercise.HANDLERS]
