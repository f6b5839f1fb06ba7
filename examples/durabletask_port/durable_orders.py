"""An order workflow written for durabletask-python, as an existing application has it.

Nothing here knows about wftest: the module imports ``durabletask``, its activities take a
``durabletask.task.ActivityContext``, and ``register`` is what the application's ``main`` calls on its
``TaskHubGrpcWorker`` before ``worker.start()``. The tests run this code unmodified in wftest's
``WorkflowTester`` (see ``test_durable_orders_example.py`` and docs/interop.md).

The workflow reserves stock, charges the card (retrying a flaky gateway), ships through a
sub-orchestration, and waits up to three days for a large order's approval.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import durabletask.task as task

GATEWAY_RETRY = task.RetryPolicy(
    first_retry_interval=timedelta(seconds=5), max_number_of_attempts=3, backoff_coefficient=2,
)
LARGE_ORDER = 1000


def reserve_stock(ctx: task.ActivityContext, order: dict[str, Any]) -> str:
    """Reserve the items; returns a reservation id (a real one would call the inventory service)."""
    return f"res-{ctx.orchestration_id}-{order['sku']}"


def charge_card(ctx: task.ActivityContext, order: dict[str, Any]) -> str:
    """Charge the customer through the payment gateway; returns the receipt id."""
    raise ConnectionError("the payment gateway is not reachable from here")


def book_courier(ctx: task.ActivityContext, parcel: dict[str, Any]) -> str:
    """Book a courier for the parcel; returns the tracking number."""
    return f"track-{parcel['sku']}-{ctx.task_id}"


def shipping(ctx: task.OrchestrationContext, parcel: dict[str, Any]) -> Any:
    """A sub-orchestration: book the courier, then report where the parcel goes."""
    tracking = yield ctx.call_activity(book_courier, input=parcel)
    return {"tracking": tracking, "to": parcel["address"]}


def process_order(ctx: task.OrchestrationContext, order: dict[str, Any]) -> Any:
    """reserve -> (approval for large orders) -> charge, with retries -> ship."""
    reservation = yield ctx.call_activity(reserve_stock, input=order)
    if order["amount"] >= LARGE_ORDER:
        ctx.set_custom_status("waiting for approval")
        approval = ctx.wait_for_external_event("approval")
        deadline = ctx.create_timer(timedelta(days=3))
        winner = yield task.when_any([approval, deadline])
        if winner is not approval or not approval.get_result():
            return {"status": "cancelled", "reservation": reservation}
    ctx.set_custom_status("charging")
    receipt = yield ctx.call_activity(charge_card, input=order, retry_policy=GATEWAY_RETRY)
    shipment = yield ctx.call_sub_orchestrator(shipping, input={"sku": order["sku"], "address": order["address"]})
    return {"status": "shipped", "receipt": receipt, **shipment}


def register(worker: Any) -> None:
    """Register the orchestrators and activities on a ``durabletask.worker.TaskHubGrpcWorker``."""
    worker.add_orchestrator(process_order)
    worker.add_orchestrator(shipping)
    for activity in (reserve_stock, charge_card, book_courier):
        worker.add_activity(activity)
