"""kit.diagnose offline: every check on hand-built evidence (pass, fail or warn, skip), ranking, JSON.

Evidence is built from small typed frames: each builder below returns a frame with exactly the columns and
dtypes its module declares (``kit.frames.from_rows``), one healthy row by default, and takes dicts of
overrides, one per row. ``healthy()`` is evidence on which every check passes; a case replaces the sections
it is about. Nothing here touches the network, the lab or a clock that matters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

import pandas as pd
import pytest

from kit import causes, config, diagnose, frames, iam, logparse, probe_core
from kit.diagnose import CHECKS, FINDING_COLUMNS, Evidence, Finding
from kit.dynamo import direct_write, schema
from kit.dynamo import table as dynamo
from kit.errors import AwsError, ConfigurationError, EngineError
from kit.lab import gateway_core

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


def stage(*rows: Mapping[str, Any]) -> pd.DataFrame:
    default = {
        "stage_name": "prod",
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


def differences(*rows: Mapping[str, Any]) -> pd.DataFrame:
    """Schema differences; none by default (the table matches)."""
    frame = pd.DataFrame([dict(row) for row in rows], columns=list(schema.DIFFERENCE_COLUMNS))
    return frame.astype(dict(schema.DIFFERENCE_COLUMNS))


def items(*rows: Mapping[str, Any]) -> pd.DataFrame:
    default = {"connectionId": CONN, "workspaceId": "ws-1", "userId": "user-1", "timestamp": NOW.isoformat()}
    return _frame(dynamo.ITEMS_COLUMNS, default, rows)


def coverage(*rows: Mapping[str, Any]) -> pd.DataFrame:
    default = {"connection_id": CONN, "workspace_id": "ws-1", "workspace_id_type": "S", "in_index": True}
    return _frame(dynamo.COVERAGE_COLUMNS, default, rows)


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
        log_lines=log_lines(),
        invocations=invocations(),
        lifecycle=lifecycle(),
        probe=probe_rows(),
        direct_write=direct_write_steps(),
    )


def test_builders_keep_the_declared_contracts() -> None:
    built = {
        "routes": (routes(), config.ROUTES_COLUMNS),
        "functions": (functions(), config.FUNCTION_COLUMNS),
        "stage": (stage(), config.STAGE_COLUMNS),
        "differences": (differences(), schema.DIFFERENCE_COLUMNS),
        "items": (items(), dynamo.ITEMS_COLUMNS),
        "coverage": (coverage(), dynamo.COVERAGE_COLUMNS),
        "permissions": (permissions(), iam.PERMISSION_COLUMNS),
        "log_lines": (log_lines(), logparse.LOG_COLUMNS),
        "invocations": (invocations(), logparse.INVOCATION_COLUMNS),
        "lifecycle": (lifecycle(), logparse.LIFECYCLE_COLUMNS),
        "probe": (probe_rows(), probe_core.PROBE_COLUMNS),
        "direct_write": (direct_write_steps(), direct_write.DIRECT_WRITE_COLUMNS),
    }
    for name, (frame, columns) in built.items():
        assert {column: str(dtype) for column, dtype in frame.dtypes.items()} == dict(columns), name


def test_healthy_evidence_passes_every_check() -> None:
    findings = diagnose.run_checks(healthy())
    assert findings["verdict"].tolist() == ["pass"] * len(findings), diagnose.summary_text(
        diagnose.Diagnosis(diagnose.rank(findings), findings)
    )
    assert set(findings["check"]) >= {"connect-route", "iam-put", "probe", "apigw-logs"}
    assert diagnose.rank(findings)["id"] == "none"


# --------------------------------------------------------------------------------------------------------
# The checks: one table of cases
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    check: diagnose.Check
    changes: dict[str, Any]
    expected: list[tuple[str, str | None]]  # (verdict, cause) of each finding, in order
    evidence_has: str = ""  # a piece of text the first finding's evidence must hold
    problems: dict[str, str] = field(default_factory=dict)
    marks: tuple[Any, ...] = ()


PROBLEM = "AccessDeniedException from {}: not authorized"


def _skip_case(case_id: str, check: diagnose.Check, section: str, **changes: Any) -> Case:
    """The check's section could not be read: skip, and say why with the problem gather recorded."""
    problem = PROBLEM.format(section)
    return Case(case_id, check, changes, [("skip", None)], problem, {section: problem})


ROUTE_DELETED = config.routes_frame(
    [{"RouteKey": "$disconnect", "RouteId": "r2", "Target": "integrations/i1"}],
    [{"IntegrationId": "i1", "IntegrationType": "AWS_PROXY", "IntegrationUri": LAMBDA_URI}],
)
ROUTE_DANGLING = config.routes_frame(
    [{"RouteKey": "$connect", "RouteId": "r1", "Target": "integrations/gone"}],
    [{"IntegrationId": "i1", "IntegrationType": "AWS_PROXY", "IntegrationUri": LAMBDA_URI}],
)
MISSING_TABLE = {
    "kind": "table-missing",
    "severity": "error",
    "subject": TABLE,
    "message": f"Table {TABLE} does not exist in {REGION}.",
    "next_step": "Create it.",
}
MISSING_INDEX = {
    "kind": "index-missing",
    "severity": "error",
    "subject": INDEX,
    "message": f"{TABLE} has no GSI {INDEX}.",
    "next_step": "Add the index.",
}
BILLING = {"kind": "billing-mode", "severity": "warning", "subject": TABLE, "message": "provisioned"}
ERROR_LINE = {"kind": "error", "level": "ERROR", "message": "[ERROR] PutItem failed"}
PLATFORM_ONLY = log_lines({"kind": "start", "level": None, "message": "START RequestId: req-1"})
SWALLOWED = {"app_outcome": "error", "item_written": False, "why": "the $connect invocation logged an error"}
NO_HANDSHAKE = "no $connect seen in the logs or by a probe"

CONN_B = "QrStUvWxYz01234="
EMULATOR_ID = "3f2b6c1e-9a4d-4c1b-8e2f-6a7b8c9d0e1f"
LATER = NOW + timedelta(seconds=5)
NOT_A_WRITE = {"app_outcome": None, "message": '{"route": "$connect", "outcome": null}'}


def gateway_line(request_id: str, route_key: str, event_type: str, **extra: Any) -> dict[str, Any]:
    """An access-log line: API Gateway invoked Lambda request ``request_id`` for ``route_key``."""
    return {
        "log_group": "access",
        "source": "apigw_access",
        "kind": "access",
        "request_id": None,
        "level": None,
        "integration_request_id": request_id,
        "route_key": route_key,
        "event_type": event_type,
        "app_outcome": None,
        "message": "{}",
    } | extra


def gateway_request(
    request_id: str, connection_id: str, event_type: str, status: int, error: str
) -> list[dict[str, Any]]:
    """One API Gateway request, as its execution log writes it: a line naming the client (and the status it
    got), and the ERROR line that says why, which names no client (it shares only the request id)."""
    common = {
        "log_group": "API-Gateway-Execution-Logs_abc123/prod",
        "source": "apigw_exec",
        "kind": "exec_line",
        "request_id": None,
        "apigw_request_id": request_id,
        "route_key": None,
        "app_outcome": None,
        "level": "ERROR",
    }
    return [
        common | {"connection_id": None, "error_message": error, "message": f"({request_id}) {error}"},
        common
        | {
            "connection_id": connection_id,
            "event_type": event_type,
            "http_status": status,
            "error_message": f"client [Connection Id: {connection_id}] rejected with status code [{status}]",
            "message": f"({request_id}) rejected",
        },
    ]


NO_INVOKE_PERMISSION = "configuration error: Invalid permissions on Lambda function"
NO_ROUTE = "no route matches route selection value [] and the API has no $default route"
REFUSED_500 = lifecycle(
    {
        "connect_status": 500,
        "connect_invoked": False,
        "app_outcome": None,
        "item_written": False,
        "why": "none ran",
    }
)
FORBIDDEN_FRAME = '{"message": "Forbidden", "connectionId":"conn-0", "requestId":"r-9"}'


