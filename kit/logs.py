"""CloudWatch Logs → DataFrames: the fetching half (the parsing half is :mod:`kit.logparse`).

Fetching follows what CloudWatch Logs actually does, not what one would hope:

- ``FilterLogEvents`` pages may be empty and still carry ``nextToken``; only a missing token ends the
  listing. Calls share an account-wide quota of 5 per second, so every call here goes through a token bucket
  kept below it (4/s by default), on top of botocore's adaptive retries that :mod:`kit.target` configures.
- Logs Insights takes **seconds**, not milliseconds; a query ends in Complete, Failed, Cancelled, Timeout
  or Unknown (all but Complete are errors here, never an endless poll); a result that hits the row cap is
  split into two time windows and fetched again, so nothing is silently cut off.
- Log groups are discovered from configuration (the function's ``LoggingConfig.LogGroup`` or
  ``/aws/lambda/<name>``; the stage's execution-log group and access-log destination), never hard-coded.
- Events reach CloudWatch seconds after they happen: a window that ends near "now" is read again after a
  short wait until it stops growing (bounded), and the fetch report says so.

This module reads only; it never creates or deletes log groups.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError
from tqdm import tqdm

from kit import frames
from kit.errors import AwsError, KitError, error_code
from kit.output import show_progress

log = logging.getLogger("kit.logs")

# The lab's log writer puts a request's lines into CloudWatch within one 0.1 s batch: reads this far apart
# that agree have every line of what ended before the first. On AWS ingestion takes seconds, unbounded: no
# re-read.
LAB_SETTLE_S = 0.3
LAB_FILTER_LOG_EVENTS_TPS = 100.0
FILTER_LOG_EVENTS_TPS = 4.0  # below the 5 TPS account quota, which the console and other tools share
# StartQuery's limit: 100,000 rows since 2026, read in pages of at most 10,000 (GetQueryResults' maxItems and
# nextToken); an endpoint that still caps it at 10,000 (InvalidParameterException) is asked again with that.
INSIGHTS_ROW_CAP = 100_000
INSIGHTS_LEGACY_ROW_CAP = 10_000
INSIGHTS_PAGE_ROWS = 10_000
TERMINAL_QUERY_STATUSES = frozenset({"Complete", "Failed", "Cancelled", "Timeout", "Unknown"})

EVENT_COLUMNS: dict[str, str] = {
    "log_group": "string",
    "log_stream": "string",
    "event_id": "string",
    "timestamp": "Int64",  # epoch ms, as CloudWatch gives it; kit.logparse turns it into UTC datetimes
    "ingestion_time": "Int64",
    "message": "string",
}
LOG_GROUP_COLUMNS: dict[str, str] = {
    "source": "string",  # lambda | apigw_exec | apigw_access
    "log_group": "string",
    "owner": "string",  # the function name or the API id/stage
    "found_from": "string",  # where the name came from, in words
}
FETCH_REPORT_COLUMNS: dict[str, str] = {
    "log_group": "string",
    "events": "Int64",
    "pages": "Int64",
    "empty_pages": "Int64",
    "status": "string",  # ok | missing | error
    "detail": "string",
}


# --------------------------------------------------------------------------------------------------------
# Rate limiting
# --------------------------------------------------------------------------------------------------------


TOKEN_EPSILON = 1e-9
RATE_WINDOW_S = 1.0


class RateLimiter:
    """At most ``rate`` calls (rounded down, at least one) in any one-second window. Thread-safe.

    A sliding window: the first ``rate`` calls go at once, and each call after them waits until the oldest of
    the last ``rate`` is a second old. No window ever holds more than the quota (a token bucket with a burst
    can hold burst + rate), and a read of a few log groups does not wait between them.
    """

    def __init__(
        self,
        rate: float = FILTER_LOG_EVENTS_TPS,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.calls = max(1, int(rate))
        self._recent: deque[float] = deque()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            while True:
                now = self._clock()
                # Within a rounding error of a second counts as one: with a clock whose value is large, a
                # wait of 1e-15 s may not move it at all, and the loop would never end.
                while self._recent and now - self._recent[0] >= RATE_WINDOW_S - TOKEN_EPSILON:
                    self._recent.popleft()
                if len(self._recent) < self.calls:
                    self._recent.append(now)
                    return
                self._sleep(self._recent[0] + RATE_WINDOW_S - now)


def settle_for(target_kind: str) -> float:
    """``fetch_events``'s ``settle_s`` for a ``target_kind`` target (see :data:`LAB_SETTLE_S`)."""
    return LAB_SETTLE_S if target_kind == "lab" else 0.0


