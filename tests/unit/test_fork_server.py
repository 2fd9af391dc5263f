"""The simulated accounts' fork server (tests/integration/forkserver.py) answers ``{status: pid}`` at once:
an exited child's code, ``running`` for one that has not exited (asked too early: never waited on, which
would hang the server and every account after it), ``?`` for a pid that is not its child."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

from tests.integration import forkserver


def test_a_child_is_running_then_its_code_once_it_exits_then_no_longer_ours() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert forkserver._exit_code(child.pid) == "running"
        os.kill(child.pid, signal.SIGKILL)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, left for _exit_code to collect
        assert forkserver._exit_code(child.pid) == str(-signal.SIGKILL)
        assert forkserver._exit_code(child.pid) == "?"  # collected: a second question finds no child
    finally:
        child.kill()
        if child.stdin is not None:
            child.stdin.close()
        with contextlib.suppress(ChildProcessError):  # reaped above unless an assert failed first
            os.waitpid(child.pid, 0)
        child.returncode = -signal.SIGKILL  # reaped: Popen must not wait for it again


def test_a_pid_that_is_not_a_child_is_unknown() -> None:
    assert forkserver._exit_code(os.getpid()) == "?"
