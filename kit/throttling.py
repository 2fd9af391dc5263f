"""API Gateway's throttling of a WebSocket API: the limits that apply, and the token buckets enforcing them.

AWS throttles with token buckets (AWSDOCS ``websocket-api-protect``): a bucket holds at most ``burst`` tokens,
gains ``rate`` tokens a second, and each request takes one; a request finding less than one token is refused
(429). Three kinds of bucket apply to a WebSocket API:

- the account's quota of new connections, 500 a second per region across all WebSocket APIs (AWSDOCS
  ``limits``; its burst is not documented: the lab gives it one second's worth, 500, inferred);
- the account's request quota, 10,000 a second with a burst of 5,000, shared by messages and the
  ``@connections`` callback API (AWSDOCS ``limits``);
- the stage's limits per route: ``RouteSettings[routeKey]`` with ``ThrottlingBurstLimit`` /
  ``ThrottlingRateLimit``, each field falling back to ``DefaultRouteSettings`` (the per-field fallback is
  inferred). A stage whose settings name neither field does not throttle that route (the account's quota
  still does). 0/0, as Terraform and Pulumi write them when a settings block omits the fields, refuses every
  request, connects included (hashicorp/terraform-provider-aws#14742, pulumi/pulumi-aws#2363).

This module is pure: time is an argument (seconds of any monotonic clock), so a limit is tested exactly at
its edge. It is read by the lab's gateway (which enforces), the lab's AWS layer (which refuses settings out of
range) and :mod:`kit.config` (which shows the diagnosis what limits a stage sets).

    TokenBucket(rate, burst).take(now) -> bool            one request, admitted or not
    route_limit(stage, route_key) -> RouteLimit | None    the stage's limit for a route (boto3 GetStage shape)
    settings_refusal(body) -> str | None                  why CreateStage/UpdateStage settings are refused
    Throttles(account).connect / .message / .management   a gateway's buckets: the reason it refused, or None
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

# AWSDOCS limits: new connections per second per account per region, and the account's request quota.
NEW_CONNECTIONS_PER_S: Final = 500
NEW_CONNECTIONS_BURST: Final = 500  # inferred: not documented; one second's worth
REQUESTS_PER_S: Final = 10_000
REQUESTS_BURST: Final = 5_000
TOO_MANY_REQUESTS: Final = "Too Many Requests"
THROTTLED_RESPONSE_TYPE: Final = "THROTTLED"  # $context.error.responseType (REST's gateway response name)
# Where a refusal's token is only float noise away from one (0.1 s at 10/s gains 0.9999999999999999).
_EPSILON: Final = 1e-9


@dataclass(frozen=True)
class AccountLimits:
    """The account-level quotas the lab enforces (AWS's defaults; a test may lower them)."""

    new_connections_per_s: float = NEW_CONNECTIONS_PER_S
    new_connections_burst: int = NEW_CONNECTIONS_BURST
    requests_per_s: float = REQUESTS_PER_S
    requests_burst: int = REQUESTS_BURST


@dataclass
class TokenBucket:
    """``burst`` tokens at most, ``rate`` more each second, one per request; full when made."""

    rate: float
    burst: int
    tokens: float = field(init=False)
    updated: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def take(self, now: float) -> bool:
        """Whether a request at ``now`` (seconds) is admitted; it takes a token if so."""
        if self.updated is not None and now > self.updated:
            self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        if self.updated is None or now > self.updated:
            self.updated = now
        if self.tokens >= 1 - _EPSILON:
            self.tokens = max(0.0, self.tokens - 1)
            return True
        return False


@dataclass(frozen=True)
class RouteLimit:
    """A stage's throttling of one route: ``rate`` a second, ``burst``, and the settings they come from."""

    rate: float
    burst: int
    source: str  # e.g. "DefaultRouteSettings", "RouteSettings[$connect]", or both, comma-separated

    @property
    def refuses_all(self) -> bool:
        """No request passes (burst 0), or none after the first burst (rate 0): the 0/0 trap."""
        return self.burst < 1 or self.rate <= 0

    def text(self) -> str:
        return f"rate {self.rate:g} per second, burst {self.burst} ({self.source})"


def route_limit(
    stage: Mapping[str, Any], route_key: str, account: AccountLimits | None = None
) -> RouteLimit | None:
    """The stage's limit for ``route_key`` from a ``get_stage`` answer (boto3 shape); None when its settings
    throttle that route by neither field. A field only one of the two settings sets is the account's value
    for the other (inferred)."""
    account = account or AccountLimits()
    defaults = stage.get("DefaultRouteSettings")
    defaults = defaults if isinstance(defaults, Mapping) else {}
    routes = stage.get("RouteSettings")
    own = routes.get(route_key) if isinstance(routes, Mapping) else None
    own = own if isinstance(own, Mapping) else {}
    sources: list[str] = []

    def pick(name: str) -> Any:
        for where, settings in ((f"RouteSettings[{route_key}]", own), ("DefaultRouteSettings", defaults)):
            if settings.get(name) is not None:
                if where not in sources:
                    sources.append(where)
                return settings[name]
        return None

    rate, burst = pick("ThrottlingRateLimit"), pick("ThrottlingBurstLimit")
    if rate is None and burst is None:
        return None
    return RouteLimit(
        float(rate) if rate is not None else float(account.requests_per_s),
        int(burst) if burst is not None else int(account.requests_burst),
        ", ".join(sources),
    )


def _out_of_range(value: Any, maximum: float, *, integer: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return True
    if integer and isinstance(value, float) and not value.is_integer():
        return True
    return not math.isfinite(value) or value < 0 or value > maximum


def settings_refusal(body: Mapping[str, Any]) -> str | None:
    """Why the throttling of a ``CreateStage``/``UpdateStage`` request body (wire names) is refused, or None.

    AWS: route throttling "cannot exceed the account-level limits" (AWSDOCS ``http-api-throttling``), and a
    limit is a count; the lab refuses a negative, non-numeric or over-the-quota value (10,000 a second, burst
    5,000) with BadRequestException (the refusal is inferred, its wording the lab's own).
    """
    settings: list[tuple[str, Any]] = [("DefaultRouteSettings", body.get("defaultRouteSettings"))]
    routes = body.get("routeSettings")
    if isinstance(routes, Mapping):
        settings += [(f"RouteSettings[{key}]", value) for key, value in routes.items()]
    for where, values in settings:
        if not isinstance(values, Mapping):
            continue
        for name, maximum, integer in (
            ("throttlingBurstLimit", REQUESTS_BURST, True),
            ("throttlingRateLimit", REQUESTS_PER_S, False),
        ):
            value = values.get(name)
            if value is not None and _out_of_range(value, maximum, integer=integer):
                field_name = name[0].upper() + name[1:]
                kind = "an integer" if integer else "a number"
                return (
                    f"Invalid {where}.{field_name} {value!r}: it must be {kind} from 0 to {maximum:g}, "
                    "the account-level limit"
                )
    return None


@dataclass(frozen=True)
class Throttled:
    """A refusal: which limit refused the request (for the execution log)."""

    limit: str


class Throttles:
    """The buckets one gateway enforces. Thread-safe; each method returns the refusal, or None to admit.

    A route's bucket is kept while the stage's limit for it stays the same; a changed limit (UpdateStage,
    read live) starts a new, full bucket.
    """

    def __init__(self, account: AccountLimits | None = None) -> None:
        self.account = account or AccountLimits()
        account = self.account
        self._connections = TokenBucket(account.new_connections_per_s, account.new_connections_burst)
        self._requests = TokenBucket(self.account.requests_per_s, self.account.requests_burst)
        self._routes: dict[str, tuple[RouteLimit, TokenBucket]] = {}
        self._lock = threading.Lock()

    def _route(self, now: float, route_key: str, limit: RouteLimit | None) -> Throttled | None:
        if limit is None:
            return None
        kept = self._routes.get(route_key)
        if kept is None or kept[0] != limit:
            kept = (limit, TokenBucket(limit.rate, limit.burst))
            self._routes[route_key] = kept
        if kept[1].take(now):
            return None
        return Throttled(f"the stage's throttling of route {route_key}: {limit.text()}")

    def connect(self, now: float, limit: RouteLimit | None) -> Throttled | None:
        """A new connection: the account's quota of new connections, then the stage's ``$connect`` limit."""
        with self._lock:
            if not self._connections.take(now):
                account = self.account
                return Throttled(
                    f"the account's quota of new connections: {account.new_connections_per_s:g} per second, "
                    f"burst {account.new_connections_burst}"
                )
            return self._route(now, "$connect", limit)

    def message(self, now: float, route_key: str, limit: RouteLimit | None) -> Throttled | None:
        """A message on ``route_key``: the account's request quota, then the stage's limit for the route."""
        with self._lock:
            if not self._requests.take(now):
                return Throttled(self._request_quota())
            return self._route(now, route_key, limit)

    def management(self, now: float) -> Throttled | None:
        """An ``@connections`` call: the account's request quota, which callbacks share with requests."""
        with self._lock:
            return None if self._requests.take(now) else Throttled(self._request_quota())

    def _request_quota(self) -> str:
        return (
            f"the account's request quota: {self.account.requests_per_s:g} per second, "
            f"burst {self.account.requests_burst}"
        )
