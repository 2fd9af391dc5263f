"""The lab's API Gateway v2 deployments and stages (kit.lab.deployments), which moto lacks: which requests are
theirs, how a stage is shown and when a stage change is refused (tables), and what the layer answers in front
of a small stand-in for moto's API Gateway v2 (snapshots, AutoDeploy, the bad inputs)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from kit.lab import deployments
from kit.lab.deployments import Request, StageState


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v2/apis/abc/deployments", Request("CreateDeployment", "abc")),
        ("GET", "/v2/apis/abc/deployments", Request("GetDeployments", "abc")),
        ("GET", "/v2/apis/abc/deployments/d1", Request("GetDeployment", "abc", "d1")),
        ("DELETE", "/v2/apis/abc/deployments/d1", Request("DeleteDeployment", "abc", "d1")),
        ("PATCH", "/v2/apis/abc/deployments/d1", None),  # UpdateDeployment: not answered, moto says 404
        ("DELETE", "/v2/apis/abc/deployments", None),
        ("GET", "/v2/apis/abc/deployments/d1/extra", None),
        ("POST", "/v2/apis/abc/stages", Request("CreateStage", "abc")),
        ("GET", "/v2/apis/abc/stages", Request("GetStages", "abc")),
        ("GET", "/v2/apis/abc/stages/prod", Request("GetStage", "abc", "prod")),
        ("GET", "/v2/apis/abc/stages/%24default", Request("GetStage", "abc", "$default")),
        ("PATCH", "/v2/apis/abc/stages/prod", Request("UpdateStage", "abc", "prod")),
        ("DELETE", "/v2/apis/abc/stages/prod", Request("DeleteStage", "abc", "prod")),
        ("PUT", "/v2/apis/abc/stages", None),
        # Configuration changes: after each, AutoDeploy stages are deployed again.
        ("POST", "/v2/apis/abc/routes", Request("EditApi", "abc")),
        ("PATCH", "/v2/apis/abc/routes/r1", Request("EditApi", "abc")),
        ("DELETE", "/v2/apis/abc/routes/r1", Request("DeleteRoute", "abc", "r1")),
        ("PATCH", "/v2/apis/abc/integrations/i1", Request("EditApi", "abc")),
        ("POST", "/v2/apis/abc/routes/r1/routeresponses", Request("CreateRouteResponse", "abc", "r1")),
        ("GET", "/v2/apis/abc/routes/r1/routeresponses", Request("GetRouteResponses", "abc", "r1")),
        (
            "DELETE",
            "/v2/apis/abc/routes/r1/routeresponses/x1",
            Request("DeleteRouteResponse", "abc", "r1", "x1"),
        ),
        ("GET", "/v2/apis/abc/routes/r1/routeresponses/x1", None),  # GetRouteResponse: moto's
        ("PATCH", "/v2/apis/abc/routes/r1/routeresponses/x1", Request("EditApi", "abc")),
        ("POST", "/v2/apis/abc/authorizers", Request("EditApi", "abc")),
        ("PATCH", "/v2/apis/abc", Request("EditApi", "abc")),
        ("DELETE", "/v2/apis/abc", Request("DeleteApi", "abc")),
        # Reads and everything else are moto's.
        ("GET", "/v2/apis/abc/routes", None),
        ("GET", "/v2/apis/abc", None),
        ("POST", "/v2/apis", None),
        ("GET", "/2015-03-31/functions/f", None),
    ],
)
def test_route(method: str, path: str, expected: Request | None) -> None:
    assert deployments.route(method, path) == expected


MOTO_STAGE = {
    "stageName": "prod",
    "createdDate": "2026-01-01T00:00:00Z",
    "lastUpdatedDate": "2026-01-01T00:00:00Z",
}


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (None, MOTO_STAGE),
        (StageState(), MOTO_STAGE | {"autoDeploy": False}),
        (
            StageState("d1", last_updated="2026-01-02T00:00:00.000Z"),
            MOTO_STAGE
            | {"autoDeploy": False, "deploymentId": "d1", "lastUpdatedDate": "2026-01-02T00:00:00.000Z"},
        ),
        (  # the status message is shown for stages that deploy themselves only
            StageState("d1", status_message="Successfully deployed"),
            MOTO_STAGE | {"autoDeploy": False, "deploymentId": "d1"},
        ),
        (
            StageState("d2", auto_deploy=True, status_message="Successfully deployed"),
            MOTO_STAGE
            | {
                "autoDeploy": True,
                "deploymentId": "d2",
                "lastDeploymentStatusMessage": "Successfully deployed",
            },
        ),
        (  # UpdateStage's settings, which moto cannot store, win over moto's
            StageState(settings={"defaultRouteSettings": {"loggingLevel": "ERROR"}}),
            MOTO_STAGE | {"autoDeploy": False, "defaultRouteSettings": {"loggingLevel": "ERROR"}},
        ),
    ],
)
def test_stage_answer(state: StageState | None, expected: dict[str, Any]) -> None:
    assert deployments.stage_answer(MOTO_STAGE, state) == expected


@pytest.mark.parametrize(
    ("state", "changes", "expected"),
    [
        (StageState(), {}, None),
        (StageState(), {"deploymentId": "d1"}, None),
        (StageState(), {"deploymentId": "nope"}, (404, "NotFoundException")),
        (StageState(), {"deploymentId": "d1", "autoDeploy": True}, (400, "BadRequestException")),
        (StageState(auto_deploy=True), {"deploymentId": "d1"}, (400, "BadRequestException")),
        (StageState(auto_deploy=True), {"deploymentId": "d1", "autoDeploy": False}, None),
        (StageState(auto_deploy=True), {"autoDeploy": True}, None),
        # throttling out of the account's range: refused before anything else
        (
            StageState(),
            {"routeSettings": {"$connect": {"throttlingBurstLimit": -1}}},
            (400, "BadRequestException"),
        ),
        (StageState(), {"defaultRouteSettings": {"throttlingRateLimit": 0, "throttlingBurstLimit": 0}}, None),
    ],
)
def test_stage_refusal(state: StageState, changes: dict[str, Any], expected: tuple[int, str] | None) -> None:
    refusal = deployments.stage_refusal("prod", state, changes, ["d1"])
    assert (None if refusal is None else (refusal.status, refusal.error_type)) == expected


def test_the_wire_json_is_read_as_boto3_shows_it() -> None:
    body = json.dumps({"items": [{"routeKey": "$connect", "target": "integrations/i1"}]}).encode()
    assert deployments.boto3_shape("GetRoutes", body) == {
        "Items": [{"RouteKey": "$connect", "Target": "integrations/i1"}]
    }


# -- the layer in front of a stand-in for moto's API Gateway v2 ---------------------------------------------


class FakeMoto:
    """API ``abc``: its routes, integrations and stages, answered as moto's wire JSON."""

    def __init__(self) -> None:
        self.routes: list[dict[str, Any]] = [
            {"routeId": "r1", "routeKey": "$connect", "target": "integrations/i1"}
        ]
        self.integrations = [{"integrationId": "i1", "integrationType": "AWS_PROXY", "integrationUri": "old"}]
        self.stages: dict[str, dict[str, Any]] = {}
        self.route_responses: dict[str, dict[str, Any]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
        status, answer = 200, {}
        if (method, path) == ("GET", "/v2/apis/abc"):
            answer = {
                "apiId": "abc",
                "protocolType": "WEBSOCKET",
                "routeSelectionExpression": "$request.body.a",
            }
        elif (method, path) == ("GET", "/v2/apis/abc/routes"):
            answer = {"items": self.routes}
        elif (method, path) == ("POST", "/v2/apis/abc/routes"):
            self.routes.append(body | {"routeId": f"r{len(self.routes) + 1}"})
            status = 201
        elif method == "POST" and path.endswith("/routeresponses"):
            answer = body | {"routeResponseId": f"x{len(self.route_responses) + 1}"}
            self.route_responses[answer["routeResponseId"]] = answer
        elif "/routeresponses/" in path and path.rsplit("/", 1)[-1] in self.route_responses:
            response_id = path.rsplit("/", 1)[-1]
            answer = self.route_responses[response_id]
            if method == "DELETE":
                del self.route_responses[response_id]
                answer = {}
        elif method == "GET" and path.startswith("/v2/apis/abc/routes/r"):
            found = [r for r in self.routes if r["routeId"] == path.rsplit("/", 1)[-1]]
            status, answer = (200, found[0]) if found else (404, {"message": "no such route"})
        elif method == "DELETE" and path.startswith("/v2/apis/abc/routes/r"):
            self.routes = [r for r in self.routes if r["routeId"] != path.rsplit("/", 1)[-1]]
        elif (method, path) == ("GET", "/v2/apis/abc/integrations"):
            answer = {"items": self.integrations}
        elif (method, path) == ("PATCH", "/v2/apis/abc/integrations/i1"):
            self.integrations[0] |= body
        elif (method, path) == ("POST", "/v2/apis/abc/stages"):
            self.stages[body["stageName"]] = answer = {
                k: v for k, v in body.items() if k != "deploymentId"
            }  # moto drops DeploymentId
        elif (method, path) == ("GET", "/v2/apis/abc/stages"):
            answer = {"items": list(self.stages.values())}
        elif method == "GET" and path.startswith("/v2/apis/abc/stages/"):
            name = path.rsplit("/", 1)[-1]
            status, answer = (200, self.stages[name]) if name in self.stages else (404, {"message": "no"})
        else:
            status, answer = 404, {"message": f"not answered: {method} {path}"}
        start_response(f"{status} X", [("Content-Type", "application/json")])
        return [json.dumps(answer).encode()]


def call(
    app: deployments.DeploymentsApp, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
    }
    seen: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"] = status

    raw = b"".join(app(environ, start_response))
    return int(seen["status"].split()[0]), json.loads(raw) if raw else None


@pytest.fixture
def layer() -> tuple[deployments.DeploymentsApp, FakeMoto]:
    moto = FakeMoto()
    return deployments.DeploymentsApp(moto, lambda api: api == "abc"), moto


def served(app: deployments.DeploymentsApp, stage: str = "prod") -> deployments.Snapshot | None:
    _, answer = call(app, "GET", f"/v2/apis/abc/stages/{stage}")
    return app.snapshot("abc", answer.get("deploymentId", ""))


def test_a_stage_serves_the_snapshot_of_its_deployment(layer: tuple[Any, FakeMoto]) -> None:
    app, _ = layer
    status, made = call(app, "POST", "/v2/apis/abc/deployments", {"description": "first"})
    assert status == 201 and made["deploymentStatus"] == "DEPLOYED" and made["autoDeployed"] is False
    status, stage = call(
        app, "POST", "/v2/apis/abc/stages", {"stageName": "prod", "deploymentId": made["deploymentId"]}
    )
    assert status == 200 and stage["deploymentId"] == made["deploymentId"]
    # Changed after the deployment: the stage still serves what was deployed.
    call(app, "POST", "/v2/apis/abc/routes", {"routeKey": "join", "target": "integrations/i1"})
    call(app, "PATCH", "/v2/apis/abc/integrations/i1", {"integrationUri": "new"})
    snapshot = served(app)
    assert snapshot is not None
    assert [r["RouteKey"] for r in snapshot.routes] == ["$connect"]
    assert snapshot.integrations[0]["IntegrationUri"] == "old"
    assert snapshot.api["RouteSelectionExpression"] == "$request.body.a"
    # Deployed to the stage: served from now on.
    status, again = call(app, "POST", "/v2/apis/abc/deployments", {"stageName": "prod"})
    snapshot = served(app)
    assert snapshot is not None and snapshot.deployment_id == again["deploymentId"]
    assert [r["RouteKey"] for r in snapshot.routes] == ["$connect", "join"]
    assert snapshot.integrations[0]["IntegrationUri"] == "new"
    assert [d["deploymentId"] for d in call(app, "GET", "/v2/apis/abc/deployments")[1]["items"]] == [
        made["deploymentId"],
        again["deploymentId"],
    ]
    # The first one is no stage's any more: it can go; the served one cannot.
    assert call(app, "DELETE", f"/v2/apis/abc/deployments/{made['deploymentId']}")[0] == 204
    assert call(app, "GET", f"/v2/apis/abc/deployments/{made['deploymentId']}")[0] == 404
    status, refused = call(app, "DELETE", f"/v2/apis/abc/deployments/{again['deploymentId']}")
    assert status == 400 and "prod" in refused["message"]


def test_auto_deploy_stages_follow_every_change(layer: tuple[Any, FakeMoto]) -> None:
    app, _ = layer
    status, stage = call(app, "POST", "/v2/apis/abc/stages", {"stageName": "live", "autoDeploy": True})
    first = stage["deploymentId"]  # deployed at once
    assert stage["autoDeploy"] is True and stage["lastDeploymentStatusMessage"].endswith(f"'{first}'")
    call(app, "PATCH", "/v2/apis/abc/integrations/i1", {"integrationUri": "new"})
    snapshot = served(app, "live")
    assert snapshot is not None and snapshot.deployment_id != first
    assert snapshot.integrations[0]["IntegrationUri"] == "new"
    items = call(app, "GET", "/v2/apis/abc/deployments")[1]["items"]
    assert [d["autoDeployed"] for d in items] == [True, True]
    # Its DeploymentId cannot be chosen while it deploys itself.
    assert call(app, "PATCH", "/v2/apis/abc/stages/live", {"deploymentId": first})[0] == 400
    status, turned = call(
        app, "PATCH", "/v2/apis/abc/stages/live", {"autoDeploy": False, "deploymentId": first}
    )
    assert status == 200 and turned["deploymentId"] == first and turned["autoDeploy"] is False
    call(app, "PATCH", "/v2/apis/abc/integrations/i1", {"integrationUri": "newer"})
    assert served(app, "live").deployment_id == first  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        (
            "POST",
            "/v2/apis/abc/stages",
            {"stageName": "prod", "deploymentId": "nope"},
            404,
            "Invalid deployment",
        ),
        ("PATCH", "/v2/apis/abc/stages/prod", {"deploymentId": "nope"}, 404, "Invalid deployment"),
        ("PATCH", "/v2/apis/abc/stages/gone", {"deploymentId": "nope"}, 404, "Invalid stage"),
        ("POST", "/v2/apis/abc/deployments", {"stageName": "gone"}, 404, "Invalid stage"),
        ("GET", "/v2/apis/abc/deployments/nope", None, 404, "Invalid deployment"),
        ("POST", "/v2/apis/nope/deployments", {}, 404, "Invalid API"),
        ("PATCH", "/v2/apis/nope/stages/prod", {}, 404, "Invalid API"),
    ],
)
def test_bad_input_is_refused(
    layer: tuple[Any, FakeMoto], method: str, path: str, body: Any, status: int, error: str
) -> None:
    app, _ = layer
    call(app, "POST", "/v2/apis/abc/stages", {"stageName": "prod"})
    answered, answer = call(app, method, path, body)
    assert answered == status and answer["message"].startswith(error)
    assert served(app) is None  # prod never pointed anywhere


