"""The connections table as evidence: its description, its items, the index's view of them, stale rows.

Fetch and shape are separate. The fetching half (``fetch_description``, ``scan_pages``, ``index_pages``,
``fetch_connections``) calls boto3 through a :class:`~kit.target.Target`; the shaping half
(``describe_frame``, ``items_frame``, ``index_coverage``, ``stale_frame``) is pure and takes the answers as
AWS gives them, so tests feed recorded pages. ``scan_items``, ``schema_diff_frame`` and ``stale_rows`` join
the two for notebooks.

Every frame has a column contract (``*_COLUMNS``): the columns and dtypes it always has, empty or not.
Timestamps are UTC-aware. Bad input (a page without ``Items``, an item that is not a map, a value that is not
a DynamoDB AttributeValue) does not stop the shaping: the row says what was wrong in ``_problem`` and
page-level faults are listed in ``frame.attrs["problems"]``.

``items_frame`` and ``items_frame_slow`` live in :mod:`kit.dynamo.items` (pure) and are re-exported here.

What this module must not do: write to AWS. It only describes, scans, queries and GETs ``@connections`` (never
POST or DELETE), so it is safe against a production account with a read-only target. It creates no boto3
client of its own: every client comes from ``Target.client``.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError
from tqdm import tqdm

from kit import frames
from kit.dynamo import schema
from kit.dynamo.items import (
    EXPECTED_FIELDS,
    ITEMS_COLUMNS,
    PROBLEM_COLUMN,
    TIMESTAMP_UTC,
    TYPE_SUFFIX,
    UTC_DTYPE,
    attribute_text,
    items_frame,
    items_frame_slow,
)
from kit.errors import AwsError, error_response

if TYPE_CHECKING:
    from kit.target import Target

log = logging.getLogger("kit.dynamo.table")

# The items frame lives in kit.dynamo.items; its names are this module's too.
__all__ = [
    "COVERAGE_COLUMNS",
    "DESCRIBE_COLUMNS",
    "EXPECTED_FIELDS",
    "ITEMS_COLUMNS",
    "PROBLEM_COLUMN",
    "STALE_COLUMNS",
    "STATE_DETAIL",
    "TIMESTAMP_UTC",
    "TYPE_SUFFIX",
    "UTC_DTYPE",
    "WHY_NOT_DETAIL",
    "describe_frame",
    "expected_schema",
    "fetch_connections",
    "fetch_description",
    "index_coverage",
    "index_pages",
    "items_frame",
    "items_frame_slow",
    "scan_items",
    "scan_pages",
    "schema_diff_frame",
    "stale_frame",
    "stale_rows",
]

# One row for the table and one per secondary index.
DESCRIBE_COLUMNS: Final[dict[str, str]] = {
    "kind": "string",  # table | global-index | local-index
    "name": "string",
    "hash_key": "string",
    "hash_key_type": "string",  # from AttributeDefinitions: S | N | B
    "range_key": "string",
    "range_key_type": "string",
    "projection": "string",  # ALL | KEYS_ONLY | INCLUDE(a, b); NA for the table
    "status": "string",  # TableStatus or IndexStatus
    "backfilling": "boolean",  # NA for the table and for indexes that do not say
    "item_count": "Int64",  # approximate (refreshed about every six hours); NA when not given
    "size_bytes": "Int64",
    "billing_mode": "string",
    "arn": "string",
    "problem": "string",
}

# One row per base-table item: is it in the workspace index, and if not, why.
COVERAGE_COLUMNS: Final[dict[str, str]] = {
    "connection_id": "string",
    "workspace_id": "string",  # the index key's value as text
    "workspace_id_type": "string",  # the index key's DynamoDB type in the item; NA when absent
    "in_index": "boolean",
    "why_not": "string",  # NA | attribute-absent | empty-string | wrong-type | not-yet-in-index
    "detail": "string",
}

# One row per stored connection id: does API Gateway still know the connection?
STALE_COLUMNS: Final[dict[str, str]] = {
    "connection_id": "string",
    "workspace_id": "string",
    "user_id": "string",
    "stored_at": UTC_DTYPE,  # the item's timestamp
    "state": "string",  # alive | gone | invalid-id | forbidden | error | unchecked
    "http_status": "Int64",
    "error_code": "string",
    "connected_at": UTC_DTYPE,
    "last_active_at": UTC_DTYPE,
    "source_ip": "string",
    "detail": "string",
}

WHY_NOT_DETAIL: Final[dict[str, str]] = {
    "attribute-absent": (
        "the item has no {key}, so the sparse index {index} leaves it out and broadcasts to the workspace "
        "never find it (the client connected without ?{key}=… or the handler dropped it)"
    ),
    "empty-string": (
        "{key} is an empty string; real DynamoDB rejects such a put (ValidationException on the index key), "
        "so this item can only come from an emulator or another writer"
    ),
    "wrong-type": (
        "{key} has type {type}, not {expected}; the index only holds {expected} keys (real DynamoDB rejects "
        "the put with 'Type mismatch for Index Key')"
    ),
    "not-yet-in-index": (
        "{key} is a non-empty {expected} but the index scan did not return the item; index propagation is "
        "eventually consistent (normally under a second), so scan again, and check IndexStatus/Backfilling "
        "if it persists"
    ),
}

STATE_DETAIL: Final[dict[str, str]] = {
    "alive": "API Gateway knows this connection; it is open.",
    "gone": (
        "API Gateway answers 410 Gone: the connection is closed but its item is still stored, so $disconnect "
        "did not delete it and broadcasts to it will fail."
    ),
    "invalid-id": (
        "API Gateway answers 400: this is not an id it issued (an emulator's id, or a value written by "
        "something other than the $connect handler)."
    ),
    "forbidden": (
        "API Gateway answers 403: the kit's identity lacks execute-api:ManageConnections (GET), or the "
        "management URL names another API or stage."
    ),
    "unchecked": "Not checked (check=False).",
}


# --------------------------------------------------------------------------------------------------
# Small frame helpers


_empty = frames.empty
_frame = frames.from_rows
_utc = frames.utc


# --------------------------------------------------------------------------------------------------
# describe_table → one row per table and index


def describe_frame(description: Mapping[str, Any] | None) -> pd.DataFrame:
    """The table and each secondary index, one row each (:data:`DESCRIBE_COLUMNS`).

    ``description`` is ``describe_table``'s answer or its ``Table`` member; None (no such table) gives an
    empty frame. Malformed parts are kept: the row's ``problem`` says what could not be read.
    """
    if not description:
        return _empty(DESCRIBE_COLUMNS)
    inner = description.get("Table")
    table: Mapping[str, Any] = inner if isinstance(inner, Mapping) else description
    types: dict[str, str] = {}
    problems: list[str] = []
    for definition in _as_list(table.get("AttributeDefinitions")):
        if isinstance(definition, Mapping) and "AttributeName" in definition:
            types[str(definition["AttributeName"])] = str(definition.get("AttributeType", ""))
        else:
            problems.append(f"an AttributeDefinitions entry is not readable ({type(definition).__name__})")
    billing = _billing_mode(table)
    rows: list[dict[str, Any]] = [
        {
            "kind": "table",
            "name": table.get("TableName"),
            **_keys(table.get("KeySchema"), types, problems),
            "projection": None,
            "status": table.get("TableStatus"),
            "backfilling": None,
            "item_count": _int_or_none(table.get("ItemCount")),
            "size_bytes": _int_or_none(table.get("TableSizeBytes")),
            "billing_mode": billing,
            "arn": table.get("TableArn"),
            "problem": "; ".join(problems) + "." if problems else None,
        }
    ]
    for kind, member, status_key in (
        ("global-index", "GlobalSecondaryIndexes", "IndexStatus"),
        ("local-index", "LocalSecondaryIndexes", None),
    ):
        for index in _as_list(table.get(member)):
            index_problems: list[str] = []
            if not isinstance(index, Mapping):
                rows.append(
                    {
                        "kind": kind,
                        "problem": f"a {member} entry is a {type(index).__name__}, not an object.",
                    }
                )
                continue
            backfilling = index.get("Backfilling")
            rows.append(
                {
                    "kind": kind,
                    "name": index.get("IndexName"),
                    **_keys(index.get("KeySchema"), types, index_problems),
                    "projection": _projection(index.get("Projection")),
                    # LSIs have no status of their own: they live and die with the table.
                    "status": index.get(status_key) if status_key else table.get("TableStatus"),
                    "backfilling": backfilling if isinstance(backfilling, bool) else None,
                    "item_count": _int_or_none(index.get("ItemCount")),
                    "size_bytes": _int_or_none(index.get("IndexSizeBytes")),
                    "billing_mode": billing,
                    "arn": index.get("IndexArn"),
                    "problem": "; ".join(index_problems) + "." if index_problems else None,
                }
            )
    return _frame(rows, DESCRIBE_COLUMNS)


def _billing_mode(table: Mapping[str, Any]) -> str | None:
    summary = table.get("BillingModeSummary")
    if isinstance(summary, Mapping) and summary.get("BillingMode"):
        return str(summary["BillingMode"])
    throughput = table.get("ProvisionedThroughput")
    if not isinstance(throughput, Mapping):
        return None
    # AWS omits the summary for some tables; on-demand tables report zero provisioned capacity.
    zero = not throughput.get("ReadCapacityUnits") and not throughput.get("WriteCapacityUnits")
    return "PAY_PER_REQUEST" if zero else "PROVISIONED"


def _as_list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _keys(key_schema: object, types: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    if not isinstance(key_schema, list):
        problems.append("KeySchema is missing or not a list")
        return keys
    for element in key_schema:
        if not isinstance(element, Mapping):
            problems.append("a KeySchema entry is not an object")
            continue
        prefix = {"HASH": "hash_key", "RANGE": "range_key"}.get(str(element.get("KeyType")))
        name = element.get("AttributeName")
        if prefix is None or name is None:
            problems.append(f"a KeySchema entry has KeyType {element.get('KeyType')!r}")
            continue
        keys[prefix] = name
        keys[f"{prefix}_type"] = types.get(str(name))
        if str(name) not in types:
            problems.append(f"key {name} has no AttributeDefinitions entry")
    return keys


def _projection(projection: object) -> str | None:
    if not isinstance(projection, Mapping):
        return None
    kind = str(projection.get("ProjectionType", ""))
    extra = projection.get("NonKeyAttributes")
    if kind == "INCLUDE" and isinstance(extra, list):
        return f"INCLUDE({', '.join(str(a) for a in extra)})"
    return kind or None


def fetch_description(target: Target) -> dict[str, Any] | None:
    """``describe_table`` for the target's table (its ``Table`` member), or None when it does not exist."""
    return schema.describe(target.client("dynamodb"), target.table)


