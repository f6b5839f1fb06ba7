"""What the durabletask and Dapr adapters share: driving an SDK's own executor as an ``OrchestrationExecutor``.

Both SDKs have the same shape (Dapr's is a fork of durabletask-python): an ``_OrchestrationExecutor``
whose ``process_event(ctx, event)`` feeds one history event to a ``_RuntimeOrchestrationContext``, which
runs the user's generator and collects the actions it asks for in ``ctx._pending_actions``. The SDKs'
own ``execute(old, new)`` builds a fresh context and replays everything on every step; the adapter keeps
the context instead (sticky, like wftest's executor), so a step costs O(new events):

* ``execute(old, new)`` makes a new context, replays ``old`` (``is_replaying`` true) with wftest's replay
  checks on top of the SDK's, then processes ``new``;
* ``resume(new)`` processes the next step's events on the same context. The scheduling events the engine
  records for the actions of a step (``TaskScheduled``, ``TimerCreated``, ...) are never fed back: the
  actions handed out are dropped from ``ctx._pending_actions`` instead, which is what those events would do.

Replay checks (net 1 of DESIGN.md): the SDK raises its own ``NonDeterminismError`` for a missing action,
a different kind or a different name; the adapter turns it into wftest's, with the history event index,
and adds wftest's checks that the SDKs lack: timer fire times, sub-orchestration instance ids, inputs
(an error in strict mode, a ``NonDeterminismWarning`` otherwise), the recorded completion, and actions
the code asks for that the history never recorded.

These adapters use the SDKs' private executor classes: that is the only way to run their orchestrators
without their sidecar. They are pinned by the ``durabletask`` and ``dapr`` extras and covered by
tests/interop.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, ClassVar

from wftest import _events as ev
from wftest.errors import NonDeterminismError, OrchestrationStateError
from wftest.orchestration._executor import ExecutionResult, Guard, NonDeterminismWarning
from wftest.orchestration._foreign import ExecutorOptions
from wftest.orchestration._registry import Registry
from wftest.orchestration._sandbox import StrictGuard
from wftest.protos import orchestrator_service_pb2 as pb

_COMPLETE = "completeOrchestration"
_SCHEDULING = ("taskScheduled", "timerCreated", "subOrchestrationInstanceCreated", "eventSent")


def package_dir(module: ModuleType) -> str:
    """The folder of a package (to trust its code in strict mode)."""
    return os.path.dirname(os.path.abspath(module.__file__ or ""))


class SdkExecutor:
    """Base of the adapters: subclasses say how to build the SDK's executor and context and how to
    convert events and actions; this class steps them and checks replay.

    Args:
        registry: wftest's registry (the instance's orchestrator is found there by name).
        instance_id: the instance being executed.
        options: the engine's executor options (strictness, strict-mode guard, timer chunking).
    """

    #: "durabletask" or "Dapr", for messages
    sdk_name: ClassVar[str] = "SDK"
    #: folders of the SDK's code, trusted by the strict-mode guard
    sdk_dirs: ClassVar[tuple[str, ...]] = ()
    #: the SDK's non-determinism exception class
    sdk_nondeterminism_error: ClassVar[type[BaseException]] = Exception
    #: wftest event kinds the SDK's executor does not take and that carry nothing for it
    skipped_kinds: ClassVar[frozenset[str]] = frozenset({"historyState"})
    #: SDK exceptions that mean "this history cannot run here" rather than a failure of the user's code
    sdk_state_errors: ClassVar[tuple[type[BaseException], ...]] = ()

    _history: Sequence[pb.HistoryEvent]

    def __init__(self, registry: Registry, instance_id: str, options: ExecutorOptions) -> None:
        self.registry = registry
        self.instance_id = instance_id
        self.options = options
        self.strict = options.strict
        guard = options.guard
        if isinstance(guard, StrictGuard):
            guard = guard.trusting(self.sdk_dirs)
        self._guard: Guard | None = guard
        self.logger = logging.getLogger(f"wftest.interop.{self.sdk_name.lower()}")
        self._reset()

    # -- hooks for subclasses ------------------------------------------------------------------------

    def new_sdk_state(self) -> tuple[Any, Any]:
        """A fresh (SDK executor, SDK orchestration context) pair for this instance."""
        raise NotImplementedError

    def to_sdk_event(self, event: pb.HistoryEvent, index: int) -> Any:
        """wftest's event (at ``index`` of the history) as the SDK's ``HistoryEvent``; None to skip it."""
        raise NotImplementedError

    def prepare_replay(self, old_events: Sequence[pb.HistoryEvent]) -> None:
        """Called before ``old_events`` are replayed (to read markers the SDK needs earlier)."""

    def skip_check(self, sdk_action: Any, event: pb.HistoryEvent) -> bool:
        """True to leave the matching of this scheduling event entirely to the SDK."""
        return False

    def extra_generic_events(self) -> list[str]:
        """``GenericEvent`` payloads to record with this step (what the SDK's sidecar would store)."""
        return []

    def from_sdk_action(self, action: Any) -> pb.OrchestratorAction:
        """The SDK's action message as wftest's ``OrchestratorAction``."""
        raise NotImplementedError

    def ignorable_leftover(self, action: Any) -> bool:
        """An SDK action that may stay unconfirmed at the end of a replay (Dapr's optional timers)."""
        return False

    def adjust_failure(self, action: pb.OrchestratorAction, error: BaseException) -> None:
        """Called with the completion action of an execution that ``error`` failed."""

    # -- OrchestrationExecutor ---------------------------------------------------------------------------

    @property
    def is_complete(self) -> bool:
        """True once the execution has finished (completed, failed, terminated, continued-as-new)."""
        return bool(self._ctx._is_complete)

    @property
    def events_processed(self) -> int:
        """How many history events this executor has consumed since its last ``execute``."""
        return self._events_seen

    @property
    def sdk_context(self) -> Any:
        """The SDK's orchestration context (``_RuntimeOrchestrationContext``), for diagnostics."""
        return self._ctx

    def execute(self, old_events: Sequence[pb.HistoryEvent], new_events: Sequence[pb.HistoryEvent]) -> ExecutionResult:
        """Replay ``old_events`` from scratch, checking determinism, then process ``new_events``."""
        self._reset()
        self._history = old_events
        self.prepare_replay(old_events)
        self._ctx._is_replaying = True
        self._process_all(old_events, 0, replaying=True)
        self._events_seen = len(old_events)
        self._check_replay_finished()
        self._warm = True
        return self.resume(new_events)

    def resume(self, new_events: Sequence[pb.HistoryEvent]) -> ExecutionResult:
        """Process the next step's events on a warm executor (after :meth:`execute`)."""
        if not self._warm:
            raise OrchestrationStateError("resume() needs a warm executor: call execute() first")
        self._ctx._is_replaying = False
        base = self._events_seen
        self._process_all(new_events, base, replaying=False)
        self._events_seen = base + len(new_events)
        return self._take_result()

    def describe_waiting(self) -> str:
        """What the instance waits for, in words (the engine's stall errors use it)."""
        ctx = self._ctx
        waits = sorted(ctx._pending_events)
        if waits:
            return ("it waits for external event(s) " + ", ".join(repr(w) for w in waits)
                    + "; raise them with client.raise_orchestration_event()")
        pending = len(ctx._pending_tasks)
        if pending:
            return f"it waits for {pending} task(s) (activities, timers or sub-orchestrations)"
        return "it is RUNNING and waits for nothing the engine can deliver"

    # -- stepping ----------------------------------------------------------------------------------------

    def _reset(self) -> None:
        self._sdk, self._ctx = self.new_sdk_state()
        self._ctx._wftest_guard = self._guard
        self._warm = False
        self._stopped = False  # an unhandled error failed the execution: the SDK processes nothing more
        self._failure: BaseException | None = None
        self._completion_done = False  # the completion was confirmed by history or handed out
        self._history = ()
        self._history_log: list[int] = []
        self._events_seen = 0

    def _process_all(self, events: Sequence[pb.HistoryEvent], base: int, *, replaying: bool) -> None:
        for index, event in enumerate(events, base):
            kind = event.WhichOneof("eventType")
            if kind == "executionCompleted":
                if replaying:
                    self._confirm_completion(index, event)
                continue
            if self._stopped or kind is None or kind in self.skipped_kinds:
                continue
            if replaying and kind in _SCHEDULING:
                self._history_log.append(index)
                self._check_scheduling(index, event, kind)
            self._feed(index, event)

    def _feed(self, index: int, event: pb.HistoryEvent) -> None:
        sdk_event = self.to_sdk_event(event, index)
        if sdk_event is None:
            return
        ctx = self._ctx
        asked = ctx._pending_actions.get(event.eventId)  # the SDK pops it before it complains
        try:
            if self._guard is None or not event.HasField("executionStarted"):
                self._sdk.process_event(ctx, sdk_event)
            else:
                # the SDK calls the orchestrator function here (a plain function runs its whole body);
                # the generator's steps are guarded by GuardedGenerator (see guard_generator)
                with self._guard():
                    self._sdk.process_event(ctx, sdk_event)
        except NonDeterminismError:
            raise
        except Exception as err:
            if isinstance(err, self.sdk_nondeterminism_error):
                actual = ev.describe_action(self.from_sdk_action(asked)) if asked is not None else self._waiting()
                raise self._mismatch(index, event, actual, str(err)) from None
            if isinstance(err, self.sdk_state_errors):
                raise OrchestrationStateError(
                    f"instance {self.instance_id!r}, history event #{index} ({ev.describe_event(event)}): "
                    f"{self.sdk_name}'s executor cannot go on: {type(err).__name__}: {err}"
                ) from err
            # as the SDK's own execute(): an unhandled error fails the orchestration, nothing more runs
            self._stopped = True
            self._failure = err
            ctx.set_failed(err)

    # -- results -----------------------------------------------------------------------------------------

    def _take_result(self) -> ExecutionResult:
        ctx = self._ctx
        sdk_actions = ctx.get_actions()
        ctx._pending_actions.clear()  # handed out: the engine records them, as their events would confirm
        actions: list[pb.OrchestratorAction] = []
        for sdk_action in sdk_actions:
            action = self.from_sdk_action(sdk_action)
            if action.HasField(_COMPLETE):
                if self._completion_done:
                    continue
                self._completion_done = True
                if self._failure is not None:
                    self.adjust_failure(action, self._failure)
            actions.append(action)
        return ExecutionResult(
            actions=actions,
            custom_status=ctx._encoded_custom_status,
            custom_status_set=bool(getattr(ctx, "_wftest_custom_status_set", False)),
            generic_events=self.extra_generic_events(),
        )

    def _pending_completion(self) -> tuple[int, pb.OrchestratorAction] | None:
        for action_id, sdk_action in list(self._ctx._pending_actions.items()):
            action = self.from_sdk_action(sdk_action)
            if action.HasField(_COMPLETE):
                return action_id, action
        return None

    # -- replay checks -----------------------------------------------------------------------------------

    def _check_scheduling(self, index: int, event: pb.HistoryEvent, kind: str) -> None:
        """wftest's checks on a scheduling event that the SDK's executor does not make."""
        sdk_action = self._ctx._pending_actions.get(event.eventId)
        if sdk_action is None or self.skip_check(sdk_action, event):
            return  # the SDK reports a missing action itself
        action = self.from_sdk_action(sdk_action)
        asked_kind = action.WhichOneof("orchestratorActionType")
        described = ev.describe_action(action)
        if kind == "taskScheduled" and asked_kind == "scheduleTask":
            recorded, asked = event.taskScheduled, action.scheduleTask
            if asked.name != recorded.name:
                raise self._mismatch(index, event, described, "a different activity")
            self._compare_payload(index, "input", _value(recorded, "input"), _value(asked, "input"))
        elif kind == "timerCreated" and asked_kind == "createTimer":
            if action.createTimer.fireAt != event.timerCreated.fireAt:
                raise self._mismatch(index, event, described, "a timer with a different fire time")
        elif kind == "subOrchestrationInstanceCreated" and asked_kind == "createSubOrchestration":
            created, child = event.subOrchestrationInstanceCreated, action.createSubOrchestration
            if child.name != created.name:
                raise self._mismatch(index, event, described, "a different sub-orchestrator")
            if child.instanceId != created.instanceId:
                raise self._mismatch(index, event, described, "a different child instance id")
            self._compare_payload(index, "input", _value(created, "input"), _value(child, "input"))
        elif kind == "eventSent" and asked_kind == "sendEvent":
            sent, send = event.eventSent, action.sendEvent
            if send.name != sent.name or send.instance.instanceId != sent.instanceId:
                raise self._mismatch(index, event, described, "a different event or target")

    def _confirm_completion(self, index: int, event: pb.HistoryEvent) -> None:
        self._history_log.append(index)
        completed = event.executionCompleted
        pending = self._pending_completion()
        if pending is None or pending[1].completeOrchestration.orchestrationStatus != completed.orchestrationStatus:
            actual = ev.describe_action(pending[1]) if pending is not None else self._waiting()
            raise self._mismatch(index, event, actual, "the history says the orchestration ended here")
        action_id, action = pending
        self._compare_payload(index, "output", _value(completed, "result"),
                              _value(action.completeOrchestration, "result"))
        del self._ctx._pending_actions[action_id]
        self._completion_done = True

    def _check_replay_finished(self) -> None:
        if not self._history:
            return
        ctx = self._ctx
        leftover = [
            ev.describe_action(self.from_sdk_action(a))
            for _, a in sorted(ctx._pending_actions.items())
            if not self.ignorable_leftover(a)
        ]
        completed_on_replay = ctx._is_complete and not self._completion_done and ctx._completion_status is not None
        if completed_on_replay and not any(x.startswith("complete") for x in leftover):
            leftover.append(f"complete {ev.status_name(ctx._completion_status)}")
        if not leftover:
            return
        raise NonDeterminismError(
            self._render(None, "the end of the history (nothing more was recorded)", leftover[0],
                         "the code asks for something that the history never recorded"),
            index=None, expected="end of history", actual=leftover[0], instance_id=self.instance_id,
        )

    def _compare_payload(self, index: int, what: str, recorded: str | None, now: str | None) -> None:
        if recorded == now or _same_json(recorded, now):
            return
        message = (
            f"instance {self.instance_id!r}, history event #{index}: the {what} differs from the recorded one\n"
            f"  history: {recorded}\n  code:    {now}"
        )
        if self.strict:
            raise NonDeterminismError(message, index=index, expected=recorded, actual=now,
                                      instance_id=self.instance_id)
        warnings.warn(message, NonDeterminismWarning, stacklevel=2)

    def _waiting(self) -> str:
        ctx = self._ctx
        if ctx._pending_actions:
            first = ctx._pending_actions[min(ctx._pending_actions)]
            return ev.describe_action(self.from_sdk_action(first))
        if ctx._is_complete:
            return "the orchestration has finished"
        return "nothing: the code is still waiting"

    def _mismatch(self, index: int, event: pb.HistoryEvent, actual: str, why: str) -> NonDeterminismError:
        expected = ev.describe_event(event)
        return NonDeterminismError(
            self._render(index, expected, actual, why),
            index=index, expected=expected, actual=actual, instance_id=self.instance_id,
        )

    def _render(self, index: int | None, expected: str, actual: str, why: str) -> str:
        where = f"history event #{index}" if index is not None else "end of history"
        name = _orchestrator_of(self._history)
        lines = [
            f"non-determinism in instance {self.instance_id!r} ({name}, run by {self.sdk_name}'s executor) "
            f"at {where}: {why}",
            f"  history: {expected}",
            f"  code:    {actual}",
        ]
        recorded = [f"[{i}] {ev.describe_event(self._history[i])}" for i in self._history_log[-12:]]
        if recorded:
            lines += ["", "  scheduling events replayed so far (the last is where it stopped matching):"]
            lines += [f"    {line}" for line in recorded]
        lines.append(
            "  The code must ask for the same things, in the same order, as when the history was written."
        )
        return "\n".join(lines)


def _orchestrator_of(history: Sequence[pb.HistoryEvent]) -> str:
    for event in history:
        if event.HasField("executionStarted"):
            return event.executionStarted.name
    return "unknown orchestrator"


def _value(message: Any, field: str) -> str | None:
    return str(getattr(message, field).value) if message.HasField(field) else None


def _same_json(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return not a and not b  # durabletask re-sends an absent input as "" on retries
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return False


class GuardedGenerator:
    """An orchestrator's generator whose every step runs inside the strict-mode guard.

    The SDKs drive the generator with ``next()``, ``send()`` and ``throw()``; only those steps run the
    user's code, so only they pay for the guard's profile hook (the SDK's own event handling does not).
    """

    __slots__ = ("_generator", "_guard")

    def __init__(self, generator: Any, guard: Guard) -> None:
        self._generator = generator
        self._guard = guard

    def __iter__(self) -> GuardedGenerator:
        return self

    def __next__(self) -> Any:
        with self._guard():
            return next(self._generator)

    def send(self, value: Any) -> Any:
        """Resume the orchestrator with a task's result."""
        with self._guard():
            return self._generator.send(value)

    def throw(self, *args: Any) -> Any:
        """Resume the orchestrator with a task's failure."""
        with self._guard():
            return self._generator.throw(*args)

    def close(self) -> None:
        """Close the generator."""
        self._generator.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._generator, name)


def guard_generator(run: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an SDK context's ``run(generator)`` so the generator's steps run inside the strict-mode guard."""

    def wrapper(self: Any, generator: Any) -> Any:
        guard = getattr(self, "_wftest_guard", None)
        return run(self, GuardedGenerator(generator, guard) if guard is not None else generator)

    wrapper.__name__ = run.__name__
    wrapper.__doc__ = run.__doc__
    return wrapper


def mark_custom_status(set_custom_status: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an SDK context's ``set_custom_status`` so the adapter knows it was called (even with None)."""

    def wrapper(self: Any, custom_status: Any) -> Any:
        self._wftest_custom_status_set = True
        return set_custom_status(self, custom_status)

    wrapper.__name__ = set_custom_status.__name__
    wrapper.__doc__ = set_custom_status.__doc__
    return wrapper
