"""kit.iam and kit.config against the lab: each scenario's misconfiguration shows up in the kit's frames.

One lab per scenario, shared by the module's tests and started one at a time (``indirect`` parametrization).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from kit import config, env_check, iam
from kit.lab.lab import Lab

from .labclient import EmptyDynamoDB

pytestmark = pytest.mark.integration

REPO_POLICY = Path(__file__).resolve().parents[2] / "iam-policies.json"
PLANTED_SECRET = "lab-planted-secret-DO-NOT-PRINT"


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest, empty_dynamodb: EmptyDynamoDB) -> Iterator[Lab]:
    with Lab(request.param, write_lab_file=False, dynamodb=empty_dynamodb()) as running:
        yield running


def _connect_function(lab: Lab) -> str:
    assert lab.info is not None
    return lab.info.functions["$connect"]


@pytest.mark.parametrize("lab", ["index-denied"], indirect=True)
def test_permission_frame_shows_the_index_query_denied(lab: Lab) -> None:
    assert lab.info is not None
    target = lab.target()
    function = _connect_function(lab)
    assert iam.execution_role_of(target, function) == lab.info.role
    # simulate=True: moto has no simulate_principal_policy; the frame says so and carries on.
    frame = iam.role_permissions(target, function, simulate=True)
    assert list(frame.columns) == list(iam.PERMISSION_COLUMNS)
    by_action = frame.set_index("action")
    query = by_action.loc["dynamodb:Query"]
    assert query["decision"] == "implicit-deny"
    assert query["resource"].endswith(":table/chatgenius-connections/index/workspaceIndex")
    assert pd.isna(query["statement"])
    assert 'Statement[0] (Sid "ConnectionsTable") allows dynamodb:Query, but only on' in query["reason"]
    others = frame[frame["action"] != "dynamodb:Query"]
    assert others["allowed"].all()
    assert set(frame["simulated"]) == {"unavailable"}
    assert frame["simulation_note"].str.contains("not available").all()
    # The repo's file still grants the index: the deployed role drifted from it.
    from_file = iam.permission_frame(
        iam.policies_from_file(REPO_POLICY),
        iam.checks_for(target, iam.account_id(target), function),
    )
    assert from_file["allowed"].all()


@pytest.mark.parametrize("lab", ["index-denied"], indirect=True)
def test_in_the_lab_the_simulator_is_not_asked_by_default(lab: Lab) -> None:
    frame = iam.role_permissions(lab.target(), _connect_function(lab))
    assert frame["simulated"].isna().all()
    assert frame["simulation_note"].isna().all()


@pytest.mark.parametrize("lab", ["no-connect-integration"], indirect=True)
def test_routes_frame_flags_the_missing_connect_route(lab: Lab) -> None:
    target = lab.target()
    answers = config.fetch_api(target)
    frame = config.routes_frame(answers.routes, answers.integrations)
    connect = frame[frame["route_key"] == "$connect"].iloc[0]
    assert not bool(connect["ok"])
    assert pd.isna(connect["route_id"])
    assert "no $connect route" in connect["problem"]
    assert frame[frame["route_key"] != "$connect"]["ok"].all()
    assert config.functions_for_api(target, answers) == [_connect_function(lab)]
    stages = config.stage_frame(answers.stages)
    assert stages["stage_name"].tolist() == ["prod"]
    assert bool(stages.iloc[0]["access_log_connection_id"])


@pytest.mark.parametrize("lab", ["http-no-connection-id"], indirect=True)
def test_routes_frame_flags_the_http_integration_without_connection_id(lab: Lab) -> None:
    answers = config.fetch_api(lab.target())
    frame = config.routes_frame(answers.routes, answers.integrations)
    connect = frame[frame["route_key"] == "$connect"].iloc[0]
    assert connect["integration_type"] == "HTTP_PROXY"
    assert connect["integration_uri"].startswith("http://127.0.0.1:")
    assert not bool(connect["connection_id_mapped"])
    assert not bool(connect["ok"])
    assert "do not map context.connectionId" in connect["problem"]
    assert pd.isna(connect["function_name"])
    assert frame[frame["route_key"] != "$connect"]["ok"].all()


@pytest.mark.parametrize("lab", ["seed-wrong-table"], indirect=True)
def test_function_frame_shows_the_wrong_table_and_masks_secrets(lab: Lab) -> None:
    target = lab.target()
    function = _connect_function(lab)
    lambda_client = target.client("lambda")
    variables = lambda_client.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    lambda_client.update_function_configuration(
        FunctionName=function, Environment={"Variables": variables | {"JWT_SECRET": PLANTED_SECRET}}
    )
    frame = config.function_frame(config.fetch_functions(target, config.functions_for_api(target)))
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["table_name"] == "chatgenius-connection"
    assert row["handler"] == "seed.handler"
    assert (row["log_level"], row["log_level_source"]) == ("INFO", "AWS_LAMBDA_LOG_LEVEL")
    assert json.loads(row["environment"])["JWT_SECRET"] == "***"
    assert PLANTED_SECRET not in frame.to_string()
    assert row["region"] == target.region


@pytest.mark.parametrize("lab", ["seed-wrong-table"], indirect=True)
def test_env_file_check_catches_the_functions_table(lab: Lab, tmp_path: Path) -> None:
    target = lab.target()
    env_file = tmp_path / ".env.local"
    env_file.write_text(
        "AWS_REGION=us-east-2\n"
        "AWS_ACCESS_KEY_ID=AKIAFIXTURE00000XYZ1\n"
        f"AWS_SECRET_ACCESS_KEY={PLANTED_SECRET}\n"
        "CONNECTIONS_TABLE=chatgenius-connections\n"
        f"NEXT_PUBLIC_WEBSOCKET_URL=wss://{target.api_id}.execute-api.us-east-2.amazonaws.com/prod\n"
    )
    functions = config.fetch_functions(target, config.functions_for_api(target))
    frame = env_check.env_file_check(env_file, target, functions, config.fetch_tables(target))
    checks = {row["check"]: (bool(row["ok"]), row["detail"]) for row in frame.to_dict("records")}
    function = _connect_function(lab)
    assert checks["app table exists"][0]
    assert checks["env region matches WebSocket URL"][0]
    ok, detail = checks[f"function {function} TABLE_NAME"]
    assert not ok
    assert detail == "TABLE_NAME is chatgenius-connection; the app uses chatgenius-connections."
    ok, detail = checks[f"function {function} table exists"]
    assert not ok
    assert "did you mean chatgenius-connections?" in detail
    assert PLANTED_SECRET not in frame.to_string()
