"""kit.probe and kit.probe_core offline: URLs as the browser hook builds them, hashing and masking tokens
(kit.redact, as the probe uses it), matching broadcasts to senders, telling the probe's items apart, the
summary, and the guards that run before any network call."""

from __future__ import annotations

import itertools
import json
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pandas as pd
import pytest

from kit import frames
from kit.errors import ConfigurationError
from kit.handler import app
from kit.lab.scenarios import ClientPlan
from kit.probe import run_probe
from kit.probe_core import (
    PROBE_COLUMNS,
    STEPS,
    SUMMARY_COLUMNS,
    ProbePlan,
    ReceivedFrame,
    action_body,
    attribute_deliveries,
    check_aws_opt_in,
    claim_items,
    close_payload,
    default_token,
    gateway_connection_id,
    gateway_error_message,
    oversize_body,
    ownership_condition,
    probe_url,
    public_url,
    summarise,
)
from kit.probe_waits import backoff_delays
from kit.redact import mask_tokens, user_hash
from kit.target import Target

WS = "wss://abc123.execute-api.us-east-2.amazonaws.com/prod"
FORBIDDEN = '{"message": "Forbidden", "connectionId":"XDmENcnwIE0CFEQ=", "requestId":"XDmGEE2RoE0FRdQ="}'
INTERNAL = '{"message": "Internal server error", "connectionId":"XDmENcnwIE0CFEQ=", "requestId":"XDmGE="}'


def aws_target(**changes: Any) -> Target:
    """A real-account target built directly: nothing is resolved and nothing is called."""
    return Target(kind="aws", region="us-east-2", websocket_url=WS, **changes)


# -- the URL ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "workspace_id", "expected_query"),
    [
        ("a@example.com", "ws-1", "token=a%40example.com&workspaceId=ws-1"),
        (None, "ws-1", "workspaceId=ws-1"),
        ("a@example.com", None, "token=a%40example.com"),
        (None, None, ""),
        ("a+tag@example.com", "w s", "token=a%2Btag%40example.com&workspaceId=w+s"),
        ("x&y=z", "a/b?c", "token=x%26y%3Dz&workspaceId=a%2Fb%3Fc"),
    ],
)
def test_probe_url_appends_the_hooks_parameters_encoded_as_urlsearchparams(
    token: str | None, workspace_id: str | None, expected_query: str
) -> None:
    url = probe_url(WS, token=token, workspace_id=workspace_id)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "wss",
        "abc123.execute-api.us-east-2.amazonaws.com",
        "/prod",
    )
    assert parts.query == expected_query
    decoded = dict(parse_qsl(parts.query))
    assert decoded.get("token") == token
    assert decoded.get("workspaceId") == workspace_id


def test_probe_url_keeps_parameters_already_in_the_url_and_puts_token_first() -> None:
    url = probe_url(WS + "?stage=blue", token="a@b.co", workspace_id="w")
    assert parse_qsl(urlsplit(url).query) == [("stage", "blue"), ("token", "a@b.co"), ("workspaceId", "w")]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (WS + "?token=a%40b.co&workspaceId=w", WS),
        ("ws://user:secret@127.0.0.1:8080/prod?token=x", "ws://127.0.0.1:8080/prod"),
        ("ws://127.0.0.1:8080/prod", "ws://127.0.0.1:8080/prod"),
    ],
)
def test_public_url_drops_the_query_string_and_user_info(url: str, shown: str) -> None:
    assert public_url(url) == shown


# -- tokens ------------------------------------------------------------------------------------------------


def test_user_hash_is_the_handlers_so_rows_join_with_its_log_lines() -> None:
    for token in ("alice@example.com", "probe-0-abcd@example.invalid", "ünï@example.com"):
        assert user_hash(token) == app.user_hash(token)
        assert len(user_hash(token)) == 12
        assert int(user_hash(token), 16) >= 0


def test_default_tokens_are_e_mails_the_handler_accepts_and_differ_per_run_and_client() -> None:
    tokens = {default_token(i, run) for i, run in itertools.product(range(3), ("aaaa1111", "bbbb2222"))}
    assert len(tokens) == 6
    assert all(app.is_email(token) for token in tokens)


def test_tokens_in_a_detail_are_replaced_by_their_hash_longest_first() -> None:
    text = json.dumps({"type": "message", "from": "bob@example.com", "to": "bob@example.com.au"})
    shown = mask_tokens(text, ["bob@example.com", "bob@example.com.au", ""])
    assert "@" not in shown
    assert f"<user {user_hash('bob@example.com')}>" in shown
    assert f"<user {user_hash('bob@example.com.au')}>" in shown


# -- the plan -------------------------------------------------------------------------------------------


