"""kit.errors: the one way the kit reads an AWS error (error_facts, error_code, error_response), turns it into
its own (AwsError.from_botocore), and sorts a failed read (failure_kind)."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from kit.errors import (
    CREDENTIAL_NEXT_STEPS,
    RETRY_NEXT_STEP,
    UNREACHABLE_NEXT_STEP,
    AwsError,
    ConfigurationError,
    EngineError,
    error_code,
    error_facts,
    error_response,
    failure_kind,
)


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


TOKEN = "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKEN0123456789"
# What AWS answers a request signed with the wrong secret: the canonical request it expected follows the
# sentence, the caller's session token on one of its lines.
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for "
    "this request should have been\n'POST\n/\n\nhost:dynamodb.us-east-2.amazonaws.com\n"
    f"x-amz-security-token:{TOKEN}\n\nhost;x-amz-security-token\n'\n"
)


@pytest.mark.parametrize(
    ("message", "said"),
    [
        pytest.param(
            SIGNATURE_MISMATCH,
            "The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details",
            id="signature mismatch: the first line only",
        ),
        pytest.param(f"x-amz-security-token:{TOKEN}", "x-amz-security-token:***", id="header, bare"),
        pytest.param(
            f"bad X-Amz-Security-Token: {TOKEN} here", "bad X-Amz-Security-Token: *** here", id="header"
        ),
        pytest.param(
            f"url ?X-Amz-Security-Token={TOKEN}&b=1", "url ?X-Amz-Security-Token=***&b=1", id="query"
        ),
        pytest.param(f'{{"x-amz-security-token": "{TOKEN}"}}', '{"x-amz-security-token": "***"}', id="json"),
        pytest.param("  one line.\n", "one line", id="spaces and period"),
    ],
)
def test_error_facts_quotes_one_line_and_never_a_session_token(message: str, said: str) -> None:
    assert error_facts(ClientError({"Error": {"Code": "X", "Message": message}}, "Op")) == ("X", said)
    assert error_facts(ValueError(message)) == ("ValueError", said)


def test_a_signature_mismatch_is_one_line_without_the_token() -> None:
    exc = ClientError(
        {"Error": {"Code": "InvalidSignatureException", "Message": SIGNATURE_MISMATCH}}, "ListTables"
    )
    message = str(AwsError.from_botocore(exc, "dynamodb", "ListTables", region="us-east-2"))
    assert TOKEN not in message
    assert "\n" not in message
    assert message.startswith(
        "DynamoDB ListTables in us-east-2 failed with InvalidSignatureException: The request"
    )


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


# --------------------------------------------------------------------------------------------------
# AwsError.from_botocore: each shape of error a boto3 call raises

HINTS = {"AccessDeniedException": "grant dynamodb:Scan on t", "ThrottlingException": "slow down"}
ASKED = {"service": "dynamodb", "operation": "Scan", "resource": "t", "resource_type": "table"}


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        pytest.param(
            _client_error("AccessDeniedException"),
            "AccessDeniedException",
            "DynamoDB Scan for table t in us-east-2 failed with AccessDeniedException: x; grant dynamodb:Scan "
            "on t.",
            id="a code with a hint",
        ),
        pytest.param(
            ClientError({"Error": {"Code": "InternalServerError", "Message": "Internal error."}}, "Scan"),
            "InternalServerError",
            f"DynamoDB Scan for table t in us-east-2 failed with InternalServerError: Internal error; "
            f"{RETRY_NEXT_STEP}.",
            id="a code without one: otherwise",
        ),
        pytest.param(
            ClientError({"Error": {}}, "Scan"),
            "Unknown",
            f"DynamoDB Scan for table t in us-east-2 failed with Unknown; {RETRY_NEXT_STEP}.",
            id="no code, no message",
        ),
        pytest.param(
            EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            "EndpointConnectionError",
            "DynamoDB Scan for table t in us-east-2 failed with EndpointConnectionError: Could not connect to "
            f'the endpoint URL: "http://127.0.0.1:1"; {UNREACHABLE_NEXT_STEP}.',
            id="unreachable: never a permission",
        ),
        pytest.param(
            ConnectTimeoutError(endpoint_url="http://10.0.0.1"),
            "ConnectTimeoutError",
            f'failed with ConnectTimeoutError: Connect timeout on endpoint URL: "http://10.0.0.1"; '
            f"{UNREACHABLE_NEXT_STEP}.",
            id="connect timeout",
        ),
        pytest.param(
            ReadTimeoutError(endpoint_url="http://10.0.0.1"),
            "ReadTimeoutError",
            f"{UNREACHABLE_NEXT_STEP}.",
            id="read timeout",
        ),
        pytest.param(
            _client_error("ServiceUnavailableException"),
            "ServiceUnavailableException",
            f"failed with ServiceUnavailableException: x; {UNREACHABLE_NEXT_STEP}.",
            id="the lab's engine is down",
        ),
        pytest.param(
            NoCredentialsError(),
            "NoCredentialsError",
            "failed with NoCredentialsError: Unable to locate credentials; "
            f"{CREDENTIAL_NEXT_STEPS['NoCredentialsError']}.",
            id="no credentials",
        ),
        pytest.param(
            _client_error("ExpiredTokenException"),
            "ExpiredTokenException",
            f"failed with ExpiredTokenException: x; {CREDENTIAL_NEXT_STEPS['ExpiredTokenException']}.",
            id="expired credentials",
        ),
        pytest.param(
            ValueError("not JSON."),
            "ValueError",
            f"DynamoDB Scan for table t in us-east-2 failed with ValueError: not JSON; {RETRY_NEXT_STEP}.",
            id="not botocore",
        ),
    ],
)
def test_from_botocore(exc: BaseException, code: str, message: str) -> None:
    error = AwsError.from_botocore(exc, **ASKED, region="us-east-2", hints=HINTS)
    assert (error.service, error.operation, error.code, error.resource) == ("dynamodb", "Scan", code, "t")
    assert message in str(error)
    assert str(error).endswith(".") and not str(error).endswith("..")
    assert failure_kind(error) == failure_kind(exc)


def test_from_botocore_hints_win_over_the_shared_next_steps() -> None:
    hints = {"NoCredentialsError": "use the lab", "EndpointConnectionError": "start the lab"}
    for exc, said in [
        (NoCredentialsError(), "use the lab"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "start the lab"),
    ]:
        assert str(AwsError.from_botocore(exc, "sts", "GetCallerIdentity", hints=hints)).endswith(
            f"; {said}."
        )


@pytest.mark.parametrize(
    ("asked", "message"),
    [
        pytest.param({}, "STS GetCallerIdentity failed with AccessDenied: x; ", id="service and operation"),
        pytest.param({"resource": "r"}, "STS GetCallerIdentity for r failed with", id="a resource"),
        pytest.param(
            {"region": "eu-west-1"}, "STS GetCallerIdentity in eu-west-1 failed with", id="a region"
        ),
        pytest.param(
            {"resource": "lab us-east-2", "resource_type": "target", "otherwise": "run aws configure"},
            "STS GetCallerIdentity for target lab us-east-2 failed with AccessDenied: x; run aws configure.",
            id="everything",
        ),
    ],
)
def test_from_botocore_leaves_out_what_is_not_given(asked: dict[str, str], message: str) -> None:
    assert message in str(
        AwsError.from_botocore(_client_error("AccessDenied"), "sts", "GetCallerIdentity", **asked)
    )


def test_from_botocore_names_an_unknown_service_as_given() -> None:
    error = AwsError.from_botocore(_client_error("Boom"), "kinesis", "PutRecord")
    assert str(error).startswith("kinesis PutRecord failed with Boom")


@pytest.mark.parametrize(
    ("exc", "code", "response"),
    [
        pytest.param(
            ClientError(
                {
                    "Error": {"Code": "GoneException", "Message": ""},
                    "ResponseMetadata": {"HTTPStatusCode": 410},
                },
                "GetConnection",
            ),
            "GoneException",
            {"Error": {"Code": "GoneException", "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": 410}},
            id="an answer: AWS's own response",
        ),
        pytest.param(
            EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            "EndpointConnectionError",
            {
                "Error": {
                    "Code": "EndpointConnectionError",
                    "Message": 'Could not connect to the endpoint URL: "http://127.0.0.1:1"',
                }
            },
            id="no answer: the class and text",
        ),
    ],
)
def test_error_code_and_response(exc: BaseException, code: str, response: dict[str, object]) -> None:
    assert error_code(exc) == code
    assert error_response(exc) == response
