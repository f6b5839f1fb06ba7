"""Run orchestrators written for durabletask-python, unmodified, in wftest (extra: ``durabletask``).

Wrap a durabletask orchestrator with :func:`orchestrator` and its instances run in the ``durabletask``
package's own executor, driven by wftest's engine: the ``WorkflowTester``'s mocks, virtual clock, replay
check and schedule fuzzing work as for native orchestrators. Activities it calls by function are
registered on first use and receive a real ``durabletask.task.ActivityContext``::

    from datetime import timedelta

    import durabletask.task as task
    import wftest.interop.durabletask as dt
    from wftest import WorkflowTester

    def greet(ctx: task.ActivityContext, name: str) -> str:
        return f"Hello, {name}!"

    def hello(ctx: task.OrchestrationContext, name: str):
        greeting = yield ctx.call_activity(greet, input=name)
        yield ctx.create_timer(timedelta(days=1))
        return greeting

    tester = WorkflowTester()
    tester.on_activity(greet).returns("Hi!")            # mocks work as for native activities
    result = tester.run(dt.orchestrator(hello), input="Ada")
    assert result.output == "Hi!"

Registration (the engine picks the executor by the orchestrator name of each instance, so native and
durabletask orchestrators mix freely, as parents and sub-orchestrations of each other):

* ``tester.add_orchestrator(dt.orchestrator(fn))`` (``Engine`` and ``Registry`` alike; the wrapper also
  goes anywhere an orchestrator function does: ``run()``, ``schedule_new_orchestration()``,
  ``ctx.call_sub_orchestrator()`` in native code);
* ``tester.add_activity(dt.activity(fn))`` for an activity called by name;
* :func:`add_registrations` copies everything registered on a durabletask ``TaskHubGrpcWorker``.

Sub-orchestrators that durabletask code starts by function are registered on first use as durabletask
orchestrators (unless that name is registered already, e.g. as a native orchestrator).

.. versionadded:: 0.1
"""

from __future__ import annotations

from typing import Any

from wftest.interop._durabletask_executor import DurableTaskActivity as DurableTaskActivity
from wftest.interop._durabletask_executor import DurableTaskExecutor as DurableTaskExecutor
from wftest.interop._durabletask_executor import DurableTaskOrchestrator as DurableTaskOrchestrator
from wftest.orchestration._registry import Registrations, Registry

__all__ = [
    "DurableTaskActivity",
    "DurableTaskExecutor",
    "DurableTaskOrchestrator",
    "activity",
    "add_registrations",
    "orchestrator",
]


def orchestrator(fn: Any, *, name: str | None = None) -> DurableTaskOrchestrator:
    """A durabletask orchestrator function, wrapped for wftest (registered under ``name`` or its ``__name__``).

    Example::

        tester.add_orchestrator(wftest.interop.durabletask.orchestrator(order_workflow))
        result = tester.run("order_workflow", input={"sku": "A1"})
    """
    if isinstance(fn, DurableTaskOrchestrator):
        return fn if name is None or name == fn.__name__ else DurableTaskOrchestrator(fn.fn, name)
    return DurableTaskOrchestrator(fn, name)


def activity(fn: Any, *, name: str | None = None) -> DurableTaskActivity:
    """A durabletask activity function, wrapped for wftest: it receives a ``durabletask.task.ActivityContext``.

    Needed only for activities that durabletask code calls by name (``ctx.call_activity("charge")``);
    those it calls by function are registered on first use.
    """
    if isinstance(fn, DurableTaskActivity):
        return fn if name is None or name == fn.__name__ else DurableTaskActivity(fn.fn, name)
    return DurableTaskActivity(fn, name)


def add_registrations(target: Registrations | Registry, worker: Any) -> list[str]:
    """Register on ``target`` (an ``Engine``, ``WorkflowTester`` or ``Registry``) every orchestrator and
    activity registered on a durabletask ``TaskHubGrpcWorker`` (never started: nothing connects), under
    the same names. Returns the names, orchestrators first.

    Example::

        # app code, unchanged: worker = TaskHubGrpcWorker(); worker.add_orchestrator(order); ...
        from myapp.worker import worker
        add_registrations(tester, worker)
        tester.run("order", input={"sku": "A1"})
    """
    registry = getattr(worker, "_registry", worker)
    orchestrators = getattr(registry, "orchestrators", None)
    activities = getattr(registry, "activities", None)
    if not isinstance(orchestrators, dict) or not isinstance(activities, dict):
        raise TypeError(f"expected a durabletask TaskHubGrpcWorker (or its _Registry), got {worker!r}")
    names = []
    for name, fn in orchestrators.items():
        names.append(target.add_named_orchestrator(name, orchestrator(fn, name=name)))
    for name, fn in activities.items():
        names.append(target.add_named_activity(name, activity(fn, name=name)))
    return names
