"""One probe client: its WebSocket (websocket-client) and a thread that collects what arrives on it.

The session in :mod:`kit.probe` opens the socket (with :class:`ProbeSocket`, which never raises on a close
echo to a peer already gone) and hands it to a :class:`Client`; the client's thread then records each text
or binary frame with its arrival time, and the close (the server's, the probe's own, or a lost connection)
as :mod:`kit.probe_core` reads it. Waits wake on ``arrived``, the condition shared by a session's clients.
No verdict is decided here, and no token is kept beyond the client: rows carry ``user_hash``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import websocket

from kit import probe_core as core
from kit.redact import user_hash


class ProbeSocket(websocket.WebSocket):
    """websocket-client answers a close frame by echoing one; the peer may already be gone, so never raise."""

    def send_close(self, status: int = core.CLOSE_NORMAL, reason: bytes | str = b"") -> None:
        with contextlib.suppress(OSError, websocket.WebSocketException):
            super().send_close(status, reason)


class Client:
    """One probe client: its socket (``ws``, set by the session once connected), what the table and the
    close said of it, and a thread that collects every frame that arrives, with its arrival time."""

    def __init__(
        self, index: int, token: str | None, url: str, user_agent: str, arrived: threading.Condition
    ) -> None:
        self.index = index
        self.token = token
        self.url = url
        self.user_agent = user_agent
        self.user_hash = user_hash(token) if token is not None else None
        self.ws: Any = None
        self.connected_at: float | None = None
        self.connection_id: str | None = None
        self.item: dict[str, str] | None = None
        self.closed_early = False
        self.disconnected_at: float | None = None
        self.probe_closing = False
        self.close: core.Close | None = None
        self.frames: list[core.ReceivedFrame] = []
        self.messages_sent = 0  # action frames written, so the logs' count of handled messages compares
        self._arrived = arrived
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_open(self) -> bool:
        return self.ws is not None and self.close is None and not self.probe_closing

    def has_closed(self) -> bool:
        return self.close is not None

    @property
    def closed_reason(self) -> str:
        return core.closed_reason(closed_early=self.closed_early, close=self.close)

    def start_receiving(self) -> None:
        self.ws.settimeout(0.2)  # the receiver polls, so it can be stopped without closing under it
        self._thread = threading.Thread(target=self._receive, name=f"kit-probe-{self.index}", daemon=True)
        self._thread.start()

    def frames_since(self, since: float) -> list[core.ReceivedFrame]:
        with self._arrived:
            return [frame for frame in self.frames if frame.at >= since]

    def error_frames_since(self, since: float) -> list[str]:
        """The gateway's error frames (not broadcasts) received since ``since``."""
        return [f.text for f in self.frames_since(since) if core.gateway_error_message(f.text) is not None]

    def _receive(self) -> None:
        ws = self.ws
        while not self._stop.is_set():
            try:
                opcode, data = ws.recv_data(control_frame=True)
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError, AttributeError) as exc:
                # AttributeError: websocket-client drops its socket when shut down under a read.
                if not self._stop.is_set():
                    lost = core.lost_connection_detail(type(exc).__name__)
                    self._closed(
                        core.close_of(
                            core.ABNORMAL_CLOSURE,
                            "",
                            time.monotonic(),
                            by_server=not self.probe_closing,
                            lost=lost,
                        )
                    )
                return
            now = time.monotonic()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code, reason = core.close_payload(data)
                self._closed(core.close_of(code, reason, now, by_server=not self.probe_closing))
                return
            if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
                with self._arrived:
                    self.frames.append(core.ReceivedFrame(now, text))
                    self._arrived.notify_all()

    def _closed(self, close: core.Close) -> None:
        with self._arrived:
            self.close = close
            self._arrived.notify_all()

    def shut(self) -> None:
        """Stop the receiver and close the TCP connection (websocket-client leaves it open after a close)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self.ws is not None:
            with contextlib.suppress(Exception):
                self.ws.shutdown()
