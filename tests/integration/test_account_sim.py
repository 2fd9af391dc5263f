"""The kit against a simulated AWS account (tests/integration/account.py): reached only through a profile, an
endpoint configuration and the app's env file, behind proxies that count every call.

The proof of "read-only by default" is a count: every command and every notebook, run without an opt-in,
makes no call that may change the account. The opted-in probe and storage test leave the table as they found
it. And a diagnosis never gives an all-clear the evidence does not back: no WebSocket URL, a wrong region, and
every combination of a missing API, table, role and log group.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kit.diagnose import causes, ranking, reading
from kit.target import Target

from . import account as account_module
from .account import PROFILE, Call, SimulatedAccount

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatedAccount]:
    with SimulatedAccount("healthy", tmp_path_factory.mktemp("account")) as simulated:
        client = simulated.connect_directly()  # a user online: the logs hold a $connect that stored
        try:
            yield simulated
        finally:
            client.close()


def mutating(calls: list[Call]) -> list[str]:
    return [f"{c.endpoint} {c.service} {c.operation}" for c in calls if c.mutating]


# Each command as a user types it, and the exit codes it may end with. None of them has an opt-in.
READ_ONLY_COMMANDS: list[tuple[str, list[str], set[int]]] = [
    ("diagnose", ["diagnose"], {0, 1, 3}),
    ("diagnose --json", ["diagnose", "--json"], {0, 1, 3}),
    ("config routes", ["config", "routes"], {0, 1}),
    ("config functions", ["config", "functions"], {0, 1}),
    ("config stage", ["config", "stage"], {0, 1}),
    ("config env", ["config", "env"], {0, 1}),
    ("logs invocations", ["logs", "invocations"], {0}),
    ("logs connections", ["logs", "connections"], {0}),
    ("logs events", ["logs", "events", "--json"], {0}),
    ("logs groups", ["logs", "groups"], {0}),
    ("iam", ["iam"], {0, 1}),
]


def test_the_kit_command_itself_reaches_the_account_and_changes_nothing(account: SimulatedAccount) -> None:
    """The real `kit` process, once: the other tests run the same commands in this process."""
    with account.recording() as calls:
        run = account.run(["diagnose", "--json", *account.target_args()], subprocess_=True)
    assert run.returncode in (0, 1, 3), run.stderr
    assert {c.service for c in calls} >= {"apigatewayv2", "lambda", "dynamodb", "iam", "logs", "sts"}
    assert mutating(calls) == []


@pytest.mark.parametrize(
    ("args", "codes"), [(a, c) for _, a, c in READ_ONLY_COMMANDS], ids=[n for n, _, _ in READ_ONLY_COMMANDS]
)
def test_each_command_reads_the_account_and_changes_nothing(
    account: SimulatedAccount, args: list[str], codes: set[int]
) -> None:
    with account.recording() as calls:
        run = account.run([*args, *account.target_args()])
    assert run.returncode in codes, run.stderr
    assert "Traceback" not in run.stderr
    assert calls, "the command reached nothing of the account: it cannot have read it"
    assert mutating(calls) == []


def test_endpoints_from_aws_endpoint_url_variables_reach_the_same_account(account: SimulatedAccount) -> None:
    with account.recording() as calls:
        run = account.run(["diagnose", "--json", *account.target_args()], endpoints="env")
    assert run.returncode in (0, 1, 3), run.stderr
    assert {c.service for c in calls} >= {"apigatewayv2", "lambda", "dynamodb", "iam", "logs"}
    assert json.loads(run.stdout)["root_cause"]["id"] != "target-unreachable"
    assert mutating(calls) == []


def test_table_reads_without_the_api(account: SimulatedAccount) -> None:
    with account.recording() as calls:
        run = account.run(["table", *account.target_args(api_id=False)])
    assert run.returncode == 0, run.stderr
    assert {c.operation for c in calls} >= {"DescribeTable"} and mutating(calls) == []
    with account.recording() as calls:
        refused = account.run(["table", "create", *account.target_args(api_id=False)])
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "--allow-writes" in refused.stderr
    assert mutating(calls) == []


def test_a_probe_without_its_opt_in_touches_nothing(account: SimulatedAccount) -> None:
    with account.recording() as calls:
        refused = account.run(["probe", *account.target_args()])
    assert refused.returncode == 2 and "--allow-aws-probe" in refused.stderr, refused.stderr
    assert refused.stderr.count("\n") == 1
    assert [c.operation for c in calls] == ["GetCallerIdentity"]  # the credentials, tried; nothing else


def test_the_opted_in_probe_and_storage_test_leave_nothing_behind(account: SimulatedAccount) -> None:
    before = account.item_count()
    with account.recording() as calls:
        run = account.run(
            [
                "diagnose",
                "--json",
                "--probe-clients",
                "2",
                "--allow-aws-probe",
                "--allow-writes",
                *account.target_args(),
            ]
        )
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout)
    verdicts = {f["check"]: f["verdict"] for f in result["findings"]}
    assert verdicts["probe"] == "pass" and verdicts["direct-write"] == "pass", verdicts
    changed = {c.operation for c in calls if c.mutating}
    assert {"WebSocketConnect", "PutItem", "DeleteItem"} <= changed, changed  # it did write, as allowed
    assert account.item_count() == before


def test_every_notebook_reads_the_account_and_changes_nothing(account: SimulatedAccount) -> None:
    reports = account.home / "reports"
    with account.recording() as calls:
        run = account.run(
            [
                "report",
                "--target",
                "aws",
                "--profile",
                PROFILE,
                "--env-file",
                str(account.env_file),
                "--reports-dir",
                str(reports),
                "--parameter",
                f"api_id={account.api_id}",
            ],
            timeout=600,
        )
    assert run.returncode in (0, 1, 3), run.stdout + run.stderr
    (summary_path,) = reports.glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert {n["name"]: n["status"] for n in summary["notebooks"]} == {
        name: "ok"
        for name in (
            "00_diagnose",
            "01_connect_handler",
            "02_probe",
            "03_logs",
            "04_dynamodb",
            "05_iam",
        )
    }, summary["notebooks"]
    assert len({c.operation for c in calls}) > 5
    assert mutating(calls) == []


def test_get_function_hands_out_code_that_downloads(as_user: SimulatedAccount) -> None:
    """As AWS's presigned URL: the code comes from the location GetFunction gives, through the account."""
    import base64
    import hashlib
    import urllib.request

    import boto3

    account = as_user
    lam = boto3.Session(profile_name=PROFILE).client("lambda")
    name = str(account.info["functions"]["$connect"])
    with account.recording() as calls:
        answer = lam.get_function(FunctionName=name)
        with urllib.request.urlopen(answer["Code"]["Location"], timeout=10) as download:
            data = download.read()
    assert base64.b64encode(hashlib.sha256(data).digest()).decode() == answer["Configuration"]["CodeSha256"]
    assert [(c.endpoint, c.operation) for c in calls] == [
        ("control", "GetFunction"),
        ("control", "DownloadCode"),
    ]
    assert mutating(calls) == []


