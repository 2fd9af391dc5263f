"""The house style's linter runs with the suite: ruff's rules and its formatting (``[tool.ruff]`` in
pyproject.toml) over kit, tests and bench, as ``make check`` runs them, so a change that breaks either fails
``make test`` and CI, not only a command someone may forget. ~0.3 s of CPU for both. mypy stays in
``make check``: without its cache it costs the suite far more than this.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).with_name("ruff")  # the dev extra's, in the venv the suite runs in
PATHS = ("kit", "tests", "bench")


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["rules", "format"])
def test_ruff_finds_nothing(command: list[str]) -> None:
    assert RUFF.is_file(), f"{RUFF} is missing: run `make setup` (ruff is in the dev extra)"
    # --no-cache: two workers may run these at once, and a fresh clone has no cache to gain from.
    run = subprocess.run(
        [str(RUFF), *command, "--no-cache", *PATHS],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, (
        f"ruff {' '.join(command)} (fix with `make format`, see `make check`):\n{run.stdout}{run.stderr}"
    )
