"""One invocation written up: which lines a request gets, how it ended, what REPORT and Invoke say."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kit.lab import lambda_logs
from kit.lab.lambda_invocation import Ending, InitOutcome, InvocationLog, invoke_result, report_for

from .lambda_function import function

RID = "8f507cfc-1a2b-4697-b07a-ac58fc914c95"
AT = datetime(2025, 8, 31, 12, 34, 56, 789000, tzinfo=UTC)
AT_MS = AT.timestamp() * 1000
KEY_ERROR = {"errorType": "KeyError", "errorMessage": "'id'"}
IMPORT_ERROR = {"errorType": "Runtime.ImportModuleError", "errorMessage": "m"}


def messages(log: InvocationLog) -> list[str]:
    return [message for _, message in log.ordered()]


def records(log: InvocationLog) -> list[str]:
    """The ``type`` of each JSON platform record."""
    return [json.loads(message)["type"] for message in messages(log)]


# -- how an init ended ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "status", "duration_ms", "error_type"),
    [
        pytest.param(InitOutcome.answered({"kind": "ready"}, 120.5), "success", 120.5, None, id="ready"),
        pytest.param(
            InitOutcome.answered(
                {
                    "kind": "init-error",
                    "error": {"errorType": "Runtime.ImportModuleError", "errorMessage": "x"},
                },
                45.0,
            ),
            "error",
            45.0,
            "Runtime.ImportModuleError",
            id="the runtime's error document",
        ),
        pytest.param(
            InitOutcome.answered(
                {"kind": "init-error", "error": {"errorType": "", "errorMessage": "x"}}, 1.0
            ),
            "error",
            1.0,
            None,
            id="an error without a type",
        ),
        pytest.param(
            InitOutcome.timed_out(10.0), "timeout", 10_000.0, None, id="timed out: the limit exactly"
        ),
        pytest.param(
            InitOutcome.exited(3.5, "Runtime exited with error: exit status 1"),
            "error",
            3.5,
            lambda_logs.EXIT_ERROR,
            id="the process ended",
        ),
    ],
)
def test_init_outcome(outcome: InitOutcome, status: str, duration_ms: float, error_type: str | None) -> None:
    assert (outcome.status, outcome.duration_ms, outcome.error_type) == (status, duration_ms, error_type)


def test_an_init_that_exited_says_why() -> None:
    outcome = InitOutcome.exited(3.5, "Runtime exited with error: signal: killed")
    assert outcome.error == {
        "errorType": "Runtime.ExitError",
        "errorMessage": "Error: Runtime exited with error: signal: killed",
    }


# -- how a request ended -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "invoke_phase_ms", "expected"),
    [
        pytest.param(
            {"kind": "result", "payload": '{"statusCode": 200}', "duration_ms": 12.5},
            None,
            Ending("response", {"statusCode": 200}, 12.5, produced_bytes=19),
            id="a JSON response",
        ),
        pytest.param(
            {"kind": "result", "payload": '"é"', "duration_ms": 1.0},
            None,
            Ending("response", "é", 1.0, produced_bytes=4),
            id="produced bytes are bytes, not characters",
        ),
        pytest.param(
            {"kind": "result", "payload_base64": base64.b64encode(b"\x00\x01").decode(), "duration_ms": 2.0},
            None,
            Ending("response", b"\x00\x01", 2.0, produced_bytes=2),
            id="bytes",
        ),
        pytest.param(
            {"kind": "result", "payload": "null", "duration_ms": 2.0},
            250.0,
            Ending("response", None, 250.0, produced_bytes=4),
            id="init retried in the invoke phase: its time is Duration",
        ),
        pytest.param(
            {"kind": "error", "error": KEY_ERROR, "duration_ms": 3.0},
            None,
            Ending("function-error", KEY_ERROR, 3.0, status="failure", error_type="KeyError"),
            id="the handler's error: the environment is kept",
        ),
        pytest.param(
            {"kind": "error", "error": {"errorMessage": "?"}, "duration_ms": 3.0},
            None,
            Ending("function-error", {"errorMessage": "?"}, 3.0, status="failure"),
            id="an error without a type",
        ),
    ],
)
def test_answered(body: dict[str, Any], invoke_phase_ms: float | None, expected: Ending) -> None:
    assert Ending.answered(body, invoke_phase_ms=invoke_phase_ms) == expected


@pytest.mark.parametrize(
    ("timeout_s", "duration_ms", "billed_ms", "printed"),
    [
        pytest.param(3, 3000.0, 3000, "3.00", id="the default: billed exactly the limit"),
        pytest.param(0.5, 500.0, 500, "0.50", id="under a second"),
        pytest.param(900, 900_000.0, 900_000, "900.00", id="Lambda's longest"),
        pytest.param(1.2345, 1234.5, 1235, "1.23", id="a fraction of a millisecond is billed"),
    ],
)
def test_timed_out_at_the_limit(timeout_s: float, duration_ms: float, billed_ms: int, printed: str) -> None:
    ending = Ending.timed_out(RID, timeout_s)
    assert (ending.kind, ending.duration_ms, ending.keep) == ("timeout", duration_ms, False)
    assert ending.payload == {
        "errorMessage": f"RequestId: {RID} Error: Task timed out after {printed} seconds",
        "errorType": "Sandbox.Timedout",
    }
    report = report_for(ending, RID, memory_size_mb=128, max_memory_used_mb=40, init_ms=None)
    assert report.billed_duration_ms == billed_ms
    assert (report.status, report.error_type) == ("timeout", None)  # Text REPORT: Status only


def test_exited() -> None:
    reason = "Runtime exited with error: exit status 3"
    ending = Ending.exited(RID, reason, 42.0)
    assert ending == Ending(
        "function-error",
        {"errorType": "Runtime.ExitError", "errorMessage": f"RequestId: {RID} Error: {reason}"},
        42.0,
        status="error",
        report_status="error",
        error_type="Runtime.ExitError",
        keep=False,
    )


@pytest.mark.parametrize(
    ("retry", "expected"),
    [
        pytest.param(
            InitOutcome.timed_out(3.0),
            Ending.timed_out(RID, 3.0),
            id="the retry timed out: the request's timeout",
        ),
        pytest.param(
            InitOutcome("error", 80.0, IMPORT_ERROR),
            Ending(
                "init-error", IMPORT_ERROR, 95.0, "error", "error", "Runtime.ImportModuleError", keep=False
            ),
            id="the retry failed: the init's error, the invoke phase's time",
        ),
    ],
)
def test_init_failed_twice(retry: InitOutcome, expected: Ending) -> None:
    assert Ending.init_failed(retry, RID, 3.0, 95.0) == expected


# -- REPORT and the Invoke API's answer ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ending", "init_ms", "status", "error_type", "billed"),
    [
        pytest.param(Ending("response", {}, 11.64), 174.05, None, None, 186, id="cold start: INIT is billed"),
        pytest.param(Ending("response", {}, 0.2), None, None, None, 1, id="at least 1 ms"),
        pytest.param(
            Ending("function-error", {}, 5.0, status="failure", error_type="ValueError"),
            None,
            None,
            None,
            5,
            id="handler exception: no Status, no Error Type",
        ),
        pytest.param(
            Ending.exited(RID, "r", 7.01), None, "error", "Runtime.ExitError", 8, id="runtime exit: both"
        ),
    ],
)
def test_report_for(
    ending: Ending, init_ms: float | None, status: str | None, error_type: str | None, billed: int
) -> None:
    report = report_for(ending, RID, memory_size_mb=256, max_memory_used_mb=50, init_ms=init_ms)
    assert (report.status, report.error_type, report.billed_duration_ms) == (status, error_type, billed)
    assert (report.memory_size_mb, report.max_memory_used_mb, report.init_duration_ms) == (256, 50, init_ms)


@pytest.mark.parametrize(
    ("ending", "function_error", "error_type", "error_message"),
    [
        pytest.param(Ending("response", {"statusCode": 200}, 1.0), None, None, None, id="response"),
        pytest.param(
            Ending("function-error", {"errorMessage": "boom", "errorType": "E"}, 1.0, error_type="E"),
            "Unhandled",
            "E",
            "boom",
            id="handler error",
        ),
        pytest.param(
            Ending.timed_out(RID, 3),
            "Unhandled",
            "Sandbox.Timedout",
            f"RequestId: {RID} Error: Task timed out after 3.00 seconds",
            id="timeout",
        ),
        pytest.param(
            Ending.init_failed(InitOutcome("error", 1.0, {"errorType": "T"}), RID, 3, 2.0),
            "Unhandled",
            "T",
            "",
            id="init error without a message",
        ),
    ],
)
def test_invoke_result(
    ending: Ending, function_error: str | None, error_type: str | None, error_message: str | None
) -> None:
    report = report_for(ending, RID, memory_size_mb=128, max_memory_used_mb=40, init_ms=None)
    result = invoke_result(ending, report, log_group="/aws/lambda/probe", log_stream="s")
    assert (result.function_error, result.error_type, result.error_message) == (
        function_error,
        error_type,
        error_message,
    )
    assert (result.request_id, result.log_group, result.log_stream, result.kind) == (
        RID,
        "/aws/lambda/probe",
        "s",
        ending.kind,
    )


def test_invoke_result_rounds_as_report_prints() -> None:
    ending = Ending("response", {}, 12.3456)
    report = report_for(ending, RID, memory_size_mb=128, max_memory_used_mb=40, init_ms=130.4949)
    result = invoke_result(ending, report, log_group="g", log_stream="s")
    assert (result.duration_ms, result.init_ms, result.billed_ms, result.max_memory_mb) == (
        12.35,
        130.49,
        143,
        40,
    )


# -- the log of one request: Text format ---------------------------------------------------------------------


def test_text_cold_start_then_response() -> None:
    config = function(runtime="python3.12", memory_mb=256)
    log = InvocationLog(config)
    log.init_start(AT)
    log.init_done(AT, "init", InitOutcome("success", 100.0))
    log.start(AT, RID)
    ending = Ending("response", {}, 5.0)
    report = report_for(ending, RID, memory_size_mb=256, max_memory_used_mb=40, init_ms=100.0)
    log.end(AT, report, ending)
    version = lambda_logs.runtime_version("python3.12")
    assert messages(log) == [
        lambda_logs.init_start_line(version, lambda_logs.runtime_version_arn("us-east-2", version)),
        lambda_logs.start_line(RID, "$LATEST"),
        lambda_logs.end_line(RID),
        lambda_logs.report_line(report),
    ]


@pytest.mark.parametrize(
    ("outcome", "phase", "line"),
    [
        pytest.param(InitOutcome("success", 10.0), "init", None, id="success: no INIT_REPORT"),
        pytest.param(
            InitOutcome("error", 10.0, {"errorType": "Runtime.ImportModuleError"}),
            "init",
            "INIT_REPORT Init Duration: 10.00 ms\tPhase: init\tStatus: error\tError Type: Runtime.ImportModuleError\n",
            id="error",
        ),
        pytest.param(
            InitOutcome.timed_out(3.0),
            "invoke",
            "INIT_REPORT Init Duration: 3000.00 ms\tPhase: invoke\tStatus: timeout\n",
            id="timeout in the invoke phase",
        ),
    ],
)
def test_text_init_report(outcome: InitOutcome, phase: lambda_logs.Phase, line: str | None) -> None:
    log = InvocationLog(function())
    log.init_done(AT, phase, outcome)
    assert messages(log) == ([line] if line else [])


def test_text_timeout_and_exit_lines() -> None:
    log = InvocationLog(function(timeout_s=5))
    log.timeout(AT, RID)
    log.exit_error(AT, RID, "Runtime exited with error: signal: killed")
    assert messages(log) == [
        f"2025-08-31T12:34:56.789Z {RID} Task timed out after 5.00 seconds\n",
        f"RequestId: {RID} Error: Runtime exited with error: signal: killed\n",
        "Runtime.ExitError\n",
    ]


# -- the log of one request: JSON format ---------------------------------------------------------------------


def test_json_records_of_a_failed_cold_start() -> None:
    log = InvocationLog(function(log_format="JSON"))
    log.init_start(AT)
    failed = InitOutcome("error", 10.0, {"errorType": "Runtime.ImportModuleError"})
    log.init_done(AT, "init", failed)
    log.init_done(AT, "invoke", failed)
    log.start(AT, RID)
    ending = Ending.init_failed(failed, RID, 3, 12.0)
    log.end(AT, report_for(ending, RID, memory_size_mb=128, max_memory_used_mb=40, init_ms=None), ending)
    assert records(log) == [
        "platform.initStart",
        "platform.initRuntimeDone",
        "platform.initReport",
        "platform.initRuntimeDone",
        "platform.initReport",
        "platform.start",
        "platform.runtimeDone",
        "platform.report",
    ]


def test_json_timeout_and_exit_are_said_in_the_records_only() -> None:
    log = InvocationLog(function(log_format="JSON"))
    log.timeout(AT, RID)
    log.exit_error(AT, RID, "r")
    assert messages(log) == []


@pytest.mark.parametrize(
    ("ending", "status", "error_type"),
    [
        pytest.param(Ending("response", {}, 1.0, produced_bytes=7), "success", None, id="response"),
        pytest.param(
            Ending("function-error", {}, 1.0, status="failure", error_type="KeyError"),
            "failure",
            "KeyError",
            id="handler error: named in JSON, unlike Text",
        ),
        pytest.param(Ending.timed_out(RID, 3), "timeout", "Sandbox.Timedout", id="timeout"),
    ],
)
def test_json_end_records(ending: Ending, status: str, error_type: str | None) -> None:
    log = InvocationLog(function(log_format="JSON"))
    log.end(AT, report_for(ending, RID, memory_size_mb=128, max_memory_used_mb=40, init_ms=None), ending)
    done, report = (json.loads(message)["record"] for message in messages(log))
    assert (done["status"], done.get("errorType"), done["metrics"]["producedBytes"]) == (
        status,
        error_type,
        ending.produced_bytes,
    )
    assert (report["status"], report.get("errorType")) == (status, error_type)


@pytest.mark.parametrize(("system_log_level", "kept"), [("DEBUG", True), ("INFO", True), ("WARN", False)])
def test_system_log_level_filters_platform_records(system_log_level: str, kept: bool) -> None:
    log = InvocationLog(function(log_format="JSON", system_log_level=system_log_level))
    log.init_start(AT)
    log.start(AT, RID)
    assert len(messages(log)) == (2 if kept else 0)


JSON = {"log_format": "JSON"}
JSON_ERROR = {"log_format": "JSON", "log_level": "ERROR"}
RAW_DEBUG = '{"level": "DEBUG"}\n'


@pytest.mark.parametrize(
    ("changes", "level", "stream", "message", "kept"),
    [
        pytest.param({}, "DEBUG", "app", "[DEBUG] x\n", True, id="Text: a record at any level"),
        pytest.param({}, None, "raw", RAW_DEBUG, True, id="Text: any raw line"),
        pytest.param(JSON, "INFO", "app", "{}", True, id="JSON: INFO at INFO"),
        pytest.param(JSON, "DEBUG", "app", "{}", False, id="JSON: DEBUG below INFO"),
        pytest.param(JSON, "WARNING", "app", "{}", True, id="JSON: Python's WARNING is WARN"),
        pytest.param(JSON, None, "app", "[x]", True, id="JSON: a record without level is INFO"),
        pytest.param(JSON, None, "raw", "printed\n", True, id="JSON: a raw line is INFO"),
        pytest.param(JSON, None, "raw", RAW_DEBUG, False, id="JSON: a raw line's own level"),
        pytest.param(JSON_ERROR, None, "stdout", "printed\n", False, id="JSON: below ERROR"),
        pytest.param(JSON_ERROR, "ERROR", "app", "{}", True, id="JSON: ERROR at ERROR"),
        pytest.param({**JSON, "log_level": "TRACE"}, "TRACE", "app", "{}", True, id="JSON: TRACE at TRACE"),
    ],
)
def test_application_levels(
    changes: dict[str, Any], level: str | None, stream: str, message: str, kept: bool
) -> None:
    log = InvocationLog(function(**changes))
    log.application(AT_MS, message, level, stream)
    assert messages(log) == ([message] if kept else [])


def test_ordered_makes_timestamps_non_decreasing() -> None:
    log = InvocationLog(function())
    log.add(AT_MS + 5.9, "a")
    log.add(AT_MS, "b")  # written earlier, handed over later (e.g. a raw line read after a record)
    log.add(AT_MS + 7, "c")
    first = int(AT_MS + 5.9)
    assert log.ordered() == [(first, "a"), (first, "b"), (int(AT_MS + 7), "c")]


def test_log_times_come_from_the_caller() -> None:
    log = InvocationLog(function())
    log.start(AT + timedelta(seconds=1), RID)
    assert log.ordered()[0][0] == int(AT_MS + 1000)
