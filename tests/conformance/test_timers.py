"""Durable timers: firing times, instant long waits on the virtual clock, history, long-timer chunks."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from wftest import Engine, OrchestrationContext, OrchestrationStatus, when_any

from ._support import T0, Gen, at, ids, of_kind


def test_single_timer_fires_after_its_delay() -> None:
    # given an orchestrator that waits one hour
    def one_hour(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.create_timer(timedelta(hours=1))
        return ctx.current_utc_datetime.isoformat()

    engine = Engine()
    # when it runs
    iid = engine.client.schedule_new_orchestration(one_hour, instance_id="t1")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then it resumes exactly one hour (virtual time) later
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.output == "2024-01-01T01:00:00"
    assert engine.clock.now() == T0 + timedelta(hours=1)
    assert ids(engine.history(iid)) == ["ExecutionStarted", "TimerCreated#1", "TimerFired#1", "ExecutionCompleted"]


def test_timer_does_not_fire_before_its_time() -> None:
    # given an orchestrator waiting on a one-hour timer
    def waits_an_hour(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.create_timer(timedelta(hours=1))
        return "fired"

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(waits_an_hour)
    # when the clock moves 59 minutes
    engine.advance(timedelta(minutes=59))
    # then it is still running; one more minute fires it
    assert engine.client.get_orchestration_state(iid).runtime_status == OrchestrationStatus.RUNNING
    engine.advance(timedelta(minutes=1))
    assert engine.client.get_orchestration_state(iid).runtime_status == OrchestrationStatus.COMPLETED


def test_thirty_day_timer_completes_instantly_on_the_virtual_clock() -> None:
    # given an orchestrator that waits 30 days
    def thirty_days(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.create_timer(timedelta(days=30))
        return ctx.current_utc_datetime.isoformat()

    engine = Engine()
    # when waiting for it
    started = time.perf_counter()
    iid = engine.client.schedule_new_orchestration(thirty_days)
    state = engine.client.wait_for_orchestration_completion(iid)
    elapsed = time.perf_counter() - started
    # then it completes 30 virtual days later, in (far) less than a wall-clock second
    assert state.output == "2024-01-31T00:00:00"
    assert engine.clock.now() == T0 + timedelta(days=30)
    assert elapsed < 1.0


def test_timer_fire_times_are_recorded_in_timer_created_and_timer_fired() -> None:
    # given an orchestrator with a relative and an absolute timer
    def two_timers(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.create_timer(timedelta(minutes=90))
        yield ctx.create_timer(datetime(2024, 1, 2, 12, 0))
        return None

    engine = Engine()
    # when it completes
    iid = engine.client.schedule_new_orchestration(two_timers, instance_id="fire-times")
    engine.client.wait_for_orchestration_completion(iid)
    history = engine.history(iid)
    # then TimerCreated{eventId, fireAt} and TimerFired{timerId, fireAt} carry the fire times, and each
    # TimerFired is delivered at its fire time
    expected = [datetime(2024, 1, 1, 1, 30), datetime(2024, 1, 2, 12, 0)]
    created = of_kind(history, "timerCreated")
    fired = of_kind(history, "timerFired")
    assert [e.eventId for e in created] == [1, 2]
    assert [e.timerCreated.fireAt.ToDatetime() for e in created] == expected
    assert [e.timerFired.timerId for e in fired] == [1, 2]
    assert [e.timerFired.fireAt.ToDatetime() for e in fired] == expected
    assert [at(e) for e in fired] == expected


def test_timer_with_an_aware_datetime_is_converted_to_utc() -> None:
    # given an orchestrator with a timer at an aware datetime (UTC+2)
    def aware_timer(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.create_timer(datetime(2024, 1, 1, 5, 0, tzinfo=timezone(timedelta(hours=2))))
        return ctx.current_utc_datetime.isoformat()

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(aware_timer)
    # then it fires at 03:00 UTC
    assert engine.client.wait_for_orchestration_completion(iid).output == "2024-01-01T03:00:00"


def test_long_timer_is_split_into_chunks_of_three_days() -> None:
    # given an orchestrator that waits 10 days (longer than the 3-day maximum timer interval)
    def ten_days(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.create_timer(timedelta(days=10))
        return ctx.current_utc_datetime.isoformat()

    engine = Engine()
    # when it runs
    iid = engine.client.schedule_new_orchestration(ten_days, instance_id="long")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the history holds chunks at days 3, 6, 9 and the final one at day 10, each a new timer id
    assert state.output == "2024-01-11T00:00:00"
    history = engine.history(iid)
    fire_ats = [e.timerCreated.fireAt.ToDatetime() for e in of_kind(history, "timerCreated")]
    assert fire_ats == [T0 + timedelta(days=d) for d in (3, 6, 9, 10)]
    assert ids(history) == [
        "ExecutionStarted",
        "TimerCreated#1", "TimerFired#1", "TimerCreated#2", "TimerFired#2",
        "TimerCreated#3", "TimerFired#3", "TimerCreated#4", "TimerFired#4",
        "ExecutionCompleted",
    ]


def test_timer_of_exactly_three_days_is_not_split() -> None:
    # given an orchestrator that waits exactly the maximum interval
    def three_days(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.create_timer(timedelta(days=3))
        return None

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(three_days)
    engine.client.wait_for_orchestration_completion(iid)
    # then one timer is enough
    assert len(of_kind(engine.history(iid), "timerCreated")) == 1


def test_when_any_of_two_timers_returns_the_earlier_one() -> None:
    # given an orchestrator racing a 1-minute and a 1-hour timer
    def race(ctx: OrchestrationContext, _: None) -> Gen:
        short = ctx.create_timer(timedelta(minutes=1))
        long = ctx.create_timer(timedelta(hours=1))
        winner = yield when_any([long, short])
        return [winner is short, ctx.current_utc_datetime.isoformat()]

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(race)
    # then the short one wins, one minute in
    assert engine.client.wait_for_orchestration_completion(iid).output == [True, "2024-01-01T00:01:00"]
