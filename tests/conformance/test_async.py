"""async def orchestrators (awaiting the same tasks) and async activities."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from wftest import (
    ActivityContext,
    Engine,
    OrchestrationContext,
    OrchestrationStatus,
    TaskFailedError,
    when_all,
    when_any,
)

from ._support import ids


def add_one(ctx: ActivityContext, value: int) -> int:
    return value + 1


async def async_double(ctx: ActivityContext, value: int) -> int:
    await asyncio.sleep(0)
    return value * 2


async def async_fails(ctx: ActivityContext, value: str) -> None:
    await asyncio.sleep(0)
    raise ValueError(f"async failure {value}")


def test_async_orchestrator_awaits_activities_in_sequence() -> None:
    # given an async def orchestrator awaiting two activities
    async def async_chain(ctx: OrchestrationContext, value: int) -> Any:
        first = await ctx.call_activity(add_one, input=value)
        second = await ctx.call_activity(add_one, input=first)
        return second

    engine = Engine()
    # when it runs
    iid = engine.client.schedule_new_orchestration(async_chain, input=1, instance_id="async")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then it behaves like the generator version, history included
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.output == 3
    assert ids(engine.history(iid)) == [
        "ExecutionStarted", "TaskScheduled#1", "TaskCompleted#1", "TaskScheduled#2", "TaskCompleted#2",
        "ExecutionCompleted",
    ]


def test_async_orchestrator_awaits_timers_when_all_and_when_any() -> None:
    # given an async orchestrator using a timer, a fan-out and a race
    async def async_mixed(ctx: OrchestrationContext, _: None) -> Any:
        await ctx.create_timer(timedelta(hours=1))
        values = await when_all([ctx.call_activity(add_one, input=i) for i in range(3)])
        event = ctx.wait_for_external_event("never")
        timer = ctx.create_timer(timedelta(minutes=5))
        winner = await when_any([event, timer])
        return [values, winner is timer, ctx.current_utc_datetime.isoformat()]

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(async_mixed)
    # then every kind of task can be awaited
    assert engine.client.wait_for_orchestration_completion(iid).output == [[1, 2, 3], True, "2024-01-01T01:05:00"]


def test_async_orchestrator_waits_for_external_events() -> None:
    async def async_waiter(ctx: OrchestrationContext, _: None) -> Any:
        value = await ctx.wait_for_external_event("go")
        return value

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(async_waiter)
    engine.run_until_idle()
    engine.client.raise_orchestration_event(iid, "go", data="went")
    assert engine.client.wait_for_orchestration_completion(iid).output == "went"


def test_async_orchestrator_catches_task_failures() -> None:
    # given an async orchestrator catching an async activity's failure
    async def async_catches(ctx: OrchestrationContext, _: None) -> Any:
        try:
            await ctx.call_activity(async_fails, input="x")
        except TaskFailedError as err:
            return err.details.error_type
        return None

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(async_catches)
    # then the failure is raised at the await
    assert engine.client.wait_for_orchestration_completion(iid).output == "builtins.ValueError"


def test_async_orchestrator_that_raises_fails() -> None:
    async def async_broken(ctx: OrchestrationContext, _: None) -> Any:
        await ctx.create_timer(timedelta(seconds=1))
        raise RuntimeError("async orchestrator broke")

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(async_broken)
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert state.failure_details.message == "async orchestrator broke"


def test_async_activity_result_is_awaited_by_the_engine() -> None:
    # given a generator orchestrator calling an async def activity
    def calls_async(ctx: OrchestrationContext, value: int):  # type: ignore[no-untyped-def]
        result = yield ctx.call_activity(async_double, input=value)
        return result

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(calls_async, input=21)
    # then the activity's awaited value is the result
    assert engine.client.wait_for_orchestration_completion(iid).output == 42


def test_async_activity_failure_is_recorded_with_its_details() -> None:
    def calls_failing_async(ctx: OrchestrationContext, _: None):  # type: ignore[no-untyped-def]
        yield ctx.call_activity(async_fails, input="y")

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(calls_failing_async)
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert "async failure y" in state.failure_details.message
    assert state.failure_details.is_caused_by(ValueError)


def test_async_orchestrator_replays_on_a_stateless_engine() -> None:
    # given a stateless engine (every step replays the coroutine from the start)
    seen: list[bool] = []

    async def async_replayed(ctx: OrchestrationContext, _: None) -> Any:
        seen.append(ctx.is_replaying)
        a = await ctx.call_activity(async_double, input=1)
        b = await ctx.call_activity(async_double, input=a)
        return [a, b, ctx.is_replaying]

    engine = Engine(sticky=False)
    iid = engine.client.schedule_new_orchestration(async_replayed)
    # then it completes, having been replayed in later steps
    assert engine.client.wait_for_orchestration_completion(iid).output == [2, 4, False]
    assert seen == [False, True, True]
