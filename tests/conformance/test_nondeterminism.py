"""Non-determinism: replaying a history with changed code is detected, located and explained."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from wftest import (
    ActivityContext,
    Engine,
    Executor,
    NonDeterminismError,
    NonDeterminismWarning,
    OrchestrationContext,
    OrchestrationStatus,
    Registry,
)
from wftest.protos import orchestrator_service_pb2 as pb

from ._support import Gen


def act_a(ctx: ActivityContext, value: int) -> int:
    return value


def act_b(ctx: ActivityContext, value: int) -> int:
    return value


def act_c(ctx: ActivityContext, value: int) -> int:
    return value


def act_x(ctx: ActivityContext, value: int) -> int:
    return value


def original(ctx: OrchestrationContext, _: None) -> Gen:
    a = yield ctx.call_activity(act_a, input=1)
    b = yield ctx.call_activity(act_b, input=2)
    return [a, b]


# The history of ``original`` (indices used below):
#   0 OrchestratorStarted          3 OrchestratorStarted          6 OrchestratorStarted
#   1 ExecutionStarted wf          4 TaskCompleted #1             7 TaskCompleted #2
#   2 TaskScheduled #1 act_a       5 TaskScheduled #2 act_b       8 ExecutionCompleted


def history_of(orchestrator: Callable[..., Any], instance_id: str = "nd") -> list[pb.HistoryEvent]:
    """Run ``orchestrator`` under the name "wf" to completion; its history."""
    engine = Engine()
    engine.add_named_orchestrator("wf", orchestrator)
    engine.client.schedule_new_orchestration("wf", instance_id=instance_id)
    engine.client.wait_for_orchestration_completion(instance_id)
    return engine.history(instance_id)


def replay(changed: Callable[..., Any], history: list[pb.HistoryEvent], *, strict: bool = True,
           new_events: list[pb.HistoryEvent] | None = None) -> Any:
    """Replay ``history`` with ``changed`` registered as "wf", in a fresh executor."""
    registry = Registry()
    registry.add_named_orchestrator("wf", changed)
    return Executor(registry, "nd", strict=strict).execute(history, new_events or [])


def mismatch(changed: Callable[..., Any], history: list[pb.HistoryEvent] | None = None) -> NonDeterminismError:
    with pytest.raises(NonDeterminismError) as info:
        replay(changed, history if history is not None else history_of(original))
    return info.value


def assert_side_by_side(err: NonDeterminismError, *lines: str) -> None:
    message = str(err)
    assert "side by side" in message
    assert "history: " in message and err.expected in message
    assert f"code:    {err.actual}" in message
    for line in lines:
        assert line in message, f"{line!r} not in:\n{message}"
    assert err.instance_id == "nd"


def test_unchanged_code_replays_its_own_history_cleanly() -> None:
    # given a completed history, when the same code replays it, then no action is asked for again
    result = replay(original, history_of(original))
    assert result.actions == []


def test_changed_activity_name_is_detected() -> None:
    # given code that calls act_x where the history holds act_a
    def renamed(ctx: OrchestrationContext, _: None) -> Gen:
        a = yield ctx.call_activity(act_x, input=1)
        b = yield ctx.call_activity(act_b, input=2)
        return [a, b]

    # when it replays, then the first scheduling event does not match
    err = mismatch(renamed)
    assert err.index == 2
    assert err.expected == "TaskScheduled #1 act_a input=1"
    assert err.actual == "call_activity #1 act_x input=1"
    assert_side_by_side(err, "[2] TaskScheduled #1 act_a input=1", "call_activity #1 act_x input=1",
                        "a different activity")


def test_changed_order_is_detected() -> None:
    # given code that calls the two activities in the other order
    def reordered(ctx: OrchestrationContext, _: None) -> Gen:
        b = yield ctx.call_activity(act_b, input=2)
        a = yield ctx.call_activity(act_a, input=1)
        return [a, b]

    err = mismatch(reordered)
    assert err.index == 2
    assert err.expected == "TaskScheduled #1 act_a input=1"
    assert err.actual == "call_activity #1 act_b input=2"
    assert_side_by_side(err)


def test_removed_step_is_detected() -> None:
    # given code that no longer calls act_b
    def removed(ctx: OrchestrationContext, _: None) -> Gen:
        a = yield ctx.call_activity(act_a, input=1)
        return [a]

    # when it replays, then the history's TaskScheduled #2 has no counterpart: the code completed instead
    err = mismatch(removed)
    assert err.index == 5
    assert err.expected == "TaskScheduled #2 act_b input=2"
    assert err.actual == "complete COMPLETED result=[1]"
    assert_side_by_side(err, "[2] TaskScheduled #1 act_a input=1", "> [5] TaskScheduled #2 act_b input=2")


def test_added_step_is_detected_where_the_history_says_the_orchestration_ended() -> None:
    # given code that calls a third activity
    def added(ctx: OrchestrationContext, _: None) -> Gen:
        a = yield ctx.call_activity(act_a, input=1)
        b = yield ctx.call_activity(act_b, input=2)
        yield ctx.call_activity(act_c, input=3)
        return [a, b]

    # when it replays the completed history, then the completion has no counterpart: the code asked for act_c
    err = mismatch(added)
    assert err.index == 8
    assert err.expected == "ExecutionCompleted COMPLETED result=[1, 2]"
    assert err.actual == "call_activity #3 act_c input=3"
    assert_side_by_side(err, "[8] ExecutionCompleted COMPLETED result=[1, 2]", "call_activity #3 act_c input=3")


def test_added_step_at_the_end_of_a_running_history_is_detected() -> None:
    # given the history of a still-running instance (up to act_b's result) and code with an extra call
    def added_more(ctx: OrchestrationContext, _: None) -> Gen:
        a = yield ctx.call_activity(act_a, input=1)
        b = yield ctx.call_activity(act_b, input=2)
        c = yield ctx.call_activity(act_c, input=3)
        return [a, b, c]

    def original_waiting(ctx: OrchestrationContext, _: None) -> Gen:
        a = yield ctx.call_activity(act_a, input=1)
        b = yield ctx.call_activity(act_b, input=2)
        c = yield ctx.wait_for_external_event("go")
        return [a, b, c]

    engine = Engine()
    engine.add_named_orchestrator("wf", original_waiting)
    engine.client.schedule_new_orchestration("wf", instance_id="nd")
    engine.run_until_idle()
    history = engine.history("nd")
    # when it replays, then the extra action is one the history never recorded
    err = mismatch(added_more, history)
    assert err.index is None
    assert err.expected == "end of history"
    assert err.actual == "call_activity #3 act_c input=3"
    assert "history never recorded" in str(err)
    assert_side_by_side(err)


def test_changed_input_is_an_error_in_strict_mode() -> None:
    # given code that passes a different input to act_a
    def new_input(ctx: OrchestrationContext, _: None) -> Gen:
        a = yield ctx.call_activity(act_a, input=99)
        b = yield ctx.call_activity(act_b, input=2)
        return [a, b]

    # when it replays in strict mode, then NonDeterminismError names the recorded and the new input
    err = mismatch(new_input)
    assert err.index == 2
    assert err.expected == "1"
    assert err.actual == "99"
    assert "input differs" in str(err)


def test_changed_input_is_a_warning_otherwise() -> None:
    # given the same changed input
    def new_input_lenient(ctx: OrchestrationContext, _: None) -> Gen:
        a = yield ctx.call_activity(act_a, input=99)
        b = yield ctx.call_activity(act_b, input=2)
        return [a, b]

    history = history_of(original)
    # when it replays without strict mode (up to act_b's result, which arrives as a new event), then a
    # NonDeterminismWarning is issued and the execution goes on
    with pytest.warns(NonDeterminismWarning, match="input differs"):
        result = replay(new_input_lenient, history[:6], strict=False, new_events=history[6:8])
    assert result.actions[-1].completeOrchestration.result.value == "[1, 2]"


def test_equivalent_json_input_is_not_a_change() -> None:
    # given a history whose activity input was written with different JSON spacing
    history = history_of(original)
    history[2].taskScheduled.input.value = " 1 "
    # when the original code replays it strictly, then nothing is reported
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        replay(original, history)


def test_changed_timer_fire_time_is_detected() -> None:
    def one_hour(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.create_timer(timedelta(hours=1))
        return "done"

    def two_hours(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.create_timer(timedelta(hours=2))
        return "done"

    err = mismatch(two_hours, history_of(one_hour))
    assert err.index == 2
    assert err.expected == "TimerCreated #1 fireAt=2024-01-01T01:00:00"
    assert err.actual == "create_timer #1 fireAt=2024-01-01T02:00:00"
    assert_side_by_side(err, "different fire time")


def test_changed_kind_of_action_is_detected() -> None:
    # given code that waits on a timer where the history holds an activity
    def timer_instead(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.create_timer(timedelta(hours=1))
        b = yield ctx.call_activity(act_b, input=2)
        return [1, b]

    err = mismatch(timer_instead)
    assert err.index == 2
    assert err.expected == "TaskScheduled #1 act_a input=1"
    assert err.actual == "create_timer #1 fireAt=2024-01-01T01:00:00"
    assert_side_by_side(err)


def test_changed_sub_orchestrator_name_is_detected() -> None:
    def child_one(ctx: OrchestrationContext, _: None) -> str:
        return "one"

    def child_two(ctx: OrchestrationContext, _: None) -> str:
        return "two"

    def calls_one(ctx: OrchestrationContext, _: None) -> Gen:
        result = yield ctx.call_sub_orchestrator(child_one)
        return result

    def calls_two(ctx: OrchestrationContext, _: None) -> Gen:
        result = yield ctx.call_sub_orchestrator(child_two)
        return result

    err = mismatch(calls_two, history_of(calls_one))
    assert err.index == 2
    assert "child_one" in err.expected and "id=nd:0001" in err.expected
    assert err.actual.startswith("call_sub_orchestrator #1 child_two")
    assert_side_by_side(err, "a different sub-orchestrator")


def test_engine_fails_an_instance_whose_code_changed_between_steps() -> None:
    # given a stateless engine (every step replays) running an instance of version 1, waiting for an event
    version = {"current": 1}

    def evolving(ctx: OrchestrationContext, _: None) -> Gen:
        first = act_a if version["current"] == 1 else act_x
        a = yield ctx.call_activity(first, input=1)
        b = yield ctx.wait_for_external_event("go")
        return [a, b]

    engine = Engine(sticky=False)
    iid = engine.client.schedule_new_orchestration(evolving, instance_id="nd")
    engine.run_until_idle()
    # when the code changes and the next step replays the history
    version["current"] = 2
    engine.client.raise_orchestration_event(iid, "go", data=2)
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the instance fails with the non-determinism report
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert state.failure_details.error_type == "wftest.errors.NonDeterminismError"
    message = state.failure_details.message
    assert "history event #2" in message and "act_a" in message and "act_x" in message
    assert "side by side" in message


def test_new_executor_of_a_fresh_engine_replays_a_saved_history() -> None:
    # given a history written by one engine
    history = history_of(original)

    def renamed_again(ctx: OrchestrationContext, _: None) -> Gen:
        a = yield ctx.call_activity(act_x, input=1)
        return [a]

    # when a fresh stateless engine with changed code replays it through new_executor
    engine = Engine(sticky=False)
    engine.add_named_orchestrator("wf", renamed_again)
    with pytest.raises(NonDeterminismError) as info:
        engine.new_executor("nd").execute(history, [])
    # then the mismatch is reported at the first scheduling event
    assert info.value.index == 2
    assert info.value.actual == "call_activity #1 act_x input=1"
