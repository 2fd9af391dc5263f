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

``items_frame`` reads DynamoDB JSON (``{"S": "…"}``, ``{"N": "42"}``) itself instead of going through boto3's
``TypeDeserializer`` (``items_frame_slow`` is that baseline, about 5x slower): one lean pass collects each
attribute's rows, types and raw values, then each column is converted whole (``int``/``float`` mapped over
the column, pandas string, boolean and nullable-integer arrays). Numbers never become ``Decimal``.

What this module must not do: write to AWS. It only describes, scans, queries and GETs ``@connections`` (never
POST or DELETE), so it is safe against a production account with a read-only target. It creates no boto3
client of its own: every client comes from ``Target.client``.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import operator
import sys
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError
from tqdm import tqdm

from kit import frames, schema
from kit.errors import AwsError, error_facts

if TYPE_CHECKING:
    from kit.target import Target

log = logging.getLogger("kit.dynamo")

# The fields the $connect handler writes; their value columns are always strings, whatever type an item used.
EXPECTED_FIELDS: Final[tuple[str, ...]] = tuple(name for name, _ in schema.EXPECTED.required_fields)
TYPE_SUFFIX: Final = "__type"  # "workspaceId__type": the DynamoDB type each item used ("S", "N", … or NA)
PROBLEM_COLUMN: Final = "_problem"
TIMESTAMP_UTC: Final = "timestamp_utc"
UTC_DTYPE: Final = frames.UTC_DTYPE

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

# One row per item. These columns are always present, in this order; any other attribute an item carries adds
# a value column (dtype from its values: Int64/Float64 for numbers, string, boolean; maps, lists and sets as
# JSON text) after the expected fields and a type column among the type columns.
ITEMS_COLUMNS: Final[dict[str, str]] = {
    **dict.fromkeys(EXPECTED_FIELDS, "string"),
    TIMESTAMP_UTC: UTC_DTYPE,  # ``timestamp`` parsed as ISO 8601; NaT when absent or not ISO 8601
    **{f"{name}{TYPE_SUFFIX}": "string" for name in EXPECTED_FIELDS},
    PROBLEM_COLUMN: "string",
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

_KNOWN_TYPES: Final = frozenset({"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"})
_INT64_LIMIT: Final = 2**63


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
    """How the target's table differs from the seed's schema (``kit.schema.DIFFERENCE_COLUMNS``)."""
    description = fetch_description(target)
    return schema.differences_frame(schema.diff_table(description, expected_schema(target)))


# --------------------------------------------------------------------------------------------------
# Items: DynamoDB JSON → typed columns


@dataclass
class _Column:
    """One attribute across items: the rows it occurs in, its type there, and its raw value."""

    rows: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)


def _page_items(page: object, number: int, problems: list[str]) -> list[Any]:
    if isinstance(page, Mapping):
        items = page.get("Items")
        if isinstance(items, list):
            return items
        if isinstance(page.get("Item"), Mapping):  # a get_item answer
            return [page["Item"]]
        if items is None and "Item" not in page:
            keys = ", ".join(sorted(str(k) for k in page)) or "none"
            problems.append(f"page {number} has no Items (its keys: {keys}); it was skipped.")
            return []
        problems.append(f"page {number} has Items of type {type(items).__name__}; it was skipped.")
        return []
    problems.append(f"page {number} is a {type(page).__name__}, not a scan or query answer; it was skipped.")
    return []


