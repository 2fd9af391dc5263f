"""SigV4 verification (kit.lab.sigv4): requests signed by real boto3 clients and by botocore's signer on raw
requests, checked against a table of ways a signature can be wrong. No sockets; the clock is a parameter."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials

from kit.lab import sigv4
from kit.lab.live import CredentialIssuer
from kit.local import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY

KEY = "ASIAKITTEST000000001"
SECRET = "issued-secret-0123456789"
TOKEN = "issued-session-token-0123456789abcdef"
ADMIN = LOCAL_ACCESS_KEY_ID
REGION = "us-east-2"
CONNECTION_ID = "AbCd+Ef/GhIjKl0="  # "+", "/" and "=" are percent-encoded in the path, then again in signing
KNOWN = {
    KEY: sigv4.SigningSecret(SECRET, TOKEN),
    ADMIN: sigv4.SigningSecret(LOCAL_SECRET_ACCESS_KEY),
}
DYNAMODB = sigv4.DYNAMODB
SOME_TIME = datetime(2024, 1, 1, tzinfo=UTC)  # the server's clock for requests without a usable date
EXECUTE_API = sigv4.execute_api(REGION)


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


def boto3_request(
    service: str,
    call: Callable[[Any], Any],
    *,
    region: str = REGION,
    key: str = KEY,
    secret: str = SECRET,
    token: str | None = TOKEN,
) -> sigv4.ReceivedRequest:
    """The request a real boto3 client sends for ``call`` (captured before it leaves), as a server gets it."""
    endpoint = (
        "http://127.0.0.1:8000/prod" if service == "apigatewaymanagementapi" else "http://127.0.0.1:8000"
    )
    client = boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
    )
    sent: list[Any] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, {}, _Body(b"{}"))

    client.meta.events.register("before-send", capture)
    call(client)
    (request,) = sent
    return _as_received(request)


def raw_request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    service: str = "dynamodb",
    region: str = REGION,
    key: str = KEY,
    secret: str = SECRET,
    token: str | None = TOKEN,
) -> sigv4.ReceivedRequest:
    """A hand-built request signed by botocore's SigV4 signer (what any other SigV4 client would send)."""
    request = AWSRequest(method=method, url=url, headers=headers or {}, data=body)
    SigV4Auth(Credentials(key, secret, token), service, region).add_auth(request)
    return _as_received(request)


def _as_received(request: Any) -> sigv4.ReceivedRequest:
    parts = urlsplit(request.url)
    headers = [
        (name, value.decode() if isinstance(value, bytes) else value)
        for name, value in request.headers.items()
    ]
    headers.append(("Host", parts.netloc))  # added by the HTTP client after signing; the server sees it
    body = request.body or b""
    return sigv4.ReceivedRequest(
        request.method,
        parts.path + (f"?{parts.query}" if parts.query else ""),
        headers,
        body.encode() if isinstance(body, str) else body,
    )


def signed_at(request: sigv4.ReceivedRequest) -> datetime:
    (stamp,) = [value for name, value in request.headers if name.lower() == "x-amz-date"]
    return datetime.strptime(stamp, sigv4.AMZ_DATE_FORMAT).replace(tzinfo=UTC)


def verify(
    request: sigv4.ReceivedRequest,
    endpoint: sigv4.Endpoint = DYNAMODB,
    known: dict[str, sigv4.SigningSecret] | None = None,
    skew: timedelta = timedelta(0),
) -> sigv4.Signer | sigv4.Rejection:
    """Verify at the server time ``signed time + skew`` (so the signature was made ``skew`` ago)."""
    return sigv4.verify(request, endpoint, (KNOWN if known is None else known).get, signed_at(request) + skew)


def with_header(request: sigv4.ReceivedRequest, name: str, value: str | None) -> sigv4.ReceivedRequest:
    """``request`` with header ``name`` replaced (or removed when ``value`` is None)."""
    headers = [(n, v) for n, v in request.headers if n.lower() != name.lower()]
    if value is not None:
        headers.append((name, value))
    return dataclasses.replace(request, headers=headers)


def authorization(request: sigv4.ReceivedRequest) -> str:
    (value,) = [v for n, v in request.headers if n.lower() == "authorization"]
    return value


