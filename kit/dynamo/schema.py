"""The connections table the seed expects, as data, and the comparison of a real table against it.

``EXPECTED`` is ``chatgenius-connections`` from the seed's ``dynamodb-schema.ts``: hash key ``connectionId``
(S), no sort key, the GSI ``workspaceIndex`` on ``workspaceId`` (S) projecting ALL, on-demand billing, and the
five string fields the ``$connect`` handler writes. ``diff_table`` and ``check_item`` are pure: they read a
``describe_table`` answer or an item and say, in sentences, what differs and what that does to the handler.
``create_table`` and ``describe`` are the thin boto3 edge; they take a client (from ``kit.target``).

What this module must not do: create boto3 clients, decide whether writes are allowed (callers check
``Target.require_writes`` before ``create_table`` on a real account), or compare table *names* in
``diff_table`` (which table the handler writes to is a question about the target, not the schema).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from kit.errors import AwsError, error_code

if TYPE_CHECKING:
    import pandas as pd

Severity = Literal["error", "warning"]
AttributeType = Literal["S", "N", "B"]

_DYNAMODB_TYPES = frozenset({"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"})


@dataclass(frozen=True)
class IndexSchema:
    """A global secondary index the handlers query."""

    name: str
    hash_key: str
    hash_key_type: AttributeType = "S"
    projection: str = "ALL"


@dataclass(frozen=True)
class TableSchema:
    """A table as the handlers expect it.

    ``required_fields`` are the attributes every item must carry, with their DynamoDB types.
    ``index_reads`` are the fields a broadcast reads from the index's query results; the seed's handler
    code is not available, so this conservatively assumes it may read any required field.
    """

    name: str
    hash_key: str
    hash_key_type: AttributeType = "S"
    range_key: str | None = None
    indexes: tuple[IndexSchema, ...] = ()
    required_fields: tuple[tuple[str, AttributeType], ...] = ()
    billing_mode: str = "PAY_PER_REQUEST"
    index_reads: tuple[str, ...] = ()

    def renamed(self, name: str) -> TableSchema:
        """The same schema under another table name (tests, or a table the env file names)."""
        return replace(self, name=name)


EXPECTED = TableSchema(
    name="chatgenius-connections",
    hash_key="connectionId",
    hash_key_type="S",
    range_key=None,
    indexes=(IndexSchema(name="workspaceIndex", hash_key="workspaceId", hash_key_type="S"),),
    required_fields=(
        ("connectionId", "S"),
        ("workspaceId", "S"),
        ("userId", "S"),
        ("timestamp", "S"),
        ("status", "S"),
    ),
    billing_mode="PAY_PER_REQUEST",
    index_reads=("connectionId", "workspaceId", "userId", "timestamp", "status"),
)


@dataclass(frozen=True)
class SchemaDifference:
    """One way a table differs from the schema. ``message`` is a full sentence naming the table or index."""

    kind: str
    severity: Severity
    subject: str
    expected: str
    actual: str
    message: str
    next_step: str

    def as_dict(self) -> dict[str, str]:
        """The difference as plain strings, for JSON output."""
        return {key: str(value) for key, value in asdict(self).items()}


# One row per difference; the columns of ``differences_frame``.
DIFFERENCE_COLUMNS: Mapping[str, str] = {
    "kind": "string",
    "severity": "string",
    "subject": "string",
    "expected": "string",
    "actual": "string",
    "message": "string",
    "next_step": "string",
}


# --------------------------------------------------------------------------------------------------
# Pure: reading a describe_table answer (here only: the diff and kit.dynamo.table's frame both use these)


def table_part(description: Mapping[str, Any]) -> Mapping[str, Any]:
    """The table's description from ``describe_table``'s whole answer or from its ``Table`` member."""
    inner = description.get("Table")
    return inner if isinstance(inner, Mapping) else description


def billing_mode(table: Mapping[str, Any]) -> str:
    """``PAY_PER_REQUEST`` or ``PROVISIONED``: how the described table is billed.

    ``BillingModeSummary`` says it when present. AWS leaves the summary out of a table that has been
    provisioned since it was created ("you may need to switch to on-demand mode at least once in order to
    return a BillingModeSummary", DescribeTable's reference), so its absence means PROVISIONED, except when
    the table reports zero read and write capacity: a provisioned table has at least one unit of each, and
    emulators describe on-demand tables that way.
    """
    summary = table.get("BillingModeSummary")
    if isinstance(summary, Mapping) and summary.get("BillingMode"):
        return str(summary["BillingMode"])
    throughput = table.get("ProvisionedThroughput")
    if isinstance(throughput, Mapping) and not any(
        throughput.get(units) for units in ("ReadCapacityUnits", "WriteCapacityUnits")
    ):
        return "PAY_PER_REQUEST"
    return "PROVISIONED"


def _key(key_schema: Iterable[Mapping[str, Any]], key_type: str) -> str | None:
    return next((k["AttributeName"] for k in key_schema if k.get("KeyType") == key_type), None)


# --------------------------------------------------------------------------------------------------
# Pure: compare a describe_table answer with the schema


def diff_table(
    description: Mapping[str, Any] | None, expected: TableSchema = EXPECTED
) -> list[SchemaDifference]:
    """Every way the described table differs from ``expected``; an empty list when it matches.

    ``description`` is ``describe_table``'s answer (or its ``Table`` member, as ``describe`` returns), or
    None when the table does not exist. The table's name is taken from the description and not compared.
    """
    if description is None:
        return [
            SchemaDifference(
                kind="table-missing",
                severity="error",
                subject=f"table {expected.name}",
                expected="table exists",
                actual="not found",
                message=(
                    f"Table {expected.name} does not exist in the target's account and region, so every "
                    "$connect put fails with ResourceNotFoundException."
                ),
                next_step=(
                    "Check the region first (the Lambda writes to the region it runs in), then create "
                    "the table or fix the table name the handler reads."
                ),
            )
        ]
    table = table_part(description)
    name = str(table.get("TableName", expected.name))
    types: dict[str, str] = {
        a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])
    }
    diffs: list[SchemaDifference] = []
    diffs += _status_differences(table, name)
    diffs += _key_differences(table, name, types, expected)
    for index in expected.indexes:
        diffs += _index_differences(table, name, types, index, expected)
    billing = billing_mode(table)
    if billing != expected.billing_mode:
        throughput = table.get("ProvisionedThroughput") or {}
        capacity = (
            f"{throughput.get('ReadCapacityUnits', '?')} RCU / "
            f"{throughput.get('WriteCapacityUnits', '?')} WCU"
        )
        diffs.append(
            SchemaDifference(
                kind="billing-mode",
                severity="warning",
                subject=f"table {name}",
                expected=expected.billing_mode,
                actual=f"{billing} ({capacity})",
                message=(
                    f"Table {name} uses {billing} billing with {capacity}, not {expected.billing_mode}; "
                    "a burst of connections can be throttled (ProvisionedThroughputExceededException)."
                ),
                next_step="Look for throttled writes in CloudWatch, or switch the table to on-demand.",
            )
        )
    return diffs


# What a table state means for the $connect handler's writes ("" for any state not listed).
_TABLE_STATES = {
    "UPDATING": "it still takes writes, but a change to it is in progress.",
    "CREATING": "puts to it fail with ResourceNotFoundException until it is ACTIVE.",
    "DELETING": "it is being deleted, so puts to it fail.",
    "": "puts to it fail until it is ACTIVE again.",
}


def _status_differences(table: Mapping[str, Any], name: str) -> list[SchemaDifference]:
    status = str(table.get("TableStatus", "ACTIVE"))
    if status == "ACTIVE":
        return []
    # UPDATING tables still take writes; the other states reject them.
    severity: Severity = "warning" if status == "UPDATING" else "error"
    return [
        SchemaDifference(
            kind="table-not-active",
            severity=severity,
            subject=f"table {name}",
            expected="ACTIVE",
            actual=status,
            message=f"Table {name} is {status}, not ACTIVE; " + _TABLE_STATES.get(status, _TABLE_STATES[""]),
            next_step=(
                f"Find out what deletes {name} (CloudTrail DeleteTable events) and recreate it."
                if status == "DELETING"
                else f"Wait for {name} to become ACTIVE, then check again."
            ),
        )
    ]


def _key_differences(
    table: Mapping[str, Any], name: str, types: Mapping[str, str], expected: TableSchema
) -> list[SchemaDifference]:
    diffs: list[SchemaDifference] = []
    key_schema = table.get("KeySchema", [])
    hash_key = _key(key_schema, "HASH")
    range_key = _key(key_schema, "RANGE")
    if hash_key != expected.hash_key:
        diffs.append(
            SchemaDifference(
                kind="wrong-hash-key",
                severity="error",
                subject=f"table {name}",
                expected=expected.hash_key,
                actual=str(hash_key),
                message=(
                    f"Table {name} is keyed on {hash_key}, not {expected.hash_key}; the $connect item "
                    f"carries {expected.hash_key}, so DynamoDB rejects every put with ValidationException "
                    "(missing key)."
                ),
                next_step=(
                    f"Recreate the table with hash key {expected.hash_key} "
                    f"({expected.hash_key_type}), or point the handler at the table that has it."
                ),
            )
        )
    elif types.get(hash_key) != expected.hash_key_type:
        diffs.append(
            SchemaDifference(
                kind="wrong-key-type",
                severity="error",
                subject=f"table {name}",
                expected=f"{expected.hash_key} {expected.hash_key_type}",
                actual=f"{hash_key} {types.get(hash_key)}",
                message=(
                    f"Table {name}'s key {hash_key} has type {types.get(hash_key)}, but the handler "
                    f"writes type {expected.hash_key_type}; DynamoDB rejects every put with "
                    "ValidationException (type mismatch)."
                ),
                next_step=f"Recreate the table with {expected.hash_key} of type {expected.hash_key_type}.",
            )
        )
    if range_key is not None and range_key != expected.range_key:
        diffs.append(
            SchemaDifference(
                kind="unexpected-range-key",
                severity="error",
                subject=f"table {name}",
                expected=str(expected.range_key or "none"),
                actual=range_key,
                message=(
                    f"Table {name} has a sort key {range_key}; the handler reads and deletes by "
                    f"{expected.hash_key} alone, so $disconnect deletes fail with ValidationException "
                    f"and puts fail for items without {range_key}."
                ),
                next_step=f"Recreate the table with {expected.hash_key} as its only key.",
            )
        )
    return diffs


def _index_differences(
    table: Mapping[str, Any],
    name: str,
    types: Mapping[str, str],
    index: IndexSchema,
    expected: TableSchema,
) -> list[SchemaDifference]:
    gsis: Sequence[Mapping[str, Any]] = table.get("GlobalSecondaryIndexes", [])
    found = next((g for g in gsis if g.get("IndexName") == index.name), None)
    diffs: list[SchemaDifference] = []
    subject = f"index {index.name} on {name}"
    if found is None:
        same_key = next((g for g in gsis if _key(g.get("KeySchema", []), "HASH") == index.hash_key), None)
        if same_key is None:
            others = ", ".join(str(g.get("IndexName")) for g in gsis) or "none"
            return [
                SchemaDifference(
                    kind="index-missing",
                    severity="error",
                    subject=subject,
                    expected=f"{index.name} on {index.hash_key}",
                    actual=f"indexes: {others}",
                    message=(
                        f"Table {name} has no index {index.name} (its indexes: {others}); broadcasts "
                        f"query {index.name} and fail with ValidationException, so messages reach no one."
                    ),
                    next_step=(
                        f"Add the GSI {index.name} on {index.hash_key} ({index.hash_key_type}) "
                        f"projecting {index.projection}."
                    ),
                )
            ]
        actual_name = str(same_key.get("IndexName"))
        diffs.append(
            SchemaDifference(
                kind="index-misnamed",
                severity="error",
                subject=subject,
                expected=index.name,
                actual=actual_name,
                message=(
                    f"Table {name} indexes {index.hash_key} as {actual_name}, not {index.name}; a "
                    f"query with IndexName {index.name} fails with ValidationException (the table does "
                    "not have the specified index)."
                ),
                next_step=f"Create the index as {index.name}, or make the handler query {actual_name}.",
            )
        )
        found = same_key
        subject = f"index {actual_name} on {name}"
    actual_name = str(found.get("IndexName"))
    index_hash = _key(found.get("KeySchema", []), "HASH")
    index_range = _key(found.get("KeySchema", []), "RANGE")
    if index_hash != index.hash_key:
        diffs.append(
            SchemaDifference(
                kind="index-wrong-key",
                severity="error",
                subject=subject,
                expected=index.hash_key,
                actual=str(index_hash),
                message=(
                    f"Index {actual_name} on {name} is keyed on {index_hash}, not {index.hash_key}; a "
                    f"broadcast querying it by {index.hash_key} fails with ValidationException."
                ),
                next_step=f"Recreate {actual_name} with hash key {index.hash_key} ({index.hash_key_type}).",
            )
        )
    elif types.get(index.hash_key) != index.hash_key_type:
        diffs.append(
            SchemaDifference(
                kind="index-key-type",
                severity="error",
                subject=subject,
                expected=f"{index.hash_key} {index.hash_key_type}",
                actual=f"{index.hash_key} {types.get(index.hash_key)}",
                message=(
                    f"Index {actual_name} on {name} declares {index.hash_key} as type "
                    f"{types.get(index.hash_key)}, but the handler writes type {index.hash_key_type}; "
                    "DynamoDB rejects every such put with ValidationException (Type mismatch for Index "
                    "Key), so no connection is stored."
                ),
                next_step=(
                    f"Recreate {actual_name} with {index.hash_key} of type {index.hash_key_type} "
                    "(an attribute's type cannot be changed in place)."
                ),
            )
        )
    if index_range is not None:
        diffs.append(
            SchemaDifference(
                kind="index-range-key",
                severity="warning",
                subject=subject,
                expected="no sort key",
                actual=index_range,
                message=(
                    f"Index {actual_name} on {name} has a sort key {index_range}; items without "
                    f"{index_range} are left out of it, so broadcasts never see them."
                ),
                next_step=f"Check that every connection item carries {index_range}, or drop the sort key.",
            )
        )
    diffs += _projection_differences(found, table, index, expected)
    diffs += _index_status_differences(found, name)
    return diffs


def _projection_differences(
    found: Mapping[str, Any],
    table: Mapping[str, Any],
    index: IndexSchema,
    expected: TableSchema,
) -> list[SchemaDifference]:
    name = str(table.get("TableName", expected.name))
    subject = f"index {found.get('IndexName')} on {name}"
    projection = found.get("Projection") or {}
    projection_type = str(projection.get("ProjectionType", "ALL"))
    if projection_type == index.projection:
        return []
    # Table keys and index keys are always projected; INCLUDE adds its NonKeyAttributes.
    projected = {k["AttributeName"] for k in table.get("KeySchema", [])}
    projected |= {k["AttributeName"] for k in found.get("KeySchema", [])}
    projected |= set(projection.get("NonKeyAttributes", []))
    omitted = [f for f in expected.index_reads if f not in projected]
    actual_name = str(found.get("IndexName"))
    consequence = (
        f"the table keys are still returned, but {', '.join(omitted)} are not, so a broadcast that "
        "reads them from the query gets nothing"
        if omitted
        else "every field the broadcast reads is still projected"
    )
    return [
        SchemaDifference(
            kind="index-projection",
            severity="warning",
            subject=subject,
            expected=index.projection,
            actual=projection_type + (f" (omits {', '.join(omitted)})" if omitted else ""),
            message=(
                f"Index {actual_name} on {name} projects {projection_type}, not {index.projection}; "
                f"{consequence}."
            ),
            next_step=(
                f"Recreate {actual_name} projecting {index.projection}, or have the broadcast fetch "
                "items by connectionId."
                if omitted
                else "No action needed unless the broadcast starts reading other fields."
            ),
        )
    ]


def _index_status_differences(found: Mapping[str, Any], name: str) -> list[SchemaDifference]:
    subject = f"index {found.get('IndexName')} on {name}"
    status = str(found.get("IndexStatus", "ACTIVE"))
    backfilling = bool(found.get("Backfilling", False))
    if status == "ACTIVE" and not backfilling:
        return []
    actual_name = str(found.get("IndexName"))
    actual = f"{status}, backfilling" if backfilling else status
    state = f"is still backfilling ({status})" if backfilling else f"is {status}, not ACTIVE"
    # Queries are rejected while an index is created or backfilled; UPDATING (throughput) still serves.
    severity: Severity = "warning" if status == "UPDATING" and not backfilling else "error"
    return [
        SchemaDifference(
            kind="index-not-active",
            severity=severity,
            subject=subject,
            expected="ACTIVE",
            actual=actual,
            message=(
                f"Index {actual_name} on {name} {state}; "
                + (
                    "queries on it still work."
                    if severity == "warning"
                    else "broadcast queries on it fail with ValidationException until it is ready."
                    if status != "DELETING"
                    else "it is going away, and broadcasts querying it will fail."
                )
            ),
            next_step=(
                f"Find out what deletes {actual_name} (CloudTrail UpdateTable events)."
                if status == "DELETING"
                else f"Wait until {actual_name} is ACTIVE and done backfilling, then check again."
            ),
        )
    ]


def check_item(item: Mapping[str, Any], expected: TableSchema = EXPECTED) -> list[str]:
    """Sentences naming each required field ``item`` lacks, leaves empty or gives the wrong type.

    ``item`` may be plain Python (``{"connectionId": "abc"}``) or DynamoDB JSON (``{"connectionId":
    {"S": "abc"}}``). An empty list means the item is complete.
    """
    index_keys = {ix.hash_key for ix in expected.indexes}
    findings: list[str] = []
    for field_name, field_type in expected.required_fields:
        role = _field_role(field_name, expected, index_keys)
        value = item.get(field_name)
        actual_type, actual_value = _typed(value)
        if value is None or actual_type == "NULL":
            findings.append(f"{field_name} is missing{role['missing']}.")
        elif actual_type != field_type:
            findings.append(f"{field_name} has type {actual_type}, expected {field_type}{role['wrong']}.")
        elif actual_value in ("", b""):
            findings.append(f"{field_name} is empty{role['empty']}.")
    return findings


def _field_role(field_name: str, expected: TableSchema, index_keys: set[str]) -> dict[str, str]:
    """What a bad value in this field does, by the field's role in the table."""
    if field_name in (expected.hash_key, expected.range_key):
        rejected = "; DynamoDB rejects the put"
        return {"missing": rejected, "wrong": rejected, "empty": rejected}
    if field_name in index_keys:
        return {
            "missing": "; the item is stored but left out of the index, so broadcasts never find it",
            "wrong": "; DynamoDB rejects the put (Type mismatch for Index Key)",
            "empty": "; DynamoDB rejects an empty string in an index key",
        }
    return {"missing": "", "wrong": "", "empty": ""}


def _typed(value: Any) -> tuple[str, Any]:
    """(DynamoDB type, payload) of a plain or DynamoDB-JSON value."""
    if isinstance(value, Mapping) and len(value) == 1:
        ((type_name, payload),) = value.items()
        if type_name in _DYNAMODB_TYPES:
            return str(type_name), payload
    if value is None:
        return "NULL", None
    if isinstance(value, bool):
        return "BOOL", value
    if isinstance(value, str):
        return "S", value
    if isinstance(value, bytes | bytearray):
        return "B", bytes(value)
    if isinstance(value, int | float | Decimal):
        return "N", value
    if isinstance(value, Mapping):
        return "M", value
    if isinstance(value, list | tuple):
        return "L", value
    if isinstance(value, set | frozenset):
        return "SS", value
    return type(value).__name__, value


def differences_frame(diffs: Iterable[SchemaDifference]) -> pd.DataFrame:
    """One row per schema difference, columns ``DIFFERENCE_COLUMNS``; empty with those columns when none."""
    import pandas as pd

    rows = [asdict(d) for d in diffs]
    frame = pd.DataFrame(rows, columns=list(DIFFERENCE_COLUMNS))
    return frame.astype(dict(DIFFERENCE_COLUMNS))


# --------------------------------------------------------------------------------------------------
# The boto3 edge


def _region(client: Any) -> str:
    return str(getattr(getattr(client, "meta", None), "region_name", None) or "an unknown region")


def _table_error(exc: BaseException, operation: str, table_name: str, client: Any) -> AwsError:
    """``exc`` of a call on the table, with this module's next steps (``AwsError.from_botocore``)."""
    region = _region(client)
    return AwsError.from_botocore(
        exc,
        "dynamodb",
        operation,
        table_name,
        resource_type="table",
        region=region,
        hints={
            "AccessDeniedException": (
                f"grant dynamodb:{operation} on arn:aws:dynamodb:{region}:*:table/{table_name} to the "
                "identity the kit uses"
            ),
        },
        otherwise=f"check the table name, the region and the caller's dynamodb:{operation} permission",
    )


def describe(client: Any, name: str) -> dict[str, Any] | None:
    """The ``Table`` member of ``describe_table`` for ``name``, or None when the table does not exist."""
    try:
        answer = client.describe_table(TableName=name)
    except (ClientError, BotoCoreError) as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise _table_error(exc, "DescribeTable", name, client) from exc
    return dict(answer["Table"])


def create_table_request(schema: TableSchema = EXPECTED, *, name: str | None = None) -> dict[str, Any]:
    """The ``create_table`` arguments for ``schema`` (pure)."""
    attributes: dict[str, str] = {schema.hash_key: schema.hash_key_type}
    key_schema = [{"AttributeName": schema.hash_key, "KeyType": "HASH"}]
    if schema.range_key is not None:
        attributes[schema.range_key] = dict(schema.required_fields).get(schema.range_key, "S")
        key_schema.append({"AttributeName": schema.range_key, "KeyType": "RANGE"})
    indexes = []
    for index in schema.indexes:
        attributes[index.hash_key] = index.hash_key_type
        indexes.append(
            {
                "IndexName": index.name,
                "KeySchema": [{"AttributeName": index.hash_key, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": index.projection},
            }
        )
    request: dict[str, Any] = {
        "TableName": name or schema.name,
        "KeySchema": key_schema,
        "AttributeDefinitions": [
            {"AttributeName": attr, "AttributeType": kind} for attr, kind in attributes.items()
        ],
        "BillingMode": schema.billing_mode,
    }
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    return request


def create_table(
    client: Any,
    schema: TableSchema = EXPECTED,
    *,
    name: str | None = None,
    wait: bool = True,
    timeout: float = 180.0,
) -> dict[str, Any]:
    """Create the table (named ``name`` or ``schema.name``) and return its description.

    Idempotent: a table that already exists and matches ``schema`` is fine; one that exists with a different
    shape is an ``AwsError`` listing the differences. With ``wait``, returns once the table is ACTIVE (at
    most ``timeout`` seconds). The caller decides whether writes are allowed.
    """
    table_name = name or schema.name
    try:
        answer = client.create_table(**create_table_request(schema, name=table_name))
        created = answer.get("TableDescription") if isinstance(answer, dict) else None
        if isinstance(created, dict) and is_ready(created):  # DynamoDB Local's, moto's: nothing to wait for
            return dict(created)
    except (ClientError, BotoCoreError) as exc:
        if error_code(exc) != "ResourceInUseException":
            raise _table_error(exc, "CreateTable", table_name, client) from exc
        existing = describe(client, table_name)
        errors = [d for d in diff_table(existing, schema) if d.severity == "error"]
        errors = [d for d in errors if d.kind not in {"table-not-active", "index-not-active"}]
        if errors:
            raise AwsError(
                f"Table {table_name} already exists in {_region(client)} with another shape: "
                f"{' '.join(d.message for d in errors)} Delete it or choose another name.",
                service="dynamodb",
                operation="CreateTable",
                code="ResourceInUseException",
                resource=table_name,
            ) from exc
    if wait:
        _wait_active(client, table_name, timeout)
    described = describe(client, table_name)
    if described is None:
        raise AwsError(
            f"Table {table_name} was created in {_region(client)} but describe_table cannot find it; "
            "check that the client's region and endpoint did not change.",
            service="dynamodb",
            operation="DescribeTable",
            code="ResourceNotFoundException",
            resource=table_name,
        )
    return described


def is_ready(table: Mapping[str, Any]) -> bool:
    """Whether a table description (CreateTable's or DescribeTable's) says the table and every index are ready
    to use: ACTIVE, and no index still backfilling (pure). AWS answers CreateTable with CREATING; the local
    engines with ACTIVE at once."""
    indexes = table.get("GlobalSecondaryIndexes") or []
    return table.get("TableStatus") == "ACTIVE" and all(
        index.get("IndexStatus", "ACTIVE") == "ACTIVE" and not index.get("Backfilling") for index in indexes
    )


def _wait_active(client: Any, table_name: str, timeout: float) -> None:
    """Wait until the table and its indexes are ACTIVE; the waiter checks the table, we check the rest."""
    delay = 1
    try:
        client.get_waiter("table_exists").wait(
            TableName=table_name,
            WaiterConfig={"Delay": delay, "MaxAttempts": max(1, int(timeout / delay))},
        )
    except WaiterError as exc:
        raise AwsError(
            f"Table {table_name} in {_region(client)} did not become ACTIVE within {timeout:.0f} s; "
            "check its status in the console and retry.",
            service="dynamodb",
            operation="DescribeTable",
            code="WaiterTimeout",
            resource=table_name,
        ) from exc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        table = describe(client, table_name)
        if table is None or is_ready(table):  # gone: the caller's describe says so
            return
        time.sleep(delay)
    raise AwsError(
        f"The indexes of table {table_name} in {_region(client)} did not become ACTIVE within "
        f"{timeout:.0f} s; check them in the console and retry.",
        service="dynamodb",
        operation="DescribeTable",
        code="WaiterTimeout",
        resource=table_name,
    )
