"""Fuzzed schedules per second on a 10-activity fan-out (goal, issue 5: >= 1,000/s on this machine).

    python benchmarks/bench_fuzzing.py [--examples N] [--workers N] [--rounds N]

Each schedule orders the 10 activity results and the steps, with up to two injected crashes, and is one full
tester run with its replay check and strict mode. Schedules come from hypothesis (``schedules()``) or from
``wftest.fuzzing.explore`` (seeded random schedules, shrunk on failure), in this process or in forked
workers. Printed: schedules per second with the tester's defaults and with freezing activity time off
(activities here do not read the clock), and, as baselines measured in the same run, plain tester runs
(FIFO, no schedule), and hypothesis alone drawing as many decisions per example as the fuzzed runs did,
with no run at all: the ceiling that hypothesis's own per-example and per-draw costs put on any
hypothesis-driven run. Every row is measured ``--rounds`` times, round by round, and printed as its best
and median rate, with how long a 10M-iteration loop took (these machines are shared: figures of runs on
different days compare only through that).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Generator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wftest import CrashAfterActivity, OrchestrationContext, Task, WorkflowTester, when_all
from wftest.fuzzing import explore
from wftest.strategies import Schedule, _index_drawer, schedules

SETTINGS = dict(database=None, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def square(ctx: Any, n: int) -> int:
    return n * n


def fan_out(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, int]:
    values = yield when_all([ctx.call_activity(square, input=i) for i in range(10)])
    return sum(values)


def fuzz(examples: int, **tester_options: Any) -> tuple[float, float]:
    """Schedules per second over ``examples`` hypothesis examples, and the mean decisions per example."""
    decisions: list[int] = []

    @settings(max_examples=examples, **SETTINGS)  # type: ignore[arg-type]
    @given(schedule=schedules(faults=[CrashAfterActivity()]))
    def run(schedule: Schedule) -> None:
        assert WorkflowTester(**tester_options).run(fan_out, schedule=schedule).output == 285
        decisions.append(len(schedule.decisions))

    started = time.perf_counter()
    run()
    return examples / (time.perf_counter() - started), sum(decisions) / len(decisions)


def explored(runs: int, workers: int, **tester_options: Any) -> float:
    """Schedules per second through ``explore`` (random schedules; ``workers`` processes)."""

    def check(schedule: Schedule) -> None:
        assert WorkflowTester(**tester_options).run(fan_out, schedule=schedule).output == 285

    exploration = explore(check, faults=[CrashAfterActivity()], runs=runs, workers=workers)
    return exploration.runs / exploration.seconds


def hypothesis_alone(examples: int, draws: int) -> float:
    """Examples per second of a test that only draws ``draws`` decisions (no tester run), as schedules draw them."""

    @st.composite
    def decisions(draw: Any) -> list[int]:
        index = _index_drawer(draw)
        return [index(10) for _ in range(draws)]

    @settings(max_examples=examples, **SETTINGS)  # type: ignore[arg-type]
    @given(decisions())
    def run(values: list[int]) -> None:
        assert len(values) == draws

    started = time.perf_counter()
    run()
    return examples / (time.perf_counter() - started)


def plain(runs: int, **tester_options: Any) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        WorkflowTester(**tester_options).run(fan_out)
    return runs / (time.perf_counter() - started)


def loop_seconds() -> float:
    """Seconds for 10 million empty loop iterations: how fast this machine is now (figures of other runs scale)."""
    started = time.perf_counter()
    for _ in range(10_000_000):
        pass
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel explore rows")
    parser.add_argument("--rounds", type=int, default=3,
                        help="measure every row this many times, round by round; print the best and the median")
    args = parser.parse_args()
    n, workers = args.examples, args.workers
    draws: list[float] = []

    def hypothesis_row(**options: Any) -> float:
        rate, mean_draws = fuzz(n, **options)
        draws.append(mean_draws)
        return rate

    rows: list[tuple[str, Callable[[], float]]] = [
        ("plain runs, defaults (baseline)", lambda: plain(n)),
        ("hypothesis, defaults", hypothesis_row),
        ("explore, defaults", lambda: explored(n, 1)),
        (f"explore, defaults, {workers} workers", lambda: explored(n, workers)),
        ("plain runs, no time freezing", lambda: plain(n, freeze_activity_time=False)),
        ("hypothesis, no time freezing", lambda: hypothesis_row(freeze_activity_time=False)),
        ("explore, no time freezing", lambda: explored(n, 1, freeze_activity_time=False)),
        (f"explore, no time freezing, {workers} workers", lambda: explored(n, workers, freeze_activity_time=False)),
        ("hypothesis alone, drawing as many decisions", lambda: hypothesis_alone(n, round(sum(draws) / len(draws)))),
    ]
    # round by round rather than row by row: a noisy minute on a shared machine hits every row alike
    rates: list[list[float]] = [[] for _ in rows]
    loop_before = loop_seconds()
    for _ in range(args.rounds):
        for measured, (_, measure) in zip(rates, rows, strict=True):
            measured.append(measure())
    print(f"10M-iteration loop: {loop_before:.2f} s before, {loop_seconds():.2f} s after (how fast the machine was); "
          f"{args.rounds} rounds of {n}")
    print(f"{'':<46} {'best':>8} {'median':>8}")
    for (name, _), measured in zip(rows, rates, strict=True):
        print(f"{name:<46} {max(measured):8.0f} {statistics.median(measured):8.0f} runs/s")
    print(f"(hypothesis drew {sum(draws) / len(draws):.0f} decisions per example; goal: >= 1000 fuzzed schedules/s; "
          "hypothesis alone is the ceiling of the hypothesis rows)")


if __name__ == "__main__":
    main()
