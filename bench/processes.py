"""The lab's process tree, seen from outside: start and stop the lab host, read CPU time and memory.

``LabHost`` starts :mod:`bench.lab_host` and waits (bounded) for its ready line. ``sample_tree`` reads
``/proc`` for the host and every descendant and names each by what it runs (the lab process itself, Lambda
workers, DynamoDB Local, the Next.js stand-in), so a phase's CPU seconds can be split by role: that split is
where the time goes. Linux only, like the lab.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.errors import EngineError
from kit.lab.runtime import iter_child_pids
from kit.local import PROJECT_ROOT

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ROLE_LAB = "lab process"
ROLE_WORKERS = "lambda workers"
ROLE_ENGINE = "dynamodb local"
ROLE_BACKEND = "next.js stand-in"
ROLE_OTHER = "other"
# Descendants found by one walk of /proc; the lab has a dozen or so, so this only guards a runaway.
MAX_TREE = 500


THREAD_GATEWAY = "gateway event loop"
THREAD_INVOKE = "invoke threads (IPC to workers)"
THREAD_LOG_WRITER = "log writer (into moto's store)"
THREAD_MOTO = "moto server (logs, config)"
THREAD_FRONT = "dynamodb front door"
THREAD_OTHER = "other threads"
# CPU of the lab process not found in any live thread: threads that ended during the phase. moto's server
# answers each request on a thread of a connection it does not keep, so these are mostly moto's.
THREAD_ENDED = "ended request threads (mostly moto's)"


def thread_role(name: str, server_module: str | None) -> str:
    """What a thread of the lab process does, from its name and the server it serves, if any (pure)."""
    if name == "kit-gateway":
        return THREAD_GATEWAY
    if name.startswith(("kit-invoke", "asyncio_", "ThreadPoolExecutor-")):  # the runtime's own, or a loop's
        return THREAD_INVOKE
    if name == "kit-log-writer":
        return THREAD_LOG_WRITER
    if name == "moto-server" or (server_module or "").startswith("werkzeug"):
        return THREAD_MOTO
    if name == "dynamodb-front" or server_module is not None:
        return THREAD_FRONT
    return THREAD_OTHER


def role_of(cmdline: Sequence[str]) -> str:
    """What a descendant of the lab host runs, from its command line (pure)."""
    joined = " ".join(cmdline)
    if "kit.lab.runtime_worker" in joined or "runtime_worker.mjs" in joined:  # Python's and Node.js's
        return ROLE_WORKERS
    if "DynamoDBLocal.jar" in joined:
        return ROLE_ENGINE
    if "kit.lab.nextjs_backend" in joined:
        return ROLE_BACKEND
    return ROLE_OTHER


@dataclass(frozen=True)
class ProcessSample:
    pid: int
    role: str
    cpu_s: float
    rss_kb: int
    peak_rss_kb: int


def _read_sample(pid: int, role: str | None) -> ProcessSample | None:
    base = Path(f"/proc/{pid}")
    try:
        stat = (base / "stat").read_text()
        status = (base / "status").read_text()
        cmdline = (base / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return None  # it ended between the listing and the read
    after_name = stat[stat.rindex(")") + 2 :].split()
    cpu_s = (int(after_name[11]) + int(after_name[12])) / CLOCK_TICKS
    memory = {"VmRSS:": 0, "VmHWM:": 0}
    for line in status.splitlines():
        parts = line.split()
        if parts and parts[0] in memory:
            memory[parts[0]] = int(parts[1])
    return ProcessSample(
        pid=pid,
        role=role or role_of([part.decode(errors="replace") for part in cmdline]),
        cpu_s=cpu_s,
        rss_kb=memory["VmRSS:"],
        peak_rss_kb=memory["VmHWM:"],
    )


def sample_tree(root_pid: int) -> list[ProcessSample]:
    """The root (as ``ROLE_LAB``) and its live descendants, each with CPU seconds so far and memory."""
    samples: list[ProcessSample] = []
    root = _read_sample(root_pid, ROLE_LAB)
    if root is None:
        return samples
    samples.append(root)
    pending = [root_pid]
    seen = {root_pid}
    while pending and len(seen) < MAX_TREE:
        for child in iter_child_pids(pending.pop()):
            if child in seen:
                continue
            seen.add(child)
            pending.append(child)
            sample = _read_sample(child, None)
            if sample is not None:
                samples.append(sample)
    return samples


def cpu_by_role(before: Sequence[ProcessSample], after: Sequence[ProcessSample]) -> dict[str, float]:
    """CPU seconds spent per role between two samples (pure). A process that ended in between is lost."""
    start = {sample.pid: sample.cpu_s for sample in before}
    spent: dict[str, float] = {}
    for sample in after:
        spent[sample.role] = spent.get(sample.role, 0.0) + sample.cpu_s - start.get(sample.pid, 0.0)
    return spent


def sample_threads(pid: int) -> dict[int, float]:
    """CPU seconds so far of each live thread of ``pid``, by native thread id."""
    spent: dict[int, float] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return spent
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        after_name = stat[stat.rindex(")") + 2 :].split()
        spent[int(task.name)] = (int(after_name[11]) + int(after_name[12])) / CLOCK_TICKS
    return spent


def cpu_by_thread_role(
    before: Mapping[int, float], after: Mapping[int, float], roles: Mapping[int, str]
) -> dict[str, float]:
    """CPU seconds per thread role between two samples (pure); threads of unknown role count as other."""
    spent: dict[str, float] = {}
    for tid, cpu_s in after.items():
        role = roles.get(tid, THREAD_OTHER)
        spent[role] = spent.get(role, 0.0) + cpu_s - before.get(tid, 0.0)
    return spent


def rss_by_role(samples: Sequence[ProcessSample]) -> dict[str, int]:
    """Resident memory (KiB) per role right now (pure)."""
    resident: dict[str, int] = {}
    for sample in samples:
        resident[sample.role] = resident.get(sample.role, 0) + sample.rss_kb
    return resident


def own_cpu_s() -> float:
    """CPU seconds of this process, every thread included (the bench's clients)."""
    times = os.times()
    return times.user + times.system


class LabHost:
    """A lab running in a child process (:mod:`bench.lab_host`); use as a context manager."""

    def __init__(
        self,
        *,
        module: str = "bench.lab_host",
        runtime: str | None = None,
        ready_timeout_s: float = 120.0,
        stop_timeout_s: float = 60.0,
    ) -> None:
        self.module = module  # anything speaking lab_host's protocol, e.g. a lab with an experiment applied
        self.runtime = runtime  # the function's runtime; None: the lab's default (Python)
        self.ready_timeout_s = ready_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.info: dict[str, Any] = {}
        self.stop_s: float | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr = tempfile.TemporaryFile(prefix="kit-bench-lab-")  # noqa: SIM115 - closed in stop
        self._process: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        return int(self.info["pid"])

    def __enter__(self) -> LabHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LabHost:
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(PROJECT_ROOT), *filter(None, [environment.get("PYTHONPATH")])]
        )
        self._process = subprocess.Popen(
            [sys.executable, "-m", self.module, *(["--runtime", self.runtime] if self.runtime else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=PROJECT_ROOT,
            env=environment,
        )
        threading.Thread(target=self._read_lines, name="bench-lab-host-reader", daemon=True).start()
        try:
            message = self._next_message(self.ready_timeout_s)
        except BaseException:
            self.stop()
            raise
        if not message.get("ready"):
            self.stop()
            reason = message.get("error") or self._stderr_tail() or "no output"
            raise EngineError(f"The bench's lab did not start: {reason}")
        self.info = message
        return self

    def stop(self) -> None:
        """Close the host's stdin (its signal to stop), wait for it, kill it if it hangs. Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            if self.info:
                with contextlib.suppress(EngineError, ValueError):
                    stopped = self._next_message(self.stop_timeout_s)
                    self.stop_s = float(stopped.get("stop_s") or 0) or None
            try:
                process.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        finally:
            if process.stdout:
                process.stdout.close()
            self._stderr.close()

    def thread_roles(self) -> dict[int, str]:
        """Native thread id -> role, for the lab process's threads alive now."""
        answer = self._ask("threads")
        return {int(entry["native_id"]): str(entry["role"]) for entry in answer.get("threads", [])}

    def hops(self, *, reset: bool = False) -> dict[str, dict[str, Any]]:
        """Where requests' time went inside the lab so far (:mod:`kit.lab.hops`); ``reset`` forgets it."""
        answer = self._ask("hops reset" if reset else "hops")
        return dict(answer.get("hops", {}))

    def _ask(self, command: str) -> dict[str, Any]:
        if self._process is None or self._process.stdin is None:
            return {}
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        return self._next_message(30)

    def _read_lines(self) -> None:
        process = self._process
        if process is None or process.stdout is None:
            return
        with contextlib.suppress(ValueError, OSError):  # closed by stop() while reading
            for line in process.stdout:
                self._lines.put(line)
        self._lines.put(None)

    def _next_message(self, timeout_s: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise EngineError(
                f"The bench's lab host said nothing within {timeout_s:.0f} s; "
                f"its stderr ends with: {self._stderr_tail() or 'nothing'}"
            ) from None
        if line is None:
            raise EngineError(
                f"The bench's lab host exited early; its stderr ends with: {self._stderr_tail() or 'nothing'}"
            )
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise EngineError(f"The bench's lab host printed {line.strip()!r}, not a JSON object.")
        return answer

    def _stderr_tail(self, limit: int = 1500) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._stderr.flush()
            self._stderr.seek(0)
            return self._stderr.read().decode(errors="replace")[-limit:].strip()
        return ""


def tree_summary(samples: Sequence[ProcessSample]) -> Mapping[str, object]:
    """Counts and memory of the tree for the results (pure)."""
    return {
        "processes": len(samples),
        "lambda_workers": sum(1 for s in samples if s.role == ROLE_WORKERS),
        "rss_mb_by_role": {role: round(kb / 1024, 1) for role, kb in sorted(rss_by_role(samples).items())},
    }
