"""Testing a chain of activities: real and mocked activities, matchers, failures, the history."""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any

import pytest
from chaining import charge_card, process_order, ship, validate_order

from wftest import (
    ANY,
    ActivityTester,
    Engine,
    NonDeterminismError,
    NonDeterministicCallError,
    OrchestrationContext,
    Task,
    UnexpectedCallError,
    WorkflowTester,
)

PEN_ORDER = {"sku": "pen", "qty": 2}


def test_the_activities_run_in_order_each_fed_by_the_last(workflow_tester: WorkflowTester) -> None:
    result = workflow_tester.run(process_order, PEN_ORDER)

    assert result.status == "COMPLETED"
    assert result.output == {"receipt": "receipt-test-instance-6", "tracking": "track-pen-2", "amount": 6}
    scheduled = [e.taskScheduled.name for e in result.history if e.HasField("taskScheduled")]
    assert scheduled == ["validate_order", "charge_card", "ship"]


def test_the_payment_gateway_is_mocked(workflow_tester: WorkflowTester) -> None:
    # only charge_card is mocked; validate_order and ship run for real
    gateway = workflow_tester.on_activity(charge_card, lambda order: order["amount"] == 6)
    gateway.returns("r-1").after(timedelta(seconds=30)).once()

    result = workflow_tester.run(process_order, PEN_ORDER)

    assert result.output["receipt"] == "r-1"
    assert result.virtual_duration == timedelta(seconds=30)  # the gateway "took" 30 s; the test did not
    [shipped] = workflow_tester.calls(ship)
    assert shipped.input == {"sku": "pen", "qty": 2, "amount": 6, "receipt": "r-1"}
    assert shipped.at - result.started_at == timedelta(seconds=30) and not shipped.mocked
    workflow_tester.assert_expectations()


def test_the_first_matching_mock_answers(workflow_tester: WorkflowTester) -> None:
    book = {"sku": "book", "qty": 1}
    workflow_tester.on_activity(validate_order, book).returns({**book, "amount": 0})  # compared with ==
    workflow_tester.on_activity(validate_order, ANY).calls(lambda order: {**order, "amount": 99})
    workflow_tester.on_activity(charge_card).calls(lambda ctx, order: f"{ctx.name}:{order['amount']}")

    free = workflow_tester.run(process_order, book)
    paid = workflow_tester.run(process_order, PEN_ORDER)  # the same tester runs again on a fresh engine

    assert (free.output["receipt"], paid.output["receipt"]) == ("charge_card:0", "charge_card:99")
    assert [c.input["sku"] for c in workflow_tester.calls(validate_order)] == ["book", "pen"]  # across runs


def test_a_failed_step_stops_the_chain(workflow_tester: WorkflowTester) -> None:
    result = workflow_tester.run(process_order, {"sku": "pen", "qty": 0})  # validate_order raises

    assert result.status == "FAILED"
    assert result.failure_details is not None
    assert result.failure_details.is_caused_by(ValueError)
    assert "quantity must be positive" in result.failure_details.message
    assert workflow_tester.calls(charge_card) == [] and workflow_tester.calls(ship) == []


def test_a_mock_that_a_run_may_not_need(workflow_tester: WorkflowTester) -> None:
    # any_times(): answers every call, and no call at all is fine too; assert_expectations() never reports it
    workflow_tester.on_activity(ship).returns("track-mocked").any_times()
    workflow_tester.on_activity(charge_card).returns("r-1").once()  # once across both runs

    failed = workflow_tester.run(process_order, {"sku": "pen", "qty": 0})  # stops before charging and shipping
    shipped = workflow_tester.run(process_order, PEN_ORDER)

    assert failed.status == "FAILED" and shipped.output["tracking"] == "track-mocked"
    workflow_tester.assert_expectations()


def test_an_input_no_mock_accepts_fails_the_test(workflow_tester: WorkflowTester) -> None:
    workflow_tester.on_activity(charge_card, lambda order: order["amount"] < 5).returns("r-small")

    with pytest.raises(UnexpectedCallError, match="no declared mock accepts it"):
        workflow_tester.run(process_order, PEN_ORDER)  # amount 6


