"""The probe: connect to the WebSocket API the way the browser hook does, and watch what becomes of it.

Each client opens ``{websocket_url}?token=<e-mail>&workspaceId=<id>`` (the hook's query string), then the
probe checks, step by step, what a working stack would do: the handshake answers 101, the ``$connect``
handler stores an item for the connection, the item shows up in the ``workspaceIndex`` GSI, a ``message``,
``presence`` and ``typing`` frame reaches every other client of the workspace, and closing the socket makes
``$disconnect`` delete the item. ``run_probe`` returns one row per client per step (``PROBE_COLUMNS``);
``summarise`` condenses that to one row per step.

A step is ``ok`` True (it did what a healthy stack does), False (it did not; ``detail`` says what happened
instead), or ``<NA>``: skipped, because an earlier step of the same client failed or the plan leaves
nothing to check (``detail`` then starts with ``skipped:``). pandas treats ``<NA>`` as False when the
column is used as a mask, so ``frame[frame.ok]`` is what passed and ``frame[~frame.ok]`` what failed.

The connect response does not carry the connection id, so the probe finds each client's item by a
consistent Scan of the connections table for the client's ``userId`` (or, for a client that sends no
token, items of the probe's workspace without a ``userId``). On a large table that Scan reads every item
once per poll; connections tables are small by nature.

Against a real account (``target.kind == "aws"``) the probe writes: every client makes the handler store
one item. It therefore runs only with ``allow_aws=True``, only in a workspace of its own
(``kit-probe-<random>``), and in a ``finally`` closes every socket it opened and deletes, with
``DeleteItem`` conditioned on the item still being the one it saw, any item of its own that ``$disconnect``
left behind. That removal is part of opting in: it does not need ``--allow-writes`` (``Target.read_only``),
because it only undoes what the probe caused. In the lab, leftovers stay, as evidence.

What this module must not do: import the lab (it must work against AWS without it), raise for what a
client sees on the wire (refused connections, rejected handshakes and lost sockets are row details), or let
a token reach a row, a log line or an error message; tokens are e-mail addresses, so rows carry
``user_hash``, the same 12-hex-digit hash the handler logs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import secrets
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pandas as pd
import websocket
from botocore.exceptions import BotoCoreError, ClientError
from tqdm import tqdm

from kit import __version__
from kit.dynamo import direct_write
from kit.errors import ConfigurationError, error_facts
from kit.target import Target

log = logging.getLogger("kit.probe")

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
    "latency_ms": "Float64",  # see the step list in ``run_probe``
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
_CLOSE_NORMAL: Final = 1000
_PROBE_CLOSE_REASON: Final = b"kit probe done"
_FILTERED_TOKENS_MAX = 50  # beyond this the Scan is unfiltered (expression size), and filtered here
_DETAIL_MAX = 300
CLOCK_SKEW_S: Final = 60  # between this machine and the handler's, when comparing item timestamps


def new_run_id() -> str:
    return secrets.token_hex(4)


def default_token(client: int, run_id: str) -> str:
    """``probe-<client>-<run>@example.invalid``: e-mail shaped (AUTH_MODE=email) and unique per run.

    Unique per run so that an item left by an earlier run is never mistaken for this run's, and so the
    cleanup on a real account can only ever match the probe's own items.
    """
    return f"probe-{client}-{run_id}@example.invalid"


@dataclass(frozen=True)
class ProbeTimeouts:
    """How long each kind of wait may last, in seconds."""

    handshake_s: float = 10.0
    item_wait_s: float = 10.0  # for the item, for the index, and for the item to go after disconnect
    backoff_initial_s: float = 0.05  # polls of the table back off exponentially from here ...
    backoff_max_s: float = 1.0  # ... up to here
    delivery_wait_s: float = 5.0  # for broadcasts, error frames and the close after an oversize frame
    close_s: float = 5.0  # for the server's answer to the probe's close frame


@dataclass(frozen=True)
class ProbePlan:
    """What the probe does: how many clients, in which workspace, sending what, and how they misbehave.

    ``token_for(i)`` gives client ``i``'s token (the hook sends the user's e-mail); None means
    ``default_token``. ``include_token``/``include_workspace_id``/``close_after_connect``/
    ``send_oversize_frame`` reproduce client-side causes. ``remove_leftovers`` None means: on a real account
    yes, in the lab no. ``concurrency`` bounds how many clients connect or disconnect at once.
    """

    clients: int = 1
    workspace_id: str | None = None  # None: kit-probe-<run_id>
    token_for: Callable[[int], str] | None = field(default=None, repr=False)
    include_workspace_id: bool = True
    include_token: bool = True
    close_after_connect: bool = False
    send_oversize_frame: bool = False
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
            )
            if hasattr(client_plan, name)
        }
        return cls(**(fields | changes))


# --------------------------------------------------------------------------------------------------
# Pure parts


def user_hash(token: str) -> str:
    """The handler's stand-in for a user in logs (``kit.handler.app.user_hash``), so rows join with logs."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:12]


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


