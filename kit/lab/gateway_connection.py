"""The lab gateway's WebSocket connection as ``websockets`` serves it, with API Gateway's edges.

:class:`GatewayConnection` applies API Gateway's frame and message limits to each frame before
``websockets`` reassembles it (the pure :func:`kit.lab.gateway_core.check_inbound` decides), and drops a
client whose upgrade request is not complete within the header timeout (:func:`connection_type` builds the
class with a gateway's timeout). :func:`http_response` is a plain HTTP answer to an upgrade request with API
Gateway's headers; :func:`in_background` keeps a task referenced until it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode
from websockets.http11 import Response

from kit.lab import gateway_core as core
from kit.lab import gateway_events

# The event loop keeps only weak references to tasks: background closes are kept here until done.
_background_tasks: set[asyncio.Task[None]] = set()


def in_background(coroutine: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _background_tasks.add(task)
    task.add_done_callback(_background_tasks.discard)


class GatewayConnection(ServerConnection):
    """A server connection that applies API Gateway's frame limits before websockets reassembles, and
    drops a client whose upgrade request is not complete within the header timeout."""

    kit_connection: gateway_events.Connection | None = None
    kit_close: core.CloseDecision | None = None
    kit_subprotocol: str | None = None
    kit_header_timeout_s: float | None = None  # set per gateway by connection_type
    _kit_header_timer: asyncio.TimerHandle | None = None
    _message_len = 0
    _message_binary = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # Not websockets' open_timeout: that one also bounds process_request, which runs $connect, and
        # cancelling $connect midway would leave whatever it stored with no $disconnect to follow.
        if self.kit_header_timeout_s is not None:
            self._kit_header_timer = self.loop.call_later(self.kit_header_timeout_s, self._header_timed_out)

    def _header_timed_out(self) -> None:
        if self.request is None:
            self.transport.abort()  # websockets then ends the handshake: no request, nothing to answer

    def process_event(self, event: Any) -> None:
        if self.request is None and self._kit_header_timer is not None:
            self._kit_header_timer.cancel()  # the upgrade request is complete
        if isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            if self.kit_close is not None:
                return  # already closing: drop the rest, as the gateway would
            if event.opcode is Opcode.CONT:
                self._message_len += len(event.data)
            else:
                self._message_len = len(event.data)
                self._message_binary = event.opcode is Opcode.BINARY
            decision = core.check_inbound(
                is_binary=self._message_binary, frame_len=len(event.data), message_len=self._message_len
            )
            if decision is not None:
                self.kit_close = decision
                in_background(self.close(decision.code, decision.reason))
                return
        super().process_event(event)


def connection_type(header_timeout_s: float) -> type[GatewayConnection]:
    """GatewayConnection with this gateway's header timeout (websockets builds connections from a class)."""

    class ConfiguredConnection(GatewayConnection):
        kit_header_timeout_s = header_timeout_s

    return ConfiguredConnection


def http_response(
    connection: ServerConnection, status: int, body: str, headers: tuple[gateway_events.Header, ...]
) -> Response:
    """A plain HTTP answer to an upgrade request; ``headers`` replace websockets' defaults of that name."""
    response = connection.respond(status, body)
    for name, _ in headers:
        if name in response.headers:
            del response.headers[name]
    for name, value in headers:
        response.headers[name] = value
    return response
