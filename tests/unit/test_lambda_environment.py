"""The environment a function's process starts with: Lambda's variables, in Lambda's order of precedence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kit.lab import lambda_environment
from kit.lab.lambda_config import RESERVED_VARIABLES, FunctionConfig
from kit.lab.lambda_environment import (
    LambdaCredentials,
    environment_fingerprint,
    python_defaults,
    task_root,
    worker_environment,
)

from .lambda_function import function

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CREDENTIALS = LambdaCredentials("ASIAEXAMPLE", "secret", "token")


def environ_of(
    config: FunctionConfig,
    *,
    credentials: LambdaCredentials | None = None,
    extra_env: dict[str, str] | None = None,
) -> dict[str, str]:
    return worker_environment(
        config,
        python_defaults("/venv/bin/python", "/project"),
        log_stream="2025/01/01/[$LATEST]0123",
        credentials=credentials,
        extra_env=extra_env,
        task_root=task_root(config, "/project"),
        tmp_dir="/tmp/kit-lambda-x",
    )


def test_worker_environment_precedence() -> None:
    config = function(environment={"PATH": "/custom/bin", "TZ": "Europe/Paris"}, log_format="JSON")
    environ = worker_environment(
        config,
        python_defaults("/venv/bin/python", PROJECT_ROOT),
        log_stream="stream",
        credentials=None,
        extra_env={"AWS_REGION": "lab-wins"},
        task_root=task_root(config, PROJECT_ROOT),
        tmp_dir="/tmp/x",
    )
    assert environ["PATH"] == "/custom/bin"  # Lambda lets a function override PATH and TZ
    assert environ["TZ"] == "Europe/Paris"
    assert environ["AWS_LAMBDA_LOG_FORMAT"] == "JSON"
    assert environ["AWS_LAMBDA_LOG_LEVEL"] == "INFO"  # JSON format: INFO unless configured
    assert environ["AWS_REGION"] == "lab-wins"  # extra_env is applied last
    assert "AWS_ACCESS_KEY_ID" not in environ
    assert environ["PYTHONPATH"] == str(PROJECT_ROOT)


@pytest.mark.parametrize(
    ("function_env", "credentials", "extra_env", "variable", "value"),
    [
        pytest.param({}, None, {}, "PATH", "/venv/bin:/usr/local/bin:/usr/bin:/bin", id="PATH: the default"),
        pytest.param(
            {"PATH": "/mine"}, None, {}, "PATH", "/mine", id="PATH: the function's beats the default"
        ),
        pytest.param(
            {"PATH": "/mine"}, None, {"PATH": "/lab"}, "PATH", "/lab", id="PATH: extra_env beats both"
        ),
        pytest.param({}, None, {}, "LANG", "en_US.UTF-8", id="LANG: the default"),
        pytest.param({"LANG": "C"}, None, {}, "LANG", "C", id="LANG: the function's"),
        pytest.param({}, None, {}, "TZ", ":UTC", id="TZ: the default"),
        pytest.param({}, None, {}, "PYTHONPATH", "/project", id="PYTHONPATH: the worker's import path"),
        pytest.param(
            {"PYTHONPATH": "/opt/lib"},
            None,
            {},
            "PYTHONPATH",
            "/opt/lib:/project",
            id="PYTHONPATH: the function's, then the worker's",
        ),
        pytest.param(
            {"PYTHONPATH": "/opt/lib"},
            None,
            {"PYTHONPATH": "/lab"},
            "PYTHONPATH",
            "/lab",
            id="PYTHONPATH: extra",
        ),
        pytest.param({}, CREDENTIALS, {}, "AWS_ACCESS_KEY_ID", "ASIAEXAMPLE", id="credentials: key id"),
        pytest.param({}, CREDENTIALS, {}, "AWS_SECRET_ACCESS_KEY", "secret", id="credentials: secret"),
        pytest.param({}, CREDENTIALS, {}, "AWS_SESSION_TOKEN", "token", id="credentials: token"),
        pytest.param(
            {}, LambdaCredentials("AKIA", "s"), {}, "AWS_SESSION_TOKEN", None, id="credentials: no token"
        ),
        pytest.param(
            {},
            LambdaCredentials("AKIA", "s", ""),
            {},
            "AWS_SESSION_TOKEN",
            None,
            id="credentials: empty token",
        ),
        pytest.param({}, None, {}, "AWS_ACCESS_KEY_ID", None, id="no credentials: no keys"),
        pytest.param(
            {},
            CREDENTIALS,
            {"AWS_ACCESS_KEY_ID": "LAB"},
            "AWS_ACCESS_KEY_ID",
            "LAB",
            id="extra_env beats credentials",
        ),
        pytest.param(
            {},
            None,
            {"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:9"},
            "AWS_ENDPOINT_URL_DYNAMODB",
            "http://127.0.0.1:9",
            id="the lab's endpoint",
        ),
        pytest.param(
            {"AWS_ENDPOINT_URL": "http://mine"},
            None,
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:5"},
            "AWS_ENDPOINT_URL",
            "http://127.0.0.1:5",
            id="the lab's endpoint beats the function's",
        ),
        pytest.param({"TABLE_NAME": "t"}, None, {}, "TABLE_NAME", "t", id="the function's own variable"),
        pytest.param(
            {"AWS_LAMBDA_LOG_LEVEL": "DEBUG"},
            None,
            {},
            "AWS_LAMBDA_LOG_LEVEL",
            "DEBUG",
            id="Text format: a level the function sets itself stays",
        ),
    ],
)
def test_precedence(
    function_env: dict[str, str],
    credentials: LambdaCredentials | None,
    extra_env: dict[str, str],
    variable: str,
    value: str | None,
) -> None:
    environ = environ_of(function(environment=function_env), credentials=credentials, extra_env=extra_env)
    assert environ.get(variable) == value


@pytest.mark.parametrize(
    ("changes", "log_format", "log_level"),
    [
        pytest.param({}, None, None, id="Text: Lambda sets neither"),
        pytest.param({"log_format": "JSON"}, "JSON", "INFO", id="JSON: INFO unless configured"),
        pytest.param({"log_format": "JSON", "log_level": "trace"}, "JSON", "TRACE", id="JSON: as configured"),
        pytest.param(
            {"log_format": "JSON", "log_level": "ERROR", "environment": {"AWS_LAMBDA_LOG_LEVEL": "DEBUG"}},
            "JSON",
            "ERROR",
            id="JSON: the configured level beats the function's variable",
        ),
    ],
)
def test_log_variables(changes: dict[str, Any], log_format: str | None, log_level: str | None) -> None:
    environ = environ_of(function(**changes))
    assert (environ.get("AWS_LAMBDA_LOG_FORMAT"), environ.get("AWS_LAMBDA_LOG_LEVEL")) == (
        log_format,
        log_level,
    )


def test_lambdas_own_variables() -> None:
    config = function(memory_mb=256, runtime="python3.12", log_group="/custom/probe", code_path="/var/task")
    environ = environ_of(config)
    assert {key: environ[key] for key in environ if key not in ("PATH", "LANG", "TZ", "PYTHONPATH")} == {
        "_HANDLER": "lab_probe.counter",
        "AWS_REGION": "us-east-2",
        "AWS_DEFAULT_REGION": "us-east-2",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": "probe",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/custom/probe",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2025/01/01/[$LATEST]0123",
        "LAMBDA_TASK_ROOT": "/var/task",
        # The lab's additions: a private /tmp, and no way to read the developer's ~/.aws.
        "TMPDIR": "/tmp/kit-lambda-x",
        "AWS_CONFIG_FILE": "/tmp/kit-lambda-x/.aws-config-absent",
        "AWS_SHARED_CREDENTIALS_FILE": "/tmp/kit-lambda-x/.aws-credentials-absent",
    }


def test_nothing_of_the_labs_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIT_TEST_PARENT_ONLY", "must not leak")
    monkeypatch.setenv("AWS_PROFILE", "developer-profile")
    environ = environ_of(function(), credentials=CREDENTIALS)
    assert "KIT_TEST_PARENT_ONLY" not in environ
    assert "AWS_PROFILE" not in environ


def test_what_lambda_sets_a_function_cannot_set() -> None:
    """Every variable Lambda sets, apart from those it lets a function set too, is reserved: a function
    can never have configured one of them, so the precedence between them never shows."""
    environ = environ_of(function(log_format="JSON"), credentials=CREDENTIALS)
    unreserved = {"PATH", "LANG", "TZ", "PYTHONPATH", "AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL"}
    labs_own = {"TMPDIR", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"}
    assert set(environ) - unreserved - labs_own <= RESERVED_VARIABLES


@pytest.mark.parametrize(
    ("code_path", "root"), [("/var/task", "/var/task"), (None, "/project"), ("", "/project")]
)
def test_task_root(code_path: str | None, root: str) -> None:
    assert task_root(function(code_path=code_path), Path("/project")) == root


def test_python_defaults() -> None:
    defaults = python_defaults("/opt/py/bin/python3", Path("/project"))
    assert defaults.overridable["PATH"] == f"/opt/py/bin:{lambda_environment.SYSTEM_PATH}"
    assert defaults.search_paths == {"PYTHONPATH": "/project"}


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        pytest.param((CREDENTIALS, {"A": "1"}), (CREDENTIALS, {"A": "1"}), True, id="same"),
        pytest.param((None, None), (None, {}), True, id="no extra variables either way"),
        pytest.param(
            (None, {"A": "1", "B": "2"}), (None, {"B": "2", "A": "1"}), True, id="order is irrelevant"
        ),
        pytest.param((CREDENTIALS, None), (None, None), False, id="credentials or none"),
        pytest.param(
            (CREDENTIALS, None),
            (LambdaCredentials("ASIAEXAMPLE", "secret", "new"), None),
            False,
            id="new token",
        ),
        pytest.param((None, {"A": "1"}), (None, {"A": "2"}), False, id="another endpoint"),
    ],
)
def test_environment_fingerprint(
    one: tuple[LambdaCredentials | None, dict[str, str] | None],
    other: tuple[LambdaCredentials | None, dict[str, str] | None],
    same: bool,
) -> None:
    assert (environment_fingerprint(*one) == environment_fingerprint(*other)) is same


def test_environment_fingerprint_holds_no_secret() -> None:
    assert "secret" not in environment_fingerprint(CREDENTIALS, {"TOKEN": "secret"})


def node_environ_of(config: FunctionConfig) -> dict[str, str]:
    return worker_environment(
        config,
        lambda_environment.node_defaults("/opt/node/bin/node", "/project", "/code"),
        log_stream="s",
        credentials=None,
        extra_env=None,
        task_root="/code",
        tmp_dir="/tmp/x",
    )


def test_node_defaults_follow_the_bootstrap() -> None:
    environ = node_environ_of(function(runtime="nodejs20.x", handler="index.handler", code_path="/code"))
    assert environ["PATH"] == f"/opt/node/bin:{lambda_environment.SYSTEM_PATH}"
    assert environ["NODE_PATH"] == "/project/node_modules:/code"  # the provided SDK, then the task root
    assert (environ["TZ"], environ["LANG"]) == (":UTC", "en_US.UTF-8")
    assert environ["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs20.x"
    assert "PYTHONPATH" not in environ


def test_node_path_is_set_only_when_the_function_has_none() -> None:
    environ = node_environ_of(function(runtime="nodejs20.x", environment={"NODE_PATH": "/opt/mine"}))
    assert environ["NODE_PATH"] == "/opt/mine"
