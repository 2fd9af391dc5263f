"""How ``kit`` prints a frame: a readable table, CSV or JSON, written a frame at a time.

Every command prints its frames through :class:`FrameWriter`; ``kit logs parse`` hands it a file's parse a
part at a time, so a big file's output is never built as one string. Writing a frame in parts gives the
same text as writing it whole:

* ``table``: blocks of :data:`TABLE_ROWS` rows, each aligned on its own by pandas (columns at most 80
  characters wide) under its own header, a blank line between blocks; ``(nothing)`` when there are no
  rows. A frame of at most that many rows prints as one table, as it always has. (A stream cannot be
  aligned as a whole: its widths are not known until its end.)
* ``csv``: the header once, then the rows; each time at the precision it needs (:func:`time_texts`).
* ``json``: one array of records written a record at a time, the text ``json.dumps(records, indent=2,
  default=str)`` gives (missing values are ``null``, times their ``str``); values are encoded a column at a
  time, so a big frame costs a few microseconds a row, not the encoder's tens.

Must not: hold more than the frame it is given and one block of the table.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal, TextIO

import numpy as np
import pandas as pd

Format = Literal["table", "csv", "json"]


def show_progress(progress: bool) -> bool:
    """Whether a progress bar is drawn: asked for, and stderr is a terminal (never in a report or a pipe)."""
    stream = sys.stderr
    return progress and hasattr(stream, "isatty") and stream.isatty()


TABLE_ROWS: Final = 1000
"""Rows aligned together in a table; pandas takes ~75 µs a row to align, so a block is quick to show."""

WRITE_ROWS: Final = 4096
"""Rows turned into CSV or JSON text at a time: their text and Python values are all that is held."""

_ROW_START = "{\n    "
_FIELD_SEPARATOR = ",\n    "
_ROW_END = "\n  }"
_NESTED_INDENT = "\n    "  # a list or dict value sits two levels deep (array, record)
_encode_text = json.encoder.encode_basestring_ascii  # what json.dumps uses, with its ensure_ascii default


# What a person reads of a log line in a terminal table (``kit logs``); the rest: --columns, --json, --csv.
LOG_VIEW: Final = ("kind", "ts", "request_id", "connection_id", "route_key", "http_status", "message")
_WIDTH_CAPS: Final = {"ts": 32, "request_id": 36, "connection_id": 16, "route_key": 16, "kind": 14}
_CAP: Final = 24  # any other column but the last
_LAST_MIN: Final = 20  # the last column (the message) gets what is left, at least this
ELLIPSIS: Final = "…"


def choose_columns(frame_columns: list[str], asked: str | None) -> list[str] | None:
    """``--columns a,b``: those columns, in that order (a ConfigurationError naming the valid ones if one is
    not there); None when not asked."""
    if not asked:
        return None
    from kit.errors import ConfigurationError

    chosen = [name.strip() for name in asked.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in frame_columns]
    if unknown or not chosen:
        raise ConfigurationError(
            f"--columns: {', '.join(unknown) or 'none given'} not among the columns; choose from "
            f"{', '.join(frame_columns)}."
        )
    return chosen


def _display(value: Any) -> str:
    if value is None or (not isinstance(value, (list, dict)) and pd.isna(value)):
        return ""
    return " ".join(str(value).split())  # line breaks and tabs as single spaces: one row a line


def fitted_table(frame: pd.DataFrame, width: int, *, header: bool = True) -> str:
    """``frame`` as a left-aligned text table at most ``width`` characters wide (pure): empty cells empty, a
    value too long for its column cut with an ellipsis, the last column given what is left."""
    shown = _times_as_text(frame)
    names = [str(c) for c in shown.columns]
    cells = [[_display(v) for v in shown[c].tolist()] for c in shown.columns]
    widths = [
        min(max([len(n), *(len(v) for v in column)]), _WIDTH_CAPS.get(n, _CAP))
        for n, column in zip(names, cells, strict=True)
    ]
    if widths:
        used = sum(widths[:-1]) + 2 * (len(widths) - 1)
        longest = max([len(names[-1]), *(len(v) for v in cells[-1])])
        widths[-1] = max(min(longest, width - used), _LAST_MIN)

    def fit(text: str, size: int) -> str:
        return text.ljust(size) if len(text) <= size else text[: max(size - 1, 0)] + ELLIPSIS

    rows = [names] if header else []
    rows += [list(row) for row in zip(*cells, strict=True)] if cells else []
    return "\n".join("  ".join(fit(v, w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows)


@dataclass(frozen=True)
class View:
    """Which columns a writer writes (None: all), and a table fitted to ``width`` characters (None: pandas'
    alignment), leaving out, when ``drop_empty``, the columns a block has no value in."""

    columns: list[str] | None = None
    width: int | None = None
    drop_empty: bool = False


class FrameWriter:
    """Writes frames to ``out`` as one output; :meth:`close` ends it (and must be called, error or not).

    ``view`` (:class:`View`): only its columns, in that order, whatever the format; a table fitted to its
    width (:func:`fitted_table`) instead of pandas' alignment."""

    def __init__(self, form: Format, out: TextIO, view: View | None = None) -> None:
        self.form = form
        self.out = out
        view = view or View()
        self.columns = view.columns
        self.width = view.width
        self.drop_empty = view.drop_empty
        self.rows = 0
        self._started = False
        self._waiting: list[pd.DataFrame] = []  # table rows short of a block
        self._waiting_rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        if self.columns is not None:
            frame = frame[self.columns]
        if self.form == "csv":
            for start in range(0, max(len(frame), 1), WRITE_ROWS):
                rows = _times_as_text(frame.iloc[start : start + WRITE_ROWS])
                self.out.write(rows.to_csv(index=False, header=not self._started))
                self._started = True
        elif self.form == "json":
            for start in range(0, len(frame), WRITE_ROWS):
                for record in json_records(frame.iloc[start : start + WRITE_ROWS]):
                    self.out.write(",\n  " if self._started else "[\n  ")
                    self.out.write(record)
                    self._started = True
        elif len(frame):
            self._waiting.append(frame)
            self._waiting_rows += len(frame)
            if self._waiting_rows >= TABLE_ROWS:
                self._table(final=False)
        self.rows += len(frame)

    def close(self) -> None:
        if self.form == "json":
            self.out.write("\n]\n" if self._started else "[]\n")
        elif self.form == "table":
            self._table(final=True)
            if not self._started:
                self.out.write("(nothing)\n")
        self.out.flush()

    def _table(self, *, final: bool) -> None:
        if not self._waiting:
            return
        rows = pd.concat(self._waiting, ignore_index=True) if len(self._waiting) > 1 else self._waiting[0]
        whole = len(rows) if final else len(rows) - len(rows) % TABLE_ROWS
        for start in range(0, whole, TABLE_ROWS):
            block = rows.iloc[start : start + TABLE_ROWS]
            if self.width is not None:
                if self.drop_empty:
                    kept = [c for c in block.columns if c in ("kind", "message") or block[c].notna().any()]
                    block = block[kept]
                text = fitted_table(block, self.width)
            else:
                with pd.option_context("display.max_colwidth", 80, "display.width", 200):
                    text = block.to_string(index=False)
            self.out.write(("\n" if self._started else "") + text + "\n")
            self._started = True
        rest = rows.iloc[whole:]
        self._waiting = [rest] if len(rest) else []
        self._waiting_rows = len(rest)


