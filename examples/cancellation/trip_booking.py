"""Cancelling a booking: cooperative cancellation with cleanup in ``ctx.disconnected()``.

A trip booking reserves a room and a seat (in parallel), then a car, and holds them for a day while the
traveller confirms. The traveller may cancel at any moment (``client.cancel_orchestration``). The
orchestrator is not killed, as it would be by a terminate: the wait it is in raises
``OrchestrationCancelledError``, and it releases what it reserved. After a cancel, activities and timers
fail at once, so the releases run inside ``with ctx.disconnected():``, where the orchestration works normally.

The subtle case is a reservation that was *running* when the cancel came. The orchestrator stopped waiting
for it, but the provider still makes it and its result is delivered to its task. The cleanup must wait for
that task (inside ``disconnected()``) and release it too. ``book_trip_leaky`` only releases the reservations
whose results it had already read: a cancel that arrives while one is running leaks it. The fuzz test in
``test_trip_booking_example.py`` finds that moment.

If nobody confirms within a day the hold expires, and the same cleanup runs, also inside ``disconnected()``
so that a cancel arriving in the middle of it cannot stop it half-way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from datetime import timedelta
from typing import Any

from wftest import (
    ActivityContext,
    OrchestrationCancelledError,
    OrchestrationContext,
    RetryPolicy,
    Task,
    TaskFailedError,
    TaskTimeoutError,
    when_all,
)

HOLD = timedelta(days=1)
RELEASE_RETRY = RetryPolicy(first_retry_interval=timedelta(minutes=1), backoff_coefficient=2, max_number_of_attempts=8)


class Provider:
    """A fake reservation system whose activities are safe to deliver more than once.

    A worker may crash after an activity ran but before its result was recorded; the engine then runs the
    same call again. Both methods remember the calls they served (orchestration id + task id, the same on
    every delivery of one call), so a repeated delivery changes nothing. Two *different* calls releasing the
    same reservation are a real double release, and are recorded as such.
    """

    def __init__(self) -> None:
        self.active: dict[str, str] = {}  # reservation id -> what it holds
        self.reserved: list[str] = []  # every reservation made
        self.releases: list[str] = []  # every release call served (a reservation released twice shows twice)
        self._reservation_of_call: dict[str, str] = {}
        self._release_calls: set[str] = set()

    def reserve(self, ctx: ActivityContext, what: str) -> str:
        """Reserve ``what``; returns the reservation id."""
        call = f"{ctx.orchestration_id}:{ctx.task_id}"
        if call not in self._reservation_of_call:
            reservation = f"{what}-{len(self.reserved) + 1}"
            self._reservation_of_call[call] = reservation
            self.reserved.append(reservation)
            self.active[reservation] = what
        return self._reservation_of_call[call]

    def release(self, ctx: ActivityContext, reservation: str) -> None:
        """Release a reservation."""
        call = f"{ctx.orchestration_id}:{ctx.task_id}"
        if call in self._release_calls:
            return
        self._release_calls.add(call)
        self.releases.append(reservation)
        self.active.pop(reservation, None)

    def double_releases(self) -> list[str]:
        """Reservations released by more than one call."""
        return sorted(r for r, n in Counter(self.releases).items() if n > 1)


def _release_all(ctx: OrchestrationContext, reservations: list[Task[Any]]) -> Generator[Task[Any], Any, list[str]]:
    """Release every reservation asked for, newest first; waits for those still running. Run it disconnected."""
    released: list[str] = []
    for task in reversed(reservations):
        try:
            reservation = yield task  # at once if it finished; else the reservation that was running
        except TaskFailedError:
            continue  # it failed: nothing was reserved
        yield ctx.call_activity("release", input=reservation, retry_policy=RELEASE_RETRY)
        released.append(reservation)
    return released


def _release_what_was_read(ctx: OrchestrationContext, reservations: list[Task[Any]]
                           ) -> Generator[Task[Any], Any, list[str]]:
    """BUG: releases only the reservations whose results had arrived; one still running is leaked."""
    released: list[str] = []
    for task in reversed(reservations):
        if task.is_complete and not task.is_failed:
            yield ctx.call_activity("release", input=task.get_result(), retry_policy=RELEASE_RETRY)
            released.append(task.get_result())
    return released


def _book(ctx: OrchestrationContext, trip: dict[str, Any], cleanup: Any) -> Generator[Task[Any], Any, dict[str, Any]]:
    reservations: list[Task[Any]] = []

    def reserve(what: str) -> Task[Any]:
        task = ctx.call_activity("reserve", input=what)
        reservations.append(task)
        return task

    try:
        yield when_all([reserve(trip["room"]), reserve(trip["seat"])])
        yield reserve(trip["car"])
        yield ctx.wait_for_external_event("confirm", timeout=HOLD)
    except OrchestrationCancelledError as err:
        with ctx.disconnected():
            released = yield from cleanup(ctx, reservations)
        return {"status": "cancelled", "reason": err.reason, "released": released}
    except TaskTimeoutError:
        with ctx.disconnected():
            released = yield from cleanup(ctx, reservations)
        return {"status": "expired", "released": released}
    return {"status": "booked", "reservations": [task.get_result() for task in reservations]}


def book_trip(ctx: OrchestrationContext, trip: dict[str, Any]) -> Generator[Task[Any], Any, dict[str, Any]]:
    """Reserve, hold for confirmation; on cancel or expiry release everything, running or not."""
    return (yield from _book(ctx, trip, _release_all))


def book_trip_leaky(ctx: OrchestrationContext, trip: dict[str, Any]) -> Generator[Task[Any], Any, dict[str, Any]]:
    """The same booking with the cleanup that forgets running reservations."""
    return (yield from _book(ctx, trip, _release_what_was_read))
