"""Retries: a flaky activity retried with exponential backoff, on durable timers.

``RetryPolicy`` retries a failed activity after 5, 10, 20 and 30 seconds (the doubling is capped at
30 s), five attempts in all. Between attempts the orchestration sleeps on a durable timer, so the
waits survive restarts and appear in the history: each failed attempt is followed by a ``TimerCreated``,
then the activity is scheduled again under the same task id. ``handle`` decides which failures are worth
retrying: an unknown currency will not fix itself. When the retries run out, the error reaches the
orchestrator at the ``yield``, which falls back to the last known rate.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

from wftest import ActivityContext, OrchestrationContext, RetryPolicy, Task, TaskFailedError

RATES = {"EUR": 1.08, "GBP": 1.27}
#: how many more calls the (fake) rates service will fail before it recovers
OUTAGE = {"failures_left": 0}

RETRY = RetryPolicy(
    first_retry_interval=timedelta(seconds=5),
    backoff_coefficient=2,
    max_retry_interval=timedelta(seconds=30),
    max_number_of_attempts=5,
    handle=lambda err: not err.details.is_caused_by(ValueError),
)


def fetch_rate(ctx: ActivityContext, currency: str) -> float:
    """The live USD rate of ``currency`` from a rates service that is sometimes down."""
    if currency not in RATES:
        raise ValueError(f"unknown currency {currency!r}")
    if OUTAGE["failures_left"] > 0:
        OUTAGE["failures_left"] -= 1
        raise ConnectionError("rates service unavailable")
    return RATES[currency]


def cached_rate(ctx: ActivityContext, currency: str) -> float:
    """Yesterday's rate, from a local cache."""
    return RATES[currency] - 0.01


def convert_price(ctx: OrchestrationContext, price: dict[str, Any]) -> Generator[Task[Any], Any, dict[str, Any]]:
    """Convert ``price["amount"]`` to USD at the live rate, or at the cached one if the service stays down."""
    try:
        rate = yield ctx.call_activity(fetch_rate, input=price["currency"], retry_policy=RETRY)
        stale = False
    except TaskFailedError as err:
        if err.details.is_caused_by(ValueError):
            raise
        rate = yield ctx.call_activity(cached_rate, input=price["currency"])
        stale = True
    return {"usd": round(price["amount"] * rate, 2), "rate": rate, "stale": stale}
