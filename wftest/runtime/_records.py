"""The records that describe an instance and a step's commit; backends store them.

Statuses are the protobuf ``OrchestrationStatus`` numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from wftest.protos import orchestrator_service_pb2 as pb

RUNNING = pb.ORCHESTRATION_STATUS_RUNNING
COMPLETED = pb.ORCHESTRATION_STATUS_COMPLETED
CONTINUED_AS_NEW = pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW
FAILED = pb.ORCHESTRATION_STATUS_FAILED
CANCELED = pb.ORCHESTRATION_STATUS_CANCELED
TERMINATED = pb.ORCHESTRATION_STATUS_TERMINATED
PENDING = pb.ORCHESTRATION_STATUS_PENDING
SUSPENDED = pb.ORCHESTRATION_STATUS_SUSPENDED

TERMINAL_STATUSES = frozenset({COMPLETED, FAILED, TERMINATED, CANCELED})


def is_terminal(status: int) -> bool:
    """True for statuses after which an instance never runs again."""
    return status in TERMINAL_STATUSES


@dataclass
class InstanceRecord:
    """An instance's metadata (its current execution)."""

    instance_id: str
    name: str
    status: int
    created_at: datetime
    last_updated_at: datetime
    execution_id: str | None = None
    input: str | None = None
    output: str | None = None
    custom_status: str | None = None
    failure_details: pb.TaskFailureDetails | None = None
    completed_at: datetime | None = None
    scheduled_start_at: datetime | None = None
    parent_instance_id: str | None = None
    parent_task_id: int | None = None
    parent_execution_id: str | None = None
    version: str | None = None
    #: number of events in the history (lets engines check that a cached executor is current)
    history_length: int = 0

    def copy(self) -> InstanceRecord:
        """A shallow copy, safe to modify."""
        # dataclasses.replace() costs ~20 us (it re-runs __init__); a dict copy costs well under 1 us.
        clone = object.__new__(InstanceRecord)
        clone.__dict__.update(self.__dict__)
        return clone


@dataclass
class ActivityTask:
    """An activity to run: the ``TaskScheduled`` event plus where its result goes."""

    instance_id: str
    execution_id: str | None
    task_id: int
    name: str
    input: str | None
    scheduled_at: datetime
    #: the ``TaskScheduled`` event's tags (what the activity's context is extracted from); empty if none
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Message:
    """A history event for an instance (possibly another one), visible from ``visible_at``.

    With ``execution_id`` the event belongs to that execution only (a timer, an activity or child
    result): if the instance has moved on (continue-as-new, or replaced under the same id) it is dropped,
    never delivered to the wrong execution.
    """

    instance_id: str
    event: pb.HistoryEvent
    visible_at: datetime | None = None
    execution_id: str | None = None


@dataclass
class StepUpdate:
    """Everything one orchestration step commits, atomically."""

    record: InstanceRecord
    new_history: list[pb.HistoryEvent]
    #: continue-as-new: ``new_history`` replaces the history instead of extending it
    replace_history: bool = False
    activities: list[ActivityTask] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)


