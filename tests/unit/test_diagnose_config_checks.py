"""kit.diagnose.config_checks offline, one table of cases (pass, fail or warn, skip) on hand-built evidence:
the ``$connect`` route and its integration, the functions' ``TABLE_NAME``, the stage's logging. The evidence
builders and the case's shape are in diagnose_evidence.py.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from kit import config
from kit.diagnose import config_checks

from .diagnose_evidence import (
    DEPLOYED,
    FUNCTION_ARN,
    LAMBDA_URI,
    NOW,
    OTHER_REGION,
    PROBLEM,
    REGION,
    TABLE,
    Case,
    assert_case,
    assert_cases_cover,
    exec_line,
    functions,
    invoked_uri,
    lifecycle,
    log_lines,
    probe_rows,
    route,
    routes,
    served,
    skip_case,
    stage,
)

OLD_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:chatgenius-connect-v1"
AUTHORIZER_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:chatgenius-connect-authorizer"


def authorized(authorizer_arn: str, integration_arn: str | None) -> list[dict[str, object]]:
    """A $connect request whose authorizer ran (its endpoint first), then invoked ``integration_arn``, or
    nothing when the authorizer refused."""
    lines = [
        exec_line("gw-1", "WebSocket Request Route: [$connect]", route_key="$connect"),
        exec_line("gw-1", "Starting authorizer: au1 for request: gw-1"),
        exec_line("gw-1", f"Endpoint request URI: {invoked_uri(authorizer_arn)}"),
    ]
    if integration_arn is not None:
        lines.append(exec_line("gw-1", f"Endpoint request URI: {invoked_uri(integration_arn)}"))
    return lines


ROUTE_DELETED = config.routes_frame(
    [{"RouteKey": "$disconnect", "RouteId": "r2", "Target": "integrations/i1"}],
    [{"IntegrationId": "i1", "IntegrationType": "AWS_PROXY", "IntegrationUri": LAMBDA_URI}],
)


THROTTLE_ZERO = {
    "connect_throttle_rate": 0.0,
    "connect_throttle_burst": 0,
    "connect_throttle_source": "DefaultRouteSettings",
}
THROTTLE_SOME = {
    "connect_throttle_rate": 10.0,
    "connect_throttle_burst": 20,
    "connect_throttle_source": "DefaultRouteSettings",
}


ROUTE_DANGLING = config.routes_frame(
    [{"RouteKey": "$connect", "RouteId": "r1", "Target": "integrations/gone"}],
    [{"IntegrationId": "i1", "IntegrationType": "AWS_PROXY", "IntegrationUri": LAMBDA_URI}],
)


CASES: list[Case] = [
    # connect-route
    Case("connect-route pass", config_checks.check_connect_route, {}, [("pass", None)], "AWS_PROXY"),
    Case(
        "connect-route no $connect row",
        config_checks.check_connect_route,
        {"routes": routes(route("$disconnect"))},
        [("fail", "connect-route-missing")],
        "get_routes has no $connect route",
    ),
    Case(
        "connect-route target removed",
        config_checks.check_connect_route,
        {"routes": routes(route("$connect", None))},
        [("fail", "connect-route-missing")],
        "no target",
    ),
    Case(
        "connect-route deleted (routes_frame placeholder)",
        config_checks.check_connect_route,
        {"routes": ROUTE_DELETED},
        [("fail", "connect-route-missing")],
    ),
    Case(
        "connect-route deleted says so",
        config_checks.check_connect_route,
        {"routes": ROUTE_DELETED},
        [("fail", "connect-route-missing")],
        "no $connect route",
    ),
    Case(
        "connect-route targets a deleted integration",
        config_checks.check_connect_route,
        {"routes": ROUTE_DANGLING},
        [("fail", "connect-route-missing")],
    ),
    skip_case("connect-route skip", config_checks.check_connect_route, "api", routes=routes(route("x"))),
    # connection-id-mapping
    Case(
        "mapping pass lambda", config_checks.check_connection_id_mapping, {}, [("pass", None)], "connectionId"
    ),
    Case(
        "mapping pass http mapped",
        config_checks.check_connection_id_mapping,
        {"routes": routes(route("$connect", "HTTP_PROXY", connection_id_mapped=True))},
        [("pass", None)],
        "mapped",
    ),
    Case(
        "mapping fail http unmapped",
        config_checks.check_connection_id_mapping,
        {"routes": routes(route("$connect", "HTTP_PROXY", connection_id_mapped=False))},
        [("fail", "connection-id-not-mapped")],
        "HTTP_PROXY",
    ),
    Case(
        "mapping fail http NA",
        config_checks.check_connection_id_mapping,
        {"routes": routes(route("$connect", "HTTP", connection_id_mapped=None))},
        [("fail", "connection-id-not-mapped")],
        "RequestParameters {}",
    ),
    Case(
        "mapping skip no $connect",
        config_checks.check_connection_id_mapping,
        {"routes": routes(route("$disconnect"))},
        [("skip", None)],
        "no $connect route",
    ),
    Case(
        "mapping skip when the route is deleted",
        config_checks.check_connection_id_mapping,
        {"routes": ROUTE_DELETED},
        [("skip", None)],
        "no $connect route",
    ),
    Case(
        "mapping skip when the route has no target",
        config_checks.check_connection_id_mapping,
        {"routes": routes(route("$connect", None))},
        [("skip", None)],
    ),
    Case(
        "mapping skip when the route targets a deleted integration",
        config_checks.check_connection_id_mapping,
        {"routes": ROUTE_DANGLING},
        [("skip", None)],
    ),
    Case(
        "mapping skip api unreadable",
        config_checks.check_connection_id_mapping,
        {"routes": routes(route("x"))},
        [("skip", None)],
        PROBLEM.format("api"),
        {"api": PROBLEM.format("api")},
    ),
    # env-table
    Case(
        "env pass",
        config_checks.check_function_table,
        {},
        [("pass", None)],
        f"TABLE_NAME={TABLE} in {REGION}",
    ),
    Case(
        "env unset",
        config_checks.check_function_table,
        {"functions": functions({"table_name": None})},
        [("warn", None)],
        "not set",
    ),
    Case(
        "env typo",
        config_checks.check_function_table,
        {"functions": functions({"table_name": "chatgenius-connection"})},
        [("fail", "table-not-found")],
        "TABLE_NAME=chatgenius-connection",
    ),
    Case(
        "env wrong region",
        config_checks.check_function_table,
        {
            "functions": functions({"table_region": OTHER_REGION}),
            "tables": {REGION: [TABLE], OTHER_REGION: [TABLE]},
        },
        [("fail", "wrong-region")],
        f"TABLE_REGION={OTHER_REGION}",
    ),
    Case(
        "env other region without the table",
        config_checks.check_function_table,
        {
            "functions": functions({"table_region": OTHER_REGION}),
            "tables": {REGION: [TABLE], OTHER_REGION: []},
        },
        [("fail", "table-not-found")],
        f"{OTHER_REGION} has no such table",
    ),
    Case(
        "env another existing table",
        config_checks.check_function_table,
        {"functions": functions({"table_name": "archive"}), "tables": {REGION: [TABLE, "archive"]}},
        [("warn", None)],
        "differs",
    ),
    Case(
        "env one finding per function",
        config_checks.check_function_table,
        {"functions": functions({}, {"function_name": "other", "table_name": "typo"})},
        [("pass", None), ("fail", "table-not-found")],
    ),
    Case(
        "env a function whose configuration could not be read",
        config_checks.check_function_table,
        {
            "functions": pd.concat(
                [
                    functions(),
                    config.function_frame(
                        [{"FunctionName": "gone", "Error": {"Code": "ResourceNotFoundException"}}]
                    ),
                ],
                ignore_index=True,
            )
        },
        [("pass", None), ("warn", None)],
    ),
    skip_case("env skip", config_checks.check_function_table, "functions", functions=functions().iloc[0:0]),
    # apigw-logs
    Case("apigw logs pass", config_checks.check_logging_config, {}, [("pass", None)], "execution logs INFO"),
    Case(
        "apigw logs off",
        config_checks.check_logging_config,
        {"stage": stage({"logging_level": "OFF", "access_log_format_present": False})},
        [("warn", None)],
        "execution logging is OFF; no access log",
    ),
    Case(
        "apigw access log without the connection id",
        config_checks.check_logging_config,
        {"stage": stage({"access_log_connection_id": False})},
        [("warn", None)],
        "lacks $context.connectionId",
    ),
    skip_case("apigw logs skip", config_checks.check_logging_config, "api", stage=stage().iloc[0:0]),
    # deployment: what the stage invoked, from the execution log, against the routes as they are now
    Case(
        "deployment pass", config_checks.check_deployed_configuration, {}, [("pass", None)], "deployment dep1"
    ),
    Case(
        "deployment: $connect invoked another function after the deployment",
        config_checks.check_deployed_configuration,
        {"log_lines": log_lines(*served(function_arn=OLD_ARN))},
        [("fail", "stale-deployment")],
        f"$connect invoked {OLD_ARN}",
    ),
    # A $connect authorizer's own endpoint comes first in its request: the integration's is the one that counts,
    # and a handshake the authorizer refused invoked no integration by design (no drift).
    Case(
        "deployment: an authorizer's endpoint before the integration's is not what $connect invoked",
        config_checks.check_deployed_configuration,
        {"log_lines": log_lines(*authorized(AUTHORIZER_ARN, FUNCTION_ARN))},
        [("pass", None)],
        "1 requests",
    ),
    Case(
        "deployment: the integration after an authorizer is still compared",
        config_checks.check_deployed_configuration,
        {"log_lines": log_lines(*authorized(AUTHORIZER_ARN, OLD_ARN))},
        [("fail", "stale-deployment")],
        f"$connect invoked {OLD_ARN}",
    ),
    Case(
        "deployment: a handshake the authorizer denied invoked nothing, and is no drift",
        config_checks.check_deployed_configuration,
        {"log_lines": log_lines(*authorized(AUTHORIZER_ARN, None))},
        [("skip", None)],
        "no request of stage prod",
    ),
    Case(
        "deployment: a 401 before the authorizer ran is no drift",
        config_checks.check_deployed_configuration,
        {
            "log_lines": log_lines(
                exec_line("gw-1", "WebSocket Request Route: [$connect]", route_key="$connect"),
                exec_line("gw-1", "Starting authorizer: au1 for request: gw-1"),
                exec_line("gw-1", "Unauthorized request: gw-1"),
            )
        },
        [("skip", None)],
        "no request of stage prod",
    ),
    Case(
        "deployment: the last request counts (the one before it was older)",
        config_checks.check_deployed_configuration,
        {
            "log_lines": log_lines(
                *served(function_arn=OLD_ARN, request="gw-0", ts=DEPLOYED + timedelta(minutes=1)),
                *served(),
            )
        },
        [("pass", None)],
        "2 requests",
    ),
    Case(
        "deployment: a request at the deployment's very time counts",
        config_checks.check_deployed_configuration,
        {"log_lines": log_lines(*served(function_arn=OLD_ARN, ts=DEPLOYED))},
        [("fail", "stale-deployment")],
        OLD_ARN,
    ),
    Case(
        "deployment: a request just before the deployment does not",
        config_checks.check_deployed_configuration,
        {"log_lines": log_lines(*served(function_arn=OLD_ARN, ts=DEPLOYED - timedelta(milliseconds=1)))},
        [("skip", None)],
        "no request of stage prod since it was deployed",
    ),
    Case(
        "deployment: a request before the stage was re-pointed does not",
        config_checks.check_deployed_configuration,
        {
            "stage": stage({"last_updated": DEPLOYED + timedelta(minutes=30)}),
            "log_lines": log_lines(*served(function_arn=OLD_ARN, ts=DEPLOYED + timedelta(minutes=10))),
        },
        [("skip", None)],
        "since it was deployed",
    ),
    Case(
        "deployment: $connect invoked, yet the API has no $connect route",
        config_checks.check_deployed_configuration,
        {"routes": routes(route("$disconnect"), route("message"))},
        [("fail", "stale-deployment")],
        "the API has no $connect route now",
    ),
    Case(
        "deployment: the route comes from the CONNECT line when no route line was written",
        config_checks.check_deployed_configuration,
        {
            "log_lines": log_lines(
                exec_line(
                    "gw-1", "Client [...] is connecting to WebSocket API [abc123].", event_type="CONNECT"
                ),
                served(function_arn=OLD_ARN)[1],
            )
        },
        [("fail", "stale-deployment")],
        "$connect invoked",
    ),
    Case(  # a throttled handshake invoked nothing because nothing ran, not because of a deployment
        "deployment: a throttled $connect that invoked nothing is no drift",
        config_checks.check_deployed_configuration,
        {
            "log_lines": log_lines(
                *served(),
                exec_line("gw-2", "WebSocket Request Route: [$connect]", route_key="$connect", ts=NOW),
                exec_line(
                    "gw-2", "Execution failed: throttled by the stage's throttling of route $connect", ts=NOW
                ),
            )
        },
        [("pass", None)],
        "(1 requests)",
    ),
    Case(  # a handshake AWS_IAM refused invoked nothing because nothing ran
        "deployment: a $connect that AWS_IAM refused is no drift",
        config_checks.check_deployed_configuration,
        {
            "log_lines": log_lines(
                *served(),
                exec_line("gw-2", "WebSocket Request Route: [$connect]", route_key="$connect", ts=NOW),
                exec_line(
                    "gw-2",
                    "Execution failed: IAM authorization of the $connect handshake failed: no signature",
                    ts=NOW,
                ),
            )
        },
        [("pass", None)],
        "(1 requests)",
    ),
    Case(  # the $connect route was added (or given its integration) after the deployment
        "deployment: $connect invoked nothing, yet its route names a function",
        config_checks.check_deployed_configuration,
        {"log_lines": log_lines(served()[0])},
        [("fail", "stale-deployment")],
        "$connect invoked nothing",
    ),
    Case(  # an HTTP integration's mapped query parameters are added to the URI per request
        "deployment: an HTTP route invoked its URI with the mapped query string",
        config_checks.check_deployed_configuration,
        {
            "log_lines": log_lines(
                exec_line("gw-3", "WebSocket Request Route: [$connect]", route_key="$connect", ts=NOW),
                exec_line(
                    "gw-3",
                    "Endpoint request URI: http://127.0.0.1:3000/api/websocket?token=t&workspaceId=w",
                    ts=NOW,
                ),
            ),
            "routes": routes(route("$connect", "HTTP_PROXY")),
        },
        [("pass", None)],
        "1 requests",
    ),
    Case(
        "deployment: an HTTP route invoked another URI",
        config_checks.check_deployed_configuration,
        {
            "log_lines": log_lines(
                exec_line("gw-3", "WebSocket Request Route: [$connect]", route_key="$connect", ts=NOW),
                exec_line("gw-3", "Endpoint request URI: http://127.0.0.1:3000/api/old?token=t", ts=NOW),
            ),
            "routes": routes(route("$connect", "HTTP_PROXY")),
        },
        [("fail", "stale-deployment")],
        "invoked http://127.0.0.1:3000/api/old at",
    ),
    Case(
        "deployment: a route without an integration invoked nothing, as configured",
        config_checks.check_deployed_configuration,
        {"log_lines": log_lines(served()[0]), "routes": routes(route("$connect", None))},
        [("pass", None)],
        "1 requests",
    ),
    Case(  # message-routing claims it (message-route-missing): one finding, one cause
        "deployment: a message for a route that exists took no route",
        config_checks.check_deployed_configuration,
        {
            "log_lines": log_lines(
                exec_line(
                    "gw-2",
                    "Execution failed: no route matches route selection value [message] and the API has no "
                    "$default route",
                )
            )
        },
        [("pass", None)],
        "1 requests",
    ),
    Case(
        "deployment: a message for a route that does not exist is no drift",
        config_checks.check_deployed_configuration,
        {
            "log_lines": log_lines(
                exec_line("gw-2", "Execution failed: no route matches route selection value [join] and ...")
            )
        },
        [("pass", None)],
        "1 requests",
    ),
    Case(
        "deployment: drift, but the deployment's date was not read",
        config_checks.check_deployed_configuration,
        {"stage": stage({"deployment_created": None}), "log_lines": log_lines(*served(function_arn=OLD_ARN))},
        [("warn", None)],
        "whose date was not read",
    ),
    Case(
        "deployment: the stage names no deployment",
        config_checks.check_deployed_configuration,
        {"stage": stage({"deployment_id": None, "deployment_created": None})},
        [("warn", None)],
        "names no deployment",
    ),
    Case(
        "deployment: no execution-log line says what was invoked",
        config_checks.check_deployed_configuration,
        {"log_lines": log_lines()},
        [("skip", None)],
        "no request of stage prod",
    ),
    Case(
        "deployment: no logs read",
        config_checks.check_deployed_configuration,
        {"log_lines": None},
        [("skip", None)],
        "no request",
    ),
    skip_case("deployment skip", config_checks.check_deployed_configuration, "api"),
    # throttling
    Case(
        "throttling: no limit, no 429",
        config_checks.check_throttling,
        {},
        [("pass", None)],
        "limit for $connect: none set (the account's quota",
    ),
    Case(
        "throttling: a limit that lets handshakes through",
        config_checks.check_throttling,
        {"stage": stage(THROTTLE_SOME)},
        [("pass", None)],
        "rate 10 per second, burst 20 (DefaultRouteSettings)",
    ),
    Case(  # nothing looked at the handshakes: the account's quota may have refused some, unseen
        "throttling: a limit that lets handshakes through, no probe and no logs",
        config_checks.check_throttling,
        {"stage": stage(THROTTLE_SOME), "probe": None, "lifecycle": None},
        [("skip", None)],
        "rate 10 per second, burst 20 (DefaultRouteSettings); no probe ran and no handshake is in the logs",
    ),
    Case(
        "throttling: no limit, logs unread, no probe",
        config_checks.check_throttling,
        {"probe": None, "lifecycle": None},
        [("skip", None)],
        "none set (the account's quota of new connections, 500 a second per region, applies); "
        + PROBLEM.format("logs"),
        problems={"logs": PROBLEM.format("logs")},
    ),
    Case(
        "throttling: 0/0 in the defaults (the IaC trap), no handshake seen",
        config_checks.check_throttling,
        {"stage": stage(THROTTLE_ZERO), "probe": None, "lifecycle": None},
        [("fail", "throttled")],
        "throttles $connect at rate 0 per second, burst 0 (DefaultRouteSettings): API Gateway answers every "
        "handshake 429 before $connect runs; no handshake was seen yet",
    ),
    Case(
        "throttling: 0/0 and the probe's handshakes refused",
        config_checks.check_throttling,
        {
            "stage": stage(THROTTLE_ZERO | {"connect_throttle_source": "RouteSettings[$connect]"}),
            "probe": probe_rows(http_status=429, stored=None, clients=2),
            "lifecycle": lifecycle({"connect_status": 429, "connect_invoked": False}),
        },
        [("fail", "throttled")],
        "(RouteSettings[$connect]): API Gateway answers every handshake 429 before $connect runs; 2 of 2 probe "
        "handshakes answered 429; 1 $connect requests in API Gateway's logs answered 429",
    ),
    Case(
        "throttling: burst 0 refuses all, whatever the rate",
        config_checks.check_throttling,
        {"stage": stage(THROTTLE_SOME | {"connect_throttle_burst": 0})},
        [("fail", "throttled")],
        "burst 0",
    ),
    Case(
        "throttling: rate 0 refuses all after the first burst",
        config_checks.check_throttling,
        {"stage": stage(THROTTLE_SOME | {"connect_throttle_rate": 0.0})},
        [("fail", "throttled")],
        "rate 0 per second",
    ),
    Case(
        "throttling: 429s with no stage limit (the account's quota)",
        config_checks.check_throttling,
        {"lifecycle": lifecycle({}, {"connection_id": "other", "connect_status": 429})},
        [("fail", "throttled")],
        "1 $connect requests in API Gateway's logs answered 429; the stage's limit for $connect: none set",
    ),
    Case(
        "throttling: a 4xx that is not 429 is not throttling",
        config_checks.check_throttling,
        {"probe": probe_rows(http_status=403, stored=None), "lifecycle": lifecycle({"connect_status": 403})},
        [("pass", None)],
    ),
    Case(
        "throttling: 429s seen though the stage was not read",
        config_checks.check_throttling,
        {"probe": probe_rows(http_status=429, stored=None)},
        [("fail", "throttled")],
        "the stage's limit for $connect: not read",
        problems={"api": PROBLEM.format("api")},
    ),
    skip_case("throttling skip", config_checks.check_throttling, "api"),
    Case(
        "throttling: no stage",
        config_checks.check_throttling,
        {"stage": stage().iloc[0:0]},
        [("skip", None)],
        "no stage was read, and no handshake was seen answered 429",
    ),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id, marks=case.marks) for case in CASES])
def test_check(case: Case) -> None:
    assert_case(case)


def test_every_check_has_a_pass_a_finding_and_a_skip_case() -> None:
    assert_cases_cover(CASES, config_checks)
