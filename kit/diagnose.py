"""Diagnosis: evidence → findings (check, question, verdict, evidence, next step) → a ranked root cause.

``gather`` reads the evidence through :mod:`kit.target` (configuration, table, IAM, logs, and optionally a
probe; on a writable target it also tests the table in isolation with an item of its own, see
:mod:`kit.dynamo.direct_write`) and never raises for one missing piece: a section that could not be read is
recorded, and the checks that need it say ``skip`` with the reason. ``run_checks`` is pure: each check looks
at the evidence frames only. ``rank`` picks the root cause among the failing checks by :mod:`kit.causes` rank.

The evidence and finding shapes live in :mod:`kit.findings`; the checks on where and when the write happens,
what the table holds and the kit's own direct write live in :mod:`kit.write_checks`. Their names are
re-exported here.

Nothing here knows whether the target is the lab or a real account, and nothing reads the lab's scenario.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from kit import causes, config, frames, iam, logparse, logs
from kit.dynamo import direct_write
from kit.dynamo.items import index_coverage, index_pages, scan_items
from kit.dynamo.table import schema_diff_frame
from kit.errors import KitError, failure_kind
from kit.findings import (
    API_GATEWAY_CONNECTION_ID,
    CONNECT,
    EMAIL_LIKE,
    FINDING_COLUMNS,
    Check,
    Diagnosis,
    Evidence,
    Finding,
    Verdict,
    first_text,
    is_true,
    skip,
)
from kit.symptom_checks import check_delivery, check_handshake_refusals, read_findings
from kit.target import Target
from kit.write_checks import (
    check_connection_id_shape,
    check_direct_write,
    check_write_awaited,
    check_write_on_connect,
)

log = logging.getLogger("kit.diagnose")

# The shapes the checks share live in kit.findings, and four checks in kit.write_checks; their names are this
# module's too.
__all__ = [
    "API_GATEWAY_CONNECTION_ID",
    "CHECKS",
    "CONNECT",
    "EMAIL_LIKE",
    "FINDING_COLUMNS",
    "Check",
    "Diagnosis",
    "Evidence",
    "Finding",
    "Verdict",
    "check_app_logs",
    "check_connect_invocations",
    "check_connect_route",
    "check_connection_id_mapping",
    "check_connection_id_shape",
    "check_delivery",
    "check_direct_write",
    "check_early_disconnect",
    "check_email_token",
    "check_function_table",
    "check_handshake_refusals",
    "check_handshakes",
    "check_index_permission",
    "check_items_and_index",
    "check_logging_config",
    "check_other_permissions",
    "check_probe_parameters",
    "check_put_permission",
    "check_swallowed_errors",
    "check_table",
    "check_write_awaited",
    "check_write_on_connect",
    "diagnose",
    "gather",
    "rank",
    "run_checks",
    "summary_text",
    "to_json",
]

_empty = frames.empty

# --------------------------------------------------------------------------------------------------------
# Gathering (I/O)
# --------------------------------------------------------------------------------------------------------


def _section(evidence: Evidence, name: str, read: Callable[[], Any]) -> Any:
    try:
        return read()
    except KitError as exc:
        evidence.problems[name] = str(exc)
        evidence.problem_kinds[name] = failure_kind(exc)
        log.warning("could not read %s: %s", name, exc)
        return None


def gather(
    target: Target,
    *,
    since: datetime | None = None,
    probe_plan: Any | None = None,
    allow_aws_probe: bool = False,
    settle_s: float | None = None,
    progress: bool = False,
) -> Evidence:
    """Read every piece of evidence from ``target``; a piece that cannot be read is recorded, not raised."""
    started = datetime.now(UTC)
    since = since or started - timedelta(hours=1)
    evidence = Evidence(target.label, target.region, target.table, target.index)

    if probe_plan is not None:
        from kit import probe

        evidence.probe = _section(
            evidence,
            "probe",
            lambda: probe.run_probe(target, probe_plan, allow_aws=allow_aws_probe, progress=progress),
        )

    answers = _section(evidence, "api", lambda: config.fetch_api(target))
    function_answers: list[dict[str, Any]] = []
    stage_answer: dict[str, Any] | None = None
    if answers is not None:
        evidence.routes = config.routes_frame(answers.routes, answers.integrations)
        stage_answer = answers.stage(target.stage) or (answers.stages[0] if answers.stages else None)
        if stage_answer is not None:
            evidence.stage = config.stage_frame(stage_answer)
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
    connect_functions = _connect_functions(evidence.routes) or function_names
    if connect_functions:
        evidence.permissions = _section(
            evidence, "iam", lambda: iam.role_permissions(target, connect_functions[0])
        )

    groups = logs.log_groups_frame(function_answers, target.api_id, stage_answer)
    if not groups.empty:
        settle = settle_s if settle_s is not None else (1.0 if target.kind == "lab" else 0.0)
        fetched = _section(
            evidence,
            "logs",
            lambda: logs.fetch_events(
                target.client("logs"), groups["log_group"].tolist(), start=since, settle_s=settle
            ),
        )
        if fetched is not None:
            evidence.log_report = fetched.report
            parsed = logparse.parse(fetched.events)
            evidence.log_lines = parsed
            evidence.invocations = logparse.invocations(parsed)
            evidence.lifecycle = logparse.connection_lifecycle(parsed)
    return evidence


def _connect_functions(routes: pd.DataFrame) -> list[str]:
    connect = routes[routes["route_key"] == CONNECT]
    return [str(name) for name in connect["function_name"].dropna().tolist()]


# --------------------------------------------------------------------------------------------------------
# Checks (pure)
# --------------------------------------------------------------------------------------------------------


def check_connect_route(e: Evidence) -> list[Finding]:
    question = "Is the $connect route wired to an integration?"
    if "api" in e.problems:
        return skip("connect-route", question, f"the API could not be read: {e.problems['api']}")
    connect = e.routes[e.routes["route_key"] == CONNECT]
    # routes_frame adds a placeholder row (no route id) for an expected route that does not exist.
    missing = connect.empty or connect["route_id"].isna().all()
    dangling = not missing and connect["integration_type"].isna().all()
    if missing or dangling or connect["integration_id"].isna().all():
        if missing:
            detail = "get_routes has no $connect route"
        elif connect["integration_id"].isna().all():
            detail = "the $connect route has no target"
        else:
            target = first_text(connect, "target")
            detail = f"the $connect route targets {target}, an integration that does not exist"
        return [
            Finding(
                "connect-route",
                question,
                "fail",
                "connect-route-missing",
                detail,
                causes.cause("connect-route-missing").next_step,
            )
        ]
    row = connect.iloc[0]
    return [
        Finding(
            "connect-route",
            question,
            "pass",
            None,
            f"$connect → {row['integration_type']} {row['integration_uri']}",
        )
    ]


def check_connection_id_mapping(e: Evidence) -> list[Finding]:
    question = "Does the $connect integration receive the connection id?"
    if "api" in e.problems:
        return skip("connection-id-mapping", question, f"the API could not be read: {e.problems['api']}")
    connect = e.routes[e.routes["route_key"] == CONNECT]
    if connect.empty or connect["integration_type"].isna().all():
        return skip("connection-id-mapping", question, "no $connect route")
    row = connect.iloc[0]
    if str(row["integration_type"]) in ("HTTP_PROXY", "HTTP") and not is_true(row["connection_id_mapped"]):
        return [
            Finding(
                "connection-id-mapping",
                question,
                "fail",
                "connection-id-not-mapped",
                f"$connect → {row['integration_type']} {row['integration_uri']} with RequestParameters "
                f"{row['request_parameters'] if pd.notna(row['request_parameters']) else '{}'}",
                causes.cause("connection-id-not-mapped").next_step,
            )
        ]
    return [
        Finding(
            "connection-id-mapping",
            question,
            "pass",
            None,
            f"{row['integration_type']}: Lambda proxy events carry requestContext.connectionId"
            if row["integration_type"] == "AWS_PROXY"
            else "context.connectionId is mapped",
        )
    ]


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
    cause = "table-not-found" if not missing.empty else "table-schema-mismatch"
    return [
        Finding(
            "table-structure",
            question,
            "fail",
            cause,
            "; ".join(errors["message"].astype(str)),
            first_text(errors, "next_step"),
        )
    ]


def check_function_table(e: Evidence) -> list[Finding]:
    question = "Does each function's TABLE_NAME name the connections table, in the table's region?"
    if e.functions.empty:
        return skip("env-table", question, e.problems.get("functions", "no function is wired to the API"))
    findings = []
    for _, row in e.functions.iterrows():
        name = str(row["function_name"])
        table = row["table_name"] if pd.notna(row["table_name"]) else None
        home = str(row["region"]) if pd.notna(row["region"]) and str(row["region"]) else e.region
        region = str(row["table_region"]) if pd.notna(row["table_region"]) else home
        where = e.tables.get(region)
        if pd.notna(row["problem"]) and pd.isna(row["handler"]):
            findings.append(
                Finding(
                    "env-table",
                    question,
                    "warn",
                    None,
                    f"{name}: its configuration could not be read ({row['problem']})",
                    "Check that the function exists and that the kit may read its configuration.",
                )
            )
        elif table is None:
            findings.append(
                Finding(
                    "env-table",
                    question,
                    "warn",
                    None,
                    f"{name}: TABLE_NAME is not set (the handler falls back to a default)",
                    "Set TABLE_NAME explicitly.",
                )
            )
        elif region != e.region and table == e.table and where is not None and table in where:
            findings.append(
                Finding(
                    "env-table",
                    question,
                    "fail",
                    "wrong-region",
                    f"{name}: TABLE_REGION={region}; a table {table} exists there too, while the app reads "
                    f"{e.region}",
                    causes.cause("wrong-region").next_step,
                )
            )
        elif where is not None and table not in where:
            findings.append(
                Finding(
                    "env-table",
                    question,
                    "fail",
                    "table-not-found",
                    f"{name}: TABLE_NAME={table}, but {region} has no such table (tables there: "
                    f"{', '.join(where) or 'none'})",
                    causes.cause("table-not-found").next_step,
                )
            )
        elif table != e.table:
            findings.append(
                Finding(
                    "env-table",
                    question,
                    "warn",
                    None,
                    f"{name}: TABLE_NAME={table} differs from the table under investigation ({e.table})",
                    "Check which table the app reads.",
                )
            )
        else:
            findings.append(
                Finding("env-table", question, "pass", None, f"{name}: TABLE_NAME={table} in {region}")
            )
    return findings


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
    question = "May the role delete items, read the sender, post to @connections and write its logs?"
    if e.permissions is None or e.permissions.empty:
        return skip("iam-other", question, e.problems.get("iam", "no execution role could be read"))
    others = e.permissions[~e.permissions["action"].isin(["dynamodb:PutItem", "dynamodb:Query"])]
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


def check_handshakes(e: Evidence) -> list[Finding]:
    """Crashes (502) on $connect, from the logs or the probe."""
    question = "Does the $connect handler answer without crashing?"
    # The logs see every handshake, the probe's included; the probe's own view counts only without logs.
    statuses: list[int] = []
    if e.lifecycle is not None and not e.lifecycle.empty:
        statuses += [int(s) for s in e.lifecycle["connect_status"].dropna().tolist()]
    if not statuses and e.probe is not None and not e.probe.empty:
        connects = e.probe[e.probe["step"] == "connect"]
        statuses += [int(s) for s in connects["http_status"].dropna().tolist()]
    if not statuses:
        return skip("handler-crash", question, "no $connect seen in the logs or by a probe")
    crashes = [s for s in statuses if s == 502]
    errors: list[str] = []
    if e.invocations is not None and not e.invocations.empty:
        failed = e.invocations[e.invocations["status"].isin(["error", "timeout"])]
        errors = [
            f"{t}: {m}"
            for t, m in zip(failed["error_type"].fillna(""), failed["error_message"].fillna(""), strict=True)
        ][:3]
    if crashes:
        detail = f"{len(crashes)} of {len(statuses)} handshakes answered 502" + (
            f"; {errors[0]}" if errors else ""
        )
        return [
            Finding(
                "handler-crash",
                question,
                "fail",
                "handler-crash",
                detail,
                causes.cause("handler-crash").next_step,
            )
        ]
    return [
        Finding(
            "handler-crash",
            question,
            "pass",
            None,
            f"no handshake answered 502 (statuses seen: {sorted(set(statuses))})",
        )
    ]


def check_swallowed_errors(e: Evidence) -> list[Finding]:
    """The seed's bug: an error logged, yet API Gateway answered 200 and the connection opened."""
    question = "Does the handler answer non-2xx when its write fails?"
    if e.lifecycle is None or e.lifecycle.empty:
        return skip("error-handling", question, e.problems.get("logs", "no connection seen in the logs"))
    swallowed = e.lifecycle[(e.lifecycle["connect_status"] == 200) & e.lifecycle["app_error_code"].notna()]
    if swallowed.empty:
        return [
            Finding("error-handling", question, "pass", None, "no $connect answered 200 after a logged error")
        ]
    codes = {str(code): int(n) for code, n in swallowed["app_error_code"].value_counts().items()}
    # ResourceNotFound names the table the handler wrote to: it does not exist. An AccessDenied is left to the
    # IAM checks, which look at the table under investigation: a write to a misspelt table is denied too
    # (IAM is checked before the table's existence), and that is the table name's fault, not the role's.
    cause = "table-not-found" if "ResourceNotFoundException" in codes else None
    findings = [
        Finding(
            "error-handling",
            question,
            "fail",
            "error-swallowed",
            f"{len(swallowed)} connection(s) answered 200 after {codes}; e.g. "
            f"{swallowed.iloc[0]['connection_id']}: {swallowed.iloc[0]['why']}",
            "Return a non-2xx status (500) when the write fails, so the handshake fails visibly.",
        )
    ]
    if cause is not None:
        findings.append(
            Finding(
                "logged-write-error",
                "Which error does the handler log on $connect?",
                "fail",
                cause,
                "ResourceNotFoundException in the function's log",
                causes.cause(cause).next_step,
            )
        )
    return findings


