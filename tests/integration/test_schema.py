"""kit.dynamo.schema against the session's DynamoDB engine: the expected table round-trips, wrong shapes are caught."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from kit.dynamo.schema import EXPECTED, IndexSchema, create_table, describe, diff_table
from kit.errors import AwsError
from kit.lab.engines import Engine
from kit.target import Target

pytestmark = pytest.mark.integration


@pytest.fixture
def target(dynamodb_engine: Engine) -> Target:
    return Target.local({"dynamodb": dynamodb_engine.endpoint_url})


@pytest.fixture
def client(target: Target) -> Any:
    return target.client("dynamodb")


def test_expected_table_round_trips(client: Any, table_name: str) -> None:
    created = create_table(client, name=table_name)
    assert created["TableName"] == table_name
    assert created["TableStatus"] == "ACTIVE"
    assert diff_table(describe(client, table_name)) == []


def test_create_table_is_idempotent(client: Any, table_name: str) -> None:
    first = create_table(client, name=table_name)
    again = create_table(client, name=table_name)
    assert again["TableArn"] == first["TableArn"]


def test_describe_missing_table_is_none(client: Any, table_name: str) -> None:
    assert describe(client, table_name) is None
    assert [d.kind for d in diff_table(describe(client, table_name))] == ["table-missing"]


@pytest.mark.parametrize(
    ("index", "expected_kinds"),
    [
        (IndexSchema("workspaceId-index", "workspaceId"), ["index-misnamed"]),
        (IndexSchema("workspaceIndex", "workspaceId", "N"), ["index-key-type"]),
        (IndexSchema("workspaceIndex", "userId"), ["index-wrong-key"]),
        (IndexSchema("workspaceIndex", "workspaceId", projection="KEYS_ONLY"), ["index-projection"]),
    ],
    ids=["misnamed", "number-key", "wrong-key", "keys-only"],
)
def test_wrong_index_is_reported(
    client: Any, table_name: str, index: IndexSchema, expected_kinds: list[str]
) -> None:
    wrong = dataclasses.replace(EXPECTED, indexes=(index,))
    create_table(client, wrong, name=table_name)
    assert [d.kind for d in diff_table(describe(client, table_name))] == expected_kinds


def test_wrong_table_key_type_is_reported(client: Any, table_name: str) -> None:
    create_table(client, dataclasses.replace(EXPECTED, hash_key_type="N"), name=table_name)
    (difference,) = diff_table(describe(client, table_name))
    assert (difference.kind, difference.severity) == ("wrong-key-type", "error")
    assert table_name in difference.message


def test_sort_key_is_reported(client: Any, table_name: str) -> None:
    create_table(client, dataclasses.replace(EXPECTED, range_key="timestamp"), name=table_name)
    assert [d.kind for d in diff_table(describe(client, table_name))] == ["unexpected-range-key"]


def test_existing_table_of_another_shape_is_an_error(client: Any, table_name: str) -> None:
    create_table(client, dataclasses.replace(EXPECTED, indexes=()), name=table_name)
    with pytest.raises(AwsError) as caught:
        create_table(client, name=table_name)
    error = caught.value
    assert (error.code, error.operation, error.resource) == (
        "ResourceInUseException",
        "CreateTable",
        table_name,
    )
    assert f"Table {table_name} already exists in us-east-2 with another shape" in str(error)
    assert "has no index workspaceIndex" in str(error)


def test_describe_on_a_dead_endpoint_is_an_aws_error(table_name: str) -> None:
    from kit.lab.engines import free_port

    dead = Target.local({"dynamodb": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(AwsError) as caught:
        describe(dead.client("dynamodb"), table_name)
    assert caught.value.code == "EndpointConnectionError"
    assert f"for table {table_name} in us-east-2" in str(caught.value)
