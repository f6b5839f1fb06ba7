"""Dapr's dialect of the durabletask protobuf, field by field.

Dapr forked durabletask's schema and renamed parts of it ("orchestration" became "workflow",
"sub-orchestration" became "child workflow"), then added fields whose numbers collide with
durabletask's (``TaskScheduledEvent`` field 5 is ``tags`` there and ``taskExecutionId`` here; field 30 of
``HistoryEvent`` is ``executionRewound`` there and ``router`` here, ...). The two are not wire-compatible,
so events and actions are translated by field name, with these renames (wftest's name = Dapr's name):

=================================  ================================
subOrchestrationInstanceCreated    childWorkflowInstanceCreated
subOrchestrationInstanceCompleted  childWorkflowInstanceCompleted
subOrchestrationInstanceFailed     childWorkflowInstanceFailed
orchestratorStarted                workflowStarted
orchestratorCompleted              workflowCompleted
orchestrationInstance              workflowInstance
orchestrationSpanID                workflowSpanID
orchestrationStatus                workflowStatus
createSubOrchestration             createChildWorkflow
completeOrchestration              completeWorkflow
terminateOrchestration             terminateWorkflow
=================================  ================================

Every other field keeps its name. What has no counterpart in wftest's schema is kept where it matters
and dropped where nothing reads it:

* ``taskExecutionId`` of ``TaskScheduledEvent`` / ``ScheduleTaskAction`` (a retried call keeps it)
  travels as the tag ``dapr.taskExecutionId``;
* ``workflowStarted.version`` (the workflow version and the patches ``ctx.is_patched()`` saw) and the
  Dapr-only event kinds (``executionStalled``, ``detachedWorkflowInstanceCreated``) travel as a
  ``GenericEvent`` whose data is ``{"wftest.dapr": {"version": ...}}`` or ``{"wftest.dapr": {"event": ...}}``
  (the version marker belongs to the nearest ``orchestratorStarted`` before it);
* dropped: ``router`` and app ids (multi-app routing), timer ``name``/``origin``, ``taskExecutionId`` of
  results, attestations and signer certificates, ``rerunParentInstanceInfo``, ``historyPropagationScope``.
  Dapr's executor reads none of them on replay (an optional timer is recognized by its fire time).

wftest-only kinds (``genericEvent`` other than the markers, ``historyState``, entity events,
``executionRewound``) have no Dapr counterpart: :func:`to_dapr_event` returns None for them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from dapr.ext.workflow._durabletask.internal import protos as dpb
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from wftest.errors import OrchestrationStateError
from wftest.protos import orchestrator_service_pb2 as pb

#: the tag that carries Dapr's ``taskExecutionId`` in wftest's events and actions
TASK_EXECUTION_TAG = "dapr.taskExecutionId"
#: the key of wftest's GenericEvent markers for what wftest's schema cannot hold
MARKER_KEY = "wftest.dapr"

TO_DAPR = {
    "subOrchestrationInstanceCreated": "childWorkflowInstanceCreated",
    "subOrchestrationInstanceCompleted": "childWorkflowInstanceCompleted",
    "subOrchestrationInstanceFailed": "childWorkflowInstanceFailed",
    "orchestratorStarted": "workflowStarted",
    "orchestratorCompleted": "workflowCompleted",
    "orchestrationInstance": "workflowInstance",
    "orchestrationSpanID": "workflowSpanID",
    "orchestrationStatus": "workflowStatus",
    "createSubOrchestration": "createChildWorkflow",
    "completeOrchestration": "completeWorkflow",
    "terminateOrchestration": "terminateWorkflow",
}
FROM_DAPR = {dapr: ours for ours, dapr in TO_DAPR.items()}

#: Dapr event kinds with no counterpart in wftest's schema (kept as GenericEvent markers)
DAPR_ONLY_EVENTS = frozenset({"executionStalled", "detachedWorkflowInstanceCreated"})

Special = Callable[[Message, Message, Any], None]
#: how one source field is copied: (how, target field name, handler) -- see _plan
Step = tuple[str, str, Any]
_plans: dict[tuple[str, str, bool], dict[str, Step]] = {}


def _copy(src: Message, dst: Message, renames: dict[str, str], special: dict[tuple[str, str], Special]) -> None:
    """Copy every set field of ``src`` into ``dst`` by (renamed) field name, recursively."""
    dst.SetInParent()
    plan = _plan(src.DESCRIPTOR, dst.DESCRIPTOR, renames, special)
    for field, value in src.ListFields():
        how, name, handler = plan[field.name]
        if how == "skip":
            continue
        if how == "special":
            handler(src, dst, value)
        elif how == "scalar":
            setattr(dst, name, value)
        elif how == "copy":  # a well-known type (Timestamp, StringValue, ...): the same class both sides
            getattr(dst, name).CopyFrom(value)
        elif how == "message":
            _copy(value, getattr(dst, name), renames, special)
        elif how == "repeated_scalar":
            getattr(dst, name).extend(value)
        elif how == "repeated_message":
            holder = getattr(dst, name)
            for item in value:
                _copy(item, holder.add(), renames, special)
        elif how == "map_scalar":
            getattr(dst, name).update(value)
        else:  # map_message
            holder = getattr(dst, name)
            for key, item in value.items():
                _copy(item, holder[key], renames, special)


def _plan(src: Any, dst: Any, renames: dict[str, str], special: dict[tuple[str, str], Special]) -> dict[str, Step]:
    """For each field of ``src``, how to copy it into ``dst`` (built once per pair of message types)."""
    key = (src.full_name, dst.full_name, renames is TO_DAPR)
    plan = _plans.get(key)
    if plan is not None:
        return plan
    plan = {}
    for field in src.fields:
        handler = special.get((src.name, field.name))
        target = dst.fields_by_name.get(renames.get(field.name, field.name))
        if handler is not None:
            plan[field.name] = ("special", "", handler)
        elif target is None or target.cpp_type != field.cpp_type or _is_repeated(target) != _is_repeated(field):
            plan[field.name] = ("skip", "", None)  # no counterpart in the other dialect
        elif _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            target_value = target.message_type.fields_by_name["value"] if _is_map(target) else None
            if target_value is None or target_value.cpp_type != value_field.cpp_type:
                plan[field.name] = ("skip", "", None)
            else:
                how = "map_message" if value_field.message_type is not None else "map_scalar"
                plan[field.name] = (how, target.name, None)
        elif field.message_type is None:
            plan[field.name] = ("repeated_scalar" if _is_repeated(field) else "scalar", target.name, None)
        elif _is_repeated(field):
            plan[field.name] = ("repeated_message", target.name, None)
        elif field.message_type.full_name.startswith("google.protobuf."):
            same = field.message_type.full_name == target.message_type.full_name
            plan[field.name] = ("copy" if same else "skip", target.name, None)
        else:
            plan[field.name] = ("message", target.name, None)
    _plans[key] = plan
    return plan


def _is_map(field: Any) -> bool:
    return bool(field.message_type is not None and field.message_type.GetOptions().map_entry)


def _is_repeated(field: Any) -> bool:
    try:
        return bool(field.is_repeated)  # protobuf >= 6.30
    except AttributeError:
        return bool(field.label == FieldDescriptor.LABEL_REPEATED)


# -- special fields ----------------------------------------------------------------------------------------


def _tags_to_execution_id(src: Message, dst: Message, tags: Any) -> None:
    if TASK_EXECUTION_TAG in tags and "taskExecutionId" in dst.DESCRIPTOR.fields_by_name:
        dst.taskExecutionId = tags[TASK_EXECUTION_TAG]  # type: ignore[attr-defined]


def _execution_id_to_tags(src: Message, dst: Message, execution_id: Any) -> None:
    dst.tags[TASK_EXECUTION_TAG] = execution_id  # type: ignore[attr-defined]


def _drop(src: Message, dst: Message, value: Any) -> None:
    pass


_SPECIAL_TO_DAPR: dict[tuple[str, str], Special] = {
    ("TaskScheduledEvent", "tags"): _tags_to_execution_id,
    ("ScheduleTaskAction", "tags"): _tags_to_execution_id,
}
_SPECIAL_FROM_DAPR: dict[tuple[str, str], Special] = {
    ("TaskScheduledEvent", "taskExecutionId"): _execution_id_to_tags,
    ("ScheduleTaskAction", "taskExecutionId"): _execution_id_to_tags,
    ("WorkflowStartedEvent", "version"): _drop,  # carried by a marker event (see from_dapr_events)
}


# -- markers -----------------------------------------------------------------------------------------------


def marker(kind: str, body: Message) -> pb.HistoryEvent:
    """A wftest ``GenericEvent`` carrying a Dapr message that wftest's schema has no place for."""
    event = pb.HistoryEvent(eventId=-1)
    data = {MARKER_KEY: {kind: json_format.MessageToDict(body)}}
    event.genericEvent.data.value = json.dumps(data, separators=(",", ":"), sort_keys=True)
    return event


