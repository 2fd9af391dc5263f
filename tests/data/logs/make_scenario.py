"""Write scenario-{lambda,execution,access}.json next to this file, with the lab's own log formatters.

Run from the repository root when the lab's log formats change: ``.venv/bin/python tests/data/logs/make_scenario.py``.
The scenario (see README.md): A stored and later closed with 1001, B the seed swallowing AccessDenied at
INFO, C an uncaught ResourceNotFoundException turned into a 502; two Lambda streams that interleave.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from kit.lab import gateway_config, gateway_events
from kit.lab import gateway_core as gc
from kit.lab import gateway_logs as gl
from kit.lab import lambda_logs as ll
from kit.lab.provision import ACCESS_LOG_FORMAT

HERE = Path(__file__).resolve().parent
API, REGION, FUNCTION = "a1b2c3d4e5", "us-east-2", "chatgenius-websocket"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:{FUNCTION}"
INTEGRATION = gateway_config.IntegrationConfig(
    "int1",
    "AWS_PROXY",
    f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{FUNCTION_ARN}/invocations",
)
T0 = 1756643696000  # 2025-08-31T12:34:56Z
S1 = "2025/08/31/[$LATEST]4f1c2b7a9e8d4c6b8a1f0e2d3c4b5a69"
S2 = "2025/08/31/[$LATEST]9a8b7c6d5e4f40312a1b2c3d4e5f6a7b"
EXEC_STREAM = "e369853df766fa44e1ed0ff613f563bd"
ACCESS_STREAM = "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a"
R1, R2, R3, R4 = (f"{d * 8}-aaaa-4bbb-8ccc-00000000000{d}" for d in "1234")
A, B, C = "AbCdEfGhIjKlMnO=", "BbCdEfGhIjKlMnQ=", "CbCdEfGhIjKlMnS="
VERSION = "python:3.12.v50"

Events = list[tuple[int, str]]


def route(key: str) -> gateway_config.RouteDecision:
    return gateway_config.RouteDecision(
        "integration", key, key, gateway_config.RouteConfig(key, "int1"), INTEGRATION
    )


def connection(connection_id: str, at: int) -> gateway_events.Connection:
    return gateway_events.Connection(
        connection_id,
        at,
        "203.0.113.7",
        "Mozilla/5.0",
        API,
        f"{API}.execute-api.{REGION}.amazonaws.com",
        "prod",
    )


def app_line(at: int, level: int, request_id: str, message: str) -> tuple[int, str]:
    record = logging.LogRecord("kit.handler.app", level, "app.py", 1, message, None, None)
    record.created, record.msecs, record.aws_request_id = at / 1000, at % 1000, request_id
    return at, ll.text_formatter().format(record)


def gateway(
    execution: Events,
    access: Events,
    client: gateway_events.Connection,
    event_type: gateway_events.EventType,
    route_key: str,
    request_id: str,
    at: int,
    status: int,
    result: gateway_events.IntegrationResult,
    close: gc.CloseDecision | None = None,
) -> None:
    context = gl.build_log_context(
        client,
        event_type=event_type,
        route_key=route_key,
        request_id=request_id,
        request_time_ms=at,
        status=status,
        integration=INTEGRATION,
        result=result,
    )
    lines = gl.execution_log_lines(context, decision=route(route_key), result=result, close=close)
    execution.extend((at + index, line) for index, line in enumerate(lines))
    access.append((at + 60, gl.access_log_line(ACCESS_LOG_FORMAT, context)))


def scenario() -> tuple[dict[str, Events], Events, Events]:
    s1: Events = []
    s2: Events = []
    execution: Events = []
    access: Events = []
    arn = ll.runtime_version_arn(REGION, VERSION)
    stored = {
        "route": "$connect",
        "connection_id": A,
        "request_id": R1,
        "apigw_request_id": "AbCdEqZ1IjKlMnO=",
    }

    # A: cold start in S1, the fixed handler stores the connection.
    t = T0 + 5
    s1 += [(t, ll.init_start_line(VERSION, arn)), (t + 120, ll.start_line(R1, "$LATEST"))]
    s1.append(
        app_line(
            t + 140,
            logging.WARNING,
            R1,
            json.dumps(
                {
                    **stored,
                    "outcome": "stored",
                    "status": 200,
                    "error_code": None,
                    "detail": None,
                    "workspace_id": "w1",
                    "user_hash": "5f1d2c3b4a69",
                    "table": "chatgenius-connections",
                    "auth_mode": "email",
                }
            ),
        )
    )
    s1 += [(t + 150, ll.end_line(R1)), (t + 151, ll.report_line(ll.Report(R1, 25.31, 143, 128, 78, 117.4)))]
    ok = gateway_events.IntegrationResult("response", status=200, integration_request_id=R1, latency_ms=160)
    gateway(execution, access, connection(A, T0), "CONNECT", "$connect", "AbCdEqZ1IjKlMnO=", T0, 200, ok)

    # B: the seed (log level lowered to INFO) in a new environment: AccessDenied swallowed, still 200.
    t = T0 + 2005
    s2 += [(t, ll.init_start_line(VERSION, arn)), (t + 110, ll.start_line(R2, "$LATEST"))]
    s2.append(app_line(t + 115, logging.INFO, R2, f"Connection attempt {B} for workspace w1"))
    s2.append(
        app_line(
            t + 190,
            logging.INFO,
            R2,
            "Error handling WebSocket event: An error occurred (AccessDeniedException) when calling the PutItem "
            "operation: User: arn:aws:sts::123456789012:assumed-role/chatgenius-lambda-role/chatgenius-websocket "
            "is not authorized to perform: dynamodb:PutItem on resource: "
            "arn:aws:dynamodb:us-east-2:123456789012:table/chatgenius-connections because no identity-based "
            "policy allows the dynamodb:PutItem action",
        )
    )
    s2 += [(t + 195, ll.end_line(R2)), (t + 196, ll.report_line(ll.Report(R2, 80.12, 191, 128, 80, 110.2)))]
    ok = gateway_events.IntegrationResult("response", status=200, integration_request_id=R2, latency_ms=200)
    gateway(
        execution,
        access,
        connection(B, T0 + 2000),
        "CONNECT",
        "$connect",
        "BbCdEqZ2IjKlMnQ=",
        T0 + 2000,
        200,
        ok,
    )

    # C: warm S1, at the same time as B: an uncaught ClientError, so a function error and a 502.
    t = T0 + 2100
    error = ll.error_result(
        "An error occurred (ResourceNotFoundException) when calling the PutItem operation: "
        "Requested resource not found",
        "ClientError",
        ['  File "/var/task/seed.py", line 52, in _connect\n    _table().put_item(Item=item)\n'],
        R3,
    )
    s1 += [(t, ll.start_line(R3, "$LATEST")), (t + 40, ll.text_error_message(error))]
    s1 += [(t + 45, ll.end_line(R3)), (t + 46, ll.report_line(ll.Report(R3, 44.87, 45, 128, 79)))]
    failed = gateway_events.IntegrationResult(
        "function-error", error_message=error["errorMessage"], integration_request_id=R3, latency_ms=140
    )
    gateway(
        execution,
        access,
        connection(C, T0 + 2010),
        "CONNECT",
        "$connect",
        "CbCdEqZ3IjKlMnS=",
        T0 + 2010,
        502,
        failed,
    )

    # A disconnects (1001 Going away); the fixed handler deletes it.
    t = T0 + 60000
    s1.append((t + 5, ll.start_line(R4, "$LATEST")))
    gone: dict[str, object] = {
        **stored,
        "route": "$disconnect",
        "request_id": R4,
        "apigw_request_id": "AbCdEqZ4IjKlMnO=",
        "outcome": "deleted",
        "status": 200,
        "error_code": None,
        "detail": None,
        "table": "chatgenius-connections",
    }
    s1.append(app_line(t + 20, logging.INFO, R4, json.dumps({**gone, "disconnect_status_code": 1001})))
    s1 += [(t + 25, ll.end_line(R4)), (t + 26, ll.report_line(ll.Report(R4, 12.5, 13, 128, 79)))]
    ok = gateway_events.IntegrationResult("response", status=200, integration_request_id=R4, latency_ms=30)
    gateway(
        execution,
        access,
        connection(A, T0),
        "DISCONNECT",
        "$disconnect",
        "AbCdEqZ4IjKlMnO=",
        t,
        200,
        ok,
        gc.GOING_AWAY,
    )
    return {S1: s1, S2: s2}, execution, access


def export(streams: dict[str, Events], path: Path) -> None:
    """Write ``streams`` as `aws logs filter-log-events` output: interleaved by time, 1.5 s ingestion lag."""
    rows = sorted((at, stream, message) for stream, lines in streams.items() for at, message in lines)
    events = [
        {
            "logStreamName": stream,
            "timestamp": at,
            "message": message,
            "ingestionTime": at + 1500,
            "eventId": str(38 * 10**54 + at * 1000 + index),
        }
        for index, (at, stream, message) in enumerate(rows)
    ]
    path.write_text(
        json.dumps({"events": events, "searchedLogStreams": []}, indent=2, ensure_ascii=False) + "\n"
    )


def main() -> None:
    logging.Formatter.converter = time.gmtime  # as the Python runtime does
    lambda_streams, execution, access = scenario()
    export(lambda_streams, HERE / "scenario-lambda.json")
    export({EXEC_STREAM: execution}, HERE / "scenario-execution.json")
    export({ACCESS_STREAM: access}, HERE / "scenario-access.json")
    print(f"wrote {HERE}/scenario-*.json at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
