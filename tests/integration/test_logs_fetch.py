"""kit.logs against CloudWatch Logs served by moto: real pagination, and botocore retries on throttling."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from kit import logs
from kit.errors import AwsError
from kit.lab import engines
from kit.target import Target

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def moto_logs() -> Iterator[tuple[engines.Engine, Any]]:
    engine = engines.start_moto()
    client = Target.local({"logs": engine.endpoint_url}).client("logs")
    client.create_log_group(logGroupName="/aws/lambda/chat")
    client.create_log_stream(logGroupName="/aws/lambda/chat", logStreamName="2026/11/25/[$LATEST]abc")
    base = int(datetime.now(UTC).timestamp() * 1000) - 60_000
    client.put_log_events(
        logGroupName="/aws/lambda/chat",
        logStreamName="2026/11/25/[$LATEST]abc",
        logEvents=[{"timestamp": base + i, "message": f"line {i}"} for i in range(25)],
    )
    yield engine, client
    engine.stop()


def test_pages_are_followed_to_the_end(moto_logs: tuple[engines.Engine, Any]) -> None:
    _, client = moto_logs
    report = logs.FetchReport("/aws/lambda/chat")
    start = int((datetime.now(UTC) - timedelta(hours=1)).timestamp() * 1000)
    end = int(datetime.now(UTC).timestamp() * 1000)
    events = list(
        logs.filter_events(client, "/aws/lambda/chat", start_ms=start, end_ms=end, page_size=4, report=report)
    )
    assert [e["message"] for e in events] == [f"line {i}" for i in range(25)]
    assert report.pages >= 7


def test_missing_group_is_reported(moto_logs: tuple[engines.Engine, Any]) -> None:
    _, client = moto_logs
    fetched = logs.fetch_events(
        client, ["/aws/lambda/never-invoked"], start=datetime.now(UTC) - timedelta(hours=1)
    )
    assert fetched.events.empty
    assert fetched.report.loc[0, "status"] == "missing"


class ThrottlingProxy:
    """Answers the first ``throttle`` requests with CloudWatch's ThrottlingException, then forwards."""

    def __init__(self, upstream: str, throttle: int) -> None:
        self.throttled = 0
        self.forwarded = 0
        proxy = self
        parts = urlsplit(upstream)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.throttled < throttle:
                    proxy.throttled += 1
                    payload = json.dumps(
                        {"__type": "ThrottlingException", "message": "Rate exceeded"}
                    ).encode()
                    self.send_response(400)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                else:
                    proxy.forwarded += 1
                    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                    connection.request("POST", self.path, body=body, headers=headers)
                    answer = connection.getresponse()
                    payload = answer.read()
                    self.send_response(answer.status)
                    self.send_header("Content-Type", answer.getheader("Content-Type") or "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"


def test_throttling_is_retried_by_the_configured_client(moto_logs: tuple[engines.Engine, Any]) -> None:
    engine, _ = moto_logs
    proxy = ThrottlingProxy(engine.endpoint_url, throttle=2)
    try:
        client = Target.local({"logs": proxy.url}).client("logs")
        fetched = logs.fetch_events(
            client, ["/aws/lambda/chat"], start=datetime.now(UTC) - timedelta(hours=1)
        )
    finally:
        proxy.server.shutdown()
    assert len(fetched.events) == 25
    assert proxy.throttled == 2 and proxy.forwarded >= 1


def test_the_labs_insights_evaluates_filter_and_stats(moto_logs: tuple[engines.Engine, Any]) -> None:
    # moto alone would return all 25 lines for both queries; the lab's layer evaluates them.
    _, client = moto_logs
    end = int(datetime.now(UTC).timestamp())
    window = {"start_s": end - 3600, "end_s": end}
    counted = logs.count_events(client, ["/aws/lambda/chat"], **window)
    rows = logs.run_insights(
        client, ["/aws/lambda/chat"], "fields @message | filter @message like /line 1\\d/", **window
    )
    assert counted == 25
    assert sorted(row["message"] for row in rows) == [f"line {i}" for i in range(10, 20)]
    assert all(row["ptr"] for row in rows)


def test_a_big_window_is_read_with_insights_in_the_lab(moto_logs: tuple[engines.Engine, Any]) -> None:
    _, client = moto_logs
    fetched = logs.read_logs(
        client, ["/aws/lambda/chat"], start=datetime.now(UTC) - timedelta(hours=1), threshold=25
    )
    assert len(fetched.events) == 25  # no request in these lines is routine: every line is kept
    assert fetched.notes == [
        "read with Logs Insights (25 rows) instead of downloading 25 events (a window of 25 events or more is "
        "read server-side)"
    ]


def test_a_malformed_query_is_one_line_from_the_lab(moto_logs: tuple[engines.Engine, Any]) -> None:
    _, client = moto_logs
    end = int(datetime.now(UTC).timestamp())
    with pytest.raises(AwsError) as raised:
        logs.run_insights(client, ["/aws/lambda/chat"], "pattern @message", start_s=end - 60, end_s=end)
    assert "MalformedQueryException" in str(raised.value) and "\n" not in str(raised.value)
