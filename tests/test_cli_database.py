"""``wftest run | ps | show --db | raise-event | terminate | suspend | resume | purge`` on a sqlite file."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from wftest import Engine, OrchestrationContext, SqliteBackend, Task
from wftest.cli import main

Gen = Generator[Task[Any], Any, Any]


def waiter(ctx: OrchestrationContext, _: Any) -> Gen:
    return (yield ctx.wait_for_external_event("go"))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "wf.db"
    engine = Engine(backend=SqliteBackend(path))
    engine.client.schedule_new_orchestration(waiter, instance_id="w-1")
    engine.run_until_idle()
    return path


def test_run_with_a_virtual_clock_prints_the_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "wftest._demo:ship", "--input", '{"id": "9"}', "--virtual-clock", "--instance-id", "s"]) == 0
    out = capsys.readouterr().out
    assert "book_courier" in out and "s: COMPLETED" in out and '"TRACK-9"' in out


def greet(ctx: Any, name: str) -> str:
    return f"hello {name}"


def greeting(ctx: OrchestrationContext, name: str) -> Gen:
    return (yield ctx.call_activity(greet, input=name))


def test_run_for_real_on_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "real.db"
    assert main(["run", "tests.test_cli_database:greeting", "--db", str(db), "--input", '"ada"',
                 "--instance-id", "g", "--timeout", "30"]) == 0
    assert 'g: COMPLETED  output: "hello ada"' in capsys.readouterr().out
    assert main(["ps", "--db", str(db)]) == 0
    assert "COMPLETED" in capsys.readouterr().out


def test_run_of_an_unknown_function_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "wftest._demo:no_such_thing", "--virtual-clock"]) == 2
    assert "cannot load 'wftest._demo:no_such_thing'" in capsys.readouterr().err


def test_ps_lists_instances(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ps", "--db", str(db)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["INSTANCE", "NAME", "STATUS", "CREATED", "UPDATED"]
    assert out[1].split()[:3] == ["w-1", "waiter", "RUNNING"]


def test_show_an_instance_of_a_database(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "--db", str(db), "w-1"]) == 0
    assert "w-1 (waiter): RUNNING" in capsys.readouterr().out


def test_management_commands_queue_work_for_the_workers(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["raise-event", "--db", str(db), "w-1", "go", "--data", '"yes"']) == 0
    assert main(["suspend", "--db", str(db), "w-1"]) == 0
    assert main(["resume", "--db", str(db), "w-1"]) == 0
    engine = Engine(backend=SqliteBackend(db))
    engine.add_orchestrator(waiter)
    engine.clock.jump_to(engine.clock.now())  # type: ignore[attr-defined]
    assert engine.client.wait_for_orchestration_completion("w-1").output == "yes"
    assert main(["purge", "--db", str(db), "w-1"]) == 0
    assert "purged 1 instance(s)" in capsys.readouterr().out


def test_terminate_and_unknown_instances(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["terminate", "--db", str(db), "w-1", "--output", '"stop"']) == 0
    assert main(["terminate", "--db", str(db), "nope"]) == 2
    assert "no instance 'nope'" in capsys.readouterr().err


def test_missing_database_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ps", "--db", str(tmp_path / "none.db")]) == 2
    assert "no such database" in capsys.readouterr().err
