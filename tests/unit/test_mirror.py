"""The mirror's pure parts: what it cannot reproduce, masking copied items, ARN rewriting, the manifest and
the command-line's NAME=PATH pairs (kit.mirror, kit.lab.mirror_build)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from kit import config, mirror
from kit.errors import ConfigurationError
from kit.lab.function_source import SECRET_PLACEHOLDER
from kit.lab.mirror_build import rewrite
from kit.mirror import (
    MASKED,
    Manifest,
    api_gaps,
    authorizer_functions,
    environment_record,
    function_gaps,
    mask_item,
    parse_function_code,
)


@pytest.mark.parametrize(
    ("configuration", "expected"),
    [
        ({}, []),
        ({"Layers": []}, []),
        (
            {"Layers": [{"Arn": "arn:aws:lambda:us-east-2:111122223333:layer:deps:7"}]},
            ["function f: layers deps"],
        ),
        ({"VpcConfig": {"SubnetIds": [], "SecurityGroupIds": []}}, []),
        ({"VpcConfig": {"SubnetIds": ["subnet-1"]}}, ["function f: VPC"]),
        ({"FileSystemConfigs": [{"Arn": "x", "LocalMountPath": "/mnt/x"}]}, ["function f: EFS file systems"]),
        ({"Architectures": ["x86_64"]}, []),
        ({"Architectures": ["arm64"]}, ["function f: arm64"]),
        ({"TracingConfig": {"Mode": "PassThrough"}}, []),
        ({"TracingConfig": {"Mode": "Active"}}, ["function f: X-Ray tracing"]),
        ({"DeadLetterConfig": {"TargetArn": "arn:aws:sqs:us-east-2:1:q"}}, ["function f: dead-letter queue"]),
        ({"PackageType": "Zip"}, []),
        ({"PackageType": "Image"}, ["function f: container image"]),
        (
            {
                "Environment": {
                    "Variables": {"MANAGEMENT_ENDPOINT": "https://a1.execute-api.us-east-2.amazonaws.com/p"}
                }
            },
            ["function f: MANAGEMENT_ENDPOINT names an execute-api endpoint"],
        ),
        ({"Environment": {"Variables": {"API": "https://example.com/p", "TABLE_NAME": "t"}}}, []),
    ],
)
def test_function_gaps(configuration: dict[str, Any], expected: list[str]) -> None:
    assert [gap.what for gap in function_gaps("f", configuration)] == expected


AUTHORIZER = {
    "AuthorizerId": "z",
    "AuthorizerUri": "arn:aws:apigateway:us-east-2:lambda:path/2015-03-31/functions/"
    "arn:aws:lambda:us-east-2:123456789012:function:auth-fn/invocations",
}


def answers(routes: list[dict[str, Any]] = (), stages: list[dict[str, Any]] = (), integrations=()) -> Any:  # type: ignore[assignment]
    return config.ApiAnswers({"ApiId": "a1"}, list(routes), list(integrations), list(stages))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (answers(), []),
        (answers(routes=[{"RouteKey": "$connect", "AuthorizationType": "NONE"}]), []),
        (
            answers(routes=[{"RouteKey": "$connect", "AuthorizationType": "CUSTOM", "AuthorizerId": "z"}]),
            ["route $connect: authorization CUSTOM"],
        ),
        (
            # A Lambda authorizer the API lists is copied with its function: no gap.
            replace(
                answers(
                    routes=[{"RouteKey": "$connect", "AuthorizationType": "CUSTOM", "AuthorizerId": "z"}]
                ),
                authorizers=[AUTHORIZER],
            ),
            [],
        ),
        (  # AWS_IAM is copied and enforced, but not who the account's clients are: a gap, named
            answers(routes=[{"RouteKey": "$connect", "AuthorizationType": "AWS_IAM"}]),
            ["route $connect: authorization AWS_IAM"],
        ),
        (
            answers(routes=[{"RouteKey": "$connect", "AuthorizationType": "JWT"}]),
            ["route $connect: authorization JWT"],
        ),
        (  # route responses are copied (read for the mirror): no gap
            answers(routes=[{"RouteKey": "echo", "RouteResponseSelectionExpression": "$default"}]),
            [],
        ),
        (answers(routes=[{"RouteKey": "m", "ApiKeyRequired": True}]), ["route m: API key required"]),
        (answers(routes=[{"RouteKey": "m", "ApiKeyRequired": False}]), []),
        (answers(stages=[{"StageName": "prod", "DefaultRouteSettings": {"LoggingLevel": "INFO"}}]), []),
        # throttling limits are copied with the stage and enforced by the lab: no gap
        (answers(stages=[{"StageName": "prod", "DefaultRouteSettings": {"ThrottlingBurstLimit": 0}}]), []),
        (answers(stages=[{"StageName": "prod", "RouteSettings": {"m": {"ThrottlingRateLimit": 5.0}}}]), []),
        (
            answers(stages=[{"StageName": "prod", "ClientCertificateId": "c"}]),
            ["stage prod: client certificate"],
        ),
        (  # what the stage's deployment holds cannot be read: the mirror deploys the current routes
            answers(stages=[{"StageName": "prod", "DeploymentId": "d1"}]),
            ["stage prod: deployment d1"],
        ),
        (answers(stages=[{"StageName": "prod", "DeploymentId": "d1", "AutoDeploy": True}]), []),
        (answers(stages=[{"StageName": "prod"}]), []),  # no deployment: none in the mirror either
        (answers(integrations=[{"IntegrationId": "i", "ConnectionType": "INTERNET"}]), []),
        (
            answers(integrations=[{"IntegrationId": "i", "ConnectionType": "VPC_LINK"}]),
            ["integration i: VPC link"],
        ),
    ],
)
def test_api_gaps(given: config.ApiAnswers, expected: list[str]) -> None:
    assert [gap.what for gap in api_gaps(given)] == expected


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        ([{"RouteKey": "$connect", "AuthorizationType": "CUSTOM", "AuthorizerId": "z"}], ["auth-fn"]),
        ([{"RouteKey": "$connect", "AuthorizationType": "CUSTOM", "AuthorizerId": "other"}], []),
        ([{"RouteKey": "$connect", "AuthorizationType": "NONE", "AuthorizerId": "z"}], []),
        ([{"RouteKey": "$connect"}], []),
    ],
)
def test_the_functions_of_the_authorizers_routes_use_are_mirrored(
    routes: list[dict[str, Any]], expected: list[str]
) -> None:
    assert authorizer_functions(replace(answers(routes=routes), authorizers=[AUTHORIZER])) == expected


def test_items_are_masked_as_reports_mask_them_and_stay_consistent() -> None:
    item = {
        "connectionId": {"S": "abc="},
        "userId": {"S": "ada@example.com"},
        "sessionToken": {"S": "eyJhbGciOi.secret.value"},
        "profile": {"M": {"email": {"S": "Ada@Example.com"}, "apiKey": {"S": "k-123"}, "n": {"N": "3"}}},
        "seen": {"L": [{"S": "bob@example.org"}, {"N": "1"}]},
        "aliases": {"SS": ["x@example.com", "plain"]},
        "connectedAt": {"N": "1700000000"},
        "flag": {"BOOL": True},
    }
    masked = mask_item(item, "salt")
    text = json.dumps(masked)
    for secret in (
        "ada@example.com",
        "Ada@Example.com",
        "bob@example.org",
        "x@example.com",
        "secret.value",
        "k-123",
    ):
        assert secret not in text
    assert masked["connectionId"] == {"S": "abc="}
    assert masked["sessionToken"] == {"S": MASKED}
    assert masked["profile"]["M"]["apiKey"] == {"S": MASKED}
    assert masked["profile"]["M"]["n"] == {"N": "3"}
    assert masked["connectedAt"] == {"N": "1700000000"} and masked["flag"] == {"BOOL": True}
    assert "plain" in masked["aliases"]["SS"]
    # The same address masks the same way within a salt (a key stays a key), differently across salts.
    assert masked["userId"] == mask_item({"userId": {"S": "ada@example.com"}}, "salt")["userId"]
    assert masked["userId"] != mask_item({"userId": {"S": "ada@example.com"}}, "other")["userId"]
    assert masked["userId"]["S"].startswith("a")


def test_the_manifest_names_secret_variables_without_their_values() -> None:
    record = environment_record(
        {"TABLE_NAME": "t", "JWT_SECRET": "s3cr3t", "API_KEY": "k", "SECRET_FILE": "/x"}
    )
    assert record == {
        "API_KEY": SECRET_PLACEHOLDER,
        "JWT_SECRET": SECRET_PLACEHOLDER,
        "SECRET_FILE": "/x",
        "TABLE_NAME": "t",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "arn:aws:dynamodb:us-east-2:111122223333:table/t",
            "arn:aws:dynamodb:us-east-2:123456789012:table/t",
        ),
        ("arn:aws:iam::111122223333:role/r", "arn:aws:iam::123456789012:role/r"),
        (
            "arn:aws:execute-api:us-east-2:111122223333:oldapi/*",
            "arn:aws:execute-api:us-east-2:123456789012:newapi/*",
        ),
        ("111122223333", "111122223333"),  # a bare number is not an ARN's account field
        (
            {
                "Statement": [
                    {"Resource": ["arn:aws:dynamodb:us-east-2:111122223333:table/t/index/*"], "n": 1}
                ]
            },
            {
                "Statement": [
                    {"Resource": ["arn:aws:dynamodb:us-east-2:123456789012:table/t/index/*"], "n": 1}
                ]
            },
        ),
        (None, None),
        (True, True),
    ],
)
def test_rewrite(value: Any, expected: Any) -> None:
    assert rewrite(value, {":111122223333:": ":123456789012:", "oldapi": "newapi"}) == expected


def test_manifest_summary_and_shape() -> None:
    manifest = Manifest({"region": "us-east-2"}, not_reproduced=[{"what": "x", "why": "y"}])
    manifest.copy("route", "$connect")
    manifest.change("API id", "a", "b")
    assert (
        manifest.summary() == "mirrored 1 resources from us-east-2; 1 changed for the lab, 1 not reproduced"
    )
    assert set(manifest.as_dict()) == {"source", "copied", "changed", "not_reproduced"}


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([], {}),
        (["fn=code.zip"], {"fn": "code.zip"}),
        (["fn=a=b.zip"], {"fn": "a=b.zip"}),
    ],
)
def test_function_code_pairs(pairs: list[str], expected: dict[str, str]) -> None:
    assert {name: str(path) for name, path in parse_function_code(pairs).items()} == expected


@pytest.mark.parametrize("pair", ["fn", "=code.zip", "fn=", ""])
def test_function_code_pairs_refused(pair: str) -> None:
    with pytest.raises(ConfigurationError, match="NAME=PATH"):
        parse_function_code([pair])


# --------------------------------------------------------------------------------------------------------
# The report's "The fix, verified on a mirror" (kit.notebook.proof_markdown over kit.fix_proof.Proof)


def test_proof_markdown_says_each_outcome_and_escapes() -> None:
    from kit.fix_apply import Verdict
    from kit.fix_proof import Proof
    from kit.notebook import proof_markdown

    fixed = Proof("on the lab", Verdict(True, "fixed: the root cause is gone", "put-access-denied", "none"))
    assert proof_markdown(fixed).startswith("**Fixed** on the lab: the root cause is gone.")
    short = Proof("on the lab", Verdict(False, "not enough: the next cause is x", "a", "x"))
    assert proof_markdown(short).startswith("**Not enough** on the lab: the next cause is x.")
    refused = Proof("on a mirror of aws us-east-2", why_not="IAM GetRole for role r failed with AccessDenied")
    text = proof_markdown(refused)
    assert text.startswith("**Not verified** on a mirror of aws us-east-2: IAM GetRole")
    assert "Fixed" not in text
    assert "verify_fix=False" in proof_markdown(None) and "Not verified" in proof_markdown(None)
    hostile = Proof(
        "on a mirror",
        Verdict(True, "fixed", "a", "none"),
        mirror={
            "source": {"api": "<img src=x onerror=alert(1)>"},
            "copied": 3,
            "changed": 2,
            "not_reproduced": ["custom domain <script>alert(1)</script>.example.com"],
        },
    )
    rendered = proof_markdown(hostile)
    assert "<script>" not in rendered and "<img" not in rendered
    assert "It could not reproduce:" in rendered and "copied 3 resources" in rendered


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("https://app.example.com/api/websocket", "https://app.example.com/api/websocket"),
        ("https://app.example.com/api/websocket?key=s3cr3t", "https://app.example.com/api/websocket?…"),
        ("https://user:pa55@app.example.com:8443/ws#frag", "https://app.example.com:8443/ws?…"),
        ("http://127.0.0.1:3000/api", "http://127.0.0.1:3000/api"),
        ("not a url", "(not a URL)"),
    ],
)
def test_the_manifest_shows_http_endpoints_without_what_can_carry_keys(uri: str, shown: str) -> None:
    from kit.lab.mirror_build import shown_uri

    assert shown_uri(uri) == shown


# --------------------------------------------------------------------------------------------------------
# kit.fix_proof.prove on the lab: whatever happens, what was applied is taken back


def test_a_proof_on_the_lab_takes_back_what_it_applied_even_when_verifying_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kit import fix, fix_apply, fix_proof
    from kit.errors import AwsError
    from kit.target import Target

    target = Target.local({"*": "http://127.0.0.1:9"})
    change = fix.Change("put_policy", "allow PutItem", {"RoleName": "r"})
    monkeypatch.setattr(fix, "plan", lambda diagnosis, evidence: fix.Fix("put-access-denied", "s", (change,)))
    undone: list[list[fix.Change]] = []

    def verify(*_args: Any, into: fix_apply.Applied, **_kw: Any) -> Any:
        into.undo.append(change)  # the first change was made ...
        raise AwsError("IAM PutRolePolicy failed with Throttling", service="iam", operation="x", code="T")

    monkeypatch.setattr(fix_apply, "verify", verify)
    monkeypatch.setattr(fix_apply, "undo", lambda target, applied: undone.append(list(applied.undo)))
    proof = fix_proof.prove(target, diagnosis=None, evidence=None)  # type: ignore[arg-type]
    assert undone == [[change]]
    assert proof.verdict is None and "Throttling" in proof.why_not and proof.where == "on the lab"


def test_a_proof_with_nothing_to_apply_claims_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from kit import fix, fix_proof
    from kit.target import Target

    monkeypatch.setattr(fix, "plan", lambda diagnosis, evidence: fix.Fix("none", "nothing is wrong"))
    proof = fix_proof.prove(Target.local({"*": "http://127.0.0.1:9"}), None, None)  # type: ignore[arg-type]
    assert proof.verdict is None and proof.why_not == "there is nothing to apply for none: nothing is wrong"


def test_a_copied_tables_request_keeps_keys_and_indexes_on_demand() -> None:
    from kit.lab.mirror_build import table_request
    from kit.mirror import TableCopy

    key = [{"AttributeName": "connectionId", "KeyType": "HASH"}]
    gsi = {
        "IndexName": "workspaceIndex",
        "KeySchema": [{"AttributeName": "workspaceId", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "ALL"},
        "IndexStatus": "ACTIVE",  # DescribeTable's, never CreateTable's
        "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
    }
    described = {
        "KeySchema": key,
        "AttributeDefinitions": [{"AttributeName": "connectionId", "AttributeType": "S"}],
        "GlobalSecondaryIndexes": [gsi],
        "BillingModeSummary": {"BillingMode": "PROVISIONED"},
        "TableStatus": "ACTIVE",
    }
    request = table_request(TableCopy("t", "us-east-2", described))
    assert request == {
        "TableName": "t",
        "KeySchema": key,
        "AttributeDefinitions": described["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [
            {"IndexName": "workspaceIndex", "KeySchema": gsi["KeySchema"], "Projection": gsi["Projection"]}
        ],
    }


def test_a_mirrored_route_gets_its_route_responses() -> None:
    from kit.lab import mirror_build

    class Apigw:
        def __init__(self) -> None:
            self.calls: list[tuple[str, dict[str, Any]]] = []

        def create_route(self, **params: Any) -> dict[str, Any]:
            self.calls.append(("create_route", params))
            return {"RouteId": f"r-{params['RouteKey']}"}

        def create_route_response(self, **params: Any) -> dict[str, Any]:
            self.calls.append(("create_route_response", params))
            return {}

    route = {"RouteId": "old", "RouteKey": "echo", "RouteResponseSelectionExpression": "$default"}
    connect = {"RouteId": "c", "RouteKey": "$connect", "AuthorizationType": "AWS_IAM"}
    copy = mirror.AccountCopy(
        region="us-east-2",
        account_id="1",
        api=answers(routes=[route, connect]),
        stage="prod",
        functions=[],
        roles=[],
        tables=[],
        table="t",
        route_responses={
            "echo": [{"RouteResponseKey": "$default", "RouteResponseId": "x", "ResponseModels": {}}]
        },
    )
    apigw = Apigw()
    manifest = mirror.Manifest({})
    mirror_build._create_routes(apigw, "new", copy, {}, manifest=manifest, authorizer_ids={})
    assert apigw.calls == [
        (
            "create_route",
            {"ApiId": "new", "RouteKey": "echo", "RouteResponseSelectionExpression": "$default"},
        ),
        ("create_route_response", {"ApiId": "new", "RouteId": "r-echo", "RouteResponseKey": "$default"}),
        ("create_route", {"ApiId": "new", "RouteKey": "$connect", "AuthorizationType": "AWS_IAM"}),
    ]
    assert {"kind": "route response", "name": "echo", "detail": "key $default"} in manifest.copied
