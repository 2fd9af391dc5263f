"""The Lambda runtime's environment pool at its cap, without worker processes: a slot is taken with the pool's
own ``_acquire`` (as ``invoke`` does before a cold start), so nothing but a ``_release`` of the same function
or ``close()`` can wake a request waiting for one. Every wait is on an event or a join with a timeout."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from kit.errors import EngineError
from kit.lab.lambda_config import FunctionConfig
from kit.lab.lambda_invocation import InvocationLog
from kit.lab.runtime import LambdaRuntime, _Job, _Pool

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"
WAIT_S = 5.0


class CountedCondition(threading.Condition):
    """A pool's ``freed`` condition that says when a thread waits on it and counts the wake-ups."""

    def __init__(self, lock: Any) -> None:
        super().__init__(lock)
        self.waiting = threading.Event()
        self.woken = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting.set()  # set with the lock held: a release can only run once this thread waits
        notified = super().wait(timeout)
        self.woken += 1
        return notified


def _config(name: str) -> FunctionConfig:
    return FunctionConfig(
        function_name=name, handler="lab_probe.sleep", code_path=str(FUNCTIONS), region="us-east-2"
    )


def _job(config: FunctionConfig) -> _Job:
    return _Job(config, ("rev", "env"), "{}", None, {}, InvocationLog(config))


def _counted_pool(runtime: LambdaRuntime, config: FunctionConfig) -> CountedCondition:
    freed = CountedCondition(runtime._lock)
    runtime._pools[(config.region, config.account_id, config.function_name)] = _Pool(freed)
    return freed


class Waiter(threading.Thread):
    """A request asking for an environment; ``outcome`` is what ``_acquire`` gave or raised."""

    def __init__(self, runtime: LambdaRuntime, config: FunctionConfig) -> None:
        super().__init__(daemon=True)  # a waiter nobody wakes must not hold the test run open
        self.runtime, self.config = runtime, config
        self.outcome: object = "still waiting"

    def run(self) -> None:
        try:
            self.outcome = self.runtime._acquire(_job(self.config))
        except EngineError as exc:
            self.outcome = exc


@pytest.fixture
def runtime() -> Any:
    lab_runtime = LambdaRuntime(lambda *_: None, max_workers_per_function=1)
    yield lab_runtime
    lab_runtime.close()


def test_a_request_queued_at_the_cap_is_told_when_the_runtime_closes(runtime: LambdaRuntime) -> None:
    config = _config("a")
    freed = _counted_pool(runtime, config)
    assert runtime._acquire(_job(config)) is None  # the one slot, held: nobody will release it
    queued = Waiter(runtime, config)
    queued.start()
    assert freed.waiting.wait(WAIT_S)

    runtime.close()  # only close() can wake it now

    queued.join(WAIT_S)
    assert not queued.is_alive(), "a request waiting for an environment must not outlive the runtime"
    assert isinstance(queued.outcome, EngineError) and "closed" in str(queued.outcome)


def test_a_release_wakes_a_waiter_of_its_own_function_and_none_of_another(runtime: LambdaRuntime) -> None:
    a, b = _config("a"), _config("b")
    freed_a, freed_b = _counted_pool(runtime, a), _counted_pool(runtime, b)
    assert runtime._acquire(_job(a)) is None
    assert runtime._acquire(_job(b)) is None
    waiter_a, waiter_b = Waiter(runtime, a), Waiter(runtime, b)
    waiter_a.start()
    waiter_b.start()
    assert freed_a.waiting.wait(WAIT_S) and freed_b.waiting.wait(WAIT_S)

    runtime._release(a, None, None)  # function A's slot comes free

    waiter_a.join(WAIT_S)
    assert not waiter_a.is_alive() and waiter_a.outcome is None  # A's waiter took the slot (a cold start)
    with runtime._lock:  # B's waiter was never woken: it still waits, and nothing woke it in passing
        assert freed_b.woken == 0 and waiter_b.is_alive()
    assert freed_a.woken == 1
