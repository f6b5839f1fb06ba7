"""A trip-booking saga, fuzzed: the bug shows only when a worker crashes at the wrong moment.

Book a hotel and a flight, then charge the card; if a step fails, undo the earlier ones in reverse
order. Activities run *at least once*: a worker that crashes after an activity ran, but before its
result was recorded, makes the engine run it again. ``release_hotel`` here is not idempotent, so a crash
right after it released the room releases it twice (the room of another guest). ``release_hotel_safely``
remembers the releases it made under a key that is the same on every delivery of the same call
(the orchestration id plus the task id), which makes the retry harmless.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from wftest import ActivityContext, OrchestrationContext, Task, TaskFailedError


class Hotel:
    """A fake hotel system that counts what happens to each booking."""

    def __init__(self) -> None:
        self.booked: list[str] = []
        self.released: list[str] = []
        self._release_keys: set[str] = set()

    def book_hotel(self, ctx: ActivityContext, trip: dict[str, Any]) -> str:
        """Reserve a room; returns the booking id."""
        booking = f"room-{trip['id']}"
        self.booked.append(booking)
        return booking

    def release_hotel(self, ctx: ActivityContext, booking: str) -> None:
        """BUG: not idempotent. Delivered twice, it releases twice."""
        self.released.append(booking)

    def release_hotel_safely(self, ctx: ActivityContext, booking: str) -> None:
        """Idempotent: the same call (same orchestration and task id) releases once, however often it runs."""
        key = f"{ctx.orchestration_id}:{ctx.task_id}"
        if key not in self._release_keys:
            self._release_keys.add(key)
            self.released.append(booking)


def book_flight(ctx: ActivityContext, trip: dict[str, Any]) -> str:
    """The airline is full for this trip."""
    raise RuntimeError(f"no seats to {trip['to']}")


def charge_card(ctx: ActivityContext, trip: dict[str, Any]) -> str:
    """Charge the traveller."""
    return f"charged {trip['price']}"


def _book_trip(ctx: OrchestrationContext, trip: dict[str, Any], release: str) -> Generator[Task[Any], Any, Any]:
    compensations: list[tuple[str, Any]] = []
    try:
        room = yield ctx.call_activity("book_hotel", input=trip)
        compensations.append((release, room))
        yield ctx.call_activity(book_flight, input=trip)
        receipt = yield ctx.call_activity(charge_card, input=trip)
        return {"status": "booked", "receipt": receipt}
    except TaskFailedError as err:
        for activity, value in reversed(compensations):
            yield ctx.call_activity(activity, input=value)
        return {"status": "cancelled", "reason": err.details.message}


def book_trip(ctx: OrchestrationContext, trip: dict[str, Any]) -> Generator[Task[Any], Any, Any]:
    """The saga with the non-idempotent compensation."""
    return (yield from _book_trip(ctx, trip, "release_hotel"))


def book_trip_fixed(ctx: OrchestrationContext, trip: dict[str, Any]) -> Generator[Task[Any], Any, Any]:
    """The same saga with the idempotent compensation."""
    return (yield from _book_trip(ctx, trip, "release_hotel_safely"))
