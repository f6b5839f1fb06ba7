"""Retention: multi-instance purge and automatic expiry (virtual clock) on both backends, the purge command and
the ``--retention`` option, and the sqlite schema migration that came with them."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conformance._support import T0, Gen
from wftest import Engine, MemoryBackend, OrchestrationContext, SqliteBackend, VirtualClock
from wftest.backends import IdReusePolicy
from wftest.backends.sqlite import SCHEMA_VERSION
from wftest.cli import main
from wftest.errors import InstanceNotFoundError


def quick(ctx: OrchestrationContext, outcome: str) -> Any:
    if outcome == "fail":
        raise ValueError("failed on purpose")
    return outcome


def waits(ctx: OrchestrationContext, _: Any) -> Gen:
    return (yield ctx.wait_for_external_event("go"))


def leaf(ctx: OrchestrationContext, _: Any) -> str:
    return "leaf"


def parent_of_leaf(ctx: OrchestrationContext, _: Any) -> Gen:
    return (yield ctx.call_sub_orchestrator(leaf))


def parent_of_waiter(ctx: OrchestrationContext, _: Any) -> Gen:
    return (yield ctx.call_sub_orchestrator(waits))


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    backend = MemoryBackend() if request.param == "memory" else SqliteBackend(tmp_path / "wf.db")
    return Engine(backend=backend)


def start(engine: Engine, orchestrator: Any, iid: str, outcome: Any = "ok", *, at: timedelta | None = None) -> None:
    clock = engine.clock
    assert isinstance(clock, VirtualClock)
    if at is not None:
        clock.jump_to(T0 + at)
    engine.client.schedule_new_orchestration(orchestrator, input=outcome, instance_id=iid)
    engine.run_until_idle()


def remaining(engine: Engine) -> list[str]:
    return sorted(s.instance_id for s in engine.client.get_all_orchestration_states(fetch_payloads=False))


def test_purge_orchestrations_deletes_finished_instances_created_before_a_time(engine: Engine) -> None:
    # given instances created over three hours, one still running
    start(engine, quick, "a", at=timedelta(hours=0))
    start(engine, quick, "b", "fail", at=timedelta(hours=1))
    start(engine, waits, "running", at=timedelta(hours=1))
    start(engine, quick, "c", at=timedelta(hours=2))
    # when purging what was created before 02:00
    result = engine.client.purge_orchestrations(created_before=T0 + timedelta(hours=2))
    # then the finished ones before then are gone, the running one and the newer one stay
    assert result.deleted_instance_count == 2
    assert remaining(engine) == ["c", "running"]


def test_purge_filters_combine(engine: Engine) -> None:
    start(engine, quick, "ok-1", at=timedelta(hours=0))
    start(engine, quick, "failed-1", "fail", at=timedelta(hours=1))
    start(engine, quick, "ok-2", at=timedelta(hours=2))
    start(engine, leaf, "other-name", at=timedelta(hours=3))
    client = engine.client
    assert client.purge_orchestrations(statuses=["FAILED"]).deleted_instance_count == 1
    assert client.purge_orchestrations(name="quick", created_after=T0).deleted_instance_count == 1  # ok-2 (strict)
    assert remaining(engine) == ["ok-1", "other-name"]
    assert client.purge_orchestrations(completed_before=T0 + timedelta(hours=3)).deleted_instance_count == 1
    assert remaining(engine) == ["other-name"]
    assert client.purge_orchestrations().deleted_instance_count == 1  # no filter: every finished instance
    assert remaining(engine) == []


def test_purge_is_recursive_by_default_whatever_the_childrens_own_names(engine: Engine) -> None:
    # given a finished parent and its finished child, of another orchestrator
    start(engine, parent_of_leaf, "p")
    assert remaining(engine) == ["p", "p:0001"]
    # when purging instances of the parent's orchestrator only
    result = engine.client.purge_orchestrations(name="parent_of_leaf")
    # then the child went with it
    assert result.deleted_instance_count == 2 and remaining(engine) == []


def test_a_non_recursive_purge_leaves_children(engine: Engine) -> None:
    start(engine, parent_of_leaf, "p")
    assert engine.client.purge_orchestrations(name="parent_of_leaf", recursive=False).deleted_instance_count == 1
    assert remaining(engine) == ["p:0001"]


def test_an_instance_with_a_running_child_is_left_alone(engine: Engine) -> None:
    # given a parent terminated without its child (non-recursive), so the child still runs
    start(engine, parent_of_waiter, "p")
    engine.client.terminate_orchestration("p", recursive=False)
    engine.run_until_idle()
    # when purging everything finished
    result = engine.client.purge_orchestrations()
    # then neither is purged until the child finishes
    assert result.deleted_instance_count == 0 and remaining(engine) == ["p", "p:0001"]
    engine.client.raise_orchestration_event("p:0001", "go")
    engine.run_until_idle()
    assert engine.client.purge_orchestrations().deleted_instance_count == 2


def test_purge_refuses_statuses_that_are_not_final(engine: Engine) -> None:
    with pytest.raises(ValueError, match="deletes finished instances only; statuses RUNNING are not final"):
        engine.client.purge_orchestrations(statuses=["COMPLETED", "RUNNING"])


def test_aware_times_are_converted_to_utc(engine: Engine) -> None:
    from datetime import timezone

    start(engine, quick, "a", at=timedelta(hours=1))
    in_berlin = datetime(2024, 1, 1, 2, 30, tzinfo=timezone(timedelta(hours=1)))  # 01:30 UTC
    assert engine.client.purge_orchestrations(created_before=in_berlin).deleted_instance_count == 1


# -- automatic expiry (both backends) --------------------------------------------------------------------------

Retaining = Callable[[timedelta], "MemoryBackend | SqliteBackend"]


@pytest.fixture(params=["memory", "sqlite"])
def retaining(request: pytest.FixtureRequest, tmp_path: Path) -> Retaining:
    """Makes a backend of the parameter's kind that keeps finished instances for the given time."""
    if request.param == "memory":
        return lambda retention: MemoryBackend(retention=retention)
    return lambda retention: SqliteBackend(tmp_path / "wf.db", retention=retention)


