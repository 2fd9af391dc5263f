"""The checks on the execution role's permissions: PutItem on the table (``iam-put``), Query on its index
(``iam-index-query``) and the rest the handlers need (``iam-other``); posting to @connections has a check of
its own (:func:`kit.diagnose.delivery_checks.check_manage_connections`).

Pure: each looks at the permission matrix only (``Evidence.permissions``, :data:`kit.iam.PERMISSION_COLUMNS`:
one row per action and resource, evaluated by :mod:`kit.policy` or AWS's simulator).
"""

from __future__ import annotations

import pandas as pd

from kit.diagnose import causes
from kit.diagnose.findings import Evidence, Finding, is_true, skip


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
