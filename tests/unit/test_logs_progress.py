"""A long log read shows its progress on a terminal, and nothing anywhere else (kit.logs.fetch_events)."""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kit import logs


class Pages:
    """filter_log_events answering three pages of two events."""

    def __init__(self) -> None:
        self.calls = 0

    def filter_log_events(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        page = self.calls
        events = [
            {
                "eventId": f"{page}-{i}",
                "timestamp": 1_764_810_000_000 + page * 10 + i,
                "message": "x",
                "logStreamName": "s",
            }
            for i in range(2)
        ]
        return {"events": events, **({"nextToken": f"t{page}"} if page < 3 else {})}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "progress", "shown"),
    [(Terminal, True, True), (Terminal, False, False), (io.StringIO, True, False)],
)
def test_progress_only_when_asked_and_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, stream: type[io.StringIO], progress: bool, shown: bool
) -> None:
    err = stream()
    monkeypatch.setattr(sys, "stderr", err)
    start = datetime.now(UTC) - timedelta(hours=1)
    fetched = logs.fetch_events(
        Pages(), ["/aws/lambda/chat"], start=start, progress=progress, limiter=logs.RateLimiter(1000)
    )
    assert len(fetched.events) == 6
    assert ("logs /aws/lambda/chat" in err.getvalue()) is shown
