"""``wftest run | ps | show --db | raise-event | terminate | suspend | resume | purge`` on a sqlite file."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from wftest import Engine, OrchestrationContext, Registry, SqliteBackend, Task
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


registry = Registry()
registry.add_orchestrator(greeting)
registry.add_activity(greet)


def test_worker_with_retention_deletes_instances_finished_longer_ago(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "kept.db"
    engine = Engine(backend=SqliteBackend(db), registry=registry)  # a virtual clock: finished on 2024-01-01
    engine.client.schedule_new_orchestration(greeting, input="old", instance_id="old")
    engine.run_until_idle()
    engine.client.schedule_new_orchestration(greeting, input="new", instance_id="new")  # left for the worker
    assert main(["worker", "--db", str(db), "--registry", "tests.test_cli_database:registry", "--until-done",
                 "--retention", "7d"]) == 0
    assert main(["ps", "--db", str(db)]) == 0
    rows = [line.split()[:3] for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [["new", "greeting", "COMPLETED"]]  # "old" expired; "new" finished now, kept for 7 days


@pytest.mark.parametrize("command", ["worker", "serve"])
@pytest.mark.parametrize("value", ["0", "-5", "7 days", "1x", "h", "inf"])
def test_a_retention_that_is_not_a_positive_duration_is_a_usage_error(
        command: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--db", "x.db", "--registry", "m:r", "--retention", value] if command == "worker"
             else [command, "--retention", value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --retention" in err and repr(value) in err


@pytest.mark.parametrize(("value", "seconds"), [("3600", 3600), ("90s", 90), ("1h30m", 5400), ("7d", 604800),
                                                 ("0.5h", 1800), ("2D12H", 216000)])
def test_retention_durations(value: str, seconds: float) -> None:
    from wftest.cli import _build_parser

    args = _build_parser().parse_args(["worker", "--db", "x.db", "--registry", "m:r", "--retention", value])
    assert args.retention.total_seconds() == seconds


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
