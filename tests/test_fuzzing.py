"""Schedule fuzzing: the scheduler seam, each fault, and hypothesis finding and shrinking seeded bugs."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wftest import (
    ActivityFails,
    ActivityTimesOut,
    CrashAfterActivity,
    CrashDuringStep,
    DuplicateEvent,
    Engine,
    FifoScheduler,
    OrchestrationContext,
    OrchestrationStalledError,
    ScheduleWarning,
    Task,
    TaskFailedError,
    WorkflowTester,
    explore,
    when_any,
)
from wftest.strategies import Schedule, ScheduledEvent, external_events, schedules

Gen = Generator[Task[Any], Any, Any]
FUZZ = settings(max_examples=100, database=None, derandomize=True, deadline=None)

ledger: list[str] = []


def fast(ctx: Any, _: Any) -> str:
    return "fast"


def slow(ctx: Any, _: Any) -> str:
    return "slow"


def charge(ctx: Any, amount: int) -> str:
    ledger.append(f"charge {amount}")
    return "ok"


def race(ctx: OrchestrationContext, _: Any) -> Gen:
    first, second = ctx.call_activity(fast), ctx.call_activity(slow)
    winner = yield when_any([first, second])
    return winner.get_result()


def checkout(ctx: OrchestrationContext, amount: int) -> Gen:
    yield ctx.call_activity(charge, input=amount)
    return "paid"


def deadline(ctx: OrchestrationContext, _: Any) -> Gen:
    approval = ctx.wait_for_external_event("approve")
    winner = yield when_any([approval, ctx.create_timer(timedelta(hours=1))])
    return "approved" if winner is approval else "timed out"


def waits_after_slow(ctx: OrchestrationContext, _: Any) -> Gen:
    first, second = ctx.call_activity(fast), ctx.call_activity(slow)
    if (yield when_any([first, second])) is second:
        yield ctx.wait_for_external_event("never")  # BUG: waits forever when slow finishes first
    return "done"


def two_approvals(ctx: OrchestrationContext, _: Any) -> Gen:
    for _ in range(2):
        yield ctx.wait_for_external_event("approve")
    return ctx.current_utc_datetime.isoformat()


cache = {"warm": 0}


def reads_process_state(ctx: OrchestrationContext, _: Any) -> Gen:
    # BUG: orchestrator code that depends on process memory; it replays differently once the warm
    # executor is lost, which happens only after a crash mid-step
    cache["warm"] += 1
    yield ctx.call_activity(fast if cache["warm"] == 1 else slow)
    return "done"


def order_check(schedule: Schedule) -> None:
    """Seeded bug: the output depends on which activity finishes first."""
    assert WorkflowTester().run(race, schedule=schedule).output == "fast"


def charge_once_check(schedule: Schedule) -> None:
    """Seeded bug: a crash after ``charge`` runs it again (the ledger sees two charges)."""
    ledger.clear()
    WorkflowTester().run(checkout, 5, schedule=schedule)
    assert ledger == ["charge 5"]


def two_events_check(schedule: Schedule) -> None:
    """Seeded bug: a duplicated first event stands in for the second (the approval ends an hour early)."""
    tester = WorkflowTester()
    tester.at(timedelta(hours=1), lambda t: t.raise_event("approve"))
    tester.at(timedelta(hours=2), lambda t: t.raise_event("approve"))
    assert tester.run(two_approvals, schedule=schedule).output == "2024-01-01T02:00:00"


def approval_at_the_deadline_check(schedule: Schedule) -> None:
    """Seeded bug: an approval that arrives at the very moment of the deadline is taken to lose to the timer
    (by default it does: the timer was created first), but it may reach the step first and win."""
    tester = WorkflowTester()
    tester.at(timedelta(hours=1), lambda t: t.raise_event("approve"))
    assert tester.run(deadline, schedule=schedule).output == "timed out"


def completes_after_crash_check(schedule: Schedule) -> None:
    """Seeded bug: code reading process memory replays differently once a crash loses the warm executor
    (the replay check, net 2, would catch it by itself: it is off to show what a crash in production does)."""
    cache["warm"] = 0
    result = WorkflowTester(replay_check=False).run(reads_process_state, schedule=schedule)
    assert result.status == "COMPLETED", result.failure_details


def minimal_failure(test: Callable[[Schedule], None], strategy: Any) -> Schedule:
    """Run a hypothesis search; return the (shrunk) schedule of the failing example it reports."""
    seen: list[Schedule] = []

    @FUZZ
    @given(schedule=strategy)
    def search(schedule: Schedule) -> None:
        seen.append(schedule)
        test(schedule)

    with pytest.raises(BaseException):  # noqa: B017 - the seeded bug, whatever form it takes
        search()
    return seen[-1]  # hypothesis replays the minimal failing example last


def test_default_scheduler_gives_byte_identical_histories() -> None:
    def run(scheduler: Any) -> list[bytes]:
        engine = Engine(scheduler=scheduler)
        iid = engine.client.schedule_new_orchestration(race, instance_id="r")
        engine.client.wait_for_orchestration_completion(iid)
        return [e.SerializeToString() for e in engine.history(iid)]

    assert run(None) == run(None) == run(FifoScheduler()) == run(Schedule())


def test_schedule_from_string_replays_a_choice() -> None:
    schedule = Schedule.from_string("c1")
    assert WorkflowTester().run(race, schedule=schedule).output == "slow"
    assert "c1" in schedule.to_string()
    assert "ran activity slow#2" in schedule.timeline()


def test_injected_activity_failure_and_timeout() -> None:
    def guarded(ctx: OrchestrationContext, _: Any) -> Gen:
        try:
            yield ctx.call_activity(fast)
        except TaskFailedError as err:
            return err.details.error_type
        return "no failure"

    reset = ActivityFails(ConnectionError("reset"))
    failing = Schedule.from_string("fa:fail(ConnectionError('reset'))", faults=[reset])
    assert WorkflowTester().run(guarded, schedule=failing).output == "builtins.ConnectionError"
    timing_out = Schedule.from_string("fa:timeout", faults=[ActivityTimesOut()])
    assert WorkflowTester().run(guarded, schedule=timing_out).output == "builtins.TimeoutError"


def test_crash_after_activity_runs_it_again_but_records_one_result() -> None:
    ledger.clear()
    schedule = Schedule.from_string("fa:crash-after", faults=[CrashAfterActivity()])
    result = WorkflowTester().run(checkout, 5, schedule=schedule)
    assert ledger == ["charge 5", "charge 5"]
    assert sum(e.HasField("taskCompleted") for e in result.history) == 1


def test_crash_during_step_retries_the_step_from_history() -> None:
    schedule = Schedule.from_string("fs:crash-step", faults=[CrashDuringStep()])
    result = WorkflowTester().run(checkout, 5, schedule=schedule)
    assert result.status == "COMPLETED"
    assert sum(e.HasField("executionStarted") for e in result.history) == 1


def test_duplicate_event_is_delivered_twice() -> None:
    tester = WorkflowTester()
    tester.at(timedelta(hours=1), lambda t: t.raise_event("approve"))
    result = tester.run(two_approvals, schedule=Schedule.from_string("fe:duplicate", faults=[DuplicateEvent()]))
    assert result.output == "2024-01-01T01:00:00"  # both approvals came from the one event


def test_fuzzer_finds_an_order_dependent_bug_and_shrinks_it() -> None:
    found = minimal_failure(order_check, schedules())
    assert found.to_string() == "c1;c0"
    assert "ran activity slow#2 of test-instance ahead of activity fast#1" in found.timeline()


def test_fuzzer_finds_a_double_charge_after_a_crash_and_shrinks_to_one_fault() -> None:
    found = minimal_failure(charge_once_check,
                            schedules(faults=[CrashAfterActivity(), CrashDuringStep(), DuplicateEvent()]))
    assert found.to_string() == "fs-;fa:crash-after;fa-;fs-"  # one crash, right after the charge
    assert found.timeline() == "  2. crash-after at activity charge#1 of test-instance"


def test_fuzzer_finds_a_duplicate_event_bug() -> None:
    found = minimal_failure(two_events_check, schedules(faults=[DuplicateEvent()]))
    assert found.to_string() == "fe:duplicate"  # the two copies are one name: never swapped


def test_fuzzer_finds_non_determinism_that_only_a_crash_reveals() -> None:
    # without faults the sticky executor never replays, so the bug hides...
    cache["warm"] = 0
    assert WorkflowTester(replay_check=False).run(reads_process_state).status == "COMPLETED"
    # ...a crash mid-step forces a replay from history, and the replay diverges
    found = minimal_failure(completes_after_crash_check, schedules(faults=[CrashDuringStep()]))
    assert found.to_string() == "fs-;fs:crash-step;fs-"  # the second step crashes and is replayed
    cache["warm"] = 0
    result = WorkflowTester(replay_check=False).run(
        reads_process_state, schedule=Schedule.from_string(found.to_string(), faults=[CrashDuringStep()]))
    assert result.failure_details is not None
    assert result.failure_details.error_type == "wftest.errors.NonDeterminismError"


def test_timers_and_events_due_together_reach_the_step_in_a_chosen_order() -> None:
    approval_at_the_deadline_check(Schedule())  # the default: the timer and then the approval
    found = minimal_failure(approval_at_the_deadline_check, schedules())
    assert found.to_string() == "c1"
    assert found.timeline() == "  1. delivered event 'approve' to test-instance ahead of timer #1 to test-instance"


def two_of_a_name(ctx: OrchestrationContext, _: Any) -> Gen:
    first = yield ctx.wait_for_external_event("x")
    second = yield ctx.wait_for_external_event("X")  # names match case-insensitively
    return [first, second]


def raise_one_two_and_a_timer(ctx: OrchestrationContext, _: Any) -> Gen:
    first = yield ctx.wait_for_external_event("x")
    other = ctx.wait_for_external_event("y")
    timer = ctx.create_timer(timedelta(minutes=1))
    winner = yield when_any([other, timer])
    second = yield ctx.wait_for_external_event("x")
    return [first, "y" if winner is other else "timer", second]


def raise_x_twice_and_y(tester: WorkflowTester) -> None:
    tester.raise_event("x", 1)
    tester.raise_event("y")
    tester.raise_event("x", 2)


def test_events_of_one_name_keep_their_order_in_every_schedule() -> None:
    def check(schedule: Schedule) -> None:
        tester = WorkflowTester()
        tester.at(timedelta(minutes=5), lambda t: (t.raise_event("x", 1), t.raise_event("x", 2)))
        assert tester.run(two_of_a_name, schedule=schedule).output == [1, 2]

    assert explore(check, runs=200, seed=1).runs == 200  # no schedule swaps them
    # ...while another name may go ahead of them: x1, y, x2 can reach the step as y, x1, x2
    outputs = set()
    for text in ["", "c1", "c0;c1"]:
        tester = WorkflowTester()
        tester.at(timedelta(minutes=1), raise_x_twice_and_y)
        outputs.add(repr(tester.run(raise_one_two_and_a_timer, schedule=Schedule.from_string(text)).output))
    assert outputs == {"[1, 'y', 2]"}  # all three arrive together, y before the one-minute timer
    schedule = Schedule.from_string("c1")
    tester = WorkflowTester()
    tester.at(timedelta(minutes=1), raise_x_twice_and_y)
    tester.run(raise_one_two_and_a_timer, schedule=schedule)
    assert "delivered event 'y' to test-instance ahead of event 'x' to test-instance" in schedule.timeline()


@pytest.mark.parametrize("stop", ["terminate", "suspend"])
def test_nothing_is_delivered_across_a_termination_or_a_suspension(stop: str) -> None:
    def gate(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.wait_for_external_event("go")
        return "went"

    def stop_between(tester: WorkflowTester) -> None:
        tester.raise_event("noise")
        getattr(tester, stop)()
        tester.raise_event("go")  # after the stop: it must not reach the orchestration ahead of it

    def check(schedule: Schedule) -> None:
        tester = WorkflowTester()
        tester.at(timedelta(minutes=1), stop_between)
        tester.start(gate, schedule=schedule)
        result = tester.run_until(timedelta(hours=1))
        assert result.status == ("TERMINATED" if stop == "terminate" else "SUSPENDED")

    assert explore(check, runs=100, seed=1).runs == 100


def test_a_failure_that_stalls_the_run_still_shows_its_schedule() -> None:
    @FUZZ
    @given(schedule=schedules())
    def search(schedule: Schedule) -> None:
        WorkflowTester().run(waits_after_slow, schedule=schedule)

    with pytest.raises(OrchestrationStalledError) as info:
        search()
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "schedule: Schedule.from_string('c1;c0')" in notes
    assert "ran activity slow#2 of test-instance ahead of activity fast#1" in notes


# -- replaying a printed schedule ------------------------------------------------------------------------


def test_a_printed_schedule_replays_with_fewer_fault_kinds() -> None:
    # printed by schedules(faults=[CrashAfterActivity(), CrashDuringStep(), ...]); the fs- points are skipped
    ledger.clear()
    schedule = Schedule.from_string("fs-;fa:crash-after;fa-;fs-", faults=[CrashAfterActivity()])
    WorkflowTester().run(checkout, 5, schedule=schedule)
    assert ledger == ["charge 5", "charge 5"]
    assert schedule.unused == []


def test_a_custom_failure_is_printed_with_its_faults_and_replays_as_itself() -> None:
    reset = ActivityFails(ConnectionError("reset"))

    def guarded(ctx: OrchestrationContext, _: Any) -> Gen:
        try:
            yield ctx.call_activity(fast)
        except TaskFailedError as err:
            return err.details.error_type
        return "no failure"

    @FUZZ
    @given(schedule=schedules(faults=[reset, CrashDuringStep()]))
    def search(schedule: Schedule) -> None:
        assert WorkflowTester().run(guarded, schedule=schedule).output == "no failure"

    with pytest.raises(AssertionError) as info:
        search()
    printed = next(n for n in info.value.__notes__ if n.startswith("schedule: "))
    code = printed.splitlines()[0].removeprefix("schedule: ")
    assert code == ("Schedule.from_string(\"fs-;fa:fail(ConnectionError('reset'));fs-\", "
                    "faults=[ActivityFails(error=ConnectionError('reset')), CrashDuringStep()])")
    replay = eval(code, {"Schedule": Schedule, "ActivityFails": ActivityFails, "CrashDuringStep": CrashDuringStep})
    assert WorkflowTester().run(guarded, schedule=replay).output == "builtins.ConnectionError"


@pytest.mark.parametrize(("text", "problem"), [
    ("fa:crash-afer", r"decision #1 'fa:crash-afer' names a fault this schedule does not have \(its faults: "),
    ("c0;x1", r"decision #2 'x1' is not a decision: expected c<i>"),
    ("cx", "'cx' is not a decision"),
    ("c-1", "'c-1' is not a decision"),
    ("fs:crash-after", r"crash-after strikes at a\(n\) activity, not at a\(n\) step \(write fa:crash-after\)"),
])
def test_a_mistyped_schedule_is_refused_with_the_decision(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Schedule.from_string(text)


def test_a_fault_missing_from_faults_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'fa:timeout' names a fault .* \(its faults: crash-after\)"):
        Schedule.from_string("fa:timeout", faults=[CrashAfterActivity()])
    with pytest.raises(ValueError, match="fail\\(ConnectionError\\('reset'\\)\\)"):
        Schedule.from_string("fa:fail(ConnectionError('reset'))")  # printed with faults=[...]: pass them


def test_a_schedule_that_does_not_fit_the_run_warns_with_what_was_left() -> None:
    schedule = Schedule.from_string("fe:duplicate;c1")  # another workflow's: race has no event
    with pytest.warns(ScheduleWarning, match=r"^Schedule.from_string\('fe:duplicate;c1'\): 2 of its 2 decisions "
                                             r"were not used, from #1 'fe:duplicate' on"):
        assert WorkflowTester().run(race, schedule=schedule).output == "fast"
    assert schedule.unused == ["fe:duplicate", "c1"]


def test_schedule_reprs() -> None:
    assert repr(Schedule()) == "Schedule()"
    assert repr(Schedule.from_string("c1;fa-")) == "Schedule.from_string('c1;fa-')"
    assert repr(Schedule.from_string(" c1 ;fa- |c0")) == "Schedule.from_string('c1;fa- | c0')"


def test_a_run_that_took_no_decisions_notes_the_default_schedule() -> None:
    def plain(ctx: OrchestrationContext, _: Any) -> str:
        return "done"

    @FUZZ
    @given(schedule=schedules())
    def search(schedule: Schedule) -> None:
        WorkflowTester().run(plain, schedule=schedule)
        raise AssertionError("the invariant")

    with pytest.raises(AssertionError) as info:
        search()
    assert "schedule: Schedule()\n(the default order, no faults)" in info.value.__notes__


# -- a check that runs several workflows with one schedule ------------------------------------------------


def race_then_checkout_check(schedule: Schedule) -> None:
    """Seeded bug in the first of two runs that share the schedule: the order of the race's results."""
    first = WorkflowTester().run(race, schedule=schedule).output
    ledger.clear()
    WorkflowTester().run(checkout, 5, schedule=schedule)
    assert first == "fast"