def put_item(client: Any) -> Any:
    return client.put_item(TableName="connections", Item={"connectionId": {"S": "AbCdEfGhIjKlMn0="}})


def good_dynamodb() -> sigv4.ReceivedRequest:
    return boto3_request("dynamodb", put_item)


def _dated_raw_request() -> sigv4.ReceivedRequest:
    request = AWSRequest(
        method="POST", url="http://127.0.0.1:8000/", headers={"Date": "placeholder"}, data=b"{}"
    )
    SigV4Auth(Credentials(KEY, SECRET, TOKEN), "dynamodb", REGION).add_auth(request)  # rewrites the Date
    return _as_received(request)


def _request_time(request: sigv4.ReceivedRequest) -> datetime:
    headers = {name.lower(): value for name, value in request.headers}
    if "x-amz-date" in headers:
        return signed_at(request)
    return parsedate_to_datetime(headers["date"])


# -- requests that pass --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "make", "endpoint", "signer"),
    [
        ("boto3 DynamoDB PutItem", good_dynamodb, DYNAMODB, (KEY, REGION, "dynamodb")),
        (
            "boto3 DynamoDB in another region",
            lambda: boto3_request("dynamodb", lambda c: c.list_tables(), region="eu-west-1"),
            DYNAMODB,
            (KEY, "eu-west-1", "dynamodb"),
        ),
        (
            "boto3 DynamoDB with the lab's admin key (no session token)",
            lambda: boto3_request(
                "dynamodb",
                lambda c: c.list_tables(),
                key=ADMIN,
                secret=LOCAL_SECRET_ACCESS_KEY,
                token=None,
            ),
            DYNAMODB,
            (ADMIN, REGION, "dynamodb"),
        ),
        (
            "boto3 PostToConnection, id with + / =",
            lambda: boto3_request(
                "apigatewaymanagementapi",
                lambda c: c.post_to_connection(ConnectionId=CONNECTION_ID, Data=b"hi"),
            ),
            EXECUTE_API,
            (KEY, REGION, "execute-api"),
        ),
        (
            "boto3 GetConnection",
            lambda: boto3_request(
                "apigatewaymanagementapi", lambda c: c.get_connection(ConnectionId=CONNECTION_ID)
            ),
            EXECUTE_API,
            (KEY, REGION, "execute-api"),
        ),
        (
            "boto3 DeleteConnection",
            lambda: boto3_request(
                "apigatewaymanagementapi", lambda c: c.delete_connection(ConnectionId=CONNECTION_ID)
            ),
            EXECUTE_API,
            (KEY, REGION, "execute-api"),
        ),
        (
            "raw request: query string, encoded path, repeated header",
            lambda: raw_request(
                "GET",
                "http://127.0.0.1:8000/prod/%40connections/AbCd%2BEf%2FGhIjKl0%3D?b=2&a=x%20y&a=1",
                headers={"X-Custom": "one,  two"},
                service="execute-api",
            ),
            EXECUTE_API,
            (KEY, REGION, "execute-api"),
        ),
        (
            "raw request dated with an HTTP Date header",
            _dated_raw_request,
            DYNAMODB,
            (KEY, REGION, "dynamodb"),
        ),
    ],
)
def test_requests_signed_right_pass(
    name: str,
    make: Callable[[], sigv4.ReceivedRequest],
    endpoint: sigv4.Endpoint,
    signer: tuple[str, str, str],
) -> None:
    request = make()
    now = _request_time(request)
    assert sigv4.verify(request, endpoint, KNOWN.get, now) == sigv4.Signer(*signer), name


def test_a_repeated_header_is_signed_as_one_comma_joined_value() -> None:
    request = raw_request("POST", "http://127.0.0.1:8000/", headers={"X-Custom": "a"}, body=b"{}")
    doubled = dataclasses.replace(request, headers=[*request.headers, ("X-Custom", "b")])
    rejected = verify(doubled)
    assert isinstance(rejected, sigv4.Rejection) and "\nx-custom:a,b\n" in rejected.message


# -- requests that fail, and AWS's answer ---------------------------------------------------------------------------

MISMATCH = sigv4.MISMATCH_MESSAGE
INVALID_TOKEN = "The security token included in the request is invalid."


