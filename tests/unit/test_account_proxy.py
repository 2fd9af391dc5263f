"""The simulation tier's call classifier (tests/integration/account.py): which AWS operation a request was,
and whether it may change the account. A miss here would let a write pass the read-only proof."""

from __future__ import annotations

import pytest

from tests.integration.account import CODE_DOWNLOAD, CONNECT, identify, is_mutating


def signed(service: str, **headers: str) -> dict[str, str]:
    scope = f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261204/us-east-2/{service}/aws4_request, Signature=x"
    return {"authorization": scope, **headers}


CASES = [
    # (what, method, path, headers, body, service, operation)
    (
        "dynamodb put",
        "POST",
        "/",
        signed("dynamodb", **{"x-amz-target": "DynamoDB_20120810.PutItem"}),
        b"{}",
        "dynamodb",
        "PutItem",
    ),
    (
        "dynamodb scan",
        "POST",
        "/",
        signed("dynamodb", **{"x-amz-target": "DynamoDB_20120810.Scan"}),
        b"{}",
        "dynamodb",
        "Scan",
    ),
    (
        "logs filter",
        "POST",
        "/",
        signed("logs", **{"x-amz-target": "Logs_20140328.FilterLogEvents"}),
        b"{}",
        "logs",
        "FilterLogEvents",
    ),
    (
        "logs insights",
        "POST",
        "/",
        signed("logs", **{"x-amz-target": "Logs_20140328.StartQuery"}),
        b"{}",
        "logs",
        "StartQuery",
    ),
    (
        "iam query protocol",
        "POST",
        "/",
        signed("iam", **{"content-type": "application/x-www-form-urlencoded"}),
        b"Action=PutRolePolicy&Version=2010-05-08",
        "iam",
        "PutRolePolicy",
    ),
    (
        "sts",
        "POST",
        "/",
        signed("sts", **{"content-type": "application/x-www-form-urlencoded; charset=utf-8"}),
        b"Action=GetCallerIdentity",
        "sts",
        "GetCallerIdentity",
    ),
    ("apigw get api", "GET", "/v2/apis/abc123", signed("apigateway"), b"", "apigatewayv2", "GetApi"),
    (
        "apigw routes",
        "GET",
        "/v2/apis/abc123/routes?maxResults=10",
        signed("apigateway"),
        b"",
        "apigatewayv2",
        "GetRoutes",
    ),
    (
        "apigw one route",
        "GET",
        "/v2/apis/abc123/routes/r1",
        signed("apigateway"),
        b"",
        "apigatewayv2",
        "GetRoute",
    ),
    (
        "apigw update route",
        "PATCH",
        "/v2/apis/abc123/routes/r1",
        signed("apigateway"),
        b"{}",
        "apigatewayv2",
        "UpdateRoute",
    ),
    (
        "apigw deploy",
        "POST",
        "/v2/apis/abc123/deployments",
        signed("apigateway"),
        b"{}",
        "apigatewayv2",
        "CreateDeployment",
    ),
    (
        "lambda config",
        "GET",
        "/2015-03-31/functions/fn/configuration",
        signed("lambda"),
        b"",
        "lambda",
        "GetFunctionConfiguration",
    ),
    ("lambda get", "GET", "/2015-03-31/functions/fn", signed("lambda"), b"", "lambda", "GetFunction"),
    (
        "lambda update",
        "PUT",
        "/2015-03-31/functions/fn/configuration",
        signed("lambda"),
        b"{}",
        "lambda",
        "UpdateFunctionConfiguration",
    ),
    (
        "lambda invoke",
        "POST",
        "/2015-03-31/functions/fn/invocations",
        signed("lambda"),
        b"{}",
        "lambda",
        "Invoke",
    ),
    (
        "post to connection",
        "POST",
        "/prod/@connections/abc%3D",
        signed("execute-api"),
        b"hi",
        "apigatewaymanagementapi",
        "PostToConnection",
    ),
    (
        "get connection",
        "GET",
        "/prod/@connections/abc%3D",
        signed("execute-api"),
        b"",
        "apigatewaymanagementapi",
        "GetConnection",
    ),
    (
        "delete connection",
        "DELETE",
        "/prod/@connections/abc%3D",
        signed("execute-api"),
        b"",
        "apigatewaymanagementapi",
        "DeleteConnection",
    ),
    (
        "websocket",
        "GET",
        "/prod?token=x",
        {"upgrade": "WebSocket", "connection": "Upgrade"},
        b"",
        "execute-api",
        CONNECT,
    ),
    ("code download", "GET", "/code/fn.zip?X-Amz-Signature=abc", {}, b"", "unsigned", CODE_DOWNLOAD),
    ("an unsigned write", "PUT", "/anything", {}, b"x", "unsigned", "PUT /anything"),
    (
        "an unknown route",
        "POST",
        "/v2/nothing/here",
        signed("apigateway"),
        b"",
        "apigatewayv2",
        "POST /v2/nothing/here",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "service", "operation"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_identify(
    method: str, path: str, headers: dict[str, str], body: bytes, service: str, operation: str
) -> None:
    assert identify(method, path, headers, body) == (service, operation)


@pytest.mark.parametrize(
    ("operation", "mutating"),
    [
        ("GetApi", False),
        ("ListTables", False),
        ("DescribeTable", False),
        ("Scan", False),
        ("Query", False),
        ("BatchGetItem", False),
        ("FilterLogEvents", False),
        ("SimulatePrincipalPolicy", False),
        ("StartQuery", False),
        ("GetQueryResults", False),
        (CODE_DOWNLOAD, False),
        ("PutItem", True),
        ("BatchWriteItem", True),
        ("CreateDeployment", True),
        ("UpdateRoute", True),
        ("DeleteConnection", True),
        ("PostToConnection", True),
        ("Invoke", True),
        ("TagResource", True),
        ("AttachRolePolicy", True),
        (CONNECT, True),
        ("PUT /anything", True),  # unknown: counted as a change, so a miss fails the proof
        ("", True),
    ],
)
def test_is_mutating(operation: str, mutating: bool) -> None:
    assert is_mutating(operation) is mutating
