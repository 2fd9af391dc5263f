"""The test tiers stay apart: ``make test-fast`` (``-m "not integration"``) never starts an engine or a lab.

Every module under tests/integration carries ``pytestmark = pytest.mark.integration``, and no module
outside it asks for the session's DynamoDB engine or starts one. Read from the source (no import, no
collection), so the check costs nothing and fails on the module that breaks it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
INTEGRATION = sorted((TESTS / "integration").glob("test_*.py"))
OUTSIDE = sorted(path for path in TESTS.rglob("test_*.py") if path.parent.name != "integration")
ENGINE_FIXTURES = frozenset({"dynamodb_engine", "dynamodb"})  # tests/conftest.py: the session's engine
ENGINE_STARTS = ("start_dynamodb", "start_moto")  # kit.lab.engines


def _module_marks(tree: ast.Module) -> list[str]:
    return [
        ast.unparse(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in node.targets)
    ]


def _asks_for_fixtures(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A test or a fixture: pytest fills its parameters (a fake's ``__init__(dynamodb)`` is not asked)."""
    return function.name.startswith("test") or any(
        "fixture" in ast.unparse(d) for d in function.decorator_list
    )


def _engine_uses(tree: ast.Module) -> list[str]:
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _asks_for_fixtures(node):
            uses += [f"{node.name}({arg.arg})" for arg in node.args.args if arg.arg in ENGINE_FIXTURES]
        elif isinstance(node, ast.Call):
            called = ast.unparse(node.func).rsplit(".", 1)[-1]
            if called.startswith(ENGINE_STARTS):
                uses.append(f"{called}() on line {node.lineno}")
    return uses


@pytest.mark.parametrize("path", INTEGRATION, ids=lambda path: path.name)
def test_every_integration_module_is_marked(path: Path) -> None:
    marks = _module_marks(ast.parse(path.read_text(encoding="utf-8")))
    assert any("pytest.mark.integration" in mark for mark in marks), (
        f"{path.name} has no `pytestmark = pytest.mark.integration`: make test-fast would run it"
    )


@pytest.mark.parametrize("path", OUTSIDE, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_no_module_outside_integration_starts_an_engine(path: Path) -> None:
    assert _engine_uses(ast.parse(path.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize(
    ("source", "marked", "uses"),
    [
        pytest.param("pytestmark = pytest.mark.integration\n", True, [], id="marked"),
        pytest.param("pytestmark = [pytest.mark.integration, pytest.mark.slow]\n", True, [], id="in a list"),
        pytest.param("pytestmark = pytest.mark.skipif(True, reason='x')\n", False, [], id="another mark"),
        pytest.param("def test_a(dynamodb_engine): ...\n", False, ["test_a(dynamodb_engine)"], id="fixture"),
        pytest.param("engines.start_moto()\n", False, ["start_moto() on line 1"], id="engine started"),
        pytest.param(
            "@pytest.fixture\ndef table(dynamodb): ...\n",
            False,
            ["table(dynamodb)"],
            id="fixture of a fixture",
        ),
        pytest.param(
            "class Fake:\n    def __init__(self, dynamodb): ...\n", False, [], id="a fake's parameter"
        ),
        pytest.param("def test_a(tmp_path): ...\n", False, [], id="neither"),
    ],
)
def test_the_checks_themselves(source: str, marked: bool, uses: list[str]) -> None:
    tree = ast.parse(source)
    assert any("pytest.mark.integration" in mark for mark in _module_marks(tree)) == marked
    assert _engine_uses(tree) == uses
