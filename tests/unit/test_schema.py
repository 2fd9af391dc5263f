"""kit.dynamo.schema offline: diff_table over hand-built describe_table answers, check_item, the frame, the request."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from kit.dynamo.schema import (
    DIFFERENCE_COLUMNS,
    EXPECTED,
    IndexSchema,
    SchemaDifference,
    check_item,
    create_table_request,
    diff_table,
    differences_frame,
)
from kit.errors import AwsError

ARN = "arn:aws:dynamodb:us-east-2:123456789012:table/chatgenius-connections"

# describe_table's answer for the table the seed expects, in AWS's response shape.
GOOD_ANSWER: dict[str, Any] = {
    "Table": {
        "AttributeDefinitions": [
            {"AttributeName": "connectionId", "AttributeType": "S"},
            {"AttributeName": "workspaceId", "AttributeType": "S"},
        ],
        "TableName": "chatgenius-connections",
        "KeySchema": [{"AttributeName": "connectionId", "KeyType": "HASH"}],
        "TableStatus": "ACTIVE",
        "CreationDateTime": datetime(2024, 12, 1, 17, 3, 11, tzinfo=UTC),
        "ProvisionedThroughput": {
            "NumberOfDecreasesToday": 0,
            "ReadCapacityUnits": 0,
            "WriteCapacityUnits": 0,
        },
        "TableSizeBytes": 0,
        "ItemCount": 0,
        "TableArn": ARN,
        "TableId": "5d1f1e9a-0c3e-4a57-9d0e-2f6c2b0c9a11",
        "BillingModeSummary": {
            "BillingMode": "PAY_PER_REQUEST",
            "LastUpdateToPayPerRequestDateTime": datetime(2024, 12, 1, 17, 3, 11, tzinfo=UTC),
        },
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "workspaceIndex",
                "KeySchema": [{"AttributeName": "workspaceId", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
                "IndexStatus": "ACTIVE",
                "ProvisionedThroughput": {
                    "NumberOfDecreasesToday": 0,
                    "ReadCapacityUnits": 0,
                    "WriteCapacityUnits": 0,
                },
                "IndexSizeBytes": 0,
                "ItemCount": 0,
                "IndexArn": f"{ARN}/index/workspaceIndex",
            }
        ],
        "DeletionProtectionEnabled": False,
    },
    "ResponseMetadata": {"RequestId": "R3Q", "HTTPStatusCode": 200, "RetryAttempts": 0},
}


def answer(change: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """A deep copy of GOOD_ANSWER with ``change`` applied to its ``Table`` member."""
    described = copy.deepcopy(GOOD_ANSWER)
    if change is not None:
        change(described["Table"])
    return described


def set_type(table: dict[str, Any], name: str, kind: str) -> None:
    for attribute in table["AttributeDefinitions"]:
        if attribute["AttributeName"] == name:
            attribute["AttributeType"] = kind


def gsi(table: dict[str, Any]) -> dict[str, Any]:
    index: dict[str, Any] = table["GlobalSecondaryIndexes"][0]
    return index


def hash_key_id(t: dict[str, Any]) -> None:
    t["KeySchema"] = [{"AttributeName": "id", "KeyType": "HASH"}]
    t["AttributeDefinitions"][0]["AttributeName"] = "id"


def range_key_timestamp(t: dict[str, Any]) -> None:
    t["KeySchema"].append({"AttributeName": "timestamp", "KeyType": "RANGE"})
    t["AttributeDefinitions"].append({"AttributeName": "timestamp", "AttributeType": "S"})


def index_on_user(t: dict[str, Any]) -> None:
    gsi(t)["KeySchema"] = [{"AttributeName": "userId", "KeyType": "HASH"}]
    t["AttributeDefinitions"].append({"AttributeName": "userId", "AttributeType": "S"})


def index_with_range(t: dict[str, Any]) -> None:
    gsi(t)["KeySchema"].append({"AttributeName": "timestamp", "KeyType": "RANGE"})
    t["AttributeDefinitions"].append({"AttributeName": "timestamp", "AttributeType": "S"})


def provisioned(t: dict[str, Any]) -> None:
    del t["BillingModeSummary"]
    t["ProvisionedThroughput"].update(ReadCapacityUnits=5, WriteCapacityUnits=1)


CASES: list[tuple[str, Callable[[dict[str, Any]], None] | None, list[tuple[str, str]]]] = [
    ("matches", None, []),
    ("table creating", lambda t: t.update(TableStatus="CREATING"), [("table-not-active", "error")]),
    ("table updating", lambda t: t.update(TableStatus="UPDATING"), [("table-not-active", "warning")]),
    ("table deleting", lambda t: t.update(TableStatus="DELETING"), [("table-not-active", "error")]),
    ("hash key named id", hash_key_id, [("wrong-hash-key", "error")]),
    ("hash key is a number", lambda t: set_type(t, "connectionId", "N"), [("wrong-key-type", "error")]),
    ("sort key timestamp", range_key_timestamp, [("unexpected-range-key", "error")]),
    (
        "no index at all",
        lambda t: t.pop("GlobalSecondaryIndexes"),
        [("index-missing", "error")],
    ),
    (
        "index misnamed",
        lambda t: gsi(t).update(IndexName="workspaceId-index"),
        [("index-misnamed", "error")],
    ),
    (
        "index misnamed and its key a number",
        lambda t: (gsi(t).update(IndexName="byWorkspace"), set_type(t, "workspaceId", "N")),
        [("index-misnamed", "error"), ("index-key-type", "error")],
    ),
    (
        "only an index on userId",
        lambda t: (index_on_user(t), gsi(t).update(IndexName="userIndex")),
        [("index-missing", "error")],
    ),
    ("index named right but keyed on userId", index_on_user, [("index-wrong-key", "error")]),
    ("index key is a number", lambda t: set_type(t, "workspaceId", "N"), [("index-key-type", "error")]),
    ("index has a sort key", index_with_range, [("index-range-key", "warning")]),
    (
        "index keys only",
        lambda t: gsi(t).update(Projection={"ProjectionType": "KEYS_ONLY"}),
        [("index-projection", "warning")],
    ),
    (
        "index include",
        lambda t: gsi(t).update(
            Projection={"ProjectionType": "INCLUDE", "NonKeyAttributes": ["userId", "timestamp", "status"]}
        ),
        [("index-projection", "warning")],
    ),
    ("index creating", lambda t: gsi(t).update(IndexStatus="CREATING"), [("index-not-active", "error")]),
    ("index backfilling", lambda t: gsi(t).update(Backfilling=True), [("index-not-active", "error")]),
    ("index updating", lambda t: gsi(t).update(IndexStatus="UPDATING"), [("index-not-active", "warning")]),
    ("index deleting", lambda t: gsi(t).update(IndexStatus="DELETING"), [("index-not-active", "error")]),
    ("provisioned", provisioned, [("billing-mode", "warning")]),
    (
        "on-demand without a summary",
        lambda t: t.pop("BillingModeSummary"),
        [],
    ),
]


@pytest.mark.parametrize(("change", "expected"), [pytest.param(c, e, id=name) for name, c, e in CASES])
def test_diff_table(change: Callable[[dict[str, Any]], None] | None, expected: list[tuple[str, str]]) -> None:
    diffs = diff_table(answer(change))
    assert [(d.kind, d.severity) for d in diffs] == expected


def test_diff_table_accepts_the_table_member_too() -> None:
    assert diff_table(answer()["Table"]) == []
    assert [d.kind for d in diff_table(answer(hash_key_id)["Table"])] == ["wrong-hash-key"]


def test_diff_table_ignores_the_table_name() -> None:
    assert diff_table(answer(lambda t: t.update(TableName="chatgenius-connections-1a2b3c4d"))) == []


def test_missing_table() -> None:
    (difference,) = diff_table(None)
    assert difference.kind == "table-missing"
    assert difference.severity == "error"
    assert difference.message == (
        "Table chatgenius-connections does not exist in the target's account and region, so every "
        "$connect put fails with ResourceNotFoundException."
    )
    (named,) = diff_table(None, EXPECTED.renamed("connections-prod"))
    assert "Table connections-prod does not exist" in named.message


@pytest.mark.parametrize(
    ("change", "kind", "phrases"),
    [
        (
            lambda t: gsi(t).update(IndexName="workspaceId-index"),
            "index-misnamed",
            ["chatgenius-connections indexes workspaceId as workspaceId-index, not workspaceIndex"],
        ),
        (
            lambda t: set_type(t, "workspaceId", "N"),
            "index-key-type",
            [
                "Index workspaceIndex on chatgenius-connections declares workspaceId as type N",
                "Type mismatch",
            ],
        ),
        (
            lambda t: gsi(t).update(Projection={"ProjectionType": "KEYS_ONLY"}),
            "index-projection",
            ["projects KEYS_ONLY, not ALL", "userId, timestamp, status are not"],
        ),
        (
            lambda t: gsi(t).update(
                Projection={
                    "ProjectionType": "INCLUDE",
                    "NonKeyAttributes": ["userId", "timestamp", "status"],
                }
            ),
            "index-projection",
            ["projects INCLUDE, not ALL", "every field the broadcast reads is still projected"],
        ),
        (
            lambda t: gsi(t).update(Projection={"ProjectionType": "INCLUDE", "NonKeyAttributes": ["userId"]}),
            "index-projection",
            ["timestamp, status are not"],
        ),
    ],
)
def test_difference_messages(change: Callable[[dict[str, Any]], None], kind: str, phrases: list[str]) -> None:
    (difference,) = diff_table(answer(change))
    assert difference.kind == kind
    for phrase in phrases:
        assert phrase in difference.message
    assert difference.message.endswith(".")
    assert difference.next_step


def test_every_difference_is_a_sentence_naming_table_or_index() -> None:
    for _, change, _ in CASES:
        for difference in diff_table(answer(change)):
            assert difference.message[0].isupper() and difference.message.endswith(".")
            assert "chatgenius-connections" in difference.message
            assert difference.subject
            assert difference.next_step.endswith(".")


# --------------------------------------------------------------------------------------------------
# check_item

SEED_ITEM = {
    "connectionId": "Lr4ZLdhOCYcCGMw=",
    "workspaceId": "ws-42",
    "userId": "ada@example.com",
    "timestamp": "2024-12-01T17:03:11.000Z",
    "status": "connected",
}


def as_dynamodb_json(item: dict[str, Any]) -> dict[str, Any]:
    return {k: {"S": v} for k, v in item.items()}


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (SEED_ITEM, []),
        (as_dynamodb_json(SEED_ITEM), []),
        ({**SEED_ITEM, "extra": 1}, []),
        (
            {k: v for k, v in SEED_ITEM.items() if k != "workspaceId"},
            [
                "workspaceId is missing; the item is stored but left out of the index, so broadcasts "
                "never find it."
            ],
        ),
        (
            {k: v for k, v in SEED_ITEM.items() if k != "connectionId"},
            ["connectionId is missing; DynamoDB rejects the put."],
        ),
        ({**SEED_ITEM, "userId": ""}, ["userId is empty."]),
        (
            {**SEED_ITEM, "workspaceId": ""},
            ["workspaceId is empty; DynamoDB rejects an empty string in an index key."],
        ),
        (
            {**as_dynamodb_json(SEED_ITEM), "workspaceId": {"N": "42"}},
            ["workspaceId has type N, expected S; DynamoDB rejects the put (Type mismatch for Index Key)."],
        ),
        ({**SEED_ITEM, "timestamp": 1733072591}, ["timestamp has type N, expected S."]),
        ({**SEED_ITEM, "timestamp": Decimal("1733072591")}, ["timestamp has type N, expected S."]),
        ({**SEED_ITEM, "status": None}, ["status is missing."]),
        ({**as_dynamodb_json(SEED_ITEM), "status": {"NULL": True}}, ["status is missing."]),
        ({**SEED_ITEM, "status": True}, ["status has type BOOL, expected S."]),
        ({**as_dynamodb_json(SEED_ITEM), "userId": {"S": ""}}, ["userId is empty."]),
        (
            {},
            [
                "connectionId is missing; DynamoDB rejects the put.",
                "workspaceId is missing; the item is stored but left out of the index, so broadcasts "
                "never find it.",
                "userId is missing.",
                "timestamp is missing.",
                "status is missing.",
            ],
        ),
    ],
)
def test_check_item(item: dict[str, Any], expected: list[str]) -> None:
    assert check_item(item) == expected


# --------------------------------------------------------------------------------------------------
# The frame and the create request


def test_differences_frame_has_declared_columns() -> None:
    empty = differences_frame([])
    assert list(empty.columns) == list(DIFFERENCE_COLUMNS)
    assert empty.empty
    assert {str(dtype) for dtype in empty.dtypes} == {"string"}
    diffs = diff_table(answer(lambda t: (set_type(t, "workspaceId", "N"), t.update(TableStatus="UPDATING"))))
    frame = differences_frame(diffs)
    assert list(frame.columns) == list(DIFFERENCE_COLUMNS)
    assert list(frame["kind"]) == ["table-not-active", "index-key-type"]
    assert list(frame["severity"]) == ["warning", "error"]


def test_schema_difference_is_frozen() -> None:
    difference = diff_table(None)[0]
    assert isinstance(difference, SchemaDifference)
    assert difference.as_dict()["kind"] == "table-missing"
    assert list(difference.as_dict()) == list(DIFFERENCE_COLUMNS)
    with pytest.raises(AttributeError):
        difference.kind = "other"  # type: ignore[misc]


def test_expected_schema_matches_the_seed() -> None:
    assert EXPECTED.name == "chatgenius-connections"
    assert (EXPECTED.hash_key, EXPECTED.hash_key_type, EXPECTED.range_key) == ("connectionId", "S", None)
    assert EXPECTED.indexes == (IndexSchema("workspaceIndex", "workspaceId", "S", "ALL"),)
    assert dict(EXPECTED.required_fields) == {
        "connectionId": "S",
        "workspaceId": "S",
        "userId": "S",
        "timestamp": "S",
        "status": "S",
    }
    assert EXPECTED.billing_mode == "PAY_PER_REQUEST"


def test_create_table_request() -> None:
    request = create_table_request(name="t-123")
    assert request == {
        "TableName": "t-123",
        "KeySchema": [{"AttributeName": "connectionId", "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": "connectionId", "AttributeType": "S"},
            {"AttributeName": "workspaceId", "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "workspaceIndex",
                "KeySchema": [{"AttributeName": "workspaceId", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }
    assert create_table_request()["TableName"] == "chatgenius-connections"


@pytest.mark.parametrize(
    ("code", "says", "never_says"),
    [
        ("EndpointConnectionError", "the endpoint did not answer", "permission"),
        ("ReadTimeoutError", "the endpoint did not answer", "permission"),
        ("ThrottlingException", "the caller's dynamodb:DescribeTable permission", "did not answer"),
        ("AccessDeniedException", "grant dynamodb:DescribeTable", "did not answer"),
    ],
)
def test_describe_errors_blame_a_permission_only_when_there_was_an_answer(
    code: str, says: str, never_says: str
) -> None:
    from types import SimpleNamespace

    from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

    from kit.dynamo import schema

    errors: dict[str, Exception] = {
        "EndpointConnectionError": EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        "ReadTimeoutError": ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
    }
    exc = errors.get(code) or ClientError({"Error": {"Code": code, "Message": "m"}}, "DescribeTable")

    def describe_table(**request: object) -> None:
        raise exc

    client = SimpleNamespace(meta=SimpleNamespace(region_name="us-east-2"), describe_table=describe_table)
    with pytest.raises(AwsError) as raised:
        schema.describe(client, "chatgenius-connections")
    error = raised.value
    assert error.code == code
    assert says in str(error)
    assert never_says not in str(error)


# -- is the table ready: CreateTable's answer decides whether to wait -------------------------------------------

_INDEX = {"IndexName": "workspaceIndex", "IndexStatus": "ACTIVE"}


@pytest.mark.parametrize(
    ("table", "ready"),
    [
        ({"TableStatus": "ACTIVE"}, True),
        ({"TableStatus": "ACTIVE", "GlobalSecondaryIndexes": []}, True),
        ({"TableStatus": "ACTIVE", "GlobalSecondaryIndexes": [_INDEX]}, True),
        (
            {"TableStatus": "ACTIVE", "GlobalSecondaryIndexes": [{"IndexName": "i"}]},
            True,
        ),  # no status: ACTIVE
        ({"TableStatus": "ACTIVE", "GlobalSecondaryIndexes": [{**_INDEX, "Backfilling": False}]}, True),
        ({"TableStatus": "ACTIVE", "GlobalSecondaryIndexes": [{**_INDEX, "Backfilling": True}]}, False),
        ({"TableStatus": "ACTIVE", "GlobalSecondaryIndexes": [{**_INDEX, "IndexStatus": "CREATING"}]}, False),
        (
            {
                "TableStatus": "ACTIVE",
                "GlobalSecondaryIndexes": [_INDEX, {**_INDEX, "IndexStatus": "UPDATING"}],
            },
            False,
        ),
        ({"TableStatus": "CREATING", "GlobalSecondaryIndexes": [_INDEX]}, False),
        ({"TableStatus": "UPDATING"}, False),
        ({}, False),
    ],
)
def test_a_table_is_ready_when_it_and_every_index_are_active(table: dict[str, Any], ready: bool) -> None:
    from kit.dynamo.schema import is_ready

    assert is_ready(table) is ready


class _Engine:
    """A DynamoDB client's create_table and describe_table, answering with ``status`` then ACTIVE."""

    def __init__(self, status: str) -> None:
        self.status = status
        self.meta = type("Meta", (), {"region_name": "us-east-2"})()
        self.calls: list[str] = []

    def _table(self, status: str) -> dict[str, Any]:
        return {**copy.deepcopy(GOOD_ANSWER["Table"]), "TableStatus": status}

    def create_table(self, **request: object) -> dict[str, Any]:
        self.calls.append("CreateTable")
        return {"TableDescription": self._table(self.status)}

    def describe_table(self, **request: object) -> dict[str, Any]:
        self.calls.append("DescribeTable")
        return {"Table": self._table("ACTIVE")}

    def get_waiter(self, name: str) -> Any:
        engine = self

        class Waiter:
            def wait(self, **request: object) -> None:
                engine.describe_table(**request)

        return Waiter()


@pytest.mark.parametrize(
    ("status", "calls"),
    [
        ("ACTIVE", ["CreateTable"]),  # the local engines: the answer says ACTIVE, nothing to wait for
        ("CREATING", ["CreateTable", "DescribeTable", "DescribeTable", "DescribeTable"]),  # AWS: waited for
    ],
)
def test_create_table_waits_only_when_the_answer_is_not_ready(status: str, calls: list[str]) -> None:
    from kit.dynamo import schema

    engine = _Engine(status)
    created = schema.create_table(engine, name="chatgenius-connections")
    assert engine.calls == calls
    assert created["TableStatus"] == "ACTIVE" and created["TableName"] == "chatgenius-connections"
