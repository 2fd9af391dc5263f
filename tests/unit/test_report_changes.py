"""kit.report_changes: two runs' summary.json compared, at the edges (first run, same, changed, failed,
unreadable or older documents), the previous run picked among others, and the --exit-on-change codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from kit.report_changes import (
    EXIT_CHANGED,
    FIRST_RUN,
    Changes,
    CheckChange,
    CountChange,
    change_exit_code,
    compare,
    histories,
    pick_previous,
    recorded_html,
    recorded_lines,
    target_key,
    verdict,
    verdict_kind,
)

COUNTS = {"connections_opened": 2, "connections_stored": 0, "items_in_table": 0, "log_errors": 2}


def finding(check: str, verdict: str, cause: str | None = None) -> dict[str, Any]:
    return {
        "check": check,
        "question": "?",
        "verdict": verdict,
        "cause": cause,
        "evidence": "e",
        "next_step": "",
    }


DENIED = [finding("connect-route", "pass"), finding("iam-put", "fail", "put-access-denied")]
FIXED = [finding("connect-route", "pass"), finding("iam-put", "pass")]


def run(
    name: str = "20261204T100000Z-lab-seed-put-denied",
    *,
    cause: str | None = "put-access-denied",
    findings: list[dict[str, Any]] | None = None,
    counts: dict[str, Any] | None = None,
    status: str = "ok",
    scenario: str | None = "seed-put-denied",
    target: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A summary.json as kit.report writes it (the keys this module reads)."""
    return {
        "run": name,
        "status": status,
        "root_cause": {"id": cause, "summary": "s"} if cause else None,
        "findings": DENIED if findings is None else findings,
        "counts": dict(COUNTS) if counts is None else counts,
        "target": target or {"kind": "lab", "region": "us-east-2"},
        "scenario": scenario,
    }


NOW = "20261204T110000Z-lab-seed-put-denied"
FAILED_RUN = run(cause=None, findings=[], counts={}, status="failed")


@dataclass(frozen=True)
class Case:
    id: str
    previous: dict[str, Any] | None
    current: dict[str, Any]
    changed: bool
    before: str | None
    after: str
    started: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    stopped: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    counts: list[tuple[str, int | None, int | None]] = field(default_factory=list)
    note: str = ""  # a piece of a note that must be there ("" : no note at all)


