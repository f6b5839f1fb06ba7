"""External events: delivery, order, buffering, early arrival, case-insensitivity, timeouts, send_event."""

from __future__ import annotations

from datetime import timedelta

import pytest

from wftest import (
    Engine,
    InstanceNotFoundError,
    OrchestrationContext,
    OrchestrationStatus,
    TaskFailedError,
    TaskTimeoutError,
    when_all,
    when_any,
)

from ._support import T0, Gen, ids, of_kind


def wait_one(ctx: OrchestrationContext, name: str) -> Gen:
    value = yield ctx.wait_for_external_event(name)
    return value


def test_one_event_completes_the_wait_with_its_data() -> None:
    # given an orchestration waiting for "approval"
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(wait_one, input="approval", instance_id="e1")
    engine.run_until_idle()
    assert engine.client.get_orchestration_state(iid).runtime_status == OrchestrationStatus.RUNNING
    # when the event is raised
    engine.client.raise_orchestration_event(iid, "approval", data={"by": "alice"})
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the wait returns its data and the history holds the EventRaised
    assert state.output == {"by": "alice"}
    raised = of_kind(engine.history(iid), "eventRaised")
    assert [(e.eventRaised.name, e.eventRaised.input.value) for e in raised] == [("approval", '{"by": "alice"}')]


def test_hundred_events_raised_in_order_are_received_in_order() -> None:
    # given an orchestration that reads 100 events one by one
    def reads_100(ctx: OrchestrationContext, _: None) -> Gen:
        values = []
        for _ in range(100):
            values.append((yield ctx.wait_for_external_event("item")))
        return values

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(reads_100, instance_id="e100")
    engine.run_until_idle()
    # when 100 events are raised in order
    for i in range(100):
        engine.client.raise_orchestration_event(iid, "item", data=i)
    # then they are received in that order
    assert engine.client.wait_for_orchestration_completion(iid).output == list(range(100))


