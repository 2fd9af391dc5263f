"""kit.fix's pure parts: the fix each cause gets, how it is shown, and when a verification says "fixed"."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kit import fix, fix_apply, fix_commands, fix_proof, notebook, policy
from kit.diagnose import causes, ranking
from kit.diagnose.findings import FINDING_COLUMNS, Diagnosis, Evidence
from kit.errors import ConfigurationError

from .diagnose_evidence import (
    FUNCTION,
    FUNCTION_ARN,
    TABLE,
    TABLE_ARN,
    functions,
    healthy,
    permissions,
    route,
    routes,
    stage,
)

ROLE = "arn:aws:iam::123456789012:role/chatgenius-handler"


THROTTLED = {
    "connect_throttle_rate": 0.0,
    "connect_throttle_burst": 0,
    "connect_throttle_source": "DefaultRouteSettings",
}


def evidence(**changes: Any) -> Evidence:
    made = replace(
        healthy(),
        stage=stage(THROTTLED),
        functions=functions(
            {
                "role": ROLE,
                "environment": json.dumps({"TABLE_NAME": TABLE, "STRIPE_SECRET_KEY": "***"}),
            }
        ),
        api_id="abc123",
    )
    return replace(made, **changes)


def diagnosis(cause: str, *evidence_lines: str) -> Diagnosis:
    chosen = causes.cause(cause)
    root = {
        "id": cause,
        "summary": chosen.summary,
        "evidence": list(evidence_lines),
        "next_step": chosen.next_step,
    }
    return Diagnosis(root, pd.DataFrame(columns=list(FINDING_COLUMNS)).astype(FINDING_COLUMNS))


PLANS = [
    # (cause, operations, a parameter that must be there)
    ("put-access-denied", ["put_role_policy"], ("RoleName", "chatgenius-handler")),
    ("index-access-denied", ["put_role_policy"], ("PolicyName", "kit-fix-index-query")),
    ("table-not-found", ["patch_environment"], ("Set", {"TABLE_NAME": TABLE})),
    ("wrong-region", ["patch_environment"], ("Remove", ["TABLE_REGION"])),
    ("handler-crash", ["deploy_fixed_handler"], ("Runtime", "python3.12")),
    ("write-not-awaited", ["deploy_fixed_handler"], ("FunctionName", FUNCTION)),
    ("write-on-message", ["deploy_fixed_handler"], ("FunctionName", FUNCTION)),
    ("workspace-id-missing", ["deploy_fixed_handler"], ("FunctionName", FUNCTION)),
    ("connect-route-missing", ["connect_route"], ("ApiId", "abc123")),
    ("stale-deployment", ["deploy_stage"], ("StageName", "prod")),
    ("throttled", ["stage_throttling"], ("Settings", ["DefaultRouteSettings"])),
    ("invoke-permission-missing", ["add_invoke_permission"], ("StatementId", "kit-fix-apigateway-connect")),
]


@pytest.mark.parametrize(("cause", "operations", "param"), PLANS, ids=[p[0] for p in PLANS])
def test_each_cause_gets_its_change(cause: str, operations: list[str], param: tuple[str, Any]) -> None:
    planned = fix.plan(diagnosis(cause, "the line"), evidence())
    assert [c.operation for c in planned.changes] == operations
    assert planned.changes[0].params[param[0]] == param[1]
    assert planned.applicable
    text = planned.text()
    assert "AWS CLI:" in text and "boto3:" in text
    assert "STRIPE" not in text and "***" not in text  # no other variable, not even masked


def test_the_policy_statement_is_the_minimal_one() -> None:
    planned = fix.plan(diagnosis("put-access-denied"), evidence())
    document = planned.changes[0].document()
    assert document == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "KitFixPutItem",
                "Effect": "Allow",
                "Action": ["dynamodb:PutItem"],
                "Resource": [TABLE_ARN],
            }
        ],
    }
    index = fix.plan(diagnosis("index-access-denied"), evidence()).changes[0].document()
    assert index["Statement"][0]["Resource"] == [f"{TABLE_ARN}/index/*"]
    assert index["Statement"][0]["Action"] == ["dynamodb:Query"]


def test_an_explicit_deny_is_named_not_papered_over() -> None:
    denied = permissions(put="explicit-deny")
    denied.loc[denied["action"] == "dynamodb:PutItem", "statement"] = '"deny-all" Statement[0]'
    planned = fix.plan(diagnosis("put-access-denied"), evidence(permissions=denied))
    assert planned.changes == () and not planned.applicable
    assert '"deny-all" Statement[0]' in planned.advice


@pytest.mark.parametrize(
    ("cause", "settings"),
    [
        ("early-disconnect", {"close_after_connect": False}),
        ("workspace-id-missing", {"include_workspace_id": True}),
    ],
)
def test_client_causes_change_the_client(cause: str, settings: dict[str, bool]) -> None:
    planned = fix.plan(diagnosis(cause), evidence())
    assert dict(planned.client) == settings and planned.applicable
    assert "The client:" in planned.text()


@pytest.mark.parametrize(
    "cause",
    [c.id for c in causes.CAUSES if c.kind in ("inconclusive", "symptom")]
    + ["none", "authorizer-denied", "authorizer-context-missing", "connect-iam-denied"],
)
def test_no_change_without_a_known_cause(cause: str) -> None:
    planned = fix.plan(diagnosis(cause), evidence())
    assert planned.changes == () and planned.client == {} and planned.advice


def test_an_authorizer_is_never_detached_or_rewritten() -> None:
    denied = fix.plan(diagnosis("authorizer-denied"), evidence())
    assert "would let anyone connect" in denied.advice
    missing = fix.plan(diagnosis("authorizer-context-missing"), evidence())
    assert "return the user in its context" in missing.advice


def test_the_environment_change_never_shows_other_values() -> None:
    planned = fix.plan(diagnosis("table-not-found"), evidence())
    lines = planned.changes[0].cli() + planned.changes[0].boto3()
    assert any("get-function-configuration" in line for line in lines)
    assert any("keep every other variable" in line for line in lines)
    assert not any("STRIPE" in line for line in lines)


def test_a_route_fix_redeploys_only_a_stage_that_does_not_deploy_itself() -> None:
    auto = fix.plan(diagnosis("connect-route-missing"), evidence(stage=stage()))
    manual = fix.plan(diagnosis("connect-route-missing"), evidence(stage=stage({"auto_deploy": False})))
    assert not any("create-deployment" in line for line in auto.changes[0].cli())
    assert any(
        "create-deployment --api-id abc123 --stage-name prod" in line for line in manual.changes[0].cli()
    )
    assert any("create_deployment" in line for line in manual.changes[0].boto3())


def test_a_stale_deployment_gets_a_deployment_of_its_stage() -> None:
    planned = fix.plan(diagnosis("stale-deployment"), evidence(stage=stage({"stage_name": "live"})))
    (change,) = planned.changes
    assert change.cli() == ["aws apigatewayv2 create-deployment --api-id abc123 --stage-name live"]
    assert change.boto3() == [
        "boto3.client(\"apigatewayv2\").create_deployment(ApiId='abc123', StageName='live')"
    ]
    assert fix.for_account(planned).changes == (change,)  # the kit may deploy a real account's stage
    unread = fix.plan(diagnosis("stale-deployment"), evidence(stage=stage().iloc[0:0]))
    assert not unread.applicable and "stage was not read" in unread.advice


def test_a_missing_invoke_permission_gets_a_statement_for_the_routes_api_gateway_presents() -> None:
    connect_only = routes(route("$connect"), route("message", "HTTP_PROXY"))
    only = fix.plan(diagnosis("invoke-permission-missing"), evidence(routes=connect_only))
    assert only.changes[0].params["SourceArn"].endswith("abc123/prod/$connect")
    # The function serves $connect, $disconnect and message (healthy()): each needs the grant.
    planned = fix.plan(diagnosis("invoke-permission-missing"), evidence(stage=stage({"stage_name": "live"})))
    (change,) = planned.changes  # Lambda reads its policy on every call: no deployment
    source = "arn:aws:execute-api:us-east-2:123456789012:abc123/live/*"
    assert change.params["SourceArn"] == source
    assert change.cli() == [
        f"aws lambda add-permission --function-name {FUNCTION_ARN} --statement-id kit-fix-apigateway-connect "
        f"--action lambda:InvokeFunction --principal apigateway.amazonaws.com --source-arn '{source}'"
    ]
    assert change.boto3() == [
        f"boto3.client(\"lambda\").add_permission(FunctionName='{FUNCTION_ARN}', "
        "StatementId='kit-fix-apigateway-connect', Action='lambda:InvokeFunction', "
        f"Principal='apigateway.amazonaws.com', SourceArn='{source}')"
    ]
    assert fix.for_account(planned).changes == (change,)
    # The planned statement is one the evaluator the check and the gateway use accepts for that route.
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": change.params["StatementId"],
                "Effect": "Allow",
                "Principal": {"Service": "apigateway.amazonaws.com"},
                "Action": "lambda:InvokeFunction",
                "Resource": FUNCTION_ARN,
                "Condition": {"ArnLike": {"AWS:SourceArn": change.params["SourceArn"]}},
            }
        ],
    }
    allowed = policy.resource_policy_decision(
        json.dumps(document),
        service=policy.APIGATEWAY_PRINCIPAL,
        action=policy.INVOKE_FUNCTION,
        resource=FUNCTION_ARN,
        context={"aws:SourceArn": source.replace("*", "$connect")},
    )
    assert allowed.allowed, allowed.reason
    unread = fix.plan(diagnosis("invoke-permission-missing"), evidence(stage=stage().iloc[0:0]))
    assert not unread.applicable and "source ARN" in unread.advice


@pytest.mark.parametrize(
    ("auto_deploy", "operations"),
    [(True, ["update_integration"]), (False, ["update_integration", "deploy_stage"])],
)
def test_an_integration_fix_is_deployed_unless_the_stage_deploys_itself(
    auto_deploy: bool, operations: list[str]
) -> None:
    http = routes(
        {"route_key": "$connect", "route_id": "r1", "integration_id": "i9", "integration_type": "HTTP_PROXY"}
    )
    planned = fix.plan(
        diagnosis("connection-id-not-mapped"),
        evidence(routes=http, stage=stage({"auto_deploy": auto_deploy})),
    )
    assert [c.operation for c in planned.changes] == operations


def test_a_connection_id_fix_keeps_the_integrations_other_parameters() -> None:
    http = routes(
        {
            "route_key": "$connect",
            "route_id": "r1",
            "integration_id": "i9",
            "integration_type": "HTTP_PROXY",
            "request_parameters": json.dumps({"integration.request.header.x-app": "'chat'"}),
        }
    )
    planned = fix.plan(diagnosis("connection-id-not-mapped"), evidence(routes=http))
    (change,) = planned.changes
    assert change.params["RequestParameters"] == {
        "integration.request.header.x-app": "'chat'",
        "integration.request.header.ConnectionId": "context.connectionId",
        "integration.request.querystring.token": "route.request.querystring.token",
        "integration.request.querystring.workspaceId": "route.request.querystring.workspaceId",
    }
    assert change.params["IntegrationId"] == "i9"


def findings_of(verdicts: dict[str, str]) -> pd.DataFrame:
    rows = [
        {"check": c, "question": "?", "verdict": v, "cause": None, "evidence": "", "next_step": ""}
        for c, v in verdicts.items()
    ]
    return pd.DataFrame(rows, columns=list(FINDING_COLUMNS)).astype(FINDING_COLUMNS)


@pytest.mark.parametrize(
    ("root", "verdicts", "fixed", "said"),
    [
        ("none", {"probe": "pass"}, True, "fixed: the root cause is gone and the storage test passes"),
        ("none", {"direct-write": "pass", "probe": "skip"}, True, "fixed"),
        (
            "none",
            {"probe": "skip", "direct-write": "skip"},
            False,
            "not enough: nothing fails, but no storage test",
        ),
        ("not-stored", {"probe": "fail"}, False, "not enough: the next cause is not-stored"),
        ("put-access-denied", {"probe": "pass"}, False, "not enough: the next cause is put-access-denied"),
    ],
)
def test_fixed_means_no_cause_and_a_passing_storage_test(
    root: str, verdicts: dict[str, str], fixed: bool, said: str
) -> None:
    chosen = causes.cause(root)
    after = Diagnosis({"id": root, "summary": chosen.summary, "evidence": []}, findings_of(verdicts))
    result = fix_apply.verdict(fix.Fix("put-access-denied", ""), after)
    assert result.fixed is fixed and result.text.startswith(said)


def test_the_journal_keeps_the_undo_and_saved_code(tmp_path: Path) -> None:
    applied = fix_apply.Applied(
        calls=["iam.put_role_policy(...)"],
        undo=[fix.Change("delete_role_policy", "Delete it.", {"RoleName": "r", "PolicyName": "p"})],
        saved={"code-fn": b"PK\x03\x04zip"},
    )
    fix_apply.journal(applied, tmp_path)
    back = fix_apply.read_journal(tmp_path)
    assert back.undo == applied.undo and back.saved == applied.saved
    with pytest.raises(Exception, match="nothing to undo"):
        fix_apply.read_journal(tmp_path / "empty")


def test_the_fixed_handler_package_holds_one_file_per_runtime() -> None:
    import io
    import zipfile

    for runtime, name in (("python3.12", "app.py"), ("nodejs20.x", "app.mjs")):
        with zipfile.ZipFile(io.BytesIO(fix.handler_package(runtime))) as archive:
            assert archive.namelist() == [name]


def test_the_reports_fix_section_is_text_never_markup() -> None:
    from kit import notebook

    hostile = '<img src=x onerror="alert(1)">` ``'
    shown = notebook.fix_markdown(diagnosis("write-not-awaited", hostile), evidence())
    assert "<img" not in shown.replace("&lt;img", "")
    assert "aws lambda update-function-code" in shown and "Verified:** in the next section" in shown
    nothing = notebook.fix_markdown(diagnosis("evidence-missing"), evidence())
    assert "Verified" not in nothing and "inconclusive" in nothing


def test_a_route_fix_without_an_integration_creates_one_and_uses_its_id() -> None:
    change = fix.Change(
        "connect_route",
        "",
        {
            "ApiId": "a1",
            "IntegrationId": "",
            "FunctionArn": "arn:aws:lambda:us-east-2:1:function:f",
            "Stage": "",
        },
    )
    cli, boto = change.cli(), change.boto3()
    assert cli[0].startswith(
        "INTEGRATION_ID=$(aws apigatewayv2 create-integration --api-id a1 --integration-type"
    )
    assert (
        cli[1]
        == "aws apigatewayv2 create-route --api-id a1 --route-key '$connect' --target integrations/$INTEGRATION_ID"
    )
    assert (
        "--statement-id kit-fix-apigateway-invoke" in cli[2]
        and "--source-arn 'arn:aws:execute-api:us-east-2:1:a1/*'" in cli[2]
    )
    assert boto[0].startswith('integration = boto3.client("apigatewayv2").create_integration(')
    assert 'Target="integrations/" + integration["IntegrationId"]' in boto[1]
    assert len(cli) == len(boto) == 3  # AutoDeploy: no deployment


def test_a_real_account_never_gets_its_code_replaced() -> None:
    handler = fix.plan(diagnosis("write-not-awaited", "the line"), evidence())
    with pytest.raises(Exception, match="does not replace the code of a function on a real account"):
        fix.for_account(handler)
    policy = fix.plan(diagnosis("put-access-denied"), evidence())
    assert fix.for_account(policy) == policy
    assert set(fix_commands.OPERATIONS) - {"deploy_fixed_handler"} == fix_commands.ACCOUNT_OPERATIONS


class FakeTarget:
    def __init__(self, label: str, api_id: str | None = "abc123") -> None:
        self.label = label
        self.api_id = api_id

    def require_writes(self, action: str) -> None:
        pass


def test_an_undo_goes_only_where_the_fix_was_applied(tmp_path: Path) -> None:
    applied = fix_apply.Applied(
        undo=[fix.Change("delete_role_policy", "Delete it.", {"RoleName": "r", "PolicyName": "p"})],
        target=fix_apply.where(FakeTarget("lab us-east-2")),  # type: ignore[arg-type]
    )
    fix_apply.journal(applied, tmp_path)
    back = fix_apply.read_journal(tmp_path)
    assert back.target == "lab us-east-2 api abc123"
    for elsewhere in (
        FakeTarget("aws us-east-2 (profile prod)"),
        FakeTarget("lab us-east-2", api_id="other"),
    ):
        with pytest.raises(Exception, match="The last fix was applied to lab us-east-2 api abc123"):
            fix_apply.undo(elsewhere, back)  # type: ignore[arg-type]


class Tty:
    def isatty(self) -> bool:
        return True


class AccountTarget:
    kind = "aws"
    label = "aws us-east-2 (profile prod)"

    def require_writes(self, action: str) -> None:
        pass


@pytest.mark.parametrize(
    ("answer", "yes_flag", "tty", "goes_on"),
    [
        ("yes", False, True, True),
        (" YES ", False, True, True),
        ("y", False, True, False),
        (EOFError(), False, True, False),
        (KeyboardInterrupt(), False, True, False),
        ("", True, False, True),  # --yes: no question
        ("yes", False, False, False),  # nobody to ask
    ],
    ids=["yes", "YES", "y", "eof", "ctrl-c", "--yes", "no terminal"],
)
def test_a_real_account_is_changed_only_after_a_yes(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    answer: object,
    yes_flag: bool,
    tty: bool,
    goes_on: bool,
) -> None:
    import argparse
    import builtins
    import sys

    from kit import cli
    from kit.errors import KitError

    def ask(prompt: str) -> str:
        if isinstance(answer, BaseException):
            raise answer
        return str(answer)

    monkeypatch.setattr(builtins, "input", ask)
    monkeypatch.setattr(sys, "stdin", Tty() if tty else io.StringIO())
    args = argparse.Namespace(yes=yes_flag)
    if goes_on:
        cli._confirm(args, AccountTarget(), ["Allow dynamodb:PutItem."])
    else:
        with pytest.raises(KitError):
            cli._confirm(args, AccountTarget(), ["Allow dynamodb:PutItem."])
    assert (
        "About to change aws us-east-2 (profile prod):\n  - Allow dynamodb:PutItem."
        in capsys.readouterr().out
    )


def test_a_throttled_stage_gets_the_accounts_limits_on_the_settings_that_throttle() -> None:
    both = stage(THROTTLED | {"connect_throttle_source": "RouteSettings[$connect], DefaultRouteSettings"})
    planned = fix.plan(diagnosis("throttled"), evidence(stage=both))
    (change,) = planned.changes
    assert change.params["Settings"] == ["RouteSettings[$connect]", "DefaultRouteSettings"]
    assert (change.params["ThrottlingBurstLimit"], change.params["ThrottlingRateLimit"]) == (5000, 10000.0)
    assert change.cli()[1] == (
        "aws apigatewayv2 update-stage --api-id abc123 --stage-name prod --default-route-settings "
        '\'{"ThrottlingBurstLimit":5000,"ThrottlingRateLimit":10000.0}\' --route-settings '
        '\'{"$connect":{"ThrottlingBurstLimit":5000,"ThrottlingRateLimit":10000.0}}\''
    )
    assert change.boto3()[-1] == (
        "apigw.update_stage(ApiId='abc123', StageName='prod', DefaultRouteSettings=defaults, "
        "RouteSettings=routes)"
    )
    assert fix.for_account(planned).changes == (change,)  # stage settings: the kit may change them
    only_route = fix.plan(
        diagnosis("throttled"),
        evidence(stage=stage(THROTTLED | {"connect_throttle_source": "RouteSettings[$connect]"})),
    )
    assert "--default-route-settings" not in only_route.changes[0].cli()[1]
    # No stage limit: the account's quota refused them; nothing in the stack to change.
    quota = fix.plan(
        diagnosis("throttled"),
        evidence(stage=stage({"connect_throttle_source": None, "connect_throttle_rate": None})),
    )
    assert not quota.applicable and "account's quota of new connections" in quota.advice
    unread = fix.plan(diagnosis("throttled"), evidence(stage=stage().iloc[0:0]))
    assert not unread.applicable and "stage was not read" in unread.advice


class StageClient:
    """An apigatewayv2 client that holds one stage's route settings, replacing each object it is sent."""

    def __init__(self, stage: dict[str, Any]) -> None:
        self.stage = stage

    def get_stage(self, **names: Any) -> dict[str, Any]:
        return json.loads(json.dumps(self.stage))

    def update_stage(self, ApiId: str, StageName: str, **settings: Any) -> None:
        self.stage |= json.loads(json.dumps(settings))


