"""API Gateway v2 Lambda authorizers as AWS answers them for WebSocket APIs, where moto falls short, in the
lab's own AWS layer.

moto stores authorizers and lets routes name them, but has no ``GetAuthorizers`` (``NotImplementedError``)
and accepts what AWS refuses on a WebSocket API. This WSGI layer in front of moto answers:

- ``GetAuthorizers``: every authorizer of the API, as ``GetAuthorizer`` shows each (one page);
- ``CreateAuthorizer``/``UpdateAuthorizer`` on a WebSocket API: ``REQUEST`` only, no result TTL
  ("AuthorizerResultTtlInSeconds cannot be set for WEBSOCKET protocol Apis."), identity sources of the
  ``route.request.header|querystring.<name>``, ``stageVariables.<name>`` or ``context.<name>`` forms (the
  ``$request.header.<name>`` form of HTTP APIs is refused with AWS's message);
- ``CreateRoute``/``UpdateRoute``: ``AuthorizationType=CUSTOM`` only on ``$connect`` ("Currently,
  authorization is restricted to the $connect route only"), and with an ``AuthorizerId`` the API has.

Wording: the three quoted messages are AWS's (reference §1.2); the others, and the end of the identity-source
message after "a stage variable", are inferred.

    refusal(operation, body, view) -> Refusal | None    why AWS refuses the call (pure)
    AuthorizersApp                                       the WSGI layer
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kit.lab.deployments import Answered, Refusal, json_answer, request_json

_AUTHORIZERS = re.compile(r"^/v2/apis/(?P<api>[^/]+)/authorizers(?:/(?P<authorizer>[^/]+))?/?$")
_ROUTES = re.compile(r"^/v2/apis/(?P<api>[^/]+)/routes(?:/(?P<route>[^/]+))?/?$")
_IDENTITY_SOURCE = re.compile(
    r"route\.request\.(?:querystring|header)\.[a-zA-Z0-9._-]+|stageVariables\.[a-zA-Z0-9._-]+"
    r"|context\.[a-zA-Z0-9._-]+"
)
CONNECT_ONLY = "Currently, authorization is restricted to the $connect route only"
NO_TTL = "AuthorizerResultTtlInSeconds cannot be set for WEBSOCKET protocol Apis."


@dataclass(frozen=True)
class ApiView:
    """What the checks need to know of an API: its protocol, its routes' keys by id, its authorizers (wire
    shape, by id)."""

    protocol: str
    route_keys: Mapping[str, str] = field(default_factory=dict)
    authorizers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def _bad(message: str) -> Refusal:
    return Refusal(400, "BadRequestException", message)


def identity_source_refusal(sources: Iterable[object]) -> Refusal | None:
    """AWS's refusal of a WebSocket authorizer's identity sources, or None (pure)."""
    for source in sources:
        if not isinstance(source, str) or not _IDENTITY_SOURCE.fullmatch(source):
            return _bad(
                f"Invalid request identity source expression: {source}. The sources must be separated by "
                "comma, and each source must be either a request parameter, matching "
                "'route.request.querystring|header.[a-zA-Z0-9._-]+', or a stage variable, matching "
                "'stageVariables.[a-zA-Z0-9._-]+', or a context parameter, matching "
                "'context.[a-zA-Z0-9._-]+'."
            )
    return None


def refusal(
    operation: str, body: Mapping[str, Any], view: ApiView, name: str | None = None
) -> Refusal | None:
    """Why AWS refuses ``operation`` with ``body`` (wire names) on this WebSocket API, or None (pure).

    ``name`` is the route or authorizer id of an update. Only WebSocket APIs are checked here.
    """
    if view.protocol != "WEBSOCKET":
        return None
    if operation in ("CreateAuthorizer", "UpdateAuthorizer"):
        kind = body.get("authorizerType")
        if (kind is not None or operation == "CreateAuthorizer") and kind != "REQUEST":
            return _bad(f"AuthorizerType {kind} is not supported for WEBSOCKET protocol Apis; use REQUEST.")
        if body.get("authorizerResultTtlInSeconds") is not None:
            return _bad(NO_TTL)
        sources = body.get("identitySource")
        if sources is not None:
            return identity_source_refusal(sources if isinstance(sources, list) else [sources])
        return None
    if operation in ("CreateRoute", "UpdateRoute"):
        route_key = body.get("routeKey") or view.route_keys.get(name or "", "")
        kind = body.get("authorizationType")
        if kind in (None, "NONE"):
            return None
        if route_key != "$connect":
            return _bad(CONNECT_ONLY)
        authorizer_id = body.get("authorizerId")
        if kind == "CUSTOM" and not authorizer_id:
            return _bad("AuthorizerId is required when AuthorizationType is CUSTOM.")
        if kind == "CUSTOM" and str(authorizer_id) not in view.authorizers:
            return Refusal(
                404, "NotFoundException", f"Invalid authorizer identifier specified {authorizer_id}"
            )
    return None


class AuthorizersApp:
    """WSGI layer in front of moto: GetAuthorizers, and AWS's refusals of authorizer and route calls.

    ``view(api_id)`` reads what moto holds of the API (None when there is no such API).
    """

    def __init__(self, app: Callable[..., Any], view: Callable[[str], ApiView | None]) -> None:
        self.app = app
        self.view = view

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "")).upper()
        path = str(environ.get("PATH_INFO", ""))
        authorizers, routes = _AUTHORIZERS.match(path), _ROUTES.match(path)
        if authorizers is not None:
            api_id, kind, subject = authorizers["api"], "Authorizer", authorizers["authorizer"]
        elif routes is not None:
            api_id, kind, subject = routes["api"], "Route", routes["route"]
        else:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        view = self.view(api_id)
        if view is None:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        if kind == "Authorizer" and method == "GET" and subject is None:
            return json_answer(start_response, 200, {"items": list(view.authorizers.values())})
        operation = {("POST", False): f"Create{kind}", ("PATCH", True): f"Update{kind}"}.get(
            (method, subject is not None)
        )
        if operation is None:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        try:
            body = request_json(environ)
        except Answered as answered:
            return json_answer(start_response, answered.status, answered.body, answered.error_type)
        refused = refusal(operation, body, view, subject)
        if refused is not None:
            return json_answer(
                start_response, refused.status, {"message": refused.message}, refused.error_type
            )
        return self.app(environ, start_response)  # type: ignore[no-any-return]


def moto_api_view(api_id: str) -> ApiView | None:
    """What moto holds of API ``api_id`` in any account and region (the lab runs moto in-process)."""
    try:
        from moto.apigatewayv2.models import apigatewayv2_backends
    except ImportError:  # pragma: no cover - moto is a dependency
        return None
    for regions in list(apigatewayv2_backends.values()):
        for backend in list(regions.values()):
            api = getattr(backend, "apis", {}).get(api_id)
            if api is not None:
                return ApiView(
                    str(api.protocol_type),
                    {str(route_id): str(route.route_key) for route_id, route in list(api.routes.items())},
                    {str(a_id): a.to_json() for a_id, a in list(api.authorizers.items())},
                )
    return None
