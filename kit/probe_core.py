"""The probe's decisions: the plan, its steps and each step's verdict, as plain code.

:mod:`kit.probe` is the shell: it opens the sockets, sends, receives, reads the table and the API's logs, and
feeds what it got to this module, the way :mod:`kit.lab.gateway` carries out what :mod:`kit.lab.gateway_core`
decides. Here: what the probe does (``ProbePlan``: clients, workspace, actions, misbehaviour, timeouts) and
which steps that gives; what each client sends (URLs, frames, user agents); how broadcasts and items are told
apart by owner; and how a row reads for each outcome (``StepResult``, ``Rows``).

When a wait is over is :mod:`kit.probe_waits`'s to say; the verdicts here read its outcomes.

This module must not do I/O: no sockets, no boto3, no threads, no clock (times come in as
``time.monotonic()`` seconds, row timestamps as datetimes), and it never imports ``websocket``. The one
draw of randomness is a plan's run id when none is given (``new_run_id``).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pandas as pd

from kit import __version__, frames
from kit.dynamo import direct_write
from kit.errors import ConfigurationError
from kit.probe_waits import (
    DELIVERY_GRACE_S,
    LAB_DELIVERY_GRACE_S,
    LAB_LOG_FIRST_READ_S,
    LOG_FIRST_READ_S,
    WaitOutcome,
)
from kit.redact import mask_tokens

if TYPE_CHECKING:
    from kit.target import Target

ACTIONS: Final = ("message", "presence", "typing")
STEPS: Final = (
    "connect",
    "item-stored",
    "index-visible",
    "send-oversize",  # only when the plan sends an oversize frame
    "send-message",
    "deliver-message",
    "send-presence",
    "deliver-presence",
    "send-typing",
    "deliver-typing",
    "disconnect",
    "item-removed",
)

PROBE_COLUMNS: Final[Mapping[str, str]] = {
    "client": "int64",  # 0 .. clients-1
    "user_hash": "string",  # sha256 of the token, 12 hex digits (as the handler logs it); NA without token
    "connection_id": "string",  # from the stored item (or a gateway error frame); NA when never found
    "step": "string",  # one of STEPS
    "ok": "boolean",  # True passed, False failed, NA skipped
    "http_status": "Int64",  # connect rows: 101 or the status the handshake was rejected with
    "close_code": "Int64",  # where a close was seen: disconnect, send-oversize
    "close_reason": "string",
    "latency_ms": "Float64",  # see the step list in ``kit.probe.run_probe``
    "detail": "string",  # what happened, in words; error frames quoted with tokens replaced by hashes
    "ts": "datetime64[ns, UTC]",  # when the step started
}

SUMMARY_COLUMNS: Final[Mapping[str, str]] = {
    "step": "string",
    "clients": "int64",
    "ok": "int64",
    "failed": "int64",
    "skipped": "int64",
    "p50_ms": "Float64",  # latency of the rows that passed
    "p95_ms": "Float64",
}

MAX_CLIENTS: Final = 500  # API Gateway accepts 500 new connections per second per account and region
WORKSPACE_PREFIX: Final = direct_write.ITEM_PREFIX  # one prefix marks every item the kit itself causes
_WORKSPACE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # what the fixed handler accepts
OVERSIZE_FRAME_BYTES: Final = 33 * 1024  # API Gateway closes with 1009 above 32 KB
ABNORMAL_CLOSURE: Final = 1006  # what a browser reports when the socket ends without a close frame
CLOSE_NORMAL: Final = 1000
PROBE_CLOSE_REASON: Final = b"kit probe done"
FILTERED_TOKENS_MAX: Final = 50  # beyond this the Scan is unfiltered (expression size), and filtered here
DETAIL_MAX: Final = 300
CLOCK_SKEW_S: Final = 60  # between this machine and the handler's, when comparing item timestamps
FILTER_PATTERNS_MAX: Final = 2  # more than this many FilterLogEvents calls per group per read: not followed


def new_run_id() -> str:
    return secrets.token_hex(4)


def default_token(client: int, run_id: str) -> str:
    """``probe-<client>-<run>@example.invalid``: e-mail shaped (AUTH_MODE=email) and unique per run.

    Unique per run so that an item left by an earlier run is never mistaken for this run's, and so the
    cleanup on a real account can only ever match the probe's own items.
    """
    return f"probe-{client}-{run_id}@example.invalid"


# --------------------------------------------------------------------------------------------------
# The plan


@dataclass(frozen=True)
class ProbeTimeouts:
    """How long each kind of wait may last at most, in seconds; most end earlier, on their event."""

    handshake_s: float = 10.0
    item_wait_s: float = 10.0  # for the item, for the index, and for the item to go after disconnect
    backoff_initial_s: float = 0.05  # polls of the table back off exponentially from here ...
    backoff_max_s: float = 1.0  # ... up to here
    delivery_wait_s: float = 5.0  # for broadcasts, error frames and the close after an oversize frame
    close_s: float = 5.0  # for the server's answer to the probe's close frame
    # None: the target's own (``pace``): AWS's ``LOG_FIRST_READ_S``/``DELIVERY_GRACE_S``, or the lab's.
    log_first_read_s: float | None = None  # no wait reads the logs before this
    delivery_grace_s: float | None = None  # listening on after the logs say a sender's message was handled

    def pace(self, target_kind: str) -> tuple[float, float]:
        """(first log read, delivery grace) in seconds for a ``target_kind`` target: what was set, else the
        lab's promise on the lab and CloudWatch's and the internet's pace anywhere else."""
        lab = target_kind == "lab"
        first = LAB_LOG_FIRST_READ_S if lab else LOG_FIRST_READ_S
        grace = LAB_DELIVERY_GRACE_S if lab else DELIVERY_GRACE_S
        return (
            first if self.log_first_read_s is None else self.log_first_read_s,
            grace if self.delivery_grace_s is None else self.delivery_grace_s,
        )


