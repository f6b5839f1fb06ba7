"""The seams foreign executors plug into: the engine picks an executor per orchestrator name, the
registry treats a wrapper and the function it wraps as one, the strict-mode guard trusts SDK code, and
the runtime never fires a timer at the end of time."""

from __future__ import annotations

import importlib.util
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import durabletask.task as task
import pytest

import wftest.interop.durabletask as dt
from wftest import Engine, NonDeterministicCallError, OrchestrationState, OrchestrationStatus, Registry
from wftest import _events as ev
from wftest.converter import DEFAULT_CONVERTER
from wftest.orchestration import ExecutionResult, Executor
from wftest.orchestration._sandbox import StrictGuard
from wftest.runtime import InstanceRecord, apply_step


def native(ctx: Any, _: Any) -> str:
    return "native"


def foreign(ctx: task.OrchestrationContext, _: Any) -> str:
    return "foreign"


def test_the_engine_picks_the_executor_by_the_orchestrator_name() -> None:
    engine = Engine()
    engine.add_orchestrator(native)
    engine.add_orchestrator(dt.orchestrator(foreign))
    native_id = engine.client.schedule_new_orchestration(native)
    foreign_id = engine.client.schedule_new_orchestration("foreign")

    assert isinstance(engine.new_executor(native_id), Executor)  # the name is read from the instance
    assert isinstance(engine.new_executor(foreign_id), dt.DurableTaskExecutor)
    assert isinstance(engine.new_executor("anything", "foreign"), dt.DurableTaskExecutor)
    assert isinstance(engine.new_executor("anything", "unknown"), Executor)  # which reports NotRegistered


def test_a_wrapper_and_the_function_it_wraps_are_one_registration() -> None:
    registry = Registry()
    assert registry.activity_name(native) == "native"  # a mock by function registers the plain function

    registry.add_named_activity("native", dt.activity(native))  # the wrapper replaces it: same function

    assert isinstance(registry.get_activity("native"), dt.DurableTaskActivity)
    assert registry.activity_name(native) == "native"
    with pytest.raises(ValueError, match="already registered"):
        registry.add_named_activity("native", dt.activity(foreign))


def test_a_timer_at_the_end_of_time_is_recorded_but_never_fires() -> None:
    now = datetime(2024, 1, 1)
    record = InstanceRecord("i", "wf", 0, now, now)
    never = ev.create_timer_action(1, datetime(9999, 12, 31, 23, 59, 59))
    soon = ev.create_timer_action(2, now + timedelta(hours=1))

    update = apply_step(record, [ev.orchestrator_started(now)], ExecutionResult(actions=[never, soon]), now)

    assert [e.timerCreated.fireAt.seconds for e in update.new_history if e.HasField("timerCreated")] == [
        253402300799, int((now + timedelta(hours=1) - datetime(1970, 1, 1)).total_seconds()),
    ]
    assert [m.event.timerFired.timerId for m in update.messages] == [2]


def test_the_strict_guard_trusts_the_folders_it_is_given(tmp_path: Path) -> None:
    sdk = tmp_path / "fake_sdk.py"
    sdk.write_text("import time\n\ndef now():\n    return time.time()\n")
    spec = importlib.util.spec_from_file_location("fake_sdk", sdk)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    with StrictGuard().trusting([str(tmp_path)])():
        assert module.now() > 0  # SDK code may read the clock
    with pytest.raises(NonDeterministicCallError, match=r"time\.time\(\)"), StrictGuard()():
        module.now()
    with pytest.raises(NonDeterministicCallError), StrictGuard().trusting([str(tmp_path)])():
        time.time()  # the user's code may not


def test_a_custom_status_that_is_not_json_reads_as_the_string() -> None:
    now = datetime(2024, 1, 1)
    plain = OrchestrationState("i", "wf", OrchestrationStatus.RUNNING, now, now,
                               serialized_custom_status="shipped", _converter=DEFAULT_CONVERTER)
    as_json = OrchestrationState("i", "wf", OrchestrationStatus.RUNNING, now, now,
                                 serialized_custom_status='{"stage": 2}', _converter=DEFAULT_CONVERTER)

    assert plain.custom_status == "shipped"  # Dapr's SDK stores the string it is given
    assert as_json.custom_status == {"stage": 2}