def expected_schema(target: Target) -> schema.TableSchema:
    """The seed's schema under the target's table and index names."""
    indexes = tuple(replace(index, name=target.index) for index in schema.EXPECTED.indexes[:1])
    return replace(schema.EXPECTED, name=target.table, indexes=indexes + schema.EXPECTED.indexes[1:])


def schema_diff_frame(target: Target) -> pd.DataFrame:
    """How the target's table differs from the seed's schema (``kit.dynamo.schema.DIFFERENCE_COLUMNS``)."""
    description = fetch_description(target)
    return schema.differences_frame(schema.diff_table(description, expected_schema(target)))


# --------------------------------------------------------------------------------------------------
# Scanning


def _show_progress(progress: bool) -> bool:
    stream = sys.stderr
    return progress and hasattr(stream, "isatty") and stream.isatty()


def scan_pages(
    target: Target,
    *,
    segments: int = 4,
    progress: bool = True,
    index_name: str | None = None,
    consistent_read: bool = False,
) -> list[dict[str, Any]]:
    """Every page of a (parallel) scan of the target's table, or of ``index_name`` on it.

    ``segments`` threads each scan one segment (``Segment``/``TotalSegments``) and follow
    ``LastEvaluatedKey`` to the end. Pages come back in segment order, each with ``Items``, ``Count``,
    ``ScannedCount`` and ``Segment``. A tqdm bar counts items when ``progress`` and stderr is a terminal.
    """
    if not 1 <= segments <= 1_000_000:
        raise ValueError(f"segments must be between 1 and 1000000, not {segments}")
    client = target.client("dynamodb")
    resource = f"{target.table}/index/{index_name}" if index_name else target.table
    base: dict[str, Any] = {"TableName": target.table}
    if index_name:
        base["IndexName"] = index_name
    if consistent_read:
        base["ConsistentRead"] = True
    lock = threading.Lock()
    bar = tqdm(
        desc=f"scan {resource}",
        unit=" items",
        disable=not _show_progress(progress),
        leave=False,
    )

    def scan_segment(segment: int) -> list[dict[str, Any]]:
        request = dict(base)
        if segments > 1:
            request |= {"Segment": segment, "TotalSegments": segments}
        pages: list[dict[str, Any]] = []
        try:
            for answer in client.get_paginator("scan").paginate(**request):
                page = {
                    "Items": answer.get("Items", []),
                    "Count": answer.get("Count", 0),
                    "ScannedCount": answer.get("ScannedCount", 0),
                    "Segment": segment,
                }
                pages.append(page)
                with lock:
                    bar.update(len(page["Items"]))
        except (ClientError, BotoCoreError) as exc:
            raise AwsError.from_botocore(
                exc,
                "dynamodb",
                "Scan",
                resource,
                resource_type="table",
                region=target.region,
                hints={
                    "ResourceNotFoundException": (
                        f"check the table name and the region (the target is {target.region}); the "
                        "$connect Lambda writes to the table in its own region unless TABLE_REGION says "
                        "otherwise"
                    ),
                    "AccessDeniedException": (
                        f"grant the kit's identity dynamodb:Scan on {resource} (reading is all the kit needs)"
                    ),
                    "ValidationException": (
                        f"check that {resource} exists and has the index the kit was told about"
                    ),
                },
            ) from exc
        return pages

    try:
        with ThreadPoolExecutor(max_workers=segments, thread_name_prefix="kit-scan") as pool:
            per_segment = list(pool.map(scan_segment, range(segments)))
    finally:
        bar.close()
    return [page for pages in per_segment for page in pages]


