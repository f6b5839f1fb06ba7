"""Run Dapr Workflow code (``dapr-ext-workflow``), unmodified, in wftest; read Dapr histories (extra: ``dapr``).

Dapr workflows (``def wf(ctx: DaprWorkflowContext, input)`` using ``call_activity``,
``call_child_workflow``, ``create_timer``, ``wait_for_external_event``, ``continue_as_new``,
``is_patched``, ...) and activities (``def act(ctx: WorkflowActivityContext, input)``) run in the
executor Dapr vendors (``dapr.ext.workflow._durabletask``), driven by wftest's engine, with the tester's
mocks, virtual clock, replay check and schedule fuzzing::

    import dapr.ext.workflow as wf
    import wftest.interop.dapr as dapr
    from wftest import WorkflowTester

    def approve(ctx: wf.WorkflowActivityContext, order: dict) -> bool: ...

    def order_workflow(ctx: wf.DaprWorkflowContext, order: dict):
        approved = yield ctx.call_activity(approve, input=order)
        return "shipped" if approved else "rejected"

    tester = WorkflowTester()
    tester.on_activity(approve).returns(True)
    result = tester.run(dapr.workflow(order_workflow), input={"id": 7})
    assert result.output == "shipped"

Registration: ``tester.add_orchestrator(dapr.workflow(fn))``, ``tester.add_activity(dapr.activity(fn))``,
or, for an app that registers on a ``WorkflowRuntime`` (``@wfr.workflow``, ``@wfr.activity``,
``register_versioned_workflow``), :func:`add_registrations` copies all of it. Activities and child
workflows that workflow code calls by function are registered on first use.

Histories: Dapr's protobuf is a dialect of durabletask's that is not wire-compatible.
:func:`load_history` reads a Dapr history file (JSON or length-delimited binary, in Dapr's schema) into a
wftest :class:`~wftest.history.History` (save it with ``wftest.history.save`` to keep it as a regular
history file); :func:`from_dapr_events` and :func:`to_dapr_events` translate event lists both ways (see
``wftest.interop._dapr_dialect`` for the field mapping).

.. versionadded:: 0.1
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from dapr.ext.workflow._durabletask.internal import protos as _dpb
from google.protobuf import json_format

from wftest import history as _history
from wftest.errors import HistoryFileError
from wftest.interop._dapr_dialect import from_dapr_action as from_dapr_action
from wftest.interop._dapr_dialect import from_dapr_event as from_dapr_event
from wftest.interop._dapr_dialect import from_dapr_events as from_dapr_events
from wftest.interop._dapr_dialect import to_dapr_action as to_dapr_action
from wftest.interop._dapr_dialect import to_dapr_event as to_dapr_event
from wftest.interop._dapr_dialect import to_dapr_events as to_dapr_events
from wftest.interop._dapr_executor import DaprActivity as DaprActivity
from wftest.interop._dapr_executor import DaprExecutor as DaprExecutor
from wftest.interop._dapr_executor import DaprWorkflow as DaprWorkflow
from wftest.orchestration._registry import Registrations, Registry

__all__ = [
    "DaprActivity",
    "DaprExecutor",
    "DaprWorkflow",
    "activity",
    "add_registrations",
    "from_dapr_action",
    "from_dapr_event",
    "from_dapr_events",
    "load_history",
    "loads_history",
    "to_dapr_action",
    "to_dapr_event",
    "to_dapr_events",
    "workflow",
]

#: Dapr's ``HistoryEvent`` message class (from the vendored, isolated schema)
DaprHistoryEvent = _dpb.HistoryEvent


def workflow(fn: Any, *, name: str | None = None) -> DaprWorkflow:
    """A Dapr workflow function, wrapped for wftest (named as Dapr names it: its alternate name or
    ``__name__``). Functions decorated with ``@wfr.workflow`` work too.

    Example::

        tester.add_orchestrator(wftest.interop.dapr.workflow(order_workflow))
    """
    if isinstance(fn, DaprWorkflow):
        return fn
    return DaprWorkflow.from_function(fn, name)


def activity(fn: Any, *, name: str | None = None) -> DaprActivity:
    """A Dapr activity function, wrapped for wftest: it receives a ``WorkflowActivityContext``.

    Needed only for activities called by name (``ctx.call_activity("approve")``); those called by function
    are registered on first use.
    """
    if isinstance(fn, DaprActivity):
        return fn
    return DaprActivity.from_function(fn, name)


def add_registrations(target: Registrations | Registry, runtime: Any) -> list[str]:
    """Register on ``target`` (an ``Engine``, ``WorkflowTester`` or ``Registry``) every workflow (versioned
    ones included) and activity registered on a Dapr ``WorkflowRuntime``, under the same names, as
    Dapr's own wrappers (the runtime is never started: nothing connects). Returns the names.

    Example::

        # app code, unchanged: wfr = WorkflowRuntime(); @wfr.workflow def order(ctx, input): ...
        from myapp.workflows import wfr
        add_registrations(tester, wfr)
        tester.run("order", input={"sku": "A1"})
    """
    registry = _dapr_registry(runtime)
    names = []
    for name, entry in registry.orchestrators.items():
        names.append(target.add_named_orchestrator(name, DaprWorkflow(name, entry, fn=_user_function(entry))))
    for name, versions in registry.versioned_orchestrators.items():
        latest = registry.latest_versioned_orchestrators_version_name.get(name)
        names.append(target.add_named_orchestrator(name, DaprWorkflow(name, versions=versions, latest=latest)))
    for name, entry in registry.activities.items():
        names.append(target.add_named_activity(name, DaprActivity(name, entry, fn=_user_function(entry))))
    return names


def load_history(path: str | Path) -> _history.History:
    """Read a history written in Dapr's dialect and return it in wftest's schema.

    ``*.pb`` files hold length-delimited Dapr ``HistoryEvent`` messages; any other file is JSON: a list
    of events in Dapr's protobuf JSON mapping (``{"workflowStarted": {}, ...}``), or an object with them
    under ``"events"``. Bad files raise ``HistoryFileError`` with the file, event index and field.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise HistoryFileError(f"cannot read the file: {err.strerror or err}", path=path) from None
    return loads_history(data, path=path, binary=path.suffix == ".pb")


