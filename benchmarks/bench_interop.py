"""Foreign executors (wftest.interop) against wftest's own: the cost of running durabletask and Dapr code.

    python benchmarks/bench_interop.py [--activities 300] [--repeat 5]

One sequential orchestration of ``--activities`` activities, written once per SDK (the same body:
``yield ctx.call_activity(work, input=i)`` in a loop), runs on wftest's ``Engine`` (virtual clock,
in-memory backend) in four ways, all in this process:

* native: wftest's executor (the baseline, ratio 1.00);
* durabletask: ``wftest.interop.durabletask.orchestrator`` (durabletask's executor, sticky adapter);
* Dapr: ``wftest.interop.dapr.workflow`` (the executor Dapr vendors, events translated to its dialect);
* each foreign one again on a stateless engine (``Engine(sticky=False)``: every step replays the whole
  history, as the SDKs' own workers do with a sidecar), which is O(n^2).

Then each final history is replayed from scratch once (the tester's replay check). Best of ``--repeat``
runs; ratios are against the native baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

import wftest.interop.dapr as dapr
import wftest.interop.durabletask as dt
from wftest import Engine, OrchestrationContext

logging.getLogger("wftest.interop").setLevel(logging.ERROR)


def work(ctx: Any, n: int) -> int:
    return n + 1


def native(ctx: OrchestrationContext, n: int) -> Any:
    total = 0
    for i in range(n):
        total += yield ctx.call_activity(work, input=i)
    return total


def on_durabletask(ctx: Any, n: int) -> Any:
    total = 0
    for i in range(n):
        total += yield ctx.call_activity(work, input=i)
    return total


def on_dapr(ctx: Any, n: int) -> Any:
    total = 0
    for i in range(n):
        total += yield ctx.call_activity(work, input=i)
    return total


KINDS: dict[str, Callable[[], Any]] = {
    "native": lambda: native,
    "durabletask": lambda: dt.orchestrator(on_durabletask),
    "Dapr": lambda: dapr.workflow(on_dapr),
}


def run(kind: str, n: int, *, sticky: bool = True) -> tuple[float, float]:
    """(seconds to run to completion, seconds to replay the final history from scratch)."""
    engine = Engine(sticky=sticky)
    engine.add_orchestrator(KINDS[kind]())
    engine.activity_interceptor = None
    gc.collect()
    started = time.perf_counter()
    iid = engine.client.schedule_new_orchestration(KINDS[kind]().__name__, input=n)
    state = engine.client.wait_for_orchestration_completion(iid)
    ran = time.perf_counter() - started
    assert state.output == sum(range(1, n + 1)), state
    history = engine.history(iid)
    started = time.perf_counter()
    assert engine.new_executor(iid).execute(history, []).actions == []
    return ran, time.perf_counter() - started


def best(kind: str, n: int, repeat: int, *, sticky: bool = True) -> tuple[float, float]:
    samples = [run(kind, n, sticky=sticky) for _ in range(repeat)]
    return min(s[0] for s in samples), min(s[1] for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--activities", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = args.activities
    for kind in KINDS:  # warm-up: imports, caches
        run(kind, 5)
    base_run, base_replay = best("native", n, args.repeat)
    print(f"sequential orchestration of {n} activities ({3 * n + 4} events), best of {args.repeat}")
    print(f"{'executor':<28}{'run (ms)':>10}{'ratio':>8}{'replay (ms)':>13}{'ratio':>8}")
    print(f"{'native (wftest)':<28}{base_run * 1e3:>10.1f}{1:>8.2f}{base_replay * 1e3:>13.1f}{1:>8.2f}")
    for kind in ("durabletask", "Dapr"):
        ran, replayed = best(kind, n, args.repeat)
        print(f"{kind + ' (sticky adapter)':<28}{ran * 1e3:>10.1f}{ran / base_run:>8.2f}"
              f"{replayed * 1e3:>13.1f}{replayed / base_replay:>8.2f}")
    for kind in ("durabletask", "Dapr"):
        ran, _ = best(kind, n, max(1, args.repeat // 2), sticky=False)
        print(f"{kind + ' (stateless engine)':<28}{ran * 1e3:>10.1f}{ran / base_run:>8.2f}")


if __name__ == "__main__":
    main()
