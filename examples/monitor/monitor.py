"""Monitor: poll something periodically until it reaches a final state, or until a deadline.

Each generation checks the job once, then either stops (the job finished, or the deadline passed) or
sleeps on a durable timer and calls ``continue_as_new`` with its state. ``continue_as_new`` restarts the
instance with a fresh, empty history, so a monitor that runs for months never accumulates one: each
generation's history holds a single check. The deadline is computed once, from orchestration time, and
carried in the input so every generation agrees on it.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any

from wftest import ActivityContext, OrchestrationContext, Task

POLL_EVERY = timedelta(hours=6)
GIVE_UP_AFTER = timedelta(days=30)

#: stand-ins for the job scheduler being watched and for the pager
JOBS: dict[str, str] = {}
ALERTS: list[tuple[datetime, str]] = []


def check_job(ctx: ActivityContext, job: str) -> str:
    """The job's state: "running", "succeeded" or "failed"."""
    return JOBS.get(job, "running")


def send_alert(ctx: ActivityContext, message: str) -> None:
    """Page someone. ``datetime.now()`` here reads the virtual clock in tests (freeze_activity_time)."""
    ALERTS.append((datetime.now(), message))


def monitor_job(ctx: OrchestrationContext, watch: dict[str, Any]) -> Generator[Task[Any], Any, Any]:
    """Check ``watch["job"]`` every 6 hours until it finishes, giving up after 30 days."""
    job = watch["job"]
    give_up_at = watch.get("give_up_at") or (ctx.current_utc_datetime + GIVE_UP_AFTER).isoformat()
    checks = watch.get("checks", 0) + 1
    state = yield ctx.call_activity(check_job, input=job)
    ctx.set_custom_status({"checks": checks, "last": state})
    if state != "running":
        yield ctx.call_activity(send_alert, input=f"job {job} {state} (check #{checks})")
        return {"job": job, "state": state, "checks": checks}
    next_check = ctx.current_utc_datetime + POLL_EVERY
    if next_check > datetime.fromisoformat(give_up_at):
        yield ctx.call_activity(send_alert, input=f"job {job} still running after {checks} checks; giving up")
        return {"job": job, "state": "gave up", "checks": checks}
    yield ctx.create_timer(next_check)
    ctx.continue_as_new({"job": job, "give_up_at": give_up_at, "checks": checks})
    return None
