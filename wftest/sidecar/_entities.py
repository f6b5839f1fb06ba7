"""Durable entities in the sidecar: where an entity lives, how its operations run, its locks and its RPCs.

An entity ``@name@key`` is an instance of the backend under that id, as the Durable Task Framework keeps
entities. Nothing new is stored, so both backends keep entities without a schema change, and with
``--db`` they survive a restart:

- The instance's queue of new events holds the messages for the entity (``entityOperationSignaled``,
  ``entityOperationCalled``, ``entityLockRequested``, ``entityUnlockSent``). A message is committed with
  the orchestration step (or entity batch) that sent it, in the same transaction.
- The record's ``output`` is the entity's state, JSON text exactly as the SDK wrote it (``None``: no
  state). ``custom_status`` is the lock it is held under, ``{"criticalSectionId": ..., "lockedBy": ...}``
  (the orchestration's instance id). ``last_updated_at`` is the time of its last operation.
- Its history is ``[ExecutionStarted, *deferred messages]``: the marker it was created with, then the
  messages that wait because another orchestration holds the entity's lock.
- Its status is RUNNING while it has a state, a lock or deferred messages, and COMPLETED when it is
  empty, which is what ``CleanEntityStorage`` removes.

One entity step: the dispatcher's pump fetches the entity's instance like an orchestration (the instance's
work-item lock means one batch per entity at a time) and :func:`run_entity_step` sorts its messages. An
operation from anyone but the lock holder waits while the entity is locked. A lock request takes the lock
and goes on to the next entity of its lock set, or grants the lock to the orchestration when it is the
last. An unlock releases the lock and brings back what waited. The runnable operations go to a connected
worker as one ``entityRequestV2`` work item. Its ``CompleteEntityTask`` brings the new state, each
operation's result and the operations' actions back. Then one backend commit holds the state, the results
for the calling orchestrations (``entityOperationCompleted`` / ``entityOperationFailed``), the signals to
other entities and the orchestrations the operations start.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from google.protobuf import timestamp_pb2

from wftest import _events as ev
from wftest.backends import Backend, IdReusePolicy, InstanceQuery, OrchestrationWorkItem
from wftest.errors import InstanceNotCompletedError, InstanceNotFoundError, LockLostError
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.runtime import (
    COMPLETED,
    PENDING,
    RUNNING,
    InstanceRecord,
    Message,
    StepUpdate,
    entity_message_target,
    is_terminal,
    new_execution_id,
)
from wftest.sidecar._convert import string_value, to_datetime
from wftest.sidecar._dispatch import Dispatcher, UnknownTokenError, WorkLostError, _PendingStep, _unknown

logger = logging.getLogger("wftest.sidecar")

#: the page size of ``QueryEntities`` when the request gives none
_DEFAULT_PAGE_SIZE = 100


def is_entity_id(instance_id: str) -> bool:
    """True for an entity's instance id (``@counter@k1``); orchestrations may not use ids that start with ``@``."""
    return instance_id.startswith("@")


def entity_name(entity_id: str) -> str:
    """The entity name of an entity id: ``counter`` for ``@counter@k1``.

    Raises ``ValueError`` if ``entity_id`` is not of the form ``@name@key``.

    Example::

        >>> entity_name("@counter@k1")
        'counter'
    """
    name, separator, _ = entity_id[1:].partition("@")
    if not entity_id.startswith("@") or not separator or not name:
        raise ValueError(f"{entity_id!r} is not an entity id; entity ids have the form '@name@key'")
    return name


# -- the entity's stored shape -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Lock:
    """The critical section that holds an entity, and the orchestration that opened it."""

    section: str
    holder: str


def _load_lock(text: str | None) -> _Lock | None:
    if not text:
        return None
    data = json.loads(text)
    return _Lock(section=str(data["criticalSectionId"]), holder=str(data["lockedBy"]))


def _dump_lock(lock: _Lock | None) -> str | None:
    if lock is None:
        return None
    return json.dumps({"criticalSectionId": lock.section, "lockedBy": lock.holder}, sort_keys=True)


def ensure_entity(backend: Backend, entity_id: str, now: datetime) -> None:
    """Create the entity's instance if it does not exist yet (an empty entity); raises ``ValueError`` for a bad id."""
    name = entity_name(entity_id)
    if backend.get_instance(entity_id) is not None:
        return
    record = InstanceRecord(instance_id=entity_id, name=name, status=PENDING, created_at=now, last_updated_at=now)
    backend.create_instance(ev.execution_started(now, name, entity_id, None), record, visible_at=None,
                            policy=IdReusePolicy.IGNORE, now=now)


