"""Rewind: a FAILED orchestration goes on from its last good state (durabletask's ``RewindInstance``).

What is retried follows durabletask's rewind (its Python worker's ``_build_rewind_result``, the .NET
client's documentation): the failed activities run again, failed sub-orchestrations are rewound too (or
started again if they were purged), and the activities and children that succeeded keep their results.
The instance gets a new execution id and its history records an ``ExecutionRewound`` event (with the reason).

How the history is rewritten:

- removed: every ``TaskFailed``, every ``SubOrchestrationInstanceFailed`` and the ``ExecutionCompleted``;
- a failed activity keeps its (first) ``TaskScheduled`` and is queued again by the rewind itself, as the
  Durable Task Framework's own rewind re-sends the task messages. durabletask's Python worker removes the
  ``TaskScheduled`` instead, so that the replay schedules the task again; wftest's executor refuses a replay
  that asks for something the old history never recorded (that is how it reports non-determinism), and
  keeping the event makes a history that replays cleanly in both executors;
- a failed child keeps its (first) ``SubOrchestrationInstanceCreated``;
- when the failed task had a retry policy, the retry timers between its attempts (``TimerCreated`` /
  ``TimerFired``) and the repeated ``TaskScheduled`` / ``SubOrchestrationInstanceCreated`` of its retries
  are removed, so the replay does not meet a timer the code no longer makes. (durabletask lists retried
  tasks as a known limitation of its rewind.) A retry timer is recognised by the protocol's retry mechanics:
  created in the step that saw the task fail, fired in the step that scheduled the same task id again;
- ``ExecutionStarted`` gets the new execution id (and, for a child rewound with its parent, the parent's new
  execution id, from ``ExecutionRewound.parentExecutionId``).

A failure that the orchestrator caught and handled is rewound too (as in durabletask): if the code went
another way after it, the replay reports non-determinism.

The rewrite is committed as one step through the instance's work-item lock (history replaced, status
RUNNING, activities queued, messages to the children), with the ``ExecutionRewound`` event sent to the
instance itself: it wakes the instance, whose next step replays the clean history and records the event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from wftest import _events as ev
from wftest.backends import Backend, OrchestrationWorkItem
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.runtime import (
    FAILED,
    RUNNING,
    ActivityTask,
    InstanceRecord,
    Message,
    StepUpdate,
    is_terminal,
    new_execution_id,
)


def rewind_event(now: datetime, reason: str | None, parent_execution_id: str | None = None) -> pb.HistoryEvent:
    """An ``ExecutionRewound`` event (``eventId`` -1, as the backends' own events)."""
    event = pb.HistoryEvent(eventId=-1)
    event.timestamp.CopyFrom(ev.timestamp(now))
    rewound = event.executionRewound
    rewound.SetInParent()
    if reason is not None:
        rewound.reason.value = reason
    if parent_execution_id is not None:
        rewound.parentExecutionId.value = parent_execution_id
    return event


def rewind_index(record: InstanceRecord, events: Sequence[pb.HistoryEvent]) -> int | None:
    """Where the first ``ExecutionRewound`` is among a FAILED instance's new events (None: no rewind to do)."""
    if record.status != FAILED:
        return None
    for index, event in enumerate(events):
        if event.HasField("executionRewound"):
            return index
    return None


def rewound_history(history: Sequence[pb.HistoryEvent], execution_id: str,
                    parent_execution_id: str | None = None) -> tuple[list[pb.HistoryEvent], list[pb.HistoryEvent]]:
    """The history without its failures (see the module docstring), and the ``TaskScheduled`` events of the
    failed activities (to queue again). The input is not modified."""
    failed_tasks = {e.taskFailed.taskScheduledId for e in history if e.HasField("taskFailed")}
    failed_children = {e.subOrchestrationInstanceFailed.taskScheduledId for e in history
                       if e.HasField("subOrchestrationInstanceFailed")}
    retry_timers = _retry_timers(history, failed_tasks | failed_children)
    clean: list[pb.HistoryEvent] = []
    again: list[pb.HistoryEvent] = []
    seen: set[int] = set()
    for event in history:
        kind = event.WhichOneof("eventType")
        if kind in ("taskFailed", "subOrchestrationInstanceFailed", "executionCompleted"):
            continue
        if (kind == "taskScheduled" and event.eventId in failed_tasks) or (
                kind == "subOrchestrationInstanceCreated" and event.eventId in failed_children):
            if event.eventId in seen:
                continue  # a retry's second attempt: the replay matches the first one only
            seen.add(event.eventId)
            if kind == "taskScheduled":
                again.append(event)
        if (kind == "timerCreated" and event.eventId in retry_timers) or (
                kind == "timerFired" and event.timerFired.timerId in retry_timers):
            continue
        if kind == "executionStarted":
            started = pb.HistoryEvent()
            started.CopyFrom(event)
            started.executionStarted.orchestrationInstance.executionId.value = execution_id
            if parent_execution_id and started.executionStarted.HasField("parentInstance"):
                started.executionStarted.parentInstance.orchestrationInstance.executionId.value = parent_execution_id
            event = started
        clean.append(event)
    return clean, again


def _retry_timers(history: Sequence[pb.HistoryEvent], failed: set[int]) -> set[int]:
    """Ids of the timers that the retry policies of the ``failed`` tasks created between attempts."""
    if not failed:
        return set()
    created_after_failure: set[int] = set()
    fired_before_retry: set[int] = set()
    step_failed = False
    step_fired: list[int] = []
    scheduled: set[int] = set()
    for event in history:
        kind = event.WhichOneof("eventType")
        if kind == "orchestratorStarted":
            step_failed, step_fired = False, []
        elif kind in ("taskFailed", "subOrchestrationInstanceFailed"):
            step_failed = step_failed or getattr(event, kind).taskScheduledId in failed
        elif kind == "timerCreated" and step_failed:
            created_after_failure.add(event.eventId)
        elif kind == "timerFired":
            step_fired.append(event.timerFired.timerId)
        elif kind in ("taskScheduled", "subOrchestrationInstanceCreated") and event.eventId in failed:
            if event.eventId in scheduled:  # the same id again: a retry, started by the timer of this step
                fired_before_retry.update(step_fired)
            scheduled.add(event.eventId)
    return created_after_failure & fired_before_retry


def rewind_update(backend: Backend, item: OrchestrationWorkItem, events: Sequence[pb.HistoryEvent], at: int,
                  now: datetime) -> StepUpdate:
    """The step that rewinds a FAILED instance whose new ``events`` hold an ``ExecutionRewound`` at ``at``.

    Events before it were for the failed execution and are dropped; the rewind event and those after it go
    back to the instance, to be run by its next step on the clean history. Failed children are rewound (their
    results must reach the new execution), and children that are gone or ended otherwise start again.
    """
    record = item.record.copy()
    request = events[at]
    rewound = request.executionRewound
    reason = rewound.reason.value if rewound.HasField("reason") else None
    parent_execution = rewound.parentExecutionId.value if rewound.HasField("parentExecutionId") else None
    execution_id = new_execution_id(record.instance_id, now, record.execution_id)
    history, again = rewound_history(backend.get_history(record.instance_id), execution_id, parent_execution)
    record.status = RUNNING
    record.output = None
    record.failure_details = None
    record.completed_at = None
    record.last_updated_at = now
    record.execution_id = execution_id
    if parent_execution:
        record.parent_execution_id = parent_execution
    update = StepUpdate(record=record, new_history=history, replace_history=True)
    for scheduled in again:
        task = scheduled.taskScheduled
        update.activities.append(ActivityTask(
            instance_id=record.instance_id, execution_id=execution_id, task_id=scheduled.eventId, name=task.name,
            input=task.input.value if task.HasField("input") else None, scheduled_at=now, tags=dict(task.tags),
        ))
    completed = {e.subOrchestrationInstanceCompleted.taskScheduledId for e in history
                 if e.HasField("subOrchestrationInstanceCompleted")}
    for event in history:
        if event.HasField("subOrchestrationInstanceCreated") and event.eventId not in completed:
            message = _child_message(backend, record, event, execution_id, reason, now)
            if message is not None:
                update.messages.append(message)
    wake = rewind_event(now, reason)
    update.messages.append(Message(record.instance_id, wake))
    update.messages.extend(Message(record.instance_id, e) for e in events[at + 1:])
    return update


def _child_message(backend: Backend, parent: InstanceRecord, created: pb.HistoryEvent, execution_id: str,
                   reason: str | None, now: datetime) -> Message | None:
    body = created.subOrchestrationInstanceCreated
    child = backend.get_instance(body.instanceId)
    if child is not None and child.status == FAILED:
        return Message(body.instanceId, rewind_event(now, reason, execution_id))
    if child is not None and not is_terminal(child.status):
        return None  # still running: its result goes to the execution that started it (a documented limit)
    parent_info = pb.ParentInstanceInfo(taskScheduledId=created.eventId)
    parent_info.name.value = parent.name
    parent_info.orchestrationInstance.instanceId = parent.instance_id
    parent_info.orchestrationInstance.executionId.value = execution_id
    start = ev.execution_started(
        now, body.name, body.instanceId, body.input.value if body.HasField("input") else None,
        execution_id=new_execution_id(body.instanceId, now, child.execution_id if child is not None else None),
        parent=parent_info, version=body.version.value if body.HasField("version") else None,
        tags=dict(body.tags) or None,
    )
    if body.HasField("parentTraceContext"):
        start.executionStarted.parentTraceContext.CopyFrom(body.parentTraceContext)
    return Message(body.instanceId, start)
