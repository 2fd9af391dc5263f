"""SigV4 verification for the lab's front doors: is a request signed, as AWS checks, by a key the lab knows?

The lab knows every secret it accepts (its administrator key and each function's temporary credentials), so
the DynamoDB front door and the @connections endpoint check Signature Version 4 as AWS does, in this order:
the ``Authorization`` header's shape, the credential scope (terminator, region, service), the request's date,
the signed headers, the access key and session token, the request time against the server's clock (5
minutes either way), and the signature itself, recomputed from what the server received with botocore's
SigV4 code (fed the client's ``SignedHeaders`` list, the raw path and query, the body). Each failure is
answered with AWS's error code and text. Which check AWS makes first when several fail is not documented;
the order above is [inferred].

The region: a request must be signed for its endpoint's region. The @connections endpoint belongs to one
API, so it has one region (the API's). The lab's DynamoDB front door is a single URL that stands for every
region's endpoint: boto3 derives the endpoint from the region it signs with, so on AWS a client that signs
for X reaches X's endpoint unless it names another endpoint itself; in the lab the request's region chooses
its database (``Endpoint.region`` None), and only a region AWS does not have (a typo such as
``eu-east-2``) is refused, as AWS refuses it when the client names the endpoint.

Message texts and where they come from ([verified]: seen in AWS answers quoted in public issues;
[inferred]: the pattern seen for other AWS services or spellings; [unverified]: nothing public confirms it):

- ``Signature expired: {t} is now earlier than {now-5m} ({now} - 5 min.)`` and ``Signature not yet current:
  {t} is still later than {now+5m} ({now} + 5 min.)``, InvalidSignatureException [verified: aws-sdk-js
  #527, aws-sdk-java #1764, aws-sdk-go #2194]; that a time exactly 5 minutes off passes is [inferred].
- ``Credential should be scoped to a valid region, not '{r}'. `` [verified for DynamoDB: 3mcloud/falcano#47
  (botocore, region/endpoint mismatch), aws-sdk-js #4002; for API Gateway-fronted endpoints the same text
  under ``{"message": ...}``: joona/aws-es-curl#15].
- ``Credential should be scoped to correct service: '{s}'. `` [verified for DynamoDB: arnemolland/sigv4#15;
  for API Gateway-fronted endpoints: cllunsford/aws-signing-proxy#25].
- ``The request signature we calculated does not match ...`` followed by the canonical string and the
  string to sign [verified: awslabs/dynamodb-cross-region-library#34 (DynamoDB), mhart/aws4#33 (execute-api,
  403, ``x-amzn-ErrorType: InvalidSignatureException`` in mhart/aws4#123)]. The lab masks the session token
  in the canonical string it quotes (AWS quotes it whole): the text ends up in function logs.
- ``The security token included in the request is invalid.`` UnrecognizedClientException, for an unknown
  key and for a wrong or missing session token [verified for JSON services; for execute-api, 403, [inferred]].
- ``Authorization header requires 'Credential' parameter. ...`` and ``'{pair}' not a valid key=value pair
  (missing equal-sign) in Authorization header: '{header}'.`` IncompleteSignatureException [verified:
  aws/chalice#828 (API Gateway, 403), awslabs/fhir-works-on-aws-deployment#379 (DynamoDB)].
- ``Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got
  '{c}'`` IncompleteSignatureException [verified: yet-another-cloudwatch-exporter#169, mhart/aws4#97].
- ``'Host' must be a 'SignedHeader' in the AWS Authorization.`` [verified text, API Gateway: NetSPI/
  AWSSigner#3; the code IncompleteSignatureException is inferred] and ``'{h}' is named as a SignedHeader,
  but it does not exist in the HTTP request.`` [verified: aws-mobile-appsync-sdk-js#702].
- The terminator text, the credential-date mismatch text and the bad-date text are [unverified] (written
  from memory of AWS answers); an algorithm other than AWS4-HMAC-SHA256 gets a lab message that says so,
  not an AWS text. Presigned (query-string) requests are verified as header-signed ones are, plus their
  ``X-Amz-Expires``; the texts for their missing fields and their expiry are [unverified].

Pure: no I/O, no clock (the caller passes ``now``), no configuration. The shells turn a :class:`Rejection`
into their protocol's answer. It must not put a secret or a session token into a message.
"""

from __future__ import annotations

import functools
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, urlsplit

import botocore.loaders
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_SKEW_MINUTES = 5
MAX_SKEW = timedelta(minutes=MAX_SKEW_MINUTES)

INVALID_SIGNATURE = "InvalidSignatureException"
INCOMPLETE_SIGNATURE = "IncompleteSignatureException"
UNRECOGNIZED_CLIENT = "UnrecognizedClientException"
MISSING_TOKEN = "MissingAuthenticationTokenException"