def test_a_default_plan_uses_a_workspace_and_tokens_of_its_own() -> None:
    plan, other = ProbePlan(clients=2), ProbePlan(clients=2)
    assert plan.workspace.startswith("kit-probe-")
    assert plan.workspace != other.workspace
    assert plan.token(0) != plan.token(1)
    assert plan.token(0) != other.token(0)
    assert plan.token(1) == default_token(1, plan.run_id)
    assert "token_for" not in repr(plan)


def test_token_for_overrides_the_default() -> None:
    plan = ProbePlan(clients=2, token_for=lambda i: f"user{i}@corp.example")
    assert [plan.token(0), plan.token(1)] == ["user0@corp.example", "user1@corp.example"]


@pytest.mark.parametrize(
    "changes",
    [
        {"clients": 0},
        {"clients": 501},
        {"actions": ("message", "shout")},
        {"actions": ("message", "message")},
        {"workspace_id": "has space"},
        {"workspace_id": ""},
        {"concurrency": 0},
    ],
)
def test_a_malformed_plan_is_a_configuration_error(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ProbePlan(**changes)


def test_steps_follow_the_plan() -> None:
    assert ProbePlan().steps() == tuple(s for s in STEPS if s != "send-oversize")
    assert ProbePlan(actions=("typing",), send_oversize_frame=True).steps() == (
        "connect",
        "item-stored",
        "index-visible",
        "send-oversize",
        "send-typing",
        "deliver-typing",
        "disconnect",
        "item-removed",
    )
    assert "send-message" not in ProbePlan(actions=()).steps()


def test_from_client_plan_copies_a_scenarios_client_duck_typed() -> None:
    plan = ProbePlan.from_client_plan(ClientPlan(include_workspace_id=False), clients=3)
    assert (plan.clients, plan.include_workspace_id, plan.include_token) == (3, False, True)
    duck = SimpleNamespace(close_after_connect=True, send_oversize_frame=True)
    plan = ProbePlan.from_client_plan(duck)
    assert plan.close_after_connect and plan.send_oversize_frame and plan.include_workspace_id


# -- frames ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["message", "presence", "typing"])
def test_action_bodies_pass_the_handlers_validation(action: str) -> None:
    body = action_body(action, 2, "run1")
    fields = app.broadcast_fields({"body": body}, action)
    assert fields
    assert json.loads(body)["action"] == action


def test_the_oversize_frame_is_over_the_32_kb_frame_limit_and_still_json() -> None:
    body = oversize_body()
    assert len(body.encode()) > 32 * 1024
    assert json.loads(body)["action"] == "message"


@pytest.mark.parametrize(
    ("text", "message", "connection_id"),
    [
        (FORBIDDEN, "Forbidden", "XDmENcnwIE0CFEQ="),
        (INTERNAL, "Internal server error", "XDmENcnwIE0CFEQ="),
        ('{"type": "message", "from": "a@b.co", "message": "hi"}', None, None),
        ('{"message": "hi"}', None, None),
        ("not json", None, None),
        ("[1, 2]", None, None),
    ],
)
def test_gateway_error_frames_are_told_from_broadcasts(
    text: str, message: str | None, connection_id: str | None
) -> None:
    assert gateway_error_message(text) == message
    assert gateway_connection_id(text) == connection_id


@pytest.mark.parametrize(
    ("payload", "expected"),
    [(b"\x03\xe8bye", (1000, "bye")), (b"\x03\xf1", (1009, "")), (b"", (1005, ""))],
)
def test_close_payload(payload: bytes, expected: tuple[int, str]) -> None:
    assert close_payload(payload) == expected


# -- deliveries -------------------------------------------------------------------------------------------


def broadcast(action: str, sender: str | None, **fields: Any) -> str:
    return json.dumps({"type": action, "from": sender, "workspaceId": "w", **fields})


SENDERS = {"a@x.io": 0, "b@x.io": 1, "c@x.io": 2, "kit probe r from client 2": 2}


def test_deliveries_are_matched_by_sender_and_timed_from_the_send() -> None:
    sent_at = {0: 10.0, 1: 10.5}
    received = {
        0: [ReceivedFrame(10.7, broadcast("presence", "b@x.io", status="online"))],
        1: [ReceivedFrame(10.2, broadcast("presence", "a@x.io", status="online"))],
        2: [
            ReceivedFrame(10.1, broadcast("presence", "a@x.io", status="online")),
            ReceivedFrame(10.9, broadcast("presence", "b@x.io", status="online")),
            ReceivedFrame(10.95, broadcast("typing", "b@x.io", isTyping=True)),  # another action
            ReceivedFrame(11.0, FORBIDDEN),
        ],
    }
    deliveries = attribute_deliveries("presence", sent_at, received, SENDERS)
    assert deliveries.latency_ms == {
        0: {1: pytest.approx(200), 2: pytest.approx(100)},
        1: {0: pytest.approx(200), 2: pytest.approx(400)},
    }
    assert deliveries.echoed == frozenset()
    assert deliveries.unattributed == 0


def test_a_message_names_its_sender_in_its_text_and_an_echo_is_noted() -> None:
    sent_at = {2: 5.0}
    received = {
        0: [ReceivedFrame(5.3, broadcast("message", None, message="kit probe r from client 2"))],
        2: [ReceivedFrame(5.2, broadcast("message", "c@x.io", message="kit probe r from client 2"))],
    }
    deliveries = attribute_deliveries("message", sent_at, received, SENDERS)
    assert deliveries.latency_ms == {2: {0: pytest.approx(300)}}
    assert deliveries.echoed == frozenset({2})


def test_frames_naming_no_known_sender_go_to_senders_in_send_order_and_early_frames_are_ignored() -> None:
    sent_at = {0: 1.0, 1: 2.0}
    received = {
        2: [
            ReceivedFrame(0.5, broadcast("typing", None, isTyping=True)),  # before any send
            ReceivedFrame(1.5, broadcast("typing", None, isTyping=True)),
            ReceivedFrame(2.5, broadcast("typing", "stranger@x.io", isTyping=True)),
        ]
    }
    deliveries = attribute_deliveries("typing", sent_at, received, SENDERS)
    assert deliveries.latency_ms == {0: {2: pytest.approx(500)}, 1: {2: pytest.approx(500)}}
    assert deliveries.unattributed == 3


# -- telling the probe's items apart ---------------------------------------------------------------------


SINCE = "2026-01-01T00:00:00.000Z"


def item(
    connection_id: str, timestamp: str = "2026-01-01T00:00:01.000Z", **attributes: str
) -> dict[str, str]:
    return {"connectionId": connection_id, "timestamp": timestamp, **attributes}


def test_items_are_claimed_by_user_in_the_probes_workspace_or_without_one_when_recent() -> None:
    items = [
        item("A1", userId="a@x.io", workspaceId="kit-probe-1"),
        item("B-old", "2025-12-31T23:00:00.000Z", userId="b@x.io"),  # before the probe: never its own
        item("B1", userId="b@x.io"),
        item("C-elsewhere", userId="c@x.io", workspaceId="real-workspace"),
        item("A0", "2026-01-01T00:00:00.500Z", userId="a@x.io", workspaceId="kit-probe-1"),
    ]
    claimed = claim_items(items, {0: "a@x.io", 1: "b@x.io", 2: "c@x.io"}, "kit-probe-1", SINCE)
    assert {index: found["connectionId"] for index, found in claimed.items()} == {0: "A1", 1: "B1"}


def test_clients_without_a_token_share_the_items_without_a_user_in_connect_order() -> None:
    items = [
        item("late", "2026-01-01T00:00:03.000Z", workspaceId="kit-probe-1"),
        item("early", "2026-01-01T00:00:02.000Z", workspaceId="kit-probe-1"),
        item("someone", userId="z@x.io", workspaceId="kit-probe-1"),
        item("bare-old", "2025-01-01T00:00:00.000Z"),
    ]
    claimed = claim_items(items, {3: None, 1: None, 0: None}, "kit-probe-1", SINCE)
    assert {index: found["connectionId"] for index, found in claimed.items()} == {3: "early", 1: "late"}


@pytest.mark.parametrize(
    ("stored", "condition", "values"),
    [
        (
            item("A", workspaceId="kit-probe-1", userId="a@x.io"),
            "workspaceId = :w",
            {":w": {"S": "kit-probe-1"}},
        ),
        (
            item("B", userId="b@x.io"),
            "attribute_not_exists(workspaceId) AND #ts = :t AND userId = :u",
            {":t": {"S": "2026-01-01T00:00:01.000Z"}, ":u": {"S": "b@x.io"}},
        ),
        (
            item("C"),
            "attribute_not_exists(workspaceId) AND #ts = :t AND attribute_not_exists(userId)",
            {":t": {"S": "2026-01-01T00:00:01.000Z"}},
        ),
    ],
)
def test_cleanup_deletes_only_while_the_item_is_still_the_one_it_saw(
    stored: dict[str, str], condition: str, values: dict[str, Any]
) -> None:
    expression, expression_values, names = ownership_condition(stored, "kit-probe-1")
    assert (expression, expression_values) == (condition, values)
    assert names == ({"#ts": "timestamp"} if "#ts" in condition else {})


# -- pacing --------------------------------------------------------------------------------------------------


def test_backoff_doubles_from_50_ms_and_stops_growing_at_the_cap() -> None:
    delays = list(itertools.islice(backoff_delays(0.05, 1.0), 8))
    assert delays == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])


