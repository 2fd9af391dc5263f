"""Lambda's log lines, formatted exactly as the Lambda service and its Python runtime write them.

The lab's runtime (``kit.lab.lambda_invocation`` for the platform's lines, the worker process
``kit.lab.runtime_worker`` for the function's) formats every line it hands to CloudWatch Logs with these
functions, and the log parser reads these shapes back; a change here is a change to what the parser must
accept. Each CloudWatch event's message is returned *as Lambda stores it*, trailing ``\\n`` (and the ``\\t``
before it on REPORT) included.

What comes from where (see the research notes on Lambda log formats):

* Platform lines, Text format: ``INIT_START``, ``START``, ``END``, ``REPORT`` (with ``Init Duration`` only
  after a cold start, ``Status``/``Error Type`` only for timeouts and runtime failures, never for an ordinary
  handler exception), ``INIT_REPORT`` (failed or timed-out init), the ``Task timed out`` line, and the two
  lines Lambda writes when the runtime process dies.
* Application lines of the Python runtime (``awslambdaric``): the root-logger format, the uncaught-error
  message (``[ERROR] Type: message`` then ``Traceback (most recent call last):`` and the frames, indented with
  NO-BREAK SPACEs, lines joined with ``\\n`` because managed runtimes write it as one framed record on the
  telemetry pipe; ``\\r`` is what the same runtime writes to a bare stdout, e.g. under the emulator).
* The JSON log format (advanced logging controls): platform records ``{"time", "type", "record"}`` and the
  runtime's JSON application records; the log-level rules Lambda applies only in that format.

This module must stay pure: no clock reads (every time is an argument), no processes, no I/O, and nothing
outside the standard library, because the worker imports it before the user's handler module.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

LogEvent = tuple[int, str]
"""One CloudWatch Logs event as the sink receives it: (epoch milliseconds, message)."""

LogFormat = Literal["Text", "JSON"]
Phase = Literal["init", "invoke"]

# ---------------------------------------------------------------------------------------------------------
# Python runtime (awslambdaric) application lines
# ---------------------------------------------------------------------------------------------------------

TEXT_LOG_FORMAT: Final = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"
TEXT_DATE_FORMAT: Final = "%Y-%m-%dT%H:%M:%S"
ERROR_INDENT: Final = "\u00a0"  # NO-BREAK SPACE: keeps a frame's indentation visible in the console
ERROR_LINE_SEPARATOR: Final = "\n"  # one framed record on the telemetry pipe (managed runtimes)
STDOUT_ERROR_LINE_SEPARATOR: Final = "\r"  # the same runtime writing to plain stdout (no telemetry pipe)
INIT_TYPE: Final = "on-demand"

# Logged by the runtime (root logger, WARNING, empty request id) before an init failure's [ERROR] line.
LAMBDA_WARNING_UNHANDLED: Final = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change, "
    "or can be applied automatically. To determine if the runtime has been updated, check the runtime "
    "version in the INIT_START log entry. If this error correlates with a change in the runtime version, "
    "you may be able to mitigate this error by temporarily rolling back to the previous runtime version. "
    "For more information, see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html"
)

# Error types the Python runtime reports for faults in the runtime's own work (not the handler's).
MALFORMED_HANDLER_NAME: Final = "Runtime.MalformedHandlerName"
IMPORT_MODULE_ERROR: Final = "Runtime.ImportModuleError"
HANDLER_NOT_FOUND: Final = "Runtime.HandlerNotFound"
USER_CODE_SYNTAX_ERROR: Final = "Runtime.UserCodeSyntaxError"
BUILT_IN_MODULE_CONFLICT: Final = "Runtime.BuiltInModuleConflict"
MARSHAL_ERROR: Final = "Runtime.MarshalError"
# Error types the Lambda service itself reports.
EXIT_ERROR: Final = "Runtime.ExitError"
SANDBOX_TIMEDOUT: Final = "Sandbox.Timedout"


def text_formatter() -> logging.Formatter:
    """The formatter the Python runtime puts on the root logger's handler in Text format.

    Timestamps are UTC only because the runtime also sets ``logging.Formatter.converter = time.gmtime``
    (process-wide); the worker does the same.
    """
    return logging.Formatter(TEXT_LOG_FORMAT, TEXT_DATE_FORMAT)


def error_result(
    error_message: str, error_type: str, stack_trace: list[str] | None, request_id: str = ""
) -> dict[str, Any]:
    """The error document the runtime posts (and the Invoke API returns) for a failed init or invoke."""
    return {
        "errorMessage": error_message or "",
        "errorType": error_type or "",
        "requestId": request_id,
        "stackTrace": stack_trace or [],
    }


def stack_trace(frames: traceback.StackSummary | list[traceback.FrameSummary]) -> list[str]:
    """``stackTrace`` entries as the runtime builds them: one ``traceback.format_list`` string per frame."""
    return traceback.format_list(list(frames))


def _indent_with_nbsp(line: str) -> str:
    stripped = line.lstrip(" ")
    return ERROR_INDENT * (len(line) - len(stripped)) + stripped


def text_error_message(error: dict[str, Any], separator: str = ERROR_LINE_SEPARATOR) -> str:
    """The ``[ERROR] Type: message`` event the runtime logs for an uncaught error (Text format).

    One CloudWatch event, no trailing newline. The ``Traceback`` header is there even when the stack
    trace is empty (an import error has none), as in real logs.
    """
    description = "[ERROR]"
    error_type = error.get("errorType")
    error_message = error.get("errorMessage")
    if error_type:
        description += " " + error_type
    if error_message:
        description += (":" if error_type else "") + " " + error_message
    lines = [description]
    frames = error.get("stackTrace")
    if frames is not None:
        lines.append("Traceback (most recent call last):")
        for frame in frames:
            if frame == "":
                lines.append("")
            else:
                lines.extend(_indent_with_nbsp(part) for part in frame.splitlines())
    return separator.join(lines)


def json_error_message(error: dict[str, Any], at: datetime) -> str:
    """The uncaught-error event in JSON format: second-precision timestamp without zone, as the runtime."""
    document = {"timestamp": at.astimezone(UTC).strftime(TEXT_DATE_FORMAT), "level": "ERROR", **error}
    return json.dumps(document)


# Attributes every LogRecord has; anything else on a record (``extra=``) is copied into the JSON record.
_RECORD_ATTRIBUTES: Final = frozenset(
    {
        "name",
        "msg",
        "args",
        "levelname",
        "levelno",
        "pathname",
        "filename",
        "module",
        "exc_info",
        "exc_text",
        "stack_info",
        "lineno",
        "funcName",
        "created",
        "msecs",
        "relativeCreated",
        "thread",
        "threadName",
        "processName",
        "process",
        "taskName",
        "aws_request_id",
        "tenant_id",
        "_frame_type",
    }
)


def record_level(levelno: int) -> int:
    """The runtime folds custom levels onto the standard ones (0, 10, ... 50) before choosing a frame."""
    return min(50, max(0, levelno)) // 10 * 10


class JsonLogFormatter(logging.Formatter):
    """The Python runtime's JSON application record: timestamp, level, message, logger, requestId, extras.

    Keys ``stackTrace``/``errorType``/``errorMessage``/``location`` appear only when the record carries
    ``exc_info``; keys whose value is None are dropped; one record is one event ending in ``\\n``.
    """

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        return moment.strftime(TEXT_DATE_FORMAT + ".%f")[:-3] + "Z"

    def format(self, record: logging.LogRecord) -> str:
        exc_info = record.exc_info
        document: dict[str, Any] = {
            "timestamp": self.formatTime(record),
            "level": logging.getLevelName(record_level(record.levelno)),
            "message": record.getMessage(),
            "logger": record.name,
            "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
            "errorType": exc_info[0].__name__ if exc_info and exc_info[0] else None,
            "errorMessage": str(exc_info[1]) if exc_info else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": f"{record.pathname}:{record.funcName}:{record.lineno}" if exc_info else None,
        }
        tenant_id = getattr(record, "tenant_id", None)
        if tenant_id is not None:
            document["tenantId"] = tenant_id
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in document:
                document[key] = value
        compact = {key: value for key, value in document.items() if value is not None}
        return json.dumps(compact, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------------------------
# Log levels (JSON format only: Lambda refuses log levels when the format is Text)
# ---------------------------------------------------------------------------------------------------------

APPLICATION_LOG_LEVELS: Final = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
SYSTEM_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARN")
_SEVERITY: Final = {name: rank for rank, name in enumerate(APPLICATION_LOG_LEVELS)}
_PYTHON_LEVEL_NAMES: Final = {"WARNING": "WARN", "CRITICAL": "FATAL", "NOTSET": "TRACE"}

# Level of each platform record, for SystemLogLevel filtering. Everything the lab emits is INFO, as in the
# records observed with the default SystemLogLevel (INFO); logsDropped would be WARN, extension and
# telemetry-subscription records DEBUG (the lab has neither).
PLATFORM_RECORD_LEVELS: Final = {
    "platform.initStart": "INFO",
    "platform.initRuntimeDone": "INFO",
    "platform.initReport": "INFO",
    "platform.start": "INFO",
    "platform.runtimeDone": "INFO",
    "platform.report": "INFO",
    "platform.logsDropped": "WARN",
    "platform.extension": "DEBUG",
    "platform.telemetrySubscription": "DEBUG",
}


def application_level(name: str | None) -> str:
    """Normalise a level name from Python logging or a JSON line to Lambda's names; unknown means INFO."""
    if not name:
        return "INFO"
    upper = name.upper()
    upper = _PYTHON_LEVEL_NAMES.get(upper, upper)
    return upper if upper in _SEVERITY else "INFO"


