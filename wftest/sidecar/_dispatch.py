"""The work-item dispatcher: hands the engine's work to SDK workers connected over ``GetWorkItems``.

One runtime, two executors. Orchestration steps run through the engine's own worker
(``Worker.run_orchestration``: duplicate filtering, ``apply_step``, continue-as-new, the atomic commit),
with :class:`RemoteExecutor` in place of wftest's executor: its ``execute(old, new)`` sends an
``OrchestratorRequest`` down a worker's stream and blocks until ``CompleteOrchestratorTask`` brings the
actions back (durabletask-go's gRPC executor works the same way). Activities go out as ``ActivityRequest``
and their result is committed when ``CompleteActivityTask`` arrives.

Threads: a pump thread fetches work from the backend while a connected worker has room for it; each
orchestration step runs on a pool thread (it blocks on the remote call); the RPC handlers run on gRPC's
threads.

No work is lost: a worker that disconnects, abandons a work item, or holds it longer than the lock
timeout loses it, and the item is delivered again (to the same worker or another one). A completion that
arrives after that is refused (``UnknownTokenError``).

Virtual clock: the pump jumps the clock to the next timer once nothing is runnable and no remote work is in
flight, and that has lasted ``autojump_threshold`` seconds of real time (trio's ``MockClock`` has the same
knob). The threshold lets a client that raises an event right after a step reach the instance before a
timer that races the event; with 0 the jump is immediate.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from wftest import _events as ev
from wftest._failure import FailureDetails
from wftest.backends import ActivityWorkItem, Backend, OrchestrationWorkItem
from wftest.engine import Clock, Engine, VirtualClock
from wftest.errors import LockLostError
from wftest.orchestration import ExecutionResult, OrchestrationExecutor
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.runtime import FAILED, Message, entity_message_target
from wftest.sidecar._convert import PassThroughConverter, first_started, string_value

logger = logging.getLogger("wftest.sidecar")

#: put on a connection's queue to end its stream
CLOSE = object()

#: how often the pump looks at the backend when nothing wakes it (timers, other processes on a shared file)
_POLL_SECONDS = 0.05

#: the action kinds wftest's runtime applies; the others (rewind, ...) fail the orchestration clearly
_SUPPORTED_ACTIONS = frozenset(
    {"scheduleTask", "createTimer", "createSubOrchestration", "sendEvent", "completeOrchestration",
     "sendEntityMessage"}
)


class WorkLostError(Exception):
    """A work item handed to a remote worker will not complete: disconnect, abandon, lock expiry or shutdown."""


class UnknownTokenError(LookupError):
    """A completion or abandon names no work item in flight (already completed, abandoned or expired)."""


@dataclass(eq=False)
class Connection:
    """One worker's ``GetWorkItems`` stream and what it is working on."""

    id: int
    peer: str
    #: the most work items of each kind the worker takes at once (0: no limit)
    max_orchestrations: int
    max_activities: int
    #: names from the worker's work-item filters (empty: everything)
    orchestration_names: frozenset[str]
    activity_names: frozenset[str]
    #: entity names from the worker's filters (entity batches count as orchestration work items)
    entity_names: frozenset[str] = frozenset()
    items: queue.SimpleQueue[object] = field(default_factory=queue.SimpleQueue)
    orchestrations: int = 0
    activities: int = 0
    closed: bool = False

    def has_room(self, kind: str) -> bool:
        """True if the worker takes another work item of ``kind`` ("orchestration" or "activity")."""
        if self.closed:
            return False
        if kind == "orchestration":
            return not self.max_orchestrations or self.orchestrations < self.max_orchestrations
        return not self.max_activities or self.activities < self.max_activities

    def accepts(self, kind: str, name: str) -> bool:
        """True unless the worker's filters leave ``name`` out."""
        names = {"orchestration": self.orchestration_names, "activity": self.activity_names,
                 "entity": self.entity_names}[kind]
        return not names or name in names


@dataclass(eq=False)
class _PendingStep:
    token: str
    connection: Connection
    instance_id: str
    done: threading.Event = field(default_factory=threading.Event)
    response: pb.OrchestratorResponse | None = None
    error: str = ""

    @property
    def finished(self) -> bool:
        """Whether the worker's result arrived."""
        return self.response is not None


