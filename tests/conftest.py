"""Shared fixtures: one real DynamoDB engine per test session, fresh tables per test.

The engine is DynamoDB Local (AWS's own engine) unless Java or the jar is missing, in which case moto stands
in and the fallback is announced on stderr and in pytest's header. ``KIT_TEST_DYNAMODB=moto`` forces moto.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from kit.lab import engines
from kit.local import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY

REGION = "us-east-2"


def _engine_choice() -> str:
    return os.environ.get("KIT_TEST_DYNAMODB", "auto")


@pytest.fixture(scope="session")
def dynamodb_engine() -> Iterator[engines.Engine]:
    """A running DynamoDB engine on loopback for the whole session."""
    engine = engines.start_dynamodb(_engine_choice())  # type: ignore[arg-type]
    try:
        yield engine
    finally:
        engine.stop()


def local_client(service: str, endpoint_url: str, region: str = REGION) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=LOCAL_ACCESS_KEY_ID,
        aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
        config=Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=10),
    )


@pytest.fixture
def dynamodb(dynamodb_engine: engines.Engine) -> Any:
    """A boto3 DynamoDB client for the session engine, in ``REGION``."""
    return local_client("dynamodb", dynamodb_engine.endpoint_url)


@pytest.fixture
def table_name() -> str:
    """A table name no other test uses (tests share one engine)."""
    return f"chatgenius-connections-{uuid.uuid4().hex[:8]}"
