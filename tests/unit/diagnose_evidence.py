"""Hand-built evidence for the diagnosis's offline tests, and the shape of a check's case.

Evidence is built from small typed frames: each builder returns a frame with exactly the columns and dtypes
its module declares (``kit.frames.from_rows``), one healthy row by default, and takes dicts of overrides, one
per row. ``healthy()`` is evidence on which every check passes; a case replaces the sections it is about.
Each ``test_diagnose_<subject>_checks.py`` holds the table of cases of one module of :mod:`kit.diagnose`, and
``assert_case`` / ``assert_cases_cover`` are what each of them asserts. Nothing here touches the network,
the lab or a clock that matters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pandas as pd

from kit import config, frames, iam, logparse, probe_core
from kit.diagnose.findings import Check, Evidence, Finding
from kit.diagnose.ranking import CHECKS
from kit.dynamo import direct_write, schema
from kit.dynamo.items import COVERAGE_COLUMNS, ITEMS_COLUMNS

REGION = "us-east-2"
OTHER_REGION = "us-east-1"
ACCOUNT = "123456789012"
TABLE = "chatgenius-connections"
INDEX = "workspaceIndex"
FUNCTION = "chatgenius-websocket"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
LAMBDA_URI = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{FUNCTION_ARN}/invocations"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"
INDEX_ARN = f"{TABLE_ARN}/index/{INDEX}"
CONNECTIONS_ARN = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123/prod/POST/@connections/*"
NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
CONN = "AbCdEfGhIjKlMnO="

# --------------------------------------------------------------------------------------------------------
# Builders: one healthy row each unless told otherwise; every frame has its module's declared columns
# --------------------------------------------------------------------------------------------------------


def _frame(columns: Mapping[str, str], default: Mapping[str, Any], rows: tuple[Mapping[str, Any], ...]):
    return frames.from_rows([dict(default) | dict(row) for row in rows or ({},)], columns)


def route(route_key: str, integration_type: str | None = "AWS_PROXY", **extra: Any) -> dict[str, Any]:
    """A route row; ``integration_type`` None is a route whose target is gone."""
    row: dict[str, Any] = {"route_key": route_key, "route_id": f"r-{route_key}", "ok": True}
    if integration_type is not None:
        uri = LAMBDA_URI if integration_type == "AWS_PROXY" else "http://127.0.0.1:3000/api/websocket"
        row |= {
            "target": f"integrations/i-{route_key}",
            "integration_id": f"i-{route_key}",
            "integration_type": integration_type,
            "integration_method": "POST",
            "integration_uri": uri,
            "function_name": FUNCTION if integration_type == "AWS_PROXY" else None,
            "function_arn": FUNCTION_ARN if integration_type == "AWS_PROXY" else None,
        }
    return row | extra


def routes(*rows: Mapping[str, Any]) -> pd.DataFrame:
    rows = rows or (route("$connect"), route("$disconnect"), route("message"))
    return frames.from_rows(list(rows), config.ROUTES_COLUMNS)


def functions(*rows: Mapping[str, Any]) -> pd.DataFrame:
    default = {
        "function_name": FUNCTION,
        "function_arn": FUNCTION_ARN,
        "region": REGION,
        "runtime": "python3.12",
        "handler": "app.handler",
        "log_format": "Text",
        "log_level": "INFO",
        "table_name": TABLE,
        "table_region": None,
        "environment": json.dumps({"TABLE_NAME": TABLE, "AUTH_MODE": "signed"}),
        "last_modified": NOW,
    }
    return _frame(config.FUNCTION_COLUMNS, default, rows)


DEPLOYED = NOW - timedelta(hours=1)  # when the stage's deployment was created


def stage(*rows: Mapping[str, Any]) -> pd.DataFrame:
    default = {
        "stage_name": "prod",
        "deployment_id": "dep1",
        "deployment_created": DEPLOYED,
        "last_updated": DEPLOYED,
        "auto_deploy": True,
        "logging_level": "INFO",
        "connect_logging_level": "INFO",
        "access_log_destination": "arn:aws:logs:us-east-2:123456789012:log-group:access",
        "access_log_format_present": True,
        "access_log_connection_id": True,
        "access_log_status": True,
        "access_log_integration_status": True,
        "access_log_error": True,
    }
    return _frame(config.STAGE_COLUMNS, default, rows)


# A schema difference: the table is not there.
MISSING_TABLE = {
    "kind": "table-missing",
    "severity": "error",
    "subject": TABLE,
    "message": f"Table {TABLE} does not exist in {REGION}.",
    "next_step": "Create it.",
}


def differences(*rows: Mapping[str, Any]) -> pd.DataFrame:
    """Schema differences; none by default (the table matches)."""
    frame = pd.DataFrame([dict(row) for row in rows], columns=list(schema.DIFFERENCE_COLUMNS))
    return frame.astype(dict(schema.DIFFERENCE_COLUMNS))


def items(*rows: Mapping[str, Any]) -> pd.DataFrame:
    default = {"connectionId": CONN, "workspaceId": "ws-1", "userId": "user-1", "timestamp": NOW.isoformat()}
    return _frame(ITEMS_COLUMNS, default, rows)


def coverage(*rows: Mapping[str, Any]) -> pd.DataFrame:
    default = {"connection_id": CONN, "workspace_id": "ws-1", "workspace_id_type": "S", "in_index": True}
    return _frame(COVERAGE_COLUMNS, default, rows)


_PERMISSIONS = {
    "put": ("dynamodb:PutItem", TABLE_ARN),
    "query": ("dynamodb:Query", INDEX_ARN),
    "delete": ("dynamodb:DeleteItem", TABLE_ARN),
    "manage": ("execute-api:ManageConnections", CONNECTIONS_ARN),
}


def permissions(**decisions: str | None) -> pd.DataFrame:
    """The role's verdicts: ``put``/``query``/``delete``/``manage`` = allowed (default), implicit-deny, ..."""
    rows = []
    for short, (action, resource) in _PERMISSIONS.items():
        decision = decisions.get(short, "allowed")
        rows.append(
            {
                "purpose": short,
                "action": action,
                "resource": resource,
                "decision": decision,
                "allowed": None if decision is None else decision == "allowed",
                "reason": f"{action} on {resource} is {decision}.",
            }
        )
    return frames.from_rows(rows, iam.PERMISSION_COLUMNS)