def check_app_logs(e: Evidence) -> list[Finding]:
    question = "Do the handler's own log lines reach CloudWatch?"
    if e.invocations is None or e.invocations.empty:
        return skip("app-logs", question, e.problems.get("logs", "no invocation in the logs"))
    if e.log_lines is None:
        return skip("app-logs", question, "logs not read")
    app = e.log_lines[(e.log_lines["source"] == "lambda") & e.log_lines["kind"].isin(["app", "error"])]
    if app.empty:
        levels = ", ".join(sorted({str(v) for v in e.functions["log_level"].dropna().tolist()})) or "unset"
        return [
            Finding(
                "app-logs",
                question,
                "warn",
                "app-logs-missing",
                f"{len(e.invocations)} invocations and not one application line (log level: {levels})",
                "Set the function's log level (ApplicationLogLevel INFO) or log failures at WARNING/ERROR.",
            )
        ]
    return [Finding("app-logs", question, "pass", None, f"{len(app)} application lines")]


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


def check_early_disconnect(e: Evidence) -> list[Finding]:
    question = "Do connections stay open long enough to be used?"
    if e.lifecycle is None or e.lifecycle.empty:
        return skip("early-disconnect", question, e.problems.get("logs", "no connection seen in the logs"))
    closed = e.lifecycle[e.lifecycle["lifetime_ms"].notna() & (e.lifecycle["connect_status"] == 200)]
    if closed.empty:
        return [
            Finding("early-disconnect", question, "pass", None, "no stored connection has been closed yet")
        ]
    # A connection that closes within 2 s without sending anything was never used: a reconnect loop or a
    # double mount, not a user who came and went (connections that talk first, like a probe's, don't count).
    talked: set[str] = set()
    if e.log_lines is not None and not e.log_lines.empty:
        messages = e.log_lines[e.log_lines["event_type"] == "MESSAGE"]
        talked = {str(c) for c in messages["connection_id"].dropna().tolist()}
    short = closed[(closed["lifetime_ms"] < 2_000) & ~closed["connection_id"].isin(talked)]
    if 2 * len(short) > len(closed):  # most stored connections, not one unlucky client
        codes = {int(code): int(n) for code, n in short["disconnect_code"].value_counts().items()}
        return [
            Finding(
                "early-disconnect",
                question,
                "fail",
                "early-disconnect",
                f"{len(short)} of {len(closed)} connections closed within 2 s of connecting without sending "
                f"anything (close codes {codes}); $disconnect removed their items",
                causes.cause("early-disconnect").next_step,
            )
        ]
    return [
        Finding(
            "early-disconnect",
            question,
            "pass",
            None,
            f"median lifetime {int(closed['lifetime_ms'].median())} ms",
        )
    ]


