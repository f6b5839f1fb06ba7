"""``schedule_new_orchestration(parent_trace_context=...)``: the creator's trace context goes into the history."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from wftest import Engine, OrchestrationContext
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.tracing import TracingPlugin

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = pb.TraceContext(traceParent=f"00-{TRACE_ID}-00f067aa0ba902b7-01", spanID="00f067aa0ba902b7")


def hello(ctx: OrchestrationContext, name: str) -> str:
    return f"hello {name}"


def test_the_given_trace_context_is_stored_in_execution_started() -> None:
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(hello, input="ada", parent_trace_context=CALLER)
    engine.client.wait_for_orchestration_completion(iid)

    assert engine.history(iid)[1].executionStarted.parentTraceContext == CALLER


def test_the_orchestration_span_is_a_child_of_the_given_context() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = Engine()
    engine.hooks.register(TracingPlugin(tracer_provider=provider))

    iid = engine.client.schedule_new_orchestration(hello, input="ada", parent_trace_context=CALLER)
    engine.client.wait_for_orchestration_completion(iid)

    spans = {s.name: s for s in exporter.get_finished_spans()}
    orchestration = spans["orchestration||hello"]
    assert orchestration.context is not None and f"{orchestration.context.trace_id:032x}" == TRACE_ID
    assert orchestration.parent is not None and f"{orchestration.parent.span_id:016x}" == "00f067aa0ba902b7"
    assert "create_orchestration||hello" not in spans  # the caller made that span
