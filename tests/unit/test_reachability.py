"""kit.reachability: after UNREACHABLE_AFTER connection failures in a row to one endpoint, a call there that
cannot connect is not retried; one answer resets the count. Real botocore clients against a closed loopback
port count the attempts (no sleep is timed)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from kit.reachability import UNREACHABLE_AFTER, Reachability


@pytest.mark.parametrize(
    ("attempts", "stops"),
    [
        ([True], [False]),
        ([True] * UNREACHABLE_AFTER, [False] * (UNREACHABLE_AFTER - 1) + [True]),  # exactly at the limit
        ([True, True, False, True, True], [False] * 5),  # an answer sets the count back to 0
        ([True, True, False, True, True, True], [False] * 5 + [True]),
        ([False] * 5, [False] * 5),
    ],
)
def test_an_endpoint_stops_being_retried_at_the_limit_of_failures_in_a_row(
    attempts: list[bool], stops: list[bool]
) -> None:
    reach = Reachability()
    assert [reach.record("http://a", failed=failed) for failed in attempts] == stops


def test_endpoints_are_counted_apart() -> None:
    reach = Reachability(after=2)
    assert not reach.record("http://a", failed=True)
    assert not reach.record("http://b", failed=True)
    assert reach.record("http://a", failed=True)
    assert reach.failures("http://b") == 1


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nobody listens on (bound, never listening: connections are refused)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def _client(endpoint: str, service: str = "dynamodb") -> object:
    return boto3.client(
        service,
        region_name="us-east-2",
        endpoint_url=endpoint,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"mode": "standard", "max_attempts": 10}, connect_timeout=1),
    )


def _attempts(client: object) -> list[int]:
    sent: list[int] = []
    client.meta.events.register("before-send", lambda **_: sent.append(1))  # type: ignore[attr-defined]
    return sent


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry delays, recorded instead of slept (only the attempts are counted)."""
    import botocore.endpoint

    delays: list[float] = []
    monkeypatch.setattr(botocore.endpoint.time, "sleep", delays.append)
    return delays


def test_a_dead_endpoint_ends_later_calls_at_their_first_failure(closed_port: int) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}"
    reach = Reachability()
    first, second = _client(endpoint), _client(endpoint, "logs")
    reach.attach(first)
    reach.attach(second)
    first_sent, second_sent = _attempts(first), _attempts(second)
    with pytest.raises(EndpointConnectionError):
        first.list_tables()  # type: ignore[attr-defined]
    assert len(first_sent) == UNREACHABLE_AFTER  # not botocore's 10
    with pytest.raises(EndpointConnectionError):
        second.describe_log_groups()  # type: ignore[attr-defined]
    assert len(second_sent) == 1  # another client of the same endpoint: tried once, not retried


def test_without_it_botocore_retries_every_attempt(closed_port: int) -> None:
    """The baseline the test above is measured against."""
    client = _client(f"http://127.0.0.1:{closed_port}")
    sent = _attempts(client)
    with pytest.raises(EndpointConnectionError):
        client.list_tables()  # type: ignore[attr-defined]
    assert len(sent) == 11  # the first attempt and Config's max_attempts=10 retries
