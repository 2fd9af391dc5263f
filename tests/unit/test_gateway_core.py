"""The lab gateway's decisions, driven with plain calls (no sockets, no clock)."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import HeadersDict
from botocore.parsers import create_parser
from hypothesis import given, settings
from hypothesis import strategies as st

from kit.errors import ConfigurationError
from kit.lab import gateway_config, gateway_events
from kit.lab import gateway_core as gw

API_ID = "fjnq7njcv2"
DOMAIN = f"{API_ID}.execute-api.us-east-1.amazonaws.com"
CONNECTED_AT = 1731324924553
LAMBDA_URI = (
    "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
    "arn:aws:lambda:us-east-1:123456789012:function:chat-connect/invocations"
)


def make_connection(
    user_agent: str | None = None, connection_id: str = "BFHPhfCWIAMCKlQ="
) -> gateway_events.Connection:
    return gateway_events.Connection(
        connection_id=connection_id,
        connected_at_ms=CONNECTED_AT,
        source_ip="166.90.225.1",
        user_agent=user_agent,
        api_id=API_ID,
        domain_name=DOMAIN,
        stage="prod",
    )


def lambda_integration(integration_id: str = "int1") -> gateway_config.IntegrationConfig:
    return gateway_config.IntegrationConfig(integration_id, "AWS_PROXY", LAMBDA_URI)


def make_api(
    routes: dict[str, str | None], *, expression: str = "$request.body.action", two_way: tuple[str, ...] = ()
) -> gateway_config.ApiConfig:
    """An API whose route ``key`` targets integration ``routes[key]`` (None: no target)."""
    route_configs = {
        key: gateway_config.RouteConfig(key, target, "$default", frozenset({"$default"}))
        if key in two_way
        else gateway_config.RouteConfig(key, target)
        for key, target in routes.items()
    }
    integrations = {target: lambda_integration(target) for target in routes.values() if target}
    return gateway_config.ApiConfig(
        API_ID, expression, route_configs, gateway_config.StageConfig("prod"), integrations
    )


# ---------------------------------------------------------------------------------------------
# Ids and times
# ---------------------------------------------------------------------------------------------


def test_ids_are_deterministic_for_a_seeded_rng_and_have_aws_shape() -> None:
    first = [gateway_events.new_connection_id(random.Random(7)) for _ in range(2)]
    assert first[0] == first[1]
    rng = random.Random(1)
    ids = [gateway_events.new_connection_id(rng) for _ in range(500)] + [
        gateway_events.new_request_id(rng) for _ in range(500)
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{15}=", i) for i in ids)
    assert all(gateway_events.is_valid_connection_id(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_request_id_can_share_the_connection_ids_prefix() -> None:
    rng = random.Random(3)
    connection_id = gateway_events.new_connection_id(rng)
    request_id = gateway_events.new_request_id(rng, like=connection_id)
    assert request_id[:5] == connection_id[:5]
    assert request_id != connection_id
    assert gateway_events.is_valid_connection_id(request_id)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("BFHPhfCWIAMCKlQ=", True),  # real captures
        ("R0oXAdfD0kwCH6w=", True),
        ("BFaT_fALIAMCKug=", True),
        ("abc-_0123456789=", True),
        ("BFHPhfCWIAMCKlQ", False),  # no "="
        ("BFHPhfCWIAMCKl=", False),  # 14 + "="
        ("BFHPhfCWIAMCKlQQ=", False),  # 16 + "="
        ("BFHPhfCWIAMC+lQ=", False),
        ("BFHPhfCWIAMC/lQ=", False),
        ("cjy8i76bx002884le6n17d49b", False),  # serverless-offline (old)
        ("8b6e1c8e-2f5a-4a53-9d0e-3b1b1c7c2a10", False),  # serverless-offline (UUID)
        ("BFHPhfCWIAMCKlQ%3D", False),  # still URL-encoded
        ("", False),
        (" BFHPhfCWIAMCKlQ=", False),
    ],
)
def test_is_valid_connection_id(value: str, valid: bool) -> None:
    assert gateway_events.is_valid_connection_id(value) is valid


@pytest.mark.parametrize(
    ("epoch_ms", "clf", "iso"),
    [
        (1731324924561, "11/Nov/2024:11:35:24 +0000", "2024-11-11T11:35:24.561Z"),  # F1
        (1705751708326, "20/Jan/2024:11:55:08 +0000", "2024-01-20T11:55:08.326Z"),  # F5
        (0, "01/Jan/1970:00:00:00 +0000", "1970-01-01T00:00:00.000Z"),
        (951782400000, "29/Feb/2000:00:00:00 +0000", "2000-02-29T00:00:00.000Z"),
    ],
)
def test_time_formats(epoch_ms: int, clf: str, iso: str) -> None:
    assert gateway_events.clf_time(epoch_ms) == clf
    assert gateway_events.iso8601(epoch_ms) == iso


def test_trace_id_embeds_the_epoch_seconds_in_hex() -> None:
    trace_id = gateway_events.new_trace_id(random.Random(0), 1731324924553)
    assert re.fullmatch(r"Root=1-6731ebfc-[0-9a-f]{24}", trace_id)


# ---------------------------------------------------------------------------------------------
# Configuration snapshot
# ---------------------------------------------------------------------------------------------

GET_API = {
    "ApiId": API_ID,
    "Name": "chat",
    "ProtocolType": "WEBSOCKET",
    "RouteSelectionExpression": "$request.body.action",
}
GET_ROUTES = [
    {
        "RouteId": "r1",
        "RouteKey": "$connect",
        "Target": "integrations/i-connect",
        "AuthorizationType": "NONE",
    },
    {"RouteId": "r2", "RouteKey": "$disconnect", "Target": "integrations/i-disconnect"},
    {
        "RouteId": "r3",
        "RouteKey": "sendmessage",
        "Target": "integrations/i-send",
        "RouteResponseSelectionExpression": "$default",
    },
    {"RouteId": "r4", "RouteKey": "orphan"},
]
GET_INTEGRATIONS = [
    {
        "IntegrationId": "i-connect",
        "IntegrationType": "AWS_PROXY",
        "IntegrationUri": LAMBDA_URI,
        "TimeoutInMillis": 29000,
    },
    {"IntegrationId": "i-disconnect", "IntegrationType": "AWS_PROXY", "IntegrationUri": LAMBDA_URI},
    {
        "IntegrationId": "i-send",
        "IntegrationType": "HTTP_PROXY",
        "IntegrationUri": "http://127.0.0.1:3000/api/websocket",
        "IntegrationMethod": "POST",
        "RequestParameters": {"integration.request.header.ConnectionId": "context.connectionId"},
        "TimeoutInMillis": 5000,
    },
]
GET_STAGE = {
    "StageName": "prod",
    "AccessLogSettings": {
        "DestinationArn": "arn:aws:logs:us-east-1:123456789012:log-group:ws-access",
        "Format": "$context.requestId",
    },
    "DefaultRouteSettings": {
        "LoggingLevel": "INFO",
        "DataTraceEnabled": True,
        "DetailedMetricsEnabled": False,
    },
}


@pytest.mark.parametrize(
    ("expression", "keys", "two_way"),
    [
        ("$default", ("$default",), True),
        (None, ("$default",), False),  # a route response, but no selection expression [inferred]
        ("$default", (), False),  # the expression, but no route response [inferred]
        ("$request.body.x", ("$default",), False),
        ("$default", ("other",), False),
    ],
)
def test_a_route_is_two_way_with_the_expression_and_a_default_route_response(
    expression: str | None, keys: tuple[str, ...], two_way: bool
) -> None:
    route = {"RouteId": "r1", "RouteKey": "chat"}
    if expression is not None:
        route["RouteResponseSelectionExpression"] = expression
    responses = [{"RouteId": "r1", "RouteResponseKey": key} for key in keys]
    responses.append({"RouteId": "r9", "RouteResponseKey": "$default"})  # another route's
    api = gateway_config.api_config_from_answers(GET_API, [route], [], GET_STAGE, route_responses=responses)
    assert api.routes["chat"].two_way is two_way


def test_api_config_from_answers_reads_boto3_shapes() -> None:
    responses = [{"RouteId": "r3", "RouteResponseKey": "$default", "RouteResponseId": "rr1"}]
    api = gateway_config.api_config_from_answers(
        GET_API, GET_ROUTES, GET_INTEGRATIONS, GET_STAGE, route_responses=responses
    )
    assert api.api_id == API_ID
    assert api.route_selection_expression == "$request.body.action"
    assert set(api.routes) == {"$connect", "$disconnect", "sendmessage", "orphan"}
    assert api.routes["$connect"].target_integration_id == "i-connect"
    assert api.routes["orphan"].target_integration_id is None
    assert api.routes["sendmessage"].two_way and not api.routes["$connect"].two_way
    send = api.integrations["i-send"]
    assert (send.integration_type, send.uri, send.method, send.timeout_ms) == (
        "HTTP_PROXY",
        "http://127.0.0.1:3000/api/websocket",
        "POST",
        5000,
    )
    assert send.request_parameters == {"integration.request.header.ConnectionId": "context.connectionId"}
    assert api.integrations["i-disconnect"].timeout_ms == 29000
    assert api.stage == gateway_config.StageConfig(
        "prod",
        "arn:aws:logs:us-east-1:123456789012:log-group:ws-access",
        "$context.requestId",
        "INFO",
        True,
        {"DefaultRouteSettings": GET_STAGE["DefaultRouteSettings"]},
    )


def test_api_config_defaults_when_the_stage_has_no_log_settings() -> None:
    api = gateway_config.api_config_from_answers(GET_API, [], [], {"StageName": "dev"})
    assert api.stage == gateway_config.StageConfig("dev", None, None, "OFF", False)
    assert api.routes == {}


@pytest.mark.parametrize(
    ("api", "routes", "fragment"),
    [
        ({**GET_API, "ProtocolType": "HTTP"}, [], "ProtocolType HTTP"),
        ({"ApiId": API_ID, "ProtocolType": "WEBSOCKET"}, [], "no RouteSelectionExpression"),
        (GET_API, [{"RouteKey": "x", "Target": "lambda/abc"}], "integrations/<IntegrationId>"),
        (GET_API, [{"RouteKey": "x", "Target": "integrations/missing"}], "targets integration missing"),
    ],
)
def test_api_config_rejects_what_the_lab_cannot_serve(
    api: dict[str, Any], routes: list[dict[str, Any]], fragment: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(fragment)):
        gateway_config.api_config_from_answers(api, routes, GET_INTEGRATIONS, GET_STAGE)


# ---------------------------------------------------------------------------------------------
# Route selection
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "body", "value"),
    [
        ("$request.body.action", '{"action": "sendmessage"}', "sendmessage"),
        ("$request.body.action", '{"message": "hi"}', ""),
        ("$request.body.action", "not json", ""),
        ("$request.body.action", "", ""),
        ("$request.body.action", '["action"]', ""),
        ("$request.body.action", "42", ""),
        ("$request.body.action", '"action"', ""),
        ("$request.body.action", "null", ""),
        ("$request.body.action", '{"action": null}', ""),
        ("$request.body.action", '{"action": 1}', "1"),
        ("$request.body.action", '{"action": true}', "true"),
        ("$request.body.action", '{"action": ["a", "b"]}', "[a, b]"),
        ("$request.body.meta.type", '{"meta": {"type": "typing"}}', "typing"),
        ("$request.body.meta.type", '{"meta": "typing"}', ""),
        ("$request.body.items[1].kind", '{"items": [{"kind": "a"}, {"kind": "b"}]}', "b"),
        ("$request.body.items[5].kind", '{"items": []}', ""),
        ("${request.body.action}", '{"action": "join"}', "join"),
        (
            "${request.body.service}/${request.body.action}",
            '{"service": "chat", "action": "send"}',
            "chat/send",
        ),
        ("${request.body.service}/${request.body.action}", "oops", "/"),
        ("${request.header.x}", '{"action": "x"}', ""),
        ("static", '{"action": "x"}', "static"),
        ("\\$default", "{}", "$default"),
        ("  $request.body.action  ", '{"action": "padded"}', "padded"),
    ],
)
def test_evaluate_selection_expression(expression: str, body: str, value: str) -> None:
    assert gateway_config.evaluate_selection_expression(expression, body) == value


ROUTES_WITH_DEFAULT: dict[str, str | None] = {
    "$connect": "c",
    "$disconnect": "d",
    "$default": "def",
    "sendmessage": "s",
    "typing": "t",
    "orphan": None,
}
ROUTES_WITHOUT_DEFAULT: dict[str, str | None] = {"$connect": "c", "$disconnect": "d", "sendmessage": "s"}


@pytest.mark.parametrize(
    ("routes", "expression", "body", "kind", "route_key", "selection_value"),
    [
        (
            ROUTES_WITH_DEFAULT,
            "$request.body.action",
            '{"action": "sendmessage"}',
            "integration",
            "sendmessage",
            "sendmessage",
        ),
        (
            ROUTES_WITH_DEFAULT,
            "$request.body.meta.type",
            '{"meta": {"type": "typing"}}',
            "integration",
            "typing",
            "typing",
        ),
        (
            ROUTES_WITH_DEFAULT,
            "$request.body.action",
            '{"action": "unknown"}',
            "integration",
            "$default",
            "unknown",
        ),
        (ROUTES_WITH_DEFAULT, "$request.body.action", '{"a": 1}', "integration", "$default", ""),
        (ROUTES_WITH_DEFAULT, "$request.body.action", "hello there", "integration", "$default", ""),
        (ROUTES_WITH_DEFAULT, "$request.body.action", "[1, 2]", "integration", "$default", ""),
        (ROUTES_WITH_DEFAULT, "$request.body.action", "3.5", "integration", "$default", ""),
        (
            ROUTES_WITH_DEFAULT,
            "$request.body.action",
            '{"action": "SendMessage"}',
            "integration",
            "$default",
            "SendMessage",
        ),
        (
            ROUTES_WITH_DEFAULT,
            "$request.body.action",
            '{"action": "$connect"}',
            "integration",
            "$default",
            "$connect",
        ),
        (
            ROUTES_WITH_DEFAULT,
            "$request.body.action",
            '{"action": "$default"}',
            "integration",
            "$default",
            "$default",
        ),
        (
            ROUTES_WITH_DEFAULT,
            "$request.body.action",
            '{"action": "orphan"}',
            "no-integration",
            "orphan",
            "orphan",
        ),
        (
            ROUTES_WITHOUT_DEFAULT,
            "$request.body.action",
            '{"action": "sendmessage"}',
            "integration",
            "sendmessage",
            "sendmessage",
        ),
        (ROUTES_WITHOUT_DEFAULT, "$request.body.action", '{"action": "chat"}', "no-route", None, "chat"),
        (ROUTES_WITHOUT_DEFAULT, "$request.body.action", "not json", "no-route", None, ""),
        (
            ROUTES_WITHOUT_DEFAULT,
            "$request.body.action",
            '{"action": "$disconnect"}',
            "no-route",
            None,
            "$disconnect",
        ),
    ],
)
def test_select_route(
    routes: dict[str, str | None],
    expression: str,
    body: str,
    kind: str,
    route_key: str | None,
    selection_value: str,
) -> None:
    api = make_api(routes, expression=expression)
    decision = gateway_config.select_route(api, body)
    assert (decision.kind, decision.route_key, decision.selection_value) == (kind, route_key, selection_value)
    if kind == "integration":
        assert decision.integration is not None and decision.route is not None
        assert decision.integration.integration_id == routes[decision.route.route_key]
    else:
        assert decision.integration is None


@pytest.mark.parametrize(
    ("routes", "route_key", "kind"),
    [
        ({"$connect": "c"}, "$connect", "integration"),
        ({"$connect": None}, "$connect", "no-integration"),
        ({"$default": "x"}, "$connect", "no-route"),  # $default never stands in for $connect
        ({"$disconnect": "d"}, "$disconnect", "integration"),
    ],
)
def test_route_for_key(routes: dict[str, str | None], route_key: str, kind: str) -> None:
    assert gateway_config.route_for_key(make_api(routes), route_key).kind == kind


def test_select_route_survives_pathologically_nested_json() -> None:
    api = make_api(ROUTES_WITH_DEFAULT)
    assert gateway_config.select_route(api, "[" * 100_000 + "]" * 100_000).route_key == "$default"
    deep_object = '{"action":' * 5_000 + '"x"' + "}" * 5_000
    assert gateway_config.select_route(api, deep_object).kind == "integration"
    assert gateway_config.select_route(api, '{"action": ' + "9" * 5000 + "}").route_key == "$default"


@settings(max_examples=300, deadline=None)
@given(
    body=st.one_of(
        st.text(),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
            lambda children: (
                st.lists(children, max_size=4)
                | st.dictionaries(st.sampled_from(["action", "a", "b"]), children, max_size=4)
            ),
        ).map(json.dumps),
    ),
    expression=st.sampled_from(
        [
            "$request.body.action",
            "$request.body.a.b",
            "$request.body.a[0]",
            "${request.body.a}/${request.body.b}",
            "$request.body.",
            "${",
            "}{$",
        ]
    ),
    with_default=st.booleans(),
)
def test_select_route_never_raises(body: str, expression: str, with_default: bool) -> None:
    api = make_api(ROUTES_WITH_DEFAULT if with_default else ROUTES_WITHOUT_DEFAULT, expression=expression)
    decision = gateway_config.select_route(api, body)
    assert decision.kind in ("integration", "no-integration", "no-route")
    assert (decision.kind == "no-route") == (decision.route_key is None)
    if decision.route_key is not None:
        assert decision.route_key in api.routes
        assert decision.route_key not in ("$connect", "$disconnect")


# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------

# Real captures (reference §1.1): F1 CONNECT (powertools), F2 MESSAGE (powertools), F5 DISCONNECT (aws-lambda-go).
CAPTURE_CONNECT: dict[str, Any] = {
    "headers": {
        "Host": "fjnq7njcv2.execute-api.us-east-1.amazonaws.com",
        "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
        "Sec-WebSocket-Key": "+W5xw47OHh3OTFsWKjGu9Q==",
        "Sec-WebSocket-Version": "13",
        "X-Amzn-Trace-Id": "Root=1-6731ebfc-08e1e656421db73c5d2eef31",
        "X-Forwarded-For": "166.90.225.1",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    },
    "multiValueHeaders": {
        "Host": ["fjnq7njcv2.execute-api.us-east-1.amazonaws.com"],
        "Sec-WebSocket-Extensions": ["permessage-deflate; client_max_window_bits"],
        "Sec-WebSocket-Key": ["+W5xw47OHh3OTFsWKjGu9Q=="],
        "Sec-WebSocket-Version": ["13"],
        "X-Amzn-Trace-Id": ["Root=1-6731ebfc-08e1e656421db73c5d2eef31"],
        "X-Forwarded-For": ["166.90.225.1"],
        "X-Forwarded-Port": ["443"],
        "X-Forwarded-Proto": ["https"],
    },
    "requestContext": {
        "routeKey": "$connect",
        "eventType": "CONNECT",
        "extendedRequestId": "BFHPhFe3IAMF95g=",
        "requestTime": "11/Nov/2024:11:35:24 +0000",
        "messageDirection": "IN",
        "stage": "prod",
        "connectedAt": 1731324924553,
        "requestTimeEpoch": 1731324924561,
        "identity": {"sourceIp": "166.90.225.1"},
        "requestId": "BFHPhFe3IAMF95g=",
        "domainName": "fjnq7njcv2.execute-api.us-east-1.amazonaws.com",
        "connectionId": "BFHPhfCWIAMCKlQ=",
        "apiId": "fjnq7njcv2",
    },
    "isBase64Encoded": False,
}
CAPTURE_MESSAGE_CONTEXT_KEYS = {
    "routeKey", "messageId", "eventType", "extendedRequestId", "requestTime", "messageDirection", "stage",
    "connectedAt", "requestTimeEpoch", "identity", "requestId", "domainName", "connectionId", "apiId",
}  # fmt: skip
CAPTURE_DISCONNECT: dict[str, Any] = {
    "headers": {
        "Host": "dl7ptocha9.execute-api.ap-northeast-1.amazonaws.com",
        "x-api-key": "",
        "X-Forwarded-For": "",
        "x-restapi": "",
    },
    "multiValueHeaders": {
        "Host": ["dl7ptocha9.execute-api.ap-northeast-1.amazonaws.com"],
        "x-api-key": [""],
        "X-Forwarded-For": [""],
        "x-restapi": [""],
    },
    "requestContext": {
        "routeKey": "$disconnect",
        "disconnectStatusCode": 1001,
        "eventType": "DISCONNECT",
        "extendedRequestId": "R1koeHsUtjMFbRw=",
        "requestTime": "20/Jan/2024:11:55:08 +0000",
        "messageDirection": "IN",
        "disconnectReason": "",
        "stage": "prod",
        "connectedAt": 1705751697419,
        "requestTimeEpoch": 1705751708326,
        "identity": {
            "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36",
            "sourceIp": "49.105.91.154",
        },
        "requestId": "R1koeHsUtjMFbRw=",
        "domainName": "dl7ptocha9.execute-api.ap-northeast-1.amazonaws.com",
        "connectionId": "R1kmxc2VNjMCFIA=",
        "apiId": "dl7ptocha9",
    },
    "isBase64Encoded": False,
}

# Reference §1.3: top-level keys per event type.
CONNECT_KEYS = {"headers", "multiValueHeaders", "requestContext", "isBase64Encoded"}
CONNECT_KEYS_WITH_QUERY = CONNECT_KEYS | {"queryStringParameters", "multiValueQueryStringParameters"}
MESSAGE_KEYS = {"requestContext", "body", "isBase64Encoded"}
DISCONNECT_KEYS = {"headers", "multiValueHeaders", "requestContext", "isBase64Encoded"}
COMMON_CONTEXT_KEYS = CAPTURE_MESSAGE_CONTEXT_KEYS - {"messageId"}


def test_connect_event_reproduces_the_real_capture() -> None:
    client_headers = [
        ("Host", "fjnq7njcv2.execute-api.us-east-1.amazonaws.com"),
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
        ("Sec-WebSocket-Key", "+W5xw47OHh3OTFsWKjGu9Q=="),
        ("Sec-WebSocket-Version", "13"),
    ]
    headers = gateway_events.forwarded_connect_headers(
        client_headers, source_ip="166.90.225.1", trace_id="Root=1-6731ebfc-08e1e656421db73c5d2eef31"
    )
    event = gateway_events.connect_event(
        make_connection(),
        request_id="BFHPhFe3IAMF95g=",
        request_time_ms=1731324924561,
        headers=headers,
        raw_query=None,
    )
    assert event == CAPTURE_CONNECT
    assert list(event["requestContext"]) == list(CAPTURE_CONNECT["requestContext"])


def test_disconnect_event_reproduces_the_real_capture() -> None:
    context = CAPTURE_DISCONNECT["requestContext"]
    connection = gateway_events.Connection(
        connection_id=context["connectionId"],
        connected_at_ms=context["connectedAt"],
        source_ip=context["identity"]["sourceIp"],
        user_agent=context["identity"]["userAgent"],
        api_id=context["apiId"],
        domain_name=context["domainName"],
        stage="prod",
    )
    event = gateway_events.disconnect_event(
        connection, request_id="R1koeHsUtjMFbRw=", request_time_ms=1705751708326, status_code=1001, reason=""
    )
    assert event == CAPTURE_DISCONNECT
    assert list(event["requestContext"]) == list(context)


@pytest.mark.parametrize(
    ("raw_query", "expected_keys"),
    [
        (None, CONNECT_KEYS),
        ("", CONNECT_KEYS),
        ("&", CONNECT_KEYS),
        ("workspaceId=w1", CONNECT_KEYS_WITH_QUERY),
        ("flag", CONNECT_KEYS_WITH_QUERY),
    ],
)
def test_connect_event_has_query_keys_only_with_a_query_string(
    raw_query: str | None, expected_keys: set[str]
) -> None:
    event = gateway_events.connect_event(
        make_connection(), request_id="r", request_time_ms=CONNECTED_AT, headers=[], raw_query=raw_query
    )
    assert set(event) == expected_keys
    assert set(event["requestContext"]) == COMMON_CONTEXT_KEYS
    assert "body" not in event and "messageId" not in event["requestContext"]


def test_query_string_single_and_multi_values() -> None:
    event = gateway_events.connect_event(
        make_connection(),
        request_id="r",
        request_time_ms=CONNECTED_AT,
        headers=[],
        raw_query="workspaceId=w%201&tag=a&tag=b&name=a+b&empty=&flag",
    )
    assert event["queryStringParameters"] == {
        "workspaceId": "w 1",
        "tag": "b",
        "name": "a+b",
        "empty": "",
        "flag": "",
    }
    assert event["multiValueQueryStringParameters"] == {
        "workspaceId": ["w 1"],
        "tag": ["a", "b"],
        "name": ["a+b"],
        "empty": [""],
        "flag": [""],
    }


def test_connect_headers_keep_case_and_duplicates() -> None:
    headers = [
        ("Host", "h"),
        ("Sec-WebSocket-Protocol", "chat"),
        ("sec-websocket-protocol", "v2"),
        ("X-Dup", "1"),
        ("X-Dup", "2"),
    ]
    event = gateway_events.connect_event(
        make_connection(), request_id="r", request_time_ms=CONNECTED_AT, headers=headers, raw_query=None
    )
    assert event["headers"] == {
        "Host": "h",
        "Sec-WebSocket-Protocol": "chat",
        "sec-websocket-protocol": "v2",
        "X-Dup": "2",
    }
    assert event["multiValueHeaders"]["X-Dup"] == ["1", "2"]


@pytest.mark.parametrize(
    ("user_agent", "identity"),
    [
        (None, {"sourceIp": "166.90.225.1"}),
        ("wscat/5", {"userAgent": "wscat/5", "sourceIp": "166.90.225.1"}),
        ("", {"userAgent": "", "sourceIp": "166.90.225.1"}),
    ],
)
def test_identity_has_user_agent_only_when_sent(user_agent: str | None, identity: dict[str, str]) -> None:
    connection = make_connection(user_agent)
    events = [
        gateway_events.connect_event(
            connection, request_id="r", request_time_ms=CONNECTED_AT, headers=[], raw_query=None
        ),
        gateway_events.message_event(
            connection,
            route_key="$default",
            request_id="r",
            message_id="m",
            request_time_ms=CONNECTED_AT,
            body="x",
        ),
        gateway_events.disconnect_event(
            connection, request_id="r", request_time_ms=CONNECTED_AT, status_code=1000, reason=""
        ),
    ]
    for event in events:
        assert event["requestContext"]["identity"] == identity


def test_message_event_shape() -> None:
    connection = make_connection()
    event = gateway_events.message_event(
        connection, route_key="sendmessage", request_id="BFaVtH2HoAMFZEQ=", message_id="BFaVtfGSIAMCKug=",
        request_time_ms=CONNECTED_AT + 11_001, body='{"action": "sendmessage", "message": "hi"}',
    )  # fmt: skip
    assert set(event) == MESSAGE_KEYS
    context = event["requestContext"]
    assert set(context) == CAPTURE_MESSAGE_CONTEXT_KEYS
    assert context["messageId"] == "BFaVtfGSIAMCKug="
    assert context["requestId"] == context["extendedRequestId"] == "BFaVtH2HoAMFZEQ="
    assert (context["eventType"], context["routeKey"], context["messageDirection"]) == (
        "MESSAGE",
        "sendmessage",
        "IN",
    )
    assert context["connectedAt"] == CONNECTED_AT
    assert context["requestTimeEpoch"] == CONNECTED_AT + 11_001
    assert event["body"] == '{"action": "sendmessage", "message": "hi"}'
    assert event["isBase64Encoded"] is False


def test_disconnect_event_shape() -> None:
    event = gateway_events.disconnect_event(make_connection(), request_id="r", request_time_ms=CONNECTED_AT + 5, status_code=1005, reason="Client-side close frame status not set")  # fmt: skip
    assert set(event) == DISCONNECT_KEYS
    assert event["headers"] == {"Host": DOMAIN, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
    assert event["multiValueHeaders"] == {
        "Host": [DOMAIN],
        "x-api-key": [""],
        "X-Forwarded-For": [""],
        "x-restapi": [""],
    }
    context = event["requestContext"]
    assert set(context) == COMMON_CONTEXT_KEYS | {"disconnectStatusCode", "disconnectReason"}
    assert context["disconnectStatusCode"] == 1005 and isinstance(context["disconnectStatusCode"], int)
    assert context["disconnectReason"] == "Client-side close frame status not set"


def test_connected_at_is_constant_across_a_connections_events() -> None:
    connection = make_connection()
    events = [
        gateway_events.connect_event(
            connection, request_id="a", request_time_ms=CONNECTED_AT + 3, headers=[], raw_query=None
        ),
        gateway_events.message_event(
            connection,
            route_key="$default",
            request_id="b",
            message_id="m",
            request_time_ms=CONNECTED_AT + 900,
            body="",
        ),
        gateway_events.disconnect_event(
            connection,
            request_id="c",
            request_time_ms=CONNECTED_AT + 60_000,
            status_code=1001,
            reason="Going away",
        ),
    ]
    assert {e["requestContext"]["connectedAt"] for e in events} == {CONNECTED_AT}
    assert [e["requestContext"]["eventType"] for e in events] == ["CONNECT", "MESSAGE", "DISCONNECT"]
    assert all(e["requestContext"]["requestId"] == e["requestContext"]["extendedRequestId"] for e in events)


@pytest.mark.parametrize(
    ("client_headers", "expected_for"),
    [
        ([("Host", "h")], "1.2.3.4"),
        ([("Host", "h"), ("X-Forwarded-For", "10.0.0.1")], "10.0.0.1, 1.2.3.4"),
    ],
)
def test_forwarded_connect_headers(client_headers: list[tuple[str, str]], expected_for: str) -> None:
    headers = gateway_events.forwarded_connect_headers(
        [*client_headers, ("connection", "upgrade"), ("UPGRADE", "websocket"), ("X-Forwarded-Port", "80")],
        source_ip="1.2.3.4",
        trace_id="Root=1-x",
        port="8443",
    )
    names = [name for name, _ in headers]
    assert names == ["Host", "X-Amzn-Trace-Id", "X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto"]
    assert gateway_events.header_value(headers, "x-forwarded-for") == expected_for
    assert gateway_events.header_value(headers, "X-Forwarded-Port") == "8443"


# ---------------------------------------------------------------------------------------------
# Integrations
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "status", "body"),
    [
        ({"statusCode": 200}, 200, None),
        ({"statusCode": 200, "body": "Connected."}, 200, "Connected."),
        ({"statusCode": "403"}, 403, None),
        ({"statusCode": 500.0, "body": "Failed to connect"}, 500, "Failed to connect"),
        (None, None, None),
        ("ok", None, None),
        ([{"statusCode": 200}], None, None),
        ({}, None, None),
        ({"body": "no status"}, None, None),
        ({"statusCode": "abc"}, None, None),
        ({"statusCode": True}, None, None),
        ({"statusCode": 101}, None, None),
        ({"statusCode": 600}, None, None),
        ({"statusCode": float("nan")}, None, None),
        ({"statusCode": 200, "body": {"not": "a string"}}, None, None),
    ],
)
def test_lambda_proxy_result(payload: object, status: int | None, body: str | None) -> None:
    result = gateway_events.lambda_proxy_result(payload, integration_request_id="lambda-1", latency_ms=12)
    assert result.kind == "response"
    assert (result.status, result.body) == (status, body)
    assert result.error_message == (gateway_events.MALFORMED_PROXY_RESPONSE if status is None else None)
    assert (result.integration_request_id, result.latency_ms) == ("lambda-1", 12)


def test_lambda_proxy_result_merges_headers() -> None:
    result = gateway_events.lambda_proxy_result(
        {
            "statusCode": 200,
            "headers": {"Sec-WebSocket-Protocol": "chat"},
            "multiValueHeaders": {"X-Multi": ["a", "b"]},
        }
    )
    assert result.headers == {"X-Multi": "a, b", "Sec-WebSocket-Protocol": "chat"}


@pytest.mark.parametrize(
    ("uri", "function_arn", "endpoint"),
    [
        (
            LAMBDA_URI,
            "arn:aws:lambda:us-east-1:123456789012:function:chat-connect",
            "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:chat-connect/invocations",
        ),
        (
            "arn:aws:lambda:eu-west-3:123456789012:function:f:live",
            "arn:aws:lambda:eu-west-3:123456789012:function:f:live",
            "https://lambda.eu-west-3.amazonaws.com/2015-03-31/functions/arn:aws:lambda:eu-west-3:123456789012:function:f:live/invocations",
        ),
        ("http://127.0.0.1:3000/api/websocket", None, "http://127.0.0.1:3000/api/websocket"),
    ],
)
def test_lambda_uris(uri: str, function_arn: str | None, endpoint: str) -> None:
    assert gateway_events.lambda_function_arn(uri) == function_arn
    assert (
        gateway_events.integration_endpoint_uri(gateway_config.IntegrationConfig("i", "AWS_PROXY", uri))
        == endpoint
    )


def http_integration(
    parameters: dict[str, str], uri: str = "http://127.0.0.1:3000/api/websocket"
) -> gateway_config.IntegrationConfig:
    return gateway_config.IntegrationConfig("i", "HTTP_PROXY", uri, parameters, 29_000, "post")


def a_connect_event(raw_query: str | None = "workspaceId=w1") -> dict[str, Any]:
    return gateway_events.connect_event(
        make_connection("wscat/5"),
        request_id="BFHPhFe3IAMF95g=",
        request_time_ms=CONNECTED_AT,
        headers=[("Host", DOMAIN), ("Authorization", "Bearer t"), ("User-Agent", "wscat/5")],
        raw_query=raw_query,
    )


def a_message_event(body: str = '{"action": "sendmessage", "workspace": {"id": "w9"}}') -> dict[str, Any]:
    return gateway_events.message_event(
        make_connection(),
        route_key="sendmessage",
        request_id="req",
        message_id="msg",
        request_time_ms=CONNECTED_AT,
        body=body,
    )


def test_http_integration_without_mapping_never_sees_the_connection_id() -> None:
    for event in (a_connect_event(), a_message_event(), gateway_events.disconnect_event(make_connection(), request_id="r", request_time_ms=1, status_code=1000, reason="")):  # fmt: skip
        request = gateway_events.http_integration_request(http_integration({}), event)
        assert request.method == "POST"
        assert request.url == "http://127.0.0.1:3000/api/websocket"
        assert request.headers == ()
        assert "BFHPhfCWIAMCKlQ=" not in request.url + request.body


@pytest.mark.parametrize(
    ("parameters", "event_name", "headers", "url_suffix"),
    [
        (
            {"integration.request.header.ConnectionId": "context.connectionId"},
            "connect",
            (("ConnectionId", "BFHPhfCWIAMCKlQ="),),
            "",
        ),
        (
            {"integration.request.header.X-Event": "context.eventType"},
            "message",
            (("X-Event", "MESSAGE"),),
            "",
        ),
        (
            {"integration.request.header.X-Ip": "context.identity.sourceIp"},
            "message",
            (("X-Ip", "166.90.225.1"),),
            "",
        ),
        ({"integration.request.header.X-Static": "'lab'"}, "message", (("X-Static", "lab"),), ""),
        (
            {"integration.request.header.X-Workspace": "route.request.body.workspace.id"},
            "message",
            (("X-Workspace", "w9"),),
            "",
        ),
        ({"integration.request.header.X-Workspace": "route.request.body.missing"}, "message", (), ""),
        (
            {"integration.request.header.X-Auth": "route.request.header.authorization"},
            "connect",
            (("X-Auth", "Bearer t"),),
            "",
        ),
        ({"integration.request.header.X-Auth": "route.request.header.Authorization"}, "message", (), ""),
        (
            {"integration.request.querystring.workspaceId": "route.request.querystring.workspaceId"},
            "connect",
            (),
            "?workspaceId=w1",
        ),
        (
            {"integration.request.querystring.cid": "context.connectionId"},
            "message",
            (),
            "?cid=BFHPhfCWIAMCKlQ%3D",
        ),
        ({"integration.request.header.X-Stage": "stageVariables.missing"}, "message", (), ""),
        ({"integration.request.header.X-Unknown": "nonsense.source"}, "message", (), ""),
    ],
)
def test_http_integration_request_parameters(
    parameters: dict[str, str], event_name: str, headers: tuple[tuple[str, str], ...], url_suffix: str
) -> None:
    event = a_connect_event() if event_name == "connect" else a_message_event()
    request = gateway_events.http_integration_request(http_integration(parameters), event)
    assert request.headers == headers
    assert request.url == "http://127.0.0.1:3000/api/websocket" + url_suffix


def test_http_integration_path_parameter_and_bodies() -> None:
    integration = http_integration(
        {"integration.request.path.id": "context.connectionId"},
        uri="http://127.0.0.1:3000/connections/{id}?v=1",
    )
    message = gateway_events.http_integration_request(integration, a_message_event('{"action": "x"}'))
    assert message.url == "http://127.0.0.1:3000/connections/BFHPhfCWIAMCKlQ%3D?v=1"
    assert message.body == '{"action": "x"}'
    assert gateway_events.http_integration_request(integration, a_connect_event()).body == ""


# ---------------------------------------------------------------------------------------------
# Outcomes
# ---------------------------------------------------------------------------------------------

R = gateway_events.IntegrationResult


@pytest.mark.parametrize(
    ("result", "accept", "status", "subprotocol", "context_status", "error"),
    [
        (gateway_events.NOT_INVOKED, True, 101, None, 200, None),
        (R("response", 200, body="Connected."), True, 101, None, 200, None),
        (R("response", 204), True, 101, None, 200, None),
        (R("response", 200, headers={"Sec-WebSocket-Protocol": "chat"}), True, 101, "chat", 200, None),
        (R("response", 200, headers={"sec-websocket-protocol": "v2"}), True, 101, "v2", 200, None),
        (R("response", 400), False, 400, None, 400, None),
        (R("response", 401), False, 401, None, 401, None),
        (R("response", 302), False, 302, None, 302, None),
        (R("response", 500, body="Failed to connect: x"), False, 500, None, 500, None),
        (R("response", 503), False, 503, None, 503, None),
        (
            R("response", None, error_message=gateway_events.MALFORMED_PROXY_RESPONSE),
            False,
            502,
            None,
            502,
            "Internal server error",
        ),
        (
            R("function-error", error_message="KeyError: 'queryStringParameters'"),
            False,
            502,
            None,
            502,
            "Internal server error",
        ),
        (
            R("invoke-error", error_message="Invalid permissions on Lambda function"),
            False,
            500,
            None,
            500,
            "Internal server error",
        ),
        (R("timeout"), False, 504, None, 504, "Endpoint request timed out"),
    ],
)
def test_connect_outcome(
    result: gateway_events.IntegrationResult,
    accept: bool,
    status: int,
    subprotocol: str | None,
    context_status: int,
    error: str | None,
) -> None:
    decision = gw.connect_outcome(result)
    assert (decision.accept, decision.status, decision.subprotocol) == (accept, status, subprotocol)
    assert (decision.context_status, decision.error_message) == (context_status, error)
    if error is not None:
        assert json.loads(decision.body) == {"message": error}


def test_connect_rejection_carries_the_integration_body() -> None:
    decision = gw.connect_outcome(R("response", 500, body="Failed to connect: ValidationException"))
    assert decision.body == "Failed to connect: ValidationException"


def test_error_frames_are_spaced_exactly_as_aws_sends_them() -> None:
    assert (
        gw.forbidden_frame("XDmENcnwIE0CFEQ=", "XDmGEE2RoE0FRdQ=")
        == '{"message": "Forbidden", "connectionId":"XDmENcnwIE0CFEQ=", "requestId":"XDmGEE2RoE0FRdQ="}'
    )
    assert (
        gw.internal_error_frame("XDmENcnwIE0CFEQ=", "XDmGEE2RoE0FRdQ=")
        == '{"message": "Internal server error", "connectionId":"XDmENcnwIE0CFEQ=", "requestId":"XDmGEE2RoE0FRdQ="}'
    )
    assert json.loads(gw.forbidden_frame("a=", "b=")) == {
        "message": "Forbidden",
        "connectionId": "a=",
        "requestId": "b=",
    }


FORBIDDEN = '{"message": "Forbidden", "connectionId":"CID", "requestId":"RID"}'
INTERNAL = '{"message": "Internal server error", "connectionId":"CID", "requestId":"RID"}'
TIMED_OUT = '{"message": "Endpoint request timed out", "connectionId":"CID", "requestId":"RID"}'
ONE_WAY = make_api({"$default": "d", "chat": "c", "orphan": None})
TWO_WAY = make_api({"$default": "d", "chat": "c"}, two_way=("chat",))


@pytest.mark.parametrize(
    ("api", "body", "result", "frames", "context_status"),
    [
        (make_api({"chat": "c"}), '{"action": "nope"}', gateway_events.NOT_INVOKED, (FORBIDDEN,), 403),
        (ONE_WAY, '{"action": "orphan"}', gateway_events.NOT_INVOKED, (INTERNAL,), 500),
        (ONE_WAY, '{"action": "chat"}', R("response", 200, body="ignored"), (), 200),
        (ONE_WAY, '{"action": "chat"}', R("response", 400, body="ignored"), (), 200),
        (ONE_WAY, '{"action": "chat"}', R("response", 500, body="e.stack"), (INTERNAL,), 500),
        (ONE_WAY, '{"action": "chat"}', R("function-error", error_message="boom"), (INTERNAL,), 502),
        (
            ONE_WAY,
            '{"action": "chat"}',
            R("response", None, error_message=gateway_events.MALFORMED_PROXY_RESPONSE),
            (INTERNAL,),
            502,
        ),
        (ONE_WAY, '{"action": "chat"}', R("invoke-error"), (INTERNAL,), 500),
        (ONE_WAY, '{"action": "chat"}', R("timeout"), (TIMED_OUT,), 504),
        (TWO_WAY, '{"action": "chat"}', R("response", 200, body='{"echo": 1}'), ('{"echo": 1}',), 200),
        (TWO_WAY, '{"action": "chat"}', R("response", 500, body="sorry"), ("sorry",), 200),
        (TWO_WAY, '{"action": "chat"}', R("response", 200), (), 200),
        (TWO_WAY, '{"action": "chat"}', R("function-error", error_message="boom"), (INTERNAL,), 502),
        (TWO_WAY, "not json", R("response", 200, body="to $default"), (), 200),  # $default is one-way here
    ],
)
def test_message_outcome(
    api: gateway_config.ApiConfig,
    body: str,
    result: gateway_events.IntegrationResult,
    frames: tuple[str, ...],
    context_status: int,
) -> None:
    outcome = gw.message_outcome(
        gateway_config.select_route(api, body), result, connection_id="CID", request_id="RID"
    )
    assert outcome.frames == frames
    assert outcome.context_status == context_status


@pytest.mark.parametrize(
    ("result", "context_status"),
    [
        (gateway_events.NOT_INVOKED, 200),
        (R("response", 500), 200),
        (R("function-error"), 502),
        (R("timeout"), 504),
    ],
)
def test_disconnect_outcome_never_sends_anything(
    result: gateway_events.IntegrationResult, context_status: int
) -> None:
    outcome = gw.disconnect_outcome(result)
    assert outcome.frames == ()
    assert outcome.context_status == context_status


# ---------------------------------------------------------------------------------------------
# Limits and close codes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("is_binary", "frame_len", "message_len", "close"),
    [
        (False, 10, 10, None),
        (False, 32 * 1024, 32 * 1024, None),
        (False, 32 * 1024 + 1, 32 * 1024 + 1, (1009, "Message too big")),
        (False, 32 * 1024, 128 * 1024, None),
        (False, 1, 128 * 1024 + 1, (1009, "Message too big")),
        (True, 1, 1, (1003, "Binary frames are not supported")),
        (True, 64 * 1024, 64 * 1024, (1003, "Binary frames are not supported")),
        (False, 0, 0, None),
    ],
)
def test_check_inbound(
    is_binary: bool, frame_len: int, message_len: int, close: tuple[int, str] | None
) -> None:
    decision = gw.check_inbound(is_binary=is_binary, frame_len=frame_len, message_len=message_len)
    assert (None if decision is None else (decision.code, decision.reason)) == close


@pytest.mark.parametrize(
    ("code", "reason", "received", "expected"),
    [
        (None, "", True, (1005, "Client-side close frame status not set")),
        (1000, "bye", True, (1000, "bye")),
        (1001, "", True, (1001, "")),
        (4000, "app", True, (4000, "app")),
        (None, "", False, (1006, "")),
    ],
)
def test_client_close(code: int | None, reason: str, received: bool, expected: tuple[int, str]) -> None:
    decision = gw.client_close(code, reason, close_frame_received=received)
    assert (decision.code, decision.reason) == expected


MIN = 60_000
POLICY = gw.IdlePolicy()


@pytest.mark.parametrize(
    ("now", "last_active", "closes"),
    [
        (0, 0, False),
        (9 * MIN, 0, False),
        (10 * MIN - 1, 0, False),
        (10 * MIN, 0, True),  # idle 10 min
        (15 * MIN, 6 * MIN, False),  # activity reset the idle timer
        (16 * MIN, 6 * MIN, True),
        (120 * MIN - 1, 120 * MIN - 2, False),
        (120 * MIN, 120 * MIN - 1, True),  # 2 h cap, however active
    ],
)
def test_timer_decision(now: int, last_active: int, closes: bool) -> None:
    decision = gw.timer_decision(now, 0, last_active, POLICY)
    assert (decision == gw.CloseDecision(1001, "Going away")) if closes else decision is None


def test_next_timer_deadline() -> None:
    assert gw.next_timer_deadline_ms(0, 0, POLICY) == 10 * MIN
    assert gw.next_timer_deadline_ms(0, 115 * MIN, POLICY) == 120 * MIN
    assert gw.next_timer_deadline_ms(1_000, 1_000, gw.IdlePolicy(idle_timeout_s=1, max_duration_s=5)) == 2_000


# ---------------------------------------------------------------------------------------------
# Connection registry
# ---------------------------------------------------------------------------------------------


def test_registry_life_cycle() -> None:
    registry = gw.ConnectionRegistry()
    connection = make_connection()
    record = registry.register_pending(connection)
    assert (record.state, record.last_active_at_ms) == ("pending", CONNECTED_AT)
    assert connection.connection_id in registry and len(registry) == 1
    assert registry.open_ids() == []
    registry.touch(connection.connection_id, CONNECTED_AT + 5)  # pending: not counted
    assert registry.mark_accepted(connection.connection_id).state == "accepted"
    assert registry.open_ids() == []  # the 101 is not delivered yet
    registry.touch(connection.connection_id, CONNECTED_AT + 6)  # accepted: not counted either
    assert registry.get(connection.connection_id).last_active_at_ms == CONNECTED_AT  # type: ignore[union-attr]
    assert registry.mark_open(connection.connection_id).state == "open"
    assert registry.open_ids() == [connection.connection_id]
    registry.touch(connection.connection_id, CONNECTED_AT + 50)
    registry.touch(connection.connection_id, CONNECTED_AT + 40)  # never goes back
    assert registry.get(connection.connection_id).last_active_at_ms == CONNECTED_AT + 50  # type: ignore[union-attr]
    assert registry.mark_closed(connection.connection_id, 1001, "Going away") is True
    assert registry.mark_closed(connection.connection_id, 1000, "Connection Closed Normally") is False
    closed = registry.get(connection.connection_id)
    assert (
        closed is not None
        and closed.state == "closed"
        and closed.close == gw.CloseDecision(1001, "Going away")
    )
    registry.forget(connection.connection_id)
    assert registry.get(connection.connection_id) is None


def test_rejected_handshake_gets_no_disconnect() -> None:
    registry = gw.ConnectionRegistry()
    registry.register_pending(make_connection())
    assert registry.mark_closed("BFHPhfCWIAMCKlQ=", 1006, "") is False


def test_an_accepted_connection_whose_101_was_not_delivered_gets_disconnect() -> None:
    registry = gw.ConnectionRegistry()
    registry.register_pending(make_connection())
    registry.mark_accepted("BFHPhfCWIAMCKlQ=")
    assert registry.mark_closed("BFHPhfCWIAMCKlQ=", 1006, "") is True
    assert registry.mark_closed("BFHPhfCWIAMCKlQ=", 1006, "") is False


@pytest.mark.parametrize(
    ("steps", "fragment"),
    [
        (["register", "register"], "already registered"),
        (["open"], "not in the lab gateway's registry"),
        (["accept"], "not in the lab gateway's registry"),
        (["register", "open"], "is pending; it must be accepted to become open"),
        (["register", "accept", "accept"], "is accepted; it must be pending to become accepted"),
        (["register", "accept", "open", "open"], "is open; it must be accepted to become open"),
        (["register", "accept", "open", "accept"], "is open; it must be pending to become accepted"),
        (["register", "close", "accept"], "is closed"),
        (["register", "accept", "close", "open"], "is closed"),
        (["close"], "not in the lab gateway's registry"),
    ],
)
def test_registry_refuses_impossible_transitions(steps: list[str], fragment: str) -> None:
    registry = gw.ConnectionRegistry()
    connection = make_connection()
    with pytest.raises(gw.ConnectionStateError, match=re.escape(fragment)):
        for step in steps:
            if step == "register":
                registry.register_pending(connection)
            elif step == "accept":
                registry.mark_accepted(connection.connection_id)
            elif step == "open":
                registry.mark_open(connection.connection_id)
            else:
                registry.mark_closed(connection.connection_id, 1000, "")


# ---------------------------------------------------------------------------------------------
# @connections
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/prod/@connections/BFHPhfCWIAMCKlQ=", "BFHPhfCWIAMCKlQ="),
        ("/prod/@connections/BFHPhfCWIAMCKlQ%3D", "BFHPhfCWIAMCKlQ="),
        ("/prod/%40connections/R0oXAdfD0kwCH6w%3D", "R0oXAdfD0kwCH6w="),
        ("/prod/%40connections/R0oXAdfD0kwCH6w%3d", "R0oXAdfD0kwCH6w="),
        ("/prod/@connections/BFHPhfCWIAMCKlQ%3D?x=1", "BFHPhfCWIAMCKlQ="),
        ("/prod/@connections/not-an-id", "not-an-id"),  # the id check is management_decision's
        ("/@connections/BFHPhfCWIAMCKlQ%3D", 403),  # no stage in endpoint_url
        ("/dev/@connections/BFHPhfCWIAMCKlQ%3D", 403),  # wrong stage
        ("/prod/@connections/@connections/BFHPhfCWIAMCKlQ%3D", 403),  # path doubled
        ("/prod/@connections/", 403),
        ("/prod/connections/BFHPhfCWIAMCKlQ%3D", 403),
        ("prod/@connections/BFHPhfCWIAMCKlQ%3D", 403),
        ("/", 403),
    ],
)
def test_parse_management_path(path: str, expected: str | int) -> None:
    parsed = gw.parse_management_path(path, "prod")
    if isinstance(expected, str):
        assert parsed == expected
    else:
        assert isinstance(parsed, gw.ManagementDecision)
        assert parsed.status == expected
        assert dict(parsed.headers)["x-amzn-ErrorType"] == "ForbiddenException"


def registry_with_states() -> gw.ConnectionRegistry:
    registry = gw.ConnectionRegistry()
    open_connection = make_connection("wscat/5", "OPENaaaaaaaaaaa=")
    registry.register_pending(open_connection)
    registry.mark_accepted(open_connection.connection_id)
    registry.mark_open(open_connection.connection_id)
    registry.touch(open_connection.connection_id, CONNECTED_AT + 61_000)
    registry.register_pending(make_connection(None, "PENDaaaaaaaaaaa="))
    registry.register_pending(make_connection(None, "ACCPaaaaaaaaaaa="))
    registry.mark_accepted("ACCPaaaaaaaaaaa=")
    registry.register_pending(make_connection(None, "CLOSaaaaaaaaaaa="))
    registry.mark_accepted("CLOSaaaaaaaaaaa=")
    registry.mark_open("CLOSaaaaaaaaaaa=")
    registry.mark_closed("CLOSaaaaaaaaaaa=", 1001, "Going away")
    registry.register_pending(make_connection(None, "NOUAaaaaaaaaaaa="))
    registry.mark_accepted("NOUAaaaaaaaaaaa=")
    registry.mark_open("NOUAaaaaaaaaaaa=")
    return registry


@pytest.mark.parametrize(
    ("method", "connection_id", "body_len", "status", "error_type", "body", "action"),
    [
        ("POST", "OPENaaaaaaaaaaa=", 5, 200, None, "", "send"),
        ("POST", "OPENaaaaaaaaaaa=", 131_072, 200, None, "", "send"),
        ("POST", "OPENaaaaaaaaaaa=", 131_073, 413, "PayloadTooLargeException", None, "none"),
        ("POST", "OPENaaaaaaaaaaa=", 0, 200, None, "", "send"),
        ("post", "OPENaaaaaaaaaaa=", 5, 200, None, "", "send"),
        ("DELETE", "OPENaaaaaaaaaaa=", 0, 204, None, "", "close"),
        ("POST", "PENDaaaaaaaaaaa=", 5, 410, "GoneException", "", "none"),
        ("GET", "PENDaaaaaaaaaaa=", 0, 410, "GoneException", "", "none"),
        # $connect accepted but the 101 not delivered: not a connection yet (AWS: 410 until the 101).
        ("GET", "ACCPaaaaaaaaaaa=", 0, 410, "GoneException", "", "none"),
        ("POST", "ACCPaaaaaaaaaaa=", 5, 410, "GoneException", "", "none"),
        ("DELETE", "ACCPaaaaaaaaaaa=", 0, 410, "GoneException", "", "none"),
        ("DELETE", "CLOSaaaaaaaaaaa=", 0, 410, "GoneException", "", "none"),
        ("POST", "UNKNaaaaaaaaaaa=", 5, 410, "GoneException", "", "none"),
        (
            "POST",
            "cjy8i76bx002884le6n17d49b",
            5,
            400,
            "BadRequestException",
            '{"message": "Invalid connectionId: cjy8i76bx002884le6n17d49b"}',
            "none",
        ),
        ("GET", "", 0, 400, "BadRequestException", '{"message": "Invalid connectionId: "}', "none"),
        ("PUT", "OPENaaaaaaaaaaa=", 0, 403, "ForbiddenException", '{"message": "Forbidden"}', "none"),
    ],
)
def test_management_decision(
    method: str,
    connection_id: str,
    body_len: int,
    status: int,
    error_type: str | None,
    body: str | None,
    action: str,
) -> None:
    decision = gw.management_decision(method, connection_id, body_len, registry_with_states())
    assert (decision.status, decision.action) == (status, action)
    assert dict(decision.headers).get("x-amzn-ErrorType") == error_type
    if body is not None:
        assert decision.body == body
    if action == "close":
        assert decision.close == gw.CloseDecision(1000, "Connection Closed Normally")


@pytest.mark.parametrize(
    ("connection_id", "identity"),
    [
        ("OPENaaaaaaaaaaa=", {"sourceIp": "166.90.225.1", "userAgent": "wscat/5"}),
        ("NOUAaaaaaaaaaaa=", {"sourceIp": "166.90.225.1", "userAgent": None}),
    ],
)
def test_get_connection_answer(connection_id: str, identity: dict[str, str | None]) -> None:
    decision = gw.management_decision("GET", connection_id, 0, registry_with_states())
    assert decision.status == 200 and decision.action == "none"
    answer = json.loads(decision.body)
    assert answer["identity"] == identity
    assert answer["connectedAt"] == "2024-11-11T11:35:24.553Z"
    expected_last = (
        "2024-11-11T11:36:25.553Z" if connection_id.startswith("OPEN") else "2024-11-11T11:35:24.553Z"
    )
    assert answer["lastActiveAt"] == expected_last


def botocore_error(decision: gw.ManagementDecision, operation: str) -> tuple[str, str, type]:
    """Parse ``decision`` as botocore would parse the HTTP answer; (code, message, exception class)."""
    client = botocore.session.get_session().create_client(
        "apigatewaymanagementapi",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1/prod",
        aws_access_key_id="lab",
        aws_secret_access_key="lab",
    )
    shape = client.meta.service_model.operation_model(operation).output_shape
    parsed = create_parser("rest-json").parse(
        {
            "status_code": decision.status,
            "headers": HeadersDict(dict(decision.headers)),
            "body": decision.body.encode(),
        },
        shape,
    )
    code = parsed["Error"]["Code"]
    return code, parsed["Error"]["Message"], client.exceptions.from_code(code)


@pytest.mark.parametrize(
    ("decision", "operation", "code", "modelled"),
    [
        (gw.GONE, "PostToConnection", "GoneException", "GoneException"),
        (gw.FORBIDDEN_MANAGEMENT, "GetConnection", "ForbiddenException", "ForbiddenException"),
        (
            gw.management_error(429, "LimitExceededException", "Limit exceeded"),
            "PostToConnection",
            "LimitExceededException",
            "LimitExceededException",
        ),
        (
            gw.management_decision("POST", "OPENaaaaaaaaaaa=", 200_000, registry_with_states()),
            "PostToConnection",
            "PayloadTooLargeException",
            "PayloadTooLargeException",
        ),
        (
            gw.management_decision("POST", "bad", 1, registry_with_states()),
            "PostToConnection",
            "BadRequestException",
            "ClientError",
        ),
    ],
)
def test_botocore_maps_management_errors_to_modelled_exceptions(
    decision: gw.ManagementDecision, operation: str, code: str, modelled: str
) -> None:
    parsed_code, _message, exception = botocore_error(decision, operation)
    assert parsed_code == code
    assert exception.__name__ == modelled


def test_gone_has_the_empty_message_boto3_users_see() -> None:
    assert gw.GONE.body == ""
    assert botocore_error(gw.GONE, "PostToConnection")[1] == ""


@pytest.mark.parametrize("module_name", ["kit.lab.gateway_core", "kit.lab.gateway_logs"])
def test_core_modules_stay_sans_io(module_name: str) -> None:
    import ast
    import importlib
    from pathlib import Path

    source = Path(importlib.import_module(module_name).__file__ or "").read_text(encoding="utf-8")
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    forbidden = {
        "websockets",
        "asyncio",
        "boto3",
        "botocore",
        "socket",
        "subprocess",
        "time",
        "os",
        "threading",
    }
    assert imported & forbidden == set()