def loads_history(data: str | bytes, *, path: Path | None = None, binary: bool = False) -> _history.History:
    """:func:`load_history` for data in memory (``binary``: length-delimited messages; else JSON)."""
    events = _parse_binary(data if isinstance(data, bytes) else data.encode(), path) if binary \
        else _parse_json(data, path)
    converted = from_dapr_events(events)
    history = _history.History.of(converted, path=path)
    _history.validate(history.events, path=path)
    return history


def _parse_json(data: str | bytes, path: Path | None) -> list[Any]:
    try:
        document = json.loads(data)
    except ValueError as err:
        raise HistoryFileError(f"not valid JSON: {err}", path=path) from None
    raw_events = document.get("events") if isinstance(document, dict) else document
    if not isinstance(raw_events, list):
        raise HistoryFileError("expected a list of Dapr history events (or an object with 'events')", path=path,
                               field="events")
    events = []
    for index, raw in enumerate(raw_events):
        try:
            event = json_format.ParseDict(raw, _dpb.HistoryEvent())
        except (json_format.ParseError, TypeError, AttributeError) as err:
            raise HistoryFileError(f"not a Dapr HistoryEvent: {err}", path=path, index=index) from None
        if event.WhichOneof("eventType") is None:
            raise HistoryFileError("the event has no kind", path=path, index=index, field="eventType")
        events.append(event)
    return events


def _parse_binary(data: bytes, path: Path | None) -> list[Any]:
    events: list[Any] = []
    position = 0
    while position < len(data):
        index = len(events)
        size = shift = 0
        while True:
            if position >= len(data) or shift > 63:
                raise HistoryFileError("truncated length prefix", path=path, index=index)
            byte = data[position]
            position += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if position + size > len(data):
            raise HistoryFileError(f"truncated: the event needs {size} bytes, {len(data) - position} remain",
                                   path=path, index=index)
        event = _dpb.HistoryEvent()
        try:
            event.ParseFromString(data[position:position + size])
        except Exception as err:
            raise HistoryFileError(f"not a Dapr HistoryEvent: {err}", path=path, index=index) from None
        if event.WhichOneof("eventType") is None:
            raise HistoryFileError("unknown event kind", path=path, index=index, field="eventType")
        events.append(event)
        position += size
    return events


def _dapr_registry(runtime: Any) -> Any:
    registry = getattr(runtime, "_WorkflowRuntime__worker", None)
    registry = getattr(registry, "_registry", runtime)
    for attribute in ("orchestrators", "versioned_orchestrators", "activities"):
        if not isinstance(getattr(registry, attribute, None), dict):
            raise TypeError(f"expected a Dapr WorkflowRuntime (or its worker's _Registry), got {runtime!r}")
    return registry


def _user_function(wrapper: Any) -> Any:
    """The user's function inside one of Dapr's registration wrappers (a closure over ``fn``), if any."""
    try:
        found = inspect.getclosurevars(wrapper).nonlocals.get("fn")
    except (TypeError, ValueError):
        return None
    return found if callable(found) else None
