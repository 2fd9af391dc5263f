"""The kit's own error tree.

Lower-level errors (botocore, subprocess, sockets) are translated once, where they are caught, into one of
these, raised ``from`` the original. Every message is a full sentence that names the resource and says what
to do next; none of them may contain a secret value.

    KitError
     ├── ConfigurationError   a target, parameter or file is missing or malformed
     │    └── TargetNotFoundError   the API the kit was pointed at is not in that region and account
     ├── EngineError          a local engine (DynamoDB Local, moto) would not start or answer
     └── AwsError             an AWS API answered with an error (service, operation, code, resource)

A botocore error (or any exception a boto3 call raises) becomes an ``AwsError`` in one place,
``AwsError.from_botocore``: the caller names the service, operation and resource and gives only its table of
next steps by error code; the message's shape, the reading of the code and the next step for an endpoint that
did not answer or for missing or expired credentials are decided there. ``error_code`` is the code alone;
``error_response`` keeps a failure as data (a read that records it instead of raising).

``failure_kind`` sorts a failed read into what it means for a diagnosis: no answer at all (``unreachable``:
nothing was read, so nothing can be concluded), an answer refusing the kit's identity (``denied``: a real
permission fact, about the kit, not the app), the target itself not there (``missing``: a
:class:`TargetNotFoundError`), or any other failure (``failed``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, Literal


class KitError(Exception):
    """Base of every error the kit raises on purpose; its message is meant for the user as is."""


class ConfigurationError(KitError):
    """A target, parameter, environment file or policy is missing or malformed."""


class TargetNotFoundError(ConfigurationError):
    """What the kit was pointed at is not there (an API id the region does not have, no WebSocket API at all):
    a problem with the target, never a cause in the user's stack."""


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

    @classmethod
    def from_botocore(
        cls,
        exc: BaseException,
        service: str,
        operation: str,
        resource: str | None = None,
        *,
        resource_type: str = "",
        region: str | None = None,
        hints: Mapping[str, str] | None = None,
        otherwise: str | None = None,
    ) -> AwsError:
        """The kit's error for ``exc``, raised by ``operation`` of ``service`` (boto3's name: "dynamodb").

        The message reads ``<Service> <Operation> for <resource_type> <resource> in <region> failed with
        <code>: <AWS's message>; <next step>.`` (the parts not given are left out). The next step is
        ``hints[code]``; else, for a credentials problem, how to get credentials; else, when the endpoint did
        not answer, :data:`UNREACHABLE_NEXT_STEP` (never a permission: nothing answered); else ``otherwise``
        (default :data:`RETRY_NEXT_STEP`).
        The code is AWS's error code, or the class name of an error that got no answer (``error_facts``).
        Raise the result ``from exc``.
        """
        code, detail = error_facts(exc)
        if code in (hints or {}):
            next_step = (hints or {})[code]
        elif code in CREDENTIAL_NEXT_STEPS:
            next_step = CREDENTIAL_NEXT_STEPS[code]
        elif failure_kind(code) == "unreachable":
            next_step = UNREACHABLE_NEXT_STEP
        else:
            next_step = otherwise or RETRY_NEXT_STEP
        subject = f" for {resource_type + ' ' if resource_type else ''}{resource}" if resource else ""
        where = f" in {region}" if region else ""
        said = f": {detail}" if detail else ""
        return cls(
            f"{SERVICE_NAMES.get(service, service)} {operation}{subject}{where} failed with {code}{said}; "
            f"{next_step}.",
            service=service,
            operation=operation,
            code=code,
            resource=resource,
        )


# How messages name a service (boto3's name → AWS's).
SERVICE_NAMES: Final = {
    "dynamodb": "DynamoDB",
    "iam": "IAM",
    "sts": "STS",
    "lambda": "Lambda",
    "logs": "CloudWatch Logs",
    "apigatewayv2": "API Gateway",
    "apigatewaymanagementapi": "API Gateway @connections",
}
RETRY_NEXT_STEP: Final = "retry, and check the credentials and the network if it persists"
# The next step for a credentials problem, whatever the call: the kit's identity is the same for all of them.
CREDENTIAL_NEXT_STEPS: Final = {
    "NoCredentialsError": (
        "the kit found no AWS credentials: run `aws configure` or `aws sso login`, or pass --profile"
    ),
    "ExpiredToken": "refresh the session credentials (aws sso login) and retry",
    "ExpiredTokenException": "refresh the session credentials (aws sso login) and retry",
    "RequestExpired": "refresh the session credentials (aws sso login) and check this machine's clock",
    "UnrecognizedClientException": "check that the credentials belong to this account",
    "InvalidClientTokenId": "check that the credentials belong to this account",
}


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore error (``AccessDeniedException``), else the exception's class name."""
    return error_facts(exc)[0]


def error_response(exc: BaseException) -> dict[str, Any]:
    """``exc`` as an AWS error response, for reads that keep a failure as data instead of raising it.

    A botocore ``ClientError``'s own response (``Error`` and ``ResponseMetadata`` with the HTTP status);
    for an error that got no answer, ``{"Error": {"Code": <class name>, "Message": <text>}}``.
    """
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return dict(response)
    return {"Error": {"Code": type(exc).__name__, "Message": str(exc)}}


def error_facts(exc: BaseException) -> tuple[str, str]:
    """(AWS error code, message without a trailing period) of a botocore error; else (class name, text).

    Duck-typed on ``exc.response`` so this module needs no botocore import.
    The message is its first line, with any session token masked: AWS's answer to a bad signature goes on with
    the canonical request it expected, ``x-amz-security-token:<the caller's token>`` among its lines, and a
    kit error is one line that never holds a credential.
    """
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return str(error.get("Code", "Unknown")), _said(str(error.get("Message", "")))
    return type(exc).__name__, _said(str(exc))


# A session token as a header (the canonical request's line), a query parameter or a JSON field.
_SESSION_TOKEN = re.compile(r"(x-amz-security-token[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;]+", re.IGNORECASE)


def _said(message: str) -> str:
    """A service's message as a kit error quotes it: the first line, its session token masked."""
    first = message.strip().split("\n", 1)[0].strip()
    return _SESSION_TOKEN.sub(r"\1***", first).rstrip(".")


FailureKind = Literal["unreachable", "denied", "missing", "failed"]

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
    if isinstance(error, TargetNotFoundError):
        return "missing"
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
