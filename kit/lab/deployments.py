"""API Gateway v2 deployments and the stages that serve them, which moto lacks, in the lab's own AWS layer.

moto has no deployments API, drops ``DeploymentId`` on ``CreateStage`` and has no ``UpdateStage``. This WSGI
layer in front of moto answers what AWS answers, so a stage serves the deployment it points to:

- ``CreateDeployment`` takes a snapshot of the API (its route selection expression), its routes, its
  integrations and the authorizers its routes name, read through moto's own API answers, and, with a
  ``StageName``, points that stage at it. A deployment needs at least one route.
- ``CreateStage`` and ``UpdateStage`` take ``DeploymentId`` (refused when no such deployment exists, or when
  the stage deploys itself) and ``AutoDeploy``; ``GetStage(s)`` answer with them and with the stage's
  ``LastUpdatedDate``. Stage settings (logging, access logs, variables, throttling) apply at once, without a
  deployment; throttling limits out of range are refused (BadRequestException).
- ``AutoDeploy``: every later change to the API's routes, integrations, authorizers or the API itself is
  followed by a new deployment (``AutoDeployed: true``) of each stage that deploys itself; a stage created or
  switched to ``AutoDeploy`` is deployed at once (inferred: AWS documents AutoDeploy for HTTP APIs, and its
  WebSocket triggers are unverified).
- ``DeleteDeployment`` refuses a deployment a stage still points to.
- Route responses: ``GetRouteResponses`` (moto lacks it) from the ids this layer saw created; a key other than
  ``$default`` is refused (AWS supports no other; the wording is inferred); a deployment captures each route's
  route responses, so a route is two-way only once deployed with one.

What the gateway serves is the stage's deployment's snapshot (:meth:`DeploymentsApp.snapshot`): AWS keeps it
and has no API that shows it, so the lab reads it in-process, not through boto3.

    route(method, path) -> Request | None                 which request this is (pure)
    stage_answer(moto_answer, state) -> dict              a stage as AWS shows it (pure)
    stage_refusal(state, changes, deployments) -> Refusal  why a stage change is refused, or None (pure)
    DeploymentsApp                                         the WSGI layer in front of moto
"""

from __future__ import annotations

import io
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import unquote

from kit.throttling import settings_refusal

_API_PATH = re.compile(r"^/v2/apis/(?P<api>[^/]+)(?P<rest>/.*)?$")
_DEPLOYMENTS = re.compile(r"^/deployments(?:/(?P<deployment>[^/]+))?/?$")
_STAGES = re.compile(r"^/stages(?:/(?P<stage>[^/]+))?/?$")
_ROUTE = re.compile(r"^/routes/(?P<route>[^/]+)/?$")
_ROUTE_RESPONSES = re.compile(r"^/routes/(?P<route>[^/]+)/routeresponses(?:/(?P<response>[^/]+))?/?$")
_EDITS = ("EditApi", "DeleteApi", "DeleteRoute", "CreateRouteResponse", "DeleteRouteResponse")
# AWS: "$default is the only supported route response key" for WebSocket APIs.
ROUTE_RESPONSE_KEY = "$default"
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_READS = ("GET", "HEAD", "OPTIONS")
# UpdateStage fields moto cannot store (it has no UpdateStage): kept here and shown on the stage.
STAGE_SETTINGS = (
    "accessLogSettings",
    "clientCertificateId",
    "defaultRouteSettings",
    "description",
    "routeSettings",
    "stageVariables",
)


@dataclass(frozen=True)
class Request:
    """A request this layer is concerned with: ``operation``, the API, and a deployment id or stage name.

    ``EditApi`` is a change to the API's configuration (routes, integrations, authorizers, the API itself)
    that moto answers and after which stages with AutoDeploy are deployed again; ``DeleteApi`` drops the
    layer's records of the API. ``CreateRouteResponse``, ``DeleteRouteResponse`` and ``DeleteRoute`` are edits
    too, after which the layer knows which route responses a route has (``name``: the route id, ``item``: the
    route response id); ``GetRouteResponses`` is answered by the layer (moto lacks it).
    """

    operation: str
    api_id: str
    name: str | None = None
    item: str | None = None