class StageTarget(FakeTarget):
    def __init__(self, client: StageClient) -> None:
        super().__init__("lab us-east-2")
        self._client = client

    def client(self, service: str) -> StageClient:
        assert service == "apigatewayv2"
        return self._client


def test_raising_the_throttling_keeps_the_other_settings_and_its_undo_puts_them_back() -> None:
    before = {
        "DefaultRouteSettings": {
            "LoggingLevel": "INFO",
            "ThrottlingBurstLimit": 0,
            "ThrottlingRateLimit": 0.0,
        },
        "RouteSettings": {
            "$connect": {"DataTraceEnabled": True, "ThrottlingBurstLimit": 0},
            "message": {"ThrottlingBurstLimit": 7},
        },
    }
    client = StageClient(json.loads(json.dumps(before)))
    target = StageTarget(client)
    both = stage(THROTTLED | {"connect_throttle_source": "RouteSettings[$connect], DefaultRouteSettings"})
    applied = fix_apply.apply(target, fix.plan(diagnosis("throttled"), evidence(stage=both)))  # type: ignore[arg-type]
    assert client.stage == {
        "DefaultRouteSettings": {
            "LoggingLevel": "INFO",
            "ThrottlingBurstLimit": 5000,
            "ThrottlingRateLimit": 10000.0,
        },
        "RouteSettings": {
            "$connect": {
                "DataTraceEnabled": True,
                "ThrottlingBurstLimit": 5000,
                "ThrottlingRateLimit": 10000.0,
            },
            "message": {"ThrottlingBurstLimit": 7},
        },
    }
    fix_apply.undo(target, applied)  # type: ignore[arg-type]
    assert client.stage == before


