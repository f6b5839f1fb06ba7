"""The engine on every backend: the same workflows give byte-identical histories on memory and sqlite,
and sqlite state survives closing and reopening the file."""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from wftest import (
    BackendError,
    Engine,
    MemoryBackend,
    OrchestrationContext,
    RetryPolicy,
    SqliteBackend,
    Task,
    TaskFailedError,
    _demo,
    when_all,
    when_any,
)
from wftest._demo import order_workflow

Gen = Generator[Task[Any], Any, Any]
attempts: dict[str, int] = {}


def double(ctx: Any, n: int) -> int:
    return n * 2


def flaky(ctx: Any, key: str) -> str:
    attempts[key] = attempts.get(key, 0) + 1
    if attempts[key] < 3:
        raise ConnectionError(f"attempt {attempts[key]}")
    return "ok"


def child(ctx: OrchestrationContext, n: int) -> Gen:
    yield ctx.create_timer(timedelta(minutes=n))
    return n


def everything(ctx: OrchestrationContext, _: Any) -> Gen:
    values = yield when_all([ctx.call_activity(double, input=i) for i in range(5)])
    kids = yield when_all([ctx.call_sub_orchestrator(child, input=i) for i in (3, 1, 2)])
    retried = yield ctx.call_activity(flaky, input=ctx.instance_id,
                                      retry_policy=RetryPolicy(first_retry_interval=timedelta(seconds=5)))
    event = ctx.wait_for_external_event("go")
    winner = yield when_any([event, ctx.create_timer(timedelta(hours=2))])
    try:
        yield ctx.call_activity("missing")
    except TaskFailedError as err:
        missing = err.details.error_type
    return {"values": values, "kids": kids, "retried": retried, "event": winner is event, "missing": missing}


def counter(ctx: OrchestrationContext, n: int) -> Gen:
    yield ctx.create_timer(timedelta(minutes=1))
    if n < 5:
        ctx.continue_as_new(n + 1)
        return None
    return n


def deadline(ctx: OrchestrationContext, _: Any) -> Gen:
    approval = ctx.wait_for_external_event("approve")
    winner = yield when_any([approval, ctx.create_timer(timedelta(hours=1))])
    return "approved" if winner is approval else "timed out"


def by_event(ctx: OrchestrationContext, _: Any) -> Gen:
    yield ctx.wait_for_external_event("go")
    return "event child"


def first_child(ctx: OrchestrationContext, _: Any) -> Gen:
    winner = yield when_any([ctx.call_sub_orchestrator(child, input=60, instance_id="timed"),
                             ctx.call_sub_orchestrator(by_event, instance_id="evented")])
    return winner.get_result()


def at_the_hour(raise_to: str, name: str) -> Callable[[Engine, str], None]:
    """Raise ``name`` at the very time the hour's timers come due, before anything runs then."""
    def interact(engine: Engine, _: str) -> None:
        engine.clock.jump_to(engine.clock.now() + timedelta(hours=1))  # type: ignore[attr-defined]
        engine.client.raise_orchestration_event(raise_to, name)
    return interact


SCENARIOS: dict[str, tuple[Callable[..., Any], Any, Callable[[Engine, str], None]]] = {
    # what is due at the same time comes in the order it was queued: the timer, then the event
    "event_at_the_deadline": (deadline, None, at_the_hour("root", "approve")),
    # and the instance whose news came first runs first: the child woken by its timer finishes first
    "children_finishing_together": (first_child, None, at_the_hour("evented", "go")),
    "everything": (everything, None, lambda e, i: (e.advance(timedelta(hours=1)),
                                                   e.client.raise_orchestration_event(i, "go"))),
    "continue_as_new": (counter, 0, lambda e, i: None),
    "demo": (order_workflow, {"id": "1", "items": [{"sku": "a", "qty": 1}]},
             lambda e, i: (e.advance(timedelta(hours=2)), e.client.raise_orchestration_event(i, "approval", data=1))),
}


def _run(backend: Any, name: str) -> tuple[Any, dict[str, list[bytes]]]:
    """The root's output and every instance's history."""
    attempts.clear()
    _demo._charge_attempts.clear()
    fn, value, interact = SCENARIOS[name]
    engine = Engine(backend=backend)
    iid = engine.client.schedule_new_orchestration(fn, input=value, instance_id="root")
    engine.run_until_idle()
    interact(engine, iid)
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.runtime_status == "COMPLETED", state.failure_details
    return state.output, {s.instance_id: [e.SerializeToString() for e in engine.history(s.instance_id)]
                          for s in engine.client.get_all_orchestration_states()}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_memory_and_sqlite_write_identical_histories(name: str, tmp_path: Path) -> None:
    assert _run(MemoryBackend(), name) == _run(SqliteBackend(tmp_path / "db.sqlite"), name)


@pytest.mark.parametrize(("name", "output"), [("event_at_the_deadline", "timed out"),
                                              ("children_finishing_together", 60)])
def test_what_comes_due_together_runs_in_the_order_it_was_queued_on_every_backend(
    name: str, output: Any, tmp_path: Path
) -> None:
    for backend in (MemoryBackend(), SqliteBackend(tmp_path / "db.sqlite")):
        assert _run(backend, name)[0] == output, type(backend).__name__


def test_sqlite_state_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    first = Engine(backend=SqliteBackend(path))
    iid = first.client.schedule_new_orchestration(child, input=30, instance_id="c")
    first.run_until_idle()  # waits on a 30-minute timer
    first.backend.close()  # type: ignore[attr-defined]
    second = Engine(backend=SqliteBackend(path))  # a new process, as far as the engine can tell
    second.add_orchestrator(child)
    second.clock.jump_to(first.clock.now())  # type: ignore[attr-defined]
    assert second.client.wait_for_orchestration_completion(iid).output == 30


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"definitely not sqlite " * 100)
    with pytest.raises(BackendError, match=r"notes\.db: cannot use this file as a wftest database"):
        SqliteBackend(path)


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(BackendError, match=r"belongs to another application .*customers"):
        SqliteBackend(path)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "new.db"
    SqliteBackend(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE wftest_schema SET version = 99")
    with pytest.raises(BackendError, match="version 99, newer than this wftest understands"):
        SqliteBackend(path)


def test_worker_without_the_orchestrator_fails_the_instance_clearly(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    first = Engine(backend=SqliteBackend(path))
    iid = first.client.schedule_new_orchestration(child, input=30, instance_id="c")
    first.run_until_idle()
    second = Engine(backend=SqliteBackend(path))  # this worker never registered `child`
    second.clock.jump_to(first.clock.now() + timedelta(hours=1))  # type: ignore[attr-defined]
    state = second.client.wait_for_orchestration_completion(iid)
    assert state.failure_details is not None
    assert state.failure_details.error_type == "wftest.errors.NotRegisteredError"
    assert "no orchestrator named 'child'" in state.failure_details.message
