"""kit.iam offline: policy files in every accepted shape, the permission frame, recorded IAM and simulator answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber

from kit import iam, permissions, policy
from kit.errors import AwsError, ConfigurationError
from kit.iam import (
    PERMISSION_COLUMNS,
    Simulation,
    permission_frame,
    policies_from_documents,
    policies_from_file,
)

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "tests" / "data" / "pages"
REPO_POLICY = ROOT / "iam-policies.json"
REGION = "us-east-2"
ACCOUNT = "123456789012"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/chatgenius-connections"
INDEX_ARN = f"{TABLE_ARN}/index/workspaceIndex"
CHECKS = permissions.required_checks(
    region=REGION,
    account=ACCOUNT,
    table="chatgenius-connections",
    index="workspaceIndex",
    api_id="prqb9y0mvd",
    stage="prod",
    function_name="chatgenius-websocket",
)


def load(name: str) -> Any:
    return json.loads((PAGES / name).read_text())


class FakeTarget:
    kind = "aws"
    region = REGION
    table = "chatgenius-connections"
    index = "workspaceIndex"
    api_id: str | None = "prqb9y0mvd"
    stage: str | None = "prod"
    label = "aws us-east-2"

    def __init__(self, **clients: Any) -> None:
        self._clients = clients

    def client(self, service: str) -> Any:
        return self._clients[service]


def offline_client(service: str) -> Any:
    return boto3.client(
        service, region_name=REGION, aws_access_key_id="AKIAFIXTURE00000XYZ1", aws_secret_access_key="fixture"
    )


# --------------------------------------------------------------------------------------------------
# Policy files


def test_the_repos_policy_file_allows_every_required_permission() -> None:
    frame = permission_frame(policies_from_file(REPO_POLICY), CHECKS)
    assert list(frame.columns) == list(PERMISSION_COLUMNS)
    assert frame["decision"].tolist() == ["allowed"] * len(CHECKS)
    assert (
        frame["statement"].str.contains('policy "iam-policies" (file:iam-policies.json)', regex=False).all()
    )
    assert frame["simulated"].isna().all()
    assert frame["agrees"].isna().all()


@pytest.mark.parametrize(
    ("file_name", "names"),
    [
        ("policies-map.json", ["connections", "logs"]),
        ("policies-list.json", ["policies-list[0]", "from-get-role-policy"]),
        ("policies-malformed.json", ["policies-malformed"]),
    ],
)
def test_policy_files_in_every_shape(tmp_path: Path, file_name: str, names: list[str]) -> None:
    policies = policies_from_file(PAGES / file_name)
    assert [p.name for p in policies] == names


@pytest.mark.parametrize(
    ("file_name", "action", "resource", "decision", "statement"),
    [
        ("policies-map.json", "dynamodb:Query", INDEX_ARN, "allowed", 'policy "connections"'),
        (
            "policies-map.json",
            "logs:PutLogEvents",
            "arn:aws:logs:us-east-2:1:log-group:x",
            "allowed",
            'policy "logs"',
        ),
        ("policies-map.json", "dynamodb:GetItem", TABLE_ARN, "implicit-deny", None),
        # The Deny's condition needs aws:SecureTransport, which the checks do not provide: not applied.
        ("policies-list.json", "dynamodb:PutItem", TABLE_ARN, "allowed", 'policy "policies-list[0]"'),
        ("policies-list.json", "dynamodb:Query", INDEX_ARN, "implicit-deny", None),
        ("policies-malformed.json", "dynamodb:PutItem", TABLE_ARN, "allowed", "Statement[0]"),
        ("policies-malformed.json", "dynamodb:Query", INDEX_ARN, "implicit-deny", None),
    ],
)
def test_permission_frame_decides_like_kit_policy(
    file_name: str, action: str, resource: str, decision: str, statement: str | None
) -> None:
    frame = permission_frame(policies_from_file(PAGES / file_name), [("purpose", action, resource)])
    row = frame.iloc[0]
    assert row["decision"] == decision
    assert bool(row["allowed"]) is (decision == "allowed")
    if statement is None:
        assert pd.isna(row["statement"])
    else:
        assert statement in row["statement"]


def test_a_malformed_statement_is_kept_and_marked_in_every_decision() -> None:
    policies = policies_from_file(PAGES / "policies-malformed.json")
    (parsed,) = policies
    assert len(parsed.statements) == 3
    assert parsed.statements[1].problem is not None
    assert "without a service prefix" in parsed.statements[1].problem
    assert parsed.statements[2].problem is not None
    frame = permission_frame(policies, [("store", "dynamodb:PutItem", TABLE_ARN)])
    notes = frame.iloc[0]["notes"]
    assert "Statement[1]" in notes and "It was not applied" in notes
    assert notes in frame.iloc[0]["reason"]


def test_permission_frame_small_exact() -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE_ARN}],
    }
    policies = policies_from_documents(document, name="p", source="test")
    decision = policy.evaluate(policies, "dynamodb:PutItem", TABLE_ARN)
    expected = pd.DataFrame(
        {
            "purpose": ["store"],
            "action": ["dynamodb:PutItem"],
            "resource": [TABLE_ARN],
            "decision": ["allowed"],
            "allowed": [True],
            "statement": ['policy "p" (test) Statement[0]'],
            "reason": [decision.reason],
            "notes": [None],
            "simulated": [None],
            "agrees": [None],
            "simulation_note": [None],
        }
    ).astype(PERMISSION_COLUMNS)
    pd.testing.assert_frame_equal(
        permission_frame(policies, [("store", "dynamodb:PutItem", TABLE_ARN)]), expected
    )


def test_the_index_denied_policy_says_why_query_is_denied() -> None:
    document = json.loads(REPO_POLICY.read_text())
    for statement in document["Statement"]:
        if isinstance(statement["Resource"], list):
            statement["Resource"] = [r for r in statement["Resource"] if "/index/" not in r]
    frame = permission_frame(policies_from_documents(document, name="access"), CHECKS)
    query = frame[frame["action"] == "dynamodb:Query"].iloc[0]
    assert query["decision"] == "implicit-deny"
    assert pd.isna(query["statement"])
    assert "but only on arn:aws:dynamodb:*:*:table/chatgenius-connections" in query["reason"]
    assert frame[frame["action"] != "dynamodb:Query"]["allowed"].all()


@pytest.mark.parametrize(
    ("documents", "problem"),
    [
        (42, "is a JSON number, not an object"),
        ("not json", "is not valid JSON"),
        ([["nested"]], "is a JSON list, not an object"),
        ({"p": {"Statement": "x"}}, "Statement that is a JSON string"),
    ],
)
def test_odd_documents_become_marked_policies(documents: Any, problem: str) -> None:
    policies = policies_from_documents(documents, name="odd")
    assert len(policies) == 1
    assert problem in policies[0].problems[0]
    frame = permission_frame(policies, [("store", "dynamodb:PutItem", TABLE_ARN)])
    assert frame.iloc[0]["decision"] == "implicit-deny"
    assert problem in frame.iloc[0]["notes"]


def test_no_policies_at_all_is_an_implicit_deny() -> None:
    frame = permission_frame(policies_from_documents({}, name="none"), CHECKS[:1])
    assert frame.iloc[0]["decision"] == "implicit-deny"
    assert "There are no policies" in frame.iloc[0]["reason"]


def test_no_checks_is_an_empty_frame_with_the_contract() -> None:
    frame = permission_frame([], [])
    assert frame.empty
    assert list(frame.columns) == list(PERMISSION_COLUMNS)
    for name, dtype in PERMISSION_COLUMNS.items():
        assert str(frame[name].dtype) == dtype


@pytest.mark.parametrize(
    ("text", "message"),
    [("{not json", "is not valid JSON"), (None, "could not be read")],
)
def test_unreadable_policy_files_are_configuration_errors(
    tmp_path: Path, text: str | None, message: str
) -> None:
    path = tmp_path / "policies.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        policies_from_file(path)


# --------------------------------------------------------------------------------------------------
# The simulator


def test_simulation_from_recorded_answers_fills_simulated_and_agrees() -> None:
    simulation = iam.simulation_from_answers([load("iam-simulate-principal-policy.json")])
    assert simulation.available
    policies = iam.policies_from_documents(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["dynamodb:PutItem", "dynamodb:DeleteItem"],
                    "Resource": TABLE_ARN,
                },
                {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": "*"},
            ]
        },
        name="p",
    )
    frame = permission_frame(policies, CHECKS, simulation=simulation)
    by_action = frame.set_index("action")
    assert by_action.loc["dynamodb:PutItem", "simulated"] == "allowed"
    assert bool(by_action.loc["dynamodb:PutItem", "agrees"]) is True
    assert by_action.loc["dynamodb:Query", "simulated"] == "implicit-deny"
    assert by_action.loc["dynamodb:DeleteItem", "simulated"] == "explicit-deny"
    assert bool(by_action.loc["dynamodb:DeleteItem", "agrees"]) is True
    # A check the simulator was not asked about.
    assert by_action.loc["logs:PutLogEvents", "simulated"] == "unavailable"
    assert pd.isna(by_action.loc["logs:PutLogEvents", "agrees"])


def test_an_unavailable_simulator_is_marked_not_fatal() -> None:
    simulation = Simulation(note="simulate_principal_policy is not available on this endpoint.")
    frame = permission_frame(policies_from_file(REPO_POLICY), CHECKS, simulation=simulation)
    assert set(frame["simulated"]) == {"unavailable"}
    assert frame["agrees"].isna().all()
    assert set(frame["simulation_note"]) == {simulation.note}
    assert frame["allowed"].all()


@pytest.fixture
def stubbed_iam() -> Iterator[tuple[Any, Stubber]]:
    client = offline_client("iam")
    with Stubber(client) as stubber:
        yield client, stubber


def test_simulate_checks_on_a_client_error_is_unavailable(stubbed_iam: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed_iam
    stubber.add_client_error(
        "simulate_principal_policy", "AccessDenied", "not authorized", http_status_code=403
    )
    simulation = iam.simulate_checks(FakeTarget(iam=client), "arn:aws:iam::123456789012:role/r", CHECKS)  # type: ignore[arg-type]
    assert not simulation.available
    assert "AccessDenied" in str(simulation.note)


def test_simulate_checks_asks_per_check(stubbed_iam: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed_iam
    role = "arn:aws:iam::123456789012:role/r"
    for check in CHECKS[:2]:
        stubber.add_response(
            "simulate_principal_policy",
            {
                "EvaluationResults": [
                    {
                        "EvalActionName": check.action,
                        "EvalResourceName": check.resource,
                        "EvalDecision": "allowed",
                    }
                ],
                "IsTruncated": False,
            },
            {"PolicySourceArn": role, "ActionNames": [check.action], "ResourceArns": [check.resource]},
        )
    simulation = iam.simulate_checks(FakeTarget(iam=client), role, CHECKS[:2])  # type: ignore[arg-type]
    stubber.assert_no_pending_responses()
    assert simulation.decisions == {(c.action.lower(), c.resource): "allowed" for c in CHECKS[:2]}


# --------------------------------------------------------------------------------------------------
# Policies from IAM, every page, stubbed with recorded answers


def test_fetch_role_policies_reads_inline_and_attached_pages(stubbed_iam: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed_iam
    answers = load("iam-role-answers.json")
    # On the wire IAM sends documents as URL-encoded JSON text; botocore decodes them after the call.
    for answer in answers["get_role_policy"].values():
        answer["PolicyDocument"] = quote(json.dumps(answer["PolicyDocument"]))
    for answer in answers["get_policy_version"].values():
        answer["PolicyVersion"]["Document"] = quote(json.dumps(answer["PolicyVersion"]["Document"]))
    role = "chatgenius-websocket-handler"
    first, second = answers["list_role_policies"]
    stubber.add_response("list_role_policies", first, {"RoleName": role})
    stubber.add_response(
        "get_role_policy",
        answers["get_role_policy"]["chatgenius-websocket-access"],
        {"RoleName": role, "PolicyName": "chatgenius-websocket-access"},
    )
    stubber.add_response("list_role_policies", second, {"RoleName": role, "Marker": first["Marker"]})
    stubber.add_response(
        "get_role_policy",
        answers["get_role_policy"]["deny-deletes"],
        {"RoleName": role, "PolicyName": "deny-deletes"},
    )
    (attached_page,) = answers["list_attached_role_policies"]
    stubber.add_response("list_attached_role_policies", attached_page, {"RoleName": role})
    arn = attached_page["AttachedPolicies"][0]["PolicyArn"]
    stubber.add_response("get_policy", answers["get_policy"][arn], {"PolicyArn": arn})
    stubber.add_response(
        "get_policy_version", answers["get_policy_version"][arn], {"PolicyArn": arn, "VersionId": "v1"}
    )

    policies = iam.policies_from_role(FakeTarget(iam=client), f"arn:aws:iam::{ACCOUNT}:role/{role}")  # type: ignore[arg-type]
    stubber.assert_no_pending_responses()
    assert [p.source for p in policies] == [
        "inline:chatgenius-websocket-access",
        "inline:deny-deletes",
        f"managed:{arn}",
    ]
    frame = permission_frame(policies, CHECKS)
    by_action = frame.set_index("action")
    assert by_action.loc["dynamodb:DeleteItem", "decision"] == "explicit-deny"
    assert 'Sid "NoDeletes"' in by_action.loc["dynamodb:DeleteItem", "statement"]
    # The table grant does not cover the index, and the malformed "Permit" statement is named.
    assert by_action.loc["dynamodb:Query", "decision"] == "implicit-deny"
    assert 'Effect "Permit"' in by_action.loc["dynamodb:Query", "notes"]
    assert "AWSLambdaBasicExecutionRole" in by_action.loc["logs:PutLogEvents", "statement"]


def test_a_missing_role_is_an_aws_error_naming_it(stubbed_iam: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed_iam
    stubber.add_client_error(
        "list_role_policies", "NoSuchEntity", "The role cannot be found", http_status_code=404
    )
    with pytest.raises(AwsError) as raised:
        iam.fetch_role_policies(FakeTarget(iam=client), "missing-role")  # type: ignore[arg-type]
    assert raised.value.code == "NoSuchEntity"
    assert "role missing-role" in str(raised.value)


def test_execution_role_of_reads_the_function_configuration() -> None:
    client = offline_client("lambda")
    answer = load("lambda-get-function-configuration.json")[0]
    with Stubber(client) as stubber:
        stubber.add_response("get_function_configuration", answer, {"FunctionName": "chatgenius-websocket"})
        stubber.add_client_error(
            "get_function_configuration", "ResourceNotFoundException", "Function not found"
        )
        target = FakeTarget(**{"lambda": client})
        assert iam.execution_role_of(target, "chatgenius-websocket") == answer["Role"]  # type: ignore[arg-type]
        with pytest.raises(AwsError, match="ResourceNotFoundException"):
            iam.execution_role_of(target, "nope")  # type: ignore[arg-type]


def test_account_id_comes_from_sts() -> None:
    client = offline_client("sts")
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_caller_identity",
            {"UserId": "AIDAFIXTURE", "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/kit"},
        )
        assert iam.account_id(FakeTarget(sts=client)) == ACCOUNT  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("arn:aws:iam::123456789012:role/service-role/chatgenius", "chatgenius"),
        ("arn:aws:iam::123456789012:role/chatgenius-websocket-handler", "chatgenius-websocket-handler"),
        ("plain-name", "plain-name"),
    ],
)
def test_role_name(given: str, name: str) -> None:
    assert iam.role_name(given) == name


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("arn:aws:lambda:us-east-2:123456789012:function:chatgenius-websocket", "chatgenius-websocket"),
        ("arn:aws:lambda:us-east-2:123456789012:function:chatgenius-websocket:live", "chatgenius-websocket"),
        ("chatgenius-websocket", "chatgenius-websocket"),
    ],
)
def test_function_name_of(given: str, name: str) -> None:
    assert iam.function_name_of(given) == name


def test_checks_for_needs_the_api_and_stage() -> None:
    target = FakeTarget()
    checks = iam.checks_for(target, ACCOUNT, "arn:aws:lambda:us-east-2:1:function:fn")  # type: ignore[arg-type]
    assert checks[-1].resource.startswith(f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/fn:")
    target.api_id = None
    with pytest.raises(ConfigurationError, match="no API id or stage"):
        iam.checks_for(target, ACCOUNT, "fn")  # type: ignore[arg-type]
