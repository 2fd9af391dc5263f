"""The connections table as evidence: its description, one row per table and index, and how it differs from
the schema the seed expects.

``describe_frame`` is pure: it takes ``describe_table``'s answer as AWS gives it and reads it with
:mod:`kit.dynamo.schema`'s reader (``table_part``, ``billing_mode``), the same one ``diff_table`` uses, so the
frame and the diff never disagree about a table. ``fetch_description`` and ``schema_diff_frame`` call AWS
through a :class:`~kit.target.Target`. What the table holds is :mod:`kit.dynamo.items`; whether API Gateway
still knows each stored connection is :mod:`kit.dynamo.stale`.

Every frame has a column contract (``DESCRIBE_COLUMNS``): the columns and dtypes it always has, empty or not.
Malformed parts of an answer do not stop the shaping: the row's ``problem`` says what could not be read.

What this module must not do: write to AWS (it only describes), or create a boto3 client of its own: every
client comes from ``Target.client``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from kit import frames
from kit.dynamo import schema

if TYPE_CHECKING:
    from kit.target import Target

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


# --------------------------------------------------------------------------------------------------
# describe_table → one row per table and index (read with kit.dynamo.schema's reader)


def describe_frame(description: Mapping[str, Any] | None) -> pd.DataFrame:
    """The table and each secondary index, one row each (:data:`DESCRIBE_COLUMNS`).

    ``description`` is ``describe_table``'s answer or its ``Table`` member; None (no such table) gives an
    empty frame. Malformed parts are kept: the row's ``problem`` says what could not be read.
    """
    if not description:
        return frames.empty(DESCRIBE_COLUMNS)
    table = schema.table_part(description)
    types: dict[str, str] = {}
    problems: list[str] = []
    for definition in _as_list(table.get("AttributeDefinitions")):
        if isinstance(definition, Mapping) and "AttributeName" in definition:
            types[str(definition["AttributeName"])] = str(definition.get("AttributeType", ""))
        else:
            problems.append(f"an AttributeDefinitions entry is not readable ({type(definition).__name__})")
    billing = schema.billing_mode(table)
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
    return frames.from_rows(rows, DESCRIBE_COLUMNS)


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
