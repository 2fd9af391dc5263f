"""kit.errors.error_facts: the one way the kit reads an AWS error's code and message."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from kit.errors import error_facts


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
