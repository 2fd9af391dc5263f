"""A lab in a process of its own, for the bench: ``python -m bench.lab_host``.

The bench's clients run in the bench's process; the lab they load runs here, so the two do not share an
interpreter lock and the lab's CPU time and peak memory can be read from ``/proc`` as those of one process
tree. Protocol, one JSON line each on stdout:

* ``{"ready": true, "start_s", "pid", "websocket_url", "management_url", "dynamodb_url", "region", "table",
  "index", "engine", "max_workers_per_function", "runtime"}`` once the lab is up (``--runtime nodejs20.x``:
  the function on Node.js, the kit's app.mjs) (``start_s`` is ``Lab()`` enter to
  ready, timed here, after the imports), or ``{"error": "..."}`` and exit status 1 when it could not start;
* ``{"threads": [{"native_id", "role"}, ...]}`` for each line ``threads`` read on stdin: what each of this
  process's threads does (:func:`bench.processes.thread_role`), so CPU time per thread can be attributed;
* ``{"hops": {hop: {"count", "total_ms", "recent_ms"}}}`` for each line ``hops``: where requests' time went
  inside the lab (:mod:`kit.lab.hops`); ``hops reset`` forgets them and answers ``{"hops_reset": true}``;
* ``{"stopped": true, "stop_s"}`` after standard input reaches EOF and the lab has stopped.

Must not: write ``.kit/lab.json`` (a bench lab is nobody else's to find) or print anything else on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time

from bench.processes import thread_role
from kit.errors import KitError
from kit.lab.lab import Lab
from kit.lab.runtime import DEFAULT_MAX_WORKERS_PER_FUNCTION


def _say(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _server_module(thread: threading.Thread) -> str | None:
    """The module of the server a request thread serves (socketserver names them all alike)."""
    target = getattr(thread, "_target", None)  # CPython keeps the target; None once the thread is done
    server = getattr(target, "__self__", None)
    return type(server).__module__ if server is not None else None


def _threads() -> list[dict[str, object]]:
    return [
        {"native_id": thread.native_id, "role": thread_role(thread.name, _server_module(thread))}
        for thread in threading.enumerate()
        if thread.native_id is not None
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lab_host")
    parser.add_argument("--runtime", default=None, help="the function's runtime (default: the lab's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        lab = Lab(
            scenario="healthy", write_lab_file=False, **({"runtime": args.runtime} if args.runtime else {})
        )
    except KitError as exc:
        _say({"error": str(exc)})
        return 1
    started = time.monotonic()
    try:
        lab.start()
    except KitError as exc:
        _say({"error": str(exc)})
        return 1
    start_s = time.monotonic() - started
    try:
        info = lab.info
        assert info is not None and lab.resources is not None and lab.dynamodb_engine is not None
        _say(
            {
                "ready": True,
                "start_s": start_s,
                "pid": info.pid,
                "websocket_url": info.websocket_url,
                "management_url": info.management_url,
                "dynamodb_url": lab.dynamodb_engine.endpoint_url,
                "region": info.region,
                "table": info.table,
                "index": lab.resources.index,
                "engine": info.dynamodb_engine,
                "max_workers_per_function": DEFAULT_MAX_WORKERS_PER_FUNCTION,
                "runtime": info.runtime,
            }
        )
        # Serve until the bench closes our stdin (or dies: then the read returns EOF as well).
        while line := sys.stdin.readline():
            command = line.strip()
            if command == "threads":
                _say({"threads": _threads()})
            elif command == "hops":
                _say({"hops": {hop: stats.to_json() for hop, stats in lab.hops.snapshot().items()}})
            elif command == "hops reset":
                lab.hops.reset()
                _say({"hops_reset": True})
    finally:
        stopping = time.monotonic()
        lab.stop()
        _say({"stopped": True, "stop_s": time.monotonic() - stopping})
    return 0


if __name__ == "__main__":
    sys.exit(main())
