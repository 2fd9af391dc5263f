"""The parse's columns while they are filled, and how they become the frame's.

A value, once put, is kept (the first reading wins), as :mod:`kit.logparse.slow` keeps the first value it
finds. Text is held as Arrow pieces and the rows they belong to, numbers as NaN-padded float arrays made at
their first value, kinds and sources as small integers.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kit.logparse import patterns as p
from kit.logparse.columns import LOG_COLUMNS, MAX_EXACT_INT
from kit.logparse.vectorised import textbuffer as tb

RAW = ("log_group", "log_stream", "event_id", "message")
TIMES = ("ts", "ingest_ts", "lag_ms")
CODED = ("kind", "source")
NUMBER_COLUMNS = tuple(name for name in LOG_COLUMNS if name in p.NUMERIC_FIELDS)
TEXT_COLUMNS = tuple(
    name
    for name in LOG_COLUMNS
    if name not in RAW and name not in TIMES and name not in CODED and name not in p.NUMERIC_FIELDS
)

# Kinds and sources are held as small integers while parsing: comparing ints is what makes the masks cheap.
KIND = {name: code for code, name in enumerate(p.KINDS)}
SOURCE = {name: code for code, name in enumerate(p.SOURCES)}
UNSET = -1


def index_dtype(size: int) -> type[np.signedinteger[Any]]:
    """The narrowest integer that holds a row index of a frame of ``size`` rows (32 bits in practice)."""
    return np.int32 if size < 2**31 else np.int64


class TextColumn:
    """A text column filled piece by piece, held as Arrow: the pieces put, and for each row where its
    value is among them (-1: none yet; :func:`index_dtype`). No Python str per value; nothing at all until
    the first put."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pieces: list[pa.Array] = []
        self.count = 0
        self._where: np.ndarray | None = None

    @property
    def where(self) -> np.ndarray:
        if self._where is None:
            self._where = np.full(self.size, -1, dtype=index_dtype(self.size))
        return self._where

    def missing_anywhere(self) -> np.ndarray:
        """For every row, whether it has no value yet."""
        if self._where is None:
            return np.ones(self.size, dtype=bool)
        return np.asarray(self._where < 0)

    def missing(self, positions: np.ndarray) -> np.ndarray:
        if self._where is None:
            return np.ones(len(positions), dtype=bool)
        return np.asarray(self._where[positions] < 0)

    def put(self, positions: np.ndarray, values: Any) -> None:
        texts = as_arrow_text(values)
        keep = self.missing(positions) & tb.mask(pc.not_equal(texts, ""))  # an empty capture is no value
        if not keep.any():
            return
        piece = texts.filter(pa.array(keep))
        self.where[positions[keep]] = np.arange(self.count, self.count + len(piece), dtype=self.where.dtype)
        self.pieces.append(piece)
        self.count += len(piece)

    def values(self, positions: np.ndarray) -> np.ndarray:
        """The values at ``positions`` as Python objects (None where there is none)."""
        return np.asarray(self.array(positions).to_numpy(zero_copy_only=False), dtype=object)

    def array(self, positions: np.ndarray | None = None) -> pa.Array:
        where = self.where if positions is None else self.where[positions]
        if self.count == 0:
            return pa.nulls(len(where), pa.large_string())
        taken = pa.concat_arrays(self.pieces) if len(self.pieces) > 1 else self.pieces[0]
        self.pieces = [taken]
        return taken.take(pa.array(where, mask=where < 0))


