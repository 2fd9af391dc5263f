"""Reads of an Arrow text array's UTF-8 buffer, with no Python string per text.

The vectorised parser (:mod:`kit.logparse.vectorised.parser`) finds where things are in its messages' one
buffer (tabs, labels, literals, the first bytes of each line) with NumPy, and copies out only the pieces it
keeps. The ranges it reads are byte ranges; they hold whole UTF-8 characters because every place they are
cut at is an ASCII byte (a tab, the end of an ASCII label), and UTF-8 never has an ASCII byte inside a
character.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kit.logparse.patterns import PREFIX_WINDOW

CHUNK_ROWS = 1 << 17
CHUNK_BYTES = 1 << 24
"""Lines read at a time by the line-by-line passes: at most :data:`CHUNK_ROWS` lines and :data:`CHUNK_BYTES`
of their text (a single longer line is a chunk of its own). What Arrow copies for a pass (the subset of
messages, the pieces a pattern captures) is at most that much, and the next chunk reuses that memory, so a
million lines do not hold several copies of their text at once. (Arrow's take and filter can hold twice
what they return while they build it.) The pool gives memory back to the system after each stage, not
after each chunk: memory given back costs page faults when it is taken again."""


def chunks(rows: np.ndarray, offsets: np.ndarray) -> Iterator[np.ndarray]:
    """``rows`` (ascending) a chunk at a time; ``offsets`` are the messages' UTF-8 offsets (n + 1)."""
    if len(rows) == 0:
        return
    ends = np.cumsum(offsets[rows + 1] - offsets[rows])  # the text up to and with each row, in bytes
    start = 0
    while start < len(rows):
        before = int(ends[start - 1]) if start else 0
        stop = int(np.searchsorted(ends, before + CHUNK_BYTES, side="right"))
        stop = min(max(stop, start + 1), start + CHUNK_ROWS)
        yield rows[start:stop]
        start = stop


def utf8_offsets(texts: pa.Array) -> np.ndarray:
    """The UTF-8 offsets of a string array (n + 1 of them), as a view of its own buffer."""
    width = np.int64 if pa.types.is_large_string(texts.type) else np.int32
    buffer = texts.buffers()[1]
    if buffer is None:  # no offsets buffer: every text is null
        return np.zeros(len(texts) + 1, dtype=np.int64)
    offsets = np.frombuffer(buffer, dtype=width)[texts.offset : texts.offset + len(texts) + 1]
    return offsets.astype(np.int64, copy=False)


def nth_places(places: np.ndarray, starts: np.ndarray, stops: np.ndarray, count: int) -> np.ndarray:
    """The first ``count`` of ``places`` (ascending) inside each range ``[start, stop)``, one row per range;
    -1 where a range holds fewer."""
    found = np.full((len(starts), count), -1, dtype=np.int64)
    if len(starts) == 0 or len(places) == 0:
        return found
    first = np.searchsorted(places, starts)
    for nth in range(count):
        at = first + nth
        inside = at < len(places)
        place = np.where(inside, places[np.minimum(at, len(places) - 1)], -1)
        found[:, nth] = np.where(inside & (place < stops), place, -1)
    return found


def equals_at(data: np.ndarray, words: np.ndarray, places: np.ndarray, literal: bytes) -> np.ndarray:
    """Whether ``data[place : place + len(literal)] == literal`` for each place (the caller knows the range
    is inside the buffer), compared eight bytes at a time through ``words``: the little-endian uint64 that
    starts at each byte of ``data``."""
    equal = np.ones(len(places), dtype=bool)
    near_end = places > len(words) - 1 - len(literal)  # the last words of the buffer: byte by byte
    far = np.flatnonzero(~near_end)
    for step in range(0, len(literal), 8) if len(far) else ():
        piece = literal[step : step + 8]
        expected = np.uint64(int.from_bytes(piece, "little"))
        got = words[places[far] + step]
        if len(piece) < 8:
            got = got & np.uint64((1 << (8 * len(piece))) - 1)
        equal[far] &= got == expected
    for row in np.flatnonzero(near_end).tolist():
        place = int(places[row])
        equal[row] = data[place : place + len(literal)].tobytes() == literal
    return equal


def word_view(data: np.ndarray) -> np.ndarray:
    """The little-endian uint64 starting at each byte of ``data`` (overlapping; a view, no copy)."""
    count = max(len(data) - 7, 0)
    return np.ndarray(shape=(count,), dtype="<u8", buffer=data, offset=0, strides=(1,))


def bytes_at(data: np.ndarray, places: np.ndarray, width: int, lengths: np.ndarray) -> np.ndarray:
    """``data[place : place + min(width, length)]`` for each place, 0-padded to ``width`` columns."""
    matrix = np.zeros((len(places), width), dtype=np.uint8)
    for column in range(width):
        rows = np.flatnonzero(lengths > column)
        if len(rows) == 0:
            break
        matrix[rows, column] = data[places[rows] + column]
    return matrix


VIEW_LIMIT = 2**31 - 1  # a string view's offset into its buffer is a signed 32-bit number


