"""A server process started by its first connection, as systemd's socket activation does.

The lab's Next.js stand-in (:mod:`kit.lab.nextjs_backend`) is one Python process per lab, but only an HTTP
integration ever calls it: most labs never do, and starting it anyway cost ~0.2 s of CPU per lab. So the lab
listens on the stand-in's loopback port itself, from the start, and hands the listening socket to the
process when the first connection is waiting in its backlog. The URL is known (and can go into an
integration) before any process exists, that first connection is answered by the process as soon as it
serves, and nothing is lost: a connection waits in the kernel's queue, not in the lab.

The process is given the socket as an inherited file descriptor (``--listen-fd N``, the last two arguments)
and must print one line on stdout once it serves; it is stopped by closing its stdin. If it does not come
up (it exits, or its whole line has not come within the timeout, even if part of it has), the lab says so in
one line (its log) and closes its own copy of the socket, so the waiting connection is refused rather than
left hanging: the caller (the gateway's HTTP integration) then fails as it would against a backend that is
down.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from kit.lab.processes import die_with_parent

log = logging.getLogger("kit.lab")

LOOPBACK = "127.0.0.1"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
MAX_LINE_BYTES = 4096  # a first line longer than this is not the one line a process says once it serves


class SocketActivated:
    """``argv`` (plus ``--listen-fd N``) started with ``env`` when the first connection reaches ``port``.

    ``start()`` binds the port and watches it; ``stop()`` stops the process if it started, and always closes
    the socket. ``started`` is set once the process has printed its line (or failed to: then ``failure``
    says why). ``name`` is how the lab's log and errors call it; ``hint`` is the next step when it fails.
    """

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        name: str,
        hint: str,
        *,
        ready_timeout_s: float = READY_TIMEOUT_S,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self._argv = list(argv)
        self._env = dict(env)
        self.name = name
        self._hint = hint
        self._ready_timeout_s = ready_timeout_s
        self._on_failure = on_failure or log.warning
        self._listener = socket.create_server((LOOPBACK, 0), backlog=128)
        self.port: int = self._listener.getsockname()[1]
        self._wake_read, self._wake_write = os.pipe()
        self._lock = threading.Lock()
        self._stopping = False
        self._watch: threading.Thread | None = None
        self._watch_ended = False  # under _lock: the watch thread has returned
        self._wake_left_to_watch = False  # under _lock: stop() gave up waiting; the watch closes the pipe
        self.process: subprocess.Popen[bytes] | None = None
        self.started = threading.Event()
        self.failure: str | None = None

    def start(self) -> SocketActivated:
        self._watch = threading.Thread(target=self._activate_on_first_connection, name=self.name, daemon=True)
        self._watch.start()
        return self

    def _activate_on_first_connection(self) -> None:
        """The watch's thread: it starts the process, and stays until stop() (Linux sends the parent-death
        signal when the *thread* that started a child ends), then stops the process itself."""
        try:
            self._watch_until_stopped()
        finally:
            with self._lock:
                self._watch_ended = True
                if self._wake_left_to_watch:  # stop() returned without closing it: nothing selects on it now
                    self._close_wake()

    def _watch_until_stopped(self) -> None:
        try:
            readable, _, _ = select.select([self._listener.fileno(), self._wake_read], [], [])
        except (OSError, ValueError):  # closed under us: stopping
            return
        with self._lock:
            if self._stopping or self._wake_read in readable:
                return
            fd = self._listener.fileno()
            try:
                self.process = subprocess.Popen(
                    [*self._argv, "--listen-fd", str(fd)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env=self._env,
                    pass_fds=(fd,),
                    preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl
                )
            except OSError as exc:
                self._failed(f"could not be started ({exc})")
                return
        said, woken = self._first_line()
        if not woken:
            if said is None:
                self._failed("did not start")
                return
            # The process serves on the socket now; the lab's copy only kept it open until then.
            self._listener.close()
            self.started.set()
            select.select([self._wake_read], [], [])  # until stop()
        self._stop_process()

    def _first_line(self) -> tuple[str | None, bool]:
        """The process's first line (None if it exits, or its whole line has not come by the deadline), and
        whether stop() woke us. Read in pieces as they come, never with a read that could wait past either."""
        process = self.process
        assert process is not None and process.stdout is not None
        out = process.stdout.fileno()
        deadline = time.monotonic() + self._ready_timeout_s
        said = b""
        while b"\n" not in said:
            left = deadline - time.monotonic()
            if left <= 0 or len(said) > MAX_LINE_BYTES:  # a process that keeps writing is not let go on
                return None, False
            ready, _, _ = select.select([out, self._wake_read], [], [], left)
            if self._wake_read in ready:
                return None, True
            if not ready:
                return None, False
            piece = os.read(out, MAX_LINE_BYTES)
            if not piece:  # it exited, perhaps after part of a line: it does not serve
                return None, False
            said += piece
        return said.partition(b"\n")[0].decode(errors="replace").strip() or None, False

    def _failed(self, what: str) -> None:
        self.failure = (
            f"the lab's {self.name} {what}; its port {self.port} refuses connections until the lab restarts; "
            f"{self._hint}"
        )
        if self.process is not None:  # it may hold the socket: the waiting connection goes with it
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)
            self._close_pipes(self.process)
        self._listener.close()  # the waiting connection is refused, not left hanging
        self._on_failure(self.failure)
        self.started.set()

    def stop(self) -> None:
        """Stop the process (close its stdin, wait, then kill) if it started; close the socket. Idempotent."""
        with self._lock:
            already, self._stopping = self._stopping, True
        if already:
            return
        os.write(self._wake_write, b"x")
        if self._watch is not None:
            self._watch.join(timeout=self._ready_timeout_s + 3 * STOP_TIMEOUT_S)
        with self._lock:
            if self._watch is None or self._watch_ended:
                self._close_wake()
            else:
                # Its select may still hold the wake pipe: closing it now could hand the numbers to another
                # file under that select. The watch closes it when it returns.
                self._wake_left_to_watch = True
                pid = self.process.pid if self.process is not None else None
                log.warning(
                    "the lab's %s did not stop in time; its process (pid %s) may be left", self.name, pid
                )
        self._listener.close()

    def _close_wake(self) -> None:
        os.close(self._wake_write)
        os.close(self._wake_read)

    def _stop_process(self) -> None:
        process = self.process
        assert process is not None
        if process.stdin:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)
        self._close_pipes(process)

    @staticmethod
    def _close_pipes(process: subprocess.Popen[bytes]) -> None:
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
