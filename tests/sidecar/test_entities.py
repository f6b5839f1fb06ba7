"""Durable entities through wftest's sidecar, driven by the real ``durabletask`` client and worker (1.12).

One sidecar (virtual clock, in memory) and one worker serve most of the module (a durabletask worker takes a
second to stop); every test uses its own entity keys and instance ids. A sqlite-backed run checks that
entities survive a restart, and raw work-item streams check the protocol (one batch per entity, abandon).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from durabletask import client, entities, task
from durabletask import worker as dt_worker
from durabletask.entities import DurableEntity, EntityInstanceId
from google.protobuf import message

from wftest.backends.sqlite import SqliteBackend
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.sidecar import SidecarServer

from ._support import QUIET, RawWorker, wait_until

COMPLETED = client.OrchestrationStatus.COMPLETED
TERMINATED = client.OrchestrationStatus.TERMINATED


# -- entities --------------------------------------------------------------------------------------


def counter(ctx: entities.EntityContext, value: Any) -> Any:
    """A function entity: add, get, reset, delete, fail (after changing its state: the change is rolled back)."""
    state = ctx.get_state(int, 0)
    if ctx.operation == "add":
        ctx.set_state(state + value)
    elif ctx.operation == "get":
        return state
    elif ctx.operation == "delete":
        ctx.set_state(None)
    elif ctx.operation == "fail":
        ctx.set_state(state + 1000)
        raise ValueError(f"counter refuses, state was {state}")
    elif ctx.operation == "forward":  # a signal to another entity and a new orchestration
        ctx.signal_entity(EntityInstanceId("counter", value["to"]), "add", 1)
        ctx.schedule_new_orchestration("entity_started", input=value["to"], instance_id=value["start"])
    return None


class Account(DurableEntity):
    """A class entity: each method is an operation."""

    def deposit(self, amount: int) -> int:
        balance = self.get_state(int, 0) + amount
        self.set_state(balance)
        return balance

    def withdraw(self, amount: int) -> int:
        balance = self.get_state(int, 0)
        if amount > balance:
            raise ValueError(f"insufficient funds: {balance} < {amount}")
        self.set_state(balance - amount)
        return balance - amount

    def balance(self) -> int:
        return self.get_state(int, 0)


# -- orchestrators ---------------------------------------------------------------------------------


def call_counter(ctx: task.OrchestrationContext, key: str) -> Any:
    entity = EntityInstanceId("counter", key)
    ctx.signal_entity(entity, "add", input=5)
    before = yield ctx.call_entity(entity, "get")
    yield ctx.call_entity(entity, "add", input=10)
    after = yield ctx.call_entity(entity, "get")
    return [before, after]


def call_failing(ctx: task.OrchestrationContext, key: str) -> Any:
    entity = EntityInstanceId("counter", key)
    try:
        yield ctx.call_entity(entity, "fail")
    except task.TaskFailedError as err:
        state = yield ctx.call_entity(entity, "get")
        return {"error": err.details.message, "state": state}
    return "no failure"


def transfer(ctx: task.OrchestrationContext, request: dict[str, Any]) -> Any:
    source = EntityInstanceId("account", request["from"])
    target = EntityInstanceId("account", request["to"])
    with (yield ctx.lock_entities([source, target])):
        balance = yield ctx.call_entity(source, "balance")
        yield ctx.wait_for_external_event("go")  # the test looks at the locks meanwhile
        if balance >= request["amount"]:
            yield ctx.call_entity(source, "withdraw", input=request["amount"])
            yield ctx.call_entity(target, "deposit", input=request["amount"])
    final = yield ctx.call_entity(source, "balance")
    return final


def hold_lock(ctx: task.OrchestrationContext, key: str) -> Any:
    with (yield ctx.lock_entities([EntityInstanceId("counter", key)])):
        yield ctx.wait_for_external_event("never")
    return None


def signal_later(ctx: task.OrchestrationContext, key: str) -> Any:
    when = ctx.current_utc_datetime + timedelta(days=1)
    ctx.signal_entity(EntityInstanceId("counter", key), "add", input=1, signal_time=when)
    return when.isoformat()


def entity_started(ctx: task.OrchestrationContext, key: str) -> Any:
    return f"started for {key}"


ORCHESTRATORS = [call_counter, call_failing, transfer, hold_lock, signal_later, entity_started]


# -- fixtures and helpers ----------------------------------------------------------------------------


@contextlib.contextmanager
def entity_worker(address: str) -> Iterator[dt_worker.TaskHubGrpcWorker]:
    """A started durabletask worker with this module's entities and orchestrators."""
    w = dt_worker.TaskHubGrpcWorker(host_address=address, logger=QUIET)
    w.add_entity(counter)
    w.add_entity(Account)
    for fn in ORCHESTRATORS:
        w.add_orchestrator(fn)
    w.start()
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture(scope="module")
def server() -> Iterator[SidecarServer]:
    with SidecarServer(virtual_clock=True) as sidecar, entity_worker(sidecar.address):
        yield sidecar


