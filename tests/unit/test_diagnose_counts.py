"""kit.diagnose.counts: the numbers a diagnosis stands on, None (never 0) for evidence that was not read."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from kit.diagnose import ranking
from kit.diagnose.counts import COUNTS, counts, failure_lines

from .diagnose_evidence import SWALLOWED, healthy, items, lifecycle, log_lines, probe_rows

REFUSED = {"connection_id": "c3", "connect_status": 500, "item_written": None}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, {"connections_opened": 1, "connections_stored": 1, "items_in_table": 1, "log_errors": 0}),
        (
            {"lifecycle": lifecycle(SWALLOWED, {"connection_id": "c2"}, REFUSED)},
            {"connections_opened": 2, "connections_stored": 1},
        ),
        ({"items": items({}, {"connectionId": "c2"}, {"connectionId": "c3"})}, {"items_in_table": 3}),
        ({"items": items()[:0]}, {"items_in_table": 0}),
        (
            {
                "log_lines": log_lines(
                    {},
                    {"kind": "error", "app_outcome": None},
                    {"kind": "timeout", "app_outcome": None},
                    {"kind": "runtime_exit", "app_outcome": None},
                    {"kind": "app", "app_error_code": "AccessDeniedException"},
                )
            },
            {"log_errors": 4},
        ),
        ({"probe": probe_rows(stored=False, clients=2)}, {"probe_failures": 2}),
        (
            {"lifecycle": None, "items": None, "log_lines": None, "probe": None},
            {name: None for name in COUNTS},
        ),
    ],
    ids=["healthy", "opened-vs-stored", "items", "empty-table", "log-errors", "probe", "nothing-read"],
)
def test_counts(changes: dict[str, Any], expected: dict[str, int | None]) -> None:
    found = counts(replace(healthy(), **changes))
    assert set(found) == set(COUNTS)
    assert {name: found[name] for name in expected} == expected
    assert all(value is None or type(value) is int for value in found.values())


def test_healthy_probe_failures_are_zero_not_unread() -> None:
    assert counts(healthy())["probe_failures"] == 0


def test_failure_lines_treat_a_missing_code_as_no_failure() -> None:
    frame = log_lines({}, {"kind": "error", "app_outcome": None})
    assert failure_lines(frame).tolist() == [False, True]


def test_the_diagnosis_carries_its_counts_into_its_json() -> None:
    diagnosis = ranking.diagnose(healthy())
    assert diagnosis.counts == counts(healthy())
    assert json.loads(ranking.to_json(diagnosis))["counts"] == diagnosis.counts
