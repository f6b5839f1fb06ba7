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


def test_assert_expectations_reports_uncalled_and_miscounted_mocks() -> None:
    tester = WorkflowTester()
    tester.on_activity(charge_card).returns(None).times(2)
    tester.on_activity("never_called").returns(None)
    tester.run(order_workflow, {"skus": []})
    with pytest.raises(ExpectationError) as err:
        tester.assert_expectations()
    assert "expected 2 call(s), got 1" in str(err.value)
    assert "'never_called'" in str(err.value) and "never called" in str(err.value)


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


def test_stalled_run_explains_what_the_instance_waits_for() -> None:
    with pytest.raises(OrchestrationStalledError, match="'approval'"):
        WorkflowTester().run(approval_workflow)


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


def test_failed_run_result_raises_with_the_timeline() -> None:
    def boom(ctx: OrchestrationContext, _: Any) -> Any:
        raise ValueError("bad input")

    result = WorkflowTester().run(boom)
    assert result.status == "FAILED"
    with pytest.raises(OrchestrationFailedError, match=r"(?s)bad input.*ExecutionStarted"):
        result.raise_if_failed()
