"""The ways into kit.logparse: boto3 event dicts, an `aws logs filter-log-events` export, raw log lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kit import logparse as lp
from kit.errors import ConfigurationError
from kit.logparse import events as events_module

DATA = Path(__file__).resolve().parents[1] / "data" / "logs"
LAMBDA = "/aws/lambda/chatgenius-websocket"


def test_events_frame_from_filter_log_events_page() -> None:
    page = {
        "events": [
            {
                "logStreamName": "2025/08/31/[$LATEST]abc",
                "timestamp": 1756643696000,
                "message": "START RequestId: r1 Version: $LATEST\n",
                "ingestionTime": 1756643697000,
                "eventId": "3800000000000",
            },
            {"logStreamName": "s2", "timestamp": 1756643696001, "message": "x", "logGroupName": "/other"},
        ]
    }
    frame = lp.events_frame(page["events"], log_group=LAMBDA)
    expected = pd.DataFrame(
        {
            "log_group": [LAMBDA, "/other"],
            "log_stream": ["2025/08/31/[$LATEST]abc", "s2"],
            "event_id": ["3800000000000", None],
            "timestamp": [1756643696000, 1756643696001],
            "ingestion_time": [1756643697000, None],
            "message": ["START RequestId: r1 Version: $LATEST\n", "x"],
        }
    ).astype(dict(lp.RAW_EVENT_COLUMNS))
    pd.testing.assert_frame_equal(frame, expected)


def test_events_frame_from_get_log_events_page_has_no_stream_or_id() -> None:
    frame = lp.events_frame([{"timestamp": 1, "message": "m", "ingestionTime": 2}], log_group=LAMBDA)
    assert frame.loc[0, "log_group"] == LAMBDA
    assert pd.isna(frame.loc[0, "log_stream"])
    assert pd.isna(frame.loc[0, "event_id"])


def test_events_frame_empty() -> None:
    frame = lp.events_frame([])
    assert len(frame) == 0
    assert dict(frame.dtypes.astype(str)) == dict(lp.RAW_EVENT_COLUMNS)


def test_events_frame_in_chunks_is_the_same_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    events = [
        {
            "logGroupName": LAMBDA if i % 3 else None,
            "timestamp": i or None,
            "message": f"line {i}",
            "eventId": i,
        }
        for i in range(10)
    ]
    whole = lp.events_frame(events)
    monkeypatch.setattr(events_module, "EVENTS_CHUNK", 3)
    chunked = lp.events_frame(iter(events))  # consumed as it comes
    pd.testing.assert_frame_equal(chunked, whole)
    for name in lp.RAW_EVENT_COLUMNS:
        arrow = getattr(chunked[name].array, "_pa_array", None)
        assert arrow is None or arrow.num_chunks == 1, name  # the parser reads one buffer per column


@pytest.mark.parametrize("chunk", [1, 2, 5])
def test_events_frame_in_chunks_names_the_bad_event_by_its_place(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(events_module, "EVENTS_CHUNK", chunk)
    events: list[Any] = [{"message": "m", "timestamp": 1}] * 6 + [{"message": 3}]
    with pytest.raises(ConfigurationError, match=r"^Log event 6 has a message of type int"):
        lp.events_frame(events)


@pytest.mark.parametrize(
    ("events", "message"),
    [
        pytest.param(["START"], "Log event 0 is a str", id="not an object"),
        pytest.param([{"message": 3, "timestamp": 1}], "message of type int", id="message not text"),
        pytest.param(
            [{"message": "m", "timestamp": "1700000000000"}], "timestamp of type str", id="timestamp text"
        ),
        pytest.param([{"message": "m", "timestamp": True}], "timestamp of type bool", id="timestamp bool"),
    ],
)
def test_events_frame_rejects_malformed_events(events: list[Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        lp.events_frame(events)
    assert "\n" not in str(caught.value)


def test_read_export_object_and_list() -> None:
    events = [{"logStreamName": "s", "timestamp": 1, "message": "hello", "ingestionTime": 2, "eventId": "e"}]
    from_object = lp.read_export(json.dumps({"events": events, "searchedLogStreams": []}), log_group=LAMBDA)
    from_list = lp.read_export(json.dumps(events).encode(), log_group=LAMBDA)
    pd.testing.assert_frame_equal(from_object, from_list)
    assert from_object.loc[0, "message"] == "hello"


def test_read_export_of_the_fixture() -> None:
    frame = lp.read_export((DATA / "scenario-lambda.json").read_text(), log_group=LAMBDA)
    assert len(frame) == 19
    assert frame["timestamp"].is_monotonic_increasing
    assert frame["log_group"].eq(LAMBDA).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "not JSON", id="empty"),
        pytest.param("START RequestId: x", "not JSON", id="raw lines"),
        pytest.param('{"events": [', "not JSON", id="cut"),
        pytest.param('{"nextToken": "x"}', 'no "events" list', id="no events key"),
        pytest.param('{"events": {"a": 1}}', "is a dict, not a list", id="events not a list"),
        pytest.param('"just a string"', "is a str, not a list", id="a JSON string"),
        pytest.param('{"events": [1]}', "Log event 0 is a int", id="event not an object"),
        pytest.param(
            '{"events": [{"timestamp": 1}]}', 'Log event 0 of the export has no "message"', id="no message"
        ),
        pytest.param(
            '{"events": [{"message": null, "timestamp": "x"}]}', "timestamp of type str", id="bad time"
        ),
    ],
)
def test_read_export_rejects_bad_input_in_one_line(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        lp.read_export(text)
    assert "\n" not in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_read_raw_lines_splits_on_newlines_only() -> None:
    text = (
        "START RequestId: r1 Version: $LATEST\r\n[ERROR] E: m\rTraceback (most recent call last):\r\n\nlast"
    )
    frame = lp.read_raw_lines(text, log_group=LAMBDA, log_stream="s")
    assert frame["message"].tolist() == [
        "START RequestId: r1 Version: $LATEST",
        "[ERROR] E: m\rTraceback (most recent call last):",
        "",
        "last",
    ]
    assert frame["timestamp"].isna().all()
    assert frame["log_stream"].eq("s").all()
    parsed = lp.parse(frame)
    assert parsed["ts"].isna().all()
    assert parsed["kind"].tolist() == ["start", "error", "unknown", "app"]


def test_read_raw_lines_trailing_newline_adds_no_event() -> None:
    assert len(lp.read_raw_lines("a\nb\n")) == 2
    assert len(lp.read_raw_lines("a\nb")) == 2
    assert len(lp.read_raw_lines("\n")) == 1


def test_read_raw_lines_of_undecodable_bytes() -> None:
    frame = lp.read_raw_lines(b"ok line\n\xff\xfe\x00junk\n", log_group=LAMBDA)
    parsed = lp.parse(frame)
    assert parsed["kind"].tolist() == ["app", "unknown"]
    assert parsed.loc[1, "parse_error"] == "message contains binary or undecodable data"


def test_read_raw_lines_rejects_other_types() -> None:
    with pytest.raises(ConfigurationError, match="must be text"):
        lp.read_raw_lines(["a list"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "group", "rows"),
    [
        ("python-text.log", LAMBDA, 14),
        ("node-text.log", LAMBDA, 8),
        ("lambda-json.log", LAMBDA, 9),
        ("execution.log", "API-Gateway-Execution-Logs_a1b2c3d4e5/prod", 13),
        ("access.log", "/aws/apigateway/chatgenius-websocket-access", 6),
        ("odd.log", LAMBDA, 12),
    ],
)
def test_fixture_files_parse_with_every_row_kept(name: str, group: str, rows: int) -> None:
    frame = lp.read_raw_lines((DATA / name).read_bytes(), log_group=group, log_stream=name)
    parsed = lp.parse(frame)
    assert len(parsed) == rows
    pd.testing.assert_frame_equal(parsed, lp.parse_lines_slow(frame))
    expected = json.loads((DATA / "expected-kinds.json").read_text())[name]
    assert parsed["kind"].tolist() == expected


@pytest.mark.parametrize(
    "stamp",
    [
        float("inf"),
        float("-inf"),
        float("nan"),
        1e30,
        -1e30,
        1e300,
        2**63,
        -(2**63),
        9223372036855,
        -9223372036855,
    ],
)
def test_events_frame_refuses_a_time_no_frame_can_hold(stamp: float) -> None:
    """Beyond the nanosecond range pandas raised deep inside the parse (OverflowError, OutOfBoundsDatetime),
    and -2**63 became NaT without a word."""
    with pytest.raises(
        ConfigurationError, match=r"^Log event 1 has a timestamp of .*; expected epoch milliseconds from"
    ) as caught:
        lp.events_frame([{"message": "ok", "timestamp": 1}, {"message": "m", "timestamp": stamp}])
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("stamp", [-9223372036854, 9223372036854])
def test_events_frame_keeps_the_first_and_last_time_a_frame_can_hold(stamp: int) -> None:
    parsed = lp.parse(lp.events_frame([{"message": "m", "timestamp": stamp, "ingestionTime": stamp}]))
    assert parsed["ts"].iloc[0] == pd.Timestamp(stamp, unit="ms", tz="UTC")
    assert parsed["lag_ms"].iloc[0] == 0
