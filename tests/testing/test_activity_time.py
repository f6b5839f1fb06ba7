"""``ActivityTimeFollowsClock``: a hand-built engine's activities read its virtual time; the caller the real one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from datetime import timedelta
from typing import Any

from wftest import Engine, OrchestrationContext, Task
from wftest.hooks import hookimpl
from wftest.testing._activity_time import ActivityTimeFollowsClock

Gen = Generator[Task[Any], Any, Any]


def stamp(ctx: Any, _: Any) -> str:
    return dt.datetime.now().isoformat()


def two_stamps(ctx: OrchestrationContext, _: Any) -> Gen:
    first = yield ctx.call_activity(stamp)
    yield ctx.create_timer(timedelta(days=2))
    second = yield ctx.call_activity(stamp)
    return [first, second]


def _run(engine: Engine) -> Any:
    iid = engine.client.schedule_new_orchestration(two_stamps)
    return engine.client.wait_for_orchestration_completion(iid).output


def test_activities_read_the_engines_virtual_time_and_the_caller_the_real_one() -> None:
    engine = Engine()
    follower = ActivityTimeFollowsClock(engine)
    engine.hooks.register(follower)
    try:
        assert _run(engine) == ["2024-01-01T00:00:00", "2024-01-03T00:00:00"]
        assert dt.datetime.now().year > 2024  # between activities the wall clock is real
    finally:
        follower.close()
    assert dt.datetime.now().year > 2024


def test_close_is_safe_without_any_activity() -> None:
    follower = ActivityTimeFollowsClock(Engine())
    follower.close()
    follower.close()
    assert dt.datetime.now().year > 2024


def test_the_patch_comes_from_the_engines_time_patch_hook() -> None:
    started: list[dt.datetime] = []
    stopped: list[bool] = []

    class Recording:
        @hookimpl
        def wftest_start_time_patch(self, now: dt.datetime) -> Any:
            started.append(now)

            class Patch:
                def move_to(self, when: dt.datetime) -> None:
                    pass

                def stop(self) -> None:
                    stopped.append(True)

            return Patch()

    engine = Engine()
    engine.hooks.register(Recording())
    follower = ActivityTimeFollowsClock(engine)
    engine.hooks.register(follower)
    try:
        _run(engine)
    finally:
        follower.close()
    assert started == [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 3)]
    assert stopped == [True, True]
