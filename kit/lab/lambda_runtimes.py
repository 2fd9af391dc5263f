"""The language runtimes the lab can run, and what each needs from the machine (pure but for ``which``).

One place answers "can the lab run ``nodejs20.x``?": the runtime identifiers Lambda accepts that the lab
runs, their language family, and the major version a Node.js runtime expects. Python functions run on the
lab's own interpreter (any ``python3.x``); Node.js functions on the machine's ``node``, whose major version
may differ from the function's (the runtime says so once, it does not refuse).

:func:`refusal` is the configuration check (used when a function is created or read); :func:`missing_tool`
is the machine check (used before anything is started, so ``kit lab up`` can exit 2 with nothing left
behind). Neither starts a process.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from typing import Final, Literal

Family = Literal["python", "node"]

# Lambda's Node.js runtimes the lab runs, by identifier → the Node.js major version each stands for.
NODE_RUNTIMES: Final = {"nodejs18.x": 18, "nodejs20.x": 20, "nodejs22.x": 22}
LAB_RUNTIMES_TEXT: Final = f"Python runtimes (python3.x) and {', '.join(NODE_RUNTIMES)}"

_PYTHON: Final = re.compile(r"python3\.\d+")


def family(runtime: str) -> Family | None:
    """``"python"`` or ``"node"`` for a runtime the lab runs; None for any other identifier."""
    if _PYTHON.fullmatch(runtime):
        return "python"
    if runtime in NODE_RUNTIMES:
        return "node"
    return None


def node_major(runtime: str) -> int | None:
    """The Node.js major version a ``nodejsN.x`` runtime stands for; None for other runtimes."""
    return NODE_RUNTIMES.get(runtime)


def refusal(function_name: str, runtime: str) -> str | None:
    """Why the lab cannot run ``runtime`` (one line naming the function and what it can run), or None."""
    if family(runtime) is not None:
        return None
    return f"Function {function_name} uses runtime {runtime}; the lab runs {LAB_RUNTIMES_TEXT}."


def missing_tool(runtime: str, which: Callable[[str], str | None] = shutil.which) -> str | None:
    """What the machine lacks to run ``runtime`` (one line with the next step), or None.

    Python runs on the lab's own interpreter, so only Node.js can be missing.
    """
    if family(runtime) == "node" and which("node") is None:
        return (
            f"runtime {runtime} needs Node.js: no `node` on PATH; install Node.js "
            f"{NODE_RUNTIMES[runtime]} (or any recent one) and try again."
        )
    return None
