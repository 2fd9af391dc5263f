"""Logs Insights for the lab: ``StartQuery``, ``GetQueryResults`` and ``StopQuery`` answered in the lab's own
AWS layer, in front of moto, by evaluating the query over the events moto stores.

moto's own ``StartQuery`` ignores ``filter``, ``parse`` and ``stats`` (it returns every event), so a
diagnosis of a big window would read wrong answers from it. :class:`QueryStore` runs the query with
:func:`kit.lab.insights_query.evaluate` at start and keeps the answer until asked; :class:`InsightsApp` is
the WSGI layer (like :mod:`kit.lab.deployments`) that routes the three operations to it and everything else
to moto. A query outside the evaluator's subset is answered ``MalformedQueryException``, as AWS answers a
query it cannot parse. Queries complete at once: the lab does not emulate Insights' seconds (the bench does,
:mod:`bench.insights`).

Must not: change moto's state, or answer anything but the three operations.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

from kit.lab.insights_query import EVENT_FIELDS, QuerySyntaxError, evaluate

_TARGET_PREFIX = "Logs_20140328."
OPERATIONS = ("StartQuery", "GetQueryResults", "StopQuery")
MAX_LIMIT = 100_000  # StartQuery's limit (2026), answered in pages of at most PAGE_ROWS
PAGE_ROWS = 10_000
DEFAULT_ACCOUNT = "123456789012"

# (account, region, log group names, start ms, end ms) -> the events in the window, as EVENT_FIELDS
EventSource = Callable[[str, str, list[str], int, int], pd.DataFrame]


class InsightsError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class QueryStore:
    """Queries by id: evaluated when started, answered (``Complete``) when asked. Thread-safe."""

    def __init__(self, events: EventSource) -> None:
        self._events = events
        self._answers: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def start(self, account: str, region: str, request: dict[str, Any]) -> dict[str, Any]:
        names = request.get("logGroupNames") or (
            [request["logGroupName"]] if request.get("logGroupName") else []
        )
        if not names:
            raise InsightsError("InvalidParameterException", "logGroupNames is required in the lab")
        try:
            start_ms = int(request["startTime"]) * 1000
            end_ms = int(request["endTime"]) * 1000 + 999  # both ends inclusive, in seconds
            query = str(request["queryString"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InsightsError("InvalidParameterException", f"missing or bad {exc}") from exc
        limit = int(request.get("limit") or 10_000)
        if not 1 <= limit <= MAX_LIMIT:
            raise InsightsError("InvalidParameterException", f"limit must be between 1 and {MAX_LIMIT}")
        events = self._events(account, region, list(names), start_ms, end_ms)
        try:
            rows = evaluate(query, events, limit)
        except QuerySyntaxError as exc:
            raise InsightsError("MalformedQueryException", str(exc)) from exc
        query_id = str(uuid.uuid4())
        scanned = int(events["@message"].str.len().sum()) if len(events) else 0
        answer = {
            "status": "Complete",
            "results": rows,
            "statistics": {
                "recordsMatched": float(len(rows)),
                "recordsScanned": float(len(events)),
                "bytesScanned": float(scanned),
            },
        }
        with self._lock:
            self._answers[query_id] = answer
        return {"queryId": query_id}

    def results(self, request: dict[str, Any]) -> dict[str, Any]:
        """The query's answer, one page of at most ``maxItems`` (10,000) rows from ``nextToken`` on."""
        with self._lock:
            answer = self._answers.get(str(request.get("queryId")))
        if answer is None:
            raise InsightsError("ResourceNotFoundException", f"query {request.get('queryId')} not found")
        try:
            size = min(int(request.get("maxItems") or PAGE_ROWS), PAGE_ROWS)
            offset = int(request.get("nextToken") or 0)
        except (TypeError, ValueError) as exc:
            raise InsightsError("InvalidParameterException", f"bad maxItems or nextToken: {exc}") from exc
        rows = answer["results"]
        page = {**answer, "results": rows[offset : offset + size]}
        if offset + size < len(rows):
            page["nextToken"] = str(offset + size)
        return page

    def stop(self, request: dict[str, Any]) -> dict[str, Any]:
        self.results(request)
        return {"success": False}  # it has already completed


def events_frame(events: Iterable[tuple[str, str, dict[str, Any]]], account: str) -> pd.DataFrame:
    """(group, stream, boto3-like event) triples → the evaluator's event frame (pure)."""
    rows = [
        {
            "@timestamp": int(event["timestamp"]),
            "@message": str(event["message"]),
            "@logStream": stream,
            "@log": f"{account}:{group}",
            "@ptr": f"{group}|{stream}|{event.get('eventId', index)}",
        }
        for index, (group, stream, event) in enumerate(events)
    ]
    frame = pd.DataFrame(rows, columns=list(EVENT_FIELDS))
    return frame.astype({"@message": "string", "@logStream": "string", "@log": "string", "@ptr": "string"})


def moto_events(account: str, region: str, names: list[str], start_ms: int, end_ms: int) -> pd.DataFrame:
    """The events moto stores for these groups in ``[start_ms, end_ms]`` (the lab runs moto in-process)."""
    from moto.logs.models import logs_backends

    backend = logs_backends[account][region]
    found = []
    for name in names:
        group = backend.groups.get(name)
        if group is None:
            continue
        for stream_name, stream in list(group.streams.items()):
            for event in list(stream.events):
                if start_ms <= event.timestamp <= end_ms:
                    found.append((name, stream_name, event.to_filter_dict()))
    return events_frame(found, account)


def _scope(environ: dict[str, Any]) -> tuple[str, str]:
    """(account, region) of a signed request: the region from its SigV4 scope; moto's one account."""
    authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
    region = "us-east-1"
    if "Credential=" in authorization:
        parts = authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(parts) >= 3:
            region = parts[2]
    return DEFAULT_ACCOUNT, region


class InsightsApp:
    """WSGI layer in front of moto answering Logs Insights' StartQuery, GetQueryResults and StopQuery."""

    def __init__(self, app: Callable[..., Any], events: EventSource = moto_events) -> None:
        self.app = app
        self.store = QueryStore(events)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        operation = target.removeprefix(_TARGET_PREFIX) if target.startswith(_TARGET_PREFIX) else ""
        if operation not in OPERATIONS:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        try:
            request = json.loads(body or b"{}")
            account, region = _scope(environ)
            if operation == "StartQuery":
                answer = self.store.start(account, region, request)
            elif operation == "GetQueryResults":
                answer = self.store.results(request)
            else:
                answer = self.store.stop(request)
            return _answer(start_response, 200, answer)
        except InsightsError as exc:
            return _answer(start_response, exc.status, {"__type": exc.code, "message": exc.message})
        except ValueError as exc:
            return _answer(start_response, 400, {"__type": "SerializationException", "message": str(exc)})


def _answer(start_response: Callable[..., Any], status: int, document: dict[str, Any]) -> list[bytes]:
    body = json.dumps(document).encode()
    reason = {200: "OK", 400: "Bad Request"}.get(status, "Error")
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))],
    )
    return [body]