@dataclass(frozen=True)
class ProbePlan:
    """What the probe does: how many clients, in which workspace, sending what, and how they misbehave.

    ``token_for(i)`` gives client ``i``'s token (the hook sends the user's e-mail); None means
    ``default_token``. ``include_token``/``include_workspace_id``/``close_after_connect``/
    ``send_oversize_frame`` reproduce client-side causes; ``join_after_connect`` plays an app that sends a
    join message (:func:`join_body`) as soon as it is connected. ``remove_leftovers`` None means: on a real
    account yes, in the lab no. ``concurrency`` bounds how many clients connect or disconnect at once.
    ``user_agent`` is the product part of the User-Agent each client sends (``client_user_agent``).
    """

    clients: int = 1
    workspace_id: str | None = None  # None: kit-probe-<run_id>
    token_for: Callable[[int], str] | None = field(default=None, repr=False)
    include_workspace_id: bool = True
    include_token: bool = True
    close_after_connect: bool = False
    send_oversize_frame: bool = False
    join_after_connect: bool = False
    actions: tuple[str, ...] = ACTIONS
    timeouts: ProbeTimeouts = ProbeTimeouts()
    user_agent: str = f"kit-probe/{__version__}"
    concurrency: int = 8
    remove_leftovers: bool | None = None
    run_id: str = field(default_factory=new_run_id)

    def __post_init__(self) -> None:
        if self.workspace_id is None:
            object.__setattr__(self, "workspace_id", WORKSPACE_PREFIX + self.run_id)
        if not 1 <= self.clients <= MAX_CLIENTS:
            raise ConfigurationError(f"A probe runs 1 to {MAX_CLIENTS} clients; {self.clients} were asked.")
        if not _WORKSPACE_ID.fullmatch(self.workspace):
            raise ConfigurationError(
                f"Workspace id {self.workspace!r} is not one the handler accepts (1-128 letters, digits, "
                "'.', '_', ':' or '-'); leave it unset to get kit-probe-<random>."
            )
        unknown = [action for action in self.actions if action not in ACTIONS]
        if unknown:
            raise ConfigurationError(
                f"Unknown probe action(s) {', '.join(map(repr, unknown))}; use any of {', '.join(ACTIONS)}."
            )
        if len(set(self.actions)) != len(self.actions):
            raise ConfigurationError(f"Probe actions {self.actions} repeat one; list each at most once.")
        if self.concurrency < 1:
            raise ConfigurationError(f"Probe concurrency must be at least 1, not {self.concurrency}.")

    @property
    def workspace(self) -> str:
        assert self.workspace_id is not None  # set in __post_init__
        return self.workspace_id

    def token(self, client: int) -> str:
        return self.token_for(client) if self.token_for else default_token(client, self.run_id)

    def sent_token(self, client: int) -> str | None:
        """The token client ``client`` puts in its URL: None when the plan leaves tokens out."""
        return self.token(client) if self.include_token else None

    def url(self, websocket_url: str, client: int) -> str:
        """The URL client ``client`` opens (``probe_url`` with the plan's token and workspace)."""
        workspace = self.workspace if self.include_workspace_id else None
        return probe_url(websocket_url, token=self.sent_token(client), workspace_id=workspace)

    def steps(self) -> tuple[str, ...]:
        """The steps each client's rows cover, in order."""
        wanted = {"connect", "item-stored", "index-visible", "disconnect", "item-removed"}
        if self.send_oversize_frame:
            wanted.add("send-oversize")
        for action in self.actions:
            wanted |= {f"send-{action}", f"deliver-{action}"}
        return tuple(step for step in STEPS if step in wanted)

    @classmethod
    def from_client_plan(cls, client_plan: object, **changes: Any) -> ProbePlan:
        """A plan that connects as a scenario's client does (duck-typed ``kit.lab.scenarios.ClientPlan``)."""
        fields = {
            name: bool(getattr(client_plan, name))
            for name in (
                "include_workspace_id",
                "include_token",
                "close_after_connect",
                "send_oversize_frame",
                "join_after_connect",
            )
            if hasattr(client_plan, name)
        }
        return cls(**(fields | changes))


