"""Fast schedule exploration: thousands of random schedules a second, and a shrunk failure.

Hypothesis (``wftest.strategies.schedules``) is the most thorough way to fuzz schedules, and it combines with
every other strategy; but each hypothesis example costs about a millisecond of its own, whatever the test
does. :func:`explore` draws schedules from a seeded random generator instead, at the speed of the runs
themselves, and when a run fails it shrinks the failing schedule the way hypothesis would (fewer faults,
earlier choices, the default order wherever it still fails) and raises :class:`ScheduleFailure` with the
smallest one, printed as a timeline and as ``Schedule.from_string('...')`` to replay it exactly::

    from wftest import CrashAfterActivity, WorkflowTester, explore

    def rooms_are_released_once(schedule):
        hotel = Hotel()
        tester = WorkflowTester()
        tester.add_activity(hotel.book_hotel)
        tester.add_activity(hotel.release_hotel)
        tester.run(book_trip, {"id": 7}, schedule=schedule)
        assert sorted(hotel.released) == sorted(set(hotel.booked))

    def test_rooms_are_released_once():
        explore(rooms_are_released_once, faults=[CrashAfterActivity()], runs=2_000)

Every run is a normal tester run: replay-checked and strict, as the tester is configured.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from wftest._schedules import DrawnSchedule, Schedule, checked_faults, scripted
from wftest.engine._scheduler import Fault

__all__ = ["Exploration", "ScheduleFailure", "explore"]

#: Per-run probabilities of taking the default (FIFO order, no fault) at a choice point. Varying it between
#: runs ("swarm testing") finds both bugs that need many reorderings and bugs that need one rare fault.
_DEFAULT_BIASES = (0.0, 0.5, 0.8, 0.95)


@dataclass(frozen=True)
class Exploration:
    """What :func:`explore` did when every run passed."""

    runs: int
    #: how many of the runs took a different sequence of decisions
    distinct: int
    seconds: float
    seed: int

    def __str__(self) -> str:
        rate = self.runs / self.seconds if self.seconds > 0 else float("inf")
        return (f"{self.runs} schedules ({self.distinct} distinct) passed in {self.seconds:.2f} s "
                f"({rate:.0f}/s, seed {self.seed})")


class ScheduleFailure(AssertionError):
    """A schedule found by :func:`explore` fails the check; ``schedule`` replays it exactly.

    The check's own error (from the shrunk schedule's run) is ``error``, and also ``__cause__``, so pytest
    shows its traceback.
    """

    def __init__(self, message: str, *, schedule: Schedule, error: BaseException, run: int, seed: int,
                 shrinks: int) -> None:
        super().__init__(message)
        self.schedule = schedule
        self.error = error
        self.run = run
        self.seed = seed
        self.shrinks = shrinks


def explore(
    check: Callable[[Schedule], object],
    *,
    faults: Sequence[Fault] = (),
    max_faults: int = 2,
    event_delays: timedelta | None = None,
    runs: int = 1_000,
    seed: int | None = 0,
    max_shrinks: int = 1_000,
    workers: int | None = 1,
) -> Exploration:
    """Call ``check(schedule)`` with ``runs`` random schedules; shrink and raise the first that fails.

    Args:
        check: runs the workflow with ``tester.run(..., schedule=schedule)`` and asserts its invariants.
            A run fails when ``check`` raises an ``Exception``. Like a hypothesis test, it must build its
            own tester and fakes on every call, so that a schedule gives the same outcome every time.
        faults, max_faults, event_delays: as for ``wftest.strategies.schedules``.
        runs: how many schedules to try.
        seed: the random seed; the default, 0, explores the same schedules on every run of the test, as
            hypothesis's ``derandomize=True`` does. ``None`` picks a fresh seed (printed on failure).
        max_shrinks: at most this many runs spent shrinking a failure.
        workers: processes sharing the runs (``None``: one per CPU). Schedule ``n`` is the same whatever
            the number of workers, and so is the failure reported: the first failing schedule, shrunk in
            this process. Workers are forked, so they need ``os.fork`` and a process with no other thread
            running; otherwise the runs stay in this process.

    Returns:
        An :class:`Exploration` (runs, distinct schedules, seconds, seed).

    Raises:
        ScheduleFailure: a schedule failed; the message shows the smallest failing schedule found, its
            timeline and the check's error.

    Example::

        explore(check_saga, faults=[CrashAfterActivity(), CrashDuringStep()], runs=5_000, workers=None)
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    if max_faults < 0:
        raise ValueError(f"max_faults must be >= 0, got {max_faults}")
    if max_shrinks < 0:
        raise ValueError(f"max_shrinks must be >= 0, got {max_shrinks}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1 (or None: one per CPU), got {workers}")
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "big")
    plan = _Plan(check, checked_faults(faults, "explore()"), max_faults, event_delays, seed)
    workers = min(workers if workers is not None else (os.cpu_count() or 1), runs)
    started = time.perf_counter()
    if workers > 1 and _can_fork(workers):
        distinct, failure = _explore_forked(plan, runs, workers)
        error = None
    else:
        distinct, failure, error = _explore_here(plan, range(runs), None)
    if failure is None:
        return Exploration(runs, len(distinct), time.perf_counter() - started, seed)
    index, choices = failure
    if error is None:  # found by a worker: fail it here, where the shrinking runs
        schedule, _, error = plan.replay(choices)
        if error is None:
            raise AssertionError(
                f"schedule {index + 1} of {runs} (seed {seed}) failed the check in a worker process but passed "
                f"when run again here: the check does not depend on the schedule alone (state shared between "
                f"calls?). Its decisions: {schedule!r}"
            )
    shrinker = _Shrinker(plan, _origin(error), max_shrinks)
    shrunk, shrunk_error = shrinker.shrink(choices, error)
    failure_report = plan.failure(shrunk, shrunk_error, index + 1, runs, shrinker.attempts)
    raise failure_report from failure_report.error