def texts_in_ranges(
    buffer: pa.Buffer, data: np.ndarray, starts: np.ndarray, stops: np.ndarray
) -> pa.Array | None:
    """The UTF-8 texts ``buffer[start:stop]`` as one ``large_string`` array, in one copy.

    The ranges become a ``string_view`` array over ``buffer`` (no copy) that Arrow then casts; ``data`` is
    ``buffer`` as bytes. Each range must hold whole UTF-8 characters. None where the buffer is beyond what a
    view can reach, or this Arrow cannot cast views: the caller reads those rows another way.
    """
    if len(data) > VIEW_LIMIT:
        return None
    lengths = (stops - starts).astype(np.int32)
    views = np.zeros((len(starts), 16), dtype=np.uint8)  # Arrow's view layout, in native byte order
    views.view(np.int32)[:, 0] = lengths
    inline = lengths <= 12  # short texts live in the view itself, the rest point into the buffer
    if inline.any():
        views[inline, 4:16] = bytes_at(data, starts[inline], 12, lengths[inline])
    if not inline.all():
        views[~inline, 4:8] = bytes_at(data, starts[~inline], 4, lengths[~inline])
        views.view(np.int32)[~inline, 3] = starts[~inline]  # buffer index (column 2) stays 0
    try:
        array = pa.Array.from_buffers(pa.string_view(), len(starts), [None, pa.py_buffer(views), buffer])
        return array.cast(pa.large_string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An Arrow boolean array as a NumPy mask; null is False."""
    return np.asarray(values.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


class Haystack:
    """Which texts contain a literal, found by searching the texts' one UTF-8 buffer.

    A literal's UTF-8 bytes occur inside a text's bytes exactly when the literal occurs in the text (UTF-8
    never starts a character inside another), so this is ``str.contains(literal, regex=False)``. The buffer
    is copied once into ``bytes``, whose ``find`` skips ahead by the literal's length where it can: a rare
    literal (the usual case: an error wording) costs one pass over the buffer, faster than copying it, and
    a step per occurrence. Every occurrence is found, overlapping ones too; those that run from one text
    into the next are no text's. A literal found in very many places goes to Arrow's per-text search.
    """

    FREQUENT = 2.0
    """Occurrences per text beyond which Arrow's per-text search is cheaper than a step per occurrence."""

    def __init__(self, values: pa.Array) -> None:
        texts = values.cast(pa.large_string())
        self.texts = texts
        self.size = len(texts)
        offsets = texts.buffers()[1]
        data = texts.buffers()[2]
        bounds = np.frombuffer(offsets, dtype=np.int64)[texts.offset : texts.offset + self.size + 1]
        base = int(bounds[0]) if self.size else 0
        self.ends = bounds[1:] - base  # where each text ends in ``blob``
        stop = int(bounds[-1]) if self.size else 0
        self.blob = data.slice(base, stop - base).to_pybytes() if data is not None else b""
        self.valid = mask(pc.is_valid(texts))

    def rows_with(self, literal: str) -> np.ndarray:
        found = np.zeros(self.size, dtype=bool)
        needle = literal.encode("utf-8")
        if not needle or not self.blob:
            found[:] = bool(not needle)
            empty: np.ndarray = found & self.valid
            return empty
        limit = int(self.FREQUENT * self.size) + 1
        find = self.blob.find
        starts: list[int] = []
        at = find(needle)
        while at >= 0:
            starts.append(at)
            if len(starts) == limit:  # Arrow's per-text search is cheaper than a step per occurrence
                return mask(pc.match_substring(self.texts, literal))
            at = find(needle, at + 1)
        if not starts:
            return found
        places = np.array(starts, dtype=np.int64)
        rows = np.searchsorted(self.ends, places, side="right")  # < size: every place is inside the blob
        inside = places + len(needle) <= self.ends[rows]
        found[rows[inside]] = True
        result: np.ndarray = found & self.valid
        return result

    def rows_with_any(self, literals: Sequence[str]) -> np.ndarray:
        found = np.zeros(self.size, dtype=bool)
        for literal in literals:
            found |= self.rows_with(literal)
        return found


def prefix_bytes(values: pa.Array, rows: np.ndarray) -> np.ndarray:
    """The first :data:`PREFIX_WINDOW` bytes (UTF-8) of the texts at ``rows`` as a (rows, window) uint8
    matrix, 0-padded; a null text is all 0.

    Read straight from the texts' buffer (each row a window of it: one copy of ``window`` bytes per row, no
    Python string); every prefix test after it is an array comparison. Bytes stand in for characters
    because every token and the ISO time are ASCII: up to the first non-ASCII character, byte and character
    positions agree, and a byte of a multi-byte character (0x80 and up) equals no ASCII token byte.
    """
    window = PREFIX_WINDOW
    texts = values.cast(pa.large_string())
    offsets = utf8_offsets(texts)
    starts = offsets[rows]
    lengths = np.minimum(offsets[rows + 1] - starts, window)
    if texts.null_count:
        lengths[~mask(pc.is_valid(texts))[rows]] = 0
    matrix = np.zeros((len(rows), window), dtype=np.uint8)
    buffer = texts.buffers()[2]
    data = np.frombuffer(buffer, dtype=np.uint8) if buffer is not None else np.zeros(0, dtype=np.uint8)
    usable = starts <= len(data) - window  # a whole window of the buffer starts here
    if usable.any():
        matrix[usable] = np.lib.stride_tricks.sliding_window_view(data, window)[starts[usable]]
    for row in np.flatnonzero(~usable & (lengths > 0)).tolist():  # the last few texts of the buffer
        matrix[row, : lengths[row]] = data[starts[row] : starts[row] + lengths[row]]
    short = np.flatnonzero(lengths < window)  # what the window took beyond the text is not the text's
    if len(short):
        beyond = np.arange(window) >= lengths[short, None]
        matrix[short] = np.where(beyond, 0, matrix[short])
    return matrix


def arrow_text(texts: pd.Series) -> pa.Array:
    """A text Series as one Arrow (large) string array: no copy when it is already Arrow, in one chunk."""
    values = pa.array(texts.array) if isinstance(texts.dtype, pd.StringDtype) else pa.array(texts.tolist())
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return (
        values
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
        else values.cast(pa.large_string())
    )
