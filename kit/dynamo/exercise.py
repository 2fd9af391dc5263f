"""The ``$connect`` handlers exercised against a target: the seed's and the fixed one, side by side.

Beside the storage test (:mod:`kit.dynamo.direct_write`), which writes with the kit's own calls, this runs
the handlers' own code, here, in this process (a notebook's kernel), on events shaped like those API Gateway
sends, with the function's environment aimed at the target's table. Each handler's stored item is read back
(``direct_write.read_item``), and every item written is removed afterwards (``direct_write.delete_item``).

    sample_connect_event(...)           a ``$connect`` event of the shape API Gateway sends a Lambda proxy
    CONNECT_CASES                       the ways a client (or the deployment) can connect, one event each
    exercise_connect_handlers(target)   both handlers on every case, one row each (``HANDLER_RUN_COLUMNS``)
    compare_handlers(results)           one row per case, the two handlers side by side
    handler_environment(values)         the block runs with the handler's ``os.environ`` and a fresh boto3
                                        default session; both are restored on every exit

The handlers run with the kit's own credentials, so this tests the code, not the execution role.

What this module must not do: write to a real account unless the caller passes ``allow_writes=True``, touch
an item it did not write (each connect gets a fresh connection id in a workspace of its own), leave an item
behind that it can delete, or leave the kernel's ``os.environ`` or ``boto3.DEFAULT_SESSION`` changed, whether
the block returns, raises or is interrupted (a reader pressing stop in Jupyter raises ``KeyboardInterrupt``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any, Final
from urllib.parse import quote, urlencode

import boto3
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from kit import frames
from kit.dynamo import direct_write
from kit.errors import ConfigurationError, error_facts
from kit.handler import app, seed
from kit.lab import gateway_events
from kit.target import Target

log = logging.getLogger("kit.dynamo.exercise")


def sample_connect_event(
    token: str | None,
    workspace_id: str | None,
    *,
    connection_id: str | None = None,
    api_id: str | None = None,
    stage: str | None = None,
    region: str = "us-east-2",
    now_ms: int | None = None,
    rng: Random | None = None,
) -> dict[str, Any]:
    """The event API Gateway sends a Lambda proxy integration when the browser hook connects.

    The query string is the hook's (``token`` then ``workspaceId``, ``@`` percent-encoded); None leaves a
    parameter out, and with both None the event has no query-string keys at all, as a real one. Built with the
    lab gateway's event code, so the keys are those of real captures.
    """
    random = rng or Random(secrets.randbits(64))
    api = api_id or "k7d2xq9wme"
    stage_name = stage or "prod"
    moment = now_ms if now_ms is not None else int(time.time() * 1000)
    source_ip = "198.51.100.23"
    user_agent = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
    )
    connection = gateway_events.Connection(
        connection_id=connection_id or gateway_events.new_connection_id(random),
        connected_at_ms=moment,
        source_ip=source_ip,
        user_agent=user_agent,
        api_id=api,
        domain_name=f"{api}.execute-api.{region}.amazonaws.com",
        stage=stage_name,
    )
    client_headers = [
        ("Host", connection.domain_name),
        ("Origin", "https://chat.example.com"),
        ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
        ("User-Agent", user_agent),
    ]
    headers = gateway_events.forwarded_connect_headers(
        client_headers, source_ip=source_ip, trace_id=gateway_events.new_trace_id(random, moment)
    )
    query = [
        (name, value)
        for name, value in (("token", token), ("workspaceId", workspace_id))
        if value is not None
    ]
    return gateway_events.connect_event(
        connection,
        request_id=gateway_events.new_request_id(random, like=connection.connection_id),
        request_time_ms=moment,
        headers=headers,
        raw_query=urlencode(query, quote_via=quote) if query else None,
    )


@dataclass(frozen=True)
class HandlerCase:
    """One way a client (or the deployment) can connect; both handlers get the same event."""

    name: str
    token: str | None  # the ``token`` query parameter; None leaves it out
    include_workspace_id: bool  # send ``workspaceId`` (the run's own workspace) or leave it out
    shows: str  # what the case tells the reader
    table_suffix: str = ""  # appended to TABLE_NAME: a misspelt table name in the function's environment


CONNECT_CASES: Final[tuple[HandlerCase, ...]] = (
    HandlerCase(
        "browser hook",
        "ada@example.com",
        True,
        "The normal connect: both handlers store the item when the write is allowed.",
    ),
    HandlerCase(
        "no workspaceId",
        "ada@example.com",
        False,
        "The seed stores an item without workspaceId, which the sparse workspaceIndex never returns; "
        "the fixed handler refuses the connection (400).",
    ),
    HandlerCase(
        "no query string",
        None,
        False,
        "The seed stores an anonymous item; the fixed handler refuses the connection (400).",
    ),
    HandlerCase(
        "token not an e-mail",
        "ada",
        True,
        "The seed stores whatever the token says as userId; the fixed handler answers 401.",
    ),
    HandlerCase(
        "TABLE_NAME misspelt",
        "ada@example.com",
        True,
        "The write fails (ResourceNotFoundException): the seed still answers 200, so the client connects and "
        "nothing is stored; the fixed handler answers 500 and the handshake fails visibly.",
        table_suffix="-missing",
    ),
)


Handler = Callable[[dict[str, Any], Any], Mapping[str, Any]]
"""A Lambda entry point: ``handler(event, context)`` → the proxy response."""

HANDLERS: Final[Mapping[str, Handler]] = {"seed": seed.handler, "fixed": app.handler}
# The kit's handlers log here when they run in this kernel; functions run in the lab's Lambda runtime
# (kit.dynamo.lambda_handlers) have their lines handed back on the last one.
HANDLER_LOGGERS: Final = (seed.__name__, app.LOGGER_NAME, "kit.dynamo.lambda_handlers")
# The Python runtime's root logger level on Lambda without AWS_LAMBDA_LOG_LEVEL: lines below it are lost.
LAMBDA_DEFAULT_LEVEL: Final = logging.WARNING

HANDLER_RUN_COLUMNS: Final[dict[str, str]] = {
    "case": "string",
    "handler": "string",  # seed | fixed
    "connection_id": "string",
    "query": "string",  # the query string the event carried (tokens are e-mails: mask before showing)
    "table": "string",  # TABLE_NAME the handler ran with
    "status_code": "Int64",  # what the handler answered API Gateway; NA when not run
    "body": "string",
    "item_stored": "boolean",  # is an item with the connection id in the target's table afterwards
    "stored_fields": "string",  # the attributes the item had, comma-separated
    "in_index": "boolean",  # the item has a non-empty string workspaceId, so workspaceIndex holds it
    "log_level": "string",  # the highest level the handler logged at
    "lambda_keeps_log": "boolean",  # would Lambda's default (WARNING) keep that line
    "log": "string",  # the first line logged at that level
    "note": "string",
}


# --------------------------------------------------------------------------------------------------
# The handler's environment, in this process


CLEARED_ENVIRONMENT: Final = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_LAMBDA_LOG_LEVEL",
    "AUTH_SECRET",
    "INDEX_NAME",
    "MANAGEMENT_ENDPOINT",
)
"""Variables of the kernel a handler must not see: they would aim it elsewhere or change how it decides."""


@contextlib.contextmanager
def handler_environment(
    values: Mapping[str, str], *, cleared: Iterable[str] = CLEARED_ENVIRONMENT
) -> Iterator[None]:
    """Run the block with ``cleared`` removed from ``os.environ``, ``values`` set, and no boto3 default
    session; afterwards both are exactly as they were, whether the block returns, raises or is interrupted.

    Both handlers read their configuration from ``os.environ`` and build boto3 clients from it, as on Lambda;
    the seed uses boto3's default session, which would otherwise keep the handler's credentials (or the
    kernel's, for the handler). The whole environment is put back, so what the block itself set goes too.
    """
    saved = dict(os.environ)
    default_session = boto3.DEFAULT_SESSION
    try:
        for name in cleared:
            os.environ.pop(name, None)
        os.environ.update(values)
        boto3.DEFAULT_SESSION = None
        yield
    finally:
        boto3.DEFAULT_SESSION = default_session
        for name in [name for name in os.environ if name not in saved]:
            os.environ.pop(name, None)
        for name, value in saved.items():
            if os.environ.get(name) != value:
                os.environ[name] = value


def _handler_environment_values(target: Target, table_name: str) -> dict[str, str]:
    """The environment a handler runs with here: the function's variables, aimed at the target's table."""
    if target.credentials is not None:
        key_id = target.credentials.access_key_id
        secret = target.credentials.secret_access_key.reveal()
        token = target.credentials.session_token.reveal() if target.credentials.session_token else None
    else:
        found = target.session().get_credentials()
        if found is None:
            raise ConfigurationError(
                f"No AWS credentials for target {target.label}; run `aws configure` or `aws sso login`, or "
                "pass a profile."
            )
        frozen = found.get_frozen_credentials()
        key_id, secret, token = frozen.access_key, frozen.secret_key, frozen.token
    values = {
        "TABLE_NAME": table_name,
        "TABLE_REGION": target.region,
        "AWS_REGION": target.region,
        "AWS_DEFAULT_REGION": target.region,
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AUTH_MODE": "email",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if token:
        values["AWS_SESSION_TOKEN"] = token
    endpoint = target.endpoint_for("dynamodb")
    if endpoint:
        values["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    if target.kind == "lab":
        # The lab must not depend on anyone's ~/.aws (a profile there could name another endpoint).
        values["AWS_CONFIG_FILE"] = os.devnull
        values["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    else:
        values["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true"
    return values


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _captured_logs(loggers: Sequence[logging.Logger]) -> Iterator[_Captured]:
    """Every record of ``loggers``, INFO included (what Lambda would drop), without printing any of them."""
    capture = _Captured()
    saved = [(logger, logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(capture)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
    try:
        yield capture
    finally:
        for logger, level, propagate in saved:
            logger.removeHandler(capture)
            logger.setLevel(level)
            logger.propagate = propagate


def _log_summary(records: Sequence[logging.LogRecord]) -> tuple[str | None, bool | None, str | None]:
    if not records:
        return None, None, None
    # The last line at the highest level: the seed's error line comes after its "Connection attempt" line.
    top = max(reversed(records), key=lambda record: record.levelno)
    # A line from a function run in the lab's runtime says itself whether it reached CloudWatch.
    kept = getattr(top, "lambda_kept", top.levelno >= LAMBDA_DEFAULT_LEVEL)
    return top.levelname, bool(kept), top.getMessage()[:240]


def _clip(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------------
# Running them


def exercise_connect_handlers(
    target: Target,
    cases: Sequence[HandlerCase] = CONNECT_CASES,
    *,
    allow_writes: bool = False,
    handlers: Mapping[str, Handler] = HANDLERS,
) -> pd.DataFrame:
    """Run the seed's and the fixed ``$connect`` handler on the same events, here, against the target's table.

    One row per case and handler (:data:`HANDLER_RUN_COLUMNS`). The handlers run in this process with the
    function's environment pointed at the target (``TABLE_NAME``, region, the kit's own credentials;
    :func:`handler_environment`), so this tests the code, not the execution role. Each connect gets a fresh
    connection id in a workspace of its own (``kit-notebook-<random>``), and every item written is deleted
    afterwards, also when a handler or a read-back raises (the exception then propagates).

    The lab is always written to. A real account only with ``allow_writes=True``; otherwise nothing runs and
    each row says what would have been done.
    """
    run_id = secrets.token_hex(3)
    workspace = f"kit-notebook-{run_id}"
    writes = target.kind == "lab" or allow_writes
    random = Random(secrets.randbits(64))
    rows: list[dict[str, Any]] = []
    stored: list[str] = []  # read back: these hold an item
    unsure: list[str] = []  # the handler ran, but no read-back said whether it stored an item
    try:
        for case in cases:
            for handler_name, handler in handlers.items():
                connection_id = gateway_events.new_connection_id(random)
                event = sample_connect_event(
                    case.token,
                    workspace if case.include_workspace_id else None,
                    connection_id=connection_id,
                    api_id=target.api_id,
                    stage=target.stage,
                    region=target.region,
                    rng=random,
                )
                table_name = target.table + case.table_suffix
                row: dict[str, Any] = {
                    "case": case.name,
                    "handler": handler_name,
                    "connection_id": connection_id,
                    "query": urlencode(event.get("queryStringParameters") or {}, quote_via=quote),
                    "table": table_name,
                }
                if not writes:
                    row["note"] = (
                        f"not run (allow_writes is False): {handler_name} handler() would run here and may "
                        f"put an item into {table_name} in {target.region}, deleted again afterwards"
                    )
                else:
                    context = types.SimpleNamespace(aws_request_id=f"kit-notebook-{run_id}-{len(rows)}")
                    unsure.append(connection_id)  # from here on the handler may have written
                    row |= _run_handler(target, handler, event, context, table_name)
                    unsure.remove(connection_id)
                    if row["item_stored"]:
                        stored.append(connection_id)
                    elif row["item_stored"] is None:
                        unsure.append(connection_id)
                rows.append(row)
    finally:
        cleanup = _remove_items(target, stored, unsure)
    frame = frames.from_rows(rows, HANDLER_RUN_COLUMNS)
    frame.attrs["workspace_id"] = workspace
    frame.attrs["cleanup"] = cleanup if writes else "nothing ran (allow_writes is False), nothing was written"
    return frame


def _run_handler(
    target: Target, handler: Handler, event: dict[str, Any], context: Any, table_name: str
) -> dict[str, Any]:
    """One handler on one event, in the handler's environment; then its item read back (with the kit's
    client, outside that environment): the row's result columns."""
    loggers = [logging.getLogger(name) for name in HANDLER_LOGGERS]
    values = _handler_environment_values(target, table_name)
    with _captured_logs(loggers) as capture, handler_environment(values):
        response = handler(event, context)
    item, problem = _stored_item(target, str(event["requestContext"]["connectionId"]))
    level, kept, line = _log_summary(capture.records)
    workspace_value = (item or {}).get("workspaceId", {})
    return {
        "status_code": response.get("statusCode"),
        "body": _clip(str(response.get("body") or "")),
        "item_stored": None if problem else item is not None,
        "stored_fields": ", ".join(sorted(item)) if item else None,
        "in_index": (bool(workspace_value.get("S")) if isinstance(workspace_value, Mapping) else False)
        if item
        else None,
        "log_level": level,
        "lambda_keeps_log": kept,
        "log": line,
        "note": problem,
    }


