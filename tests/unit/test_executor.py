"""The executor on hand-built histories: one behaviour per test, no engine, no clock.

Histories are built with ``wftest._events`` the way the runtime writes them: a step is
``OrchestratorStarted`` + the new events, followed by the events recording the step's actions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from datetime import datetime, timedelta
from typing import Any

import pytest

from wftest import (
    Executor,
    NonDeterminismError,
    OrchestrationContext,
    Registry,
    RetryPolicy,
    Task,
    TaskFailedError,
    when_all,
    when_any,
)
from wftest import _events as ev
from wftest._failure import FailureDetails
from wftest.orchestration import ExecutionResult
from wftest.protos import orchestrator_service_pb2 as pb

Gen = Generator[Task[Any], Any, Any]
Orchestrator = Callable[..., Any]
Events = list[pb.HistoryEvent]

T0 = datetime(2024, 1, 1)
IID = "i1"
SECOND = timedelta(seconds=1)


# -- building histories -------------------------------------------------------------------------------


def enc(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def start(fn: Orchestrator, value: Any = None, at: datetime = T0) -> Events:
    return [ev.orchestrator_started(at), ev.execution_started(at, fn.__name__, IID, enc(value))]


def step(at: datetime, *events: pb.HistoryEvent) -> Events:
    return [ev.orchestrator_started(at), *events]


def scheduled(action_id: int, name: str = "work", value: Any = None, at: datetime = T0) -> pb.HistoryEvent:
    return ev.task_scheduled(at, ev.schedule_task_action(action_id, name, enc(value)))


def completed(action_id: int, result: Any = None, at: datetime = T0) -> pb.HistoryEvent:
    return ev.task_completed(at, action_id, enc(result))


def failed(action_id: int, message: str = "boom", at: datetime = T0) -> pb.HistoryEvent:
    return ev.task_failed(at, action_id, FailureDetails(message=message, error_type="builtins.ValueError"))


def timer_created(action_id: int, fire_at: datetime, at: datetime = T0) -> pb.HistoryEvent:
    return ev.timer_created(at, ev.create_timer_action(action_id, fire_at))


def timer_fired(action_id: int, fire_at: datetime) -> pb.HistoryEvent:
    return ev.timer_fired(fire_at, action_id, ev.timestamp(fire_at))


def execute(fn: Orchestrator, old: Events, new: Events, *, name: str | None = None, **options: Any) -> ExecutionResult:
    """A fresh executor (``fn`` registered as ``name``, by default its own name) over (old, new)."""
    registry = Registry()
    registry.add_named_orchestrator(name or fn.__name__, fn)
    return Executor(registry, IID, **options).execute(old, new)


def kinds(result: ExecutionResult) -> list[tuple[int, str | None]]:
    return [(a.id, a.WhichOneof("orchestratorActionType")) for a in result.actions]


def finished(result: ExecutionResult) -> pb.CompleteOrchestrationAction:
    action = result.completion
    assert action is not None, f"the orchestration did not finish: {kinds(result)}"
    return action.completeOrchestration


def output(result: ExecutionResult) -> Any:
    done = finished(result)
    assert done.orchestrationStatus == pb.ORCHESTRATION_STATUS_COMPLETED, done
    return json.loads(done.result.value) if done.HasField("result") else None


# -- orchestrators shared by several tests ---------------------------------------------------------------


def two_in_a_row(ctx: OrchestrationContext, value: Any) -> Gen:
    a = yield ctx.call_activity("work", input=value)
    b = yield ctx.call_activity("work", input=a)
    return [a, b]


def two_in_a_row_history() -> Events:
    """``two_in_a_row`` up to the point where it waits for its second activity."""
    return [*start(two_in_a_row, 1), scheduled(1, value=1), *step(T0, completed(1, 10)), scheduled(2, value=10)]


# -- numbering and replay --------------------------------------------------------------------------------


def test_actions_are_numbered_from_1_in_the_order_the_code_asks() -> None:
    def fan(ctx: OrchestrationContext, _: Any) -> Gen:
        ctx.send_event("other", "ping")
        yield when_all([ctx.call_activity("a"), ctx.create_timer(timedelta(hours=1)), ctx.call_activity("b")])

    result = execute(fan, [], start(fan))

    assert kinds(result) == [(1, "sendEvent"), (2, "scheduleTask"), (3, "createTimer"), (4, "scheduleTask")]


def test_replaying_old_events_returns_no_actions() -> None:
    result = execute(two_in_a_row, two_in_a_row_history(), [])

    assert result.actions == []


def test_new_events_after_replay_produce_the_next_actions() -> None:
    result = execute(two_in_a_row, two_in_a_row_history(), step(T0, completed(2, 20)))

    assert output(result) == [10, 20]


def test_is_replaying_is_true_for_old_events_and_false_for_new_ones() -> None:
    seen: list[bool] = []

    def watch(ctx: OrchestrationContext, _: Any) -> Gen:
        seen.append(ctx.is_replaying)
        yield ctx.call_activity("work")
        seen.append(ctx.is_replaying)
        yield ctx.call_activity("work")
        seen.append(ctx.is_replaying)

    old = [*start(watch), scheduled(1), *step(T0, completed(1)), scheduled(2)]
    execute(watch, old, step(T0, completed(2)))

    assert seen == [True, True, False]


def test_current_utc_datetime_is_the_time_of_the_latest_orchestrator_started() -> None:
    times: list[datetime] = []

    def clocked(ctx: OrchestrationContext, _: Any) -> Gen:
        times.append(ctx.current_utc_datetime)
        yield ctx.call_activity("work")
        times.append(ctx.current_utc_datetime)

    later = T0 + timedelta(minutes=5)
    execute(clocked, [*start(clocked), scheduled(1)], step(later, completed(1, at=later)))

    assert times == [T0, later]


# -- composite tasks -------------------------------------------------------------------------------------


def fan_out(ctx: OrchestrationContext, _: Any) -> Gen:
    results = yield when_all([ctx.call_activity("work", input=i) for i in range(3)])
    return results


def test_when_all_lists_results_in_input_order_whatever_the_completion_order() -> None:
    old = [*start(fan_out), scheduled(1, value=0), scheduled(2, value=1), scheduled(3, value=2)]

    result = execute(fan_out, old, step(T0, completed(3, "c"), completed(1, "a"), completed(2, "b")))

    assert output(result) == ["a", "b", "c"]


def test_when_all_waits_for_every_task_before_raising_the_first_failure() -> None:
    old = [*start(fan_out), scheduled(1, value=0), scheduled(2, value=1), scheduled(3, value=2)]

    after_failure = execute(fan_out, old, step(T0, failed(2, "second broke"), completed(1, "a")))
    assert after_failure.completion is None

    old += step(T0, failed(2, "second broke"), completed(1, "a"))
    result = execute(fan_out, old, step(T0, completed(3, "c")))
    done = finished(result)
    assert done.orchestrationStatus == pb.ORCHESTRATION_STATUS_FAILED
    assert "second broke" in done.failureDetails.errorMessage


def test_when_any_returns_the_first_task_to_finish() -> None:
    def race(ctx: OrchestrationContext, _: Any) -> Gen:
        slow, fast = ctx.call_activity("slow"), ctx.call_activity("fast")
        winner = yield when_any([slow, fast])
        return {"fast won": winner is fast, "result": winner.get_result()}

    old = [*start(race), scheduled(1, "slow"), scheduled(2, "fast")]
    result = execute(race, old, step(T0, completed(2, "quick"), completed(1, "late")))

    assert output(result) == {"fast won": True, "result": "quick"}


# -- failures --------------------------------------------------------------------------------------------


def yields_a_number(ctx: OrchestrationContext, _: Any) -> Gen:
    yield 42  # type: ignore[misc]


def test_yielding_something_that_is_not_a_task_fails_naming_file_and_line() -> None:
    result = execute(yields_a_number, [], start(yields_a_number))

    done = finished(result)
    assert done.orchestrationStatus == pb.ORCHESTRATION_STATUS_FAILED
    assert done.failureDetails.errorType == "builtins.TypeError"
    where = f"{__file__}:{yields_a_number.__code__.co_firstlineno + 1}"
    assert where in done.failureDetails.errorMessage
    assert "42" in done.failureDetails.errorMessage


def test_an_exception_in_orchestrator_code_fails_the_orchestration_with_details() -> None:
    def broken(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.call_activity("work")
        raise ValueError("bad order")

    result = execute(broken, [*start(broken), scheduled(1)], step(T0, completed(1)))

    done = finished(result)
    assert done.orchestrationStatus == pb.ORCHESTRATION_STATUS_FAILED
    details = done.failureDetails
    assert (details.errorType, details.errorMessage) == ("builtins.ValueError", "bad order")
    assert "ValueError" in details.stackTrace.value


def test_a_failed_activity_raises_task_failed_error_at_the_yield() -> None:
    caught: list[TaskFailedError] = []

    def careful(ctx: OrchestrationContext, _: Any) -> Gen:
        try:
            yield ctx.call_activity("work")
        except TaskFailedError as err:
            caught.append(err)
        return "recovered"

    result = execute(careful, [*start(careful), scheduled(1)], step(T0, failed(1, "card declined")))

    assert output(result) == "recovered"
    assert caught[0].details.error_type == "builtins.ValueError"
    assert caught[0].details.message == "card declined"


# -- retries and timers ----------------------------------------------------------------------------------


RETRY = RetryPolicy(first_retry_interval=2 * SECOND, max_number_of_attempts=3, backoff_coefficient=2)


def retried(ctx: OrchestrationContext, _: Any) -> Gen:
    return (yield ctx.call_activity("flaky", retry_policy=RETRY))


def test_a_failed_attempt_arms_a_retry_timer_with_a_new_id() -> None:
    at = T0 + SECOND
    result = execute(retried, [*start(retried), scheduled(1, "flaky")], step(at, failed(1, at=at)))

    assert kinds(result) == [(2, "createTimer")]
    assert result.actions[0].createTimer.fireAt.ToDatetime() == at + 2 * SECOND


def test_when_the_retry_timer_fires_the_activity_is_scheduled_again_under_its_first_id() -> None:
    at, fire = T0 + SECOND, T0 + 3 * SECOND
    old = [*start(retried), scheduled(1, "flaky"), *step(at, failed(1, at=at)), timer_created(2, fire, at=at)]

    result = execute(retried, old, step(fire, timer_fired(2, fire)))

    assert kinds(result) == [(1, "scheduleTask")]
    assert result.actions[0].scheduleTask.name == "flaky"


def test_a_timer_longer_than_three_days_is_created_in_chunks() -> None:
    def long_wait(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.create_timer(timedelta(days=10))
        return "woke"

    first = execute(long_wait, [], start(long_wait))
    assert kinds(first) == [(1, "createTimer")]
    assert first.actions[0].createTimer.fireAt.ToDatetime() == T0 + timedelta(days=3)

    day3 = T0 + timedelta(days=3)
    old = [*start(long_wait), timer_created(1, day3)]
    second = execute(long_wait, old, step(day3, timer_fired(1, day3)))
    assert kinds(second) == [(2, "createTimer")]
    assert second.actions[0].createTimer.fireAt.ToDatetime() == T0 + timedelta(days=6)


def test_the_last_chunk_of_a_long_timer_completes_it() -> None:
    def long_wait(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.create_timer(timedelta(days=4))
        return "woke"

    day3, day4 = T0 + timedelta(days=3), T0 + timedelta(days=4)
    old = [*start(long_wait), timer_created(1, day3), *step(day3, timer_fired(1, day3)), timer_created(2, day4, day3)]

    assert output(execute(long_wait, old, step(day4, timer_fired(2, day4)))) == "woke"


# -- external events, suspension, termination -------------------------------------------------------------


def test_early_external_events_are_buffered_fifo_per_case_folded_name() -> None:
    def approvals(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.call_activity("work")
        first = yield ctx.wait_for_external_event("approval")
        second = yield ctx.wait_for_external_event("Approval")
        return [first, second]

    old = [
        *start(approvals), scheduled(1),
        *step(T0, ev.event_raised(T0, "APPROVAL", enc("one")), ev.event_raised(T0, "other", enc("x")),
              ev.event_raised(T0, "approval", enc("two"))),
    ]
    result = execute(approvals, old, step(T0, completed(1)))

    assert output(result) == ["one", "two"]


def waits_for_two(ctx: OrchestrationContext, _: Any) -> Gen:
    yield ctx.call_activity("work")
    yield ctx.call_activity("work")
    return "done"


def test_events_received_while_suspended_are_held() -> None:
    old = [*start(waits_for_two), scheduled(1)]

    result = execute(waits_for_two, old, step(T0, ev.execution_suspended(T0), completed(1)))

    assert result.actions == []


def test_held_events_are_processed_on_resume() -> None:
    old = [*start(waits_for_two), scheduled(1), *step(T0, ev.execution_suspended(T0), completed(1))]

    result = execute(waits_for_two, old, step(T0, ev.execution_resumed(T0)))

    assert kinds(result) == [(2, "scheduleTask")]


def test_terminate_while_suspended_terminates_with_the_given_output() -> None:
    old = [*start(waits_for_two), scheduled(1), *step(T0, ev.execution_suspended(T0))]

    result = execute(waits_for_two, old, step(T0, ev.execution_terminated(T0, enc("stopped"), False)))

    done = finished(result)
    assert done.orchestrationStatus == pb.ORCHESTRATION_STATUS_TERMINATED
    assert json.loads(done.result.value) == "stopped"


def test_continue_as_new_with_save_events_carries_unread_events_over() -> None:
    def looping(ctx: OrchestrationContext, count: int) -> Gen:
        yield ctx.call_activity("work")
        ctx.continue_as_new(count + 1, save_events=True)

    old = [*start(looping, 0), scheduled(1), *step(T0, ev.event_raised(T0, "Poke", enc(1)))]
    result = execute(looping, old, step(T0, ev.event_raised(T0, "poke", enc(2)), completed(1)))

    done = finished(result)
    assert done.orchestrationStatus == pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW
    assert json.loads(done.result.value) == 1
    carried = [(e.eventRaised.name, json.loads(e.eventRaised.input.value)) for e in done.carryoverEvents]
    assert carried == [("poke", 1), ("poke", 2)]


def test_continue_as_new_without_save_events_drops_unread_events() -> None:
    def looping(ctx: OrchestrationContext, count: int) -> Gen:
        yield ctx.call_activity("work")
        ctx.continue_as_new(count + 1)

    old = [*start(looping, 0), scheduled(1), *step(T0, ev.event_raised(T0, "poke", enc(1)))]
    result = execute(looping, old, step(T0, completed(1)))

    assert list(finished(result).carryoverEvents) == []


# -- replay-safe non-determinism ------------------------------------------------------------------------


def test_side_effect_result_is_recorded_as_a_generic_event() -> None:
    def stamped(ctx: OrchestrationContext, _: Any) -> Gen:
        token = ctx.side_effect(lambda: "token-1")
        yield ctx.call_activity("work", input=token)

    result = execute(stamped, [], start(stamped))

    assert len(result.generic_events) == 1
    assert json.loads(json.loads(result.generic_events[0])["value"]) == "token-1"
    assert result.actions[0].scheduleTask.input.value == enc("token-1")


def test_side_effect_replays_the_recorded_value_without_calling_the_function() -> None:
    calls: list[str] = []

    def fresh_token() -> str:
        calls.append("called")
        return "token-2"

    def stamped(ctx: OrchestrationContext, _: Any) -> Gen:
        token = ctx.side_effect(fresh_token)
        result = yield ctx.call_activity("work", input=token)
        return [token, result]

    recorded = execute(stamped, [], start(stamped)).generic_events[0]  # records "token-2"
    calls.clear()
    old = [*start(stamped), scheduled(1, value="token-2"), ev.generic_event(T0, recorded)]

    assert output(execute(stamped, old, step(T0, completed(1, "ok")))) == ["token-2", "ok"]
    assert calls == []


def test_ctx_random_draws_the_same_numbers_on_replay() -> None:
    draws: list[float] = []

    def dice(ctx: OrchestrationContext, _: Any) -> Gen:
        number = ctx.random().random()
        draws.append(number)
        yield ctx.call_activity("work", input=number)

    execute(dice, [], start(dice))
    execute(dice, [*start(dice), scheduled(1, value=draws[0])], [], strict=True)

    assert draws[0] == draws[1]


def test_new_uuid_follows_durabletask_derivation() -> None:
    ids: list[str] = []

    def named(ctx: OrchestrationContext, _: Any) -> None:
        ids.extend([ctx.new_uuid(), ctx.new_uuid()])

    registry = Registry()
    registry.add_orchestrator(named)
    Executor(registry, "i3").execute([], [ev.orchestrator_started(T0), ev.execution_started(T0, "named", "i3", None)])

    assert ids == ["48024876-d0e7-5a7a-9329-4025f0c7a391", "1ca7cca0-1ee3-50c6-b959-9717e07c2c8c"]


# -- non-determinism ------------------------------------------------------------------------------------


def test_non_determinism_wrong_kind_reports_index_expected_and_actual() -> None:
    def sleeps(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.create_timer(timedelta(hours=1))

    with pytest.raises(NonDeterminismError) as caught:
        execute(sleeps, [*start(sleeps), scheduled(1)], [])

    err = caught.value
    assert err.index == 2
    assert err.expected is not None and err.expected.startswith("TaskScheduled #1 work")
    assert err.actual is not None and err.actual.startswith("create_timer #1")
    assert err.instance_id == IID


def test_non_determinism_wrong_activity_name() -> None:
    def renamed(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.call_activity("charge")

    with pytest.raises(NonDeterminismError) as caught:
        execute(renamed, [*start(renamed), scheduled(1, "reserve")], [])

    err = caught.value
    assert (err.index, err.expected, err.actual) == (2, "TaskScheduled #1 reserve", "call_activity #1 charge")


def test_non_determinism_missing_action_when_history_records_more_than_the_code_asks() -> None:
    def shorter(ctx: OrchestrationContext, value: Any) -> Gen:
        yield ctx.call_activity("work", input=value)
        return "early"

    with pytest.raises(NonDeterminismError) as caught:
        execute(shorter, two_in_a_row_history(), [], name="two_in_a_row")

    err = caught.value
    assert err.index == 5
    assert err.expected == "TaskScheduled #2 work input=10"
    assert err.actual == 'complete COMPLETED result="early"'


def test_non_determinism_leftover_action_the_history_never_recorded() -> None:
    def longer(ctx: OrchestrationContext, _: Any) -> Gen:
        yield when_all([ctx.call_activity("work"), ctx.call_activity("extra")])

    with pytest.raises(NonDeterminismError) as caught:
        execute(longer, [*start(longer), scheduled(1)], [])

    err = caught.value
    assert (err.index, err.expected, err.actual) == (None, "end of history", "call_activity #2 extra")


def test_a_changed_input_is_an_error_in_strict_mode() -> None:
    with pytest.raises(NonDeterminismError, match="input differs"):
        execute(two_in_a_row, [*start(two_in_a_row, 1), scheduled(1, value=2)], [], strict=True)


def test_a_changed_input_is_a_warning_otherwise() -> None:
    with pytest.warns(UserWarning, match="input differs"):
        result = execute(two_in_a_row, [*start(two_in_a_row, 1), scheduled(1, value=2)], [])

    assert result.actions == []


def test_the_same_input_written_differently_is_not_a_change() -> None:
    def keyed(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.call_activity("work", input={"a": 1, "b": 2})

    recorded = ev.task_scheduled(T0, ev.schedule_task_action(1, "work", '{"b":2,"a":1}'))

    assert execute(keyed, [*start(keyed), recorded], [], strict=True).actions == []


# -- async orchestrators ---------------------------------------------------------------------------------


async def awaiting(ctx: OrchestrationContext, value: int) -> int:
    first = await ctx.call_activity("work", input=value)
    second = await ctx.call_activity("work", input=first)
    return int(second) + 1


def test_async_def_orchestrator_schedules_on_await() -> None:
    result = execute(awaiting, [], start(awaiting, 1))

    assert kinds(result) == [(1, "scheduleTask")]


def test_async_def_orchestrator_replays_and_completes() -> None:
    old = [*start(awaiting, 1), scheduled(1, value=1), *step(T0, completed(1, 2)), scheduled(2, value=2)]

    assert output(execute(awaiting, old, step(T0, completed(2, 3)))) == 4
