"""kit.diagnose.handler_checks offline, one table of cases (pass, fail or warn, skip) on hand-built evidence:
the handler at work, from its logs: crashes, swallowed errors, where and when it writes, its own lines,
early disconnects, ``$connect`` not invoked. The evidence builders and the case's shape are in
diagnose_evidence.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest

from kit.diagnose import handler_checks

from .diagnose_evidence import (
    CONN,
    NOW,
    PROBLEM,
    SWALLOWED,
    Case,
    assert_case,
    assert_cases_cover,
    closed,
    functions,
    invocations,
    items,
    lifecycle,
    log_lines,
    probe_rows,
    skip_case,
)

ERROR_LINE = {"kind": "error", "level": "ERROR", "message": "[ERROR] PutItem failed"}


PLATFORM_ONLY = log_lines({"kind": "start", "level": None, "message": "START RequestId: req-1"})


NO_HANDSHAKE = "no $connect seen in the logs or by a probe"


CONN_B = "QrStUvWxYz01234="


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


# Not awaited, landing in the sender's own presence invocation (req-2), which also logs its own outcome.
STRAY_LINES = log_lines(
    {"app_outcome": None, "message": f"Connection attempt {CONN} for workspace ws-1"},
    {"request_id": "req-2", "ts": LATER, "route_key": None, "message": f"Stored connection {CONN}"},
    {
        "request_id": "req-2",
        "ts": LATER,
        "route_key": "presence",
        "app_outcome": "broadcast",
        "message": '{"route": "presence", "outcome": "broadcast"}',
    },
)
STRAY_CALLS = invocations(
    {"app_outcome": None}, {"request_id": "req-2", "start_ts": LATER, "route_key": "presence"}
)


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
    # handler-crash
    Case("crash pass", handler_checks.check_handshakes, {}, [("pass", None)], "[200]"),
    Case(
        "crash from the logs",
        handler_checks.check_handshakes,
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
        handler_checks.check_handshakes,
        {"lifecycle": None, "probe": probe_rows(http_status=502, stored=None, visible=None)},
        [("fail", "handler-crash")],
        "answered 502",
    ),
    Case(
        "crash skip",
        handler_checks.check_handshakes,
        {"lifecycle": None, "probe": None},
        [("skip", None)],
        NO_HANDSHAKE,
        {"logs": PROBLEM.format("logs")},
    ),
    # error-handling
    Case(
        "swallowed pass",
        handler_checks.check_swallowed_errors,
        {},
        [("pass", None)],
        "no $connect answered 200",
    ),
    Case(
        "swallowed access denied",
        handler_checks.check_swallowed_errors,
        {"lifecycle": lifecycle(SWALLOWED | {"app_error_code": "AccessDeniedException"})},
        [("fail", "error-swallowed")],
        "{'AccessDeniedException': 1}",
    ),
    Case(
        "swallowed resource not found",
        handler_checks.check_swallowed_errors,
        {"lifecycle": lifecycle(SWALLOWED | {"app_error_code": "ResourceNotFoundException"})},
        [("fail", "error-swallowed"), ("fail", "table-not-found")],
        CONN,
    ),
    Case(
        "an error answered 500 is not swallowed",
        handler_checks.check_swallowed_errors,
        {
            "lifecycle": lifecycle(
                SWALLOWED | {"connect_status": 500, "app_error_code": "AccessDeniedException"}
            )
        },
        [("pass", None)],
    ),
    skip_case("swallowed skip", handler_checks.check_swallowed_errors, "logs", lifecycle=None),
    # app-logs
    Case("app logs pass", handler_checks.check_app_logs, {}, [("pass", None)], "1 application lines"),
    Case(
        "app logs pass on an error line",
        handler_checks.check_app_logs,
        {"log_lines": log_lines(ERROR_LINE)},
        [("pass", None)],
    ),
    Case(
        "app logs missing",
        handler_checks.check_app_logs,
        {"log_lines": PLATFORM_ONLY, "functions": functions({"log_level": "WARN"})},
        [("warn", "app-logs-missing")],
        "log level: WARN",
    ),
    skip_case("app logs skip", handler_checks.check_app_logs, "logs", invocations=None, log_lines=None),
    Case(
        "app logs skip no lines",
        handler_checks.check_app_logs,
        {"log_lines": None},
        [("skip", None)],
        "not read",
    ),
    # early-disconnect
    Case(
        "early pass open", handler_checks.check_early_disconnect, {}, [("pass", None)], "has been closed yet"
    ),
    Case(
        "early pass long-lived",
        handler_checks.check_early_disconnect,
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
        handler_checks.check_early_disconnect,
        {"lifecycle": lifecycle(closed("a", 300, 1000), closed("b", 400, 1001))},
        [("fail", "early-disconnect")],
        "close codes {1000: 1, 1001: 1}",
    ),
    Case(
        "early but the connection talked first",
        handler_checks.check_early_disconnect,
        {
            "lifecycle": lifecycle(closed("a", 300)),
            "log_lines": log_lines({"event_type": "MESSAGE", "connection_id": "a", "source": "apigw_access"}),
        },
        [("pass", None)],
    ),
    skip_case("early skip", handler_checks.check_early_disconnect, "logs", lifecycle=None),
    # connect-invoked
    Case("invoked pass", handler_checks.check_connect_invocations, {}, [("pass", None)], "each invoked"),
    Case(
        "not invoked",
        handler_checks.check_connect_invocations,
        {"lifecycle": lifecycle({"connect_invoked": False})},
        [("warn", None)],
        "1 connections with no integration invoked: 1 opened, 0 refused",
    ),
    Case(
        "not invoked and refused",
        handler_checks.check_connect_invocations,
        {"lifecycle": lifecycle({"connect_invoked": False, "connect_status": 500}, {"connect_status": 400})},
        [("warn", None)],
        "1 connections with no integration invoked: 0 opened, 1 refused",
    ),
    skip_case("invoked skip", handler_checks.check_connect_invocations, "logs", lifecycle=None),
    # write-on-connect
    Case(
        "write on connect pass",
        handler_checks.check_write_on_connect,
        {},
        [("pass", None)],
        "1 write(s) in $connect",
    ),
    Case(
        "write on a join message",
        handler_checks.check_write_on_connect,
        {"log_lines": JOIN_LINES, "invocations": JOIN_CALLS},
        [("fail", "write-on-message")],
        "1 write(s) on routes {'join': 1} and none in the 1 $connect invocation(s)",
    ),
    Case(
        "write on a join message, routes from API Gateway's log",
        handler_checks.check_write_on_connect,
        {"log_lines": JOIN_TEXT_LINES, "invocations": JOIN_TEXT_CALLS},
        [("fail", "write-on-message")],
        "outcome 'stored' by request req-2 on join",
    ),
    Case(
        "a write that surfaced in a broadcast's invocation is no write on a message",
        handler_checks.check_write_on_connect,
        {"log_lines": STRAY_LINES, "invocations": STRAY_CALLS},
        [("skip", None)],
        "the 1 write(s) outside $connect were logged by invocations they were not the work of",
    ),
    Case(
        "a write logged while another connection's message ran is no write on a message",
        handler_checks.check_write_on_connect,
        {
            "log_lines": log_lines(
                {"app_outcome": None},
                {"request_id": "req-2", "route_key": "join", "message": f"Stored connection {CONN}"},
            ),
            "invocations": invocations(
                {"app_outcome": None}, {"request_id": "req-2", "route_key": "join", "connection_id": CONN_B}
            ),
        },
        [("skip", None)],
        "were not the work of",
    ),
    Case(
        "writes on $connect and on a message",
        handler_checks.check_write_on_connect,
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
        handler_checks.check_write_on_connect,
        {"log_lines": TALKED_FIRST, "items": items({"timestamp_utc": LATER})},
        [("warn", "write-on-message")],
        "got its item only after sending a message",
    ),
    Case(
        "write on connect skip: items stored at the handshake, no write logged",
        handler_checks.check_write_on_connect,
        {"log_lines": TALKED_FIRST, "items": items({"timestamp_utc": NOW})},
        [("skip", None)],
        "no write",
    ),
    Case(
        "write on connect skip: no route known",
        handler_checks.check_write_on_connect,
        {"log_lines": log_lines({"route_key": None}), "invocations": invocations({"route_key": None})},
        [("skip", None)],
        "none with a known route",
    ),
    skip_case(
        "write on connect skip",
        handler_checks.check_write_on_connect,
        "logs",
        log_lines=None,
        invocations=None,
    ),
    # write-awaited
    Case(
        "awaited pass", handler_checks.check_write_awaited, {}, [("pass", None)], "each inside its $connect"
    ),
    Case(
        "not awaited: stored in the next invocation",
        handler_checks.check_write_awaited,
        {"log_lines": late_lines(STORED_LATE), "invocations": LATE_CALLS, "lifecycle": LATE_LIFECYCLE},
        [("fail", "write-not-awaited")],
        f"outcome 'stored' for {CONN} logged by request req-2, not by its $connect invocation req-1; "
        "2 $connect invocation(s) ended without",
    ),
    Case(
        "not awaited: the PutItem error surfaces in the next invocation",
        handler_checks.check_write_awaited,
        {"log_lines": late_lines(PUT_DENIED_LATE), "invocations": LATE_CALLS, "lifecycle": LATE_LIFECYCLE},
        [("fail", "write-not-awaited")],
        f"PutItem AccessDeniedException for {CONN} logged by request req-2",
    ),
    Case(
        "not awaited: stored after the invocation's END",
        handler_checks.check_write_awaited,
        {
            "log_lines": log_lines({"ts": NOW + timedelta(milliseconds=50)}),
            "invocations": invocations({"end_ts": NOW}),
        },
        [("fail", "write-not-awaited")],
        "logged 50 ms after its $connect invocation req-1 ended",
    ),
    Case(
        "not awaited: stored while the sender's own presence invocation ran",
        handler_checks.check_write_awaited,
        {"log_lines": STRAY_LINES, "invocations": STRAY_CALLS},
        [("fail", "write-not-awaited")],
        f"outcome 'stored' for {CONN} logged by request req-2, not by its $connect invocation req-1",
    ),
    Case(
        "a $connect invocation that logs nothing while others log their writes",
        handler_checks.check_write_awaited,
        SILENT_B,
        [("warn", "write-not-awaited")],
        f"1 of 2 $connect invocations ended without a write or an error line, while the handler logs its "
        f"writes elsewhere (e.g. request req-2 for {CONN_B})",
    ),
    Case(
        "a crashed $connect invocation is not a silent one",
        handler_checks.check_write_awaited,
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
        handler_checks.check_write_awaited,
        {"log_lines": JOIN_LINES, "invocations": JOIN_CALLS},
        [("skip", None)],
        "no $connect write",
    ),
    skip_case("awaited skip", handler_checks.check_write_awaited, "logs", log_lines=None, invocations=None),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id, marks=case.marks) for case in CASES])
def test_check(case: Case) -> None:
    assert_case(case)


def test_every_check_has_a_pass_a_finding_and_a_skip_case() -> None:
    assert_cases_cover(CASES, handler_checks)
