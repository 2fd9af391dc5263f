"""The lab beside its peer, serverless-offline: sizes, comparisons and targets, the table, the results.

``make bench-peers`` (:mod:`bench.peer_bench`) runs the same workloads against both stacks; this module is
its pure core. A ``Comparison`` is one measure of one workload on both sides, or the lab against raw
``put_item`` on its own engine; its ratio is always ``lab / other`` and ``met`` follows from that ratio and
the issue's target through :func:`bench.figures.ratio` and :func:`bench.figures.target_met`, so both
benches judge alike. The targets (issue 15): one client, ``$connect`` handshake p50 at most
serverless-offline's; clients at once, connects/s at least 1.0x serverless-offline's and at least 0.8x raw
``put_item`` on the same engine.

Must not: read ``os.environ`` (``PeerSettings.from_environment`` takes a mapping), time anything, or print.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path

from bench.figures import Better, Detail, TargetSource, format_number, met_text, ratio, target_met
from bench.settings import DEFAULT_OUTPUT, OUTPUT_ENV, Size, read_scale, read_size
from kit.errors import ConfigurationError

PEER = "serverless-offline"
RAW_PUT = "raw put_item, same engine"
CONNECT_VS_PEER = 1.0  # issue 15: connects/s at least 1.0x serverless-offline's, clients at once
CONNECT_VS_RAW = 0.8  # issue 15: and at least 0.8x raw put_item on the same engine
P50_VS_PEER = 1.0  # issue 15: one client, $connect p50 at most serverless-offline's

CLIENTS_ENV = "KIT_BENCH_PEERS_CLIENTS"
MAX_CLIENTS = 1000
PEER_SIZES: dict[str, Size] = {
    "connects": Size("KIT_BENCH_PEERS_CONNECTS", 150, True, 2, "handshakes per round (at least the clients)"),
    "rounds": Size("KIT_BENCH_PEERS_ROUNDS", 3, False, 1, "timed rounds of connects and of raw puts"),
    "broadcasts": Size("KIT_BENCH_PEERS_BROADCASTS", 5, False, 1, "timed broadcasts per client count"),
    "hold_s": Size("KIT_BENCH_PEERS_HOLD_S", 2.0, True, 0.2, "seconds the held connections are held"),
}

# What each side does per request that the other does not, for the reader of the table (and the results).
WORK_ONLY_LAB: tuple[str, ...] = (
    "SigV4 verification and an IAM policy evaluation at the DynamoDB front door on every handler call "
    "(a second HTTP hop before DynamoDB Local), and on every @connections post (the execution role's policy)",
    "every log line kept: Lambda's (START, the handler's line, END, REPORT) and API Gateway's execution and "
    "access log lines, written to CloudWatch Logs (moto's store, in the lab process) where FilterLogEvents "
    "and Logs Insights read them",
    "a Lambda runtime with per-environment worker processes, capped per function, frozen between requests",
    "deployment snapshots: a route is served as the stage's last deployment has it",
    "connection ids in API Gateway's 16-character form; throttling and quotas checked per route and stage",
)
WORK_ONLY_PEER: tuple[str, ...] = (
    "a Python process per concurrent invocation (spawned through /bin/sh, kept warm, never capped, ended "
    "after 60 s idle), so with N clients at once N interpreters run the handler",
    "every log line of the handler and one duration line per invocation written to its own stdout "
    "(a file here), nothing shipped anywhere",
    "an idle and a hard timer per connection (600 s and 7,200 s); @connections answers without signing or "
    "any permission check",
)


@dataclass(frozen=True)
class PeerSettings:
    """How big a ``make bench-peers`` run is (environment variables above; ``KIT_BENCH_SCALE`` scales)."""

    clients: tuple[int, ...] = (1, 10, 50)
    connects: int = 150
    rounds: int = 3
    broadcasts: int = 5
    hold_s: float = 2.0
    scale: float = 1.0
    output: Path = DEFAULT_OUTPUT

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> PeerSettings:
        scale = read_scale(environ)
        sizes = {name: read_size(environ, spec, scale) for name, spec in PEER_SIZES.items()}
        output = environ.get(OUTPUT_ENV)
        return cls(
            clients=parse_clients(environ.get(CLIENTS_ENV)),
            connects=round(sizes["connects"]),
            rounds=round(sizes["rounds"]),
            broadcasts=round(sizes["broadcasts"]),
            hold_s=sizes["hold_s"],
            scale=scale,
            output=Path(output) if output else DEFAULT_OUTPUT,
        )

    def connects_for(self, clients: int) -> int:
        """Handshakes per round with ``clients`` at once: never fewer than the clients themselves."""
        return max(self.connects, clients)

    def as_dict(self) -> dict[str, object]:
        return {
            "clients": list(self.clients),
            "connects": self.connects,
            "rounds": self.rounds,
            "broadcasts": self.broadcasts,
            "hold_s": self.hold_s,
            "scale": self.scale,
            "output": str(self.output),
        }


def parse_clients(raw: str | None) -> tuple[int, ...]:
    """``"1,10,50"`` -> ``(1, 10, 50)``: distinct whole numbers from 1 to ``MAX_CLIENTS``, in order."""
    if raw is None or not raw.strip():
        return PeerSettings.clients
    counts: list[int] = []
    for part in raw.split(","):
        text = part.strip()
        if not text.isdigit() or not 1 <= int(text) <= MAX_CLIENTS:
            raise ConfigurationError(
                f"{CLIENTS_ENV}={raw!r}: {text!r} is not a client count; use whole numbers from 1 to "
                f"{MAX_CLIENTS} separated by commas, e.g. 1,10,50."
            )
        counts.append(int(text))
    return tuple(sorted(set(counts)))


def clients_label(clients: int) -> str:
    return "1 client, in sequence" if clients == 1 else f"{clients} clients at once"


@dataclass(frozen=True)
class Comparison:
    """One measure of one workload: the lab's value against the other side's (the peer, or raw put_item).

    ``target`` None: shown for the reader, held to nothing. ``ratio`` is ``lab / other``.
    """

    workload: str
    measure: str
    unit: str
    lab: float
    other: float
    _: KW_ONLY
    other_name: str = PEER
    other_unit: str | None = None  # when the other side counts something else (raw puts, not connects)
    better: Better = "higher"
    target: float | None = None
    target_source: TargetSource = "issue"
    details: Mapping[str, Detail] = field(default_factory=dict)
    shortfall: str = ""  # why the target is not met whatever the ratio, e.g. connections the lab lost

    @property
    def ratio(self) -> float | None:
        return ratio(self.lab, self.other, "value/baseline")

    @property
    def met(self) -> bool | None:
        """Whether the ratio reaches the target; None without a target; False when unmeasured or short."""
        if self.target is None:
            return None
        return target_met(self.ratio, self.target, self.better, self.shortfall)

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "-"
        return f"{'≥' if self.better == 'higher' else '≤'} {self.target:g}"

    def as_dict(self) -> dict[str, object]:
        def finite(value: float | None) -> float | None:
            return value if value is not None and math.isfinite(value) else None

        return {
            "workload": self.workload,
            "measure": self.measure,
            "unit": self.unit,
            "other_unit": self.other_unit or self.unit,
            "lab": finite(self.lab),
            "other": finite(self.other),
            "other_name": self.other_name,
            "ratio_lab_to_other": finite(self.ratio),
            "better": self.better,
            "target": self.target,
            "target_text": self.target_text,
            "target_source": self.target_source if self.target is not None else None,
            "met": self.met,
            "shortfall": self.shortfall or None,
            "details": {key: finite(v) if isinstance(v, float) else v for key, v in self.details.items()},
        }


# ---------------------------------------------------------------------------------------------------------
# What each side measured, and the comparisons made from it


@dataclass
class ClientsResult:
    """One side's figures at one client count. NaN: not measured (the phase failed, or nothing to time)."""

    clients: int
    connects: int = 0  # handshakes that completed, over the rounds
    connect_failures: int = 0
    connects_stored: int = 0  # items found in the table right after the handshakes
    connect_rate: float = math.nan  # connects/s
    handshake_p50_ms: float = math.nan
    handshake_p99_ms: float = math.nan
    cpu_ms_per_connect: float = math.nan  # CPU of the stack's processes (not the clients') per handshake
    raw_put_rate: float = math.nan  # put_item/s with `clients` threads on this side's engine
    raw_put_p50_ms: float = math.nan
    held_requested: int = 0
    held: int = 0  # open, answering a ping and stored after the hold
    broadcast_expected: int = 0  # receivers times timed broadcasts
    broadcast_delivered: int = 0
    delivery_p50_ms: float = math.nan
    delivery_p99_ms: float = math.nan
    disconnects_outstanding: int = 0  # the most items left in the table after any close's bounded drain


