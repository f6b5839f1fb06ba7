"""The engine in real time: worker threads on a SystemClock."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Generator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wftest import Engine, OrchestrationContext, OrchestrationStatus, SystemClock, Task, when_all
from wftest.backends import Backend, MemoryBackend
from wftest.backends.sqlite import SqliteBackend
from wftest.errors import WaitTimeoutError
from wftest.protos import orchestrator_service_pb2 as pb


def double(ctx: Any, n: int) -> int:
    return n * 2


def fan_out(ctx: OrchestrationContext, n: int) -> Generator[Task[Any], Any, int]:
    results = yield when_all([ctx.call_activity(double, input=i) for i in range(n)])
    yield ctx.create_timer(timedelta(milliseconds=50))
    return sum(results)


def waits_forever(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, None]:
    yield ctx.wait_for_external_event("never")


def test_worker_threads_run_orchestrations_to_completion() -> None:
    with Engine(clock=SystemClock()).start(activity_threads=4) as engine:
        ids = [engine.client.schedule_new_orchestration(fan_out, input=10) for _ in range(5)]
        states = [engine.client.wait_for_orchestration_completion(i, timeout=30) for i in ids]
    assert [s.output for s in states] == [90] * 5


def test_wait_with_real_clock_times_out() -> None:
    with Engine(clock=SystemClock()).start(activity_threads=1) as engine:
        iid = engine.client.schedule_new_orchestration(waits_forever)
        with pytest.raises(WaitTimeoutError):
            engine.client.wait_for_orchestration_completion(iid, timeout=0.2)


def test_threads_refuse_a_virtual_clock() -> None:
    with pytest.raises(RuntimeError, match="real clock"):
        Engine().start()


def test_waiting_without_workers_on_a_real_clock_fails_at_once() -> None:
    engine = Engine(clock=SystemClock())
    iid = engine.client.schedule_new_orchestration(fan_out, input=1)
    with pytest.raises(RuntimeError, match=r"workers are not started; call engine\.start\(\)"):
        engine.client.wait_for_orchestration_completion(iid)


# -- parallelism: async activities on one loop, sync activities on a pool, several orchestration threads --

HANG_GUARD = 20.0  # seconds: only ever reached if the behaviour under test is broken (then the test fails)


def pair(ctx: OrchestrationContext, names: list[str]) -> Generator[Task[Any], Any, list[Any]]:
    results = yield when_all([ctx.call_activity("meet", input=name) for name in names])
    return list(results)


def test_async_activities_run_concurrently_on_the_event_loop() -> None:
    # each activity sets its own event, then waits for the other's: they only finish if they overlap
    arrived = {"a": asyncio.Event(), "b": asyncio.Event()}
    loops: set[int] = set()

    async def meet(ctx: Any, name: str) -> str:
        loops.add(id(asyncio.get_running_loop()))
        arrived[name].set()
        other = "b" if name == "a" else "a"
        await asyncio.wait_for(arrived[other].wait(), HANG_GUARD)
        return f"{name} met {other}"

    engine = Engine(clock=SystemClock())
    engine.add_named_activity("meet", meet)
    with engine.start(activity_threads=1, async_activities=10):
        iid = engine.client.schedule_new_orchestration(pair, input=["a", "b"])
        state = engine.client.wait_for_orchestration_completion(iid, timeout=60)
    assert state.runtime_status == OrchestrationStatus.COMPLETED, state.failure_details
    assert state.output == ["a met b", "b met a"]
    assert len(loops) == 1  # one event loop ran both


def test_sync_activities_run_concurrently_on_the_thread_pool() -> None:
    barrier = threading.Barrier(4, timeout=HANG_GUARD)  # breaks unless 4 activities wait on it together
    threads: set[str] = set()

    def meet(ctx: Any, name: str) -> str:
        threads.add(threading.current_thread().name)
        barrier.wait()
        return name

    engine = Engine(clock=SystemClock())
    engine.add_named_activity("meet", meet)
    with engine.start(activity_threads=4):
        iid = engine.client.schedule_new_orchestration(pair, input=["w", "x", "y", "z"])
        state = engine.client.wait_for_orchestration_completion(iid, timeout=60)
    assert state.runtime_status == OrchestrationStatus.COMPLETED, state.failure_details
    assert state.output == ["w", "x", "y", "z"] and len(threads) == 4


def test_orchestration_threads_run_steps_of_different_instances_at_once() -> None:
    barrier = threading.Barrier(2, timeout=HANG_GUARD)

    def rendezvous(ctx: OrchestrationContext, _: Any) -> bool:
        if not ctx.is_replaying:
            barrier.wait()  # two first steps must be running at the same time
        return True

    with Engine(clock=SystemClock()).start(orchestration_threads=2) as engine:
        ids = [engine.client.schedule_new_orchestration(rendezvous) for _ in range(2)]
        states = [engine.client.wait_for_orchestration_completion(i, timeout=60) for i in ids]
    assert [s.output for s in states] == [True, True], [s.failure_details for s in states]


def _backend(kind: str, tmp_path: Path) -> Backend:
    return MemoryBackend() if kind == "memory" else SqliteBackend(tmp_path / "wf.db")


def _assert_each_step_once(history: list[pb.HistoryEvent]) -> None:
    kinds = [e.WhichOneof("eventType") for e in history]
    assert kinds.count("executionStarted") == 1 and kinds.count("executionCompleted") == 1
    scheduled = [e.eventId for e in history if e.HasField("taskScheduled")]
    completed = [e.taskCompleted.taskScheduledId for e in history if e.HasField("taskCompleted")]
    timers = [e.eventId for e in history if e.HasField("timerCreated")]
    fired = [e.timerFired.timerId for e in history if e.HasField("timerFired")]
    assert len(set(scheduled)) == len(scheduled) and sorted(completed) == sorted(scheduled)
    assert len(set(timers)) == len(timers) and sorted(fired) == sorted(timers)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_several_orchestration_threads_never_run_a_step_twice(kind: str, tmp_path: Path) -> None:
    runs: Counter[tuple[str, int]] = Counter()
    lock = threading.Lock()

    def count(ctx: Any, n: int) -> int:
        with lock:
            runs[(ctx.orchestration_id, n)] += 1
        return n * 2

    def steps(ctx: OrchestrationContext, n: int) -> Generator[Task[Any], Any, int]:
        first = yield ctx.call_activity(count, input=0)
        rest = yield when_all([ctx.call_activity(count, input=i) for i in range(1, n)])
        yield ctx.create_timer(timedelta(milliseconds=1))
        return int(first + sum(rest))

    engine = Engine(backend=_backend(kind, tmp_path), clock=SystemClock())
    with engine.start(orchestration_threads=4, activity_threads=4):
        ids = [engine.client.schedule_new_orchestration(steps, input=4) for _ in range(40)]
        states = [engine.client.wait_for_orchestration_completion(i, timeout=120) for i in ids]
    assert [s.output for s in states] == [12] * 40
    for iid in ids:
        _assert_each_step_once(engine.history(iid))
    assert set(runs.values()) == {1} and len(runs) == 40 * 4  # every activity ran exactly once


# -- shutdown: drain, then abandon what still runs --------------------------------------------------


def one_step(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, Any]:
    return (yield ctx.call_activity("block", input=None))


class _Blocker:
    """An activity that signals when it starts and returns only once released."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.runs = 0

    def __call__(self, ctx: Any, _: Any) -> str:
        self.runs += 1
        self.started.set()
        if not self.release.wait(HANG_GUARD):
            raise TimeoutError("the test never released the activity")
        return "from the first engine"