@pytest.fixture(scope="module")
def hub(server: SidecarServer) -> Iterator[client.TaskHubGrpcClient]:
    with client.TaskHubGrpcClient(host_address=server.address, logger=QUIET) as c:
        yield c


def key() -> str:
    return uuid.uuid4().hex[:10]


def state_of(hub: client.TaskHubGrpcClient, entity: EntityInstanceId) -> Any:
    metadata = hub.get_entity(entity)
    return None if metadata is None else metadata.get_typed_state()


def wait_for_state(hub: client.TaskHubGrpcClient, entity: EntityInstanceId, expected: Any) -> None:
    wait_until(lambda: state_of(hub, entity) == expected, f"{entity} to hold {expected!r}")


def call(address: str, method: str, request: message.Message, response_type: Any) -> Any:
    """One unary RPC of the service, on its own channel (no work-item stream)."""
    with grpc.insecure_channel(address) as channel:
        rpc = channel.unary_unary(f"/TaskHubSidecarService/{method}",
                                  request_serializer=type(request).SerializeToString,
                                  response_deserializer=response_type.FromString)
        return rpc(request, timeout=10)


def locked_by(address: str, entity: EntityInstanceId) -> str:
    """The raw ``lockedBy`` of ``GetEntity`` (the SDK's ``get_locked_by()`` parses it as an entity id)."""
    response = call(address, "GetEntity", pb.GetEntityRequest(instanceId=str(entity)), pb.GetEntityResponse)
    return str(response.entity.lockedBy.value)


def run(hub: client.TaskHubGrpcClient, orchestrator: Callable[..., Any], value: Any) -> client.OrchestrationState:
    iid = hub.schedule_new_orchestration(orchestrator, input=value)
    state = hub.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None
    return state


# -- client signals and reads --------------------------------------------------------------------------


def test_signals_from_the_client_add_up_in_a_function_entity(hub: client.TaskHubGrpcClient) -> None:
    entity = EntityInstanceId("counter", key())
    for value in (3, 4, 5):
        hub.signal_entity(entity, "add", input=value)
    wait_for_state(hub, entity, 12)
    metadata = hub.get_entity(entity)
    assert metadata is not None and str(metadata.id) == str(entity)
    assert metadata.backlog_queue_size == 0 and metadata.get_locked_by() is None


def test_an_entity_that_never_ran_does_not_exist(hub: client.TaskHubGrpcClient) -> None:
    assert hub.get_entity(EntityInstanceId("counter", key())) is None


def test_a_durable_entity_class_runs_its_methods(hub: client.TaskHubGrpcClient) -> None:
    entity = EntityInstanceId("account", key())
    hub.signal_entity(entity, "deposit", input=100)
    hub.signal_entity(entity, "withdraw", input=30)
    hub.signal_entity(entity, "withdraw", input=1000)  # raises in the entity: the state stays as it was
    hub.signal_entity(entity, "deposit", input=1)
    wait_for_state(hub, entity, 71)


def test_state_can_be_read_without_the_payload(hub: client.TaskHubGrpcClient) -> None:
    entity = EntityInstanceId("counter", key())
    hub.signal_entity(entity, "add", input=1)
    wait_for_state(hub, entity, 1)
    metadata = hub.get_entity(entity, include_state=False)
    assert metadata is not None and not metadata.includes_state


def test_entity_ids_are_not_orchestration_instances(hub: client.TaskHubGrpcClient, server: SidecarServer) -> None:
    entity = EntityInstanceId("counter", key())
    hub.signal_entity(entity, "add", input=1)
    wait_for_state(hub, entity, 1)
    assert hub.get_orchestration_state(str(entity)) is None
    assert all(not s.instance_id.startswith("@") for s in hub.get_all_orchestration_states())
    with pytest.raises(grpc.RpcError) as info:
        call(server.address, "StartInstance", pb.CreateInstanceRequest(instanceId=str(entity), name="call_counter"),
             pb.CreateInstanceResponse)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "entity" in str(info.value.details())


