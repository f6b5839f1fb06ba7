"""``OrchestrationContext``: what orchestrator code calls to schedule work and read orchestration time.

Every call that schedules something (activity, timer, sub-orchestration, sent event) takes the next
sequence number, starting at 1, in the order the code asks; that is how durabletask-python numbers
actions, so histories are interchangeable (PROTOCOL.md). The context never reads a clock: its time is
the timestamp of the step's ``OrchestratorStarted`` event.
"""

from __future__ import annotations

import json
import logging
import random as _random
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from wftest import _events as ev
from wftest._failure import FailureDetails
from wftest.errors import NonDeterminismError, TaskFailedError, TaskTimeoutError
from wftest.orchestration._cancel import CANCEL_EVENT, Disconnected, encode_cancel, refused
from wftest.orchestration._logging import WorkflowLogger
from wftest.orchestration._registry import Activity, Orchestrator
from wftest.orchestration._retry import RetryPolicy
from wftest.orchestration._sandbox import unwatched
from wftest.orchestration._task import CancellableTask, CompletableTask, RetryableTask, Task, TimerTask
from wftest.protos import orchestrator_service_pb2 as pb

if TYPE_CHECKING:
    from wftest.orchestration._executor import Executor

T = TypeVar("T")
_T = TypeVar("_T", bound=Task[Any])

# new_uuid(): the uuid5 derivation of durabletask-python (PROTOCOL.md), so ids match across executors.
_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_OID, "9e952958-5e33-4daf-827f-2fa12937b875")
_UUID_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

SIDE_EFFECT_MARKER = "wftest.sideEffect"
PATCH_MARKER = "wftest.patch"

_COMPLETED = pb.ORCHESTRATION_STATUS_COMPLETED
_FAILED = pb.ORCHESTRATION_STATUS_FAILED
_CONTINUED_AS_NEW = pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW


class PlannedActivity:
    """A ``call_activity`` asked for during replay, kept as plain values; :meth:`build` makes the action."""

    __slots__ = ("encoded_input", "id", "name")

    def __init__(self, action_id: int, name: str, encoded_input: str | None) -> None:
        self.id = action_id
        self.name = name
        self.encoded_input = encoded_input

    def build(self) -> pb.OrchestratorAction:
        return ev.schedule_task_action(self.id, self.name, self.encoded_input)


def built(action: pb.OrchestratorAction | PlannedActivity) -> pb.OrchestratorAction:
    """The protobuf action of a pending action."""
    if isinstance(action, PlannedActivity):
        return action.build()
    return action


