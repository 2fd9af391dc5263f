"""JSON lines read as one block by pyarrow's JSON reader, under the per-line rules.

The handler writes one JSON object per event; in a busy log that is a fifth of the lines, and decoding
them one at a time with :mod:`json` and walking their keys in Python was most of :func:`kit.logparse.parse`.
Here the messages are joined into newline-delimited JSON and read by Arrow's C++ reader, then the columns
:func:`kit.logparse.patterns.app_fields` would fill are taken whole from the table, key by key in the same
order of preference (:func:`read_app_fields`). Access-log lines go the same way under
:func:`kit.logparse.patterns.access_fields`' rules (:func:`read_access_fields`).

The per-line function stays the definition. A row is read here only where the block reading is known to
give the same answer; every other row is handed back to be read one at a time:

* a block Arrow will not read (a duplicated key, a value whose type changes between rows, trailing text
  after the object, a number too large for a double, a lone surrogate escape) is halved until the pieces
  read, down to :data:`SMALLEST_BLOCK` rows, below which its rows go back;
* a message with text after a line break (a trailing line break is fine), which is two rows (or an error)
  to a newline-delimited reader, so its block reads the wrong number of rows and is halved;
* a row whose ``message`` value is text containing ``{`` (the per-line rule may read an inner JSON
  document there);
* for access-log lines, a row :func:`~kit.logparse.patterns.json_role` might not call ``access`` (it asks
  whether keys are present, and an Arrow null may be a key that is absent or one that holds null);
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
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from kit.logparse import patterns as p
from kit.logparse.vectorised.textbuffer import mask

SMALLEST_BLOCK: Final = 32
"""A failing block this small or smaller is read one line at a time rather than halved again."""

_PARSE_OPTIONS: Final = pj.ParseOptions(newlines_in_values=False)


def _by_column(table: Mapping[str, tuple[str, int]]) -> dict[str, tuple[str, ...]]:
    """key → (column, rank) turned into column → keys, most preferred first."""
    keys: dict[str, list[tuple[int, str]]] = {}
    for key, (column, rank) in table.items():
        keys.setdefault(column, []).append((rank, key))
    return {column: tuple(key for _, key in sorted(ranked)) for column, ranked in keys.items()}


@dataclass(frozen=True)
class _Rules:
    """How one kind of JSON line becomes columns, as its per-line function reads it."""

    keys: dict[str, tuple[str, ...]]  # column -> keys, most preferred first
    context: dict[str, tuple[str, ...]]  # the same for the keys of a requestContext object (none: empty)
    inner_message: bool  # a "message" text may hold a JSON document of its own (read per line)
    skip: str | None  # a text that means "no value" ("-" in access logs)
    role_asked: bool  # json_role must certainly call the line ``access`` (it asks which keys are present)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.keys)


_APP_RULES: Final = _Rules(_by_column(p.APP_KEYS), _by_column(p.EVENT_CONTEXT_KEYS), True, None, False)
_ACCESS_RULES: Final = _Rules(_by_column(p.ACCESS_FIELD_KEYS), {}, False, p.ACCESS_MISSING, True)
COLUMNS: Final = _APP_RULES.columns
"""The columns :func:`read_app_fields` fills: those of :func:`kit.logparse.patterns.app_fields`."""


@dataclass
class Block:
    """What the block reading gave for ``size`` messages.

    ``text`` columns are Arrow strings (null: no value), ``numbers`` columns floats (NaN: no value);
    ``one_by_one`` marks the rows that were not read here and must go through the per-line rule (their
    values here are empty).
    """

    text: dict[str, pa.Array]
    numbers: dict[str, np.ndarray]
    one_by_one: np.ndarray


_TEXT: Final = pa.large_string()


def read_app_fields(messages: pa.Array | Sequence[str]) -> Block:
    """The :func:`~kit.logparse.patterns.app_fields` columns of each message (each one JSON object text)."""
    return _read_block(messages, _APP_RULES)


def read_access_fields(messages: pa.Array | Sequence[str]) -> Block:
    """The :func:`~kit.logparse.patterns.access_fields` columns of each whole-event JSON line that
    :func:`~kit.logparse.patterns.json_role` certainly calls ``access``; every other row is one by one.

    ``json_role`` asks whether keys are present, and Arrow reads an absent key and a null alike: a row is
    certain only where no key it asks about is null.
    """
    return _read_block(messages, _ACCESS_RULES)


def _read_block(messages: pa.Array | Sequence[str], rules: _Rules) -> Block:
    values = messages if isinstance(messages, pa.Array) else pa.array(list(messages), type=_TEXT)
    size = len(values)
    text_columns = tuple(c for c in rules.columns if c not in p.NUMERIC_FIELDS)
    one_by_one = np.zeros(size, dtype=bool)
    numbers = {column: np.full(size, np.nan) for column in rules.columns if column in p.NUMERIC_FIELDS}
    pieces: dict[str, list[tuple[int, pa.Array]]] = {column: [] for column in text_columns}
    # A message with more after a line break is two lines to the reader: it reads more rows than messages,
    # or fails, and the halving below isolates it (each message starting with "{" gives a row or an error).
    # Halving a range gives ranges, so each readable piece is rows[start:stop].
    for rows, table in _tables(values, np.arange(size), one_by_one):
        start = int(rows[0]) if len(rows) else 0
        text, piece_numbers, unsure = _read_piece(table, rules)
        one_by_one[rows[unsure]] = True
        for column, found in piece_numbers.items():
            found[unsure] = np.nan
            numbers[column][rows] = found
        blank = pa.array(unsure) if unsure.any() else None
        for column, found in text.items():
            kept = found if blank is None else pc.if_else(blank, pa.scalar(None, _TEXT), found)
            pieces[column].append((start, kept))
    return Block({column: _assemble(pieces[column], size) for column in text_columns}, numbers, one_by_one)


def _assemble(pieces: list[tuple[int, pa.Array]], size: int) -> pa.Array:
    """Pieces that start at the given rows, nulls between them, as one array of ``size`` rows."""
    parts: list[pa.Array] = []
    at = 0
    for start, piece in sorted(pieces, key=lambda item: item[0]):
        if start > at:
            parts.append(pa.nulls(start - at, _TEXT))
        parts.append(piece)
        at = start + len(piece)
    if at < size or not parts:
        parts.append(pa.nulls(size - at, _TEXT))
    return pa.concat_arrays(parts) if len(parts) != 1 else parts[0]


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


def _read_piece(
    table: pa.Table, rules: _Rules
) -> tuple[dict[str, pa.Array], dict[str, np.ndarray], np.ndarray]:
    """One table's text and number columns, and the rows the per-line rule must read instead."""
    size = table.num_rows
    fields = {name: table.column(name).combine_chunks() for name in table.column_names}
    unsure = np.zeros(size, dtype=bool)
    message = fields.get("message")
    if rules.inner_message and message is not None and pa.types.is_string(message.type):
        unsure |= mask(pc.match_substring(message, "{"))
    if rules.role_asked:
        unsure |= ~_certainly_access(fields, size)
    sources: list[tuple[dict[str, pa.Array], dict[str, tuple[str, ...]]]] = [(fields, rules.keys)]
    context = fields.get("requestContext")
    if rules.context and context is not None and pa.types.is_struct(context.type):
        children = context.flatten()  # each child with the parent's nulls
        named = {context.type.field(i).name: child for i, child in enumerate(children)}
        sources.append((named, rules.context))
    text: dict[str, pa.Array] = {}
    numbers: dict[str, np.ndarray] = {}
    for column in rules.columns:
        numeric = column in p.NUMERIC_FIELDS
        # The keys in order of preference, the message's own keys before its requestContext's: the first
        # one with a value wins.
        found_numbers = np.full(size, np.nan)
        candidates: list[pa.Array] = []
        for source, keys_of in sources:
            for key in keys_of.get(column, ()):
                values = source.get(key)
                if values is None:
                    continue
                if numeric:
                    converted, doubt = _as_number(values)
                    empty = np.isnan(found_numbers)
                    found_numbers[empty] = converted[empty]
                else:
                    texts, doubt = _as_text(values, rules.skip)
                    candidates.append(texts)
                unsure |= doubt
        if numeric:
            numbers[column] = found_numbers
            continue
        if len(candidates) > 1:
            found = pc.coalesce(*candidates)
        else:
            found = candidates[0] if candidates else pa.nulls(size, _TEXT)
        text[column] = _upper(found) if column == "level" else found
    return text, numbers, unsure


