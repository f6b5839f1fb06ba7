"""Tester overheads: creating a WorkflowTester, a 10-activity run, and the cost of strict mode and of
freezing activity time, each as a ratio against the feature turned off (measured in the same run).

    python benchmarks/bench_tester.py [--repeat N]

Goals (issue 3): tester creation < 1 ms; a 10-activity run < 5 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Generator
from typing import Any

from wftest import OrchestrationContext, Task, WorkflowTester


def work(ctx: Any, n: int) -> int:
    return n + 1


def ten_activities(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, int]:
    total = 0
    for i in range(10):
        total += yield ctx.call_activity(work, input=i)
    return total


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """Median seconds per call over ``repeat`` calls (after one warm-up call)."""
    fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    create = timed(WorkflowTester, args.repeat)
    configs = {
        "all off": dict(strict=False, replay_check=False, freeze_activity_time=False),
        "strict only": dict(strict=True, replay_check=False, freeze_activity_time=False),
        "replay check only": dict(strict=False, replay_check=True, freeze_activity_time=False),
        "freeze time only": dict(strict=False, replay_check=False, freeze_activity_time=True),
        "defaults (all on)": {},
    }
    runs = {name: timed(lambda c=config: WorkflowTester(**c).run(ten_activities), args.repeat)  # type: ignore[misc]
            for name, config in configs.items()}
    baseline = runs["all off"]
    print(f"WorkflowTester() creation: {create * 1e6:8.1f} us   (goal < 1000 us)")
    print(f"{'10-activity run':<22} {'median':>10} {'vs all off':>11}")
    for name, seconds in runs.items():
        print(f"{name:<22} {seconds * 1e3:8.2f} ms {seconds / baseline:10.2f}x")
    print(f"(goal: a 10-activity run with defaults < 5 ms; measured {runs['defaults (all on)'] * 1e3:.2f} ms)")


if __name__ == "__main__":
    main()