def print_frame(frame: pd.DataFrame, form: Format, out: TextIO, view: View | None = None) -> None:
    """One frame, whole."""
    writer = FrameWriter(form, out, view)
    writer.write(frame)
    writer.close()


def _times_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its time columns as text, each time at its own precision (see :func:`time_texts`)."""
    times = [index for index, dtype in enumerate(frame.dtypes) if pd.api.types.is_datetime64_any_dtype(dtype)]
    if not times:
        return frame
    frame = frame.copy(deep=False)
    for index in times:
        frame.isetitem(index, time_texts(frame.iloc[:, index]))
    return frame


_FRACTIONS: Final[tuple[tuple[int, Literal["s", "ms", "us", "ns"]], ...]] = (
    (1_000_000_000, "s"),
    (1_000_000, "ms"),
    (1_000, "us"),
    (1, "ns"),
)


def time_texts(column: pd.Series) -> pd.Series:
    """Times as CSV writes them (``2025-08-31 12:34:56.789+00:00``), each at the precision it needs: whole
    seconds, milliseconds, microseconds or nanoseconds; missing ones empty.

    pandas picks one precision for a whole column, from all its values, so a column written a part at a
    time would change its look from part to part (``12:34:56+00:00`` in one part, ``12:34:56.000+00:00``
    in the next). A column whose times all need the same precision reads as pandas writes it.
    """
    utc = str(getattr(column.dtype, "tz", None)) == "UTC"
    stamps = column.to_numpy(dtype="datetime64[ns]")  # UTC (or naive) wall times
    texts = np.full(len(stamps), None, dtype=object)
    fraction = stamps.view(np.int64) % 1_000_000_000
    left = ~np.isnat(stamps)
    for step, unit in _FRACTIONS:
        these = left & (fraction % step == 0)
        if not these.any():
            continue
        left &= ~these
        if utc:  # the kit's own times: formatted by NumPy, as pandas would, at a tenth of its cost
            written = np.char.replace(np.datetime_as_string(stamps[these], unit=unit), "T", " ")
            texts[these] = np.char.add(written, "+00:00")
        else:  # naive or another zone: pandas formats the times that need this precision
            texts[these] = column[these].astype(str).to_numpy(dtype=object)
    return pd.Series(texts, index=column.index, dtype=object)


def json_records(frame: pd.DataFrame) -> Iterator[str]:
    """Each row of ``frame`` as the text of one record inside a ``json.dumps(..., indent=2)`` array."""
    if len(frame) == 0:
        return
    if len(frame.columns) == 0:
        yield from ("{}" for _ in range(len(frame)))
        return
    prefixes = [f"{_key(name)}: " for name in frame.columns]
    columns = [_cells(_values(frame.iloc[:, index])) for index in range(len(frame.columns))]
    if not frame.columns.is_unique:  # records keep one value per name: the last, where the first stood
        last = {name: index for index, name in enumerate(frame.columns)}
        firsts = list(dict.fromkeys(frame.columns))
        prefixes = [f"{_key(name)}: " for name in firsts]
        columns = [columns[last[name]] for name in firsts]
    for cells in zip(*columns, strict=True):
        yield _ROW_START + _FIELD_SEPARATOR.join(map(str.__add__, prefixes, cells)) + _ROW_END


def _values(column: pd.Series) -> list[Any]:
    """A column's values as ``to_dict(orient="records")`` gives them after ``astype(object)`` and missing
    values set to None: Python numbers, text, times as Timestamps."""
    objects = column.astype(object).where(column.notna(), None)
    if column.dtype == object:  # it may hold NumPy scalars, which to_dict makes Python ones
        values: list[Any] = pd.DataFrame({0: objects}).to_dict(orient="list")[0]
        return values
    plain: list[Any] = objects.tolist()
    return plain


def _key(name: object) -> str:
    """A record key as json.dumps writes it (keys that are not text become text as it makes them)."""
    written = json.dumps({name: None})
    return written[1 : -len(": null}")]


def _cells(values: list[Any]) -> list[str]:
    return [_cell(value) for value in values]


def _cell(value: Any) -> str:
    if value is None:
        return "null"
    kind = type(value)
    if kind is str:
        return str(_encode_text(value))
    if kind is int:
        return int.__repr__(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is float:
        return json.dumps(value)
    # Anything else (a time, a list, a dict) through the encoder itself, indented to where it sits.
    return json.dumps(value, indent=2, default=str).replace("\n", _NESTED_INDENT)