def test_finished_instances_expire_after_the_retention_on_the_virtual_clock(retaining: Retaining) -> None:
    # given a backend that keeps finished instances for 7 days
    engine = Engine(backend=retaining(timedelta(days=7)))
    start(engine, quick, "done-at-0")
    start(engine, waits, "running")
    start(engine, quick, "done-at-2d", at=timedelta(days=2))
    # when the clock reaches 7 days after the first finished (minus a second), nothing expires
    engine.advance(timedelta(days=5) - timedelta(seconds=1))
    assert remaining(engine) == ["done-at-0", "done-at-2d", "running"]
    # then at exactly 7 days the first one is gone, with its history
    engine.advance(timedelta(seconds=1))
    assert remaining(engine) == ["done-at-2d", "running"]
    with pytest.raises(InstanceNotFoundError):
        engine.history("done-at-0")
    # and the second goes 2 days later; the running instance is never expired
    engine.advance(timedelta(days=2))
    assert remaining(engine) == ["running"]
    engine.advance(timedelta(days=30))
    assert remaining(engine) == ["running"]


def test_expiry_counts_from_completion_not_creation(retaining: Retaining) -> None:
    engine = Engine(backend=retaining(timedelta(days=1)))
    start(engine, waits, "late")
    engine.advance(timedelta(days=3))
    engine.client.raise_orchestration_event("late", "go")
    engine.run_until_idle()  # finishes at day 3
    engine.advance(timedelta(hours=23))
    assert remaining(engine) == ["late"]
    engine.advance(timedelta(hours=1))
    assert remaining(engine) == []


