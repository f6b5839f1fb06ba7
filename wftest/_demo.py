"""The demo behind ``python -m wftest demo``: an order workflow on the in-memory engine, virtual clock.

It shows fan-out/fan-in, a retried activity, a sub-orchestration, an external event with a deadline and
a 30-day durable timer, and finishes in milliseconds of wall time.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

from wftest import ActivityContext, Engine, OrchestrationContext, RetryPolicy, Task, when_all, when_any

_charge_attempts: dict[str, int] = {}


def reserve_item(ctx: ActivityContext, item: dict[str, Any]) -> dict[str, Any]:
    """Reserve stock for one line of the order."""
    return {"sku": item["sku"], "reserved": item["qty"]}


def charge_card(ctx: ActivityContext, order: dict[str, Any]) -> str:
    """Charge the card; the payment gateway times out on the first try."""
    attempt = _charge_attempts[order["id"]] = _charge_attempts.get(order["id"], 0) + 1
    if attempt == 1:
        raise TimeoutError("payment gateway timed out")
    return f"receipt-{order['id']}"


def ship(ctx: OrchestrationContext, order: dict[str, Any]) -> Generator[Task[Any], Any, str]:
    """Sub-orchestration: book a courier and wait two days for the pickup."""
    tracking: str = yield ctx.call_activity(book_courier, input=order["id"])
    yield ctx.create_timer(timedelta(days=2))
    return tracking


def book_courier(ctx: ActivityContext, order_id: str) -> str:
    """Book a courier for the order."""
    return f"TRACK-{order_id}"


def send_survey(ctx: ActivityContext, order_id: str) -> None:
    """Ask the customer how it went."""


def order_workflow(ctx: OrchestrationContext, order: dict[str, Any]) -> Generator[Task[Any], Any, dict[str, Any]]:
    """Reserve every item, charge (with retries), wait for approval, ship, and follow up in 30 days."""
    ctx.set_custom_status("reserving")
    reservations = yield when_all([ctx.call_activity(reserve_item, input=item) for item in order["items"]])
    retry = RetryPolicy(first_retry_interval=timedelta(seconds=30), max_number_of_attempts=3)
    receipt = yield ctx.call_activity(charge_card, input=order, retry_policy=retry)
    ctx.set_custom_status("awaiting approval")
    approval = ctx.wait_for_external_event("approval")
    deadline = ctx.create_timer(timedelta(days=1))
    winner = yield when_any([approval, deadline])
    if winner is deadline:
        return {"status": "cancelled: no approval within a day"}
    tracking = yield ctx.call_sub_orchestrator(ship, input=order)
    ctx.set_custom_status("shipped")
    yield ctx.create_timer(timedelta(days=30))
    yield ctx.call_activity(send_survey, input=order["id"])
    return {"status": "done", "receipt": receipt, "tracking": tracking, "reserved": len(reservations)}


def run_demo() -> int:
    """Run the demo and print its timeline; returns a process exit code."""
    from wftest.testing import render_timeline

    _charge_attempts.clear()
    engine = Engine()
    client = engine.client
    order = {"id": "A-1001", "items": [{"sku": "pen", "qty": 2}, {"sku": "ink", "qty": 1}, {"sku": "pad", "qty": 5}]}
    iid = client.schedule_new_orchestration(order_workflow, input=order, instance_id="order-A-1001")
    engine.advance(timedelta(hours=2))  # the approver takes two hours
    client.raise_orchestration_event(iid, "approval", data={"by": "alice"})
    state = client.wait_for_orchestration_completion(iid)

    print(f"wftest demo: orchestration {iid!r} on the in-memory engine with a virtual clock\n")
    print(render_timeline(engine.history(iid)))
    child = f"{iid}:0007"
    if client.get_orchestration_state(child) is not None:
        print(f"\nsub-orchestration {child!r}:\n")
        print(render_timeline(engine.history(child)))
    print(f"\nstatus:  {state.runtime_status}")
    print(f"output:  {state.output}")
    print(f"virtual time elapsed: {state.last_updated_at - state.created_at}")
    return 0 if state.runtime_status == "COMPLETED" else 1
