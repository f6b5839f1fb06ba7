"""The work-item stream: disconnects, abandons, lock expiry, several workers, flow control, shutdown,
the virtual clock's jumps, and the service's method table. Most tests drive the stream by hand
(:class:`RawWorker`) so that a worker can misbehave exactly when the test wants it to."""

from __future__ import annotations

import json
import queue
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from durabletask import client as dt_client
from durabletask import task
from durabletask.internal import orchestrator_service_pb2 as dtpb

from wftest import SqliteBackend
from wftest import _events as ev
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.sidecar import SidecarServer

from ._support import QUIET, RawWorker, running_worker, wait_until

OpenRaw = Callable[..., RawWorker]


def greet(ctx: task.ActivityContext, name: str) -> str:
    return f"Hello, {name}!"


def hello(ctx: task.OrchestrationContext, name: str) -> Any:
    return (yield ctx.call_activity(greet, input=name))


def step_result(item: pb.WorkItem, *actions: pb.OrchestratorAction) -> pb.OrchestratorResponse:
    return pb.OrchestratorResponse(instanceId=item.orchestratorRequest.instanceId, actions=list(actions),
                                   completionToken=item.completionToken)


def schedule(task_id: int, name: str, data: str | None) -> pb.OrchestratorAction:
    return ev.schedule_task_action(task_id, name, data)


def complete(result: str | None) -> pb.OrchestratorAction:
    return ev.complete_orchestration_action(99, pb.ORCHESTRATION_STATUS_COMPLETED, result)


def kinds(events: Any) -> list[str]:
    return [e.WhichOneof("eventType") for e in events]


# -- the service's methods -------------------------------------------------------------------------


def test_every_method_of_the_durabletask_service_has_a_handler_with_its_shape(sidecar: SidecarServer) -> None:
    handler = sidecar._service.generic_handler()
    service = dtpb.DESCRIPTOR.services_by_name["TaskHubSidecarService"]
    for method in service.methods:
        found = handler.service(SimpleNamespace(method=f"/TaskHubSidecarService/{method.name}",
                                                invocation_metadata=()))
        assert found is not None, method.name
        assert found.response_streaming == method.server_streaming, method.name
        assert not found.request_streaming


def test_unsupported_methods_answer_unimplemented_and_say_why(sidecar: SidecarServer, raw_worker: OpenRaw) -> None:
    raw = raw_worker()
    with pytest.raises(grpc.RpcError) as info:
        raw.call("CreateTaskHub", pb.CreateTaskHubRequest(), pb.CreateTaskHubResponse)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "task-hub management" in str(info.value.details())


def test_a_completion_with_an_unknown_token_is_refused(sidecar: SidecarServer, raw_worker: OpenRaw) -> None:
    raw = raw_worker()
    with pytest.raises(grpc.RpcError) as info:
        raw.call("CompleteActivityTask", pb.ActivityResponse(instanceId="i", taskId=1, completionToken="bogus"),
                 pb.CompleteTaskResponse)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'bogus'" in str(info.value.details())


# -- the protocol, by hand -------------------------------------------------------------------------


def test_a_worker_drives_an_orchestration_by_hand(dt: dt_client.TaskHubGrpcClient, raw_worker: OpenRaw) -> None:
    raw = raw_worker()
    iid = dt.schedule_new_orchestration("hello", input="World")
    step = raw.next_item()
    assert step.orchestratorRequest.instanceId == iid
    assert kinds(step.orchestratorRequest.newEvents) == ["orchestratorStarted", "executionStarted"]
    assert step.orchestratorRequest.executionId.value  # the execution id is filled in
    raw.call("CompleteOrchestratorTask", step_result(step, schedule(1, "greet", '"World"')), pb.CompleteTaskResponse)
    item = raw.next_item()
    activity = item.activityRequest
    assert (activity.name, activity.taskId, activity.input.value) == ("greet", 1, '"World"')
    assert activity.orchestrationInstance.instanceId == iid
    raw.complete_activity(item, '"Hello, World!"')
    step = raw.next_item()
    assert kinds(step.orchestratorRequest.pastEvents)[-1] == "taskScheduled"
    assert kinds(step.orchestratorRequest.newEvents) == ["orchestratorStarted", "taskCompleted"]
    raw.call("CompleteOrchestratorTask", step_result(step, complete('"Hello, World!"')), pb.CompleteTaskResponse)
    state = dt.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None and state.serialized_output == '"Hello, World!"'


# -- lost work is delivered again ------------------------------------------------------------------


