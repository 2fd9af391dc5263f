"""A log file read a part at a time (raw lines, or a `filter-log-events` export) into raw event frames.

:func:`file_parts` takes the file's bytes as blocks (any iterable of ``bytes``: the caller opens and reads
the file) and yields raw event frames (:data:`~kit.logparse.columns.RAW_EVENT_COLUMNS`) of about
:data:`PART_SIZE` of the file each, in file order. Together they are the frame :func:`read_raw_lines` or
:func:`read_export` gives for the whole file; no part holds more than its own events.

What the file is, from its first bytes (after a UTF-8 byte order mark and white space):

* an export: ``{`` whose first key is one a ``filter-log-events`` / ``get-log-events`` answer has
  (:data:`EXPORT_KEYS`), or ``[`` followed by ``{`` or ``]`` (a bare list of events). Exports written one
  after another in one file (pages appended) are read one after another. The events list is walked one
  event at a time (:meth:`json.JSONDecoder.raw_decode` over a sliding window of the text), so the document
  is never held whole;
* a Logs Insights answer (``aws logs get-query-results``: ``{"results": ...}``) or the console's CSV download
  (a header naming ``@message``/``message``): read whole, as one part (:mod:`kit.logparse.forms`);
* otherwise raw lines: one event per ``\\n``, cut between lines, never inside one (a line is an event, so a
  Python traceback joined with ``\\r`` stays one event, as in :func:`read_raw_lines`); lines pasted from
  ``aws logs tail`` or ``sam logs`` lose their prefix into the time and stream columns
  (:mod:`kit.logparse.forms`, decided from the first part).

Broken input ends the reading with a :class:`~kit.errors.ConfigurationError` naming the file, the event
and where it is (line and column of an export, line of raw lines); every event before it has been yielded
first. The cases: an export cut short or not JSON inside its events, an event that is not an object or whose
times are not epoch milliseconds (:func:`~kit.logparse.events.EventRows`), JSON nested deeper than Python's
decoder follows, and a line or JSON value longer than :data:`MAX_EVENT_SIZE` (``/dev/zero`` ends there).

Pure: no I/O (the blocks come from the caller).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, Final

import numpy as np
import pandas as pd

from kit.errors import ConfigurationError
from kit.logparse import forms
from kit.logparse.events import EventRows, read_raw_lines

PART_SIZE: Final = 8 << 20
"""Bytes of raw lines (characters of an export) per part. A part's parse costs about fifteen times its size
at its peak, and a fixed few hundredths of a second: 8 MiB keeps ``kit logs parse`` of a file near 250 MB
whatever the file's size (Python, pandas and pyarrow included), for a few percent more time than one parse
of the whole file."""

MAX_EVENT_SIZE: Final = 8 << 20
"""The longest line, or JSON value in an export, that is read: 8 MiB. CloudWatch Logs keeps events of at most
1 MB (256 KB under its older quota), and JSON can write a character as six (``\\u0000``); anything longer
is not a log event, and a file that never ends a line (``/dev/zero``) must not be read forever."""

PART_EVENTS: Final = 1 << 16
"""Events of an export per part at most: each is a Python dict until its part is built."""

EXPORT_KEYS: Final = frozenset(
    {"events", "searchedLogStreams", "nextToken", "nextForwardToken", "nextBackwardToken", "logGroupName"}
)
"""Keys of a ``filter-log-events`` or ``get-log-events`` answer (and ``logGroupName``, which
:func:`~kit.logparse.read_export` reads too): a file starting ``{"<one of these>"`` is an export. A JSON
access-log line never starts with one of them."""

_BOM = codecs.BOM_UTF8
_HEAD: Final = 4096  # bytes enough to see how a file starts (white space, then "{" and a key, or "[" and "{")
_EXPORT_START = re.compile(
    rb'[ \t\r\n]*(?:\{[ \t\r\n]*"(?P<key>[A-Za-z]{1,32})"|\[[ \t\r\n]*[{\]])', re.ASCII
)
_SPACE = re.compile(r"[ \t\r\n]*")
_DECODER = json.JSONDecoder()


class NotLogText(ConfigurationError):
    """The file is an archive or UTF-16, not log text: refused before anything is read from it."""


def file_parts(
    blocks: Iterable[bytes], name: str, part_size: int | None = None, *, log_group: str | None = None
) -> Iterator[pd.DataFrame]:
    """The file's events as raw event frames, a part at a time (see the module's docstring).

    ``name`` is how errors name the file; ``part_size`` defaults to :data:`PART_SIZE`; ``log_group`` is where
    the lines came from, for events that do not say (a saved file, an export of one group). Raises
    :class:`~kit.errors.ConfigurationError` at the first broken event, after yielding every event before it.
    """
    for frame in _file_parts(blocks, name, part_size):
        if log_group:
            frame["log_group"] = frame["log_group"].fillna(log_group)
        yield frame


def _file_parts(blocks: Iterable[bytes], name: str, part_size: int | None) -> Iterator[pd.DataFrame]:
    part_size = PART_SIZE if part_size is None else part_size
    source = iter(blocks)
    head = b""
    while len(head) < _HEAD:
        block = next(source, None)
        if block is None:
            break
        head += block
    problem = forms.not_text(head)
    if problem is not None:
        raise NotLogText(f"{name} {problem}.")
    if forms.is_insights(head) or forms.is_csv(head):
        yield from _whole_document(source, head, name)
    elif is_export(head):
        yield from _ExportReader(source, head, name, part_size).parts()
    else:
        yield from _raw_parts(source, head, name, part_size)


WHOLE_DOCUMENT_LIMIT: Final = (
    512 << 20
)  # an Insights answer holds at most 10,000 rows; a CSV download is small


def _whole_document(source: Iterator[bytes], head: bytes, name: str) -> Iterator[pd.DataFrame]:
    """A Logs Insights answer or a console CSV download, read whole (they are bounded), as one part."""
    data = bytearray(head)
    for block in source:
        data += block
        if len(data) > WHOLE_DOCUMENT_LIMIT:
            raise ConfigurationError(
                f"{name}: over {WHOLE_DOCUMENT_LIMIT >> 20} MiB, more than a Logs Insights answer or a "
                "console download holds; export the events with `aws logs filter-log-events` instead."
            )
    text = bytes(data).decode("utf-8", errors="replace")
    if forms.is_insights(head):
        try:
            document = json.loads(text.removeprefix("\ufeff"))
        except (ValueError, RecursionError) as exc:
            raise ConfigurationError(f"{name}: a Logs Insights answer that is not JSON ({exc}).") from exc
        events = forms.insights_events(document, name)
    else:
        events = forms.csv_events(text, name)
    rows = EventRows()
    for index, event in enumerate(events):
        rows.add(event, index, f" (result {index + 1})")
    yield rows.take()


def is_export(head: bytes) -> bool:
    """Whether a file that starts with ``head`` is read as an export (see :data:`EXPORT_KEYS`)."""
    found = _EXPORT_START.match(head.removeprefix(_BOM))
    if found is None:
        return False
    key = found.group("key")
    return key is None or key.decode() in EXPORT_KEYS


def _bound() -> str:
    return f"{MAX_EVENT_SIZE >> 20} MiB" if MAX_EVENT_SIZE % (1 << 20) == 0 else f"{MAX_EVENT_SIZE:,} bytes"


def read_before(count: int) -> str:
    """How many events were read before a break, as the errors say it."""
    if count == 0:
        return "no events were read before it"
    return "1 event was read before it" if count == 1 else f"{count:,} events were read before it"


# ---------------------------------------------------------------------------------------------------------
# Raw lines
# ---------------------------------------------------------------------------------------------------------


def _raw_parts(source: Iterator[bytes], head: bytes, name: str, part_size: int) -> Iterator[pd.DataFrame]:
    """Parts that end at the first line end at or after ``part_size`` bytes (or the end of the file)."""
    pending = bytearray(head)
    lines = 0  # lines yielded so far
    ended = False
    form: str | None = None  # kit.logparse.forms: decided from the first part's lines
    while not ended or pending:
        cut = pending.find(b"\n", max(part_size, 1) - 1) + 1
        last = pending.rfind(b"\n") + 1
        if not cut and not ended and len(pending) - last <= MAX_EVENT_SIZE:
            block = next(source, None)
            ended = block is None
            pending += block or b""
            continue
        if not cut:  # the end of the file, or an unfinished line already over the bound
            cut = len(pending) if ended else last
        long_line = _first_long_line(pending, cut)
        if long_line is None and cut < len(pending) and len(pending) - last > MAX_EVENT_SIZE:
            long_line = last  # the unfinished line after the part
        if long_line is not None:
            cut = long_line
        if cut:
            lines += len(frame := read_raw_lines(_text(pending, cut)))
            del pending[:cut]
            if lines == len(frame):
                form = forms.detect(frame["message"].head(forms.SAMPLE * 2))
            yield forms.strip(frame, form)
        if long_line is not None:
            raise ConfigurationError(
                f"{name}: line {lines + 1:,} is longer than {_bound()}; a log event is at most 1 MB, so this "
                f"is not a file of log lines ({read_before(lines)})."
            )


def _first_long_line(data: bytearray, stop: int) -> int | None:
    """Where the first line of ``data[:stop]`` longer than :data:`MAX_EVENT_SIZE` bytes starts, if one is."""
    if stop <= MAX_EVENT_SIZE:
        return None
    codes = np.frombuffer(data, dtype=np.uint8, count=stop)
    ends = np.append(np.flatnonzero(codes == ord("\n")), stop)
    del codes  # releases the bytearray, which is resized next
    starts = np.concatenate(([0], ends[:-1] + 1))
    over = np.flatnonzero(ends - starts > MAX_EVENT_SIZE)
    return int(starts[over[0]]) if len(over) else None


def _text(data: bytearray, stop: int) -> str:
    """``data[:stop]`` decoded as UTF-8 (undecodable bytes become U+FFFD), without a copy of the bytes."""
    with memoryview(data) as whole, whole[:stop] as piece:
        return str(piece, "utf-8", "replace")


# ---------------------------------------------------------------------------------------------------------
# Exports
# ---------------------------------------------------------------------------------------------------------


class _Broken(Exception):
    """Where an export stops being readable, and why; turned into the ConfigurationError with the count."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(reason)
        self.position = position
        self.reason = reason


