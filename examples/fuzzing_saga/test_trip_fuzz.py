"""Fuzzing the trip saga: invariants hold in every schedule hypothesis can find, or it shows the one
where they do not (shrunk to the fewest decisions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from trip import Hotel, book_trip, book_trip_fixed

from wftest import CrashAfterActivity, CrashDuringStep, DuplicateEvent, ScheduleFailure, WorkflowTester, explore
from wftest.strategies import Schedule, schedules

TRIP = {"id": 7, "to": "Lisbon", "price": 420}
FAULTS = [CrashAfterActivity(), CrashDuringStep(), DuplicateEvent()]
# deterministic search in CI; a larger max_examples finds rarer bugs (see docs/fuzzing.md)
FUZZ = settings(max_examples=100, derandomize=True, database=None, deadline=None)


def check_trip(saga: Callable[..., Any], schedule: Schedule) -> None:
    """Run the saga under ``schedule`` and check the invariants."""
    hotel = Hotel()
    tester = WorkflowTester()
    for method in (hotel.book_hotel, hotel.release_hotel, hotel.release_hotel_safely):
        tester.add_activity(method)
    result = tester.run(saga, TRIP, schedule=schedule)
    assert result.output["status"] == "cancelled"  # the flight always fails
    # every room booked is released on failure, exactly once
    assert sorted(hotel.released) == sorted(set(hotel.booked)), (hotel.booked, hotel.released)


def test_the_fuzzer_finds_the_double_release() -> None:
    found: list[Schedule] = []

    @FUZZ
    @given(schedule=schedules(faults=FAULTS))
    def fuzz(schedule: Schedule) -> None:
        found.append(schedule)
        check_trip(book_trip, schedule)

    with pytest.raises(AssertionError, match="room-7"):
        fuzz()
    shrunk = found[-1]  # the minimal failing schedule, replayed last by hypothesis
    assert shrunk.to_string() == PRINTED  # one crash, right after the compensation ran
    assert shrunk.timeline() == "  6. crash-after at activity release_hotel#3 of test-instance"


#: what the failing example printed: "schedule: Schedule.from_string('fs-;fa-;fs-;fa-;fs-;fa:crash-after;...')"
PRINTED = "fs-;fa-;fs-;fa-;fs-;fa:crash-after;fa-;fs-"


def test_the_shrunk_schedule_replays_exactly() -> None:
    with pytest.raises(AssertionError, match="room-7"):
        check_trip(book_trip, Schedule.from_string(PRINTED))
    check_trip(book_trip_fixed, Schedule.from_string(PRINTED))


@FUZZ
@given(schedule=schedules(faults=FAULTS))
def test_the_fixed_saga_survives_every_schedule(schedule: Schedule) -> None:
    check_trip(book_trip_fixed, schedule)


def test_without_faults_the_bug_hides() -> None:
    check_trip(book_trip, Schedule())


def test_explore_finds_it_too_with_thousands_of_schedules() -> None:
    # no hypothesis: seeded random schedules at the speed of the runs, the failure shrunk all the same
    with pytest.raises(ScheduleFailure, match="crash-after at activity release_hotel"):
        explore(lambda schedule: check_trip(book_trip, schedule), faults=FAULTS, runs=2_000)
    explore(lambda schedule: check_trip(book_trip_fixed, schedule), faults=FAULTS, runs=500)