# -- the summary ----------------------------------------------------------------------------------------------


def hand_built_frame() -> pd.DataFrame:
    ts = pd.Timestamp("2026-01-01T00:00:00Z")
    rows = [
        (0, "connect", True, 101, 10.0),
        (1, "connect", True, 101, 30.0),
        (2, "connect", False, 502, 999.0),
        (0, "item-stored", True, None, 5.0),
        (1, "item-stored", False, None, None),
        (2, "item-stored", None, None, None),
        (0, "deliver-message", True, None, 100.0),
    ]
    frame = pd.DataFrame(
        [
            {
                "client": client,
                "user_hash": "0" * 12,
                "connection_id": None,
                "step": step,
                "ok": ok,
                "http_status": status,
                "close_code": None,
                "close_reason": None,
                "latency_ms": latency,
                "detail": "",
                "ts": ts,
            }
            for client, step, ok, status, latency in rows
        ]
    )
    return frame.astype(dict(PROBE_COLUMNS))


def test_summarise_counts_ok_failed_and_skipped_and_times_what_passed() -> None:
    summary = summarise(hand_built_frame())
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert dict(summary.dtypes.astype(str)) == dict(SUMMARY_COLUMNS)
    assert list(summary["step"]) == ["connect", "item-stored", "deliver-message"]  # STEPS order
    connect, stored, deliver = (summary.iloc[i].to_dict() for i in range(3))
    assert (connect["clients"], connect["ok"], connect["failed"], connect["skipped"]) == (3, 2, 1, 0)
    assert connect["p50_ms"] == pytest.approx(20.0)  # the failed 999 ms handshake is not counted
    assert connect["p95_ms"] == pytest.approx(29.0)
    assert (stored["ok"], stored["failed"], stored["skipped"]) == (1, 1, 1)
    assert (deliver["clients"], deliver["p50_ms"]) == (1, 100.0)


