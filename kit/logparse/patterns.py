"""What the log lines look like: the regular expressions, JSON key names and words both parsers share.

Both the vectorised parser (:mod:`kit.logparse.vectorised.parser`) and the per-line reference
(:mod:`kit.logparse.slow`) read lines through these definitions, so a format is described once. A few are
read by the vectorised parser alone (``PREFIX_WINDOW``, ``REPORT_AS_LAMBDA_WRITES``, ``REPORT_CORE``,
``REPORT_TAIL``, ``REPORT_TAIL_START``, ``EXEC_LINE_SPACED``): they stay here, beside the shapes they must
agree with, so a format still changes in one file. Sources of each shape: the research notes on CloudWatch
Logs formats (§1 Lambda, §2 API Gateway) and what the lab writes (:mod:`kit.lab.lambda_logs`,
:mod:`kit.lab.gateway_logs`, :mod:`kit.handler.app`, :mod:`kit.handler.seed`).

Pure: no I/O, no pandas.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, Final

# ---------------------------------------------------------------------------------------------------------
# Vocabularies
# ---------------------------------------------------------------------------------------------------------

SOURCES: Final = ("lambda", "apigw_exec", "apigw_access", "unknown")
KINDS: Final = (
    "init_start",
    "start",
    "end",
    "report",
    "init_report",
    "timeout",
    "runtime_exit",
    "xray",
    "app",
    "error",
    "platform_json",
    "exec_line",
    "access",
    "unknown",
)

LAMBDA_GROUP_PREFIX: Final = "/aws/lambda/"
EXECUTION_GROUP_PREFIX: Final = "API-Gateway-Execution-Logs_"
TRUNCATED_SUFFIX: Final = " [TRUNCATED]"


def group_source(log_group: object) -> str | None:
    """``lambda`` or ``apigw_exec`` when the group's name says so; None when only the content can tell."""
    if not isinstance(log_group, str):
        return None
    if log_group.startswith(LAMBDA_GROUP_PREFIX):
        return "lambda"
    if log_group.startswith(EXECUTION_GROUP_PREFIX):
        return "apigw_exec"
    return None


def function_name(log_group: object) -> str | None:
    """``/aws/lambda/chat`` → ``chat``; a custom group (advanced logging) is returned as is."""
    if not isinstance(log_group, str):
        return None
    return log_group.removeprefix(LAMBDA_GROUP_PREFIX)


# Why a line could not be (fully) read: the values of the parse_error column.
EMPTY_MESSAGE: Final = "empty message"
BINARY_MESSAGE: Final = "message contains binary or undecodable data"
BAD_JSON: Final = "message starts with '{' but is not a JSON object"
UNKNOWN_JSON: Final = "JSON object with neither Lambda nor access-log keys"
NO_EXEC_PREFIX: Final = "execution-log line without the (<requestId>) prefix"
UNKNOWN_LINE: Final = "not a Lambda, API Gateway execution-log or access-log line"
INCOMPLETE_PYTHON_LINE: Final = (
    "incomplete Python runtime line: expected [LEVEL]\\t<time>\\t<request id>\\t<message>"
)
INCOMPLETE_REPORT: Final = "incomplete REPORT line: a request id or one of the four metrics is missing"
MISSING_REQUEST_ID: Final = {
    "start": "START line without a request id",
    "end": "END line without a request id",
}

# ---------------------------------------------------------------------------------------------------------
# Lambda, Text format
# ---------------------------------------------------------------------------------------------------------

# ASCII digits only, and at most nine fraction digits, so the prefix fits the parser's fixed window.
_ISO: Final = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?Z"

_LEVELS: Final = ("TRACE", "DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL")
PREFIX_TOKENS: Final = (
    "INIT_START ",
    "INIT_REPORT ",
    "RESTORE_START",
    "RESTORE_REPORT ",
    "START RequestId:",
    "END RequestId:",
    "REPORT RequestId:",
    "XRAY TraceId:",
    *(f"[{level}]\t" for level in _LEVELS),
    "[ERROR]",
    "FATAL ERROR:",
    "RequestId: ",
    "Runtime.",
    "Sandbox.",
    "{",
    "(",
    "\t",
    " ",
)
"""The fixed tokens a line can start with, in the order they are tried."""
PREFIX_WINDOW: Final = 32
"""Characters enough to see any token, after an ISO time of up to nine fraction digits."""