_P = TypeVar("_P", bound=_PendingStep)


@dataclass(eq=False)
class _PendingActivity:
    token: str
    connection: Connection
    item: ActivityWorkItem
    deadline: float


class Dispatcher:
    """Moves work between the engine's backend and the connected workers. One per sidecar server.

    Args:
        engine: the sidecar's engine (its backend, clock, worker and lock timeout are used).
        autojump_threshold: virtual clock only: seconds of real time the engine must stay idle before the
            clock jumps to the next timer.
        max_concurrent_steps: orchestration steps in flight at once (each holds a pool thread).
    """

    def __init__(self, engine: SidecarEngine, *, autojump_threshold: float, max_concurrent_steps: int) -> None:
        if autojump_threshold < 0:
            raise ValueError(f"autojump_threshold must be >= 0, got {autojump_threshold}")
        if max_concurrent_steps < 1:
            raise ValueError(f"max_concurrent_steps must be >= 1, got {max_concurrent_steps}")
        self.engine = engine
        self.backend: Backend = engine.backend
        self.clock: Clock = engine.clock
        self.autojump_threshold = autojump_threshold
        self.max_concurrent_steps = max_concurrent_steps
        self.lock_seconds = engine.lock_timeout.total_seconds()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # a worker got room, connected or went away
        self._status = threading.Condition()  # an instance may have changed status
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._connections: dict[int, Connection] = {}
        self._pending: dict[str, _PendingStep | _PendingActivity] = {}
        self._steps = 0  # orchestration steps submitted and not finished
        self._connection_ids = itertools.count(1)
        self._token_prefix = uuid.uuid4().hex[:8]
        self._token_counter = itertools.count(1)
        self._pool = ThreadPoolExecutor(max_concurrent_steps, thread_name_prefix="wftest-sidecar-step")
        self._thread: threading.Thread | None = None
        #: how many times the virtual clock jumped (diagnostics)
        self.jumps = 0
        #: client calls blocked in WaitForInstanceStart/Completion, and when the last client call came or ended
        self._waiters = 0
        self._client_seen = time.monotonic()

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopping.is_set()

    def start(self) -> None:
        """Start the pump thread."""
        self._thread = threading.Thread(target=self._pump, name="wftest-sidecar-pump", daemon=True)
        self._thread.start()

    def stop(self, grace: float) -> None:
        """Stop dispatching; give work in flight up to ``grace`` seconds, then take it back; end the streams."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        deadline = time.monotonic() + grace
        with self._lock:
            while (self._pending or self._steps) and time.monotonic() < deadline:
                self._room.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            lost = list(self._pending.values())
            self._pending.clear()
            connections = list(self._connections.values())
            self._connections.clear()
            for connection in connections:
                connection.closed = True
            self._room.notify_all()
        for pending in lost:
            self._lose(pending, "the sidecar is shutting down")
        for connection in connections:
            connection.items.put(CLOSE)
        self._pool.shutdown(wait=True)
        self.notify_status()

    # -- connections --------------------------------------------------------------------------------

    def connect(self, request: pb.GetWorkItemsRequest, peer: str) -> Connection:
        """Register a worker's stream."""
        filters = request.workItemFilters
        connection = Connection(
            id=next(self._connection_ids),
            peer=peer,
            max_orchestrations=max(0, request.maxConcurrentOrchestrationWorkItems),
            max_activities=max(0, request.maxConcurrentActivityWorkItems),
            orchestration_names=frozenset(f.name for f in filters.orchestrations),
            activity_names=frozenset(f.name for f in filters.activities),
            entity_names=frozenset(f.name for f in filters.entities),
        )
        with self._lock:
            if self._stopping.is_set():
                connection.closed = True
            else:
                self._connections[connection.id] = connection
                self._room.notify_all()
        if connection.closed:
            connection.items.put(CLOSE)
        logger.info("worker %s connected (stream %d)", peer, connection.id)
        self._wake.set()
        return connection

    def disconnect(self, connection: Connection) -> None:
        """Forget a worker's stream; whatever it was working on is delivered again. Idempotent."""
        with self._lock:
            if connection.closed and connection.id not in self._connections:
                return
            connection.closed = True
            self._connections.pop(connection.id, None)
            lost = [p for p in self._pending.values() if p.connection is connection]
            for pending in lost:
                del self._pending[pending.token]
            self._room.notify_all()
        connection.items.put(CLOSE)
        for pending in lost:
            self._lose(pending, f"worker {connection.peer} disconnected")
        logger.info("worker %s disconnected (stream %d); %d work item(s) given back", connection.peer,
                    connection.id, len(lost))
        self._wake.set()

    @property
    def connections(self) -> int:
        """How many workers are connected."""
        with self._lock:
            return len(self._connections)

    # -- orchestration steps ------------------------------------------------------------------------

    def run_remote_step(self, request: pb.OrchestratorRequest, name: str) -> pb.OrchestratorResponse:
        """Send an orchestration step to a worker and wait for its response (called on a step thread).

        Raises ``WorkLostError`` if no response will come: no worker is connected, the worker disconnected
        or abandoned the step, the lock timeout passed, or the sidecar is stopping.
        """
        pending = self.send_and_wait(
            _PendingStep, request.instanceId, "orchestration", f"the step of {request.instanceId!r}", name,
            lambda token: pb.WorkItem(orchestratorRequest=request, completionToken=token),
        )
        assert pending.response is not None
        return pending.response

    def send_and_wait(self, pending_type: type[_P], instance_id: str, filter_kind: str, what: str, name: str,
                      work_item: Callable[[str], pb.WorkItem]) -> _P:
        """Hand a work item that counts as an orchestration (a step, an entity batch) to the least busy worker
        with room, preferring those whose ``filter_kind`` filters accept ``name``; wait for its result.

        Returns the pending record, completed. Raises ``WorkLostError`` as :meth:`run_remote_step` says.
        """
        deadline = time.monotonic() + self.lock_seconds
        with self._lock:
            while True:
                if self._stopping.is_set():
                    raise WorkLostError("the sidecar is shutting down")
                connection = self._pick("orchestration", name, filter_kind)
                if connection is not None:
                    break
                if not self._connections:
                    raise WorkLostError("no worker is connected")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WorkLostError(f"no connected worker had room for {what} within the lock timeout")
                self._room.wait(remaining)
            token = self._new_token()
            pending = pending_type(token, connection, instance_id)
            self._pending[token] = pending
            connection.orchestrations += 1
            connection.items.put(work_item(token))
        if not pending.done.wait(max(0.0, deadline - time.monotonic())):
            with self._lock:
                if self._pending.pop(token, None) is not None:
                    connection.orchestrations -= 1
                    self._room.notify_all()
            if not pending.finished:
                raise WorkLostError(
                    f"worker {connection.peer} sent no result for {what} within the lock timeout "
                    f"({self.lock_seconds:g} s)"
                )
        if not pending.finished:
            raise WorkLostError(pending.error or "the work item was lost")
        return pending

    def complete_orchestration(self, response: pb.OrchestratorResponse) -> None:
        """A worker's ``CompleteOrchestratorTask``: hand the actions to the waiting step."""
        token = response.completionToken
        with self._lock:
            pending = self._pending.get(token)
            if not isinstance(pending, _PendingStep):
                raise UnknownTokenError(_unknown(token, "orchestration", response.instanceId))
            if response.instanceId and response.instanceId != pending.instance_id:
                raise ValueError(
                    f"completion token {token!r} belongs to instance {pending.instance_id!r}, "
                    f"not {response.instanceId!r}"
                )
            del self._pending[token]
            pending.connection.orchestrations -= 1
            pending.response = response
            self._room.notify_all()
        pending.done.set()
        self._wake.set()

    def _submit_step(self, item: OrchestrationWorkItem) -> None:
        with self._lock:
            self._steps += 1
        try:
            self._pool.submit(self._run_step, item)
        except RuntimeError:  # the pool is shut down: give the work back
            with self._lock:
                self._steps -= 1
            self.backend.abandon_orchestration_work_item(item, self.clock.now(), timedelta(0))

    def _run_step(self, item: OrchestrationWorkItem) -> None:
        try:
            if item.instance_id.startswith("@"):  # a durable entity's batch (see _entities)
                from wftest.sidecar._entities import run_entity_step

                run_entity_step(self, item)
            else:
                self.engine.worker.run_orchestration(item)
        except WorkLostError as err:
            logger.info("the step of %r goes back to the queue: %s", item.instance_id, err)
        except LockLostError:
            logger.warning("the step of %r was discarded: its lock expired and was taken over", item.instance_id)
        except Exception:
            logger.exception("the step of %r failed; it goes back to the queue", item.instance_id)
        finally:
            with self._lock:
                self._steps -= 1
                self._room.notify_all()
            self._wake.set()
            self.notify_status()

    # -- activities ---------------------------------------------------------------------------------

    def _send_activity(self, item: ActivityWorkItem) -> None:
        task = item.task
        hooks = self.engine._hooks
        try:
            if hooks is not None:
                hooks.before_activity(task)
        except Exception:
            logger.exception("a before_activity hook failed for %s#%d of %r", task.name, task.task_id,
                             task.instance_id)
            self.backend.abandon_activity_work_item(item, self.clock.now())
            return
        request = pb.ActivityRequest(name=task.name, taskId=task.task_id)
        request.orchestrationInstance.instanceId = task.instance_id
        if task.execution_id:
            request.orchestrationInstance.executionId.value = task.execution_id
        if task.input is not None:
            request.input.value = task.input
        if task.tags:
            request.tags.update(task.tags)  # the TaskScheduled tags (ActivityRequest.tags = 7)
        with self._lock:
            connection = self._pick("activity", task.name)
            if connection is not None:
                token = self._new_token()
                self._pending[token] = _PendingActivity(token, connection, item, time.monotonic() + self.lock_seconds)
                connection.activities += 1
                connection.items.put(pb.WorkItem(activityRequest=request, completionToken=token))
        if connection is None:  # the worker went away since the pump looked
            self.backend.abandon_activity_work_item(item, self.clock.now())

    def complete_activity(self, response: pb.ActivityResponse) -> None:
        """A worker's ``CompleteActivityTask``: commit the result for the orchestration."""
        token = response.completionToken
        with self._lock:
            pending = self._pending.get(token)
            if not isinstance(pending, _PendingActivity):
                raise UnknownTokenError(_unknown(token, "activity", response.instanceId))
            task = pending.item.task
            if (response.instanceId and response.instanceId != task.instance_id) or response.taskId != task.task_id:
                raise ValueError(
                    f"completion token {token!r} belongs to activity {task.name}#{task.task_id} of "
                    f"{task.instance_id!r}, not to task #{response.taskId} of {response.instanceId!r}"
                )
            del self._pending[token]
            pending.connection.activities -= 1
            self._room.notify_all()
        now = self.clock.now()
        if response.HasField("failureDetails"):
            result = ev.task_failed(now, task.task_id, response.failureDetails)
        else:
            result = ev.task_completed(now, task.task_id, string_value(response, "result"))
        hooks = self.engine._hooks
        if hooks is not None:
            try:
                hooks.after_activity(task, result)
            except Exception:
                logger.exception("an after_activity hook failed for %s#%d of %r", task.name, task.task_id,
                                 task.instance_id)
        try:
            self.backend.complete_activity_work_item(pending.item, result, now)
        finally:
            self._wake.set()

    def abandon(self, token: str, kind: str) -> None:
        """A worker gives a work item back (``AbandonTask*WorkItem``): it is delivered again."""
        with self._lock:
            pending = self._pending.get(token)
            expected = _PendingActivity if kind == "activity" else _PendingStep  # entity batches are steps
            if not isinstance(pending, expected):
                raise UnknownTokenError(_unknown(token, kind, ""))
            del self._pending[token]
            self._release(pending)
        self._lose(pending, f"worker {pending.connection.peer} abandoned it")
        self._wake.set()

    # -- status waiters -----------------------------------------------------------------------------

    def notify_status(self) -> None:
        """Wake ``Wait*`` RPCs: an instance may have changed status."""
        with self._status:
            self._status.notify_all()

    def wait_for_status(self, timeout: float) -> None:
        """Block until an instance may have changed status, or ``timeout`` seconds."""
        with self._status:
            self._status.wait(timeout)

    def wake(self) -> None:
        """Tell the pump that the backend has new work (a client started or signalled an instance)."""
        self._wake.set()

    def client_call(self) -> None:
        """A client call came or ended: the virtual clock gives the client ``autojump_threshold`` s to follow it."""
        self._client_seen = time.monotonic()

    @contextlib.contextmanager
    def client_waiting(self) -> Iterator[None]:
        """Around a client's ``Wait*`` call. While one waits and no client call came for ``autojump_threshold``
        seconds, the virtual clock jumps as soon as the engine is idle, as the in-process engine's waits do."""
        with self._lock:
            self._waiters += 1
        self.client_call()
        self._wake.set()
        try:
            yield
        finally:
            with self._lock:
                self._waiters -= 1
            self.client_call()

    # -- the pump -----------------------------------------------------------------------------------

    def _pump(self) -> None:
        clock = self.clock
        virtual = clock if isinstance(clock, VirtualClock) else None
        idle_since: float | None = None
        next_expiry_check = 0.0
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                progressed = self._dispatch_ready()
                now_mono = time.monotonic()
                if now_mono >= next_expiry_check:
                    self._expire_activities(now_mono)
                    next_expiry_check = now_mono + 0.5
                if progressed:
                    idle_since = None
                    continue
                timeout = _POLL_SECONDS
                wake = self.backend.next_wakeup()
                if virtual is not None:
                    if wake is not None and self._quiet():
                        idle_since = now_mono if idle_since is None else idle_since
                        idle = now_mono - idle_since
                        if self._waiters:
                            # a client waits for an instance, so it is not about to raise an event: only its
                            # last call counts (the in-process engine's waits jump at once)
                            idle = max(idle, now_mono - self._client_seen)
                        remaining = self.autojump_threshold - idle
                        if remaining <= 0:
                            virtual.jump_to(max(wake, virtual.now()))
                            self.jumps += 1
                            idle_since = None
                            continue
                        timeout = min(timeout, remaining)
                    else:
                        idle_since = None
                elif wake is not None:
                    # a due timer waits for a worker with room (which wakes the pump), so never spin on it
                    until = (wake - clock.now()).total_seconds()
                    if until > 0:
                        timeout = min(timeout, until)
                self._wake.wait(timeout)
            except Exception:
                logger.exception("the sidecar's dispatcher failed; retrying")
                self._stopping.wait(0.5)

    def _dispatch_ready(self) -> bool:
        """Fetch and send what connected workers have room for; True if anything was dispatched."""
        backend, owner, lock = self.backend, self.engine.owner, self.engine.lock_timeout
        now = self.clock.now()
        progressed = False
        while not self._stopping.is_set() and self._has_room("activity"):
            activity = backend.fetch_activity_work_item(owner, now, lock)
            if activity is None:
                break
            self._send_activity(activity)
            progressed = True
        while not self._stopping.is_set() and self._has_room("orchestration"):
            item = backend.fetch_orchestration_work_item(owner, now, lock)
            if item is None:
                break
            self._submit_step(item)
            progressed = True
        return progressed

    def _has_room(self, kind: str) -> bool:
        with self._lock:
            if kind == "activity":
                return any(c.has_room("activity") for c in self._connections.values())
            if self._steps >= self.max_concurrent_steps:
                return False
            capacity = 0
            for connection in self._connections.values():
                if not connection.max_orchestrations:
                    return True
                capacity += connection.max_orchestrations
            return self._steps < capacity

    def _quiet(self) -> bool:
        """Nothing in flight and nothing runnable: the only way forward is a timer."""
        with self._lock:
            if self._pending or self._steps:
                return False
        return not self.backend.has_visible_work(self.clock.now())

    def _expire_activities(self, now_mono: float) -> None:
        with self._lock:
            expired = [p for p in self._pending.values() if isinstance(p, _PendingActivity) and p.deadline <= now_mono]
            for pending in expired:
                del self._pending[pending.token]
                self._release(pending)
        for pending in expired:
            task = pending.item.task
            logger.warning("activity %s#%d of %r: no result from worker %s within the lock timeout (%g s); "
                           "it will run again", task.name, task.task_id, task.instance_id, pending.connection.peer,
                           self.lock_seconds)
            self._lose(pending, "lock timeout")

    # -- internals ----------------------------------------------------------------------------------

    def _pick(self, kind: str, name: str, filter_kind: str | None = None) -> Connection | None:
        """The least busy connected worker with room for a ``kind`` work item, preferring those whose
        ``filter_kind`` filters (``kind``'s by default) accept ``name``."""
        candidates = [c for c in self._connections.values() if c.has_room(kind)]
        if not candidates:
            return None
        matching = [c for c in candidates if c.accepts(filter_kind or kind, name)] or candidates
        if kind == "orchestration":
            return min(matching, key=lambda c: (c.orchestrations, c.id))
        return min(matching, key=lambda c: (c.activities, c.id))

    def _new_token(self) -> str:
        return f"{self._token_prefix}-{next(self._token_counter)}"

    def _release(self, pending: _PendingStep | _PendingActivity) -> None:
        """Give the connection its room back (the caller holds the lock)."""
        if isinstance(pending, _PendingStep):
            pending.connection.orchestrations -= 1
        else:
            pending.connection.activities -= 1
        self._room.notify_all()

    def _lose(self, pending: _PendingStep | _PendingActivity, reason: str) -> None:
        """Take a work item back from its worker (the caller removed it from ``_pending``)."""
        if isinstance(pending, _PendingStep):
            pending.error = reason
            pending.done.set()
            return
        try:
            self.backend.abandon_activity_work_item(pending.item, self.clock.now())
        except LockLostError:
            pass  # the lock expired and another dispatcher has it: nothing to give back