def _replace_in_authorization(old: str, new: str) -> Callable[[], sigv4.ReceivedRequest]:
    """A good DynamoDB request whose Authorization header has ``old`` replaced by ``new``."""

    def make() -> sigv4.ReceivedRequest:
        request = good_dynamodb()
        assert old in authorization(request)
        return with_header(request, "Authorization", authorization(request).replace(old, new, 1))

    return make


FAILURES: list[tuple[str, Callable[[], sigv4.ReceivedRequest], dict[str, Any], str, str]] = [
    # (name, request, verify keyword arguments, code, message: exact, or a prefix ending in "...")
    (
        "no Authorization header",
        lambda: with_header(good_dynamodb(), "Authorization", None),
        {},
        "MissingAuthenticationTokenException",
        "Request is missing Authentication Token",
    ),
    (
        "garbage Authorization naming a known key",
        lambda: with_header(good_dynamodb(), "Authorization", f"garbage Credential={KEY}/a/b/c/d"),
        {},
        "IncompleteSignatureException",
        "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
        f"parameter. Authorization=garbage Credential={KEY}/a/b/c/d",
    ),
    (
        "no date header at all",
        lambda: with_header(
            with_header(good_dynamodb(), "X-Amz-Date", None),
            "Authorization",
            f"AWS4-HMAC-SHA256 Credential={KEY}",
        ),
        {"now": SOME_TIME},
        "IncompleteSignatureException",
        "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
        "parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        f"Authorization=AWS4-HMAC-SHA256 Credential={KEY}",
    ),
    (
        "a parameter without an equal sign",
        lambda: with_header(good_dynamodb(), "Authorization", f"AWS4-HMAC-SHA256 Credential {KEY}/x"),
        {},
        "IncompleteSignatureException",
        f"'Credential {KEY}/x' not a valid key=value pair (missing equal-sign) in Authorization header: "
        f"'AWS4-HMAC-SHA256 Credential {KEY}/x'.",
    ),
    (
        "another algorithm",
        _replace_in_authorization("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"),
        {},
        "IncompleteSignatureException",
        "Unsupported algorithm 'AWS4-ECDSA-P256-SHA256': the lab verifies AWS4-HMAC-SHA256 only.",
    ),
    (
        "a credential of 4 elements",
        _replace_in_authorization(f"/{REGION}/dynamodb/", "/dynamodb/"),
        {},
        "IncompleteSignatureException",
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '...",
    ),
    (
        "another terminator",
        _replace_in_authorization("/aws4_request", "/aws5_request"),
        {},
        "InvalidSignatureException",
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ",
    ),
    (
        "a region AWS does not have (DynamoDB)",
        lambda: boto3_request("dynamodb", put_item, region="eu-east-2"),
        {},
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'eu-east-2'. ",
    ),
    (
        "another region than the API's (@connections)",
        lambda: boto3_request(
            "apigatewaymanagementapi",
            lambda c: c.get_connection(ConnectionId=CONNECTION_ID),
            region="us-east-1",
        ),
        {"endpoint": EXECUTE_API},
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'us-east-1'. ",
    ),
    (
        "the wrong service (DynamoDB body signed for execute-api)",
        lambda: raw_request("POST", "http://127.0.0.1:8000/", body=b"{}", service="execute-api"),
        {},
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'dynamodb'. ",
    ),
    (
        "the wrong service (@connections signed for dynamodb)",
        lambda: raw_request(
            "GET", f"http://127.0.0.1:8000/prod/%40connections/{CONNECTION_ID}", service="dynamodb"
        ),
        {"endpoint": EXECUTE_API},
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'execute-api'. ",
    ),
    (
        "a scope date other than the request's",
        lambda: with_header(good_dynamodb(), "X-Amz-Date", "20240102T000000Z"),
        {},
        "InvalidSignatureException",
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '...",
    ),
    (
        "an X-Amz-Date that is not a date",
        lambda: with_header(good_dynamodb(), "X-Amz-Date", "yesterday"),
        {"now": SOME_TIME},
        "IncompleteSignatureException",
        "Date must be in ISO-8601 'basic format'. Got 'yesterday'.",
    ),
    (
        "host not signed",
        _replace_in_authorization("host;", ""),
        {},
        "IncompleteSignatureException",
        "'Host' must be a 'SignedHeader' in the AWS Authorization.",
    ),
    (
        "a signed header that was not sent",
        lambda: with_header(good_dynamodb(), "X-Amz-Target", None),
        {},
        "IncompleteSignatureException",
        "'x-amz-target' is named as a SignedHeader, but it does not exist in the HTTP request.",
    ),
    (
        "an access key the lab never issued",
        lambda: boto3_request("dynamodb", put_item, key="ASIASTRANGER00000000"),
        {},
        "UnrecognizedClientException",
        INVALID_TOKEN,
    ),
    (
        "a wrong session token",
        lambda: boto3_request("dynamodb", put_item, token="another-token"),
        {},
        "UnrecognizedClientException",
        INVALID_TOKEN,
    ),
    (
        "no session token for temporary credentials",
        lambda: boto3_request("dynamodb", put_item, token=None),
        {},
        "UnrecognizedClientException",
        INVALID_TOKEN,
    ),
    (
        "a session token with the long-term admin key",
        lambda: boto3_request(
            "dynamodb", put_item, key=ADMIN, secret=LOCAL_SECRET_ACCESS_KEY, token="made-up"
        ),
        {},
        "UnrecognizedClientException",
        INVALID_TOKEN,
    ),
    (
        "a wrong secret",
        lambda: boto3_request("dynamodb", put_item, secret="not-the-issued-secret"),
        {},
        "InvalidSignatureException",
        MISMATCH + "\n\nThe Canonical String for this request should have been\n'POST\n/\n...",
    ),
    (
        "a wrong secret (@connections)",
        lambda: boto3_request(
            "apigatewaymanagementapi",
            lambda c: c.post_to_connection(ConnectionId=CONNECTION_ID, Data=b"x"),
            secret="not-the-issued-secret",
        ),
        {"endpoint": EXECUTE_API},
        "InvalidSignatureException",
        MISMATCH + "\n\nThe Canonical String for this request should have been\n'POST\n"
        "/prod/%40connections/AbCd%252BEf%252FGhIjKl0%253D\n...",
    ),
    (
        "a body changed after signing",
        lambda: dataclasses.replace(good_dynamodb(), body=b'{"TableName": "other"}'),
        {},
        "InvalidSignatureException",
        MISMATCH + "...",
    ),
    (
        "an X-Amz-Content-SHA256 header that lies about the body",
        lambda: dataclasses.replace(
            raw_request(
                "POST", "http://127.0.0.1:8000/", headers={"X-Amz-Content-SHA256": "0" * 64}, body=b"{}"
            ),
            body=b'{"changed": true}',
        ),
        {},
        "InvalidSignatureException",
        MISMATCH + "...",
    ),
    (
        "a path changed after signing",
        lambda: dataclasses.replace(
            boto3_request("apigatewaymanagementapi", lambda c: c.get_connection(ConnectionId=CONNECTION_ID)),
            target="/prod/%40connections/AAAAAAAAAAAAAAA%3D",
        ),
        {"endpoint": EXECUTE_API},
        "InvalidSignatureException",
        MISMATCH + "...",
    ),
    (
        "a query string added after signing",
        lambda: dataclasses.replace(good_dynamodb(), target="/?extra=1"),
        {},
        "InvalidSignatureException",
        MISMATCH + "...",
    ),
    (
        "presigned (query-string) authentication with fields missing",
        lambda: with_header(
            dataclasses.replace(
                good_dynamodb(), target="/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab"
            ),
            "Authorization",
            None,
        ),
        {"now": SOME_TIME},
        "IncompleteSignatureException",
        "Authorization query parameters require 'X-Amz-Credential'. Authorization query parameters require "
        "'X-Amz-Date'. Authorization query parameters require 'X-Amz-SignedHeaders'. X-Amz-Expires must be "
        "a number of seconds from 1 to 604800, not ''.",
    ),
]


