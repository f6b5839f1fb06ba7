"""WorkflowTester: runs, mocks, expectations, callbacks at virtual times, replay check, limits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import pytest

from wftest import (
    ANY,
    ExpectationError,
    NonDeterminismError,
    OrchestrationContext,
    OrchestrationFailedError,
    OrchestrationStalledError,
    RunLimitError,
    Task,
    TaskFailedError,
    UnexpectedCallError,
    WorkflowTester,
    when_all,
)

Gen = Generator[Task[Any], Any, Any]


def charge_card(ctx: Any, order: dict[str, Any]) -> dict[str, Any]:
    raise AssertionError("the real charge_card must not run in these tests")


def reserve(ctx: Any, sku: str) -> str:
    return f"reserved {sku}"


def wall_clock(ctx: Any, _: Any) -> str:
    return dt.datetime.now().isoformat()


def order_workflow(ctx: OrchestrationContext, order: dict[str, Any]) -> Gen:
    reservations = yield when_all([ctx.call_activity(reserve, input=sku) for sku in order["skus"]])
    receipt = yield ctx.call_activity(charge_card, input=order)
    return {"reservations": reservations, "receipt": receipt}


def approval_workflow(ctx: OrchestrationContext, _: Any) -> Gen:
    decision = yield ctx.wait_for_external_event("approval")
    yield ctx.create_timer(timedelta(days=30))
    return decision


def test_run_completes_with_mocked_and_real_activities() -> None:
    tester = WorkflowTester()
    tester.on_activity(charge_card).returns({"ok": True})
    result = tester.run(order_workflow, {"skus": ["pen", "ink"]})
    assert result.status == "COMPLETED"
    assert result.output == {"reservations": ["reserved pen", "reserved ink"], "receipt": {"ok": True}}


def test_calls_are_recorded_with_inputs_and_virtual_times() -> None:
    tester = WorkflowTester()
    tester.on_activity(charge_card).returns("r")
    tester.run(order_workflow, {"skus": ["pen"]})
    [charge] = tester.calls(charge_card)
    assert charge.input == {"skus": ["pen"]} and charge.mocked
    assert charge.at == tester.start_time
    assert [c.input for c in tester.calls(reserve)] == ["pen"]


def test_mock_after_delays_the_result_in_virtual_time() -> None:
    tester = WorkflowTester()
    tester.on_activity(charge_card).returns("r").after(timedelta(minutes=5))
    result = tester.run(order_workflow, {"skus": []})
    assert result.virtual_duration == timedelta(minutes=5)


def test_mock_raises_fails_the_task() -> None:
    def guarded(ctx: OrchestrationContext, _: Any) -> Gen:
        try:
            yield ctx.call_activity(charge_card, input={})
        except TaskFailedError as err:
            return err.details.error_type
        return "no error"

    tester = WorkflowTester()
    tester.on_activity(charge_card).raises(ValueError("declined"))
    assert tester.run(guarded).output == "builtins.ValueError"


def test_mock_calls_computes_the_result_from_the_input() -> None:
    tester = WorkflowTester()
    tester.on_activity(reserve).calls(lambda sku: sku.upper())
    tester.on_activity(charge_card).returns(None)
    result = tester.run(order_workflow, {"skus": ["pen"]})
    assert result.output["reservations"] == ["PEN"]


def test_matchers_choose_the_mock_in_declaration_order() -> None:
    tester = WorkflowTester()
    tester.on_activity(reserve, "pen").returns("special")
    tester.on_activity(reserve, lambda sku: sku.startswith("i")).returns("predicate")
    tester.on_activity(reserve, ANY).returns("any")
    tester.on_activity(charge_card).returns(None)
    result = tester.run(order_workflow, {"skus": ["pen", "ink", "pad"]})
    assert result.output["reservations"] == ["special", "predicate", "any"]


def test_unmatched_call_fails_the_run_listing_the_declared_mocks() -> None:
    tester = WorkflowTester()
    tester.on_activity(reserve, "pen").returns("ok")
    tester.on_activity(charge_card).returns(None)
    with pytest.raises(UnexpectedCallError, match=r"(?s)'ink'.*on_activity\('reserve', 'pen'\)"):
        tester.run(order_workflow, {"skus": ["ink"]})


def test_assert_expectations_lists_each_unmet_mock_with_counts_and_calls() -> None:
    tester = WorkflowTester()
    tester.on_activity(charge_card).returns(None).times(2)
    tester.on_activity("never_called").returns(None)
    tester.on_activity(reserve).returns("r").once()  # met: not listed
    tester.run(order_workflow, {"skus": ["pen"]})
    with pytest.raises(ExpectationError) as err:
        tester.assert_expectations()
    assert str(err.value) == (
        "2 mocks not called as declared:\n"
        "  on_activity('charge_card').returns(None).times(2): expected exactly 2 calls, got 1\n"
        "    2024-01-01 00:00:00  input={'skus': ['pen']}  (instance 'test-instance', task #2)\n"
        "  on_activity('never_called').returns(None): expected at least 1 call, got 0"
    )


def test_expectation_report_shows_the_virtual_time_of_each_call_and_caps_the_list() -> None:
    def seven(ctx: OrchestrationContext, _: Any) -> Gen:
        for n in range(7):
            yield ctx.create_timer(timedelta(hours=1))
            yield ctx.call_activity(reserve, input=n)

    tester = WorkflowTester()
    tester.on_activity(reserve).returns("r").times(8)
    tester.run(seven)
    with pytest.raises(ExpectationError) as err:
        tester.assert_expectations()
    lines = str(err.value).splitlines()
    assert lines[:3] == [
        "1 mock not called as declared:",
        "  on_activity('reserve').returns('r').times(8): expected exactly 8 calls, got 7",
        "    2024-01-01 01:00:00  input=0  (instance 'test-instance', task #2)",
    ]
    assert lines[-2:] == [
        "    2024-01-01 05:00:00  input=4  (instance 'test-instance', task #10)",
        "    ... and 2 more",
    ]


def test_any_times_mock_is_never_reported_whether_called_or_not() -> None:
    tester = WorkflowTester()
    tester.on_activity(charge_card).returns("r").any_times()
    tester.on_activity("never_called").returns(None).any_times()
    tester.on_activity(reserve).calls(lambda sku: sku).any_times()
    result = tester.run(order_workflow, {"skus": ["a", "b", "c"]})
    assert result.output == {"reservations": ["a", "b", "c"], "receipt": "r"}
    tester.assert_expectations()  # 1, 0 and 3 calls: all fine


def test_any_times_after_times_lifts_the_limit() -> None:
    tester = WorkflowTester()
    tester.on_activity(reserve).returns("x").once().any_times()
    tester.on_activity(charge_card).returns(None)
    assert tester.run(order_workflow, {"skus": ["a", "b"]}).output["reservations"] == ["x", "x"]
    tester.assert_expectations()


@pytest.mark.parametrize("bad", [None, -1, 1.5, True])
def test_times_needs_a_whole_number_and_points_to_any_times(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"times\(\) needs a whole number >= 0.*any_times\(\)"):
        WorkflowTester().on_activity(reserve).times(bad)


def test_unmatched_call_lists_declared_mocks_with_their_call_counts() -> None:
    tester = WorkflowTester()
    tester.on_activity(reserve, "pen").returns("ok").once()
    tester.on_activity(charge_card).returns(None)
    with pytest.raises(UnexpectedCallError) as err:
        tester.run(order_workflow, {"skus": ["pen", "pen"]})
    assert "on_activity('reserve', 'pen').returns('ok').once() (called 1 time, used up)" in str(err.value)


def test_sub_orchestrator_mock_replaces_the_child() -> None:
    def child(ctx: OrchestrationContext, n: int) -> Gen:
        raise AssertionError("the real child must not run")
        yield  # pragma: no cover

    def parent(ctx: OrchestrationContext, _: Any) -> Gen:
        return (yield ctx.call_sub_orchestrator(child, input=20)) + 1

    tester = WorkflowTester()
    tester.on_sub_orchestrator(child).calls(lambda n: n * 2).after(timedelta(hours=1))
    result = tester.run(parent)
    assert result.output == 41 and result.virtual_duration == timedelta(hours=1)
    assert [c.input for c in tester.calls(child)] == [20]


def test_callbacks_at_virtual_times_raise_events() -> None:
    tester = WorkflowTester()
    tester.at(timedelta(hours=2), lambda t: t.raise_event("approval", "yes"))
    result = tester.run(approval_workflow)
    assert result.output == "yes"
    assert result.virtual_duration == timedelta(days=30, hours=2)


def test_start_then_interact_between_steps() -> None:
    tester = WorkflowTester()
    tester.start(approval_workflow)
    tester.run_until(timedelta(hours=1))
    assert tester.result().status == "RUNNING"
    tester.raise_event("approval", "later")
    result = tester.run_until(lambda: tester.result().status == "COMPLETED")
    assert result.output == "later"


def test_run_until_a_later_time_reports_when_the_orchestration_really_finished() -> None:
    def hour_long(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.create_timer(timedelta(hours=1))
        return "done"

    tester = WorkflowTester()
    tester.start(hour_long)
    result = tester.run_until(timedelta(days=2))
    assert result.status == "COMPLETED"
    assert result.finished_at == tester.start_time + timedelta(hours=1)
    assert result.virtual_duration == timedelta(hours=1)
    assert tester.now == tester.start_time + timedelta(days=2)  # the clock went where it was asked to


def test_run_until_an_earlier_time_reports_the_time_reached_while_running() -> None:
    tester = WorkflowTester()
    tester.start(approval_workflow)
    tester.at(timedelta(hours=2), lambda t: t.raise_event("approval", "ok"))
    result = tester.run_until(timedelta(days=3))
    assert result.status == "RUNNING"  # the 30-day timer is still pending
    assert result.finished_at == tester.now == tester.start_time + timedelta(days=3)
    assert result.virtual_duration == timedelta(days=3)
    final = tester.run_until()
    assert final.status == "COMPLETED" and final.virtual_duration == timedelta(days=30, hours=2)


def test_run_until_without_argument_runs_to_the_end() -> None:
    tester = WorkflowTester()
    tester.start(approval_workflow)
    assert tester.run_until(timedelta(hours=1)).status == "RUNNING"
    tester.raise_event("approval", "yes")
    result = tester.run_until()
    assert result.status == "COMPLETED" and result.output == "yes"
    assert result.virtual_duration == timedelta(days=30, hours=1)


def test_run_end_is_reported_once_however_often_run_until_is_called() -> None:
    finished: list[str] = []
    tester = WorkflowTester()
    tester.on_run_finished.append(lambda result: finished.append(result.instance_id))
    tester.start(approval_workflow)
    tester.raise_event("approval", "yes")
    tester.run_until()
    tester.run_until(timedelta(days=60))
    assert finished == ["test-instance"]


def test_result_finished_at_is_the_termination_time() -> None:
    tester = WorkflowTester()
    tester.at(timedelta(hours=3), lambda t: t.terminate("stop"))
    result = tester.run(approval_workflow)
    assert result.status == "TERMINATED" and result.virtual_duration == timedelta(hours=3)


def test_stalled_run_explains_what_the_instance_waits_for() -> None:
    with pytest.raises(OrchestrationStalledError, match="'approval'"):
        WorkflowTester().run(approval_workflow)


def test_stalled_run_suggests_the_testers_own_api() -> None:
    with pytest.raises(OrchestrationStalledError) as err:
        WorkflowTester().run(approval_workflow)
    message = str(err.value)
    assert "instance 'test-instance' (approval_workflow): it waits for external event(s) 'approval'" in message
    assert "tester.at(timedelta(...), lambda t: t.raise_event('approval', data))" in message
    assert "tester.run_until(<time>); tester.raise_event('approval', data); tester.run_until()" in message
    assert "client." not in message
    assert "ExecutionStarted" in message  # the timeline follows


def test_stall_in_a_sub_orchestration_names_the_child_instance() -> None:
    def parent(ctx: OrchestrationContext, _: Any) -> Gen:
        return (yield ctx.call_sub_orchestrator(approval_workflow, instance_id="child"))

    with pytest.raises(OrchestrationStalledError) as err:
        WorkflowTester().run(parent)
    assert "instance 'child' (approval_workflow): it waits for external event(s) 'approval'" in str(err.value)
    assert "t.raise_event('approval', data, instance_id='child')" in str(err.value)


def test_stall_of_a_suspended_instance_suggests_resume() -> None:
    tester = WorkflowTester()
    tester.at(timedelta(minutes=1), lambda t: t.suspend())
    tester.at(timedelta(minutes=2), lambda t: t.raise_event("approval", "x"))
    with pytest.raises(OrchestrationStalledError) as err:
        tester.run(approval_workflow)
    assert "it is SUSPENDED" in str(err.value) and "lambda t: t.resume())" in str(err.value)
    assert "tester.resume(); tester.run_until()" in str(err.value)
    assert "client." not in str(err.value)


def test_a_stalled_run_is_the_last_result() -> None:
    tester = WorkflowTester()
    tester.on_activity(charge_card).returns(None)
    tester.run(order_workflow, {"skus": []})
    with pytest.raises(OrchestrationStalledError):
        tester.run(approval_workflow)
    assert tester.last_result is not None and tester.last_result.status == "RUNNING"
    assert tester.last_result.history[1].executionStarted.name == "approval_workflow"


def test_aware_start_time_is_kept_as_naive_utc() -> None:
    plus_two = dt.timezone(timedelta(hours=2))
    tester = WorkflowTester(start_time=dt.datetime(2030, 1, 1, 2, tzinfo=plus_two))
    assert tester.start_time == dt.datetime(2030, 1, 1, 0)
    tester.at(dt.datetime(2030, 1, 1, 3, tzinfo=plus_two), lambda t: t.raise_event("approval", "ok"))
    result = tester.run(approval_workflow)
    assert result.started_at == dt.datetime(2030, 1, 1)
    assert result.virtual_duration == timedelta(days=30, hours=1)


def test_activities_see_virtual_time_through_datetime_now() -> None:
    def when(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.create_timer(timedelta(days=3))
        return (yield ctx.call_activity(wall_clock))

    result = WorkflowTester().run(when)
    assert result.output == "2024-01-04T00:00:00"


def test_activity_time_is_real_when_freezing_is_off() -> None:
    def when(ctx: OrchestrationContext, _: Any) -> Gen:
        return (yield ctx.call_activity(wall_clock))

    result = WorkflowTester(freeze_activity_time=False).run(when)
    assert not result.output.startswith("2024-01-01")


def test_replay_check_catches_code_that_does_not_reproduce_its_history() -> None:
    runs = {"n": 0}

    def flaky(ctx: OrchestrationContext, _: Any) -> Gen:
        runs["n"] += 1
        yield ctx.call_activity(reserve if runs["n"] == 1 else wall_clock, input="x")
        return "done"

    with pytest.raises(NonDeterminismError, match="replay check failed") as err:
        WorkflowTester().run(flaky)
    assert err.value.index == 2


def test_replay_check_can_be_turned_off() -> None:
    runs = {"n": 0}

    def flaky(ctx: OrchestrationContext, _: Any) -> Gen:
        runs["n"] += 1
        yield ctx.call_activity(reserve if runs["n"] == 1 else wall_clock, input="x")
        return "done"

    assert WorkflowTester(replay_check=False).run(flaky).output == "done"


def test_max_steps_stops_an_endless_loop() -> None:
    def forever(ctx: OrchestrationContext, _: Any) -> Gen:
        while True:
            yield ctx.call_activity(reserve, input="x")

    with pytest.raises(RunLimitError, match="max_steps=50"):
        WorkflowTester(max_steps=50).run(forever)


def test_each_run_uses_a_fresh_engine() -> None:
    tester = WorkflowTester()
    tester.on_activity(charge_card).returns(None)
    first = tester.run(order_workflow, {"skus": ["a"]})
    second = tester.run(order_workflow, {"skus": ["a"]})
    assert first.engine is not second.engine
    assert [e.SerializeToString() for e in first.history] == [e.SerializeToString() for e in second.history]


def test_activities_may_be_methods_holding_state() -> None:
    class Inventory:
        def __init__(self) -> None:
            self.reserved: list[str] = []

        def reserve(self, ctx: Any, sku: str) -> int:
            self.reserved.append(sku)
            return len(self.reserved)

    inventory = Inventory()

    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.call_activity("reserve", input="a")
        return (yield ctx.call_activity("reserve", input="b"))

    tester = WorkflowTester()
    tester.add_activity(inventory.reserve)
    assert tester.run(wf).output == 2 and inventory.reserved == ["a", "b"]


def test_step_runs_what_is_due_now_without_moving_the_clock() -> None:
    tester = WorkflowTester()
    tester.on_activity(charge_card).returns("r")
    tester.start(order_workflow, {"skus": ["pen"]})
    assert tester.step() is True
    assert tester.now == tester.start_time
    assert tester.result().status == "COMPLETED"  # no timers: everything was due at once
    assert tester.step() is False


def test_step_stops_at_a_timer_until_run_until_moves_the_clock() -> None:
    tester = WorkflowTester()
    tester.start(approval_workflow)
    tester.step()
    tester.raise_event("approval", "ok")
    tester.step()
    assert tester.result().status == "RUNNING" and tester.now == tester.start_time  # the 30-day timer waits
    assert tester.run_until().virtual_duration == timedelta(days=30)


def test_names_resolve_through_a_registry_and_explicit_names() -> None:
    from wftest import Registry

    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        return (yield ctx.call_activity("greet", input="ada"))

    registry = Registry()
    registry.add_named_orchestrator("greeting", wf)
    registry.add_named_activity("greet", lambda ctx, name: f"hello {name}")
    tester = WorkflowTester(registry=registry)
    assert tester.run("greeting").output == "hello ada"
    tester.on_activity("greet").returns("mocked")
    assert tester.run("greeting").output == "mocked"


def test_async_activities_run_and_see_virtual_time() -> None:
    import asyncio

    async def later(ctx: Any, _: Any) -> str:
        await asyncio.sleep(0)
        return dt.datetime.now().isoformat()

    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.create_timer(timedelta(hours=5))
        return (yield ctx.call_activity(later))

    assert WorkflowTester().run(wf).output == "2024-01-01T05:00:00"


def test_failed_run_result_raises_with_the_timeline() -> None:
    def boom(ctx: OrchestrationContext, _: Any) -> Any:
        raise ValueError("bad input")

    result = WorkflowTester().run(boom)
    assert result.status == "FAILED"
    with pytest.raises(OrchestrationFailedError, match=r"(?s)bad input.*ExecutionStarted"):
        result.raise_if_failed()
