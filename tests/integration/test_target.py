"""kit.target against the session's DynamoDB engine: lab clients reach it, and regions stay apart."""

from __future__ import annotations

import pytest

from kit.dynamo.schema import create_table, describe
from kit.lab.engines import Engine
from kit.target import Target

pytestmark = pytest.mark.integration


def test_local_target_lists_the_table(dynamodb_engine: Engine, table_name: str) -> None:
    target = Target.local({"dynamodb": dynamodb_engine.endpoint_url}, table=table_name)
    client = target.client("dynamodb")
    create_table(client, name=target.table)
    assert table_name in client.list_tables()["TableNames"]
    # The client is reused, and a fresh target on the same engine sees the same table.
    assert target.client("dynamodb") is client
    again = Target.local({"dynamodb": dynamodb_engine.endpoint_url})
    assert describe(again.client("dynamodb"), table_name) is not None


def test_regions_are_kept_apart(dynamodb_engine: Engine, table_name: str) -> None:
    east_1 = Target.local({"dynamodb": dynamodb_engine.endpoint_url}, region="us-east-1")
    east_2 = Target.local({"dynamodb": dynamodb_engine.endpoint_url}, region="us-east-2")
    create_table(east_1.client("dynamodb"), name=table_name)
    assert describe(east_1.client("dynamodb"), table_name) is not None
    assert describe(east_2.client("dynamodb"), table_name) is None
    assert table_name not in east_2.client("dynamodb").list_tables()["TableNames"]


def test_lab_target_ignores_the_users_aws_settings(
    dynamodb_engine: Engine, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A broken profile or foreign credentials in the environment must not leak into the lab.
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAOTHERIDENTITY000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "other-secret")
    target = Target.local({"dynamodb": dynamodb_engine.endpoint_url})
    create_table(target.client("dynamodb"), name=table_name)
    # Same dummy key and region as every lab target, so the same database: the table is visible.
    plain = Target.local({"dynamodb": dynamodb_engine.endpoint_url})
    assert describe(plain.client("dynamodb"), table_name) is not None
