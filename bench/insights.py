"""Time to diagnosis on a big account: Logs Insights server-side against downloading every event.

A simulated CloudWatch Logs (:class:`EmulatedLogs`) holds ``insights_events`` events of a chat app's traffic
in the window (the lab's own log formats, through :mod:`bench.evidence`'s writer: each connection is a
``$connect``, ``MESSAGES_PER_CONNECTION`` messages and a ``$disconnect``) and answers the kit's calls with
AWS's quotas emulated on a fake clock, so minutes of API time cost no minutes of bench:

* ``FilterLogEvents``: pages of at most 10,000 events or 1 MB, at most 5 calls/s (the kit keeps itself at 4,
  :data:`kit.logs.FILTER_LOG_EVENTS_TPS`), each call ``CALL_LATENCY_S`` plus its bytes at ``DOWNLOAD_MBPS``;
* Logs Insights: a query completes ``QUERY_OVERHEAD_S`` after ``StartQuery`` plus the window's bytes at
  ``SCAN_MBPS`` (a model: AWS publishes no scan rate; queries over a few hundred MB take seconds to tens of
  seconds in practice), polled with ``GetQueryResults`` at ``CALL_LATENCY_S`` each; answers are evaluated
  over the stored events with the lab's evaluator (:mod:`kit.lab.insights_query`), never canned.

Time to diagnosis = the emulated AWS time of the reads + the kit's own CPU time (parsing, the checks),
measured for real; the service's own evaluation is not counted. The figure is the ratio of the download's
time to the Insights path's, both measured in the same run, and both paths must reach the same verdicts.

The window is the issue's 1,000,000 events (about a minute of bench: the download path's own parsing and
checks are most of it, measured for real).

Must not: reach the network, or sleep for real.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from bench.evidence import (
    EXECUTION_GROUP,
    INGESTION_LAG_MS,
    INVOCATION_SPACING_MS,
    LAMBDA_GROUP,
    T0,
    WORKSPACES,
    Invocation,
    _connection_id,
    _LogWriter,
)
from bench.figures import Figure, figure
from bench.settings import BenchSettings
from kit import logparse, logs
from kit.diagnose import ranking
from kit.diagnose.findings import Evidence
from kit.lab.insights import DEFAULT_ACCOUNT, QueryStore
from kit.lab.insights_query import EVENT_FIELDS
from kit.lab.provision import ACCESS_LOG_GROUP

Progress = Callable[[str], None]

MESSAGES_PER_CONNECTION = 100
PAGE_EVENTS = 10_000
PAGE_BYTES = 1024 * 1024
EVENT_OVERHEAD_BYTES = 26  # per event, as CloudWatch Logs counts a batch's size
CALL_LATENCY_S = 0.05
DOWNLOAD_MBPS = 20.0
QUERY_OVERHEAD_S = 2.0
SCAN_MBPS = 50.0
RATIO_TARGET = 2.0  # the bench's: server-side reading should at least halve the time to diagnosis
GROUPS = [LAMBDA_GROUP, EXECUTION_GROUP, ACCESS_LOG_GROUP]


@dataclass
class FakeClock:
    now_s: float = 0.0

    def time(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.now_s += max(0.0, seconds)


@dataclass
class EmulatedLogs:
    """A logs client over an event frame (:data:`kit.lab.insights_query.EVENT_FIELDS`), on a fake clock."""

    events: pd.DataFrame
    clock: FakeClock = field(default_factory=FakeClock)
    service_cpu_s: float = 0.0  # the emulated service's own work, not the kit's
    calls: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.events = self.events.sort_values("@timestamp", kind="stable", ignore_index=True)
        self._stamps = self.events["@timestamp"].to_numpy(dtype=np.int64)
        self._sizes = self.events["@message"].str.len().to_numpy(dtype=np.int64) + EVENT_OVERHEAD_BYTES
        self._store = QueryStore(self._window_events)
        self._done_at: dict[str, float] = {}
        self._groups: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _count(self, operation: str) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        self.clock.sleep(CALL_LATENCY_S)

    def _window(self, start_ms: int, end_ms: int) -> tuple[int, int]:
        return (
            int(np.searchsorted(self._stamps, start_ms, "left")),
            int(np.searchsorted(self._stamps, end_ms, "right")),
        )

    def _window_events(
        self, _account: str, _region: str, names: list[str], start: int, end: int
    ) -> pd.DataFrame:
        first, last = self._window(start, end)
        part = self.events.iloc[first:last]
        groups = {f"{DEFAULT_ACCOUNT}:{name}" for name in names}
        return part[part["@log"].isin(groups).to_numpy(dtype=bool)]

    def _group(self, group: str) -> tuple[np.ndarray, np.ndarray]:
        """The rows of one log group (in time order) and their sizes' running total."""
        if group not in self._groups:
            rows = np.flatnonzero((self.events["@log"] == group).to_numpy(dtype=bool))
            self._groups[group] = (rows, np.cumsum(self._sizes[rows]))
        return self._groups[group]

    def filter_log_events(self, **request: Any) -> dict[str, Any]:
        self._count("FilterLogEvents")
        started = time.perf_counter()
        rows, sizes = self._group(f"{DEFAULT_ACCOUNT}:{request['logGroupName']}")
        stamps = self._stamps[rows]
        first = int(np.searchsorted(stamps, int(request["startTime"]), "left"))
        last = int(np.searchsorted(stamps, int(request["endTime"]), "right"))
        position = max(first, int(request.get("nextToken") or first))
        before = int(sizes[position - 1]) if position > 0 else 0
        fits = int(np.searchsorted(sizes, before + PAGE_BYTES, "right"))
        stop = max(position + 1, min(last, position + PAGE_EVENTS, fits))
        stop = min(stop, last)
        chosen = self.events.iloc[rows[position:stop]]
        stamps_ms = chosen["@timestamp"].tolist()
        taken = [
            {
                "logStreamName": stream,
                "timestamp": at,
                "message": message,
                "ingestionTime": at + INGESTION_LAG_MS,
                "eventId": pointer,
            }
            for stream, at, message, pointer in zip(
                chosen["@logStream"].tolist(),
                stamps_ms,
                chosen["@message"].tolist(),
                chosen["@ptr"].tolist(),
                strict=True,
            )
        ]
        size = (int(sizes[stop - 1]) - before) if stop > position else 0
        self.service_cpu_s += time.perf_counter() - started
        self.clock.sleep(size / (DOWNLOAD_MBPS * 1024 * 1024))
        page: dict[str, Any] = {"events": taken}
        if stop < last:
            page["nextToken"] = str(stop)
        return page

    def start_query(self, **request: Any) -> dict[str, Any]:
        self._count("StartQuery")
        started = time.perf_counter()
        answer = self._store.start(DEFAULT_ACCOUNT, "us-east-2", request)
        self.service_cpu_s += time.perf_counter() - started
        first, last = self._window(int(request["startTime"]) * 1000, int(request["endTime"]) * 1000 + 999)
        scanned = int(self._sizes[first:last].sum())
        self._done_at[answer["queryId"]] = (
            self.clock.time() + QUERY_OVERHEAD_S + scanned / (SCAN_MBPS * 1024 * 1024)
        )
        return answer

    def get_query_results(self, **request: Any) -> dict[str, Any]:
        self._count("GetQueryResults")
        if self.clock.time() < self._done_at.get(str(request.get("queryId")), 0.0):
            return {"status": "Running", "results": []}
        return self._store.results(request)

    def stop_query(self, **request: Any) -> dict[str, Any]:
        return self._store.stop(request)

    def read(self, threshold: int, groups: list[str] | None = None) -> logs.LogFetch:
        """:func:`kit.logs.read_logs` of the whole window of these events, on this client's fake clock."""
        stamps = self.events["@timestamp"]
        return logs.read_logs(
            self,
            groups or GROUPS,
            start=datetime.fromtimestamp(int(stamps.min()) // 1000, UTC),
            end=datetime.fromtimestamp(int(stamps.max()) // 1000 + 1, UTC),
            threshold=threshold,
            limiter=logs.RateLimiter(clock=self.clock.time, sleep=self.clock.sleep),
            insights={"sleep": self.clock.sleep, "clock": self.clock.time},
        )


# ---------------------------------------------------------------------------------------------------------
# The account's events
# ---------------------------------------------------------------------------------------------------------


def _calls(messages: int) -> Iterator[Invocation]:
    life = ["$connect", *["message"] * messages, "$disconnect"]
    number = 0
    while True:
        connection = number // len(life)
        route = life[number % len(life)]
        yield Invocation(
            number=number,
            route_key=route,
            connection_id=_connection_id(connection),
            connected_at_ms=T0 + connection * len(life) * INVOCATION_SPACING_MS,
            user_id=f"user{connection % 997}@example.com",
            workspace_id=f"ws-{connection % WORKSPACES}",
            request_id=Invocation.of(number).request_id,
            apigw_request_id=Invocation.of(number).apigw_request_id,
            at_ms=T0 + number * INVOCATION_SPACING_MS,
        )
        number += 1


def account_events(count: int, messages: int = MESSAGES_PER_CONNECTION) -> pd.DataFrame:
    """``count`` events of a chat app's traffic as the evaluator's event frame (building is not timed)."""
    writer = _LogWriter()
    rows: list[tuple[int, str, str, str, str]] = []
    for call in _calls(messages):
        for group, stream, at, message in writer.lines(call):
            if len(rows) == count:
                return _frame(rows)
            rows.append((at, message, stream, f"{DEFAULT_ACCOUNT}:{group}", f"{group}|{stream}|{len(rows)}"))
    return _frame(rows)  # pragma: no cover - the generator never ends


def _frame(rows: list[tuple[int, str, str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(EVENT_FIELDS))
    return frame.astype({"@message": "string", "@logStream": "string", "@log": "string", "@ptr": "string"})


# ---------------------------------------------------------------------------------------------------------
# Time to diagnosis
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Reading:
    emulated_s: float
    kit_cpu_s: float
    verdicts: dict[str, str]
    root_cause: str
    rows: int
    notes: list[str]
    calls: dict[str, int]

    @property
    def total_s(self) -> float:
        return self.emulated_s + self.kit_cpu_s


def diagnose_logs(fetched: logs.LogFetch) -> tuple[dict[str, str], str]:
    """The checks' verdicts and the ranked cause on evidence of these logs alone."""
    evidence = Evidence("bench", "us-east-2", "chatgenius-connections", "workspaceIndex")
    parsed = logparse.parse(fetched.events)
    evidence.log_lines = parsed
    evidence.invocations = logparse.invocations(parsed)
    evidence.lifecycle = logparse.connection_lifecycle(parsed)
    diagnosis = ranking.diagnose(evidence)
    findings = diagnosis.findings
    verdicts = {f"{c}": str(v) for c, v in zip(findings["check"], findings["verdict"], strict=True)}
    return verdicts, str(diagnosis.root_cause.get("id", diagnosis.root_cause))


def read_and_diagnose(events: pd.DataFrame, *, threshold: int) -> Reading:
    """One diagnosis of ``events``' window through :func:`kit.logs.read_logs`, on emulated AWS time."""
    client = EmulatedLogs(events)
    started = time.perf_counter()
    fetched = client.read(threshold)
    verdicts, cause = diagnose_logs(fetched)
    kit_cpu = time.perf_counter() - started - client.service_cpu_s
    return Reading(
        client.clock.time(), kit_cpu, verdicts, cause, len(fetched.events), fetched.notes, client.calls
    )


def run_insights_benchmark(settings: BenchSettings, progress: Progress) -> list[Figure]:
    count = settings.insights_events
    progress(f"insights: building {count:,} events of a simulated account")
    events = account_events(count)
    progress("insights: downloading everything (emulated FilterLogEvents quotas)")
    download = read_and_diagnose(events, threshold=count + 1)
    progress("insights: reading with Logs Insights (emulated query time)")
    server_side = read_and_diagnose(events, threshold=min(count, logs.INSIGHTS_THRESHOLD_EVENTS))
    same = download.verdicts == server_side.verdicts and download.root_cause == server_side.root_cause
    return [
        figure(
            "insights_time_to_diagnosis",
            f"time to diagnosis, {count:,} events, Logs Insights (emulated AWS time)",
            value=server_side.total_s,
            unit="s",
            baseline=download.total_s,
            baseline_title="downloading every event",
            ratio_of="baseline/value",
            target=RATIO_TARGET,
            target_source="bench",
            details={
                "insights_emulated_s": round(server_side.emulated_s, 1),
                "insights_kit_cpu_s": round(server_side.kit_cpu_s, 2),
                "insights_rows": server_side.rows,
                "insights_queries": server_side.calls.get("StartQuery", 0),
                "download_emulated_s": round(download.emulated_s, 1),
                "download_kit_cpu_s": round(download.kit_cpu_s, 2),
                "download_events": download.rows,
                "download_calls": download.calls.get("FilterLogEvents", 0),
                "same_diagnosis": same,
                "root_cause": server_side.root_cause,
            },
            note=(
                "AWS time is emulated from the quotas, not measured on AWS: FilterLogEvents at the kit's 4 "
                "calls/s (quota 5), pages of at most 10,000 events or 1 MB, "
                f"{CALL_LATENCY_S * 1000:.0f} ms a call plus {DOWNLOAD_MBPS:g} MB/s; an Insights query "
                f"{QUERY_OVERHEAD_S:g} s plus the window's bytes at {SCAN_MBPS:g} MB/s (a model). The kit's "
                "own parsing and checks are measured. A count query runs first on both paths."
                + ("" if same else " THE TWO PATHS DISAGREED.")
            ),
        )
    ]
