"""The checks on delivery: why a message sent on an open, stored connection does not reach the other clients.

    check_message_routing      ``message-routing``: the frames API Gateway answered Forbidden (the probe's
                               error frames, the execution log's "no route matches route selection value
                               [v]") against the API's route selection expression and routes: the expression
                               reads a field the clients' frames do not carry (route-selection-mismatch), or
                               the value they carry names a route that is missing, or that exists but the
                               stage's deployment does not have (message-route-missing)
    check_manage_connections   ``iam-manage-connections``: may the message function's role (its own when
                               it is another than $connect's) post to @connections
                               (``execute-api:ManageConnections``, evaluated by :mod:`kit.policy`), with the
                               function's failed posts from its log (manage-connections-denied)
    check_management_endpoint  ``management-endpoint``: the @connections endpoint the message functions post
                               to (an execute-api URL in their environment, the endpoint their log names)
                               against the API's own: API id, region and stage (management-endpoint-wrong)

Each settles the configuration with what was seen: the probe's delivery steps and the logs. A configuration
fault while the probe saw every broadcast delivered is a warning (then the reading of the configuration is in
doubt), never a cause; with no probe, the configuration and the logs decide.

The frames the clients send are the probe's (:func:`kit.probe_core.action_body`, what the app's client sends);
the check compares them with the API's configuration and what the execution log says, never with how a fault
was made. A frame the app does not send (a heartbeat without a route) that took no route is a warning only.
Custom domains are not judged (their mapping to a stage is not read). Pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from kit import config, probe_core
from kit.diagnose import causes
from kit.diagnose.findings import CONNECT, Evidence, Finding, is_true, skip, skip_if_api_unread
from kit.logparse import patterns

MANAGE_CONNECTIONS = "execute-api:ManageConnections"
_RESERVED_ROUTES = frozenset({CONNECT, "$disconnect", "$default"})
_BODY_FIELD = re.compile(r"request\.body\.([^.\[\]}\s/]+)")
# A variable that names the endpoint a handler posts to (not some other API the function calls).
_ENDPOINT_VARIABLE = re.compile(
    r"ENDPOINT|MANAGEMENT|CALLBACK|CONNECTIONS|WEBSOCKET|(?:^|_)WSS?(?:_|$)", re.I
)
_LOGGED_ENDPOINT = re.compile(r'"management_endpoint":\s*"([^"]+)"')
_LOGGED_ENDPOINT_LINE = re.compile(r'"management_endpoint":\s*"')
# What a failed PostToConnection leaves in a function's log, whatever the language.
_POST_FAILURE = re.compile(
    r"ForbiddenException|AccessDeniedException|execute-api:ManageConnections|EndpointConnectionError|"
    r"Could not connect to the endpoint URL|ENOTFOUND|EAI_AGAIN|getaddrinfo|GoneException"
)
_QUOTE_MAX = 300


# --- what was seen ------------------------------------------------------------------------------------------


def _exchange(e: Evidence) -> pd.DataFrame:
    """The probe's ``send-<action>`` and ``deliver-<action>`` rows that ran (no probe: none)."""
    if e.probe is None or e.probe.empty:
        return pd.DataFrame(columns=["step", "ok", "detail"])
    steps = e.probe["step"].astype(str)
    sent = steps.str.startswith("send-") & (steps != "send-oversize")
    chosen = e.probe[sent | steps.str.startswith("deliver-")]
    return chosen[chosen["ok"].notna()]


def _delivered(e: Evidence) -> bool | None:
    """True when the probe saw every broadcast delivered, False when one was not, None when none was tried."""
    ran = _exchange(e)
    delivered = ran[ran["step"].astype(str).str.startswith("deliver-")]
    if delivered.empty:
        return None
    return bool(delivered["ok"].astype(bool).all())


def _delivery_failure(e: Evidence) -> str:
    """The first failed delivery step, in words ("" when none failed)."""
    ran = _exchange(e)
    failed = ran[ran["ok"].eq(False).fillna(False).astype(bool)]
    if failed.empty:
        return ""
    row = failed.iloc[0]
    return f"the probe's {row['step']}: {row['detail']}"


def _forbidden_actions(e: Evidence) -> list[str]:
    """The probe's actions whose frames API Gateway answered with the Forbidden error frame."""
    ran = _exchange(e)
    forbidden = ran[
        ran["ok"].eq(False).fillna(False).astype(bool)
        & ran["detail"].astype("string").str.contains('"message": "Forbidden"', regex=False).fillna(False)
    ]
    actions = [str(step).partition("-")[2] for step in forbidden["step"]]
    return list(dict.fromkeys(a for a in actions if a in probe_core.ACTIONS))