# Writing from the wrong event: $connect (req-1) writes nothing; the client's "join" (req-2) stores it.
JOIN_LINES = log_lines(
    NOT_A_WRITE,
    {"request_id": "req-2", "ts": LATER, "route_key": "join", "aws_operation": "PutItem", "message": "put"},
)
JOIN_CALLS = invocations(
    {"app_outcome": None},
    {"request_id": "req-2", "start_ts": LATER, "route_key": "join", "aws_operation": "PutItem"},
)
# The same with text lines that name no route: API Gateway's access log says which route each request was.
JOIN_TEXT_LINES = log_lines(
    {"route_key": None, "app_outcome": None, "message": f"Connection attempt {CONN} for workspace ws-1"},
    {"request_id": "req-2", "ts": LATER, "route_key": None, "message": f"Stored connection {CONN}"},
    gateway_line("req-1", "$connect", "CONNECT"),
    gateway_line("req-2", "join", "MESSAGE", ts=LATER),
)
JOIN_TEXT_CALLS = invocations(
    {"route_key": None, "app_outcome": None}, {"request_id": "req-2", "route_key": None}
)
# Not awaited: connection CONN's write (or its error) surfaces in CONN_B's $connect invocation (req-2).
LATE_CALLS = invocations(
    {"route_key": None, "app_outcome": None},
    {"request_id": "req-2", "start_ts": LATER, "route_key": None, "connection_id": CONN_B},
)
LATE_LIFECYCLE = lifecycle(
    {"app_outcome": None, "item_written": None},
    {"connection_id": CONN_B, "connect_ts": LATER, "connect_lambda_request_id": "req-2"},
)


def late_lines(write: Mapping[str, Any]) -> pd.DataFrame:
    return log_lines(
        {"route_key": None, "app_outcome": None, "message": f"Connection attempt {CONN} for workspace ws-1"},
        {"request_id": "req-2", "ts": LATER, "route_key": None} | dict(write),
        {
            "request_id": "req-2",
            "ts": LATER,
            "route_key": None,
            "connection_id": CONN_B,
            "app_outcome": None,
            "message": f"Connection attempt {CONN_B} for workspace ws-1",
        },
    )


STORED_LATE = {"message": f"Stored connection {CONN}"}
PUT_DENIED_LATE = {
    "app_outcome": "error",
    "aws_operation": "PutItem",
    "app_error_code": "AccessDeniedException",
    "message": "An error occurred (AccessDeniedException) when calling the PutItem operation",
}
SILENT_B = {
    "log_lines": log_lines(
        {}, {"request_id": "req-2", "connection_id": CONN_B, "app_outcome": None, "message": "connecting"}
    ),
    "lifecycle": lifecycle({}, {"connection_id": CONN_B, "connect_lambda_request_id": "req-2"}),
    "invocations": invocations({}, {"request_id": "req-2", "connection_id": CONN_B, "app_outcome": None}),
}
TALKED_FIRST = log_lines(NOT_A_WRITE, gateway_line("req-9", "join", "MESSAGE", ts=NOW + timedelta(seconds=4)))