def scan_items(
    target: Target, *, segments: int = 4, progress: bool = True, consistent_read: bool = False
) -> pd.DataFrame:
    """Every item of the target's table as :func:`items_frame` shapes it, sorted by ``connectionId``."""
    pages = scan_pages(target, segments=segments, progress=progress, consistent_read=consistent_read)
    frame = items_frame(pages)
    problems = frame.attrs.get("problems", [])
    frame = frame.sort_values("connectionId", kind="stable", na_position="last").reset_index(drop=True)
    frame.attrs["problems"] = problems
    return frame


def index_pages(target: Target, *, index_name: str | None = None) -> list[dict[str, Any]]:
    """Every page of a scan of the target's index (``target.index`` unless ``index_name``)."""
    return scan_pages(target, segments=1, progress=False, index_name=index_name or target.index)


# --------------------------------------------------------------------------------------------------
# Index coverage


def _ids_in(pages: Iterable[Mapping[str, Any]], key: str) -> set[str]:
    found: set[str] = set()
    for page in pages:
        items = page.get("Items") if isinstance(page, Mapping) else None
        for item in items if isinstance(items, list) else []:
            value = item.get(key) if isinstance(item, Mapping) else None
            if isinstance(value, Mapping) and len(value) == 1:
                ((kind, raw),) = value.items()
                try:
                    text = attribute_text(str(kind), raw)
                except (ValueError, TypeError, AttributeError, ArithmeticError):
                    continue
                if text is not None:
                    found.add(text)
    return found