# -- bad input: one line naming the resource and the next step, never a traceback, nothing written ------------


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*")}


def test_a_profile_that_does_not_exist_is_one_line(account: SimulatedAccount) -> None:
    before = files_under(account.home)
    with account.recording() as calls:
        run = account.run(["diagnose", "--target", "aws", "--profile", "nope", "--region", "us-east-2"])
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert "profile 'nope'" in run.stderr and "aws configure list-profiles" in run.stderr
    assert calls == [] and files_under(account.home) == before


@pytest.mark.parametrize("command", [["diagnose"], ["iam"], ["logs", "events"], ["fix"]])
def test_expired_credentials_are_one_line(account: SimulatedAccount, command: list[str]) -> None:
    with account.refusing("expired"), account.recording() as calls:
        run = account.run([*command, *account.target_args()])
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
    assert "credentials of profile sim" in run.stderr and "ExpiredToken" in run.stderr
    assert "aws sso login" in run.stderr
    assert [c.operation for c in calls] == ["GetCallerIdentity"]


def test_a_role_the_kit_may_not_read(account: SimulatedAccount) -> None:
    reads = ("ListRolePolicies", "GetRolePolicy", "ListAttachedRolePolicies", "GetRole")
    with account.refusing("denied", reads):
        iam = account.run(["iam", *account.target_args()])
        diagnosis = account.run(["diagnose", "--json", *account.target_args()])
    assert iam.returncode == 2 and iam.stderr.count("\n") == 1, iam.stderr
    assert "AccessDenied" in iam.stderr and "chatgenius-websocket-handler" in iam.stderr
    result = json.loads(diagnosis.stdout)
    assert diagnosis.returncode == 3 and result["root_cause"]["id"] == "evidence-unread", result["root_cause"]
    read_iam = next(f for f in result["findings"] if f["check"] == "read-iam")
    assert "Grant the kit's identity the read permission" in read_iam["next_step"]


