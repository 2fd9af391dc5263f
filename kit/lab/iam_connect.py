"""``AWS_IAM`` on ``$connect``: a handshake signed with SigV4 for ``execute-api`` by a caller whose IAM
policies allow ``execute-api:Invoke`` on the route's ARN
(``arn:aws:execute-api:{region}:{account}:{api}/{stage}/$connect``).

AWS (the reference's §1.7, AWSDOCS ``apigateway-websocket-control-access-iam``): the action is
``execute-api:Invoke`` and the resource the route's ARN; a wildcard must reach as deep (``{api}/*/*`` allows,
``{api}/*/*/*`` does not); clients presign the ``wss://`` URL (or, where they can set headers, sign them).
A refusal is 403 [unverified: serverless/serverless#6149]. The bodies are API Gateway's REST answers, taken
for the WebSocket handshake [inferred]: ``{"message":"Missing Authentication Token"}`` for an unsigned one,
``{"message": "<the signature error>"}`` for a bad signature, and ``{"Message":"User: <arn> is not authorized
to perform: execute-api:Invoke on resource: <arn>"}`` (capital M, as REST answers a policy denial) for a
caller its policies do not allow. The ``$context.error.responseType`` values are REST's gateway response
types [inferred]; the execution-log line is the lab's own wording (no AWS capture of one is in our notes).

Pure: the signature is checked by :func:`kit.lab.sigv4.verify`, the policies by :func:`kit.policy.evaluate`;
the gateway passes in the secrets it knows, who holds a key (with that principal's policies) and the clock.
``$connect`` is not invoked for a refused handshake, so nothing is stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from kit import policy
from kit.lab import sigv4

CONNECT_ACTION: Final = "execute-api:Invoke"
REFUSED_STATUS: Final = 403
_RESPONSE_TYPES: Final = {
    sigv4.MISSING_TOKEN: "MISSING_AUTHENTICATION_TOKEN",
    sigv4.INVALID_SIGNATURE: "INVALID_SIGNATURE",
    sigv4.INCOMPLETE_SIGNATURE: "INVALID_SIGNATURE",
    sigv4.UNRECOGNIZED_CLIENT: "UNAUTHORIZED",
}


@dataclass(frozen=True)
class Caller:
    """Who holds an access key: the ARN AWS names, and its identity policies (None: the account's
    administrator key, which every action is allowed to)."""

    arn: str
    policies: tuple[policy.Policy, ...] | None


@dataclass(frozen=True)
class IamAnswer:
    """What ``AWS_IAM`` decided for one handshake: go on to ``$connect``, or the refusal and what it logs."""

    allowed: bool
    caller_arn: str | None = None
    status: int = REFUSED_STATUS
    body: str = ""
    error_message: str | None = None  # $context.error.message
    response_type: str | None = None  # $context.error.responseType
    error_type: str = ""  # the x-amzn-ErrorType header: the signature error's code, or AccessDeniedException
    reason: str = ""  # why, for the execution log

    def log_line(self) -> str:
        """The execution-log line of a refusal (the lab's wording), or of the caller let through."""
        if self.allowed:
            return f"IAM authorization of {self.caller_arn} for the $connect handshake succeeded"
        return f"Execution failed: IAM authorization of the $connect handshake failed: {self.reason}"


def authorize_connect(
    request: sigv4.ReceivedRequest,
    *,
    region: str,
    route_arn: str,
    secrets: sigv4.SecretLookup,
    caller: Callable[[str], Caller],
    now: datetime,
) -> IamAnswer:
    """Whether the handshake ``request`` passes ``AWS_IAM`` for ``route_arn`` (see the module docstring)."""
    signed = sigv4.verify(request, sigv4.execute_api(region), secrets, now)
    if isinstance(signed, sigv4.Rejection):
        return IamAnswer(
            False,
            status=signed.status,
            body=json.dumps({"message": signed.message}),
            error_message=signed.message,
            response_type=_RESPONSE_TYPES.get(signed.code, "INVALID_SIGNATURE"),
            error_type=signed.code,
            reason=f"{signed.code}: {signed.message.splitlines()[0]}",
        )
    who = caller(signed.access_key_id)
    if who.policies is None:
        return IamAnswer(True, who.arn)
    decision = policy.evaluate(who.policies, CONNECT_ACTION, route_arn)
    if decision.allowed:
        return IamAnswer(True, who.arn)
    message = f"User: {who.arn} is not authorized to perform: {CONNECT_ACTION} on resource: {route_arn}"
    return IamAnswer(
        False,
        who.arn,
        body=json.dumps({"Message": message}),
        error_message=message,
        response_type="ACCESS_DENIED",
        error_type="AccessDeniedException",
        reason=f"{message} ({decision.reason})",
    )
