"""Fixtures the lab's tests share: one DynamoDB Local for every lab of the session.

Starting a JVM is most of what starting a lab costs. A lab given the session's lab engine (``Lab(...,
dynamodb=empty_dynamodb())``) creates its tables in it and leaves it running; ``empty_dynamodb()`` deletes
every table in every region first, so each lab starts on an engine as empty as a new one. That engine is not
``dynamodb_engine``, whose tests expect no lab's table in it. Labs whose tests kill DynamoDB Local, or that
must watch and restart it, start their own (``dynamodb="dynamodb-local"``).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from conftest import engine_choice, local_client

from kit.errors import EngineError
from kit.lab import engines

from .labclient import DynamoDBChoice, EmptyDynamoDB

# Every region DynamoDB Local keeps a database for (it keeps one per access key and region).
REGIONS = tuple(boto3.session.Session().get_available_regions("dynamodb"))


# One client per (engine, region), kept for the session: every lab's start sweeps every region, and making ~35
# botocore clients each time cost more CPU than the sweep's own calls.
_SWEEP_CLIENTS: dict[tuple[str, str], Any] = {}


def _sweep_client(endpoint_url: str, region: str) -> Any:
    client = _SWEEP_CLIENTS.get((endpoint_url, region))
    if client is None:
        client = _SWEEP_CLIENTS.setdefault(
            (endpoint_url, region), local_client("dynamodb", endpoint_url, region)
        )
    return client


def _delete_every_table(endpoint_url: str, region: str) -> None:
    client = _sweep_client(endpoint_url, region)
    for page in client.get_paginator("list_tables").paginate():
        for name in page["TableNames"]:
            client.delete_table(TableName=name)


@pytest.fixture(scope="session")
def lab_dynamodb_engine() -> Iterator[engines.Engine | None]:
    """The DynamoDB Local the session's labs share; None under moto (no Java, or ``KIT_TEST_DYNAMODB=moto``):
    a lab's moto holds its configuration too, so there is nothing to share and each lab starts its own."""
    if engine_choice() == "moto":
        yield None
        return
    try:
        engine = engines.start_dynamodb_local()
    except EngineError:
        yield None  # `auto`: each lab falls back to moto itself, and says so
        return
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def empty_dynamodb(lab_dynamodb_engine: engines.Engine | None) -> EmptyDynamoDB:
    """``empty_dynamodb()``: the labs' DynamoDB Local with no table left in any region, for the next lab."""

    def emptied() -> DynamoDBChoice:
        if lab_dynamodb_engine is None:
            return engine_choice()  # type: ignore[return-value]
        url = lab_dynamodb_engine.endpoint_url
        # The first region alone: botocore parses DynamoDB's model once, not in eight threads at once.
        _delete_every_table(url, REGIONS[0])
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda region: _delete_every_table(url, region), REGIONS[1:]))
        return lab_dynamodb_engine

    return emptied
