"""Lambda REQUEST authorizers on $connect in a running lab (issue 14 item 1), configured only with boto3:
the function, API Gateway's permission to invoke it, CreateAuthorizer, UpdateRoute (CUSTOM) and a deployment.

One test per row of docs/fidelity.md's "Lambda authorizers on $connect" table, each docstring naming its row
(the row check is test_fidelity.py's). One healthy lab for the module; each test removes its authorizer and
deploys again (labclient.authorizer_attached).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import websocket
from botocore.exceptions import ClientError

from kit.lab.lab import Lab
from kit.lab.provision import ACCOUNT_ID

from .labclient import (
    ECHO_HANDLER,
    EmptyDynamoDB,
    authorizer_attached,
    authorizer_events,
    close_quietly,
    echoed_events,
    execution_group,
    function_changed,
    handshake_status,
    info,
    lambda_lines,
    log_messages,
    now_ms,
    open_socket,
    query,
    routes,
    starts,
    unique_user,
    wait_for_count,
)

pytestmark = pytest.mark.integration

ALLOWED_CONTEXT = {"principalId": "user-1", "userId": "user-1", "plan": "pro", "seats": "3", "admin": "false"}


@pytest.fixture(scope="module")
def lab(empty_dynamodb: EmptyDynamoDB) -> Iterator[Lab]:
    with Lab("healthy", write_lab_file=False, dynamodb=empty_dynamodb()) as running:
        yield running


def _authorizer_function(lab: Lab, authorizer_id: str) -> str:
    apigw = lab.target().client("apigatewayv2")
    uri = apigw.get_authorizer(ApiId=info(lab).api_id, AuthorizerId=authorizer_id)["AuthorizerUri"]
    return str(uri.split(":function:", 1)[1].split("/", 1)[0])


def _refused(call: object) -> str:
    with pytest.raises(ClientError) as refused:
        call()  # type: ignore[operator]
    error = refused.value.response["Error"]
    return f"{error['Code']}: {error['Message']}"


def test_authorizers_are_configured_and_refused_as_aws_does(lab: Lab) -> None:
    """Row: authorizer configuration."""
    apigw = lab.target().client("apigatewayv2")
    api_id = info(lab).api_id
    uri = "arn:aws:apigateway:us-east-2:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-2:123456789012:function:f/invocations"
    common = {"ApiId": api_id, "AuthorizerType": "REQUEST", "AuthorizerUri": uri, "Name": "a"}
    assert _refused(
        lambda: apigw.create_authorizer(
            **common, IdentitySource=["route.request.header.Auth"], AuthorizerResultTtlInSeconds=300
        )
    ) == ("BadRequestException: AuthorizerResultTtlInSeconds cannot be set for WEBSOCKET protocol Apis.")
    assert _refused(
        lambda: apigw.create_authorizer(**common, IdentitySource=["$request.header.Authorization"])
    ).startswith(
        "BadRequestException: Invalid request identity source expression: $request.header.Authorization."
    )
    made = apigw.create_authorizer(**common, IdentitySource=["route.request.querystring.token"])
    try:
        listed = apigw.get_authorizers(ApiId=api_id)["Items"]
        assert [a["AuthorizerId"] for a in listed] == [made["AuthorizerId"]]
        assert listed[0]["IdentitySource"] == ["route.request.querystring.token"]
        message_route = routes(lab)["message"]["RouteId"]
        assert (
            _refused(
                lambda: apigw.update_route(
                    ApiId=api_id,
                    RouteId=message_route,
                    AuthorizationType="CUSTOM",
                    AuthorizerId=made["AuthorizerId"],
                )
            )
            == "BadRequestException: Currently, authorization is restricted to the $connect route only"
        )
        connect_route = routes(lab)["$connect"]["RouteId"]
        assert _refused(
            lambda: apigw.update_route(
                ApiId=api_id, RouteId=connect_route, AuthorizationType="CUSTOM", AuthorizerId="nosuch"
            )
        ).startswith("NotFoundException")
        assert routes(lab)["$connect"].get("AuthorizationType", "NONE") == "NONE"
    finally:
        apigw.delete_authorizer(ApiId=api_id, AuthorizerId=made["AuthorizerId"])


def test_a_missing_identity_source_is_401_and_the_authorizer_is_not_invoked(lab: Lab) -> None:
    """Row: identity source missing."""
    with authorizer_attached(lab, "allow") as authorizer_id:
        function = _authorizer_function(lab, authorizer_id)
        started = now_ms()
        assert handshake_status(lab, "workspaceId=ws-1") == 401
        assert handshake_status(lab, "token=&workspaceId=ws-1") == 401
        assert authorizer_events(lab, function, started) == []
        lines = log_messages(lab, execution_group(lab), started)
        assert sum("Unauthorized request: " in line for line in lines) == 2, lines
        assert not any("Endpoint request URI" in line for line in lines)


def test_an_allow_carries_principal_and_context_into_every_event(lab: Lab) -> None:
    """Row: an Allow, and the authorizer's event."""
    user = unique_user()
    with function_changed(lab, Handler=ECHO_HANDLER), authorizer_attached(lab, "allow") as authorizer_id:
        function = _authorizer_function(lab, authorizer_id)
        started = now_ms()
        ws = open_socket(lab, query(user, "ws-1"))
        try:
            ws.send(json.dumps({"action": "message", "message": "hi"}))
            wait_for_count(
                lambda: [
                    e for e in echoed_events(lab, started) if e["requestContext"]["eventType"] == "MESSAGE"
                ],
                1,
            )
        finally:
            close_quietly(ws)
        events = wait_for_count(lambda: echoed_events(lab, started), 3)
        (seen,) = authorizer_events(lab, function, started)
    assert [e["requestContext"]["eventType"] for e in events] == ["CONNECT", "MESSAGE", "DISCONNECT"]
    assert all(e["requestContext"]["authorizer"] == ALLOWED_CONTEXT for e in events), events
    connection_id = events[0]["requestContext"]["connectionId"]
    lab_info = info(lab)
    assert seen["type"] == "REQUEST"
    assert (
        seen["methodArn"]
        == f"arn:aws:execute-api:{lab_info.region}:{ACCOUNT_ID}:{lab_info.api_id}/prod/$connect"
    )
    assert seen["queryStringParameters"] == {"token": user, "workspaceId": "ws-1"}
    assert seen["stageVariables"] == {}
    context = seen["requestContext"]
    assert (context["routeKey"], context["eventType"], context["connectionId"]) == (
        "$connect",
        "CONNECT",
        connection_id,
    )
    assert "authorizer" not in context


