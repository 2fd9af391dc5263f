"""How ``make test`` spreads the suite over xdist workers: tests that share a lab keep one worker."""

from __future__ import annotations

import pytest
from conftest import scope_of

LAB = "tests/integration"


@pytest.mark.parametrize(
    ("nodeid", "scope"),
    [
        # Unit tests, and integration tests that start their own lab: each goes wherever a worker is free.
        ("tests/unit/test_policy.py::test_deny[a]", "tests/unit/test_policy.py::test_deny[a]"),
        (
            f"{LAB}/test_lab_scenarios.py::test_symptom[healthy]",
            f"{LAB}/test_lab_scenarios.py::test_symptom[healthy]",
        ),
        (
            f"{LAB}/test_diagnose_lab.py::test_cause[wrong-region]",
            f"{LAB}/test_diagnose_lab.py::test_cause[wrong-region]",
        ),
        (f"{LAB}/test_cli.py::test_commands", f"{LAB}/test_cli.py::test_commands"),
        # A module-scoped lab: the module; a class-scoped one: the class.
        (f"{LAB}/test_fidelity.py::test_idle_timeout", f"{LAB}/test_fidelity.py"),
        (f"{LAB}/test_lab_gateway.py::test_refused[plain GET]", f"{LAB}/test_lab_gateway.py"),
        (
            f"{LAB}/test_diagnose_lab.py::TestFaultsMadeThroughAws::test_x",
            f"{LAB}/test_diagnose_lab.py::TestFaultsMadeThroughAws",
        ),
        # A lab per scenario (parametrized indirectly): one scope per scenario.
        (f"{LAB}/test_probe.py::test_healthy_steps[healthy]", f"{LAB}/test_probe.py[healthy]"),
        (f"{LAB}/test_probe.py::test_refused_connection", f"{LAB}/test_probe.py"),
        (
            f"{LAB}/test_evidence_iam_config.py::test_r[index-denied]",
            f"{LAB}/test_evidence_iam_config.py[index-denied]",
        ),
    ],
)
def test_scope_of(nodeid: str, scope: str) -> None:
    assert scope_of(nodeid) == scope