class _ExportReader:
    """The text of one or more exports, walked a JSON value at a time over a window of the file.

    ``text[pos:]`` is what is not read yet; what is before ``pos`` is dropped when more is read, keeping
    the line and column where the window starts so that positions can still be named.
    """

    def __init__(self, source: Iterator[bytes], head: bytes, name: str, part_size: int) -> None:
        self.source = source
        self.name = name
        self.part_size = part_size
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = self.decoder.decode(head.removeprefix(_BOM))
        self.pos = 0
        self.ended = False
        self.line, self.column = 1, 1  # of text[0]
        self.dropped = 0  # characters before text[0]
        self.count = 0  # events read
        self.started = 0  # where the last value read starts, counted from the start of the file
        self.rows = EventRows()

    # --- the window -------------------------------------------------------------------------------------

    def more(self) -> bool:
        """Read another block into the window; False at the end of the file."""
        if self.ended:
            return False
        block = next(self.source, None)
        self.ended = block is None
        added = self.decoder.decode(block or b"", final=self.ended)
        if not added:
            return not self.ended  # the window stays as it is: positions in it still hold
        self._drop()
        self.text += added
        return True

    def _drop(self) -> None:
        keep = self.pos
        newlines = self.text.count("\n", 0, keep)
        if newlines:
            self.line += newlines
            self.column = keep - self.text.rfind("\n", 0, keep)
        else:
            self.column += keep
        self.dropped += keep
        self.text = self.text[keep:]
        self.pos = 0

    def where(self, position: int) -> str:
        """``line L, column C`` of ``text[position]``."""
        newlines = self.text.count("\n", 0, position)
        if newlines:
            column = position - self.text.rfind("\n", 0, position)
            return f"line {self.line + newlines:,}, column {column:,}"
        return f"line {self.line:,}, column {self.column + position:,}"

    def peek(self) -> str | None:
        """The next character after white space (not consumed), or None at the end of the file."""
        while True:
            self.pos = _SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]  # always matches
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return None

    def expect(self, chars: str, inside: str) -> str:
        """The next character, which must be one of ``chars``; consumed."""
        char = self.peek()
        if char is None:
            raise _Broken(self.pos, f"the file ends inside {inside}")
        if char not in chars:
            wanted = " or ".join(f"'{c}'" for c in chars)
            raise _Broken(self.pos, f"expected {wanted} in {inside}, found {char!r}")
        self.pos += 1
        return char

    def value(self, inside: str) -> Any:
        """The JSON value at the next character, read whole (the window grows until it holds it)."""
        self.peek()
        self.started = self.dropped + self.pos  # the window keeps it: more() drops only what is before it
        while True:
            failure: json.JSONDecodeError | None
            try:
                found, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                failure = exc
            except RecursionError:
                raise _Broken(
                    self.pos, f"{inside} nests deeper than Python's JSON decoder can follow"
                ) from None
            else:
                numeric = isinstance(found, int | float) and not isinstance(found, bool)
                if end < len(self.text) or not numeric or self.ended:  # a number may go on in the next block
                    if end - self.pos > MAX_EVENT_SIZE:
                        break
                    self.pos = end
                    return found
                failure = None
            if len(self.text) - self.pos > MAX_EVENT_SIZE:  # not whole in the window: longer still
                break
            if not self.more():
                if failure is None:
                    continue  # the number was whole after all
                if failure.pos >= len(self.text.rstrip()) or failure.msg.startswith("Unterminated string"):
                    raise _Broken(len(self.text), f"the file ends inside {inside}") from None
                raise _Broken(failure.pos, f"{inside} is not JSON ({failure.msg})") from None
        raise _Broken(self.pos, f"{inside} is longer than {_bound()}")

    # --- the documents ----------------------------------------------------------------------------------

    def parts(self) -> Iterator[pd.DataFrame]:
        taken = 0  # characters of the file up to the end of the last part
        try:
            for _ in self._events():
                if len(self.rows) >= PART_EVENTS or self.dropped + self.pos - taken >= self.part_size:
                    taken = self.dropped + self.pos
                    yield self.rows.take()
        except _Broken as broken:
            if len(self.rows):
                yield self.rows.take()
            raise ConfigurationError(
                f"{self.name} is not a whole export: at {self.where(broken.position)}, {broken.reason}; "
                f"{read_before(self.count)}."
            ) from None
        except ConfigurationError as refused:  # an event refused (EventRows names it and where), or no events
            if len(self.rows):
                yield self.rows.take()
            raise ConfigurationError(
                f"{self.name}: {refused} {read_before(self.count).capitalize()}."
            ) from None
        if len(self.rows) or not self.count:
            yield self.rows.take()

    def _events(self) -> Iterator[None]:
        """Each event as it is added to ``rows``, over every document of the file."""
        documents = 0
        while (char := self.peek()) is not None:
            if documents and char not in "{[":
                raise _Broken(self.pos, f"expected another export or the end of the file, found {char!r}")
            documents += 1
            if self.expect("{[", "the file") == "[":
                yield from self._list(None)
            else:
                yield from self._object()

    def _object(self) -> Iterator[None]:
        group: str | None = None
        keys: list[str] = []
        while True:
            if keys and self.expect(",}", "the export's keys") == "}":
                break
            if not keys and self.peek() == "}":
                self.pos += 1
                break
            key = self.value("the export's keys")
            if not isinstance(key, str):
                raise _Broken(self.pos, "expected a key in the export")
            key_place = self.where(self.started - self.dropped) if key == "logGroupName" else ""
            self.expect(":", "the export's keys")
            keys.append(key)
            if key == "events":
                self.expect("[", 'the export\'s "events"')
                yield from self._list(group)
            else:
                if key == "logGroupName" and "events" in keys:  # the events before it had no group
                    raise ConfigurationError(
                        f'The export\'s "logGroupName" comes after its "events" ({key_place}); put it first, '
                        "or give each event its own logGroupName."
                    )
                value = self.value(f'the export\'s "{key}"')
                if key == "logGroupName" and isinstance(value, str):
                    group = value
        if "events" not in keys:
            shown = ", ".join(sorted(keys)[:5]) or "none"
            raise ConfigurationError(
                f'The export has no "events" list (keys: {shown}); expected the output of '
                "`aws logs filter-log-events`."
            )

    def _list(self, group: str | None) -> Iterator[None]:
        self.rows.log_group = group
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            event = self.value(f"log event {self.count:,}")
            where = _Place(self, self.started)  # worked out only if the event is refused
            if isinstance(event, dict) and "message" not in event:
                raise ConfigurationError(f'Log event {self.count}{where} has no "message".')
            self.rows.add(event, self.count, where)
            self.count += 1
            yield None
            if self.expect(",]", "the events list") == "]":
                return


class _Place:
    """`` (line L, column C)`` of where an event starts, formatted only when an error names it."""

    def __init__(self, reader: _ExportReader, start: int) -> None:
        self.reader = reader
        self.start = start  # counted from the start of the file; still in the reader's window when shown

    def __str__(self) -> str:
        return f" ({self.reader.where(self.start - self.reader.dropped)})"
