"""Reads of the messages' buffer (chunks, offsets, prefixes, places, in-place comparisons, texts copied out
of byte ranges), number columns, and the REPORT lines read at their tabs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit.logparse import patterns
from kit.logparse.vectorised import building, textbuffer
from kit.logparse.vectorised import parser as vectorised


def _offsets(lengths: list[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


@pytest.mark.parametrize(
    ("lengths", "rows", "max_rows", "max_bytes", "expected"),
    [
        pytest.param([5, 5, 5], [], 10, 100, [], id="no rows"),
        pytest.param([5, 5, 5], [0, 1, 2], 10, 100, [[0, 1, 2]], id="all fit"),
        pytest.param([5, 5, 5], [0, 1, 2], 2, 100, [[0, 1], [2]], id="row limit"),
        pytest.param([5, 5, 5, 5], [0, 1, 2, 3], 10, 10, [[0, 1], [2, 3]], id="byte limit, exact"),
        pytest.param([5, 5, 5], [0, 1, 2], 10, 9, [[0], [1], [2]], id="byte limit below two lines"),
        pytest.param([50, 1, 1], [0, 1, 2], 10, 10, [[0], [1, 2]], id="a long line is a chunk alone"),
        pytest.param([1, 50, 1], [0, 1, 2], 10, 10, [[0], [1], [2]], id="a long line in the middle"),
        pytest.param([0, 0, 0], [0, 1, 2], 2, 10, [[0, 1], [2]], id="empty or null texts"),
        pytest.param([9, 100, 9, 100, 9], [0, 2, 4], 10, 20, [[0, 2], [4]], id="rows left out weigh nothing"),
    ],
)
def test_chunks(
    monkeypatch: pytest.MonkeyPatch,
    lengths: list[int],
    rows: list[int],
    max_rows: int,
    max_bytes: int,
    expected: list[list[int]],
) -> None:
    monkeypatch.setattr(textbuffer, "CHUNK_ROWS", max_rows)
    monkeypatch.setattr(textbuffer, "CHUNK_BYTES", max_bytes)
    chunks = list(textbuffer.chunks(np.array(rows, dtype=np.int64), _offsets(lengths)))
    assert [chunk.tolist() for chunk in chunks] == expected


@pytest.mark.parametrize("texts", [["ab", None, "c\u00e9"], [None, None], []])
@pytest.mark.parametrize("large", [True, False])
def test_offsets_are_the_arrays_own(texts: list[str | None], large: bool) -> None:
    values = pa.array([*texts, "tail"], type=pa.large_string() if large else pa.string()).slice(0, len(texts))
    offsets = textbuffer.utf8_offsets(values)
    lengths = [len((text or "").encode()) for text in texts]
    assert np.diff(offsets).tolist() == lengths
    assert offsets.dtype == np.int64


@pytest.mark.parametrize(
    ("values", "dtype", "expected"),
    [
        pytest.param(None, "Float64", [None, None, None], id="no value at all"),
        pytest.param(None, "Int64", [None, None, None], id="no value at all, integers"),
        pytest.param(np.array([1.5, np.nan, 2.0]), "Float64", [1.5, None, 2.0], id="floats"),
        pytest.param(np.array([1.4, np.nan, 2.6]), "Int64", [1, None, 3], id="integers rounded"),
        pytest.param(
            np.array([2.0**60, np.inf, -1.0]), "Int64", [None, None, -1], id="beyond exact integers"
        ),
    ],
)
def test_number_columns(values: np.ndarray | None, dtype: str, expected: list[object]) -> None:
    column = building.number_array(None if values is None else values.copy(), dtype, 3)
    assert str(column.dtype) == dtype
    assert [None if value is pd.NA else value for value in column.tolist()] == expected


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.none() | st.text(alphabet="aZ0 \t\u00e9\U0001f600", max_size=40), max_size=12),
    st.integers(0, 3),
    st.data(),
)
def test_prefix_bytes_are_each_texts_first_bytes(
    texts: list[str | None], cut: int, data: st.DataObject
) -> None:
    values = pa.array(texts, type=pa.large_string()).slice(min(cut, len(texts)))
    kept = texts[min(cut, len(texts)) :]
    rows = sorted(data.draw(st.sets(st.integers(0, max(len(kept) - 1, 0)), max_size=len(kept))))
    rows = [row for row in rows if row < len(kept)]
    matrix = textbuffer.prefix_bytes(values, np.array(rows, dtype=np.int64))
    window = patterns.PREFIX_WINDOW
    expected = [((kept[row] or "").encode()[:window]).ljust(window, b"\0") for row in rows]
    assert [bytes(line) for line in matrix] == expected


_TEXT = st.text(alphabet="ab\t{}\u00e9\U0001f600", max_size=30)


@settings(max_examples=150, deadline=None)
@given(st.lists(_TEXT, min_size=1, max_size=10), st.data())
def test_texts_in_ranges_copies_each_range_out_of_the_buffer(texts: list[str], data: st.DataObject) -> None:
    """Ranges at character edges, short ones (kept in the view) and long ones (pointing into the buffer)."""
    values = pa.array(texts, type=pa.large_string())
    offsets = textbuffer.utf8_offsets(values)
    buffer = values.buffers()[2]
    raw = np.frombuffer(buffer, dtype=np.uint8) if buffer is not None else np.zeros(0, dtype=np.uint8)
    starts, stops, expected = [], [], []
    for row, text in enumerate(texts):
        cut = sorted(data.draw(st.lists(st.integers(0, len(text)), min_size=2, max_size=2)))
        before = len(text[: cut[0]].encode())
        starts.append(int(offsets[row]) + before)
        stops.append(int(offsets[row]) + before + len(text[cut[0] : cut[1]].encode()))
        expected.append(text[cut[0] : cut[1]])
    if buffer is None:
        return
    copied = textbuffer.texts_in_ranges(buffer, raw, np.array(starts), np.array(stops))
    assert copied is not None
    assert copied.type == pa.large_string()
    assert copied.to_pylist() == expected


@pytest.mark.parametrize(
    ("texts", "count", "expected"),
    [
        pytest.param(["a\tb\tc", "\t\t"], 2, [[1, 3], [5, 6]], id="both rows have two"),
        pytest.param(["a\tb", "c\td\te"], 2, [[1, -1], [4, 6]], id="a row with fewer"),
        pytest.param(["abc", "\t"], 1, [[-1], [3]], id="none in a row, the next row's is not its"),
        pytest.param(["", "\t"], 1, [[-1], [0]], id="an empty row"),
    ],
)
def test_nth_places(texts: list[str], count: int, expected: list[list[int]]) -> None:
    values = pa.array(texts, type=pa.large_string())
    offsets = textbuffer.utf8_offsets(values)
    raw = np.frombuffer(values.buffers()[2], dtype=np.uint8)
    rows = np.arange(len(texts))
    tabs = np.flatnonzero(raw == ord("\t"))
    found = textbuffer.nth_places(tabs, offsets[rows], offsets[rows + 1], count)
    assert found.tolist() == expected


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=40), st.binary(min_size=1, max_size=20), st.data())
def test_equals_at_compares_in_place(data: bytes, literal: bytes, draw: st.DataObject) -> None:
    """Eight bytes at a time, and byte by byte in the buffer's last words."""
    if len(data) < len(literal):
        return
    raw = np.frombuffer(data, dtype=np.uint8)
    places = np.array(
        draw.draw(st.lists(st.integers(0, len(data) - len(literal)), max_size=8)), dtype=np.int64
    )
    found = textbuffer.equals_at(raw, textbuffer.word_view(raw), places, literal)
    assert found.tolist() == [data[at : at + len(literal)] == literal for at in places.tolist()]


