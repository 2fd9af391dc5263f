"""The lab's Lambda runtime: runs a function's Python or Node.js code the way Lambda does, without Docker.

This is the process pool, a shell around pure decisions: what a function's configuration says
(:mod:`kit.lab.lambda_config`), the environment its process starts with (:mod:`kit.lab.lambda_environment`),
and how each invocation is written up, its log lines and its result (:mod:`kit.lab.lambda_invocation`, with
the formats of :mod:`kit.lab.lambda_logs`). Here: processes, pipes, clocks and the pool.

Each execution environment is a worker process started with the function's environment only: for Python,
``kit.lab.runtime_worker`` on the lab's interpreter; for Node.js (:mod:`kit.lab.lambda_runtimes` says which
runtimes), ``runtime_worker.mjs`` on the machine's ``node`` with Lambda's flags, asked once for its version.
It loads the handler once (a cold start, timed as Init Duration) and then serves one request at a time,
keeping module state warm. Between requests an environment is frozen (SIGSTOP to its process group) and
thawed (SIGCONT) when it gets the next one, as Lambda freezes it: work a function left running resumes in a
later request, or never. When every environment of a function is busy another is started (a new log
stream), up to a cap, then requests queue. A request that outlives the function's timeout gets its
environment killed, as Lambda does; so does any environment whose configuration ``revision`` is no longer
the function's, so the next request after an update is a cold start. An environment that dies while
idle (killed from outside) never had the request, so it is replaced by a cold start with no error; one that
dies during a request is Lambda's ``Runtime.ExitError``, and the next request is a cold start too.

Every line Lambda would write (platform lines, the runtime's log records, ``print`` output) is handed to the
caller's sink as ``(log_group, log_stream, [(epoch_ms, message), ...])`` once per request, before ``invoke``
returns.

What this module must not do: call AWS (configuration arrives as data, see
``lambda_config.function_config_from_answer``), write to CloudWatch itself (that is the sink's job), pass the
lab's own environment to a function, or leave a worker process behind: workers are killed on ``close()``, and
``PR_SET_PDEATHSIG`` (``kit.lab.processes``) ends them if the lab process dies. Linux only, like
``kit.lab.engines``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from kit.errors import ConfigurationError, EngineError
from kit.lab import lambda_environment, lambda_logs, lambda_runtimes
from kit.lab.hops import LAMBDA_DURATION, RUNTIME_EXCHANGE, Hops
from kit.lab.lambda_config import FunctionConfig
from kit.lab.lambda_environment import LambdaCredentials
from kit.lab.lambda_invocation import (
    Ending,
    InitOutcome,
    InvocationLog,
    InvokeResult,
    invoke_result,
    report_for,
)
from kit.lab.lambda_logs import LogEvent
from kit.lab.lambda_runtimes import NodeMachine
from kit.lab.processes import killed_with_parent
from kit.local import PROJECT_ROOT

log = logging.getLogger("kit.lab.runtime")

LogSink = Callable[[str, str, list[LogEvent]], None]
"""Receives ``(log_group, log_stream, events)``; events are in order with non-decreasing timestamps."""

NODE_WORKER = Path(__file__).with_name("runtime_worker.mjs")
DEFAULT_MAX_WORKERS_PER_FUNCTION = 10
INIT_TIMEOUT_S = 10.0  # Lambda's limit on the init phase of on-demand functions


def _now() -> datetime:
    return datetime.now(UTC)


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
    frozen: bool = False

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

    def freeze(self) -> None:
        """Stop the environment between requests (SIGSTOP to its process group), as Lambda freezes it.

        Whatever the function left running (a thread, a timer, a child process) makes no progress until
        :meth:`thaw`; if the environment is never used again, it never runs at all.
        """
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGSTOP)
            self.frozen = True

    def thaw(self) -> None:
        """Let a frozen environment run again (SIGCONT), right before it is given a request.

        A signal sent to it from outside while it was frozen (SIGTERM) takes effect now: the request's
        handover then sees the process gone, and a new environment takes the request.
        """
        if self.frozen:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGCONT)
            self.frozen = False

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
class _Job:
    """What one ``invoke`` call carries through cold start, request and report."""

    config: FunctionConfig
    key: tuple[str, str]
    event_json: str
    credentials: LambdaCredentials | None
    extra_env: dict[str, str]
    log: InvocationLog
    workers: list[_Worker] = field(default_factory=list)  # every worker started for this call


_INIT_ANSWERS = frozenset({"ready", "init-error"})
_RECEIVED = frozenset({"received"})
_REQUEST_ANSWERS = frozenset({"result", "error"})


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
        node_executable: str | None = None,
        project_root: Path | None = None,
        hops: Hops | None = None,
    ) -> None:
        if max_workers_per_function < 1:
            raise ConfigurationError("max_workers_per_function must be at least 1.")
        self._sink = sink
        self._hops = hops or Hops()
        self._cap = max_workers_per_function
        self._init_timeout_s = init_timeout_s
        self._python = python_executable or sys.executable
        self._node_executable = node_executable
        self._node: NodeMachine | None = None  # asked once, on the first Node.js cold start
        self._mismatch_said: set[str] = set()
        self._project_root = project_root or PROJECT_ROOT
        self._defaults = lambda_environment.python_defaults(self._python, self._project_root)
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
            key=(config.revision, lambda_environment.environment_fingerprint(credentials, extra_env)),
            event_json=event_json,
            credentials=credentials,
            extra_env=dict(extra_env or {}),
            log=InvocationLog(config),
        )
        worker = self._acquire(job)
        keep: _Worker | None = None
        try:
            result, keep = self._run(job, worker)
        finally:
            self._release(config, worker, keep)
        self._hops.record(LAMBDA_DURATION, result.duration_ms / 1000)
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
                self._bury(job, worker, InvocationLog(config))

    def _release(self, config: FunctionConfig, used: _Worker | None, keep: _Worker | None) -> None:
        pool_key = (config.region, config.account_id, config.function_name)
        discard: list[_Worker] = []
        with self._lock:
            pool = self._pools[pool_key]
            pool.busy -= 1
            if keep is not None and not self._closed and keep.key == pool.key and not keep.closed:
                keep.freeze()
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
        job.log.init_done(_now(), "init", outcome)
        if outcome.status == "success":
            return worker, outcome.duration_ms, None
        worker.kill()
        self._forget(worker)
        invoke_started = time.monotonic()
        worker, outcome = self._start(job, stream=stream, limit_s=config.timeout_s)
        job.log.init_done(_now(), "invoke", outcome)
        if outcome.status == "success":
            return worker, None, invoke_started
        request_id = str(uuid.uuid4())
        job.log.start(_now(), request_id)
        worker.peak_rss_kb()
        worker.kill()
        self._forget(worker)
        if outcome.status == "timeout":
            job.log.timeout(_now(), request_id)
        invoke_phase_ms = (time.monotonic() - invoke_started) * 1000
        ending = Ending.init_failed(outcome, request_id, config.timeout_s, invoke_phase_ms)
        return self._finish(job, worker, request_id, ending, init_ms=None)

    def _start(self, job: _Job, *, stream: str, limit_s: float) -> tuple[_Worker, InitOutcome]:
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
            return worker, InitOutcome.timed_out(limit_s)
        if answer.kind == "eof":
            return worker, InitOutcome.exited(duration_ms, lambda_logs.exit_reason(worker.returncode()))
        assert answer.body is not None
        return worker, InitOutcome.answered(answer.body, duration_ms)

    def _spawn(self, job: _Job, stream: str) -> _Worker:
        """Runs on the spawner thread only (see ``__init__``)."""
        config = job.config
        task_root = lambda_environment.task_root(config, self._project_root)
        is_node = lambda_runtimes.family(config.runtime) == "node"
        node = self._node_machine(config.runtime) if is_node else None
        if node is None:
            defaults = self._defaults
        else:
            defaults = lambda_environment.node_defaults(node.executable, self._project_root, task_root)
        tmp_dir = tempfile.TemporaryDirectory(prefix="kit-lambda-")
        environment = lambda_environment.worker_environment(
            config,
            defaults,
            log_stream=stream,
            credentials=job.credentials,
            extra_env=job.extra_env,
            task_root=task_root,
            tmp_dir=tmp_dir.name,
        )
        requests_read, requests_write = os.pipe()
        events_read, events_write = os.pipe()
        if node is None:
            program = [self._python, "-s", "-X", "utf8", "-m", "kit.lab.runtime_worker"]
        else:
            arguments = lambda_runtimes.node_arguments(
                config.runtime, config.memory_mb, node, environment.get("NODE_OPTIONS", "")
            )
            program = [node.executable, *arguments, str(NODE_WORKER)]
        command = [
            *program,
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
                preexec_fn=killed_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
            )
        except OSError as exc:
            for fd in (requests_read, requests_write, events_read, events_write):
                os.close(fd)
            tmp_dir.cleanup()
            raise EngineError(
                f"Could not start a worker process for function {config.function_name} "
                f"with {program[0]} in {environment['LAMBDA_TASK_ROOT']}: {exc}."
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

    def _node_machine(self, runtime: str) -> NodeMachine:
        """The machine's ``node``, asked once; a differing major version is said once per runtime.

        Runs on the spawner thread only, so the cache needs no lock.
        """
        if self._node is None:
            executable = self._node_executable or shutil.which("node")
            if executable is None:
                raise EngineError(lambda_runtimes.missing_tool(runtime, lambda _name: None) or "no node")
            try:
                probe = subprocess.run(
                    [executable, "-e", lambda_runtimes.NODE_PROBE_SCRIPT],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    env={"PATH": lambda_environment.SYSTEM_PATH},
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise EngineError(f"Could not ask {executable} for its version: {exc}.") from exc
            try:
                self._node = lambda_runtimes.node_machine(executable, probe.stdout)
            except ConfigurationError as exc:
                raise EngineError(str(exc)) from exc
        mismatch = lambda_runtimes.version_mismatch(runtime, self._node)
        if mismatch is not None and runtime not in self._mismatch_said:
            self._mismatch_said.add(runtime)
            log.warning("The lab's Lambda runtime: %s", mismatch)
        return self._node

    def _forget(self, worker: _Worker) -> None:
        with self._lock:
            self._live.discard(worker)

    def _bury(self, job: _Job, worker: _Worker, leftovers: InvocationLog) -> None:
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
        exchange_started = time.perf_counter()
        worker.thaw()
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
        earlier = InvocationLog(config)
        answer = worker.exchange(line.encode(), deadline, _RECEIVED, earlier.application, drain=False)
        if answer.kind == "eof" and reused:
            self._bury(job, worker, earlier)
            return None
        job.log.start(start_at, request_id)
        job.log.events.extend(earlier.events)
        if answer.kind == "message":
            answer = worker.exchange(b"", deadline, _REQUEST_ANSWERS, job.log.application)
        worker.flush_raw(job.log.application)
        self._hops.record(RUNTIME_EXCHANGE, time.perf_counter() - exchange_started)
        if answer.kind == "message":
            assert answer.body is not None
            invoke_phase_ms = None if invoke_started is None else (time.monotonic() - invoke_started) * 1000
            ending = Ending.answered(answer.body, invoke_phase_ms=invoke_phase_ms)
        elif answer.kind == "timeout":
            worker.peak_rss_kb()
            worker.kill()
            job.log.timeout(_now(), request_id)
            ending = Ending.timed_out(request_id, config.timeout_s)
        else:  # the process died: sys.exit(), os._exit(), a crash in an extension, the OOM killer
            reason = lambda_logs.exit_reason(worker.returncode())
            job.log.exit_error(_now(), request_id, reason)
            ending = Ending.exited(request_id, reason, (time.monotonic() - started) * 1000)
        result = self._finish(job, worker, request_id, ending, init_ms=init_ms)
        if not ending.keep:
            worker.kill()
            self._forget(worker)
            return result, None
        return result, worker

    def _finish(
        self, job: _Job, worker: _Worker, request_id: str, ending: Ending, *, init_ms: float | None
    ) -> InvokeResult:
        """END and REPORT (or their JSON records), the delivery to the sink, and the InvokeResult."""
        config = job.config
        max_memory_mb = lambda_logs.max_memory_used_mb(worker.max_rss_kb or worker.peak_rss_kb())
        report = report_for(
            ending,
            request_id,
            memory_size_mb=config.memory_mb,
            max_memory_used_mb=max_memory_mb,
            init_ms=init_ms,
        )
        job.log.end(_now(), report, ending)
        self._deliver(config, worker.log_stream, job.log)
        return invoke_result(ending, report, log_group=config.log_group, log_stream=worker.log_stream)

    def _deliver(self, config: FunctionConfig, stream: str, record: InvocationLog) -> None:
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
