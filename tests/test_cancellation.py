"""Cooperative cancellation (docs/cancellation.md), black-box: the client on the engine (memory and sqlite
backends, virtual and real clocks) and the tester with mocks and the virtual clock."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Generator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from wftest import (
    CrashAfterActivity,
    DuplicateEvent,
    Engine,
    InstanceNotFoundError,
    MemoryBackend,
    NonDeterminismError,
    OrchestrationCancelledError,
    OrchestrationContext,
    Registry,
    Replayer,
    RetryPolicy,
    SqliteBackend,
    SystemClock,
    Task,
    TaskCancelledError,
    TaskFailedError,
    WorkflowTester,
    history,
    render_timeline,
    when_all,
    when_any,
)
from wftest.strategies import Schedule

Gen = Generator[Task[Any], Any, Any]
HOUR = timedelta(hours=1)


# -- activities and orchestrators --------------------------------------------------------------------


def reserve(ctx: Any, what: str) -> str:
    return f"reserved {what}"


def release(ctx: Any, what: str) -> str:
    return f"released {what}"


def cleanup(ctx: Any, what: Any) -> str:
    return f"cleaned {what}"


def waits_on_timer(ctx: OrchestrationContext, _: Any) -> Gen:
    try:
        yield ctx.create_timer(timedelta(days=1))
    except OrchestrationCancelledError as err:
        with ctx.disconnected():
            done = yield ctx.call_activity(cleanup, input="timer")
        return {"cancelled": err.reason, "cleanup": done}
    return "fired"


def lets_it_escape(ctx: OrchestrationContext, _: Any) -> Gen:
    yield ctx.create_timer(timedelta(days=1))
    return "fired"


def waits_on_activity(ctx: OrchestrationContext, _: Any) -> Gen:
    booking = ctx.call_activity(reserve, input="room")
    try:
        room = yield booking
    except OrchestrationCancelledError:
        with ctx.disconnected():
            room = yield booking  # the reservation that was running when the cancel came
            released = yield ctx.call_activity(release, input=room)
        return {"status": "cancelled", "room": room, "released": released}
    return {"status": "booked", "room": room}


def waits_on_event(ctx: OrchestrationContext, _: Any) -> Gen:
    approval = ctx.wait_for_external_event("approval")
    try:
        yield approval
    except OrchestrationCancelledError:
        return {"approval_cancelled": approval.is_cancelled, "approval_failed": approval.is_failed}
    return "approved"


def child_waits(ctx: OrchestrationContext, depth: int) -> Gen:
    """A chain of ``depth`` sub-orchestrations; the leaf waits a day, or cleans up when cancelled."""
    if depth > 0:
        grandchild = ctx.call_sub_orchestrator(child_waits, input=depth - 1)
        try:
            return (yield grandchild)
        except OrchestrationCancelledError:
            with ctx.disconnected():
                return (yield grandchild)  # cancelled too: wait for how it ends
    try:
        yield ctx.create_timer(timedelta(days=1))
        return "leaf fired"
    except OrchestrationCancelledError:
        with ctx.disconnected():
            return (yield ctx.call_activity(cleanup, input=f"depth {depth}"))


def parent_of_children(ctx: OrchestrationContext, depth: int) -> Gen:
    child = ctx.call_sub_orchestrator(child_waits, input=depth, instance_id="child")
    try:
        return (yield child)
    except OrchestrationCancelledError:
        with ctx.disconnected():
            child_output = yield child  # the child was cancelled too; wait for how it ended
        return {"parent": "cancelled", "child": child_output}


def child_escapes(ctx: OrchestrationContext, _: Any) -> Gen:
    yield ctx.create_timer(timedelta(days=1))


def parent_of_escaping_child(ctx: OrchestrationContext, _: Any) -> Gen:
    child = ctx.call_sub_orchestrator(child_escapes, instance_id="child")
    try:
        yield child
    except OrchestrationCancelledError:
        with ctx.disconnected():
            try:
                yield child
            except TaskFailedError as err:
                return {"child_error": err.details.error_type}
    return "child done"


def new_calls_after_cancel(ctx: OrchestrationContext, _: Any) -> Gen:
    try:
        yield ctx.wait_for_external_event("never")
    except OrchestrationCancelledError:
        pass
    refused = {
        "activity": ctx.call_activity(cleanup, input="x"),
        "timer": ctx.create_timer(HOUR),
        "sub_orchestrator": ctx.call_sub_orchestrator(child_escapes),
        "event": ctx.wait_for_external_event("late"),
    }
    outcome: dict[str, Any] = {name: task.is_failed for name, task in refused.items()}
    for name, task in refused.items():
        try:
            yield task
        except OrchestrationCancelledError as err:
            outcome[name] = f"refused: {err}"
    with ctx.disconnected():
        outcome["cleanup"] = yield ctx.call_activity(cleanup, input="after")
    return outcome


# -- the client on the engine ------------------------------------------------------------------------


def waiting_on_timer() -> tuple[Engine, str]:
    """An engine whose ``waits_on_timer`` instance has run its first step (it now waits on its timer)."""
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(waits_on_timer)
    engine.run_until_idle()
    return engine, iid


def test_cancel_raises_at_the_timer_wait_and_cleanup_runs_in_disconnected() -> None:
    engine, iid = waiting_on_timer()
    engine.client.cancel_orchestration(iid, reason="customer left")
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.runtime_status == "COMPLETED"
    assert state.output == {"cancelled": "customer left", "cleanup": "cleaned timer"}
    assert engine.clock.now() == state.created_at  # the day-long timer was not waited for


def test_the_cancel_is_an_event_raised_in_history_at_the_point_it_was_processed() -> None:
    engine, iid = waiting_on_timer()
    engine.client.cancel_orchestration(iid, reason="customer left")
    engine.client.wait_for_orchestration_completion(iid)
    kinds = [(e.WhichOneof("eventType"), e.eventRaised.name) for e in engine.history(iid)]
    cancel_at = kinds.index(("eventRaised", "wftest.cancel"))
    assert kinds[cancel_at - 1][0] == "orchestratorStarted"  # processed as the first event of step 2
    assert kinds[cancel_at + 1][0] == "taskScheduled"  # the cleanup activity it led to
    raised = engine.history(iid)[cancel_at].eventRaised
    assert raised.input.value == '{"reason": "customer left"}'


def test_an_escaping_cancellation_ends_the_instance_failed_with_the_error_type() -> None:
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(lets_it_escape)
    engine.run_until_idle()
    engine.client.cancel_orchestration(iid, reason="shutting down")
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.runtime_status == "FAILED"
    assert state.failure_details is not None
    assert state.failure_details.error_type == "wftest.errors.OrchestrationCancelledError"
    assert "was cancelled (reason: shutting down)" in state.failure_details.message


def test_an_activity_running_at_the_cancel_finishes_and_its_result_is_delivered() -> None:
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(waits_on_activity)
    engine.run_until_idle(limit=1)  # the first step schedules the reservation; it has not run yet
    engine.client.cancel_orchestration(iid)
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == {"status": "cancelled", "room": "reserved room", "released": "released reserved room"}


def test_cancel_while_waiting_for_an_event_fails_the_wait_and_later_events_are_buffered() -> None:
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(waits_on_event)
    engine.run_until_idle()
    engine.client.cancel_orchestration(iid)
    engine.client.raise_orchestration_event(iid, "approval", data=True)
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == {"approval_cancelled": True, "approval_failed": True}


def test_sub_orchestrations_are_cancelled_with_their_parent_recursively() -> None:
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(parent_of_children, input=2, instance_id="root")
    engine.run_until_idle()
    assert engine.client.get_orchestration_state("child:0001") is not None  # the grandchild runs
    engine.client.cancel_orchestration(iid, reason="stop all")
    state = engine.client.wait_for_orchestration_completion(iid)
    # each level's wait was interrupted; the leaf cleaned up, and each parent waited for its child's result
    assert state.output == {"parent": "cancelled", "child": "cleaned depth 0"}
    for child_id in ("child", "child:0001"):
        child_history = engine.history(child_id)
        assert any(e.eventRaised.name == "wftest.cancel" and e.eventRaised.input.value == '{"reason": "stop all"}'
                   for e in child_history), render_timeline(child_history)
    sent = [e.eventSent for e in engine.history("root") if e.HasField("eventSent")]
    assert [(s.instanceId, s.name) for s in sent] == [("child", "wftest.cancel")]


def test_a_child_that_lets_the_cancel_escape_fails_its_parents_task() -> None:
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(parent_of_escaping_child)
    engine.run_until_idle()
    engine.client.cancel_orchestration(iid)
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == {"child_error": "wftest.errors.OrchestrationCancelledError"}
    child = engine.client.get_orchestration_state("child")
    assert child is not None and child.runtime_status == "FAILED"


def test_new_calls_after_a_cancel_fail_at_once_and_schedule_nothing() -> None:
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(new_calls_after_cancel)
    engine.run_until_idle()
    engine.client.cancel_orchestration(iid)
    state = engine.client.wait_for_orchestration_completion(iid)
    output = state.output
    assert output["cleanup"] == "cleaned after"
    for name in ("activity", "timer", "sub_orchestrator", "event"):
        assert output[name].startswith("refused: "), output[name]
    assert "call_activity('cleanup') failed at once" in output["activity"]
    assert "create_timer(2024-01-01T01:00:00) failed at once" in output["timer"]
    assert "call_sub_orchestrator('child_escapes') failed at once" in output["sub_orchestrator"]
    assert "wait_for_external_event('late') failed at once" in output["event"]
    scheduled = [(e.eventId, e.taskScheduled.name) for e in engine.history(iid) if e.HasField("taskScheduled")]
    assert scheduled == [(1, "cleanup")]  # refused calls took no sequence number
    assert [s.instance_id for s in engine.client.get_all_orchestration_states()] == [iid]


def test_cancelling_a_finished_instance_changes_nothing() -> None:
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(waits_on_timer)
    engine.advance(timedelta(days=2))
    before = engine.history(iid)
    engine.client.cancel_orchestration(iid)
    engine.run_until_idle()
    state = engine.client.get_orchestration_state(iid)
    assert state is not None and state.runtime_status == "COMPLETED" and state.output == "fired"
    assert engine.history(iid) == before


def test_cancelling_an_unknown_instance_is_a_clear_error() -> None:
    engine = Engine()
    with pytest.raises(InstanceNotFoundError, match="cannot cancel orchestration instance 'nope': no instance"):
        engine.client.cancel_orchestration("nope")


def test_a_cancel_while_suspended_takes_effect_on_resume() -> None:
    engine, iid = waiting_on_timer()
    engine.client.suspend_orchestration(iid)
    engine.run_until_idle()
    engine.client.cancel_orchestration(iid, reason="while suspended")
    engine.run_until_idle()
    state = engine.client.get_orchestration_state(iid)
    assert state is not None and state.runtime_status == "SUSPENDED"
    engine.client.resume_orchestration(iid)
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == {"cancelled": "while suspended", "cleanup": "cleaned timer"}


def test_a_second_cancel_is_ignored() -> None:
    engine, iid = waiting_on_timer()
    engine.client.cancel_orchestration(iid, reason="first")
    engine.client.cancel_orchestration(iid, reason="second")
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == {"cancelled": "first", "cleanup": "cleaned timer"}


def test_a_cancel_before_a_delayed_start_is_seen_at_the_first_wait() -> None:
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(waits_on_timer, start_at=engine.clock.now() + HOUR)
    engine.client.cancel_orchestration(iid, reason="never mind")
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == {"cancelled": "never mind", "cleanup": "cleaned timer"}


def test_raising_the_reserved_event_from_any_client_is_a_cancel() -> None:
    # what a durabletask SDK client can do through the sidecar, which has no cancel call
    engine, iid = waiting_on_timer()
    engine.client.raise_orchestration_event(iid, "WFTEST.Cancel", data="from a durabletask client")
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == {"cancelled": "from a durabletask client", "cleanup": "cleaned timer"}


def test_a_retried_call_waiting_for_its_next_attempt_ends_with_the_cancel() -> None:
    calls: list[int] = []

    def flaky(ctx: Any, _: Any) -> None:
        calls.append(1)
        raise ConnectionError("down")

    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        policy = RetryPolicy(first_retry_interval=HOUR, max_number_of_attempts=5)
        try:
            yield ctx.call_activity(flaky, retry_policy=policy)
        except OrchestrationCancelledError:
            return "cancelled between attempts"

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(wf)
    engine.run_until_idle()  # attempt 1 failed; the retry timer waits
    engine.client.cancel_orchestration(iid)
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == "cancelled between attempts"
    assert len(calls) == 1


def test_a_call_that_fails_after_the_cancel_is_not_retried() -> None:
    calls: list[int] = []

    def flaky(ctx: Any, _: Any) -> None:
        calls.append(1)
        raise ConnectionError("down")

    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        task = ctx.call_activity(flaky, retry_policy=RetryPolicy(first_retry_interval=HOUR, max_number_of_attempts=5))
        try:
            yield task
        except OrchestrationCancelledError:
            with ctx.disconnected():
                try:
                    yield task
                except TaskFailedError as err:
                    return f"gave up: {err.details.message}"

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(wf)
    engine.run_until_idle(limit=1)  # attempt 1 scheduled, not run yet
    engine.client.cancel_orchestration(iid)
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == "gave up: down"
    assert len(calls) == 1


def test_tasks_created_in_disconnected_before_the_cancel_are_not_cancelled() -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        with ctx.disconnected():
            grace = ctx.create_timer(HOUR)
        try:
            yield ctx.create_timer(timedelta(days=1))
        except OrchestrationCancelledError:
            with ctx.disconnected():
                yield grace
            return {"grace_cancelled": grace.is_cancelled, "at": ctx.current_utc_datetime.isoformat()}

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(wf)
    engine.run_until_idle()
    engine.client.cancel_orchestration(iid)
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == {"grace_cancelled": False, "at": "2024-01-01T01:00:00"}


def test_a_wait_inside_disconnected_is_not_interrupted_by_the_cancel() -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        with ctx.disconnected():
            yield ctx.create_timer(HOUR)  # the cancel arrives during this wait
        assert ctx.is_cancelled
        try:
            yield ctx.create_timer(HOUR)
        except OrchestrationCancelledError:
            return "noticed after the shielded wait"

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(wf)
    engine.run_until_idle()
    engine.client.cancel_orchestration(iid)
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == "noticed after the shielded wait"
    assert state.completed_at == state.created_at + HOUR


def test_async_orchestrators_are_cancelled_at_their_await() -> None:
    async def wf(ctx: OrchestrationContext, _: Any) -> Any:
        try:
            await ctx.create_timer(timedelta(days=1))
        except OrchestrationCancelledError:
            with ctx.disconnected():
                return await ctx.call_activity(cleanup, input="async")
        return "fired"

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(wf)
    engine.run_until_idle()
    engine.client.cancel_orchestration(iid)
    assert engine.client.wait_for_orchestration_completion(iid).output == "cleaned async"


def test_code_that_keeps_waiting_after_the_cancel_fails_instead_of_looping_forever() -> None:
    def stubborn(ctx: OrchestrationContext, _: Any) -> Gen:
        while True:
            try:
                yield ctx.create_timer(HOUR)
            except OrchestrationCancelledError:
                pass

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(stubborn)
    engine.run_until_idle()
    engine.client.cancel_orchestration(iid)
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.runtime_status == "FAILED" and state.failure_details is not None
    assert "catch OrchestrationCancelledError and wait again in a loop" in state.failure_details.message


def test_a_real_clock_engine_delivers_the_result_of_an_activity_running_at_the_cancel() -> None:
    started, finish = threading.Event(), threading.Event()

    def slow_reserve(ctx: Any, what: str) -> str:
        started.set()
        assert finish.wait(30)
        return f"reserved {what}"

    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        booking = ctx.call_activity(slow_reserve, input="seat")
        try:
            return (yield booking)
        except OrchestrationCancelledError:
            with ctx.disconnected():
                seat = yield booking
                return {"released": (yield ctx.call_activity(release, input=seat))}

    with Engine(clock=SystemClock()).start(activity_threads=2) as engine:
        iid = engine.client.schedule_new_orchestration(wf)
        assert started.wait(30)
        engine.client.cancel_orchestration(iid)
        engine.client.wait_for_orchestration_start(iid, timeout=30)
        finish.set()
        state = engine.client.wait_for_orchestration_completion(iid, timeout=30)
    assert state.output == {"released": "released reserved seat"}


# -- memory and sqlite backends ----------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    return Engine(backend=MemoryBackend() if request.param == "memory" else SqliteBackend(tmp_path / "wf.db"))


def test_cancellation_of_a_tree_works_on_every_backend(engine: Engine) -> None:
    iid = engine.client.schedule_new_orchestration(parent_of_children, input=1, instance_id="root")
    engine.run_until_idle()
    engine.client.cancel_orchestration(iid, reason="backend")
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == {"parent": "cancelled", "child": "cleaned depth 0"}
    with pytest.raises(InstanceNotFoundError):
        engine.client.cancel_orchestration("missing")


def test_memory_and_sqlite_record_identical_cancellation_histories(tmp_path: Path) -> None:
    def run(backend: Any) -> dict[str, list[bytes]]:
        engine = Engine(backend=backend)
        iid = engine.client.schedule_new_orchestration(parent_of_children, input=1, instance_id="root")
        engine.run_until_idle()
        engine.client.cancel_orchestration(iid, reason="same")
        engine.client.wait_for_orchestration_completion(iid)
        return {s.instance_id: [e.SerializeToString() for e in engine.history(s.instance_id)]
                for s in engine.client.get_all_orchestration_states()}

    assert run(MemoryBackend()) == run(SqliteBackend(tmp_path / "wf.db"))


# -- the tester: mocks and the virtual clock ---------------------------------------------------------


def test_tester_cancel_at_a_virtual_time_while_a_mocked_activity_runs() -> None:
    tester = WorkflowTester()
    tester.on_activity(reserve).returns("room 12").after(2 * HOUR)
    tester.on_activity(release).returns("released room 12")
    tester.at(HOUR, lambda t: t.cancel("changed plans"))
    result = tester.run(waits_on_activity)
    assert result.output == {"status": "cancelled", "room": "room 12", "released": "released room 12"}
    assert [c.at - tester.start_time for c in tester.calls(release)] == [2 * HOUR]  # after the reservation came
    tester.assert_expectations()


def test_tester_cancel_accepts_the_bound_method_as_an_at_action() -> None:
    tester = WorkflowTester()
    tester.at(HOUR, tester.cancel)
    result = tester.run(waits_on_timer)
    assert result.output == {"cancelled": None, "cleanup": "cleaned timer"}
    assert result.finished_at - result.started_at == HOUR


def test_tester_cancel_reaches_mocked_and_real_children() -> None:
    def two_children(ctx: OrchestrationContext, _: Any) -> Gen:
        mocked = ctx.call_sub_orchestrator(child_escapes, instance_id="mocked")
        real = ctx.call_sub_orchestrator(child_waits, input=0, instance_id="real")
        try:
            yield when_all([mocked, real])
        except OrchestrationCancelledError:
            with ctx.disconnected():
                return (yield when_all([mocked, real]))

    tester = WorkflowTester()
    tester.on_sub_orchestrator(child_escapes).returns("mocked child output").after(3 * HOUR)
    tester.at(HOUR, lambda t: t.cancel())
    result = tester.run(two_children)
    assert result.output == ["mocked child output", "cleaned depth 0"]
    assert result.engine.undelivered == []  # the cancel for the mocked child was dropped, not reported


def test_tester_cancel_of_a_finished_run_is_a_no_op() -> None:
    tester = WorkflowTester()
    tester.at(timedelta(days=3), lambda t: t.cancel())
    result = tester.run(waits_on_timer, instance_id="done")
    assert result.output == "fired"


@pytest.mark.parametrize(("fault", "script"), [
    (CrashAfterActivity(), "fa:crash-after;fa-;fa:crash-after"),  # the reservation, then the release, run twice
    (DuplicateEvent(), "fe:duplicate"),  # the cancel is delivered twice
])
def test_tester_cancellation_survives_injected_faults(fault: Any, script: str) -> None:
    tester = WorkflowTester()
    tester.on_activity(reserve).returns("room").after(2 * HOUR)
    tester.on_activity(release).returns("released")
    tester.at(HOUR, lambda t: t.cancel())
    schedule = Schedule.from_string(script, faults=[fault])
    result = tester.run(waits_on_activity, schedule=schedule)
    assert result.output == {"status": "cancelled", "room": "room", "released": "released"}
    assert [d.value for d in schedule.decisions if d.value.startswith("f")][:3] == script.split(";")
    if isinstance(fault, CrashAfterActivity):
        assert (len(tester.calls(reserve)), len(tester.calls(release))) == (2, 2)


# -- task.cancel() -----------------------------------------------------------------------------------


def test_a_cancelled_timer_raises_task_cancelled_when_waited_for_and_its_firing_is_ignored() -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        reminder = ctx.create_timer(HOUR)
        yield ctx.create_timer(timedelta(minutes=1))  # the reminder is now scheduled in the backend
        assert reminder.cancel() and reminder.is_cancelled and not reminder.cancel()
        outcome: dict[str, Any] = {}
        try:
            yield reminder
        except TaskCancelledError as err:
            outcome["yield"] = str(err)
        yield ctx.create_timer(2 * HOUR)  # the reminder fires meanwhile; it changes nothing
        outcome["at"] = ctx.current_utc_datetime.isoformat()
        return outcome

    result = WorkflowTester().run(wf)  # the tester also replays the final history (net 2)
    assert result.output == {"yield": "the timer (fire at 2024-01-01T01:00:00) was cancelled by the orchestrator "
                                      "(task.cancel())", "at": "2024-01-01T02:01:00"}
    fired = [e.timerFired.timerId for e in result.history if e.HasField("timerFired")]
    assert fired == [2, 1, 3]  # the cancelled timer's TimerFired is in history, ignored on replay too


def test_a_timer_cancelled_in_the_step_that_created_it_is_never_scheduled() -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        ctx.create_timer(HOUR).cancel()
        return (yield ctx.create_timer(timedelta(minutes=5)))

    result = WorkflowTester().run(wf)
    created = [e.eventId for e in result.history if e.HasField("timerCreated")]
    assert created == [2]


def test_when_all_over_a_cancelled_task_fails_and_when_any_counts_it_finished() -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        event = ctx.wait_for_external_event("go")
        event.cancel()
        winner = yield when_any([event, ctx.create_timer(HOUR)])
        try:
            yield when_all([event, ctx.create_timer(HOUR)])
        except TaskCancelledError:
            return {"winner_is_event": winner is event, "when_all": "failed"}

    result = WorkflowTester().run(wf)
    assert result.output == {"winner_is_event": True, "when_all": "failed"}


def test_cancelling_an_event_wait_with_a_timeout_cancels_its_timer() -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        approval = ctx.wait_for_external_event("approval", timeout=HOUR)
        yield ctx.create_timer(timedelta(minutes=1))
        approval.cancel()
        yield ctx.create_timer(2 * HOUR)  # the timeout timer fires meanwhile: nothing happens
        late = yield ctx.wait_for_external_event("approval")
        return {"late": late}

    tester = WorkflowTester()
    tester.at(3 * HOUR, lambda t: t.raise_event("approval", "yes"))
    result = tester.run(wf)
    assert result.output == {"late": "yes"}  # the cancelled wait did not consume the event


# -- history: replay, files, timelines, non-determinism ------------------------------------------------


def _cancelled_run(orchestrator: Any = waits_on_activity) -> Any:
    tester = WorkflowTester()
    tester.on_activity(reserve).returns("room").after(2 * HOUR)
    tester.at(HOUR, lambda t: t.cancel("replay me"))
    return tester.run(orchestrator)


def test_a_history_with_a_cancel_replays_cleanly_from_a_saved_file(tmp_path: Path) -> None:
    result = _cancelled_run()
    path = history.save(tmp_path / "cancelled.history.json", result.history)
    loaded = history.load(path)
    assert [e.SerializeToString() for e in loaded.events] == [e.SerializeToString() for e in result.history]
    registry = Registry()
    registry.add_orchestrator(waits_on_activity)
    replayed = Replayer(registry).replay(path)
    assert replayed.ok, replayed.report()


def test_the_timeline_shows_the_cancel_and_its_reason() -> None:
    lines = _cancelled_run().timeline().splitlines()
    cancel = next(line for line in lines if "wftest.cancel" in line)
    assert cancel.split() == ["EventRaised", "wftest.cancel", 'data={"reason":', '"replay', 'me"}']


def test_code_that_cleans_up_differently_is_caught_as_non_determinism() -> None:
    recorded = _cancelled_run().history

    def changed(ctx: OrchestrationContext, _: Any) -> Gen:  # releases nothing: the old cleanup is not reproduced
        booking = ctx.call_activity(reserve, input="room")
        try:
            room = yield booking
        except OrchestrationCancelledError:
            with ctx.disconnected():
                room = yield booking
                yield ctx.call_activity(cleanup, input=room)
            return {"status": "cancelled"}
        return {"status": "booked", "room": room}

    registry = Registry()
    registry.add_named_orchestrator("waits_on_activity", changed)
    replayed = Replayer(registry).replay(recorded)
    assert isinstance(replayed.error, NonDeterminismError)
    assert replayed.error.expected is not None and "release" in replayed.error.expected
    assert replayed.error.actual is not None and "cleanup" in replayed.error.actual


def test_code_that_no_longer_catches_the_cancel_is_caught_as_non_determinism() -> None:
    recorded = _cancelled_run().history

    def ignores(ctx: OrchestrationContext, _: Any) -> Gen:
        return (yield ctx.call_activity(reserve, input="room"))

    registry = Registry()
    registry.add_named_orchestrator("waits_on_activity", ignores)
    replayed = Replayer(registry).replay(recorded)
    assert isinstance(replayed.error, NonDeterminismError)
    assert "FAILED" in str(replayed.error.actual)


def test_code_that_reacts_the_same_way_replays_after_a_refactoring() -> None:
    recorded = _cancelled_run().history

    def refactored(ctx: OrchestrationContext, _: Any) -> Gen:  # same calls, same order, other structure
        booking = ctx.call_activity(reserve, input="room")
        try:
            return {"status": "booked", "room": (yield booking)}
        except OrchestrationCancelledError:
            pass
        with ctx.disconnected():
            room = yield booking
            released = yield ctx.call_activity(release, input=room)
        return {"status": "cancelled", "room": room, "released": released}

    registry = Registry()
    registry.add_named_orchestrator("waits_on_activity", refactored)
    assert Replayer(registry).replay(recorded).ok


def test_the_example_of_docs_cancellation_runs() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "cancellation.md").read_text(encoding="utf-8")
    first = re.findall(r"```python\n(.*?)```", doc, re.S)[0]
    exec(compile(first, "docs/cancellation.md (python block 1)", "exec"), {"__name__": "__main__"})  # it asserts


# -- saved histories: the CLI and the pytest plugin's history items ------------------------------------

BOOKING_APP = '''
from wftest import OrchestrationCancelledError, Registry

def reserve(ctx, what):
    return f"reserved {what}"

def release(ctx, what):
    return f"released {what}"

def booking(ctx, _):
    task = ctx.call_activity(reserve, input="room")
    try:
        yield ctx.wait_for_external_event("confirm")
    except OrchestrationCancelledError:
        with ctx.disconnected():
            yield ctx.call_activity(release, input=(yield task))
        return "cancelled"

registry = Registry()
registry.add_orchestrator(booking)
'''


def _save_cancelled_booking(folder: Path, app: Any) -> None:
    engine = Engine(registry=app.registry)
    iid = engine.client.schedule_new_orchestration("booking", instance_id="booking-1")
    engine.run_until_idle()
    engine.client.cancel_orchestration(iid, reason="saved")
    assert engine.client.wait_for_orchestration_completion(iid).output == "cancelled"
    folder.mkdir()
    history.save(folder / "booking.history.json", engine.history(iid))


def _import_app(path: Path, source: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    import importlib

    (path / "booking_app.py").write_text(source)
    monkeypatch.syspath_prepend(str(path))
    monkeypatch.delitem(sys.modules, "booking_app", raising=False)
    return importlib.import_module("booking_app")


def test_wftest_replay_checks_a_saved_cancelled_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from wftest.cli import main

    _save_cancelled_booking(tmp_path / "histories", _import_app(tmp_path, BOOKING_APP, monkeypatch))
    assert main(["show", str(tmp_path / "histories" / "booking.history.json")]) == 0
    cancel_line = next(line for line in capsys.readouterr().out.splitlines() if "wftest.cancel" in line)
    assert cancel_line.split() == ["EventRaised", "wftest.cancel", 'data={"reason":', '"saved"}']
    assert main(["replay", "--registry", "booking_app:registry", str(tmp_path / "histories")]) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out
    _import_app(tmp_path, BOOKING_APP.replace("input=(yield task)", "input='all rooms'"), monkeypatch)
    assert main(["replay", "--registry", "booking_app:registry", str(tmp_path / "histories")]) == 1
    assert "0 passed, 1 failed" in capsys.readouterr().out


def test_the_pytest_plugin_replays_a_saved_cancelled_history(pytester: pytest.Pytester,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _save_cancelled_booking(pytester.path / "histories", _import_app(pytester.path, BOOKING_APP, monkeypatch))
    monkeypatch.delitem(sys.modules, "booking_app", raising=False)  # the run imports it afresh
    pytester.makeini("[pytest]\nwftest_histories = histories\nwftest_registry = booking_app:registry\n")
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*booking.history.json::booking-1 PASSED*"])