class Columns:
    """The parsed columns being filled; a value, once set, is kept (the first reading wins)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.text = {name: TextColumn(size) for name in TEXT_COLUMNS}
        self.numbers: dict[str, np.ndarray | None] = dict.fromkeys(NUMBER_COLUMNS)  # made at the first put
        self.kind = np.full(size, UNSET, dtype=np.int8)
        self.source = np.full(size, UNSET, dtype=np.int8)

    def put(self, column: str, positions: np.ndarray, values: Any) -> None:
        if len(positions) == 0:
            return
        if column in self.numbers:
            numbers = as_float(values)
            found = ~np.isnan(numbers)
            if not found.any():
                return
            target = self.numbers[column]
            if target is None:
                target = self.numbers[column] = np.full(self.size, np.nan)
            keep = np.isnan(target[positions]) & found
            target[positions[keep]] = numbers[keep]
        elif column == "kind":
            self._put_code(self.kind, KIND, positions, values)
        else:
            self.text[column].put(positions, values)

    @staticmethod
    def _put_code(target: np.ndarray, codes: Mapping[str, int], positions: np.ndarray, values: Any) -> None:
        names = as_object(values)
        mapped = np.array([codes.get(name, UNSET) if isinstance(name, str) else UNSET for name in names])
        keep = (target[positions] == UNSET) & (mapped != UNSET)
        target[positions[keep]] = mapped[keep]

    def put_constant(self, column: str, positions: np.ndarray, value: object) -> None:
        self.put(column, positions, np.full(len(positions), value, dtype=object))

    def put_records(self, positions: np.ndarray, records: Sequence[Mapping[str, object]]) -> None:
        """Fill from one field dict per position (the JSON lines)."""
        if len(positions) == 0:
            return
        names: set[str] = set().union(*records)
        for name in names:
            if name in self.text or name in self.numbers or name == "kind":
                self.put(name, positions, [record.get(name) for record in records])

    def missing(self, column: str, positions: np.ndarray) -> np.ndarray:
        if column in self.numbers:
            target = self.numbers[column]
            empty = np.ones(len(positions), dtype=bool) if target is None else np.isnan(target[positions])
        else:
            empty = self.text[column].missing(positions)
        return np.compress(empty, positions)


def as_arrow_text(values: Any) -> pa.Array:
    if isinstance(values, pd.Series):
        return tb.arrow_text(values)
    if isinstance(values, pa.Array):
        return values.cast(pa.large_string())
    objects = values if isinstance(values, np.ndarray) else np.array(values, dtype=object)
    return pa.array(objects, type=pa.large_string(), from_pandas=True)


def as_object(values: Any) -> np.ndarray:
    if isinstance(values, pd.Series):
        return np.asarray(values.to_numpy(dtype=object, na_value=pd.NA))
    if isinstance(values, np.ndarray):
        return values.astype(object)
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


def as_float(values: Any) -> np.ndarray:
    objects = values.to_numpy(dtype=object, na_value=None) if isinstance(values, pd.Series) else values
    try:
        # C-level float() over the captures; None becomes NaN.
        return np.array(objects, dtype=np.float64)
    except (TypeError, ValueError):
        series = pd.Series(as_object(objects), dtype=object)
        return np.asarray(pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan))


def decode(codes: np.ndarray, names: Sequence[str]) -> Any:
    """Small-integer codes (-1: unset) as the names they stand for (NA for -1)."""
    indexes = np.where(codes < 0, len(names), codes)
    names_array = pa.array([*names, None], type=pa.large_string())
    return pd.array(names_array.take(pa.array(indexes)), dtype=pd.StringDtype("pyarrow"))


def number_array(values: np.ndarray | None, dtype: str, size: int) -> Any:
    """A working number column (NaN: no value; None: no value in any row) as the frame's masked array.

    The working array is consumed: its memory becomes the column's where the dtype allows.
    """
    if values is None:  # np.zeros takes pages the system has not handed out yet: nothing is written
        zeros = np.zeros(size, dtype=np.int64 if dtype == "Int64" else np.float64)
        everywhere = np.ones(size, dtype=bool)
        if dtype == "Int64":
            return pd.arrays.IntegerArray(zeros, everywhere)
        return pd.arrays.FloatingArray(zeros, everywhere)
    missing = np.isnan(values)
    if dtype == "Int64":
        np.round(values, out=values)
        with np.errstate(invalid="ignore"):
            missing |= ~(np.abs(values) < MAX_EXACT_INT)  # NaN compares False: already missing
        values[missing] = 0.0
        return pd.arrays.IntegerArray(values.astype(np.int64), missing)
    values[missing] = 0.0
    return pd.arrays.FloatingArray(values, missing)
