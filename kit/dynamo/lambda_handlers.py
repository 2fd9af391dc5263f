"""``$connect`` handlers run the way Lambda runs them, for :mod:`kit.dynamo.exercise`: the kit's handlers in
Node.js (``seed.mjs``, ``app.mjs``) or in a Python runtime, or the user's own function from a folder.

    choose(runtime, function_path, function_handler)  which code runs, or a one-line ConfigurationError (pure
                                                      but for looking at the path and for ``node`` on PATH)
    running(target, codes)                            a context manager: {name: handler} for
                                                      ``exercise_connect_handlers(handlers=...)``
    describe(codes)                                   what runs, for the reader
    exercise_chosen(target, runtime, path, handler)   the exercise on whichever code was chosen

Each handler here is a call into the lab's Lambda runtime (:class:`kit.lab.runtime.LambdaRuntime`): the
function runs in a worker process of its own with Lambda's environment, console format and errors, not in
this kernel. It reads what a Lambda function would get from the environment that
:func:`exercise.handler_environment` sets for the call (``TABLE_NAME``, ``TABLE_REGION``, ``AUTH_MODE``, the
kit's credentials standing for the execution role's, ``AWS_ENDPOINT_URL_DYNAMODB``), so the same cases aim
it at the same tables. Its log lines come back as log records on :data:`LOGGER_NAME`, each marked with
whether it reached CloudWatch.

Only the lab: the runtime lets functions reach 127.0.0.1 alone, so against a real account this refuses
rather than run code that could not reach the account.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd

from kit import logparse
from kit.dynamo import exercise
from kit.errors import ConfigurationError
from kit.lab import function_source, lambda_config, lambda_runtimes
from kit.lab.function_source import FunctionSource
from kit.lab.lambda_config import FunctionConfig
from kit.lab.lambda_environment import LambdaCredentials
from kit.lab.provision import HANDLER_DIR
from kit.lab.runtime import LambdaRuntime
from kit.target import Target

LOGGER_NAME: Final = "kit.dynamo.lambda_handlers"
PYTHON_RUNTIME: Final = "python3.12"  # what "python" means for code run in the lab's runtime
FUNCTION_TIMEOUT_S: Final = 10.0
# Notebook 01's parameters, named in what function_source says is wrong with them.
PARAMETER_NAMES: Final = {
    "function": "function_path",
    "handler": "function_handler",
    "runtime": "handler_runtime",
}

# The variables of the call's environment a function gets as its own configuration; the rest of what it
# needs (credentials, the lab's endpoints) arrives as Lambda gives it, not as configured variables.
FUNCTION_VARIABLES: Final = (
    "TABLE_NAME",
    "TABLE_REGION",
    "INDEX_NAME",
    "AUTH_MODE",
    "AUTH_SECRET",
    "MANAGEMENT_ENDPOINT",
    "AWS_LAMBDA_LOG_LEVEL",
)
ENDPOINT_VARIABLES: Final = ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI")
# A console line's message after the runtime's prefix: Node's ``<time>\t<id>\t<LEVEL>\t`` or Python's
# ``[LEVEL]\t<time>\t<id>\t``.
_CONSOLE_PREFIX: Final = re.compile(
    r"(?:\d{4}-[^\t]*Z\t[^\t]*\t[A-Z]+\t|\[[A-Z]+\]\t[^\t]*Z\t[^\t]*\t)(.*)", re.S
)

# Lambda's console level names → logging's, for the records handed back.
_LEVELS: Final = {
    "TRACE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "CRITICAL": logging.CRITICAL,
}


@dataclass(frozen=True)
class HandlerCode:
    """One function to run: its column name, Lambda's handler string, runtime and code folder."""

    name: str
    handler: str
    runtime: str
    code_path: str
    source: FunctionSource | None = None  # the user's code, installed (a .zip extracted) when it runs


def choose(runtime: str, function_path: str = "", function_handler: str = "") -> list[HandlerCode]:
    """Which functions run; an empty list means the kit's Python handlers in this kernel (the default).

    ``runtime``: ``python`` or empty (in this kernel unless a function path is given), a Python runtime
    (``python3.12``) or a Node.js one (``nodejs20.x``). Without ``function_path``, the kit's seed and fixed
    handlers in that runtime; with it, the user's function (a folder or a deployment .zip, read and checked
    as ``kit lab up --function`` reads it; ``function_handler`` is Lambda's handler string, the console's
    default when empty; the runtime detected from its files unless one is given) beside the kit's fixed
    handler in the same language.
    """
    chosen = runtime.strip() or "python"
    if function_path:
        source = function_source.function_source(
            function_path,
            function_handler or None,
            None if chosen == "python" else chosen,
            names=PARAMETER_NAMES,
        )
        chosen = source.runtime
    elif chosen == "python":
        return []
    refusal = lambda_runtimes.refusal("exercise", chosen)
    if refusal is not None:
        raise ConfigurationError(f"handler_runtime {chosen!r}: {refusal.split('; ', 1)[1]}")
    missing = lambda_runtimes.missing_tool(chosen)
    if missing is not None:
        raise ConfigurationError(missing)
    extension = ".mjs" if lambda_runtimes.family(chosen) == "node" else ".py"
    fixed = HandlerCode(f"fixed ({extension})", "app.handler", chosen, str(HANDLER_DIR))
    if not function_path:
        return [HandlerCode(f"seed ({extension})", "seed.handler", chosen, str(HANDLER_DIR)), fixed]
    return [HandlerCode("yours", source.handler, chosen, str(source.path), source), fixed]


Handler = Callable[[dict[str, Any], Any], Mapping[str, Any]]


