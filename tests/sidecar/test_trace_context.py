"""``StartInstance.parentTraceContext``: the caller's trace context reaches the history and the spans."""

from __future__ import annotations

from durabletask import client, task
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from wftest.sidecar import SidecarServer
from wftest.tracing import TracingPlugin

from ._support import running_worker


def greet(ctx: task.ActivityContext, name: str) -> str:
    return f"hello {name}"


def traced(ctx: task.OrchestrationContext, name: str) -> object:
    greeting = yield ctx.call_activity(greet, input=name)
    return greeting


def test_the_callers_trace_context_is_stored_in_execution_started(sidecar: SidecarServer,
                                                                  dt: client.TaskHubGrpcClient,
                                                                  provider: TracerProvider) -> None:
    with running_worker(sidecar.address, orchestrators=[traced], activities=[greet]):
        with provider.get_tracer("test").start_as_current_span("caller") as caller:
            iid = dt.schedule_new_orchestration(traced, input="ada")
        state = dt.wait_for_orchestration_completion(iid, timeout=30)

    assert state is not None and state.runtime_status == client.OrchestrationStatus.COMPLETED
    started = sidecar.engine.history(iid)[1].executionStarted
    context = caller.get_span_context()
    assert started.parentTraceContext.traceParent.split("-")[1] == f"{context.trace_id:032x}"


def test_the_orchestration_span_joins_the_callers_trace(sidecar: SidecarServer, dt: client.TaskHubGrpcClient,
                                                        provider: TracerProvider,
                                                        exporter: InMemorySpanExporter) -> None:
    sidecar.engine.hooks.register(TracingPlugin(tracer_provider=provider))
    with running_worker(sidecar.address, orchestrators=[traced], activities=[greet]):
        with provider.get_tracer("test").start_as_current_span("caller") as caller:
            iid = dt.schedule_new_orchestration(traced, input="ada")
        dt.wait_for_orchestration_completion(iid, timeout=30)

    spans = {s.name: s for s in exporter.get_finished_spans()}
    orchestration, activity = spans["orchestration||traced"], spans["activity||greet"]
    trace_id = caller.get_span_context().trace_id
    assert orchestration.context is not None and orchestration.context.trace_id == trace_id
    assert activity.context is not None and activity.context.trace_id == trace_id
    # the SDK's client made the creation span; wftest's plugin makes none of its own
    assert "create_orchestration||traced" not in spans


def test_an_instance_started_without_a_trace_context_has_none(sidecar: SidecarServer,
                                                              dt: client.TaskHubGrpcClient) -> None:
    with running_worker(sidecar.address, orchestrators=[traced], activities=[greet]):
        iid = dt.schedule_new_orchestration(traced, input="ada")
        dt.wait_for_orchestration_completion(iid, timeout=30)

    assert not sidecar.engine.history(iid)[1].executionStarted.HasField("parentTraceContext")