def test_event_raised_before_the_wait_is_buffered_and_consumed_at_once() -> None:
    # given an orchestration busy on a timer before it waits for "go"
    def late_waiter(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.create_timer(timedelta(hours=1))
        value = yield ctx.wait_for_external_event("go")
        return [value, ctx.current_utc_datetime.isoformat()]

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(late_waiter, instance_id="early")
    engine.run_until_idle()
    # when "go" is raised while it is still on the timer
    engine.client.raise_orchestration_event(iid, "go", data="early bird")
    engine.run_until_idle()
    # then the event is not lost: the later wait gets it at once (in the timer's step)
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == ["early bird", "2024-01-01T01:00:00"]


def test_event_raised_before_the_orchestration_starts_is_not_lost() -> None:
    # given an orchestration scheduled to start in one hour
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(
        wait_one, input="go", instance_id="not-yet", start_at=T0 + timedelta(hours=1)
    )
    assert engine.client.get_orchestration_state(iid).runtime_status == OrchestrationStatus.PENDING
    # when the event is raised before it starts
    engine.client.raise_orchestration_event(iid, "go", data=7)
    engine.run_until_idle()
    # then the instance starts at its time and receives the event
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.output == 7
    started = of_kind(engine.history(iid), "orchestratorStarted")[0]
    assert started.timestamp.ToDatetime() == T0 + timedelta(hours=1)


def test_event_names_are_case_insensitive() -> None:
    # given an orchestration waiting for "Approval"
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(wait_one, input="Approval", instance_id="case")
    engine.run_until_idle()
    # when "APPROVAL" is raised
    engine.client.raise_orchestration_event(iid, "APPROVAL", data=True)
    # then it is delivered
    assert engine.client.wait_for_orchestration_completion(iid).output is True


def test_buffered_event_names_are_case_insensitive() -> None:
    # given events raised under a different case before anyone waits
    def waits_later(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.create_timer(timedelta(minutes=1))
        value = yield ctx.wait_for_external_event("Approval")
        return value

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(waits_later)
    engine.client.raise_orchestration_event(iid, "approval", data="lower")
    # then the later wait gets it
    assert engine.client.wait_for_orchestration_completion(iid).output == "lower"


def test_event_completes_the_oldest_waiter_for_its_name() -> None:
    # given two waits for the same name at once
    def two_waiters(ctx: OrchestrationContext, _: None) -> Gen:
        first = ctx.wait_for_external_event("x")
        second = ctx.wait_for_external_event("x")
        results = yield when_all([second, first])
        return results

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(two_waiters)
    engine.run_until_idle()
    # when "x" is raised twice
    engine.client.raise_orchestration_event(iid, "x", data="one")
    engine.client.raise_orchestration_event(iid, "x", data="two")
    # then the first event went to the first (oldest) wait
    assert engine.client.wait_for_orchestration_completion(iid).output == ["two", "one"]


def test_buffered_events_are_consumed_fifo_per_name() -> None:
    # given events of two names raised before anyone waits
    def reads_later(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.create_timer(timedelta(minutes=1))
        b1 = yield ctx.wait_for_external_event("b")
        a1 = yield ctx.wait_for_external_event("a")
        a2 = yield ctx.wait_for_external_event("a")
        b2 = yield ctx.wait_for_external_event("b")
        return [a1, a2, b1, b2]

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(reads_later)
    for name, data in (("a", "a1"), ("b", "b1"), ("a", "a2"), ("b", "b2")):
        engine.client.raise_orchestration_event(iid, name, data=data)
    # then each name's events come out in arrival order
    assert engine.client.wait_for_orchestration_completion(iid).output == ["a1", "a2", "b1", "b2"]


def test_wait_with_timeout_via_when_any_and_a_timer_times_out() -> None:
    # given an orchestration racing an event against a one-hour timer
    def approval_or_timeout(ctx: OrchestrationContext, _: None) -> Gen:
        event = ctx.wait_for_external_event("approval")
        timer = ctx.create_timer(timedelta(hours=1))
        winner = yield when_any([event, timer])
        if winner is timer:
            return ["timed out", ctx.current_utc_datetime.isoformat()]
        return ["approved", event.get_result()]

    engine = Engine()
    # when no event comes
    iid = engine.client.schedule_new_orchestration(approval_or_timeout)
    # then the timer wins after an hour
    assert engine.client.wait_for_orchestration_completion(iid).output == ["timed out", "2024-01-01T01:00:00"]


def test_wait_with_timeout_via_when_any_gets_the_event_in_time() -> None:
    # given the same race
    def approval_or_timeout2(ctx: OrchestrationContext, _: None) -> Gen:
        event = ctx.wait_for_external_event("approval")
        timer = ctx.create_timer(timedelta(hours=1))
        winner = yield when_any([event, timer])
        if winner is timer:
            return "timed out"
        return event.get_result()

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(approval_or_timeout2)
    engine.advance(timedelta(minutes=10))
    # when the event comes after ten minutes
    engine.client.raise_orchestration_event(iid, "approval", data="yes")
    # then the event wins
    assert engine.client.wait_for_orchestration_completion(iid).output == "yes"


def test_wait_for_external_event_timeout_raises_task_timeout_error() -> None:
    # given an orchestration waiting with a 30-minute timeout
    def waits_with_timeout(ctx: OrchestrationContext, _: None) -> Gen:
        try:
            yield ctx.wait_for_external_event("approval", timeout=timedelta(minutes=30))
        except TaskTimeoutError as err:
            return {"is_timeout": isinstance(err, TimeoutError), "is_task_failed": isinstance(err, TaskFailedError),
                    "message": str(err), "at": ctx.current_utc_datetime.isoformat()}
        return "no timeout"

    engine = Engine()
    # when no event arrives
    iid = engine.client.schedule_new_orchestration(waits_with_timeout)
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the wait fails with TaskTimeoutError (a TimeoutError and a TaskFailedError) after 30 minutes,
    # with a "task was canceled"-style message
    out = state.output
    assert out["is_timeout"] and out["is_task_failed"]
    assert "canceled" in out["message"] and "approval" in out["message"]
    assert out["at"] == "2024-01-01T00:30:00"


def test_task_timeout_error_is_a_timeout_error() -> None:
    assert issubclass(TaskTimeoutError, TimeoutError)
    assert issubclass(TaskTimeoutError, TaskFailedError)


def test_wait_for_external_event_with_timeout_returns_the_event_in_time() -> None:
    # given an orchestration waiting with a 30-minute timeout
    def waits_with_timeout2(ctx: OrchestrationContext, _: None) -> Gen:
        value = yield ctx.wait_for_external_event("approval", timeout=timedelta(minutes=30))
        yield ctx.create_timer(timedelta(hours=2))  # the cancelled timeout must not disturb later waits
        return value

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(waits_with_timeout2)
    engine.advance(timedelta(minutes=5))
    # when the event arrives in time
    engine.client.raise_orchestration_event(iid, "approval", data="ok")
    # then the wait returns it
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.output == "ok"


def test_uncaught_event_timeout_fails_the_orchestration() -> None:
    # given an orchestration that does not catch the timeout
    def times_out(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.wait_for_external_event("approval", timeout=timedelta(seconds=5))
        return "unreachable"

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(times_out)
    state = engine.client.wait_for_orchestration_completion(iid)
    # then it FAILED with the timeout error
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert "TaskTimeoutError" in state.failure_details.error_type


def test_send_event_records_event_sent_and_the_target_receives_event_raised() -> None:
    # given a receiver waiting for "hello" and a sender
    def sender(ctx: OrchestrationContext, target: str) -> None:
        ctx.send_event(target, "hello", data="from sender")
        return None

    engine = Engine()
    receiver = engine.client.schedule_new_orchestration(wait_one, input="hello", instance_id="receiver")
    engine.run_until_idle()
    # when the sender runs
    sid = engine.client.schedule_new_orchestration(sender, input=receiver, instance_id="sender")
    engine.client.wait_for_orchestration_completion(sid)
    # then the sender's history holds EventSent #1 and the receiver gets the data
    assert ids(engine.history(sid)) == ["ExecutionStarted", "EventSent#1", "ExecutionCompleted"]
    sent = of_kind(engine.history(sid), "eventSent")[0].eventSent
    assert (sent.instanceId, sent.name) == ("receiver", "hello")
    assert engine.client.wait_for_orchestration_completion(receiver).output == "from sender"


def test_event_to_an_unknown_instance_is_an_error() -> None:
    engine = Engine()
    with pytest.raises(InstanceNotFoundError):
        engine.client.raise_orchestration_event("nobody", "x", data=1)


def test_wait_timeout_longer_than_the_maximum_timer_interval_still_times_out() -> None:
    # given an orchestration waiting 10 days for an event (its timeout timer is split into 3-day chunks)
    def waits_ten_days(ctx: OrchestrationContext, _: None) -> Gen:
        try:
            yield ctx.wait_for_external_event("approval", timeout=timedelta(days=10))
        except TaskTimeoutError:
            return ["timed out", ctx.current_utc_datetime.isoformat()]
        return "no timeout"

    for sticky in (True, False):
        engine = Engine(sticky=sticky)
        # when no event arrives
        iid = engine.client.schedule_new_orchestration(waits_ten_days)
        state = engine.client.wait_for_orchestration_completion(iid)
        # then the wait fails when the last chunk fires, 10 days in (it does not wait forever)
        assert state.output == ["timed out", "2024-01-11T00:00:00"], f"sticky={sticky}"


def test_event_within_a_long_wait_timeout_cancels_the_remaining_chunks() -> None:
    # given an orchestration waiting 10 days for an event, and then sleeping 20 days
    def long_wait_then_sleep(ctx: OrchestrationContext, _: None) -> Gen:
        value = yield ctx.wait_for_external_event("approval", timeout=timedelta(days=10))
        yield ctx.create_timer(timedelta(days=20))
        return [value, ctx.current_utc_datetime.isoformat()]

    engine = Engine(sticky=False)
    iid = engine.client.schedule_new_orchestration(long_wait_then_sleep)
    engine.advance(timedelta(days=4))  # past the first chunk
    # when the event arrives on day 4
    engine.client.raise_orchestration_event(iid, "approval", data="yes")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the wait returns it and the timeout never fires
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.output == ["yes", "2024-01-25T00:00:00"]


def test_event_arriving_after_a_timed_out_wait_is_buffered_for_the_next_wait() -> None:
    # given an orchestration whose first wait times out, and that waits again for the same name later
    def waits_twice(ctx: OrchestrationContext, _: None) -> Gen:
        try:
            yield ctx.wait_for_external_event("a", timeout=timedelta(minutes=1))
        except TaskTimeoutError:
            pass
        yield ctx.create_timer(timedelta(hours=1))
        value = yield ctx.wait_for_external_event("a")
        return value

    engine = Engine(sticky=False)
    iid = engine.client.schedule_new_orchestration(waits_twice)
    engine.advance(timedelta(minutes=5))
    # when the event arrives after the timeout
    engine.client.raise_orchestration_event(iid, "a", data="late")
    # then the timed-out wait does not swallow it: the next wait gets it
    assert engine.client.wait_for_orchestration_completion(iid).output == "late"
