"""Engine edge cases: results addressed to a finished execution, replaced instances, abandon behaviour."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import pytest

from wftest import (
    Engine,
    IdReusePolicy,
    OrchestrationContext,
    OrchestrationTerminatedError,
    Task,
    TaskFailedError,
)
from wftest.hooks import hookimpl

Gen = Generator[Task[Any], Any, Any]


def slow_child(ctx: OrchestrationContext, value: str) -> Gen:
    yield ctx.create_timer(timedelta(hours=1))
    return value


def parent(ctx: OrchestrationContext, label: str) -> Gen:
    result = yield ctx.call_sub_orchestrator(slow_child, input=label, instance_id=f"child-of-{label}")
    return result


def test_replaced_instance_ignores_results_meant_for_the_old_one() -> None:
    engine = Engine()
    engine.client.schedule_new_orchestration(parent, input="old", instance_id="p")
    engine.run_until_idle()  # the old child is running
    engine.client.schedule_new_orchestration(parent, input="new", instance_id="p",
                                             reuse_id_policy=IdReusePolicy.TERMINATE)
    state = engine.client.wait_for_orchestration_completion("p")
    assert state.output == "new"


def test_timer_of_a_previous_generation_does_not_reach_the_next() -> None:
    def races(ctx: OrchestrationContext, n: int) -> Gen:
        if n == 0:
            ctx.create_timer(timedelta(minutes=30))  # left behind when the generation continues as new
            yield ctx.create_timer(timedelta(minutes=10))
            ctx.continue_as_new(1)
            return None
        yield ctx.create_timer(timedelta(hours=1))
        return ctx.current_utc_datetime.isoformat()

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(races, input=0)
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == "2024-01-01T01:10:00"
    fired = [e for e in engine.history(iid) if e.HasField("timerFired")]
    assert len(fired) == 1


def test_terminated_child_fails_the_parent_task_with_a_matchable_type() -> None:
    def watcher(ctx: OrchestrationContext, _: Any) -> Gen:
        try:
            yield ctx.call_sub_orchestrator(slow_child, input="x", instance_id="kid")
        except TaskFailedError as err:
            return err.details.is_caused_by(OrchestrationTerminatedError)
        return "no error"

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(watcher)
    engine.run_until_idle()
    engine.client.terminate_orchestration("kid", output="stop")
    assert engine.client.wait_for_orchestration_completion(iid).output is True


def test_broken_hook_releases_the_activity_at_once() -> None:
    class Breaks:
        calls = 0

        @hookimpl
        def wftest_before_activity(self, task: Any) -> None:
            Breaks.calls += 1
            if Breaks.calls == 1:
                raise RuntimeError("hook bug")

    def greet(ctx: Any, _: Any) -> str:
        return "hi"

    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        return (yield ctx.call_activity(greet))

    engine = Engine()
    engine.hooks.register(Breaks())
    iid = engine.client.schedule_new_orchestration(wf)
    with pytest.raises(RuntimeError, match="hook bug"):
        engine.run_until_idle()
    # the task was released, not left locked for the lock timeout: it runs again right away
    assert engine.client.wait_for_orchestration_completion(iid, timeout=timedelta(seconds=0)).output == "hi"


def test_abandon_delay_grows_with_attempts() -> None:
    engine = Engine()
    delays = [engine.abandon_delay(n).total_seconds() for n in range(1, 9)]
    assert delays == sorted(delays) and delays[0] < delays[-1] <= 60


def test_stall_message_mentions_a_pending_timer_when_waiting_for_one() -> None:
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(slow_child, input="x")
    engine.run_until_idle()
    assert "timer at 2024-01-01T01:00:00" in engine.describe_waiting(iid)