def level_enabled(level: str, threshold: str) -> bool:
    """True when an event at ``level`` passes a filter set at ``threshold`` (both Lambda level names)."""
    return _SEVERITY[application_level(level)] >= _SEVERITY[application_level(threshold)]


def stdout_line_level(message: str) -> str:
    """The level Lambda assigns to a raw stdout line in JSON format: its JSON ``level`` key, else INFO."""
    text = message.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            return "INFO"
        if isinstance(document, dict) and isinstance(document.get("level"), str):
            return application_level(document["level"])
    return "INFO"


def runtime_log_level(application_log_level: str | None) -> str:
    """What the Python runtime does with ``AWS_LAMBDA_LOG_LEVEL`` before ``setLevel``: TRACE → DEBUG."""
    if not application_log_level:
        return ""
    upper = application_log_level.upper()
    return "DEBUG" if upper == "TRACE" else upper


# ---------------------------------------------------------------------------------------------------------
# Platform lines
# ---------------------------------------------------------------------------------------------------------

# Fixed, plausible runtime versions: the lab does not track AWS's releases, it only needs the shape.
RUNTIME_VERSIONS: Final = {
    "python3.9": "python:3.9.v80",
    "python3.10": "python:3.10.v70",
    "python3.11": "python:3.11.v60",
    "python3.12": "python:3.12.v50",
    "python3.13": "python:3.13.v43",
    "nodejs18.x": "nodejs:18.v62",
    "nodejs20.x": "nodejs:20.v75",
    "nodejs22.x": "nodejs:22.v48",
}


