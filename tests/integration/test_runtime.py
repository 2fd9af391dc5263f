"""The lab's Lambda runtime: real worker processes running handlers from tests/functions, logs as Lambda writes them."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from kit.errors import ConfigurationError, EngineError
from kit.lab import lambda_logs
from kit.lab import runtime as runtime_module
from kit.lab.lambda_config import FunctionConfig, function_config_from_answer
from kit.lab.lambda_environment import LambdaCredentials
from kit.lab.lambda_invocation import InvokeResult
from kit.lab.runtime import LambdaRuntime, iter_child_pids

from .labclient import wait_until

pytestmark = pytest.mark.integration

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
NBSP = "\u00a0"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
STREAM_RE = re.compile(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}")


class RecordingSink:
    """Collects what the runtime hands to CloudWatch, per (group, stream), in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, list[tuple[int, str]]]] = []
        self._lock = threading.Lock()

    def __call__(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        with self._lock:
            self.calls.append((group, stream, list(events)))

    def messages(self, stream: str | None = None) -> list[str]:
        return [m for _, s, events in self.calls if stream in (None, s) for _, m in events]

    def for_request(self, result: InvokeResult) -> list[str]:
        """The events delivered with one request (INIT lines of its cold start included)."""
        for _, stream, events in self.calls:
            if stream == result.log_stream and any(result.request_id in m for _, m in events):
                return [m for _, m in events]
        raise AssertionError(f"no events for request {result.request_id}")


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def runtime(sink: RecordingSink) -> Iterator[LambdaRuntime]:
    with LambdaRuntime(sink) as lab_runtime:
        yield lab_runtime


def probe(function: str, **changes: Any) -> FunctionConfig:
    """A configuration running ``lab_probe.<function>``; ``changes`` override any field."""
    fields: dict[str, Any] = {
        "function_name": "probe",
        "handler": f"lab_probe.{function}",
        "code_path": str(FUNCTIONS),
        "region": "us-east-2",
        "timeout_s": 3,
    }
    fields.update(changes)
    return FunctionConfig(**fields)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def invoke_at_once(
    runtime: LambdaRuntime, config: FunctionConfig, event: Any, count: int
) -> list[InvokeResult]:
    """``count`` invocations from as many threads at once; their results in the order they finished."""
    results: list[InvokeResult] = []
    threads = [
        threading.Thread(target=lambda: results.append(runtime.invoke(config, event))) for _ in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def worker_children() -> list[int]:
    pids = []
    for pid in iter_child_pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"kit.lab.runtime_worker" in cmdline:
            pids.append(pid)
    return pids


# -- cold and warm starts ------------------------------------------------------------------------------------


def test_cold_start_then_warm(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    first = runtime.invoke(probe("counter"), {"n": 1})
    second = runtime.invoke(probe("counter"), {"n": 2})

    assert first.kind == second.kind == "response"
    assert first.payload["invocations"] == 1
    assert second.payload["invocations"] == 2  # module state survived: same environment
    assert first.payload["pid"] == second.payload["pid"]
    assert first.init_ms is not None and first.init_ms > 0
    assert second.init_ms is None
    assert first.log_stream == second.log_stream
    assert STREAM_RE.fullmatch(first.log_stream)
    assert first.log_group == "/aws/lambda/probe"

    cold, warm = sink.for_request(first), sink.for_request(second)
    assert re.fullmatch(
        r"INIT_START Runtime Version: python:3\.11\.v\d+\tRuntime Version ARN: "
        r"arn:aws:lambda:us-east-2::runtime:[0-9a-f]{64}\n",
        cold[0],
    )
    assert cold[1] == "module imported\n"  # printed at import: part of init, before START
    assert cold[2] == f"START RequestId: {first.request_id} Version: $LATEST\n"
    assert cold[3] == f"END RequestId: {first.request_id}\n"
    report = re.fullmatch(
        rf"REPORT RequestId: {first.request_id}\tDuration: (\d+\.\d\d) ms\tBilled Duration: (\d+) ms\t"
        r"Memory Size: 128 MB\tMax Memory Used: (\d+) MB\tInit Duration: (\d+\.\d\d) ms\t\n",
        cold[4],
    )
    assert report is not None, cold[4]
    duration, billed, memory, init = report.groups()
    assert int(billed) == lambda_logs.billed_duration_ms(float(duration), float(init))  # INIT is billed
    assert int(billed) == first.billed_ms
    assert int(memory) == first.max_memory_mb > 5
    assert float(init) == pytest.approx(first.init_ms, abs=0.01)

    assert [m.split(" ")[0] for m in warm] == ["START", "END", "REPORT"]
    assert "Init Duration" not in warm[2]
    assert second.billed_ms == lambda_logs.billed_duration_ms(second.duration_ms)


def test_revision_change_is_a_cold_start(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    before = runtime.invoke(probe("counter"), {})
    updated = probe("counter", environment={"STAGE": "two"})
    assert updated.revision != probe("counter").revision
    after = runtime.invoke(updated, {})

    assert after.init_ms is not None
    assert after.payload["invocations"] == 1
    assert after.payload["pid"] != before.payload["pid"]
    assert after.log_stream != before.log_stream
    assert sink.for_request(after)[0].startswith("INIT_START ")
    assert not pid_alive(before.payload["pid"])  # the old environment is retired, not kept idle


def test_config_from_a_moto_answer_follows_update_function_configuration(
    runtime: LambdaRuntime,
) -> None:
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    package = BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.write(FUNCTIONS / "lab_probe.py", "lab_probe.py")
    with moto.mock_aws():
        iam = boto3.client("iam", region_name="us-east-2")
        role = iam.create_role(RoleName="probe-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        aws_lambda = boto3.client("lambda", region_name="us-east-2")
        aws_lambda.create_function(
            FunctionName="probe",
            Runtime="python3.11",
            Role=role,
            Handler="lab_probe.counter",
            Code={"ZipFile": package.getvalue()},
            Timeout=5,
            MemorySize=256,
            Environment={"Variables": {"STAGE": "one"}},
        )
        answer = aws_lambda.get_function_configuration(FunctionName="probe")
        config = function_config_from_answer(answer, "us-east-2", code_path=str(FUNCTIONS))
        aws_lambda.update_function_configuration(
            FunctionName="probe", Environment={"Variables": {"STAGE": "two"}}
        )
        updated = function_config_from_answer(
            aws_lambda.get_function_configuration(FunctionName="probe"), "us-east-2", code_path=str(FUNCTIONS)
        )

    assert (config.handler, config.timeout_s, config.memory_mb, config.role_arn) == (
        "lab_probe.counter",
        5.0,
        256,
        role,
    )
    assert config.environment == {"STAGE": "one"}
    assert config.log_group == "/aws/lambda/probe"
    assert config.account_id == answer["FunctionArn"].split(":")[4]
    assert updated.revision != config.revision

    first = runtime.invoke(config, {})
    second = runtime.invoke(updated, {})
    assert first.payload["pid"] != second.payload["pid"]
    assert second.init_ms is not None


# -- the function's environment -----------------------------------------------------------------------------


def test_environment_is_isolated(runtime: LambdaRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIT_TEST_PARENT_ONLY", "must not leak")
    monkeypatch.setenv("AWS_PROFILE", "developer-profile")
    config = probe("environment", environment={"TABLE_NAME": "connections"}, memory_mb=256)
    result = runtime.invoke(
        config,
        {},
        credentials=LambdaCredentials("ASIAEXAMPLE", "secret", "token"),
        extra_env={"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:9999"},
    )
    environ = result.payload["environ"]

    assert "KIT_TEST_PARENT_ONLY" not in environ
    assert "AWS_PROFILE" not in environ
    assert environ["TABLE_NAME"] == "connections"
    assert environ["AWS_ENDPOINT_URL_DYNAMODB"] == "http://127.0.0.1:9999"
    assert (environ["AWS_ACCESS_KEY_ID"], environ["AWS_SECRET_ACCESS_KEY"], environ["AWS_SESSION_TOKEN"]) == (
        "ASIAEXAMPLE",
        "secret",
        "token",
    )
    assert environ["AWS_REGION"] == environ["AWS_DEFAULT_REGION"] == "us-east-2"
    assert environ["AWS_LAMBDA_FUNCTION_NAME"] == "probe"
    assert environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert environ["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert environ["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/probe"
    assert environ["AWS_LAMBDA_LOG_STREAM_NAME"] == result.log_stream
    assert environ["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert environ["LAMBDA_TASK_ROOT"] == str(FUNCTIONS)
    assert environ["_HANDLER"] == "lab_probe.environment"
    assert "AWS_LAMBDA_LOG_LEVEL" not in environ  # Text format: Lambda sets no level
    assert "AWS_LAMBDA_LOG_FORMAT" not in environ
    assert result.payload["cwd"] == str(FUNCTIONS)
    assert result.payload["path0"] == str(FUNCTIONS)


# -- handler resolution and init failures --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("handler", "error_type", "error_message"),
    [
        (
            "lab_probe",
            "Runtime.MalformedHandlerName",
            "Bad handler 'lab_probe': not enough values to unpack (expected 2, got 1)",
        ),
        (
            "no_such_module.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'no_such_module': No module named 'no_such_module'",
        ),
        ("lab_probe.missing", "Runtime.HandlerNotFound", "Handler 'missing' missing on module 'lab_probe'"),
        (
            "sys.handler",
            "Runtime.BuiltInModuleConflict",
            "Cannot use built-in module sys as a handler module",
        ),
    ],
)
def test_handler_errors(
    runtime: LambdaRuntime, sink: RecordingSink, handler: str, error_type: str, error_message: str
) -> None:
    result = runtime.invoke(probe("counter", handler=handler), {})

    assert result.kind == "init-error"
    assert result.error_type == error_type
    assert result.error_message == error_message
    assert result.payload == {
        "errorMessage": error_message,
        "errorType": error_type,
        "requestId": "",
        "stackTrace": [],
    }
    assert result.init_ms is None
    assert result.function_error == "Unhandled"
    _assert_failed_init_logs(sink.for_request(result), result, error_type, error_message)


def _assert_failed_init_logs(
    events: list[str], result: InvokeResult, error_type: str, error_message: str
) -> None:
    """INIT_START, then the runtime's two tries (init, then invoke phase), START, END, REPORT with Status."""
    events = [m for m in events if m != "module imported\n"]  # lab_probe prints while it is imported
    kinds = [m.split(" ")[0].split("\t")[0] for m in events]
    assert kinds == [
        "INIT_START",
        "[WARNING]",
        "[ERROR]",
        "INIT_REPORT",
        "[WARNING]",
        "[ERROR]",
        "INIT_REPORT",
        "START",
        "END",
        "REPORT",
    ], events
    assert re.fullmatch(r"\[WARNING\]\t\S+Z\t\tLAMBDA_WARNING: Unhandled exception\. .*\n", events[1])
    assert events[2].startswith(f"[ERROR] {error_type}: {error_message}\nTraceback (most recent call last):")
    assert re.fullmatch(
        rf"INIT_REPORT Init Duration: \d+\.\d\d ms\tPhase: init\tStatus: error\tError Type: {re.escape(error_type)}\n",
        events[3],
    )
    assert "\tPhase: invoke\tStatus: error\t" in events[6]
    assert re.fullmatch(
        rf"REPORT RequestId: {result.request_id}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
        rf"Memory Size: 128 MB\tMax Memory Used: \d+ MB\tStatus: error\tError Type: {re.escape(error_type)}\t\n",
        events[9],
    )


def test_syntax_error_in_the_module(runtime: LambdaRuntime, sink: RecordingSink, tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def handler(event, context:\n    return 1\n")
    result = runtime.invoke(probe("x", handler="broken.handler", code_path=str(tmp_path)), {})

    assert result.kind == "init-error"
    assert result.error_type == "Runtime.UserCodeSyntaxError"
    assert result.error_message is not None
    assert result.error_message.startswith("Syntax error in module 'broken': ")
    assert result.payload["stackTrace"][0].startswith(
        f'  File "{tmp_path / "broken.py"}" Line 1\n    def handler'
    )
    error_line = sink.for_request(result)[2]
    assert error_line.startswith("[ERROR] Runtime.UserCodeSyntaxError: Syntax error in module 'broken'")
    assert f'\n{NBSP * 2}File "{tmp_path / "broken.py"}" Line 1\n{NBSP * 4}def handler' in error_line


def test_exception_while_importing_the_module(
    runtime: LambdaRuntime, sink: RecordingSink, tmp_path: Path
) -> None:
    (tmp_path / "needs_config.py").write_text("import os\nTABLE = os.environ['TABLE_NAME']\n")
    result = runtime.invoke(probe("x", handler="needs_config.handler", code_path=str(tmp_path)), {})

    assert result.kind == "init-error"
    assert (result.error_type, result.error_message) == ("KeyError", "'TABLE_NAME'")
    assert any("needs_config.py" in frame for frame in result.payload["stackTrace"])
    assert "Error Type: KeyError" in sink.for_request(result)[-1]


def test_init_timeout_then_second_try_in_the_invoke_phase(sink: RecordingSink, tmp_path: Path) -> None:
    (tmp_path / "slow_import.py").write_text(
        "import time\ntime.sleep(0.6)\ndef handler(event, context):\n    return 'ok'\n"
    )
    config = probe("x", handler="slow_import.handler", code_path=str(tmp_path), timeout_s=3)
    with LambdaRuntime(sink, init_timeout_s=0.3) as lab_runtime:
        result = lab_runtime.invoke(config, {})

    assert result.kind == "response"
    assert result.payload == "ok"
    assert result.init_ms is None  # the second try ran in the invoke phase: its time is in Duration
    assert result.duration_ms > 550
    events = sink.for_request(result)
    assert events[0].startswith("INIT_START ")
    assert events[1] == "INIT_REPORT Init Duration: 300.00 ms\tPhase: init\tStatus: timeout\n"
    assert events[2].startswith("START ")
    assert "Init Duration" not in events[-1]


# -- invocation outcomes -------------------------------------------------------------------------------------


def test_uncaught_exception(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    result = runtime.invoke(probe("fail"), {"message": "connectionId missing"})

    assert result.kind == "function-error"
    assert result.function_error == "Unhandled"
    assert (result.error_type, result.error_message) == ("ValueError", "connectionId missing")
    assert result.payload["requestId"] == result.request_id
    assert set(result.payload) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    (frame,) = result.payload["stackTrace"]  # the runtime's own frames are not shown
    assert re.fullmatch(
        rf'  File "{re.escape(str(FUNCTIONS / "lab_probe.py"))}", line \d+, in fail\n    raise ValueError\(.*\)\n',
        frame,
    )

    events = sink.for_request(result)
    assert events[1:4] == [
        "module imported\n",
        f"START RequestId: {result.request_id} Version: $LATEST\n",
        "about to fail\n",
    ]
    error = events[4]
    assert error.startswith("[ERROR] ValueError: connectionId missing\nTraceback (most recent call last):\n")
    assert f'\n{NBSP * 2}File "{FUNCTIONS / "lab_probe.py"}", line ' in error
    assert f"\n{NBSP * 4}raise ValueError(" in error
    assert not error.endswith("\n")
    assert events[5] == f"END RequestId: {result.request_id}\n"
    assert "Status" not in events[6]  # an ordinary handler exception: no Status on REPORT

    again = runtime.invoke(probe("counter"), {})
    assert again.init_ms is not None  # different handler string -> different revision


def test_environment_survives_a_handler_exception(runtime: LambdaRuntime) -> None:
    config = probe("fail")
    first = runtime.invoke(config, {})
    second = runtime.invoke(config, {})
    assert first.kind == second.kind == "function-error"
    assert second.init_ms is None
    assert first.log_stream == second.log_stream


def test_timeout_kills_the_environment(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    config = probe("sleep", timeout_s=1)
    started = time.monotonic()
    result = runtime.invoke(config, {"seconds": 30})
    elapsed = time.monotonic() - started

    assert result.kind == "timeout"
    assert 0.9 < elapsed < 5
    assert result.payload == {
        "errorMessage": f"RequestId: {result.request_id} Error: Task timed out after 1.00 seconds",
        "errorType": "Sandbox.Timedout",
    }
    assert result.error_type == "Sandbox.Timedout"
    assert result.duration_ms == 1000.0
    events = sink.for_request(result)
    assert events[1:4] == [
        "module imported\n",
        f"START RequestId: {result.request_id} Version: $LATEST\n",
        "going to sleep\n",
    ]
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z {result.request_id} Task timed out after 1\.00 seconds\n",
        events[4],
    )
    assert events[5] == f"END RequestId: {result.request_id}\n"
    assert re.fullmatch(
        rf"REPORT RequestId: {result.request_id}\tDuration: 1000\.00 ms\tBilled Duration: (\d+) ms\t"
        r"Memory Size: 128 MB\tMax Memory Used: \d+ MB\tInit Duration: \d+\.\d\d ms\tStatus: timeout\t\n",
        events[6],
    )
    assert runtime.worker_pids("probe") == []

    replacement = runtime.invoke(config, {"seconds": 0})
    assert replacement.kind == "response"
    assert replacement.init_ms is not None  # the killed environment is replaced: cold start
    assert replacement.log_stream != result.log_stream


def test_process_exit_is_a_runtime_exit_error(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    result = runtime.invoke(probe("exit_process"), {})

    assert result.kind == "function-error"
    assert result.error_type == "Runtime.ExitError"
    assert (
        result.error_message
        == f"RequestId: {result.request_id} Error: Runtime exited with error: exit status 3"
    )
    events = sink.for_request(result)
    assert events[3:7] == [
        "exiting now\n",
        f"RequestId: {result.request_id} Error: Runtime exited with error: exit status 3\n",
        "Runtime.ExitError\n",
        f"END RequestId: {result.request_id}\n",
    ]
    assert events[7].endswith("\tStatus: error\tError Type: Runtime.ExitError\t\n")
    assert runtime.worker_pids() == []


# -- environments that die: while idle (nothing ran: a cold start) or during a request (Runtime.ExitError) ----


@pytest.mark.parametrize("noticed", ["before the request", "at the handover"])
def test_an_idle_environment_killed_from_outside_is_replaced_by_a_cold_start(
    runtime: LambdaRuntime, sink: RecordingSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, noticed: str
) -> None:
    if noticed == "at the handover":
        # A death the pool's check cannot see yet (the kill lands after it looked): only the request's
        # handover can tell that the environment never took the request.
        monkeypatch.setattr(runtime_module._Worker, "exited", lambda self: False)
    go, printed = tmp_path / "go", tmp_path / "printed"
    config = probe("print_after_return")
    first = runtime.invoke(config, {"go": str(go), "printed": str(printed)})
    go.touch()
    os.kill(first.payload["pid"], signal.SIGKILL)  # killed while frozen, its left-over work never ran
    wait_until(lambda: not pid_alive(first.payload["pid"]))

    second = runtime.invoke(config, {})

    assert second.kind == "response", second.payload
    assert second.function_error is None
    assert second.payload["pid"] != first.payload["pid"]
    assert second.init_ms is not None  # a cold start, as Lambda gives after losing an environment
    assert second.log_stream != first.log_stream
    events = sink.for_request(second)
    assert events[0].startswith("INIT_START Runtime Version: ")
    assert events[1:3] == ["module imported\n", f"START RequestId: {second.request_id} Version: $LATEST\n"]
    assert not any("Runtime.ExitError" in m or "Runtime exited" in m for m in sink.messages())
    # The frozen environment's thread never ran: the work it was left with is lost, as on Lambda.
    assert not printed.exists()
    assert not any("printed after the handler returned" in m for m in sink.messages())
    assert runtime.worker_pids("probe") == [second.payload["pid"]]


# -- frozen environments: work left running resumes in a later invocation, or never ---------------------------


def test_left_over_work_waits_frozen_and_resumes_in_the_next_invocation(
    runtime: LambdaRuntime, sink: RecordingSink, tmp_path: Path
) -> None:
    go, printed = tmp_path / "go", tmp_path / "printed"
    config = probe("print_after_return")
    first = runtime.invoke(config, {"go": str(go), "printed": str(printed)})
    assert runtime.worker_pids("probe", idle_only=True) == [first.payload["pid"]]
    go.touch()
    time.sleep(0.5)  # 50 times the thread's poll: it would have printed, were it not frozen
    assert not printed.exists()
    wait_until(
        lambda: Path(f"/proc/{first.payload['pid']}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    )

    second = runtime.invoke(config, {"linger": 0.3})  # the same environment, thawed for this request

    assert second.payload["pid"] == first.payload["pid"]
    assert printed.exists()
    events = sink.for_request(second)
    line = events.index(f"printed after the handler returned ({go})\n")
    assert events.index(f"START RequestId: {second.request_id} Version: $LATEST\n") < line
    assert line < events.index(f"END RequestId: {second.request_id}\n")
    assert not any("printed after" in m for m in sink.for_request(first))


def test_left_over_work_of_a_discarded_environment_never_runs(
    runtime: LambdaRuntime, sink: RecordingSink, tmp_path: Path
) -> None:
    go, printed = tmp_path / "go", tmp_path / "printed"
    first = runtime.invoke(probe("print_after_return"), {"go": str(go), "printed": str(printed)})
    go.touch()
    # A configuration change retires the idle environment: it is killed while frozen.
    changed = runtime.invoke(probe("print_after_return", memory_mb=256), {})
    assert changed.init_ms is not None and changed.payload["pid"] != first.payload["pid"]
    wait_until(lambda: not pid_alive(first.payload["pid"]))
    time.sleep(0.3)
    assert not printed.exists()
    assert not any("printed after the handler returned" in m for m in sink.messages())


def test_threads_started_at_init_are_frozen_too(runtime: LambdaRuntime) -> None:
    config = probe("handler", handler="ticker.handler")
    first = runtime.invoke(config, {})
    time.sleep(0.6)  # 30 ticks, were it running
    second = runtime.invoke(config, {})
    assert second.init_ms is None
    assert second.payload["ticks"] - first.payload["ticks"] <= 3


def test_every_dead_idle_environment_is_forgotten(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    config = probe("sleep")
    invoke_at_once(runtime, config, {"seconds": 0.3}, 3)
    pids = runtime.worker_pids("probe")
    assert len(pids) == 3
    assert runtime.worker_pids("probe", idle_only=True) == pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not any(pid_alive(pid) for pid in pids))

    after = [runtime.invoke(config, {"seconds": 0}) for _ in range(3)]

    assert [r.kind for r in after] == ["response"] * 3
    assert [r.init_ms is not None for r in after] == [True, False, False]  # one cold start, then warm
    assert runtime.worker_pids("probe") == [after[0].payload["pid"]]
    assert not any("Runtime.ExitError" in m for m in sink.messages())


def test_an_environment_killed_during_a_request_is_a_runtime_exit_error(
    runtime: LambdaRuntime, sink: RecordingSink, tmp_path: Path
) -> None:
    config = probe("announce_and_sleep", timeout_s=30)
    announce = tmp_path / "pid"
    warm = runtime.invoke(config, {"announce": str(tmp_path / "warm-pid"), "seconds": 0})
    assert warm.kind == "response"
    results: list[InvokeResult] = []
    thread = threading.Thread(
        target=lambda: results.append(runtime.invoke(config, {"announce": str(announce), "seconds": 60}))
    )
    thread.start()
    pid = int(wait_until(lambda: announce.exists() and announce.read_text()))
    assert pid == warm.payload["pid"]  # the warm environment took the request
    assert runtime.worker_pids("probe") == [pid]
    assert runtime.worker_pids("probe", idle_only=True) == []
    os.kill(pid, signal.SIGKILL)
    thread.join(timeout=10)
    assert not thread.is_alive()

    (result,) = results
    assert result.kind == "function-error"
    assert result.function_error == "Unhandled"  # what the Invoke API's caller sees
    reason = "Runtime exited with error: signal: killed"
    assert result.payload == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {result.request_id} Error: {reason}",
    }
    assert (result.error_type, result.error_message) == ("Runtime.ExitError", result.payload["errorMessage"])
    assert sink.for_request(result)[:4] == [
        f"START RequestId: {result.request_id} Version: $LATEST\n",
        f"RequestId: {result.request_id} Error: {reason}\n",
        "Runtime.ExitError\n",
        f"END RequestId: {result.request_id}\n",
    ]
    report = sink.for_request(result)[4]
    assert report.startswith(f"REPORT RequestId: {result.request_id}\tDuration: ")
    assert "Init Duration" not in report
    assert report.endswith("\tStatus: error\tError Type: Runtime.ExitError\t\n")
    assert runtime.worker_pids("probe") == []

    # The environment is reset: the next request is a cold start in a new environment.
    after = runtime.invoke(config, {"announce": str(tmp_path / "after-pid"), "seconds": 0})
    assert after.kind == "response"
    assert after.payload["pid"] != pid
    assert after.init_ms is not None
    assert after.log_stream not in (warm.log_stream, result.log_stream)


def test_response_marshalling(runtime: LambdaRuntime) -> None:
    unserialisable = runtime.invoke(probe("unserialisable"), {})
    assert unserialisable.kind == "function-error"
    assert unserialisable.error_type == "Runtime.MarshalError"
    assert (
        unserialisable.error_message
        == "Unable to marshal response: Object of type set is not JSON serializable"
    )

    decimals = runtime.invoke(probe("decimals"), {})
    assert decimals.payload == {"price": 1.10, "count": 3}


# -- logging -------------------------------------------------------------------------------------------------


def test_text_format_drops_info_records_and_prints_raw(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    result = runtime.invoke(probe("logs"), {})
    events = sink.for_request(result)
    body = events[events.index(f"START RequestId: {result.request_id} Version: $LATEST\n") + 1 : -2]
    rid = result.request_id
    ts = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"

    assert not any("info record" in m or "debug record" in m for m in events)  # root logger at WARNING
    assert re.fullmatch(rf"\[WARNING\]\t{ts}\t{rid}\twarning record\n", body[0])
    assert re.fullmatch(rf"\[ERROR\]\t{ts}\t{rid}\terror record\nsecond line of the same record\n", body[1])
    assert body[2:] == [
        "printed line\n",
        "two\n",
        "lines\n",
        '{"level": "debug", "message": "json debug line"}\n',  # Text format: no level filtering
        "to stderr\n",
        "straight to fd 1\n",
    ]


def test_text_format_honours_a_level_set_through_the_environment(
    runtime: LambdaRuntime, sink: RecordingSink
) -> None:
    # AWS_LAMBDA_LOG_LEVEL is not reserved: the runtime reads it whoever set it.
    result = runtime.invoke(probe("logs", environment={"AWS_LAMBDA_LOG_LEVEL": "INFO"}), {})
    events = sink.for_request(result)
    assert any(re.fullmatch(rf"\[INFO\]\t\S+\t{result.request_id}\tinfo record\n", m) for m in events)
    assert not any("debug record" in m for m in events)


def test_json_format_keeps_info_records_with_log_level_info(
    runtime: LambdaRuntime, sink: RecordingSink
) -> None:
    result = runtime.invoke(probe("logs", log_format="JSON", log_level="INFO"), {})
    events = sink.for_request(result)
    records = [json.loads(m) for m in events if m.startswith("{")]

    platform = [r["type"] for r in records if "type" in r]
    assert platform == [
        "platform.initStart",
        "platform.initRuntimeDone",
        "platform.initReport",
        "platform.start",
        "platform.runtimeDone",
        "platform.report",
    ]
    report = next(r for r in records if r.get("type") == "platform.report")["record"]
    assert report["requestId"] == result.request_id
    assert report["status"] == "success"
    assert report["metrics"]["billedDurationMs"] == result.billed_ms
    assert "initDurationMs" in report["metrics"]

    application = [r for r in records if "level" in r]
    assert [(r["level"], r["message"]) for r in application] == [
        ("INFO", "info record"),
        ("WARNING", "warning record"),
        ("ERROR", "error record\nsecond line of the same record"),
    ]
    assert all(r["requestId"] == result.request_id and r["logger"] in ("probe", "root") for r in application)
    assert "printed line\n" in events  # print() stays plain text
    assert not any("json debug line" in m for m in events)  # a DEBUG JSON line is below INFO
    assert not any(m.startswith(("START", "END", "REPORT")) for m in events)


def test_json_format_debug_level_and_quiet_system_logs(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    config = probe("logs", log_format="JSON", log_level="DEBUG", system_log_level="WARN")
    result = runtime.invoke(config, {})
    events = sink.for_request(result)
    assert any('"message": "debug record"' in m for m in events)
    assert any("json debug line" in m for m in events)
    assert not any('"type":"platform.' in m for m in events)  # nothing at WARN from the platform


def test_json_format_uncaught_error(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    result = runtime.invoke(probe("fail", log_format="JSON"), {})
    events = [json.loads(m) for m in sink.for_request(result) if m.startswith("{")]
    error = next(e for e in events if e.get("level") == "ERROR")
    assert error["errorType"] == "ValueError"
    assert error["requestId"] == result.request_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", error["timestamp"])
    report = next(e for e in events if e.get("type") == "platform.report")["record"]
    assert (report["status"], report["errorType"]) == ("failure", "ValueError")


def test_context_object(runtime: LambdaRuntime) -> None:
    result = runtime.invoke(probe("context_fields", timeout_s=2), {"sleep": 0.2})
    context = result.payload
    first, second = context["remaining"]
    assert 1500 < first <= 2000
    assert 150 <= first - second < 1000
    assert context["aws_request_id"] == result.request_id
    assert context["function_name"] == "probe"
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"] == "arn:aws:lambda:us-east-2:123456789012:function:probe"
    assert context["memory_limit_in_mb"] == "128"  # a string, as in the Python runtime
    assert context["log_group_name"] == "/aws/lambda/probe"
    assert context["log_stream_name"] == result.log_stream


# -- concurrency and life cycle ------------------------------------------------------------------------------


def test_concurrent_invokes_use_separate_environments(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    config = probe("sleep")
    results = invoke_at_once(runtime, config, {"seconds": 0.5}, 3)

    assert [r.kind for r in results] == ["response"] * 3
    assert len({r.payload["pid"] for r in results}) == 3
    assert len({r.log_stream for r in results}) == 3
    assert all(r.init_ms is not None for r in results)
    assert len(runtime.worker_pids("probe")) == 3  # all three stay warm

    warm = runtime.invoke(config, {"seconds": 0})
    assert warm.init_ms is None
    assert warm.payload["pid"] in {r.payload["pid"] for r in results}


def test_requests_queue_at_the_cap(sink: RecordingSink) -> None:
    config = probe("sleep")
    with LambdaRuntime(sink, max_workers_per_function=1) as lab_runtime:
        lab_runtime.invoke(config, {"seconds": 0})  # warm it up
        started = time.monotonic()
        results = invoke_at_once(lab_runtime, config, {"seconds": 0.3}, 2)
        elapsed = time.monotonic() - started

    assert len({r.payload["pid"] for r in results}) == 1
    assert elapsed >= 0.6  # one environment: the second request waited for the first


def test_close_leaves_no_worker_processes(sink: RecordingSink) -> None:
    lab_runtime = LambdaRuntime(sink)
    lab_runtime.invoke(probe("counter"), {})
    lab_runtime.invoke(probe("counter", function_name="other"), {})
    pids = lab_runtime.worker_pids()
    assert len(pids) == 2
    assert set(pids) <= set(worker_children())

    lab_runtime.close()

    assert not any(pid_alive(pid) for pid in pids)
    assert worker_children() == []
    with pytest.raises(EngineError, match="closed"):
        lab_runtime.invoke(probe("counter"), {})


def test_close_while_a_request_runs(sink: RecordingSink, tmp_path: Path) -> None:
    lab_runtime = LambdaRuntime(sink)
    results: list[InvokeResult] = []
    announce = tmp_path / "pid"
    event = {"announce": str(announce), "seconds": 30}
    thread = threading.Thread(
        target=lambda: results.append(lab_runtime.invoke(probe("announce_and_sleep", timeout_s=60), event))
    )
    thread.start()
    wait_until(announce.exists, timeout=30)  # the handler runs (a close during init is another case)
    lab_runtime.close()
    thread.join(timeout=5)

    assert not thread.is_alive()
    assert results and results[0].error_type == "Runtime.ExitError"
    assert worker_children() == []


def test_workers_die_with_the_lab_process(tmp_path: Path) -> None:
    script = tmp_path / "lab.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, time
            from kit.lab.lambda_config import FunctionConfig
            from kit.lab.runtime import LambdaRuntime
            runtime = LambdaRuntime(lambda group, stream, events: None)
            config = FunctionConfig(function_name="probe", handler="lab_probe.counter", code_path={str(FUNCTIONS)!r})
            print(runtime.invoke(config, {{}}).payload["pid"], flush=True)
            time.sleep(60)
            """
        )
    )
    lab = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, cwd=PROJECT_ROOT, text=True)
    try:
        assert lab.stdout is not None
        worker_pid = int(lab.stdout.readline())
        assert pid_alive(worker_pid)
        lab.send_signal(signal.SIGKILL)
        lab.wait(timeout=5)
        deadline = time.monotonic() + 5
        while pid_alive(worker_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(worker_pid)
    finally:
        lab.kill()
        lab.wait()


def test_failing_sink_does_not_fail_the_request(caplog: pytest.LogCaptureFixture) -> None:
    def broken_sink(group: str, stream: str, events: list[tuple[int, str]]) -> None:
        raise RuntimeError("CloudWatch is down")

    with LambdaRuntime(broken_sink) as lab_runtime, caplog.at_level(logging.ERROR, logger="kit.lab.runtime"):
        result = lab_runtime.invoke(probe("counter"), {})
    assert result.kind == "response"
    assert "log sink failed" in caplog.text


def test_ainvoke(runtime: LambdaRuntime) -> None:
    async def both() -> list[InvokeResult]:
        return list(
            await asyncio.gather(runtime.ainvoke(probe("counter"), {}), runtime.ainvoke(probe("counter"), {}))
        )

    results = asyncio.run(both())
    assert sorted(r.kind for r in results) == ["response", "response"]


def test_event_must_be_json(runtime: LambdaRuntime) -> None:
    with pytest.raises(ConfigurationError, match="not JSON-serialisable"):
        runtime.invoke(probe("counter"), {"when": object()})


def test_megabytes_of_logs_are_cut_as_cloudwatch_cuts_events(
    runtime: LambdaRuntime, sink: RecordingSink
) -> None:
    """A handler that prints a 600 KB line and 5 MB of lines: the invocation completes, every line is kept
    (none dropped), and the CloudWatch writer cuts the long one to the event limit, marked."""
    from kit.lab import engines
    from kit.lab.cloudwatch import CUT_MARK, MAX_MESSAGE_BYTES, LogWriter

    result = runtime.invoke(probe("loud", timeout_s=30), {"line": 600_000, "lines": 5_000})
    assert result.kind == "response"
    events = sink.for_request(result)
    assert sum(len(m) for m in events) > 5_600_000  # the runtime handed everything over
    moto = engines.start_moto()
    try:
        logs = local_logs_client(moto.endpoint_url)
        writer = LogWriter(logs)
        now_ms = int(time.time() * 1000)
        writer.write(result.log_group, result.log_stream, [(now_ms, m) for m in events])
        writer.close()
        stored = [
            event["message"]
            for page in logs.get_paginator("filter_log_events").paginate(logGroupName=result.log_group)
            for event in page["events"]
        ]
    finally:
        moto.stop()
    assert len(stored) == len(events)
    assert max(len(m.encode()) for m in stored) <= MAX_MESSAGE_BYTES
    (long_line,) = [m for m in stored if m.startswith("L")]
    assert long_line.endswith(CUT_MARK) and long_line.startswith("L" * 200_000)


def local_logs_client(endpoint_url: str) -> Any:
    import boto3

    from kit.local import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY

    return boto3.client(
        "logs",
        endpoint_url=endpoint_url,
        region_name="us-east-2",
        aws_access_key_id=LOCAL_ACCESS_KEY_ID,
        aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
    )
