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
import logging
import threading
import time
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

FILTER_LOG_EVENTS_TPS = 4.0  # below the 5 TPS account quota, which the console and other tools share
INSIGHTS_ROW_CAP = 10_000
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


class RateLimiter:
    """A token bucket: at most ``rate`` calls per second on average, bursts up to ``burst``. Thread-safe."""

    def __init__(
        self,
        rate: float = FILTER_LOG_EVENTS_TPS,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                self._sleep((1 - self._tokens) / self.rate)


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
) -> list[dict[str, str]]:
    """Run a Logs Insights query over ``[start_s, end_s]`` (epoch **seconds**, both inclusive).

    When a window returns ``limit`` rows it is bisected and each half is queried again, so results are
    never silently truncated; rows are de-duplicated by ``@ptr``. Raises :class:`AwsError` when a query ends
    in Failed, Cancelled, Timeout or Unknown, or does not end within ``timeout_s``.
    """
    try:
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
    deadline = time.monotonic() + timeout_s
    delay = min(poll_s, 0.2)
    while True:
        answer = client.get_query_results(queryId=query_id)
        status = answer.get("status", "Unknown")
        if status in TERMINAL_QUERY_STATUSES:
            break
        if time.monotonic() > deadline:
            with contextlib.suppress(ClientError):
                client.stop_query(queryId=query_id)
            raise AwsError(
                f"Logs Insights query {query_id} did not finish within {timeout_s:.0f} s; narrow the window.",
                service="logs",
                operation="GetQueryResults",
                code="Timeout",
                resource=query_id,
            )
        sleep(delay)
        delay = min(delay * 2, poll_s)
    if status != "Complete":
        raise AwsError(
            f"Logs Insights query {query_id} ended with status {status}; its results are incomplete.",
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
    halves = run_insights(
        client, log_groups, query, start_s=start_s, end_s=middle, limit=limit, poll_s=poll_s, sleep=sleep
    ) + run_insights(
        client, log_groups, query, start_s=middle + 1, end_s=end_s, limit=limit, poll_s=poll_s, sleep=sleep
    )
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
