"""The checks on the ``$connect`` handler at work, as the logs tell it: does it crash (``handler-crash``),
answer 200 after a failed write (``error-handling``), write on ``$connect`` rather than on a later message
(``write-on-connect``), finish its write before it returns (``write-awaited``), do its own lines reach
CloudWatch (``app-logs``); and what became of the connections it served: closed at once
(``early-disconnect``), its integration invoked for each (``connect-invoked``).

Pure: each looks at the evidence frames only (the parsed log lines, invocations and connection lifecycle of
:mod:`kit.logparse`; the items' timestamps and the probe's handshakes where the logs say nothing).
"""

from __future__ import annotations

import pandas as pd

from kit import frames, logparse
from kit.diagnose import causes
from kit.diagnose.findings import CONNECT, GATEWAY_SOURCES, Evidence, Finding, handshake_statuses, skip
from kit.dynamo.items import TIMESTAMP_UTC


def check_handshakes(e: Evidence) -> list[Finding]:
    """Crashes (502) on $connect, from the logs or the probe."""
    question = "Does the $connect handler answer without crashing?"
    statuses = handshake_statuses(e)
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


def _lambda_writes(e: Evidence) -> pd.DataFrame:
    """The Lambda lines that write a connection: a PutItem (made or failed) or the outcome 'stored'."""
    if e.log_lines is None or e.log_lines.empty:
        return frames.empty(logparse.LOG_COLUMNS)
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
        calls = frames.empty(logparse.INVOCATION_COLUMNS).set_index("request_id")[columns]
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


def _stray_writes(e: Evidence, writes: pd.DataFrame, requests: pd.DataFrame) -> pd.Series:
    """True for the writes a request logged that were not its own work: the request served another
    connection, or it also logged an outcome of its own that is no write (a broadcast, a rejection).

    Work an earlier invocation left running (a write not awaited) resumes when Lambda thaws the environment
    for whatever invocation comes next, and its lines land in that invocation; a handler that stores a
    connection on its join message logs the write as that request's own and only outcome. The limit of
    this reading: a join handler that logs a second outcome of its own (``joined`` beside the write) would
    pass for leaked work, and a leaked write into a request that logs nothing else for a join.
    """
    if writes.empty or e.log_lines is None:
        return pd.Series(False, index=writes.index, dtype=bool)
    lines = e.log_lines[e.log_lines["source"] == "lambda"]
    others = lines[lines["app_outcome"].notna().fillna(False).astype(bool) & ~lines.index.isin(writes.index)]
    busy = set(others["request_id"].dropna().astype(str))
    served = writes["request_id"].map(requests["connection_id"]).astype("string")
    elsewhere = (
        served.notna() & writes["connection_id"].notna() & (served != writes["connection_id"])
    ).fillna(False)
    return elsewhere.astype(bool) | writes["request_id"].astype("string").isin(busy).fillna(False).astype(
        bool
    )


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
    if not {"connectionId", TIMESTAMP_UTC} <= set(e.items.columns):
        return None
    messages = e.log_lines[e.log_lines["event_type"].eq("MESSAGE").fillna(False).astype(bool)]
    first_message = messages.dropna(subset=["connection_id"]).groupby("connection_id")["ts"].min()
    stored = e.items[["connectionId", TIMESTAMP_UTC]].dropna()
    stored = stored.rename(columns={"connectionId": "connection_id", TIMESTAMP_UTC: "stored_at"})
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
        return skip(check, question, e.problems.get("logs", "logs not read"))
    writes = _lambda_writes(e)
    requests = _lambda_requests(e)
    routes = _write_routes(writes, requests)
    known = routes.notna()
    stray = _stray_writes(e, writes, requests)
    on_connect = writes[known & (routes == CONNECT)]
    # A write that surfaced in another route's invocation without being its work says nothing about where
    # the handler writes: it is write-awaited's evidence.
    elsewhere = writes[known & (routes != CONNECT) & ~stray]
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
    if bool(stray.any()):
        why = (
            f"the {int(stray.sum())} write(s) outside $connect were logged by invocations they were not the "
            "work of (see write-awaited)"
        )
    elif not writes.empty:
        why = (
            f"{len(writes)} write(s) in the logs, none with a known route (the lines name none, and no API "
            "Gateway line names their request)"
        )
    else:
        why = "no write (PutItem or outcome 'stored') in the logs"
    return skip(check, question, why)


def check_write_awaited(e: Evidence) -> list[Finding]:
    """Asynchronous work not awaited: the write lands after its $connect invocation ended, or never."""
    check = "write-awaited"
    question = (
        "Does each $connect write finish inside its own invocation (awaited before the handler returns)?"
    )
    if e.log_lines is None or e.invocations is None:
        return skip(check, question, e.problems.get("logs", "logs not read"))
    writes = _lambda_writes(e)
    requests = _lambda_requests(e)
    routes = _write_routes(writes, requests)
    # A message route's own write is write-on-connect's business, not a late $connect write; one it logged
    # without it being its work is a late one.
    writes = writes[routes.isna() | (routes == CONNECT) | _stray_writes(e, writes, requests)]
    if writes.empty:
        return skip(check, question, "no $connect write (PutItem or outcome 'stored') in the logs")
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
    """$connect invocations that ended normally and logged no write, error or outcome for their connection.

    One join of the lines that say something with the $connect invocations, not a scan per connection: a
    window of a million lines has thousands of connections."""
    if e.log_lines is None or not connect_of:
        return []
    pairs = pd.DataFrame(
        {"connection_id": list(connect_of), "request_id": list(connect_of.values())}, dtype="string"
    )
    succeeded = pairs["request_id"].map(requests["status"]).astype("string").eq("success")
    pairs = pairs[succeeded.fillna(False).astype(bool)]  # a crash or a timeout is another check's business
    lines = e.log_lines[(e.log_lines["source"] == "lambda") & e.log_lines["request_id"].notna()]
    said = lines["app_outcome"].notna() | lines["app_error_code"].notna() | lines["aws_operation"].notna()
    lines = lines.loc[said.fillna(False).astype(bool), ["request_id", "connection_id", "ts"]]
    lines = lines.astype({"request_id": "string", "connection_id": "string"})
    spoken = lines.merge(pairs, on="request_id", suffixes=("_line", ""))
    own = spoken["connection_id_line"].isna() | spoken["connection_id_line"].eq(spoken["connection_id"])
    ended = spoken["request_id"].map(requests["end_ts"])
    in_time = ~(spoken["ts"] > ended).fillna(False).astype(bool)
    spoke = set(spoken.loc[own.fillna(False).astype(bool) & in_time, "request_id"].tolist())
    return [
        f"request {request_id} for {connection_id}"
        for connection_id, request_id in zip(pairs["connection_id"], pairs["request_id"], strict=True)
        if request_id not in spoke
    ]


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
