"""The executor and cancellation, on hand-built histories: the cancel event is treated at the point where it
appears in history, and replays reproduce it exactly. No engine, no clock."""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from datetime import datetime, timedelta
from typing import Any

import pytest

from wftest import (
    Executor,
    FailureDetails,
    NonDeterminismError,
    OrchestrationCancelledError,
    OrchestrationContext,
    Registry,
    RetryPolicy,
    Task,
)
from wftest import _events as ev
from wftest.orchestration import ExecutionResult
from wftest.orchestration._cancel import CANCEL_EVENT, decode_reason, encode_cancel
from wftest.protos import orchestrator_service_pb2 as pb

Gen = Generator[Task[Any], Any, Any]
Events = list[pb.HistoryEvent]

T0 = datetime(2024, 1, 1)
T1 = T0 + timedelta(minutes=1)
T2 = T0 + timedelta(minutes=2)
IID = "i1"
HOUR = timedelta(hours=1)


def enc(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def start(fn: Callable[..., Any]) -> Events:
    return [ev.orchestrator_started(T0), ev.execution_started(T0, fn.__name__, IID, None)]


def step(at: datetime, *events: pb.HistoryEvent) -> Events:
    return [ev.orchestrator_started(at), *events]


def cancel(reason: str | None = "stop", at: datetime = T1) -> pb.HistoryEvent:
    return ev.event_raised(at, CANCEL_EVENT, encode_cancel(reason))


def scheduled(action_id: int, name: str, value: Any = None, at: datetime = T0) -> pb.HistoryEvent:
    return ev.task_scheduled(at, ev.schedule_task_action(action_id, name, enc(value)))


def completed(action_id: int, result: Any = None, at: datetime = T1) -> pb.HistoryEvent:
    return ev.task_completed(at, action_id, enc(result))


def timer_created(action_id: int, fire_at: datetime, at: datetime = T0) -> pb.HistoryEvent:
    return ev.timer_created(at, ev.create_timer_action(action_id, fire_at))


def timer_fired(action_id: int, fire_at: datetime) -> pb.HistoryEvent:
    return ev.timer_fired(fire_at, action_id, ev.timestamp(fire_at))


def execute(fn: Callable[..., Any], old: Events, new: Events) -> ExecutionResult:
    registry = Registry()
    registry.add_orchestrator(fn)
    return Executor(registry, IID, strict=True).execute(old, new)


def described(result: ExecutionResult) -> list[str]:
    return [ev.describe_action(a) for a in result.actions]


def output(result: ExecutionResult) -> Any:
    action = result.completion
    assert action is not None, described(result)
    done = action.completeOrchestration
    assert done.orchestrationStatus == pb.ORCHESTRATION_STATUS_COMPLETED, done
    return json.loads(done.result.value) if done.HasField("result") else None


def recorded(result: ExecutionResult, at: datetime) -> Events:
    """The history events the runtime writes for a step's scheduling actions (tasks, timers, sent events)."""
    events: Events = []
    for action in result.actions:
        kind = action.WhichOneof("orchestratorActionType")
        if kind == "scheduleTask":
            events.append(ev.task_scheduled(at, action))
        elif kind == "createTimer":
            events.append(ev.timer_created(at, action))
        elif kind == "sendEvent":
            events.append(ev.event_sent(at, action))
        elif kind == "createSubOrchestration":
            events.append(ev.sub_orchestration_created(at, action))
    return events


# -- orchestrators --------------------------------------------------------------------------------------


def guarded(ctx: OrchestrationContext, _: Any) -> Gen:
    work = ctx.call_activity("work")
    try:
        return {"work": (yield work)}
    except OrchestrationCancelledError as err:
        with ctx.disconnected():
            late = yield work
            undo = yield ctx.call_activity("undo", input=late)
        return {"cancelled": err.reason, "late": late, "undo": undo}


def guarded_history() -> Events:
    return [*start(guarded), scheduled(1, "work")]


def with_child(ctx: OrchestrationContext, _: Any) -> Gen:
    child = ctx.call_sub_orchestrator("kid", instance_id="kid-1")
    timer = ctx.create_timer(HOUR)
    try:
        yield child
    except OrchestrationCancelledError:
        return {"timer_cancelled": timer.is_cancelled}


def with_child_history() -> Events:
    created = ev.sub_orchestration_created(T0, ev.create_sub_orchestration_action(1, "kid", "kid-1", None))
    return [*start(with_child), created, timer_created(2, T0 + HOUR)]


# -- at its point in history ---------------------------------------------------------------------------


def test_the_cancel_interrupts_the_wait_and_the_code_schedules_its_cleanup() -> None:
    result = execute(guarded, guarded_history(), step(T1, cancel(), completed(1, "w")))

    assert described(result) == ['call_activity #2 undo input="w"']


def test_a_result_before_the_cancel_in_the_same_step_wins() -> None:
    result = execute(guarded, guarded_history(), step(T1, completed(1, "w"), cancel()))

    assert output(result) == {"work": "w"}


def test_a_cancel_event_in_the_replayed_history_replays_without_new_actions() -> None:
    first = execute(guarded, guarded_history(), step(T1, cancel(), completed(1, "w")))
    history = [*guarded_history(), *step(T1, cancel(), completed(1, "w")), *recorded(first, T1)]

    replayed = execute(guarded, history, step(T2, completed(2, "u", at=T2)))

    assert output(replayed) == {"cancelled": "stop", "late": "w", "undo": "u"}


def test_running_children_get_the_cancel_as_a_sent_event_with_the_reason() -> None:
    result = execute(with_child, with_child_history(), step(T1, cancel("parent stops")))

    assert result.actions[0].sendEvent.name == CANCEL_EVENT
    assert result.actions[0].sendEvent.instance.instanceId == "kid-1"
    assert decode_reason(result.actions[0].sendEvent.data.value) == "parent stops"
    assert described(result)[0] == "send_event #3 wftest.cancel to=kid-1"
    assert output(result) == {"timer_cancelled": True}


def test_a_history_missing_the_sent_cancel_is_non_determinism() -> None:
    history = [*with_child_history(), *step(T1, cancel())]  # EventSent #3 is missing

    with pytest.raises(NonDeterminismError, match=r"send_event #3 wftest\.cancel to=kid-1"):
        execute(with_child, history, [])


def test_the_firing_of_a_timer_cancelled_with_the_instance_is_ignored_on_replay() -> None:
    def naps(ctx: OrchestrationContext, _: Any) -> Gen:
        try:
            yield ctx.create_timer(HOUR)
        except OrchestrationCancelledError:
            with ctx.disconnected():
                yield ctx.create_timer(2 * HOUR)
            return ctx.current_utc_datetime.isoformat()

    history = [*start(naps), timer_created(1, T0 + HOUR), *step(T1, cancel()), timer_created(2, T1 + 2 * HOUR, at=T1),
               *step(T0 + HOUR, timer_fired(1, T0 + HOUR))]

    result = execute(naps, history, step(T1 + 2 * HOUR, timer_fired(2, T1 + 2 * HOUR)))

    assert output(result) == (T1 + 2 * HOUR).isoformat()


def test_a_chunked_long_timer_cancelled_ignores_its_next_chunk() -> None:
    def sleeps(ctx: OrchestrationContext, _: Any) -> Gen:
        try:
            yield ctx.create_timer(timedelta(days=10))
        except OrchestrationCancelledError:
            return "cancelled"

    chunk = T0 + timedelta(days=3)
    history = [*start(sleeps), timer_created(1, chunk)]

    result = execute(sleeps, history, step(T1, cancel(), timer_fired(1, chunk)))

    assert output(result) == "cancelled"
    assert [a.WhichOneof("orchestratorActionType") for a in result.actions] == ["completeOrchestration"]


def test_a_cancel_held_while_suspended_is_processed_on_resume() -> None:
    suspended = [ev.execution_suspended(T1, None), cancel()]

    held = execute(guarded, guarded_history(), step(T1, *suspended))
    resumed = execute(guarded, [*guarded_history(), *step(T1, *suspended)],
                      step(T2, ev.execution_resumed(T2, None), completed(1, "w", at=T2)))

    assert held.actions == []
    assert described(resumed) == ['call_activity #2 undo input="w"']


def test_a_cancel_after_completion_is_ignored() -> None:
    def quick(ctx: OrchestrationContext, _: Any) -> str:
        return "done"

    result = execute(quick, [], [*start(quick), cancel()])

    assert output(result) == "done"


def test_refused_calls_take_no_sequence_number() -> None:
    def late_calls(ctx: OrchestrationContext, _: Any) -> Gen:
        try:
            yield ctx.wait_for_external_event("never")
        except OrchestrationCancelledError:
            pass
        refused = [ctx.call_activity("a"), ctx.create_timer(HOUR), ctx.call_sub_orchestrator("kid")]
        assert all(t.is_failed and isinstance(t.get_exception(), OrchestrationCancelledError) for t in refused)
        with ctx.disconnected():
            ctx.call_activity("cleanup")
            yield ctx.create_timer(HOUR)

    result = execute(late_calls, start(late_calls), step(T1, cancel()))

    assert described(result) == ["call_activity #1 cleanup", "create_timer #2 fireAt=2024-01-01T01:01:00"]


def test_a_disconnected_retried_call_keeps_retrying_after_the_cancel() -> None:
    def retries(ctx: OrchestrationContext, _: Any) -> Gen:
        with ctx.disconnected():
            task = ctx.call_activity("flaky", retry_policy=RetryPolicy(first_retry_interval=HOUR))
        try:
            yield ctx.create_timer(timedelta(days=1))
        except OrchestrationCancelledError:
            with ctx.disconnected():
                return (yield task)

    failure = ev.task_failed(T1, 1, FailureDetails(message="down", error_type="x.Down"))
    history = [*start(retries), scheduled(1, "flaky"), timer_created(2, T0 + timedelta(days=1))]

    result = execute(retries, history, step(T1, cancel(), failure))

    assert described(result) == ["create_timer #3 fireAt=2024-01-01T01:01:00"]  # the retry's timer


def test_the_reserved_name_is_not_delivered_to_waiters() -> None:
    def waits(ctx: OrchestrationContext, _: Any) -> Gen:
        try:
            return (yield ctx.wait_for_external_event(CANCEL_EVENT))
        except OrchestrationCancelledError:
            return "cancelled, not an event"

    result = execute(waits, start(waits), step(T1, cancel()))

    assert output(result) == "cancelled, not an event"


def test_the_failure_of_an_escaping_cancel_names_the_error_type_and_reason() -> None:
    def escapes(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.create_timer(HOUR)

    result = execute(escapes, [*start(escapes), timer_created(1, T0 + HOUR)], step(T1, cancel("why not")))

    action = result.completion
    assert action is not None
    done = action.completeOrchestration
    assert done.orchestrationStatus == pb.ORCHESTRATION_STATUS_FAILED
    assert done.failureDetails.errorType == "wftest.errors.OrchestrationCancelledError"
    assert "orchestration 'i1' was cancelled (reason: why not)" in done.failureDetails.errorMessage


def test_a_task_that_fails_after_the_cancel_raises_its_own_failure_in_the_cleanup() -> None:
    result = execute(guarded, guarded_history(),
                     step(T1, cancel(), ev.task_failed(T1, 1, FailureDetails(
                         message="no room", error_type="x.Full"))))

    done = result.completion
    assert done is not None
    assert done.completeOrchestration.failureDetails.errorType == "wftest.errors.TaskFailedError"
    assert "no room" in done.completeOrchestration.failureDetails.errorMessage


@pytest.mark.parametrize(("data", "reason"), [
    (encode_cancel("why"), "why"), (encode_cancel(None), None), ('"bare"', "bare"), ("not json", "not json"),
    (None, None), ('{"reason": {"code": 7}}', '{"code": 7}'), ("[1, 2]", "[1, 2]"),
])
def test_the_reason_is_read_tolerantly(data: str | None, reason: str | None) -> None:
    assert decode_reason(data) == reason