def client_user_agent(plan: ProbePlan, client: int) -> str:
    """The User-Agent client ``client`` sends: ``<plan.user_agent> (run <run_id> client <i>)``.

    Unique per run and client, so the gateway's log of a connect (which names the user agent) can be told
    to be this client's and no one else's.
    """
    return f"{plan.user_agent} (run {plan.run_id} client {client})"


# --------------------------------------------------------------------------------------------------
# Guards that run before any network call


def check_websocket_url(target: Target) -> None:
    """Refuse a target without a ws:// or wss:// URL to connect to."""
    if not target.websocket_url:
        raise ConfigurationError(
            f"Target {target.label} has no WebSocket URL; set NEXT_PUBLIC_WEBSOCKET_URL in the env file or "
            "pass --websocket-url wss://{api}.execute-api.{region}.amazonaws.com/{stage}."
        )
    scheme = urlsplit(target.websocket_url).scheme.lower()
    if scheme not in {"ws", "wss"}:
        raise ConfigurationError(
            f"The WebSocket URL {public_url(target.websocket_url)} uses {scheme or 'no scheme'}; the probe "
            "connects with ws:// or wss://."
        )


def missing_opt_in(target: Target, plan: ProbePlan, *, allow_aws: bool) -> str | None:
    """Why the probe may not run here (a real account without its opt-in), or None (pure)."""
    if target.kind != "aws" or allow_aws:
        return None
    url = public_url(target.websocket_url) if target.websocket_url else "the API"
    return (
        f"The probe writes to a real account: it opens {plan.clients} WebSocket connection(s) to {url}, "
        f"so the $connect handler stores one item per client in table {target.table} "
        f"({target.region}), under workspace {plan.workspace}; it removes them afterwards. "
        "Opt in to run it: --allow-aws-probe (kit probe, kit diagnose), allow_aws_probe=True (the "
        "notebooks), allow_aws=True (run_probe)."
    )


def check_aws_opt_in(target: Target, plan: ProbePlan, *, allow_aws: bool) -> None:
    """Refuse to probe a real account unless asked to, and outside a workspace of the probe's own."""
    if target.kind != "aws":
        return
    if (refused := missing_opt_in(target, plan, allow_aws=allow_aws)) is not None:
        raise ConfigurationError(refused)
    if not plan.workspace.startswith(WORKSPACE_PREFIX):
        raise ConfigurationError(
            f"Against a real account the probe only uses a workspace of its own ({WORKSPACE_PREFIX}...), "
            f"never {plan.workspace!r}, so that it can never reach or remove a real user's connections; "
            "leave workspace_id unset."
        )


# --------------------------------------------------------------------------------------------------
# What a client sends, and reads on the wire


