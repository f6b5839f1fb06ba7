"""The ``Backend`` protocol and the records that cross it.

A backend stores instances (metadata + history), a queue of new events per instance (with visibility
times: that is how durable timers and delayed starts work), a queue of activity tasks, and locks on
work items (owner + expiry). It never reads a clock: the engine passes ``now`` in. Everything a step
produces is committed by one call, atomically.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

from wftest.protos import orchestrator_service_pb2 as pb
from wftest.runtime import ActivityTask, InstanceRecord, Message, StepUpdate

EPOCH = datetime(1970, 1, 1)


def micros(when: datetime) -> int:
    """``when`` (naive UTC, or aware) in microseconds since the epoch."""
    if when.utcoffset() is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    delta = when - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def available_at(event: pb.HistoryEvent, visible_at: datetime | None) -> int:
    """When ``event`` became available to its instance, in microseconds since the epoch.

    A delayed event (a timer, a delayed start) when it is due, any other when it was created (its timestamp).
    Backends deliver an instance's new events in this order, ties in the order they were added, so an event
    raised at 09:59 precedes a timer due at 10:00 however late both are fetched, and the same workflows write
    the same histories on every backend.
    """
    if visible_at is not None:
        return micros(visible_at)
    return event.timestamp.seconds * 1_000_000 + event.timestamp.nanos // 1000


class IdReusePolicy(enum.Enum):
    """What ``schedule_new_orchestration`` does when the instance id is already taken.

    ``ERROR`` (default) raises ``InstanceAlreadyExistsError``; ``IGNORE`` keeps the existing instance
    and returns its id; ``TERMINATE`` terminates a running instance (or discards a finished one) and
    starts the new one in its place.
    """

    ERROR = "error"
    IGNORE = "ignore"
    TERMINATE = "terminate"


@dataclass
class OrchestrationWorkItem:
    """A locked batch of new events for one instance."""

    instance_id: str
    new_events: list[pb.HistoryEvent]
    record: InstanceRecord
    history_length: int
    owner: str
    locked_until: datetime
    #: backend-private handle on the consumed messages
    token: object = None
    #: how often this work was abandoned before (abandon delays grow with it)
    attempts: int = 0


@dataclass
class ActivityWorkItem:
    """A locked activity task."""

    task: ActivityTask
    owner: str
    locked_until: datetime
    token: object = None


@dataclass
class InstanceQuery:
    """Filters for ``query_instances`` (all optional; results ordered by creation time, then id)."""

    runtime_status: Sequence[int] | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    instance_id_prefix: str | None = None
    name: str | None = None
    page_size: int = 100
    continuation_token: str | None = None


class Backend(Protocol):
    """Storage for instances, histories, queues and locks. See the module docstring."""

    def create_instance(self, start: pb.HistoryEvent, record: InstanceRecord, *, visible_at: datetime | None,
                        policy: IdReusePolicy, now: datetime) -> bool:
        """Create an instance and queue its ``ExecutionStarted``; False if ``IGNORE`` kept an existing one.

        Raises ``InstanceAlreadyExistsError`` under ``ERROR`` when the id is taken.
        """
        ...

    def add_event(self, instance_id: str, event: pb.HistoryEvent, *, visible_at: datetime | None = None) -> None:
        """Queue an event for an existing instance; ``InstanceNotFoundError`` otherwise."""
        ...

    def fetch_orchestration_work_item(
        self, owner: str, now: datetime, lock_for: timedelta, *, instance_id: str | None = None
    ) -> OrchestrationWorkItem | None:
        """Lock the next instance with visible new events (or that one instance), or return None.

        The work item's new events are in the order they became available (:func:`available_at`), ties in
        the order they were added.
        """
        ...

    def ready_instances(self, now: datetime) -> list[str]:
        """Ids of the instances that have visible new events and are not locked, in the order a fetch takes
        them: by their earliest new event's :func:`available_at`, ties by the order events were added."""
        ...

    def complete_orchestration_work_item(
        self, item: OrchestrationWorkItem, update: StepUpdate, now: datetime
    ) -> list[Message]:
        """Commit a step; returns messages addressed to instances that do not exist (undelivered).

        Raises ``LockLostError`` (and writes nothing) if the lock expired and was taken over.
        """
        ...

    def abandon_orchestration_work_item(self, item: OrchestrationWorkItem, now: datetime, delay: timedelta) -> None:
        """Release the lock; the events become visible again after ``delay``."""
        ...

    def renew_orchestration_work_item_lock(self, item: OrchestrationWorkItem, now: datetime, lock_for: timedelta
                                           ) -> None:
        """Extend the lock to ``now + lock_for`` (``item.locked_until`` follows, atomically with the store).

        Raises ``LockLostError`` (and changes nothing) if the lock is no longer ``item``'s.
        """
        ...

    def fetch_activity_work_item(self, owner: str, now: datetime, lock_for: timedelta) -> ActivityWorkItem | None:
        """Lock the next activity task, or return None."""
        ...

    def complete_activity_work_item(
        self, item: ActivityWorkItem, result: pb.HistoryEvent, now: datetime, *, visible_at: datetime | None = None
    ) -> None:
        """Delete the task and queue its result for the orchestration (visible from ``visible_at``), atomically."""
        ...

    def abandon_activity_work_item(self, item: ActivityWorkItem, now: datetime) -> None:
        """Release the lock; the task is visible again at once."""
        ...

    def renew_activity_work_item_lock(self, item: ActivityWorkItem, now: datetime, lock_for: timedelta) -> None:
        """Extend the lock to ``now + lock_for`` (``item.locked_until`` follows, atomically with the store).

        Raises ``LockLostError`` (and changes nothing) if the lock is no longer ``item``'s.
        """
        ...

    def get_instance(self, instance_id: str) -> InstanceRecord | None:
        """The instance's metadata, or None."""
        ...

    def get_history(self, instance_id: str) -> list[pb.HistoryEvent]:
        """The instance's history (a copy); ``InstanceNotFoundError`` if unknown."""
        ...

    def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceRecord], str | None]:
        """A page of matching instances and the token for the next page (None at the end)."""
        ...

    def purge_instance(self, instance_id: str) -> None:
        """Delete a completed instance; ``InstanceNotFoundError`` / ``InstanceNotCompletedError``."""
        ...

    def next_wakeup(self) -> datetime | None:
        """The earliest time still to come at which a queued event becomes visible (timers, delayed starts).

        Events that came due by the last fetch or ``ready_instances`` are not counted, even while their instance
        is locked or not started yet: a time already past would make a driver spin.
        """
        ...

    def has_visible_work(self, now: datetime) -> bool:
        """True if a work item could be fetched at ``now``."""
        ...

    def wait_for_work(self, timeout: float) -> None:
        """Block up to ``timeout`` seconds or until new work may be available (real-time workers)."""
        ...
