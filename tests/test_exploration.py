"""``explore``: random schedules at the speed of the runs, seeded bugs found and shrunk, forked workers."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from wftest import (
    CrashAfterActivity,
    CrashDuringStep,
    DuplicateEvent,
    Exploration,
    Schedule,
    ScheduleFailure,
    WorkflowTester,
    explore,
)

# the seeded-bug workflows of the hypothesis tests, so both searches are held to the same bugs
from test_fuzzing import (  # isort: skip
    charge_once_check,
    checkout,
    completes_after_crash_check,
    ledger,
    order_check,
    race,
    two_events_check,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "examples" / "fuzzing_saga"))
from trip import Hotel, book_trip, book_trip_fixed

ALL = [CrashAfterActivity(), CrashDuringStep(), DuplicateEvent()]
can_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="forked workers need os.fork")


def fault_tokens(schedule: Schedule) -> list[str]:
    return [t for t in schedule.script if t.startswith("f") and not t.endswith("-")]


def failure_of(check: object, **options: object) -> ScheduleFailure:
    with pytest.raises(ScheduleFailure) as caught:
        explore(check, **options)  # type: ignore[arg-type]
    return caught.value


def rooms_released_once(saga: object, schedule: Schedule) -> None:
    hotel = Hotel()
    tester = WorkflowTester()
    for method in (hotel.book_hotel, hotel.release_hotel, hotel.release_hotel_safely):
        tester.add_activity(method)
    result = tester.run(saga, {"id": 7, "to": "Lisbon", "price": 420}, schedule=schedule)  # type: ignore[arg-type]
    assert result.output["status"] == "cancelled"
    assert sorted(hotel.released) == sorted(set(hotel.booked)), (hotel.booked, hotel.released)


# -- seeded bugs: found with the default number of runs, shrunk to the minimal schedule ------------------


def test_finds_an_order_dependent_bug_and_shrinks_it_to_one_choice() -> None:
    failure = failure_of(order_check)
    assert failure.schedule.script == ["c1"]
    assert "ran activity slow#2 of test-instance ahead of activity fast#1" in str(failure)
    assert isinstance(failure.error, AssertionError) and failure.__cause__ is failure.error


def test_finds_a_double_charge_after_a_crash_and_shrinks_to_one_fault() -> None:
    failure = failure_of(charge_once_check, faults=ALL)
    assert fault_tokens(failure.schedule) == ["fa:crash-after"]
    # the first step's fault point comes first (no crash there), then the crash; nothing after it
    assert failure.schedule.script == ["fs-", "fa:crash-after"]


def test_finds_the_sagas_double_release_and_the_fixed_saga_passes() -> None:
    failure = failure_of(lambda s: rooms_released_once(book_trip, s), faults=ALL)
    assert fault_tokens(failure.schedule) == ["fa:crash-after"]
    assert "crash-after at activity release_hotel" in str(failure)
    with pytest.raises(AssertionError, match="room-7"):  # the printed schedule replays the failure exactly
        rooms_released_once(book_trip, failure.schedule)
    rooms_released_once(book_trip_fixed, failure.schedule)
    passed = explore(lambda s: rooms_released_once(book_trip_fixed, s), faults=ALL, runs=300)
    assert passed.runs == 300 and passed.distinct > 10


def test_finds_a_duplicate_event_bug() -> None:
    failure = failure_of(two_events_check, faults=[DuplicateEvent()])
    assert failure.schedule.script == ["fe:duplicate"]


def test_finds_non_determinism_that_only_a_crash_reveals() -> None:
    failure = failure_of(completes_after_crash_check, faults=[CrashDuringStep()])
    assert fault_tokens(failure.schedule) == ["fs:crash-step"]


def test_shrinking_keeps_the_same_failure_not_any_failure() -> None:
    # two bugs: a crash breaks the ledger check (AssertionError); slow-first raises a ValueError elsewhere.
    # The report is about the first failure found, never a simpler schedule that fails differently.
    def check(schedule: Schedule) -> None:
        ledger.clear()
        output = WorkflowTester().run(race, schedule=schedule).output
        if output == "slow":
            raise ValueError("slow won")

    failure = failure_of(check)
    assert isinstance(failure.error, ValueError)


# -- reports, determinism, options -------------------------------------------------------------------


def test_a_passing_exploration_reports_what_it_did() -> None:
    result = explore(lambda s: WorkflowTester().run(race, schedule=s), runs=50, seed=7)
    assert isinstance(result, Exploration)
    assert (result.runs, result.seed) == (50, 7)
    assert 1 < result.distinct <= 50
    assert "50 schedules" in str(result) and "seed 7" in str(result)


def test_the_same_seed_explores_the_same_schedules() -> None:
    seen: list[list[str]] = [[], []]

    def recorder(n: int) -> object:
        def check(schedule: Schedule) -> None:
            WorkflowTester().run(checkout, 5, schedule=schedule)
            seen[n].append(schedule.to_string())
        return check

    explore(recorder(0), faults=ALL, runs=40, seed=3)
    explore(recorder(1), faults=ALL, runs=40, seed=3)
    assert seen[0] == seen[1]
    assert len(set(seen[0])) > 5


def test_a_fresh_seed_is_printed_with_the_failure() -> None:
    failure = failure_of(order_check, seed=None)
    assert f"(seed {failure.seed})" in str(failure)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"runs": 0}, "runs must be >= 1"), ({"max_faults": -1}, "max_faults must be >= 0"),
     ({"workers": 0}, "workers must be >= 1"), ({"max_shrinks": -1}, "max_shrinks must be >= 0")],
)
def test_bad_options_are_refused(options: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        explore(order_check, **options)  # type: ignore[arg-type]


def test_a_check_that_fails_in_the_default_order_reports_the_default_schedule() -> None:
    def always_fails(schedule: Schedule) -> None:
        WorkflowTester().run(race, schedule=schedule)
        raise AssertionError("broken whatever the schedule")

    failure = failure_of(always_fails)
    assert failure.run == 1
    assert "shrunk in 0 runs to\nschedule: Schedule()\n(the default order, no faults)\n" in str(failure)
    assert repr(failure.schedule) == "Schedule()"


def test_max_shrinks_zero_reports_the_schedule_as_found() -> None:
    failure = failure_of(charge_once_check, faults=ALL, max_shrinks=0)
    assert failure.shrinks == 0
    with pytest.raises(AssertionError):
        charge_once_check(failure.schedule)


# -- forked workers ----------------------------------------------------------------------------------------


@can_fork
def test_workers_find_the_same_first_failure_as_one_process() -> None:
    alone = failure_of(lambda s: rooms_released_once(book_trip, s), faults=ALL, workers=1)
    shared = failure_of(lambda s: rooms_released_once(book_trip, s), faults=ALL, workers=2)
    assert (shared.run, shared.schedule.script) == (alone.run, alone.schedule.script)


@can_fork
def test_workers_share_the_runs_and_count_the_same_distinct_schedules() -> None:
    def check(schedule: Schedule) -> None:
        WorkflowTester().run(checkout, 5, schedule=schedule)

    assert explore(check, faults=ALL, runs=60, workers=2).distinct == explore(check, faults=ALL, runs=60).distinct


@can_fork
def test_a_check_that_passes_here_but_failed_in_a_worker_is_reported_as_flaky() -> None:
    parent = os.getpid()

    def check(schedule: Schedule) -> None:
        assert os.getpid() == parent, "state that differs between processes"

    with pytest.raises(AssertionError, match="failed the check in a worker process but passed when run again here"):
        explore(check, runs=4, workers=2)


@can_fork
def test_with_another_thread_running_the_runs_stay_in_this_process() -> None:
    pids: set[int] = set()
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        with pytest.warns(RuntimeWarning, match=r"other threads are running \(Thread-.*\).*stay in this process"):
            explore(lambda s: pids.add(os.getpid()), runs=20, workers=2)
    finally:
        stop.set()
        thread.join()
    assert pids == {os.getpid()}