def ensure_entities_for(backend: Backend, actions: list[pb.OrchestratorAction], now: datetime) -> None:
    """Create the entities an orchestration step's ``sendEntityMessage`` actions go to, before the step commits.

    The step's messages then reach existing instances in the step's own commit.
    """
    for action in actions:
        if action.HasField("sendEntityMessage"):
            ensure_entity(backend, entity_message_target(action.sendEntityMessage), now)


def deliver_undelivered(backend: Backend, sender: str, message: Message, now: datetime) -> bool:
    """Deliver a message whose target did not exist when its step committed; False if it cannot be delivered.

    A message for an entity creates the entity (it was cleaned away meanwhile). Anything else is logged.
    """
    event = message.event
    if is_entity_id(message.instance_id) and not event.HasField("executionStarted"):
        try:
            ensure_entity(backend, message.instance_id, now)
            backend.add_event(message.instance_id, event, visible_at=message.visible_at)
            return True
        except (ValueError, InstanceNotFoundError) as err:
            logger.warning("message from %r to entity %r dropped: %s", sender, message.instance_id, err)
            return False
    if event.HasField("executionStarted"):
        logger.warning("entity %r asked to start orchestration %r as %r, but an instance with that id is still "
                       "running; nothing was started", sender, event.executionStarted.name, message.instance_id)
    else:
        logger.info("message from entity %r to %r dropped: no such instance (purged?)", sender,
                    message.instance_id)
    return False


# -- one entity step -------------------------------------------------------------------------------


@dataclass
class _Plan:
    """What an entity step does with its messages, before the operations run."""

    marker: pb.HistoryEvent
    batch: list[pb.HistoryEvent]
    deferred: list[pb.HistoryEvent]
    lock: _Lock | None
    lock_changed: bool
    messages: list[Message]


def _stamp(now: datetime) -> timestamp_pb2.Timestamp:
    return ev.timestamp(now)


def _plan(item: OrchestrationWorkItem, history: list[pb.HistoryEvent], now: datetime) -> _Plan:
    entity_id = item.instance_id
    marker = history[0] if history else next(
        (e for e in item.new_events if e.HasField("executionStarted")),
        ev.execution_started(now, entity_name(entity_id), entity_id, None),
    )
    queue = deque(history[1:])
    queue.extend(e for e in item.new_events if not e.HasField("executionStarted"))
    lock = original = _load_lock(item.record.custom_status)
    batch: list[pb.HistoryEvent] = []
    deferred: list[pb.HistoryEvent] = []
    messages: list[Message] = []
    while queue:
        event = queue.popleft()
        kind = event.WhichOneof("eventType")
        if kind == "entityOperationSignaled":
            (deferred if lock is not None else batch).append(event)
        elif kind == "entityOperationCalled":
            caller = event.entityOperationCalled.parentInstanceId.value
            (deferred if lock is not None and caller != lock.holder else batch).append(event)
        elif kind == "entityLockRequested":
            request = event.entityLockRequested
            if lock is not None:
                if lock.section != request.criticalSectionId:
                    deferred.append(event)  # waits for the unlock (a repeat of the same request is dropped)
                continue
            lock = _Lock(section=request.criticalSectionId, holder=request.parentInstanceId.value)
            messages.append(_pass_lock_on(request, now))
        elif kind == "entityUnlockSent":
            if lock is not None and lock.section == event.entityUnlockSent.criticalSectionId:
                lock = None
                queue.extendleft(reversed(deferred))  # what waited comes first, in its order
                deferred = []
        else:
            logger.warning("entity %r received a %s event, which is not an entity message; it is dropped",
                           entity_id, kind)
    return _Plan(marker=marker, batch=batch, deferred=deferred, lock=lock, lock_changed=lock != original,
                 messages=messages)


def _pass_lock_on(request: pb.EntityLockRequestedEvent, now: datetime) -> Message:
    """The lock request for the next entity of the lock set, or the grant for the orchestration after the last."""
    following = request.position + 1
    event = pb.HistoryEvent(eventId=-1, timestamp=_stamp(now))
    if following < len(request.lockSet):
        event.entityLockRequested.CopyFrom(request)
        event.entityLockRequested.position = following
        return Message(str(request.lockSet[following]), event)
    event.entityLockGranted.criticalSectionId = request.criticalSectionId
    return Message(request.parentInstanceId.value, event)


