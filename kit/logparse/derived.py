"""Frames derived from the parsed log frame: Lambda invocations and WebSocket connection lifecycles.

Both take the output of :func:`kit.logparse.parse` (any mix of Lambda, execution-log and access-log
events) and only group, join and label it. Pure: no I/O.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kit import frames
from kit.logparse import patterns as p
from kit.logparse.columns import INVOCATION_COLUMNS, LIFECYCLE_COLUMNS, LOG_COLUMNS, conform

_FAILED_STATUSES = ("error", "failure")
_LAST_APP_FIELDS = ("route_key", "connection_id", "app_outcome", "app_error_code", "aws_operation")
_REPORT_FIELDS = ("duration_ms", "billed_ms", "memory_mb", "max_mem_mb", "init_ms", "restore_ms")
_REQUEST_FIELDS = (
    "connection_id",
    "event_type",
    "route_key",
    "http_status",
    "integration_status",
    "integration_request_id",
    "error_message",
    "disconnect_code",
    "disconnect_reason",
)


def _checked(parsed: pd.DataFrame) -> pd.DataFrame:
    missing = [name for name in LOG_COLUMNS if name not in parsed.columns]
    if missing:
        from kit.errors import ConfigurationError

        raise ConfigurationError(
            f"The frame is not a parsed log frame (missing {', '.join(missing[:3])}); "
            "pass the output of kit.logparse.parse()."
        )
    return parsed


def _in_time_order(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("ts", kind="stable", na_position="last")


def invocations(parsed: pd.DataFrame) -> pd.DataFrame:
    """One row per Lambda request id (:data:`INVOCATION_COLUMNS`), ordered by start time.

    Metrics come from the REPORT line (Text) or ``platform.report`` record (JSON); ``status`` is
    ``timeout`` (a timeout line or Status: timeout), ``error`` (an uncaught error, a runtime exit,
    Status: error), ``success`` (a REPORT and none of those) or ``unknown`` (no REPORT in the logs).
    ``route_key``, ``connection_id`` and the ``app_*`` fields are the last values the invocation's own
    lines gave; ``cold_start`` is true with an Init/Restore Duration or when the invocation is the first
    one after an INIT_START in its stream.
    """
    parsed = _checked(parsed)
    lines = _in_time_order(parsed[(parsed["source"] == "lambda") & parsed["request_id"].notna()])
    if len(lines) == 0:
        return frames.empty(INVOCATION_COLUMNS)
    groups = lines.groupby("request_id", sort=False)
    result = pd.DataFrame(index=pd.Index(groups.size().index, name="request_id"))
    result["function"] = groups["log_group"].first().map(p.function_name)
    result["log_stream"] = groups["log_stream"].first()
    kind = lines["kind"]

    starts = lines[kind == "start"].groupby("request_id")["ts"].min()
    result["start_ts"] = starts.reindex(result.index).fillna(groups["ts"].min())
    ends = lines[kind.isin(["end", "report"])].groupby("request_id")["ts"].max()
    result["end_ts"] = ends.reindex(result.index).fillna(groups["ts"].max())

    reports = lines[kind == "report"].groupby("request_id")
    for name in _REPORT_FIELDS:
        result[name] = reports[name].first().reindex(result.index)
    init_reports = lines[kind == "init_report"].groupby("request_id")["init_ms"].first()
    result["init_ms"] = result["init_ms"].fillna(init_reports.reindex(result.index))
    result["cold_start"] = (
        result["init_ms"].notna()
        | result["restore_ms"].notna()
        | result.index.isin(_first_after_init(parsed))
    )

    status = lines["status"]
    timed_out = (kind == "timeout") | (status == "timeout")
    failed = kind.isin(["error", "runtime_exit"]) | status.isin(_FAILED_STATUSES)
    flags = (
        pd.DataFrame(
            {
                "timed_out": timed_out.fillna(False).astype(bool),
                "failed": failed.fillna(False).astype(bool),
                "reported": (kind == "report").fillna(False).astype(bool),
                "request_id": lines["request_id"],
            }
        )
        .groupby("request_id", sort=False)[["timed_out", "failed", "reported"]]
        .any()
    )
    flags = flags.reindex(result.index)
    result["status"] = np.select(
        [flags["timed_out"], flags["failed"], flags["reported"]], ["timeout", "error", "success"], "unknown"
    )
    result["error_type"] = groups["error_type"].first()
    result["error_message"] = groups["error_message"].first()
    for name in _LAST_APP_FIELDS:
        result[name] = groups[name].last()
    result = result.reset_index()
    result = result.sort_values("start_ts", kind="stable", na_position="last")
    return conform(result, INVOCATION_COLUMNS)


def _first_after_init(parsed: pd.DataFrame) -> pd.Index:
    """Request ids of the first START in each stream that has an INIT_START before it."""
    lambda_lines = _in_time_order(parsed[parsed["source"] == "lambda"])
    keys = ["log_group", "log_stream"]
    inits = lambda_lines[lambda_lines["kind"] == "init_start"].groupby(keys, dropna=False)["ts"].min()
    starts = lambda_lines[(lambda_lines["kind"] == "start") & lambda_lines["request_id"].notna()]
    first = starts.groupby(keys, dropna=False).head(1)
    if len(inits) == 0 or len(first) == 0:
        return pd.Index([], dtype="string")
    joined = first.join(inits.rename("init_ts"), on=keys, how="inner")
    after = joined["init_ts"].isna() | joined["ts"].isna() | (joined["init_ts"] <= joined["ts"])
    return pd.Index(joined.loc[after, "request_id"])


def _gateway_requests(parsed: pd.DataFrame) -> pd.DataFrame:
    """One row per API Gateway request id: access-log values first, execution-log values filling gaps."""
    gateway = parsed[parsed["source"].isin(["apigw_access", "apigw_exec"])]
    if len(gateway) == 0:
        return pd.DataFrame(columns=["ts", *_REQUEST_FIELDS])
    fallback_key = pd.Series(gateway.index, index=gateway.index).map("row:{}".format).astype("string")
    key = gateway["apigw_request_id"].fillna(fallback_key).rename("key")
    parts = []
    for source in ("apigw_access", "apigw_exec"):
        part = gateway[gateway["source"] == source]
        grouped = part.groupby(key[part.index], sort=False)
        values = grouped[list(_REQUEST_FIELDS)].first()
        values["ts"] = grouped["ts"].min()
        parts.append(values)
    requests = parts[0].combine_first(parts[1])
    # A request starts at its first execution-log line; its access-log line is written when it ends.
    requests["ts"] = pd.concat([parts[0]["ts"], parts[1]["ts"]], axis=1).min(axis=1).reindex(requests.index)
    routes = requests["route_key"].map(p.route_event_type, na_action="ignore")
    requests["event_type"] = requests["event_type"].fillna(routes.astype("string"))
    return requests


def _first_per_connection(requests: pd.DataFrame, event_type: str) -> pd.DataFrame:
    chosen = requests[(requests["event_type"] == event_type) & requests["connection_id"].notna()]
    chosen = _in_time_order(chosen).drop_duplicates("connection_id")
    return chosen.set_index("connection_id")


def connection_lifecycle(parsed: pd.DataFrame) -> pd.DataFrame:
    """One row per WebSocket connection id seen anywhere in ``parsed`` (:data:`LIFECYCLE_COLUMNS`).

    The CONNECT request (access log, else execution log) gives the handshake's status and the Lambda
    request id API Gateway invoked; that invocation (or, failing the gateway logs, the ``$connect``
    invocation that logged this connection id) gives the handler's outcome. ``item_written`` is True only
    when the handler said ``stored``, False when it logged an error code or no integration ran for
    CONNECT, NA otherwise; ``why`` says which, in words.
    """
    parsed = _checked(parsed)
    connection_ids = parsed["connection_id"].dropna().unique()
    if len(connection_ids) == 0:
        return frames.empty(LIFECYCLE_COLUMNS)
    index = pd.Index(connection_ids, dtype="string", name="connection_id")
    requests = _gateway_requests(parsed)
    connects = _first_per_connection(requests, "CONNECT").reindex(index)
    disconnects = _first_per_connection(requests, "DISCONNECT").reindex(index)
    calls = invocations(parsed)
    by_request = calls.set_index("request_id")
    connect_calls = _in_time_order(
        calls[(calls["route_key"] == "$connect") & calls["connection_id"].notna()].rename(
            columns={"start_ts": "ts"}
        )
    ).drop_duplicates("connection_id")
    called_by_connection = connect_calls.set_index("connection_id")["request_id"].reindex(index)

    gateway_request_id = connects["integration_request_id"].astype("string")
    known = gateway_request_id.isin(by_request.index)
    lambda_request_id = (
        gateway_request_id.where(known).fillna(called_by_connection).fillna(gateway_request_id)
    )
    call = by_request.reindex(lambda_request_id.to_numpy())
    call.index = index

    result = pd.DataFrame(index=index)
    result["connect_ts"] = connects["ts"]
    result["connect_status"] = connects["http_status"]
    result["connect_integration_status"] = connects["integration_status"]
    result["connect_lambda_request_id"] = lambda_request_id
    ran = (
        lambda_request_id.notna() | connects["integration_status"].notna() | call["status"].notna()
    ).astype(bool)
    connect_known = connects["event_type"].notna()
    invoked = pd.Series(pd.NA, index=index, dtype="boolean")
    invoked[connect_known.to_numpy(dtype=bool)] = False
    invoked[ran.to_numpy(dtype=bool)] = True
    result["connect_invoked"] = invoked
    result["app_outcome"] = call["app_outcome"]
    result["app_error_code"] = call["app_error_code"]
    written, why = _verdicts(result, call)
    result["item_written"] = written
    result["why"] = why

    lambda_disconnects = (
        _in_time_order(parsed[(parsed["source"] == "lambda") & parsed["disconnect_code"].notna()])
        .drop_duplicates("connection_id")
        .dropna(subset=["connection_id"])
        .set_index("connection_id")["disconnect_code"]
    )
    result["disconnect_ts"] = disconnects["ts"]
    result["disconnect_code"] = disconnects["disconnect_code"].fillna(lambda_disconnects.reindex(index))
    result["disconnect_reason"] = disconnects["disconnect_reason"]
    lifetime = pd.to_datetime(result["disconnect_ts"], utc=True) - pd.to_datetime(
        result["connect_ts"], utc=True
    )
    result["lifetime_ms"] = lifetime // pd.Timedelta(milliseconds=1)
    result = result.reset_index()
    result = result.sort_values(["connect_ts", "connection_id"], kind="stable", na_position="last")
    return conform(result, LIFECYCLE_COLUMNS)


def _text(values: pd.Series) -> pd.Series:
    return values.astype("string").fillna("?")


def _verdicts(result: pd.DataFrame, call: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """``item_written`` and ``why`` for each connection, from the first rule that applies."""
    outcome = result["app_outcome"].astype("string")
    code = result["app_error_code"].astype("string")
    status = result["connect_status"].astype("Int64")
    request = " (Lambda request " + _text(result["connect_lambda_request_id"]) + ")"
    operation = ("" + " from " + _text(call["aws_operation"])).where(call["aws_operation"].notna(), "")
    answered_ok = status.between(200, 299).fillna(False).astype(bool)
    answered = pd.Series("", index=result.index, dtype="string")
    answered = answered.mask(status.notna() & ~answered_ok, "; API Gateway answered " + _text(status))
    answered = answered.mask(
        answered_ok,
        "; API Gateway still answered "
        + _text(status)
        + ", so the client saw a connection that was never stored",
    )
    invoked = result["connect_invoked"]
    call_status = call["status"].astype("string")
    rules = [
        (outcome == "stored", True, "the $connect handler logged outcome 'stored'" + request),
        (
            code.notna(),
            False,
            "the $connect invocation logged " + _text(code) + operation + request + answered,
        ),
        (
            invoked == False,  # noqa: E712 (NA must stay NA, not become True)
            False,
            "no integration was invoked for $connect (API Gateway answered "
            + _text(status)
            + "): nothing could have written the item",
        ),
        (
            call_status.isin(["error", "timeout"]),
            None,
            "the $connect function ended in "
            + _text(call_status)
            + " ("
            + _text(call["error_type"])
            + ": "
            + _text(call["error_message"])
            + ") before logging an outcome"
            + request,
        ),
        (outcome.notna(), None, "the $connect handler logged outcome '" + _text(outcome) + "'" + request),
        (
            invoked == True,  # noqa: E712
            None,
            "the $connect integration ran"
            + request
            + " but no outcome was logged (the seed handler logs at INFO, which Lambda drops by default);"
            " check the table",
        ),
    ]
    written = pd.Series(pd.NA, index=result.index, dtype="boolean")
    why = pd.Series(
        "no CONNECT record and no $connect invocation for this connection in these logs",
        index=result.index,
        dtype="string",
    )
    decided = pd.Series(False, index=result.index)
    for condition, value, text in rules:
        applies = condition.fillna(False).astype(bool) & ~decided
        if value is not None:
            written[applies] = value
        why[applies] = text[applies]
        decided |= applies
    return written, why
