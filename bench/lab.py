"""The lab benchmarks: lab start time, ``$connect``/s, 1,000 connections held, broadcast fan-out.

Each figure has a baseline measured in the same run on the same engines, so the figure is a ratio:

* lab start: ``Lab()`` enter to ready (timed inside :mod:`bench.lab_host`) against DynamoDB Local starting
  alone (``kit.lab.engines.start_dynamodb_local``), median of the runs, started in turn;
* ``$connect``/s: clients open connections through the lab, each handshake completing only after the
  ``$connect`` Lambda stored its item, against boto3 ``put_item`` of the same item straight to DynamoDB Local
  with as many threads as there are clients; both after a warm-up, so cold starts and the JVM's first
  compilations are not what is measured. The CPU each costs, per process of the lab, says where time goes;
* held: ``held`` connections of one workspace opened, held, then checked: open, answering a ping, stored;
* fan-out: one of the held clients sends ``{"action": "message"}``; every other one stamps the frame's
  arrival; against ``post_to_connection`` to the same connections in turn from one raw boto3 client
  (:mod:`bench.raw`), alternating with the broadcasts.

Must not: time anything but the thing measured (set-up and clean-up are outside the clocks), or leave a
process behind (the lab host, the raw poster and every socket are closed on the way out).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench import clients as ws
from bench import hops as hop_spans
from bench import processes, raw
from bench.figures import Detail, Figure, figure, median, percentile
from bench.processes import LabHost
from bench.settings import BenchSettings
from kit.lab import engines

Progress = Callable[[str], None]

CONNECT_TARGET_RATIO = 0.8  # the target: $connect/s at least 0.8 of raw put_item/s
NODE_RUNTIME = "nodejs20.x"  # the runtime of the Node.js $connect figure
HELD_TARGET_RATIO = 1.0  # the "1,000 concurrent connections held": every one of them
FANOUT_TARGET_RATIO = 0.8  # the bench's choice, by analogy with $connect: within 0.8 of the raw posts
FANOUT_P99_TARGET_MS = 1000.0  # the issue's: a broadcast to 1,000 receivers reaches them all, p99 within 1 s
START_TARGET_RATIO = 2.0  # the bench's choice: the lab adds no more than its engine's own start time

WARM_UP_WORKSPACE = "bench-warm-up"
CONNECT_WORKSPACE = "bench-connect"
RAW_WORKSPACE = "bench-raw-put"
HELD_WORKSPACE = "bench-held"
DRAIN_TIMEOUT_S = 120.0  # $disconnect of every closed client, at the lab's pace
FANOUT_QUIET_S = 5.0  # a broadcast is over when no frame came for this long
# Before each timed phase the lab's processes must be nearly idle: under 10% of a CPU over 0.25 s.
SETTLE_INTERVAL_S = 0.25
SETTLED_CPU_SHARE = 0.1
SETTLE_TIMEOUT_S = 10.0
HELD_OPEN_CONCURRENCY = 32  # handshakes in flight while opening the held connections (at least)


def _ms(seconds: float) -> float:
    return seconds * 1000


def _rounded(values: Sequence[float], digits: int = 2) -> str:
    return ", ".join(f"{value:.{digits}f}" for value in values)


def _cpu_ms_per_operation(spent: Mapping[str, float], operations: int) -> dict[str, float]:
    if operations <= 0:
        return {}
    return {role: _ms(seconds) / operations for role, seconds in sorted(spent.items()) if seconds > 0}


@dataclass(frozen=True)
class CpuMark:
    """CPU seconds so far: the lab's process tree, the lab process's threads, and this process."""

    tree: list[processes.ProcessSample]
    threads: dict[int, float]
    own_s: float

    @classmethod
    def take(cls, host: LabHost) -> CpuMark:
        return cls(processes.sample_tree(host.pid), processes.sample_threads(host.pid), processes.own_cpu_s())


def cpu_spent(
    before: CpuMark, after: CpuMark, thread_roles: Mapping[int, str]
) -> tuple[dict[str, float], dict[str, float]]:
    """CPU seconds by process role (this process as ``bench client``) and by thread of the lab process."""
    by_role = processes.cpu_by_role(before.tree, after.tree)
    by_role["bench client"] = after.own_s - before.own_s
    by_thread = processes.cpu_by_thread_role(before.threads, after.threads, thread_roles)
    ended = by_role.get(processes.ROLE_LAB, 0.0) - sum(by_thread.values())
    if ended > 0:
        by_thread[processes.THREAD_ENDED] = ended
    return by_role, by_thread


def _add(total: dict[str, float], more: Mapping[str, float]) -> None:
    for key, value in more.items():
        total[key] = total.get(key, 0.0) + value


def _listed(costs: Mapping[str, float]) -> str:
    by_cost = sorted(costs.items(), key=lambda item: -item[1])
    return ", ".join(f"{role} {value:.1f}" for role, value in by_cost)


def connect_note(
    lab_cpu_ms: Mapping[str, float],
    lab_thread_ms: Mapping[str, float],
    raw_cpu_ms: Mapping[str, float],
    *,
    cpus: int,
    hop_parts: Sequence[tuple[str, float]] = (),
    handshake_mean_ms: float = 0.0,
) -> str:
    """Where a ``$connect`` spends its time compared with a raw put: the CPU each costs, and the mean
    handshake hop by hop (:mod:`bench.hops`) (pure)."""
    lab_total = sum(lab_cpu_ms.values())
    raw_total = sum(raw_cpu_ms.values())
    lab_process = lab_cpu_ms.get(processes.ROLE_LAB, 0.0)
    machine_bound = f"{cpus * 1000 / lab_total:.0f}/s" if lab_total > 0 else "unknown"
    lock_bound = f"{1000 / lab_process:.0f}/s" if lab_process > 0 else "unknown"
    hops_text = (
        f"A mean handshake of {handshake_mean_ms:.2f} ms, hop by hop: {hop_spans.render(hop_parts)}. "
        if hop_parts
        else "The handshake's hops were not timed. "
    )
    return hops_text + (
        f"CPU per $connect: {lab_total:.1f} ms ({_listed(lab_cpu_ms)}) against {raw_total:.1f} ms per raw "
        f"put_item ({_listed(raw_cpu_ms)}); {cpus} CPU(s) cap the lab near {machine_bound}, and the lab "
        f"process, whose threads share one interpreter lock and which every handshake passes through, "
        f"near {lock_bound}. Its threads: {_listed(lab_thread_ms) or 'not sampled'}. A raw put is one "
        "HTTP call to DynamoDB Local; a $connect is that same put made by the handler in a Lambda worker "
        "process, through the DynamoDB front door (SigV4, an IAM policy evaluation, a second HTTP hop), "
        "plus a WebSocket handshake at both ends, the gateway's event, the worker's pipes, and the Lambda, "
        "execution and access log lines shipped to CloudWatch Logs (moto, in the lab process)."
    )


@dataclass
class LabBench:
    """The figures of one run, and the errors of phases that could not be measured."""

    figures: list[Figure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------
# Lab start


def _time_engine_start(engine_name: str) -> float:
    started = time.monotonic()
    engine = engines.start_dynamodb_local() if engine_name == "dynamodb-local" else engines.start_moto()
    elapsed = time.monotonic() - started
    engine.stop()
    return elapsed


def measure_start(settings: BenchSettings, progress: Progress) -> tuple[Figure, LabHost]:
    """Start the lab ``start_runs`` times (keeping the last one up) and its engine alone as often, in turn."""
    lab_s: list[float] = []
    engine_s: list[float] = []
    stop_s: list[float] = []
    engine_name = "dynamodb-local"
    host: LabHost | None = None
    try:
        for run in range(settings.start_runs):
            host = LabHost().start()
            lab_s.append(float(host.info["start_s"]))
            engine_name = str(host.info["engine"])
            progress(f"lab start {run + 1}/{settings.start_runs}: {lab_s[-1]:.2f} s ({engine_name})")
            if run < settings.start_runs - 1:
                host.stop()
                if host.stop_s is not None:
                    stop_s.append(host.stop_s)
            engine_s.append(_time_engine_start(engine_name))
            progress(f"{engine_name} alone {run + 1}/{settings.start_runs}: {engine_s[-1]:.2f} s")
    except BaseException:
        if host is not None:
            host.stop()
        raise
    assert host is not None
    details: dict[str, Detail] = {
        "runs": settings.start_runs,
        "lab_start_s_each": _rounded(lab_s),
        "engine_start_s_each": _rounded(engine_s),
        "engine": engine_name,
    }
    if stop_s:
        details["lab_stop_s_median"] = median(stop_s)
    result = figure(
        "lab_start",
        "lab start time",
        value=median(lab_s),
        unit="s",
        baseline=median(engine_s),
        baseline_title=f"{engine_name} start alone",
        ratio_of="value/baseline",
        target=START_TARGET_RATIO,
        better="lower",
        target_source="bench",
        details=details,
        note=(
            "Lab() enter to ready: DynamoDB Local, moto, provisioning through AWS APIs (table, role, "
            "function, API, routes, stage, log groups), the DynamoDB front door, the Lambda runtime, the "
            "Next.js stand-in's port (its process starts with the first request it gets) and the gateway. "
            "The engine's JVM start is in both sides; interpreter start-up and the kit's imports are in "
            "neither. The JVM starts on a thread of its own while moto starts and the control plane is "
            "provisioned; the difference is what needs the engine (the table, the front door) and the "
            "gateway. API Gateway v2 calls go straight to moto's v2 app: its v1 backend's import (an OpenAPI "
            "validator compiling a Lark grammar, ~1.5 s) is no longer paid."
        ),
    )
    return result, host


# ---------------------------------------------------------------------------------------------------------
# Table helpers (blocking boto3 calls, run in a thread so the clients' loop keeps reading)


async def _count(dynamodb: Any, table: str, workspace_id: str | None = None) -> int:
    return await asyncio.to_thread(raw.count_items, dynamodb, table, workspace_id)


async def drain(dynamodb: Any, table: str, *, timeout_s: float = DRAIN_TIMEOUT_S) -> int:
    """Wait (bounded) until the table is empty, i.e. every ``$disconnect`` ran; the items left."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = await _count(dynamodb, table)
        if left == 0 or time.monotonic() >= deadline:
            return left
        await asyncio.sleep(0.25)


