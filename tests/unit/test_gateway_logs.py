"""The lab gateway's access-log and execution-log lines, driven with plain calls."""

from __future__ import annotations

import json
import re

import pytest

from kit.lab import gateway_config, gateway_events
from kit.lab import gateway_core as gw
from kit.lab import gateway_logs as logs

CONNECTED_AT = 1731324924553
LAMBDA_URI = (
    "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
    "arn:aws:lambda:us-east-1:123456789012:function:chat-connect/invocations"
)
LAMBDA_ENDPOINT = (
    "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/"
    "arn:aws:lambda:us-east-1:123456789012:function:chat-connect/invocations"
)
CONNECTION = gateway_events.Connection(
    "BFHPhfCWIAMCKlQ=", CONNECTED_AT, "166.90.225.1", None, "fjnq7njcv2", "fjnq7njcv2.example", "prod"
)
LAMBDA = gateway_config.IntegrationConfig("i1", "AWS_PROXY", LAMBDA_URI)
HTTP = gateway_config.IntegrationConfig("i2", "HTTP_PROXY", "http://127.0.0.1:3000/api/websocket")
API = gateway_config.ApiConfig(
    "fjnq7njcv2",
    "$request.body.action",
    {
        "$connect": gateway_config.RouteConfig("$connect", "i1"),
        "$disconnect": gateway_config.RouteConfig("$disconnect", "i1"),
        "chat": gateway_config.RouteConfig("chat", "i1"),
        "orphan": gateway_config.RouteConfig("orphan"),
    },
    gateway_config.StageConfig("prod"),
    {"i1": LAMBDA},
)
R = gateway_events.IntegrationResult
OK = R("response", 200, integration_request_id="lambda-req-1", latency_ms=42)


def context_for(
    event_type: gateway_events.EventType = "CONNECT",
    *,
    route_key: str | None = "$connect",
    status: int = 200,
    result: gateway_events.IntegrationResult | None = OK,
    integration: gateway_config.IntegrationConfig | None = LAMBDA,
    connection: gateway_events.Connection = CONNECTION,
    message_id: str | None = None,
    error_message: str | None = None,
    response_type: str | None = None,
) -> dict[str, object]:
    return logs.build_log_context(
        connection,
        event_type=event_type,
        route_key=route_key,
        request_id="BFHPhFe3IAMF95g=",
        request_time_ms=CONNECTED_AT + 8,
        status=status,
        message_id=message_id,
        integration=integration,
        result=result,
        error_message=error_message,
        response_type=response_type,
    )


# ---------------------------------------------------------------------------------------------
# Access logs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "context", "line"),
    [
        ("$context.requestId", {"requestId": "abc="}, "abc="),
        ("$context.requestId $context.status", {"requestId": "r", "status": 200}, "r 200"),
        ("[$context.identity.sourceIp]", {"identity.sourceIp": "1.2.3.4"}, "[1.2.3.4]"),
        ("$context.identity.userAgent", {"identity.userAgent": None}, "-"),
        ("$context.error.message", {}, "-"),
        ("$context.disconnectReason", {"disconnectReason": ""}, "-"),
        ("$context.requestId.", {"requestId": "r"}, "r."),
        ("$context.routeKey.extra", {"routeKey": "chat"}, "chat.extra"),
        ("$context.requestId-$context.stage", {"requestId": "r", "stage": "prod"}, "r-prod"),
        ("$context.notAVariable", {"requestId": "r"}, "-"),
        ("$context.authorizer.workspaceId", {"authorizer.workspaceId": "w1"}, "w1"),
        ("$context.integration.status", {"integration.status": 500}, "500"),
        ('{"e":$context.error.messageString}', {"error.messageString": '"Forbidden"'}, '{"e":"Forbidden"}'),
        ("no variables", {}, "no variables"),
        ("$context", {}, "$context"),
        ("$$context.stage", {"stage": "prod"}, "$prod"),
    ],
)
def test_access_log_line(template: str, context: dict[str, object], line: str) -> None:
    assert logs.access_log_line(template, context) == line