FORBIDDEN_FRAME = '{"message": "Forbidden", "connectionId":"conn-0", "requestId":"r="}'


def _forbidden_probe() -> pd.DataFrame:
    from .diagnose_evidence import probe_rows

    detail = f"the gateway answered with an error frame: {FORBIDDEN_FRAME}"
    return probe_rows(sent=False, delivered=False, detail=detail)


DELIVERY_PLANS = [
    # (cause, evidence changes, operations, (change, parameter, value))
    (
        "route-selection-mismatch",
        {"route_selection_expression": "$request.body.type", "probe": "forbidden"},
        ["update_api"],  # the healthy evidence's stage deploys itself: no deployment to add
        ("RouteSelectionExpression", "$request.body.action"),
    ),
    (
        "message-route-missing",  # the route is there: the stage's deployment lacks it
        {"probe": "forbidden"},
        ["deploy_stage"],
        ("StageName", "prod"),
    ),
    (
        "message-route-missing",  # the route is gone: created on the integration another message route uses
        {
            "probe": "forbidden",
            "routes": ("$connect", "$disconnect", "presence"),
        },
        ["connect_route"],
        ("RouteKey", "message"),
    ),
    (
        "management-endpoint-wrong",
        {
            "environment": {
                "MANAGEMENT_ENDPOINT": "https://abc123.execute-api.us-east-2.amazonaws.com/production"
            }
        },
        ["patch_environment"],
        ("Remove", ["MANAGEMENT_ENDPOINT"]),
    ),
    (
        "management-endpoint-wrong",
        {"environment": {"WS_ENDPOINT": "wss://abc123.execute-api.us-east-1.amazonaws.com/prod"}},
        ["patch_environment"],
        ("Set", {"WS_ENDPOINT": "wss://abc123.execute-api.us-east-2.amazonaws.com/prod"}),
    ),
    (
        "manage-connections-denied",
        {"permissions": permissions(manage="implicit-deny")},
        ["put_role_policy"],
        ("PolicyName", "kit-fix-manage-connections"),
    ),
]