INVALID_TOKEN_MESSAGE = "The security token included in the request is invalid."
MISMATCH_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)
PRESIGNED_QUERY_KEYS = frozenset({"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"})
MAX_PRESIGNED_EXPIRES_S = 604800  # 7 days, SigV4's limit for a presigned URL
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True)
class SigningSecret:
    """What the lab knows of an access key: its secret and, for temporary credentials, the session token."""

    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        return f"SigningSecret(secret=***, token={'***' if self.session_token else None})"


# secrets(access_key_id) -> the key's SigningSecret, or None for a key the lab never issued.
SecretLookup = Callable[[str], SigningSecret | None]


@dataclass(frozen=True)
class Endpoint:
    """The endpoint a request reached, as its signature must name it.

    ``region`` None: any region AWS has (the DynamoDB front door stands for every region's endpoint).
    ``status``: the HTTP status of every authentication failure (JSON services 400, API Gateway 403).
    """

    service: str
    region: str | None
    status: int
    missing_token_message: str


# [verified] MissingAuthenticationTokenException texts: DynamoDB's JSON answer and API Gateway's 403.
DYNAMODB = Endpoint("dynamodb", None, 400, "Request is missing Authentication Token")


def execute_api(region: str) -> Endpoint:
    """The @connections endpoint of an API in ``region``."""
    return Endpoint("execute-api", region, 403, "Missing Authentication Token")


