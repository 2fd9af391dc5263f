"""The lab's watch over its engine process (kit.lab.supervisor), on stand-in processes instead of a JVM.

A killed stand-in is said, restarted and recorded; a restart that fails gives up once; an engine stopped on
purpose is no death. What each event says is pinned by table.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from kit.lab import supervisor
from kit.lab.engines import Engine, exit_reason
from kit.lab.supervisor import RESTARTED, RESTARTING, STOPPED, EngineEvent, EngineSupervisor

WAIT = 30  # seconds; every wait below ends on the event it waits for


def _stand_in(port: int = 8000) -> Engine:
    """An engine whose process is a sleeping Python (it never listens: the supervisor only waits on it)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=10)

    engine = Engine("dynamodb-local", f"http://127.0.0.1:{port}", process.pid, process=process)
    engine._stop.append(stop)
    return engine


class Recorder:
    """The lab's side of the supervisor: restarts with stand-ins (or fails), keeps what it was told."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.fail_with = fail_with
        self.started: list[Engine] = []
        self.histories: list[list[EngineEvent]] = []
        self.gave_up: list[EngineEvent] = []
        self.changed = threading.Condition()

    def restart(self, dead: Engine) -> tuple[Engine, str]:
        assert dead.process is not None and dead.process.poll() is not None, "restart only a dead engine"
        if self.fail_with is not None:
            raise self.fail_with
        engine = _stand_in(dead.port)
        self.started.append(engine)
        return engine, "table t re-created empty"

    def record(self, events: list[EngineEvent]) -> None:
        with self.changed:
            self.histories.append(events)
            self.changed.notify_all()

    def give_up(self, event: EngineEvent) -> None:
        with self.changed:
            self.gave_up.append(event)
            self.changed.notify_all()

    def wait_for(self, outcome: str, deaths: int = 1) -> list[EngineEvent]:
        def reached() -> bool:
            last = self.histories[-1] if self.histories else []
            return len(last) == deaths and last[-1].outcome == outcome

        with self.changed:
            assert self.changed.wait_for(reached, WAIT), self.histories
        return self.histories[-1]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    for engine in recorder.started:
        engine.stop()


def _watch(engine: Engine, recorder: Recorder) -> EngineSupervisor:
    return EngineSupervisor(
        engine, restart=recorder.restart, record=recorder.record, give_up=recorder.give_up
    ).start()


def test_a_killed_engine_is_said_restarted_and_recorded(
    recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = _stand_in(4567)
    watch = _watch(engine, recorder)
    try:
        os.kill(engine.pid or 0, signal.SIGKILL)
        events = recorder.wait_for(RESTARTED)
        assert [h[-1].outcome for h in recorder.histories] == [RESTARTING, RESTARTED]
        (event,) = events
        assert event.pid == engine.pid and event.exit == "killed by SIGKILL" and event.data_lost
        assert event.endpoint_url == "http://127.0.0.1:4567"
        assert event.new_pid == recorder.started[0].pid != engine.pid
        assert watch.engine is recorder.started[0]
        err = capsys.readouterr().err
        assert (
            f"ERROR: dynamodb-local (pid {engine.pid}) at http://127.0.0.1:4567 died (killed by SIGKILL)"
            in err
        )
        assert "WARNING: dynamodb-local restarted" in err and "table t re-created empty" in err

        # The replacement is watched in turn: a second death is a second event.
        os.kill(recorder.started[0].pid or 0, signal.SIGTERM)
        second = recorder.wait_for(RESTARTED, deaths=2)
        assert second[0] == event
        assert second[1].pid == recorder.started[0].pid and second[1].exit == "killed by SIGTERM"
        assert recorder.gave_up == []
    finally:
        watch.stop()
    assert all(e.process is not None and e.process.poll() is not None for e in recorder.started)


def test_an_engine_exiting_on_its_own_is_a_death_too(recorder: Recorder) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read(); sys.exit(3)"], stdin=subprocess.PIPE
    )
    engine = Engine("dynamodb-local", "http://127.0.0.1:4568", process.pid, process=process)
    watch = _watch(engine, recorder)
    try:
        assert process.stdin is not None
        process.stdin.close()
        (event,) = recorder.wait_for(RESTARTED)
        assert event.exit == "exited with status 3"
    finally:
        watch.stop()


def test_a_failed_restart_gives_up_once_and_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    recorder = Recorder(fail_with=RuntimeError("port 4569 taken"))
    engine = _stand_in(4569)
    watch = _watch(engine, recorder)
    try:
        os.kill(engine.pid or 0, signal.SIGKILL)
        with recorder.changed:
            assert recorder.changed.wait_for(lambda: recorder.gave_up, WAIT)
        (event,) = recorder.gave_up
        assert event.outcome == STOPPED and event.detail == "port 4569 taken"
        assert recorder.histories[-1] == [event]
        assert "could not be restarted (port 4569 taken); the lab stopped." in capsys.readouterr().err
        watch._thread.join(WAIT)
        assert not watch._thread.is_alive(), "the watch ends after giving up"
    finally:
        watch.stop()


def test_stopping_on_purpose_is_not_a_death(recorder: Recorder) -> None:
    engine = _stand_in()
    watch = _watch(engine, recorder)
    watch.stop()
    assert not watch._thread.is_alive()
    assert engine.process is not None and engine.process.returncode is not None
    assert recorder.histories == [] and recorder.gave_up == [] and recorder.started == []


def test_an_in_process_engine_has_no_exit_to_wait_for() -> None:
    assert Engine("moto", "http://127.0.0.1:1").wait_exit() is None


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (-9, "killed by SIGKILL"),
        (-15, "killed by SIGTERM"),
        (-6, "killed by SIGABRT"),
        (-200, "killed by signal 200"),
        (0, "exited with status 0"),
        (1, "exited with status 1"),
        (137, "exited with status 137"),
    ],
)
def test_exit_reason(code: int, reason: str) -> None:
    assert exit_reason(code) == reason


_DEATH = EngineEvent("dynamodb-local", 41, "http://127.0.0.1:9000", "killed by SIGKILL", "t", RESTARTING)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            _DEATH,
            "dynamodb-local (pid 41) at http://127.0.0.1:9000 died (killed by SIGKILL); its in-memory data is "
            "gone: every table and item. Restarting it on the same port.",
        ),
        (
            EngineEvent(**{**_DEATH.as_dict(), "outcome": RESTARTED, "new_pid": 42, "detail": "Table t."}),  # type: ignore[arg-type]
            "dynamodb-local restarted at http://127.0.0.1:9000 (pid 42) after it died (killed by SIGKILL); "
            "the data it held is gone. Table t.",
        ),
        (
            EngineEvent(**{**_DEATH.as_dict(), "outcome": STOPPED, "detail": "no Java"}),  # type: ignore[arg-type]
            "dynamodb-local (pid 41) at http://127.0.0.1:9000 died (killed by SIGKILL); its in-memory data is "
            "gone: every table and item. It could not be restarted (no Java); the lab stopped.",
        ),
    ],
)
def test_event_message(event: EngineEvent, message: str) -> None:
    assert event.message() == message


def test_say_logs_at_the_events_level(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="kit.lab"):
        supervisor.say(_DEATH)
        supervisor.say(EngineEvent(**{**_DEATH.as_dict(), "outcome": RESTARTED}))  # type: ignore[arg-type]
    assert [record.levelname for record in caplog.records] == ["ERROR", "WARNING"]
