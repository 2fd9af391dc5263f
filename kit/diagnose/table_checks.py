"""The checks on the table and what it holds: its structure (``table-structure``), the kit's own write to it
(``direct-write``), the items and the index (``index-coverage``), the stored connection ids' shape
(``connection-id-shape``) and e-mail addresses used as tokens (``email-as-token``).

Pure: each looks at the evidence frames only (the schema differences, the items, the index coverage and the
storage test's steps, as :mod:`kit.dynamo` shapes them; ``email-as-token`` also reads the functions'
environment).
"""

from __future__ import annotations

import pandas as pd

from kit.diagnose import causes
from kit.diagnose.findings import API_GATEWAY_CONNECTION_ID, EMAIL_LIKE, Evidence, Finding, first_text, skip
from kit.dynamo import direct_write
from kit.errors import failure_kind


def check_table(e: Evidence) -> list[Finding]:
    question = f"Does table {e.table} exist in {e.region} with the expected key and workspaceIndex GSI?"
    if e.schema_differences is None:
        return skip("table-structure", question, e.problems.get("table", "not read"))
    errors = e.schema_differences[e.schema_differences["severity"] == "error"]
    if errors.empty:
        return [
            Finding("table-structure", question, "pass", None, "describe_table matches the expected schema")
        ]
    missing = errors[errors["kind"] == "table-missing"]
    said = "; ".join(errors["message"].astype(str))
    if not missing.empty and e.functions["table_name"].dropna().empty:
        # No function's TABLE_NAME was read, so a missing table may only be the wrong --table or --region:
        # "the handler writes to a table that does not exist" would be a claim without evidence.
        return [
            Finding(
                "table-structure",
                question,
                "fail",
                "evidence-unread",
                f"{said.rstrip('.')}; no $connect function's TABLE_NAME was read, so which table the "
                "handler writes is unknown",
                "Give the kit the API (--websocket-url or --api-id) so it reads the function's TABLE_NAME, "
                "or check --table and --region against the function's configuration.",
            )
        ]
    cause = "table-not-found" if not missing.empty else "table-schema-mismatch"
    return [Finding("table-structure", question, "fail", cause, said, first_text(errors, "next_step"))]


# An error code of the kit's own direct write → the cause it points to. The execution role plays no part.
_DIRECT_WRITE_CAUSES: dict[str, str] = {
    "ResourceNotFoundException": "table-not-found",
    "ValidationException": "table-schema-mismatch",
}


def _direct_write_cause(code: str, step: str) -> str:
    kind = failure_kind(code)
    if kind == "unreachable":
        return "target-unreachable"  # no answer: nothing is known about the table
    if code == "ResourceNotFoundException" and step == "query":
        return (
            "table-schema-mismatch"  # the put found the table, so what is missing is the index (moto says so)
        )
    if code in _DIRECT_WRITE_CAUSES:
        return _DIRECT_WRITE_CAUSES[code]
    if "AccessDenied" in code or code.startswith("KMS"):
        return "table-write-denied"
    # An error no cause explains is never an all-clear: a put that did not land is an item not stored; a
    # read-back that failed (or credentials refused) leaves the test's evidence unread.
    if step == "put" and kind != "denied":
        return "not-stored"
    return "evidence-unread"


def check_direct_write(e: Evidence) -> list[Finding]:
    """Storage tested in isolation: the kit's own PutItem, GetItem, Query on the index and DeleteItem."""
    check = "direct-write"
    question = "Can the kit itself put, read back, query (workspaceIndex) and delete an item in the table?"
    if e.direct_write is None or e.direct_write.empty:
        return skip(check, question, e.problems.get("direct-write", "the storage test was not run"))
    steps = e.direct_write
    ran = steps[steps["ok"].notna()]
    if ran.empty:
        return skip(check, question, first_text(steps, "detail").removeprefix("skipped: "))
    failed = ran[ran["ok"].eq(False).fillna(False).astype(bool)]
    blocking = failed[failed["step"] != "delete"]
    with_code = blocking[blocking["error_code"].notna()]
    findings: list[Finding] = []
    if not with_code.empty:
        row = with_code.iloc[0]
        cause_id = _direct_write_cause(str(row["error_code"]), str(row["step"]))
        detail = str(row["detail"])
        if cause_id == "table-write-denied":
            detail += (
                " (with the kit's own credentials: the table's resource policy or KMS key, or the kit's "
                "identity, refuses it; the execution role plays no part here)"
            )
        findings.append(Finding(check, question, "fail", cause_id, detail, causes.cause(cause_id).next_step))
    elif not blocking.empty:
        row = blocking.iloc[0]
        findings.append(
            Finding(
                check,
                question,
                "warn",
                None,
                str(row["detail"]),
                "Check the table's and the index's status (describe-table: TableStatus, IndexStatus, "
                "Backfilling) and run again; an index still being built returns nothing yet.",
            )
        )
    leftover = failed[failed["step"] == "delete"]
    if not leftover.empty:
        findings.append(
            Finding(
                check,
                question,
                "warn",
                None,
                str(leftover.iloc[0]["detail"]),
                f"Delete the item {first_text(leftover, 'connection_id')} by hand; it is the kit's own "
                f"({direct_write.ITEM_PREFIX}…).",
            )
        )
    if findings:
        return findings
    return [Finding(check, question, "pass", None, "; ".join(ran["detail"].astype(str)))]


