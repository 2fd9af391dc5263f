"""Writes the lab's log lines to CloudWatch Logs (moto), the way Lambda and API Gateway deliver theirs.

Producers (the Lambda runtime, the gateway) hand over ``(log group, log stream, [(epoch ms, message), ...])``
and return at once; one background thread batches the events per stream and calls ``PutLogEvents``, creating
groups and streams on first use. Nothing is dropped silently: a batch that fails is retried once and then
reported on the ``kit.lab`` logger with its group, stream and error, and events the call rejects (too old, too
new, expired: ``rejectedLogEventsInfo``) are reported there too. ``flush()`` waits until everything handed
over so far has been written, so tests and the diagnosis can read the logs back right after an event.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from kit.errors import error_code

log = logging.getLogger("kit.lab")

LogEvents = list[tuple[int, str]]
# PutLogEvents limits: 10,000 events and 1,048,576 bytes (message bytes + 26 per event) per call.
MAX_EVENTS = 10_000
MAX_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_MESSAGE_BYTES = 256 * 1024
BATCH_WINDOW_S = 0.1


CUT_MARK = " [truncated by kit]"


def cut(message: str) -> str:
    """``message`` as one CloudWatch event: at most :data:`MAX_MESSAGE_BYTES` bytes of UTF-8.

    A longer one is cut at the last whole character that leaves room for :data:`CUT_MARK`, which ends it so
    the cut is never silent. The 256 KB is CloudWatch's quota per event when Lambda's limits were written
    (since raised to 1 MB) and the limit Lambda's docs give for a log line; how Lambda marks a cut line is
    not in our notes, so the mark is the kit's own [inferred].
    """
    encoded = message.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_MESSAGE_BYTES:
        return message
    room = MAX_MESSAGE_BYTES - len(CUT_MARK.encode())
    return encoded[:room].decode("utf-8", "ignore") + CUT_MARK


def batches(events: LogEvents) -> list[LogEvents]:
    """Split events (sorted by time, as PutLogEvents requires) into batches within the API's limits:
    :data:`MAX_EVENTS` events and :data:`MAX_BYTES` bytes (each event's UTF-8 plus :data:`EVENT_OVERHEAD`),
    each event cut to :data:`MAX_MESSAGE_BYTES` (:func:`cut`)."""
    ordered = sorted(events, key=lambda event: event[0])
    out: list[LogEvents] = []
    current: LogEvents = []
    size = 0
    for timestamp, original in ordered:
        message = cut(original)
        encoded = message.encode("utf-8", "surrogatepass")
        cost = len(encoded) + EVENT_OVERHEAD
        if current and (len(current) >= MAX_EVENTS or size + cost > MAX_BYTES):
            out.append(current)
            current, size = [], 0
        current.append((timestamp, message))
        size += cost
    if current:
        out.append(current)
    return out


# rejectedLogEventsInfo's fields, and what each says of the batch (moto sets the first two; AWS all three).
REJECTIONS: dict[str, tuple[str, str]] = {
    "tooOldLogEventEndIndex": ("up to", "too old (over 14 days)"),
    "tooNewLogEventStartIndex": ("from", "too new (over 2 h ahead)"),
    "expiredLogEventEndIndex": ("up to", "expired (past the group's retention)"),
}


def rejection_text(group: str, stream: str, batch_size: int, rejected: Mapping[str, Any]) -> str:
    """One line saying what ``PutLogEvents`` refused of a batch (``rejectedLogEventsInfo``); "" if nothing.

    The indices are the call's own, as given: moto's too-new index is its last too-new event, not its first.
    """
    parts = [
        f"{REJECTIONS[name][0]} index {rejected[name]} {REJECTIONS[name][1]}"
        for name in REJECTIONS
        if rejected.get(name) is not None
    ]
    parts += [f"{name}={value}" for name, value in rejected.items() if name not in REJECTIONS]
    if not parts:
        return ""
    return (
        f"PutLogEvents to {group} / {stream} rejected events of a batch of {batch_size}: {'; '.join(parts)}; "
        "those events are not stored"
    )


class MotoLogs:
    """The three CloudWatch Logs calls the writer makes, served by moto's backend in this process.

    The lab's services deliver their own logs, as Lambda and API Gateway do on AWS: not as a caller of the
    public API but into the store that API reads. Through HTTP each ``PutLogEvents`` cost moto's dev server a
    new connection and thread (werkzeug closes every connection) and a round of request parsing, about a
    millisecond of the lab's CPU per ``$connect``; here it costs moto's own bookkeeping only. Every line still
    lands where ``FilterLogEvents``, ``GetLogEvents`` and Logs Insights read it.

    Creating a group or stream that exists leaves it as it is (what the writer does with the API's
    ``ResourceAlreadyExistsException``); writing to a missing one raises moto's ``ResourceNotFoundException``,
    which the writer retries once after creating them, as it does an API error.
    """

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region

    def _backend(self) -> Any:
        from moto.logs.models import logs_backends  # the lab runs moto in-process (kit.lab.engines)

        return logs_backends[self.account_id][self.region]

    def create_log_group(self, *, logGroupName: str) -> None:
        backend = self._backend()
        if logGroupName not in backend.groups:
            backend.create_log_group(logGroupName, {})

    def create_log_stream(self, *, logGroupName: str, logStreamName: str) -> None:
        backend = self._backend()
        group = backend.groups.get(logGroupName)
        if group is None or logStreamName not in group.streams:
            backend.create_log_stream(logGroupName, logStreamName)

    def put_log_events(
        self,
        *,
        logGroupName: str,
        logStreamName: str,
        logEvents: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """What the API answers: the sequence token and, when moto refused some events (its window is 14 days
        back to 2 hours ahead), ``rejectedLogEventsInfo``."""
        token, rejected = self._backend().put_log_events(logGroupName, logStreamName, logEvents)
        answer: dict[str, Any] = {"nextSequenceToken": token}
        if rejected:
            answer["rejectedLogEventsInfo"] = rejected
        return answer


class LogWriter:
    """Background writer of log events to CloudWatch Logs through a ``logs`` client or :class:`MotoLogs`."""

    def __init__(self, logs_client: Any) -> None:
        self._client = logs_client
        self._queue: queue.Queue[tuple[str, str, LogEvents] | None] = queue.Queue()
        self._known_groups: set[str] = set()
        self._known_streams: set[tuple[str, str]] = set()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="kit-log-writer", daemon=True)
        self._thread.start()

    def write(self, group: str, stream: str, events: LogEvents) -> None:
        """Queue events for ``group``/``stream``; returns immediately."""
        if not events:
            return
        with self._idle:
            self._pending += 1
        self._queue.put((group, stream, list(events)))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event has been written (or reported); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def close(self) -> None:
        self.flush()
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            # Let producers add to the batch for a moment: one PutLogEvents per ~0.1 s instead of one per
            # line keeps moto (in this process) from eating the lab's CPU. flush() still waits for it all.
            time.sleep(BATCH_WINDOW_S)
            grouped: dict[tuple[str, str], LogEvents] = defaultdict(list)
            taken = 1
            grouped[(item[0], item[1])].extend(item[2])
            # Drain what else is waiting so one PutLogEvents carries many producers' lines.
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                grouped[(more[0], more[1])].extend(more[2])
                taken += 1
            for (group, stream), events in grouped.items():
                self._put(group, stream, events)
            with self._idle:
                self._pending -= taken
                self._idle.notify_all()

    def ensure_group(self, group: str) -> None:
        if group in self._known_groups:
            return
        try:
            self._client.create_log_group(logGroupName=group)
        except ClientError as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise
        self._known_groups.add(group)

    def _ensure_stream(self, group: str, stream: str) -> None:
        if (group, stream) in self._known_streams:
            return
        self.ensure_group(group)
        try:
            self._client.create_log_stream(logGroupName=group, logStreamName=stream)
        except ClientError as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise
        self._known_streams.add((group, stream))

    def _put(self, group: str, stream: str, events: LogEvents) -> None:
        for batch in batches(events):
            for attempt in (1, 2):
                try:
                    self._ensure_stream(group, stream)
                    answer = self._client.put_log_events(
                        logGroupName=group,
                        logStreamName=stream,
                        logEvents=[{"timestamp": ts, "message": message} for ts, message in batch],
                    )
                    refused = rejection_text(
                        group, stream, len(batch), answer.get("rejectedLogEventsInfo") or {}
                    )
                    if refused:
                        log.warning("%s", refused)
                    break
                except Exception as exc:  # a log write must never take the lab down; report it instead
                    if attempt == 2:
                        log.error(
                            "could not write %d log events to %s / %s: %s", len(batch), group, stream, exc
                        )
                    else:
                        self._known_streams.discard((group, stream))
                        self._known_groups.discard(group)
