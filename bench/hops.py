"""Where a ``$connect`` handshake's time goes, hop by hop: the lab's nested spans turned into exclusive parts.

The lab times each hop where it happens (:mod:`kit.lab.hops`), each inside the one before: the gateway's
handshake holds its Lambda invocation, which holds the exchange with a worker process, which holds the
handler's run (its REPORT Duration), which holds the call to the DynamoDB front door, which holds the
engine's answer. The client times the whole handshake. Subtracting each mean from the one around it gives
what each hop adds on its own; the parts add up to the client's mean handshake (pure).

Means, not medians: only means add up. Off the critical path (log shipping to moto) shows as CPU time in
the connect figure's details, not here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kit.lab import hops

# (the hop that holds it, the hop inside it, what the difference is)
PARTS: tuple[tuple[str, str | None, str], ...] = (
    ("client", hops.GATEWAY_HANDSHAKE, "client <-> gateway: TCP, the upgrade request and the 101, both ends"),
    (hops.GATEWAY_HANDSHAKE, hops.GATEWAY_INVOKE, "gateway: routing, the event, the invoke check, logs"),
    (
        hops.GATEWAY_INVOKE,
        hops.RUNTIME_EXCHANGE,
        "gateway -> runtime: a thread, a free warm worker (a wait when all are busy), its release",
    ),
    (hops.RUNTIME_EXCHANGE, hops.LAMBDA_DURATION, "runtime <-> worker: the event and the answer over pipes"),
    (hops.LAMBDA_DURATION, hops.FRONT_DOOR, "handler: its code and boto3 (serialise, sign, HTTP)"),
    (hops.FRONT_DOOR, hops.DYNAMODB_ENGINE, "DynamoDB front door: SigV4, IAM, re-signing"),
    (hops.DYNAMODB_ENGINE, None, "DynamoDB Local: HTTP and the write"),
)


def add_snapshot(totals: dict[str, list[float]], snapshot: Mapping[str, Mapping[str, Any]]) -> None:
    """Add one ``LabHost.hops()`` answer to running ``[count, total_ms]`` per hop."""
    for hop, stats in snapshot.items():
        entry = totals.setdefault(hop, [0.0, 0.0])
        entry[0] += float(stats.get("count", 0))
        entry[1] += float(stats.get("total_ms", 0.0))


def means(totals: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """The mean span (ms) per hop from ``[count, total_ms]``; hops never timed are left out."""
    return {hop: total / count for hop, (count, total) in totals.items() if count > 0}


def breakdown(client_mean_ms: float, hop_means: Mapping[str, float]) -> list[tuple[str, float]]:
    """Each hop's own share of a handshake (ms), outermost first; empty when a hop was not timed.

    A share can come out slightly negative when the hops' means are over slightly different sets of
    requests (a handshake refused before ``$connect`` has no invocation); it is kept as measured.
    """
    spans = {"client": client_mean_ms, **hop_means}
    if any(outer not in spans or (inner is not None and inner not in spans) for outer, inner, _ in PARTS):
        return []
    return [(label, spans[outer] - (spans[inner] if inner else 0.0)) for outer, inner, label in PARTS]


def render(parts: Sequence[tuple[str, float]]) -> str:
    """``label 1.2 ms (12%)`` per part, by the order of the hops (pure)."""
    total = sum(share for _, share in parts)
    return "; ".join(
        f"{label} {share:.2f} ms ({share / total:.0%})" if total > 0 else f"{label} {share:.2f} ms"
        for label, share in parts
    )
