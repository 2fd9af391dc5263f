"""One Lambda execution environment: the process in which the lab runs a function's code.

``kit.lab.runtime`` starts it as ``python -m kit.lab.runtime_worker --requests FD --events FD --parent-pid
PID`` with the function's environment and nothing of the lab's. It plays the part of Lambda's Python runtime
(``awslambdaric``): it sets up logging the way that runtime does, resolves ``_HANDLER`` and imports the
module once (init), then calls the handler once per request with a context object, keeping module state
warm between requests, and reports failures with Lambda's error types and messages.

Protocol: JSON lines on two pipes the function never sees (their descriptors are passed by number and are
not stdin/stdout/stderr, so nothing the function prints can corrupt them):

* requests, lab → worker: ``{"request_id", "event", "deadline_ms", "invoked_function_arn"}``; EOF means
  shut down (exit 0).
* events, worker → lab, in the order things happened:
  ``{"kind": "log", "ts_ms", "stream": "app"|"stdout"|"stderr", "level", "message"}`` for every log record,
  uncaught-error report and line of ``print`` output (``sys.stdout``/``sys.stderr`` are replaced by line
  writers that send here); ``{"kind": "ready"}`` or ``{"kind": "init-error", "error"}`` once; then per request
  ``{"kind": "received", "request_id"}`` as soon as the request is read, before the handler runs (so the lab
  knows whether a process that died had started the request), then ``{"kind": "result", "request_id",
  "payload"|"payload_base64", …}`` or ``{"kind": "error", "request_id", "error", …}``, both with
  ``duration_ms`` and ``max_rss_kb``.

The process's own descriptors 1 and 2 are a third pipe that the lab reads as raw output (C extensions,
subprocesses, ``sys.__stdout__``). A timeout is enforced by the lab killing this process, not from inside.

Must not: import anything but the standard library and ``kit.lab.lambda_logs`` before the user's module (the
function should see an interpreter as bare as Lambda's), read the lab's configuration, or write to
descriptors 1 and 2 itself.
"""

from __future__ import annotations

import argparse
import base64
import decimal
import importlib
import io
import json
import logging
import math
import os
import resource
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO, cast

from kit.lab import lambda_logs

_WORKER_FILE = os.path.abspath(__file__)

Handler = Callable[[Any, Any], Any]


class _Fault(Exception):
    """A failure of the runtime's own work (handler resolution, marshalling), with Lambda's error type."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace


class _EventPipe:
    """Writes protocol messages to the lab; one lock so threads started by user code can log too."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        with self._lock:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]

    def log(self, message: str, *, stream: str, level: str | None, ts_ms: float | None = None) -> None:
        self.send(
            {
                "kind": "log",
                "ts_ms": time.time() * 1000 if ts_ms is None else ts_ms,
                "stream": stream,
                "level": level,
                "message": message,
            }
        )


class _LineWriter(io.TextIOBase):
    """``sys.stdout``/``sys.stderr``: each complete line becomes one log event, as Lambda splits stdout.

    Unbuffered like the runtime's wrapper: nothing waits for a flush. A line without its newline is held
    until the newline arrives or the invocation ends.
    """

    encoding = "utf-8"
    errors = "strict"

    def __init__(self, pipe: _EventPipe, stream: str, original: TextIO) -> None:
        super().__init__()
        self._pipe = pipe
        self._stream = stream
        self._original = original
        self._partial = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        # Code that writes to the descriptor directly reaches the raw-output pipe, which the lab also reads.
        return self._original.fileno()

    @property
    def buffer(self) -> Any:
        return self._original.buffer

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            pending = self._partial + text
            lines = pending.split("\n")
            self._partial = lines.pop()
        for line in lines:
            self._pipe.log(line + "\n", stream=self._stream, level=None)
        return len(text)

    def flush(self) -> None:
        # A flush does not end a line: Lambda's log capture only cuts events at newlines.
        return None

    def end_of_invocation(self) -> None:
        with self._lock:
            partial, self._partial = self._partial, ""
        if partial:
            self._pipe.log(partial, stream=self._stream, level=None)


class _RuntimeLogHandler(logging.Handler):
    """The root logger's handler: each formatted record is one log event tagged with its level."""

    def __init__(self, pipe: _EventPipe) -> None:
        super().__init__()
        self._pipe = pipe

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
        except Exception:
            self.handleError(record)
            return
        level = logging.getLevelName(lambda_logs.record_level(record.levelno))
        self._pipe.log(message, stream="app", level=str(level), ts_ms=record.created * 1000)


class _RequestIdFilter(logging.Filter):
    def __init__(self, state: _RuntimeState) -> None:
        super().__init__()
        self._state = state

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self._state.request_id or ""
        record.tenant_id = None
        return True


