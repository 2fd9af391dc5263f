"""The evidence benchmarks: what reading logs and the connections table costs, against the obvious code.

Each figure has a baseline measured in the same run on the same input:

* log lines → normalised frame: :func:`kit.logparse.parse` against :func:`kit.logparse.parse_lines_slow`,
  the per-line reference, on ``log_lines`` CloudWatch events of a chat app's traffic (below); the issue asks
  for at least 10 times the per-line loop and at least 500,000 lines/s, so that is two figures;
* DynamoDB JSON pages → DataFrame: :func:`kit.dynamo.items.items_frame` against
  :func:`kit.dynamo.items.items_frame_slow` (boto3's ``TypeDeserializer``, then a frame of plain values) on
  ``dynamo_items`` connections-table items in 1 MB scan pages; the issue asks for at least 5 times;
* peak memory: ``parse`` of ``memory_lines`` events in a child process (so nothing the bench holds counts),
  its peak resident set during the parse against its resident set with the input frame built; the issue's
  budget is 1 GB;
* a log file: ``kit logs parse`` of ``file_mb`` MB of raw lines in a child (:mod:`bench.logfile`), its peak
  resident set against the file's size; the issue's budget is three times.

The log lines are the lab's own: ``START``/``END``/``REPORT`` (``INIT_START`` and ``Init Duration`` on a
cold start) from :mod:`kit.lab.lambda_logs`, the fixed handler's JSON line through the Python runtime's
formatter, and for one request in ten its execution-log and access-log lines from
:mod:`kit.lab.gateway_logs`. A connection's life is ``$connect``, three messages, ``$disconnect``.

Must not: time the building of inputs, or reach the network (nothing here talks to AWS or the lab).
"""

from __future__ import annotations

import base64
import ctypes
import gc
import hashlib
import json
import logging
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from bench.figures import Detail, Figure, figure, median
from bench.settings import BenchSettings
from kit import logparse as lp
from kit.dynamo.items import items_frame, items_frame_slow
from kit.handler.app import user_hash, utc_timestamp
from kit.lab import gateway_config, gateway_events
from kit.lab import gateway_core as gateway
from kit.lab import gateway_logs as gl
from kit.lab import lambda_logs as ll
from kit.lab.provision import ACCESS_LOG_FORMAT, ACCESS_LOG_GROUP, FUNCTION_NAME, STAGE
from kit.local import PROJECT_ROOT

Progress = Callable[[str], None]

LOG_SPEEDUP_TARGET = 10.0  # the issue's: at least 10x the per-line loop
LOG_RATE_TARGET = 500_000.0  # the issue's: at least 500k lines/s
DYNAMO_SPEEDUP_TARGET = 5.0  # the issue's: at least 5x TypeDeserializer + DataFrame
MEMORY_TARGET_MB = 1024.0  # the issue's: 1M log lines in at most 1 GB

CHILD_TIMEOUT_S = 600.0

# ---------------------------------------------------------------------------------------------------------
# Log lines of a chat app's traffic
# ---------------------------------------------------------------------------------------------------------

REGION = "us-east-2"
API_ID = "a1b2c3d4e5"
LAMBDA_GROUP = f"/aws/lambda/{FUNCTION_NAME}"
EXECUTION_GROUP = f"API-Gateway-Execution-Logs_{API_ID}/{STAGE}"
EXECUTION_STREAM = "e369853df766fa44e1ed0ff613f563bd"
ACCESS_STREAM = "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a"
TABLE = "chatgenius-connections"
RUNTIME_VERSION = "python:3.12.v50"
T0 = 1756643696000  # 2025-08-31T12:34:56Z
INVOCATION_SPACING_MS = 7
INGESTION_LAG_MS = 1500
LAMBDA_STREAMS = 8  # execution environments serving at once, one log stream each
COLD_START_EVERY = 200  # an environment's invocations per cold start
GATEWAY_EVERY = 10  # one request in this many also brings its execution-log and access-log lines
WORKSPACES = 50
CONNECTION_ROUTES = ("$connect", "message", "message", "message", "$disconnect")  # one connection's life
EVENT_TYPES: dict[str, gateway_events.EventType] = {
    "$connect": "CONNECT",
    "message": "MESSAGE",
    "$disconnect": "DISCONNECT",
}
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:{FUNCTION_NAME}"
INTEGRATION = gateway_config.IntegrationConfig(
    "int1",
    "AWS_PROXY",
    f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{FUNCTION_ARN}/invocations",
)
MANAGEMENT_ENDPOINT = f"https://{API_ID}.execute-api.{REGION}.amazonaws.com/{STAGE}"


