"""Lambda's log lines, exactly: the shapes a parser of real CloudWatch logs must read back."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from datetime import UTC, datetime

import pytest

from kit.lab import lambda_logs
from kit.lab.lambda_logs import Report

RID = "8f507cfc-1a2b-4697-b07a-ac58fc914c95"
AT = datetime(2025, 8, 31, 12, 34, 56, 789000, tzinfo=UTC)
NBSP = "\u00a0"

# The Datadog production regex quoted in the research notes, extended with Status/Error Type.
REPORT_RE = re.compile(
    r"REPORT\s+RequestId:\s+([\w-]+)\s+Duration:\s+([\d.]+)\s+ms\s+Billed\s+Duration:\s+([\d.]+)\s+ms\s+"
    r"Memory\s+Size:\s+(\d+)\s+MB\s+Max\s+Memory\s+Used:\s+(\d+)\s+MB(\s+Init\s+Duration:\s+([\d.]+)\s+ms)?"
    r"(\s+Status:\s+(\w+))?(\s+Error\s+Type:\s+(\S+))?"
)


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        pytest.param(
            Report(RID, 15.74, 147, 128, 56, init_duration_ms=130.49),
            f"REPORT RequestId: {RID}\tDuration: 15.74 ms\tBilled Duration: 147 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 56 MB\tInit Duration: 130.49 ms\t\n",
            id="cold start, the AWS documentation's example",
        ),
        pytest.param(
            Report(RID, 2.2, 3, 128, 38),
            f"REPORT RequestId: {RID}\tDuration: 2.20 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 38 MB\t\n",
            id="warm: no Init Duration",
        ),
        pytest.param(
            Report(RID, 3000.0, 3000, 128, 64, status="timeout"),
            f"REPORT RequestId: {RID}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 64 MB\tStatus: timeout\t\n",
            id="timeout",
        ),
        pytest.param(
            Report(RID, 98.71, 99, 512, 46, status="error", error_type="Runtime.ImportModuleError"),
            f"REPORT RequestId: {RID}\tDuration: 98.71 ms\tBilled Duration: 99 ms\tMemory Size: 512 MB\t"
            "Max Memory Used: 46 MB\tStatus: error\tError Type: Runtime.ImportModuleError\t\n",
            id="init failed twice",
        ),
        pytest.param(
            Report(RID, 12.3456, 13, 128, 50, error_type="ValueError"),
            f"REPORT RequestId: {RID}\tDuration: 12.35 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\t"
            "Max Memory Used: 50 MB\t\n",
            id="handler exception: no Status, no Error Type",
        ),
    ],
)
def test_report_line(report: Report, expected: str) -> None:
    line = lambda_logs.report_line(report)
    assert line == expected
    match = REPORT_RE.match(line)
    assert match is not None
    assert match.group(1) == RID


@pytest.mark.parametrize(
    ("duration", "init", "billed"),
    [
        (15.74, 130.49, 147),  # the documented example: INIT is billed
        (1.1, 2.2, 4),  # 3.30 ms -> 4 ms
        (0.02, None, 1),  # never less than 1 ms
        (1000.0, None, 1000),
        (999.991, None, 1000),  # printed 999.99 -> billed 1000
        (2.0, 63.22, 66),
    ],
)
def test_billed_duration(duration: float, init: float | None, billed: int) -> None:
    assert lambda_logs.billed_duration_ms(duration, init) == billed


def test_billed_duration_is_exact_on_two_decimals() -> None:
    # Binary floats would make 1.10 + 2.20 = 3.3000000000000003; the printed values decide.
    assert lambda_logs.billed_duration_ms(1.0, 2.0) == 3
    assert lambda_logs.billed_duration_ms(0.5, 0.5) == 1


@pytest.mark.parametrize(
    ("function", "args", "expected"),
    [
        (lambda_logs.start_line, (RID, "$LATEST"), f"START RequestId: {RID} Version: $LATEST\n"),
        (lambda_logs.start_line, (RID, "7"), f"START RequestId: {RID} Version: 7\n"),
        (lambda_logs.end_line, (RID,), f"END RequestId: {RID}\n"),
        (
            lambda_logs.init_start_line,
            ("python:3.11.v60", "arn:aws:lambda:us-east-2::runtime:" + "a" * 64),
            "INIT_START Runtime Version: python:3.11.v60\t"
            "Runtime Version ARN: arn:aws:lambda:us-east-2::runtime:" + "a" * 64 + "\n",
        ),
        (
            lambda_logs.init_report_line,
            (137.694, "init", "error", "Runtime.ImportModuleError"),
            "INIT_REPORT Init Duration: 137.69 ms\tPhase: init\tStatus: error\t"
            "Error Type: Runtime.ImportModuleError\n",
        ),
        (
            lambda_logs.init_report_line,
            (10000.0, "init", "timeout", None),
            "INIT_REPORT Init Duration: 10000.00 ms\tPhase: init\tStatus: timeout\n",
        ),
        (
            lambda_logs.init_report_line,
            (80.49, "invoke", "error", "Runtime.ExitError"),
            "INIT_REPORT Init Duration: 80.49 ms\tPhase: invoke\tStatus: error\tError Type: Runtime.ExitError\n",
        ),
        (
            lambda_logs.timeout_line,
            (AT, RID, 3),
            f"2025-08-31T12:34:56.789Z {RID} Task timed out after 3.00 seconds\n",
        ),
        (
            lambda_logs.timeout_line,
            (AT, RID, 1.0),
            f"2025-08-31T12:34:56.789Z {RID} Task timed out after 1.00 seconds\n",
        ),
    ],
)
def test_platform_lines(function: object, args: tuple[object, ...], expected: str) -> None:
    assert callable(function)
    assert function(*args) == expected


def test_timeout_line_matches_the_parsers_regex() -> None:
    line = lambda_logs.timeout_line(AT, RID, 5)
    match = re.search(r"Task\stimed\sout\safter\s+([\d.]+)\s+seconds", line)
    assert match is not None
    assert match.group(1) == "5.00"


@pytest.mark.parametrize(
    ("created", "version", "environment_id", "expected"),
    [
        (
            datetime(2020, 7, 12, 23, 59, tzinfo=UTC),
            "$LATEST",
            "bc34407a1ebb4b1999418d77469ca8e7",
            "2020/07/12/[$LATEST]bc34407a1ebb4b1999418d77469ca8e7",
        ),
        (
            datetime(2025, 1, 2, tzinfo=UTC),
            "3",
            "0" * 32,
            "2025/01/02/[3]" + "0" * 32,
        ),
    ],
)
def test_log_stream_name(created: datetime, version: str, environment_id: str, expected: str) -> None:
    name = lambda_logs.log_stream_name(created, version, environment_id)
    assert name == expected
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[[^\]]+\][0-9a-f]{32}", name)


def test_runtime_version_and_arn() -> None:
    assert lambda_logs.runtime_version("python3.11") == "python:3.11.v60"
    assert re.fullmatch(r"python:3\.14\.v\d+", lambda_logs.runtime_version("python3.14"))
    assert lambda_logs.runtime_version("nodejs20.x") == "nodejs:20.v75"  # the shape seen in CloudWatch
    assert re.fullmatch(r"nodejs:24\.v\d+", lambda_logs.runtime_version("nodejs24.x"))
    arn = lambda_logs.runtime_version_arn("eu-west-2", "python:3.11.v60")
    assert re.fullmatch(r"arn:aws:lambda:eu-west-2::runtime:[0-9a-f]{64}", arn)
    assert arn == lambda_logs.runtime_version_arn("eu-west-2", "python:3.11.v60")  # stable


@pytest.mark.parametrize(("rss_kb", "mb"), [(56 * 1024, 56), (56 * 1024 + 1, 57), (0, 1), (20_480, 20)])
def test_max_memory_used(rss_kb: int, mb: int) -> None:
    assert lambda_logs.max_memory_used_mb(rss_kb) == mb


@pytest.mark.parametrize(
    ("returncode", "reason"),
    [
        (1, "Runtime exited with error: exit status 1"),
        (3, "Runtime exited with error: exit status 3"),
        (255, "Runtime exited with error: exit status 255"),
        (0, "Runtime exited without providing a reason"),  # a clean exit: no error to name
        (None, "Runtime exited without providing a reason"),
        (-9, "Runtime exited with error: signal: killed"),  # SIGKILL: the OOM killer, or a kill from outside
        (-15, "Runtime exited with error: signal: terminated"),
        (-11, "Runtime exited with error: signal: segmentation fault"),
        (-6, "Runtime exited with error: signal: aborted"),
        (-7, "Runtime exited with error: signal: bus error"),
        (-1, "Runtime exited with error: signal: hangup"),  # the first of Go's names
        (-31, "Runtime exited with error: signal: bad system call"),  # the last
        (-32, "Runtime exited with error: signal: signal 32"),  # past Go's table
        (-34, "Runtime exited with error: signal: signal 34"),  # a real-time signal
    ],
)
def test_exit_reason(returncode: int | None, reason: str) -> None:
    assert lambda_logs.exit_reason(returncode) == reason
    assert lambda_logs.exit_error_lines(RID, reason) == [
        f"RequestId: {RID} Error: {reason}\n",
        "Runtime.ExitError\n",
    ]


def test_timeout_error_is_what_the_invoke_api_returns() -> None:
    assert lambda_logs.timeout_error(RID, 3) == {
        "errorMessage": f"RequestId: {RID} Error: Task timed out after 3.00 seconds",
        "errorType": "Sandbox.Timedout",
    }


# -- the Python runtime's application lines ------------------------------------------------------------------


def _record(level: int, message: str, *, exc_info: object = None, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("app", level, "/var/task/app.py", 7, message, None, exc_info, "handler")  # type: ignore[arg-type]
    record.created = AT.timestamp()
    record.msecs = 789.0
    record.aws_request_id = RID
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_text_record_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logging.Formatter, "converter", time.gmtime)
    formatter = lambda_logs.text_formatter()
    assert formatter.format(_record(logging.INFO, "Received event")) == (
        f"[INFO]\t2025-08-31T12:34:56.789Z\t{RID}\tReceived event\n"
    )
    # A multi-line message stays one record (one CloudWatch event on the telemetry pipe).
    assert (
        formatter.format(_record(logging.WARNING, "a\nb"))
        == f"[WARNING]\t2025-08-31T12:34:56.789Z\t{RID}\ta\nb\n"
    )


def test_text_record_matches_the_parsers_regex(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logging.Formatter, "converter", time.gmtime)
    line = lambda_logs.text_formatter().format(_record(logging.ERROR, "boom"))
    match = re.match(r"^\[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\]\t(\S+Z)\t(\S+)\t", line)
    assert match is not None
    assert match.groups() == ("ERROR", "2025-08-31T12:34:56.789Z", RID)


def _exc_info() -> tuple[type[BaseException], BaseException, object]:
    try:
        raise KeyError("connectionId")
    except KeyError:
        info = sys.exc_info()
    assert info[0] is not None and info[1] is not None
    return info[0], info[1], info[2]


def test_json_record_format() -> None:
    formatter = lambda_logs.JsonLogFormatter()
    document = json.loads(formatter.format(_record(logging.INFO, "stored", connection_id="abc=")))
    assert document == {
        "timestamp": "2025-08-31T12:34:56.789Z",
        "level": "INFO",
        "message": "stored",
        "logger": "app",
        "requestId": RID,
        "connection_id": "abc=",
    }
    assert formatter.format(_record(logging.INFO, "x")).endswith("}\n")


def test_json_record_with_an_exception() -> None:
    document = json.loads(
        lambda_logs.JsonLogFormatter().format(_record(logging.ERROR, "failed", exc_info=_exc_info()))
    )
    assert document["level"] == "ERROR"
    assert document["errorType"] == "KeyError"
    assert document["errorMessage"] == "'connectionId'"
    assert document["location"] == "/var/task/app.py:handler:7"
    assert isinstance(document["stackTrace"], list)
    assert "_exc_info" in document["stackTrace"][0]


@pytest.mark.parametrize(
    ("levelno", "name"), [(logging.WARNING, "WARNING"), (25, "INFO"), (logging.CRITICAL, "CRITICAL")]
)
def test_json_record_levels_fold_onto_standard_ones(levelno: int, name: str) -> None:
    document = json.loads(lambda_logs.JsonLogFormatter().format(_record(levelno, "m")))
    assert document["level"] == name


ERROR_WITH_TRACE = lambda_logs.error_result(
    "boom",
    "ValueError",
    ['  File "/var/task/app.py", line 5, in handler\n    raise ValueError("boom")\n'],
    RID,
)


@pytest.mark.parametrize(
    ("error", "separator", "expected"),
    [
        pytest.param(
            ERROR_WITH_TRACE,
            "\n",
            "[ERROR] ValueError: boom\nTraceback (most recent call last):\n"
            f'{NBSP * 2}File "/var/task/app.py", line 5, in handler\n{NBSP * 4}raise ValueError("boom")',
            id="handler exception, telemetry pipe (managed runtime)",
        ),
        pytest.param(
            ERROR_WITH_TRACE,
            "\r",
            "[ERROR] ValueError: boom\rTraceback (most recent call last):\r"
            f'{NBSP * 2}File "/var/task/app.py", line 5, in handler\r{NBSP * 4}raise ValueError("boom")',
            id="handler exception, plain stdout (emulator)",
        ),
        pytest.param(
            lambda_logs.error_result(
                "Unable to import module 'search': No module named 'search'",
                "Runtime.ImportModuleError",
                None,
            ),
            "\n",
            "[ERROR] Runtime.ImportModuleError: Unable to import module 'search': No module named 'search'\n"
            "Traceback (most recent call last):",
            id="import error: empty trace keeps the Traceback header",
        ),
        pytest.param(
            lambda_logs.error_result("", "Runtime.ExitError", None),
            "\n",
            "[ERROR] Runtime.ExitError\nTraceback (most recent call last):",
            id="no message",
        ),
        pytest.param(
            {"errorMessage": "only a message", "errorType": ""},
            "\n",
            "[ERROR] only a message",
            id="no type, no stackTrace key",
        ),
    ],
)
def test_uncaught_error_message(error: dict[str, object], separator: str, expected: str) -> None:
    assert lambda_logs.text_error_message(error, separator) == expected


def test_uncaught_error_matches_the_parsers_regex() -> None:
    message = lambda_logs.text_error_message(ERROR_WITH_TRACE)
    match = re.match(r"^\[ERROR\] (\S+?)(: |$)", message)
    assert match is not None
    assert match.group(1) == "ValueError"


def test_error_result_shape() -> None:
    assert lambda_logs.error_result("m", "T", None) == {
        "errorMessage": "m",
        "errorType": "T",
        "requestId": "",
        "stackTrace": [],
    }


def test_json_error_message() -> None:
    document = json.loads(lambda_logs.json_error_message(ERROR_WITH_TRACE, AT))
    assert document == {"timestamp": "2025-08-31T12:34:56", "level": "ERROR", **ERROR_WITH_TRACE}


# -- log levels (JSON format) --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "threshold", "enabled"),
    [
        ("INFO", "INFO", True),
        ("DEBUG", "INFO", False),
        ("WARNING", "WARN", True),  # Python's name for WARN
        ("CRITICAL", "ERROR", True),
        ("TRACE", "DEBUG", False),
        ("INFO", "TRACE", True),
        ("ERROR", "FATAL", False),
        ("nonsense", "INFO", True),  # unknown levels count as INFO
        ("nonsense", "WARN", False),
    ],
)
def test_level_enabled(level: str, threshold: str, enabled: bool) -> None:
    assert lambda_logs.level_enabled(level, threshold) is enabled


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ('{"level": "debug", "msg": "x", "timestamp": "2024-11-02T16:51:31.587199Z"}\n', "DEBUG"),
        ('{"level": "Warn"}\n', "WARN"),
        ('{"level": 3}\n', "INFO"),
        ("plain text\n", "INFO"),
        ("{not json\n", "INFO"),
        ("[1, 2]\n", "INFO"),
    ],
)
def test_stdout_line_level(line: str, level: str) -> None:
    assert lambda_logs.stdout_line_level(line) == level


@pytest.mark.parametrize(
    ("configured", "runtime"), [(None, ""), ("TRACE", "DEBUG"), ("warn", "WARN"), ("FATAL", "FATAL")]
)
def test_runtime_log_level(configured: str | None, runtime: str) -> None:
    assert lambda_logs.runtime_log_level(configured) == runtime
    if runtime:
        assert runtime in logging.getLevelNamesMapping()


# -- platform records (JSON format) --------------------------------------------------------------------------


def test_platform_records() -> None:
    report = Report(RID, 11.6424, 12, 128, 67, init_duration_ms=174.0551)
    assert json.loads(lambda_logs.report_record(AT, report, "success")) == {
        "time": "2025-08-31T12:34:56.789Z",
        "type": "platform.report",
        "record": {
            "requestId": RID,
            "status": "success",
            "metrics": {
                "durationMs": 11.642,
                "billedDurationMs": 12,
                "memorySizeMB": 128,
                "maxMemoryUsedMB": 67,
                "initDurationMs": 174.055,
            },
        },
    }
    start = lambda_logs.start_record(AT, RID, "$LATEST")
    assert start == (
        '{"time":"2025-08-31T12:34:56.789Z","type":"platform.start",'
        f'"record":{{"requestId":"{RID}","version":"$LATEST"}}}}'
    )
    init = json.loads(lambda_logs.init_start_record(AT, "python:3.11.v60", "arn:x", "connect", "$LATEST"))
    assert init["record"] == {
        "initializationType": "on-demand",
        "phase": "init",
        "runtimeVersion": "python:3.11.v60",
        "runtimeVersionArn": "arn:x",
        "functionName": "connect",
        "functionVersion": "$LATEST",
    }
    timed_out = Report(RID, 5000.0, 5000, 128, 60, status="timeout")
    assert json.loads(lambda_logs.report_record(AT, timed_out, "timeout"))["record"]["status"] == "timeout"
    failed = json.loads(
        lambda_logs.init_report_record(AT, "init", "error", 45.1234, "Runtime.ImportModuleError")
    )
    assert failed["record"] == {
        "initializationType": "on-demand",
        "phase": "init",
        "status": "error",
        "errorType": "Runtime.ImportModuleError",
        "metrics": {"durationMs": 45.123},
    }
    done = json.loads(
        lambda_logs.runtime_done_record(
            AT, RID, status="failure", duration_ms=1.5, produced_bytes=0, error_type="KeyError"
        )
    )
    assert done["record"] == {
        "requestId": RID,
        "status": "failure",
        "errorType": "KeyError",
        "metrics": {"durationMs": 1.5, "producedBytes": 0},
    }


def test_platform_records_are_classified_as_platform_json() -> None:
    # The parser's recipe: a JSON message with "type" is a platform record, with "level" an app record.
    record = json.loads(lambda_logs.start_record(AT, RID, "$LATEST"))
    assert "type" in record and "time" in record and "timestamp" not in record