def test_a_signal_to_something_that_is_not_an_entity_id_is_refused(server: SidecarServer) -> None:
    with pytest.raises(grpc.RpcError) as info:
        call(server.address, "SignalEntity", pb.SignalEntityRequest(instanceId="counter-1", name="add"),
             pb.SignalEntityResponse)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "@name@key" in str(info.value.details())


# -- orchestrations and entities -------------------------------------------------------------------------


def test_an_orchestration_calls_an_entity_and_gets_its_results(hub: client.TaskHubGrpcClient,
                                                                server: SidecarServer) -> None:
    k = key()
    state = run(hub, call_counter, k)
    assert state.runtime_status == COMPLETED and state.serialized_output == "[5, 15]"
    kinds = [e.WhichOneof("eventType") for e in server.engine.history(state.instance_id)]
    assert kinds.count("entityOperationSignaled") == 1 and kinds.count("entityOperationCalled") == 3
    assert kinds.count("entityOperationCompleted") == 3
    wait_for_state(hub, EntityInstanceId("counter", k), 15)


def test_a_failing_operation_fails_the_call_and_its_state_change_is_undone(hub: client.TaskHubGrpcClient,
                                                                            server: SidecarServer) -> None:
    k = key()
    hub.signal_entity(EntityInstanceId("counter", k), "add", input=7)
    state = run(hub, call_failing, k)
    assert state.runtime_status == COMPLETED and state.serialized_output is not None
    assert "counter refuses, state was 7" in state.serialized_output
    assert '"state": 7' in state.serialized_output
    failed = [e for e in server.engine.history(state.instance_id) if e.HasField("entityOperationFailed")]
    assert len(failed) == 1
    assert failed[0].entityOperationFailed.failureDetails.errorType.endswith("ValueError")


def test_a_critical_section_holds_its_entities_until_it_ends(hub: client.TaskHubGrpcClient,
                                                              server: SidecarServer) -> None:
    source, target = EntityInstanceId("account", key()), EntityInstanceId("account", key())
    hub.signal_entity(source, "deposit", input=50)
    wait_for_state(hub, source, 50)
    iid = hub.schedule_new_orchestration(transfer, input={"from": source.key, "to": target.key, "amount": 20})
    wait_until(lambda: locked_by(server.address, source) == iid and locked_by(server.address, target) == iid,
               "the locks to be granted")
    # a signal from outside the critical section waits for the unlock
    hub.signal_entity(source, "deposit", input=1000)
    wait_until(lambda: (m := hub.get_entity(source)) is not None and m.backlog_queue_size == 1,
               "the signal to wait for the lock")
    assert state_of(hub, source) == 50
    hub.raise_orchestration_event(iid, "go")
    state = hub.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None and state.runtime_status == COMPLETED
    # the unlock reaches the entity before the call after the section: the waiting deposit runs first
    assert state.serialized_output == "1030"
    assert state_of(hub, target) == 20
    assert locked_by(server.address, source) == "" and locked_by(server.address, target) == ""
    kinds = [e.WhichOneof("eventType") for e in server.engine.history(iid)]
    assert kinds.count("entityLockRequested") == 1 and kinds.count("entityLockGranted") == 1
    assert kinds.count("entityUnlockSent") == 2


def test_a_delayed_signal_arrives_in_virtual_time(hub: client.TaskHubGrpcClient, server: SidecarServer) -> None:
    k = key()
    state = run(hub, signal_later, k)
    assert state.runtime_status == COMPLETED
    wait_for_state(hub, EntityInstanceId("counter", k), 1)
    assert state.serialized_output is not None
    due = state.serialized_output.strip('"')
    assert server.engine.clock.now().isoformat() >= due[:19]


def test_an_entity_signals_another_entity_and_starts_an_orchestration(hub: client.TaskHubGrpcClient) -> None:
    source, other, started = key(), key(), f"from-entity-{key()}"
    hub.signal_entity(EntityInstanceId("counter", source), "forward", input={"to": other, "start": started})
    wait_for_state(hub, EntityInstanceId("counter", other), 1)
    state = hub.wait_for_orchestration_completion(started, timeout=30)
    assert state is not None and state.runtime_status == COMPLETED
    assert state.serialized_output == f'"started for {other}"'


