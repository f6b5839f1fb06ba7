"""The in-memory backend: the default, and what the test harness runs on.

Deterministic, and in the order ``SqliteBackend`` reads: an instance's new events reach its step in the order
they became available (``available_at``: a timer when it is due, any other event when it was created; ties in
the order they were added), and the instance whose earliest new event became available first runs first.
Thread-safe behind one lock, so the concurrent worker can use it.

Retention (go-workflows' AutoExpiration), as ``SqliteBackend`` has it: with ``retention=timedelta(...)`` a
finished instance is deleted, with its history, once ``retention`` has passed since it finished, when a worker
looks for work (``fetch_orchestration_work_item``, ``ready_instances``) at a time past its expiry. So a
long-running in-memory sidecar (``wftest serve --retention 7d``) does not grow without bound, and on a
virtual clock expiry happens exactly when the clock passes it (it never moves the clock by itself).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from wftest.backends._base import (
    ActivityWorkItem,
    Backend,
    IdReusePolicy,
    InstanceQuery,
    OrchestrationWorkItem,
    available_at,
)
from wftest.errors import (
    InstanceAlreadyExistsError,
    InstanceNotCompletedError,
    InstanceNotFoundError,
    LockLostError,
)
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.runtime import ActivityTask, InstanceRecord, Message, StepUpdate, is_terminal

_Inbound = tuple[int, int, pb.HistoryEvent, str | None]


def _order(inbound: _Inbound) -> tuple[int, int]:
    return inbound[0], inbound[1]


@dataclass
class _Instance:
    record: InstanceRecord
    history: list[pb.HistoryEvent] = field(default_factory=list)
    #: new events in the order they became available: (available_at, seq, event, the execution it is
    #: addressed to (None: whichever is current)), seq being the order they were added in
    inbox: list[_Inbound] = field(default_factory=list)
    #: the lowest seq in the inbox (sys.maxsize when empty)
    min_seq: int = sys.maxsize
    #: the key and ticket of its live entry in the ready queue; None when it is not queued (locked, or
    #: nothing to do)
    ready_key: tuple[int, int] | None = None
    ready_ticket: int = -1
    owner: str | None = None
    locked_until: datetime | None = None
    #: the lock expired: another worker may take the instance over; until one does, the owner may still
    #: commit, abandon or renew (as with SqliteBackend, whose lock is the owner and time on the row)
    lock_expired: bool = False
    abandon_count: int = 0
    generation: int = 0  # unique per instance object, so delayed events of a replaced one are dropped
    #: keys of its activity tasks not done yet (queued or held), dropped with it
    activity_keys: set[int] = field(default_factory=set)

    def held(self) -> bool:
        """Whether a worker holds the instance and no other may take it."""
        return self.owner is not None and not self.lock_expired


def _starts(event: pb.HistoryEvent) -> bool:
    kind: str | None = event.WhichOneof("eventType")
    return kind in ("executionStarted", "executionTerminated")


class MemoryBackend(Backend):
    """Instances, histories and queues in Python dicts and lists; method docs are on :class:`Backend`."""

    def __init__(self, *, retention: timedelta | None = None) -> None:
        """``retention``: delete finished instances this long after they finished (see the module docstring).

        Example::

            engine = Engine(backend=MemoryBackend(retention=timedelta(days=7)), clock=SystemClock())
        """
        if retention is not None and (not isinstance(retention, timedelta) or retention <= timedelta(0)):
            raise ValueError(f"retention must be a positive timedelta or None, got {retention!r}")
        self.retention = retention
        #: finished instances by expiry: (expires at, seq, instance id, when it finished); entries of
        #: instances purged, restarted or replaced since are skipped when they come up
        self._expiring: list[tuple[datetime, int, str, datetime]] = []
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._instances: dict[str, _Instance] = {}
        #: instances with visible events, unlocked: (key, ticket, instance id), the key being (the earliest
        #: available_at, the lowest seq) of its inbox, as SqliteBackend orders them; an entry whose ticket is
        #: not its instance's ready_ticket any more (taken, requeued, dropped) is stale and skipped
        self._ready: list[tuple[tuple[int, int], int, str]] = []
        self._locked: dict[str, _Instance] = {}
        #: delayed events by due time: (due, seq, instance id, generation, event, execution, available_at)
        self._delayed: list[tuple[datetime, int, str, int, pb.HistoryEvent, str | None, int]] = []
        #: activity tasks to run, by key (the order they were scheduled in, as SqliteBackend's ids); an
        #: entry whose key is not in _pending_activities (done, or its instance dropped) is stale
        self._activities: list[tuple[int, ActivityTask]] = []
        self._pending_activities: dict[int, ActivityTask] = {}
        #: activity locks by key: (task, owner, locked until), expired ones included until taken over
        self._activity_locks: dict[int, tuple[ActivityTask, str, datetime]] = {}
        #: keys of expired activity locks whose task is back in _activities
        self._activity_requeued: set[int] = set()
        #: no lock expires before this (every fetch checks for expired locks: skip the scan until then)
        self._next_expiry = datetime.max
        self._seq = itertools.count()

    # -- instances ----------------------------------------------------------------------------------

    def create_instance(self, start: pb.HistoryEvent, record: InstanceRecord, *, visible_at: datetime | None,
                        policy: IdReusePolicy, now: datetime) -> bool:
        with self._lock:
            existing = self._instances.get(record.instance_id)
            if existing is not None:
                if policy is IdReusePolicy.IGNORE:
                    return False
                if policy is IdReusePolicy.ERROR:
                    raise InstanceAlreadyExistsError(record.instance_id, _status(existing.record.status))
                self._drop(record.instance_id)
            self._instances[record.instance_id] = _Instance(record=record.copy(), generation=next(self._seq))
            self._deliver(record.instance_id, start, visible_at, None)
            self._changed.notify_all()
            return True

    def add_event(self, instance_id: str, event: pb.HistoryEvent, *, visible_at: datetime | None = None) -> None:
        with self._lock:
            if instance_id not in self._instances:
                raise InstanceNotFoundError(instance_id)
            self._deliver(instance_id, event, visible_at, None)
            self._changed.notify_all()

    def get_instance(self, instance_id: str) -> InstanceRecord | None:
        with self._lock:
            inst = self._instances.get(instance_id)
            return inst.record.copy() if inst is not None else None

    def get_history(self, instance_id: str) -> list[pb.HistoryEvent]:
        with self._lock:
            inst = self._instances.get(instance_id)
            if inst is None:
                raise InstanceNotFoundError(instance_id)
            return list(inst.history)

    def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceRecord], str | None]:
        with self._lock:
            records = [i.record for i in self._instances.values() if _matches(i.record, query)]
        records.sort(key=lambda r: (r.created_at, r.instance_id))
        if query.continuation_token:
            created, _, iid = query.continuation_token.partition("|")
            after = (datetime.fromisoformat(created), iid)
            records = [r for r in records if (r.created_at, r.instance_id) > after]
        page = records[: max(1, query.page_size)]
        token = None
        if len(records) > len(page):
            last = page[-1]
            token = f"{last.created_at.isoformat()}|{last.instance_id}"
        return [r.copy() for r in page], token

    def purge_expired(self, now: datetime) -> int:
        """Delete the finished instances whose ``retention`` ran out at ``now``; returns how many.

        Called by the backend itself as workers look for work; call it to expire instances at a given time.
        Instances locked by a worker are left for a later sweep. Does nothing without ``retention``.
        """
        if self.retention is None:
            return 0
        expired = 0
        with self._lock:
            self._expire_locks(now)
            expiring = self._expiring
            locked: list[tuple[datetime, int, str, datetime]] = []
            while expiring and expiring[0][0] <= now:
                entry = heapq.heappop(expiring)
                _, _, instance_id, completed_at = entry
                inst = self._instances.get(instance_id)
                if inst is None or not is_terminal(inst.record.status) or inst.record.completed_at != completed_at:
                    continue  # purged, restarted or replaced since it finished
                if inst.held():
                    locked.append(entry)
                    continue
                self._drop(instance_id)
                expired += 1
            for when, seq, instance_id, completed_at in locked:  # tried again once the clock has moved on
                heapq.heappush(expiring, (max(when, now + timedelta(microseconds=1)), seq, instance_id, completed_at))
        return expired

    def purge_instance(self, instance_id: str) -> None:
        with self._lock:
            inst = self._instances.get(instance_id)
            if inst is None:
                raise InstanceNotFoundError(instance_id)
            if not is_terminal(inst.record.status):
                raise InstanceNotCompletedError(instance_id, _status(inst.record.status), "purge")
            self._drop(instance_id)

    # -- orchestration work items -------------------------------------------------------------------

    def fetch_orchestration_work_item(
        self, owner: str, now: datetime, lock_for: timedelta, *, instance_id: str | None = None
    ) -> OrchestrationWorkItem | None:
        with self._lock:
            self._release_due(now)
            self._expire_locks(now)
            if self._expiring and self._expiring[0][0] <= now:
                self.purge_expired(now)
            if instance_id is not None:
                inst = self._instances.get(instance_id)
                if inst is None or inst.ready_key is None:
                    return None
            else:
                inst = self._next_ready()
                if inst is None:
                    return None
                instance_id = inst.record.instance_id
            inst.ready_key = None
            inst.owner = owner
            inst.locked_until = now + lock_for
            inst.lock_expired = False
            self._next_expiry = min(self._next_expiry, inst.locked_until)
            self._locked[instance_id] = inst
            current = inst.record.execution_id
            # events addressed to an execution that is over (continue-as-new, replaced) are dropped
            events = [e for _, _, e, execution in inst.inbox if execution is None or execution == current]
            return OrchestrationWorkItem(
                instance_id=instance_id,
                new_events=events,
                record=inst.record.copy(),
                history_length=len(inst.history),
                owner=owner,
                locked_until=inst.locked_until,
                token=(inst, frozenset(seq for _, seq, _, _ in inst.inbox)),  # what was handed out
                attempts=inst.abandon_count,
            )

    def complete_orchestration_work_item(
        self, item: OrchestrationWorkItem, update: StepUpdate, now: datetime
    ) -> list[Message]:
        with self._lock:
            inst = self._owned(item)
            self._take_handed_out(inst, item)
            if update.replace_history:
                inst.history = list(update.new_history)
            else:
                inst.history.extend(update.new_history)
            # the update's record becomes the stored one (callers build a fresh one per step)
            record = update.record
            record.history_length = len(inst.history)
            inst.record = record
            if self.retention is not None and is_terminal(record.status) and record.completed_at is not None:
                heapq.heappush(self._expiring, (record.completed_at + self.retention, next(self._seq),
                                                item.instance_id, record.completed_at))
            inst.abandon_count = 0
            for task in update.activities:
                key = next(self._seq)
                self._pending_activities[key] = task
                inst.activity_keys.add(key)
                heapq.heappush(self._activities, (key, task))
            undelivered: list[Message] = []
            for message in update.messages:
                if not self._route(message):
                    undelivered.append(message)
            self._unlock(inst)
            self._changed.notify_all()
            return undelivered

    def abandon_orchestration_work_item(self, item: OrchestrationWorkItem, now: datetime, delay: timedelta) -> None:
        with self._lock:
            inst = self._owned(item)
            inst.abandon_count += 1
            if delay > timedelta(0):
                # hide what was handed out until the delay is over, keeping its places in the order; what
                # came in since stays visible (as with SqliteBackend)
                for available, seq, event, execution in self._take_handed_out(inst, item):
                    heapq.heappush(self._delayed, (now + delay, seq, item.instance_id, inst.generation, event,
                                                   execution, available))
            self._unlock(inst)
            self._changed.notify_all()

    def renew_orchestration_work_item_lock(self, item: OrchestrationWorkItem, now: datetime, lock_for: timedelta
                                           ) -> None:
        with self._lock:
            inst = self._owned(item)
            inst.locked_until = item.locked_until = now + lock_for
            inst.lock_expired = False
            inst.ready_key = None  # queued when its lock expired: held again
            self._locked[item.instance_id] = inst
            self._next_expiry = min(self._next_expiry, inst.locked_until)

    # -- activity work items ------------------------------------------------------------------------

    def fetch_activity_work_item(self, owner: str, now: datetime, lock_for: timedelta) -> ActivityWorkItem | None:
        with self._lock:
            self._expire_locks(now)
            entry = self._next_activity()
            if entry is None:
                return None
            key, task = entry
            heapq.heappop(self._activities)
            self._activity_requeued.discard(key)  # taken over, if its lock had expired
            until = now + lock_for
            self._activity_locks[key] = (task, owner, until)
            self._next_expiry = min(self._next_expiry, until)
            return ActivityWorkItem(task=task, owner=owner, locked_until=until, token=key)

    def complete_activity_work_item(
        self, item: ActivityWorkItem, result: pb.HistoryEvent, now: datetime, *, visible_at: datetime | None = None
    ) -> None:
        with self._lock:
            key = self._owned_activity(item)
            del self._activity_locks[key]
            self._activity_requeued.discard(key)  # its entry in the queue goes stale
            del self._pending_activities[key]
            inst = self._instances[item.task.instance_id]  # a dropped instance takes its activities' locks along
            inst.activity_keys.discard(key)
            self._deliver(item.task.instance_id, result, visible_at, item.task.execution_id)
            self._changed.notify_all()

    def abandon_activity_work_item(self, item: ActivityWorkItem, now: datetime) -> None:
        with self._lock:
            key = self._owned_activity(item)
            del self._activity_locks[key]
            if key in self._activity_requeued:
                self._activity_requeued.discard(key)  # already back in the queue
            else:
                heapq.heappush(self._activities, (key, item.task))
            self._changed.notify_all()

    def renew_activity_work_item_lock(self, item: ActivityWorkItem, now: datetime, lock_for: timedelta) -> None:
        with self._lock:
            key = self._owned_activity(item)
            task, owner, _ = self._activity_locks[key]
            until = item.locked_until = now + lock_for
            self._activity_locks[key] = (task, owner, until)
            self._activity_requeued.discard(key)  # held again: its entry in the queue goes stale
            self._next_expiry = min(self._next_expiry, until)

    # -- scheduling queries -------------------------------------------------------------------------

    def ready_instances(self, now: datetime) -> list[str]:
        with self._lock:
            self._release_due(now)
            self._expire_locks(now)
            if self._expiring and self._expiring[0][0] <= now:
                self.purge_expired(now)
            live = sorted(entry for entry in self._ready if self._is_queued(entry))
            self._ready = live  # sorted is a heap; stale entries (instances fetched by id) are gone
            return [entry[2] for entry in live]

    def next_wakeup(self) -> datetime | None:
        with self._lock:
            while self._delayed:
                when, _, instance_id, generation, *_ = self._delayed[0]
                inst = self._instances.get(instance_id)
                if inst is not None and inst.generation == generation:
                    return when
                heapq.heappop(self._delayed)
            return None

    def has_visible_work(self, now: datetime) -> bool:
        with self._lock:
            self._release_due(now)
            self._expire_locks(now)
            return self._first_ready() is not None or self._next_activity() is not None

    def wait_for_work(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait(timeout)

    # -- internals ----------------------------------------------------------------------------------

    def _deliver(self, instance_id: str, event: pb.HistoryEvent, visible_at: datetime | None,
                 execution_id: str | None) -> None:
        inst = self._instances[instance_id]
        available = available_at(event, visible_at)
        if visible_at is not None:
            heapq.heappush(self._delayed, (visible_at, next(self._seq), instance_id, inst.generation, event,
                                           execution_id, available))
            return
        self._add_to_inbox(inst, (available, next(self._seq), event, execution_id))

    def _add_to_inbox(self, inst: _Instance, inbound: _Inbound) -> None:
        # in the order the events became available, as SqliteBackend reads them: mostly at the end (an event
        # is created now), ahead of later ones when a timer comes due or a hidden event shows again (a step
        # removes exactly the events it was handed, wherever they stand)
        inbox = inst.inbox
        if not inbox or inbound[:2] > inbox[-1][:2]:
            inbox.append(inbound)
        else:
            bisect.insort(inbox, inbound, key=_order)
        inst.min_seq = min(inst.min_seq, inbound[1])
        self._queue_if_ready(inst)

    def _take_handed_out(self, inst: _Instance, item: OrchestrationWorkItem) -> list[_Inbound]:
        """Remove from the inbox the events the work item was given (not those that came in since)."""
        _, handed_out = cast(tuple[_Instance, frozenset[int]], item.token)
        if len(handed_out) == len(inst.inbox):  # nothing came in meanwhile: the usual case
            taken, inst.inbox, inst.min_seq = inst.inbox, [], sys.maxsize
            return taken
        taken = [inbound for inbound in inst.inbox if inbound[1] in handed_out]
        inst.inbox = [inbound for inbound in inst.inbox if inbound[1] not in handed_out]
        inst.min_seq = min((seq for _, seq, _, _ in inst.inbox), default=sys.maxsize)
        return taken

    def _queue_if_ready(self, inst: _Instance) -> None:
        """Queue an unlocked instance with new events (and a start) for work, by its key (once per key)."""
        inbox = inst.inbox
        if inst.held() or not inbox:
            return
        if not inst.history and not any(_starts(e) for _, _, e, _ in inbox):
            return  # events ahead of a delayed start wait for it
        key = (inbox[0][0], inst.min_seq)
        if inst.ready_key != key:  # new, or earlier than its queued entry (which goes stale)
            inst.ready_key = key
            inst.ready_ticket = next(self._seq)
            heapq.heappush(self._ready, (key, inst.ready_ticket, inst.record.instance_id))

    def _is_queued(self, entry: tuple[tuple[int, int], int, str]) -> bool:
        inst = self._instances.get(entry[2])
        return inst is not None and inst.ready_key is not None and inst.ready_ticket == entry[1]

    def _first_ready(self) -> _Instance | None:
        """The queued instance whose earliest new event became available first (left at the head of the
        queue); stale entries go."""
        ready = self._ready
        while ready:
            if self._is_queued(ready[0]):
                return self._instances[ready[0][2]]
            heapq.heappop(ready)
        return None

    def _next_ready(self) -> _Instance | None:
        """Take the first queued instance off the queue."""
        inst = self._first_ready()
        if inst is not None:
            heapq.heappop(self._ready)
        return inst

    def _release_due(self, now: datetime) -> None:
        delayed = self._delayed
        while delayed and delayed[0][0] <= now:
            _, seq, instance_id, generation, event, execution_id, available = heapq.heappop(delayed)
            inst = self._instances.get(instance_id)
            if inst is not None and inst.generation == generation:
                self._add_to_inbox(inst, (available, seq, event, execution_id))

    def _route(self, message: Message) -> bool:
        event = message.event
        target = self._instances.get(message.instance_id)
        if event.HasField("executionStarted"):
            # a sub-orchestration start: creates (or replaces a finished) instance
            if target is not None and not is_terminal(target.record.status):
                return False
            if target is not None:
                self._drop(message.instance_id)
            started = event.executionStarted
            parent = started.parentInstance
            record = InstanceRecord(
                instance_id=message.instance_id,
                name=started.name,
                status=pb.ORCHESTRATION_STATUS_PENDING,
                created_at=event.timestamp.ToDatetime(),
                last_updated_at=event.timestamp.ToDatetime(),
                execution_id=started.orchestrationInstance.executionId.value or None,
                input=started.input.value if started.HasField("input") else None,
                parent_instance_id=parent.orchestrationInstance.instanceId or None,
                parent_task_id=parent.taskScheduledId,
                parent_execution_id=parent.orchestrationInstance.executionId.value or None,
                version=started.version.value if started.HasField("version") else None,
            )
            self._instances[message.instance_id] = _Instance(record=record, generation=next(self._seq))
            self._deliver(message.instance_id, event, message.visible_at, None)
            return True
        if target is None:
            return False
        self._deliver(message.instance_id, event, message.visible_at, message.execution_id)
        return True

    def _drop(self, instance_id: str) -> None:
        inst = self._instances.pop(instance_id, None)
        self._locked.pop(instance_id, None)
        if inst is not None:
            inst.ready_key = None  # its queue entry goes stale
            inst.generation += 1  # invalidates its delayed messages
            for key in inst.activity_keys:  # queue entries go stale; a holder's late result is refused
                del self._pending_activities[key]
                self._activity_locks.pop(key, None)
                self._activity_requeued.discard(key)

    def _owned(self, item: OrchestrationWorkItem) -> _Instance:
        inst = self._instances.get(item.instance_id)
        expected, _ = cast(tuple[_Instance, frozenset[int]], item.token)
        if inst is None or inst is not expected or inst.owner != item.owner or inst.locked_until != item.locked_until:
            raise LockLostError(
                f"the lock on orchestration {item.instance_id!r} held by {item.owner!r} expired and was taken "
                "over (or the instance was purged); nothing was written"
            )
        return inst

    def _owned_activity(self, item: ActivityWorkItem) -> int:
        """The item's key, or ``LockLostError`` if its lock was taken over (or it is done)."""
        key = cast(int, item.token)
        held = self._activity_locks.get(key)
        if held is None or held[1] != item.owner or held[2] != item.locked_until:
            raise LockLostError(
                f"the lock on activity {item.task.name!r} (instance {item.task.instance_id!r}, task "
                f"#{item.task.task_id}) held by {item.owner!r} was lost; nothing was written"
            )
        return key

    def _unlock(self, inst: _Instance) -> None:
        inst.owner = None
        inst.locked_until = None
        inst.lock_expired = False
        inst.ready_key = None  # queued while its lock had expired: queued again by its inbox now
        self._locked.pop(inst.record.instance_id, None)
        self._queue_if_ready(inst)

    def _next_activity(self) -> tuple[int, ActivityTask] | None:
        """The first activity task that may be taken (left at the head of the queue); stale entries go."""
        queue = self._activities
        while queue:
            key, task = queue[0]
            if key in self._pending_activities and (key not in self._activity_locks or key in self._activity_requeued):
                return key, task
            heapq.heappop(queue)  # done, dropped, or held again after its lock expired
        return None

    def _expire_locks(self, now: datetime) -> None:
        """Make the work whose lock expired at ``now`` takeable by another worker. Until one takes it, the
        holder may still commit, abandon or renew (the lock is the owner and time it was given)."""
        if now < self._next_expiry:
            return
        next_expiry = datetime.max
        for instance_id, inst in list(self._locked.items()):
            if inst.locked_until is not None and inst.locked_until <= now:
                del self._locked[instance_id]
                inst.lock_expired = True
                self._queue_if_ready(inst)
            elif inst.locked_until is not None:
                next_expiry = min(next_expiry, inst.locked_until)
        for key, (task, _, until) in self._activity_locks.items():
            if key in self._activity_requeued:
                continue
            if until <= now:
                self._activity_requeued.add(key)
                heapq.heappush(self._activities, (key, task))
            else:
                next_expiry = min(next_expiry, until)
        self._next_expiry = next_expiry


def _status(status: int) -> str:
    return str(pb.OrchestrationStatus.Name(status)).removeprefix("ORCHESTRATION_STATUS_")


def _matches(record: InstanceRecord, query: InstanceQuery) -> bool:
    if query.runtime_status and record.status not in query.runtime_status:
        return False
    if query.created_from is not None and record.created_at < query.created_from:
        return False
    if query.created_to is not None and record.created_at > query.created_to:
        return False
    if query.instance_id_prefix and not record.instance_id.startswith(query.instance_id_prefix):
        return False
    return not (query.name is not None and record.name != query.name)
