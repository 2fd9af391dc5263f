"""The verdict: every check run over the evidence, the failing findings ranked into one root cause.

``CHECKS`` is the ordered list of the checks (each pure, in its subject's module); ``run_checks`` runs them,
adds a finding per section that could not be read and, when nothing failed, the ``all-clear`` finding, which
fails (``evidence-missing``) unless what an all-clear stands on was seen (``ALL_CLEAR_NEEDS``); ``rank``
picks the root cause among the failing
findings by :mod:`kit.diagnose.causes` rank. The order of ``CHECKS`` is the order of the findings, and of
the root cause's evidence when several findings name it. ``diagnose`` is both; ``summary_text`` and
``to_json`` say the result. Pure.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pandas as pd

from kit import frames
from kit.diagnose import (
    authorizer_checks,
    causes,
    config_checks,
    counts,
    delivery_checks,
    handler_checks,
    permission_checks,
    symptom_checks,
    table_checks,
)
from kit.diagnose.findings import FINDING_COLUMNS, Check, Diagnosis, Evidence, Finding

log = logging.getLogger("kit.diagnose.ranking")

CHECKS: tuple[Check, ...] = (
    config_checks.check_deployed_configuration,
    config_checks.check_connect_route,
    permission_checks.check_invoke_permission,
    permission_checks.check_connect_iam,
    authorizer_checks.check_authorizer,
    config_checks.check_connection_id_mapping,
    config_checks.check_throttling,
    table_checks.check_table,
    table_checks.check_direct_write,
    config_checks.check_function_table,
    permission_checks.check_put_permission,
    permission_checks.check_index_permission,
    permission_checks.check_other_permissions,
    handler_checks.check_handshakes,
    authorizer_checks.check_authorizer_context,
    symptom_checks.check_handshake_refusals,
    handler_checks.check_swallowed_errors,
    handler_checks.check_write_on_connect,
    handler_checks.check_write_awaited,
    handler_checks.check_app_logs,
    table_checks.check_items_and_index,
    table_checks.check_connection_id_shape,
    symptom_checks.check_probe_parameters,
    symptom_checks.check_delivery,
    delivery_checks.check_message_routing,
    delivery_checks.check_manage_connections,
    delivery_checks.check_management_endpoint,
    handler_checks.check_early_disconnect,
    handler_checks.check_connect_invocations,
    table_checks.check_email_token,
    config_checks.check_logging_config,
)


# What an all-clear ("connections are stored and reachable") stands on: each need is met by one passing check.
# (what, the checks that meet it, how to get it when none passed)
ALL_CLEAR_NEEDS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "the API's $connect route",
        ("connect-route",),
        "give the WebSocket URL (--websocket-url) or --api-id, in the API's region",
    ),
    ("the connections table", ("table-structure",), "name the table (--table) and its region (--region)"),
    (
        "a $connect seen answering",
        ("handler-crash", "probe"),
        "widen the log window to hold connections (--minutes) or run the probe (a real account: "
        "--allow-aws-probe)",
    ),
    (
        "the execution role's PutItem, or a connection seen stored",
        ("iam-put", "probe"),
        "let the kit read the role (iam:Get*/List*) or run the probe",
    ),
)


def all_clear_findings(findings: pd.DataFrame) -> list[Finding]:
    """The ``all-clear`` finding: whether "nothing failed" is backed by what it stands on (pure).

    Nothing when another finding fails (the verdict is that one). Otherwise a pass naming what backs it, or a
    fail (``evidence-missing``) naming each need no check met and why those checks did not pass.
    """
    question = "Is the all-clear backed by evidence (route, table, a $connect answering, PutItem)?"
    if findings["verdict"].eq("fail").any():
        return []
    verdicts = {str(row["check"]): row for _, row in findings.iterrows()}
    missing: list[str] = []
    steps: list[str] = []
    for need, checks, how in ALL_CLEAR_NEEDS:
        if any(str(verdicts[c]["verdict"]) == "pass" for c in checks if c in verdicts):
            continue
        why = "; ".join(
            f"{c}: {verdicts[c]['verdict']}, {verdicts[c]['evidence']}" if c in verdicts else f"{c}: not run"
            for c in checks
        )
        missing.append(f"{need} ({why})")
        steps.append(how)
    if not missing:
        return [Finding("all-clear", question, "pass", None, "route, table, $connect and PutItem all seen")]
    return [
        Finding(
            "all-clear",
            question,
            "fail",
            "evidence-missing",
            "not read: " + "; ".join(missing),
            "To back an all-clear: " + "; ".join(dict.fromkeys(steps)) + ".",
        )
    ]


def run_checks(evidence: Evidence, checks: tuple[Check, ...] = CHECKS) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for check in checks:
        try:
            found = check(evidence)
        except Exception as exc:  # a check that breaks is a finding too, never a lost diagnosis
            # What it would have looked at was not judged, so it can never read as an all-clear.
            log.exception("check %s failed", check.__name__)
            found = [
                Finding(
                    check.__name__.removeprefix("check_"),
                    "",
                    "fail",
                    "evidence-unread",
                    f"the check itself failed: {exc}",
                    "This is a defect of the kit: report it with the log line 'check ... failed' (its "
                    "traceback is in the kit's log); the other findings still stand.",
                )
            ]
        rows.extend(f.__dict__ for f in found)
    rows.extend(f.__dict__ for f in symptom_checks.read_findings(evidence))
    frame = pd.DataFrame(rows, columns=list(FINDING_COLUMNS)) if rows else frames.empty(FINDING_COLUMNS)
    frame = frame.astype(FINDING_COLUMNS)
    gate = all_clear_findings(frame) if checks is CHECKS else []
    if gate:
        frame = pd.concat(
            [frame, pd.DataFrame([f.__dict__ for f in gate], columns=list(FINDING_COLUMNS))],
            ignore_index=True,
        ).astype(FINDING_COLUMNS)
    return frame


def rank(findings: pd.DataFrame) -> dict[str, Any]:
    """The root cause: the failing finding whose cause ranks first; ``none`` when nothing fails.

    What the probe saw fail and evidence that was not read are failing findings too
    (:mod:`kit.diagnose.symptom_checks`), so ``none`` means every check that could fail looked and found
    nothing.
    """
    failing = findings[(findings["verdict"] == "fail") & findings["cause"].isin(list(causes.BY_ID))]
    if failing.empty:
        chosen = causes.cause("none")
        return {"id": chosen.id, "summary": chosen.summary, "evidence": [], "next_step": chosen.next_step}
    ordered = failing.assign(_rank=failing["cause"].map(lambda c: causes.cause(str(c)).rank)).sort_values(
        "_rank", kind="stable"
    )
    top = str(ordered.iloc[0]["cause"])
    chosen = causes.cause(top)
    evidence = ordered[ordered["cause"] == top]["evidence"].astype(str).tolist()
    return {"id": chosen.id, "summary": chosen.summary, "evidence": evidence, "next_step": chosen.next_step}


def diagnose(evidence: Evidence) -> Diagnosis:
    findings = run_checks(evidence)
    return Diagnosis(rank(findings), findings, counts.counts(evidence))


def summary_text(diagnosis: Diagnosis) -> str:
    """A readable terminal summary."""
    cause = diagnosis.root_cause
    lines = [f"Root cause: {cause['id']} — {cause['summary']}"]
    for item in cause["evidence"]:
        lines.append(f"  evidence: {item}")
    lines.append(f"  next step: {cause['next_step']}")
    lines.append("")
    for _, row in diagnosis.findings.iterrows():
        tag = {"pass": "ok  ", "fail": "FAIL", "warn": "warn", "skip": "skip"}.get(str(row["verdict"]), "?")
        suffix = f" [{row['cause']}]" if pd.notna(row["cause"]) else ""
        lines.append(f"{tag} {row['check']}{suffix}: {row['evidence']}")
    return "\n".join(lines)


def to_json(diagnosis: Diagnosis) -> str:
    return json.dumps(diagnosis.as_dict(), indent=2, default=str)
