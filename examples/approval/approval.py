"""Human interaction: wait for a person's decision, with a deadline and an escalation.

``wait_for_external_event`` waits for a message that a client sends with ``raise_orchestration_event``
(a web hook, a button in an app). Racing it against a durable timer with ``when_any`` gives the wait a
deadline: whichever finishes first wins. If the approver does not answer in 72 hours, the request is
escalated to a manager, who gets 24 hours; with no answer at all it is rejected.

When the deadline wins, the event wait is cancelled: left waiting, it would take the next "decision",
meant for the manager. A timer that loses needs nothing: it fires later and nobody listens.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

from wftest import ActivityContext, OrchestrationContext, Task, when_any

APPROVER_TIMEOUT = timedelta(hours=72)
MANAGER_TIMEOUT = timedelta(hours=24)


def request_approval(ctx: ActivityContext, request: dict[str, Any]) -> None:
    """Send the approver a link to approve or reject (an e-mail, a chat message)."""


def escalate(ctx: ActivityContext, request: dict[str, Any]) -> None:
    """Ask the approver's manager instead."""


def place_order(ctx: ActivityContext, request: dict[str, Any]) -> str:
    """Buy what was approved; returns the purchase order id."""
    return f"PO-{ctx.orchestration_id}"


def notify_requester(ctx: ActivityContext, outcome: dict[str, Any]) -> None:
    """Tell the requester that the purchase was rejected, and by whom."""


def wait_for_decision(ctx: OrchestrationContext, timeout: timedelta) -> Generator[Task[Any], Any, Any]:
    """The ``decision`` event's data, or None if ``timeout`` passes first."""
    decision = ctx.wait_for_external_event("decision")
    deadline = ctx.create_timer(timeout)
    winner = yield when_any([decision, deadline])
    if winner is deadline:
        decision.cancel()
        return None
    return decision.get_result()


def purchase_approval(ctx: OrchestrationContext, request: dict[str, Any]) -> Generator[Task[Any], Any, Any]:
    """Ask for approval; escalate after 72 hours; reject after 96 hours without an answer."""
    yield ctx.call_activity(request_approval, input=request)
    ctx.set_custom_status("waiting for the approver")
    decision = yield from wait_for_decision(ctx, APPROVER_TIMEOUT)
    if decision is None:
        ctx.set_custom_status("escalated to the manager")
        yield ctx.call_activity(escalate, input=request)
        decision = yield from wait_for_decision(ctx, MANAGER_TIMEOUT)
    if decision is None:
        decision = {"approved": False, "by": "nobody (timed out)"}
    ctx.set_custom_status("decided")
    if decision["approved"]:
        order = yield ctx.call_activity(place_order, input=request)
        return {"status": "approved", "by": decision["by"], "order": order}
    yield ctx.call_activity(notify_requester, input={**request, "rejected_by": decision["by"]})
    return {"status": "rejected", "by": decision["by"]}