def _response(called: pb.EntityOperationCalledEvent, outcome: pb.OperationResult, now: datetime) -> Message:
    event = pb.HistoryEvent(eventId=-1, timestamp=_stamp(now))
    if outcome.HasField("failure"):
        event.entityOperationFailed.requestId = called.requestId
        event.entityOperationFailed.failureDetails.CopyFrom(outcome.failure.failureDetails)
    else:
        event.entityOperationCompleted.requestId = called.requestId
        if outcome.success.HasField("result"):
            event.entityOperationCompleted.output.CopyFrom(outcome.success.result)
    return Message(called.parentInstanceId.value, event, execution_id=called.parentExecutionId.value or None)


def _signal(entity_id: str, signal: pb.SendSignalAction | pb.SignalEntityRequest, request_id: str,
            now: datetime) -> Message:
    """The ``EntityOperationSignaled`` message for a signal (from an entity's operation or a client)."""
    event = pb.HistoryEvent(eventId=-1, timestamp=_stamp(now))
    signaled = event.entityOperationSignaled
    signaled.requestId = request_id
    signaled.operation = signal.name
    signaled.targetInstanceId.value = entity_id
    if signal.HasField("input"):
        signaled.input.CopyFrom(signal.input)
    visible_at = None
    if signal.HasField("scheduledTime"):
        signaled.scheduledTime.CopyFrom(signal.scheduledTime)
        visible_at = to_datetime(signal.scheduledTime)
        if visible_at <= now:
            visible_at = None  # due already: deliver it now
    return Message(entity_id, event, visible_at)


def _operation_action(entity_id: str, action: pb.OperationAction, now: datetime) -> Message | None:
    """The message for what an operation asked for: a signal to an entity, or a new orchestration."""
    kind = action.WhichOneof("operationActionType")
    if kind == "sendSignal":
        signal = action.sendSignal
        try:
            entity_name(signal.instanceId)
        except ValueError as err:
            logger.warning("entity %r signalled %r: %s; the signal is dropped", entity_id, signal.instanceId, err)
            return None
        return _signal(signal.instanceId, signal, uuid.uuid4().hex, now)
    if kind == "startNewOrchestration":
        start = action.startNewOrchestration
        instance_id = start.instanceId or uuid.uuid4().hex
        if is_entity_id(instance_id):
            logger.warning("entity %r asked to start an orchestration with the entity id %r; nothing was started",
                           entity_id, instance_id)
            return None
        scheduled = to_datetime(start.scheduledTime) if start.HasField("scheduledTime") else None
        event = ev.execution_started(now, start.name, instance_id, string_value(start, "input"),
                                     execution_id=new_execution_id(instance_id, now), scheduled_start=scheduled,
                                     version=string_value(start, "version"))
        return Message(instance_id, event, scheduled)
    logger.warning("entity %r: operation action #%d of kind %r is not supported; it is dropped", entity_id,
                   action.id, kind)
    return None


def _update(item: OrchestrationWorkItem, plan: _Plan, result: pb.EntityBatchResult | None, now: datetime
            ) -> StepUpdate:
    entity_id = item.instance_id
    record = item.record.copy()
    record.name = entity_name(entity_id)
    messages = list(plan.messages)
    if result is not None:
        record.output = string_value(result, "entityState")
        for operation, outcome in zip(plan.batch, result.results, strict=True):
            if operation.HasField("entityOperationCalled") and operation.entityOperationCalled.parentInstanceId.value:
                messages.append(_response(operation.entityOperationCalled, outcome, now))
        for action in result.actions:
            message = _operation_action(entity_id, action, now)
            if message is not None:
                messages.append(message)
    if result is not None or plan.lock_changed or record.status == PENDING:
        record.last_updated_at = now
    record.custom_status = _dump_lock(plan.lock)
    if record.output is not None or plan.lock is not None or plan.deferred:
        record.status, record.completed_at = RUNNING, None
    else:
        record.status, record.completed_at = COMPLETED, now  # empty: CleanEntityStorage may remove it
    return StepUpdate(record=record, new_history=[plan.marker, *plan.deferred], replace_history=True,
                      messages=messages)