# -- query and clean ---------------------------------------------------------------------------------------


def test_query_pages_through_entities_by_prefix(hub: client.TaskHubGrpcClient) -> None:
    prefix = key()
    ids = [EntityInstanceId("counter", f"{prefix}-{n}") for n in range(5)]
    for n, entity in enumerate(ids):
        hub.signal_entity(entity, "add", input=n + 1)
    for n, entity in enumerate(ids):
        wait_for_state(hub, entity, n + 1)
    found = hub.get_all_entities(client.EntityQuery(instance_id_starts_with=f"@counter@{prefix}", page_size=2))
    assert [str(m.id) for m in found] == sorted(str(e) for e in ids)
    assert [m.get_typed_state() for m in found] == [1, 2, 3, 4, 5]
    by_name = hub.get_all_entities(client.EntityQuery(instance_id_starts_with="account", include_state=False))
    assert all(m.id.entity == "account" and not m.includes_state for m in by_name)


def test_clean_removes_empty_entities(hub: client.TaskHubGrpcClient, server: SidecarServer) -> None:
    entity = EntityInstanceId("counter", key())
    hub.signal_entity(entity, "add", input=1)
    wait_for_state(hub, entity, 1)
    hub.signal_entity(entity, "delete")
    query = client.EntityQuery(instance_id_starts_with=str(entity), include_transient=True)
    wait_until(lambda: [m.get_typed_state() for m in hub.get_all_entities(query)] == [None], "the state to be deleted")
    assert hub.get_entity(entity) is None
    result = hub.clean_entity_storage()
    assert result.empty_entities_removed >= 1
    assert hub.get_all_entities(query) == []
    assert server.engine.backend.get_instance(str(entity)) is None


def test_a_terminated_orchestration_releases_its_locks(hub: client.TaskHubGrpcClient, server: SidecarServer) -> None:
    entity = EntityInstanceId("counter", key())
    iid = hub.schedule_new_orchestration(hold_lock, input=entity.key)
    wait_until(lambda: locked_by(server.address, entity) == iid, "the lock to be granted")
    hub.signal_entity(entity, "add", input=2)  # waits for the lock
    hub.terminate_orchestration(iid)
    state = hub.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None and state.runtime_status == TERMINATED
    wait_for_state(hub, entity, 2)  # the SDK unlocks when terminated
    assert locked_by(server.address, entity) == ""


# -- durability ----------------------------------------------------------------------------------------------


def test_entities_survive_a_restart_with_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "entities.db"
    entity = EntityInstanceId("counter", "persisted")
    with SidecarServer(backend=SqliteBackend(path), virtual_clock=True) as sidecar, entity_worker(sidecar.address), \
            client.TaskHubGrpcClient(host_address=sidecar.address, logger=QUIET) as c:
        c.signal_entity(entity, "add", input=40)
        state = run(c, call_counter, entity.key)
        assert state.runtime_status == COMPLETED and state.serialized_output == "[45, 55]"
        wait_for_state(c, entity, 55)
    with SidecarServer(backend=SqliteBackend(path)) as again, \
            client.TaskHubGrpcClient(host_address=again.address, logger=QUIET) as c:
        assert state_of(c, entity) == 55
        assert [str(m.id) for m in c.get_all_entities()] == [str(entity)]
        assert c.get_orchestration_state(state.instance_id) is not None


# -- the protocol, with a hand-driven worker --------------------------------------------------------------


