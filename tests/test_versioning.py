"""ctx.is_patched / ctx.deprecate_patch semantics (Temporal's ``patched``)."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

from wftest import Engine, OrchestrationContext, Registry, Task, WorkflowTester

Gen = Generator[Task[Any], Any, Any]
def old(ctx: OrchestrationContext, _: Any) -> Gen:
    yield ctx.create_timer(timedelta(hours=1))
    yield ctx.create_timer(timedelta(hours=1))
    return "old"


def new(ctx: OrchestrationContext, _: Any) -> Gen:
    yield ctx.create_timer(timedelta(hours=1))
    first = ctx.is_patched("p")
    yield ctx.create_timer(timedelta(hours=1))
    second = ctx.is_patched("p")
    return [first, second]


def _engine(fn: Any) -> Engine:
    registry = Registry()
    registry.add_named_orchestrator("wf", fn)
    return Engine(registry=registry)


def test_new_execution_is_patched_and_records_one_marker() -> None:
    result = WorkflowTester(registry=_engine(new).registry).run("wf")
    assert result.output == [True, True]
    assert sum(e.HasField("genericEvent") for e in result.history) == 1


def test_history_without_the_marker_replays_as_unpatched() -> None:
    engine = _engine(old)
    iid = engine.client.schedule_new_orchestration("wf")
    engine.advance(timedelta(minutes=90))  # past the first timer: the new code asks is_patched on replay
    executor = _engine(new).new_executor(iid)
    executor.execute(engine.history(iid), [])
    assert executor.ctx._patch_decisions == {"p": False}


def test_answer_is_fixed_for_the_execution_even_after_replay_ends() -> None:
    deployed = {"code": old}

    def wf(ctx: OrchestrationContext, value: Any) -> Any:
        return deployed["code"](ctx, value)

    engine = _engine(wf)
    engine.sticky = False
    iid = engine.client.schedule_new_orchestration("wf")
    engine.advance(timedelta(minutes=90))  # the old code passed the first timer
    deployed["code"] = new
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == [False, False]


def test_deprecate_patch_accepts_histories_with_and_without_the_marker() -> None:
    def cleaned(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.create_timer(timedelta(hours=1))
        ctx.deprecate_patch("p")
        yield ctx.create_timer(timedelta(hours=1))
        return "clean"

    for writer in (old, new):
        engine = _engine(writer)
        iid = engine.client.schedule_new_orchestration("wf")
        engine.advance(timedelta(minutes=90))  # mid-flight, past the point where the new code asked
        executor = _engine(cleaned).new_executor(iid)
        result = executor.execute(engine.history(iid), [])  # replays without error
        assert result.actions == []