CASES: list[Case] = [
    # connect-route
    Case("connect-route pass", diagnose.check_connect_route, {}, [("pass", None)], "AWS_PROXY"),
    Case(
        "connect-route no $connect row",
        diagnose.check_connect_route,
        {"routes": routes(route("$disconnect"))},
        [("fail", "connect-route-missing")],
        "get_routes has no $connect route",
    ),
    Case(
        "connect-route target removed",
        diagnose.check_connect_route,
        {"routes": routes(route("$connect", None))},
        [("fail", "connect-route-missing")],
        "no target",
    ),
    Case(
        "connect-route deleted (routes_frame placeholder)",
        diagnose.check_connect_route,
        {"routes": ROUTE_DELETED},
        [("fail", "connect-route-missing")],
    ),
    Case(
        "connect-route deleted says so",
        diagnose.check_connect_route,
        {"routes": ROUTE_DELETED},
        [("fail", "connect-route-missing")],
        "no $connect route",
    ),
    Case(
        "connect-route targets a deleted integration",
        diagnose.check_connect_route,
        {"routes": ROUTE_DANGLING},
        [("fail", "connect-route-missing")],
    ),
    _skip_case("connect-route skip", diagnose.check_connect_route, "api", routes=routes(route("x"))),
    # connection-id-mapping
    Case("mapping pass lambda", diagnose.check_connection_id_mapping, {}, [("pass", None)], "connectionId"),
    Case(
        "mapping pass http mapped",
        diagnose.check_connection_id_mapping,
        {"routes": routes(route("$connect", "HTTP_PROXY", connection_id_mapped=True))},
        [("pass", None)],
        "mapped",
    ),
    Case(
        "mapping fail http unmapped",
        diagnose.check_connection_id_mapping,
        {"routes": routes(route("$connect", "HTTP_PROXY", connection_id_mapped=False))},
        [("fail", "connection-id-not-mapped")],
        "HTTP_PROXY",
    ),
    Case(
        "mapping fail http NA",
        diagnose.check_connection_id_mapping,
        {"routes": routes(route("$connect", "HTTP", connection_id_mapped=None))},
        [("fail", "connection-id-not-mapped")],
        "RequestParameters {}",
    ),
    Case(
        "mapping skip no $connect",
        diagnose.check_connection_id_mapping,
        {"routes": routes(route("$disconnect"))},
        [("skip", None)],
        "no $connect route",
    ),
    Case(
        "mapping skip when the route is deleted",
        diagnose.check_connection_id_mapping,
        {"routes": ROUTE_DELETED},
        [("skip", None)],
        "no $connect route",
    ),
    Case(
        "mapping skip when the route has no target",
        diagnose.check_connection_id_mapping,
        {"routes": routes(route("$connect", None))},
        [("skip", None)],
    ),
    Case(
        "mapping skip when the route targets a deleted integration",
        diagnose.check_connection_id_mapping,
        {"routes": ROUTE_DANGLING},
        [("skip", None)],
    ),
    Case(
        "mapping skip api unreadable",
        diagnose.check_connection_id_mapping,
        {"routes": routes(route("x"))},
        [("skip", None)],
        PROBLEM.format("api"),
        {"api": PROBLEM.format("api")},
    ),
    # table-structure
    Case("table pass", diagnose.check_table, {}, [("pass", None)], "matches"),
    Case(
        "table pass with a warning",
        diagnose.check_table,
        {"schema_differences": differences(BILLING)},
        [("pass", None)],
    ),
    Case(
        "table missing",
        diagnose.check_table,
        {"schema_differences": differences(MISSING_TABLE)},
        [("fail", "table-not-found")],
        "does not exist",
    ),
    Case(
        "table without its index is a schema mismatch",
        diagnose.check_table,
        {"schema_differences": differences(MISSING_INDEX, BILLING)},
        [("fail", "table-schema-mismatch")],
        "has no GSI",
    ),
    _skip_case("table skip", diagnose.check_table, "table", schema_differences=None),
    # env-table
    Case("env pass", diagnose.check_function_table, {}, [("pass", None)], f"TABLE_NAME={TABLE} in {REGION}"),
    Case(
        "env unset",
        diagnose.check_function_table,
        {"functions": functions({"table_name": None})},
        [("warn", None)],
        "not set",
    ),
    Case(
        "env typo",
        diagnose.check_function_table,
        {"functions": functions({"table_name": "chatgenius-connection"})},
        [("fail", "table-not-found")],
        "TABLE_NAME=chatgenius-connection",
    ),
    Case(
        "env wrong region",
        diagnose.check_function_table,
        {
            "functions": functions({"table_region": OTHER_REGION}),
            "tables": {REGION: [TABLE], OTHER_REGION: [TABLE]},
        },
        [("fail", "wrong-region")],
        f"TABLE_REGION={OTHER_REGION}",
    ),
    Case(
        "env other region without the table",
        diagnose.check_function_table,
        {
            "functions": functions({"table_region": OTHER_REGION}),
            "tables": {REGION: [TABLE], OTHER_REGION: []},
        },
        [("fail", "table-not-found")],
        f"{OTHER_REGION} has no such table",
    ),
    Case(
        "env another existing table",
        diagnose.check_function_table,
        {"functions": functions({"table_name": "archive"}), "tables": {REGION: [TABLE, "archive"]}},
        [("warn", None)],
        "differs",
    ),
    Case(
        "env one finding per function",
        diagnose.check_function_table,
        {"functions": functions({}, {"function_name": "other", "table_name": "typo"})},
        [("pass", None), ("fail", "table-not-found")],
    ),
    Case(
        "env a function whose configuration could not be read",
        diagnose.check_function_table,
        {
            "functions": pd.concat(
                [
                    functions(),
                    config.function_frame(
                        [{"FunctionName": "gone", "Error": {"Code": "ResourceNotFoundException"}}]
                    ),
                ],
                ignore_index=True,
            )
        },
        [("pass", None), ("warn", None)],
    ),
    _skip_case("env skip", diagnose.check_function_table, "functions", functions=functions().iloc[0:0]),
    # iam-put
    Case("put pass", diagnose.check_put_permission, {}, [("pass", None)], "allowed"),
    Case(
        "put implicit deny",
        diagnose.check_put_permission,
        {"permissions": permissions(put="implicit-deny")},
        [("fail", "put-access-denied")],
        "implicit-deny",
    ),
    Case(
        "put explicit deny",
        diagnose.check_put_permission,
        {"permissions": permissions(put="explicit-deny")},
        [("fail", "put-access-denied")],
        "explicit-deny",
    ),
    _skip_case("put skip", diagnose.check_put_permission, "iam", permissions=None),
    Case(
        "put skip empty frame",
        diagnose.check_put_permission,
        {"permissions": permissions().iloc[0:0]},
        [("skip", None)],
        "no execution role",
    ),
    # iam-index-query
    Case("query pass", diagnose.check_index_permission, {}, [("pass", None)], "/index/"),
    Case(
        "query denied",
        diagnose.check_index_permission,
        {"permissions": permissions(query="implicit-deny")},
        [("fail", "index-access-denied")],
        "implicit-deny",
    ),
    _skip_case("query skip", diagnose.check_index_permission, "iam", permissions=None),
    # iam-other
    Case("other pass", diagnose.check_other_permissions, {}, [("pass", None)], "2 permissions allowed"),
    Case(
        "other denied",
        diagnose.check_other_permissions,
        {"permissions": permissions(delete="implicit-deny", put="implicit-deny")},
        [("warn", None)],
        "dynamodb:DeleteItem on",
    ),
    _skip_case("other skip", diagnose.check_other_permissions, "iam", permissions=None),
    # handler-crash
    Case("crash pass", diagnose.check_handshakes, {}, [("pass", None)], "[200]"),
    Case(
        "crash from the logs",
        diagnose.check_handshakes,
        {
            "lifecycle": lifecycle({"connect_status": 502}),
            "invocations": invocations(
                {"status": "error", "error_type": "Runtime.HandlerNotFound", "error_message": "no app.handle"}
            ),
            "probe": None,
        },
        [("fail", "handler-crash")],
        "1 of 1 handshakes answered 502; Runtime.HandlerNotFound: no app.handle",
    ),
    Case(
        "crash from the probe",
        diagnose.check_handshakes,
        {"lifecycle": None, "probe": probe_rows(http_status=502, stored=None, visible=None)},
        [("fail", "handler-crash")],
        "answered 502",
    ),
    Case(
        "crash skip",
        diagnose.check_handshakes,
        {"lifecycle": None, "probe": None},
        [("skip", None)],
        NO_HANDSHAKE,
        {"logs": PROBLEM.format("logs")},
    ),
    # handshake (what the probe and the logs saw refused, whatever the reason)
    Case(
        "handshake pass",
        diagnose.check_handshake_refusals,
        {},
        [("pass", None)],
        "1 probe handshakes accepted",
    ),
    Case(
        "handshake refused, with the gateway's own words",
        diagnose.check_handshake_refusals,
        {
            "probe": probe_rows(
                http_status=500, stored=None, visible=None, sent=None, delivered=None, detail="HTTP 500"
            ),
            "lifecycle": REFUSED_500,
            "log_lines": log_lines(*gateway_request("g-1", CONN, "CONNECT", 500, NO_INVOKE_PERMISSION)),
        },
        [("fail", "handshake-refused")],
        "1 of 1 probe handshakes refused (HTTP 500 ×1): HTTP 500; 1 $connect requests in the logs answered "
        f"HTTP 500 ×1; the logs say: none ran; API Gateway's execution log: {NO_INVOKE_PERMISSION}",
    ),
    Case(
        "handshake refused by the handler, seen by the probe alone",
        diagnose.check_handshake_refusals,
        {
            "probe": probe_rows(http_status=400, stored=None, visible=None, detail="HTTP 400"),
            "lifecycle": None,
        },
        [("fail", "handshake-refused")],
        "1 of 1 probe handshakes refused (HTTP 400 ×1): HTTP 400",
    ),
    Case(
        "handshake refused, the probe's 502 too (handler-crash ranks first)",
        diagnose.check_handshake_refusals,
        {"probe": probe_rows(http_status=502, stored=None, visible=None), "lifecycle": None},
        [("fail", "handshake-refused")],
        "HTTP 502 ×1",
    ),
    Case(
        "handshake refused with 400, and the logs say why",
        diagnose.check_handshake_refusals,
        {
            "probe": probe_rows(http_status=400, stored=None, visible=None, detail="HTTP 400"),
            "lifecycle": lifecycle({"connect_status": 400, "why": "the handler answered 400"}),
        },
        [("fail", "handshake-refused")],
        "1 of 1 probe handshakes refused (HTTP 400 ×1): HTTP 400; the logs say: the handler answered 400",
    ),
    Case(
        "handshake refused in the logs without a probe",
        diagnose.check_handshake_refusals,
        {"probe": None, "lifecycle": lifecycle({"connect_status": 503}, {"connect_status": 200})},
        [("fail", "handshake-refused")],
        "1 $connect requests in the logs answered HTTP 503 ×1",
    ),
    Case(
        "handshake a 502 in the logs is the crash check's",
        diagnose.check_handshake_refusals,
        {"probe": None, "lifecycle": lifecycle({"connect_status": 502})},
        [("pass", None)],
        "statuses in the logs: [502]",
    ),
    Case(
        "handshake a 4xx in the logs may be a bad client",
        diagnose.check_handshake_refusals,
        {"probe": None, "lifecycle": lifecycle({"connect_status": 499}, {"connect_status": 401})},
        [("pass", None)],
        "statuses in the logs: [401, 499]",
    ),
    Case(
        "handshake no answer at all is an unreachable target",
        diagnose.check_handshake_refusals,
        {
            "probe": probe_rows(
                http_status=None, stored=None, visible=None, detail="connection refused by ws://x"
            )
        },
        [("fail", "target-unreachable")],
        "1 of 1 probe connections got no answer to the handshake: connection refused by ws://x",
    ),
    Case(
        "handshake some unanswered, some refused",
        diagnose.check_handshake_refusals,
        {
            "probe": pd.concat(
                [probe_rows(http_status=None), probe_rows(http_status=500).assign(client=1)],
                ignore_index=True,
            ),
            "lifecycle": None,
        },
        [("fail", "target-unreachable"), ("fail", "handshake-refused")],
        "1 of 2 probe connections got no answer",
    ),
    Case(
        "handshake skip",
        diagnose.check_handshake_refusals,
        {"probe": None, "lifecycle": None},
        [("skip", None)],
        PROBLEM.format("probe"),
        {"probe": PROBLEM.format("probe")},
    ),
    # delivery (the probe's send and deliver steps)
    Case("delivery pass", diagnose.check_delivery, {}, [("pass", None)], "1 broadcasts reached every other"),
    Case(
        "delivery refused by the gateway, with its own words",
        diagnose.check_delivery,
        {
            "probe": probe_rows(sent=False, delivered=False, detail=FORBIDDEN_FRAME),
            "log_lines": log_lines(*gateway_request("g-2", "conn-0", "MESSAGE", 403, NO_ROUTE)),
        },
        [("fail", "not-delivered")],
        f"send-message (client 0): send-message False {FORBIDDEN_FRAME}; deliver-message (client 0): "
        f"deliver-message False; API Gateway's execution log: {NO_ROUTE}",
    ),
    Case(
        "delivery sent but never received",
        diagnose.check_delivery,
        {"probe": probe_rows(delivered=False, clients=2)},
        [("fail", "not-delivered")],
        "deliver-message (client 0): deliver-message False; deliver-message (client 1): deliver-message False",
    ),
    Case(
        "delivery three failed steps quote two",
        diagnose.check_delivery,
        {"probe": probe_rows(sent=False, delivered=False, clients=2)},
        [("fail", "not-delivered")],
        "and 2 more failed steps",
    ),
    Case(
        "delivery a lone client's refused frame",
        diagnose.check_delivery,
        {"probe": probe_rows(sent=False, delivered=None)},
        [("fail", "not-delivered")],
        "send-message (client 0)",
    ),
    Case(
        "delivery a lone client with nobody to deliver to",
        diagnose.check_delivery,
        {"probe": probe_rows(delivered=None)},
        [("pass", None)],
        "1 frames sent without an error frame; no other client",
    ),
    Case(
        "delivery an oversize frame closed is not a delivery",
        diagnose.check_delivery,
        {
            "probe": pd.concat(
                [
                    probe_rows(),
                    frames.from_rows(
                        [{"client": 0, "step": "send-oversize", "ok": False, "detail": "closed 1009"}],
                        probe_core.PROBE_COLUMNS,
                    ),
                ],
                ignore_index=True,
            )
        },
        [("pass", None)],
        "1 broadcasts",
    ),
    Case(
        "delivery skip when nothing was exchanged",
        diagnose.check_delivery,
        {
            "probe": probe_rows(
                http_status=500, stored=None, visible=None, sent=None, delivered=None, detail="x"
            )
        },
        [("skip", None)],
        "no message was exchanged: send-message None x",
    ),
    _skip_case("delivery skip", diagnose.check_delivery, "probe", probe=None),
    # error-handling
    Case("swallowed pass", diagnose.check_swallowed_errors, {}, [("pass", None)], "no $connect answered 200"),
    Case(
        "swallowed access denied",
        diagnose.check_swallowed_errors,
        {"lifecycle": lifecycle(SWALLOWED | {"app_error_code": "AccessDeniedException"})},
        [("fail", "error-swallowed")],
        "{'AccessDeniedException': 1}",
    ),
    Case(
        "swallowed resource not found",
        diagnose.check_swallowed_errors,
        {"lifecycle": lifecycle(SWALLOWED | {"app_error_code": "ResourceNotFoundException"})},
        [("fail", "error-swallowed"), ("fail", "table-not-found")],
        CONN,
    ),
    Case(
        "an error answered 500 is not swallowed",
        diagnose.check_swallowed_errors,
        {
            "lifecycle": lifecycle(
                SWALLOWED | {"connect_status": 500, "app_error_code": "AccessDeniedException"}
            )
        },
        [("pass", None)],
    ),
    _skip_case("swallowed skip", diagnose.check_swallowed_errors, "logs", lifecycle=None),
    # app-logs
    Case("app logs pass", diagnose.check_app_logs, {}, [("pass", None)], "1 application lines"),
    Case(
        "app logs pass on an error line",
        diagnose.check_app_logs,
        {"log_lines": log_lines(ERROR_LINE)},
        [("pass", None)],
    ),
    Case(
        "app logs missing",
        diagnose.check_app_logs,
        {"log_lines": PLATFORM_ONLY, "functions": functions({"log_level": "WARN"})},
        [("warn", "app-logs-missing")],
        "log level: WARN",
    ),
    _skip_case("app logs skip", diagnose.check_app_logs, "logs", invocations=None, log_lines=None),
    Case(
        "app logs skip no lines", diagnose.check_app_logs, {"log_lines": None}, [("skip", None)], "not read"
    ),
    # index-coverage
    Case("coverage pass", diagnose.check_items_and_index, {}, [("pass", None)], "1 items, all in the index"),
    Case(
        "coverage workspace absent",
        diagnose.check_items_and_index,
        {
            "coverage": coverage(
                {},
                {
                    "connection_id": "x1",
                    "in_index": False,
                    "why_not": "attribute-absent",
                    "workspace_id": None,
                },
            )
        },
        [("fail", "workspace-id-missing")],
        "1 of 2 items are not in the index",
    ),
    Case(
        "coverage wrong type",
        diagnose.check_items_and_index,
        {"coverage": coverage({"in_index": False, "why_not": "wrong-type", "workspace_id_type": "N"})},
        [("fail", "workspace-id-missing")],
        "wrong-type",
    ),
    Case(
        "coverage lagging index is not a fault",
        diagnose.check_items_and_index,
        {"coverage": coverage({"in_index": False, "why_not": "not-yet-in-index"})},
        [("pass", None)],
    ),
    _skip_case("coverage skip", diagnose.check_items_and_index, "index", coverage=None),
    Case(
        "coverage skip empty table",
        diagnose.check_items_and_index,
        {"coverage": coverage().iloc[0:0]},
        [("skip", None)],
        "holds no item",
    ),
    # probe
    Case("probe pass", diagnose.check_probe_parameters, {}, [("pass", None)], "1 probe connections"),
    Case(
        "probe never stored",
        diagnose.check_probe_parameters,
        {"probe": probe_rows(stored=False, visible=None, clients=2)},
        [("fail", "not-stored")],
        "2 of 2 probe connections were never stored",
    ),
    Case(
        "probe not in the index",
        diagnose.check_probe_parameters,
        {"probe": probe_rows(visible=False)},
        [("fail", "workspace-id-missing")],
        "index-visible False",
    ),
    Case(
        "probe skipped steps are neither failures nor passes",
        diagnose.check_probe_parameters,
        {"probe": probe_rows(http_status=500, stored=None, visible=None)},
        [("skip", None)],
        "no probe connection opened",
    ),
    Case(
        "probe one of two stored is still a symptom",
        diagnose.check_probe_parameters,
        {"probe": pd.concat([probe_rows(), probe_rows(stored=False, visible=None).assign(client=1)])},
        [("fail", "not-stored")],
        "1 of 2 probe connections",
    ),
    _skip_case("probe skip", diagnose.check_probe_parameters, "probe", probe=None),
    Case(
        "probe skip read-only",
        diagnose.check_probe_parameters,
        {"probe": None},
        [("skip", None)],
        "no probe was run",
    ),
    # early-disconnect
    Case("early pass open", diagnose.check_early_disconnect, {}, [("pass", None)], "has been closed yet"),
    Case(
        "early pass long-lived",
        diagnose.check_early_disconnect,
        {
            "lifecycle": lifecycle(
                *(closed(c, ms) for c, ms in [("a", 60_000), ("b", 45_000), ("c", 30_000), ("d", 500)])
            )
        },
        [("pass", None)],
        "median lifetime",
    ),
    Case(
        "early disconnect",
        diagnose.check_early_disconnect,
        {"lifecycle": lifecycle(closed("a", 300, 1000), closed("b", 400, 1001))},
        [("fail", "early-disconnect")],
        "close codes {1000: 1, 1001: 1}",
    ),
    Case(
        "early but the connection talked first",
        diagnose.check_early_disconnect,
        {
            "lifecycle": lifecycle(closed("a", 300)),
            "log_lines": log_lines({"event_type": "MESSAGE", "connection_id": "a", "source": "apigw_access"}),
        },
        [("pass", None)],
    ),
    _skip_case("early skip", diagnose.check_early_disconnect, "logs", lifecycle=None),
    # connect-invoked
    Case("invoked pass", diagnose.check_connect_invocations, {}, [("pass", None)], "each invoked"),
    Case(
        "not invoked",
        diagnose.check_connect_invocations,
        {"lifecycle": lifecycle({"connect_invoked": False})},
        [("warn", None)],
        "1 connections with no integration invoked: 1 opened, 0 refused",
    ),
    Case(
        "not invoked and refused",
        diagnose.check_connect_invocations,
        {"lifecycle": lifecycle({"connect_invoked": False, "connect_status": 500}, {"connect_status": 400})},
        [("warn", None)],
        "1 connections with no integration invoked: 0 opened, 1 refused",
    ),
    _skip_case("invoked skip", diagnose.check_connect_invocations, "logs", lifecycle=None),
    # email-as-token
    Case("email pass", diagnose.check_email_token, {}, [("pass", None)], "no e-mail"),
    Case(
        "email in items",
        diagnose.check_email_token,
        {"items": items({"userId": "alice@example.com"}, {"userId": "bob"})},
        [("warn", "email-as-token")],
        "1 stored userId values",
    ),
    Case(
        "email auth mode",
        diagnose.check_email_token,
        {"functions": functions({"environment": json.dumps({"AUTH_MODE": "email"})})},
        [("warn", "email-as-token")],
        "AUTH_MODE=email on 1 function(s)",
    ),
    Case(
        "email skip when neither items nor functions were read",
        diagnose.check_email_token,
        {"items": None, "functions": functions().iloc[0:0]},
        [("skip", None)],
        PROBLEM.format("items"),
        {"items": PROBLEM.format("items")},
    ),
    # apigw-logs
    Case("apigw logs pass", diagnose.check_logging_config, {}, [("pass", None)], "execution logs INFO"),
    Case(
        "apigw logs off",
        diagnose.check_logging_config,
        {"stage": stage({"logging_level": "OFF", "access_log_format_present": False})},
        [("warn", None)],
        "execution logging is OFF; no access log",
    ),
    Case(
        "apigw access log without the connection id",
        diagnose.check_logging_config,
        {"stage": stage({"access_log_connection_id": False})},
        [("warn", None)],
        "lacks $context.connectionId",
    ),
    _skip_case("apigw logs skip", diagnose.check_logging_config, "api", stage=stage().iloc[0:0]),
    # direct-write
    Case("direct write pass", diagnose.check_direct_write, {}, [("pass", None)], f"PutItem of {PROBE_ITEM}"),
    Case(
        "direct write denied points at the table",
        diagnose.check_direct_write,
        {
            "direct_write": put_failed(
                "AccessDeniedException", "PutItem on t failed with AccessDeniedException"
            )
        },
        [("fail", "table-write-denied")],
        "the execution role plays no part",
    ),
    Case(
        "direct write to a missing table",
        diagnose.check_direct_write,
        {
            "direct_write": put_failed(
                "ResourceNotFoundException", "PutItem failed with ResourceNotFoundException"
            )
        },
        [("fail", "table-not-found")],
        "ResourceNotFoundException",
    ),
    Case(
        "direct write query on a missing index",
        diagnose.check_direct_write,
        {"direct_write": direct_write_steps(query=failed_step("ValidationException", "no such index"))},
        [("fail", "table-schema-mismatch")],
        "no such index",
    ),
    Case(
        "direct write query on a missing index, as moto answers it",
        diagnose.check_direct_write,
        {"direct_write": direct_write_steps(query=failed_step("ResourceNotFoundException", "no index"))},
        [("fail", "table-schema-mismatch")],
        "no index",
    ),
    Case(
        "direct write another error names its code",
        diagnose.check_direct_write,
        {
            "direct_write": direct_write_steps(
                get=failed_step("ProvisionedThroughputExceededException", "GetItem throttled")
            )
        },
        [("fail", "evidence-unread")],
        "GetItem throttled",
    ),
    Case(
        "direct write a put refused with another error is an item not stored",
        diagnose.check_direct_write,
        {"direct_write": put_failed("InternalServerError", "PutItem failed with InternalServerError")},
        [("fail", "not-stored")],
        "InternalServerError",
    ),
    Case(
        "direct write with the kit's credentials refused",
        diagnose.check_direct_write,
        {"direct_write": direct_write_steps(put=failed_step("ExpiredTokenException", "token expired"))},
        [("fail", "evidence-unread")],
        "token expired",
    ),
    Case(
        "direct write to an endpoint that does not answer",
        diagnose.check_direct_write,
        {"direct_write": put_failed("EndpointConnectionError", "Could not connect to the endpoint URL")},
        [("fail", "target-unreachable")],
        "Could not connect",
    ),
    Case(
        "direct write the index lags",
        diagnose.check_direct_write,
        {"direct_write": direct_write_steps(query=failed_step(None, "did not return it in 9 queries"))},
        [("warn", None)],
        "9 queries",
    ),
    Case(
        "direct write left its item",
        diagnose.check_direct_write,
        {"direct_write": direct_write_steps(delete=failed_step("AccessDeniedException", "delete by hand"))},
        [("warn", None)],
        "delete by hand",
    ),
    Case(
        "direct write failure and a leftover",
        diagnose.check_direct_write,
        {
            "direct_write": direct_write_steps(
                query=failed_step("ValidationException", "no such index"),
                delete=failed_step("AccessDeniedException", "delete by hand"),
            )
        },
        [("fail", "table-schema-mismatch"), ("warn", None)],
    ),
    Case(
        "direct write skip read-only",
        diagnose.check_direct_write,
        {"direct_write": direct_write.not_run("target aws us-east-2 is read-only")},
        [("skip", None)],
        "is read-only",
    ),
    _skip_case("direct write skip", diagnose.check_direct_write, "direct-write", direct_write=None),
    # write-on-connect
    Case(
        "write on connect pass",
        diagnose.check_write_on_connect,
        {},
        [("pass", None)],
        "1 write(s) in $connect",
    ),
    Case(
        "write on a join message",
        diagnose.check_write_on_connect,
        {"log_lines": JOIN_LINES, "invocations": JOIN_CALLS},
        [("fail", "write-on-message")],
        "1 write(s) on routes {'join': 1} and none in the 1 $connect invocation(s)",
    ),
    Case(
        "write on a join message, routes from API Gateway's log",
        diagnose.check_write_on_connect,
        {"log_lines": JOIN_TEXT_LINES, "invocations": JOIN_TEXT_CALLS},
        [("fail", "write-on-message")],
        "outcome 'stored' by request req-2 on join",
    ),
    Case(
        "writes on $connect and on a message",
        diagnose.check_write_on_connect,
        {
            "log_lines": log_lines(
                {}, {"request_id": "req-2", "route_key": "join", "aws_operation": "PutItem"}
            )
        },
        [("pass", None)],
        "1 more on other routes",
    ),
    Case(
        "write on connect: items stored only after a message",
        diagnose.check_write_on_connect,
        {"log_lines": TALKED_FIRST, "items": items({"timestamp_utc": LATER})},
        [("warn", "write-on-message")],
        "got its item only after sending a message",
    ),
    Case(
        "write on connect skip: items stored at the handshake, no write logged",
        diagnose.check_write_on_connect,
        {"log_lines": TALKED_FIRST, "items": items({"timestamp_utc": NOW})},
        [("skip", None)],
        "no write",
    ),
    Case(
        "write on connect skip: no route known",
        diagnose.check_write_on_connect,
        {"log_lines": log_lines({"route_key": None}), "invocations": invocations({"route_key": None})},
        [("skip", None)],
        "none with a known route",
    ),
    _skip_case(
        "write on connect skip", diagnose.check_write_on_connect, "logs", log_lines=None, invocations=None
    ),
    # write-awaited
    Case("awaited pass", diagnose.check_write_awaited, {}, [("pass", None)], "each inside its $connect"),
    Case(
        "not awaited: stored in the next invocation",
        diagnose.check_write_awaited,
        {"log_lines": late_lines(STORED_LATE), "invocations": LATE_CALLS, "lifecycle": LATE_LIFECYCLE},
        [("fail", "write-not-awaited")],
        f"outcome 'stored' for {CONN} logged by request req-2, not by its $connect invocation req-1; "
        "2 $connect invocation(s) ended without",
    ),
    Case(
        "not awaited: the PutItem error surfaces in the next invocation",
        diagnose.check_write_awaited,
        {"log_lines": late_lines(PUT_DENIED_LATE), "invocations": LATE_CALLS, "lifecycle": LATE_LIFECYCLE},
        [("fail", "write-not-awaited")],
        f"PutItem AccessDeniedException for {CONN} logged by request req-2",
    ),
    Case(
        "not awaited: stored after the invocation's END",
        diagnose.check_write_awaited,
        {
            "log_lines": log_lines({"ts": NOW + timedelta(milliseconds=50)}),
            "invocations": invocations({"end_ts": NOW}),
        },
        [("fail", "write-not-awaited")],
        "logged 50 ms after its $connect invocation req-1 ended",
    ),
    Case(
        "a $connect invocation that logs nothing while others log their writes",
        diagnose.check_write_awaited,
        SILENT_B,
        [("warn", "write-not-awaited")],
        f"1 of 2 $connect invocations ended without a write or an error line, while the handler logs its "
        f"writes elsewhere (e.g. request req-2 for {CONN_B})",
    ),
    Case(
        "a crashed $connect invocation is not a silent one",
        diagnose.check_write_awaited,
        SILENT_B
        | {
            "invocations": invocations(
                {}, {"request_id": "req-2", "connection_id": CONN_B, "app_outcome": None, "status": "error"}
            )
        },
        [("pass", None)],
    ),
    Case(
        "awaited skip: the writes are a join message's own",
        diagnose.check_write_awaited,
        {"log_lines": JOIN_LINES, "invocations": JOIN_CALLS},
        [("skip", None)],
        "no $connect write",
    ),
    _skip_case("awaited skip", diagnose.check_write_awaited, "logs", log_lines=None, invocations=None),
    # connection-id-shape
    Case("id shape pass", diagnose.check_connection_id_shape, {}, [("pass", None)], "1 connectionIds"),
    Case(
        "emulator ids",
        diagnose.check_connection_id_shape,
        {"items": items({}, {"connectionId": EMULATOR_ID})},
        [("warn", "emulator-connection-ids")],
        f"1 of 2 stored connectionIds are not of API Gateway's shape (15 of [A-Za-z0-9_-], then '='): "
        f"'{EMULATOR_ID}'",
    ),
    Case(
        "id shape ignores the kit's own items",
        diagnose.check_connection_id_shape,
        {
            "items": items(
                {},
                {"connectionId": PROBE_ITEM, "workspaceId": PROBE_ITEM},
                {"connectionId": "not-checked", "workspaceId": "kit-probe-1a2b3c4d"},
            )
        },
        [("pass", None)],
        "1 connectionIds",
    ),
    Case(
        "id shape skip when only the kit's items are stored",
        diagnose.check_connection_id_shape,
        {"items": items({"connectionId": PROBE_ITEM, "workspaceId": PROBE_ITEM})},
        [("skip", None)],
        "only the kit's own items",
    ),
    Case(
        "id shape skip empty table",
        diagnose.check_connection_id_shape,
        {"items": items().iloc[0:0]},
        [("skip", None)],
        "holds no item",
    ),
    _skip_case("id shape skip", diagnose.check_connection_id_shape, "items", items=None),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id, marks=case.marks) for case in CASES])