def test_a_function_policy_the_kit_may_not_read_is_unread_evidence(account: SimulatedAccount) -> None:
    """Issue 14: whether API Gateway may invoke $connect is read from the function's policy; AccessDenied on
    GetPolicy is evidence not read (inconclusive), never a pass and never "no policy"."""
    with account.refusing("denied", ("GetPolicy",)):
        diagnosis = account.run(["diagnose", "--json", *account.target_args()])
    result = json.loads(diagnosis.stdout)
    verdicts = {f["check"]: f for f in result["findings"]}
    assert diagnosis.returncode == 3 and result["root_cause"]["id"] == "evidence-unread", result["root_cause"]
    assert "GetPolicy" in verdicts["read-function-policy"]["evidence"], verdicts["read-function-policy"]
    assert verdicts["invoke-permission"]["verdict"] == "skip", verdicts["invoke-permission"]
    read = account.run(["diagnose", "--json", *account.target_args()])
    assert {f["check"]: f["verdict"] for f in json.loads(read.stdout)["findings"]}[
        "invoke-permission"
    ] == "pass"


# -- never an all-clear the evidence does not support ----------------------------------------------------------


def test_without_a_websocket_url_the_regions_only_api_is_read(account: SimulatedAccount) -> None:
    """The issue's first run: no URL, no env file. The region's one WebSocket API is found by listing."""
    run = account.run(
        ["diagnose", "--json", "--target", "aws", "--profile", PROFILE, "--region", "us-east-2"]
    )
    result = json.loads(run.stdout)
    verdicts = {f["check"]: f["verdict"] for f in result["findings"]}
    assert f"API {account.api_id}: the only WebSocket API in us-east-2" in run.stderr
    assert verdicts["connect-route"] == "pass" and verdicts["iam-put"] == "pass", verdicts
    # An all-clear only on the evidence: the logs hold the user's stored connection.
    assert (result["root_cause"]["id"] == "none") == (verdicts.get("all-clear") == "pass")
    assert run.returncode == causes.exit_code(result["root_cause"]["id"])


def test_several_apis_and_no_url_is_inconclusive_naming_them(account: SimulatedAccount) -> None:
    apigw = account.admin("apigatewayv2")
    other = apigw.create_api(
        Name="other", ProtocolType="WEBSOCKET", RouteSelectionExpression="$request.body.a"
    )
    try:
        run = account.run(
            ["diagnose", "--json", "--target", "aws", "--profile", PROFILE, "--region", "us-east-2"]
        )
    finally:
        apigw.delete_api(ApiId=other["ApiId"])
    result = json.loads(run.stdout)
    assert run.returncode == 3 and result["root_cause"]["id"] == "evidence-unread", result["root_cause"]
    assert (
        other["ApiId"] in result["root_cause"]["evidence"][0]
        and account.api_id in result["root_cause"]["evidence"][0]
    )
    assert "--api-id" in result["root_cause"]["evidence"][0]