LINE_PREFIX: Final = re.compile(
    rf"^(?:{_ISO}(?=[\t ]))?(" + "|".join(re.escape(token) for token in PREFIX_TOKENS) + ")"
)
"""The first characters of a line, reduced to a fixed token (one group) that :data:`PREFIX_CATEGORY` names.

An ISO time is skipped, so a Node line (``<iso>\\t``) yields ``\\t`` and a timeout line (``<iso> ``)
yields a space; the precise pattern of each category then confirms or rejects the line."""

PREFIX_CATEGORY: Final[Mapping[str, str]] = {
    "INIT_START ": "init_start",
    "RESTORE_START": "init_start",
    "INIT_REPORT ": "init_report",
    "RESTORE_REPORT ": "init_report",
    "START RequestId:": "start",
    "END RequestId:": "end",
    "REPORT RequestId:": "report",
    "XRAY TraceId:": "xray",
    "[ERROR]": "uncaught",
    "FATAL ERROR:": "v8_fatal",
    "RequestId: ": "request_error",
    "Runtime.": "runtime_type",
    "Sandbox.": "runtime_type",
    "{": "json",
    "(": "paren",
    "\t": "node",
    " ": "timeout",
    **{f"[{level}]\t": "python" for level in _LEVELS},
}

START: Final = re.compile(r"^START RequestId:[ \t]*([^\s]+)")
END: Final = re.compile(r"^END RequestId:[ \t]*([^\s]+)")
_REPORT_TAIL: Final = (
    r"(?:\s+Init Duration: ([0-9.]+) ms)?"
    r"(?:\s+Restore Duration: ([0-9.]+) ms)?"
    r"(?:\s+Billed Restore Duration: ([0-9.]+) ms)?"
    r"(?:\s+Status: ([A-Za-z0-9_]+))?"
    r"(?:\s+Error Type: ([^\s]+))?"
)
# The Datadog production regex from the research notes, every part after the request id optional so a
# cut line still yields what it has; SnapStart and failure fields in the order Lambda writes them.
REPORT: Final = re.compile(
    r"^REPORT RequestId:[ \t]*([^\s]+)?"
    r"(?:\s+Duration: ([0-9.]+) ms)?"
    r"(?:\s+Billed Duration: ([0-9.]+) ms)?"
    r"(?:\s+Memory Size: ([0-9]+) MB)?"
    r"(?:\s+Max Memory Used: ([0-9]+) MB)?" + _REPORT_TAIL
)
REPORT_CORE: Final = re.compile(
    r"^REPORT RequestId:[ \t]*([^\s]+)\s+Duration: ([0-9.]+) ms\s+Billed Duration: ([0-9.]+) ms"
    r"\s+Memory Size: ([0-9]+) MB\s+Max Memory Used: ([0-9]+) MB(.*)",
    re.S,
)
"""A complete REPORT's four metrics and the rest of the event; :data:`REPORT_TAIL` reads the rest."""
REPORT_TAIL: Final = re.compile("^" + _REPORT_TAIL, re.S)
_DECIMAL: Final = r"[0-9]+(?:\.[0-9]+)?"
REPORT_AS_LAMBDA_WRITES: Final = re.compile(
    rf"^REPORT RequestId: [!-~]+\tDuration: {_DECIMAL} ms\tBilled Duration: {_DECIMAL} ms"
    rf"\tMemory Size: [0-9]+ MB\tMax Memory Used: [0-9]+ MB\t(?:Init Duration: {_DECIMAL} ms\t)?\n?$"
)
"""A REPORT exactly as Lambda writes it (every field followed by a tab; Init Duration on a cold start; a
request id of printable ASCII, narrower than ``[^\\s]``). It adds nothing to :data:`REPORT_CORE`: it is the
shape the vectorised parser checks and reads at the line's tabs (a test holds the two to each other), which
gives what ``REPORT_CORE`` and ``REPORT_TAIL`` give; every other REPORT goes through those."""
REPORT_TAIL_START: Final = re.compile(
    r"\s+(?:Init Duration|Restore Duration|Billed Restore Duration|Status|Error Type): "
)
REPORT_FIELDS: Final = (
    "request_id",
    "duration_ms",
    "billed_ms",
    "memory_mb",
    "max_mem_mb",
    "init_ms",
    "restore_ms",
    None,  # Billed Restore Duration: no column
    "status",
    "error_type",
)
INIT_REPORT: Final = re.compile(
    r"^(?:INIT|RESTORE)_REPORT"
    r"(?:\s+Init Duration: ([0-9.]+) ms)?"
    r"(?:\s+Restore Duration: ([0-9.]+) ms)?"
    r"(?:\s+Phase: ([A-Za-z0-9_]+))?"
    r"(?:\s+Status: ([A-Za-z0-9_]+))?"
    r"(?:\s+Error Type: ([^\s]+))?"
)
INIT_REPORT_FIELDS: Final = ("init_ms", "restore_ms", None, "status", "error_type")

