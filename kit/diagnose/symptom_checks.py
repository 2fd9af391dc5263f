"""What was seen to fail, named even when no check knows why: refused handshakes, probe connections never
stored, messages not delivered, and evidence the kit could not read.

A check that knows a cause (a denied PutItem, a missing route) ranks first; these findings are what stays
when none does, so that what the probe or the logs saw is never overruled by an all-clear
(:mod:`kit.diagnose.causes`: the ``symptom`` and ``inconclusive`` kinds). Each quotes what was seen and,
where the logs hold it, API Gateway's own words for the same requests, the next place to look.

    check_handshake_refusals   ``handshake``: handshakes the probe saw refused, or 5xx ``$connect`` answers
                               in the logs (handshake-refused); a WebSocket URL that did not answer
                               (target-unreachable)
    check_probe_parameters     ``probe``: probe connections never stored (not-stored), or stored but not in
                               the index (workspace-id-missing)
    check_delivery             ``delivery``: a probe client's frame answered with an error frame, or a
                               broadcast that did not reach another client (not-delivered)
    read_findings              ``read-<section>``: one per section :func:`kit.diagnose.reading.read_evidence`
                               could not read (target-unreachable, target-not-found or evidence-unread, by
                               :func:`kit.errors.failure_kind`)

Pure: each looks at the evidence frames only, and none knows which target or lab scenario it reads.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from kit import frames, logparse
from kit.diagnose import causes
from kit.diagnose.findings import GATEWAY_SOURCES, Evidence, Finding, first_text, skip
from kit.errors import UNREACHABLE_NEXT_STEP

HANDLER_CRASH_STATUS = 502  # the handler-crash check's own: a crash is a cause, not a bare symptom
_QUOTED = 2  # distinct gateway errors quoted per finding


def _failed(frame: pd.DataFrame) -> pd.Series:
    return frame["ok"].eq(False).fillna(False).astype(bool)


def gateway_errors(
    log_lines: pd.DataFrame | None, connection_ids: Iterable[str], event_type: str
) -> list[str]:
    """API Gateway's execution-log errors for the ``event_type`` requests of these connections, each once.

    A request's lines share its request id, and only some of them name the connection: the requests are
    found from the lines that do, then their ERROR lines that name no client, which are the ones that say why
    (``configuration error: Invalid permissions on Lambda function``, ``no route matches ...``); the line
    that names the client only repeats the status it got.
    """
    ids = {str(value) for value in connection_ids}
    if log_lines is None or log_lines.empty or not ids:
        return []
    gateway = log_lines[log_lines["source"].isin(GATEWAY_SOURCES).fillna(False).astype(bool)]
    ours = gateway["connection_id"].isin(ids).fillna(False) & gateway["event_type"].eq(event_type).fillna(
        False
    )
    requests = set(gateway.loc[ours.astype(bool), "apigw_request_id"].dropna().astype(str))
    errors = gateway[
        gateway["apigw_request_id"].isin(requests).fillna(False).astype(bool)
        & gateway["level"].eq("ERROR").fillna(False).astype(bool)
        & gateway["connection_id"].isna()
    ]
    return list(dict.fromkeys(errors["error_message"].dropna().astype(str)))[:_QUOTED]


def _statuses(values: pd.Series) -> str:
    counts = values.astype(int).value_counts().sort_index()
    return ", ".join(f"HTTP {status} ×{count}" for status, count in counts.items())


def _probe_steps(e: Evidence) -> pd.DataFrame:
    """The probe's rows; with no probe, none (with the columns the checks read)."""
    if e.probe is not None:
        return e.probe
    return frames.empty(
        {
            "client": "int64",
            "connection_id": "string",
            "step": "string",
            "ok": "boolean",
            "http_status": "Int64",
            "detail": "string",
        }
    )


def check_handshake_refusals(e: Evidence) -> list[Finding]:
    """Handshakes refused (the probe's, or 5xx ``$connect`` answers in the logs); probes left unanswered."""
    check, question = "handshake", "Are WebSocket handshakes accepted (101)?"
    probe = _probe_steps(e)
    connects = probe[probe["step"] == "connect"]
    seen = e.lifecycle if e.lifecycle is not None else frames.empty(logparse.LIFECYCLE_COLUMNS)
    if connects.empty and seen.empty:
        why = (
            e.problems.get("probe") or e.problems.get("logs") or "no probe ran and no $connect is in the logs"
        )
        return skip(check, question, why)
    failed = connects[_failed(connects)]
    refused, unanswered = failed[failed["http_status"].notna()], failed[failed["http_status"].isna()]
    status = seen["connect_status"]
    rejected = seen[(status >= 400).fillna(False).astype(bool)]
    # A 4xx in the logs may be the handler refusing a bad client, as designed; a 5xx never is.
    server = rejected[
        (rejected["connect_status"] >= 500) & (rejected["connect_status"] != HANDLER_CRASH_STATUS)
    ]
    findings: list[Finding] = []
    if not unanswered.empty:
        detail = (
            f"{len(unanswered)} of {len(connects)} probe connections got no answer to the handshake: "
            f"{first_text(unanswered, 'detail')}"
        )
        next_step = causes.cause("target-unreachable").next_step
        findings.append(Finding(check, question, "fail", "target-unreachable", detail, next_step))
    if not refused.empty or not server.empty:
        parts = []
        if not refused.empty:
            parts.append(
                f"{len(refused)} of {len(connects)} probe handshakes refused "
                f"({_statuses(refused['http_status'])}): {first_text(refused, 'detail')}"
            )
        if not server.empty:
            parts.append(
                f"{len(server)} $connect requests in the logs answered {_statuses(server['connect_status'])}"
            )
        if not rejected.empty:
            parts.append(f"the logs say: {first_text(rejected, 'why')}")
            quoted = gateway_errors(e.log_lines, rejected["connection_id"].dropna().tolist(), "CONNECT")
            parts += [f"API Gateway's execution log: {error}" for error in quoted]
        next_step = causes.cause("handshake-refused").next_step
        findings.append(Finding(check, question, "fail", "handshake-refused", "; ".join(parts), next_step))
    if findings:
        return findings
    logged = sorted({int(s) for s in status.dropna().tolist()})
    shown = [
        f"{len(connects)} probe handshakes accepted" if len(connects) else "",
        f"statuses in the logs: {logged}" if logged else "",
    ]
    return [Finding(check, question, "pass", None, "; ".join(part for part in shown if part))]


