"""The lab gateway's configuration and its route selection: what the API is set up to do, as plain code.

``api_config_from_answers`` turns apigatewayv2's GetApi, GetRoutes, GetIntegrations and GetStage answers into
one frozen snapshot (``ApiConfig``: the routes, their integrations, the stage's settings); ``select_route``
evaluates the API's route selection expression on a frame and picks the route it names, as API Gateway does.
Part of the gateway's sans-I/O core (:mod:`kit.lab.gateway_core` says what the core must not do): facts in,
decisions out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from kit.errors import ConfigurationError
from kit.throttling import (
    AccountLimits,
    RouteLimit,
    route_limit,
)

# ---------------------------------------------------------------------------------------------
# Configuration snapshot (built from apigatewayv2 get_api / get_routes / get_integrations / get_stage)
# ---------------------------------------------------------------------------------------------

LoggingLevel = Literal["OFF", "ERROR", "INFO"]
_LOGGING_LEVELS: dict[str, LoggingLevel] = {"OFF": "OFF", "ERROR": "ERROR", "INFO": "INFO"}
DEFAULT_INTEGRATION_TIMEOUT_MS = 29_000  # the maximum AWS allows for WebSocket integrations


@dataclass(frozen=True)
class StageConfig:
    """The deployed stage: access-log settings and execution-log settings of its default route."""

    name: str
    access_log_destination_arn: str | None = None
    access_log_format: str | None = None
    logging_level: LoggingLevel = "OFF"
    data_trace: bool = False
    # DefaultRouteSettings and RouteSettings as get_stage shows them (read live): the routes' throttling.
    route_settings: Mapping[str, Any] = field(default_factory=dict)

    def throttle_limit(self, route_key: str, account: AccountLimits) -> RouteLimit | None:
        """The stage's throttling of ``route_key``, or None when its settings set none."""
        return route_limit(self.route_settings, route_key, account)

    variables: Mapping[str, str] = field(default_factory=dict)  # StageVariables


@dataclass(frozen=True)
class RouteConfig:
    """One route. ``target_integration_id`` is None when the route has no integration."""

    route_key: str
    target_integration_id: str | None = None
    route_response_selection_expression: str | None = None
    route_response_keys: frozenset[str] = frozenset()
    authorization_type: str = "NONE"  # NONE | AWS_IAM | CUSTOM (a Lambda authorizer, $connect only)
    authorizer_id: str | None = None

    @property
    def two_way(self) -> bool:
        """Whether the integration's body goes back to the client: the route's
        ``RouteResponseSelectionExpression`` is ``$default`` **and** it has a route response whose key is
        ``$default`` (AWS's developer guide; inferred: either one alone leaves the route one-way, AWS does not
        say; serverless-offline looks at the expression only)."""
        expression = self.route_response_selection_expression
        return expression == "$default" and "$default" in self.route_response_keys


@dataclass(frozen=True)
class IntegrationConfig:
    """One integration: ``AWS_PROXY`` (Lambda) or ``HTTP_PROXY``; other types are kept as read."""

    integration_id: str
    integration_type: str
    uri: str
    request_parameters: Mapping[str, str] = field(default_factory=dict)
    timeout_ms: int = DEFAULT_INTEGRATION_TIMEOUT_MS
    method: str = "POST"


@dataclass(frozen=True)
class ApiConfig:
    """What the gateway needs to know about one WebSocket API and the stage it serves."""

    api_id: str
    route_selection_expression: str
    routes: Mapping[str, RouteConfig]
    stage: StageConfig
    integrations: Mapping[str, IntegrationConfig] = field(default_factory=dict)
    # The deployed authorizers by id, as GetAuthorizer shows them (kit.lab.authorizer_core reads them).
    authorizers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def _target_integration_id(route: Mapping[str, Any], api_id: str) -> str | None:
    target = route.get("Target")
    if not target:
        return None
    prefix, _, integration_id = str(target).partition("/")
    if prefix != "integrations" or not integration_id:
        raise ConfigurationError(
            f"Route {route.get('RouteKey')!r} of API {api_id} has target {target!r}; the lab only "
            "understands targets of the form 'integrations/<IntegrationId>'."
        )
    return integration_id