def test_check(case: Case) -> None:
    evidence = replace(healthy(), **case.changes, problems=dict(case.problems))
    found = case.check(evidence)
    assert all(isinstance(finding, Finding) for finding in found)
    assert [(f.verdict, f.cause) for f in found] == case.expected, found
    assert case.evidence_has in found[0].evidence, found[0].evidence
    for finding in found:
        assert finding.question
        if finding.verdict in ("fail", "warn"):
            assert finding.next_step, finding


def test_every_check_has_a_pass_a_finding_and_a_skip_case() -> None:
    verdicts: dict[str, set[str]] = {check.__name__: set() for check in CHECKS}
    for case in CASES:
        if not case.marks:
            verdicts[case.check.__name__] |= {verdict for verdict, _ in case.expected}
    lacking = {
        name: seen
        for name, seen in verdicts.items()
        if "pass" not in seen or not seen & {"fail", "warn"} or "skip" not in seen
    }
    assert lacking == {}


def test_a_skip_from_a_problem_also_reports_the_unread_section() -> None:
    evidence = replace(healthy(), permissions=None, problems={"iam": PROBLEM.format("iam")})
    findings = diagnose.run_checks(evidence).set_index("check")
    assert findings.loc["iam-put", "verdict"] == "skip"
    assert findings.loc["iam-put", "evidence"] == PROBLEM.format("iam")
    assert findings.loc["read-iam", "verdict"] == "fail"
    assert findings.loc["read-iam", "cause"] == "evidence-unread"
    assert findings.loc["read-iam", "evidence"] == PROBLEM.format("iam")


