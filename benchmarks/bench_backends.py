"""Backends compared in one run: orchestrations/s and activity steps/s, in-memory vs sqlite (WAL file).

    python benchmarks/bench_backends.py [--orchestrations N] [--activities K]

Each orchestration runs K sequential activities on the deterministic engine (virtual clock, so only
the engine and the backend are measured). The in-memory backend is the baseline; the ratio shows what
durability costs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from wftest import Backend, Engine, MemoryBackend, OrchestrationContext, SqliteBackend, Task


def step(ctx: Any, n: int) -> int:
    return n + 1


def chain(ctx: OrchestrationContext, count: int) -> Generator[Task[Any], Any, int]:
    value = 0
    for _ in range(count):
        value = yield ctx.call_activity(step, input=value)
    return value


def measure(make_backend: Callable[[], Backend], orchestrations: int, activities: int) -> float:
    """Seconds to run ``orchestrations`` chains of ``activities`` to completion."""
    engine = Engine(backend=make_backend())
    started = time.perf_counter()
    for n in range(orchestrations):
        engine.client.schedule_new_orchestration(chain, input=activities, instance_id=f"o{n}")
    engine.run_until_idle()
    elapsed = time.perf_counter() - started
    assert all(s.runtime_status == "COMPLETED" for s in engine.client.get_all_orchestration_states())
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orchestrations", type=int, default=200)
    parser.add_argument("--activities", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        backends: dict[str, Callable[[], Backend]] = {
            "memory (baseline)": MemoryBackend,
            "sqlite :memory:": lambda: SqliteBackend(":memory:"),
            "sqlite file (WAL)": lambda: SqliteBackend(Path(folder) / "bench.db"),
        }
        results = {name: measure(make, args.orchestrations, args.activities) for name, make in backends.items()}
    baseline = results["memory (baseline)"]
    steps = args.orchestrations * (args.activities + 1)
    print(f"{args.orchestrations} orchestrations x {args.activities} activities ({steps} orchestration steps)")
    print(f"{'backend':<20} {'orch/s':>9} {'steps/s':>9} {'time':>9} {'vs memory':>10}")
    for name, seconds in results.items():
        print(f"{name:<20} {args.orchestrations / seconds:9.0f} {steps / seconds:9.0f} {seconds:8.2f}s "
              f"{seconds / baseline:9.1f}x")


if __name__ == "__main__":
    main()
