"""Reading the evidence: the diagnosis's only I/O. ``read_evidence`` turns a target into :class:`Evidence`.

It reads through :mod:`kit.target` the API's configuration (routes, integrations, stage, functions, the
$connect function's resource policy), the tables in each region involved, the table's structure, items and
index, the execution role's permissions and the logs since a given time, and optionally runs a probe; on a
writable target it also tests the table in isolation with an item of its own (:mod:`kit.dynamo.direct_write`).
It never raises for one missing piece: a section that could not be read is recorded in ``Evidence.problems``
(with its kind in ``Evidence.problem_kinds``), and the checks that need it say ``skip`` with the reason.

Nothing here judges the evidence (the ``*_checks`` modules do), knows whether the target is the lab or a real
account, or reads the lab's scenario.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from kit import config, iam, logparse, logs, probe_core
from kit.diagnose.findings import CONNECT, Evidence
from kit.dynamo import direct_write
from kit.dynamo.items import index_coverage, index_pages, scan_items
from kit.dynamo.table import schema_diff_frame
from kit.errors import KitError, failure_kind
from kit.target import Target

log = logging.getLogger("kit.diagnose.reading")


def _section(evidence: Evidence, name: str, read: Callable[[], Any]) -> Any:
    """``read()``'s answer; None when it raised a :class:`KitError`, which is recorded under ``name``."""
    try:
        return read()
    except KitError as exc:
        evidence.problems[name] = str(exc)
        evidence.problem_kinds[name] = failure_kind(exc)
        log.warning("could not read %s: %s", name, exc)
        return None


def read_evidence(
    target: Target,
    *,
    since: datetime | None = None,
    probe_plan: Any | None = None,
    allow_aws_probe: bool = False,
    settle_s: float | None = None,
    progress: bool = False,
    insights_threshold: int = logs.INSIGHTS_THRESHOLD_EVENTS,
) -> Evidence:
    """Read every piece of evidence from ``target``; a piece that cannot be read is recorded, not raised.

    Logs: a window of ``insights_threshold`` events or more is read server-side with Logs Insights
    (:func:`kit.logs.read_logs`), and the notes say so; a failed or timed-out query leaves the logs unread,
    with the reason, like any section that could not be read.
    """
    started = datetime.now(UTC)
    since = since or started - timedelta(hours=1)
    evidence = Evidence(target.label, target.region, target.table, target.index)

    _read_probe(evidence, target, probe_plan, allow_aws_probe=allow_aws_probe, progress=progress)

    answers = _section(evidence, "api", lambda: config.fetch_api(target))
    function_answers: list[dict[str, Any]] = []
    stage_answer: dict[str, Any] | None = None
    if answers is not None:
        evidence.routes = config.routes_frame(answers.routes, answers.integrations, answers.authorizers)
        evidence.api_id, evidence.route_selection_expression = answers.api_id, answers.selection_expression
        stage_answer = answers.chosen_stage(target.stage) or (answers.stages[0] if answers.stages else None)
        stage, why = answers.settled(target.api_id, target.stage)
        if why:  # found by listing, or a path that is no stage: the checks that name them need the real ones
            evidence.notes.append(why)
            target = target.with_api(answers.api_id, stage, why)
            stage_answer = answers.chosen_stage(stage) or stage_answer
        if stage_answer is not None:
            evidence.stage = config.stage_frame(stage_answer, _deployment(evidence, target, stage_answer))
        names = config.functions_for_api(target, answers)
        function_answers = (
            _section(evidence, "functions", lambda: config.fetch_functions(target, names)) or []
        )
        evidence.functions = config.function_frame(function_answers)

    regions = {target.region} | {
        str(region) for region in evidence.functions["table_region"].dropna().tolist() if str(region)
    }
    evidence.tables = _section(evidence, "tables", lambda: config.fetch_tables(target, sorted(regions))) or {}
    evidence.schema_differences = _section(evidence, "table", lambda: schema_diff_frame(target))
    if target.table in evidence.tables.get(target.region, []):
        evidence.items = _section(evidence, "items", lambda: scan_items(target, progress=progress))
        if evidence.items is not None:
            items = evidence.items
            evidence.coverage = _section(
                evidence, "index", lambda: index_coverage(items, index_pages(target))
            )
    # After the scan, so the test item never shows among the items; it is deleted again at once.
    if target.read_only:
        evidence.direct_write = direct_write.not_run(direct_write.read_only_reason(target))
    else:
        evidence.direct_write = _section(evidence, "direct-write", lambda: direct_write.storage_test(target))

    function_names = [str(name) for name in evidence.functions["function_name"].dropna().tolist()]
    _read_permissions(evidence, target, _connect_functions(evidence.routes) or function_names)

    api_id = answers.api_id if answers is not None else target.api_id
    groups = logs.log_groups_frame(function_answers, api_id, stage_answer)
    if not groups.empty:
        settle = settle_s if settle_s is not None else logs.settle_for(target.kind)
        fetched = _section(
            evidence,
            "logs",
            lambda: logs.read_logs(
                target.client("logs"),
                groups["log_group"].tolist(),
                start=since,
                threshold=insights_threshold,
                settle_s=settle,
                limiter=logs.limiter_for(target.kind),
                progress=progress,
            ),
        )
        if fetched is not None:
            evidence.notes += fetched.notes
            evidence.log_report = fetched.report
            parsed = logparse.parse(fetched.events)
            evidence.log_lines = parsed
            evidence.invocations = logparse.invocations(parsed)
            evidence.lifecycle = logparse.connection_lifecycle(parsed)
    return evidence