PYTHON_LINE: Final = re.compile(
    r"^\[(TRACE|DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\]\t[^\t]*(?:\t([^\t]*)(?:\t(.*))?)?", re.S
)
"""``[LEVEL]\\t<iso>Z\\t<request id>\\t<message>``: groups level, request id, message."""
JSON_START: Final = re.compile(r"\s*\{")

UNCAUGHT: Final = re.compile(r"^\[ERROR\] ([A-Za-z_][A-Za-z0-9_.]*)(?::[ \t]?([^\r\n]*))?[ \t]*(?:[\r\n]|$)")
"""The runtime's uncaught-error event: ``[ERROR] Type: message`` then the traceback after ``\\n``/``\\r``."""
UNCAUGHT_LOOSE: Final = re.compile(r"^\[ERROR\][ \t]*([^\r\n]*)")

NODE_LINE: Final = re.compile(rf"^({_ISO})\t([^\t]*)\t(?:(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)\t)?(.*)", re.S)
"""Node's patched console: ``<iso>\\t<request id>\\t<LEVEL>\\t<message>``; older runtimes wrote no level
(``<iso>\\t<request id>\\t<message>``), read as the same line with the level empty."""
V8_FATAL: Final = re.compile(r"^FATAL ERROR:[ \t]*([^\r\n]*)")
"""V8's own last words on stderr (``FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of
memory``): no time, no request id; the process aborts after it, so it is an error (level FATAL, no type)."""
NODE_ERROR: Final = re.compile(
    r"^(Invoke Error|Uncaught Exception|Unhandled Promise Rejection)[ \t]*(.*)", re.S
)

TIMEOUT: Final = re.compile(rf"^{_ISO} ([^\s]+) (Task timed out after [0-9.]+ seconds)")
REQUEST_ERROR: Final = re.compile(r"^RequestId: ([^\s]+) Error: ([^\r\n]*)")
"""``RequestId: <id> Error: Runtime exited ...`` (or ``Task timed out ...``)."""
RUNTIME_TYPE: Final = re.compile(r"^((?:Runtime|Sandbox)\.[A-Za-z]+)\s*$")
"""The bare error-type line Lambda writes after a runtime exit: ``Runtime.ExitError``."""

TIMEOUT_ERROR_TYPE: Final = "Sandbox.Timedout"
NULL_REQUEST_IDS: Final = frozenset({"", "undefined", "null", "-"})

# ---------------------------------------------------------------------------------------------------------
# Scans of any Lambda line's text (applied after the line's own format, filling only what is still empty)
# ---------------------------------------------------------------------------------------------------------

CLIENT_ERROR_MARK: Final = "An error occurred ("
CLIENT_ERROR: Final = re.compile(
    r"(An error occurred \(([^)\s]+)\) when calling the ([A-Za-z0-9_]+) operation"
    r"(?: \(reached max retries: [0-9]+\))?(?::[ \t]?[^\r\n]*)?)"
)
"""botocore's ClientError text: groups whole text, error code, operation."""

