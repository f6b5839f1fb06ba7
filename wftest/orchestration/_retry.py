"""Retry policies for activities and sub-orchestrations.

Between attempts the orchestration waits on a durable timer, so a retry survives restarts and costs
nothing while it waits. All times are orchestration time (``ctx.current_utc_datetime``), never the
wall clock, so a virtual clock controls retries completely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from wftest.errors import TaskFailedError


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how long apart, to retry a failed activity or sub-orchestration.

    The delay after failed attempt *k* (from 1) is
    ``first_retry_interval * backoff_coefficient ** (k - 1)``, capped at ``max_retry_interval``.
    Retrying stops when ``max_number_of_attempts`` attempts have failed, when ``handle`` returns False
    for the failure, when the failure is marked non-retriable, or when the orchestration time is past
    the first attempt plus ``retry_timeout``.

    Example: first 2 s, coefficient 2, max 10 s gives delays of 2, 4, 8, 10, 10 seconds::

        policy = RetryPolicy(first_retry_interval=timedelta(seconds=2), max_number_of_attempts=6,
                             backoff_coefficient=2, max_retry_interval=timedelta(seconds=10))
        yield ctx.call_activity(flaky, retry_policy=policy)
    """

    first_retry_interval: timedelta
    max_number_of_attempts: int = 3
    backoff_coefficient: float = 1.0
    max_retry_interval: timedelta | None = None
    retry_timeout: timedelta | None = None
    handle: Callable[[TaskFailedError], bool] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.first_retry_interval, timedelta) or self.first_retry_interval <= timedelta(0):
            raise ValueError(f"first_retry_interval must be a positive timedelta, got {self.first_retry_interval!r}")
        if self.max_number_of_attempts < 1:
            raise ValueError(f"max_number_of_attempts must be >= 1, got {self.max_number_of_attempts}")
        if self.backoff_coefficient < 1:
            raise ValueError(f"backoff_coefficient must be >= 1, got {self.backoff_coefficient}")
        if self.max_retry_interval is not None and self.max_retry_interval <= timedelta(0):
            raise ValueError(f"max_retry_interval must be positive, got {self.max_retry_interval!r}")
        if self.retry_timeout is not None and self.retry_timeout < timedelta(0):
            raise ValueError(f"retry_timeout must be >= 0, got {self.retry_timeout!r}")

    def delay_after(self, attempt: int) -> timedelta:
        """The wait before the retry that follows failed attempt ``attempt`` (counted from 1)."""
        seconds = self.first_retry_interval.total_seconds() * self.backoff_coefficient ** (attempt - 1)
        if self.max_retry_interval is not None:
            seconds = min(seconds, self.max_retry_interval.total_seconds())
        return timedelta(seconds=seconds)

    def next_delay(
        self, attempt: int, error: TaskFailedError, first_attempt_at: datetime, now: datetime
    ) -> timedelta | None:
        """The delay before the next attempt, or None when retrying should stop."""
        if attempt >= self.max_number_of_attempts or error.details.is_non_retriable:
            return None
        if self.retry_timeout is not None and now > first_attempt_at + self.retry_timeout:
            return None
        if self.handle is not None and not self.handle(error):
            return None
        return self.delay_after(attempt)
