"""Lambda REQUEST authorizers on ``$connect``: what API Gateway decides around one, as plain functions.

A WebSocket API can put a Lambda ``REQUEST`` authorizer on ``$connect`` only (``AuthorizationType=CUSTOM``
with an ``AuthorizerId``). Before the ``$connect`` integration runs, API Gateway reads the authorizer's
identity sources from the upgrade request, invokes the authorizer's function with the REQUEST event, evaluates
the policy it returns against the method ARN, and either refuses the handshake or carries the authorizer's
``principalId`` and ``context`` into ``requestContext.authorizer`` of that connection's every event. This
module makes those decisions; the gateway (:mod:`kit.lab.gateway`) does the invoking.

    authorizer_config(answer) -> AuthorizerConfig           a GetAuthorizer answer, read (pure)
    identity(authorizer, connect_event) -> Identity          the identity sources' values, or the missing one
    authorizer_event(connect_event, method_arn, ...) -> dict the event the authorizer's function receives
    verdict(result, method_arn) -> Verdict                    its answer → allow, or the handshake's status
    log_lines(...) -> [(level, text)]                         the execution-log lines of the authorizer step

Statuses (reference ``apigw-websocket-auth-deploy-throttle.md`` §1.5): an identity source missing or empty:
401 and the function is not invoked; the function failing with the message ``Unauthorized``: 401; a Deny, or
no statement allowing ``execute-api:Invoke`` on the method ARN: 403; any other error, a timeout, an invoke
that was not permitted, or a malformed answer (not an object, no ``principalId``, no policy, a policy that
does not parse, a context value that is an object or array, over 8 KB): 500 (inferred from REST's
``AuthorizerConfigurationException``; serverless-offline also answers 500).

Context values reach the events as strings (``true``/``false`` for booleans): inferred, as REST and
serverless-offline show them; AWS's WebSocket events are unverified there.

Like :mod:`kit.lab.gateway_core`, this module does no I/O and never imports ``websockets``, ``asyncio`` or
``boto3``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kit import policy
from kit.lab.gateway_events import lambda_function_arn, source_value

CUSTOM: str = "CUSTOM"
UNAUTHORIZED: str = "Unauthorized"  # the function's error message that means 401, and the handshake's body
FORBIDDEN: str = "Forbidden"
INTERNAL_SERVER_ERROR: str = "Internal server error"
MAX_RESULT_BYTES = 8 * 1024  # AWS's quota for a Lambda authorizer's result
INVOKE_ACTION = "execute-api:Invoke"
LineLevel = Literal["INFO", "ERROR"]


@dataclass(frozen=True)
class AuthorizerConfig:
    """One authorizer as ``GetAuthorizer`` shows it: what the gateway needs to run it."""

    authorizer_id: str
    name: str
    authorizer_type: str
    uri: str
    identity_sources: tuple[str, ...]
    credentials_arn: str | None = (
        None  # a role API Gateway assumes to invoke the function, instead of its policy
    )

    @property
    def function_arn(self) -> str | None:
        """The Lambda function the authorizer invokes (from ``AuthorizerUri``), or None."""
        return lambda_function_arn(self.uri)


def authorizer_config(answer: Mapping[str, Any]) -> AuthorizerConfig:
    """A ``GetAuthorizer`` answer (boto3 shape) as an :class:`AuthorizerConfig` (pure)."""
    sources = answer.get("IdentitySource") or []
    if isinstance(sources, str):  # the wire form some tools write: comma-separated
        sources = [part.strip() for part in sources.split(",")]
    return AuthorizerConfig(
        authorizer_id=str(answer.get("AuthorizerId", "")),
        name=str(answer.get("Name", "")),
        authorizer_type=str(answer.get("AuthorizerType", "")),
        uri=str(answer.get("AuthorizerUri", "")),
        identity_sources=tuple(str(s) for s in sources if str(s)),
        credentials_arn=str(answer["AuthorizerCredentialsArn"])
        if answer.get("AuthorizerCredentialsArn")
        else None,
    )


def method_arn(region: str, account_id: str, api_id: str, stage: str, route_key: str = "$connect") -> str:
    """The resource an authorizer's policy must allow: ``arn:aws:execute-api:…:{api}/{stage}/$connect``."""
    return f"arn:aws:execute-api:{region}:{account_id}:{api_id}/{stage}/{route_key}"


@dataclass(frozen=True)
class Identity:
    """The identity sources' values in order, or the first source with no value (``missing``)."""

    values: tuple[str, ...] = ()
    missing: str | None = None


