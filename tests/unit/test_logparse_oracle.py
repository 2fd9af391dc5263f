"""The vectorised parser agrees with the per-line reference parser on generated logs.

Lines are drawn from the documented shapes (platform lines, runtime lines, JSON records, execution and
access lines) with random ids and numbers, then some are cut short, prefixed or filled with junk; groups,
streams and timestamps (missing, equal, out of order) are drawn too. Both parsers must produce the same
frame, every column, every row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit import logparse as lp
from kit.logparse.vectorised import textbuffer

GROUPS = [
    "/aws/lambda/chatgenius-websocket",
    "API-Gateway-Execution-Logs_a1b2c3d4e5/prod",
    "/aws/apigateway/chatgenius-websocket-access",
    "/custom/lambda-logs",
    None,
]
LEVELS = ["INFO", "WARNING", "ERROR", "DEBUG", "CRITICAL", "WARN", "TRACE", "FATAL"]

ids = st.sampled_from(
    ["8f507cfc-1a2b-4697-b07a-ac58fc914c95", "11111111-aaaa-4bbb-8ccc-000000000001", "r1", "undefined", ""]
)
connection_ids = st.sampled_from(["AbCdEfGhIjKlMnO=", "BbCdEfGhIjKlMnQ=", "x y", ""])
numbers = st.one_of(
    st.integers(0, 10**6).map(str),
    st.floats(0, 10**6, allow_nan=False).map(lambda x: f"{x:.2f}"),
    st.sampled_from(["1.2.3", ".", "99999999999999999999999", "-1"]),
)
iso = st.sampled_from(
    [
        "2025-08-31T12:34:56.789Z",
        "2025-08-31T12:34:56Z",
        "2025-08-31T12:34:56.123456789Z",
        "2025-08-31T12:34:5",
    ]
)
sep = st.sampled_from(["\t", " ", "  ", "\t\t"])
words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@st.composite
def report(draw: st.DrawFn) -> str:
    fields = [
        f"Duration: {draw(numbers)} ms",
        f"Billed Duration: {draw(numbers)} ms",
        f"Memory Size: {draw(numbers)} MB",
        f"Max Memory Used: {draw(numbers)} MB",
    ]
    for optional in ("Init Duration: {} ms", "Restore Duration: {} ms", "Billed Restore Duration: {} ms"):
        if draw(st.booleans()):
            fields.append(optional.format(draw(numbers)))
    if draw(st.booleans()):
        fields.append(f"Status: {draw(st.sampled_from(['timeout', 'error', 'success']))}")
        if draw(st.booleans()):
            fields.append(f"Error Type: {draw(st.sampled_from(['Runtime.ExitError', 'Runtime.Unknown']))}")
    s = draw(sep)
    tail = draw(
        st.sampled_from(["\t\n", "\n", "", "\t\nXRAY TraceId: 1-abc\tSegmentId: 7c\tSampled: true\n"])
    )
    return f"REPORT RequestId: {draw(ids)}{s}" + s.join(fields) + tail


def app_json(draw: st.DrawFn) -> str:
    keys = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "route",
                    "connection_id",
                    "connectionId",
                    "request_id",
                    "apigw_request_id",
                    "outcome",
                    "status",
                    "error_code",
                    "operation",
                    "detail",
                    "errorType",
                    "errorMessage",
                    "level",
                    "log_level",
                    "requestId",
                    "eventType",
                    "disconnect_status_code",
                    "message",
                    "type",
                    "record",
                ]
            ),
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(-(10**20), 10**20),
                st.floats(allow_nan=True, allow_infinity=True),
                words,
                st.sampled_from(
                    ["$connect", "stored", "-", "platform.report", "CONNECT", '{"route": "$connect"}']
                ),
                st.just({"requestId": "r1", "status": "timeout", "metrics": {"durationMs": 3.5}}),
            ),
            max_size=6,
        )
    )
    return json.dumps(keys)


@st.composite
def line(draw: st.DrawFn) -> str:
    rid, cid, at = draw(ids), draw(connection_ids), draw(iso)
    line_break = draw(st.sampled_from(["\n", "\r"]))
    exit_text = draw(
        st.sampled_from(
            ["Runtime exited without providing a reason", "Task timed out after 3.00 seconds", ""]
        )
    )
    # Each shape is built only when drawn: building all of them for every line was most of the cost.
    shapes: list[Callable[[], str]] = [
        lambda: f"INIT_START Runtime Version: python:3.12.v50{draw(sep)}Runtime Version ARN: arn\n",
        lambda: f"START RequestId: {rid} Version: $LATEST\n",
        lambda: f"END RequestId: {rid}\n",
        lambda: draw(report()),
        lambda: (
            f"INIT_REPORT Init Duration: {draw(numbers)} ms\tPhase: init\tStatus: error\tError Type: Runtime.ExitError"
        ),
        lambda: f"RESTORE_REPORT Restore Duration: {draw(numbers)} ms",
        lambda: f"[{draw(st.sampled_from(LEVELS))}]\t{at}\t{rid}\t{draw(words)}\n",
        lambda: f"[{draw(st.sampled_from(LEVELS))}]\t{at}\t{rid}\t{app_json(draw)}\n",
        lambda: (
            f"[INFO]\t{at}\t{rid}\tError handling WebSocket event: An error occurred (AccessDeniedException) "
            f"when calling the PutItem operation: User: x is not authorized to perform: dynamodb:PutItem\n"
        ),
        lambda: (
            f"{at}\t{rid}\tINFO\tError handling WebSocket event: ResourceNotFoundException: {draw(words)}\n"
        ),
        lambda: f"[INFO]\t{at}\t{rid}\tConnection attempt {cid} for workspace w1\n",
        lambda: f"[INFO]\t{at}\t{rid}\tStored connection {cid}\n",
        lambda: (
            f"[ERROR] {draw(st.sampled_from(['ClientError', 'KeyError', 'Runtime.ImportModuleError', '']))}: "
            f"{draw(words)}{line_break}Traceback (most recent call last):"
        ),
        lambda: f"{at}\t{rid}\t{draw(st.sampled_from(['INFO', 'ERROR', 'WARN']))}\t{draw(words)}",
        lambda: f"{at}\t{rid}\tERROR\tInvoke Error \t{app_json(draw)}",
        lambda: f"{at} {rid} Task timed out after {draw(numbers)} seconds\n",
        lambda: f"RequestId: {rid} Error: {exit_text}",
        lambda: "Runtime.ExitError\n",
        lambda: f"{at}\t{rid}\t{draw(words)}",  # an older Node runtime's line: no level
        lambda: f"FATAL ERROR: {draw(words)} - JavaScript heap out of memory\n",
        lambda: app_json(draw),
        lambda: json.dumps(
            {
                "time": at,
                "type": draw(st.sampled_from(["platform.start", "platform.report", "platform.x"])),
                "record": {
                    "requestId": rid,
                    "status": "error",
                    "metrics": {"durationMs": 1.5, "billedDurationMs": 2, "initDurationMs": 3},
                },
            }
        ),
        lambda: f"({draw(ids) or 'x'}) {draw(st.sampled_from(EXEC_TEXTS)).format(cid=cid, rid=rid)}",
        lambda: json.dumps(
            {
                "requestId": rid,
                "connectionId": cid,
                "eventType": "CONNECT",
                "status": draw(numbers),
                "integrationStatus": "-",
                "integrationRequestId": rid,
            }
        ),
        lambda: draw(words),
        lambda: "",
    ]
    text = draw(st.sampled_from(shapes))()
    mutation = draw(st.sampled_from(["none", "none", "none", "cut", "prefix", "junk"]))
    if mutation == "cut" and text:
        text = text[: draw(st.integers(0, len(text)))]
    elif mutation == "prefix":
        text = draw(st.sampled_from([" ", "\t", "{", "(", "\x00"])) + text
    elif mutation == "junk":
        text = text + draw(words)
    return text


EXEC_TEXTS = [
    "Extended Request Id: x",
    "WebSocket Request Route: [$connect]",
    "WebSocket Request Route: []",
    "Client [UserAgent: ua, SourceIp: 1.2.3.4] is connecting to WebSocket API [a1].",
    "WebSocket API [a1] received message from client [Connection Id: {cid}].",
    "Received response. Status: 200, Integration latency: 12 ms",
    "AWS Integration Endpoint RequestId : {rid}",
    "Execution failed due to configuration error: Invalid permissions on Lambda function",
    "Lambda execution failed with status 200 due to customer function error: boom. Lambda request id: {rid}",
    "Client [Connection Id: {cid}] connected to API [a1] successfully.",
    "Execution failed: client [Connection Id: {cid}] rejected with status code [502]",
    "Client [Connection Id: {cid}] disconnected from API [a1] with integration response status code [200]. Close reason: [1001: Going away]",
    'Endpoint request body after transformations: {{"requestContext": {{"connectionId": "{cid}"}}}} [TRUNCATED]',
    "Method completed with status: 502",
]


@st.composite
def event_frames(draw: st.DrawFn) -> pd.DataFrame:
    count = draw(st.integers(0, 25))
    events: list[dict[str, Any]] = []
    for index in range(count):
        events.append(
            {
                "logGroupName": draw(st.sampled_from(GROUPS)),
                "logStreamName": draw(st.sampled_from(["s1", "s2", None])),
                "timestamp": draw(st.one_of(st.none(), st.integers(1756643696000, 1756643696010))),
                "ingestionTime": draw(st.one_of(st.none(), st.integers(1756643696000, 1756643699000))),
                "eventId": str(index),
                "message": draw(st.one_of(line(), st.none())) if draw(st.integers(0, 30)) else None,
            }
        )
    return lp.events_frame(events)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_frames())
def test_vectorised_parser_agrees_with_the_reference(events: pd.DataFrame) -> None:
    fast = lp.parse(events)
    pd.testing.assert_frame_equal(fast, lp.parse_lines_slow(events))
    assert len(fast) == len(events)
    assert fast["event_id"].tolist() == events["event_id"].tolist()
    assert set(fast["kind"]) <= set(lp.KINDS)
    assert set(fast["source"]) <= set(lp.SOURCES)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_frames(), st.integers(1, 4), st.integers(1, 400))
def test_chunk_boundaries_change_nothing(events: pd.DataFrame, rows: int, size: int) -> None:
    """The line-by-line passes read a few lines (or bytes) at a time here: a chunk's edge is no line's edge."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(textbuffer, "CHUNK_ROWS", rows)
        patch.setattr(textbuffer, "CHUNK_BYTES", size)
        chunked = lp.parse(events)
    pd.testing.assert_frame_equal(chunked, lp.parse_lines_slow(events))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_frames())