class _RuntimeState:
    def __init__(self) -> None:
        self.request_id: str | None = None


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self) -> None:
        self.cognito_identity_id: str | None = None
        self.cognito_identity_pool_id: str | None = None


class LambdaContext:
    """The handler's ``context``, with the Python runtime's attributes.

    As in the runtime, ``memory_limit_in_mb`` and the names come from the environment, so
    ``memory_limit_in_mb`` is a string.
    """

    def __init__(
        self,
        request_id: str,
        deadline_ms: int,
        invoked_function_arn: str,
        log_sink: Callable[[str], None],
    ) -> None:
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.client_context: Any = None
        self.identity = CognitoIdentity()
        self.tenant_id: str | None = None
        self._deadline_ms = deadline_ms
        self._log_sink = log_sink

    def get_remaining_time_in_millis(self) -> int:
        remaining = self._deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, msg: object) -> None:
        self._log_sink(str(msg))

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},client_context=None,"
            f"identity={self.identity},tenant_id=None])"
        )


def resolve_handler(handler: str) -> Handler:
    """``module.path.function`` → the function, failing exactly as the Python runtime does."""
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as exc:
        raise _Fault(lambda_logs.MALFORMED_HANDLER_NAME, f"Bad handler '{handler}': {exc}") from exc
    try:
        if module_name.split(".")[0] in sys.builtin_module_names:
            raise _Fault(
                lambda_logs.BUILT_IN_MODULE_CONFLICT,
                f"Cannot use built-in module {module_name} as a handler module",
            )
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _Fault(
            lambda_logs.IMPORT_MODULE_ERROR, f"Unable to import module '{module_name}': {exc}"
        ) from exc
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise _Fault(
            lambda_logs.USER_CODE_SYNTAX_ERROR,
            f"Syntax error in module '{module_name}': {exc}",
            trace,
        ) from exc
    try:
        return cast(Handler, getattr(module, function_name))
    except AttributeError as exc:
        raise _Fault(
            lambda_logs.HANDLER_NOT_FOUND,
            f"Handler '{function_name}' missing on module '{module_name}'",
        ) from exc


def _user_frames(tb: Any) -> list[traceback.FrameSummary]:
    """The traceback without this module's leading frames, as the runtime drops its bootstrap frames."""
    frames = list(traceback.extract_tb(tb))
    for index, frame in enumerate(frames):
        if os.path.abspath(frame.filename) != _WORKER_FILE:
            return frames[index:]
    return frames


def _exception_error(exc: BaseException, request_id: str = "") -> dict[str, Any]:
    return lambda_logs.error_result(
        str(exc),
        type(exc).__name__,
        lambda_logs.stack_trace(_user_frames(exc.__traceback__)),
        request_id,
    )


def _fault_error(fault: _Fault, request_id: str = "") -> dict[str, Any]:
    return lambda_logs.error_result(fault.message, fault.error_type, fault.trace, request_id)


def to_json(value: Any) -> str:
    """Marshal a handler's response as the runtime does: Decimals as plain numbers, NaN Decimals as NaN."""
    decimals: list[str] = []

    def encode_other(obj: Any) -> Any:
        if isinstance(obj, decimal.Decimal):
            if obj.is_nan():
                return math.nan
            decimals.append(str(obj))
            return f"\x00decimal{len(decimals) - 1}\x00"
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    ensure_ascii = os.environ.get("AWS_EXECUTION_ENV") != "AWS_Lambda_python3.12"
    text = json.dumps(value, default=encode_other, ensure_ascii=ensure_ascii)
    for index, number in enumerate(decimals):
        text = text.replace(f'"\\u0000decimal{index}\\u0000"', number)
    return text


def _max_rss_kb() -> int:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return int(max(own, children))