def test_the_lab_gateways_connection_ids_have_api_gateways_shape() -> None:
    rng = Random(7)
    ids = [gateway_core.new_connection_id(rng) for _ in range(500)]
    assert all(re.fullmatch(diagnose.API_GATEWAY_CONNECTION_ID, value) for value in ids)
    assert re.fullmatch(diagnose.API_GATEWAY_CONNECTION_ID, "L0SM9cOFvHcCIhw=")
    evidence = replace(healthy(), items=items(*({"connectionId": value} for value in ids[:50])))
    assert [f.verdict for f in diagnose.check_connection_id_shape(evidence)] == ["pass"]


def test_the_kits_items_share_the_probes_prefix() -> None:
    assert direct_write.ITEM_PREFIX == probe_core.WORKSPACE_PREFIX
    assert direct_write.new_connection_id().startswith(probe_core.WORKSPACE_PREFIX)


# --------------------------------------------------------------------------------------------------------
# NA in boolean columns
# --------------------------------------------------------------------------------------------------------


def _booleans_na(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    if frame is None:
        return None
    frame = frame.copy()
    for column, dtype in frame.dtypes.items():
        if str(dtype) == "boolean":
            frame[column] = pd.array([pd.NA] * len(frame), dtype="boolean")
    return frame


def _all_booleans_na() -> Evidence:
    evidence = healthy()
    sections = {
        name: _booleans_na(getattr(evidence, name))
        for name in (
            "routes",
            "functions",
            "stage",
            "items",
            "coverage",
            "permissions",
            "log_lines",
            "invocations",
            "probe",
            "direct_write",
        )
    }
    return replace(
        evidence,
        **sections,
        lifecycle=_booleans_na(lifecycle({}, closed("b", 300))),
    )


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_na_in_boolean_columns_never_raises(check: diagnose.Check) -> None:
    found = check(_all_booleans_na())
    assert found
    assert all(f.verdict in ("pass", "fail", "warn", "skip") for f in found)


def test_na_in_boolean_columns_counts_as_false() -> None:
    findings = diagnose.run_checks(_all_booleans_na()).set_index("check")
    # NA never turns into a crash-turned-skip: every check answered on the evidence.
    assert not findings["evidence"].str.contains("the check itself failed").any()
    assert findings.loc["iam-put", "verdict"] == "fail"  # an unknown verdict is not an Allow
    assert findings.loc["apigw-logs", "verdict"] == "warn"  # no proof the access log is on
    assert findings.loc["index-coverage", "verdict"] == "pass"  # not in index, but no reason given


# --------------------------------------------------------------------------------------------------------
# A check that raises
# --------------------------------------------------------------------------------------------------------


def check_that_breaks(evidence: Evidence) -> list[Finding]:
    raise KeyError("a column this check expected")


def test_a_check_that_raises_is_inconclusive_never_an_all_clear() -> None:
    findings = diagnose.run_checks(
        healthy(), checks=(diagnose.check_connect_route, check_that_breaks, diagnose.check_put_permission)
    )
    assert findings["check"].tolist() == ["connect-route", "that_breaks", "iam-put"]
    broken = findings.iloc[1]
    assert broken["verdict"] == "fail"
    assert broken["cause"] == "evidence-unread"
    assert "the check itself failed" in broken["evidence"]
    assert "a column this check expected" in broken["evidence"]
    assert diagnose.rank(findings)["id"] == "evidence-unread"
    assert causes.exit_code(diagnose.rank(findings)["id"]) == 2


def test_a_check_that_raises_does_not_hide_a_root_cause() -> None:
    evidence = replace(healthy(), permissions=permissions(put="implicit-deny"))
    findings = diagnose.run_checks(evidence, checks=(check_that_breaks, diagnose.check_put_permission))
    assert findings["verdict"].tolist() == ["fail", "fail"]
    assert diagnose.rank(findings)["id"] == "put-access-denied"


def test_no_checks_give_an_empty_typed_frame() -> None:
    findings = diagnose.run_checks(healthy(), checks=())
    assert findings.empty
    assert list(findings.columns) == list(FINDING_COLUMNS)
    assert diagnose.rank(findings)["id"] == "none"


# --------------------------------------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------------------------------------


def findings_of(*verdict_causes: tuple[str, str | None]) -> pd.DataFrame:
    rows = [
        {
            "check": f"check-{number}",
            "question": "?",
            "verdict": verdict,
            "cause": cause,
            "evidence": f"evidence {number} for {cause}",
            "next_step": "",
        }
        for number, (verdict, cause) in enumerate(verdict_causes)
    ]
    return frames.from_rows(rows, FINDING_COLUMNS)


def fail(cause: str | None) -> tuple[str, str | None]:
    return ("fail", cause)


def warn(cause: str | None) -> tuple[str, str | None]:
    return ("warn", cause)


RANKING: list[tuple[str, list[tuple[str, str | None]], str]] = [
    ("nothing", [], "none"),
    ("all pass", [("pass", None), ("pass", None)], "none"),
    ("route beats put", [fail("put-access-denied"), fail("connect-route-missing")], "connect-route-missing"),
    ("table beats index", [fail("index-access-denied"), fail("table-not-found")], "table-not-found"),
    ("put beats table", [fail("table-not-found"), fail("put-access-denied")], "put-access-denied"),
    (
        "mapping beats crash",
        [fail("handler-crash"), fail("connection-id-not-mapped")],
        "connection-id-not-mapped",
    ),
    ("crash beats put", [fail("put-access-denied"), fail("handler-crash")], "handler-crash"),
    ("region beats workspace", [fail("workspace-id-missing"), fail("wrong-region")], "wrong-region"),
    (
        "workspace beats early",
        [fail("early-disconnect"), fail("workspace-id-missing")],
        "workspace-id-missing",
    ),
    ("index beats early", [fail("early-disconnect"), fail("index-access-denied")], "index-access-denied"),
    (
        "route beats write-on-message",
        [fail("write-on-message"), fail("connect-route-missing")],
        "connect-route-missing",
    ),
    ("crash beats write-on-message", [fail("write-on-message"), fail("handler-crash")], "handler-crash"),
    ("write-on-message beats put", [fail("put-access-denied"), fail("write-on-message")], "write-on-message"),
    (
        "write-on-message beats not awaited",
        [fail("write-not-awaited"), fail("write-on-message")],
        "write-on-message",
    ),
    ("not awaited beats put", [fail("put-access-denied"), fail("write-not-awaited")], "write-not-awaited"),
    (
        "a missing table beats a denied direct write",
        [fail("table-write-denied"), fail("table-not-found")],
        "table-not-found",
    ),
    (
        "schema beats a denied direct write",
        [fail("table-write-denied"), fail("table-schema-mismatch")],
        "table-schema-mismatch",
    ),
    (
        "a denied direct write beats workspace",
        [fail("workspace-id-missing"), fail("table-write-denied")],
        "table-write-denied",
    ),
    ("a warn on write-on-message is not a root cause", [warn("write-on-message")], "none"),
    ("warn only", [warn("app-logs-missing"), warn("email-as-token"), warn(None)], "none"),
    ("a warn with a cause id is not a root cause", [warn("put-access-denied")], "none"),
    ("a skip is not a root cause", [("skip", None), ("skip", "put-access-denied")], "none"),
    (
        "contributing only",
        [fail("error-swallowed"), warn("app-logs-missing"), warn("email-as-token")],
        "none",
    ),
    (
        "contributing beside a cause",
        [
            fail("error-swallowed"),
            warn("app-logs-missing"),
            fail("put-access-denied"),
            warn("email-as-token"),
        ],
        "put-access-denied",
    ),
    # What was seen ranks after every cause that explains it, before none; reads that failed rank around it.
    (
        "a cause beats an unreachable target",
        [fail("target-unreachable"), fail("early-disconnect")],
        "early-disconnect",
    ),
    (
        "an unreachable target beats a refused handshake",
        [fail("handshake-refused"), fail("target-unreachable")],
        "target-unreachable",
    ),
    (
        "a crash beats a refused handshake",
        [fail("handshake-refused"), fail("handler-crash")],
        "handler-crash",
    ),
    (
        "a refused handshake beats not stored",
        [fail("not-stored"), fail("handshake-refused")],
        "handshake-refused",
    ),
    ("a denied put beats not stored", [fail("not-stored"), fail("put-access-denied")], "put-access-denied"),
    ("not stored beats not delivered", [fail("not-delivered"), fail("not-stored")], "not-stored"),
    (
        "a denied index beats not delivered",
        [fail("not-delivered"), fail("index-access-denied")],
        "index-access-denied",
    ),
    (
        "not delivered beats evidence unread",
        [fail("evidence-unread"), fail("not-delivered")],
        "not-delivered",
    ),
    ("evidence unread beats none", [("pass", None), fail("evidence-unread")], "evidence-unread"),
    ("a symptom as a warn is not a root cause", [warn("not-delivered"), warn("handshake-refused")], "none"),
    ("a fail without a cause id", [fail(None)], "none"),
    ("an unknown cause id", [fail("gremlins")], "none"),
    (
        "everything at once",
        [fail(cause.id) for cause in reversed(causes.CAUSES) if cause.id != "none"],
        "connect-route-missing",
    ),
]


@pytest.mark.parametrize("order", ["as-listed", "reversed"])
@pytest.mark.parametrize(
    ("failing", "expected"), [(f, e) for _, f, e in RANKING], ids=[r[0] for r in RANKING]
)
def test_rank(failing: list[tuple[str, str | None]], expected: str, order: str) -> None:
    listed = failing if order == "as-listed" else list(reversed(failing))
    root = diagnose.rank(findings_of(*listed))
    assert root["id"] == expected
    chosen = causes.cause(expected)
    assert (root["summary"], root["next_step"]) == (chosen.summary, chosen.next_step)
    assert (root["evidence"] == []) == (expected == "none")


@pytest.mark.parametrize("cause", [c.id for c in causes.CAUSES if c.id != "none"])
def test_each_cause_alone_is_the_root_cause(cause: str) -> None:
    assert diagnose.rank(findings_of(("pass", None), fail(cause), warn("email-as-token")))["id"] == cause


def test_contributing_ids_are_not_causes() -> None:
    assert not {"error-swallowed", "app-logs-missing", "email-as-token", "emulator-connection-ids"} & set(
        causes.BY_ID
    )
    ranks = [cause.rank for cause in causes.CAUSES]
    assert len(set(ranks)) == len(ranks)


def test_rank_gathers_the_evidence_of_every_finding_of_the_root_cause() -> None:
    findings = findings_of(fail("put-access-denied"), fail("table-not-found"), fail("table-not-found"))
    root = diagnose.rank(findings)
    assert root["id"] == "put-access-denied"
    assert root["evidence"] == ["evidence 0 for put-access-denied"]
    root = diagnose.rank(
        findings_of(fail("table-not-found"), fail("index-access-denied"), fail("table-not-found"))
    )
    assert root["evidence"] == ["evidence 0 for table-not-found", "evidence 2 for table-not-found"]


# --------------------------------------------------------------------------------------------------------
# Output: JSON and the terminal summary
# --------------------------------------------------------------------------------------------------------


def _denied() -> diagnose.Diagnosis:
    evidence = replace(
        healthy(),
        permissions=permissions(put="implicit-deny"),
        lifecycle=lifecycle(SWALLOWED | {"app_error_code": "AccessDeniedException"}),
        probe=None,
        problems={"probe": "the probe was not allowed"},
    )
    return diagnose.diagnose(evidence)


def test_to_json_parses_with_the_root_cause_and_the_findings() -> None:
    diagnosis = _denied()
    parsed = json.loads(diagnose.to_json(diagnosis))
    assert set(parsed) == {"root_cause", "findings"}
    assert set(parsed["root_cause"]) == {"id", "summary", "evidence", "next_step"}
    assert parsed["root_cause"]["id"] == "put-access-denied"
    assert parsed["root_cause"]["evidence"] == [
        f"implicit-deny: dynamodb:PutItem on {TABLE_ARN} is implicit-deny."
    ]
    assert parsed["root_cause"]["next_step"] == causes.cause("put-access-denied").next_step
    assert len(parsed["findings"]) == len(diagnosis.findings)
    for finding in parsed["findings"]:
        assert list(finding) == list(FINDING_COLUMNS)
        assert finding["verdict"] in ("pass", "fail", "warn", "skip")
        assert finding["cause"] is None or isinstance(finding["cause"], str)  # NA becomes null
    by_check = {finding["check"]: finding for finding in parsed["findings"]}
    assert by_check["iam-put"]["cause"] == "put-access-denied"
    assert by_check["error-handling"]["cause"] == "error-swallowed"
    assert by_check["connect-route"]["cause"] is None
    assert (by_check["read-probe"]["verdict"], by_check["read-probe"]["cause"]) == ("fail", "evidence-unread")


def test_to_json_of_a_healthy_diagnosis() -> None:
    parsed = json.loads(diagnose.to_json(diagnose.diagnose(healthy())))
    assert parsed["root_cause"] == {
        "id": "none",
        "summary": causes.cause("none").summary,
        "evidence": [],
        "next_step": causes.cause("none").next_step,
    }
    assert {finding["verdict"] for finding in parsed["findings"]} == {"pass"}


def test_findings_keep_their_declared_dtypes() -> None:
    findings = _denied().findings
    assert {column: str(dtype) for column, dtype in findings.dtypes.items()} == FINDING_COLUMNS


def test_summary_text_names_the_root_cause_and_tags_each_finding() -> None:
    diagnosis = _denied()
    text = diagnose.summary_text(diagnosis)
    lines = text.splitlines()
    assert lines[0] == f"Root cause: put-access-denied — {causes.cause('put-access-denied').summary}"
    assert lines[1].startswith("  evidence: implicit-deny")
    assert "FAIL iam-put [put-access-denied]: implicit-deny" in text
    assert "FAIL error-handling [error-swallowed]" in text
    assert "ok   connect-route: $connect → AWS_PROXY" in text
    assert "FAIL read-probe [evidence-unread]: the probe was not allowed" in text
    assert len([line for line in lines if line[:4] in ("ok  ", "FAIL", "warn", "skip")]) == len(
        diagnosis.findings
    )


# --------------------------------------------------------------------------------------------------------
# What was seen is never overruled by an all-clear; evidence not read is never an all-clear
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seen", "expected"),
    [
        (
            {"http_status": 500, "stored": None, "visible": None, "sent": None, "delivered": None},
            "handshake-refused",
        ),
        (
            {"http_status": 403, "stored": None, "visible": None, "sent": None, "delivered": None},
            "handshake-refused",
        ),
        (
            {"http_status": None, "stored": None, "visible": None, "sent": None, "delivered": None},
            "target-unreachable",
        ),
        ({"stored": False, "visible": None}, "not-stored"),
        ({"sent": False, "delivered": False}, "not-delivered"),
        ({"delivered": False}, "not-delivered"),
    ],
    ids=["refused 500", "refused 403", "no answer", "not stored", "error frame", "not received"],
)
def test_what_the_probe_saw_fail_is_never_none(seen: dict[str, Any], expected: str) -> None:
    # Everything else healthy: the logs, the table, the role; only the probe saw it.
    diagnosis = diagnose.diagnose(replace(healthy(), probe=probe_rows(**seen)))
    assert diagnosis.root_cause["id"] == expected, diagnose.summary_text(diagnosis)
    assert diagnosis.root_cause["evidence"]
    assert causes.exit_code(diagnosis.root_cause["id"]) != 0


