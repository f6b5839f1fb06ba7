"""Testing retries: a flaky service, backoff delays read from the history, giving up, not retrying."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from retries import OUTAGE, cached_rate, convert_price, fetch_rate

from wftest import Engine, RunResult, WorkflowTester

PRICE = {"amount": 10, "currency": "EUR"}
SECOND = timedelta(seconds=1)


@pytest.fixture(autouse=True)
def service_up() -> Iterator[None]:
    OUTAGE["failures_left"] = 0
    yield


def retry_delays(result: RunResult) -> list[timedelta]:
    """How long each retry timer waited: its fire time minus the time it was created."""
    return [
        e.timerCreated.fireAt.ToDatetime() - e.timestamp.ToDatetime()
        for e in result.history
        if e.HasField("timerCreated")
    ]


def test_the_flaky_service_succeeds_on_the_third_attempt(workflow_tester: WorkflowTester) -> None:
    OUTAGE["failures_left"] = 2  # the real fetch_rate fails twice, then recovers

    result = workflow_tester.run(convert_price, PRICE)

    assert result.output == {"usd": 10.8, "rate": 1.08, "stale": False}
    assert retry_delays(result) == [5 * SECOND, 10 * SECOND]
    attempts = [c.at - result.started_at for c in workflow_tester.calls(fetch_rate)]
    assert attempts == [0 * SECOND, 5 * SECOND, 15 * SECOND]


def test_the_backoff_doubles_up_to_the_cap(workflow_tester: WorkflowTester) -> None:
    workflow_tester.on_activity(fetch_rate).raises(ConnectionError("timeout")).times(4)
    workflow_tester.on_activity(fetch_rate).returns(1.10).once()

    result = workflow_tester.run(convert_price, PRICE)

    assert result.output == {"usd": 11.0, "rate": 1.10, "stale": False}
    assert retry_delays(result) == [5 * SECOND, 10 * SECOND, 20 * SECOND, 30 * SECOND]  # not 40: capped
    assert result.virtual_duration == 65 * SECOND
    workflow_tester.assert_expectations()


def test_every_attempt_has_the_same_task_id(workflow_tester: WorkflowTester) -> None:
    OUTAGE["failures_left"] = 2

    workflow_tester.run(convert_price, PRICE)

    # so (orchestration id, task id) is a good idempotency key for the service
    assert {(c.instance_id, c.task_id) for c in workflow_tester.calls(fetch_rate)} == {("test-instance", 1)}


def test_after_five_failed_attempts_it_falls_back_to_the_cache(workflow_tester: WorkflowTester) -> None:
    workflow_tester.on_activity(fetch_rate).raises(ConnectionError("down"))

    result = workflow_tester.run(convert_price, PRICE)

    assert result.output == {"usd": 10.7, "rate": 1.07, "stale": True}
    assert len(workflow_tester.calls(fetch_rate)) == 5
    [fallback] = workflow_tester.calls(cached_rate)
    assert fallback.at - result.started_at == 65 * SECOND
    failures = [e.taskFailed.failureDetails.errorType for e in result.history if e.HasField("taskFailed")]
    assert failures == ["builtins.ConnectionError"] * 5


def test_an_unknown_currency_is_not_retried(workflow_tester: WorkflowTester) -> None:
    result = workflow_tester.run(convert_price, {"amount": 10, "currency": "XYZ"})

    assert result.status == "FAILED"
    assert result.failure_details is not None and result.failure_details.is_caused_by(ValueError)
    assert len(workflow_tester.calls(fetch_rate)) == 1
    assert retry_delays(result) == [] and result.virtual_duration == timedelta(0)


def test_the_service_recovers_while_the_orchestration_waits(workflow_tester: WorkflowTester) -> None:
    OUTAGE["failures_left"] = 100
    workflow_tester.start(convert_price, PRICE)

    workflow_tester.run_until(12 * SECOND)  # attempts at 0 s and 5 s failed; the next is due at 15 s
    assert len(workflow_tester.calls(fetch_rate)) == 2
    OUTAGE["failures_left"] = 0

    result = workflow_tester.run_until()  # to the end
    assert result.output["stale"] is False
    assert result.virtual_duration == 15 * SECOND


def test_the_engine_waits_on_the_retry_timer(wftest_engine: Engine) -> None:
    OUTAGE["failures_left"] = 1
    client = wftest_engine.client
    iid = client.schedule_new_orchestration(convert_price, input=PRICE)

    wftest_engine.run_until_idle()  # the first attempt fails; run_until_idle never moves the clock
    state = client.get_orchestration_state(iid)
    assert state is not None and state.runtime_status == "RUNNING"
    wftest_engine.advance(5 * SECOND)  # the retry timer fires and the second attempt succeeds

    state = client.get_orchestration_state(iid)
    assert state is not None and state.runtime_status == "COMPLETED" and state.output["rate"] == 1.08
