"""kit.dynamo offline (table, items, stale): every *_frame over recorded pages (AWS response shapes), the scan and
GET edges stubbed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber

from kit.dynamo import items as items_module
from kit.dynamo import schema
from kit.dynamo.items import (
    COVERAGE_COLUMNS,
    ITEMS_COLUMNS,
    WHY_NOT_DETAIL,
    index_coverage,
    index_pages,
    items_frame,
    items_frame_slow,
    scan_pages,
)
from kit.dynamo.stale import STALE_COLUMNS, STATE_DETAIL, fetch_connections, stale_frame
from kit.dynamo.table import DESCRIBE_COLUMNS, describe_frame, expected_schema
from kit.errors import AwsError

PAGES = Path(__file__).resolve().parents[1] / "data" / "pages"


def load(name: str) -> Any:
    return json.loads((PAGES / name).read_text())


def recorded_scan_pages() -> list[dict[str, Any]]:
    return [load("dynamodb-scan-page-1.json"), load("dynamodb-scan-page-2.json")]


def assert_contract(frame: pd.DataFrame, columns: dict[str, str]) -> None:
    for name, dtype in columns.items():
        assert name in frame.columns, name
        assert str(frame[name].dtype) == dtype, (name, frame[name].dtype)


class FakeTarget:
    """What the fetching functions use of a Target, with clients the test stubs."""

    kind = "lab"
    region = "us-east-2"
    table = "chatgenius-connections"
    index = "workspaceIndex"
    label = "lab us-east-2"

    def __init__(self, **clients: Any) -> None:
        self._clients = clients

    def client(self, service: str) -> Any:
        return self._clients[service]


def offline_client(service: str, **kwargs: Any) -> Any:
    return boto3.client(
        service,
        region_name="us-east-2",
        aws_access_key_id="AKIAFIXTURE00000XYZ1",
        aws_secret_access_key="fixture",
        **kwargs,
    )


# --------------------------------------------------------------------------------------------------
# describe_frame


def test_describe_frame_has_one_row_for_the_table_and_each_index() -> None:
    frame = describe_frame(load("dynamodb-describe-table.json"))
    assert_contract(frame, DESCRIBE_COLUMNS)
    assert frame["kind"].tolist() == ["table", "global-index", "global-index"]
    assert frame["name"].tolist() == ["chatgenius-connections", "workspaceIndex", "byTimestamp"]
    creating = frame.iloc[2]
    assert creating["status"] == "CREATING"
    assert bool(creating["backfilling"]) is True
    assert creating["projection"] == "INCLUDE(userId, status)"
    assert creating["range_key"] == "timestamp"
    assert creating["range_key_type"] == "S"
    assert creating["item_count"] is pd.NA
    assert frame.iloc[0]["billing_mode"] == "PAY_PER_REQUEST"
    assert frame["problem"].isna().all()


def test_describe_frame_small_exact() -> None:
    description = {
        "TableName": "t",
        "AttributeDefinitions": [{"AttributeName": "connectionId", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "connectionId", "KeyType": "HASH"}],
        "TableStatus": "ACTIVE",
        "ItemCount": 3,
        "BillingModeSummary": {"BillingMode": "PROVISIONED"},
    }
    expected = pd.DataFrame(
        {
            "kind": ["table"],
            "name": ["t"],
            "hash_key": ["connectionId"],
            "hash_key_type": ["S"],
            "range_key": [None],
            "range_key_type": [None],
            "projection": [None],
            "status": ["ACTIVE"],
            "backfilling": [None],
            "item_count": [3],
            "size_bytes": [None],
            "billing_mode": ["PROVISIONED"],
            "arn": [None],
            "problem": [None],
        }
    ).astype(DESCRIBE_COLUMNS)
    pd.testing.assert_frame_equal(describe_frame(description), expected)


@pytest.mark.parametrize(
    ("description", "row", "problem"),
    [
        ({"TableName": "t"}, 0, "KeySchema is missing"),
        (
            {"TableName": "t", "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]},
            0,
            "key id has no AttributeDefinitions entry",
        ),
        (
            {"TableName": "t", "KeySchema": [], "GlobalSecondaryIndexes": ["workspaceIndex"]},
            1,
            "a GlobalSecondaryIndexes entry is a str",
        ),
        ({"TableName": "t", "KeySchema": "connectionId"}, 0, "not a list"),
    ],
)
def test_describe_frame_marks_malformed_parts_and_keeps_going(
    description: dict[str, Any], row: int, problem: str
) -> None:
    frame = describe_frame(description)
    assert_contract(frame, DESCRIBE_COLUMNS)
    assert problem in frame.iloc[row]["problem"]


@pytest.mark.parametrize("description", [None, {}])
def test_describe_frame_of_no_table_is_empty_with_the_contract(description: Any) -> None:
    frame = describe_frame(description)
    assert frame.empty
    assert list(frame.columns) == list(DESCRIBE_COLUMNS)
    assert_contract(frame, DESCRIBE_COLUMNS)


# describe_table's table part → billing mode: AWS leaves BillingModeSummary out of a table provisioned since
# its creation; emulators leave it out of on-demand tables, which report zero capacity.
BILLING_CASES = [
    ("on-demand, said", {"BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"}}, "PAY_PER_REQUEST"),
    ("provisioned, said", {"BillingModeSummary": {"BillingMode": "PROVISIONED"}}, "PROVISIONED"),
    (
        "no summary, capacity",
        {"ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 1}},
        "PROVISIONED",
    ),
    (
        "no summary, zero capacity (an emulator's on-demand table)",
        {"ProvisionedThroughput": {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0}},
        "PAY_PER_REQUEST",
    ),
    ("nothing said at all", {}, "PROVISIONED"),
    ("an empty summary", {"BillingModeSummary": {}, "ProvisionedThroughput": {}}, "PAY_PER_REQUEST"),
    ("a summary that is not an object", {"BillingModeSummary": "PAY_PER_REQUEST"}, "PROVISIONED"),
]


@pytest.mark.parametrize(
    ("table", "billing"), [pytest.param(table, billing, id=name) for name, table, billing in BILLING_CASES]
)
def test_the_diff_and_the_frame_read_the_billing_mode_alike(table: dict[str, Any], billing: str) -> None:
    described = {"TableName": "t", "KeySchema": [], **table}
    assert schema.billing_mode(described) == billing
    assert schema.billing_mode(schema.table_part({"Table": described})) == billing
    assert describe_frame({"Table": described}).iloc[0]["billing_mode"] == billing
    flagged = [d.actual for d in schema.diff_table(described) if d.kind == "billing-mode"]
    assert [a.split(" ")[0] for a in flagged] == ([] if billing == "PAY_PER_REQUEST" else [billing])


def test_expected_schema_uses_the_targets_names() -> None:
    target = FakeTarget()
    target.table = "other-table"
    target.index = "byWorkspace"
    expected = expected_schema(target)  # type: ignore[arg-type]
    assert expected.name == "other-table"
    assert expected.indexes[0].name == "byWorkspace"
    assert expected.indexes[0].hash_key == "workspaceId"


# --------------------------------------------------------------------------------------------------
# items_frame


def test_items_frame_of_nothing_is_empty_with_the_contract() -> None:
    frame = items_frame([])
    assert frame.empty
    assert list(frame.columns) == list(ITEMS_COLUMNS)
    assert_contract(frame, ITEMS_COLUMNS)
    assert frame.attrs["problems"] == []


def test_items_frame_small_exact() -> None:
    page = {
        "Items": [
            {"connectionId": {"S": "a="}, "workspaceId": {"S": "ws-1"}, "n": {"N": "2"}},
            {"connectionId": {"S": "b="}, "n": {"N": "3"}, "ok": {"BOOL": False}},
        ]
    }
    na: list[Any] = [None, None]
    expected = pd.DataFrame(
        {
            "connectionId": pd.array(["a=", "b="], dtype="string"),
            "workspaceId": pd.array(["ws-1", None], dtype="string"),
            "userId": pd.array(na, dtype="string"),
            "timestamp": pd.array(na, dtype="string"),
            "status": pd.array(na, dtype="string"),
            "n": pd.array([2, 3], dtype="Int64"),
            "ok": pd.array([None, False], dtype="boolean"),
            "timestamp_utc": pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns, UTC]"),
            "connectionId__type": pd.array(["S", "S"], dtype="string"),
            "workspaceId__type": pd.array(["S", None], dtype="string"),
            "userId__type": pd.array(na, dtype="string"),
            "timestamp__type": pd.array(na, dtype="string"),
            "status__type": pd.array(na, dtype="string"),
            "n__type": pd.array(["N", "N"], dtype="string"),
            "ok__type": pd.array([None, "BOOL"], dtype="string"),
            "_problem": pd.array(na, dtype="string"),
        }
    )
    pd.testing.assert_frame_equal(items_frame([page]), expected)


@pytest.mark.parametrize(
    ("row", "column", "value"),
    [
        (0, "workspaceId", "ws-1"),
        (0, "workspaceId__type", "S"),
        (1, "workspaceId", pd.NA),  # the sparse-index case: never written
        (1, "workspaceId__type", pd.NA),
        (2, "workspaceId", "42"),  # a number in a string field shows as its text ...
        (2, "workspaceId__type", "N"),  # ... and its type says so
        (3, "workspaceId", ""),
        (3, "userId", pd.NA),
        (3, "userId__type", "NULL"),
        (2, "timestamp", "1733072700"),
        (2, "timestamp__type", "N"),
        (2, "connectedAtMs", 1733072700123),
        (3, "tags", '["beta","mobile"]'),
        (3, "tags__type", "SS"),
        (3, "meta", '{"agent":"Mozilla/5.0","flags":[true,null],"retries":2}'),
        (3, "meta__type", "M"),
        (0, "timestamp_utc", pd.Timestamp("2024-12-01T17:03:11.123Z")),
        (3, "timestamp_utc", pd.Timestamp("2024-12-01T17:05:30Z")),
        (4, "timestamp_utc", pd.NaT),  # "not a date"
        (2, "timestamp_utc", pd.NaT),  # epoch seconds are not ISO 8601
    ],
)
def test_items_frame_reads_recorded_pages(row: int, column: str, value: Any) -> None:
    frame = items_frame(recorded_scan_pages())
    actual = frame.loc[row, column]
    if value is pd.NA or value is pd.NaT:
        assert pd.isna(actual), actual
    else:
        assert actual == value


def test_items_frame_types_columns_from_their_values() -> None:
    frame = items_frame(recorded_scan_pages())
    assert_contract(frame, ITEMS_COLUMNS)
    assert str(frame["connectedAtMs"].dtype) == "Int64"
    assert str(frame["tags"].dtype) == "string"
    assert list(frame.columns[:8]) == [
        "connectionId",
        "workspaceId",
        "userId",
        "timestamp",
        "status",
        "connectedAtMs",
        "tags",
        "meta",
    ]
    assert frame["_problem"].isna().all()


def _all_types_page() -> dict[str, Any]:
    return {
        "Items": [
            {
                "connectionId": {"S": "a="},
                "score": {"N": "1.5"},
                "count": {"N": "10"},
                "big": {"N": "123456789012345678901234"},
                "flag": {"BOOL": True},
                "blob": {"B": b"\x00\x01binary"},
                "blobs": {"BS": [b"b", b"a"]},
                "nums": {"NS": ["3", "1.5", "2"]},
                "list": {"L": [{"S": "x"}, {"N": "1.0"}, {"M": {"k": {"NULL": True}}}]},
                "mixed": {"S": "text"},
                "nothing": {"NULL": True},
            },
            {
                "connectionId": {"S": "b="},
                "score": {"N": "-2"},
                "count": {"N": "1E+2"},
                "big": {"N": "1"},
                "flag": {"NULL": True},
                "mixed": {"N": "7"},
                "timestamp": {"S": "2024-12-01T17:03:11Z"},
            },
        ]
    }


@pytest.mark.parametrize(
    "pages",
    [
        pytest.param(recorded_scan_pages(), id="recorded"),
        pytest.param([_all_types_page()], id="every-type"),
        pytest.param([load("dynamodb-index-scan.json")], id="index-page"),
        pytest.param([{"Items": []}], id="empty-page"),
    ],
)
def test_items_frame_agrees_with_the_type_deserializer_baseline(pages: list[dict[str, Any]]) -> None:
    pd.testing.assert_frame_equal(items_frame(pages), items_frame_slow(pages))


def test_items_frame_numbers_and_binary() -> None:
    frame = items_frame([_all_types_page()])
    assert str(frame["score"].dtype) == "Float64"
    assert frame["score"].tolist() == [1.5, -2.0]
    assert str(frame["count"].dtype) == "Int64"
    assert frame["count"].tolist() == [10, 100]
    assert str(frame["big"].dtype) == "Float64"  # beyond int64: a float, never Decimal
    assert frame.loc[0, "blob"] == "AAFiaW5hcnk="
    assert frame.loc[0, "blobs"] == '["YQ==","Yg=="]'  # sorted, as sets have no order
    assert frame.loc[0, "nums"] == "[1.5,2,3]"
    assert frame.loc[0, "list"] == '["x",1,{"k":null}]'
    assert frame["mixed"].tolist() == ["text", "7"]
    assert frame["mixed__type"].tolist() == ["S", "N"]
    assert frame["flag"].tolist() == [True, pd.NA]
    assert frame["nothing"].isna().all()


def test_items_frame_marks_bad_items_and_pages_and_keeps_going() -> None:
    frame = items_frame(
        [load("dynamodb-scan-malformed.json"), {"Count": 0}, "junk", recorded_scan_pages()[0]]
    )
    assert len(frame) == 5  # two malformed rows, then the three items of the good page
    first = frame.loc[0, "_problem"]
    assert "attribute workspaceId is not a DynamoDB AttributeValue" in first
    assert "attribute userId is not a DynamoDB AttributeValue" in first
    assert "attribute timestamp has unknown type X" in first
    assert "attribute score is not a number" in first
    assert frame.loc[0, "workspaceId__type"] == "?"
    assert frame.loc[1, "_problem"] == "item is a list, not a map of attributes."
    assert frame.loc[2:, "_problem"].isna().all()
    assert frame.loc[2, "connectionId"] == "Nne9qPxHM0V0Yxk="
    assert frame.attrs["problems"] == [
        "page 2 has no Items (its keys: Count); it was skipped.",
        "page 3 is a str, not a scan or query answer; it was skipped.",
    ]


@pytest.mark.parametrize(
    ("value", "text", "problem"),
    [
        ({"BOOL": "yes"}, pd.NA, "attribute x has a malformed BOOL value."),
        ({"M": "not a map"}, '"not a map"', "attribute x has a malformed M value."),
        ({"M": {"a": "plain"}}, '{"a":"plain"}', "attribute x has a malformed M value."),
        ({"SS": "abc"}, '"abc"', "attribute x has a malformed SS value."),
        ({"N": None}, pd.NA, "attribute x is not a number."),
        ({}, "{}", "attribute x is not a DynamoDB AttributeValue."),
        (None, "null", "attribute x is not a DynamoDB AttributeValue."),
    ],
)
def test_items_frame_marks_malformed_values(value: Any, text: Any, problem: str) -> None:
    frame = items_frame([{"Items": [{"connectionId": {"S": "a="}, "x": value}]}])
    if text is pd.NA:
        assert pd.isna(frame.loc[0, "x"])
    else:
        assert frame.loc[0, "x"] == text
    assert frame.loc[0, "_problem"] == problem


def test_items_frame_marks_a_non_string_in_an_expected_field() -> None:
    frame = items_frame([{"Items": [{"connectionId": {"S": 5}}, {"connectionId": {"S": "b="}}]}])
    assert frame["connectionId"].tolist() == [pd.NA, "b="]
    assert frame.loc[0, "_problem"] == "attribute connectionId has a malformed S value."


def test_items_frame_accepts_a_get_item_answer() -> None:
    frame = items_frame([{"Item": {"connectionId": {"S": "a="}}}])
    assert frame["connectionId"].tolist() == ["a="]


def _synthetic_pages(count: int) -> list[dict[str, Any]]:
    items = []
    for i in range(count):
        item = {
            "connectionId": {"S": f"C{i:014d}="},
            "userId": {"S": f"user{i}@example.com"},
            "timestamp": {"S": "2024-12-01T17:03:11.123Z"},
            "status": {"S": "connected"},
            "connectedAtMs": {"N": str(1733072700000 + i)},
            "score": {"N": f"{i / 7:.3f}"},
            "online": {"BOOL": i % 2 == 0},
        }
        if i % 10:
            item["workspaceId"] = {"S": f"ws-{i % 50}"}
        items.append(item)
    return [{"Items": items[i : i + 1000]} for i in range(0, count, 1000)]


def test_items_frame_agrees_with_the_baseline_on_many_pages() -> None:
    # How much faster it is, is `make bench`'s figure (bench/evidence.py), never a timed assertion here.
    pages = _synthetic_pages(20_000)
    pd.testing.assert_frame_equal(items_frame(pages), items_frame_slow(pages))


# --------------------------------------------------------------------------------------------------
# index_coverage


def test_index_coverage_says_why_each_item_is_missing_from_the_index() -> None:
    items = items_frame(recorded_scan_pages())
    coverage = index_coverage(items, [load("dynamodb-index-scan.json")])
    assert_contract(coverage, COVERAGE_COLUMNS)
    assert list(coverage.columns) == list(COVERAGE_COLUMNS)
    reasons = dict(zip(coverage["connection_id"], coverage["why_not"], strict=True))
    assert reasons == {
        "Nne9qPxHM0V0Yxk=": pd.NA,
        "Oa1bQyIHM0VkZxk=": "attribute-absent",
        "Pb2cRzJIN1WlAyl=": "wrong-type",
        "Qc3dSaKJO2XmBzm=": "empty-string",
        "Rd4eTbLKP3YnCan=": "not-yet-in-index",
    }
    assert coverage["in_index"].tolist() == [True, False, False, False, False]
    assert "has type N, not S" in coverage.loc[2, "detail"]
    assert "eventually consistent" in coverage.loc[4, "detail"]
    assert pd.isna(coverage.loc[0, "detail"])


def test_index_coverage_small_exact() -> None:
    items = items_frame([{"Items": [{"connectionId": {"S": "a="}}]}])
    expected = pd.DataFrame(
        {
            "connection_id": ["a="],
            "workspace_id": [None],
            "workspace_id_type": [None],
            "in_index": [False],
            "why_not": ["attribute-absent"],
            "detail": [WHY_NOT_DETAIL["attribute-absent"].format(key="workspaceId", index="workspaceIndex")],
        }
    ).astype(COVERAGE_COLUMNS)
    pd.testing.assert_frame_equal(index_coverage(items, []), expected)


@pytest.mark.parametrize(
    "items",
    [items_frame([]), pd.DataFrame()],
    ids=["empty-items-frame", "no-columns"],
)
def test_index_coverage_of_nothing_is_empty_with_the_contract(items: pd.DataFrame) -> None:
    coverage = index_coverage(items, [load("dynamodb-index-scan.json")])
    assert coverage.empty
    assert list(coverage.columns) == list(COVERAGE_COLUMNS)


def test_index_coverage_tolerates_odd_index_pages() -> None:
    items = items_frame(recorded_scan_pages())
    coverage = index_coverage(items, [{"Items": ["junk", {"connectionId": "plain"}]}, {"NoItems": 1}])
    assert not coverage["in_index"].any()


# --------------------------------------------------------------------------------------------------
# stale_frame


def test_stale_frame_classifies_each_getconnection_answer() -> None:
    items = items_frame(recorded_scan_pages())
    frame = stale_frame(items, load("apigw-get-connection.json"))
    assert_contract(frame, STALE_COLUMNS)
    states = dict(zip(frame["connection_id"], frame["state"], strict=True))
    assert states == {
        "Nne9qPxHM0V0Yxk=": "alive",
        "Oa1bQyIHM0VkZxk=": "gone",
        "Pb2cRzJIN1WlAyl=": "invalid-id",
        "Qc3dSaKJO2XmBzm=": "forbidden",
        "Rd4eTbLKP3YnCan=": "error",
    }
    assert frame["http_status"].tolist() == [200, 410, 400, 403, 429]
    alive = frame.iloc[0]
    assert alive["connected_at"] == pd.Timestamp("2024-12-01T17:03:10.998Z")
    assert alive["last_active_at"] == pd.Timestamp("2024-12-01T17:09:42.001Z")
    assert alive["source_ip"] == "203.0.113.7"
    assert alive["stored_at"] == pd.Timestamp("2024-12-01T17:03:11.123Z")
    assert pd.isna(frame.iloc[1]["connected_at"])
    assert "LimitExceededException" in frame.iloc[4]["detail"]
    assert "Invalid connectionId" in frame.iloc[2]["detail"]


def test_stale_frame_small_exact() -> None:
    items = items_frame([{"Items": [{"connectionId": {"S": "a="}, "workspaceId": {"S": "ws-1"}}]}])
    answer = {
        "a=": {"ConnectedAt": datetime(2024, 12, 1, 17, 0, tzinfo=UTC), "Identity": {"SourceIp": "1.2.3.4"}}
    }
    expected = pd.DataFrame(
        {
            "connection_id": ["a="],
            "workspace_id": ["ws-1"],
            "user_id": [None],
            "stored_at": pd.Series([pd.NaT], dtype="datetime64[ns, UTC]"),
            "state": ["alive"],
            "http_status": [200],
            "error_code": [None],
            "connected_at": pd.Series([pd.Timestamp("2024-12-01T17:00Z")], dtype="datetime64[ns, UTC]"),
            "last_active_at": pd.Series([pd.NaT], dtype="datetime64[ns, UTC]"),
            "source_ip": ["1.2.3.4"],
            "detail": [STATE_DETAIL["alive"]],
        }
    ).astype(STALE_COLUMNS)
    pd.testing.assert_frame_equal(stale_frame(items, answer), expected)


def test_stale_frame_unchecked_and_unanswered() -> None:
    items = items_frame(recorded_scan_pages())
    unchecked = stale_frame(items, None)
    assert set(unchecked["state"]) == {"unchecked"}
    unanswered = stale_frame(items, {})
    assert set(unanswered["state"]) == {"error"}
    assert set(unanswered["error_code"]) == {"NotChecked"}


def test_stale_frame_of_nothing_is_empty_with_the_contract() -> None:
    frame = stale_frame(items_frame([]), {})
    assert frame.empty
    assert list(frame.columns) == list(STALE_COLUMNS)
    assert_contract(frame, STALE_COLUMNS)


# --------------------------------------------------------------------------------------------------
# The fetching edges, stubbed with recorded answers


@pytest.fixture
def stubbed_dynamodb() -> Iterator[tuple[Any, Stubber]]:
    client = offline_client("dynamodb")
    with Stubber(client) as stubber:
        yield client, stubber


def test_scan_pages_follows_last_evaluated_key(stubbed_dynamodb: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed_dynamodb
    first, second = recorded_scan_pages()
    for page in (first, second):
        page.pop("ResponseMetadata")
    stubber.add_response("scan", first, {"TableName": "chatgenius-connections"})
    stubber.add_response(
        "scan",
        second,
        {"TableName": "chatgenius-connections", "ExclusiveStartKey": first["LastEvaluatedKey"]},
    )
    pages = scan_pages(FakeTarget(dynamodb=client), segments=1, progress=False)  # type: ignore[arg-type]
    stubber.assert_no_pending_responses()
    assert [len(p["Items"]) for p in pages] == [3, 2]
    assert len(items_frame(pages)) == 5


def test_index_pages_scans_the_targets_index(stubbed_dynamodb: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed_dynamodb
    page = load("dynamodb-index-scan.json")
    page.pop("ResponseMetadata")
    stubber.add_response("scan", page, {"TableName": "chatgenius-connections", "IndexName": "workspaceIndex"})
    pages = index_pages(FakeTarget(dynamodb=client))  # type: ignore[arg-type]
    assert [p["Items"] for p in pages] == [page["Items"]]


@pytest.mark.parametrize("segments", [0, -1, 1_000_001])
def test_scan_pages_rejects_impossible_segment_counts(segments: int) -> None:
    with pytest.raises(ValueError, match="segments"):
        scan_pages(FakeTarget(), segments=segments)  # type: ignore[arg-type]


def test_scan_errors_become_aws_errors_naming_the_table(stubbed_dynamodb: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed_dynamodb
    stubber.add_client_error(
        "scan", "ResourceNotFoundException", "Requested resource not found", http_status_code=400
    )
    with pytest.raises(AwsError) as raised:
        scan_pages(FakeTarget(dynamodb=client), segments=1, progress=False)  # type: ignore[arg-type]
    error = raised.value
    assert error.code == "ResourceNotFoundException"
    assert error.operation == "Scan"
    assert "chatgenius-connections" in str(error)
    assert "us-east-2" in str(error)


def test_fetch_connections_keeps_errors_as_answers() -> None:
    client = offline_client(
        "apigatewaymanagementapi", endpoint_url="https://prqb9y0mvd.execute-api.us-east-2.amazonaws.com/prod"
    )
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_connection",
            {
                "ConnectedAt": datetime(2024, 12, 1, tzinfo=UTC),
                "LastActiveAt": datetime(2024, 12, 1, tzinfo=UTC),
            },
            {"ConnectionId": "Nne9qPxHM0V0Yxk="},
        )
        stubber.add_client_error(
            "get_connection",
            "GoneException",
            "",
            http_status_code=410,
            expected_params={"ConnectionId": "Gone="},
        )
        answers = fetch_connections(
            FakeTarget(apigatewaymanagementapi=client),  # type: ignore[arg-type]
            ["Nne9qPxHM0V0Yxk=", "Gone=", "Nne9qPxHM0V0Yxk="],
            max_workers=1,
        )
    assert list(answers) == ["Nne9qPxHM0V0Yxk=", "Gone="]
    assert answers["Gone="]["Error"]["Code"] == "GoneException"
    assert answers["Gone="]["ResponseMetadata"]["HTTPStatusCode"] == 410


def _uniform_items() -> list[dict[str, Any]]:
    return [
        {"connectionId": {"S": f"c{i}="}, "score": {"N": str(i)}, "flag": {"BOOL": i % 2 == 0}}
        for i in range(4)
    ]


def _with(change: Callable[[list[Any]], None]) -> list[Any]:
    items: list[Any] = _uniform_items()
    change(items)
    return items


@pytest.mark.parametrize(
    ("items", "uniform"),
    [
        pytest.param(_uniform_items(), True, id="same attributes and types"),
        pytest.param(_with(lambda items: items[2].update(nothing={"NULL": True})), False, id="an extra one"),
        pytest.param(_with(lambda items: items[1].pop("score")), False, id="one missing"),
        pytest.param(
            _with(lambda items: items[3].update(score=items[3].pop("flag"))),
            False,
            id="same count, other names",
        ),
        pytest.param(_with(lambda items: items[1].update(score={"S": "7"})), False, id="another type"),
        pytest.param(_with(lambda items: items[0].update(score={"N": "1", "S": "1"})), False, id="two types"),
        pytest.param(_with(lambda items: items[2].update(score="N")), False, id="not a map"),
        pytest.param(_with(lambda items: items.append(["connectionId"])), False, id="an item not a map"),
    ],
)
def test_items_frame_reads_uniform_pages_column_by_column(
    monkeypatch: pytest.MonkeyPatch, items: list[Any], uniform: bool
) -> None:
    """The column-by-column path is taken only for pages it reads exactly as the value-by-value one does."""
    page = {"Items": items}
    assert (items_module._collect_uniform(items) is not None) == uniform
    fast = items_frame([page])
    monkeypatch.setattr(items_module, "_collect_uniform", lambda items: None)
    pd.testing.assert_frame_equal(fast, items_frame([page]))
