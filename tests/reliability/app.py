"""Workflows for the reliability tests: a sequence, a fan-out and timers, with activities that log every
run to a side file (activities are at least once: a crash can make them run again)."""

from __future__ import annotations

import os
from collections.abc import Generator
from datetime import timedelta
from typing import Any

from wftest import ActivityContext, OrchestrationContext, Registry, Task, when_all

Gen = Generator[Task[Any], Any, Any]
RUNS_FILE = os.environ.get("WFTEST_RELIABILITY_RUNS", "")


def square(ctx: ActivityContext, n: int) -> int:
    if RUNS_FILE:
        with open(RUNS_FILE, "a", encoding="utf-8") as runs:  # one line per run, appended atomically
            runs.write(f"{ctx.orchestration_id}:{ctx.task_id}\n")
    return n * n


def job(ctx: OrchestrationContext, n: int) -> Gen:
    total = 0
    for i in range(3):
        total += yield ctx.call_activity(square, input=n + i)
    squares = yield when_all([ctx.call_activity(square, input=i) for i in range(4)])
    yield ctx.create_timer(timedelta(seconds=2))
    return total + sum(squares)


def expected(n: int) -> int:
    return sum((n + i) ** 2 for i in range(3)) + sum(i * i for i in range(4))


registry = Registry()
registry.add_orchestrator(job)
registry.add_activity(square)