def probe_url(websocket_url: str, *, token: str | None, workspace_id: str | None) -> str:
    """The URL the browser hook opens: ``token`` then ``workspaceId`` appended to the query string.

    Encoded as ``URLSearchParams`` does (``@`` -> ``%40``, ``+`` -> ``%2B``); parameters already in the URL
    are kept; None leaves a parameter out, as a hook with an undefined value would not.
    """
    parts = urlsplit(websocket_url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if token is not None:
        query.append(("token", token))
    if workspace_id is not None:
        query.append(("workspaceId", workspace_id))
    return urlunsplit(parts._replace(query=urlencode(query)))


def signing_url(websocket_url: str) -> str:
    """The URL a SigV4 signer signs for a ``ws://``/``wss://`` handshake (``AWS_IAM`` on ``$connect``):
    the same host, path and query over http/https, so the signed Host and query are the ones sent."""
    parts = urlsplit(websocket_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme)
    return urlunsplit(parts._replace(scheme=scheme))


def public_url(url: str) -> str:
    """``url`` without its query string (it holds the token) or user info: safe for a row or a message."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def clip(text: str, limit: int = DETAIL_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def action_body(action: str, client: int, run_id: str) -> str:
    """The frame client ``client`` sends for ``action``, as the app sends it."""
    if action == "message":
        return json.dumps({"action": "message", "message": message_text(client, run_id)})
    if action == "presence":
        return json.dumps({"action": "presence", "status": "online"})
    if action == "typing":
        return json.dumps({"action": "typing", "isTyping": True})
    raise ConfigurationError(f"Unknown probe action {action!r}; use one of {', '.join(ACTIONS)}.")


def join_body(workspace_id: str | None, token: str | None) -> str:
    """The join frame an app that registers on join sends once connected: its workspace and token again."""
    join: dict[str, str] = {"action": "join"}
    if workspace_id is not None:
        join["workspaceId"] = workspace_id
    if token is not None:
        join["token"] = token
    return json.dumps(join)


def message_text(client: int, run_id: str) -> str:
    """The text of client ``client``'s message: it names the sender even when ``from`` does not."""
    return f"kit probe {run_id} from client {client}"


def oversize_body(size: int = OVERSIZE_FRAME_BYTES) -> str:
    """A ``message`` frame of ``size`` bytes, over API Gateway's 32 KB frame limit by default."""
    envelope = json.dumps({"action": "message", "message": ""})
    return json.dumps({"action": "message", "message": "x" * max(size - len(envelope), 0)})


def gateway_error_message(text: str) -> str | None:
    """``"Forbidden"`` for ``{"message": "Forbidden", "connectionId":..., "requestId":...}``, else None.

    API Gateway answers on the open socket with such a frame when no route takes a message, the
    integration failed, or a route's model rejected the body; broadcasts have a ``type`` and never match.
    """
    parsed = json_object(text)
    if parsed is None or "type" in parsed or "connectionId" not in parsed:
        return None
    message = parsed.get("message")
    return message if isinstance(message, str) else None


def gateway_connection_id(text: str) -> str | None:
    """The ``connectionId`` an API Gateway error frame names, or None."""
    parsed = json_object(text)
    if parsed is None or gateway_error_message(text) is None:
        return None
    value = parsed.get("connectionId")
    return value if isinstance(value, str) and value else None


def json_object(text: str) -> dict[str, Any] | None:
    """``text`` as a JSON object, else None (not JSON, not an object, nested too deep)."""
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def close_payload(data: bytes) -> tuple[int, str]:
    """A close frame's ``(code, reason)``; an empty one means 1005 (no status), as API Gateway reports."""
    if len(data) < 2:
        return 1005, ""
    return int.from_bytes(data[:2], "big"), data[2:].decode("utf-8", "replace")


@dataclass(frozen=True)
class ReceivedFrame:
    """A text frame one client received, with ``time.monotonic()`` at arrival."""

    at: float
    text: str


@dataclass(frozen=True)
class Close:
    """How a client's connection ended: the close frame's code and reason (1006 for none), and who closed."""

    code: int
    reason: str
    at: float  # time.monotonic()
    by_server: bool
    detail: str


def close_of(code: int, reason: str, at: float, *, by_server: bool, lost: str | None = None) -> Close:
    """The ``Close`` for a close frame (``lost`` None) or for a socket that ended without one (``lost``)."""
    if lost is not None:
        return Close(code, reason, at, by_server, lost)
    who = "the server" if by_server else "the server, answering the probe's close,"
    detail = f"{who} closed the connection with {code}" + (f" ({reason})" if reason else "")
    return Close(code, reason, at, by_server, detail)


def lost_connection_detail(error: str) -> str:
    return f"the connection was lost without a close frame ({error})"


# --------------------------------------------------------------------------------------------------
# Broadcasts: who got whose


@dataclass(frozen=True)
class Deliveries:
    """Which broadcast reached whom: ``latency_ms[sender][receiver]``; ``echoed`` senders got their own."""

    latency_ms: dict[int, dict[int, float]]
    echoed: frozenset[int]
    unattributed: int  # frames of the action that named no known sender, attributed in send order


def attribute_deliveries(
    action: str,
    sent_at: Mapping[int, float],
    received: Mapping[int, Sequence[ReceivedFrame]],
    senders: Mapping[str, int],
) -> Deliveries:
    """Match the broadcasts each client received to the clients that sent them.

    A broadcast is a JSON object whose ``type`` is ``action``; its sender is found from its ``message``
    text or its ``from`` user id in ``senders`` (both map to a client). A frame naming no known sender
    (a client that sent no token) is given to the earliest sender the receiver has not heard from yet.
    Frames that arrived before the sender sent are ignored. Latency is arrival minus send time.
    """
    latency: dict[int, dict[int, float]] = {sender: {} for sender in sent_at}
    echoed: set[int] = set()
    unattributed = 0
    order = sorted(sent_at, key=lambda sender: sent_at[sender])
    for receiver, arrived in received.items():
        for frame in arrived:
            parsed = json_object(frame.text)
            if parsed is None or parsed.get("type") != action:
                continue
            named = [parsed.get("message"), parsed.get("from")]
            sender = next(
                (senders[name] for name in named if isinstance(name, str) and name in senders), None
            )
            if sender is None:
                unattributed += 1
                sender = next(
                    (
                        candidate
                        for candidate in order
                        if candidate != receiver
                        and receiver not in latency[candidate]
                        and sent_at[candidate] <= frame.at
                    ),
                    None,
                )
            if sender is None or sender not in sent_at or frame.at < sent_at[sender]:
                continue
            if sender == receiver:
                echoed.add(sender)
                continue
            latency[sender].setdefault(receiver, round((frame.at - sent_at[sender]) * 1000, 3))
    return Deliveries(latency, frozenset(echoed), unattributed)


def delivered_to_all(deliveries: Deliveries, expected: Mapping[int, Sequence[int]]) -> set[int]:
    """The senders whose broadcast reached every client in ``expected[sender]``."""
    return {
        sender
        for sender, receivers in expected.items()
        if set(receivers) <= deliveries.latency_ms.get(sender, {}).keys()
    }


# --------------------------------------------------------------------------------------------------
# The table: which items are the probe's


def iso_timestamp(moment: datetime) -> str:
    """The handler's timestamp format (JavaScript's ``toISOString``), so the two compare as strings."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def owned_since(now_epoch_s: float) -> str:
    """Items without the probe's workspace are only its own if written after this (the probe's start)."""
    return iso_timestamp(datetime.fromtimestamp(now_epoch_s - CLOCK_SKEW_S, UTC))


def scan_request(table: str, workspace: str, tokens: Sequence[str], *, tokenless: bool) -> dict[str, Any]:
    """The consistent Scan that finds items which may be the probe's: its workspace, its tokens' users, and
    (``tokenless``: some client sent no token) items with neither a user nor a workspace."""
    values: dict[str, Any] = {":w": {"S": workspace}}
    conditions = ["workspaceId = :w"]
    if tokenless:
        conditions.append("(attribute_not_exists(userId) AND attribute_not_exists(workspaceId))")
    request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    if len(tokens) <= FILTERED_TOKENS_MAX:  # else the expression gets too long: filter here only
        names = [f":u{i}" for i in range(len(tokens))]
        if tokens:
            conditions.append(f"userId IN ({', '.join(names)})")
        values |= {name: {"S": token} for name, token in zip(names, tokens, strict=True)}
        request |= {"FilterExpression": " OR ".join(conditions), "ExpressionAttributeValues": values}
    return request


def plain_item(item: Mapping[str, Any]) -> dict[str, str]:
    """A DynamoDB item with its string attributes as plain strings (others are ignored)."""
    return {name: value["S"] for name, value in item.items() if isinstance(value, dict) and "S" in value}


def claim_items(
    items: Sequence[Mapping[str, str]], tokens: Mapping[int, str | None], workspace: str, since: str
) -> dict[int, dict[str, str]]:
    """Which stored item is which client's; ``tokens`` maps each connected client to the token it sent.

    An item can only be the probe's if it is in the probe's ``workspace``, or has no workspaceId and a
    ``timestamp`` not before ``since`` (the handler's ISO format). A client with a token owns its newest such
    item with that ``userId``; clients without one share the remaining items without a ``userId``, oldest
    first, in the order of ``tokens`` (connect order), which is a guess the detail column admits to.
    """

    def ours(item: Mapping[str, str]) -> bool:
        if "workspaceId" in item:
            return item["workspaceId"] == workspace
        return item.get("timestamp", "") >= since

    candidates = sorted((item for item in items if ours(item)), key=lambda item: item.get("timestamp", ""))
    claimed: dict[int, dict[str, str]] = {}
    owner = {token: index for index, token in tokens.items() if token is not None}
    for item in reversed(candidates):
        index = owner.get(item.get("userId", ""))
        if index is not None and index not in claimed:
            claimed[index] = dict(item)
    taken = {item["connectionId"] for item in claimed.values()}
    loose = [item for item in candidates if "userId" not in item and item["connectionId"] not in taken]
    tokenless = [index for index, token in tokens.items() if token is None]
    for index, item in zip(tokenless, loose, strict=False):
        claimed[index] = dict(item)
    return claimed


def ownership_condition(
    item: Mapping[str, str], workspace: str
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """A DeleteItem condition that holds only while ``item`` is still the one the probe saw as its own.

    Returns the expression, its values and its names (``timestamp`` is a reserved word).
    """
    if item.get("workspaceId") == workspace:
        return "workspaceId = :w", {":w": {"S": workspace}}, {}
    base = "attribute_not_exists(workspaceId) AND #ts = :t"
    values: dict[str, Any] = {":t": {"S": item.get("timestamp", "")}}
    if "userId" in item:
        return f"{base} AND userId = :u", values | {":u": {"S": item["userId"]}}, {"#ts": "timestamp"}
    return f"{base} AND attribute_not_exists(userId)", values, {"#ts": "timestamp"}


def never_in_index(item: Mapping[str, str], workspace: str) -> bool:
    """Whether ``item`` can never be in the sparse index under ``workspace``: it has another or none."""
    return item.get("workspaceId") != workspace


# --------------------------------------------------------------------------------------------------
# Verdicts: what each step's row says


@dataclass(frozen=True)
class StepResult:
    """One row's verdict: ``ok`` (None: skipped), the words, and the numbers it carries."""

    ok: bool | None
    detail: str
    latency_ms: float | None = None
    http_status: int | None = None
    close_code: int | None = None
    close_reason: str | None = None


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _bounded(detail: str, outcome: WaitOutcome) -> str:
    return f"{detail} ({outcome.note})" if outcome.note else detail


def _never(detail: str, outcome: WaitOutcome, started_at: float, found: str) -> str:
    after = (outcome.at if outcome.at is not None else started_at) - started_at
    return f"{detail}: {outcome.note}, and a read after that {found} ({after:.1f} s in)"


def stored_result(
    outcome: WaitOutcome,
    *,
    table: str,
    whose: str,
    item: Mapping[str, str] | None,
    tokenless: bool,
    connected_at: float | None,
    error: str | None,
    bound_s: float,
    started_at: float,
) -> StepResult:
    """``item-stored``: the item the handler stored for the client, or why there is none."""
    if outcome.end == "seen" and item is not None:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(item.items()) if k != "connectionId")
        if tokenless:
            shown += " (told apart by connect order: the client sent no token)"
        at = outcome.at if outcome.at is not None else started_at
        return StepResult(True, f"item stored: {shown}", latency_ms=ms(at - (connected_at or at)))
    if error:
        return StepResult(False, error)
    detail = f"no item for {whose} in {table}"
    if outcome.end == "never":
        return StepResult(False, _never(detail, outcome, started_at, "found none"))
    return StepResult(False, _bounded(f"{detail} after {bound_s:g} s", outcome))


