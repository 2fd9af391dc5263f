"""kit.logparse.reading: a log file a part at a time, whatever its blocks and parts, and where it breaks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from kit import logparse as lp
from kit.errors import ConfigurationError
from kit.logparse import reading

DATA = Path(__file__).resolve().parents[1] / "data" / "logs"
RAW_FIXTURES = [
    "python-text.log",
    "node-text.log",
    "lambda-json.log",
    "execution.log",
    "access.log",
    "odd.log",
]
EXPORT_FIXTURES = ["scenario-lambda.json", "scenario-access.json", "scenario-execution.json"]


def _blocks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _read(data: bytes, block: int = 4096, part: int | None = None) -> list[pd.DataFrame]:
    return list(reading.file_parts(_blocks(data, block), "f.log", part))


def _joined(parts: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def _broken(data: bytes, block: int = 4096, part: int | None = None) -> tuple[list[str], str]:
    """The messages of the events yielded before the error, and the error."""
    kept: list[str] = []
    with pytest.raises(ConfigurationError) as caught:
        for frame in reading.file_parts(_blocks(data, block), "f.log", part):
            kept += frame["message"].tolist()
    assert "\n" not in str(caught.value)
    return kept, str(caught.value)


@pytest.mark.parametrize(
    ("head", "export"),
    [
        pytest.param(b'{"events": [', True, id="events first"),
        pytest.param(b' \r\n\t{\n    "events": [', True, id="white space first (aws cli output)"),
        pytest.param(b'{"searchedLogStreams": [], "events": []}', True, id="searchedLogStreams first"),
        pytest.param(b'{"nextToken": "x"}', True, id="nextToken first"),
        pytest.param(b'{"nextForwardToken": "f/1", "events": []}', True, id="get-log-events"),
        pytest.param(b'{"logGroupName": "/aws/lambda/x", "events": []}', True, id="logGroupName first"),
        pytest.param(b'\xef\xbb\xbf{"events": []}', True, id="byte order mark"),
        pytest.param(b'[{"message": "m"}]', True, id="bare list"),
        pytest.param(b"[\n  {", True, id="bare list, white space"),
        pytest.param(b"[]", True, id="empty bare list"),
        pytest.param(b'{"requestId": "r1", "eventType": "CONNECT"}\n', False, id="access-log line"),
        pytest.param(b'{"Events": []}', False, id="keys are case-sensitive"),
        pytest.param(b'{"event": []}', False, id="not quite events"),
        pytest.param(b"[INFO]\t2025-08-31T12:34:56.789Z\tr1\thello\n", False, id="python runtime line"),
        pytest.param(b"[1, 2]", False, id="list of numbers"),
        pytest.param(b"START RequestId: r1 Version: $LATEST\n", False, id="raw line"),
        pytest.param(b'"events"', False, id="a JSON string"),
        pytest.param(b"", False, id="empty"),
        pytest.param(b"  \n\n", False, id="only white space"),
    ],
)
def test_what_a_file_is_read_as(head: bytes, export: bool) -> None:
    assert reading.is_export(head) is export


@pytest.mark.parametrize("name", RAW_FIXTURES + EXPORT_FIXTURES)
@pytest.mark.parametrize(("block", "part"), [(1, 1), (7, 2), (7, 64), (4096, 200), (4096, None)])
def test_parts_together_are_the_whole_files_frame(name: str, block: int, part: int | None) -> None:
    data = (DATA / name).read_bytes()
    whole = lp.read_export(data) if name.endswith(".json") else lp.read_raw_lines(data)
    parts = _read(data, block, part)
    pd.testing.assert_frame_equal(_joined(parts), whole)
    if part == 1:  # a part as small as can be: every event (a line or an export's event) is its own
        assert [len(frame) for frame in parts] == [1] * len(whole)


@pytest.mark.parametrize("block", [1, 2, 3, 5])
def test_raw_lines_cut_only_between_lines_and_characters_survive_block_cuts(block: int) -> None:
    data = "é€😀 one\r\n[ERROR] E: m\rTraceback\r\n\n\xff last".encode("utf-8", "surrogateescape")
    data = data.replace(b"\xc3\xbf", b"\xff")  # one undecodable byte
    for part in (1, 3, 10**6):
        pd.testing.assert_frame_equal(_joined(_read(data, block, part)), lp.read_raw_lines(data))


def test_an_empty_file_has_no_events() -> None:
    assert sum(len(frame) for frame in _read(b"")) == 0
    assert sum(len(frame) for frame in _read(b'{"events": []}')) == 0


def test_exports_one_after_another_are_all_read() -> None:
    first = {"logGroupName": "/aws/lambda/a", "events": [{"message": "a1"}, {"message": "a2"}]}
    second = [{"message": "b1", "logGroupName": "/aws/lambda/b"}]
    data = (json.dumps(first) + "\n" + json.dumps(second, indent=2) + "\n").encode()
    for block, part in ((1, 1), (5, 10**6)):
        frame = _joined(_read(data, block, part))
        assert frame["message"].tolist() == ["a1", "a2", "b1"]
        assert frame["log_group"].tolist() == ["/aws/lambda/a", "/aws/lambda/a", "/aws/lambda/b"]


def test_a_number_cut_by_a_block_is_read_whole() -> None:
    """`[{...}, 1` then `2]`: the event is the number 12 (refused as an event), not 1 followed by a stray 2."""
    kept, error = _broken(b'[{"message": "a"}, 12]', block=19)
    assert kept == ["a"]
    assert "Log event 1 (line 1, column 20) is a int" in error


CUT = b'{\n  "events": [\n    {"message": "m0", "timestamp": 1},\n    {"message": "m1", "timestamp": 2},\n'


@pytest.mark.parametrize(
    ("data", "kept", "error"),
    [
        pytest.param(
            CUT + b'    {"message": "m2", "times',
            ["m0", "m1"],
            r"f\.log is not a whole export: at line 5, column 29, the file ends inside log event 2; "
            r"2 events were read before it\.$",
            id="cut inside an event",
        ),
        pytest.param(
            CUT + b'    {"message": "m2", "timestamp": 3}',
            ["m0", "m1", "m2"],
            r"at line 5, column 38, the file ends inside the events list; 3 events were read before it\.$",
            id="cut after an event",
        ),
        pytest.param(
            CUT + b'    {"message": "m2", "timestamp": 3}]',
            ["m0", "m1", "m2"],
            r"at line 5, column 39, the file ends inside the export's keys",
            id="cut after the list",
        ),
        pytest.param(
            CUT[:-2] + b"]}\ngarbage",
            ["m0", "m1"],
            r"at line 5, column 1, expected another export or the end of the file, found 'g'",
            id="text after the export",
        ),
        pytest.param(
            CUT + b'    {"message": "m2" "x"}]}',
            ["m0", "m1"],
            r"at line 5, column 22, log event 2 is not JSON \(Expecting ',' delimiter\); "
            r"2 events were read before it",
            id="not JSON inside",
        ),
        pytest.param(
            CUT + b"    " + b"[" * 10_000 + b"]" * 10_000 + b"]}",
            ["m0", "m1"],
            r"at line 5, column 5, log event 2 nests deeper than Python's JSON decoder can follow",
            id="10,000-deep nest",
        ),
        pytest.param(
            CUT + b'    {"message": "m2", "timestamp": ' + b"[" * 10_000 + b"]" * 10_000 + b"}]}",
            ["m0", "m1"],
            r"log event 2 nests deeper",
            id="10,000-deep nest as a timestamp",
        ),
        pytest.param(
            CUT + b'    {"timestamp": 3}]}',
            ["m0", "m1"],
            r'^f\.log: Log event 2 \(line 5, column 5\) has no "message"\. 2 events were read before it\.$',
            id="no message",
        ),
        pytest.param(
            CUT + b"    7]}",
            ["m0", "m1"],
            r"Log event 2 \(line 5, column 5\) is a int, not an object",
            id="not an object",
        ),
        pytest.param(
            b'{"events": {"a": 1}}',
            [],
            r"at line 1, column 12, expected '\[' in the export's \"events\", found '\{'; "
            r"no events were read before it",
            id="events not a list",
        ),
        pytest.param(
            b'{"nextToken": "x"}',
            [],
            r'the export has no "events" list \(keys: nextToken\)',
            id="no events",
        ),
        pytest.param(
            b'{"events": [{"message": "m0"}], "logGroupName": "/aws/lambda/x"}',
            ["m0"],
            r'"logGroupName" comes after its "events" \(line 1, column 33\); put it first',
            id="group after the events",
        ),
    ],
)
@pytest.mark.parametrize("block", [1, 16, 1 << 20])
def test_a_broken_export_says_where_after_giving_the_events_before_it(
    data: bytes, kept: list[str], error: str, block: int
) -> None:
    found_kept, found_error = _broken(data, block)
    assert found_kept == kept
    assert re.search(error, found_error, flags=re.IGNORECASE), found_error


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param("Infinity", "inf", id="inf"),
        pytest.param("-Infinity", "-inf", id="-inf"),
        pytest.param("NaN", "nan", id="NaN"),
        pytest.param("1e30", "1e+30", id="1e30"),
        pytest.param("-1e30", "-1e+30", id="-1e30"),
        pytest.param("1e300", "1e+300", id="1e300"),
        pytest.param("9223372036855", "9223372036855", id="one past the last nanosecond time"),
        pytest.param("-9223372036855", "-9223372036855", id="one before the first"),
        pytest.param("-9223372036854775808", "-9223372036854775808", id="NaT's own value"),
        pytest.param("1" + "0" * 300, "1" + "0" * 23 + "…", id="a 301-digit number"),
    ],
)
@pytest.mark.parametrize("field", ["timestamp", "ingestionTime"])
def test_a_time_out_of_range_names_the_event(value: str, shown: str, field: str) -> None:
    data = f'{{"events": [{{"message": "ok", "{field}": 5}},\n  {{"message": "m", "{field}": {value}}}]}}'
    kept, error = _broken(data.encode())
    assert kept == ["ok"]
    assert error == (
        f"f.log: Log event 1 (line 2, column 3) has a {field} of {shown}; expected epoch milliseconds from "
        "-9223372036854 to 9223372036854 (the years 1677 to 2262). 1 event was read before it."
    )


@pytest.mark.parametrize(
    ("value", "type_name"),
    [('"1700000000000"', "str"), ("true", "bool"), ("false", "bool"), ("[1]", "list"), ('{"ms": 1}', "dict")],
)
def test_a_time_that_is_not_a_number_names_the_event(value: str, type_name: str) -> None:
    kept, error = _broken(f'[{{"message": "m", "timestamp": {value}}}]'.encode())
    assert kept == []
    assert error.startswith(f"f.log: Log event 0 (line 1, column 2) has a timestamp of type {type_name};")


@pytest.mark.parametrize("stamp", [-9223372036854, 9223372036854, 0, -1, 1756643696000.9])
def test_times_at_the_ends_of_the_range_are_read(stamp: float) -> None:
    frame = _joined(_read(json.dumps({"events": [{"message": "m", "timestamp": stamp}]}).encode()))
    assert frame["timestamp"].tolist() == [int(stamp)]
    assert lp.parse(frame)["ts"].notna().all()


def test_a_raw_line_may_be_as_long_as_the_bound_and_not_longer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "MAX_EVENT_SIZE", 10)
    ok = b"a\n" + b"x" * 10 + b"\nb"
    assert _joined(_read(ok, block=3, part=4))["message"].tolist() == ["a", "x" * 10, "b"]
    for block, part in ((3, 4), (100, 100)):  # cut across parts, or whole inside one part
        kept, error = _broken(b"a\n" + b"x" * 11 + b"\nb\n", block, part)
        assert kept == ["a"]
        assert error.startswith("f.log: line 2 is longer than 10 bytes; a log event is at most 1 MB")
        assert error.endswith("(1 event was read before it).")


def test_an_export_value_may_be_as_long_as_the_bound_and_not_longer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "MAX_EVENT_SIZE", 20)
    event = '{"message": "' + "x" * 7 + '"}'  # 22 characters: within the bound once the window holds it
    assert len(event) == 22
    kept, error = _broken(f'[{{"message": "a"}}, {event}]'.encode(), block=4)
    assert kept == ["a"]
    assert "log event 1 is longer than 20 bytes" in error
    short = '{"message": "' + "x" * 5 + '"}'
    assert (
        _joined(_read(f'[{{"message": "a"}}, {short}]'.encode(), block=4))["message"].tolist()[1] == "x" * 5
    )


def test_a_file_that_never_ends_a_line_is_refused() -> None:
    with Path("/dev/zero").open("rb") as zeros:
        blocks = iter(lambda: zeros.read(1 << 20), b"")
        with pytest.raises(ConfigurationError) as caught:
            for _ in reading.file_parts(blocks, "/dev/zero"):
                pass
    assert str(caught.value) == (
        "/dev/zero: line 1 is longer than 8 MiB; a log event is at most 1 MB, so this is not a file of log "
        "lines (no events were read before it)."
    )


def test_binary_junk_is_read_as_lines_and_marked_by_the_parse() -> None:
    junk = bytes(range(256)) * 4 + b"\n\x00\x01\x02"
    frame = _joined(_read(junk, block=100, part=300))
    pd.testing.assert_frame_equal(frame, lp.read_raw_lines(junk))
    parsed = lp.parse(frame)
    assert parsed["kind"].eq("unknown").all()
    assert parsed["parse_error"].str.contains("binary").all()
