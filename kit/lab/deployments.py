"""API Gateway v2 deployments, which moto does not have: ``CreateDeployment``, ``GetDeployments``,
``GetDeployment`` and ``DeleteDeployment`` answered in the lab's own AWS layer, so that what a user (or
``kit fix``) does after changing routes on AWS, redeploying the stage, works in the lab too.

A deployment is recorded with its id, status ``DEPLOYED``, description and creation date, per API. The lab
still serves every configuration change at once (``docs/architecture.md``: no snapshots yet), so a deployment
changes nothing the gateway does.

    route(method, path) -> (operation, api id, deployment id) | None     which request this is (pure)
    DeploymentsApp                                                        the WSGI layer in front of moto
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

_DEPLOYMENTS = re.compile(r"^/v2/apis/(?P<api>[^/]+)/deployments(?:/(?P<deployment>[^/]+))?/?$")
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def route(method: str, path: str) -> tuple[str, str, str | None] | None:
    """(operation, API id, deployment id) of a deployments request, or None for any other request (pure)."""
    match = _DEPLOYMENTS.match(path)
    if match is None:
        return None
    deployment = match["deployment"]
    operations = {
        ("POST", False): "CreateDeployment",
        ("GET", False): "GetDeployments",
        ("GET", True): "GetDeployment",
        ("DELETE", True): "DeleteDeployment",
    }
    operation = operations.get((method, deployment is not None))
    return (operation, match["api"], deployment) if operation else None


class DeploymentsApp:
    """WSGI layer in front of moto answering the deployments API; ``api_exists(api_id)`` asks moto."""

    def __init__(self, app: Callable[..., Any], api_exists: Callable[[str], bool]) -> None:
        self.app = app
        self.api_exists = api_exists
        self._deployments: dict[str, dict[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        found = route(str(environ.get("REQUEST_METHOD", "")), str(environ.get("PATH_INFO", "")))
        if found is None:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        operation, api_id, deployment_id = found
        if not self.api_exists(api_id):
            return _answer(start_response, 404, {"message": f"Invalid API identifier specified {api_id}"})
        with self._lock:
            deployments = self._deployments.setdefault(api_id, {})
            if operation == "CreateDeployment":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
                deployment = "".join(secrets.choice(_ALPHABET) for _ in range(6))
                made: dict[str, Any] = {
                    "deploymentId": deployment,
                    "deploymentStatus": "DEPLOYED",
                    "createdDate": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                    "autoDeployed": False,
                }
                if body.get("description"):
                    made["description"] = str(body["description"])
                deployments[deployment] = made
                return _answer(start_response, 201, made)
            if operation == "GetDeployments":
                return _answer(start_response, 200, {"items": list(deployments.values())})
            chosen = deployments.get(str(deployment_id))
            if chosen is None:
                return _answer(
                    start_response, 404, {"message": f"Invalid deployment identifier {deployment_id}"}
                )
            if operation == "DeleteDeployment":
                del deployments[str(deployment_id)]
                return _answer(start_response, 204, None)
            return _answer(start_response, 200, chosen)


def _answer(start_response: Callable[..., Any], status: int, body: Any) -> list[bytes]:
    reasons = {200: "OK", 201: "Created", 204: "No Content", 404: "Not Found"}
    data = b"" if body is None else json.dumps(body).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    if status == 404:
        headers.append(("x-amzn-ErrorType", "NotFoundException"))
    start_response(f"{status} {reasons[status]}", headers)
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
