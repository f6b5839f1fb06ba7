"""A small, deterministic runtime that runs an orchestration to completion with either executor.

The driver plays the part of the durable-task backend and worker:

* it starts an instance with ``OrchestratorStarted`` + ``ExecutionStarted``;
* each step calls the executor *statelessly* with (all old events, the step's new events), which is
  the only way to drive ``durabletask``'s executor, and applies the returned actions with wftest's
  ``apply_step`` (history events, activity tasks, timers, child starts, sent events, completion,
  continue-as-new);
* activities are the plain functions of ``corpus/activities.py``; they run at once and their result
  arrives :data:`ACTIVITY_LATENCY` later (failures carry the fully qualified error type, wftest's
  ``is_non_retriable`` flag and no stack trace, so runs are reproducible);
* a virtual clock jumps to the next due message (timer, activity result, scripted event or
  terminate / suspend / resume request);
* sub-orchestrations run as separate instances with the same executor kind; a finished instance is
  started afresh by a new ``ExecutionStarted`` (a retried sub-orchestration reuses its id).

Every step is recorded (old events, new events, the executor's result), so tests can replay each step
with the other executor and compare. Messages carry no execution id, so work still pending when an
instance continues as new would reach the new execution; the corpus never does that.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from durabletask import worker as dt_worker
from durabletask.internal import orchestrator_service_pb2 as dtpb
from durabletask.serialization import JsonDataConverter

from wftest import Engine
from wftest import _events as ev
from wftest._failure import FailureDetails, qualified_name
from wftest.converter import DEFAULT_CONVERTER
from wftest.orchestration import ExecutionResult, Executor, Registry
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.runtime import PENDING, ActivityTask, InstanceRecord, apply_step, is_terminal, new_execution_id

START = datetime(2024, 1, 1)
ACTIVITY_LATENCY = timedelta(seconds=1)
MAX_ROUNDS = 500

_DT_LOGGER = logging.getLogger("tests.compat.durabletask")
_DT_LOGGER.setLevel(logging.ERROR)


# -- converting between the two protobuf modules (same wire format) --------------------------------


def to_dt_events(events: Iterable[pb.HistoryEvent]) -> list[dtpb.HistoryEvent]:
    return [dtpb.HistoryEvent.FromString(e.SerializeToString()) for e in events]


def from_dt_action(action: dtpb.OrchestratorAction) -> pb.OrchestratorAction:
    return pb.OrchestratorAction.FromString(action.SerializeToString())


# -- the two executors behind one interface --------------------------------------------------------


class StepExecutor(Protocol):
    kind: str

    def execute(self, instance_id: str, old_events: Sequence[pb.HistoryEvent],
                new_events: Sequence[pb.HistoryEvent]) -> ExecutionResult: ...


class DurableTaskExecutor:
    """``durabletask.worker._OrchestrationExecutor``, a fresh one per step, as its worker does."""

    kind = "durabletask"

    def __init__(self, orchestrators: Iterable[Callable[..., Any]]) -> None:
        self.registry = dt_worker._Registry()
        for fn in orchestrators:
            self.registry.add_orchestrator(fn)

    def execute(self, instance_id: str, old_events: Sequence[pb.HistoryEvent],
                new_events: Sequence[pb.HistoryEvent]) -> ExecutionResult:
        executor = dt_worker._OrchestrationExecutor(self.registry, _DT_LOGGER, JsonDataConverter())
        results = executor.execute(instance_id, to_dt_events(old_events), to_dt_events(new_events))
        return ExecutionResult(
            actions=[from_dt_action(a) for a in results.actions],
            custom_status=results.encoded_custom_status,
            # as durabletask's own in-memory backend does: an absent customStatus keeps the last one
            custom_status_set=results.encoded_custom_status is not None,
        )


class WftestExecutor:
    """wftest's ``Executor`` in strict mode, a fresh one per step (a full replay every time)."""

    kind = "wftest"

    def __init__(self, orchestrators: Iterable[Callable[..., Any]]) -> None:
        self.registry = Registry()
        for fn in orchestrators:
            self.registry.add_orchestrator(fn)

    def execute(self, instance_id: str, old_events: Sequence[pb.HistoryEvent],
                new_events: Sequence[pb.HistoryEvent]) -> ExecutionResult:
        return Executor(self.registry, instance_id, strict=True).execute(old_events, new_events)


# -- activities -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivityCall:
    """The context the corpus activities receive."""

    orchestration_id: str
    task_id: int
    name: str
    attempt: int


