"""The lab's API Gateway v2 deployments (kit.lab.deployments), which moto lacks: which requests are theirs,
and what the layer answers."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from kit.lab import deployments


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v2/apis/abc/deployments", ("CreateDeployment", "abc", None)),
        ("GET", "/v2/apis/abc/deployments", ("GetDeployments", "abc", None)),
        ("GET", "/v2/apis/abc/deployments/d1", ("GetDeployment", "abc", "d1")),
        ("DELETE", "/v2/apis/abc/deployments/d1", ("DeleteDeployment", "abc", "d1")),
        ("PATCH", "/v2/apis/abc/deployments/d1", None),  # UpdateDeployment: not answered, moto says 404
        ("DELETE", "/v2/apis/abc/deployments", None),
        ("GET", "/v2/apis/abc/routes", None),
        ("GET", "/v2/apis/abc/deployments/d1/extra", None),
    ],
)
def test_route(method: str, path: str, expected: tuple[str, str, str | None] | None) -> None:
    assert deployments.route(method, path) == expected


def call(
    app: deployments.DeploymentsApp, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[str, Any]:
    data = json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
    }
    seen: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = status

    raw = b"".join(app(environ, start_response))
    return seen["status"], json.loads(raw) if raw else None


def test_a_deployment_is_created_listed_read_and_deleted() -> None:
    passed: list[str] = []

    def moto(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        passed.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b""]

    app = deployments.DeploymentsApp(moto, lambda api: api == "abc")
    status, made = call(app, "POST", "/v2/apis/abc/deployments", {"stageName": "prod", "description": "fix"})
    assert (
        status.startswith("201") and made["deploymentStatus"] == "DEPLOYED" and made["description"] == "fix"
    )
    assert call(app, "GET", "/v2/apis/abc/deployments")[1] == {"items": [made]}
    assert call(app, "GET", f"/v2/apis/abc/deployments/{made['deploymentId']}")[1] == made
    assert call(app, "DELETE", f"/v2/apis/abc/deployments/{made['deploymentId']}")[0].startswith("204")
    assert call(app, "GET", f"/v2/apis/abc/deployments/{made['deploymentId']}")[0].startswith("404")
    assert call(app, "POST", "/v2/apis/nope/deployments", {})[0].startswith("404")  # no such API
    call(app, "GET", "/v2/apis/abc/routes")
    assert passed == ["/v2/apis/abc/routes"]  # everything else is moto's