def index_coverage(
    items: pd.DataFrame,
    index_pages: Iterable[Mapping[str, Any]],
    *,
    index_name: str = schema.EXPECTED.indexes[0].name,
    index_key: str = schema.EXPECTED.indexes[0].hash_key,
    key_type: str = schema.EXPECTED.indexes[0].hash_key_type,
    table_key: str = schema.EXPECTED.hash_key,
) -> pd.DataFrame:
    """One row per base-table item (``items`` from :func:`items_frame`): is it in the index, and why not.

    ``index_pages`` are scan or query pages of the index. ``why_not``: ``attribute-absent`` (sparse index),
    ``empty-string``, ``wrong-type`` (not ``key_type``), or ``not-yet-in-index`` (present and well-typed,
    but the index has not caught up: GSIs are eventually consistent). :data:`COVERAGE_COLUMNS`.
    """
    n = len(items)
    if n == 0:
        return _empty(COVERAGE_COLUMNS)
    indexed = _ids_in(index_pages, table_key)

    def column(name: str) -> pd.Series:
        if name in items.columns:
            return items[name].astype("string").reset_index(drop=True)
        return pd.Series(pd.array([None] * n, dtype="string"))

    ids = column(table_key)
    values = column(index_key)
    types = column(f"{index_key}{TYPE_SUFFIX}")
    in_index = ids.isin(indexed).fillna(False).astype(bool).to_numpy()
    absent = types.isna().to_numpy()
    wrong = (~absent) & (types != key_type).fillna(True).to_numpy(dtype=bool)
    empty = (~absent) & (~wrong) & (values == "").fillna(False).to_numpy(dtype=bool)
    # Assigned from the weakest reason to the strongest, so the strongest wins.
    why_not = np.full(n, "not-yet-in-index", dtype=object)
    why_not[empty] = "empty-string"
    why_not[wrong] = "wrong-type"
    why_not[absent] = "attribute-absent"
    why_not[in_index] = None
    details = np.full(n, None, dtype=object)
    type_text = types.fillna("").to_numpy(dtype=object)
    for reason, template in WHY_NOT_DETAIL.items():
        mask = why_not == reason
        if not mask.any():
            continue
        if reason == "wrong-type":
            details[mask] = [
                template.format(key=index_key, index=index_name, type=t, expected=key_type)
                for t in type_text[mask]
            ]
        else:
            details[mask] = template.format(key=index_key, index=index_name, type="", expected=key_type)
    return pd.DataFrame(
        {
            "connection_id": ids.array,
            "workspace_id": values.array,
            "workspace_id_type": types.array,
            "in_index": pd.array(in_index, dtype="boolean"),
            "why_not": pd.array(why_not, dtype="string"),
            "detail": pd.array(details, dtype="string"),
        }
    )