def test_operations_that_wait_go_out_as_one_batch_and_an_abandoned_batch_comes_back(
        sidecar: SidecarServer, raw_worker: Callable[..., RawWorker]) -> None:
    entity = "@counter@raw"
    for n in range(3):
        call(sidecar.address, "SignalEntity",
             pb.SignalEntityRequest(instanceId=entity, name="add", requestId=f"r{n}", input=_json(n)),
             pb.SignalEntityResponse)
    raw = raw_worker()
    item = raw.next_item()
    assert item.WhichOneof("request") == "entityRequestV2"
    request = item.entityRequestV2
    assert request.instanceId == entity and not request.HasField("entityState")
    assert [e.entityOperationSignaled.requestId for e in request.operationRequests] == ["r0", "r1", "r2"]
    raw.call("AbandonTaskEntityWorkItem", pb.AbandonEntityTaskRequest(completionToken=item.completionToken),
             pb.AbandonEntityTaskResponse)
    again = raw.next_item()  # after the abandon delay, in virtual time
    assert [e.entityOperationSignaled.requestId for e in again.entityRequestV2.operationRequests] == ["r0", "r1", "r2"]
    result = pb.EntityBatchResult(completionToken=again.completionToken,
                                  results=[pb.OperationResult(success=pb.OperationResultSuccess())] * 3)
    result.entityState.value = "3"
    raw.call("CompleteEntityTask", result, pb.CompleteTaskResponse)
    response = call(sidecar.address, "GetEntity", pb.GetEntityRequest(instanceId=entity, includeState=True),
                    pb.GetEntityResponse)
    assert response.exists and response.entity.serializedState.value == "3"
    with pytest.raises(grpc.RpcError) as info:
        raw.call("CompleteEntityTask", result, pb.CompleteTaskResponse)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_clean_releases_a_lock_whose_orchestration_finished_without_unlocking(
        dt: client.TaskHubGrpcClient, sidecar: SidecarServer, raw_worker: Callable[..., RawWorker]) -> None:
    raw = raw_worker()
    iid = dt.schedule_new_orchestration("careless")
    step = raw.next_item()
    lock = pb.OrchestratorAction(id=1)
    lock.sendEntityMessage.entityLockRequested.criticalSectionId = "section-1"
    lock.sendEntityMessage.entityLockRequested.lockSet.append("@counter@orphan")
    lock.sendEntityMessage.entityLockRequested.parentInstanceId.value = iid
    done = pb.OrchestratorAction(id=2)
    done.completeOrchestration.orchestrationStatus = pb.ORCHESTRATION_STATUS_COMPLETED
    raw.call("CompleteOrchestratorTask", pb.OrchestratorResponse(instanceId=iid, actions=[lock, done],
                                                                 completionToken=step.completionToken),
             pb.CompleteTaskResponse)
    assert dt.wait_for_orchestration_completion(iid, timeout=30) is not None
    wait_until(lambda: locked_by(sidecar.address, EntityInstanceId("counter", "orphan")) == iid,
               "the lock to be granted to the finished orchestration")
    dt.signal_entity(EntityInstanceId("counter", "orphan"), "add", input=1)  # waits for the lock
    wait_until(lambda: sidecar.engine.backend.get_instance("@counter@orphan").history_length == 2,  # type: ignore
               "the signal to wait")
    result = dt.clean_entity_storage()
    assert result.orphaned_locks_released == 1 and result.empty_entities_removed == 0
    item = raw.next_item()  # the signal runs now
    assert [e.entityOperationSignaled.operation for e in item.entityRequestV2.operationRequests] == ["add"]
    result_message = pb.EntityBatchResult(completionToken=item.completionToken,
                                          results=[pb.OperationResult(success=pb.OperationResultSuccess())])
    result_message.entityState.value = "1"
    raw.call("CompleteEntityTask", result_message, pb.CompleteTaskResponse)
    metadata = dt.get_entity(EntityInstanceId("counter", "orphan"))
    assert metadata is not None and metadata.get_typed_state() == 1
    assert locked_by(sidecar.address, EntityInstanceId("counter", "orphan")) == ""


def test_an_entity_message_without_a_target_fails_the_orchestration_and_says_why(
        dt: client.TaskHubGrpcClient, raw_worker: Callable[..., RawWorker]) -> None:
    raw = raw_worker()
    iid = dt.schedule_new_orchestration("sloppy")
    step = raw.next_item()
    signal = pb.OrchestratorAction(id=1)
    signal.sendEntityMessage.entityOperationSignaled.operation = "add"
    signal.sendEntityMessage.entityOperationSignaled.targetInstanceId.value = "not-an-entity"
    raw.call("CompleteOrchestratorTask", pb.OrchestratorResponse(instanceId=iid, actions=[signal],
                                                                 completionToken=step.completionToken),
             pb.CompleteTaskResponse)
    state = dt.wait_for_orchestration_completion(iid, timeout=30)
    assert state is not None and state.runtime_status == client.OrchestrationStatus.FAILED
    assert state.failure_details is not None and "'not-an-entity' is not an entity id" in state.failure_details.message


def _json(value: Any) -> Any:
    from google.protobuf import wrappers_pb2

    return wrappers_pb2.StringValue(value=str(value))
