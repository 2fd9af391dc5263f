"""The per-line reference parser: the same reading as :func:`kit.logparse.parse`, one line at a time.

Kept for two reasons: it is the baseline the vectorised parser's (:mod:`kit.logparse.vectorised`) speed is
measured against, and it is the oracle of its tests (both must produce the same frame). It is written to be
obviously right, not fast; do not use it on large inputs.

Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

from kit import frames
from kit.logparse import patterns as p
from kit.logparse.columns import LOG_COLUMNS, conform
from kit.logparse.events import ensure_events, events_frame


class _Line:
    """One line's reading: its fields (first value kept) and what the classification learned."""

    def __init__(self, message: str, group_source: str | None) -> None:
        self.message = message
        self.group_source = group_source
        self.fields: dict[str, object] = {}
        self.evidence = False
        self.category: str | None = None
        self.role: str | None = None
        self.bad_json = False
        self.plain_fields: dict[str, object] = {}

    def put(self, column: str, value: object) -> None:
        if value is None or value == "" or column in self.fields:
            return
        if column in p.NUMERIC_FIELDS:
            try:
                number = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return
            if math.isnan(number):
                return
            self.fields[column] = number
        else:
            self.fields[column] = value

    def put_all(self, fields: Mapping[str, object]) -> None:
        for column, value in fields.items():
            self.put(column, value)

    def mark(self, kind: str) -> None:
        self.fields["kind"] = kind
        self.evidence = True


def _request_id(value: str | None) -> str | None:
    return None if value is None or value in p.NULL_REQUEST_IDS else value


def _message_json(line: _Line, message: str) -> None:
    if p.JSON_START.match(message):
        document = p.decode_object(message)
        if document is not None:
            line.put_all(p.app_fields(document))


def _read_start_end(line: _Line, text: str, kind: str) -> None:
    found = (p.START if kind == "start" else p.END).match(text)
    line.mark(kind)
    if found is None:
        line.put("parse_error", p.MISSING_REQUEST_ID[kind])
    else:
        line.put("request_id", found.group(1))


def _read_groups(line: _Line, found: re.Match[str], fields: tuple[str | None, ...]) -> None:
    for index, column in enumerate(fields, start=1):
        if column is not None:
            line.put(column, found.group(index))


def _read_report(line: _Line, text: str) -> None:
    found = p.REPORT.match(text)
    assert found is not None  # every group after the prefix is optional
    line.mark("report")
    _read_groups(line, found, p.REPORT_FIELDS)
    if any(found.group(index) is None for index in range(1, 6)):
        line.put("parse_error", p.INCOMPLETE_REPORT)


def _read_init_report(line: _Line, text: str) -> None:
    found = p.INIT_REPORT.match(text)
    assert found is not None
    line.mark("init_report")
    _read_groups(line, found, p.INIT_REPORT_FIELDS)


def _read_python(line: _Line, text: str) -> None:
    found = p.PYTHON_LINE.match(text)
    assert found is not None
    line.mark("app")
    line.put("level", found.group(1))
    line.put("request_id", _request_id(found.group(2)))
    if found.group(3) is None:
        line.put("parse_error", p.INCOMPLETE_PYTHON_LINE)
    else:
        _message_json(line, found.group(3))


def _read_uncaught(line: _Line, text: str) -> None:
    line.mark("error")
    line.put("level", "ERROR")
    found = p.UNCAUGHT.match(text)
    if found is not None:
        line.put("error_type", found.group(1))
        line.put("error_message", found.group(2))
    else:
        loose = p.UNCAUGHT_LOOSE.match(text)
        line.put("error_message", loose.group(1) if loose else None)


def _read_timeout(line: _Line, text: str) -> None:
    found = p.TIMEOUT.match(text)
    if found is not None:
        _timed_out(line)
        line.put("request_id", found.group(1))
        line.put("error_message", found.group(2))


def _read_request_error(line: _Line, text: str) -> None:
    found = p.REQUEST_ERROR.match(text)
    if found is None:
        return
    if found.group(2).startswith("Task timed out"):
        _timed_out(line)
    else:
        line.mark("runtime_exit")
    line.put("request_id", found.group(1))
    line.put("error_message", found.group(2))


def _read_runtime_type(line: _Line, text: str) -> None:
    found = p.RUNTIME_TYPE.match(text)
    if found is not None:
        line.mark("runtime_exit")
        line.put("error_type", found.group(1))


def _read_v8_fatal(line: _Line, text: str) -> None:
    found = p.V8_FATAL.match(text)
    if found is not None:
        line.mark("error")
        line.put("level", "FATAL")
        line.put("error_message", found.group(1))


def _timed_out(line: _Line) -> None:
    line.mark("timeout")
    line.put("status", "timeout")
    line.put("error_type", p.TIMEOUT_ERROR_TYPE)


