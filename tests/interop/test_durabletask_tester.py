"""durabletask-python orchestrators, unmodified, in the WorkflowTester: mocks, the virtual clock, the
replay check, strict mode, non-determinism reports, mixed native/foreign trees and schedule fuzzing."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import durabletask.task as task
import pytest
from durabletask.worker import TaskHubGrpcWorker
from hypothesis import given, settings
from hypothesis import strategies as st

import wftest.interop.durabletask as dt
from wftest import (
    CrashAfterActivity,
    CrashDuringStep,
    Engine,
    NonDeterminismError,
    NonDeterministicCallError,
    OrchestrationStalledError,
    Registry,
    Replayer,
    WorkflowTester,
)
from wftest.strategies import Schedule, schedules

from ._compat import SCENARIOS, Scenario, dt_orchestrators, normalized, wf_orchestrators

FUZZ = settings(max_examples=40, database=None, derandomize=True, deadline=None)


# -- durabletask code, as an application would have it -------------------------------------------------


def charge(ctx: task.ActivityContext, order: dict[str, Any]) -> str:
    return f"receipt-{order['id']}-{ctx.orchestration_id}-{ctx.task_id}"


def ship(ctx: task.ActivityContext, receipt: str) -> str:
    return f"shipped {receipt}"


def checkout(ctx: task.OrchestrationContext, order: dict[str, Any]) -> Any:
    receipt = yield ctx.call_activity(charge, input=order)
    shipped = yield ctx.call_activity(ship, input=receipt)
    return {"receipt": receipt, "shipped": shipped}


def square(ctx: task.ActivityContext, n: int) -> int:
    return n * n


def fan_out(ctx: task.OrchestrationContext, count: int) -> Any:
    results = yield task.when_all([ctx.call_activity(square, input=i) for i in range(count)])
    return sum(results)


def reminder(ctx: task.OrchestrationContext, days: int) -> Any:
    start = ctx.current_utc_datetime
    yield ctx.create_timer(timedelta(days=days))
    return (ctx.current_utc_datetime - start).days


def approval(ctx: task.OrchestrationContext, _: Any) -> Any:
    decision = ctx.wait_for_external_event("approval")
    deadline = ctx.create_timer(timedelta(days=3))
    winner = yield task.when_any([decision, deadline])
    return decision.get_result() if winner is decision else "timed out"


def child(ctx: task.OrchestrationContext, n: int) -> Any:
    value = yield ctx.call_activity(square, input=n)
    return {"id": ctx.instance_id, "parent": ctx.parent_instance_id, "value": value}


def parent(ctx: task.OrchestrationContext, _: Any) -> Any:
    results = yield task.when_all([ctx.call_sub_orchestrator(child, input=n) for n in (2, 3)])
    return results


RETRY = task.RetryPolicy(first_retry_interval=timedelta(seconds=2), max_number_of_attempts=3, backoff_coefficient=2)


def flaky_call(ctx: task.ActivityContext, _: Any) -> str:
    raise ConnectionError("the real service is not reachable from tests")


def with_retries(ctx: task.OrchestrationContext, _: Any) -> Any:
    return (yield ctx.call_activity(flaky_call, retry_policy=RETRY))


def counter(ctx: task.OrchestrationContext, n: int) -> Any:
    ctx.set_custom_status({"round": n})
    yield ctx.create_timer(timedelta(hours=1))
    if n < 3:
        ctx.continue_as_new(n + 1)
        return None
    return n


# -- mocks, clock, events ------------------------------------------------------------------------------


def test_mocked_activities_answer_durabletask_calls() -> None:
    tester = WorkflowTester()
    tester.on_activity(charge).returns("r-1").once()
    tester.on_activity(ship, "r-1").returns("on its way").once()

    result = tester.run(dt.orchestrator(checkout), input={"id": 7})

    assert result.status == "COMPLETED"
    assert result.output == {"receipt": "r-1", "shipped": "on its way"}
    assert [c.input for c in tester.calls(charge)] == [{"id": 7}]
    tester.assert_expectations()


def test_real_activities_receive_a_durabletask_activity_context() -> None:
    seen: list[Any] = []

    def record(ctx: task.ActivityContext, value: str) -> str:
        seen.append(ctx)
        return value

    def orchestrator(ctx: task.OrchestrationContext, _: Any) -> Any:
        return (yield ctx.call_activity(record, input="x"))

    result = WorkflowTester().run(dt.orchestrator(orchestrator))

    assert result.output == "x"
    [ctx] = seen
    assert isinstance(ctx, task.ActivityContext)
    assert (ctx.orchestration_id, ctx.task_id) == (result.instance_id, 1)


def test_activities_called_by_name_need_the_activity_wrapper() -> None:
    def by_name(ctx: task.OrchestrationContext, _: Any) -> Any:
        return (yield ctx.call_activity("charge", input={"id": 1}))

    tester = WorkflowTester()
    tester.add_activity(dt.activity(charge))

    assert tester.run(dt.orchestrator(by_name)).output == "receipt-1-test-instance-1"


def test_fan_out_and_in() -> None:
    assert WorkflowTester().run(dt.orchestrator(fan_out), input=5).output == 30


def test_a_thirty_day_timer_completes_on_the_virtual_clock_in_three_day_chunks() -> None:
    result = WorkflowTester().run(dt.orchestrator(reminder), input=30)

    assert result.output == 30
    assert result.virtual_duration == timedelta(days=30)
    assert sum(e.HasField("timerCreated") for e in result.history) == 10  # durabletask's 3-day chunks


@pytest.mark.parametrize(("event_at", "expected"), [(timedelta(hours=5), "yes"), (timedelta(days=4), "timed out")])
def test_when_any_between_an_event_and_a_timer(event_at: timedelta, expected: str) -> None:
    tester = WorkflowTester()
    tester.at(event_at, lambda t: t.raise_event("approval", "yes"))

    result = tester.run(dt.orchestrator(approval))

    assert result.output == expected
    assert result.virtual_duration == min(event_at, timedelta(days=3))


def test_sub_orchestrations_get_durabletask_default_ids() -> None:
    result = WorkflowTester().run(dt.orchestrator(parent))

    assert result.output == [
        {"id": "test-instance:0001", "parent": "test-instance", "value": 4},
        {"id": "test-instance:0002", "parent": "test-instance", "value": 9},
    ]


def test_a_sub_orchestration_can_be_mocked() -> None:
    tester = WorkflowTester()
    tester.on_sub_orchestrator(child).returns("mocked")

    assert tester.run(dt.orchestrator(parent)).output == ["mocked", "mocked"]
    assert len(tester.calls(child)) == 2


def test_retries_follow_the_retry_policy_on_the_virtual_clock() -> None:
    tester = WorkflowTester()
    tester.on_activity(flaky_call).raises(ConnectionError("down")).times(2)
    tester.on_activity(flaky_call).returns("third time lucky")

    result = tester.run(dt.orchestrator(with_retries))

    assert result.output == "third time lucky"
    assert result.virtual_duration == timedelta(seconds=2 + 4)
    scheduled = [e.eventId for e in result.history if e.HasField("taskScheduled")]
    assert scheduled == [1, 1, 1]  # durabletask retries under the call's own id


def test_an_exhausted_retry_fails_the_orchestration() -> None:
    result = WorkflowTester().run(dt.orchestrator(with_retries))

    assert result.status == "FAILED"
    assert result.failure_details is not None
    assert "not reachable" in result.failure_details.message


def test_continue_as_new_and_custom_status() -> None:
    result = WorkflowTester().run(dt.orchestrator(counter), input=1)

    assert result.output == 3
    assert result.custom_status == {"round": 3}
    assert result.virtual_duration == timedelta(hours=3)


def test_a_stalled_orchestration_says_which_event_it_waits_for() -> None:
    def waits(ctx: task.OrchestrationContext, _: Any) -> Any:
        return (yield ctx.wait_for_external_event("Go"))

    with pytest.raises(OrchestrationStalledError, match="'go'"):
        WorkflowTester().run(dt.orchestrator(waits))


# -- determinism ----------------------------------------------------------------------------------------


def test_strict_mode_catches_the_wall_clock_in_durabletask_code() -> None:
    def reads_the_clock(ctx: task.OrchestrationContext, _: Any) -> Any:
        return (yield ctx.call_activity(square, input=datetime.now().second))

    with pytest.raises(NonDeterministicCallError, match=r"datetime\.now\(\).*reads_the_clock"):
        WorkflowTester().run(dt.orchestrator(reads_the_clock))


def test_the_replay_check_catches_code_that_does_not_reproduce_its_history() -> None:
    runs = itertools.count()

    def moody(ctx: task.OrchestrationContext, _: Any) -> Any:
        if next(runs) == 0:  # different on every replay from scratch
            yield ctx.call_activity(square, input=1)
        else:
            yield ctx.create_timer(timedelta(hours=1))
        return "done"

    with pytest.raises(NonDeterminismError, match="replay check failed") as caught:
        WorkflowTester().run(dt.orchestrator(moody))
    assert caught.value.index == 2


def _version(variant: str) -> Any:
    def deploy(ctx: task.OrchestrationContext, _: Any) -> Any:
        yield ctx.call_activity(square, input=1)
        if variant == "new":
            yield ctx.call_activity(square, input=2)
        else:
            yield ctx.create_timer(timedelta(hours=1))
        return "done"

    return dt.orchestrator(deploy)


def test_a_history_that_changed_code_cannot_replay_reports_the_event_index() -> None:
    result = WorkflowTester().run(_version("old"))
    registry = Registry()
    registry.add_orchestrator(_version("new"))

    replayed = Replayer(registry).replay(result.history)

    assert isinstance(replayed.error, NonDeterminismError)
    assert replayed.error.index == 5
    assert replayed.error.expected == "TimerCreated #2 fireAt=2024-01-01T01:00:00"
    assert replayed.error.actual == 'call_activity #2 square input=2'
    assert "run by durabletask's executor" in str(replayed.error)


def test_a_changed_timer_fire_time_is_caught_though_durabletask_does_not_check_it() -> None:
    def waits(hours: int) -> Any:
        def nap(ctx: task.OrchestrationContext, _: Any) -> Any:
            yield ctx.create_timer(timedelta(hours=hours))
            return "done"

        return dt.orchestrator(nap)

    result = WorkflowTester().run(waits(1))
    registry = Registry()
    registry.add_orchestrator(waits(2))

    error = Replayer(registry).replay(result.history).error
    assert isinstance(error, NonDeterminismError)
    assert "a timer with a different fire time" in str(error)


def test_an_instance_in_flight_fails_with_the_diff_when_the_code_changed() -> None:
    old_engine = Engine()
    old_engine.add_orchestrator(_version("old"))
    iid = old_engine.client.schedule_new_orchestration("deploy")
    old_engine.run_until_idle()  # the first activity ran; the instance is mid-flight

    new_engine = Engine(backend=old_engine.backend, clock=old_engine.clock)  # a deploy: same store, new code
    new_engine.add_orchestrator(_version("new"))
    state = new_engine.client.wait_for_orchestration_completion(iid)

    assert state.runtime_status == "FAILED"
    assert state.failure_details is not None
    assert state.failure_details.error_type == "wftest.errors.NonDeterminismError"
    assert "history event #5" in state.failure_details.message


# -- native and durabletask orchestrators together ----------------------------------------------------------


def native_child(ctx: Any, n: int) -> Any:
    value = yield ctx.call_activity(square, input=n)
    return {"native": value}


def test_a_native_parent_calls_a_durabletask_child() -> None:
    def native_parent(ctx: Any, _: Any) -> Any:
        return (yield ctx.call_sub_orchestrator(dt.orchestrator(child), input=4))

    result = WorkflowTester().run(native_parent)

    assert result.output == {"id": "test-instance:0001", "parent": "test-instance", "value": 16}


def test_a_durabletask_parent_calls_a_registered_native_child() -> None:
    def foreign_parent(ctx: task.OrchestrationContext, _: Any) -> Any:
        return (yield ctx.call_sub_orchestrator(native_child, input=5))

    tester = WorkflowTester()
    tester.add_orchestrator(native_child)  # registered as native: it keeps wftest's executor

    assert tester.run(dt.orchestrator(foreign_parent)).output == {"native": 25}


def test_add_registrations_copies_a_durabletask_worker() -> None:
    worker = TaskHubGrpcWorker()  # the app's worker, never started
    worker.add_orchestrator(checkout)
    worker.add_activity(charge)
    worker.add_activity(ship)
    tester = WorkflowTester()

    names = dt.add_registrations(tester, worker)

    assert names == ["checkout", "charge", "ship"]
    assert tester.run("checkout", input={"id": 3}).output["shipped"] == "shipped receipt-3-test-instance-1"


# -- schedule fuzzing -----------------------------------------------------------------------------------------


FUZZED = [s for s in SCENARIOS if s.id in {
    "sequence", "fan_out_fan_in", "timers", "event_awaited", "sub_orchestrations", "continue_as_new",
    "custom_status", "when_any_event_wins", "timer_cancelled_later", "send_event", "mixed_when_all",
}]
FAULTS = [CrashAfterActivity(), CrashDuringStep()]


def run_in_tester(scenario: Scenario, schedule: Schedule, *, foreign: bool) -> WorkflowTester:
    tester = WorkflowTester()
    for fn in (dt_orchestrators if foreign else wf_orchestrators).ORCHESTRATORS:
        tester.add_orchestrator(dt.orchestrator(fn) if foreign else fn)
    for offset, name, data in scenario.events:
        tester.at(offset, lambda t, name=name, data=data: t.raise_event(name, data))
    result = tester.run(scenario.orchestrator, input=scenario.input, instance_id=scenario.id, schedule=schedule)
    assert result.status == "COMPLETED", result.timeline()
    return tester


def test_crashes_make_the_engine_replay_durabletask_code_from_scratch() -> None:
    # a crash in each of the first three steps and after the first activity: each retry of a step
    # replays the history in a fresh durabletask executor (execute, not the warm resume)
    schedule = Schedule.from_string("fs:crash-step;fs:crash-step;fa:crash-after;fs:crash-step", faults=FAULTS)
    tester = WorkflowTester()
    tester.on_activity(charge).returns("r-9")

    result = tester.run(dt.orchestrator(checkout), input={"id": 9}, schedule=schedule)

    assert result.output == {"receipt": "r-9", "shipped": "shipped r-9"}
    assert sum("crash" in d.value for d in schedule.decisions) == 4
    assert len(tester.calls(charge)) == 2  # the crash after the activity lost its result: it ran again


@FUZZ
@given(scenario=st.sampled_from(FUZZED), schedule=schedules(faults=FAULTS))
def test_fuzzed_schedules_give_the_histories_of_the_wftest_port(scenario: Scenario, schedule: Schedule) -> None:
    # the durabletask orchestrators under a schedule hypothesis draws (orders of work, crashes that make
    # the engine replay from scratch), then their wftest port under exactly the same decisions
    foreign = run_in_tester(scenario, schedule, foreign=True)
    same = Schedule.from_string(schedule.to_string(), faults=FAULTS)
    native = run_in_tester(scenario, same, foreign=False)

    assert same.to_string() == schedule.to_string()
    for state in foreign.engine.client.get_all_orchestration_states():
        iid = state.instance_id
        assert [normalized(e) for e in foreign.engine.history(iid)] == [
            normalized(e) for e in native.engine.history(iid)
        ], iid