class _Plan:
    """What every run of one exploration shares: the check and how schedules are made."""

    def __init__(self, check: Callable[[Schedule], object], faults: list[Fault], max_faults: int,
                 event_delays: timedelta | None, seed: int) -> None:
        self.check = check
        self.faults = faults
        self.max_faults = max_faults
        self.event_delays = event_delays
        self.seed = seed

    def schedule(self, source: Callable[[int], int]) -> DrawnSchedule:
        return DrawnSchedule(source, self.faults, self.max_faults, self.event_delays)

    def random_source(self, index: int) -> _RandomChoices:
        """The source of schedule ``index``: its own generator, so any worker can run any schedule."""
        rng = random.Random(self.seed * 1_000_003 + index)
        return _RandomChoices(rng, rng.choice(_DEFAULT_BIASES))

    def replay(self, choices: Sequence[int]) -> tuple[DrawnSchedule, list[int], BaseException | None]:
        """Run the check on the schedule that replays ``choices``: the schedule (with its decisions), the
        choices it actually took, and the check's error (None if it passed)."""
        source = _RecordedChoices(choices)
        schedule = self.schedule(source)
        try:
            self.check(schedule)
        except Exception as error:
            return schedule, source.choices, error
        return schedule, source.choices, None

    def failure(self, choices: tuple[int, ...], error: BaseException, number: int, runs: int,
                shrinks: int) -> ScheduleFailure:
        """The report: rerun the shrunk choices to take their decisions down as a replayable schedule."""
        schedule, _, rerun_error = self.replay(choices)
        error = rerun_error or error
        parts = schedule.tokens_by_run()
        for tokens in parts:
            while tokens and _is_default(tokens[-1]):
                tokens.pop()  # past the end of its script a schedule takes the defaults anyway
        replay = Schedule(scripted(parts), faults=self.faults)
        summary = f"{type(error).__name__}: {error}".strip()
        message = (
            f"schedule {number} of {runs} (seed {self.seed}) fails the check; shrunk in {shrinks} runs to\n"
            f"schedule: {replay!r}\n{schedule.timeline()}\n{summary}"
        )
        return ScheduleFailure(message, schedule=replay, error=error, run=number, seed=self.seed, shrinks=shrinks)


