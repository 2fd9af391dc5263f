"""Invocations and connection lifecycles, derived from parsed logs.

The scenario fixture (tests/data/logs/scenario-*.json, made with the lab's own log formatters) holds three
connects and one disconnect, across two Lambda log streams whose events interleave:

    A  AbCdEfGhIjKlMnO=  cold start, the fixed handler stores it; later disconnects with 1001 Going away
    B  BbCdEfGhIjKlMnQ=  the seed (log level lowered to INFO) swallows AccessDenied on PutItem: still 200
    C  CbCdEfGhIjKlMnS=  uncaught ClientError ResourceNotFoundException: Lambda error, API Gateway 502
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kit import logparse as lp
from kit.errors import ConfigurationError

DATA = Path(__file__).resolve().parents[1] / "data" / "logs"
LAMBDA = "/aws/lambda/chatgenius-websocket"
EXEC = "API-Gateway-Execution-Logs_a1b2c3d4e5/prod"
ACCESS = "/aws/apigateway/chatgenius-websocket-access"
S1 = "2025/08/31/[$LATEST]4f1c2b7a9e8d4c6b8a1f0e2d3c4b5a69"
S2 = "2025/08/31/[$LATEST]9a8b7c6d5e4f40312a1b2c3d4e5f6a7b"
R1, R2, R3, R4 = (f"{d * 8}-aaaa-4bbb-8ccc-00000000000{d}" for d in "1234")
A, B, C = "AbCdEfGhIjKlMnO=", "BbCdEfGhIjKlMnQ=", "CbCdEfGhIjKlMnS="
T0 = 1756643696000


def utc(millis: list[int | None]) -> pd.Series:
    return pd.Series(pd.to_datetime(millis, unit="ms", utc=True)).astype("datetime64[ns, UTC]")


def scenario(*, gateway: bool = True, lambda_logs: bool = True) -> pd.DataFrame:
    parts = []
    if lambda_logs:
        parts.append(lp.read_export((DATA / "scenario-lambda.json").read_text(), log_group=LAMBDA))
    if gateway:
        parts.append(lp.read_export((DATA / "scenario-execution.json").read_text(), log_group=EXEC))
        parts.append(lp.read_export((DATA / "scenario-access.json").read_text(), log_group=ACCESS))
    return lp.parse(pd.concat(parts, ignore_index=True))


def frame(columns: dict[str, list[Any]], contract: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(values, dtype=contract[name]) for name, values in columns.items()})


def test_scenario_is_read_the_same_by_both_parsers() -> None:
    parts = [
        lp.read_export((DATA / "scenario-lambda.json").read_text(), log_group=LAMBDA),
        lp.read_export((DATA / "scenario-execution.json").read_text(), log_group=EXEC),
        lp.read_export((DATA / "scenario-access.json").read_text(), log_group=ACCESS),
    ]
    events = pd.concat(parts, ignore_index=True)
    parsed = lp.parse(events)
    pd.testing.assert_frame_equal(parsed, lp.parse_lines_slow(events))
    assert len(parsed) == len(events) == 19 + 36 + 4
    assert parsed["parse_error"].isna().all()


def test_the_crash_line_gets_its_own_streams_request_id() -> None:
    parsed = scenario(gateway=False)
    crash = parsed[parsed["kind"] == "error"]
    assert crash["log_stream"].tolist() == [S1]
    assert crash["request_id"].tolist() == [R3]  # not R2, which was running in S2 at the same time


def test_invocations_of_the_scenario() -> None:
    calls = lp.invocations(scenario())
    contract = dict(lp.INVOCATION_COLUMNS)
    expected = frame(
        {
            "request_id": [R1, R3, R2, R4],  # by start time: C's START (S1) comes 15 ms before B's (S2)
            "function": ["chatgenius-websocket"] * 4,
            "log_stream": [S1, S1, S2, S1],
            "route_key": ["$connect", None, None, "$disconnect"],
            "connection_id": [A, None, B, A],
            "duration_ms": [25.31, 44.87, 80.12, 12.5],
            "billed_ms": [143.0, 45.0, 191.0, 13.0],
            "memory_mb": [128] * 4,
            "max_mem_mb": [78, 79, 80, 79],
            "init_ms": [117.4, None, 110.2, None],
            "cold_start": [True, False, True, False],
            "status": ["success", "error", "success", "success"],
            "error_type": [None, "ClientError", None, None],
            "app_outcome": ["stored", None, "error", "deleted"],
            "app_error_code": [None, "ResourceNotFoundException", "AccessDeniedException", None],
            "aws_operation": [None, "PutItem", "PutItem", None],
        },
        contract,
    )
    pd.testing.assert_frame_equal(calls[list(expected.columns)], expected)
    assert list(calls.columns) == list(lp.INVOCATION_COLUMNS)
    assert dict(calls.dtypes.astype(str)) == contract
    pd.testing.assert_series_equal(
        calls["start_ts"], utc([T0 + 125, T0 + 2100, T0 + 2115, T0 + 60005]), check_names=False
    )
    assert calls["end_ts"].tolist()[0] == pd.Timestamp(T0 + 156, unit="ms", tz="UTC")
    assert calls["error_message"].tolist()[1].startswith("An error occurred (ResourceNotFoundException)")


def test_lifecycle_of_the_scenario() -> None:
    lifecycle = lp.connection_lifecycle(scenario())
    contract = dict(lp.LIFECYCLE_COLUMNS)
    expected = frame(
        {
            "connection_id": [A, B, C],
            "connect_ts": [None, None, None],
            "connect_status": [200, 200, 502],
            "connect_integration_status": [200, 200, 200],
            "connect_lambda_request_id": [R1, R2, R3],
            "connect_invoked": [True, True, True],
            "app_outcome": ["stored", "error", None],
            "app_error_code": [None, "AccessDeniedException", "ResourceNotFoundException"],
            "item_written": [True, False, False],
            "why": [
                f"the $connect handler logged outcome 'stored' (Lambda request {R1})",
                f"the $connect invocation logged AccessDeniedException from PutItem (Lambda request {R2}); "
                "API Gateway still answered 200, so the client saw a connection that was never stored",
                f"the $connect invocation logged ResourceNotFoundException from PutItem (Lambda request {R3}); "
                "API Gateway answered 502",
            ],
            "disconnect_ts": [None, None, None],
            "disconnect_code": [1001, None, None],
            "disconnect_reason": ["Going away", None, None],
            "lifetime_ms": [60000, None, None],
        },
        contract,
    )
    # A request's time is its first execution-log line (the access-log line is written 60 ms later).
    expected["connect_ts"] = utc([T0, T0 + 2000, T0 + 2010])
    expected["disconnect_ts"] = utc([T0 + 60000, None, None])
    pd.testing.assert_frame_equal(lifecycle, expected)


def test_lifecycle_from_gateway_logs_alone() -> None:
    lifecycle = lp.connection_lifecycle(scenario(lambda_logs=False)).set_index("connection_id")
    assert lifecycle["connect_invoked"].tolist() == [True, True, True]
    assert lifecycle["connect_lambda_request_id"].tolist() == [R1, R2, R3]
    assert lifecycle["item_written"].isna().all()
    assert lifecycle.loc[A, "why"].startswith("the $connect integration ran")


def test_lifecycle_from_lambda_logs_alone() -> None:
    lifecycle = lp.connection_lifecycle(scenario(gateway=False)).set_index("connection_id")
    assert list(lifecycle.index) == [A, B]  # C's crash never logged its connection id
    assert lifecycle.loc[A, "item_written"] == True  # noqa: E712
    assert lifecycle.loc[A, "connect_lambda_request_id"] == R1
    assert lifecycle.loc[A, "disconnect_code"] == 1001  # from the $disconnect handler's own line
    assert pd.isna(lifecycle.loc[A, "connect_ts"])
    # B: the seed's lines carry no route, so nothing ties its invocation to $connect without the gateway.
    assert pd.isna(lifecycle.loc[B, "item_written"])


def gateway_connect(
    connection_id: str, *, integration_status: str, integration_request_id: str, status: str
) -> str:
    return (
        '{"requestId":"Q' + connection_id + '","connectionId":"' + connection_id + '","eventType":"CONNECT",'
        '"routeKey":"$connect","status":"' + status + '","integrationStatus":"' + integration_status + '",'
        '"integrationRequestId":"' + integration_request_id + '","integrationError":"-"}'
    )


def test_connect_without_any_integration() -> None:
    events = lp.events_frame(
        [
            {
                "message": gateway_connect(
                    "N1", integration_status="-", integration_request_id="-", status="200"
                ),
                "timestamp": T0,
                "logStreamName": "a",
            }
        ],
        log_group=ACCESS,
    )
    row = lp.connection_lifecycle(lp.parse(events)).iloc[0]
    assert row["connect_invoked"] == False  # noqa: E712
    assert row["item_written"] == False  # noqa: E712
    assert (
        row["why"]
        == "no integration was invoked for $connect (API Gateway answered 200): nothing could have written the item"
    )


def test_seed_at_its_default_level_logs_nothing_so_the_verdict_is_unknown() -> None:
    rid = "66666666-aaaa-4bbb-8ccc-000000000006"
    events = pd.concat(
        [
            lp.events_frame(
                [
                    {
                        "message": gateway_connect(
                            "N2", integration_status="200", integration_request_id=rid, status="200"
                        ),
                        "timestamp": T0,
                    }
                ],
                log_group=ACCESS,
            ),
            lp.events_frame(
                [
                    {
                        "message": f"START RequestId: {rid} Version: $LATEST\n",
                        "timestamp": T0 + 1,
                        "logStreamName": "s",
                    },
                    {"message": f"END RequestId: {rid}\n", "timestamp": T0 + 2, "logStreamName": "s"},
                    {
                        "message": f"REPORT RequestId: {rid}\tDuration: 80.00 ms\tBilled Duration: 80 ms\t"
                        "Memory Size: 128 MB\tMax Memory Used: 80 MB\t\n",
                        "timestamp": T0 + 3,
                        "logStreamName": "s",
                    },
                ],
                log_group=LAMBDA,
            ),
        ],
        ignore_index=True,
    )
    row = lp.connection_lifecycle(lp.parse(events)).iloc[0]
    assert row["connect_invoked"] == True  # noqa: E712
    assert pd.isna(row["item_written"])
    assert "logged no outcome" not in row["why"]
    assert row["why"].startswith(
        f"the $connect integration ran (Lambda request {rid}) but no outcome was logged"
    )


def test_a_crash_without_an_aws_error_code_is_unknown() -> None:
    rid = "77777777-aaaa-4bbb-8ccc-000000000007"
    events = pd.concat(
        [
            lp.events_frame(
                [
                    {
                        "message": gateway_connect(
                            "N3", integration_status="-", integration_request_id=rid, status="502"
                        ),
                        "timestamp": T0,
                    }
                ],
                log_group=ACCESS,
            ),
            lp.events_frame(
                [
                    {
                        "message": f"START RequestId: {rid} Version: $LATEST\n",
                        "timestamp": T0 + 1,
                        "logStreamName": "s",
                    },
                    {
                        "message": "[ERROR] KeyError: 'token'\nTraceback (most recent call last):",
                        "timestamp": T0 + 2,
                        "logStreamName": "s",
                    },
                    {"message": f"END RequestId: {rid}\n", "timestamp": T0 + 3, "logStreamName": "s"},
                ],
                log_group=LAMBDA,
            ),
        ],
        ignore_index=True,
    )
    row = lp.connection_lifecycle(lp.parse(events)).iloc[0]
    assert pd.isna(row["item_written"])
    assert (
        row["why"]
        == f"the $connect function ended in error (KeyError: 'token') before logging an outcome (Lambda request {rid})"
    )


@pytest.mark.parametrize(
    ("lines", "status", "cold"),
    [
        pytest.param(
            ["START RequestId: r Version: $LATEST", "END RequestId: r"], "unknown", False, id="no REPORT yet"
        ),
        pytest.param(
            [
                "START RequestId: r Version: $LATEST",
                "2025-08-31T12:35:01.542Z r Task timed out after 3.00 seconds",
                "END RequestId: r",
                "REPORT RequestId: r\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 64 MB",
            ],
            "timeout",
            False,
            id="timeout line, old style",
        ),
        pytest.param(
            [
                "INIT_START Runtime Version: python:3.12.v50\tRuntime Version ARN: arn",
                "START RequestId: r Version: $LATEST",
                "RequestId: r Error: Runtime exited with error: exit status 1",
                "Runtime.ExitError",
                "END RequestId: r",
                "REPORT RequestId: r\tDuration: 9.00 ms\tBilled Duration: 9 ms\tMemory Size: 128 MB\tMax Memory Used: 64 MB\tStatus: error\tError Type: Runtime.ExitError",
            ],
            "error",
            True,
            id="runtime exit after INIT_START",
        ),
    ],
)
def test_invocation_status(lines: list[str], status: str, cold: bool) -> None:
    parsed = lp.parse(lp.read_raw_lines("\n".join(lines), log_group=LAMBDA, log_stream="s"))
    calls = lp.invocations(parsed)
    assert calls["request_id"].tolist() == ["r"]
    assert calls.loc[0, "status"] == status
    assert calls.loc[0, "cold_start"] == cold


@pytest.mark.parametrize("derive", [lp.invocations, lp.connection_lifecycle])
def test_empty_inputs_give_the_declared_empty_frames(derive: Any) -> None:
    contract = lp.INVOCATION_COLUMNS if derive is lp.invocations else lp.LIFECYCLE_COLUMNS
    for parsed in (lp.parse([]), lp.parse(lp.read_raw_lines("hello\n"))):
        derived = derive(parsed)
        assert len(derived) == 0
        assert dict(derived.dtypes.astype(str)) == dict(contract)


@pytest.mark.parametrize("derive", [lp.invocations, lp.connection_lifecycle])
def test_derived_frames_need_a_parsed_frame(derive: Any) -> None:
    with pytest.raises(ConfigurationError, match="not a parsed log frame"):
        derive(lp.events_frame([{"message": "x", "timestamp": 1}]))
