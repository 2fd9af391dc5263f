"""`kit logs parse FILE` in process: what it writes for good files, and one line and exit 2 for broken ones."""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path

import pandas as pd
import pytest

from kit import logparse as lp
from kit import output
from kit.cli import main
from kit.logparse import reading

DATA = Path(__file__).resolve().parents[1] / "data" / "logs"
FORMS = {"table": [], "json": ["--json"], "csv": ["--csv"]}


def _kit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["logs", "parse", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _printed(frame: pd.DataFrame, form: output.Format) -> str:
    """What the CLI prints for the whole frame: in a table, what a person reads (the log view)."""
    from kit.cli import _log_view

    buffer = io.StringIO()
    output.print_frame(frame, form, buffer, _log_view(form, [str(c) for c in frame.columns], None))
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["python-text.log", "odd.log", "access.log", "scenario-lambda.json"])
@pytest.mark.parametrize("form", ["table", "json", "csv"])
def test_a_file_in_small_parts_prints_its_whole_parse(
    name: str, form: output.Format, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "PART_SIZE", 300)  # several parts even for the fixtures
    data = (DATA / name).read_bytes()
    whole = lp.parse(lp.read_export(data) if name.endswith(".json") else lp.read_raw_lines(data))
    code, out, err = _kit(capsys, str(DATA / name), *FORMS[form])
    assert (code, err) == (0, "")
    assert out == _printed(whole, form)


def test_a_lone_carriage_return_stays_inside_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Python runtime joins a traceback's lines with \\r: one event, as read_raw_lines says (the file
    used to be read with universal newlines, which made each piece an event of its own)."""
    log = tmp_path / "traceback.log"
    log.write_bytes(b"[ERROR] KeyError: 'x'\rTraceback (most recent call last):\r  File \"app.py\"\r\nnext\n")
    code, out, _ = _kit(capsys, str(log), "--json")
    assert code == 0
    assert [row["message"] for row in json.loads(out)] == [
        "[ERROR] KeyError: 'x'\rTraceback (most recent call last):\r  File \"app.py\"",
        "next",
    ]


TRUNCATED = (
    b'{\n  "events": [\n'
    b'    {"logStreamName": "s", "timestamp": 1756643696000, "message": "START RequestId: r1 Version: 1"},\n'
    b'    {"logStreamName": "s", "timestamp": 1756643696001, "message": "hello"},\n'
    b'    {"logStreamName": "s", "timestamp": 1756643696002, "message": "END RequestId: r1"},\n'
    b'    {"logStreamName": "s", "timestamp": 1756643696003, "message": "REPORT Req'
)

END_COLUMN = len(TRUNCATED.splitlines()[-1]) + 1  # where the file ends, on its sixth line


@pytest.mark.parametrize("form", ["table", "json", "csv"])
def test_a_truncated_export_keeps_the_events_before_the_break_and_says_where(
    form: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "cut.json"
    export.write_bytes(TRUNCATED)
    code, out, err = _kit(capsys, str(export), *FORMS[form])
    assert code == 2
    assert err == (
        f"kit: {export} is not a whole export: at line 6, column {END_COLUMN}, the file ends inside log event 3; "
        "3 events were read before it. Output stops there (3 events written).\n"
    )
    expected = lp.parse(lp.read_export(TRUNCATED.rsplit(b",\n", 1)[0] + b"]}"))
    assert out == _printed(expected, form)  # a --json array is closed: the kept events stay usable
    if form == "json":
        assert [row["request_id"] for row in json.loads(out)] == ["r1", "r1", "r1"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("Infinity", "a timestamp of inf;"),
        ("-Infinity", "a timestamp of -inf;"),
        ("NaN", "a timestamp of nan;"),
        ("1e30", "a timestamp of 1e+30;"),
        ("-1e30", "a timestamp of -1e+30;"),
        ("1e300", "a timestamp of 1e+300;"),
        ('"1756643696000"', "a timestamp of type str;"),
        ("true", "a timestamp of type bool;"),
        ("[" * 10_000 + "]" * 10_000, "nests deeper than Python's JSON decoder can follow"),
    ],
)
def test_a_bad_timestamp_is_one_line_naming_the_event(
    value: str, shown: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "times.json"
    export.write_text(
        f'{{"events": [{{"message": "ok", "timestamp": 1}},\n  {{"message": "m", "timestamp": {value}}}]}}'
    )
    code, out, err = _kit(capsys, str(export), "--csv")
    assert code == 2
    assert err.count("\n") == 1 and "unexpected" not in err and "Traceback" not in err
    assert str(export) in err and shown in err
    assert ("Log event 1 (line 2, column 3)" in err) or ("at line 2, column 3, log event 1" in err)
    assert "1 event was read before it" in err and "(1 events written)" in err
    assert out.count("\n") == 2  # the header and the event before it


def test_a_file_that_never_ends_a_line_is_refused_after_the_bound(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _kit(capsys, "/dev/zero", "--csv")
    assert code == 2
    assert err == (
        "kit: /dev/zero: line 1 is longer than 8 MiB; a log event is at most 1 MB, so this is not a file of "
        "log lines (no events were read before it). Output stops there (0 events written).\n"
    )
    assert out.splitlines() == [",".join(lp.LOG_COLUMNS)]


@pytest.mark.parametrize(("form", "printed"), [("table", "(nothing)\n"), ("json", "[]\n")])
def test_an_empty_file_prints_nothing_and_succeeds(
    form: str, printed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    assert _kit(capsys, str(empty), *FORMS[form]) == (0, printed, "")
    assert _kit(capsys, str(empty), "--csv") == (0, ",".join(lp.LOG_COLUMNS) + "\n", "")


def test_binary_junk_is_kept_and_marked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 8)  # eight line breaks, and no break at the end
    code, out, err = _kit(capsys, str(junk), "--json")
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert len(rows) == 9
    assert all(row["kind"] == "unknown" and "binary" in row["parse_error"] for row in rows)


def test_exports_appended_one_after_another_are_all_parsed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = (DATA / "scenario-lambda.json").read_text()
    pages = tmp_path / "pages.json"
    pages.write_text(page + "\n" + page)
    code, out, _ = _kit(capsys, str(pages), "--json")
    assert code == 0 and len(json.loads(out)) == 2 * len(json.loads(page)["events"])


def test_a_pipe_is_read_once_and_what_that_leaves_open_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "PART_SIZE", 64)
    fifo = tmp_path / "lines"
    os.mkfifo(fifo)
    data = b"a print before any Lambda line\n" * 4 + b"START RequestId: r1 Version: $LATEST\n"

    def feed() -> None:
        with fifo.open("wb") as pipe:
            pipe.write(data)

    feeder = threading.Thread(target=feed)
    feeder.start()
    code, out, err = _kit(capsys, str(fifo), "--csv")
    feeder.join(timeout=10)
    assert code == 0
    assert err == (
        f"kit: note: 3 lines of {fifo} were written as unknown before their stream's Lambda lines were seen "
        "(a pipe cannot be read twice); parse a file to have them read as Lambda output.\n"
    )
    kinds = [line.split(",")[8] for line in out.splitlines()[1:]]
    assert kinds == ["unknown", "unknown", "unknown", "app", "start"]  # the first part could not wait


def test_a_missing_file_or_a_directory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _kit(capsys, str(tmp_path / "nope.log")) == (
        2,
        "",
        f"kit: cannot read {tmp_path / 'nope.log'}: No such file or directory.\n",
    )
    assert _kit(capsys, str(tmp_path)) == (2, "", f"kit: cannot read {tmp_path}: Is a directory.\n")