def _certainly_access(fields: dict[str, pa.Array], size: int) -> np.ndarray:
    """Rows :func:`~kit.logparse.patterns.json_role` calls ``access`` whatever Arrow's nulls stand for.

    ``json_role`` looks first for a ``type`` text starting ``platform.``, then for the presence of
    ``log_level``, then of ``level``, then of any of :data:`~kit.logparse.patterns.ACCESS_KEYS`. Arrow reads a
    key that is absent and a key that holds null alike (null), so: where ``log_level`` or ``level`` is a
    column at all, no row is certain (present, the row is not access; null, it may or may not be); and a row
    is certainly access only where one of the access keys holds a value.
    """
    if "log_level" in fields or "level" in fields:
        return np.zeros(size, dtype=bool)
    certain = np.zeros(size, dtype=bool)
    for key in p.ACCESS_KEYS:
        if key in fields:
            certain |= mask(pc.is_valid(fields[key]))
    record_type = fields.get("type")
    if record_type is not None and (
        pa.types.is_string(record_type.type) or pa.types.is_large_string(record_type.type)
    ):
        certain &= ~mask(pc.starts_with(record_type, "platform."))
    return certain


_PLAIN_TYPES: Final = (
    pa.types.is_boolean,
    pa.types.is_null,
    pa.types.is_struct,
    pa.types.is_list,
    pa.types.is_large_list,
)
"""JSON values that are no text and no number to the per-line rule: true/false, null, objects, arrays."""


