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


class _Iam:
    def __init__(self) -> None:
        self.document: dict[str, Any] = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "*"}],
        }
        self.reads = 0

    def list_role_policies(self, RoleName: str) -> dict[str, Any]:
        self.reads += 1
        return {"PolicyNames": ["access"]}

    def get_role_policy(self, RoleName: str, PolicyName: str) -> dict[str, Any]:
        return {"PolicyDocument": self.document}

    def list_attached_role_policies(self, RoleName: str) -> dict[str, Any]:
        return {"AttachedPolicies": []}


class _IamClients:
    def __init__(self) -> None:
        self.iam = _Iam()

    def client(self, service: str) -> Any:
        assert service == "iam"
        return self.iam


ROLE = "arn:aws:iam::123456789012:role/r"


def test_a_decision_is_read_once_per_generation_and_again_once_the_configuration_moved() -> None:
    clients = _IamClients()
    generation = [0]
    live = LiveConfig(clients, lambda: generation[0], lambda api, deployment: None)
    for _ in range(3):
        assert live.decision(ROLE, "dynamodb:PutItem", "arn:t").allowed
    assert clients.iam.reads == 1
    clients.iam.document["Statement"][0]["Effect"] = "Deny"  # put_role_policy: the generation moves
    assert live.decision(ROLE, "dynamodb:PutItem", "arn:t").allowed  # not yet seen: same generation
    generation[0] += 1
    assert not live.decision(ROLE, "dynamodb:PutItem", "arn:t").allowed
    assert clients.iam.reads == 2


def test_derived_is_made_again_only_once_the_generation_moved() -> None:
    generation = [0]
    live = LiveConfig(_IamClients(), lambda: generation[0], lambda api, deployment: None)
    made: list[int] = []

    def make() -> int:
        made.append(generation[0])
        return len(made)

    assert [live.derived(("k",), make) for _ in range(3)] == [1, 1, 1]
    generation[0] += 1
    assert live.derived(("k",), make) == 2
    assert live.derived(("other",), make) == 3  # keys apart
    assert made == [0, 1, 1]