SDK_ERROR_MARK: Final = "Exception: "
SDK_ERROR: Final = re.compile(r"(\b([A-Z][A-Za-z0-9]*Exception): [^\r\n]*)")
"""An AWS SDK for JavaScript v3 error as a Node handler prints it (``console.log(msg, err)`` or
``${err}``): ``ResourceNotFoundException: Cannot do operations on a non-existent table``. Groups whole
text, error code. Read after botocore's text, so a Python line keeps the operation its text names."""

IAM_DENIED_MARK: Final = "not authorized to perform: "
IAM_DENIED: Final = re.compile(r"not authorized to perform: [a-z0-9-]+:([A-Za-z0-9_]+)")

# The seed handler's INFO wording (kit.handler.seed); visible only when its level is lowered to INFO.
SEED_ERROR_MARK: Final = "Error handling WebSocket event: "
SEED_STORED_MARK: Final = "Stored connection "
SEED_STORED: Final = re.compile(r"(?:^|\t)Stored connection ([^\s]+)\s*$")
SEED_ATTEMPT_MARK: Final = "Connection attempt "
SEED_ATTEMPT: Final = re.compile(r"(?:^|\t)Connection attempt ([^\s]+) for workspace")

EVENT_KEY_MARK: Final = "connectionId"
EVENT_CONNECTION_ID: Final = re.compile(r"""['"]connectionId['"]\s*:\s*['"]([^'"\s]+)['"]""")
EVENT_ROUTE_KEY: Final = re.compile(r"""['"]routeKey['"]\s*:\s*['"]([^'"]+)['"]""")
EVENT_TYPE: Final = re.compile(r"""['"]eventType['"]\s*:\s*['"](CONNECT|MESSAGE|DISCONNECT)['"]""")
"""An API Gateway event (or its Python repr) printed inside a line: the handler's or a data trace."""

BINARY: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffd]")

# ---------------------------------------------------------------------------------------------------------
# API Gateway execution logs
# ---------------------------------------------------------------------------------------------------------

EXEC_LINE: Final = re.compile(r"^\(([^)\s]+)\) ?(.*)", re.S)
"""``(<requestId>) <text>``."""
EXEC_LINE_SPACED: Final = re.compile(r"^\([!-(*-~]+\) ")
"""The usual :data:`EXEC_LINE` (an id of printable ASCII but ``)``, then a space): id and text are the two
sides of the first ``) ``."""


class ExecRule:
    """One execution-log wording: a literal to find cheaply, the pattern, and what its groups fill."""

    __slots__ = ("constants", "fields", "mark", "pattern")

    def __init__(
        self,
        mark: str,
        pattern: str,
        fields: tuple[str | None, ...],
        constants: Mapping[str, object] | None = None,
    ) -> None:
        self.mark = mark
        self.pattern = re.compile(pattern, re.S)
        self.fields = fields
        self.constants: Mapping[str, object] = constants or {}


