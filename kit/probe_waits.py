"""The probe's waits, as plain code: each ends on the event it waits for, on the evidence that the event will
never come, and only otherwise at its bound.

:mod:`kit.probe` polls the table, listens for frames and reads the API's logs, and tells a wait what it got
(``TableWait.table_read``, ``DeliveryWait.delivered``, ``logs_read``); the wait says whether it is over, how
long to pause, and each client's ``WaitOutcome``, which :mod:`kit.probe_core`'s verdicts turn into rows.

A wait ends on the event it waits for, or when the evidence says the event will never come, and only
otherwise at its bound, which remains as a safety limit:

- the item (``item-stored``): the gateway's logs show the client's ``$connect`` ended (in the execution log,
  the request whose ``Client [UserAgent: ...] is connecting`` line names the client's own user agent has its
  ``connected ... successfully`` or ``rejected`` line; or an access-log record carries that user agent), and
  a table read that started after those logs were read still finds no item;
- the index entry (``index-visible``): an item without the probe's ``workspaceId`` can never be in the sparse
  index under it, so one Query settles it; an item with it waits for the index (eventually consistent);
- the removal (``item-removed``): the logs show the connection's ``$disconnect`` ended, then one more read;
- a broadcast (``deliver-<action>``): the sender got an error frame for it, or the logs show the sender's
  message handled, and ``DELIVERY_GRACE_S`` passed without the missing frames.

Why one more read is enough (the grace for the table): the gateway logs a request only after its integration
returned, so a write the handler made is done before the line exists; CloudWatch delivers the line a batch
later (0.1 s in the lab, typically a second or more on AWS); and the probe's reads are strongly consistent
(``ConsistentRead``), so a read that starts after the line was read sees every write made before it. The
index is eventually consistent, which is why ``index-visible`` has no log evidence to end it early.
Broadcasts leave the gateway while the handler runs (one ``@connections`` call each), so once the sender's
message is logged as handled every frame it causes is on its way; a delivery wait still listens
``DELIVERY_GRACE_S`` after learning that (loopback takes milliseconds, and the evidence itself comes at least
one log batch after the frames left). No wait reads the logs before ``LOG_FIRST_READ_S``, nor more often
than ``LOG_READ_INTERVAL_S``: waits that end on their event never pay for a read. On the lab, whose log
batches and frame writes the kit knows, the first read and the grace are shorter (``ProbeTimeouts.pace``).

When the logs cannot be read (no API id, logging off, no permission), a wait runs to its bound and its row
says why. Lines are matched to clients only by facts that are the probe's own (its per-client user agent,
the connection ids of its items, request ids of its own connects), never by time alone, so another user's
traffic can never end a wait.

This module must not do I/O: no sockets, no boto3, no threads, no clock (times come in as
``time.monotonic()`` seconds).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Literal

LOG_READ_INTERVAL_S: Final = 0.5  # between two reads of the API's logs in one wait (FilterLogEvents: 5/s)
# No wait reads the logs before this: CloudWatch has a request's lines a batch after it ended at the soonest
# (0.1 s in the lab, seconds on AWS); a healthy stack's waits end on their event before it (items at the
# first poll, broadcasts in ~0.1 s), and the table's first polls (50-400 ms) keep the pace their latencies
# are measured at.
LOG_FIRST_READ_S: Final = 0.5
DELIVERY_GRACE_S: Final = 0.5  # listening on after the logs say a sender's message was handled
# The lab's own pace, which it can promise: its log writer puts a request's lines into CloudWatch within one
# 0.1 s batch of the request's end, and its gateway writes a broadcast frame to the socket before it answers
# the handler's @connections call, so every frame is on loopback before the handler's end is even logged.
LAB_LOG_FIRST_READ_S: Final = 0.2
LAB_DELIVERY_GRACE_S: Final = 0.1


def backoff_delays(initial_s: float, maximum_s: float, factor: float = 2.0) -> Iterator[float]:
    """``initial, initial*factor, ...`` capped at ``maximum``: the pauses between polls, forever."""
    delay = initial_s
    while True:
        yield min(delay, maximum_s)
        delay = min(delay * factor, maximum_s)


@dataclass(frozen=True)
class WaitOutcome:
    """How a wait ended for one client: ``seen`` at ``at``; ``never`` (``note`` names the evidence, then a
    look after it found nothing); or ``bound``, the safety limit (``note``: why the logs could not end it)."""

    end: Literal["seen", "never", "bound"]
    at: float | None = None
    note: str | None = None


class _Wait:
    """What both waits share: pending clients, a bound, log reads, and what the evidence said."""

    def __init__(
        self, clients: Iterable[int], *, now: float, bound_s: float, first_read_s: float = LOG_FIRST_READ_S
    ) -> None:
        self.pending = set(clients)
        self.first_read_s = first_read_s
        self.started_at = now
        self.bound_s = bound_s
        self.deadline = now + bound_s
        self.seen: dict[int, float] = {}
        self.ended: dict[int, float] = {}  # when the probe learned the awaited event can no longer come
        self.why: dict[int, str] = {}  # ... and from what
        self.unreadable: str | None = None
        self.missing: str | None = None
        self.last_log_read: float | None = None

    def given_up(self, now: float) -> set[int]:
        raise NotImplementedError

    def open(self, now: float) -> set[int]:
        """The clients still waited for."""
        return self.pending - self.seen.keys() - self.given_up(now)

    def over(self, now: float) -> bool:
        return not self.open(now) or now >= self.deadline

    def next_log_read(self) -> float:
        """When the logs may be read next: ``first_read_s`` into the wait, then every interval."""
        last = self.last_log_read
        return self.started_at + self.first_read_s if last is None else last + LOG_READ_INTERVAL_S

    def wants_logs(self, now: float) -> bool:
        """Whether reading the logs could end the wait sooner: someone is waited for without evidence."""
        return self.unreadable is None and bool(self.open(now) - self.ended.keys())

    def logs_due(self, now: float) -> bool:
        """Whether to read the logs now: they could help, and it is not too soon."""
        return self.wants_logs(now) and now >= self.next_log_read()

    def logs_read(self, now: float, ended: Iterable[int], why: str) -> None:
        """The logs were read at ``now``; they say the events of ``ended`` are over (``why``, in words)."""
        self.last_log_read = now
        self.mark_ended(now, ended, why)

    def mark_ended(self, now: float, ended: Iterable[int], why: str) -> None:
        """The events of ``ended`` can no longer come, as ``why`` says (learned at ``now``)."""
        for client in set(ended) & self.pending:
            if client not in self.seen and client not in self.ended:
                self.ended[client], self.why[client] = now, why

    def logs_unreadable(self, reason: str) -> None:
        """The logs cannot say anything in this wait: it runs to its bound, and the rows say why."""
        self.unreadable = reason

    def logs_missing(self, reason: str | None) -> None:
        """What the last read found missing (None: nothing); said if the wait then runs to its bound."""
        self.missing = reason

    def _bound(self) -> WaitOutcome:
        reason = self.unreadable or self.missing
        note = (
            f"the gateway's logs could not be read: {reason}; so the probe waited its full {self.bound_s:g} s"
            if reason
            else None
        )
        return WaitOutcome("bound", self.deadline, note)


class TableWait(_Wait):
    """Waiting, per client, for something in the table: an item to appear, to reach the index, to go.

    ``table_read(started, finished, now)`` after each read (``started``: when it began); ``logs_read`` when
    the logs say a client's event is over; ``mark_ended`` for what is known never to come before any read
    (an item the index cannot hold). A client is given up (``never``) once a read that began after its
    evidence was learned still did not see it.
    """

    def __init__(
        self,
        clients: Iterable[int],
        *,
        now: float,
        bound_s: float,
        logs: bool = True,
        first_read_s: float = LOG_FIRST_READ_S,
    ) -> None:
        super().__init__(clients, now=now, bound_s=bound_s, first_read_s=first_read_s)
        self.never: dict[int, float] = {}
        self.follows_logs = logs  # False: no log line can end this wait (the index)

    def given_up(self, now: float) -> set[int]:
        return set(self.never)

    def table_read(self, started: float, finished: set[int], now: float) -> None:
        for client in finished & self.pending:
            self.seen.setdefault(client, now)
        for client, ended_at in self.ended.items():
            if client not in self.seen and ended_at <= started:
                self.never.setdefault(client, now)

    def logs_due(self, now: float) -> bool:
        return self.follows_logs and super().logs_due(now)

    def pause(self, now: float, backoff_s: float) -> float:
        """How long to sleep before the next read: none when evidence awaits its confirming read, and no
        longer than until the logs are due again (they are read after a table read)."""
        waiting = self.open(now)
        if any(client in waiting for client in self.ended):
            return 0.0
        moments = [now + backoff_s, self.deadline]
        if self.follows_logs and self.wants_logs(now):
            moments.append(self.next_log_read())
        return max(0.0, min(moments) - now)

    def outcome(self, client: int) -> WaitOutcome:
        if client in self.seen:
            return WaitOutcome("seen", self.seen[client])
        if client in self.never:
            return WaitOutcome("never", self.never[client], self.why[client])
        return self._bound()


class DeliveryWait(_Wait):
    """Waiting for each sender's broadcast to reach every client that was open when it sent.

    ``delivered(now, complete)`` after each look at the frames; ``mark_ended`` when a sender got an error
    frame, ``logs_read`` when the logs show its message handled; such a sender is given up ``grace_s``
    later if its broadcast still has not reached everyone.
    """

    def __init__(
        self,
        senders: Iterable[int],
        *,
        now: float,
        bound_s: float,
        grace_s: float = DELIVERY_GRACE_S,
        first_read_s: float = LOG_FIRST_READ_S,
    ) -> None:
        super().__init__(senders, now=now, bound_s=bound_s, first_read_s=first_read_s)
        self.grace_s = grace_s

    def given_up(self, now: float) -> set[int]:
        return {s for s, at in self.ended.items() if s not in self.seen and now >= at + self.grace_s}

    def delivered(self, now: float, complete: set[int]) -> None:
        for sender in complete & self.pending:
            self.seen.setdefault(sender, now)

    def pause(self, now: float) -> float:
        """How long to listen before looking again (a frame that arrives wakes the listener sooner)."""
        waiting = self.open(now)
        moments = [self.deadline]
        moments += [at + self.grace_s for sender, at in self.ended.items() if sender in waiting]
        if self.wants_logs(now):
            moments.append(self.next_log_read())
        return max(0.0, min(moments) - now)

    def outcome(self, sender: int, now: float) -> WaitOutcome:
        if sender in self.seen:
            return WaitOutcome("seen", self.seen[sender])
        if sender in self.given_up(now):
            return WaitOutcome("never", self.ended[sender] + self.grace_s, self.why[sender])
        return self._bound()
