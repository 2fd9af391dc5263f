"""A lab that stopped itself (its engine died and could not be restarted) is said, not reached.

``.kit/lab.json`` then holds a note instead of endpoints, and `--target lab` answers with it; `kit lab up`
ends with exit code 2 and the reason. (The lab that stops itself is in test_lab_engine_death.py.)
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kit import cli
from kit.errors import ConfigurationError
from kit.lab import lab as lab_module
from kit.local import STATE_DIR_ENV, read_lab_file
from kit.target import Target

REASON = (
    "dynamodb-local (pid 41) at http://127.0.0.1:9000 died (killed by SIGKILL); its in-memory data is gone: "
    "every table and item. It could not be restarted (no Java); the lab stopped."
)


def test_a_stopped_lab_is_answered_with_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    path.write_text(json.dumps({"stopped": REASON, "pid": 1, "engine_events": []}))
    with pytest.raises(ConfigurationError) as raised:
        read_lab_file(path)
    assert str(raised.value) == f"the lab is not running: {REASON} Start it again with `kit lab up`."
    with pytest.raises(ConfigurationError, match="could not be restarted"):
        Target.from_lab_file(path)


class FakeLab:
    """Stands in for kit.lab.lab.Lab in `kit lab up`: up at once, then its engine dies for good."""

    def __init__(self, scenario: str, **options: Any) -> None:
        self.failure: str | None = None
        self.manifest = None
        self.info = SimpleNamespace(
            scenario=scenario,
            runtime=options.get("runtime"),
            websocket_url="ws://127.0.0.1:1/prod",
            as_dict=dict,
        )
        self.stopped = 0
        self.resources = None  # what provisioning created; nothing here

    def __enter__(self) -> FakeLab:
        threading.Timer(0.1, setattr, (self, "failure", REASON)).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped += 1


def test_kit_lab_up_ends_with_the_reason_when_the_lab_stopped_itself(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    made: list[FakeLab] = []

    def make(scenario: str, **options: Any) -> FakeLab:
        made.append(FakeLab(scenario, **options))
        return made[-1]

    monkeypatch.setattr(lab_module, "Lab", make)
    monkeypatch.setattr(cli.signal, "signal", lambda *args: None)  # leave pytest's SIGTERM alone
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path))
    assert cli.main(["lab", "up"]) == cli.EXIT_KIT_FAILED
    assert made[0].stopped == 1
    assert capsys.readouterr().err.endswith(f"lab stopped: {REASON}\n")
