"""Terminate, suspend/resume, purge, and reusing instance ids."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from wftest import (
    ActivityContext,
    Engine,
    IdReusePolicy,
    InstanceAlreadyExistsError,
    InstanceNotCompletedError,
    InstanceNotFoundError,
    OrchestrationContext,
    OrchestrationStatus,
    when_all,
)

from ._support import Gen, kinds, of_kind


def echo(ctx: ActivityContext, value: object) -> object:
    return value


def waits_forever(ctx: OrchestrationContext, _: object) -> Gen:
    value = yield ctx.wait_for_external_event("never")
    return value


def returns_input(ctx: OrchestrationContext, value: object) -> Gen:
    yield ctx.create_timer(timedelta(minutes=1))
    return value


def parent_of_two(ctx: OrchestrationContext, _: None) -> Gen:
    quick = ctx.call_sub_orchestrator(returns_input, input="quick", instance_id="quick-child")
    yield quick
    slow = yield ctx.call_sub_orchestrator(waits_forever, instance_id="slow-child")
    return slow


def status(engine: Engine, iid: str) -> OrchestrationStatus:
    state = engine.client.get_orchestration_state(iid)
    assert state is not None
    return state.runtime_status


# -- terminate ------------------------------------------------------------------------------------


def test_terminate_running_instance_ends_it_terminated() -> None:
    # given a running orchestration
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(waits_forever, instance_id="t")
    engine.run_until_idle()
    assert status(engine, iid) == OrchestrationStatus.RUNNING
    # when it is terminated
    engine.client.terminate_orchestration(iid)
    state = engine.client.wait_for_orchestration_completion(iid)
    # then it is TERMINATED, recorded as ExecutionTerminated then ExecutionCompleted
    assert state.runtime_status == OrchestrationStatus.TERMINATED
    assert state.output is None
    assert kinds(engine.history(iid))[-2:] == ["executionTerminated", "executionCompleted"]


def test_terminate_with_output_records_the_output() -> None:
    # given a running orchestration
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(waits_forever, instance_id="t-out")
    engine.run_until_idle()
    # when it is terminated with an output
    engine.client.terminate_orchestration(iid, output={"reason": "operator"})
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the output is the terminate output
    assert state.runtime_status == OrchestrationStatus.TERMINATED
    assert state.output == {"reason": "operator"}
    completed = of_kind(engine.history(iid), "executionCompleted")[0].executionCompleted
    assert completed.result.value == '{"reason": "operator"}'


def test_recursive_terminate_terminates_running_children_but_not_completed_ones() -> None:
    # given a parent whose first child completed and whose second child is running
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(parent_of_two, instance_id="parent")
    engine.advance(timedelta(minutes=1))
    assert status(engine, "quick-child") == OrchestrationStatus.COMPLETED
    assert status(engine, "slow-child") == OrchestrationStatus.RUNNING
    # when the parent is terminated (recursive by default)
    engine.client.terminate_orchestration(iid, output="stop")
    engine.client.wait_for_orchestration_completion(iid)
    engine.run_until_idle()
    # then the running child is terminated too, and the completed one stays completed
    assert status(engine, iid) == OrchestrationStatus.TERMINATED
    assert status(engine, "slow-child") == OrchestrationStatus.TERMINATED
    assert engine.client.get_orchestration_state("slow-child").output == "stop"
    assert status(engine, "quick-child") == OrchestrationStatus.COMPLETED


def test_non_recursive_terminate_leaves_children_running() -> None:
    # given a parent with a running child
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(parent_of_two, instance_id="parent")
    engine.advance(timedelta(minutes=1))
    # when the parent is terminated without recursion
    engine.client.terminate_orchestration(iid, recursive=False)
    engine.client.wait_for_orchestration_completion(iid)
    engine.run_until_idle()
    # then the child keeps running
    assert status(engine, iid) == OrchestrationStatus.TERMINATED
    assert status(engine, "slow-child") == OrchestrationStatus.RUNNING


def test_recursive_terminate_reaches_grandchildren() -> None:
    # given a chain parent -> child -> grandchild, all running
    def chain(ctx: OrchestrationContext, depth: int) -> Gen:
        if depth == 2:
            value = yield ctx.wait_for_external_event("never")
            return value
        value = yield ctx.call_sub_orchestrator(chain, input=depth + 1)
        return value

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(chain, input=0, instance_id="g")
    engine.run_until_idle()
    assert status(engine, "g:0001:0001") == OrchestrationStatus.RUNNING
    # when the top is terminated
    engine.client.terminate_orchestration(iid)
    engine.run_until_idle()
    # then every level is terminated
    for instance in ("g", "g:0001", "g:0001:0001"):
        assert status(engine, instance) == OrchestrationStatus.TERMINATED


def test_terminate_a_completed_instance_changes_nothing() -> None:
    # given a completed orchestration
    def done(ctx: OrchestrationContext, _: None) -> str:
        return "finished"

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(done)
    engine.client.wait_for_orchestration_completion(iid)
    # when it is terminated
    engine.client.terminate_orchestration(iid, output="too late")
    engine.run_until_idle()
    # then it stays COMPLETED with its output
    state = engine.client.get_orchestration_state(iid)
    assert state.runtime_status == OrchestrationStatus.COMPLETED and state.output == "finished"


# -- suspend / resume -----------------------------------------------------------------------------


def test_suspend_sets_status_suspended_and_resume_sets_it_running() -> None:
    # given a running orchestration
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(waits_forever, instance_id="s")
    engine.run_until_idle()
    # when it is suspended
    engine.client.suspend_orchestration(iid, reason="maintenance")
    engine.run_until_idle()
    # then its status reads SUSPENDED; after resume, RUNNING
    assert status(engine, iid) == OrchestrationStatus.SUSPENDED
    engine.client.resume_orchestration(iid)
    engine.run_until_idle()
    assert status(engine, iid) == OrchestrationStatus.RUNNING


def test_events_while_suspended_are_buffered_and_processed_on_resume_in_arrival_order() -> None:
    # given a suspended orchestration that reads three events and then calls an activity with them
    def reads_three(ctx: OrchestrationContext, _: None) -> Gen:
        values = []
        for _ in range(3):
            values.append((yield ctx.wait_for_external_event("e")))
        result = yield ctx.call_activity(echo, input=values)
        return result

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(reads_three, instance_id="buffered")
    engine.run_until_idle()
    engine.client.suspend_orchestration(iid)
    engine.run_until_idle()
    # when three events arrive while it is suspended
    for value in (1, 2, 3):
        engine.client.raise_orchestration_event(iid, "e", data=value)
    engine.run_until_idle()
    # then no action is taken and it stays SUSPENDED
    assert status(engine, iid) == OrchestrationStatus.SUSPENDED
    assert "taskScheduled" not in kinds(engine.history(iid))
    # and on resume the events are processed in arrival order
    engine.client.resume_orchestration(iid)
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.output == [1, 2, 3]


def test_activity_result_while_suspended_is_held_until_resume() -> None:
    # given an orchestration whose activity result arrives after it was suspended
    def two_steps(ctx: OrchestrationContext, _: None) -> Gen:
        first = yield ctx.call_activity(echo, input="a")
        second = yield ctx.call_activity(echo, input="b")
        return [first, second]

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(two_steps, instance_id="held")
    engine.client.suspend_orchestration(iid)  # arrives together with the start: the first step runs, then holds
    engine.run_until_idle()
    # then nothing after the suspension is acted on
    assert status(engine, iid) == OrchestrationStatus.SUSPENDED
    scheduled = of_kind(engine.history(iid), "taskScheduled")
    assert len(scheduled) <= 1
    # and resume lets it finish
    engine.client.resume_orchestration(iid)
    assert engine.client.wait_for_orchestration_completion(iid).output == ["a", "b"]


def test_timer_firing_while_suspended_is_held_until_resume() -> None:
    # given an orchestration on a one-hour timer, suspended
    def timer_then_done(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.create_timer(timedelta(hours=1))
        return ctx.current_utc_datetime.isoformat()

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(timer_then_done, instance_id="timer-held")
    engine.run_until_idle()
    engine.client.suspend_orchestration(iid)
    # when the timer fires while suspended
    engine.advance(timedelta(hours=2))
    # then the instance is still suspended
    assert status(engine, iid) == OrchestrationStatus.SUSPENDED
    # and it completes after resume
    engine.client.resume_orchestration(iid)
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    # the held OrchestratorStarted of the timer's step is processed on resume with the held TimerFired,
    # so the code sees the time the timer fired (as durabletask-python's executor does; keeps histories
    # interchangeable), not the time of the resume
    assert state.output == "2024-01-01T01:00:00"
    assert engine.clock.now().isoformat() == "2024-01-01T02:00:00"


def test_terminate_takes_effect_while_suspended() -> None:
    # given a suspended orchestration
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(waits_forever, instance_id="s-t")
    engine.run_until_idle()
    engine.client.suspend_orchestration(iid)
    engine.run_until_idle()
    # when it is terminated
    engine.client.terminate_orchestration(iid, output="bye")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then it is TERMINATED at once
    assert state.runtime_status == OrchestrationStatus.TERMINATED
    assert state.output == "bye"


# -- purge ----------------------------------------------------------------------------------------


def test_purge_completed_instance_deletes_it_and_its_history() -> None:
    # given a completed orchestration
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(returns_input, input=1, instance_id="purge-me")
    engine.client.wait_for_orchestration_completion(iid)
    # when it is purged
    result = engine.client.purge_orchestration(iid)
    # then one instance was deleted, and it is gone
    assert result.deleted_instance_count == 1
    assert engine.client.get_orchestration_state(iid) is None
    with pytest.raises(InstanceNotFoundError):
        engine.history(iid)


def test_purge_running_instance_raises_not_completed() -> None:
    # given a running orchestration
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(waits_forever, instance_id="running")
    engine.run_until_idle()
    # when it is purged, then InstanceNotCompletedError, and it is still there
    with pytest.raises(InstanceNotCompletedError):
        engine.client.purge_orchestration(iid)
    assert status(engine, iid) == OrchestrationStatus.RUNNING


def test_purge_unknown_instance_raises_not_found() -> None:
    engine = Engine()
    with pytest.raises(InstanceNotFoundError):
        engine.client.purge_orchestration("nobody")


def test_recursive_purge_removes_children_and_counts_them() -> None:
    # given a completed parent with two children, one of which has a child of its own
    def leaf(ctx: OrchestrationContext, _: None) -> str:
        return "leaf"

    def middle(ctx: OrchestrationContext, _: None) -> Gen:
        result = yield ctx.call_sub_orchestrator(leaf)
        return result

    def root(ctx: OrchestrationContext, _: None) -> Gen:
        results = yield when_all([ctx.call_sub_orchestrator(middle), ctx.call_sub_orchestrator(leaf)])
        return results

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(root, instance_id="r")
    assert engine.client.wait_for_orchestration_completion(iid).output == ["leaf", "leaf"]
    # when the parent is purged recursively
    result = engine.client.purge_orchestration(iid, recursive=True)
    # then all four instances are gone
    assert result.deleted_instance_count == 4
    for instance in ("r", "r:0001", "r:0002", "r:0001:0001"):
        assert engine.client.get_orchestration_state(instance) is None


def test_non_recursive_purge_keeps_children() -> None:
    # given a completed parent with one child
    def only_child(ctx: OrchestrationContext, _: None) -> str:
        return "child"

    def single_parent(ctx: OrchestrationContext, _: None) -> Gen:
        result = yield ctx.call_sub_orchestrator(only_child)
        return result

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(single_parent, instance_id="sp")
    engine.client.wait_for_orchestration_completion(iid)
    # when purged without recursion
    assert engine.client.purge_orchestration(iid, recursive=False).deleted_instance_count == 1
    # then the child remains
    assert status(engine, "sp:0001") == OrchestrationStatus.COMPLETED


# -- instance id reuse ----------------------------------------------------------------------------


def test_reusing_a_running_instance_id_is_an_error_by_default() -> None:
    # given a running instance
    engine = Engine()
    engine.client.schedule_new_orchestration(waits_forever, instance_id="taken")
    engine.run_until_idle()
    # when another is scheduled under the same id, then InstanceAlreadyExistsError
    with pytest.raises(InstanceAlreadyExistsError, match="orchestration instance already exists"):
        engine.client.schedule_new_orchestration(returns_input, input=2, instance_id="taken")
    assert engine.client.get_orchestration_state("taken").name == "waits_forever"


def test_reusing_a_completed_instance_id_is_an_error_by_default() -> None:
    # given a completed instance
    engine = Engine()
    engine.client.schedule_new_orchestration(returns_input, input=1, instance_id="done")
    engine.client.wait_for_orchestration_completion("done")
    # when another is scheduled under the same id, then InstanceAlreadyExistsError
    with pytest.raises(InstanceAlreadyExistsError):
        engine.client.schedule_new_orchestration(returns_input, input=2, instance_id="done")


def test_id_reuse_policy_ignore_keeps_the_existing_instance() -> None:
    # given a running instance
    engine = Engine()
    engine.client.schedule_new_orchestration(returns_input, input="original", instance_id="dup")
    engine.run_until_idle()
    # when another is scheduled under its id with IdReusePolicy.IGNORE
    iid = engine.client.schedule_new_orchestration(
        returns_input, input="ignored", instance_id="dup", reuse_id_policy=IdReusePolicy.IGNORE
    )
    # then the request is ignored: the id is returned and the original runs on
    assert iid == "dup"
    assert engine.client.wait_for_orchestration_completion("dup").output == "original"
    assert len(of_kind(engine.history("dup"), "executionStarted")) == 1


def test_id_reuse_policy_terminate_replaces_a_running_instance() -> None:
    # given a running instance
    engine = Engine()
    engine.client.schedule_new_orchestration(waits_forever, instance_id="replace-me")
    engine.run_until_idle()
    # when another is scheduled under its id with IdReusePolicy.TERMINATE
    engine.client.schedule_new_orchestration(
        returns_input, input="new", instance_id="replace-me", reuse_id_policy=IdReusePolicy.TERMINATE
    )
    # then the new instance runs in its place
    state = engine.client.wait_for_orchestration_completion("replace-me")
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.name == "returns_input"
    assert state.output == "new"
    started = of_kind(engine.history("replace-me"), "executionStarted")
    assert [e.executionStarted.name for e in started] == ["returns_input"]


def test_terminate_before_a_delayed_start_ends_it_terminated() -> None:
    # given an orchestration scheduled for tomorrow
    def never_started(ctx: OrchestrationContext, _: None) -> str:
        return "ran"

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(never_started, start_at=datetime(2024, 1, 2))
    # when it is terminated before it starts
    engine.client.terminate_orchestration(iid, output="cancelled")
    engine.run_until_idle()
    # then it is TERMINATED with the output, and it never runs later
    state = engine.client.get_orchestration_state(iid)
    assert (state.runtime_status, state.output) == (OrchestrationStatus.TERMINATED, "cancelled")
    engine.advance(timedelta(days=2))
    assert engine.client.get_orchestration_state(iid).output == "cancelled"


def test_suspend_before_a_delayed_start_holds_the_instance_once_it_starts() -> None:
    # given an orchestration scheduled in an hour, suspended before it starts
    def starts_later(ctx: OrchestrationContext, _: None) -> str:
        return "ran"

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(starts_later, start_at=datetime(2024, 1, 1, 1))
    engine.client.suspend_orchestration(iid)
    engine.run_until_idle()
    # then it reads PENDING until its start, then SUSPENDED; it runs only after resume
    assert status(engine, iid) == OrchestrationStatus.PENDING
    engine.advance(timedelta(hours=2))
    assert status(engine, iid) == OrchestrationStatus.SUSPENDED
    engine.client.resume_orchestration(iid)
    assert engine.client.wait_for_orchestration_completion(iid).output == "ran"


def test_resume_of_a_running_instance_changes_nothing() -> None:
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(returns_input, input="v")
    engine.run_until_idle()
    engine.client.resume_orchestration(iid)
    engine.run_until_idle()
    assert status(engine, iid) == OrchestrationStatus.RUNNING
    assert engine.client.wait_for_orchestration_completion(iid).output == "v"


def test_recursive_terminate_reaches_a_suspended_child() -> None:
    # given a parent whose running child is suspended
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(parent_of_two, instance_id="parent")
    engine.advance(timedelta(minutes=1))
    engine.client.suspend_orchestration("slow-child")
    engine.run_until_idle()
    assert status(engine, "slow-child") == OrchestrationStatus.SUSPENDED
    # when the parent is terminated
    engine.client.terminate_orchestration(iid)
    engine.run_until_idle()
    # then the suspended child is terminated too
    assert status(engine, "slow-child") == OrchestrationStatus.TERMINATED


def test_id_reuse_policy_terminate_replaces_a_completed_instance() -> None:
    # given a completed instance
    engine = Engine()
    engine.client.schedule_new_orchestration(returns_input, input="old", instance_id="again")
    engine.client.wait_for_orchestration_completion("again")
    # when it is scheduled again with IdReusePolicy.TERMINATE
    engine.client.schedule_new_orchestration(returns_input, input="new", instance_id="again",
                                             reuse_id_policy=IdReusePolicy.TERMINATE)
    # then the new run replaces it, with a fresh history
    assert engine.client.wait_for_orchestration_completion("again").output == "new"
    started = of_kind(engine.history("again"), "executionStarted")
    assert [e.executionStarted.input.value for e in started] == ['"new"']


def test_purged_instance_id_can_be_used_again() -> None:
    # given a completed and purged instance
    engine = Engine()
    engine.client.schedule_new_orchestration(returns_input, input=1, instance_id="reused")
    engine.client.wait_for_orchestration_completion("reused")
    engine.client.purge_orchestration("reused")
    # when its id is scheduled again, then it is a new instance (no error)
    engine.client.schedule_new_orchestration(returns_input, input=2, instance_id="reused")
    assert engine.client.wait_for_orchestration_completion("reused").output == 2
