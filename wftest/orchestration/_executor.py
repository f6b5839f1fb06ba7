"""The executor: runs orchestrator code over (old events, new events) and returns the actions it asks for.

It is pure: no clock, no I/O, no threads. Two ways to use it:

* ``execute(old_events, new_events)`` replays the old events (``is_replaying`` is True), checking that
  the code asks for exactly what the history recorded (net 1 of DESIGN.md), then feeds the new events.
* ``resume(new_events)`` continues a warm executor from where its last step ended. The engine keeps
  executors per instance ("sticky"), so a step costs O(new events), not O(history).

Event handling follows the ``durabletask`` package's executor wherever its behaviour shapes history
(ids, retries, long-timer chunks, event buffering), so that histories are interchangeable.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import json
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from wftest import _events as ev
from wftest._failure import FailureDetails
from wftest.converter import DEFAULT_CONVERTER, Converter
from wftest.errors import (
    NonDeterminismError,
    NotRegisteredError,
    OrchestrationStateError,
    TaskFailedError,
)
from wftest.orchestration._cancel import CANCEL_KEY, cancel_instance, interrupted
from wftest.orchestration._context import (
    PATCH_MARKER,
    SIDE_EFFECT_MARKER,
    OrchestrationContext,
    PlannedActivity,
    built,
    timeout_error,
)
from wftest.orchestration._registry import Registry
from wftest.orchestration._task import _PENDING, CancellableTask, RetryableTask, Task, TimerTask
from wftest.protos import orchestrator_service_pb2 as pb

if TYPE_CHECKING:
    from wftest.hooks import Hooks

#: durabletask-python splits timers longer than this into chunks; so do we, so histories match.
DEFAULT_MAXIMUM_TIMER_INTERVAL = timedelta(days=3)

_COMPLETED = pb.ORCHESTRATION_STATUS_COMPLETED
_TERMINATED = pb.ORCHESTRATION_STATUS_TERMINATED


class NonDeterminismWarning(UserWarning):
    """Replay found a changed input or output; an error in strict mode, this warning otherwise."""


@dataclass
class ExecutionResult:
    """What one step of orchestrator code asked for."""

    actions: list[pb.OrchestratorAction]
    custom_status: str | None = None
    #: True when ``set_custom_status`` was called at some point (``None`` then means "cleared")
    custom_status_set: bool = False
    #: JSON payloads of ``GenericEvent`` markers to append to history (side-effect results)
    generic_events: list[str] = field(default_factory=list)

    @property
    def completion(self) -> pb.OrchestratorAction | None:
        """The ``completeOrchestration`` action, if the execution finished in this step."""
        for action in reversed(self.actions):
            if action.HasField("completeOrchestration"):
                return action
        return None


class OrchestrationExecutor(Protocol):
    """The engine's one interface to orchestrator code: (old events, new events) -> actions.

    wftest's :class:`Executor` implements it; so do the adapters in ``wftest.interop`` around the
    durabletask package's and Dapr's executors (chosen per orchestrator name, see
    ``wftest.orchestration._foreign``).
    """

    #: a changed input or output on replay is an error (``NonDeterminismError``), not a warning
    strict: bool

    def execute(self, old_events: Sequence[pb.HistoryEvent], new_events: Sequence[pb.HistoryEvent]) -> ExecutionResult:
        """Replay ``old_events`` and process ``new_events``; return the step's actions."""
        ...

    def resume(self, new_events: Sequence[pb.HistoryEvent]) -> ExecutionResult:
        """Process the next step's events on a warm executor (after :meth:`execute`)."""
        ...


Guard = Callable[[], contextlib.AbstractContextManager[Any]]


