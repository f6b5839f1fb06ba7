"""Context propagation: a multi-tenant service carries the caller's tenant through its workflows.

The web layer puts the tenant of each request in a ``ContextVar``. Registering ``ContextVarPropagator(TENANT)``
on the engine (or the tester) makes the value travel with the work: the client records it in the new
instance's ``ExecutionStarted.tags``; the orchestrator code, its activities and its sub-orchestrations run with
the variable set to it, on whichever worker thread or process runs them, and every replay reads it from history.

``billing`` is a parent that invoices an order and starts one ``ship`` child per parcel; ``notify`` sends the
customer a message in the tenant's name. Nothing here passes the tenant as an argument.
"""

from __future__ import annotations

from collections.abc import Generator
from contextvars import ContextVar
from typing import Any

from wftest import ActivityContext, OrchestrationContext, Task, when_all, workflow_logger

Gen = Generator[Task[Any], Any, Any]

#: the tenant of the current request (set by the web layer, read anywhere below it)
TENANT: ContextVar[str] = ContextVar("tenant")

#: a stand-in for the tenants' databases: what each activity wrote, by tenant
WRITES: dict[str, list[str]] = {}


def invoice(ctx: ActivityContext, order: dict[str, Any]) -> str:
    """Write an invoice into the tenant's own ledger."""
    WRITES.setdefault(TENANT.get(), []).append(f"invoice {order['id']}")
    return f"{TENANT.get()}-INV-{order['id']}"


def book_courier(ctx: ActivityContext, parcel: str) -> str:
    WRITES.setdefault(TENANT.get(), []).append(f"courier {parcel}")
    return f"{TENANT.get()}-TRACK-{parcel}"


def notify(ctx: ActivityContext, text: str) -> None:
    ctx.logger.info("notifying for %s: %s", TENANT.get(), text)
    WRITES.setdefault(TENANT.get(), []).append(f"notify {text}")


def ship(ctx: OrchestrationContext, parcel: str) -> Gen:
    """A sub-orchestration: it runs under the parent's tenant."""
    return (yield ctx.call_activity(book_courier, input=parcel))


def billing(ctx: OrchestrationContext, order: dict[str, Any]) -> Gen:
    log = workflow_logger(ctx, __name__)
    log.info("billing order %s for %s", order["id"], TENANT.get())  # logged once, replays are silent
    number = yield ctx.call_activity(invoice, input=order)
    tracking = yield when_all([ctx.call_sub_orchestrator(ship, input=p) for p in order["parcels"]])
    yield ctx.call_activity(notify, input=f"order {order['id']} shipped")
    return {"invoice": number, "tracking": tracking, "tenant": ctx.tags["tenant"]}
