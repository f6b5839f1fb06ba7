"""Strict mode (net 3): non-deterministic calls from orchestrator code fail with the call and the line."""

from __future__ import annotations

import datetime as dt
import logging
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Generator
from datetime import timedelta
from typing import Any

import pytest

from wftest import Engine, NonDeterministicCallError, OrchestrationContext, Task, WorkflowTester, when_all

Gen = Generator[Task[Any], Any, Any]


def reads_the_clock(ctx: Any, _: Any) -> float:
    return time.time() + random.random() + dt.datetime.now().timestamp()


def _workflow_calling(bad: Callable[[], Any]) -> Callable[[OrchestrationContext, Any], Gen]:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.create_timer(timedelta(seconds=1))
        bad()
        return "finished"

    return wf


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: dt.datetime.now(), "datetime.now()"),
        (lambda: dt.datetime.utcnow(), "datetime.utcnow()"),
        (lambda: dt.date.today(), "date.today()"),
        (lambda: time.time(), "time.time()"),
        (lambda: time.monotonic(), "time.monotonic()"),
        (lambda: time.sleep(0), "time.sleep()"),
        (lambda: random.random(), "random.random()"),
        (lambda: random.randint(1, 6), "random.randint()"),
        (lambda: random.choice([1, 2]), "random.choice()"),
        (lambda: uuid.uuid4(), "uuid.uuid4()"),
        (lambda: threading.Thread(target=print).start(), "threading.Thread.start()"),
        (lambda: socket.socket(), "socket.socket()"),
        (lambda: open(__file__), "open()"),  # noqa: SIM115 - the call itself is what strict mode must catch
    ],
)
def test_non_deterministic_call_is_reported_with_name_and_line(call: Callable[[], Any], name: str) -> None:
    with pytest.raises(NonDeterministicCallError) as err:
        WorkflowTester().run(_workflow_calling(call))
    message = str(err.value)
    assert f"called {name}" in message
    assert f"{__file__}:" in message


def test_activities_may_read_the_clock_and_random() -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        return (yield ctx.call_activity(reads_the_clock))

    assert WorkflowTester().run(wf).status == "COMPLETED"


def test_context_helpers_and_logging_are_allowed() -> None:
    log = logging.getLogger("wftest.tests.strict")

    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        roll = ctx.random().randint(1, 6)
        ctx.random().shuffle([1, 2, 3])
        log.info("rolled %s", roll)
        ctx.create_replay_safe_logger(log).info("once")
        yield ctx.create_timer(timedelta(minutes=1))
        return [ctx.new_uuid(), ctx.current_utc_datetime.isoformat(), ctx.side_effect(lambda: 42)]

    result = WorkflowTester().run(wf)
    assert result.status == "COMPLETED" and result.output[1:] == ["2024-01-01T00:01:00", 42]


def test_swallowed_violation_still_fails_the_run() -> None:
    def sneaky(ctx: OrchestrationContext, _: Any) -> Gen:
        try:
            time.time()
        except Exception:
            pass
        yield ctx.create_timer(timedelta(seconds=1))
        return "done"

    with pytest.raises(NonDeterministicCallError, match=r"time\.time\(\)"):
        WorkflowTester().run(sneaky)


def test_non_strict_tester_allows_the_call() -> None:
    assert WorkflowTester(strict=False).run(_workflow_calling(lambda: time.time())).output == "finished"


def test_strict_engine_fails_the_instance() -> None:
    engine = Engine(strict=True)
    iid = engine.client.schedule_new_orchestration(_workflow_calling(lambda: uuid.uuid4()))
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.runtime_status == "FAILED"
    assert state.failure_details is not None
    assert state.failure_details.error_type == "wftest.errors.NonDeterministicCallError"


def test_engine_is_lenient_by_default() -> None:
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(_workflow_calling(lambda: uuid.uuid4()))
    assert engine.client.wait_for_orchestration_completion(iid).runtime_status == "COMPLETED"


def test_strict_mode_works_under_cprofile() -> None:
    import cProfile

    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.create_timer(timedelta(seconds=1))
        return "done"

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        result = WorkflowTester().run(wf)
    finally:
        profiler.disable()
    assert result.output == "done"


def test_calls_right_after_a_context_call_are_caught() -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        task = ctx.create_timer(timedelta(seconds=1))  # the context's own work runs unwatched...
        stamp = time.time()  # ...and the orchestrator code after it is watched again
        yield task
        return stamp

    with pytest.raises(NonDeterministicCallError, match=r"time\.time\(\)"):
        WorkflowTester().run(wf)


def test_a_generator_given_to_when_all_is_watched() -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        return (yield when_all(ctx.create_timer(timedelta(seconds=random.randint(1, 9))) for _ in range(2)))

    with pytest.raises(NonDeterministicCallError, match=r"random\.randint\(\)"):
        WorkflowTester().run(wf)


def test_side_effect_may_call_what_strict_mode_forbids() -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        token = ctx.side_effect(lambda: uuid.uuid4().hex)  # recorded in history: replays the same value
        yield ctx.create_timer(timedelta(seconds=1))
        return token

    result = WorkflowTester().run(wf)  # the replay check replays the recorded token
    assert len(result.output) == 32
