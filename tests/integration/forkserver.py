"""A fork server for the simulated accounts' ``kit lab up``: one Python that has imported the lab once, and
forks a child for each account.

A new interpreter importing the kit, boto3, moto, Flask and pandas costs ~1.7 s of CPU, and the account
tests start ~25 accounts on a CPU-bound 2-core run. A forked child starts with those modules loaded and
runs ``kit.cli.main`` exactly as ``python -m kit.cli`` would, with the request's arguments, environment,
folder and stderr file. The account is the simulated AWS, not the kit under test: how its process began
changes nothing the tests look at.

Protocol (one JSON object per line on stdin: ``argv``, ``env``, ``cwd``, ``stderr``): the server forks, and
answers the child's pid on its own line. It exits when its stdin closes (the test process is gone: no signal
ties it to the thread that started it, which may end first), and its children get SIGTERM when it dies, so
an account never outlives the tests. It lets the kernel reap its
children (SIGCHLD ignored): the test process watches each child through a pidfd (``account.Forked``).

Run as a script: ``python tests/integration/forkserver.py``.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
import traceback
from typing import Any

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

    for service in MOTO_SERVICES:
        get_backend(service)  # type: ignore[call-overload]  # imports the service's models and responses


def _child(request: dict[str, Any]) -> None:
    """Become ``python -m kit.cli ARGV`` in the request's environment and folder; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the lab waits on its own children
        from kit.lab.processes import die_with_parent

        die_with_parent()  # SIGTERM when the server dies: the lab stops as on Ctrl-C
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 2)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = ["kit", *request["argv"]]
        moto_random = sys.modules.get("moto.moto_api._internal")
        if moto_random is not None:  # each account its own ids, as in a new process
            moto_random.mock_random.seed()
        from kit import cli

        code = cli.main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # the child must never return into the server's loop
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> None:
    _preload()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children: no zombies
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if threading.active_count() != 1:  # a fork copies only this thread: locks others hold stay held
            raise SystemExit(f"the fork server has {threading.active_count()} threads; it must have one")
        pid = os.fork()
        if pid == 0:
            _child(request)
        sys.stdout.write(f"{pid}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
