"""CloudWatch Logs events into the raw event frame (:data:`RAW_EVENT_COLUMNS`), from what is at hand.

Three ways in, none of which touches the network or the disk: boto3's event dicts
(``filter_log_events`` / ``get_log_events`` pages), the text of an ``aws logs filter-log-events`` JSON
export, and a file of raw log lines already read into a string. Malformed input raises
:class:`~kit.errors.ConfigurationError` with a one-line message, never a traceback from deep inside.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kit import frames
from kit.errors import ConfigurationError
from kit.logparse.columns import RAW_EVENT_COLUMNS, conform, without_surrogates

_KEYS = {
    "log_group": ("logGroupName", "log_group"),
    "log_stream": ("logStreamName", "log_stream"),
    "event_id": ("eventId", "event_id"),
    "timestamp": ("timestamp",),
    "ingestion_time": ("ingestionTime", "ingestion_time"),
    "message": ("message",),
}


def _first(event: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in event:
            return event[key]
    return None


MIN_EPOCH_MS = -9_223_372_036_854
MAX_EPOCH_MS = 9_223_372_036_854
"""The epoch milliseconds a timestamp may have: those the frames' nanosecond times can hold (1677-09-21 to
2262-04-11). Beyond them pandas raises deep inside the parse, or (at -2**63) silently makes NaT."""


def _epoch_ms(value: Any, what: str, index: int, where: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(
            f"Log event {index}{where} has a {what} of type {type(value).__name__}; "
            "expected epoch milliseconds as a number."
        )
    whole = None if isinstance(value, float) and not math.isfinite(value) else int(value)
    if whole is None or not MIN_EPOCH_MS <= whole <= MAX_EPOCH_MS:
        shown = repr(value) if len(repr(value)) <= _SHOWN else f"{repr(value)[:_SHOWN]}…"
        raise ConfigurationError(
            f"Log event {index}{where} has a {what} of {shown}; expected epoch milliseconds from "
            f"{MIN_EPOCH_MS} to {MAX_EPOCH_MS} (the years 1677 to 2262)."
        )
    return whole


_SHOWN = 24  # characters of a bad value shown in an error (a 300-digit number is not read by anyone)

EVENTS_CHUNK = 1 << 16
"""Events turned into Arrow columns at a time by :func:`events_frame`: the Python objects of one chunk are all
that is held as Python at once, so a million events never exist as a million Python strings, and what is
freed after each chunk is reused by the next rather than left scattered across the interpreter's heap."""


class EventRows:
    """Event dicts taken one at a time (checked as they come) and handed out as raw event frames.

    :func:`events_frame` fills one of these a chunk at a time; a reader of a file fills one as it decodes
    the file, so that a bad event is named where the reader still knows where it is (``where``).
    """

    def __init__(self, log_group: str | None = None) -> None:
        self.log_group = log_group
        self._columns = _empty_columns()

    def __len__(self) -> int:
        return len(self._columns["message"])

    def add(self, event: object, index: int, where: object = "") -> None:
        """One event; ``index`` and ``where`` (e.g. " (line 3, column 5)", formatted only when the event is
        refused) name it in an error."""
        _append(self._columns, event, index, where, self.log_group)

    def take(self) -> pd.DataFrame:
        """The events added since the last take, as a raw event frame (:data:`RAW_EVENT_COLUMNS`)."""
        columns, self._columns = self._columns, _empty_columns()
        return _chunk_frame(columns)


def events_frame(events: Iterable[Mapping[str, Any]], log_group: str | None = None) -> pd.DataFrame:
    """One row per event (:data:`RAW_EVENT_COLUMNS`), in the order given.

    ``events`` are boto3 event dicts (``logStreamName``, ``timestamp``, ``message``, ``ingestionTime``,
    ``eventId``; an event's own ``logGroupName`` wins over ``log_group``) or rows already in this frame's
    snake_case names. A missing key is a null; a message that is not text, or a time that is not a number
    of milliseconds in :data:`MIN_EPOCH_MS`..:data:`MAX_EPOCH_MS`, is an error naming the event.
    """
    chunks: list[pd.DataFrame] = []
    rows = EventRows(log_group)
    for index, event in enumerate(events):
        rows.add(event, index)
        if len(rows) == EVENTS_CHUNK:
            chunks.append(rows.take())
    if len(rows) or not chunks:
        chunks.append(rows.take())
    if len(chunks) == 1:
        return chunks[0]
    frame = pd.concat(chunks, ignore_index=True)
    chunks.clear()
    # One Arrow chunk per column, as the parser reads a column's buffers whole.
    whole = pd.DataFrame({name: _one_chunk(frame[name]) for name in RAW_EVENT_COLUMNS}, copy=False)
    del frame
    pa.default_memory_pool().release_unused()  # the chunks' memory goes back now, not when the pool decides
    return whole


def _empty_columns() -> dict[str, list[Any]]:
    return {name: [] for name in RAW_EVENT_COLUMNS}


def _append(
    columns: dict[str, list[Any]], event: object, index: int, where: object, log_group: str | None
) -> None:
    if not isinstance(event, Mapping):
        raise ConfigurationError(
            f"Log event {index}{where} is a {type(event).__name__}, not an object with a message and a "
            "timestamp."
        )
    message = _first(event, _KEYS["message"])
    if message is not None and not isinstance(message, str):
        raise ConfigurationError(
            f"Log event {index}{where} has a message of type {type(message).__name__}; expected text."
        )
    timestamp = _epoch_ms(_first(event, _KEYS["timestamp"]), "timestamp", index, where)
    ingestion_time = _epoch_ms(_first(event, _KEYS["ingestion_time"]), "ingestionTime", index, where)
    group = _first(event, _KEYS["log_group"])
    columns["log_group"].append(group if group is not None else log_group)
    columns["log_stream"].append(_first(event, _KEYS["log_stream"]))
    event_id = _first(event, _KEYS["event_id"])
    columns["event_id"].append(None if event_id is None else str(event_id))
    columns["timestamp"].append(timestamp)
    columns["ingestion_time"].append(ingestion_time)
    columns["message"].append(message)


