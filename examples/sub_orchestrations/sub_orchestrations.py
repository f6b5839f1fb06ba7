"""Sub-orchestrations: a parent starts one child orchestration per order and collects the outcomes.

A child is a full orchestration with its own history and instance id; without an explicit
``instance_id`` it is named after its parent and the call's sequence number (``"batch-7:0001"``, the
rule of durabletask). The parent starts every child before waiting, so the children run in parallel, then
waits for each in turn: a child that fails raises ``TaskFailedError`` at its own ``yield``. An order
that is out of stock is recorded as failed and the parent carries on with the others; any other failure
fails the parent (``err.details`` keeps the whole chain of causes, activity to child to parent).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from wftest import ActivityContext, OrchestrationContext, Task, TaskFailedError

STOCK = {"pen": 10, "book": 2}


class OutOfStock(Exception):
    """Not enough of an item left."""


def reserve_stock(ctx: ActivityContext, order: dict[str, Any]) -> str:
    """Reserve the order's items; returns a reservation id."""
    if STOCK.get(order["sku"], 0) < order["qty"]:
        raise OutOfStock(f"only {STOCK.get(order['sku'], 0)} {order['sku']} left, {order['qty']} wanted")
    return f"res-{order['id']}"


def print_label(ctx: ActivityContext, order: dict[str, Any]) -> str:
    """Print the shipping label; returns the tracking number."""
    return f"track-{order['id']}"


def ship_order(ctx: OrchestrationContext, order: dict[str, Any]) -> Generator[Task[Any], Any, dict[str, Any]]:
    """The child: reserve, then label one order."""
    reservation = yield ctx.call_activity(reserve_stock, input=order)
    tracking = yield ctx.call_activity(print_label, input=order)
    return {"order": order["id"], "reservation": reservation, "tracking": tracking}


def ship_batch(ctx: OrchestrationContext, orders: list[dict[str, Any]]) -> Generator[Task[Any], Any, Any]:
    """The parent: one child per order, all started at once; orders out of stock are reported, not fatal."""
    children = [ctx.call_sub_orchestrator(ship_order, input=order) for order in orders]
    outcomes = []
    for order, child in zip(orders, children, strict=True):
        try:
            outcomes.append((yield child))
        except TaskFailedError as err:
            if not err.details.is_caused_by(OutOfStock):
                raise
            outcomes.append({"order": order["id"], "failed": err.details.message})
    return outcomes
