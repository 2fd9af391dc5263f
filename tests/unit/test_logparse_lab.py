"""kit.logparse reads back what the lab writes: lines made by the lab's own formatting functions.

kit.lab.lambda_logs and kit.lab.gateway_logs are what the lab's Lambda runtime and gateway hand to
CloudWatch Logs; kit.handler.app and kit.handler.seed are the handlers whose lines the kit looks for.
If one of them changes its wording, these tests say which reading broke.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from botocore.exceptions import ClientError

from kit import logparse as lp
from kit.handler import app
from kit.lab import gateway_config, gateway_events
from kit.lab import gateway_core as gw
from kit.lab import gateway_logs as gl
from kit.lab import lambda_logs as ll
from kit.lab.provision import ACCESS_LOG_FORMAT

LAMBDA = "/aws/lambda/chatgenius-websocket"
EXEC = "API-Gateway-Execution-Logs_a1b2c3d4e5/prod"
ACCESS = "/aws/apigateway/chatgenius-websocket-access"
RID = "8f507cfc-1a2b-4697-b07a-ac58fc914c95"
AT = datetime(2025, 8, 31, 12, 34, 56, 789000, tzinfo=UTC)
EVENTS = Path(__file__).resolve().parents[1] / "events"

CONNECTION = gateway_events.Connection(
    "BFHPhfCWIAMCKlQ=",
    1756643696000,
    "203.0.113.7",
    "Mozilla/5.0",
    "a1b2c3d4e5",
    "a1b2c3d4e5.example",
    "prod",
)
INTEGRATION = gateway_config.IntegrationConfig(
    "i1",
    "AWS_PROXY",
    "arn:aws:apigateway:us-east-2:lambda:path/2015-03-31/functions/"
    "arn:aws:lambda:us-east-2:123456789012:function:chatgenius-websocket/invocations",
)
REQUEST = "BFHPhFe3IAMF95g="


def parse_lines(lines: list[str], group: str) -> pd.DataFrame:
    events = [
        {"message": line, "logGroupName": group, "logStreamName": "s", "timestamp": 1756643696000 + i}
        for i, line in enumerate(lines)
    ]
    parsed = lp.parse(events)
    pd.testing.assert_frame_equal(parsed, lp.parse_lines_slow(events))
    return parsed


def only(parsed: pd.DataFrame, **expected: Any) -> None:
    assert len(parsed) == 1
    row = parsed.iloc[0]
    for name, value in expected.items():
        actual = None if pd.isna(row[name]) else row[name]
        assert actual == value, f"{name}: {actual!r} != {value!r}"


# ---------------------------------------------------------------------------------------------------------
# Lambda platform lines
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        pytest.param(
            ll.Report(RID, 15.74, 147, 128, 56, init_duration_ms=130.49),
            {"duration_ms": 15.74, "billed_ms": 147.0, "init_ms": 130.49, "status": None},
            id="cold",
        ),
        pytest.param(ll.Report(RID, 2.2, 3, 128, 38), {"duration_ms": 2.2, "init_ms": None}, id="warm"),
        pytest.param(
            ll.Report(RID, 3000.0, 3000, 128, 64, status="timeout"),
            {"status": "timeout", "error_type": None},
            id="timeout",
        ),
        pytest.param(
            ll.Report(RID, 98.71, 99, 512, 46, status="error", error_type=ll.IMPORT_MODULE_ERROR),
            {"status": "error", "error_type": "Runtime.ImportModuleError", "memory_mb": 512},
            id="error",
        ),
    ],
)
def test_report_line(report: ll.Report, expected: dict[str, Any]) -> None:
    parsed = parse_lines([ll.report_line(report)], LAMBDA)
    only(
        parsed,
        kind="report",
        request_id=RID,
        max_mem_mb=report.max_memory_used_mb,
        parse_error=None,
        **expected,
    )


def test_platform_lines_of_one_failed_cold_start() -> None:
    version = ll.runtime_version("python3.12")
    lines = [
        ll.init_start_line(version, ll.runtime_version_arn("us-east-2", version)),
        ll.init_report_line(98.7, "init", "error", ll.IMPORT_MODULE_ERROR),
        ll.start_line(RID, "$LATEST"),
        ll.text_error_message(ll.error_result("Unable to import module 'app'", ll.IMPORT_MODULE_ERROR, None)),
        ll.init_report_line(101.2, "invoke", "error", ll.IMPORT_MODULE_ERROR),
        ll.end_line(RID),
        ll.report_line(
            ll.Report(RID, 101.2, 102, 128, 40, status="error", error_type=ll.IMPORT_MODULE_ERROR)
        ),
    ]
    parsed = parse_lines(lines, LAMBDA)
    assert parsed["kind"].tolist() == [
        "init_start",
        "init_report",
        "start",
        "error",
        "init_report",
        "end",
        "report",
    ]
    assert parsed["request_id"].tolist() == [pd.NA, pd.NA, RID, RID, RID, RID, RID]
    assert parsed["error_type"].tolist()[3] == "Runtime.ImportModuleError"
    assert pd.isna(parsed.loc[0, "init_ms"])
    assert parsed.loc[1, "init_ms"] == 98.7
    assert parsed["parse_error"].isna().all()


def test_timeout_and_runtime_exit_lines() -> None:
    lines = [
        ll.timeout_line(AT, RID, 3.0),
        *ll.exit_error_lines(RID, ll.exit_reason(-9)),
        *ll.exit_error_lines(RID, ll.exit_reason(None)),
    ]
    parsed = parse_lines(lines, LAMBDA)
    assert parsed["kind"].tolist() == [
        "timeout",
        "runtime_exit",
        "runtime_exit",
        "runtime_exit",
        "runtime_exit",
    ]
    assert parsed["error_message"].tolist() == [
        "Task timed out after 3.00 seconds",
        "Runtime exited with error: signal: killed",
        pd.NA,
        "Runtime exited without providing a reason",
        pd.NA,
    ]
    assert parsed["error_type"].tolist()[2] == ll.EXIT_ERROR


@pytest.mark.parametrize("separator", [ll.ERROR_LINE_SEPARATOR, ll.STDOUT_ERROR_LINE_SEPARATOR])
def test_uncaught_error_with_nbsp_traceback(separator: str) -> None:
    error = ClientError(
        {"Error": {"Code": "ResourceNotFoundException", "Message": "Requested resource not found"}}, "PutItem"
    )
    try:
        raise error
    except ClientError as caught:
        import traceback

        frames = ll.stack_trace(traceback.extract_tb(caught.__traceback__))
    document = ll.error_result(str(error), "ClientError", frames, RID)
    parsed = parse_lines([ll.text_error_message(document, separator)], LAMBDA)
    only(
        parsed,
        kind="error",
        level="ERROR",
        error_type="ClientError",
        error_message="An error occurred (ResourceNotFoundException) when calling the PutItem operation: "
        "Requested resource not found",
        app_error_code="ResourceNotFoundException",
        aws_operation="PutItem",
    )


# ---------------------------------------------------------------------------------------------------------
# Application lines: the Python runtime's formatter, the handlers' own wording
# ---------------------------------------------------------------------------------------------------------


def runtime_text_line(level: int, message: str, *args: object, request_id: str = RID) -> str:
    record = logging.LogRecord("seed", level, "seed.py", 1, message, args or None, None)
    record.created = AT.timestamp()
    record.msecs = 789
    record.aws_request_id = request_id
    return ll.text_formatter().format(record)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.aws_request_id = RID
        self.records.append(record)


def handler_lines(event: dict[str, Any]) -> list[logging.LogRecord]:
    """Run the fixed handler on ``event`` (a path that needs no AWS) and collect its log records."""
    collect = _Collect()
    app.logger.addHandler(collect)
    try:
        context = type("Context", (), {"aws_request_id": RID})()
        app.handler(event, context)
    finally:
        app.logger.removeHandler(collect)
    return collect.records


def test_the_fixed_handlers_own_line_for_a_rejected_connect() -> None:
    event = json.loads((EVENTS / "connect_no_query.json").read_text())
    records = handler_lines(event)
    assert len(records) == 1
    text = ll.text_formatter().format(records[0])
    as_json = ll.JsonLogFormatter().format(records[0])
    for line in (text, as_json):
        parsed = parse_lines([line], LAMBDA)
        only(
            parsed,
            kind="app",
            level="WARNING",
            request_id=RID,
            route_key="$connect",
            event_type="CONNECT",
            connection_id=event["requestContext"]["connectionId"],
            apigw_request_id=event["requestContext"]["requestId"],
            app_outcome="rejected",
            integration_status=400,
            parse_error=None,
        )
        assert parsed.loc[0, "app_error_code"] == json.loads(records[0].getMessage())["error_code"]


def test_the_seeds_swallowed_error_line() -> None:
    error = ClientError(
        {
            "Error": {
                "Code": "AccessDeniedException",
                "Message": "User: arn:aws:sts::123456789012:assumed-role/chat-role/chat is not authorized to "
                "perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-2:123456789012:table/t",
            }
        },
        "PutItem",
    )
    # The seed's exact call: logger.info("Error handling WebSocket event: %s", exc)
    line = runtime_text_line(logging.INFO, "Error handling WebSocket event: %s", error)
    parsed = parse_lines([line], LAMBDA)
    only(
        parsed,
        kind="app",
        level="INFO",
        request_id=RID,
        app_outcome="error",
        app_error_code="AccessDeniedException",
        aws_operation="PutItem",
        error_message=str(error),
    )


def test_json_format_records() -> None:
    version = ll.runtime_version("python3.12")
    report = ll.Report(RID, 11.642, 186, 128, 67, init_duration_ms=174.055)
    lines = [
        ll.init_start_record(AT, version, ll.runtime_version_arn("us-east-2", version), "chat", "$LATEST"),
        ll.init_runtime_done_record(AT, "init", "success"),
        ll.init_report_record(AT, "init", "success", 173.778),
        ll.start_record(AT, RID, "$LATEST"),
        ll.runtime_done_record(
            AT, RID, status="error", duration_ms=11.185, produced_bytes=40, error_type="KeyError"
        ),
        ll.report_record(AT, report, "error"),
        ll.json_error_message(ll.error_result("'token'", "KeyError", [], RID), AT),
    ]
    parsed = parse_lines(lines, LAMBDA)
    assert parsed["kind"].tolist() == [
        "init_start",
        "platform_json",
        "init_report",
        "start",
        "end",
        "report",
        "error",
    ]
    assert parsed["request_id"].tolist()[3:] == [RID] * 4
    report_row = parsed.iloc[5]
    assert (report_row["duration_ms"], report_row["billed_ms"], report_row["init_ms"]) == (
        11.642,
        186.0,
        174.055,
    )
    assert parsed["status"].tolist()[4:6] == ["error", "error"]
    assert parsed["error_type"].tolist()[4:] == ["KeyError", pd.NA, "KeyError"]
    assert parsed["init_ms"].tolist()[2] == 173.778


# ---------------------------------------------------------------------------------------------------------
# API Gateway: execution-log and access-log lines of the lab gateway
# ---------------------------------------------------------------------------------------------------------


def gateway_lines(
    event_type: gateway_events.EventType,
    route_key: str,
    status: int,
    result: gateway_events.IntegrationResult,
    *,
    close: gw.CloseDecision | None = None,
    data_trace: bool = False,
) -> tuple[list[str], str, str]:
    context = gl.build_log_context(
        CONNECTION,
        event_type=event_type,
        route_key=route_key,
        request_id=REQUEST,
        request_time_ms=1756643696008,
        status=status,
        integration=INTEGRATION,
        result=result,
    )
    decision = gateway_config.RouteDecision(
        "integration", route_key, route_key, gateway_config.RouteConfig(route_key, "i1"), INTEGRATION
    )
    execution = gl.execution_log_lines(
        context,
        decision=decision,
        result=result,
        close=close,
        data_trace=data_trace,
        request_body=json.dumps({"requestContext": {"connectionId": CONNECTION.connection_id}})
        + " "
        + "x" * 1500,
        response_body='{"statusCode": 200}',
    )
    return (
        execution,
        gl.access_log_line(ACCESS_LOG_FORMAT, context),
        gl.access_log_line(gl.DEFAULT_ACCESS_LOG_FORMAT, context),
    )


CONNECT_CASES = [
    pytest.param(
        200,
        gateway_events.IntegrationResult("response", 200, integration_request_id=RID, latency_ms=42),
        {"http_status": 200, "integration_status": 200, "integration_request_id": RID},
        {"http_status": 200, "integration_status": 200, "integration_request_id": RID},
        id="connected",
    ),
    pytest.param(
        502,
        gateway_events.IntegrationResult(
            "function-error", error_message="boom", integration_request_id=RID, latency_ms=40
        ),
        {
            "http_status": 502,
            "integration_status": 200,
            "integration_request_id": RID,
            "error_message": "boom",
        },
        {
            "http_status": 502,
            "integration_status": None,
            "integration_request_id": RID,
            "error_message": "boom",
        },
        id="function error",
    ),
    pytest.param(
        500,
        gateway_events.IntegrationResult(
            "invoke-error", error_message="Invalid permissions on Lambda function"
        ),
        {"http_status": 500, "integration_status": None, "integration_request_id": None},
        {"http_status": 500, "integration_request_id": None},
        id="invoke error",
    ),
    pytest.param(
        504,
        gateway_events.IntegrationResult("timeout", latency_ms=29000),
        {"http_status": 504, "error_message": "a timeout error"},
        {"http_status": 504, "error_message": "timeout"},
        id="integration timeout",
    ),
    pytest.param(
        502,
        gateway_events.IntegrationResult(
            "response",
            None,
            error_message=gateway_events.MALFORMED_PROXY_RESPONSE,
            integration_request_id=RID,
        ),
        {"http_status": 502, "integration_status": 200, "integration_request_id": RID},
        {"http_status": 502, "error_message": gateway_events.MALFORMED_PROXY_RESPONSE},
        id="malformed proxy response",
    ),
    pytest.param(
        200,
        gateway_events.NOT_INVOKED,
        {"http_status": 200, "integration_status": None, "integration_request_id": None},
        {"http_status": 200, "integration_status": None, "integration_request_id": None},
        id="no integration ran",
    ),
]


def first_values(parsed: pd.DataFrame) -> dict[str, Any]:
    """Per column, the first non-null value of the request's lines (what lifecycle joins use)."""
    return {name: (None if parsed[name].isna().all() else parsed[name].dropna().iloc[0]) for name in parsed}


