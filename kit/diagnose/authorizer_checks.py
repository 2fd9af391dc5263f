"""The checks on a ``$connect`` Lambda authorizer: does it refuse the handshakes (``authorizer``), and does
its context carry what the ``$connect`` handler reads from it (``authorizer-context``).

Evidence: the ``$connect`` route's authorization and its authorizer (``GetRoutes``/``GetAuthorizers``, as
:func:`kit.config.routes_frame` shapes them), the handshake statuses (access log or execution log, else the
probe), API Gateway's execution-log lines of the authorizer step (REST wording, its WebSocket use
unverified: ``Starting authorizer``, ``Unauthorized request``, ``Authorizer result body before parsing``)
and the ``$connect`` function's own log (the error it logged when the context lacked the user).

Pure: each looks at the evidence frames only.
"""

from __future__ import annotations

import json
import re
from typing import Final

import pandas as pd

from kit.diagnose import causes
from kit.diagnose.findings import (
    CONNECT,
    Evidence,
    Finding,
    first_text,
    handshake_statuses,
    skip,
    skip_if_api_unread,
)
from kit.logparse import patterns

REFUSED: Final = (401, 403)
# What the kit's fixed handler logs (AUTH_MODE=authorizer) when requestContext.authorizer lacks the user;
# other handlers are recognised by an error that names the authorizer's context.
MISSING_CONTEXT_CODE: Final = "MissingAuthorizerContext"
_NAMES_AUTHORIZER: Final = re.compile(r"authorizer", re.IGNORECASE)


def _connect_authorizer(e: Evidence) -> pd.Series | None:
    """The ``$connect`` route's row when it uses a Lambda authorizer (CUSTOM), else None."""
    connect = e.routes[(e.routes["route_key"] == CONNECT) & e.routes["route_id"].notna()]
    custom = connect[connect["authorization_type"].eq("CUSTOM").fillna(False).astype(bool)]
    return custom.iloc[0] if not custom.empty else None


def _described(row: pd.Series) -> str:
    name = row["authorizer_name"] if pd.notna(row["authorizer_name"]) else row["authorizer_id"]
    parts = [f"$connect uses Lambda authorizer {name}"]
    if pd.notna(row["authorizer_function"]):
        parts.append(f"function {row['authorizer_function']}")
    if pd.notna(row["authorizer_identity_source"]):
        parts.append(f"identity source {row['authorizer_identity_source']}")
    return ", ".join(parts)


def _execution_messages(e: Evidence) -> pd.Series:
    if e.log_lines is None or e.log_lines.empty:
        return pd.Series([], dtype="string")
    lines = e.log_lines[e.log_lines["source"].eq("apigw_exec").fillna(False).astype(bool)]
    return lines["message"].astype("string")


