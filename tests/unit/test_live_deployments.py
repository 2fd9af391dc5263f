"""kit.lab.live serves the stage's deployment: the snapshot its DeploymentId names, with the stage's settings as
they are now; nothing (every handshake refused) for a stage with no deployment or an unknown one."""

from __future__ import annotations

from typing import Any

import pytest

from kit.lab.deployments import Snapshot
from kit.lab.live import LiveConfig

SNAPSHOT = Snapshot(
    "d1",
    "2026-01-01T00:00:00.000Z",
    {"ApiId": "abc", "RouteSelectionExpression": "$request.body.action"},
    ({"RouteKey": "$connect", "Target": "integrations/i1"},),
    ({"IntegrationId": "i1", "IntegrationType": "AWS_PROXY", "IntegrationUri": "old"},),
    route_responses=({"RouteId": "r1", "RouteResponseKey": "$default"},),
)


class _ApiGateway:
    def __init__(self, stage: dict[str, Any]) -> None:
        self.stage = stage

    def get_stage(self, ApiId: str, StageName: str) -> dict[str, Any]:
        return self.stage

    def get_routes(self, ApiId: str) -> dict[str, Any]:
        raise AssertionError("the live routes are not what the stage serves")


class _Clients:
    def __init__(self, stage: dict[str, Any]) -> None:
        self.apigw = _ApiGateway(stage)

    def client(self, service: str) -> Any:
        assert service == "apigatewayv2"
        return self.apigw


@pytest.mark.parametrize(
    ("stage", "served"),
    [
        ({"StageName": "prod", "DeploymentId": "d1"}, True),
        ({"StageName": "prod"}, False),  # no deployment: API Gateway serves nothing
        ({"StageName": "prod", "DeploymentId": "gone"}, False),
    ],
)
def test_the_stage_serves_its_deployments_snapshot(stage: dict[str, Any], served: bool) -> None:
    snapshots = {("abc", "d1"): SNAPSHOT}
    live = LiveConfig(_Clients(stage), lambda: 0, lambda api, deployment: snapshots.get((api, deployment)))
    answers = live.api("abc", "prod")
    if not served:
        assert answers is None
        return
    assert answers is not None
    api, routes, integrations, stage_answer, route_responses, _authorizers = answers
    assert api["RouteSelectionExpression"] == "$request.body.action"
    assert [r["RouteKey"] for r in routes] == ["$connect"]
    assert integrations[0]["IntegrationUri"] == "old"
    assert route_responses == [{"RouteId": "r1", "RouteResponseKey": "$default"}]
    assert stage_answer is stage
