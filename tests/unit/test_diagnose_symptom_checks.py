"""kit.diagnose.symptom_checks offline, one table of cases (pass, fail or warn, skip) on hand-built evidence:
refused handshakes, probe connections not stored, messages not delivered. The evidence builders and the
case's shape are in diagnose_evidence.py.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from kit import frames, probe_core
from kit.diagnose import symptom_checks

from .diagnose_evidence import (
    CONN,
    PROBLEM,
    Case,
    assert_case,
    assert_cases_cover,
    lifecycle,
    log_lines,
    probe_rows,
    skip_case,
)


def gateway_request(
    request_id: str, connection_id: str, event_type: str, status: int, error: str
) -> list[dict[str, Any]]:
    """One API Gateway request, as its execution log writes it: a line naming the client (and the status it
    got), and the ERROR line that says why, which names no client (it shares only the request id)."""
    common = {
        "log_group": "API-Gateway-Execution-Logs_abc123/prod",
        "source": "apigw_exec",
        "kind": "exec_line",
        "request_id": None,
        "apigw_request_id": request_id,
        "route_key": None,
        "app_outcome": None,
        "level": "ERROR",
    }
    return [
        common | {"connection_id": None, "error_message": error, "message": f"({request_id}) {error}"},
        common
        | {
            "connection_id": connection_id,
            "event_type": event_type,
            "http_status": status,
            "error_message": f"client [Connection Id: {connection_id}] rejected with status code [{status}]",
            "message": f"({request_id}) rejected",
        },
    ]


NO_INVOKE_PERMISSION = "configuration error: Invalid permissions on Lambda function"


NO_ROUTE = "no route matches route selection value [] and the API has no $default route"


REFUSED_500 = lifecycle(
    {
        "connect_status": 500,
        "connect_invoked": False,
        "app_outcome": None,
        "item_written": False,
        "why": "none ran",
    }
)


FORBIDDEN_FRAME = '{"message": "Forbidden", "connectionId":"conn-0", "requestId":"r-9"}'


CASES: list[Case] = [
    # handshake (what the probe and the logs saw refused, whatever the reason)
    Case(
        "handshake pass",
        symptom_checks.check_handshake_refusals,
        {},
        [("pass", None)],
        "1 probe handshakes accepted",
    ),
    Case(
        "handshake refused, with the gateway's own words",
        symptom_checks.check_handshake_refusals,
        {
            "probe": probe_rows(
                http_status=500, stored=None, visible=None, sent=None, delivered=None, detail="HTTP 500"
            ),
            "lifecycle": REFUSED_500,
            "log_lines": log_lines(*gateway_request("g-1", CONN, "CONNECT", 500, NO_INVOKE_PERMISSION)),
        },
        [("fail", "handshake-refused")],
        "1 of 1 probe handshakes refused (HTTP 500 ×1): HTTP 500; 1 $connect requests in the logs answered "
        f"HTTP 500 ×1; the logs say: none ran; API Gateway's execution log: {NO_INVOKE_PERMISSION}",
    ),
    Case(
        "handshake refused by the handler, seen by the probe alone",
        symptom_checks.check_handshake_refusals,
        {
            "probe": probe_rows(http_status=400, stored=None, visible=None, detail="HTTP 400"),
            "lifecycle": None,
        },
        [("fail", "handshake-refused")],
        "1 of 1 probe handshakes refused (HTTP 400 ×1): HTTP 400",
    ),
    Case(
        "handshake refused, the probe's 502 too (handler-crash ranks first)",
        symptom_checks.check_handshake_refusals,
        {"probe": probe_rows(http_status=502, stored=None, visible=None), "lifecycle": None},
        [("fail", "handshake-refused")],
        "HTTP 502 ×1",
    ),
    Case(
        "handshake refused with 400, and the logs say why",
        symptom_checks.check_handshake_refusals,
        {
            "probe": probe_rows(http_status=400, stored=None, visible=None, detail="HTTP 400"),
            "lifecycle": lifecycle({"connect_status": 400, "why": "the handler answered 400"}),
        },
        [("fail", "handshake-refused")],
        "1 of 1 probe handshakes refused (HTTP 400 ×1): HTTP 400; the logs say: the handler answered 400",
    ),
    Case(
        "handshake refused in the logs without a probe",
        symptom_checks.check_handshake_refusals,
        {"probe": None, "lifecycle": lifecycle({"connect_status": 503}, {"connect_status": 200})},
        [("fail", "handshake-refused")],
        "1 $connect requests in the logs answered HTTP 503 ×1",
    ),
    Case(
        "handshake a 502 in the logs is the crash check's",
        symptom_checks.check_handshake_refusals,
        {"probe": None, "lifecycle": lifecycle({"connect_status": 502})},
        [("pass", None)],
        "statuses in the logs: [502]",
    ),
    Case(
        "handshake a 4xx in the logs may be a bad client",
        symptom_checks.check_handshake_refusals,
        {"probe": None, "lifecycle": lifecycle({"connect_status": 499}, {"connect_status": 401})},
        [("pass", None)],
        "statuses in the logs: [401, 499]",
    ),
    Case(
        "handshake no answer at all is an unreachable target",
        symptom_checks.check_handshake_refusals,
        {
            "probe": probe_rows(
                http_status=None, stored=None, visible=None, detail="connection refused by ws://x"
            )
        },
        [("fail", "target-unreachable")],
        "1 of 1 probe connections got no answer to the handshake: connection refused by ws://x",
    ),
    Case(
        "handshake some unanswered, some refused",
        symptom_checks.check_handshake_refusals,
        {
            "probe": pd.concat(
                [probe_rows(http_status=None), probe_rows(http_status=500).assign(client=1)],
                ignore_index=True,
            ),
            "lifecycle": None,
        },
        [("fail", "target-unreachable"), ("fail", "handshake-refused")],
        "1 of 2 probe connections got no answer",
    ),
    Case(
        "handshake skip",
        symptom_checks.check_handshake_refusals,
        {"probe": None, "lifecycle": None},
        [("skip", None)],
        PROBLEM.format("probe"),
        {"probe": PROBLEM.format("probe")},
    ),
    # delivery (the probe's send and deliver steps)
    Case(
        "delivery pass",
        symptom_checks.check_delivery,
        {},
        [("pass", None)],
        "1 broadcasts reached every other",
    ),
    Case(
        "delivery refused by the gateway, with its own words",
        symptom_checks.check_delivery,
        {
            "probe": probe_rows(sent=False, delivered=False, detail=FORBIDDEN_FRAME),
            "log_lines": log_lines(*gateway_request("g-2", "conn-0", "MESSAGE", 403, NO_ROUTE)),
        },
        [("fail", "not-delivered")],
        f"send-message (client 0): send-message False {FORBIDDEN_FRAME}; deliver-message (client 0): "
        f"deliver-message False; API Gateway's execution log: {NO_ROUTE}",
    ),
    Case(
        "delivery sent but never received",
        symptom_checks.check_delivery,
        {"probe": probe_rows(delivered=False, clients=2)},
        [("fail", "not-delivered")],
        "deliver-message (client 0): deliver-message False; deliver-message (client 1): deliver-message False",
    ),
    Case(
        "delivery three failed steps quote two",
        symptom_checks.check_delivery,
        {"probe": probe_rows(sent=False, delivered=False, clients=2)},
        [("fail", "not-delivered")],
        "and 2 more failed steps",
    ),
    Case(
        "delivery a lone client's refused frame",
        symptom_checks.check_delivery,
        {"probe": probe_rows(sent=False, delivered=None)},
        [("fail", "not-delivered")],
        "send-message (client 0)",
    ),
    Case(
        "delivery a lone client with nobody to deliver to",
        symptom_checks.check_delivery,
        {"probe": probe_rows(delivered=None)},
        [("pass", None)],
        "1 frames sent without an error frame; no other client",
    ),
    Case(
        "delivery an oversize frame closed is not a delivery",
        symptom_checks.check_delivery,
        {
            "probe": pd.concat(
                [
                    probe_rows(),
                    frames.from_rows(
                        [{"client": 0, "step": "send-oversize", "ok": False, "detail": "closed 1009"}],
                        probe_core.PROBE_COLUMNS,
                    ),
                ],
                ignore_index=True,
            )
        },
        [("pass", None)],
        "1 broadcasts",
    ),
    Case(
        "delivery skip when nothing was exchanged",
        symptom_checks.check_delivery,
        {
            "probe": probe_rows(
                http_status=500, stored=None, visible=None, sent=None, delivered=None, detail="x"
            )
        },
        [("skip", None)],
        "no message was exchanged: send-message None x",
    ),
    skip_case("delivery skip", symptom_checks.check_delivery, "probe", probe=None),
    # probe
    Case("probe pass", symptom_checks.check_probe_parameters, {}, [("pass", None)], "1 probe connections"),
    Case(
        "probe never stored",
        symptom_checks.check_probe_parameters,
        {"probe": probe_rows(stored=False, visible=None, clients=2)},
        [("fail", "not-stored")],
        "2 of 2 probe connections were never stored",
    ),
    Case(
        "probe not in the index",
        symptom_checks.check_probe_parameters,
        {"probe": probe_rows(visible=False)},
        [("fail", "workspace-id-missing")],
        "index-visible False",
    ),
    Case(
        "probe skipped steps are neither failures nor passes",
        symptom_checks.check_probe_parameters,
        {"probe": probe_rows(http_status=500, stored=None, visible=None)},
        [("skip", None)],
        "no probe connection opened",
    ),
    Case(
        "probe one of two stored is still a symptom",
        symptom_checks.check_probe_parameters,
        {"probe": pd.concat([probe_rows(), probe_rows(stored=False, visible=None).assign(client=1)])},
        [("fail", "not-stored")],
        "1 of 2 probe connections",
    ),
    skip_case("probe skip", symptom_checks.check_probe_parameters, "probe", probe=None),
    Case(
        "probe skip read-only",
        symptom_checks.check_probe_parameters,
        {"probe": None},
        [("skip", None)],
        "no probe was run",
    ),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id, marks=case.marks) for case in CASES])
def test_check(case: Case) -> None:
    assert_case(case)


def test_every_check_has_a_pass_a_finding_and_a_skip_case() -> None:
    assert_cases_cover(CASES, symptom_checks)
