"""kit.lab.hops: the spans the lab's parts record, as the bench reads them."""

from __future__ import annotations

import threading

import pytest

from kit.lab.hops import HOPS, Hops, HopStats


def test_a_hop_counts_every_span_and_keeps_the_most_recent() -> None:
    hops = Hops(keep=3)
    for seconds in (0.001, 0.002, 0.003, 0.004):
        hops.record("h", seconds)
    stats = hops.snapshot()["h"]
    assert stats.count == 4
    assert stats.total_ms == pytest.approx(10.0)
    assert stats.mean_ms == pytest.approx(2.5)
    assert stats.recent_ms == pytest.approx((2.0, 3.0, 4.0))  # exactly `keep`: the oldest one went


def test_a_span_is_recorded_when_its_block_raises() -> None:
    hops = Hops()
    with pytest.raises(ValueError), hops.span("h"):
        raise ValueError("boom")
    assert hops.snapshot()["h"].count == 1


def test_reset_forgets_every_hop_and_an_unrecorded_hop_is_absent() -> None:
    hops = Hops()
    hops.record("h", 0.5)
    hops.reset()
    assert hops.snapshot() == {}
    assert HopStats(0, 0.0, ()).mean_ms == 0.0


def test_spans_from_many_threads_are_all_counted() -> None:
    hops = Hops(keep=10)

    def record() -> None:
        for _ in range(1000):
            hops.record("h", 0.001)

    threads = [threading.Thread(target=record) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = hops.snapshot()["h"]
    assert (stats.count, len(stats.recent_ms)) == (4000, 10)
    assert stats.total_ms == pytest.approx(4000.0)


def test_the_json_form_says_count_total_and_the_recent_spans() -> None:
    hops = Hops()
    hops.record("h", 0.25)
    assert hops.snapshot()["h"].to_json() == {"count": 1, "total_ms": 250.0, "recent_ms": [250.0]}


def test_the_hops_are_named_once_each() -> None:
    assert len(set(HOPS)) == len(HOPS) == 6