class Executor:
    """wftest's executor for one orchestration instance.

    Args:
        registry: where orchestrator and activity functions are found by name.
        instance_id: the instance being executed.
        converter: payload converter (JSON by default).
        maximum_timer_interval: longer timers are split into chunks (None: never split).
        strict: a changed activity/sub-orchestration input or output on replay raises
            ``NonDeterminismError`` instead of warning with ``NonDeterminismWarning``.
        guard: context-manager factory entered around every run of user code (strict-mode sandbox).
        propagation: the hooks whose ``wftest_extract_context`` is entered around every run of user code (with
            the execution's ``ExecutionStarted.tags``) and whose ``wftest_inject_context`` fills the tags of
            scheduled activities and sub-orchestrations (see ``wftest.propagation``).
    """

    def __init__(
        self,
        registry: Registry,
        instance_id: str,
        *,
        converter: Converter = DEFAULT_CONVERTER,
        maximum_timer_interval: timedelta | None = DEFAULT_MAXIMUM_TIMER_INTERVAL,
        strict: bool = False,
        guard: Guard | None = None,
        propagation: Hooks | None = None,
    ) -> None:
        self.registry = registry
        self.instance_id = instance_id
        self.converter = converter
        self.maximum_timer_interval = maximum_timer_interval
        self.strict = strict
        self.propagation = propagation if propagation is not None and propagation.propagates_context else None
        if self.propagation is not None and self.propagation.implemented("wftest_extract_context"):
            guard = _with_extracted_context(self, self.propagation, guard)
        self._guard = guard
        self._warm = False
        self._reset()

    def _reset(self) -> None:
        self.ctx = OrchestrationContext(self, self.instance_id)
        self._code: Any = None  # the generator or coroutine of the orchestrator
        self._waiting_on: Task[Any] | None = None
        self._suspended = False
        self._suspended_events: list[tuple[pb.HistoryEvent, int]] = []
        self._timeout_of_timer: dict[int, tuple[CancellableTask[Any], str, timedelta]] = {}
        self._timer_of_waiter: dict[int, TimerTask] = {}
        # replay bookkeeping, for error messages
        self._history: Sequence[pb.HistoryEvent] = ()
        self._replay_length = 0
        self._code_log: list[pb.OrchestratorAction | PlannedActivity] = []
        self._history_log: list[int] = []
        self._events_seen = 0
        self._completion_done = False  # the completion was confirmed by history or handed out
        self._fresh = True  # nothing has run since this reset (a new executor's first execute skips one)

    # -- public API ---------------------------------------------------------------------------------

    @property
    def events_processed(self) -> int:
        """How many history events this executor has consumed (old + new) since its last reset."""
        return self._events_seen

    @property
    def is_complete(self) -> bool:
        """True once the execution has finished (completed, failed, terminated, continued-as-new)."""
        return self.ctx._complete

    def execute(self, old_events: Sequence[pb.HistoryEvent], new_events: Sequence[pb.HistoryEvent]) -> ExecutionResult:
        """Replay ``old_events`` from scratch, checking determinism, then process ``new_events``."""
        if not self._fresh:
            self._reset()
        self._fresh = False
        ctx = self.ctx
        self._history = old_events
        self._replay_length = len(old_events)
        ctx._is_replaying = True
        self._process_all(old_events, 0)
        self._events_seen = len(old_events)
        self._check_replay_finished()
        self._warm = True
        return self.resume(new_events)

    def resume(self, new_events: Sequence[pb.HistoryEvent]) -> ExecutionResult:
        """Process the next step's events on a warm executor (after :meth:`execute`)."""
        if not self._warm:
            raise OrchestrationStateError("resume() needs a warm executor: call execute() first")
        ctx = self.ctx
        ctx._is_replaying = False
        base = self._events_seen
        self._process_all(new_events, base)
        self._events_seen = base + len(new_events)
        return self._take_result()

    def load_markers(self) -> None:
        """Collect the side-effect results and patch markers recorded in the replayed history.

        Called by the context the first time the code asks for one (``side_effect``, ``is_patched``), so
        replaying the history of code that uses neither does not scan it.
        """
        ctx = self.ctx
        if ctx._markers_loaded:
            return
        ctx._markers_loaded = True
        for event in itertools.islice(self._history, self._replay_length):
            if event.HasField("genericEvent"):
                data = event.genericEvent.data.value
                if SIDE_EFFECT_MARKER in data:
                    ctx._recorded_side_effects.append(data)
                elif PATCH_MARKER in data:
                    try:
                        ctx._recorded_patches.add(json.loads(data)[PATCH_MARKER])
                    except (ValueError, KeyError, TypeError):
                        pass  # some other tool's GenericEvent that merely mentions the marker

    def link_timeout(self, waiter: CancellableTask[Any], timer: TimerTask, name: str, timeout: timedelta) -> None:
        """Make ``timer`` fail ``waiter`` with a timeout error if it fires first (and vice versa)."""
        for action_id, task in self.ctx._pending_tasks.items():
            if task is timer:
                self._timeout_of_timer[action_id] = (waiter, name, timeout)
        self._timer_of_waiter[id(waiter)] = timer
        forget = waiter._cancel_handler

        def forget_with_timer() -> None:  # waiter.cancel() cancels its timeout timer too
            if forget is not None:
                forget()
            if self._timer_of_waiter.pop(id(waiter), None) is not None:
                timer.cancel()

        waiter._cancel_handler = forget_with_timer

    def record_action(self, action: pb.OrchestratorAction | PlannedActivity) -> None:
        """Called by the context for every action the code asks for."""
        ctx = self.ctx
        ctx._pending_actions[action.id] = action
        if ctx._is_replaying:
            self._code_log.append(action)

    # -- result -------------------------------------------------------------------------------------

    def _take_result(self) -> ExecutionResult:
        ctx = self.ctx
        # in the order the code asked for them (a retried call keeps its old id), as durabletask does
        actions = [built(action) for action in ctx._pending_actions.values()]
        ctx._pending_actions.clear()
        if not self._completion_done:
            completion = ctx._completion_actions()
            if completion:
                actions.extend(completion)
                self._completion_done = True
        generic_events, ctx._new_generic_events = ctx._new_generic_events, []
        return ExecutionResult(
            actions=actions,
            custom_status=ctx._custom_status,
            custom_status_set=ctx._custom_status_set,
            generic_events=generic_events,
        )

    # -- event processing ---------------------------------------------------------------------------

    def _process_all(self, events: Sequence[pb.HistoryEvent], base: int) -> None:
        # the hot loop of replay: ``_process`` inlined for the common case (not suspended, known kind)
        handlers = _HANDLERS
        for index, event in enumerate(events, base):
            handler = handlers.get(event.WhichOneof("eventType"))
            if handler is None or self._suspended:
                self._process(event, index)
            else:
                handler(self, event, index)

    def _process(self, event: pb.HistoryEvent, index: int) -> None:
        kind = event.WhichOneof("eventType")
        if self._suspended and kind != "executionResumed" and kind != "executionTerminated":
            self._suspended_events.append((event, index))
            return
        handler = _HANDLERS.get(kind or "")
        if handler is None:
            raise OrchestrationStateError(
                f"instance {self.instance_id!r}: history event #{index} is a {kind!r} event, which wftest's "
                "executor cannot run (entity operations and rewinds are not supported)"
            )
        handler(self, event, index)

    def _on_orchestrator_started(self, event: pb.HistoryEvent, index: int) -> None:
        self.ctx._now = _to_datetime(event.timestamp)

    def _on_ignored(self, event: pb.HistoryEvent, index: int) -> None:
        pass

    def _on_execution_started(self, event: pb.HistoryEvent, index: int) -> None:
        if self._code is not None or self.ctx._complete:
            return  # a duplicate start; the runtime drops these, histories from elsewhere may not
        ctx = self.ctx
        started = event.executionStarted
        ctx._name = started.name
        ctx._execution_id = (
            started.orchestrationInstance.executionId.value
            if started.orchestrationInstance.HasField("executionId")
            else None
        )
        if started.HasField("version"):
            ctx._version = started.version.value
        if started.parentInstance.HasField("orchestrationInstance"):
            ctx._parent_instance_id = started.parentInstance.orchestrationInstance.instanceId
        if started.tags:
            ctx._tags = dict(started.tags)
        fn = self.registry.get_orchestrator(started.name)
        if fn is None:
            error = NotRegisteredError("orchestrator", started.name, self.registry.orchestrator_names)
            if ctx._is_replaying:
                raise error  # the history ran this code once: a worker without it cannot go on
            ctx._fail(error)
            return
        try:
            value = self.converter.deserialize(started.input.value if started.HasField("input") else None)
        except Exception as err:
            ctx._fail(err)
            return
        takes_input = self.registry.orchestrator_takes_input(started.name)
        try:
            with self._guard() if self._guard is not None else contextlib.nullcontext():
                result = fn(ctx, value) if takes_input else fn(ctx)
        except NonDeterminismError:
            raise
        except Exception as err:
            ctx._fail(err)
            return
        if inspect.isgenerator(result) or inspect.iscoroutine(result):
            self._code = result
            self._advance(None, None)
            self._resume()
        else:
            self._complete_with(result)

    def _on_execution_completed(self, event: pb.HistoryEvent, index: int) -> None:
        ctx = self.ctx
        if not ctx._is_replaying:
            return
        completed = event.executionCompleted
        self._history_log.append(index)
        completion = ctx._completion
        if completion is None or (
            completion.completeOrchestration.orchestrationStatus != completed.orchestrationStatus
        ):
            actual = (
                ev.describe_action(completion)
                if completion is not None
                else self._waiting_description()
            )
            raise self._mismatch(index, event, actual, "the history says the orchestration ended here")
        self._compare_payload(
            index, event, "output", completed.result.value if completed.HasField("result") else None,
            completion.completeOrchestration.result.value
            if completion.completeOrchestration.HasField("result") else None,
        )
        self._completion_done = True  # confirmed by history: nothing to hand out

    def _on_execution_terminated(self, event: pb.HistoryEvent, index: int) -> None:
        ctx = self.ctx
        if ctx._complete:
            return
        body = event.executionTerminated
        ctx._finish(_TERMINATED, body.input.value if body.HasField("input") else None, None)

    def _on_execution_suspended(self, event: pb.HistoryEvent, index: int) -> None:
        self._suspended = True

    def _on_execution_resumed(self, event: pb.HistoryEvent, index: int) -> None:
        if not self._suspended:
            return
        self._suspended = False
        buffered, self._suspended_events = self._suspended_events, []
        for held, held_index in buffered:
            self._process(held, held_index)

    # scheduling events: confirm the action the code asked for (replay only)

    def _on_task_scheduled(self, event: pb.HistoryEvent, index: int) -> None:
        ctx = self.ctx
        if not ctx._is_replaying:
            return
        event_id = event.eventId
        planned = ctx._pending_actions.get(event_id)
        if type(planned) is PlannedActivity:
            scheduled = event.taskScheduled
            if planned.name == scheduled.name and (planned.encoded_input or "") == scheduled.input.value:
                # fast path (no protobuf action was built): same activity, same input text ("" if none)
                self._history_log.append(index)
                del ctx._pending_actions[event_id]
                return
        action = self._confirm(event, index, "scheduleTask")
        if action is None:
            return
        scheduled, asked = event.taskScheduled, action.scheduleTask
        if asked.name != scheduled.name:
            raise self._mismatch(index, event, ev.describe_action(action), "a different activity")
        if asked.input.value != scheduled.input.value:  # an absent input reads as ""
            self._compare_payload(
                index, event, "input",
                scheduled.input.value if scheduled.HasField("input") else None,
                asked.input.value if asked.HasField("input") else None,
            )

    def _on_timer_created(self, event: pb.HistoryEvent, index: int) -> None:
        action = self._confirm(event, index, "createTimer")
        if action is None:
            return
        if action.createTimer.fireAt != event.timerCreated.fireAt:
            raise self._mismatch(index, event, ev.describe_action(action), "a timer with a different fire time")

    def _on_sub_orchestration_created(self, event: pb.HistoryEvent, index: int) -> None:
        action = self._confirm(event, index, "createSubOrchestration")
        if action is None:
            return
        created, asked = event.subOrchestrationInstanceCreated, action.createSubOrchestration
        if asked.name != created.name:
            raise self._mismatch(index, event, ev.describe_action(action), "a different sub-orchestrator")
        if asked.instanceId != created.instanceId:
            raise self._mismatch(index, event, ev.describe_action(action), "a different child instance id")
        self._compare_payload(
            index, event, "input",
            created.input.value if created.HasField("input") else None,
            asked.input.value if asked.HasField("input") else None,
        )

    def _on_event_sent(self, event: pb.HistoryEvent, index: int) -> None:
        action = self._confirm(event, index, "sendEvent")
        if action is None:
            return
        sent, asked = event.eventSent, action.sendEvent
        if asked.name != sent.name or asked.instance.instanceId != sent.instanceId:
            raise self._mismatch(index, event, ev.describe_action(action), "a different event or target")

    def _confirm(self, event: pb.HistoryEvent, index: int, kind: str) -> pb.OrchestratorAction | None:
        ctx = self.ctx
        if not ctx._is_replaying:
            return None
        self._history_log.append(index)
        pending = ctx._pending_actions.pop(event.eventId, None)
        action = built(pending) if pending is not None else None
        if action is None or action.WhichOneof("orchestratorActionType") != kind:
            actual = ev.describe_action(action) if action is not None else self._waiting_description()
            raise self._mismatch(index, event, actual, "the code asked for something else at this point")
        return action

    # results: complete tasks and run the code on

    def _on_task_completed(self, event: pb.HistoryEvent, index: int) -> None:
        body = event.taskCompleted
        task = self.ctx._pending_tasks.pop(body.taskScheduledId, None)
        if task is None or isinstance(task, TimerTask):
            return  # a result for a task nobody waits for (e.g. after a retry gave up); durabletask ignores it
        task._complete(self.converter.deserialize(body.result.value or None))  # an absent result reads as ""
        self._resume()

    def _on_sub_orchestration_completed(self, event: pb.HistoryEvent, index: int) -> None:
        body = event.subOrchestrationInstanceCompleted
        self._succeed(body.taskScheduledId, body.result.value if body.HasField("result") else None)

    def _succeed(self, task_id: int, encoded: str | None) -> None:
        task = self.ctx._pending_tasks.pop(task_id, None)
        if task is None or isinstance(task, TimerTask):
            return  # a result for a task nobody waits for (e.g. after a retry gave up); durabletask ignores it
        task._complete(self.converter.deserialize(encoded))
        self._resume()

    def _on_task_failed(self, event: pb.HistoryEvent, index: int) -> None:
        body = event.taskFailed
        self._failed(body.taskScheduledId, body.failureDetails, "activity")

    def _on_sub_orchestration_failed(self, event: pb.HistoryEvent, index: int) -> None:
        body = event.subOrchestrationInstanceFailed
        self._failed(body.taskScheduledId, body.failureDetails, "sub-orchestration")

    def _failed(self, task_id: int, details_pb: pb.TaskFailureDetails, what: str) -> None:
        ctx = self.ctx
        task = ctx._pending_tasks.pop(task_id, None)
        if task is None or isinstance(task, TimerTask):
            return
        details = FailureDetails.from_proto(details_pb)
        error = TaskFailedError(f"{what} task #{task_id} failed: {details.message}", details)
        if isinstance(task, RetryableTask):
            delay = task._policy.next_delay(task._attempt, error, task._started_at, ctx._now)
            if delay is not None and not ctx._complete and (not ctx._cancelled or id(task) in ctx._shielded):
                task._attempt += 1
                ctx._new_timer(ctx._now + delay, retry_of=task)
                return
        task._fail(error)
        self._resume()

    def _on_timer_fired(self, event: pb.HistoryEvent, index: int) -> None:
        ctx = self.ctx
        body = event.timerFired
        timer = ctx._pending_tasks.pop(body.timerId, None)
        if not isinstance(timer, TimerTask) or ctx._complete:
            return
        fired_at = body.fireAt.ToDatetime()
        if fired_at < timer._final_fire_at:
            # one chunk of a long timer: arm the next chunk, as durabletask does
            limit = self.maximum_timer_interval
            next_at = timer._final_fire_at
            if limit is not None and fired_at + limit < next_at:
                next_at = fired_at + limit
            ctx._arm_timer(timer, next_at)
            timeout = self._timeout_of_timer.pop(body.timerId, None)
            if timeout is not None:  # a long event timeout: the next chunk (the newest id) carries it
                self._timeout_of_timer[ctx._sequence] = timeout
            return
        retry = timer._retry_of
        if retry is not None:
            # the retry delay is over: schedule the same action again, under its original id
            action = retry._action
            self.record_action(action)
            ctx._pending_tasks[action.id] = retry
            return
        timeout = self._timeout_of_timer.pop(body.timerId, None)
        timer._complete(None)
        if timeout is not None:
            waiter, name, span = timeout
            self._timer_of_waiter.pop(id(waiter), None)
            if not waiter.is_complete:
                if waiter._cancel_handler is not None:
                    waiter._cancel_handler()
                waiter._fail(timeout_error(name, span))
        self._resume()

    def _on_event_raised(self, event: pb.HistoryEvent, index: int) -> None:
        ctx = self.ctx
        body = event.eventRaised
        key = body.name.casefold()
        data = body.input.value if body.HasField("input") else None
        if key == CANCEL_KEY:  # cooperative cancellation: not an event for the code (see _cancel.py)
            cancel_instance(self, data)
            return
        waiters = ctx._event_waiters.get(key)
        if waiters and not ctx._complete:
            waiter = waiters.popleft()
            if not waiters:
                del ctx._event_waiters[key]
            timer = self._timer_of_waiter.pop(id(waiter), None)
            if timer is not None:
                timer.cancel()
            waiter._complete(self.converter.deserialize(data))
            self._resume()
            return
        ctx._event_buffer.setdefault(key, deque()).append((ctx._event_arrivals, key, data))
        ctx._event_arrivals += 1

    # -- running the code ---------------------------------------------------------------------------

    def _resume(self) -> None:
        ctx = self.ctx
        while not ctx._complete:
            task = self._waiting_on
            if task is None:
                return
            if task._exception is not None:
                self._advance(None, task._exception)
            elif task._result is not _PENDING:
                self._advance(task._result, None)
            elif ctx._cancelled and not ctx._disconnected_depth:
                self._advance(None, interrupted(ctx))  # cancelled: waits end at once, outside ctx.disconnected()
            else:
                return  # still waiting

    def _advance(self, value: Any, error: BaseException | None) -> None:
        ctx = self.ctx
        code = self._code
        try:
            if self._guard is None:  # the hot path: no context manager to enter
                yielded = code.throw(error) if error is not None else code.send(value)
            else:
                with self._guard():
                    yielded = code.throw(error) if error is not None else code.send(value)
        except StopIteration as stop:
            self._waiting_on = None
            self._complete_with(stop.value)
            return
        except NonDeterminismError:
            raise
        except Exception as err:
            self._waiting_on = None
            if not ctx._complete:
                ctx._fail(err)
            return
        if ctx._complete:
            self._waiting_on = None  # continue_as_new() was called: the code does not run on
            return
        if not isinstance(yielded, Task):
            self._waiting_on = None
            frame = getattr(code, "gi_frame", None) or getattr(code, "cr_frame", None)
            where = f" at {frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else ""
            ctx._fail(
                TypeError(
                    f"the orchestrator yielded {yielded!r}{where}; orchestrators may only yield (or await) "
                    "tasks from the context (call_activity, create_timer, when_all, ...)"
                )
            )
            return
        self._waiting_on = yielded

    def _complete_with(self, output: Any) -> None:
        ctx = self.ctx
        if ctx._complete:
            return
        try:
            encoded = self.converter.serialize(output)
        except Exception as err:
            ctx._fail(err)
            return
        ctx._finish(_COMPLETED, encoded, None)

    # -- non-determinism ----------------------------------------------------------------------------

    def _check_replay_finished(self) -> None:
        ctx = self.ctx
        if not self._history:
            return
        leftover = [ev.describe_action(built(ctx._pending_actions[k])) for k in sorted(ctx._pending_actions)]
        if ctx._completion is not None and not self._completion_done:
            leftover.append(ev.describe_action(ctx._completion))
        if ctx._continue_as_new is not None:
            leftover.append("continue_as_new")
        if not leftover:
            return
        raise NonDeterminismError(
            self._render(
                None,
                "the end of the history (nothing more was recorded)",
                leftover[0],
                "the code asks for something that the history never recorded",
            ),
            index=None,
            expected="end of history",
            actual=leftover[0],
            instance_id=self.instance_id,
        )

    def _compare_payload(self, index: int, event: pb.HistoryEvent, what: str, recorded: str | None,
                         now: str | None) -> None:
        if recorded == now or _same_json(recorded, now):
            return
        message = (
            f"instance {self.instance_id!r}, history event #{index}: the {what} differs from the recorded one\n"
            f"  history: {recorded}\n  code:    {now}"
        )
        if self.strict:
            raise NonDeterminismError(
                message, index=index, expected=recorded, actual=now, instance_id=self.instance_id
            )
        warnings.warn(message, NonDeterminismWarning, stacklevel=2)

    def _waiting_description(self) -> str:
        ctx = self.ctx
        if ctx._completion is not None:
            return ev.describe_action(ctx._completion)
        if ctx._complete:
            return "the orchestration has finished"
        if ctx._pending_actions:  # the code asked for something the history never recorded
            return ev.describe_action(built(ctx._pending_actions[min(ctx._pending_actions)]))
        return "nothing: the code is still waiting"

    def _mismatch(self, index: int, event: pb.HistoryEvent, actual: str, why: str) -> NonDeterminismError:
        expected = ev.describe_event(event)
        return NonDeterminismError(
            self._render(index, expected, actual, why),
            index=index,
            expected=expected,
            actual=actual,
            instance_id=self.instance_id,
        )

    def _render(self, index: int | None, expected: str, actual: str, why: str) -> str:
        where = f"history event #{index}" if index is not None else "end of history"
        lines = [
            f"non-determinism in instance {self.instance_id!r} ({self.ctx.name or 'unknown orchestrator'}) "
            f"at {where}: {why}",
            f"  history: {expected}",
            f"  code:    {actual}",
            "",
            "  side by side (scheduling events in history | what the code asked for on replay):",
        ]
        left = [f"[{i}] {ev.describe_event(self._history[i])}" for i in self._history_log]
        if index is not None and (not self._history_log or self._history_log[-1] != index):
            left.append(f"[{index}] {expected}")
        right = [ev.describe_action(built(a)) for a in self._code_log]
        width = max([len(x) for x in left] + [20])
        rows = max(len(left), len(right))
        for row in range(max(0, rows - 12), rows):
            mark = ">" if row == rows - 1 else " "
            lhs = left[row] if row < len(left) else ""
            rhs = right[row] if row < len(right) else ""
            lines.append(f"  {mark} {lhs.ljust(width)} | {rhs}")
        lines.append(
            "  The code must ask for the same things, in the same order, as when the history was written. "
            "Guard new behaviour with ctx.is_patched() or start new instances."
        )
        return "\n".join(lines)