def public_url(url: str) -> str:
    """``url`` without its query string (it holds the token) or user info: safe for a row or a message."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def backoff_delays(initial_s: float, maximum_s: float, factor: float = 2.0) -> Iterator[float]:
    """``initial, initial*factor, ...`` capped at ``maximum``: the pauses between polls, forever."""
    delay = initial_s
    while True:
        yield min(delay, maximum_s)
        delay = min(delay * factor, maximum_s)


def redact(text: str, tokens: Sequence[str]) -> str:
    """``text`` with every token replaced by ``<user HASH>`` (broadcasts quote the sender's e-mail)."""
    for token in sorted({t for t in tokens if t}, key=len, reverse=True):
        text = text.replace(token, f"<user {user_hash(token)}>")
    return text


def _clip(text: str, limit: int = _DETAIL_MAX) -> str:
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
    parsed = _json_object(text)
    if parsed is None or "type" in parsed or "connectionId" not in parsed:
        return None
    message = parsed.get("message")
    return message if isinstance(message, str) else None


def gateway_connection_id(text: str) -> str | None:
    """The ``connectionId`` an API Gateway error frame names, or None."""
    parsed = _json_object(text)
    if parsed is None or gateway_error_message(text) is None:
        return None
    value = parsed.get("connectionId")
    return value if isinstance(value, str) and value else None


def _json_object(text: str) -> dict[str, Any] | None:
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
    for receiver, frames in received.items():
        for frame in frames:
            parsed = _json_object(frame.text)
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


def check_aws_opt_in(target: Target, plan: ProbePlan, *, allow_aws: bool) -> None:
    """Refuse to probe a real account unless asked to, and outside a workspace of the probe's own."""
    if target.kind != "aws":
        return
    url = public_url(target.websocket_url) if target.websocket_url else "the API"
    if not allow_aws:
        raise ConfigurationError(
            f"The probe writes to a real account: it opens {plan.clients} WebSocket connection(s) to {url}, "
            f"so the $connect handler stores one item per client in table {target.table} "
            f"({target.region}), under workspace {plan.workspace}; it removes them afterwards. "
            "Pass allow_aws=True to run_probe to run it."
        )
    if not plan.workspace.startswith(WORKSPACE_PREFIX):
        raise ConfigurationError(
            f"Against a real account the probe only uses a workspace of its own ({WORKSPACE_PREFIX}...), "
            f"never {plan.workspace!r}, so that it can never reach or remove a real user's connections; "
            "leave workspace_id unset."
        )


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per step (in ``STEPS`` order): clients, ok, failed, skipped, p50/p95 of passed latencies."""
    rows = []
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
    return _typed(pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)), SUMMARY_COLUMNS)


def _typed(frame: pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    return (
        frame.astype(dict(columns))
        if len(frame)
        else pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})
    )


def empty_frame() -> pd.DataFrame:
    return _typed(pd.DataFrame(columns=list(PROBE_COLUMNS)), PROBE_COLUMNS)


# --------------------------------------------------------------------------------------------------
# One client: its socket, and a thread that collects what arrives on it


class _ProbeSocket(websocket.WebSocket):
    """websocket-client answers a close frame by echoing one; the peer may already be gone, so never raise."""

    def send_close(self, status: int = _CLOSE_NORMAL, reason: bytes | str = b"") -> None:
        with contextlib.suppress(OSError, websocket.WebSocketException):
            super().send_close(status, reason)


@dataclass
class _Close:
    code: int
    reason: str
    at: float
    by_server: bool
    detail: str


class _Client:
    def __init__(self, index: int, token: str | None, url: str, arrived: threading.Condition) -> None:
        self.index = index
        self.token = token
        self.url = url
        self.user_hash = user_hash(token) if token is not None else None
        self.ws: Any = None
        self.connected_at: float | None = None
        self.connection_id: str | None = None
        self.item: dict[str, str] | None = None
        self.closed_early = False
        self.disconnected_at: float | None = None
        self.probe_closing = False
        self.close: _Close | None = None
        self.frames: list[ReceivedFrame] = []
        self._arrived = arrived
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_open(self) -> bool:
        return self.ws is not None and self.close is None and not self.probe_closing

    def has_closed(self) -> bool:
        return self.close is not None

    def start_receiving(self) -> None:
        self.ws.settimeout(0.2)  # the receiver polls, so it can be stopped without closing under it
        self._thread = threading.Thread(target=self._receive, name=f"kit-probe-{self.index}", daemon=True)
        self._thread.start()

    def frames_since(self, since: float) -> list[ReceivedFrame]:
        with self._arrived:
            return [frame for frame in self.frames if frame.at >= since]

    def _receive(self) -> None:
        ws = self.ws
        while not self._stop.is_set():
            try:
                opcode, data = ws.recv_data(control_frame=True)
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError, AttributeError) as exc:
                # AttributeError: websocket-client drops its socket when shut down under a read.
                if not self._stop.is_set():
                    self._closed(
                        ABNORMAL_CLOSURE,
                        "",
                        f"the connection was lost without a close frame ({type(exc).__name__})",
                    )
                return
            now = time.monotonic()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code, reason = close_payload(data)
                self._closed(code, reason, None, at=now)
                return
            if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
                with self._arrived:
                    self.frames.append(ReceivedFrame(now, text))
                    self._arrived.notify_all()

    def _closed(self, code: int, reason: str, detail: str | None, at: float | None = None) -> None:
        by_server = not self.probe_closing
        if detail is None:
            who = "the server" if by_server else "the server, answering the probe's close,"
            detail = f"{who} closed the connection with {code}" + (f" ({reason})" if reason else "")
        with self._arrived:
            self.close = _Close(code, reason, at or time.monotonic(), by_server, detail)
            self._arrived.notify_all()

    def shut(self) -> None:
        """Stop the receiver and close the TCP connection (websocket-client leaves it open after a close)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self.ws is not None:
            with contextlib.suppress(Exception):
                self.ws.shutdown()


# --------------------------------------------------------------------------------------------------
# A run


@dataclass(frozen=True)
class _Sent:
    started: datetime
    at: float  # time.monotonic() before the write
    write_ms: float
    expected: list[int]  # the clients open when it was sent: each should get the broadcast


@dataclass
class _Row:
    client: int
    step: str
    ok: bool | None
    started: datetime
    latency_ms: float | None = None
    detail: str | None = None
    http_status: int | None = None
    close_code: int | None = None
    close_reason: str | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _error_code(exc: BaseException) -> str:
    return error_facts(exc)[0]


def _plain(item: Mapping[str, Any]) -> dict[str, str]:
    """A DynamoDB item with its string attributes as plain strings (others are ignored)."""
    return {name: value["S"] for name, value in item.items() if isinstance(value, dict) and "S" in value}


class _Run:
    def __init__(self, target: Target, plan: ProbePlan, bar: Any) -> None:
        self.target = target
        self.plan = plan
        self.timeouts = plan.timeouts
        self.bar = bar
        self.rows: dict[tuple[int, str], _Row] = {}
        self.arrived = threading.Condition()
        self.tokens = [plan.token(i) for i in range(plan.clients)]
        # Items without the probe's workspace are only its own if written after it started (clock skew).
        self.since = _iso(datetime.fromtimestamp(time.time() - CLOCK_SKEW_S, UTC))
        self.clients = []
        for i, token in enumerate(self.tokens):
            sent_token = token if plan.include_token else None
            workspace = plan.workspace if plan.include_workspace_id else None
            url = probe_url(target.websocket_url or "", token=sent_token, workspace_id=workspace)
            self.clients.append(_Client(i, sent_token, url, self.arrived))
        self.cleanup_notes: list[str] = []
        self.dynamodb: Any = None

    # -- bookkeeping ----------------------------------------------------------------------------------

    def record(
        self, client: _Client, step: str, ok: bool | None, started: datetime, detail: str, **values: Any
    ) -> None:
        detail = _clip(redact(detail, self.tokens))
        self.rows[(client.index, step)] = _Row(client.index, step, ok, started, detail=detail, **values)
        if self.bar is not None:
            self.bar.update(1)

    def skip(self, client: _Client, steps: Sequence[str], reason: str, **values: Any) -> None:
        for step in steps:
            if (client.index, step) not in self.rows:
                self.record(client, step, None, _utcnow(), f"skipped: {reason}", **values)

    def frame(self) -> pd.DataFrame:
        order = {step: position for position, step in enumerate(STEPS)}
        records = []
        for (index, step), row in sorted(self.rows.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])):
            client = self.clients[index]
            records.append(
                {
                    "client": index,
                    "user_hash": client.user_hash,
                    "connection_id": client.connection_id,
                    "step": step,
                    "ok": row.ok,
                    "http_status": row.http_status,
                    "close_code": row.close_code,
                    "close_reason": row.close_reason,
                    "latency_ms": row.latency_ms,
                    "detail": row.detail,
                    "ts": pd.Timestamp(row.started),
                }
            )
        frame = _typed(pd.DataFrame(records, columns=list(PROBE_COLUMNS)), PROBE_COLUMNS)
        frame.attrs.update(
            workspace_id=self.plan.workspace,
            target=self.target.label,
            websocket_url=public_url(self.target.websocket_url or ""),
            cleanup=list(self.cleanup_notes),
        )
        return frame

    # -- the steps, in order --------------------------------------------------------------------------

    def run(self) -> None:
        # Built before anything is timed: a client's set-up is not a latency of the stack.
        self.dynamodb = self.target.client("dynamodb")
        self.in_pool(self.connect, self.clients)
        self.wait_for_items()
        self.wait_for_index()
        if self.plan.send_oversize_frame:
            self.send_oversize()
        for action in self.plan.actions:
            self.exchange(action)
        self.in_pool(self.disconnect, [c for c in self.clients if c.ws is not None and not c.closed_early])
        self.wait_for_removal()

    def in_pool(self, work: Callable[[_Client], None], clients: list[_Client]) -> None:
        if clients:
            with ThreadPoolExecutor(min(self.plan.concurrency, len(clients)), "kit-probe") as pool:
                list(pool.map(work, clients))

    def connect(self, client: _Client) -> None:
        started, begin, shown = _utcnow(), time.monotonic(), public_url(client.url)
        status: int | None = None
        try:
            client.ws = websocket.create_connection(
                client.url,
                timeout=self.timeouts.handshake_s,
                class_=_ProbeSocket,
                header=[f"User-Agent: {self.plan.user_agent}"],
            )
        except websocket.WebSocketBadStatusException as exc:
            status = int(exc.status_code)
            body = exc.resp_body.decode("utf-8", "replace").strip() if exc.resp_body else ""
            detail = f"the handshake was rejected with HTTP {status}" + (f": {body}" if body else "")
        except ConnectionRefusedError:
            hint = "is the lab up? `kit lab up`" if self.target.kind == "lab" else "check the WebSocket URL"
            detail = f"connection refused by {shown}; {hint}"
        except websocket.WebSocketTimeoutException:
            detail = f"no answer to the handshake from {shown} within {self.timeouts.handshake_s:g} s"
        except (websocket.WebSocketException, OSError) as exc:
            detail = f"could not connect to {shown}: {type(exc).__name__}: {exc}"
        else:
            client.connected_at = time.monotonic()
            status, detail = int(client.ws.getstatus() or 101), f"connected to {shown}"
            client.start_receiving()
        latency = _ms(time.monotonic() - begin)
        if client.ws is None:
            self.record(client, "connect", False, started, detail, http_status=status, latency_ms=latency)
            self.skip(client, self.plan.steps(), "the connection was not established")
            return
        self.record(client, "connect", True, started, detail, http_status=status, latency_ms=latency)
        if self.plan.close_after_connect:
            client.closed_early = True
            self.disconnect(client)
            self.skip(client, ("item-stored", "index-visible"), _closed_reason(client))

    def scan_items(self) -> list[dict[str, str]]:
        """Items that may be the probe's: a consistent Scan (all pages) filtered on workspace and tokens."""
        values: dict[str, Any] = {":w": {"S": self.plan.workspace}}
        conditions = ["workspaceId = :w"]
        tokens = [client.token for client in self.clients if client.token is not None]
        if len(tokens) < len(self.clients):
            conditions.append("(attribute_not_exists(userId) AND attribute_not_exists(workspaceId))")
        options: dict[str, Any] = {"TableName": self.target.table, "ConsistentRead": True}
        if len(tokens) <= _FILTERED_TOKENS_MAX:  # else the expression gets too long: filter here only
            names = [f":u{i}" for i in range(len(tokens))]
            if tokens:
                conditions.append(f"userId IN ({', '.join(names)})")
            values |= {name: {"S": token} for name, token in zip(names, tokens, strict=True)}
            options |= {"FilterExpression": " OR ".join(conditions), "ExpressionAttributeValues": values}
        items: list[dict[str, str]] = []
        for page in self.dynamodb.get_paginator("scan").paginate(**options):
            items.extend(_plain(item) for item in page.get("Items", []) if "connectionId" in item)
        return items

    def claim(self, items: list[dict[str, str]]) -> dict[int, dict[str, str]]:
        connected = sorted((c for c in self.clients if c.connected_at), key=lambda c: c.connected_at or 0)
        return claim_items(items, {c.index: c.token for c in connected}, self.plan.workspace, self.since)

    def poll(
        self, check: Callable[[], set[int]], pending: set[int], operation: str
    ) -> tuple[dict[int, float], str | None]:
        """Call ``check`` (which of ``pending`` are done) with backoff until all are or the item wait ends.

        Returns when each finished (monotonic) and, if a call failed, the error in words (polling stops).
        """
        done: dict[int, float] = {}
        deadline = time.monotonic() + self.timeouts.item_wait_s
        delays = backoff_delays(self.timeouts.backoff_initial_s, self.timeouts.backoff_max_s)
        while True:
            try:
                finished = check()
            except (ClientError, BotoCoreError) as exc:
                code = _error_code(exc)
                return done, f"{operation} on {self.target.table} failed with {code}: {_clip(str(exc), 160)}"
            now = time.monotonic()
            for index in finished & pending:
                done.setdefault(index, now)
            if not pending - done.keys() or now >= deadline:
                return done, None
            time.sleep(min(next(delays), deadline - now))

    def wait_for_items(self) -> None:
        waiting = [c for c in self.clients if c.ws is not None and not c.closed_early]
        if not waiting:
            return
        started = _utcnow()
        found: dict[int, dict[str, str]] = {}

        def check() -> set[int]:
            found.update(self.claim(self.scan_items()))
            return set(found)

        done, error = self.poll(check, {c.index for c in waiting}, "Scan")
        for client in waiting:
            if client.index not in done:
                whose = f"user {client.user_hash}" if client.token else "a client without a token"
                wait = self.timeouts.item_wait_s
                detail = error or f"no item for {whose} in {self.target.table} after {wait:g} s"
                self.record(client, "item-stored", False, started, detail)
                self.skip(client, ("index-visible",), "no item was stored")
                continue
            client.item = found[client.index]
            client.connection_id = client.item["connectionId"]
            shown = ", ".join(f"{k}={v}" for k, v in sorted(client.item.items()) if k != "connectionId")
            if client.token is None:
                shown += " (told apart by connect order: the client sent no token)"
            latency = _ms(done[client.index] - (client.connected_at or done[client.index]))
            self.record(client, "item-stored", True, started, f"item stored: {shown}", latency_ms=latency)

    def wait_for_index(self) -> None:
        waiting = [
            c for c in self.clients if c.item is not None and (c.index, "index-visible") not in self.rows
        ]
        if not waiting:
            return
        started, begin = _utcnow(), time.monotonic()
        visible: set[str] = set()
        workspace, index = self.plan.workspace, self.target.index
        by_id = {c.connection_id: c.index for c in waiting}

        def check() -> set[int]:
            pages = self.dynamodb.get_paginator("query").paginate(
                TableName=self.target.table,
                IndexName=index,
                KeyConditionExpression="workspaceId = :w",
                ExpressionAttributeValues={":w": {"S": workspace}},
            )
            for page in pages:
                visible.update(item["connectionId"]["S"] for item in page.get("Items", []))
            return {by_id[connection_id] for connection_id in visible if connection_id in by_id}

        done, error = self.poll(check, set(by_id.values()), f"Query on {index}")
        for client in waiting:
            assert client.item is not None
            if client.index in done:
                latency = _ms(done[client.index] - begin)
                detail = f"in {index} under workspaceId={workspace}"
                self.record(client, "index-visible", True, started, detail, latency_ms=latency)
                continue
            stored = client.item.get("workspaceId")
            why = (
                "; the stored item has no workspaceId, so the sparse index never holds it"
                if stored is None
                else f"; the stored item has workspaceId={stored}"
                if stored != workspace
                else ""
            )
            wait = self.timeouts.item_wait_s
            detail = error or f"not in {index} under workspaceId={workspace} after {wait:g} s{why}"
            self.record(client, "index-visible", False, started, detail)

    def send_oversize(self) -> None:
        """Each open client sends one frame over 32 KB; API Gateway closes such a connection with 1009."""
        body = oversize_body()
        size = len(body.encode())
        sent: dict[int, tuple[datetime, float]] = {}
        for client in self.clients:
            if client.ws is None or not client.is_open:
                if client.ws is not None:
                    self.skip(client, ("send-oversize",), _closed_reason(client))
                continue
            started, begin = _utcnow(), time.monotonic()
            try:
                client.ws.send(body)
            except (websocket.WebSocketException, OSError) as exc:
                self.record(client, "send-oversize", False, started, f"the send failed: {type(exc).__name__}")
                continue
            sent[client.index] = (started, begin)
        if not sent:
            return
        deadline = max(begin for _, begin in sent.values()) + self.timeouts.delivery_wait_s
        with self.arrived:
            self.arrived.wait_for(
                lambda: all(self.clients[i].close for i in sent), max(deadline - time.monotonic(), 0)
            )
        for index, (started, begin) in sent.items():
            client, close = self.clients[index], self.clients[index].close
            if close is None:
                wait = self.timeouts.delivery_wait_s
                detail = f"sent a {size:,}-byte frame; the connection stayed open for {wait:g} s"
                self.record(client, "send-oversize", True, started, detail)
                continue
            self.record(
                client,
                "send-oversize",
                False,
                started,
                f"sent a {size:,}-byte frame; {close.detail}",
                latency_ms=_ms(close.at - begin),
                close_code=close.code,
                close_reason=close.reason,
            )

    def exchange(self, action: str) -> None:
        """Every open client sends ``action`` once; then wait for the broadcasts at the others."""
        window = time.monotonic()
        sent = self.send_each(action)
        if not sent:
            return
        names = {c.token: c.index for c in self.clients if c.token is not None}
        names |= {message_text(c.index, self.plan.run_id): c.index for c in self.clients}
        sent_at = {index: one.at for index, one in sent.items()}

        def tally() -> Deliveries:
            received = {c.index: c.frames_since(window) for c in self.clients if c.ws is not None}
            return attribute_deliveries(action, sent_at, received, names)

        def complete() -> bool:
            latency = tally().latency_ms
            return all(set(one.expected) <= latency[index].keys() for index, one in sent.items())

        deadline = max(sent_at.values()) + self.timeouts.delivery_wait_s
        with self.arrived:
            self.arrived.wait_for(complete, max(deadline - time.monotonic(), 0))
        deliveries = tally()
        for index, one in sent.items():
            client = self.clients[index]
            errors = [
                f.text for f in client.frames_since(one.at) if gateway_error_message(f.text) is not None
            ]
            if errors and client.connection_id is None:
                client.connection_id = gateway_connection_id(errors[0])
            notes = (
                [f"the gateway answered with an error frame: {errors[0]}"] if errors else [f"sent {action}"]
            )
            if index in deliveries.echoed:
                notes.append("the sender got its own broadcast back")
            if client.close is not None and client.close.by_server:
                notes.append(client.close.detail)
            detail = "; ".join(notes)
            self.record(client, f"send-{action}", not errors, one.started, detail, latency_ms=one.write_ms)
            self.record_delivery(client, f"deliver-{action}", one, deliveries.latency_ms[index])

    def send_each(self, action: str) -> dict[int, _Sent]:
        """Each open client sends ``action``'s frame; clients that cannot are recorded here."""
        steps = (f"send-{action}", f"deliver-{action}")
        sent: dict[int, _Sent] = {}
        for client in self.clients:
            if client.ws is None:
                continue
            if not client.is_open:  # closed before, or by the server while the others sent
                self.skip(client, steps, _closed_reason(client))
                continue
            started, begin = _utcnow(), time.monotonic()
            try:
                client.ws.send(action_body(action, client.index, self.plan.run_id))
            except (websocket.WebSocketException, OSError) as exc:
                self.record(client, steps[0], False, started, f"the send failed: {type(exc).__name__}")
                self.skip(client, steps[1:], "the frame was not sent")
                continue
            expected = [c.index for c in self.clients if c.is_open and c is not client]
            sent[client.index] = _Sent(started, begin, _ms(time.monotonic() - begin), expected)
        return sent

    def record_delivery(self, client: _Client, step: str, sent: _Sent, got: Mapping[int, float]) -> None:
        if not sent.expected:
            self.skip(client, (step,), "no other open client in the workspace to deliver to")
            return
        reached = [r for r in sent.expected if r in got]
        missing = [r for r in sent.expected if r not in got]
        detail = f"delivered to {len(reached)}/{len(sent.expected)} other clients"
        if reached:
            detail += ": " + ", ".join(f"client {r} {got[r]:.1f} ms" for r in reached)
        if missing:
            wait = self.timeouts.delivery_wait_s
            detail += f"; nothing within {wait:g} s at client(s) {', '.join(map(str, missing))}"
        latency = max(got[r] for r in reached) if reached else None
        self.record(client, step, not missing, sent.started, detail, latency_ms=latency)

    def disconnect(self, client: _Client) -> None:
        """Close the socket as a browser does (1000); the row carries the server's answer."""
        started, close = _utcnow(), client.close
        if close is not None:  # the server closed first
            detail = f"already closed: {close.detail}"
            self.skip(client, ("disconnect",), detail, close_code=close.code, close_reason=close.reason)
            client.shut()
            return
        begin = client.disconnected_at = time.monotonic()
        client.probe_closing = True
        try:
            client.ws.send(
                struct.pack("!H", _CLOSE_NORMAL) + _PROBE_CLOSE_REASON, websocket.ABNF.OPCODE_CLOSE
            )
        except (websocket.WebSocketException, OSError) as exc:
            self.record(client, "disconnect", False, started, f"the close frame could not be sent: {exc}")
            client.shut()
            return
        with self.arrived:
            self.arrived.wait_for(client.has_closed, self.timeouts.close_s)
        client.shut()
        close = client.close
        if close is None:
            wait = self.timeouts.close_s
            detail = f"sent close {_CLOSE_NORMAL}; no close frame came back within {wait:g} s"
            self.record(
                client, "disconnect", False, started, detail, latency_ms=_ms(time.monotonic() - begin)
            )
            return
        self.record(
            client,
            "disconnect",
            close.code != ABNORMAL_CLOSURE,
            started,
            f"sent close {_CLOSE_NORMAL}; {close.detail}",
            latency_ms=_ms(close.at - begin),
            close_code=close.code,
            close_reason=close.reason,
        )

    def wait_for_removal(self) -> None:
        """Poll for each stored item to go: GetItem by key, or (closed before it was looked for) a Scan."""
        by_key = [c for c in self.clients if c.item is not None]
        by_user = [c for c in self.clients if c.closed_early and c.token is not None]
        for client in self.clients:
            if client.ws is not None and client not in by_key + by_user:
                self.skip(client, ("item-removed",), "no item was stored")
        if not by_key + by_user:
            return
        started = _utcnow()
        seen: dict[int, str] = {}

        def check() -> set[int]:
            gone = set()
            for client in by_key:
                key = {"connectionId": {"S": client.connection_id}}
                answer = self.dynamodb.get_item(TableName=self.target.table, Key=key, ConsistentRead=True)
                if "Item" not in answer:
                    gone.add(client.index)
            present = self.claim(self.scan_items()) if by_user else {}
            for client in by_user:
                if client.index in present:
                    seen[client.index] = present[client.index]["connectionId"]
                else:
                    gone.add(client.index)
            return gone

        done, error = self.poll(check, {c.index for c in by_key + by_user}, "GetItem/Scan")
        for client in by_key + by_user:
            client.connection_id = client.connection_id or seen.get(client.index)
            if client.index not in done:
                wait = self.timeouts.item_wait_s
                detail = error or f"the item is still in {self.target.table} {wait:g} s after the disconnect"
                self.record(client, "item-removed", False, started, detail)
                continue
            detail = "the item is gone"
            if client in by_user and client.index not in seen:
                detail = (
                    f"no item for user {client.user_hash} in {self.target.table}; the client closed before "
                    "the probe looked, so removed and never stored look alike"
                )
            since = client.disconnected_at or (client.close.at if client.close else None)
            latency = _ms(done[client.index] - since) if since is not None else None
            self.record(client, "item-removed", True, started, detail, latency_ms=latency)

    # -- cleanup --------------------------------------------------------------------------------------

    def close_all(self) -> None:
        for client in self.clients:
            client.shut()

    def remove_leftovers(self) -> None:
        """Delete what the probe caused and ``$disconnect`` left: only items that are verifiably its own."""
        try:
            if self.dynamodb is None:
                self.dynamodb = self.target.client("dynamodb")
            items = self.scan_items()
        except (ClientError, BotoCoreError) as exc:
            self._cleanup_note(
                f"the Scan failed with {_error_code(exc)}; nothing was removed", logging.WARNING
            )
            return
        mine = {
            item["connectionId"]: item for item in items if item.get("workspaceId") == self.plan.workspace
        }
        for index, item in self.claim(items).items():
            mine.setdefault(item["connectionId"], item)
            self.clients[index].connection_id = self.clients[index].connection_id or item["connectionId"]
        for connection_id, item in mine.items():
            condition, values, names = ownership_condition(item, self.plan.workspace)
            try:
                self.dynamodb.delete_item(
                    TableName=self.target.table,
                    Key={"connectionId": {"S": connection_id}},
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    **({"ExpressionAttributeNames": names} if names else {}),
                )
            except (ClientError, BotoCoreError) as exc:
                code = _error_code(exc)
                if code != "ConditionalCheckFailedException":  # else gone or changed: not the probe's now
                    self._cleanup_note(
                        f"DeleteItem of {connection_id} failed with {code}; delete it by hand",
                        logging.WARNING,
                    )
                continue
            self._cleanup_note(f"removed leftover item {connection_id}", logging.INFO)
            for client in self.clients:
                row = self.rows.get((client.index, "item-removed"))
                if client.connection_id == connection_id and row is not None and row.detail:
                    row.detail = _clip(f"{row.detail}; the probe's cleanup then deleted it")

    def _cleanup_note(self, message: str, level: int) -> None:
        note = f"cleanup of table {self.target.table} ({self.target.label}): {message}"
        self.cleanup_notes.append(note)
        log.log(level, "probe %s", note)