class Sink:
    """Keeps each request's CloudWatch events until its handler call reads them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[tuple[str, str, list[tuple[int, str]]]] = []

    def __call__(self, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        with self._lock:
            self._events.append((group, stream, events))

    def take(self, log_group: str) -> list[dict[str, Any]]:
        with self._lock:
            mine = [entry for entry in self._events if entry[0] == log_group]
            self._events = [entry for entry in self._events if entry[0] != log_group]
        return [
            {"timestamp": ts, "message": message, "logStreamName": stream}
            for _, stream, events in mine
            for ts, message in events
        ]


def _hand_back(events: list[dict[str, Any]], log_group: str) -> None:
    """The function's own lines (not the platform's) as records on LOGGER_NAME; all reached CloudWatch."""
    if not events:
        return
    logger = logging.getLogger(LOGGER_NAME)
    lines = logparse.parse(logparse.events_frame(events, log_group=log_group))
    for _, line in lines[lines["kind"].isin(["app", "error"])].iterrows():
        level = (
            _LEVELS.get(str(line["level"]).upper(), logging.INFO)
            if line["level"] is not None
            else logging.INFO
        )
        text = str(line["message"])
        prefixed = _CONSOLE_PREFIX.fullmatch(text)
        message = (prefixed.group(1) if prefixed else text).rstrip("\n")
        logger.log(level, "%s", message, extra={"lambda_kept": True})


def _call_environment() -> tuple[dict[str, str], LambdaCredentials | None, dict[str, str]]:
    """What the function gets from the call's environment: its variables, credentials, the lab's endpoint."""
    variables = {name: os.environ[name] for name in FUNCTION_VARIABLES if os.environ.get(name)}
    key_id, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    credentials = (
        LambdaCredentials(key_id, secret, os.environ.get("AWS_SESSION_TOKEN")) if key_id and secret else None
    )
    endpoints = {name: os.environ[name] for name in ENDPOINT_VARIABLES if os.environ.get(name)}
    return variables, credentials, endpoints


def runtime_handler(runtime: LambdaRuntime, sink: Sink, code: HandlerCode, region: str) -> Handler:
    """``code`` as a ``handler(event, context)`` that invokes it in ``runtime`` (whose sink is ``sink``)."""

    def call(event: dict[str, Any], context: Any) -> Mapping[str, Any]:
        variables, credentials, extra_env = _call_environment()
        config = FunctionConfig(
            function_name=f"kit-exercise-{''.join(c if c.isalnum() else '-' for c in code.name).strip('-')}",
            handler=code.handler,
            runtime=code.runtime,
            code_path=code.code_path,
            environment=variables,
            timeout_s=FUNCTION_TIMEOUT_S,
            region=region,
            account_id=lambda_config.DEFAULT_ACCOUNT_ID,
        )
        result = runtime.invoke(config, event, credentials=credentials, extra_env=extra_env)
        _hand_back(sink.take(config.log_group), config.log_group)
        if result.kind == "response" and isinstance(result.payload, Mapping):
            return result.payload
        if result.kind == "response":
            return {"statusCode": None, "body": f"not a proxy response: {result.payload!r}"[:240]}
        # What API Gateway makes of a failed function on $connect.
        return {
            "statusCode": 502,
            "body": f"the function failed ({result.error_type}: {result.error_message}); "
            "API Gateway answers 502",
        }

    return call


@contextlib.contextmanager
def running(target: Target, codes: Sequence[HandlerCode]) -> Iterator[dict[str, Handler]]:
    """``{name: handler}`` for ``codes``, each run in one lab Lambda runtime that is closed on exit."""
    if not codes:
        raise ConfigurationError("no function to run; choose() returns them")
    if target.kind != "lab":
        raise ConfigurationError(
            "handler_runtime/function_path run code in the lab's Lambda runtime, which reaches only "
            f"127.0.0.1, not target {target.label}; use target lab, or leave handler_runtime at python to "
            "run the kit's handlers in this kernel."
        )
    sink = Sink()
    with tempfile.TemporaryDirectory(prefix="kit-exercise-") as work, LambdaRuntime(sink) as runtime:
        installed = []
        for index, code in enumerate(codes):
            placed = code
            if code.source is not None:  # the user's code where the runtime runs it, as the lab installs it
                folder = Path(work) / f"task-{index}"
                function_source.install(code.source, folder)
                placed = dataclasses.replace(code, code_path=str(folder))
            installed.append(placed)
        yield {code.name: runtime_handler(runtime, sink, code, target.region) for code in installed}


def describe(codes: Sequence[HandlerCode]) -> pd.DataFrame:
    """What runs, one row per function: its column name, handler string, runtime, and code folder's name
    (not its local path). Empty codes: the kit's handlers in this kernel."""
    if not codes:
        rows = [
            {"handler": name, "runs": "in this kernel (Python)", "code": f"kit/handler/{name}.py"}
            for name in ("seed", "app")
        ]
        return pd.DataFrame(rows)
    return pd.DataFrame(
        [
            {
                "handler": code.name,
                "runs": f"{code.handler} on {code.runtime}, in the lab's Lambda runtime",
                "code": "kit/handler" if Path(code.code_path) == HANDLER_DIR else Path(code.code_path).name,
            }
            for code in codes
        ]
    )


def exercise_chosen(
    target: Target,
    runtime: str = "python",
    function_path: str = "",
    function_handler: str = "",
    *,
    allow_writes: bool = False,
) -> pd.DataFrame:
    """``exercise.exercise_connect_handlers`` on the chosen code: in this kernel, or in the lab's runtime."""
    codes = choose(runtime, function_path, function_handler)
    if not codes:
        return exercise.exercise_connect_handlers(target, allow_writes=allow_writes)
    with running(target, codes) as handlers:
        return exercise.exercise_connect_handlers(target, allow_writes=allow_writes, handlers=handlers)
