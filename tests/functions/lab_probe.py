"""Tiny handlers the runtime tests invoke in a lab worker (code_path = this folder, handler "lab_probe.<name>").

Module state (``STATE``) lives as long as the worker, so a warm start sees the previous count.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any

STATE = {"invocations": 0}
IMPORTED_AT = time.time()

logger = logging.getLogger("probe")  # no level of its own: the root logger's level decides
print("module imported")  # printed during init: lands before the first START


def counter(event: dict[str, Any], context: Any) -> dict[str, Any]:
    STATE["invocations"] += 1
    return {"invocations": STATE["invocations"], "pid": os.getpid(), "imported_at": IMPORTED_AT}


def environment(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"environ": dict(os.environ), "cwd": os.getcwd(), "path0": sys.path[0]}


def context_fields(event: dict[str, Any], context: Any) -> dict[str, Any]:
    first = context.get_remaining_time_in_millis()
    time.sleep(event.get("sleep", 0.2))
    second = context.get_remaining_time_in_millis()
    return {
        "remaining": [first, second],
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
    }


def logs(event: dict[str, Any], context: Any) -> str:
    logger.debug("debug record")
    logger.info("info record")
    logger.warning("warning record")
    logging.getLogger().error("error record\nsecond line of the same record")
    print("printed line")
    print("two\nlines")
    print(event.get("json_line", '{"level": "debug", "message": "json debug line"}'))
    sys.stderr.write("to stderr\n")
    os.write(1, b"straight to fd 1\n")
    return "logged"


def fail(event: dict[str, Any], context: Any) -> None:
    print("about to fail")
    raise ValueError(event.get("message", "boom"))


def sleep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    print("going to sleep")
    time.sleep(float(event["seconds"]))
    return {"slept": event["seconds"], "pid": os.getpid()}


def announce_and_sleep(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Write this worker's pid to ``event["announce"]`` once the handler runs, then sleep (to be killed)."""
    _write_atomically(event["announce"], str(os.getpid()))
    time.sleep(float(event["seconds"]))
    return {"pid": os.getpid()}


def print_after_return(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Leave a thread behind that prints a line once ``event["go"]`` exists, then writes
    ``event["printed"]``; return after ``event["linger"]`` seconds (default at once).

    Work not awaited: once the invocation has ended the environment is frozen, so the thread makes no
    progress until a later invocation thaws it, or never.
    """

    def late() -> None:
        while not os.path.exists(event["go"]):
            time.sleep(0.01)
        print(f"printed after the handler returned ({event['go']})")
        _write_atomically(event["printed"], "done")

    if "go" in event:
        threading.Thread(target=late, daemon=True).start()
    time.sleep(event.get("linger", 0))
    return {"pid": os.getpid()}


def _write_atomically(path: str, text: str) -> None:
    with open(path + ".part", "w") as part:
        part.write(text)
    os.replace(path + ".part", path)


def exit_process(event: dict[str, Any], context: Any) -> None:
    sys.stdout.write("exiting now\n")
    os._exit(3)


def unserialisable(event: dict[str, Any], context: Any) -> set[int]:
    return {1, 2}


def decimals(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from decimal import Decimal

    return {"price": Decimal("1.10"), "count": Decimal(3)}


NOT_CALLABLE = "a module attribute that is not a function"


def loud(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Print one line of ``event["line"]`` bytes, then ``event["lines"]`` lines of 1 KB."""
    print("L" * event["line"])
    for _ in range(event["lines"]):
        print("l" * 1023)
    return {"printed": event["line"] + 1024 * event["lines"]}