def test_a_deny_is_403_and_connect_never_runs(lab: Lab) -> None:
    """Row: a Deny, or no statement matching the method ARN."""
    with authorizer_attached(lab, "deny"):
        started = now_ms()
        assert handshake_status(lab, query(unique_user(), "ws-1")) == 403
        lines = log_messages(lab, execution_group(lab), started)
    assert any("Authorizer denied the request: " in line for line in lines), lines
    assert any("Successfully completed authorizer execution" in line for line in lines)
    assert starts(lambda_lines(lab, started)) == [], "the $connect function never ran"


@pytest.mark.parametrize(
    ("handler", "options", "status", "logged"),
    [
        ("unauthorized", {}, 401, "Unauthorized request: "),
        ("fails", {}, 500, "AuthorizerConfigurationException"),
        ("garbage", {}, 500, "Invalid JSON in response: the answer is a JSON list"),
        ("object_context", {}, 500, "context value 'user' is an object or array"),
        ("hang", {"timeout_s": 1}, 500, "the authorizer timed out"),
        ("allow", {"permitted": False}, 500, "Invalid permissions on Lambda function"),
    ],
)
def test_an_authorizer_that_fails_gets_awss_status_and_the_lab_keeps_serving(
    lab: Lab, handler: str, options: dict[str, object], status: int, logged: str
) -> None:
    """Row: an authorizer that fails, times out or answers garbage."""
    with authorizer_attached(lab, handler, **options):  # type: ignore[arg-type]
        started = now_ms()
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            open_socket(lab, query(unique_user(), "ws-1"))
        assert refused.value.status_code == status
        assert json.loads(refused.value.resp_body or b"{}") == {
            "message": {401: "Unauthorized", 500: "Internal server error"}[status]
        }
        lines = log_messages(lab, execution_group(lab), started)
        assert any(logged in line for line in lines), lines
    assert handshake_status(lab, query(unique_user(), "ws-1")) == 101


def test_an_authorizer_role_is_checked_instead_of_the_resource_policy(lab: Lab) -> None:
    """Row: an authorizer that fails, times out or answers garbage."""
    # Its invoke permission through a role (AuthorizerCredentialsArn) rather than the function's policy.
    iam = lab.target().client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "apigateway.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName="authorizer-invoker", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    try:
        with authorizer_attached(lab, "allow", permitted=False, credentials_arn=role["Arn"]):
            assert handshake_status(lab, query(unique_user(), "ws-1")) == 500  # the role may not invoke yet
            invoke = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"}],
            }
            iam.put_role_policy(
                RoleName="authorizer-invoker", PolicyName="invoke", PolicyDocument=json.dumps(invoke)
            )
            assert handshake_status(lab, query(unique_user(), "ws-1")) == 101
    finally:
        for name in iam.list_role_policies(RoleName="authorizer-invoker")["PolicyNames"]:
            iam.delete_role_policy(RoleName="authorizer-invoker", PolicyName=name)
        iam.delete_role(RoleName="authorizer-invoker")


def test_an_authorizer_not_deployed_changes_nothing(lab: Lab) -> None:
    """Row: an authorizer attached without a deployment."""
    with authorizer_attached(lab, "deny", deployed=False):
        assert routes(lab)["$connect"]["AuthorizationType"] == "CUSTOM"
        assert handshake_status(lab, query(unique_user(), "ws-1")) == 101
        lab.target().client("apigatewayv2").create_deployment(
            ApiId=info(lab).api_id, StageName=info(lab).stage
        )
        assert handshake_status(lab, query(unique_user(), "ws-1")) == 403