def log_lines(*rows: Mapping[str, Any]) -> pd.DataFrame:
    default = {
        "log_group": f"/aws/lambda/{FUNCTION}",
        "ts": NOW,
        "message": "[INFO] stored connection",
        "source": "lambda",
        "kind": "app",
        "request_id": "req-1",
        "level": "INFO",
        "connection_id": CONN,
        "route_key": "$connect",
        "app_outcome": "stored",
    }
    return _frame(logparse.LOG_COLUMNS, default, rows)


def invoked_uri(function_arn: str = FUNCTION_ARN) -> str:
    return f"https://lambda.{REGION}.amazonaws.com/2015-03-31/functions/{function_arn}/invocations"


def exec_line(request: str, message: str, **extra: Any) -> dict[str, Any]:
    """An API Gateway execution-log line of request ``request`` (a row for :func:`log_lines`)."""
    return {
        "log_group": "API-Gateway-Execution-Logs_abc123/prod",
        "message": f"({request}) {message}",
        "source": "apigw_exec",
        "kind": "exec_line",
        "request_id": None,
        "apigw_request_id": request,
        "connection_id": None,
        "route_key": None,
        "app_outcome": None,
    } | extra


def served(
    route_key: str = "$connect", function_arn: str = FUNCTION_ARN, request: str = "gw-1", ts: datetime = NOW
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The execution-log lines of a request the stage routed to ``route_key`` and sent to the function."""
    return (
        exec_line(request, f"WebSocket Request Route: [{route_key}]", route_key=route_key, ts=ts),
        exec_line(request, f"Endpoint request URI: {invoked_uri(function_arn)}", ts=ts),
    )


def invocations(*rows: Mapping[str, Any]) -> pd.DataFrame:
    default = {
        "request_id": "req-1",
        "function": FUNCTION,
        "start_ts": NOW,
        "route_key": "$connect",
        "connection_id": CONN,
        "status": "success",
        "app_outcome": "stored",
    }
    return _frame(logparse.INVOCATION_COLUMNS, default, rows)


def lifecycle(*rows: Mapping[str, Any]) -> pd.DataFrame:
    """Connections seen in the logs; by default one stored and still open."""
    default = {
        "connection_id": CONN,
        "connect_ts": NOW,
        "connect_status": 200,
        "connect_integration_status": 200,
        "connect_lambda_request_id": "req-1",
        "connect_invoked": True,
        "app_outcome": "stored",
        "item_written": True,
    }
    return _frame(logparse.LIFECYCLE_COLUMNS, default, rows)


def closed(connection_id: str, lifetime_ms: int, code: int = 1001) -> dict[str, Any]:
    return {"connection_id": connection_id, "lifetime_ms": lifetime_ms, "disconnect_code": code}


def probe_rows(
    *,
    http_status: int | None = 101,
    stored: bool | None = True,
    visible: bool | None = True,
    sent: bool | None = True,
    delivered: bool | None = True,
    clients: int = 1,
    detail: str = "",
) -> pd.DataFrame:
    """The probe's connect, item-stored, index-visible, send-message and deliver-message rows per client (ok
    NA: skipped); ``http_status`` None is a handshake that got no answer. ``detail`` goes on every row."""
    rows = []
    for client in range(clients):
        common = {"client": client, "user_hash": "4cdc5b1b155f", "ts": NOW, "connection_id": f"conn-{client}"}
        rows += [
            common
            | {"step": "connect", "ok": http_status == 101, "http_status": http_status, "detail": detail},
            common | {"step": "item-stored", "ok": stored, "detail": f"item-stored {stored} {detail}"},
            common | {"step": "index-visible", "ok": visible, "detail": f"index-visible {visible}"},
            common | {"step": "send-message", "ok": sent, "detail": f"send-message {sent} {detail}"},
            common | {"step": "deliver-message", "ok": delivered, "detail": f"deliver-message {delivered}"},
        ]
    return frames.from_rows(rows, probe_core.PROBE_COLUMNS)


PROBE_ITEM = "kit-probe-0123456789abcdef"


def direct_write_steps(**steps: Mapping[str, Any]) -> pd.DataFrame:
    """The storage test's four rows; every step worked by default, ``put={...}`` etc. override one step."""
    rows = []
    for step in direct_write.STEPS:
        operation = direct_write.OPERATIONS[step]
        default = {
            "step": step,
            "operation": operation,
            "ok": True,
            "attempts": 1,
            "latency_ms": 4.0,
            "connection_id": PROBE_ITEM,
            "detail": f"{operation} of {PROBE_ITEM} worked",
            "ts": NOW,
        }
        rows.append(default | dict(steps.get(step, {})))
    return frames.from_rows(rows, direct_write.DIRECT_WRITE_COLUMNS)


