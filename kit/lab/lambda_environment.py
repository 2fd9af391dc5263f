"""The environment a function's process starts with, built as Lambda builds it (pure).

Everything a function sees in its environment comes from here, and nothing of the lab's own: the
variables Lambda sets (and refuses in a configuration, see :data:`kit.lab.lambda_config.RESERVED_VARIABLES`),
the function's configured variables, the execution role's credentials, and what the lab adds on top (its
``AWS_ENDPOINT_URL[_<SERVICE>]``). The part that belongs to one language runtime (the interpreter on
``PATH``, the module search path the lab's worker needs) arrives as :class:`RuntimeDefaults`, so each
runtime the lab runs builds its environment with the same precedence.

This module must not read ``os.environ``, start processes or touch files: paths arrive as strings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Final

from kit.lab import lambda_logs
from kit.lab.lambda_config import FunctionConfig, fingerprint

# Where Lambda's images look for programs (after the runtime's own directory).
SYSTEM_PATH: Final = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class LambdaCredentials:
    """The execution role's credentials as Lambda puts them in the function's environment."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RuntimeDefaults:
    """What one language runtime adds to every function's environment.

    ``overridable``: variables Lambda sets but lets a function override (PATH, LANG, TZ, ...).
    ``search_paths``: variable → directory the lab's worker must import from; it is appended to the
    function's own value of that variable, so the worker starts whatever the function configures.
    """

    overridable: Mapping[str, str]
    search_paths: Mapping[str, str] = field(default_factory=dict)


def python_defaults(python_executable: str, project_root: str | Path) -> RuntimeDefaults:
    """The Python runtime's: its interpreter's directory first on PATH; the project on PYTHONPATH, where
    ``python -m kit.lab.runtime_worker`` is found."""
    return RuntimeDefaults(
        overridable={
            "PATH": f"{PurePath(python_executable).parent}:{SYSTEM_PATH}",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
        },
        search_paths={"PYTHONPATH": str(project_root)},
    )


def node_defaults(node_executable: str, project_root: str | Path, task_root: str) -> RuntimeDefaults:
    """The Node.js runtime's: ``node``'s directory first on PATH, and Lambda's ``NODE_PATH``, which the
    ``bootstrap`` sets only when the function has not: the SDK the runtime provides (the project's
    ``node_modules``, where ``make`` installs it; Lambda's ``/var/runtime/node_modules``), then the task root.
    A function's own ``node_modules`` comes first anyway: Node looks beside the module before NODE_PATH."""
    return RuntimeDefaults(
        overridable={
            "PATH": f"{PurePath(node_executable).parent}:{SYSTEM_PATH}",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "NODE_PATH": f"{PurePath(project_root) / 'node_modules'}:{task_root}",
            # The SDK the lab provides (pinned by npm) is newer than the one Lambda's images carry and warns
            # on every cold start under Node < 22, as an ERROR line Lambda's own SDK does not write
            # [inferred]. A function that sets it otherwise gets the warning back.
            "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED": "true",
        },
    )


def task_root(config: FunctionConfig, project_root: str | Path) -> str:
    """Lambda's ``/var/task`` (the working directory, first on the search path): the function's code
    directory, or the project root when it has none, so ``kit.handler.app`` imports."""
    return config.code_path or str(project_root)


def worker_environment(
    config: FunctionConfig,
    defaults: RuntimeDefaults,
    *,
    log_stream: str,
    credentials: LambdaCredentials | None,
    extra_env: Mapping[str, str] | None,
    task_root: str,
    tmp_dir: str,
) -> dict[str, str]:
    """Everything the function's process sees in ``os.environ``, and nothing of the lab's.

    Order of precedence, each overriding the ones before: the runtime's overridable defaults, the
    function's variables (with the worker's search path appended), Lambda's reserved variables (the log
    format and level only in JSON format), credentials, then ``extra_env`` (the lab's
    ``AWS_ENDPOINT_URL_<SERVICE>``). Two deliberate additions: ``TMPDIR`` (a private directory standing for
    ``/tmp``) and ``AWS_CONFIG_FILE``/``AWS_SHARED_CREDENTIALS_FILE`` pointing at files that do not exist,
    so an SDK in the function never reads the developer's ``~/.aws``.
    """
    environment: dict[str, str] = dict(defaults.overridable)
    environment.update(config.environment)
    for variable, directory in defaults.search_paths.items():
        own = config.environment.get(variable)
        environment[variable] = f"{own}:{directory}" if own else directory
    environment.update(
        {
            "_HANDLER": config.handler,
            "AWS_REGION": config.region,
            "AWS_DEFAULT_REGION": config.region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": config.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": config.version,
            "AWS_LAMBDA_INITIALIZATION_TYPE": lambda_logs.INIT_TYPE,
            "AWS_LAMBDA_LOG_GROUP_NAME": config.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "LAMBDA_TASK_ROOT": task_root,
            "TMPDIR": tmp_dir,
            "AWS_CONFIG_FILE": os.path.join(tmp_dir, ".aws-config-absent"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(tmp_dir, ".aws-credentials-absent"),
        }
    )
    application_level = config.application_log_level
    if application_level:
        environment["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        environment["AWS_LAMBDA_LOG_LEVEL"] = application_level
    if credentials is not None:
        environment["AWS_ACCESS_KEY_ID"] = credentials.access_key_id
        environment["AWS_SECRET_ACCESS_KEY"] = credentials.secret_access_key
        if credentials.session_token:
            environment["AWS_SESSION_TOKEN"] = credentials.session_token
    environment.update(extra_env or {})
    return environment


def environment_fingerprint(
    credentials: LambdaCredentials | None, extra_env: Mapping[str, str] | None
) -> str:
    """Environments are reused only with the same credentials and extra variables (hashed, not stored)."""
    material = {
        "credentials": None
        if credentials is None
        else [credentials.access_key_id, credentials.secret_access_key, credentials.session_token],
        "extra_env": sorted((extra_env or {}).items()),
    }
    return fingerprint(material)
