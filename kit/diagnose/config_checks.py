"""The checks on the configuration: the ``$connect`` route and its integration, each function's
``TABLE_NAME`` and region, the stage's logging, and whether the stage serves the configuration the API shows
(its deployment): ``connect-route``, ``connection-id-mapping``, ``env-table``, ``apigw-logs`` and
``deployment``; and whether API Gateway's throttling refuses the handshakes (``throttling``).

Pure: each looks at the evidence frames only (:class:`kit.diagnose.findings.Evidence`: ``routes``,
``functions``, ``tables``, ``stage``, as :mod:`kit.config` shapes them; ``deployment`` also reads API
Gateway's execution-log lines, ``throttling`` the probe's handshakes and the connections' lifecycle).
"""

from __future__ import annotations

import pandas as pd

from kit.diagnose import causes
from kit.diagnose.findings import CONNECT, Evidence, Finding, first_text, is_true, skip, skip_if_api_unread
from kit.logparse import patterns


def check_connect_route(e: Evidence) -> list[Finding]:
    question = "Is the $connect route wired to an integration?"
    if (unread := skip_if_api_unread(e, "connect-route", question)) is not None:
        return unread
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
    if (unread := skip_if_api_unread(e, "connection-id-mapping", question)) is not None:
        return unread
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


def _served_requests(log_lines: pd.DataFrame | None) -> pd.DataFrame:
    """What the stage served, from API Gateway's execution log (pure): one row per request, in time order,
    with its route, the endpoint URI its integration invoked (NA: none) and, for a message no route took, its
    selection value. Requests that say neither their route nor that no route took them are left out, and so
    are requests a throttle refused before anything ran and handshakes a $connect authorizer refused (no
    integration runs then, whatever was deployed)."""
    columns = ["apigw_request_id", "ts", "route_key", "endpoint_uri", "unrouted"]
    if log_lines is None or log_lines.empty:
        return pd.DataFrame(columns=columns)
    lines = log_lines[log_lines["source"].eq("apigw_exec").fillna(False).astype(bool)]
    lines = lines[lines["apigw_request_id"].notna()]
    if lines.empty:
        return pd.DataFrame(columns=columns)
    text = lines["message"].astype("string")
    # A request's route is on one of its lines (or its CONNECT/DISCONNECT line says it), its endpoint URI on
    # another: gathered by request id.
    by_event = lines["event_type"].map({v: k for k, v in patterns.ROUTE_EVENT_TYPES.items()}).astype("string")
    said = lines.assign(
        route_key=lines["route_key"].fillna(by_event),
        endpoint_uri=text.str.extract(patterns.ENDPOINT_REQUEST_URI, expand=False),
        unrouted=text.str.extract(patterns.NO_ROUTE_MATCH, expand=False),
        throttled=text.str.contains(patterns.THROTTLED_REQUEST).fillna(False).astype(bool),
        iam_refused=text.str.contains(patterns.IAM_REFUSED).fillna(False).astype(bool),
        authorizer=text.str.extract(patterns.AUTHORIZER_STARTED)[0].notna(),
        unauthorized=text.str.extract(patterns.AUTHORIZER_UNAUTHORIZED, expand=False).notna(),
    )
    requests = said.groupby("apigw_request_id", sort=False).agg(
        ts=("ts", "min"),
        route_key=("route_key", "first"),
        endpoint_uri=("endpoint_uri", "last"),
        endpoints=("endpoint_uri", "count"),
        unrouted=("unrouted", "first"),
        throttled=("throttled", "any"),
        iam_refused=("iam_refused", "any"),
        authorizer=("authorizer", "any"),
        unauthorized=("unauthorized", "any"),
    )
    # A throttled request, or a handshake AWS_IAM refused, was refused before its route ran: what it did not
    # invoke says nothing of drift. A $connect authorizer's own endpoint comes first: the integration's is the
    # last one, and a request the authorizer refused (a 401 before it ran, or its one endpoint only) invoked
    # no integration by design.
    refused = requests["throttled"] | requests["iam_refused"] | requests["unauthorized"]
    refused |= requests["authorizer"] & requests["endpoints"].lt(2)
    requests = requests[~refused & (requests["route_key"].notna() | requests["unrouted"].notna())]
    return requests.reset_index()[columns].sort_values("ts", kind="stable").reset_index(drop=True)


