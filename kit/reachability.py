"""Endpoints that stopped answering, remembered across a target's clients, so a dead one is not retried call
after call.

botocore retries a request that could not connect, with backoff: up to 10 attempts on a real account (the
adaptive mode that rides out throttling), which is a minute or more per call when nothing listens, and a
diagnosis makes dozens of calls. ``Reachability`` counts the connection failures in a row per endpoint, over
all of one target's clients: once an endpoint has failed ``UNREACHABLE_AFTER`` times in a row, a request to it
that cannot connect ends its call at once with that error, unretried. Every call still tries to connect; one
answer from the endpoint (whatever its status) sets its count back to 0. A slow answer (a read timeout) is not
a connection failure: the endpoint is there.

    Reachability().attach(client)     count the client's attempts (``needs-retry``, before botocore's handler)
    record(endpoint, failed)          the pure step: the count after one attempt, and whether to stop retrying
"""

from __future__ import annotations

import threading
from functools import partial
from typing import Any, Final

from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ProxyConnectionError

UNREACHABLE_AFTER: Final = 3  # connection failures in a row after which an endpoint's calls are not retried
CONNECTION_FAILURES: Final = (EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError)


class Reachability:
    """Connection failures in a row, per endpoint URL; thread-safe (clients are shared across threads)."""

    def __init__(self, after: int = UNREACHABLE_AFTER) -> None:
        self.after = after
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()

    def failures(self, endpoint: str) -> int:
        with self._lock:
            return self._failures.get(endpoint, 0)

    def record(self, endpoint: str, *, failed: bool) -> bool:
        """One attempt at ``endpoint``: True when it failed to connect and the endpoint has now failed
        ``after`` times in a row (its call should end here, unretried)."""
        with self._lock:
            count = self._failures[endpoint] = self._failures.get(endpoint, 0) + 1 if failed else 0
        return failed and count >= self.after

    def attach(self, client: Any) -> None:
        """Count every attempt of ``client``'s calls; end a call at a connection failure once its endpoint
        counts as down. Registered first, so botocore's own retry handler never sleeps for it."""
        endpoint = str(client.meta.endpoint_url)
        client.meta.events.register_first("needs-retry", partial(self._attempted, endpoint))

    def _attempted(self, url: str, caught_exception: BaseException | None = None, **_: Any) -> None:
        # botocore passes its Endpoint object as ``endpoint``: the URL comes bound as ``url``
        failed = isinstance(caught_exception, CONNECTION_FAILURES)
        if self.record(url, failed=failed) and caught_exception is not None:
            raise caught_exception
