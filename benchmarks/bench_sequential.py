"""A sequential orchestration of N activities run to completion on ``wftest.Engine()`` (in-memory backend,
virtual clock): the cost per activity stays flat as N grows (O(n) in total) because executors are sticky.

    python benchmarks/bench_sequential.py [--repeat 5] [--sizes 100,1000,10000] [--stateless-sizes 100,1000]

The second table runs the same orchestration on ``Engine(sticky=False)``, where every step replays the
whole history, as a stateless durabletask worker does (O(n^2) in total), and prints the ratio against the
sticky engine for the same N. Each figure is the best (and median) of at least ``--repeat`` runs (up to 50
for small N); a fresh engine is built for every run, outside the timing.

Goal (DESIGN.md, issue 7): 1,000 activities on the sticky engine well under 100 ms.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Generator
from typing import Any

from wftest import Engine, OrchestrationContext, Task


def work(ctx: Any, n: int) -> int:
    return n + 1


def sequential(ctx: OrchestrationContext, n: int) -> Generator[Task[Any], Any, int]:
    total = 0
    for i in range(n):
        total += yield ctx.call_activity(work, input=i)
    return total


def run_once(n: int, *, sticky: bool) -> float:
    """Seconds to schedule and run one orchestration of ``n`` activities to completion."""
    engine = Engine(sticky=sticky)
    engine.add_orchestrator(sequential)
    engine.add_activity(work)
    gc.collect()
    started = time.perf_counter()
    instance_id = engine.client.schedule_new_orchestration(sequential, input=n)
    state = engine.client.wait_for_orchestration_completion(instance_id)
    elapsed = time.perf_counter() - started
    assert state.runtime_status == "COMPLETED" and state.output == n * (n + 1) // 2, state
    return elapsed


def measure(n: int, *, sticky: bool, repeat: int) -> list[float]:
    """At least ``repeat`` runs; more for small N (up to 50), so that short runs are not all noise."""
    run_once(min(n, 100), sticky=sticky)  # warm-up
    return [run_once(n, sticky=sticky) for _ in range(max(repeat, min(50, 10_000 // n)))]


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per N, at least (more for small N)")
    parser.add_argument("--sizes", type=sizes, default=[100, 1000, 10_000])
    parser.add_argument("--stateless-sizes", type=sizes, default=[100, 1000],
                        help="N for Engine(sticky=False); 1000 takes seconds per run")
    parser.add_argument("--stateless-repeat", type=int, default=1)
    args = parser.parse_args()

    print(f"sticky Engine() (default), best of at least {args.repeat} runs")
    print(f"  {'N':>7} {'best ms':>10} {'median ms':>10} {'us/activity':>12} {'vs N=' + str(args.sizes[0]):>10}")
    sticky: dict[int, float] = {}
    baseline_per_activity = None
    for n in args.sizes:
        samples = measure(n, sticky=True, repeat=args.repeat)
        best = sticky[n] = min(samples)
        per_activity = best / n
        if baseline_per_activity is None:
            baseline_per_activity = per_activity
        print(f"  {n:>7} {best * 1e3:10.1f} {statistics.median(samples) * 1e3:10.1f} {per_activity * 1e6:12.1f} "
              f"{per_activity / baseline_per_activity:9.2f}x")
    if 1000 in sticky:
        verdict = "met" if sticky[1000] < 0.1 else "MISSED"
        print(f"  1,000 activities: {sticky[1000] * 1e3:.1f} ms (goal well under 100 ms: {verdict})")

    print()
    print(f"Engine(sticky=False): every step replays the whole history, best of {args.stateless_repeat}")
    print(f"  {'N':>7} {'best ms':>10} {'us/activity':>12} {'vs sticky':>10}")
    for n in args.stateless_sizes:
        best = min(measure(n, sticky=False, repeat=args.stateless_repeat))
        if n not in sticky:
            sticky[n] = min(measure(n, sticky=True, repeat=args.repeat))
        print(f"  {n:>7} {best * 1e3:10.1f} {best / n * 1e6:12.1f} {best / sticky[n]:9.1f}x slower")


if __name__ == "__main__":
    main()
