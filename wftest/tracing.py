"""OpenTelemetry spans for orchestrations, activities and timers, as durabletask-go emits them (extra ``otel``).

Register :class:`TracingPlugin` on an engine or a tester; it works through the hooks of
:mod:`wftest.hooks` and nothing else::

    from opentelemetry.sdk.trace import TracerProvider
    from wftest.tracing import TracingPlugin

    engine.hooks.register(TracingPlugin(tracer_provider=provider))   # or tester.hooks.register(...)

Spans (names, kinds and attributes follow durabletask-go's ``internal/helpers/tracing.go``)::

    create_orchestration||{name}   CLIENT    the client created the instance (child of the caller's span)
    orchestration||{name}          SERVER    one execution, from its first event to its completion
      activity||{name}             SERVER    TaskScheduled -> TaskCompleted / TaskFailed (error status)
      timer                        INTERNAL  TimerCreated -> TimerFired
      orchestration||{child}       SERVER    a sub-orchestration's execution

Each span starts and ends at the timestamps of its history events (virtual time in tests), and is
emitted once, when the step that completes it is committed. The trace context travels in the history,
as durabletask-go stores it: ``ExecutionStarted.parentTraceContext`` (the creator's span) and
``orchestrationSpanID`` (the id the execution's span will have), ``TaskScheduled.parentTraceContext``
and ``SubOrchestrationInstanceCreated.parentTraceContext`` (the orchestration's span). So a replay (a
cold cache, a restart, the tester's replay check) never emits anything, and a span completed after a
restart still has the right parent.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wftest.hooks import hookimpl
from wftest.protos import orchestrator_service_pb2 as pb

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer, TracerProvider

    from wftest.runtime import StepUpdate

__all__ = ["TracingPlugin"]

logger = logging.getLogger("wftest.tracing")

_SCOPE = "wftest"
_STATUS_NAMES: dict[int, str] = {
    pb.ORCHESTRATION_STATUS_COMPLETED: "COMPLETED",
    pb.ORCHESTRATION_STATUS_FAILED: "FAILED",
    pb.ORCHESTRATION_STATUS_TERMINATED: "TERMINATED",
    pb.ORCHESTRATION_STATUS_CANCELED: "CANCELED",
    pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW: "CONTINUED_AS_NEW",
}

# span kinds by name, resolved to opentelemetry's SpanKind when a span is made
_CLIENT, _SERVER, _INTERNAL = "CLIENT", "SERVER", "INTERNAL"


@dataclass(frozen=True)
class _Context:
    """A W3C trace context: what ``TraceContext.traceParent`` (+ ``traceState``) holds."""

    trace_id: int
    span_id: int
    flags: int
    state: str | None = None

    @property
    def sampled(self) -> bool:
        return bool(self.flags & 1)

    def write(self, target: pb.TraceContext) -> None:
        target.traceParent = f"00-{self.trace_id:032x}-{self.span_id:016x}-{self.flags:02x}"
        if self.state:
            target.traceState.value = self.state

    @classmethod
    def read(cls, source: pb.TraceContext) -> _Context | None:
        """Parse ``00-<trace id>-<span id>-<flags>``, or the older form (trace id and ``spanID`` apart)."""
        parts = source.traceParent.split("-")
        try:
            if len(parts) == 4:
                trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
            else:
                trace_id, span_id, flags = int(source.traceParent, 16), int(source.spanID, 16), 1
        except ValueError:
            return None
        if not trace_id or not span_id:
            return None
        return cls(trace_id, span_id, flags, source.traceState.value if source.HasField("traceState") else None)


def _ns(event: pb.HistoryEvent) -> int:
    return event.timestamp.seconds * 1_000_000_000 + event.timestamp.nanos


def _span_name(kind: str, name: str, version: str) -> str:
    return f"{kind}||{name}||{version}" if version else f"{kind}||{name}"


def _orchestration_span_id(parent: _Context, started: pb.ExecutionStartedEvent) -> int:
    """The span id of an execution: the stored ``orchestrationSpanID``, or one derived from the execution.

    durabletask-go stores a random id on the first step; wftest stores one when it creates the event,
    derived from the trace, instance and execution ids, so an ``ExecutionStarted`` written without it
    (before the plugin was registered, or by another producer) still gets the same id on every replay.
    """
    if started.HasField("orchestrationSpanID"):
        with contextlib.suppress(ValueError):
            span_id = int(started.orchestrationSpanID.value, 16)
            if span_id:
                return span_id
    key = f"{parent.trace_id:032x}|{started.orchestrationInstance.instanceId}|" \
          f"{started.orchestrationInstance.executionId.value}"
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") or 1


def _stamp_start(started: pb.ExecutionStartedEvent, parent: _Context) -> None:
    """Give an ``ExecutionStarted`` its parent trace context and orchestration span id (unless it has them)."""
    if not started.HasField("parentTraceContext"):
        parent.write(started.parentTraceContext)
    if not started.HasField("orchestrationSpanID"):
        started.orchestrationSpanID.value = f"{_orchestration_span_id(parent, started):016x}"


@dataclass
class _Span:
    """A finished span waiting for its step to be committed."""

    name: str
    kind: str
    parent: _Context
    start: int
    end: int
    attributes: dict[str, Any]
    span_id: int | None = None  # forced (orchestration spans), else the provider's generator picks one
    error: str | None = None
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)


@dataclass
class _Scheduled:
    name: str
    version: str
    at: int
    parent: _Context | None


@dataclass
class _Execution:
    """What the plugin knows of an instance's current execution (rebuilt from history when unknown)."""

    instance_id: str
    name: str
    version: str
    first: int  # timestamp of the execution's first event, in ns
    parent: _Context | None  # ExecutionStarted.parentTraceContext; None: the instance is not traced
    span_id: int
    tasks: dict[int, _Scheduled] = field(default_factory=dict)
    timers: dict[int, int] = field(default_factory=dict)
    notes: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    done: bool = False
    length: int = 0  # history events this state reflects

    @classmethod
    def start(cls, instance_id: str, first: pb.HistoryEvent, started: pb.ExecutionStartedEvent) -> _Execution:
        parent = _Context.read(started.parentTraceContext) if started.HasField("parentTraceContext") else None
        return cls(instance_id, started.name, started.version.value, _ns(first), parent,
                   _orchestration_span_id(parent, started) if parent is not None else 0)

    @property
    def context(self) -> _Context | None:
        """The context of this execution's span (the parent of its activities, timers and children)."""
        parent = self.parent
        return None if parent is None else _Context(parent.trace_id, self.span_id, parent.flags, parent.state)

    def copy(self) -> _Execution:
        clone = _Execution(**self.__dict__)
        clone.tasks, clone.timers, clone.notes = dict(self.tasks), dict(self.timers), list(self.notes)
        return clone

    def span(self, end: int, status: int, failure: pb.TaskFailureDetails | None) -> _Span | None:
        if self.parent is None:
            return None
        attributes: dict[str, Any] = {
            "durabletask.type": "orchestration",
            "durabletask.task.name": self.name,
            "durabletask.task.instance_id": self.instance_id,
        }
        if self.version:
            attributes["durabletask.task.version"] = self.version
        attributes["durabletask.runtime_status"] = _STATUS_NAMES.get(status, str(status))
        error = None
        if status == pb.ORCHESTRATION_STATUS_FAILED:
            error = failure.errorMessage if failure is not None else ""
        return _Span(_span_name("orchestration", self.name, self.version), _SERVER, self.parent, self.first, end,
                     attributes, span_id=self.span_id, error=error, events=list(self.notes))