def _connection_id(number: int) -> str:
    """16 characters of base64 ending in ``=``, like API Gateway's connection ids."""
    return base64.b64encode(hashlib.blake2b(b"c%d" % number, digest_size=11).digest()).decode()


def _apigw_request_id(number: int) -> str:
    return base64.b64encode(hashlib.blake2b(b"r%d" % number, digest_size=11).digest()).decode()


def _lambda_request_id(number: int) -> str:
    digest = hashlib.blake2b(b"l%d" % number, digest_size=16).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"


def _lambda_stream(environment: int) -> str:
    return f"2025/08/31/[$LATEST]{hashlib.blake2b(b'e%d' % environment, digest_size=16).hexdigest()}"


@dataclass(frozen=True)
class Invocation:
    """One request of a connection's life: the ids the gateway, Lambda and the handler give it."""

    number: int
    route_key: str
    connection_id: str
    connected_at_ms: int
    user_id: str
    workspace_id: str
    request_id: str  # Lambda's
    apigw_request_id: str
    at_ms: int

    @classmethod
    def of(cls, number: int) -> Invocation:
        connection = number // len(CONNECTION_ROUTES)
        return cls(
            number=number,
            route_key=CONNECTION_ROUTES[number % len(CONNECTION_ROUTES)],
            connection_id=_connection_id(connection),
            connected_at_ms=T0 + connection * len(CONNECTION_ROUTES) * INVOCATION_SPACING_MS,
            user_id=f"user{connection % 997}@example.com",
            workspace_id=f"ws-{connection % WORKSPACES}",
            request_id=_lambda_request_id(number),
            apigw_request_id=_apigw_request_id(number),
            at_ms=T0 + number * INVOCATION_SPACING_MS,
        )

    def handler_line(self) -> dict[str, object]:
        """The fixed handler's one JSON line for this event, succeeding, keys in the order it writes them."""
        line: dict[str, object] = {
            "route": self.route_key,
            "connection_id": self.connection_id,
            "request_id": self.request_id,
            "apigw_request_id": self.apigw_request_id,
        }
        if self.route_key == "$connect":
            line |= {"outcome": "stored", "status": 200, "error_code": None, "detail": None}
            line |= {"workspace_id": self.workspace_id, "user_hash": user_hash(self.user_id), "table": TABLE}
            line |= {"auth_mode": "email", "dynamodb_endpoint": f"https://dynamodb.{REGION}.amazonaws.com"}
        elif self.route_key == "$disconnect":
            line |= {"outcome": "deleted", "status": 200, "error_code": None, "detail": None}
            line |= {"table": TABLE, "disconnect_status_code": 1001}
        else:
            line |= {"outcome": "broadcast", "status": 200, "error_code": None, "detail": None}
            line |= {"workspace_id": self.workspace_id, "user_hash": user_hash(self.user_id)}
            line |= {"recipients": 3, "delivered": 3, "pruned": 0, "failed": 0, "failures": {}}
            line |= {"management_endpoint": MANAGEMENT_ENDPOINT}
        return line


LogLine = tuple[str, str, int, str]  # log group, stream, epoch ms, message


