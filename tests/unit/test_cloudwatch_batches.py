"""How the lab hands events to PutLogEvents: each cut to CloudWatch's event limit, batches within the API's
limits (tables of boundary cases)."""

from __future__ import annotations

import time

import pytest

from kit.lab.cloudwatch import (
    CUT_MARK,
    EVENT_OVERHEAD,
    MAX_BYTES,
    MAX_EVENTS,
    MAX_MESSAGE_BYTES,
    batches,
    cut,
)


@pytest.mark.parametrize(
    ("message", "kept_whole"),
    [
        ("", True),
        ("x" * MAX_MESSAGE_BYTES, True),  # exactly at the limit
        ("x" * (MAX_MESSAGE_BYTES + 1), False),  # one byte over
        ("é" * (MAX_MESSAGE_BYTES // 2), True),  # 2-byte characters, exactly at the limit
        ("é" * (MAX_MESSAGE_BYTES // 2) + "x", False),
        ("x" + "€" * (MAX_MESSAGE_BYTES // 3), True),  # 1 + 3 x 87381 bytes: exactly at the limit
        ("xx" + "€" * (MAX_MESSAGE_BYTES // 3), False),  # the cut falls inside a 3-byte character
        ("😀" * (MAX_MESSAGE_BYTES // 4 + 1), False),
        ("x" * 5_000_000, False),
    ],
)
def test_cut(message: str, kept_whole: bool) -> None:
    event = cut(message)
    size = len(event.encode())
    assert size <= MAX_MESSAGE_BYTES
    if kept_whole:
        assert event == message
    else:
        assert event.endswith(CUT_MARK)
        kept = event.removesuffix(CUT_MARK)
        assert message.startswith(kept)  # whole characters only, nothing altered
        assert size > MAX_MESSAGE_BYTES - len(CUT_MARK.encode()) - 4  # at most one character short


def sizes(batched: list[list[tuple[int, str]]]) -> list[tuple[int, int]]:
    return [(len(batch), sum(len(m.encode()) + EVENT_OVERHEAD for _, m in batch)) for batch in batched]


def test_batches_hold_at_most_the_events_a_call_takes() -> None:
    events = [(i, "m") for i in range(MAX_EVENTS + 1)]
    assert [len(batch) for batch in batches(events)] == [MAX_EVENTS, 1]
    assert [len(batch) for batch in batches(events[:MAX_EVENTS])] == [MAX_EVENTS]


@pytest.mark.parametrize(("extra", "calls"), [(0, 1), (1, 2)])
def test_batches_hold_at_most_the_bytes_a_call_takes(extra: int, calls: int) -> None:
    # Four events whose bytes (with 26 each) fill a call exactly; one byte more needs a second call.
    body = MAX_BYTES // 4 - EVENT_OVERHEAD
    assert body <= MAX_MESSAGE_BYTES
    events = [(i, "x" * body) for i in range(3)] + [(3, "x" * (body + MAX_BYTES % 4 + extra))]
    batched = batches(events)
    assert len(batched) == calls
    assert all(total <= MAX_BYTES for _, total in sizes(batched))
    assert [m for batch in batched for _, m in batch] == [m for _, m in events]  # nothing lost or reordered


def test_batches_are_in_time_order_and_lose_nothing() -> None:
    events = [(3, "c"), (1, "a"), (2, "b"), (1, "a2")]
    assert batches(events) == [[(1, "a"), (1, "a2"), (2, "b"), (3, "c")]]
    assert batches([]) == []


def test_moto_logs_delivers_into_the_store_the_api_reads_and_creates_groups_and_streams_once() -> None:
    import boto3
    from moto import mock_aws

    from kit.lab.cloudwatch import LogWriter, MotoLogs

    now = int(time.time() * 1000)  # CloudWatch refuses events older than 14 days; moto too
    with mock_aws():
        delivery = MotoLogs("123456789012", "us-east-2")
        writer = LogWriter(delivery)
        try:
            writer.write("/aws/lambda/f", "s1", [(now, "first"), (now + 1, "second")])
            writer.write("/aws/lambda/f", "s1", [(now + 2, "third")])
            assert writer.flush()
            delivery.create_log_group(logGroupName="/aws/lambda/f")  # exists: left as it is
            delivery.create_log_stream(logGroupName="/aws/lambda/f", logStreamName="s1")
            logs = boto3.client(
                "logs", region_name="us-east-2", aws_access_key_id="a", aws_secret_access_key="b"
            )
            events = logs.filter_log_events(logGroupName="/aws/lambda/f")["events"]
            assert [event["message"] for event in events] == ["first", "second", "third"]
            assert [
                s["logStreamName"]
                for s in logs.describe_log_streams(logGroupName="/aws/lambda/f")["logStreams"]
            ] == ["s1"]
            # Another region's store is another store, as on AWS.
            other = boto3.client(
                "logs", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
            )
            assert other.describe_log_groups()["logGroups"] == []
        finally:
            writer.close()


DAY_MS = 24 * 3600 * 1000
HOUR_MS = 3600 * 1000
MARGIN_MS = 60_000  # a minute either side of moto's window: the test's clock and moto's read apart


@pytest.mark.parametrize(
    ("offsets_ms", "stored", "said"),
    [
        ([-14 * DAY_MS + MARGIN_MS, 0, 2 * HOUR_MS - MARGIN_MS], 3, []),  # just inside both ends: no word
        (
            [-14 * DAY_MS - MARGIN_MS, -14 * DAY_MS + MARGIN_MS, 0, 2 * HOUR_MS - MARGIN_MS],
            3,
            ["up to index 0 too old (over 14 days)"],
        ),
        (
            [0, 2 * HOUR_MS - MARGIN_MS, 2 * HOUR_MS + MARGIN_MS],
            2,
            ["from index 2 too new (over 2 h ahead)"],
        ),
        (
            [-14 * DAY_MS - MARGIN_MS, 0, 2 * HOUR_MS + MARGIN_MS],
            1,
            ["up to index 0 too old (over 14 days)", "from index 2 too new (over 2 h ahead)"],
        ),
    ],
)
def test_events_moto_rejects_are_reported_with_group_stream_and_indices(
    offsets_ms: list[int], stored: int, said: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    import boto3
    from moto import mock_aws

    from kit.lab.cloudwatch import LogWriter, MotoLogs

    now = int(time.time() * 1000)
    caplog.set_level("WARNING", logger="kit.lab")
    with mock_aws():
        writer = LogWriter(MotoLogs("123456789012", "us-east-2"))
        try:
            writer.write(
                "/aws/lambda/f", "s1", [(now + offset, f"event {i}") for i, offset in enumerate(offsets_ms)]
            )
            assert writer.flush()
        finally:
            writer.close()
        logs = boto3.client("logs", region_name="us-east-2", aws_access_key_id="a", aws_secret_access_key="b")
        kept = logs.get_log_events(logGroupName="/aws/lambda/f", logStreamName="s1", startFromHead=True)
    assert len(kept["events"]) == stored
    warnings = [r.getMessage() for r in caplog.records if r.name == "kit.lab" and r.levelname == "WARNING"]
    if not said:
        assert warnings == []
        return
    assert len(warnings) == 1
    (warning,) = warnings
    assert f"/aws/lambda/f / s1 rejected events of a batch of {len(offsets_ms)}: " in warning
    for part in said:
        assert part in warning
    assert "\n" not in warning