def test_a_check_running_two_workflows_prints_one_part_per_run_and_replays_them() -> None:
    @FUZZ
    @given(schedule=schedules(faults=[CrashAfterActivity()]))
    def search(schedule: Schedule) -> None:
        race_then_checkout_check(schedule)

    with pytest.raises(AssertionError) as info:
        search()
    last = [n for n in info.value.__notes__ if n.startswith("schedule: ")][-1]  # each run notes the runs so far
    code, timeline = last.removeprefix("schedule: ").split("\n", 1)
    assert code == "Schedule.from_string('c1;fa-;c0;fa- | fa-')"
    assert timeline == ("run 1:\n  1. ran activity slow#2 of test-instance ahead of activity fast#1 of "
                        "test-instance\nrun 2:\n  (the default order, no faults)")
    replay = eval(code, {"Schedule": Schedule})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # run 2 replays its own part: nothing is left over
        with pytest.raises(AssertionError):
            race_then_checkout_check(replay)
    assert replay.to_string() == "fs-;c1;fa-;c0;fa-;fs- | fs-;fa-;fs-"  # it may inject every standard fault


def test_explore_reports_one_part_per_run() -> None:
    from wftest import ScheduleFailure

    with pytest.raises(ScheduleFailure) as info:
        explore(race_then_checkout_check, runs=100, seed=1)
    assert info.value.schedule.script == ["c1", "|"]  # the defaults at the ends left out; run 2's part empty
    assert "schedule: Schedule.from_string('c1 |')\nrun 1:\n  1. ran activity slow#2" in str(info.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AssertionError):
            race_then_checkout_check(info.value.schedule)


