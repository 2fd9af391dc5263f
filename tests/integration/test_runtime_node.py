"""The lab's Lambda runtime running Node.js functions (tests/functions/node) as Lambda's Node.js runtimes do.

One runtime for the module: each test's function name or handler string is its own, so each gets its own
execution environment (a cold start) unless it means to reuse one.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kit.lab import lambda_runtimes
from kit.lab.lambda_config import FunctionConfig
from kit.lab.runtime import LambdaRuntime
from kit.logparse import events_frame, invocations, parse

from .labclient import wait_until
from .test_runtime import RecordingSink

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("node") is None, reason="no `node` on PATH: the Node.js runtime cannot run"
    ),
]

NODE_FUNCTIONS = Path(__file__).resolve().parents[1] / "functions" / "node"
_TASK_ROOT: dict[str, Path] = {}  # the module's copy of NODE_FUNCTIONS, set by the ``runtime`` fixture
PROJECT_ROOT = Path(__file__).resolve().parents[2]
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@pytest.fixture(scope="module")
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of tests/functions/node outside the project, as on Lambda: no node_modules in any parent, so
    the SDK is found only through NODE_PATH (or a function's own node_modules)."""
    copy = tmp_path_factory.mktemp("node-functions") / "task"
    shutil.copytree(NODE_FUNCTIONS, copy)
    return copy


@pytest.fixture(scope="module")
def runtime(sink: RecordingSink, code: Path) -> Iterator[LambdaRuntime]:
    _TASK_ROOT["path"] = code
    with LambdaRuntime(sink) as lab_runtime:
        yield lab_runtime


def node(handler: str, **changes: Any) -> FunctionConfig:
    """A nodejs20.x function running ``handler`` from tests/functions/node, named after the handler."""
    fields: dict[str, Any] = {
        "function_name": "node-" + re.sub(r"[^A-Za-z0-9-]", "-", handler),
        "handler": handler,
        "runtime": "nodejs20.x",
        "code_path": str(_TASK_ROOT["path"]),
        "region": "us-east-2",
        "timeout_s": 3,
    }
    fields.update(changes)
    return FunctionConfig(**fields)


def console_line(message: str) -> tuple[str, str, str]:
    """(request id, level, message) of a Text-format console event; fails on any other shape."""
    match = re.fullmatch(rf"{ISO}\t([^\t]*)\t(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)\t(.*)\n", message, re.S)
    assert match, f"not a console line: {message!r}"
    return match.group(1), match.group(2), match.group(3)


# -- cold and warm starts, platform lines ----------------------------------------------------------------------