def _unknown(token: str, kind: str, instance_id: str) -> str:
    where = f" of instance {instance_id!r}" if instance_id else ""
    return (f"no {kind} work item{where} is in flight with completion token {token!r}: it was already completed, "
            "or it was taken back (worker disconnected, abandoned, or the lock timeout passed) and delivered again")


class RemoteExecutor:
    """An ``OrchestrationExecutor`` whose code runs in a connected SDK worker.

    ``execute(old, new)`` sends ``OrchestratorRequest(pastEvents=old, newEvents=new)`` down a worker's
    ``GetWorkItems`` stream and returns the actions of its ``CompleteOrchestratorTask``. The SDK is
    stateless (it replays the history every step), so there is no warm state to keep between steps.
    """

    #: the SDK decides what counts as non-determinism (durabletask fails the orchestration itself)
    strict = False

    def __init__(self, dispatcher: Dispatcher, instance_id: str) -> None:
        self.dispatcher = dispatcher
        self.instance_id = instance_id

    def execute(self, old_events: Sequence[pb.HistoryEvent], new_events: Sequence[pb.HistoryEvent]) -> ExecutionResult:
        """Run one step remotely; raises ``WorkLostError`` if the worker will not answer."""
        request = pb.OrchestratorRequest(instanceId=self.instance_id, pastEvents=old_events, newEvents=new_events)
        started = first_started(itertools.chain(old_events, new_events))
        name = started.name if started is not None else ""
        if started is not None and started.orchestrationInstance.HasField("executionId"):
            request.executionId.CopyFrom(started.orchestrationInstance.executionId)
        response = self.dispatcher.run_remote_step(request, name)
        result = execution_result(self.instance_id, name, response)
        if any(a.HasField("sendEntityMessage") for a in result.actions):
            # the entities the step's messages go to exist before the step commits (see _entities)
            from wftest.sidecar._entities import ensure_entities_for

            dispatcher = self.dispatcher
            ensure_entities_for(dispatcher.backend, result.actions, dispatcher.clock.now())
        return result

    def resume(self, new_events: Sequence[pb.HistoryEvent]) -> ExecutionResult:
        """Not available: a remote SDK keeps no state between steps, so every step is an ``execute()``."""
        raise RuntimeError(
            f"instance {self.instance_id!r}: a remote executor is stateless; the sidecar's engine runs every step "
            "with execute(old_events, new_events) (sticky=False)"
        )


