"""Plugin hooks: observers of steps and activities, run-finished, and the time-patch backend."""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any

import pytest

from wftest import Engine, OrchestrationContext, Task, WorkflowTester
from wftest.hooks import Hooks, TimeMachinePlugin, default_hooks, hookimpl

Gen = Generator[Task[Any], Any, Any]


def today(ctx: Any, _: Any) -> str:
    return dt.datetime.now().isoformat()


def two_steps(ctx: OrchestrationContext, _: Any) -> Gen:
    yield ctx.create_timer(timedelta(days=2))
    return (yield ctx.call_activity(today))


class Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def wftest_before_orchestration_step(self, instance_id: str, events: list[Any]) -> None:
        self.seen.append(f"step {instance_id} {len(events)}")

    @hookimpl
    def wftest_after_activity(self, task: Any, result: Any) -> None:
        self.seen.append(f"activity {task.name} {result.WhichOneof('eventType')}")

    @hookimpl
    def wftest_run_finished(self, result: Any) -> None:
        self.seen.append(f"finished {result.status}")


def test_observers_see_steps_activities_and_the_end_of_the_run() -> None:
    tester = WorkflowTester()
    recorder = Recorder()
    tester.hooks.register(recorder)
    tester.run(two_steps)
    assert recorder.seen == [
        "step test-instance 2",
        "step test-instance 2",
        "activity today taskCompleted",
        "step test-instance 2",
        "finished COMPLETED",
    ]


def test_engine_hooks_observe_a_real_engine() -> None:
    engine = Engine()
    recorder = Recorder()
    engine.hooks.register(recorder)
    engine.client.wait_for_orchestration_completion(engine.client.schedule_new_orchestration(two_steps))
    assert recorder.seen.count("activity today taskCompleted") == 1


def test_a_plugin_can_replace_the_time_patch() -> None:
    class FixedNoon:
        @hookimpl
        def wftest_start_time_patch(self, now: datetime) -> Any:
            from freezegun import freeze_time

            freezer = freeze_time("2000-01-01T12:00:00")
            freezer.start()

            class Patch:
                def move_to(self, when: datetime) -> None:
                    pass  # always noon

                def stop(self) -> None:
                    freezer.stop()

            return Patch()

    tester = WorkflowTester()
    tester.hooks.register(FixedNoon())
    assert tester.run(two_steps).output == "2000-01-01T12:00:00"


def test_time_machine_backend_moves_with_the_virtual_clock() -> None:
    tester = WorkflowTester()
    tester.hooks.register(TimeMachinePlugin())
    assert tester.run(two_steps).output.startswith("2024-01-03T00:00:00")


def test_default_hooks_are_shared_and_read_only() -> None:
    assert default_hooks() is default_hooks()
    with pytest.raises(RuntimeError, match="cannot take plugins"):
        default_hooks().register(Recorder())


def test_two_engines_do_not_share_plugins() -> None:
    first, second = Engine(), Engine()
    first.hooks.register(Recorder())
    assert first.hooks is not second.hooks
    assert not second.hooks.implemented("wftest_run_finished")


def test_hooks_report_what_is_implemented() -> None:
    hooks = Hooks(builtins=False)
    assert not hooks.implemented("wftest_start_time_patch")
    hooks.register(Recorder())
    assert hooks.implemented("wftest_after_activity")
