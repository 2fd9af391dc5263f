"""Application JSON lines read as one block by pyarrow's JSON reader, under the per-line rules.

The handler writes one JSON object per event; in a busy log that is a fifth of the lines, and decoding
them one at a time with :mod:`json` and walking their keys in Python was most of :func:`kit.logparse.parse`.
Here the messages are joined into newline-delimited JSON and read by Arrow's C++ reader, then the columns
:func:`kit.logparse.patterns.app_fields` would fill are taken whole from the table, key by key in the same
order of preference.

The per-line function stays the definition. A row is read here only where the block reading is known to
give the same answer; every other row is handed back to be read one at a time:

* a block Arrow will not read (a duplicated key, a value whose type changes between rows, trailing text
  after the object, a number too large for a double, a lone surrogate escape) is halved until the pieces
  read, down to :data:`SMALLEST_BLOCK` rows, below which its rows go back;
* a message with text after a line break (a trailing line break is fine), which is two rows (or an error)
  to a newline-delimited reader, so its block reads the wrong number of rows and is halved;
* a row whose ``message`` value is text containing ``{`` (the per-line rule may read an inner JSON
  document there);
* a row whose text column would come from a JSON number Arrow read as a double (``1`` in a column that
  also holds ``1.5`` is ``1.0`` to Arrow, ``"1"`` to the per-line rule), or from a type Arrow inferred
  that JSON does not have (timestamps, which Arrow infers from ISO-looking strings).

Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from kit.logparse import patterns as p

SMALLEST_BLOCK: Final = 32
"""A failing block this small or smaller is read one line at a time rather than halved again."""

_PARSE_OPTIONS: Final = pj.ParseOptions(newlines_in_values=False)


def _by_column(table: Mapping[str, tuple[str, int]]) -> dict[str, tuple[str, ...]]:
    """key → (column, rank) turned into column → keys, most preferred first."""
    keys: dict[str, list[tuple[int, str]]] = {}
    for key, (column, rank) in table.items():
        keys.setdefault(column, []).append((rank, key))
    return {column: tuple(key for _, key in sorted(ranked)) for column, ranked in keys.items()}


_APP: Final = _by_column(p.APP_KEYS)
_CONTEXT: Final = _by_column(p.EVENT_CONTEXT_KEYS)
COLUMNS: Final = tuple(_APP)
"""The columns this module fills: those of :func:`kit.logparse.patterns.app_fields`."""


@dataclass
class Block:
    """What the block reading gave for ``size`` messages.

    ``text`` columns hold ``str`` or None, ``numbers`` columns float or NaN; ``one_by_one`` marks the rows
    that were not read here and must go through the per-line rule (their values here are empty).
    """

    text: dict[str, np.ndarray]
    numbers: dict[str, np.ndarray]
    one_by_one: np.ndarray

    @classmethod
    def empty(cls, size: int) -> Block:
        text = {c: np.full(size, None, dtype=object) for c in COLUMNS if c not in p.NUMERIC_FIELDS}
        numbers = {c: np.full(size, np.nan) for c in COLUMNS if c in p.NUMERIC_FIELDS}
        return cls(text, numbers, np.zeros(size, dtype=bool))


def read_app_fields(messages: pa.Array | Sequence[str]) -> Block:
    """The :func:`~kit.logparse.patterns.app_fields` columns of each message (each one JSON object text)."""
    values = messages if isinstance(messages, pa.Array) else pa.array(list(messages), type=pa.large_string())
    block = Block.empty(len(values))
    if len(values) == 0:
        return block
    # A message with more after a line break is two lines to the reader: it reads more rows than messages,
    # or fails, and the halving below isolates it (each message starting with "{" gives a row or an error).
    for rows, table in _tables(values, np.arange(len(values)), block.one_by_one):
        _fill_from(table, rows, block)
    return block


def _tables(values: pa.Array, rows: np.ndarray, one_by_one: np.ndarray) -> list[tuple[np.ndarray, pa.Table]]:
    """The readable pieces of ``rows``, each with its table; rows of unreadable small pieces are marked."""
    pieces: list[tuple[np.ndarray, pa.Table]] = []
    pending = [rows]
    while pending:
        piece = pending.pop()
        if len(piece) == 0:
            continue
        whole = len(piece) == len(values)  # the first try, all rows in order: no copy
        table = _read(values if whole else values.take(pa.array(piece)))
        if table is not None:
            pieces.append((piece, table))
        elif len(piece) <= SMALLEST_BLOCK:
            one_by_one[piece] = True
        else:
            middle = len(piece) // 2
            pending.extend((piece[middle:], piece[:middle]))
    return pieces


def _read(texts: pa.Array) -> pa.Table | None:
    """``texts`` as newline-delimited JSON: each text and a line break, end to end in one buffer (the
    texts' own buffer when each already ends with a line break, as the Python runtime's lines do)."""
    lines = texts.cast(pa.large_binary())
    if not pc.all(pc.ends_with(texts, "\n")).as_py():
        lines = pc.binary_join_element_wise(
            lines, pa.scalar(b"\n", pa.large_binary()), pa.scalar(b"", pa.large_binary())
        )
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    offsets, data = np.frombuffer(lines.buffers()[1], dtype=np.int64), lines.buffers()[2]
    start, stop = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    try:
        table = pj.read_json(pa.BufferReader(data.slice(start, stop - start)), parse_options=_PARSE_OPTIONS)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return table if table.num_rows == len(texts) else None


def _fill_from(table: pa.Table, rows: np.ndarray, block: Block) -> None:
    fields = {name: table.column(name).combine_chunks() for name in table.column_names}
    one_by_one = np.zeros(len(rows), dtype=bool)
    message = fields.get("message")
    if message is not None and pa.types.is_string(message.type):
        one_by_one |= _true(pc.match_substring(message, "{"))
    sources: list[tuple[dict[str, pa.Array], dict[str, tuple[str, ...]]]] = [(fields, _APP)]
    context = fields.get("requestContext")
    if context is not None and pa.types.is_struct(context.type):
        children = context.flatten()  # each child with the parent's nulls
        named = {context.type.field(i).name: child for i, child in enumerate(children)}
        sources.append((named, _CONTEXT))
    for column in COLUMNS:
        numeric = column in p.NUMERIC_FIELDS
        found: np.ndarray = np.full(len(rows), np.nan) if numeric else np.full(len(rows), None, dtype=object)
        for source, keys_of in sources:
            for key in keys_of.get(column, ()):
                values = source.get(key)
                if values is None:
                    continue
                converted, unsure = _convert(values, numeric)
                one_by_one |= unsure
                empty = np.isnan(found) if numeric else _missing(found)
                take = empty & (~np.isnan(converted) if numeric else ~_missing(converted))
                found[take] = converted[take]
        if column == "level":
            found = _upper(found)
        target = block.numbers[column] if numeric else block.text[column]
        target[rows] = found
    block.one_by_one[rows[one_by_one]] = True
    for values in (*block.text.values(), *block.numbers.values()):
        values[rows[one_by_one]] = np.nan if values.dtype.kind == "f" else None


def _missing(values: np.ndarray) -> np.ndarray:
    return np.asarray(pd.isna(values), dtype=bool)


def _true(mask: pa.Array) -> np.ndarray:
    return np.asarray(mask.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _convert(values: pa.Array, numeric: bool) -> tuple[np.ndarray, np.ndarray]:
    """One key's values as the per-line rule converts them, and the rows where it might not agree."""
    kind = values.type
    size = len(values)
    none = np.zeros(size, dtype=bool)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        objects = values.to_numpy(zero_copy_only=False)
        if numeric:
            return np.array([_number(v) for v in objects], dtype=np.float64), none
        objects = objects.astype(object)
        objects[objects == ""] = None
        return objects, none
    if pa.types.is_integer(kind):
        if numeric:
            return _floats(values), none
        return pc.cast(values, pa.string()).to_numpy(zero_copy_only=False).astype(object), none
    if pa.types.is_floating(kind):
        if numeric:
            floats = _floats(values)
            floats[~np.isfinite(floats)] = np.nan
            return floats, none
        present = _true(pc.is_valid(values))
        return np.full(size, None, dtype=object), present  # str(float) of a JSON int: read it per line
    if (
        pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
        or pa.types.is_struct(kind)
        or pa.types.is_list(kind)
        or pa.types.is_large_list(kind)
    ):
        return (np.full(size, np.nan) if numeric else np.full(size, None, dtype=object)), none
    present = _true(pc.is_valid(values))  # a type JSON has not got (a timestamp Arrow inferred)
    return (np.full(size, np.nan) if numeric else np.full(size, None, dtype=object)), present


def _floats(values: pa.Array) -> np.ndarray:
    cast = pc.cast(values, pa.float64())
    return np.array(cast.to_numpy(zero_copy_only=False), dtype=np.float64)  # a copy: written to after


def _number(value: Any) -> float:
    number = p.number(value)
    return math.nan if number is None else number


def _upper(levels: np.ndarray) -> np.ndarray:
    present = ~_missing(levels)
    unique = {value: value.upper() for value in set(levels[present].tolist())}
    result = levels.copy()
    result[present] = [unique[value] for value in levels[present]]
    return result
