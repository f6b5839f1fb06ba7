"""The corpus orchestrators, written for the ``durabletask`` package.

``wf_orchestrators.py`` is this file with the import line changed; keep the two in step.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import durabletask.task as task

from .activities import (
    add_one,
    always_fails,
    flaky,
    flaky_no_input,
    greet,
    permanent_failure,
    square,
    total_of,
)

# fails twice then succeeds: delays 2 s then 4 s (no retry_timeout: durabletask reads the wall clock for it)
RETRY = task.RetryPolicy(first_retry_interval=timedelta(seconds=2), max_number_of_attempts=4, backoff_coefficient=2)


def immediate(ctx: task.OrchestrationContext, value: Any) -> Any:
    return {"echo": value, "instance": ctx.instance_id}


def sequence(ctx: task.OrchestrationContext, name: str) -> Any:
    a = yield ctx.call_activity(greet, input=name)
    b = yield ctx.call_activity(greet, input=a)
    c = yield ctx.call_activity(greet, input=b)
    return [a, b, c]


def fan_out_fan_in(ctx: task.OrchestrationContext, count: int) -> Any:
    squares = yield task.when_all([ctx.call_activity(square, input=i) for i in range(count)])
    total = yield ctx.call_activity(total_of, input=squares)
    return {"squares": squares, "total": total}


def timers(ctx: task.OrchestrationContext, _: Any) -> Any:
    start = ctx.current_utc_datetime
    yield ctx.create_timer(timedelta(minutes=5))
    yield ctx.create_timer(start + timedelta(hours=1))  # an absolute fire time
    yield ctx.create_timer(timedelta(days=10))  # longer than 3 days: fires in chunks
    return (ctx.current_utc_datetime - start).total_seconds()


def event_buffered(ctx: task.OrchestrationContext, _: Any) -> Any:
    first = yield ctx.call_activity(greet, input="before the wait")
    # both events were raised before anyone waited: they are buffered, FIFO, names case-insensitive
    a = yield ctx.wait_for_external_event("Approval")
    b = yield ctx.wait_for_external_event("approval")
    return [first, a, b]


def event_awaited(ctx: task.OrchestrationContext, _: Any) -> Any:
    ctx.set_custom_status("waiting")
    value = yield ctx.wait_for_external_event("go")
    ctx.set_custom_status("got it")
    return value


def child_work(ctx: task.OrchestrationContext, n: int) -> Any:
    value = yield ctx.call_activity(square, input=n)
    return {"child": ctx.instance_id, "parent": ctx.parent_instance_id, "value": value}


def sub_orchestrations(ctx: task.OrchestrationContext, _: Any) -> Any:
    first = yield ctx.call_sub_orchestrator(child_work, input=1)  # default id: <parent>:0001
    rest = yield task.when_all([ctx.call_sub_orchestrator(child_work, input=n) for n in (2, 3)])
    named = yield ctx.call_sub_orchestrator(child_work, input=4, instance_id=f"{ctx.instance_id}-named")
    return [first, *rest, named]


def retry_activity(ctx: task.OrchestrationContext, _: Any) -> Any:
    value = yield ctx.call_activity(flaky, input={"fails": 2, "value": "ok"}, retry_policy=RETRY)
    return value


def retry_no_input(ctx: task.OrchestrationContext, _: Any) -> Any:
    value = yield ctx.call_activity(flaky_no_input, retry_policy=RETRY)
    return value


def fan_out_retries(ctx: task.OrchestrationContext, _: Any) -> Any:
    calls = [
        ctx.call_activity(flaky, input={"fails": 1, "value": "a"}, retry_policy=RETRY),
        ctx.call_activity(square, input=9),
        ctx.call_activity(flaky, input={"fails": 2, "value": "b"}, retry_policy=RETRY),
    ]
    results = yield task.when_all(calls)
    return results


def retry_while_waiting(ctx: task.OrchestrationContext, _: Any) -> Any:
    slow = ctx.call_activity(flaky, input={"fails": 1, "value": "retried"}, retry_policy=RETRY)
    # the event arrives with the retry timer: the new call and the retried one are asked for in one step
    signal = yield ctx.wait_for_external_event("signal")
    greeting = ctx.call_activity(greet, input=signal)
    results = yield task.when_all([slow, greeting])
    return results


def retry_gives_up(ctx: task.OrchestrationContext, _: Any) -> Any:
    try:
        yield ctx.call_activity(always_fails, input="again and again", retry_policy=RETRY)
    except task.TaskFailedError as err:
        return {"message": err.details.message, "at": ctx.current_utc_datetime.isoformat()}
    return None


def non_retriable(ctx: task.OrchestrationContext, _: Any) -> Any:
    try:
        yield ctx.call_activity(permanent_failure, input="no point retrying", retry_policy=RETRY)
    except task.TaskFailedError as err:
        return {"message": err.details.message, "at": ctx.current_utc_datetime.isoformat()}
    return None


def empty_fan_out(ctx: task.OrchestrationContext, items: list[int]) -> Any:
    # the first yield is a task that is already complete
    squares = yield task.when_all([ctx.call_activity(square, input=i) for i in items])
    total = yield ctx.call_activity(total_of, input=squares)
    return total


def failure_caught(ctx: task.OrchestrationContext, _: Any) -> Any:
    try:
        yield ctx.call_activity(always_fails, input="boom")
    except task.TaskFailedError as err:
        recovered = yield ctx.call_activity(greet, input="recovered")
        return {"type": err.details.error_type, "message": err.details.message, "then": recovered}
    return None


def failure_uncaught(ctx: task.OrchestrationContext, _: Any) -> Any:
    yield ctx.call_activity(greet, input="first")
    yield ctx.call_activity(always_fails, input="fatal")
    return "unreachable"


def child_fails(ctx: task.OrchestrationContext, message: str) -> Any:
    yield ctx.call_activity(greet, input=message)
    raise ValueError(message)


def sub_orchestration_failure_caught(ctx: task.OrchestrationContext, _: Any) -> Any:
    try:
        yield ctx.call_sub_orchestrator(child_fails, input="the child broke")
    except task.TaskFailedError as err:
        return {"type": err.details.error_type, "message": err.details.message}
    return None


def flaky_child(ctx: task.OrchestrationContext, key: str) -> Any:
    # no retry here: the first execution of this child fails, the parent's retry policy starts it again
    value = yield ctx.call_activity(flaky, input={"fails": 1, "value": key})
    return value


def sub_orchestration_retry(ctx: task.OrchestrationContext, _: Any) -> Any:
    value = yield ctx.call_sub_orchestrator(flaky_child, input="child retried", retry_policy=RETRY)
    return value


def counter(ctx: task.OrchestrationContext, state: dict[str, int]) -> Any:
    if state["round"] == 1:
        ctx.set_custom_status({"started at": state["value"]})  # outlives the execution that set it
    value = yield ctx.call_activity(add_one, input=state["value"])
    if state["round"] < 3:
        ctx.continue_as_new({"round": state["round"] + 1, "value": value, "uuid": ctx.new_uuid()})
        return None
    return {"rounds": state["round"], "value": value}


def collector(ctx: task.OrchestrationContext, items: list[str]) -> Any:
    item = yield ctx.wait_for_external_event("item")
    items = [*items, item]
    if len(items) < 3:
        ctx.continue_as_new(items, save_events=True)  # events not read yet go to the next execution
        return None
    return items


def custom_status(ctx: task.OrchestrationContext, _: Any) -> Any:
    ctx.set_custom_status({"stage": 1})
    yield ctx.call_activity(greet, input="status")
    ctx.set_custom_status({"stage": 2})
    yield ctx.create_timer(timedelta(seconds=30))
    ctx.set_custom_status({"stage": 3, "done": True})
    return "ok"


def uuids(ctx: task.OrchestrationContext, _: Any) -> Any:
    ids = [ctx.new_uuid(), ctx.new_uuid()]
    yield ctx.call_activity(greet, input=ids[0])
    ids.append(ctx.new_uuid())  # a new step: a new timestamp, the counter goes on
    return ids


def approval_with_deadline(ctx: task.OrchestrationContext, _: Any) -> Any:
    approval = ctx.wait_for_external_event("approval")
    deadline = ctx.create_timer(timedelta(days=5))  # chunked: 3 days, then 2
    winner = yield task.when_any([approval, deadline])
    if winner is approval:
        outcome = yield ctx.call_activity(greet, input=f"approved by {approval.get_result()}")
    else:
        outcome = yield ctx.call_activity(greet, input="nobody (timed out)")
    return outcome


def cancel_deadline(ctx: task.OrchestrationContext, _: Any) -> Any:
    yield ctx.call_activity(greet, input="first")
    approval = ctx.wait_for_external_event("approval")
    deadline = ctx.create_timer(timedelta(days=1))
    winner = yield task.when_any([approval, deadline])
    if winner is approval:
        deadline.cancel()  # when the event was already there, the timer never left this step
    outcome = yield ctx.call_activity(greet, input=approval.get_result())
    return outcome


def waiter(ctx: task.OrchestrationContext, _: Any) -> Any:
    ping = yield ctx.wait_for_external_event("ping")
    return {"got": ping}


def send_event(ctx: task.OrchestrationContext, _: Any) -> Any:
    child_id = f"{ctx.instance_id}-waiter"
    child = ctx.call_sub_orchestrator(waiter, instance_id=child_id)
    ctx.send_event(child_id, "ping", data={"from": ctx.instance_id})
    result = yield child
    return result


def mixed(ctx: task.OrchestrationContext, _: Any) -> Any:
    results = yield task.when_all([
        ctx.call_activity(square, input=7),
        ctx.create_timer(timedelta(hours=2)),
        ctx.wait_for_external_event("data"),
    ])
    return results


ORCHESTRATORS = [
    immediate, sequence, fan_out_fan_in, timers, event_buffered, event_awaited, child_work,
    sub_orchestrations, retry_activity, retry_no_input, fan_out_retries, retry_while_waiting, retry_gives_up,
    non_retriable, empty_fan_out, failure_caught, failure_uncaught,
    child_fails, sub_orchestration_failure_caught, flaky_child, sub_orchestration_retry, counter, collector,
    custom_status, uuids, approval_with_deadline, cancel_deadline, waiter, send_event, mixed,
]