def read_marker(event: pb.HistoryEvent) -> tuple[str, dict[str, Any]] | None:
    """``(kind, json body)`` of a marker made by :func:`marker`, or None for any other event."""
    if not event.HasField("genericEvent") or MARKER_KEY not in event.genericEvent.data.value:
        return None
    try:
        data = json.loads(event.genericEvent.data.value)[MARKER_KEY]
        [(kind, body)] = data.items()
    except (ValueError, KeyError, TypeError):
        return None
    return str(kind), body


def version_marker(version: Any) -> pb.HistoryEvent:
    """The marker of a Dapr ``WorkflowVersion`` (workflow version name and patches)."""
    return marker("version", version)


# -- events ------------------------------------------------------------------------------------------------


def to_dapr_event(event: pb.HistoryEvent) -> Any:
    """wftest's ``HistoryEvent`` in Dapr's dialect; None for kinds Dapr's schema cannot hold."""
    kind = event.WhichOneof("eventType")
    if kind == "genericEvent":
        found = read_marker(event)
        if found is not None and found[0] == "event":
            return json_format.ParseDict(found[1], dpb.HistoryEvent())
        return None
    if kind is None or TO_DAPR.get(kind, kind) not in dpb.HistoryEvent.DESCRIPTOR.fields_by_name:
        return None
    converted = dpb.HistoryEvent()
    _copy(event, converted, TO_DAPR, _SPECIAL_TO_DAPR)
    return converted