@dataclass
class _Pending:
    """The spans and state of a step that is not committed yet."""

    update: StepUpdate
    history_length: int
    spans: list[_Span]
    state: _Execution | None


class _ForcedSpanIds:
    """Wraps a tracer's id generator so that the next span on this thread gets a chosen id.

    An orchestration's span is emitted when the execution completes, but its activities and children
    were emitted earlier as its children: it must carry the id they point at. durabletask-go overwrites
    the span context of its span; with the OpenTelemetry SDK the id generator is the place for it.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.local = threading.local()

    def generate_span_id(self) -> int:
        forced: int | None = getattr(self.local, "span_id", None)
        if forced is not None:
            self.local.span_id = None
            return forced
        return int(self.inner.generate_span_id())

    def generate_trace_id(self) -> int:
        return int(self.inner.generate_trace_id())

    def __getattr__(self, name: str) -> Any:  # is_trace_id_random() and whatever later SDKs add
        return getattr(self.inner, name)

    @contextlib.contextmanager
    def forcing(self, span_id: int | None) -> Iterator[None]:
        self.local.span_id = span_id
        try:
            yield
        finally:
            self.local.span_id = None


class TracingPlugin:
    """A :mod:`wftest.hooks` plugin that emits OpenTelemetry spans as durabletask-go does.

    Args:
        tracer_provider: where spans go; None uses the global provider
            (``opentelemetry.trace.set_tracer_provider``), looked up when spans are made.

    Needs the ``otel`` extra (``pip install 'wftest[otel]'``). Without opentelemetry installed the plugin
    does nothing (and logs that once), so registering it never breaks a run. Orchestration spans keep
    the id that their children point at through the OpenTelemetry SDK's id generator; with another
    provider they get an id of its choosing.

    Example::

        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tester = WorkflowTester()
        tester.hooks.register(TracingPlugin(tracer_provider=provider))
        tester.run(order_workflow, input={"sku": "A1"})
        names = [s.name for s in exporter.get_finished_spans()]
        # ['create_orchestration||order_workflow', 'activity||charge', 'orchestration||order_workflow']

    Instances created while the plugin was not registered have no trace context and get no spans (as
    in durabletask-go), nor does an activity whose result arrives after its orchestration finished.
    """

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        try:
            from opentelemetry import trace
        except ImportError:
            logger.warning("wftest.tracing: opentelemetry is not installed (pip install 'wftest[otel]'); "
                           "no spans will be emitted")
            self._api: Any = None
        else:
            self._api = trace
        self._provider = tracer_provider
        self._tracer_for: tuple[object, Tracer, _ForcedSpanIds | None] | None = None
        self._lock = threading.Lock()
        self._executions: dict[str, _Execution] = {}
        self._pending: dict[str, _Pending] = {}

    @property
    def enabled(self) -> bool:
        """False when opentelemetry is not installed (the plugin then does nothing)."""
        return self._api is not None

    # -- hooks --------------------------------------------------------------------------------------

    @hookimpl
    def wftest_client_starting(self, event: pb.HistoryEvent) -> None:
        """Emit ``create_orchestration||{name}`` (a child of the caller's active span) and put its context
        into the ``ExecutionStarted``, so the orchestration's span becomes its child."""
        started = event.executionStarted
        if self._api is None or started.HasField("parentTraceContext"):
            return
        try:
            resolved = self._tracer()
            if resolved is None:
                return
            tracer, _ = resolved
            trace = self._api
            at = _ns(event)
            instance_id = started.orchestrationInstance.instanceId
            attributes: dict[str, Any] = {
                "durabletask.type": "orchestration",
                "durabletask.task.name": started.name,
                "durabletask.task.instance_id": instance_id,
            }
            if started.version.value:
                attributes["durabletask.task.version"] = started.version.value
            span = tracer.start_span(_span_name("create_orchestration", started.name, started.version.value),
                                     kind=trace.SpanKind.CLIENT, attributes=attributes, start_time=at)
            context = span.get_span_context()
            if context.is_valid and context.trace_flags.sampled:
                # as durabletask-go: only a sampled creation passes its context on (parent-based sampling)
                state = context.trace_state.to_header() if context.trace_state else None
                _stamp_start(started, _Context(context.trace_id, context.span_id, int(context.trace_flags), state))
            span.end(end_time=at)
        except Exception:
            logger.exception("wftest.tracing: could not trace the creation of an instance")

    @hookimpl
    def wftest_step_applied(self, instance_id: str, events: list[pb.HistoryEvent], update: StepUpdate,
                            history_length: int, load_history: Callable[[], list[pb.HistoryEvent]]) -> None:
        """Pass the orchestration's context on to what the step created; note the spans it completes."""
        if self._api is None:
            return
        try:
            with self._lock:
                pending = self._pending.get(instance_id)
            # the next execution of a continue-as-new, run in the same work item as the previous one
            continuing = (pending is not None and pending.update.replace_history and bool(events)
                          and bool(pending.update.new_history) and events[0] is pending.update.new_history[0])
            state = self._state(instance_id, events, history_length, load_history)
            spans: list[_Span] = []
            state = _apply(state, events, update, spans)
            with self._lock:
                if continuing and pending is not None:
                    pending.update, pending.state = update, state
                    pending.spans.extend(spans)
                else:
                    self._pending[instance_id] = _Pending(update, history_length, spans, state)
        except Exception:
            with self._lock:
                self._pending.pop(instance_id, None)
            logger.exception("wftest.tracing: could not trace a step of %r", instance_id)

    @hookimpl
    def wftest_step_committed(self, instance_id: str, update: StepUpdate) -> None:
        """Emit the spans the committed step completed."""
        if self._api is None:
            return
        with self._lock:
            pending = self._pending.pop(instance_id, None)
            if pending is None or pending.update is not update:
                return  # a step that changed nothing, or (defensively) one this plugin did not see
            state = pending.state
            if state is None or state.done:
                self._executions.pop(instance_id, None)
            else:
                state.length = len(update.new_history) + (0 if update.replace_history else pending.history_length)
                self._executions[instance_id] = state
        if not pending.spans:
            return
        try:
            resolved = self._tracer()
            if resolved is None:
                return
            for span in pending.spans:
                self._emit(resolved, span)
        except Exception:
            logger.exception("wftest.tracing: could not emit the spans of a step of %r", instance_id)

    # -- internals ----------------------------------------------------------------------------------

    def _state(self, instance_id: str, events: list[pb.HistoryEvent], history_length: int,
               load_history: Callable[[], list[pb.HistoryEvent]]) -> _Execution | None:
        """The execution the step belongs to (a copy the step may change)."""
        for event in events:
            if event.HasField("executionStarted"):
                return _Execution.start(instance_id, events[0], event.executionStarted)
        with self._lock:
            known = self._executions.get(instance_id)
        if known is not None and known.length == history_length:
            return known.copy()
        return _rebuild(instance_id, load_history())

    def _tracer(self) -> tuple[Tracer, _ForcedSpanIds | None] | None:
        trace = self._api
        provider = self._provider if self._provider is not None else trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider):
            return None  # no provider set: nothing would be recorded
        cached = self._tracer_for
        if cached is not None and cached[0] is provider:
            return cached[1], cached[2]
        from wftest import __version__

        tracer = provider.get_tracer(_SCOPE, __version__)
        ids: _ForcedSpanIds | None = None
        with self._lock:
            inner = getattr(tracer, "id_generator", None)
            if isinstance(inner, _ForcedSpanIds):
                ids = inner
            elif inner is not None:
                ids = _ForcedSpanIds(inner)
                setattr(tracer, "id_generator", ids)  # noqa: B010 (an SDK attribute the API type lacks)
            self._tracer_for = (provider, tracer, ids)
        return tracer, ids

    def _emit(self, resolved: tuple[Tracer, _ForcedSpanIds | None], record: _Span) -> None:
        tracer, ids = resolved
        trace = self._api
        parent = record.parent
        parent_context = trace.SpanContext(
            parent.trace_id, parent.span_id, is_remote=True, trace_flags=trace.TraceFlags(parent.flags),
            trace_state=trace.TraceState.from_header([parent.state]) if parent.state else None,
        )
        context = trace.set_span_in_context(trace.NonRecordingSpan(parent_context))
        kind = getattr(trace.SpanKind, record.kind)
        forcing = ids.forcing(record.span_id) if ids is not None else contextlib.nullcontext()
        with forcing:
            span = tracer.start_span(record.name, context=context, kind=kind, attributes=record.attributes,
                                     start_time=record.start)
        for name, at, attributes in record.events:
            span.add_event(name, attributes, timestamp=at)
        if record.error is not None:
            span.set_status(trace.Status(trace.StatusCode.ERROR, record.error))
        span.end(end_time=record.end)