@pytest.mark.parametrize(
    ("cause", "changes", "operations", "param"),
    DELIVERY_PLANS,
    ids=[f"{p[0]}-{i}" for i, p in enumerate(DELIVERY_PLANS)],
)
def test_each_delivery_cause_gets_its_change(
    cause: str, changes: dict[str, Any], operations: list[str], param: tuple[str, Any]
) -> None:
    from .diagnose_evidence import route

    shaped = dict(changes)
    if shaped.get("probe") == "forbidden":
        shaped["probe"] = _forbidden_probe()
    if "routes" in shaped:
        shaped["routes"] = routes(*(route(key) for key in shaped["routes"]))
    if "environment" in shaped:
        variables = {"TABLE_NAME": TABLE, **shaped.pop("environment")}
        shaped["functions"] = functions({"role": ROLE, "environment": json.dumps(variables)})
    planned = fix.plan(diagnosis(cause, "the line"), evidence(**shaped))
    assert [c.operation for c in planned.changes] == operations, planned
    assert planned.changes[0].params[param[0]] == param[1]
    text = planned.text()
    assert "AWS CLI:" in text and "boto3:" in text


def test_the_manage_connections_statement_is_the_minimal_one() -> None:
    planned = fix.plan(
        diagnosis("manage-connections-denied"), evidence(permissions=permissions(manage="implicit-deny"))
    )
    document = planned.changes[0].document()
    assert document["Statement"] == [
        {
            "Sid": "KitFixManageConnections",
            "Effect": "Allow",
            "Action": ["execute-api:ManageConnections"],
            "Resource": ["arn:aws:execute-api:us-east-2:123456789012:abc123/prod/POST/@connections/*"],
        }
    ]
    denied = fix.plan(
        diagnosis("manage-connections-denied"), evidence(permissions=permissions(manage="explicit-deny"))
    )
    assert not denied.changes and "explicit Deny" in denied.advice


