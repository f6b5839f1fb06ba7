"""The adapter around the ``durabletask`` package's own executor, and its registration wrappers.

durabletask's protobuf messages are wire-compatible with wftest's (same names and numbers), so events
and actions cross between the two by serializing and parsing. Imported only through
``wftest.interop.durabletask`` (the ``durabletask`` extra).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import durabletask
from durabletask import task as dt_task
from durabletask import worker as _dt_worker
from durabletask.internal import orchestrator_service_pb2 as dtpb
from durabletask.serialization import JsonDataConverter

from wftest.converter import DEFAULT_CONVERTER
from wftest.interop._sdk_executor import SdkExecutor, guard_generator, mark_custom_status, package_dir
from wftest.orchestration._activity import ActivityContext
from wftest.orchestration._foreign import ExecutorOptions
from wftest.orchestration._registry import Registry, function_name
from wftest.protos import orchestrator_service_pb2 as pb

_LOGGER = logging.getLogger("wftest.interop.durabletask")
#: durabletask's worker module; its private executor classes are used untyped
dt_worker: Any = _dt_worker


class _Wrapped:
    """A durabletask function wrapped for wftest's registry, named like the function unless told."""

    def __init__(self, fn: Any, name: str | None = None) -> None:
        self.fn = fn
        self.__name__ = name or function_name(fn)
        self.__wftest_name__ = self.__name__
        self.__wrapped__ = fn
        self.__doc__ = getattr(fn, "__doc__", None)


class DurableTaskOrchestrator(_Wrapped):
    """A durabletask orchestrator (``def fn(ctx: durabletask.task.OrchestrationContext, input)``) for
    wftest's registry: instances of it run in durabletask's own executor.

    Made by :func:`wftest.interop.durabletask.orchestrator`; register it, pass it to ``run()`` or
    ``schedule_new_orchestration()``, or call it as a sub-orchestration from native code.
    """

    def __wftest_executor__(self, registry: Registry, instance_id: str,
                            options: ExecutorOptions) -> DurableTaskExecutor:
        """The executor for an instance of this orchestrator (called by the engine)."""
        return DurableTaskExecutor(registry, instance_id, options)

    def __call__(self, ctx: Any, input: Any = None) -> Any:
        raise TypeError(
            f"{self!r} runs in durabletask's executor, which the engine chooses by the orchestrator's name; "
            "do not call it directly"
        )

    def __repr__(self) -> str:
        return f"wftest.interop.durabletask.orchestrator({getattr(self.fn, '__qualname__', self.fn)!r})"


class DurableTaskActivity(_Wrapped):
    """A durabletask activity (``def fn(ctx: durabletask.task.ActivityContext, input)``) for wftest's
    registry: it runs through durabletask's own activity executor, so it receives a real
    ``durabletask.task.ActivityContext`` and durabletask's input typing and JSON encoding."""

    def __call__(self, ctx: ActivityContext, input: Any = None) -> Any:
        registry = dt_worker._Registry()
        registry.add_named_activity(self.__name__, self.fn)
        executor = dt_worker._ActivityExecutor(registry, _LOGGER, JsonDataConverter())
        encoded = executor.execute(ctx.orchestration_id, self.__name__, ctx.task_id, DEFAULT_CONVERTER.serialize(input))
        return DEFAULT_CONVERTER.deserialize(encoded)

    def __repr__(self) -> str:
        return f"wftest.interop.durabletask.activity({getattr(self.fn, '__qualname__', self.fn)!r})"


def adopt_activity(registry: Registry, activity: Any) -> None:
    """Register a function that durabletask code calls as an activity, on first use (as wftest does).

    A function not registered yet, or registered as itself (a test mocked it by function), becomes a
    :class:`DurableTaskActivity` under durabletask's name for it.
    """
    if isinstance(activity, str) or not callable(activity) or isinstance(activity, DurableTaskActivity):
        return
    name = dt_task.get_name(activity)
    existing = registry.get_activity(name)
    if existing is None or existing is activity:
        registry.add_named_activity(name, DurableTaskActivity(activity, name))


def adopt_orchestrator(registry: Registry, orchestrator: Any) -> None:
    """Register a function that durabletask code starts as a sub-orchestration, if it is not registered."""
    if isinstance(orchestrator, str) or not callable(orchestrator):
        return
    name = dt_task.get_name(orchestrator)
    if registry.get_orchestrator(name) is None:
        registry.add_named_orchestrator(name, DurableTaskOrchestrator(orchestrator, name))


class _RegistryView:
    """durabletask's ``_Registry`` as its executor uses it, answered from wftest's registry."""

    versioning = None

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def get_orchestrator(self, name: str) -> Any:
        fn = self._registry.get_orchestrator(name)
        return fn.fn if isinstance(fn, DurableTaskOrchestrator) else None


_BaseContext: Any = dt_worker._RuntimeOrchestrationContext


class _Context(_BaseContext):  # type: ignore[misc]
    """durabletask's orchestration context, registering the functions it is given on first use."""

    _wftest_registry: Registry

    set_custom_status = mark_custom_status(_BaseContext.set_custom_status)
    run = guard_generator(_BaseContext.run)

    def call_activity(self, activity: Any, **kwargs: Any) -> Any:
        adopt_activity(self._wftest_registry, activity)
        return super().call_activity(activity, **kwargs)

    def call_sub_orchestrator(self, orchestrator: Any, **kwargs: Any) -> Any:
        adopt_orchestrator(self._wftest_registry, orchestrator)
        return super().call_sub_orchestrator(orchestrator, **kwargs)


class DurableTaskExecutor(SdkExecutor):
    """Runs one instance of a durabletask orchestrator in ``durabletask.worker._OrchestrationExecutor``."""

    sdk_name: ClassVar[str] = "durabletask"
    sdk_dirs: ClassVar[tuple[str, ...]] = (package_dir(durabletask),)
    sdk_nondeterminism_error: ClassVar[type[BaseException]] = dt_task.NonDeterminismError

    def new_sdk_state(self) -> tuple[Any, Any]:
        view = _RegistryView(self.registry)
        converter = JsonDataConverter()
        interval = self.options.maximum_timer_interval
        executor = dt_worker._OrchestrationExecutor(view, _LOGGER, converter, maximum_timer_interval=interval)
        executor._orchestration_name = "<unknown>"  # set by its execute(), which the adapter does not call
        ctx = _Context(self.instance_id, view, converter, maximum_timer_interval=interval, logger=_LOGGER)
        ctx._wftest_registry = self.registry
        return executor, ctx

    def to_sdk_event(self, event: pb.HistoryEvent, index: int) -> Any:
        if event.HasField("executionStarted"):
            self._sdk._orchestration_name = event.executionStarted.name  # for its trace spans
        return dtpb.HistoryEvent.FromString(event.SerializeToString())

    def from_sdk_action(self, action: Any) -> pb.OrchestratorAction:
        return pb.OrchestratorAction.FromString(action.SerializeToString())
