"""A fork server for the simulated accounts' ``kit lab up``: one Python that has imported the lab once, and
forks a child for each account.

A new interpreter importing the kit, boto3, moto, Flask and pandas costs ~1.7 s of CPU, and the account
tests start ~25 accounts on a CPU-bound 2-core run. A forked child starts with those modules loaded and
runs ``kit.cli.main`` exactly as ``python -m kit.cli`` would, with the request's arguments, environment,
folder and stderr file. The account is the simulated AWS, not the kit under test: how its process began
changes nothing the tests look at.

Protocol, on a Unix socket the test process made (its fd is the argument): one JSON object per line, each
answered by one line. ``{argv, env, cwd, stderr}``: the server forks, opens a pidfd for the child before it
can be reaped, and answers the pid with the pidfd attached (``socket.send_fds``). The test process signals
and waits through that pidfd (``account.Forked``), so no signal can reach a process that took a reused pid.
``{status: pid}``, asked once that pidfd says the child exited: its exit code as ``Popen.returncode`` gives
it (negative for a signal); ``running`` if it has not exited, and ``?`` if it is not the server's child.
The server collects exited children before each request and keeps their codes until asked; it exits when
the test process's end of the socket closes (no signal ties it to the thread that started it, which may
end first), and its children get SIGTERM when it dies, so an account never outlives the tests.

Run as a script: ``python tests/integration/forkserver.py FD``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import socket
import sys
import threading
import traceback
from typing import IO, Any

# What `kit lab up --scenario S --dynamodb moto` imports, and the moto services its lab serves.
PRELOAD = (
    "kit.cli",
    "kit.lab.lab",
    "kit.lab.scenarios",
    "kit.lab.engines",
    "moto.moto_server.werkzeug_app",
    "werkzeug.serving",
    "flask",
)
MOTO_SERVICES = ("apigatewayv2", "iam", "lambda", "logs", "sts", "dynamodb")


def _preload() -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    from moto.backends import get_backend

    from kit.lab import engines

    for service in MOTO_SERVICES:
        get_backend(service)  # type: ignore[call-overload]  # imports the service's models and responses
        engines.backend_app(service)  # and builds its Flask app, which every moto server in a process shares


def _child(request: dict[str, Any], server: socket.socket, requests: IO[str], server_pid: int) -> None:
    """Become ``python -m kit.cli ARGV`` in the request's environment and folder; never returns."""
    code = 1
    try:
        from kit.lab.processes import die_with_parent

        die_with_parent()  # SIGTERM when the server dies: the lab stops as on Ctrl-C
        if os.getppid() != server_pid:  # the server died before that took hold: nobody would stop this lab
            os._exit(1)
        requests.close()  # the server's end of its socket is the server's alone (the file, then the socket)
        server.close()
        null = os.open(os.devnull, os.O_RDWR)
        errors = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(errors, 2)
        for fd in {null, errors} - {0, 1, 2}:
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.path[0] = request["cwd"]  # as `python -m` puts its folder first, not this script's
        sys.argv = ["kit", *request["argv"]]
        moto_random = sys.modules.get("moto.moto_api._internal")
        if moto_random is not None:  # each account its own ids, as in a new process
            moto_random.mock_random.seed()
        from kit import cli

        code = cli.main(request["argv"])
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # the child must never return into the server's loop
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


# The exit codes of children collected and not yet asked for, by pid. (A pid reused by a later child that
# also exits before the first one's code is asked for would overwrite it: not within one test run.)
_EXIT_CODES: dict[int, int] = {}


def _reap() -> None:
    """Collect the children that have exited (their pidfds, held by the test process, still say so)."""
    with contextlib.suppress(ChildProcessError):
        while True:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if not pid:
                return
            _EXIT_CODES[pid] = os.waitstatus_to_exitcode(status)


def _exit_code(pid: int) -> str:
    """The answer to ``{status: pid}``: the child's exit code, ``?`` for a pid that is not ours, or
    ``running`` for a child that has not exited (a wrong question: answered at once, never waited on)."""
    if pid in _EXIT_CODES:
        return str(_EXIT_CODES.pop(pid))
    try:
        collected, status = os.waitpid(pid, os.WNOHANG)  # the asker saw it exit: a zombie, collected now
    except ChildProcessError:
        return "?"
    if collected == 0:
        return "running"
    return str(os.waitstatus_to_exitcode(status))


def serve(fd: int) -> None:
    """Answer requests on the socket ``fd`` until the test process closes its end."""
    _preload()
    server = socket.socket(fileno=fd)
    requests = server.makefile("r", encoding="utf-8")
    for line in requests:
        _reap()
        if not line.strip():
            continue
        request = json.loads(line)
        if "status" in request:
            server.sendall(f"{_exit_code(int(request['status']))}\n".encode())
            continue
        # A fork copies only the forking thread: a lock another Python thread held would stay held. (The
        # BLAS threads numpy starts are not Python's; OpenBLAS restarts them in the child itself.)
        if threading.active_count() != 1:
            raise SystemExit(
                f"the fork server has {threading.active_count()} Python threads; it must have one"
            )
        server_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            _child(request, server, requests, server_pid)
        # Not reaped yet (SIGCHLD is left alone), so this pidfd names that child whatever it has done since.
        pidfd = os.pidfd_open(pid)
        try:
            socket.send_fds(server, [f"{pid}\n".encode()], [pidfd])
        finally:
            os.close(pidfd)
    _reap()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
