"""The language runtimes the lab can run, and what each needs from the machine (pure but for ``which``).

One place answers "can the lab run ``nodejs20.x``?": the runtime identifiers Lambda accepts that the lab
runs, their language family, and the major version a Node.js runtime expects. Python functions run on the
lab's own interpreter (any ``python3.x``); Node.js functions on the machine's ``node``, whose major version
may differ from the function's (the runtime says so once, it does not refuse).

:func:`refusal` is the configuration check (used when a function is created or read); :func:`missing_tool`
is the machine check (used before anything is started, so ``kit lab up`` can exit 2 with nothing left
behind). :func:`node_arguments` is how a Node.js function's process is started on the machine's ``node``,
from what :data:`NODE_PROBE_SCRIPT` found out about it. Nothing here starts a process.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from kit.errors import ConfigurationError

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


def missing_tool(runtime: str, which: Callable[[str], str | None] | None = None) -> str | None:
    """What the machine lacks to run ``runtime`` (one line with the next step), or None.

    Python runs on the lab's own interpreter, so only Node.js can be missing.
    """
    if family(runtime) == "node" and (which or shutil.which)("node") is None:
        return (
            f"runtime {runtime} needs Node.js: no `node` on PATH; install Node.js "
            f"{NODE_RUNTIMES[runtime]} (or any recent one) and try again."
        )
    return None


# ---------------------------------------------------------------------------------------------------------
# How a Node.js function's process is started (Lambda's `bootstrap`, on the machine's own `node`)
# ---------------------------------------------------------------------------------------------------------

# What the lab asks the machine's `node` once: its version and the experimental flags it knows.
NODE_PROBE_SCRIPT: Final = (
    "console.log(JSON.stringify({version: process.versions.node, "
    "flags: [...process.allowedNodeEnvironmentFlags].filter((f) => f.startsWith('--experimental-'))}))"
)

# Node features Lambda switches off (docs "Building Lambda functions with Node.js"): require() of an ES
# module on nodejs20.x/22.x, module-syntax detection on nodejs22.x. Node 18 has neither, so the lab switches
# them off for nodejs18.x too when the machine's newer `node` has them [inferred: same behaviour as Node 18].
_DISABLED_FEATURES: Final = {
    "nodejs18.x": ("--experimental-require-module", "--experimental-detect-module"),
    "nodejs20.x": ("--experimental-require-module",),
    "nodejs22.x": ("--experimental-require-module", "--experimental-detect-module"),
}


@dataclass(frozen=True)
class NodeMachine:
    """The machine's ``node``: where it is, its version, and the experimental flags it accepts."""

    executable: str
    version: str  # "20.20.2"
    flags: frozenset[str] = frozenset()

    @property
    def major(self) -> int:
        return int(self.version.split(".", 1)[0])


def node_machine(executable: str, probe_output: str) -> NodeMachine:
    """Read :data:`NODE_PROBE_SCRIPT`'s output; a one-line :class:`ConfigurationError` if it is not that."""
    try:
        answer = json.loads(probe_output)
        version = str(answer["version"])
        int(version.split(".", 1)[0])
        flags = frozenset(str(flag) for flag in answer.get("flags") or [])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"{executable} did not answer like Node.js ({probe_output.strip()[:80]!r}); "
            "put Node.js 18 or later first on PATH and try again."
        ) from exc
    return NodeMachine(executable, version, flags)


def node_arguments(runtime: str, memory_mb: int, machine: NodeMachine, node_options: str = "") -> list[str]:
    """``node``'s options before the worker script, as Lambda's ``bootstrap`` gives them.

    The heap is sized from the function's memory (``--max-semi-space-size`` = memory/10/2,
    ``--max-old-space-size`` = memory - memory/10, in MB, integer arithmetic as the shell script's). A feature
    Lambda disables is disabled only where this ``node`` knows the flag, and not when the function's
    ``NODE_OPTIONS`` turns it on: the enable flag there wins, as on Lambda.
    """
    arguments = [
        "--expose-gc",
        "--max-http-header-size",
        "81920",
        f"--max-semi-space-size={memory_mb // 10 // 2}",
        f"--max-old-space-size={memory_mb - memory_mb // 10}",
    ]
    enabled_by_function = set(node_options.split())
    for feature in _DISABLED_FEATURES.get(runtime, ()):
        if feature in machine.flags and feature not in enabled_by_function:
            arguments.append("--no-" + feature.removeprefix("--"))
    return arguments


def version_mismatch(runtime: str, machine: NodeMachine) -> str | None:
    """One line when the machine's Node.js major version is not the one ``runtime`` stands for."""
    expected = node_major(runtime)
    if expected is None or expected == machine.major:
        return None
    return (
        f"functions on {runtime} run on this machine's Node.js {machine.version} ({machine.executable}), "
        f"not Node.js {expected}: behaviour that changed between the two versions may differ from Lambda's."
    )
