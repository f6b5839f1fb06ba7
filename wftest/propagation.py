"""Context propagation: carry request-scoped values (tenant, user, request id) through workflows.

A propagator is a plugin (see :mod:`wftest.hooks`) implementing two hooks:

* ``wftest_inject_context(tags)`` writes the current values into the ``tags`` of the event being created: by
  the client, into the new instance's ``ExecutionStarted``; by orchestrator code, into each ``TaskScheduled``
  and ``SubOrchestrationInstanceCreated`` (and the child's ``ExecutionStarted``);
* ``wftest_extract_context(tags)`` makes the values of an event's tags current while code runs: around
  orchestrator code (the execution's ``ExecutionStarted.tags``) and around each activity call (its
  ``TaskScheduled.tags``).

The values travel in the history, so orchestrator code sees the value recorded when the instance was
created on every replay, whatever the current context of the worker that replays it. The flow, for a
value set by the caller of the client::

    client ─inject─> ExecutionStarted.tags ─extract─> orchestrator code
                                                      ├─inject─> TaskScheduled.tags ─extract─> activity
                                                      └─inject─> the child's ExecutionStarted.tags ─extract─> child

:class:`ContextVarPropagator` does this for one ``contextvars.ContextVar``::

    tenant: ContextVar[str] = ContextVar("tenant")
    engine.hooks.register(ContextVarPropagator(tenant))           # or tester.hooks.register(...)

    tenant.set("acme")
    iid = engine.client.schedule_new_orchestration(order_workflow)  # tenant.get() is "acme" everywhere in it
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar, cast

from wftest.hooks import hookimpl

__all__ = ["ContextVarPropagator"]

T = TypeVar("T")

_UNSET: Any = object()


class ContextVarPropagator(Generic[T]):
    """A plugin that carries the value of a ``ContextVar`` from the client into orchestrations, activities and
    sub-orchestrations, under the tag ``key`` (default: the variable's name).

    Args:
        var: the context variable.
        key: the tag that holds the value (default ``var.name``).
        serialize: turns a value into the tag's string (default: the value must be a ``str``); e.g.
            ``json.dumps`` for dicts.
        deserialize: turns the tag's string back into a value (default: the string itself); e.g. ``json.loads``.
        default: the value code sees when the tags hold no value (the instance was created without one).
            Without it: the variable's own default, or None. Code never sees the value of whatever context
            happens to run it (a worker thread, a test), so a replay reads what the history says.

    A value of None (or no value) is not injected. Example, end to end::

        from contextvars import ContextVar
        from wftest import Engine
        from wftest.propagation import ContextVarPropagator

        tenant: ContextVar[str] = ContextVar("tenant")

        def bill(ctx, amount):
            return f"{tenant.get()} pays {amount}"     # ctx.tags["tenant"] holds it too

        def order(ctx, amount):
            assert tenant.get() == ctx.tags["tenant"]   # orchestrator code sees the recorded value
            return (yield ctx.call_activity(bill, input=amount))

        engine = Engine()
        engine.hooks.register(ContextVarPropagator(tenant))
        tenant.set("acme")
        iid = engine.client.schedule_new_orchestration(order, input=12)
        assert engine.client.wait_for_orchestration_completion(iid).output == "acme pays 12"

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        var: contextvars.ContextVar[T],
        key: str | None = None,
        *,
        serialize: Callable[[T], str] | None = None,
        deserialize: Callable[[str], T] | None = None,
        default: T | None = _UNSET,
    ) -> None:
        if not isinstance(var, contextvars.ContextVar):
            raise TypeError(f"ContextVarPropagator takes a contextvars.ContextVar, got {type(var).__qualname__}")
        self.var = var
        self.key = key if key is not None else var.name
        if not self.key:
            raise ValueError("ContextVarPropagator needs a non-empty tag key")
        self._serialize = serialize
        self._deserialize = deserialize
        if default is _UNSET:
            default = contextvars.Context().run(var.get, None)  # the variable's own default, or None
        self.default = default

    def __repr__(self) -> str:
        return f"ContextVarPropagator({self.var.name!r}, key={self.key!r})"

    @hookimpl
    def wftest_inject_context(self, tags: dict[str, str]) -> None:
        """Write the variable's current value (serialized) into ``tags[key]``; nothing if it has none."""
        value = self.var.get(None)
        if value is None:
            return
        if self._serialize is not None:
            text = self._serialize(value)
        elif isinstance(value, str):
            text = value
        else:
            raise TypeError(
                f"ContextVarPropagator({self.var.name!r}): the value {value!r} is a {type(value).__qualname__}, "
                "not a str; pass serialize= and deserialize= (e.g. json.dumps and json.loads)"
            )
        tags[self.key] = text

    @hookimpl
    def wftest_extract_context(self, tags: Mapping[str, str]) -> contextlib.AbstractContextManager[None]:
        """Set the variable to the value in ``tags[key]`` (or to ``default``) while the code runs."""
        text = tags.get(self.key)
        if text is None:
            value = self.default
        elif self._deserialize is not None:
            value = self._deserialize(text)
        else:
            value = cast(T, text)
        return _set(self.var, value)


@contextlib.contextmanager
def _set(var: contextvars.ContextVar[Any], value: Any) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)
