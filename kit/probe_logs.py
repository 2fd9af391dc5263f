"""What an API stage's logs say about the probe's own connections (pure): which ``$connect`` requests the
execution and access logs show finished, which messages were handled, which ``$disconnect``s ran, and the
FilterLogEvents patterns and log groups that ask only for them. :mod:`kit.probe_waits`' waits end on these
answers; :mod:`kit.probe` fetches the lines.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from kit.probe_core import json_object

if TYPE_CHECKING:
    pass

FILTER_PATTERN_MAX: Final = 1024  # CloudWatch's limit on a filter pattern's length

LogSource = Literal["execution", "access"]

_EXECUTION_LINE = re.compile(r"\((?P<request>[^)\s]+)\) (?P<text>.*)", re.DOTALL)
_IS_CONNECTING = re.compile(r"Client \[UserAgent: (?P<agent>.*), SourceIp: [^\]]*\] is connecting to ")
_CONNECTED = re.compile(r"Client \[Connection Id: (?P<connection>[^\]]+)\] connected to API ")
_REJECTED = re.compile(r"Execution failed: client \[Connection Id: (?P<connection>[^\]]+)\] rejected ")
_MESSAGE_DONE = re.compile(r"Message from client \[Connection Id: (?P<connection>[^\]]+)\] sent to API ")
_DISCONNECTED = re.compile(r"Client \[Connection Id: (?P<connection>[^\]]+)\] disconnected from API ")


@dataclass(frozen=True)
class ConnectEnd:
    """A ``$connect`` request the gateway logged as finished (accepted or rejected)."""

    request_id: str | None
    connection_id: str | None


@dataclass(frozen=True)
class GatewayEvidence:
    """What the stage's execution and access logs say about the probe's clients (``read_gateway_logs``)."""

    connecting: Mapping[str, str] = field(default_factory=dict)  # user agent -> its connect's request id
    connects: Mapping[str, ConnectEnd] = field(default_factory=dict)  # user agent -> the finished connect
    messages: Mapping[str, int] = field(default_factory=dict)  # connection id -> messages logged handled
    disconnected: frozenset[str] = frozenset()  # connection ids whose $disconnect was logged finished


def read_gateway_logs(
    lines: Iterable[tuple[LogSource, str]], user_agents: Collection[str]
) -> GatewayEvidence:
    """Read execution-log lines (``(<requestId>) ...``) and access-log records (JSON) into evidence.

    Only the probe's clients count: a connect is matched by ``user_agents`` (each client's own), through the
    request id its ``is connecting`` line gives; messages and disconnects are kept by connection id, and the
    caller asks only about its own. A request is finished when its closing line is logged (``connected``,
    ``rejected``, ``Message from client ... sent``, ``disconnected``), which the gateway writes after the
    integration returned; an access-log record is written at the same point. Both logs may report one
    message: the larger of the two counts is kept.
    """
    agents = set(user_agents)
    connecting: dict[str, str] = {}
    finished: dict[str, str | None] = {}  # request id -> connection id (None: not given)
    access_connects: dict[str, ConnectEnd] = {}
    execution_messages: dict[str, int] = {}
    access_messages: dict[str, int] = {}
    disconnected: set[str] = set()
    for source, message in lines:
        if source == "access":
            record = json_object(message.strip())
            if record is None:
                continue
            event_type, connection_id = record.get("eventType"), _text(record.get("connectionId"))
            agent = _text(record.get("userAgent")) or _text(record.get("identity.userAgent"))
            if event_type == "CONNECT" and agent in agents:
                access_connects[agent] = ConnectEnd(_text(record.get("requestId")), connection_id)
            elif event_type == "MESSAGE" and connection_id:
                access_messages[connection_id] = access_messages.get(connection_id, 0) + 1
            elif event_type == "DISCONNECT" and connection_id:
                disconnected.add(connection_id)
            continue
        line = _EXECUTION_LINE.match(message.strip())
        if line is None:
            continue
        request, text = line["request"], line["text"]
        if (found := _IS_CONNECTING.match(text)) is not None:
            if found["agent"] in agents:
                connecting[found["agent"]] = request
        elif (found := _CONNECTED.match(text) or _REJECTED.match(text)) is not None:
            finished[request] = found["connection"]
        elif (found := _MESSAGE_DONE.match(text)) is not None:
            execution_messages[found["connection"]] = execution_messages.get(found["connection"], 0) + 1
        elif (found := _DISCONNECTED.match(text)) is not None:
            disconnected.add(found["connection"])
    connects = {agent: ConnectEnd(r, finished[r]) for agent, r in connecting.items() if r in finished}
    messages = {
        connection_id: max(execution_messages.get(connection_id, 0), access_messages.get(connection_id, 0))
        for connection_id in execution_messages.keys() | access_messages.keys()
    }
    return GatewayEvidence(connecting, access_connects | connects, messages, frozenset(disconnected))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value and value != "-" else None


def connects_ended(evidence: GatewayEvidence, user_agents: Mapping[int, str]) -> set[int]:
    """The clients whose ``$connect`` the logs show finished."""
    return {client for client, agent in user_agents.items() if agent in evidence.connects}


def logged_connection_ids(evidence: GatewayEvidence, user_agents: Mapping[int, str]) -> dict[int, str]:
    """Each client's connection id as the gateway logged its connect (for finding its later requests)."""
    ids = {}
    for client, agent in user_agents.items():
        end = evidence.connects.get(agent)
        if end is not None and end.connection_id:
            ids[client] = end.connection_id
    return ids


