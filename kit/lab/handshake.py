"""Is an upgrade request a valid WebSocket opening handshake, and what does the gateway answer if not?

API Gateway checks the upgrade before it invokes ``$connect``: a plain GET, a request without a usable
``Sec-WebSocket-Key`` or with another protocol version never reaches the integration, so nothing is
stored and no ``$disconnect`` follows. The lab's shell asks :func:`check_upgrade` first and runs
``$connect`` only when it answers None.

The checks are RFC 6455 section 4.2.1's, in the order ``websockets`` applies them, and at least as
strict as that library on every header it reads, so that an upgrade accepted here is not refused by
``websockets`` after ``$connect`` ran. (If it ever were, the shell still runs ``$disconnect``, as for
any accepted connection whose 101 was not delivered.) The statuses are the ones the lab answered before
it checked the upgrade itself, which are ``websockets``' and RFC 7231's: 405, 505, 426 and 400. The
status and body API Gateway sends for each are not documented (inferred); the bodies here name the
problem in one line.

Pure: no I/O, no clock; it never imports ``websockets`` or ``asyncio``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from kit.lab.gateway_events import Header

WEBSOCKET_VERSION = "13"
_KEY_BYTES = 16  # the key is 16 random bytes, base64-encoded (RFC 6455 section 4.1)
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_PROTOCOL = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+(?:/[-!#$%&'*+.^_`|~0-9A-Za-z]+)?")
_TEXT = ("Content-Type", "text/plain; charset=utf-8")


@dataclass(frozen=True)
class UpgradeRejection:
    """The HTTP answer to an upgrade request that is not a valid opening handshake."""

    status: int
    body: str
    headers: tuple[Header, ...] = ()


def _values(headers: Sequence[Header], name: str) -> list[str]:
    wanted = name.lower()
    return [value.strip(" \t") for key, value in headers if key.lower() == wanted]


def _list_elements(values: Sequence[str], element: re.Pattern[str]) -> list[str] | None:
    """The elements of a comma-separated header (``1#element``), or None when one is malformed.

    Empty elements are skipped (RFC 7230 section 7), but each header must hold at least one.
    """
    elements: list[str] = []
    for value in values:
        present = [part for part in (part.strip(" \t") for part in value.split(",")) if part]
        if not present or not all(element.fullmatch(part) for part in present):
            return None
        elements.extend(present)
    return elements


def _refuse(status: int, problem: str, *headers: Header) -> UpgradeRejection:
    body = f"Failed to open a WebSocket connection: {problem}.\n"
    if status == 426:
        body += "This endpoint only accepts WebSocket upgrade requests.\n"
    return UpgradeRejection(status, body, (*headers, _TEXT))


def _single(headers: Sequence[Header], name: str) -> str | UpgradeRejection:
    values = _values(headers, name)
    if not values:
        return _refuse(400, f"missing {name} header")
    if len(values) > 1:
        return _refuse(400, f"more than one {name} header")
    return values[0]


def check_upgrade(method: str, protocol: str, headers: Sequence[Header]) -> UpgradeRejection | None:
    """None when the request is a valid opening handshake; otherwise the answer, before any ``$connect``.

    In order: method GET (else 405 with ``Allow: GET``); HTTP/1.1 (else 505); ``Connection`` listing
    ``upgrade`` and ``Upgrade`` being exactly ``websocket``, case-insensitive (absent or another value:
    426 with ``Upgrade: websocket``; a malformed list: 400); one ``Sec-WebSocket-Key`` decoding to 16
    bytes of strict base64 (else 400); one ``Sec-WebSocket-Version`` equal to ``13`` (else 400 with
    ``Sec-WebSocket-Version: 13``, the version the server speaks, as RFC 6455 section 4.4 asks); at
    most one ``Origin`` and a well-formed ``Sec-WebSocket-Protocol`` list, if any (else 400).
    """
    if method != "GET":
        return _refuse(405, f"method {method} is not GET", ("Allow", "GET"))
    if protocol != "HTTP/1.1":
        return _refuse(505, f"{protocol} is not HTTP/1.1")
    connection = _list_elements(_values(headers, "Connection"), _TOKEN)
    if connection is None:
        return _refuse(400, "malformed Connection header")
    if not any(option.lower() == "upgrade" for option in connection):
        return _refuse(426, "the Connection header does not list upgrade", ("Upgrade", "websocket"))
    upgrade = _list_elements(_values(headers, "Upgrade"), _PROTOCOL)
    if upgrade is None:
        return _refuse(400, "malformed Upgrade header")
    if len(upgrade) != 1 or upgrade[0].lower() != "websocket":
        return _refuse(426, "the Upgrade header is not websocket", ("Upgrade", "websocket"))
    key = _single(headers, "Sec-WebSocket-Key")
    if isinstance(key, UpgradeRejection):
        return key
    try:
        raw_key = base64.b64decode(key.encode(), validate=True)
    except (binascii.Error, ValueError):
        raw_key = b""
    if len(raw_key) != _KEY_BYTES:
        return _refuse(400, f"Sec-WebSocket-Key {key!r} is not 16 bytes in base64")
    version = _single(headers, "Sec-WebSocket-Version")
    if isinstance(version, UpgradeRejection):
        return version
    if version != WEBSOCKET_VERSION:
        problem = f"Sec-WebSocket-Version {version!r} is not {WEBSOCKET_VERSION}"
        return _refuse(400, problem, ("Sec-WebSocket-Version", WEBSOCKET_VERSION))
    if len(_values(headers, "Origin")) > 1:
        return _refuse(400, "more than one Origin header")
    if _list_elements(_values(headers, "Sec-WebSocket-Protocol"), _TOKEN) is None:
        return _refuse(400, "malformed Sec-WebSocket-Protocol header")
    return None