def test_a_step_in_flight_when_its_worker_disconnects_runs_on_the_next_worker(
    sidecar: SidecarServer, dt: dt_client.TaskHubGrpcClient, raw_worker: OpenRaw
) -> None:
    raw = raw_worker()
    iid = dt.schedule_new_orchestration(hello, input="again")
    assert raw.next_item().orchestratorRequest.instanceId == iid
    raw.close()  # crashes without answering
    with running_worker(sidecar.address, [hello], [greet]):
        state = dt.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None and state.serialized_output == json.dumps("Hello, again!")
    assert kinds(sidecar.engine.history(iid)).count("executionStarted") == 1


def test_an_activity_in_flight_when_its_worker_disconnects_runs_on_the_next_worker(
    dt: dt_client.TaskHubGrpcClient, raw_worker: OpenRaw
) -> None:
    first = raw_worker()
    iid = dt.schedule_new_orchestration("hello", input="World")
    step = first.next_item()
    first.call("CompleteOrchestratorTask", step_result(step, schedule(1, "greet", '"World"')), pb.CompleteTaskResponse)
    lost = first.next_item()
    first.close()
    second = raw_worker()
    again = second.next_item()
    assert again.activityRequest == lost.activityRequest and again.completionToken != lost.completionToken
    second.complete_activity(again, '"Hello, World!"')
    step = second.next_item()
    second.call("CompleteOrchestratorTask", step_result(step, complete('"done"')), pb.CompleteTaskResponse)
    assert (dt.wait_for_orchestration_completion(iid, timeout=30) or pytest.fail()).serialized_output == '"done"'


def test_an_abandoned_activity_is_delivered_again(dt: dt_client.TaskHubGrpcClient, raw_worker: OpenRaw) -> None:
    raw = raw_worker()
    dt.schedule_new_orchestration("hello")
    step = raw.next_item()
    raw.call("CompleteOrchestratorTask", step_result(step, schedule(1, "greet", None)), pb.CompleteTaskResponse)
    first = raw.next_item()
    raw.call("AbandonTaskActivityWorkItem", pb.AbandonActivityTaskRequest(completionToken=first.completionToken),
             pb.AbandonActivityTaskResponse)
    again = raw.next_item()
    assert again.activityRequest == first.activityRequest and again.completionToken != first.completionToken


def test_an_abandoned_step_is_delivered_again(dt: dt_client.TaskHubGrpcClient, raw_worker: OpenRaw) -> None:
    raw = raw_worker()
    dt.schedule_new_orchestration("hello")
    first = raw.next_item()
    raw.call("AbandonTaskOrchestratorWorkItem",
             pb.AbandonOrchestrationTaskRequest(completionToken=first.completionToken),
             pb.AbandonOrchestrationTaskResponse)
    again = raw.next_item()  # after the abandon delay, which the virtual clock skips
    assert kinds(again.orchestratorRequest.newEvents)[1:] == kinds(first.orchestratorRequest.newEvents)[1:]
    assert again.completionToken != first.completionToken


def test_work_held_past_the_lock_timeout_is_delivered_again_and_the_late_result_refused() -> None:
    with SidecarServer(virtual_clock=True, lock_timeout=timedelta(seconds=0.3)) as server, \
            dt_client.TaskHubGrpcClient(host_address=server.address, logger=QUIET) as dt:
        raw = RawWorker(server.address)
        try:
            wait_until(lambda: server.dispatcher.connections == 1, "the worker to connect")
            iid = dt.schedule_new_orchestration("hello")
            step = raw.next_item()
            raw.call("CompleteOrchestratorTask", step_result(step, schedule(1, "greet", None)),
                     pb.CompleteTaskResponse)
            slow = raw.next_item()
            again = raw.next_item()  # the lock expired: the same activity, a new token
            assert again.activityRequest == slow.activityRequest
            with pytest.raises(grpc.RpcError) as info:
                raw.complete_activity(slow, '"late"')
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
            raw.complete_activity(again, '"on time"')
            step = raw.next_item()
            assert [e.taskCompleted.result.value for e in step.orchestratorRequest.newEvents
                    if e.HasField("taskCompleted")] == ['"on time"']
            raw.call("CompleteOrchestratorTask", step_result(step, complete(None)), pb.CompleteTaskResponse)
            assert (dt.wait_for_orchestration_completion(iid, timeout=30) or pytest.fail()).runtime_status == (
                dt_client.OrchestrationStatus.COMPLETED)
        finally:
            raw.close()


# -- several workers and flow control --------------------------------------------------------------


def test_work_is_shared_between_connected_workers(sidecar: SidecarServer, dt: dt_client.TaskHubGrpcClient) -> None:
    ran_on: list[str] = []

    def make_work(label: str) -> Callable[..., Any]:
        def work(ctx: task.ActivityContext, n: int) -> int:
            ran_on.append(label)
            return n

        return work

    def spread(ctx: task.OrchestrationContext, count: int) -> Any:
        return (yield task.when_all([ctx.call_activity("work", input=i) for i in range(count)]))

    with running_worker(sidecar.address, [spread], [make_work("a")]), \
            running_worker(sidecar.address, [spread], [make_work("b")]):
        wait_until(lambda: sidecar.dispatcher.connections == 2, "both workers to connect")
        iid = dt.schedule_new_orchestration(spread, input=20)
        state = dt.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None and json.loads(state.serialized_output or "") == list(range(20))
    assert sorted(set(ran_on)) == ["a", "b"]