def test_explore_drops_a_runs_needless_decisions_without_moving_the_next_runs() -> None:
    from wftest import ScheduleFailure

    def check(schedule: Schedule) -> None:
        """Seeded bug: the slow order in run 1 and a repeated charge in run 3 (run 2 does not matter)."""
        first = WorkflowTester().run(race, schedule=schedule).output
        WorkflowTester().run(race, schedule=schedule)
        ledger.clear()
        WorkflowTester().run(checkout, 5, schedule=schedule)
        assert not (first == "slow" and len(ledger) > 1)

    with pytest.raises(ScheduleFailure) as info:
        explore(check, faults=[CrashAfterActivity()], runs=2000, seed=0)
    assert info.value.schedule.script == ["c1", "|", "|", "fa:crash-after"]
    assert "schedule: Schedule.from_string('c1 | | fa:crash-after')" in str(info.value)


def test_run_n_replays_part_n_and_a_script_of_one_part_replays_in_every_run() -> None:
    two_parts = Schedule.from_string("c1 | c0")
    outputs = [WorkflowTester().run(race, schedule=two_parts).output for _ in range(2)]
    with pytest.warns(ScheduleWarning, match="run 3 started"):
        outputs.append(WorkflowTester().run(race, schedule=two_parts).output)
    assert outputs == ["slow", "fast", "fast"]  # a third run is past the parts: the defaults
    one_part = Schedule.from_string("c1")
    assert [WorkflowTester().run(race, schedule=one_part).output for _ in range(3)] == ["slow"] * 3
    assert one_part.to_string() == " | ".join(["fs-;c1;fa-;c0;fa-;fs-"] * 3)
    one_part.reset()
    assert one_part.to_string() == "" and repr(one_part) == "Schedule.from_string('c1')"