def disconnects_ended(evidence: GatewayEvidence, connection_ids: Mapping[int, str]) -> set[int]:
    """The clients whose ``$disconnect`` the logs show finished."""
    return {client for client, cid in connection_ids.items() if cid in evidence.disconnected}


def messages_handled(
    evidence: GatewayEvidence, connection_ids: Mapping[int, str], sent: Mapping[int, int]
) -> set[int]:
    """The senders whose latest message the logs show handled: as many logged as ``sent[client]`` so far.

    Only the probe sends on its own connections, one frame at a time per action, so counting suffices.
    """
    return {
        client
        for client, count in sent.items()
        if client in connection_ids and evidence.messages.get(connection_ids[client], 0) >= count
    }


def filter_terms(run_id: str, evidence: GatewayEvidence, connection_ids: Iterable[str]) -> list[str]:
    """What to ask FilterLogEvents for: lines naming the run (user agents), its connects' request ids (their
    closing lines) and its connection ids (messages, disconnects, access-log records)."""
    return list(dict.fromkeys([run_id, *evidence.connecting.values(), *connection_ids]))


def filter_patterns(terms: Sequence[str], limit: int = FILTER_PATTERN_MAX) -> list[str]:
    """CloudWatch filter patterns matching a line with any of ``terms`` (``?"a" ?"b"``), each within
    ``limit`` characters; one term alone is quoted without ``?``. Terms with a double quote are dropped."""
    quoted = [f'"{term}"' for term in terms if term and '"' not in term]
    if len(quoted) == 1:
        return quoted
    patterns: list[str] = []
    current: list[str] = []
    for term in quoted:
        candidate = " ".join([*current, f"?{term}"])
        if current and len(candidate) > limit:
            patterns.append(" ".join(current))
            current = []
        current.append(f"?{term}")
    if current:
        patterns.append(" ".join(current))
    return patterns


def log_groups_for_stage(
    api_id: str | None, stage: str | None, stage_answer: Mapping[str, Any] | None
) -> tuple[dict[str, LogSource], str | None]:
    """The log groups that can end the probe's waits, from a ``get_stage`` answer (None: not read), or why
    there are none.

    The execution log counts only at INFO (the closing lines are INFO); the access log wherever the stage
    sends it. Without the answer the execution log's usual name is tried.
    """
    if not api_id or not stage:
        return {}, "the API id and stage are unknown (a custom domain hides them)"
    groups: dict[str, LogSource] = {}
    level = None
    access = None
    if stage_answer is not None:
        level = str((stage_answer.get("DefaultRouteSettings") or {}).get("LoggingLevel", "OFF"))
        arn = (stage_answer.get("AccessLogSettings") or {}).get("DestinationArn")
        if arn and ":log-group:" in str(arn):
            access = str(arn).split(":log-group:", 1)[1].removesuffix(":*")
    if level in (None, "INFO"):
        groups[f"API-Gateway-Execution-Logs_{api_id}/{stage}"] = "execution"
    if access is not None:
        groups[access] = "access"
    if not groups:
        return {}, f"the stage logs no INFO execution lines (level {level}) and has no access log"
    return groups, None
