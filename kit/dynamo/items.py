"""What the connections table holds: its items, scanned and shaped into one typed frame, and which of them the
workspace index holds.

Fetch and shape are separate. ``scan_pages`` and ``index_pages`` scan the table and its index through a
:class:`~kit.target.Target` (parallel segments, every page); ``items_frame`` and ``index_coverage`` are pure
and take the pages as AWS gives them, so tests feed recorded pages. ``scan_items`` joins the two.

``items_frame`` reads DynamoDB JSON (``{"S": "…"}``, ``{"N": "42"}``) itself instead of going through boto3's
``TypeDeserializer`` (``items_frame_slow`` is that baseline, 5–7x slower): pages whose items share their
attributes and types are read column by column; otherwise one lean pass collects each attribute's rows,
types and raw values. Each column is then converted whole (``int``/``float`` mapped over the column, pandas
string, boolean and nullable-integer arrays). Numbers never become ``Decimal``.

Bad input (a page without ``Items``, an item that is not a map, a value that is not a DynamoDB
AttributeValue) does not stop the shaping: the row says what was wrong in ``_problem`` and page-level faults
are listed in ``frame.attrs["problems"]``.

What this module must not do: write to AWS (it only scans), or create a boto3 client of its own: every client
comes from ``Target.client``.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import operator
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError
from tqdm import tqdm

from kit import frames
from kit.dynamo import schema
from kit.errors import AwsError
from kit.output import show_progress

if TYPE_CHECKING:
    from kit.target import Target

log = logging.getLogger("kit.dynamo.items")

# The fields the $connect handler writes; their value columns are always strings, whatever type an item used.
EXPECTED_FIELDS: Final[tuple[str, ...]] = tuple(name for name, _ in schema.EXPECTED.required_fields)
TYPE_SUFFIX: Final = "__type"  # "workspaceId__type": the DynamoDB type each item used ("S", "N", … or NA)
PROBLEM_COLUMN: Final = "_problem"
TIMESTAMP_UTC: Final = "timestamp_utc"
UTC_DTYPE: Final = frames.UTC_DTYPE

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

_KNOWN_TYPES: Final = frozenset({"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"})
_INT64_LIMIT: Final = 2**63


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
            texts.append(attribute_text(kind, raw))
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
            texts[at] = attribute_text(column.kinds[at], texts[at])
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


def attribute_text(kind: str, raw: Any) -> str | None:
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
        disable=not show_progress(progress),
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
        return frames.empty(COVERAGE_COLUMNS)
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
