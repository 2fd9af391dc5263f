"""kit.dynamo.direct_write against a real DynamoDB engine: the storage test on a good table, a missing one, no index.

Each test gets a table of its own on the session's engine (DynamoDB Local, or moto as the announced
fallback), reached through a lab ``Target`` as the diagnosis reaches it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
import pytest

from kit.dynamo import direct_write, schema
from kit.lab import engines
from kit.target import Target

pytestmark = pytest.mark.integration


def _target(engine: engines.Engine, table: str) -> Target:
    return Target.local({"dynamodb": engine.endpoint_url}, table=table)


def _steps(frame: pd.DataFrame) -> dict[str, tuple[bool | None, str | None]]:
    return {
        str(step): (None if pd.isna(ok) else bool(ok), None if pd.isna(code) else str(code))
        for step, ok, code in zip(frame["step"], frame["ok"], frame["error_code"], strict=True)
    }


def test_a_good_table_takes_the_item_and_loses_it_again(
    dynamodb_engine: engines.Engine, dynamodb: Any, table_name: str
) -> None:
    schema.create_table(dynamodb, name=table_name)
    frame = direct_write.storage_test(_target(dynamodb_engine, table_name))
    assert _steps(frame) == {step: (True, None) for step in direct_write.STEPS}, frame["detail"].tolist()
    assert dynamodb.scan(TableName=table_name)["Items"] == []


def test_a_missing_table_fails_the_put_with_its_code(
    dynamodb_engine: engines.Engine, table_name: str
) -> None:
    frame = direct_write.storage_test(_target(dynamodb_engine, table_name))
    assert _steps(frame) == {
        "put": (False, "ResourceNotFoundException"),
        "get": (None, None),
        "query": (None, None),
        "delete": (None, None),
    }


def test_a_table_without_its_index_fails_the_query_and_is_cleaned_up(
    dynamodb_engine: engines.Engine, dynamodb: Any, table_name: str
) -> None:
    schema.create_table(dynamodb, replace(schema.EXPECTED, indexes=()), name=table_name)
    frame = direct_write.storage_test(_target(dynamodb_engine, table_name))
    steps = _steps(frame)
    assert steps["put"] == steps["get"] == steps["delete"] == (True, None)
    # AWS and DynamoDB Local answer ValidationException for a missing index; moto, the fallback, does not.
    codes = (
        {"ValidationException"}
        if dynamodb_engine.name == "dynamodb-local"
        else {
            "ValidationException",
            "ResourceNotFoundException",
        }
    )
    assert steps["query"][0] is False
    assert steps["query"][1] in codes, frame["detail"].tolist()
    assert dynamodb.scan(TableName=table_name)["Items"] == []
