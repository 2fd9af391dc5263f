"""Bring your own function: what is read from the user's folder or .zip, and every way it is refused."""

from __future__ import annotations

import re
import stat
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kit import cli
from kit.errors import ConfigurationError
from kit.lab import function_source
from kit.lab.function_source import UNZIPPED_LIMIT_BYTES, FunctionSource
from kit.lab.runtime import iter_child_pids
from kit.local import STATE_DIR_ENV


def member(name: str, size: int = 10, mode: int = stat.S_IFREG | 0o644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.file_size = size
    info.external_attr = mode << 16
    return info


def archive(*members: zipfile.ZipInfo) -> Any:
    """What check_zip reads of an archive: its central directory (sizes as claimed, nothing extracted)."""
    return SimpleNamespace(infolist=lambda: list(members))


@pytest.mark.parametrize(
    ("members", "problem"),
    [
        ([member("index.mjs"), member("lib/util.js")], None),
        ([member("index.mjs", UNZIPPED_LIMIT_BYTES)], None),  # exactly Lambda's 250 MB
        ([member("a.js", UNZIPPED_LIMIT_BYTES - 1), member("b.js", 1)], None),
        ([member("a.js", UNZIPPED_LIMIT_BYTES), member("b.js", 1)], "over Lambda's limit of 262144000 bytes"),
        ([member("/etc/cron.d/x")], "would be written outside the function's folder"),
        ([member("../outside.js")], "would be written outside"),
        ([member("lib/../../outside.js")], "would be written outside"),
        ([member("..\\windows.js")], "would be written outside"),
        ([member("C:/x.js")], "would be written outside"),
        ([member("link.js", mode=stat.S_IFLNK | 0o777)], "is a symbolic link"),
        ([member("index.mjs"), member("index.mjs")], "appears twice"),
        ([member("lib/"), member("lib")], "appears twice"),
        ([member("a..b.js"), member("lib/")], None),  # dots in a name are not a parent reference
    ],
)
def test_check_zip(members: list[zipfile.ZipInfo], problem: str | None) -> None:
    if problem is None:
        assert function_source.check_zip(archive(*members), "fn.zip") == members
    else:
        with pytest.raises(ConfigurationError, match=re.escape(problem)) as raised:
            function_source.check_zip(archive(*members), "fn.zip")
        assert str(raised.value).startswith("fn.zip: ") and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("pairs", "expected", "problem"),
    [
        ([], {}, None),
        (
            ["TABLE=t", "EMPTY=", "URL=http://x/?a=b"],
            {"TABLE": "t", "EMPTY": "", "URL": "http://x/?a=b"},
            None,
        ),
        (["FOO"], None, "--env 'FOO' is not NAME=value"),
        (["=value"], None, "is not NAME=value"),
        (["AWS_REGION=x"], None, "--env AWS_REGION: Lambda sets AWS_REGION itself"),
        (["_HANDLER=x"], None, "--env _HANDLER: Lambda sets"),
        (["AWS_SECRET_ACCESS_KEY=x"], None, "Lambda sets AWS_SECRET_ACCESS_KEY itself"),
    ],
)
def test_parse_environment(pairs: list[str], expected: dict[str, str] | None, problem: str | None) -> None:
    if problem is None:
        assert function_source.parse_environment(pairs) == expected
    else:
        with pytest.raises(ConfigurationError, match=re.escape(problem)):
            function_source.parse_environment(pairs)


@pytest.mark.parametrize(
    ("names", "runtime"),
    [
        (["index.mjs"], "nodejs20.x"),
        (["src/handler.js", "package.json"], "nodejs20.x"),
        (["fn.cjs"], "nodejs20.x"),
        (["package.json"], "nodejs20.x"),
        (["lambda_function.py", "requirements.txt"], "python3.12"),
        (["index.mjs", "tools/build.py"], None),
        (["README.md"], None),
        ([], None),
    ],
)
def test_default_runtime(names: list[str], runtime: str | None) -> None:
    if runtime is None:
        with pytest.raises(ConfigurationError, match=r"say which runtime runs it with --runtime"):
            function_source.default_runtime(names, "fn")
    else:
        assert function_source.default_runtime(names, "fn") == runtime


def make_zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as package:
        for name, text in files.items():
            package.writestr(name, text)
    return path


def test_a_folder_and_a_zip_are_read_with_the_consoles_defaults(tmp_path: Path) -> None:
    folder = tmp_path / "my-fn"
    folder.mkdir()
    (folder / "index.mjs").write_text("export const handler = async () => 1;\n")
    read = function_source.function_source(str(folder), which=lambda _: "/usr/bin/node")
    assert (read.kind, read.handler, read.runtime, read.name) == (
        "folder",
        "index.handler",
        "nodejs20.x",
        "my-fn",
    )
    packaged = make_zip(
        tmp_path / "py-fn.zip", {"lambda_function.py": "def lambda_handler(e, c): return 1\n"}
    )
    read = function_source.function_source(str(packaged), environment=["A=1"])
    assert (read.kind, read.handler, read.runtime) == ("zip", "lambda_function.lambda_handler", "python3.12")
    assert read.environment == {"A": "1"}


