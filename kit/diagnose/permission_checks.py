"""The checks on permissions: the execution role's PutItem on the table (``iam-put``), Query on its index
(``iam-index-query``) and the rest the handlers need (``iam-other``; posting to @connections has a check of
its own, :func:`kit.diagnose.delivery_checks.check_manage_connections`); whether API Gateway may invoke the
``$connect`` function at all (``invoke-permission``); and, for a ``$connect`` route that uses ``AWS_IAM``,
whether the clients' signed handshakes get through (``connect-iam``).

Pure: the role's checks look at the permission matrix only (``Evidence.permissions``,
:data:`kit.iam.PERMISSION_COLUMNS`: one row per action and resource, evaluated by :mod:`kit.policy` or AWS's
simulator); the invoke check at the function's resource policy (``Evidence.function_policies``, evaluated
by :func:`kit.policy.resource_policy_decision` as the lab's gateway evaluates it) and the execution log.
"""

from __future__ import annotations

from typing import Final

import pandas as pd

from kit import frames, logparse, permissions, policy
from kit.diagnose import causes
from kit.diagnose.findings import CONNECT, Evidence, Finding, first_text, is_true, skip, skip_if_api_unread

# API Gateway's execution-log words when Lambda refuses its invocation (REST wording; the lab writes it too).
INVOKE_REFUSED: Final = "Invalid permissions on Lambda function"
_INVOKE_CHECK: Final = "invoke-permission"
_INVOKE_QUESTION: Final = "May API Gateway invoke the $connect function (its resource policy)?"


def _permission(e: Evidence, action: str, resource_part: str | None = None) -> pd.Series | None:
    if e.permissions is None or e.permissions.empty:
        return None
    rows = e.permissions[e.permissions["action"] == action]
    if resource_part is not None:
        rows = rows[rows["resource"].str.contains(resource_part, regex=False)]
    return rows.iloc[0] if not rows.empty else None


def _permission_check(
    e: Evidence, check: str, question: str, *, action: str, resource_part: str | None, cause_id: str
) -> list[Finding]:
    """One required permission of the execution role: pass when allowed, else fail with ``cause_id``."""
    row = _permission(e, action, resource_part)
    if row is None:
        return skip(check, question, e.problems.get("iam", "no execution role could be read"))
    if is_true(row["allowed"]):
        return [Finding(check, question, "pass", None, str(row["reason"]))]
    evidence = f"{row['decision']}: {row['reason']}"
    return [Finding(check, question, "fail", cause_id, evidence, causes.cause(cause_id).next_step)]


def check_put_permission(e: Evidence) -> list[Finding]:
    question = "May the execution role put items in the table (dynamodb:PutItem)?"
    return _permission_check(
        e, "iam-put", question, action="dynamodb:PutItem", resource_part=None, cause_id="put-access-denied"
    )


def check_index_permission(e: Evidence) -> list[Finding]:
    question = "May the execution role query the workspaceIndex GSI (dynamodb:Query on table/<name>/index/*)?"
    return _permission_check(
        e,
        "iam-index-query",
        question,
        action="dynamodb:Query",
        resource_part="/index/",
        cause_id="index-access-denied",
    )


def check_other_permissions(e: Evidence) -> list[Finding]:
    question = "May the role delete items, read the sender and write its logs?"
    if e.permissions is None or e.permissions.empty:
        return skip("iam-other", question, e.problems.get("iam", "no execution role could be read"))
    claimed = ["dynamodb:PutItem", "dynamodb:Query", "execute-api:ManageConnections"]  # checks of their own
    others = e.permissions[~e.permissions["action"].isin(claimed)]
    denied = others[~others["allowed"].fillna(False).astype(bool)]
    if denied.empty:
        return [Finding("iam-other", question, "pass", None, f"{len(others)} permissions allowed")]
    return [
        Finding(
            "iam-other",
            question,
            "warn",
            None,
            "; ".join(
                f"{a} on {r}: {d}"
                for a, r, d in zip(denied["action"], denied["resource"], denied["decision"], strict=True)
            ),
            "Grant the listed actions in the execution role's policy (see iam-policies.json).",
        )
    ]