def check_connect_invocations(e: Evidence) -> list[Finding]:
    question = "Is the $connect integration invoked for each connection (API Gateway logs)?"
    if e.lifecycle is None or e.lifecycle.empty:
        reason = e.problems.get(
            "logs", "no CONNECT in the API Gateway logs (is execution or access logging on?)"
        )
        return skip("connect-invoked", question, reason)
    not_invoked = e.lifecycle[e.lifecycle["connect_invoked"] == False]  # noqa: E712
    if not not_invoked.empty:
        opened = int((not_invoked["connect_status"] < 400).fillna(True).sum())
        return [
            Finding(
                "connect-invoked",
                question,
                "warn",
                None,
                f"{len(not_invoked)} connections with no integration invoked: {opened} opened, "
                f"{len(not_invoked) - opened} refused",
                "See the connect-route check.",
            )
        ]
    return [
        Finding("connect-invoked", question, "pass", None, f"{len(e.lifecycle)} connections, each invoked")
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


def check_logging_config(e: Evidence) -> list[Finding]:
    question = "Are API Gateway execution and access logs on, with the fields that tell causes apart?"
    if e.stage.empty:
        return skip("apigw-logs", question, e.problems.get("api", "no stage"))
    row = e.stage.iloc[0]
    problems = []
    if str(row["logging_level"]) in ("OFF", "<NA>", "None"):
        problems.append("execution logging is OFF")
    if not is_true(row["access_log_format_present"]):
        problems.append("no access log")
    elif not (is_true(row["access_log_connection_id"]) and is_true(row["access_log_status"])):
        problems.append("the access-log format lacks $context.connectionId or $context.status")
    if problems:
        return [
            Finding(
                "apigw-logs",
                question,
                "warn",
                None,
                "; ".join(problems),
                "Turn on INFO execution logs and a JSON access log with connectionId, status and "
                "integration.status.",
            )
        ]
    return [
        Finding(
            "apigw-logs",
            question,
            "pass",
            None,
            f"execution logs {row['logging_level']}, access log to {row['access_log_destination']}",
        )
    ]


CHECKS: tuple[Check, ...] = (
    check_connect_route,
    check_connection_id_mapping,
    check_table,
    check_direct_write,
    check_function_table,
    check_put_permission,
    check_index_permission,
    check_other_permissions,
    check_handshakes,
    check_handshake_refusals,
    check_swallowed_errors,
    check_write_on_connect,
    check_write_awaited,
    check_app_logs,
    check_items_and_index,
    check_connection_id_shape,
    check_probe_parameters,
    check_delivery,
    check_early_disconnect,
    check_connect_invocations,
    check_email_token,
    check_logging_config,
)


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
    rows.extend(f.__dict__ for f in read_findings(evidence))
    frame = pd.DataFrame(rows, columns=list(FINDING_COLUMNS)) if rows else _empty(FINDING_COLUMNS)
    return frame.astype(FINDING_COLUMNS)


def rank(findings: pd.DataFrame) -> dict[str, Any]:
    """The root cause: the failing finding whose cause ranks first; ``none`` when nothing fails.

    What the probe saw fail and evidence that was not read are failing findings too (kit.symptom_checks),
    so ``none`` means every check that could fail looked and found nothing.
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
    return Diagnosis(rank(findings), findings)


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