def identity(
    authorizer: AuthorizerConfig,
    connect_event: Mapping[str, Any],
    stage_variables: Mapping[str, str] | None = None,
) -> Identity:
    """Each identity source's value in the upgrade request (pure).

    Sources: ``route.request.header.<name>`` (any case), ``route.request.querystring.<name>``,
    ``stageVariables.<name>``, ``context.<name>`` (the event's ``requestContext``). A value that is missing or
    empty makes the whole identity missing: API Gateway answers 401 without invoking the function.
    """
    event = {**connect_event, "stageVariables": dict(stage_variables or {})}
    values: list[str] = []
    for source in authorizer.identity_sources:
        value = source_value(source.removeprefix("$"), event)
        if not value:
            return Identity(tuple(values), source)
        values.append(value)
    return Identity(tuple(values))


_HOP_HEADERS = frozenset({"connection", "upgrade"})


def authorizer_event(
    connect_event: Mapping[str, Any],
    method_arn_value: str,
    stage_variables: Mapping[str, str] | None = None,
    client_headers: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The REQUEST event the authorizer's function receives on ``$connect`` (pure).

    As AWS's capture (reference F4, §1.4): ``type`` REQUEST, ``methodArn`` (no HTTP verb), the CONNECT
    event's headers plus the upgrade's ``Connection`` and ``Upgrade`` (``client_headers``) and
    ``content-length: 0``, which the integration's event does not carry; its ``requestContext``; and
    ``queryStringParameters``, ``multiValueQueryStringParameters`` and ``stageVariables`` always present
    (``{}`` when there are none).
    """
    headers = dict(connect_event.get("headers") or {})
    multi = {name: list(values) for name, values in (connect_event.get("multiValueHeaders") or {}).items()}
    for name, value in [
        *((n, v) for n, v in client_headers if n.lower() in _HOP_HEADERS),
        ("content-length", "0"),
    ]:
        headers[name] = value
        multi.setdefault(name, []).append(value)
    return {
        "type": "REQUEST",
        "methodArn": method_arn_value,
        "headers": headers,
        "multiValueHeaders": multi,
        "queryStringParameters": dict(connect_event.get("queryStringParameters") or {}),
        "multiValueQueryStringParameters": dict(connect_event.get("multiValueQueryStringParameters") or {}),
        "stageVariables": dict(stage_variables or {}),
        "requestContext": dict(connect_event.get("requestContext") or {}),
    }


InvocationKind = Literal["response", "function-error", "timeout", "invoke-error"]


@dataclass(frozen=True)
class Invocation:
    """How the authorizer's function answered, as the gateway saw it: its decoded ``payload`` for a
    ``response``, else ``error_message`` (the function's errorMessage, or why the invoke failed)."""

    kind: InvocationKind
    payload: Any = None
    error_message: str | None = None


@dataclass(frozen=True)
class Verdict:
    """The authorizer step's outcome.

    ``status`` None: allowed, and ``authorizer`` is what every event of the connection carries in
    ``requestContext.authorizer`` (``principalId`` and the context, as strings). Otherwise the handshake's
    HTTP status, with ``body`` (AWS's JSON error body), and ``reason`` for the execution log.
    """

    status: int | None
    authorizer: tuple[tuple[str, str], ...] = ()
    principal_id: str | None = None
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.status is None

    @property
    def body(self) -> str:
        message = {401: UNAUTHORIZED, 403: FORBIDDEN}.get(self.status or 0, INTERNAL_SERVER_ERROR)
        return json.dumps({"message": message})

    @property
    def response_type(self) -> str | None:
        """``$context.error.responseType`` (REST's gateway response types; inferred for WebSocket)."""
        return {401: "UNAUTHORIZED", 403: "ACCESS_DENIED", 500: "AUTHORIZER_CONFIGURATION_ERROR"}.get(
            self.status or 0
        )


MISSING_IDENTITY = Verdict(401, reason="an identity source is missing or empty")


def _context_value(value: object) -> str | None:
    """A context value as the events carry it; None for an object or array (AWS refuses those)."""
    return "" if value is None else policy.scalar_text(value)


def _malformed(reason: str) -> Verdict:
    return Verdict(500, reason=f"Invalid JSON in response: {reason}")


def verdict(invocation: Invocation, method_arn_value: str) -> Verdict:
    """The handshake's fate from the authorizer function's answer (pure; see the module docstring)."""
    if invocation.kind == "function-error":
        if (invocation.error_message or "").strip() == UNAUTHORIZED:
            return Verdict(401, reason="the authorizer answered Unauthorized")
        return Verdict(500, reason=f"the authorizer failed: {invocation.error_message or 'function error'}")
    if invocation.kind == "timeout":
        return Verdict(500, reason="the authorizer timed out")
    if invocation.kind == "invoke-error":
        return Verdict(500, reason=invocation.error_message or "the authorizer could not be invoked")
    payload = invocation.payload
    if not isinstance(payload, Mapping):
        return _malformed(f"the answer is a JSON {type(payload).__name__}, not an object")
    if len(json.dumps(payload, default=str).encode()) > MAX_RESULT_BYTES:
        return _malformed(f"the answer is larger than {MAX_RESULT_BYTES} bytes")
    principal = payload.get("principalId")
    if not isinstance(principal, str | int | float) or isinstance(principal, bool) or principal == "":
        return _malformed("no principalId")
    document = payload.get("policyDocument")
    if not isinstance(document, Mapping):
        return _malformed("no policyDocument object")
    parsed = policy.parse_policy(dict(document), "authorizer policy", strict=False)
    if parsed.problems or not parsed.statements:
        return _malformed(parsed.problems[0] if parsed.problems else "the policy has no statement")
    context = payload.get("context") or {}
    if not isinstance(context, Mapping):
        return _malformed("context is not an object")
    carried: list[tuple[str, str]] = [("principalId", str(principal))]
    for key, value in context.items():
        text = _context_value(value)
        if text is None:
            return _malformed(f"context value {key!r} is an object or array")
        carried.append((str(key), text))
    decision = policy.evaluate([parsed], INVOKE_ACTION, method_arn_value)
    if not decision.allowed:
        return Verdict(403, principal_id=str(principal), reason=decision.reason)
    return Verdict(None, tuple(carried), str(principal), decision.reason)


def masked(value: str) -> str:
    """An identity value as the execution log shows it: all but its last 4 characters starred (inferred)."""
    return "*" * max(len(value) - 4, 0) + value[-4:] if len(value) > 4 else "*" * len(value)


def log_lines(
    authorizer: AuthorizerConfig,
    request_id: str,
    found: Identity,
    result: Verdict,
    *,
    endpoint_uri: str | None = None,
    result_body: str | None = None,
) -> list[tuple[LineLevel, str]]:
    """The execution-log lines of the authorizer step, in order (pure).

    REST test-invoke wording (the reference's §1.6; its WebSocket use is unverified): ``Starting authorizer``,
    ``Incoming identity``, ``Endpoint request URI``, ``Authorizer result body before parsing``,
    ``Execution failed due to configuration error: …`` then ``AuthorizerConfigurationException``,
    ``Unauthorized request``, ``Successfully completed authorizer execution``. The lab's own wording (nothing
    to compare with): ``Authorizer denied the request: <reason>`` for a 403. ``endpoint_uri`` is None when
    the function was not invoked (an identity source missing).
    """
    lines: list[tuple[LineLevel, str]] = [
        ("INFO", f"Starting authorizer: {authorizer.authorizer_id} for request: {request_id}")
    ]
    if found.missing is not None:
        lines.append(("ERROR", f"Unauthorized request: {request_id}"))
        return lines
    lines.append(("INFO", f"Incoming identity: {', '.join(masked(v) for v in found.values)}"))
    if endpoint_uri is not None:
        lines.append(("INFO", f"Endpoint request URI: {endpoint_uri}"))
    if result_body is not None:
        lines.append(("INFO", f"Authorizer result body before parsing: {result_body}"))
    if result.status == 500:
        lines.append(("ERROR", f"Execution failed due to configuration error: {result.reason}"))
        lines.append(("ERROR", "AuthorizerConfigurationException"))
    elif result.status == 401:
        lines.append(("ERROR", f"Unauthorized request: {request_id}"))
    else:
        lines.append(("INFO", "Successfully completed authorizer execution"))
        if result.status == 403:
            lines.append(("ERROR", f"Authorizer denied the request: {result.reason}"))
    return lines


def access_log_fields(
    result: Verdict | None, *, latency_ms: int | None = None, integration_status: int | None = None
) -> dict[str, object]:
    """The ``$context.authorizer.*`` and ``$context.authorize.*`` variables of a CONNECT (pure)."""
    if result is None:
        return {}
    status = result.status or 200
    fields: dict[str, object] = {
        "authorizer.status": status,
        "authorizer.latency": latency_ms,
        "authorizer.integrationLatency": latency_ms,
        "authorizer.integrationStatus": integration_status,
        "authorizer.error": None if result.allowed else result.reason,
        "authorizer.principalId": result.principal_id,
        "authorize.status": status,
        "authorize.error": None if result.allowed else json.loads(result.body)["message"],
        "authorize.latency": latency_ms,
    }
    for key, value in result.authorizer:
        if key != "principalId":
            fields[f"authorizer.{key}"] = value
    return fields


def stage_variables_of(stage: Mapping[str, Any] | None) -> dict[str, str]:
    """A GetStage answer's ``StageVariables`` as strings."""
    variables = (stage or {}).get("StageVariables") or {}
    return {str(k): str(v) for k, v in variables.items()} if isinstance(variables, Mapping) else {}


@dataclass(frozen=True)
class Step:
    """The authorizer step of one ``$connect``, for the shell: its verdict, its execution-log lines and its
    access-log variables."""

    verdict: Verdict
    lines: tuple[tuple[LineLevel, str], ...] = ()
    access_fields: tuple[tuple[str, object], ...] = ()
