"""Log text as people paste it (kit.logparse.forms): `aws logs tail` in both formats and `sam logs`, their
prefixes taken off into the time and stream, and the lines inside read as their kind."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from kit import cli, frames
from kit.logparse import forms
from kit.logparse.columns import RAW_EVENT_COLUMNS

REQUEST = "8f5c1a2e-0000-4000-8000-000000000001"
STREAM = "2026/12/04/[$LATEST]0123456789abcdef"
INSIDE = [
    f"START RequestId: {REQUEST} Version: $LATEST",
    f"2026-12-04T01:02:03.150Z\t{REQUEST}\tINFO\tconnected",
    f"END RequestId: {REQUEST}",
    f"REPORT RequestId: {REQUEST}\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 256 MB\tMax Memory Used: 80 MB",
]
PREFIXES = {
    "tail-detailed": lambda i: f"2026-12-04T01:02:03.{100 + i}000+00:00 {STREAM} ",
    "tail-short": lambda i: f"2026-12-04T01:02:0{3 + i} ",
    "sam": lambda i: f"{STREAM} 2026-12-04T01:02:03.{100 + i}000 ",
}


def lines_of(form: str | None) -> list[str]:
    if form is None:
        return list(INSIDE)
    return [PREFIXES[form](i) + line for i, line in enumerate(INSIDE)]


@pytest.mark.parametrize("form", [*PREFIXES, None])
def test_each_form_is_told_from_its_lines(form: str | None) -> None:
    assert forms.detect(lines_of(form)) == form


@pytest.mark.parametrize(
    ("prefixed", "total", "expected"),
    [(8, 10, "tail-detailed"), (7, 10, None), (0, 0, None), (1, 1, "tail-detailed")],
    ids=["at the majority", "just under", "empty", "one line"],
)
def test_a_form_needs_most_of_the_first_lines(prefixed: int, total: int, expected: str | None) -> None:
    sample = [PREFIXES["tail-detailed"](0) + "x"] * prefixed + ["a raw line"] * (total - prefixed)
    assert forms.detect([*sample, "", "  "]) == expected


def raw(messages: list[str]) -> pd.DataFrame:
    return frames.from_rows([{"message": m} for m in messages], RAW_EVENT_COLUMNS)


def test_strip_moves_the_prefix_into_time_and_stream_and_keeps_the_rest() -> None:
    stripped = forms.strip(
        raw([*lines_of("tail-detailed"), "  a second line of the last message"]), "tail-detailed"
    )
    assert stripped["message"].tolist() == [*INSIDE, "  a second line of the last message"]
    assert stripped["log_stream"].tolist()[:4] == [STREAM] * 4 and pd.isna(stripped["log_stream"].iloc[4])
    first = pd.Timestamp("2026-12-04T01:02:03.100Z")
    assert int(stripped["timestamp"].iloc[0]) == first.value // 1_000_000
    assert int(stripped["timestamp"].iloc[3]) - int(stripped["timestamp"].iloc[0]) == 3
    assert forms.strip(raw(INSIDE), None).equals(raw(INSIDE))


def parse_file(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, object]]:
    assert cli.main(["logs", "parse", str(path), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("form", [*PREFIXES, None])
def test_kit_logs_parse_reads_the_lines_inside_each_form(
    form: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pasted.log"
    path.write_text("\r\n".join(lines_of(form)) + "\r\n")  # a Windows copy: CRLF line ends
    rows = parse_file(path, capsys, "--log-group", "/aws/lambda/chat")
    assert [r["kind"] for r in rows] == ["start", "app", "end", "report"]
    assert {r["request_id"] for r in rows} == {REQUEST}
    assert {r["log_group"] for r in rows} == {"/aws/lambda/chat"}
    assert rows[0]["message"] == INSIDE[0]
    if form is not None:
        assert rows[0]["ts"] is not None and str(rows[0]["ts"]).startswith("2026-12-04")


def test_a_bare_carriage_return_stays_inside_its_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kit import logparse

    text = f"START RequestId: {REQUEST} Version: $LATEST\n[ERROR] boom\rTraceback\r  File x\nEND RequestId: {REQUEST}\r\n"
    path = tmp_path / "cr.log"
    path.write_bytes(text.encode())
    rows = parse_file(path, capsys)
    events = pd.DataFrame(
        {
            "message": [
                "START RequestId: " + REQUEST + " Version: $LATEST",
                "[ERROR] boom\rTraceback\r  File x",
                f"END RequestId: {REQUEST}",
            ]
        }
    )
    assert [r["message"] for r in rows] == logparse.parse(events)["message"].tolist()
    assert len(rows) == 3 and rows[1]["kind"] == "error"


def insights_answer(*rows: dict[str, str]) -> str:
    results = [[{"field": k, "value": v} for k, v in row.items()] for row in rows]
    return json.dumps({"results": results, "statistics": {"recordsMatched": len(rows)}, "status": "Complete"})


def test_a_logs_insights_answer_reads_as_its_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "results.json"
    path.write_text(
        insights_answer(
            {
                "@timestamp": "2026-12-04 01:02:03.123",
                "@message": INSIDE[0],
                "@logStream": STREAM,
                "@log": "123456789012:/aws/lambda/chat",
                "@ptr": "a",
            },
            {
                "@timestamp": "2026-12-04 01:02:03.300",
                "@message": INSIDE[2],
                "@logStream": STREAM,
                "@log": "123456789012:/aws/lambda/chat",
                "@ptr": "b",
            },
        )
    )
    rows = parse_file(path, capsys)
    assert [(r["kind"], r["request_id"], r["log_group"], r["log_stream"]) for r in rows] == [
        ("start", REQUEST, "/aws/lambda/chat", STREAM),
        ("end", REQUEST, "/aws/lambda/chat", STREAM),
    ]
    assert str(rows[0]["ts"]).startswith("2026-12-04 01:02:03.123")


@pytest.mark.parametrize(
    ("document", "said"),
    [
        ('{"status": "Complete"}', "without a results list"),
        (insights_answer({"@timestamp": "2026-12-04 01:02:03.123"}), "result 1 has no @message field"),
        ('{"results": [', "not JSON"),
    ],
)
def test_a_broken_insights_answer_is_one_line(
    document: str, said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "results.json"
    path.write_text(document)
    assert cli.main(["logs", "parse", str(path), "--json"]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1 and str(path) in err


def test_the_consoles_csv_download_reads_with_multi_line_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "logs-insights-results.csv"
    path.write_text(
        '"@timestamp","@message"\r\n"2026-12-04 01:02:03.123","'
        + INSIDE[0]
        + '"\r\n"2026-12-04 01:02:04.000","[ERROR] boom\nTraceback (most recent call last):"\r\n'
    )
    rows = parse_file(path, capsys, "--log-group", "/aws/lambda/chat")
    assert [r["kind"] for r in rows] == ["start", "error"]
    assert rows[1]["message"] == "[ERROR] boom\nTraceback (most recent call last):"
    assert {r["log_group"] for r in rows} == {"/aws/lambda/chat"}


@pytest.mark.parametrize(
    ("head", "insights", "csv"),
    [
        (b'{"results": []}', True, False),
        (b'\xef\xbb\xbf  {\n "status": "Running"}', True, False),
        (b'{"events": []}', False, False),
        (b'"timestamp","message"\n', False, True),
        (b"@timestamp,@message,@logStream\n", False, True),
        (b"message\n", False, False),  # one column: a raw line that happens to say message
        (b"START RequestId: x, y\n", False, False),
    ],
)
def test_whole_document_forms_are_told_from_their_first_bytes(head: bytes, insights: bool, csv: bool) -> None:
    assert (forms.is_insights(head), forms.is_csv(head)) == (insights, csv)


@pytest.mark.parametrize(
    ("head", "said"),
    [
        (b"\x1f\x8b\x08\x00rest", "is gzip-compressed, not log text; decompress it first"),
        (b"PK\x03\x04rest", "is a zip archive, not log text; unzip it"),
        (b"BZh91AY&SYrest", "is bzip2-compressed"),
        (b"\xfd7zXZ\x00rest", "is xz-compressed"),
        (b"\x28\xb5\x2f\xfdrest", "is zstd-compressed"),
        (b"\xff\xfe2\x000\x002\x006\x00", "is UTF-16 text (as a PowerShell redirect writes it)"),
        (b"\xfe\xff\x002\x000", "is UTF-16 text"),
    ],
)
def test_what_is_not_log_text_is_named_with_what_to_do(head: bytes, said: str) -> None:
    problem = forms.not_text(head)
    assert problem is not None and problem.startswith(said), problem


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"START RequestId: 8f1c Version: $LATEST\n",
        b"\xef\xbb\xbf2026-12-04T05:00:00.000Z\tabc\tINFO\thello\n",  # UTF-8 with a BOM
        b"BZh is how this line of text starts\n",  # "BZh" without bzip2's signature after it
        b'{"events": []}',
        "2026-12-04T05:00:00Z café ünïcode\n".encode(),
        b"START RequestId: x\n\x00\x01\x02 binary junk\n",  # kept and marked by the parse, not refused
    ],
)
def test_log_text_is_not_refused(head: bytes) -> None:
    assert forms.not_text(head) is None


def test_kit_logs_parse_refuses_a_gzip_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import gzip

    path = tmp_path / "lambda.log.gz"
    path.write_bytes(gzip.compress(b"START RequestId: x Version: $LATEST\n"))
    assert cli.main(["logs", "parse", str(path)]) == cli.EXIT_KIT_FAILED
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"kit: {path} is gzip-compressed, not log text; decompress it first (gunzip, or zcat FILE > "
        "FILE.log).\n"
    )
