"""The parse of an input read a part at a time, with the answers :func:`~kit.logparse.parse` gives it whole.

:class:`PartsParse` takes a way to read the input (a callable giving raw event frames, in order, each time
it is called: :func:`kit.logparse.reading.file_parts` over a file) and yields the normalised log frame
(:data:`~kit.logparse.columns.LOG_COLUMNS`) a part at a time. Two answers of the parse depend on more
than their own line, and are carried from part to part:

* **a stream's Lambda lines.** A line no pattern claims (a plain ``print``) is Lambda output when its
  stream (log group and stream) has a Lambda-shaped line anywhere in the input, before or after it. The
  streams known to have one are carried forward. When a part has unclaimed lines in a stream not (yet)
  known, the rest of the input is read once, ahead, only to learn which streams have Lambda lines
  (:func:`~kit.logparse.vectorised.parser.lambda_shaped`), and the part is parsed again knowing them. That
  happens at most once per input (after it every stream is known), and never for a file whose first part
  shows its streams' Lambda lines: the usual case reads the input once, the worst case twice. An input that
  cannot be read twice (a pipe) is not read ahead: ``unsettled`` counts the lines that may read differently.
* **a request id carried from START.** A Lambda line without its own request id takes the one of the
  START before it in its stream, ordered by time (file order for lines without one). Carried forward:
  each stream's open request id and its latest time. This is the whole input's answer whenever each
  stream comes in time order across the cuts between parts, which raw lines (no times) and CloudWatch's
  own answers do; an event older than one of its stream in an earlier part is counted in ``out_of_order``
  (its id, and those of lines before it, are then carried in file order).

Must not: hold more than one part's frames at a time, or do I/O itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kit import frames
from kit.errors import ConfigurationError
from kit.logparse import patterns as p
from kit.logparse.columns import LOG_COLUMNS
from kit.logparse.vectorised import parser as vectorised

Read = Callable[[], Iterator[pd.DataFrame]]
"""A fresh pass over the input: its raw event frames, in order, the same each time."""

StreamKey = tuple[str | None, str | None]  # (log group, log stream); None where the event has none
_MARKERS = ("start", "end", "report", "init_start")  # where a carried request id opens or closes
_NO_TIME = -1.0  # a missing timestamp sorts first in its stream, as in the whole parse


@dataclass
class _Streams:
    """One part's streams: each row's stream as a number, and each number's key."""

    codes: np.ndarray
    keys: list[StreamKey]

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _Streams:
        group_codes, groups = pd.factorize(frame["log_group"])  # -1 for a missing one
        stream_codes, streams = pd.factorize(frame["log_stream"])
        width = len(streams) + 1
        combined = (group_codes.astype(np.int64) + 1) * width + (stream_codes + 1)
        codes, uniques = pd.factorize(combined)
        keys: list[StreamKey] = []
        for value in uniques.tolist():
            group, stream = divmod(int(value), width)
            keys.append(
                (str(groups[group - 1]) if group else None, str(streams[stream - 1]) if stream else None)
            )
        return cls(np.asarray(codes, dtype=np.int64), keys)

    def rows_in(self, known: set[StreamKey]) -> np.ndarray:
        return self._per_row([key in known for key in self.keys])

    def keys_of(self, rows: np.ndarray) -> set[StreamKey]:
        return {self.keys[code] for code in np.unique(self.codes[rows]).tolist()}

    def other_group(self) -> np.ndarray:
        """Rows whose log group does not say Lambda or execution log: their stream can make them Lambda."""
        return self._per_row([p.group_source(key[0]) is None for key in self.keys])

    def _per_row(self, flags: list[bool]) -> np.ndarray:
        per_row: np.ndarray = np.array(flags, dtype=bool)[self.codes]
        return per_row


