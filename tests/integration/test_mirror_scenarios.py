"""Every scenario, end to end through a real account's path (issue 13): the simulated account runs the
scenario; `kit diagnose --target aws` names its root cause; `kit lab up --from aws`'s reading makes 0
mutating calls and its mirror names the same cause; `kit fix --verify`'s core turns the mirror's diagnosis
(unless the cause has no change, only advice: NO_CHANGE) into "fixed" (the fix applied, the diagnosis since then clean with the storage test passing); for one change
of each kind, the undo brings the cause back.

The account (its own process) is diagnosed by `kit diagnose` in this process, with this process's environment
swapped for the user's (``SimulatedAccount.run``), after the mirror is built and diagnosed: the suite is
CPU-bound, so a second Python paying the kit's imports for each scenario cost more than overlapping the waits
saved. The real command's process is exercised against the account in test_account_sim.py. The account's
DynamoDB is moto's and the mirror's is DynamoDB Local: the same cause read through two engines.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kit import fix, fix_apply
from kit.diagnose import ranking
from kit.diagnose.findings import Evidence
from kit.diagnose.reading import read_evidence
from kit.lab.lab import Lab
from kit.lab.scenarios import SCENARIOS

from .labclient import EmptyDynamoDB
from .test_diagnose_lab import diagnosis_and_evidence, probe_plan
from .test_mirror import mutating, probe_flags, read_mirror

pytestmark = pytest.mark.integration

# One of each kind of change, whose undo is checked too: a policy, a variable, the code, a route, a stage's
# settings.
UNDONE = {
    "seed-put-denied",
    "seed-wrong-table",
    "handler-crash",
    "no-connect-integration",
    "throttled-connects",
}


# What a mirror cannot reproduce, by scenario, and why (each still checked on the account, below): the gap its
# manifest names (what it starts with, a phrase of why).
# stale-deployment: AWS has no API that reads a deployment's routes and integrations, so the mirror deploys the
# account's current ones, which are the fixed ones: the mirror is healthy where the account is not. Its
# manifest names that gap (not_reproduced), and the account's own diagnosis is checked.
# management-endpoint-wrong: a mirror reaches no execute-api host, so a function's endpoint variable keeps naming
# the account's API (another id than the mirror's) and its posts fail there whether the endpoint is right or
# not: the mirror cannot tell. Its manifest names the variable; the account's diagnosis is checked, and the
# fault is diagnosed and its fix planned on a lab (test_diagnose_lab.py).
# What the manifest names for each: (the gap's beginning, a part of why).
NOT_IN_A_MIRROR: dict[str, tuple[str, str]] = {
    "stale-deployment": ("stage prod: deployment ", "never deployed is live in the mirror"),
    "management-endpoint-wrong": (
        "function chatgenius-websocket: MANAGEMENT_ENDPOINT names an execute-api endpoint",
        "the mirror cannot reach the account's API",
    ),
}
# Causes kit fix has no change for (it never detaches, loosens or rewrites an authorizer): on the mirror their
# plan is advice only, and there is nothing to verify.
NO_CHANGE = {"authorizer-denied", "authorizer-context-missing"}


@pytest.mark.parametrize("name", [name for name in SCENARIOS if name not in NOT_IN_A_MIRROR])
def test_each_scenario_on_the_account_its_mirror_and_the_fix(
    name: str, tmp_path: Path, empty_dynamodb: EmptyDynamoDB
) -> None:
    scenario = SCENARIOS[name]
    from .account import SimulatedAccount

    verified = planned = None
    with SimulatedAccount(name, tmp_path, dynamodb="moto") as account:
        copy, calls = read_mirror(account)
        assert calls and mutating(calls) == []
        with Lab(mirror=copy, write_lab_file=False, dynamodb=empty_dynamodb()) as lab:
            diagnosis, evidence = diagnosis_and_evidence(lab, scenario.client)
            if scenario.reproduces != "none" and diagnosis.root_cause["id"] == scenario.reproduces:
                planned = fix.plan(diagnosis, evidence)
            if planned is not None and planned.applicable:

                def read(since: datetime, client: Any) -> Evidence:
                    plan = replace(probe_plan(scenario.client), **dict(client))
                    return read_evidence(lab.target(), since=since, probe_plan=plan)

                verified, applied = fix_apply.verify(lab.target(), planned, read, ranking.diagnose)
                if name in UNDONE:
                    fix_apply.undo(lab.target(), applied)
                    again, _ = diagnosis_and_evidence(lab, scenario.client, since=datetime.now(UTC))
                    assert again.root_cause["id"] == scenario.reproduces, ranking.summary_text(again)
        run = account.run(["diagnose", "--json", *probe_flags(scenario.client), *account.target_args()])
    assert run.returncode in (0, 1), run.stdout + run.stderr
    account_cause = json.loads(run.stdout)["root_cause"]
    assert account_cause["id"] == scenario.reproduces, run.stdout
    summary = ranking.summary_text(diagnosis)
    assert diagnosis.root_cause["id"] == account_cause["id"], summary
    if scenario.reproduces == "none":
        assert "fail" not in set(diagnosis.findings["verdict"]), summary
        assert diagnosis.root_cause["evidence"] == [] and account_cause["evidence"] == []
    else:
        assert diagnosis.root_cause["evidence"] and account_cause["evidence"], summary
        assert planned is not None
        if scenario.reproduces in NO_CHANGE:
            assert not planned.applicable and planned.advice, planned.text()
            return
        assert verified is not None
        assert verified.fixed, f"{verified.text}\n{planned.text()}"


@pytest.mark.parametrize("name", sorted(NOT_IN_A_MIRROR))
def test_what_a_mirror_cannot_reproduce_is_named_on_the_account_and_in_the_manifest(
    name: str, tmp_path: Path
) -> None:
    scenario = SCENARIOS[name]
    from .account import SimulatedAccount

    with SimulatedAccount(name, tmp_path, dynamodb="moto") as account:
        copy, calls = read_mirror(account)
        assert calls and mutating(calls) == []
        args = ["diagnose", "--json", *probe_flags(scenario.client), *account.target_args()]
        run = account.run(args)
    assert run.returncode == 1, run.stdout + run.stderr
    assert json.loads(run.stdout)["root_cause"]["id"] == scenario.reproduces, run.stdout
    what, why = NOT_IN_A_MIRROR[name]
    named = [gap for gap in copy.gaps if gap.what.startswith(what)]
    assert len(named) == 1, copy.gaps
    assert why in named[0].why
