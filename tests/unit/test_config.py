"""kit.config offline: routes, functions, stages and the .env.local check over recorded answers."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber

from kit import config
from kit.config import (
    FUNCTION_COLUMNS,
    ROUTES_COLUMNS,
    STAGE_COLUMNS,
    function_frame,
    routes_frame,
    stage_frame,
)
from kit.env_check import ENV_CHECK_COLUMNS, env_file_check
from kit.errors import AwsError, ConfigurationError, TargetNotFoundError

DATA = Path(__file__).resolve().parents[1] / "data"
PAGES = DATA / "pages"
ENV = DATA / "env"
LAMBDA_URI = (
    "arn:aws:apigateway:us-east-2:lambda:path/2015-03-31/functions/"
    "arn:aws:lambda:us-east-2:123456789012:function:chatgenius-websocket/invocations"
)


def load(name: str) -> Any:
    return json.loads((PAGES / name).read_text())


def routes() -> list[dict[str, Any]]:
    return [item for page in load("apigw-get-routes.json") for item in page["Items"]]


def integrations() -> list[dict[str, Any]]:
    return [item for page in load("apigw-get-integrations.json") for item in page["Items"]]


def functions() -> list[dict[str, Any]]:
    return load("lambda-get-function-configuration.json")


def assert_contract(frame: pd.DataFrame, columns: dict[str, str]) -> None:
    assert list(frame.columns) == list(columns)
    for name, dtype in columns.items():
        assert str(frame[name].dtype) == dtype, (name, frame[name].dtype)


class FakeTarget:
    kind = "aws"
    region = "us-east-2"
    table = "chatgenius-connections"
    index = "workspaceIndex"
    api_id: str | None = "prqb9y0mvd"
    stage: str | None = "prod"
    label = "aws us-east-2"

    def __init__(self, **clients: Any) -> None:
        self._clients = clients

    def client(self, service: str) -> Any:
        return self._clients[service]


# --------------------------------------------------------------------------------------------------
# routes_frame


def test_healthy_routes_are_all_ok() -> None:
    frame = routes_frame(routes(), integrations())
    assert_contract(frame, ROUTES_COLUMNS)
    assert frame["route_key"].tolist() == list(config.EXPECTED_ROUTE_KEYS)
    assert frame["ok"].all()
    assert set(frame["function_name"]) == {"chatgenius-websocket"}
    assert frame["problem"].isna().all()
    assert frame["connection_id_mapped"].isna().all()  # Lambda integrations get the id in the event


def _with_route(route_key: str, **changes: Any) -> list[dict[str, Any]]:
    edited = copy.deepcopy(routes())
    for route in edited:
        if route["RouteKey"] == route_key:
            route.update(changes)
            for key in [k for k, v in changes.items() if v is None]:
                del route[key]
    return edited


@pytest.mark.parametrize(
    ("case_routes", "route_key", "problem", "mapped"),
    [
        pytest.param(
            [r for r in routes() if r["RouteKey"] != "$connect"],
            "$connect",
            "no $connect route",
            None,
            id="no-connect-route",
        ),
        pytest.param(
            [r for r in routes() if r["RouteKey"] != "$disconnect"],
            "$disconnect",
            "stale rows",
            None,
            id="no-disconnect-route",
        ),
        pytest.param(
            [r for r in routes() if r["RouteKey"] != "typing"],
            "typing",
            "no typing route",
            None,
            id="no-typing-route",
        ),
        pytest.param(
            _with_route("$connect", Target=None),
            "$connect",
            "has no integration target",
            None,
            id="no-target",
        ),
        pytest.param(
            _with_route("$connect", Target="integrations/gone0001"),
            "$connect",
            "integration gone0001, which get_integrations does not list",
            None,
            id="dangling-integration",
        ),
        pytest.param(
            _with_route("$connect", Target="arn:aws:lambda:us-east-2:1:function:x"),
            "$connect",
            "is not 'integrations/<IntegrationId>'",
            None,
            id="odd-target",
        ),
        pytest.param(
            _with_route("$connect", Target="integrations/i2httpno"),
            "$connect",
            "do not map context.connectionId",
            False,
            id="http-without-connection-id",
        ),
        pytest.param(
            _with_route("$connect", Target="integrations/i3httpok"),
            "$connect",
            None,
            True,
            id="http-with-connection-id",
        ),
    ],
)
def test_routes_frame_flags_what_is_missing(
    case_routes: list[dict[str, Any]], route_key: str, problem: str | None, mapped: bool | None
) -> None:
    frame = routes_frame(case_routes, integrations())
    assert_contract(frame, ROUTES_COLUMNS)
    row = frame[frame["route_key"] == route_key].iloc[0]
    if problem is None:
        assert bool(row["ok"]) is True
        assert pd.isna(row["problem"])
    else:
        assert bool(row["ok"]) is False
        assert problem in row["problem"]
    if mapped is None:
        assert pd.isna(row["connection_id_mapped"])
    else:
        assert bool(row["connection_id_mapped"]) is mapped
    others = frame[frame["route_key"] != route_key]
    assert others["ok"].all()


def test_routes_frame_small_exact() -> None:
    frame = routes_frame(
        [{"RouteId": "r1", "RouteKey": "$connect", "Target": "integrations/i1"}],
        [
            {
                "IntegrationId": "i1",
                "IntegrationType": "AWS_PROXY",
                "IntegrationMethod": "POST",
                "IntegrationUri": LAMBDA_URI,
            }
        ],
    )
    missing = {
        "$disconnect": config._MISSING_ROUTE["$disconnect"],
        **{
            key: f"The API has no {key} route: frames with action {key!r} go to $default, or are answered "
            "Forbidden when there is none."
            for key in ("message", "presence", "typing")
        },
    }
    expected = pd.DataFrame(
        [
            {
                "route_key": "$connect",
                "route_id": "r1",
                "target": "integrations/i1",
                "integration_id": "i1",
                "integration_type": "AWS_PROXY",
                "integration_method": "POST",
                "integration_uri": LAMBDA_URI,
                "function_name": "chatgenius-websocket",
                "function_arn": "arn:aws:lambda:us-east-2:123456789012:function:chatgenius-websocket",
                "request_parameters": None,
                "connection_id_mapped": None,
                "authorization_type": "NONE",
                "ok": True,
                "problem": None,
            }
        ]
        + [{"route_key": key, "ok": False, "problem": problem} for key, problem in missing.items()],
        columns=list(ROUTES_COLUMNS),
    )
    expected = expected.astype(object).where(expected.notna(), None).astype(ROUTES_COLUMNS)
    pd.testing.assert_frame_equal(frame, expected)


AUTHORIZER = {
    "AuthorizerId": "au1",
    "Name": "token",
    "AuthorizerType": "REQUEST",
    "AuthorizerUri": LAMBDA_URI.replace("chatgenius-websocket/", "chatgenius-websocket-auth/"),
    "IdentitySource": ["route.request.querystring.token", "route.request.header.X-Team"],
}


@pytest.mark.parametrize(
    ("route", "authorizers", "expected"),
    [
        ({}, [AUTHORIZER], ("NONE", None, None, None, None)),
        ({"AuthorizationType": "AWS_IAM"}, [AUTHORIZER], ("AWS_IAM", None, None, None, None)),
        (
            {"AuthorizationType": "CUSTOM", "AuthorizerId": "au1"},
            [AUTHORIZER],
            (
                "CUSTOM",
                "au1",
                "token",
                "chatgenius-websocket-auth",
                "route.request.querystring.token, route.request.header.X-Team",
            ),
        ),
        # A route naming an authorizer GetAuthorizers did not list (or that was not read): its id only.
        (
            {"AuthorizationType": "CUSTOM", "AuthorizerId": "gone"},
            [AUTHORIZER],
            ("CUSTOM", "gone", None, None, None),
        ),
        ({"AuthorizationType": "CUSTOM", "AuthorizerId": "au1"}, [], ("CUSTOM", "au1", None, None, None)),
    ],
)
def test_routes_frame_names_the_connect_authorizer(
    route: dict[str, Any], authorizers: list[dict[str, Any]], expected: tuple[Any, ...]
) -> None:
    connect = {"RouteId": "r1", "RouteKey": "$connect", "Target": "integrations/i1", **route}
    frame = routes_frame([connect], integrations(), authorizers)
    row = frame[frame["route_key"] == "$connect"].iloc[0]
    columns = (
        "authorization_type",
        "authorizer_id",
        "authorizer_name",
        "authorizer_function",
        "authorizer_identity_source",
    )
    assert tuple(None if pd.isna(row[c]) else row[c] for c in columns) == expected


def test_routes_frame_reads_alias_arns_and_keeps_odd_items() -> None:
    case = [*routes(), {"RouteId": "r9", "RouteKey": "$default", "Target": "integrations/i4alias"}, "junk"]
    frame = routes_frame(case, [*integrations(), "junk", {"IntegrationType": "MOCK"}])
    default = frame[frame["route_key"] == "$default"].iloc[0]
    assert default["function_name"] == "chatgenius-presence"
    assert (
        default["function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:chatgenius-presence:live"
    )
    junk = frame[frame["route_key"].isna()].iloc[0]
    assert "is a str, not an object" in junk["problem"]


def test_routes_frame_of_nothing_lists_every_expected_route_as_missing() -> None:
    frame = routes_frame([], [])
    assert frame["route_key"].tolist() == list(config.EXPECTED_ROUTE_KEYS)
    assert not frame["ok"].any()


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            LAMBDA_URI,
            ("chatgenius-websocket", "arn:aws:lambda:us-east-2:123456789012:function:chatgenius-websocket"),
        ),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:fn:3",
            ("fn", "arn:aws:lambda:us-east-1:123456789012:function:fn:3"),
        ),
        ("https://example.com/api/websocket", None),
        (
            "arn:aws:apigateway:us-east-2:lambda:path/2015-03-31/functions/${stageVariables.fn}/invocations",
            None,
        ),
    ],
)
def test_function_of_uri(uri: str, expected: tuple[str, str] | None) -> None:
    assert config.function_of_uri(uri) == expected


def test_fetch_api_reads_every_page() -> None:
    client = boto3.client(
        "apigatewayv2",
        region_name="us-east-2",
        aws_access_key_id="AKIAFIXTURE00000XYZ1",
        aws_secret_access_key="x",
    )
    first, second = load("apigw-get-routes.json")
    with Stubber(client) as stubber:
        stubber.add_response("get_api", load("apigw-get-api.json"), {"ApiId": "prqb9y0mvd"})
        stubber.add_response("get_routes", first, {"ApiId": "prqb9y0mvd"})
        stubber.add_response("get_routes", second, {"ApiId": "prqb9y0mvd", "NextToken": first["NextToken"]})
        stubber.add_response(
            "get_integrations", load("apigw-get-integrations.json")[0], {"ApiId": "prqb9y0mvd"}
        )
        stubber.add_response("get_stages", {"Items": [load("apigw-get-stage.json")]}, {"ApiId": "prqb9y0mvd"})
        target = FakeTarget(apigatewayv2=client)
        answers = config.fetch_api(target)  # type: ignore[arg-type]
        stubber.assert_no_pending_responses()
    assert len(answers.routes) == 5
    assert len(answers.integrations) == 4
    assert answers.stage("prod") is not None
    assert config.functions_for_api(target, answers) == ["chatgenius-websocket"]  # type: ignore[arg-type]


def test_fetch_api_errors_name_the_api() -> None:
    client = boto3.client(
        "apigatewayv2",
        region_name="us-east-2",
        aws_access_key_id="AKIAFIXTURE00000XYZ1",
        aws_secret_access_key="x",
    )
    with Stubber(client) as stubber:
        stubber.add_client_error("get_api", "NotFoundException", "Invalid API identifier specified", 404)
        # An id the region does not have is the target's problem, said as AWS said it.
        with pytest.raises(
            TargetNotFoundError, match="API prqb9y0mvd in us-east-2 failed with NotFoundException"
        ):
            config.fetch_api(FakeTarget(apigatewayv2=client))  # type: ignore[arg-type]
        stubber.add_client_error("get_api", "AccessDeniedException", "no", 403)
        with pytest.raises(AwsError, match="AccessDeniedException") as denied:
            config.fetch_api(FakeTarget(apigatewayv2=client))  # type: ignore[arg-type]
        assert not isinstance(denied.value, TargetNotFoundError)
    with Stubber(client) as stubber:  # no id: the region's APIs are listed, and none is a wrong target
        http_api = {"ApiId": "h1", "Name": "http", "ProtocolType": "HTTP", "RouteSelectionExpression": "x"}
        stubber.add_response("get_apis", {"Items": [http_api]})
        target = FakeTarget(apigatewayv2=client)
        target.api_id = None
        with pytest.raises(TargetNotFoundError, match="No WebSocket API exists in us-east-2"):
            config.fetch_api(target)  # type: ignore[arg-type]


def _api(n: int) -> dict[str, str]:
    return {"ApiId": f"api{n}", "Name": f"chat{n}", "ProtocolType": "WEBSOCKET"}


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, "TargetNotFoundError: No WebSocket API exists in us-east-2"),
        (1, "api0: the only WebSocket API in us-east-2 (chat0), found by listing"),
        (2, "ConfigurationError: 2 WebSocket APIs exist in us-east-2: api0 (chat0), api1 (chat1); say which"),
        (10, "ConfigurationError: 10 WebSocket APIs exist in us-east-2: api0 (chat0)"),
        (11, "and 1 more; say which with --api-id"),
    ],
)
def test_choose_api_takes_only_the_only_one(count: int, expected: str) -> None:
    try:
        api_id, found_by = config.choose_api([_api(n) for n in range(count)], "us-east-2")
        said = f"{api_id}: {found_by}"
    except ConfigurationError as exc:
        said = f"{type(exc).__name__}: {exc}"
    assert expected in said
    assert ("more" in said) == (count > 10)


def _dynamodb(endpoint_url: str | None = None) -> Any:
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        region_name="us-east-2",
        endpoint_url=endpoint_url,
        aws_access_key_id="AKIAFIXTURE00000XYZ1",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2),
    )


def test_fetch_tables_blames_no_permission_on_an_endpoint_that_does_not_answer() -> None:
    import socket

    # Bound but not listening: a connection to it is refused at once, and no other process can take the port.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with pytest.raises(AwsError) as raised:
            config.fetch_tables(FakeTarget(dynamodb=_dynamodb(url)))  # type: ignore[arg-type]
    assert raised.value.code == "EndpointConnectionError"
    assert "ListTables in us-east-2 failed with EndpointConnectionError" in str(raised.value)
    assert "did not answer" in str(raised.value)
    assert "dynamodb:ListTables" not in str(raised.value)


def test_fetch_tables_names_the_permission_when_it_is_refused() -> None:
    client = _dynamodb()
    with Stubber(client) as stubber:
        stubber.add_client_error("list_tables", "AccessDeniedException", "not authorized", 400)
        with pytest.raises(AwsError, match="needs dynamodb:ListTables") as raised:
            config.fetch_tables(FakeTarget(dynamodb=client))  # type: ignore[arg-type]
    assert raised.value.code == "AccessDeniedException"


# --------------------------------------------------------------------------------------------------
# function_frame


def test_function_frame_masks_secrets_and_shows_the_table() -> None:
    frame = function_frame(functions())
    assert_contract(frame, FUNCTION_COLUMNS)
    assert "DO-NOT-PRINT" not in frame.to_string()
    assert "DO-NOT-PRINT" not in frame.to_json(date_format="iso")
    seed = frame.iloc[0]
    environment = json.loads(seed["environment"])
    assert environment == {
        "AUTH_MODE": "email",
        # Not a key id by its last word (an access key's hint), so masked, as a report's redactor masks it.
        "AWS_ACCESS_KEY_ID_HINT": "***",
        "DB_PASSWORD": "***",
        "JWT_SECRET": "***",
        "NEXTAUTH_TOKEN": "***",
        "OPENAI_API_KEY": "***",
        "TABLE_NAME": "chatgenius-connection",
    }
    assert seed["table_name"] == "chatgenius-connection"
    assert pd.isna(seed["table_region"])
    assert seed["handler"] == "seed.handler"
    assert seed["timeout_s"] == 6
    assert seed["region"] == "us-east-2"
    assert seed["log_level"] == "WARNING"
    assert seed["log_level_source"] == "Python runtime default (root logger)"
    assert seed["last_modified"] == pd.Timestamp("2024-12-01T16:58:11.123Z")


def test_function_frame_reads_json_logging_and_keeps_error_records() -> None:
    frame = function_frame(functions())
    presence = frame.iloc[1]
    assert (presence["log_format"], presence["log_level"]) == ("JSON", "DEBUG")
    assert presence["log_level_source"] == "LoggingConfig.ApplicationLogLevel"
    assert presence["log_group"] == "/custom/chatgenius-presence"
    assert presence["table_region"] == "us-east-2"
    assert presence["region"] == "us-east-1"
    missing = frame.iloc[2]
    assert missing["function_name"] == "chatgenius-typing"
    assert "ResourceNotFoundException" in missing["problem"]
    assert pd.isna(missing["function_arn"])


@pytest.mark.parametrize(
    ("changes", "column", "value"),
    [
        (
            {"Environment": {"Variables": {"TABLE_NAME": "t", "AWS_LAMBDA_LOG_LEVEL": "info"}}},
            "log_level",
            "INFO",
        ),
        (
            {"Environment": {"Variables": {"AWS_LAMBDA_LOG_LEVEL": "INFO"}}},
            "problem",
            "TABLE_NAME is not set",
        ),
        ({"Environment": {"Variables": ["TABLE_NAME"]}}, "problem", "Environment.Variables is not a map"),
        (
            {"State": "Failed", "StateReason": "no role"},
            "problem",
            "The function is Failed, not Active: no role.",
        ),
        ({"Timeout": "six"}, "timeout_s", pd.NA),
        ({"LoggingConfig": "text"}, "log_format", "Text"),
    ],
)
def test_function_frame_odd_answers(changes: dict[str, Any], column: str, value: Any) -> None:
    answer = {**functions()[0], **changes}
    row = function_frame(answer).iloc[0]
    if value is pd.NA:
        assert pd.isna(row[column])
    else:
        assert value in row[column]


def test_function_frame_of_nothing_is_empty_with_the_contract() -> None:
    frame = function_frame([])
    assert frame.empty
    assert_contract(frame, FUNCTION_COLUMNS)


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("JWT_SECRET", True),
        ("github_token", True),
        ("DB_PASSWORD", True),
        ("API_KEY", True),
        ("PRIVATE_PEM", True),
        ("GOOGLE_CREDENTIALS", True),
        ("DB_PWD", True),  # judged by its words, as a report's redactor judges it
        ("AWS_ACCESS_KEY_ID", False),
        ("PARTITION_KEY", False),  # a key that is no secret
        ("AWS_WEB_IDENTITY_TOKEN_FILE", False),  # where a secret is
        ("TABLE_NAME", False),
        ("AUTH_MODE", False),
    ],
)
def test_mask_environment(name: str, masked: bool) -> None:
    assert (config.mask_environment({name: "value"})[name] == "***") is masked


# --------------------------------------------------------------------------------------------------
# stage_frame


def test_stage_frame_reads_logging_settings() -> None:
    frame = stage_frame(load("apigw-get-stage.json"))
    assert_contract(frame, STAGE_COLUMNS)
    row = frame.iloc[0]
    assert row["stage_name"] == "prod"
    assert row["deployment_id"] == "dep0001x"
    assert row["logging_level"] == "INFO"
    assert row["connect_logging_level"] == "ERROR"
    assert bool(row["detailed_metrics"]) is True
    assert bool(row["access_log_connection_id"]) and bool(row["access_log_status"])
    assert bool(row["access_log_integration_status"]) and bool(row["access_log_error"])
    assert (
        row["access_log_variables"]
        == "requestId, connectionId, eventType, routeKey, status, integration.status, error.message"
    )
    assert row["last_updated"] == pd.Timestamp("2024-12-01T16:59:02Z")
    assert pd.isna(row["problem"])


def test_stage_frame_flags_missing_logs() -> None:
    frame = stage_frame([load("apigw-get-stage.json"), load("apigw-get-stage-no-logs.json"), "junk"])
    row = frame.iloc[1]
    assert row["logging_level"] == "OFF"
    assert not bool(row["access_log_format_present"])
    assert "No access logging" in row["problem"]
    assert "Execution logging is OFF for $connect" in row["problem"]
    assert "not an object" in frame.iloc[2]["problem"]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, (None, None, None)),
        (
            {
                "DefaultRouteSettings": {
                    "LoggingLevel": "INFO",
                    "ThrottlingBurstLimit": 0,
                    "ThrottlingRateLimit": 0.0,
                }
            },
            (0.0, 0, "DefaultRouteSettings"),
        ),
        (
            {"RouteSettings": {"$connect": {"ThrottlingBurstLimit": 5, "ThrottlingRateLimit": 2.5}}},
            (2.5, 5, "RouteSettings[$connect]"),
        ),
        (
            {"RouteSettings": {"message": {"ThrottlingBurstLimit": 0, "ThrottlingRateLimit": 0.0}}},
            (None, None, None),
        ),
    ],
)
def test_stage_frame_reads_the_connect_throttling(
    settings: dict[str, Any], expected: tuple[float | None, int | None, str | None]
) -> None:
    stage = load("apigw-get-stage.json") | settings
    frame = stage_frame(stage)
    assert_contract(frame, STAGE_COLUMNS)
    row = frame.iloc[0]
    shown = tuple(
        None if pd.isna(row[c]) else row[c]
        for c in ("connect_throttle_rate", "connect_throttle_burst", "connect_throttle_source")
    )
    assert shown == expected


def test_stage_frame_says_throttling_that_is_no_number() -> None:
    stage = load("apigw-get-stage.json") | {"DefaultRouteSettings": {"ThrottlingRateLimit": "fast"}}
    row = stage_frame(stage).iloc[0]
    assert pd.isna(row["connect_throttle_source"])
    assert "throttling settings for $connect are not numbers" in row["problem"]


def test_stage_frame_flags_a_format_without_the_useful_variables() -> None:
    stage = load("apigw-get-stage.json")
    stage["AccessLogSettings"]["Format"] = "$context.requestId $context.routeKey"
    row = stage_frame(stage).iloc[0]
    assert "lacks $context.connectionId, $context.status, $context.integration.status" in row["problem"]


@pytest.mark.parametrize(
    ("deployments", "expected"),
    [
        (None, None),  # not read
        ({"other": {"CreatedDate": "2024-11-30T10:00:00Z"}}, None),
        (
            {"dep0001x": {"DeploymentId": "dep0001x", "CreatedDate": "2024-11-30T10:00:00Z"}},
            "2024-11-30T10:00Z",
        ),
    ],
)
def test_stage_frame_dates_the_deployment_the_stage_serves(
    deployments: dict[str, dict[str, str]] | None, expected: str | None
) -> None:
    row = stage_frame(load("apigw-get-stage.json"), deployments).iloc[0]
    if expected is None:
        assert pd.isna(row["deployment_created"])
    else:
        assert row["deployment_created"] == pd.Timestamp(expected)


def test_stage_frame_of_nothing_is_empty_with_the_contract() -> None:
    assert_contract(stage_frame([]), STAGE_COLUMNS)


# --------------------------------------------------------------------------------------------------
# env_file_check


def _checks(frame: pd.DataFrame) -> dict[str, tuple[bool, str]]:
    return {row["check"]: (bool(row["ok"]), row["detail"]) for row in frame.to_dict("records")}


def test_env_file_check_good_file() -> None:
    frame = env_file_check(
        ENV / "good.env",
        FakeTarget(),  # type: ignore[arg-type]
        [functions()[0] | {"Environment": {"Variables": {"TABLE_NAME": "chatgenius-connections"}}}],
        {"us-east-2": ["chatgenius-connections"]},
    )
    assert_contract(frame, ENV_CHECK_COLUMNS)
    checks = _checks(frame)
    assert all(ok for ok, _ in checks.values()), frame.to_string()
    assert checks["WebSocket URL is an execute-api URL"][1] == (
        "NEXT_PUBLIC_WEBSOCKET_URL names API prqb9y0mvd in us-east-2, stage prod."
    )
    assert "management URL matches WebSocket URL" in checks
    assert checks["credentials in env file"][1].startswith("AWS_ACCESS_KEY_ID is AKIA…XYZ1")
    assert "DO-NOT-PRINT" not in frame.to_string()


def test_env_file_check_flags_the_seeds_wrong_table_and_region() -> None:
    frame = env_file_check(
        ENV / "good.env",
        FakeTarget(),  # type: ignore[arg-type]
        function_frame(functions()),
        {"us-east-2": ["chatgenius-connections"], "us-east-1": []},
    )
    checks = _checks(frame)
    ok, detail = checks["function chatgenius-websocket TABLE_NAME"]
    assert not ok
    assert detail == "TABLE_NAME is chatgenius-connection; the app uses chatgenius-connections."
    ok, detail = checks["function chatgenius-websocket table exists"]
    assert not ok
    assert "did you mean chatgenius-connections?" in detail
    # The presence function runs in us-east-1 but TABLE_REGION sends it to us-east-2: consistent.
    assert checks["function chatgenius-presence TABLE_REGION"][0]
    assert not checks["function chatgenius-typing readable"][0]
    assert "DO-NOT-PRINT" not in frame.to_string()


def test_env_file_check_region_mismatch() -> None:
    frame = env_file_check(ENV / "region-mismatch.env", FakeTarget())  # type: ignore[arg-type]
    checks = _checks(frame)
    assert not checks["env file parsed"][0]
    assert not checks["env region matches WebSocket URL"][0]
    assert any(check == "env file problem" for check in frame["check"])


@pytest.mark.parametrize(
    ("text", "check", "ok"),
    [
        ("AWS_REGION=us-east-2\n", "WebSocket URL set", False),
        (
            "NEXT_PUBLIC_WEBSOCKET_URL=wss://chat.example.com/ws\n",
            "WebSocket URL is an execute-api URL",
            False,
        ),
        (
            "NEXT_PUBLIC_WEBSOCKET_URL=wss://abc123.execute-api.us-east-2.amazonaws.com/prod\n",
            "env region set",
            False,
        ),
        ("CONNECTIONS_TABLE=other-table\n", "target table matches env file", False),
        ("AWS_REGION=us-east-2\n", "env table name set", False),
        (
            "NEXT_PUBLIC_WEBSOCKET_URL=wss://abc123.execute-api.us-east-2.amazonaws.com/prod\n"
            "WEBSOCKET_API_ENDPOINT=wss://abc123.execute-api.us-east-2.amazonaws.com/prod\n",
            "management URL matches WebSocket URL",
            False,
        ),
        ("AWS_REGION=eu-west-1\n", "target region matches env file", False),
    ],
)
def test_env_file_check_cases(tmp_path: Path, text: str, check: str, ok: bool) -> None:
    path = tmp_path / ".env.local"
    path.write_text(text)
    checks = _checks(env_file_check(path, FakeTarget()))  # type: ignore[arg-type]
    assert checks[check][0] is ok


def test_env_file_check_table_list_for_the_api_region(tmp_path: Path) -> None:
    frame = env_file_check(ENV / "good.env", FakeTarget(), (), ["something-else"])  # type: ignore[arg-type]
    ok, detail = _checks(frame)["app table exists"]
    assert not ok
    assert (
        detail == "Table chatgenius-connections does not exist in us-east-2 (tables there: something-else)."
    )


def test_env_file_check_of_a_missing_file_is_one_failed_row(tmp_path: Path) -> None:
    frame = env_file_check(tmp_path / "nope.env", FakeTarget())  # type: ignore[arg-type]
    assert_contract(frame, ENV_CHECK_COLUMNS)
    assert frame["check"].tolist() == ["env file readable"]
    assert not frame["ok"].any()


def _answers(*stages: str, found_by: str = "") -> config.ApiAnswers:
    return config.ApiAnswers(
        {"ApiId": "abc123"}, stages=[{"StageName": s} for s in stages], found_by=found_by
    )


@pytest.mark.parametrize(
    ("answers", "stage", "settled", "said"),
    [
        (_answers("prod"), "prod", "prod", ""),
        (_answers("prod"), None, None, ""),
        (
            _answers("prod"),
            "chat",
            "prod",
            "has no stage 'chat' (from the URL's path); the kit reads its only stage, prod",
        ),
        (_answers("prod", "dev"), "chat", None, "none of its stages (prod, dev)"),
        (_answers(), "chat", None, "none of its stages (none)"),
        (
            _answers("prod", found_by="the only WebSocket API in us-east-2 (chat), found by listing"),
            None,
            "prod",
            "found by listing",
        ),
        (_answers("prod", "dev", found_by="listed"), None, None, "API abc123: listed"),
    ],
    ids=[
        "its stage",
        "no stage asked",
        "a base path",
        "a base path, several stages",
        "no stages",
        "listed",
        "listed, several",
    ],
)
def test_the_stage_the_checks_name_is_one_the_api_has(
    answers: config.ApiAnswers, stage: str | None, settled: str | None, said: str
) -> None:
    chosen, why = answers.settled("abc123", stage)
    assert chosen == settled
    assert (said in why) if said else why == ""