def test_a_wrong_region_is_the_targets_problem(account: SimulatedAccount) -> None:
    """The issue's second run: the wrong --region found no API, and the kit blamed TABLE_NAME."""
    run = account.run(
        ["diagnose", "--json", "--target", "aws", "--profile", PROFILE, "--region", "us-west-2"]
    )
    result = json.loads(run.stdout)
    assert run.returncode == 3, run.stderr
    assert result["root_cause"]["id"] == "target-not-found"
    assert "No WebSocket API exists in us-west-2" in result["root_cause"]["evidence"][0]
    assert "no table chatgenius-connections in us-west-2 either" in result["root_cause"]["evidence"][0]
    assert "table-not-found" not in {f["cause"] for f in result["findings"]}


# The missing pieces, and the verdict each combination must give: a wrong target first, then what the stack's
# own evidence says, and never an all-clear while something it stands on is missing.
def expected_for(api: bool, table: bool, role: bool, logs: bool) -> str:
    if not api:
        return "target-not-found"
    if not table:
        return "table-not-found"  # the function's TABLE_NAME was read: the handler's table is gone
    if not role:
        return "evidence-unread"  # the role's policies could not be read
    if not logs:
        return "evidence-missing"  # no $connect seen answering, no probe
    return "none"


@pytest.fixture
def as_user(account: SimulatedAccount, monkeypatch: pytest.MonkeyPatch) -> SimulatedAccount:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in account.kit_env().items():
        if name.startswith(("AWS_", "HTTP", "NO_PROXY", "KIT_")):
            monkeypatch.setenv(name, value)
    return account


class _Owner:
    """What the account's owner removes and puts back, straight through the lab (never counted)."""

    def __init__(self, account: SimulatedAccount) -> None:
        self.account = account
        self.iam = account.admin("iam")
        self.role = str(account.info["role"]).rsplit("/", 1)[-1]
        self.saved: dict[str, Any] = {}

    def table(self, present: bool) -> None:
        from kit.dynamo import schema

        dynamodb = self.account.admin("dynamodb")
        exists = self.account.table in dynamodb.list_tables()["TableNames"]
        if present and not exists:
            schema.create_table(dynamodb, name=self.account.table)
        elif not present and exists:
            dynamodb.delete_table(TableName=self.account.table)

    def role_(self, present: bool) -> None:
        if not present and not self.saved:
            role = self.iam.get_role(RoleName=self.role)["Role"]
            inline = {
                name: self.iam.get_role_policy(RoleName=self.role, PolicyName=name)["PolicyDocument"]
                for name in self.iam.list_role_policies(RoleName=self.role)["PolicyNames"]
            }
            attached = [
                p["PolicyArn"]
                for p in self.iam.list_attached_role_policies(RoleName=self.role)["AttachedPolicies"]
            ]
            for name in inline:
                self.iam.delete_role_policy(RoleName=self.role, PolicyName=name)
            for arn in attached:
                self.iam.detach_role_policy(RoleName=self.role, PolicyArn=arn)
            self.iam.delete_role(RoleName=self.role)
            self.saved = {"role": role, "inline": inline, "attached": attached}
        elif present and self.saved:
            role = self.saved["role"]
            document = role["AssumeRolePolicyDocument"]
            self.iam.create_role(
                RoleName=self.role,
                Path=role.get("Path", "/"),
                AssumeRolePolicyDocument=document if isinstance(document, str) else json.dumps(document),
            )
            for name, policy in self.saved["inline"].items():
                self.iam.put_role_policy(
                    RoleName=self.role,
                    PolicyName=name,
                    PolicyDocument=policy if isinstance(policy, str) else json.dumps(policy),
                )
            for arn in self.saved["attached"]:
                self.iam.attach_role_policy(RoleName=self.role, PolicyArn=arn)
            self.saved = {}

    def log_groups(self) -> None:
        logs = self.account.admin("logs")
        for page in logs.get_paginator("describe_log_groups").paginate():
            for group in page["logGroups"]:
                logs.delete_log_group(logGroupName=group["logGroupName"])


