"""The worker: runs one orchestration step or one activity, and commits the outcome.

Orchestration steps keep their executor alive between steps (sticky), keyed by instance and checked
against the history length, so a step costs O(new events); a cache miss (another worker, a restart,
an evicted entry) replays the history from scratch.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections.abc import Generator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from wftest import _events as ev
from wftest._failure import FailureDetails
from wftest.backends import ActivityWorkItem, OrchestrationWorkItem
from wftest.engine._rewind import rewind_index, rewind_update
from wftest.engine._scheduler import ActivityFails, ActivityTimesOut, CrashAfterActivity, Fault
from wftest.errors import LockLostError, NonDeterminismError, NotRegisteredError, OrchestrationStateError
from wftest.orchestration import ActivityContext, ExecutionResult, OrchestrationExecutor
from wftest.orchestration._cancel import is_cancel_event_name
from wftest.orchestration._foreign import orchestrator_name
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.runtime import (
    FAILED,
    ActivityTask,
    InstanceRecord,
    Message,
    StepUpdate,
    apply_step,
    is_terminal,
    needs_history,
    refresh_activity_tags,
    terminate_without_start,
)

if TYPE_CHECKING:
    from wftest.engine._engine import Engine

logger = logging.getLogger("wftest.engine")
_PLAIN = frozenset({type(None), bool, int, float, str, bytes, list, dict, tuple})  # results never awaited


class Worker:
    """Processes work items for one engine. One per engine; safe to call from several threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cache: dict[str, tuple[OrchestrationExecutor, int]] = {}
        self._cache_lock = threading.Lock()
        self._loops = threading.local()

    # -- orchestrations -----------------------------------------------------------------------------

    def run_orchestration(self, item: OrchestrationWorkItem, *, crash: bool = False) -> None:
        """Run one step for the locked instance and commit it.

        With ``crash`` (an injected fault) the step runs but nothing is committed: the events go back to
        the queue and the next attempt replays the history (the warm executor is lost, as on a crash).
        """
        engine = self.engine
        if engine.step_starting is not None:
            engine.step_starting()
        record = item.record
        now = engine.clock.now()
        events = _without_duplicates(item.new_events, started=item.history_length > 0)
        if is_terminal(record.status) or not events:
            # work for a completed instance, or nothing but duplicates: consume it, change nothing; but a
            # FAILED instance may be asked to rewind (see _rewind)
            at = rewind_index(record, events)
            if at is not None:
                self._evict(item.instance_id)
                self._commit(item, rewind_update(engine.backend, item, events, at, now), now, executor=None)
                return
            self._commit(item, StepUpdate(record=record, new_history=[]), now, executor=None)
            return
        if item.history_length == 0 and not any(e.HasField("executionStarted") for e in events):
            step = [ev.orchestrator_started(now), *events]
            self._commit(item, terminate_without_start(record, step, now), now, executor=None)
            return
        step = [ev.orchestrator_started(now), *events]
        try:
            executor, result, history = self._execute(item, step)
            # entity messages are applied only by engines that run entities (the gRPC sidecar's)
            entities = engine.runs_entities
            update = apply_step(record, step, result, now, entities=entities,
                                history=self._history(item, history) if needs_history(step, result) else None)
            hooks = engine._hooks
            if hooks is not None:
                hooks.step_applied(item.instance_id, step, update, item.history_length,
                                   lambda: self._history(item, history))
                refresh_activity_tags(update)  # a hook may have tagged the TaskScheduled events
            replaced = False
            generations = 0
            while update.replace_history:
                # continue-as-new: run the next execution now, in the same work item
                replaced = True
                generations += 1
                generation_events = list(update.new_history)
                executor = engine.new_executor(item.instance_id, orchestrator_name(generation_events))
                if generations > engine.max_continue_as_new_per_step:
                    result = _failure_result(
                        OrchestrationStateError(
                            f"instance {item.instance_id!r} continued as new {generations - 1} times in one step "
                            "without waiting for anything; this looks like an endless loop (raise "
                            "Engine(max_continue_as_new_per_step=...) if it is intended)"
                        )
                    )
                else:
                    result = self._guarded(executor.execute, [], generation_events)
                update = apply_step(update.record, generation_events, result, now, entities=entities)
                if hooks is not None:
                    hooks.step_applied(item.instance_id, generation_events, update, 0, list)
                    refresh_activity_tags(update)
            update.replace_history = replaced
            if crash:
                self._evict(item.instance_id)
                engine.backend.abandon_orchestration_work_item(item, now, timedelta(0))
                return
        except Exception:
            self._evict(item.instance_id)
            self.engine.backend.abandon_orchestration_work_item(item, now, engine.abandon_delay(item.attempts + 1))
            raise
        self._commit(item, update, now, executor=executor)

    def _execute(self, item: OrchestrationWorkItem, step: list[pb.HistoryEvent]
                 ) -> tuple[OrchestrationExecutor, ExecutionResult, list[pb.HistoryEvent] | None]:
        engine = self.engine
        hooks = engine._hooks
        if hooks is not None:
            hooks.before_orchestration_step(item.instance_id, step)
        with self._cache_lock:
            cached = self._cache.pop(item.instance_id, None)
        history = None
        if engine.sticky and cached is not None and cached[1] == item.history_length:
            executor = cached[0]
            result = self._guarded(executor.resume, step)
        else:
            history = engine.backend.get_history(item.instance_id) if item.history_length else []
            executor = engine.new_executor(item.instance_id, item.record.name or orchestrator_name(step))
            result = self._guarded(executor.execute, history, step)
        if hooks is not None:
            hooks.after_orchestration_step(item.instance_id, step, result)
        return executor, result, history

    def _guarded(self, run: Any, *args: Any) -> ExecutionResult:
        try:
            result: ExecutionResult = run(*args)
            return result
        except (NonDeterminismError, OrchestrationStateError, NotRegisteredError) as err:
            # The code cannot go on with this history: the instance fails, with the diff as its message.
            logger.error("%s", err)
            return _failure_result(err)

    def _history(self, item: OrchestrationWorkItem, loaded: list[pb.HistoryEvent] | None) -> list[pb.HistoryEvent]:
        if loaded is not None:
            return loaded
        return self.engine.backend.get_history(item.instance_id) if item.history_length else []

    def _commit(
        self, item: OrchestrationWorkItem, update: StepUpdate, now: datetime, executor: OrchestrationExecutor | None
    ) -> None:
        engine = self.engine
        if engine.sub_orchestration_interceptor is not None:
            update.messages = [engine.sub_orchestration_interceptor(m, now) for m in update.messages]
        try:
            undelivered = engine.backend.complete_orchestration_work_item(item, update, now)
        except LockLostError:
            self._evict(item.instance_id)
            logger.warning("lost the lock on %r; the step was discarded", item.instance_id)
            raise
        if engine._hooks is not None:
            engine._hooks.step_committed(item.instance_id, update)
        if executor is not None and not is_terminal(update.record.status):
            length = len(update.new_history) + (0 if update.replace_history else item.history_length)
            with self._cache_lock:
                self._cache[item.instance_id] = (executor, length)
                while len(self._cache) > engine.executor_cache_size:
                    self._cache.pop(next(iter(self._cache)))
        for message in undelivered:
            self._undeliverable(update.record, message, now)

    def _undeliverable(self, sender: InstanceRecord, message: Message, now: datetime) -> None:
        event = message.event
        if event.HasField("executionStarted") and event.executionStarted.HasField("parentInstance"):
            parent = event.executionStarted.parentInstance
            failure = FailureDetails(
                message=f"cannot start sub-orchestration {event.executionStarted.name!r}: an instance with id "
                f"{message.instance_id!r} already exists and is still running",
                error_type="wftest.errors.InstanceAlreadyExistsError",
            )
            self.engine.backend.add_event(
                parent.orchestrationInstance.instanceId,
                ev.sub_orchestration_failed(now, parent.taskScheduledId, failure.to_proto()),
            )
            return
        if event.HasField("eventRaised") and is_cancel_event_name(event.eventRaised.name):
            # a cancel passed on to a sub-orchestration that is gone (purged; or mocked by the tester): there
            # is nothing left to cancel
            logger.debug("cancel of %r from %r dropped: no such instance", message.instance_id, sender.instance_id)
            return
        self.engine._report_undelivered(sender.instance_id, message)

    def _evict(self, instance_id: str) -> None:
        with self._cache_lock:
            self._cache.pop(instance_id, None)

    def cached_executor(self, instance_id: str) -> OrchestrationExecutor | None:
        """The warm executor of an instance, if one is cached (for diagnostics)."""
        with self._cache_lock:
            cached = self._cache.get(instance_id)
        return cached[0] if cached is not None else None

    # -- activities ---------------------------------------------------------------------------------

    def run_activity(self, item: ActivityWorkItem, *, fault: Fault | None = None) -> None:
        """Run one activity and commit its result (or failure), or suffer an injected ``fault``."""
        outcome = self.activity_outcome(item, fault=fault)
        if outcome is not None:
            self.commit_activity(item, *outcome)

    def activity_outcome(self, item: ActivityWorkItem, *, fault: Fault | None = None
                         ) -> tuple[pb.HistoryEvent, timedelta | None] | None:
        """Run one activity (hooks, interceptor and injected ``fault`` included); its result event and delay.

        None when the fault was a crash after the activity (the task was released, nothing to commit).
        Anything but the activity's own failure (a hook or the engine broke) releases the task at once
        and raises.
        """
        try:
            ready = self._activity_prelude(item, fault)
            if ready is None:
                ready = self.execute_activity(item.task), None
            if isinstance(fault, CrashAfterActivity):
                # the worker dies before recording the result: the task is delivered again
                self.engine.backend.abandon_activity_work_item(item, self.engine.clock.now())
                return None
            return self._activity_postlude(item, ready)
        except Exception:
            self._release_activity(item)
            raise

    async def activity_outcome_async(self, item: ActivityWorkItem) -> tuple[pb.HistoryEvent, timedelta | None]:
        """``activity_outcome`` for an ``async def`` activity, awaited on the caller's event loop."""
        try:
            ready = self._activity_prelude(item, None)
            if ready is None:
                ready = await self.execute_activity_async(item.task), None
            return self._activity_postlude(item, ready)
        except Exception:
            self._release_activity(item)
            raise

    def commit_activity(self, item: ActivityWorkItem, result: pb.HistoryEvent, delay: timedelta | None) -> None:
        """Record an activity's result for its orchestration (``LockLostError`` if the lock was lost)."""
        now = self.engine.clock.now()
        self.engine.backend.complete_activity_work_item(item, result, now, visible_at=now + delay if delay else None)

    def is_async_activity(self, name: str) -> bool:
        """Whether the activity registered under ``name`` is an ``async def`` (runs on an event loop)."""
        fn = self.engine.registry.get_activity(name)
        if fn is None or self.engine.activity_interceptor is not None:
            return False
        # a function, or an object whose class defines ``async def __call__``
        return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)

    def _activity_prelude(self, item: ActivityWorkItem, fault: Fault | None
                          ) -> tuple[pb.HistoryEvent, timedelta | None] | None:
        """Hooks before the activity, then an injected failure or the interceptor's answer (None: run it)."""
        engine = self.engine
        task = item.task
        if engine._hooks is not None:
            engine._hooks.before_activity(task)
        if isinstance(fault, (ActivityFails, ActivityTimesOut)):
            error = fault.error if isinstance(fault, ActivityFails) else TimeoutError(
                f"activity {task.name!r} (task #{task.task_id}) timed out (injected fault)")
            return ev.task_failed(engine.clock.now(), task.task_id, FailureDetails.from_exception(error)), None
        if engine.activity_interceptor is not None:
            intercepted = engine.activity_interceptor(task)
            if intercepted is not None:
                result, delay = intercepted
                if delay:
                    # the result arrives after the delay: that, not the call, is the time of its event
                    result.timestamp.FromDatetime(engine.clock.now() + delay)
                return result, delay
        return None

    def _activity_postlude(self, item: ActivityWorkItem, ready: tuple[pb.HistoryEvent, timedelta | None]
                           ) -> tuple[pb.HistoryEvent, timedelta | None]:
        if self.engine._hooks is not None:
            self.engine._hooks.after_activity(item.task, ready[0])
        return ready

    def _release_activity(self, item: ActivityWorkItem) -> None:
        # not the activity's own failure (that becomes TaskFailed): a hook or the engine broke; release
        # the task at once rather than leaving it locked until the lock expires
        with contextlib.suppress(LockLostError):
            self.engine.backend.abandon_activity_work_item(item, self.engine.clock.now())

    def _activity_call(self, task: ActivityTask) -> tuple[Any, Any, ActivityContext, bool]:
        engine = self.engine
        fn = engine.registry.get_activity(task.name)
        if fn is None:
            raise NotRegisteredError("activity", task.name, engine.registry.activity_names)
        value = engine.converter.deserialize(task.input)
        ctx = ActivityContext(task.instance_id, task.task_id, task.name, task.scheduled_at, task.tags)
        return fn, value, ctx, engine.registry.activity_takes_input(task.name)

    def execute_activity(self, task: ActivityTask) -> pb.HistoryEvent:
        """Call the activity function; the ``TaskCompleted`` or ``TaskFailed`` event for its result.

        An ``async def`` activity runs to completion on this thread's own event loop.
        """
        steps = self._activity_steps(task)
        try:
            pending = next(steps)
            while True:  # an awaitable the activity returned: run it here, hand back its outcome
                try:
                    value = self._event_loop().run_until_complete(_await(pending))
                except Exception as err:
                    pending = steps.throw(err)
                else:
                    pending = steps.send(value)
        except StopIteration as done:
            event: pb.HistoryEvent = done.value
            return event

    async def execute_activity_async(self, task: ActivityTask) -> pb.HistoryEvent:
        """``execute_activity`` on the running event loop: other activities run while this one awaits."""
        steps = self._activity_steps(task)
        try:
            pending = next(steps)
            while True:
                try:
                    value = await pending
                except Exception as err:
                    pending = steps.throw(err)
                else:
                    pending = steps.send(value)
        except StopIteration as done:
            event: pb.HistoryEvent = done.value
            return event

    def _activity_steps(self, task: ActivityTask) -> Generator[Any, Any, pb.HistoryEvent]:
        """Call the activity and build its result event; yields the awaitable an ``async`` activity returns
        (the caller awaits it, on its own loop or the running one, and sends back its value or throws in its
        error), so one body serves ``execute_activity`` and ``execute_activity_async``."""
        engine = self.engine
        try:
            fn, value, ctx, takes_input = self._activity_call(task)
            hooks = engine._hooks
            # the request-scoped context the orchestration passed on (wftest_extract_context), if any
            with hooks.extract_context(task.tags) if hooks is not None else contextlib.nullcontext():
                output = fn(ctx, value) if takes_input else fn(ctx)
                if type(output) not in _PLAIN and inspect.isawaitable(output):
                    output = yield output
            encoded = engine.converter.serialize(output)
        except Exception as err:
            return ev.task_failed(engine.clock.now(), task.task_id, FailureDetails.from_exception(err))
        return ev.task_completed(engine.clock.now(), task.task_id, encoded)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop | None = getattr(self._loops, "loop", None)
        if loop is None or loop.is_closed():
            loop = asyncio.new_event_loop()
            self._loops.loop = loop
        return loop

    def close(self) -> None:
        """Close this thread's event loop, if one was created."""
        loop = getattr(self._loops, "loop", None)
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(Exception):
                loop.close()


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _without_duplicates(events: list[pb.HistoryEvent], *, started: bool) -> list[pb.HistoryEvent]:
    """Drop a second ``ExecutionStarted`` and any ``ExecutionCompleted`` arriving as new events."""
    kept: list[pb.HistoryEvent] = []
    seen_start = started
    for event in events:
        kind = event.WhichOneof("eventType")
        if kind == "executionStarted":
            if seen_start:
                continue
            seen_start = True
        elif kind == "executionCompleted":
            continue
        kept.append(event)
    return kept


def _failure_result(error: BaseException) -> ExecutionResult:
    details = FailureDetails.from_exception(error)
    return ExecutionResult(actions=[ev.complete_orchestration_action(0, FAILED, None, details.to_proto())])
