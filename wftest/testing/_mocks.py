"""Mocks for activities and sub-orchestrations, with call recording and expectations.

``tester.on_activity(charge_card).returns({"ok": True})`` replaces the activity for every call;
matchers narrow a mock to some inputs (``ANY``, a value compared with ``==``, or a predicate); mocks are
tried in declaration order and the first that matches (and has calls left) answers.

How often a mock must be called, as ``WorkflowTester.assert_expectations()`` checks it:

- no count (the default): at least once;
- ``.times(n)`` / ``.once()``: exactly ``n`` times, and the mock stops matching after ``n`` calls;
- ``.any_times()``: any number of times, zero included (never reported).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

#: how many calls of a mock an expectation report lists before "... and N more"
_CALLS_SHOWN = 5


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


def _matcher_repr(matcher: Any) -> str:
    if _is_predicate(matcher):
        return f"<{getattr(matcher, '__qualname__', matcher)}>"
    return repr(matcher)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass(frozen=True)
class Call:
    """One recorded call of an activity or sub-orchestrator.

    ``at`` is the virtual time of the call, ``instance_id`` the calling instance, ``task_id`` the
    caller's task id, and ``mocked`` whether a mock answered it (False: the real function ran).
    """

    name: str
    input: Any
    at: datetime
    instance_id: str
    task_id: int
    mocked: bool

    def describe(self) -> str:
        """One line: ``2024-01-01 00:05:00  input={'sku': 'pen'}  (instance 'test-instance', task #2)``."""
        where = f"instance {self.instance_id!r}, task #{self.task_id}"
        return f"{self.at:%Y-%m-%d %H:%M:%S}  input={self.input!r}  ({where})"


class Mock:
    """A declared replacement for an activity or a sub-orchestrator. Configure it fluently::

        tester.on_activity(charge_card, {"qty": 2}).returns("receipt").after(timedelta(seconds=5)).once()
    """

    def __init__(self, kind: str, name: str, matchers: tuple[Any, ...]) -> None:
        self.kind = kind
        self.name = name
        self.matchers = matchers
        self._behaviour: Callable[[Any, Any], Any] = lambda ctx, value: None
        self._described = ".returns(None)"
        self.delay: timedelta | None = None
        #: the exact number of calls expected (``times(n)``), or None
        self.expected_times: int | None = None
        #: True after ``any_times()``: zero calls are fine too
        self.optional = False
        #: the calls this mock answered
        self.recorded_calls: list[Call] = []

    # -- configuration ------------------------------------------------------------------------------

    def returns(self, value: Any) -> Mock:
        """Answer every matching call with ``value``."""
        self._behaviour = lambda ctx, _input: value
        self._described = f".returns({value!r})"
        return self

    def raises(self, error: BaseException | type[BaseException]) -> Mock:
        """Fail every matching call with ``error`` (an exception or exception class)."""

        def fail(ctx: Any, _input: Any) -> Any:
            raise error() if isinstance(error, type) else error

        self._behaviour = fail
        self._described = f".raises({error.__name__ if isinstance(error, type) else repr(error)})"
        return self

    def calls(self, fn: Callable[..., Any]) -> Mock:
        """Answer with ``fn(ctx, input)`` (or ``fn(input)`` for a one-argument function)."""
        takes_ctx = len(inspect.signature(fn).parameters) >= 2
        self._behaviour = (lambda ctx, value: fn(ctx, value)) if takes_ctx else (lambda ctx, value: fn(value))
        self._described = f".calls({getattr(fn, '__qualname__', fn)})"
        return self

    def after(self, delay: timedelta) -> Mock:
        """Deliver the result ``delay`` of virtual time after the call."""
        if delay < timedelta(0):
            raise ValueError(f"after() needs a delay >= 0, got {delay}")
        self.delay = delay
        return self

    def times(self, n: int) -> Mock:
        """Expect exactly ``n`` calls; further calls do not match this mock (the next mock may answer them)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"times() needs a whole number >= 0, got {n!r} (for any number of calls: any_times())")
        self.expected_times = n
        self.optional = False
        return self

    def once(self) -> Mock:
        """Expect exactly one call."""
        return self.times(1)

    def any_times(self) -> Mock:
        """Allow any number of calls, zero included: ``assert_expectations()`` never reports this mock.

        For answers a test may or may not need, such as common mocks declared in a ``conftest.py``::

            tester.on_activity(send_email).returns(None).any_times()
        """
        self.expected_times = None
        self.optional = True
        return self

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
        """The declaration, as code: ``on_activity('charge', {'qty': 2}).returns('ok').once()``."""
        matchers = "".join(f", {_matcher_repr(m)}" for m in self.matchers)
        text = f"on_{self.kind}({self.name!r}{matchers}){self._described}"
        if self.delay:
            text += f".after({self.delay})"
        if self.optional:
            text += ".any_times()"
        elif self.expected_times == 1:
            text += ".once()"
        elif self.expected_times is not None:
            text += f".times({self.expected_times})"
        return text

    def describe_calls(self) -> str:
        """The declaration and its call count: ``on_activity('charge').returns('ok').once() (called 0 times)``."""
        count = len(self.recorded_calls)
        used_up = self.expected_times is not None and count >= self.expected_times
        return f"{self.describe()} (called {_plural(count, 'time')}{', used up' if used_up else ''})"

    def expected(self) -> str:
        """The expected number of calls, in words: ``exactly 2 calls``, ``at least 1 call``, ``any number``."""
        if self.optional:
            return "any number of calls"
        if self.expected_times is None:
            return "at least 1 call"
        if self.expected_times == 0:
            return "no calls"
        return f"exactly {_plural(self.expected_times, 'call')}"

    def unmet_expectation(self) -> str | None:
        """Why this mock's expectation is not met (the declaration, expected and actual counts, the calls), or None."""
        count = len(self.recorded_calls)
        if self.optional:
            return None
        if self.expected_times is None and count > 0:
            return None
        if self.expected_times is not None and count == self.expected_times:
            return None
        lines = [f"{self.describe()}: expected {self.expected()}, got {count}"]
        lines += [f"    {call.describe()}" for call in self.recorded_calls[:_CALLS_SHOWN]]
        if count > _CALLS_SHOWN:
            lines.append(f"    ... and {count - _CALLS_SHOWN} more")
        return "\n".join(lines)


def expectation_report(mocks: Sequence[Mock]) -> str | None:
    """The text of ``assert_expectations()``'s error for ``mocks``, or None if every expectation is met."""
    problems = [problem for mock in mocks if (problem := mock.unmet_expectation())]
    if not problems:
        return None
    return f"{_plural(len(problems), 'mock')} not called as declared:" + "".join(f"\n  {p}" for p in problems)