def _rebuild(instance_id: str, history: list[pb.HistoryEvent]) -> _Execution | None:
    """The current execution's state from a stored history (a cold cache: a restart, another worker)."""
    start = next((i for i in range(len(history) - 1, -1, -1) if history[i].HasField("executionStarted")), None)
    if start is None:
        return None
    state = _Execution.start(instance_id, history[0], history[start].executionStarted)
    for event in history[start + 1:]:
        _receive(state, event, None)
        _created(state, event)
    state.length = len(history)
    return state


def _apply(state: _Execution | None, events: list[pb.HistoryEvent], update: StepUpdate,
           spans: list[_Span]) -> _Execution | None:
    """Account for one step (one execution's part of a work item); returns the state after it."""
    if state is None:
        return None
    for event in events:
        _receive(state, event, spans)
    context = state.context
    if update.replace_history:
        # continued as new: this execution ends here, the next one starts in update.new_history
        now = _ns(update.new_history[0])
        span = state.span(now, pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW, None)
        if span is not None:
            spans.append(span)
        if state.parent is not None:
            for event in update.new_history:
                if event.HasField("executionStarted"):
                    _stamp_start(event.executionStarted, state.parent)  # the same parent, as durabletask-go
        return None
    for event in update.new_history[len(events):]:
        kind = event.WhichOneof("eventType")
        if context is not None and kind in ("taskScheduled", "subOrchestrationInstanceCreated"):
            target = getattr(event, kind).parentTraceContext
            if not target.traceParent:  # an SDK that traces its own actions keeps its context
                context.write(target)
        if kind == "executionCompleted":
            completed = event.executionCompleted
            span = state.span(_ns(event), completed.orchestrationStatus,
                              completed.failureDetails if completed.HasField("failureDetails") else None)
            if span is not None:
                spans.append(span)
            state.done = True
        else:
            _created(state, event)
    if context is not None:
        for message in update.messages:
            if message.event.HasField("executionStarted"):  # a sub-orchestration's start
                _stamp_start(message.event.executionStarted, context)
    return state