def route(method: str, path: str) -> Request | None:
    """The request ``method path`` is, for this layer; None for every other request (pure)."""
    match = _API_PATH.match(path)
    if match is None:
        return None
    api_id, rest = match["api"], match["rest"] or ""
    method = method.upper()
    deployments = _DEPLOYMENTS.match(rest)
    if deployments is not None:
        deployment = deployments["deployment"]
        operation = {
            ("POST", False): "CreateDeployment",
            ("GET", False): "GetDeployments",
            ("GET", True): "GetDeployment",
            ("DELETE", True): "DeleteDeployment",
        }.get((method, deployment is not None))
        return Request(operation, api_id, deployment) if operation else None
    stages = _STAGES.match(rest)
    if stages is not None:
        stage = unquote(stages["stage"]) if stages["stage"] else None
        operation = {
            ("POST", False): "CreateStage",
            ("GET", False): "GetStages",
            ("GET", True): "GetStage",
            ("PATCH", True): "UpdateStage",
            ("DELETE", True): "DeleteStage",
        }.get((method, stage is not None))
        return Request(operation, api_id, stage) if operation else None
    responses = _ROUTE_RESPONSES.match(rest)
    if responses is not None:
        route_id, response_id = responses["route"], responses["response"]
        operation = {
            ("POST", False): "CreateRouteResponse",
            ("GET", False): "GetRouteResponses",
            ("DELETE", True): "DeleteRouteResponse",
        }.get((method, response_id is not None))
        if operation is None:
            return None if method in _READS else Request("EditApi", api_id)
        return Request(operation, api_id, route_id, response_id)
    single_route = _ROUTE.match(rest)
    if single_route is not None and method == "DELETE":
        return Request("DeleteRoute", api_id, single_route["route"])
    if method in _READS:
        return None
    if rest.strip("/") == "" and method == "DELETE":
        return Request("DeleteApi", api_id)
    return Request("EditApi", api_id)


@dataclass(frozen=True)
class Snapshot:
    """What a deployment captured, as boto3 shows the answers it was read from (``GetApi``, the ``Items`` of
    ``GetRoutes`` and ``GetIntegrations``, ``GetAuthorizer`` of each authorizer a route names, and
    ``GetRouteResponse`` of each route response, with the ``RouteId`` of its route added)."""

    deployment_id: str
    created: str
    api: Mapping[str, Any]
    routes: tuple[Mapping[str, Any], ...]
    integrations: tuple[Mapping[str, Any], ...]
    authorizers: tuple[Mapping[str, Any], ...] = ()
    route_responses: tuple[Mapping[str, Any], ...] = ()


@dataclass
class StageState:
    """What this layer keeps of a stage, beside moto's record of it."""

    deployment_id: str | None = None
    auto_deploy: bool = False
    last_updated: str | None = None
    status_message: str | None = None  # LastDeploymentStatusMessage, shown for AutoDeploy stages
    settings: dict[str, Any] = field(default_factory=dict)  # UpdateStage's STAGE_SETTINGS


@dataclass(frozen=True)
class Refusal:
    status: int
    error_type: str
    message: str


def stage_answer(moto_answer: Mapping[str, Any], state: StageState | None) -> dict[str, Any]:
    """A stage (wire shape) as AWS shows it: moto's answer with what moto drops or cannot update (pure)."""
    answer = dict(moto_answer)
    if state is None:
        return answer
    answer |= state.settings
    answer["autoDeploy"] = state.auto_deploy
    if state.deployment_id:
        answer["deploymentId"] = state.deployment_id
    else:
        answer.pop("deploymentId", None)
    if state.last_updated:
        answer["lastUpdatedDate"] = state.last_updated
    if state.auto_deploy and state.status_message:
        answer["lastDeploymentStatusMessage"] = state.status_message
    return answer