_CID = r"([^\]\s]+)"
EXEC_RULES: Final = (
    ExecRule("WebSocket Request Route: [", r"WebSocket Request Route: \[([^\]]*)\]", ("route_key",)),
    ExecRule(
        "] is connecting to WebSocket API",
        r"(is connecting to WebSocket API)",
        (None,),
        {"event_type": "CONNECT"},
    ),
    ExecRule(
        "received message from client [Connection Id: ",
        rf"received message from client \[Connection Id: {_CID}\]",
        ("connection_id",),
        {"event_type": "MESSAGE"},
    ),
    # Written only once the handshake is accepted, so the client saw 101 (API Gateway's status 200).
    ExecRule(
        "] connected to API [",
        rf"Client \[Connection Id: {_CID}\] connected to API \[[^\]]*\] successfully",
        ("connection_id",),
        {"event_type": "CONNECT", "http_status": 200},
    ),
    ExecRule(
        "] rejected with status code [",
        rf"client \[Connection Id: {_CID}\] rejected with status code \[([0-9]+)\]",
        ("connection_id", "http_status"),
        {"event_type": "CONNECT"},
    ),
    ExecRule(
        "] sent to API [",
        rf"Message from client \[Connection Id: {_CID}\] sent to API \[[^\]]*\] with response status code "
        r"\[([0-9]+)\]",
        ("connection_id", "http_status"),
        {"event_type": "MESSAGE"},
    ),
    ExecRule(
        "] disconnected from API [",
        rf"Client \[Connection Id: {_CID}\] disconnected from API \[[^\]]*\] with integration response "
        r"status code \[([0-9]+|-)\]\.(?: Close reason: \[(?:([0-9]+): ?([^\]]*)|-)\])?",
        ("connection_id", "integration_status", "disconnect_code", "disconnect_reason"),
        {"event_type": "DISCONNECT"},
    ),
    ExecRule("Received response. Status: ", r"Received response\. Status: ([0-9]+)", ("integration_status",)),
    ExecRule(
        "AWS Integration Endpoint RequestId",
        r"AWS Integration Endpoint RequestId\s*:\s*([^\s]+)",
        ("integration_request_id",),
    ),
    ExecRule(
        "Lambda execution failed with status ",
        r"Lambda execution failed with status ([0-9]+) due to customer function error: (.*?)"
        r"(?:\. Lambda request id: ([A-Za-z0-9_-]+))?\s*$",
        ("integration_status", "error_message", "integration_request_id"),
        {"level": "ERROR"},
    ),
    ExecRule(
        "Execution failed",
        r"Execution failed(?::| due to)\s*(.*?)\s*$",
        ("error_message",),
        {"level": "ERROR"},
    ),
    ExecRule("Method completed with status: ", r"Method completed with status: ([0-9]+)", ("http_status",)),
)
"""Execution-log wordings, most specific first (a field keeps the first value found)."""

# What the stage actually invoked, for the deployment check (kit.diagnose.config_checks), read from the
# message text: the parsers keep no column for it. ``Endpoint request URI: `` is REST wording, its WebSocket
# use unverified; a Lambda integration's URI is Lambda's invocations URL, which names the function's ARN.
# The no-route line is the lab's own wording (kit.lab.gateway_logs): AWS's, for a message no route takes, is
# unknown.
ENDPOINT_REQUEST_URI: Final = re.compile(r"Endpoint request URI: (\S+)")
INVOKED_FUNCTION_ARN: Final = re.compile(r"/functions/(arn:[^/\s]+)/invocations")
NO_ROUTE_MATCH: Final = re.compile(r"no route matches route selection value \[([^\]]*)\]")
# A request refused by a throttle before anything ran (the lab's own wording, kit.lab.gateway_logs; AWS may
# log nothing for it): it invoked nothing, which says nothing of what the stage's deployment holds.
THROTTLED_REQUEST: Final = re.compile(r"Execution failed: throttled by ")
# An AWS_IAM $connect refused before anything ran (the lab's wording: AWS's is not known).
IAM_REFUSED: Final = re.compile(r"IAM authorization of the \$connect handshake failed")

# The $connect authorizer step (REST wording, its WebSocket use unverified; kit.lab.authorizer_core writes
# it): the step's start, a 401 (identity missing, or the function said Unauthorized), and the answer it read.
AUTHORIZER_STARTED: Final = re.compile(r"Starting authorizer: (\S+) for request: (\S+)")
AUTHORIZER_UNAUTHORIZED: Final = re.compile(r"Unauthorized request: (\S+)")
AUTHORIZER_RESULT_BODY: Final = re.compile(r"Authorizer result body before parsing: (.*)$")

ROUTE_EVENT_TYPES: Final[Mapping[str, str]] = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}


def route_event_type(route_key: object) -> str | None:
    """``$connect`` → CONNECT, ``$disconnect`` → DISCONNECT, any other route → MESSAGE."""
    if not isinstance(route_key, str) or not route_key:
        return None
    return ROUTE_EVENT_TYPES.get(route_key, "MESSAGE")


# ---------------------------------------------------------------------------------------------------------
# JSON lines: Lambda JSON format, application JSON, access logs
# ---------------------------------------------------------------------------------------------------------

_DECODER: Final = json.JSONDecoder()


