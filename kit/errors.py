"""The kit's own error tree.

Lower-level errors (botocore, subprocess, sockets) are translated once, where they are caught, into one of
these, raised ``from`` the original. Every message is a full sentence that names the resource and says what
to do next; none of them may contain a secret value.

    KitError
     ├── ConfigurationError   a target, parameter or file is missing or malformed
     ├── EngineError          a local engine (DynamoDB Local, moto) would not start or answer
     └── AwsError             an AWS API answered with an error (service, operation, code, resource)

``failure_kind`` sorts a failed read into what it means for a diagnosis: no answer at all (``unreachable``:
nothing was read, so nothing can be concluded), an answer refusing the kit's identity (``denied``: a real
permission fact, about the kit, not the app), or any other failure (``failed``).
"""

from __future__ import annotations

from typing import Final, Literal


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


FailureKind = Literal["unreachable", "denied", "failed"]

# Codes of a request that got no usable answer: botocore's connection errors (by class name, as error_facts
# gives them), the socket's own, and a service that says it cannot serve now (the lab's DynamoDB front door
# answers ServiceUnavailableException when its engine is down).
UNREACHABLE_CODES: Final = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ProxyConnectionError",
        "ConnectionError",
        "HTTPClientError",
        "SSLError",
        "ConnectionRefusedError",
        "ConnectionResetError",
        "TimeoutError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
# Codes of an answer that refuses the caller: its permissions, or credentials it does not accept.
DENIED_CODES: Final = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "NoCredentialsError",
    }
)
UNREACHABLE_NEXT_STEP: Final = (
    "the endpoint did not answer, so nothing was read: check that it is up and reachable from this machine "
    "(the lab: its engines; a real account: the network, the region and any endpoint override), then run "
    "again"
)


def failure_kind(error: BaseException | str) -> FailureKind:
    """What a failed read means: ``unreachable``, ``denied`` or ``failed`` (see the module docstring).

    ``error`` is an exception (a KitError keeps the code of what it translated; an EngineError is an engine
    that does not answer) or an error code as :func:`error_facts` gives it.
    """
    if isinstance(error, EngineError):
        return "unreachable"
    if isinstance(error, AwsError):
        code = error.code
    elif isinstance(error, BaseException):
        code = error_facts(error)[0]
    else:
        code = error
    if code in UNREACHABLE_CODES:
        return "unreachable"
    if code in DENIED_CODES:
        return "denied"
    return "failed"