def failed_step(code: str | None, detail: str) -> dict[str, Any]:
    return {"ok": False, "error_code": code, "detail": detail}


def put_failed(code: str | None, detail: str) -> pd.DataFrame:
    """The storage test stopped at its PutItem: the other steps never ran."""
    return direct_write_steps(
        put=failed_step(code, detail), get={"ok": None}, query={"ok": None}, delete={"ok": None}
    )


API_ID = "abc123"
INVOKE_SOURCE_ARN = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/*"


def invoke_policy(source_arn: str = INVOKE_SOURCE_ARN, principal: str = "apigateway.amazonaws.com") -> str:
    """The $connect function's resource policy as GetPolicy gives it: one AddPermission statement."""
    statement = {
        "Sid": "apigateway-invoke",
        "Effect": "Allow",
        "Principal": {"Service": principal},
        "Action": "lambda:InvokeFunction",
        "Resource": FUNCTION_ARN,
        "Condition": {"ArnLike": {"AWS:SourceArn": source_arn}},
    }
    return json.dumps({"Version": "2012-10-17", "Id": "default", "Statement": [statement]})


def healthy() -> Evidence:
    """Evidence on which every check passes."""
    return Evidence(
        target="lab us-east-2",
        region=REGION,
        table=TABLE,
        index=INDEX,
        routes=routes(),
        functions=functions(),
        stage=stage(),
        tables={REGION: [TABLE]},
        schema_differences=differences(),
        items=items(),
        coverage=coverage(),
        permissions=permissions(),
        log_report=None,
        log_lines=log_lines({}, *served()),
        invocations=invocations(),
        lifecycle=lifecycle(),
        probe=probe_rows(),
        direct_write=direct_write_steps(),
        function_policies={FUNCTION_ARN: invoke_policy()},
        api_id=API_ID,
        route_selection_expression="$request.body.action",
    )


# --------------------------------------------------------------------------------------------------------
# A check's case: the evidence it changes, and the verdicts and causes it must give
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    check: Check
    changes: dict[str, Any]
    expected: list[tuple[str, str | None]]  # (verdict, cause) of each finding, in order
    evidence_has: str = ""  # a piece of text the first finding's evidence must hold
    problems: dict[str, str] = field(default_factory=dict)
    marks: tuple[Any, ...] = ()


PROBLEM = "AccessDeniedException from {}: not authorized"


def skip_case(case_id: str, check: Check, section: str, **changes: Any) -> Case:
    """The check's section could not be read: skip, and say why with the problem read_evidence recorded."""
    problem = PROBLEM.format(section)
    return Case(case_id, check, changes, [("skip", None)], problem, {section: problem})


SWALLOWED = {"app_outcome": "error", "item_written": False, "why": "the $connect invocation logged an error"}


def assert_case(case: Case) -> None:
    """The case's check, run on healthy evidence with the case's changes, gives the case's findings."""
    evidence = replace(healthy(), **case.changes, problems=dict(case.problems))
    found = case.check(evidence)
    assert all(isinstance(finding, Finding) for finding in found)
    assert [(f.verdict, f.cause) for f in found] == case.expected, found
    assert case.evidence_has in found[0].evidence, found[0].evidence
    for finding in found:
        assert finding.question
        if finding.verdict in ("fail", "warn"):
            assert finding.next_step, finding


def assert_cases_cover(cases: list[Case], module: ModuleType) -> None:
    """Every check of ``module`` in ``CHECKS`` has a pass, a fail or warn, and a skip among ``cases``."""
    assert any(check.__module__ == module.__name__ for check in CHECKS), module.__name__
    verdicts: dict[str, set[str]] = {
        check.__name__: set() for check in CHECKS if check.__module__ == module.__name__
    }
    for case in cases:
        if not case.marks:
            verdicts[case.check.__name__] |= {verdict for verdict, _ in case.expected}
    lacking = {
        name: seen
        for name, seen in verdicts.items()
        if "pass" not in seen or not seen & {"fail", "warn"} or "skip" not in seen
    }
    assert lacking == {}