def limiter_for(target_kind: str) -> RateLimiter:
    """FilterLogEvents' limiter for a ``target_kind`` target: below the account's 5 TPS quota on AWS, which
    the console and other tools share; on the lab, which has no such quota and nobody to share it with,
    :data:`LAB_FILTER_LOG_EVENTS_TPS` (only a runaway loop would reach it)."""
    return RateLimiter(LAB_FILTER_LOG_EVENTS_TPS if target_kind == "lab" else FILTER_LOG_EVENTS_TPS)


# --------------------------------------------------------------------------------------------------------
# FilterLogEvents
# --------------------------------------------------------------------------------------------------------


@dataclass
class FetchReport:
    log_group: str
    events: int = 0
    pages: int = 0
    empty_pages: int = 0
    status: str = "ok"
    detail: str = ""


def filter_events(
    client: Any,
    log_group: str,
    *,
    start_ms: int,
    end_ms: int,
    filter_pattern: str | None = None,
    stream_names: list[str] | None = None,
    limiter: RateLimiter | None = None,
    report: FetchReport | None = None,
    max_pages: int = 10_000,
    page_size: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Every event of ``log_group`` in ``[start_ms, end_ms]``, page by page, tolerating empty pages.

    A missing log group yields nothing and sets the report's status to ``missing`` (that is evidence: the
    function was never invoked, or logs go elsewhere). Other errors raise :class:`AwsError`.
    """
    report = report or FetchReport(log_group)
    kwargs: dict[str, Any] = {"logGroupName": log_group, "startTime": start_ms, "endTime": end_ms}
    if filter_pattern:
        kwargs["filterPattern"] = filter_pattern
    if stream_names:
        kwargs["logStreamNames"] = stream_names[:100]  # the API's cap; callers batch beyond it
    if page_size:
        kwargs["limit"] = page_size
    seen_tokens: set[str] = set()
    for _ in range(max_pages):
        if limiter is not None:
            limiter.acquire()
        try:
            page = client.filter_log_events(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) == "ResourceNotFoundException":
                report.status, report.detail = "missing", f"log group {log_group} does not exist"
                return
            raise AwsError.from_botocore(
                exc,
                "logs",
                "FilterLogEvents",
                log_group,
                resource_type="log group",
                otherwise="check the role's logs:FilterLogEvents permission and the region",
            ) from exc
        report.pages += 1
        events = page.get("events", [])
        if not events:
            report.empty_pages += 1
        for event in events:
            report.events += 1
            yield {**event, "logGroupName": log_group}
        token = page.get("nextToken")
        if not token:
            return
        if token in seen_tokens:  # the service repeating a token means the end (boto's paginator raises)
            return
        seen_tokens.add(token)
        kwargs["nextToken"] = token
    report.status, report.detail = "error", f"stopped after {max_pages} pages; narrow the time window"


def events_rows(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """boto3 event dicts → rows in :data:`EVENT_COLUMNS` order (pure)."""
    return [
        {
            "log_group": event.get("logGroupName"),
            "log_stream": event.get("logStreamName"),
            "event_id": event.get("eventId"),
            "timestamp": event.get("timestamp"),
            "ingestion_time": event.get("ingestionTime"),
            "message": event.get("message"),
        }
        for event in events
    ]


@dataclass
class LogFetch:
    """What :func:`fetch_events` read: the events and, per group, how the fetch went."""

    events: pd.DataFrame
    report: pd.DataFrame
    window: tuple[datetime, datetime]
    notes: list[str] = field(default_factory=list)


def _to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise KitError(
            "time windows must be timezone-aware (UTC); naive datetimes shift by the local offset."
        )
    return int(moment.timestamp() * 1000)


def _counted(events: Iterable[dict[str, Any]], bar: Any, report: FetchReport) -> Iterator[dict[str, Any]]:
    for event in events:
        bar.update(1)
        bar.set_postfix(pages=report.pages, refresh=False)
        yield event


def fetch_events(
    client: Any,
    log_groups: Iterable[str],
    *,
    start: datetime,
    end: datetime | None = None,
    filter_pattern: str | None = None,
    limiter: RateLimiter | None = None,
    settle_s: float = 0.0,
    settle_rounds: int = 3,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    progress: bool = False,
) -> LogFetch:
    """Read every event of ``log_groups`` between ``start`` and ``end`` (default: now) into a frame.

    When the window ends within ``settle_s`` seconds of now, the groups are read again after
    ``settle_s`` until two reads agree (at most ``settle_rounds`` times): CloudWatch ingests with a delay.
    ``progress``: a bar per group counting events and pages, when stderr is a terminal (a long window is read
    at the API's few pages a second).
    """
    limiter = limiter or RateLimiter()
    end = end or now()
    groups = list(dict.fromkeys(log_groups))
    notes: list[str] = []

    def read_all() -> tuple[list[dict[str, Any]], list[FetchReport]]:
        rows: list[dict[str, Any]] = []
        reports = []
        for group in groups:
            report = FetchReport(group)
            events = filter_events(
                client,
                group,
                start_ms=_to_ms(start),
                end_ms=_to_ms(end),
                filter_pattern=filter_pattern,
                limiter=limiter,
                report=report,
            )
            with tqdm(
                desc=f"logs {group}", unit=" events", disable=not show_progress(progress), leave=False
            ) as bar:
                rows.extend(events_rows(_counted(events, bar, report)))
            reports.append(report)
        return rows, reports

    rows, reports = read_all()
    if settle_s > 0 and (now() - end).total_seconds() < settle_s:
        for _ in range(settle_rounds):
            time.sleep(settle_s)
            again, reports = read_all()
            settled = len(again) == len(rows)
            rows = again
            if settled:
                break
        else:
            notes.append(f"events were still arriving after {settle_rounds} re-reads; read again later")
    frame = frames.from_rows(rows, EVENT_COLUMNS)
    if not frame.empty:
        frame = frame.drop_duplicates(subset=["log_group", "event_id"]).sort_values(
            ["timestamp", "log_group", "log_stream"], kind="stable", ignore_index=True
        )
    report_frame = frames.from_rows([r.__dict__ for r in reports], FETCH_REPORT_COLUMNS)
    return LogFetch(frame, report_frame, (start, end), notes)


# --------------------------------------------------------------------------------------------------------
# Logs Insights
# --------------------------------------------------------------------------------------------------------


def _insights_rows(results: list[list[dict[str, str]]]) -> list[dict[str, str]]:
    return [{field["field"].lstrip("@"): field.get("value", "") for field in row} for row in results]


def _every_page(client: Any, query_id: str, answer: dict[str, Any]) -> dict[str, Any]:
    """A complete query's answer with the rows of every page (``nextToken``) in ``results``."""
    results = list(answer.get("results", []))
    token = answer.get("nextToken")
    while token:
        page = client.get_query_results(queryId=query_id, nextToken=token, maxItems=INSIGHTS_PAGE_ROWS)
        results += page.get("results", [])
        token = page.get("nextToken")
    return {**answer, "results": results}


def run_insights(
    client: Any,
    log_groups: list[str],
    query: str,
    *,
    start_s: int,
    end_s: int,
    limit: int = INSIGHTS_ROW_CAP,
    poll_s: float = 1.0,
    timeout_s: float = 300.0,
    min_window_s: int = 1,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[dict[str, str]]:
    """Run a Logs Insights query over ``[start_s, end_s]`` (epoch **seconds**, both inclusive).

    When a window returns ``limit`` rows it is bisected and each half is queried again, so results are
    never silently truncated; rows are de-duplicated by ``@ptr``. Raises :class:`AwsError` when a query ends
    in Failed, Cancelled, Timeout or Unknown, or does not end within ``timeout_s`` (by ``clock``), naming the
    log groups and the next step.
    """
    groups = ", ".join(log_groups)
    try:
        try:
            started = client.start_query(
                logGroupNames=log_groups, startTime=start_s, endTime=end_s, queryString=query, limit=limit
            )
        except ClientError as exc:
            if error_code(exc) != "InvalidParameterException" or limit <= INSIGHTS_LEGACY_ROW_CAP:
                raise
            limit = INSIGHTS_LEGACY_ROW_CAP  # an endpoint that predates 100,000-row answers
            started = client.start_query(
                logGroupNames=log_groups, startTime=start_s, endTime=end_s, queryString=query, limit=limit
            )
    except (ClientError, BotoCoreError) as exc:
        raise AwsError.from_botocore(
            exc,
            "logs",
            "StartQuery",
            ", ".join(log_groups),
            resource_type="log groups",
            otherwise="check the query and the role's logs:StartQuery permission",
        ) from exc
    query_id = started["queryId"]
    deadline = clock() + timeout_s
    delay = min(poll_s, 0.2)
    while True:
        try:
            answer = client.get_query_results(queryId=query_id, maxItems=INSIGHTS_PAGE_ROWS)
            if answer.get("status") == "Complete":
                answer = _every_page(client, query_id, answer)
        except (ClientError, BotoCoreError) as exc:
            raise AwsError.from_botocore(
                exc,
                "logs",
                "GetQueryResults",
                groups,
                resource_type="log groups",
                otherwise="check the role's logs:GetQueryResults permission",
            ) from exc
        status = answer.get("status", "Unknown")
        if status in TERMINAL_QUERY_STATUSES:
            break
        if clock() > deadline:
            with contextlib.suppress(ClientError, BotoCoreError):
                client.stop_query(queryId=query_id)
            raise AwsError(
                f"Logs Insights query {query_id} on {groups} did not finish within {timeout_s:.0f} s; "
                "narrow the time window (--since) or read again later.",
                service="logs",
                operation="GetQueryResults",
                code="Timeout",
                resource=query_id,
            )
        sleep(delay)
        delay = min(delay * 2, poll_s)
    if status != "Complete":
        raise AwsError(
            f"Logs Insights query {query_id} on {groups} ended with status {status}; its results are "
            "incomplete: narrow the time window (--since) or read again later.",
            service="logs",
            operation="GetQueryResults",
            code=status,
            resource=query_id,
        )
    rows = _insights_rows(answer.get("results", []))
    if len(rows) < limit or end_s - start_s < 2 * min_window_s:
        if len(rows) >= limit:
            log.warning(
                "Logs Insights returned %d rows for a %d s window; some may be missing",
                len(rows),
                end_s - start_s + 1,
            )
        return rows
    middle = (start_s + end_s) // 2
    again = functools.partial(
        run_insights,
        client,
        log_groups,
        query,
        limit=limit,
        poll_s=poll_s,
        timeout_s=timeout_s,
        min_window_s=min_window_s,
        sleep=sleep,
        clock=clock,
    )
    halves = again(start_s=start_s, end_s=middle) + again(start_s=middle + 1, end_s=end_s)
    seen: set[str] = set()
    unique = []
    for row in halves:
        pointer = row.get("ptr")
        if pointer is not None and pointer in seen:
            continue
        if pointer is not None:
            seen.add(pointer)
        unique.append(row)
    return unique


def insights_frame(rows: list[dict[str, str]]) -> pd.DataFrame:
    """Insights rows → a frame; ``timestamp`` parsed as UTC (``YYYY-MM-DD HH:MM:SS.mmm`` or epoch ms)."""
    frame = (
        pd.DataFrame(rows).astype("string")
        if rows
        else pd.DataFrame({"timestamp": pd.Series(dtype="string")})
    )
    if "timestamp" in frame:
        raw = frame["timestamp"]
        numeric = pd.to_numeric(raw, errors="coerce")
        parsed = pd.to_datetime(numeric, unit="ms", utc=True)
        text = pd.to_datetime(
            raw.where(numeric.isna()), utc=True, errors="coerce", format="%Y-%m-%d %H:%M:%S.%f"
        )
        frame["timestamp"] = parsed.fillna(text)
    return frame


# --------------------------------------------------------------------------------------------------------
# A big window: the evidence read server-side with Logs Insights
# --------------------------------------------------------------------------------------------------------

INSIGHTS_THRESHOLD_EVENTS = 200_000
"""A window with at least this many events (all groups together) is read with Logs Insights; below it, every
event is downloaded. 200,000 events are ~40 s of FilterLogEvents at its 5 calls/s (pages of ~5,000 events of
~200 bytes, cut at 1 MB); an Insights query takes seconds whatever the size."""

COUNT_QUERY = "stats count(*) as events"
"""The first, cheap count. Why this and not something else: DescribeLogStreams' ``storedBytes`` is no longer
updated and its event times are eventually consistent (off by up to an hour), DescribeLogGroups' bytes cover
the whole retention, not the window, and one FilterLogEvents page says nothing of the total (pages may be
empty while more follow). ``stats count(*)`` is exact for the window, returns one row, and costs one scan of
the window (Insights bills per GB scanned: about $0.001 for a million Lambda lines). It also tells whether
Insights can be used at all (AccessDenied, an endpoint without it) before anything depends on it."""

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_LAMBDA_REQUEST = rf"parse @message /(?<requestId>{_UUID})/"
_GATEWAY_REQUEST = r"parse @message /^\((?<gatewayRequestId>[^)\s]+)\)/"
# A Lambda request is routine when one of its lines is the handler's own JSON line for a route other than
# $connect/$disconnect, with an outcome other than "stored" and no error code (the kit's handler writes one
# per event); it stays interesting when any of its lines says error, timeout or write.
_ROUTINE_LAMBDA = (
    r'"route": ?"(?!\$connect"|\$disconnect")[^"]*".*"outcome": ?"(?!stored")[^"]*".*"error_code": ?null'
)
_INTERESTING = (
    r"ERROR|Exception|Invoke Error|Error handling|Runtime[. ]|PutItem|Task timed out|Status: (error|timeout)|"
    r'"outcome": ?"stored"|Stored connection|not authorized'
)
# An API Gateway request is routine when it is a MESSAGE answered 2xx with no "Execution failed" line.
_ROUTINE_GATEWAY = r"with response status code \[2\d\d\]\."
_ROUTINE_ACCESS = r'"eventType": ?"MESSAGE".*"status": ?"2\d\d"|"status": ?"2\d\d".*"eventType": ?"MESSAGE"'

EVIDENCE_QUERY = f"""fields @timestamp, @message, @logStream, @log
| {_LAMBDA_REQUEST}
| {_GATEWAY_REQUEST}
| filter (not ispresent(requestId) and not ispresent(gatewayRequestId)
          and not @message like /{_ROUTINE_ACCESS}/)
    or (ispresent(gatewayRequestId) and (
          gatewayRequestId not in ({_GATEWAY_REQUEST} | filter @message like /{_ROUTINE_GATEWAY}/
                                   | fields gatewayRequestId)
          or gatewayRequestId in ({_GATEWAY_REQUEST} | filter @message like /Execution failed/
                                  | fields gatewayRequestId)
          or gatewayRequestId in ({_GATEWAY_REQUEST} | {_LAMBDA_REQUEST}
                                  | filter requestId in ({_LAMBDA_REQUEST}
                                                         | filter @message like /{_INTERESTING}/
                                                         | fields requestId)
                                  | fields gatewayRequestId)))
    or (ispresent(requestId) and not ispresent(gatewayRequestId) and (
          requestId not in ({_LAMBDA_REQUEST} | filter @message like /{_ROUTINE_LAMBDA}/ | fields requestId)
          or requestId in ({_LAMBDA_REQUEST} | filter @message like /{_INTERESTING}/ | fields requestId)))"""
"""Every line the checks read, and none of the routine traffic: the lines of each Lambda request and each API
Gateway request (whole, by request id, so the parser sees them as it would downloaded) except the requests
that are provably routine: a message answered 2xx that logged no error, no timeout and no write (a routine
request whose Lambda invocation wrote or failed is kept with its gateway lines). Lines that name no request
(INIT_START, a print, a Python uncaught error) are all kept; the access log keeps all but routine MESSAGEs.
So the rows grow with connections, failures and writes, not with messages. A handler whose lines say nothing
of its route keeps every request: the read is then as big as the download, never different from it."""

FIRST_MESSAGES_QUERY = r"""fields @timestamp, @message, @logStream, @log
| filter @message like /received message from client|"eventType": ?"MESSAGE"/
| parse @message /(Connection Id: |"connectionId": ?")(?<connectionId>[^\]"\s]+)/
| sort @timestamp asc
| dedup connectionId"""
"""The first MESSAGE line of each connection (execution or access log): what the checks ask of the routine
messages is only whether, and when first, a connection talked."""

EVIDENCE_QUERIES = (EVIDENCE_QUERY, FIRST_MESSAGES_QUERY)


def insights_events(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Insights rows (``@`` stripped, :func:`_insights_rows`) → boto3-like event dicts (pure).

    ``@log`` is ``account-id:log-group``; ``@ptr`` stands in for the event id (it is unique per event);
    ``@timestamp`` comes back as ``YYYY-MM-DD HH:MM:SS.mmm`` UTC (or epoch ms from some emulators).
    """
    stamps = insights_frame([{"timestamp": row.get("timestamp", "")} for row in rows])["timestamp"]
    epoch_ms = [None if pd.isna(stamp) else int(stamp.value // 1_000_000) for stamp in stamps]
    events = []
    for row, at in zip(rows, epoch_ms, strict=True):
        group = row.get("log", "")
        events.append(
            {
                "logGroupName": group.split(":", 1)[1] if ":" in group else group,
                "logStreamName": row.get("logStream"),
                "eventId": row.get("ptr"),
                "timestamp": at,
                "ingestionTime": None,
                "message": row.get("message"),
            }
        )
    return events


def count_events(client: Any, log_groups: list[str], *, start_s: int, end_s: int, **insights: Any) -> int:
    """The number of events of ``log_groups`` in ``[start_s, end_s]``, counted by Logs Insights (one row)."""
    rows = run_insights(client, log_groups, COUNT_QUERY, start_s=start_s, end_s=end_s, **insights)
    return int(float(rows[0].get("events", 0))) if rows else 0


def read_evidence_insights(
    client: Any, log_groups: list[str], *, start_s: int, end_s: int, **insights: Any
) -> list[dict[str, str]]:
    """The rows of :data:`EVIDENCE_QUERIES` over the window, each event once (by ``@ptr``)."""
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    for query in EVIDENCE_QUERIES:
        for row in run_insights(client, log_groups, query, start_s=start_s, end_s=end_s, **insights):
            pointer = row.get("ptr", "")
            if pointer in seen:
                continue
            seen.add(pointer)
            rows.append(row)
    return rows


def insights_unavailable(exc: AwsError) -> bool:
    """Whether a failed count means "no Insights here" (fall back to downloading), not a failed read."""
    return exc.code in {
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidAction",
        "UnknownOperationException",
        "MalformedQueryException",
        "InvalidParameterException",
        "403",
        "404",
        "501",
    }


def read_logs(
    client: Any,
    log_groups: Iterable[str],
    *,
    start: datetime,
    end: datetime | None = None,
    threshold: int = INSIGHTS_THRESHOLD_EVENTS,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    insights: dict[str, Any] | None = None,
    **download: Any,
) -> LogFetch:
    """The window's events: downloaded (:func:`fetch_events`) when small, else read with Logs Insights.

    A first count (:data:`COUNT_QUERY`) decides: ``threshold`` events or more go through
    :data:`EVIDENCE_QUERIES`, whose rows become events the same parser reads. The notes say which path was
    taken ("read with Logs Insights (N rows) instead of downloading M events"); when Insights cannot be used
    (denied, not offered) the events are downloaded and a note says why. A query that fails or times out on
    the Insights path raises :class:`AwsError` (one line naming the log groups and the next step).
    """
    end = end or now()
    groups = list(dict.fromkeys(log_groups))
    options = dict(insights or {})
    start_s, end_s = _to_ms(start) // 1000, _to_ms(end) // 1000
    try:
        counted = count_events(client, groups, start_s=start_s, end_s=end_s, **options)
    except AwsError as exc:
        if not insights_unavailable(exc):
            raise
        fetched = fetch_events(client, groups, start=start, end=end, now=now, **download)
        fetched.notes.append(
            f"Logs Insights could not count the window ({exc}); every event was downloaded instead."
        )
        return fetched
    if counted < threshold:
        return fetch_events(client, groups, start=start, end=end, now=now, **download)
    rows = read_evidence_insights(client, groups, start_s=start_s, end_s=end_s, **options)
    events = events_rows(insights_events(rows))
    frame = frames.from_rows(events, EVENT_COLUMNS)
    if not frame.empty:
        frame = frame.sort_values(["timestamp", "log_group", "log_stream"], kind="stable", ignore_index=True)
    per_group = frame.groupby("log_group").size() if not frame.empty else pd.Series(dtype="int64")
    report = frames.from_rows(
        [
            {
                "log_group": group,
                "events": int(per_group.get(group, 0)),
                "pages": 0,
                "empty_pages": 0,
                "status": "ok",
                "detail": "read with Logs Insights",
            }
            for group in groups
        ],
        FETCH_REPORT_COLUMNS,
    )
    note = (
        f"read with Logs Insights ({len(rows):,} rows) instead of downloading {counted:,} events "
        f"(a window of {threshold:,} events or more is read server-side)"
    )
    return LogFetch(frame, report, (start, end), [note])


# --------------------------------------------------------------------------------------------------------
# Where the logs are
# --------------------------------------------------------------------------------------------------------


def lambda_log_group(configuration: dict[str, Any]) -> tuple[str, str]:
    """The function's log group and how we know it, from a ``get_function_configuration`` answer (pure)."""
    name = str(configuration.get("FunctionName", ""))
    custom = (configuration.get("LoggingConfig") or {}).get("LogGroup")
    if custom:
        return str(custom), "the function's LoggingConfig.LogGroup"
    return f"/aws/lambda/{name}", "Lambda's default /aws/lambda/<function>"


def access_log_group(stage: dict[str, Any]) -> str | None:
    """The access-log group a ``get_stage`` answer names, or None when access logging is off (pure)."""
    arn = (stage.get("AccessLogSettings") or {}).get("DestinationArn")
    if not arn or ":log-group:" not in str(arn):
        return None
    return str(arn).split(":log-group:", 1)[1].removesuffix(":*")


def log_groups_frame(
    functions: Iterable[dict[str, Any]], api_id: str | None, stage: dict[str, Any] | None
) -> pd.DataFrame:
    """Every log group the evidence lives in, from configuration answers (pure; :data:`LOG_GROUP_COLUMNS`)."""
    rows = []
    for configuration in functions:
        group, how = lambda_log_group(configuration)
        rows.append(
            {
                "source": "lambda",
                "log_group": group,
                "owner": configuration.get("FunctionName"),
                "found_from": how,
            }
        )
    if api_id and stage:
        stage_name = stage.get("StageName", "")
        level = (stage.get("DefaultRouteSettings") or {}).get("LoggingLevel", "OFF")
        rows.append(
            {
                "source": "apigw_exec",
                "log_group": f"API-Gateway-Execution-Logs_{api_id}/{stage_name}",
                "owner": f"{api_id}/{stage_name}",
                "found_from": f"the stage's execution logging (level {level})",
            }
        )
        access = access_log_group(stage)
        if access:
            rows.append(
                {
                    "source": "apigw_access",
                    "log_group": access,
                    "owner": f"{api_id}/{stage_name}",
                    "found_from": "the stage's AccessLogSettings.DestinationArn",
                }
            )
    return frames.from_rows(rows, LOG_GROUP_COLUMNS)
