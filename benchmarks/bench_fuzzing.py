"""Fuzzed schedules per second on a 10-activity fan-out (goal, issue 5: >= 1,000/s on this machine).

    python benchmarks/bench_fuzzing.py [--examples N]

Each example is one hypothesis-drawn schedule (the order of 10 activity results and of the steps, plus
up to two injected faults) and one full tester run with its replay check. Printed: schedules per second
with the tester's defaults and with freezing activity time off (activities here do not read the clock),
and, as the baseline measured in the same run, plain tester runs without hypothesis.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Generator
from typing import Any

from hypothesis import HealthCheck, given, settings

from wftest import CrashAfterActivity, OrchestrationContext, Task, WorkflowTester, when_all
from wftest.strategies import Schedule, schedules


def square(ctx: Any, n: int) -> int:
    return n * n


def fan_out(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, int]:
    values = yield when_all([ctx.call_activity(square, input=i) for i in range(10)])
    return sum(values)


def fuzz(examples: int, **tester_options: Any) -> float:
    """Schedules per second over ``examples`` hypothesis examples."""

    @settings(max_examples=examples, database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(schedule=schedules(faults=[CrashAfterActivity()]))
    def run(schedule: Schedule) -> None:
        assert WorkflowTester(**tester_options).run(fan_out, schedule=schedule).output == 285

    started = time.perf_counter()
    run()
    return examples / (time.perf_counter() - started)


def plain(runs: int, **tester_options: Any) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        WorkflowTester(**tester_options).run(fan_out)
    return runs / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    args = parser.parse_args()
    rows = [
        ("plain runs, defaults (baseline)", plain(args.examples)),
        ("fuzzed, defaults", fuzz(args.examples)),
        ("plain runs, no time freezing", plain(args.examples, freeze_activity_time=False)),
        ("fuzzed, no time freezing", fuzz(args.examples, freeze_activity_time=False)),
    ]
    for name, rate in rows:
        print(f"{name:<34} {rate:8.0f} runs/s")
    print("(goal: >= 1000 fuzzed schedules/s)")


if __name__ == "__main__":
    main()
