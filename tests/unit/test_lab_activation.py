"""A server process started by its first connection (kit.lab.activation), with small Python servers in place of
the Next.js stand-in; and the stand-in's own argument parsing (kit.lab.nextjs_backend.listen_fd)."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kit.lab.activation import SocketActivated
from kit.lab.nextjs_backend import listen_fd

# Adopts the socket from --listen-fd, says its line, answers each connection with "hello <pid>" until stdin
# closes.
SERVER = textwrap.dedent(
    """
    import os, socket, sys, threading
    listener = socket.socket(fileno=int(sys.argv[-1]))
    print("serving", flush=True)
    def serve():
        while True:
            conn, _ = listener.accept()
            conn.sendall(f"hello {os.getpid()}".encode())
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
    sys.stdin.read()
    """
)
# Says its line in two writes, apart: a line is whole only at its end, and then it counts.
SPLIT_LINE = SERVER.replace(
    'print("serving", flush=True)',
    'import time; sys.stdout.write("serv"); sys.stdout.flush(); time.sleep(0.2); print("ing", flush=True)',
)
PART_OF_A_LINE = 'import sys; sys.stdout.write("serv"); sys.stdout.flush(); sys.stdin.read()'  # and no more
# Part of a line, then a file saying it was written (the test's to wait for), then nothing more.
PART_THEN_MARK = (
    'import os, sys; sys.stdout.write("serv"); sys.stdout.flush(); '
    'open(os.environ["MARK"], "w").close(); sys.stdin.read()'
)
KEEPS_WRITING = 'import sys\nwhile True: sys.stdout.write("x" * 100); sys.stdout.flush()'  # never a line end
PART_THEN_EXIT = 'import sys; sys.stdout.write("serving"); sys.stdout.flush(); sys.exit(3)'  # no line end
SILENT_EXIT = "import sys; sys.exit(3)"
SILENT_WAIT = "import sys; sys.stdin.read()"  # never says it serves; ends when its stdin closes


def activated(code: str, env: dict[str, str] | None = None, **options: object) -> SocketActivated:
    failures: list[str] = []
    unit = SocketActivated(
        [sys.executable, "-c", code],
        env or {},
        "test server",
        "run it by hand.",
        on_failure=failures.append,
        **options,
    )  # type: ignore[arg-type]
    unit.failures = failures  # type: ignore[attr-defined]
    return unit.start()


@pytest.fixture
def server() -> Iterator[SocketActivated]:
    unit = activated(SERVER)
    yield unit
    unit.stop()


def ask(port: int, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        chunks = []
        while chunk := conn.recv(100):
            chunks.append(chunk)
        return b"".join(chunks)


def test_nothing_starts_until_a_connection_arrives(server: SocketActivated) -> None:
    time.sleep(0.2)  # a watch that started the process by itself would have done so by now
    assert server.process is None and not server.started.is_set()


def test_the_first_connection_starts_the_process_and_is_answered_by_it(server: SocketActivated) -> None:
    answer = ask(server.port)
    assert server.process is not None
    assert answer == f"hello {server.process.pid}".encode()
    assert server.started.is_set() and server.failure is None


def test_connections_at_once_start_one_process_and_all_are_answered(server: SocketActivated) -> None:
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: ask(server.port), range(8)))
    assert server.process is not None
    assert set(answers) == {f"hello {server.process.pid}".encode()}


def test_stop_ends_the_process_and_closes_the_port(server: SocketActivated) -> None:
    ask(server.port)
    process = server.process
    assert process is not None
    server.stop()
    assert process.poll() is not None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5)
    server.stop()  # idempotent


def test_stop_before_any_connection_starts_nothing_and_closes_the_port() -> None:
    unit = activated(SERVER)
    unit.stop()
    assert unit.process is None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", unit.port), timeout=5)


def test_a_line_said_in_pieces_counts_once_it_is_whole() -> None:
    unit = activated(SPLIT_LINE)
    try:
        answer = ask(unit.port)
        assert unit.process is not None and answer == f"hello {unit.process.pid}".encode()
        assert unit.started.is_set() and unit.failure is None
    finally:
        unit.stop()


@pytest.mark.parametrize(
    ("code", "options"),
    [
        (SILENT_EXIT, {}),
        (SILENT_WAIT, {"ready_timeout_s": 0.3}),
        (PART_OF_A_LINE, {"ready_timeout_s": 0.3}),
        (PART_THEN_EXIT, {}),
        (KEEPS_WRITING, {"ready_timeout_s": 0.3}),
    ],
    ids=[
        "exits",
        "never-says-it-serves",
        "part-of-a-line-then-silence",
        "part-of-a-line-then-exits",
        "keeps-writing-without-a-line-end",
    ],
)
def test_a_process_that_does_not_come_up_is_said_in_one_line_and_its_caller_is_not_left_hanging(
    code: str, options: dict[str, float]
) -> None:
    unit = activated(code, **options)
    try:
        with socket.create_connection(("127.0.0.1", unit.port), timeout=10) as conn:
            conn.settimeout(10)
            with contextlib.suppress(ConnectionResetError):  # or reset: either way, not left hanging
                assert conn.recv(100) == b""  # closed by the kernel once no one holds the socket
        assert unit.started.wait(10)
        failures = unit.failures  # type: ignore[attr-defined]
        assert len(failures) == 1 and "\n" not in failures[0]
        assert failures[0].startswith("the lab's test server did not start; its port ")
        assert failures[0].endswith("run it by hand.")
        assert unit.failure == failures[0]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", unit.port), timeout=5)
        assert unit.process is not None  # gone, and its pipes closed: a failed start leaks no descriptor
        assert unit.process.poll() is not None
        assert unit.process.stdin is not None and unit.process.stdin.closed
        assert unit.process.stdout is not None and unit.process.stdout.closed
    finally:
        unit.stop()


@pytest.mark.parametrize("code", [SILENT_WAIT, PART_THEN_MARK], ids=["silent", "part-of-a-line"])
def test_stop_while_the_process_comes_up_does_not_wait_for_it(code: str, tmp_path: Path) -> None:
    mark = tmp_path / "wrote-part-of-a-line"
    unit = activated(code, {"MARK": str(mark)}, ready_timeout_s=600.0)
    with socket.create_connection(("127.0.0.1", unit.port), timeout=5):
        deadline = time.monotonic() + 10
        while unit.process is None and time.monotonic() < deadline:
            time.sleep(0.01)
        # The watch has the part of a line (or nothing at all) before stop() is asked: not a race it wins.
        while code == PART_THEN_MARK and not mark.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert code != PART_THEN_MARK or mark.exists()
        stopper = threading.Thread(target=unit.stop)
        stopper.start()
        stopper.join(20)  # far less than the 600 s it would wait for the process's line
    assert not stopper.is_alive()
    assert unit.process is not None and unit.process.poll() is not None
    assert unit.failures == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("argv", "fd"),
    [([], None), (["--listen-fd", "7"], 7), (["--listen-fd", "0"], 0)],
)
def test_the_stand_in_reads_its_socket_from_listen_fd(argv: list[str], fd: int | None) -> None:
    assert listen_fd(argv) == fd


@pytest.mark.parametrize(
    "argv",
    [
        ["--listen-fd"],
        ["--listen-fd", "x"],
        ["--listen-fd", "-1"],
        ["--port", "7"],
        ["--listen-fd", "7", "8"],
    ],
)
def test_the_stand_in_refuses_other_arguments_in_one_line(argv: list[str]) -> None:
    with pytest.raises(SystemExit, match=r"^usage: python -m kit.lab.nextjs_backend \[--listen-fd N\]$"):
        listen_fd(argv)


def test_a_watch_that_outlives_stop_closes_its_wake_pipe_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """stop() waits a bounded time for the watch; if the watch is still stopping the process then, stop()
    returns without closing the wake pipe the watch's select may hold, and the watch closes it on return."""
    from kit.lab import activation

    unit = activated(SERVER)
    ask(unit.port)
    release = threading.Event()
    real_stop_process = unit._stop_process

    def slow_stop_process() -> None:
        release.wait(30)
        real_stop_process()

    monkeypatch.setattr(unit, "_stop_process", slow_stop_process)
    monkeypatch.setattr(unit, "_ready_timeout_s", 0.0)
    monkeypatch.setattr(activation, "STOP_TIMEOUT_S", 0.05)  # stop() waits 0.15 s for the watch
    wake = (unit._wake_read, unit._wake_write)
    unit.stop()
    watch = unit._watch
    assert watch is not None and watch.is_alive()
    for fd in wake:
        os.fstat(fd)  # still open: the watch may be in a select on it
    release.set()
    watch.join(30)
    assert not watch.is_alive()
    for fd in wake:
        with pytest.raises(OSError):
            os.fstat(fd)  # closed by the watch as it returned
    assert unit.process is not None and unit.process.poll() is not None
