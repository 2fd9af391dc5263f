"""Read the WebSocket API's CloudWatch Logs (Lambda, API Gateway execution and access logs) into frames.

This is the parsing half of the kit's log work: it turns events that someone else fetched (boto3 pages,
an ``aws logs filter-log-events`` export, a saved file of lines) into pandas frames with declared columns,
and derives per-invocation and per-connection views from them. It does no I/O: no AWS calls, no files, no
clock; callers pass text or event dicts in and get frames back.

    events_frame(events, log_group=None)     boto3 event dicts      -> RAW_EVENT_COLUMNS
    read_export(json_text, log_group=None)   filter-log-events JSON -> RAW_EVENT_COLUMNS
    read_raw_lines(text, log_group, stream)  a file, line by line   -> RAW_EVENT_COLUMNS (no timestamps)
    parse(events)                            raw events  -> LOG_COLUMNS: one row per event
    invocations(parsed)                      parsed      -> INVOCATION_COLUMNS: one row per request id
    connection_lifecycle(parsed)             parsed      -> LIFECYCLE_COLUMNS: one row per connection id
    parse_lines_slow(lines, ...)             the per-line reference implementation of parse()

These names (``__all__``) are the package's public surface: the notebooks, the CLI and the diagnosis use
them and nothing deeper, except the modules a caller needs whole: ``reading`` and ``streaming`` (below) and
``columns`` (the frames' contracts). ``parse`` is the vectorised parser's (:mod:`kit.logparse.vectorised`,
whose docstring says what it buys, what tests hold it to ``slow.py`` and why it gets no more speed work);
nothing outside ``kit.logparse`` imports from ``vectorised`` except the tests of its parts. ``patterns``
(the line shapes both parsers read through), ``events``, ``derived`` and ``slow`` are the rest of the
implementation, each a module of its own.

A file too big to hold (``kit logs parse``) is read and parsed a part at a time: ``reading.file_parts``
(blocks of a file's bytes -> raw event frames, raw lines or an export walked an event at a time; broken
input named by line and column) and ``streaming.PartsParse`` (those parts -> LOG_COLUMNS frames equal,
together, to ``parse`` of the whole file: what a line's stream says is carried across the cuts).

``parse`` keeps every row (row count in == row count out) and says in ``parse_error`` why a line could not
be read. ``source`` comes from the log group's name (``/aws/lambda/*``, ``API-Gateway-Execution-Logs_*``)
or, for other groups, from the line itself (access-log JSON, a Lambda line shape) and its stream.

``kind`` values (:data:`KINDS`): ``init_start``, ``start``, ``end``, ``report``, ``init_report`` (Text
platform lines, and the JSON-format records that mean the same: ``platform.initStart``/``restoreStart``,
``platform.start``, ``platform.runtimeDone``, ``platform.report``, ``platform.initReport``/
``restoreReport``), ``timeout`` (``Task timed out``), ``runtime_exit`` (``RequestId: … Error: Runtime
exited …`` and the bare ``Runtime.ExitError`` line), ``xray``, ``app`` (runtime log lines, JSON app
records, plain prints), ``error`` (uncaught errors: Python ``[ERROR] Type: msg``, Node ``Invoke Error``,
JSON-format uncaught errors), ``platform_json`` (other ``platform.*`` records), ``exec_line``, ``access``,
``unknown``.

``integration_status`` is the status of the integration's response as logged: the access log's
``integrationStatus`` and the handler's own ``status`` (the statusCode the function returned), or the
execution log's ``Received response. Status: n`` (for a Lambda proxy integration, Lambda's invoke status:
200 even when the function failed). ``http_status`` is what API Gateway answered the client.
"""

from __future__ import annotations

from kit.logparse.columns import INVOCATION_COLUMNS, LIFECYCLE_COLUMNS, LOG_COLUMNS, RAW_EVENT_COLUMNS
from kit.logparse.derived import connection_lifecycle, invocations
from kit.logparse.events import events_frame, read_export, read_raw_lines
from kit.logparse.patterns import KINDS, SOURCES
from kit.logparse.slow import parse_lines_slow
from kit.logparse.vectorised.parser import parse

__all__ = [
    "INVOCATION_COLUMNS",
    "KINDS",
    "LIFECYCLE_COLUMNS",
    "LOG_COLUMNS",
    "RAW_EVENT_COLUMNS",
    "SOURCES",
    "connection_lifecycle",
    "events_frame",
    "invocations",
    "parse",
    "parse_lines_slow",
    "read_export",
    "read_raw_lines",
]
