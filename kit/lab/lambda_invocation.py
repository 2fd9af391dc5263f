"""One invocation written up as Lambda writes it up: its log lines and what its caller gets back (pure).

The runtime (``kit.lab.runtime``) runs the function and reports what happened: the worker's answers, a
deadline passed, an exit status. This module decides what follows from those facts:

* which platform lines a request gets (``INIT_START``, ``INIT_REPORT``, ``START``, ``END``, ``REPORT``, the
  ``Task timed out`` line, the two lines of a runtime's death) or, in JSON format, which platform records,
  and which application lines pass the function's log levels: :class:`InvocationLog`;
* how an init ended (:class:`InitOutcome`) and how a request ended (:class:`Ending`): a response, the
  handler's error, a timeout, a dead runtime, an init that failed twice; whether its environment is kept;
* the REPORT figures (:func:`report_for`) and the Invoke API's answer (:class:`InvokeResult`).

The formats themselves are :mod:`kit.lab.lambda_logs`'s; nothing here writes a line by hand.

Log levels follow Lambda: with ``log_format="Text"`` no level applies (the Python runtime then leaves the
root logger at WARNING, a runtime-side matter). With ``"JSON"`` the application level (INFO unless
configured) is applied to log records and stdout lines, and the system level (INFO unless configured) to
platform records.

Nothing here is specific to one language runtime. This module must not read clocks (every time is an
argument: ``datetime`` for log times, milliseconds for durations), start processes or do I/O.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from kit.lab import lambda_logs
from kit.lab.lambda_config import FunctionConfig
from kit.lab.lambda_logs import LogEvent, Report

InvokeKind = Literal["response", "function-error", "timeout", "init-error"]
InitStatus = Literal["success", "error", "timeout"]


# ---------------------------------------------------------------------------------------------------------
# How an init and a request ended
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InitOutcome:
    """How one try at init ended; ``error`` is the error document of a failed one."""

    status: InitStatus
    duration_ms: float
    error: Mapping[str, Any] | None = None

    @property
    def error_type(self) -> str | None:
        return None if self.error is None else str(self.error.get("errorType") or "") or None

    @classmethod
    def answered(cls, body: Mapping[str, Any], duration_ms: float) -> InitOutcome:
        """The worker said ``ready`` or ``init-error`` (with the runtime's error document)."""
        if body["kind"] == "init-error":
            return cls("error", duration_ms, dict(body["error"]))
        return cls("success", duration_ms)

    @classmethod
    def timed_out(cls, limit_s: float) -> InitOutcome:
        """No answer within the limit: the init's duration is the limit itself."""
        return cls("timeout", limit_s * 1000)

    @classmethod
    def exited(cls, duration_ms: float, reason: str) -> InitOutcome:
        """The process ended before answering (``reason``: :func:`lambda_logs.exit_reason`)."""
        return cls(
            "error", duration_ms, {"errorType": lambda_logs.EXIT_ERROR, "errorMessage": f"Error: {reason}"}
        )


@dataclass(frozen=True)
class Ending:
    """How a request ended, before it is written up as END/REPORT and an :class:`InvokeResult`.

    ``status`` is the JSON platform records' status; ``report_status`` the Text REPORT's ``Status`` (only
    timeouts and runtime failures have one); ``keep`` whether the environment serves the next request.
    """

    kind: InvokeKind
    payload: Any
    duration_ms: float
    status: lambda_logs.PlatformStatus = "success"
    report_status: Literal["timeout", "error"] | None = None
    error_type: str | None = None
    produced_bytes: int = 0
    keep: bool = True

    @classmethod
    def answered(cls, body: Mapping[str, Any], *, invoke_phase_ms: float | None = None) -> Ending:
        """The worker answered: a response (JSON text or base64 bytes) or the handler's error document.

        The Duration is the handler's own time, unless init was retried inside the invoke phase: then it
        is ``invoke_phase_ms``, the time since that phase began.
        """
        duration_ms = float(body["duration_ms"]) if invoke_phase_ms is None else invoke_phase_ms
        if body["kind"] == "error":
            error = dict(body["error"])
            return cls(
                kind="function-error",
                payload=error,
                duration_ms=duration_ms,
                status="failure",
                error_type=str(error.get("errorType") or "") or None,
            )
        if "payload_base64" in body:
            raw = base64.b64decode(body["payload_base64"])
            return cls(kind="response", payload=raw, duration_ms=duration_ms, produced_bytes=len(raw))
        text = str(body["payload"])
        return cls(
            kind="response",
            payload=json.loads(text),
            duration_ms=duration_ms,
            produced_bytes=len(text.encode()),
        )

    @classmethod
    def timed_out(cls, request_id: str, timeout_s: float) -> Ending:
        """The function's timeout passed: Duration is the timeout exactly; the environment is killed."""
        return cls(
            kind="timeout",
            payload=lambda_logs.timeout_error(request_id, timeout_s),
            duration_ms=timeout_s * 1000,
            status="timeout",
            report_status="timeout",
            error_type=lambda_logs.SANDBOX_TIMEDOUT,
            keep=False,
        )

    @classmethod
    def exited(cls, request_id: str, reason: str, duration_ms: float) -> Ending:
        """The process died during the request (``sys.exit``, a crash, the OOM killer): Runtime.ExitError."""
        return cls(
            kind="function-error",
            payload=lambda_logs.exit_error(request_id, reason),
            duration_ms=duration_ms,
            status="error",
            report_status="error",
            error_type=lambda_logs.EXIT_ERROR,
            keep=False,
        )

    @classmethod
    def init_failed(cls, retry: InitOutcome, request_id: str, timeout_s: float, duration_ms: float) -> Ending:
        """Init failed in the init phase and again on its retry in the invoke phase (``retry``).

        A retry that timed out is the request's timeout; one that failed is the init's error, with the
        invoke phase's time as Duration.
        """
        if retry.status == "timeout":
            return cls.timed_out(request_id, timeout_s)
        return cls(
            kind="init-error",
            payload=dict(retry.error or {}),
            duration_ms=duration_ms,
            status="error",
            report_status="error",
            error_type=retry.error_type,
            keep=False,
        )


@dataclass(frozen=True)
class InvokeResult:
    """The outcome of one invocation, as the Invoke API would report it.

    ``payload`` is the decoded response for ``"response"`` (bytes when the handler returned bytes) and the
    error document (``errorMessage``, ``errorType``, ...) otherwise. ``init_ms`` is set on cold starts
    whose init succeeded in the init phase.
    """

    kind: InvokeKind
    payload: Any
    request_id: str
    duration_ms: float
    billed_ms: int
    init_ms: float | None
    max_memory_mb: int
    log_group: str
    log_stream: str
    error_type: str | None = None
    error_message: str | None = None

    @property
    def function_error(self) -> str | None:
        """The Invoke API's ``FunctionError`` header: ``Unhandled`` for every kind of failure."""
        return None if self.kind == "response" else "Unhandled"


def report_for(
    ending: Ending,
    request_id: str,
    *,
    memory_size_mb: int,
    max_memory_used_mb: int,
    init_ms: float | None,
) -> Report:
    """The REPORT figures: INIT is billed with the Duration; ``Error Type`` only beside a ``Status``."""
    return Report(
        request_id=request_id,
        duration_ms=ending.duration_ms,
        billed_duration_ms=lambda_logs.billed_duration_ms(ending.duration_ms, init_ms),
        memory_size_mb=memory_size_mb,
        max_memory_used_mb=max_memory_used_mb,
        init_duration_ms=init_ms,
        status=ending.report_status,
        error_type=ending.error_type if ending.report_status == "error" else None,
    )


def invoke_result(ending: Ending, report: Report, *, log_group: str, log_stream: str) -> InvokeResult:
    """What the caller of Invoke gets; durations rounded as the REPORT prints them."""
    failed = ending.kind != "response"
    return InvokeResult(
        kind=ending.kind,
        payload=ending.payload,
        request_id=report.request_id,
        duration_ms=round(ending.duration_ms, 2),
        billed_ms=report.billed_duration_ms,
        init_ms=None if report.init_duration_ms is None else round(report.init_duration_ms, 2),
        max_memory_mb=report.max_memory_used_mb,
        log_group=log_group,
        log_stream=log_stream,
        error_type=ending.error_type if failed else None,
        error_message=str(ending.payload.get("errorMessage") or "") if failed else None,
    )


# ---------------------------------------------------------------------------------------------------------
# The log of one request: platform lines, Text or JSON, with the function's levels applied
# ---------------------------------------------------------------------------------------------------------


def _epoch_ms(at: datetime) -> float:
    return at.timestamp() * 1000


class InvocationLog:
    """Collects one request's events (its cold start's included); knows the function's format and levels."""

    def __init__(self, config: FunctionConfig) -> None:
        self.config = config
        self.events: list[tuple[float, str]] = []
        self._json = config.log_format == "JSON"
        self._application_level = config.application_log_level
        self._system_level = config.effective_system_log_level

    def add(self, ts_ms: float, message: str) -> None:
        self.events.append((ts_ms, message))

    def application(self, ts_ms: float, message: str, level: str | None, stream: str) -> None:
        """A line the function wrote: a log record (``stream="app"``, with its level) or raw output.

        In JSON format, a line below the application level is dropped; a raw line's level is its JSON
        ``level`` key, else INFO. In Text format every line is kept.
        """
        if self._application_level is not None:
            if level is None:
                level = lambda_logs.stdout_line_level(message) if stream != "app" else "INFO"
            if not lambda_logs.level_enabled(level, self._application_level):
                return
        self.add(ts_ms, message)

    def _platform(self, at: datetime, record_type: str, json_text: Callable[[], str]) -> None:
        assert self._system_level is not None
        level = lambda_logs.PLATFORM_RECORD_LEVELS.get(record_type, "INFO")
        if lambda_logs.level_enabled(level, self._system_level):
            self.add(_epoch_ms(at), json_text())

    def init_start(self, at: datetime) -> None:
        version = lambda_logs.runtime_version(self.config.runtime)
        arn = lambda_logs.runtime_version_arn(self.config.region, version)
        if self._json:
            self._platform(
                at,
                "platform.initStart",
                lambda: lambda_logs.init_start_record(
                    at, version, arn, self.config.function_name, self.config.version
                ),
            )
        else:
            self.add(_epoch_ms(at), lambda_logs.init_start_line(version, arn))

    def init_done(self, at: datetime, phase: lambda_logs.Phase, outcome: InitOutcome) -> None:
        """The end of one try at init; a successful on-demand init has no Text INIT_REPORT."""
        if self._json:
            self._platform(
                at,
                "platform.initRuntimeDone",
                lambda: lambda_logs.init_runtime_done_record(at, phase, outcome.status, outcome.error_type),
            )
            self._platform(
                at,
                "platform.initReport",
                lambda: lambda_logs.init_report_record(
                    at, phase, outcome.status, outcome.duration_ms, outcome.error_type
                ),
            )
        elif outcome.status != "success":
            self.add(
                _epoch_ms(at),
                lambda_logs.init_report_line(outcome.duration_ms, phase, outcome.status, outcome.error_type),
            )

    def start(self, at: datetime, request_id: str) -> None:
        if self._json:
            self._platform(
                at,
                "platform.start",
                lambda: lambda_logs.start_record(at, request_id, self.config.version),
            )
        else:
            self.add(_epoch_ms(at), lambda_logs.start_line(request_id, self.config.version))

    def timeout(self, at: datetime, request_id: str) -> None:
        """``Task timed out after N seconds`` (Text only; JSON says it in the report record's status)."""
        if not self._json:
            self.add(_epoch_ms(at), lambda_logs.timeout_line(at, request_id, self.config.timeout_s))

    def exit_error(self, at: datetime, request_id: str, reason: str) -> None:
        """The two lines of a runtime that died during the request (Text only)."""
        if not self._json:
            for line in lambda_logs.exit_error_lines(request_id, reason):
                self.add(_epoch_ms(at), line)

    def end(self, at: datetime, report: Report, ending: Ending) -> None:
        """END and REPORT; in JSON, runtimeDone and report records.

        The JSON records name the error type of any failure; the Text REPORT names it only with a Status,
        that is never for an ordinary handler exception.
        """
        if self._json:
            report = replace(report, error_type=ending.error_type)
            self._platform(
                at,
                "platform.runtimeDone",
                lambda: lambda_logs.runtime_done_record(
                    at,
                    report.request_id,
                    status=ending.status,
                    duration_ms=report.duration_ms,
                    produced_bytes=ending.produced_bytes,
                    error_type=report.error_type,
                ),
            )
            self._platform(
                at, "platform.report", lambda: lambda_logs.report_record(at, report, ending.status)
            )
        else:
            self.add(_epoch_ms(at), lambda_logs.end_line(report.request_id))
            self.add(_epoch_ms(at), lambda_logs.report_line(report))

    def ordered(self) -> list[LogEvent]:
        """Events in the order they happened, timestamps made non-decreasing (CloudWatch sorts by time)."""
        ordered: list[LogEvent] = []
        last = 0
        for ts_ms, message in self.events:
            last = max(last, int(ts_ms))
            ordered.append((last, message))
        return ordered
