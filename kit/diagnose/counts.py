"""The numbers a diagnosis stands on, so scheduled runs can say which of them moved.

``counts(evidence)`` gives each count of :data:`COUNTS` as an int, or None when the evidence it counts was not
read (None is never 0: "no errors in the logs" and "the logs were not read" are different answers).
``failure_lines(parsed)`` is the one definition of a log line that reports a failure, shared with the
notebooks' table of them (``kit.notebook.log_errors``). Pure.
"""

from __future__ import annotations

from typing import Final

import pandas as pd

from kit.diagnose.findings import Evidence

# name -> what it counts, as a report says it
COUNTS: Final[dict[str, str]] = {
    "connections_opened": "connections whose $connect handshake succeeded (logs)",
    "connections_stored": "connections the handler said it stored (logs)",
    "items_in_table": "items in the connections table",
    "log_errors": "log lines reporting a failure",
    "probe_failures": "probe steps that failed",
}
HANDSHAKE_OK: Final = 200  # what API Gateway logs for a $connect it accepted


def failure_lines(parsed: pd.DataFrame) -> pd.Series:
    """Which parsed log lines (``kit.logparse.LOG_COLUMNS``) report a failure: an uncaught error, a timeout, a
    runtime exit, or a handler line carrying an AWS error code (the seed's swallowed ``AccessDenied``)."""
    failing = parsed["kind"].isin(["error", "timeout", "runtime_exit"]) | parsed["app_error_code"].notna()
    return failing.fillna(False).astype(bool)


def counts(evidence: Evidence) -> dict[str, int | None]:
    """Each of :data:`COUNTS` for ``evidence``; None where its frame was not read."""
    lifecycle, lines, probe = evidence.lifecycle, evidence.log_lines, evidence.probe
    found: dict[str, int | None] = dict.fromkeys(COUNTS)
    if lifecycle is not None:
        found["connections_opened"] = int(lifecycle["connect_status"].eq(HANDSHAKE_OK).fillna(False).sum())
        found["connections_stored"] = int(lifecycle["item_written"].eq(True).fillna(False).sum())
    if evidence.items is not None:
        found["items_in_table"] = len(evidence.items)
    if lines is not None and {"kind", "app_error_code"} <= set(lines.columns):
        found["log_errors"] = int(failure_lines(lines).sum())
    if probe is not None and "ok" in probe.columns:
        found["probe_failures"] = int(probe["ok"].eq(False).fillna(False).sum())
    return found
