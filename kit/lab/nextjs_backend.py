"""A local stand-in for the seed's Next.js route ``app/api/websocket/route.ts``, reached over HTTP_PROXY.

API Gateway can integrate a WebSocket route with an HTTP endpoint instead of a Lambda. It then POSTs the
frame (for ``$connect``: an empty body) to the endpoint and, unless the integration maps them with
``RequestParameters`` (``integration.request.header.ConnectionId: context.connectionId``...), it does **not**
tell the backend which connection the request belongs to. This server plays the Next.js app: it turns each
HTTP request into the event its route handler reads and runs the seed's handler (``kit.handler.seed``) on
it, so whatever API Gateway does or does not send decides what gets stored, exactly as in production.

What the route reads, and where from (the names its code would use):
- ``connectionId``: the ``ConnectionId`` header (present only when mapped);
- ``routeKey``: the ``RouteKey`` header when mapped, else ``$connect`` (only ``$connect`` is routed here);
- ``token`` / ``workspaceId``: the request's query string, or ``Token`` / ``WorkspaceId`` headers if mapped.

Run as ``python -m kit.lab.nextjs_backend`` with the app's environment (TABLE_NAME, AWS_* and
``AWS_ENDPOINT_URL_DYNAMODB``); it prints its URL on the first line of stdout and serves on 127.0.0.1 until
stdin closes or it is terminated. The lab starts it with ``--listen-fd N``, a listening loopback socket it
inherits, when the first request reaches that socket (:mod:`kit.lab.activation`). It must not import
anything from the lab.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

LOOPBACK = "127.0.0.1"
log = logging.getLogger("nextjs")


def event_from_request(path: str, headers: dict[str, str]) -> dict[str, Any]:
    """The event the route handler sees for one HTTP request from API Gateway (pure)."""
    lower = {name.lower(): value for name, value in headers.items()}
    query = dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))
    for header, name in (("token", "token"), ("workspaceid", "workspaceId")):
        if header in lower:
            query[name] = lower[header]
    event: dict[str, Any] = {
        "requestContext": {
            "routeKey": lower.get("routekey", "$connect"),
            "connectionId": lower.get("connectionid"),
        }
    }
    if query:
        event["queryStringParameters"] = query
    return event


def listen_fd(argv: list[str]) -> int | None:
    """The inherited socket's descriptor from ``--listen-fd N``; None without it (pure)."""
    if not argv:
        return None
    if len(argv) != 2 or argv[0] != "--listen-fd" or not argv[1].isdigit():
        raise SystemExit("usage: python -m kit.lab.nextjs_backend [--listen-fd N]")
    return int(argv[1])


def serve(fd: int | None = None) -> None:
    from kit.handler import seed

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="[nextjs] %(message)s")

    class Route(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            response = seed.handler(event_from_request(self.path, dict(self.headers.items())), None)
            payload = json.dumps(json.loads(response.get("body") or "{}")).encode()
            self.send_response(int(response.get("statusCode", 200)))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    if fd is None:
        server = ThreadingHTTPServer((LOOPBACK, 0), Route)
    else:  # the lab's socket, already bound and listening, with a request waiting
        server = ThreadingHTTPServer((LOOPBACK, 0), Route, bind_and_activate=False)
        server.socket.close()
        server.socket = socket.socket(fileno=fd)
        server.server_address = server.socket.getsockname()
        server.server_name, server.server_port = LOOPBACK, server.server_address[1]
    server.daemon_threads = True
    print(f"http://{LOOPBACK}:{server.server_port}/api/websocket", flush=True)

    # Stop when the parent closes our stdin (or dies): no orphan backend.
    def stop_when_stdin_closes() -> None:
        sys.stdin.read()
        server.shutdown()

    threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    server.serve_forever(poll_interval=0.05)  # shutdown() waits for the next poll (default 0.5 s)


if __name__ == "__main__":
    serve(listen_fd(sys.argv[1:]))