def check_probe_parameters(e: Evidence) -> list[Finding]:
    """What the probe saw for the query-string parameters and the index (the seed's "parameter passing")."""
    question = "Do probe connections get stored and become visible in the index?"
    if e.probe is None or e.probe.empty:
        return skip("probe", question, e.problems.get("probe", "no probe was run (read-only)"))
    # Only the rows that ran count: a step skipped (its connection never opened) was not looked for.
    stored = e.probe[(e.probe["step"] == "item-stored") & e.probe["ok"].notna()]
    visible = e.probe[e.probe["step"] == "index-visible"]
    not_stored = stored[stored["ok"].eq(False).fillna(False)]
    not_visible = visible[visible["ok"].eq(False).fillna(False)]
    if stored.empty:
        return skip("probe", question, "no probe connection opened, so no item was looked for")
    if not not_stored.empty:
        return [
            Finding(
                "probe",
                question,
                "fail",
                "not-stored",
                f"{len(not_stored)} of {len(stored)} probe connections were never stored: "
                f"{first_text(not_stored, 'detail')}",
                causes.cause("not-stored").next_step,
            )
        ]
    if not not_visible.empty:
        return [
            Finding(
                "probe",
                question,
                "fail",
                "workspace-id-missing",
                f"stored but not in workspaceIndex: {first_text(not_visible, 'detail')}",
                causes.cause("workspace-id-missing").next_step,
            )
        ]
    return [Finding("probe", question, "pass", None, f"{len(stored)} probe connections stored and visible")]


def check_delivery(e: Evidence) -> list[Finding]:
    """The probe's ``send-<action>`` and ``deliver-<action>`` steps: is a message delivered live?"""
    check = "delivery"
    question = "Does a message one client sends reach the workspace's other clients?"
    if e.probe is None or e.probe.empty:
        return skip(check, question, e.problems.get("probe", "no probe was run"))
    steps = e.probe["step"].astype(str)
    exchange = e.probe[
        steps.str.startswith("send-") & (steps != "send-oversize") | steps.str.startswith("deliver-")
    ]
    ran = exchange[exchange["ok"].notna()]
    if ran.empty:
        reason = first_text(exchange, "detail").removeprefix("skipped: ") or "the probe sent no message"
        return skip(check, question, f"no message was exchanged: {reason}")
    missed = ran[_failed(ran)]
    delivered = ran[ran["step"].astype(str).str.startswith("deliver-")]
    if missed.empty:
        shown = (
            f"{len(delivered)} broadcasts reached every other client"
            if len(delivered)
            else f"{len(ran)} frames sent without an error frame; no other client was open to receive them"
        )
        return [Finding(check, question, "pass", None, shown)]
    parts = [
        f"{row['step']} (client {row['client']}): {row['detail']}"
        for _, row in missed.head(_QUOTED).iterrows()
    ]
    if len(missed) > _QUOTED:
        parts.append(f"and {len(missed) - _QUOTED} more failed steps")
    quoted = gateway_errors(e.log_lines, missed["connection_id"].dropna().tolist(), "MESSAGE")
    parts += [f"API Gateway's execution log: {error}" for error in quoted]
    return [
        Finding(
            check,
            question,
            "fail",
            "not-delivered",
            "; ".join(parts),
            causes.cause("not-delivered").next_step,
        )
    ]


_READ_NEXT_STEPS = {
    "unreachable": UNREACHABLE_NEXT_STEP[0].upper() + UNREACHABLE_NEXT_STEP[1:] + ".",
    "denied": "Grant the kit's identity the read permission the message names (reading is all it needs), "
    "then run again.",
    "failed": "Fix what the message names, then run again.",
    "missing": causes.cause("target-not-found").next_step,
}
_READ_CAUSES = {"unreachable": "target-unreachable", "missing": "target-not-found"}


def _table_state(e: Evidence) -> str:
    """What the evidence says of the table, for a target that was not found (pure)."""
    if "tables" in e.problems:
        return f"whether table {e.table} exists in {e.region} was not read"
    if e.table in e.tables.get(e.region, []):
        return f"table {e.table} does exist in {e.region}"
    others = e.tables.get(e.region, [])
    there = f" (tables there: {', '.join(others[:5])})" if others else " (no table at all there)"
    return f"and there is no table {e.table} in {e.region} either{there}"


def read_findings(e: Evidence) -> list[Finding]:
    """One failing finding per section that could not be read: nothing unread may pass for all-clear."""
    findings = []
    for section, problem in e.problems.items():
        kind = e.problem_kinds.get(section, "failed")
        said = f"{problem.rstrip('.')}; {_table_state(e)}." if kind == "missing" else problem
        findings.append(
            Finding(
                f"read-{section}",
                f"Could the kit read the {section}?",
                "fail",
                _READ_CAUSES.get(kind, "evidence-unread"),
                said,
                _READ_NEXT_STEPS.get(kind, _READ_NEXT_STEPS["failed"]),
            )
        )
    return findings
