"""A Lambda function's configuration as the lab's runtime needs it: read, checked and fingerprinted (pure).

``function_config_from_answer`` reads a ``GetFunctionConfiguration`` answer (AWS's or moto's) into a
:class:`FunctionConfig`; building one checks it the way Lambda checks ``CreateFunction`` and
``UpdateFunctionConfiguration`` (reserved variable names, memory size, log format and levels) and answers
with Lambda's words. Its ``revision`` is a fingerprint of everything that describes the function, so the
runtime can tell a changed configuration (a cold start) from the one it already runs.

Log levels follow Lambda: with ``log_format="Text"`` Lambda refuses application and system log levels, so
no level applies; with ``"JSON"`` each is INFO unless configured.

Nothing here is specific to one language runtime: which runtimes the lab runs is
:mod:`kit.lab.lambda_runtimes`'s answer.
This module must not do I/O or call AWS: the answer arrives as data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final

from kit.errors import ConfigurationError
from kit.lab import lambda_logs, lambda_runtimes

DEFAULT_ACCOUNT_ID: Final = "123456789012"
DEFAULT_RUNTIME: Final = "python3.11"
DEFAULT_TIMEOUT_S: Final = 3.0
DEFAULT_MEMORY_MB: Final = 128
MEMORY_RANGE_MB: Final = (128, 10240)

# Variables Lambda sets itself and refuses in a function's configuration.
RESERVED_VARIABLES: Final = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


@dataclass(frozen=True)
class FunctionConfig:
    """What the runtime needs to know about a function, as ``get_function_configuration`` describes it.

    ``revision`` identifies this configuration: environments started for another revision are never reused,
    so a changed configuration means a cold start, as after ``update_function_configuration``. Left empty, it
    is derived from the other fields. ``code_path`` is the directory put first on the module search path and
    used as the working directory (Lambda's ``/var/task``); without it, the project root, so
    ``kit.handler.app`` imports.
    """

    function_name: str
    handler: str
    runtime: str = DEFAULT_RUNTIME
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    environment: Mapping[str, str] = field(default_factory=dict)
    role_arn: str = ""
    log_level: str | None = None
    log_format: lambda_logs.LogFormat = "Text"
    system_log_level: str | None = None
    log_group: str = ""
    code_path: str | None = None
    version: str = "$LATEST"
    region: str = "us-east-1"
    account_id: str = DEFAULT_ACCOUNT_ID
    revision: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "environment", dict(self.environment))
        if not self.log_group:
            object.__setattr__(self, "log_group", default_log_group(self.function_name))
        object.__setattr__(self, "log_format", _checked_log_format(self.function_name, self.log_format))
        refusal = _refusal(self)
        if refusal is not None:
            raise ConfigurationError(refusal)
        if not self.revision:
            object.__setattr__(self, "revision", fingerprint(self._content()))

    def _content(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "revision"}

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    @property
    def application_log_level(self) -> str | None:
        """The level Lambda applies to application logs: JSON format only, INFO unless configured."""
        if self.log_format != "JSON":
            return None
        return (self.log_level or "INFO").upper()

    @property
    def effective_system_log_level(self) -> str | None:
        """The level Lambda applies to its platform records: JSON format only, INFO unless configured."""
        if self.log_format != "JSON":
            return None
        return (self.system_log_level or "INFO").upper()


def default_log_group(function_name: str) -> str:
    """Where Lambda writes a function's logs unless its LoggingConfig names another group."""
    return f"/aws/lambda/{function_name}"


def _checked_log_format(function_name: str, value: str) -> lambda_logs.LogFormat:
    """``Text`` or ``JSON``, whatever the case it was written in; anything else is refused."""
    known: dict[str, lambda_logs.LogFormat] = {"text": "Text", "json": "JSON"}
    fmt = known.get(str(value).lower())
    if fmt is None:
        raise ConfigurationError(
            f"Function {function_name}: log format {value!r} is not one Lambda knows; use 'Text' or 'JSON'."
        )
    return fmt


def _refusal(config: FunctionConfig) -> str | None:
    """What Lambda (or the lab, for a runtime it cannot run) answers to this configuration, or None."""
    name = config.function_name
    unrunnable = lambda_runtimes.refusal(name, config.runtime)
    if unrunnable is not None:
        return unrunnable
    if config.timeout_s <= 0:
        return f"Function {name}: timeout must be positive, not {config.timeout_s}."
    low, high = MEMORY_RANGE_MB
    if not low <= config.memory_mb <= high:
        return f"Function {name}: memory size {config.memory_mb} MB is outside Lambda's {low}-{high} MB."
    if config.log_format == "Text" and (config.log_level or config.system_log_level):
        # Lambda's own answer to this configuration.
        return (
            f'Function {name}: LogLevel is not supported when LogFormat is set to "Text". Remove '
            'LogLevel from your request or change the LogFormat to "Json" and try again.'
        )
    if config.log_level and config.log_level.upper() not in lambda_logs.APPLICATION_LOG_LEVELS:
        return (
            f"Function {name}: application log level {config.log_level!r} is not one of "
            f"{', '.join(lambda_logs.APPLICATION_LOG_LEVELS)}."
        )
    if config.system_log_level and config.system_log_level.upper() not in lambda_logs.SYSTEM_LOG_LEVELS:
        return (
            f"Function {name}: system log level {config.system_log_level!r} is not one of "
            f"{', '.join(lambda_logs.SYSTEM_LOG_LEVELS)}."
        )
    reserved = sorted(set(config.environment) & RESERVED_VARIABLES)
    if reserved:
        return (
            f"Function {name}: Lambda was unable to configure your environment variables because the "
            "environment variables you have provided contains reserved keys that are currently not "
            f"supported for modification. Reserved keys used in this request: {', '.join(reserved)}"
        )
    return None


def fingerprint(content: Mapping[str, Any]) -> str:
    """A short stable hash of JSON-like content (keys sorted; anything else as its ``str``)."""
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# The answer's keys that describe the function; any change to one is a new revision.
_DESCRIBING_KEYS: Final = (
    "FunctionName",
    "Handler",
    "Runtime",
    "Timeout",
    "MemorySize",
    "Environment",
    "Role",
    "LoggingConfig",
    "RevisionId",
    "CodeSha256",
    "LastModified",
    "Version",
)


def account_of(function_arn: str) -> str:
    """The account id in a function ARN; the lab's default account when the ARN has none."""
    parts = function_arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else DEFAULT_ACCOUNT_ID


def function_config_from_answer(
    answer: Mapping[str, Any], region: str, *, code_path: str | None = None
) -> FunctionConfig:
    """Read a boto3 ``lambda.get_function_configuration`` answer (AWS's or moto's) into a FunctionConfig.

    The revision hashes everything that describes the function (including ``RevisionId``, ``CodeSha256``
    and ``LastModified`` when present) because moto keeps no ``RevisionId``: any update gives a new one.
    Missing fields take Lambda's defaults (Text format, 3 s, 128 MB).
    """
    logging_config = answer.get("LoggingConfig") or {}
    environment = (answer.get("Environment") or {}).get("Variables") or {}
    described = {key: answer.get(key) for key in _DESCRIBING_KEYS}
    described["code_path"] = code_path
    return FunctionConfig(
        function_name=str(answer["FunctionName"]),
        handler=str(answer.get("Handler") or ""),
        runtime=str(answer.get("Runtime") or DEFAULT_RUNTIME),
        timeout_s=float(answer.get("Timeout") or DEFAULT_TIMEOUT_S),
        memory_mb=int(answer.get("MemorySize") or DEFAULT_MEMORY_MB),
        environment={str(k): str(v) for k, v in environment.items()},
        role_arn=str(answer.get("Role") or ""),
        log_level=logging_config.get("ApplicationLogLevel"),
        log_format=logging_config.get("LogFormat") or "Text",
        system_log_level=logging_config.get("SystemLogLevel"),
        log_group=logging_config.get("LogGroup") or "",
        code_path=code_path,
        region=region,
        account_id=account_of(str(answer.get("FunctionArn", ""))),
        revision=fingerprint(described),
    )