def stage_refusal(
    stage: str, state: StageState, changes: Mapping[str, Any], deployments: Iterable[str]
) -> Refusal | None:
    """Why ``CreateStage``/``UpdateStage`` with ``changes`` (wire names) is refused, or None (pure).

    Throttling limits must be within the account's (:func:`kit.throttling.settings_refusal`:
    BadRequestException, inferred). A ``DeploymentId`` must name a deployment of the API (AWS:
    NotFoundException; the wording is inferred), and "can't be updated if autoDeploy is enabled" (BOTO's
    documentation; the error's wording is inferred).
    """
    out_of_range = settings_refusal(changes)
    if out_of_range is not None:
        return Refusal(400, "BadRequestException", out_of_range)
    deployment_id = changes.get("deploymentId")
    if deployment_id is None:
        return None
    if str(deployment_id) not in set(deployments):
        return Refusal(404, "NotFoundException", f"Invalid deployment identifier specified {deployment_id}")
    auto_deploy = bool(changes.get("autoDeploy", state.auto_deploy))
    if auto_deploy:
        return Refusal(
            400,
            "BadRequestException",
            f"Stage {stage} has autoDeploy enabled: its DeploymentId can't be updated; turn autoDeploy off "
            "to choose a deployment",
        )
    return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _new_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(6))


@cache
def _apigatewayv2_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("apigatewayv2")


def boto3_shape(operation: str, body: bytes) -> dict[str, Any]:
    """An API Gateway v2 answer's wire JSON as boto3 returns it (botocore's own parser), without metadata."""
    from botocore import parsers

    model = _apigatewayv2_model()
    parser = parsers.create_parser(model.metadata["protocol"])
    parsed = parser.parse(
        {"status_code": 200, "headers": {}, "body": body}, model.operation_model(operation).output_shape
    )
    parsed.pop("ResponseMetadata", None)
    return dict(parsed)


