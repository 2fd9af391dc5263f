"""A fix proven before anyone applies it: on the lab, or on a mirror of a real account built for the proof.

    prove(target, diagnosis, evidence, plan)   -> Proof: where it was tried, the verdict, or why it was not

- A lab target (the lab, or a mirror already running): the fix is applied, the diagnosis runs again from then
  on with a probe, and the fix is taken back, so the lab is left as it was.
- A real account: the account is read read-only (:func:`kit.mirror.read_account`), a mirror is built in a lab
  of this process, the mirror's own diagnosis must name the account's cause (else the mirror does not
  reproduce the fault and nothing is claimed), then the fix is verified there. The account is never written.

Whatever stops the proof (a resource the mirror cannot read, no Java for the lab, a fix with nothing to
apply) is said as the reason it was not verified, never as a verdict.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from kit import fix, fix_apply
from kit.diagnose import ranking
from kit.diagnose.findings import Diagnosis, Evidence
from kit.diagnose.reading import read_evidence
from kit.errors import KitError
from kit.probe_core import ProbePlan
from kit.target import Target

PROOF_CLIENTS = 2  # the diagnosis after a fix needs connections made after it


@dataclass(frozen=True)
class Proof:
    """Where the fix was tried and what came of it; ``verdict`` is None when not verified (``why_not``)."""

    where: str
    verdict: fix_apply.Verdict | None = None
    why_not: str = ""
    mirror: dict[str, object] | None = None  # the manifest's source and counts, when a mirror was built

    @property
    def verified(self) -> bool:
        return self.verdict is not None

    def as_dict(self) -> dict[str, object]:
        """For the diagnosis JSON (``kit.notebook.write_summary``) and the report's summary card."""
        return {
            "where": self.where,
            "verified": self.verified,
            "fixed": None if self.verdict is None else self.verdict.fixed,
            "verdict": "" if self.verdict is None else self.verdict.text,
            "why_not": self.why_not,
            "not_reproduced": list((self.mirror or {}).get("not_reproduced") or []),  # type: ignore[call-overload]
        }


def _plan(plan: ProbePlan | None) -> ProbePlan:
    if plan is None:
        return ProbePlan(clients=PROOF_CLIENTS)
    return replace(plan, clients=max(plan.clients, PROOF_CLIENTS))


def _reader(target: Target, plan: ProbePlan) -> Callable[[Any, Any], Evidence]:
    def read(since: Any, client: Any) -> Evidence:
        return read_evidence(target, since=since, probe_plan=replace(plan, **dict(client)))

    return read


def prove(target: Target, diagnosis: Diagnosis, evidence: Evidence, plan: ProbePlan | None = None) -> Proof:
    """Verify the fix for ``diagnosis`` without changing ``target`` for good (see the module docstring)."""
    planned = fix.plan(diagnosis, evidence)
    probe = _plan(plan)
    where = "on the lab" if target.kind == "lab" else f"on a mirror of {target.label}"
    if not planned.applicable:
        return Proof(where, why_not=f"there is nothing to apply for {planned.cause}: {planned.summary}")
    try:
        if target.kind == "lab":
            applied, read = fix_apply.Applied(), _reader(target, probe)
            try:
                verdict, _ = fix_apply.verify(target, planned, read, ranking.diagnose, into=applied)
            finally:  # what was applied is taken back even when a later change or the diagnosis failed
                fix_apply.undo(target, applied)
            return Proof(f"{where} (applied, diagnosed again, then taken back)", verdict)
        return _prove_on_mirror(target, diagnosis, probe, where)
    except KitError as exc:
        return Proof(where, why_not=str(exc))


def _prove_on_mirror(target: Target, diagnosis: Diagnosis, probe: ProbePlan, where: str) -> Proof:
    from kit import mirror
    from kit.lab.lab import Lab

    copy = mirror.read_account(target.as_read_only(), salt=secrets.token_hex(8))
    with Lab(mirror=copy, write_lab_file=False) as lab:
        manifest = lab.manifest.as_dict() if lab.manifest is not None else {}
        summary = {
            "source": manifest.get("source", {}),
            "copied": len(manifest.get("copied", [])),
            "changed": len(manifest.get("changed", [])),
            "not_reproduced": [gap["what"] for gap in manifest.get("not_reproduced", [])],
        }
        mirrored = read_evidence(lab.target(), probe_plan=probe)
        before = ranking.diagnose(mirrored)
        cause, there = str(diagnosis.root_cause["id"]), str(before.root_cause["id"])
        if there != cause:
            return Proof(
                where,
                why_not=f"the mirror's own diagnosis names {there}, not {cause}: it does not reproduce the "
                "fault (see what it could not reproduce), so the fix was not verified",
                mirror=summary,
            )
        planned = fix.plan(before, mirrored)
        verdict, _ = fix_apply.verify(lab.target(), planned, _reader(lab.target(), probe), ranking.diagnose)
    return Proof(where, verdict, mirror=summary)
