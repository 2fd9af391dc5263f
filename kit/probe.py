"""The probe: connect to the WebSocket API the way the browser hook does, and watch what becomes of it.

Each client opens ``{websocket_url}?token=<e-mail>&workspaceId=<id>`` (the hook's query string), then the
probe checks, step by step, what a working stack would do: the handshake answers 101, the ``$connect``
handler stores an item for the connection, the item shows up in the ``workspaceIndex`` GSI, a ``message``,
``presence`` and ``typing`` frame reaches every other client of the workspace, and closing the socket makes
``$disconnect`` delete the item. ``run_probe`` returns one row per client per step
(``kit.probe_core.PROBE_COLUMNS``); ``kit.probe_core.summarise`` condenses that to one row per step.

This module is the shell: it opens the sockets, sends, reads the table and the stage's logs (each client's
frames are collected by :mod:`kit.probe_client`), and hands each answer to :mod:`kit.probe_core`, which
decides every step's verdict, and :mod:`kit.probe_waits`, which decides when each wait is over (on its
event, on the logs' evidence that the event will never come, or at its bound). It must not decide what the
core can decide.

A step is ``ok`` True (it did what a healthy stack does), False (it did not; ``detail`` says what happened
instead), or ``<NA>``: skipped, because an earlier step of the same client failed or the plan leaves
nothing to check (``detail`` then starts with ``skipped:``). pandas treats ``<NA>`` as False when the
column is used as a mask, so ``frame[frame.ok]`` is what passed and ``frame[~frame.ok]`` what failed.

The connect response does not carry the connection id, so the probe finds each client's item by a
consistent Scan of the connections table for the client's ``userId`` (or, for a client that sends no
token, items of the probe's workspace without a ``userId``). On a large table that Scan reads every item
once per poll; connections tables are small by nature. The stage's logs are read with FilterLogEvents
patterns naming only the probe's own user agents, request ids and connection ids.

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

import logging
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import websocket
from botocore.exceptions import BotoCoreError, ClientError
from tqdm import tqdm

from kit import logs, probe_logs
from kit import probe_core as core
from kit import probe_waits as waits
from kit.errors import AwsError, KitError, error_code
from kit.probe_client import Client, ProbeSocket
from kit.probe_core import ProbePlan
from kit.target import Target

log = logging.getLogger("kit.probe")


# --------------------------------------------------------------------------------------------------
# The stage's logs


class _GatewayLogs:
    """Reads the stage's execution and access logs for the lines about the probe's own connections.

    The groups are found once (``get_stage``); a read that fails makes the logs unreadable for the rest of
    the run, and every wait then runs to its bound, saying why. A group that does not exist yet is read
    again next time (the lab creates a group with its first line).
    """

    def __init__(self, target: Target, plan: ProbePlan, started_epoch_s: float) -> None:
        self.target = target
        self.run_id = plan.run_id
        self.user_agents = {i: core.client_user_agent(plan, i) for i in range(plan.clients)}
        self.start_ms = int((started_epoch_s - core.CLOCK_SKEW_S) * 1000)
        self.groups: dict[str, probe_logs.LogSource] | None = None
        self.unreadable: str | None = None
        self.missing: str | None = None  # the groups the last read did not find
        self.evidence = probe_logs.GatewayEvidence()
        self.limiter = logs.limiter_for(target.kind)  # one read is a call per group; 2 groups, every 0.5 s
        self.client: Any = None

    def prepare(self) -> None:
        """Find the groups and build the client (before anything is timed); failures make them unreadable."""
        try:
            self.groups, self.unreadable = probe_logs.log_groups_for_stage(
                self.target.api_id, self.target.stage, self._stage_answer()
            )
            if self.unreadable is None:
                self.client = self.target.client("logs")
        except KitError as exc:
            self.unreadable = str(exc)

    def read(self, connection_ids: Iterable[str]) -> probe_logs.GatewayEvidence | None:
        """What the logs say now (None: they cannot be read; ``unreadable`` says why).

        A read that finds new connects' request ids asks once more for their closing lines at once, rather
        than a read interval later (the ``is connecting`` line names the client, the closing one does not).
        """
        if self.groups is None:
            self.prepare()
        ids = list(connection_ids)
        for _ in range(2):
            terms = probe_logs.filter_terms(self.run_id, self.evidence, ids)
            patterns = probe_logs.filter_patterns(terms)
            if self.unreadable is None and len(patterns) > core.FILTER_PATTERNS_MAX:
                self.unreadable = f"the probe follows at most {core.FILTER_PATTERNS_MAX} filter patterns' ids"
            if self.unreadable is not None or not self.groups:
                return None
            lines = self._lines(self.groups, patterns)
            if lines is None:
                return None
            self.evidence = probe_logs.read_gateway_logs(lines, self.user_agents.values())
            if set(probe_logs.filter_terms(self.run_id, self.evidence, ids)) <= set(terms):
                break
        return self.evidence

    def _lines(
        self, groups: dict[str, probe_logs.LogSource], patterns: list[str]
    ) -> list[tuple[probe_logs.LogSource, str]] | None:
        """Every event of ``groups`` since the run began that matches one of ``patterns``, once each.

        The access log is read only when there is no execution log to read: both say when a request ended,
        and FilterLogEvents calls share an account's quota of 5 a second.
        """
        end_ms = int((time.time() + core.CLOCK_SKEW_S) * 1000)
        lines: dict[str, tuple[probe_logs.LogSource, str]] = {}
        missing = []
        try:
            for group, source in groups.items():
                if source == "access" and any(
                    g not in missing for g, s in groups.items() if s == "execution"
                ):
                    continue
                report = logs.FetchReport(group)
                for pattern in patterns:
                    for event in logs.filter_events(
                        self.client,
                        group,
                        start_ms=self.start_ms,
                        end_ms=end_ms,
                        filter_pattern=pattern,
                        limiter=self.limiter,
                        report=report,
                    ):
                        key = str(event.get("eventId") or (group, len(lines)))
                        lines[key] = (source, str(event.get("message", "")))
                if report.status == "missing":
                    missing.append(group)
        except KitError as exc:
            self.unreadable = str(exc)
            return None
        self.missing = f"log group(s) {', '.join(missing)} do not exist" if missing == list(groups) else None
        return list(lines.values())

    def _stage_answer(self) -> dict[str, Any] | None:
        if not self.target.api_id or not self.target.stage:
            return None
        try:
            answer = self.target.client("apigatewayv2").get_stage(
                ApiId=self.target.api_id, StageName=self.target.stage
            )
        except (ClientError, BotoCoreError) as exc:  # then the execution log's usual name is tried
            log.info(
                "probe: get_stage failed (%s); reading the execution log by its usual name",
                error_code(exc),
            )
            return None
        return dict(answer)


# --------------------------------------------------------------------------------------------------
# A session: one plan carried out against one target


@dataclass(frozen=True)
class _Sent:
    started: datetime
    at: float  # time.monotonic() before the write
    write_ms: float
    expected: list[int]  # the clients open when it was sent: each should get the broadcast


def _utcnow() -> datetime:
    return datetime.now(UTC)


# The next steps for a failed read of the table (the probe reads with the kit's own identity).
_READ_HINTS = {
    "AccessDeniedException": "give the kit's identity dynamodb:Scan, GetItem and Query on it and its index",
    "ResourceNotFoundException": "check the table name and region (--table, --region)",
}
_DELETE_HINTS = {"AccessDeniedException": "give the kit's identity dynamodb:DeleteItem, or delete it by hand"}


def _connect_authorization(target: Target) -> str:
    """The ``$connect`` route's ``AuthorizationType`` as ``GetRoutes`` shows it; NONE when there is no API id
    or the routes cannot be read (the probe then connects unsigned, as a browser does, and says why)."""
    if not target.api_id:
        return "NONE"
    try:
        pages = target.client("apigatewayv2").get_paginator("get_routes").paginate(ApiId=target.api_id)
        routes = [route for page in pages for route in page.get("Items", [])]
    except (ClientError, BotoCoreError) as exc:
        log.info("probe: get_routes failed (%s); the handshake is not signed", error_code(exc))
        return "NONE"
    connect = [route for route in routes if route.get("RouteKey") == "$connect"]
    return str(connect[0].get("AuthorizationType") or "NONE") if connect else "NONE"


def _signed_handshake_headers(target: Target, url: str) -> list[str]:
    """The SigV4 headers (service ``execute-api``, the API's region) of a handshake to ``url``, signed with
    the target's credentials, as an ``AWS_IAM`` route needs them; none when there are no credentials."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = target.session().get_credentials()
    if credentials is None:
        log.info("probe: no credentials to sign the handshake with; it is sent unsigned")
        return []
    request = AWSRequest(method="GET", url=core.signing_url(url))
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", target.region).add_auth(request)
    names = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token")
    return [f"{name}: {request.headers[name]}" for name in names if name in request.headers]


class _ProbeSession:
    """One run of a plan against a target: the clients' sockets, the reads of the table and the logs, and
    the rows :mod:`kit.probe_core` makes of what they gave."""

    def __init__(self, target: Target, plan: ProbePlan, bar: Any) -> None:
        self.target = target
        self.plan = plan
        self.timeouts = plan.timeouts
        self.first_read_s, self.grace_s = plan.timeouts.pace(target.kind)
        self.bar = bar
        self.arrived = threading.Condition()
        self.tokens = [plan.token(i) for i in range(plan.clients)]
        self.rows = core.Rows(self.tokens)
        started = time.time()
        self.since = core.owned_since(started)
        url = target.websocket_url or ""
        self.clients = [
            Client(i, plan.sent_token(i), plan.url(url, i), core.client_user_agent(plan, i), self.arrived)
            for i in range(plan.clients)
        ]
        self.signed = _connect_authorization(target) == "AWS_IAM"
        self.logs = _GatewayLogs(target, plan, started)
        self.logged_ids: dict[int, str] = {}  # connection ids the gateway's logs gave (not shown in rows)
        self.cleanup_notes: list[str] = []
        self.dynamodb: Any = None

    # -- bookkeeping ----------------------------------------------------------------------------------

    def record(self, client: Client, step: str, started: datetime, result: core.StepResult) -> None:
        added = self.rows.add(client.index, step, started, result)
        if self.bar is not None:
            self.bar.update(added)

    def skip(self, client: Client, steps: Iterable[str], reason: str, **values: Any) -> None:
        added = self.rows.skip(client.index, tuple(steps), reason, _utcnow(), **values)
        if self.bar is not None and added:
            self.bar.update(added)

    def frame(self) -> pd.DataFrame:
        frame = self.rows.frame({c.index: (c.user_hash, c.connection_id) for c in self.clients})
        frame.attrs.update(
            workspace_id=self.plan.workspace,
            target=self.target.label,
            websocket_url=core.public_url(self.target.websocket_url or ""),
            cleanup=list(self.cleanup_notes),
        )
        return frame

    def connection_ids(self) -> dict[int, str]:
        """Each client's connection id as far as known: its item's, else the gateway's log of its connect."""
        ids = {c.index: c.connection_id for c in self.clients if c.connection_id}
        return self.logged_ids | ids

    def evidence(self, wait: waits.TableWait | waits.DeliveryWait) -> probe_logs.GatewayEvidence | None:
        """Read the stage's logs for ``wait``; None (and the wait told why) when they cannot be read."""
        evidence = self.logs.read(self.connection_ids().values())
        if evidence is None:
            wait.logs_unreadable(self.logs.unreadable or "unknown")
            return None
        wait.logs_missing(self.logs.missing)
        self.logged_ids |= probe_logs.logged_connection_ids(evidence, self.logs.user_agents)
        return evidence

    def new_table_wait(self, clients: Iterable[int], *, logs: bool = True) -> waits.TableWait:
        wait = waits.TableWait(
            clients,
            now=time.monotonic(),
            bound_s=self.timeouts.item_wait_s,
            logs=logs,
            first_read_s=self.first_read_s,
        )
        if logs and self.logs.unreadable is not None:
            wait.logs_unreadable(self.logs.unreadable)
        return wait

    # -- the steps, in order --------------------------------------------------------------------------

    def run(self) -> None:
        # Built before anything is timed: a client's set-up is not a latency of the stack.
        self.dynamodb = self.target.client("dynamodb")
        self.logs.prepare()
        self.in_pool(self.connect, self.clients)
        self.wait_for_items()
        self.wait_for_index()
        if self.plan.send_oversize_frame:
            self.send_oversize()
        for action in self.plan.actions:
            self.exchange(action)
        self.in_pool(self.disconnect, [c for c in self.clients if c.ws is not None and not c.closed_early])
        self.wait_for_removal()

    def in_pool(self, work: Callable[[Client], None], clients: list[Client]) -> None:
        if clients:
            with ThreadPoolExecutor(min(self.plan.concurrency, len(clients)), "kit-probe") as pool:
                list(pool.map(work, clients))

    def connect(self, client: Client) -> None:
        started, begin, shown = _utcnow(), time.monotonic(), core.public_url(client.url)
        status: int | None = None
        try:
            signature = _signed_handshake_headers(self.target, client.url) if self.signed else []
            client.ws = websocket.create_connection(
                client.url,
                timeout=self.timeouts.handshake_s,
                class_=ProbeSocket,
                header=[f"User-Agent: {client.user_agent}", *signature],
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
            if self.signed:
                detail += " (the handshake SigV4-signed: $connect uses AWS_IAM)"
            client.start_receiving()
            if self.plan.join_after_connect:
                detail += self.join(client)
        latency = core.ms(time.monotonic() - begin)
        connected = client.ws is not None
        self.record(client, "connect", started, core.StepResult(connected, detail, latency, status))
        if not connected:
            self.skip(client, self.plan.steps(), "the connection was not established")
            return
        if self.plan.close_after_connect:
            client.closed_early = True
            self.disconnect(client)
            self.skip(client, ("item-stored", "index-visible"), client.closed_reason)

    def join(self, client: Client) -> str:
        """Send the join frame, as the app does right after connecting; a few words for the connect row."""
        assert client.ws is not None
        workspace = self.plan.workspace if self.plan.include_workspace_id else None
        try:
            client.ws.send(core.join_body(workspace, client.token))
        except (websocket.WebSocketException, OSError) as exc:
            return f"; the join message could not be sent: {type(exc).__name__}"
        return "; sent the join message"

    def scan_items(self) -> list[dict[str, str]]:
        """Items that may be the probe's: a consistent Scan (all pages) filtered on workspace and tokens."""
        tokens = [client.token for client in self.clients if client.token is not None]
        request = core.scan_request(
            self.target.table, self.plan.workspace, tokens, tokenless=len(tokens) < len(self.clients)
        )
        items: list[dict[str, str]] = []
        for page in self.dynamodb.get_paginator("scan").paginate(**request):
            items.extend(core.plain_item(item) for item in page.get("Items", []) if "connectionId" in item)
        return items

    def claim(self, items: list[dict[str, str]]) -> dict[int, dict[str, str]]:
        connected = sorted((c for c in self.clients if c.connected_at), key=lambda c: c.connected_at or 0)
        return core.claim_items(items, {c.index: c.token for c in connected}, self.plan.workspace, self.since)

    def poll(
        self,
        wait: waits.TableWait,
        check: Callable[[], set[int]],
        operation: str,
        read_logs: Callable[[waits.TableWait], None] | None = None,
    ) -> str | None:
        """Read the table with ``check`` (which clients are done) and the logs with ``read_logs`` (which
        clients' events are over) as ``wait`` says, until it is over; a failed read ends it, in words."""
        delays = waits.backoff_delays(self.timeouts.backoff_initial_s, self.timeouts.backoff_max_s)
        while True:
            started = time.monotonic()
            try:
                finished = check()
            except (ClientError, BotoCoreError) as exc:
                return str(self.table_error(exc, operation))
            wait.table_read(started, finished, time.monotonic())
            if wait.over(time.monotonic()):
                return None
            if read_logs is not None and wait.logs_due(time.monotonic()):
                read_logs(wait)
            time.sleep(wait.pause(time.monotonic(), next(delays)))

    def table_error(
        self,
        exc: BaseException,
        operation: str,
        hints: dict[str, str] | None = None,
        otherwise: str | None = None,
    ) -> AwsError:
        """``exc``, raised by ``operation`` on the table, in the kit's words (for a row or a cleanup note)."""
        return AwsError.from_botocore(
            exc,
            "dynamodb",
            getattr(exc, "operation_name", None) or operation,
            self.target.table,
            resource_type="table",
            region=self.target.region,
            hints=_READ_HINTS if hints is None else hints,
            otherwise=otherwise,
        )

    def wait_for_items(self) -> None:
        waiting = [c for c in self.clients if c.ws is not None and not c.closed_early]
        if not waiting:
            return
        started, wait = _utcnow(), self.new_table_wait(c.index for c in waiting)
        found: dict[int, dict[str, str]] = {}
        agents = {c.index: c.user_agent for c in waiting}

        def check() -> set[int]:
            found.update(self.claim(self.scan_items()))
            return set(found)

        def read_logs(wait: waits.TableWait) -> None:
            evidence = self.evidence(wait)
            if evidence is not None:
                ended = probe_logs.connects_ended(evidence, agents)
                wait.logs_read(time.monotonic(), ended, "the gateway's logs show its $connect finished")

        error = self.poll(wait, check, "Scan", read_logs)
        for client in waiting:
            outcome = wait.outcome(client.index)
            if outcome.end == "seen":
                client.item = found[client.index]
                client.connection_id = client.item["connectionId"]
            whose = f"user {client.user_hash}" if client.token else "a client without a token"
            result = core.stored_result(
                outcome,
                table=self.target.table,
                whose=whose,
                item=client.item,
                tokenless=client.token is None,
                connected_at=client.connected_at,
                error=error,
                bound_s=wait.bound_s,
                started_at=wait.started_at,
            )
            self.record(client, "item-stored", started, result)
            if client.item is None:
                self.skip(client, ("index-visible",), "no item was stored")

    def wait_for_index(self) -> None:
        waiting = [
            c for c in self.clients if c.item is not None and not self.rows.has(c.index, "index-visible")
        ]
        if not waiting:
            return
        started, wait = _utcnow(), self.new_table_wait((c.index for c in waiting), logs=False)
        workspace, index = self.plan.workspace, self.target.index
        never = {c.index for c in waiting if c.item is not None and core.never_in_index(c.item, workspace)}
        wait.mark_ended(wait.started_at, never, "the stored item cannot be in the index under the workspace")
        visible: set[str] = set()
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

        error = self.poll(wait, check, "Query")
        for client in waiting:
            assert client.item is not None
            result = core.index_result(
                wait.outcome(client.index),
                index=index,
                workspace=workspace,
                stored_workspace=client.item.get("workspaceId"),
                error=error,
                bound_s=wait.bound_s,
                started_at=wait.started_at,
            )
            self.record(client, "index-visible", started, result)

    def send_oversize(self) -> None:
        """Each open client sends one frame over 32 KB; API Gateway closes such a connection with 1009."""
        body = core.oversize_body()
        size = len(body.encode())
        sent: dict[int, tuple[datetime, float]] = {}
        for client in self.clients:
            if client.ws is None or not client.is_open:
                if client.ws is not None:
                    self.skip(client, ("send-oversize",), client.closed_reason)
                continue
            started, begin = _utcnow(), time.monotonic()
            try:
                client.ws.send(body)
            except (websocket.WebSocketException, OSError) as exc:
                failed = core.StepResult(False, f"the send failed: {type(exc).__name__}")
                self.record(client, "send-oversize", started, failed)
                continue
            sent[client.index] = (started, begin)
        if not sent:
            return
        # The gateway's close ends this wait; a stack without the limit leaves it open to the bound.
        deadline = max(begin for _, begin in sent.values()) + self.timeouts.delivery_wait_s
        with self.arrived:
            self.arrived.wait_for(
                lambda: all(self.clients[i].close for i in sent), max(deadline - time.monotonic(), 0)
            )
        for index, (started, begin) in sent.items():
            client = self.clients[index]
            result = core.oversize_result(
                size, client.close, begin=begin, waited_s=self.timeouts.delivery_wait_s
            )
            self.record(client, "send-oversize", started, result)

    def exchange(self, action: str) -> None:
        """Every open client sends ``action`` once; then wait for the broadcasts at the others."""
        window = time.monotonic()
        sent = self.send_each(action)
        if not sent:
            return
        names = {c.token: c.index for c in self.clients if c.token is not None}
        names |= {core.message_text(c.index, self.plan.run_id): c.index for c in self.clients}
        sent_at = {index: one.at for index, one in sent.items()}
        expected = {index: one.expected for index, one in sent.items()}
        counts = {index: self.clients[index].messages_sent for index in sent}

        def tally() -> core.Deliveries:
            received = {c.index: c.frames_since(window) for c in self.clients if c.ws is not None}
            return core.attribute_deliveries(action, sent_at, received, names)

        wait = waits.DeliveryWait(
            sent,
            now=max(sent_at.values()),
            bound_s=self.timeouts.delivery_wait_s,
            grace_s=self.grace_s,
            first_read_s=self.first_read_s,
        )
        if self.logs.unreadable is not None:
            wait.logs_unreadable(self.logs.unreadable)
        # Senders with no other open client expect nothing: their rows are skipped, nothing to wait for.
        wait.delivered(wait.started_at, {index for index, one in sent.items() if not one.expected})
        while True:
            with self.arrived:  # looked at and waited on under the lock, so no frame slips between the two
                now = time.monotonic()
                wait.delivered(now, core.delivered_to_all(tally(), expected))
                answered = {i for i in sent if self.clients[i].error_frames_since(sent_at[i])}
                wait.mark_ended(now, answered, "the gateway answered the sender with an error frame")
                if wait.over(now):
                    break
                if not wait.logs_due(now):
                    self.arrived.wait(wait.pause(now))
                    continue
            evidence = self.evidence(wait)  # outside the lock: the receivers keep receiving meanwhile
            if evidence is not None:
                handled = probe_logs.messages_handled(evidence, self.connection_ids(), counts)
                wait.logs_read(
                    time.monotonic(), handled, "the gateway's logs show the sender's message handled"
                )
        deliveries, now = tally(), time.monotonic()
        for index, one in sent.items():
            client = self.clients[index]
            errors = client.error_frames_since(one.at)
            if errors and client.connection_id is None:
                client.connection_id = core.gateway_connection_id(errors[0])
            server_close = (
                client.close.detail if client.close is not None and client.close.by_server else None
            )
            send = core.send_result(
                action,
                errors[0] if errors else None,
                echoed=index in deliveries.echoed,
                server_close=server_close,
            )
            self.record(
                client, f"send-{action}", one.started, core.StepResult(send.ok, send.detail, one.write_ms)
            )
            if not one.expected:
                self.skip(
                    client, (f"deliver-{action}",), "no other open client in the workspace to deliver to"
                )
                continue
            result = core.delivery_result(
                one.expected,
                deliveries.latency_ms[index],
                wait.outcome(index, now),
                bound_s=wait.bound_s,
                grace_s=wait.grace_s,
            )
            self.record(client, f"deliver-{action}", one.started, result)

    def send_each(self, action: str) -> dict[int, _Sent]:
        """Each open client sends ``action``'s frame; clients that cannot are recorded here."""
        steps = (f"send-{action}", f"deliver-{action}")
        sent: dict[int, _Sent] = {}
        for client in self.clients:
            if client.ws is None:
                continue
            if not client.is_open:  # closed before, or by the server while the others sent
                self.skip(client, steps, client.closed_reason)
                continue
            started, begin = _utcnow(), time.monotonic()
            try:
                client.ws.send(core.action_body(action, client.index, self.plan.run_id))
            except (websocket.WebSocketException, OSError) as exc:
                self.record(
                    client,
                    steps[0],
                    started,
                    core.StepResult(False, f"the send failed: {type(exc).__name__}"),
                )
                self.skip(client, steps[1:], "the frame was not sent")
                continue
            client.messages_sent += 1
            expected = [c.index for c in self.clients if c.is_open and c is not client]
            sent[client.index] = _Sent(started, begin, core.ms(time.monotonic() - begin), expected)
        return sent

    def disconnect(self, client: Client) -> None:
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
                struct.pack("!H", core.CLOSE_NORMAL) + core.PROBE_CLOSE_REASON, websocket.ABNF.OPCODE_CLOSE
            )
        except (websocket.WebSocketException, OSError) as exc:
            failed = core.StepResult(False, f"the close frame could not be sent: {exc}")
            self.record(client, "disconnect", started, failed)
            client.shut()
            return
        with self.arrived:
            self.arrived.wait_for(client.has_closed, self.timeouts.close_s)
        client.shut()
        result = core.disconnect_result(
            client.close, begin=begin, now=time.monotonic(), close_s=self.timeouts.close_s
        )
        self.record(client, "disconnect", started, result)

    def wait_for_removal(self) -> None:
        """Poll for each stored item to go: GetItem by key, or (closed before it was looked for) a Scan."""
        by_key = [c for c in self.clients if c.item is not None]
        by_user = [c for c in self.clients if c.closed_early and c.token is not None]
        for client in self.clients:
            if client.ws is not None and client not in by_key + by_user:
                self.skip(client, ("item-removed",), "no item was stored")
        if not by_key + by_user:
            return
        started, wait = _utcnow(), self.new_table_wait(c.index for c in by_key + by_user)
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

        def read_logs(wait: waits.TableWait) -> None:
            evidence = self.evidence(wait)
            if evidence is not None:
                ids = self.connection_ids() | seen
                ended = probe_logs.disconnects_ended(evidence, ids)
                wait.logs_read(time.monotonic(), ended, "the gateway's logs show its $disconnect finished")

        error = self.poll(wait, check, "GetItem", read_logs)
        for client in by_key + by_user:
            client.connection_id = client.connection_id or seen.get(client.index)
            since = client.disconnected_at or (client.close.at if client.close else None)
            result = core.removed_result(
                wait.outcome(client.index),
                table=self.target.table,
                user=client.user_hash,
                by_user_unseen=client in by_user and client.index not in seen,
                since=since,
                error=error,
                bound_s=wait.bound_s,
                started_at=wait.started_at,
            )
            self.record(client, "item-removed", started, result)

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
            failed = self.table_error(
                exc,
                "Scan",
                otherwise=f"nothing was removed; delete the items of workspace {self.plan.workspace} by hand",
            )
            self._cleanup_note(str(failed), logging.WARNING)
            return
        mine = {
            item["connectionId"]: item for item in items if item.get("workspaceId") == self.plan.workspace
        }
        for index, item in self.claim(items).items():
            mine.setdefault(item["connectionId"], item)
            self.clients[index].connection_id = self.clients[index].connection_id or item["connectionId"]
        for connection_id, item in mine.items():
            condition, values, names = core.ownership_condition(item, self.plan.workspace)
            try:
                self.dynamodb.delete_item(
                    TableName=self.target.table,
                    Key={"connectionId": {"S": connection_id}},
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    **({"ExpressionAttributeNames": names} if names else {}),
                )
            except (ClientError, BotoCoreError) as exc:
                if error_code(exc) != "ConditionalCheckFailedException":  # else gone or changed: not ours now
                    failed = self.table_error(
                        exc, "DeleteItem", _DELETE_HINTS, otherwise=f"delete item {connection_id} by hand"
                    )
                    self._cleanup_note(str(failed), logging.WARNING)
                continue
            self._cleanup_note(f"removed leftover item {connection_id}", logging.INFO)
            for client in self.clients:
                if client.connection_id == connection_id:
                    self.rows.note(client.index, "item-removed", "the probe's cleanup then deleted it")

    def _cleanup_note(self, message: str, level: int) -> None:
        note = f"cleanup of table {self.target.table} ({self.target.label}): {message}"
        self.cleanup_notes.append(note)
        log.log(level, "probe %s", note)


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
    core.check_websocket_url(target)
    core.check_aws_opt_in(target, plan, allow_aws=allow_aws)
    show = progress if progress is not None else plan.clients > 1 and sys.stderr.isatty()
    remove = plan.remove_leftovers if plan.remove_leftovers is not None else target.kind == "aws"
    bar = (
        tqdm(total=plan.clients * len(plan.steps()), desc="probe", unit="step", leave=False) if show else None
    )
    session = _ProbeSession(target, plan, bar)
    log.info(
        "probe: %d client(s) to %s in workspace %s",
        plan.clients,
        core.public_url(target.websocket_url or ""),
        plan.workspace,
    )
    try:
        session.run()
    finally:
        session.close_all()
        if remove:
            session.remove_leftovers()
        if bar is not None:
            bar.close()
    return session.frame()