AUTHORIZER_CONFIGURATION = "AuthorizerConfigurationException"


def _connect_refusals(log_lines: pd.DataFrame | None) -> tuple[int, bool, str]:
    """$connect requests API Gateway could not invoke (its execution log's "Invalid permissions" line):
    (how many, whether the last $connect request in the log was one, when the last refused one was)."""
    if log_lines is None or log_lines.empty:
        return 0, False, ""
    gateway = log_lines[log_lines["source"].eq("apigw_exec").fillna(False).astype(bool)]
    connect = gateway["route_key"].eq(CONNECT).fillna(False) | gateway["event_type"].eq("CONNECT").fillna(
        False
    )
    requests = gateway[connect.astype(bool)].groupby("apigw_request_id")["ts"].min().sort_values()
    if requests.empty:
        return 0, False, ""
    in_connect = gateway["apigw_request_id"].isin(requests.index).fillna(False).astype(bool)
    said = gateway["message"].astype("string")
    refused_lines = gateway[
        in_connect & said.str.contains(INVOKE_REFUSED, regex=False).fillna(False).astype(bool)
    ]
    # A $connect authorizer API Gateway may not invoke logs the same line, then
    # AuthorizerConfigurationException: that refusal is the authorizer function's, not $connect's.
    by_authorizer = gateway[
        in_connect & said.str.contains(AUTHORIZER_CONFIGURATION, regex=False).fillna(False).astype(bool)
    ]
    refused = set(refused_lines["apigw_request_id"].astype(str)) - set(
        by_authorizer["apigw_request_id"].astype(str)
    )
    if not refused:
        return 0, False, ""
    last_refused = requests[requests.index.isin(refused)].index[-1]
    return len(refused), str(requests.index[-1]) in refused, str(requests[last_refused])


def check_invoke_permission(e: Evidence) -> list[Finding]:
    """May API Gateway invoke the ``$connect`` function? Lambda's resource policy decides, for the source ARN
    API Gateway presents (``arn:…:execute-api:{region}:{account}:{api}/{stage}/$connect``).

    The policy read decides: none at all (GetPolicy's ResourceNotFoundException) or no statement for that
    ARN fails; the execution log's refusals are quoted beside it. A policy that allows while the log shows
    refusals is a warning (the grant may be newer than those requests). A policy that could not be read is
    not a pass: it skips (the ``read-function-policy`` finding makes the diagnosis inconclusive), unless the
    last ``$connect`` request in the log was itself refused, which is API Gateway's own word.
    """
    check, question = (
        "invoke-permission",
        "May API Gateway invoke the $connect function (its resource policy)?",
    )
    if (unread := skip_if_api_unread(e, check, question)) is not None:
        return unread
    connect = e.routes[(e.routes["route_key"] == CONNECT) & e.routes["function_arn"].notna()]
    if connect.empty:
        return skip(check, question, "$connect invokes no Lambda function")
    if e.stage.empty or pd.isna(e.stage.iloc[0]["stage_name"]):
        return skip(check, question, "no stage was read, so the source ARN API Gateway presents is not known")
    stage = str(e.stage.iloc[0]["stage_name"])
    count, last_refused, when = _connect_refusals(e.log_lines)
    logged = (
        f"API Gateway's execution log: {count} $connect requests failed with 'Execution failed due to "
        f"configuration error: {INVOKE_REFUSED}' (the last at {when})"
        if count
        else ""
    )
    findings: list[Finding] = []
    for function_arn in dict.fromkeys(str(arn) for arn in connect["function_arn"]):
        findings.append(
            _invoke_finding(e, function_arn, stage=stage, logged=logged, last_refused=last_refused)
        )
    return findings


