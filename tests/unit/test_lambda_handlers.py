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
    chosen = lambda_handlers.choose("python", str(tmp_path), "lambda_function.lambda_handler")
    assert chosen == [
        HandlerCode("yours", "lambda_function.lambda_handler", lambda_handlers.PYTHON_RUNTIME, str(tmp_path)),
        HandlerCode("fixed (.py)", "app.handler", lambda_handlers.PYTHON_RUNTIME, str(HANDLER_DIR)),
    ]


@pytest.mark.parametrize(
    ("runtime", "path", "handler", "message"),
    [
        ("java17", "", "", "handler_runtime 'java17': the lab runs Python runtimes"),
        ("nodejs16.x", "", "", "handler_runtime 'nodejs16.x': the lab runs"),
        ("python", "{missing}", "index.handler", "is not a folder; give the folder"),
        ("python", "{file}", "index.handler", "is not a folder"),
        ("python", "{dir}", "index", "'index' is not a Lambda handler string; give file.function"),
        ("python", "{dir}", "", "'' is not a Lambda handler string"),
    ],
)
def test_what_is_refused_in_one_line(
    tmp_path: Path, runtime: str, path: str, handler: str, message: str
) -> None:
    (tmp_path / "file.zip").write_bytes(b"PK")
    where = path.format(missing=tmp_path / "nope", file=tmp_path / "file.zip", dir=tmp_path)
    with pytest.raises(ConfigurationError, match=re.escape(message)) as raised:
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