@dataclass
class _LogWriter:
    """Formats one invocation's lines at a time; the lab's formatters do the wording."""

    formatter: logging.Formatter = field(default_factory=ll.text_formatter)
    runtime_arn: str = ll.runtime_version_arn(REGION, RUNTIME_VERSION)
    streams: list[str] = field(default_factory=lambda: [_lambda_stream(e) for e in range(LAMBDA_STREAMS)])

    def lines(self, call: Invocation) -> Iterator[LogLine]:
        yield from self.lambda_lines(call)
        if call.number % GATEWAY_EVERY == 0:
            yield from self.gateway_lines(call)

    def lambda_lines(self, call: Invocation) -> Iterator[LogLine]:
        stream, at = self.streams[call.number % LAMBDA_STREAMS], call.at_ms
        cold = (call.number // LAMBDA_STREAMS) % COLD_START_EVERY == 0
        if cold:
            yield LAMBDA_GROUP, stream, at, ll.init_start_line(RUNTIME_VERSION, self.runtime_arn)
        yield LAMBDA_GROUP, stream, at + 1, ll.start_line(call.request_id, "$LATEST")
        # Email auth works but is insecure, so the handler logs every connect at WARNING.
        level = logging.WARNING if call.route_key == "$connect" else logging.INFO
        record = logging.LogRecord(
            "kit.handler.app", level, "app.py", 1, json.dumps(call.handler_line()), None, None
        )
        record.created, record.msecs, record.aws_request_id = (
            (at + 3) / 1000,
            (at + 3) % 1000,
            call.request_id,
        )
        yield LAMBDA_GROUP, stream, at + 3, self.formatter.format(record)
        yield LAMBDA_GROUP, stream, at + 4, ll.end_line(call.request_id)
        duration = 4.0 + (call.number * 37 % 900) / 100
        report = ll.Report(
            call.request_id,
            duration,
            ll.billed_duration_ms(duration),
            128,
            78 + call.number % 5,
            init_duration_ms=412.33 if cold else None,
        )
        yield LAMBDA_GROUP, stream, at + 5, ll.report_line(report)

    def gateway_lines(self, call: Invocation) -> Iterator[LogLine]:
        event_type = EVENT_TYPES[call.route_key]
        client = gateway_events.Connection(
            call.connection_id,
            call.connected_at_ms,
            f"203.0.113.{call.number % 250}",
            "Mozilla/5.0",
            API_ID,
            f"{API_ID}.execute-api.{REGION}.amazonaws.com",
            STAGE,
        )
        result = gateway_events.IntegrationResult(
            "response", status=200, integration_request_id=call.request_id, latency_ms=12
        )
        context = gl.build_log_context(
            client,
            event_type=event_type,
            route_key=call.route_key,
            request_id=call.apigw_request_id,
            request_time_ms=call.at_ms,
            status=200,
            integration=INTEGRATION,
            result=result,
        )
        route = gateway_config.RouteConfig(call.route_key, "int1")
        decision = gateway_config.RouteDecision(
            "integration", call.route_key, call.route_key, route, INTEGRATION
        )
        close = gateway.GOING_AWAY if event_type == "DISCONNECT" else None
        lines = gl.execution_log_lines(context, decision=decision, result=result, close=close)
        for index, message in enumerate(lines):
            yield EXECUTION_GROUP, EXECUTION_STREAM, call.at_ms + index, message
        yield ACCESS_LOG_GROUP, ACCESS_STREAM, call.at_ms + 20, gl.access_log_line(ACCESS_LOG_FORMAT, context)


def log_events(lines: int) -> Iterator[dict[str, Any]]:
    """``lines`` CloudWatch Logs events as boto3 returns them, one invocation's after another's."""
    writer = _LogWriter()
    count = 0
    number = 0
    while True:
        for group, stream, at, message in writer.lines(Invocation.of(number)):
            if count == lines:
                return
            yield {
                "logGroupName": group,
                "logStreamName": stream,
                "timestamp": at,
                "message": message,
                "ingestionTime": at + INGESTION_LAG_MS,
                "eventId": str(38 * 10**54 + at * 1000 + count % 1000),
            }
            count += 1
        number += 1


def log_events_frame(lines: int) -> pd.DataFrame:
    """The raw event frame of :func:`log_events`; the events are consumed as they come, never all held."""
    return lp.events_frame(log_events(lines))


# ---------------------------------------------------------------------------------------------------------
# Scan pages of the connections table
# ---------------------------------------------------------------------------------------------------------

PAGE_LIMIT_BYTES = 1024 * 1024  # a Scan page stops at 1 MB of items


def _item_size(item: dict[str, dict[str, str]]) -> int:
    """DynamoDB's size of an item of strings: each attribute's name plus its value, in UTF-8 bytes."""
    return sum(len(name.encode()) + len(value["S"].encode()) for name, value in item.items())


def connection_pages(items: int) -> list[dict[str, Any]]:
    """``items`` connections-table items as Scan pages (DynamoDB JSON), each page at most 1 MB of items."""
    pages: list[dict[str, Any]] = []
    page: list[dict[str, Any]] = []
    size = 0
    start = datetime.fromtimestamp(T0 / 1000, UTC)
    for number in range(items):
        item = {
            "connectionId": {"S": _connection_id(number)},
            "workspaceId": {"S": f"ws-{number % WORKSPACES}"},
            "userId": {"S": f"user{number % 997}@example.com"},
            "timestamp": {"S": utc_timestamp(start + timedelta(milliseconds=number * 1237))},
            "status": {"S": "connected"},
        }
        item_size = _item_size(item)
        if size + item_size > PAGE_LIMIT_BYTES:
            pages.append(_page(page, last=False))
            page, size = [], 0
        page.append(item)
        size += item_size
    pages.append(_page(page, last=True))
    return pages


def _page(items: list[dict[str, Any]], *, last: bool) -> dict[str, Any]:
    page: dict[str, Any] = {"Items": items, "Count": len(items), "ScannedCount": len(items)}
    if not last:
        page["LastEvaluatedKey"] = {"connectionId": items[-1]["connectionId"]}
    page["ResponseMetadata"] = {"HTTPStatusCode": 200, "RetryAttempts": 0}
    return page


# ---------------------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------------------


def _timed(work: Callable[[], pd.DataFrame]) -> tuple[float, pd.DataFrame]:
    gc.collect()  # garbage of the previous round is not this round's cost
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def _same(fast: pd.DataFrame, slow: pd.DataFrame) -> bool:
    try:
        pd.testing.assert_frame_equal(fast, slow)
    except AssertionError:
        return False
    return True


@dataclass(frozen=True)
class Race:
    """Seconds per round of the fast path and its baseline, run in turn on the same input."""

    fast_s: list[float]
    slow_s: list[float]
    same_frame: bool


def race(fast: Callable[[], pd.DataFrame], slow: Callable[[], pd.DataFrame], repeats: int) -> Race:
    fast_s: list[float] = []
    slow_s: list[float] = []
    same_frame = True
    for _ in range(repeats):
        elapsed, fast_frame = _timed(fast)
        fast_s.append(elapsed)
        elapsed, slow_frame = _timed(slow)
        slow_s.append(elapsed)
        if len(fast_s) == 1:  # once is enough: the inputs do not change between rounds
            same_frame = _same(fast_frame, slow_frame)
        del fast_frame, slow_frame
    return Race(fast_s, slow_s, same_frame)


def _count(lines: int) -> str:
    return f"{lines / 1_000_000:g}M" if lines % 100_000 == 0 else f"{lines:,}"


def _rounded(values: list[float]) -> str:
    return ", ".join(f"{value:.3f}" for value in values)


# ---------------------------------------------------------------------------------------------------------
# The figures
# ---------------------------------------------------------------------------------------------------------

LOG_NOTE = (
    "parse() runs the regular expressions in Arrow (RE2) a column at a time; reads the lines in the exact "
    "shapes Lambda writes (REPORT, the Python runtime's [LEVEL]\\t...) at their tabs, found in the "
    "messages' buffer, copying each value out once; splits execution-log lines at their first ') '; reads "
    "the handler's JSON lines and the access-log lines as newline-delimited blocks with Arrow's JSON reader; "
    "finds line shapes on a byte matrix and literal marks with bytes.find over one copy of the texts. What "
    "is left per row in Python: Lambda JSON-format lines (decoded one at a time) and the per-line fallbacks. "
    "The baseline runs the same patterns through Python's re one line at a time. Both figures move by "
    "several percent with the machine's load."
)


def measure_log_parse(settings: BenchSettings, progress: Progress) -> list[Figure]:
    lines = settings.log_lines
    started = time.monotonic()
    frame = log_events_frame(lines)
    groups = frame["log_group"].value_counts(normalize=True)
    progress(
        f"built {lines:,} log lines in {time.monotonic() - started:.1f} s; timing parse vs per-line loop"
    )
    run = race(lambda: lp.parse(frame), lambda: lp.parse_lines_slow(frame), settings.repeats)
    fast_rate = lines / median(run.fast_s)
    slow_rate = lines / median(run.slow_s)
    details: dict[str, Detail] = {
        "lines": lines,
        "lambda_share": round(float(groups.get(LAMBDA_GROUP, 0.0)), 2),
        "execution_log_share": round(float(groups.get(EXECUTION_GROUP, 0.0)), 2),
        "access_log_share": round(float(groups.get(ACCESS_LOG_GROUP, 0.0)), 2),
        "parse_s": _rounded(run.fast_s),
        "per_line_s": _rounded(run.slow_s),
        "same_frame": run.same_frame,
    }
    note = (
        LOG_NOTE if run.same_frame else "THE TWO FRAMES DIFFER: the ratio compares unequal work. " + LOG_NOTE
    )
    progress(f"parse {fast_rate:,.0f} lines/s, per-line loop {slow_rate:,.0f} lines/s")
    return [
        figure(
            "log_parse_speedup",
            "log lines → frame: parse() over the per-line loop",
            value=fast_rate,
            unit="lines/s",
            baseline=slow_rate,
            baseline_title="parse_lines_slow",
            ratio_of="value/baseline",
            target=LOG_SPEEDUP_TARGET,
            target_source="issue",
            details=details,
            note=note,
        ),
        figure(
            "log_parse_rate",
            "log lines → frame: parse() lines/s",
            value=fast_rate,
            unit="lines/s",
            baseline=slow_rate,
            baseline_title="parse_lines_slow",
            ratio_of="value/baseline",
            target=LOG_RATE_TARGET,
            target_of="value",
            target_source="issue",
            details={"lines": lines, "parse_s": _rounded(run.fast_s)},
            note="Median of the rounds; the target is on the rate itself. See log_parse_speedup for why.",
        ),
    ]


def measure_dynamo(settings: BenchSettings, progress: Progress) -> Figure:
    items = settings.dynamo_items
    pages = connection_pages(items)
    progress(f"built {items:,} items in {len(pages)} scan page(s); timing items_frame vs TypeDeserializer")
    run = race(lambda: items_frame(pages), lambda: items_frame_slow(pages), settings.repeats)
    fast_rate = items / median(run.fast_s)
    slow_rate = items / median(run.slow_s)
    progress(f"items_frame {fast_rate:,.0f} items/s, TypeDeserializer {slow_rate:,.0f} items/s")
    note = (
        "items_frame reads {'S': ...} itself and converts each column whole; the baseline deserialises "
        "every value through boto3, builds a frame of dicts, then converts cell by cell."
    )
    return figure(
        "dynamo_items_speedup",
        "DynamoDB JSON pages → frame: items_frame() over TypeDeserializer",
        value=fast_rate,
        unit="items/s",
        baseline=slow_rate,
        baseline_title="items_frame_slow",
        ratio_of="value/baseline",
        target=DYNAMO_SPEEDUP_TARGET,
        target_source="issue",
        details={
            "items": items,
            "pages": len(pages),
            "items_per_page": len(pages[0]["Items"]),
            "items_frame_s": _rounded(run.fast_s),
            "type_deserializer_s": _rounded(run.slow_s),
            "same_frame": run.same_frame,
        },
        note=note if run.same_frame else "THE TWO FRAMES DIFFER: the ratio compares unequal work. " + note,
    )


def _status_mb(key: str) -> float | None:
    """A ``/proc/self/status`` size (``VmRSS``, ``VmHWM``) in MB; None where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def _trim() -> None:
    """Return freed heap to the system (glibc), where there is glibc; elsewhere nothing happens."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return


def _reset_peak() -> bool:
    """Set this process's VmHWM back to its current RSS (Linux 4.0+), so the peak is the parse's own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory_child(lines: int) -> dict[str, object]:
    """In the child: build the input frame, then parse it; the resident sizes before and at peak, in MB."""
    frame = log_events_frame(lines)
    gc.collect()
    _trim()  # what building the input freed is given back, so the baseline is the frame and the interpreter
    input_mb = _status_mb("VmRSS")
    reset = _reset_peak()
    started = time.perf_counter()
    parsed = lp.parse(frame)
    parse_s = time.perf_counter() - started
    peak_mb = _status_mb("VmHWM")
    lifetime_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "lines": len(parsed),
        "input_mb": input_mb,
        "peak_mb": peak_mb if peak_mb is not None else lifetime_mb,
        "peak_reset": reset and peak_mb is not None,
        "lifetime_peak_mb": lifetime_mb,
        "parse_s": parse_s,
    }


CHILD_CODE = (
    "import json, sys; from bench.evidence import memory_child; "
    "print(json.dumps(memory_child(int(sys.argv[1]))))"
)


def measure_memory(settings: BenchSettings, progress: Progress) -> Figure:
    lines = settings.memory_lines
    progress(f"parsing {lines:,} log lines in a child process for its peak memory")
    child = subprocess.run(
        [sys.executable, "-c", CHILD_CODE, str(lines)],
        cwd=PROJECT_ROOT,  # `python -c` puts the working directory on sys.path, so `bench` imports
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"the child exited with {child.returncode}: {child.stderr.strip()[-500:]}")
    measured = json.loads(child.stdout.strip().splitlines()[-1])
    peak_mb = float(measured["peak_mb"])
    input_mb = measured["input_mb"]
    progress(f"peak {peak_mb:,.0f} MB while parsing (input frame alone {input_mb or 0:,.0f} MB)")
    growth_mb = peak_mb - float(input_mb) if input_mb is not None else None
    how = (
        "the child's VmHWM, reset once the input frame was built: the parse's peak with that frame held"
        if measured["peak_reset"]
        else "the child's peak RSS (it could not be reset, so building the input counts too)"
    )
    note = (
        f"Peak: {how}. The input frame (messages, CloudWatch's 56-digit event ids, groups and streams) is "
        f"held in Arrow; the parse adds the normalised frame ({len(lp.LOG_COLUMNS)} columns, text in Arrow) "
        "and, for one chunk of lines at a time, the copies Arrow makes while reading them. The child frees "
        "what building the input left behind (malloc_trim) before its baseline is read."
    )
    return figure(
        "log_parse_peak_memory",
        f"peak memory parsing {_count(lines)} log lines",
        value=peak_mb,
        unit="MB",
        baseline=float(input_mb) if input_mb is not None else None,
        baseline_title="input frame only",
        ratio_of="value/baseline",
        target=MEMORY_TARGET_MB,
        better="lower",
        target_of="value",
        target_source="issue",
        details={
            "lines": int(measured["lines"]),
            "parse_s": round(float(measured["parse_s"]), 2),
            "parse_growth_mb": round(growth_mb, 1) if growth_mb is not None else None,
            "child_lifetime_peak_mb": round(float(measured["lifetime_peak_mb"]), 1),
        },
        note=note,
    )


@dataclass
class EvidenceBench:
    """The figures of one run, and the errors of measurements that could not be made."""

    figures: list[Figure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def run_evidence_benchmarks(settings: BenchSettings, progress: Progress | None = None) -> EvidenceBench:
    """Every evidence figure; a measurement that fails is an error in the result, not an exception."""
    from bench.logfile import measure_file_memory  # it uses log_events, defined here

    say = progress or (lambda message: print(f"bench: {message}", file=sys.stderr, flush=True))
    result = EvidenceBench()
    measurements: list[tuple[str, Callable[[], list[Figure]]]] = [
        ("log parsing", lambda: measure_log_parse(settings, say)),
        ("DynamoDB items", lambda: [measure_dynamo(settings, say)]),
        ("peak memory", lambda: [measure_memory(settings, say)]),
        ("a log file's parse", lambda: [measure_file_memory(settings, say)]),
    ]
    for what, measure in measurements:
        try:
            result.figures.extend(measure())
        except Exception as exc:  # one measurement failing must not lose the others' figures
            result.errors.append(f"{what} could not be measured: {type(exc).__name__}: {exc}")
    return result
