"""A big window read server-side: the lab's Insights evaluator, the first count and its threshold, bisection at
exactly the row cap, failures as one line, and the same diagnosis as downloading every event."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kit import logs
from kit.errors import AwsError
from kit.lab.insights import QueryStore, events_frame
from kit.lab.insights_query import QuerySyntaxError, evaluate

PROJECT_ROOT = Path(__file__).resolve().parents[2]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from bench.insights import GROUPS, EmulatedLogs, account_events, read_and_diagnose  # noqa: E402

DATA = PROJECT_ROOT / "tests" / "data" / "logs"


def _events(*messages: str) -> pd.DataFrame:
    return events_frame(
        [
            ("g", "s", {"timestamp": 1000 * (i + 1), "message": m, "eventId": str(i)})
            for i, m in enumerate(messages)
        ],
        "123456789012",
    )


EVENTS = _events(
    "START RequestId: a",
    "x ERROR y",
    '"route": "message" rid=b',
    "hello",
    '{"connectionId":"c1","eventType":"MESSAGE"}',
)


def _values(rows: list[list[dict[str, str]]], name: str) -> list[str]:
    return [cell["value"] for row in rows for cell in row if cell["field"] == name]


@pytest.mark.parametrize(
    ("query", "field", "expected"),
    [
        ("stats count(*) as events", "events", ["5"]),
        (
            "fields @message | filter @message like /ERROR|START/",
            "@message",
            ["x ERROR y", "START RequestId: a"],
        ),
        ('fields @message | filter @message like "hello"', "@message", ["hello"]),
        (
            'fields @message | filter @message not like /ERROR|START|hello/ and not @message like "connectionId"',
            "@message",
            ['"route": "message" rid=b'],
        ),
        (
            "fields @timestamp | sort @timestamp asc | limit 2",
            "@timestamp",
            ["1970-01-01 00:00:01.000", "1970-01-01 00:00:02.000"],
        ),
        ("fields r | parse @message /RequestId: (?<r>\\w+)/ | filter ispresent(r)", "r", ["a"]),
        (
            "fields r | parse @message /(RequestId: |rid=)(?<r>\\w+)/"
            " | filter r in (parse @message /RequestId: (?<r>\\w+)/ | fields r)",
            "r",
            ["a"],
        ),
        ("fields r | parse @message /(RequestId: |rid=)(?<r>\\w+)/ | filter r not in ['a']", "r", ["b"]),
        ('fields c | parse @message /"connectionId":"(?<c>\\w+)"/ | dedup c', "c", ["c1"]),
        ("stats count(*) as n by @logStream", "n", ["5"]),
        (
            "fields @timestamp | filter @timestamp >= 4000",
            "@timestamp",
            ["1970-01-01 00:00:05.000", "1970-01-01 00:00:04.000"],
        ),
    ],
)
def test_evaluator_answers_the_kits_subset(query: str, field: str, expected: list[str]) -> None:
    assert sorted(_values(evaluate(query, EVENTS), field)) == sorted(expected)


@pytest.mark.parametrize(
    "query", ["fields @message | pattern @message", "filter @message like", "stats p99(x)", "x |"]
)
def test_evaluator_refuses_what_it_does_not_know(query: str) -> None:
    with pytest.raises(QuerySyntaxError):
        evaluate(query, EVENTS)


def test_event_rows_carry_ptr_and_the_limit_caps_them() -> None:
    rows = evaluate("fields @message", EVENTS, limit=2)
    assert len(rows) == 2 and all(_values([row], "@ptr") for row in rows)


def test_kit_queries_parse_in_the_lab() -> None:
    for query in (logs.COUNT_QUERY, *logs.EVIDENCE_QUERIES):
        evaluate(query, EVENTS)
        assert len(query) < 10_000  # StartQuery's limit on queryString


# -- the first count decides ------------------------------------------------------------------------------


TRAFFIC = account_events(3_000, messages=20)


@pytest.mark.parametrize(
    ("threshold", "insights"),
    [(3_000 - 1, True), (3_000, True), (3_000 + 1, False)],  # one below, exactly at, one above the count
)
def test_the_count_against_the_threshold_picks_the_path(threshold: int, insights: bool) -> None:
    client = EmulatedLogs(TRAFFIC)
    fetched = client.read(threshold)
    assert ("FilterLogEvents" in client.calls) is not insights
    assert any("read with Logs Insights" in note for note in fetched.notes) is insights
    assert (len(fetched.events) == len(TRAFFIC)) is not insights


def test_no_insights_falls_back_to_downloading_with_a_note() -> None:
    class Denied(EmulatedLogs):
        def start_query(self, **request: Any) -> dict[str, Any]:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "StartQuery")

    fetched = Denied(TRAFFIC).read(0, ["/aws/lambda/chatgenius-websocket"])
    assert len(fetched.events) > 0
    assert any("every event was downloaded instead" in note for note in fetched.notes)


@pytest.mark.parametrize("status", ["Failed", "Timeout"])
def test_a_failed_evidence_query_is_one_line_naming_the_groups_and_the_next_step(status: str) -> None:
    class Failing(EmulatedLogs):
        def get_query_results(self, **request: Any) -> dict[str, Any]:
            answer = super().get_query_results(**request)
            if answer["status"] == "Complete" and "count(*)" not in self.last_query:
                return {"status": status, "results": []}
            return answer

        def start_query(self, **request: Any) -> dict[str, Any]:
            self.last_query = request["queryString"]
            return super().start_query(**request)

    with pytest.raises(AwsError) as raised:
        Failing(TRAFFIC).read(0, ["/aws/lambda/chatgenius-websocket"])
    text = str(raised.value)
    assert (
        "\n" not in text and "/aws/lambda/chatgenius-websocket" in text and "narrow the time window" in text
    )


def test_a_query_that_never_ends_times_out_as_one_line() -> None:
    class Stuck(EmulatedLogs):
        def get_query_results(self, **request: Any) -> dict[str, Any]:
            self._count("GetQueryResults")
            return {"status": "Running", "results": []}

    client = Stuck(TRAFFIC)
    with pytest.raises(AwsError, match="did not finish within 5 s; narrow the time window"):
        logs.run_insights(
            client,
            ["g"],
            logs.COUNT_QUERY,
            start_s=0,
            end_s=10,
            timeout_s=5,
            sleep=client.clock.sleep,
            clock=client.clock.time,
        )


# -- bisection at exactly the row cap ---------------------------------------------------------------------


class OneRowPerSecond:
    def __init__(self) -> None:
        self.windows: list[tuple[int, int]] = []

    def start_query(self, **request: Any) -> dict[str, str]:
        self.windows.append((request["startTime"], request["endTime"]))
        self.limit = request["limit"]
        return {"queryId": str(len(self.windows) - 1)}

    def get_query_results(self, queryId: str, **_paging: Any) -> dict[str, Any]:
        start, end = self.windows[int(queryId)]
        rows = [[{"field": "@ptr", "value": str(t)}] for t in range(start, end + 1)]
        return {"status": "Complete", "results": rows[: self.limit]}


@pytest.mark.parametrize(("seconds", "split"), [(29, False), (30, True), (31, True)])
def test_a_window_is_split_when_it_returns_exactly_the_cap(seconds: int, split: bool) -> None:
    client = OneRowPerSecond()
    rows = logs.run_insights(
        client, ["g"], "fields @ptr", start_s=0, end_s=seconds - 1, limit=30, sleep=lambda s: None
    )
    assert sorted(int(row["ptr"]) for row in rows) == list(range(seconds))
    assert (len(client.windows) > 1) is split


# -- the same diagnosis -----------------------------------------------------------------------------------


def _scenario_events() -> pd.DataFrame:
    """The recorded scenario (stored, a swallowed AccessDenied, a 502) amid a chat app's routine traffic."""
    found = []
    for name, group in zip(("lambda", "execution", "access"), GROUPS, strict=True):
        document = json.loads((DATA / f"scenario-{name}.json").read_text())
        for event in document["events"]:
            found.append((group, event["logStreamName"], event))
    scenario = events_frame(found, "123456789012")
    traffic = account_events(4_000, messages=30)
    shift = int(scenario["@timestamp"].min()) - int(traffic["@timestamp"].min()) - 500
    traffic = traffic.assign(**{"@timestamp": traffic["@timestamp"] + shift})
    return pd.concat([scenario, traffic], ignore_index=True)


@pytest.mark.parametrize(
    "events", [_scenario_events(), account_events(6_000, messages=40)], ids=["scenario", "healthy"]
)
def test_insights_and_the_download_reach_the_same_verdicts(events: pd.DataFrame) -> None:
    download = read_and_diagnose(events, threshold=len(events) + 1)
    server_side = read_and_diagnose(events, threshold=0)
    assert any("read with Logs Insights" in note for note in server_side.notes)
    assert server_side.rows < download.rows
    assert server_side.verdicts == download.verdicts
    assert server_side.root_cause == download.root_cause


def test_the_scenario_diagnosis_is_not_empty() -> None:
    verdicts = read_and_diagnose(_scenario_events(), threshold=0).verdicts
    assert verdicts.get("error-handling") == "fail" and verdicts.get("handler-crash") == "fail"


def test_query_store_answers_what_it_was_asked() -> None:
    store = QueryStore(lambda account, region, names, start, end: EVENTS)
    started = store.start(
        "1",
        "us-east-1",
        {"logGroupNames": ["g"], "startTime": 0, "endTime": 10, "queryString": "stats count(*) as n"},
    )
    assert _values(store.results(started)["results"], "n") == ["5"]