CASES = [
    Case("first run", None, run(NOW), True, None, "put-access-denied"),
    Case("same", run(), run(NOW), False, "put-access-denied", "put-access-denied"),
    Case(
        "cause changed: fixed, a check stopped failing, the table fills",
        run(),
        run(NOW, cause="none", findings=FIXED, counts={**COUNTS, "connections_stored": 2, "log_errors": 0}),
        True,
        "put-access-denied",
        "none",
        stopped=[("iam-put", "fail", "pass", "put-access-denied")],
        counts=[("connections_stored", 0, 2), ("log_errors", 2, 0)],
    ),
    Case(
        "a check started failing, same cause",
        run(),
        run(NOW, findings=[*DENIED, finding("iam-index", "fail", "index-access-denied")]),
        False,
        "put-access-denied",
        "put-access-denied",
        started=[("iam-index", "absent", "fail", "index-access-denied")],
    ),
    Case(
        "warn to fail is started failing; fail to skip is stopped",
        run(findings=[finding("a", "warn"), finding("b", "fail", "x")]),
        run(NOW, findings=[finding("a", "fail", "y"), finding("b", "skip")]),
        False,
        "put-access-denied",
        "put-access-denied",
        started=[("a", "warn", "fail", "y")],
        stopped=[("b", "fail", "skip", "x")],
    ),
    Case(
        "a check with several findings fails when one does",
        run(findings=[finding("read", "fail", "evidence-unread"), finding("read", "pass")]),
        run(NOW, findings=[finding("read", "pass"), finding("read", "fail", "evidence-unread")]),
        False,
        "put-access-denied",
        "put-access-denied",
    ),
    Case(
        "a count moved, and one was not read",
        run(),
        run(NOW, counts={**COUNTS, "connections_opened": 5, "items_in_table": None}),
        False,
        "put-access-denied",
        "put-access-denied",
        counts=[("connections_opened", 2, 5), ("items_in_table", 0, None)],
    ),
    Case(
        "a count a newer kit adds is not a move",
        run(counts={"log_errors": 2}),
        run(NOW, counts={"log_errors": 2, "probe_failures": 3}),
        False,
        "put-access-denied",
        "put-access-denied",
    ),
    Case(
        "the previous run failed",
        FAILED_RUN,
        run(NOW),
        True,
        "failed",
        "put-access-denied",
        note="checks not compared: the previous run (failed) recorded no findings",
    ),
    Case(
        "this run failed",
        run(),
        run(NOW, cause=None, findings=[], counts={}, status="failed"),
        True,
        "put-access-denied",
        "failed",
        note="checks not compared: this run (failed) recorded no findings",
    ),
    Case(
        "inconclusive before, a cause now",
        run(cause="evidence-missing", findings=[finding("all-clear", "fail", "evidence-missing")]),
        run(NOW),
        True,
        "evidence-missing",
        "put-access-denied",
        started=[("iam-put", "absent", "fail", "put-access-denied")],
        stopped=[("all-clear", "fail", "absent", "evidence-missing")],
    ),
    Case(
        "an older kit's summary: no counts",
        {key: value for key, value in run().items() if key != "counts"},
        run(NOW),
        False,
        "put-access-denied",
        "put-access-denied",
        note="counts not compared: the previous run recorded none",
    ),
    Case(
        "a previous document with broken findings and counts",
        {**run(), "findings": ["x", {"check": None}, 3], "counts": "many", "root_cause": "?"},
        run(NOW),
        True,
        "no diagnosis",
        "put-access-denied",
        note="checks not compared: the previous run (no diagnosis) recorded no findings",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_compare(case: Case) -> None:
    changes = compare(case.previous, case.current, previous_run="before" if case.previous else None)
    assert changes.verdict_changed is case.changed
    assert (changes.verdict_before, changes.verdict_after) == (case.before, case.after)
    assert [(c.check, c.before, c.after, c.cause) for c in changes.started_failing] == case.started
    assert [(c.check, c.before, c.after, c.cause) for c in changes.stopped_failing] == case.stopped
    assert [(c.name, c.before, c.after) for c in changes.counts] == case.counts
    if case.note:
        assert any(case.note in note for note in changes.notes), changes.notes
    else:
        assert changes.notes == ()
    lines = changes.lines()
    assert lines[0] == changes.headline()
    assert len(lines) == 1 + len(case.started) + len(case.stopped) + len(case.counts) + len(changes.notes)


def test_the_headline_says_first_same_or_changed() -> None:
    assert compare(None, run(NOW)).headline() == FIRST_RUN
    assert compare(run(), run(NOW), previous_run="R").headline() == "same verdict as R: put-access-denied"
    changed = compare(run(), run(NOW, cause="none", findings=FIXED), previous_run="R")
    assert changed.headline() == "verdict changed since R: put-access-denied → none"
    assert "stopped failing: iam-put (now pass; was cause put-access-denied)" in changed.lines()


def test_lines_name_counts_in_words() -> None:
    changes = compare(run(), run(NOW, counts={**COUNTS, "log_errors": None}), previous_run="R")
    assert changes.lines()[1] == "log lines reporting a failure: 2 → not read"


def test_the_html_is_escaped() -> None:
    hostile = "<img src=x onerror=alert(1)>"
    changes = Changes(
        hostile,
        "a&b",
        hostile,
        started_failing=(CheckChange(hostile, "pass", "fail", hostile),),
        counts=(CountChange(hostile, 1, 2),),
        notes=(hostile,),
    )
    fragment = changes.html()
    assert "<img" not in fragment and fragment.count("&lt;img src=x onerror=alert(1)&gt;") == 6
    assert "a&amp;b" in fragment
    assert fragment.startswith('<p class="changes">') and fragment.count("<li>") == 3


def test_as_dict_round_trips_through_the_recorded_lines() -> None:
    changes = compare(run(), run(NOW, cause="none", findings=FIXED), previous_run="R")
    recorded = {"changes": changes.as_dict()}
    assert recorded["changes"]["verdict_changed"] is True
    assert recorded["changes"]["stopped_failing"] == [
        {"check": "iam-put", "before": "fail", "after": "pass", "cause": "put-access-denied"}
    ]
    assert recorded_lines(recorded) == changes.lines()
    assert recorded_html({"changes": {"lines": ["a<b", "c"]}}) == "a&lt;b<br>c"


@pytest.mark.parametrize("document", [None, [], {}, {"changes": None}, {"changes": {"lines": "x"}}, "text"])
def test_recorded_lines_of_a_document_without_them(document: object) -> None:
    assert recorded_lines(document) == [] and recorded_html(document) == ""


# --------------------------------------------------------------------------------------------------------
# Which run is the previous one


AWS = {"kind": "aws", "profile": "p", "region": "us-east-2", "websocket_url": "wss://x", "api_id": "a1"}


@pytest.mark.parametrize(
    ("document", "key"),
    [
        (run(), "lab seed-put-denied"),
        (run(scenario=None), "lab healthy"),
        (run(target={**AWS, "stage": "prod", "table": "t"}), "aws p us-east-2 wss://x a1 prod t"),
        (run(target=AWS), "aws p us-east-2 wss://x a1 - -"),
        (run(target={"kind": "elsewhere"}), None),
        ({"target": "lab"}, None),
        (None, None),
        ([1, 2], None),
    ],
)
def test_target_key(document: object, key: str | None) -> None:
    assert target_key(document) == key


def test_the_lab_key_ignores_what_changes_at_every_start() -> None:
    one = run(target={"kind": "lab", "api_id": "abc", "endpoints": "http://127.0.0.1:1"})
    two = run(target={"kind": "lab", "api_id": "xyz", "endpoints": "http://127.0.0.1:2"})
    assert target_key(one) == target_key(two)


def test_pick_previous_takes_the_newest_older_run_of_the_same_target() -> None:
    current = run(NOW)
    candidates: list[tuple[str, object]] = [
        ("20261204T090000Z-lab-seed-put-denied", run("a")),
        ("20261204T100000Z-lab-seed-put-denied", run("b")),
        ("20261204T103000Z-lab-healthy", run("c", scenario="healthy")),  # another target
        ("20261204T104000Z-lab-seed-put-denied", None),  # unreadable, same name: skipped and said
        ("20261204T104500Z-lab-healthy", None),  # unreadable, another target's name: not said
        ("20261204T120000Z-lab-seed-put-denied", run("d")),  # newer than this run
        (NOW, current),
    ]
    name, document, skipped = pick_previous(candidates, current)
    assert name == "20261204T100000Z-lab-seed-put-denied" and document == run("b")
    assert skipped == ["20261204T104000Z-lab-seed-put-denied"]
    changes = compare(document, current, previous_run=name, skipped=skipped)
    assert changes.notes == ("20261204T104000Z-lab-seed-put-denied left no readable summary.json: skipped",)


def test_pick_previous_never_crosses_targets() -> None:
    aws = run(NOW.replace("lab-seed-put-denied", "aws"), target=AWS, scenario=None)
    other_api = run("20261204T100000Z-aws", target={**AWS, "api_id": "a2"}, scenario=None)
    assert pick_previous([("20261204T100000Z-aws", other_api)], aws) == (None, None, [])
    assert pick_previous([("20261204T100000Z-lab-seed-put-denied", run())], aws)[0] is None


def test_the_first_run_with_only_unreadable_neighbours_says_so() -> None:
    name, document, skipped = pick_previous(
        [("20261204T100000Z-lab-seed-put-denied", "not a dict")], run(NOW)
    )
    changes = compare(document, run(NOW), previous_run=name, skipped=skipped)
    assert changes.previous_run is None and changes.verdict_changed
    assert changes.lines() == [
        FIRST_RUN,
        "20261204T100000Z-lab-seed-put-denied left no readable summary.json: skipped",
    ]


def test_histories_group_by_target_newest_first_within_the_limit() -> None:
    runs: list[tuple[str, object]] = [
        (
            f"20261204T10{minute:02d}00Z-lab-seed-put-denied",
            run(cause="none" if minute % 2 else "put-access-denied"),
        )
        for minute in range(5)
    ]
    runs += [("20261204T110000Z-lab-healthy", run(scenario="healthy", status="failed")), ("x", None)]
    found = histories(runs, limit=3)
    assert list(found) == ["lab healthy", "lab seed-put-denied"]
    assert found["lab healthy"] == [("20261204T110000Z-lab-healthy", "failed")]
    assert found["lab seed-put-denied"] == [
        ("20261204T100400Z-lab-seed-put-denied", "put-access-denied"),
        ("20261204T100300Z-lab-seed-put-denied", "none"),
        ("20261204T100200Z-lab-seed-put-denied", "put-access-denied"),
    ]


# --------------------------------------------------------------------------------------------------------
# Verdicts and exit codes


@pytest.mark.parametrize(
    ("document", "expected", "kind"),
    [
        (run(), "put-access-denied", "cause"),
        (run(cause="none"), "none", "none"),
        (run(cause="evidence-missing"), "evidence-missing", "inconclusive"),
        (run(cause="a-cause-of-a-newer-kit"), "a-cause-of-a-newer-kit", "cause"),
        (run(cause="put-access-denied", status="failed"), "failed", "failed"),
        (run(cause=None), "no diagnosis", "unknown"),
    ],
)
def test_verdict_and_its_kind(document: dict[str, Any], expected: str, kind: str) -> None:
    assert verdict(document) == expected and verdict_kind(expected) == kind


@pytest.mark.parametrize(
    ("previous", "current", "exit_code", "expected"),
    [
        (None, run(NOW), 1, EXIT_CHANGED),  # first run: nothing to compare is news
        (run(), run(NOW), 1, 0),  # unchanged cause
        (run(cause="none", findings=FIXED), run(NOW, cause="none", findings=FIXED), 0, 0),  # still healthy
        (run(), run(NOW, cause="none", findings=FIXED), 0, EXIT_CHANGED),  # fixed
        (run(cause="none", findings=FIXED), run(NOW), 1, EXIT_CHANGED),  # broke
        (run(), FAILED_RUN | {"run": NOW}, 2, 2),  # this run failed: always 2
        (FAILED_RUN, FAILED_RUN | {"run": NOW}, 2, 2),  # failed twice: still 2, never "unchanged"
        (FAILED_RUN, run(NOW), 1, EXIT_CHANGED),  # recovered from a failure
    ],
)
def test_change_exit_code(
    previous: dict[str, Any] | None, current: dict[str, Any], exit_code: int, expected: int
) -> None:
    changes = compare(previous, current, previous_run="R" if previous else None)
    assert change_exit_code(changes, exit_code) == expected
    assert change_exit_code(None, exit_code) == (2 if exit_code == 2 else EXIT_CHANGED)