@dataclass
class PartsParse:
    """Iterate to get the parse, a part at a time; the counts are final once the iteration ends."""

    read: Read
    can_reread: bool = True
    lambda_streams: set[StreamKey] = field(default_factory=set)  # streams known to have Lambda lines
    all_known: bool = False  # whether lambda_streams holds the whole input's (after a read ahead)
    read_twice: bool = False
    unsettled: int = 0  # lines written as unknown that Lambda lines later in their stream might have claimed
    out_of_order: int = 0  # events older than one of their stream in an earlier part
    open_ids: dict[StreamKey, str | None] = field(default_factory=dict)
    latest: dict[StreamKey, float] = field(default_factory=dict)

    def __iter__(self) -> Iterator[pd.DataFrame]:
        given = False
        for index, frame in enumerate(self.read()):
            if len(frame) == 0:
                continue
            parsed = self._parse(index, frame)
            given = True
            yield parsed
        if not given:
            yield frames.empty(LOG_COLUMNS)

    def _parse(self, index: int, frame: pd.DataFrame) -> pd.DataFrame:
        streams = _Streams.of(frame)
        parsed = vectorised.parse_part(frame, streams.rows_in(self.lambda_streams))
        other = streams.other_group()
        source = parsed["source"].to_numpy(dtype=object)
        self.lambda_streams |= streams.keys_of(other & (source == "lambda"))
        if not self.all_known:
            waiting = other & (source == "unknown") & ~streams.rows_in(self.lambda_streams)
            if waiting.any():
                if self.can_reread:
                    self._read_ahead(index)
                    if streams.keys_of(waiting) & self.lambda_streams:
                        parsed = vectorised.parse_part(frame, streams.rows_in(self.lambda_streams))
                else:
                    self.unsettled += int(waiting.sum())
        self._carry(frame, parsed, streams)
        return parsed

    def _read_ahead(self, index: int) -> None:
        """Learn which streams of the rest of the input have Lambda lines (once: see the module docs)."""
        self.read_twice = self.all_known = True
        try:
            for later, frame in enumerate(self.read()):
                if later <= index or len(frame) == 0:
                    continue
                streams = _Streams.of(frame)
                shaped = vectorised.lambda_shaped(frame) & streams.other_group()
                self.lambda_streams |= streams.keys_of(shaped)
        except ConfigurationError:
            return  # the input breaks there; the reading itself will say so when it gets there

    def _carry(self, frame: pd.DataFrame, parsed: pd.DataFrame, streams: _Streams) -> None:
        """Give the part's lines before its first START (etc.) of their stream the id open at its start,
        and keep each stream's id open at its end and latest time for the next part."""
        size = len(frame)
        stamps = frame["timestamp"].to_numpy(dtype="float64", na_value=_NO_TIME)
        in_lambda = parsed["source"].to_numpy(dtype=object) == "lambda"
        latest = np.array([self.latest.get(key, _NO_TIME) for key in streams.keys])[streams.codes]
        self.out_of_order += int((in_lambda & (stamps < latest)).sum())  # only Lambda lines carry ids
        order = np.lexsort((stamps, streams.codes))  # stable: file order among equal times
        codes = streams.codes[order]
        is_lambda = in_lambda[order]
        kinds = parsed["kind"].to_numpy(dtype=object)[order]
        marker = is_lambda & np.isin(kinds, _MARKERS)
        first_of_stream = np.ones(size, dtype=bool)
        first_of_stream[1:] = codes[1:] != codes[:-1]
        counted = np.cumsum(marker)
        stream_start = np.maximum.accumulate(np.where(first_of_stream, np.arange(size), 0))
        markers_so_far = counted - counted[stream_start] + marker[stream_start]
        request_ids = parsed["request_id"]
        missing = request_ids.isna().to_numpy()[order]
        waiting = order[is_lambda & missing & (markers_so_far == 0)]
        carried = [self.open_ids.get(streams.keys[code]) for code in streams.codes[waiting].tolist()]
        given = np.array([value is not None for value in carried], dtype=bool)
        if given.any():
            column = request_ids.copy()
            column.iloc[waiting[given]] = [value for value in carried if value is not None]
            parsed["request_id"] = column
        # Each stream's last marker (in time order) decides what is open after this part.
        last_rows = order[marker]
        last_codes = codes[marker]
        if len(last_rows):
            reverse_first = np.unique(last_codes[::-1], return_index=True)[1]
            for position in reverse_first.tolist():
                row = int(last_rows[::-1][position])
                key = streams.keys[int(last_codes[::-1][position])]
                opened = parsed["kind"].iat[row] == "start" and not pd.isna(request_ids.iat[row])
                self.open_ids[key] = str(request_ids.iat[row]) if opened else None
        newest = pd.Series(stamps).groupby(streams.codes).max()
        for code, stamp in newest.items():
            key = streams.keys[int(code)]
            self.latest[key] = max(self.latest.get(key, _NO_TIME), float(stamp))