def _configured_endpoint(route: pd.Series) -> str:
    """What the route's current integration would invoke: the function's ARN, or the HTTP URI (no query)."""
    if pd.notna(route["function_arn"]):
        return str(route["function_arn"])
    return str(route["integration_uri"]).split("?", 1)[0] if pd.notna(route["integration_uri"]) else ""


def _invoked_endpoint(uri: str) -> str:
    """The function an execution log's endpoint URI invoked, or its HTTP URI without the query string: the
    query parameters an integration maps (``integration.request.querystring.*``) are added per request, so
    they never show drift."""
    found = patterns.INVOKED_FUNCTION_ARN.search(uri)
    return found.group(1) if found else uri.split("?", 1)[0]


def _drift(served: pd.DataFrame, routes: pd.DataFrame) -> list[str]:
    """Each way the last request of a route differs from the route as configured now (pure)."""
    configured = {
        str(row["route_key"]): _configured_endpoint(row)
        for _, row in routes.iterrows()
        if pd.notna(row["route_id"])
    }
    drift: list[str] = []
    routed = served[served["route_key"].notna()]
    for route_key, requests in routed.groupby("route_key", sort=True):
        last = requests.iloc[-1]
        key = str(route_key)
        if pd.isna(last["endpoint_uri"]):
            if configured.get(key):  # a route (or its integration) the stage's deployment does not have
                drift.append(
                    f"{key} invoked nothing at {last['ts']} (request {last['apigw_request_id']}), while its "
                    f"integration now names {configured[key]}"
                )
            continue
        endpoint = _invoked_endpoint(str(last["endpoint_uri"]))
        if key not in configured:
            drift.append(f"{key} invoked {endpoint} at {last['ts']}, but the API has no {key} route now")
        elif configured[key] and endpoint != configured[key]:
            drift.append(
                f"{key} invoked {endpoint} at {last['ts']} (request {last['apigw_request_id']}), while its "
                f"integration now names {configured[key]}"
            )
    # A message for a route that exists now yet took none is drift too, but the message-routing check claims
    # it (message-route-missing, with the route and the clients' frames): one finding, one cause.
    return drift


def check_deployed_configuration(e: Evidence) -> list[Finding]:
    """Stage drift: the stage serves a deployment older than the routes and integrations the API shows.

    AWS shows no deployment's routes, and no route or integration carries a date, so the evidence is what the
    stage did: API Gateway's execution log names the endpoint each request invoked. A route that exists but
    took no message is left to :func:`kit.diagnose.delivery_checks.check_message_routing`. A request that
    differs from today's configuration after the stage's deployment was created (and the stage last updated)
    proves the drift; without those dates it may predate a deployment, so it is a warning only.
    """
    check, question = "deployment", "Does the stage serve the API's current routes and integrations?"
    if (unread := skip_if_api_unread(e, check, question)) is not None:
        return unread
    if e.stage.empty:
        return skip(check, question, "no stage was read")
    stage = e.stage.iloc[0]
    name = str(stage["stage_name"])

    def warn(detail: str, next_step: str) -> list[Finding]:
        return [Finding(check, question, "warn", None, detail, next_step)]

    if pd.isna(stage["deployment_id"]):
        return warn(
            f"stage {name} names no deployment: on AWS it serves nothing (every handshake gets 403)",
            f"Deploy the API to the stage: aws apigatewayv2 create-deployment --api-id {e.api_id} "
            f"--stage-name {name}.",
        )
    deployment = str(stage["deployment_id"])
    dates = [d for d in (stage["deployment_created"], stage["last_updated"]) if pd.notna(d)]
    since = max(dates) if pd.notna(stage["deployment_created"]) else None
    served = _served_requests(e.log_lines)
    if since is not None:
        served = served[served["ts"] >= since]
    if served.empty:
        when = f" since it was deployed ({since})" if since is not None else ""
        return skip(
            check,
            question,
            f"no request of stage {name}{when} in the execution log (INFO level names what each invoked)",
        )
    drift = _drift(served, e.routes)
    if not drift:
        return [
            Finding(
                check,
                question,
                "pass",
                None,
                f"stage {name} (deployment {deployment}) invoked what its routes name now ({len(served)} "
                "requests)",
            )
        ]
    detail = f"stage {name} serves deployment {deployment}"
    if since is None:
        return warn(
            f"{detail}, whose date was not read: {'; '.join(drift[:2])} (perhaps before a deployment)",
            "Read the stage's deployment (aws apigatewayv2 get-deployment) to date it.",
        )
    return [
        Finding(
            check,
            question,
            "fail",
            "stale-deployment",
            f"{detail}, created {stage['deployment_created']}; since then {'; '.join(drift[:2])}",
            causes.cause("stale-deployment").next_step,
        )
    ]


