"""Lab-only Lambda REQUEST authorizers for ``$connect``, for the authorizer scenarios (never for deployment).

Each reads the client's ``?token=`` (the authorizer's identity source is ``route.request.querystring.token``)
and answers API Gateway's authorizer output: ``principalId``, a policy for ``execute-api:Invoke`` on the
event's ``methodArn``, and a ``context`` that every event of the connection carries in
``requestContext.authorizer``.

    email_token.handler    the seed's contract (the token is the user's e-mail): Allow with the user in its
                           context (``userId``, ``email``); Deny for a token that is no e-mail address
    signed_token           only tokens signed with AUTH_SECRET (app.py's sign_token): Allow with the user;
                           Deny for anything else, an e-mail token included
    without_user           Allow every token, with a context that names the workspace but not the user

Handlers are ``authorizers.email_token``, ``authorizers.signed_token`` and ``authorizers.without_user``. They
log one line per decision, without the token (a user shows as a short hash, as app.py logs them).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

# app.py sits beside this file at the deployment package's top level (Lambda's task root), as it is zipped.
from app import TokenError, is_email, user_hash, verify_token  # type: ignore[import-not-found]


def _policy(principal: str, effect: str, method_arn: str, context: dict[str, str] | None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}],
        },
    }
    if context is not None:
        answer["context"] = context
    return answer


def _token(event: dict[str, Any]) -> str:
    return str((event.get("queryStringParameters") or {}).get("token") or "")


def _log(decision: str, **fields: object) -> None:
    print(json.dumps({"authorizer": decision, **fields}))


def email_token(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token = _token(event)
    if not is_email(token):
        _log("deny", reason="the token is not an e-mail address")
        return _policy("anonymous", "Deny", event["methodArn"], None)
    _log("allow", user_hash=user_hash(token))
    return _policy(token, "Allow", event["methodArn"], {"userId": token, "email": token})


def signed_token(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token = _token(event)
    try:
        user_id = verify_token(token, os.environ.get("AUTH_SECRET", ""), time.time())
    except (TokenError, ValueError) as exc:
        _log("deny", reason=str(exc))
        return _policy("anonymous", "Deny", event["methodArn"], None)
    _log("allow", user_hash=user_hash(user_id))
    return _policy(user_id, "Allow", event["methodArn"], {"userId": user_id})


def without_user(event: dict[str, Any], context: Any) -> dict[str, Any]:
    workspace = str((event.get("queryStringParameters") or {}).get("workspaceId") or "")
    _log("allow", note="context without the user")
    return _policy("user", "Allow", event["methodArn"], {"workspaceId": workspace})