def test_inspect_the_run_while_the_charge_is_in_flight(workflow_tester: WorkflowTester) -> None:
    workflow_tester.on_activity(charge_card).returns("r-1").after(timedelta(minutes=2))

    workflow_tester.start(process_order, PEN_ORDER)
    workflow_tester.run_until(timedelta(minutes=1))  # stop the virtual clock half-way through the charge

    assert workflow_tester.result().status == "RUNNING"
    assert len(workflow_tester.calls(charge_card)) == 1 and workflow_tester.calls(ship) == []
    result = workflow_tester.run_until()  # to the end
    assert result.virtual_duration == timedelta(minutes=2)


def test_the_engine_runs_the_same_code(wftest_engine: Engine) -> None:
    client = wftest_engine.client
    iid = client.schedule_new_orchestration(process_order, input=PEN_ORDER, instance_id="order-42")

    state = client.wait_for_orchestration_completion(iid)

    assert state.runtime_status == "COMPLETED"
    assert state.output["receipt"] == "receipt-order-42-6"
    steps = [e for e in wftest_engine.history(iid) if e.HasField("orchestratorStarted")]
    assert len(steps) == 4  # the first step, then one per activity result


def test_one_activity_on_its_own() -> None:
    tester = ActivityTester(instance_id="order-7")
    assert tester.run(charge_card, {"amount": 30}) == "receipt-order-7-30"
    with pytest.raises(ValueError, match="quantity"):
        tester.run(validate_order, {"sku": "pen", "qty": -1})


# -- what the determinism nets catch (docs/testing.md shows these messages) -----------------------------


def stamped_order(ctx: OrchestrationContext, order: dict[str, Any]) -> Generator[Task[Any], Any, dict[str, Any]]:
    """BROKEN: reads the wall clock in orchestrator code (use ctx.current_utc_datetime)."""
    priced = yield ctx.call_activity(validate_order, input=order)
    return {**priced, "at": datetime.now().isoformat()}  # wftest: ignore[WF101] (on purpose: strict mode catches it)


@pytest.mark.wftest(strict=True)  # the default; the marker keeps it whatever --wftest-strict says
def test_strict_mode_catches_the_wall_clock(workflow_tester: WorkflowTester) -> None:
    with pytest.raises(NonDeterministicCallError, match=r"called datetime\.now\(\) at .*test_chaining_example"):
        workflow_tester.run(stamped_order, PEN_ORDER)


_promoted: set[str] = set()


def launch_promotion(ctx: OrchestrationContext, order: dict[str, Any]) -> Generator[Task[Any], Any, str]:
    """BROKEN: the first order of each product is free, remembered in a set outside the history.

    On replay the set already holds the product, so the code charges where the history shows no charge.
    """
    priced = yield ctx.call_activity(validate_order, input=order)
    receipt = "free"
    if order["sku"] in _promoted:
        receipt = yield ctx.call_activity(charge_card, input=priced)
    _promoted.add(order["sku"])  # wftest: ignore[WF110] (on purpose: the replay check catches it)
    tracking: str = yield ctx.call_activity(ship, input={**priced, "receipt": receipt})
    return tracking


@pytest.mark.wftest(replay_check=True)
def test_the_replay_check_catches_state_outside_the_history(workflow_tester: WorkflowTester) -> None:
    _promoted.clear()
    with pytest.raises(NonDeterminismError, match="at history event #5: a different activity") as caught:
        workflow_tester.run(launch_promotion, PEN_ORDER)
    assert caught.value.instance_id == "test-instance"


@pytest.mark.wftest(strict=False, replay_check=True)
def test_without_strict_mode_the_replay_check_still_catches_the_wall_clock(workflow_tester: WorkflowTester) -> None:
    with pytest.raises(NonDeterminismError, match="the output differs from the recorded one"):
        workflow_tester.run(stamped_order, PEN_ORDER)


@pytest.mark.wftest(replay_check=False)
def test_without_the_replay_check_the_bug_slips_through(workflow_tester: WorkflowTester) -> None:
    _promoted.clear()
    result = workflow_tester.run(launch_promotion, PEN_ORDER)
    assert result.status == "COMPLETED"  # and the next replay of this instance in production would fail
