"""A function's configuration: read from GetFunctionConfiguration answers, checked as Lambda checks it."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from kit.errors import ConfigurationError
from kit.lab.lambda_config import (
    DEFAULT_ACCOUNT_ID,
    RESERVED_VARIABLES,
    account_of,
    function_config_from_answer,
)
from kit.lab.lambda_environment import LambdaCredentials

from .lambda_function import function

ARN = "arn:aws:lambda:us-east-2:210987654321:function:connect"


# -- what Lambda refuses, and the boundaries it accepts ------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"environment": {"AWS_REGION": "x"}}, "Reserved keys used in this request: AWS_REGION"),
        ({"log_level": "INFO"}, 'LogLevel is not supported when LogFormat is set to "Text"'),
        ({"log_format": "yaml"}, "log format 'yaml'"),
        ({"log_format": "JSON", "log_level": "LOUD"}, "application log level 'LOUD'"),
        ({"runtime": "java17"}, "uses runtime java17; the lab runs Python runtimes"),
        ({"runtime": "nodejs16.x"}, "uses runtime nodejs16.x"),
        ({"memory_mb": 64}, "outside Lambda's 128-10240 MB"),
        ({"timeout_s": 0}, "timeout must be positive"),
    ],
)
def test_configurations_lambda_refuses(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        function(**changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"memory_mb": 127}, "memory size 127 MB is outside", id="memory one below"),
        pytest.param({"memory_mb": 10241}, "memory size 10241 MB is outside", id="memory one above"),
        pytest.param({"timeout_s": -1}, "timeout must be positive, not -1", id="negative timeout"),
        pytest.param({"runtime": "python2.7"}, "uses runtime python2.7", id="python 2"),
        pytest.param({"system_log_level": "WARN"}, "LogLevel is not supported", id="system level in Text"),
        pytest.param(
            {"log_format": "JSON", "system_log_level": "ERROR"},
            "system log level 'ERROR' is not one of DEBUG, INFO, WARN",
            id="system level Lambda does not have",
        ),
        pytest.param(
            {"environment": {"_HANDLER": "x", "AWS_REGION": "y", "TABLE_NAME": "t"}},
            "Reserved keys used in this request: AWS_REGION, _HANDLER",
            id="every reserved key named, sorted",
        ),
    ],
)
def test_boundaries_lambda_refuses(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        function(**changes)


@pytest.mark.parametrize("variable", sorted(RESERVED_VARIABLES))
def test_every_reserved_variable_is_refused(variable: str) -> None:
    with pytest.raises(
        ConfigurationError, match=f"Reserved keys used in this request: {re.escape(variable)}$"
    ):
        function(environment={variable: "x"})


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"memory_mb": 128}, id="smallest memory"),
        pytest.param({"memory_mb": 10240}, id="largest memory"),
        pytest.param({"timeout_s": 0.001}, id="tiny timeout"),
        pytest.param({"timeout_s": 900}, id="Lambda's longest timeout"),
        pytest.param({"runtime": "python3.9"}, id="older Python"),
        pytest.param({"runtime": "python3.13"}, id="newer Python"),
        pytest.param(
            {
                "environment": {
                    v: "x" for v in ("PATH", "LANG", "TZ", "PYTHONPATH", "LD_LIBRARY_PATH", "NODE_PATH")
                }
            },
            id="variables Lambda sets but lets a function override",
        ),
        pytest.param(
            {"environment": {"AWS_LAMBDA_LOG_LEVEL": "DEBUG"}}, id="a level through the environment"
        ),
        pytest.param({"environment": {"AWS_ENDPOINT_URL": "http://x"}}, id="an endpoint of its own"),
        pytest.param({"runtime": "nodejs18.x"}, id="the oldest Node.js runtime the lab runs"),
        pytest.param({"runtime": "nodejs22.x"}, id="the newest Node.js runtime the lab runs"),
        pytest.param(
            {"log_format": "JSON", "log_level": "trace", "system_log_level": "debug"}, id="lower case"
        ),
    ],
)
def test_boundaries_lambda_accepts(changes: dict[str, Any]) -> None:
    assert function(**changes).function_name == "probe"


@pytest.mark.parametrize(
    ("written", "stored"),
    [("Text", "Text"), ("text", "Text"), ("TEXT", "Text"), ("json", "JSON"), ("Json", "JSON")],
)
def test_log_format_is_stored_in_lambdas_spelling(written: str, stored: str) -> None:
    assert function(log_format=written).log_format == stored


@pytest.mark.parametrize(
    ("changes", "application", "system"),
    [
        pytest.param({}, None, None, id="Text: no level applies"),
        pytest.param({"log_format": "JSON"}, "INFO", "INFO", id="JSON: INFO unless configured"),
        pytest.param({"log_format": "JSON", "log_level": "debug"}, "DEBUG", "INFO", id="application level"),
        pytest.param({"log_format": "JSON", "system_log_level": "warn"}, "INFO", "WARN", id="system level"),
        pytest.param(
            {"log_format": "JSON", "log_level": "TRACE", "system_log_level": "DEBUG"},
            "TRACE",
            "DEBUG",
            id="both",
        ),
    ],
)
def test_levels_in_effect(changes: dict[str, Any], application: str | None, system: str | None) -> None:
    config = function(**changes)
    assert (config.application_log_level, config.effective_system_log_level) == (application, system)


def test_config_is_frozen_and_carries_its_arn() -> None:
    config = function()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.timeout_s = 9  # type: ignore[misc]
    assert config.function_arn == "arn:aws:lambda:us-east-2:123456789012:function:probe"
    assert function(log_group="/custom/group").log_group == "/custom/group"
    assert function().revision == function().revision
    assert function(revision="r1").revision == "r1"
    assert "secret" not in repr(LambdaCredentials("AKIA", "secret", "token"))


def test_the_environment_is_copied() -> None:
    variables = {"STAGE": "one"}
    config = function(environment=variables)
    variables["STAGE"] = "two"
    assert config.environment == {"STAGE": "one"}


# -- reading a GetFunctionConfiguration answer ---------------------------------------------------------------


FULL_ANSWER: dict[str, Any] = {
    "FunctionName": "connect",
    "FunctionArn": ARN,
    "Runtime": "python3.12",
    "Role": "arn:aws:iam::210987654321:role/connect-role",
    "Handler": "app.handler",
    "CodeSha256": "abc=",
    "Timeout": 10,
    "MemorySize": 256,
    "LastModified": "2025-01-01T00:00:00.000+0000",
    "Version": "$LATEST",
    "Environment": {"Variables": {"TABLE_NAME": "connections", "RETRIES": 3}},
    "LoggingConfig": {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "DEBUG",
        "SystemLogLevel": "WARN",
        "LogGroup": "/custom/connect",
    },
    "State": "Active",
}


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(
            {"FunctionName": "bare"},
            {
                "function_name": "bare",
                "handler": "",
                "runtime": "python3.11",
                "timeout_s": 3.0,
                "memory_mb": 128,
                "environment": {},
                "role_arn": "",
                "log_format": "Text",
                "log_level": None,
                "system_log_level": None,
                "log_group": "/aws/lambda/bare",
                "account_id": DEFAULT_ACCOUNT_ID,
                "region": "eu-west-1",
            },
            id="only a name: Lambda's defaults",
        ),
        pytest.param(
            FULL_ANSWER,
            {
                "function_name": "connect",
                "handler": "app.handler",
                "runtime": "python3.12",
                "timeout_s": 10.0,
                "memory_mb": 256,
                "environment": {"TABLE_NAME": "connections", "RETRIES": "3"},
                "role_arn": "arn:aws:iam::210987654321:role/connect-role",
                "log_format": "JSON",
                "log_level": "DEBUG",
                "system_log_level": "WARN",
                "log_group": "/custom/connect",
                "account_id": "210987654321",
                "region": "eu-west-1",
            },
            id="everything set; values become text",
        ),
        pytest.param(
            {"FunctionName": "f", "Environment": {}, "LoggingConfig": {"LogFormat": "Text"}},
            {"environment": {}, "log_format": "Text", "log_group": "/aws/lambda/f"},
            id="empty Environment, Text format",
        ),
        pytest.param(
            {"FunctionName": "f", "Environment": {"Variables": None}, "LoggingConfig": None, "Timeout": None},
            {"environment": {}, "log_format": "Text", "timeout_s": 3.0},
            id="nulls read as absent",
        ),
    ],
)
def test_function_config_from_answer(answer: dict[str, Any], expected: dict[str, Any]) -> None:
    config = function_config_from_answer(answer, "eu-west-1", code_path="/task")
    assert config.code_path == "/task"
    assert {key: getattr(config, key) for key in expected} == expected


def test_an_answer_lambda_would_refuse_is_refused() -> None:
    answer = {**FULL_ANSWER, "Environment": {"Variables": {"AWS_REGION": "x"}}}
    with pytest.raises(ConfigurationError, match="Reserved keys used in this request: AWS_REGION"):
        function_config_from_answer(answer, "us-east-2")


@pytest.mark.parametrize(
    ("change", "new_revision"),
    [
        pytest.param({"Environment": {"Variables": {"TABLE_NAME": "other"}}}, True, id="environment"),
        pytest.param({"Timeout": 11}, True, id="timeout"),
        pytest.param({"MemorySize": 512}, True, id="memory"),
        pytest.param({"Handler": "app.other"}, True, id="handler"),
        pytest.param({"Role": "arn:aws:iam::210987654321:role/other"}, True, id="role"),
        pytest.param({"CodeSha256": "def="}, True, id="code"),
        pytest.param(
            {"LastModified": "2025-01-02T00:00:00.000+0000"}, True, id="moto's only sign of an update"
        ),
        pytest.param({"RevisionId": "r2"}, True, id="AWS's revision id"),
        pytest.param({"LoggingConfig": {"LogFormat": "Text"}}, True, id="logging"),
        pytest.param({"State": "Pending"}, False, id="state describes no configuration"),
        pytest.param({"LastUpdateStatus": "InProgress"}, False, id="update status neither"),
        pytest.param({}, False, id="the same answer"),
    ],
)
def test_revision_follows_what_describes_the_function(change: dict[str, Any], new_revision: bool) -> None:
    before = function_config_from_answer(FULL_ANSWER, "us-east-2")
    after = function_config_from_answer({**FULL_ANSWER, **change}, "us-east-2")
    assert (after.revision != before.revision) is new_revision


def test_revision_follows_the_code_path() -> None:
    one = function_config_from_answer(FULL_ANSWER, "us-east-2", code_path="/one")
    two = function_config_from_answer(FULL_ANSWER, "us-east-2", code_path="/two")
    assert one.revision != two.revision


@pytest.mark.parametrize(
    ("arn", "account"),
    [
        (ARN, "210987654321"),
        ("arn:aws:lambda:us-east-2::function:connect", DEFAULT_ACCOUNT_ID),
        ("", DEFAULT_ACCOUNT_ID),
        ("connect", DEFAULT_ACCOUNT_ID),
    ],
)
def test_account_of(arn: str, account: str) -> None:
    assert account_of(arn) == account
