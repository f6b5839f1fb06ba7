"""Dapr workflows as an application writes them (``DaprWorkflowContext``), with scenarios to run them.

The activities are the compat corpus's deterministic functions (flaky ones count attempts through the
compat driver's runner). :func:`reference_runtime` registers the workflows on a real ``WorkflowRuntime`` (never
started), whose registry is what Dapr's own worker would execute.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

import dapr.ext.workflow as wf

from ._compat import Scenario, activities

greet, square, total_of, add_one, flaky, always_fails = (
    activities.greet, activities.square, activities.total_of, activities.add_one, activities.flaky,
    activities.always_fails,
)

RETRY = wf.RetryPolicy(first_retry_interval=timedelta(seconds=2), max_number_of_attempts=4, backoff_coefficient=2)


def d_sequence(ctx: wf.DaprWorkflowContext, name: str) -> Any:
    a = yield ctx.call_activity(greet, input=name)
    b = yield ctx.call_activity(greet, input=a)
    return [a, b]


def d_fan_out(ctx: wf.DaprWorkflowContext, count: int) -> Any:
    squares = yield wf.when_all([ctx.call_activity(square, input=i) for i in range(count)])
    total = yield ctx.call_activity(total_of, input=squares)
    return {"squares": squares, "total": total}


def d_timers(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
    start = ctx.current_utc_datetime
    yield ctx.create_timer(timedelta(minutes=5))
    yield ctx.create_timer(start + timedelta(hours=1))
    yield ctx.create_timer(timedelta(days=10))  # Dapr does not split long timers
    return (ctx.current_utc_datetime - start).total_seconds()


def d_event(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
    ctx.set_custom_status("waiting")
    value = yield ctx.wait_for_external_event("go")  # indefinite: an optional timer at the end of time
    ctx.set_custom_status("got it")
    return value


def d_event_with_timeout(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
    try:
        value = yield ctx.wait_for_external_event("approval", timeout=timedelta(days=1))
    except TimeoutError:
        return "timed out"
    return value


def d_child(ctx: wf.DaprWorkflowContext, n: int) -> Any:
    value = yield ctx.call_activity(square, input=n)
    return {"child": ctx.instance_id, "value": value}


def d_children(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
    first = yield ctx.call_child_workflow(d_child, input=1)  # default id: <parent>:0001
    rest = yield wf.when_all([ctx.call_child_workflow(d_child, input=n) for n in (2, 3)])
    named = yield ctx.call_child_workflow(d_child, input=4, instance_id=f"{ctx.instance_id}-named")
    return [first, *rest, named]


def d_retry(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
    return (yield ctx.call_activity(flaky, input={"fails": 2, "value": "ok"}, retry_policy=RETRY))


def d_retry_gives_up(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
    try:
        yield ctx.call_activity(always_fails, input="again", retry_policy=RETRY)
    except wf.TaskFailedError as err:
        return {"failed": str(err), "at": ctx.current_utc_datetime.isoformat()}
    return None


def d_counter(ctx: wf.DaprWorkflowContext, state: dict[str, int]) -> Any:
    value = yield ctx.call_activity(add_one, input=state["value"])
    if state["round"] < 3:
        ctx.continue_as_new({"round": state["round"] + 1, "value": value})
        return None
    return {"rounds": state["round"], "value": value}


def d_approval(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
    approval = ctx.wait_for_external_event("approval")
    deadline = ctx.create_timer(timedelta(days=5))
    winner = yield wf.when_any([approval, deadline])
    if winner == approval:
        return (yield ctx.call_activity(greet, input=f"approved by {approval.get_result()}"))
    return (yield ctx.call_activity(greet, input="nobody"))


def d_failure(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
    yield ctx.call_activity(greet, input="first")
    yield ctx.call_activity(always_fails, input="fatal")
    return "unreachable"


WORKFLOWS = [d_sequence, d_fan_out, d_timers, d_event, d_event_with_timeout, d_child, d_children, d_retry,
             d_retry_gives_up, d_counter, d_approval, d_failure]
ACTIVITIES = [greet, square, total_of, add_one, flaky, always_fails]

SECOND, HOUR, DAY = timedelta(seconds=1), timedelta(hours=1), timedelta(days=1)
SCENARIOS = [
    Scenario("d_sequence", "d_sequence", "World"),
    Scenario("d_fan_out", "d_fan_out", 4),
    Scenario("d_timers", "d_timers"),
    Scenario("d_event", "d_event", events=((HOUR, "go", 42),)),
    Scenario("d_event_buffered", "d_event", events=((0 * SECOND, "GO", "early"),)),
    Scenario("d_event_in_time", "d_event_with_timeout", events=((HOUR, "approval", "yes"),)),
    Scenario("d_event_too_late", "d_event_with_timeout", events=((2 * DAY, "approval", "late"),)),
    Scenario("d_children", "d_children"),
    Scenario("d_retry", "d_retry"),
    Scenario("d_retry_gives_up", "d_retry_gives_up"),
    Scenario("d_continue_as_new", "d_counter", {"round": 1, "value": 0}),
    Scenario("d_event_wins", "d_approval", events=((HOUR, "approval", "alice"),)),
    Scenario("d_timer_wins", "d_approval", events=((6 * DAY, "approval", "too late"),)),
    Scenario("d_failure", "d_failure"),
    Scenario("d_terminated", "d_event", events=((HOUR / 2, "@terminate", "stopped"),)),
    Scenario("d_suspended", "d_event", events=((HOUR / 6, "@suspend", "hold"), (HOUR, "go", 1),
                                                (2 * HOUR, "@resume", "go on"))),
]


@functools.cache
def reference_runtime() -> wf.WorkflowRuntime:
    """A ``WorkflowRuntime`` with the corpus workflows registered, as an app registers them (never started;
    Dapr marks a function registered, so there is one per process)."""
    runtime = wf.WorkflowRuntime()
    for fn in WORKFLOWS:
        runtime.register_workflow(fn)
    return runtime