def test_default_access_log_format_uses_only_websocket_variables_and_fits_3_kb() -> None:
    names = re.findall(r"\$context\.([A-Za-z0-9_.]+)", logs.DEFAULT_ACCESS_LOG_FORMAT)
    assert set(names) <= logs.WEBSOCKET_CONTEXT_VARIABLES
    assert "integration.status" in names and "error.message" in names
    assert len(logs.DEFAULT_ACCESS_LOG_FORMAT.encode()) <= 3 * 1024


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        (
            context_for(),
            {"status": "200", "integrationStatus": "200", "lambdaStatus": "200", "error": "-", "integrationLatency": "42",
             "integrationRequestId": "lambda-req-1", "messageId": "-", "userAgent": "-", "eventType": "CONNECT"},
        ),
        (
            context_for(status=502, result=R("function-error", error_message="KeyError: 'x'", integration_request_id="l2"),
                        error_message="Internal server error", response_type="DEFAULT_5XX"),
            {"status": "502", "integrationStatus": "-", "lambdaStatus": "200", "integrationError": "KeyError: 'x'",
             "error": "Internal server error", "responseType": "DEFAULT_5XX"},
        ),
        (
            context_for(status=500, result=R("invoke-error", error_message="Invalid permissions on Lambda function"),
                        error_message="Internal server error"),
            {"status": "500", "integrationStatus": "-", "lambdaStatus": "-",
             "integrationError": "Invalid permissions on Lambda function"},
        ),
        (
            context_for(status=502, result=R("response", None, error_message=gateway_events.MALFORMED_PROXY_RESPONSE)),
            {"integrationStatus": "-", "lambdaStatus": "200", "integrationError": "Malformed Lambda proxy response"},
        ),
        (
            context_for(status=400, result=R("response", 400, latency_ms=3)),
            {"status": "400", "integrationStatus": "400", "lambdaStatus": "200", "integrationError": "-"},
        ),
        (
            context_for(result=gateway_events.NOT_INVOKED),
            {"status": "200", "integrationStatus": "-", "lambdaStatus": "-", "integrationLatency": "-"},
        ),
        (
            context_for("MESSAGE", route_key="chat", integration=HTTP, result=R("response", 201, latency_ms=7), message_id="m1"),
            {"integrationStatus": "201", "lambdaStatus": "201", "messageId": "m1", "routeKey": "chat"},
        ),
        (
            context_for("MESSAGE", route_key=None, status=403, result=None, error_message="Forbidden"),
            {"routeKey": "-", "status": "403", "error": "Forbidden", "integrationStatus": "-"},
        ),
        (
            context_for(connection=gateway_events.Connection("c", 1, "10.0.0.1", "wscat/5", "a", "d", "prod")),
            {"userAgent": "wscat/5", "sourceIp": "10.0.0.1", "connectedAt": "1", "connectionId": "c"},
        ),
    ],
)  # fmt: skip
def test_default_access_log_line_is_json_with_aws_values(
    context: dict[str, object], expected: dict[str, str]
) -> None:
    record = json.loads(logs.access_log_line(logs.DEFAULT_ACCESS_LOG_FORMAT, context))
    assert {key: record[key] for key in expected} == expected


def test_log_context_aliases_agree() -> None:
    context = context_for()
    assert context["requestId"] == context["extendedRequestId"]
    assert context["integrationLatency"] == context["integration.latency"] == 42
    assert context["integrationStatus"] == context["integration.status"] == 200
    assert context["awsEndpointRequestId"] == context["integration.requestId"] == "lambda-req-1"
    assert context["requestTime"] == "11/Nov/2024:11:35:24 +0000"
    assert set(context) <= logs.WEBSOCKET_CONTEXT_VARIABLES


# ---------------------------------------------------------------------------------------------
# Execution logs
# ---------------------------------------------------------------------------------------------

P = "(BFHPhFe3IAMF95g=) "


