"""Runtime status, custom status, and replay-safe values (new_uuid)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from wftest import Engine, OrchestrationContext, OrchestrationStalledError, OrchestrationStatus, WaitTimeoutError

from ._support import T0, Gen


def test_status_is_pending_before_the_first_step() -> None:
    # given a scheduled orchestration that no step has run yet
    def quick(ctx: OrchestrationContext, _: None) -> str:
        return "ok"

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(quick)
    # then it is PENDING
    assert engine.client.get_orchestration_state(iid).runtime_status == OrchestrationStatus.PENDING


def test_status_is_pending_until_a_delayed_start() -> None:
    # given an orchestration scheduled to start in an hour
    def delayed(ctx: OrchestrationContext, _: None) -> str:
        return ctx.current_utc_datetime.isoformat()

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(delayed, start_at=T0 + timedelta(hours=1))
    # when the engine runs what is due now
    engine.run_until_idle()
    # then it is still PENDING, and it starts at its time
    state = engine.client.get_orchestration_state(iid)
    assert state.runtime_status == OrchestrationStatus.PENDING
    assert state.scheduled_start_at == T0 + timedelta(hours=1)
    started = engine.client.wait_for_orchestration_start(iid)
    assert started.runtime_status != OrchestrationStatus.PENDING
    assert engine.client.wait_for_orchestration_completion(iid).output == "2024-01-01T01:00:00"


def test_status_is_running_while_waiting() -> None:
    # given an orchestration waiting on a timer
    def sleeper(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.create_timer(timedelta(hours=1))
        return None

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(sleeper)
    engine.run_until_idle()
    # then it is RUNNING
    assert engine.client.get_orchestration_state(iid).runtime_status == OrchestrationStatus.RUNNING


def test_status_of_a_finished_instance_is_its_final_status() -> None:
    def ok(ctx: OrchestrationContext, _: None) -> str:
        return "ok"

    def bad(ctx: OrchestrationContext, _: None) -> str:
        raise ValueError("bad")

    engine = Engine()
    ok_id = engine.client.schedule_new_orchestration(ok)
    bad_id = engine.client.schedule_new_orchestration(bad)
    engine.run_until_idle()
    assert engine.client.get_orchestration_state(ok_id).runtime_status == OrchestrationStatus.COMPLETED
    assert engine.client.get_orchestration_state(bad_id).runtime_status == OrchestrationStatus.FAILED


def test_status_is_a_str_enum() -> None:
    assert OrchestrationStatus.COMPLETED == "COMPLETED"


def test_custom_status_is_visible_while_running_and_after_completion() -> None:
    # given an orchestration that sets a custom status before waiting, and another before finishing
    def reporter(ctx: OrchestrationContext, _: None) -> Gen:
        ctx.set_custom_status({"stage": "waiting"})
        yield ctx.wait_for_external_event("go")
        ctx.set_custom_status({"stage": "done"})
        return "finished"

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(reporter)
    engine.run_until_idle()
    # then the client sees the first while it runs
    state = engine.client.get_orchestration_state(iid)
    assert state.runtime_status == OrchestrationStatus.RUNNING
    assert state.custom_status == {"stage": "waiting"}
    # and the last after it completes
    engine.client.raise_orchestration_event(iid, "go")
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.custom_status == {"stage": "done"}
    assert state.serialized_custom_status == '{"stage": "done"}'


def test_custom_status_survives_steps_that_do_not_set_it() -> None:
    # given an orchestration that sets its custom status once, then runs more steps
    def set_once(ctx: OrchestrationContext, _: None) -> Gen:
        ctx.set_custom_status("set once")
        yield ctx.create_timer(timedelta(minutes=1))
        yield ctx.create_timer(timedelta(minutes=1))
        return None

    engine = Engine(sticky=False)
    iid = engine.client.schedule_new_orchestration(set_once)
    # then the status is still there at the end
    assert engine.client.wait_for_orchestration_completion(iid).custom_status == "set once"


def test_new_uuid_is_deterministic_and_matches_durabletask() -> None:
    # given instance "i3" started at 2024-01-01T00:00:00, asking for two uuids
    def uuids(ctx: OrchestrationContext, _: None) -> list[str]:
        return [ctx.new_uuid(), ctx.new_uuid()]

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(uuids, instance_id="i3")
    # then they are durabletask-python's uuid5 values
    assert engine.client.wait_for_orchestration_completion(iid).output == [
        "48024876-d0e7-5a7a-9329-4025f0c7a391",
        "1ca7cca0-1ee3-50c6-b959-9717e07c2c8c",
    ]


def test_new_uuid_is_the_same_on_replay() -> None:
    # given a stateless engine and an orchestrator that returns a uuid made before a timer
    def uuid_then_timer(ctx: OrchestrationContext, _: None) -> Gen:
        made = ctx.new_uuid()
        yield ctx.create_timer(timedelta(minutes=1))
        return [made, ctx.new_uuid()]

    engine = Engine(sticky=False)
    iid = engine.client.schedule_new_orchestration(uuid_then_timer, instance_id="i3")
    first, second = engine.client.wait_for_orchestration_completion(iid).output
    # then the first value (regenerated on replay) is the value of the first step, and the second differs
    assert first == "48024876-d0e7-5a7a-9329-4025f0c7a391"
    assert second not in (first, "1ca7cca0-1ee3-50c6-b959-9717e07c2c8c")


def test_state_reports_timestamps_input_and_name() -> None:
    # given an orchestration that finishes after a day
    def day_long(ctx: OrchestrationContext, value: int) -> Gen:
        yield ctx.create_timer(timedelta(days=1))
        return value + 1

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(day_long, input=1)
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the state has its name, input, output and times
    assert (state.name, state.input, state.output) == ("day_long", 1, 2)
    assert state.created_at == T0
    assert state.completed_at == T0 + timedelta(days=1)
    assert state.last_updated_at == T0 + timedelta(days=1)


def test_waiting_on_an_instance_that_can_never_finish_raises_instead_of_hanging() -> None:
    # given an orchestration waiting for an event nobody will raise
    def stuck(ctx: OrchestrationContext, _: None) -> Gen:
        value = yield ctx.wait_for_external_event("never")
        return value

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(stuck)
    # when a client waits for its completion, then a clear error names what it waits for
    with pytest.raises(OrchestrationStalledError, match="never"):
        engine.client.wait_for_orchestration_completion(iid)


def test_waiting_past_the_timeout_raises_wait_timeout_error_in_virtual_time() -> None:
    # given an orchestration that takes a day
    def day(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.create_timer(timedelta(days=1))
        return None

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(day)
    # when waiting with a one-hour timeout, then WaitTimeoutError (a TimeoutError) one virtual hour later
    with pytest.raises(WaitTimeoutError) as info:
        engine.client.wait_for_orchestration_completion(iid, timeout=timedelta(hours=1))
    assert isinstance(info.value, TimeoutError)
    assert engine.clock.now() == T0 + timedelta(hours=1)