@pytest.mark.parametrize(("status", "result", "from_execution", "from_access"), CONNECT_CASES)
def test_connect_request_lines(
    status: int,
    result: gateway_events.IntegrationResult,
    from_execution: dict[str, Any],
    from_access: dict[str, Any],
) -> None:
    execution, access, default_access = gateway_lines("CONNECT", "$connect", status, result)
    parsed = parse_lines(execution, EXEC)
    assert parsed["kind"].eq("exec_line").all()
    assert parsed["apigw_request_id"].eq(REQUEST).all()
    values = first_values(parsed)
    assert values["connection_id"] == CONNECTION.connection_id
    assert values["route_key"] == "$connect"
    assert set(parsed["event_type"].dropna()) == {"CONNECT"}
    for name, value in from_execution.items():
        assert values[name] == value, name
    for line in (access, default_access):
        access_row = first_values(parse_lines([line], ACCESS))
        assert access_row["kind"] == "access"
        assert (access_row["apigw_request_id"], access_row["connection_id"]) == (
            REQUEST,
            CONNECTION.connection_id,
        )
        assert access_row["event_type"] == "CONNECT"
        for name, value in from_access.items():
            if name == "error_message" and value is not None:
                assert value in (access_row[name] or ""), name
            else:
                assert access_row[name] == value, name