def _with_extracted_context(executor: Executor, hooks: Hooks, guard: Guard | None) -> Guard:
    """A guard that makes the execution's tags current (``wftest_extract_context``), then enters ``guard``."""

    @contextlib.contextmanager
    def scoped() -> Iterator[None]:
        with hooks.extract_context(executor.ctx._tags), (guard() if guard is not None else contextlib.nullcontext()):
            yield

    return scoped


_EPOCH = datetime(1970, 1, 1)
_last_time: tuple[int, int, datetime] = (0, 0, _EPOCH)


def _to_datetime(ts: Any) -> datetime:
    """``ts.ToDatetime()`` (naive UTC), cheaper: the steps of a run often share a timestamp, so the last
    conversion is kept (a tuple swap is atomic across threads)."""
    global _last_time
    seconds, nanos = ts.seconds, ts.nanos
    last = _last_time
    if last[0] == seconds and last[1] == nanos:
        return last[2]
    when = _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
    _last_time = (seconds, nanos, when)
    return when


def _same_json(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b or (not a and not b)
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return False


_HANDLERS: dict[str, Callable[[Executor, pb.HistoryEvent, int], None]] = {
    "orchestratorStarted": Executor._on_orchestrator_started,
    "orchestratorCompleted": Executor._on_ignored,
    "executionStarted": Executor._on_execution_started,
    "executionCompleted": Executor._on_execution_completed,
    "executionTerminated": Executor._on_execution_terminated,
    "executionSuspended": Executor._on_execution_suspended,
    "executionResumed": Executor._on_execution_resumed,
    "taskScheduled": Executor._on_task_scheduled,
    "taskCompleted": Executor._on_task_completed,
    "taskFailed": Executor._on_task_failed,
    "subOrchestrationInstanceCreated": Executor._on_sub_orchestration_created,
    "subOrchestrationInstanceCompleted": Executor._on_sub_orchestration_completed,
    "subOrchestrationInstanceFailed": Executor._on_sub_orchestration_failed,
    "timerCreated": Executor._on_timer_created,
    "timerFired": Executor._on_timer_fired,
    "eventSent": Executor._on_event_sent,
    "eventRaised": Executor._on_event_raised,
    "genericEvent": Executor._on_ignored,
    "historyState": Executor._on_ignored,
    "continueAsNew": Executor._on_ignored,
    # a rewind marker: the backend already rewrote the history, so replay simply goes on (as durabletask)
    "executionRewound": Executor._on_ignored,
}
