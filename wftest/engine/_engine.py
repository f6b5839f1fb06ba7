"""``Engine``: a backend, a clock, a registry and the worker, behind one object.

Two ways to run it:

* deterministic stepping (tests, virtual clock): ``run_until_idle()`` runs every work item that is due
  now, in a fixed order, on the calling thread; ``advance(delta)`` moves the virtual clock and runs
  what becomes due on the way; ``client.wait_for_*`` does both until the instance gets there.
* concurrent (real time): ``start()`` runs worker threads that poll the backend until ``stop()`` (see
  ``wftest.engine._concurrent``).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import overload

from wftest import _events as ev
from wftest.backends import ActivityWorkItem, Backend, MemoryBackend
from wftest.converter import DEFAULT_CONVERTER, Converter
from wftest.engine._client import TaskHubClient
from wftest.engine._clock import Clock, VirtualClock
from wftest.engine._concurrent import ConcurrentRunner
from wftest.engine._scheduler import Scheduler
from wftest.engine._worker import Worker
from wftest.errors import InstanceNotFoundError, OrchestrationStalledError, WaitTimeoutError
from wftest.hooks import Hooks
from wftest.orchestration import DEFAULT_MAXIMUM_TIMER_INTERVAL, Executor, Registry, TimerTask
from wftest.orchestration._executor import Guard, OrchestrationExecutor
from wftest.orchestration._foreign import ExecutorOptions
from wftest.orchestration._foreign import new_executor as _new_executor
from wftest.orchestration._registry import Registrations
from wftest.orchestration._sandbox import StrictGuard
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.runtime import SUSPENDED, ActivityTask, InstanceRecord, Message

logger = logging.getLogger("wftest.engine")

_ENGINE_IDS = itertools.count(1)

#: (activity task) -> (result event, delay before it is delivered), or None to run the activity for real;
#: with a delay, the worker stamps the event with its arrival time (now + delay)
ActivityInterceptor = Callable[[ActivityTask], "tuple[pb.HistoryEvent, timedelta | None] | None"]
_INSTANCE_NAMESPACE = uuid.UUID("0b8f3d52-3c1e-4a8e-b7a5-6f1f0d2e9c47")


@dataclass(frozen=True)
class UndeliveredMessage:
    """A message that could not be delivered because its target instance does not exist."""

    sender_instance_id: str
    target_instance_id: str
    event: pb.HistoryEvent

    def __str__(self) -> str:
        return (f"{ev.describe_event(self.event)} from {self.sender_instance_id!r} to unknown instance "
                f"{self.target_instance_id!r}")


class Engine(Registrations):
    """A durable workflow engine.

    Args:
        backend: storage (default: a new ``MemoryBackend``).
        clock: time source (default: a new ``VirtualClock`` at 2024-01-01T00:00:00).
        registry: orchestrators and activities (default: a new, empty ``Registry``).
        converter: payload converter (default: JSON).
        sticky: keep executors warm between steps (O(new events) per step). With ``False`` every step
            replays the whole history, as a stateless durabletask worker does.
        strict: a changed activity input on replay is an error rather than a warning, and orchestrator
            code that calls the wall clock, ``random``, ``uuid4``, ``sleep``, threads, sockets or ``open``
            fails with ``NonDeterministicCallError`` (net 3).
        maximum_timer_interval: long timers are split into chunks of this length (durabletask's
            default: 3 days); ``None`` never splits.
        guard: context-manager factory entered around orchestrator code (strict-mode sandbox hook).
        lock_timeout: how long a fetched work item stays locked.
        max_continue_as_new_per_step: guard against endless continue-as-new loops within one step.
        hooks: plugin manager (see :mod:`wftest.hooks`); ``engine.hooks`` creates one on first use.
        scheduler: chooses the order of runnable work and injects faults (see ``wftest.strategies``);
            None runs FIFO and fault-free.

    Example::

        engine = Engine()
        engine.add_orchestrator(order)
        iid = engine.client.schedule_new_orchestration(order, input={"sku": "A1"})
        state = engine.client.wait_for_orchestration_completion(iid)
    """

    #: whether steps may send durable entity messages (only the gRPC sidecar's engine runs entities)
    runs_entities: bool = False

    def __init__(
        self,
        *,
        backend: Backend | None = None,
        clock: Clock | None = None,
        registry: Registry | None = None,
        converter: Converter = DEFAULT_CONVERTER,
        sticky: bool = True,
        strict: bool = False,
        maximum_timer_interval: timedelta | None = DEFAULT_MAXIMUM_TIMER_INTERVAL,
        guard: Guard | None = None,
        lock_timeout: timedelta = timedelta(minutes=5),
        max_continue_as_new_per_step: int = 1000,
        executor_cache_size: int = 10_000,
        hooks: Hooks | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.backend: Backend = backend if backend is not None else MemoryBackend()
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self.registry = registry if registry is not None else Registry()
        self.converter = converter
        self.sticky = sticky
        self.strict = strict
        self.maximum_timer_interval = maximum_timer_interval
        self.guard = guard if guard is not None else (StrictGuard() if strict else None)
        self.lock_timeout = lock_timeout
        self.max_continue_as_new_per_step = max_continue_as_new_per_step
        self.executor_cache_size = executor_cache_size
        self._hooks = hooks
        #: choice points and fault injection (None: FIFO, fault-free, on the fast path)
        self.scheduler = scheduler
        self.owner = f"engine-{next(_ENGINE_IDS)}"
        self.worker = Worker(self)
        self.client = TaskHubClient(self)
        #: messages sent to instances that do not exist (never silently lost)
        self.undelivered: list[UndeliveredMessage] = []
        #: test seam: returns (result event, delay) to replace running an activity, or None to run it
        self.activity_interceptor: ActivityInterceptor | None = None
        #: test seam: may replace an outgoing message (e.g. a mocked sub-orchestration's start by its result)
        self.sub_orchestration_interceptor: Callable[[Message, datetime], Message] | None = None
        #: test seam: called before each orchestration step (the tester gives orchestrator code the real clock)
        self.step_starting: Callable[[], None] | None = None
        self._instance_counter = itertools.count(1)
        self._runner: ConcurrentRunner | None = None
        self._wakeup = threading.Event()

    @property
    def hooks(self) -> Hooks:
        """This engine's plugin manager: ``engine.hooks.register(plugin)`` (created on first use)."""
        if self._hooks is None:
            self._hooks = Hooks()
        return self._hooks

    # -- inspection ---------------------------------------------------------------------------------

    def history(self, instance_id: str) -> list[pb.HistoryEvent]:
        """The instance's history events (a copy)."""
        return self.backend.get_history(instance_id)

    def new_executor(self, instance_id: str, name: str | None = None, *, watched: bool = True
                     ) -> OrchestrationExecutor:
        """A fresh executor configured like this engine (used by the worker and replay checks).

        ``name`` is the instance's orchestrator (read from the backend when not given): an orchestrator
        registered through ``wftest.interop`` runs in its SDK's executor, any other in wftest's.
        ``watched=False`` leaves out the engine's strict-mode guard (a replay check re-runs code that the
        guard watched when it first ran).
        """
        if name is None:
            record = self.backend.get_instance(instance_id)
            name = record.name if record is not None else None
        hooks = self._hooks
        return _new_executor(self.registry, instance_id, name, ExecutorOptions(
            converter=self.converter, maximum_timer_interval=self.maximum_timer_interval, strict=self.strict,
            guard=self.guard if watched else None,
            propagation=hooks if hooks is not None and hooks.propagates_context else None,
        ))

    def new_instance_id(self) -> str:
        """A fresh instance id: deterministic on a virtual clock (same run, same ids), random otherwise."""
        if self.clock.is_virtual:
            return uuid.uuid5(_INSTANCE_NAMESPACE, f"{self.owner}|{next(self._instance_counter)}").hex
        return uuid.uuid4().hex

    # -- deterministic stepping ---------------------------------------------------------------------

    def run_until_idle(self, *, limit: int | None = None) -> int:
        """Run every work item that is due at the current time; never moves the clock.

        Ready activities always run before the next orchestration step, so results that are ready
        together reach their orchestration in one step; steps run oldest first. Stops early after
        ``limit`` work items. Returns the number of work items processed.
        """
        if self.scheduler is not None:
            return self._run_scheduled(self.scheduler, limit)
        backend, worker, owner, lock = self.backend, self.worker, self.owner, self.lock_timeout
        clock = self.clock
        budget = limit if limit is not None else -1
        processed = 0
        while processed != budget:
            activity = backend.fetch_activity_work_item(owner, clock.now(), lock)
            if activity is not None:
                worker.run_activity(activity)
            else:
                item = backend.fetch_orchestration_work_item(owner, clock.now(), lock)
                if item is None:
                    break
                worker.run_orchestration(item)
            processed += 1
        return processed

    def _run_scheduled(self, scheduler: Scheduler, limit: int | None) -> int:
        """``run_until_idle`` with every choice made by ``scheduler`` (and its faults injected).

        The options are the ready activities (oldest first), then the instances with a step to run
        (oldest first), so always taking option 0 is exactly the unscheduled order. A step is fetched only
        once chosen, so it sees every result that arrived before it ran; when a timer or an external event
        is among them, the scheduler also chooses the order they are delivered in (``"deliver"``).
        """
        backend, worker, owner, lock = self.backend, self.worker, self.owner, self.lock_timeout
        activities: list[ActivityWorkItem] = []
        processed = 0
        try:
            while processed != (limit if limit is not None else -1):
                now = self.clock.now()
                while (activity := backend.fetch_activity_work_item(owner, now, lock)) is not None:
                    activities.append(activity)
                ready = backend.ready_instances(now)
                if not activities and not ready:
                    break
                chosen = 0
                if len(activities) + len(ready) > 1:
                    chosen = scheduler.choose("next", _Options(tuple(activities), tuple(ready)))
                if chosen < len(activities):
                    activity = activities.pop(chosen)
                    task = activity.task
                    fault = scheduler.fault("activity", f"{task.name}#{task.task_id} of {task.instance_id}")
                    worker.run_activity(activity, fault=fault)
                else:
                    instance_id = ready[chosen - len(activities)]
                    item = backend.fetch_orchestration_work_item(owner, now, lock, instance_id=instance_id)
                    if item is None:
                        continue
                    _choose_delivery_order(scheduler, item.new_events, instance_id)
                    fault = scheduler.fault("step", instance_id)
                    worker.run_orchestration(item, crash=fault is not None)
                processed += 1
        finally:
            # activities fetched but not run (the limit was reached, or an error) are released for later
            for activity in activities:
                backend.abandon_activity_work_item(activity, self.clock.now())
        return processed

    def advance(self, delta: timedelta) -> int:
        """Move the virtual clock forward by ``delta``, running what becomes due on the way.

        Each due timer fires at its own time (the clock stops there first). Returns the number of work
        items processed.
        """
        clock = self._virtual_clock("advance()")
        target = clock.now() + delta
        processed = self.run_until_idle()
        while True:
            wake = self.backend.next_wakeup()
            if wake is None or wake > target:
                break
            clock.jump_to(max(wake, clock.now()))
            processed += self.run_until_idle()
        clock.jump_to(target)
        return processed + self.run_until_idle()

    def run_until(self, done: Callable[[], bool], *, timeout: timedelta | None = None,
                  describe: Callable[[], str] | None = None) -> None:
        """Run (with autojump) until ``done()`` is true; virtual clock only.

        Raises ``WaitTimeoutError`` past ``timeout`` (virtual time) and ``OrchestrationStalledError`` when
        nothing is runnable and no timer is pending.
        """
        clock = self._virtual_clock("run_until()")
        deadline = clock.now() + timeout if timeout is not None else None
        while True:
            self.run_until_idle()
            if done():
                return
            wake = self.backend.next_wakeup()
            if wake is None:
                raise OrchestrationStalledError(
                    "the engine is idle and no timer is pending, so nothing can happen without outside help"
                    + (f": {describe()}" if describe is not None else "")
                )
            if deadline is not None and wake > deadline:
                clock.jump_to(max(deadline, clock.now()))
                self.run_until_idle()
                if done():
                    return
                raise WaitTimeoutError(
                    f"not done after {timeout} of virtual time (next timer at {wake.isoformat()})"
                    + (f": {describe()}" if describe is not None else "")
                )
            clock.jump_to(max(wake, clock.now()))

    def wait_for(self, instance_id: str, done: Callable[[InstanceRecord], bool], what: str,
                  timeout: timedelta | None) -> InstanceRecord:
        """Wait until ``done(record)``; steps the engine on a virtual clock, polls otherwise."""
        backend = self.backend
        if backend.get_instance(instance_id) is None:
            raise InstanceNotFoundError(instance_id)

        def current() -> InstanceRecord:
            record = backend.get_instance(instance_id)
            if record is None:
                raise InstanceNotFoundError(instance_id, f"instance {instance_id!r} was purged while waiting")
            return record

        if self.clock.is_virtual and self._runner is None:
            self.run_until(
                lambda: done(current()),
                timeout=timeout,
                describe=lambda: f"instance {instance_id!r} waits for {what}: {self.describe_waiting(instance_id)}",
            )
            return current()
        if self._runner is None and isinstance(backend, MemoryBackend) and not done(current()):
            # nobody else can serve an in-memory backend: waiting would hang forever
            raise RuntimeError(
                f"cannot wait for {what} of {instance_id!r}: this engine runs on a real clock and its workers are "
                "not started; call engine.start() first (or use the default virtual clock)"
            )
        deadline = time.monotonic() + timeout.total_seconds() if timeout is not None else None
        while True:
            record = current()
            if done(record):
                return record
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise WaitTimeoutError(f"instance {instance_id!r}: no {what} within {timeout}")
            backend.wait_for_work(min(0.05, remaining) if remaining is not None else 0.05)

    def describe_waiting(self, instance_id: str) -> str:
        """What an idle instance is waiting for, in words (used in stall errors)."""
        record = self.backend.get_instance(instance_id)
        if record is None:
            return "it does not exist"
        if record.status == SUSPENDED:
            return "it is SUSPENDED; resume it with client.resume_orchestration()"
        executor = self.worker.cached_executor(instance_id)
        if executor is None and record.history_length:
            executor = self.new_executor(instance_id, record.name)
            try:
                executor.execute(self.backend.get_history(instance_id), [])
            except Exception:
                executor = None
        if executor is None:
            return f"it is {ev.status_name(record.status)}"
        if not isinstance(executor, Executor):  # a foreign SDK's executor (wftest.interop) says it itself
            describe = getattr(executor, "describe_waiting", None)
            return str(describe()) if callable(describe) else f"it is {ev.status_name(record.status)}"
        waits = sorted(executor.ctx._event_waiters)
        if waits:
            return ("it waits for external event(s) " + ", ".join(repr(w) for w in waits)
                    + "; raise them with client.raise_orchestration_event()")
        timers = sorted(t.fire_at for t in executor.ctx._pending_tasks.values() if isinstance(t, TimerTask))
        if timers:
            return f"it waits for a timer at {timers[0].isoformat()}"
        pending = len(executor.ctx._pending_tasks)
        if pending:
            return f"it waits for {pending} task(s) (activities or sub-orchestrations) still running"
        return f"it is {ev.status_name(record.status)} and waits for nothing the engine can deliver"

    def _virtual_clock(self, what: str) -> VirtualClock:
        clock = self.clock
        if not isinstance(clock, VirtualClock):
            raise TypeError(f"{what} needs a VirtualClock; this engine runs on {clock!r}")
        return clock

    # -- concurrent mode ----------------------------------------------------------------------------

    def start(self, *, orchestration_threads: int = 1, activity_threads: int = 4,
              async_activities: int = 100) -> Engine:
        """Start worker threads (real-time mode) that poll the backend until :meth:`stop`.

        Args:
            orchestration_threads: threads running orchestration steps (steps of one instance never
                overlap: the backend locks the instance while a step runs).
            activity_threads: threads running sync activities (a pool).
            async_activities: how many ``async def`` activities may run at once on the engine's event loop
                thread; 0 runs them on the pool threads instead, one at a time per thread.

        Returns the engine, so ``with Engine(clock=SystemClock()).start() as engine:`` works.

        Example::

            with Engine(backend=SqliteBackend("app.db"), clock=SystemClock()).start(activity_threads=8) as engine:
                state = engine.client.wait_for_orchestration_completion(iid, timeout=60)
        """
        if self._runner is not None:
            raise RuntimeError("the engine is already started")
        if self.clock.is_virtual:
            raise RuntimeError(
                "worker threads need a real clock: use Engine(clock=SystemClock()), or drive a virtual clock "
                "with run_until_idle() / advance() / client.wait_for_orchestration_completion()"
            )
        runner = ConcurrentRunner(self, orchestration_threads=orchestration_threads,
                                  activity_threads=activity_threads, async_activities=async_activities)
        self._runner = runner
        runner.start()
        return self

    def stop(self, timeout: float = 10.0, *, drain: bool = True) -> list[str]:
        """Stop the worker threads; returns the in-flight work items that were abandoned, described.

        Fetching stops at once. With ``drain`` (default) the work items in flight may finish until
        ``timeout`` seconds have passed; whatever still runs then (or at once with ``drain=False``) is
        abandoned: the backend releases it immediately, so another worker (another engine on the same
        database) takes it over without waiting for its lock to expire, and a warning in the
        ``wftest.engine`` log names each one. An abandoned activity that finishes later has its result
        discarded (an async one is cancelled). Does nothing if the engine is not started.
        """
        runner, self._runner = self._runner, None
        if runner is None:
            return []
        try:
            return runner.stop(timeout, drain=drain)
        finally:
            self.worker.close()

    @property
    def started(self) -> bool:
        """Whether worker threads are running (between :meth:`start` and :meth:`stop`)."""
        return self._runner is not None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reporting ----------------------------------------------------------------------------------

    def abandon_delay(self, attempts: int) -> timedelta:
        """How long abandoned orchestration work stays hidden: grows with the number of attempts."""
        return timedelta(seconds=min(60.0, 0.5 * 2 ** max(0, attempts - 1)))

    def _report_undelivered(self, sender: str, message: Message) -> None:
        undelivered = UndeliveredMessage(sender, message.instance_id, message.event)
        self.undelivered.append(undelivered)
        logger.warning("undelivered message: %s", undelivered)

    def _notify_started(self) -> None:
        self._wakeup.set()