def connect_shortfall(lab: ClientsResult) -> str:
    """Why the lab's connects/s meets no target whatever its ratio: a handshake failed, or the table does not
    hold every connection made (a rate of connections not stored is not the rate the issue asks for)."""
    problems = []
    if lab.connects_stored != lab.connects:
        problems.append(f"lab stored {lab.connects_stored}/{lab.connects}")
    if lab.connect_failures:
        problems.append(f"{lab.connect_failures} handshake(s) failed")
    return ", ".join(problems)


def compare(lab: ClientsResult, peer: ClientsResult) -> list[Comparison]:
    """The rows of one client count: the lab against serverless-offline, and against raw put_item (pure)."""
    n = lab.clients
    workload = clients_label(n)
    at_once = n > 1
    shortfall = connect_shortfall(lab)
    rows = [
        Comparison(
            workload,
            "connects/s",
            "connects/s",
            lab.connect_rate,
            peer.connect_rate,
            target=CONNECT_VS_PEER if at_once else None,
            shortfall=shortfall,
            details={
                "lab_connects": lab.connects,
                "lab_stored": lab.connects_stored,
                "lab_failed": lab.connect_failures,
                "peer_connects": peer.connects,
                "peer_stored": peer.connects_stored,
                "peer_failed": peer.connect_failures,
            },
        ),
        Comparison(
            workload,
            "$connect handshake p50",
            "ms",
            lab.handshake_p50_ms,
            peer.handshake_p50_ms,
            better="lower",
            target=None if at_once else P50_VS_PEER,
        ),
        Comparison(
            workload,
            "$connect handshake p99",
            "ms",
            lab.handshake_p99_ms,
            peer.handshake_p99_ms,
            better="lower",
        ),
        Comparison(
            workload,
            "stack CPU per $connect",
            "ms",
            lab.cpu_ms_per_connect,
            peer.cpu_ms_per_connect,
            better="lower",
        ),
        Comparison(
            workload,
            "connects/s",
            "connects/s",
            lab.connect_rate,
            lab.raw_put_rate,
            other_name=RAW_PUT,
            other_unit="puts/s",
            target=CONNECT_VS_RAW if at_once else None,
            shortfall=shortfall,
            details={
                "raw_put_p50_ms": lab.raw_put_p50_ms,
                "peer_connect_rate": peer.connect_rate,
                "peer_raw_put_rate": peer.raw_put_rate,
                "peer_to_its_raw": _share(peer.connect_rate, peer.raw_put_rate),
            },
        ),
        Comparison(
            workload,
            "$disconnects outstanding after a drain (most)",
            "items",
            lab.disconnects_outstanding,
            peer.disconnects_outstanding,
            better="lower",
        ),
        Comparison(
            workload,
            "held (open, answering ping, stored)",
            "connections",
            lab.held,
            peer.held,
            details={"requested": lab.held_requested},
        ),
    ]
    if n > 1:
        rows += [
            Comparison(
                workload,
                "broadcast delivery p50",
                "ms",
                lab.delivery_p50_ms,
                peer.delivery_p50_ms,
                better="lower",
                details={
                    "lab_delivered": f"{lab.broadcast_delivered}/{lab.broadcast_expected}",
                    "peer_delivered": f"{peer.broadcast_delivered}/{peer.broadcast_expected}",
                },
            ),
            Comparison(
                workload,
                "broadcast delivery p99",
                "ms",
                lab.delivery_p99_ms,
                peer.delivery_p99_ms,
                better="lower",
            ),
        ]
    return rows