class OrchestrationContext:
    """The orchestrator's view of its instance: schedule work, wait for events, read durable time.

    An orchestrator is a generator function (or an ``async def``) taking the context and its input::

        def order_workflow(ctx: OrchestrationContext, order: dict):
            receipt = yield ctx.call_activity(charge_card, input=order)
            yield ctx.create_timer(timedelta(days=1))
            return {"receipt": receipt}

    Orchestrator code must be deterministic: it is replayed from history, and must ask for the same
    things in the same order every time. Use this context, never the wall clock, ``random`` or I/O.
    """

    def __init__(self, executor: Executor, instance_id: str) -> None:
        self._executor = executor
        self._instance_id = instance_id
        self._now = datetime(1970, 1, 1)
        self._is_replaying = True
        self._sequence = 0
        self._uuid_counter = 0
        self._parent_instance_id: str | None = None
        self._tags: dict[str, str] = {}
        self._version: str | None = None
        self._execution_id: str | None = None
        self._name = ""
        self._custom_status: str | None = None
        self._custom_status_set = False
        self._random: _random.Random | None = None
        self._side_effect_count = 0
        self._recorded_side_effects: deque[str] = deque()
        self._recorded_patches: set[str] = set()
        self._markers_loaded = False  # the two above are read from history on first use
        self._patch_decisions: dict[str, bool] = {}
        self._new_generic_events: list[str] = []
        # actions asked for by the code and not yet confirmed by history (replay) or handed out (step)
        self._pending_actions: dict[int, pb.OrchestratorAction | PlannedActivity] = {}
        # tasks waiting for a history event, by sequence number
        self._pending_tasks: dict[int, Task[Any]] = {}
        # external events: waiters and early arrivals, by case-folded name (FIFO each)
        self._event_waiters: dict[str, deque[CancellableTask[Any]]] = {}
        self._event_buffer: dict[str, deque[tuple[int, str, str | None]]] = {}
        self._event_arrivals = 0
        self._complete = False
        self._completion: pb.OrchestratorAction | None = None
        self._continue_as_new: tuple[Any, bool] | None = None
        # cooperative cancellation (wftest.orchestration._cancel)
        self._cancelled = False
        self._cancel_reason: str | None = None
        self._disconnected_depth = 0  # > 0 while the code runs inside ``with ctx.disconnected():``
        self._shielded: dict[int, Task[Any]] = {}  # tasks created inside disconnected(), by id(): never cancelled
        self._children: dict[int, str] = {}  # sub-orchestration instance ids, by action id
        self._cancellation_errors = 0

    # -- properties ---------------------------------------------------------------------------------

    @property
    def instance_id(self) -> str:
        """The id of this orchestration instance."""
        return self._instance_id

    @property
    def name(self) -> str:
        """The name the orchestrator was started under."""
        return self._name

    @property
    def parent_instance_id(self) -> str | None:
        """The parent's instance id for a sub-orchestration, else None."""
        return self._parent_instance_id

    @property
    def tags(self) -> Mapping[str, str]:
        """The tags this execution was started with (its ``ExecutionStarted.tags``; read-only).

        They hold what the client passed as ``schedule_new_orchestration(tags=...)``, what a parent passed as
        ``call_sub_orchestrator(tags=...)``, and the request-scoped values that context propagation carried in
        (see ``wftest.propagation``). They come from history, so replays see the same values.
        """
        return MappingProxyType(self._tags)

    @property
    def version(self) -> str | None:
        """The version recorded when the execution started, if any."""
        return self._version

    @property
    def current_utc_datetime(self) -> datetime:
        """Orchestration time: the start of the current step (naive UTC). Replays see the same value."""
        return self._now

    @property
    def is_replaying(self) -> bool:
        """True while the code re-runs over history already recorded; use it to silence side effects."""
        return self._is_replaying

    # -- cancellation -------------------------------------------------------------------------------

    @property
    def is_cancelled(self) -> bool:
        """True once a cancel request was processed (``client.cancel_orchestration``); stays True.

        Replays see it at the same point of the code. Inside :meth:`disconnected` it is still True.
        """
        return self._cancelled

    def disconnected(self) -> Disconnected:
        """A scope where a cancelled orchestration works normally (go-workflows' ``NewDisconnectedContext``).

        After a cancel, calls and waits fail with ``OrchestrationCancelledError``, except inside this block:
        cleanup activities, timers and sub-orchestrations run, and tasks scheduled before the cancel (an
        activity that was running) can be waited for. Tasks created inside it are never cancelled, even if
        the cancel comes later::

            try:
                room = yield ctx.call_activity(reserve_room, input=trip)
                ...
            except OrchestrationCancelledError:
                with ctx.disconnected():
                    yield ctx.call_activity(release_room, input=trip)
                raise  # ends FAILED (cancelled); return a value instead to complete normally

        .. versionadded:: 0.1
        """
        return Disconnected(self)

    # -- scheduling ---------------------------------------------------------------------------------

    @unwatched
    def call_activity(
        self,
        activity: Activity | str,
        *,
        input: Any = None,
        retry_policy: RetryPolicy | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Task[Any]:
        """Schedule an activity; yield the returned task for its result.

        ``activity`` is the function (registered under its name on first use) or a registered name.
        A failure raises ``TaskFailedError`` at the ``yield``, after ``retry_policy`` gave up. ``tags`` are
        recorded in the ``TaskScheduled`` event and given to the activity (``ActivityContext.tags``), with
        the values of context propagation (``wftest.propagation``; ``tags`` win on a clash).
        """
        executor = self._executor
        name = executor.registry.activity_name(activity)
        if self._cancelled and not self._disconnected_depth:
            return self._refused(CompletableTask(), f"call_activity({name!r})")
        self._sequence += 1
        action_id = self._sequence
        encoded = executor.converter.serialize(input)
        if executor.propagation is not None and (retry_policy is not None or not self._is_replaying):
            tags = {**executor.propagation.inject_context({}), **(tags or {})}
        if retry_policy is not None or tags or not self._is_replaying:
            action = ev.schedule_task_action(action_id, name, encoded, dict(tags) if tags else None)
            return self._schedule(action, retry_policy, is_sub=False)
        # replaying: history almost always confirms the call, so the protobuf action is built only if
        # something reads it (the hot path of a replay)
        task: CompletableTask[Any] = CompletableTask()
        executor.record_action(PlannedActivity(action_id, name, encoded))
        self._pending_tasks[action_id] = task
        return task

    @unwatched
    def call_sub_orchestrator(
        self,
        orchestrator: Orchestrator | str,
        *,
        input: Any = None,
        instance_id: str | None = None,
        retry_policy: RetryPolicy | None = None,
        version: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Task[Any]:
        """Start a sub-orchestration; yield the returned task for its output.

        Without ``instance_id`` the child's id is ``f"{parent_id}:{seq:04x}"`` (durabletask's rule).
        ``tags`` (a wftest addition) are recorded in ``SubOrchestrationInstanceCreated`` and become the
        child's ``ExecutionStarted.tags`` (its ``ctx.tags``), with the values of context propagation
        (``wftest.propagation``; ``tags`` win on a clash).
        """
        executor = self._executor
        name = executor.registry.orchestrator_name(orchestrator)
        if self._cancelled and not self._disconnected_depth:
            return self._refused(CompletableTask(), f"call_sub_orchestrator({name!r})")
        action_id = self._next_id()
        child_id = instance_id if instance_id is not None else f"{self._instance_id}:{action_id:04x}"
        self._children[action_id] = child_id
        if executor.propagation is not None and (retry_policy is not None or not self._is_replaying):
            tags = {**executor.propagation.inject_context({}), **(tags or {})}
        action = ev.create_sub_orchestration_action(
            action_id, name, child_id, executor.converter.serialize(input), version, dict(tags) if tags else None
        )
        return self._schedule(action, retry_policy, is_sub=True)

    @unwatched
    def create_timer(self, fire_at: datetime | timedelta) -> TimerTask:
        """A durable timer that fires at ``fire_at`` (or after a ``timedelta`` of orchestration time).

        Timers cost nothing while they wait and survive restarts; with a virtual clock a 30-day timer
        fires at once.
        """
        if isinstance(fire_at, timedelta):
            when = self._now + fire_at
        elif isinstance(fire_at, datetime):
            when = fire_at
            if when.utcoffset() is not None:
                when = when.astimezone(timezone.utc).replace(tzinfo=None)
        else:
            raise TypeError(f"create_timer() takes a datetime or a timedelta, not {type(fire_at).__qualname__}")
        if self._cancelled and not self._disconnected_depth:
            refused_timer = TimerTask(when, when)
            refused_timer._is_cancelled = True
            return self._refused(refused_timer, f"create_timer({when.isoformat()})")
        return self._new_timer(when)

    @unwatched
    def wait_for_external_event(self, name: str, *, timeout: timedelta | None = None) -> CancellableTask[Any]:
        """Wait for an event raised to this instance (names are case-insensitive).

        Events raised before anyone waits are buffered and consumed in arrival order. With ``timeout``
        the task fails with ``TaskTimeoutError`` (a ``TimeoutError``) if no event arrives in time.
        """
        key = name.casefold()
        waiter: CancellableTask[Any] = CancellableTask()
        if self._disconnected_depth:
            self._shielded[id(waiter)] = waiter
        elif self._cancelled:
            waiter._is_cancelled = True
            return self._refused(waiter, f"wait_for_external_event({name!r})")
        buffered = self._event_buffer.get(key)
        if buffered:
            _, _, data = buffered.popleft()
            if not buffered:
                del self._event_buffer[key]
            waiter._complete(self._executor.converter.deserialize(data))
            return waiter
        self._event_waiters.setdefault(key, deque()).append(waiter)

        def forget() -> None:
            waiters = self._event_waiters.get(key)
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._event_waiters[key]

        waiter._cancel_handler = forget
        if timeout is not None:
            timer = self.create_timer(timeout)
            self._executor.link_timeout(waiter, timer, name, timeout)
        return waiter

    @unwatched
    def send_event(self, instance_id: str, event_name: str, *, data: Any = None) -> None:
        """Raise ``event_name`` on another instance (fire and forget)."""
        if not instance_id:
            raise ValueError("send_event() needs a target instance id")
        if not event_name:
            raise ValueError("send_event() needs an event name")
        action_id = self._next_id()
        action = ev.send_event_action(action_id, instance_id, event_name, self._executor.converter.serialize(data))
        self._executor.record_action(action)

    @unwatched
    def continue_as_new(self, new_input: Any, *, save_events: bool = False) -> None:
        """Restart this instance with a fresh history and ``new_input`` once the current step ends.

        With ``save_events=True`` external events received but not yet read are carried over.
        """
        if self._complete:
            return
        self._complete = True
        self._continue_as_new = (new_input, save_events)

    @unwatched
    def set_custom_status(self, status: Any) -> None:
        """Publish a JSON-serializable status, visible to clients while the instance runs."""
        self._custom_status = self._executor.converter.serialize(status)
        self._custom_status_set = True

    @unwatched
    def new_uuid(self) -> str:
        """A UUID that is the same on every replay (uuid5 over instance id, time and a counter)."""
        name = f"{self._instance_id}_{self._now.strftime(_UUID_TIME_FORMAT)}_{self._uuid_counter}"
        self._uuid_counter += 1
        return str(uuid.uuid5(_UUID_NAMESPACE, name))

    @unwatched
    def random(self) -> _random.Random:
        """A ``random.Random`` seeded from this execution, so replays draw the same numbers.

        Example::

            jitter = ctx.random().uniform(0, 5)
        """
        if self._random is None:
            seed = f"{self._instance_id}|{self._execution_id or ''}|{self._name}"
            self._random = _random.Random(uuid.uuid5(_UUID_NAMESPACE, seed).int)
        return self._random

    @unwatched
    def side_effect(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` once and record its (JSON) result; replays return the recorded value.

        For small non-deterministic values (a random id, a config read). Work that can fail or take
        time belongs in an activity.
        """
        index = self._side_effect_count
        self._side_effect_count += 1
        if not self._markers_loaded:
            self._executor.load_markers()
        if self._recorded_side_effects:
            recorded = json.loads(self._recorded_side_effects.popleft())
            return self._executor.converter.deserialize(recorded["value"])  # type: ignore[no-any-return]
        if self._is_replaying:
            raise NonDeterminismError(
                f"side_effect #{index} was called during replay but the history holds no recorded result "
                "for it: the code calls side_effect() more often than when the history was written",
                expected="no side effect", actual=f"side_effect #{index}", instance_id=self._instance_id,
            )
        value = fn()
        encoded = self._executor.converter.serialize(value)
        self._new_generic_events.append(json.dumps({SIDE_EFFECT_MARKER: index, "value": encoded}))
        return self._executor.converter.deserialize(encoded)  # type: ignore[no-any-return]

    @unwatched
    def is_patched(self, name: str) -> bool:
        """Whether this execution takes the new code path of the change called ``name`` (versioning).

        Temporal's ``patched`` semantics: True for executions that reach this point with the new code
        (a marker is recorded in history so later replays agree), False when replaying a history written
        before the change (no marker). The answer is fixed for the whole execution once asked::

            if ctx.is_patched("charge-before-reserve"):
                yield ctx.call_activity(charge); yield ctx.call_activity(reserve)
            else:
                yield ctx.call_activity(reserve); yield ctx.call_activity(charge)

        Once no execution started before the change is left, replace the call by
        :meth:`deprecate_patch` and drop the old branch.
        """
        decided = self._patch_decisions.get(name)
        if decided is not None:
            return decided
        if not self._markers_loaded:
            self._executor.load_markers()
        if name in self._recorded_patches:
            decided = True
        elif self._is_replaying:
            decided = False
        else:
            decided = True
            self._new_generic_events.append(json.dumps({PATCH_MARKER: name}))
        self._patch_decisions[name] = decided
        return decided

    @unwatched
    def deprecate_patch(self, name: str) -> None:
        """The clean-up step after :meth:`is_patched`: keep recording the marker, without branching.

        Histories written with or without the marker both replay.
        """
        if not self._markers_loaded:
            self._executor.load_markers()
        if name in self._patch_decisions or name in self._recorded_patches:
            return
        self._patch_decisions[name] = True
        if not self._is_replaying:
            self._new_generic_events.append(json.dumps({PATCH_MARKER: name}))

    def create_replay_safe_logger(self, logger: logging.Logger) -> WorkflowLogger:
        """A logger that drops records while the code is replaying, so each line is logged once.

        durabletask-python's name. Its records also carry ``instance_id`` and ``orchestrator_name``
        attributes; messages are left as they are (``wftest.workflow_logger(ctx)`` adds a prefix too).
        """
        return WorkflowLogger(logger, self, prefix=False)

    # -- internals ----------------------------------------------------------------------------------

    def _next_id(self) -> int:
        self._sequence += 1
        return self._sequence

    def _refused(self, task: _T, what: str) -> _T:
        """``task``, failed at once: a call made after a cancel, outside ``disconnected()`` (no action)."""
        task._fail(refused(self, what))
        return task

    def _send_cancel(self, child_id: str) -> None:
        """Pass this instance's cancel on to a running sub-orchestration (an ``EventSent`` in history)."""
        action = ev.send_event_action(self._next_id(), child_id, CANCEL_EVENT, encode_cancel(self._cancel_reason))
        self._executor.record_action(action)

    def _schedule(self, action: pb.OrchestratorAction, policy: RetryPolicy | None, *, is_sub: bool) -> Task[Any]:
        task: CompletableTask[Any] = (
            CompletableTask() if policy is None else RetryableTask(policy, action, self._now, is_sub)
        )
        self._executor.record_action(action)
        self._pending_tasks[action.id] = task
        if self._disconnected_depth:
            self._shielded[id(task)] = task
        return task

    def _new_timer(self, final_fire_at: datetime, retry_of: RetryableTask[Any] | None = None) -> TimerTask:
        limit = self._executor.maximum_timer_interval
        fire_at = final_fire_at
        if limit is not None and self._now + limit < final_fire_at:
            fire_at = self._now + limit
        timer = TimerTask(fire_at, final_fire_at)
        timer._retry_of = retry_of
        if self._disconnected_depth or (retry_of is not None and id(retry_of) in self._shielded):
            self._shielded[id(timer)] = timer
        self._arm_timer(timer, fire_at)
        return timer

    def _arm_timer(self, timer: TimerTask, fire_at: datetime) -> None:
        action_id = self._next_id()
        self._executor.record_action(ev.create_timer_action(action_id, fire_at))
        self._pending_tasks[action_id] = timer

        def cancel() -> None:
            self._pending_tasks.pop(action_id, None)
            # cancelled in the step that created it: the timer is never scheduled (as in durabletask)
            self._pending_actions.pop(action_id, None)

        timer._cancel_handler = cancel

    def _finish(self, status: int, encoded_result: str | None, failure: pb.TaskFailureDetails | None) -> None:
        if self._complete:
            return
        self._complete = True
        self._completion = ev.complete_orchestration_action(self._next_id(), status, encoded_result, failure)

    def _fail(self, error: BaseException) -> None:
        details = FailureDetails.from_exception(error)
        if isinstance(error, TaskFailedError) and details.inner_failure is None:
            details = FailureDetails(
                message=details.message,
                error_type=details.error_type,
                stack_trace=details.stack_trace,
                inner_failure=error.details,
                is_non_retriable=details.is_non_retriable,  # a non-retriable failure that escapes stays one
            )
        self._finish(_FAILED, None, details.to_proto())

    def _completion_actions(self) -> list[pb.OrchestratorAction]:
        if self._continue_as_new is not None and self._completion is None:
            new_input, save_events = self._continue_as_new
            carryover = None
            if save_events:
                arrivals = sorted(item for items in self._event_buffer.values() for item in items)
                carryover = [ev.event_raised(None, name, data) for _, name, data in arrivals]
            self._completion = ev.complete_orchestration_action(
                self._next_id(), _CONTINUED_AS_NEW, self._executor.converter.serialize(new_input), None, carryover
            )
            if self._tags:  # the next execution keeps this one's tags (its request-scoped context)
                self._completion.completeOrchestration.tags.update(self._tags)
        return [self._completion] if self._completion is not None else []


def timeout_error(name: str, timeout: timedelta) -> TaskTimeoutError:
    """The failure of an external-event wait whose timeout elapsed."""
    message = f"wait_for_external_event({name!r}) timed out after {timeout}: the task was canceled"
    details = FailureDetails(message=message, error_type="wftest.errors.TaskTimeoutError")
    return TaskTimeoutError(message, details)