def index_result(
    outcome: WaitOutcome,
    *,
    index: str,
    workspace: str,
    stored_workspace: str | None,
    error: str | None,
    bound_s: float,
    started_at: float,
) -> StepResult:
    """``index-visible``: the item found in the GSI under the probe's workspace, or why not."""
    if outcome.end == "seen":
        at = outcome.at if outcome.at is not None else started_at
        return StepResult(True, f"in {index} under workspaceId={workspace}", latency_ms=ms(at - started_at))
    if error:
        return StepResult(False, error)
    why = (
        "; the stored item has no workspaceId, so the sparse index never holds it"
        if stored_workspace is None
        else f"; the stored item has workspaceId={stored_workspace}"
        if stored_workspace != workspace
        else ""
    )
    if outcome.end == "never":  # the item itself says so: no wait needed beyond one Query
        return StepResult(False, f"not in {index} under workspaceId={workspace}{why}")
    return StepResult(
        False, _bounded(f"not in {index} under workspaceId={workspace} after {bound_s:g} s{why}", outcome)
    )


def removed_result(
    outcome: WaitOutcome,
    *,
    table: str,
    user: str | None,
    by_user_unseen: bool,
    since: float | None,
    error: str | None,
    bound_s: float,
    started_at: float,
) -> StepResult:
    """``item-removed``: the item gone after the disconnect (``since``: the close), or still there.

    ``by_user_unseen``: the client closed before its item was looked for, and no item was ever seen.
    """
    if outcome.end == "seen":
        detail = "the item is gone"
        if by_user_unseen:
            detail = (
                f"no item for user {user} in {table}; the client closed before the probe looked, so "
                "removed and never stored look alike"
            )
        latency = ms(outcome.at - since) if since is not None and outcome.at is not None else None
        return StepResult(True, detail, latency_ms=latency)
    if error:
        return StepResult(False, error)
    if outcome.end == "never":
        return StepResult(
            False, _never(f"the item is still in {table}", outcome, started_at, "still found it")
        )
    return StepResult(
        False, _bounded(f"the item is still in {table} {bound_s:g} s after the disconnect", outcome)
    )


