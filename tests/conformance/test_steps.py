"""Orchestration steps: OrchestratorStarted first, shared action ids from 1, is_replaying, duplicates."""

from __future__ import annotations

from datetime import timedelta

from wftest import ActivityContext, Engine, OrchestrationContext, OrchestrationStatus, when_all
from wftest import _events as ev

from ._support import T0, Gen, at, described, ids, kinds, of_kind


def echo(ctx: ActivityContext, value: object) -> object:
    return value


def test_step_appends_orchestrator_started_then_new_events_then_actions() -> None:
    # given an orchestrator that calls one activity
    def one_activity(ctx: OrchestrationContext, value: str) -> Gen:
        result = yield ctx.call_activity(echo, input=value)
        return result

    engine = Engine()
    # when it runs to completion
    iid = engine.client.schedule_new_orchestration(one_activity, input="x", instance_id="steps")
    engine.client.wait_for_orchestration_completion(iid)
    # then every step starts with OrchestratorStarted, then the new events, then what the code asked for
    assert kinds(engine.history(iid)) == [
        "orchestratorStarted", "executionStarted", "taskScheduled",
        "orchestratorStarted", "taskCompleted", "executionCompleted",
    ]


def test_orchestrator_started_timestamp_is_the_current_utc_datetime_of_its_step() -> None:
    # given an orchestrator that reads its time before and after a one-hour timer
    def clock_reader(ctx: OrchestrationContext, _: None) -> Gen:
        before = ctx.current_utc_datetime.isoformat()
        yield ctx.create_timer(timedelta(hours=1))
        return [before, ctx.current_utc_datetime.isoformat()]

    engine = Engine()
    # when it completes
    iid = engine.client.schedule_new_orchestration(clock_reader, instance_id="clock")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then each value it saw is the timestamp of its step's OrchestratorStarted
    starts = [at(e).isoformat() for e in of_kind(engine.history(iid), "orchestratorStarted")]
    assert starts == ["2024-01-01T00:00:00", "2024-01-01T01:00:00"]
    assert state.output == starts


def test_action_ids_are_shared_by_all_kinds_and_numbered_from_one_in_call_order() -> None:
    # given an orchestrator that asks for an activity, a timer, a sub-orchestration and a sent event at once
    def child(ctx: OrchestrationContext, _: None) -> str:
        return "child done"

    def mixed(ctx: OrchestrationContext, _: None) -> Gen:
        activity = ctx.call_activity(echo, input=1)
        timer = ctx.create_timer(timedelta(minutes=5))
        sub = ctx.call_sub_orchestrator(child)
        ctx.send_event("mixed", "ping", data=True)
        results = yield when_all([activity, timer, sub])
        return [results[0], results[2]]

    engine = Engine()
    # when it runs
    iid = engine.client.schedule_new_orchestration(mixed, instance_id="mixed")
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == [1, "child done"]
    # then the first step's actions have ids 1..4, in the order the code asked, and are applied in id order
    first_step = engine.history(iid)[2:6]
    assert [(e.WhichOneof("eventType"), e.eventId) for e in first_step] == [
        ("taskScheduled", 1), ("timerCreated", 2), ("subOrchestrationInstanceCreated", 3), ("eventSent", 4),
    ]


def test_is_replaying_is_true_for_old_events_and_false_for_new_ones() -> None:
    # given a stateless engine (every step replays the whole history) and an orchestrator that records
    # is_replaying at its start and after each of two timers
    def replay_probe(ctx: OrchestrationContext, _: None) -> Gen:
        seen = [ctx.is_replaying]
        yield ctx.create_timer(timedelta(minutes=1))
        seen.append(ctx.is_replaying)
        yield ctx.create_timer(timedelta(minutes=1))
        seen.append(ctx.is_replaying)
        return seen

    engine = Engine(sticky=False)
    # when it completes
    iid = engine.client.schedule_new_orchestration(replay_probe, instance_id="replaying")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the last step replayed the start and the first timer, and ran the second timer's result live
    assert state.output == [True, True, False]


