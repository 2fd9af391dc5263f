"""A lab whose DynamoDB Local dies and cannot be restarted stops, says why, and leaves no process behind.

(The restart that works is drilled in test_lab_reliability.py, on that module's lab.) Here the restart is
made to fail as it would when another process took the engine's port: the lab must not serve on a dead
engine, and `--target lab` must then say why instead of reaching a half-dead lab.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from kit.errors import ConfigurationError, EngineError
from kit.lab import engines, sockets
from kit.lab.lab import Lab
from kit.local import STATE_DIR_ENV, lab_file, read_lab_file

from .labclient import connect_user, unique_user, wait_until

pytestmark = pytest.mark.integration


def _refused(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    try:
        socket.create_connection((engines.LOOPBACK, port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_an_engine_that_cannot_be_restarted_stops_the_lab_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path))

    def port_taken(dead: engines.Engine, timeout: float = 60.0) -> engines.Engine:
        raise EngineError(f"port {dead.port} was taken by another process")

    monkeypatch.setattr(engines, "restart_dynamodb_local", port_taken)
    before = set(sockets.process_tree())
    lab = Lab("healthy", dynamodb="dynamodb-local").start()
    try:
        engine = lab.dynamodb_engine
        assert lab.info is not None and engine is not None and engine.pid is not None
        websocket_url = lab.info.websocket_url
        connect_user(lab, unique_user("before")).close()  # a worker runs, so there is one to stop
        assert set(sockets.process_tree()) - before, "the lab's children are in the tree"

        os.kill(engine.pid, signal.SIGKILL)
        failure = wait_until(lambda: lab.failure, timeout=120)

        assert "died (killed by SIGKILL)" in failure
        assert f"could not be restarted (port {engine.port} was taken by another process)" in failure
        assert "the lab stopped" in failure
        assert f"ERROR: {failure}" in capsys.readouterr().err
        # Stopped for real: no lab in this process, nothing listening, no child left.
        assert lab.info is None and Lab._running is None
        assert _refused(websocket_url)
        wait_until(lambda: set(sockets.process_tree()) <= before, timeout=30)
        # `--target lab` says why, instead of reaching a lab that is half gone.
        with pytest.raises(ConfigurationError) as raised:
            read_lab_file(lab_file())
        assert str(raised.value) == f"the lab is not running: {failure} Start it again with `kit lab up`."
    finally:
        lab.stop()  # idempotent: a second stop, from the test's thread, must not fail
    assert lab.failure is not None


def test_a_lab_that_fails_while_its_engine_starts_leaves_no_engine_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DynamoDB Local starts on a thread while the control plane is provisioned: a failure there, before the
    engine answers, must still stop the engine once it has started (and the JVM must not outlive the lab)."""
    from kit.lab import provision

    started: list[engines.Engine] = []
    real_start = engines.start_dynamodb_local

    def recorded_start(**kwargs: object) -> engines.Engine:
        engine = real_start(**kwargs)  # type: ignore[arg-type]
        started.append(engine)
        return engine

    def broken(*args: object, **kwargs: object) -> object:
        raise ConfigurationError("provisioning failed on purpose")

    monkeypatch.setattr(engines, "start_dynamodb_local", recorded_start)
    monkeypatch.setattr(provision, "provision_control_plane", broken)
    before = set(sockets.process_tree())
    lab = Lab("healthy", dynamodb="dynamodb-local", write_lab_file=False)
    with pytest.raises(ConfigurationError, match="on purpose"):
        lab.start()
    assert lab.info is None and Lab._running is None
    # The engine did start (on its thread), and was stopped when the lab gave up.
    assert len(started) == 1 and started[0].process is not None
    assert started[0].process.poll() is not None
    assert _refused(started[0].endpoint_url)
    wait_until(lambda: set(sockets.process_tree()) <= before, timeout=30)