def decode_object(text: str) -> dict[str, Any] | None:
    """The JSON object at the start of ``text`` (trailing text such as a traceback is ignored), or None."""
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        return None
    try:
        document, _ = _DECODER.raw_decode(stripped)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


ACCESS_KEYS: Final = frozenset({"requestId", "eventType", "connectionId"})


def json_role(document: Mapping[str, Any]) -> str:
    """What a JSON event is: ``platform``, ``lambda_app``, ``lambda_error``, ``access`` or ``plain``."""
    record_type = document.get("type")
    if isinstance(record_type, str) and record_type.startswith("platform."):
        return "platform"
    if "log_level" in document:
        return "lambda_error"  # Python's uncaught error in JSON format
    if "level" in document:
        if "errorType" in document and "message" not in document:
            return "lambda_error"
        return "lambda_app"
    if ACCESS_KEYS.intersection(document):
        return "access"
    return "plain"


PLATFORM_KINDS: Final[Mapping[str, str]] = {
    "platform.initStart": "init_start",
    "platform.restoreStart": "init_start",
    "platform.start": "start",
    "platform.runtimeDone": "end",
    "platform.report": "report",
    "platform.initReport": "init_report",
    "platform.restoreReport": "init_report",
}
"""JSON platform records that mean what a Text platform line means take its kind; others are
``platform_json``."""

_REPORT_METRICS: Final = (
    ("durationMs", "duration_ms"),
    ("billedDurationMs", "billed_ms"),
    ("memorySizeMB", "memory_mb"),
    ("maxMemoryUsedMB", "max_mem_mb"),
    ("initDurationMs", "init_ms"),
    ("restoreDurationMs", "restore_ms"),
)

NUMERIC_FIELDS: Final = frozenset(
    {
        "duration_ms",
        "billed_ms",
        "init_ms",
        "restore_ms",
        "memory_mb",
        "max_mem_mb",
        "http_status",
        "integration_status",
        "disconnect_code",
    }
)


def _text(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float):
        return str(value)
    return None


def number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _put(fields: dict[str, object], column: str, value: object) -> None:
    converted = number(value) if column in NUMERIC_FIELDS else _text(value)
    if converted is not None and column not in fields:
        fields[column] = converted


def _key_table(keys: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, tuple[str, int]]:
    """``((column, (key, ...)), ...)`` as key → (column, rank): an earlier key of a column wins."""
    return {key: (column, rank) for column, names in keys for rank, key in enumerate(names)}


def _read_keys(
    document: Mapping[str, Any],
    table: Mapping[str, tuple[str, int]],
    fields: dict[str, object],
    skip: object = None,
) -> None:
    """Fill ``fields`` (columns not yet set) from ``document``'s keys found in ``table``.

    Walks the document's own keys, not the table, because a log line has a dozen keys and the table
    many more. ``skip`` is a value that means "absent" (``-`` in access logs).
    """
    best: dict[str, tuple[int, float | str]] = {}
    for key, value in document.items():
        entry = table.get(key)
        if entry is None or value is None or (skip is not None and value == skip):
            continue
        column, rank = entry
        if column in fields:
            continue
        converted = number(value) if column in NUMERIC_FIELDS else _text(value)
        if converted is None:
            continue
        held = best.get(column)
        if held is None or rank < held[0]:
            best[column] = (rank, converted)
    for column, (_, converted) in best.items():
        fields[column] = converted


def platform_fields(document: Mapping[str, Any]) -> dict[str, object]:
    """Columns of a ``{"time", "type": "platform.*", "record"}`` event, ``kind`` included."""
    record_type = str(document.get("type"))
    kind = PLATFORM_KINDS.get(record_type, "platform_json")
    fields: dict[str, object] = {"kind": kind}
    record = document.get("record")
    if not isinstance(record, dict):
        return fields
    _put(fields, "request_id", record.get("requestId"))
    _put(fields, "status", record.get("status"))
    _put(fields, "error_type", record.get("errorType"))
    metrics = record.get("metrics")
    if isinstance(metrics, dict):
        if kind == "report":
            for key, column in _REPORT_METRICS:
                _put(fields, column, metrics.get(key))
        elif record_type == "platform.initReport":
            _put(fields, "init_ms", metrics.get("durationMs"))
        elif record_type == "platform.restoreReport":
            _put(fields, "restore_ms", metrics.get("durationMs"))
    return fields