THROTTLED_STATUS = 429


def _throttled_handshakes(e: Evidence) -> list[str]:
    """What saw handshakes answered 429: the probe's, and ``$connect`` requests in the logs (pure)."""
    seen: list[str] = []
    if e.probe is not None and not e.probe.empty:
        connects = e.probe[e.probe["step"] == "connect"]
        throttled = connects[connects["http_status"].eq(THROTTLED_STATUS).fillna(False).astype(bool)]
        if not throttled.empty:
            seen.append(f"{len(throttled)} of {len(connects)} probe handshakes answered 429")
    if e.lifecycle is not None and not e.lifecycle.empty:
        status = e.lifecycle["connect_status"]
        logged = int(status.eq(THROTTLED_STATUS).fillna(False).astype(bool).sum())
        if logged:
            seen.append(f"{logged} $connect requests in API Gateway's logs answered 429")
    return seen


def check_throttling(e: Evidence) -> list[Finding]:
    """Throttled handshakes: the stage's limit for ``$connect`` (GetStage's RouteSettings, else
    DefaultRouteSettings) refuses every one (0/0, or a rate or burst of 0), or handshakes were seen answered
    429 (the probe's, or the access log's), by a low stage limit or the account's quota of new connections.
    A limit that refuses everything fails on the settings alone: AWS may log nothing for a throttled request.
    """
    check, question = "throttling", "Are handshakes let through API Gateway's throttling (no 429)?"
    seen = _throttled_handshakes(e)
    stage_read = "api" not in e.problems and not e.stage.empty
    if not stage_read and not seen:
        why = e.problems.get("api", "no stage was read")
        return skip(check, question, f"{why}, and no handshake was seen answered 429")
    limit = ""
    refuses_all = False
    name = "?"
    if stage_read:
        row = e.stage.iloc[0]
        name = str(row["stage_name"])
        if pd.notna(row["connect_throttle_source"]):
            rate, burst = float(row["connect_throttle_rate"]), int(row["connect_throttle_burst"])
            limit = f"rate {rate:g} per second, burst {burst} ({row['connect_throttle_source']})"
            refuses_all = burst < 1 or rate <= 0
    next_step = causes.cause("throttled").next_step
    if refuses_all:
        said = "; ".join(seen) if seen else "no handshake was seen yet"
        detail = (
            f"stage {name} throttles $connect at {limit}: API Gateway answers every handshake 429 before "
            f"$connect runs; {said}"
        )
        return [Finding(check, question, "fail", "throttled", detail, next_step)]
    shown_limit = limit or (
        "none set (the account's quota of new connections, 500 a second per region, applies)"
        if stage_read
        else "not read"
    )
    if seen:
        detail = f"{'; '.join(seen)}; the stage's limit for $connect: {shown_limit}"
        return [Finding(check, question, "fail", "throttled", detail, next_step)]
    looked = (e.probe is not None and not e.probe.empty) or (
        e.lifecycle is not None and not e.lifecycle.empty
    )
    if not looked:  # the settings let handshakes through; whether the account's quota refused some is unseen
        why = e.problems.get("logs", "no probe ran and no handshake is in the logs")
        return skip(check, question, f"stage {name}'s limit for $connect: {shown_limit}; {why}")
    detail = f"no handshake answered 429; stage {name}'s limit for $connect: {shown_limit}"
    return [Finding(check, question, "pass", None, detail)]
