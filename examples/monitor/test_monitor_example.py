"""Testing a month-long monitor in milliseconds of wall time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from monitor import ALERTS, JOBS, check_job, monitor_job, send_alert

from wftest import ActivityTester, Engine, RunLimitError, WorkflowTester
from wftest.hooks import TimeMachinePlugin

# these tests assert calendar dates, read by activities: pin the settings they rely on (a marker beats
# --wftest-start-time and the other options)
pytestmark = pytest.mark.wftest(start_time="2024-01-01T00:00:00", freeze_activity_time=True)


@pytest.fixture(autouse=True)
def fresh_fakes() -> Iterator[None]:
    JOBS.clear()
    ALERTS.clear()
    yield


def test_a_job_that_takes_20_days_is_watched_in_milliseconds(workflow_tester: WorkflowTester) -> None:
    workflow_tester.on_activity(check_job).returns("running").times(80)  # 80 checks x 6 h = 20 days
    workflow_tester.on_activity(check_job).returns("succeeded").once()
    workflow_tester.on_activity(send_alert).returns(None).once()

    started = time.perf_counter()
    result = workflow_tester.run(monitor_job, {"job": "nightly-etl"})
    wall = time.perf_counter() - started

    assert result.output == {"job": "nightly-etl", "state": "succeeded", "checks": 81}
    assert result.virtual_duration == timedelta(days=20)
    assert wall < 2  # typically ~40 ms, for 81 generations and 240 work items
    workflow_tester.assert_expectations()


def test_continue_as_new_keeps_the_history_short(workflow_tester: WorkflowTester) -> None:
    workflow_tester.on_activity(check_job).returns("running").times(80)
    workflow_tester.on_activity(check_job).returns("succeeded")

    result = workflow_tester.run(monitor_job, {"job": "nightly-etl"})

    # only the last generation is left: it started on day 20 with the state carried over
    assert len(result.history) == 9
    started = result.history[1].executionStarted
    assert started.input.value == '{"job": "nightly-etl", "give_up_at": "2024-01-31T00:00:00", "checks": 80}'
    assert result.history[0].timestamp.ToDatetime() == datetime(2024, 1, 21)


def test_it_gives_up_after_30_days(workflow_tester: WorkflowTester) -> None:
    result = workflow_tester.run(monitor_job, {"job": "stuck"})  # the real check_job: always "running"

    assert result.output == {"job": "stuck", "state": "gave up", "checks": 121}
    assert result.virtual_duration == timedelta(days=30)
    [(paged_at, message)] = ALERTS
    assert message == "job stuck still running after 121 checks; giving up"
    assert paged_at == datetime(2024, 1, 31)  # the real send_alert's datetime.now() read the virtual clock


def test_a_failed_job_raises_an_alert(workflow_tester: WorkflowTester) -> None:
    workflow_tester.on_activity(check_job).returns("running").times(2)
    workflow_tester.on_activity(check_job).returns("failed")

    result = workflow_tester.run(monitor_job, {"job": "backup"})

    assert result.output["state"] == "failed"
    assert [alert.input for alert in workflow_tester.calls(send_alert)] == ["job backup failed (check #3)"]
    assert result.virtual_duration == timedelta(hours=12)


def test_an_operator_can_stop_it(workflow_tester: WorkflowTester) -> None:
    workflow_tester.at(timedelta(days=3, hours=1), lambda t: t.terminate(output="stopped by ops"))

    result = workflow_tester.run(monitor_job, {"job": "stuck"})

    assert (result.status, result.output) == ("TERMINATED", "stopped by ops")
    assert len(workflow_tester.calls(check_job)) == 13  # days 0, 0.25, ..., 3
    assert not ALERTS


def test_the_status_after_ten_days(workflow_tester: WorkflowTester) -> None:
    workflow_tester.start(monitor_job, {"job": "stuck"})

    workflow_tester.run_until(timedelta(days=10))

    assert workflow_tester.result().custom_status == {"checks": 41, "last": "running"}
    assert workflow_tester.now == datetime(2024, 1, 11)


def test_the_job_finishes_while_the_engine_watches(wftest_engine: Engine) -> None:
    client = wftest_engine.client
    iid = client.schedule_new_orchestration(monitor_job, input={"job": "etl"}, instance_id="watch-etl")

    wftest_engine.advance(timedelta(days=2))
    JOBS["etl"] = "succeeded"  # the watched system changes between two checks
    state = client.wait_for_orchestration_completion(iid)

    assert state.output == {"job": "etl", "state": "succeeded", "checks": 10}
    assert wftest_engine.clock.now() == datetime(2024, 1, 3, 6)  # the first check after the change
    # unlike the tester, the engine does not patch time for activities: they see the wall clock
    assert [message for _, message in ALERTS] == ["job etl succeeded (check #10)"]


def test_time_machine_can_stand_in_for_freezegun(workflow_tester: WorkflowTester) -> None:
    workflow_tester.hooks.register(TimeMachinePlugin())  # or: pytest --wftest-time-backend=time-machine

    workflow_tester.run(monitor_job, {"job": "stuck"})

    assert ALERTS[0][0] == datetime(2024, 1, 31)


@pytest.mark.wftest(max_steps=50)
def test_max_steps_stops_a_run_that_goes_on_too_long(workflow_tester: WorkflowTester) -> None:
    with pytest.raises(RunLimitError, match="more than max_steps=50 work items"):
        workflow_tester.run(monitor_job, {"job": "stuck"})


def test_the_alert_activity_alone() -> None:
    ActivityTester(now=datetime(2024, 5, 1, 12)).run(send_alert, "disk full")

    [(paged_at, _)] = ALERTS
    assert paged_at == datetime(2024, 5, 1, 12)
