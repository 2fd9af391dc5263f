"""kit.local: where the kit keeps its files. The paths are a contract with users (``.kit/lab.json``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit import local

ROOT = Path(__file__).resolve().parents[2]


def test_the_project_root_is_the_checkout() -> None:
    assert local.PROJECT_ROOT == ROOT
    assert (local.PROJECT_ROOT / "kit" / "local.py").is_file()


@pytest.mark.parametrize(
    ("environment", "state"),
    [
        pytest.param(None, ROOT / ".kit", id="default: .kit at the project root"),
        pytest.param("", ROOT / ".kit", id="empty: the default"),
        pytest.param("/tmp/kit-state", Path("/tmp/kit-state"), id="KIT_STATE_DIR"),
    ],
)
def test_state_dir_and_lab_file(
    monkeypatch: pytest.MonkeyPatch, environment: str | None, state: Path
) -> None:
    if environment is None:
        monkeypatch.delenv("KIT_STATE_DIR", raising=False)
    else:
        monkeypatch.setenv("KIT_STATE_DIR", environment)
    assert local.state_dir() == state
    assert local.lab_file() == state / "lab.json"
    # Compiled helpers are kept once, wherever the state goes.
    assert local.CACHE_DIR == ROOT / ".kit" / "cache"


def test_the_lab_file_is_read_as_written(tmp_path: Path) -> None:
    path = tmp_path / "lab.json"
    path.write_text('{"region": "us-east-2", "scenario": "healthy"}')
    assert local.read_lab_file(path) == {"region": "us-east-2", "scenario": "healthy"}