def run_entity_step(dispatcher: Dispatcher, item: OrchestrationWorkItem) -> None:
    """Process the locked entity's messages: run its runnable operations remotely and commit the outcome.

    Raises ``WorkLostError`` (the work goes back to the queue after a delay) when no worker answers, and
    ``LockLostError`` when the entity's lock expired meanwhile (nothing is written).
    """
    backend, clock = dispatcher.backend, dispatcher.clock
    entity_id = item.instance_id
    try:
        history = backend.get_history(entity_id) if item.history_length else []
        plan = _plan(item, history, clock.now())
        result = None
        if plan.batch:
            request = pb.EntityRequest(instanceId=entity_id, operationRequests=plan.batch)
            if item.record.output is not None:
                request.entityState.value = item.record.output
            result = _run_remote_batch(dispatcher, request, entity_name(entity_id))
            if result.HasField("failureDetails"):
                raise WorkLostError(f"the worker could not run the batch of entity {entity_id!r}: "
                                    f"{result.failureDetails.errorType}: {result.failureDetails.errorMessage}")
            if len(result.results) != len(plan.batch):
                raise WorkLostError(f"the worker answered the batch of {len(plan.batch)} operation(s) of entity "
                                    f"{entity_id!r} with {len(result.results)} result(s)")
        now = clock.now()
        update = _update(item, plan, result, now)
        for target in dict.fromkeys(m.instance_id for m in update.messages):
            if is_entity_id(target) and target != entity_id:
                ensure_entity(backend, target, now)
        undelivered = backend.complete_orchestration_work_item(item, update, now)
    except LockLostError:
        raise
    except Exception:
        backend.abandon_orchestration_work_item(item, clock.now(), dispatcher.engine.abandon_delay(item.attempts + 1))
        raise
    for message in undelivered:
        deliver_undelivered(backend, entity_id, message, now)


# -- the remote batch ------------------------------------------------------------------------------


@dataclass(eq=False)
class _PendingBatch(_PendingStep):
    """An entity batch in flight in a worker (it counts as an orchestration work item of its connection)."""

    result: pb.EntityBatchResult | None = field(default=None)

    @property
    def finished(self) -> bool:
        """Whether the worker's result arrived."""
        return self.result is not None


def _run_remote_batch(dispatcher: Dispatcher, request: pb.EntityRequest, name: str) -> pb.EntityBatchResult:
    """Send an entity batch down a worker's stream and wait for its ``CompleteEntityTask`` (on a step thread)."""
    pending = dispatcher.send_and_wait(
        _PendingBatch, request.instanceId, "entity", f"the batch of entity {request.instanceId!r}", name,
        lambda token: pb.WorkItem(entityRequestV2=request, completionToken=token),
    )
    assert pending.result is not None
    return pending.result


def complete_entity_batch(dispatcher: Dispatcher, result: pb.EntityBatchResult) -> None:
    """A worker's ``CompleteEntityTask``: hand the batch's results to the waiting entity step."""
    d = dispatcher
    token = result.completionToken
    with d._lock:
        pending = d._pending.get(token)
        if not isinstance(pending, _PendingBatch):
            raise UnknownTokenError(_unknown(token, "entity", ""))
        del d._pending[token]
        pending.connection.orchestrations -= 1
        pending.result = result
        d._room.notify_all()
    pending.done.set()
    d.wake()


# -- client RPCs -----------------------------------------------------------------------------------


def signal_entity(dispatcher: Dispatcher, request: pb.SignalEntityRequest) -> None:
    """``SignalEntity``: queue a one-way operation for the entity (created if new), at ``scheduledTime`` if given."""
    backend, now = dispatcher.backend, dispatcher.clock.now()
    entity_id = request.instanceId
    entity_name(entity_id)
    if not request.name:
        raise ValueError(f"SignalEntity: the operation name for entity {entity_id!r} is empty")
    message = _signal(entity_id, request, request.requestId or uuid.uuid4().hex, now)
    event, visible_at = message.event, message.visible_at
    ensure_entity(backend, entity_id, now)
    try:
        backend.add_event(entity_id, event, visible_at=visible_at)
    except InstanceNotFoundError:  # cleaned away between the two calls
        ensure_entity(backend, entity_id, now)
        backend.add_event(entity_id, event, visible_at=visible_at)
    dispatcher.wake()


