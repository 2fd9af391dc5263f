"""Throttling on a running lab (issue 14 item 3), through plain boto3 calls: the stage's route throttling
(read live, no deployment needed) refuses handshakes and messages, settings out of range are refused by the
API, and the account's quotas refuse new connections and @connections calls; a burst of connections beyond
the account's quota is diagnosed ``throttled``, with nothing in the stack to change.

One test per row of docs/fidelity.md's "Throttling" table, each docstring naming its row (the row check is
test_fidelity.py's). The stage's rows share one healthy lab (a class) and put its settings back; the
account's rows share a lab of their own (another class) whose quotas are lowered through
``Lab(account_limits=...)``, so a few requests reach them (each row draws on its own bucket: new connections,
or requests).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import websocket
from botocore.exceptions import ClientError

from kit import fix
from kit.diagnose import ranking
from kit.diagnose.reading import read_evidence
from kit.lab.lab import Lab
from kit.lab.scenarios import ClientPlan
from kit.throttling import AccountLimits

from .labclient import (
    EmptyDynamoDB,
    access_log,
    close_quietly,
    execution_group,
    handshake_status,
    info,
    log_messages,
    management_client,
    now_ms,
    open_socket,
    query,
    recv_text,
    unique_user,
    wait_for_count,
)
from .test_diagnose_lab import probe_plan

pytestmark = pytest.mark.integration

TOO_MANY_REQUESTS_FRAME = '{"message": "Too Many Requests", "connectionId":'


# The account's quotas, lowered for TestAccountQuotas: 2 new connections, then one each 20 s; 3 requests,
# then one each 20 s.
LOW_QUOTAS = AccountLimits(
    new_connections_per_s=0.05, new_connections_burst=2, requests_per_s=0.05, requests_burst=3
)


@pytest.fixture(scope="class")
def lab(empty_dynamodb: EmptyDynamoDB) -> Iterator[Lab]:
    with Lab("healthy", write_lab_file=False, dynamodb=empty_dynamodb()) as running:
        yield running


@pytest.fixture(scope="class")
def quota_lab(empty_dynamodb: EmptyDynamoDB) -> Iterator[Lab]:
    with Lab(
        "healthy", write_lab_file=False, dynamodb=empty_dynamodb(), account_limits=LOW_QUOTAS
    ) as running:
        yield running


@contextlib.contextmanager
def stage_updated(lab: Lab, **settings: Any) -> Iterator[None]:
    """``update_stage(**settings)`` for the block (no deployment: stage settings are live); put back after."""
    apigw = lab.target().client("apigatewayv2")
    names = {"ApiId": info(lab).api_id, "StageName": info(lab).stage}
    before = apigw.get_stage(**names)
    apigw.update_stage(**names, **settings)
    try:
        yield
    finally:
        apigw.update_stage(
            **names,
            DefaultRouteSettings=before.get("DefaultRouteSettings") or {},
            RouteSettings=before.get("RouteSettings") or {},
        )


def _handshake(lab: Lab) -> tuple[int, str]:
    """The handshake's status and body (101 and "" when accepted; the socket is closed again)."""
    try:
        ws = open_socket(lab, query(unique_user(), "ws-1"))
    except websocket.WebSocketBadStatusException as exc:
        body = exc.resp_body.decode() if isinstance(exc.resp_body, bytes) else str(exc.resp_body or "")
        return int(exc.status_code), body
    ws.close()
    return 101, ""


