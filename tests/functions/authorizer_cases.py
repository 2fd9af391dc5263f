"""Lambda REQUEST authorizers the lab's authorizer tests attach to ``$connect``, one per kind of answer.

Like echo_event.py, each is reached as ``tests.functions.authorizer_cases.<name>`` (the lab's workers have the
project root on ``PYTHONPATH``). Each prints the event it got (``AUTHORIZER_EVENT <json>``) first.
"""

from __future__ import annotations

import json
import time
from typing import Any

EVENT_MARKER = "AUTHORIZER_EVENT "


def _seen(event: dict[str, Any]) -> None:
    print(EVENT_MARKER + json.dumps(event, sort_keys=True))


def _answer(event: dict[str, Any], effect: str, **extra: Any) -> dict[str, Any]:
    statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}
    return {
        "principalId": "user-1",
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
    } | extra


def allow(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _seen(event)
    return _answer(event, "Allow", context={"userId": "user-1", "plan": "pro", "seats": 3, "admin": False})


def deny(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _seen(event)
    return _answer(event, "Deny")


def unauthorized(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _seen(event)
    raise Exception("Unauthorized")  # the message API Gateway reads as 401


def fails(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _seen(event)
    raise RuntimeError("token store unreachable")


def garbage(event: dict[str, Any], context: Any) -> Any:
    _seen(event)
    return ["not", "a", "policy"]


def object_context(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _seen(event)
    return _answer(event, "Allow", context={"user": {"id": 1}})


def hang(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _seen(event)
    time.sleep(60)
    return _answer(event, "Allow")
