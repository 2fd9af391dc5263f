"""API Gateway's throttling (kit.throttling): token buckets at their edge, the limit a stage sets for a route,
the settings the API refuses, and a gateway's buckets; with the gateway core's answers and log line."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kit import throttling
from kit.lab import gateway_config, gateway_events, gateway_logs
from kit.lab import gateway_core as gw
from kit.throttling import AccountLimits, RouteLimit, Throttles, TokenBucket


@pytest.mark.parametrize(
    ("rate", "burst", "times", "admitted"),
    [
        # the burst at once, then nothing until a whole token has refilled
        (1, 3, [0, 0, 0, 0], [True, True, True, False]),
        (1, 3, [0, 0, 0, 0, 0.999, 1.0, 1.0], [True, True, True, False, False, True, False]),
        # AWS's new-connection quota: 500 at once, the 501st refused, one more exactly 1/500 s later
        (500, 500, [0] * 501 + [0.0019, 0.002], [True] * 500 + [False, False, True]),
        # refill never goes beyond the burst
        (10, 2, [0, 0, 100, 100, 100], [True, True, True, True, False]),
        # 0/0: nothing ever passes; burst 0: nothing, whatever the rate; rate 0: the burst, then never again
        (0, 0, [0, 1, 1000], [False, False, False]),
        (100, 0, [0, 1, 1000], [False, False, False]),
        (0, 2, [0, 0, 0, 1000], [True, True, False, False]),
        # a float rate at its edge (0.1 s at 10/s is 0.9999999999999999 tokens in floats)
        (10, 1, [0, 0.05, 0.1], [True, False, True]),
        # a clock that goes back refills nothing
        (1, 1, [5, 4, 5.5, 6], [True, False, False, True]),
    ],
)
def test_token_bucket_at_its_edge(rate: float, burst: int, times: list[float], admitted: list[bool]) -> None:
    bucket = TokenBucket(rate, burst)
    assert [bucket.take(now) for now in times] == admitted


@pytest.mark.parametrize(
    ("stage", "route_key", "expected"),
    [
        ({}, "$connect", None),
        ({"DefaultRouteSettings": {"LoggingLevel": "INFO"}}, "$connect", None),
        # the 0/0 trap, from the defaults: every route
        (
            {"DefaultRouteSettings": {"ThrottlingBurstLimit": 0, "ThrottlingRateLimit": 0.0}},
            "$connect",
            RouteLimit(0.0, 0, "DefaultRouteSettings"),
        ),
        (
            {"DefaultRouteSettings": {"ThrottlingBurstLimit": 0, "ThrottlingRateLimit": 0.0}},
            "message",
            RouteLimit(0.0, 0, "DefaultRouteSettings"),
        ),
        # a route's own settings win, field by field
        (
            {
                "DefaultRouteSettings": {"ThrottlingBurstLimit": 100, "ThrottlingRateLimit": 50.0},
                "RouteSettings": {"$connect": {"ThrottlingBurstLimit": 0, "ThrottlingRateLimit": 0.0}},
            },
            "$connect",
            RouteLimit(0.0, 0, "RouteSettings[$connect]"),
        ),
        (
            {
                "DefaultRouteSettings": {"ThrottlingBurstLimit": 100, "ThrottlingRateLimit": 50.0},
                "RouteSettings": {"$connect": {"ThrottlingBurstLimit": 0, "ThrottlingRateLimit": 0.0}},
            },
            "message",
            RouteLimit(50.0, 100, "DefaultRouteSettings"),
        ),
        (
            {
                "DefaultRouteSettings": {"ThrottlingBurstLimit": 100},
                "RouteSettings": {"$connect": {"ThrottlingRateLimit": 2.0}},
            },
            "$connect",
            RouteLimit(2.0, 100, "RouteSettings[$connect], DefaultRouteSettings"),
        ),
        # one field set: the other is the account's
        (
            {"RouteSettings": {"message": {"ThrottlingRateLimit": 1}}},
            "message",
            RouteLimit(1.0, throttling.REQUESTS_BURST, "RouteSettings[message]"),
        ),
        ({"RouteSettings": {"message": {"ThrottlingRateLimit": 1}}}, "$connect", None),
        ({"RouteSettings": "garbage", "DefaultRouteSettings": None}, "$connect", None),
    ],
)
def test_route_limit(stage: dict[str, Any], route_key: str, expected: RouteLimit | None) -> None:
    assert throttling.route_limit(stage, route_key) == expected


@pytest.mark.parametrize(
    ("limit", "refuses_all"),
    [
        (RouteLimit(0, 0, "d"), True),
        (RouteLimit(100, 0, "d"), True),
        (RouteLimit(0, 100, "d"), True),
        (RouteLimit(0.5, 1, "d"), False),
    ],
)
def test_refuses_all(limit: RouteLimit, refuses_all: bool) -> None:
    assert limit.refuses_all is refuses_all


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        ({}, None),
        ({"defaultRouteSettings": {"loggingLevel": "INFO"}}, None),
        ({"defaultRouteSettings": {"throttlingBurstLimit": 0, "throttlingRateLimit": 0}}, None),
        ({"defaultRouteSettings": {"throttlingBurstLimit": 5000, "throttlingRateLimit": 10000.0}}, None),
        ({"routeSettings": {"$connect": {"throttlingBurstLimit": 1, "throttlingRateLimit": 0.5}}}, None),
        (
            {"defaultRouteSettings": {"throttlingBurstLimit": -1}},
            "Invalid DefaultRouteSettings.ThrottlingBurstLimit -1",
        ),
        (
            {"defaultRouteSettings": {"throttlingBurstLimit": 5001}},
            "Invalid DefaultRouteSettings.ThrottlingBurstLimit 5001",
        ),
        (
            {"defaultRouteSettings": {"throttlingBurstLimit": 1.5}},
            "Invalid DefaultRouteSettings.ThrottlingBurstLimit 1.5",
        ),
        (
            {"routeSettings": {"$connect": {"throttlingRateLimit": 10000.5}}},
            "Invalid RouteSettings[$connect].ThrottlingRateLimit 10000.5",
        ),
        (
            {"routeSettings": {"$connect": {"throttlingRateLimit": -0.1}}},
            "Invalid RouteSettings[$connect].ThrottlingRateLimit -0.1",
        ),
        (
            {"routeSettings": {"$connect": {"throttlingRateLimit": "fast"}}},
            "Invalid RouteSettings[$connect].ThrottlingRateLimit 'fast'",
        ),
        ({"routeSettings": {"$connect": {"throttlingRateLimit": True}}}, "Invalid RouteSettings"),
        ({"routeSettings": {"$connect": {"throttlingRateLimit": float("nan")}}}, "Invalid RouteSettings"),
    ],
)
def test_settings_refusal(body: dict[str, Any], refused: str | None) -> None:
    answer = throttling.settings_refusal(body)
    if refused is None:
        assert answer is None
    else:
        assert answer is not None and answer.startswith(refused), answer
        assert "from 0 to" in answer


def test_the_account_quota_of_new_connections_comes_before_the_stage() -> None:
    throttles = Throttles(AccountLimits(new_connections_per_s=2, new_connections_burst=2))
    assert throttles.connect(0, None) is None
    assert throttles.connect(0, None) is None
    refused = throttles.connect(0, None)
    assert refused is not None and "quota of new connections: 2 per second, burst 2" in refused.limit
    assert throttles.connect(0.5, None) is None  # a token back after 1/2 s


def test_a_stage_limit_for_connect_refuses_and_a_changed_limit_starts_a_full_bucket() -> None:
    throttles = Throttles()
    zero = RouteLimit(0, 0, "DefaultRouteSettings")
    refused = throttles.connect(0, zero)
    assert refused is not None
    assert refused.limit == (
        "the stage's throttling of route $connect: rate 0 per second, burst 0 (DefaultRouteSettings)"
    )
    one = RouteLimit(1, 1, "RouteSettings[$connect]")
    assert throttles.connect(0, one) is None
    assert throttles.connect(0, one) is not None
    assert throttles.connect(0, RouteLimit(1, 2, "RouteSettings[$connect]")) is None  # changed: full again


def test_messages_have_a_bucket_per_route_and_share_the_account_quota_with_callbacks() -> None:
    throttles = Throttles(AccountLimits(requests_per_s=1, requests_burst=3))
    limit = RouteLimit(1, 1, "RouteSettings[message]")
    assert throttles.message(0, "message", limit) is None
    refused = throttles.message(0, "message", limit)
    assert refused is not None and "route message" in refused.limit
    assert throttles.message(0, "typing", None) is None  # another route, no stage limit
    assert throttles.management(0) is not None  # three requests took the account's burst of 3
    refused = throttles.message(0, "typing", None)
    assert refused is not None and "request quota: 1 per second, burst 3" in refused.limit
    assert throttles.management(1) is None


def test_the_gateway_answers_a_throttled_handshake_message_and_callback() -> None:
    handshake = gw.THROTTLED_HANDSHAKE
    assert (handshake.accept, handshake.status, handshake.context_status) == (False, 429, 429)
    assert json.loads(handshake.body) == {"message": "Too Many Requests"}
    assert handshake.response_type == "THROTTLED"
    outcome = gw.throttled_message_outcome("BFHPhfCWIAMCKlQ=", "BFHPhfCWIAMFxyz=")
    assert outcome.frames == (
        '{"message": "Too Many Requests", "connectionId":"BFHPhfCWIAMCKlQ=", "requestId":"BFHPhfCWIAMFxyz="}',
    )
    assert (outcome.context_status, outcome.error_message) == (429, "Too Many Requests")
    management = gw.THROTTLED_MANAGEMENT
    assert management.status == 429 and ("x-amzn-ErrorType", "LimitExceededException") in management.headers
    assert json.loads(management.body) == {"message": "Too Many Requests"}


def test_the_stage_config_keeps_the_route_settings_read_live() -> None:
    stage = {
        "StageName": "prod",
        "DefaultRouteSettings": {
            "LoggingLevel": "INFO",
            "ThrottlingBurstLimit": 0,
            "ThrottlingRateLimit": 0.0,
        },
    }
    api = gateway_config.api_config_from_answers(
        {"ApiId": "a1", "ProtocolType": "WEBSOCKET", "RouteSelectionExpression": "$request.body.action"},
        [],
        [],
        stage,
    )
    assert api.stage.throttle_limit("$connect", AccountLimits()) == RouteLimit(0.0, 0, "DefaultRouteSettings")
    assert (
        gateway_config.api_config_from_answers(
            {"ApiId": "a1", "RouteSelectionExpression": "$request.body.action"}, [], [], {"StageName": "p"}
        ).stage.throttle_limit("$connect", AccountLimits())
        is None
    )


@pytest.mark.parametrize("level", ["INFO", "ERROR"])
def test_a_throttled_connect_logs_why_in_both_logs(level: gateway_config.LoggingLevel) -> None:
    connection = gateway_events.Connection(
        "BFHPhfCWIAMCKlQ=", 1731324924553, "10.0.0.1", None, "a1", "a1.example", "prod"
    )
    decision = gw.THROTTLED_HANDSHAKE
    context = gateway_logs.build_log_context(
        connection,
        event_type="CONNECT",
        route_key="$connect",
        request_id="BFHPhfCWIAMFxyz=",
        request_time_ms=1731324924553,
        status=decision.context_status,
        error_message=decision.error_message,
        response_type=decision.response_type,
    )
    lines = gateway_logs.execution_log_lines(context, logging_level=level, throttled_by="the limit")
    errors = [
        "(BFHPhfCWIAMFxyz=) Execution failed: throttled by the limit",
        "(BFHPhfCWIAMFxyz=) Execution failed: client [Connection Id: BFHPhfCWIAMCKlQ=] rejected with status "
        "code [429]",
    ]
    assert lines[-2:] == errors
    access = gateway_logs.access_log_line(gateway_logs.DEFAULT_ACCESS_LOG_FORMAT, context)
    parsed = json.loads(access)
    assert (parsed["status"], parsed["error"], parsed["responseType"]) == (
        "429",
        "Too Many Requests",
        "THROTTLED",
    )
    assert parsed["integrationRequestId"] == "-"


def test_the_account_quotas_are_awss_by_default() -> None:
    assert AccountLimits() == AccountLimits(
        new_connections_per_s=500, new_connections_burst=500, requests_per_s=10_000, requests_burst=5_000
    )
    throttles = Throttles()
    assert all(throttles.connect(0, None) is None for _ in range(500))
    assert throttles.connect(0, None) is not None  # the 501st new connection in the same instant
    assert throttles.connect(0.002, None) is None  # 1/500 s later, one more
    assert all(throttles.management(0) is None for _ in range(5_000))
    assert throttles.management(0) is not None