class TestStageThrottling:
    """The stage's route throttling, set with UpdateStage and read live."""

    def test_route_throttling_at_zero_refuses_every_handshake(self, lab: Lab) -> None:
        """Row: stage route throttling 0/0 on $connect."""
        started = now_ms()
        zero = {"ThrottlingBurstLimit": 0, "ThrottlingRateLimit": 0.0}
        with stage_updated(lab, RouteSettings={"$connect": zero}):
            assert _handshake(lab) == (429, '{"message": "Too Many Requests"}')
            assert _handshake(lab)[0] == 429
        assert handshake_status(lab, query(unique_user(), "ws-1")) == 101  # settings put back: live again
        connects = [line for line in access_log(lab, started) if line["eventType"] == "CONNECT"]
        assert [line["status"] for line in connects] == ["429", "429", "200"]
        assert connects[0]["responseType"] == "THROTTLED" and connects[0]["integrationRequestId"] == "-"
        execution = log_messages(lab, execution_group(lab), started)
        throttled = [line for line in execution if "Execution failed: throttled by" in line]
        assert len(throttled) == 2
        assert "route $connect: rate 0 per second, burst 0 (RouteSettings[$connect])" in throttled[0]
        assert not any(
            "Endpoint request URI" in line and connects[0]["requestId"] in line for line in execution
        )

    def test_a_message_beyond_its_route_limit_gets_the_too_many_requests_frame(self, lab: Lab) -> None:
        """Row: stage route throttling of messages."""
        started = now_ms()
        one = {"ThrottlingBurstLimit": 1, "ThrottlingRateLimit": 0.01}
        ws = open_socket(lab, query(unique_user(), "ws-throttle"))
        try:
            with stage_updated(lab, RouteSettings={"typing": one}):
                ws.send(json.dumps({"action": "typing", "workspaceId": "ws-throttle"}))
                ws.send(json.dumps({"action": "typing", "workspaceId": "ws-throttle"}))
                frame = recv_text(ws, timeout=5)
                assert frame is not None and frame.startswith(TOO_MANY_REQUESTS_FRAME), frame
                assert ws.connected  # the socket stays open
                lines = wait_for_count(
                    lambda: [line for line in access_log(lab, started) if line["eventType"] == "MESSAGE"], 2
                )
        finally:
            close_quietly(ws)
        assert sorted(line["status"] for line in lines) == ["200", "429"]

    def test_throttling_settings_out_of_range_are_refused(self, lab: Lab) -> None:
        """Row: throttling settings out of range."""
        apigw = lab.target().client("apigatewayv2")
        names = {"ApiId": info(lab).api_id, "StageName": info(lab).stage}
        before = apigw.get_stage(**names)
        for settings in (
            {"DefaultRouteSettings": {"ThrottlingBurstLimit": -1}},
            {"RouteSettings": {"$connect": {"ThrottlingRateLimit": 10_001.0}}},
        ):
            with pytest.raises(ClientError) as refused:
                apigw.update_stage(**names, **settings)
            assert refused.value.response["Error"]["Code"] == "BadRequestException"
            assert "from 0 to" in refused.value.response["Error"]["Message"]
        with pytest.raises(ClientError) as refused:
            apigw.create_stage(
                ApiId=info(lab).api_id, StageName="other", DefaultRouteSettings={"ThrottlingBurstLimit": 5001}
            )
        assert refused.value.response["Error"]["Code"] == "BadRequestException"
        after = apigw.get_stage(**names)
        for name in ("DefaultRouteSettings", "RouteSettings"):
            assert after.get(name) == before.get(name), name  # nothing of a refused request was kept
        assert "other" not in [
            stage["StageName"] for stage in apigw.get_stages(ApiId=info(lab).api_id)["Items"]
        ]


class TestAccountQuotas:
    """The account's quotas (:data:`LOW_QUOTAS`)."""

    def test_new_connections_beyond_the_account_quota_get_429(self, quota_lab: Lab) -> None:
        """Row: account quota of new connections."""
        started = now_ms()
        assert [_handshake(quota_lab)[0] for _ in range(3)] == [101, 101, 429]
        connects = [line for line in access_log(quota_lab, started) if line["eventType"] == "CONNECT"]
        assert [line["status"] for line in connects] == ["200", "200", "429"]
        execution = log_messages(quota_lab, execution_group(quota_lab), started)
        assert any(
            "throttled by the account's quota of new connections: 0.05 per second, burst 2" in line
            for line in execution
        )
        # A reconnect storm against the account's quota, diagnosed: throttled, with no stage limit to change.
        since = datetime.fromtimestamp(started / 1000, UTC)
        evidence = read_evidence(quota_lab.target(), since=since, probe_plan=probe_plan(ClientPlan()))
        diagnosis = ranking.diagnose(evidence)
        summary = ranking.summary_text(diagnosis)
        assert diagnosis.root_cause["id"] == "throttled", summary
        assert "the stage's limit for $connect: none set (the account's quota" in " ".join(
            diagnosis.root_cause["evidence"]
        ), summary
        planned = fix.plan(diagnosis, evidence)
        assert not planned.applicable and "account's quota of new connections" in planned.advice

    def test_connections_calls_beyond_the_request_quota_get_limit_exceeded(self, quota_lab: Lab) -> None:
        """Row: @connections throttled."""
        management = management_client(quota_lab)
        never_seen = "AAAAAAAAAAAAAAA="
        codes = []
        for _ in range(4):
            with pytest.raises(ClientError) as answered:
                management.get_connection(ConnectionId=never_seen)
            codes.append(
                (
                    answered.value.response["Error"]["Code"],
                    answered.value.response["ResponseMetadata"]["HTTPStatusCode"],
                )
            )
        assert codes == [("GoneException", 410)] * 3 + [("LimitExceededException", 429)]
