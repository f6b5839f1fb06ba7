"""The scheduler seam: the engine's choice points and fault injection, made explicit.

In production the order in which activity results, timers and events reach an orchestration varies,
and workers crash between any two of them. With a scheduler, the engine asks at every choice point:

- ``choose("next", options)``: which runnable work item runs next (an activity, or an orchestration
  step over the events that have arrived), so results arrive in any order and steps batch differently;
- ``choose("deliver", options)``: in which order a step receives the events that arrived together, when
  a timer or an external event is among them (one choice per position; what arrives at the same virtual
  time may reach the orchestration in any order: an approval at the moment of its deadline may lose);
- ``fault(kind, subject)``: whether to inject a fault here — the activity fails with a given error or
  times out, the worker crashes after running an activity but before recording its result (so it runs
  again: at-least-once), a worker crashes in the middle of an orchestration step (the step is abandoned
  and retried from history), or an external event is delivered twice.

Without a scheduler (the default) the engine runs FIFO and fault-free, on a faster path whose results
are byte-identical run to run. ``wftest.strategies.schedules()`` makes hypothesis drive these choices;
``wftest.explore()`` drives them from a seeded random generator, thousands of schedules a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol


@dataclass(frozen=True)
class Fault:
    """Base of the injectable faults. ``kind`` says where it can happen: activity, step or event."""

    kind: ClassVar[str] = ""
    #: short name used in schedule strings (``Schedule.from_string``)
    code: ClassVar[str] = ""

    def describe(self) -> str:
        """One line for timelines and failure reports."""
        return self.code


@dataclass(frozen=True)
class ActivityFails(Fault):
    """The activity fails with ``error`` instead of running."""

    error: BaseException = field(default_factory=lambda: RuntimeError("injected activity failure"))
    kind: ClassVar[str] = "activity"
    code: ClassVar[str] = "fail"

    def describe(self) -> str:
        """``fail(ConnectionError('reset'))``"""
        return f"fail({self.error!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActivityFails) and repr(other.error) == repr(self.error)

    def __hash__(self) -> int:
        return hash(repr(self.error))


@dataclass(frozen=True)
class ActivityTimesOut(Fault):
    """The activity does not answer in time: it fails with a ``TimeoutError``."""

    kind: ClassVar[str] = "activity"
    code: ClassVar[str] = "timeout"


@dataclass(frozen=True)
class CrashAfterActivity(Fault):
    """The worker runs the activity, then crashes before its result is recorded: it runs again later."""

    kind: ClassVar[str] = "activity"
    code: ClassVar[str] = "crash-after"


@dataclass(frozen=True)
class CrashDuringStep(Fault):
    """The worker crashes during an orchestration step: nothing is committed, the step is retried by
    replaying the history (on another worker, so the warm executor is lost)."""

    kind: ClassVar[str] = "step"
    code: ClassVar[str] = "crash-step"


@dataclass(frozen=True)
class DuplicateEvent(Fault):
    """An external event is delivered twice."""

    kind: ClassVar[str] = "event"
    code: ClassVar[str] = "duplicate"


#: Every fault, in the order schedules try them.
ALL_FAULTS: tuple[Fault, ...] = (ActivityFails(), ActivityTimesOut(), CrashAfterActivity(), CrashDuringStep(),
                                 DuplicateEvent())


class Scheduler(Protocol):
    """What the engine asks at its choice points."""

    def choose(self, point: str, options: Sequence[str]) -> int:
        """Index of the option to take now (0 is FIFO order). ``options`` are human-readable labels."""
        ...

    def fault(self, kind: str, subject: str) -> Fault | None:
        """A fault to inject at this point (``kind``: activity, step or event), or None."""
        ...


class FifoScheduler:
    """The default order, written out: always the oldest runnable item, never a fault."""

    def choose(self, point: str, options: Sequence[str]) -> int:
        """Always 0: first come, first served."""
        return 0

    def fault(self, kind: str, subject: str) -> Fault | None:
        """Never a fault."""
        return None