@st.composite
def _report_lines(draw: st.DrawFn) -> str:
    """A REPORT as Lambda writes it, or one changed in one place (so both sides of the shape are drawn)."""
    good_number = st.sampled_from(["7", "7.95", "0.5", "1024"])
    fields = [
        f"REPORT RequestId: {draw(st.sampled_from(['8f507cfc-1a2b-4697-b07a-ac58fc914c95', 'r1', '~!']))}",
        f"Duration: {draw(good_number)} ms",
        f"Billed Duration: {draw(good_number)} ms",
        f"Memory Size: {draw(st.sampled_from(['128', '3008']))} MB",
        f"Max Memory Used: {draw(st.sampled_from(['78', '1']))} MB",
    ]
    if draw(st.booleans()):
        fields.append(f"Init Duration: {draw(good_number)} ms")
    tail = draw(st.sampled_from(["\t", "\t\n", "\t\n\n"]))
    line = "\t".join(fields) + tail
    change = draw(st.sampled_from(["none", "none", "field", "separator", "tail", "cut"]))
    if change == "field":
        index = draw(st.integers(0, len(fields) - 1))
        old, new = draw(
            st.sampled_from(
                [
                    ("RequestId: ", "RequestId:  "),
                    ("RequestId: ", "RequestId:"),
                    ("7", "12."),
                    ("7", ".5"),
                    ("7", "1e3"),
                    ("7", "-1"),
                    ("7", "\u0967"),
                    ("7", ""),
                    ("128", "1.5"),
                    ("MB", "ms"),
                    ("Init", "Restore"),
                    ("r1", "a b"),
                    ("r1", "\u00e9"),
                    ("r1", ""),
                ]
            )
        )
        fields[index] = fields[index].replace(old, new, 1)
        line = "\t".join(fields) + tail
    elif change == "separator":
        line = line.replace("\t", " ", 1)
    elif change == "tail":
        line = line.removesuffix(tail) + draw(
            st.sampled_from(["", "\n", "\t\n\n\n", "\tStatus: timeout\t", "\t\r"])
        )
    elif change == "cut":
        line = line[: draw(st.integers(0, len(line) - 1))]
    return line


@settings(max_examples=200, deadline=None)
@given(st.lists(_report_lines(), min_size=1, max_size=8))
def test_report_lines_read_in_place_are_those_of_lambdas_shape(lines: list[str]) -> None:
    """The fast path reads exactly the lines REPORT_AS_LAMBDA_WRITES matches, and reads them as it does."""
    from kit import logparse as lp

    events = lp.events_frame([{"message": line, "logGroupName": "/aws/lambda/f"} for line in lines])
    parser = vectorised._Parser(events)
    rows = np.arange(len(lines))
    low, high = int(parser.offsets[0]), int(parser.offsets[-1])
    parser.tabs = np.flatnonzero(parser.data[low:high] == ord("\t")) + low
    left = parser._report_as_written(rows)
    shaped = [patterns.REPORT_AS_LAMBDA_WRITES.match(line) is not None for line in lines]
    assert [row not in left for row in rows.tolist()] == shaped
    read = [row for row in rows.tolist() if shaped[row]]
    for row in read:
        core = patterns.REPORT_CORE.match(lines[row])
        assert core is not None
        assert parser.out.text["request_id"].values(np.array([row]))[0] == core.group(1)
        assert parser.out.numbers["duration_ms"] is not None
        assert parser.out.numbers["duration_ms"][row] == float(core.group(2))
        assert parser.out.numbers["max_mem_mb"] is not None
        assert parser.out.numbers["max_mem_mb"][row] == float(core.group(5))