def test_without_string_views_the_lines_are_read_the_other_way(events: pd.DataFrame) -> None:
    """Where the parts cannot be copied out as views (an Arrow without the cast, a buffer past 2 GiB), the
    split and pattern paths read the same lines to the same frame."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(textbuffer, "texts_in_ranges", lambda *args: None)
        patch.setattr(textbuffer, "VIEW_LIMIT", -1)
        without_views = lp.parse(events)
    pd.testing.assert_frame_equal(without_views, lp.parse_lines_slow(events))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=60), max_size=20), st.sampled_from(GROUPS))
def test_any_text_at_all(messages: list[str], group: str | None) -> None:
    events = lp.events_frame(
        [{"message": message, "logGroupName": group, "logStreamName": "s"} for message in messages]
    )
    fast = lp.parse(events)
    pd.testing.assert_frame_equal(fast, lp.parse_lines_slow(events))
    assert len(fast) == len(messages)
    assert fast.loc[fast["kind"] == "unknown", "parse_error"].notna().all()


@settings(max_examples=25, deadline=None)
@given(event_frames())
def test_derived_frames_keep_their_contract(events: pd.DataFrame) -> None:
    parsed = lp.parse(events)
    calls = lp.invocations(parsed)
    lifecycle = lp.connection_lifecycle(parsed)
    assert dict(calls.dtypes.astype(str)) == dict(lp.INVOCATION_COLUMNS)
    assert dict(lifecycle.dtypes.astype(str)) == dict(lp.LIFECYCLE_COLUMNS)
    assert calls["request_id"].is_unique
    assert lifecycle["connection_id"].is_unique
    assert set(calls["status"]) <= {"success", "error", "timeout", "unknown"}
    assert lifecycle["why"].notna().all()