def delivery_result(
    expected: Sequence[int], got: Mapping[int, float], outcome: WaitOutcome, *, bound_s: float, grace_s: float
) -> StepResult:
    """``deliver-<action>``: which of the clients open at the send got the broadcast, with latencies."""
    reached = [r for r in expected if r in got]
    missing = [r for r in expected if r not in got]
    detail = f"delivered to {len(reached)}/{len(expected)} other clients"
    if reached:
        detail += ": " + ", ".join(f"client {r} {got[r]:.1f} ms" for r in reached)
    if missing:
        clients = ", ".join(map(str, missing))
        if outcome.end == "never":
            detail += f"; nothing at client(s) {clients} within {grace_s:g} s after {outcome.note}"
        else:
            detail = _bounded(f"{detail}; nothing within {bound_s:g} s at client(s) {clients}", outcome)
    latency = max(got[r] for r in reached) if reached else None
    return StepResult(not missing, detail, latency_ms=latency)


def send_result(
    action: str, error_frame: str | None, *, echoed: bool, server_close: str | None
) -> StepResult:
    """``send-<action>``: the frame was written; it fails when the gateway answered with an error frame."""
    notes = (
        [f"the gateway answered with an error frame: {error_frame}"] if error_frame else [f"sent {action}"]
    )
    if echoed:
        notes.append("the sender got its own broadcast back")
    if server_close:
        notes.append(server_close)
    return StepResult(error_frame is None, "; ".join(notes))


