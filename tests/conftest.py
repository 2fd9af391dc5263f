"""Shared fixtures: one real DynamoDB engine per test session, fresh tables per test.

The engine is DynamoDB Local (AWS's own engine) unless Java or the jar is missing, in which case moto stands
in and the fallback is announced on stderr and in pytest's header. ``KIT_TEST_DYNAMODB=moto`` forces moto.
"""

from __future__ import annotations

import gc
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


def engine_choice() -> str:
    return os.environ.get("KIT_TEST_DYNAMODB", "auto")


@pytest.fixture(scope="session")
def dynamodb_engine() -> Iterator[engines.Engine]:
    """A running DynamoDB engine on loopback for the whole session."""
    engine = engines.start_dynamodb(engine_choice())  # type: ignore[arg-type]
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


# -- spreading the suite over xdist workers (``make test``: ``-n 3 --dist loadscope``) -----------------------------
#
# Tests that share a lab (a module- or class-scoped fixture) form one scope and so run on one worker, in file order;
# a test that starts its own lab, and every unit test, is a scope of its own and goes to whichever worker is free.
# Workers take the scopes that last longest first, so that no long one starts last. (xdist's own ``loadgroup``
# marks are not used: on pytest 9.2 xdist 3.8 cannot attach a group to a node id and silently ignores them.)

# Modules whose tests each start (and stop) what they need.
_UNSHARED = {"test_diagnose_lab.py", "test_lab_scenarios.py", "test_cli.py", "test_mirror_scenarios.py"}
# Modules whose lab fixture is parametrized indirectly by scenario: one lab, so one scope, per scenario.
_BY_SCENARIO = {"test_probe.py", "test_evidence_dynamo.py", "test_evidence_iam_config.py"}
# Longest first (as measured in a serial run); whatever is not named follows, in file order.
_LONGEST_FIRST = (
    "test_report.py",
    "test_notebooks.py",
    "test_bench_smoke.py",
    "test_diagnose_lab.py::TestFaultsMadeThroughAws",
    "test_account_sim.py",
    "test_lab_reliability.py",
    "test_lab_gateway.py",
    "test_fidelity.py",
    "test_mirror_scenarios.py",
    "test_mirror.py",
    "test_diagnose_lab.py",
    "test_lab_scenarios.py",
    "test_cli.py",
    "test_probe.py",
)


def scope_of(nodeid: str) -> str:
    """The scope a test runs in: tests of one scope run on one worker, one after the other (pure)."""
    path, _, rest = nodeid.partition("::")
    if "integration/" not in path:
        return nodeid
    module = path.rsplit("/", 1)[-1]
    name, _, params = rest.partition("[")
    if "::" in name:  # a test class shares its class-scoped fixtures
        return f"{path}::{name.split('::')[0]}"
    if module in _UNSHARED:
        return nodeid
    if module in _BY_SCENARIO and params:
        return f"{path}[{params}"
    return path


def _rank(item: pytest.Item) -> int:
    if "integration" not in item.path.parts:
        return len(_LONGEST_FIRST) + 1
    names = [item.path.name] + ([f"{item.path.name}::{item.cls.__name__}"] if item.cls else [])
    ranks = [_LONGEST_FIRST.index(name) for name in names if name in _LONGEST_FIRST]
    return min(ranks) if ranks else len(_LONGEST_FIRST)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedLabScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return SharedLabScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: the order is the queue the workers take from
        items.sort(key=_rank)


# -- the test process's garbage collector -----------------------------------------------------------------------
#
# A worker holds ~370,000 objects once it has collected the suite (pandas, botocore's models, moto, the test
# items), and the tests allocate fast: with Python's default thresholds the collector ran ~12,000 times over
# the unit tests alone, 8% of their CPU. Frozen after collection, those objects are never traversed again,
# and a young collection every 20,000 allocations instead of 700 leaves the collector ~4% (measured on the
# unit tests: 4.7 s -> 2.2 s of collection). Cycles are still collected, only in larger batches; nothing in
# the kit depends on when. The kit's own processes keep Python's defaults.
GC_THRESHOLDS = (20_000, 20, 20)


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