# --------------------------------------------------------------------------------------------------
# Stale rows: does API Gateway still know each stored connection?


def _connection_ids(items: pd.DataFrame) -> list[str]:
    if items.empty or "connectionId" not in items.columns:
        return []
    ids = items["connectionId"].astype("string").dropna()
    return [str(v) for v in ids[ids != ""].drop_duplicates()]


def fetch_connections(
    target: Target, connection_ids: Iterable[str], *, max_workers: int = 8
) -> dict[str, dict[str, Any]]:
    """``GET @connections/{id}`` for each id (read-only: never POST or DELETE).

    Returns, per id, the answer (``ConnectedAt``, ``LastActiveAt``, ``Identity``) or, on an error, the
    error response (``Error``/``ResponseMetadata``, as ``ClientError.response`` holds it).
    """
    client = target.client("apigatewaymanagementapi")

    def get(connection_id: str) -> tuple[str, dict[str, Any]]:
        try:
            answer = client.get_connection(ConnectionId=connection_id)
        except (ClientError, BotoCoreError) as exc:
            return connection_id, error_response(exc)
        return connection_id, dict(answer)

    ids = list(dict.fromkeys(connection_ids))
    if not ids:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(ids)))) as pool:
        return dict(pool.map(get, ids))


def _state(answer: Mapping[str, Any] | None) -> tuple[str, int | None, str | None, str]:
    """(state, HTTP status, error code, detail) for one GetConnection answer."""
    if answer is None:
        return "unchecked", None, None, STATE_DETAIL["unchecked"]
    metadata = answer.get("ResponseMetadata")
    status = metadata.get("HTTPStatusCode") if isinstance(metadata, Mapping) else None
    status = status if isinstance(status, int) else None
    error = answer.get("Error")
    if not isinstance(error, Mapping):
        return "alive", status or 200, None, STATE_DETAIL["alive"]
    code = str(error.get("Code") or "Unknown")
    message = str(error.get("Message") or "").rstrip(".")
    by_code = {
        "GoneException": "gone",
        "BadRequestException": "invalid-id",
        "ForbiddenException": "forbidden",
        "AccessDeniedException": "forbidden",
    }
    by_status = {410: "gone", 400: "invalid-id", 403: "forbidden"}
    state = by_code.get(code) or (by_status.get(status) if status else None) or "error"
    if state == "error":
        detail = f"GetConnection failed with {code}{': ' + message if message else ''}."
    else:
        detail = STATE_DETAIL[state] + (f" ({message}.)" if message else "")
    return state, status, code, detail