class Answered(Exception):
    """Not an error: the answer is decided (an AWS error, or moto's error passed on)."""

    def __init__(self, status: int, body: Any, error_type: str | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.error_type = status, body, error_type


class DeploymentsApp:
    """WSGI layer in front of moto: deployments, stages' DeploymentId and AutoDeploy, the served snapshots.

    ``api_exists(api_id)`` asks moto whether an API exists.
    """

    def __init__(self, app: Callable[..., Any], api_exists: Callable[[str], bool]) -> None:
        self.app = app
        self.api_exists = api_exists
        self._deployments: dict[str, dict[str, dict[str, Any]]] = {}  # api -> id -> wire answer
        self._snapshots: dict[tuple[str, str], Snapshot] = {}
        self._stages: dict[tuple[str, str], StageState] = {}
        # (api, route) -> the ids of its route responses, in creation order (moto cannot list them)
        self._route_responses: dict[tuple[str, str], list[str]] = {}
        self._lock = threading.RLock()

    # -- what the gateway serves ---------------------------------------------------------------------------

    def snapshot(self, api_id: str, deployment_id: str) -> Snapshot | None:
        """The configuration deployment ``deployment_id`` of API ``api_id`` captured, or None."""
        with self._lock:
            return self._snapshots.get((api_id, deployment_id))

    # -- WSGI ----------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = route(str(environ.get("REQUEST_METHOD", "")), str(environ.get("PATH_INFO", "")))
        if request is None or request.operation is None:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        try:
            if request.operation == "CreateRouteResponse":
                key = request_json(environ).get("routeResponseKey")
                if key != ROUTE_RESPONSE_KEY:
                    raise Answered(
                        400,
                        {
                            "message": f"Route response key {key!r} is not supported: '$default' is the only "
                            "key"
                        },
                        "BadRequestException",
                    )
            if request.operation in _EDITS:
                return self._edit(environ, start_response, request)
            if not self.api_exists(request.api_id):
                missing = {"message": f"Invalid API identifier specified {request.api_id}"}
                raise Answered(404, missing, "NotFoundException")
            with self._lock:
                status, body = self._answer(environ, request)
        except Answered as answered:
            return json_answer(start_response, answered.status, answered.body, answered.error_type)
        return json_answer(start_response, status, body)

    def _answer(self, environ: dict[str, Any], request: Request) -> tuple[int, Any]:
        api_id, name = request.api_id, request.name
        deployments = self._deployments.setdefault(api_id, {})
        operation = request.operation
        if operation == "CreateDeployment":
            body = request_json(environ)
            stage = body.get("stageName")
            if stage:
                self._moto_stage(environ, api_id, str(stage))  # raises NotFound for a stage that is not there
            made = self._deploy(environ, api_id, description=body.get("description"))
            if stage:
                self._point(api_id, str(stage), made["deploymentId"])
            return 201, made
        if operation == "GetDeployments":
            return 200, {"items": list(deployments.values())}
        if operation in ("GetDeployment", "DeleteDeployment"):
            chosen = deployments.get(str(name))
            if chosen is None:
                raise Answered(
                    404, {"message": f"Invalid deployment identifier specified {name}"}, "NotFoundException"
                )
            if operation == "GetDeployment":
                return 200, chosen
            users = sorted(
                stage
                for (api, stage), state in self._stages.items()
                if api == api_id and state.deployment_id == name
            )
            if users:
                raise Answered(
                    400,
                    {
                        "message": f"Active stages pointing to this deployment must be moved or deleted "
                        f"({', '.join(users)})"
                    },
                    "BadRequestException",
                )
            del deployments[str(name)]
            self._snapshots.pop((api_id, str(name)), None)
            return 204, None
        if operation == "GetRouteResponses":
            self._get(environ, f"/v2/apis/{api_id}/routes/{name}")  # moto's NotFound for a route not there
            return 200, {"items": self._read_route_responses(environ, api_id, str(name))}
        if operation == "CreateStage":
            return self._create_stage(environ, api_id)
        if operation == "UpdateStage":
            return self._update_stage(environ, api_id, str(name))
        if operation == "GetStage":
            moto = self._moto_stage(environ, api_id, str(name))
            return 200, stage_answer(moto, self._stages.get((api_id, str(name))))
        if operation == "GetStages":
            _, raw = self._forward(environ)
            items = json.loads(raw).get("items", [])
            shown = [stage_answer(i, self._stages.get((api_id, str(i.get("stageName"))))) for i in items]
            return 200, {"items": shown}
        # DeleteStage
        status, raw = self._forward(environ)
        self._stages.pop((api_id, str(name)), None)
        return status, json.loads(raw) if raw else None

    def _create_stage(self, environ: dict[str, Any], api_id: str) -> tuple[int, Any]:
        body = request_json(environ)
        name = str(body.get("stageName", ""))
        state = StageState(auto_deploy=bool(body.get("autoDeploy", False)))
        refusal = stage_refusal(name, state, body, self._deployments.get(api_id, {}))
        if refusal is not None:
            raise Answered(refusal.status, {"message": refusal.message}, refusal.error_type)
        status, raw = self._forward(environ, json.dumps(body).encode())
        state.deployment_id = body.get("deploymentId")
        self._stages[(api_id, name)] = state
        if state.auto_deploy:
            self._auto_deploy(environ, api_id, name)
        return status, stage_answer(json.loads(raw), state)

    def _update_stage(self, environ: dict[str, Any], api_id: str, name: str) -> tuple[int, Any]:
        body = request_json(environ)
        moto = self._moto_stage(environ, api_id, name)
        state = self._stages.setdefault((api_id, name), StageState())
        refusal = stage_refusal(name, state, body, self._deployments.get(api_id, {}))
        if refusal is not None:
            raise Answered(refusal.status, {"message": refusal.message}, refusal.error_type)
        state.settings |= {key: body[key] for key in STAGE_SETTINGS if key in body}
        switched_on = bool(body.get("autoDeploy")) and not state.auto_deploy
        if "autoDeploy" in body:
            state.auto_deploy = bool(body["autoDeploy"])
        if body.get("deploymentId"):
            state.deployment_id = str(body["deploymentId"])
        state.last_updated = _now()
        if switched_on:
            self._auto_deploy(environ, api_id, name)
        return 200, stage_answer(moto, state)

    def _edit(
        self, environ: dict[str, Any], start_response: Callable[..., Any], request: Request
    ) -> Iterable[bytes]:
        """A configuration change, answered by moto; then each AutoDeploy stage of the API deployed again."""
        seen: dict[str, Any] = {}

        def remember(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen["status"], seen["headers"] = status, headers
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        body = b"".join(self.app(environ, remember))
        ok = str(seen.get("status", "500")).startswith("2")
        with self._lock:
            if ok:
                self._remember_route_responses(request, body)
            if ok and request.operation == "DeleteApi":
                self._forget(request.api_id)
            elif ok:
                for (api, stage), state in list(self._stages.items()):
                    if api == request.api_id and state.auto_deploy:
                        self._auto_deploy(environ, api, stage)
        return [body]

    def _remember_route_responses(self, request: Request, answer: bytes) -> None:
        """Which route responses each route has, after an edit moto accepted (moto cannot list them)."""
        key = (request.api_id, str(request.name))
        if request.operation == "CreateRouteResponse":
            response_id = json.loads(answer or b"{}").get("routeResponseId")
            if response_id:
                self._route_responses.setdefault(key, []).append(str(response_id))
        elif request.operation == "DeleteRouteResponse":
            known = self._route_responses.get(key, [])
            if request.item in known:
                known.remove(str(request.item))
        elif request.operation == "DeleteRoute":
            self._route_responses.pop(key, None)

    def _read_route_responses(self, environ: Mapping[str, Any], api_id: str, route_id: str) -> list[Any]:
        """The route's route responses as GetRouteResponse shows them (wire JSON), in creation order."""
        answers = []
        for response_id in self._route_responses.get((api_id, route_id), []):
            _, raw = self._get(environ, f"/v2/apis/{api_id}/routes/{route_id}/routeresponses/{response_id}")
            answers.append(json.loads(raw))
        return answers

    # -- deployments ---------------------------------------------------------------------------------------

    def _deploy(
        self, environ: Mapping[str, Any], api_id: str, *, description: Any = None, auto: bool = False
    ) -> dict[str, Any]:
        snapshot_parts = self._read_configuration(environ, api_id)
        if not snapshot_parts[1]:
            raise Answered(
                400,
                {"message": f"API {api_id} has no route: a deployment needs at least one route"},
                "BadRequestException",
            )
        deployment_id = _new_id()
        created = _now()
        made: dict[str, Any] = {
            "deploymentId": deployment_id,
            "deploymentStatus": "DEPLOYED",
            "createdDate": created,
            "autoDeployed": auto,
        }
        if description:
            made["description"] = str(description)
        api, routes, integrations, authorizers = snapshot_parts
        route_responses = [
            boto3_shape("GetRouteResponse", json.dumps(answer).encode()) | {"RouteId": route["RouteId"]}
            for route in routes
            for answer in self._read_route_responses(environ, api_id, str(route["RouteId"]))
        ]
        self._deployments.setdefault(api_id, {})[deployment_id] = made
        self._snapshots[(api_id, deployment_id)] = Snapshot(
            deployment_id,
            created,
            api,
            tuple(routes),
            tuple(integrations),
            tuple(authorizers),
            tuple(route_responses),
        )
        return made

    def _point(self, api_id: str, stage: str, deployment_id: str) -> None:
        state = self._stages.setdefault((api_id, stage), StageState())
        state.deployment_id = deployment_id
        state.last_updated = _now()
        state.status_message = f"Successfully deployed stage with deployment ID '{deployment_id}'"

    def _auto_deploy(self, environ: Mapping[str, Any], api_id: str, stage: str) -> None:
        try:
            made = self._deploy(environ, api_id, auto=True)
        except Answered as refused:  # no route yet: the stage keeps what it had, and says why
            state = self._stages.setdefault((api_id, stage), StageState())
            state.status_message = f"Deployment failed: {refused.body.get('message', '')}"
            return
        self._point(api_id, stage, made["deploymentId"])

    def _forget(self, api_id: str) -> None:
        self._deployments.pop(api_id, None)
        for key in [k for k in self._snapshots if k[0] == api_id]:
            del self._snapshots[key]
        for key in [k for k in self._stages if k[0] == api_id]:
            del self._stages[key]
        for route_key in [k for k in self._route_responses if k[0] == api_id]:
            del self._route_responses[route_key]

    # -- reading moto --------------------------------------------------------------------------------------

    def _forward(self, environ: Mapping[str, Any], body: bytes | None = None) -> tuple[int, bytes]:
        """``environ``'s request answered by moto (with ``body`` instead of the one read): status, body.

        An error answer is raised as it came (status, body, error type), for the caller to pass on."""
        inner = dict(environ)
        if body is not None:
            inner["wsgi.input"], inner["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        seen: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            seen["status"], seen["headers"] = status, headers

        raw = b"".join(self.app(inner, start_response))
        status = int(str(seen.get("status", "500")).split(" ", 1)[0])
        if status >= 300:
            error_type = next(
                (v for k, v in seen.get("headers", []) if k.lower() == "x-amzn-errortype"), None
            )
            try:
                shown = json.loads(raw or b"{}")
            except ValueError:
                shown = {"message": raw.decode(errors="replace")}
            raise Answered(status, shown, error_type)
        return status, raw

    def _get(self, environ: Mapping[str, Any], path: str) -> tuple[int, bytes]:
        """A GET of ``path`` answered by moto, signed as ``environ`` was (moto reads the region from it)."""
        inner = dict(environ)
        inner |= {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "REQUEST_URI": path,  # what moto's dispatch reads the path from (werkzeug's raw URL)
            "RAW_URI": path,
            "QUERY_STRING": "",
            "CONTENT_LENGTH": "0",
            "wsgi.input": io.BytesIO(b""),
        }
        return self._forward(inner)

    def _moto_stage(self, environ: Mapping[str, Any], api_id: str, stage: str) -> dict[str, Any]:
        try:
            _, raw = self._get(environ, f"/v2/apis/{api_id}/stages/{stage}")
        except Answered as refused:
            raise Answered(
                404, {"message": f"Invalid stage identifier specified {stage}"}, "NotFoundException"
            ) from refused
        return dict(json.loads(raw))

    def _read_configuration(
        self, environ: Mapping[str, Any], api_id: str
    ) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """The API, its routes, its integrations and the authorizers its routes name, as boto3 shows them."""
        answers: dict[str, dict[str, Any]] = {}
        for operation, path in (
            ("GetApi", f"/v2/apis/{api_id}"),
            ("GetRoutes", f"/v2/apis/{api_id}/routes"),
            ("GetIntegrations", f"/v2/apis/{api_id}/integrations"),
        ):
            _, raw = self._get(environ, path)
            answers[operation] = boto3_shape(operation, raw)
        routes = [dict(r) for r in answers["GetRoutes"].get("Items", [])]
        authorizers = []
        for authorizer_id in dict.fromkeys(str(r["AuthorizerId"]) for r in routes if r.get("AuthorizerId")):
            try:
                _, raw = self._get(environ, f"/v2/apis/{api_id}/authorizers/{authorizer_id}")
            except Answered:
                continue  # a route naming an authorizer that is gone: nothing to capture
            authorizers.append(boto3_shape("GetAuthorizer", raw))
        integrations = [dict(i) for i in answers["GetIntegrations"].get("Items", [])]
        return answers["GetApi"], routes, integrations, authorizers


def request_json(environ: dict[str, Any]) -> dict[str, Any]:
    """The request's JSON body (read once; put back for moto); BadRequestException when it is not JSON."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(raw), str(len(raw))
    try:
        parsed = json.loads(raw or b"{}")
    except ValueError as exc:
        raise Answered(400, {"message": "Invalid request body"}, "BadRequestException") from exc
    return parsed if isinstance(parsed, dict) else {}


_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 404: "Not Found"}


def json_answer(
    start_response: Callable[..., Any], status: int, body: Any, error_type: str | None = None
) -> list[bytes]:
    data = b"" if body is None else json.dumps(body).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
    return [data]


def moto_api_exists(api_id: str) -> bool:
    """Whether moto knows API ``api_id`` in any account and region (the lab runs moto in-process)."""
    try:
        from moto.apigatewayv2.models import apigatewayv2_backends
    except ImportError:  # pragma: no cover - moto is a dependency
        return False
    return any(
        api_id in getattr(backend, "apis", {})
        for regions in list(apigatewayv2_backends.values())
        for backend in list(regions.values())
    )
