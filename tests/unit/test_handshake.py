"""The upgrade check the lab gateway makes before ``$connect``: a table of requests and answers."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.datastructures import Headers
from websockets.http11 import Request
from websockets.server import ServerProtocol

from kit.lab import handshake

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example: 16 bytes
VALID = (
    ("Host", "127.0.0.1:8080"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
)


def with_headers(*changes: tuple[str, str | None]) -> list[tuple[str, str]]:
    """VALID with each named header replaced by the value given (None: removed); new names appended."""
    headers = list(VALID)
    for name, value in changes:
        headers = [(key, old) for key, old in headers if key.lower() != name.lower()]
        if value is not None:
            headers.append((name, value))
    return headers


def key_of(length: int) -> str:
    return base64.b64encode(bytes(range(length))).decode()


ACCEPTED = [
    list(VALID),
    with_headers(("Connection", "keep-alive, Upgrade")),  # what browsers send
    with_headers(("Connection", ", Upgrade,, ")),  # empty list elements are skipped
    with_headers(("Connection", "upgrade")),
    with_headers(("Connection", "UPGRADE")),
    with_headers(("Upgrade", "WebSocket")),  # RFC 6455 section 11.2 spelling
    with_headers(("Upgrade", "websocket ")),
    with_headers(("Sec-WebSocket-Key", key_of(16))),
    with_headers(("Origin", "https://app.example.com")),
    with_headers(("Sec-WebSocket-Protocol", "chat, superchat")),
    with_headers(("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")),
    [*VALID, ("Connection", "keep-alive")],  # Connection twice: the lists join
    [(name.lower(), value) for name, value in VALID],  # header names are case-insensitive
]


@pytest.mark.parametrize("headers", ACCEPTED)
def test_a_valid_opening_handshake_is_not_refused(headers: list[tuple[str, str]]) -> None:
    assert handshake.check_upgrade("GET", "HTTP/1.1", headers) is None


REFUSED = [
    ("POST", "HTTP/1.1", VALID, 405, "method POST is not GET"),
    ("get", "HTTP/1.1", VALID, 405, "method get is not GET"),  # methods are case-sensitive
    ("GET", "HTTP/1.0", VALID, 505, "HTTP/1.0 is not HTTP/1.1"),
    # A plain GET: neither Connection nor Upgrade.
    (
        "GET",
        "HTTP/1.1",
        with_headers(("Connection", None), ("Upgrade", None)),
        426,
        "does not list upgrade",
    ),
    ("GET", "HTTP/1.1", with_headers(("Connection", "keep-alive")), 426, "does not list upgrade"),
    ("GET", "HTTP/1.1", with_headers(("Connection", "upgrades")), 426, "does not list upgrade"),
    ("GET", "HTTP/1.1", with_headers(("Upgrade", None)), 426, "the Upgrade header is not websocket"),
    ("GET", "HTTP/1.1", with_headers(("Upgrade", "h2c")), 426, "the Upgrade header is not websocket"),
    ("GET", "HTTP/1.1", with_headers(("Upgrade", "websocket/13")), 426, "is not websocket"),
    ("GET", "HTTP/1.1", with_headers(("Upgrade", "websocket, h2c")), 426, "is not websocket"),
    ("GET", "HTTP/1.1", [*VALID, ("Upgrade", "websocket")], 426, "is not websocket"),  # two protocols
    ("GET", "HTTP/1.1", with_headers(("Connection", "")), 400, "malformed Connection header"),
    ("GET", "HTTP/1.1", with_headers(("Connection", " , ")), 400, "malformed Connection header"),
    ("GET", "HTTP/1.1", with_headers(("Connection", "Up grade")), 400, "malformed Connection header"),
    ("GET", "HTTP/1.1", with_headers(("Upgrade", "web socket")), 400, "malformed Upgrade header"),
    ("GET", "HTTP/1.1", with_headers(("Sec-WebSocket-Key", None)), 400, "missing Sec-WebSocket-Key"),
    ("GET", "HTTP/1.1", [*VALID, ("Sec-WebSocket-Key", KEY)], 400, "more than one Sec-WebSocket-Key"),
    ("GET", "HTTP/1.1", with_headers(("Sec-WebSocket-Key", key_of(15))), 400, "is not 16 bytes"),
    ("GET", "HTTP/1.1", with_headers(("Sec-WebSocket-Key", key_of(17))), 400, "is not 16 bytes"),
    ("GET", "HTTP/1.1", with_headers(("Sec-WebSocket-Key", "not base64!")), 400, "is not 16 bytes"),
    ("GET", "HTTP/1.1", with_headers(("Sec-WebSocket-Key", KEY[:-1])), 400, "is not 16 bytes"),  # padding
    ("GET", "HTTP/1.1", with_headers(("Sec-WebSocket-Key", "")), 400, "is not 16 bytes"),
    (
        "GET",
        "HTTP/1.1",
        with_headers(("Sec-WebSocket-Version", None)),
        400,
        "missing Sec-WebSocket-Version",
    ),
    ("GET", "HTTP/1.1", with_headers(("Sec-WebSocket-Version", "8")), 400, "'8' is not 13"),
    ("GET", "HTTP/1.1", with_headers(("Sec-WebSocket-Version", "13, 8")), 400, "'13, 8' is not 13"),
    (
        "GET",
        "HTTP/1.1",
        [*VALID, ("Sec-WebSocket-Version", "13")],
        400,
        "more than one Sec-WebSocket-Version",
    ),
    (
        "GET",
        "HTTP/1.1",
        [*VALID, ("Origin", "https://a.example.com"), ("Origin", "https://b.example.com")],
        400,
        "more than one Origin header",
    ),
    (
        "GET",
        "HTTP/1.1",
        with_headers(("Sec-WebSocket-Protocol", "chat;")),
        400,
        "malformed Sec-WebSocket-Protocol",
    ),
    (
        "GET",
        "HTTP/1.1",
        with_headers(("Sec-WebSocket-Protocol", "a b")),
        400,
        "malformed Sec-WebSocket-Protocol",
    ),
]


@pytest.mark.parametrize(("method", "protocol", "headers", "status", "problem"), REFUSED)
def test_an_invalid_upgrade_is_refused_before_connect(
    method: str, protocol: str, headers: list[tuple[str, str]], status: int, problem: str
) -> None:
    rejection = handshake.check_upgrade(method, protocol, headers)
    assert rejection is not None
    assert rejection.status == status
    assert rejection.body.startswith("Failed to open a WebSocket connection: ")
    assert problem in rejection.body
    assert rejection.body.endswith("\n")
    assert ("Content-Type", "text/plain; charset=utf-8") in rejection.headers


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("POST", VALID, ("Allow", "GET")),
        ("GET", with_headers(("Connection", None)), ("Upgrade", "websocket")),
        ("GET", with_headers(("Upgrade", "h2c")), ("Upgrade", "websocket")),
        ("GET", with_headers(("Sec-WebSocket-Version", "8")), ("Sec-WebSocket-Version", "13")),
    ],
)
def test_a_refusal_says_what_the_server_wants(
    method: str, headers: list[tuple[str, str]], expected: tuple[str, str]
) -> None:
    rejection = handshake.check_upgrade(method, "HTTP/1.1", headers)
    assert rejection is not None and expected in rejection.headers


def test_the_first_problem_decides() -> None:
    # A plain POST with nothing else is refused for its method, as websockets checks that first.
    rejection = handshake.check_upgrade("POST", "HTTP/1.0", [("Host", "x")])
    assert rejection is not None and rejection.status == 405
    # A plain GET without key or version is a 426, not a 400.
    rejection = handshake.check_upgrade("GET", "HTTP/1.1", [("Host", "x")])
    assert rejection is not None and rejection.status == 426


# -- never laxer than websockets: an upgrade accepted here must not be refused after $connect ran ---------------


def websockets_status(method: str, protocol: str, headers: list[tuple[str, str]]) -> int:
    """The status websockets' own handshake answers (101 when it accepts), as the lab configures it."""
    request = Request("/prod", Headers(headers), method, protocol)
    return ServerProtocol(extensions=None).accept(request).status_code


