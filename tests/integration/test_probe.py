"""The probe against labs: what it reports for the healthy stack and for each client- or server-side cause.

One lab per scenario (a process holds one lab at a time), started by a module-scoped fixture that is
parametrized indirectly, so pytest runs each scenario's tests together and stops its lab before the next.
The probe runs once per lab in the fixture; the tests read its frame. Timeouts are shortened: in the lab the
item is stored before the 101 and broadcasts arrive in well under a second.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import pytest

from kit.lab import scenarios
from kit.lab.lab import Lab
from kit.probe import run_probe
from kit.probe_core import PROBE_COLUMNS, ProbePlan, ProbeTimeouts, summarise
from kit.redact import user_hash
from kit.target import Target

from .labclient import CONNECTION_ID, EmptyDynamoDB, route_removed, table_items

pytestmark = pytest.mark.integration

FAST = ProbeTimeouts(handshake_s=10, item_wait_s=2, delivery_wait_s=2, close_s=3)
# Failing scenarios only need one broadcast to show that nothing is delivered.
PLANS = {
    "healthy": {"clients": 3},
    "missing-workspace": {"clients": 2, "actions": ("message",)},
    "handler-crash": {"clients": 2, "actions": ("message",)},
    "seed-put-denied": {"clients": 2, "actions": ("message",)},
    "early-disconnect": {"clients": 2, "actions": ("message",)},
    "no-connect-integration": {"clients": 2, "actions": ("message",)},
}


@dataclass
class Probed:
    lab: Lab
    plan: ProbePlan
    frame: pd.DataFrame

    def step(self, step: str) -> pd.DataFrame:
        return self.frame[self.frame["step"] == step]


@pytest.fixture(scope="module")
def probed(request: pytest.FixtureRequest, empty_dynamodb: EmptyDynamoDB) -> Iterator[Probed]:
    name = request.param
    scenario = scenarios.get(name)
    with Lab(name, write_lab_file=False, dynamodb=empty_dynamodb()) as lab:
        plan = ProbePlan.from_client_plan(scenario.client, timeouts=FAST, **PLANS[name])
        yield Probed(lab, plan, run_probe(lab.target(), plan, progress=False))


def scenario(name: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("probed", [name], indirect=True)


def oks(rows: pd.DataFrame) -> list[object]:
    return [None if pd.isna(ok) else bool(ok) for ok in rows["ok"]]


# -- healthy ------------------------------------------------------------------------------------------------------


@scenario("healthy")
def test_healthy_every_step_passes_for_every_client(probed: Probed) -> None:
    frame = probed.frame
    assert dict(frame.dtypes.astype(str)) == dict(PROBE_COLUMNS)
    assert len(frame) == 3 * len(probed.plan.steps())
    failed = frame[frame["ok"].isna() | ~frame["ok"].fillna(False)]
    assert failed.empty, failed[["client", "step", "detail"]].to_string()
    assert list(frame[frame["client"] == 0]["step"]) == list(probed.plan.steps())
    assert set(frame.loc[frame["step"] == "connect", "http_status"]) == {101}
    assert set(frame.loc[frame["step"] == "disconnect", "close_code"]) == {1000}
    assert str(frame["ts"].dt.tz) == "UTC"
    summary = summarise(frame).set_index("step")
    assert set(summary["ok"]) == {3}
    assert set(summary[["failed", "skipped"]].to_numpy().ravel()) == {0}


@scenario("healthy")
def test_healthy_each_broadcast_reaches_the_two_other_clients_with_a_latency(probed: Probed) -> None:
    for action in ("message", "presence", "typing"):
        rows = probed.step(f"deliver-{action}")
        assert len(rows) == 3
        for _, row in rows.iterrows():
            assert row["latency_ms"] > 0
            assert row["detail"].startswith("delivered to 2/2 other clients")
            others = {0, 1, 2} - {row["client"]}
            assert all(f"client {other} " in row["detail"] for other in others)


@scenario("healthy")
def test_healthy_rows_carry_the_connection_id_and_a_hash_never_the_token(probed: Probed) -> None:
    frame = probed.frame
    ids = frame.groupby("client")["connection_id"].unique()
    assert all(len(values) == 1 and re.fullmatch(CONNECTION_ID, values[0]) for values in ids)
    assert len({values[0] for values in ids}) == 3
    for client in range(3):
        hashes = set(frame.loc[frame["client"] == client, "user_hash"])
        assert hashes == {user_hash(probed.plan.token(client))}
    text = frame.astype(str).to_csv()
    assert "@" not in text
    assert all(probed.plan.token(client) not in text for client in range(3))
    assert not [item for item in table_items(probed.lab) if item.get("workspaceId") == probed.plan.workspace]


@scenario("healthy")
def test_an_oversize_frame_is_closed_with_1009_and_the_disconnect_still_removes_the_item(
    probed: Probed,
) -> None:
    plan = ProbePlan(clients=1, send_oversize_frame=True, actions=("typing",), timeouts=FAST)
    frame = run_probe(probed.lab.target(), plan, progress=False).set_index("step")
    assert frame.loc["send-oversize", "ok"] == False  # noqa: E712 - a pandas boolean, not a Python bool
    assert frame.loc["send-oversize", "close_code"] == 1009
    assert frame.loc["send-oversize", "close_reason"] == "Message too big"
    assert pd.isna(frame.loc["send-typing", "ok"])
    assert "1009" in frame.loc["send-typing", "detail"]
    assert pd.isna(frame.loc["disconnect", "ok"]) and frame.loc["disconnect", "close_code"] == 1009
    assert frame.loc["item-removed", "ok"] == True  # noqa: E712


@scenario("healthy")
def test_leftover_items_are_removed_when_asked_and_only_then(probed: Probed) -> None:
    lab = probed.lab
    with route_removed(lab, "$disconnect"):  # nothing deletes items on close
        kept = run_probe(lab.target(), ProbePlan(clients=1, actions=(), timeouts=FAST), progress=False)
        plan = ProbePlan(clients=2, actions=(), timeouts=FAST, remove_leftovers=True)
        removed = run_probe(lab.target(), plan, progress=False)
    kept_row = kept[kept["step"] == "item-removed"].iloc[0]
    assert kept_row["ok"] == False  # noqa: E712
    assert "still in" in kept_row["detail"]
    assert kept.attrs["cleanup"] == []
    workspaces = {item.get("workspaceId") for item in table_items(lab)}
    assert kept.attrs["workspace_id"] in workspaces
    assert plan.workspace not in workspaces
    assert len(removed.attrs["cleanup"]) == 2
    details = removed.loc[removed["step"] == "item-removed", "detail"]
    assert all(detail.endswith("the probe's cleanup then deleted it") for detail in details)


# -- scenarios ---------------------------------------------------------------------------------------------------


@scenario("missing-workspace")
def test_missing_workspace_the_item_is_stored_but_never_in_the_index(probed: Probed) -> None:
    assert not probed.plan.include_workspace_id
    assert oks(probed.step("connect")) == [True, True]
    stored = probed.step("item-stored")
    assert oks(stored) == [True, True]
    assert not stored["detail"].str.contains("workspaceId").any()
    index = probed.step("index-visible")
    assert oks(index) == [False, False]
    assert index["detail"].str.contains("has no workspaceId, so the sparse index never holds it").all()
    assert oks(probed.step("item-removed")) == [True, True]


@scenario("handler-crash")
def test_handler_crash_the_handshake_is_rejected_with_502_and_nothing_else_runs(probed: Probed) -> None:
    connect = probed.step("connect")
    assert list(connect["http_status"]) == [502, 502]
    assert oks(connect) == [False, False]
    assert connect["detail"].str.contains("HTTP 502").all()
    rest = probed.frame[probed.frame["step"] != "connect"]
    assert rest["ok"].isna().all()
    assert rest["detail"].str.startswith("skipped: the connection was not established").all()
    assert probed.frame["connection_id"].isna().all()


@scenario("seed-put-denied")
def test_seed_put_denied_the_handshake_succeeds_but_no_item_is_stored(probed: Probed) -> None:
    assert list(probed.step("connect")["http_status"]) == [101, 101]
    stored = probed.step("item-stored")
    assert oks(stored) == [False, False]
    assert stored["detail"].str.contains("no item for user").all()
    assert probed.step("index-visible")["ok"].isna().all()
    assert oks(probed.step("deliver-message")) == [False, False]
    assert probed.step("item-removed")["ok"].isna().all()


@scenario("early-disconnect")
def test_early_disconnect_the_client_closes_and_the_item_goes(probed: Probed) -> None:
    assert oks(probed.step("connect")) == [True, True]
    assert oks(probed.step("disconnect")) == [True, True]
    assert list(probed.step("disconnect")["close_code"]) == [1000, 1000]
    assert probed.step("item-stored")["ok"].isna().all()
    assert probed.step("send-message")["ok"].isna().all()
    assert oks(probed.step("item-removed")) == [True, True]


@scenario("no-connect-integration")
def test_no_connect_integration_the_connection_is_accepted_and_nothing_is_stored(probed: Probed) -> None:
    connect = probed.step("connect")
    assert oks(connect) == [True, True]
    assert list(connect["http_status"]) == [101, 101]
    assert oks(probed.step("item-stored")) == [False, False]
    assert oks(probed.step("disconnect")) == [True, True]


# -- no lab at all ------------------------------------------------------------------------------------------------


def test_a_refused_connection_is_a_row_that_names_the_url_and_the_lab() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    target = Target.local({"dynamodb": "http://127.0.0.1:9"}, websocket_url=f"ws://127.0.0.1:{port}/prod")
    frame = run_probe(target, ProbePlan(clients=2, timeouts=FAST), progress=False)
    connect = frame[frame["step"] == "connect"]
    assert oks(connect) == [False, False]
    assert connect["http_status"].isna().all()
    expected = f"connection refused by ws://127.0.0.1:{port}/prod; is the lab up? `kit lab up`"
    assert (connect["detail"] == expected).all()
    assert frame.loc[frame["step"] != "connect", "ok"].isna().all()
