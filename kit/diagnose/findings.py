"""What the checks look at and what they say: the evidence, a finding, the diagnosis.

:mod:`kit.diagnose.reading` fills the evidence, the ``*_checks`` modules turn it into findings and
:mod:`kit.diagnose.ranking` ranks them into a diagnosis. This module holds only the shapes they share and a
few helpers, so the checks can import it without importing each other or the reading. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from kit import config, frames

Verdict = str  # pass | fail | warn | skip
FINDING_COLUMNS: dict[str, str] = {
    "check": "string",
    "question": "string",
    "verdict": "string",  # pass | fail | warn | skip
    "cause": "string",  # the root-cause id a failure points to, or a contributing finding's id; NA on pass
    "evidence": "string",  # the log line, API answer or item that decides it
    "next_step": "string",
}
CONNECT = "$connect"
EMAIL_LIKE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# What API Gateway issues: 15 base64 characters and one "=" (e.g. L0SM9cOFvHcCIhw=). The shape is inferred
# from published captures, not documented, so both base64 alphabets are accepted (+/ as well as -_): a false
# warning on a real account would cost more than a missed near-miss. Emulators differ: serverless-offline
# mints UUIDs, hand-made test ids have any shape.
API_GATEWAY_CONNECTION_ID = r"[A-Za-z0-9+/_-]{15}="
GATEWAY_SOURCES = ("apigw_access", "apigw_exec")


@dataclass
class Evidence:
    """Everything the checks look at. Frames are empty (with their columns) when there was nothing."""

    target: str
    region: str
    table: str
    index: str
    routes: pd.DataFrame = field(default_factory=lambda: frames.empty(config.ROUTES_COLUMNS))
    functions: pd.DataFrame = field(default_factory=lambda: frames.empty(config.FUNCTION_COLUMNS))
    stage: pd.DataFrame = field(default_factory=lambda: frames.empty(config.STAGE_COLUMNS))
    tables: dict[str, list[str]] = field(default_factory=dict)  # region -> table names
    schema_differences: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    coverage: pd.DataFrame | None = None
    permissions: pd.DataFrame | None = None  # the $connect function's execution role's
    # the message route's function's role's, when it is another role than $connect's (None: same, or unread)
    message_permissions: pd.DataFrame | None = None
    log_report: pd.DataFrame | None = None
    log_lines: pd.DataFrame | None = None
    invocations: pd.DataFrame | None = None
    lifecycle: pd.DataFrame | None = None
    probe: pd.DataFrame | None = None
    direct_write: pd.DataFrame | None = None  # dynamo.direct_write.DIRECT_WRITE_COLUMNS; all NA: not run
    # $connect function ARN -> its resource policy (GetPolicy's JSON text); None: it has none. A function
    # whose policy could not be read is absent, and the reason is in problems["function-policy"].
    function_policies: dict[str, str | None] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # section -> why it could not be read
    # section -> kit.errors.FailureKind of its problem (unreachable | denied | missing | failed); absent:
    # failed
    problem_kinds: dict[str, str] = field(default_factory=dict)
    api_id: str = ""  # the API that was read (the target's, or the one found by listing)
    route_selection_expression: str = ""  # the API's, as GetApi shows it now; "" when not read
    # how the reading chose what it read (an API found by listing), and a probe that was not allowed to run
    notes: list[str] = field(default_factory=list)


@dataclass
class Diagnosis:
    root_cause: dict[str, Any]
    findings: pd.DataFrame
    # what the evidence counted (kit.diagnose.counts.COUNTS; None: not read), for runs that compare
    counts: dict[str, int | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        findings = self.findings.astype(object).where(self.findings.notna(), None)
        return {
            "root_cause": self.root_cause,
            "findings": findings.to_dict(orient="records"),
            "counts": dict(self.counts),
        }


@dataclass(frozen=True)
class Finding:
    check: str
    question: str
    verdict: Verdict
    cause: str | None = None
    evidence: str = ""
    next_step: str = ""


Check = Callable[[Evidence], list[Finding]]


def skip(check: str, question: str, why: str) -> list[Finding]:
    return [Finding(check, question, "skip", None, why, "")]


def skip_if_api_unread(e: Evidence, check: str, question: str) -> list[Finding] | None:
    """The skip of a check that judges the API's configuration, when the API could not be read; else None."""
    if "api" in e.problems:
        return skip(check, question, f"the API could not be read: {e.problems['api']}")
    return None


def is_true(value: Any) -> bool:
    """A pandas boolean cell as a plain bool: NA counts as False."""
    return bool(pd.notna(value) and value)


def first_text(frame: pd.DataFrame, column: str) -> str:
    values = frame[column].dropna().tolist()
    return str(values[0]) if values else ""


def handshake_statuses(e: Evidence) -> list[int]:
    """The ``$connect`` handshakes' HTTP statuses: the logs see every handshake, the probe's included; the
    probe's own view counts only without them."""
    statuses: list[int] = []
    if e.lifecycle is not None and not e.lifecycle.empty:
        statuses += [int(s) for s in e.lifecycle["connect_status"].dropna().tolist()]
    if not statuses and e.probe is not None and not e.probe.empty:
        connects = e.probe[e.probe["step"] == "connect"]
        statuses += [int(s) for s in connects["http_status"].dropna().tolist()]
    return statuses