def items_frame(pages: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Scan or query pages (DynamoDB JSON) → one row per item, typed columns (:data:`ITEMS_COLUMNS` and more).

    Each attribute becomes a value column and a ``<name>__type`` column holding the DynamoDB type each item
    used (NA where the item lacks it), so a ``workspaceId`` written as a number is visible. Value dtypes:
    the expected fields are always ``string`` (a number shows as its text); other attributes are ``Int64``
    (numbers, all integral), ``Float64`` (numbers), ``string`` (S), ``boolean`` (BOOL), and JSON text for
    M, L, SS, NS, BS, B (base64) and for attributes whose items disagree on the type. NULL is NA.
    """
    problems: list[str] = []
    items: list[Any] = []
    for number, page in enumerate(pages, start=1):
        items.extend(_page_items(page, number, problems))
    row_problems: dict[int, list[str]] = {}
    columns = _collect_uniform(items)
    if columns is None:
        columns = _collect_well_formed(items)
    if columns is None:
        columns = _collect_carefully(items, row_problems)
    built: dict[str, tuple[Any, Any]] = {}
    for name, column in columns.items():
        built[str(name)] = _build_column(len(items), str(name), column, row_problems)
    return _assemble(len(items), built, row_problems, problems)


def _collect_uniform(items: list[Any]) -> dict[Any, _Column] | None:
    """:func:`_collect_well_formed` for the usual page, where every item has the same attributes and each
    attribute one type in every item: column by column, through C-level maps rather than a Python step per
    value. None when the items are not like that (the other collectors then read them).
    """
    if not items:
        return None
    try:
        names = list(items[0])
        if not names or sum(map(len, items)) != len(items) * len(names):
            return None
        everyone = list(range(len(items)))  # shared by the columns, which only read it
        columns: dict[Any, _Column] = {}
        for name in names:
            # No tuple per item: what is made here is one list per column, not garbage for the collector
            # to walk the pages for.
            values = list(map(operator.itemgetter(name), items))  # KeyError: an item lacks it
            if sum(map(len, values)) != len(values):  # each value a one-key map
                return None
            kind = next(iter(values[0]))
            raw = list(map(operator.itemgetter(kind), values))  # KeyError: another type in some item
            columns[name] = _Column(everyone, [kind] * len(values), raw)
    except (AttributeError, TypeError, KeyError, IndexError, StopIteration):
        return None
    return columns


def _collect_well_formed(items: list[Any]) -> dict[Any, _Column] | None:
    """Every attribute's rows, types and values, assuming well-formed items; None when they are not.

    The one pass over every value, so it is kept lean: bound appends, no tuple or dict allocated per value
    (the garbage collector would otherwise walk the whole page graph again and again). A value that is not a
    one-key map either raises here or leaves a column with more types than rows; both send the caller to
    :func:`_collect_carefully`.
    """
    appenders: dict[Any, tuple[Any, Any, Any]] = {}
    columns: dict[Any, _Column] = {}
    try:
        for row, item in enumerate(items):
            for name, value in item.items():
                add = appenders.get(name)
                if add is None:
                    column = columns[name] = _Column()
                    add = appenders[name] = (column.rows.append, column.kinds.append, column.values.append)
                add[0](row)
                for kind in value:
                    add[1](kind)
                    add[2](value[kind])
    except (AttributeError, TypeError, KeyError, IndexError):
        return None
    if any(len(column.kinds) != len(column.rows) for column in columns.values()):
        return None
    return columns


def _collect_carefully(items: list[Any], row_problems: dict[int, list[str]]) -> dict[Any, _Column]:
    """As :func:`_collect_well_formed`, but every item and value is checked and faults are noted."""
    columns: dict[Any, _Column] = {}
    for row, item in enumerate(items):
        if not isinstance(item, Mapping):
            row_problems[row] = [f"item is a {type(item).__name__}, not a map of attributes"]
            continue
        for name, value in item.items():
            column = columns.get(name)
            if column is None:
                column = columns[name] = _Column()
            column.rows.append(row)
            if isinstance(value, Mapping) and len(value) == 1:
                for kind, raw in value.items():
                    column.kinds.append(kind)
                    column.values.append(raw)
            else:
                column.kinds.append("?")
                column.values.append(value)
    return columns


def _scatter(n: int, rows: list[int], values: list[Any]) -> np.ndarray[Any, Any]:
    out = np.full(n, None, dtype=object)
    if len(rows) == n:
        out[:] = values
    else:
        out[np.asarray(rows, dtype=np.int64)] = values
    return out


def _build_column(n: int, name: str, column: _Column, row_problems: dict[int, list[str]]) -> tuple[Any, Any]:
    """The value array and the type array of one attribute."""
    present = set(column.kinds)
    kinds = _kinds_array(n, column, present)
    if "?" in present:
        for at, kind in zip(column.rows, column.kinds, strict=True):
            if kind == "?":
                row_problems.setdefault(at, []).append(f"attribute {name} is not a DynamoDB AttributeValue")
    if present - _KNOWN_TYPES - {"?"}:
        for at, kind in zip(column.rows, column.kinds, strict=True):
            if kind not in _KNOWN_TYPES and kind != "?":
                row_problems.setdefault(at, []).append(f"attribute {name} has unknown type {kind}")
    typed = present - {"NULL"}
    single = next(iter(typed)) if len(typed) == 1 else None
    contract = name in EXPECTED_FIELDS
    if single in ("S", "BOOL") and (single == "S" or not contract):
        rows, values = _drop_nulls(column) if "NULL" in present else (column.rows, column.values)
        expected = str if single == "S" else bool
        if set(map(type, values)) - {expected}:
            values = _blank_misfits(
                name, single, rows=rows, values=values, expected=expected, row_problems=row_problems
            )
        dtype = "string" if single == "S" else "boolean"
        return pd.array(_scatter(n, rows, values), dtype=dtype), kinds
    if single == "N" and not contract:
        return _numbers(n, name, column, row_problems), kinds
    texts = _texts_of_mostly_strings(column)
    if texts is not None:
        return pd.array(_scatter(n, column.rows, texts), dtype="string"), kinds
    texts = []
    for at, kind, raw in zip(column.rows, column.kinds, column.values, strict=True):
        if kind == "S" and type(raw) is str:
            texts.append(raw)
            continue
        try:
            texts.append(_text(kind, raw))
        except (ValueError, TypeError, AttributeError, ArithmeticError):
            if kind in _KNOWN_TYPES:
                row_problems.setdefault(at, []).append(f"attribute {name} has a malformed {kind} value")
            texts.append(json.dumps(raw, sort_keys=True, default=str, separators=(",", ":")))
    return pd.array(_scatter(n, column.rows, texts), dtype="string"), kinds


def _kinds_array(n: int, column: _Column, present: set[str]) -> Any:
    """The ``<name>__type`` array: one Arrow value repeated when every item has the attribute with one type
    (the usual case), else each item's type (NA where it lacks the attribute)."""
    if len(present) == 1 and len(column.rows) == n:
        (kind,) = present
        return pd.array(pa.repeat(pa.scalar(kind, pa.large_string()), n), dtype="string")
    return pd.array(_scatter(n, column.rows, column.kinds), dtype="string")


def _texts_of_mostly_strings(column: _Column) -> list[str | None] | None:
    """The column as text when every value is well formed, converting only the non-S values; else None.

    A field that is a string in most items and a number in a few (the wrong-type case) stays fast.
    """
    texts: list[Any] = list(column.values)
    try:
        for at in [i for i, kind in enumerate(column.kinds) if kind != "S"]:
            texts[at] = _text(column.kinds[at], texts[at])
    except (ValueError, TypeError, AttributeError, ArithmeticError):
        return None
    if set(map(type, texts)) - {str, type(None)}:
        return None
    return texts


def _blank_misfits(
    name: str,
    kind: str,
    *,
    rows: list[int],
    values: list[Any],
    expected: type,
    row_problems: dict[int, list[str]],
) -> list[Any]:
    """``values`` with each value of another Python type than ``expected`` replaced by None, and noted."""
    kept: list[Any] = []
    for at, value in zip(rows, values, strict=True):
        if type(value) is expected:
            kept.append(value)
        else:
            row_problems.setdefault(at, []).append(f"attribute {name} has a malformed {kind} value")
            kept.append(None)
    return kept


def _drop_nulls(column: _Column) -> tuple[list[int], list[Any]]:
    keep = [i for i, kind in enumerate(column.kinds) if kind != "NULL"]
    return [column.rows[i] for i in keep], [column.values[i] for i in keep]


def _numbers(n: int, name: str, column: _Column, row_problems: dict[int, list[str]]) -> Any:
    """A numeric column: Int64 when every number is integral and fits, else Float64; junk is NA + problem."""
    rows, texts = _drop_nulls(column) if "NULL" in column.kinds else (column.rows, column.values)
    index = np.asarray(rows, dtype=np.int64)
    missing = np.ones(n, dtype=bool)
    missing[index] = False
    # int() and float() over the whole column are several times faster than pd.to_numeric on strings.
    try:
        ints = np.array(list(map(int, texts)), dtype=np.int64)
    except (ValueError, TypeError, OverflowError):
        pass
    else:
        data = np.zeros(n, dtype=np.int64)
        data[index] = ints
        return pd.arrays.IntegerArray(data, missing)
    try:
        floats = np.array(list(map(float, texts)), dtype=np.float64)
    except (ValueError, TypeError):
        parsed = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce")
        floats = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(floats)
    if bad.any():
        for at in index[bad]:
            row_problems.setdefault(int(at), []).append(f"attribute {name} is not a number")
        missing[index[bad]] = True
    good = floats[~bad]
    data_float = np.zeros(n, dtype=np.float64)
    data_float[index[~bad]] = good
    if bool(np.all(np.floor(good) == good) and np.all(np.abs(good) < _INT64_LIMIT)):
        return pd.arrays.IntegerArray(data_float.astype(np.int64), missing)
    return pd.arrays.FloatingArray(data_float, missing)


def _json_number(text: str | Decimal) -> int | float:
    """A DynamoDB number as JSON shows it: an int when integral, else a float."""
    number = text if isinstance(text, Decimal) else Decimal(text)
    if number == number.to_integral_value():
        return int(number)
    return float(number)


def _plain(kind: str, raw: Any) -> Any:
    """A DynamoDB JSON value as plain JSON (numbers as numbers, sets as sorted lists, binary as base64)."""
    if kind in ("S", "BOOL"):
        return raw
    if kind == "N":
        return _json_number(raw)
    if kind == "NULL":
        return None
    if kind == "B":
        return _base64(raw)
    if kind == "M":
        return {str(k): _plain_value(v) for k, v in raw.items()}
    if kind == "L":
        return [_plain_value(v) for v in raw]
    if kind == "SS":
        return sorted(raw)
    if kind == "NS":
        return sorted(_json_number(v) for v in raw)
    if kind == "BS":
        return sorted(_base64(v) for v in raw)
    raise ValueError(kind)


def _plain_value(value: Any) -> Any:
    if isinstance(value, Mapping) and len(value) == 1:
        ((kind, raw),) = value.items()
        if kind in _KNOWN_TYPES:
            return _plain(str(kind), raw)
    raise ValueError("not an AttributeValue")


def _base64(raw: Any) -> str:
    if isinstance(raw, bytes | bytearray):
        return base64.b64encode(bytes(raw)).decode("ascii")
    return str(raw)  # recorded JSON already carries base64 text


def _text(kind: str, raw: Any) -> str | None:
    """One value as text for a string column: S as is, numbers and JSON types as compact JSON.

    Raises ValueError, TypeError, AttributeError or ArithmeticError for a malformed value.
    """
    if kind == "S":
        if not isinstance(raw, str):
            raise TypeError("S value is not a string")
        return raw
    if kind == "NULL":
        return None
    if kind == "B":
        return _base64(raw)
    if kind in ("M",) and not isinstance(raw, Mapping):
        raise TypeError("M value is not a map")
    if kind in ("L", "SS", "NS", "BS") and not isinstance(raw, list):
        raise TypeError(f"{kind} value is not a list")
    if kind == "BOOL" and not isinstance(raw, bool):
        raise TypeError("BOOL value is not a boolean")
    return json.dumps(_plain(kind, raw), sort_keys=True, separators=(",", ":"))


def _assemble(
    n: int,
    built: Mapping[str, tuple[Any, Any]],
    row_problems: Mapping[int, list[str]],
    problems: list[str],
) -> pd.DataFrame:
    """Value columns (expected fields first), timestamp_utc, type columns, _problem."""
    names = list(EXPECTED_FIELDS) + [name for name in built if name not in EXPECTED_FIELDS]
    data: dict[str, Any] = {}
    missing = pd.array(np.full(n, None, dtype=object), dtype="string")
    for name in names:
        data[name] = built[name][0] if name in built else missing
    data[TIMESTAMP_UTC] = _timestamps(data["timestamp"])
    for name in names:
        data[f"{name}{TYPE_SUFFIX}"] = built[name][1] if name in built else missing
    notes = np.full(n, None, dtype=object)
    for at, texts in row_problems.items():
        notes[at] = "; ".join(texts) + "."
    data[PROBLEM_COLUMN] = pd.array(notes, dtype="string")
    frame = pd.DataFrame(data, index=pd.RangeIndex(n))
    frame.attrs["problems"] = list(problems)
    for message in problems:
        log.warning("%s", message)
    return frame


def _timestamps(values: Any) -> pd.Series:
    series = pd.Series(values, dtype="string")
    parsed = pd.to_datetime(series, utc=True, errors="coerce", format="ISO8601")
    return parsed.astype(UTC_DTYPE)


# -- the baseline: boto3's TypeDeserializer and a DataFrame of plain Python values ---------------------


def items_frame_slow(pages: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The same frame as :func:`items_frame`, built the obvious way (boto3 ``TypeDeserializer`` per value,
    ``pd.DataFrame`` of dicts, a Python conversion per cell). Kept as the benchmark baseline and as an
    independent check of the fast path; it expects well-formed pages.
    """
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    records = [
        {name: deserializer.deserialize(value) for name, value in item.items()}
        for page in pages
        for item in page.get("Items", [])
    ]
    # dtype=object: pandas would otherwise infer "str" and turn a NULL (None) into an absent value (NaN).
    plain = pd.DataFrame(records, dtype=object) if records else pd.DataFrame()
    built: dict[str, tuple[Any, Any]] = {}
    for name in plain.columns:
        cells = plain[name]
        kinds = cells.map(_plain_kind).astype("string")
        built[str(name)] = (_plain_column(str(name), cells, kinds), kinds.array)
    return _assemble(len(plain), built, {}, [])


def _plain_kind(value: Any) -> str | None:
    from boto3.dynamodb.types import Binary

    if isinstance(value, float) and math.isnan(value):
        return None  # the attribute is absent from this item
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, str):
        return "S"
    if isinstance(value, Decimal):
        return "N"
    if isinstance(value, Binary):
        return "B"
    if isinstance(value, dict):
        return "M"
    if isinstance(value, list):
        return "L"
    if isinstance(value, set):
        sample = next(iter(value), "")
        return "SS" if isinstance(sample, str) else "NS" if isinstance(sample, Decimal) else "BS"
    raise TypeError(type(value).__name__)


def _plain_json(value: Any) -> Any:
    from boto3.dynamodb.types import Binary

    if isinstance(value, Decimal):
        return _json_number(value)
    if isinstance(value, Binary):
        return base64.b64encode(value.value).decode("ascii")
    if isinstance(value, dict):
        return {str(k): _plain_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_json(v) for v in value]
    if isinstance(value, set):
        return sorted(_plain_json(v) for v in value)
    return value


def _plain_column(name: str, cells: pd.Series, kinds: pd.Series) -> Any:
    typed = set(kinds.dropna()) - {"NULL"}
    single = next(iter(typed)) if len(typed) == 1 else None
    present = kinds.notna() & (kinds != "NULL")
    if single == "S":
        return cells.where(present, None).astype("string").array
    if single == "N" and name not in EXPECTED_FIELDS:
        numbers = cells[present]
        if all(v == v.to_integral_value() and abs(v) < _INT64_LIMIT for v in numbers):
            ints = pd.Series([int(v) if ok else None for v, ok in zip(cells, present, strict=True)])
            return ints.astype("Int64").array
        floats = [float(v) if ok else None for v, ok in zip(cells, present, strict=True)]
        return pd.array(floats, dtype="Float64")
    if single == "BOOL" and name not in EXPECTED_FIELDS:
        return cells.where(present, None).astype("boolean").array

    def text(value: Any, kind: Any) -> str | None:
        if kind is pd.NA or kind == "NULL":
            return None
        if kind == "S":
            return str(value)
        plain = _plain_json(value)
        return plain if kind == "B" else json.dumps(plain, sort_keys=True, separators=(",", ":"))

    return pd.array([text(v, k) for v, k in zip(cells, kinds, strict=True)], dtype="string")


# --------------------------------------------------------------------------------------------------
# Scanning


def _scan_error(exc: Exception, target: Target, operation: str, resource: str) -> AwsError:
    code, detail = error_facts(exc)
    next_step = {
        "ResourceNotFoundException": (
            f"check the table name and the region (the target is {target.region}); the $connect Lambda "
            "writes to the table in its own region unless TABLE_REGION says otherwise"
        ),
        "AccessDeniedException": (
            f"grant the kit's identity dynamodb:{operation} on {resource} (reading is all the kit needs)"
        ),
        "ValidationException": f"check that {resource} exists and has the index the kit was told about",
    }.get(code, "retry, and check the credentials and the network if it persists")
    return AwsError(
        f"DynamoDB {operation} of {resource} in {target.region} failed with {code}"
        f"{': ' + detail if detail else ''}; {next_step}.",
        service="dynamodb",
        operation=operation,
        code=code,
        resource=resource,
    )


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
            raise _scan_error(exc, target, "Scan", resource) from exc
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
                    text = _text(str(kind), raw)
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
        except ClientError as exc:
            return connection_id, dict(exc.response)
        except BotoCoreError as exc:
            return connection_id, {"Error": {"Code": type(exc).__name__, "Message": str(exc)}}
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
