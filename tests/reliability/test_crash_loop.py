"""Durability on sqlite: workers killed with SIGKILL at random moments, and two workers on one file.

Marked slow (seconds of real time); CI runs them.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.app import expected, job
from wftest import Engine, SqliteBackend, SystemClock, history

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _worker(db: Path, runs: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "WFTEST_RELIABILITY_RUNS": str(runs), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "wftest", "worker", "--db", str(db), "--registry", "tests.reliability.app:registry",
         "--until-done", "--lock-timeout", "1"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _schedule(db: Path, count: int) -> Engine:
    engine = Engine(backend=SqliteBackend(db), clock=SystemClock())
    for n in range(count):
        engine.client.schedule_new_orchestration(job, input=n, instance_id=f"job-{n:03d}")
    return engine


def _check_histories(engine: Engine, count: int) -> collections.Counter[str]:
    """Every instance completed with the right output; no history has a duplicate or missing event."""
    recorded: collections.Counter[str] = collections.Counter()
    for n in range(count):
        iid = f"job-{n:03d}"
        state = engine.client.get_orchestration_state(iid)
        assert state is not None and state.runtime_status == "COMPLETED", (iid, state)
        assert state.output == expected(n), iid
        events = engine.history(iid)
        history.validate(events)
        scheduled = [e.eventId for e in events if e.HasField("taskScheduled")]
        results = [e.taskCompleted.taskScheduledId for e in events if e.HasField("taskCompleted")]
        assert sorted(scheduled) == sorted(results) == list(range(1, 8)), (iid, scheduled, results)
        assert sum(e.HasField("executionStarted") for e in events) == 1
        assert sum(e.HasField("executionCompleted") for e in events) == 1
        recorded.update(f"{iid}:{r}" for r in results)
    return recorded


def test_crash_loop_every_orchestration_completes_exactly_once(tmp_path: Path) -> None:
    db, runs = tmp_path / "crash.db", tmp_path / "runs.log"
    count = 50
    engine = _schedule(db, count)
    rng = random.Random(1234)
    kills = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        worker = _worker(db, runs)
        try:
            worker.wait(timeout=rng.uniform(0.5, 1.5))
        except subprocess.TimeoutExpired:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            kills += 1
            continue
        assert worker.returncode == 0, worker.stderr.read().decode() if worker.stderr else ""
        break
    else:
        pytest.fail(f"not finished after {kills} kills")
    recorded = _check_histories(engine, count)
    ran = collections.Counter(runs.read_text().split())
    assert set(ran) == set(recorded)  # every activity ran at least once...
    assert all(n == 1 for n in recorded.values())  # ...and its result was recorded exactly once
    reran = sum(n - 1 for n in ran.values())
    print(f"\n{kills} SIGKILLs; {sum(ran.values())} activity runs for {len(recorded)} results ({reran} re-runs)")
    assert kills >= 2  # the test really crashed the worker


def test_two_workers_share_one_file_without_running_a_step_twice(tmp_path: Path) -> None:
    db, runs = tmp_path / "two.db", tmp_path / "runs.log"
    count = 200
    engine = _schedule(db, count)
    workers = [_worker(db, runs), _worker(db, runs)]
    for worker in workers:
        assert worker.wait(timeout=300) == 0, worker.stderr.read().decode() if worker.stderr else ""
    _check_histories(engine, count)  # a step run twice would duplicate its TaskScheduled or results
