"""Replayer: saved histories against today's code."""

from __future__ import annotations

import sys
import types
from collections.abc import Generator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from wftest import Engine, NonDeterminismError, NotRegisteredError, OrchestrationContext, Registry, Replayer, Task
from wftest import history as history_files

Gen = Generator[Task[Any], Any, Any]


def step_a(ctx: Any, x: Any) -> Any:
    return x


def step_b(ctx: Any, x: Any) -> Any:
    return x


def v1(ctx: OrchestrationContext, _: Any) -> Gen:
    yield ctx.call_activity(step_a, input=1)
    yield ctx.create_timer(timedelta(days=1))
    yield ctx.call_activity(step_b, input=2)
    return "done"


def v2_reordered(ctx: OrchestrationContext, _: Any) -> Gen:
    yield ctx.call_activity(step_b, input=2)
    yield ctx.create_timer(timedelta(days=1))
    yield ctx.call_activity(step_a, input=1)
    return "done"


def _registry(fn: Any) -> Registry:
    registry = Registry()
    registry.add_named_orchestrator("order", fn)
    registry.add_activity(step_a)
    registry.add_activity(step_b)
    return registry


def _history(*, finish: bool) -> list[Any]:
    engine = Engine(registry=_registry(v1))
    iid = engine.client.schedule_new_orchestration("order", instance_id="o-1")
    if finish:
        engine.client.wait_for_orchestration_completion(iid)
    else:
        engine.run_until_idle()  # mid-flight: waiting on the one-day timer
    return engine.history(iid)


def test_same_code_replays_a_completed_history() -> None:
    result = Replayer(_registry(v1)).replay(_history(finish=True))
    assert result.ok and result.report() == "o-1: ok"


def test_mid_flight_history_replays_up_to_its_last_event() -> None:
    assert Replayer(_registry(v1)).replay(_history(finish=False)).ok


def test_changed_code_fails_with_the_event_index_and_a_side_by_side() -> None:
    result = Replayer(_registry(v2_reordered)).replay(_history(finish=False))
    assert not result.ok
    assert isinstance(result.error, NonDeterminismError)
    assert result.error.index == 2
    assert "side by side" in result.report() and "TaskScheduled" in result.report()
    with pytest.raises(NonDeterminismError):
        result.raise_for_error()


def test_unknown_orchestrator_is_reported_by_name() -> None:
    result = Replayer(Registry()).replay(_history(finish=True))
    assert isinstance(result.error, NotRegisteredError) and "'order'" in str(result.error)


def test_replay_many_expands_folders(tmp_path: Path) -> None:
    history_files.save(tmp_path / "a.history.json", _history(finish=True))
    (tmp_path / "nested").mkdir()
    history_files.save(tmp_path / "nested" / "b.history.pb", _history(finish=False))
    results = Replayer(_registry(v1)).replay_many([tmp_path])
    assert [r.name for r in results] == ["a.history.json::o-1", "b.history.pb::o-1"]
    assert all(r.ok for r in results)


def test_registry_by_module_path(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("my_workflows")
    module.registry = REGISTRY  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "my_workflows", module)
    assert Replayer("my_workflows:registry").registry is REGISTRY


def test_bad_registry_spec_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="module:attribute"):
        Replayer("no_colon_here")


REGISTRY = _registry(v1)
