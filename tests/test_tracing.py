"""OpenTelemetry tracing (wftest.tracing): spans as durabletask-go emits them, through the hooks only.

Every test exports to an in-memory exporter on a private TracerProvider (the global one is never set).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Generator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

from wftest import (
    Engine,
    OrchestrationContext,
    RetryPolicy,
    SqliteBackend,
    SystemClock,
    Task,
    TaskFailedError,
    WorkflowTester,
    when_all,
)
from wftest.engine import CrashDuringStep, Fault
from wftest.hooks import hookimpl
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.tracing import TracingPlugin

Gen = Generator[Task[Any], Any, Any]


# -- workflows ---------------------------------------------------------------------------------------

def greet(ctx: Any, name: str) -> str:
    return f"hello {name}"


def explode(ctx: Any, _: Any) -> None:
    raise ValueError("the gateway said no")


def sequence(ctx: OrchestrationContext, _: Any) -> Gen:
    out = []
    for name in ("a", "b", "c"):
        out.append((yield ctx.call_activity(greet, input=name)))
    return out


def fan_out(ctx: OrchestrationContext, n: int) -> Gen:
    return (yield when_all([ctx.call_activity(greet, input=str(i)) for i in range(n)]))


def nap(ctx: OrchestrationContext, _: Any) -> Gen:
    yield ctx.create_timer(timedelta(minutes=5))
    return "rested"


def child(ctx: OrchestrationContext, name: str) -> Gen:
    return (yield ctx.call_activity(greet, input=name))


def parent(ctx: OrchestrationContext, _: Any) -> Gen:
    first = yield ctx.call_activity(greet, input="parent")
    second = yield ctx.call_sub_orchestrator(child, input="child")
    return [first, second]


def fails(ctx: OrchestrationContext, _: Any) -> Gen:
    yield ctx.call_activity(explode)


def catches(ctx: OrchestrationContext, _: Any) -> Gen:
    try:
        yield ctx.call_activity(explode)
    except TaskFailedError:
        return "handled"


FLAKY_CALLS: list[int] = []


def flaky(ctx: Any, _: Any) -> str:
    FLAKY_CALLS.append(1)
    if len(FLAKY_CALLS) < 3:
        raise ConnectionError(f"attempt {len(FLAKY_CALLS)} failed")
    return "finally"


def retries(ctx: OrchestrationContext, _: Any) -> Gen:
    policy = RetryPolicy(first_retry_interval=timedelta(seconds=10), max_number_of_attempts=3)
    return (yield ctx.call_activity(flaky, retry_policy=policy))


def counts_down(ctx: OrchestrationContext, n: int) -> Gen:
    yield ctx.create_timer(timedelta(hours=1))
    if n > 1:
        ctx.continue_as_new(n - 1)
        return None
    return "done"


def loops_at_once(ctx: OrchestrationContext, n: int) -> Any:
    if n > 1:
        ctx.continue_as_new(n - 1)
        return None
    return "done"


def waits_for_approval(ctx: OrchestrationContext, _: Any) -> Gen:
    yield ctx.call_activity(greet, input="before")
    approved = yield ctx.wait_for_external_event("approval")
    yield ctx.call_activity(greet, input="after")
    return approved


# -- helpers -----------------------------------------------------------------------------------------

@pytest.fixture
def tester(provider: TracerProvider) -> WorkflowTester:
    traced = WorkflowTester()
    traced.hooks.register(TracingPlugin(tracer_provider=provider))
    return traced


@pytest.fixture(autouse=True)
def _reset_flaky() -> None:
    FLAKY_CALLS.clear()


def spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return list(exporter.get_finished_spans())


def named(found: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in found if s.name == name]


def one(found: list[ReadableSpan], name: str) -> ReadableSpan:
    matches = named(found, name)
    assert len(matches) == 1, f"expected one {name!r} span, got {[s.name for s in found]}"
    return matches[0]


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def attrs(item: Any) -> dict[str, Any]:
    """A span's (or span event's) attributes as a plain dict."""
    return dict(item.attributes or {})


def ns(event: pb.HistoryEvent) -> int:
    return event.timestamp.seconds * 1_000_000_000 + event.timestamp.nanos


def of_kind(history: list[pb.HistoryEvent], kind: str) -> list[pb.HistoryEvent]:
    return [e for e in history if e.WhichOneof("eventType") == kind]


def traceparent(span: ReadableSpan) -> str:
    assert span.context is not None
    context = span.context
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


# -- the spans of each pattern -----------------------------------------------------------------------

def test_sequence_emits_a_creation_an_orchestration_and_one_span_per_activity(
    tester: WorkflowTester, exporter: InMemorySpanExporter
) -> None:
    result = tester.run(sequence)

    found = spans(exporter)
    assert [s.name for s in found] == [
        "create_orchestration||sequence", "activity||greet", "activity||greet", "activity||greet",
        "orchestration||sequence",
    ]
    create, orchestration = found[0], found[-1]
    assert create.kind == SpanKind.CLIENT and orchestration.kind == SpanKind.SERVER
    assert attrs(create) == {
        "durabletask.type": "orchestration", "durabletask.task.name": "sequence",
        "durabletask.task.instance_id": result.instance_id,
    }
    assert attrs(orchestration) == {
        "durabletask.type": "orchestration", "durabletask.task.name": "sequence",
        "durabletask.task.instance_id": result.instance_id, "durabletask.runtime_status": "COMPLETED",
    }
    assert parent_id(orchestration) == span_id(create)
    scheduled = [e.eventId for e in of_kind(result.history, "taskScheduled")]
    for activity, task_id in zip(found[1:4], scheduled, strict=True):
        assert activity.kind == SpanKind.SERVER
        assert activity.status.status_code == StatusCode.UNSET
        assert parent_id(activity) == span_id(orchestration)
        assert attrs(activity) == {
            "durabletask.type": "activity", "durabletask.task.name": "greet",
            "durabletask.task.task_id": task_id, "durabletask.task.instance_id": result.instance_id,
        }
    assert len({trace_id(s) for s in found}) == 1


def test_fan_out_activities_are_siblings_under_the_orchestration(
    tester: WorkflowTester, exporter: InMemorySpanExporter
) -> None:
    result = tester.run(fan_out, input=5)

    found = spans(exporter)
    orchestration = one(found, "orchestration||fan_out")
    activities = named(found, "activity||greet")
    assert len(activities) == 5
    assert {parent_id(a) for a in activities} == {span_id(orchestration)}
    assert sorted(attrs(a)["durabletask.task.task_id"] for a in activities) == sorted(
        e.eventId for e in of_kind(result.history, "taskScheduled"))


def test_timer_span_runs_from_creation_to_firing(tester: WorkflowTester, exporter: InMemorySpanExporter) -> None:
    result = tester.run(nap)

    found = spans(exporter)
    timer, orchestration = one(found, "timer"), one(found, "orchestration||nap")
    created = of_kind(result.history, "timerCreated")[0]
    fired = of_kind(result.history, "timerFired")[0]
    assert timer.kind == SpanKind.INTERNAL
    assert parent_id(timer) == span_id(orchestration)
    assert attrs(timer) == {
        "durabletask.type": "timer", "durabletask.fire_at": "2024-01-01T00:05:00Z",
        "durabletask.task.task_id": created.eventId, "durabletask.task.instance_id": result.instance_id,
    }
    assert (timer.start_time, timer.end_time) == (ns(created), ns(fired))
    assert ns(fired) - ns(created) == 5 * 60 * 1_000_000_000


def test_sub_orchestration_span_is_a_child_of_the_parent_orchestration(
    tester: WorkflowTester, exporter: InMemorySpanExporter
) -> None:
    result = tester.run(parent)

    found = spans(exporter)
    parent_span, child_span = one(found, "orchestration||parent"), one(found, "orchestration||child")
    assert parent_id(child_span) == span_id(parent_span)
    assert len({trace_id(s) for s in found}) == 1
    by_instance = {attrs(s)["durabletask.task.instance_id"]: s for s in named(found, "activity||greet")}
    child_id = attrs(child_span)["durabletask.task.instance_id"]
    assert parent_id(by_instance[result.instance_id]) == span_id(parent_span)
    assert parent_id(by_instance[child_id]) == span_id(child_span)
    # the trace context travels in the history, as durabletask-go stores it
    created = of_kind(result.history, "subOrchestrationInstanceCreated")[0].subOrchestrationInstanceCreated
    assert created.parentTraceContext.traceParent == traceparent(parent_span)
    child_start = of_kind(result.engine.history(child_id), "executionStarted")[0].executionStarted
    assert child_start.parentTraceContext.traceParent == traceparent(parent_span)
    assert child_start.orchestrationSpanID.value == f"{span_id(child_span):016x}"


def test_failed_activity_span_has_error_status_and_the_exception(
    tester: WorkflowTester, exporter: InMemorySpanExporter
) -> None:
    tester.run(catches)

    found = spans(exporter)
    activity = one(found, "activity||explode")
    assert activity.status.status_code == StatusCode.ERROR
    assert activity.status.description == "the gateway said no"
    (exception,) = activity.events
    assert exception.name == "exception"
    assert attrs(exception)["exception.type"].endswith("ValueError")
    assert attrs(exception)["exception.message"] == "the gateway said no"
    orchestration = one(found, "orchestration||catches")
    assert orchestration.status.status_code == StatusCode.UNSET  # the orchestration handled it


def test_failed_orchestration_span_has_error_status_and_failed_runtime_status(
    tester: WorkflowTester, exporter: InMemorySpanExporter
) -> None:
    result = tester.run(fails)

    orchestration = one(spans(exporter), "orchestration||fails")
    assert result.status == "FAILED"
    assert orchestration.status.status_code == StatusCode.ERROR
    assert orchestration.status.description == result.failure_details.message  # type: ignore[union-attr]
    assert attrs(orchestration)["durabletask.runtime_status"] == "FAILED"


def test_retried_activity_has_one_span_per_attempt_and_a_timer_per_delay(
    tester: WorkflowTester, exporter: InMemorySpanExporter
) -> None:
    result = tester.run(retries)

    found = spans(exporter)
    attempts = named(found, "activity||flaky")
    assert result.output == "finally"
    assert [a.status.status_code for a in attempts] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]
    assert [a.status.description for a in attempts[:2]] == ["attempt 1 failed", "attempt 2 failed"]
    # durabletask-python's numbering reschedules a retried task under its first id: the spans tell the
    # attempts apart by their times, each from its own TaskScheduled
    assert [a.start_time for a in attempts] == [ns(e) for e in of_kind(result.history, "taskScheduled")]
    assert len(named(found, "timer")) == 2
    orchestration = one(found, "orchestration||retries")
    assert {parent_id(s) for s in found if s is not orchestration and s.kind != SpanKind.CLIENT} == {
        span_id(orchestration)}


def test_continue_as_new_emits_one_orchestration_span_per_execution(
    tester: WorkflowTester, exporter: InMemorySpanExporter
) -> None:
    tester.run(counts_down, input=3)

    found = spans(exporter)
    create = one(found, "create_orchestration||counts_down")
    executions = named(found, "orchestration||counts_down")
    assert [attrs(s)["durabletask.runtime_status"] for s in executions] == [
        "CONTINUED_AS_NEW", "CONTINUED_AS_NEW", "COMPLETED"]
    assert {parent_id(s) for s in executions} == {span_id(create)}  # durabletask-go keeps the parent
    assert len({span_id(s) for s in executions}) == 3
    timers = named(found, "timer")
    assert [parent_id(t) for t in timers] == [span_id(s) for s in executions]
    # each execution spans its hour: back to back in virtual time
    hour = 3600 * 1_000_000_000
    assert [s.end_time - s.start_time for s in executions] == [hour, hour, hour]  # type: ignore[operator]
    assert executions[0].end_time == executions[1].start_time


def test_continue_as_new_in_a_tight_loop_still_gets_a_span_per_execution(
    tester: WorkflowTester, exporter: InMemorySpanExporter
) -> None:
    tester.run(loops_at_once, input=4)

    executions = named(spans(exporter), "orchestration||loops_at_once")
    assert [attrs(s)["durabletask.runtime_status"] for s in executions] == [
        "CONTINUED_AS_NEW", "CONTINUED_AS_NEW", "CONTINUED_AS_NEW", "COMPLETED"]


def test_external_events_are_recorded_on_the_orchestration_span(
    tester: WorkflowTester, exporter: InMemorySpanExporter
) -> None:
    tester.at(timedelta(hours=2), lambda t: t.raise_event("approval", "yes"))
    result = tester.run(waits_for_approval)

    orchestration = one(spans(exporter), "orchestration||waits_for_approval")
    (received,) = orchestration.events
    assert received.name == "Received external event"
    assert attrs(received) == {"name": "approval", "size": len('"yes"')}
    assert received.timestamp == ns(of_kind(result.history, "eventRaised")[0])


def test_terminated_orchestration_span_says_terminated_without_an_error(
    tester: WorkflowTester, exporter: InMemorySpanExporter
) -> None:
    tester.start(waits_for_approval)
    tester.run_until(timedelta(minutes=1))
    tester.terminate("stop")
    tester.run_until()

    orchestration = one(spans(exporter), "orchestration||waits_for_approval")
    assert attrs(orchestration)["durabletask.runtime_status"] == "TERMINATED"
    assert orchestration.status.status_code == StatusCode.UNSET


# -- context propagation -----------------------------------------------------------------------------

def test_the_callers_active_span_is_the_parent_of_the_creation(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    engine = Engine()
    engine.hooks.register(TracingPlugin(tracer_provider=provider))
    with provider.get_tracer("app").start_as_current_span("handle request") as request:
        iid = engine.client.schedule_new_orchestration(sequence)
    engine.client.wait_for_orchestration_completion(iid)

    found = spans(exporter)
    create = one(found, "create_orchestration||sequence")
    orchestration = one(found, "orchestration||sequence")
    request_context = request.get_span_context()
    assert parent_id(create) == request_context.span_id
    assert parent_id(orchestration) == span_id(create)
    assert {trace_id(s) for s in found} == {request_context.trace_id}
    started = engine.history(iid)[1].executionStarted
    assert started.parentTraceContext.traceParent == traceparent(create)
    assert started.orchestrationSpanID.value == f"{span_id(orchestration):016x}"


def test_task_scheduled_events_carry_the_orchestration_span_context(
    tester: WorkflowTester, exporter: InMemorySpanExporter
) -> None:
    result = tester.run(sequence)

    orchestration = one(spans(exporter), "orchestration||sequence")
    contexts = {e.taskScheduled.parentTraceContext.traceParent for e in of_kind(result.history, "taskScheduled")}
    assert contexts == {traceparent(orchestration)}


def test_unsampled_creation_passes_no_context_and_emits_nothing(exporter: InMemorySpanExporter) -> None:
    sampled_out = TracerProvider(sampler=ALWAYS_OFF)
    sampled_out.add_span_processor(SimpleSpanProcessor(exporter))
    tester = WorkflowTester()
    tester.hooks.register(TracingPlugin(tracer_provider=sampled_out))

    result = tester.run(sequence)

    assert spans(exporter) == []
    assert not result.history[1].executionStarted.HasField("parentTraceContext")


# -- no duplicates on replays ------------------------------------------------------------------------

def test_replaying_every_step_emits_the_same_spans_as_a_warm_engine(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    def run(sticky: bool) -> Counter[str]:
        engine = Engine(sticky=sticky)
        engine.hooks.register(TracingPlugin(tracer_provider=provider))
        iid = engine.client.schedule_new_orchestration(parent)
        engine.client.wait_for_orchestration_completion(iid)
        found = Counter(s.name for s in spans(exporter))
        exporter.clear()
        return found

    warm, cold = run(sticky=True), run(sticky=False)

    assert cold == warm == Counter({"create_orchestration||parent": 1, "orchestration||parent": 1,
                                    "orchestration||child": 1, "activity||greet": 2})


def test_a_restarted_engine_completes_the_spans_of_the_first_without_duplicates(
    tmp_path: Path, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    path = tmp_path / "hub.db"

    def waits_then_works(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.call_activity(greet, input="before")
        yield ctx.create_timer(timedelta(hours=1))
        yield ctx.call_activity(greet, input="after")
        return "ok"

    first = Engine(backend=SqliteBackend(path))
    first.add_orchestrator(waits_then_works)
    first.hooks.register(TracingPlugin(tracer_provider=provider))
    iid = first.client.schedule_new_orchestration(waits_then_works)
    first.run_until_idle()  # the first activity ran; the timer is pending
    first.backend.close()  # type: ignore[attr-defined]
    before_restart = [s.name for s in spans(exporter)]

    second = Engine(backend=SqliteBackend(path))  # a new process: cold caches, a new plugin
    second.add_orchestrator(waits_then_works)
    second.hooks.register(TracingPlugin(tracer_provider=provider))
    second.advance(timedelta(hours=1))
    state = second.client.get_orchestration_state(iid)

    found = spans(exporter)
    assert state is not None and state.runtime_status == "COMPLETED"
    assert before_restart == ["create_orchestration||waits_then_works", "activity||greet"]
    assert [s.name for s in found] == [
        "create_orchestration||waits_then_works", "activity||greet", "timer", "activity||greet",
        "orchestration||waits_then_works"]
    orchestration = found[-1]
    assert {parent_id(s) for s in found[1:4]} == {span_id(orchestration)}
    assert len({trace_id(s) for s in found}) == 1
    second.backend.close()  # type: ignore[attr-defined]


def test_the_testers_replay_check_emits_nothing(tester: WorkflowTester, exporter: InMemorySpanExporter) -> None:
    assert tester.replay_check
    tester.run(parent)
    emitted = len(spans(exporter))

    tester.check_replay()

    assert emitted == 5
    assert len(spans(exporter)) == emitted


class _CrashFirstStepOf:
    """A scheduler that crashes the first step of every instance once (nothing of it is committed)."""

    def __init__(self) -> None:
        self.crashed: set[str] = set()

    def choose(self, point: str, options: Any) -> int:
        return 0

    def fault(self, kind: str, subject: str) -> Fault | None:
        if kind == "step" and subject not in self.crashed:
            self.crashed.add(subject)
            return CrashDuringStep()
        return None


def test_a_crashed_step_emits_nothing_and_its_retry_emits_once(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    engine = Engine(scheduler=_CrashFirstStepOf())
    engine.hooks.register(TracingPlugin(tracer_provider=provider))
    iid = engine.client.schedule_new_orchestration(parent)
    engine.client.wait_for_orchestration_completion(iid)

    assert Counter(s.name for s in spans(exporter)) == Counter({
        "create_orchestration||parent": 1, "orchestration||parent": 1, "orchestration||child": 1,
        "activity||greet": 2})


# -- span times are history times ----------------------------------------------------------------------

def test_span_times_are_the_history_timestamps_in_virtual_time(
    tester: WorkflowTester, exporter: InMemorySpanExporter
) -> None:
    tester.on_activity(greet).returns("mocked").after(timedelta(minutes=3)).any_times()

    def slow_steps(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.call_activity(greet, input="x")
        yield ctx.create_timer(timedelta(hours=2))
        yield ctx.call_activity(greet, input="y")
        return None

    result = tester.run(slow_steps)

    history = result.history
    found = spans(exporter)
    orchestration = one(found, "orchestration||slow_steps")
    completed = of_kind(history, "executionCompleted")[0]
    assert (orchestration.start_time, orchestration.end_time) == (ns(history[0]), ns(completed))
    results = {e.taskCompleted.taskScheduledId: e for e in of_kind(history, "taskCompleted")}
    for activity in named(found, "activity||greet"):
        task_id = attrs(activity)["durabletask.task.task_id"]
        scheduled = next(e for e in of_kind(history, "taskScheduled") if e.eventId == task_id)
        assert (activity.start_time, activity.end_time) == (ns(scheduled), ns(results[task_id]))
    create = one(found, "create_orchestration||slow_steps")
    assert create.start_time == create.end_time == ns(history[1])
    start = datetime(2024, 1, 1)
    assert orchestration.start_time == int((start - datetime(1970, 1, 1)).total_seconds()) * 1_000_000_000
    assert orchestration.end_time - orchestration.start_time >= 2 * 3600 * 1_000_000_000  # type: ignore[operator]


# -- off switches ------------------------------------------------------------------------------------------

def test_without_the_plugin_nothing_is_traced(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    engine = Engine()
    with provider.get_tracer("app").start_as_current_span("handle request"):
        iid = engine.client.schedule_new_orchestration(parent)
    engine.client.wait_for_orchestration_completion(iid)

    assert [s.name for s in spans(exporter)] == ["handle request"]
    for event in engine.history(iid):
        kind = event.WhichOneof("eventType")
        if kind in ("executionStarted", "taskScheduled", "subOrchestrationInstanceCreated"):
            assert not getattr(event, kind).HasField("parentTraceContext")


def test_without_opentelemetry_the_plugin_does_nothing_and_breaks_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in [m for m in sys.modules if m == "opentelemetry" or m.startswith("opentelemetry.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # "import opentelemetry" now fails
    plugin = TracingPlugin()
    tester = WorkflowTester()
    tester.hooks.register(plugin)

    result = tester.run(parent)

    assert not plugin.enabled
    assert "opentelemetry is not installed" in caplog.text
    assert result.status == "COMPLETED"
    assert not result.history[1].executionStarted.HasField("parentTraceContext")


def test_with_no_tracer_provider_set_nothing_is_traced() -> None:
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider), "a test set the global provider"
    tester = WorkflowTester()
    tester.hooks.register(TracingPlugin())

    result = tester.run(sequence)

    assert result.status == "COMPLETED"
    assert not result.history[1].executionStarted.HasField("parentTraceContext")


# -- the hooks themselves ------------------------------------------------------------------------------------

class _StepLog:
    def __init__(self) -> None:
        self.applied: list[str] = []
        self.committed: list[str] = []

    @hookimpl
    def wftest_client_starting(self, event: pb.HistoryEvent) -> None:
        event.executionStarted.tags["request-id"] = "r-42"

    @hookimpl
    def wftest_step_applied(self, instance_id: str, update: Any) -> None:
        self.applied.append(instance_id)
        for created in update.new_history:
            if created.HasField("taskScheduled"):
                created.taskScheduled.tags["request-id"] = "r-42"

    @hookimpl
    def wftest_step_committed(self, instance_id: str, update: Any) -> None:
        if update.new_history:
            self.committed.append(instance_id)


def test_hooks_let_a_plugin_propagate_tags_and_see_each_committed_step_once() -> None:
    log = _StepLog()
    engine = Engine(scheduler=_CrashFirstStepOf())
    engine.hooks.register(log)
    iid = engine.client.schedule_new_orchestration(sequence)
    engine.client.wait_for_orchestration_completion(iid)

    history = engine.history(iid)
    assert dict(history[1].executionStarted.tags) == {"request-id": "r-42"}
    assert all(dict(e.taskScheduled.tags) == {"request-id": "r-42"} for e in of_kind(history, "taskScheduled"))
    steps = len(of_kind(history, "orchestratorStarted"))
    assert log.committed == [iid] * steps
    assert log.applied == [iid] * (steps + 1)  # the crashed first step was applied, never committed



def test_a_real_clock_engine_with_worker_threads_emits_the_same_tree(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with Engine(clock=SystemClock()).start(activity_threads=2) as engine:
        engine.hooks.register(TracingPlugin(tracer_provider=provider))
        iid = engine.client.schedule_new_orchestration(parent)
        state = engine.client.wait_for_orchestration_completion(iid, timeout=30)

    found = spans(exporter)
    assert state.runtime_status == "COMPLETED"
    assert sorted(s.name for s in found) == sorted([
        "create_orchestration||parent", "activity||greet", "orchestration||child", "activity||greet",
        "orchestration||parent"])
    parent_span, child_span = one(found, "orchestration||parent"), one(found, "orchestration||child")
    assert parent_id(child_span) == span_id(parent_span)
    history = engine.history(iid)
    assert (parent_span.start_time, parent_span.end_time) == (
        ns(history[0]), ns(of_kind(history, "executionCompleted")[0]))
