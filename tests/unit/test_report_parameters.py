"""kit.report's choice of the env file its redactor reads: the one the notebooks read."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.report import env_file_of


@pytest.mark.parametrize(
    ("env_file", "parameters", "expected"),
    [
        pytest.param(None, None, None, id="none given"),
        pytest.param("app.env", None, "app.env", id="--env-file"),
        pytest.param(None, {"env_file": "other.env"}, "other.env", id="-p env_file= alone"),
        pytest.param("app.env", {"env_file": "other.env"}, "other.env", id="-p wins, as for the notebooks"),
        pytest.param("app.env", {"env_file": ""}, "app.env", id="-p empty means not given"),
        pytest.param(None, {"region": "us-east-2"}, None, id="other parameters only"),
    ],
)
def test_the_redactor_reads_the_env_file_the_notebooks_read(
    env_file: str | None,
    parameters: dict[str, str] | None,
    expected: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert env_file_of(env_file, parameters) == (str(tmp_path / expected) if expected else None)