def test_second_execution_started_is_dropped_and_does_not_run_the_code() -> None:
    # given a running orchestration waiting for an event, whose code counts its runs
    runs: list[int] = []

    def waiter(ctx: OrchestrationContext, _: None) -> Gen:
        runs.append(1)
        value = yield ctx.wait_for_external_event("go")
        return value

    engine = Engine(sticky=False)
    iid = engine.client.schedule_new_orchestration(waiter, instance_id="dup-start")
    engine.run_until_idle()
    before = described(engine.history(iid))
    runs.clear()
    # when a duplicate ExecutionStarted arrives
    engine.backend.add_event(iid, ev.execution_started(engine.clock.now(), "waiter", iid, '"again"'))
    engine.run_until_idle()
    # then it is dropped: the history is unchanged and the code did not run
    assert described(engine.history(iid)) == before
    assert runs == []
    assert len(of_kind(engine.history(iid), "executionStarted")) == 1
    engine.client.raise_orchestration_event(iid, "go", data=1)
    assert engine.client.wait_for_orchestration_completion(iid).output == 1


def test_execution_completed_arriving_as_a_new_event_is_dropped() -> None:
    # given a running orchestration waiting for an event
    def waiter2(ctx: OrchestrationContext, _: None) -> Gen:
        value = yield ctx.wait_for_external_event("go")
        return value

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(waiter2, instance_id="dup-complete")
    engine.run_until_idle()
    # when an ExecutionCompleted arrives as a new event
    engine.backend.add_event(
        iid, ev.execution_completed(engine.clock.now(), OrchestrationStatus.COMPLETED.to_proto(), '"forged"')
    )
    engine.run_until_idle()
    # then it is dropped: the instance keeps running and completes normally later
    assert engine.client.get_orchestration_state(iid).runtime_status == OrchestrationStatus.RUNNING
    assert "executionCompleted" not in kinds(engine.history(iid))
    engine.client.raise_orchestration_event(iid, "go", data="real")
    assert engine.client.wait_for_orchestration_completion(iid).output == "real"


def test_work_for_a_completed_instance_is_dropped() -> None:
    # given a completed orchestration
    def quick(ctx: OrchestrationContext, _: None) -> str:
        return "done"

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(quick, instance_id="done")
    engine.client.wait_for_orchestration_completion(iid)
    before = described(engine.history(iid))
    # when an event is raised to it
    engine.client.raise_orchestration_event(iid, "late", data=1)
    engine.run_until_idle()
    # then nothing changes
    assert described(engine.history(iid)) == before
    state = engine.client.get_orchestration_state(iid)
    assert state.runtime_status == OrchestrationStatus.COMPLETED and state.output == "done"


def test_results_ready_together_reach_the_orchestration_in_one_step() -> None:
    # given a fan-out of three activities
    def fan3(ctx: OrchestrationContext, _: None) -> Gen:
        results = yield when_all([ctx.call_activity(echo, input=i) for i in range(3)])
        return results

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(fan3, instance_id="fan3")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the second step holds all three results and the completion
    assert state.output == [0, 1, 2]
    assert ids(engine.history(iid)) == [
        "ExecutionStarted", "TaskScheduled#1", "TaskScheduled#2", "TaskScheduled#3",
        "TaskCompleted#1", "TaskCompleted#2", "TaskCompleted#3", "ExecutionCompleted",
    ]
    assert all(at(e) == T0 for e in engine.history(iid))


def test_second_execution_started_in_the_same_batch_is_dropped() -> None:
    # given an instance that receives a second ExecutionStarted before its first step
    def first_start_wins(ctx: OrchestrationContext, value: str) -> str:
        return value

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(first_start_wins, input="first", instance_id="batch")
    engine.backend.add_event(iid, ev.execution_started(engine.clock.now(), "first_start_wins", iid, '"second"'))
    # when it runs
    state = engine.client.wait_for_orchestration_completion(iid)
    # then only the first start counts
    assert state.output == "first"
    assert len(of_kind(engine.history(iid), "executionStarted")) == 1
