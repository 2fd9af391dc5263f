"""Which handler code notebook 01 runs, and how it refuses what it cannot run (a table of cases)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from kit.dynamo import lambda_handlers
from kit.dynamo.lambda_handlers import HANDLER_DIR, HandlerCode
from kit.errors import ConfigurationError
from kit.target import Target

NODE = shutil.which("node") is not None


def test_python_without_a_path_runs_in_this_kernel() -> None:
    assert lambda_handlers.choose("python") == []
    assert lambda_handlers.choose("") == []
    assert lambda_handlers.choose("  ") == []


@pytest.mark.parametrize(
    ("runtime", "extension"),
    [
        ("python3.12", ".py"),
        ("python3.9", ".py"),
        pytest.param("nodejs20.x", ".mjs", marks=pytest.mark.skipif(not NODE, reason="no node")),
        pytest.param("nodejs18.x", ".mjs", marks=pytest.mark.skipif(not NODE, reason="no node")),
    ],
)
def test_the_kits_handlers_in_a_runtime(runtime: str, extension: str) -> None:
    assert lambda_handlers.choose(runtime) == [
        HandlerCode(f"seed ({extension})", "seed.handler", runtime, str(HANDLER_DIR)),
        HandlerCode(f"fixed ({extension})", "app.handler", runtime, str(HANDLER_DIR)),
    ]


def test_your_function_beside_the_kits_fixed_handler(tmp_path: Path) -> None:
    (tmp_path / "lambda_function.py").write_text("def lambda_handler(event, context):\n    return {}\n")
    chosen = lambda_handlers.choose("python", str(tmp_path), "")
    source = chosen[0].source
    assert source is not None and source.runtime == "python3.12"
    assert chosen == [
        HandlerCode("yours", "lambda_function.lambda_handler", "python3.12", str(tmp_path), source),
        HandlerCode("fixed (.py)", "app.handler", "python3.12", str(HANDLER_DIR)),
    ]


@pytest.mark.parametrize(
    ("runtime", "path", "handler", "message"),
    [
        ("java17", "", "", "handler_runtime 'java17': the lab runs Python runtimes"),
        ("nodejs16.x", "", "", "handler_runtime 'nodejs16.x': the lab runs"),
        ("python", "{missing}", "index.handler", "function_path {missing}: no such file or folder"),
        ("python", "{file}", "index.handler", "function_path file.zip is neither a folder nor a .zip"),
        ("python3.12", "{dir}", "index", "function_handler 'index' has no dot"),
        (
            "python",
            "{empty}",
            "",
            "holds neither JavaScript nor Python files; say which runtime runs it with handler_runtime",
        ),
    ],
)
def test_what_is_refused_in_one_line(
    tmp_path: Path, runtime: str, path: str, handler: str, message: str
) -> None:
    (tmp_path / "file.zip").write_bytes(b"PK")
    (tmp_path / "dir").mkdir()
    (tmp_path / "empty").mkdir()
    names = {"missing": tmp_path / "nope", "file": tmp_path / "file.zip", "dir": tmp_path / "dir"}
    where = path.format(**names, empty=tmp_path / "empty")
    with pytest.raises(ConfigurationError, match=re.escape(message.format(**names))) as raised:
        lambda_handlers.choose(runtime, where, handler)
    assert "\n" not in str(raised.value)


def test_node_is_needed_for_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ConfigurationError, match=r"runtime nodejs20\.x needs Node\.js: no `node` on PATH"):
        lambda_handlers.choose("nodejs20.x")


def test_only_the_lab_runs_them() -> None:
    target = Target(kind="aws", region="us-east-2", table="chatgenius-connections")
    with (
        pytest.raises(ConfigurationError, match=r"reaches only 127\.0\.0\.1, not target .*use target lab"),
        lambda_handlers.running(target, [HandlerCode("yours", "index.handler", "nodejs20.x", "/x")]),
    ):
        pass
