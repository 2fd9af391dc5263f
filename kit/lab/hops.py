"""Where a request's time goes in the lab, hop by hop: spans timed by the gateway, runtime and front door.

Each part of the lab records how long its own step of a request took (``Hops.record``); ``snapshot`` gives,
per hop, the count, the total and the most recent spans. The bench reads it (through ``bench.lab_host``) and
subtracts nested hops to say where a handshake's milliseconds go: the gateway's own work, the trip to a
worker process and back, the handler, the front door's SigV4 and IAM, DynamoDB Local.

Always on: a span costs one ``perf_counter`` pair and an append under a lock (about a microsecond), which is
nothing next to the milliseconds a hop takes, and it means the figures come from the lab as users run it.

Must not: hold more than ``KEEP`` spans per hop (a lab runs for days), or be read by the diagnosis (it is the
lab's own telemetry, not evidence about a target).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

KEEP = 4096  # the most recent spans kept per hop (for percentiles)

# The hops, outermost first; each is timed where it happens.
GATEWAY_HANDSHAKE = "gateway handshake"  # an upgrade request parsed, to the gateway's answer ($connect ran)
GATEWAY_INVOKE = "gateway invoke"  # an integration's Lambda invocation, as the gateway waits for it
RUNTIME_EXCHANGE = "runtime exchange"  # the request written to a worker process until its answer was read
LAMBDA_DURATION = "lambda duration"  # the handler's own run, as its REPORT line's Duration says
FRONT_DOOR = "dynamodb front door"  # a request to the DynamoDB front door: SigV4, IAM, re-signing, forwarding
DYNAMODB_ENGINE = "dynamodb engine"  # the front door's forwarded request until the engine's answer was read
HOPS = (GATEWAY_HANDSHAKE, GATEWAY_INVOKE, RUNTIME_EXCHANGE, LAMBDA_DURATION, FRONT_DOOR, DYNAMODB_ENGINE)


@dataclass(frozen=True)
class HopStats:
    """One hop's spans: ``count`` and ``total_ms`` over all of them, ``recent_ms`` the last ``KEEP``."""

    count: int
    total_ms: float
    recent_ms: tuple[float, ...]

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.count if self.count else 0.0

    def to_json(self) -> dict[str, object]:
        return {"count": self.count, "total_ms": self.total_ms, "recent_ms": list(self.recent_ms)}


class Hops:
    """Spans per hop, recorded from any thread."""

    def __init__(self, keep: int = KEEP) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._recent: dict[str, deque[float]] = {}
        self._count: dict[str, int] = {}
        self._total: dict[str, float] = {}

    def record(self, hop: str, seconds: float) -> None:
        ms = seconds * 1000
        with self._lock:
            recent = self._recent.get(hop)
            if recent is None:
                recent = self._recent[hop] = deque(maxlen=self._keep)
            recent.append(ms)
            self._count[hop] = self._count.get(hop, 0) + 1
            self._total[hop] = self._total.get(hop, 0.0) + ms

    @contextlib.contextmanager
    def span(self, hop: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.record(hop, time.perf_counter() - started)

    def snapshot(self) -> dict[str, HopStats]:
        with self._lock:
            return {
                hop: HopStats(self._count[hop], self._total[hop], tuple(recent))
                for hop, recent in self._recent.items()
            }

    def reset(self) -> None:
        with self._lock:
            self._recent.clear()
            self._count.clear()
            self._total.clear()
