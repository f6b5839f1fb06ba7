"""The registry: orchestrators and activities by name.

Functions referenced directly (``ctx.call_activity(charge_card)``) are registered under their
``__name__`` on first use, so tests need no registration. Names given as strings resolve only through
explicit registration.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import weakref
from collections.abc import Callable
from typing import Any

from wftest.errors import NotRegisteredError

Orchestrator = Callable[..., Any]
Activity = Callable[..., Any]


def function_name(fn: Callable[..., Any]) -> str:
    """The name a function is registered under by default (its ``__name__``)."""
    name = getattr(fn, "__name__", None)
    if not name or name == "<lambda>":
        raise ValueError(
            f"cannot take a name from {fn!r}: register it with an explicit name "
            "(add_named_activity / add_named_orchestrator)"
        )
    return str(name)


def _unwrapped(fn: Callable[..., Any]) -> Callable[..., Any]:
    """What ``fn`` wraps (``__wrapped__``, as functools.wraps and wftest.interop's wrappers set it)."""
    try:
        unwrapped: Callable[..., Any] = inspect.unwrap(fn)
    except ValueError:  # a cycle of __wrapped__
        return fn
    return unwrapped


def _same_function(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    # Closures re-created by the same code (a test that defines its activity inline) are the same
    # function for registration purposes; so are a wrapper and the function it wraps (a durabletask
    # activity registered through wftest.interop, and the plain function a test mocks).
    if a is b:
        return True
    a, b = _unwrapped(a), _unwrapped(b)
    if a is b:
        return True
    code_a, code_b = getattr(a, "__code__", None), getattr(b, "__code__", None)
    return code_a is not None and code_a is code_b


class _Kind:
    __slots__ = ("by_fn", "by_name", "label", "takes_input")

    def __init__(self, label: str) -> None:
        self.label = label
        self.by_name: dict[str, Callable[..., Any]] = {}
        self.by_fn: dict[Callable[..., Any], str] = {}
        self.takes_input: dict[str, bool] = {}


class Registry:
    """Orchestrators and activities by name; shared by an engine, its workers and testers.

    Example::

        registry = Registry()
        registry.add_orchestrator(order_workflow)
        registry.add_named_activity("charge", charge_card)
        engine = Engine(registry=registry)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._orchestrators = _Kind("orchestrator")
        self._activities = _Kind("activity")

    # -- registration ------------------------------------------------------------------------------

    def add_orchestrator(self, fn: Orchestrator) -> str:
        """Register an orchestrator under its ``__name__``; returns the name."""
        return self._add(self._orchestrators, function_name(fn), fn)

    def add_named_orchestrator(self, name: str, fn: Orchestrator) -> str:
        """Register an orchestrator under ``name``; returns the name."""
        return self._add(self._orchestrators, name, fn)

    def add_activity(self, fn: Activity) -> str:
        """Register an activity under its ``__name__``; returns the name."""
        return self._add(self._activities, function_name(fn), fn)

    def add_named_activity(self, name: str, fn: Activity) -> str:
        """Register an activity under ``name``; returns the name."""
        return self._add(self._activities, name, fn)

    # -- lookup -------------------------------------------------------------------------------------

    def get_orchestrator(self, name: str) -> Orchestrator | None:
        """The orchestrator registered under ``name``, or None."""
        return self._orchestrators.by_name.get(name)

    def get_activity(self, name: str) -> Activity | None:
        """The activity registered under ``name``, or None."""
        return self._activities.by_name.get(name)

    def orchestrator(self, name: str) -> Orchestrator:
        """The orchestrator registered under ``name``; ``NotRegisteredError`` if none."""
        fn = self._orchestrators.by_name.get(name)
        if fn is None:
            raise NotRegisteredError("orchestrator", name, self._orchestrators.by_name)
        return fn

    def activity(self, name: str) -> Activity:
        """The activity registered under ``name``; ``NotRegisteredError`` if none."""
        fn = self._activities.by_name.get(name)
        if fn is None:
            raise NotRegisteredError("activity", name, self._activities.by_name)
        return fn

    @property
    def orchestrator_names(self) -> list[str]:
        """Registered orchestrator names, sorted."""
        return sorted(self._orchestrators.by_name)

    @property
    def activity_names(self) -> list[str]:
        """Registered activity names, sorted."""
        return sorted(self._activities.by_name)

    def orchestrator_name(self, ref: str | Orchestrator) -> str:
        """Resolve an orchestrator reference (a name, or a function registered on first use)."""
        if isinstance(ref, str):
            return ref
        return self._name_of(self._orchestrators, ref)

    def activity_name(self, ref: str | Activity) -> str:
        """Resolve an activity reference (a name, or a function registered on first use)."""
        if isinstance(ref, str):
            return ref
        return self._name_of(self._activities, ref)

    def orchestrator_takes_input(self, name: str) -> bool:
        """Whether the orchestrator accepts ``(ctx, input)`` rather than just ``(ctx)``."""
        return self._orchestrators.takes_input.get(name, True)

    def activity_takes_input(self, name: str) -> bool:
        """Whether the activity accepts ``(ctx, input)`` rather than just ``(ctx)``."""
        return self._activities.takes_input.get(name, True)

    # -- internals ----------------------------------------------------------------------------------

    def _name_of(self, kind: _Kind, fn: Callable[..., Any]) -> str:
        try:
            return kind.by_fn[fn]  # the common case, on every ctx.call_activity(fn): one dict lookup
        except (KeyError, TypeError):
            pass
        unwrapped = _unwrapped(fn)
        if unwrapped is not fn:
            try:
                return kind.by_fn[unwrapped]
            except (KeyError, TypeError):
                pass
        name = getattr(fn, "__wftest_name__", None) or function_name(fn)
        existing = kind.by_name.get(name)
        if existing is not None and _same_function(existing, fn):
            return name
        return self._add(kind, name, fn)

    def _add(self, kind: _Kind, name: str, fn: Callable[..., Any]) -> str:
        if not callable(fn):
            raise TypeError(f"{kind.label} {name!r} must be callable, got {fn!r}")
        if not name:
            raise ValueError(f"{kind.label} name must not be empty")
        with self._lock:
            existing = kind.by_name.get(name)
            if existing is not None and not _same_function(existing, fn):
                raise ValueError(
                    f"another {kind.label} is already registered as {name!r} ({_where(existing)}); "
                    f"register {_where(fn)} under a different name"
                )
            kind.by_name[name] = fn
            for key in (fn, _unwrapped(fn)):
                try:
                    kind.by_fn[key] = name
                except TypeError:  # unhashable callable objects are looked up by name only
                    pass
            kind.takes_input[name] = _takes_input(fn)
        return name


def _where(fn: Callable[..., Any]) -> str:
    code = getattr(fn, "__code__", None)
    qualname = getattr(fn, "__qualname__", repr(fn))
    if code is None:
        return qualname
    return f"{qualname} at {code.co_filename}:{code.co_firstlineno}"


def _takes_input(fn: Callable[..., Any]) -> bool:
    # Every WorkflowTester run registers its functions in a fresh registry; inspect.signature is slow
    try:
        return _TAKES_INPUT[fn]
    except (KeyError, TypeError):  # not seen yet, or not weakly referenceable / hashable
        pass
    takes = _inspect_takes_input(fn)
    with contextlib.suppress(TypeError):
        _TAKES_INPUT[fn] = takes
    return takes


#: function -> takes an input; a cache of what inspect.signature says (entries go with their functions)
_TAKES_INPUT: weakref.WeakKeyDictionary[Callable[..., Any], bool] = weakref.WeakKeyDictionary()


def _inspect_takes_input(fn: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


class Registrations:
    """The registration methods shared by ``Engine`` and ``WorkflowTester`` (they delegate to ``registry``)."""

    registry: Registry

    def add_orchestrator(self, fn: Orchestrator) -> str:
        """Register an orchestrator under its ``__name__``; returns the name."""
        return self.registry.add_orchestrator(fn)

    def add_named_orchestrator(self, name: str, fn: Orchestrator) -> str:
        """Register an orchestrator under ``name``; returns the name."""
        return self.registry.add_named_orchestrator(name, fn)

    def add_activity(self, fn: Activity) -> str:
        """Register an activity under its ``__name__`` (bound methods work: state lives on the object)."""
        return self.registry.add_activity(fn)

    def add_named_activity(self, name: str, fn: Activity) -> str:
        """Register an activity under ``name``; returns the name."""
        return self.registry.add_named_activity(name, fn)