def test_install_extracts_the_checked_zip_and_describe_says_what_was_loaded(tmp_path: Path) -> None:
    packaged = make_zip(tmp_path / "fn.zip", {"index.mjs": "x" * 2048, "lib/a.js": "y"})
    source = function_source.function_source(str(packaged), environment=["API_TOKEN=s3cr3t", "TABLE=t"])
    installed = function_source.install(source, tmp_path / "task")
    assert sorted(str(p.relative_to(tmp_path / "task")) for p in (tmp_path / "task").rglob("*.*js")) == [
        "index.mjs",
        "lib/a.js",
    ]
    assert (installed.files, installed.size_bytes) == (2, 2049)
    line = function_source.describe(source, installed)
    assert line == (
        "your function from fn.zip: 2 files (2 KB); handler index.handler on nodejs20.x; "
        "environment API_TOKEN, TABLE"
    )
    assert "s3cr3t" not in line and str(tmp_path) not in line
    assert function_source.package(source, tmp_path / "task") == packaged.read_bytes()


def test_what_the_lab_file_keeps_has_no_path_and_no_secret(tmp_path: Path) -> None:
    source = FunctionSource(
        tmp_path / "my-fn", "folder", "index.handler", "nodejs20.x", {"DB_PASSWORD": "hunter2", "TABLE": "t"}
    )
    kept = function_source.recorded(source)
    assert kept == {
        "code": "my-fn",
        "handler": "index.handler",
        "runtime": "nodejs20.x",
        "environment": {"DB_PASSWORD": function_source.SECRET_PLACEHOLDER, "TABLE": "t"},
    }
    assert "hunter2" not in str(kept) and str(tmp_path) not in str(kept)


# -- `kit lab up` with bad input: one line, exit 2, nothing started ----------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["--function", "{tmp}/missing"], "no such file or folder"),
        (["--function", "{tmp}/not-a.zip"], "is neither a folder nor a .zip archive"),
        (["--function", "{tmp}/fn", "--handler", "index"], "--handler 'index' has no dot"),
        (["--function", "{tmp}/fn", "--runtime", "java17"], "uses runtime java17; the lab runs"),
        (["--function", "{tmp}/fn", "--env", "FOO"], "--env 'FOO' is not NAME=value"),
        (["--function", "{tmp}/fn", "--env", "AWS_REGION=x"], "Lambda sets AWS_REGION itself"),
        (["--function", "{tmp}/fn", "--scenario", "seed-put-denied"], "swaps the function's handler"),
        (["--function", "{tmp}/slip.zip"], "would be written outside the function's folder"),
        (["--env", "A=1"], "--handler and --env go with --function"),
        (["--runtime", "java17"], "uses runtime java17"),
    ],
)
def test_kit_lab_up_refuses_in_one_line_and_starts_nothing(
    arguments: list[str],
    said: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "state"))
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "index.mjs").write_text("export const handler = async () => 1;\n")
    (tmp_path / "not-a.zip").write_text("not an archive")
    make_zip(tmp_path / "slip.zip", {"../evil.mjs": "x"})
    before = set(iter_child_pids())

    code = cli.main(["lab", "up", *[a.format(tmp=tmp_path) for a in arguments]])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("kit: ") and err.count("\n") == 1 and said in err
    assert not (tmp_path / "state").exists()  # no lab file
    assert set(iter_child_pids()) <= before  # no engine, no worker


def test_no_node_on_the_machine_is_said_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "state"))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "index.mjs").write_text("export const handler = async () => 1;\n")
    assert cli.main(["lab", "up", "--function", str(tmp_path / "fn")]) == 2
    assert "runtime nodejs20.x needs Node.js: no `node` on PATH" in capsys.readouterr().err
    assert cli.main(["lab", "up", "--runtime", "nodejs22.x"]) == 2
    assert not (tmp_path / "state").exists()


def test_a_folder_over_lambdas_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "index.mjs").write_text("x" * 10)
    (folder / "blob.bin").write_bytes(b"\0" * 10)
    monkeypatch.setattr(function_source, "UNZIPPED_LIMIT_BYTES", 20)
    function_source.check_folder(folder, "big")  # exactly at the limit
    (folder / "one-more").write_bytes(b"\0")
    with pytest.raises(
        ConfigurationError, match=r"^big: over Lambda's limit of 20 bytes \(250 MB\) unzipped"
    ):
        function_source.check_folder(folder, "big")
