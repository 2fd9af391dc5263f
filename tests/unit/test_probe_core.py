"""kit.probe_core driven with plain calls and times passed in: the API's logs read as evidence, the waits
(over on the event, on the evidence, or at the bound), each step's verdict, and the rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from kit.lab import gateway_logs
from kit.lab.gateway_events import Connection, EventType
from kit.lab.provision import ACCESS_LOG_FORMAT
from kit.probe_core import (
    PROBE_COLUMNS,
    Close,
    Deliveries,
    ProbePlan,
    ProbeTimeouts,
    Rows,
    StepResult,
    client_user_agent,
    close_of,
    closed_reason,
    delivered_to_all,
    delivery_result,
    disconnect_result,
    index_result,
    never_in_index,
    oversize_result,
    removed_result,
    scan_request,
    send_result,
    signing_url,
    stored_result,
)
from kit.probe_logs import (
    FILTER_PATTERN_MAX,
    ConnectEnd,
    GatewayEvidence,
    connects_ended,
    disconnects_ended,
    filter_patterns,
    filter_terms,
    log_groups_for_stage,
    logged_connection_ids,
    messages_handled,
    read_gateway_logs,
)
from kit.probe_waits import (
    DELIVERY_GRACE_S,
    LAB_DELIVERY_GRACE_S,
    LAB_LOG_FIRST_READ_S,
    LOG_FIRST_READ_S,
    LOG_READ_INTERVAL_S,
    DeliveryWait,
    TableWait,
    WaitOutcome,
)
from kit.redact import user_hash

API = "fjnq7njcv2"
UA0 = "kit-probe/1.0 (run 1a2b3c4d client 0)"
UA1 = "kit-probe/1.0 (run 1a2b3c4d client 1)"
STRANGER = "Mozilla/5.0 (run 1a2b3c4d client 0) somebody else"


# -- the lines, as the lab's gateway writes them -------------------------------------------------------


def connection(connection_id: str, user_agent: str | None) -> Connection:
    return Connection(connection_id, 1_700_000_000_000, "127.0.0.1", user_agent, API, "d", "prod")


def request_lines(
    event_type: EventType,
    connection_id: str,
    request_id: str,
    *,
    user_agent: str | None = None,
    status: int = 200,
) -> list[tuple[Any, str]]:
    """The execution-log lines and the access-log record of one request, written by kit.lab.gateway_logs."""
    context = gateway_logs.build_log_context(
        connection(connection_id, user_agent),
        event_type=event_type,
        route_key={"CONNECT": "$connect", "MESSAGE": "message", "DISCONNECT": "$disconnect"}[event_type],
        request_id=request_id,
        request_time_ms=1_700_000_000_000,
        status=status,
    )
    lines: list[tuple[Any, str]] = [("execution", line) for line in gateway_logs.execution_log_lines(context)]
    lines.append(("access", gateway_logs.access_log_line(ACCESS_LOG_FORMAT, context)))
    return lines


def test_the_lab_gateways_lines_are_read_as_the_probes_evidence() -> None:
    lines = (
        request_lines("CONNECT", "AAAAAAAAAAAAAAA=", "AAAAArequest01=", user_agent=UA0)
        + request_lines("CONNECT", "BBBBBBBBBBBBBBB=", "BBBBBrequest01=", user_agent=UA1, status=502)
        + request_lines("CONNECT", "CCCCCCCCCCCCCCC=", "CCCCCrequest01=", user_agent=STRANGER)
        + request_lines("MESSAGE", "AAAAAAAAAAAAAAA=", "message-req-01=")
        + request_lines("MESSAGE", "AAAAAAAAAAAAAAA=", "message-req-02=")
        + request_lines("DISCONNECT", "AAAAAAAAAAAAAAA=", "disconnect-req=")
    )
    evidence = read_gateway_logs(lines, [UA0, UA1])
    assert evidence.connects == {
        UA0: ConnectEnd("AAAAArequest01=", "AAAAAAAAAAAAAAA="),
        UA1: ConnectEnd("BBBBBrequest01=", "BBBBBBBBBBBBBBB="),  # rejected: finished all the same
    }
    assert evidence.connecting == {UA0: "AAAAArequest01=", UA1: "BBBBBrequest01="}
    assert evidence.messages == {"AAAAAAAAAAAAAAA=": 2}  # both logs say so: counted once
    assert evidence.disconnected == frozenset({"AAAAAAAAAAAAAAA="})


@pytest.mark.parametrize(
    ("lines", "connects", "messages", "disconnected"),
    [
        pytest.param([], {}, {}, set(), id="nothing"),
        pytest.param(
            [
                (
                    "execution",
                    f"(r1) Client [UserAgent: {UA0}, SourceIp: 1.2.3.4] is connecting to WebSocket API [a].",
                )
            ],
            {},
            {},
            set(),
            id="connecting is not finished",
        ),
        pytest.param(
            [
                ("execution", "(r1) Client [Connection Id: c1] connected to API [a] successfully."),
                (
                    "execution",
                    f"(r1) Client [UserAgent: {UA0}, SourceIp: 1.2.3.4] is connecting to WebSocket API [a].",
                ),
            ],
            {UA0: ConnectEnd("r1", "c1")},
            {},
            set(),
            id="lines of one request in any order",
        ),
        pytest.param(
            [
                (
                    "execution",
                    f"(r2) Client [UserAgent: {STRANGER}, SourceIp: 1.2.3.4] is connecting to WebSocket API [a].",
                ),
                ("execution", "(r2) Client [Connection Id: c2] connected to API [a] successfully."),
            ],
            {},
            {},
            set(),
            id="another user agent never counts",
        ),
        pytest.param(
            [
                (
                    "access",
                    json.dumps(
                        {"eventType": "CONNECT", "connectionId": "c1", "requestId": "r1", "userAgent": UA0}
                    ),
                )
            ],
            {UA0: ConnectEnd("r1", "c1")},
            {},
            set(),
            id="an access log with the user agent",
        ),
        pytest.param(
            [("access", json.dumps({"eventType": "CONNECT", "connectionId": "c1", "userAgent": "-"}))],
            {},
            {},
            set(),
            id="an access log without it",
        ),
        pytest.param(
            [
                (
                    "execution",
                    "(m1) Message from client [Connection Id: c1] sent to API [a] with response status code [200].",
                ),
                (
                    "execution",
                    "(m2) Message from client [Connection Id: c1] sent to API [a] with response status code [500].",
                ),
                ("access", json.dumps({"eventType": "MESSAGE", "connectionId": "c1"})),
                ("access", json.dumps({"eventType": "MESSAGE", "connectionId": "c9"})),
            ],
            {},
            {"c1": 2, "c9": 1},
            set(),
            id="messages: the larger count of the two logs",
        ),
        pytest.param(
            [
                (
                    "execution",
                    "(d1) Client [Connection Id: c1] disconnected from API [a] with integration response "
                    "status code [200]. Close reason: [1000: bye]",
                ),
                ("access", json.dumps({"eventType": "DISCONNECT", "connectionId": "c2"})),
                ("access", "not json at all"),
                ("execution", "a line without a request id"),
            ],
            {},
            {},
            {"c1", "c2"},
            id="disconnects from either log; other lines ignored",
        ),
    ],
)
def test_gateway_lines_as_evidence(
    lines: list[tuple[Any, str]],
    connects: dict[str, ConnectEnd],
    messages: dict[str, int],
    disconnected: set[str],
) -> None:
    evidence = read_gateway_logs(lines, [UA0, UA1])
    assert dict(evidence.connects) == connects
    assert dict(evidence.messages) == messages
    assert evidence.disconnected == frozenset(disconnected)


EVIDENCE = GatewayEvidence(
    connecting={UA0: "r0", UA1: "r1"},
    connects={UA0: ConnectEnd("r0", "c0"), UA1: ConnectEnd("r1", None)},
    messages={"c0": 2, "c1": 1},
    disconnected=frozenset({"c0"}),
)


def test_evidence_is_asked_about_the_probes_own_clients_only() -> None:
    agents = {0: UA0, 1: UA1, 2: "kit-probe/1.0 (run 1a2b3c4d client 2)"}
    assert connects_ended(EVIDENCE, agents) == {0, 1}
    assert logged_connection_ids(EVIDENCE, agents) == {0: "c0"}
    assert disconnects_ended(EVIDENCE, {0: "c0", 1: "c1"}) == {0}


@pytest.mark.parametrize(
    ("sent", "handled"),
    [
        ({0: 1, 1: 1}, {0, 1}),
        ({0: 2, 1: 2}, {0}),  # client 1's second message is not logged yet
        ({0: 3}, set()),
        ({2: 1}, set()),  # no connection id known: the logs cannot say
    ],
)
def test_a_senders_message_is_handled_once_the_logs_count_as_many_as_it_sent(
    sent: dict[int, int], handled: set[int]
) -> None:
    assert messages_handled(EVIDENCE, {0: "c0", 1: "c1"}, sent) == handled


def test_user_agents_are_the_plans_product_with_the_run_and_client() -> None:
    plan = ProbePlan(clients=2, run_id="1a2b3c4d", user_agent="kit-probe/1.0")
    assert client_user_agent(plan, 0) == UA0
    assert client_user_agent(plan, 1) == UA1
    other = ProbePlan(clients=2, user_agent="kit-probe/1.0")
    assert client_user_agent(other, 0) != UA0


# -- what is asked of CloudWatch ------------------------------------------------------------------------


def test_filter_terms_name_the_run_the_connects_and_the_connections() -> None:
    assert filter_terms("1a2b3c4d", EVIDENCE, ["c0", "c0", "c5"]) == ["1a2b3c4d", "r0", "r1", "c0", "c5"]


@pytest.mark.parametrize(
    ("terms", "patterns"),
    [
        (["1a2b3c4d"], ['"1a2b3c4d"']),
        (["1a2b3c4d", "AAAAAAAAAAAAAAA="], ['?"1a2b3c4d" ?"AAAAAAAAAAAAAAA="']),
        (["a", 'has"quote', ""], ['"a"']),
        ([], []),
    ],
)
def test_filter_patterns(terms: list[str], patterns: list[str]) -> None:
    assert filter_patterns(terms) == patterns


def test_filter_patterns_stay_within_cloudwatchs_length_limit() -> None:
    terms = [f"{i:015d}=" for i in range(120)]
    patterns = filter_patterns(terms)
    assert len(patterns) > 1
    assert all(len(pattern) <= FILTER_PATTERN_MAX for pattern in patterns)
    assert " ".join(patterns).count("?") == 120


@pytest.mark.parametrize(
    ("api_id", "stage", "answer", "groups", "reason"),
    [
        (None, None, None, {}, "the API id and stage are unknown"),
        (API, "prod", None, {f"API-Gateway-Execution-Logs_{API}/prod": "execution"}, None),
        (
            API,
            "prod",
            {
                "DefaultRouteSettings": {"LoggingLevel": "INFO"},
                "AccessLogSettings": {"DestinationArn": "arn:aws:logs:us-east-2:1:log-group:/chat/access:*"},
            },
            {f"API-Gateway-Execution-Logs_{API}/prod": "execution", "/chat/access": "access"},
            None,
        ),
        (
            API,
            "prod",
            {
                "DefaultRouteSettings": {"LoggingLevel": "ERROR"},
                "AccessLogSettings": {"DestinationArn": "arn:aws:logs:us-east-2:1:log-group:/chat/access"},
            },
            {"/chat/access": "access"},
            None,
        ),
        (API, "prod", {"DefaultRouteSettings": {"LoggingLevel": "ERROR"}}, {}, "level ERROR"),
        (API, "prod", {}, {}, "level OFF"),
    ],
)
def test_the_log_groups_that_can_end_a_wait(
    api_id: str | None,
    stage: str | None,
    answer: dict[str, Any] | None,
    groups: dict[str, str],
    reason: str | None,
) -> None:
    found, why = log_groups_for_stage(api_id, stage, answer)
    assert found == groups
    assert (why is None) if reason is None else (why is not None and reason in why)


# -- waits ------------------------------------------------------------------------------------------


def table_wait(*events: tuple[Any, ...], bound_s: float = 10.0, clients: tuple[int, ...] = (0,)) -> TableWait:
    """A wait for ``clients`` from t=0, fed ``events``: ("read", started, finished, now), ("logs", now,
    ended), ("unreadable", reason), ("missing", reason), ("known", now, ended)."""
    wait = TableWait(clients, now=0.0, bound_s=bound_s)
    for event in events:
        if event[0] == "read":
            wait.table_read(event[1], set(event[2]), event[3])
        elif event[0] == "logs":
            wait.logs_read(event[1], set(event[2]), "the logs say so")
        elif event[0] == "known":
            wait.mark_ended(event[1], set(event[2]), "the item says so")
        elif event[0] == "unreadable":
            wait.logs_unreadable(event[1])
        elif event[0] == "missing":
            wait.logs_missing(event[1])
    return wait


@pytest.mark.parametrize(
    ("events", "now", "over", "outcome"),
    [
        pytest.param([("read", 0.0, [], 0.1)], 0.1, False, WaitOutcome("bound", 10.0), id="waiting"),
        pytest.param([("read", 0.0, [0], 0.1)], 0.1, True, WaitOutcome("seen", 0.1), id="seen at once"),
        pytest.param(
            [("read", 0.0, [], 0.1), ("logs", 0.6, [0]), ("read", 0.6, [], 0.7)],
            0.7,
            True,
            WaitOutcome("never", 0.7, "the logs say so"),
            id="the logs, then a read after them",
        ),
        pytest.param(
            [("read", 0.5, [], 0.7), ("logs", 0.6, [0])],
            0.7,
            False,
            WaitOutcome("bound", 10.0),
            id="a read begun before the logs were read proves nothing",
        ),
        pytest.param(
            [("logs", 0.6, [0]), ("read", 0.6, [0], 0.7)],
            0.7,
            True,
            WaitOutcome("seen", 0.7),
            id="the read after the logs finds it",
        ),
        pytest.param(
            [("logs", 0.6, [1]), ("read", 0.6, [], 0.7)],
            0.7,
            False,
            WaitOutcome("bound", 10.0),
            id="another client's evidence",
        ),
        pytest.param([("read", 9.5, [], 10.0)], 10.0, True, WaitOutcome("bound", 10.0), id="the bound"),
        pytest.param(
            [("unreadable", "AccessDeniedException"), ("read", 9.5, [], 10.0)],
            10.0,
            True,
            WaitOutcome(
                "bound",
                10.0,
                "the gateway's logs could not be read: AccessDeniedException; so the probe waited its full 10 s",
            ),
            id="logs unreadable: the bound, said",
        ),
        pytest.param(
            [("missing", "log group(s) x do not exist"), ("read", 9.5, [], 10.0)],
            10.0,
            True,
            WaitOutcome(
                "bound",
                10.0,
                "the gateway's logs could not be read: log group(s) x do not exist; so the probe "
                "waited its full 10 s",
            ),
            id="logs missing: the bound, said",
        ),
        pytest.param(
            [("known", 0.0, [0]), ("read", 0.0, [], 0.2)],
            0.2,
            True,
            WaitOutcome("never", 0.2, "the item says so"),
            id="known before any read: one read settles it",
        ),
    ],
)
def test_a_table_wait(events: list[tuple[Any, ...]], now: float, over: bool, outcome: WaitOutcome) -> None:
    wait = table_wait(*events)
    assert wait.over(now) is over
    assert wait.outcome(0) == outcome


def test_a_table_wait_reads_the_logs_at_most_every_interval_and_only_while_it_helps() -> None:
    wait = table_wait(clients=(0, 1))
    assert not wait.logs_due(LOG_FIRST_READ_S / 2)  # too soon for CloudWatch; the polls keep their pace
    assert wait.pause(0.0, 1.0) == LOG_FIRST_READ_S
    assert wait.logs_due(LOG_FIRST_READ_S)
    wait.logs_read(0.6, {0}, "the logs say so")
    assert not wait.logs_due(0.6 + LOG_READ_INTERVAL_S / 2)
    assert wait.logs_due(0.6 + LOG_READ_INTERVAL_S)
    wait.logs_read(1.2, {1}, "the logs say so")
    assert not wait.logs_due(5.0)  # everyone has evidence: the next read settles it
    assert not table_wait(("unreadable", "no")).logs_due(0.0)
    index = TableWait((0,), now=0.0, bound_s=10.0, logs=False)  # no log line ends the index's wait
    assert not index.logs_due(0.0)
    assert index.pause(0.0, 1.0) == 1.0
    assert index.outcome(0) == WaitOutcome("bound", 10.0)


@pytest.mark.parametrize(
    ("events", "now", "backoff", "pause"),
    [
        ([], 0.0, 0.4, 0.4),
        ([("logs", 9.5, [])], 9.9, 1.0, pytest.approx(0.1)),  # the bound comes first
        ([("logs", 0.5, [0])], 0.5, 1.0, 0.0),  # evidence waits for its read: at once
        ([], 11.0, 1.0, 0.0),
        ([("logs", 0.5, [])], 0.6, 1.0, pytest.approx(LOG_READ_INTERVAL_S - 0.1)),  # the logs are due again
    ],
)
def test_a_table_waits_pause(events: list[tuple[Any, ...]], now: float, backoff: float, pause: Any) -> None:
    assert table_wait(*events).pause(now, backoff) == pause


def delivery_wait(*events: tuple[Any, ...], senders: tuple[int, ...] = (0, 1)) -> DeliveryWait:
    """From t=0, bound 5 s: ("delivered", now, senders), ("ended", now, senders), ("logs", now, senders)."""
    wait = DeliveryWait(senders, now=0.0, bound_s=5.0)
    for kind, now, who in events:
        if kind == "delivered":
            wait.delivered(now, set(who))
        elif kind == "ended":
            wait.mark_ended(now, set(who), "an error frame")
        else:
            wait.logs_read(now, set(who), "the logs")
    return wait


G = DELIVERY_GRACE_S


@pytest.mark.parametrize(
    ("events", "now", "over", "outcomes"),
    [
        ([], 1.0, False, {0: WaitOutcome("bound", 5.0), 1: WaitOutcome("bound", 5.0)}),
        ([("delivered", 0.2, [0, 1])], 0.2, True, {0: WaitOutcome("seen", 0.2), 1: WaitOutcome("seen", 0.2)}),
        (
            [("delivered", 0.2, [0]), ("ended", 0.3, [1])],
            0.3 + G / 2,
            False,
            {0: WaitOutcome("seen", 0.2), 1: WaitOutcome("bound", 5.0)},
        ),
        (
            [("delivered", 0.2, [0]), ("ended", 0.3, [1])],
            0.3 + G,
            True,
            {0: WaitOutcome("seen", 0.2), 1: WaitOutcome("never", 0.3 + G, "an error frame")},
        ),
        (
            [("logs", 0.5, [0, 1]), ("delivered", 0.5 + G / 2, [1])],
            0.5 + G,
            True,
            {0: WaitOutcome("never", 0.5 + G, "the logs"), 1: WaitOutcome("seen", 0.5 + G / 2)},
        ),
        ([("delivered", 0.2, [0])], 5.0, True, {0: WaitOutcome("seen", 0.2), 1: WaitOutcome("bound", 5.0)}),
    ],
)
def test_a_delivery_wait(
    events: list[tuple[Any, ...]], now: float, over: bool, outcomes: dict[int, WaitOutcome]
) -> None:
    wait = delivery_wait(*events)
    assert wait.over(now) is over
    assert {sender: wait.outcome(sender, now) for sender in outcomes} == outcomes


@pytest.mark.parametrize(
    ("events", "now", "pause"),
    [
        ([], 0.0, LOG_FIRST_READ_S),  # not before CloudWatch can have the lines
        ([("logs", 0.0, [])], 0.1, pytest.approx(LOG_READ_INTERVAL_S - 0.1)),
        ([("logs", 0.0, [0, 1])], 0.1, pytest.approx(G - 0.1)),  # until the grace ends
        ([("logs", 4.9, [])], 4.9, pytest.approx(0.1)),  # the bound comes first
    ],
)
def test_a_delivery_waits_pause(events: list[tuple[Any, ...]], now: float, pause: Any) -> None:
    assert delivery_wait(*events).pause(now) == pause


@pytest.mark.parametrize(
    ("timeouts", "kind", "pace"),
    [
        (ProbeTimeouts(), "aws", (LOG_FIRST_READ_S, DELIVERY_GRACE_S)),
        (ProbeTimeouts(), "lab", (LAB_LOG_FIRST_READ_S, LAB_DELIVERY_GRACE_S)),
        (ProbeTimeouts(log_first_read_s=0.0, delivery_grace_s=0.0), "aws", (0.0, 0.0)),  # 0 is a setting
        (ProbeTimeouts(log_first_read_s=2.0), "lab", (2.0, LAB_DELIVERY_GRACE_S)),
        (ProbeTimeouts(delivery_grace_s=3.0), "aws", (LOG_FIRST_READ_S, 3.0)),
    ],
)
def test_the_pace_of_a_wait_is_the_targets_unless_set(
    timeouts: ProbeTimeouts, kind: str, pace: tuple[float, float]
) -> None:
    assert timeouts.pace(kind) == pace


def test_the_lab_promises_a_faster_pace_than_aws() -> None:
    """Its lines land within one 0.1 s batch and its frames are on loopback before the handler's end is
    logged; never slower than the pace used against AWS."""
    assert 0.1 < LAB_LOG_FIRST_READ_S < LOG_FIRST_READ_S
    assert 0 < LAB_DELIVERY_GRACE_S < DELIVERY_GRACE_S


def test_waits_keep_the_pace_they_are_given() -> None:
    table = TableWait((0,), now=0.0, bound_s=10.0, first_read_s=0.2)
    assert table.pause(0.0, 1.0) == 0.2 and not table.logs_due(0.19) and table.logs_due(0.2)
    wait = DeliveryWait((0,), now=0.0, bound_s=5.0, grace_s=0.1, first_read_s=0.2)
    assert wait.pause(0.0) == 0.2
    wait.logs_read(0.2, {0}, "the logs")
    assert wait.pause(0.2) == pytest.approx(0.1)
    assert not wait.over(0.29) and wait.over(0.31)  # the grace, not AWS's 0.5 s
    assert wait.outcome(0, 0.31) == WaitOutcome("never", pytest.approx(0.3), "the logs")


def test_delivered_to_all_compares_with_who_was_open_at_the_send() -> None:
    deliveries = Deliveries({0: {1: 5.0, 2: 6.0}, 1: {0: 4.0}, 2: {}}, frozenset(), 0)
    assert delivered_to_all(deliveries, {0: [1, 2], 1: [0, 2], 2: []}) == {0, 2}


# -- verdicts -----------------------------------------------------------------------------------------


STORED = {"connectionId": "c0", "userId": "a@x.io", "workspaceId": "kit-probe-1", "timestamp": "t"}
NEVER = WaitOutcome("never", 1.25, "the gateway's logs show its $connect finished")
UNREADABLE = WaitOutcome(
    "bound", 10.0, "the gateway's logs could not be read: no; so the probe waited its full 10 s"
)


@pytest.mark.parametrize(
    ("outcome", "item", "error", "ok", "detail", "latency"),
    [
        (
            WaitOutcome("seen", 0.5),
            STORED,
            None,
            True,
            "item stored: timestamp=t, userId=a@x.io, workspaceId=kit-probe-1",
            pytest.approx(300.0),
        ),
        (
            NEVER,
            None,
            None,
            False,
            "no item for user h in T: the gateway's logs show its $connect finished, and a read after that found "
            "none (1.2 s in)",
            None,
        ),
        (WaitOutcome("bound", 10.0), None, None, False, "no item for user h in T after 10 s", None),
        (
            UNREADABLE,
            None,
            None,
            False,
            "no item for user h in T after 10 s (the gateway's logs could not be read: no; so the probe waited "
            "its full 10 s)",
            None,
        ),
        (
            WaitOutcome("bound", 0.3),
            None,
            "Scan on T failed with X: y",
            False,
            "Scan on T failed with X: y",
            None,
        ),
    ],
)
def test_item_stored(
    outcome: WaitOutcome, item: dict[str, str] | None, error: str | None, ok: bool, detail: str, latency: Any
) -> None:
    result = stored_result(
        outcome,
        table="T",
        whose="user h",
        item=item,
        tokenless=False,
        connected_at=0.2,
        error=error,
        bound_s=10.0,
        started_at=0.0,
    )
    assert (result.ok, result.detail, result.latency_ms) == (ok, detail, latency)


@pytest.mark.parametrize(
    ("outcome", "stored_workspace", "ok", "detail"),
    [
        (WaitOutcome("seen", 0.25), "w", True, "in I under workspaceId=w"),
        (
            WaitOutcome("never", 0.1, "x"),
            None,
            False,
            "not in I under workspaceId=w; the stored item has no workspaceId, so the sparse index never holds it",
        ),
        (
            WaitOutcome("never", 0.1, "x"),
            "v",
            False,
            "not in I under workspaceId=w; the stored item has workspaceId=v",
        ),
        (WaitOutcome("bound", 10.0), "w", False, "not in I under workspaceId=w after 10 s"),
    ],
)
def test_index_visible(outcome: WaitOutcome, stored_workspace: str | None, ok: bool, detail: str) -> None:
    result = index_result(
        outcome,
        index="I",
        workspace="w",
        stored_workspace=stored_workspace,
        error=None,
        bound_s=10.0,
        started_at=0.0,
    )
    assert (result.ok, result.detail) == (ok, detail)


@pytest.mark.parametrize(
    ("item", "never"),
    [({"workspaceId": "w"}, False), ({"workspaceId": "v"}, True), ({}, True)],
)
def test_an_item_without_the_workspace_can_never_be_in_the_index(item: dict[str, str], never: bool) -> None:
    assert never_in_index(item, "w") is never


@pytest.mark.parametrize(
    ("outcome", "by_user_unseen", "ok", "detail"),
    [
        (WaitOutcome("seen", 2.0), False, True, "the item is gone"),
        (
            WaitOutcome("seen", 2.0),
            True,
            True,
            "no item for user h in T; the client closed before the probe looked, so removed and never stored look "
            "alike",
        ),
        (
            WaitOutcome("never", 0.75, "the gateway's logs show its $disconnect finished"),
            False,
            False,
            "the item is still in T: the gateway's logs show its $disconnect finished, and a read after that still "
            "found it (0.8 s in)",
        ),
        (WaitOutcome("bound", 10.0), False, False, "the item is still in T 10 s after the disconnect"),
    ],
)
def test_item_removed(outcome: WaitOutcome, by_user_unseen: bool, ok: bool, detail: str) -> None:
    result = removed_result(
        outcome,
        table="T",
        user="h",
        by_user_unseen=by_user_unseen,
        since=1.0,
        error=None,
        bound_s=10.0,
        started_at=0.0,
    )
    assert (result.ok, result.detail) == (ok, detail)
    assert result.latency_ms == (pytest.approx(1000.0) if ok else None)


@pytest.mark.parametrize(
    ("got", "outcome", "ok", "detail", "latency"),
    [
        (
            {1: 10.0, 2: 12.5},
            WaitOutcome("seen", 1.0),
            True,
            "delivered to 2/2 other clients: client 1 10.0 ms, client 2 12.5 ms",
            12.5,
        ),
        (
            {1: 10.0},
            WaitOutcome("never", 1.0, "the gateway's logs show the sender's message handled"),
            False,
            f"delivered to 1/2 other clients: client 1 10.0 ms; nothing at client(s) 2 within {G:g} s after the "
            "gateway's logs show the sender's message handled",
            10.0,
        ),
        (
            {},
            WaitOutcome("bound", 5.0),
            False,
            "delivered to 0/2 other clients; nothing within 5 s at client(s) 1, 2",
            None,
        ),
    ],
)
def test_deliver(
    got: dict[int, float], outcome: WaitOutcome, ok: bool, detail: str, latency: float | None
) -> None:
    result = delivery_result([1, 2], got, outcome, bound_s=5.0, grace_s=G)
    assert (result.ok, result.detail, result.latency_ms) == (ok, detail, latency)


CLOSED_1009 = close_of(1009, "Message too big", 2.5, by_server=True)


@pytest.mark.parametrize(
    ("error_frame", "echoed", "server_close", "ok", "detail"),
    [
        (None, False, None, True, "sent typing"),
        (
            '{"message": "Forbidden"}',
            False,
            None,
            False,
            'the gateway answered with an error frame: {"message": "Forbidden"}',
        ),
        (
            None,
            True,
            CLOSED_1009.detail,
            True,
            "sent typing; the sender got its own broadcast back; the server closed "
            "the connection with 1009 (Message too big)",
        ),
    ],
)
def test_send(error_frame: str | None, echoed: bool, server_close: str | None, ok: bool, detail: str) -> None:
    assert send_result("typing", error_frame, echoed=echoed, server_close=server_close) == StepResult(
        ok, detail
    )


def test_an_oversize_frame_should_be_closed_with_1009() -> None:
    assert oversize_result(33_000, None, begin=1.0, waited_s=5.0) == StepResult(
        True, "sent a 33,000-byte frame; the connection stayed open for 5 s"
    )
    closed = oversize_result(33_000, CLOSED_1009, begin=2.0, waited_s=5.0)
    assert (closed.ok, closed.close_code, closed.close_reason, closed.latency_ms) == (
        False,
        1009,
        "Message too big",
        500.0,
    )


@pytest.mark.parametrize(
    ("close", "ok", "detail"),
    [
        (None, False, "sent close 1000; no close frame came back within 5 s"),
        (
            close_of(1000, "kit probe done", 1.5, by_server=False),
            True,
            "sent close 1000; the server, answering the probe's close, closed the connection with 1000 (kit probe done)",
        ),
        (
            close_of(
                1006, "", 1.5, by_server=False, lost="the connection was lost without a close frame (OSError)"
            ),
            False,
            "sent close 1000; the connection was lost without a close frame (OSError)",
        ),
    ],
)
def test_disconnect(close: Close | None, ok: bool, detail: str) -> None:
    result = disconnect_result(close, begin=1.0, now=6.0, close_s=5.0)
    assert (result.ok, result.detail) == (ok, detail)


@pytest.mark.parametrize(
    ("closed_early", "close", "reason"),
    [
        (True, None, "the client closed right after connecting (close_after_connect)"),
        (False, CLOSED_1009, "the server closed the connection with 1009 (Message too big)"),
        (False, close_of(1000, "", 1.0, by_server=False), "the connection is closed"),
    ],
)
def test_why_a_closed_client_skips(closed_early: bool, close: Close | None, reason: str) -> None:
    assert closed_reason(closed_early=closed_early, close=close) == reason


# -- the Scan ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "tokenless", "expression"),
    [
        (["a@x.io"], False, "workspaceId = :w OR userId IN (:u0)"),
        (
            [],
            True,
            "workspaceId = :w OR (attribute_not_exists(userId) AND attribute_not_exists(workspaceId))",
        ),
        ([f"u{i}@x.io" for i in range(51)], False, None),  # too many to name: filtered after reading
    ],
)
def test_the_scan_names_the_workspace_and_the_users(
    tokens: list[str], tokenless: bool, expression: str | None
) -> None:
    request = scan_request("T", "w", tokens, tokenless=tokenless)
    assert request["TableName"] == "T" and request["ConsistentRead"] is True
    assert request.get("FilterExpression") == expression


# -- rows ------------------------------------------------------------------------------------------


def test_rows_are_redacted_clipped_never_overwritten_by_a_skip_and_framed_in_step_order() -> None:
    token = "ada@example.com"
    rows = Rows([token])
    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows.add(0, "item-stored", at, StepResult(False, f"no item for {token} " + "x" * 400))
    assert rows.skip(0, ("connect", "item-stored"), "because", at) == 1
    rows.note(0, "item-stored", "noted")
    rows.add(1, "connect", at, StepResult(True, "ok", 1.5, 101))
    frame = rows.frame({0: (user_hash(token), None), 1: (None, "c1")})
    assert dict(frame.dtypes.astype(str)) == dict(PROBE_COLUMNS)
    assert list(zip(frame["client"], frame["step"], strict=True)) == [
        (0, "connect"),
        (0, "item-stored"),
        (1, "connect"),
    ]
    stored = frame.iloc[1]
    assert token not in stored["detail"] and f"<user {user_hash(token)}>" in stored["detail"]
    assert len(stored["detail"]) == 300 and stored["detail"].endswith("…")
    assert frame.iloc[0]["detail"] == "skipped: because" and pd.isna(frame.iloc[0]["ok"])
    assert frame.iloc[2]["http_status"] == 101 and frame.iloc[2]["connection_id"] == "c1"


@pytest.mark.parametrize(
    ("websocket_url", "signed"),
    [
        (
            "ws://127.0.0.1:8765/prod?token=a%40b&workspaceId=w",
            "http://127.0.0.1:8765/prod?token=a%40b&workspaceId=w",
        ),
        (
            "wss://abc.execute-api.us-east-2.amazonaws.com/prod",
            "https://abc.execute-api.us-east-2.amazonaws.com/prod",
        ),
        ("WSS://abc.example.com/prod?x=1", "https://abc.example.com/prod?x=1"),
    ],
)
def test_a_handshake_is_signed_for_its_own_host_path_and_query(websocket_url: str, signed: str) -> None:
    assert signing_url(websocket_url) == signed
