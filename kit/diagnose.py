"""Diagnosis: evidence → findings (check, question, verdict, evidence, next step) → a ranked root cause.

``gather`` reads the evidence through :mod:`kit.target` (configuration, table, IAM, logs, and optionally a
probe; on a writable target it also tests the table in isolation with an item of its own, see
:mod:`kit.direct_write`) and never raises for one missing piece: a section that could not be read is
recorded, and the checks that need it say ``skip`` with the reason. ``run_checks`` is pure: each check looks
at the evidence frames only. ``rank`` picks the root cause among the failing checks by :mod:`kit.causes` rank.

Nothing here knows whether the target is the lab or a real account, and nothing reads the lab's scenario.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from kit import causes, config, direct_write, dynamo, frames, iam, logparse, logs
from kit.errors import KitError
from kit.target import Target

log = logging.getLogger("kit.diagnose")

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


_empty = frames.empty


@dataclass
class Evidence:
    """Everything the checks look at. Frames are empty (with their columns) when there was nothing."""

    target: str
    region: str
    table: str
    index: str
    routes: pd.DataFrame = field(default_factory=lambda: _empty(config.ROUTES_COLUMNS))
    functions: pd.DataFrame = field(default_factory=lambda: _empty(config.FUNCTION_COLUMNS))
    stage: pd.DataFrame = field(default_factory=lambda: _empty(config.STAGE_COLUMNS))
    tables: dict[str, list[str]] = field(default_factory=dict)  # region -> table names
    schema_differences: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    coverage: pd.DataFrame | None = None
    permissions: pd.DataFrame | None = None
    log_report: pd.DataFrame | None = None
    log_lines: pd.DataFrame | None = None
    invocations: pd.DataFrame | None = None
    lifecycle: pd.DataFrame | None = None
    probe: pd.DataFrame | None = None
    direct_write: pd.DataFrame | None = None  # kit.direct_write.DIRECT_WRITE_COLUMNS; every step NA: not run
    problems: dict[str, str] = field(default_factory=dict)  # section -> why it could not be read


@dataclass
class Diagnosis:
    root_cause: dict[str, Any]
    findings: pd.DataFrame

    def as_dict(self) -> dict[str, Any]:
        findings = self.findings.astype(object).where(self.findings.notna(), None)
        return {"root_cause": self.root_cause, "findings": findings.to_dict(orient="records")}


# --------------------------------------------------------------------------------------------------------
# Gathering (I/O)
# --------------------------------------------------------------------------------------------------------


def _section(evidence: Evidence, name: str, read: Callable[[], Any]) -> Any:
    try:
        return read()
    except KitError as exc:
        evidence.problems[name] = str(exc)
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
    evidence.schema_differences = _section(evidence, "table", lambda: dynamo.schema_diff_frame(target))
    if target.table in evidence.tables.get(target.region, []):
        evidence.items = _section(evidence, "items", lambda: dynamo.scan_items(target, progress=progress))
        if evidence.items is not None:
            items = evidence.items
            evidence.coverage = _section(
                evidence, "index", lambda: dynamo.index_coverage(items, dynamo.index_pages(target))
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


@dataclass(frozen=True)
class Finding:
    check: str
    question: str
    verdict: Verdict
    cause: str | None = None
    evidence: str = ""
    next_step: str = ""


Check = Callable[[Evidence], list[Finding]]


def _skip(check: str, question: str, why: str) -> list[Finding]:
    return [Finding(check, question, "skip", None, why, "")]


def _true(value: Any) -> bool:
    """A pandas boolean cell as a plain bool: NA counts as False."""
    return bool(pd.notna(value) and value)


def _first(frame: pd.DataFrame, column: str) -> str:
    values = frame[column].dropna().tolist()
    return str(values[0]) if values else ""


def check_connect_route(e: Evidence) -> list[Finding]:
    question = "Is the $connect route wired to an integration?"
    if "api" in e.problems:
        return _skip("connect-route", question, f"the API could not be read: {e.problems['api']}")
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
            detail = (
                f"the $connect route targets {_first(connect, 'target')}, an integration that does not exist"
            )
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
        return _skip("connection-id-mapping", question, f"the API could not be read: {e.problems['api']}")
    connect = e.routes[e.routes["route_key"] == CONNECT]
    if connect.empty or connect["integration_type"].isna().all():
        return _skip("connection-id-mapping", question, "no $connect route")
    row = connect.iloc[0]
    if str(row["integration_type"]) in ("HTTP_PROXY", "HTTP") and not _true(row["connection_id_mapped"]):
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
        return _skip("table-structure", question, e.problems.get("table", "not read"))
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
            _first(errors, "next_step"),
        )
    ]


def check_function_table(e: Evidence) -> list[Finding]:
    question = "Does each function's TABLE_NAME name the connections table, in the table's region?"
    if e.functions.empty:
        return _skip("env-table", question, e.problems.get("functions", "no function is wired to the API"))
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
        return _skip(check, question, e.problems.get("iam", "no execution role could be read"))
    if _true(row["allowed"]):
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
        return _skip("iam-other", question, e.problems.get("iam", "no execution role could be read"))
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
        return _skip("handler-crash", question, "no $connect seen in the logs or by a probe")
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
        Finding("handler-crash", question, "pass", None, f"handshake statuses seen: {sorted(set(statuses))}")
    ]


def check_swallowed_errors(e: Evidence) -> list[Finding]:
    """The seed's bug: an error logged, yet API Gateway answered 200 and the connection opened."""
    question = "Does the handler answer non-2xx when its write fails?"
    if e.lifecycle is None or e.lifecycle.empty:
        return _skip("error-handling", question, e.problems.get("logs", "no connection seen in the logs"))
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
        return _skip("app-logs", question, e.problems.get("logs", "no invocation in the logs"))
    if e.log_lines is None:
        return _skip("app-logs", question, "logs not read")
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
        return _skip(
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
        return _skip("probe", question, e.problems.get("probe", "no probe was run (read-only)"))
    stored = e.probe[e.probe["step"] == "item-stored"]
    visible = e.probe[e.probe["step"] == "index-visible"]
    not_stored = stored[stored["ok"].eq(False).fillna(False)]
    not_visible = visible[visible["ok"].eq(False).fillna(False)]
    if not not_stored.empty:
        return [
            Finding(
                "probe",
                question,
                "warn",
                None,
                f"{len(not_stored)} of {len(stored)} probe connections were never stored: "
                f"{_first(not_stored, 'detail')}",
                "See the checks above for why the write did not happen.",
            )
        ]
    if not not_visible.empty:
        return [
            Finding(
                "probe",
                question,
                "fail",
                "workspace-id-missing",
                f"stored but not in workspaceIndex: {_first(not_visible, 'detail')}",
                causes.cause("workspace-id-missing").next_step,
            )
        ]
    return [Finding("probe", question, "pass", None, f"{len(stored)} probe connections stored and visible")]


def check_early_disconnect(e: Evidence) -> list[Finding]:
    question = "Do connections stay open long enough to be used?"
    if e.lifecycle is None or e.lifecycle.empty:
        return _skip("early-disconnect", question, e.problems.get("logs", "no connection seen in the logs"))
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
        return _skip("connect-invoked", question, reason)
    not_invoked = e.lifecycle[e.lifecycle["connect_invoked"] == False]  # noqa: E712
    if not not_invoked.empty:
        return [
            Finding(
                "connect-invoked",
                question,
                "warn",
                None,
                f"{len(not_invoked)} connections opened with no integration invoked",
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
        return _skip("email-as-token", question, why)
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
        return _skip("apigw-logs", question, e.problems.get("api", "no stage"))
    row = e.stage.iloc[0]
    problems = []
    if str(row["logging_level"]) in ("OFF", "<NA>", "None"):
        problems.append("execution logging is OFF")
    if not _true(row["access_log_format_present"]):
        problems.append("no access log")
    elif not (_true(row["access_log_connection_id"]) and _true(row["access_log_status"])):
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


# --------------------------------------------------------------------------------------------------------
# Where and when the write happens (logs), what the table holds (items), the table on its own (direct write)
# --------------------------------------------------------------------------------------------------------


def _lambda_writes(e: Evidence) -> pd.DataFrame:
    """The Lambda lines that write a connection: a PutItem (made or failed) or the outcome 'stored'."""
    if e.log_lines is None or e.log_lines.empty:
        return _empty(logparse.LOG_COLUMNS)
    lines = e.log_lines[e.log_lines["source"] == "lambda"]
    put = lines["aws_operation"].eq("PutItem").fillna(False).astype(bool)
    stored = lines["app_outcome"].eq("stored").fillna(False).astype(bool)
    return lines[put | stored]


def _lambda_requests(e: Evidence) -> pd.DataFrame:
    """One row per Lambda request id (the index): the route and connection it served, its end and status.

    API Gateway's lines (integration request id → route key, connection id) win: the invocation's own values
    are the last its lines gave, so a late line about another connection can have overwritten them.
    """
    columns = ["route_key", "connection_id", "end_ts", "status"]
    if e.invocations is not None and not e.invocations.empty:
        calls = e.invocations.drop_duplicates("request_id").set_index("request_id")[columns]
    else:
        calls = _empty(logparse.INVOCATION_COLUMNS).set_index("request_id")[columns]
    if e.log_lines is None or e.log_lines.empty:
        return calls
    gateway = e.log_lines[
        e.log_lines["source"].isin(GATEWAY_SOURCES).fillna(False).astype(bool)
        & e.log_lines["integration_request_id"].notna()
    ]
    if gateway.empty:
        return calls
    routes = gateway["event_type"].map({"CONNECT": CONNECT, "DISCONNECT": "$disconnect"}).astype("string")
    served = (
        pd.DataFrame(
            {
                "request_id": gateway["integration_request_id"],
                "route_key": gateway["route_key"].fillna(routes),
                "connection_id": gateway["connection_id"],
            }
        )
        .groupby("request_id")
        .first()
    )
    index = calls.index.union(served.index)
    result = pd.DataFrame(index=index)
    for column in ("route_key", "connection_id"):
        result[column] = served[column].reindex(index).fillna(calls[column].reindex(index)).astype("string")
    result["end_ts"] = calls["end_ts"].reindex(index)
    result["status"] = calls["status"].reindex(index).astype("string")
    return result


def _write_routes(writes: pd.DataFrame, requests: pd.DataFrame) -> pd.Series:
    """The route each write line was made on: the line's own, else its request's; NA when unknown."""
    by_request = writes["request_id"].map(requests["route_key"]).astype("string")
    return writes["route_key"].fillna(by_request)


def _connect_requests(e: Evidence, requests: pd.DataFrame) -> dict[str, str]:
    """Connection id → the request id of its $connect invocation, where the logs say which."""
    known = set() if e.invocations is None else {str(r) for r in e.invocations["request_id"].dropna()}
    found: dict[str, str] = {}
    connects = requests[requests["route_key"].eq(CONNECT).fillna(False).astype(bool)]
    for request_id, connection_id in connects["connection_id"].dropna().items():
        if str(request_id) in known:
            found.setdefault(str(connection_id), str(request_id))
    if e.lifecycle is not None and not e.lifecycle.empty:
        chosen = e.lifecycle.dropna(subset=["connection_id", "connect_lambda_request_id"])
        pairs = zip(chosen["connection_id"], chosen["connect_lambda_request_id"], strict=True)
        for connection_id, request_id in pairs:
            if str(request_id) in known:
                found.setdefault(str(connection_id), str(request_id))
    return found


def _what(line: pd.Series) -> str:
    """A write line in a few words: ``PutItem AccessDeniedException``, ``PutItem`` or ``outcome 'stored'``."""
    operation, code = line["aws_operation"], line["app_error_code"]
    if pd.notna(operation):
        return f"{operation} {code}" if pd.notna(code) else str(operation)
    return "outcome 'stored'"


def _stored_after_talking(e: Evidence) -> pd.DataFrame | None:
    """Connections whose item was written over a second after their handshake, once they had sent a message.

    None unless that holds for every connection that has both an item and a CONNECT in the logs (a second
    either way absorbs the difference between Lambda's and API Gateway's clocks).
    """
    if e.items is None or e.items.empty or e.lifecycle is None or e.lifecycle.empty or e.log_lines is None:
        return None
    if not {"connectionId", dynamo.TIMESTAMP_UTC} <= set(e.items.columns):
        return None
    messages = e.log_lines[e.log_lines["event_type"].eq("MESSAGE").fillna(False).astype(bool)]
    first_message = messages.dropna(subset=["connection_id"]).groupby("connection_id")["ts"].min()
    stored = e.items[["connectionId", dynamo.TIMESTAMP_UTC]].dropna()
    stored = stored.rename(columns={"connectionId": "connection_id", dynamo.TIMESTAMP_UTC: "stored_at"})
    connects = e.lifecycle[["connection_id", "connect_ts"]].dropna()
    joined = stored.astype({"connection_id": "string"}).merge(connects, on="connection_id", how="inner")
    if joined.empty:
        return None
    talked = joined["connection_id"].map(first_message)
    second = pd.Timedelta(seconds=1)
    after_handshake = (joined["stored_at"] > joined["connect_ts"] + second).fillna(False).astype(bool)
    after_talking = (talked.notna() & (joined["stored_at"] >= talked - second)).fillna(False).astype(bool)
    late = joined[after_handshake & after_talking]
    return late if len(late) == len(joined) else None


def check_write_on_connect(e: Evidence) -> list[Finding]:
    """Writing from the wrong event: the row is written on a later message (a "join"), not on $connect."""
    check = "write-on-connect"
    question = "Is each connection stored by its $connect invocation, not by a later message?"
    if e.log_lines is None or e.invocations is None:
        return _skip(check, question, e.problems.get("logs", "logs not read"))
    writes = _lambda_writes(e)
    requests = _lambda_requests(e)
    routes = _write_routes(writes, requests)
    known = routes.notna()
    on_connect = writes[known & (routes == CONNECT)]
    elsewhere = writes[known & (routes != CONNECT)]
    if not elsewhere.empty and on_connect.empty:
        connect_calls = int(requests["route_key"].eq(CONNECT).fillna(False).sum())
        by_route = {str(r): int(n) for r, n in routes[elsewhere.index].value_counts().items()}
        line = elsewhere.iloc[0]
        return [
            Finding(
                check,
                question,
                "fail",
                "write-on-message",
                f"{len(elsewhere)} write(s) on routes {by_route} and none in the {connect_calls} $connect "
                f"invocation(s) of these logs; e.g. {_what(line)} by request {line['request_id']} on "
                f"{routes[elsewhere.index[0]]} for connection {line['connection_id']}",
                causes.cause("write-on-message").next_step,
            )
        ]
    if not on_connect.empty:
        also = f"; {len(elsewhere)} more on other routes" if not elsewhere.empty else ""
        return [
            Finding(
                check, question, "pass", None, f"{len(on_connect)} write(s) in $connect invocations{also}"
            )
        ]
    late = _stored_after_talking(e)
    if late is not None:
        row = late.iloc[0]
        return [
            Finding(
                check,
                question,
                "warn",
                "write-on-message",
                f"every one of the {len(late)} stored connection(s) seen connecting got its item only after "
                f"sending a message (e.g. {row['connection_id']}: connected {row['connect_ts']}, stored "
                f"{row['stored_at']}); the logs show no write, so this rests on the items' timestamps (or "
                "something rewrites the timestamp on each message)",
                causes.cause("write-on-message").next_step,
            )
        ]
    why = (
        f"{len(writes)} write(s) in the logs, none with a known route (the lines name none, and no API "
        "Gateway line names their request)"
        if not writes.empty
        else "no write (PutItem or outcome 'stored') in the logs"
    )
    return _skip(check, question, why)


def check_write_awaited(e: Evidence) -> list[Finding]:
    """Asynchronous work not awaited: the write lands after its $connect invocation ended, or never."""
    check = "write-awaited"
    question = (
        "Does each $connect write finish inside its own invocation (awaited before the handler returns)?"
    )
    if e.log_lines is None or e.invocations is None:
        return _skip(check, question, e.problems.get("logs", "logs not read"))
    writes = _lambda_writes(e)
    requests = _lambda_requests(e)
    routes = _write_routes(writes, requests)
    # A message route's own write is write-on-connect's business, not a late $connect write.
    writes = writes[routes.isna() | (routes == CONNECT)]
    if writes.empty:
        return _skip(check, question, "no $connect write (PutItem or outcome 'stored') in the logs")
    connect_of = _connect_requests(e, requests)
    late: list[str] = []
    for _, line in writes.iterrows():
        connection_id, request_id = line["connection_id"], line["request_id"]
        if pd.isna(connection_id) or pd.isna(request_id):
            continue
        own = connect_of.get(str(connection_id))
        served = requests["connection_id"].get(request_id, pd.NA)
        if (pd.notna(served) and served != connection_id) or (own is not None and own != request_id):
            late.append(
                f"{_what(line)} for {connection_id} logged by request {request_id}, not by its $connect "
                f"invocation {own or '(not in these logs)'}"
            )
            continue
        ended = requests["end_ts"].get(request_id, pd.NaT) if own == request_id else pd.NaT
        if pd.notna(ended) and pd.notna(line["ts"]) and line["ts"] > ended:
            after = int((line["ts"] - ended) / pd.Timedelta(milliseconds=1))
            late.append(
                f"{_what(line)} for {connection_id} logged {after} ms after its $connect invocation "
                f"{request_id} ended"
            )
    silent = _silent_connects(e, connect_of, requests)
    quiet = (
        f"; {len(silent)} $connect invocation(s) ended without a write or an error line (e.g. {silent[0]})"
        if silent
        else ""
    )
    if late:
        return [
            Finding(
                check,
                question,
                "fail",
                "write-not-awaited",
                f"{len(late)} write(s) logged after their $connect invocation had ended: {late[0]}{quiet}",
                causes.cause("write-not-awaited").next_step,
            )
        ]
    if silent:
        return [
            Finding(
                check,
                question,
                "warn",
                "write-not-awaited",
                f"{len(silent)} of {len(connect_of)} $connect invocations ended without a write or an error "
                f"line, while the handler logs its writes elsewhere (e.g. {silent[0]})",
                "Check that the handler awaits its PutItem before returning; a write still pending when the "
                "handler returns is frozen with the environment.",
            )
        ]
    return [
        Finding(check, question, "pass", None, f"{len(writes)} write(s), each inside its $connect invocation")
    ]


def _silent_connects(e: Evidence, connect_of: dict[str, str], requests: pd.DataFrame) -> list[str]:
    """$connect invocations that ended normally and logged no write, error or outcome for their connection."""
    if e.log_lines is None or not connect_of:
        return []
    lines = e.log_lines[(e.log_lines["source"] == "lambda") & e.log_lines["request_id"].notna()]
    said = lines["app_outcome"].notna() | lines["app_error_code"].notna() | lines["aws_operation"].notna()
    lines = lines[said.fillna(False).astype(bool)]
    silent = []
    for connection_id, request_id in connect_of.items():
        if requests["status"].get(request_id, pd.NA) != "success":
            continue  # a crash or a timeout is another check's business
        mine = lines[lines["request_id"] == request_id]
        mine = mine[mine["connection_id"].isna() | (mine["connection_id"] == connection_id)]
        ended = requests["end_ts"].get(request_id, pd.NaT)
        if pd.notna(ended):
            mine = mine[~(mine["ts"] > ended).fillna(False).astype(bool)]
        if mine.empty:
            silent.append(f"request {request_id} for {connection_id}")
    return silent


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
        return _skip(check, question, e.problems.get("items", "the table could not be scanned"))
    if e.items.empty or "connectionId" not in e.items.columns:
        return _skip(check, question, "the table holds no item")
    theirs = e.items[~_kit_items(e.items)]
    ids = theirs["connectionId"].astype("string").dropna()
    if ids.empty:
        return _skip(check, question, "the table holds only the kit's own items")
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


# An error code of the kit's own direct write → the cause it points to. The execution role plays no part.
_DIRECT_WRITE_CAUSES: dict[str, str] = {
    "ResourceNotFoundException": "table-not-found",
    "ValidationException": "table-schema-mismatch",
}


def _direct_write_cause(code: str, step: str) -> str | None:
    if code == "ResourceNotFoundException" and step == "query":
        return (
            "table-schema-mismatch"  # the put found the table, so what is missing is the index (moto says so)
        )
    if code in _DIRECT_WRITE_CAUSES:
        return _DIRECT_WRITE_CAUSES[code]
    if "AccessDenied" in code or code.startswith("KMS"):
        return "table-write-denied"
    return None


def check_direct_write(e: Evidence) -> list[Finding]:
    """Storage tested in isolation: the kit's own PutItem, GetItem, Query on the index and DeleteItem."""
    check = "direct-write"
    question = "Can the kit itself put, read back, query (workspaceIndex) and delete an item in the table?"
    if e.direct_write is None or e.direct_write.empty:
        return _skip(check, question, e.problems.get("direct-write", "the storage test was not run"))
    steps = e.direct_write
    ran = steps[steps["ok"].notna()]
    if ran.empty:
        return _skip(check, question, _first(steps, "detail").removeprefix("skipped: "))
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
        next_step = (
            causes.cause(cause_id).next_step
            if cause_id is not None
            else "Retry; if it persists, check the kit's credentials, the endpoint and the network."
        )
        findings.append(Finding(check, question, "fail", cause_id, detail, next_step))
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
                f"Delete the item {_first(leftover, 'connection_id')} by hand; it is the kit's own "
                f"({direct_write.ITEM_PREFIX}…).",
            )
        )
    if findings:
        return findings
    return [Finding(check, question, "pass", None, "; ".join(ran["detail"].astype(str)))]


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
    check_swallowed_errors,
    check_write_on_connect,
    check_write_awaited,
    check_app_logs,
    check_items_and_index,
    check_connection_id_shape,
    check_probe_parameters,
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
            log.exception("check %s failed", check.__name__)
            found = [
                Finding(
                    check.__name__.removeprefix("check_"),
                    "",
                    "skip",
                    None,
                    f"the check itself failed: {exc}",
                    "",
                )
            ]
        rows.extend(f.__dict__ for f in found)
    for section, problem in evidence.problems.items():
        rows.append(
            {
                "check": f"read-{section}",
                "question": f"Could the kit read the {section}?",
                "verdict": "warn",
                "cause": None,
                "evidence": problem,
                "next_step": "Fix access to it and run again.",
            }
        )
    frame = pd.DataFrame(rows, columns=list(FINDING_COLUMNS)) if rows else _empty(FINDING_COLUMNS)
    return frame.astype(FINDING_COLUMNS)


def rank(findings: pd.DataFrame) -> dict[str, Any]:
    """The root cause: the failing finding whose cause ranks first; ``none`` when nothing fails."""
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
