"""The vectorised parser: the raw event frame in, the normalised log frame (:data:`LOG_COLUMNS`) out.

How a line is read, in passes over whole columns rather than a call per line:

1. the first bytes of every line (at most :data:`~kit.logparse.patterns.PREFIX_WINDOW`) become a
   NumPy byte matrix, and array comparisons sort lines into categories (START, REPORT, a Python
   runtime line, JSON...), the job :data:`~kit.logparse.patterns.LINE_PREFIX` does for one line;
2. each category's subset is read with its own pattern through ``pyarrow.compute.extract_regex`` (RE2, as
   :mod:`~kit.logparse.vectorised.re2` translates it), or, for lines in the exact shape Lambda writes
   (REPORT, the Python runtime's ``[LEVEL]\\t…``), at their tabs, found in the messages' one buffer: fields
   checked in place and each value copied out once (through an Arrow ``string_view`` array); JSON messages
   and access-log lines are read as blocks (:mod:`~kit.logparse.vectorised.jsonblock`), the rest one line
   at a time, and only lines (or message parts) that start with ``{`` are decoded;
3. the source of each line follows from its log group or, when the group does not say, from its shape
   and its stream; execution-log lines (split at their first ``) ``) are read rule by rule (a literal
   searched in the lines' one buffer, then the pattern);
4. Lambda lines are scanned for botocore's ``An error occurred (Code)`` text and the seed's wording;
   these passes run a chunk of lines at a time (:data:`~kit.logparse.vectorised.textbuffer.CHUNK_ROWS`,
   ``CHUNK_BYTES``);
5. lines without a request id take the one of the START before them in their stream.

Every row comes out, in input order; what could not be read is said in ``parse_error``.
:mod:`kit.logparse.slow` does the same one line at a time and is the oracle of the tests.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kit import frames
from kit.logparse import patterns as p
from kit.logparse.columns import LOG_COLUMNS, UTC_TIME
from kit.logparse.events import ensure_events
from kit.logparse.vectorised import building as bd
from kit.logparse.vectorised import jsonblock, re2
from kit.logparse.vectorised import textbuffer as tb

_ROLE = {
    name: code for code, name in enumerate(("platform", "lambda_app", "lambda_error", "access", "plain"))
}
_NO_ROLE = -1
_LAMBDA = bd.SOURCE["lambda"]
_EXEC = bd.SOURCE["apigw_exec"]
_ACCESS = bd.SOURCE["apigw_access"]

Positions = np.ndarray
_STRING = pd.StringDtype("pyarrow")


def _positions(series: pd.Series) -> Positions:
    return np.asarray(series.index.to_numpy())


def _extract(texts: pd.Series, pattern: re.Pattern[str]) -> pd.DataFrame:
    """``texts.str.extract(pattern)``, run by RE2 over the whole column where the pattern translates.

    Columns ``0..n-1`` as ``string``; NA where the row did not match. Unlike pandas, a group that did not
    take part in a match is ``""``, not NA (see :mod:`~kit.logparse.vectorised.re2`): callers test a match on
    a group that cannot be empty, and ``""`` is never a value (:meth:`bd.Columns.put`).
    """
    translated = re2.translate(pattern)
    if translated is None or len(texts) == 0:
        return texts.str.extract(pattern, expand=True)
    source, groups = translated
    found = pc.extract_regex(tb.arrow_text(texts), source)
    if isinstance(found, pa.ChunkedArray):
        found = found.combine_chunks()
    children = found.flatten()  # each group with the match's nulls (a row that did not match is NA)
    return pd.DataFrame(
        {
            group: pd.Series(_strings(children[group]), index=texts.index, copy=False)
            for group in range(groups)
        }
    )


def _extract_one(texts: pd.Series, pattern: re.Pattern[str]) -> pd.Series:
    """The first group of :func:`_extract`, as ``str.extract(..., expand=False)`` gives it."""
    found: pd.Series = _extract(texts, pattern)[0]
    return found


_SCAN_MARKS = (
    p.CLIENT_ERROR_MARK,
    p.SDK_ERROR_MARK,
    p.IAM_DENIED_MARK,
    p.SEED_ERROR_MARK,
    p.SEED_STORED_MARK,
    p.SEED_ATTEMPT_MARK,
    p.EVENT_KEY_MARK,
)
_JSON_START = re2.anchored(p.JSON_START)
_EXEC_SPACED = re2.anchored(p.EXEC_LINE_SPACED)
_REPORT_FIELDS_AS_WRITTEN = (
    ("duration_ms", "Duration: ", " ms"),
    ("billed_ms", "Billed Duration: ", " ms"),
    ("memory_mb", "Memory Size: ", " MB"),
    ("max_mem_mb", "Max Memory Used: ", " MB"),
)
_INIT_LABEL = "Init Duration: "
_REPORT_ID_LABEL = b"REPORT RequestId: "
_REPORT_VALUE = {
    "request_id": "^[!-~]+$",
    "duration_ms": "^[0-9]+(?:\\.[0-9]+)?$",
    "billed_ms": "^[0-9]+(?:\\.[0-9]+)?$",
    "memory_mb": "^[0-9]+$",
    "max_mem_mb": "^[0-9]+$",
    "init_ms": "^[0-9]+(?:\\.[0-9]+)?$",
}
"""What each value of a REPORT as Lambda writes it must be (see ``REPORT_AS_LAMBDA_WRITES``): RE2, ASCII."""


def _factorize(values: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Codes (-1 for NA) and the distinct values, by Arrow's dictionary encoding: no Python str per row."""
    encoded = pc.dictionary_encode(tb.arrow_text(values))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    codes = np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes, encoded.dictionary.to_pylist()