def runtime_version(runtime: str) -> str:
    """``python3.11`` → ``python:3.11.v60``, ``nodejs20.x`` → ``nodejs:20.v75`` (INIT_START's ``Runtime
    Version``)."""
    known = RUNTIME_VERSIONS.get(runtime)
    if known:
        return known
    if runtime.startswith("python"):
        return f"{runtime[:6]}:{runtime[6:]}.v1"
    if runtime.startswith("nodejs"):
        return f"nodejs:{runtime[6:].removesuffix('.x')}.v1"
    return f"{runtime}.v1"


def runtime_version_arn(region: str, version: str) -> str:
    """A runtime version ARN with a stable 64-hex id derived from the version string."""
    digest = hashlib.sha256(version.encode()).hexdigest()
    return f"arn:aws:lambda:{region}::runtime:{digest}"


def log_stream_name(created: datetime, version: str, environment_id: str) -> str:
    """``YYYY/MM/DD/[$LATEST]<32 hex>``, dated by the environment's creation (UTC), not by the event."""
    day = created.astimezone(UTC).strftime("%Y/%m/%d")
    return f"{day}/[{version}]{environment_id}"


def iso_millis(at: datetime) -> str:
    """``2024-05-20T16:29:45.009Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _hundredths(ms: float) -> int:
    return round(ms * 100)


def format_ms(ms: float) -> str:
    """Durations are printed with two decimals."""
    return f"{_hundredths(ms) / 100:.2f}"


def billed_duration_ms(duration_ms: float, init_duration_ms: float | None = None) -> int:
    """Billed Duration: ceil(Duration + Init Duration) in whole ms, computed on the printed (2-decimal)
    values so a REPORT line is self-consistent. INIT is billed for on-demand managed runtimes since
    2025-08-01; before that, cold-start lines showed ceil(Duration) only.
    """
    total = _hundredths(duration_ms) + (_hundredths(init_duration_ms) if init_duration_ms else 0)
    return max(1, -(-total // 100))


def max_memory_used_mb(max_rss_kb: int) -> int:
    """Max Memory Used in whole MB, rounded up, from a peak resident set size in KiB (``ru_maxrss``)."""
    return max(1, math.ceil(max_rss_kb / 1024))


@dataclass(frozen=True)
class Report:
    """The figures of one REPORT line (Text) or ``platform.report`` record (JSON)."""

    request_id: str
    duration_ms: float
    billed_duration_ms: int
    memory_size_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None = None
    status: Literal["timeout", "error"] | None = None
    error_type: str | None = None


def init_start_line(runtime_version: str, runtime_version_arn: str) -> str:
    return f"INIT_START Runtime Version: {runtime_version}\tRuntime Version ARN: {runtime_version_arn}\n"


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}\n"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}\n"


def report_line(report: Report) -> str:
    """``REPORT RequestId: …\\tDuration: … ms\\t…\\t\\n``: every field is followed by a tab."""
    fields = [
        f"REPORT RequestId: {report.request_id}",
        f"Duration: {format_ms(report.duration_ms)} ms",
        f"Billed Duration: {report.billed_duration_ms} ms",
        f"Memory Size: {report.memory_size_mb} MB",
        f"Max Memory Used: {report.max_memory_used_mb} MB",
    ]
    if report.init_duration_ms is not None:
        fields.append(f"Init Duration: {format_ms(report.init_duration_ms)} ms")
    if report.status is not None:
        fields.append(f"Status: {report.status}")
        if report.error_type:
            fields.append(f"Error Type: {report.error_type}")
    return "\t".join(fields) + "\t\n"


def init_report_line(
    init_duration_ms: float,
    phase: Phase,
    status: Literal["error", "timeout", "success"],
    error_type: str | None = None,
) -> str:
    """``INIT_REPORT Init Duration: … ms\\tPhase: init|invoke\\tStatus: …[\\tError Type: …]``.

    Lambda writes it when init fails or times out (on-demand functions); ``Phase: invoke`` is the retry
    Lambda makes when the first request arrives.
    """
    fields = [
        f"INIT_REPORT Init Duration: {format_ms(init_duration_ms)} ms",
        f"Phase: {phase}",
        f"Status: {status}",
    ]
    if error_type:
        fields.append(f"Error Type: {error_type}")
    return "\t".join(fields) + "\n"


def timeout_seconds(timeout_s: float) -> str:
    return f"{timeout_s:.2f}"


def timeout_line(at: datetime, request_id: str, timeout_s: float) -> str:
    """``2019-09-18T00:02:46.542Z <request id> Task timed out after 3.00 seconds`` (spaces, not tabs)."""
    return f"{iso_millis(at)} {request_id} Task timed out after {timeout_seconds(timeout_s)} seconds\n"


def timeout_error(request_id: str, timeout_s: float) -> dict[str, str]:
    """What the Invoke API returns to the caller of a timed-out invocation."""
    return {
        "errorMessage": (
            f"RequestId: {request_id} Error: Task timed out after {timeout_seconds(timeout_s)} seconds"
        ),
        "errorType": SANDBOX_TIMEDOUT,
    }


# Go's names for Linux signals (its ``syscall`` signal table): Lambda's platform is written in Go and words a
# runtime's death as Go's ``exec.ExitError`` does.
GO_SIGNAL_NAMES: Final = {
    1: "hangup",
    2: "interrupt",
    3: "quit",
    4: "illegal instruction",
    5: "trace/breakpoint trap",
    6: "aborted",
    7: "bus error",
    8: "floating point exception",
    9: "killed",
    10: "user defined signal 1",
    11: "segmentation fault",
    12: "user defined signal 2",
    13: "broken pipe",
    14: "alarm clock",
    15: "terminated",
    16: "stack fault",
    17: "child exited",
    18: "continued",
    19: "stopped (signal)",
    20: "stopped",
    21: "stopped (tty input)",
    22: "stopped (tty output)",
    23: "urgent I/O condition",
    24: "CPU time limit exceeded",
    25: "file size limit exceeded",
    26: "virtual timer expired",
    27: "profiling timer expired",
    28: "window changed",
    29: "I/O possible",
    30: "power failure",
    31: "bad system call",
}


def exit_reason(returncode: int | None) -> str:
    """How Lambda words a runtime process's death, from its exit status (``Popen.returncode``).

    As Lambda's platform (the runtime API daemon) does: exit status 0 is ``Runtime exited without providing a
    reason``; any other status ``Runtime exited with error: exit status N``; a signal ``… signal: killed``,
    in Go's words, ``signal: signal N`` for a signal Go has no name for. None (the lab could not learn the
    status) reads as no reason given.
    """
    if returncode is None or returncode == 0:
        return "Runtime exited without providing a reason"
    if returncode < 0:
        name = GO_SIGNAL_NAMES.get(-returncode, f"signal {-returncode}")
        return f"Runtime exited with error: signal: {name}"
    return f"Runtime exited with error: exit status {returncode}"


def exit_error_lines(request_id: str, reason: str) -> list[str]:
    """The two lines Lambda writes when the runtime process dies during an invocation."""
    return [f"RequestId: {request_id} Error: {reason}\n", f"{EXIT_ERROR}\n"]


def exit_error(request_id: str, reason: str) -> dict[str, str]:
    return {"errorType": EXIT_ERROR, "errorMessage": f"RequestId: {request_id} Error: {reason}"}


# ---------------------------------------------------------------------------------------------------------
# Platform records, JSON format
# ---------------------------------------------------------------------------------------------------------

PlatformStatus = Literal["success", "failure", "error", "timeout"]


def platform_record(at: datetime, record_type: str, record: dict[str, Any]) -> str:
    """One platform event in JSON format: ``{"time":…,"type":"platform.…","record":{…}}`` (compact)."""
    return json.dumps({"time": iso_millis(at), "type": record_type, "record": record}, separators=(",", ":"))


def _round3(ms: float) -> float:
    return round(ms, 3)


def init_start_record(
    at: datetime,
    runtime_version: str,
    runtime_version_arn: str,
    function_name: str,
    function_version: str,
) -> str:
    return platform_record(
        at,
        "platform.initStart",
        {
            "initializationType": INIT_TYPE,
            "phase": "init",
            "runtimeVersion": runtime_version,
            "runtimeVersionArn": runtime_version_arn,
            "functionName": function_name,
            "functionVersion": function_version,
        },
    )


def init_runtime_done_record(
    at: datetime, phase: Phase, status: PlatformStatus, error_type: str | None = None
) -> str:
    record: dict[str, Any] = {"initializationType": INIT_TYPE, "phase": phase, "status": status}
    if error_type:
        record["errorType"] = error_type
    return platform_record(at, "platform.initRuntimeDone", record)


def init_report_record(
    at: datetime,
    phase: Phase,
    status: PlatformStatus,
    init_duration_ms: float,
    error_type: str | None = None,
) -> str:
    record: dict[str, Any] = {"initializationType": INIT_TYPE, "phase": phase, "status": status}
    if error_type:
        record["errorType"] = error_type
    record["metrics"] = {"durationMs": _round3(init_duration_ms)}
    return platform_record(at, "platform.initReport", record)


def start_record(at: datetime, request_id: str, version: str) -> str:
    return platform_record(at, "platform.start", {"requestId": request_id, "version": version})


def runtime_done_record(
    at: datetime,
    request_id: str,
    *,
    status: PlatformStatus,
    duration_ms: float,
    produced_bytes: int,
    error_type: str | None = None,
) -> str:
    record: dict[str, Any] = {"requestId": request_id, "status": status}
    if error_type:
        record["errorType"] = error_type
    record["metrics"] = {"durationMs": _round3(duration_ms), "producedBytes": produced_bytes}
    return platform_record(at, "platform.runtimeDone", record)


def report_record(at: datetime, report: Report, status: PlatformStatus) -> str:
    metrics: dict[str, Any] = {
        "durationMs": _round3(report.duration_ms),
        "billedDurationMs": report.billed_duration_ms,
        "memorySizeMB": report.memory_size_mb,
        "maxMemoryUsedMB": report.max_memory_used_mb,
    }
    if report.init_duration_ms is not None:
        metrics["initDurationMs"] = _round3(report.init_duration_ms)
    record: dict[str, Any] = {"requestId": report.request_id, "status": status}
    if report.error_type:
        record["errorType"] = report.error_type
    record["metrics"] = metrics
    return platform_record(at, "platform.report", record)
