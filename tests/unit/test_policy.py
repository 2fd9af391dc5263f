"""kit.policy: IAM identity-policy parsing and evaluation, as tables of cases; plus iam-policies.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit import permissions, policy
from kit.errors import ConfigurationError
from kit.policy import Policy, evaluate, parse_policies, parse_policy

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-2"
ACCOUNT = "123456789012"
TABLE = "chatgenius-connections"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"
INDEX_ARN = f"{TABLE_ARN}/index/workspaceIndex"
CONNECTION_ARN = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abcdef1234/prod/POST/@connections/AbCdEfGhIjKlMn0="
LOG_STREAM_ARN = (
    f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/fn:log-stream:2024/01/01/[$LATEST]0123abcd"
)
PRINCIPAL = f"arn:aws:sts::{ACCOUNT}:assumed-role/chatgenius-ws-role/chatgenius-ws-connect"


def statement(effect: str = "Allow", **elements: Any) -> dict[str, Any]:
    """A statement dict; Action and Resource default to "*" unless their Not- form is given."""
    if "NotAction" not in elements:
        elements.setdefault("Action", "*")
    if "NotResource" not in elements:
        elements.setdefault("Resource", "*")
    return {"Effect": effect, **elements}


def document(*statements: dict[str, Any], version: str | None = "2012-10-17") -> dict[str, Any]:
    doc: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        doc["Version"] = version
    return doc


def one_policy(*statements: dict[str, Any], version: str | None = "2012-10-17") -> list[Policy]:
    return [parse_policy(document(*statements, version=version), "p", source="inline:p")]


# --------------------------------------------------------------------------------------------------
# Matching


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("*", "dynamodb:PutItem", True),
        ("dynamodb:*", "dynamodb:PutItem", True),
        ("dynamodb:*", "dynamodbx:PutItem", False),
        ("dynamodb:Put*", "dynamodb:PutItem", True),
        ("dynamodb:Put*", "dynamodb:BatchWriteItem", False),
        ("dynamodb:PutItem", "dynamodb:putitem", True),
        ("DynamoDB:PUTITEM", "dynamodb:PutItem", True),
        ("dynamodb:PutItem", "dynamodb:PutItems", False),
        ("dynamodb:?etItem", "dynamodb:GetItem", True),
        ("dynamodb:?etItem", "dynamodb:BatchGetItem", False),
        ("dynamodb:*Item", "dynamodb:BatchGetItem", True),
        ("execute-api:ManageConnections", "execute-api:ManageConnections", True),
        ("execute-api:Invoke", "execute-api:ManageConnections", False),
        ("logs:*", "dynamodb:PutItem", False),
        ("s3:*", "dynamodb:PutItem", False),
    ],
)
def test_action_matching(pattern: str, action: str, expected: bool) -> None:
    assert policy.action_matches(pattern, action) is expected


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("*", INDEX_ARN, True),
        (TABLE_ARN, TABLE_ARN, True),
        # The GSI case: a grant on the table ARN does not cover its indexes.
        (TABLE_ARN, INDEX_ARN, False),
        (f"{TABLE_ARN}/index/*", INDEX_ARN, True),
        (f"{TABLE_ARN}/index/*", TABLE_ARN, False),
        (f"{TABLE_ARN}/*", INDEX_ARN, True),
        ("arn:aws:dynamodb:*:*:table/chatgenius-connections*", TABLE_ARN, True),
        ("arn:aws:dynamodb:*:*:table/chatgenius-connections*", INDEX_ARN, True),
        ("arn:aws:dynamodb:*:*:table/chatgenius-connections", TABLE_ARN, True),
        ("arn:aws:dynamodb:us-east-1:*:table/chatgenius-connections", TABLE_ARN, False),
        ("arn:aws:dynamodb:*:*:table/*", INDEX_ARN, True),
        ("arn:aws:dynamodb:*", INDEX_ARN, True),
        ("arn:aws:dynamodb:us-east-?:*:table/chatgenius-connections", TABLE_ARN, True),
        ("arn:aws:dynamodb:*:*:table/Chatgenius-Connections", TABLE_ARN, False),
        ("arn:aws:dynamodb:*:*:table/chatgenius-connection?", TABLE_ARN, True),
        ("arn:aws:dynamodb:*:*:table/chatgenius-connection?", INDEX_ARN, False),
        (TABLE_ARN.replace("dynamodb", "s3"), TABLE_ARN, False),
        # execute-api: the whole API, one stage's POSTs, and the wildcard form used in iam-policies.json.
        (f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abcdef1234/*", CONNECTION_ARN, True),
        (f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abcdef1234/prod/POST/@connections/*", CONNECTION_ARN, True),
        (f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abcdef1234/dev/POST/@connections/*", CONNECTION_ARN, False),
        (f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abcdef1234/prod/GET/@connections/*", CONNECTION_ARN, False),
        ("arn:aws:execute-api:*:*:*/*/POST/@connections/*", CONNECTION_ARN, True),
        (f"arn:aws:execute-api:{REGION}:{ACCOUNT}:zzzz/*", CONNECTION_ARN, False),
        # A path mistake seen in the wild: @connections twice.
        (
            f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abcdef1234/prod/POST/@connections/*",
            CONNECTION_ARN.replace("@connections/", "@connections/@connections/"),
            True,
        ),
        # CloudWatch Logs: the console's grant, ":*" after the group name; brackets are literal.
        (f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/fn:*", LOG_STREAM_ARN, True),
        (f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/other:*", LOG_STREAM_ARN, False),
        ("arn:aws:logs:*:*:log-group:/aws/lambda/*", LOG_STREAM_ARN, True),
        ("arn:aws:logs:*:*:*", LOG_STREAM_ARN, True),
        (
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/fn:*",
            permissions.log_group_arn(REGION, ACCOUNT, "/aws/lambda/fn"),
            False,
        ),
        # A "*" inside a segment stays inside it; one that ends a segment crosses colons.
        ("arn:aws:logs:*:*:log-group:*/fn:log-stream:*", LOG_STREAM_ARN, True),
        ("arn:aws:logs:*:*:log-*-stream:*", LOG_STREAM_ARN, False),
    ],
)
def test_resource_matching(pattern: str, resource: str, expected: bool) -> None:
    assert policy.resource_matches(pattern, resource) is expected


@pytest.mark.parametrize(
    ("pattern", "context", "version", "expected"),
    [
        ("arn:aws:dynamodb:*:*:table/${aws:username}", {"aws:username": TABLE}, "2012-10-17", True),
        ("arn:aws:dynamodb:*:*:table/${AWS:UserName}", {"aws:username": TABLE}, "2012-10-17", True),
        ("arn:aws:dynamodb:*:*:table/${aws:username}", {}, "2012-10-17", False),
        ("arn:aws:dynamodb:*:*:table/${aws:username, 'chatgenius-connections'}", {}, "2012-10-17", True),
        # A variable's value is literal text: its "*" is not a wildcard.
        ("arn:aws:dynamodb:*:*:table/${aws:username}", {"aws:username": "*"}, "2012-10-17", False),
        ("arn:aws:dynamodb:*:*:table/chatgenius${*}", {}, "2012-10-17", False),
        # Under the 2008 grammar (or no Version) "${...}" is plain text.
        ("arn:aws:dynamodb:*:*:table/${aws:username}", {"aws:username": TABLE}, "2008-10-17", False),
        ("arn:aws:dynamodb:*:*:table/${aws:username}", {"aws:username": TABLE}, None, False),
    ],
)
def test_policy_variables_in_resources(
    pattern: str, context: dict[str, str], version: str | None, expected: bool
) -> None:
    assert policy.resource_matches(pattern, TABLE_ARN, context, version=version) is expected
    decision = evaluate(
        one_policy(statement(Resource=pattern), version=version), "dynamodb:PutItem", TABLE_ARN, context
    )
    assert decision.allowed is expected


def test_unresolved_variable_in_an_allow_is_explained() -> None:
    decision = evaluate(
        one_policy(statement(Sid="Mine", Resource=["arn:aws:dynamodb:*:*:table/${aws:username}"])),
        "dynamodb:PutItem",
        TABLE_ARN,
    )
    assert decision.verdict == "implicit-deny"
    assert decision.reason.endswith(
        'Policy "p" (inline:p) Statement[0] (Sid "Mine") allows dynamodb:PutItem, but only on '
        "arn:aws:dynamodb:*:*:table/${aws:username} (the request context does not provide ${aws:username}, "
        "so those match nothing)."
    )


def test_unresolved_variable_in_a_deny_is_noted_when_the_action_is_allowed() -> None:
    policies = one_policy(
        statement(Sid="All"),
        statement("Deny", Sid="NotMine", Resource="arn:aws:dynamodb:*:*:table/${aws:username}"),
    )
    decision = evaluate(policies, "dynamodb:PutItem", TABLE_ARN)
    assert decision.verdict == "allowed"
    assert decision.notes == (
        'Policy "p" (inline:p) Statement[1] (Sid "NotMine") denies dynamodb:PutItem, but only on '
        "arn:aws:dynamodb:*:*:table/${aws:username} (the request context does not provide ${aws:username}, "
        "so those match nothing).",
    )


def test_unresolved_variable_in_not_resource_skips_the_statement() -> None:
    policies = one_policy(statement(Sid="Others", NotResource="arn:aws:dynamodb:*:*:table/${aws:username}"))
    decision = evaluate(policies, "dynamodb:PutItem", TABLE_ARN)
    assert decision.verdict == "implicit-deny"
    assert decision.notes == (
        'Policy "p" (inline:p) Statement[0] (Sid "Others") was not applied: its NotResource uses '
        "${aws:username}, which the request context does not provide.",
    )
    assert evaluate(policies, "dynamodb:PutItem", TABLE_ARN, {"aws:username": "ann"}).allowed


# --------------------------------------------------------------------------------------------------
# Decisions


@pytest.mark.parametrize(
    ("statements", "verdict", "deciding_sid"),
    [
        ([], "implicit-deny", None),
        ([statement(Sid="A", Action="dynamodb:PutItem", Resource=TABLE_ARN)], "allowed", "A"),
        ([statement("Deny", Sid="D", Action="dynamodb:PutItem", Resource=TABLE_ARN)], "explicit-deny", "D"),
        (
            [
                statement(Sid="A", Action="dynamodb:*", Resource="*"),
                statement("Deny", Sid="D", Action="dynamodb:PutItem", Resource=TABLE_ARN),
            ],
            "explicit-deny",
            "D",
        ),
        (
            [
                statement("Deny", Sid="D", Action="dynamodb:PutItem", Resource=TABLE_ARN),
                statement(Sid="A", Action="dynamodb:*", Resource="*"),
            ],
            "explicit-deny",
            "D",
        ),
        (
            [
                statement(Sid="A", Action="dynamodb:*", Resource="*"),
                statement("Deny", Sid="D", Action="dynamodb:DeleteItem", Resource=TABLE_ARN),
            ],
            "allowed",
            "A",
        ),
        (
            [
                statement(Sid="A", Action="dynamodb:PutItem", Resource=TABLE_ARN),
                statement("Deny", Sid="D", Action="dynamodb:PutItem", Resource=INDEX_ARN),
            ],
            "allowed",
            "A",
        ),
        ([statement(Sid="A", Action="dynamodb:GetItem", Resource=TABLE_ARN)], "implicit-deny", None),
        # NotAction: every action except those listed.
        ([statement(Sid="A", NotAction="dynamodb:PutItem", Resource="*")], "implicit-deny", None),
        ([statement(Sid="A", NotAction=["s3:*", "iam:*"], Resource="*")], "allowed", "A"),
        (
            [
                statement(Sid="A", Action="*", Resource="*"),
                statement("Deny", Sid="D", NotAction="dynamodb:GetItem", Resource="*"),
            ],
            "explicit-deny",
            "D",
        ),
        # NotResource: every resource except those listed.
        ([statement(Sid="A", Action="dynamodb:*", NotResource=INDEX_ARN)], "allowed", "A"),
        ([statement(Sid="A", Action="dynamodb:*", NotResource=TABLE_ARN)], "implicit-deny", None),
        (
            [
                statement(Sid="A", Action="dynamodb:*", Resource="*"),
                statement("Deny", Sid="D", Action="dynamodb:*", NotResource=f"{TABLE_ARN}/index/*"),
            ],
            "explicit-deny",
            "D",
        ),
    ],
)
def test_allow_deny_precedence(
    statements: list[dict[str, Any]], verdict: str, deciding_sid: str | None
) -> None:
    decision = evaluate(one_policy(*statements), "dynamodb:PutItem", TABLE_ARN)
    assert decision.verdict == verdict
    assert (decision.statement.sid if decision.statement else None) == deciding_sid
    assert decision.reason.endswith(".")


def test_deny_in_another_policy_wins() -> None:
    allow = parse_policy(
        document(statement(Sid="All")), "admin", source="managed:arn:aws:iam::aws:policy/Admin"
    )
    deny = parse_policy(document(statement("Deny", Sid="NoWrites", Action="dynamodb:PutItem")), "guard")
    decision = evaluate([allow, deny], "dynamodb:PutItem", TABLE_ARN)
    assert decision.verdict == "explicit-deny"
    assert decision.statement is not None and decision.statement.policy_name == "guard"
    assert 'overrides the Allow in policy "admin" (managed:arn:aws:iam::aws:policy/Admin)' in decision.reason


def test_reason_names_the_deciding_statement() -> None:
    decision = evaluate(
        one_policy(statement(Sid="ConnectionsTable", Action="dynamodb:PutItem", Resource=TABLE_ARN)),
        "dynamodb:PutItem",
        TABLE_ARN,
    )
    assert decision.reason == (
        f'dynamodb:PutItem on {TABLE_ARN} is allowed by policy "p" (inline:p) Statement[0] (Sid "ConnectionsTable").'
    )


def test_implicit_deny_on_the_index_points_at_the_table_only_grant() -> None:
    policies = one_policy(
        statement(Sid="ConnectionsTable", Action=["dynamodb:Query", "dynamodb:PutItem"], Resource=TABLE_ARN)
    )
    decision = evaluate(policies, "dynamodb:Query", INDEX_ARN)
    assert decision.verdict == "implicit-deny"
    assert decision.statement is None
    assert decision.reason == (
        f'No statement in the policy ("p") allows dynamodb:Query on {INDEX_ARN}, so it is denied implicitly. '
        f'Policy "p" (inline:p) Statement[0] (Sid "ConnectionsTable") allows dynamodb:Query, but only on {TABLE_ARN}.'
    )


def test_no_policies_is_an_implicit_deny() -> None:
    decision = evaluate([], "dynamodb:PutItem", TABLE_ARN)
    assert decision.verdict == "implicit-deny"
    assert (
        decision.reason == f"There are no policies, so dynamodb:PutItem on {TABLE_ARN} is denied implicitly."
    )


# --------------------------------------------------------------------------------------------------
# Conditions


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}, {"aws:PrincipalAccount": ACCOUNT}, True),
        ({"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}, {"aws:principalaccount": ACCOUNT}, True),
        ({"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}, {"aws:PrincipalAccount": "999"}, False),
        ({"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}, {}, False),
        (
            {"StringEquals": {"aws:RequestedRegion": ["us-east-1", "us-east-2"]}},
            {"aws:RequestedRegion": REGION},
            True,
        ),
        ({"StringEquals": {"aws:RequestedRegion": "US-EAST-2"}}, {"aws:RequestedRegion": REGION}, False),
        (
            {"StringEqualsIgnoreCase": {"aws:RequestedRegion": "US-EAST-2"}},
            {"aws:RequestedRegion": REGION},
            True,
        ),
        ({"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}}, {"aws:RequestedRegion": REGION}, True),
        (
            {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1", REGION]}},
            {"aws:RequestedRegion": REGION},
            False,
        ),
        ({"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}}, {}, True),
        (
            {"StringLike": {"aws:userid": "AROA*:chatgenius-*"}},
            {"aws:userid": "AROAEXAMPLE:chatgenius-ws"},
            True,
        ),
        ({"StringLike": {"aws:userid": "AROA*:chatgenius-*"}}, {"aws:userid": "AIDAEXAMPLE"}, False),
        ({"StringNotLike": {"aws:userid": "AIDA*"}}, {"aws:userid": "AROAEXAMPLE:x"}, True),
        ({"StringNotLike": {"aws:userid": "AROA*"}}, {"aws:userid": "AROAEXAMPLE:x"}, False),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:execute-api:*:*:abcdef1234/*"}},
            {"aws:SourceArn": CONNECTION_ARN},
            True,
        ),
        (
            {"ArnEquals": {"aws:SourceArn": "arn:aws:execute-api:*:*:zzz/*"}},
            {"aws:SourceArn": CONNECTION_ARN},
            False,
        ),
        (
            {"ArnNotLike": {"aws:SourceArn": "arn:aws:execute-api:*:*:zzz/*"}},
            {"aws:SourceArn": CONNECTION_ARN},
            True,
        ),
        (
            {"ArnNotEquals": {"aws:SourceArn": "arn:aws:execute-api:*:*:abcdef1234/*"}},
            {"aws:SourceArn": CONNECTION_ARN},
            False,
        ),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "True"}, True),
        ({"Bool": {"aws:SecureTransport": True}}, {"aws:SecureTransport": "true"}, True),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": "false"}, False),
        ({"Bool": {"aws:SecureTransport": "true"}}, {}, False),
        ({"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}, {}, True),
        (
            {"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}},
            {"aws:MultiFactorAuthPresent": "false"},
            False,
        ),
        ({"StringLikeIfExists": {"aws:userid": "AROA*"}}, {}, True),
        ({"Null": {"aws:TokenIssueTime": "true"}}, {}, True),
        ({"Null": {"aws:TokenIssueTime": "false"}}, {}, False),
        ({"Null": {"aws:TokenIssueTime": "false"}}, {"aws:TokenIssueTime": "2024-01-01T00:00:00Z"}, True),
        # Blocks and keys are ANDed.
        (
            {"StringEquals": {"aws:RequestedRegion": REGION, "aws:PrincipalAccount": ACCOUNT}},
            {"aws:RequestedRegion": REGION, "aws:PrincipalAccount": "999"},
            False,
        ),
        (
            {"StringEquals": {"aws:RequestedRegion": REGION}, "Bool": {"aws:SecureTransport": "true"}},
            {"aws:RequestedRegion": REGION, "aws:SecureTransport": "true"},
            True,
        ),
        # Variables in condition values.
        (
            {"StringEquals": {"aws:userid": "${aws:username}"}},
            {"aws:userid": "ann", "aws:username": "ann"},
            True,
        ),
        ({"StringEquals": {"aws:userid": "${aws:username}"}}, {"aws:userid": "ann"}, False),
        # Set operators over a one-element set.
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": "team"}}, {"aws:TagKeys": "team"}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": "team"}}, {}, False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": "team"}}, {}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": "team"}}, {"aws:TagKeys": "owner"}, False),
    ],
)
def test_conditions(condition: dict[str, Any], context: dict[str, str], expected: bool) -> None:
    decision = evaluate(
        one_policy(statement(Sid="A", Action="dynamodb:PutItem", Resource=TABLE_ARN, Condition=condition)),
        "dynamodb:PutItem",
        TABLE_ARN,
        context,
    )
    assert decision.allowed is expected


def test_failed_condition_is_named_in_the_reason() -> None:
    decision = evaluate(
        one_policy(statement(Sid="A", Condition={"StringEquals": {"aws:RequestedRegion": "us-east-1"}})),
        "dynamodb:PutItem",
        TABLE_ARN,
        {"aws:RequestedRegion": REGION},
    )
    assert "but its condition StringEquals aws:RequestedRegion is not met" in decision.reason


def test_set_operator_is_noted() -> None:
    decision = evaluate(
        one_policy(statement(Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": "team"}})),
        "dynamodb:PutItem",
        TABLE_ARN,
        {"aws:TagKeys": "team"},
    )
    assert decision.allowed
    assert len(decision.notes) == 1
    assert "one-element set" in decision.reason


@pytest.mark.parametrize("effect", ["Allow", "Deny"])
@pytest.mark.parametrize(
    "condition",
    [
        {"NumericLessThan": {"s3:max-keys": "10"}},
        {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
        {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        {"NullIfExists": {"aws:TokenIssueTime": "true"}},
    ],
)
def test_unsupported_condition_skips_the_statement_and_says_so(
    effect: str, condition: dict[str, Any]
) -> None:
    statements = [statement(Sid="Base", Action="dynamodb:*")] if effect == "Deny" else []
    statements.append(statement(effect, Sid="Odd", Action="dynamodb:PutItem", Condition=condition))
    decision = evaluate(
        one_policy(*statements), "dynamodb:PutItem", TABLE_ARN, {"aws:SourceIp": "203.0.113.9"}
    )
    assert decision.verdict == ("allowed" if effect == "Deny" else "implicit-deny")
    operator = next(iter(condition))
    assert (
        f'Statement[{len(statements) - 1}] (Sid "Odd") was not applied: its condition uses {operator}'
        in decision.reason
    )
    assert "does not support" in decision.notes[0]


def test_a_skipped_statement_that_could_not_change_the_verdict_is_not_noted() -> None:
    odd = {"NumericLessThan": {"s3:max-keys": "10"}}
    allowed_anyway = one_policy(statement(Sid="All"), statement(Sid="Odd", Condition=odd))
    assert evaluate(allowed_anyway, "dynamodb:PutItem", TABLE_ARN).notes == ()
    denied_anyway = one_policy(statement("Deny", Sid="No"), statement("Deny", Sid="Odd", Condition=odd))
    assert evaluate(denied_anyway, "dynamodb:PutItem", TABLE_ARN).notes == ()


def test_unsupported_condition_is_irrelevant_when_another_condition_fails() -> None:
    condition = {
        "NumericLessThan": {"s3:max-keys": "10"},
        "StringEquals": {"aws:RequestedRegion": "us-east-1"},
    }
    decision = evaluate(one_policy(statement(Condition=condition)), "dynamodb:PutItem", TABLE_ARN, {})
    assert decision.verdict == "implicit-deny"
    assert decision.notes == ()


# --------------------------------------------------------------------------------------------------
# Parsing


def test_statement_may_be_a_single_object_and_action_a_string() -> None:
    parsed = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE_ARN},
        },
        "single",
    )
    (only,) = parsed.statements
    assert (only.index, only.sid, only.effect, only.actions, only.resources) == (
        0,
        None,
        "Allow",
        ("dynamodb:PutItem",),
        (TABLE_ARN,),
    )


def test_json_text_and_url_encoded_text_parse_alike() -> None:
    text = json.dumps(document(statement(Sid="A", Condition={"Bool": {"aws:SecureTransport": True}})))
    from_text = parse_policy(text, "p")
    assert from_text == parse_policy(quote(text), "p") == parse_policy(json.loads(text), "p")
    assert from_text.statements[0].conditions == (policy.Condition("Bool", "aws:SecureTransport", ("true",)),)


def test_parse_policies_names_by_source_label() -> None:
    doc = document(statement())
    parsed = parse_policies(
        {
            "inline:connect-dynamodb": doc,
            "managed:arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": doc,
            "file:iam-policies.json": doc,
        }
    )
    assert [(p.name, p.source) for p in parsed] == [
        ("connect-dynamodb", "inline:connect-dynamodb"),
        (
            "AWSLambdaBasicExecutionRole",
            "managed:arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        ),
        ("file:iam-policies.json", "file:iam-policies.json"),
    ]


GOOD = {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE_ARN}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            "{not json",
            r'^Policy "bad" \(inline:bad\) is not valid JSON \(Expecting property name enclosed in double quotes at line 1 column 2\)\.$',
        ),
        ("[]", r'^Policy "bad" \(inline:bad\) is a JSON list, not an object\.$'),
        ({"Version": "2012-10-17"}, r'^Policy "bad" \(inline:bad\) has no Statement\.$'),
        (
            {"Version": "2012-10-17", "Statement": "x"},
            r"has a Statement that is a JSON string, not an object or a list\.$",
        ),
        (
            {"Version": "2012-10-18", "Statement": [GOOD]},
            r'has Version "2012-10-18"; IAM accepts "2012-10-17" or "2008-10-17"\.$',
        ),
        (
            {"Version": "2012-10-17", "Statement": [GOOD], "Comment": "x"},
            r'has unknown top-level key "Comment"',
        ),
        (
            {"Statement": [GOOD, {"Sid": "Table", "Action": "dynamodb:PutItem", "Resource": TABLE_ARN}]},
            r'^Policy "bad" \(inline:bad\) Statement\[1\] \(Sid "Table"\) has no Effect; it must be "Allow" or "Deny"\.$',
        ),
        (
            {"Statement": [{**GOOD, "Effect": "allow"}]},
            r'Statement\[0\] has Effect "allow"; it must be "Allow" or "Deny"\.$',
        ),
        (
            {"Statement": [{**GOOD, "NotAction": "s3:*"}]},
            r"^Policy \"bad\" \(inline:bad\) Statement\[0\] has both Action and NotAction; a statement takes exactly one\.$",
        ),
        (
            {"Statement": [{"Effect": "Allow", "Resource": "*"}]},
            r"Statement\[0\] has neither Action nor NotAction\.$",
        ),
        (
            {"Statement": [{**GOOD, "Action": ["dynamodb:PutItem", 7]}]},
            r"has a Action entry that is a JSON number, not a string\.$",
        ),
        ({"Statement": [{**GOOD, "Action": []}]}, r"has an empty Action list\.$"),
        ({"Statement": [{**GOOD, "Action": "PutItem"}]}, r'has Action "PutItem" without a service prefix'),
        ({"Statement": [{**GOOD, "NotResource": "*"}]}, r"has both Resource and NotResource"),
        ({"Statement": [{"Effect": "Allow", "Action": "*"}]}, r"has neither Resource nor NotResource\.$"),
        (
            {"Statement": [{**GOOD, "Resource": TABLE}]},
            r'has Resource "chatgenius-connections", which is neither "\*" nor an ARN\.$',
        ),
        (
            {"Statement": [{**GOOD, "Principal": {"AWS": "*"}}]},
            r"has a Principal, which identity-based policies do not take\.$",
        ),
        ({"Statement": [{**GOOD, "Efect": "Allow"}]}, r'has unknown key "Efect"\.$'),
        (
            {"Statement": [{**GOOD, "Sid": "a-b"}]},
            r"has a Sid with characters other than ASCII letters and digits\.$",
        ),
        ({"Statement": [{**GOOD, "Sid": 3}]}, r"has a Sid that is a JSON number, not a string\.$"),
        (
            {"Statement": [{**GOOD, "Sid": "S"}, {**GOOD, "Sid": "S"}]},
            r'Statement\[1\] \(Sid "S"\) repeats the Sid of Statement\[0\]',
        ),
        (
            {"Statement": [{**GOOD, "Condition": ["x"]}]},
            r"has a Condition that is not an object of operators mapping keys to values\.$",
        ),
        (
            {"Statement": [{**GOOD, "Condition": {"Bool": {"k": {"a": 1}}}}]},
            r"has a Bool value for k that is a JSON object",
        ),
        ({"Statement": ["x"]}, r"Statement\[0\] is a JSON string, not an object\.$"),
    ],
)
def test_malformed_documents_raise_one_sentence(doc: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as raised:
        parse_policy(doc, "bad", source="inline:bad")
    text = str(raised.value)
    assert text.startswith('Policy "bad"')
    assert text.endswith(".")


def test_several_faults_of_one_statement_make_one_sentence() -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_policy({"Statement": [{"Sid": "X", "Action": "PutItem"}]}, "bad")
    assert str(raised.value) == (
        'Policy "bad" Statement[0] (Sid "X") has no Effect; it must be "Allow" or "Deny"; '
        'has Action "PutItem" without a service prefix (write "service:Action", e.g. "dynamodb:PutItem"); '
        "has neither Resource nor NotResource."
    )


def test_invalid_json_is_raised_from_the_decode_error() -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_policy("{", "bad")
    assert isinstance(raised.value.__cause__, json.JSONDecodeError)


def test_lenient_parse_keeps_every_statement_and_marks_problems() -> None:
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Table", "Effect": "Allow", "Action": "dynamodb:*", "Resource": TABLE_ARN},
            {
                "Sid": "Broken",
                "Effect": "Deny",
                "Action": "dynamodb:PutItem",
                "NotAction": "s3:*",
                "Resource": "*",
            },
            {"Sid": "NoEffect", "Action": "dynamodb:Query", "Resource": INDEX_ARN},
        ],
    }
    parsed = parse_policy(doc, "loose", source="file:loose.json", strict=False)
    assert [s.sid for s in parsed.statements] == ["Table", "Broken", "NoEffect"]
    assert [s.problem is None for s in parsed.statements] == [True, False, False]
    assert parsed.problems == tuple(s.problem for s in parsed.statements[1:])
    broken = parsed.statements[1]
    assert (broken.effect, broken.actions, broken.not_actions, broken.resources) == (
        "Deny",
        ("dynamodb:PutItem",),
        ("s3:*",),
        ("*",),
    )
    # Malformed statements are never applied, and every decision says they were ignored.
    decision = evaluate([parsed], "dynamodb:PutItem", TABLE_ARN)
    assert decision.verdict == "allowed"
    assert len(decision.notes) == 2
    assert 'Statement[1] (Sid "Broken") has both Action and NotAction' in decision.reason
    assert "It was not applied." in decision.reason


def test_lenient_parse_of_invalid_json_keeps_the_problem() -> None:
    (parsed,) = parse_policies({"inline:broken": "{"}, strict=False)
    assert parsed.statements == ()
    assert parsed.problems[0].startswith('Policy "broken" (inline:broken) is not valid JSON')
    assert evaluate([parsed], "dynamodb:PutItem", TABLE_ARN).verdict == "implicit-deny"


# --------------------------------------------------------------------------------------------------
# Denial messages


def test_implicit_denial_message_is_aws_wording() -> None:
    decision = evaluate(
        one_policy(statement(Action="dynamodb:GetItem", Resource=TABLE_ARN)), "dynamodb:PutItem", TABLE_ARN
    )
    assert policy.decision_for_denial_message(decision, PRINCIPAL) == (
        "User: arn:aws:sts::123456789012:assumed-role/chatgenius-ws-role/chatgenius-ws-connect is not authorized "
        "to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-2:123456789012:table/chatgenius-connections "
        "because no identity-based policy allows the dynamodb:PutItem action"
    )


def test_explicit_denial_message_is_aws_wording() -> None:
    decision = evaluate(one_policy(statement("Deny", Action="dynamodb:Query")), "dynamodb:Query", INDEX_ARN)
    assert policy.decision_for_denial_message(decision, PRINCIPAL) == (
        "User: arn:aws:sts::123456789012:assumed-role/chatgenius-ws-role/chatgenius-ws-connect is not authorized "
        "to perform: dynamodb:Query on resource: "
        "arn:aws:dynamodb:us-east-2:123456789012:table/chatgenius-connections/index/workspaceIndex "
        "with an explicit deny in an identity-based policy"
    )


def test_an_allowed_decision_has_no_denial_message() -> None:
    decision = evaluate(one_policy(statement()), "dynamodb:PutItem", TABLE_ARN)
    with pytest.raises(ValueError, match="is allowed"):
        policy.decision_for_denial_message(decision, PRINCIPAL)


# --------------------------------------------------------------------------------------------------
# ARNs, required permissions and iam-policies.json


def test_arn_helpers() -> None:
    assert permissions.dynamodb_table_arn(REGION, ACCOUNT, TABLE) == TABLE_ARN
    assert permissions.dynamodb_index_arn(REGION, ACCOUNT, TABLE, "workspaceIndex") == INDEX_ARN
    assert (
        permissions.execute_api_connections_arn(
            REGION, ACCOUNT, "abcdef1234", "prod", "POST", "AbCdEfGhIjKlMn0="
        )
        == CONNECTION_ARN
    )
    assert (
        permissions.log_group_arn(REGION, ACCOUNT, "/aws/lambda/fn")
        == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/fn"
    )
    assert (
        permissions.log_stream_arn(REGION, ACCOUNT, "/aws/lambda/fn", "2024/01/01/[$LATEST]0123abcd")
        == LOG_STREAM_ARN
    )
    assert permissions.dynamodb_table_arn("cn-north-1", ACCOUNT, TABLE, partition="aws-cn").startswith(
        "arn:aws-cn:dynamodb:"
    )


def checks() -> list[permissions.PermissionCheck]:
    return permissions.required_checks(
        region=REGION,
        account=ACCOUNT,
        table=TABLE,
        index="workspaceIndex",
        api_id="prqb9y0mvd",
        stage="prod",
        function_name="chatgenius-ws",
    )


def test_required_checks_fill_every_template() -> None:
    filled = checks()
    assert [c.action for c in filled] == [p.action for p in permissions.REQUIRED_PERMISSIONS]
    assert ("dynamodb:Query", INDEX_ARN) in [(c.action, c.resource) for c in filled]
    assert (
        "execute-api:ManageConnections",
        f"arn:aws:execute-api:{REGION}:{ACCOUNT}:prqb9y0mvd/prod/POST/@connections/{permissions.EXAMPLE_CONNECTION_ID}",
    ) in [(c.action, c.resource) for c in filled]
    assert all("{" not in c.resource for c in filled)
    assert all(c.purpose for c in filled)


def iam_policies_text() -> str:
    return (REPO_ROOT / "iam-policies.json").read_text(encoding="utf-8")


def test_iam_policies_json_is_a_valid_iam_document() -> None:
    raw = json.loads(iam_policies_text())
    assert list(raw) == ["Version", "Statement"]
    parsed = parse_policy(iam_policies_text(), "iam-policies.json", source="file:iam-policies.json")
    assert parsed.version == "2012-10-17"
    assert [s.sid for s in parsed.statements] == [
        "ConnectionsTable",
        "ManageWebSocketConnections",
        "LambdaLogs",
    ]


@pytest.mark.parametrize("check", checks(), ids=lambda c: c.action)
def test_iam_policies_json_allows_every_required_check(check: permissions.PermissionCheck) -> None:
    parsed = parse_policy(iam_policies_text(), "iam-policies.json")
    decision = evaluate([parsed], check.action, check.resource)
    assert decision.verdict == "allowed", decision.reason
    assert decision.notes == ()


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("dynamodb:UpdateItem", TABLE_ARN),
        ("execute-api:ManageConnections", CONNECTION_ARN.replace("/POST/", "/GET/")),
        ("execute-api:ManageConnections", CONNECTION_ARN.replace("/POST/", "/DELETE/")),
        ("logs:CreateLogGroup", permissions.log_group_arn(REGION, ACCOUNT, "/aws/lambda/chatgenius-ws")),
    ],
)
def test_iam_policies_json_allows_the_rest_of_what_the_handler_may_do(action: str, resource: str) -> None:
    assert evaluate([parse_policy(iam_policies_text(), "iam-policies.json")], action, resource).allowed


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("dynamodb:Scan", TABLE_ARN),
        ("dynamodb:DeleteTable", TABLE_ARN),
        ("dynamodb:PutItem", TABLE_ARN.replace(TABLE, "chatgenius-messages")),
        ("dynamodb:PutItem", TABLE_ARN.replace(TABLE, "chatgenius-connections-old")),
        ("execute-api:Invoke", CONNECTION_ARN),
        ("logs:PutLogEvents", LOG_STREAM_ARN.replace("/aws/lambda/", "/aws/apigateway/")),
    ],
)
def test_iam_policies_json_grants_nothing_more(action: str, resource: str) -> None:
    assert (
        evaluate([parse_policy(iam_policies_text(), "iam-policies.json")], action, resource).verdict
        == "implicit-deny"
    )


def test_table_only_policy_fails_exactly_the_index_check() -> None:
    table_only = one_policy(
        statement(
            Sid="ConnectionsTable",
            Action=["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:Query"],
            Resource=TABLE_ARN,
        ),
        statement(Sid="Rest", Action=["execute-api:ManageConnections", "logs:*"], Resource="*"),
    )
    failing = [c for c in checks() if not evaluate(table_only, c.action, c.resource).allowed]
    assert [(c.action, c.resource) for c in failing] == [("dynamodb:Query", INDEX_ARN)]


# --------------------------------------------------------------------------------------------------
# Properties

ACTIONS = st.sampled_from(
    ["dynamodb:PutItem", "dynamodb:Query", "execute-api:ManageConnections", "logs:PutLogEvents"]
)
RESOURCES = st.sampled_from([TABLE_ARN, INDEX_ARN, CONNECTION_ARN, LOG_STREAM_ARN])
PATTERN_TEXT = st.text(alphabet="arnws:dynamob-/*?${}xAI_", max_size=30)
ACTION_PATTERNS = st.one_of(
    st.just("*"),
    ACTIONS,
    st.builds(lambda s, a: f"{s}:{a}", st.sampled_from(["dynamodb", "logs", "*"]), PATTERN_TEXT),
)
RESOURCE_PATTERNS = st.one_of(st.just("*"), RESOURCES, st.builds(lambda a: f"arn:{a}", PATTERN_TEXT))


@st.composite
def statements(draw: st.DrawFn) -> dict[str, Any]:
    elements: dict[str, Any] = {}
    elements["NotAction" if draw(st.booleans()) else "Action"] = draw(
        st.lists(ACTION_PATTERNS, min_size=1, max_size=3)
    )
    elements["NotResource" if draw(st.booleans()) else "Resource"] = draw(
        st.lists(RESOURCE_PATTERNS, min_size=1, max_size=3)
    )
    if draw(st.booleans()):
        operator = draw(
            st.sampled_from(
                [
                    "StringEquals",
                    "StringNotLike",
                    "ArnLike",
                    "BoolIfExists",
                    "NumericLessThan",
                    "ForAllValues:StringLike",
                ]
            )
        )
        elements["Condition"] = {
            operator: {draw(st.sampled_from(["aws:username", "aws:SourceArn"])): draw(PATTERN_TEXT)}
        }
    return statement(draw(st.sampled_from(["Allow", "Deny"])), **elements)


POLICIES = st.lists(statements(), max_size=4).map(lambda s: document(*s))
CONTEXTS = st.dictionaries(
    st.sampled_from(["aws:username", "aws:SourceArn", "AWS:USERNAME"]), st.text(max_size=10), max_size=2
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=POLICIES, deny=statements(), action=ACTIONS, resource=RESOURCES, context=CONTEXTS)
def test_adding_a_deny_never_grants(
    doc: dict[str, Any], deny: dict[str, Any], action: str, resource: str, context: dict[str, str]
) -> None:
    before = evaluate([parse_policy(doc, "p")], action, resource, context)
    deny = {**deny, "Effect": "Deny"}
    after = evaluate([parse_policy(document(*doc["Statement"], deny), "p")], action, resource, context)
    if before.verdict != "allowed":
        assert after.verdict != "allowed"
    if before.verdict == "explicit-deny":
        assert after.verdict == "explicit-deny"


@settings(max_examples=150, deadline=None)
@given(doc=POLICIES, action=st.text(max_size=40), resource=st.text(max_size=80))
def test_a_deny_naming_the_request_always_decides(doc: dict[str, Any], action: str, resource: str) -> None:
    # Escape "$" so the request text is read literally under the 2012-10-17 grammar.
    deny = {"Effect": "Deny", "Action": f"svc:{action}", "Resource": f"arn:{resource}".replace("$", "${$}")}
    decision = evaluate(
        [parse_policy(document(*doc["Statement"], deny), "p")], f"svc:{action}", f"arn:{resource}"
    )
    assert decision.verdict == "explicit-deny"


@settings(max_examples=200, deadline=None)
@given(doc=POLICIES, action=st.text(max_size=40), resource=st.text(max_size=80), context=CONTEXTS)
def test_evaluation_never_raises(
    doc: dict[str, Any], action: str, resource: str, context: dict[str, str]
) -> None:
    decision = evaluate([parse_policy(doc, "p", strict=False)], action, resource, context)
    assert decision.verdict in ("allowed", "explicit-deny", "implicit-deny")
    assert decision.reason


@settings(max_examples=100, deadline=None)
@given(
    raw=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    ["Version", "Statement", "Effect", "Action", "Resource", "Condition", "Sid", "x"]
                ),
                inner,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
def test_lenient_parsing_never_raises(raw: Any) -> None:
    parsed = parse_policy({"Statement": raw} if not isinstance(raw, dict) else raw, "p", strict=False)
    evaluate([parsed], "dynamodb:PutItem", TABLE_ARN)
    if parsed.problems:
        with pytest.raises(ConfigurationError):
            parse_policy({"Statement": raw} if not isinstance(raw, dict) else raw, "p")


# --------------------------------------------------------------------------------------------------------
# A Lambda function's resource policy: may API Gateway invoke it for this route (AWS:SourceArn)?
# --------------------------------------------------------------------------------------------------------

FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:chatgenius-websocket"
ROUTE_ARN = permissions.execute_api_route_arn(REGION, ACCOUNT, "abcdef1234", "prod", "$connect")


def _grant(
    source_arn: str | None = "arn:aws:execute-api:us-east-2:123456789012:abcdef1234/*", **over: Any
) -> dict[str, Any]:
    """One statement as Lambda's AddPermission writes it (Sid with '-', which identity Sids do not take)."""
    statement: dict[str, Any] = {
        "Sid": "apigateway-invoke",
        "Effect": "Allow",
        "Principal": {"Service": "apigateway.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": FUNCTION_ARN,
    }
    if source_arn is not None:
        statement["Condition"] = {"ArnLike": {"AWS:SourceArn": source_arn}}
    return {key: value for key, value in (statement | over).items() if value is not None}


def _document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Id": "default", "Statement": list(statements)})


@pytest.mark.parametrize(
    ("document", "verdict", "reason_has"),
    [
        pytest.param(_document(_grant()), "allowed", 'Sid "apigateway-invoke"', id="api-wide grant"),
        pytest.param(_document(_grant(ROUTE_ARN)), "allowed", "allowed", id="exact route"),
        pytest.param(
            _document(_grant(f"{ROUTE_ARN[: -len('prod/$connect')]}*/$connect")),
            "allowed",
            "",
            id="any stage",
        ),
        pytest.param(_document(_grant(None)), "allowed", "", id="no condition: any source"),
        pytest.param(None, "implicit-deny", "There is no resource policy", id="no policy at all"),
        pytest.param(
            _document(_grant("arn:aws:execute-api:us-east-2:123456789012:otherapi99/*")),
            "implicit-deny",
            "condition ArnLike AWS:SourceArn is not met",
            id="another api",
        ),
        pytest.param(
            _document(_grant(ROUTE_ARN.replace("/prod/", "/dev/"))), "implicit-deny", "", id="another stage"
        ),
        pytest.param(
            _document(_grant(ROUTE_ARN.replace("$connect", "$disconnect"))),
            "implicit-deny",
            "",
            id="another route",
        ),
        pytest.param(
            _document(_grant(Principal={"Service": "events.amazonaws.com"})),
            "implicit-deny",
            "No statement of the resource policy names apigateway.amazonaws.com",
            id="another service",
        ),
        pytest.param(_document(_grant(Principal="*")), "allowed", "", id="principal star"),
        pytest.param(_document(_grant(Principal={"AWS": "*"})), "allowed", "", id="principal aws star"),
        pytest.param(
            _document(_grant(Principal={"Service": ["s3.amazonaws.com", "apigateway.amazonaws.com"]})),
            "allowed",
            "",
            id="service among several",
        ),
        pytest.param(
            _document(_grant(Resource=f"{FUNCTION_ARN}-v2")),
            "implicit-deny",
            "but only on",
            id="another function",
        ),
        pytest.param(
            _document(_grant(Action="lambda:GetFunction")), "implicit-deny", "", id="another action"
        ),
        pytest.param(_document(_grant(Action="lambda:*")), "allowed", "", id="action wildcard"),
        pytest.param(
            _document(_grant(), _grant(Sid="deny_all", Effect="Deny")),
            "explicit-deny",
            'Statement[1] (Sid "deny_all")',
            id="a deny wins, its place kept",
        ),
        pytest.param(
            _document(
                _grant(Principal={"Service": "events.amazonaws.com"}, Sid="events"),
                _grant(ROUTE_ARN, Sid="connect"),
            ),
            "allowed",
            'Statement[1] (Sid "connect")',
            id="label keeps the document's index",
        ),
        pytest.param(
            _document(_grant(Condition={"StringEquals": {"AWS:SourceAccount": "210987654321"}})),
            "implicit-deny",
            "StringEquals AWS:SourceAccount",
            id="source account differs",
        ),
        pytest.param("not json", "implicit-deny", "not valid JSON", id="garbage"),
    ],
)
def test_resource_policy_decision(document: str | None, verdict: str, reason_has: str) -> None:
    decision = policy.resource_policy_decision(
        document,
        service=policy.APIGATEWAY_PRINCIPAL,
        action=policy.INVOKE_FUNCTION,
        resource=FUNCTION_ARN,
        context={"aws:SourceArn": ROUTE_ARN, "aws:SourceAccount": ACCOUNT},
    )
    assert decision.verdict == verdict, decision.reason
    assert reason_has in decision.reason


def test_route_arn_is_the_source_arn_api_gateway_presents() -> None:
    assert ROUTE_ARN == "arn:aws:execute-api:us-east-2:123456789012:abcdef1234/prod/$connect"
    assert permissions.execute_api_route_arn(
        "cn-north-1", ACCOUNT, "a", "s", "r", partition="aws-cn"
    ).startswith("arn:aws-cn:execute-api:cn-north-1:")