def _stored_item(target: Target, connection_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """The item stored under ``connection_id`` in the target's table, or None and why that is unknown."""
    try:
        return direct_write.read_item(target.client("dynamodb"), target.table, connection_id), None
    except (ClientError, BotoCoreError) as exc:
        code, _ = error_facts(exc)
        return None, f"GetItem on {target.table} failed with {code}, so whether it was stored is unknown"


def _remove_items(target: Target, stored: Sequence[str], unsure: Sequence[str] = ()) -> str:
    """Delete the items this run wrote (fresh ids, so nobody else's), and those it may have written (the
    read-back failed or never came); say what happened in a sentence."""
    every = [*stored, *unsure]
    if not every:
        return "nothing was stored, so nothing was removed"
    client = target.client("dynamodb")
    failed: list[str] = []
    for connection_id in every:
        try:
            direct_write.delete_item(client, target.table, connection_id, workspace_id=None)
        except (ClientError, BotoCoreError) as exc:
            log.warning("could not remove %s from %s: %s", connection_id, target.table, exc)
            failed.append(connection_id)
    if failed:
        return (
            f"{len(every) - len(failed)} item(s) removed; {len(failed)} could not be: "
            f"{', '.join(failed)} (delete them from {target.table} by hand)"
        )
    sentence = f"the {len(stored)} item(s) written were removed from {target.table}"
    if unsure:
        sentence += (
            f"; {len(unsure)} more, whose read-back did not say whether they were written, were deleted too"
        )
    return sentence


def compare_handlers(results: pd.DataFrame, cases: Sequence[HandlerCase] = CONNECT_CASES) -> pd.DataFrame:
    """One row per case: each handler's status, whether it stored an item, and whether the index has it.

    The handlers are those ``results`` ran (``exercise_connect_handlers(handlers=)``), else :data:`HANDLERS`.
    """
    shows = {case.name: case.shows for case in cases}
    names = list(dict.fromkeys(str(name) for name in results["handler"].dropna())) or list(HANDLERS)
    table_rows: list[dict[str, Any]] = []
    for case_name, part in results.groupby("case", sort=False):
        row: dict[str, Any] = {"case": case_name}
        for handler_name in names:
            mine = part[part["handler"] == handler_name]
            first = mine.iloc[0] if not mine.empty else None
            row[f"{handler_name} status"] = None if first is None else first["status_code"]
            row[f"{handler_name} stored"] = None if first is None else first["item_stored"]
            row[f"{handler_name} in index"] = None if first is None else first["in_index"]
        row["what it shows"] = shows.get(str(case_name), "")
        table_rows.append(row)
    columns = {"case": "string"}
    for handler_name in names:
        columns |= {
            f"{handler_name} status": "Int64",
            f"{handler_name} stored": "boolean",
            f"{handler_name} in index": "boolean",
        }
    columns["what it shows"] = "string"
    return frames.from_rows(table_rows, columns).set_index("case")