def check_authorizer(e: Evidence) -> list[Finding]:
    """``authorizer-denied``: handshakes refused 401/403 while ``$connect`` has a Lambda authorizer."""
    check, question = "authorizer", "Does the $connect authorizer let the clients' handshakes through?"
    if (unread := skip_if_api_unread(e, check, question)) is not None:
        return unread
    row = _connect_authorizer(e)
    if row is None:
        connect = e.routes[(e.routes["route_key"] == CONNECT) & e.routes["route_id"].notna()]
        kind = first_text(connect, "authorization_type") or "NONE"
        return [Finding(check, question, "pass", None, f"$connect has no Lambda authorizer ({kind})")]
    statuses = handshake_statuses(e)
    described = _described(row)
    if not statuses:
        return skip(check, question, f"{described}; no $connect handshake seen in the logs or by a probe")
    refused = [s for s in statuses if s in REFUSED]
    if not refused:
        return [
            Finding(
                check,
                question,
                "pass",
                None,
                f"{described}; none of {len(statuses)} handshakes answered 401 or 403",
            )
        ]
    counts = {status: refused.count(status) for status in REFUSED if status in refused}
    said = _execution_messages(e)
    started = int(said.str.extract(patterns.AUTHORIZER_STARTED)[0].notna().sum())
    unauthorized = int(said.str.extract(patterns.AUTHORIZER_UNAUTHORIZED, expand=False).notna().sum())
    detail = (
        f"{len(refused)} of {len(statuses)} handshakes answered "
        + ", ".join(f"{status} ×{n}" for status, n in counts.items())
        + f"; {described}"
    )
    if started:
        detail += (
            f"; the execution log shows {started} authorizer runs, {unauthorized} 'Unauthorized request'"
        )
    steps = []
    if 401 in counts:
        steps.append(
            f"401: an identity source ({row['authorizer_identity_source']}) was missing or empty, or the "
            "authorizer answered Unauthorized: send it from the client (a browser cannot set headers: use "
            "the query string)"
            if pd.notna(row["authorizer_identity_source"])
            else "401: an identity source was missing or empty, or the authorizer answered Unauthorized"
        )
    if 403 in counts:
        function = row["authorizer_function"] if pd.notna(row["authorizer_function"]) else "the authorizer"
        steps.append(
            f"403: its policy denied execute-api:Invoke on arn:aws:execute-api:<region>:<account>:{e.api_id}/"
            f"<stage>/$connect: read {function}'s log for why the token was rejected, and check the policy's "
            "Resource matches the methodArn (…/*/* does not match …/$connect)"
        )
    return [
        Finding(
            check,
            question,
            "fail",
            "authorizer-denied",
            detail,
            " ".join(f"{step}." for step in steps) + " " + causes.cause("authorizer-denied").next_step,
        )
    ]


def _authorizer_context_keys(e: Evidence) -> list[str]:
    """The context keys the authorizer answered, from the execution log's result body (REST wording)."""
    keys: set[str] = set()
    for body in _execution_messages(e).str.extract(patterns.AUTHORIZER_RESULT_BODY, expand=False).dropna():
        try:
            answer = json.loads(str(body))
        except ValueError:
            continue
        context = answer.get("context") if isinstance(answer, dict) else None
        if isinstance(context, dict):
            keys |= {str(key) for key in context}
    return sorted(keys)


def check_authorizer_context(e: Evidence) -> list[Finding]:
    """``authorizer-context-missing``: the $connect handler fails for want of the authorizer's context."""
    check = "authorizer-context"
    question = "Does the $connect authorizer's context carry what the handler reads from it?"
    if (unread := skip_if_api_unread(e, check, question)) is not None:
        return unread
    row = _connect_authorizer(e)
    if row is None:
        return [
            Finding(
                check, question, "pass", None, "$connect has no Lambda authorizer: no context to depend on"
            )
        ]
    if e.lifecycle is None or e.lifecycle.empty:
        return skip(check, question, e.problems.get("logs", "no connection seen in the logs"))
    codes = e.lifecycle["app_error_code"].astype("string")
    failed = e.lifecycle[codes.eq(MISSING_CONTEXT_CODE).fillna(False).astype(bool)]
    if failed.empty and e.invocations is not None and not e.invocations.empty:
        connect_calls = e.invocations[e.invocations["route_key"].eq(CONNECT).fillna(False).astype(bool)]
        errors = connect_calls["error_message"].astype("string")
        failed = connect_calls[errors.str.contains(_NAMES_AUTHORIZER).fillna(False).astype(bool)]
    if failed.empty:
        return [
            Finding(
                check,
                question,
                "pass",
                None,
                f"{_described(row)}; no $connect invocation failed for want of the authorizer's context",
            )
        ]
    keys = _authorizer_context_keys(e)
    carried = (
        f"; the authorizer's context carries {', '.join(keys) or 'no key'}"
        if keys
        else "; the authorizer's answer is not in the execution log"
    )
    statuses = sorted({int(s) for s in failed.get("connect_status", pd.Series(dtype="Int64")).dropna()})
    answered = f", answered {statuses}" if statuses else ""
    return [
        Finding(
            check,
            question,
            "fail",
            "authorizer-context-missing",
            f"{len(failed)} $connect invocation(s) failed reading requestContext.authorizer{answered} "
            f"({MISSING_CONTEXT_CODE} or an error naming the authorizer); {_described(row)}{carried}",
            causes.cause("authorizer-context-missing").next_step,
        )
    ]
