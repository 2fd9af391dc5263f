"""kit.logparse.streaming: a parse a part at a time gives the whole parse, across every cut between parts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from kit import logparse as lp
from kit.errors import ConfigurationError
from kit.logparse import reading, streaming

PROJECT_ROOT = Path(__file__).resolve().parents[2]

DATA = PROJECT_ROOT / "tests" / "data" / "logs"
LAMBDA = "/aws/lambda/chatgenius-websocket"


def _parse_in_parts(
    data: bytes, part: int, *, can_reread: bool = True
) -> tuple[pd.DataFrame, streaming.PartsParse]:
    def read() -> Iterator[pd.DataFrame]:
        return reading.file_parts([data[i : i + 5] for i in range(0, len(data), 5)], "f", part)

    parts = streaming.PartsParse(read, can_reread=can_reread)
    frames = list(parts)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0], parts


def _whole(data: bytes) -> pd.DataFrame:
    return lp.parse(lp.read_export(data) if reading.is_export(data) else lp.read_raw_lines(data))


@pytest.mark.parametrize(
    "name", ["python-text.log", "node-text.log", "lambda-json.log", "odd.log", "scenario-lambda.json"]
)
@pytest.mark.parametrize("part", [1, 100, 10**6])
def test_the_fixtures_in_parts_are_parsed_as_whole(name: str, part: int) -> None:
    data = (DATA / name).read_bytes()
    parsed, parts = _parse_in_parts(data, part)
    pd.testing.assert_frame_equal(parsed, _whole(data))
    assert parts.out_of_order == 0


def _invocations(count: int, *, export: bool) -> bytes:
    """Four Lambda streams running at once, their lines interleaved: START, a print (no request id of its
    own), the handler's line, END, REPORT, and a print after END that belongs to no invocation. Times rise,
    as CloudWatch returns them."""
    events = []
    for first in range(0, count, 4):
        lines = [_invocation_lines(number) for number in range(first, min(first + 4, count))]
        for step in range(len(lines[0])):
            for number, invocation in enumerate(lines, start=first):
                stream = f"2025/08/31/[$LATEST]{number % 4}"
                message = invocation[step]
                events.append(
                    {
                        "logGroupName": LAMBDA,
                        "logStreamName": stream,
                        "timestamp": len(events),
                        "message": message,
                    }
                )
    if export:
        return json.dumps({"events": events}, indent=1).encode()
    return b"".join(event["message"].encode() + b"\n" for event in events)


def _invocation_lines(number: int) -> list[str]:
    rid = f"rid-{number:04d}"
    return [
        f"START RequestId: {rid} Version: $LATEST",
        f"print of invocation {number}",
        f"[INFO]\t2025-08-31T12:34:56.789Z\t{rid}\tstored",
        f"END RequestId: {rid}",
        f"REPORT RequestId: {rid}\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 70 MB\t",
        "print between invocations",
    ]


@pytest.mark.parametrize("export", [False, True], ids=["raw lines", "export"])
@pytest.mark.parametrize("part", [400, 10**7])
def test_request_ids_are_carried_across_cuts_in_each_stream(export: bool, part: int) -> None:
    data = _invocations(16, export=export)
    parts = streaming.PartsParse(lambda: reading.file_parts([data], "f", part))
    frames = list(parts)
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), _whole(data))
    assert parts.out_of_order == 0 and not parts.read_twice
    # Prints that took their invocation's id from a START in an earlier part: what the carrying is for.
    across = 0
    for frame in frames:
        prints = frame["message"].str.startswith("print of invocation")
        starts = set(frame.loc[frame["kind"].eq("start"), "request_id"])
        across += sum(rid not in starts for rid in frame.loc[prints, "request_id"])
        assert frame.loc[prints, "request_id"].notna().all()
        assert frame.loc[frame["message"].eq("print between invocations"), "request_id"].isna().all()
    assert across > (5 if part < 1000 else -1) and (across == 0) is (part > len(data))


PRINTS_FIRST = (
    b"hello from the handler\n"
    b"An error occurred (AccessDeniedException) when calling the PutItem operation: denied\n"
) * 20 + b"START RequestId: r1 Version: $LATEST\nin r1\nEND RequestId: r1\n"
"""Plain prints (Lambda's only by their stream) long before the first Lambda-shaped line of the stream."""


@pytest.mark.parametrize("part", [1, 50, 1000])
def test_lines_claimed_only_by_a_later_lambda_line_are_read_ahead_for(part: int) -> None:
    parsed, parts = _parse_in_parts(PRINTS_FIRST, part)
    whole = _whole(PRINTS_FIRST)
    pd.testing.assert_frame_equal(parsed, whole)
    assert whole["kind"].iloc[:40].eq("app").all()  # Lambda output, with the error text read from them
    assert whole["app_error_code"].iloc[1] == "AccessDeniedException"
    assert parts.read_twice is (part < len(PRINTS_FIRST))  # one part is the whole: nothing to look ahead for
    assert parts.unsettled == 0


def test_a_pipe_is_not_read_twice_and_says_how_many_lines_may_differ() -> None:
    parsed, parts = _parse_in_parts(PRINTS_FIRST, 50, can_reread=False)
    assert not parts.read_twice
    assert parts.unsettled == 40
    assert parsed["kind"].iloc[:40].eq("unknown").all()
    assert parsed["kind"].iloc[40:].tolist() == ["start", "app", "end"]


def test_a_file_without_lambda_lines_is_read_twice_at_most_once() -> None:
    calls = []
    data = b"not a log line\n" * 30

    def read() -> Iterator[pd.DataFrame]:
        calls.append(1)
        return reading.file_parts([data], "f", 16)

    parts = streaming.PartsParse(read)
    parsed = pd.concat(list(parts), ignore_index=True)
    pd.testing.assert_frame_equal(parsed, _whole(data))
    assert len(calls) == 2 and parts.read_twice


def test_a_stream_out_of_time_order_across_a_cut_is_counted() -> None:
    events = [
        {
            "logGroupName": LAMBDA,
            "logStreamName": "s",
            "timestamp": 10,
            "message": "START RequestId: r1 Version: 1",
        },
        {"logGroupName": LAMBDA, "logStreamName": "s", "timestamp": 30, "message": "END RequestId: r1"},
        {"logGroupName": LAMBDA, "logStreamName": "s", "timestamp": 20, "message": "printed inside r1"},
    ]
    data = json.dumps({"events": events}).encode()
    whole = _whole(data)
    assert whole["request_id"].tolist() == ["r1", "r1", "r1"]  # by time, the print is inside r1
    in_one, one = _parse_in_parts(data, 10**6)
    pd.testing.assert_frame_equal(in_one, whole)
    assert one.out_of_order == 0
    in_parts, cut = _parse_in_parts(data, 1)
    assert cut.out_of_order == 1  # said, not hidden: the print came after END in file order
    assert in_parts["request_id"].fillna("-").tolist() == ["r1", "r1", "-"]


def test_an_empty_input_is_one_empty_frame_with_the_columns() -> None:
    frames = list(streaming.PartsParse(lambda: iter([])))
    assert len(frames) == 1 and len(frames[0]) == 0
    assert list(frames[0].columns) == list(lp.LOG_COLUMNS)


def test_a_break_ends_the_parse_after_the_parts_before_it_and_the_read_ahead_stops_there() -> None:
    data = b'{"events": [{"message": "just a print"}, {"message": "another"}, {"message": "START Req'
    parts = streaming.PartsParse(lambda: reading.file_parts([data], "f", 1))
    got: list[str] = []
    with pytest.raises(ConfigurationError, match="ends inside log event 2; 2 events were read before it"):
        for frame in parts:
            got += frame["message"].tolist()
    assert got == ["just a print", "another"]
    assert parts.read_twice  # the prints waited for a Lambda line; the read ahead met the break and stopped