def _join_worker_threads(owner: str) -> None:
    for thread in threading.enumerate():
        if thread.name.startswith(f"{owner}-"):
            thread.join(HANG_GUARD)


def test_stop_abandons_a_blocked_activity_so_another_engine_takes_it_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "wf.db"
    blocker = _Blocker()
    first = Engine(backend=SqliteBackend(path), clock=SystemClock())  # locks last 5 minutes
    first.add_named_activity("block", blocker)
    first.start()
    iid = first.client.schedule_new_orchestration(one_step)
    assert blocker.started.wait(HANG_GUARD)

    with caplog.at_level(logging.WARNING, logger="wftest.engine"):
        abandoned = first.stop(timeout=0.1)

    assert abandoned == [f"activity 'block' (task #1 of instance {iid!r})"]
    assert "released them for another worker" in caplog.text and "'block'" in caplog.text
    second = Engine(backend=SqliteBackend(path), clock=SystemClock())
    second.add_orchestrator(one_step)
    second.add_named_activity("block", lambda ctx, _: "from the second engine")
    with second.start():
        # well before the first engine's 5-minute lock would have expired
        state = second.client.wait_for_orchestration_completion(iid, timeout=60)
    assert state.output == "from the second engine"
    blocker.release.set()
    _join_worker_threads(first.owner)  # the first engine's late result is discarded, not written
    history = second.history(iid)
    results = [e.taskCompleted.result.value for e in history if e.HasField("taskCompleted")]
    assert results == ['"from the second engine"']
    _assert_each_step_once(history)


def blocked_in_activity() -> tuple[Engine, _Blocker, str]:
    """A started engine whose ``one_step`` instance is inside its blocking activity."""
    blocker = _Blocker()
    engine = Engine(clock=SystemClock())
    engine.add_named_activity("block", blocker)
    engine.start()
    iid = engine.client.schedule_new_orchestration(one_step)
    assert blocker.started.wait(HANG_GUARD)
    return engine, blocker, iid


