"""Many WebSocket clients in one asyncio loop: open them with bounded concurrency, time what they receive.

Each client connects as a user of one workspace (``?token=<email>&workspaceId=<ws>``); its handshake completes
only after the lab's ``$connect`` Lambda answered, so a timed open is a timed store. A reader task per client
stamps every incoming message with ``time.monotonic()`` the moment it arrives and files it in an ``Inbox``
under its tag (the broadcast's ``message`` text), which is how fan-out latencies are measured.
``time.monotonic`` is the system-wide CLOCK_MONOTONIC on Linux, so stamps from other processes compare.

Must not: connect anywhere but the URL given (no proxy), or keep a socket open after ``close_clients``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.protocol import State


def user_email(prefix: str, index: int) -> str:
    """The token (an e-mail, the lab's AUTH_MODE=email) of bench user ``index``; unique per prefix."""
    return f"{prefix}-{index}@bench.example"


def connect_url(websocket_url: str, *, token: str, workspace_id: str) -> str:
    return f"{websocket_url}?{urlencode({'token': token, 'workspaceId': workspace_id})}"


def message_tag(text: str | bytes) -> str | None:
    """The tag of a broadcast frame (its ``message`` field), or None for any other frame (pure)."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    tag = body.get("message") if isinstance(body, dict) else None
    return tag if isinstance(tag, str) else None


def ensure_open_files(needed: int) -> None:
    """Raise this process's soft limit on open files towards ``needed`` (never above the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Inbox:
    """When each tagged message arrived (monotonic seconds), across all clients."""

    def __init__(self) -> None:
        self._times: dict[str, list[float]] = {}
        self._changed = asyncio.Event()
        self.untagged = 0

    def record(self, tag: str | None, at: float) -> None:
        if tag is None:
            self.untagged += 1
            return
        self._times.setdefault(tag, []).append(at)
        self._changed.set()

    def times(self, tag: str) -> list[float]:
        return list(self._times.get(tag, ()))

    async def wait(self, tag: str, expected: int, *, quiet_s: float, cap_s: float) -> list[float]:
        """Arrival times of ``tag``: once ``expected`` came, or none for ``quiet_s``, or at ``cap_s``."""
        deadline = time.monotonic() + cap_s
        while len(self._times.get(tag, ())) < expected:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(quiet_s, remaining))
            except TimeoutError:
                break
        return self.times(tag)


@dataclass(eq=False)
class BenchClient:
    index: int
    user_id: str
    websocket: ClientConnection
    reader: asyncio.Task[None] | None = None

    @property
    def is_open(self) -> bool:
        return self.websocket.state is State.OPEN

    async def send(self, text: str) -> None:
        await self.websocket.send(text)


@dataclass
class Opened:
    """What ``open_clients`` got: the open clients, failures by reason, handshake times and wall time."""

    clients: list[BenchClient]
    failures: dict[str, int] = field(default_factory=dict)
    handshake_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


async def _read(client: BenchClient, inbox: Inbox) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for message in client.websocket:
            inbox.record(message_tag(message), time.monotonic())


def _reason(exc: BaseException) -> str:
    if isinstance(exc, InvalidStatus):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, TimeoutError):
        return "handshake timeout"
    return type(exc).__name__


async def open_clients(
    websocket_url: str,
    *,
    workspace_id: str,
    count: int,
    concurrency: int,
    prefix: str,
    inbox: Inbox,
    open_timeout_s: float = 60.0,
) -> Opened:
    """Open ``count`` clients of ``workspace_id``, at most ``concurrency`` handshakes at a time."""
    ensure_open_files(count + 256)
    slots = asyncio.Semaphore(concurrency)
    opened = Opened(clients=[])

    async def open_one(index: int) -> None:
        user_id = user_email(prefix, index)
        url = connect_url(websocket_url, token=user_id, workspace_id=workspace_id)
        async with slots:
            started = time.monotonic()
            try:
                websocket = await connect(
                    url,
                    open_timeout=open_timeout_s,
                    ping_interval=None,
                    close_timeout=5,
                    compression=None,
                    proxy=None,
                    max_size=None,
                )
            except (OSError, TimeoutError, InvalidStatus, ConnectionClosed) as exc:
                reason = _reason(exc)
                opened.failures[reason] = opened.failures.get(reason, 0) + 1
                return
            opened.handshake_s.append(time.monotonic() - started)
        client = BenchClient(index, user_id, websocket)
        client.reader = asyncio.create_task(_read(client, inbox))
        opened.clients.append(client)

    started = time.monotonic()
    await asyncio.gather(*(open_one(index) for index in range(count)))
    opened.wall_s = time.monotonic() - started
    opened.clients.sort(key=lambda client: client.index)
    return opened


async def ping_all(
    clients: Sequence[BenchClient], *, concurrency: int, timeout_s: float = 10.0
) -> list[bool]:
    """For each client: is it open, and did it answer a ping within ``timeout_s``?"""
    slots = asyncio.Semaphore(concurrency)

    async def ping(client: BenchClient) -> bool:
        if not client.is_open:
            return False
        async with slots:
            try:
                pong = await client.websocket.ping()
                await asyncio.wait_for(pong, timeout=timeout_s)
            except (ConnectionClosed, TimeoutError):
                return False
        return True

    return list(await asyncio.gather(*(ping(client) for client in clients)))


async def close_clients(clients: Sequence[BenchClient], *, concurrency: int) -> None:
    """Close every client (a normal 1000 close, so the lab runs ``$disconnect``) and stop its reader."""
    slots = asyncio.Semaphore(concurrency)

    async def close(client: BenchClient) -> None:
        async with slots:
            with contextlib.suppress(Exception):
                await client.websocket.close()
        if client.reader is not None:
            client.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await client.reader

    await asyncio.gather(*(close(client) for client in clients))
