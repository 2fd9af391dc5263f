"""What the notebooks need beyond the kit's evidence functions, so a notebook holds no ``def`` or ``class``.

The notebooks under ``notebooks/`` are thin: a parameters cell, calls into the kit, tables, plots and prose.
This module holds their targets and their text:

    connect_function(target)             the Lambda function the ``$connect`` route invokes
    mask_text(text) / hide_emails(frame) text and frames as a report shows them: e-mail addresses and
                                         secrets masked (by :mod:`kit.redact`, through the kernel's redactor)
    root_cause_markdown / next_steps_markdown / write_summary     the diagnosis, for a reader and a machine
    log_errors(parsed)                   the log lines that report a failure

Their figures are in :mod:`kit.plots`; the ``$connect`` handlers run side by side in
:mod:`kit.dynamo.exercise`.

What this module must not do: write anywhere except through ``write_summary`` (the path it is given); read
files other than the lab file and the env file the target resolution reads; or let a secret reach a frame or
a message (e-mail addresses, which the seed uses as tokens, can be masked with ``hide_emails``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pandas as pd

from kit import config, fix_proof, frames, probe_core, redact_display
from kit.diagnose import counts
from kit.diagnose.findings import Diagnosis, Evidence
from kit.errors import ConfigurationError
from kit.logparse import LOG_COLUMNS
from kit.markup import markdown_code, markdown_text
from kit.target import Target

# --------------------------------------------------------------------------------------------------
# Targets


def connect_function(target: Target) -> str:
    """The Lambda function the API's ``$connect`` route invokes (else the API's first function)."""
    answers = config.fetch_api(target)
    routes = config.routes_frame(answers.routes, answers.integrations, answers.authorizers)
    connect = routes[routes["route_key"] == "$connect"]["function_name"].dropna().tolist()
    names = [str(name) for name in connect] or config.functions_for_api(target, answers)
    if not names:
        raise ConfigurationError(
            f"No route of API {target.api_id} in {target.region} invokes a Lambda function; name the "
            "$connect function with the function_name parameter."
        )
    return names[0]


# --------------------------------------------------------------------------------------------------
# Presenting the diagnosis


def mask_text(text: str) -> str:
    """``text`` as a report shows it: ``ada@example.com`` → ``a***@***#3f9a1c`` in every spelling (``%40``,
    ``\\u0040``, ...), and secrets masked (:func:`kit.redact_display.kernel_redactor`)."""
    return redact_display.kernel_redactor().redact_text(text)


def hide_emails(frame: pd.DataFrame | None, enabled: bool = True) -> pd.DataFrame:
    """A copy of ``frame`` as a report shows it: e-mail addresses (the seed's tokens) and secrets masked, by
    shape in every text cell and by structure (a ``password`` column, a name/value pair naming a secret).

    ``enabled`` False returns the frame unchanged, so a notebook passes its ``mask_emails`` parameter through.
    None gives an empty frame. Column dtypes (but a masked column's) and ``attrs`` are kept. For display:
    the text of a long frame is redacted in the rows a display shows (:func:`kit.redact_display.shown_rows`),
    which keeps a frame of a million log lines as quick to show as before.
    """
    if frame is None:
        return pd.DataFrame()
    if not enabled or frame.empty:
        return frame
    masked: pd.DataFrame = redact_display.kernel_redactor().redact_frame(
        frame, rows=redact_display.shown_rows()
    )
    masked.attrs = dict(frame.attrs)
    return masked


def _shown(hide: bool) -> Callable[[object], str]:
    """How a notebook shows a value in Markdown: e-mail addresses masked (unless ``hide`` is False), then
    escaped, because summaries, evidence and next steps quote the system under investigation."""
    if hide:
        return lambda value: markdown_text(mask_text(str(value)))
    # Secrets are masked before escaping either way: escaped first, a secret with Markdown's characters
    # ($, *, (, ...) would be spelled otherwise in the notebook and slip past the report's redactor.
    keeping = redact_display.kernel_redactor(keep_emails=True)
    return lambda value: markdown_text(keeping.redact_text(str(value)))


def root_cause_markdown(diagnosis: Diagnosis, *, hide: bool = True) -> str:
    """The ranked root cause as Markdown: id, summary, the evidence that decided it, the next step.

    Every piece is text, never markup: a connection id ``<img src=x onerror=…>`` in the evidence shows as
    those characters.
    """
    cause = diagnosis.root_cause
    shown = _shown(hide)
    if cause["id"] == "none":
        return (
            f"### No root cause found\n\n{shown(cause['summary'])}\n\n"
            f"**Next step:** {shown(cause['next_step'])}"
        )
    evidence = "\n".join(f"- {shown(item)}" for item in cause["evidence"]) or "- (none recorded)"
    return (
        f"### Root cause: {markdown_code(cause['id'])}\n\n{shown(cause['summary'])}\n\n"
        f"**Evidence**\n\n{evidence}\n\n**Next step:** {shown(cause['next_step'])}"
    )


def next_steps_markdown(diagnosis: Diagnosis, *, hide: bool = True) -> str:
    """Every distinct next step of the failing, then the warning, findings, as a Markdown list (escaped as
    :func:`root_cause_markdown`)."""
    shown = _shown(hide)
    findings = diagnosis.findings
    lines: list[str] = []
    seen: set[str] = set()
    for verdict in ("fail", "warn"):
        part = findings[(findings["verdict"] == verdict) & findings["next_step"].fillna("").ne("")]
        for _, row in part.iterrows():
            step = str(row["next_step"])
            if step in seen:
                continue
            seen.add(step)
            lines.append(f"- **{markdown_text(row['check'])}** ({verdict}): {shown(step)}")
    if not lines:
        return "Nothing to do: no check failed or warned."
    return "\n".join(lines)


NOT_ASKED_TO_VERIFY: Final = "this run was told not to (verify_fix=False)"


def summary_document(
    diagnosis: Diagnosis, evidence: Evidence | None = None, proof: fix_proof.Proof | None = None
) -> dict[str, Any]:
    """The diagnosis as a document: ``root_cause`` and ``findings`` (as ``kit diagnose --json``), and with
    ``evidence`` the fix (``fix``, :meth:`kit.fix.Fix.as_dict`) and whether it was verified (``proof``,
    :meth:`kit.fix_proof.Proof.as_dict`; no proof means the run was told not to try)."""
    from kit import fix

    document = diagnosis.as_dict()
    if evidence is None:
        return document
    document["fix"] = fix.plan(diagnosis, evidence).as_dict()
    document["proof"] = (
        proof.as_dict()
        if proof is not None
        else {"where": "", "verified": False, "fixed": None, "verdict": "", "why_not": NOT_ASKED_TO_VERIFY}
    )
    return document


def write_summary(
    diagnosis: Diagnosis,
    path: str | os.PathLike[str],
    evidence: Evidence | None = None,
    proof: fix_proof.Proof | None = None,
) -> Path | None:
    """Write :func:`summary_document` as JSON to ``path``; empty writes nothing. Returns the file written."""
    if not str(path):
        return None
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary_document(diagnosis, evidence, proof), indent=2, default=str)
    destination.write_text(text + "\n", encoding="utf-8")
    return destination


ERROR_LINE_COLUMNS: Final[tuple[str, ...]] = (
    "ts",
    "source",
    "kind",
    "request_id",
    "connection_id",
    "error_type",
    "app_error_code",
    "message",
)


def log_errors(parsed: pd.DataFrame | None) -> pd.DataFrame:
    """One row per parsed log line (``kit.logparse.parse``) that reports a failure: an uncaught error, a
    timeout, a runtime exit, or a handler line carrying an AWS error code (the seed's swallowed
    ``AccessDeniedException``). Columns :data:`ERROR_LINE_COLUMNS`, with ``LOG_COLUMNS``' dtypes."""
    columns = list(ERROR_LINE_COLUMNS)
    if parsed is None or parsed.empty or not set(columns) <= set(parsed.columns):
        return frames.empty({name: LOG_COLUMNS[name] for name in columns})
    return parsed.loc[counts.failure_lines(parsed), columns].reset_index(drop=True)


def probe_rows(target: Target, plan: probe_core.ProbePlan, *, allow_aws: bool) -> tuple[pd.DataFrame, str]:
    """The probe's rows and a line saying what ran; on a real account without the opt-in, no rows and why
    (the notebook renders that instead of failing)."""
    from kit import probe

    refused = probe_core.missing_opt_in(target, plan, allow_aws=allow_aws)
    if refused is not None:
        return frames.empty(probe_core.PROBE_COLUMNS), f"The probe did not run. {refused}"
    rows = probe.run_probe(target, plan, allow_aws=allow_aws)
    return rows, f"workspace {plan.workspace}, {len(rows)} rows"


def fix_markdown(diagnosis: Diagnosis, evidence: Evidence, *, hide: bool = True) -> str:
    """The fix for the ranked cause (:func:`kit.fix.plan`) as Markdown, every piece escaped: each change with
    its AWS CLI commands and boto3 calls as code spans, the client and handler advice as text, and whether it
    was verified (a report never applies a fix: `kit fix --verify` does, on the lab)."""
    from kit import fix

    shown = _shown(hide)
    planned = fix.plan(diagnosis, evidence)
    lines = [f"### The fix for {markdown_code(planned.cause)}", "", shown(planned.summary), ""]
    for number, change in enumerate(planned.changes, 1):
        lines.append(f"{number}. {shown(change.summary)}")
        for label, rendered in (("AWS CLI", change.cli()), ("boto3", change.boto3())):
            lines += [f"    - {label}: {markdown_code(line)}" for line in rendered]
    lines += [
        f"- **{label}:** {shown(text)}" if label else f"- {shown(text)}"
        for label, text in planned.advice_lines()
    ]
    if planned.applicable:
        lines += [
            "",
            "**Verified:** in the next section when the report proves it (`verify_fix`); from a terminal, "
            '`kit fix --verify` on the lab or on a mirror (`kit lab up --from aws`) says "fixed" or "not '
            'enough: the next cause is …".',
        ]
    return "\n".join(lines)


def proof_markdown(proof: fix_proof.Proof | None, *, hide: bool = True) -> str:
    """Whether the fix was proven (:func:`kit.fix_proof.prove`), where, and what the mirror could not
    reproduce; None when the report was told not to try (``verify_fix=False``). Every piece escaped."""
    shown = _shown(hide)
    if proof is None:
        return (
            "**Not verified:** this run was told not to (`verify_fix=False`). `kit fix --verify` on the lab "
            "or on a mirror (`kit lab up --from aws`) proves it."
        )
    lines = []
    if proof.verdict is not None:
        label = "Fixed" if proof.verdict.fixed else "Not enough"
        said = proof.verdict.text.removeprefix("fixed: ").removeprefix("not enough: ")
        lines.append(f"**{label}** {shown(proof.where)}: {shown(said)}.")
    else:
        lines.append(f"**Not verified** {shown(proof.where)}: {shown(proof.why_not)}.")
    if proof.mirror:
        source = proof.mirror.get("source") or {}
        api = source.get("api", "") if isinstance(source, dict) else ""
        copied, changed = shown(proof.mirror.get("copied")), shown(proof.mirror.get("changed"))
        lines.append(
            f"\nThe mirror copied {copied} resources of {shown(api)} and changed {changed} for the lab (ids, "
            "endpoints, the account id; the account itself is never written)."
        )
        gaps = proof.mirror.get("not_reproduced") or []
        if isinstance(gaps, list) and gaps:
            lines.append("It could not reproduce:")
            lines += [f"- {shown(gap)}" for gap in gaps]
    return "\n".join(lines)
