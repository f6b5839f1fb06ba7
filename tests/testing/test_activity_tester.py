"""ActivityTester: activities called directly with a test context, virtual time and JSON round trips."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from wftest import ActivityContext, ActivityTester


@dataclass
class Order:
    sku: str
    qty: int


def describe(ctx: ActivityContext, order: dict[str, Any]) -> dict[str, Any]:
    return {"who": f"{ctx.orchestration_id}#{ctx.task_id}", "order": order, "at": dt.datetime.now().isoformat()}


async def async_double(ctx: ActivityContext, n: int) -> int:
    return n * 2


def no_input(ctx: ActivityContext) -> str:
    return ctx.name


def test_activity_sees_its_context_and_the_given_time() -> None:
    tester = ActivityTester(instance_id="order-7", now=dt.datetime(2030, 1, 2, 3, 4, 5))
    out = tester.run(describe, Order("pen", 2), task_id=4)
    assert out == {"who": "order-7#4", "order": {"sku": "pen", "qty": 2}, "at": "2030-01-02T03:04:05"}


def test_async_activity_runs() -> None:
    assert ActivityTester().run(async_double, 21) == 42


def test_activity_without_input_parameter() -> None:
    assert ActivityTester().run(no_input) == "no_input"


def test_task_ids_count_up_by_default() -> None:
    tester = ActivityTester()
    assert [tester.run(describe, {})["who"] for _ in range(2)] == ["test-instance#1", "test-instance#2"]


def test_non_json_output_is_rejected_as_in_a_real_run() -> None:
    with pytest.raises(TypeError, match="cannot encode"):
        ActivityTester().run(lambda ctx, _: object(), None, name="bad")
