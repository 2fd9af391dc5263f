"""environment.yml (conda users) and pyproject.toml (pip users) must ask for the same packages."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
# Conda packages that are not Python distributions: the interpreter and the tools `make` needs.
NOT_PYTHON = {"python", "pip", "openjdk", "nodejs"}


def _conda_spec(spec: str) -> tuple[str, str]:
    """'pandas>=2.2' -> ('pandas', '>=2.2'); 'python=3.11' -> ('python', '=3.11')."""
    for i, char in enumerate(spec):
        if char in "<>=!~ ":
            return spec[:i].strip().lower(), spec[i:].replace(" ", "")
    return spec.strip().lower(), ""


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])
    out = {}
    for spec in specs:
        req = Requirement(spec)
        out[req.name.lower()] = str(req.specifier)
    return out


def _environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def test_conda_forge_first_and_python_311() -> None:
    env = _environment()
    assert env["channels"][0] == "conda-forge"
    conda = dict(_conda_spec(d) for d in env["dependencies"] if isinstance(d, str))
    assert conda["python"] == "=3.11"


def test_installs_the_package_itself() -> None:
    env = _environment()
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip_sections, "environment.yml has no pip: section"
    assert any(line.startswith("-e .") for line in pip_sections[0])


def test_same_packages_and_bounds_as_pyproject() -> None:
    env = _environment()
    conda = {
        name: spec
        for name, spec in (_conda_spec(d) for d in env["dependencies"] if isinstance(d, str))
        if name not in NOT_PYTHON
    }
    assert conda == _pyproject_requirements()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("pandas>=2.2", ("pandas", ">=2.2")),
        ("python=3.11", ("python", "=3.11")),
        ("pip", ("pip", "")),
        ("websocket-client >=1.7", ("websocket-client", ">=1.7")),
    ],
)
def test_conda_spec_parsing(spec: str, expected: tuple[str, str]) -> None:
    assert _conda_spec(spec) == expected
