"""A module that starts a thread at import (init) which counts every 20 ms; the handler reads the count.

Between invocations Lambda freezes the environment, init-time threads included: the count barely moves while
the environment is idle.
"""

from __future__ import annotations

import threading
import time
from typing import Any

TICKS = [0]


def _tick() -> None:
    while True:
        time.sleep(0.02)
        TICKS[0] += 1


threading.Thread(target=_tick, daemon=True).start()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(event.get("linger", 0))
    return {"ticks": TICKS[0]}
