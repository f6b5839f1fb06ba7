"""Plugin hooks: extensions (tracing, logging, metrics, time patching) attach here without patching.

wftest defines its hooks with pluggy. A plugin is any object (or module) with methods named like the
hooks below, decorated with :data:`hookimpl`::

    from wftest.hooks import hookimpl

    class CountSteps:
        steps = 0

        @hookimpl
        def wftest_after_orchestration_step(self, instance_id, events, result):
            self.steps += 1

    tester = WorkflowTester()
    tester.hooks.register(CountSteps())

Each engine or tester owns a :class:`Hooks` manager (no plugin manager exists at import time, and two
engines never share plugins unless given the same manager). This module imports nothing from wftest's
layers (only, lazily, the private helper of its freezegun plugin), so every layer may call hooks.
Built-in behaviour, such as freezing activity time with freezegun, is itself registered as an internal
plugin that yours can override.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from wftest.orchestration import ExecutionResult
    from wftest.protos import orchestrator_service_pb2 as pb
    from wftest.runtime import ActivityTask, StepUpdate
    from wftest.testing import RunResult

PROJECT = "wftest"

_hookspec = pluggy.HookspecMarker(PROJECT)
#: Decorate your hook implementations with this.
hookimpl = pluggy.HookimplMarker(PROJECT)


class TimePatch(Protocol):
    """A running patch of the wall clock (what activities see as "now")."""

    def move_to(self, when: datetime) -> None:
        """Make the patched clock read ``when`` (naive UTC)."""
        ...

    def stop(self) -> None:
        """Remove the patch."""
        ...


class HookSpecs:
    """The hook specifications. Implement any of these in a plugin (names must match)."""

    @_hookspec
    def wftest_before_orchestration_step(self, instance_id: str, events: list[pb.HistoryEvent]) -> None:
        """Called before orchestrator code runs a step over ``events`` (OrchestratorStarted + new events)."""

    @_hookspec
    def wftest_after_orchestration_step(
        self, instance_id: str, events: list[pb.HistoryEvent], result: ExecutionResult
    ) -> None:
        """Called after a step, with the actions the code asked for."""

    @_hookspec
    def wftest_before_activity(self, task: ActivityTask) -> None:
        """Called before an activity runs (mocked or real)."""

    @_hookspec
    def wftest_after_activity(self, task: ActivityTask, result: pb.HistoryEvent) -> None:
        """Called after an activity ran, with its ``TaskCompleted`` / ``TaskFailed`` event."""

    @_hookspec
    def wftest_run_finished(self, result: RunResult) -> None:
        """Called when a tester run finished (before its replay check)."""

    # -- context propagation (trace context, tags) and committed steps ---------------------------------
    # The caller's context enters at wftest_client_starting; a step passes its orchestration's context on
    # to what it creates in wftest_step_applied; observers report in wftest_step_committed, which never
    # sees a step twice (a replay, a crash or a lost lock commits nothing). wftest.tracing uses all three.

    @_hookspec
    def wftest_client_starting(self, event: pb.HistoryEvent) -> None:
        """Called when the client is about to create an instance, with its ``ExecutionStarted`` event.

        This is where the caller's context enters the engine: a plugin may add to the event (its
        ``tags``, ``parentTraceContext``, ``orchestrationSpanID``) before it is stored. Sub-orchestrations
        and continue-as-new executions get their ``ExecutionStarted`` in a step (``wftest_step_applied``).
        """

    @_hookspec
    def wftest_step_applied(
        self,
        instance_id: str,
        events: list[pb.HistoryEvent],
        update: StepUpdate,
        history_length: int,
        load_history: Callable[[], list[pb.HistoryEvent]],
    ) -> None:
        """Called when a step's actions were turned into history events and messages, before anything is stored.

        ``events`` are what the orchestrator code ran over (``OrchestratorStarted`` first); ``update`` is
        what the step will commit: ``update.new_history`` holds ``events`` followed by the events the step
        created (``TaskScheduled``, ``TimerCreated``, ``SubOrchestrationInstanceCreated``, ``EventSent``,
        ``ExecutionCompleted``), and ``update.messages`` the events for other instances (a child's
        ``ExecutionStarted``) and for itself (``TimerFired``). ``history_length`` counts the events stored
        before the step; ``load_history()`` reads them (O(history): keep a cache of your own).

        If the code continued as new, ``update.replace_history`` is true and ``update.new_history`` starts
        the next execution (``OrchestratorStarted``, ``ExecutionStarted``, carried-over events), which runs
        in the same step: the hook is called again for it, with those events and ``history_length`` 0.

        A plugin may add to the events the step created (``tags``, ``parentTraceContext``): this is where an
        orchestration's context passes to its activities and children. It must not add, remove or reorder
        events. The step may still be abandoned (a crash, a lost lock): report in ``wftest_step_committed``.
        """

    @_hookspec
    def wftest_step_committed(self, instance_id: str, update: StepUpdate) -> None:
        """Called once a step's ``update`` is stored (the last one given to ``wftest_step_applied``).

        Report here what must be reported once (spans, metrics, audit lines): replays, crashed steps and
        lost locks never get here. Steps that changed nothing (work for a finished instance, duplicates)
        are committed too, with an empty ``update.new_history``.
        """

    # -- request-scoped context (tenant, user, request id) carried in the events' tags -------------------
    # inject writes the current values into tags where work leaves the current code; extract makes the values
    # of tags current while code runs. The tags are stored in history, so a replay sees the values recorded.
    # wftest.propagation.ContextVarPropagator implements both for a contextvars.ContextVar.

    @_hookspec
    def wftest_inject_context(self, tags: dict[str, str]) -> None:
        """Write the request-scoped values of the current context into ``tags`` (strings only).

        Called by the client as it creates an instance (``tags`` become its ``ExecutionStarted.tags``; tags
        given to ``schedule_new_orchestration(tags=...)`` win on a clash), and by orchestrator code as it
        schedules an activity (``TaskScheduled.tags``) or a sub-orchestration
        (``SubOrchestrationInstanceCreated.tags`` and the child's ``ExecutionStarted.tags``); there the current
        context is the one :meth:`wftest_extract_context` made from the orchestration's own tags. Tags given
        to ``call_activity(tags=...)`` win on a clash. Not called while orchestrator code replays history.
        """

    @_hookspec
    def wftest_extract_context(self, tags: Mapping[str, str]) -> AbstractContextManager[object] | None:
        """A context manager that makes the values in ``tags`` current while code runs (or None: nothing to do).

        Entered around every run of orchestrator code (``tags`` are the execution's ``ExecutionStarted.tags``,
        the same on every replay) and around every activity call, mocked ones included (the ``TaskScheduled``
        tags). Every plugin's manager is entered, in registration order.
        """

    @_hookspec(firstresult=True)
    def wftest_start_time_patch(self, now: datetime) -> TimePatch | None:
        """Start patching the wall clock at ``now`` for activity code; the first non-None result wins.

        The tester starts a patch right before an activity runs, moves it (``move_to``) for activities
        that run right after it, and stops it before anything else runs (an orchestration step, a mock,
        a plugin's ``wftest_before_activity``/``wftest_after_activity``, the test), so the rest of the
        process (orchestrator code included) reads the real clock: starting and stopping should cost
        microseconds. The built-in implementation uses freezegun (its scan of the loaded modules runs
        once per process, see ``wftest._frozen_time``); :class:`TimeMachinePlugin` uses time-machine.
        """


# Modules whose references to the clock freezegun never replaces: test tooling, whose GC callbacks and
# timers run at arbitrary moments, and wftest, whose engine keeps its own time.
_NEVER_PATCHED = ("hypothesis", "_pytest", "pytest", "pluggy", "wftest", "coverage")
# Callers that read the real clock even while activity time is frozen (freezegun looks a few frames up
# the stack of each time.time() call). Not wftest: its worker calls every activity, which must see the
# frozen time.
_REAL_TIME_CALLERS = ("hypothesis", "_pytest", "pytest", "pluggy", "coverage")


class FreezegunPlugin:
    """Built-in: activities see virtual time through freezegun (the default time patch).

    freezegun's scan of the loaded modules runs once per process; after it, starting and stopping a
    patch costs microseconds (see ``wftest._frozen_time``), so the tester keeps it on only while
    activity code runs.
    """

    @hookimpl(trylast=True)
    def wftest_start_time_patch(self, now: datetime) -> TimePatch:
        """Freeze the clock at ``now`` with freezegun's fakes."""
        from wftest._frozen_time import frozen_time

        frozen = frozen_time(_NEVER_PATCHED, _REAL_TIME_CALLERS)
        if frozen is not None:
            return frozen.activate(now)
        # a freezegun release without the internals wftest._frozen_time relies on: slow but correct
        from freezegun import freeze_time

        freezer = freeze_time(now, real_asyncio=True, ignore=list(_NEVER_PATCHED))
        factory = freezer.start()

        class _Patch:
            def move_to(self, when: datetime) -> None:
                factory.move_to(when)

            def stop(self) -> None:
                freezer.stop()

        return _Patch()


class TimeMachinePlugin:
    """Optional time patch with time-machine (``pip install time-machine``), which fakes the clock in C::

        tester.hooks.register(TimeMachinePlugin())
    """

    @hookimpl
    def wftest_start_time_patch(self, now: datetime) -> TimePatch:
        """Travel with ``time_machine.travel(now, tick=False)`` and move it as the virtual clock moves."""
        try:
            import time_machine
        except ImportError as err:
            raise ImportError("TimeMachinePlugin needs the time-machine package: pip install time-machine") from err
        from datetime import timezone

        traveller = time_machine.travel(now.replace(tzinfo=timezone.utc), tick=False)
        shift = traveller.start()

        class _Patch:
            def move_to(self, when: datetime) -> None:
                shift.move_to(when.replace(tzinfo=timezone.utc))

            def stop(self) -> None:
                traveller.stop()

        return _Patch()


class Hooks:
    """A plugin manager with one typed method per hook, so call sites are typed.

    Calls cost almost nothing while no plugin implements the hook (the engine checks first).
    """

    def __init__(self, *, builtins: bool = True, frozen: bool = False) -> None:
        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(HookSpecs)
        if builtins:
            self._pm.register(FreezegunPlugin(), name="wftest.freezegun")
        self._active: set[str] = set()
        self._refresh()
        self._frozen = frozen

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register a plugin (an object or module with ``@hookimpl`` methods); returns its name."""
        if self._frozen:
            raise RuntimeError("the shared default hooks cannot take plugins; use engine.hooks / tester.hooks")
        registered = self._pm.register(plugin, name=name)
        self._refresh()
        return registered

    def unregister(self, plugin: object) -> None:
        """Remove a plugin."""
        if self._frozen:
            raise RuntimeError("the shared default hooks cannot be changed")
        self._pm.unregister(plugin)
        self._refresh()

    @property
    def manager(self) -> pluggy.PluginManager:
        """The underlying pluggy manager (for advanced use)."""
        return self._pm

    def implemented(self, hook: str) -> bool:
        """True if any registered plugin implements ``hook``."""
        return hook in self._active

    def _refresh(self) -> None:
        self._active = {
            name for name in dir(HookSpecs) if name.startswith("wftest_")
            and getattr(self._pm.hook, name).get_hookimpls()
        }
        # The time patch starts before every activity: with a single plain implementation (the usual
        # case: the built-in one, or one plugin's), call it directly rather than through pluggy.
        impls = self._pm.hook.wftest_start_time_patch.get_hookimpls()
        self._time_patch_impl: tuple[Any, bool] | None = None
        if len(impls) == 1 and not impls[0].hookwrapper and not getattr(impls[0], "wrapper", False):
            self._time_patch_impl = (impls[0].function, "now" in impls[0].argnames)

    # -- typed call sites ---------------------------------------------------------------------------

    def before_orchestration_step(self, instance_id: str, events: list[pb.HistoryEvent]) -> None:
        """Call ``wftest_before_orchestration_step``."""
        if "wftest_before_orchestration_step" in self._active:
            self._pm.hook.wftest_before_orchestration_step(instance_id=instance_id, events=events)

    def after_orchestration_step(
        self, instance_id: str, events: list[pb.HistoryEvent], result: ExecutionResult
    ) -> None:
        """Call ``wftest_after_orchestration_step``."""
        if "wftest_after_orchestration_step" in self._active:
            self._pm.hook.wftest_after_orchestration_step(instance_id=instance_id, events=events, result=result)

    def before_activity(self, task: ActivityTask) -> None:
        """Call ``wftest_before_activity``."""
        if "wftest_before_activity" in self._active:
            self._pm.hook.wftest_before_activity(task=task)

    def after_activity(self, task: ActivityTask, result: pb.HistoryEvent) -> None:
        """Call ``wftest_after_activity``."""
        if "wftest_after_activity" in self._active:
            self._pm.hook.wftest_after_activity(task=task, result=result)

    def run_finished(self, result: RunResult) -> None:
        """Call ``wftest_run_finished``."""
        if "wftest_run_finished" in self._active:
            self._pm.hook.wftest_run_finished(result=result)

    def client_starting(self, event: pb.HistoryEvent) -> None:
        """Call ``wftest_client_starting``."""
        if "wftest_client_starting" in self._active:
            self._pm.hook.wftest_client_starting(event=event)

    def step_applied(
        self,
        instance_id: str,
        events: list[pb.HistoryEvent],
        update: StepUpdate,
        history_length: int,
        load_history: Callable[[], list[pb.HistoryEvent]],
    ) -> None:
        """Call ``wftest_step_applied``."""
        if "wftest_step_applied" in self._active:
            self._pm.hook.wftest_step_applied(
                instance_id=instance_id, events=events, update=update, history_length=history_length,
                load_history=load_history,
            )

    def step_committed(self, instance_id: str, update: StepUpdate) -> None:
        """Call ``wftest_step_committed``."""
        if "wftest_step_committed" in self._active:
            self._pm.hook.wftest_step_committed(instance_id=instance_id, update=update)

    @property
    def observes_activities(self) -> bool:
        """True if a plugin implements ``wftest_before_activity`` or ``wftest_after_activity``."""
        return "wftest_before_activity" in self._active or "wftest_after_activity" in self._active

    @property
    def propagates_context(self) -> bool:
        """True if a plugin implements ``wftest_inject_context`` or ``wftest_extract_context``."""
        return "wftest_inject_context" in self._active or "wftest_extract_context" in self._active

    def inject_context(self, tags: dict[str, str]) -> dict[str, str]:
        """Call ``wftest_inject_context`` on ``tags``; returns ``tags``."""
        if "wftest_inject_context" in self._active:
            self._pm.hook.wftest_inject_context(tags=tags)
            for key, value in tags.items():
                if not isinstance(key, str) or not isinstance(value, str):
                    raise TypeError(
                        f"wftest_inject_context: tags hold strings only, got {key!r}: {value!r} "
                        f"({type(value).__qualname__}); serialize the value first"
                    )
        return tags

    def extract_context(self, tags: Mapping[str, str]) -> AbstractContextManager[object]:
        """Call ``wftest_extract_context``: one context manager that enters every plugin's, in order."""
        if "wftest_extract_context" not in self._active:
            return contextlib.nullcontext()
        # pluggy calls the last registered plugin first; enter them in registration order
        results: list[AbstractContextManager[object] | None] = self._pm.hook.wftest_extract_context(tags=tags)
        managers = [m for m in reversed(results) if m is not None]
        if not managers:
            return contextlib.nullcontext()
        if len(managers) == 1:
            return managers[0]

        @contextlib.contextmanager
        def entered() -> Iterator[None]:
            with contextlib.ExitStack() as stack:
                for manager in managers:
                    stack.enter_context(manager)
                yield

        return entered()

    def start_time_patch(self, now: datetime) -> TimePatch | None:
        """Call ``wftest_start_time_patch``: a running patch of the wall clock at ``now``, or None.

        The caller stops it (``patch.stop()``); :meth:`time_patch` does both around a block.
        """
        impl = self._time_patch_impl
        if impl is not None:
            function, takes_now = impl
            result: TimePatch | None = function(now=now) if takes_now else function()
            return result
        if "wftest_start_time_patch" in self._active:
            patch: TimePatch | None = self._pm.hook.wftest_start_time_patch(now=now)
            return patch
        return None

    @contextlib.contextmanager
    def time_patch(self, now: datetime) -> Iterator[TimePatch | None]:
        """Patch the wall clock for the duration of the block (None if no plugin patches time)."""
        patch = self.start_time_patch(now)
        try:
            yield patch
        finally:
            if patch is not None:
                patch.stop()


_default: Hooks | None = None


def default_hooks() -> Hooks:
    """The shared, read-only manager with only the built-in plugins.

    Building a manager costs about 0.4 ms, so engines and testers use this one until a plugin is
    registered on them (``engine.hooks`` / ``tester.hooks`` then give them their own).
    """
    global _default
    if _default is None:
        _default = Hooks(frozen=True)
    return _default
