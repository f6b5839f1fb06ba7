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
engines never share plugins unless given the same manager). This module imports nothing from wftest at
run time, so every layer may call hooks. Built-in behaviour, such as freezing
activity time with freezegun, is itself registered as an internal plugin that yours can override.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import pluggy

if TYPE_CHECKING:
    from wftest.orchestration import ExecutionResult
    from wftest.protos import orchestrator_service_pb2 as pb
    from wftest.runtime import ActivityTask
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

    @_hookspec(firstresult=True)
    def wftest_start_time_patch(self, now: datetime) -> TimePatch | None:
        """Start patching the wall clock at ``now`` for activity code; the first non-None result wins.

        The built-in implementation uses freezegun; :class:`TimeMachinePlugin` uses time-machine.
        """


_NEVER_FROZEN = ["hypothesis", "_pytest", "pytest", "pluggy", "wftest", "coverage"]


class FreezegunPlugin:
    """Built-in: activities see virtual time through freezegun (the default time patch)."""

    @hookimpl(trylast=True)
    def wftest_start_time_patch(self, now: datetime) -> TimePatch:
        """Enter ``freeze_time`` once (it scans loaded modules: milliseconds), then move it (microseconds)."""
        from freezegun import freeze_time

        # Tooling is never time-patched: freezegun would swap its clock functions too, and a GC callback
        # of hypothesis firing while freezegun stops reads a half-restored clock.
        freezer = freeze_time(now, real_asyncio=True, ignore=_NEVER_FROZEN)
        frozen = freezer.start()

        class _Patch:
            def move_to(self, when: datetime) -> None:
                frozen.move_to(when)

            def stop(self) -> None:
                freezer.stop()

        return _Patch()


class TimeMachinePlugin:
    """Optional faster time patch with time-machine (``pip install time-machine``)::

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

    @contextlib.contextmanager
    def time_patch(self, now: datetime) -> Iterator[TimePatch | None]:
        """Patch the wall clock for the duration of the block (None if no plugin patches time)."""
        patch: TimePatch | None = None
        if "wftest_start_time_patch" in self._active:
            patch = self._pm.hook.wftest_start_time_patch(now=now)
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
