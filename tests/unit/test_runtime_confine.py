"""Lambda workers can only resolve loopback names: nothing a handler does may leave the machine."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

SCRIPT = """
import socket, sys
from kit.lab.runtime_worker import confine_to_loopback
confine_to_loopback()
host = sys.argv[1]
try:
    socket.getaddrinfo(host, 443)
except socket.gaierror as exc:
    print("blocked", exc)
else:
    print("resolved")
"""


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("abc123.execute-api.us-east-2.amazonaws.com", "blocked"),
        ("dynamodb.us-east-2.amazonaws.com", "blocked"),
        ("127.0.0.1", "resolved"),
        ("localhost", "resolved"),
    ],
)
def test_only_loopback_resolves(host: str, expected: str) -> None:
    # In a child process: the guard replaces socket.getaddrinfo for the whole interpreter.
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, host], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.startswith(expected), out.stdout + out.stderr
    if expected == "blocked":
        assert "outside the kit lab" in out.stdout


def test_the_test_process_itself_is_not_confined() -> None:
    assert socket.getaddrinfo("127.0.0.1", 80)