@dataclass(frozen=True)
class ReceivedRequest:
    """A request as the server received it: ``target`` is the request line's path and query, still encoded."""

    method: str
    target: str
    headers: Sequence[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Signer:
    """Who signed a request that passed, and the scope they signed for."""

    access_key_id: str
    region: str
    service: str


@dataclass(frozen=True)
class Rejection:
    """AWS's answer to a request whose authentication failed."""

    code: str
    status: int
    message: str


@functools.cache
def aws_regions() -> frozenset[str]:
    """Every region of every AWS partition, as the installed botocore lists them (a newer one is unknown)."""
    partitions = botocore.loaders.create_loader().load_data("endpoints")["partitions"]
    return frozenset(region for partition in partitions for region in partition["regions"])


@dataclass(frozen=True)
class _Claim:
    """What a request says of its signature, from the Authorization header or a presigned query string."""

    algorithm: str
    credential: str
    signed_names: list[str]
    signature: str
    request_time: str
    from_amz_date: bool
    session_token: str | None
    expires_s: int | None = None  # presigned only: X-Amz-Expires


def verify(
    request: ReceivedRequest, endpoint: Endpoint, secrets: SecretLookup, now: datetime
) -> Signer | Rejection:
    """Whether ``request`` is validly signed for ``endpoint`` at ``now``: who signed it, or AWS's error.

    Signed in the ``Authorization`` header, or presigned: the same fields in the query string
    (``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-Expires``, ``X-Amz-SignedHeaders``,
    ``X-Amz-Security-Token``, ``X-Amz-Signature``), as clients presign a ``wss://`` URL for ``AWS_IAM`` on
    ``$connect``.
    """

    def reject(code: str, message: str) -> Rejection:
        return Rejection(code, endpoint.status, message)

    headers = _header_lists(request.headers)
    path, query = _path_and_query(request.target)
    pairs = parse_qsl(query, keep_blank_values=True)
    authorization = _one(headers, "authorization")
    if authorization is not None:
        claim = _header_claim(authorization, headers)
    elif PRESIGNED_QUERY_KEYS & {key for key, _ in pairs}:
        claim = _query_claim(dict(pairs))
        pairs = [(key, value) for key, value in pairs if key != "X-Amz-Signature"]
    else:
        return reject(MISSING_TOKEN, endpoint.missing_token_message)
    if isinstance(claim, str):
        return reject(INCOMPLETE_SIGNATURE, claim)
    if claim.algorithm != ALGORITHM:
        return reject(  # [unverified]: AWS's text for another algorithm is not in our sources
            INCOMPLETE_SIGNATURE,
            f"Unsupported algorithm '{claim.algorithm}': the lab verifies {ALGORITHM} only.",
        )
    parts = claim.credential.split("/")
    if len(parts) != 5:
        return reject(
            INCOMPLETE_SIGNATURE,
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got '{claim.credential}'",
        )
    access_key_id, scope_date, region, service, terminator = parts
    scope_problem = _scope_problem(endpoint, region, service, terminator)
    if scope_problem is not None:
        return reject(INVALID_SIGNATURE, scope_problem)

    signed_at = _request_time(claim.request_time, from_amz_date=claim.from_amz_date)
    if signed_at is None:  # [unverified] text
        return reject(
            INCOMPLETE_SIGNATURE, f"Date must be in ISO-8601 'basic format'. Got '{claim.request_time}'."
        )
    amz_date = signed_at.strftime(AMZ_DATE_FORMAT)
    if scope_date != amz_date[:8]:  # [unverified] text
        return reject(
            INVALID_SIGNATURE,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{scope_date}' != '{amz_date[:8]}', from '{amz_date}'.",
        )
    if "host" not in claim.signed_names:
        return reject(INCOMPLETE_SIGNATURE, "'Host' must be a 'SignedHeader' in the AWS Authorization.")
    for name in claim.signed_names:
        if name not in headers:
            return reject(
                INCOMPLETE_SIGNATURE,
                f"'{name}' is named as a SignedHeader, but it does not exist in the HTTP request.",
            )

    secret = secrets(access_key_id)
    if secret is None or claim.session_token != secret.session_token:
        return reject(UNRECOGNIZED_CLIENT, INVALID_TOKEN_MESSAGE)

    time_problem = _time_problem(signed_at, now, claim.expires_s)
    if time_problem is not None:
        return reject(INVALID_SIGNATURE, time_problem)

    # A presigned URL says nothing of a body it cannot know: botocore signs UNSIGNED-PAYLOAD, other signers
    # (mhart/aws4 for execute-api) the empty body's hash; both are accepted [inferred].
    payloads: tuple[str | None, ...] = (None, UNSIGNED_PAYLOAD) if claim.expires_s is not None else (None,)
    for payload in payloads:
        canonical, string_to_sign, expected = _expected_signature(
            request,
            path=path,
            params=pairs,
            headers=headers,
            signed_names=claim.signed_names,
            secret=secret,
            scope=(amz_date, region, service),
            payload_hash=payload,
        )
        if hmac.compare_digest(expected.encode(), claim.signature.encode()):
            return Signer(access_key_id, region, service)
    canonical = "\n".join(  # the session token is a secret; AWS quotes it, the lab does not
        "x-amz-security-token:***" if line.startswith("x-amz-security-token:") else line
        for line in canonical.split("\n")
    )
    canonical = re.sub(r"(X-Amz-Security-Token=)[^&\n]*", r"\1***", canonical)
    return reject(
        INVALID_SIGNATURE,
        f"{MISMATCH_MESSAGE}\n\nThe Canonical String for this request should have been\n'{canonical}'\n\n"
        f"The String-to-Sign should have been\n'{string_to_sign}'\n",
    )


def _header_claim(authorization: str, headers: dict[str, list[str]]) -> _Claim | str:
    request_time = _one(headers, "x-amz-date") or _one(headers, "date")
    parsed = _parse_authorization(authorization, has_date=request_time is not None)
    if isinstance(parsed, str):
        return parsed
    algorithm, credential, signed_names, signature = parsed
    return _Claim(
        algorithm,
        credential,
        signed_names,
        signature,
        request_time or "",  # never empty here: _parse_authorization asked for a date header
        _one(headers, "x-amz-date") is not None,
        _one(headers, "x-amz-security-token"),
    )


def _query_claim(params: dict[str, str]) -> _Claim | str:
    """The presigned fields, or IncompleteSignatureException's text (wording [unverified]: written after the
    header's; AWS's answers for a bad presigned execute-api URL are not in our sources)."""
    missing = [
        f"Authorization query parameters require '{name}'."
        for name in (
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
        )
        if not params.get(name)
    ]
    expires_text = params.get("X-Amz-Expires", "")
    expires = int(expires_text) if expires_text.isdigit() else None
    if expires is None or not 1 <= expires <= MAX_PRESIGNED_EXPIRES_S:
        missing.append(
            f"X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGNED_EXPIRES_S}, "
            f"not '{expires_text}'."
        )
    if missing:
        return " ".join(missing)
    signed_names = [name.strip().lower() for name in params["X-Amz-SignedHeaders"].split(";") if name.strip()]
    return _Claim(
        params["X-Amz-Algorithm"],
        params["X-Amz-Credential"],
        signed_names,
        params["X-Amz-Signature"],
        params["X-Amz-Date"],
        True,
        params.get("X-Amz-Security-Token"),
        expires,
    )


def _scope_problem(endpoint: Endpoint, region: str, service: str, terminator: str) -> str | None:
    """InvalidSignatureException's text for a credential scope ``endpoint`` does not serve, or None."""
    if terminator != TERMINATOR:  # [unverified] text
        return f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'. "
    served = region == endpoint.region if endpoint.region is not None else region in aws_regions()
    if not served:
        return f"Credential should be scoped to a valid region, not '{region}'. "
    if service != endpoint.service:
        return f"Credential should be scoped to correct service: '{endpoint.service}'. "
    return None


def _time_problem(signed_at: datetime, now: datetime, expires_s: int | None = None) -> str | None:
    """InvalidSignatureException's text for a signing time more than 5 minutes from ``now`` (a presigned
    URL: older than its ``X-Amz-Expires``, wording [unverified]), or None."""
    server_time = now.astimezone(UTC).replace(microsecond=0)  # AWS compares and writes whole seconds
    earliest, latest = server_time - MAX_SKEW, server_time + MAX_SKEW
    if expires_s is not None and signed_at + timedelta(seconds=expires_s) < server_time:
        return (
            f"Signature expired: {_stamp(signed_at)} is now earlier than "
            f"{_stamp(server_time - timedelta(seconds=expires_s))} ({_stamp(server_time)} - {expires_s} sec.)"
        )
    if expires_s is None and signed_at < earliest:
        return (
            f"Signature expired: {_stamp(signed_at)} is now earlier than {_stamp(earliest)} "
            f"({_stamp(server_time)} - {MAX_SKEW_MINUTES} min.)"
        )
    if signed_at > latest:
        return (
            f"Signature not yet current: {_stamp(signed_at)} is still later than {_stamp(latest)} "
            f"({_stamp(server_time)} + {MAX_SKEW_MINUTES} min.)"
        )
    return None


def _path_and_query(target: str) -> tuple[str, str]:
    """The encoded path and query of a request target (origin form ``/p?q``, or absolute form)."""
    if target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        return parts.path or "/", parts.query
    path, _, query = target.partition("?")
    return path or "/", query


def _header_lists(headers: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """Header values by lower-case name, repeated headers kept in order (SigV4 joins them with commas)."""
    lists: dict[str, list[str]] = {}
    for name, value in headers:
        lists.setdefault(name.strip().lower(), []).append(value)
    return lists


def _one(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return ",".join(values) if values else None


def _parse_authorization(header: str, *, has_date: bool) -> tuple[str, str, list[str], str] | str:
    """(algorithm, credential, signed header names, signature), or IncompleteSignatureException's text."""
    algorithm, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    for pair in (part.strip() for part in rest.split(",")):
        if not pair:
            continue
        key, equals, value = pair.partition("=")
        if not equals:
            shape = "not a valid key=value pair (missing equal-sign) in Authorization header"
            return f"'{pair}' {shape}: '{header}'."
        params[key.strip()] = value.strip()
    missing = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not params.get(name)
    ]
    if not has_date:
        missing.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if missing:
        return " ".join(missing) + f" Authorization={header}"
    signed_names = [name.strip().lower() for name in params["SignedHeaders"].split(";") if name.strip()]
    return algorithm, params["Credential"], signed_names, params["Signature"]


def _request_time(value: str, *, from_amz_date: bool) -> datetime | None:
    """The signing time in ``X-Amz-Date`` (``20240101T120000Z``) or, without it, in an HTTP ``Date``."""
    try:
        if from_amz_date:
            return datetime.strptime(value, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime(AMZ_DATE_FORMAT)


class _ReceivedSigV4(SigV4Auth):  # type: ignore[misc]  # botocore has no type hints
    """botocore's SigV4 signer, told which headers the client signed (a signer picks them itself) and, for a
    presigned request, which payload hash it used."""

    def __init__(
        self,
        credentials: Credentials,
        service: str,
        region: str,
        signed: HTTPHeaders,
        payload_hash: str | None = None,
    ) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed
        self._payload_hash = payload_hash

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return self._signed

    def payload(self, request: AWSRequest) -> str:
        return self._payload_hash or str(super().payload(request))


def _expected_signature(
    request: ReceivedRequest,
    *,
    path: str,
    params: list[tuple[str, str]],
    headers: dict[str, list[str]],
    signed_names: list[str],
    secret: SigningSecret,
    scope: tuple[str, str, str],
    payload_hash: str | None = None,
) -> tuple[str, str, str]:
    """(canonical request, string to sign, signature) the client must have computed, by botocore's code.

    The path is the one received, still percent-encoded: botocore signs its own URL's path, encoding it once
    more, and sends that same path. The query is decoded and re-encoded, as AWS does, so ``+`` or ``%20``
    for a space sign alike. The payload hash is always the body's own: the ``X-Amz-Content-SHA256`` header
    stays out of botocore's request (it would trust it), so a header that lies about the body fails.
    """
    amz_date, region, service = scope
    signed = HTTPHeaders()
    for name in signed_names:
        for value in headers[name]:
            signed[name] = value
    signer = _ReceivedSigV4(Credentials("-", secret.secret_access_key), service, region, signed, payload_hash)
    aws_request = AWSRequest(method=request.method, url=f"http://lab{path}", data=request.body, params=params)
    aws_request.context["timestamp"] = amz_date
    canonical = signer.canonical_request(aws_request)
    string_to_sign = signer.string_to_sign(aws_request, canonical)
    return canonical, string_to_sign, signer.signature(string_to_sign, aws_request)