class ActivityRunner:
    """Runs corpus activities; counts attempts per (instance, activity, input) so flaky ones are exact."""

    def __init__(self, activities: Iterable[Callable[..., Any]]) -> None:
        self.activities = {fn.__name__: fn for fn in activities}
        self.attempts: dict[tuple[str, str, str | None], int] = {}

    def run(self, activity: ActivityTask, done_at: datetime) -> pb.HistoryEvent:
        key = (activity.instance_id, activity.name, activity.input or None)
        attempt = self.attempts[key] = self.attempts.get(key, 0) + 1
        ctx = ActivityCall(activity.instance_id, activity.task_id, activity.name, attempt)
        try:
            output = self.activities[activity.name](ctx, DEFAULT_CONVERTER.deserialize(activity.input))
        except Exception as err:
            details = FailureDetails(message=str(err), error_type=qualified_name(type(err)),
                                     is_non_retriable=bool(getattr(err, "is_non_retriable", False)))
            return ev.task_failed(done_at, activity.task_id, details)
        return ev.task_completed(done_at, activity.task_id, DEFAULT_CONVERTER.serialize(output))


# -- the run ----------------------------------------------------------------------------------------


@dataclass
class Step:
    """One call of the executor, as the driver made it."""

    instance_id: str
    old_events: list[pb.HistoryEvent]
    new_events: list[pb.HistoryEvent]
    result: ExecutionResult


@dataclass
class Instance:
    record: InstanceRecord
    history: list[pb.HistoryEvent] = field(default_factory=list)

    @property
    def output(self) -> Any:
        return DEFAULT_CONVERTER.deserialize(self.record.output)


@dataclass(order=True)
class _Queued:
    visible_at: datetime
    seq: int
    instance_id: str = field(compare=False)
    event: pb.HistoryEvent = field(compare=False)


@dataclass
class Run:
    """The outcome of :meth:`Driver.run`."""

    executor_kind: str
    root: str
    instances: dict[str, Instance]
    steps: list[Step]
    finished_at: datetime

    @property
    def root_instance(self) -> Instance:
        return self.instances[self.root]


class Driver:
    """Runs one orchestration (and everything it starts) to completion on a virtual clock."""

    def __init__(self, executor: StepExecutor, activities: Iterable[Callable[..., Any]]) -> None:
        self.executor = executor
        self.activities = ActivityRunner(activities)
        self.now = START
        self.instances: dict[str, Instance] = {}
        self.steps: list[Step] = []
        self._queue: list[_Queued] = []
        self._seq = 0

    def run(self, instance_id: str, orchestrator: str, input: Any = None,
            messages: Iterable[tuple[datetime, pb.HistoryEvent]] = ()) -> Run:
        """Start ``orchestrator`` and deliver ``messages`` (external events, terminate, ...) at their time."""
        start = ev.execution_started(
            START, orchestrator, instance_id, DEFAULT_CONVERTER.serialize(input),
            execution_id=new_execution_id(instance_id, START),
        )
        self._send(instance_id, start, START)
        for visible_at, event in messages:
            self._send(instance_id, event, visible_at)
        for _ in range(MAX_ROUNDS):
            if not self._round():
                break
        else:
            raise RuntimeError(f"{instance_id}: no end after {MAX_ROUNDS} rounds")
        return Run(self.executor.kind, instance_id, self.instances, self.steps, self.now)

    # -- scheduling ------------------------------------------------------------------------------

    def _send(self, instance_id: str, event: pb.HistoryEvent, visible_at: datetime) -> None:
        self._seq += 1
        self._queue.append(_Queued(visible_at, self._seq, instance_id, event))

    def _round(self) -> bool:
        """Run one step for every instance with due messages; else jump the clock. False when idle."""
        batches: dict[str, list[_Queued]] = {}
        for item in sorted(q for q in self._queue if q.visible_at <= self.now):
            batches.setdefault(item.instance_id, []).append(item)
        ran = False
        for instance_id, batch in batches.items():
            if self._deliver(instance_id, batch):
                ran = True
        if ran:
            return True
        later = [q.visible_at for q in self._queue if q.visible_at > self.now]
        if not later:
            return False
        self.now = min(later)
        return True

    def _deliver(self, instance_id: str, batch: list[_Queued]) -> bool:
        instance = self.instances.get(instance_id)
        events: list[pb.HistoryEvent] = []
        for item in batch:
            kind = item.event.WhichOneof("eventType")
            if kind == "executionStarted":
                if instance is not None and not is_terminal(instance.record.status):
                    self._queue.remove(item)  # a duplicate start: dropped
                    continue
                # a new instance, or a finished one started again (a retried sub-orchestration)
                instance = self.instances[instance_id] = Instance(
                    InstanceRecord(instance_id, item.event.executionStarted.name, PENDING, self.now, self.now)
                )
                events = []
            elif instance is None:
                continue  # not started yet: the message waits
            elif is_terminal(instance.record.status):
                self._queue.remove(item)  # for a finished instance: dropped
                continue
            self._queue.remove(item)
            events.append(item.event)
        if instance is None or not events:
            return False
        self._step(instance, events)
        return True

    # -- one step ----------------------------------------------------------------------------------

    def _step(self, instance: Instance, events: list[pb.HistoryEvent]) -> None:
        instance_id = instance.record.instance_id
        step_events = [ev.orchestrator_started(self.now), *events]
        old = list(instance.history)
        result = self.executor.execute(instance_id, old, step_events)
        self.steps.append(Step(instance_id, old, step_events, result))
        update = apply_step(instance.record, step_events, result, self.now, history=old)
        replaced = False
        while update.replace_history:
            # continue-as-new: the next execution runs at once, from its fresh history
            replaced = True
            generation = list(update.new_history)
            result = self.executor.execute(instance_id, [], generation)
            self.steps.append(Step(instance_id, [], generation, result))
            update = apply_step(update.record, generation, result, self.now)
        instance.record = update.record
        if replaced:
            instance.history = list(update.new_history)
        else:
            instance.history.extend(update.new_history)
        for activity in update.activities:
            done_at = self.now + ACTIVITY_LATENCY
            self._send(instance_id, self.activities.run(activity, done_at), done_at)
        for message in update.messages:
            self._send(message.instance_id, message.event, message.visible_at or self.now)


