"""kit.diagnose.delivery_checks offline, one table of cases (pass, fail or warn, skip) on hand-built evidence:
the clients' messages against the route selection expression and the routes, the role's
execute-api:ManageConnections, the @connections endpoint the message functions post to. The evidence builders
and the case's shape are in diagnose_evidence.py.
"""

from __future__ import annotations

import json

import pytest

from kit.diagnose import delivery_checks

from .diagnose_evidence import (
    DEPLOYED,
    NOW,
    TABLE,
    Case,
    assert_case,
    assert_cases_cover,
    exec_line,
    functions,
    log_lines,
    permissions,
    probe_rows,
    route,
    routes,
    skip_case,
    stage,
)

FORBIDDEN = '{"message": "Forbidden", "connectionId":"conn-0", "requestId":"r="}'
INTERNAL = '{"message": "Internal server error", "connectionId":"conn-0", "requestId":"r="}'
NOT_DELIVERED = probe_rows(sent=False, delivered=False, detail="the gateway answered with an error frame: {}")
FORBIDDEN_PROBE = probe_rows(
    sent=False, delivered=False, detail=f"the gateway answered with an error frame: {FORBIDDEN}"
)
BROADCAST_FAILED = probe_rows(
    sent=False, delivered=False, detail=f"the gateway answered with an error frame: {INTERNAL}"
)


def unrouted(value: str, ts: object = NOW) -> dict[str, object]:
    return exec_line(
        "gw-9",
        f"Execution failed: no route matches route selection value [{value}] and the API has no $default route",
        ts=ts,
    )


def environment(**variables: str) -> str:
    return json.dumps({"TABLE_NAME": TABLE, **variables})


OWN_ENDPOINT = "https://abc123.execute-api.us-east-2.amazonaws.com/prod"
POST_FAILED = (
    '[ERROR] broadcast {"outcome": "error", "failures": {"EndpointConnectionError": 1}, '
    '"management_endpoint": "https://abc123.execute-api.us-east-2.amazonaws.com/production"}'
)
POST_DENIED = '[ERROR] broadcast {"outcome": "error", "failures": {"ForbiddenException": 1}}'