def _read_node(line: _Line, text: str) -> None:
    found = p.NODE_LINE.match(text)
    if found is None:
        return
    line.mark("app")
    line.put("level", found.group(3))
    line.put("request_id", _request_id(found.group(2)))
    message = found.group(4)
    error = p.NODE_ERROR.match(message)
    if error is None:
        _message_json(line, message)
        return
    line.fields["kind"] = "error"
    rest = error.group(2)
    document = p.decode_object(rest)
    if document is not None:
        line.put_all(p.error_document_fields(document))
    elif rest.strip():
        line.put("error_message", rest.splitlines()[0])


def _read_json(line: _Line, text: str) -> None:
    document = p.decode_object(text)
    if document is None:
        line.bad_json = True
        return
    role = p.json_role(document)
    if role == "access" and line.group_source == "lambda":
        role = "plain"
    line.role = role
    if role == "platform":
        line.put_all(p.platform_fields(document))
        line.evidence = True
    elif role == "lambda_error":
        line.put_all({"kind": "error", **p.error_document_fields(document)})
        line.put("level", "ERROR")
        line.evidence = True
    elif role == "lambda_app":
        line.put_all({"kind": "app", **p.app_fields(document)})
        line.evidence = True
    elif role == "access":
        line.put_all({"kind": "access", **p.access_fields(document)})
    else:
        line.plain_fields = p.app_fields(document)


_READERS: dict[str, Callable[[_Line, str], None]] = {
    "start": lambda line, text: _read_start_end(line, text, "start"),
    "end": lambda line, text: _read_start_end(line, text, "end"),
    "report": _read_report,
    "init_start": lambda line, text: line.mark("init_start"),
    "init_report": _read_init_report,
    "xray": lambda line, text: line.mark("xray"),
    "python": _read_python,
    "uncaught": _read_uncaught,
    "node": _read_node,
    "timeout": _read_timeout,
    "request_error": _read_request_error,
    "runtime_type": _read_runtime_type,
    "v8_fatal": _read_v8_fatal,
    "json": _read_json,
}


def _read_lambda_shape(line: _Line) -> None:
    """Everything a line's own shape says, for lines outside execution-log groups."""
    token = p.LINE_PREFIX.match(line.message)
    line.category = p.PREFIX_CATEGORY.get(token.group(1)) if token else None
    reader = _READERS.get(line.category) if line.category else None
    if reader is not None:
        reader(line, line.message)


def _read_exec(line: _Line) -> None:
    found = p.EXEC_LINE.match(line.message)
    if found is None:
        return
    line.fields["source"] = "apigw_exec"
    line.fields["kind"] = "exec_line"
    line.put("apigw_request_id", found.group(1))
    body = found.group(2).removesuffix(p.TRUNCATED_SUFFIX)
    for rule in p.EXEC_RULES:
        if rule.mark not in body:
            continue
        rule_found = rule.pattern.search(body)
        if rule_found is None or rule_found.group(1) is None:
            continue
        for index, column in enumerate(rule.fields, start=1):
            if column is not None:
                line.put(column, rule_found.group(index))
        line.put_all(rule.constants)
    _event_scan(line, body)


def _event_scan(line: _Line, text: str) -> None:
    if p.EVENT_KEY_MARK not in text:
        return
    for pattern, column in (
        (p.EVENT_CONNECTION_ID, "connection_id"),
        (p.EVENT_ROUTE_KEY, "route_key"),
        (p.EVENT_TYPE, "event_type"),
    ):
        found = pattern.search(text)
        line.put(column, found.group(1) if found else None)


def _scan_lambda_text(line: _Line) -> None:
    text = line.message
    if p.CLIENT_ERROR_MARK in text:
        found = p.CLIENT_ERROR.search(text)
        if found is not None:
            line.put("error_message", found.group(1))
            line.put("app_error_code", found.group(2))
            line.put("aws_operation", found.group(3))
    if p.SDK_ERROR_MARK in text:
        found = p.SDK_ERROR.search(text)
        if found is not None:
            line.put("error_message", found.group(1))
            line.put("app_error_code", found.group(2))
    if p.IAM_DENIED_MARK in text:
        found = p.IAM_DENIED.search(text)
        line.put("aws_operation", found.group(1) if found else None)
    if p.SEED_ERROR_MARK in text:
        line.put("app_outcome", "error")
    if p.SEED_STORED_MARK in text:
        found = p.SEED_STORED.search(text)
        if found is not None:
            line.put("connection_id", found.group(1))
            line.put("app_outcome", "stored")
    if p.SEED_ATTEMPT_MARK in text:
        found = p.SEED_ATTEMPT.search(text)
        line.put("connection_id", found.group(1) if found else None)
    _event_scan(line, text)