def _invoke_finding(
    e: Evidence, function_arn: str, *, stage: str, logged: str, last_refused: bool
) -> Finding:
    check, question = _INVOKE_CHECK, _INVOKE_QUESTION
    next_step = causes.cause("invoke-permission-missing").next_step
    parts = function_arn.split(":")
    partition, account = parts[1], parts[4]
    source_arn = permissions.execute_api_route_arn(
        e.region, account, e.api_id, stage, CONNECT, partition=partition
    )
    name = parts[6] if len(parts) > 6 else function_arn
    if function_arn not in e.function_policies:
        unread = e.problems.get("function-policy", "the function's resource policy was not read")
        if last_refused:
            detail = f"function {name}'s resource policy was not read ({unread}); {logged}, the last one too"
            return Finding(check, question, "fail", "invoke-permission-missing", detail, next_step)
        return Finding(
            check, question, "skip", None, f"function {name}'s resource policy was not read: {unread}"
        )
    decision = policy.resource_policy_decision(
        e.function_policies[function_arn],
        service=policy.APIGATEWAY_PRINCIPAL,
        action=policy.INVOKE_FUNCTION,
        resource=function_arn,
        context={"aws:SourceArn": source_arn, "aws:SourceAccount": account},
        name=f"function {name}'s resource policy",
    )
    said = f"for source ARN {source_arn}: {decision.reason}"
    if not decision.allowed:
        detail = "; ".join(part for part in (said, logged) if part)
        return Finding(check, question, "fail", "invoke-permission-missing", detail, next_step)
    if logged:
        return Finding(
            check,
            question,
            "warn",
            None,
            f"{said} Yet {logged}: the grant may be newer than those requests, or a condition the kit does "
            "not evaluate refused them.",
            "Connect again and read the execution log: a new 'Invalid permissions' line means the policy "
            "does not grant what it seems to.",
        )
    return Finding(check, question, "pass", None, said)


def check_connect_iam(e: Evidence) -> list[Finding]:
    """``AWS_IAM`` on ``$connect``: API Gateway checks each handshake's SigV4 signature and the caller's IAM
    policies (``execute-api:Invoke`` on ``…/{stage}/$connect``) before ``$connect`` runs. Handshakes the
    probe or the logs saw answered 403 on such a route fail with ``connect-iam-denied``, quoting what API
    Gateway answered; none refused passes, and so does a route without ``AWS_IAM``."""
    check, question = "connect-iam", "Do handshakes pass AWS_IAM on $connect (SigV4 and execute-api:Invoke)?"
    if (unread := skip_if_api_unread(e, check, question)) is not None:
        return unread
    connect = e.routes[e.routes["route_key"] == CONNECT]
    if connect.empty:
        return skip(check, question, "the API has no $connect route")
    authorization = connect.iloc[0]["authorization_type"]
    if pd.isna(authorization) or authorization != "AWS_IAM":
        shown = "NONE" if pd.isna(authorization) else str(authorization)
        return [
            Finding(check, question, "pass", None, f"$connect's AuthorizationType is {shown}, not AWS_IAM")
        ]
    probe = e.probe if e.probe is not None else frames.empty({"step": "string", "http_status": "Int64"})
    seen = e.lifecycle if e.lifecycle is not None else frames.empty(logparse.LIFECYCLE_COLUMNS)
    refused = probe[(probe["step"] == "connect") & probe["http_status"].eq(403).fillna(False).astype(bool)]
    logged = seen[seen["connect_status"].eq(403).fillna(False).astype(bool)]
    parts = []
    if not refused.empty:
        parts.append(f"{len(refused)} probe handshakes answered 403: {first_text(refused, 'detail')}")
    if not logged.empty:
        parts.append(f"{len(logged)} $connect requests in the logs answered 403")
    if parts:
        detail = "$connect uses AWS_IAM; " + "; ".join(parts)
        next_step = causes.cause("connect-iam-denied").next_step
        return [Finding(check, question, "fail", "connect-iam-denied", detail, next_step)]
    if probe.empty and seen.empty:
        return skip(check, question, "$connect uses AWS_IAM; no probe ran and no $connect is in the logs")
    if seen.empty:  # only the probe's handshakes, signed with the kit's own credentials: not the clients'
        return [
            Finding(
                check,
                question,
                "warn",
                None,
                "$connect uses AWS_IAM; the probe's handshakes, signed with the kit's own credentials, "
                "passed, and no client's $connect is in the logs: whether your clients' signatures and "
                "policies pass was not seen",
                "Read the logs of a time your clients connected (--since), or connect as one of them.",
            )
        ]
    return [
        Finding(check, question, "pass", None, "$connect uses AWS_IAM; no handshake was refused with 403")
    ]
