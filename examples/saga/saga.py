"""Saga: book a hotel, a flight and a car; if one booking fails, cancel the earlier ones in reverse order.

There is no transaction across three providers. Instead each step has a compensation that undoes it,
and the orchestrator remembers which steps succeeded. When a step fails, it runs the compensations of
the completed steps, newest first, then reports the trip as cancelled. Compensations must not be lost,
so they retry on durable timers until the provider answers.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

from wftest import ActivityContext, OrchestrationContext, RetryPolicy, Task, TaskFailedError

CAR_CITIES = {"Lisbon", "Porto"}

UNDO_RETRY = RetryPolicy(first_retry_interval=timedelta(minutes=1), backoff_coefficient=2, max_number_of_attempts=10)


class NotAvailable(Exception):
    """The provider has nothing left for this trip."""


def book_hotel(ctx: ActivityContext, trip: dict[str, Any]) -> str:
    return f"hotel-{trip['id']}"


def book_flight(ctx: ActivityContext, trip: dict[str, Any]) -> str:
    return f"flight-{trip['id']}"


def book_car(ctx: ActivityContext, trip: dict[str, Any]) -> str:
    if trip["city"] not in CAR_CITIES:
        raise NotAvailable(f"no cars in {trip['city']}")
    return f"car-{trip['id']}"


def cancel_hotel(ctx: ActivityContext, booking: str) -> None:
    """Release the room."""


def cancel_flight(ctx: ActivityContext, booking: str) -> None:
    """Refund the ticket."""


def cancel_car(ctx: ActivityContext, booking: str) -> None:
    """Release the car."""


#: each step and the compensation that undoes it, in booking order
STEPS = [(book_hotel, cancel_hotel), (book_flight, cancel_flight), (book_car, cancel_car)]


def book_trip(ctx: OrchestrationContext, trip: dict[str, Any]) -> Generator[Task[Any], Any, dict[str, Any]]:
    """Book every step; on the first failure, undo the booked steps in reverse order."""
    booked: list[tuple[Any, str]] = []
    try:
        for book, cancel in STEPS:
            booking = yield ctx.call_activity(book, input=trip)
            booked.append((cancel, booking))
    except TaskFailedError as err:
        for cancel, booking in reversed(booked):
            yield ctx.call_activity(cancel, input=booking, retry_policy=UNDO_RETRY)
        return {"status": "cancelled", "reason": err.details.message, "undone": [b for _, b in reversed(booked)]}
    return {"status": "booked", "bookings": [booking for _, booking in booked]}