def test_every_combination_of_missing_api_table_role_and_log_groups(as_user: SimulatedAccount) -> None:
    """Last in this module: deleting the log groups ends the account's logging for anyone after."""
    account = as_user
    owner = _Owner(account)
    seen: dict[tuple[bool, ...], str] = {}
    combinations = sorted(itertools.product((True, False), repeat=4), key=lambda c: not c[3])  # logs last
    logs_deleted = False
    try:
        for api, table, role, logs in combinations:
            if not logs and not logs_deleted:
                owner.log_groups()
                logs_deleted = True
            owner.table(table)
            owner.role_(role)
            target = Target.aws(
                profile=PROFILE,
                env_file=account.env_file,
                api_id=account.api_id if api else "zz00000000",
            )
            with account.recording() as calls:
                diagnosis = ranking.diagnose(reading.read_evidence(target))
            assert mutating(calls) == []
            seen[(api, table, role, logs)] = str(diagnosis.root_cause["id"])
    finally:
        owner.table(True)
        owner.role_(True)
    wanted = {combo: expected_for(*combo) for combo in seen}
    assert seen == wanted
    assert len(seen) == 16
    assert all(
        causes.exit_code(cause) == (0 if cause == "none" else 1 if cause == "table-not-found" else 3)
        for cause in seen.values()
    )


def test_the_fork_server_runs_kit_as_a_new_process_would_and_stops_it_by_its_pidfd(
    tmp_path: Path, account: SimulatedAccount
) -> None:
    """The accounts' `kit lab up` comes from a fork server (account.forked): the child gets the request's
    arguments, environment, folder and stderr file and SIGCHLD's default (the lab waits on its own
    children), its failure is the kit's one line, and SIGTERM through the pidfd stops that lab cleanly (its
    lab file goes with it)."""
    if not account_module._pidfds_work():
        pytest.skip("no pidfd on this system: the accounts start as new Python processes")
    env = {**os.environ, "KIT_STATE_DIR": str(tmp_path / "state")}
    wrong = account_module.forked(
        ["lab", "up", "--scenario", "no-such"], env, tmp_path, tmp_path / "wrong.log"
    )
    assert wrong is not None
    assert wrong.wait(timeout=30) == 2  # the kit's exit code for a usage error, collected by the server
    assert wrong.poll() == 2
    said = (tmp_path / "wrong.log").read_text()
    assert said.count("\n") == 1 and "no-such" in said and "Traceback" not in said, said
    wrong.close()

    lab = account_module.forked(["lab", "up", "--dynamodb", "moto"], env, tmp_path, tmp_path / "lab.log")
    assert lab is not None
    lab_file = tmp_path / "state" / "lab.json"
    deadline = time.monotonic() + 60
    while not lab_file.exists() and lab.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lab_file.exists(), (tmp_path / "lab.log").read_text()
    assert json.loads(lab_file.read_text())["pid"] == lab.pid  # this child, not the server, runs the lab
    # Another account, not a copy of the module's (forked from the same server): each child reseeds moto's
    # ids, which would otherwise repeat the server's sequence in every account.
    assert json.loads(lab_file.read_text())["api_id"] != account.api_id
    assert Path(f"/proc/{lab.pid}/cwd").resolve() == tmp_path.resolve()
    status = dict(line.split(":\t", 1) for line in Path(f"/proc/{lab.pid}/status").read_text().splitlines())
    assert not int(status["SigIgn"], 16) & (1 << (signal.SIGCHLD - 1)), "SIGCHLD is ignored in the lab"
    # The lab holds no end of the server's socket (nor the test's): only the server may read requests.
    server = account_module._FORK_SERVERS["server"][0]
    server_end = os.readlink(f"/proc/{server.pid}/fd/{server.args[-1]}")
    held = {os.readlink(fd) for fd in Path(f"/proc/{lab.pid}/fd").iterdir()}
    assert server_end.startswith("socket:") and server_end not in held
    assert lab.poll() is None
    lab.send_signal(signal.SIGTERM)
    assert lab.wait(timeout=60) == 0  # stopped as on Ctrl-C: a clean exit
    assert not lab_file.exists(), "the lab did not stop cleanly"
    lab.close()