def test_cold_start_then_warm(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    """Row: platform lines."""
    config = node("probe.counter")
    first = runtime.invoke(config, {})
    second = runtime.invoke(config, {})

    assert first.kind == second.kind == "response"
    assert (first.payload["invocations"], second.payload["invocations"]) == (1, 2)  # module state stays warm
    assert first.payload["pid"] == second.payload["pid"]
    assert first.init_ms is not None and second.init_ms is None
    events = sink.for_request(first)
    assert re.fullmatch(
        r"INIT_START Runtime Version: nodejs:20\.v75\tRuntime Version ARN: "
        r"arn:aws:lambda:us-east-2::runtime:[0-9a-f]{64}\n",
        events[0],
    )
    assert console_line(events[1]) == ("undefined", "INFO", "module imported")  # init: no request id yet
    assert events[2] == f"START RequestId: {first.request_id} Version: $LATEST\n"
    assert events[3] == f"END RequestId: {first.request_id}\n"
    assert re.fullmatch(
        rf"REPORT RequestId: {first.request_id}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
        r"Memory Size: 128 MB\tMax Memory Used: \d+ MB\tInit Duration: \d+\.\d\d ms\t\n",
        events[4],
    )


def test_environment_is_lambdas(runtime: LambdaRuntime) -> None:
    config = node("probe.environment", memory_mb=256, environment={"TABLE_NAME": "t"})
    result = runtime.invoke(config, {}, extra_env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    environ = result.payload["environ"]

    assert environ["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs20.x"
    assert environ["_HANDLER"] == "probe.environment"
    assert environ["LAMBDA_TASK_ROOT"] == str(_TASK_ROOT["path"]) == result.payload["cwd"]
    assert environ["NODE_PATH"] == f"{PROJECT_ROOT / 'node_modules'}:{_TASK_ROOT['path']}"
    assert environ["TZ"] == ":UTC" and environ["LANG"] == "en_US.UTF-8"
    assert environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
    assert environ["TABLE_NAME"] == "t"
    assert "PYTHONPATH" not in environ and "VIRTUAL_ENV" not in environ  # nothing of the lab's own
    # Lambda's bootstrap: heap sized from the memory, require(esm) off (where this node has it).
    assert {"--expose-gc", "--max-semi-space-size=12", "--max-old-space-size=231"} <= set(
        result.payload["argv"]
    )


def test_a_function_may_set_its_own_node_path(runtime: LambdaRuntime) -> None:
    config = node("probe.environment", function_name="node-own-path", environment={"NODE_PATH": "/opt/mine"})
    result = runtime.invoke(config, {})
    # The bootstrap sets NODE_PATH only when it is unset, so the SDK is not found through it any more: this
    # module imports it, so the function fails to start, as on Lambda. An ES module's failed import is not
    # MODULE_NOT_FOUND, so the runtime passes it through as a plain Error.
    assert result.kind == "init-error"
    assert result.error_type == "Error"
    assert "Cannot find package '@aws-sdk/client-dynamodb'" in str(result.error_message)


def test_context_object(runtime: LambdaRuntime) -> None:
    config = node("probe.contextFields", timeout_s=5)
    result = runtime.invoke(config, {})
    fields = result.payload

    assert fields["awsRequestId"] == result.request_id
    assert fields["functionName"] == config.function_name
    assert fields["functionVersion"] == "$LATEST"
    assert fields["invokedFunctionArn"] == config.function_arn
    assert fields["memoryLimitInMB"] == "128"  # a string, as in the runtime
    assert fields["logGroupName"] == f"/aws/lambda/{config.function_name}"
    assert fields["logStreamName"] == result.log_stream
    assert fields["callbackWaitsForEmptyEventLoop"] is True
    first, second = fields["remaining"]
    assert 4000 < first <= 5000
    assert 150 <= first - second < 1500


# -- handler resolution: module kinds, paths, and the errors of each failure ---------------------------------


@pytest.mark.parametrize(
    ("handler", "payload"),
    [
        (
            "cjs/handler.run",
            {"module": "commonjs", "sdk": "function"},
        ),  # nested path, require, SDK via NODE_PATH
        ("esm-package/app.handler", {"module": "esm from .js", "meta": "string"}),  # "type": "module"
        ("ext/fn.handler", {"module": ".cjs"}),
        ("probe.nested.deeper.handler", "nested property"),  # a property path after the first dot
        ("bundled/index.handler", {"marker": "the function bundled its own SDK"}),  # its own copy wins
    ],
)
def test_handler_resolution(runtime: LambdaRuntime, handler: str, payload: Any) -> None:
    """Row: handler resolution and module kinds."""
    result = runtime.invoke(node(handler), {})
    assert (result.kind, result.payload) == ("response", payload)


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        ("nothing-here.handler", "Runtime.ImportModuleError", "Error: Cannot find module 'nothing-here'"),
        ("probe.missing", "Runtime.HandlerNotFound", "probe.missing is undefined or not exported"),
        ("probe.notAFunction", "Runtime.HandlerNotFound", "probe.notAFunction is not a function"),
        ("probe", "Runtime.MalformedHandlerName", "Bad handler"),
        (
            "../probe.counter",
            "Runtime.MalformedHandlerName",
            "'../probe.counter' is not a valid handler name. Use absolute paths when specifying root "
            "directories in handler names.",
        ),
        ("broken/syntax.handler", "Runtime.UserCodeSyntaxError", "SyntaxError: "),
        # ES syntax in a CommonJS .js file is a SyntaxError too; require(esm) is off, as on Lambda.
        (
            "broken/esm-required.handler",
            "Runtime.UserCodeSyntaxError",
            "SyntaxError: Unexpected token 'export'",
        ),
    ],
)
def test_init_errors(
    runtime: LambdaRuntime, sink: RecordingSink, handler: str, error_type: str, message: str
) -> None:
    """Row: init errors."""
    result = runtime.invoke(node(handler), {})

    assert result.kind == "init-error"
    assert result.error_type == error_type
    assert result.error_message is not None and result.error_message.startswith(message)
    assert result.payload["trace"][0].startswith(f"{error_type}: {message}")
    events = sink.for_request(result)
    # Logged as the runtime logs it, twice (init, then Lambda's second try in the invoke phase).
    uncaught = [e for e in events if "\tUncaught Exception \t" in e]
    assert len(uncaught) == 2
    request_id, level, text = console_line(uncaught[0])
    assert (request_id, level) == ("undefined", "ERROR")
    document = json.loads(text.removeprefix("Uncaught Exception \t"))
    assert document["errorType"] == error_type and document["errorMessage"].startswith(message)
    assert document["stack"][0].startswith(f"{error_type}: ")
    reports = [e for e in events if e.startswith("INIT_REPORT")]
    assert [("Phase: init" in r, "Phase: invoke" in r) for r in reports] == [(True, False), (False, True)]
    assert all(r.endswith(f"\tStatus: error\tError Type: {error_type}\n") for r in reports)


# -- completion: promises, callbacks, context.done/succeed/fail --------------------------------------------


def test_invoke_error_is_logged_and_answered_as_lambda_does(
    runtime: LambdaRuntime, sink: RecordingSink
) -> None:
    """Row: Invoke Error record."""
    result = runtime.invoke(node("probe.fail"), {"message": "connectionId missing"})

    assert result.kind == "function-error" and result.function_error == "Unhandled"
    assert result.payload["errorType"] == "TypeError"
    assert result.payload["errorMessage"] == "connectionId missing"
    assert result.payload["trace"][0] == "TypeError: connectionId missing"
    assert any("probe.mjs" in frame for frame in result.payload["trace"])
    events = sink.for_request(result)
    logged = [e for e in events if "\tInvoke Error \t" in e]
    assert len(logged) == 1
    request_id, level, text = console_line(logged[0])
    assert (request_id, level) == (result.request_id, "ERROR")
    document = json.loads(text.removeprefix("Invoke Error \t"))
    assert (document["errorType"], document["errorMessage"], document["code"]) == (
        "TypeError",
        "connectionId missing",
        "E_PROBE",
    )
    assert document["stack"][0] == "TypeError: connectionId missing"
    assert "Status" not in events[-1]  # an ordinary handler error: no Status on REPORT


def test_a_thrown_string(runtime: LambdaRuntime) -> None:
    result = runtime.invoke(node("probe.failWithString"), {})
    assert result.payload == {"errorType": "string", "errorMessage": "plain words", "trace": []}


def test_callback_waits_for_the_empty_event_loop(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    """Row: callbackWaitsForEmptyEventLoop."""
    result = runtime.invoke(node("probe.callbackWaits"), {})
    assert result.payload == {"answered": True}
    events = sink.for_request(result)
    timer = next(i for i, e in enumerate(events) if "timer before the answer" in e)
    assert timer < events.index(f"END RequestId: {result.request_id}\n")
    assert result.duration_ms >= 90  # the answer waited for the timer
    # The deprecation warning of RIC v3 for callback handlers, once, at init.
    assert sum("plans to remove support for callback-based function handlers" in e for e in events) == 1


def test_callback_without_waiting_leaves_work_for_the_next_invocation(
    runtime: LambdaRuntime, sink: RecordingSink
) -> None:
    """Row: work left running after the answer."""
    config = node("probe.callbackNoWait")
    first = runtime.invoke(config, {})
    assert first.payload == {"answered": True}
    assert first.duration_ms < 90
    assert not any("timer left behind" in e for e in sink.for_request(first))
    second = runtime.invoke(config, {"answer_after_ms": 250})
    events = sink.for_request(second)
    # The first invocation's timer fires once the environment runs again: in the second one's window.
    start = events.index(f"START RequestId: {second.request_id} Version: $LATEST\n")
    end = events.index(f"END RequestId: {second.request_id}\n")
    assert any("timer left behind" in e for e in events[start:end])


def test_timers_started_at_init_are_frozen_between_invocations(runtime: LambdaRuntime) -> None:
    config = node("ticker.handler")
    first = runtime.invoke(config, {})
    pid = runtime.worker_pids(config.function_name, idle_only=True)[0]
    # Stopped (the signal lands a moment after the answer).
    wait_until(lambda: Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T")
    time.sleep(0.6)  # 30 ticks, were it running
    second = runtime.invoke(config, {"linger": 0.2})
    assert second.init_ms is None
    # Thawed, the overdue timer fires once, then ten more ticks while the handler lingers.
    assert second.payload["ticks"] - first.payload["ticks"] <= 15


def test_callback_error(runtime: LambdaRuntime) -> None:
    result = runtime.invoke(node("probe.callbackError"), {})
    assert (result.error_type, result.error_message) == ("RangeError", "from the callback")


def test_context_succeed_answers_at_once_and_only_once(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    result = runtime.invoke(node("probe.succeedAtOnce"), {})
    assert result.payload == {"succeeded": True}
    assert result.duration_ms < 90  # no wait for the timer
    assert not any("Invoke Error" in e for e in sink.for_request(result))


def test_context_fail_without_an_error_is_handled(runtime: LambdaRuntime) -> None:
    result = runtime.invoke(node("probe.failWithoutError"), {})
    assert result.payload == {"errorType": "string", "errorMessage": "handled", "trace": []}


def test_a_plain_handler_that_returns_nothing_answers_null_once_the_loop_is_empty(
    runtime: LambdaRuntime, sink: RecordingSink
) -> None:
    result = runtime.invoke(node("probe.returnsNothing"), {})
    assert (result.kind, result.payload) == ("response", None)
    events = sink.for_request(result)
    assert any("last timer" in e for e in events[: events.index(f"END RequestId: {result.request_id}\n")])


def test_an_async_handler_that_never_settles_is_a_node_js_exit(runtime: LambdaRuntime) -> None:
    result = runtime.invoke(node("probe.neverSettles"), {})
    assert result.error_type == "Runtime.NodeJsExit"
    assert result.error_message is not None
    assert result.error_message.startswith(
        "The Lambda runtime client detected an unexpected Node.js exit code."
    )


def test_marshal_failure(runtime: LambdaRuntime) -> None:
    result = runtime.invoke(node("probe.circular"), {})
    assert (result.error_type, result.error_message) == ("Error", "Unable to stringify response body")


# -- what ends an environment ----------------------------------------------------------------------------------


def test_unhandled_rejection(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    """Row: unhandled rejection."""
    config = node("probe.rejectsUnhandled")
    result = runtime.invoke(config, {})

    assert result.error_type == "Runtime.UnhandledPromiseRejection"
    assert result.error_message == "Error: HelloError"
    events = sink.for_request(result)
    (line,) = [e for e in events if "\tUnhandled Promise Rejection \t" in e]
    request_id, level, text = console_line(line)
    assert (request_id, level) == (result.request_id, "ERROR")
    document = json.loads(text.removeprefix("Unhandled Promise Rejection \t"))
    assert document["errorType"] == "Runtime.UnhandledPromiseRejection"
    assert document["reason"]["errorMessage"] == "HelloError"
    # The runtime exits (128) after answering: the next request is a cold start.
    assert runtime.invoke(config, {}).init_ms is not None


def test_uncaught_exception_during_an_invoke(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    config = node("probe.throwsLater")
    result = runtime.invoke(config, {})
    assert (result.error_type, result.error_message) == ("Error", "thrown from a timer")
    assert any("\tUncaught Exception \t" in e for e in sink.for_request(result))
    assert runtime.invoke(config, {}).init_ms is not None


def test_process_exit_is_a_runtime_exit_error(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    """Row: process exit in a handler."""
    result = runtime.invoke(node("probe.exitProcess"), {})
    assert result.error_type == "Runtime.ExitError"
    assert (
        result.error_message
        == f"RequestId: {result.request_id} Error: Runtime exited with error: exit status 3"
    )
    events = sink.for_request(result)
    assert events[-4:-2] == [
        f"RequestId: {result.request_id} Error: Runtime exited with error: exit status 3\n",
        "Runtime.ExitError\n",
    ]


def test_a_handler_that_loops_forever_is_ended_at_its_timeout(
    runtime: LambdaRuntime, sink: RecordingSink
) -> None:
    """Row: a handler that never yields."""
    config = node("probe.loopForever", timeout_s=1)
    result = runtime.invoke(config, {})
    assert result.kind == "timeout"
    assert result.payload == {
        "errorMessage": f"RequestId: {result.request_id} Error: Task timed out after 1.00 seconds",
        "errorType": "Sandbox.Timedout",
    }
    events = sink.for_request(result)
    assert any(
        re.fullmatch(rf"{ISO} {result.request_id} Task timed out after 1\.00 seconds\n", e) for e in events
    )
    assert events[-1].endswith("\tStatus: timeout\t\n")
    assert runtime.worker_pids(config.function_name) == []


# -- console output: Text and JSON formats, levels ---------------------------------------------------------


def test_console_in_text_format(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    """Row: console line format."""
    result = runtime.invoke(node("probe.logs"), {})
    events = sink.for_request(result)
    start = events.index(f"START RequestId: {result.request_id} Version: $LATEST\n")
    lines = events[start + 1 : start + 9]

    read = [console_line(line) for line in lines[:7]]
    assert [request_id for request_id, _, _ in read] == [result.request_id] * 7
    assert [(level, text.split("\n")[0]) for _, level, text in read] == [
        ("TRACE", "at trace"),  # no AWS_LAMBDA_LOG_LEVEL: everything is written
        ("DEBUG", "at debug"),
        ("INFO", "at info formatted"),
        ("INFO", "two"),  # console.log is INFO; one event, newline kept
        ("WARN", "at warn"),
        ("ERROR", "at error Error: logged error"),
        ("FATAL", "at fatal"),
    ]
    assert read[3][2] == "two\nlines { nested: { value: 1 } }"
    assert lines[7] == "raw stdout line\n"  # process.stdout.write: a raw line of its own


def test_log_level_through_the_environment_applies_in_text_format(
    runtime: LambdaRuntime, sink: RecordingSink
) -> None:
    config = node("probe.logs", function_name="node-logs-warn", environment={"AWS_LAMBDA_LOG_LEVEL": "WARN"})
    events = sink.for_request(runtime.invoke(config, {}))
    levels = [console_line(e)[1] for e in events if re.match(ISO + "\t", e)]
    assert levels == ["WARN", "ERROR", "FATAL"]


def test_console_in_json_format(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    """Row: log level and JSON format."""
    config = node("json-package/index.handler", log_format="JSON", log_level="INFO", system_log_level="WARN")
    result = runtime.invoke(config, {})
    records = [json.loads(m) for m in sink.for_request(result)]

    assert [r["message"] for r in records[:2]] == ["kept at info", {"structured": True}]  # debug dropped
    assert all(r["requestId"] == result.request_id for r in records)
    assert {r["level"] for r in records} == {"INFO", "ERROR"}
    error = records[2]
    assert error["message"].startswith("failed Error: inside")
    assert (error["errorType"], error["errorMessage"]) == ("Error", "inside")
    assert error["stackTrace"][0] == "Error: inside"
    assert len(records) == 3  # system level WARN: no platform records


# -- the AWS SDK the runtime provides, and the network --------------------------------------------------------


def test_sdk_reaches_the_lab_through_the_endpoint_variables(
    runtime: LambdaRuntime, dynamodb: Any, dynamodb_engine: Any, table_name: str
) -> None:
    """Row: environment and SDK."""
    from kit.dynamo import schema

    schema.create_table(dynamodb, name=table_name)
    from kit.lab.lambda_environment import LambdaCredentials
    from kit.local import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY

    config = node("probe.putAndGet", environment={"TABLE_NAME": table_name})
    connection_id = uuid.uuid4().hex
    result = runtime.invoke(
        config,
        {"id": connection_id},
        credentials=LambdaCredentials(LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY),
        extra_env={"AWS_ENDPOINT_URL_DYNAMODB": dynamodb_engine.endpoint_url},
    )
    assert result.payload == {"connectionId": connection_id, "source": "node"}
    stored = dynamodb.get_item(TableName=table_name, Key={"connectionId": {"S": connection_id}})
    assert stored["Item"]["source"] == {"S": "node"}


def test_names_outside_loopback_do_not_resolve(runtime: LambdaRuntime) -> None:
    result = runtime.invoke(node("probe.lookup"), {"host": "abc123.execute-api.us-east-2.amazonaws.com"})
    assert "ENOTFOUND" in result.payload and "outside the kit lab" in result.payload


# -- the log parser reads Node's lines as it reads Python's ----------------------------------------------------


def test_logparse_reads_node_invocations(runtime: LambdaRuntime, sink: RecordingSink) -> None:
    ok = runtime.invoke(node("probe.counter", function_name="node-parse"), {})
    failed = runtime.invoke(node("probe.fail", function_name="node-parse"), {})
    stream_events = [
        {"timestamp": ts, "message": m, "logStreamName": s}
        for group, s, batch in sink.calls
        if group == "/aws/lambda/node-parse"
        for ts, m in batch
    ]
    frame = invocations(parse(events_frame(stream_events, log_group="/aws/lambda/node-parse")))
    rows = frame.set_index("request_id")
    assert set(rows.index) >= {ok.request_id, failed.request_id}
    assert (rows.loc[ok.request_id, "status"], rows.loc[failed.request_id, "status"]) == ("success", "error")
    assert rows.loc[failed.request_id, "error_type"] == "TypeError"
    assert rows.loc[failed.request_id, "error_message"] == "boom"
    assert bool(rows.loc[ok.request_id, "cold_start"]) and bool(rows.loc[failed.request_id, "cold_start"])


# -- the machine's node --------------------------------------------------------------------------------------


def test_a_differing_major_version_is_said_once(
    sink: RecordingSink, caplog: pytest.LogCaptureFixture
) -> None:
    machine_major = int(
        __import__("subprocess")
        .run(["node", "-p", "process.versions.node"], capture_output=True, text=True)
        .stdout.split(".")[0]
    )
    other = next(r for r, major in lambda_runtimes.NODE_RUNTIMES.items() if major != machine_major)
    with LambdaRuntime(sink) as lab_runtime, caplog.at_level(logging.WARNING, logger="kit.lab.runtime"):
        for name in ("node-version-a", "node-version-b"):
            result = lab_runtime.invoke(node("probe.counter", function_name=name, runtime=other), {})
            assert result.kind == "response"
    said = [r.getMessage() for r in caplog.records if "run on this machine's Node.js" in r.getMessage()]
    assert len(said) == 1 and other in said[0]