@pytest.mark.parametrize(
    ("name", "make", "options", "code", "message"), FAILURES, ids=[case[0] for case in FAILURES]
)
def test_each_failure_gets_aws_error(
    name: str, make: Callable[[], sigv4.ReceivedRequest], options: dict[str, Any], code: str, message: str
) -> None:
    request = make()
    endpoint = options.get("endpoint", DYNAMODB)
    now = options["now"] if "now" in options else signed_at(request)
    result = sigv4.verify(request, endpoint, KNOWN.get, now)
    assert isinstance(result, sigv4.Rejection), name
    assert (result.code, result.status) == (code, endpoint.status)
    if message.endswith("..."):
        assert result.message.startswith(message[:-3]), result.message
    else:
        assert result.message == message


# -- the time window: 5 minutes either way, exactly 5 minutes passes ---------------------------------------------------


@pytest.mark.parametrize(
    ("skew_s", "passes"),
    [
        (0, True),
        (300, True),
        (300.9, True),  # the server's clock counts in whole seconds, as AWS's messages write it
        (301, False),
        (-300, True),
        (-301, False),
        (3600, False),
        (-3600, False),
    ],
)
def test_time_window(skew_s: float, passes: bool) -> None:
    request = good_dynamodb()
    result = verify(request, skew=timedelta(seconds=skew_s))
    assert isinstance(result, sigv4.Signer) is passes, result