def api_config_from_answers(
    api: Mapping[str, Any],
    routes: Sequence[Mapping[str, Any]],
    integrations: Sequence[Mapping[str, Any]],
    stage: Mapping[str, Any],
    *,
    route_responses: Sequence[Mapping[str, Any]] = (),
    authorizers: Sequence[Mapping[str, Any]] = (),
) -> ApiConfig:
    """Translate boto3 apigatewayv2 answers into an :class:`ApiConfig`; pure, no calls.

    ``routes`` and ``integrations`` are the ``Items`` of get_routes / get_integrations (all pages);
    ``route_responses`` the get_route_responses items of every route, each with its route's ``RouteId``.
    ``authorizers`` the GetAuthorizer answers of the authorizers the routes name.
    Raises :class:`~kit.errors.ConfigurationError` when the API is not a WebSocket API, has no route
    selection expression, or a route targets an integration that is not in ``integrations``.
    """
    api_id = str(api.get("ApiId", ""))
    protocol = api.get("ProtocolType", "WEBSOCKET")
    if protocol != "WEBSOCKET":
        raise ConfigurationError(
            f"API {api_id} has ProtocolType {protocol}; the lab gateway only serves WEBSOCKET APIs."
        )
    expression = api.get("RouteSelectionExpression")
    if not expression:
        raise ConfigurationError(
            f"API {api_id} has no RouteSelectionExpression; WebSocket APIs require one, "
            "usually '$request.body.action'."
        )
    integration_configs: dict[str, IntegrationConfig] = {}
    for item in integrations:
        integration_id = str(item["IntegrationId"])
        integration_configs[integration_id] = IntegrationConfig(
            integration_id=integration_id,
            integration_type=str(item.get("IntegrationType", "")),
            uri=str(item.get("IntegrationUri", "")),
            request_parameters=dict(item.get("RequestParameters") or {}),
            timeout_ms=int(item.get("TimeoutInMillis") or DEFAULT_INTEGRATION_TIMEOUT_MS),
            method=str(item.get("IntegrationMethod") or "POST"),
        )
    response_keys: dict[str, set[str]] = {}
    for response in route_responses:
        route_id, key = str(response.get("RouteId")), str(response.get("RouteResponseKey"))
        response_keys.setdefault(route_id, set()).add(key)
    route_configs: dict[str, RouteConfig] = {}
    for item in routes:
        route_key = str(item["RouteKey"])
        target_id = _target_integration_id(item, api_id)
        if target_id is not None and target_id not in integration_configs:
            raise ConfigurationError(
                f"Route {route_key!r} of API {api_id} targets integration {target_id}, which "
                "get_integrations did not return; pass every page of get_integrations."
            )
        route_configs[route_key] = RouteConfig(
            route_key=route_key,
            target_integration_id=target_id,
            route_response_selection_expression=item.get("RouteResponseSelectionExpression"),
            route_response_keys=frozenset(response_keys.get(str(item.get("RouteId")), ())),
            authorization_type=str(item.get("AuthorizationType") or "NONE"),
            authorizer_id=str(item["AuthorizerId"]) if item.get("AuthorizerId") else None,
        )
    access = stage.get("AccessLogSettings") or {}
    defaults = stage.get("DefaultRouteSettings") or {}
    level = _LOGGING_LEVELS.get(str(defaults.get("LoggingLevel") or "OFF").upper(), "OFF")
    stage_config = StageConfig(
        name=str(stage.get("StageName", "")),
        access_log_destination_arn=access.get("DestinationArn"),
        access_log_format=access.get("Format"),
        logging_level=level,
        data_trace=bool(defaults.get("DataTraceEnabled", False)),
        route_settings={
            key: stage[key] for key in ("DefaultRouteSettings", "RouteSettings") if stage.get(key) is not None
        },
        variables={str(k): str(v) for k, v in (stage.get("StageVariables") or {}).items()},
    )
    return ApiConfig(
        api_id=api_id,
        route_selection_expression=str(expression),
        routes=route_configs,
        stage=stage_config,
        integrations=integration_configs,
        authorizers={str(a.get("AuthorizerId")): dict(a) for a in authorizers if a.get("AuthorizerId")},
    )


# ---------------------------------------------------------------------------------------------
# Route selection
# ---------------------------------------------------------------------------------------------