def _deployment(evidence: Evidence, target: Target, stage: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The stage's deployment by id (its CreatedDate dates what the stage serves); none when it has none.

    Read for one check only (stale-deployment, which says less without it): a deployment that cannot be read
    is a note, not a section that makes the whole diagnosis inconclusive."""
    deployment_id = str(stage.get("DeploymentId") or "")
    if not deployment_id:
        return {}
    try:
        return {deployment_id: config.fetch_deployment(target, evidence.api_id, deployment_id)}
    except KitError as exc:
        evidence.notes.append(f"The stage's deployment {deployment_id} could not be read: {exc}")
        return {}


def _read_permissions(evidence: Evidence, target: Target, connect_functions: list[str]) -> None:
    """The $connect function's role's permissions (and the message function's, when its role is another);
    then who may invoke each $connect function: its resource policy, by ARN (GetPolicy takes an ARN, whatever
    its region). A function with no policy is recorded as None; one whose policy could not be read is a
    problem ("function-policy")."""
    if connect_functions:
        evidence.permissions = _section(
            evidence, "iam", lambda: iam.role_permissions(target, connect_functions[0])
        )
        roles = dict(zip(evidence.functions["function_name"], evidence.functions["role"], strict=True))
        routes = evidence.routes
        message = routes[routes["route_id"].notna() & ~routes["route_key"].isin([CONNECT, "$disconnect"])]
        others = [
            str(name)
            for name in message["function_name"].dropna()
            if pd.notna(roles.get(name)) and roles.get(name) != roles.get(connect_functions[0])
        ]
        if others:
            evidence.message_permissions = _section(
                evidence, "message-role", lambda: iam.role_permissions(target, others[0])
            )
    connect = evidence.routes[evidence.routes["route_key"] == CONNECT]
    for function in dict.fromkeys(str(arn) for arn in connect["function_arn"].dropna().tolist()):

        def read_policy(arn: str = function) -> tuple[str | None]:
            return (config.fetch_function_policy(target, arn),)  # a 1-tuple: None is an answer here

        read = _section(evidence, "function-policy", read_policy)
        if read is not None:
            evidence.function_policies[function] = read[0]


def _connect_functions(routes: pd.DataFrame) -> list[str]:
    connect = routes[routes["route_key"] == CONNECT]
    return [str(name) for name in connect["function_name"].dropna().tolist()]


def _read_probe(
    evidence: Evidence, target: Target, plan: Any | None, *, allow_aws_probe: bool, progress: bool
) -> None:
    """The probe, when one is planned; on a real account without its opt-in, none, and a note saying so."""
    if plan is None:
        return
    not_opted_in = probe_core.missing_opt_in(target, plan, allow_aws=allow_aws_probe)
    if not_opted_in is not None:  # not a read that failed: a probe nobody allowed, so none ran
        evidence.notes.append(f"The probe did not run. {not_opted_in}")
        return
    from kit import probe

    evidence.probe = _section(
        evidence,
        "probe",
        lambda: probe.run_probe(target, plan, allow_aws=allow_aws_probe, progress=progress),
    )
