"""Layer 3: turning a step's actions into history events and outgoing messages.

As durabletask-go does: ``scheduleTask`` becomes ``TaskScheduled`` plus an activity task;
``createTimer`` becomes ``TimerCreated`` plus a ``TimerFired`` for the instance itself, visible at the
fire time; ``createSubOrchestration`` becomes ``SubOrchestrationInstanceCreated`` plus an
``ExecutionStarted`` for the child; ``sendEvent`` becomes ``EventSent`` plus an ``EventRaised`` for the
target; ``completeOrchestration`` becomes ``ExecutionCompleted`` (and a result for the parent) or, for
continue-as-new, a fresh history. ``sendEntityMessage`` (durable entities, which only the gRPC sidecar
runs) is recorded under the action's id as the entity event it carries, and the same event goes to the
entity's ``@name@key`` instance. Actions are applied in the order given (the order the code asked for
them). Pure: no clock, no I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from wftest import _events as ev
from wftest._failure import FailureDetails
from wftest.orchestration import ExecutionResult
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.runtime._records import (
    COMPLETED,
    CONTINUED_AS_NEW,
    PENDING,
    RUNNING,
    SUSPENDED,
    TERMINATED,
    ActivityTask,
    InstanceRecord,
    Message,
    StepUpdate,
)

_EXECUTION_NAMESPACE = uuid.UUID("5a1e0f3c-8d2b-4c7e-9f61-2b7d4e9a0c11")

#: 9999-12-31T23:59:59Z, the largest protobuf Timestamp. Dapr's SDK records an indefinite
#: ``wait_for_external_event`` as a timer firing then (plus 999999999 ns), which its sidecar never fires.
NEVER_SECONDS = 253402300799


def new_execution_id(instance_id: str, when: datetime, previous: str | None = None) -> str:
    """A deterministic execution id, so the same virtual-clock run gives byte-identical histories.

    ``previous`` (the execution being continued as new) keeps generations started in the same instant
    apart.
    """
    return uuid.uuid5(_EXECUTION_NAMESPACE, f"{instance_id}|{when.isoformat()}|{previous or ''}").hex


def apply_step(
    record: InstanceRecord,
    step_events: Sequence[pb.HistoryEvent],
    result: ExecutionResult,
    now: datetime,
    *,
    history: Sequence[pb.HistoryEvent] | None = None,
    entities: bool = False,
) -> StepUpdate:
    """Build the commit for one step.

    Args:
        record: the instance's metadata before the step (not modified).
        step_events: ``OrchestratorStarted`` and the new events the executor processed.
        result: what the executor returned.
        now: the step's time.
        history: the history before the step; needed only for a recursive terminate (to find the
            running sub-orchestrations), loaded by the caller when ``needs_history`` says so.
        entities: apply ``sendEntityMessage`` actions (engines that run durable entities: the gRPC sidecar's);
            without it they are refused with a ``ValueError`` that says so.
    """
    record = record.copy()
    record.last_updated_at = now
    new_history: list[pb.HistoryEvent] = list(step_events)
    update = StepUpdate(record=record, new_history=new_history)
    instance_id = record.instance_id

    for event in step_events:
        kind = event.WhichOneof("eventType")
        if kind == "executionStarted":
            started = event.executionStarted
            record.name = started.name
            record.input = started.input.value if started.HasField("input") else None
            record.execution_id = started.orchestrationInstance.executionId.value or record.execution_id
            if started.parentInstance.HasField("orchestrationInstance"):
                record.parent_instance_id = started.parentInstance.orchestrationInstance.instanceId
                record.parent_task_id = started.parentInstance.taskScheduledId
                parent_execution = started.parentInstance.orchestrationInstance.executionId
                record.parent_execution_id = parent_execution.value or None
            if record.status == PENDING:
                record.status = RUNNING
        elif kind == "executionSuspended" and record.status in (RUNNING, PENDING):
            record.status = SUSPENDED
        elif kind == "executionResumed" and record.status == SUSPENDED:
            record.status = RUNNING

    if result.custom_status_set:
        record.custom_status = result.custom_status

    completion: pb.OrchestratorAction | None = None
    for action in result.actions:
        kind = action.WhichOneof("orchestratorActionType")
        if kind == "scheduleTask":
            new_history.append(ev.task_scheduled(now, action))
            body = action.scheduleTask
            update.activities.append(
                ActivityTask(
                    instance_id=instance_id,
                    execution_id=record.execution_id,
                    task_id=action.id,
                    name=body.name,
                    input=body.input.value if body.HasField("input") else None,
                    scheduled_at=now,
                    tags=dict(body.tags) if body.tags else {},
                )
            )
        elif kind == "createTimer":
            new_history.append(ev.timer_created(now, action))
            fire_at = action.createTimer.fireAt
            if fire_at.seconds >= NEVER_SECONDS:
                continue  # a timer at the end of time is recorded but never fires (Dapr's "optional" timers)
            update.messages.append(
                Message(instance_id, ev.timer_fired(fire_at.ToDatetime(), action.id, fire_at), fire_at.ToDatetime(),
                        execution_id=record.execution_id)
            )
        elif kind == "createSubOrchestration":
            new_history.append(ev.sub_orchestration_created(now, action))
            update.messages.append(_child_start(record, action, now))
        elif kind == "sendEvent":
            new_history.append(ev.event_sent(now, action))
            send = action.sendEvent
            update.messages.append(
                Message(
                    send.instance.instanceId,
                    ev.event_raised(now, send.name, send.data.value if send.HasField("data") else None),
                )
            )
        elif kind == "sendEntityMessage" and not entities:
            raise ValueError(f"instance {instance_id!r}: action #{action.id} sends a durable entity message; "
                             "entities run only in wftest's gRPC sidecar (wftest serve), not in this engine")
        elif kind == "sendEntityMessage":
            # durable entities (the sidecar runs them): the message goes to its entity, and the history keeps
            # it under the action's id, as durabletask's executor expects when it replays
            event, message = _entity_message(record, action, now)
            new_history.append(event)
            update.messages.append(message)
        elif kind == "completeOrchestration":
            completion = action
            break  # nothing after completion is applied
        else:
            raise ValueError(f"instance {instance_id!r}: action #{action.id} of kind {kind!r} is not supported")

    for data in result.generic_events:
        new_history.append(ev.generic_event(now, data))

    if completion is not None:
        _complete(update, completion.completeOrchestration, now, history)
    return update


def refresh_activity_tags(update: StepUpdate) -> None:
    """Give the step's activity tasks the tags of their ``TaskScheduled`` events, which a ``wftest_step_applied``
    hook may have added to (the activity's context is extracted from the task's tags)."""
    if not update.activities:
        return
    scheduled = {e.eventId: e.taskScheduled.tags for e in update.new_history if e.HasField("taskScheduled")}
    for task in update.activities:
        tags = scheduled.get(task.task_id)
        if tags is not None and (tags or task.tags):
            task.tags = dict(tags)


def needs_history(step_events: Sequence[pb.HistoryEvent], result: ExecutionResult) -> bool:
    """True if :func:`apply_step` needs the old history (a recursive terminate of sub-orchestrations)."""
    completion = result.completion
    if completion is None or completion.completeOrchestration.orchestrationStatus != TERMINATED:
        return False
    return any(e.HasField("executionTerminated") and e.executionTerminated.recurse for e in step_events)


def running_children(history: Sequence[pb.HistoryEvent]) -> list[str]:
    """Instance ids of sub-orchestrations created in ``history`` whose result has not arrived."""
    children: dict[int, str] = {}
    for event in history:
        kind = event.WhichOneof("eventType")
        if kind == "subOrchestrationInstanceCreated":
            children[event.eventId] = event.subOrchestrationInstanceCreated.instanceId
        elif kind == "subOrchestrationInstanceCompleted":
            children.pop(event.subOrchestrationInstanceCompleted.taskScheduledId, None)
        elif kind == "subOrchestrationInstanceFailed":
            children.pop(event.subOrchestrationInstanceFailed.taskScheduledId, None)
    return list(dict.fromkeys(children.values()))


def created_children(history: Sequence[pb.HistoryEvent]) -> list[str]:
    """Instance ids of every sub-orchestration created in ``history`` (for recursive purge)."""
    return list(
        dict.fromkeys(
            e.subOrchestrationInstanceCreated.instanceId
            for e in history
            if e.HasField("subOrchestrationInstanceCreated")
        )
    )


def terminate_without_start(
    record: InstanceRecord, step_events: Sequence[pb.HistoryEvent], now: datetime
) -> StepUpdate:
    """Terminate an instance whose ``ExecutionStarted`` has not become visible yet (a delayed start)."""
    record = record.copy()
    terminated = next(e for e in step_events if e.HasField("executionTerminated")).executionTerminated
    output = terminated.input.value if terminated.HasField("input") else None
    record.status = TERMINATED
    record.output = output
    record.completed_at = now
    record.last_updated_at = now
    completed = ev.execution_completed(now, TERMINATED, output)
    update = StepUpdate(record=record, new_history=[*step_events, completed])
    _notify_parent(update, TERMINATED, output, None, now)
    return update


def entity_message_target(body: pb.SendEntityMessageAction) -> str:
    """The entity id (``@name@key``) a ``sendEntityMessage`` action goes to; ValueError if it names none."""
    which = body.WhichOneof("EntityMessageType")
    if which == "entityLockRequested":
        lock = body.entityLockRequested
        if not 0 <= lock.position < len(lock.lockSet):
            raise ValueError(f"lock request {lock.criticalSectionId!r}: position {lock.position} is outside its "
                             f"lock set of {len(lock.lockSet)} entities")
        return str(lock.lockSet[lock.position])
    if which is None:
        raise ValueError("the sendEntityMessage action carries no entity message")
    target: str = getattr(body, which).targetInstanceId.value
    if not target:
        raise ValueError(f"the {which} message names no target entity")
    return target


def _entity_message(record: InstanceRecord, action: pb.OrchestratorAction, now: datetime
                    ) -> tuple[pb.HistoryEvent, Message]:
    body = action.sendEntityMessage
    which = str(body.WhichOneof("EntityMessageType"))
    target = entity_message_target(body)
    recorded = pb.HistoryEvent(eventId=action.id)
    recorded.timestamp.CopyFrom(ev.timestamp(now))
    getattr(recorded, which).CopyFrom(getattr(body, which))
    sent = pb.HistoryEvent(eventId=-1)
    sent.timestamp.CopyFrom(recorded.timestamp)
    getattr(sent, which).CopyFrom(getattr(body, which))
    visible_at = None
    if which == "entityOperationCalled":
        called = sent.entityOperationCalled
        if not called.HasField("parentExecutionId") and record.execution_id:
            called.parentExecutionId.value = record.execution_id  # the result goes to this execution only
    if which in ("entityOperationSignaled", "entityOperationCalled"):
        operation = getattr(sent, which)
        if operation.HasField("scheduledTime"):
            visible_at = operation.scheduledTime.ToDatetime()  # a delayed signal
    return recorded, Message(target, sent, visible_at)


def _child_start(record: InstanceRecord, action: pb.OrchestratorAction, now: datetime) -> Message:
    body = action.createSubOrchestration
    parent = pb.ParentInstanceInfo(taskScheduledId=action.id)
    parent.name.value = record.name
    parent.orchestrationInstance.instanceId = record.instance_id
    if record.execution_id:
        parent.orchestrationInstance.executionId.value = record.execution_id
    start = ev.execution_started(
        now,
        body.name,
        body.instanceId,
        body.input.value if body.HasField("input") else None,
        execution_id=new_execution_id(body.instanceId, now),
        parent=parent,
        version=body.version.value if body.HasField("version") else None,
        tags=dict(body.tags) if body.tags else None,  # the parent's tags for it (context propagation)
    )
    return Message(body.instanceId, start)


def _complete(update: StepUpdate, body: pb.CompleteOrchestrationAction, now: datetime,
              history: Sequence[pb.HistoryEvent] | None) -> None:
    record = update.record
    status = body.orchestrationStatus
    result = body.result.value if body.HasField("result") else None
    if status == CONTINUED_AS_NEW:
        _continue_as_new(update, body, now)
        return
    failure = body.failureDetails if body.HasField("failureDetails") else None
    update.new_history.append(ev.execution_completed(now, status, result, failure))
    record.status = status
    record.output = result
    record.failure_details = failure
    record.completed_at = now
    if status == TERMINATED and history is not None:
        terminated = next(
            (e.executionTerminated for e in update.new_history if e.HasField("executionTerminated")), None
        )
        if terminated is not None and terminated.recurse:
            for child in running_children([*history, *update.new_history]):
                update.messages.append(Message(child, ev.execution_terminated(now, terminated.input.value
                                                                              if terminated.HasField("input")
                                                                              else None, True)))
    _notify_parent(update, status, result, failure, now)


def _notify_parent(update: StepUpdate, status: int, result: str | None, failure: pb.TaskFailureDetails | None,
                   now: datetime) -> None:
    record = update.record
    if not record.parent_instance_id or record.parent_task_id is None:
        return
    task_id = record.parent_task_id
    if status == COMPLETED:
        event = ev.sub_orchestration_completed(now, task_id, result)
    else:
        if failure is None:
            # wftest choice: a terminated child fails its parent's task (durabletask-go lets it succeed)
            what = "terminated" if status == TERMINATED else ev.status_name(status).lower()
            failure = FailureDetails(
                message=f"sub-orchestration {record.name!r} (instance {record.instance_id!r}) was {what}"
                + (f" with output {result}" if result else ""),
                error_type="wftest.errors.OrchestrationTerminatedError" if status == TERMINATED
                else "wftest.errors.OrchestrationFailedError",
            ).to_proto()
        event = ev.sub_orchestration_failed(now, task_id, failure)
    update.messages.append(Message(record.parent_instance_id, event, execution_id=record.parent_execution_id))


def _continue_as_new(update: StepUpdate, body: pb.CompleteOrchestrationAction, now: datetime) -> None:
    record = update.record
    new_input = body.result.value if body.HasField("result") else None
    parent = None
    if record.parent_instance_id:
        parent = pb.ParentInstanceInfo(taskScheduledId=record.parent_task_id or 0)
        parent.orchestrationInstance.instanceId = record.parent_instance_id
        if record.parent_execution_id:
            parent.orchestrationInstance.executionId.value = record.parent_execution_id
    execution_id = new_execution_id(record.instance_id, now, record.execution_id)
    started = ev.execution_started(
        now, record.name, record.instance_id, new_input, execution_id=execution_id, parent=parent,
        version=body.newVersion.value if body.HasField("newVersion") else record.version,
        tags=dict(body.tags) if body.tags else None,  # the tags the last execution carried on
    )
    # the other actions of the step are discarded: the new execution starts from a clean slate
    update.activities.clear()
    update.messages.clear()
    update.replace_history = True
    update.new_history[:] = [ev.orchestrator_started(now), started, *body.carryoverEvents]
    record.status = RUNNING
    record.input = new_input
    record.output = None
    record.failure_details = None
    record.execution_id = execution_id
