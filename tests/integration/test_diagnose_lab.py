"""The diagnosis against the lab: each scenario's root cause is found, and so are faults made with boto3.

``read_evidence`` reads the lab through its AWS APIs and runs the probe, which connects the way the
scenario's client does (the browser hook's part: that is the one thing a scenario hands the kit). What the
scenario changed on the server side, the diagnosis has to find by itself; the last test of the first part
checks that it cannot peek. The second part breaks one running healthy lab the way someone with a console
would (IAM, Lambda, API Gateway calls), diagnoses only what happened since, and puts the configuration back.

Only one lab runs per process: each scenario test starts and stops its own, and the fault tests share one
class-scoped lab that is stopped before anything else starts.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import shutil
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kit import fix, fix_apply
from kit.config import lambda_integration_uri
from kit.diagnose import causes, ranking
from kit.diagnose.findings import Diagnosis, Evidence
from kit.diagnose.reading import read_evidence
from kit.lab.lab import Lab
from kit.lab.provision import DEFAULT_RUNTIME, POLICY_NAME, ROLE_NAME, handler_zip, load_policy
from kit.lab.scenarios import SCENARIOS, ClientPlan
from kit.probe_core import ProbePlan, ProbeTimeouts

from .labclient import (
    EmptyDynamoDB,
    authorizer_attached,
    deploy,
    environment_changed,
    handshake_status,
    hold_engine_restart,
    wait_until,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TIMEOUTS = ProbeTimeouts(handshake_s=5, item_wait_s=2, delivery_wait_s=2)
KIT = ROOT / "kit"
# Every module of the diagnosis and of the evidence it reads (packages whole, so a new module is covered).
EVIDENCE_MODULES = (
    "config.py",
    "iam.py",
    "policy.py",
    "logs.py",
    "probe.py",
    "probe_core.py",
    "probe_logs.py",
    "frames.py",
    "fix.py",
)
EVIDENCE_PACKAGES = ("diagnose", "dynamo", "logparse")
DIAGNOSIS_MODULES = tuple(
    sorted(
        [
            str(path.relative_to(KIT))
            for package in EVIDENCE_PACKAGES
            for path in (KIT / package).rglob("*.py")
        ]
        + list(EVIDENCE_MODULES)
    )
)
EXTRA_DENY_POLICY = "kit-test-deny-put"
TYPO_TABLE = "chatgenius-connection"
INVOKE_STATEMENT = "apigateway-invoke"  # the statement kit.lab.provision adds to the function's policy
NEW_FUNCTION = "chatgenius-websocket-v2"


def probe_plan(client: ClientPlan, **changes: Any) -> ProbePlan:
    return ProbePlan.from_client_plan(client, clients=2, timeouts=TIMEOUTS, **changes)


def run_diagnosis(
    lab: Lab, client: ClientPlan | None, since: datetime | None = None, **plan_changes: Any
) -> Diagnosis:
    """Read the evidence (with a probe playing ``client``, if any), diagnose; every section must be read."""
    return diagnosis_and_evidence(lab, client, since, **plan_changes)[0]


def diagnosis_and_evidence(
    lab: Lab, client: ClientPlan | None, since: datetime | None = None, **plan_changes: Any
) -> tuple[Diagnosis, Evidence]:
    plan = probe_plan(client, **plan_changes) if client is not None else None
    evidence = read_evidence(lab.target(), since=since, probe_plan=plan)
    assert evidence.problems == {}, evidence.problems
    diagnosis = ranking.diagnose(evidence)
    broken = diagnosis.findings[diagnosis.findings["evidence"].str.contains("the check itself failed")]
    assert broken.empty, ranking.summary_text(diagnosis)
    return diagnosis, evidence


def finding(diagnosis: Diagnosis, check: str) -> pd.Series:
    rows = diagnosis.findings[diagnosis.findings["check"] == check]
    assert len(rows) == 1, ranking.summary_text(diagnosis)
    return rows.iloc[0]


# --------------------------------------------------------------------------------------------------------
# (a) Every scenario: the root cause it reproduces is the one the diagnosis ranks first. Run on the simulated
# account and on its mirror, with the fix verified there: tests/integration/test_mirror_scenarios.py.
# --------------------------------------------------------------------------------------------------------


# The seed's scenarios with the seed's handler as the team wrote it, in JavaScript (kit/handler/seed.mjs).
NODE_SEED_SCENARIOS = [name for name in SCENARIOS if name.startswith("seed-")]


@pytest.mark.skipif(shutil.which("node") is None, reason="no `node` on PATH: the Node.js runtime cannot run")
@pytest.mark.parametrize("name", NODE_SEED_SCENARIOS)
def test_the_diagnosis_names_the_root_cause_of_the_node_seed(
    name: str, empty_dynamodb: EmptyDynamoDB
) -> None:
    scenario = SCENARIOS[name]
    with Lab(name, write_lab_file=False, dynamodb=empty_dynamodb(), runtime="nodejs20.x") as lab:
        configuration = (
            lab.target().client("lambda").get_function_configuration(FunctionName="chatgenius-websocket")
        )
        assert configuration["Runtime"] == "nodejs20.x"
        diagnosis = run_diagnosis(lab, scenario.client)
    assert diagnosis.root_cause["id"] == scenario.reproduces, ranking.summary_text(diagnosis)


def test_the_diagnosis_names_a_stale_deployment_and_its_fix_deploys(empty_dynamodb: EmptyDynamoDB) -> None:
    """The stale-deployment scenario (its mirror cannot reproduce it: test_mirror_scenarios.py says why)."""
    scenario = SCENARIOS["stale-deployment"]
    with Lab(scenario.name, write_lab_file=False, dynamodb=empty_dynamodb()) as lab:
        diagnosis, evidence = diagnosis_and_evidence(lab, scenario.client)
        summary = ranking.summary_text(diagnosis)
        assert diagnosis.root_cause["id"] == "stale-deployment", summary
        assert "chatgenius-connect-v1" in " ".join(diagnosis.root_cause["evidence"]), summary
        planned = fix.plan(diagnosis, evidence)
        assert [c.operation for c in planned.changes] == ["deploy_stage"], planned.text()

        def read(since: datetime, client: Any) -> Evidence:
            return read_evidence(lab.target(), since=since, probe_plan=probe_plan(scenario.client))

        verified, applied = fix_apply.verify(lab.target(), planned, read, ranking.diagnose)
        assert verified.fixed, verified.text
        fix_apply.undo(lab.target(), applied)  # the stage serves the old deployment again
        again, _ = diagnosis_and_evidence(lab, scenario.client, since=datetime.now(UTC))
        assert again.root_cause["id"] == "stale-deployment", ranking.summary_text(again)


def _scenario_uses(path: Path) -> list[str]:
    """The code in ``path`` (not its docstrings or comments) that imports the scenarios or reads one."""
    uses = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        uses += [
            f"line {node.lineno}: imports {module}"
            for module in modules
            if module in ("kit.lab.scenarios", "kit.lab.lab", "kit.local.read_lab_file")
            or "scenario" in module
        ]
        if isinstance(node, ast.Attribute) and "scenario" in node.attr.lower():
            uses.append(f"line {node.lineno}: reads .{node.attr}")
        if isinstance(node, ast.Name) and "scenario" in node.id.lower():
            uses.append(f"line {node.lineno}: uses {node.id}")
        if isinstance(node, ast.Constant) and node.value in ("scenario", "lab.json"):
            uses.append(f"line {node.lineno}: the key {node.value!r}")
    return uses


def test_the_scenario_check_covers_the_diagnosis_package() -> None:
    assert {"diagnose/reading.py", "diagnose/ranking.py", "diagnose/findings.py"} <= set(DIAGNOSIS_MODULES)
    assert all((KIT / module).is_file() for module in DIAGNOSIS_MODULES)


@pytest.mark.parametrize("module", DIAGNOSIS_MODULES)
def test_the_diagnosis_does_not_read_the_scenario(module: str) -> None:
    path = KIT / module
    mentions = [line for line in path.read_text().splitlines() if "scenario" in line.lower()]
    assert _scenario_uses(path) == [], mentions


def test_the_scenario_finder_would_see_a_peek(tmp_path: Path) -> None:
    peek = tmp_path / "peek.py"
    peek.write_text(
        "from kit.lab import scenarios\n"
        "import kit.lab.scenarios\n"
        "from kit.lab.lab import Lab\n"
        "from kit.local import read_lab_file\n"
        "expected = read_lab_file()['scenario']\n"
        "name = lab.scenario.name\n"
    )
    assert _scenario_uses(peek) == [
        "line 1: imports kit.lab.scenarios",
        "line 2: imports kit.lab.scenarios",
        "line 3: imports kit.lab.lab",
        "line 4: imports kit.local.read_lab_file",
        "line 5: the key 'scenario'",
        "line 6: reads .scenario",
    ]


# --------------------------------------------------------------------------------------------------------
# (b) Faults injected with boto3 into one running healthy lab, each diagnosed and then undone
# --------------------------------------------------------------------------------------------------------


def _policy_without(action: str) -> str:
    document = json.loads(load_policy())
    edited = copy.deepcopy(document)
    for statement in edited["Statement"]:
        actions = statement.get("Action")
        if isinstance(actions, list) and action in actions:
            actions.remove(action)
    assert edited != document, f"{action} is not in iam-policies.json"
    return json.dumps(edited)


def _route(lab: Lab, route_key: str) -> dict[str, Any] | None:
    apigw = lab.target().client("apigatewayv2")
    assert lab.resources is not None
    for route in apigw.get_routes(ApiId=lab.resources.api_id)["Items"]:
        if route["RouteKey"] == route_key:
            return dict(route)
    return None


@pytest.fixture(scope="class")
def lab() -> Iterator[Lab]:
    """One healthy lab for the fault tests, stopped when the class is done."""
    with Lab("healthy", write_lab_file=False) as running:
        yield running


class TestFaultsMadeThroughAws:
    """Each test breaks one thing, diagnoses what happened since, and restores it in ``finally``."""

    def test_put_item_removed_from_the_role_policy(self, lab: Lab) -> None:
        iam = lab.target().client("iam")
        since = datetime.now(UTC)
        iam.put_role_policy(
            RoleName=ROLE_NAME, PolicyName=POLICY_NAME, PolicyDocument=_policy_without("dynamodb:PutItem")
        )
        try:
            diagnosis = run_diagnosis(lab, ClientPlan(), since)
        finally:
            iam.put_role_policy(RoleName=ROLE_NAME, PolicyName=POLICY_NAME, PolicyDocument=load_policy())
        assert diagnosis.root_cause["id"] == "put-access-denied", ranking.summary_text(diagnosis)
        assert "implicit" in finding(diagnosis, "iam-put")["evidence"]

    def test_explicit_deny_in_a_second_inline_policy(self, lab: Lab) -> None:
        iam = lab.target().client("iam")
        deny = {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "NoWrites", "Effect": "Deny", "Action": "dynamodb:PutItem", "Resource": "*"}
            ],
        }
        since = datetime.now(UTC)
        iam.put_role_policy(RoleName=ROLE_NAME, PolicyName=EXTRA_DENY_POLICY, PolicyDocument=json.dumps(deny))
        try:
            diagnosis = run_diagnosis(lab, ClientPlan(), since)
        finally:
            iam.delete_role_policy(RoleName=ROLE_NAME, PolicyName=EXTRA_DENY_POLICY)
        assert diagnosis.root_cause["id"] == "put-access-denied", ranking.summary_text(diagnosis)
        put = finding(diagnosis, "iam-put")
        assert "explicit" in put["evidence"]
        assert EXTRA_DENY_POLICY in put["evidence"]
        assert any("explicit" in text for text in diagnosis.root_cause["evidence"])

    def test_table_name_typo_in_the_environment(self, lab: Lab) -> None:
        assert lab.resources is not None
        function = lab.resources.function_name
        lambda_client = lab.target().client("lambda")
        before = lambda_client.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
        assert before["TABLE_NAME"] != TYPO_TABLE
        since = datetime.now(UTC)
        lambda_client.update_function_configuration(
            FunctionName=function, Environment={"Variables": before | {"TABLE_NAME": TYPO_TABLE}}
        )
        try:
            diagnosis = run_diagnosis(lab, ClientPlan(), since)
        finally:
            lambda_client.update_function_configuration(
                FunctionName=function, Environment={"Variables": before}
            )
        assert diagnosis.root_cause["id"] == "table-not-found", ranking.summary_text(diagnosis)
        assert f"TABLE_NAME={TYPO_TABLE}" in finding(diagnosis, "env-table")["evidence"]
        # The role is fine for the real table: the typo is the name's fault, not IAM's.
        assert finding(diagnosis, "iam-put")["verdict"] == "pass"
        after = lambda_client.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
        assert after == before

    def test_connect_route_deleted(self, lab: Lab) -> None:
        assert lab.resources is not None
        apigw = lab.target().client("apigatewayv2")
        connect = _route(lab, "$connect")
        assert connect is not None
        since = datetime.now(UTC)
        apigw.delete_route(ApiId=lab.resources.api_id, RouteId=connect["RouteId"])
        deploy(lab)  # as on AWS, the deletion takes effect once deployed
        try:
            diagnosis = run_diagnosis(lab, ClientPlan(), since)
        finally:
            apigw.create_route(ApiId=lab.resources.api_id, RouteKey="$connect", Target=connect["Target"])
            deploy(lab)
        summary = ranking.summary_text(diagnosis)
        assert diagnosis.root_cause["id"] == "connect-route-missing", summary
        assert finding(diagnosis, "connect-route")["verdict"] == "fail"
        assert finding(diagnosis, "connection-id-mapping")["verdict"] == "skip"
        # The probe's connections were accepted and nothing ran: the logs say so too.
        assert finding(diagnosis, "connect-invoked")["verdict"] == "warn", summary
        restored = _route(lab, "$connect")
        assert restored is not None
        assert restored["Target"] == connect["Target"]
        # Without ``since`` the last hour's logs still hold those connections (the next test starts after).
        unbounded = run_diagnosis(lab, None)
        # The last hour also holds the handshakes the fixed handler refused (500) while earlier tests denied
        # its write: seen in the logs, they are never overruled by an all-clear. Nothing else fails.
        if unbounded.root_cause["id"] != "none":
            assert unbounded.root_cause["id"] == "handshake-refused", ranking.summary_text(unbounded)
            assert "in the logs answered HTTP 500" in unbounded.root_cause["evidence"][0]
        assert finding(unbounded, "connect-invoked")["verdict"] == "warn", ranking.summary_text(unbounded)

    # The three below leave refused handshakes and undelivered messages in the logs: they run after the
    # unbounded diagnosis above, which reads the last hour.

    def test_invoke_permission_removed_from_the_function(self, lab: Lab) -> None:
        assert lab.resources is not None
        lambda_client = lab.target().client("lambda")
        function = lab.resources.function_name
        granted = json.loads(lambda_client.get_policy(FunctionName=function)["Policy"])["Statement"]
        assert [statement["Sid"] for statement in granted] == [INVOKE_STATEMENT]
        source_arn = granted[0]["Condition"]["ArnLike"]["AWS:SourceArn"]
        since = datetime.now(UTC)
        lambda_client.remove_permission(FunctionName=function, StatementId=INVOKE_STATEMENT)
        try:
            diagnosis = run_diagnosis(lab, ClientPlan(), since, actions=("message",))
        finally:
            lambda_client.add_permission(
                FunctionName=function,
                StatementId=INVOKE_STATEMENT,
                Action="lambda:InvokeFunction",
                Principal="apigateway.amazonaws.com",
                SourceArn=source_arn,
            )
        summary = ranking.summary_text(diagnosis)
        # The function has no resource policy left (GetPolicy: ResourceNotFoundException): the cause, with
        # API Gateway's own words for the probe's handshakes beside it.
        assert diagnosis.root_cause["id"] == "invoke-permission-missing", summary
        evidence = " ".join(diagnosis.root_cause["evidence"])
        assert "There is no resource policy" in evidence, summary
        assert "/prod/$connect" in evidence, summary
        assert "2 $connect requests failed with" in evidence, summary
        assert "Invalid permissions on Lambda function" in evidence, summary
        refused = finding(diagnosis, "handshake")
        assert refused["cause"] == "handshake-refused", summary  # still seen, ranked after its cause
        assert "2 of 2 probe handshakes refused (HTTP 500 ×2)" in refused["evidence"], summary
        assert causes.exit_code(diagnosis.root_cause["id"]) == 1
        # No handler ran, so nothing crashed: the crash check's pass no longer reads as an all-clear.
        assert finding(diagnosis, "handler-crash")["verdict"] == "pass"
        assert finding(diagnosis, "probe")["verdict"] == "skip", summary

    def test_route_selection_expression_changed(self, lab: Lab) -> None:
        assert lab.resources is not None
        apigw = lab.target().client("apigatewayv2")
        api_id = lab.resources.api_id
        before = apigw.get_api(ApiId=api_id)["RouteSelectionExpression"]
        assert before == "$request.body.action"
        since = datetime.now(UTC)
        apigw.update_api(ApiId=api_id, RouteSelectionExpression="$request.body.type")
        deploy(lab)
        try:
            diagnosis = run_diagnosis(lab, ClientPlan(), since, actions=("message",))
        finally:
            apigw.update_api(ApiId=api_id, RouteSelectionExpression=before)
            deploy(lab)
        summary = ranking.summary_text(diagnosis)
        assert diagnosis.root_cause["id"] == "route-selection-mismatch", summary
        evidence = " ".join(diagnosis.root_cause["evidence"])
        assert "the API selects routes with '$request.body.type'" in evidence, summary
        assert "the clients' frames carry action, message" in evidence, summary
        assert "no route matches route selection value []" in evidence, summary
        assert "$request.body.action" in finding(diagnosis, "message-routing")["next_step"], summary
        # The symptom is still named, below the cause that explains it.
        assert finding(diagnosis, "delivery")["cause"] == "not-delivered", summary
        # The connections themselves were fine: stored, visible, the handshake accepted.
        for check in ("probe", "handshake", "write-on-connect"):
            assert finding(diagnosis, check)["verdict"] == "pass", summary
        assert apigw.get_api(ApiId=api_id)["RouteSelectionExpression"] == before

    def test_message_route_created_again_without_a_deployment(self, lab: Lab) -> None:
        """Issue 14: the message route deleted (deployed), then created again and not deployed: the stage still
        answers its messages Forbidden. message-route-missing names it; stale-deployment does not claim it."""
        assert lab.resources is not None
        apigw = lab.target().client("apigatewayv2")
        api_id = lab.resources.api_id
        route = _route(lab, "message")
        assert route is not None
        apigw.delete_route(ApiId=api_id, RouteId=route["RouteId"])
        deploy(lab)
        apigw.create_route(ApiId=api_id, RouteKey="message", Target=route["Target"])
        since = datetime.now(UTC)
        try:
            diagnosis = run_diagnosis(lab, ClientPlan(), since, actions=("message",))
        finally:
            deploy(lab)
        summary = ranking.summary_text(diagnosis)
        assert diagnosis.root_cause["id"] == "message-route-missing", summary
        evidence = " ".join(diagnosis.root_cause["evidence"])
        assert "route message exists, yet the stage answers Forbidden for it" in evidence, summary
        assert finding(diagnosis, "deployment")["verdict"] == "pass", summary

    def test_management_endpoint_set_to_another_stage(self, lab: Lab) -> None:
        """Issue 14: the function told to post to another stage's @connections endpoint (its mirror cannot
        reproduce it: test_mirror_scenarios.py says why)."""
        assert lab.resources is not None
        resources = lab.resources
        wrong = f"https://{resources.api_id}.execute-api.{resources.region}.amazonaws.com/production"
        since = datetime.now(UTC)
        with environment_changed(lab, MANAGEMENT_ENDPOINT=wrong):
            diagnosis, evidence = diagnosis_and_evidence(lab, ClientPlan(), since, actions=("message",))
        summary = ranking.summary_text(diagnosis)
        assert diagnosis.root_cause["id"] == "management-endpoint-wrong", summary
        shown = " ".join(diagnosis.root_cause["evidence"])
        assert f"MANAGEMENT_ENDPOINT={wrong} (stage production, not {resources.stage})" in shown, summary
        assert "EndpointConnectionError" in shown, summary
        planned = fix.plan(diagnosis, evidence)
        assert [c.params.get("Remove") for c in planned.changes] == [["MANAGEMENT_ENDPOINT"]], planned.text()

    def test_connect_integration_changed_without_a_deployment(self, lab: Lab) -> None:
        """Issue 14: the $connect integration re-pointed at a new function and never deployed; the stage still
        invokes the old one, and the diagnosis says the stage serves an older deployment."""
        assert lab.resources is not None
        resources = lab.resources
        lambda_client = lab.target().client("lambda")
        apigw = lab.target().client("apigatewayv2")
        lambda_client.create_function(
            FunctionName=NEW_FUNCTION,
            Runtime=DEFAULT_RUNTIME,
            Role=resources.role_arn,
            Handler="app.handler",
            Code={"ZipFile": handler_zip()},
            Environment={"Variables": {"TABLE_NAME": resources.table, "AUTH_MODE": "email"}},
        )
        lab.target().client("logs").create_log_group(logGroupName=f"/aws/lambda/{NEW_FUNCTION}")
        new_arn = f"arn:aws:lambda:{resources.region}:{resources.account_id}:function:{NEW_FUNCTION}"
        connect = _route(lab, "$connect")
        assert connect is not None
        integration_id = connect["Target"].removeprefix("integrations/")
        before = apigw.get_integration(ApiId=resources.api_id, IntegrationId=integration_id)["IntegrationUri"]
        since = datetime.now(UTC)
        apigw.update_integration(
            ApiId=resources.api_id,
            IntegrationId=integration_id,
            IntegrationUri=lambda_integration_uri(resources.region, new_arn),
        )
        try:
            diagnosis = run_diagnosis(lab, ClientPlan(), since)
        finally:
            apigw.update_integration(
                ApiId=resources.api_id, IntegrationId=integration_id, IntegrationUri=before
            )
            lambda_client.delete_function(FunctionName=NEW_FUNCTION)
            lab.target().client("logs").delete_log_group(logGroupName=f"/aws/lambda/{NEW_FUNCTION}")
        summary = ranking.summary_text(diagnosis)
        assert diagnosis.root_cause["id"] == "stale-deployment", summary
        evidence = " ".join(diagnosis.root_cause["evidence"])
        assert f"$connect invoked {resources.function_arn}" in evidence, summary
        assert new_arn in evidence, summary
        # The deployed, old function still stores the connections: only the drift is wrong.
        assert finding(diagnosis, "probe")["verdict"] == "pass", summary

    def test_connect_throttled_to_zero_on_the_stage(self, lab: Lab) -> None:
        """Issue 14: the stage's route throttling for $connect lowered to 0/0 (UpdateStage, live without a
        deployment): every handshake gets 429, and the diagnosis names the throttle from GetStage and the 429s."""
        assert lab.resources is not None
        apigw = lab.target().client("apigatewayv2")
        names = {"ApiId": lab.resources.api_id, "StageName": lab.resources.stage}
        before = apigw.get_stage(**names).get("RouteSettings") or {}
        since = datetime.now(UTC)
        apigw.update_stage(
            **names, RouteSettings={"$connect": {"ThrottlingBurstLimit": 0, "ThrottlingRateLimit": 0.0}}
        )
        try:
            diagnosis, evidence = diagnosis_and_evidence(lab, ClientPlan(), since=since)
        finally:
            apigw.update_stage(**names, RouteSettings=before)
        summary = ranking.summary_text(diagnosis)
        assert diagnosis.root_cause["id"] == "throttled", summary
        said = finding(diagnosis, "throttling")["evidence"]
        assert "rate 0 per second, burst 0 (RouteSettings[$connect])" in said, summary
        assert "probe handshakes answered 429" in said and "in API Gateway's logs answered 429" in said, (
            summary
        )
        planned = fix.plan(diagnosis, evidence)
        assert [change.operation for change in planned.changes] == ["stage_throttling"]
        assert planned.changes[0].params["Settings"] == ["RouteSettings[$connect]"]

    def test_a_denying_authorizer_attached_to_connect_and_deployed(self, lab: Lab) -> None:
        """Issue 14: a Lambda REQUEST authorizer whose policy denies, attached to $connect (CreateAuthorizer,
        UpdateRoute CUSTOM) and deployed: every handshake is refused, and the diagnosis names the authorizer."""
        since = datetime.now(UTC)
        with authorizer_attached(lab, "deny"):
            diagnosis = run_diagnosis(lab, ClientPlan(), since)
        summary = ranking.summary_text(diagnosis)
        assert diagnosis.root_cause["id"] == "authorizer-denied", summary
        assert "403" in " ".join(diagnosis.root_cause["evidence"]), summary
        # The refused handshakes invoked no integration by design: that is no stale deployment.
        assert finding(diagnosis, "deployment")["verdict"] != "fail", summary

    def test_aws_iam_put_on_connect(self, lab: Lab) -> None:
        """Issue 14: AWS_IAM on $connect, deployed. Browsers that do not sign are refused (403) and named as
        connect-iam-denied; the kit's probe reads the route and signs with the target's credentials, so its
        own handshakes are not a false "handshake refused"."""
        assert lab.resources is not None
        apigw = lab.target().client("apigatewayv2")
        connect = _route(lab, "$connect")
        assert connect is not None
        since = datetime.now(UTC)
        apigw.update_route(
            ApiId=lab.resources.api_id, RouteId=connect["RouteId"], AuthorizationType="AWS_IAM"
        )
        deploy(lab)
        try:
            for user in ("alice@example.com", "bob@example.com"):  # the app's hook: an unsigned URL
                assert handshake_status(lab, f"token={user}&workspaceId=ws-1") == 403
            diagnosis = run_diagnosis(lab, ClientPlan(), since)
        finally:
            apigw.update_route(
                ApiId=lab.resources.api_id, RouteId=connect["RouteId"], AuthorizationType="NONE"
            )
            deploy(lab)
        summary = ranking.summary_text(diagnosis)
        assert diagnosis.root_cause["id"] == "connect-iam-denied", summary
        assert "2 $connect requests in the logs answered 403" in diagnosis.root_cause["evidence"][0], summary
        assert finding(diagnosis, "probe")["verdict"] == "pass", summary  # signed, accepted, stored
        # The probe's own handshakes were accepted; the 403s in the logs are the unsigned clients'.
        assert finding(diagnosis, "handshake")["verdict"] == "pass", summary

    def test_dynamodb_engine_killed(self, lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
        """Issue 10 item 9: an engine that does not answer is a target problem, never a missing permission."""
        engine = lab.dynamodb_engine
        assert lab.resources is not None and engine is not None
        if engine.name != "dynamodb-local" or engine.pid is None:
            pytest.skip("only DynamoDB Local runs in a process of its own that can be killed")
        # The lab restarts a dead engine by itself; the restart is held until the evidence has been gathered,
        # as if the engine took that long to come back, so the diagnosis certainly ran during the outage.
        gathered = hold_engine_restart(monkeypatch)
        since = datetime.now(UTC)
        os.kill(engine.pid, signal.SIGKILL)
        try:
            # The lab has seen the death (and holds its restart) before the evidence is gathered.
            wait_until(lambda: lab.info is not None and lab.info.dynamodb_status == "restarting")
            plan = probe_plan(ClientPlan(), actions=("message",))
            evidence = read_evidence(lab.target(), since=since, probe_plan=plan)
        finally:
            gathered.set()
            # The lab re-creates its table with the engine; later tests need it back.
            wait_until(lambda: lab.info is not None and lab.info.dynamodb_status == "up", timeout=120)
        diagnosis = ranking.diagnose(evidence)
        summary = ranking.summary_text(diagnosis)
        assert diagnosis.root_cause["id"] == "target-unreachable", summary
        assert causes.exit_code(diagnosis.root_cause["id"]) == 3
        assert evidence.problem_kinds.get("tables") == "unreachable", evidence.problems
        assert finding(diagnosis, "read-tables")["cause"] == "target-unreachable", summary
        assert not diagnosis.findings["evidence"].str.contains("dynamodb:ListTables").any(), summary
        # What the probe saw is still there, behind the cause that explains it.
        assert finding(diagnosis, "handshake")["cause"] == "handshake-refused", summary

    def test_the_restored_lab_is_healthy_again(self, lab: Lab) -> None:
        since = datetime.now(UTC)
        diagnosis = run_diagnosis(lab, ClientPlan(), since)
        summary = ranking.summary_text(diagnosis)
        assert diagnosis.root_cause["id"] == "none", summary
        assert "fail" not in set(diagnosis.findings["verdict"]), summary
        assert finding(diagnosis, "probe")["verdict"] == "pass", summary
        # Only the traffic since the restore counts: earlier faults' connections do not mix in.
        assert finding(diagnosis, "connect-invoked")["verdict"] == "pass", summary
        assert finding(diagnosis, "handler-crash")["verdict"] == "pass", summary
        # The fixed handler writes on $connect, inside the invocation; the kit's own write works too.
        for check in ("write-on-connect", "write-awaited", "direct-write", "handshake", "delivery"):
            assert finding(diagnosis, check)["verdict"] == "pass", summary