def test_a_schedule_replayed_twice_or_by_interleaved_testers_warns() -> None:
    schedule = Schedule.from_string("c0 | c1")
    assert [WorkflowTester().run(race, schedule=schedule).output for _ in range(2)] == ["fast", "slow"]
    with pytest.warns(ScheduleWarning, match=r"run 3 started, but the schedule has 2 parts, .* make a new one") as got:
        WorkflowTester().run(race, schedule=schedule)
    assert got[0].filename == __file__  # points at the test's own line
    first, second = WorkflowTester(), WorkflowTester()
    schedule = Schedule.from_string("c1 | c0")
    first.start(race, schedule=schedule)
    with pytest.warns(ScheduleWarning, match=r"run 2 started before run 1 had used 1 of its decisions \(from #1 'c1' "
                                             r"on\): .* \(testers run interleaved\?\)"):
        second.start(race, schedule=schedule)


def test_a_fault_of_your_own_named_like_a_standard_one_prints_its_faults() -> None:
    @dataclass(frozen=True)
    class MyCrash(CrashAfterActivity):
        pass

    schedule = Schedule.from_string("fa:crash-after", faults=[MyCrash()])
    assert repr(schedule).endswith(", faults=[test_a_fault_of_your_own_named_like_a_standard_one_prints_its_faults."
                                   "<locals>.MyCrash()])")
    custom = ActivityFails(ConnectionError("reset"))
    assert repr(Schedule.from_string("fa:fail", faults=[custom])) == (
        "Schedule.from_string('fa:fail', faults=[ActivityFails(error=ConnectionError('reset'))])")
    assert repr(Schedule.from_string("fa:fail;fa:crash-after")) == "Schedule.from_string('fa:fail;fa:crash-after')"


