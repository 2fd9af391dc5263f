"""Execution-role enforcement in the lab: the DynamoDB front door decides from the role's policies in IAM.

The policies live in moto's IAM and are changed with ordinary boto3 calls; the next request sees the change.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kit.dynamo import schema
from kit.lab import engines
from kit.lab.dynamodb_front import DynamoDBFront
from kit.lab.hops import DYNAMODB_ENGINE, FRONT_DOOR
from kit.lab.live import CredentialIssuer, LiveConfig, authorizer
from kit.local import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY
from kit.target import Target

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"
REGION = "us-east-2"
ROLE = "handler-role"
POLICY = json.loads((Path(__file__).resolve().parents[2] / "iam-policies.json").read_text())


@pytest.fixture
def moto_engine() -> Iterator[engines.Engine]:
    engine = engines.start_moto()
    yield engine
    engine.stop()


@pytest.fixture
def lab(
    dynamodb_engine: engines.Engine, moto_engine: engines.Engine, table_name: str
) -> Iterator[dict[str, Any]]:
    admin = Target.local(
        {"dynamodb": dynamodb_engine.endpoint_url, "*": moto_engine.endpoint_url}, region=REGION
    )
    schema.create_table(admin.client("dynamodb"), name=table_name)
    iam = admin.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role_arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    policy = json.loads(json.dumps(POLICY).replace("chatgenius-connections", table_name))
    iam.put_role_policy(RoleName=ROLE, PolicyName="access", PolicyDocument=json.dumps(policy))
    live = LiveConfig(admin, moto_engine.generation, moto_engine.deployed)
    issuer = CredentialIssuer(ACCOUNT)
    front = DynamoDBFront(
        dynamodb_engine.endpoint_url, authorizer(issuer, live), ACCOUNT, issuer.signing_secret
    ).start()
    credentials = issuer.issue(role_arn, "chatgenius-websocket")
    function_client = boto3.client(
        "dynamodb",
        endpoint_url=front.url,
        region_name=REGION,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )
    yield {
        "iam": iam,
        "policy": policy,
        "client": function_client,
        "table": table_name,
        "front": front,
        "admin": admin,
        "credentials": credentials,
    }
    front.stop()


def _put(lab: dict[str, Any], connection_id: str = "AbCdEfGhIjKlMn0=") -> None:
    lab["client"].put_item(
        TableName=lab["table"],
        Item={"connectionId": {"S": connection_id}, "workspaceId": {"S": "ws-1"}},
    )


def _query_index(lab: dict[str, Any]) -> Any:
    return lab["client"].query(
        TableName=lab["table"],
        IndexName="workspaceIndex",
        KeyConditionExpression="workspaceId = :w",
        ExpressionAttributeValues={":w": {"S": "ws-1"}},
    )


def test_the_correct_policy_allows_the_handlers_calls(lab: dict[str, Any]) -> None:
    lab["front"].hops.reset()
    _put(lab)
    assert _query_index(lab)["Count"] >= 0
    # Each request is timed at the front door and, inside that, at the engine (the bench's per-hop figures).
    timed = lab["front"].hops.snapshot()
    assert timed[FRONT_DOOR].count == timed[DYNAMODB_ENGINE].count == 2
    assert timed[DYNAMODB_ENGINE].total_ms <= timed[FRONT_DOOR].total_ms
    item = (
        lab["admin"]
        .client("dynamodb")
        .get_item(TableName=lab["table"], Key={"connectionId": {"S": "AbCdEfGhIjKlMn0="}})
    )
    assert item["Item"]["workspaceId"] == {"S": "ws-1"}


def test_a_policy_change_takes_effect_on_the_next_call(lab: dict[str, Any]) -> None:
    _put(lab)
    without_put = json.loads(json.dumps(lab["policy"]))
    without_put["Statement"][0]["Action"].remove("dynamodb:PutItem")
    lab["iam"].put_role_policy(RoleName=ROLE, PolicyName="access", PolicyDocument=json.dumps(without_put))
    with pytest.raises(ClientError) as denied:
        _put(lab, "ZzZzZzZzZzZzZz0=")
    error = denied.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/chatgenius-websocket is not authorized to perform: "
        f"dynamodb:PutItem on resource: arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{lab['table']} "
        "because no identity-based policy allows the dynamodb:PutItem action"
    )
    # Nothing was written by the denied call.
    scan = lab["admin"].client("dynamodb").scan(TableName=lab["table"])
    assert [i["connectionId"]["S"] for i in scan["Items"]] == ["AbCdEfGhIjKlMn0="]


def test_table_grant_without_index_arn_denies_the_gsi_query(lab: dict[str, Any]) -> None:
    table_only = json.loads(json.dumps(lab["policy"]))
    table_only["Statement"][0]["Resource"] = [
        r for r in table_only["Statement"][0]["Resource"] if "/index/" not in r
    ]
    lab["iam"].put_role_policy(RoleName=ROLE, PolicyName="access", PolicyDocument=json.dumps(table_only))
    _put(lab)  # the table itself is still allowed
    with pytest.raises(ClientError) as denied:
        _query_index(lab)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"table/{lab['table']}/index/workspaceIndex" in denied.value.response["Error"]["Message"]


def test_explicit_deny_wins_over_allow(lab: dict[str, Any]) -> None:
    deny = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "dynamodb:Put*", "Resource": "*"}],
    }
    lab["iam"].put_role_policy(RoleName=ROLE, PolicyName="deny-writes", PolicyDocument=json.dumps(deny))
    with pytest.raises(ClientError) as denied:
        _put(lab)
    assert "with an explicit deny in an identity-based policy" in denied.value.response["Error"]["Message"]


def test_an_access_key_the_lab_never_issued_is_rejected(lab: dict[str, Any]) -> None:
    stranger = boto3.client(
        "dynamodb",
        endpoint_url=lab["front"].url,
        region_name=REGION,
        aws_access_key_id="ASIANOTISSUED0000000",
        aws_secret_access_key="x",
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )
    with pytest.raises(ClientError) as rejected:
        stranger.list_tables()
    assert rejected.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_engine_down_is_a_loud_failure(lab: dict[str, Any], moto_engine: engines.Engine) -> None:
    front = DynamoDBFront(
        "http://127.0.0.1:9", lambda *_: None, ACCOUNT, CredentialIssuer(ACCOUNT).signing_secret
    )
    front.start()
    try:
        client = boto3.client(
            "dynamodb",
            endpoint_url=front.url,
            region_name=REGION,
            aws_access_key_id=LOCAL_ACCESS_KEY_ID,
            aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
            config=Config(retries={"mode": "standard", "max_attempts": 1}),
        )
        with pytest.raises(ClientError) as failed:
            client.list_tables()
        assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    finally:
        front.stop()


def test_bad_signatures_get_aws_errors_from_the_front_door(lab: dict[str, Any]) -> None:
    """Real boto3 clients signing wrongly, and a raw request with a garbage header, get AWS's answers."""
    issued = lab["credentials"]  # the function's own credentials; each case changes one part
    cases = [
        (
            "a wrong secret",
            {"aws_secret_access_key": "not-the-issued-secret"},
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        ),
        (
            "a region AWS does not have",
            {"region_name": "eu-east-2"},
            "InvalidSignatureException",
            "Credential should be scoped to a valid region, not 'eu-east-2'. ",
        ),
        (
            "a wrong session token",
            {"aws_session_token": "not-the-issued-token"},
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        (
            "the admin key with a wrong secret",
            {
                "aws_access_key_id": LOCAL_ACCESS_KEY_ID,
                "aws_secret_access_key": "x",
                "aws_session_token": None,
            },
            "InvalidSignatureException",
            "The request signature we calculated does not match",
        ),
    ]
    for name, change, code, message in cases:
        settings = {
            "region_name": REGION,
            "aws_access_key_id": issued.access_key_id,
            "aws_secret_access_key": issued.secret_access_key,
            "aws_session_token": issued.session_token,
        } | change
        client = boto3.client(
            "dynamodb",
            endpoint_url=lab["front"].url,
            config=Config(retries={"mode": "standard", "max_attempts": 1}),
            **settings,
        )
        with pytest.raises(ClientError) as rejected:
            _put_with(client, lab["table"])
        error = rejected.value.response["Error"]
        assert (error["Code"], rejected.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
            code,
            400,
        ), name
        assert error["Message"].startswith(message), (name, error["Message"])
    scan = lab["admin"].client("dynamodb").scan(TableName=lab["table"])
    assert scan["Items"] == [], "a refused request wrote nothing"

    host, port = lab["front"].url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request(
        "POST",
        "/",
        body=b"{}",
        headers={
            "Authorization": f"garbage Credential={issued.access_key_id}/a/b/c/d",
            "X-Amz-Date": "20240101T000000Z",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Content-Type": "application/x-amz-json-1.0",
        },
    )
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert response.status == 400
    assert answer == {
        "__type": "com.amazon.coral.service#IncompleteSignatureException",
        "message": "Authorization header requires 'Signature' parameter. Authorization header requires "
        f"'SignedHeaders' parameter. Authorization=garbage Credential={issued.access_key_id}/a/b/c/d",
    }


def _put_with(client: Any, table: str) -> None:
    client.put_item(
        TableName=table, Item={"connectionId": {"S": "AbCdEfGhIjKlMn0="}, "workspaceId": {"S": "w"}}
    )


def test_the_front_door_answers_without_waiting_for_a_delayed_ack(lab: dict[str, Any]) -> None:
    """Headers and body go out in two writes; with Nagle's algorithm on, the body of every kept-alive answer
    waited for the client's delayed ACK (40 ms on Linux): a $connect took ~50 ms instead of ~10."""
    assert lab["front"]._server.RequestHandlerClass.disable_nagle_algorithm is True