#: events whose arrival the clock decides (not which activity or step ran first): the order of a step's events
#: is a choice point when one of these is among them
_TIMED_ARRIVALS = frozenset({"timerFired", "eventRaised"})
#: events that reach an instance from outside its own step, in an order a real backend does not promise
_ARRIVALS = _TIMED_ARRIVALS | {"taskCompleted", "taskFailed", "subOrchestrationInstanceCompleted",
                               "subOrchestrationInstanceFailed"}


def _choose_delivery_order(scheduler: Scheduler, events: list[pb.HistoryEvent], instance_id: str) -> None:
    """Let ``scheduler`` order the timers and events a step delivers among its other arrivals (in place).

    What arrives at the same virtual time can reach the orchestration in any order, within limits a real
    backend keeps: nothing moves across a termination, suspension or resumption (each run of arrivals
    between two such events is ordered on its own); events of one name keep the order they were raised
    in (FIFO per name); activity and sub-orchestration results keep theirs (the ``next`` choice, which
    ran first, decided it). One choice per position, among the arrivals allowed there; option 0 each time
    keeps the arrival order.
    """
    start = 0
    count = len(events)
    while start < count:
        if events[start].WhichOneof("eventType") not in _ARRIVALS:
            start += 1
            continue
        end = start + 1
        while end < count and events[end].WhichOneof("eventType") in _ARRIVALS:
            end += 1
        if end - start > 1:
            _order_arrivals(scheduler, events, start, end, instance_id)
        start = end