def scripted_messages(scenario: Any) -> list[tuple[datetime, pb.HistoryEvent]]:
    """The events a corpus scenario (``corpus.scenarios.Scenario``) sends its instance, with their times.

    Offsets count from :data:`START`; names starting with ``@`` are management requests (``@terminate``,
    ``@suspend``, ``@resume``, the data being the output or reason), the others external events.
    """
    messages = []
    for offset, name, data in scenario.events:
        when = START + offset
        encoded = DEFAULT_CONVERTER.serialize(data)
        if name == "@terminate":
            event = ev.execution_terminated(when, encoded, False)
        elif name == "@suspend":
            event = ev.execution_suspended(when, data)
        elif name == "@resume":
            event = ev.execution_resumed(when, data)
        else:
            event = ev.event_raised(when, name, encoded)
        messages.append((when, event))
    return messages


def run_on_engine(scenario: Any, orchestrators: Iterable[Callable[..., Any]], activities: Iterable[Callable[..., Any]],
                  *, sticky: bool = True) -> tuple[Engine, str]:
    """Run a corpus scenario on wftest's own ``Engine`` (strict, virtual clock) as the driver runs it:
    each activity's result arrives :data:`ACTIVITY_LATENCY` after it was scheduled, and the scripted events
    are queued at once, each visible at its time. Returns the engine and the root instance id."""
    engine = Engine(strict=True, sticky=sticky)
    for fn in orchestrators:
        engine.add_orchestrator(fn)
    runner = ActivityRunner(activities)
    engine.activity_interceptor = lambda task: (runner.run(task, engine.clock.now() + ACTIVITY_LATENCY),
                                                ACTIVITY_LATENCY)
    iid = engine.client.schedule_new_orchestration(scenario.orchestrator, input=scenario.input,
                                                   instance_id=scenario.instance_id)
    for when, event in scripted_messages(scenario):
        engine.backend.add_event(iid, event, visible_at=when)
    engine.client.wait_for_orchestration_completion(iid)
    return engine, iid


def instance_tree(engine: Engine, root: str) -> list[str]:
    """``root`` and every sub-orchestration below it, breadth first, each once."""
    ids, todo = [], [root]
    while todo:
        iid = todo.pop(0)
        if iid not in ids:
            ids.append(iid)
            todo.extend(e.subOrchestrationInstanceCreated.instanceId for e in engine.history(iid)
                        if e.HasField("subOrchestrationInstanceCreated"))
    return ids


def run_scenario(executor: StepExecutor, activities: Iterable[Callable[..., Any]], scenario: Any) -> Run:
    """Run a corpus scenario with ``executor``."""
    return Driver(executor, activities).run(scenario.instance_id, scenario.orchestrator, scenario.input,
                                            scripted_messages(scenario))