def test_graceful_stop_lets_an_in_flight_activity_finish() -> None:
    engine, blocker, iid = blocked_in_activity()
    outcome: list[list[str]] = []
    stopper = threading.Thread(target=lambda: outcome.append(engine.stop(timeout=HANG_GUARD)))
    stopper.start()
    while engine.started:  # stop() has begun: nothing new is fetched from here on
        time.sleep(0.001)
    blocker.release.set()  # the activity finishes while stop() drains
    stopper.join(HANG_GUARD)

    assert outcome == [[]]  # nothing abandoned
    with engine.start():  # the result was committed during the drain: the restart only runs the last step
        state = engine.client.wait_for_orchestration_completion(iid, timeout=60)
    assert state.output == "from the first engine" and blocker.runs == 1


def test_stop_without_drain_abandons_at_once_and_a_restart_runs_the_activity_again() -> None:
    engine, blocker, iid = blocked_in_activity()

    assert len(engine.stop(timeout=HANG_GUARD, drain=False)) == 1

    blocker.started.clear()
    with engine.start():
        assert blocker.started.wait(HANG_GUARD)  # delivered again at once, not after the lock expiry
        blocker.release.set()
        state = engine.client.wait_for_orchestration_completion(iid, timeout=60)
    assert state.output == "from the first engine" and blocker.runs == 2
    _assert_each_step_once(engine.history(iid))


def test_start_rejects_a_bad_parallelism() -> None:
    engine = Engine(clock=SystemClock())
    with pytest.raises(ValueError, match="orchestration_threads must be an int >= 1, got 0"):
        engine.start(orchestration_threads=0)
    assert not engine.started


# -- lock renewal: work that runs longer than the lock timeout keeps its lock --

class SteppedClock:
    """A real (not virtual) clock that reads what the test sets: lock expiry without waiting for it."""

    is_virtual = False

    def __init__(self) -> None:
        self.at = datetime(2024, 1, 1)

    def now(self) -> datetime:
        return self.at


LONG_LOCK = timedelta(hours=1)  # the renewing thread's own period (20 minutes) never comes during a test


def blocked_on_a_stepped_clock() -> tuple[Engine, _Blocker, str, SteppedClock]:
    """A started engine, on a clock the test moves, whose ``one_step`` instance is inside its activity.

    One activity thread: it is busy, so the engine fetches nothing more on its own.
    """
    clock = SteppedClock()
    blocker = _Blocker()
    engine = Engine(clock=clock, lock_timeout=LONG_LOCK)
    engine.add_named_activity("block", blocker)
    engine.start(activity_threads=1)
    iid = engine.client.schedule_new_orchestration(one_step)
    assert blocker.started.wait(HANG_GUARD)
    return engine, blocker, iid, clock


def test_a_started_engine_renews_the_lock_of_an_activity_that_outlives_it() -> None:
    engine, blocker, iid, clock = blocked_on_a_stepped_clock()
    runner = engine._runner
    assert runner is not None
    try:
        clock.at += LONG_LOCK * 0.8
        assert runner.renew_locks() == 1
        clock.at += LONG_LOCK * 0.8  # past the first lock's expiry, within the renewed one
        assert engine.backend.fetch_activity_work_item("another-worker", clock.now(), LONG_LOCK) is None
        blocker.release.set()
        state = engine.client.wait_for_orchestration_completion(iid, timeout=HANG_GUARD)
    finally:
        blocker.release.set()
        engine.stop()
    assert state.output == "from the first engine" and blocker.runs == 1


def test_a_lock_lost_despite_renewal_is_no_longer_renewed_and_the_late_result_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine, blocker, iid, clock = blocked_on_a_stepped_clock()
    runner = engine._runner
    assert runner is not None
    try:
        clock.at += LONG_LOCK * 1.5  # the worker was starved past its lock: another one takes the task over
        taken = engine.backend.fetch_activity_work_item("another-worker", clock.now(), LONG_LOCK)
        assert taken is not None
        assert runner.renew_locks() == 0
        assert runner.renew_locks() == 0  # found lost once: not tried again
        with caplog.at_level(logging.WARNING, logger="wftest.engine"):
            blocker.release.set()
            _wait_until(lambda: "lost its lock before it finished" in caplog.text)
        engine.backend.complete_activity_work_item(taken, engine.worker.execute_activity(taken.task), clock.now())
        state = engine.client.wait_for_orchestration_completion(iid, timeout=HANG_GUARD)
    finally:
        blocker.release.set()
        engine.stop()
    assert "activity 'block' (task #1" in caplog.text and "its result was discarded" in caplog.text
    results = [e.taskCompleted.result.value for e in engine.history(iid) if e.HasField("taskCompleted")]
    assert results == ['"from the first engine"']  # once: the taken-over run's, committed by the other worker
    assert state.output == "from the first engine" and blocker.runs == 2


def _wait_until(condition: Any) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.001)