def test_time_window_messages_name_the_times_as_aws_does() -> None:
    request = good_dynamodb()
    signed = signed_at(request)

    def stamp(moment: datetime) -> str:
        return moment.strftime(sigv4.AMZ_DATE_FORMAT)

    now = signed + timedelta(seconds=301, microseconds=900_000)  # AWS writes whole seconds
    late = sigv4.verify(request, DYNAMODB, KNOWN.get, now)
    whole = now.replace(microsecond=0)
    assert late == sigv4.Rejection(
        "InvalidSignatureException",
        400,
        f"Signature expired: {stamp(signed)} is now earlier than {stamp(whole - timedelta(minutes=5))} "
        f"({stamp(whole)} - 5 min.)",
    )
    request = boto3_request("apigatewaymanagementapi", lambda c: c.get_connection(ConnectionId=CONNECTION_ID))
    signed = signed_at(request)
    now = signed - timedelta(seconds=301)
    early = sigv4.verify(request, EXECUTE_API, KNOWN.get, now)
    assert isinstance(early, sigv4.Rejection) and early.status == 403
    assert early.message == (
        f"Signature not yet current: {stamp(signed)} is still later than {stamp(now + timedelta(minutes=5))} "
        f"({stamp(now)} + 5 min.)"
    )


def test_the_api_gateway_endpoint_answers_403_with_its_own_missing_token_text() -> None:
    request = with_header(good_dynamodb(), "Authorization", None)
    assert verify(request, EXECUTE_API) == sigv4.Rejection(
        "MissingAuthenticationTokenException", 403, "Missing Authentication Token"
    )


# -- secrets stay out of messages --------------------------------------------------------------------------------------


def test_a_mismatch_quotes_the_canonical_string_without_the_session_token() -> None:
    request = boto3_request("dynamodb", put_item, secret="not-the-issued-secret")
    result = verify(request)
    assert isinstance(result, sigv4.Rejection)
    assert TOKEN not in result.message and SECRET not in result.message
    assert "\nx-amz-security-token:***\n" in result.message
    assert f"/{REGION}/dynamodb/aws4_request\n" in result.message  # the string to sign's scope
    assert repr(KNOWN[KEY]) == "SigningSecret(secret=***, token=***)"


# -- the lab's issuer knows the secrets it hands out ------------------------------------------------------------------


def test_the_issuer_looks_up_issued_secrets_and_the_admin_key() -> None:
    issuer = CredentialIssuer("123456789012")
    issued = issuer.issue("arn:aws:iam::123456789012:role/r", "fn")
    assert issuer.signing_secret(issued.access_key_id) == sigv4.SigningSecret(
        issued.secret_access_key, issued.session_token
    )
    assert issuer.signing_secret(ADMIN) == sigv4.SigningSecret(LOCAL_SECRET_ACCESS_KEY)
    assert issuer.signing_secret("ASIASTRANGER00000000") is None
    request = boto3_request(
        "dynamodb",
        lambda c: c.list_tables(),
        key=issued.access_key_id,
        secret=issued.secret_access_key,
        token=issued.session_token,
    )
    assert isinstance(
        sigv4.verify(request, DYNAMODB, issuer.signing_secret, signed_at(request)), sigv4.Signer
    )


