"""Work items seen from the engine: locks with expiry, atomic steps, abandon delays, undelivered messages."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest

from wftest import (
    ActivityContext,
    Engine,
    LockLostError,
    MemoryBackend,
    OrchestrationContext,
    OrchestrationStatus,
    VirtualClock,
)
from wftest.backends import StepUpdate
from wftest.hooks import hookimpl

from ._support import Gen, described


def greet(ctx: ActivityContext, name: str) -> str:
    return f"hi {name}"


def greeter(ctx: OrchestrationContext, name: str) -> Gen:
    result = yield ctx.call_activity(greet, input=name)
    return result


def test_expired_lock_is_taken_over_and_the_lost_owner_cannot_commit() -> None:
    # given two engines on one backend, and engine A that locked the instance's work and went silent
    backend = MemoryBackend()
    a = Engine(backend=backend, lock_timeout=timedelta(minutes=1))
    b = Engine(backend=backend, clock=VirtualClock(), lock_timeout=timedelta(minutes=1))
    iid = a.client.schedule_new_orchestration(greeter, input="x", instance_id="locked")
    stale = backend.fetch_orchestration_work_item(a.owner, a.clock.now(), a.lock_timeout)
    assert stale is not None and stale.owner == a.owner
    # when B looks before the lock expires, then it finds nothing
    assert b.run_until_idle() == 0
    # when the lock has expired, then B takes the work over and finishes the instance
    b.clock.advance(timedelta(minutes=2))
    b.add_activity(greet)
    b.add_orchestrator(greeter)
    assert b.client.wait_for_orchestration_completion(iid).output == "hi x"
    history = described(b.history(iid))
    # and A's late commit fails with LockLostError and writes nothing
    with pytest.raises(LockLostError):
        backend.complete_orchestration_work_item(stale, StepUpdate(record=stale.record, new_history=[]),
                                                 b.clock.now())
    assert described(b.history(iid)) == history


def test_a_step_that_breaks_writes_nothing_and_is_retried_after_a_delay() -> None:
    # given an engine whose first orchestration step breaks (a hook raises)
    class BreaksOnce:
        calls = 0

        @hookimpl
        def wftest_before_orchestration_step(self, instance_id: str, events: Any) -> None:
            BreaksOnce.calls += 1
            if BreaksOnce.calls == 1:
                raise RuntimeError("worker crashed")

    engine = Engine()
    engine.hooks.register(BreaksOnce())
    iid = engine.client.schedule_new_orchestration(greeter, input="y", instance_id="retried")
    # when the step runs and breaks
    with pytest.raises(RuntimeError, match="worker crashed"):
        engine.run_until_idle()
    # then nothing was written and the work is hidden for the abandon delay
    assert engine.history(iid) == []
    assert engine.client.get_orchestration_state(iid).runtime_status == OrchestrationStatus.PENDING
    assert engine.run_until_idle() == 0
    # and it runs again once the delay has passed
    engine.advance(engine.abandon_delay(1))
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == "hi y"


def test_abandon_delay_grows_with_the_retry_count() -> None:
    engine = Engine()
    delays = [engine.abandon_delay(n) for n in range(1, 6)]
    assert all(later > earlier for earlier, later in itertools.pairwise(delays))


def test_abandoned_activity_work_is_visible_again_at_once() -> None:
    # given an activity whose first delivery breaks before running (a hook raises)
    class BreaksActivityOnce:
        calls = 0

        @hookimpl
        def wftest_before_activity(self, task: Any) -> None:
            BreaksActivityOnce.calls += 1
            if BreaksActivityOnce.calls == 1:
                raise RuntimeError("activity worker crashed")

    engine = Engine()
    engine.hooks.register(BreaksActivityOnce())
    iid = engine.client.schedule_new_orchestration(greeter, input="z")
    with pytest.raises(RuntimeError, match="activity worker crashed"):
        engine.run_until_idle()
    # then without moving the clock, the activity runs again
    engine.run_until_idle()
    state = engine.client.get_orchestration_state(iid)
    assert state.runtime_status == OrchestrationStatus.COMPLETED and state.output == "hi z"


def test_message_to_an_instance_that_does_not_exist_is_reported() -> None:
    # given an orchestrator that sends an event to an unknown instance
    def sends_to_nobody(ctx: OrchestrationContext, _: None) -> str:
        ctx.send_event("nobody", "hello", data=1)
        return "sent"

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(sends_to_nobody, instance_id="sender")
    # when it runs
    assert engine.client.wait_for_orchestration_completion(iid).output == "sent"
    # then the message is not lost silently: the engine reports it
    assert len(engine.undelivered) == 1
    lost = engine.undelivered[0]
    assert (lost.sender_instance_id, lost.target_instance_id) == ("sender", "nobody")
    assert "nobody" in str(lost) and "hello" in str(lost)
