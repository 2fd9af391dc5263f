"""What changed since the previous run of the same target: two ``summary.json`` documents compared.

A scheduled run (cron running ``kit report``) is worth reading when something moved. This module says what:

    target_key(summary)                    which target a run looked at; runs compare only within one
    verdict(summary) / verdict_kind(...)   a run's verdict (its root cause, or ``failed``) and its kind
    pick_previous(candidates, current)     the run to compare with, among the older runs' documents
    histories(runs)                        each target's recent verdicts, newest first (the index)
    compare(previous, current)             -> Changes: the verdict before and now, the checks that started
                                           or stopped failing, the counts that moved, what was not compared
    change_exit_code(changes, exit_code)   ``kit report --exit-on-change``'s exit code

``Changes`` says itself as plain lines (``lines``), as data (``as_dict``, stored in ``summary.json`` as
``changes``) and as an escaped HTML fragment (``html``) for a page's summary card; ``recorded_lines`` and
``recorded_html`` read those lines back from a run's ``summary.json`` (the index, the bundle).

Pure: the documents are read by :mod:`kit.report`. What this module must not do: raise on a document it
cannot read (an older kit's, a half-written one, not JSON at all): it says what it could not compare instead.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from kit.diagnose import causes
from kit.diagnose.counts import COUNTS

# `kit report --exit-on-change`: 0 the verdict is the previous run's, EXIT_CHANGED it is not (or there is no
# previous run to compare with), 2 this run failed (the kit could not do its work), whatever the previous did.
EXIT_UNCHANGED: Final = 0
EXIT_CHANGED: Final = 4
EXIT_FAILED: Final = 2
FAILED: Final = "failed"
NO_DIAGNOSIS: Final = "no diagnosis"
FIRST_RUN: Final = "first run of this target: nothing to compare"
# What identifies an AWS target in its description (kit.target.Target.describe); the lab's is its scenario.
AWS_IDENTITY: Final = ("profile", "region", "websocket_url", "api_id", "stage", "table")


def target_key(summary: object) -> str | None:
    """``lab <scenario>`` or ``aws <profile> <region> <url> <api> <stage> <table>``; None for a document
    that does not say its target. The lab's API id and ports change with every start, so its scenario names
    it."""
    if not isinstance(summary, Mapping):
        return None
    target = summary.get("target")
    kind = target.get("kind") if isinstance(target, Mapping) else None
    if kind == "lab":
        return f"lab {summary.get('scenario') or 'healthy'}"
    if kind == "aws" and isinstance(target, Mapping):
        return "aws " + " ".join(str(target.get(name) or "-") for name in AWS_IDENTITY)
    return None


def verdict(summary: Mapping[str, Any]) -> str:
    """The run's verdict: ``failed`` when the kit failed, else the root cause's id, else ``no diagnosis``."""
    if summary.get("status") == FAILED:
        return FAILED
    cause = summary.get("root_cause")
    if isinstance(cause, Mapping) and cause.get("id"):
        return str(cause["id"])
    return NO_DIAGNOSIS


def verdict_kind(name: str) -> str:
    """``failed``, ``cause``, ``symptom``, ``inconclusive``, ``none`` (nothing wrong) or ``unknown``: what a
    verdict's colour says (always beside its text)."""
    if name == FAILED:
        return FAILED
    known = causes.BY_ID.get(name)
    return known.kind if known is not None else ("unknown" if name == NO_DIAGNOSIS else "cause")


def pick_previous(
    candidates: Sequence[tuple[str, object]], current: Mapping[str, Any]
) -> tuple[str | None, Mapping[str, Any] | None, list[str]]:
    """The previous run of ``current``'s target: (its folder name, its document, the folders skipped).

    ``candidates`` are (run folder name, parsed ``summary.json`` or None when unreadable), any order; only
    folders older than ``current["run"]`` count (names start with the UTC stamp). A run of another target is
    passed over; an unreadable one whose name says the same target (the part after the stamp) is named in
    the skipped list, so the report says it could not be read.
    """
    key = target_key(current)
    name = str(current.get("run", ""))
    tail = name.partition("-")[2]
    skipped: list[str] = []
    for folder, document in sorted(candidates, key=lambda pair: pair[0], reverse=True):
        if folder >= name:
            continue
        their_key = target_key(document)
        if key is not None and their_key == key and isinstance(document, Mapping):
            return folder, document, skipped
        if their_key is None and folder.partition("-")[2] == tail:
            skipped.append(folder)
    return None, None, skipped


