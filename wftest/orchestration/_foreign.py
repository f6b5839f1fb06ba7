"""Choosing the executor for an orchestrator: wftest's own, or a foreign SDK's (per orchestrator name).

An orchestrator registered in a :class:`Registry` may carry an executor factory in its
``__wftest_executor__`` attribute; the wrappers of ``wftest.interop`` (``durabletask.orchestrator(fn)``,
``dapr.workflow(fn)``) do. :func:`new_executor` looks the orchestrator up by the name its instance was
started with and asks that factory for an executor, or builds wftest's :class:`Executor` for plain
functions. A history may so mix kinds: a native parent with a durabletask child, and the reverse; each
instance runs with the executor of its own orchestrator.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from wftest.converter import DEFAULT_CONVERTER, Converter
from wftest.orchestration._executor import (
    DEFAULT_MAXIMUM_TIMER_INTERVAL,
    Executor,
    Guard,
    OrchestrationExecutor,
)
from wftest.orchestration._registry import Registry
from wftest.protos import orchestrator_service_pb2 as pb

if TYPE_CHECKING:
    from wftest.hooks import Hooks

#: the attribute of a registered orchestrator that names its executor factory
EXECUTOR_ATTRIBUTE = "__wftest_executor__"


@dataclass(frozen=True)
class ExecutorOptions:
    """How the engine (or a replayer) configures the executors it makes."""

    converter: Converter = DEFAULT_CONVERTER
    maximum_timer_interval: timedelta | None = DEFAULT_MAXIMUM_TIMER_INTERVAL
    strict: bool = False
    guard: Guard | None = None
    #: the hooks of context propagation (``wftest_inject_context`` / ``wftest_extract_context``), if any
    propagation: Hooks | None = None


class ExecutorFactory(Protocol):
    """Makes the executor of one instance: ``factory(registry, instance_id, options)``."""

    def __call__(self, registry: Registry, instance_id: str, options: ExecutorOptions) -> OrchestrationExecutor:
        """A fresh executor for ``instance_id``."""
        ...


def executor_factory(orchestrator: Any) -> ExecutorFactory | None:
    """The foreign executor factory an orchestrator carries, or None for a native one."""
    factory = getattr(orchestrator, EXECUTOR_ATTRIBUTE, None)
    return factory if callable(factory) else None


def new_executor(registry: Registry, instance_id: str, name: str | None,
                 options: ExecutorOptions = ExecutorOptions()) -> OrchestrationExecutor:
    """The executor for an instance of orchestrator ``name`` (wftest's own when unknown or native)."""
    fn = registry.get_orchestrator(name) if name else None
    factory = executor_factory(fn) if fn is not None else None
    if factory is not None:
        return factory(registry, instance_id, options)
    return Executor(
        registry, instance_id, converter=options.converter, maximum_timer_interval=options.maximum_timer_interval,
        strict=options.strict, guard=options.guard, propagation=options.propagation,
    )


def orchestrator_name(events: Iterable[pb.HistoryEvent]) -> str | None:
    """The orchestrator name of the first ``ExecutionStarted`` among ``events`` (None if there is none)."""
    for event in events:
        if event.HasField("executionStarted"):
            return event.executionStarted.name
    return None
