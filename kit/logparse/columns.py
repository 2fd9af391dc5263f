"""The contracts of the frames :mod:`kit.logparse` returns: column names and dtypes.

Every frame this package returns has exactly the columns of one of these constants, in this order and
with these dtypes, whether it has rows or not. Text is pandas' nullable ``string`` dtype (missing = NA),
whole numbers ``Int64``, decimals ``Float64``, flags ``boolean`` and times UTC-aware.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import pandas as pd

UTC_TIME: Final = "datetime64[ns, UTC]"
MAX_EXACT_INT: Final = 2**53
"""Whole numbers at or beyond this (a garbled status code, say) are read as missing, not wrapped."""

RAW_EVENT_COLUMNS: Final[Mapping[str, str]] = {
    "log_group": "string",
    "log_stream": "string",
    "event_id": "string",
    "timestamp": "Int64",  # epoch milliseconds, as CloudWatch Logs gives them
    "ingestion_time": "Int64",  # epoch milliseconds
    "message": "string",
}
"""One row per CloudWatch Logs event, as ``filter_log_events``/``get_log_events`` return them."""

LOG_COLUMNS: Final[Mapping[str, str]] = {
    "log_group": "string",
    "log_stream": "string",
    "event_id": "string",
    "ts": UTC_TIME,  # the event's timestamp (producer time)
    "ingest_ts": UTC_TIME,  # when CloudWatch Logs received it
    "lag_ms": "Int64",  # ingest_ts - ts
    "message": "string",  # the event's text, untouched
    "source": "string",  # lambda | apigw_exec | apigw_access | unknown
    "kind": "string",  # see kit.logparse.KINDS
    "request_id": "string",  # Lambda request id (carried forward from START inside a stream)
    "level": "string",  # log level as written (INFO, WARNING, ERROR...); null for platform and print lines
    "duration_ms": "Float64",
    "billed_ms": "Float64",
    "init_ms": "Float64",
    "restore_ms": "Float64",
    "memory_mb": "Int64",
    "max_mem_mb": "Int64",
    "status": "string",  # REPORT/INIT_REPORT Status, platform record status, "timeout" on timeout lines
    "error_type": "string",
    "error_message": "string",
    "apigw_request_id": "string",
    "integration_request_id": "string",
    "connection_id": "string",
    "route_key": "string",
    "event_type": "string",  # CONNECT | MESSAGE | DISCONNECT
    "http_status": "Int64",  # the status API Gateway answered the client
    "integration_status": "Int64",  # the status of the integration's response (see kit.logparse docs)
    "disconnect_code": "Int64",
    "disconnect_reason": "string",
    "app_outcome": "string",  # the handler's own word: stored, rejected, conflict, error...
    "app_error_code": "string",  # AccessDeniedException, ResourceNotFoundException, InvalidToken...
    "aws_operation": "string",  # PutItem, DeleteItem, Query...
    "parse_error": "string",  # why the line could not be (fully) read; null when it was
}
"""One row per CloudWatch Logs event, in input order: the event plus what its text says."""

INVOCATION_COLUMNS: Final[Mapping[str, str]] = {
    "request_id": "string",
    "function": "string",  # the log group without /aws/lambda/
    "log_stream": "string",
    "start_ts": UTC_TIME,
    "end_ts": UTC_TIME,
    "route_key": "string",
    "connection_id": "string",
    "duration_ms": "Float64",
    "billed_ms": "Float64",
    "memory_mb": "Int64",
    "max_mem_mb": "Int64",
    "init_ms": "Float64",
    "cold_start": "boolean",
    "status": "string",  # success | error | timeout | unknown
    "error_type": "string",
    "error_message": "string",
    "app_outcome": "string",
    "app_error_code": "string",
    "aws_operation": "string",
}
"""One row per Lambda request id, ordered by start time."""

LIFECYCLE_COLUMNS: Final[Mapping[str, str]] = {
    "connection_id": "string",
    "connect_ts": UTC_TIME,
    "connect_status": "Int64",  # the HTTP status the client saw for the handshake
    "connect_integration_status": "Int64",
    "connect_lambda_request_id": "string",
    "connect_invoked": "boolean",  # was an integration invoked for CONNECT (NA: no CONNECT record)
    "app_outcome": "string",
    "app_error_code": "string",
    "item_written": "boolean",  # True only when the handler said stored; False on a logged error; NA unknown
    "why": "string",
    "disconnect_ts": UTC_TIME,
    "disconnect_code": "Int64",
    "disconnect_reason": "string",
    "lifetime_ms": "Int64",
}
"""One row per WebSocket connection id seen in any of the logs, ordered by connect time."""


def conform(frame: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    """``frame`` reduced to ``columns``, in order, cast to their dtypes, with a fresh 0..n-1 index.

    Missing columns are added as all-NA. Used on the way out of every public function so the contract
    holds whatever path produced the frame.
    """
    result = {}
    for name, dtype in columns.items():
        if name in frame.columns:
            result[name] = _cast(frame[name], dtype)
        else:
            result[name] = pd.Series(pd.NA, index=frame.index, dtype=dtype)
    return pd.DataFrame(result, copy=False).reset_index(drop=True)


def _cast(series: pd.Series, dtype: str) -> pd.Series:
    if str(series.dtype) == dtype:
        return series
    if dtype == UTC_TIME:
        converted = pd.to_datetime(series, utc=True)
        return converted.astype(UTC_TIME)
    if dtype == "Int64" and not pd.api.types.is_integer_dtype(series.dtype):
        numbers = pd.to_numeric(series, errors="coerce").astype("Float64").round()
        return numbers.where(numbers.abs() < MAX_EXACT_INT).astype("Int64")
    if dtype == "string":
        try:
            return series.astype(dtype)
        except UnicodeEncodeError:  # a lone surrogate (from a JSON "\\ud800" escape) has no UTF-8 form
            return series.map(_without_surrogates, na_action="ignore").astype(dtype)
    return series.astype(dtype)


_SURROGATE = re.compile("[\ud800-\udfff]")


def without_surrogates(text: str) -> str:
    """Lone surrogates replaced by U+FFFD, which the parser marks as undecodable; the rest kept as it is."""
    return _SURROGATE.sub("\ufffd", text)


def _without_surrogates(value: object) -> object:
    return without_surrogates(value) if isinstance(value, str) else value