_Failure = tuple[int, list[int]]  # (schedule index, its choices)


def _explore_here(plan: _Plan, indices: range, lowest_failure: Any
                  ) -> tuple[set[tuple[int, ...]], _Failure | None, BaseException | None]:
    """Run the schedules ``indices`` in this process, up to the first failure (or one found before ours)."""
    seen: set[tuple[int, ...]] = set()
    check, schedule = plan.check, plan.schedule
    for index in indices:
        if lowest_failure is not None and index > lowest_failure.value:
            break  # another worker failed an earlier schedule: ours cannot be the first
        source = plan.random_source(index)
        try:
            check(schedule(source))
        except Exception as error:
            return seen, (index, source.choices), error
        seen.add(tuple(source.choices))
    return seen, None, None


def _can_fork(workers: int) -> bool:
    """Whether forked workers are safe here; if not, say why (the runs then stay in this process)."""
    if not hasattr(os, "fork"):
        reason = "this platform has no os.fork"
    elif threading.active_count() > 1:
        # a forked child gets only the forking thread: a lock another thread held stays locked forever
        others = ", ".join(t.name for t in threading.enumerate() if t is not threading.current_thread())
        reason = f"other threads are running ({others}), and a forked worker could deadlock on their locks"
    else:
        return True
    warnings.warn(f"explore(workers={workers}): {reason}; the runs stay in this process", RuntimeWarning,
                  stacklevel=3)
    return False


def _explore_forked(plan: _Plan, runs: int, workers: int) -> tuple[set[tuple[int, ...]], _Failure | None]:
    """Share the runs between ``workers`` forked processes; merge what they saw and their first failures."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    lowest = context.Value("q", runs, lock=False)  # the lowest failing index found so far, shared
    children = []
    for worker in range(workers):
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(target=_worker, args=(plan, range(worker, runs, workers), lowest, writer),
                                  daemon=True)
        process.start()
        writer.close()
        children.append((process, reader))
    seen: set[tuple[int, ...]] = set()
    failures: list[_Failure] = []
    for process, reader in children:
        try:
            worker_seen, failure, crash = reader.recv()
        except EOFError:
            worker_seen, failure, crash = set(), None, f"exit code {process.exitcode}"
        process.join()
        if crash is not None:
            raise RuntimeError(f"an exploration worker process died: {crash}")
        seen |= worker_seen
        if failure is not None:
            failures.append(failure)
    return seen, min(failures, default=None)


def _worker(plan: _Plan, indices: range, lowest: Any, connection: Any) -> None:
    """A forked worker: run its share, publish its first failure, send back what it saw."""
    try:
        seen, failure, _ = _explore_here(plan, indices, lowest)
        if failure is not None and failure[0] < lowest.value:
            lowest.value = failure[0]  # a benign race: a later failure may overwrite, only wasting runs
        connection.send((seen, failure, None))
    except BaseException as error:
        connection.send((set(), None, f"{type(error).__name__}: {error}"))
    finally:
        connection.close()


#: in a choice sequence, where the next run of the check begins (a check may run several workflows with one
#: schedule): shrinking can then drop a run's decisions without moving those of the runs after it
_NEXT_RUN = -1


class _RandomChoices:
    """``index(count)`` from a random generator: the default (0) with probability ``bias``, else uniform."""

    def __init__(self, rng: random.Random, bias: float) -> None:
        self._random = rng.random
        self._below = rng.randrange
        self._bias = bias
        self.choices: list[int] = []

    def __call__(self, count: int) -> int:
        value = 0 if count <= 1 or self._random() < self._bias else self._below(count)
        self.choices.append(value)
        return value

    def begin_run(self) -> None:
        self.choices.append(_NEXT_RUN)


class _RecordedChoices:
    """``index(count)`` replaying ``choices`` (clamped to ``count``) run by run, the default (0) past the end
    of a run's choices; records what it returned, with the runs' boundaries."""

    def __init__(self, choices: Sequence[int]) -> None:
        self._script = choices
        self._position = 0
        self.choices: list[int] = []

    def __call__(self, count: int) -> int:
        script, position = self._script, self._position
        if position < len(script) and script[position] != _NEXT_RUN:
            value = min(script[position], count - 1)
            self._position += 1
        else:
            value = 0  # this run's choices are used up
        self.choices.append(value)
        return value

    def begin_run(self) -> None:
        script, position = self._script, self._position
        while position < len(script) and script[position] != _NEXT_RUN:
            position += 1  # what the last run did not use
        self._position = position + 1
        self.choices.append(_NEXT_RUN)


def _is_default(token: str) -> bool:
    return token in ("", "c0", "d0") or token.endswith("-")


def _origin(error: BaseException) -> tuple[type[BaseException], str, int | None]:
    """The kind of failure: its type and where it was raised, as hypothesis tells bugs apart."""
    frames = traceback.extract_tb(error.__traceback__)
    last = frames[-1] if frames else None
    return type(error), last.filename if last else "", last.lineno if last else None


def _trimmed(choices: Sequence[int]) -> tuple[int, ...]:
    """Choices without trailing defaults (and run boundaries): past its end, a source answers 0 anyway."""
    end = len(choices)
    while end and choices[end - 1] <= 0:
        end -= 1
    return tuple(choices[:end])


def _simpler(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Whether ``a`` is simpler than ``b``: fewer non-default decisions, then shorter, then smaller."""
    return (sum(1 for v in a if v > 0), len(a), a) < (sum(1 for v in b if v > 0), len(b), b)


