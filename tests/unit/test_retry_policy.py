"""RetryPolicy: validation and the delay between attempts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from wftest import FailureDetails, RetryPolicy, TaskFailedError

SECOND = timedelta(seconds=1)
T0 = datetime(2024, 1, 1)


def error(*, non_retriable: bool = False, error_type: str = "builtins.ValueError") -> TaskFailedError:
    return TaskFailedError("boom", FailureDetails(message="boom", error_type=error_type,
                                                  is_non_retriable=non_retriable))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"first_retry_interval": timedelta(0)}, "first_retry_interval must be a positive timedelta"),
        ({"first_retry_interval": -SECOND}, "first_retry_interval must be a positive timedelta"),
        ({"first_retry_interval": 2}, "first_retry_interval must be a positive timedelta"),
        ({"first_retry_interval": SECOND, "max_number_of_attempts": 0}, "max_number_of_attempts must be >= 1"),
        ({"first_retry_interval": SECOND, "backoff_coefficient": 0.5}, "backoff_coefficient must be >= 1"),
        ({"first_retry_interval": SECOND, "max_retry_interval": timedelta(0)}, "max_retry_interval must be positive"),
        ({"first_retry_interval": SECOND, "retry_timeout": -SECOND}, "retry_timeout must be >= 0"),
    ],
)
def test_invalid_settings_are_rejected_with_a_message_naming_the_field(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**options)


def test_defaults_are_three_attempts_without_backoff() -> None:
    policy = RetryPolicy(first_retry_interval=SECOND)

    assert (policy.max_number_of_attempts, policy.backoff_coefficient) == (3, 1.0)
    assert [policy.delay_after(k) for k in (1, 2)] == [SECOND, SECOND]


def test_delays_grow_by_the_coefficient_and_stop_at_the_maximum() -> None:
    policy = RetryPolicy(first_retry_interval=2 * SECOND, max_number_of_attempts=6, backoff_coefficient=2,
                         max_retry_interval=10 * SECOND)

    assert [policy.delay_after(k).total_seconds() for k in range(1, 6)] == [2, 4, 8, 10, 10]


def test_next_delay_follows_delay_after_while_attempts_remain() -> None:
    policy = RetryPolicy(first_retry_interval=2 * SECOND, max_number_of_attempts=3, backoff_coefficient=2)

    assert policy.next_delay(1, error(), T0, T0) == 2 * SECOND
    assert policy.next_delay(2, error(), T0, T0) == 4 * SECOND


def test_next_delay_stops_after_the_last_attempt() -> None:
    policy = RetryPolicy(first_retry_interval=SECOND, max_number_of_attempts=3)

    assert policy.next_delay(3, error(), T0, T0) is None


def test_next_delay_stops_at_a_non_retriable_failure() -> None:
    policy = RetryPolicy(first_retry_interval=SECOND, max_number_of_attempts=3)

    assert policy.next_delay(1, error(non_retriable=True), T0, T0) is None


def test_next_delay_stops_once_the_retry_timeout_has_passed() -> None:
    policy = RetryPolicy(first_retry_interval=SECOND, max_number_of_attempts=10, retry_timeout=30 * SECOND)

    assert policy.next_delay(1, error(), T0, T0 + 30 * SECOND) == SECOND
    assert policy.next_delay(1, error(), T0, T0 + 31 * SECOND) is None


def test_next_delay_stops_when_handle_declines_the_failure() -> None:
    policy = RetryPolicy(first_retry_interval=SECOND, handle=lambda err: err.details.is_caused_by("KeyError"))

    assert policy.next_delay(1, error(), T0, T0) is None
    assert policy.next_delay(1, error(error_type="builtins.KeyError"), T0, T0) == SECOND
