"""Continue-as-new: loops, fresh histories, carried-over events, discarded actions, endless loops."""

from __future__ import annotations

from datetime import timedelta

from wftest import ActivityContext, Engine, OrchestrationContext, OrchestrationStatus

from ._support import Gen, ids, kinds, of_kind

calls: list[str] = []


def record(ctx: ActivityContext, value: str) -> str:
    calls.append(value)
    return value


def test_continue_as_new_loop_of_ten_generations() -> None:
    # given an orchestrator that counts to 10 by continuing as new, one timer per generation
    def counter(ctx: OrchestrationContext, n: int) -> Gen:
        if n >= 10:
            return n
        yield ctx.create_timer(timedelta(minutes=1))
        ctx.continue_as_new(n + 1)
        return None

    engine = Engine()
    # when it runs
    iid = engine.client.schedule_new_orchestration(counter, input=0, instance_id="loop")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then it completes with 10 after ten generations of one minute each
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.output == 10
    assert engine.clock.now().isoformat() == "2024-01-01T00:10:00"


def test_continue_as_new_starts_a_fresh_history() -> None:
    # given an orchestrator that does some work, then continues as new once
    def once_more(ctx: OrchestrationContext, n: int) -> Gen:
        yield ctx.call_activity(record, input=f"gen {n}")
        if n == 0:
            yield ctx.create_timer(timedelta(minutes=1))
            ctx.continue_as_new(1)
            return None
        return "second generation done"

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(once_more, input=0, instance_id="fresh")
    engine.run_until_idle()  # the first generation waits on its timer
    assert ids(engine.history(iid))[-1] == "TimerCreated#2"
    execution_before = engine.client.get_orchestration_state(iid).execution_id
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the history holds only the last generation: OrchestratorStarted, ExecutionStarted(same name,
    # new input), its own work (ids from 1 again), its completion
    history = engine.history(iid)
    assert state.output == "second generation done"
    assert kinds(history)[:2] == ["orchestratorStarted", "executionStarted"]
    started = of_kind(history, "executionStarted")
    assert len(started) == 1
    assert (started[0].executionStarted.name, started[0].executionStarted.input.value) == ("once_more", "1")
    assert ids(history) == ["ExecutionStarted", "TaskScheduled#1", "TaskCompleted#1", "ExecutionCompleted"]
    assert state.input == 1
    assert state.execution_id != execution_before


def test_continue_as_new_with_save_events_carries_unread_events() -> None:
    # given three "x" events raised before an orchestrator that reads one and continues as new
    def carrier(ctx: OrchestrationContext, n: int) -> Gen:
        if n == 0:
            first = yield ctx.wait_for_external_event("x")
            ctx.continue_as_new(first, save_events=True)
            return None
        second = yield ctx.wait_for_external_event("x")
        third = yield ctx.wait_for_external_event("x")
        return [n, second, third]

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(carrier, input=0, instance_id="carry")
    for data in ("one", "two", "three"):
        engine.client.raise_orchestration_event(iid, "x", data=data)
    # when it runs
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the unread events were carried into the new generation, in order
    assert state.output == ["one", "two", "three"]
    history = engine.history(iid)
    assert kinds(history)[:4] == ["orchestratorStarted", "executionStarted", "eventRaised", "eventRaised"]
    assert [e.eventRaised.input.value for e in of_kind(history, "eventRaised")] == ['"two"', '"three"']


def test_continue_as_new_without_save_events_drops_unread_events() -> None:
    # given the same, without save_events
    def dropper(ctx: OrchestrationContext, n: int) -> Gen:
        if n == 0:
            yield ctx.wait_for_external_event("x")
            ctx.continue_as_new(1)
            return None
        value = yield ctx.wait_for_external_event("x", timeout=timedelta(minutes=1))
        return value

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(dropper, input=0)
    engine.client.raise_orchestration_event(iid, "x", data="read")
    engine.client.raise_orchestration_event(iid, "x", data="unread")
    # when it runs
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the second generation did not see the unread event (its wait timed out)
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert "eventRaised" not in kinds(engine.history(iid))


def test_continue_as_new_discards_the_other_actions_of_its_step() -> None:
    # given an orchestrator that schedules an activity without waiting, then continues as new
    def discards(ctx: OrchestrationContext, n: int) -> Gen:
        if n == 0:
            ctx.call_activity(record, input="discarded")
            ctx.create_timer(timedelta(minutes=5))
            ctx.continue_as_new(1)
            return None
        result = yield ctx.call_activity(record, input="kept")
        return result

    calls.clear()
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(discards, input=0, instance_id="discard")
    # when it runs
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the discarded activity never ran and the new history holds only the second generation's work
    assert state.output == "kept"
    assert calls == ["kept"]
    assert ids(engine.history(iid)) == ["ExecutionStarted", "TaskScheduled#1", "TaskCompleted#1", "ExecutionCompleted"]


def test_endless_tight_continue_as_new_loop_fails_with_a_clear_error() -> None:
    # given an orchestrator that continues as new forever without waiting for anything
    def endless(ctx: OrchestrationContext, n: int) -> None:
        ctx.continue_as_new(n + 1)

    engine = Engine(max_continue_as_new_per_step=50)
    # when it runs
    iid = engine.client.schedule_new_orchestration(endless, input=0)
    state = engine.client.wait_for_orchestration_completion(iid)
    # then it fails with a message that says what happened
    assert state.runtime_status == OrchestrationStatus.FAILED
    message = state.failure_details.message
    assert "continued as new" in message and "endless loop" in message


def test_endless_tight_continue_as_new_loop_fails_with_default_limit() -> None:
    # given the same orchestrator on a default engine
    def endless_default(ctx: OrchestrationContext, n: int) -> None:
        ctx.continue_as_new(n + 1)

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(endless_default, input=0)
    # then it fails too (never hangs)
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert "endless loop" in state.failure_details.message


def test_continue_as_new_keeps_the_instance_id_and_name() -> None:
    # given an orchestrator that reports who it is in its second generation
    def whoami(ctx: OrchestrationContext, n: int) -> Gen:
        if n == 0:
            yield ctx.create_timer(timedelta(seconds=1))
            ctx.continue_as_new(1)
            return None
        return [ctx.instance_id, ctx.name, n]

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(whoami, input=0, instance_id="same-id")
    assert engine.client.wait_for_orchestration_completion(iid).output == ["same-id", "whoami", 1]
