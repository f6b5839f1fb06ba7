"""Changing a workflow safely while instances are in flight, with ``ctx.is_patched``.

Version 1 reserves stock and then charges the card. Version 2 must charge first. Instances started by
version 1 and still running when version 2 is deployed replay their history with version 2's code, so
version 2 keeps the old order for them: ``is_patched`` is False when replaying a history written before
the change, True for everything that runs the new code.

Steps: 1) record histories of running instances (``--wftest-record`` or ``wftest.history.save``);
2) change the code behind ``is_patched``; 3) the saved histories still replay (CI proves it);
4) when no old instance is left, replace ``is_patched`` by ``deprecate_patch`` and delete the old branch.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

from wftest import OrchestrationContext, Registry, Task

Gen = Generator[Task[Any], Any, Any]


def reserve(ctx: Any, order: dict[str, Any]) -> str:
    """Reserve the stock for an order."""
    return f"reserved {order['sku']}"


def charge(ctx: Any, order: dict[str, Any]) -> str:
    """Charge the customer."""
    return f"charged {order['amount']}"


def ship(ctx: Any, order: dict[str, Any]) -> str:
    """Hand the parcel to the courier."""
    return f"shipped {order['sku']}"


def order_v1(ctx: OrchestrationContext, order: dict[str, Any]) -> Gen:
    """The original workflow: reserve, charge, wait for the warehouse, ship."""
    steps = [(yield ctx.call_activity(reserve, input=order)), (yield ctx.call_activity(charge, input=order))]
    yield ctx.create_timer(timedelta(days=1))
    steps.append((yield ctx.call_activity(ship, input=order)))
    return steps


def order_v2(ctx: OrchestrationContext, order: dict[str, Any]) -> Gen:
    """Version 2: charge before reserving, for new instances only."""
    if ctx.is_patched("charge-first"):
        steps = [(yield ctx.call_activity(charge, input=order)), (yield ctx.call_activity(reserve, input=order))]
    else:
        steps = [(yield ctx.call_activity(reserve, input=order)), (yield ctx.call_activity(charge, input=order))]
    yield ctx.create_timer(timedelta(days=1))
    steps.append((yield ctx.call_activity(ship, input=order)))
    return steps


def order_v2_unguarded(ctx: OrchestrationContext, order: dict[str, Any]) -> Gen:
    """What goes wrong without the guard: the same change, applied to every instance."""
    steps = [(yield ctx.call_activity(charge, input=order)), (yield ctx.call_activity(reserve, input=order))]
    yield ctx.create_timer(timedelta(days=1))
    steps.append((yield ctx.call_activity(ship, input=order)))
    return steps


def order_v3(ctx: OrchestrationContext, order: dict[str, Any]) -> Gen:
    """Version 3, once every version-1 instance has finished: the old branch is gone."""
    ctx.deprecate_patch("charge-first")
    steps = [(yield ctx.call_activity(charge, input=order)), (yield ctx.call_activity(reserve, input=order))]
    yield ctx.create_timer(timedelta(days=1))
    steps.append((yield ctx.call_activity(ship, input=order)))
    return steps


def registry_for(orchestrator: Any) -> Registry:
    """A registry that runs ``orchestrator`` under the stable name ``order``."""
    registry = Registry()
    registry.add_named_orchestrator("order", orchestrator)
    for activity in (reserve, charge, ship):
        registry.add_activity(activity)
    return registry
