"""The real ``durabletask`` client and worker (1.12) against wftest's sidecar, on a virtual clock.

One sidecar and one worker serve the whole module (a durabletask worker takes a second to stop); every
test starts its own instances, with fresh ids. The behaviours are those of durabletask-python's own
end-to-end suite (``tests/durabletask/test_orchestration_e2e.py``) and more.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import grpc
import pytest
from durabletask import client, task
from durabletask import history as dt_history

from wftest.sidecar import SidecarServer

from ._support import QUIET, running_worker, wait_until

COMPLETED = client.OrchestrationStatus.COMPLETED
FAILED = client.OrchestrationStatus.FAILED
TERMINATED = client.OrchestrationStatus.TERMINATED
SUSPENDED = client.OrchestrationStatus.SUSPENDED
RUNNING = client.OrchestrationStatus.RUNNING

#: activity calls per (instance id, activity name), for the tests that count them
CALLS: Counter[tuple[str, str]] = Counter()
_CALLS_LOCK = threading.Lock()


def _count(ctx: task.ActivityContext, name: str) -> int:
    with _CALLS_LOCK:
        CALLS[ctx.orchestration_id, name] += 1
        return CALLS[ctx.orchestration_id, name]


# -- activities ------------------------------------------------------------------------------------


def plus_one(ctx: task.ActivityContext, value: int) -> int:
    return value + 1


def square(ctx: task.ActivityContext, value: int) -> int:
    return value * value


def increment(ctx: task.ActivityContext, _: Any) -> None:
    _count(ctx, "increment")


def throw(ctx: task.ActivityContext, _: Any) -> None:
    _count(ctx, "throw")
    raise RuntimeError("Kah-BOOOOM!!!")


def fails_twice(ctx: task.ActivityContext, _: Any) -> str:
    attempt = _count(ctx, "fails_twice")
    if attempt <= 2:
        raise ConnectionError(f"attempt {attempt} failed")
    return f"succeeded on attempt {attempt}"


def noop(ctx: task.ActivityContext, _: Any) -> None:
    return None


# -- orchestrators ---------------------------------------------------------------------------------

RETRY_3 = task.RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=3,
                           backoff_coefficient=1, max_retry_interval=timedelta(seconds=10),
                           retry_timeout=timedelta(seconds=30))


def empty(ctx: task.OrchestrationContext, _: Any) -> None:
    return None


def sequence(ctx: task.OrchestrationContext, start: int) -> Any:
    numbers = [start]
    for _ in range(10):
        numbers.append((yield ctx.call_activity(plus_one, input=numbers[-1])))
    return numbers


def fan_out(ctx: task.OrchestrationContext, count: int) -> Any:
    squares = yield task.when_all([ctx.call_activity(square, input=i) for i in range(count)])
    return squares


def one_day_timer(ctx: task.OrchestrationContext, _: Any) -> Any:
    start = ctx.current_utc_datetime
    yield ctx.create_timer(timedelta(days=1))
    return (ctx.current_utc_datetime - start).total_seconds()


def five_day_timer(ctx: task.OrchestrationContext, _: Any) -> Any:
    yield ctx.create_timer(timedelta(days=5))  # the SDK splits it: 3 days, then 2
    return "done"


def three_events(ctx: task.OrchestrationContext, _: Any) -> Any:
    a = yield ctx.wait_for_external_event("A")
    b = yield ctx.wait_for_external_event("B")
    c = yield ctx.wait_for_external_event("C")
    return [a, b, c]


def approval_or_timeout(ctx: task.OrchestrationContext, _: Any) -> Any:
    approval = ctx.wait_for_external_event("Approval")
    timeout = ctx.create_timer(timedelta(seconds=3))
    winner = yield task.when_any([approval, timeout])
    if winner == approval:
        timeout.cancel()
        return "approved"
    return "timed out"


def approve_or_reject(ctx: task.OrchestrationContext, _: Any) -> Any:
    approve = ctx.wait_for_external_event("Approve")
    reject = ctx.wait_for_external_event("Reject")
    winner = yield task.when_any([approve, reject])
    if winner == approve:
        reject.cancel()
        return "approved"
    approve.cancel()
    return "rejected"


def wait_event(ctx: task.OrchestrationContext, _: Any) -> Any:
    return (yield ctx.wait_for_external_event("my_event"))


def child_counter(ctx: task.OrchestrationContext, count: int) -> Any:
    for _ in range(count):
        yield ctx.call_activity(increment)
    return count


def parent_fan_out(ctx: task.OrchestrationContext, count: int) -> Any:
    results = yield task.when_all([ctx.call_sub_orchestrator(child_counter, input=3) for _ in range(count)])
    return sum(results)


def parent_by_name(ctx: task.OrchestrationContext, _: Any) -> Any:
    return (yield ctx.call_sub_orchestrator("child_counter", input=1))


def root_with_waiting_child(ctx: task.OrchestrationContext, _: Any) -> Any:
    return (yield ctx.call_sub_orchestrator(wait_event, instance_id=f"{ctx.instance_id}-child"))


def child_with_retries(ctx: task.OrchestrationContext, _: Any) -> Any:
    yield ctx.call_activity(throw, retry_policy=RETRY_3)


def parent_with_retries(ctx: task.OrchestrationContext, _: Any) -> Any:
    yield ctx.call_sub_orchestrator(child_with_retries, retry_policy=RETRY_3,
                                    instance_id=f"{ctx.instance_id}-child")


def retried_activity(ctx: task.OrchestrationContext, _: Any) -> Any:
    return (yield ctx.call_activity(fails_twice, retry_policy=RETRY_3))


def compensating(ctx: task.OrchestrationContext, _: Any) -> Any:
    try:
        yield ctx.call_activity(throw)
    except task.TaskFailedError as err:
        yield ctx.call_activity(increment)
        yield ctx.call_activity(increment)
        return err.details.message
    return None


def broken(ctx: task.OrchestrationContext, _: Any) -> Any:
    yield ctx.call_activity(noop)
    raise ValueError("the orchestrator broke")


def calls_unregistered(ctx: task.OrchestrationContext, _: Any) -> Any:
    return (yield ctx.call_activity("not_registered_anywhere"))


def with_custom_status(ctx: task.OrchestrationContext, _: Any) -> Any:
    ctx.set_custom_status("foobaz")
    yield ctx.call_activity(noop)
    ctx.set_custom_status({"stage": 2})


def collector(ctx: task.OrchestrationContext, items: list[Any]) -> Any:
    item = yield ctx.wait_for_external_event("item")
    items = [*items, item]
    if len(items) < 5:
        ctx.continue_as_new(items, save_events=True)
        return None
    return items


def receiver(ctx: task.OrchestrationContext, _: Any) -> Any:
    first = yield ctx.wait_for_external_event("Approval")
    second = yield ctx.wait_for_external_event("Approval")
    return [first, second]


def sender(ctx: task.OrchestrationContext, target: str) -> Any:
    ctx.send_event(target, "Approval", data={"approved": True})
    ctx.send_event(f"{target}-missing", "Ignored")
    yield ctx.create_timer(timedelta(milliseconds=50))  # a replay after EventSent is in history
    return "sent"


def sends_everywhere(ctx: task.OrchestrationContext, finished: str) -> Any:
    ctx.send_event(finished, "Ignored")  # an instance that has completed
    ctx.send_event(f"{ctx.instance_id}-missing", "Ignored")  # no such instance
    ctx.send_event(ctx.instance_id, "Ignored")  # itself; nobody waits for it
    return "done"


def uuids(ctx: task.OrchestrationContext, _: Any) -> Any:
    results = [ctx.new_uuid(), ctx.new_uuid()]
    yield ctx.call_activity(noop)
    results.append(ctx.new_uuid())
    return results


ORCHESTRATORS = [
    empty, sequence, fan_out, one_day_timer, five_day_timer, three_events, approval_or_timeout, approve_or_reject,
    wait_event, child_counter, parent_fan_out, parent_by_name, root_with_waiting_child, child_with_retries,
    parent_with_retries, retried_activity, compensating, broken, calls_unregistered, with_custom_status, collector,
    receiver, sender, sends_everywhere, uuids,
]
ACTIVITIES = [plus_one, square, increment, throw, fails_twice, noop]


@pytest.fixture(scope="module")
def server() -> Iterator[SidecarServer]:
    with SidecarServer(virtual_clock=True) as sidecar, running_worker(sidecar.address, ORCHESTRATORS, ACTIVITIES):
        yield sidecar


@pytest.fixture(scope="module")
def hub(server: SidecarServer) -> Iterator[client.TaskHubGrpcClient]:
    with client.TaskHubGrpcClient(host_address=server.address, logger=QUIET) as c:
        yield c


def run(hub: client.TaskHubGrpcClient, orchestrator: Any, data: Any = None, **options: Any
        ) -> client.OrchestrationState:
    iid = hub.schedule_new_orchestration(orchestrator, input=data, **options)
    state = hub.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None
    return state


def calls(instance_id: str, activity: str) -> int:
    with _CALLS_LOCK:
        return CALLS[instance_id, activity]


# -- basics ----------------------------------------------------------------------------------------


def test_empty_orchestration_completes_with_no_payloads(hub: client.TaskHubGrpcClient) -> None:
    state = run(hub, empty)
    assert state.runtime_status == COMPLETED and state.name == "empty"
    assert state.serialized_input is None and state.serialized_output is None
    assert state.serialized_custom_status is None and state.failure_details is None


def test_activity_sequence_returns_every_result(hub: client.TaskHubGrpcClient) -> None:
    state = run(hub, sequence, 1)
    assert state.runtime_status == COMPLETED
    assert state.serialized_input == json.dumps(1)
    assert state.serialized_output == json.dumps([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])


def test_fan_out_results_come_back_in_call_order(hub: client.TaskHubGrpcClient) -> None:
    state = run(hub, fan_out, 20)
    assert state.runtime_status == COMPLETED
    assert json.loads(state.serialized_output or "") == [i * i for i in range(20)]


def test_payloads_are_stored_as_the_sdk_wrote_them(hub: client.TaskHubGrpcClient) -> None:
    state = run(hub, fan_out, 3)
    assert state.serialized_input == "3" and state.serialized_output == json.dumps([0, 1, 4])


def test_custom_status_is_the_last_value_set(hub: client.TaskHubGrpcClient) -> None:
    state = run(hub, with_custom_status)
    assert state.runtime_status == COMPLETED
    assert state.serialized_custom_status == json.dumps({"stage": 2})


def test_new_uuid_values_are_distinct_and_survive_replay(hub: client.TaskHubGrpcClient) -> None:
    state = run(hub, uuids)
    values = json.loads(state.serialized_output or "")
    assert len({uuid.UUID(v) for v in values}) == 3


# -- timers (virtual clock) ------------------------------------------------------------------------


def test_a_one_day_timer_fires_at_once_in_virtual_time(hub: client.TaskHubGrpcClient, server: SidecarServer) -> None:
    before = server.engine.clock.now()
    state = run(hub, one_day_timer)
    assert state.runtime_status == COMPLETED
    assert json.loads(state.serialized_output or "") == 86400.0  # the orchestration saw a whole day pass
    assert server.engine.clock.now() - before >= timedelta(days=1)


def test_a_long_timer_fires_in_the_chunks_the_sdk_asked_for(hub: client.TaskHubGrpcClient) -> None:
    state = run(hub, five_day_timer)
    assert state.runtime_status == COMPLETED
    events = hub.get_orchestration_history(state.instance_id)
    assert sum(isinstance(e, dt_history.TimerFiredEvent) for e in events) == 2


def test_a_start_in_the_future_waits_in_virtual_time(hub: client.TaskHubGrpcClient, server: SidecarServer) -> None:
    start_at = datetime.now(timezone.utc) + timedelta(hours=6)
    state = run(hub, empty, start_at=start_at)
    assert state.runtime_status == COMPLETED
    assert server.engine.clock.now() >= start_at.replace(tzinfo=None)


# -- external events -------------------------------------------------------------------------------


def test_events_raised_before_the_waits_are_buffered_in_order(hub: client.TaskHubGrpcClient) -> None:
    iid = hub.schedule_new_orchestration(three_events)
    for name in ("A", "B", "C"):
        hub.raise_orchestration_event(iid, name, data=name.lower())
    state = hub.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None and state.serialized_output == json.dumps(["a", "b", "c"])


def test_an_event_raised_right_after_the_start_beats_a_racing_timer(hub: client.TaskHubGrpcClient) -> None:
    iid = hub.schedule_new_orchestration(approval_or_timeout)
    hub.raise_orchestration_event(iid, "Approval")
    state = hub.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None and state.serialized_output == json.dumps("approved")


def test_the_timer_wins_when_no_event_comes(hub: client.TaskHubGrpcClient) -> None:
    state = run(hub, approval_or_timeout)
    assert state.runtime_status == COMPLETED and state.serialized_output == json.dumps("timed out")


@pytest.mark.parametrize(("event", "expected"), [("Approve", "approved"), ("Reject", "rejected")])
def test_when_any_between_events_takes_the_one_raised(hub: client.TaskHubGrpcClient, event: str, expected: str) -> None:
    iid = hub.schedule_new_orchestration(approve_or_reject)
    hub.raise_orchestration_event(iid, event)
    state = hub.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None and state.serialized_output == json.dumps(expected)


def test_raising_an_event_on_an_unknown_instance_is_not_found(hub: client.TaskHubGrpcClient) -> None:
    with pytest.raises(grpc.RpcError) as info:
        hub.raise_orchestration_event("no-such-instance", "A")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-instance" in str(info.value.details())


def test_orchestrations_send_events_to_each_other(hub: client.TaskHubGrpcClient, server: SidecarServer) -> None:
    receiver_id = hub.schedule_new_orchestration(receiver)
    hub.wait_for_orchestration_start(receiver_id, timeout=30)
    sent = run(hub, sender, receiver_id)
    hub.raise_orchestration_event(receiver_id, "Approval", data="client")
    received = hub.wait_for_orchestration_completion(receiver_id, timeout=30)
    assert sent.serialized_output == json.dumps("sent")
    assert received is not None and received.serialized_output == json.dumps([{"approved": True}, "client"])
    # the event for an instance that does not exist is reported, not lost silently
    assert any(u.target_instance_id == f"{receiver_id}-missing" for u in server.engine.undelivered)


def test_events_sent_where_nobody_takes_them_do_not_disturb_anyone(hub: client.TaskHubGrpcClient,
                                                                    server: SidecarServer) -> None:
    finished = run(hub, empty)
    state = run(hub, sends_everywhere, finished.instance_id)
    assert state.runtime_status == COMPLETED and state.serialized_output == json.dumps("done")
    again = hub.get_orchestration_state(finished.instance_id) or _missing()
    assert again.runtime_status == COMPLETED and again.last_updated_at == finished.last_updated_at
    assert any(u.target_instance_id == f"{state.instance_id}-missing" for u in server.engine.undelivered)


def test_continue_as_new_carries_unread_events_to_the_next_execution(hub: client.TaskHubGrpcClient) -> None:
    iid = hub.schedule_new_orchestration(collector, input=[])
    for value in range(1, 6):
        hub.raise_orchestration_event(iid, "item", data=value)
    state = hub.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None and state.runtime_status == COMPLETED
    assert state.serialized_output == json.dumps([1, 2, 3, 4, 5])
    assert state.serialized_input == json.dumps([1, 2, 3, 4])


# -- sub-orchestrations ----------------------------------------------------------------------------


def test_sub_orchestrations_fan_out_and_their_activities_all_run(hub: client.TaskHubGrpcClient) -> None:
    state = run(hub, parent_fan_out, 10)
    assert state.runtime_status == COMPLETED and state.serialized_output == "30"
    children = [f"{state.instance_id}:{i:04x}" for i in range(1, 11)]
    assert sum(calls(child, "increment") for child in children) == 30


def test_a_sub_orchestrator_is_called_by_name(hub: client.TaskHubGrpcClient) -> None:
    state = run(hub, parent_by_name)
    assert state.runtime_status == COMPLETED and state.serialized_output == "1"


def test_retry_policies_retry_both_the_sub_orchestration_and_its_activity(hub: client.TaskHubGrpcClient) -> None:
    state = run(hub, parent_with_retries)
    assert state.runtime_status == FAILED and state.failure_details is not None
    assert state.failure_details.error_type == "durabletask.task.TaskFailedError"
    assert state.failure_details.message.startswith("Sub-orchestration task #1 failed:")
    assert state.failure_details.message.endswith("Activity task #1 failed: Kah-BOOOOM!!!")
    # three child executions (one instance id), three activity attempts each
    assert calls(f"{state.instance_id}-child", "throw") == 9


# -- failures and retries --------------------------------------------------------------------------


def test_an_activity_retried_by_policy_succeeds_on_the_third_attempt(hub: client.TaskHubGrpcClient) -> None:
    state = run(hub, retried_activity)
    assert state.runtime_status == COMPLETED
    assert state.serialized_output == json.dumps("succeeded on attempt 3")
    assert calls(state.instance_id, "fails_twice") == 3


def test_a_caught_activity_failure_lets_the_orchestration_compensate(hub: client.TaskHubGrpcClient) -> None:
    state = run(hub, compensating)
    assert state.runtime_status == COMPLETED and state.failure_details is None
    assert state.serialized_output == json.dumps("Kah-BOOOOM!!!")
    assert calls(state.instance_id, "increment") == 2


def test_an_orchestrator_exception_fails_the_instance_with_its_details(hub: client.TaskHubGrpcClient) -> None:
    state = run(hub, broken)
    assert state.runtime_status == FAILED and state.failure_details is not None
    assert state.failure_details.error_type == "builtins.ValueError"
    assert state.failure_details.message == "the orchestrator broke"
    assert state.failure_details.stack_trace


def test_an_unregistered_activity_fails_the_instance_naming_it(hub: client.TaskHubGrpcClient) -> None:
    state = run(hub, calls_unregistered)
    assert state.runtime_status == FAILED and state.failure_details is not None
    assert "not_registered_anywhere" in state.failure_details.message


def test_an_unregistered_orchestrator_fails_the_instance_naming_it(hub: client.TaskHubGrpcClient) -> None:
    state = run(hub, "no_such_orchestrator")
    assert state.runtime_status == FAILED and state.failure_details is not None
    assert "no_such_orchestrator" in state.failure_details.message


# -- management ------------------------------------------------------------------------------------


def test_terminate_ends_a_running_instance_with_the_output(hub: client.TaskHubGrpcClient) -> None:
    iid = hub.schedule_new_orchestration(wait_event)
    started = hub.wait_for_orchestration_start(iid, timeout=30)
    assert started is not None and started.runtime_status == RUNNING
    hub.terminate_orchestration(iid, output="some reason for termination")
    state = hub.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None and state.runtime_status == TERMINATED
    assert state.serialized_output == json.dumps("some reason for termination")


def _start_root_and_child(hub: client.TaskHubGrpcClient) -> tuple[str, str]:
    root = hub.schedule_new_orchestration(root_with_waiting_child)
    child = f"{root}-child"
    wait_until(lambda: hub.get_orchestration_state(child) is not None, "the child to be created")
    assert (hub.wait_for_orchestration_start(child, timeout=30) or _missing()).runtime_status == RUNNING
    return root, child


def test_terminate_is_recursive_by_default(hub: client.TaskHubGrpcClient) -> None:
    root, child = _start_root_and_child(hub)
    hub.terminate_orchestration(root, output="stop")
    assert (hub.wait_for_orchestration_completion(root, timeout=30) or _missing()).runtime_status == TERMINATED
    assert (hub.wait_for_orchestration_completion(child, timeout=30) or _missing()).runtime_status == TERMINATED


def test_a_parent_can_be_purged_while_its_terminated_children_still_wind_down(hub: client.TaskHubGrpcClient) -> None:
    # durabletask's e2e suite purges right after the parent is TERMINATED; the children get their
    # terminate a step later, so a child may still be running: it is left alone, not an error
    root, child = _start_root_and_child(hub)
    hub.terminate_orchestration(root)
    hub.wait_for_orchestration_completion(root, timeout=30)
    assert hub.purge_orchestration(root).deleted_instance_count in (1, 2)
    assert hub.get_orchestration_state(root) is None
    child_state = hub.wait_for_orchestration_completion(child, timeout=30)
    assert child_state is None or child_state.runtime_status == TERMINATED


def test_a_non_recursive_terminate_leaves_the_child_running(hub: client.TaskHubGrpcClient) -> None:
    root, child = _start_root_and_child(hub)
    hub.terminate_orchestration(root, output="stop", recursive=False)
    assert (hub.wait_for_orchestration_completion(root, timeout=30) or _missing()).runtime_status == TERMINATED
    assert (hub.get_orchestration_state(child) or _missing()).runtime_status == RUNNING
    hub.raise_orchestration_event(child, "my_event", data="still here")
    finished = hub.wait_for_orchestration_completion(child, timeout=30) or _missing()
    assert finished.runtime_status == COMPLETED and finished.serialized_output == json.dumps("still here")


def test_a_suspended_instance_holds_its_events_until_resumed(hub: client.TaskHubGrpcClient) -> None:
    iid = hub.schedule_new_orchestration(wait_event)
    hub.wait_for_orchestration_start(iid, timeout=30)
    hub.suspend_orchestration(iid)
    wait_until(lambda: (hub.get_orchestration_state(iid) or _missing()).runtime_status == SUSPENDED,
               "the instance to be SUSPENDED")
    hub.raise_orchestration_event(iid, "my_event", data=42)
    with pytest.raises(TimeoutError):
        hub.wait_for_orchestration_completion(iid, timeout=0.5)
    hub.resume_orchestration(iid)
    state = hub.wait_for_orchestration_completion(iid, timeout=30) or _missing()
    assert state.runtime_status == COMPLETED and state.serialized_output == json.dumps(42)


def test_purge_removes_a_finished_instance_and_its_children(hub: client.TaskHubGrpcClient) -> None:
    state = run(hub, parent_by_name)
    result = hub.purge_orchestration(state.instance_id)
    assert result.deleted_instance_count == 2
    assert hub.get_orchestration_state(state.instance_id) is None
    assert hub.get_orchestration_state(f"{state.instance_id}:0001") is None


def test_purging_a_running_instance_is_refused(hub: client.TaskHubGrpcClient) -> None:
    iid = hub.schedule_new_orchestration(wait_event)
    hub.wait_for_orchestration_start(iid, timeout=30)
    with pytest.raises(grpc.RpcError) as info:
        hub.purge_orchestration(iid)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert iid in str(info.value.details())
    hub.terminate_orchestration(iid)


def test_purge_by_filter_removes_only_finished_matching_instances(hub: client.TaskHubGrpcClient) -> None:
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    done = run(hub, empty).instance_id
    waiting = hub.schedule_new_orchestration(wait_event)
    hub.wait_for_orchestration_start(waiting, timeout=30)
    result = hub.purge_orchestrations_by(created_time_from=since, runtime_status=[COMPLETED])
    assert result.deleted_instance_count >= 1 and result.is_complete is True
    assert hub.get_orchestration_state(done) is None
    assert hub.get_orchestration_state(waiting) is not None
    hub.terminate_orchestration(waiting)


def test_query_filters_by_status_and_instance_id_prefix(hub: client.TaskHubGrpcClient) -> None:
    prefix = f"query-{uuid.uuid4().hex[:8]}-"
    for i in range(3):
        run(hub, empty, instance_id=f"{prefix}done-{i}")
    waiting = hub.schedule_new_orchestration(wait_event, instance_id=f"{prefix}waiting")
    hub.wait_for_orchestration_start(waiting, timeout=30)
    completed = hub.get_all_orchestration_states(
        client.OrchestrationQuery(instance_id_prefix=prefix, runtime_status=[COMPLETED], max_instance_count=2))
    assert sorted(s.instance_id for s in completed) == [f"{prefix}done-{i}" for i in range(3)]  # two pages
    everything = hub.get_all_orchestration_states(
        client.OrchestrationQuery(instance_id_prefix=prefix, fetch_inputs_and_outputs=True))
    assert {s.instance_id for s in everything} == {*(f"{prefix}done-{i}" for i in range(3)), waiting}
    hub.terminate_orchestration(waiting)


def test_list_instance_ids_pages_through_finished_instances(hub: client.TaskHubGrpcClient) -> None:
    since = datetime.now(timezone.utc)
    ids = {run(hub, empty).instance_id for _ in range(3)}
    seen: list[str] = []
    token = None
    while True:
        page = hub.list_instance_ids(runtime_status=[COMPLETED], completed_time_from=since, page_size=2,
                                     continuation_token=token)
        seen += page.items
        token = page.continuation_token
        if token is None:
            break
    assert ids <= set(seen) and len(seen) == len(set(seen))


def test_restart_runs_a_finished_instance_again_under_its_id_or_a_new_one(hub: client.TaskHubGrpcClient) -> None:
    first = run(hub, sequence, 5)
    same = hub.restart_orchestration(first.instance_id)
    assert same == first.instance_id
    again = hub.wait_for_orchestration_completion(same, timeout=30) or _missing()
    assert again.serialized_output == first.serialized_output
    other = hub.restart_orchestration(first.instance_id, restart_with_new_instance_id=True)
    assert other != first.instance_id
    assert (hub.wait_for_orchestration_completion(other, timeout=30) or _missing()).serialized_output == (
        first.serialized_output)


def test_starting_an_instance_id_twice_is_refused_unless_the_policy_allows_it(hub: client.TaskHubGrpcClient) -> None:
    iid = run(hub, empty).instance_id
    with pytest.raises(grpc.RpcError) as info:
        hub.schedule_new_orchestration(empty, instance_id=iid)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    from durabletask.internal import orchestrator_service_pb2 as dtpb

    policy = dtpb.OrchestrationIdReusePolicy(replaceableStatus=[dtpb.ORCHESTRATION_STATUS_COMPLETED])
    assert hub.schedule_new_orchestration(sequence, input=1, instance_id=iid, reuse_id_policy=policy) == iid
    state = hub.wait_for_orchestration_completion(iid, timeout=30) or _missing()
    assert state.name == "sequence" and state.runtime_status == COMPLETED


def test_the_history_stream_is_the_engine_history(hub: client.TaskHubGrpcClient, server: SidecarServer) -> None:
    state = run(hub, sequence, 1)
    events = hub.get_orchestration_history(state.instance_id)
    stored = server.engine.history(state.instance_id)
    assert len(events) == len(stored)
    assert isinstance(events[1], dt_history.ExecutionStartedEvent)
    assert sum(isinstance(e, dt_history.TaskScheduledEvent) for e in events) == 10
    assert sum(isinstance(e, dt_history.TaskCompletedEvent) for e in events) == 10


def test_unknown_instances_read_as_none(hub: client.TaskHubGrpcClient) -> None:
    assert hub.get_orchestration_state("never-started") is None
    assert hub.wait_for_orchestration_completion("never-started", timeout=5) is None


def _missing() -> Any:
    raise AssertionError("the instance does not exist")


# -- real clock ------------------------------------------------------------------------------------

SHORT_RETRY = task.RetryPolicy(first_retry_interval=timedelta(seconds=0.3), max_number_of_attempts=5,
                               backoff_coefficient=2, retry_timeout=timedelta(seconds=1.5))


def retried_until_timeout(ctx: task.OrchestrationContext, _: Any) -> Any:
    yield ctx.call_activity(throw, retry_policy=SHORT_RETRY)


def test_retry_timeout_stops_the_retries_on_a_real_clock() -> None:
    # durabletask's SDK compares the retry timeout with the wall clock, so it is a real-clock feature. It
    # checks again whenever it replays a failure: attempts run at 0, 0.3 and 0.9 s; the timer for a 4th
    # fires at 2.1 s, past the 1.5 s timeout, and that replay gives up.
    with SidecarServer() as real, running_worker(real.address, [retried_until_timeout], [throw]), \
            client.TaskHubGrpcClient(host_address=real.address, logger=QUIET) as c:
        state = run(c, retried_until_timeout)
    assert state.runtime_status == FAILED and state.failure_details is not None
    assert state.failure_details.message.endswith("Kah-BOOOOM!!!")
    assert calls(state.instance_id, "throw") == 3