def test_a_selection_fix_on_a_stage_that_does_not_deploy_itself_deploys() -> None:
    planned = fix.plan(
        diagnosis("route-selection-mismatch"),
        evidence(
            route_selection_expression="$request.body.type",
            probe=_forbidden_probe(),
            stage=stage({"auto_deploy": False}),
        ),
    )
    assert [c.operation for c in planned.changes] == ["update_api", "deploy_stage"]
    assert planned.changes[0].cli() == [
        "aws apigatewayv2 update-api --api-id abc123 --route-selection-expression '$request.body.action'"
    ]


def test_a_manage_connections_fix_goes_to_the_message_functions_own_role() -> None:
    from .diagnose_evidence import route

    message_arn = "arn:aws:lambda:us-east-2:123456789012:function:chatgenius-message"
    planned = fix.plan(
        diagnosis("manage-connections-denied"),
        evidence(
            functions=functions(
                {"role": ROLE},
                {
                    "function_name": "chatgenius-message",
                    "function_arn": message_arn,
                    "role": "arn:aws:iam::123456789012:role/message-role",
                },
            ),
            routes=routes(
                route("$connect"), route("$disconnect"), route("message", function_name="chatgenius-message")
            ),
            message_permissions=permissions(manage="implicit-deny"),
        ),
    )
    assert [c.params["RoleName"] for c in planned.changes] == ["message-role"]
    assert planned.function == "chatgenius-message"