def _fallback(line: _Line, stream_lambda: bool) -> None:
    source = line.fields.get("source")
    is_lambda = source == "lambda"
    text = line.message
    empty = text.strip() == ""
    binary = not empty and p.BINARY.search(text) is not None
    if is_lambda and not empty and not binary:
        line.fields["kind"] = "app"
    else:
        line.fields["kind"] = "unknown"
    if empty:
        reason: str | None = p.EMPTY_MESSAGE
    elif binary:
        reason = p.BINARY_MESSAGE
    elif line.bad_json:
        reason = p.BAD_JSON
    elif is_lambda:
        reason = None
    elif source == "apigw_exec":
        reason = p.NO_EXEC_PREFIX
    elif line.role == "plain":
        reason = p.UNKNOWN_JSON
    else:
        reason = p.UNKNOWN_LINE
    line.put("parse_error", reason)


def _parse_frame(frame: pd.DataFrame) -> pd.DataFrame:
    rows = frame.to_dict("records")
    lines: list[_Line] = []
    streams: list[tuple[object, object]] = []
    for row in rows:
        message = row["message"] if isinstance(row["message"], str) else ""
        line = _Line(message, p.group_source(row["log_group"]))
        if line.group_source != "apigw_exec":
            _read_lambda_shape(line)
        lines.append(line)
        group = row["log_group"] if isinstance(row["log_group"], str) else None
        stream = row["log_stream"] if isinstance(row["log_stream"], str) else None
        streams.append((group, stream))

    lambda_streams = {key for key, line in zip(streams, lines, strict=True) if line.evidence}
    for key, line in zip(streams, lines, strict=True):
        if line.group_source == "lambda":
            line.fields["source"] = "lambda"
        elif line.group_source == "apigw_exec":
            line.fields["source"] = "apigw_exec"
            _read_exec(line)
        elif line.role == "access":
            line.fields["source"] = "apigw_access"
        elif line.evidence:
            line.fields["source"] = "lambda"
        else:
            if line.category == "paren":
                _read_exec(line)
            if "source" not in line.fields:
                line.fields["source"] = "lambda" if key in lambda_streams else "unknown"
        if line.fields["source"] == "lambda":
            line.put_all(line.plain_fields)
        if "kind" not in line.fields:
            _fallback(line, key in lambda_streams)

    for line in lines:
        if line.fields["source"] == "lambda" and line.fields["kind"] in ("app", "error"):
            _scan_lambda_text(line)
        route = line.fields.get("route_key")
        if isinstance(route, str):
            line.put("event_type", p.route_event_type(route))

    _carry_request_ids(frame, lines, streams)
    parsed = pd.DataFrame([line.fields for line in lines], index=frame.index, columns=list(LOG_COLUMNS))
    for name in ("log_group", "log_stream", "event_id", "message"):
        parsed[name] = frame[name]
    parsed["ts"] = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
    parsed["ingest_ts"] = pd.to_datetime(frame["ingestion_time"], unit="ms", utc=True)
    parsed["lag_ms"] = frame["ingestion_time"] - frame["timestamp"]
    return conform(parsed, LOG_COLUMNS)


def _carry_request_ids(frame: pd.DataFrame, lines: list[_Line], streams: list[tuple[object, object]]) -> None:
    by_stream: dict[tuple[object, object], list[int]] = {}
    for index, key in enumerate(streams):
        by_stream.setdefault(key, []).append(index)
    stamps = [-1 if pd.isna(value) else int(value) for value in frame["timestamp"]]
    for indexes in by_stream.values():
        ordered = sorted(indexes, key=lambda i: stamps[i])
        current: str | None = None
        for index in ordered:
            line = lines[index]
            if line.fields["source"] != "lambda":
                continue
            kind = line.fields["kind"]
            own = line.fields.get("request_id")
            if kind == "start":
                current = own if isinstance(own, str) else None
            elif kind in ("end", "report", "init_start"):
                current = None
            elif own is None and current is not None:
                line.fields["request_id"] = current


def parse_lines_slow(
    lines: pd.DataFrame | Iterable[str] | Iterable[Mapping[str, Any]],
    *,
    log_group: str | None = None,
    log_stream: str | None = None,
) -> pd.DataFrame:
    """:func:`kit.logparse.parse`, one line at a time (the benchmark baseline and the tests' oracle).

    ``lines`` is the raw event frame, boto3 event dicts, or bare messages (one stream, no timestamps,
    ``log_group``/``log_stream`` applied to all).
    """
    if isinstance(lines, pd.DataFrame):
        frame = ensure_events(lines)
    else:
        items = list(lines)
        if items and all(isinstance(item, str) for item in items):
            frame = events_frame(
                {"message": item, "logGroupName": log_group, "logStreamName": log_stream} for item in items
            )
        else:
            frame = ensure_events(items)
    if len(frame) == 0:
        return frames.empty(LOG_COLUMNS)
    return _parse_frame(frame)
