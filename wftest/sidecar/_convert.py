"""Conversions between wftest's records and the sidecar's protobuf messages (no gRPC here).

Payloads cross the sidecar untouched: the SDK sends JSON text and reads back the same text, so the
sidecar's engine runs with :class:`PassThroughConverter` and never decodes a payload.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from google.protobuf import timestamp_pb2, wrappers_pb2

from wftest import _events as ev
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.runtime import InstanceRecord


class PassThroughConverter:
    """A converter for payloads that are already JSON text: both directions return the text unchanged.

    The sidecar stores what the SDK sent, byte for byte (``json.dumps([1, 2])`` stays ``"[1, 2]"``), and
    ``None`` stays "no value".

    Example::

        >>> PassThroughConverter().serialize('{"a": 1}')
        '{"a": 1}'
    """

    def serialize(self, value: Any) -> str | None:
        """Return the JSON text as given; anything but ``str`` or ``None`` is a programming error."""
        if value is None or isinstance(value, str):
            return value
        raise TypeError(f"the sidecar passes payloads through as JSON text; got a {type(value).__qualname__}")

    def deserialize(self, data: str | None) -> Any:
        """Return the JSON text as given (``""`` is "no value")."""
        return data or None


def string_value(message: Any, field: str) -> str | None:
    """The value of a ``StringValue`` field, or ``None`` when the field is absent."""
    if not message.HasField(field):
        return None
    value: str = getattr(message, field).value
    return value


def optional_string(value: str | None) -> wrappers_pb2.StringValue | None:
    """A ``StringValue`` for ``value``, or ``None`` (field left absent)."""
    return wrappers_pb2.StringValue(value=value) if value is not None else None


def to_datetime(stamp: timestamp_pb2.Timestamp) -> datetime:
    """A protobuf timestamp as naive UTC (the engine's time representation)."""
    return stamp.ToDatetime()


def naive_utc(when: datetime) -> datetime:
    """Naive UTC for a datetime that may be aware."""
    if when.utcoffset() is None:
        return when
    return when.astimezone(timezone.utc).replace(tzinfo=None)


def orchestration_state(record: InstanceRecord, *, with_payloads: bool) -> pb.OrchestrationState:
    """The ``OrchestrationState`` message of an instance, as ``GetInstance`` and ``QueryInstances`` return it."""
    state = pb.OrchestrationState(
        instanceId=record.instance_id,
        name=record.name,
        orchestrationStatus=record.status,  # type: ignore[arg-type]
    )
    state.createdTimestamp.CopyFrom(ev.timestamp(record.created_at))
    state.lastUpdatedTimestamp.CopyFrom(ev.timestamp(record.last_updated_at))
    if record.completed_at is not None:
        state.completedTimestamp.CopyFrom(ev.timestamp(record.completed_at))
    if record.scheduled_start_at is not None:
        state.scheduledStartTimestamp.CopyFrom(ev.timestamp(record.scheduled_start_at))
    if record.version is not None:
        state.version.value = record.version
    if record.execution_id is not None:
        state.executionId.value = record.execution_id
    if record.parent_instance_id is not None:
        state.parentInstanceId.value = record.parent_instance_id
    if record.failure_details is not None:
        state.failureDetails.CopyFrom(record.failure_details)
    if with_payloads:
        if record.input is not None:
            state.input.value = record.input
        if record.output is not None:
            state.output.value = record.output
        if record.custom_status is not None:
            state.customStatus.value = record.custom_status
    return state


def first_started(events: Iterable[pb.HistoryEvent]) -> pb.ExecutionStartedEvent | None:
    """The ``ExecutionStarted`` body among ``events`` (the current execution's first), if any."""
    for event in events:
        if event.HasField("executionStarted"):
            return event.executionStarted
    return None