class _Shrinker:
    """Greedy shrinking of a failing choice sequence (each pass keeps any change that still fails the same way)."""

    def __init__(self, plan: _Plan, origin: tuple[type[BaseException], str, int | None], budget: int) -> None:
        self._plan = plan
        self._origin = origin
        self._budget = budget
        self._tried: set[tuple[int, ...]] = set()
        self.attempts = 0

    def shrink(self, choices: Sequence[int], error: BaseException) -> tuple[tuple[int, ...], BaseException]:
        best, best_error = _trimmed(choices), error
        improved = True
        while improved and self.attempts < self._budget:
            improved = False
            for candidate in self._candidates(best):
                if self.attempts >= self._budget:
                    break
                if candidate in self._tried or not _simpler(candidate, best):
                    continue
                self._tried.add(candidate)
                outcome = self._fails(candidate)
                if outcome is not None and _simpler(outcome[0], best):
                    best, best_error = outcome
                    improved = True
                    break  # restart the passes from the new, simpler sequence
        return best, best_error

    def _candidates(self, choices: tuple[int, ...]) -> list[tuple[int, ...]]:
        n = len(choices)
        out: list[tuple[int, ...]] = []
        # the default everywhere after a point (shortest prefixes first)
        out.extend(choices[:k] for k in range(n))
        # every decision of one run back to the default, keeping those of the later runs in place
        boundaries = [-1, *(i for i, v in enumerate(choices) if v == _NEXT_RUN), n]
        out.extend(choices[:start + 1] + choices[end:] for start, end in itertools.pairwise(boundaries)
                   if end - start > 1)
        # one decision back to the default, latest first (late decisions often depend on earlier ones)
        out.extend((*choices[:i], 0, *choices[i + 1:]) for i in reversed(range(n)) if choices[i] > 0)
        # one decision removed: later decisions move one point earlier (a removed fault shifts them)
        out.extend(choices[:i] + choices[i + 1:] for i in range(n) if choices[i] != _NEXT_RUN)
        # one decision made smaller
        for i in range(n):
            for smaller in sorted({choices[i] // 2, choices[i] - 1} - {0, choices[i]}):
                if smaller > 0:
                    out.append((*choices[:i], smaller, *choices[i + 1:]))
        return out

    def _fails(self, choices: tuple[int, ...]) -> tuple[tuple[int, ...], BaseException] | None:
        """The choices the run actually took and its error, if it fails the same way; else None."""
        self.attempts += 1
        _, taken, error = self._plan.replay(choices)
        if error is not None and _origin(error) == self._origin:
            return _trimmed(taken), error
        return None
