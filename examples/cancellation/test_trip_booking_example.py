"""Testing cancellation: a cancel at a virtual time, the cleanup it runs, and a fuzz test that sends the cancel
at every point of the booking (and under injected crashes) to check that every reservation made is released
exactly once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trip_booking import Provider, book_trip, book_trip_leaky

from wftest import CrashAfterActivity, CrashDuringStep, DuplicateEvent, Engine, RunResult, WorkflowTester
from wftest.strategies import Schedule, schedules

TRIP = {"room": "room", "seat": "seat", "car": "car"}
MINUTE = timedelta(minutes=1)
#: how long the provider takes to answer each call (the result arrives this long after the call)
LATENCY = {"room": 10 * MINUTE, "seat": 20 * MINUTE, "car": 15 * MINUTE}
RELEASE_LATENCY = 5 * MINUTE
FAULTS = [CrashAfterActivity(), CrashDuringStep(), DuplicateEvent()]
# deterministic search in CI; a larger max_examples searches further (see docs/fuzzing.md)
FUZZ = settings(max_examples=150, derandomize=True, database=None, deadline=None)


def booking_tester(provider: Provider, *, cancel_at: timedelta | None = None,
                   confirm_at: timedelta | None = None) -> WorkflowTester:
    """A tester whose provider answers after ``LATENCY``, with a cancel and a confirmation at virtual times."""
    tester = WorkflowTester()
    for what, latency in LATENCY.items():
        tester.on_activity("reserve", what).calls(provider.reserve).after(latency).any_times()
    tester.on_activity("release").calls(provider.release).after(RELEASE_LATENCY).any_times()
    if cancel_at is not None:
        tester.at(cancel_at, lambda t: t.cancel("the traveller changed their plans"))
    if confirm_at is not None:
        tester.at(confirm_at, lambda t: t.raise_event("confirm", True))
    return tester


def check_invariants(provider: Provider, result: RunResult) -> None:
    """Booked: everything reserved is held. Otherwise: every reservation made is released exactly once."""
    status = result.output["status"]
    assert result.status == "COMPLETED", result.failure_details
    assert provider.double_releases() == []
    if status == "booked":
        assert provider.releases == [] and sorted(provider.active) == sorted(provider.reserved)
    else:
        assert status in ("cancelled", "expired")
        assert sorted(provider.releases) == sorted(provider.reserved), (provider.reserved, provider.releases)
        assert provider.active == {}


def run_booking(saga: Callable[..., Any], cancel_at: timedelta | None, confirm_at: timedelta | None = None,
                schedule: Schedule | None = None) -> tuple[Provider, RunResult]:
    provider = Provider()
    tester = booking_tester(provider, cancel_at=cancel_at, confirm_at=confirm_at)
    return provider, tester.run(saga, TRIP, schedule=schedule)


# -- examples --------------------------------------------------------------------------------------------


def test_a_confirmed_trip_is_booked() -> None:
    provider, result = run_booking(book_trip, cancel_at=None, confirm_at=timedelta(hours=2))
    assert result.output == {"status": "booked", "reservations": ["room-1", "seat-2", "car-3"]}
    check_invariants(provider, result)


def test_a_cancel_while_waiting_for_the_confirmation_releases_everything_newest_first() -> None:
    provider, result = run_booking(book_trip, cancel_at=timedelta(hours=3))
    assert result.output == {"status": "cancelled", "reason": "the traveller changed their plans",
                             "released": ["car-3", "seat-2", "room-1"]}
    assert result.finished_at - result.started_at == timedelta(hours=3) + 3 * RELEASE_LATENCY
    check_invariants(provider, result)


def test_a_cancel_while_the_seat_is_being_reserved_waits_for_it_and_releases_it() -> None:
    provider = Provider()
    tester = booking_tester(provider, cancel_at=15 * MINUTE)  # the room is in, the seat is still running
    result = tester.run(book_trip, TRIP)
    assert result.output["released"] == ["seat-2", "room-1"]
    check_invariants(provider, result)
    # the cancel interrupted the wait at minute 15; the seat's result arrived at 20, then the releases ran
    assert [c.at - result.started_at for c in tester.calls("release")] == [20 * MINUTE, 25 * MINUTE]


def test_the_leaky_cleanup_loses_a_reservation_that_was_running() -> None:
    provider, result = run_booking(book_trip_leaky, cancel_at=15 * MINUTE)
    assert result.output["released"] == ["room-1"]
    assert provider.active == {"seat-2": "seat"}  # made after the cancel, never released


def test_an_unconfirmed_hold_expires_and_is_released() -> None:
    provider, result = run_booking(book_trip, cancel_at=None)
    assert result.output == {"status": "expired", "released": ["car-3", "seat-2", "room-1"]}
    check_invariants(provider, result)


def test_a_cancel_during_the_expiry_cleanup_does_not_stop_it() -> None:
    car_in = 35 * MINUTE  # room and seat at 20 minutes, then the car takes 15
    provider, result = run_booking(book_trip, cancel_at=car_in + timedelta(days=1) + MINUTE)
    assert result.output["status"] == "expired" and len(result.output["released"]) == 3
    check_invariants(provider, result)


def test_a_cancel_after_the_booking_finished_changes_nothing() -> None:
    provider, result = run_booking(book_trip, cancel_at=timedelta(hours=5), confirm_at=timedelta(hours=2))
    assert result.output["status"] == "booked"
    check_invariants(provider, result)


def test_the_engine_cancels_with_the_client() -> None:
    provider = Provider()
    engine = Engine()
    engine.add_named_activity("reserve", provider.reserve)
    engine.add_named_activity("release", provider.release)
    iid = engine.client.schedule_new_orchestration(book_trip, input=TRIP)
    engine.advance(timedelta(hours=1))
    engine.client.cancel_orchestration(iid, reason="no longer needed")
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == {"status": "cancelled", "reason": "no longer needed",
                            "released": ["car-3", "seat-2", "room-1"]}
    assert provider.active == {}


# -- a cancel at every point -----------------------------------------------------------------------------


#: every moment that matters: the reservations (minutes 0-35), the releases after a cancel, and the expiry
MOMENTS = [m * MINUTE for m in range(0, 60)] + [timedelta(days=1) + m * MINUTE for m in range(30, 60)]


def test_a_cancel_at_every_minute_of_the_booking_keeps_the_invariants() -> None:
    for cancel_at in MOMENTS:
        provider, result = run_booking(book_trip, cancel_at=cancel_at)
        check_invariants(provider, result)


def test_the_leaky_cleanup_leaks_exactly_when_a_reservation_is_running() -> None:
    leaked_at = []
    for cancel_at in MOMENTS:
        provider, result = run_booking(book_trip_leaky, cancel_at=cancel_at)
        if provider.active and result.output["status"] != "booked":
            leaked_at.append(cancel_at // MINUTE)
    # the room and seat run from minute 0 to 20, the car from 20 to 35; a result due at the very minute of
    # the cancel arrives ahead of it (both are due then, and the result was queued first, when the car's
    # reservation started)
    assert leaked_at == list(range(0, 35))


cancel_times = st.one_of(st.none(), st.integers(0, 60).map(lambda m: m * MINUTE),
                         st.integers(0, 26 * 60).map(lambda m: m * MINUTE))
confirm_times = st.one_of(st.none(), st.integers(0, 26 * 60).map(lambda m: m * MINUTE))


@FUZZ
@given(schedule=schedules(faults=FAULTS), cancel_at=cancel_times, confirm_at=confirm_times)
def test_the_booking_keeps_its_invariants_whenever_the_cancel_comes(
    schedule: Schedule, cancel_at: timedelta | None, confirm_at: timedelta | None
) -> None:
    provider, result = run_booking(book_trip, cancel_at, confirm_at, schedule)
    check_invariants(provider, result)


def test_the_fuzzer_finds_the_leaky_cleanup() -> None:
    found: list[tuple[timedelta | None, Schedule]] = []

    @FUZZ
    @given(schedule=schedules(faults=FAULTS), cancel_at=cancel_times, confirm_at=confirm_times)
    def fuzz(schedule: Schedule, cancel_at: timedelta | None, confirm_at: timedelta | None) -> None:
        found.append((cancel_at, schedule))
        provider, result = run_booking(book_trip_leaky, cancel_at, confirm_at, schedule)
        check_invariants(provider, result)

    with pytest.raises(AssertionError, match=r"seat-2|room-1|car-3"):
        fuzz()
    cancel_at, _ = found[-1]  # the minimal failing example, replayed last by hypothesis
    assert cancel_at is not None and cancel_at < 35 * MINUTE  # while a reservation was running