def _created(state: _Execution, event: pb.HistoryEvent) -> None:
    """Remember an event the execution created that a later event completes."""
    kind = event.WhichOneof("eventType")
    if kind == "taskScheduled":
        scheduled = event.taskScheduled
        parent = _Context.read(scheduled.parentTraceContext) if scheduled.HasField("parentTraceContext") else None
        state.tasks[event.eventId] = _Scheduled(scheduled.name, scheduled.version.value, _ns(event), parent)
    elif kind == "timerCreated":
        state.timers[event.eventId] = _ns(event)


def _receive(state: _Execution, event: pb.HistoryEvent, spans: list[_Span] | None) -> None:
    """Account for an event the execution received; completes an activity or timer span."""
    kind = event.WhichOneof("eventType")
    if kind in ("taskCompleted", "taskFailed"):
        body = event.taskCompleted if kind == "taskCompleted" else event.taskFailed
        task = state.tasks.pop(body.taskScheduledId, None)
        if task is None or task.parent is None or spans is None:
            return
        attributes: dict[str, Any] = {
            "durabletask.type": "activity",
            "durabletask.task.name": task.name,
            "durabletask.task.task_id": body.taskScheduledId,
            "durabletask.task.instance_id": state.instance_id,
        }
        if task.version:
            attributes["durabletask.task.version"] = task.version
        span = _Span(_span_name("activity", task.name, task.version), _SERVER, task.parent, task.at, _ns(event),
                     attributes)
        if kind == "taskFailed":
            details = event.taskFailed.failureDetails
            span.error = details.errorMessage
            exception = {"exception.type": details.errorType, "exception.message": details.errorMessage}
            if details.HasField("stackTrace"):
                exception["exception.stacktrace"] = details.stackTrace.value
            span.events.append(("exception", _ns(event), exception))
        spans.append(span)
    elif kind == "timerFired":
        fired = event.timerFired
        created = state.timers.pop(fired.timerId, None)
        context = state.context
        if created is None or context is None or spans is None:
            return
        fire_at = fired.fireAt.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ")  # Go's time.RFC3339, in UTC
        spans.append(_Span("timer", _INTERNAL, context, created, _ns(event), {
            "durabletask.type": "timer",
            "durabletask.fire_at": fire_at,
            "durabletask.task.task_id": fired.timerId,
            "durabletask.task.instance_id": state.instance_id,
        }))
    elif kind == "eventRaised":
        raised = event.eventRaised
        state.notes.append(("Received external event", _ns(event),
                            {"name": raised.name, "size": len(raised.input.value.encode())}))
    elif kind == "executionSuspended":
        state.notes.append(("Execution suspended", _ns(event), {"reason": event.executionSuspended.input.value}))
    elif kind == "executionResumed":
        state.notes.append(("Execution resumed", _ns(event), {"reason": event.executionResumed.input.value}))