def test_a_deployment_needs_a_route(layer: tuple[Any, FakeMoto]) -> None:
    app, moto = layer
    moto.routes.clear()
    status, answer = call(app, "POST", "/v2/apis/abc/deployments", {})
    assert status == 400 and "at least one route" in answer["message"]


def test_stage_settings_apply_without_a_deployment(layer: tuple[Any, FakeMoto]) -> None:
    app, _ = layer
    _, made = call(app, "POST", "/v2/apis/abc/deployments", {})
    call(app, "POST", "/v2/apis/abc/stages", {"stageName": "prod", "deploymentId": made["deploymentId"]})
    settings = {"defaultRouteSettings": {"loggingLevel": "ERROR"}}
    status, updated = call(app, "PATCH", "/v2/apis/abc/stages/prod", settings)
    assert status == 200 and updated["defaultRouteSettings"] == {"loggingLevel": "ERROR"}
    assert updated["deploymentId"] == made["deploymentId"]
    assert call(app, "GET", "/v2/apis/abc/stages")[1]["items"][0]["defaultRouteSettings"] == {
        "loggingLevel": "ERROR"
    }


def test_route_responses_are_listed_and_captured_by_a_deployment(layer: tuple[Any, FakeMoto]) -> None:
    """moto cannot list route responses; the layer can, and a deployment captures them with their route."""
    app, _ = layer
    status, refused = call(app, "POST", "/v2/apis/abc/routes/r1/routeresponses", {"routeResponseKey": "ok"})
    assert status == 400 and "'$default' is the only key" in refused["message"]
    status, made = call(
        app, "POST", "/v2/apis/abc/routes/r1/routeresponses", {"routeResponseKey": "$default"}
    )
    assert status == 200 and made["routeResponseId"] == "x1"
    assert call(app, "GET", "/v2/apis/abc/routes/r1/routeresponses")[1]["items"] == [made]
    assert call(app, "GET", "/v2/apis/abc/routes/r7/routeresponses")[0] == 404
    _, first = call(app, "POST", "/v2/apis/abc/deployments", {})
    call(app, "DELETE", "/v2/apis/abc/routes/r1/routeresponses/x1")
    assert call(app, "GET", "/v2/apis/abc/routes/r1/routeresponses")[1]["items"] == []
    _, second = call(app, "POST", "/v2/apis/abc/deployments", {})
    captured = app.snapshot("abc", first["deploymentId"])
    assert captured is not None and [dict(r) for r in captured.route_responses] == [
        {"RouteResponseKey": "$default", "RouteResponseId": "x1", "RouteId": "r1"}
    ]
    assert app.snapshot("abc", second["deploymentId"]).route_responses == ()  # type: ignore[union-attr]
    # A route deleted takes its route responses with it.
    call(app, "POST", "/v2/apis/abc/routes/r1/routeresponses", {"routeResponseKey": "$default"})
    call(app, "POST", "/v2/apis/abc/routes", {"routeKey": "join", "target": "integrations/i1"})
    call(app, "DELETE", "/v2/apis/abc/routes/r1")
    assert call(app, "GET", "/v2/apis/abc/routes/r1/routeresponses")[0] == 404