RouteDecisionKind = Literal["integration", "no-integration", "no-route"]
_RESERVED_CONNECTION_ROUTES = frozenset({"$connect", "$disconnect"})
_BODY_EXPRESSION = "$request.body."
_WRAPPED_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_PATH_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]|\[['\"]([^'\"]*)['\"]\]|(\.)")
MISSING = object()


@dataclass(frozen=True)
class RouteDecision:
    """Where an event goes.

    ``kind``: ``"integration"`` (invoke ``integration``), ``"no-integration"`` (the route exists
    but has no target), ``"no-route"`` (nothing matched and there is no ``$default``).
    ``route_key`` is the event's routeKey: the matched key, or ``$default`` when the selection value
    matched nothing; None for ``"no-route"``. ``selection_value`` is what the route selection
    expression evaluated to ("" when it could not be evaluated).
    """

    kind: RouteDecisionKind
    route_key: str | None
    selection_value: str
    route: RouteConfig | None = None
    integration: IntegrationConfig | None = None

    @property
    def two_way(self) -> bool:
        return self.route is not None and self.route.two_way


def route_for_key(api: ApiConfig, route_key: str) -> RouteDecision:
    """The decision for a fixed route key (``$connect``, ``$disconnect``); no ``$default`` fallback."""
    route = api.routes.get(route_key)
    if route is None:
        return RouteDecision("no-route", None, route_key)
    integration = api.integrations.get(route.target_integration_id) if route.target_integration_id else None
    if integration is None:
        return RouteDecision("no-integration", route_key, route_key, route)
    return RouteDecision("integration", route_key, route_key, route, integration)


def stringify(value: object) -> str:
    # Inferred from AWS's "arrays become [a, b]": Java-style toString of the JSON value.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(stringify(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={stringify(v)}" for k, v in value.items()) + "}"
    return str(value)


def walk_path(document: object, path: str) -> object:
    """Follow a JSONPath-like path (``a.b``, ``items[0].name``, ``['odd key']``) or return MISSING."""
    if not path:
        return MISSING
    current = document
    position = 0
    while position < len(path):
        match = _PATH_SEGMENT.match(path, position)
        if match is None:
            return MISSING
        position = match.end()
        name, index, quoted, dot = match.groups()
        if dot is not None:
            continue
        if index is not None:
            if not isinstance(current, list) or int(index) >= len(current):
                return MISSING
            current = current[int(index)]
            continue
        key = name if name is not None else quoted
        if not isinstance(current, dict) or key not in current:
            return MISSING
        current = current[key]
    return current


def _body_value(body: str, path: str, parsed: list[object]) -> str:
    if not parsed:
        try:
            parsed.append(json.loads(body))
        except (ValueError, RecursionError):
            parsed.append(MISSING)
    document = parsed[0]
    if document is MISSING:
        return ""
    value = walk_path(document, path)
    return "" if value is MISSING else stringify(value)


def evaluate_selection_expression(expression: str, body: str) -> str:
    """Evaluate a route selection expression against a text frame; "" when it cannot be evaluated.

    Forms: ``$request.body.<path>``, ``${request.body.<path>}`` and templates mixing literal text
    with several ``${request.body.<path>}`` variables; a literal expression evaluates to itself
    (``\\$`` unescaped). Non-JSON bodies and missing paths evaluate to "".
    """
    parsed: list[object] = []  # the body is parsed at most once, and only if needed
    try:
        text = expression.strip()
        if text.startswith(_BODY_EXPRESSION):
            return _body_value(body, text[len(_BODY_EXPRESSION) :], parsed)

        def substitute(match: re.Match[str]) -> str:
            variable = match.group(1)
            if variable.startswith(_BODY_EXPRESSION[1:]):
                return _body_value(body, variable[len(_BODY_EXPRESSION) - 1 :], parsed)
            return ""

        return _WRAPPED_VARIABLE.sub(substitute, text).replace("\\$", "$")
    except RecursionError:
        # A pathologically nested body: AWS cannot evaluate it either, so it goes to $default.
        return ""


def select_route(api: ApiConfig, body: str) -> RouteDecision:
    """Choose the route for an inbound text frame.

    An exact route key match wins; otherwise (no match, non-JSON body, path not found) ``$default``
    takes the message and the event's routeKey is ``$default``; without ``$default`` the decision is
    ``"no-route"`` (the client gets the Forbidden frame). Inferred: ``$connect``/``$disconnect``
    are never selected by a message, even when the body names them.
    """
    value = evaluate_selection_expression(api.route_selection_expression, body)
    key = value if value in api.routes and value not in _RESERVED_CONNECTION_ROUTES else "$default"
    if key not in api.routes:
        return RouteDecision("no-route", None, value)
    decision = route_for_key(api, key)
    return replace(decision, selection_value=value)
