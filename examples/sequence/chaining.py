"""Function chaining: run activities one after the other, each taking the previous one's output.

The orchestrator is an ordinary generator: every ``yield ctx.call_activity(...)`` schedules one
activity and resumes with its result. If the process dies between two steps, the engine replays the
function from its history: completed activities are not run again, their recorded results are sent
back in, and the code continues from where it stopped.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from wftest import ActivityContext, OrchestrationContext, Task

PRICES = {"pen": 3, "book": 12}


def validate_order(ctx: ActivityContext, order: dict[str, Any]) -> dict[str, Any]:
    """Check the order and price it."""
    if order["qty"] <= 0:
        raise ValueError(f"quantity must be positive, got {order['qty']}")
    return {**order, "amount": PRICES[order["sku"]] * order["qty"]}


def charge_card(ctx: ActivityContext, order: dict[str, Any]) -> str:
    """Charge the customer; returns a receipt id (a real one would call a payment gateway)."""
    return f"receipt-{ctx.orchestration_id}-{order['amount']}"


def ship(ctx: ActivityContext, order: dict[str, Any]) -> str:
    """Hand the parcel to the courier; returns the tracking number."""
    return f"track-{order['sku']}-{order['qty']}"


def process_order(ctx: OrchestrationContext, order: dict[str, Any]) -> Generator[Task[Any], Any, dict[str, Any]]:
    """validate -> charge -> ship, each step using the result of the one before."""
    priced = yield ctx.call_activity(validate_order, input=order)
    receipt = yield ctx.call_activity(charge_card, input=priced)
    tracking = yield ctx.call_activity(ship, input={**priced, "receipt": receipt})
    return {"receipt": receipt, "tracking": tracking, "amount": priced["amount"]}
