"""``python -m bench peers`` (``make bench-peers``): the lab and serverless-offline side by side, in turns.

Same handler (``kit/handler/app.py``; the peer's ``bench/peers/app.py`` is a symlink to it), same engine
(DynamoDB Local started by ``kit.lab.engines.start_dynamodb_local``, the table made by
``kit.dynamo.schema.create_table``: the lab does both inside its own process, the peer's are started here),
same clients (:mod:`bench.clients`). Each stack runs alone: serverless-offline first, then the lab in a
process of its own (:class:`bench.processes.LabHost`), never both at once. For every client count (1, 10
and 50 by default), on each stack:

* warm-up: connections opened and closed at 1, 2, 4, ... up to that many at once, untimed, so every worker
  or runner process the count needs exists and is warm; cold starts are not what is measured;
* connect: ``rounds`` rounds of ``connects`` handshakes with that many in flight (one: in sequence), each
  alternating with the same number of raw ``put_item`` calls from as many threads to the stack's engine
  (:func:`bench.raw.put_items`); the table is counted after the handshakes, then emptied by ``$disconnect``
  (clients closed a batch at a time, see ``_close``);
* hold: that many connections held ``hold_s``, then checked: open, answering a ping, stored;
* broadcast (two clients or more): one held client sends ``{"action": "message"}``; every other one stamps
  the frame's arrival; delivery p50/p99 from the send, pooled over ``broadcasts`` timed ones after one
  untimed.

Then :mod:`bench.versus` compares, prints the table and writes the ``peers`` section of the results file.

Must not: run both stacks at once, time set-up or clean-up, or leave a process behind (the lab host, the
peer's process group and its engine are stopped on every way out).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench import clients as ws
from bench import processes, raw
from bench.figures import percentile
from bench.lab import drain
from bench.machine import describe_machine
from bench.peer_offline import (
    FUNCTION_TIMEOUT_S,
    OfflinePorts,
    OfflineServer,
    find_node,
    installed_versions,
    offline_environment,
    python_prefix,
)
from bench.processes import LabHost
from bench.results_file import read_results, write_results
from bench.versus import (
    PEER,
    ClientsResult,
    Comparison,
    PeerSettings,
    compare_all,
    peers_section,
    render_table,
)
from kit.dynamo import schema
from kit.errors import ConfigurationError
from kit.lab import engines
from kit.target import DEFAULT_LAB_REGION, Target

Progress = Callable[[str], None]

CLOSE_BATCH_MIN = 5  # $disconnects in flight while closing, at the least
DISCONNECT_WAIT_S = 30.0
DISCONNECT_POLL_S = 0.02
RAW_WARM_UP_ITEMS = 200
BROADCAST_QUIET_S = 5.0
BROADCAST_CAP_S = 30.0
PING_CONCURRENCY = 64
RAW_THREADS_MAX = 64  # the DynamoDB client's pool is sized for this many threads
SETTLE_INTERVAL_S = 0.25
SETTLED_CPU_SHARE = 0.1  # under 10% of a CPU over an interval: the stack is idle
SETTLE_TIMEOUT_S = 10.0


@dataclass
class Stack:
    """One side, up: where its clients connect, its engine (for the table's counts and raw puts)."""

    name: str
    websocket_url: str
    dynamodb: Any
    table: str
    roots: Sequence[int]  # process trees: their CPU says when the stack is idle, and what a $connect costs


@dataclass(frozen=True)
class Turn:
    """One stack's run: the stack, the sizes, the inbox its clients file frames in, where progress goes."""

    stack: Stack
    settings: PeerSettings
    inbox: ws.Inbox
    progress: Progress


def _ms(seconds: float) -> float:
    return seconds * 1000


def _stack_cpu_s(stack: Stack) -> float:
    """CPU seconds so far of the stack's live processes (a process that ended meanwhile is lost)."""
    return sum(sample.cpu_s for root in stack.roots for sample in processes.sample_tree(root))


async def _settle(stack: Stack) -> None:
    """Wait (bounded) until the stack's processes are nearly idle: log lines written, workers done."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    last = _stack_cpu_s(stack)
    while time.monotonic() < deadline:
        await asyncio.sleep(SETTLE_INTERVAL_S)
        now = _stack_cpu_s(stack)
        if now - last < SETTLE_INTERVAL_S * SETTLED_CPU_SHARE:
            return
        last = now


async def _open(stack: Stack, inbox: ws.Inbox, *, workspace: str, count: int, at_once: int) -> ws.Opened:
    """``count`` clients of ``workspace`` (users named after it), at most ``at_once`` handshakes in flight."""
    return await ws.open_clients(
        stack.websocket_url,
        workspace_id=workspace,
        count=count,
        concurrency=at_once,
        prefix=workspace,
        inbox=inbox,
    )


async def _stored_at_most(stack: Stack, workspace: str, count: int) -> None:
    """Wait (bounded) until ``workspace`` has at most ``count`` items left in the table."""
    deadline = time.monotonic() + DISCONNECT_WAIT_S
    while time.monotonic() < deadline:
        if await asyncio.to_thread(raw.count_items, stack.dynamodb, stack.table, workspace) <= count:
            return
        await asyncio.sleep(DISCONNECT_POLL_S)


async def _close(
    stack: Stack, opened: ws.Opened, result: ClientsResult, *, workspace: str, batch: int
) -> None:
    """Close the clients ``batch`` at a time, the next batch once the last one's ``$disconnect`` ran, then
    wait until the table is empty (bounded); the items still there are ``$disconnect``s that did not run in
    time, and the most of them after any close is ``result.disconnects_outstanding``.

    All at once, hundreds of ``$disconnect`` invocations would reach the stack together: the peer starts a
    Python process for each (seconds of CPU apiece on two cores) and lets runners that time out break its
    pool; that is not a workload measured here, and it would still burn CPU when the next one is timed.
    """
    clients = opened.clients
    for start in range(0, len(clients), batch):
        part = clients[start : start + batch]
        await ws.close_clients(part, concurrency=batch)
        await _stored_at_most(stack, workspace, len(clients) - start - len(part))
    left = await drain(stack.dynamodb, stack.table)
    result.disconnects_outstanding = max(result.disconnects_outstanding, left)


def _close_batch(n: int) -> int:
    return max(n, CLOSE_BATCH_MIN)


async def _warm_up(turn: Turn, result: ClientsResult) -> int:
    """Twice ``k`` connections opened ``k`` at a time, ``k`` doubling up to ``n``; the connections made.

    Doubling starts at most half the runner (or worker) processes ``n`` needs at once: tens of Python
    processes starting together on two cores is itself a storm the peer does not survive (see ``_close``).
    """
    n = result.clients
    made = 0
    at_once = 1
    while True:
        workspace = f"peers-warm-{n}-{at_once}"
        opened = await _open(turn.stack, turn.inbox, workspace=workspace, count=2 * at_once, at_once=at_once)
        made += len(opened.clients)
        await _close(turn.stack, opened, result, workspace=workspace, batch=_close_batch(at_once))
        if at_once >= n:
            return made
        at_once = min(2 * at_once, n)


async def _raw_puts(stack: Stack, label: str, count: int, threads: int) -> raw.Timed:
    now = datetime.now(UTC)
    items = [
        raw.connection_item(f"{label}{index:09d}=", label, ws.user_email(label, index), now)
        for index in range(count)
    ]
    timed = await asyncio.to_thread(raw.put_items, stack.dynamodb, stack.table, items, threads=threads)
    await asyncio.to_thread(
        raw.delete_items, stack.dynamodb, stack.table, [i["connectionId"]["S"] for i in items]
    )
    return timed


async def _broadcast(
    sender: ws.BenchClient, expected: int, tag: str, inbox: ws.Inbox
) -> tuple[float, list[float]]:
    started = time.monotonic()
    await sender.send(json.dumps({"action": "message", "message": tag}))
    arrivals = await inbox.wait(tag, expected, quiet_s=BROADCAST_QUIET_S, cap_s=BROADCAST_CAP_S)
    return started, arrivals


async def measure_clients(turn: Turn, n: int) -> ClientsResult:
    """Every workload at ``n`` clients on one stack: warm-up, connect rounds, hold, broadcasts."""
    result = ClientsResult(clients=n)
    made = await _warm_up(turn, result)
    turn.progress(f"{turn.stack.name} {n}: warm-up, {made} connections opened and closed")
    await _measure_connects(turn, result)
    await _measure_hold(turn, result)
    return result


async def _measure_connects(turn: Turn, result: ClientsResult) -> None:
    """Rounds of raw puts, then as many handshakes, ``result.clients`` at a time on both."""
    stack, settings, inbox, progress = turn.stack, turn.settings, turn.inbox, turn.progress
    label = f"{stack.name} {result.clients}"
    n = result.clients
    count = settings.connects_for(n)
    wall_s = raw_wall_s = cpu_s = 0.0
    handshakes: list[float] = []
    raw_latencies: list[float] = []
    raw_ok = 0
    for round_index in range(settings.rounds):
        await _settle(stack)
        puts = await _raw_puts(stack, f"peers-raw-{n}-{round_index}-", count, min(n, RAW_THREADS_MAX))
        raw_ok += puts.ok
        raw_wall_s += puts.wall_s
        raw_latencies += puts.latencies_s
        workspace = f"peers-connect-{n}-{round_index}"
        await _settle(stack)
        cpu_before = _stack_cpu_s(stack)
        opened = await _open(stack, inbox, workspace=workspace, count=count, at_once=n)
        cpu_s += _stack_cpu_s(stack) - cpu_before
        stored = await asyncio.to_thread(raw.count_items, stack.dynamodb, stack.table, workspace)
        await _close(stack, opened, result, workspace=workspace, batch=_close_batch(n))
        result.connects += len(opened.clients)
        result.connect_failures += opened.failed
        result.connects_stored += stored
        wall_s += opened.wall_s
        handshakes += opened.handshake_s
        progress(
            f"{label}: round {round_index + 1}/{settings.rounds}: {len(opened.clients)} connects in "
            f"{opened.wall_s:.2f} s, {stored} stored, {opened.failed} failed; {puts.ok} raw puts in "
            f"{puts.wall_s:.2f} s"
        )
    result.connect_rate = result.connects / wall_s if wall_s > 0 else math.nan
    result.cpu_ms_per_connect = _ms(cpu_s) / result.connects if result.connects else math.nan
    result.handshake_p50_ms = _ms(percentile(handshakes, 50))
    result.handshake_p99_ms = _ms(percentile(handshakes, 99))
    result.raw_put_rate = raw_ok / raw_wall_s if raw_wall_s > 0 else math.nan
    result.raw_put_p50_ms = _ms(percentile(raw_latencies, 50))


async def _measure_hold(turn: Turn, result: ClientsResult) -> None:
    """``result.clients`` connections held, checked, then (two or more) broadcast to."""
    stack, settings, inbox, progress = turn.stack, turn.settings, turn.inbox, turn.progress
    label = f"{stack.name} {result.clients}"
    n = result.clients
    workspace = f"peers-held-{n}"
    await _settle(stack)
    held = await _open(stack, inbox, workspace=workspace, count=n, at_once=n)
    try:
        await asyncio.sleep(settings.hold_s)
        answered = await ws.ping_all(held.clients, concurrency=PING_CONCURRENCY)
        stored_ids = await asyncio.to_thread(raw.stored_connections, stack.dynamodb, stack.table, workspace)
        healthy = [
            client
            for client, pong in zip(held.clients, answered, strict=True)
            if pong and client.user_id in stored_ids
        ]
        result.held_requested = n
        result.held = len(healthy)
        progress(f"{label}: held {len(healthy)}/{n} (open, answering a ping, stored)")
        if len(healthy) >= 2:
            await _measure_broadcast(turn, result, healthy)
    finally:
        await _close(stack, held, result, workspace=workspace, batch=_close_batch(n))


async def _measure_broadcast(turn: Turn, result: ClientsResult, healthy: Sequence[ws.BenchClient]) -> None:
    stack, settings, inbox, progress = turn.stack, turn.settings, turn.inbox, turn.progress
    label = f"{stack.name} {result.clients}"
    sender, expected = healthy[0], len(healthy) - 1
    await _settle(stack)
    await _broadcast(sender, expected, f"{stack.name}-{result.clients}-warm-up", inbox)  # untimed
    latencies: list[float] = []
    for repeat in range(settings.broadcasts):
        await _settle(stack)
        started, arrivals = await _broadcast(
            sender, expected, f"{stack.name}-{result.clients}-{repeat}", inbox
        )
        latencies += [arrival - started for arrival in arrivals]
        result.broadcast_expected += expected
        result.broadcast_delivered += len(arrivals)
    result.delivery_p50_ms = _ms(percentile(latencies, 50))
    result.delivery_p99_ms = _ms(percentile(latencies, 99))
    progress(
        f"{label}: {settings.broadcasts} broadcasts, "
        f"{result.broadcast_delivered}/{result.broadcast_expected} delivered, "
        f"p50 {result.delivery_p50_ms:.1f} ms, p99 {result.delivery_p99_ms:.1f} ms"
    )


async def run_stack(
    stack: Stack, settings: PeerSettings, progress: Progress, errors: list[str]
) -> list[ClientsResult]:
    """Every client count on one stack; a count that fails is an error, the others still run."""
    # The engine's JVM compiles its hot paths on the first few hundred calls: not what is measured.
    await _raw_puts(stack, "peers-raw-warm-up-", RAW_WARM_UP_ITEMS, 16)
    turn = Turn(stack, settings, ws.Inbox(), progress)
    results: list[ClientsResult] = []
    for n in settings.clients:
        try:
            results.append(await measure_clients(turn, n))
        except Exception as exc:
            errors.append(f"{stack.name}, {n} client(s): {type(exc).__name__}: {exc}")
    return results


def _dynamodb(target: Target, settings: PeerSettings) -> Any:
    return raw.dynamodb_for_threads(target, min(max(settings.clients), RAW_THREADS_MAX))


def run_peer_side(
    settings: PeerSettings, progress: Progress, errors: list[str], notes: list[str]
) -> list[ClientsResult]:
    """serverless-offline with its own DynamoDB Local, measured, then stopped with its whole process group."""
    node = find_node()
    started = time.monotonic()
    engine = engines.start_dynamodb_local()
    try:
        engine_s = time.monotonic() - started
        target = Target.local(
            {"dynamodb": engine.endpoint_url}, region=DEFAULT_LAB_REGION, source="bench peer"
        )
        schema.create_table(target.client("dynamodb"), name=target.table)
        ports = OfflinePorts.free()
        environment = offline_environment(
            os.environ,
            ports=ports,
            dynamodb_url=engine.endpoint_url,
            table=target.table,
            region=target.region,
            python_prefix=python_prefix(),
        )
        with OfflineServer(environment, ports, node=node) as server:
            progress(f"{PEER} up in {server.start_s:.1f} s (its DynamoDB Local: {engine_s:.1f} s)")
            notes.append(
                f"{PEER} started in {server.start_s:.1f} s after its DynamoDB Local ({engine_s:.1f} s); "
                f"its handler ran on {python_prefix()}/bin/python3, unchanged; its function timeout is "
                f"{FUNCTION_TIMEOUT_S} s, not the lab's 6 s (serverless.yml says why)."
            )
            stack = Stack(
                PEER,
                ports.websocket_url,
                _dynamodb(target, settings),
                target.table,
                roots=[server.pid, *([engine.pid] if engine.pid else [])],
            )
            return asyncio.run(run_stack(stack, settings, progress, errors))
    finally:
        engine.stop()


def run_lab_side(
    settings: PeerSettings, progress: Progress, errors: list[str], notes: list[str]
) -> list[ClientsResult]:
    """A lab in a process of its own (healthy scenario, AUTH_MODE=email), measured, then stopped."""
    with LabHost() as host:
        progress(f"lab up in {float(host.info['start_s']):.1f} s")
        notes.append(f"The lab started in {float(host.info['start_s']):.1f} s, its DynamoDB Local included.")
        stack = Stack(
            "lab",
            str(host.info["websocket_url"]),
            _dynamodb(raw.lab_target(host.info), settings),
            str(host.info["table"]),
            roots=[host.pid],
        )
        return asyncio.run(run_stack(stack, settings, progress, errors))


@dataclass
class PeerRun:
    comparisons: list[Comparison]
    notes: list[str]
    errors: list[str]


def run_peer_benchmarks(settings: PeerSettings, progress: Progress) -> PeerRun:
    """Both stacks in turn, then the comparisons; a stack that fails is an error, not an exception."""
    ws.ensure_open_files(2 * settings.connects + 4 * max(settings.clients) + 1024)
    errors: list[str] = []
    notes = [
        f"Order: {PEER}, then the lab; never both at once. Connect rounds: "
        f"{settings.rounds} x max({settings.connects}, clients) handshakes, that many clients in flight.",
    ]
    sides: dict[str, list[ClientsResult]] = {}
    for name, run in ((PEER, run_peer_side), ("lab", run_lab_side)):
        try:
            sides[name] = run(settings, progress, errors, notes)
        except ConfigurationError:
            raise
        except Exception as exc:
            errors.append(f"{name} could not be measured: {type(exc).__name__}: {exc}")
            sides[name] = []
    lab, peer = sides["lab"], sides[PEER]
    # A count one side lost still gets its row, with the missing side unmeasured.
    for mine, theirs in ((lab, peer), (peer, lab)):
        for result in theirs:
            if all(r.clients != result.clients for r in mine):
                mine.append(ClientsResult(clients=result.clients))
    return PeerRun(compare_all(lab, peer), notes, errors)


def run_peers(environ: Mapping[str, str]) -> int:
    """``python -m bench peers``: exit 0 when measured (targets met or not), 1 on errors, 2 on bad set-up."""
    try:
        settings = PeerSettings.from_environment(environ)
        versions = installed_versions()
        find_node()
    except ConfigurationError as exc:
        print(f"bench peers: {exc}", file=sys.stderr)
        return 2

    def progress(message: str) -> None:
        print(f"bench peers: {message}", file=sys.stderr, flush=True)

    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    machine = describe_machine()
    try:
        run = run_peer_benchmarks(settings, progress)
    except ConfigurationError as exc:
        print(f"bench peers: {exc}", file=sys.stderr)
        return 2
    machine["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    section = peers_section(
        run.comparisons,
        started_at=started_at,
        duration_s=time.monotonic() - started,
        machine=machine,
        settings=settings,
        versions=versions,
        notes=run.notes,
        errors=run.errors,
    )
    write_results(settings.output, {**read_results(settings.output), "peers": section})
    print(render_table(run.comparisons, notes=run.notes))
    for error in run.errors:
        print(f"\nERROR: {error}")
    versions_text = ", ".join(f"{name} {version}" for name, version in versions.items())
    print(f"\n{versions_text}; {section['duration_s']} s; results (section `peers`) in {settings.output}")
    return 1 if run.errors else 0