def _as_text(values: pa.Array, skip: str | None) -> tuple[pa.Array, np.ndarray]:
    """One key's values as the per-line rule reads them into a text column, and the rows it might not."""
    kind = values.type
    size = len(values)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        texts = values.cast(_TEXT)
        empty = pc.equal(texts, "")
        if skip is not None:
            empty = pc.or_(empty, pc.equal(texts, skip))
        if pc.any(empty).as_py():
            texts = pc.if_else(empty, pa.scalar(None, _TEXT), texts)
        return texts, np.zeros(size, dtype=bool)
    if pa.types.is_integer(kind):
        return pc.cast(values, _TEXT), np.zeros(size, dtype=bool)  # str(int), as Python writes it
    if any(test(kind) for test in _PLAIN_TYPES):
        return pa.nulls(size, _TEXT), np.zeros(size, dtype=bool)
    # A double (str(float) of a JSON int such as 1 is "1" to Python, 1.0 to Arrow) or a type JSON has not
    # got (a timestamp Arrow inferred): read per line.
    return pa.nulls(size, _TEXT), mask(pc.is_valid(values))


def _as_number(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """One key's values as the per-line rule reads them into a number column, and the rows it might not."""
    kind = values.type
    size = len(values)
    none = np.zeros(size, dtype=bool)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return np.array([_number(v) for v in values.to_pylist()], dtype=np.float64), none
    if pa.types.is_integer(kind):
        return _floats(values), none
    if pa.types.is_floating(kind):
        floats = _floats(values)
        floats[~np.isfinite(floats)] = np.nan
        return floats, none
    if any(test(kind) for test in _PLAIN_TYPES):
        return np.full(size, np.nan), none
    return np.full(size, np.nan), mask(pc.is_valid(values))


def _floats(values: pa.Array) -> np.ndarray:
    # Unchecked: an integer past 2**53 rounds to the nearest double, as Python's float() rounds it (a checked
    # cast raises on it instead).
    cast = pc.cast(values, pa.float64(), safe=False)
    return np.array(cast.to_numpy(zero_copy_only=False), dtype=np.float64)  # a copy: written to after


def _number(value: Any) -> float:
    number = p.number(value)
    return math.nan if number is None else number


def _upper(levels: pa.Array) -> pa.Array:
    """Each level in capitals, by Python's str.upper (Arrow's differs on a few letters such as ß)."""
    distinct = pc.unique(levels).drop_null()
    if len(distinct) == 0:
        return levels
    upper = pa.array([value.upper() for value in distinct.to_pylist()], type=_TEXT)
    return upper.take(pc.index_in(levels, value_set=distinct))