class Runtime:
    """The runtime loop: logging set-up, init, then one request at a time until the lab closes the pipe."""

    def __init__(self, requests_fd: int, events_fd: int) -> None:
        # Keep the protocol out of anything the function starts (os.system, fork): a child holding the
        # event pipe would hide this process's death from the lab.
        os.set_inheritable(requests_fd, False)
        os.set_inheritable(events_fd, False)
        self._requests = os.fdopen(requests_fd, "rb")
        self._pipe = _EventPipe(events_fd)
        self._state = _RuntimeState()
        self._json_format = (os.environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"
        self._stdout = _LineWriter(self._pipe, "stdout", sys.stdout)
        self._stderr = _LineWriter(self._pipe, "stderr", sys.stderr)

    def _setup_output(self) -> None:
        sys.stdout = cast(TextIO, self._stdout)
        sys.stderr = cast(TextIO, self._stderr)
        # Process-wide, as the runtime does: every formatter in the function prints UTC from now on.
        logging.Formatter.converter = time.gmtime
        handler = _RuntimeLogHandler(self._pipe)
        if self._json_format:
            handler.setFormatter(lambda_logs.JsonLogFormatter())
        else:
            handler.setFormatter(lambda_logs.text_formatter())
        handler.addFilter(_RequestIdFilter(self._state))
        root = logging.getLogger()
        # Only when AWS_LAMBDA_LOG_LEVEL is set: otherwise the root stays at WARNING and logger.info()
        # from a logger without its own level is dropped, exactly as on Lambda.
        level = lambda_logs.runtime_log_level(os.environ.get("AWS_LAMBDA_LOG_LEVEL"))
        if level in logging.getLevelNamesMapping():
            root.setLevel(level)
        root.addHandler(handler)

    def _log_error(self, error: dict[str, Any]) -> None:
        if self._json_format:
            message = lambda_logs.json_error_message(error, datetime.now(UTC))
        else:
            message = lambda_logs.text_error_message(error)
        self._pipe.log(message, stream="app", level="ERROR")

    def _end_of_output(self) -> None:
        self._stdout.end_of_invocation()
        self._stderr.end_of_invocation()

    def _init(self) -> Handler | None:
        try:
            return resolve_handler(os.environ.get("_HANDLER", ""))
        except _Fault as fault:
            error = _fault_error(fault)
        except Exception as exc:
            error = _exception_error(exc)
        logging.warning(lambda_logs.LAMBDA_WARNING_UNHANDLED)
        self._log_error(error)
        self._end_of_output()
        self._pipe.send({"kind": "init-error", "error": error, "max_rss_kb": _max_rss_kb()})
        return None

    def _context_log(self, message: str) -> None:
        self._pipe.log(message, stream="app", level=None)

    def _invoke(self, handler: Handler, request: dict[str, Any]) -> None:
        request_id = str(request["request_id"])
        self._state.request_id = request_id
        context = LambdaContext(
            request_id,
            int(request["deadline_ms"]),
            str(request["invoked_function_arn"]),
            self._context_log,
        )
        started = time.perf_counter()
        outcome: dict[str, Any]
        try:
            response = handler(request["event"], context)
            if isinstance(response, bytes):
                outcome = {"kind": "result", "payload_base64": base64.b64encode(response).decode()}
            else:
                try:
                    payload = to_json(response)
                except Exception as exc:
                    raise _Fault(lambda_logs.MARSHAL_ERROR, f"Unable to marshal response: {exc}") from exc
                outcome = {"kind": "result", "payload": payload}
        except _Fault as fault:
            error = _fault_error(fault, request_id)
            self._log_error(error)
            outcome = {"kind": "error", "error": error}
        except Exception as exc:
            error = _exception_error(exc, request_id)
            self._log_error(error)
            outcome = {"kind": "error", "error": error}
        duration_ms = (time.perf_counter() - started) * 1000
        self._end_of_output()
        outcome.update(request_id=request_id, duration_ms=duration_ms, max_rss_kb=_max_rss_kb())
        self._pipe.send(outcome)

    def run(self) -> int:
        self._setup_output()
        handler = self._init()
        if handler is None:
            return 1
        self._pipe.send({"kind": "ready", "max_rss_kb": _max_rss_kb()})
        for line in self._requests:
            request = json.loads(line)
            # Lambda's runtime takes each invocation by asking for it (/runtime/invocation/next): an
            # environment that died before asking never had it, and the lab gives it to a new one.
            self._pipe.send({"kind": "received", "request_id": request["request_id"]})
            self._invoke(handler, request)
        return 0


_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def confine_to_loopback() -> None:
    """Make every name lookup outside loopback fail, as on a machine with no network.

    Functions run with ``AWS_ENDPOINT_URL`` pointing at the lab, but code may still build a real endpoint
    itself (the seed's handler posts to ``https://{domainName}/{stage}``). That must fail here, quickly and
    visibly, and never send a packet anywhere but 127.0.0.1.
    """
    real_getaddrinfo = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name not in _LOOPBACK_NAMES and not str(name).startswith("127."):
            raise socket.gaierror(
                socket.EAI_NONAME, f"{name} is outside the kit lab (only 127.0.0.1 answers)"
            )
        return real_getaddrinfo(host, *args, **kwargs)

    socket.getaddrinfo = loopback_only


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kit.lab.runtime_worker")
    parser.add_argument("--requests", type=int, required=True, help="fd of the request pipe")
    parser.add_argument("--events", type=int, required=True, help="fd of the event pipe")
    parser.add_argument("--parent-pid", type=int, required=True, help="the lab's pid")
    args = parser.parse_args(argv)
    # The lab set PR_SET_PDEATHSIG before exec; if it died before that, we were already re-parented.
    if os.getppid() != args.parent_pid:
        return 1
    confine_to_loopback()
    return Runtime(args.requests, args.events).run()


if __name__ == "__main__":
    sys.exit(main())
