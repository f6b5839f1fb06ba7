"""The engine in real time: worker threads on a SystemClock."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import pytest

from wftest import Engine, OrchestrationContext, SystemClock, Task, when_all
from wftest.errors import WaitTimeoutError


def double(ctx: Any, n: int) -> int:
    return n * 2


def fan_out(ctx: OrchestrationContext, n: int) -> Generator[Task[Any], Any, int]:
    results = yield when_all([ctx.call_activity(double, input=i) for i in range(n)])
    yield ctx.create_timer(timedelta(milliseconds=50))
    return sum(results)


def waits_forever(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, None]:
    yield ctx.wait_for_external_event("never")


def test_worker_threads_run_orchestrations_to_completion() -> None:
    with Engine(clock=SystemClock()).start(activity_threads=4) as engine:
        ids = [engine.client.schedule_new_orchestration(fan_out, input=10) for _ in range(5)]
        states = [engine.client.wait_for_orchestration_completion(i, timeout=30) for i in ids]
    assert [s.output for s in states] == [90] * 5


def test_wait_with_real_clock_times_out() -> None:
    with Engine(clock=SystemClock()).start(activity_threads=1) as engine:
        iid = engine.client.schedule_new_orchestration(waits_forever)
        with pytest.raises(WaitTimeoutError):
            engine.client.wait_for_orchestration_completion(iid, timeout=0.2)


def test_threads_refuse_a_virtual_clock() -> None:
    with pytest.raises(RuntimeError, match="real clock"):
        Engine().start()


def test_waiting_without_workers_on_a_real_clock_fails_at_once() -> None:
    engine = Engine(clock=SystemClock())
    iid = engine.client.schedule_new_orchestration(fan_out, input=1)
    with pytest.raises(RuntimeError, match=r"workers are not started; call engine\.start\(\)"):
        engine.client.wait_for_orchestration_completion(iid)
