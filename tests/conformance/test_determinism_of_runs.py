"""The same workflow on fresh engines writes byte-identical histories."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from wftest import (
    ActivityContext,
    Engine,
    OrchestrationContext,
    RetryPolicy,
    TaskFailedError,
    when_all,
    when_any,
)

from ._support import Gen


def work(ctx: ActivityContext, value: int) -> int:
    return value * 3


def sometimes_fails(ctx: ActivityContext, value: int) -> int:
    if value < 0:
        raise ValueError("negative")
    return value


def helper_child(ctx: OrchestrationContext, value: int) -> Gen:
    yield ctx.create_timer(timedelta(minutes=value))
    doubled = yield ctx.call_activity(work, input=value)
    return doubled


def busy_workflow(ctx: OrchestrationContext, n: int) -> Gen:
    ctx.set_custom_status({"phase": "start"})
    token = ctx.new_uuid()
    fanned = yield when_all([ctx.call_activity(work, input=i) for i in range(n)])
    children = yield when_all([ctx.call_sub_orchestrator(helper_child, input=i + 1) for i in range(2)])
    yield ctx.create_timer(timedelta(days=7))  # split into 3-day chunks
    try:
        yield ctx.call_activity(sometimes_fails, input=-1,
                                retry_policy=RetryPolicy(first_retry_interval=timedelta(seconds=2),
                                                         backoff_coefficient=2, max_number_of_attempts=3))
    except TaskFailedError:
        pass
    approval = ctx.wait_for_external_event("approval")
    winner = yield when_any([approval, ctx.create_timer(timedelta(hours=1))])
    ctx.send_event(ctx.instance_id, "self-note", data=token)
    note = yield ctx.wait_for_external_event("self-note")
    ctx.set_custom_status({"phase": "done"})
    if n < 6:
        ctx.continue_as_new(n + 3, save_events=True)
        return None
    return {"fanned": fanned, "children": children, "approved": winner is approval, "note": note}


def run_once() -> tuple[list[bytes], dict[str, Any]]:
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(busy_workflow, input=3, instance_id="det")
    engine.advance(timedelta(minutes=30))
    engine.client.raise_orchestration_event(iid, "approval", data=True)
    state = engine.client.wait_for_orchestration_completion(iid)
    events = [e.SerializeToString(deterministic=True) for e in engine.history(iid)]
    children = {
        child: [e.SerializeToString(deterministic=True) for e in engine.history(child)]
        for child in ("det:0007", "det:0008")
    }
    return events, {"output": state.output, "children": children, "status": state.runtime_status,
                    "custom": state.serialized_custom_status, "now": engine.clock.now()}


def test_two_runs_on_fresh_engines_write_byte_identical_histories() -> None:
    # given the same workflow (activities, children, long timers, retries, events, continue-as-new)
    # when it runs twice on fresh engines
    first_events, first = run_once()
    second_events, second = run_once()
    # then every history event serializes to the same bytes, and the outcomes agree
    assert len(first_events) == len(second_events) > 10
    for index, (a, b) in enumerate(zip(first_events, second_events, strict=True)):
        assert a == b, f"history event #{index} differs"
    assert first == second
    assert first["output"]["fanned"] == [i * 3 for i in range(6)]


def test_two_runs_on_stateless_and_sticky_engines_write_identical_histories() -> None:
    # given the same workflow run on a sticky engine and on a stateless (full replay every step) engine
    def run(sticky: bool) -> list[bytes]:
        engine = Engine(sticky=sticky)
        iid = engine.client.schedule_new_orchestration(busy_workflow, input=3, instance_id="det")
        engine.advance(timedelta(minutes=30))
        engine.client.raise_orchestration_event(iid, "approval", data=True)
        engine.client.wait_for_orchestration_completion(iid)
        return [e.SerializeToString(deterministic=True) for e in engine.history(iid)]

    # then the histories are byte-identical
    assert run(sticky=True) == run(sticky=False)
