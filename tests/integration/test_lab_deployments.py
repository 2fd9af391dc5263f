"""Deployments and stage drift on a running lab (issue 14 items 2 and 4), through plain boto3 calls: the stage
serves its deployment, a change takes effect with the next CreateDeployment (or at once on a stage with
AutoDeploy), a stage pointed at a deployment that does not exist is refused by the API, and a route answers
the client only with a deployed route response.

One test per row of docs/fidelity.md's "Deployments and stages" and "Route responses" tables, each docstring
naming its row (the row check is test_fidelity.py's). One healthy lab for the module; each test puts back what it changed and
deploys it again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from kit.lab.lab import Lab

from .labclient import (
    FORBIDDEN_FRAME,
    EmptyDynamoDB,
    close_quietly,
    deploy,
    handshake_status,
    info,
    open_socket,
    query,
    recv_text,
    routes,
    unique_user,
)

pytestmark = pytest.mark.integration

MISSING_FUNCTION = "arn:aws:lambda:us-east-2:123456789012:function:chatgenius-gone"


@pytest.fixture(scope="module")
def lab(empty_dynamodb: EmptyDynamoDB) -> Iterator[Lab]:
    with Lab("healthy", write_lab_file=False, dynamodb=empty_dynamodb()) as running:
        yield running


def _frame_for(lab: Lab, action: str) -> str | None:
    ws = open_socket(lab, query(unique_user(), "ws-1"))
    try:
        ws.send(f'{{"action": "{action}"}}')
        return recv_text(ws, timeout=1.5)
    finally:
        close_quietly(ws)


def _stage(lab: Lab) -> dict[str, object]:
    return dict(
        lab.target().client("apigatewayv2").get_stage(ApiId=info(lab).api_id, StageName=info(lab).stage)
    )


def test_the_lab_is_provisioned_with_a_deployment(lab: Lab) -> None:
    """Row: a stage serves its deployment."""
    apigw = lab.target().client("apigatewayv2")
    stage = _stage(lab)
    deployments = apigw.get_deployments(ApiId=info(lab).api_id)["Items"]
    assert stage["DeploymentId"] in [d["DeploymentId"] for d in deployments]
    assert stage["AutoDeploy"] is False


def test_a_route_created_after_the_deployment_gets_the_forbidden_frame_until_deployed(lab: Lab) -> None:
    """Row: route created after the deployment."""
    apigw = lab.target().client("apigatewayv2")
    api_id = info(lab).api_id
    target = routes(lab)["$disconnect"]["Target"]
    route = apigw.create_route(ApiId=api_id, RouteKey="ping", Target=target)
    try:
        frame = _frame_for(lab, "ping")
        assert frame is not None and re.fullmatch(FORBIDDEN_FRAME, frame), frame
        deploy(lab)
        after = _frame_for(lab, "ping")
        assert after is None or not re.fullmatch(FORBIDDEN_FRAME, after), after
    finally:
        apigw.delete_route(ApiId=api_id, RouteId=route["RouteId"])
        deploy(lab)
    frame = _frame_for(lab, "ping")  # the route's deletion, deployed
    assert frame is not None and re.fullmatch(FORBIDDEN_FRAME, frame), frame


def test_an_integration_changed_without_a_deployment_keeps_the_old_behaviour(lab: Lab) -> None:
    """Row: integration changed without a deployment."""
    apigw = lab.target().client("apigatewayv2")
    api_id = info(lab).api_id
    integration_id = routes(lab)["$connect"]["Target"].removeprefix("integrations/")
    before = apigw.get_integration(ApiId=api_id, IntegrationId=integration_id)["IntegrationUri"]
    broken = f"arn:aws:apigateway:us-east-2:lambda:path/2015-03-31/functions/{MISSING_FUNCTION}/invocations"
    apigw.update_integration(ApiId=api_id, IntegrationId=integration_id, IntegrationUri=broken)
    try:
        # Not deployed: the stage still invokes the function that exists.
        assert handshake_status(lab, query(unique_user(), "ws-1")) == 101
        deploy(lab)
        assert handshake_status(lab, query(unique_user(), "ws-1")) == 500
    finally:
        apigw.update_integration(ApiId=api_id, IntegrationId=integration_id, IntegrationUri=before)
        deploy(lab)
    assert handshake_status(lab, query(unique_user(), "ws-1")) == 101


def test_a_stage_with_auto_deploy_serves_each_change_at_once(lab: Lab) -> None:
    """Row: AutoDeploy."""
    apigw = lab.target().client("apigatewayv2")
    api_id, stage = info(lab).api_id, info(lab).stage
    served = _stage(lab)["DeploymentId"]
    turned_on = apigw.update_stage(ApiId=api_id, StageName=stage, AutoDeploy=True)
    target = routes(lab)["$disconnect"]["Target"]
    route = apigw.create_route(ApiId=api_id, RouteKey="ping", Target=target)
    try:
        assert turned_on["DeploymentId"] != served  # switched on: deployed at once
        after = _frame_for(lab, "ping")
        assert after is None or not re.fullmatch(FORBIDDEN_FRAME, after), after
        now = _stage(lab)
        assert now["DeploymentId"] != turned_on["DeploymentId"]
        assert str(now["LastDeploymentStatusMessage"]).endswith(f"'{now['DeploymentId']}'")
        made = apigw.get_deployment(ApiId=api_id, DeploymentId=str(now["DeploymentId"]))
        assert made["AutoDeployed"] is True
        # While it deploys itself, its deployment cannot be chosen.
        with pytest.raises(ClientError) as refused:
            apigw.update_stage(ApiId=api_id, StageName=stage, DeploymentId=served)
        assert refused.value.response["Error"]["Code"] == "BadRequestException"
    finally:
        apigw.delete_route(ApiId=api_id, RouteId=route["RouteId"])
        apigw.update_stage(ApiId=api_id, StageName=stage, AutoDeploy=False, DeploymentId=served)
    frame = _frame_for(lab, "ping")  # back on the provisioned deployment, which has no ping route
    assert frame is not None and re.fullmatch(FORBIDDEN_FRAME, frame), frame


def test_a_deployment_that_does_not_exist_is_refused(lab: Lab) -> None:
    """Row: a stage pointed at a deployment that does not exist."""
    apigw = lab.target().client("apigatewayv2")
    api_id, stage = info(lab).api_id, info(lab).stage
    served = _stage(lab)["DeploymentId"]
    for call in (
        lambda: apigw.update_stage(ApiId=api_id, StageName=stage, DeploymentId="nope12"),
        lambda: apigw.create_stage(ApiId=api_id, StageName="beta", DeploymentId="nope12"),
        lambda: apigw.get_deployment(ApiId=api_id, DeploymentId="nope12"),
        lambda: apigw.create_deployment(ApiId=api_id, StageName="no-such-stage"),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["Error"]["Code"] == "NotFoundException", refused.value
    with pytest.raises(ClientError) as in_use:  # the deployment a stage serves cannot be deleted
        apigw.delete_deployment(ApiId=api_id, DeploymentId=str(served))
    assert in_use.value.response["Error"]["Code"] == "BadRequestException"
    assert _stage(lab)["DeploymentId"] == served
    assert "beta" not in [s["StageName"] for s in apigw.get_stages(ApiId=api_id)["Items"]]
    assert handshake_status(lab, query(unique_user(), "ws-1")) == 101


def test_a_route_answers_the_client_only_with_a_deployed_default_route_response(lab: Lab) -> None:
    """Row: route responses (two-way routes)."""
    apigw = lab.target().client("apigatewayv2")
    api_id = info(lab).api_id
    target = routes(lab)["$disconnect"]["Target"]
    # The handler answers a route it does not know with a 400 and a JSON body: one-way, nothing comes back.
    route = apigw.create_route(
        ApiId=api_id, RouteKey="echo", Target=target, RouteResponseSelectionExpression="$default"
    )
    try:
        deploy(lab)
        assert _frame_for(lab, "echo") is None  # the expression alone does not make it two-way [inferred]
        apigw.create_route_response(ApiId=api_id, RouteId=route["RouteId"], RouteResponseKey="$default")
        listed = apigw.get_route_responses(ApiId=api_id, RouteId=route["RouteId"])["Items"]
        assert [r["RouteResponseKey"] for r in listed] == ["$default"]
        assert _frame_for(lab, "echo") is None  # created, not deployed
        deploy(lab)
        answer = _frame_for(lab, "echo")
        assert answer is not None and "UnknownRoute" in answer, answer
        with pytest.raises(ClientError, match="BadRequestException"):
            apigw.create_route_response(ApiId=api_id, RouteId=route["RouteId"], RouteResponseKey="ok")
    finally:
        apigw.delete_route(ApiId=api_id, RouteId=route["RouteId"])
        deploy(lab)


def test_connect_never_sends_its_answer_body(lab: Lab) -> None:
    """Row: $connect's answer body."""
    apigw = lab.target().client("apigatewayv2")
    api_id = info(lab).api_id
    connect = routes(lab)["$connect"]
    apigw.update_route(ApiId=api_id, RouteId=connect["RouteId"], RouteResponseSelectionExpression="$default")
    made = apigw.create_route_response(ApiId=api_id, RouteId=connect["RouteId"], RouteResponseKey="$default")
    try:
        deploy(lab)
        ws = open_socket(lab, query(unique_user(), "ws-1"))
        try:
            assert recv_text(ws, timeout=1.5) is None  # the handler answered 200 with a body: not sent
        finally:
            close_quietly(ws)
    finally:
        apigw.delete_route_response(
            ApiId=api_id, RouteId=connect["RouteId"], RouteResponseId=made["RouteResponseId"]
        )
        deploy(lab)
