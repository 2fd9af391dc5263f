"""The checks on the configuration: the ``$connect`` route and its integration, each function's
``TABLE_NAME`` and region, and the stage's logging: ``connect-route``, ``connection-id-mapping``,
``env-table`` and ``apigw-logs``.

Pure: each looks at the evidence frames only (:class:`kit.diagnose.findings.Evidence`: ``routes``,
``functions``, ``tables``, ``stage``, as :mod:`kit.config` shapes them).
"""

from __future__ import annotations

import pandas as pd

from kit.diagnose import causes
from kit.diagnose.findings import CONNECT, Evidence, Finding, first_text, is_true, skip


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