CASES: list[Case] = [
    # message-routing
    Case("message-routing pass", delivery_checks.check_message_routing, {}, [("pass", None)], "no message"),
    Case(
        "message-routing: the expression reads a field the clients' frames lack",
        delivery_checks.check_message_routing,
        {"route_selection_expression": "$request.body.type", "probe": FORBIDDEN_PROBE},
        [("fail", "route-selection-mismatch")],
        "the API selects routes with '$request.body.type', which the clients' frames carry action, message",
    ),
    Case(  # without the probe: the execution log's empty selection values say the field is absent
        "message-routing: from the execution log alone, the values are empty",
        delivery_checks.check_message_routing,
        {
            "route_selection_expression": "$request.body.type",
            "probe": None,
            "log_lines": log_lines(unrouted("")),
        },
        [("fail", "route-selection-mismatch")],
        "no route matches route selection value [] (1 messages)",
    ),
    Case(
        "message-routing: the clients name a route the API does not have",
        delivery_checks.check_message_routing,
        {
            "routes": routes(route("$connect"), route("$disconnect"), route("presence")),
            "probe": FORBIDDEN_PROBE,
        },
        [("fail", "message-route-missing")],
        "the clients send route message ($request.body.action), and the API has no such route",
    ),
    Case(
        "message-routing: the route exists, yet the stage answers Forbidden (not deployed)",
        delivery_checks.check_message_routing,
        {"probe": FORBIDDEN_PROBE},
        [("fail", "message-route-missing")],
        "route message exists, yet the stage answers Forbidden for it: deployment dep1",
    ),
    Case(
        "message-routing: a log line from before the stage's deployment says nothing",
        delivery_checks.check_message_routing,
        {"probe": None, "log_lines": log_lines(unrouted("message", ts=DEPLOYED - (NOW - DEPLOYED)))},
        [("pass", None)],
        "no message",
    ),
    Case(
        "message-routing: undated log lines for a route that exists are a warning",
        delivery_checks.check_message_routing,
        {
            "probe": None,
            "log_lines": log_lines(unrouted("message")),
            "stage": stage({"deployment_created": None}),
        },
        [("warn", None)],
        "route message exists",
    ),
    Case(  # some client's heartbeat without a route, while the app's frames carry the expression's field
        "message-routing: from the log alone, frames the app does not send",
        delivery_checks.check_message_routing,
        {"probe": None, "log_lines": log_lines(unrouted(""), unrouted("ping"))},
        [("warn", None)],
        "no frame of the app's clients is among them",
    ),
    Case(
        "message-routing: from the log alone, the app's message route is missing",
        delivery_checks.check_message_routing,
        {
            "probe": None,
            "log_lines": log_lines(unrouted("message")),
            "routes": routes(route("$connect"), route("$disconnect"), route("presence")),
        },
        [("fail", "message-route-missing")],
        "the clients send route message",
    ),
    Case(  # another error frame (the broadcast failed) is no routing fault
        "message-routing: an Internal server error frame is not Forbidden",
        delivery_checks.check_message_routing,
        {"probe": BROADCAST_FAILED},
        [("pass", None)],
        "no message",
    ),
    Case(
        "message-routing: nothing read",
        delivery_checks.check_message_routing,
        {"probe": None, "log_lines": None},
        [("skip", None)],
        "neither a probe",
    ),
    skip_case("message-routing skip", delivery_checks.check_message_routing, "api"),
    # iam-manage-connections
    Case(
        "iam-manage-connections pass",
        delivery_checks.check_manage_connections,
        {},
        [("pass", None)],
        "/POST/@connections/",
    ),
    Case(
        "iam-manage-connections: denied, broadcasts failed",
        delivery_checks.check_manage_connections,
        {
            "permissions": permissions(manage="implicit-deny"),
            "probe": BROADCAST_FAILED,
            "log_lines": log_lines({"message": POST_DENIED, "route_key": "message"}),
        },
        [("fail", "manage-connections-denied")],
        "execute-api:ManageConnections on arn:aws:execute-api:us-east-2:123456789012:abc123/prod/POST/",
    ),
    Case(  # the probe saw every broadcast arrive: the permission's reading is in doubt, not the delivery
        "iam-manage-connections: denied, yet delivered",
        delivery_checks.check_manage_connections,
        {"permissions": permissions(manage="explicit-deny")},
        [("warn", None)],
        "yet the probe's broadcasts were all delivered",
    ),
    Case(  # the message route's function runs under another role: that role decides
        "iam-manage-connections: the message function's own role is denied",
        delivery_checks.check_manage_connections,
        {"message_permissions": permissions(manage="implicit-deny"), "probe": BROADCAST_FAILED},
        [("fail", "manage-connections-denied")],
        "implicit-deny",
    ),
    Case(
        "iam-manage-connections: $connect's role is denied, the message function's is allowed",
        delivery_checks.check_manage_connections,
        {"permissions": permissions(manage="implicit-deny"), "message_permissions": permissions()},
        [("pass", None)],
        "allowed",
    ),
    Case(  # the message function's own role could not be read: $connect's allowing says nothing of it
        "iam-manage-connections: the message function's own role unread",
        delivery_checks.check_manage_connections,
        {"message_permissions": None},
        [("skip", None)],
        "AccessDenied on iam:GetRolePolicy",
        problems={"message-role": "AccessDenied on iam:GetRolePolicy for role message-role"},
    ),
    Case(
        "iam-manage-connections: no role read",
        delivery_checks.check_manage_connections,
        {"permissions": None},
        [("skip", None)],
        "no execution role",
    ),
    skip_case(
        "iam-manage-connections skip", delivery_checks.check_manage_connections, "iam", permissions=None
    ),
    # management-endpoint
    Case(
        "management-endpoint pass",
        delivery_checks.check_management_endpoint,
        {},
        [("pass", None)],
        OWN_ENDPOINT,
    ),
    Case(
        "management-endpoint: its own endpoint named in the environment",
        delivery_checks.check_management_endpoint,
        {"functions": functions({"environment": environment(MANAGEMENT_ENDPOINT=OWN_ENDPOINT)})},
        [("pass", None)],
        "no message function",
    ),
    Case(
        "management-endpoint: another stage",
        delivery_checks.check_management_endpoint,
        {
            "functions": functions({"environment": environment(MANAGEMENT_ENDPOINT=f"{OWN_ENDPOINT}uction")}),
            "probe": BROADCAST_FAILED,
            "log_lines": log_lines({"message": POST_FAILED, "route_key": "message"}),
        },
        [("fail", "management-endpoint-wrong")],
        "MANAGEMENT_ENDPOINT=https://abc123.execute-api.us-east-2.amazonaws.com/production (stage production, "
        "not prod)",
    ),
    Case(
        "management-endpoint: another region and API",
        delivery_checks.check_management_endpoint,
        {
            "functions": functions(
                {
                    "environment": environment(
                        WEBSOCKET_ENDPOINT="wss://zzz999.execute-api.us-east-1.amazonaws.com/prod"
                    )
                }
            ),
            "probe": NOT_DELIVERED,
        },
        [("fail", "management-endpoint-wrong")],
        "API zzz999, not abc123, region us-east-1, not us-east-2",
    ),
    Case(  # a variable that does not name an endpoint may point at another API the function calls
        "management-endpoint: another API in an unrelated variable",
        delivery_checks.check_management_endpoint,
        {
            "functions": functions(
                {
                    "environment": environment(
                        ORDERS_API="https://zzz999.execute-api.us-east-2.amazonaws.com/prod"
                    )
                }
            )
        },
        [("pass", None)],
        "no message function",
    ),
    Case(
        "management-endpoint: only the log names the wrong endpoint",
        delivery_checks.check_management_endpoint,
        {"log_lines": log_lines({"message": POST_FAILED, "route_key": "message"}), "probe": BROADCAST_FAILED},
        [("fail", "management-endpoint-wrong")],
        "the function's log posts to https://abc123.execute-api.us-east-2.amazonaws.com/production",
    ),
    Case(  # a long log line is quoted around what failed, not cut before it
        "management-endpoint: the failure is quoted from a long line",
        delivery_checks.check_management_endpoint,
        {
            "functions": functions({"environment": environment(MANAGEMENT_ENDPOINT=f"{OWN_ENDPOINT}uction")}),
            "probe": BROADCAST_FAILED,
            "log_lines": log_lines({"message": "x" * 400 + POST_DENIED, "route_key": "message"}),
        },
        [("fail", "management-endpoint-wrong")],
        '"failures": {"ForbiddenException": 1}',
    ),
    Case(
        "management-endpoint: wrong, yet delivered",
        delivery_checks.check_management_endpoint,
        {"functions": functions({"environment": environment(MANAGEMENT_ENDPOINT=f"{OWN_ENDPOINT}uction")})},
        [("warn", None)],
        "yet the probe's broadcasts were all delivered",
    ),
    Case(
        "management-endpoint: no message route",
        delivery_checks.check_management_endpoint,
        {"routes": routes(route("$connect"), route("$disconnect"))},
        [("skip", None)],
        "no message function",
    ),
    skip_case("management-endpoint skip", delivery_checks.check_management_endpoint, "api"),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id, marks=case.marks) for case in CASES])
def test_check(case: Case) -> None:
    assert_case(case)


def test_every_check_has_a_pass_a_finding_and_a_skip_case() -> None:
    assert_cases_cover(CASES, delivery_checks)
