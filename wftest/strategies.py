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

from wftest._schedules import Decision, DrawnSchedule, Schedule, ScheduleWarning, checked_faults
from wftest.engine._scheduler import Fault

__all__ = ["Decision", "Schedule", "ScheduleWarning", "ScheduledEvent", "external_events", "schedules"]


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
    return _drawn_schedules(checked_faults(faults, "schedules()"), max_faults, event_delays)


@st.composite
def _drawn_schedules(draw: Any, faults: list[Fault], max_faults: int, event_delays: timedelta | None) -> Schedule:
    # The schedule keeps ``draw`` and draws each decision when the engine reaches a choice point, while
    # the test runs: hypothesis records (and shrinks) the draws like any other.
    return DrawnSchedule(_index_drawer(draw), faults, max_faults, event_delays)


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
