"""Testing a saga: compensations in reverse order, retried compensations, suspend/resume, a plugin."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from saga import NotAvailable, book_car, book_flight, book_trip, cancel_car, cancel_flight, cancel_hotel

from wftest import Engine, RunResult, WorkflowTester
from wftest.hooks import hookimpl

LISBON = {"id": 7, "city": "Lisbon"}
OSLO = {"id": 8, "city": "Oslo"}  # no cars in Oslo
MINUTE = timedelta(minutes=1)


def activity_order(result: RunResult) -> list[str]:
    return [e.taskScheduled.name for e in result.history if e.HasField("taskScheduled")]


def test_every_step_is_booked(workflow_tester: WorkflowTester) -> None:
    result = workflow_tester.run(book_trip, LISBON)

    assert result.output == {"status": "booked", "bookings": ["hotel-7", "flight-7", "car-7"]}
    assert activity_order(result) == ["book_hotel", "book_flight", "book_car"]


def test_a_failed_car_undoes_the_flight_then_the_hotel(workflow_tester: WorkflowTester) -> None:
    result = workflow_tester.run(book_trip, OSLO)

    assert result.output == {"status": "cancelled", "reason": "no cars in Oslo",
                             "undone": ["flight-8", "hotel-8"]}
    assert activity_order(result) == ["book_hotel", "book_flight", "book_car", "cancel_flight", "cancel_hotel"]
    assert workflow_tester.calls(cancel_car) == []


def test_a_failed_flight_undoes_only_the_hotel(workflow_tester: WorkflowTester) -> None:
    workflow_tester.on_activity(book_flight).raises(NotAvailable("sold out")).once()
    workflow_tester.on_activity(cancel_hotel).returns(None).once()

    result = workflow_tester.run(book_trip, LISBON)

    assert result.output["undone"] == ["hotel-7"]
    assert workflow_tester.calls(book_car) == [] and workflow_tester.calls(cancel_flight) == []
    workflow_tester.assert_expectations()


def test_a_failing_compensation_is_retried_until_it_succeeds(workflow_tester: WorkflowTester) -> None:
    workflow_tester.on_activity(cancel_flight).raises(TimeoutError("airline not answering")).times(3)
    workflow_tester.on_activity(cancel_flight).returns(None).once()

    result = workflow_tester.run(book_trip, OSLO)

    assert result.output["undone"] == ["flight-8", "hotel-8"]
    minutes = [(c.at - result.started_at) // MINUTE for c in workflow_tester.calls(cancel_flight)]
    assert minutes == [0, 1, 3, 7]  # retried after 1, 2 and 4 minutes
    assert workflow_tester.calls(cancel_hotel)[0].at - result.started_at == 7 * MINUTE  # only after the flight
    workflow_tester.assert_expectations()


@pytest.mark.wftest(start_time="2024-06-01T09:00:00")
def test_while_suspended_nothing_is_compensated(workflow_tester: WorkflowTester) -> None:
    workflow_tester.on_activity(book_car).raises(NotAvailable("no cars")).after(timedelta(minutes=5))
    workflow_tester.at(timedelta(minutes=1), lambda t: t.suspend())
    workflow_tester.at(timedelta(hours=2), lambda t: t.resume())

    result = workflow_tester.run(book_trip, LISBON)

    # the car's failure arrived at 09:05, but the suspended saga only reacted when resumed at 11:00
    assert result.output["status"] == "cancelled"
    assert workflow_tester.calls(cancel_flight)[0].at == datetime(2024, 6, 1, 11, 0)
    assert "ExecutionSuspended" in result.timeline() and "ExecutionResumed" in result.timeline()


def test_stop_half_way_and_look(workflow_tester: WorkflowTester) -> None:
    workflow_tester.on_activity(book_car).raises(NotAvailable("no cars")).after(timedelta(minutes=5))
    workflow_tester.start(book_trip, LISBON)

    workflow_tester.run_until(lambda: len(workflow_tester.calls(book_car)) == 1)  # the car request is out

    so_far = workflow_tester.result()
    assert so_far.status == "RUNNING"
    booked = [e.taskCompleted.result.value for e in so_far.history if e.HasField("taskCompleted")]
    assert booked == ['"hotel-7"', '"flight-7"']  # JSON payloads
    assert workflow_tester.calls(cancel_flight) == []
    result = workflow_tester.run_until()  # to the end
    assert result.output["undone"] == ["flight-7", "hotel-7"]


class AuditLog:
    """A wftest plugin: records every activity result, as a tracing or metrics plugin would."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    @hookimpl
    def wftest_after_activity(self, task: Any, result: Any) -> None:
        outcome = "failed" if result.HasField("taskFailed") else "ok"
        self.lines.append(f"{task.name}: {outcome}")


def test_a_plugin_sees_every_activity_on_the_engine(wftest_engine: Engine) -> None:
    audit = AuditLog()
    wftest_engine.hooks.register(audit)

    iid = wftest_engine.client.schedule_new_orchestration(book_trip, input=OSLO)
    wftest_engine.client.wait_for_orchestration_completion(iid)

    assert audit.lines == [
        "book_hotel: ok", "book_flight: ok", "book_car: failed", "cancel_flight: ok", "cancel_hotel: ok"
    ]
