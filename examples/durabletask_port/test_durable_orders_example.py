"""Testing durabletask code unmodified with wftest: mocks, the virtual clock, retries, fuzzing, and the
port to wftest (an import change) replaying the histories the durabletask code wrote."""

from __future__ import annotations

import types
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import durable_orders
import pytest
from durable_orders import charge_card, process_order, reserve_stock
from durabletask.worker import TaskHubGrpcWorker
from hypothesis import given, settings

import wftest.interop.durabletask as dt
from wftest import CrashAfterActivity, CrashDuringStep, Registry, Replayer, WorkflowTester
from wftest.strategies import Schedule, schedules

SMALL = {"sku": "pen", "amount": 30, "address": "1 Main St"}
LARGE = {"sku": "piano", "amount": 5000, "address": "2 High St"}


@pytest.fixture
def tester(workflow_tester: WorkflowTester) -> WorkflowTester:
    """The plugin's tester with everything the app registers on its durabletask worker."""
    worker = TaskHubGrpcWorker()  # never started: nothing connects
    durable_orders.register(worker)
    dt.add_registrations(workflow_tester, worker)
    return workflow_tester


def test_a_small_order_ships(tester: WorkflowTester) -> None:
    tester.on_activity(charge_card).returns("receipt-1").once()

    result = tester.run(process_order, SMALL)

    assert result.output == {
        "status": "shipped",
        "receipt": "receipt-1",
        "tracking": "track-pen-1",  # book_courier saw a durabletask ActivityContext: task #1 of the child
        "to": "1 Main St",
    }
    assert tester.calls(reserve_stock)[0].input == SMALL
    tester.assert_expectations()


def test_a_large_order_waits_for_approval_on_the_virtual_clock(tester: WorkflowTester) -> None:
    tester.on_activity(charge_card).returns("receipt-2")
    tester.at(timedelta(hours=5), lambda t: t.raise_event("approval", True))

    result = tester.run(process_order, LARGE)

    assert result.output["status"] == "shipped"
    assert result.virtual_duration == timedelta(hours=5)
    assert result.custom_status == "charging"


def test_a_large_order_nobody_approves_is_cancelled_after_three_days(tester: WorkflowTester) -> None:
    result = tester.run(process_order, LARGE)

    assert result.output == {"status": "cancelled", "reservation": "res-test-instance-piano"}
    assert result.virtual_duration == timedelta(days=3)
    assert tester.calls(charge_card) == []


def test_the_gateway_is_retried_with_backoff(tester: WorkflowTester) -> None:
    tester.on_activity(charge_card).raises(ConnectionError("timeout")).times(2)
    tester.on_activity(charge_card).returns("receipt-3")

    result = tester.run(process_order, SMALL)

    assert result.output["receipt"] == "receipt-3"
    charged_at = [c.at - result.started_at for c in tester.calls(charge_card)]
    assert charged_at == [timedelta(0), timedelta(seconds=5), timedelta(seconds=15)]


def test_a_failed_gateway_fails_the_order_with_durabletasks_error(tester: WorkflowTester) -> None:
    result = tester.run(process_order, SMALL)  # the real charge_card cannot reach the gateway

    assert result.status == "FAILED"
    assert result.failure_details is not None
    assert result.failure_details.error_type == "durabletask.task.TaskFailedError"
    assert "gateway is not reachable" in result.failure_details.message


@settings(max_examples=25, database=None, derandomize=True, deadline=None)
@given(schedule=schedules(faults=[CrashAfterActivity(), CrashDuringStep()]))
def test_crashes_and_reorderings_do_not_change_the_outcome(
    workflow_tester_factory: Callable[..., WorkflowTester], schedule: Schedule
) -> None:
    tester = workflow_tester_factory()
    tester.add_orchestrator(dt.orchestrator(process_order))
    tester.on_activity(charge_card).returns("receipt-4")
    tester.at(timedelta(hours=1), lambda t: t.raise_event("approval", True))

    result = tester.run(process_order, LARGE, schedule=schedule)  # replay-checked after the run, too

    assert result.output == {"status": "shipped", "receipt": "receipt-4", "tracking": "track-piano-1",
                             "to": "2 High St"}


def ported_registry() -> Registry:
    """The module ported to wftest by changing its import line, loaded into a registry."""
    source = Path(durable_orders.__file__).read_text()
    assert source.count("import durabletask.task as task") == 1
    ported = types.ModuleType("ported_orders")
    exec(compile(source.replace("import durabletask.task as task", "import wftest as task"),
                 "ported_orders.py", "exec"), ported.__dict__)
    registry = Registry()
    registry.add_orchestrator(ported.process_order)
    registry.add_orchestrator(ported.shipping)
    return registry


def test_histories_of_the_durabletask_code_replay_after_the_port(tester: WorkflowTester) -> None:
    # instances started before the port would go on with the ported code: their histories replay
    tester.on_activity(charge_card).raises(ConnectionError("timeout")).once()
    tester.on_activity(charge_card).returns("receipt-5")
    tester.at(timedelta(hours=2), lambda t: t.raise_event("approval", True))
    result = tester.run(process_order, LARGE)

    replayer = Replayer(ported_registry())
    for state in result.engine.client.get_all_orchestration_states():
        replayed = replayer.replay(result.history_of(state.instance_id))
        assert replayed.ok, replayed.report()
