"""`kit fix` against a simulated account (tests/integration/account.py) with a fault: it prints the fix and
changes nothing; it applies it only with --apply --allow-writes and a yes, making exactly the calls it prints;
the fault is gone afterwards; --undo puts the account back as it was."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from kit import fix_proof
from kit.diagnose import ranking
from kit.diagnose.reading import read_evidence
from kit.target import Target

from .account import PROFILE, Call, SimulatedAccount

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatedAccount]:
    with SimulatedAccount("seed-put-denied", tmp_path_factory.mktemp("faulty")) as simulated:
        client = simulated.connect_directly()  # a user whose connection was not stored: the logs say why
        try:
            yield simulated
        finally:
            client.close()


def changes(calls: list[Call]) -> list[str]:
    return [c.operation for c in calls if c.mutating]


def role_policies(account: SimulatedAccount) -> list[str]:
    role = str(account.info["role"]).rsplit("/", 1)[-1]
    return sorted(account.admin("iam").list_role_policies(RoleName=role)["PolicyNames"])


def test_the_fix_is_printed_and_nothing_changes(account: SimulatedAccount) -> None:
    with account.recording() as calls:
        run = account.run(["fix", "--json", *account.target_args()])
    assert run.returncode == 0, run.stderr
    planned = json.loads(run.stdout)
    assert planned["cause"] == "put-access-denied"
    (change,) = planned["changes"]
    assert change["document"]["Statement"][0]["Action"] == ["dynamodb:PutItem"]
    assert change["cli"][0].startswith("aws iam put-role-policy --role-name chatgenius-websocket-handler")
    assert change["boto3"][0].startswith('boto3.client("iam").put_role_policy(')
    assert calls and changes(calls) == []


def test_the_report_proves_the_fix_on_a_mirror_and_never_writes_the_account(
    account: SimulatedAccount,
) -> None:
    """What notebook 00's "The fix, verified on a mirror" runs: the account read, a mirror built here, the
    mirror's own diagnosis agreeing, the fix verified on it; the account gets 0 mutating calls."""
    with account.recording() as calls, account.as_user():
        target = Target.from_parameters(
            "aws", profile=PROFILE, env_file=str(account.env_file), api_id=account.api_id
        )
        evidence = read_evidence(target)
        diagnosis = ranking.diagnose(evidence)
        proof = fix_proof.prove(target, diagnosis, evidence)
    assert diagnosis.root_cause["id"] == "put-access-denied", ranking.summary_text(diagnosis)
    assert proof.verdict is not None and proof.verdict.fixed, proof
    assert proof.where.startswith("on a mirror of aws us-east-2") and proof.mirror is not None
    assert proof.mirror["copied"] and isinstance(proof.mirror["not_reproduced"], list)
    assert calls and changes(calls) == []


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--verify"], "applies the fix to the lab"),
        (["--apply"], "--allow-writes"),
        (["--apply", "--allow-writes"], "--yes"),  # no terminal to ask on, and no --yes
    ],
    ids=["verify-on-an-account", "no-allow-writes", "no-confirmation"],
)
def test_no_change_without_every_opt_in(account: SimulatedAccount, extra: list[str], said: str) -> None:
    before = role_policies(account)
    with account.recording() as calls:
        run = account.run(["fix", *extra, *account.target_args()])
    assert run.returncode == 2, run.stdout + run.stderr
    assert said in run.stderr and run.stderr.count("\n") == 1, run.stderr
    assert changes(calls) == [] and role_policies(account) == before


def test_apply_makes_the_calls_it_prints_then_undo_puts_it_back(account: SimulatedAccount) -> None:
    before = role_policies(account)
    args = ["--allow-writes", "--yes", *account.target_args()]
    with account.recording() as calls:
        run = account.run(["fix", "--apply", *args])
    assert run.returncode == 0, run.stdout + run.stderr
    printed = [line for line in run.stdout.splitlines() if line.startswith("called ")]
    assert changes(calls) == ["PutRolePolicy"] and len(printed) == 1
    assert "About to change aws us-east-2" in run.stdout
    assert role_policies(account) == sorted([*before, "kit-fix-put-item"])

    # The fault is gone: a user's new connection is stored, and the diagnosis of what happened since says so.
    account.connect_directly().close()
    diagnosis = account.run(["diagnose", "--json", *account.target_args()])
    result = json.loads(diagnosis.stdout)
    verdicts = {f["check"]: f["verdict"] for f in result["findings"]}
    assert verdicts["iam-put"] == "pass", result["root_cause"]

    with account.recording() as calls:
        undone = account.run(["fix", "--undo", *args])
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert changes(calls) == ["DeleteRolePolicy"]
    assert role_policies(account) == before