@pytest.mark.parametrize(
    ("kind", "cause", "step_has"),
    [
        ("unreachable", "target-unreachable", "did not answer"),
        ("denied", "evidence-unread", "Grant the kit's identity"),
        ("failed", "evidence-unread", "Fix what the message names"),
        (None, "evidence-unread", "Fix what the message names"),  # a problem recorded without its kind
    ],
)
def test_a_section_not_read_is_inconclusive_by_its_kind(kind: str | None, cause: str, step_has: str) -> None:
    kinds = {"logs": kind} if kind is not None else {}
    evidence = replace(healthy(), problems={"logs": "FilterLogEvents failed"}, problem_kinds=kinds)
    diagnosis = diagnose.diagnose(evidence)
    read = diagnosis.findings.set_index("check").loc["read-logs"]
    assert (read["verdict"], read["cause"], read["evidence"]) == ("fail", cause, "FilterLogEvents failed")
    assert step_has in read["next_step"]
    assert diagnosis.root_cause["id"] == cause
    assert causes.cause(cause).kind == "inconclusive"
    assert causes.exit_code(cause) == 2


def test_gather_records_what_kind_of_failure_each_unread_section_was() -> None:
    evidence = Evidence("t", REGION, TABLE, INDEX)
    failures = {
        "tables": AwsError(
            "no answer", service="dynamodb", operation="ListTables", code="EndpointConnectionError"
        ),
        "iam": AwsError("refused", service="iam", operation="GetRole", code="AccessDenied"),
        "api": ConfigurationError("no API id"),
        "probe": EngineError("the engine stopped"),
    }
    for section, error in failures.items():

        def read(error: Exception = error) -> None:
            raise error

        assert diagnose._section(evidence, section, read) is None
    assert evidence.problems == {section: str(error) for section, error in failures.items()}
    assert evidence.problem_kinds == {
        "tables": "unreachable",
        "iam": "denied",
        "api": "failed",
        "probe": "unreachable",
    }


