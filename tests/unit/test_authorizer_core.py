"""kit.lab.authorizer_core and kit.lab.authorizers' pure parts, by tables: identity sources, the REQUEST event,
the verdict on every kind of answer (401/403/500/allow, and what the connection carries), the execution-log
lines, and the refusals the lab's AWS layer gives for WebSocket authorizers and routes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from kit.lab import authorizer_core as ac
from kit.lab import authorizers, gateway_events

METHOD_ARN = "arn:aws:execute-api:us-east-2:123456789012:abc123/prod/$connect"
URI = (
    "arn:aws:apigateway:us-east-2:lambda:path/2015-03-31/functions/"
    "arn:aws:lambda:us-east-2:123456789012:function:auth/invocations"
)
CONNECTION = gateway_events.Connection(
    "c0nnect1onId12=", 1_700_000_000_000, "10.0.0.1", "ua", "abc123", "d", "prod"
)


def connect_event(query: str | None = "token=t0k3n&workspaceId=ws-1", **headers: str) -> dict[str, Any]:
    return gateway_events.connect_event(
        CONNECTION,
        request_id="req",
        request_time_ms=1_700_000_000_000,
        headers=list(headers.items()),
        raw_query=query,
    )


def authorizer(*sources: str) -> ac.AuthorizerConfig:
    return ac.authorizer_config(
        {
            "AuthorizerId": "au1",
            "Name": "n",
            "AuthorizerType": "REQUEST",
            "AuthorizerUri": URI,
            "IdentitySource": list(sources),
        }
    )


@pytest.mark.parametrize(
    ("sources", "query", "headers", "variables", "expected"),
    [
        (("route.request.querystring.token",), "token=t0k3n", {}, {}, ac.Identity(("t0k3n",))),
        (
            ("route.request.querystring.token",),
            None,
            {},
            {},
            ac.Identity((), "route.request.querystring.token"),
        ),
        (
            ("route.request.querystring.token",),
            "token=",
            {},
            {},
            ac.Identity((), "route.request.querystring.token"),
        ),
        (("route.request.header.Authorization",), None, {"authorization": "b"}, {}, ac.Identity(("b",))),
        (
            ("route.request.querystring.token", "route.request.header.X-Team"),
            "token=t",
            {},
            {},
            ac.Identity(("t",), "route.request.header.X-Team"),
        ),
        (("stageVariables.env",), None, {}, {"env": "prod"}, ac.Identity(("prod",))),
        (("stageVariables.env",), None, {}, {}, ac.Identity((), "stageVariables.env")),
        (("context.connectionId",), None, {}, {}, ac.Identity(("c0nnect1onId12=",))),
        # The HTTP-API form is refused at CreateAuthorizer; should one get through, it never resolves.
        (("$request.querystring.token",), "token=t", {}, {}, ac.Identity((), "$request.querystring.token")),
        ((), None, {}, {}, ac.Identity(())),
    ],
)
def test_identity_sources(
    sources: tuple[str, ...],
    query: str | None,
    headers: dict[str, str],
    variables: dict[str, str],
    expected: ac.Identity,
) -> None:
    assert ac.identity(authorizer(*sources), connect_event(query, **headers), variables) == expected


def test_the_authorizer_event_is_awss_request_event() -> None:
    upgrade = [("Host", "h"), ("Connection", "Upgrade"), ("Upgrade", "websocket")]
    event = ac.authorizer_event(connect_event(None, Host="h"), METHOD_ARN, {}, upgrade)
    assert event["type"] == "REQUEST" and event["methodArn"] == METHOD_ARN
    # Always present, {} when empty (AWS's capture), unlike the CONNECT integration event.
    assert event["queryStringParameters"] == event["multiValueQueryStringParameters"] == {}
    assert event["stageVariables"] == {}
    # The upgrade's hop headers and content-length 0 reach the authorizer (AWS's capture), not the integration.
    assert event["headers"] == {
        "Host": "h",
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "content-length": "0",
    }
    assert event["multiValueHeaders"]["Upgrade"] == ["websocket"]
    assert "Upgrade" not in dict(
        gateway_events.forwarded_connect_headers(upgrade, source_ip="10.0.0.1", trace_id="t")
    )
    context = event["requestContext"]
    assert (context["routeKey"], context["eventType"], context["connectionId"]) == (
        "$connect",
        "CONNECT",
        "c0nnect1onId12=",
    )
    assert ac.method_arn("us-east-2", "123456789012", "abc123", "prod") == METHOD_ARN


def answer(effect: str = "Allow", resource: str = METHOD_ARN, **extra: Any) -> dict[str, Any]:
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
    }
    return {"principalId": "u1", "policyDocument": document} | extra


@pytest.mark.parametrize(
    ("invocation", "status", "carried"),
    [
        (ac.Invocation("response", answer()), None, (("principalId", "u1"),)),
        (
            ac.Invocation(
                "response", answer(context={"userId": "u1", "n": 3, "ok": True, "f": 1.5, "none": None})
            ),
            None,
            (("principalId", "u1"), ("userId", "u1"), ("n", "3"), ("ok", "true"), ("f", "1.5"), ("none", "")),
        ),
        (
            ac.Invocation("response", answer(resource="arn:aws:execute-api:us-east-2:123456789012:abc123/*")),
            None,
            None,
        ),
        (ac.Invocation("response", answer("Deny")), 403, ()),
        # powertools#5800: …/prod/*/* does not match …/prod/$connect.
        (
            ac.Invocation(
                "response", answer(resource="arn:aws:execute-api:us-east-2:123456789012:abc123/prod/*/*")
            ),
            403,
            (),
        ),
        (
            ac.Invocation(
                "response", answer(resource="arn:aws:execute-api:us-east-2:123456789012:other/prod/$connect")
            ),
            403,
            (),
        ),
        (ac.Invocation("function-error", error_message="Unauthorized"), 401, ()),
        (ac.Invocation("function-error", error_message="boom"), 500, ()),
        (ac.Invocation("timeout"), 500, ()),
        (ac.Invocation("invoke-error", error_message="Invalid permissions on Lambda function"), 500, ()),
        (ac.Invocation("response", "Allow"), 500, ()),
        (ac.Invocation("response", None), 500, ()),
        (ac.Invocation("response", {"policyDocument": answer()["policyDocument"]}), 500, ()),
        (ac.Invocation("response", answer(principalId="")), 500, ()),
        (ac.Invocation("response", answer(principalId=True)), 500, ()),
        (ac.Invocation("response", {"principalId": "u1"}), 500, ()),
        (
            ac.Invocation("response", answer(policyDocument={"Version": "2012-10-17", "Statement": []})),
            500,
            (),
        ),
        (ac.Invocation("response", answer(policyDocument={"Statement": [{"Effect": "Maybe"}]})), 500, ()),
        (ac.Invocation("response", answer(context={"roles": ["a"]})), 500, ()),
        (ac.Invocation("response", answer(context={"user": {"id": 1}})), 500, ()),
        (ac.Invocation("response", answer(context="x")), 500, ()),
        (ac.Invocation("response", answer(context={"big": "x" * ac.MAX_RESULT_BYTES})), 500, ()),
    ],
)
def test_the_verdict_on_each_answer(
    invocation: ac.Invocation, status: int | None, carried: tuple[tuple[str, str], ...] | None
) -> None:
    verdict = ac.verdict(invocation, METHOD_ARN)
    assert verdict.status == status, verdict.reason
    if carried is not None:
        assert verdict.authorizer == carried
    assert verdict.allowed is (status is None)
    if status is not None:
        assert verdict.body == {401: '{"message": "Unauthorized"}', 403: '{"message": "Forbidden"}'}.get(
            status, '{"message": "Internal server error"}'
        )


def test_the_connection_carries_the_authorizer_into_every_event() -> None:
    assert "authorizer" not in connect_event()["requestContext"]
    carried = replace(CONNECTION, authorizer=(("principalId", "u1"), ("userId", "u1")))
    expected = {"principalId": "u1", "userId": "u1"}
    connect = gateway_events.connect_event(
        carried, request_id="r", request_time_ms=1, headers=[], raw_query=None
    )
    message = gateway_events.message_event(
        carried, route_key="message", request_id="r", message_id="m", request_time_ms=1, body="{}"
    )
    disconnect = gateway_events.disconnect_event(
        carried, request_id="r", request_time_ms=1, status_code=1000, reason=""
    )
    for event in (connect, message, disconnect):
        assert event["requestContext"]["authorizer"] == expected


def lines_of(found: ac.Identity, verdict: ac.Verdict, **kw: Any) -> list[str]:
    return [
        f"{level} {text}"
        for level, text in ac.log_lines(
            authorizer("route.request.querystring.token"), "req", found, verdict, **kw
        )
    ]


@pytest.mark.parametrize(
    ("found", "verdict", "expected"),
    [
        (
            ac.Identity((), "route.request.querystring.token"),
            ac.MISSING_IDENTITY,
            ["INFO Starting authorizer: au1 for request: req", "ERROR Unauthorized request: req"],
        ),
        (
            ac.Identity(("alice@example.com",)),
            ac.Verdict(None),
            [
                "INFO Starting authorizer: au1 for request: req",
                "INFO Incoming identity: *************.com",
                "INFO Endpoint request URI: E",
                "INFO Authorizer result body before parsing: {}",
                "INFO Successfully completed authorizer execution",
            ],
        ),
        (
            ac.Identity(("tok",)),
            ac.Verdict(403, reason="denied"),
            [
                "INFO Starting authorizer: au1 for request: req",
                "INFO Incoming identity: ***",
                "INFO Endpoint request URI: E",
                "INFO Authorizer result body before parsing: {}",
                "INFO Successfully completed authorizer execution",
                "ERROR Authorizer denied the request: denied",
            ],
        ),
        (
            ac.Identity(("token",)),
            ac.Verdict(500, reason="Invalid JSON in response: no principalId"),
            [
                "INFO Starting authorizer: au1 for request: req",
                "INFO Incoming identity: *oken",
                "INFO Endpoint request URI: E",
                "INFO Authorizer result body before parsing: {}",
                "ERROR Execution failed due to configuration error: Invalid JSON in response: no principalId",
                "ERROR AuthorizerConfigurationException",
            ],
        ),
        (
            ac.Identity(("token",)),
            ac.Verdict(401, reason="the authorizer answered Unauthorized"),
            [
                "INFO Starting authorizer: au1 for request: req",
                "INFO Incoming identity: *oken",
                "INFO Endpoint request URI: E",
                "INFO Authorizer result body before parsing: {}",
                "ERROR Unauthorized request: req",
            ],
        ),
    ],
)
def test_the_execution_log_of_the_authorizer_step(
    found: ac.Identity, verdict: ac.Verdict, expected: list[str]
) -> None:
    assert lines_of(found, verdict, endpoint_uri="E", result_body="{}") == expected


def test_the_access_log_variables() -> None:
    allowed = ac.Verdict(None, (("principalId", "u1"), ("userId", "u1")), "u1")
    fields = ac.access_log_fields(allowed, latency_ms=12, integration_status=200)
    assert fields["authorizer.status"] == fields["authorize.status"] == 200
    assert fields["authorizer.principalId"] == "u1" and fields["authorizer.userId"] == "u1"
    assert fields["authorizer.error"] is None and fields["authorizer.latency"] == 12
    denied = ac.access_log_fields(ac.Verdict(403, reason="no"))
    assert denied["authorize.status"] == 403 and denied["authorize.error"] == "Forbidden"
    assert ac.access_log_fields(None) == {}


WS = authorizers.ApiView("WEBSOCKET", {"r1": "$connect", "r2": "message"}, {"au1": {"authorizerId": "au1"}})


@pytest.mark.parametrize(
    ("operation", "body", "name", "refused"),
    [
        (
            "CreateAuthorizer",
            {"authorizerType": "REQUEST", "identitySource": ["route.request.querystring.token"]},
            None,
            None,
        ),
        (
            "CreateAuthorizer",
            {
                "authorizerType": "REQUEST",
                "identitySource": ["route.request.header.Auth", "stageVariables.v", "context.connectionId"],
            },
            None,
            None,
        ),
        (
            "CreateAuthorizer",
            {"authorizerType": "JWT", "identitySource": ["route.request.header.Auth"]},
            None,
            (400, "AuthorizerType JWT"),
        ),
        (
            "CreateAuthorizer",
            {"authorizerType": "REQUEST", "identitySource": ["$request.header.Authorization"]},
            None,
            (400, "Invalid request identity source expression: $request.header.Authorization."),
        ),
        (
            "CreateAuthorizer",
            {"authorizerType": "REQUEST", "authorizerResultTtlInSeconds": 300},
            None,
            (400, authorizers.NO_TTL),
        ),
        ("UpdateAuthorizer", {"authorizerResultTtlInSeconds": 0}, "au1", (400, authorizers.NO_TTL)),
        ("UpdateAuthorizer", {"name": "x"}, "au1", None),
        ("UpdateRoute", {"authorizationType": "CUSTOM", "authorizerId": "au1"}, "r1", None),
        (
            "UpdateRoute",
            {"authorizationType": "CUSTOM", "authorizerId": "au1"},
            "r2",
            (400, authorizers.CONNECT_ONLY),
        ),
        ("UpdateRoute", {"authorizationType": "AWS_IAM"}, "r2", (400, authorizers.CONNECT_ONLY)),
        ("UpdateRoute", {"authorizationType": "NONE"}, "r2", None),
        ("UpdateRoute", {"target": "integrations/i"}, "r2", None),
        (
            "UpdateRoute",
            {"authorizationType": "CUSTOM", "authorizerId": "gone"},
            "r1",
            (404, "Invalid authorizer identifier specified gone"),
        ),
        ("UpdateRoute", {"authorizationType": "CUSTOM"}, "r1", (400, "AuthorizerId is required")),
        (
            "CreateRoute",
            {"routeKey": "$connect", "authorizationType": "CUSTOM", "authorizerId": "au1"},
            None,
            None,
        ),
        (
            "CreateRoute",
            {"routeKey": "join", "authorizationType": "CUSTOM", "authorizerId": "au1"},
            None,
            (400, authorizers.CONNECT_ONLY),
        ),
    ],
)
def test_what_the_aws_layer_refuses(
    operation: str, body: dict[str, Any], name: str | None, refused: tuple[int, str] | None
) -> None:
    found = authorizers.refusal(operation, body, WS, name)
    if refused is None:
        assert found is None
        return
    assert found is not None and found.status == refused[0] and found.message.startswith(refused[1]), found


def test_http_apis_are_left_to_moto() -> None:
    http = authorizers.ApiView("HTTP", {"r2": "GET /x"})
    assert (
        authorizers.refusal("UpdateRoute", {"authorizationType": "CUSTOM", "authorizerId": "x"}, http, "r2")
        is None
    )


def test_an_authorizer_role_is_read() -> None:
    answer = {
        "AuthorizerId": "a",
        "AuthorizerUri": URI,
        "IdentitySource": "route.request.header.A, context.x",
    }
    assert ac.authorizer_config(answer).credentials_arn is None
    assert ac.authorizer_config(answer).identity_sources == ("route.request.header.A", "context.x")
    role = "arn:aws:iam::123456789012:role/invoker"
    assert ac.authorizer_config(answer | {"AuthorizerCredentialsArn": role}).credentials_arn == role
    assert ac.authorizer_config(answer).function_arn == "arn:aws:lambda:us-east-2:123456789012:function:auth"
