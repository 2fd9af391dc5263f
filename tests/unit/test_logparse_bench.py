"""Throughput of kit.logparse.parse against the per-line reference, on synthetic Lambda logs.

Skipped unless KIT_BENCH=1 (timings on a shared machine are not a pass/fail signal):

    KIT_BENCH=1 .venv/bin/python -m pytest tests/unit/test_logparse_bench.py -s

Each mix is 200,000 lines of invocations spread over 20 streams of one function; the numbers printed are
CPU seconds (best of three for parse, one run for the reference) and lines per second.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import Callable

import pandas as pd
import pytest

from kit import logparse as lp

LINES = int(os.environ.get("KIT_BENCH_LINES", "200000"))
pytestmark = pytest.mark.skipif(os.environ.get("KIT_BENCH") != "1", reason="benchmark: set KIT_BENCH=1")


def _app_json(rid: str, cid: str) -> str:
    document = {
        "route": "$connect",
        "connection_id": cid,
        "request_id": rid,
        "apigw_request_id": cid,
        "outcome": "stored",
        "status": 200,
        "error_code": None,
        "detail": None,
        "workspace_id": "w1",
        "user_hash": "5f1d2c3b4a69",
        "table": "chatgenius-connections",
    }
    return f"[WARNING]\t2025-08-31T12:34:56.789Z\t{rid}\t{json.dumps(document)}\n"


def synthetic(
    lines: int, app_lines: Callable[[random.Random, str, str], list[str]], seed: int = 1
) -> pd.DataFrame:
    """START, the app lines of ``app_lines``, END, REPORT per invocation, streams interleaved."""
    rng = random.Random(seed)
    streams = [f"2025/08/31/[$LATEST]{uuid.UUID(int=rng.getrandbits(128)).hex}" for _ in range(20)]
    events = []
    at = 1756643696000
    while len(events) < lines:
        stream = rng.choice(streams)
        rid = str(uuid.UUID(int=rng.getrandbits(128)))
        cid = f"{rng.getrandbits(60):015x}="
        messages = [
            f"START RequestId: {rid} Version: $LATEST\n",
            *app_lines(rng, rid, cid),
            f"END RequestId: {rid}\n",
            f"REPORT RequestId: {rid}\tDuration: {rng.uniform(1, 100):.2f} ms\tBilled Duration: "
            f"{rng.randint(1, 100)} ms\tMemory Size: 128 MB\tMax Memory Used: {rng.randint(40, 90)} MB\t\n",
        ]
        for message in messages:
            at += 1
            events.append(
                {
                    "logStreamName": stream,
                    "timestamp": at,
                    "ingestionTime": at + 900,
                    "eventId": str(at),
                    "message": message,
                }
            )
    return lp.events_frame(events[:lines], log_group="/aws/lambda/chatgenius-websocket")


MIXES: dict[str, Callable[[random.Random, str, str], list[str]]] = {
    "platform lines only": lambda rng, rid, cid: [],
    "one text app line per invocation": lambda rng, rid, cid: [
        f"[INFO]\t2025-08-31T12:34:56.789Z\t{rid}\tConnection attempt {cid} for workspace w1\n"
    ],
    "mixed (half JSON, some prints)": lambda rng, rid, cid: [
        _app_json(rid, cid)
        if rng.random() < 0.5
        else f"[INFO]\t2025-08-31T12:34:56.789Z\t{rid}\tConnection attempt {cid} for workspace w1\n"
        if rng.random() < 0.6
        else f"print line for {cid}\n"
    ],
    "the fixed handler (one JSON line per invocation)": lambda rng, rid, cid: [_app_json(rid, cid)],
}


def _cpu(run: Callable[[], pd.DataFrame], repeat: int) -> tuple[pd.DataFrame, float]:
    best, result = float("inf"), pd.DataFrame()
    for _ in range(repeat):
        started = time.process_time()
        result = run()
        best = min(best, time.process_time() - started)
    return result, best


@pytest.mark.parametrize("mix", list(MIXES))
def test_throughput(mix: str) -> None:
    events = synthetic(LINES, MIXES[mix])
    fast, fast_s = _cpu(lambda: lp.parse(events), 3)
    slow, slow_s = _cpu(lambda: lp.parse_lines_slow(events), 1)
    pd.testing.assert_frame_equal(fast, slow)
    print(
        f"\n{mix}: parse {LINES / fast_s:,.0f} lines/s ({fast_s:.2f} s), "
        f"parse_lines_slow {LINES / slow_s:,.0f} lines/s ({slow_s:.2f} s), ratio {slow_s / fast_s:.1f}x"
    )