def histories(runs: Sequence[tuple[str, object]], limit: int = 12) -> dict[str, list[tuple[str, str]]]:
    """Each target's (run folder, verdict) pairs, newest first, at most ``limit`` per target; targets in the
    order of their newest run. ``runs`` are (folder name, parsed ``summary.json``); unreadable ones are left
    out (the index lists them as incomplete)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for folder, document in sorted(runs, key=lambda pair: pair[0], reverse=True):
        key = target_key(document)
        if key is None or not isinstance(document, Mapping):
            continue
        runs_of_target = found.setdefault(key, [])
        if len(runs_of_target) < limit:
            runs_of_target.append((folder, verdict(document)))
    return found


@dataclass(frozen=True)
class CheckChange:
    """A check that started or stopped failing: its verdicts before and now (``absent``: not in that run)
    and the cause its failing side points at."""

    check: str
    before: str
    after: str
    cause: str | None


@dataclass(frozen=True)
class CountChange:
    """A count (:data:`kit.diagnose.counts.COUNTS`) that moved; None: not read in that run."""

    name: str
    before: int | None
    after: int | None


@dataclass(frozen=True)
class Changes:
    """What changed between the previous run of a target and this one."""

    previous_run: str | None  # the folder compared with; None: the first run (or none readable)
    verdict_before: str | None
    verdict_after: str
    started_failing: tuple[CheckChange, ...] = ()
    stopped_failing: tuple[CheckChange, ...] = ()
    counts: tuple[CountChange, ...] = ()
    notes: tuple[str, ...] = ()  # what could not be compared, and why

    @property
    def verdict_changed(self) -> bool:
        """True when the verdict differs from the previous run's, or there is none to compare with."""
        return self.verdict_before != self.verdict_after

    def headline(self) -> str:
        if self.previous_run is None:
            return FIRST_RUN
        if self.verdict_changed:
            return f"verdict changed since {self.previous_run}: {self.verdict_before} → {self.verdict_after}"
        return f"same verdict as {self.previous_run}: {self.verdict_after}"

    def lines(self) -> list[str]:
        """The headline, then one plain sentence per change and per note."""
        lines = [self.headline()]
        lines += [
            f"started failing: {c.check} (was {c.before}; cause {c.cause})" for c in self.started_failing
        ]
        lines += [
            f"stopped failing: {c.check} (now {c.after}; was cause {c.cause})" for c in self.stopped_failing
        ]
        lines += [
            f"{COUNTS.get(c.name, c.name)}: {_count(c.before)} → {_count(c.after)}" for c in self.counts
        ]
        return lines + list(self.notes)

    def as_dict(self) -> dict[str, Any]:
        """As JSON wants it (lists, not tuples), with the verdict's change and the lines said."""
        fields = {
            name: list(value) if isinstance(value, tuple) else value for name, value in asdict(self).items()
        }
        return {**fields, "verdict_changed": self.verdict_changed, "lines": self.lines()}

    def html(self) -> str:
        """The lines as an escaped HTML fragment: the headline as a paragraph, the rest as a list."""
        first, *rest = self.lines()
        items = "".join(f"<li>{html.escape(line)}</li>" for line in rest)
        return f'<p class="changes">{html.escape(first)}</p>' + (f"<ul>{items}</ul>" if items else "")


def _count(value: int | None) -> str:
    return "not read" if value is None else str(value)


def _failing_checks(summary: Mapping[str, Any]) -> dict[str, tuple[str, str | None]] | None:
    """check -> (its verdict, the cause a failure points at); a check with several findings is failing if
    any fails. None when the document holds no readable findings."""
    findings = summary.get("findings")
    if not isinstance(findings, list) or not findings:
        return None
    verdicts: dict[str, tuple[str, str | None]] = {}
    for finding in findings:
        if not isinstance(finding, Mapping) or not finding.get("check") or not finding.get("verdict"):
            continue
        check, said = str(finding["check"]), str(finding["verdict"])
        cause = finding.get("cause")
        if check not in verdicts or said == "fail":
            verdicts[check] = (said, str(cause) if cause is not None else None)
    return verdicts or None


