"""``wftest show | replay | convert`` and reading durabletask-go sqlite databases."""

from __future__ import annotations

import sqlite3
import sys
import types
from collections.abc import Generator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from wftest import Engine, HistoryFileError, OrchestrationContext, Registry, Task, history
from wftest.cli import main

Gen = Generator[Task[Any], Any, Any]

# the durabletask-go sqlite schema (backend/sqlite/schema.sql), as far as history reading needs it
DURABLETASK_GO_SCHEMA = """
CREATE TABLE Instances (
    InstanceID TEXT PRIMARY KEY NOT NULL, ExecutionID TEXT NOT NULL, Name TEXT NOT NULL, Version TEXT NULL,
    RuntimeStatus TEXT NOT NULL, CreatedTime DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    LastUpdatedTime DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, CompletedTime DATETIME NULL, LockedBy TEXT NULL,
    LockExpiration DATETIME NULL, Input TEXT NULL, Output TEXT NULL, CustomStatus TEXT NULL,
    FailureDetails BLOB NULL, ParentInstanceID TEXT NULL
);
CREATE TABLE History (
    InstanceID TEXT NOT NULL, SequenceNumber INTEGER NOT NULL, EventPayload BLOB NOT NULL,
    CONSTRAINT PK_History PRIMARY KEY (InstanceID, SequenceNumber)
);
"""


def greet(ctx: Any, name: str) -> str:
    return f"hello {name}"


def shout(ctx: Any, name: str) -> str:
    return name.upper()


def greeter(ctx: OrchestrationContext, name: str) -> Gen:
    text = yield ctx.call_activity(greet, input=name)
    yield ctx.create_timer(timedelta(minutes=5))
    return text


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    registry = Registry()
    registry.add_orchestrator(greeter)
    module = types.ModuleType("cli_test_app")
    module.registry = registry  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cli_test_app", module)
    return registry


def _run(registry: Registry, iid: str) -> list[Any]:
    engine = Engine(registry=registry)
    engine.client.wait_for_orchestration_completion(engine.client.schedule_new_orchestration(
        "greeter", input="ada", instance_id=iid))
    return engine.history(iid)


def _database(path: Path, histories: dict[str, list[Any]]) -> Path:
    with sqlite3.connect(path) as db:
        db.executescript(DURABLETASK_GO_SCHEMA)
        for iid, events in histories.items():
            db.execute("INSERT INTO Instances (InstanceID, ExecutionID, Name, RuntimeStatus) VALUES (?, ?, ?, ?)",
                       (iid, "e1", "greeter", "COMPLETED"))
            db.executemany("INSERT INTO History VALUES (?, ?, ?)",
                           [(iid, n, e.SerializeToString()) for n, e in enumerate(events)])
    return path


def test_show_prints_the_timeline(registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = history.save(tmp_path / "g.history.json", _run(registry, "g-1"))
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "g-1 (greeter)" in out and "TaskScheduled" in out and "ExecutionCompleted" in out


def test_replay_passes_then_fails_after_a_code_change(registry: Registry, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    history.save(tmp_path / "g.history.json", _run(registry, "g-1"))
    assert main(["replay", "--registry", "cli_test_app:registry", str(tmp_path)]) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out

    def greeter_v2(ctx: OrchestrationContext, name: str) -> Gen:
        text = yield ctx.call_activity(shout, input=name)
        return text

    changed = Registry()
    changed.add_named_orchestrator("greeter", greeter_v2)
    sys.modules["cli_test_app"].registry = changed  # type: ignore[attr-defined]
    assert main(["replay", "--registry", "cli_test_app:registry", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "0 passed, 1 failed" in out and "side by side" in out and "shout" in out


def test_replay_with_a_bad_registry_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--registry", "nope", str(tmp_path)]) == 2
    assert "module:attribute" in capsys.readouterr().err


def test_convert_between_json_and_pb(registry: Registry, tmp_path: Path) -> None:
    events = _run(registry, "g-1")
    source = history.save(tmp_path / "g.history.json", events)
    assert main(["convert", str(source), str(tmp_path / "g.history.pb")]) == 0
    assert main(["convert", str(tmp_path / "g.history.pb"), str(tmp_path / "back.history.json")]) == 0
    assert (tmp_path / "back.history.json").read_text() == source.read_text()


def test_histories_from_a_durabletask_go_database(registry: Registry, tmp_path: Path) -> None:
    db = _database(tmp_path / "dt.sqlite", {"b": _run(registry, "b"), "a": _run(registry, "a")})
    found = history.from_durabletask_sqlite(db)
    assert [(h.instance_id, h.orchestrator, len(h.events)) for h in found] == [("a", "greeter", 9), ("b", "greeter", 9)]
    [only] = history.from_durabletask_sqlite(db, instance_id="b")
    assert only.instance_id == "b"


def test_convert_a_database_into_a_folder_of_files(registry: Registry, tmp_path: Path) -> None:
    db = _database(tmp_path / "dt.sqlite", {"x": _run(registry, "x"), "y": _run(registry, "y")})
    assert main(["convert", str(db), str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.history.json", "y.history.json"]


def test_foreign_sqlite_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE people (name TEXT)")
    with pytest.raises(HistoryFileError, match="no History table"):
        history.from_durabletask_sqlite(path)


def test_corrupt_database_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(HistoryFileError, match="not a sqlite database"):
        history.from_durabletask_sqlite(path)


def test_unknown_instance_in_database(registry: Registry, tmp_path: Path) -> None:
    db = _database(tmp_path / "dt.sqlite", {"a": _run(registry, "a")})
    with pytest.raises(HistoryFileError, match="no history for instance 'zzz'"):
        history.from_durabletask_sqlite(db, instance_id="zzz")


def test_record_runs_and_saves_a_replayable_history(registry: Registry, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["record", "greeter", "--registry", "cli_test_app:registry", "--input", '"ada"',
                 "--instance-id", "rec-1", "--out", str(tmp_path)])
    assert code == 0 and "COMPLETED" in capsys.readouterr().out
    saved = history.load(tmp_path / "rec-1.history.json")
    assert saved.orchestrator == "greeter"
    assert main(["replay", "--registry", "cli_test_app:registry", str(tmp_path)]) == 0


def test_record_raises_scripted_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["record", "wftest._demo:order_workflow", "--out", str(tmp_path), "--instance-id", "o",
                 "--input", '{"id": "1", "items": []}', "--event", '7200:approval:{"by": "bob"}']) == 0
    saved = history.load(tmp_path / "o.history.json")
    raised = [e.eventRaised.name for e in saved.events if e.HasField("eventRaised")]
    assert raised == ["approval"]
