"""Hypothesis strategies: let hypothesis choose the order of events and inject faults, then shrink.

::

    from hypothesis import given
    from wftest.strategies import schedules
    from wftest import CrashAfterActivity

    @given(schedule=schedules(faults=[CrashAfterActivity()]))
    def test_card_is_charged_once(workflow_tester_factory, schedule):
        tester = workflow_tester_factory()
        result = tester.run(checkout, input=order, schedule=schedule)
        assert charges(tester) == 1

A schedule draws its decisions lazily, at each choice point of the engine (which runnable work item
goes next; whether a fault strikes here), so it needs no knowledge of the workflow, and hypothesis
shrinks the sequence of decisions: a failure is reported with the smallest schedule that shows it,
printed as a timeline of decisions and as ``Schedule.from_string('...')`` to replay it exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from wftest.engine._scheduler import ALL_FAULTS, Fault

__all__ = ["Decision", "Schedule", "ScheduledEvent", "external_events", "schedules"]


@dataclass(frozen=True)
class Decision:
    """One decision taken at a choice point."""

    point: str  # "next", "activity", "step", "event" or "delay"
    subject: str  # what was decided about (the options, or the work item)
    value: str  # the token: "c2", "fa-", "fa:crash-after", "d30"
    detail: str  # human-readable outcome


class Schedule:
    """A sequence of decisions for the engine's choice points (a ``Scheduler``).

    Built by :func:`schedules` (hypothesis draws each decision), or from a string to replay a schedule
    exactly: ``Schedule.from_string("c1;fa:crash-after;fa-")``. Past the end of its script a schedule
    takes the default (FIFO, no fault). ``timeline()`` lists the decisions taken in the last run.
    """

    def __init__(self, script: Sequence[str] = (), *, faults: Sequence[Fault] = ALL_FAULTS) -> None:
        self._script = list(script)
        self._faults = {f.describe(): f for f in faults}
        self._faults.update({f.code: f for f in faults})
        self._fault_kinds = frozenset(f.kind for f in faults)
        self.decisions: list[Decision] = []
        self._position = 0

    # -- Scheduler ----------------------------------------------------------------------------------
    #
    # Tokens: "c<i>" a choice; "f<k>-" no fault / "f<k>:<fault>" a fault at a point of kind k (a: activity,
    # s: step, e: event); "d<seconds>" an event delay. Choices are recorded always, fault tokens only at
    # points where a fault of that kind was possible, so a script replays position by position; a token
    # that does not fit the point is left for a later point (the code changed since it was printed).

    def choose(self, point: str, options: Sequence[str]) -> int:
        """The option to run now."""
        index = min(max(self._draw_choice(len(options)), 0), len(options) - 1)
        detail = f"ran {options[index]}" + (f" ahead of {', '.join(options[:index])}" if index else "")
        self.decisions.append(Decision(point, " | ".join(options), f"c{index}", detail))
        return index

    def fault(self, kind: str, subject: str) -> Fault | None:
        """The fault to inject at this point, if any."""
        if kind not in self._fault_kinds:
            return None
        fault = self._draw_fault(kind)
        token = f"f{kind[0]}" + (f":{fault.describe()}" if fault is not None else "-")
        detail = f"{fault.describe()} at {kind} {subject}" if fault is not None else f"no fault at {kind} {subject}"
        self.decisions.append(Decision(kind, subject, token, detail))
        return fault

    def event_delay(self, label: str, limit: timedelta) -> timedelta:
        """Extra delay for a scheduled event (``schedules(event_delays=...)``)."""
        seconds = max(0, self._draw_delay(int(limit.total_seconds())))
        self.decisions.append(Decision("delay", label, f"d{seconds}", f"{label} delayed by {seconds} s"))
        return timedelta(seconds=seconds)

    # -- sources of decisions (overridden by the hypothesis schedule) -------------------------------

    def _take(self, prefix: str) -> str | None:
        if self._position < len(self._script) and self._script[self._position].startswith(prefix):
            self._position += 1
            return self._script[self._position - 1][len(prefix):]
        return None

    def _draw_choice(self, count: int) -> int:
        token = self._take("c")
        return int(token) if token else 0

    def _draw_fault(self, kind: str) -> Fault | None:
        token = self._take(f"f{kind[0]}")
        if token is None or token == "-":
            return None
        name = token.removeprefix(":")
        fault = self._faults.get(name)
        if fault is None and name.startswith("fail("):
            from wftest.engine._scheduler import ActivityFails

            fault = ActivityFails(RuntimeError(name))
        return fault if fault is not None and fault.kind == kind else None

    def _draw_delay(self, limit: int) -> int:
        token = self._take("d")
        return min(int(token), limit) if token else 0

    # -- presentation -------------------------------------------------------------------------------

    @classmethod
    def from_string(cls, text: str, *, faults: Sequence[Fault] = ALL_FAULTS) -> Schedule:
        """Replay the decisions printed by a failing example (``c``: choice, ``f``: fault, ``d``: delay)."""
        return cls([t.strip() for t in text.split(";") if t.strip()], faults=faults)

    def to_string(self) -> str:
        """The decisions of the last run, in the form ``from_string`` reads."""
        return ";".join(d.value for d in self.decisions)

    def timeline(self) -> str:
        """The decisions of the last run, one per line (defaults that changed nothing are left out)."""
        lines = [f"{n:3d}. {d.detail}" for n, d in enumerate(self.decisions, 1)
                 if d.value != "c0" and not d.value.endswith("-") and d.value != "d0"]
        return "\n".join(lines) if lines else "(the default order, no faults)"

    def reset(self) -> None:
        """Forget the decisions of the last run (a new run starts from the beginning of the script)."""
        self.decisions = []
        self._position = 0

    @property
    def delays_events(self) -> bool:
        """Whether events scheduled with ``tester.at()`` get a delay decision."""
        return any(token.startswith("d") for token in self._script)

    def __repr__(self) -> str:
        if not self.decisions and not self._script:
            # hypothesis shows arguments as generated, before the run draws anything
            return "Schedule(<drawn during the run: see the 'schedule:' note>)"
        return f"Schedule.from_string({self.to_string()!r})"


class _DrawnSchedule(Schedule):
    """A schedule whose decisions hypothesis draws, lazily, at each choice point."""

    def __init__(self, draw: Any, faults: Sequence[Fault], max_faults: int, event_delays: timedelta | None) -> None:
        super().__init__(faults=faults)
        self._draw = draw
        self._draw_index = _index_drawer(draw)
        self._fault_list = list(faults)
        self._faults_left = max_faults
        self._max_faults = max_faults
        self._event_delays = event_delays

    def reset(self) -> None:
        """Hypothesis draws afresh for every example; within one example, runs continue the draws."""
        self.decisions = []
        self._faults_left = self._max_faults

    def _draw_choice(self, count: int) -> int:
        return self._draw_index(count)

    def _draw_fault(self, kind: str) -> Fault | None:
        applicable = [f for f in self._fault_list if f.kind == kind]
        if not applicable:
            return None
        # Always draw, even with no faults left, and ignore the draw then: skipping it would make a schedule
        # with more faults *shorter*, and hypothesis shrinks towards shorter (it would keep extra faults).
        # Index 0 is "no fault", so shrinking removes faults.
        index = self._draw_index(len(applicable) + 1)
        if index == 0 or self._faults_left <= 0:
            return None
        self._faults_left -= 1
        return applicable[index - 1]

    def _draw_delay(self, limit: int) -> int:
        if self._event_delays is None or limit <= 0:
            return 0
        return int(self._draw(st.integers(0, limit)))

    @property
    def delays_events(self) -> bool:
        """Whether events scheduled with ``tester.at()`` get a delay decision."""
        return self._event_delays is not None

    def event_delay(self, label: str, limit: timedelta) -> timedelta:
        """Extra delay for a scheduled event, at most ``event_delays``."""
        if self._event_delays is None:
            return timedelta(0)
        return super().event_delay(label, min(limit, self._event_delays))


def _index_drawer(draw: Any) -> Callable[[int], int]:
    """A function drawing an index in ``range(count)`` for ``count`` >= 1, as ``st.integers(0, count - 1)`` does.

    Choice points come by the dozen in every example, and ``draw(strategy)`` costs several times the draw
    itself (validation, spans, ...). With the underlying ``ConjectureData`` at hand (``draw`` is its bound
    method), the integer is drawn directly: the same choice, recorded and shrunk the same way (towards 0).
    """
    draw_integer = getattr(getattr(draw, "__self__", None), "draw_integer", None)
    if callable(draw_integer):
        return lambda count: int(draw_integer(0, count - 1))
    return lambda count: int(draw(_choices(count)))


@functools.lru_cache(maxsize=256)
def _choices(count: int) -> st.SearchStrategy[int]:
    # built once per size: constructing a strategy costs more than drawing from it
    return st.integers(0, count - 1)


def schedules(
    *,
    faults: Sequence[Fault] = (),
    max_faults: int = 2,
    event_delays: timedelta | None = None,
) -> st.SearchStrategy[Schedule]:
    """Schedules for ``tester.run(..., schedule=...)``: orders of work, injected faults, event delays.

    Args:
        faults: the faults that may strike (``ActivityFails(err)``, ``ActivityTimesOut()``,
            ``CrashAfterActivity()``, ``CrashDuringStep()``, ``DuplicateEvent()``); none by default, so only
            the order varies.
        max_faults: at most this many faults per example.
        event_delays: events scheduled with ``tester.at()`` may arrive up to this much later.
    """
    if max_faults < 0:
        raise ValueError(f"max_faults must be >= 0, got {max_faults}")
    return _drawn_schedules(list(faults), max_faults, event_delays)


@st.composite
def _drawn_schedules(draw: Any, faults: list[Fault], max_faults: int, event_delays: timedelta | None) -> Schedule:
    # The schedule keeps ``draw`` and draws each decision when the engine reaches a choice point, while
    # the test runs: hypothesis records (and shrinks) the draws like any other.
    return _DrawnSchedule(draw, faults, max_faults, event_delays)


@dataclass(frozen=True)
class ScheduledEvent:
    """An external event to raise at a virtual time (from :func:`external_events`)."""

    name: str
    data: Any
    at: timedelta

    def __repr__(self) -> str:
        return f"ScheduledEvent({self.name!r}, {self.data!r}, at={self.at})"


def external_events(
    name: str,
    values: st.SearchStrategy[Any] = st.none(),
    *,
    at: st.SearchStrategy[timedelta] | None = None,
    min_size: int = 1,
    max_size: int = 3,
) -> st.SearchStrategy[list[ScheduledEvent]]:
    """Lists of events called ``name`` with payloads from ``values``, arriving at times from ``at``.

    Raise them with ``tester.raise_events(events)`` before ``run()``. Times are measured from the start of
    the run (default: within a day).
    """
    times = at if at is not None else st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=1))
    event = st.builds(ScheduledEvent, name=st.just(name), data=values, at=times)
    return st.lists(event, min_size=min_size, max_size=max_size)
