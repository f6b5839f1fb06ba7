"""Mocks for activities and sub-orchestrations, with call recording and expectations.

``tester.on_activity(charge_card).returns({"ok": True})`` replaces the activity for every call;
matchers narrow a mock to some inputs (``ANY``, a value compared with ``==``, or a predicate); mocks are
tried in declaration order and the first that matches (and has calls left) answers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


class _Any:
    """Matches any input."""

    def __repr__(self) -> str:
        return "ANY"

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0


#: A matcher that accepts any value.
ANY: Any = _Any()


def _is_predicate(matcher: Any) -> bool:
    return (inspect.isfunction(matcher) or inspect.ismethod(matcher) or inspect.isbuiltin(matcher)) and not isinstance(
        matcher, type
    )


def _matches(matcher: Any, value: Any) -> bool:
    if matcher is ANY:
        return True
    if _is_predicate(matcher):
        return bool(matcher(value))
    return bool(matcher == value)


@dataclass(frozen=True)
class Call:
    """One recorded call of an activity or sub-orchestrator."""

    name: str
    input: Any
    at: datetime
    instance_id: str
    task_id: int
    mocked: bool


class Mock:
    """A declared replacement for an activity or a sub-orchestrator. Configure it fluently::

        tester.on_activity(charge_card, {"qty": 2}).returns("receipt").after(timedelta(seconds=5)).once()
    """

    def __init__(self, kind: str, name: str, matchers: tuple[Any, ...]) -> None:
        self.kind = kind
        self.name = name
        self.matchers = matchers
        self._behaviour: Callable[[Any, Any], Any] = lambda ctx, value: None
        self._described = "returns None"
        self.delay: timedelta | None = None
        self.expected_times: int | None = None
        #: the calls this mock answered
        self.recorded_calls: list[Call] = []

    # -- configuration ------------------------------------------------------------------------------

    def returns(self, value: Any) -> Mock:
        """Answer every matching call with ``value``."""
        self._behaviour = lambda ctx, _input: value
        self._described = f"returns {value!r}"
        return self

    def raises(self, error: BaseException | type[BaseException]) -> Mock:
        """Fail every matching call with ``error`` (an exception or exception class)."""

        def fail(ctx: Any, _input: Any) -> Any:
            raise error() if isinstance(error, type) else error

        self._behaviour = fail
        self._described = f"raises {error!r}"
        return self

    def calls(self, fn: Callable[..., Any]) -> Mock:
        """Answer with ``fn(ctx, input)`` (or ``fn(input)`` for a one-argument function)."""
        takes_ctx = len(inspect.signature(fn).parameters) >= 2
        self._behaviour = (lambda ctx, value: fn(ctx, value)) if takes_ctx else (lambda ctx, value: fn(value))
        self._described = f"calls {getattr(fn, '__qualname__', fn)!r}"
        return self

    def after(self, delay: timedelta) -> Mock:
        """Deliver the result ``delay`` of virtual time after the call."""
        if delay < timedelta(0):
            raise ValueError(f"after() needs a delay >= 0, got {delay}")
        self.delay = delay
        return self

    def times(self, n: int) -> Mock:
        """Expect exactly ``n`` calls; further calls do not match this mock."""
        if n < 0:
            raise ValueError(f"times() needs n >= 0, got {n}")
        self.expected_times = n
        return self

    def once(self) -> Mock:
        """Expect exactly one call."""
        return self.times(1)

    # -- use ----------------------------------------------------------------------------------------

    def accepts(self, value: Any) -> bool:
        """Whether this mock answers a call with ``value`` (its matchers match and it has calls left)."""
        if self.expected_times is not None and len(self.recorded_calls) >= self.expected_times:
            return False
        if not self.matchers:
            return True
        if len(self.matchers) == 1:
            return _matches(self.matchers[0], value)
        if not isinstance(value, (list, tuple)) or len(value) != len(self.matchers):
            return False
        return all(_matches(m, v) for m, v in zip(self.matchers, value, strict=True))

    def answer(self, ctx: Any, value: Any) -> Any:
        """Produce the mocked result (or raise the mocked error)."""
        return self._behaviour(ctx, value)

    def describe(self) -> str:
        """``on_activity('charge', {'qty': 2}).returns('ok').once()``"""
        matchers = "".join(f", {m!r}" for m in self.matchers)
        text = f"on_{self.kind}({self.name!r}{matchers}) {self._described}"
        if self.delay:
            text += f" after {self.delay}"
        if self.expected_times is not None:
            text += f", expected {self.expected_times} call(s)"
        return text + f", called {len(self.recorded_calls)} time(s)"

    def unmet_expectation(self) -> str | None:
        """Why this mock's expectation is not met, or None."""
        if self.expected_times is not None and len(self.recorded_calls) != self.expected_times:
            return f"{self.describe()}: expected {self.expected_times} call(s), got {len(self.recorded_calls)}"
        if self.expected_times is None and not self.recorded_calls:
            return f"{self.describe()}: declared but never called"
        return None