def test_connect_success_lines() -> None:
    lines = logs.execution_log_lines(
        context_for(), decision=gateway_config.route_for_key(API, "$connect"), result=OK
    )
    assert lines == [
        P + "Extended Request Id: BFHPhFe3IAMF95g=",
        P + "Starting execution for request: BFHPhFe3IAMF95g=",
        P + "WebSocket Request Route: [$connect]",
        P + "Client [UserAgent: null, SourceIp: 166.90.225.1] is connecting to WebSocket API [fjnq7njcv2].",
        P + f"Endpoint request URI: {LAMBDA_ENDPOINT}",
        P + f"Sending request to {LAMBDA_ENDPOINT}",
        P + "Received response. Status: 200, Integration latency: 42 ms",
        P + "AWS Integration Endpoint RequestId : lambda-req-1",
        P + "Client [Connection Id: BFHPhfCWIAMCKlQ=] connected to API [fjnq7njcv2] successfully.",
    ]


def test_connect_without_integration_logs_no_endpoint_request() -> None:
    api = gateway_config.ApiConfig(
        "fjnq7njcv2", "$request.body.action", {}, gateway_config.StageConfig("prod")
    )
    lines = logs.execution_log_lines(
        context_for(result=gateway_events.NOT_INVOKED),
        decision=gateway_config.route_for_key(api, "$connect"),
        result=gateway_events.NOT_INVOKED,
    )
    assert not any("Endpoint request URI" in line for line in lines)
    assert lines[-1].endswith("connected to API [fjnq7njcv2] successfully.")


@pytest.mark.parametrize(
    ("result", "status", "error_lines"),
    [
        (
            R(
                "function-error",
                error_message="KeyError: 'queryStringParameters'",
                integration_request_id="l-9",
                latency_ms=5,
            ),
            502,
            [
                "Lambda execution failed with status 200 due to customer function error: "
                "KeyError: 'queryStringParameters'. Lambda request id: l-9",
                "Execution failed: client [Connection Id: BFHPhfCWIAMCKlQ=] rejected with status code [502]",
            ],
        ),
        (
            R("invoke-error"),
            500,
            [
                "Execution failed due to configuration error: Invalid permissions on Lambda function",
                "Execution failed: client [Connection Id: BFHPhfCWIAMCKlQ=] rejected with status code [500]",
            ],
        ),
        (
            R("response", None, error_message=gateway_events.MALFORMED_PROXY_RESPONSE, latency_ms=1),
            502,
            [
                "Execution failed due to configuration error: Malformed Lambda proxy response",
                "Execution failed: client [Connection Id: BFHPhfCWIAMCKlQ=] rejected with status code [502]",
            ],
        ),
        (
            R("timeout"),
            504,
            [
                "Execution failed due to a timeout error",
                "Execution failed: client [Connection Id: BFHPhfCWIAMCKlQ=] rejected with status code [504]",
            ],
        ),
        (
            R("response", 500, latency_ms=1),
            500,
            ["Execution failed: client [Connection Id: BFHPhfCWIAMCKlQ=] rejected with status code [500]"],
        ),
    ],
)
def test_connect_failure_lines_at_error_level(
    result: gateway_events.IntegrationResult, status: int, error_lines: list[str]
) -> None:
    decision = gateway_config.route_for_key(API, "$connect")
    context = context_for(status=status, result=result)
    at_error = logs.execution_log_lines(context, decision=decision, result=result, logging_level="ERROR")
    assert at_error == [P + line for line in error_lines]
    at_info = logs.execution_log_lines(context, decision=decision, result=result, logging_level="INFO")
    assert set(at_error) <= set(at_info)
    assert not any("successfully" in line for line in at_info)


def test_swallowed_error_still_logs_status_200() -> None:
    # Root cause 1: the handler catches the DynamoDB error and returns 200; the gateway sees success.
    lines = logs.execution_log_lines(
        context_for(), decision=gateway_config.route_for_key(API, "$connect"), result=OK
    )
    assert P + "Received response. Status: 200, Integration latency: 42 ms" in lines
    assert (
        logs.execution_log_lines(
            context_for(),
            decision=gateway_config.route_for_key(API, "$connect"),
            result=OK,
            logging_level="ERROR",
        )
        == []
    )


def test_logging_off_gives_nothing() -> None:
    assert (
        logs.execution_log_lines(
            context_for(),
            decision=gateway_config.route_for_key(API, "$connect"),
            result=OK,
            logging_level="OFF",
        )
        == []
    )