def test_a_worker_gets_no_more_activities_than_it_asked_for(dt: dt_client.TaskHubGrpcClient,
                                                            raw_worker: OpenRaw) -> None:
    raw = raw_worker(maxConcurrentActivityWorkItems=1)
    dt.schedule_new_orchestration("three")
    step = raw.next_item()
    actions = [schedule(i, "greet", str(i)) for i in (1, 2, 3)]
    raw.call("CompleteOrchestratorTask", step_result(step, *actions), pb.CompleteTaskResponse)
    first = raw.next_item()
    with pytest.raises(queue.Empty):
        raw.items.get(timeout=0.3)  # the second activity waits until the first is done
    raw.complete_activity(first, "1")
    second = raw.next_item()
    assert second.HasField("activityRequest") and second.activityRequest.taskId == 2


# -- virtual clock ---------------------------------------------------------------------------------


def test_the_virtual_clock_waits_for_remote_work_in_flight(
    sidecar: SidecarServer, dt: dt_client.TaskHubGrpcClient, raw_worker: OpenRaw
) -> None:
    raw = raw_worker()
    sleeper = dt.schedule_new_orchestration("sleeper")
    step = raw.next_item()
    fire_at = sidecar.engine.clock.now() + timedelta(days=1)
    raw.call("CompleteOrchestratorTask", step_result(step, ev.create_timer_action(1, fire_at)), pb.CompleteTaskResponse)
    busy = dt.schedule_new_orchestration("busy")
    held = raw.next_item()
    assert held.orchestratorRequest.instanceId == busy
    with pytest.raises(queue.Empty):
        raw.items.get(timeout=0.5)  # the timer does not fire while the worker holds a step
    assert sidecar.engine.clock.now() < fire_at
    raw.call("CompleteOrchestratorTask", step_result(held, complete(None)), pb.CompleteTaskResponse)
    fired = raw.next_item()  # now nothing is in flight: the clock jumps a day
    assert fired.orchestratorRequest.instanceId == sleeper
    assert "timerFired" in kinds(fired.orchestratorRequest.newEvents)
    assert sidecar.engine.clock.now() >= fire_at


# -- actions wftest does not support ---------------------------------------------------------------


def test_an_entity_action_fails_the_orchestration_and_says_why(dt: dt_client.TaskHubGrpcClient,
                                                               raw_worker: OpenRaw) -> None:
    raw = raw_worker()
    iid = dt.schedule_new_orchestration("uses_entities")
    step = raw.next_item()
    action = pb.OrchestratorAction(id=1)
    action.sendEntityMessage.SetInParent()
    raw.call("CompleteOrchestratorTask", step_result(step, action), pb.CompleteTaskResponse)
    state = dt.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None and state.runtime_status == dt_client.OrchestrationStatus.FAILED
    assert state.failure_details is not None and "durable entities" in state.failure_details.message


# -- shutdown --------------------------------------------------------------------------------------


def test_stopping_the_server_ends_the_work_item_streams(sidecar: SidecarServer, raw_worker: OpenRaw) -> None:
    raw = raw_worker()
    sidecar.stop(grace=0.5)
    raw._reader.join(timeout=10)
    assert not raw._reader.is_alive()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "sidecar.db"


def test_a_step_in_flight_at_shutdown_runs_after_a_restart_on_the_same_database(db: Path) -> None:
    backend = SqliteBackend(db)
    with SidecarServer(backend=backend, virtual_clock=True) as first, \
            dt_client.TaskHubGrpcClient(host_address=first.address, logger=QUIET) as dt:
        raw = RawWorker(first.address)
        wait_until(lambda: first.dispatcher.connections == 1, "the worker to connect")
        iid = dt.schedule_new_orchestration(hello, input="after restart")
        raw.next_item()  # taken, never answered
        first.stop(grace=0.2)
        raw.close()
    backend.close()
    backend = SqliteBackend(db)
    try:
        with SidecarServer(backend=backend, virtual_clock=True) as second, \
                dt_client.TaskHubGrpcClient(host_address=second.address, logger=QUIET) as dt, \
                running_worker(second.address, [hello], [greet]):
            state = dt.wait_for_orchestration_completion(iid, timeout=30)
        assert state is not None and state.serialized_output == json.dumps("Hello, after restart!")
    finally:
        backend.close()
