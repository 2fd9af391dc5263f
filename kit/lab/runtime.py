"""The lab's Lambda runtime: runs a function's Python code the way Lambda does, without Docker.

Each execution environment is a worker process (``kit.lab.runtime_worker``) started with the function's
environment only (its configured variables, Lambda's reserved ones, the credentials and extra variables the
caller gives); it imports the handler once (a cold start, timed as Init Duration) and then serves one request
at a time, keeping module state warm. When every environment of a function is busy another is started (a new
log stream), up to a cap, then requests queue. A request that outlives the function's timeout gets its
environment killed, as Lambda does; so does any environment whose configuration ``revision`` is no longer the
function's, so the next request after an update is a cold start. An environment that dies while idle (killed
from outside) never had the request, so it is replaced by a cold start with no error; one that dies during a
request is Lambda's ``Runtime.ExitError``, and the next request is a cold start too.

Every line Lambda would write (platform lines, the runtime's log records, ``print`` output) is handed to the
caller's sink as ``(log_group, log_stream, [(epoch_ms, message), ...])`` once per request, before ``invoke``
returns; formats come from ``kit.lab.lambda_logs``.

Log levels follow Lambda: with ``log_format="Text"`` Lambda refuses application/system log levels, so
``AWS_LAMBDA_LOG_LEVEL`` is not set and the runtime leaves the root logger at WARNING (a function's
``logger.info`` is dropped unless it sets a level itself). With ``"JSON"`` the application level (INFO unless
configured) becomes ``AWS_LAMBDA_LOG_LEVEL`` and is also applied to records and stdout lines; the system
level (INFO unless configured) filters platform records. Neither is applied to Text output.

What this module must not do: call AWS (configuration arrives as data, see ``function_config_from_answer``),
write to CloudWatch itself (that is the sink's job), pass the lab's own environment to a function, or leave
a worker process behind: workers are killed on ``close()``, and ``PR_SET_PDEATHSIG`` (``engines.
_die_with_parent``) ends them if the lab process dies. Linux only, like ``kit.lab.engines``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from kit.errors import ConfigurationError, EngineError
from kit.lab import lambda_logs
from kit.lab.engines import PROJECT_ROOT, _die_with_parent
from kit.lab.lambda_logs import LogEvent, Report

log = logging.getLogger("kit.lab.runtime")

LogSink = Callable[[str, str, list[LogEvent]], None]
"""Receives ``(log_group, log_stream, events)``; events are in order with non-decreasing timestamps."""

InvokeKind = Literal["response", "function-error", "timeout", "init-error"]

DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_MAX_WORKERS_PER_FUNCTION = 10
INIT_TIMEOUT_S = 10.0  # Lambda's limit on the init phase of on-demand functions

# Variables Lambda sets itself and refuses in a function's configuration.
RESERVED_VARIABLES = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


# ---------------------------------------------------------------------------------------------------------
# Configuration (plain data)
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionConfig:
    """What the runtime needs to know about a function, as ``get_function_configuration`` describes it.

    ``revision`` identifies this configuration: environments started for another revision are never reused,
    so a changed configuration means a cold start, as after ``update_function_configuration``. Left empty, it
    is derived from the other fields. ``code_path`` is the directory put first on ``sys.path`` and used as
    the working directory (Lambda's ``/var/task``); without it, the project root, so ``kit.handler.app``
    imports.
    """

    function_name: str
    handler: str
    runtime: str = "python3.11"
    timeout_s: float = 3.0
    memory_mb: int = 128
    environment: Mapping[str, str] = field(default_factory=dict)
    role_arn: str = ""
    log_level: str | None = None
    log_format: lambda_logs.LogFormat = "Text"
    system_log_level: str | None = None
    log_group: str = ""
    code_path: str | None = None
    version: str = "$LATEST"
    region: str = "us-east-1"
    account_id: str = DEFAULT_ACCOUNT_ID
    revision: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "environment", dict(self.environment))
        if not self.log_group:
            object.__setattr__(self, "log_group", f"/aws/lambda/{self.function_name}")
        fmt = {"text": "Text", "json": "JSON"}.get(str(self.log_format).lower())
        if fmt is None:
            raise ConfigurationError(
                f"Function {self.function_name}: log format {self.log_format!r} is not one Lambda knows; "
                "use 'Text' or 'JSON'."
            )
        object.__setattr__(self, "log_format", fmt)
        self._validate()
        if not self.revision:
            object.__setattr__(self, "revision", _fingerprint(self._content()))

    def _validate(self) -> None:
        name = self.function_name
        if not self.runtime.startswith("python3."):
            raise ConfigurationError(
                f"Function {name} uses runtime {self.runtime}; the lab runs only Python runtimes (python3.x)."
            )
        if self.timeout_s <= 0:
            raise ConfigurationError(f"Function {name}: timeout must be positive, not {self.timeout_s}.")
        if not 128 <= self.memory_mb <= 10240:
            raise ConfigurationError(
                f"Function {name}: memory size {self.memory_mb} MB is outside Lambda's 128-10240 MB."
            )
        if self.log_format == "Text" and (self.log_level or self.system_log_level):
            # Lambda's own answer to this configuration.
            raise ConfigurationError(
                f'Function {name}: LogLevel is not supported when LogFormat is set to "Text". Remove '
                'LogLevel from your request or change the LogFormat to "Json" and try again.'
            )
        if self.log_level and self.log_level.upper() not in lambda_logs.APPLICATION_LOG_LEVELS:
            raise ConfigurationError(
                f"Function {name}: application log level {self.log_level!r} is not one of "
                f"{', '.join(lambda_logs.APPLICATION_LOG_LEVELS)}."
            )
        if self.system_log_level and self.system_log_level.upper() not in lambda_logs.SYSTEM_LOG_LEVELS:
            raise ConfigurationError(
                f"Function {name}: system log level {self.system_log_level!r} is not one of "
                f"{', '.join(lambda_logs.SYSTEM_LOG_LEVELS)}."
            )
        reserved = sorted(set(self.environment) & RESERVED_VARIABLES)
        if reserved:
            raise ConfigurationError(
                f"Function {name}: Lambda was unable to configure your environment variables because the "
                "environment variables you have provided contains reserved keys that are currently not "
                f"supported for modification. Reserved keys used in this request: {', '.join(reserved)}"
            )

    def _content(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "revision"}

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    @property
    def application_log_level(self) -> str | None:
        """The level Lambda applies to application logs: JSON format only, INFO unless configured."""
        if self.log_format != "JSON":
            return None
        return (self.log_level or "INFO").upper()

    @property
    def effective_system_log_level(self) -> str | None:
        if self.log_format != "JSON":
            return None
        return (self.system_log_level or "INFO").upper()


def _fingerprint(content: Mapping[str, Any]) -> str:
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def function_config_from_answer(
    answer: Mapping[str, Any], region: str, *, code_path: str | None = None
) -> FunctionConfig:
    """Read a boto3 ``lambda.get_function_configuration`` answer (AWS's or moto's) into a FunctionConfig.

    The revision hashes everything that describes the function (including ``RevisionId``, ``CodeSha256``
    and ``LastModified`` when present) because moto keeps no ``RevisionId``: any update gives a new one.
    """
    logging_config = answer.get("LoggingConfig") or {}
    environment = (answer.get("Environment") or {}).get("Variables") or {}
    function_arn = str(answer.get("FunctionArn", ""))
    arn_parts = function_arn.split(":")
    account_id = arn_parts[4] if len(arn_parts) > 4 and arn_parts[4] else DEFAULT_ACCOUNT_ID
    described = {
        key: answer.get(key)
        for key in (
            "FunctionName",
            "Handler",
            "Runtime",
            "Timeout",
            "MemorySize",
            "Environment",
            "Role",
            "LoggingConfig",
            "RevisionId",
            "CodeSha256",
            "LastModified",
            "Version",
        )
    }
    described["code_path"] = code_path
    return FunctionConfig(
        function_name=str(answer["FunctionName"]),
        handler=str(answer.get("Handler") or ""),
        runtime=str(answer.get("Runtime") or "python3.11"),
        timeout_s=float(answer.get("Timeout") or 3),
        memory_mb=int(answer.get("MemorySize") or 128),
        environment={str(k): str(v) for k, v in environment.items()},
        role_arn=str(answer.get("Role") or ""),
        log_level=logging_config.get("ApplicationLogLevel"),
        log_format=logging_config.get("LogFormat") or "Text",
        system_log_level=logging_config.get("SystemLogLevel"),
        log_group=logging_config.get("LogGroup") or "",
        code_path=code_path,
        region=region,
        account_id=account_id,
        revision=_fingerprint(described),
    )


@dataclass(frozen=True)
class LambdaCredentials:
    """The execution role's credentials as Lambda puts them in the function's environment."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


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


# ---------------------------------------------------------------------------------------------------------
# The worker's environment (pure)
# ---------------------------------------------------------------------------------------------------------


def worker_environment(
    config: FunctionConfig,
    *,
    log_stream: str,
    credentials: LambdaCredentials | None,
    extra_env: Mapping[str, str] | None,
    python_executable: str,
    project_root: Path,
    tmp_dir: str,
) -> dict[str, str]:
    """Everything the function's process sees in ``os.environ``, and nothing of the lab's.

    Order of precedence: defaults Lambda lets a function override (PATH, LANG, TZ, PYTHONPATH), then the
    function's variables, then Lambda's reserved variables, then credentials, then ``extra_env`` (the lab's
    ``AWS_ENDPOINT_URL_<SERVICE>``). Two deliberate additions: ``TMPDIR`` (a private directory standing for
    ``/tmp``) and ``AWS_CONFIG_FILE``/``AWS_SHARED_CREDENTIALS_FILE`` pointing at files that do not exist, so
    botocore in the function never reads the developer's ``~/.aws``.
    """
    task_root = config.code_path or str(project_root)
    python_bin = str(Path(python_executable).parent)
    environment: dict[str, str] = {
        "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
    }
    environment.update(config.environment)
    # The worker module itself must import, whatever PYTHONPATH the function configures.
    user_path = config.environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = f"{user_path}:{project_root}" if user_path else str(project_root)
    environment.update(
        {
            "_HANDLER": config.handler,
            "AWS_REGION": config.region,
            "AWS_DEFAULT_REGION": config.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": config.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": config.version,
            "AWS_LAMBDA_INITIALIZATION_TYPE": lambda_logs.INIT_TYPE,
            "AWS_LAMBDA_LOG_GROUP_NAME": config.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "LAMBDA_TASK_ROOT": task_root,
            "TMPDIR": tmp_dir,
            "AWS_CONFIG_FILE": os.path.join(tmp_dir, ".aws-config-absent"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(tmp_dir, ".aws-credentials-absent"),
        }
    )
    application_level = config.application_log_level
    if application_level:
        environment["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        environment["AWS_LAMBDA_LOG_LEVEL"] = application_level
    if credentials is not None:
        environment["AWS_ACCESS_KEY_ID"] = credentials.access_key_id
        environment["AWS_SECRET_ACCESS_KEY"] = credentials.secret_access_key
        if credentials.session_token:
            environment["AWS_SESSION_TOKEN"] = credentials.session_token
    environment.update(extra_env or {})
    return environment


# ---------------------------------------------------------------------------------------------------------
# Platform log lines, Text or JSON, with the system level applied
# ---------------------------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _epoch_ms(at: datetime) -> float:
    return at.timestamp() * 1000


class _InvocationLog:
    """Collects one request's events; knows the function's format and levels."""

    def __init__(self, config: FunctionConfig) -> None:
        self.config = config
        self.events: list[tuple[float, str]] = []
        self._json = config.log_format == "JSON"
        self._application_level = config.application_log_level
        self._system_level = config.effective_system_log_level

    def add(self, ts_ms: float, message: str) -> None:
        self.events.append((ts_ms, message))

    def application(self, ts_ms: float, message: str, level: str | None, stream: str) -> None:
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

    def init_done(
        self,
        at: datetime,
        phase: lambda_logs.Phase,
        status: Literal["success", "error", "timeout"],
        init_ms: float,
        error_type: str | None,
    ) -> None:
        if self._json:
            self._platform(
                at,
                "platform.initRuntimeDone",
                lambda: lambda_logs.init_runtime_done_record(at, phase, status, error_type),
            )
            self._platform(
                at,
                "platform.initReport",
                lambda: lambda_logs.init_report_record(at, phase, status, init_ms, error_type),
            )
        elif status != "success":  # a successful on-demand init has no Text INIT_REPORT
            self.add(_epoch_ms(at), lambda_logs.init_report_line(init_ms, phase, status, error_type))

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
        if not self._json:
            self.add(_epoch_ms(at), lambda_logs.timeout_line(at, request_id, self.config.timeout_s))

    def exit_error(self, at: datetime, request_id: str, reason: str) -> None:
        if not self._json:
            for line in lambda_logs.exit_error_lines(request_id, reason):
                self.add(_epoch_ms(at), line)

    def end(
        self,
        at: datetime,
        report: Report,
        *,
        status: lambda_logs.PlatformStatus,
        produced_bytes: int,
        error_type: str | None,
    ) -> None:
        """END and REPORT; in JSON, runtimeDone and report records.

        The JSON records name the error type of any failure; the Text REPORT names it only with a Status,
        that is never for an ordinary handler exception.
        """
        if self._json:
            report = replace(report, error_type=error_type)
            self._platform(
                at,
                "platform.runtimeDone",
                lambda: lambda_logs.runtime_done_record(
                    at,
                    report.request_id,
                    status=status,
                    duration_ms=report.duration_ms,
                    produced_bytes=produced_bytes,
                    error_type=report.error_type,
                ),
            )
            self._platform(at, "platform.report", lambda: lambda_logs.report_record(at, report, status))
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


# ---------------------------------------------------------------------------------------------------------
# Worker processes
# ---------------------------------------------------------------------------------------------------------


@dataclass
class _Message:
    kind: Literal["message", "eof", "timeout"]
    body: dict[str, Any] | None = None


@dataclass(eq=False)
class _Worker:
    """One execution environment: a worker process and the three pipes the lab holds."""

    proc: subprocess.Popen[bytes]
    requests_fd: int
    events_fd: int
    raw_fd: int
    key: tuple[str, str]
    function_name: str
    log_group: str
    log_stream: str
    tmp_dir: tempfile.TemporaryDirectory[str]
    started: float  # time.monotonic() just before the process was started
    max_rss_kb: int = 0
    events_buffer: bytearray = field(default_factory=bytearray)
    raw_buffer: bytearray = field(default_factory=bytearray)
    raw_open: bool = True
    closed: bool = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def peak_rss_kb(self) -> int:
        """Peak RSS from the kernel (used when the worker cannot report it: timeout, crash)."""
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.max_rss_kb = max(self.max_rss_kb, int(line.split()[1]))
        return self.max_rss_kb

    def exited(self) -> bool:
        """True once the process has ended (and is reaped); an idle environment can be killed from outside."""
        return self.proc.poll() is not None

    def returncode(self) -> int | None:
        """The exit status once the event pipe is at EOF (the process is ending); None if it lingers."""
        try:
            return self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self) -> None:
        """SIGKILL the worker and everything it started (its own process group); nothing else.

        Safe from any thread: the thread serving a request on this worker sees EOF and cleans up itself.
        """
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def kill(self) -> None:
        """Terminate, reap, close the pipes. Only by the thread that holds the worker (or when idle)."""
        if self.closed:
            return
        self.closed = True
        self.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for fd in (self.requests_fd, self.events_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        # The raw output's fd belongs to proc.stdout: closed through it, or its finaliser would close the same
        # number again later, by then perhaps another pipe's or socket's (seen as EBADF in another worker).
        if self.proc.stdout is not None:
            with contextlib.suppress(OSError):
                self.proc.stdout.close()
        with contextlib.suppress(OSError):
            self.tmp_dir.cleanup()

    def exchange(
        self,
        outgoing: bytes,
        deadline: float,
        until: frozenset[str],
        on_log: Callable[[float, str, str | None, str], None],
        *,
        drain: bool = True,
    ) -> _Message:
        """Send ``outgoing``, then read events until one of kind ``until`` arrives, EOF, or ``deadline``.

        A single poll loop over the request pipe (write side), the event pipe and the raw-output pipe, so
        nothing blocks on a full pipe in either direction. Log events and raw lines go to ``on_log`` as they
        come; once the awaited message is in, raw output already written is drained (unless ``drain`` is
        False), so every line the function produced before answering lands before END. A message that only
        says the handler is about to run must not drain: the handler may already be writing to its raw
        output, and those lines belong after the log records still queued behind that message.
        """
        message = self._take_messages(until, on_log)  # read with the previous message, not yet taken
        if message is not None:
            if drain:
                self._drain_raw(on_log)
            return _Message("message", message)
        pending = memoryview(outgoing)
        poller = select.poll()
        poller.register(self.events_fd, select.POLLIN)
        if self.raw_open:
            poller.register(self.raw_fd, select.POLLIN)
        if pending:
            poller.register(self.requests_fd, select.POLLOUT)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return _Message("timeout")
            for fd, _flags in poller.poll(max(1, int(remaining * 1000))):
                if fd == self.requests_fd:
                    try:
                        pending = pending[os.write(fd, pending) :]
                    except BrokenPipeError:
                        pending = pending[len(pending) :]
                    except BlockingIOError:
                        continue
                    if not pending:
                        poller.unregister(fd)
                elif fd == self.raw_fd:
                    if not self._read_raw(on_log):
                        poller.unregister(fd)
                elif fd == self.events_fd:
                    chunk = _read_some(fd)
                    if chunk is None:
                        continue
                    if not chunk:
                        self._drain_raw(on_log)
                        return _Message("eof")
                    self.events_buffer.extend(chunk)
                    message = self._take_messages(until, on_log)
                    if message is not None:
                        if drain:
                            self._drain_raw(on_log)
                        return _Message("message", message)

    def leftovers(self, on_log: Callable[[float, str, str | None, str], None]) -> None:
        """Hand ``on_log`` what an ended process left in its pipes; no waiting, it is all written already."""
        while chunk := _read_some(self.events_fd):
            self.events_buffer.extend(chunk)
        self._take_messages(frozenset(), on_log)
        self._drain_raw(on_log)
        self.flush_raw(on_log)

    def _take_messages(
        self, until: frozenset[str], on_log: Callable[[float, str, str | None, str], None]
    ) -> dict[str, Any] | None:
        while True:
            newline = self.events_buffer.find(b"\n")
            if newline < 0:
                return None
            line = bytes(self.events_buffer[:newline])
            del self.events_buffer[: newline + 1]
            body = json.loads(line)
            if "max_rss_kb" in body:
                self.max_rss_kb = max(self.max_rss_kb, int(body["max_rss_kb"]))
            if body.get("kind") == "log":
                on_log(float(body["ts_ms"]), str(body["message"]), body.get("level"), body["stream"])
            elif body.get("kind") in until:
                return dict(body)

    def _read_raw(self, on_log: Callable[[float, str, str | None, str], None]) -> bool:
        chunk = _read_some(self.raw_fd)
        if chunk is None:
            return True
        if not chunk:
            self.raw_open = False
            self.flush_raw(on_log)
            return False
        self.raw_buffer.extend(chunk)
        now_ms = time.time() * 1000
        while (newline := self.raw_buffer.find(b"\n")) >= 0:
            line = bytes(self.raw_buffer[: newline + 1]).decode(errors="replace")
            del self.raw_buffer[: newline + 1]
            on_log(now_ms, line, None, "raw")
        return True

    def _drain_raw(self, on_log: Callable[[float, str, str | None, str], None]) -> None:
        while self.raw_open:
            ready, _, _ = select.select([self.raw_fd], [], [], 0)
            if not ready or not self._read_raw(on_log):
                break

    def flush_raw(self, on_log: Callable[[float, str, str | None, str], None]) -> None:
        """An unterminated raw line at the end of a request is an event of its own."""
        if self.raw_buffer:
            on_log(time.time() * 1000, self.raw_buffer.decode(errors="replace"), None, "raw")
            self.raw_buffer.clear()


def _read_some(fd: int) -> bytes | None:
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return None


# ---------------------------------------------------------------------------------------------------------
# The runtime
# ---------------------------------------------------------------------------------------------------------


@dataclass
class _Pool:
    """The execution environments of one function."""

    idle: list[_Worker] = field(default_factory=list)
    busy: int = 0
    key: tuple[str, str] | None = None


@dataclass
class _InitOutcome:
    status: Literal["success", "error", "timeout"]
    duration_ms: float
    error: dict[str, Any] | None = None

    @property
    def error_type(self) -> str | None:
        return None if self.error is None else str(self.error.get("errorType") or "") or None


@dataclass
class _Job:
    """What one ``invoke`` call carries through cold start, request and report."""

    config: FunctionConfig
    key: tuple[str, str]
    event_json: str
    credentials: LambdaCredentials | None
    extra_env: dict[str, str]
    log: _InvocationLog
    workers: list[_Worker] = field(default_factory=list)  # every worker started for this call


@dataclass
class _Ending:
    """How a request ended, before it is written up as END/REPORT and an InvokeResult."""

    kind: InvokeKind
    payload: Any
    duration_ms: float
    status: lambda_logs.PlatformStatus = "success"
    report_status: Literal["timeout", "error"] | None = None
    error_type: str | None = None
    produced_bytes: int = 0
    keep: bool = True


_INIT_ANSWERS = frozenset({"ready", "init-error"})
_RECEIVED = frozenset({"received"})
_REQUEST_ANSWERS = frozenset({"result", "error"})


def _answered(body: dict[str, Any], invoke_started: float | None) -> _Ending:
    """The worker answered: a response (JSON text or base64 bytes) or the handler's error document."""
    duration_ms = float(body["duration_ms"])
    if invoke_started is not None:  # init was retried inside the invoke phase: its time is Duration too
        duration_ms = (time.monotonic() - invoke_started) * 1000
    if body["kind"] == "error":
        error = dict(body["error"])
        return _Ending(
            kind="function-error",
            payload=error,
            duration_ms=duration_ms,
            status="failure",
            error_type=str(error.get("errorType") or "") or None,
        )
    if "payload_base64" in body:
        raw = base64.b64decode(body["payload_base64"])
        return _Ending(kind="response", payload=raw, duration_ms=duration_ms, produced_bytes=len(raw))
    text = str(body["payload"])
    return _Ending(
        kind="response",
        payload=json.loads(text),
        duration_ms=duration_ms,
        produced_bytes=len(text.encode()),
    )


class LambdaRuntime:
    """Runs Lambda functions locally, one worker process per execution environment. Thread-safe.

    ``invoke`` blocks until the request is done (call it from asyncio with ``run_in_executor`` or use
    ``ainvoke``). Use as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        sink: LogSink,
        *,
        max_workers_per_function: int = DEFAULT_MAX_WORKERS_PER_FUNCTION,
        init_timeout_s: float = INIT_TIMEOUT_S,
        python_executable: str | None = None,
        project_root: Path | None = None,
    ) -> None:
        if max_workers_per_function < 1:
            raise ConfigurationError("max_workers_per_function must be at least 1.")
        self._sink = sink
        self._cap = max_workers_per_function
        self._init_timeout_s = init_timeout_s
        self._python = python_executable or sys.executable
        self._project_root = project_root or PROJECT_ROOT
        self._lock = threading.Condition()
        self._pools: dict[tuple[str, str, str], _Pool] = {}
        self._live: set[_Worker] = set()
        self._closed = False
        # PR_SET_PDEATHSIG fires when the *thread* that forked the worker ends, so every worker is started
        # from this one long-lived thread rather than from whichever executor thread called invoke().
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kit-lambda-spawner")
        # ainvoke's own threads: the event loop's default pool (CPUs + 4 threads) would cap concurrent
        # invocations below the worker cap; each thread only waits on a worker's pipes.
        self._invokers = ThreadPoolExecutor(
            max_workers=max(32, 4 * self._cap), thread_name_prefix="kit-invoke"
        )

    # -- public API ----------------------------------------------------------------------------------------

    def invoke(
        self,
        config: FunctionConfig,
        event: Any,
        *,
        credentials: LambdaCredentials | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> InvokeResult:
        """Run one request through the function and return its outcome; its logs are in the sink."""
        try:
            event_json = json.dumps(event)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"The event for function {config.function_name} is not JSON-serialisable: {exc}."
            ) from exc
        job = _Job(
            config=config,
            key=(config.revision, _environment_fingerprint(credentials, extra_env)),
            event_json=event_json,
            credentials=credentials,
            extra_env=dict(extra_env or {}),
            log=_InvocationLog(config),
        )
        worker = self._acquire(job)
        keep: _Worker | None = None
        try:
            result, keep = self._run(job, worker)
        finally:
            self._release(config, worker, keep)
        return result

    async def ainvoke(
        self,
        config: FunctionConfig,
        event: Any,
        *,
        credentials: LambdaCredentials | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> InvokeResult:
        """``invoke`` on the event loop's default executor."""
        loop = asyncio.get_running_loop()
        call = functools.partial(self.invoke, config, event, credentials=credentials, extra_env=extra_env)
        return await loop.run_in_executor(self._invokers, call)

    def worker_pids(self, function_name: str | None = None, *, idle_only: bool = False) -> list[int]:
        """Pids of live worker processes (all functions, or one); ``idle_only``: those between requests."""
        with self._lock:
            workers = [w for pool in self._pools.values() for w in pool.idle] if idle_only else self._live
            return sorted(w.pid for w in workers if function_name is None or w.function_name == function_name)

    def close(self) -> None:
        """Kill every worker (idle or busy) and stop the spawner thread. Further invokes raise."""
        with self._lock:
            self._closed = True
            idle = [worker for pool in self._pools.values() for worker in pool.idle]
            busy = [worker for worker in self._live if worker not in idle]
            self._live.clear()
            for pool in self._pools.values():
                pool.idle.clear()
            self._lock.notify_all()
        for worker in idle:
            worker.kill()
        for worker in busy:
            # Its request sees the process die (Runtime.ExitError) and that thread closes the pipes.
            worker.terminate()
        self._spawner.shutdown(wait=True)
        self._invokers.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> LambdaRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- pool ----------------------------------------------------------------------------------------------

    def _acquire(self, job: _Job) -> _Worker | None:
        """A warm worker for ``job.key``, or None: the caller holds a slot and must start one (cold start)."""
        config, key = job.config, job.key
        pool_key = (config.region, config.account_id, config.function_name)
        retired: list[_Worker] = []
        dead: list[_Worker] = []
        try:
            with self._lock:
                while True:
                    if self._closed:
                        raise EngineError(
                            f"The lab's Lambda runtime is closed; cannot invoke {config.function_name}."
                        )
                    pool = self._pools.setdefault(pool_key, _Pool())
                    if pool.key != key:
                        # A new configuration: idle environments of the old one are never used again.
                        pool.key = key
                        retired.extend(w for w in pool.idle if w.key != key)
                        pool.idle = [w for w in pool.idle if w.key == key]
                        self._live.difference_update(retired)
                    ended = [w for w in pool.idle if w.exited()]
                    if ended:
                        dead.extend(ended)
                        pool.idle = [w for w in pool.idle if w not in ended]
                        self._live.difference_update(ended)
                    if pool.idle:
                        pool.busy += 1
                        return pool.idle.pop()
                    if pool.busy < self._cap:
                        pool.busy += 1
                        return None
                    self._lock.wait()
        finally:
            for worker in retired:
                worker.kill()
            for worker in dead:
                self._bury(job, worker, _InvocationLog(config))

    def _release(self, config: FunctionConfig, used: _Worker | None, keep: _Worker | None) -> None:
        pool_key = (config.region, config.account_id, config.function_name)
        discard: list[_Worker] = []
        with self._lock:
            pool = self._pools[pool_key]
            pool.busy -= 1
            if keep is not None and not self._closed and keep.key == pool.key and not keep.closed:
                pool.idle.append(keep)
            elif keep is not None:
                discard.append(keep)
                self._live.discard(keep)
            if used is not None and used is not keep:
                discard.append(used)
                self._live.discard(used)
            self._lock.notify_all()
        for worker in discard:
            worker.kill()

    # -- one request ---------------------------------------------------------------------------------------

    def _run(self, job: _Job, worker: _Worker | None) -> tuple[InvokeResult, _Worker | None]:
        if worker is not None:
            job.workers.append(worker)
        try:
            if worker is not None:
                warm = self._request(job, worker, init_ms=None, invoke_started=None, reused=True)
                if warm is not None:
                    return warm
                # It died while idle, before taking the request: nothing ran, a new environment takes it.
            cold = self._cold_start(job)
            if isinstance(cold, InvokeResult):
                return cold, None
            worker, init_ms, invoke_started = cold
            result = self._request(job, worker, init_ms=init_ms, invoke_started=invoke_started)
            assert result is not None  # only a reused environment can turn out dead before the request
            return result
        except BaseException:
            # Whatever went wrong in the lab itself, no worker outlives it.
            for started in job.workers:
                started.kill()
                self._forget(started)
            raise

    def _cold_start(self, job: _Job) -> tuple[_Worker, float | None, float | None] | InvokeResult:
        """A new execution environment: INIT_START, init; on failure, Lambda's second try in the invoke phase.

        Returns the worker with its Init Duration (None when init only succeeded on the second try, whose
        time counts in Duration instead) and the monotonic start of the invoke phase (None unless it began
        with that second try), or the finished result when init failed twice.
        """
        config = job.config
        stream = lambda_logs.log_stream_name(_now(), config.version, uuid.uuid4().hex)
        job.log.init_start(_now())
        worker, outcome = self._start(job, stream=stream, limit_s=self._init_timeout_s)
        if outcome.status == "success":
            job.log.init_done(_now(), "init", "success", outcome.duration_ms, None)
            return worker, outcome.duration_ms, None
        job.log.init_done(_now(), "init", outcome.status, outcome.duration_ms, outcome.error_type)
        worker.kill()
        self._forget(worker)
        invoke_started = time.monotonic()
        worker, outcome = self._start(job, stream=stream, limit_s=config.timeout_s)
        job.log.init_done(_now(), "invoke", outcome.status, outcome.duration_ms, outcome.error_type)
        if outcome.status == "success":
            return worker, None, invoke_started
        request_id = str(uuid.uuid4())
        job.log.start(_now(), request_id)
        worker.peak_rss_kb()
        worker.kill()
        self._forget(worker)
        if outcome.status == "timeout":
            job.log.timeout(_now(), request_id)
            ending = _Ending(
                kind="timeout",
                payload=lambda_logs.timeout_error(request_id, config.timeout_s),
                duration_ms=config.timeout_s * 1000,
                status="timeout",
                report_status="timeout",
                error_type=lambda_logs.SANDBOX_TIMEDOUT,
                keep=False,
            )
        else:
            ending = _Ending(
                kind="init-error",
                payload=dict(outcome.error or {}),
                duration_ms=(time.monotonic() - invoke_started) * 1000,
                status="error",
                report_status="error",
                error_type=outcome.error_type,
                keep=False,
            )
        return self._finish(job, worker, request_id, ending, init_ms=None)

    def _start(self, job: _Job, *, stream: str, limit_s: float) -> tuple[_Worker, _InitOutcome]:
        """Start a worker and wait for its init: success, error (with the error document) or timeout."""
        closed_message = f"The lab's Lambda runtime is closed; {job.config.function_name} was not started."
        with self._lock:
            if self._closed:
                raise EngineError(closed_message)
        try:
            future = self._spawner.submit(self._spawn, job, stream)
        except RuntimeError as exc:  # the spawner was shut down by close() a moment ago
            raise EngineError(closed_message) from exc
        worker = future.result()
        job.workers.append(worker)
        with self._lock:
            self._live.add(worker)
            closed = self._closed
        if closed:
            raise EngineError(
                f"The lab's Lambda runtime closed while {job.config.function_name} was starting."
            )
        on_log = job.log.application
        answer = worker.exchange(b"", worker.started + limit_s, _INIT_ANSWERS, on_log)
        duration_ms = (time.monotonic() - worker.started) * 1000
        worker.flush_raw(on_log)
        if answer.kind == "timeout":
            return worker, _InitOutcome("timeout", limit_s * 1000)
        if answer.kind == "eof":
            reason = lambda_logs.exit_reason(worker.returncode())
            error = {"errorType": lambda_logs.EXIT_ERROR, "errorMessage": f"Error: {reason}"}
            return worker, _InitOutcome("error", duration_ms, error)
        assert answer.body is not None
        if answer.body["kind"] == "init-error":
            return worker, _InitOutcome("error", duration_ms, dict(answer.body["error"]))
        return worker, _InitOutcome("success", duration_ms)

    def _spawn(self, job: _Job, stream: str) -> _Worker:
        """Runs on the spawner thread only (see ``__init__``)."""
        config = job.config
        tmp_dir = tempfile.TemporaryDirectory(prefix="kit-lambda-")
        environment = worker_environment(
            config,
            log_stream=stream,
            credentials=job.credentials,
            extra_env=job.extra_env,
            python_executable=self._python,
            project_root=self._project_root,
            tmp_dir=tmp_dir.name,
        )
        requests_read, requests_write = os.pipe()
        events_read, events_write = os.pipe()
        command = [
            self._python,
            "-s",
            "-X",
            "utf8",
            "-m",
            "kit.lab.runtime_worker",
            "--requests",
            str(requests_read),
            "--events",
            str(events_write),
            "--parent-pid",
            str(os.getpid()),
        ]
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=environment["LAMBDA_TASK_ROOT"],
                pass_fds=(requests_read, events_write),
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
            )
        except OSError as exc:
            for fd in (requests_read, requests_write, events_read, events_write):
                os.close(fd)
            tmp_dir.cleanup()
            raise EngineError(
                f"Could not start a worker process for function {config.function_name} "
                f"with {self._python} in {environment['LAMBDA_TASK_ROOT']}: {exc}."
            ) from exc
        finally:
            # The child has its copies; ours would keep the pipes open after the child died.
            with contextlib.suppress(OSError):
                os.close(requests_read)
            with contextlib.suppress(OSError):
                os.close(events_write)
        assert proc.stdout is not None
        raw_fd = proc.stdout.fileno()
        for fd in (requests_write, events_read, raw_fd):
            os.set_blocking(fd, False)
        return _Worker(
            proc=proc,
            requests_fd=requests_write,
            events_fd=events_read,
            raw_fd=raw_fd,
            key=job.key,
            function_name=config.function_name,
            log_group=config.log_group,
            log_stream=stream,
            tmp_dir=tmp_dir,
            started=started,
        )

    def _forget(self, worker: _Worker) -> None:
        with self._lock:
            self._live.discard(worker)

    def _bury(self, job: _Job, worker: _Worker, leftovers: _InvocationLog) -> None:
        """Close an idle environment that ended; what it wrote since its last request goes to its stream."""
        worker.leftovers(leftovers.application)
        worker.kill()
        self._forget(worker)
        self._deliver(job.config, worker.log_stream, leftovers)

    def _request(
        self,
        job: _Job,
        worker: _Worker,
        *,
        init_ms: float | None,
        invoke_started: float | None,
        reused: bool = False,
    ) -> tuple[InvokeResult, _Worker | None] | None:
        """START, the handler's run on ``worker``, END and REPORT.

        None when ``worker`` is a ``reused`` environment that ended before it took the request (killed while
        idle): nothing ran and nothing is logged for the request; the caller starts a new environment.
        """
        config = job.config
        request_id = str(uuid.uuid4())
        start_at = _now()
        started = invoke_started if invoke_started is not None else time.monotonic()
        deadline = started + config.timeout_s
        request = {
            "request_id": request_id,
            "event": "__EVENT__",
            "deadline_ms": int(time.time() * 1000 + (deadline - time.monotonic()) * 1000),
            "invoked_function_arn": config.function_arn,
        }
        # The event is spliced in as text: it was serialised once already, in invoke().
        line = json.dumps(request).replace('"__EVENT__"', job.event_json, 1) + "\n"
        # What arrives before the worker takes the request was written after its last one: it follows START
        # (on Lambda, leaked work resumes in the next invocation), or, from a dead environment, goes to its
        # own stream.
        earlier = _InvocationLog(config)
        answer = worker.exchange(line.encode(), deadline, _RECEIVED, earlier.application, drain=False)
        if answer.kind == "eof" and reused:
            self._bury(job, worker, earlier)
            return None
        job.log.start(start_at, request_id)
        job.log.events.extend(earlier.events)
        if answer.kind == "message":
            answer = worker.exchange(b"", deadline, _REQUEST_ANSWERS, job.log.application)
        worker.flush_raw(job.log.application)
        if answer.kind == "message":
            assert answer.body is not None
            ending = _answered(answer.body, invoke_started)
        elif answer.kind == "timeout":
            worker.peak_rss_kb()
            worker.kill()
            job.log.timeout(_now(), request_id)
            ending = _Ending(
                kind="timeout",
                payload=lambda_logs.timeout_error(request_id, config.timeout_s),
                duration_ms=config.timeout_s * 1000,
                status="timeout",
                report_status="timeout",
                error_type=lambda_logs.SANDBOX_TIMEDOUT,
                keep=False,
            )
        else:  # the process died: sys.exit(), os._exit(), a crash in an extension, the OOM killer
            reason = lambda_logs.exit_reason(worker.returncode())
            job.log.exit_error(_now(), request_id, reason)
            ending = _Ending(
                kind="function-error",
                payload=lambda_logs.exit_error(request_id, reason),
                duration_ms=(time.monotonic() - started) * 1000,
                status="error",
                report_status="error",
                error_type=lambda_logs.EXIT_ERROR,
                keep=False,
            )
        result = self._finish(job, worker, request_id, ending, init_ms=init_ms)
        if not ending.keep:
            worker.kill()
            self._forget(worker)
            return result, None
        return result, worker

    def _finish(
        self, job: _Job, worker: _Worker, request_id: str, ending: _Ending, *, init_ms: float | None
    ) -> InvokeResult:
        """END and REPORT (or their JSON records), the delivery to the sink, and the InvokeResult."""
        config = job.config
        max_memory_mb = lambda_logs.max_memory_used_mb(worker.max_rss_kb or worker.peak_rss_kb())
        report = Report(
            request_id=request_id,
            duration_ms=ending.duration_ms,
            billed_duration_ms=lambda_logs.billed_duration_ms(ending.duration_ms, init_ms),
            memory_size_mb=config.memory_mb,
            max_memory_used_mb=max_memory_mb,
            init_duration_ms=init_ms,
            status=ending.report_status,
            error_type=ending.error_type if ending.report_status == "error" else None,
        )
        job.log.end(
            _now(),
            report,
            status=ending.status,
            produced_bytes=ending.produced_bytes,
            error_type=ending.error_type,
        )
        self._deliver(config, worker.log_stream, job.log)
        failed = ending.kind != "response"
        return InvokeResult(
            kind=ending.kind,
            payload=ending.payload,
            request_id=request_id,
            duration_ms=round(ending.duration_ms, 2),
            billed_ms=report.billed_duration_ms,
            init_ms=None if init_ms is None else round(init_ms, 2),
            max_memory_mb=max_memory_mb,
            log_group=config.log_group,
            log_stream=worker.log_stream,
            error_type=ending.error_type if failed else None,
            error_message=str(ending.payload.get("errorMessage") or "") if failed else None,
        )

    def _deliver(self, config: FunctionConfig, stream: str, record: _InvocationLog) -> None:
        events = record.ordered()
        if not events:
            return
        try:
            self._sink(config.log_group, stream, events)
        except Exception:
            # The request itself happened; a failing log writer must not turn it into an error.
            log.exception(
                "The log sink failed to take %d events for %s (stream %s).",
                len(events),
                config.log_group,
                stream,
            )


Invoker = LambdaRuntime
"""The name the gateway knows the runtime by."""


def _environment_fingerprint(
    credentials: LambdaCredentials | None, extra_env: Mapping[str, str] | None
) -> str:
    """Environments are reused only with the same credentials and extra variables (hashed, not stored)."""
    material = {
        "credentials": None
        if credentials is None
        else [credentials.access_key_id, credentials.secret_access_key, credentials.session_token],
        "extra_env": sorted((extra_env or {}).items()),
    }
    return _fingerprint(material)


def iter_child_pids(parent: int | None = None) -> Iterator[int]:
    """Pids of live (non-zombie) processes whose parent is ``parent`` (this process by default)."""
    parent = os.getpid() if parent is None else parent
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            fields_after_name = stat[stat.rindex(")") + 2 :].split()
            if fields_after_name[0] != "Z" and int(fields_after_name[1]) == parent:
                yield int(entry.name)
