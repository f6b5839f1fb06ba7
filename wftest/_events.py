"""Building and describing ``HistoryEvent`` and ``OrchestratorAction`` messages.

Every layer above the protocol builds events here, so ids and optional fields are set the same way
everywhere: scheduling events (TaskScheduled, TimerCreated, SubOrchestrationInstanceCreated, EventSent)
carry the action's sequence number as ``eventId``; all other events carry ``-1``, as durabletask does.
Payloads are JSON text; ``None`` leaves the ``StringValue`` absent.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from google.protobuf import timestamp_pb2

from wftest._failure import FailureDetails
from wftest.protos import orchestrator_service_pb2 as pb

NO_ID = -1


# A step stamps many events with the same time; converting a datetime costs ~10 us, copying a
# Timestamp well under 1 us, so the last conversion is kept (a tuple swap is atomic across threads).
_last_stamp: tuple[datetime, timestamp_pb2.Timestamp] | None = None


def timestamp(when: datetime) -> timestamp_pb2.Timestamp:
    """A protobuf Timestamp for a naive-UTC (or aware) datetime (treat it as read-only)."""
    global _last_stamp
    last = _last_stamp
    if last is not None and last[0] == when and last[0].tzinfo is when.tzinfo:
        return last[1]
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(when)
    _last_stamp = (when, ts)
    return ts


def _event(when: datetime | None, event_id: int = NO_ID) -> pb.HistoryEvent:
    event = pb.HistoryEvent(eventId=event_id)
    if when is not None:
        event.timestamp.CopyFrom(timestamp(when))
    return event


def orchestrator_started(when: datetime) -> pb.HistoryEvent:
    """Opens a step; its timestamp is the step's ``current_utc_datetime``."""
    event = _event(when)
    event.orchestratorStarted.SetInParent()
    return event


def orchestrator_completed(when: datetime) -> pb.HistoryEvent:
    """Closes a step."""
    event = _event(when)
    event.orchestratorCompleted.SetInParent()
    return event


def execution_started(
    when: datetime,
    name: str,
    instance_id: str,
    encoded_input: str | None,
    *,
    execution_id: str | None = None,
    parent: pb.ParentInstanceInfo | None = None,
    scheduled_start: datetime | None = None,
    version: str | None = None,
    tags: dict[str, str] | None = None,
) -> pb.HistoryEvent:
    """The first event of every execution."""
    event = _event(when)
    started = event.executionStarted
    started.name = name
    started.orchestrationInstance.instanceId = instance_id
    if execution_id is not None:
        started.orchestrationInstance.executionId.value = execution_id
    if encoded_input is not None:
        started.input.value = encoded_input
    if parent is not None:
        started.parentInstance.CopyFrom(parent)
    if scheduled_start is not None:
        started.scheduledStartTimestamp.FromDatetime(scheduled_start)
    if version is not None:
        started.version.value = version
    if tags:
        started.tags.update(tags)
    return event


def execution_completed(
    when: datetime, status: int, encoded_result: str | None, failure: pb.TaskFailureDetails | None = None
) -> pb.HistoryEvent:
    """The last event of a completed, failed or terminated execution."""
    event = _event(when)
    completed = event.executionCompleted
    completed.orchestrationStatus = status  # type: ignore[assignment]
    if encoded_result is not None:
        completed.result.value = encoded_result
    if failure is not None:
        completed.failureDetails.CopyFrom(failure)
    return event


def execution_terminated(when: datetime, encoded_output: str | None, recurse: bool) -> pb.HistoryEvent:
    """A terminate request (client or parent)."""
    event = _event(when)
    terminated = event.executionTerminated
    terminated.recurse = recurse
    if encoded_output is not None:
        terminated.input.value = encoded_output
    return event


def execution_suspended(when: datetime, reason: str | None = None) -> pb.HistoryEvent:
    """A suspend request."""
    event = _event(when)
    event.executionSuspended.SetInParent()
    if reason is not None:
        event.executionSuspended.input.value = reason
    return event


def execution_resumed(when: datetime, reason: str | None = None) -> pb.HistoryEvent:
    """A resume request."""
    event = _event(when)
    event.executionResumed.SetInParent()
    if reason is not None:
        event.executionResumed.input.value = reason
    return event


def task_scheduled(when: datetime, action: pb.OrchestratorAction) -> pb.HistoryEvent:
    """Records a ``scheduleTask`` action."""
    event = _event(when, action.id)
    source = action.scheduleTask
    scheduled = event.taskScheduled
    scheduled.name = source.name
    if source.HasField("input"):
        scheduled.input.value = source.input.value
    if source.HasField("version"):
        scheduled.version.value = source.version.value
    if source.HasField("parentTraceContext"):
        scheduled.parentTraceContext.CopyFrom(source.parentTraceContext)
    if source.tags:
        scheduled.tags.update(source.tags)
    return event