def _checks(
    before: Mapping[str, tuple[str, str | None]], after: Mapping[str, tuple[str, str | None]]
) -> tuple[tuple[CheckChange, ...], tuple[CheckChange, ...]]:
    absent = ("absent", None)
    started = [
        CheckChange(check, before.get(check, absent)[0], verdict, cause)
        for check, (verdict, cause) in after.items()
        if verdict == "fail" and before.get(check, absent)[0] != "fail"
    ]
    stopped = [
        CheckChange(check, verdict, after.get(check, absent)[0], cause)
        for check, (verdict, cause) in before.items()
        if verdict == "fail" and after.get(check, absent)[0] != "fail"
    ]
    return tuple(started), tuple(stopped)


def _counts(before: object, after: object) -> tuple[CountChange, ...]:
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return ()
    moved = []
    for name in dict.fromkeys([*before, *after]):
        old, new = before.get(name), after.get(name)
        if name in before and name in after and old != new:
            moved.append(CountChange(str(name), _int_or_none(old), _int_or_none(new)))
    return tuple(moved)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def compare(
    previous: Mapping[str, Any] | None,
    current: Mapping[str, Any],
    *,
    previous_run: str | None = None,
    skipped: Sequence[str] = (),
) -> Changes:
    """What changed from ``previous`` (the same target's last run, None for none) to ``current``.

    The checks are compared when both runs hold findings (a failed run holds none), the counts when both
    recorded them (an older kit's summary has none); each comparison left out says why in ``notes``.
    """
    after = verdict(current)
    notes = [f"{folder} left no readable summary.json: skipped" for folder in skipped]
    if previous is None:
        return Changes(None, None, after, notes=tuple(notes))
    name = previous_run or str(previous.get("run") or "the previous run")
    before = verdict(previous)
    old_checks, new_checks = _failing_checks(previous), _failing_checks(current)
    started: tuple[CheckChange, ...] = ()
    stopped: tuple[CheckChange, ...] = ()
    if old_checks is not None and new_checks is not None:
        started, stopped = _checks(old_checks, new_checks)
    else:
        runs = (("the previous run", old_checks, before), ("this run", new_checks, after))
        which = [
            f"{label} ({said})" if said in (FAILED, NO_DIAGNOSIS) else label
            for label, checks, said in runs
            if checks is None
        ]
        notes.append(f"checks not compared: {' and '.join(which)} recorded no findings")
    old_counts, new_counts = previous.get("counts"), current.get("counts")
    if not isinstance(old_counts, Mapping) and old_checks is not None:
        notes.append("counts not compared: the previous run recorded none (an older kit)")
    return Changes(
        name,
        before,
        after,
        started,
        stopped,
        _counts(old_counts, new_counts),
        tuple(notes),
    )


def recorded_lines(summary: object) -> list[str]:
    """The lines a run recorded in its ``summary.json`` (``changes.lines``); none for a run made before
    runs were compared, or a document that is not one."""
    changes = summary.get("changes") if isinstance(summary, Mapping) else None
    lines = changes.get("lines") if isinstance(changes, Mapping) else None
    return [str(line) for line in lines] if isinstance(lines, list) else []


def recorded_html(summary: object) -> str:
    """:func:`recorded_lines` as escaped HTML, one line each."""
    return "<br>".join(html.escape(line) for line in recorded_lines(summary))


def change_exit_code(changes: Changes | None, exit_code: int) -> int:
    """``kit report --exit-on-change``: 2 when this run failed (``exit_code`` 2), else 4 when the verdict
    changed or there was nothing to compare with, else 0."""
    if exit_code == EXIT_FAILED:
        return EXIT_FAILED
    if changes is None or changes.verdict_changed:
        return EXIT_CHANGED
    return EXIT_UNCHANGED