def check_items_and_index(e: Evidence) -> list[Finding]:
    question = "Are stored connections visible in workspaceIndex (workspaceId present and a string)?"
    if e.coverage is None:
        return skip(
            "index-coverage",
            question,
            e.problems.get("index", e.problems.get("items", "the table could not be scanned")),
        )
    if e.coverage.empty:
        return [Finding("index-coverage", question, "skip", None, "the table holds no item", "")]
    missing = e.coverage[~e.coverage["in_index"].fillna(False).astype(bool)]
    absent = missing[missing["why_not"].isin(["attribute-absent", "empty-string", "wrong-type"])]
    if not absent.empty:
        return [
            Finding(
                "index-coverage",
                question,
                "fail",
                "workspace-id-missing",
                f"{len(absent)} of {len(e.coverage)} items are not in the index: "
                f"{absent['why_not'].value_counts().to_dict()}; e.g. {absent.iloc[0]['connection_id']}",
                causes.cause("workspace-id-missing").next_step,
            )
        ]
    return [Finding("index-coverage", question, "pass", None, f"{len(e.coverage)} items, all in the index")]


def _kit_items(items: pd.DataFrame) -> pd.Series:
    """True for the items the kit itself wrote (the probe's workspace, the storage test's item)."""
    own = pd.Series(False, index=items.index)
    for column in ("connectionId", "workspaceId"):
        if column in items.columns:
            values = items[column].astype("string")
            own |= values.str.startswith(direct_write.ITEM_PREFIX).fillna(False).astype(bool)
    return own


def check_connection_id_shape(e: Evidence) -> list[Finding]:
    """Local-emulator artefacts: stored ids API Gateway never issued, which @connections rejects."""
    check = "connection-id-shape"
    question = "Do the stored connectionIds have the shape API Gateway issues?"
    if e.items is None:
        return skip(check, question, e.problems.get("items", "the table could not be scanned"))
    if e.items.empty or "connectionId" not in e.items.columns:
        return skip(check, question, "the table holds no item")
    theirs = e.items[~_kit_items(e.items)]
    ids = theirs["connectionId"].astype("string").dropna()
    if ids.empty:
        return skip(check, question, "the table holds only the kit's own items")
    odd = ids[~ids.str.fullmatch(API_GATEWAY_CONNECTION_ID).fillna(False).astype(bool)]
    if odd.empty:
        return [
            Finding(check, question, "pass", None, f"{len(ids)} connectionIds, all of API Gateway's shape")
        ]
    examples = ", ".join(repr(str(value)) for value in odd.head(3))
    return [
        Finding(
            check,
            question,
            "warn",
            "emulator-connection-ids",
            f"{len(odd)} of {len(ids)} stored connectionIds are not of API Gateway's shape (15 of "
            f"[A-Za-z0-9_-], then '='): {examples}; @connections answers BadRequestException "
            "(Invalid connectionId) for them",
            "These items come from a local emulator (serverless-offline uses UUIDs) or from a writer other "
            "than the $connect handler behind API Gateway: delete them, and give local development a table "
            "of its own.",
        )
    ]


def check_email_token(e: Evidence) -> list[Finding]:
    question = "Is the auth token something other than the user's e-mail?"
    if e.items is None and e.functions.empty:
        why = (
            e.problems.get("items") or e.problems.get("functions") or "neither items nor functions were read"
        )
        return skip("email-as-token", question, why)
    emails = 0
    if e.items is not None and "userId" in e.items:
        emails = int(e.items["userId"].astype("string").str.match(EMAIL_LIKE).fillna(False).sum())
    auth_modes = (
        e.functions["environment"]
        .dropna()
        .astype(str)
        .str.contains('"AUTH_MODE": "email"', regex=False)
        .sum()
        if not e.functions.empty
        else 0
    )
    if emails or auth_modes:
        return [
            Finding(
                "email-as-token",
                question,
                "warn",
                "email-as-token",
                f"{emails} stored userId values are e-mail addresses; AUTH_MODE=email on {auth_modes} "
                "function(s)",
                "Use a signed, expiring token (AUTH_MODE=signed) instead of the e-mail in the URL.",
            )
        ]
    return [Finding("email-as-token", question, "pass", None, "no e-mail-shaped tokens seen")]