async def _settle(host: LabHost, *, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
    """Wait (bounded) until the lab's processes are nearly idle: log lines flushed, workers done."""
    deadline = time.monotonic() + timeout_s
    last = sum(sample.cpu_s for sample in processes.sample_tree(host.pid))
    while time.monotonic() < deadline:
        await asyncio.sleep(SETTLE_INTERVAL_S)
        now = sum(sample.cpu_s for sample in processes.sample_tree(host.pid))
        if now - last < SETTLE_INTERVAL_S * SETTLED_CPU_SHARE:
            return
        last = now


# ---------------------------------------------------------------------------------------------------------
# $connect/s


async def _warm_up(
    host: LabHost, dynamodb: Any, settings: BenchSettings, inbox: ws.Inbox, progress: Progress
) -> None:
    """Start every Lambda worker and let DynamoDB Local compile its hot paths before anything is timed."""
    table = host.info["table"]
    workers = int(host.info["max_workers_per_function"])
    count = max(2 * workers, min(settings.connects, 100))
    now = datetime.now(UTC)
    items = [
        raw.connection_item(f"warmup{index:09d}=", RAW_WORKSPACE, ws.user_email("warm-up", index), now)
        for index in range(count)
    ]
    await asyncio.to_thread(raw.put_items, dynamodb, table, items, threads=settings.concurrency)
    await asyncio.to_thread(raw.delete_items, dynamodb, table, [i["connectionId"]["S"] for i in items])
    opened = await ws.open_clients(
        host.info["websocket_url"],
        workspace_id=WARM_UP_WORKSPACE,
        count=count,
        concurrency=settings.concurrency,
        prefix="warm-up",
        inbox=inbox,
    )
    await ws.close_clients(opened.clients, concurrency=settings.concurrency)
    left = await drain(dynamodb, table)
    progress(f"warm-up: {len(opened.clients)} connections opened and closed, {left} items left")


@dataclass
class ConnectTally:
    """Both sides of the $connect/s figure, summed over the rounds."""

    raw_ok: int = 0
    raw_wall_s: float = 0.0
    raw_latencies_s: list[float] = field(default_factory=list)
    raw_errors: dict[str, int] = field(default_factory=dict)
    raw_cpu_s: dict[str, float] = field(default_factory=dict)
    connected: int = 0
    stored: int = 0
    lab_wall_s: float = 0.0
    handshakes_s: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    lab_cpu_s: dict[str, float] = field(default_factory=dict)
    lab_thread_cpu_s: dict[str, float] = field(default_factory=dict)
    round_ratios: list[float] = field(default_factory=list)
    left_after_disconnects: int = 0
    hop_totals: dict[str, list[float]] = field(default_factory=dict)  # hop -> [count, total ms] (bench.hops)

    @property
    def raw_rate(self) -> float:
        return self.raw_ok / self.raw_wall_s if self.raw_wall_s > 0 else math.nan

    @property
    def lab_rate(self) -> float:
        return self.connected / self.lab_wall_s if self.lab_wall_s > 0 else math.nan


async def _connect_round(
    host: LabHost,
    dynamodb: Any,
    settings: BenchSettings,
    inbox: ws.Inbox,
    tally: ConnectTally,
    *,
    round_index: int,
    count: int,
) -> None:
    """``count`` raw puts, then ``count`` connections through the lab; each side timed on its own."""
    table = host.info["table"]
    now = datetime.now(UTC)
    items = [
        raw.connection_item(
            f"raw{round_index:03d}{index:09d}=", RAW_WORKSPACE, ws.user_email(f"raw{round_index}", index), now
        )
        for index in range(count)
    ]
    await _settle(host)
    before = CpuMark.take(host)
    puts = await asyncio.to_thread(raw.put_items, dynamodb, table, items, threads=settings.concurrency)
    by_role, _ = cpu_spent(before, CpuMark.take(host), {})
    _add(tally.raw_cpu_s, by_role)
    tally.raw_ok += puts.ok
    tally.raw_wall_s += puts.wall_s
    tally.raw_latencies_s += puts.latencies_s
    for code, failed in puts.errors.items():
        tally.raw_errors[code] = tally.raw_errors.get(code, 0) + failed
    await asyncio.to_thread(raw.delete_items, dynamodb, table, [i["connectionId"]["S"] for i in items])

    workspace_id = f"{CONNECT_WORKSPACE}-{round_index}"
    await _settle(host)
    host.hops(reset=True)
    before = CpuMark.take(host)
    opened = await ws.open_clients(
        host.info["websocket_url"],
        workspace_id=workspace_id,
        count=count,
        concurrency=settings.concurrency,
        prefix=f"connect{round_index}",
        inbox=inbox,
    )
    try:
        by_role, by_thread = cpu_spent(before, CpuMark.take(host), host.thread_roles())
        hop_spans.add_snapshot(tally.hop_totals, host.hops())
        _add(tally.lab_cpu_s, by_role)
        _add(tally.lab_thread_cpu_s, by_thread)
        tally.connected += len(opened.clients)
        tally.lab_wall_s += opened.wall_s
        tally.handshakes_s += opened.handshake_s
        for reason, failed in opened.failures.items():
            tally.failures[reason] = tally.failures.get(reason, 0) + failed
        tally.stored += await _count(dynamodb, table, workspace_id)
    finally:
        await ws.close_clients(opened.clients, concurrency=settings.concurrency)
        # Their $disconnects must not run into the next round's raw puts.
        tally.left_after_disconnects = await drain(dynamodb, table)
    if puts.wall_s > 0 and opened.wall_s > 0 and puts.ok:
        tally.round_ratios.append((len(opened.clients) / opened.wall_s) / (puts.ok / puts.wall_s))


async def measure_connect(
    host: LabHost,
    settings: BenchSettings,
    inbox: ws.Inbox,
    progress: Progress,
    *,
    name: str = "connect_rate",
    title: str = "$connect/s through the lab",
    extra: Mapping[str, Detail] | None = None,
) -> Figure:
    """Raw puts and lab connects in alternating rounds, so a load change on the machine hits both sides."""
    target = raw.lab_target(host.info)
    dynamodb = raw.dynamodb_for_threads(target, settings.concurrency)
    await _warm_up(host, dynamodb, settings, inbox, progress)

    tally = ConnectTally()
    rounds = max(1, min(settings.repeats, settings.connects))
    for round_index in range(rounds):
        count = settings.connects // rounds + (1 if round_index < settings.connects % rounds else 0)
        await _connect_round(host, dynamodb, settings, inbox, tally, round_index=round_index, count=count)
        progress(
            f"$connect round {round_index + 1}/{rounds}: raw put_item {tally.raw_rate:.0f}/s, "
            f"$connect {tally.lab_rate:.0f}/s so far"
        )

    lab_cpu_ms = _cpu_ms_per_operation(tally.lab_cpu_s, tally.connected)
    lab_thread_ms = _cpu_ms_per_operation(tally.lab_thread_cpu_s, tally.connected)
    raw_cpu_ms = _cpu_ms_per_operation(tally.raw_cpu_s, tally.raw_ok)
    handshake_mean_ms = _ms(sum(tally.handshakes_s) / len(tally.handshakes_s)) if tally.handshakes_s else 0.0
    hop_parts = hop_spans.breakdown(handshake_mean_ms, hop_spans.means(tally.hop_totals))
    details: dict[str, Detail] = {
        "connections": settings.connects,
        "concurrency": settings.concurrency,
        "rounds": rounds,
        "ratio_each_round": _rounded(tally.round_ratios, 3),
        "connected": tally.connected,
        "stored": tally.stored,
        "failed": sum(tally.failures.values()),
        "failures": json.dumps(tally.failures) if tally.failures else "",
        "handshake_p50_ms": _ms(percentile(tally.handshakes_s, 50)),
        "handshake_p99_ms": _ms(percentile(tally.handshakes_s, 99)),
        "raw_puts_ok": tally.raw_ok,
        "raw_put_errors": json.dumps(tally.raw_errors) if tally.raw_errors else "",
        "raw_put_p50_ms": _ms(percentile(tally.raw_latencies_s, 50)),
        "raw_put_p99_ms": _ms(percentile(tally.raw_latencies_s, 99)),
        "items_left_after_disconnects": tally.left_after_disconnects,
        "function_runtime": str(host.info.get("runtime", "")),
        **(extra or {}),
    }
    details |= {f"cpu_ms_per_connect[{role}]": value for role, value in lab_cpu_ms.items()}
    details |= {f"cpu_ms_per_connect[lab thread: {role}]": value for role, value in lab_thread_ms.items()}
    details |= {f"cpu_ms_per_raw_put[{role}]": value for role, value in raw_cpu_ms.items()}
    details |= {f"hop_ms[{label}]": round(share, 3) for label, share in hop_parts}
    return figure(
        name,
        title,
        value=tally.lab_rate,
        unit="connects/s",
        baseline=tally.raw_rate,
        baseline_title="raw put_item/s, same engine",
        ratio_of="value/baseline",
        target=CONNECT_TARGET_RATIO,
        target_source="issue",
        details=details,
        note=connect_note(
            lab_cpu_ms,
            lab_thread_ms,
            raw_cpu_ms,
            cpus=len(os.sched_getaffinity(0)),
            hop_parts=hop_parts,
            handshake_mean_ms=handshake_mean_ms,
        ),
    )


# ---------------------------------------------------------------------------------------------------------
# Held connections


@dataclass
class Held:
    figure: Figure
    clients: list[ws.BenchClient]
    healthy: list[ws.BenchClient]  # open, answering a ping, and stored
    stored: dict[str, str]  # userId -> connectionId


async def measure_held(host: LabHost, settings: BenchSettings, inbox: ws.Inbox, progress: Progress) -> Held:
    target = raw.lab_target(host.info)
    dynamodb = target.client("dynamodb")
    table = host.info["table"]
    open_concurrency = max(settings.concurrency, HELD_OPEN_CONCURRENCY)
    await _settle(host)
    opened = await ws.open_clients(
        host.info["websocket_url"],
        workspace_id=HELD_WORKSPACE,
        count=settings.held,
        concurrency=open_concurrency,
        prefix="held",
        inbox=inbox,
    )
    progress(f"held: {len(opened.clients)} open in {opened.wall_s:.1f} s; holding {settings.hold_s:g} s")
    await asyncio.sleep(settings.hold_s)
    answered = await ws.ping_all(opened.clients, concurrency=64)
    stored = await asyncio.to_thread(raw.stored_connections, dynamodb, table, HELD_WORKSPACE)
    healthy = [
        client
        for client, pong in zip(opened.clients, answered, strict=True)
        if pong and client.user_id in stored
    ]
    samples = processes.sample_tree(host.pid)
    lab = next(sample for sample in samples if sample.role == processes.ROLE_LAB)
    summary = processes.tree_summary(samples)
    progress(f"held: {len(healthy)} open, answering and stored; lab peak RSS {lab.peak_rss_kb / 1024:.0f} MB")
    details: dict[str, Detail] = {
        "requested": settings.held,
        "opened": len(opened.clients),
        "failed": opened.failed,
        "failures": json.dumps(opened.failures) if opened.failures else "",
        "open_concurrency": open_concurrency,
        "open_s": opened.wall_s,
        "open_rate_per_s": len(opened.clients) / opened.wall_s if opened.wall_s > 0 else math.nan,
        "hold_s": settings.hold_s,
        "answering_ping_after_hold": sum(answered),
        "stored_items": len(stored),
        "lab_process_peak_rss_mb": lab.peak_rss_kb / 1024,
        "lambda_workers": int(str(summary["lambda_workers"])),
        "rss_mb_by_role": json.dumps(summary["rss_mb_by_role"]),
    }
    result = figure(
        "held_connections",
        "connections held at once",
        value=len(healthy),
        unit="connections",
        baseline=settings.held,
        baseline_title="requested",
        ratio_of="value/baseline",
        target=HELD_TARGET_RATIO,
        target_source="issue",
        details=details,
        note=(
            "Held means: still open after the hold, answered a ping, and its item is in the table. The "
            "Lambda runtime caps workers per function, so the handshakes queue behind $connect invocations; "
            "open_s is how long that queue took to drain at this concurrency."
        ),
    )
    return Held(result, opened.clients, healthy, stored)


# ---------------------------------------------------------------------------------------------------------
# Broadcast fan-out


@dataclass
class FanOutRun:
    started: float
    arrivals: list[float]
    expected: int

    @property
    def latencies_s(self) -> list[float]:
        return [arrival - self.started for arrival in self.arrivals]

    @property
    def total_s(self) -> float:
        """Send to last arrival; infinite when some receiver never got the frame."""
        if len(self.arrivals) < self.expected or not self.arrivals:
            return math.inf
        return max(self.arrivals) - self.started


def _fanout_figure(
    name: str,
    title: str,
    *,
    handler: float,
    raw_posts: float,
    unit: str,
    details: Mapping[str, Detail] | None = None,
    note: str = "",
    p99_target_ms: float | None = None,
    shortfall: str = "",
) -> Figure:
    """Against the raw posts (the bench's ratio target), or the issue's ceiling on the p99 in ms."""
    ceiling = p99_target_ms is not None
    return figure(
        name,
        title,
        value=handler,
        unit=unit,
        baseline=raw_posts,
        baseline_title="raw sequential @connections posts",
        ratio_of="baseline/value",
        target=p99_target_ms if p99_target_ms is not None else FANOUT_TARGET_RATIO,
        better="lower" if ceiling else "higher",
        target_source="issue" if ceiling else "bench",
        target_of="value" if ceiling else "ratio",
        details=details,
        note=note,
        shortfall=shortfall,
    )


def fanout_p99_figure(
    handler_runs: Sequence[FanOutRun],
    raw_runs: Sequence[FanOutRun],
    *,
    suffix: str = "",
    title_suffix: str = "",
) -> Figure:
    """The issue's target: p99 within 1 s *and* every receiver reached, so frames that never arrived (which
    have no latency to pool) fail it whatever the p99 of those that did."""
    delivered = sum(min(len(run.arrivals), run.expected) for run in handler_runs)  # none counted twice
    expected = sum(run.expected for run in handler_runs)
    return _fanout_figure(
        f"broadcast_fanout_p99{suffix}",
        f"broadcast fan-out p99 latency{title_suffix}",
        handler=_ms(percentile([latency for run in handler_runs for latency in run.latencies_s], 99)),
        raw_posts=_ms(percentile([latency for run in raw_runs for latency in run.latencies_s], 99)),
        unit="ms",
        p99_target_ms=FANOUT_P99_TARGET_MS,
        details={"delivered": f"{delivered}/{expected}"},
        shortfall="" if delivered >= expected else f"{delivered}/{expected} delivered",
    )


async def measure_fanout(
    host: LabHost,
    settings: BenchSettings,
    held: Held,
    inbox: ws.Inbox,
    progress: Progress,
    *,
    suffix: str = "",
    title_suffix: str = "",
) -> list[Figure]:
    if len(held.healthy) < 2:
        raise RuntimeError(f"only {len(held.healthy)} held connection(s) are healthy; a broadcast needs 2.")
    sender, receivers = held.healthy[0], held.healthy[1:]
    receiver_ids = [held.stored[client.user_id] for client in receivers]
    expected = len(receivers)
    cap_s = 60 + expected * 0.05
    # One untimed broadcast first: the first one builds the worker's clients and walks DynamoDB Local's
    # query path cold; its time is reported, not counted.
    await _settle(host)
    started = time.monotonic()
    await sender.send(json.dumps({"action": "message", "message": "fanout-warm-up"}))
    warm_up = FanOutRun(
        started,
        await inbox.wait("fanout-warm-up", expected, quiet_s=FANOUT_QUIET_S, cap_s=cap_s),
        expected,
    )
    progress(f"untimed first broadcast: {len(warm_up.arrivals)}/{expected} in {warm_up.total_s:.2f} s")
    handler_runs: list[FanOutRun] = []
    raw_runs: list[FanOutRun] = []
    raw_errors: dict[str, int] = {}
    with raw.RawPoster() as poster:
        for repeat in range(settings.repeats):
            tag = f"broadcast-{repeat}"
            await _settle(host)
            started = time.monotonic()
            await sender.send(json.dumps({"action": "message", "message": tag}))
            arrivals = await inbox.wait(tag, expected, quiet_s=FANOUT_QUIET_S, cap_s=cap_s)
            handler_runs.append(FanOutRun(started, arrivals, expected))
            progress(
                f"broadcast {repeat + 1}/{settings.repeats}: {len(arrivals)}/{expected} in "
                f"{handler_runs[-1].total_s:.2f} s"
            )

            tag = f"raw-{repeat}"
            data = json.dumps(
                {"type": "message", "from": sender.user_id, "workspaceId": HELD_WORKSPACE, "message": tag}
            ).encode()
            await _settle(host)  # the Lambda writes its END/REPORT after the last post
            future = poster.submit(
                host.info["management_url"],
                host.info["region"],
                receiver_ids,
                data,
                receiver_ids[0] if repeat == 0 else None,
            )
            run = await asyncio.wrap_future(future)
            for code, count in run.errors.items():
                raw_errors[code] = raw_errors.get(code, 0) + count
            arrivals = await inbox.wait(tag, expected, quiet_s=FANOUT_QUIET_S, cap_s=cap_s)
            raw_runs.append(FanOutRun(run.started, arrivals, expected))
            progress(
                f"raw posts {repeat + 1}/{settings.repeats}: {len(arrivals)}/{expected} in "
                f"{raw_runs[-1].total_s:.2f} s"
            )

    handler_latencies = [latency for run in handler_runs for latency in run.latencies_s]
    raw_latencies = [latency for run in raw_runs for latency in run.latencies_s]
    details: dict[str, Detail] = {
        "receivers": expected,
        "repeats": settings.repeats,
        "untimed_first_broadcast_s": warm_up.total_s,
        "handler_p50_ms_each": _rounded([_ms(percentile(run.latencies_s, 50)) for run in handler_runs], 0),
        "handler_p99_ms_each": _rounded([_ms(percentile(run.latencies_s, 99)) for run in handler_runs], 0),
        "delivered_each": ", ".join(str(len(run.arrivals)) for run in handler_runs),
        "raw_delivered_each": ", ".join(str(len(run.arrivals)) for run in raw_runs),
        "handler_total_s_each": _rounded([run.total_s for run in handler_runs]),
        "raw_total_s_each": _rounded([run.total_s for run in raw_runs]),
        "raw_post_errors": json.dumps(raw_errors) if raw_errors else "",
        "frames_without_tag": inbox.untagged,
    }
    note = (
        "Latency: from the sender's send to each receiver's frame arriving, pooled over the repeats that "
        "follow one untimed broadcast. The handler does one GetItem (the sender), one GSI Query (all "
        "pages), then post_to_connection to the receivers, 16 at a time, from one Lambda worker, each post "
        "checked against the execution role's policy by the gateway; the baseline is the same posts in turn "
        "from one boto3 client with the lab's admin key, in a process of its own, timed from its first "
        "post. The handler's SDK is the floor: boto3 spends about 1 ms of CPU per post_to_connection on this "
        "machine, whatever the threads, so 999 posts from one Python worker take about a second; the "
        "gateway answers them on the other core. A broadcast that outlives the function's 6 s timeout is cut "
        "short: then delivered_each is below receivers and its total is infinite."
    )
    return [
        _fanout_figure(
            f"broadcast_fanout_p50{suffix}",
            f"broadcast fan-out p50 latency{title_suffix}",
            handler=_ms(percentile(handler_latencies, 50)),
            raw_posts=_ms(percentile(raw_latencies, 50)),
            unit="ms",
            details=details,
            note=note,
        ),
        fanout_p99_figure(handler_runs, raw_runs, suffix=suffix, title_suffix=title_suffix),
        _fanout_figure(
            f"broadcast_fanout_total{suffix}",
            f"broadcast fan-out total time{title_suffix}",
            handler=median([run.total_s for run in handler_runs]),
            raw_posts=median([run.total_s for run in raw_runs]),
            unit="s",
            note="Send to the last receiver's frame; median over the repeats.",
        ),
    ]


# ---------------------------------------------------------------------------------------------------------
# The whole run


async def _measure_load(host: LabHost, settings: BenchSettings, progress: Progress, result: LabBench) -> None:
    inbox = ws.Inbox()
    try:
        result.figures.append(await measure_connect(host, settings, inbox, progress))
    except Exception as exc:  # one phase failing must not lose the others' figures
        result.errors.append(f"$connect/s could not be measured: {type(exc).__name__}: {exc}")
    held: Held | None = None
    try:
        held = await measure_held(host, settings, inbox, progress)
        result.figures.append(held.figure)
        result.figures.extend(await measure_fanout(host, settings, held, inbox, progress))
    except Exception as exc:
        phase = "held connections" if held is None else "broadcast fan-out"
        result.errors.append(f"{phase} could not be measured: {type(exc).__name__}: {exc}")
    finally:
        if held is not None:
            started = time.monotonic()
            await ws.close_clients(held.clients, concurrency=64)
            progress(f"closed {len(held.clients)} connections in {time.monotonic() - started:.1f} s")


def measure_node_connect(settings: BenchSettings, progress: Progress, result: LabBench) -> list[Figure]:
    """``$connect``/s and the broadcast fan-out with the function on Node.js (the kit's app.mjs), in a lab of
    its own, against raw put_item and raw posts on it; beside the Python figures of the same run. An error in
    ``result`` without node."""
    if shutil.which("node") is None:
        result.errors.append("the Node.js figures could not be measured: no `node` on PATH")
        return []
    python = next((f for f in result.figures if f.name == "connect_rate"), None)
    extra: dict[str, Detail] = {}
    if python is not None and python.value:
        extra["python_connect_rate"] = python.value

    async def measure(host: LabHost) -> list[Figure]:
        inbox = ws.Inbox()
        figure_ = await measure_connect(
            host,
            settings,
            inbox,
            progress,
            name="connect_rate_node",
            title="$connect/s through the lab, function on Node.js",
            extra=extra,
        )
        if python is not None and python.value:
            figure_.details["node_vs_python"] = round(figure_.value / python.value, 3)
        # The user's own app is TypeScript: its broadcast runs on Node.js and the AWS SDK for JavaScript.
        held = await measure_held(host, settings, inbox, progress)
        try:
            fanout = await measure_fanout(
                host, settings, held, inbox, progress, suffix="_node", title_suffix=", on Node.js"
            )
        finally:
            await ws.close_clients(held.clients, concurrency=64)
        return [figure_, *fanout]

    try:
        with LabHost(runtime=NODE_RUNTIME) as host:
            progress(f"lab with the function on {NODE_RUNTIME} up in {float(host.info['start_s']):.1f} s")
            return asyncio.run(measure(host))
    except Exception as exc:
        result.errors.append(f"the Node.js figures could not be measured: {type(exc).__name__}: {exc}")
        return []


def run_lab_benchmarks(settings: BenchSettings, progress: Progress | None = None) -> LabBench:
    """Every lab figure; a phase that fails is an error in the result, not an exception."""
    say = progress or (lambda message: print(f"bench: {message}", file=sys.stderr, flush=True))
    result = LabBench()
    ws.ensure_open_files(settings.held + settings.connects + 1024)
    try:
        start, host = measure_start(settings, say)
    except Exception as exc:
        result.errors.append(f"the lab could not be started: {type(exc).__name__}: {exc}")
        return result
    result.figures.append(start)
    try:
        asyncio.run(_measure_load(host, settings, say, result))
    finally:
        stopping = time.monotonic()
        host.stop()
        say(f"lab stopped in {time.monotonic() - stopping:.1f} s")
    result.figures.extend(measure_node_connect(settings, say, result))
    # The table order people read: start, then throughput, then capacity, then fan-out.
    order = ["lab_start", "connect_rate", "connect_rate_node", "held_connections"]
    result.figures.sort(key=lambda f: order.index(f.name) if f.name in order else len(order))
    return result