def _closed_reason(client: _Client) -> str:
    if client.closed_early:
        return "the client closed right after connecting (close_after_connect)"
    if client.close is not None and client.close.by_server:
        return client.close.detail
    return "the connection is closed"


def _iso(moment: datetime) -> str:
    """The handler's timestamp format (JavaScript's ``toISOString``), so the two compare as strings."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run_probe(
    target: Target,
    plan: ProbePlan | None = None,
    *,
    allow_aws: bool = False,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Run ``plan`` against ``target``; one row per client per step (``PROBE_COLUMNS``, ``STEPS`` order).

    Steps and their ``latency_ms``: ``connect`` (handshake time), ``item-stored`` (from the 101 to the poll
    that found the item), ``index-visible`` (from finding the item to finding it in the GSI),
    ``send-oversize`` (to the server's close), ``send-<action>`` (time to write the frame; fails when the
    gateway answers with an error frame), ``deliver-<action>`` (until the last other client had it),
    ``disconnect`` (close handshake), ``item-removed`` (from the close to the item's absence).

    What clients see on the wire never raises; a bad target or plan raises ``ConfigurationError``, and so
    does a real account without ``allow_aws=True``. ``progress`` None shows a bar for several clients when
    stderr is a terminal. ``frame.attrs`` holds the workspace id, the target's label and cleanup notes.
    """
    plan = plan or ProbePlan()
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
    check_aws_opt_in(target, plan, allow_aws=allow_aws)
    show = progress if progress is not None else plan.clients > 1 and sys.stderr.isatty()
    remove = plan.remove_leftovers if plan.remove_leftovers is not None else target.kind == "aws"
    bar = (
        tqdm(total=plan.clients * len(plan.steps()), desc="probe", unit="step", leave=False) if show else None
    )
    run = _Run(target, plan, bar)
    log.info(
        "probe: %d client(s) to %s in workspace %s",
        plan.clients,
        public_url(target.websocket_url),
        plan.workspace,
    )
    try:
        run.run()
    finally:
        run.close_all()
        if remove:
            run.remove_leftovers()
        if bar is not None:
            bar.close()
    return run.frame()
