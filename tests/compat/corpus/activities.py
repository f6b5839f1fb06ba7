"""Activities shared by both corpus files: plain, deterministic functions ``(ctx, input)``.

The driver calls them with a context that has ``orchestration_id``, ``task_id`` and ``attempt`` (how
many times this instance has called this activity with this input, from 1), so flaky activities fail
a set number of times whichever executor runs the orchestration.
"""

from __future__ import annotations

from typing import Any


def greet(ctx: Any, name: str) -> str:
    return f"Hello, {name}!"


def square(ctx: Any, n: int) -> int:
    return n * n


def total_of(ctx: Any, numbers: list[int]) -> int:
    return sum(numbers)


def add_one(ctx: Any, n: int) -> int:
    return n + 1


def flaky(ctx: Any, spec: dict[str, Any]) -> Any:
    """Fails ``spec["fails"]`` times (per instance and input), then returns ``spec["value"]``."""
    if ctx.attempt <= spec["fails"]:
        raise ConnectionError(f"attempt {ctx.attempt} of {spec['value']!r} failed")
    return spec["value"]


def flaky_no_input(ctx: Any, _: None) -> str:
    """Takes no input; fails twice, then succeeds."""
    if ctx.attempt <= 2:
        raise TimeoutError(f"attempt {ctx.attempt} timed out")
    return f"succeeded on attempt {ctx.attempt}"


def always_fails(ctx: Any, message: str) -> None:
    raise ValueError(message)


class PermanentError(Exception):
    """wftest records ``is_non_retriable`` in the failure details (``isNonRetriable``)."""

    is_non_retriable = True


def permanent_failure(ctx: Any, message: str) -> None:
    raise PermanentError(message)


ACTIVITIES = [greet, square, total_of, add_one, flaky, flaky_no_input, always_fails, permanent_failure]
