"""The recorded-shape events in ``tests/events`` and how the fixed handler reads them.

The fixtures follow what API Gateway really sends (anonymised): no ``queryStringParameters`` key when the URL
has none, no headers on MESSAGE, the fixed four headers on DISCONNECT, null-valued keys in old captures. These
tests pin those shapes so a later "tidy-up" of a fixture cannot hide the bugs they exist to expose.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kit.handler import app

EVENTS = Path(__file__).resolve().parents[1] / "events"
AWS_ID = re.compile(r"[A-Za-z0-9_-]{15}=")
CLF = "%d/%b/%Y:%H:%M:%S %z"
ALL_EVENTS = sorted(path.name for path in EVENTS.glob("*.json"))
CONNECT_EVENTS = ["connect_with_query.json", "connect_no_query.json", "connect_null_fields.json"]
MESSAGE_EVENTS = ["message.json", "presence.json", "typing.json"]


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def test_every_expected_fixture_exists() -> None:
    assert set(CONNECT_EVENTS + MESSAGE_EVENTS + ["disconnect.json"]) <= set(ALL_EVENTS)


@pytest.mark.parametrize("name", ALL_EVENTS)
def test_request_context_has_the_fields_real_captures_have(name: str) -> None:
    context = load(name)["requestContext"]
    for key in ("routeKey", "eventType", "extendedRequestId", "requestTime", "messageDirection", "stage"):
        assert isinstance(context[key], str), key
    for key in ("connectedAt", "requestTimeEpoch"):
        assert isinstance(context[key], int), key
    assert AWS_ID.fullmatch(context["connectionId"])
    assert AWS_ID.fullmatch(context["requestId"])
    assert context["requestId"] == context["extendedRequestId"]
    assert context["messageDirection"] == "IN"
    assert context["requestTimeEpoch"] >= context["connectedAt"]
    request_time = datetime.strptime(context["requestTime"], CLF)
    assert int(request_time.timestamp()) == context["requestTimeEpoch"] // 1000
    assert request_time.tzinfo is not None and request_time.utcoffset() == UTC.utcoffset(None)
    assert context["domainName"].startswith(context["apiId"] + ".execute-api.")
    assert "sourceIp" in context["identity"]
    # Fields only synthetic fixtures have.
    assert not {"accountId", "resourceId", "httpMethod", "path", "status", "error"} & set(context)


@pytest.mark.parametrize("name", CONNECT_EVENTS)
def test_connect_events_have_headers_and_no_body(name: str) -> None:
    event = load(name)
    assert event["requestContext"]["eventType"] == "CONNECT"
    assert event["requestContext"]["routeKey"] == "$connect"
    assert "body" not in event
    assert event["headers"]["Sec-WebSocket-Version"] == "13"
    assert event["multiValueHeaders"] == {key: [value] for key, value in event["headers"].items()}
    assert event["headers"]["X-Forwarded-For"] == event["requestContext"]["identity"]["sourceIp"]
    assert event["headers"]["Host"] == event["requestContext"]["domainName"]


def test_a_connect_without_query_string_has_no_query_keys_at_all() -> None:
    event = load("connect_no_query.json")
    assert "queryStringParameters" not in event
    assert "multiValueQueryStringParameters" not in event
    assert "messageId" not in event["requestContext"]
    assert event["requestContext"]["identity"] == {"sourceIp": event["headers"]["X-Forwarded-For"]}


def test_the_old_capture_carries_null_valued_keys() -> None:
    context = load("connect_null_fields.json")["requestContext"]
    assert "messageId" in context and context["messageId"] is None
    assert "disconnectStatusCode" in context and context["disconnectStatusCode"] is None


@pytest.mark.parametrize("name", MESSAGE_EVENTS)
def test_message_events_have_a_string_body_and_no_headers_or_query(name: str) -> None:
    event = load(name)
    context = event["requestContext"]
    assert context["eventType"] == "MESSAGE"
    assert AWS_ID.fullmatch(context["messageId"])
    assert not {"headers", "multiValueHeaders", "queryStringParameters"} & set(event)
    assert isinstance(event["body"], str)
    assert json.loads(event["body"])["action"] == context["routeKey"]


def test_disconnect_has_the_four_fixed_headers_and_a_close_code() -> None:
    event = load("disconnect.json")
    context = event["requestContext"]
    assert event["headers"] == {
        "Host": context["domainName"],
        "x-api-key": "",
        "X-Forwarded-For": "",
        "x-restapi": "",
    }
    assert (context["disconnectStatusCode"], context["disconnectReason"]) == (1001, "")
    assert not {"body", "queryStringParameters", "messageId"} & set(event) | ({"messageId"} & set(context))


@pytest.mark.parametrize("name", ALL_EVENTS)
def test_parse_request_reads_every_fixture(name: str) -> None:
    event = load(name)
    request = app.parse_request(event)
    assert request.route_key == event["requestContext"]["routeKey"]
    assert request.connection_id == event["requestContext"]["connectionId"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("connect_with_query.json", ("ada@example.com", "ws-general")),
        ("connect_null_fields.json", ("grace@example.org", "ws-design")),
    ],
)
def test_connect_parameters_from_fixtures(name: str, expected: tuple[str, str]) -> None:
    assert app.parse_connect_parameters(load(name)) == expected


def test_connect_without_query_string_is_a_400_not_a_crash() -> None:
    with pytest.raises(app.HandlerError) as caught:
        app.parse_connect_parameters(load("connect_no_query.json"))
    assert (caught.value.status, caught.value.code) == (400, "MissingParameter")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("message.json", {"message": "hello team"}),
        ("presence.json", {"status": "online"}),
        ("typing.json", {"isTyping": True}),
    ],
)
def test_broadcast_fields_from_fixtures(name: str, expected: dict[str, object]) -> None:
    event = load(name)
    assert app.broadcast_fields(event, event["requestContext"]["routeKey"]) == expected


def test_reply_endpoint_comes_from_the_event_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI", raising=False)
    context = load("message.json")["requestContext"]
    settings = app._config({"TABLE_NAME": "t"})
    assert app.management_endpoint(settings, context) == f"https://{context['domainName']}/prod"
    configured = app._config({"TABLE_NAME": "t", "MANAGEMENT_ENDPOINT": "http://127.0.0.1:9/prod"})
    assert app.management_endpoint(configured, context) == "http://127.0.0.1:9/prod"
    monkeypatch.setenv("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI", "http://127.0.0.1:9/prod")
    assert app.management_endpoint(settings, context) is None  # botocore applies its own override


def test_utc_timestamp_looks_like_javascripts_to_iso_string() -> None:
    moment = datetime(2024, 11, 11, 11, 35, 24, 71_999, tzinfo=UTC)
    assert app.utc_timestamp(moment) == "2024-11-11T11:35:24.071Z"


@pytest.mark.parametrize(
    ("domain_name", "environment", "expected"),
    [
        ("k7d2xq9wme.execute-api.us-east-2.amazonaws.com", {"AWS_REGION": "eu-west-1"}, "us-east-2"),
        ("k7d2xq9wme.execute-api.us-gov-west-1.amazonaws.com", {}, "us-gov-west-1"),
        ("ws.chat.example.com", {"AWS_REGION": "eu-west-1"}, "eu-west-1"),
        ("ws.chat.example.com", {"AWS_DEFAULT_REGION": "ap-south-1"}, "ap-south-1"),
        (None, {}, None),
    ],
)
def test_management_region_prefers_the_apis_own_host(
    monkeypatch: pytest.MonkeyPatch,
    domain_name: str | None,
    environment: dict[str, str],
    expected: str | None,
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert app.management_region({"domainName": domain_name}) == expected
