"""Testing a human interaction: events raised at virtual times, deadlines that pass in microseconds."""

from __future__ import annotations

from datetime import timedelta

from approval import escalate, notify_requester, place_order, purchase_approval, request_approval

from wftest import Engine, WorkflowTester

REQUEST = {"item": "laptop", "price": 1800}
HOUR = timedelta(hours=1)


def decide(by: str, approved: bool = True) -> dict[str, object]:
    return {"approved": approved, "by": by}


def test_the_approver_approves_in_time(workflow_tester: WorkflowTester) -> None:
    workflow_tester.on_activity(place_order).returns("PO-1").once()
    workflow_tester.at(5 * HOUR, lambda t: t.raise_event("decision", decide("alice")))

    result = workflow_tester.run(purchase_approval, REQUEST)

    assert result.output == {"status": "approved", "by": "alice", "order": "PO-1"}
    assert result.virtual_duration == 5 * HOUR
    assert workflow_tester.calls(escalate) == []
    workflow_tester.assert_expectations()


def test_a_rejection_is_reported_to_the_requester(workflow_tester: WorkflowTester) -> None:
    workflow_tester.at(HOUR, lambda t: t.raise_event("decision", decide("alice", approved=False)))

    result = workflow_tester.run(purchase_approval, REQUEST)

    assert result.output == {"status": "rejected", "by": "alice"}
    [notice] = workflow_tester.calls(notify_requester)
    assert notice.input == {**REQUEST, "rejected_by": "alice"}
    assert workflow_tester.calls(place_order) == []


def test_silence_escalates_to_the_manager_after_72_hours(workflow_tester: WorkflowTester) -> None:
    workflow_tester.at(80 * HOUR, lambda t: t.raise_event("decision", decide("bob")))

    result = workflow_tester.run(purchase_approval, REQUEST)

    assert result.output["by"] == "bob"
    [escalation] = workflow_tester.calls(escalate)
    assert escalation.at - result.started_at == 72 * HOUR
    assert result.virtual_duration == 80 * HOUR


def test_with_no_answer_at_all_the_request_is_rejected_after_96_hours(workflow_tester: WorkflowTester) -> None:
    result = workflow_tester.run(purchase_approval, REQUEST)

    assert result.output == {"status": "rejected", "by": "nobody (timed out)"}
    assert result.virtual_duration == 96 * HOUR
    fired = [e.timestamp.ToDatetime() - result.started_at for e in result.history if e.HasField("timerFired")]
    assert fired == [72 * HOUR, 96 * HOUR]


def test_a_decision_sent_before_the_wait_starts_is_kept(workflow_tester: WorkflowTester) -> None:
    # sending the request takes a minute; the answer arrives after 10 seconds, before anyone waits for it
    workflow_tester.on_activity(request_approval).returns(None).after(timedelta(minutes=1))
    workflow_tester.at(timedelta(seconds=10), lambda t: t.raise_event("decision", decide("alice")))

    result = workflow_tester.run(purchase_approval, REQUEST)

    assert result.output["by"] == "alice"
    assert result.virtual_duration == timedelta(minutes=1)


def test_the_status_shows_where_the_request_stands(workflow_tester: WorkflowTester) -> None:
    workflow_tester.start(purchase_approval, REQUEST)

    workflow_tester.run_until(71 * HOUR)
    assert workflow_tester.result().custom_status == "waiting for the approver"
    workflow_tester.run_until(73 * HOUR)
    assert workflow_tester.result().custom_status == "escalated to the manager"

    workflow_tester.raise_event("decision", decide("bob"))  # now, at hour 73
    result = workflow_tester.run_until()  # to the end
    assert (result.output["by"], result.custom_status) == ("bob", "decided")


def test_a_client_drives_the_approval_on_the_engine(wftest_engine: Engine) -> None:
    client = wftest_engine.client
    iid = client.schedule_new_orchestration(purchase_approval, input=REQUEST, instance_id="purchase-9")

    wftest_engine.run_until_idle()
    state = client.get_orchestration_state(iid)
    assert state is not None and state.runtime_status == "RUNNING"
    wftest_engine.advance(72 * HOUR)  # the approver's deadline passes
    state = client.get_orchestration_state(iid)
    assert state is not None and state.custom_status == "escalated to the manager"

    client.raise_orchestration_event(iid, "decision", data=decide("bob", approved=False))
    state = client.wait_for_orchestration_completion(iid)

    assert state.output == {"status": "rejected", "by": "bob"}
    assert wftest_engine.clock.now() - state.created_at == 72 * HOUR