def _share(part: float, whole: float) -> float:
    value = ratio(part, whole, "value/baseline")
    return math.nan if value is None else value


def compare_all(lab: Sequence[ClientsResult], peer: Sequence[ClientsResult]) -> list[Comparison]:
    """Rows for every client count both sides measured, in the order of the client counts."""
    by_clients = {result.clients: result for result in peer}
    rows: list[Comparison] = []
    for result in sorted(lab, key=lambda r: r.clients):
        if result.clients in by_clients:
            rows += compare(result, by_clients[result.clients])
    return rows


# ---------------------------------------------------------------------------------------------------------
# Showing it


def _cell(value: float, unit: str) -> str:
    return f"{format_number(value)} {unit}" if math.isfinite(value) else "-"


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(header, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return lines


def render_table(
    comparisons: Sequence[Comparison],
    *,
    work_only_lab: Sequence[str] = WORK_ONLY_LAB,
    work_only_peer: Sequence[str] = WORK_ONLY_PEER,
    notes: Sequence[str] = (),
    width: int = 110,
) -> str:
    """One table per other side (serverless-offline, then raw put_item), then the work only one side does."""
    blocks: list[str] = []
    for other in dict.fromkeys(c.other_name for c in comparisons):
        short = "peer" if other == PEER else "raw"
        header = ("workload", "measure", "lab", other, f"lab/{short}", "target", "met")
        rows = [
            (
                c.workload,
                c.measure,
                _cell(c.lab, c.unit),
                _cell(c.other, c.other_unit or c.unit),
                format_number(c.ratio),
                c.target_text,
                met_text(c.met, c.shortfall),
            )
            for c in comparisons
            if c.other_name == other
        ]
        blocks.append("\n".join(_grid(header, rows)))
    sections = [("Work only the lab does:", work_only_lab), (f"Work only {PEER} does:", work_only_peer)]
    for title, items in sections:
        lines = [title]
        for item in items:
            lines += textwrap.wrap(item, width=width, initial_indent="  - ", subsequent_indent="    ")
        blocks.append("\n".join(lines))
    if notes:
        lines = ["Notes:"]
        for note in notes:
            lines += textwrap.wrap(note, width=width, initial_indent="  - ", subsequent_indent="    ")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def peers_section(
    comparisons: Sequence[Comparison],
    *,
    started_at: str,
    duration_s: float,
    machine: Mapping[str, object],
    settings: PeerSettings,
    versions: Mapping[str, str],
    notes: Sequence[str] = (),
    errors: Sequence[str] = (),
) -> dict[str, object]:
    """The ``peers`` section of ``bench/results.json`` (pure)."""
    judged = [c for c in comparisons if c.target is not None]
    return {
        "timestamp": started_at,
        "duration_s": round(duration_s, 1),
        "machine": dict(machine),
        "settings": settings.as_dict(),
        "versions": dict(versions),
        "comparisons": [c.as_dict() for c in comparisons],
        "all_targets_met": bool(judged) and all(c.met for c in judged) and not errors,
        "work_only_lab": list(WORK_ONLY_LAB),
        "work_only_peer": list(WORK_ONLY_PEER),
        "notes": list(notes),
        "errors": list(errors),
    }
