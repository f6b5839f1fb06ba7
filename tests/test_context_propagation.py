"""Context propagation: request-scoped values travel from the client into orchestrations, activities and
sub-orchestrations in the events' tags, and replays read them from history (engine on both backends, tester,
Replayer)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from tests.conformance._support import Gen, of_kind
from wftest import (
    ActivityContext,
    ContextVarPropagator,
    CrashAfterActivity,
    CrashDuringStep,
    DuplicateEvent,
    Engine,
    MemoryBackend,
    OrchestrationContext,
    Replayer,
    RetryPolicy,
    SqliteBackend,
    SystemClock,
    WorkflowTester,
    when_all,
)
from wftest.hooks import Hooks, hookimpl
from wftest.strategies import Schedule, schedules

tenant: ContextVar[str] = ContextVar("tenant")
user: ContextVar[dict[str, Any] | None] = ContextVar("user", default=None)

#: what code saw, as (where, value): orchestrator code appends on every run, replays included
seen: list[tuple[str, Any]] = []


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    seen.clear()
    token = tenant.set("test-thread")  # whatever the caller's context holds must not leak into workflows
    yield
    tenant.reset(token)


def bill(ctx: ActivityContext, amount: int) -> str:
    seen.append(("bill", tenant.get(None)))
    return f"{tenant.get(None)} pays {amount} ({ctx.tags.get('tenant')})"


def child_work(ctx: ActivityContext, _: Any) -> str | None:
    seen.append(("child_work", tenant.get(None)))
    return tenant.get(None)


def child(ctx: OrchestrationContext, _: Any) -> Gen:
    seen.append(("child", tenant.get(None)))
    return (yield ctx.call_activity(child_work))


def order(ctx: OrchestrationContext, amount: int) -> Gen:
    seen.append(("order", tenant.get(None)))
    paid = yield ctx.call_activity(bill, input=amount)
    yield ctx.create_timer(timedelta(hours=1))
    from_child = yield ctx.call_sub_orchestrator(child)
    return {"paid": paid, "child": from_child, "tags": dict(ctx.tags)}


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    backend = MemoryBackend() if request.param == "memory" else SqliteBackend(tmp_path / "wf.db")
    engine = Engine(backend=backend)
    engine.hooks.register(ContextVarPropagator(tenant))
    return engine


def test_a_context_var_flows_from_the_client_to_the_orchestration_its_activities_and_children(engine: Engine) -> None:
    # given the caller's tenant when the instance is created
    tenant.set("acme")
    iid = engine.client.schedule_new_orchestration(order, input=12, instance_id="o1")
    # when the engine runs it from a context with another value
    tenant.set("worker-thread")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then every piece of code saw "acme"
    assert state.output == {"paid": "acme pays 12 (acme)", "child": "acme", "tags": {"tenant": "acme"}}
    assert {value for _, value in seen} == {"acme"}
    assert {where for where, _ in seen} == {"order", "bill", "child", "child_work"}
    # and the values are in the history's tags
    history = engine.history(iid)
    assert dict(of_kind(history, "executionStarted")[0].executionStarted.tags) == {"tenant": "acme"}
    assert dict(of_kind(history, "taskScheduled")[0].taskScheduled.tags) == {"tenant": "acme"}
    created = of_kind(history, "subOrchestrationInstanceCreated")[0].subOrchestrationInstanceCreated
    assert dict(created.tags) == {"tenant": "acme"}
    child_history = engine.history(created.instanceId)
    assert dict(of_kind(child_history, "executionStarted")[0].executionStarted.tags) == {"tenant": "acme"}
    assert dict(of_kind(child_history, "taskScheduled")[0].taskScheduled.tags) == {"tenant": "acme"}


def test_replays_read_the_value_from_history_not_from_the_current_context(tmp_path: Path) -> None:
    # given an engine that replays the whole history at every step, on sqlite
    engine = Engine(backend=SqliteBackend(tmp_path / "wf.db"), sticky=False)
    engine.hooks.register(ContextVarPropagator(tenant))
    tenant.set("acme")
    iid = engine.client.schedule_new_orchestration(order, input=1)
    # when the context changes between steps
    tenant.set("intruder")
    engine.run_until_idle()
    tenant.set("someone-else")
    engine.client.wait_for_orchestration_completion(iid)
    # then every run of the orchestrator code (four steps: 1 + 2 + 3 + 4 runs) saw "acme"
    order_runs = [value for where, value in seen if where == "order"]
    assert order_runs == ["acme"] * 4


def test_a_saved_history_replays_with_its_own_values(tmp_path: Path) -> None:
    # given a finished run under tenant "acme"
    tester = WorkflowTester()
    tester.hooks.register(ContextVarPropagator(tenant))
    tenant.set("acme")
    events = tester.run(order, input=2).history
    seen.clear()
    # when the history is replayed with the propagator while the current context says "other"
    tenant.set("other")
    hooks = Hooks()
    hooks.register(ContextVarPropagator(tenant))
    assert Replayer(tester.registry, hooks=hooks).replay(events).ok
    # then the code saw the recorded value
    assert seen == [("order", "acme")]


def test_the_tester_propagates_into_real_and_mocked_activities() -> None:
    # given a mock whose answer reads the context
    tester = WorkflowTester()
    tester.hooks.register(ContextVarPropagator(tenant))
    tester.on_activity(child_work).calls(lambda ctx, _: f"mocked for {tenant.get(None)} {dict(ctx.tags)}")
    tenant.set("globex")
    # when it runs
    result = tester.run(order, input=3)
    # then the real activity, the mock and the orchestrators saw "globex"
    assert result.output["paid"] == "globex pays 3 (globex)"
    assert result.output["child"] == "mocked for globex {'tenant': 'globex'}"
    assert {value for _, value in seen} == {"globex"}


def test_without_a_value_code_sees_the_default_not_the_workers_context() -> None:
    engine = Engine()
    engine.hooks.register(ContextVarPropagator(tenant))
    token = tenant.set(None)  # type: ignore[arg-type]  # no value at the client: nothing is injected
    iid = engine.client.schedule_new_orchestration(order, input=4)
    tenant.reset(token)  # the worker's context holds "test-thread"
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output["tags"] == {}
    assert {value for _, value in seen} == {None}


def test_tags_given_explicitly_win_over_propagated_values() -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        seen.append(("wf", tenant.get(None)))
        return (yield ctx.call_activity(bill, input=1, tags={"tenant": "explicit-activity"}))

    engine = Engine()
    engine.hooks.register(ContextVarPropagator(tenant))
    tenant.set("acme")
    iid = engine.client.schedule_new_orchestration(wf, tags={"tenant": "explicit-start", "team": "shop"})
    assert engine.client.wait_for_orchestration_completion(iid).output == "explicit-activity pays 1 (explicit-activity)"
    assert seen == [("wf", "explicit-start"), ("bill", "explicit-activity")]
    started = of_kind(engine.history(iid), "executionStarted")[0].executionStarted
    assert dict(started.tags) == {"tenant": "explicit-start", "team": "shop"}


def test_orchestrator_code_may_set_another_value_for_what_it_schedules() -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        token = tenant.set("subsidiary")
        try:
            task = ctx.call_sub_orchestrator(child, tags={"purpose": "audit"})
        finally:
            tenant.reset(token)
        return [(yield task), dict(ctx.tags)]

    tester = WorkflowTester()
    tester.hooks.register(ContextVarPropagator(tenant))
    tenant.set("acme")
    assert tester.run(wf).output == ["subsidiary", {"tenant": "acme"}]
    child_id = of_kind(tester.last_result.history, "subOrchestrationInstanceCreated")[0] \
        .subOrchestrationInstanceCreated.instanceId  # type: ignore[union-attr]
    started = of_kind(tester.engine.history(child_id), "executionStarted")[0].executionStarted
    assert dict(started.tags) == {"tenant": "subsidiary", "purpose": "audit"}


def test_structured_values_travel_with_serialize_and_deserialize() -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        return (yield ctx.call_activity(whoami))

    def whoami(ctx: ActivityContext, _: Any) -> Any:
        return user.get()

    tester = WorkflowTester()
    tester.hooks.register(ContextVarPropagator(user, "user", serialize=json.dumps, deserialize=json.loads))
    user.set({"id": 7, "roles": ["admin"]})
    try:
        result = tester.run(wf)
    finally:
        user.set(None)
    assert result.output == {"id": 7, "roles": ["admin"]}
    assert dict(result.history[1].executionStarted.tags) == {"user": '{"id": 7, "roles": ["admin"]}'}


def test_a_value_that_is_not_a_string_needs_a_serializer() -> None:
    engine = Engine()
    engine.hooks.register(ContextVarPropagator(user))
    user.set({"id": 1})
    try:
        with pytest.raises(TypeError, match=r"ContextVarPropagator\('user'\): the value .* is a dict, not a str; "
                                            "pass serialize= and deserialize="):
            engine.client.schedule_new_orchestration(order, input=1)
    finally:
        user.set(None)


def test_two_propagators_carry_two_values() -> None:
    request_id: ContextVar[str] = ContextVar("request_id")

    def act(ctx: ActivityContext, _: Any) -> list[str | None]:
        return [tenant.get(None), request_id.get(None)]

    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        return (yield ctx.call_activity(act))

    tester = WorkflowTester()
    tester.hooks.register(ContextVarPropagator(tenant))
    tester.hooks.register(ContextVarPropagator(request_id, "x-request-id"))
    tenant.set("acme")
    request_id.set("req-1")
    assert tester.run(wf).output == ["acme", "req-1"]


def test_continue_as_new_keeps_the_tags() -> None:
    def looping(ctx: OrchestrationContext, n: int) -> Gen:
        seen.append(("looping", tenant.get(None)))
        yield ctx.create_timer(timedelta(minutes=1))
        if n < 2:
            ctx.continue_as_new(n + 1)
            return None
        return dict(ctx.tags)

    tester = WorkflowTester()
    tester.hooks.register(ContextVarPropagator(tenant))
    tenant.set("acme")
    assert tester.run(looping, input=0).output == {"tenant": "acme"}
    assert {value for _, value in seen} == {"acme"}


def test_a_retried_activity_keeps_its_tags_after_a_cold_replay() -> None:
    attempts: list[str | None] = []

    def flaky(ctx: ActivityContext, _: Any) -> str:
        attempts.append(tenant.get(None))
        if len(attempts) == 1:
            raise ConnectionError("first attempt fails")
        return "ok"

    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        return (yield ctx.call_activity(flaky, retry_policy=RetryPolicy(first_retry_interval=timedelta(seconds=5))))

    engine = Engine(sticky=False)  # the retry is scheduled by a step that replayed the first attempt
    engine.hooks.register(ContextVarPropagator(tenant))
    tenant.set("acme")
    iid = engine.client.schedule_new_orchestration(wf)
    assert engine.client.wait_for_orchestration_completion(iid).output == "ok"
    assert attempts == ["acme", "acme"]
    assert [dict(e.taskScheduled.tags) for e in of_kind(engine.history(iid), "taskScheduled")] == [
        {"tenant": "acme"}, {"tenant": "acme"}]


def test_sqlite_keeps_the_tags_of_queued_activities_across_a_restart(tmp_path: Path) -> None:
    # given an instance whose first step ran (its activity is queued in the file) when the process stops
    path = tmp_path / "wf.db"
    first = Engine(backend=SqliteBackend(path))
    first.hooks.register(ContextVarPropagator(tenant))
    tenant.set("acme")
    iid = first.client.schedule_new_orchestration(order, input=8, instance_id="o8")
    assert first.run_until_idle(limit=1) == 1
    first.backend.close()  # type: ignore[attr-defined]
    # when another engine on the same file runs it on, from a context with another value
    tenant.set("restarted")
    second = Engine(backend=SqliteBackend(path), registry=first.registry)
    second.hooks.register(ContextVarPropagator(tenant))
    state = second.client.wait_for_orchestration_completion(iid)
    # then the queued activity got the recorded value
    assert state.output["paid"] == "acme pays 8 (acme)"


class RequestIdTags:
    """A plugin that tags activities in ``wftest_step_applied`` (the docs/tracing.md pattern)."""

    @hookimpl
    def wftest_step_applied(self, events: Any, update: Any, load_history: Any) -> None:
        for event in update.new_history:
            if event.HasField("taskScheduled"):
                event.taskScheduled.tags["request-id"] = "r-42"


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_tags_added_by_a_step_hook_reach_the_activity(backend: str, tmp_path: Path) -> None:
    def act(ctx: ActivityContext, _: Any) -> dict[str, str]:
        return dict(ctx.tags)

    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        return (yield ctx.call_activity(act))

    engine = Engine(backend=MemoryBackend() if backend == "memory" else SqliteBackend(tmp_path / "wf.db"))
    engine.hooks.register(RequestIdTags())
    iid = engine.client.schedule_new_orchestration(wf)
    assert engine.client.wait_for_orchestration_completion(iid).output == {"request-id": "r-42"}


def test_ctx_tags_are_read_only_and_come_from_execution_started() -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> dict[str, str]:
        with pytest.raises(TypeError):
            ctx.tags["x"] = "y"  # type: ignore[index]
        return dict(ctx.tags)

    engine = Engine()  # no propagator: tags given to the client are there all the same
    iid = engine.client.schedule_new_orchestration(wf, tags={"team": "shop"})
    assert engine.client.wait_for_orchestration_completion(iid).output == {"team": "shop"}


def test_the_propagator_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match=r"takes a contextvars\.ContextVar, got str"):
        ContextVarPropagator("tenant")  # type: ignore[arg-type]
    assert ContextVarPropagator(tenant).key == "tenant"
    assert ContextVarPropagator(user).default is None
    assert repr(ContextVarPropagator(tenant, "t")) == "ContextVarPropagator('tenant', key='t')"


def fan_out(ctx: OrchestrationContext, _: Any) -> Gen:
    seen.append(("fan_out", tenant.get(None)))
    results = yield when_all([ctx.call_activity(bill, input=n) for n in range(3)] + [ctx.call_sub_orchestrator(child)])
    return results


@settings(max_examples=40, database=None, derandomize=True, deadline=None)
@given(schedule=schedules(faults=[CrashAfterActivity(), CrashDuringStep(), DuplicateEvent()]))
def test_every_schedule_with_crashes_sees_the_recorded_value(schedule: Schedule) -> None:
    # given any order of work, with crashes (cold replays) and duplicated events
    seen.clear()
    tester = WorkflowTester()
    tester.hooks.register(ContextVarPropagator(tenant))
    tenant.set("acme")
    # when it runs
    result = tester.run(fan_out, schedule=schedule)
    # then every piece of code, however often it ran, saw the value of the client's context
    assert result.status == "COMPLETED"
    assert {value for _, value in seen} == {"acme"}


def test_worker_threads_get_the_value_from_the_history() -> None:
    # given an engine with real worker threads (their contexts never saw the client's value)
    def wf(ctx: OrchestrationContext, amount: int) -> Gen:
        return [tenant.get(None), (yield ctx.call_activity(bill, input=amount))]

    with Engine(clock=SystemClock()) as engine:
        engine.hooks.register(ContextVarPropagator(tenant))
        engine.start(activity_threads=2)
        tenant.set("initech")
        iid = engine.client.schedule_new_orchestration(wf, input=5)
        state = engine.client.wait_for_orchestration_completion(iid, timeout=30)
    assert state.output == ["initech", "initech pays 5 (initech)"]