def oversize_result(size: int, close: Close | None, *, begin: float, waited_s: float) -> StepResult:
    """``send-oversize``: a frame over 32 KB should make the gateway close with 1009."""
    if close is None:
        return StepResult(True, f"sent a {size:,}-byte frame; the connection stayed open for {waited_s:g} s")
    return StepResult(
        False,
        f"sent a {size:,}-byte frame; {close.detail}",
        latency_ms=ms(close.at - begin),
        close_code=close.code,
        close_reason=close.reason,
    )


def disconnect_result(close: Close | None, *, begin: float, now: float, close_s: float) -> StepResult:
    """``disconnect``: the probe sent close 1000; the server's answer (or its silence)."""
    if close is None:
        return StepResult(
            False,
            f"sent close {CLOSE_NORMAL}; no close frame came back within {close_s:g} s",
            latency_ms=ms(now - begin),
        )
    return StepResult(
        close.code != ABNORMAL_CLOSURE,
        f"sent close {CLOSE_NORMAL}; {close.detail}",
        latency_ms=ms(close.at - begin),
        close_code=close.code,
        close_reason=close.reason,
    )


def closed_reason(*, closed_early: bool, close: Close | None) -> str:
    """Why a client whose connection is closed skips what follows."""
    if closed_early:
        return "the client closed right after connecting (close_after_connect)"
    if close is not None and close.by_server:
        return close.detail
    return "the connection is closed"


