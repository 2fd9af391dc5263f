"""The checks on where and when the write happens (logs), what the table holds (items), and the table on its
own (the kit's direct write): ``write-on-connect``, ``write-awaited``, ``connection-id-shape`` and
``direct-write``. Pure: each looks at the evidence frames only. :mod:`kit.diagnose` runs them with the rest.
"""

from __future__ import annotations

import pandas as pd

from kit import causes, frames, logparse
from kit.dynamo import direct_write
from kit.dynamo.items import TIMESTAMP_UTC
from kit.errors import failure_kind
from kit.findings import (
    API_GATEWAY_CONNECTION_ID,
    CONNECT,
    GATEWAY_SOURCES,
    Evidence,
    Finding,
    first_text,
    skip,
)

_empty = frames.empty


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
    # A message route's own write is write-on-connect's business, not a late $connect write.
    writes = writes[routes.isna() | (routes == CONNECT)]
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
        return skip(check, question, e.problems.get("items", "the table could not be scanned"))
    if e.items.empty or "connectionId" not in e.items.columns:
        return skip(check, question, "the table holds no item")
    theirs = e.items[~_kit_items(e.items)]
    ids = theirs["connectionId"].astype("string").dropna()
    if ids.empty:
        return skip(check, question, "the table holds only the kit's own items")
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


def _direct_write_cause(code: str, step: str) -> str:
    kind = failure_kind(code)
    if kind == "unreachable":
        return "target-unreachable"  # no answer: nothing is known about the table
    if code == "ResourceNotFoundException" and step == "query":
        return (
            "table-schema-mismatch"  # the put found the table, so what is missing is the index (moto says so)
        )
    if code in _DIRECT_WRITE_CAUSES:
        return _DIRECT_WRITE_CAUSES[code]
    if "AccessDenied" in code or code.startswith("KMS"):
        return "table-write-denied"
    # An error no cause explains is never an all-clear: a put that did not land is an item not stored; a
    # read-back that failed (or credentials refused) leaves the test's evidence unread.
    if step == "put" and kind != "denied":
        return "not-stored"
    return "evidence-unread"


def check_direct_write(e: Evidence) -> list[Finding]:
    """Storage tested in isolation: the kit's own PutItem, GetItem, Query on the index and DeleteItem."""
    check = "direct-write"
    question = "Can the kit itself put, read back, query (workspaceIndex) and delete an item in the table?"
    if e.direct_write is None or e.direct_write.empty:
        return skip(check, question, e.problems.get("direct-write", "the storage test was not run"))
    steps = e.direct_write
    ran = steps[steps["ok"].notna()]
    if ran.empty:
        return skip(check, question, first_text(steps, "detail").removeprefix("skipped: "))
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
        findings.append(Finding(check, question, "fail", cause_id, detail, causes.cause(cause_id).next_step))
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
                f"Delete the item {first_text(leftover, 'connection_id')} by hand; it is the kit's own "
                f"({direct_write.ITEM_PREFIX}…).",
            )
        )
    if findings:
        return findings
    return [Finding(check, question, "pass", None, "; ".join(ran["detail"].astype(str)))]