@pytest.mark.parametrize(
    ("close", "expected_code", "expected_reason"),
    [
        (gw.GOING_AWAY, 1001, "Going away"),
        (gw.CLOSED_BY_DELETE, 1000, "Connection Closed Normally"),
        (None, None, None),
    ],
)
def test_disconnect_lines(
    close: gw.CloseDecision | None, expected_code: int | None, expected_reason: str | None
) -> None:
    result = gateway_events.IntegrationResult("response", 200, integration_request_id=RID, latency_ms=5)
    execution, access, _ = gateway_lines("DISCONNECT", "$disconnect", 200, result, close=close)
    values = first_values(parse_lines(execution, EXEC))
    assert values["event_type"] == "DISCONNECT"
    assert values["disconnect_code"] == expected_code
    assert values["disconnect_reason"] == expected_reason
    assert values["connection_id"] == CONNECTION.connection_id
    assert first_values(parse_lines([access], ACCESS))["event_type"] == "DISCONNECT"


def test_message_lines_and_truncated_data_trace() -> None:
    result = gateway_events.IntegrationResult("response", 200, integration_request_id=RID, latency_ms=5)
    execution, _, _ = gateway_lines("MESSAGE", "typing", 200, result, data_trace=True)
    assert any(line.endswith(gl.TRUNCATED_MARKER) for line in execution)
    parsed = parse_lines(execution, EXEC)
    assert parsed["parse_error"].isna().all()
    assert set(parsed["event_type"].dropna()) == {"MESSAGE"}
    assert set(parsed["connection_id"].dropna()) == {CONNECTION.connection_id}
    assert parsed["http_status"].dropna().tolist() == [200]