def task_completed(when: datetime, task_id: int, encoded_result: str | None) -> pb.HistoryEvent:
    """An activity's result."""
    event = _event(when)
    event.taskCompleted.taskScheduledId = task_id
    if encoded_result is not None:
        event.taskCompleted.result.value = encoded_result
    return event


def task_failed(when: datetime, task_id: int, failure: FailureDetails | pb.TaskFailureDetails) -> pb.HistoryEvent:
    """An activity's failure."""
    event = _event(when)
    event.taskFailed.taskScheduledId = task_id
    event.taskFailed.failureDetails.CopyFrom(failure.to_proto() if isinstance(failure, FailureDetails) else failure)
    return event


def timer_created(when: datetime, action: pb.OrchestratorAction) -> pb.HistoryEvent:
    """Records a ``createTimer`` action."""
    event = _event(when, action.id)
    event.timerCreated.fireAt.CopyFrom(action.createTimer.fireAt)
    return event


def timer_fired(when: datetime, timer_id: int, fire_at: timestamp_pb2.Timestamp) -> pb.HistoryEvent:
    """A durable timer came due."""
    event = _event(when)
    event.timerFired.timerId = timer_id
    event.timerFired.fireAt.CopyFrom(fire_at)
    return event


def sub_orchestration_created(when: datetime, action: pb.OrchestratorAction) -> pb.HistoryEvent:
    """Records a ``createSubOrchestration`` action."""
    event = _event(when, action.id)
    source = action.createSubOrchestration
    created = event.subOrchestrationInstanceCreated
    created.name = source.name
    created.instanceId = source.instanceId
    if source.HasField("input"):
        created.input.value = source.input.value
    if source.HasField("version"):
        created.version.value = source.version.value
    if source.HasField("parentTraceContext"):
        created.parentTraceContext.CopyFrom(source.parentTraceContext)
    if source.tags:
        created.tags.update(source.tags)
    return event


def sub_orchestration_completed(when: datetime, task_id: int, encoded_result: str | None) -> pb.HistoryEvent:
    """A sub-orchestration's result, delivered to its parent."""
    event = _event(when)
    event.subOrchestrationInstanceCompleted.taskScheduledId = task_id
    if encoded_result is not None:
        event.subOrchestrationInstanceCompleted.result.value = encoded_result
    return event


def sub_orchestration_failed(when: datetime, task_id: int, failure: pb.TaskFailureDetails) -> pb.HistoryEvent:
    """A sub-orchestration's failure, delivered to its parent."""
    event = _event(when)
    event.subOrchestrationInstanceFailed.taskScheduledId = task_id
    event.subOrchestrationInstanceFailed.failureDetails.CopyFrom(failure)
    return event


def event_sent(when: datetime, action: pb.OrchestratorAction) -> pb.HistoryEvent:
    """Records a ``sendEvent`` action in the sender's history."""
    event = _event(when, action.id)
    source = action.sendEvent
    event.eventSent.instanceId = source.instance.instanceId
    event.eventSent.name = source.name
    if source.HasField("data"):
        event.eventSent.input.value = source.data.value
    return event


def event_raised(when: datetime | None, name: str, encoded_data: str | None) -> pb.HistoryEvent:
    """An external event delivered to an instance."""
    event = _event(when)
    event.eventRaised.name = name
    if encoded_data is not None:
        event.eventRaised.input.value = encoded_data
    return event


def generic_event(when: datetime, data: str) -> pb.HistoryEvent:
    """A ``GenericEvent`` (wftest records side-effect results with these)."""
    event = _event(when)
    event.genericEvent.data.value = data
    return event


# -- actions -----------------------------------------------------------------------------------------


def schedule_task_action(
    action_id: int, name: str, encoded_input: str | None, tags: dict[str, str] | None = None
) -> pb.OrchestratorAction:
    """Ask for an activity."""
    action = pb.OrchestratorAction(id=action_id)
    action.scheduleTask.name = name
    if encoded_input is not None:
        action.scheduleTask.input.value = encoded_input
    if tags:
        action.scheduleTask.tags.update(tags)
    return action


def create_timer_action(action_id: int, fire_at: datetime) -> pb.OrchestratorAction:
    """Ask for a durable timer."""
    action = pb.OrchestratorAction(id=action_id)
    action.createTimer.fireAt.FromDatetime(fire_at)
    return action


def create_sub_orchestration_action(
    action_id: int, name: str, instance_id: str, encoded_input: str | None, version: str | None = None,
    tags: dict[str, str] | None = None,
) -> pb.OrchestratorAction:
    """Ask for a sub-orchestration."""
    action = pb.OrchestratorAction(id=action_id)
    create = action.createSubOrchestration
    create.name = name
    create.instanceId = instance_id
    if encoded_input is not None:
        create.input.value = encoded_input
    if version is not None:
        create.version.value = version
    if tags:
        create.tags.update(tags)
    return action