# --------------------------------------------------------------------------------------------------
# Rows


class Rows:
    """The run's rows, one per client and step: when the step started and its verdict; details are masked
    (tokens) and clipped on the way in."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = list(tokens)
        self.rows: dict[tuple[int, str], tuple[datetime, StepResult]] = {}

    def add(self, client: int, step: str, started: datetime, result: StepResult) -> int:
        """Record ``result`` as the row of ``client`` and ``step``; returns 1 (rows added)."""
        shown = replace(result, detail=clip(mask_tokens(result.detail, self.tokens)))
        self.rows[(client, step)] = (started, shown)
        return 1

    def skip(self, client: int, steps: Sequence[str], reason: str, started: datetime, **values: Any) -> int:
        """Skipped rows for the ``steps`` of ``client`` not recorded yet; returns how many were added."""
        added = 0
        for step in steps:
            if (client, step) not in self.rows:
                added += self.add(client, step, started, StepResult(None, f"skipped: {reason}", **values))
        return added

    def has(self, client: int, step: str) -> bool:
        return (client, step) in self.rows

    def note(self, client: int, step: str, words: str) -> None:
        """Append ``words`` to an existing row's detail."""
        if (client, step) in self.rows:
            started, result = self.rows[(client, step)]
            if result.detail:
                self.rows[(client, step)] = (
                    started,
                    replace(result, detail=clip(f"{result.detail}; {words}")),
                )

    def frame(self, clients: Mapping[int, tuple[str | None, str | None]]) -> pd.DataFrame:
        """The rows as ``PROBE_COLUMNS`` in client, then ``STEPS`` order; ``clients`` gives each client's
        ``(user_hash, connection_id)``."""
        order = {step: position for position, step in enumerate(STEPS)}
        records = []
        for (index, step), (started, row) in sorted(
            self.rows.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])
        ):
            hashed, connection_id = clients[index]
            records.append(
                {
                    "client": index,
                    "user_hash": hashed,
                    "connection_id": connection_id,
                    "step": step,
                    "ok": row.ok,
                    "http_status": row.http_status,
                    "close_code": row.close_code,
                    "close_reason": row.close_reason,
                    "latency_ms": row.latency_ms,
                    "detail": row.detail,
                    "ts": pd.Timestamp(started),
                }
            )
        return frames.from_rows(records, PROBE_COLUMNS)


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per step (in ``STEPS`` order): clients, ok, failed, skipped, p50/p95 of passed latencies."""
    rows: list[dict[str, Any]] = []
    if len(frame):
        for step in [s for s in STEPS if s in set(frame["step"].dropna())]:
            part = frame[frame["step"] == step]
            ok = part["ok"].astype("boolean")
            passed = part.loc[ok.fillna(False).astype(bool), "latency_ms"].dropna().astype(float)
            rows.append(
                {
                    "step": step,
                    "clients": int(part["client"].nunique()),
                    "ok": int(ok.fillna(False).sum()),
                    "failed": int((~ok).fillna(False).sum()),
                    "skipped": int(ok.isna().sum()),
                    "p50_ms": float(passed.quantile(0.5)) if len(passed) else None,
                    "p95_ms": float(passed.quantile(0.95)) if len(passed) else None,
                }
            )
    return frames.from_rows(rows, SUMMARY_COLUMNS)
