"""Testing parent and child orchestrations: default ids, child histories, mocked children, failures."""

from __future__ import annotations

from datetime import timedelta

from sub_orchestrations import OutOfStock, print_label, reserve_stock, ship_batch, ship_order

from wftest import Engine, WorkflowTester, render_timeline

ORDERS = [
    {"id": 1, "sku": "pen", "qty": 1},
    {"id": 2, "sku": "book", "qty": 5},  # only 2 books in stock
    {"id": 3, "sku": "pen", "qty": 2},
]


def test_each_child_is_named_after_its_parent_and_sequence_number(workflow_tester: WorkflowTester) -> None:
    result = workflow_tester.run(ship_batch, ORDERS[:1])

    assert result.output == [{"order": 1, "reservation": "res-1", "tracking": "track-1"}]
    [created] = [e for e in result.history if e.HasField("subOrchestrationInstanceCreated")]
    child = created.subOrchestrationInstanceCreated
    assert (child.name, child.instanceId) == ("ship_order", "test-instance:0001")
    child_history = result.history_of("test-instance:0001")
    assert child_history[1].executionStarted.parentInstance.orchestrationInstance.instanceId == "test-instance"
    assert "reserve_stock" in render_timeline(child_history)


def test_an_order_out_of_stock_fails_its_child_only(workflow_tester: WorkflowTester) -> None:
    result = workflow_tester.run(ship_batch, ORDERS)

    assert result.status == "COMPLETED"
    assert [outcome.get("failed") for outcome in result.output] == [
        None, "activity task #1 failed: only 2 book left, 5 wanted", None
    ]
    child = result.engine.client.get_orchestration_state("test-instance:0002")
    assert child is not None and child.runtime_status == "FAILED"
    assert child.failure_details is not None and child.failure_details.is_caused_by(OutOfStock)
    assert len(workflow_tester.calls(print_label)) == 2


def test_any_other_child_failure_fails_the_parent(workflow_tester: WorkflowTester) -> None:
    workflow_tester.on_activity(print_label, lambda order: order["id"] == 3).raises(RuntimeError("printer jammed"))
    workflow_tester.on_activity(print_label).calls(lambda order: f"track-{order['id']}")

    result = workflow_tester.run(ship_batch, ORDERS)

    assert result.status == "FAILED"
    details = result.failure_details
    assert details is not None and details.is_caused_by(RuntimeError)  # activity -> child -> parent
    assert "printer jammed" in details.message


def test_the_child_can_be_mocked_away(workflow_tester: WorkflowTester) -> None:
    books = workflow_tester.on_sub_orchestrator(ship_order, lambda order: order["sku"] == "book")
    books.raises(OutOfStock("none left"))
    others = workflow_tester.on_sub_orchestrator(ship_order)
    others.calls(lambda order: {"order": order["id"]}).after(timedelta(hours=2))

    result = workflow_tester.run(ship_batch, ORDERS)

    assert result.output == [{"order": 1}, {"order": 2, "failed": "none left"}, {"order": 3}]
    assert result.virtual_duration == timedelta(hours=2)
    assert [c.input["id"] for c in workflow_tester.calls(ship_order)] == [1, 2, 3]
    assert workflow_tester.calls(reserve_stock) == []  # no child ran
    assert len(result.engine.client.get_all_orchestration_states()) == 1
    workflow_tester.assert_expectations()


def test_children_progress_independently(workflow_tester: WorkflowTester) -> None:
    # order 3's reservation is slow; the others use the real activity
    slow = workflow_tester.on_activity(reserve_stock, lambda order: order["id"] == 3)
    slow.returns("res-3").after(timedelta(hours=2))
    workflow_tester.on_activity(reserve_stock).calls(reserve_stock)  # the real function, for the others
    workflow_tester.start(ship_batch, ORDERS, instance_id="batch-7")

    workflow_tester.run_until(timedelta(hours=1))

    client = workflow_tester.engine.client
    statuses = {s.instance_id: s.runtime_status for s in client.get_all_orchestration_states()}
    assert statuses == {
        "batch-7": "RUNNING",
        "batch-7:0001": "COMPLETED",
        "batch-7:0002": "FAILED",
        "batch-7:0003": "RUNNING",
    }
    result = workflow_tester.run_until()  # to the end
    assert result.output[2] == {"order": 3, "reservation": "res-3", "tracking": "track-3"}


def test_the_engine_runs_the_whole_tree(wftest_engine: Engine) -> None:
    client = wftest_engine.client
    iid = client.schedule_new_orchestration(ship_batch, input=ORDERS, instance_id="batch-8")

    state = client.wait_for_orchestration_completion(iid)

    assert len(state.output) == 3
    failed = client.get_all_orchestration_states(runtime_status=["FAILED"])
    assert [s.instance_id for s in failed] == ["batch-8:0002"]