def _gateway_lines(e: Evidence) -> pd.DataFrame:
    if e.log_lines is None or e.log_lines.empty:
        return pd.DataFrame(columns=["ts", "message"])
    return e.log_lines[e.log_lines["source"].eq("apigw_exec").fillna(False).astype(bool)]


def _unrouted(e: Evidence) -> pd.DataFrame:
    """The execution log's "no route matches route selection value [v]" lines: ``ts`` and ``value``."""
    lines = _gateway_lines(e)
    values = lines["message"].astype("string").str.extract(patterns.NO_ROUTE_MATCH, expand=False)
    found = lines.assign(value=values)
    return found[found["value"].notna()][["ts", "value"]]


def _function_lines(e: Evidence, pattern: re.Pattern[str]) -> list[str]:
    """The functions' log lines that match ``pattern``, clipped, each once."""
    if e.log_lines is None or e.log_lines.empty:
        return []
    lines = e.log_lines[e.log_lines["source"].eq("lambda").fillna(False).astype(bool)]
    text = lines["message"].astype("string")
    matched = text[text.str.contains(pattern, regex=True).fillna(False).astype(bool)]
    return list(dict.fromkeys(_around(" ".join(str(m).split()), pattern) for m in matched))


def _around(line: str, pattern: re.Pattern[str]) -> str:
    """The part of a long line around what ``pattern`` found in it (the rest elided)."""
    found = pattern.search(line)
    if found is None or len(line) <= _QUOTE_MAX:
        return line[:_QUOTE_MAX]
    start = max(0, found.start() - _QUOTE_MAX // 3)
    return ("…" if start else "") + line[start : start + _QUOTE_MAX] + "…"


def _route_keys(e: Evidence) -> list[str]:
    """The API's routes as they are now (not the placeholders of expected routes), reserved ones left out."""
    routes = e.routes[e.routes["route_id"].notna()]
    return [str(key) for key in routes["route_key"].dropna() if str(key) not in _RESERVED_ROUTES]


def _warn(check: str, question: str, evidence: str, next_step: str) -> list[Finding]:
    return [Finding(check, question, "warn", None, evidence, next_step)]


def _settled(
    e: Evidence, check: str, question: str, cause_id: str, evidence: list[str], *, next_step: str = ""
) -> list[Finding]:
    """A configuration fault, settled with the probe: a fail, unless the probe saw every broadcast arrive."""
    shown = "; ".join(part for part in evidence if part)
    if _delivered(e) is True:
        return _warn(
            check,
            question,
            f"{shown}; yet the probe's broadcasts were all delivered",
            "Check which function and settings the stage really uses: the probe says delivery works.",
        )
    return [Finding(check, question, "fail", cause_id, shown, next_step or causes.cause(cause_id).next_step)]


# --- message routing ----------------------------------------------------------------------------------------


def _frames(actions: list[str]) -> dict[str, dict[str, object]]:
    """What the clients send for each action: the app's own frames, as the probe sends them."""
    frames: dict[str, dict[str, object]] = {}
    for action in actions:
        body = json.loads(probe_core.action_body(action, 0, ""))
        if isinstance(body, dict):
            frames[action] = body
    return frames


def _routing_field(frames: Mapping[str, Mapping[str, object]], keys: list[str]) -> str | None:
    """The field of the clients' frames whose value names a route of the API (e.g. ``action``), or None."""
    for body in frames.values():
        for field_name, value in body.items():
            if str(value) in keys:
                return field_name
    return None


@dataclass(frozen=True)
class Unrouted:
    """What the evidence says of the messages no route took, against the API's configuration now.

    ``actions``: the probe's actions answered Forbidden; ``values``: the execution log's selection values of
    messages no route took, since the stage's deployment (when its date was read); ``frames``: what the app's
    clients send: for the probe's refused actions, else for every action the app sends (any client may send
    other frames, a heartbeat without a route, so the log's values alone are judged against the app's own);
    ``keys``: the API's non-reserved route keys now.
    """

    expression: str
    actions: tuple[str, ...]
    values: tuple[str, ...]
    frames: Mapping[str, Mapping[str, object]]
    keys: tuple[str, ...]

    @property
    def fields(self) -> list[str]:
        """The body fields the route selection expression reads."""
        return _BODY_FIELD.findall(self.expression)

    @property
    def expression_unmet(self) -> bool:
        """The expression reads a field the app's frames lack."""
        return any(not all(f in body for body in self.frames.values()) for f in self.fields)

    @property
    def wanted_expression(self) -> str | None:
        """``$request.body.<field>`` for the field of the clients' frames that names a route now, or None."""
        field_name = _routing_field(self.frames, list(self.keys))
        return f"$request.body.{field_name}" if field_name else None

    @property
    def sent(self) -> list[str]:
        """The routes the app's unrouted messages name: the probe's refused frames', and the log's values that
        are routes the app's frames name (another value is some other client's frame)."""
        field_name = self.fields[0] if len(self.fields) == 1 else None
        named = {str(body[field_name]) for body in self.frames.values() if field_name and field_name in body}
        if self.actions:
            return sorted(named | {v for v in self.values if v})
        return sorted(set(self.values) & named)

    @property
    def missing(self) -> list[str]:
        return [key for key in self.sent if key not in self.keys]

    @property
    def undeployed(self) -> list[str]:
        return [key for key in self.sent if key in self.keys]


def unrouted_messages(e: Evidence) -> Unrouted:
    """:class:`Unrouted` from the evidence (pure)."""
    unrouted = _unrouted(e)
    since = e.stage.iloc[0]["deployment_created"] if not e.stage.empty else pd.NaT
    if pd.notna(since) and not unrouted.empty:  # a message before the stage's deployment says nothing of it
        unrouted = unrouted[unrouted["ts"] >= since]
    actions = _forbidden_actions(e)
    return Unrouted(
        e.route_selection_expression,
        tuple(actions),
        tuple(str(v) for v in unrouted["value"]),
        _frames(actions or list(probe_core.ACTIONS)),
        tuple(_route_keys(e)),
    )


def check_message_routing(e: Evidence) -> list[Finding]:
    check = "message-routing"
    question = "Do the clients' messages take a route (the selection expression against what they send)?"
    if (unread := skip_if_api_unread(e, check, question)) is not None:
        return unread
    found = unrouted_messages(e)
    if not found.actions and not found.values:
        if (e.probe is None or e.probe.empty) and (e.log_lines is None or e.log_lines.empty):
            return skip(check, question, "neither a probe nor API Gateway's execution log was read")
        return [Finding(check, question, "pass", None, "no message was answered Forbidden (no route missed)")]
    expression = found.expression
    seen = []
    if found.actions:
        seen.append(f"the probe's {', '.join(found.actions)} frames were answered Forbidden")
    if found.values:
        shown = ", ".join(f"[{v}]" for v in dict.fromkeys(found.values))
        seen.append(
            f"execution log: no route matches route selection value {shown} ({len(found.values)} messages)"
        )
    routes_now = f"the API's routes: {', '.join(found.keys) or 'none but $connect/$disconnect'}"
    if found.expression_unmet:
        carried = sorted({k for body in found.frames.values() for k in body})
        wanted = found.wanted_expression or "the field the clients put the route in"
        said = f"the clients' frames carry {', '.join(carried)}" if carried else "what the clients send"
        return _settled(
            e,
            check,
            question,
            "route-selection-mismatch",
            [f"the API selects routes with {expression!r}, which {said} do not satisfy", routes_now, *seen],
            next_step=f"{causes.cause('route-selection-mismatch').next_step} Here: {wanted}.",
        )
    parts = [*seen, routes_now]
    if found.missing:
        named = ", ".join(found.missing)
        parts.insert(0, f"the clients send route {named} ({expression}), and the API has no such route")
    stage = e.stage.iloc[0] if not e.stage.empty else None
    since = stage["deployment_created"] if stage is not None else pd.NaT
    if found.undeployed:
        deployment = f"deployment {stage['deployment_id']}" if stage is not None else "its deployment"
        parts.insert(
            0,
            f"route {', '.join(found.undeployed)} exists, yet the stage answers Forbidden for it: "
            f"{deployment} (created {since}) does not have it",
        )
    if not found.sent:  # only frames the app does not send (a heartbeat, a malformed frame) took no route
        return _warn(
            check,
            question,
            "; ".join(seen) + f"; no frame of the app's clients is among them ({expression})",
            "If your clients send those frames, add their route (or a $default route); else nothing is lost.",
        )
    if not found.missing and pd.isna(since) and not found.actions:
        # Undated log lines may predate a deployment: only the probe (now) proves it.
        return _warn(check, question, "; ".join(parts), "Read the stage's deployment to date it.")
    return _settled(e, check, question, "message-route-missing", parts)


# --- @connections: permission and endpoint ------------------------------------------------------------------


def check_manage_connections(e: Evidence) -> list[Finding]:
    check = "iam-manage-connections"
    question = "May the execution role post to the clients (execute-api:ManageConnections on @connections)?"
    if "message-role" in e.problems:  # the message function runs under a role of its own, not read
        return skip(check, question, e.problems["message-role"])
    permissions = e.message_permissions if e.message_permissions is not None else e.permissions
    if permissions is None or permissions.empty:
        return skip(check, question, e.problems.get("iam", "no execution role could be read"))
    rows = permissions[permissions["action"] == MANAGE_CONNECTIONS]
    if rows.empty:
        return skip(check, question, "the permission was not evaluated (no API id or stage)")
    posting = rows[rows["resource"].astype(str).str.contains("/POST/", regex=False)]
    row = (posting if not posting.empty else rows).iloc[0]
    if is_true(row["allowed"]):
        return [Finding(check, question, "pass", None, f"{row['resource']}: {row['reason']}")]
    logged = [line for line in _function_lines(e, _POST_FAILURE) if "Gone" not in line][:1]
    return _settled(
        e,
        check,
        question,
        "manage-connections-denied",
        [
            f"{MANAGE_CONNECTIONS} on {row['resource']}: {row['decision']}, {row['reason']}",
            *(f"the function's log: {line}" for line in logged),
            _delivery_failure(e),
        ],
    )


def _endpoint_faults(url: str, api_id: str, region: str, stage: str, *, names_endpoint: bool) -> list[str]:
    """How an execute-api URL differs from the API's own endpoint (pure); none for another host."""
    match = config.EXECUTE_API_URL.match(url)
    if match is None:
        return []  # a custom domain: its mapping to a stage is not read, so it is not judged
    faults = []
    if match["api"] != api_id:
        if not names_endpoint:
            return []  # another API the function calls, in a variable that names no endpoint
        faults.append(f"API {match['api']}, not {api_id}")
    if match["region"] != region:
        faults.append(f"region {match['region']}, not {region}")
    if match["stage"] is not None and stage and match["stage"] != stage:
        faults.append(f"stage {match['stage'] or '(none)'}, not {stage}")
    return faults


@dataclass(frozen=True)
class WrongEndpoint:
    """A message function's variable that names another @connections endpoint than the API's."""

    function_name: str
    variable: str
    value: str
    faults: tuple[str, ...]


def own_endpoint(e: Evidence) -> str:
    """The API's @connections endpoint on its execute-api host: ``https://{api}.execute-api.{region}...``."""
    stage = str(e.stage.iloc[0]["stage_name"]) if not e.stage.empty else ""
    return f"https://{e.api_id}.execute-api.{e.region}.amazonaws.com/{stage}"


def _message_functions(e: Evidence) -> pd.DataFrame:
    routes = e.routes[e.routes["route_id"].notna() & ~e.routes["route_key"].isin([CONNECT, "$disconnect"])]
    names = set(routes["function_name"].dropna().astype(str))
    return e.functions[e.functions["function_name"].isin(names)]


def wrong_endpoints(e: Evidence) -> list[WrongEndpoint]:
    """The message functions' variables that name another endpoint than the API's (pure)."""
    stage = str(e.stage.iloc[0]["stage_name"]) if not e.stage.empty else ""
    wrong = []
    for _, function in _message_functions(e).iterrows():
        environment = json.loads(str(function["environment"])) if pd.notna(function["environment"]) else {}
        for name, value in sorted(environment.items()):
            named = bool(_ENDPOINT_VARIABLE.search(name))
            faults = _endpoint_faults(str(value), e.api_id, e.region, stage, names_endpoint=named)
            if faults:
                wrong.append(WrongEndpoint(str(function["function_name"]), name, str(value), tuple(faults)))
    return wrong


def check_management_endpoint(e: Evidence) -> list[Finding]:
    check = "management-endpoint"
    question = "Do the message functions post to this API's @connections endpoint (its id, region and stage)?"
    if (unread := skip_if_api_unread(e, check, question)) is not None:
        return unread
    if _message_functions(e).empty or e.stage.empty or not e.api_id:
        return skip(check, question, e.problems.get("functions", "no message function or stage was read"))
    stage = str(e.stage.iloc[0]["stage_name"])
    own = own_endpoint(e)
    wrong = [f"{w.function_name}: {w.variable}={w.value} ({', '.join(w.faults)})" for w in wrong_endpoints(e)]
    for line in _function_lines(e, _LOGGED_ENDPOINT_LINE):
        logged = _LOGGED_ENDPOINT.search(line)
        if logged is not None:
            faults = _endpoint_faults(logged.group(1), e.api_id, e.region, stage, names_endpoint=True)
            if faults:
                wrong.append(f"the function's log posts to {logged.group(1)} ({', '.join(faults)})")
                break
    if not wrong:
        return [
            Finding(
                check,
                question,
                "pass",
                None,
                f"no message function names another @connections endpoint than {own}",
            )
        ]
    failures = _function_lines(e, _POST_FAILURE)[:1]
    return _settled(
        e,
        check,
        question,
        "management-endpoint-wrong",
        [
            f"the API's endpoint is {own}",
            *wrong[:2],
            *(f"the function's log: {line}" for line in failures),
            _delivery_failure(e),
        ],
    )