def _json_start(values: pa.Array) -> np.ndarray:
    """Which texts :data:`~kit.logparse.patterns.JSON_START` matches: those starting ``{`` are found by a
    one-byte comparison, and only the rest (whitespace first, or no JSON) go through the pattern."""
    braced = tb.mask(pc.starts_with(values, "{"))
    if braced.all():
        return braced
    others = np.flatnonzero(~braced)
    braced[others] = tb.mask(pc.match_substring_regex(values.take(pa.array(others)), _JSON_START))
    return braced


def _floats(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Decimal texts (checked by the caller's pattern) as float64, as Python's float() reads them."""
    return np.asarray(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _series(values: pa.Array | pa.ChunkedArray) -> pd.Series:
    """An Arrow string array as a ``string`` Series with a fresh 0..n-1 index."""
    return pd.Series(_strings(values), copy=False)


def _strings(values: pa.Array | pa.ChunkedArray) -> Any:
    """An Arrow string array as a pandas ``string`` array (no copy of the text)."""
    return pd.array(values, dtype=_STRING)


def _fill(out: bd.Columns, positions: Positions, found: pd.DataFrame, fields: Iterable[str | None]) -> None:
    for index, column in enumerate(fields):
        if column is not None:
            out.put(column, positions, found[index])


def _null_request_ids(values: pd.Series) -> pd.Series:
    return values.where(~values.isin(p.NULL_REQUEST_IDS))


# ---------------------------------------------------------------------------------------------------------
# Line prefixes, all lines at once
# ---------------------------------------------------------------------------------------------------------

_TAB, _SPACE = ord("\t"), ord(" ")
_DIGIT_AT = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18)
_CHAR_AT = ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"))
_MAX_FRACTION = 9


def _is_digit(codes: np.ndarray) -> np.ndarray:
    return (codes >= ord("0")) & (codes <= ord("9"))


def _iso_separator(codes: np.ndarray) -> np.ndarray:
    """The character after a leading ``YYYY-MM-DDTHH:MM:SS[.fraction]Z`` (0 when there is none)."""
    separator = np.zeros(len(codes), dtype=np.uint8)
    rows = np.flatnonzero((codes[:, 10] == ord("T")) & (codes[:, 4] == ord("-")))
    if len(rows) == 0:
        return separator
    head = codes[rows]
    shape = _is_digit(head[:, list(_DIGIT_AT)]).all(axis=1)
    for position, char in _CHAR_AT:
        shape &= head[:, position] == ord(char)
    plain = shape & (head[:, 19] == ord("Z"))
    separator[rows[plain]] = head[plain, 20]
    fractional = np.flatnonzero(shape & (head[:, 19] == ord(".")))
    if len(fractional):
        digits = _is_digit(head[fractional, 20 : 20 + _MAX_FRACTION + 1])
        run = np.where(digits.all(axis=1), _MAX_FRACTION + 1, np.argmin(digits, axis=1))
        valid = (run >= 1) & (run <= _MAX_FRACTION)
        kept, run = fractional[valid], run[valid]
        zulu = head[kept, 20 + run] == ord("Z")
        separator[rows[kept[zulu]]] = head[kept[zulu], 21 + run[zulu]]
    separator[(separator != _TAB) & (separator != _SPACE)] = 0
    return separator


def _tokens_by_first_char() -> dict[int, list[tuple[str, np.ndarray]]]:
    table: dict[int, list[tuple[str, np.ndarray]]] = {}
    for token in p.PREFIX_TOKENS:
        expected = np.frombuffer(token.encode("ascii"), dtype=np.uint8)
        table.setdefault(ord(token[0]), []).append((token, expected))
    return table


_TOKENS_BY_FIRST_CHAR = _tokens_by_first_char()


_CATEGORIES = tuple(dict.fromkeys(p.PREFIX_CATEGORY.values()))
_CATEGORY = {name: code for code, name in enumerate(_CATEGORIES)}
_NO_CATEGORY = -1


def _prefix_categories(codes: np.ndarray) -> np.ndarray:
    """What :data:`~kit.logparse.patterns.LINE_PREFIX` and ``PREFIX_CATEGORY`` give, for all lines at once
    (``codes``: their :func:`~kit.logparse.vectorised.textbuffer.prefix_bytes`), as the index of the
    category in :data:`_CATEGORIES` (:data:`_NO_CATEGORY` for none)."""
    categories = np.full(len(codes), _NO_CATEGORY, dtype=np.int8)
    separator = _iso_separator(codes)
    categories[separator == _TAB] = _CATEGORY[p.PREFIX_CATEGORY["\t"]]
    categories[separator == _SPACE] = _CATEGORY[p.PREFIX_CATEGORY[" "]]
    undecided = separator == 0
    first = codes[:, 0]
    for first_char, tokens in _TOKENS_BY_FIRST_CHAR.items():
        rows = np.flatnonzero(undecided & (first == first_char))
        for token, expected in tokens:  # in PREFIX_TOKENS order, as the regex alternation tries them
            if len(rows) == 0:
                break
            hit = (codes[rows, : len(token)] == expected).all(axis=1)
            categories[rows[hit]] = _CATEGORY[p.PREFIX_CATEGORY[token]]
            rows = rows[~hit]
    return categories


# ---------------------------------------------------------------------------------------------------------
# The parse
# ---------------------------------------------------------------------------------------------------------


class _Parser:
    """One parse: the frame's arrays and the columns being filled."""

    def __init__(self, frame: pd.DataFrame, lambda_elsewhere: np.ndarray | None = None) -> None:
        self.frame = frame
        self.size = len(frame)
        # Rows whose stream has Lambda-shaped lines outside this frame (a reader of a file in chunks knows).
        self.lambda_elsewhere = (
            np.zeros(self.size, dtype=bool)
            if lambda_elsewhere is None
            else np.asarray(lambda_elsewhere, bool)
        )
        # Missing messages stay NA: every pass below treats NA as "no match", and the fallback as empty.
        self.text: pd.Series = frame["message"]
        self.messages = tb.arrow_text(self.text)
        self.offsets = tb.utf8_offsets(self.messages)
        self.buffer = self.messages.buffers()[2]  # the messages' UTF-8 bytes (None: no text at all)
        self.data = (
            np.frombuffer(self.buffer, dtype=np.uint8) if self.buffer is not None else np.zeros(0, np.uint8)
        )
        self.words = tb.word_view(self.data)
        self.tabs = np.empty(0, dtype=np.int64)  # the current chunk's tabs
        self.out = bd.Columns(self.size)
        self.kind = self.out.kind
        self.source = self.out.source
        self.evidence = np.zeros(self.size, dtype=bool)  # the line's own shape says Lambda
        self.json_role = np.full(self.size, _NO_ROLE, dtype=np.int8)  # codes of p.json_role's answers
        self.bad_json = np.zeros(self.size, dtype=bool)
        self.paren = np.zeros(self.size, dtype=bool)
        self.plain_json: list[tuple[Positions, list[dict[str, object]]]] = []

        group_codes, groups = _factorize(frame["log_group"])
        sources = [p.group_source(group) for group in groups] + [None]  # the last for a missing group
        self.lambda_group = np.array([source == "lambda" for source in sources])[group_codes]
        self.exec_group = np.array([source == "apigw_exec" for source in sources])[group_codes]
        self.other_group = ~(self.lambda_group | self.exec_group)
        stream_codes, _ = _factorize(frame["log_stream"])
        combined = group_codes.astype(np.int64) * (int(stream_codes.max(initial=0)) + 2) + stream_codes
        self.stream = pd.factorize(combined)[0].astype(bd.index_dtype(self.size))  # fewer streams than rows

    # --- categories of Lambda-shaped lines ---------------------------------------------------------------

    def categorise(self) -> None:
        for chunk in tb.chunks(np.flatnonzero(~self.exec_group), self.offsets):
            self._categorise(chunk)

    def _categorise(self, positions: Positions) -> None:
        categories = _prefix_categories(tb.prefix_bytes(self.messages, positions))
        # Where the chunk's tabs are: the Python runtime's and REPORT lines are cut at them.
        low, high = int(self.offsets[positions[0]]), int(self.offsets[positions[-1] + 1])
        self.tabs = np.flatnonzero(self.data[low:high] == _TAB) + low
        handlers: Mapping[str, Callable[[Positions], None]] = {
            "start": lambda rows: self._start_end(rows, "start"),
            "end": lambda rows: self._start_end(rows, "end"),
            "report": self._report,
            "init_start": lambda rows: self._mark(rows, "init_start"),
            "init_report": self._init_report,
            "xray": lambda rows: self._mark(rows, "xray"),
            "python": self._python,
            "uncaught": self._uncaught,
            "node": self._node,
            "timeout": self._timeout,
            "request_error": self._request_error,
            "runtime_type": self._runtime_type,
            "v8_fatal": self._v8_fatal,
            "json": self._json,
        }
        for code in np.unique(categories).tolist():
            if code == _NO_CATEGORY:
                continue
            rows, name = positions[categories == code], _CATEGORIES[code]
            if name == "paren":
                self.paren[rows] = True
            elif name in handlers:
                handlers[name](rows)

    def _mark(self, rows: Positions, kind: str) -> None:
        self.kind[rows] = bd.KIND[kind]
        self.evidence[rows] = True

    def _start_end(self, rows: Positions, kind: str) -> None:
        self._mark(rows, kind)
        texts = self.text.iloc[rows]
        request_ids = _extract_one(texts, p.START if kind == "start" else p.END)
        self.out.put("request_id", rows, request_ids)
        self.out.put_constant("parse_error", rows[request_ids.isna().to_numpy()], p.MISSING_REQUEST_ID[kind])

    def _report(self, rows: Positions) -> None:
        """Complete lines through ``REPORT_CORE`` (and ``REPORT_TAIL`` only where a tail field follows);
        cut lines through the all-optional ``REPORT``, slower, which keeps what is there."""
        self._mark(rows, "report")
        rows = self._report_as_written(rows)
        if len(rows) == 0:
            return
        texts = self.text.iloc[rows]
        core = _extract(texts, p.REPORT_CORE)
        complete = core[0].notna().to_numpy()
        whole_rows = rows[complete]
        _fill(self.out, whole_rows, core[complete], p.REPORT_FIELDS[:5])
        rest = core[5][complete]
        has_tail = rest.str.match(p.REPORT_TAIL_START).to_numpy(dtype=bool, na_value=False)
        if has_tail.any():
            tail = _extract(rest[has_tail], p.REPORT_TAIL)
            _fill(self.out, whole_rows[has_tail], tail, p.REPORT_FIELDS[5:])
        if not complete.all():
            cut_rows = rows[~complete]
            found = _extract(texts[~complete], p.REPORT)
            _fill(self.out, cut_rows, found, p.REPORT_FIELDS)
            self.out.put_constant("parse_error", cut_rows, p.INCOMPLETE_REPORT)

    def _report_as_written(self, rows: Positions) -> Positions:
        """Read the REPORT lines of :data:`~kit.logparse.patterns.REPORT_AS_LAMBDA_WRITES`' shape; the rest
        are returned for the patterns.

        The shape is checked and read at the line's tabs, found in the messages' buffer: each field's label
        and unit compared in place, each value (and the request id) copied out once
        (:func:`~kit.logparse.vectorised.textbuffer.texts_in_ranges`) and checked by its own small pattern.
        Each value is what the capture groups of ``REPORT_CORE`` (and ``REPORT_TAIL`` for Init Duration)
        would hold, without a regex engine tracking groups through the line.
        """
        if self.buffer is None or len(self.data) > tb.VIEW_LIMIT:
            return rows
        data, words = self.data, self.words
        starts, stops = self.offsets[rows], self.offsets[rows + 1]
        tabs = tb.nth_places(self.tabs, starts, stops, 7)
        cold = (tabs[:, 5] >= 0) & (tabs[:, 6] < 0)  # Init Duration: a sixth field
        shaped = ((tabs[:, 4] >= 0) & (tabs[:, 5] < 0)) | cold
        last = np.where(cold, tabs[:, 5], tabs[:, 4])
        # After the last tab: nothing, or one or two line breaks.
        after = stops - last - 1
        shaped &= after <= 2
        for extra in (1, 2):
            has = shaped & (after >= extra)
            shaped[has] &= data[last[has] + extra] == ord("\n")
        # Labels and units in place, with room for a value between them.
        label = _REPORT_ID_LABEL
        shaped &= tabs[:, 0] - starts > len(label)
        shaped[shaped] &= tb.equals_at(data, words, starts[shaped], label)
        fields = [(index, *field) for index, field in enumerate(_REPORT_FIELDS_AS_WRITTEN, start=1)]
        spans: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
        for index, column, name, unit in [*fields, (5, "init_ms", _INIT_LABEL, " ms")]:
            which = shaped & cold if column == "init_ms" else shaped.copy()
            first, stop = tabs[:, index - 1] + 1, tabs[:, index]
            begin, end = first + len(name), stop - len(unit)
            which &= end > begin
            which[which] &= tb.equals_at(data, words, first[which], name.encode())
            which[which] &= tb.equals_at(data, words, end[which], unit.encode())
            if column == "init_ms":
                shaped &= ~cold | which
            else:
                shaped &= which
            spans.append((column, which, begin, end))
        # The values themselves: a decimal or an integer, and an id of printable ASCII.
        values: dict[str, tuple[np.ndarray, pa.Array]] = {}
        spans.insert(0, ("request_id", shaped, starts + len(label), tabs[:, 0]))
        for column, candidates, begin, end in spans:
            which = candidates & shaped
            texts = tb.texts_in_ranges(self.buffer, data, begin[which], end[which])
            if texts is None:
                return rows
            good = tb.mask(pc.match_substring_regex(texts, _REPORT_VALUE[column]))
            shaped[np.flatnonzero(which)[~good]] = False
            values[column] = (which, texts)
        for column, (which, texts) in values.items():
            keep = shaped[which]
            read = rows[which & shaped]
            kept = texts if keep.all() else texts.filter(pa.array(keep))
            self.out.put(column, read, kept if column == "request_id" else _floats(kept))
        return rows[~shaped]

    def _init_report(self, rows: Positions) -> None:
        found = _extract(self.text.iloc[rows], p.INIT_REPORT)
        self._mark(rows, "init_report")
        _fill(self.out, rows, found, p.INIT_REPORT_FIELDS)

    def _python(self, rows: Positions) -> None:
        """:data:`~kit.logparse.patterns.PYTHON_LINE`, read by splitting at the first three tabs where a line
        has them (the category says it starts ``[LEVEL]\\t``); a cut line goes through the pattern.

        The tabs are found in the messages' buffer and the parts copied out of it once
        (:func:`~kit.logparse.vectorised.textbuffer.texts_in_ranges`).
        """
        self._mark(rows, "app")
        rows = self._python_as_written(rows)
        if len(rows) == 0:
            return
        texts = self.text.iloc[rows]
        parts = pc.split_pattern(tb.arrow_text(texts), "\t", max_splits=3)
        whole = tb.mask(pc.equal(pc.list_value_length(parts), 4))
        if whole.any():
            if not whole.all():
                parts = parts.filter(pa.array(whole))
            whole_rows = rows[whole]
            self.out.put(
                "level", whole_rows, _strings(pc.utf8_slice_codeunits(pc.list_element(parts, 0), 1, -1))
            )
            request_ids = pd.Series(_strings(pc.list_element(parts, 2)), dtype=_STRING)
            self.out.put("request_id", whole_rows, _null_request_ids(request_ids))
            self._message_json(whole_rows, pc.list_element(parts, 3))
        if not whole.all():
            cut_rows = rows[~whole]
            found = _extract(texts[~whole], p.PYTHON_LINE)
            self.out.put("level", cut_rows, found[0])
            self.out.put("request_id", cut_rows, _null_request_ids(found[1]))
            self.out.put_constant("parse_error", cut_rows, p.INCOMPLETE_PYTHON_LINE)

    def _python_as_written(self, rows: Positions) -> Positions:
        """Read the lines that have three tabs (level, time, request id, then the message); the rest (cut
        lines, or all of them where the parts cannot be copied out as views) are returned."""
        buffer, data = self.buffer, self.data
        if buffer is None:
            return rows
        starts, stops = self.offsets[rows], self.offsets[rows + 1]
        tabs = tb.nth_places(self.tabs, starts, stops, 3)
        level_end, time_end, id_end = tabs[:, 0], tabs[:, 1], tabs[:, 2]
        near = id_end >= 0  # the third tab, and so the first two, inside the line
        if not near.any():
            return rows
        parts = [
            tb.texts_in_ranges(buffer, data, first[near], last[near])
            for first, last in ((starts + 1, level_end - 1), (time_end + 1, id_end), (id_end + 1, stops))
        ]
        if any(part is None for part in parts):
            return rows
        levels, request_ids, messages = parts
        assert levels is not None and request_ids is not None and messages is not None
        read = rows[near]
        self.out.put("level", read, levels)
        self.out.put("request_id", read, _null_request_ids(_series(request_ids)))
        self._message_json(read, messages)
        return rows[~near]

    def _message_json(self, rows: Positions, values: pa.Array) -> None:
        """App fields from a line's message part when it is a JSON object (the handler's log line)."""
        values = values.cast(pa.large_string())
        is_json = _json_start(values)
        json_rows = rows[is_json]
        block = jsonblock.read_app_fields(values if is_json.all() else values.filter(pa.array(is_json)))
        whole = ~block.one_by_one
        read_rows = json_rows[whole]
        for name, texts in block.text.items():
            self.out.put(name, read_rows, texts if whole.all() else texts.filter(pa.array(whole)))
        for name, numbers in block.numbers.items():
            self.out.put(name, read_rows, numbers[whole])
        records = []
        for message in values.filter(pa.array(is_json)).filter(pa.array(block.one_by_one)).to_pylist():
            document = p.decode_object(message)
            records.append(p.app_fields(document) if document is not None else {})
        self.out.put_records(json_rows[block.one_by_one], records)

    def _uncaught(self, rows: Positions) -> None:
        texts = self.text.iloc[rows]
        found = _extract(texts, p.UNCAUGHT)
        self._mark(rows, "error")
        self.out.put_constant("level", rows, "ERROR")
        self.out.put("error_type", rows, found[0])
        self.out.put("error_message", rows, found[1])
        untyped = found[0].isna().to_numpy()
        if untyped.any():
            loose = _extract_one(texts[untyped], p.UNCAUGHT_LOOSE)
            self.out.put("error_message", rows[untyped], loose)

    def _node(self, rows: Positions) -> None:
        found = _extract(self.text.iloc[rows], p.NODE_LINE)
        matched = found[0].notna().to_numpy()
        rows, found = rows[matched], found[matched]
        self._mark(rows, "app")
        self.out.put("level", rows, found[2])
        self.out.put("request_id", rows, _null_request_ids(found[1]))
        errors = _extract(found[3], p.NODE_ERROR)
        is_error = errors[0].notna().to_numpy()
        error_rows = rows[is_error]
        self.kind[error_rows] = bd.KIND["error"]
        records: list[dict[str, object]] = []
        for rest in errors[1][is_error]:
            document = p.decode_object(rest)
            if document is not None:
                records.append(p.error_document_fields(document))
            else:
                records.append({"error_message": rest.splitlines()[0] if rest.strip() else None})
        self.out.put_records(error_rows, records)
        self._message_json(rows[~is_error], tb.arrow_text(found[3][~is_error]))

    def _timeout(self, rows: Positions) -> None:
        found = _extract(self.text.iloc[rows], p.TIMEOUT)
        matched = found[0].notna().to_numpy()
        rows, found = rows[matched], found[matched]
        self._timed_out(rows)
        self.out.put("request_id", rows, found[0])
        self.out.put("error_message", rows, found[1])

    def _timed_out(self, rows: Positions) -> None:
        self._mark(rows, "timeout")
        self.out.put_constant("status", rows, "timeout")
        self.out.put_constant("error_type", rows, p.TIMEOUT_ERROR_TYPE)

    def _request_error(self, rows: Positions) -> None:
        found = _extract(self.text.iloc[rows], p.REQUEST_ERROR)
        matched = found[0].notna().to_numpy()
        rows, found = rows[matched], found[matched]
        timed_out = found[1].str.startswith("Task timed out").to_numpy(dtype=bool, na_value=False)
        self._timed_out(rows[timed_out])
        self._mark(rows[~timed_out], "runtime_exit")
        self.out.put("request_id", rows, found[0])
        self.out.put("error_message", rows, found[1])

    def _runtime_type(self, rows: Positions) -> None:
        found = _extract_one(self.text.iloc[rows], p.RUNTIME_TYPE)
        matched = found.notna().to_numpy()
        self._mark(rows[matched], "runtime_exit")
        self.out.put("error_type", rows[matched], found[matched])

    def _v8_fatal(self, rows: Positions) -> None:
        found = _extract_one(self.text.iloc[rows], p.V8_FATAL)
        matched = found.notna().to_numpy()
        rows = rows[matched]
        self._mark(rows, "error")
        self.out.put_constant("level", rows, "FATAL")
        self.out.put("error_message", rows, found[matched])

    def _json(self, rows: Positions) -> None:
        """Whole-event JSON: Lambda's JSON format, an access-log line, or a JSON print."""
        outside_lambda = ~self.lambda_group[rows]
        if outside_lambda.any():
            # Access-log lines (outside Lambda's groups) as one block; what it cannot be sure of, per line.
            access_rows = rows[outside_lambda]
            block = jsonblock.read_access_fields(tb.arrow_text(self.text.iloc[access_rows]))
            read = ~block.one_by_one
            read_rows = access_rows[read]
            self.json_role[read_rows] = _ROLE["access"]
            self.out.put_constant("kind", read_rows, "access")
            for name, texts in block.text.items():
                self.out.put(name, read_rows, texts.filter(pa.array(read)))
            for name, numbers in block.numbers.items():
                self.out.put(name, read_rows, numbers[read])
            rows = np.sort(np.concatenate([rows[~outside_lambda], access_rows[~read]]))
            if len(rows) == 0:
                return
        documents = [p.decode_object(text) for text in self.text.iloc[rows]]
        roles = [None if d is None else p.json_role(d) for d in documents]
        codes = np.array([_NO_ROLE if role is None else _ROLE[role] for role in roles], dtype=np.int8)
        self.bad_json[rows[codes == _NO_ROLE]] = True
        self.json_role[rows] = codes
        lambda_group = self.lambda_group[rows]
        by_role: dict[str, tuple[list[int], list[dict[str, object]]]] = {}
        for index, (document, found_role) in enumerate(zip(documents, roles, strict=True)):
            if document is None:
                continue
            role = found_role
            if role == "platform":
                fields = p.platform_fields(document)
            elif role == "lambda_error":
                fields = {"kind": "error", **p.error_document_fields(document)}
                fields.setdefault("level", "ERROR")
            elif role == "lambda_app":
                fields = {"kind": "app", **p.app_fields(document)}
            elif role == "access" and not lambda_group[index]:
                fields = {"kind": "access", **p.access_fields(document)}
            else:
                role = "plain"
                fields = p.app_fields(document)
            bucket = by_role.setdefault(role, ([], []))
            bucket[0].append(index)
            bucket[1].append(fields)
        for role, (indexes, records) in by_role.items():
            role_rows = rows[np.asarray(indexes, dtype=np.int64)]
            if role == "plain":
                self.plain_json.append((role_rows, records))  # their fields count only for Lambda lines
                continue
            self.out.put_records(role_rows, records)
            if role != "access":
                self.evidence[role_rows] = True

    # --- sources, fallbacks, execution lines ------------------------------------------------------------

    def resolve(self) -> None:
        """Each line's source: its group's, else its own shape's, else its stream's; then fallbacks."""
        stream_evidence = (
            np.bincount(self.stream, weights=self.evidence | self.lambda_elsewhere, minlength=1) > 0
        )
        stream_lambda = stream_evidence[self.stream]
        source = self.source
        source[self.lambda_group] = _LAMBDA
        source[self.exec_group] = _EXEC
        other = self.other_group
        access = other & (self.json_role == _ROLE["access"])
        source[access] = _ACCESS
        source[other & ~access & self.evidence] = _LAMBDA
        for chunk in tb.chunks(
            np.flatnonzero(self.exec_group | (other & self.paren & ~self.evidence)), self.offsets
        ):
            self._exec(chunk)
        source[(source == bd.UNSET) & stream_lambda] = _LAMBDA
        source[source == bd.UNSET] = bd.SOURCE["unknown"]
        for rows, records in self.plain_json:
            keep = source[rows] == _LAMBDA
            self.out.put_records(rows[keep], [r for r, k in zip(records, keep, strict=True) if k])
        self._fallbacks()

    def _exec(self, rows: Positions) -> None:
        texts = self.text.iloc[rows]
        # "(<id>) <text>", the usual shape, is split at its first ") "; anything else goes through EXEC_LINE.
        values = tb.arrow_text(texts)
        spaced = tb.mask(pc.match_substring_regex(values, _EXEC_SPACED))
        if spaced.any():
            parts = pc.split_pattern(values.filter(pa.array(spaced)), ") ", max_splits=1)
            ids = pc.utf8_slice_codeunits(pc.list_element(parts, 0), 1)
            self._exec_lines(rows[spaced], _series(ids), _series(pc.list_element(parts, 1)))
        if not spaced.all():
            found = _extract(texts[~spaced], p.EXEC_LINE)
            matched = found[0].notna().to_numpy()
            self._exec_lines(rows[~spaced][matched], found[0][matched], found[1][matched])

    def _exec_lines(self, exec_rows: Positions, ids: pd.Series, texts: pd.Series) -> None:
        """Execution-log lines: their request id and, rule by rule, what their text says."""
        self.source[exec_rows] = _EXEC
        self.kind[exec_rows] = bd.KIND["exec_line"]
        self.out.put("apigw_request_id", exec_rows, ids)
        bodies = texts.str.removesuffix(p.TRUNCATED_SUFFIX)
        haystack = tb.Haystack(tb.arrow_text(bodies))
        for rule in p.EXEC_RULES:
            has_mark = haystack.rows_with(rule.mark)
            if not has_mark.any():
                continue
            rule_found = _extract(bodies[has_mark], rule.pattern)
            hit = rule_found[0].notna().to_numpy()
            rule_rows = exec_rows[has_mark][hit]
            _fill(self.out, rule_rows, rule_found[hit], rule.fields)
            for column, value in rule.constants.items():
                self.out.put_constant(column, rule_rows, value)
        self._event_scan(exec_rows, bodies)

    def _fallbacks(self) -> None:
        """Lines no pattern claimed: plain output of a Lambda function, or unknown with the reason."""
        unset = np.flatnonzero(self.kind == bd.UNSET)
        if len(unset) == 0:
            return
        texts = self.text.iloc[unset]
        empty = (texts.str.strip() == "").to_numpy(dtype=bool, na_value=True)
        binary = texts.str.contains(p.BINARY).to_numpy(dtype=bool, na_value=False) & ~empty
        is_lambda = self.source[unset] == _LAMBDA
        app = is_lambda & ~empty & ~binary
        self.kind[unset[app]] = bd.KIND["app"]
        self.kind[unset[~app]] = bd.KIND["unknown"]
        reasons = np.select(
            [
                empty,
                binary,
                self.bad_json[unset],
                is_lambda,
                self.source[unset] == _EXEC,
                self.json_role[unset] == _ROLE["plain"],
            ],
            [p.EMPTY_MESSAGE, p.BINARY_MESSAGE, p.BAD_JSON, "", p.NO_EXEC_PREFIX, p.UNKNOWN_JSON],
            default=p.UNKNOWN_LINE,
        )
        self.out.put("parse_error", unset, reasons)

    # --- scans of Lambda lines' text, event types, request ids ------------------------------------------

    def scan(self) -> None:
        wanted = (self.source == _LAMBDA) & ((self.kind == bd.KIND["app"]) | (self.kind == bd.KIND["error"]))
        for chunk in tb.chunks(np.flatnonzero(wanted), self.offsets):
            self._scan_lines(chunk)

    def _scan_lines(self, rows: Positions) -> None:
        texts = self.text.iloc[rows]
        # One look for all the marks; each scan below then reads only the few lines that have one.
        marked = tb.Haystack(tb.arrow_text(texts)).rows_with_any(_SCAN_MARKS)
        rows, texts = rows[marked], texts[marked]
        self._scan(
            texts, p.CLIENT_ERROR_MARK, p.CLIENT_ERROR, ("error_message", "app_error_code", "aws_operation")
        )
        self._scan(texts, p.SDK_ERROR_MARK, p.SDK_ERROR, ("error_message", "app_error_code"))
        self._scan(texts, p.IAM_DENIED_MARK, p.IAM_DENIED, ("aws_operation",))
        seed_error = texts.str.contains(p.SEED_ERROR_MARK, regex=False).to_numpy(dtype=bool, na_value=False)
        self.out.put_constant("app_outcome", rows[seed_error], "error")
        stored = self._scan(texts, p.SEED_STORED_MARK, p.SEED_STORED, ("connection_id",))
        self.out.put_constant("app_outcome", stored, "stored")
        self._scan(texts, p.SEED_ATTEMPT_MARK, p.SEED_ATTEMPT, ("connection_id",))
        self._event_scan(rows, texts)

    def _scan(
        self, texts: pd.Series, mark: str, pattern: re.Pattern[str], fields: tuple[str | None, ...]
    ) -> Positions:
        has_mark = texts.str.contains(mark, regex=False).to_numpy(dtype=bool, na_value=False)
        if not has_mark.any():
            return np.empty(0, dtype=np.int64)
        found = _extract(texts[has_mark], pattern)
        hit = found[0].notna().to_numpy()
        rows: Positions = _positions(texts)[has_mark][hit]
        _fill(self.out, rows, found[hit], fields)
        return rows

    def _event_scan(self, rows: Positions, texts: pd.Series) -> None:
        """An API Gateway event (or its repr) inside a line: its connectionId, routeKey, eventType."""
        has_key = tb.Haystack(tb.arrow_text(texts)).rows_with(p.EVENT_KEY_MARK)
        if not has_key.any():
            return
        candidates = texts[has_key]
        for pattern, column in (
            (p.EVENT_CONNECTION_ID, "connection_id"),
            (p.EVENT_ROUTE_KEY, "route_key"),
            (p.EVENT_TYPE, "event_type"),
        ):
            self.out.put(column, rows[has_key], _extract_one(candidates, pattern))

    def event_types(self) -> None:
        routes = self.out.text["route_key"]
        rows = self.out.missing("event_type", np.flatnonzero(~routes.missing_anywhere()))
        if len(rows) == 0:
            return
        values = routes.array(rows)
        named = pc.if_else(
            pc.equal(values, "$connect"),
            "CONNECT",
            pc.if_else(pc.equal(values, "$disconnect"), "DISCONNECT", "MESSAGE"),
        )
        self.out.put("event_type", rows, named)

    def carry_request_ids(self) -> None:
        """Lambda lines without a request id take the one of the START before them in their stream.

        The window closes at END, REPORT and INIT_START, so a line after END is not pinned on the
        invocation that ended. Rows are ordered by timestamp inside each stream (stable, so equal or
        missing timestamps keep their input order).
        """
        is_lambda = self.source == _LAMBDA
        kind = self.kind
        request_id = self.out.text["request_id"]
        # Markers are numbers: the index of a START among ``opens``, _CLOSED where a window closes.
        marker = np.full(self.size, _NO_MARKER, dtype=bd.index_dtype(self.size))
        opens = np.flatnonzero(is_lambda & (kind == bd.KIND["start"]))
        marker[opens] = np.arange(len(opens), dtype=marker.dtype)
        closes = (kind == bd.KIND["end"]) | (kind == bd.KIND["report"]) | (kind == bd.KIND["init_start"])
        marker[is_lambda & closes] = _CLOSED
        stamps = self.frame["timestamp"].to_numpy(dtype="float64", na_value=-1.0)
        order = np.lexsort((stamps, self.stream))
        del stamps
        carried = np.empty(self.size, dtype=marker.dtype)
        carried[order] = _ffill_within(marker[order], self.stream[order])
        del order, marker
        rows = np.flatnonzero(is_lambda & request_id.missing_anywhere())
        starts = carried[rows]
        inside = starts >= 0  # a START's id, which is no value where that START had none
        self.out.put("request_id", rows[inside], request_id.array(opens).take(pa.array(starts[inside])))

    # --- the frame ---------------------------------------------------------------------------------------

    def result(self) -> pd.DataFrame:
        # The working arrays are let go before the frame is built: a parse is at its peak here.
        self.json_role = np.empty(0, dtype=np.int8)
        self.stream = np.empty(0, dtype=np.int32)
        gone = np.empty(0, dtype=bool)
        self.evidence = self.bad_json = self.paren = self.lambda_group = self.exec_group = gone
        self.lambda_elsewhere = gone
        self.other_group = gone
        self.plain_json = []
        frame = self.frame
        columns: dict[str, Any] = {name: frame[name] for name in bd.RAW}
        # Each column's working copy is let go as soon as its frame column is made, so the two never all
        # exist at once. Text first: what their working arrays free is then taken again by the number and
        # time columns that follow, rather than by nothing.
        nothing = pa.nulls(self.size, pa.large_string())  # shared by the columns no line gave a value
        for name in list(self.out.text):
            column = self.out.text.pop(name)
            columns[name] = _strings(column.array() if column.count else nothing)
            del column
        pa.default_memory_pool().release_unused()  # the pieces the text columns were taken from
        columns["kind"] = bd.decode(self.kind, p.KINDS)
        columns["source"] = bd.decode(self.source, p.SOURCES)
        for name in list(self.out.numbers):
            columns[name] = bd.number_array(self.out.numbers.pop(name), LOG_COLUMNS[name], self.size)
        columns["ts"] = _utc(frame["timestamp"])
        columns["ingest_ts"] = _utc(frame["ingestion_time"])
        columns["lag_ms"] = (frame["ingestion_time"] - frame["timestamp"]).astype("Int64")
        return pd.DataFrame({name: columns[name] for name in LOG_COLUMNS}, copy=False)


_NO_MARKER = -1
_CLOSED = -2


def _ffill_within(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Forward-fill :data:`_NO_MARKER` in ``values`` without crossing a change of ``groups`` (rows sorted
    by group); a row before any marker in its group stays :data:`_NO_MARKER`."""
    size = len(values)
    index = np.arange(size, dtype=bd.index_dtype(size))
    present = values != _NO_MARKER
    group_start = np.ones(size, dtype=bool)
    group_start[1:] = groups[1:] != groups[:-1]
    # The last row at or before i that has a value or starts i's group; its value if it has one.
    source = np.maximum.accumulate(np.where(present | group_start, index, 0))
    filled: np.ndarray = np.where(present[source], values[source], _NO_MARKER)
    return filled


def _utc(millis: pd.Series) -> pd.Series:
    return pd.to_datetime(millis, unit="ms", utc=True).astype(UTC_TIME)


def parse(events: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The normalised log frame (:data:`LOG_COLUMNS`): one row per event, in input order, never fewer.

    ``events`` is the raw event frame (:func:`~kit.logparse.events_frame`,
    :func:`~kit.logparse.read_export`, :func:`~kit.logparse.read_raw_lines`) or boto3 event dicts.
    """
    return parse_part(ensure_events(events))


def parse_part(frame: pd.DataFrame, lambda_elsewhere: np.ndarray | None = None) -> pd.DataFrame:
    """:func:`parse` of a raw event frame that is one part of a larger input (:mod:`kit.logparse.streaming`).

    ``lambda_elsewhere`` (one flag per row) says which rows' streams have Lambda-shaped lines in other parts:
    a line no pattern claims is then Lambda output, as :func:`parse` of the whole input would say.
    """
    if len(frame) == 0:
        return frames.empty(LOG_COLUMNS)
    parser = _Parser(frame, lambda_elsewhere)
    stages = (parser.categorise, parser.resolve, parser.scan, parser.event_types, parser.carry_request_ids)
    for stage in stages:
        stage()
        pa.default_memory_pool().release_unused()  # what a stage's Arrow copies held goes back at once
    return parser.result()


def lambda_shaped(frame: pd.DataFrame) -> np.ndarray:
    """Which rows of a raw event frame are Lambda lines by their own shape (what makes a stream Lambda's in
    :meth:`_Parser.resolve`), without the rest of the parse."""
    if len(frame) == 0:
        return np.zeros(0, dtype=bool)
    parser = _Parser(frame)
    parser.categorise()
    shaped: np.ndarray = parser.evidence
    return shaped
