"""``SqliteBackend(path, read_only=True)``: reads an existing wftest database, never writes or migrates it."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Generator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wftest import BackendError, Engine, OrchestrationContext, SqliteBackend, Task
from wftest.backends import InstanceQuery
from wftest.backends import sqlite as sqlite_backend


def waiter(ctx: OrchestrationContext, _: Any) -> Generator[Task[Any], Any, Any]:
    return (yield ctx.wait_for_external_event("go"))


def _database(path: Path, *ids: str) -> Path:
    writer = SqliteBackend(path)
    engine = Engine(backend=writer)
    for iid in ids:
        engine.client.schedule_new_orchestration(waiter, instance_id=iid)
    engine.run_until_idle()
    writer.close()
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT MAX(version) FROM wftest_schema").fetchone()[0])


def test_a_read_only_backend_reads_instances_and_histories(tmp_path: Path) -> None:
    path = _database(tmp_path / "w.db", "a", "b")

    reader = SqliteBackend(path, read_only=True)
    records, token = reader.query_instances(InstanceQuery())
    record = reader.get_instance("a")
    history = reader.get_history("a")
    reader.close()

    assert reader.read_only and [r.instance_id for r in records] == ["a", "b"] and token is None
    assert record is not None and record.name == "waiter"
    assert history[0].HasField("orchestratorStarted") and history[1].HasField("executionStarted")


def test_a_read_only_backend_sees_what_a_writer_commits_later(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    writer = SqliteBackend(path)
    engine = Engine(backend=writer)
    engine.client.schedule_new_orchestration(waiter, instance_id="early")
    engine.run_until_idle()
    reader = SqliteBackend(path, read_only=True)

    engine.client.schedule_new_orchestration(waiter, instance_id="late")
    engine.run_until_idle()

    assert [r.instance_id for r in reader.query_instances(InstanceQuery())[0]] == ["early", "late"]
    reader.close()
    writer.close()


@pytest.mark.parametrize("write", [
    lambda b: b.purge_instance("a"),
    lambda b: b.fetch_orchestration_work_item("me", datetime(2030, 1, 1), timedelta(minutes=1)),
    lambda b: b.fetch_activity_work_item("me", datetime(2030, 1, 1), timedelta(minutes=1)),
    lambda b: Engine(backend=b).client.schedule_new_orchestration(waiter, instance_id="new"),
    lambda b: Engine(backend=b).client.raise_orchestration_event("a", "go"),
])
def test_every_write_is_refused_with_a_clear_error(tmp_path: Path, write: Any) -> None:
    path = _database(tmp_path / "w.db", "a")
    before = _digest(path)
    reader = SqliteBackend(path, read_only=True)

    with pytest.raises(BackendError, match=r"w\.db: the database is open read-only .* cannot be changed"):
        write(reader)
    reader.close()

    assert _digest(path) == before


def test_a_missing_file_is_a_clear_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"

    with pytest.raises(BackendError, match=r"missing\.db: no such database file \(it does not exist\); "
                                           "read_only=True opens an existing wftest database"):
        SqliteBackend(missing, read_only=True)
    with pytest.raises(BackendError, match=r"no such database file \(it is not a file\)"):
        SqliteBackend(tmp_path, read_only=True)
    assert not missing.exists()


def test_files_that_are_not_wftest_databases_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    text = tmp_path / "notes.txt"
    text.write_text("not a database, but long enough to have a header of sorts " * 10)

    with pytest.raises(BackendError, match=r"empty\.db: not a wftest database \(it has no tables\)"):
        SqliteBackend(empty, read_only=True)
    with pytest.raises(BackendError, match=r"other\.db: this sqlite database belongs to another application"):
        SqliteBackend(other, read_only=True)
    with pytest.raises(BackendError, match=r"notes\.txt: cannot read this file as a wftest database"):
        SqliteBackend(text, read_only=True)
    assert empty.stat().st_size == 0  # no schema was created


def test_an_older_schema_that_the_read_path_understands_is_read_without_migrating(tmp_path: Path) -> None:
    path = _database(tmp_path / "v1.db", "a")
    with sqlite3.connect(path) as db:  # back to version 1: no activities.tags, no completed_at index
        db.execute("ALTER TABLE activities DROP COLUMN tags")
        db.execute("DROP INDEX instances_completed")
        db.execute("UPDATE wftest_schema SET version = 1")
    before = _digest(path)

    reader = SqliteBackend(path, read_only=True)
    record = reader.get_instance("a")
    history = reader.get_history("a")
    reader.close()

    assert record is not None and len(history) == record.history_length > 0
    assert _version(path) == 1 and _digest(path) == before


def test_an_older_schema_the_read_path_cannot_read_is_a_clear_error(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = _database(tmp_path / "v1.db", "a")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE wftest_schema SET version = 1")
    monkeypatch.setattr(sqlite_backend, "_READABLE_FROM", 2)  # as if version 2 had changed the history table

    with pytest.raises(BackendError, match=r"v1\.db: the database schema is version 1; reading it needs a migration "
                                           r"to version 2, which read_only=True cannot do\. Open it once without "
                                           r"read_only"):
        SqliteBackend(path, read_only=True)
    assert _version(path) == 1


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = _database(tmp_path / "new.db")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE wftest_schema SET version = 99")

    with pytest.raises(BackendError, match="schema is version 99, newer than this wftest understands"):
        SqliteBackend(path, read_only=True)


def test_read_only_needs_a_file_and_no_retention(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="read_only=True needs a database file"):
        SqliteBackend(":memory:", read_only=True)
    with pytest.raises(ValueError, match="retention deletes expired instances"):
        SqliteBackend(_database(tmp_path / "w.db"), read_only=True, retention=timedelta(days=1))
