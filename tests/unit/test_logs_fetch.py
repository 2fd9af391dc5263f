"""kit.logs fetching logic on recorded pages: empty pages, missing groups, rate limits, Insights bisection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from botocore.exceptions import ClientError

from kit import logs
from kit.errors import AwsError, KitError


def _event(i: int, stream: str = "s") -> dict[str, Any]:
    return {
        "logStreamName": stream,
        "timestamp": 1_700_000_000_000 + i,
        "message": f"m{i}",
        "ingestionTime": 1_700_000_000_500 + i,
        "eventId": f"e{i}",
    }


class RecordedLogs:
    """A FilterLogEvents stand-in that answers from recorded pages and records each call."""

    def __init__(self, pages: list[dict[str, Any]] | ClientError) -> None:
        self.pages = pages
        self.calls: list[dict[str, Any]] = []

    def filter_log_events(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if isinstance(self.pages, ClientError):
            raise self.pages
        return self.pages[len(self.calls) - 1]


def _client_error(code: str, operation: str = "FilterLogEvents") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} happened"}}, operation)


@pytest.mark.parametrize(
    ("pages", "expected_events", "expected_calls", "empty_pages"),
    [
        ([{"events": [_event(1)]}], 1, 1, 0),
        # Empty pages that still carry a token must not end the listing.
        (
            [{"events": [], "nextToken": "a"}, {"events": [], "nextToken": "b"}, {"events": [_event(2)]}],
            1,
            3,
            2,
        ),
        (
            [
                {"events": [_event(1)], "nextToken": "a"},
                {"events": [_event(2)], "nextToken": "b"},
                {"events": []},
            ],
            2,
            3,
            1,
        ),
        # A token the service repeats ends the listing instead of looping forever.
        ([{"events": [_event(1)], "nextToken": "a"}, {"events": [], "nextToken": "a"}], 1, 2, 1),
    ],
)
def test_pagination(
    pages: list[dict[str, Any]], expected_events: int, expected_calls: int, empty_pages: int
) -> None:
    client = RecordedLogs(pages)
    report = logs.FetchReport("/aws/lambda/fn")
    events = list(logs.filter_events(client, "/aws/lambda/fn", start_ms=1, end_ms=2, report=report))
    assert len(events) == expected_events
    assert len(client.calls) == expected_calls
    assert report.pages == expected_calls and report.empty_pages == empty_pages
    assert all(e["logGroupName"] == "/aws/lambda/fn" for e in events)
    assert [c.get("nextToken") for c in client.calls][1:] == [p.get("nextToken") for p in pages][
        : expected_calls - 1
    ]


def test_missing_group_is_evidence_not_an_error() -> None:
    report = logs.FetchReport("/aws/lambda/gone")
    events = list(
        logs.filter_events(
            RecordedLogs(_client_error("ResourceNotFoundException")),
            "/aws/lambda/gone",
            start_ms=1,
            end_ms=2,
            report=report,
        )
    )
    assert events == [] and report.status == "missing"


def test_other_errors_name_the_group_and_the_code() -> None:
    with pytest.raises(
        AwsError, match=r"FilterLogEvents for log group /aws/lambda/fn failed with AccessDeniedException"
    ) as raised:
        list(
            logs.filter_events(
                RecordedLogs(_client_error("AccessDeniedException")), "/aws/lambda/fn", start_ms=1, end_ms=2
            )
        )
    assert raised.value.code == "AccessDeniedException" and raised.value.resource == "/aws/lambda/fn"


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        if len(self.sleeps) > 100:
            raise AssertionError(f"the limiter is spinning: {self.sleeps[-3:]}")
        self.sleeps.append(seconds)
        self.now += seconds


def limited(clock: FakeClock, rate: float = 4) -> logs.RateLimiter:
    return logs.RateLimiter(rate=rate, clock=lambda: clock.now, sleep=clock.sleep)


def test_rate_limiter_keeps_every_one_second_window_under_the_rate() -> None:
    clock = FakeClock()
    limiter, at = limited(clock), []
    for _ in range(9):
        limiter.acquire()
        at.append(clock.now)
    assert at == [0.0] * 4 + [1.0] * 4 + [2.0]  # a read of a few groups waits for nothing
    assert all(sum(1 for t in at if start <= t < start + 1) <= 4 for start in at)


@pytest.mark.parametrize(
    ("elapsed", "waits"),
    [
        (1.0, []),  # exactly a second after the oldest call: a free slot
        (0.75, [pytest.approx(0.25)]),  # just inside the window: until the oldest is a second old
        (0.0, [1.0]),
    ],
)
def test_rate_limiter_at_the_window_edge(elapsed: float, waits: list[Any]) -> None:
    clock = FakeClock()
    limiter = limited(clock)
    for _ in range(4):
        limiter.acquire()
    clock.now += elapsed
    limiter.acquire()
    assert clock.sleeps == waits


def test_rate_limiter_rounds_down_and_allows_at_least_one_call() -> None:
    assert limited(FakeClock(), 4.9).calls == 4
    assert limited(FakeClock(), 0.5).calls == 1
    with pytest.raises(ValueError, match="positive"):
        limited(FakeClock(), 0)


def test_rate_limiter_ends_when_a_wait_is_too_small_to_move_the_clock() -> None:
    """``oldest + 1`` rounds to ``now`` while ``now - oldest`` is a rounding error short of a second: the wait
    is 0 and the clock never moves, so a limiter that insists on a whole second spins for ever (the kind of
    clock value the insights bench's fake clock reaches)."""
    clock = FakeClock(15.366819626253973)
    limiter = limited(clock)
    for _ in range(4):
        limiter.acquire()
    clock.now = 15.366819626253973 + 1.0
    assert clock.now - 15.366819626253973 < 1.0  # the boundary this test is about
    limiter.acquire()
    assert len(clock.sleeps) <= 1


def test_fetch_events_frame_contract_and_order() -> None:
    pages = [{"events": [_event(3, "b"), _event(1, "a")], "nextToken": "t"}, {"events": [_event(2, "a")]}]
    fetched = logs.fetch_events(
        RecordedLogs(pages),
        ["/aws/lambda/fn"],
        start=datetime(2023, 1, 1, tzinfo=UTC),
        end=datetime(2030, 1, 1, tzinfo=UTC),
        limiter=logs.RateLimiter(rate=1000),
    )
    assert list(fetched.events.columns) == list(logs.EVENT_COLUMNS)
    assert fetched.events["message"].tolist() == ["m1", "m2", "m3"]
    assert dict(fetched.events.dtypes.astype(str)) == logs.EVENT_COLUMNS | {"log_group": "string"}
    assert fetched.report.loc[0, "events"] == 3


def test_fetch_events_empty_has_the_columns() -> None:
    fetched = logs.fetch_events(
        RecordedLogs([{"events": []}]),
        ["g"],
        start=datetime(2023, 1, 1, tzinfo=UTC),
        end=datetime(2023, 1, 2, tzinfo=UTC),
        limiter=logs.RateLimiter(rate=1000),
    )
    assert fetched.events.empty and list(fetched.events.columns) == list(logs.EVENT_COLUMNS)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(KitError, match="timezone-aware"):
        logs.fetch_events(
            RecordedLogs([{"events": []}]),
            ["g"],
            start=datetime(2023, 1, 1),
            end=datetime(2023, 1, 2, tzinfo=UTC),
        )


class RecordedInsights:
    """StartQuery/GetQueryResults stand-in: rows per window; statuses to walk through before the answer."""

    def __init__(self, rows_in: Any, statuses: list[str] | None = None) -> None:
        self.rows_in = rows_in
        self.statuses = statuses or ["Complete"]
        self.queries: dict[str, tuple[int, int]] = {}
        self.polls: dict[str, int] = {}
        self.stopped: list[str] = []

    def start_query(self, **kwargs: Any) -> dict[str, str]:
        query_id = f"q{len(self.queries)}"
        self.queries[query_id] = (kwargs["startTime"], kwargs["endTime"])
        self.limit = kwargs["limit"]
        return {"queryId": query_id}

    def get_query_results(self, queryId: str, maxItems: int = 10_000, nextToken: str = "") -> dict[str, Any]:
        poll = self.polls.get(queryId, 0)
        self.polls[queryId] = poll + 1
        status = self.statuses[min(poll, len(self.statuses) - 1)]
        start, end = self.queries[queryId]
        rows = [
            [{"field": "@timestamp", "value": str(t * 1000)}, {"field": "@ptr", "value": f"p{t}"}]
            for t in self.rows_in(start, end)
        ][: self.limit]
        offset = int(nextToken or 0)  # pages of maxItems, as GetQueryResults answers since 2026
        page: dict[str, Any] = {"status": status, "results": rows[offset : offset + maxItems]}
        if status == "Complete" and offset + maxItems < len(rows):
            page["nextToken"] = str(offset + maxItems)
        return page

    def stop_query(self, queryId: str) -> None:
        self.stopped.append(queryId)


def test_insights_walks_statuses_until_complete() -> None:
    client = RecordedInsights(lambda s, e: range(s, e + 1), ["Scheduled", "Running", "Complete"])
    rows = logs.run_insights(client, ["g"], "fields @timestamp", start_s=10, end_s=14, sleep=lambda s: None)
    assert [r["ptr"] for r in rows] == ["p10", "p11", "p12", "p13", "p14"]
    assert client.polls["q0"] == 3


@pytest.mark.parametrize("status", ["Failed", "Cancelled", "Timeout", "Unknown"])
def test_insights_terminal_failures_raise(status: str) -> None:
    client = RecordedInsights(lambda s, e: [], ["Running", status])
    with pytest.raises(AwsError, match=f"ended with status {status}"):
        logs.run_insights(client, ["g"], "fields @message", start_s=0, end_s=10, sleep=lambda s: None)


def test_insights_bisects_when_a_window_hits_the_cap() -> None:
    # One row per second over 0..99 with a cap of 30: the kit must split windows until none is capped.
    client = RecordedInsights(lambda s, e: range(s, e + 1))
    rows = logs.run_insights(
        client, ["g"], "fields @timestamp", start_s=0, end_s=99, limit=30, sleep=lambda s: None
    )
    assert sorted(int(r["ptr"][1:]) for r in rows) == list(range(100))
    assert len(client.queries) > 1


def test_insights_start_time_is_in_seconds() -> None:
    client = RecordedInsights(lambda s, e: [])
    logs.run_insights(
        client, ["g"], "fields @timestamp", start_s=1_700_000_000, end_s=1_700_000_060, sleep=lambda s: None
    )
    assert client.queries["q0"] == (1_700_000_000, 1_700_000_060)


def test_insights_frame_parses_both_timestamp_forms() -> None:
    frame = logs.insights_frame(
        [
            {"timestamp": "2023-12-07 14:12:39.966", "message": "a"},
            {"timestamp": "1701958359966", "message": "b"},
        ]
    )
    expected = pd.Timestamp("2023-12-07 14:12:39.966", tz="UTC")
    assert frame["timestamp"].tolist() == [expected, expected]


@pytest.mark.parametrize(
    ("configuration", "group", "how"),
    [
        ({"FunctionName": "fn"}, "/aws/lambda/fn", "default"),
        (
            {"FunctionName": "fn", "LoggingConfig": {"LogGroup": "/custom/chat"}},
            "/custom/chat",
            "LoggingConfig",
        ),
        ({"FunctionName": "fn", "LoggingConfig": None}, "/aws/lambda/fn", "default"),
    ],
)
def test_lambda_log_group(configuration: dict[str, Any], group: str, how: str) -> None:
    found, found_from = logs.lambda_log_group(configuration)
    assert found == group and how in found_from


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        (
            {
                "AccessLogSettings": {
                    "DestinationArn": "arn:aws:logs:us-east-2:1:log-group:/aws/apigateway/access"
                }
            },
            "/aws/apigateway/access",
        ),
        ({"AccessLogSettings": {"DestinationArn": "arn:aws:logs:us-east-2:1:log-group:access:*"}}, "access"),
        ({"AccessLogSettings": {}}, None),
        ({}, None),
    ],
)
def test_access_log_group(stage: dict[str, Any], expected: str | None) -> None:
    assert logs.access_log_group(stage) == expected


def test_log_groups_frame() -> None:
    frame = logs.log_groups_frame(
        [{"FunctionName": "chat"}],
        "abc123",
        {
            "StageName": "prod",
            "DefaultRouteSettings": {"LoggingLevel": "INFO"},
            "AccessLogSettings": {"DestinationArn": "arn:aws:logs:r:1:log-group:acc"},
        },
    )
    assert frame["source"].tolist() == ["lambda", "apigw_exec", "apigw_access"]
    assert frame["log_group"].tolist() == [
        "/aws/lambda/chat",
        "API-Gateway-Execution-Logs_abc123/prod",
        "acc",
    ]
    assert logs.log_groups_frame([], None, None).columns.tolist() == list(logs.LOG_GROUP_COLUMNS)


@pytest.mark.parametrize(
    ("kind", "calls", "settle_s"),
    [("aws", 4, 0.0), ("lab", 100, logs.LAB_SETTLE_S)],  # AWS: under the shared 5 TPS quota; the lab has none
)
def test_the_log_reads_keep_the_targets_pace(kind: str, calls: int, settle_s: float) -> None:
    assert logs.limiter_for(kind).calls == calls
    assert logs.settle_for(kind) == settle_s
