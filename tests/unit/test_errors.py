"""kit.errors.error_facts: the one way the kit reads an AWS error's code and message."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from kit.errors import AwsError, ConfigurationError, EngineError, error_facts, failure_kind


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        pytest.param(
            ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "User: x is not allowed."}}, "PutItem"
            ),
            ("AccessDeniedException", "User: x is not allowed"),
            id="code and message, final period dropped",
        ),
        pytest.param(ClientError({"Error": {}}, "GetItem"), ("Unknown", ""), id="no code"),
        pytest.param(ClientError({}, "GetItem"), ("Unknown", ""), id="no error at all"),
        pytest.param(
            EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            ("EndpointConnectionError", 'Could not connect to the endpoint URL: "http://127.0.0.1:1"'),
            id="no answer: the class",
        ),
        pytest.param(ValueError("bad."), ("ValueError", "bad"), id="not AWS"),
    ],
)
def test_error_facts(exc: BaseException, expected: tuple[str, str]) -> None:
    assert error_facts(exc) == expected


def _aws(code: str) -> AwsError:
    return AwsError(f"failed with {code}", service="dynamodb", operation="ListTables", code=code)


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "x"}}, "ListTables")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        pytest.param(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "unreachable", id="refused"),
        pytest.param(
            ConnectTimeoutError(endpoint_url="http://10.0.0.1"), "unreachable", id="connect timeout"
        ),
        pytest.param(ReadTimeoutError(endpoint_url="http://10.0.0.1"), "unreachable", id="read timeout"),
        pytest.param(ConnectionRefusedError(111, "refused"), "unreachable", id="a socket's own"),
        pytest.param(_client_error("ServiceUnavailableException"), "unreachable", id="503 from dynamodb"),
        pytest.param(EngineError("DynamoDB Local stopped"), "unreachable", id="an engine"),
        pytest.param(_aws("EndpointConnectionError"), "unreachable", id="translated: keeps the code"),
        pytest.param(_aws("AccessDeniedException"), "denied", id="translated denial"),
        pytest.param(_client_error("AccessDenied"), "denied", id="iam's spelling"),
        pytest.param(_client_error("UnrecognizedClientException"), "denied", id="credentials refused"),
        pytest.param(NoCredentialsError(), "denied", id="no credentials"),
        pytest.param(_client_error("ThrottlingException"), "failed", id="throttled is an answer"),
        pytest.param(_client_error("InternalServerError"), "failed", id="a 500 is an answer"),
        pytest.param(_client_error("ResourceNotFoundException"), "failed", id="not found"),
        pytest.param(ConfigurationError("no API id"), "failed", id="a kit parameter"),
        pytest.param("EndpointConnectionError", "unreachable", id="a code"),
        pytest.param("AccessDeniedException", "denied", id="a denied code"),
        pytest.param("endpointconnectionerror", "failed", id="codes are exact"),
        pytest.param("", "failed", id="no code"),
    ],
)
def test_failure_kind(error: BaseException | str, kind: str) -> None:
    assert failure_kind(error) == kind