def execution_result(instance_id: str, name: str, response: pb.OrchestratorResponse) -> ExecutionResult:
    """The engine's view of a worker's ``OrchestratorResponse``.

    The SDK replays the whole history every step, so its ``customStatus`` is always the current value.
    Actions wftest's runtime cannot apply (rewind, ...) and entity messages that name no entity fail the
    orchestration with a message that says so, rather than leaving it stuck.
    """
    for action in response.actions:
        kind = action.WhichOneof("orchestratorActionType")
        problem = ""
        if kind == "sendEntityMessage":
            try:
                target = entity_message_target(action.sendEntityMessage)
                if not target.startswith("@") or target.count("@") < 2:
                    raise ValueError(f"{target!r} is not an entity id ('@name@key')")
            except ValueError as err:
                problem = f"sent a durable entities message that wftest's sidecar cannot deliver: {err}"
        elif kind not in _SUPPORTED_ACTIONS:
            what = {"rewindOrchestration": "rewind",
                    "terminateOrchestration": "terminating other instances from an orchestration"}.get(
                        str(kind), f"the {kind!r} action")
            problem = f"used {what}, which wftest's sidecar does not support"
        if problem:
            failure = FailureDetails(
                message=f"orchestration {name!r} (instance {instance_id!r}) {problem}",
                error_type="wftest.errors.OrchestrationStateError",
            )
            return ExecutionResult(actions=[ev.complete_orchestration_action(0, FAILED, None, failure.to_proto())])
    custom_status = string_value(response, "customStatus")
    return ExecutionResult(actions=list(response.actions), custom_status=custom_status, custom_status_set=True)