def from_dapr_event(event: Any) -> pb.HistoryEvent:
    """Dapr's ``HistoryEvent`` in wftest's schema (a marker event for Dapr-only kinds)."""
    kind = event.WhichOneof("eventType")
    if kind in DAPR_ONLY_EVENTS:
        converted = marker("event", event)
        converted.timestamp.CopyFrom(event.timestamp)
        return converted
    converted = pb.HistoryEvent()
    _copy(event, converted, FROM_DAPR, _SPECIAL_FROM_DAPR)
    return converted


def from_dapr_events(events: Iterable[Any]) -> list[pb.HistoryEvent]:
    """A Dapr history in wftest's schema: one event per event, plus a version marker after each
    ``workflowStarted`` that records a workflow version or patches."""
    converted: list[pb.HistoryEvent] = []
    for event in events:
        converted.append(from_dapr_event(event))
        if event.HasField("workflowStarted") and event.workflowStarted.HasField("version"):
            version = event.workflowStarted.version
            if version.name or version.patches:
                converted.append(version_marker(version))
    return converted


def to_dapr_events(events: Sequence[pb.HistoryEvent]) -> list[Any]:
    """A wftest history in Dapr's dialect (the inverse of :func:`from_dapr_events`): version markers go
    back into their ``workflowStarted``; events with no Dapr counterpart are left out."""
    converted: list[Any] = []
    started: Any = None
    for event in events:
        found = read_marker(event)
        if found is not None and found[0] == "version":
            if started is not None:
                merge_version(started.workflowStarted.version, found[1])
            continue
        dapr_event = to_dapr_event(event)
        if dapr_event is None:
            continue
        if dapr_event.HasField("workflowStarted"):
            started = dapr_event
        converted.append(dapr_event)
    return converted


def merge_version(version: Any, body: dict[str, Any]) -> None:
    """Add a version marker's name and patches to a Dapr ``WorkflowVersion``."""
    parsed = json_format.ParseDict(body, dpb.WorkflowVersion())
    if parsed.name:
        version.name = parsed.name
    version.patches.extend(p for p in parsed.patches if p not in version.patches)


# -- actions -----------------------------------------------------------------------------------------------


def from_dapr_action(action: Any) -> pb.OrchestratorAction:
    """Dapr's ``WorkflowAction`` as wftest's ``OrchestratorAction``."""
    kind = action.WhichOneof("workflowActionType")
    converted = pb.OrchestratorAction()
    _copy(action, converted, FROM_DAPR, _SPECIAL_FROM_DAPR)
    if converted.WhichOneof("orchestratorActionType") is None:
        raise OrchestrationStateError(
            f"Dapr's executor asked for a {kind!r} action (#{action.id}), which wftest's engine cannot carry out"
        )
    return converted


def to_dapr_action(action: pb.OrchestratorAction) -> Any:
    """wftest's ``OrchestratorAction`` in Dapr's dialect (for tests and tools)."""
    converted = dpb.WorkflowAction()
    _copy(action, converted, TO_DAPR, _SPECIAL_TO_DAPR)
    return converted
