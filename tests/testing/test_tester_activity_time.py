"""Activity time: activities read the virtual clock, and only activities (orchestrator code, callbacks and
the test itself read the real clock; strict mode still catches wall-clock reads in orchestrator code)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import pytest
from freezegun import freeze_time

from wftest import NonDeterministicCallError, OrchestrationContext, Task, WorkflowTester, when_all
from wftest.hooks import Hooks, hookimpl

Gen = Generator[Task[Any], Any, Any]
REAL_YEAR = dt.datetime.now().year  # the tests below need the real clock to be past the virtual 2024


def wall_clock(ctx: Any, _: Any) -> dict[str, Any]:
    return {
        "now": dt.datetime.now().isoformat(),
        "utcnow": dt.datetime.utcnow().isoformat(),
        "today": dt.date.today().isoformat(),
        "time": dt.datetime.fromtimestamp(time.time(), dt.timezone.utc).replace(tzinfo=None).isoformat(),
    }


async def sleepy_wall_clock(ctx: Any, _: Any) -> str:
    await asyncio.sleep(0.001)  # asyncio keeps the real monotonic clock: this must not hang
    return dt.datetime.now().isoformat()


def test_activities_read_the_virtual_time_from_every_clock_function() -> None:
    def two_readings(ctx: OrchestrationContext, _: Any) -> Gen:
        first = yield ctx.call_activity(wall_clock)
        yield ctx.create_timer(timedelta(days=3, hours=2))
        second = yield ctx.call_activity(wall_clock)
        return [first, second]

    first, second = WorkflowTester().run(two_readings).output
    assert first == {"now": "2024-01-01T00:00:00", "utcnow": "2024-01-01T00:00:00", "today": "2024-01-01",
                     "time": "2024-01-01T00:00:00"}
    assert second["now"] == second["time"] == "2024-01-04T02:00:00"


def test_async_activities_read_the_virtual_time() -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        return (yield ctx.call_activity(sleepy_wall_clock))

    assert WorkflowTester().run(wf).output == "2024-01-01T00:00:00"


def test_orchestrator_code_reads_the_real_clock_between_activities_when_not_strict() -> None:
    def reads_the_clock(ctx: OrchestrationContext, _: Any) -> Gen:
        before = dt.datetime.now().year
        yield ctx.call_activity(wall_clock)
        after_one = [dt.datetime.now().year, dt.datetime.fromtimestamp(time.time()).year, dt.date.today().year]
        yield when_all([ctx.call_activity(wall_clock) for _ in range(3)])
        return [before, *after_one, dt.datetime.now().year]

    result = WorkflowTester(strict=False, replay_check=False).run(reads_the_clock)
    assert result.output == [REAL_YEAR] * 5


@pytest.mark.parametrize(
    ("read", "name"),
    [(lambda: dt.datetime.now(), "datetime.now()"), (lambda: time.time(), "time.time()"),
     (lambda: dt.date.today(), "date.today()")],
)
def test_strict_mode_catches_the_wall_clock_after_an_activity_ran(read: Any, name: str) -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.call_activity(wall_clock)
        return read()

    with pytest.raises(NonDeterministicCallError, match=rf"called {name.replace('(', '[(]').replace(')', '[)]')}"):
        WorkflowTester().run(wf)


@pytest.mark.parametrize(("read", "name"), [(lambda: dt.datetime.now(), "datetime.now()"),
                                            (lambda: time.time(), "time.time()")])
def test_strict_mode_catches_the_wall_clock_while_the_tests_own_freeze_is_on(read: Any, name: str) -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.call_activity(wall_clock)
        return read()

    with freeze_time("2020-06-01"), pytest.raises(NonDeterministicCallError, match=rf"called {name[:-2]}"):
        WorkflowTester().run(wf)


def test_the_tests_own_freeze_applies_again_around_the_run() -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        return (yield ctx.call_activity(wall_clock))

    with freeze_time("2020-06-01"):
        result = WorkflowTester().run(wf)
        assert dt.datetime.now() == dt.datetime(2020, 6, 1)
    assert result.output["now"] == "2024-01-01T00:00:00"
    assert dt.datetime.now().year == REAL_YEAR


def test_callbacks_and_the_test_read_the_real_clock() -> None:
    seen: list[int] = []

    def waits(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.call_activity(wall_clock)
        yield ctx.wait_for_external_event("go")
        return (yield ctx.call_activity(wall_clock))

    tester = WorkflowTester()
    tester.at(timedelta(hours=1), lambda t: (seen.append(dt.datetime.now().year), t.raise_event("go")))
    result = tester.run(waits)
    assert result.output["now"] == "2024-01-01T01:00:00"
    assert seen == [REAL_YEAR]
    assert dt.datetime.now().year == REAL_YEAR and dt.datetime.fromtimestamp(time.time()).year == REAL_YEAR


def test_the_real_clock_is_back_when_an_activity_fails() -> None:
    def fails(ctx: Any, _: Any) -> None:
        raise ValueError(dt.datetime.now().isoformat())

    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        try:
            yield ctx.call_activity(fails)
        except Exception as err:
            return str(err)
        return None

    assert "2024-01-01T00:00:00" in WorkflowTester().run(wf).output
    assert dt.datetime.now().year == REAL_YEAR


def test_a_time_patch_plugin_is_started_and_stopped_around_each_activity() -> None:
    events: list[str] = []

    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.call_activity(wall_clock)
        yield ctx.create_timer(timedelta(minutes=5))
        yield ctx.call_activity(wall_clock)

    tester = WorkflowTester()
    tester.hooks.register(recording_time_patch(events))
    tester.run(wf)
    assert events == ["start 00:00", "stop", "start 00:05", "stop"]


def recording_time_patch(events: list[str]) -> Any:
    class Recording:
        @hookimpl
        def wftest_start_time_patch(self, now: dt.datetime) -> Any:
            events.append(f"start {now:%H:%M}")

            class Patch:
                def move_to(self, when: dt.datetime) -> None:
                    events.append(f"move {when:%H:%M}")

                def stop(self) -> None:
                    events.append("stop")

            return Patch()

    return Recording()


def test_activities_that_run_one_after_the_other_share_one_patch_stopped_before_the_next_step() -> None:
    events: list[str] = []

    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        yield when_all([ctx.call_activity(wall_clock) for _ in range(3)])
        events.append("orchestrator code")
        yield ctx.call_activity(wall_clock)

    tester = WorkflowTester(replay_check=False)
    tester.hooks.register(recording_time_patch(events))
    tester.run(wf)
    assert events == ["start 00:00", "stop", "orchestrator code", "start 00:00", "stop"]


def test_a_mock_between_real_activities_reads_the_real_clock() -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        return (yield when_all([ctx.call_activity(wall_clock), ctx.call_activity("mocked"),
                                ctx.call_activity(wall_clock)]))

    tester = WorkflowTester()
    tester.on_activity("mocked").calls(lambda _: dt.datetime.now().year)
    first, mocked, last = tester.run(wf).output
    assert first["now"] == last["now"] == "2024-01-01T00:00:00"
    assert mocked == REAL_YEAR


def test_activity_hooks_read_the_real_clock_between_activities() -> None:
    seen: list[int] = []

    class Watching:
        @hookimpl
        def wftest_before_activity(self, task: Any) -> None:
            seen.append(dt.datetime.now().year)

        @hookimpl
        def wftest_after_activity(self, task: Any, result: Any) -> None:
            seen.append(dt.datetime.now().year)

    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        return (yield when_all([ctx.call_activity(wall_clock) for _ in range(3)]))

    tester = WorkflowTester()
    tester.hooks.register(Watching())
    assert [r["now"] for r in tester.run(wf).output] == ["2024-01-01T00:00:00"] * 3
    assert seen == [REAL_YEAR] * 6


def test_a_time_patch_implementation_may_ignore_the_time() -> None:
    class Noon:
        @hookimpl
        def wftest_start_time_patch(self) -> Any:
            return None  # pluggy passes only the arguments an implementation names

    hooks = Hooks(builtins=False)
    hooks.register(Noon())
    assert hooks.start_time_patch(dt.datetime(2024, 1, 1)) is None
    with hooks.time_patch(dt.datetime(2024, 1, 1)) as patch:
        assert patch is None