APP_KEYS: Final = _key_table(
    (
        ("request_id", ("requestId", "request_id", "aws_request_id", "function_request_id")),
        ("level", ("level", "log_level")),
        ("route_key", ("route", "routeKey", "route_key")),
        ("connection_id", ("connection_id", "connectionId")),
        ("apigw_request_id", ("apigw_request_id",)),
        ("event_type", ("event_type", "eventType")),
        ("app_outcome", ("outcome",)),
        ("app_error_code", ("error_code", "errorCode")),
        ("aws_operation", ("operation", "aws_operation")),
        ("error_type", ("errorType", "error_type")),
        ("error_message", ("errorMessage", "error_message", "detail")),
        ("integration_status", ("status", "statusCode")),
        ("disconnect_code", ("disconnect_status_code", "disconnectStatusCode")),
        ("disconnect_reason", ("disconnect_reason", "disconnectReason")),
    )
)
EVENT_CONTEXT_KEYS: Final = _key_table(
    (
        ("connection_id", ("connectionId",)),
        ("route_key", ("routeKey",)),
        ("event_type", ("eventType",)),
        ("apigw_request_id", ("requestId",)),
        ("disconnect_code", ("disconnectStatusCode",)),
        ("disconnect_reason", ("disconnectReason",)),
    )
)


def app_fields(document: Mapping[str, Any]) -> dict[str, object]:
    """Columns of an application JSON line: the handler's one-line-per-event log, a JSON-format record
    (whose ``message`` may itself be that JSON), or an API Gateway event the handler printed.

    ``status`` is the status code the handler answered, i.e. what API Gateway calls the integration
    status. Inner (``message``) values win over the envelope's; inside one document, the first key
    listed for a column wins.
    """
    fields: dict[str, object] = {}
    documents: list[Mapping[str, Any]] = []
    message = document.get("message")
    if isinstance(message, str) and message.lstrip().startswith("{"):
        inner = decode_object(message)
        if inner is not None:
            documents.append(inner)
    documents.append(document)
    for source in documents:
        _read_keys(source, APP_KEYS, fields)
        context = source.get("requestContext")
        if isinstance(context, dict):
            _read_keys(context, EVENT_CONTEXT_KEYS, fields)
    level = fields.get("level")
    if isinstance(level, str):
        fields["level"] = level.upper()
    return fields


def error_document_fields(document: Mapping[str, Any]) -> dict[str, object]:
    """Columns of an error document (Node's ``Invoke Error`` JSON, Python's uncaught error in JSON).

    AWS SDK errors carry their service error code: ``code`` in SDK v2, ``name`` plus ``$metadata`` in v3.
    """
    fields = app_fields(document)
    if "code" in document:
        _put(fields, "app_error_code", document.get("code"))
    elif "$metadata" in document or "$fault" in document:
        _put(fields, "app_error_code", document.get("name") or document.get("errorType"))
    return fields


ACCESS_MISSING: Final = "-"
ACCESS_FIELD_KEYS: Final = _key_table(
    (
        ("apigw_request_id", ("requestId", "extendedRequestId")),
        ("connection_id", ("connectionId",)),
        ("event_type", ("eventType",)),
        ("route_key", ("routeKey",)),
        ("http_status", ("status",)),
        ("integration_status", ("integrationStatus", "integration.status")),
        ("integration_request_id", ("integrationRequestId", "awsEndpointRequestId", "integration.requestId")),
        (
            "error_message",
            ("error", "errorMessage", "error.message", "integrationError", "integrationErrorMessage"),
        ),
        ("error_type", ("responseType", "error.responseType")),
    )
)


def access_fields(document: Mapping[str, Any]) -> dict[str, object]:
    """Columns of an access-log line (JSON of ``$context`` variables; ``-`` is how AWS writes a null)."""
    fields: dict[str, object] = {}
    _read_keys(document, ACCESS_FIELD_KEYS, fields, skip=ACCESS_MISSING)
    return fields
