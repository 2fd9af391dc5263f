"""Children that end with the lab: the one thing every process the lab starts shares.

The JVM (``engines``), the Lambda workers (``runtime``) and the Next.js stand-in (``lab``) are started with
``preexec_fn=die_with_parent`` (the workers with :func:`killed_with_parent`), so Linux signals them when the
thread that started them ends, even when the lab's process is killed with SIGKILL. The signal is tied to the
starting thread, not the process, so callers start children from long-lived threads. Linux only; elsewhere
it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to send ``sig`` to this (child) process when the thread that started it dies, even by
    SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig)


def killed_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """:func:`die_with_parent` with SIGKILL: for Lambda workers, which the lab keeps stopped (frozen)
    between requests, and a stopped process acts on SIGTERM only once continued."""
    die_with_parent(signal.SIGKILL)