EXIT_CASES = [
    (cause.id, {"none": 0, "cause": 1, "symptom": 1, "inconclusive": 2}[cause.kind])
    for cause in causes.CAUSES
]


@pytest.mark.parametrize(
    ("cause", "code"), [*EXIT_CASES, ("gremlins", 1)], ids=[c for c, _ in EXIT_CASES] + ["unknown"]
)
def test_exit_codes_follow_the_cli_contract(cause: str, code: int) -> None:
    assert causes.exit_code(cause) == code


def test_the_kinds_of_the_new_verdicts() -> None:
    kinds = {cause.id: cause.kind for cause in causes.CAUSES}
    assert {c for c, k in kinds.items() if k == "symptom"} == {
        "handshake-refused",
        "not-stored",
        "not-delivered",
    }
    assert {c for c, k in kinds.items() if k == "inconclusive"} == {"target-unreachable", "evidence-unread"}
    assert {c for c, k in kinds.items() if k == "none"} == {"none"}


@pytest.mark.parametrize(
    ("problem_kinds", "expected"),
    [({}, 0), ({"logs": "unreachable"}, 2), ({"logs": "denied"}, 2)],
    ids=["all read", "unreachable", "denied"],
)
def test_kit_diagnose_exits_by_the_verdict(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    problem_kinds: dict[str, str],
    expected: int,
) -> None:
    from kit import cli

    problems = {section: f"{section} not read" for section in problem_kinds}
    evidence = replace(healthy(), problems=problems, problem_kinds=problem_kinds)
    monkeypatch.setattr(cli, "_target_from_args", lambda args: None)
    monkeypatch.setattr(diagnose, "gather", lambda target, **options: evidence)
    assert cli.main(["diagnose"]) == expected
    assert capsys.readouterr().out.startswith("Root cause: ")