def test_max_faults_counts_the_faults_of_every_run_of_an_example() -> None:
    def check(schedule: Schedule) -> None:
        ledger.clear()
        WorkflowTester().run(checkout, 1, schedule=schedule)
        WorkflowTester().run(checkout, 2, schedule=schedule)
        assert len(ledger) <= 3, ledger  # two charges and at most one crash's repeat

    assert explore(check, faults=[CrashAfterActivity()], max_faults=1, runs=100, seed=1).runs == 100


@pytest.mark.parametrize("message", ["host=db; port=5432", "a | b", "x;fa-", "line1\nline2"])
def test_a_failure_whose_message_holds_separators_replays_from_its_printed_schedule(message: str) -> None:
    failure = ActivityFails(ValueError(message))

    def guarded(ctx: OrchestrationContext, _: Any) -> Gen:
        try:
            yield ctx.call_activity(fast)
            yield ctx.call_activity(slow)
        except TaskFailedError:
            return "failed"
        return "ok"

    schedule = Schedule([f"fa:{failure.describe()}"], faults=[failure])
    assert WorkflowTester().run(guarded, schedule=schedule).output == "failed"
    printed = schedule.to_string()
    replay = Schedule.from_string(printed, faults=[failure])
    assert replay.script == [f"fa:{failure.describe()}"]
    assert WorkflowTester().run(guarded, schedule=replay).output == "failed"
    assert replay.to_string() == printed


