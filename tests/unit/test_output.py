"""kit.output: a frame printed as a table, CSV or JSON, the same text whether written whole or in parts."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit import logparse as lp
from kit import output

DATA = Path(__file__).resolve().parents[1] / "data" / "logs"


def _written(form: output.Format, frames: list[pd.DataFrame]) -> str:
    buffer = io.StringIO()
    writer = output.FrameWriter(form, buffer)
    for frame in frames:
        writer.write(frame)
    writer.close()
    return buffer.getvalue()


def _in_parts(frame: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    return [frame.iloc[start : start + size] for start in range(0, len(frame), size)] or [frame]


def _before(frame: pd.DataFrame, form: str) -> str:
    """What `kit` printed before it wrote in parts (the code it had), as the reference."""
    if form == "json":
        records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        return json.dumps(records, indent=2, default=str) + "\n"
    if form == "csv":
        return frame.to_csv(index=False)
    if frame.empty:
        return "(nothing)\n"
    with pd.option_context("display.max_colwidth", 80, "display.width", 200):
        return frame.to_string(index=False) + "\n"


def _parsed_fixtures() -> pd.DataFrame:
    frames = [
        lp.parse(lp.read_raw_lines((DATA / name).read_bytes())) for name in ("python-text.log", "odd.log")
    ]
    frames.append(lp.parse(lp.read_export((DATA / "scenario-execution.json").read_bytes())))
    return pd.concat(frames, ignore_index=True)


ODD = pd.DataFrame(
    {
        "objects": pd.Series(
            [
                np.int64(3),
                np.float32(1.5),
                np.bool_(True),
                None,
                float("nan"),
                [1, {"a": [2]}],
                {"k": (1, 2)},
            ],
            dtype=object,
        ),
        "floats": pd.array([1.5, None, float("inf"), -float("inf"), 1e300, 0.1, -0.0], dtype="Float64"),
        "numpy": [np.nan, 1.0, 2.5, np.inf, 5, 6, 7],
        "ints": pd.array([1, None, 3, 4, 5, 6, 2**62], dtype="Int64"),
        "flags": pd.array([True, None, False, True, False, True, None], dtype="boolean"),
        "times": pd.to_datetime([0, None, 2, 3, 4, 5, 6], unit="s", utc=True),
        "text": ["é", 'a\nb\t"c"', "", None, "x" * 100, "\x00", "\u2028"],
        "surrogates": pd.Series(["\ud800", "ok", None, "a\udfff", "", "b", "c"], dtype=object),
        5: ["not a text key"] * 7,
        None: [None] * 7,
    }
)


@pytest.mark.parametrize("form", ["json", "table"])
@pytest.mark.parametrize("frame", [ODD, _parsed_fixtures()], ids=["odd values", "parsed fixtures"])
def test_a_frame_written_whole_is_what_kit_always_printed(form: output.Format, frame: pd.DataFrame) -> None:
    assert _written(form, [frame]) == _before(frame, form)


@pytest.mark.parametrize("frame", [ODD, _parsed_fixtures()], ids=["odd values", "parsed fixtures"])
def test_csv_is_what_kit_always_printed_but_each_time_at_its_own_precision(frame: pd.DataFrame) -> None:
    new = list(csv.reader(io.StringIO(_written("csv", [frame]))))
    old = list(csv.reader(io.StringIO(_before(frame, "csv"))))
    times = [i for i, dtype in enumerate(frame.dtypes) if pd.api.types.is_datetime64_any_dtype(dtype)]
    assert len(new) == len(old)
    for new_row, old_row in zip(new, old, strict=True):
        assert [c for i, c in enumerate(new_row) if i not in times] == [
            c for i, c in enumerate(old_row) if i not in times
        ]
    for i in times:  # the same instants; only a whole second among milliseconds loses its ".000"
        new_times = pd.to_datetime([row[i] or None for row in new[1:]], format="ISO8601")
        old_times = pd.to_datetime([row[i] or None for row in old[1:]], format="ISO8601")
        assert new_times.equals(old_times)


SECOND, MILLI = 1756643696000, 1756643696001


@pytest.mark.parametrize(
    ("values", "unit", "texts"),
    [
        pytest.param(
            [SECOND, SECOND + 1000], "ms", ["2025-08-31 12:34:56+00:00", "2025-08-31 12:34:57+00:00"], id="s"
        ),
        pytest.param(
            [MILLI, MILLI + 122],
            "ms",
            ["2025-08-31 12:34:56.001+00:00", "2025-08-31 12:34:56.123+00:00"],
            id="ms",
        ),
        pytest.param([MILLI * 1000 - 999], "us", ["2025-08-31 12:34:56.000001+00:00"], id="us"),
        pytest.param([MILLI * 10**6 - 999_999], "ns", ["2025-08-31 12:34:56.000000001+00:00"], id="ns"),
        pytest.param([-1500], "ms", ["1969-12-31 23:59:58.500+00:00"], id="before 1970"),
    ],
)
def test_times_that_need_one_precision_read_as_pandas_writes_them(
    values: list[int], unit: str, texts: list[str]
) -> None:
    column = pd.Series(pd.to_datetime([*values, None], unit=unit, utc=True))
    assert output.time_texts(column).tolist() == [*texts, None]
    assert _written("csv", [column.to_frame("t")]) == column.to_frame("t").to_csv(index=False)


@pytest.mark.parametrize(
    "column",
    [
        pd.Series(pd.to_datetime([MILLI, None], unit="ms", utc=True).tz_convert("Europe/Berlin")),
        pd.Series(pd.to_datetime([MILLI, SECOND], unit="ms")),
        pd.Series(pd.to_datetime(["2020-01-01", "2020-01-02"])),
    ],
    ids=["another zone", "naive", "naive dates"],
)
def test_times_not_in_utc_are_formatted_by_pandas_a_precision_at_a_time(column: pd.Series) -> None:
    for value, text in zip(column, output.time_texts(column), strict=True):
        expected = None if pd.isna(value) else pd.Series([value], dtype=column.dtype).astype(str).iloc[0]
        assert text == expected


def test_a_whole_second_among_milliseconds_is_written_the_same_in_any_part() -> None:
    column = pd.Series(pd.to_datetime([SECOND, MILLI], unit="ms", utc=True)).to_frame("ts")
    assert _written("csv", [column]) == _written("csv", [column.iloc[:1], column.iloc[1:]])
    assert _written("csv", [column]).splitlines() == [
        "ts",
        "2025-08-31 12:34:56+00:00",
        "2025-08-31 12:34:56.001+00:00",
    ]


@pytest.mark.parametrize("form", ["json", "csv", "table"])
@pytest.mark.parametrize("size", [1, 2, 5, 7, 1000])
def test_written_in_parts_is_written_whole(
    form: output.Format, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output, "TABLE_ROWS", 6)
    monkeypatch.setattr(output, "WRITE_ROWS", 4)
    frame = _parsed_fixtures()
    assert _written(form, _in_parts(frame, size)) == _written(form, [frame])


@pytest.mark.parametrize("form", ["json", "csv", "table"])
def test_nothing_to_write(form: output.Format) -> None:
    empty = lp.parse([])
    assert _written(form, [empty]) == _before(empty, form)
    assert _written(form, [empty, empty]) == _before(empty, form)


def test_a_table_is_aligned_in_blocks_each_under_its_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "TABLE_ROWS", 3)
    frame = pd.DataFrame({"n": [1, 22, 333, 4444, 5, 6, 7], "word": ["a", "bb", "c", "d", "eeeee", "f", "g"]})
    exactly = _written("table", [frame.iloc[:3]])
    assert exactly == _before(frame.iloc[:3], "table")  # a block's worth: one table, as before
    blocks = _written("table", [frame.iloc[:2], frame.iloc[2:6], frame.iloc[6:]]).split("\n\n")
    assert blocks == [
        _before(frame.iloc[0:3], "table").rstrip("\n"),
        _before(frame.iloc[3:6], "table").rstrip("\n"),
        _before(frame.iloc[6:7], "table"),
    ]


def test_repeated_column_names_keep_one_value_each_as_records_do() -> None:
    frame = pd.DataFrame([[1, 2, 3]], columns=["a", "b", "a"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns that to_dict drops the repeats
        assert _written("json", [frame]) == _before(frame, "json")
    assert json.loads(_written("json", [frame])) == [{"a": 3, "b": 2}]


# -- the terminal's table: what a person reads, fitted to the width (kit logs) --------------------------------


def test_a_fitted_table_is_left_aligned_empty_for_missing_and_cut_to_the_width() -> None:
    frame = pd.DataFrame(
        {
            "kind": pd.array(["start", "app"], dtype="string"),
            "request_id": pd.array(["r1", None], dtype="string"),
            "message": pd.array(["START RequestId: r1", "x" * 200 + "\nsecond line"], dtype="string"),
        }
    )
    text = output.fitted_table(frame, 60)
    lines = text.splitlines()
    assert lines[0].split() == ["kind", "request_id", "message"]
    assert all(len(line) <= 60 for line in lines)
    assert "<NA>" not in text and "nan" not in text
    assert lines[2].startswith("app  ") and lines[2].endswith(output.ELLIPSIS)
    assert lines[1].index("r1") == lines[0].index("request_id")  # left-aligned under its header
    assert len(lines) == 3  # a line break inside a message does not make a row


@pytest.mark.parametrize("width", [10, 30, 200])
def test_the_last_column_keeps_at_least_its_minimum(width: int) -> None:
    frame = pd.DataFrame({"kind": ["k"], "message": ["m" * 100]})
    last = output.fitted_table(frame, width).splitlines()[1]
    assert len(last) - len("k  ") >= min(100, max(width - 3, 20))


@pytest.mark.parametrize(
    ("asked", "chosen", "error"),
    [
        (None, None, ""),
        ("", None, ""),
        ("kind,message", ["kind", "message"], ""),
        (" message , kind ", ["message", "kind"], ""),
        ("kind,nope", None, "nope not among the columns; choose from kind, message, ts"),
        (",", None, "none given"),
    ],
)
def test_columns_are_chosen_by_name(asked: str | None, chosen: list[str] | None, error: str) -> None:
    from kit.errors import ConfigurationError

    if error:
        with pytest.raises(ConfigurationError, match=error):
            output.choose_columns(["kind", "message", "ts"], asked)
    else:
        assert output.choose_columns(["kind", "message", "ts"], asked) == chosen
