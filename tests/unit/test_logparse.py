"""kit.logparse.parse, one line at a time: every documented format, and the odd lines real logs contain.

Each case is one CloudWatch event; the test checks every parsed column (a column not named in the case
must be null) and that the per-line reference parser reads the line the same way. Line shapes are written
from the research notes on Lambda and API Gateway log formats; lines the lab itself writes are covered in
test_logparse_lab.py.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from kit import logparse as lp
from kit.errors import ConfigurationError
from kit.logparse import patterns

LAMBDA = "/aws/lambda/chatgenius-websocket"
EXEC = "API-Gateway-Execution-Logs_a1b2c3d4e5/prod"
ACCESS = "/aws/apigateway/chatgenius-websocket-access"
STREAM = "2025/08/31/[$LATEST]4f1c2b7a9e8d4c6b8a1f0e2d3c4b5a69"
RID = "8f507cfc-1a2b-4697-b07a-ac58fc914c95"
CID = "AbCdEfGhIjKlMnO="
APIGW_RID = "AbCdEqZ1IjKlMnO="
NBSP = "\u00a0"
T0 = 1756643696789

PARSED = [name for name in lp.LOG_COLUMNS if name not in ("log_group", "log_stream", "event_id", "message")]
PARSED = [name for name in PARSED if name not in ("ts", "ingest_ts", "lag_ms")]

ACCESS_DENIED_GET = (
    "An error occurred (AccessDeniedException) when calling the GetItem operation: User: "
    "arn:aws:sts::123456789012:assumed-role/chat-role/chat is not authorized to perform: dynamodb:GetItem "
    "on resource: arn:aws:dynamodb:us-east-2:123456789012:table/chatgenius-connections"
)
ACCESS_DENIED_PUT = (
    "An error occurred (AccessDeniedException) when calling the PutItem operation: User: "
    "arn:aws:sts::123456789012:assumed-role/chat-role/chat is not authorized to perform: dynamodb:PutItem "
    "on resource: arn:aws:dynamodb:us-east-2:123456789012:table/chatgenius-connections because no "
    "identity-based policy allows the dynamodb:PutItem action"
)
APP_STORED = {
    "route": "$connect",
    "connection_id": CID,
    "request_id": RID,
    "apigw_request_id": APIGW_RID,
    "outcome": "stored",
    "status": 200,
    "error_code": None,
    "detail": None,
    "workspace_id": "w1",
    "user_hash": "5f1d2c3b4a69",
    "table": "chatgenius-connections",
}
APP_DENIED = {
    **APP_STORED,
    "outcome": "error",
    "status": 500,
    "error_code": "AccessDeniedException",
    "detail": "DynamoDB PutItem on table chatgenius-connections failed with AccessDeniedException.",
    "operation": "PutItem",
}
CONNECT_APP = {
    "route_key": "$connect",
    "event_type": "CONNECT",
    "connection_id": CID,
    "apigw_request_id": APIGW_RID,
    "request_id": RID,
}


def parse_one(message: str | None, group: str | None = LAMBDA) -> dict[str, Any]:
    """The parsed columns of one event, nulls as None; also checks the reference parser agrees."""
    events = [
        {
            "message": message,
            "logGroupName": group,
            "logStreamName": STREAM,
            "timestamp": T0,
            "ingestionTime": T0 + 1500,
            "eventId": "1",
        }
    ]
    fast = lp.parse(events)
    pd.testing.assert_frame_equal(fast, lp.parse_lines_slow(events))
    assert len(fast) == 1
    row = fast.iloc[0]
    return {name: (None if pd.isna(row[name]) else row[name]) for name in PARSED}


def expect(source: str, kind: str, **fields: Any) -> dict[str, Any]:
    expected: dict[str, Any] = dict.fromkeys(PARSED)
    expected.update(source=source, kind=kind, **fields)
    return expected


def case(message: str | None, expected: dict[str, Any], id: str, group: str | None = LAMBDA) -> Any:
    return pytest.param(group, message, expected, id=id)


LAMBDA_TEXT_PLATFORM = [
    case(
        "INIT_START Runtime Version: python:3.12.v18\tRuntime Version ARN: "
        "arn:aws:lambda:us-east-1::runtime:" + "ab" * 32 + "\n",
        expect("lambda", "init_start"),
        "INIT_START",
    ),
    case(f"START RequestId: {RID} Version: $LATEST\n", expect("lambda", "start", request_id=RID), "START"),
    case(
        f"START RequestId: {RID} Version: 7\n", expect("lambda", "start", request_id=RID), "START version 7"
    ),
    case(f"END RequestId: {RID}\n", expect("lambda", "end", request_id=RID), "END"),
    case(
        f"REPORT RequestId: {RID}\tDuration: 15.74 ms\tBilled Duration: 147 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 56 MB\tInit Duration: 130.49 ms\t\n"
        "XRAY TraceId: 1-6ac7d63f-2b1c3d4e5f60718293a4b5c6\tSegmentId: 7c4eb6a6d56f2a27\tSampled: true\n",
        expect(
            "lambda",
            "report",
            request_id=RID,
            duration_ms=15.74,
            billed_ms=147.0,
            memory_mb=128,
            max_mem_mb=56,
            init_ms=130.49,
        ),
        "REPORT cold start with the XRAY tail (AWS documentation example)",
    ),
    case(
        f"REPORT RequestId: {RID}  Duration: 2.20 ms  Billed Duration: 3 ms  Memory Size: 128 MB  "
        "Max Memory Used: 38 MB",
        expect(
            "lambda", "report", request_id=RID, duration_ms=2.2, billed_ms=3.0, memory_mb=128, max_mem_mb=38
        ),
        "REPORT with spaces for tabs (console copy)",
    ),
    case(
        f"REPORT RequestId: {RID}\tDuration: 718.65 ms\tBilled Duration: 800 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 19 MB\t\n",
        expect(
            "lambda",
            "report",
            request_id=RID,
            duration_ms=718.65,
            billed_ms=800.0,
            memory_mb=128,
            max_mem_mb=19,
        ),
        "REPORT billed by 100 ms (before Dec 2020)",
    ),
    case(
        f"REPORT RequestId: {RID}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 64 MB\tStatus: timeout\t\n",
        expect(
            "lambda",
            "report",
            request_id=RID,
            duration_ms=3000.0,
            billed_ms=3000.0,
            memory_mb=128,
            max_mem_mb=64,
            status="timeout",
        ),
        "REPORT Status: timeout",
    ),
    case(
        f"REPORT RequestId: {RID}\tDuration: 1.92 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 10 MB\tStatus: error\tError Type: Runtime.InvalidEntrypoint",
        expect(
            "lambda",
            "report",
            request_id=RID,
            duration_ms=1.92,
            billed_ms=2.0,
            memory_mb=128,
            max_mem_mb=10,
            status="error",
            error_type="Runtime.InvalidEntrypoint",
        ),
        "REPORT Status: error with Error Type",
    ),
    case(
        f"REPORT RequestId: {RID}\tDuration: 84.11 ms\tBilled Duration: 284 ms\tMemory Size: 512 MB\t"
        "Max Memory Used: 99 MB\tRestore Duration: 474.16 ms\tBilled Restore Duration: 199 ms\t\n",
        expect(
            "lambda",
            "report",
            request_id=RID,
            duration_ms=84.11,
            billed_ms=284.0,
            memory_mb=512,
            max_mem_mb=99,
            restore_ms=474.16,
        ),
        "REPORT SnapStart restore",
    ),
    case(
        "INIT_REPORT Init Duration: 206.72 ms\tPhase: init\tStatus: error\tError Type: Runtime.ExitError\n",
        expect("lambda", "init_report", init_ms=206.72, status="error", error_type="Runtime.ExitError"),
        "INIT_REPORT init phase error",
    ),
    case(
        "INIT_REPORT Init Duration: 9999.95 ms\tPhase: invoke\tStatus: timeout\n",
        expect("lambda", "init_report", init_ms=9999.95, status="timeout"),
        "INIT_REPORT invoke phase timeout",
    ),
    case(
        "RESTORE_START Runtime Version: java:11.v15\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:0a\n",
        expect("lambda", "init_start"),
        "RESTORE_START (SnapStart)",
    ),
    case(
        "RESTORE_REPORT Restore Duration: 571.67 ms\n",
        expect("lambda", "init_report", restore_ms=571.67),
        "RESTORE_REPORT (SnapStart)",
    ),
    case(
        "2019-09-18T00:02:46.542Z f2704689-8c2e-4b5c-9a3f-1e2d3c4b5a69 Task timed out after 5.01 seconds\n",
        expect(
            "lambda",
            "timeout",
            request_id="f2704689-8c2e-4b5c-9a3f-1e2d3c4b5a69",
            status="timeout",
            error_type="Sandbox.Timedout",
            error_message="Task timed out after 5.01 seconds",
        ),
        "Task timed out",
    ),
    case(
        f"RequestId: {RID} Error: Runtime exited without providing a reason\n",
        expect(
            "lambda",
            "runtime_exit",
            request_id=RID,
            error_message="Runtime exited without providing a reason",
        ),
        "Runtime exited",
    ),
    case(
        f"RequestId: {RID} Error: Runtime exited with error: signal: killed\n",
        expect(
            "lambda",
            "runtime_exit",
            request_id=RID,
            error_message="Runtime exited with error: signal: killed",
        ),
        "Runtime exited: signal",
    ),
    case(
        "Runtime.ExitError\n",
        expect("lambda", "runtime_exit", error_type="Runtime.ExitError"),
        "Runtime.ExitError",
    ),
    case(
        "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n",
        expect(
            "lambda",
            "error",
            level="FATAL",
            error_message="Reached heap limit Allocation failed - JavaScript heap out of memory",
        ),
        "Node heap out of memory",
    ),
    case(
        f"2024-01-01T00:00:00.000Z\t{RID}\tconnected without a level\n",
        expect("lambda", "app", request_id=RID),
        "Node line without a level",
    ),
    case(
        f"RequestId: {RID} Error: Task timed out after 3.00 seconds",
        expect(
            "lambda",
            "timeout",
            request_id=RID,
            status="timeout",
            error_type="Sandbox.Timedout",
            error_message="Task timed out after 3.00 seconds",
        ),
        "RequestId Error: Task timed out",
    ),
    case(
        "XRAY TraceId: 1-5e1b4151-43a0913a12345678901234567\tSegmentId: 7c4eb6a6d56f2a27\tSampled: true\n",
        expect("lambda", "xray"),
        "XRAY alone",
    ),
]

PYTHON_RUNTIME = [
    case(
        f"[INFO]\t2020-02-14T18:19:39.441Z\t{RID}\tReceived SNS event: hello\n",
        expect("lambda", "app", request_id=RID, level="INFO"),
        "INFO line",
    ),
    case(
        f"[WARNING]\t2025-08-31T12:34:56.789Z\t{RID}\t{json.dumps(APP_STORED)}\n",
        expect("lambda", "app", level="WARNING", app_outcome="stored", integration_status=200, **CONNECT_APP),
        "the handler's JSON line: stored",
    ),
    case(
        f"[ERROR]\t2025-08-31T12:34:56.789Z\t{RID}\t{json.dumps(APP_DENIED)}\n",
        expect(
            "lambda",
            "app",
            level="ERROR",
            app_outcome="error",
            integration_status=500,
            app_error_code="AccessDeniedException",
            aws_operation="PutItem",
            error_message="DynamoDB PutItem on table chatgenius-connections failed with AccessDeniedException.",
            **CONNECT_APP,
        ),
        "the handler's JSON line: DynamoDB error",
    ),
    case(
        f"[ERROR]\t2025-08-31T12:34:56.789Z\t{RID}\t"
        + json.dumps({**APP_STORED, "outcome": "error", "status": 500, "error_code": "KeyError"})
        + "\nTraceback (most recent call last):\n  File \"/var/task/app.py\", line 9, in handler\nKeyError: 'x'\n",
        expect(
            "lambda",
            "app",
            level="ERROR",
            app_outcome="error",
            integration_status=500,
            app_error_code="KeyError",
            **CONNECT_APP,
        ),
        "the handler's JSON line followed by a traceback",
    ),
    case(
        f"[INFO]\t2025-08-31T12:34:58.195Z\t{RID}\tError handling WebSocket event: {ACCESS_DENIED_PUT}\n",
        expect(
            "lambda",
            "app",
            request_id=RID,
            level="INFO",
            app_outcome="error",
            app_error_code="AccessDeniedException",
            aws_operation="PutItem",
            error_message=ACCESS_DENIED_PUT,
        ),
        "the seed's swallowed AccessDenied at INFO",
    ),
    case(
        f"[INFO]\t2025-08-31T12:34:58.120Z\t{RID}\tConnection attempt {CID} for workspace w1\n",
        expect("lambda", "app", request_id=RID, level="INFO", connection_id=CID),
        "the seed's connection attempt",
    ),
    case(
        f"[INFO]\t2025-08-31T12:34:58.190Z\t{RID}\tStored connection {CID}\n",
        expect("lambda", "app", request_id=RID, level="INFO", connection_id=CID, app_outcome="stored"),
        "the seed's stored connection",
    ),
    case(
        f"[ERROR] ClientError: {ACCESS_DENIED_GET}\nTraceback (most recent call last):\n"
        f'{NBSP * 2}File "/var/task/app.py", line 10, in handler\n{NBSP * 4}table.get_item(Key=key)\n',
        expect(
            "lambda",
            "error",
            level="ERROR",
            error_type="ClientError",
            error_message=ACCESS_DENIED_GET,
            app_error_code="AccessDeniedException",
            aws_operation="GetItem",
        ),
        "uncaught ClientError, lines joined by \\n",
    ),
    case(
        "[ERROR] ErrorType: Error message\rTraceback (most recent call last):\r"
        f'{NBSP * 2}File "spam.py", line 3, in <module>\r{NBSP * 4}eggs()\r',
        expect("lambda", "error", level="ERROR", error_type="ErrorType", error_message="Error message"),
        "uncaught error, lines joined by \\r (stdout)",
    ),
    case(
        "[ERROR] Runtime.ImportModuleError: Unable to import module 'lambda_function': "
        "No module named 'requests'\nTraceback (most recent call last):",
        expect(
            "lambda",
            "error",
            level="ERROR",
            error_type="Runtime.ImportModuleError",
            error_message="Unable to import module 'lambda_function': No module named 'requests'",
        ),
        "import error",
    ),
    case(
        "[ERROR] something went wrong: badly",
        expect("lambda", "error", level="ERROR", error_message="something went wrong: badly"),
        "[ERROR] without an error type",
    ),
    case(
        "[WARNING]\t2025-08-31T12:34:56.789Z\t\tLAMBDA_WARNING: Unhandled exception. The most likely cause...\n",
        expect("lambda", "app", level="WARNING"),
        "init-phase warning with an empty request id",
    ),
    case("Hello from Lambda!\n", expect("lambda", "app"), "print line"),
    case(
        json.dumps({"note": "event", "connectionId": CID}),
        expect("lambda", "app", connection_id=CID),
        "a printed JSON object",
    ),
    case(
        "{'requestContext': {'routeKey': '$connect', 'eventType': 'CONNECT', 'connectionId': '" + CID + "'}}",
        expect(
            "lambda",
            "app",
            connection_id=CID,
            route_key="$connect",
            event_type="CONNECT",
            parse_error=patterns.BAD_JSON,
        ),
        "a printed Python repr of the event",
    ),
]

NODE_RUNTIME = [
    case(
        f"2023-04-14T09:23:16.008Z\t{RID}\tINFO\tconnected {CID}\n",
        expect("lambda", "app", request_id=RID, level="INFO"),
        "console.log",
    ),
    case(
        f"2023-04-14T09:23:16.008Z\t{RID}\tERROR\tInvoke Error \t"
        + json.dumps(
            {
                "errorType": "AccessDeniedException",
                "errorMessage": "User: arn:aws:sts::123456789012:assumed-role/r/f is not authorized to perform: "
                "dynamodb:Scan on resource: arn:aws:dynamodb:us-east-2:123456789012:table/t",
                "name": "AccessDeniedException",
                "$fault": "client",
                "$metadata": {"httpStatusCode": 400},
                "stack": ["AccessDeniedException: User: ...", "    at de_AccessDeniedExceptionRes"],
            }
        )
        + "\n",
        expect(
            "lambda",
            "error",
            request_id=RID,
            level="ERROR",
            error_type="AccessDeniedException",
            error_message="User: arn:aws:sts::123456789012:assumed-role/r/f is not authorized to perform: "
            "dynamodb:Scan on resource: arn:aws:dynamodb:us-east-2:123456789012:table/t",
            app_error_code="AccessDeniedException",
            aws_operation="Scan",
        ),
        "Invoke Error with an SDK v3 error",
    ),
    case(
        "2023-04-14T09:23:16.008Z\tundefined\tERROR\tUncaught Exception \t"
        '{"errorType":"Runtime.ImportModuleError","errorMessage":"Error: Cannot find module \'app\'","stack":[]}',
        expect(
            "lambda",
            "error",
            level="ERROR",
            error_type="Runtime.ImportModuleError",
            error_message="Error: Cannot find module 'app'",
        ),
        "Uncaught Exception during init (request id undefined)",
    ),
    case(
        f"2023-04-14T09:23:16.008Z\t{RID}\tINFO\tError handling WebSocket event: ResourceNotFoundException: "
        "Cannot do operations on a non-existent table\n    at AwsJson1_0Protocol.handleError (index.js:263:27) "
        "{\n  '$fault': 'client',\n  __type: 'com.amazonaws.dynamodb.v20120810#ResourceNotFoundException'\n}\n",
        expect(
            "lambda",
            "app",
            request_id=RID,
            level="INFO",
            app_outcome="error",
            app_error_code="ResourceNotFoundException",
            error_message="ResourceNotFoundException: Cannot do operations on a non-existent table",
        ),
        "the seed's catch-all printing an SDK v3 error object (console.log(msg, err))",
    ),
    case(
        f"2023-04-14T09:23:16.008Z\t{RID}\tINFO\tError handling WebSocket event: AccessDeniedException: User: "
        "arn:aws:sts::123456789012:assumed-role/r/f is not authorized to perform: dynamodb:PutItem on resource: t\n",
        expect(
            "lambda",
            "app",
            request_id=RID,
            level="INFO",
            app_outcome="error",
            app_error_code="AccessDeniedException",
            aws_operation="PutItem",
            error_message="AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/r/f is not "
            "authorized to perform: dynamodb:PutItem on resource: t",
        ),
        "an SDK v3 error as text (${err}): the operation from IAM's words",
    ),
    case(
        f"2023-04-14T09:23:16.008Z\t{RID}\tINFO\tsaw an exception: nothing named\n",
        expect("lambda", "app", request_id=RID, level="INFO"),
        "'exception: ' without an error name before it",
    ),
    case(
        f"2023-04-14T09:23:16.008Z\t{RID}\tINFO\tMyException:no space\n",
        expect("lambda", "app", request_id=RID, level="INFO"),
        "an error name not followed by ': '",
    ),
    case(
        f"2023-04-14T09:23:16.008Z\t{RID}\tERROR\tInvoke Error \tsomething bad\nmore\n",
        expect("lambda", "error", request_id=RID, level="ERROR", error_message="something bad"),
        "Invoke Error without JSON",
    ),
]

PLATFORM_JSON = [
    case(
        '{"time":"2024-05-20T16:29:44.830Z","type":"platform.initStart","record":{"initializationType":"on-demand",'
        '"phase":"init","runtimeVersion":"nodejs:18.v28","functionName":"chat","functionVersion":"$LATEST"}}',
        expect("lambda", "init_start"),
        "platform.initStart",
    ),
    case(
        '{"time":"2024-05-20T16:29:45.000Z","type":"platform.start","record":{"requestId":"' + RID + '",'
        '"version":"$LATEST"}}',
        expect("lambda", "start", request_id=RID),
        "platform.start",
    ),
    case(
        '{"time":"2024-05-20T16:29:45.011Z","type":"platform.runtimeDone","record":{"requestId":"'
        + RID
        + '",'
        '"status":"success","spans":[],"metrics":{"durationMs":11.185,"producedBytes":40}}}',
        expect("lambda", "end", request_id=RID, status="success"),
        "platform.runtimeDone",
    ),
    case(
        '{"time":"2024-05-20T16:29:45.012Z","type":"platform.report","record":{"requestId":"' + RID + '",'
        '"status":"success","metrics":{"durationMs":11.642,"billedDurationMs":12,"memorySizeMB":128,'
        '"maxMemoryUsedMB":67,"initDurationMs":174.055}}}',
        expect(
            "lambda",
            "report",
            request_id=RID,
            status="success",
            duration_ms=11.642,
            billed_ms=12.0,
            memory_mb=128,
            max_mem_mb=67,
            init_ms=174.055,
        ),
        "platform.report",
    ),
    case(
        '{"time":"2024-05-20T16:29:50.000Z","type":"platform.report","record":{"requestId":"' + RID + '",'
        '"metrics":{"durationMs":5000.0,"billedDurationMs":5000,"memorySizeMB":128,"maxMemoryUsedMB":70},'
        '"status":"timeout"}}',
        expect(
            "lambda",
            "report",
            request_id=RID,
            status="timeout",
            duration_ms=5000.0,
            billed_ms=5000.0,
            memory_mb=128,
            max_mem_mb=70,
        ),
        "platform.report timeout",
    ),
    case(
        '{"time":"2024-05-20T16:29:44.900Z","type":"platform.initReport","record":{"initializationType":"on-demand",'
        '"phase":"init","status":"error","errorType":"Runtime.ImportModuleError","metrics":{"durationMs":173.778}}}',
        expect(
            "lambda", "init_report", status="error", error_type="Runtime.ImportModuleError", init_ms=173.778
        ),
        "platform.initReport error",
    ),
    case(
        '{"time":"2024-05-20T16:29:44.990Z","type":"platform.initRuntimeDone","record":{"initializationType":'
        '"on-demand","phase":"init","status":"success"}}',
        expect("lambda", "platform_json", status="success"),
        "platform.initRuntimeDone",
    ),
    case(
        '{"time":"2024-05-20T16:29:44.990Z","type":"platform.logsDropped","record":{"reason":"x","droppedRecords":3,'
        '"droppedBytes":100}}',
        expect("lambda", "platform_json"),
        "platform.logsDropped",
    ),
    case(
        '{"timestamp":"2024-05-20T16:29:45.009Z","level":"INFO","requestId":"'
        + RID
        + '","message":"ENV ok"}',
        expect("lambda", "app", request_id=RID, level="INFO"),
        "Node JSON application record",
    ),
    case(
        json.dumps(
            {
                "timestamp": "2025-08-31T12:34:56.789Z",
                "level": "WARNING",
                "message": json.dumps(APP_STORED),
                "logger": "kit.handler.app",
                "requestId": RID,
            }
        ),
        expect("lambda", "app", level="WARNING", app_outcome="stored", integration_status=200, **CONNECT_APP),
        "Python JSON record whose message is the handler's JSON",
    ),
    case(
        json.dumps(
            {
                "timestamp": "2025-08-31T12:34:56Z",
                "log_level": "ERROR",
                "errorMessage": "'token'",
                "errorType": "KeyError",
                "requestId": RID,
                "stackTrace": ['  File "/var/task/seed.py", line 40, in handler\n'],
            }
        ),
        expect(
            "lambda", "error", level="ERROR", request_id=RID, error_type="KeyError", error_message="'token'"
        ),
        "Python uncaught error, JSON format (log_level)",
    ),
    case(
        json.dumps(
            {
                "level": "INFO",
                "location": "handler:10",
                "message": "stored",
                "timestamp": "2021-05-03 10:20:19,650+0000",
                "service": "chat",
                "function_request_id": RID,
            }
        ),
        expect("lambda", "app", level="INFO", request_id=RID),
        "Powertools Logger record",
    ),
]

EXECUTION_LOG = [
    case(
        f"({APIGW_RID}) Extended Request Id: {APIGW_RID}",
        expect("apigw_exec", "exec_line", apigw_request_id=APIGW_RID),
        "Extended Request Id",
        EXEC,
    ),
    case(
        f"({APIGW_RID}) WebSocket Request Route: [$connect]",
        expect(
            "apigw_exec", "exec_line", apigw_request_id=APIGW_RID, route_key="$connect", event_type="CONNECT"
        ),
        "route $connect",
        EXEC,
    ),
    case(
        f"({APIGW_RID}) WebSocket Request Route: [typing]",
        expect(
            "apigw_exec", "exec_line", apigw_request_id=APIGW_RID, route_key="typing", event_type="MESSAGE"
        ),
        "route typing",
        EXEC,
    ),
    case(
        f"({APIGW_RID}) Client [UserAgent: Mozilla/5.0, SourceIp: 203.0.113.7] is connecting to WebSocket API "
        "[a1b2c3d4e5].",
        expect("apigw_exec", "exec_line", apigw_request_id=APIGW_RID, event_type="CONNECT"),
        "is connecting",
        EXEC,
    ),
    case(
        f"({APIGW_RID}) WebSocket API [a1b2c3d4e5] received message from client [Connection Id: {CID}].",
        expect(
            "apigw_exec", "exec_line", apigw_request_id=APIGW_RID, connection_id=CID, event_type="MESSAGE"
        ),
        "received message",
        EXEC,
    ),
    case(
        f"({APIGW_RID}) Received response. Status: 200, Integration latency: 12 ms",
        expect("apigw_exec", "exec_line", apigw_request_id=APIGW_RID, integration_status=200),
        "Received response",
        EXEC,
    ),
    case(
        f"({APIGW_RID}) AWS Integration Endpoint RequestId : {RID}",
        expect("apigw_exec", "exec_line", apigw_request_id=APIGW_RID, integration_request_id=RID),
        "AWS Integration Endpoint RequestId",
        EXEC,
    ),
    case(
        f"({APIGW_RID}) Execution failed due to configuration error: Invalid permissions on Lambda function",
        expect(
            "apigw_exec",
            "exec_line",
            apigw_request_id=APIGW_RID,
            level="ERROR",
            error_message="configuration error: Invalid permissions on Lambda function",
        ),
        "configuration error",
        EXEC,
    ),
    case(
        f"({APIGW_RID}) Lambda execution failed with status 200 due to customer function error: boom. "
        f"Lambda request id: {RID}",
        expect(
            "apigw_exec",
            "exec_line",
            apigw_request_id=APIGW_RID,
            level="ERROR",
            integration_status=200,
            error_message="boom",
            integration_request_id=RID,
        ),
        "customer function error",
        EXEC,
    ),
    case(
        f"({APIGW_RID}) Execution failed due to a timeout error",
        expect(
            "apigw_exec",
            "exec_line",
            apigw_request_id=APIGW_RID,
            level="ERROR",
            error_message="a timeout error",
        ),
        "integration timeout",
        EXEC,
    ),
    case(
        f"({APIGW_RID}) Client [Connection Id: {CID}] connected to API [a1b2c3d4e5] successfully.",
        expect(
            "apigw_exec",
            "exec_line",
            apigw_request_id=APIGW_RID,
            connection_id=CID,
            event_type="CONNECT",
            http_status=200,
        ),
        "connected successfully",
        EXEC,
    ),
    case(
        f"({APIGW_RID}) Execution failed: client [Connection Id: {CID}] rejected with status code [502]",
        expect(
            "apigw_exec",
            "exec_line",
            apigw_request_id=APIGW_RID,
            connection_id=CID,
            event_type="CONNECT",
            http_status=502,
            level="ERROR",
            error_message=f"client [Connection Id: {CID}] rejected with status code [502]",
        ),
        "handshake rejected (the lab's wording)",
        EXEC,
    ),
    case(
        f"({APIGW_RID}) Message from client [Connection Id: {CID}] sent to API [a1b2c3d4e5] with response "
        "status code [200].",
        expect(
            "apigw_exec",
            "exec_line",
            apigw_request_id=APIGW_RID,
            connection_id=CID,
            event_type="MESSAGE",
            http_status=200,
        ),
        "message sent",
        EXEC,
    ),
    case(
        f"({APIGW_RID}) Client [Connection Id: {CID}] disconnected from API [a1b2c3d4e5] with integration "
        "response status code [200]. Close reason: [1001: Going away]",
        expect(
            "apigw_exec",
            "exec_line",
            apigw_request_id=APIGW_RID,
            connection_id=CID,
            event_type="DISCONNECT",
            integration_status=200,
            disconnect_code=1001,
            disconnect_reason="Going away",
        ),
        "disconnected, close 1001",
        EXEC,
    ),
    case(
        f"({APIGW_RID}) Client [Connection Id: {CID}] disconnected from API [a1b2c3d4e5] with integration "
        "response status code [-]. Close reason: [-]",
        expect(
            "apigw_exec", "exec_line", apigw_request_id=APIGW_RID, connection_id=CID, event_type="DISCONNECT"
        ),
        "disconnected, nothing known",
        EXEC,
    ),
    case(
        "(286364ab-3a8c-11e9-b1a4-0f1e2d3c4b5a) Method completed with status: 502",
        expect(
            "apigw_exec",
            "exec_line",
            apigw_request_id="286364ab-3a8c-11e9-b1a4-0f1e2d3c4b5a",
            http_status=502,
        ),
        "REST Method completed",
        EXEC,
    ),
    case(
        f"({APIGW_RID}) Verifying Usage Plan for request: {APIGW_RID}. API Key:  API Stage: a1b2c3d4e5/prod",
        expect("apigw_exec", "exec_line", apigw_request_id=APIGW_RID),
        "a line with nothing to extract",
        EXEC,
    ),
    case(
        (
            f"({APIGW_RID}) Endpoint request body after transformations: "
            + json.dumps(
                {"requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "connectionId": CID}}
            )
            + ", "
            + "x" * 1100
        )[:1012]
        + " [TRUNCATED]",
        expect(
            "apigw_exec",
            "exec_line",
            apigw_request_id=APIGW_RID,
            connection_id=CID,
            route_key="$connect",
            event_type="CONNECT",
        ),
        "data trace cut at 1 KB with [TRUNCATED]",
        EXEC,
    ),
    case(
        f"Extended Request Id: {APIGW_RID}",
        expect("apigw_exec", "unknown", parse_error=patterns.NO_EXEC_PREFIX),
        "execution-log line without its prefix",
        EXEC,
    ),
]

ACCESS_LOG = [
    case(
        json.dumps(
            {
                "requestId": APIGW_RID,
                "connectionId": CID,
                "eventType": "CONNECT",
                "routeKey": "$connect",
                "status": "200",
                "integrationStatus": "200",
                "integrationError": "-",
                "integrationRequestId": RID,
                "error": "-",
                "responseType": "-",
                "requestTimeEpoch": "1756643696000",
                "connectedAt": "1756643696000",
                "sourceIp": "203.0.113.7",
                "integrationLatency": "160",
            },
            separators=(",", ":"),
        ),
        expect(
            "apigw_access",
            "access",
            apigw_request_id=APIGW_RID,
            connection_id=CID,
            event_type="CONNECT",
            route_key="$connect",
            http_status=200,
            integration_status=200,
            integration_request_id=RID,
        ),
        "the lab's access format, CONNECT",
        ACCESS,
    ),
    case(
        '{"requestId":"' + APIGW_RID + '","eventType":"CONNECT","connectionId":"' + CID + '","status":"502",'
        '"integrationStatus":"-","integrationError":"Execution failed due to customer function error",'
        '"error":"-","responseType":"-"}',
        expect(
            "apigw_access",
            "access",
            apigw_request_id=APIGW_RID,
            connection_id=CID,
            event_type="CONNECT",
            http_status=502,
            error_message="Execution failed due to customer function error",
        ),
        "CONNECT answered 502, integration error only",
        ACCESS,
    ),
    case(
        '{"requestId":"x1","eventType":"DISCONNECT","connectionId":"' + CID + '"}',
        expect("apigw_access", "access", apigw_request_id="x1", connection_id=CID, event_type="DISCONNECT"),
        "a three-key format",
        ACCESS,
    ),
    case(
        '{"requestId":"x2","eventType":"MESSAGE","routeKey":"$default","status":403,'
        '"error":"Forbidden","responseType":"ACCESS_DENIED"}',
        expect(
            "apigw_access",
            "access",
            apigw_request_id="x2",
            event_type="MESSAGE",
            route_key="$default",
            http_status=403,
            error_message="Forbidden",
            error_type="ACCESS_DENIED",
        ),
        "unquoted status, error and responseType",
        ACCESS,
    ),
    case(
        '203.0.113.7 - - [31/Aug/2025:12:34:56 +0000] "CONNECT $connect" 200 x1',
        expect("unknown", "unknown", parse_error=patterns.UNKNOWN_LINE),
        "a CLF access line (not JSON)",
        ACCESS,
    ),
    case(
        '{"foo": 1}',
        expect("unknown", "unknown", parse_error=patterns.UNKNOWN_JSON),
        "JSON with no access-log key",
        ACCESS,
    ),
]

NO_GROUP = [
    case(
        f"START RequestId: {RID} Version: $LATEST\n", expect("lambda", "start", request_id=RID), "START", None
    ),
    case(
        f"({APIGW_RID}) Extended Request Id: {APIGW_RID}",
        expect("apigw_exec", "exec_line", apigw_request_id=APIGW_RID),
        "execution line",
        None,
    ),
    case(
        '{"requestId":"x1","eventType":"CONNECT","connectionId":"' + CID + '"}',
        expect("apigw_access", "access", apigw_request_id="x1", connection_id=CID, event_type="CONNECT"),
        "access line",
        None,
    ),
    case(
        "Hello from Lambda!", expect("unknown", "unknown", parse_error=patterns.UNKNOWN_LINE), "a print", None
    ),
]

ODD_LINES = [
    case(
        f"REPORT RequestId: {RID}\tDuration: 1",
        expect("lambda", "report", request_id=RID, parse_error=patterns.INCOMPLETE_REPORT),
        "REPORT cut inside Duration",
    ),
    case(
        f"REPORT RequestId: {RID}\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memo",
        expect(
            "lambda",
            "report",
            request_id=RID,
            duration_ms=15.74,
            billed_ms=16.0,
            memory_mb=128,
            parse_error=patterns.INCOMPLETE_REPORT,
        ),
        "REPORT cut before Max Memory Used",
    ),
    case(
        "REPORT RequestId: ",
        expect("lambda", "report", parse_error=patterns.INCOMPLETE_REPORT),
        "REPORT without anything",
    ),
    case(
        "START RequestId: \n",
        expect("lambda", "start", parse_error=patterns.MISSING_REQUEST_ID["start"]),
        "START without a request id",
    ),
    case("", expect("lambda", "unknown", parse_error=patterns.EMPTY_MESSAGE), "empty message"),
    case("\n", expect("lambda", "unknown", parse_error=patterns.EMPTY_MESSAGE), "a bare newline"),
    case(None, expect("lambda", "unknown", parse_error=patterns.EMPTY_MESSAGE), "no message at all"),
    case(
        "\x00\x01\x02\ufffd\ufffdPK\x03\x04",
        expect("lambda", "unknown", parse_error=patterns.BINARY_MESSAGE),
        "binary junk",
    ),
    case(
        "[INFO]\t2025-08-31T12:34",
        expect("lambda", "app", level="INFO", parse_error=patterns.INCOMPLETE_PYTHON_LINE),
        "Python line cut after the time",
    ),
    case(
        '{"time":"2024-05-20T16:29:45.012Z","type":"platform.rep',
        expect("lambda", "app", parse_error=patterns.BAD_JSON),
        "JSON record cut short",
    ),
    case("START", expect("lambda", "app"), "the word START alone"),
    case(
        "2025-08-31T12:34:56.1234567890Z\tx\tINFO\tten fraction digits",
        expect("lambda", "app"),
        "ISO time with ten fraction digits is no Node line",
    ),
    case(
        "2025-08-31T12:34:56.123456789Z\tx\tINFO\tnine fraction digits",
        expect("lambda", "app", request_id="x", level="INFO"),
        "ISO time with nine fraction digits",
    ),
    case("[ERROR]", expect("lambda", "error", level="ERROR"), "[ERROR] alone"),
    case(
        f"({APIGW_RID} Extended Request Id",
        expect("unknown", "unknown", parse_error=patterns.UNKNOWN_LINE),
        "broken execution prefix, no group",
        None,
    ),
]


@pytest.mark.parametrize(
    ("group", "message", "expected"),
    LAMBDA_TEXT_PLATFORM + PYTHON_RUNTIME + NODE_RUNTIME + PLATFORM_JSON,
)
def test_lambda_lines(group: str | None, message: str | None, expected: dict[str, Any]) -> None:
    assert parse_one(message, group) == expected


@pytest.mark.parametrize(("group", "message", "expected"), EXECUTION_LOG + ACCESS_LOG)
def test_api_gateway_lines(group: str | None, message: str | None, expected: dict[str, Any]) -> None:
    assert parse_one(message, group) == expected


@pytest.mark.parametrize(("group", "message", "expected"), NO_GROUP + ODD_LINES)
def test_lines_without_a_telling_group_and_odd_lines(
    group: str | None, message: str | None, expected: dict[str, Any]
) -> None:
    assert parse_one(message, group) == expected


# ---------------------------------------------------------------------------------------------------------
# Whole frames
# ---------------------------------------------------------------------------------------------------------


def events(*rows: tuple[str | None, str | None, int | None, str], group: str | None = LAMBDA) -> pd.DataFrame:
    """Rows of (stream, message, timestamp, event id) as the raw event frame."""
    return lp.events_frame(
        [
            {"logStreamName": stream, "message": message, "timestamp": at, "eventId": event_id}
            for stream, message, at, event_id in rows
        ],
        log_group=group,
    )


def test_a_small_frame_exactly() -> None:
    frame = lp.events_frame(
        [
            {
                "logStreamName": STREAM,
                "timestamp": T0,
                "ingestionTime": T0 + 900,
                "eventId": "1",
                "message": f"START RequestId: {RID} Version: $LATEST\n",
            },
            {
                "logStreamName": STREAM,
                "timestamp": T0 + 3,
                "ingestionTime": T0 + 950,
                "eventId": "2",
                "message": "Hello from Lambda!\n",
            },
            {
                "logStreamName": STREAM,
                "timestamp": T0 + 5,
                "ingestionTime": None,
                "eventId": "3",
                "message": f"REPORT RequestId: {RID}\tDuration: 2.20 ms\tBilled Duration: 3 ms\t"
                "Memory Size: 128 MB\tMax Memory Used: 38 MB\t\n",
            },
        ],
        log_group=LAMBDA,
    )
    expected = pd.DataFrame(
        {
            "log_group": [LAMBDA] * 3,
            "log_stream": [STREAM] * 3,
            "event_id": ["1", "2", "3"],
            "ts": pd.to_datetime([T0, T0 + 3, T0 + 5], unit="ms", utc=True),
            "ingest_ts": pd.to_datetime([T0 + 900, T0 + 950, None], unit="ms", utc=True),
            "lag_ms": [900, 947, None],
            "message": frame["message"],
            "source": ["lambda"] * 3,
            "kind": ["start", "app", "report"],
            "request_id": [RID] * 3,
            "duration_ms": [None, None, 2.2],
            "billed_ms": [None, None, 3.0],
            "memory_mb": [None, None, 128],
            "max_mem_mb": [None, None, 38],
        }
    )
    for name, dtype in lp.LOG_COLUMNS.items():
        expected[name] = (
            expected[name].astype(dtype) if name in expected else pd.Series([None] * 3, dtype=dtype)
        )
    expected = expected[list(lp.LOG_COLUMNS)]
    pd.testing.assert_frame_equal(lp.parse(frame), expected)


def test_columns_and_dtypes_are_the_contract() -> None:
    parsed = lp.parse(events((STREAM, "x", T0, "1")))
    assert dict(parsed.dtypes.astype(str)) == dict(lp.LOG_COLUMNS)
    assert str(parsed["ts"].dt.tz) == "UTC"


@pytest.mark.parametrize(
    "empty",
    [
        pytest.param([], id="no events"),
        pytest.param(lp.events_frame([]), id="empty raw frame"),
        pytest.param(lp.read_raw_lines(""), id="empty file"),
    ],
)
def test_empty_input_gives_the_declared_empty_frame(empty: Any) -> None:
    for parse in (lp.parse, lp.parse_lines_slow):
        parsed = parse(empty)
        assert len(parsed) == 0
        assert dict(parsed.dtypes.astype(str)) == dict(lp.LOG_COLUMNS)


def test_request_id_is_carried_forward_within_a_stream_not_across() -> None:
    other_rid = "22222222-aaaa-4bbb-8ccc-000000000002"
    frame = events(
        ("s1", "init print before any START", T0, "1"),
        ("s1", f"START RequestId: {RID} Version: $LATEST", T0 + 1, "2"),
        ("s2", f"START RequestId: {other_rid} Version: $LATEST", T0 + 2, "3"),
        ("s1", "print in s1", T0 + 3, "4"),
        ("s2", "[ERROR] KeyError: 'x'\nTraceback (most recent call last):", T0 + 4, "5"),
        ("s3", "print in a stream with no START", T0 + 5, "6"),
        ("s1", f"END RequestId: {RID}", T0 + 6, "7"),
        ("s1", "print after END", T0 + 7, "8"),
        ("s2", "second print in s2", T0 + 8, "9"),
    )
    parsed = lp.parse(frame)
    assert parsed["request_id"].tolist() == [
        pd.NA,
        RID,
        other_rid,
        RID,
        other_rid,
        pd.NA,
        RID,
        pd.NA,
        other_rid,
    ]
    pd.testing.assert_frame_equal(parsed, lp.parse_lines_slow(frame))


def test_carry_forward_follows_timestamps_not_input_order() -> None:
    frame = events(
        ("s1", "late print", T0 + 5, "3"),
        ("s1", f"END RequestId: {RID}", T0 + 9, "4"),
        ("s1", f"START RequestId: {RID} Version: $LATEST", T0, "1"),
        ("s1", "first print", T0 + 1, "2"),
    )
    parsed = lp.parse(frame)
    assert parsed["event_id"].tolist() == ["3", "4", "1", "2"]  # input order is kept
    assert parsed["request_id"].tolist() == [RID] * 4
    pd.testing.assert_frame_equal(parsed, lp.parse_lines_slow(frame))


def test_a_stream_with_lambda_lines_makes_its_plain_lines_lambda_output() -> None:
    frame = lp.read_raw_lines(f'START RequestId: {RID} Version: $LATEST\nhello\n{"{"}"a": 1{"}"}\n')
    parsed = lp.parse(frame)
    assert parsed["source"].tolist() == ["lambda"] * 3
    assert parsed["kind"].tolist() == ["start", "app", "app"]
    assert parsed["request_id"].tolist() == [RID] * 3


def test_a_mixed_raw_file_keeps_each_line_its_own_source() -> None:
    text = "\n".join(
        [
            f"START RequestId: {RID} Version: $LATEST",
            f"({APIGW_RID}) AWS Integration Endpoint RequestId : {RID}",
            '{"requestId":"x1","eventType":"CONNECT","connectionId":"' + CID + '"}',
            "hello",
        ]
    )
    parsed = lp.parse(lp.read_raw_lines(text))
    assert parsed["source"].tolist() == ["lambda", "apigw_exec", "apigw_access", "lambda"]
    assert parsed["ts"].isna().all()


def test_row_count_is_kept_for_anything() -> None:
    junk = [
        "",
        "\n",
        "\x00",
        "{",
        "(",
        "[",
        "[ERROR]",
        "REPORT RequestId:",
        "2025-08-31T12:34:56Z ",
        "\t",
        " ",
    ]
    frame = events(*((f"s{i % 3}", message, None, str(i)) for i, message in enumerate(junk * 5)), group=None)
    parsed = lp.parse(frame)
    assert len(parsed) == len(frame)
    assert parsed["event_id"].tolist() == frame["event_id"].tolist()
    assert set(parsed["kind"]) <= set(lp.KINDS)
    assert set(parsed["source"]) <= set(lp.SOURCES)
    assert parsed.loc[parsed["kind"] == "unknown", "parse_error"].notna().all()


def test_parse_accepts_boto3_event_dicts() -> None:
    parsed = lp.parse(
        [{"logGroupName": LAMBDA, "logStreamName": STREAM, "timestamp": T0, "message": "hi", "eventId": "e"}]
    )
    assert parsed.loc[0, "kind"] == "app"
    assert parsed.loc[0, "ts"] == pd.Timestamp(T0, unit="ms", tz="UTC")


def test_parse_rejects_a_frame_without_messages() -> None:
    with pytest.raises(ConfigurationError, match="no 'message' column"):
        lp.parse(pd.DataFrame({"text": ["x"]}))


def test_parse_accepts_datetime_timestamps() -> None:
    frame = pd.DataFrame({"message": ["hi"], "timestamp": [pd.Timestamp(T0, unit="ms", tz="UTC")]})
    parsed = lp.parse(frame)
    assert parsed.loc[0, "ts"] == pd.Timestamp(T0, unit="ms", tz="UTC")