def test_misused_arguments_say_what_is_expected() -> None:
    with pytest.raises(TypeError, match=r"schedule= takes a wftest Schedule .* got 'c1'"):
        WorkflowTester().run(race, schedule="c1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"got <wftest.engine._scheduler.FifoScheduler .*Engine\(scheduler=...\)"):
        WorkflowTester().run(race, schedule=FifoScheduler())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"schedules\(\): faults= takes fault instances, .* write "
                                        r"CrashAfterActivity\(\), not CrashAfterActivity"):
        schedules(faults=[CrashAfterActivity])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"explore\(\): faults= takes fault instances, got 'crash-after'"):
        explore(order_check, faults=["crash-after"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"schedules\(\): faults= takes a list of faults, got CrashAfterActivity\(\): "
                                        r"write faults=\[CrashAfterActivity\(\)\]"):
        schedules(faults=CrashAfterActivity())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Schedule\(\) takes a list of decisions, got the string 'c1;fa-': "
                                        r"write Schedule.from_string\('c1;fa-'\)"):
        Schedule("c1;fa-")


@FUZZ
@given(events=external_events("approve", st.integers(0, 9), min_size=2, max_size=4))
def test_external_events_strategy_drives_arrivals(events: list[ScheduledEvent]) -> None:
    tester = WorkflowTester()
    tester.raise_events(events)
    result = tester.run(two_approvals)
    second = sorted(e.at for e in events)[1]
    assert result.finished_at == tester.start_time + second


def test_event_delays_postpone_scheduled_events() -> None:
    tester = WorkflowTester()
    tester.at(timedelta(hours=1), lambda t: t.raise_event("approve"))
    tester.at(timedelta(hours=2), lambda t: t.raise_event("approve"))
    schedule = Schedule.from_string("d0;d5400")
    assert tester.run(two_approvals, schedule=schedule).output == "2024-01-01T03:30:00"


def test_max_faults_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="max_faults"):
        schedules(max_faults=-1)