def send_event_action(action_id: int, instance_id: str, name: str, encoded_data: str | None) -> pb.OrchestratorAction:
    """Ask to raise an event on another instance."""
    action = pb.OrchestratorAction(id=action_id)
    send = action.sendEvent
    send.instance.instanceId = instance_id
    send.name = name
    if encoded_data is not None:
        send.data.value = encoded_data
    return action


def complete_orchestration_action(
    action_id: int,
    status: int,
    encoded_result: str | None,
    failure: pb.TaskFailureDetails | None = None,
    carryover_events: Iterable[pb.HistoryEvent] | None = None,
) -> pb.OrchestratorAction:
    """Finish the execution (completed, failed, terminated or continued-as-new)."""
    action = pb.OrchestratorAction(id=action_id)
    complete = action.completeOrchestration
    complete.orchestrationStatus = status  # type: ignore[assignment]
    if encoded_result is not None:
        complete.result.value = encoded_result
    if failure is not None:
        complete.failureDetails.CopyFrom(failure)
    if carryover_events:
        complete.carryoverEvents.extend(carryover_events)
    return action


# -- descriptions (timelines, error messages) --------------------------------------------------------

STATUS_NAMES = {
    value: name.removeprefix("ORCHESTRATION_STATUS_") for name, value in pb.OrchestrationStatus.items()
}


def status_name(status: int) -> str:
    """``COMPLETED`` for ``ORCHESTRATION_STATUS_COMPLETED``."""
    return STATUS_NAMES.get(status, str(status))


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def describe_event(event: pb.HistoryEvent) -> str:
    """One line for a history event: ``TaskScheduled #1 charge_card input={"qty": 2}``."""
    kind = event.WhichOneof("eventType")
    if kind is None:
        return "<empty event>"
    body = getattr(event, kind)
    title: str = kind[0].upper() + kind[1:]
    if kind == "taskScheduled":
        return f"{title} #{event.eventId} {body.name}" + _payload(" input=", body, "input")
    if kind in ("taskCompleted", "subOrchestrationInstanceCompleted"):
        return f"{title} #{body.taskScheduledId}" + _payload(" result=", body, "result")
    if kind in ("taskFailed", "subOrchestrationInstanceFailed"):
        details = body.failureDetails
        return f"{title} #{body.taskScheduledId} {details.errorType}: {_clip(details.errorMessage)}"
    if kind == "timerCreated":
        return f"{title} #{event.eventId} fireAt={_iso(body.fireAt)}"
    if kind == "timerFired":
        return f"{title} #{body.timerId} fireAt={_iso(body.fireAt)}"
    if kind == "subOrchestrationInstanceCreated":
        return f"{title} #{event.eventId} {body.name} id={body.instanceId}" + _payload(" input=", body, "input")
    if kind == "executionStarted":
        return f"{title} {body.name}" + _payload(" input=", body, "input")
    if kind == "executionCompleted":
        text = f"{title} {status_name(body.orchestrationStatus)}" + _payload(" result=", body, "result")
        if body.HasField("failureDetails"):
            text += f" {body.failureDetails.errorType}: {_clip(body.failureDetails.errorMessage)}"
        return text
    if kind == "eventRaised":
        return f"{title} {body.name}" + _payload(" data=", body, "input")
    if kind == "eventSent":
        return f"{title} #{event.eventId} {body.name} to={body.instanceId}" + _payload(" data=", body, "input")
    if kind == "executionTerminated":
        return f"{title}" + _payload(" output=", body, "input") + (" recurse" if body.recurse else "")
    if kind == "genericEvent":
        return f"{title}" + _payload(" data=", body, "data")
    return title


def describe_action(action: pb.OrchestratorAction) -> str:
    """One line for an action, in the words of the event that would record it."""
    kind = action.WhichOneof("orchestratorActionType")
    if kind == "scheduleTask":
        return f"call_activity #{action.id} {action.scheduleTask.name}" + _payload(
            " input=", action.scheduleTask, "input"
        )
    if kind == "createTimer":
        return f"create_timer #{action.id} fireAt={_iso(action.createTimer.fireAt)}"
    if kind == "createSubOrchestration":
        sub = action.createSubOrchestration
        return f"call_sub_orchestrator #{action.id} {sub.name} id={sub.instanceId}" + _payload(" input=", sub, "input")
    if kind == "sendEvent":
        send = action.sendEvent
        return f"send_event #{action.id} {send.name} to={send.instance.instanceId}"
    if kind == "completeOrchestration":
        complete = action.completeOrchestration
        return f"complete {status_name(complete.orchestrationStatus)}" + _payload(" result=", complete, "result")
    return f"{kind} #{action.id}"


def _payload(label: str, message: object, field: str) -> str:
    if not message.HasField(field):  # type: ignore[attr-defined]
        return ""
    return label + _clip(str(getattr(message, field).value))


def _iso(ts: timestamp_pb2.Timestamp) -> str:
    return ts.ToDatetime().isoformat()