class PermissionClient:
    """A Lambda client whose function already holds one statement of the kit's id, granting ``source``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.added = 0

    def add_permission(self, **params: Any) -> None:
        from botocore.exceptions import ClientError

        raise ClientError(
            {"Error": {"Code": "ResourceConflictException", "Message": "exists"}}, "AddPermission"
        )

    def get_policy(self, FunctionName: str) -> dict[str, str]:
        statement = {
            "Sid": "kit-fix-apigateway-connect",
            "Effect": "Allow",
            "Principal": {"Service": "apigateway.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Condition": {"ArnLike": {"AWS:SourceArn": self.source}},
        }
        return {"Policy": json.dumps({"Statement": [statement]})}


class PermissionTarget(FakeTarget):
    def __init__(self, client: PermissionClient) -> None:
        super().__init__("lab us-east-2")
        self._client = client

    def client(self, service: str) -> PermissionClient:
        assert service == "lambda"
        return self._client


def test_an_invoke_permission_already_there_for_another_source_is_a_one_line_error() -> None:
    planned = fix.plan(diagnosis("invoke-permission-missing"), evidence())
    (change,) = planned.changes
    wanted = change.params["SourceArn"]
    same = fix_apply.apply(PermissionTarget(PermissionClient(wanted)), planned)  # type: ignore[arg-type]
    assert same.undo == []  # the same grant already there: nothing added, nothing to undo
    other = PermissionClient(wanted.replace("/prod/", "/staging/"))
    with pytest.raises(
        ConfigurationError, match="already has a statement kit-fix-apigateway-connect"
    ) as raised:
        fix_apply.apply(PermissionTarget(other), planned)  # type: ignore[arg-type]
    assert f"for {other.source}, not {wanted};" in str(raised.value)
    assert "remove-permission" in str(raised.value)


# --------------------------------------------------------------------------------------------------
# The diagnosis document a report reads its summary card from (kit.notebook.summary_document)

PROOFS = [
    # (proof, what the document says about it)
    (
        fix_proof.Proof("on the lab", fix_apply.Verdict(True, "fixed: gone", "put-access-denied", "none")),
        {"where": "on the lab", "verified": True, "fixed": True, "verdict": "fixed: gone", "why_not": ""},
    ),
    (
        fix_proof.Proof(
            "on a mirror of a", fix_apply.Verdict(False, "not enough: x", "put-access-denied", "x")
        ),
        {"where": "on a mirror of a", "verified": True, "fixed": False, "verdict": "not enough: x"},
    ),
    (
        fix_proof.Proof("on a mirror of a", why_not="no Java", mirror={"not_reproduced": ["the authorizer"]}),
        {"verified": False, "fixed": None, "why_not": "no Java", "not_reproduced": ["the authorizer"]},
    ),
    (None, {"verified": False, "fixed": None, "why_not": notebook.NOT_ASKED_TO_VERIFY}),
]


@pytest.mark.parametrize(("proof", "expected"), PROOFS)
def test_the_summary_document_says_the_fix_and_whether_it_was_verified(
    proof: fix_proof.Proof | None, expected: dict[str, Any], tmp_path: Path
) -> None:
    found = diagnosis("put-access-denied", "the line")
    document = notebook.summary_document(found, evidence(), proof)
    assert document["root_cause"]["id"] == "put-access-denied" and document["findings"] == []
    assert document["fix"]["summary"] == fix.plan(found, evidence()).summary and document["fix"]["applicable"]
    assert expected.items() <= document["proof"].items()
    written = notebook.write_summary(found, tmp_path / "d.json", evidence(), proof)
    assert written is not None and json.loads(written.read_text()) == json.loads(json.dumps(document))


def test_without_evidence_the_document_is_kit_diagnose_json() -> None:
    found = diagnosis("put-access-denied")
    assert notebook.summary_document(found) == json.loads(ranking.to_json(found))
    assert notebook.write_summary(found, "") is None