def _chunk_frame(columns: dict[str, list[Any]]) -> pd.DataFrame:
    if not columns["message"]:
        return frames.empty(RAW_EVENT_COLUMNS)
    frame = pd.DataFrame(
        {
            name: pd.array(values, dtype=RAW_EVENT_COLUMNS[name])
            if RAW_EVENT_COLUMNS[name] == "Int64"
            else pd.Series(values, dtype=object)
            for name, values in columns.items()
        }
    )
    return conform(frame, RAW_EVENT_COLUMNS)


def _one_chunk(column: pd.Series) -> pd.Series:
    if not isinstance(column.dtype, pd.StringDtype):  # Int64: one NumPy array already
        return column
    arrow = pa.array(column.array)  # an Arrow-backed column gives its own chunks, without a copy
    if isinstance(arrow, pa.ChunkedArray) and arrow.num_chunks > 1:
        return pd.Series(pd.array(arrow.combine_chunks(), dtype=column.dtype), copy=False)
    return column


def read_export(json_text: str | bytes, log_group: str | None = None) -> pd.DataFrame:
    """The events of an ``aws logs filter-log-events`` (or ``get-log-events``) JSON export.

    Accepts ``{"events": [...]}`` or a bare list of events. Anything else raises ConfigurationError.
    """
    try:
        document = json.loads(json_text)
    except (ValueError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigurationError(
            f"The log export is not JSON ({reason}); expected the output of `aws logs filter-log-events`."
        ) from exc
    if isinstance(document, dict):
        if "events" not in document:
            keys = ", ".join(sorted(map(str, document))[:5]) or "none"
            raise ConfigurationError(
                f'The log export has no "events" list (keys: {keys}); expected the output of '
                "`aws logs filter-log-events`."
            )
        events = document["events"]
        group = document.get("logGroupName") if isinstance(document.get("logGroupName"), str) else None
        log_group = log_group or group
    else:
        events = document
    if not isinstance(events, list):
        raise ConfigurationError(
            f'The log export\'s "events" is a {type(events).__name__}, not a list of events.'
        )
    for index, event in enumerate(events):
        if isinstance(event, dict) and "message" not in event:
            raise ConfigurationError(f'Log event {index} of the export has no "message".')
    return events_frame(events, log_group=log_group)


def read_raw_lines(
    text: str | bytes, log_group: str | None = None, log_stream: str | None = None
) -> pd.DataFrame:
    """One event per line of ``text`` (a saved log file), without timestamps (ts will be NaT).

    Lines are split on ``\\n`` only: a ``\\r`` inside a line is part of it (the Python runtime joins a
    traceback's lines with ``\\r`` on stdout), while a ``\\r\\n`` line end is dropped. Bytes are decoded
    as UTF-8, undecodable bytes becoming U+FFFD. Pass ``log_group`` (e.g. ``/aws/lambda/<function>``)
    when the file came from one group, so plain ``print`` lines are recognised as Lambda output.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise ConfigurationError(f"Raw log lines must be text, not {type(text).__name__}.")
    if not text:
        return frames.empty(RAW_EVENT_COLUMNS)
    # Split by Arrow into one array of lines: no Python string (or dict) per line, which for a file of
    # short lines costs several times the file's size.
    try:
        whole = pa.array([text], pa.large_string())
    except UnicodeEncodeError:  # a lone surrogate (a str from elsewhere) has no UTF-8 form
        whole = pa.array([without_surrogates(text)], pa.large_string())
    messages = pc.list_flatten(pc.split_pattern(whole, "\n"))
    del whole
    if text.endswith("\n"):
        messages = messages.slice(0, len(messages) - 1)
    if "\r" in text:
        messages = pc.replace_substring_regex(messages, "\r$", "")  # one \r before the line's end, as RE2's $
    count = len(messages)
    frame = pd.DataFrame(
        {
            "log_group": pd.Series(log_group, index=range(count), dtype="string"),
            "log_stream": pd.Series(log_stream, index=range(count), dtype="string"),
            "message": pd.Series(pd.array(messages, dtype="string"), copy=False),
        },
        copy=False,
    )
    return conform(frame, RAW_EVENT_COLUMNS)


def ensure_events(events: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """``events`` as the raw event frame: a frame is checked and completed, anything else goes through
    :func:`events_frame`. A frame whose ``timestamp`` is already datetime is converted back to ms."""
    if not isinstance(events, pd.DataFrame):
        return events_frame(events)
    if "message" not in events.columns:
        raise ConfigurationError(
            "The events frame has no 'message' column; build it with kit.logparse.events_frame()."
        )
    frame = events.copy(deep=False)  # columns are replaced, never written into: the caller's frame is safe
    for name in ("timestamp", "ingestion_time"):
        if name in frame.columns and pd.api.types.is_datetime64_any_dtype(frame[name]):
            stamps = pd.to_datetime(frame[name], utc=True)
            millis = (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
            frame[name] = millis.astype("Int64")
    return conform(frame, RAW_EVENT_COLUMNS)