def stale_frame(items: pd.DataFrame, answers: Mapping[str, Mapping[str, Any]] | None) -> pd.DataFrame:
    """One row per stored connection id with what ``GET @connections/{id}`` said (:data:`STALE_COLUMNS`).

    ``answers`` maps ids to GetConnection answers or error responses (``fetch_connections``); None means
    nothing was checked (state ``unchecked``). Pure.
    """
    if items.empty or "connectionId" not in items.columns:
        return _empty(STALE_COLUMNS)
    first = items.dropna(subset=["connectionId"]).drop_duplicates("connectionId")
    rows: list[dict[str, Any]] = []
    for record in first.to_dict("records"):
        connection_id = str(record["connectionId"])
        if not connection_id:
            continue
        answer = answers.get(connection_id) if answers is not None else None
        if answers is not None and answer is None:
            answer = {"Error": {"Code": "NotChecked", "Message": "no answer was recorded for this id"}}
        state, status, code, detail = _state(answer)
        identity = answer.get("Identity") if answer else None
        rows.append(
            {
                "connection_id": connection_id,
                "workspace_id": _na_to_none(record.get("workspaceId")),
                "user_id": _na_to_none(record.get("userId")),
                "stored_at": _na_to_none(record.get(TIMESTAMP_UTC)),
                "state": state,
                "http_status": status,
                "error_code": code,
                "connected_at": answer.get("ConnectedAt") if state == "alive" and answer else None,
                "last_active_at": answer.get("LastActiveAt") if state == "alive" and answer else None,
                "source_ip": identity.get("SourceIp") if isinstance(identity, Mapping) else None,
                "detail": detail,
            }
        )
    return _frame(rows, STALE_COLUMNS)


def _na_to_none(value: Any) -> Any:
    return None if value is None or value is pd.NA or value is pd.NaT else value


def stale_rows(
    target: Target, items: pd.DataFrame, *, check: bool = True, max_workers: int = 8
) -> pd.DataFrame:
    """For each stored connection, whether API Gateway still knows it (GET only). See :func:`stale_frame`."""
    if not check:
        return stale_frame(items, None)
    return stale_frame(items, fetch_connections(target, _connection_ids(items), max_workers=max_workers))