def _metadata(record: InstanceRecord, include_state: bool) -> pb.EntityMetadata:
    metadata = pb.EntityMetadata(instanceId=record.instance_id, backlogQueueSize=max(0, record.history_length - 1))
    metadata.lastModifiedTime.CopyFrom(ev.timestamp(record.last_updated_at))
    lock = _load_lock(record.custom_status)
    if lock is not None:
        metadata.lockedBy.value = lock.holder
    if include_state and record.output is not None:
        metadata.serializedState.value = record.output
    return metadata


def _has_content(record: InstanceRecord) -> bool:
    """An entity "exists" while it has a state or is locked (the Durable Task Framework's rule)."""
    return record.output is not None or bool(record.custom_status)


def get_entity(backend: Backend, request: pb.GetEntityRequest) -> pb.GetEntityResponse:
    """``GetEntity``: the entity's metadata (and state), or ``exists = false`` if it has no state and no lock."""
    entity_name(request.instanceId)
    record = backend.get_instance(request.instanceId)
    if record is None or not _has_content(record):
        return pb.GetEntityResponse(exists=False)
    return pb.GetEntityResponse(exists=True, entity=_metadata(record, request.includeState))


def _entity_records(backend: Backend, prefix: str) -> Iterator[InstanceRecord]:
    token = None
    while True:
        records, token = backend.query_instances(
            InstanceQuery(instance_id_prefix=prefix, page_size=1000, continuation_token=token))
        for record in records:
            if is_entity_id(record.instance_id):
                yield record
        if token is None:
            return


def query_entities(backend: Backend, request: pb.QueryEntitiesRequest) -> pb.QueryEntitiesResponse:
    """``QueryEntities``: entities ordered by id, a page at a time (the token is the last id of the page).

    ``instanceIdStartsWith`` without a leading ``@`` is taken as the start of an entity name. Transient
    entities (no state: only a lock or waiting operations) are left out unless ``includeTransient``.
    """
    query = request.query
    prefix = string_value(query, "instanceIdStartsWith") or "@"
    if not prefix.startswith("@"):
        prefix = "@" + prefix
    since = to_datetime(query.lastModifiedFrom) if query.HasField("lastModifiedFrom") else None
    until = to_datetime(query.lastModifiedTo) if query.HasField("lastModifiedTo") else None
    after = string_value(query, "continuationToken")
    matching = sorted(
        (r for r in _entity_records(backend, prefix)
         if (query.includeTransient or r.output is not None)
         and (since is None or r.last_updated_at >= since) and (until is None or r.last_updated_at < until)
         and (after is None or r.instance_id > after)),
        key=lambda r: r.instance_id,
    )
    size = query.pageSize.value if query.HasField("pageSize") and query.pageSize.value > 0 else _DEFAULT_PAGE_SIZE
    page = matching[:size]
    response = pb.QueryEntitiesResponse(entities=[_metadata(r, query.includeState) for r in page])
    if len(matching) > size:
        response.continuationToken.value = page[-1].instance_id
    return response


def clean_entity_storage(dispatcher: Dispatcher, request: pb.CleanEntityStorageRequest
                         ) -> pb.CleanEntityStorageResponse:
    """``CleanEntityStorage``: remove empty entities, release locks whose orchestration is gone or finished.

    A released lock is sent to its entity as an unlock, so what waited for it runs next. One call does
    all the work: the answer never has a continuation token.
    """
    backend, now = dispatcher.backend, dispatcher.clock.now()
    removed = released = 0
    busy = set(backend.ready_instances(now))
    for record in list(_entity_records(backend, "@")):
        if request.removeEmptyEntities and is_terminal(record.status) and record.history_length <= 1 \
                and record.output is None and not record.custom_status and record.instance_id not in busy:
            try:
                backend.purge_instance(record.instance_id)
                removed += 1
            except (InstanceNotFoundError, InstanceNotCompletedError):
                pass  # a message arrived meanwhile: the entity is in use again
            continue
        lock = _load_lock(record.custom_status)
        if request.releaseOrphanedLocks and lock is not None:
            holder = backend.get_instance(lock.holder)
            if holder is None or is_terminal(holder.status):
                event = pb.HistoryEvent(eventId=-1, timestamp=_stamp(now))
                event.entityUnlockSent.criticalSectionId = lock.section
                event.entityUnlockSent.parentInstanceId.value = lock.holder
                event.entityUnlockSent.targetInstanceId.value = record.instance_id
                backend.add_event(record.instance_id, event)
                released += 1
    if released:
        dispatcher.wake()
    return pb.CleanEntityStorageResponse(emptyEntitiesRemoved=removed, orphanedLocksReleased=released)
