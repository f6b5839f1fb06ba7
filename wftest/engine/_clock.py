"""Clocks: the only source of time for the engine.

``VirtualClock`` is the test clock (modelled on trio's ``MockClock``): time starts at a fixed instant,
moves only when told to, never backwards, and the engine makes it jump to the next due timer whenever
nothing else is runnable (autojump), so a 30-day timer completes in microseconds. ``SystemClock`` is
the wall clock, for real runs. Times are naive UTC ``datetime`` values, like orchestration time.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

#: Where a VirtualClock starts unless told otherwise: fixed, so runs are reproducible.
DEFAULT_START_TIME = datetime(2024, 1, 1, 0, 0, 0)


@runtime_checkable
class Clock(Protocol):
    """What the engine asks of a clock."""

    @property
    def is_virtual(self) -> bool:
        """True if time moves only when the engine moves it."""
        ...

    def now(self) -> datetime:
        """The current time, naive UTC."""
        ...


def _naive_utc(when: datetime) -> datetime:
    if when.utcoffset() is not None:
        return when.astimezone(timezone.utc).replace(tzinfo=None)
    return when


class VirtualClock:
    """A clock that only moves when told to. Thread-safe.

    Example::

        clock = VirtualClock()                      # 2024-01-01T00:00:00
        clock.advance(timedelta(hours=1))
        assert clock.now() == datetime(2024, 1, 1, 1)
    """

    is_virtual = True

    def __init__(self, start: datetime = DEFAULT_START_TIME) -> None:
        self._now = _naive_utc(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current virtual time."""
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` (>= 0) and return the new time."""
        if delta < timedelta(0):
            raise ValueError(f"time can't go backwards: advance() got {delta}")
        with self._lock:
            self._now += delta
            return self._now

    def jump_to(self, when: datetime) -> datetime:
        """Move forward to ``when``; a time in the past is an error (time can't go backwards)."""
        when = _naive_utc(when)
        with self._lock:
            if when < self._now:
                raise ValueError(
                    f"time can't go backwards: jump_to({when.isoformat()}) is before {self._now.isoformat()}"
                )
            self._now = when
            return self._now

    def __repr__(self) -> str:
        return f"VirtualClock({self._now.isoformat()})"


class SystemClock:
    """The wall clock (UTC)."""

    is_virtual = False

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(timezone.utc).replace(tzinfo=None)

    @staticmethod
    def monotonic() -> float:
        """Seconds from a monotonic clock, for timeouts."""
        return time.monotonic()

    def __repr__(self) -> str:
        return "SystemClock()"