def test_summarise_of_an_empty_frame_is_an_empty_frame_with_the_columns() -> None:
    frame = frames.empty(PROBE_COLUMNS)
    assert list(frame.columns) == list(PROBE_COLUMNS)
    assert dict(frame.dtypes.astype(str)) == dict(PROBE_COLUMNS)
    summary = summarise(frame)
    assert summary.empty
    assert dict(summary.dtypes.astype(str)) == dict(SUMMARY_COLUMNS)


def test_skipped_rows_are_na_so_masks_select_only_what_passed_or_failed() -> None:
    frame = hand_built_frame()
    assert len(frame[frame["ok"]]) == 4
    assert len(frame[~frame["ok"]]) == 2
    assert frame["ok"].isna().sum() == 1


# -- guards before any network call ------------------------------------------------------------------------------


def test_a_real_account_needs_an_explicit_opt_in_that_names_what_the_probe_writes() -> None:
    plan = ProbePlan(clients=2)
    with pytest.raises(ConfigurationError) as raised:
        run_probe(aws_target(), plan)
    message = str(raised.value)
    for fact in ("allow_aws=True", "chatgenius-connections", plan.workspace, "2 WebSocket connection", WS):
        assert fact in message
    check_aws_opt_in(aws_target(), plan, allow_aws=True)  # no error


def test_a_real_account_is_only_probed_in_a_workspace_of_the_probes_own() -> None:
    with pytest.raises(ConfigurationError, match="workspace of its own"):
        check_aws_opt_in(aws_target(), ProbePlan(workspace_id="team-1"), allow_aws=True)
    check_aws_opt_in(aws_target(), ProbePlan(workspace_id="kit-probe-mine"), allow_aws=True)


def test_the_lab_needs_no_opt_in() -> None:
    lab = Target.local({"dynamodb": "http://127.0.0.1:9"}, websocket_url="ws://127.0.0.1:9/prod")
    check_aws_opt_in(lab, ProbePlan(workspace_id="team-1"), allow_aws=False)


@pytest.mark.parametrize(
    ("websocket_url", "match"),
    [
        (None, "no WebSocket URL"),
        ("https://abc123.execute-api.us-east-2.amazonaws.com/prod", "ws:// or wss://"),
    ],
)
def test_a_target_without_a_websocket_url_is_a_configuration_error(
    websocket_url: str | None, match: str
) -> None:
    target = Target.local({"dynamodb": "http://127.0.0.1:9"}, websocket_url=websocket_url)
    with pytest.raises(ConfigurationError, match=match):
        run_probe(target, ProbePlan())
