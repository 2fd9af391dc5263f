"""Which runtimes the lab runs, and what the machine must have for them (a table of cases)."""

from __future__ import annotations

import pytest

from kit.lab import lambda_runtimes

FAMILIES = [
    ("python3.11", "python"),
    ("python3.9", "python"),
    ("python3.13", "python"),
    ("nodejs18.x", "node"),
    ("nodejs20.x", "node"),
    ("nodejs22.x", "node"),
    ("nodejs16.x", None),  # deprecated: the lab does not pretend to run it
    ("nodejs24.x", None),
    ("nodejs20", None),
    ("python3", None),
    ("python3.x", None),
    ("Python3.11", None),
    ("java17", None),
    ("provided.al2023", None),
    ("", None),
]


@pytest.mark.parametrize(("runtime", "family"), FAMILIES)
def test_each_runtime_has_its_family_or_none(runtime: str, family: str | None) -> None:
    assert lambda_runtimes.family(runtime) == family
    refusal = lambda_runtimes.refusal("fn", runtime)
    if family is None:
        assert refusal is not None and "Function fn" in refusal and runtime in refusal
        assert "nodejs20.x" in refusal  # it says what the lab can run
    else:
        assert refusal is None


@pytest.mark.parametrize(("runtime", "major"), [("nodejs18.x", 18), ("nodejs20.x", 20), ("nodejs22.x", 22)])
def test_node_runtimes_name_their_major_version(runtime: str, major: int) -> None:
    assert lambda_runtimes.node_major(runtime) == major


def test_python_has_no_node_major() -> None:
    assert lambda_runtimes.node_major("python3.12") is None


@pytest.mark.parametrize(
    ("runtime", "node_on_path", "missing"),
    [
        ("nodejs20.x", None, True),
        ("nodejs20.x", "/usr/bin/node", False),
        ("python3.12", None, False),  # Python runs on the lab's own interpreter
        ("java17", None, False),  # not a tool problem: refusal() says so
    ],
)
def test_missing_tool_is_node_only(runtime: str, node_on_path: str | None, missing: bool) -> None:
    asked: list[str] = []

    def which(name: str) -> str | None:
        asked.append(name)
        return node_on_path

    problem = lambda_runtimes.missing_tool(runtime, which)
    assert (problem is not None) == missing
    if missing:
        assert problem is not None and "node" in problem and runtime in problem and "install" in problem
        assert asked == ["node"]