def _order_arrivals(scheduler: Scheduler, events: list[pb.HistoryEvent], start: int, end: int,
                    instance_id: str) -> None:
    pending = events[start:end]
    if not any(e.WhichOneof("eventType") in _TIMED_ARRIVALS for e in pending):
        return
    for slot in range(start, end):
        allowed = _deliverable(pending)
        chosen = scheduler.choose("deliver", _Arrivals(tuple(pending[i] for i in allowed), instance_id)) \
            if len(allowed) > 1 else 0
        events[slot] = pending.pop(allowed[chosen])


def _deliverable(pending: list[pb.HistoryEvent]) -> list[int]:
    """Indexes of the pending arrivals that may go next: every timer, the oldest event of each name and the
    oldest result (the first pending arrival is always among them: option 0 keeps the order)."""
    allowed = []
    names: set[str] = set()
    result_seen = False
    for index, event in enumerate(pending):
        kind = event.WhichOneof("eventType")
        if kind == "eventRaised":
            name = event.eventRaised.name.casefold()  # event names match case-insensitively
            if name in names:
                continue
            names.add(name)
        elif kind != "timerFired":
            if result_seen:
                continue
            result_seen = True
        allowed.append(index)
    return allowed


class _Arrivals(Sequence[str]):
    """The labels of a delivery-order choice, formatted only when read."""

    __slots__ = ("_events", "_instance_id")

    def __init__(self, events: tuple[pb.HistoryEvent, ...], instance_id: str) -> None:
        self._events = events
        self._instance_id = instance_id

    def __len__(self) -> int:
        return len(self._events)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        event = self._events[index]
        kind = event.WhichOneof("eventType")
        if kind == "timerFired":
            what = f"timer #{event.timerFired.timerId}"
        elif kind == "eventRaised":
            what = f"event {event.eventRaised.name!r}"
        elif kind in ("taskCompleted", "taskFailed"):
            task = event.taskCompleted if kind == "taskCompleted" else event.taskFailed
            what = f"{'result' if kind == 'taskCompleted' else 'failure'} of task #{task.taskScheduledId}"
        else:
            outcome = "result" if kind.endswith("Completed") else "failure"
            what = f"{outcome} of sub-orchestration #{getattr(event, kind).taskScheduledId}"
        return f"{what} to {self._instance_id}"


class _Options(Sequence[str]):
    """The labels of a choice point, formatted only when read (most never are: choices are hot)."""

    __slots__ = ("_activities", "_ready")

    def __init__(self, activities: tuple[ActivityWorkItem, ...], ready: tuple[str, ...]) -> None:
        self._activities = activities
        self._ready = ready

    def __len__(self) -> int:
        return len(self._activities) + len(self._ready)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        if index < 0:
            index += len(self)
        activities = self._activities
        if 0 <= index < len(activities):
            task = activities[index].task
            return f"activity {task.name}#{task.task_id} of {task.instance_id}"
        return f"step {self._ready[index - len(activities)]}"