class SidecarEngine(Engine):
    """An engine whose orchestrations and activities all run in remote SDK workers.

    It keeps the engine's runtime (steps, commits, timers, messages) and swaps the executor for
    :class:`RemoteExecutor`; the :class:`Dispatcher` drives it, never ``run_until_idle()`` or ``start()``.
    Payloads pass through as the SDK's JSON text.
    """

    #: it runs durable entities (see ``_entities``), so steps may send entity messages
    runs_entities = True

    def __init__(self, *, backend: Backend | None, clock: Clock, lock_timeout: timedelta) -> None:
        # sticky=False: the SDK replays the whole history every step, so nothing is worth caching
        super().__init__(backend=backend, clock=clock, converter=PassThroughConverter(), sticky=False,
                         executor_cache_size=0, lock_timeout=lock_timeout, maximum_timer_interval=None)
        # unique across processes sharing one database (the engine's default owner is per process)
        self.owner = f"sidecar-{uuid.uuid4().hex[:12]}"
        self.dispatcher: Dispatcher | None = None

    def new_executor(self, instance_id: str, name: str | None = None, *, watched: bool = True
                     ) -> OrchestrationExecutor:
        """A :class:`RemoteExecutor` for the instance, whatever its orchestrator (the worker calls this every step)."""
        if self.dispatcher is None:
            raise RuntimeError("this SidecarEngine has no dispatcher; it runs inside a SidecarServer")
        return RemoteExecutor(self.dispatcher, instance_id)

    def _report_undelivered(self, sender: str, message: Message) -> None:
        """A message for an entity that was cleaned away before the step committed creates the entity again."""
        if message.instance_id.startswith("@"):
            from wftest.sidecar._entities import deliver_undelivered

            if deliver_undelivered(self.backend, sender, message, self.clock.now()):
                return
        super()._report_undelivered(sender, message)

    def run_until_idle(self, *, limit: int | None = None) -> int:
        """Not available: the sidecar's dispatcher runs this engine (work is done by remote workers)."""
        raise RuntimeError(
            "the sidecar's engine is driven by its dispatcher and remote workers; use a durabletask client "
            "(or the sidecar's RPCs) to wait for instances instead of run_until_idle()/wait_for_*()"
        )

    def start(self, *, orchestration_threads: int = 1, activity_threads: int = 4,
              async_activities: int = 100) -> Engine:
        """Not available: the sidecar's dispatcher runs this engine."""
        raise RuntimeError("the sidecar's engine is driven by its dispatcher; call SidecarServer.start() instead")