ALL_CASES = [
    *[("GET", "HTTP/1.1", headers) for headers in ACCEPTED],
    *[(method, protocol, headers) for method, protocol, headers, _, _ in REFUSED],
]


@pytest.mark.parametrize(("method", "protocol", "headers"), ALL_CASES)
def test_the_check_agrees_with_websockets_on_every_table_case(
    method: str, protocol: str, headers: list[tuple[str, str]]
) -> None:
    rejection = handshake.check_upgrade(method, protocol, headers)
    assert (rejection.status if rejection else 101) == websockets_status(method, protocol, headers)


HEADER_TEXT = st.text(alphabet=' ,;/=\t+aAbBcdegknoprsuvwxz0123456789-"', max_size=30)


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(
        [
            "Connection",
            "Upgrade",
            "Sec-WebSocket-Key",
            "Sec-WebSocket-Version",
            "Origin",
            "Sec-WebSocket-Protocol",
        ]
    ),
    value=HEADER_TEXT | st.sampled_from(["upgrade", "websocket", "13", KEY, "chat", "upgrade, keep-alive"]),
    duplicate=st.booleans(),
)
def test_whatever_websockets_refuses_is_refused_here(name: str, value: str, duplicate: bool) -> None:
    value = value.strip(" \t")  # websockets strips header values while parsing
    headers = [*with_headers((name, value)), *([(name, value)] if duplicate else [])]
    if websockets_status("GET", "HTTP/1.1", headers) != 101:
        assert handshake.check_upgrade("GET", "HTTP/1.1", headers) is not None, headers
