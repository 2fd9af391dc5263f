"""kit.lab.iam_connect: AWS_IAM on $connect, one table of handshakes (signed how, by whom, allowed what) and
the answer each gets. The requests are signed by botocore (headers, or a presigned URL); no sockets."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from kit import policy
from kit.lab import iam_connect, sigv4

REGION = "us-east-2"
ACCOUNT = "123456789012"
API = "abc123"
ROUTE_ARN = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/prod/$connect"
URL = "http://127.0.0.1:8000/prod?token=alice%40example.com&workspaceId=ws-1"
NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
ADMIN, ROLE_KEY = "AKIAKITADMIN00000000", "ASIAKITROLE000000001"
SECRETS = {
    ADMIN: sigv4.SigningSecret("admin-secret"),
    ROLE_KEY: sigv4.SigningSecret("role-secret", "role-token"),
}
ROLE_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/browser-role/alice"


def allow(
    resource: str, effect: str = "Allow", action: str = "execute-api:Invoke"
) -> tuple[policy.Policy, ...]:
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": effect, "Action": action, "Resource": resource}],
    }
    return (policy.parse_policy(document, "browser"),)


@dataclass(frozen=True)
class Signed:
    key: str = ROLE_KEY
    how: str = "headers"  # headers | presigned | none
    region: str = REGION
    service: str = "execute-api"
    age: timedelta = timedelta(0)  # how long before the gateway checks it the request was signed

    def request(self) -> sigv4.ReceivedRequest:
        request = AWSRequest(method="GET", url=URL)
        secret = SECRETS[self.key]
        credentials = Credentials(self.key, secret.secret_access_key, secret.session_token)
        signer: Any = None
        if self.how == "headers":
            signer = SigV4Auth(credentials, self.service, self.region)
        elif self.how == "presigned":
            signer = SigV4QueryAuth(credentials, self.service, self.region, expires=60)
        if signer is not None:
            signer.add_auth(request)  # at botocore's clock: the test's "now" is that time plus the age
        parts = urlsplit(request.url)
        headers = [(k, v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()]
        return sigv4.ReceivedRequest(
            "GET", f"{parts.path}?{parts.query}", [*headers, ("Host", parts.netloc)], b""
        )


CASES = [
    # (id, how it is signed, the role's policies, status or None when allowed, body key, response type)
    ("presigned, allowed on the route", Signed(how="presigned"), allow(ROUTE_ARN), None, "", ""),
    ("headers, allowed on the route", Signed(), allow(ROUTE_ARN), None, "", ""),
    (
        "wildcard deep enough",
        Signed(),
        allow(f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/*/*"),
        None,
        "",
        "",
    ),
    ("execute-api:* on *", Signed(), allow("*", action="execute-api:*"), None, "", ""),
    ("administrator key", Signed(key=ADMIN), (), None, "", ""),
    (
        "wildcard one level too deep",
        Signed(),
        allow(f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/*/*/*"),
        403,
        "Message",
        "ACCESS_DENIED",
    ),
    ("another stage", Signed(), allow(ROUTE_ARN.replace("/prod/", "/dev/")), 403, "Message", "ACCESS_DENIED"),
    (
        "ManageConnections only",
        Signed(),
        allow("*", action="execute-api:ManageConnections"),
        403,
        "Message",
        "ACCESS_DENIED",
    ),
    ("explicit deny", Signed(), allow("*", effect="Deny"), 403, "Message", "ACCESS_DENIED"),
    ("unsigned", Signed(how="none"), allow("*"), 403, "message", "MISSING_AUTHENTICATION_TOKEN"),
    (
        "signed for another region",
        Signed(region="us-east-1"),
        allow("*"),
        403,
        "message",
        "INVALID_SIGNATURE",
    ),
    (
        "signed for another service",
        Signed(service="execute"),
        allow("*"),
        403,
        "message",
        "INVALID_SIGNATURE",
    ),
    (
        "signed 6 minutes ago",
        Signed(age=timedelta(minutes=6)),
        allow("*"),
        403,
        "message",
        "INVALID_SIGNATURE",
    ),
    (
        "presigned 2 minutes ago, 60 s expiry",
        Signed(how="presigned", age=timedelta(minutes=2)),
        allow("*"),
        403,
        "message",
        "INVALID_SIGNATURE",
    ),
]


@pytest.mark.parametrize(
    ("signed", "policies", "status", "body_key", "response_type"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_authorize_connect(
    signed: Signed, policies: tuple[policy.Policy, ...], status: int | None, body_key: str, response_type: str
) -> None:
    def caller(key: str) -> iam_connect.Caller:
        if key == ADMIN:
            return iam_connect.Caller(f"arn:aws:iam::{ACCOUNT}:root", None)
        assert key == ROLE_KEY
        return iam_connect.Caller(ROLE_ARN, policies)

    request = signed.request()
    stamps = re.findall(r"(?:X-Amz-Date=|^)(\d{8}T\d{6}Z)", request.target) + [
        value for name, value in request.headers if name.lower() == "x-amz-date"
    ]
    at = datetime.strptime(stamps[0], sigv4.AMZ_DATE_FORMAT).replace(tzinfo=UTC) if stamps else NOW
    answer = iam_connect.authorize_connect(
        request, region=REGION, route_arn=ROUTE_ARN, secrets=SECRETS.get, caller=caller, now=at + signed.age
    )
    if status is None:
        assert answer.allowed, answer
        assert "succeeded" in answer.log_line()
        return
    assert not answer.allowed
    assert (answer.status, answer.response_type) == (status, response_type)
    assert list(json.loads(answer.body)) == [body_key]
    assert answer.log_line().startswith(
        "Execution failed: IAM authorization of the $connect handshake failed: "
    )
    assert "role-secret" not in answer.body and "role-token" not in answer.body
    if response_type == "ACCESS_DENIED":
        assert json.loads(answer.body)["Message"] == (
            f"User: {ROLE_ARN} is not authorized to perform: execute-api:Invoke on resource: {ROUTE_ARN}"
        )
        assert answer.error_type == "AccessDeniedException"