def test_an_instance_restarted_under_its_id_expires_from_its_new_finish(retaining: Retaining) -> None:
    engine = Engine(backend=retaining(timedelta(days=1)))
    start(engine, quick, "again")
    engine.advance(timedelta(hours=12))
    engine.client.schedule_new_orchestration(quick, input="second", instance_id="again",
                                             reuse_id_policy=IdReusePolicy.TERMINATE)
    engine.run_until_idle()  # the second run finishes at 12 h
    engine.advance(timedelta(hours=12))  # the first run's expiry: the second run stays
    state = engine.client.get_orchestration_state("again")
    assert state is not None and state.output == "second"
    engine.advance(timedelta(hours=12))
    assert remaining(engine) == []


def test_expiry_never_moves_the_virtual_clock(retaining: Retaining) -> None:
    engine = Engine(backend=retaining(timedelta(days=1)))
    start(engine, quick, "a")
    engine.run_until_idle()
    assert engine.backend.next_wakeup() is None  # an expiry is not a timer
    assert engine.clock.now() == T0


def test_purge_expired_can_be_called_directly_and_reports_the_count(retaining: Retaining) -> None:
    backend = retaining(timedelta(hours=1))
    engine = Engine(backend=backend)
    start(engine, quick, "a")
    start(engine, quick, "b")
    assert backend.purge_expired(T0 + timedelta(minutes=59)) == 0
    assert backend.purge_expired(T0 + timedelta(hours=1)) == 2
    assert backend.purge_expired(T0 + timedelta(days=99)) == 0  # nothing left


def test_without_a_retention_nothing_expires(tmp_path: Path) -> None:
    for backend in (MemoryBackend(), SqliteBackend(tmp_path / "other.db")):
        engine = Engine(backend=backend)
        start(engine, quick, "kept")
        assert backend.purge_expired(T0 + timedelta(days=99)) == 0
        engine.advance(timedelta(days=99))
        assert remaining(engine) == ["kept"]


def test_an_instance_locked_by_a_worker_expires_at_a_later_sweep() -> None:
    backend = MemoryBackend(retention=timedelta(hours=1))
    engine = Engine(backend=backend)
    start(engine, quick, "busy")
    engine.client.raise_orchestration_event("busy", "late")  # new work for a finished instance
    item = backend.fetch_orchestration_work_item("a-worker", T0, timedelta(days=1))
    assert item is not None
    assert backend.purge_expired(T0 + timedelta(hours=2)) == 0  # a worker holds it
    backend.abandon_orchestration_work_item(item, T0 + timedelta(hours=2), timedelta(0))
    assert backend.purge_expired(T0 + timedelta(hours=2)) == 0  # not within the same instant
    assert backend.purge_expired(T0 + timedelta(hours=2, seconds=1)) == 1


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_retention_must_be_positive(kind: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="retention must be a positive timedelta or None"):
        if kind == "memory":
            MemoryBackend(retention=timedelta(0))
        else:
            SqliteBackend(tmp_path / "wf.db", retention=timedelta(0))


# -- schema migration ------------------------------------------------------------------------------------------

_V1_SCHEMA = """
CREATE TABLE wftest_schema (version INTEGER NOT NULL);
CREATE TABLE instances (
    instance_id TEXT PRIMARY KEY, name TEXT NOT NULL, status INTEGER NOT NULL, created_at INTEGER NOT NULL,
    last_updated_at INTEGER NOT NULL, completed_at INTEGER, scheduled_start_at INTEGER, execution_id TEXT,
    input TEXT, output TEXT, custom_status TEXT, failure_details BLOB, parent_instance_id TEXT,
    parent_task_id INTEGER, parent_execution_id TEXT, version TEXT, history_length INTEGER NOT NULL DEFAULT 0,
    owner TEXT, locked_until INTEGER, abandon_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX instances_created ON instances (created_at, instance_id);
CREATE TABLE history (instance_id TEXT NOT NULL, seq INTEGER NOT NULL, event BLOB NOT NULL,
                      PRIMARY KEY (instance_id, seq));
CREATE TABLE inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, execution_id TEXT, starts INTEGER NOT NULL,
    visible_at INTEGER, available_at INTEGER NOT NULL, event BLOB NOT NULL
);
CREATE INDEX inbox_instance ON inbox (instance_id, available_at, id);
CREATE INDEX inbox_visible ON inbox (visible_at);
CREATE TABLE activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, execution_id TEXT, task_id INTEGER NOT NULL,
    name TEXT NOT NULL, input TEXT, scheduled_at INTEGER NOT NULL, owner TEXT, locked_until INTEGER
);
INSERT INTO wftest_schema (version) VALUES (1);
"""