def test_known_regions_come_from_botocore_and_exclude_typos() -> None:
    regions = sigv4.aws_regions()
    assert {"us-east-1", "us-east-2", "eu-west-1", "cn-north-1", "us-gov-west-1"} <= regions
    assert "eu-east-2" not in regions and "" not in regions
    assert json.dumps(sorted(regions))  # plain strings


# --------------------------------------------------------------------------------------------------------
# Presigned (query-string) requests: a wss:// URL presigned for execute-api, as AWS_IAM on $connect takes
# --------------------------------------------------------------------------------------------------------

CONNECT_URL = "http://127.0.0.1:8000/prod?token=alice%40example.com&workspaceId=ws-1"


def presigned(
    url: str = CONNECT_URL,
    *,
    expires: int = 60,
    token: str | None = TOKEN,
    secret: str = SECRET,
    empty_body_hash: bool = False,
) -> sigv4.ReceivedRequest:
    """The upgrade request of a URL botocore presigned (SigV4QueryAuth); ``empty_body_hash``: signed as
    mhart/aws4 signs execute-api, with the empty body's hash instead of UNSIGNED-PAYLOAD."""
    from botocore.auth import SigV4QueryAuth

    class EmptyBodyHash(SigV4QueryAuth):  # type: ignore[misc]
        def payload(self, request: Any) -> str:
            return "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    signer_class = EmptyBodyHash if empty_body_hash else SigV4QueryAuth
    request = AWSRequest(method="GET", url=url)
    signer_class(Credentials(KEY, secret, token), "execute-api", REGION, expires=expires).add_auth(request)
    parts = urlsplit(request.url)
    return sigv4.ReceivedRequest("GET", f"{parts.path}?{parts.query}", [("Host", parts.netloc)], b"")


def presigned_at(request: sigv4.ReceivedRequest) -> datetime:
    from urllib.parse import parse_qs

    (stamp,) = parse_qs(urlsplit(request.target).query)["X-Amz-Date"]
    return datetime.strptime(stamp, sigv4.AMZ_DATE_FORMAT).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("make", "after_s", "code"),
    [
        pytest.param(presigned, 0, None, id="botocore presigned"),
        pytest.param(lambda: presigned(empty_body_hash=True), 0, None, id="empty body hash (aws4)"),
        pytest.param(presigned, 60, None, id="at its expiry"),
        pytest.param(presigned, 61, "InvalidSignatureException", id="one second past its expiry"),
        pytest.param(lambda: presigned(expires=3600), 1800, None, id="within a longer expiry"),
        pytest.param(lambda: presigned(secret="wrong"), 0, "InvalidSignatureException", id="wrong secret"),
        pytest.param(lambda: presigned(token=None), 0, "UnrecognizedClientException", id="token left out"),
        pytest.param(
            lambda: dataclasses.replace(presigned(), target=presigned().target.replace("ws-1", "ws-2")),
            0,
            "InvalidSignatureException",
            id="query changed after signing",
        ),
        pytest.param(
            lambda: dataclasses.replace(
                presigned(), target=presigned().target.replace("X-Amz-Expires=60", "")
            ),
            0,
            "IncompleteSignatureException",
            id="expiry removed",
        ),
        pytest.param(
            lambda: presigned(expires=sigv4.MAX_PRESIGNED_EXPIRES_S + 1),
            0,
            "IncompleteSignatureException",
            id="expiry over 7 days",
        ),
    ],
)
def test_presigned_requests(
    make: Callable[[], sigv4.ReceivedRequest], after_s: int, code: str | None
) -> None:
    request = make()
    result = sigv4.verify(request, EXECUTE_API, KNOWN.get, presigned_at(request) + timedelta(seconds=after_s))
    if code is None:
        assert result == sigv4.Signer(KEY, REGION, "execute-api"), result
    else:
        assert isinstance(result, sigv4.Rejection), result
        assert (result.code, result.status) == (code, 403), result
        assert TOKEN not in result.message


def test_a_presigned_mismatch_masks_the_session_token_in_the_canonical_query() -> None:
    request = presigned(secret="wrong")
    result = sigv4.verify(request, EXECUTE_API, KNOWN.get, presigned_at(request))
    assert isinstance(result, sigv4.Rejection)
    assert "X-Amz-Security-Token=***" in result.message
    assert TOKEN not in result.message
