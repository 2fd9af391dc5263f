"""bench.hops: the lab's nested spans as each hop's own share of a handshake."""

from __future__ import annotations

import pytest

from bench import hops as hop_spans
from kit.lab import hops

NESTED = {
    hops.GATEWAY_HANDSHAKE: 9.0,
    hops.GATEWAY_INVOKE: 8.0,
    hops.RUNTIME_EXCHANGE: 7.0,
    hops.LAMBDA_DURATION: 6.5,
    hops.FRONT_DOOR: 4.0,
    hops.DYNAMODB_ENGINE: 3.0,
}


def test_each_part_is_its_hop_less_the_one_inside_and_they_add_up_to_the_handshake() -> None:
    parts = hop_spans.breakdown(12.0, NESTED)
    assert [share for _, share in parts] == pytest.approx([3.0, 1.0, 1.0, 0.5, 2.5, 1.0, 3.0])
    assert sum(share for _, share in parts) == pytest.approx(12.0)
    assert [label.split(":")[0] for label, _ in parts][-1] == "DynamoDB Local"


@pytest.mark.parametrize("missing", sorted(NESTED))
def test_a_hop_not_timed_gives_no_breakdown_rather_than_a_wrong_one(missing: str) -> None:
    assert hop_spans.breakdown(12.0, {hop: ms for hop, ms in NESTED.items() if hop != missing}) == []


def test_snapshots_add_up_and_means_leave_out_hops_never_timed() -> None:
    totals: dict[str, list[float]] = {}
    hop_spans.add_snapshot(totals, {"a": {"count": 2, "total_ms": 10.0, "recent_ms": [4.0, 6.0]}})
    hop_spans.add_snapshot(totals, {"a": {"count": 1, "total_ms": 2.0}, "b": {"count": 0, "total_ms": 0.0}})
    assert totals == {"a": [3.0, 12.0], "b": [0.0, 0.0]}
    assert hop_spans.means(totals) == {"a": 4.0}


def test_render_gives_each_share_and_its_percentage() -> None:
    assert hop_spans.render([("x", 1.0), ("y", 3.0)]) == "x 1.00 ms (25%); y 3.00 ms (75%)"
    assert hop_spans.render([("x", 0.0)]) == "x 0.00 ms"