def greet(ctx: Any, name: str) -> str:
    return f"hello {name}"


def greeting(ctx: OrchestrationContext, name: str) -> Gen:
    return (yield ctx.call_activity(greet, input=name))


def test_a_version_1_database_is_migrated_and_its_queued_work_runs(tmp_path: Path) -> None:
    # given a file written by the first schema version, with an activity queued in it
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as db:
        db.executescript(_V1_SCHEMA)
    with sqlite3.connect(path) as db:
        # an instance whose first step ran: history and a queued activity, as version 1 stored them
        engine = Engine(backend=SqliteBackend(tmp_path / "scratch.db"))
        engine.client.schedule_new_orchestration(greeting, input="ada", instance_id="g")
        engine.run_until_idle(limit=1)
        scratch = sqlite3.connect(tmp_path / "scratch.db")
        for table, columns in (("instances", "*"), ("history", "*"),
                               ("activities", "id, instance_id, execution_id, task_id, name, input, scheduled_at, "
                                              "owner, locked_until")):
            rows = scratch.execute(f"SELECT {columns} FROM {table}").fetchall()
            for row in rows:
                db.execute(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in row)})", row)
        scratch.close()
    # when wftest opens it
    migrated = Engine(backend=SqliteBackend(path), registry=engine.registry)
    # then the schema is the current version, and the queued work finishes
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM wftest_schema").fetchall() == [(SCHEMA_VERSION,)]
        columns = [row[1] for row in db.execute("PRAGMA table_info(activities)")]
        assert columns[-1] == "tags"
        indexes = [row[1] for row in db.execute("PRAGMA index_list(instances)")]
        assert "instances_completed" in indexes
    assert migrated.client.wait_for_orchestration_completion("g").output == "hello ada"
    # and opening it again changes nothing
    SqliteBackend(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM wftest_schema").fetchall() == [(SCHEMA_VERSION,)]


# -- the command ------------------------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "wf.db"
    engine = Engine(backend=SqliteBackend(path), clock=VirtualClock(T0))
    start(engine, quick, "old", at=timedelta(0))
    start(engine, quick, "failed", "fail", at=timedelta(days=1))
    start(engine, waits, "running", at=timedelta(days=1))
    start(engine, quick, "new", at=timedelta(days=3))
    return path


def test_cli_purge_by_filters(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["purge", "--db", str(db), "--created-before", "2024-01-03", "--status", "completed"]) == 0
    assert capsys.readouterr().out.strip() == "purged 1 instance(s)"
    assert main(["purge", "--db", str(db), "--created-before", "2024-01-03T00:00:00Z"]) == 0
    assert capsys.readouterr().out.strip() == "purged 1 instance(s)"
    assert remaining(Engine(backend=SqliteBackend(db))) == ["new", "running"]


def test_cli_purge_needs_an_id_or_a_filter(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["purge", "--db", str(db)]) == 2
    assert "give an instance ID, or filters" in capsys.readouterr().err
    assert main(["purge", "--db", str(db), "old", "--status", "COMPLETED"]) == 2
    assert "give an instance ID or filters, not both" in capsys.readouterr().err
    assert main(["purge", "--db", str(db), "--status", "RUNNING"]) == 2
    assert "statuses RUNNING are not final" in capsys.readouterr().err


def test_cli_purge_rejects_a_bad_time(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["purge", "--db", str(db), "--created-before", "last tuesday"])
    assert "not an ISO 8601 time: 'last tuesday'" in capsys.readouterr().err


def test_cli_purge_by_id_still_works(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["purge", "--db", str(db), "old"]) == 0
    assert capsys.readouterr().out.strip() == "purged 1 instance(s)"
