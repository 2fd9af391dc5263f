"""The lab's watch over its engine process: says when DynamoDB Local dies, restarts it, or gives up.

One long-lived thread per supervised engine waits on the process (no polling) and, when it ends without
being asked to, says so at once (the ``kit.lab`` log and stderr) and asks the lab to restart it; if that
fails, it asks the lab to stop. The lab keeps what happened in ``EngineEvent`` records and writes them into
``.kit/lab.json`` (``dynamodb_status``, ``engine_events``), where ``kit`` users and the diagnosis can read
that the engine died and that its data is gone.

Why restart rather than stop: the lab's other parts (the gateway, its WebSocket clients, moto's
configuration, the workers) are still sound, and on AWS a failing backend does not take API Gateway down;
the drills need exactly that (handshakes fail with 5xx during the outage, then work again). The price is
the data: DynamoDB Local runs in memory, so every table and item is gone, which the lab says and records
every time. When the restart fails the lab stops rather than serve on a dead engine.

The restart runs on this thread, which lives as long as the lab: children are started with a parent-death
signal tied to the starting thread, so a short-lived thread would take the new JVM with it.

This module must not touch tables or configuration (the lab's ``restart`` callable does), and it does not
watch moto: moto runs inside the lab's process and cannot die on its own.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from kit.lab.engines import Engine, exit_reason

log = logging.getLogger("kit.lab")

RESTARTING, RESTARTED, STOPPED = "restarting", "restarted", "stopped"


@dataclass(frozen=True)
class EngineEvent:
    """One death of an engine process and what the lab did about it (``outcome``)."""

    engine: str
    pid: int | None
    endpoint_url: str
    exit: str  # "killed by SIGKILL", "exited with status 1"
    at: str  # ISO 8601, UTC
    outcome: str  # RESTARTING, then RESTARTED or STOPPED
    detail: str = ""  # what was re-created, or why the restart failed
    new_pid: int | None = None
    data_lost: bool = True  # the engines the lab watches keep their data in memory

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)

    def message(self) -> str:
        """What the lab says about this event (pure)."""
        died = (
            f"{self.engine} (pid {self.pid}) at {self.endpoint_url} died ({self.exit}); "
            "its in-memory data is gone: every table and item."
        )
        if self.outcome == RESTARTING:
            return f"{died} Restarting it on the same port."
        if self.outcome == RESTARTED:
            return (
                f"{self.engine} restarted at {self.endpoint_url} (pid {self.new_pid}) after it "
                f"died ({self.exit}); the data it held is gone. {self.detail}"
            ).strip()
        return f"{died} It could not be restarted ({self.detail}); the lab stopped."


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def say(event: EngineEvent) -> None:
    """Log an event and print it on stderr, where a `kit lab up` terminal shows it."""
    level = logging.WARNING if event.outcome == RESTARTED else logging.ERROR
    log.log(level, event.message())
    print(f"{logging.getLevelName(level)}: {event.message()}", file=sys.stderr, flush=True)


class EngineSupervisor:
    """Watches ``engine``'s process from a thread; see the module docstring.

    ``restart(dead)`` must return a running replacement and a sentence saying what was re-created (it runs
    on the supervisor's thread); ``record(events)`` receives the whole history after each change;
    ``give_up(event)`` is called once, after a failed restart, and should stop the lab.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        restart: Callable[[Engine], tuple[Engine, str]],
        record: Callable[[list[EngineEvent]], None],
        give_up: Callable[[EngineEvent], None],
    ) -> None:
        self.engine = engine
        self.events: list[EngineEvent] = []
        self._restart = restart
        self._record = record
        self._give_up = give_up
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name=f"watch-{engine.name}", daemon=True)

    def start(self) -> EngineSupervisor:
        self._thread.start()
        return self

    def stop(self, timeout: float = 90.0) -> None:
        """Stop watching and stop the engine (idempotent; safe from the supervisor's own thread)."""
        self._closing.set()
        with self._lock:
            engine = self.engine
        engine.stop()  # wakes the watching thread
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)  # a restart in progress ends first (at most its start timeout)
        with self._lock:
            self.engine.stop()  # a replacement started while we waited

    def _watch(self) -> None:
        while not self._closing.is_set():
            with self._lock:
                engine = self.engine
            code = engine.wait_exit()
            if code is None or self._closing.is_set():
                return  # stopped on purpose
            self._died(engine, code)

    def _died(self, dead: Engine, code: int) -> None:
        event = EngineEvent(dead.name, dead.pid, dead.endpoint_url, exit_reason(code), _now(), RESTARTING)
        output = dead.output_tail(500)
        if output:
            log.info("%s's last output: %s", dead.name, output)
        self._update(event)
        try:
            replacement, detail = self._restart(dead)
        except Exception as exc:  # any failure to restart ends in a stopped lab, said once
            self._update(replace(event, outcome=STOPPED, detail=str(exc)))
            self._give_up(self.events[-1])
            self._closing.set()
            return
        with self._lock:
            self.engine = replacement
        if self._closing.is_set():  # the lab stopped while the engine restarted
            replacement.stop()
            return
        self._update(replace(event, outcome=RESTARTED, detail=detail, new_pid=replacement.pid))

    def _update(self, event: EngineEvent) -> None:
        """Add ``event``, or replace the same death's earlier record, then say and record it."""
        if self.events and (self.events[-1].pid, self.events[-1].at) == (event.pid, event.at):
            self.events[-1] = event
        else:
            self.events.append(event)
        say(event)
        self._record(list(self.events))