def test_message_lines() -> None:
    decision = gateway_config.select_route(API, '{"action": "chat"}')
    context = context_for("MESSAGE", route_key="chat", message_id="m1")
    lines = logs.execution_log_lines(context, decision=decision, result=OK)
    assert (
        lines[3]
        == P + "WebSocket API [fjnq7njcv2] received message from client [Connection Id: BFHPhfCWIAMCKlQ=]."
    )
    assert (
        lines[-1]
        == P
        + "Message from client [Connection Id: BFHPhfCWIAMCKlQ=] sent to API [fjnq7njcv2] with response status code [200]."
    )


@pytest.mark.parametrize(
    ("body", "status", "error_line"),
    [
        (
            '{"action": "nope"}',
            403,
            "Execution failed: no route matches route selection value [nope] and the API has no $default route",
        ),
        (
            '{"action": "orphan"}',
            500,
            "Execution failed due to configuration error: no integration defined for route [orphan]",
        ),
    ],
)
def test_message_routing_failures(body: str, status: int, error_line: str) -> None:
    decision = gateway_config.select_route(API, body)
    context = context_for(
        "MESSAGE", route_key=decision.route_key, status=status, result=gateway_events.NOT_INVOKED
    )
    lines = logs.execution_log_lines(
        context, decision=decision, result=gateway_events.NOT_INVOKED, logging_level="ERROR"
    )
    assert lines == [P + error_line]


@pytest.mark.parametrize(
    ("close", "result", "tail"),
    [
        (gw.CloseDecision(1001, "Going away"), OK, "with integration response status code [200]. Close reason: [1001: Going away]"),
        (gw.CloseDecision(1005, "Client-side close frame status not set"), gateway_events.NOT_INVOKED,
         "with integration response status code [-]. Close reason: [1005: Client-side close frame status not set]"),
    ],
)  # fmt: skip
def test_disconnect_line(
    close: gw.CloseDecision, result: gateway_events.IntegrationResult, tail: str
) -> None:
    context = context_for("DISCONNECT", route_key="$disconnect", result=result)
    lines = logs.execution_log_lines(
        context, decision=gateway_config.route_for_key(API, "$disconnect"), result=result, close=close
    )
    assert (
        lines[-1] == P + f"Client [Connection Id: BFHPhfCWIAMCKlQ=] disconnected from API [fjnq7njcv2] {tail}"
    )


def test_data_trace_adds_bodies_and_truncates_at_1024_bytes() -> None:
    event_json = json.dumps({"body": "é" * 2000})
    lines = logs.execution_log_lines(
        context_for(),
        decision=gateway_config.route_for_key(API, "$connect"),
        result=OK,
        data_trace=True,
        request_body=event_json,
        response_body='{"statusCode": 200}',
    )
    request_line = next(line for line in lines if "Endpoint request body after transformations" in line)
    assert request_line.endswith(" [TRUNCATED]")
    assert len(request_line.encode()) <= 1024
    assert P + 'Endpoint response body before transformations: {"statusCode": 200}' in lines
    without_trace = logs.execution_log_lines(
        context_for(),
        decision=gateway_config.route_for_key(API, "$connect"),
        result=OK,
        request_body=event_json,
    )
    assert not any("transformations" in line for line in without_trace)
    assert all(len(line.encode()) <= 1024 for line in lines)


def test_http_integration_logs_the_backend_status() -> None:
    api = gateway_config.ApiConfig(
        "a",
        "$request.body.action",
        {"$connect": gateway_config.RouteConfig("$connect", "i2")},
        gateway_config.StageConfig("prod"),
        {"i2": HTTP},
    )
    result = R("response", 401, latency_ms=9)
    lines = logs.execution_log_lines(
        context_for(status=401, result=result, integration=HTTP),
        decision=gateway_config.route_for_key(api, "$connect"),
        result=result,
    )
    assert P + "Endpoint request URI: http://127.0.0.1:3000/api/websocket" in lines
    assert P + "Received response. Status: 401, Integration latency: 9 ms" in lines
    assert not any("AWS Integration Endpoint RequestId" in line for line in lines)
