"""The kit's own error tree.

Lower-level errors (botocore, subprocess, sockets) are translated once, where they are caught, into one of
these, raised ``from`` the original. Every message is a full sentence that names the resource and says what
to do next; none of them may contain a secret value.

    KitError
     ├── ConfigurationError   a target, parameter or file is missing or malformed
     ├── EngineError          a local engine (DynamoDB Local, moto) would not start or answer
     └── AwsError             an AWS API answered with an error (service, operation, code, resource)
"""

from __future__ import annotations


class KitError(Exception):
    """Base of every error the kit raises on purpose; its message is meant for the user as is."""


class ConfigurationError(KitError):
    """A target, parameter, environment file or policy is missing or malformed."""


class EngineError(KitError):
    """A local engine could not be started, did not answer in time, or stopped unexpectedly."""


class AwsError(KitError):
    """An AWS API call failed; carries the facts needed to act on it."""

    def __init__(
        self,
        message: str,
        *,
        service: str,
        operation: str,
        code: str,
        resource: str | None = None,
    ) -> None:
        super().__init__(message)
        self.service = service
        self.operation = operation
        self.code = code
        self.resource = resource


def error_facts(exc: BaseException) -> tuple[str, str]:
    """(AWS error code, message without a trailing period) of a botocore error; else (class name, text).

    Duck-typed on ``exc.response`` so this module needs no botocore import.
    """
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return str(error.get("Code", "Unknown")), str(error.get("Message", "")).rstrip(".")
    return type(exc).__name__, str(exc).rstrip(".")
