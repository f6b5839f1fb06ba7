"""The RPCs of durabletask's ``TaskHubSidecarService``, implemented on wftest's engine.

Handlers are registered by path, ``/TaskHubSidecarService/<Method>`` (the unqualified service name the
SDKs call; wftest's ``.proto`` has a package and declares no service, see its header). Every method of
the service has a handler; those wftest does not support (task-hub management, ...) answer
``UNIMPLEMENTED`` with a sentence that says so, instead of gRPC's bare "Method not found".

Client-side management (start, signal, terminate, suspend, resume, purge, query) goes through the
engine's ``TaskHubClient`` with payloads passed through as JSON text; work items go through the
:class:`~wftest.sidecar._dispatch.Dispatcher`.

Durable entities (``SignalEntity``, ``GetEntity``, ``QueryEntities``, ``CleanEntityStorage``,
``CompleteEntityTask``, ``AbandonTaskEntityWorkItem``) are in :mod:`wftest.sidecar._entities`: an entity
``@name@key`` is a backend instance under that id, so the orchestration RPCs here do not show it
(``GetInstance`` says it does not exist, queries leave it out) and refuse to start an orchestration
under an id that starts with ``@``.
"""

from __future__ import annotations

import functools
import logging
import queue
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, NoReturn, TypeVar

from google.protobuf import empty_pb2, wrappers_pb2

from wftest.backends import IdReusePolicy, InstanceQuery
from wftest.errors import (
    InstanceAlreadyExistsError,
    InstanceNotCompletedError,
    InstanceNotFoundError,
    LockLostError,
    OrchestrationStateError,
)
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.runtime import PENDING, InstanceRecord, created_children, is_terminal
from wftest.sidecar._convert import orchestration_state, string_value, to_datetime
from wftest.sidecar._dispatch import CLOSE, Dispatcher, SidecarEngine, UnknownTokenError
from wftest.sidecar._entities import (
    clean_entity_storage,
    complete_entity_batch,
    get_entity,
    is_entity_id,
    query_entities,
    signal_entity,
)

logger = logging.getLogger("wftest.sidecar")

#: the service name in RPC paths (``/TaskHubSidecarService/Hello``)
SERVICE_NAME = "TaskHubSidecarService"

#: the largest page a query returns when the request does not say
_DEFAULT_PAGE_SIZE = 100
#: history events per ``HistoryChunk`` of ``StreamInstanceHistory``
_HISTORY_CHUNK = 500
#: how often a ``Wait*`` RPC looks again when nothing wakes it (another process on a shared database)
_WAIT_POLL_SECONDS = 0.25

_UNSUPPORTED = {
    "CreateTaskHub": "task-hub management (the task hub is the server's database)",
    "DeleteTaskHub": "task-hub management (the task hub is the server's database)",
    "SkipGracefulOrchestrationTerminations": "skipping graceful terminations",
}

Handler = TypeVar("Handler", bound=Callable[..., Any])


def _grpc() -> Any:
    try:
        import grpc
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("wftest's sidecar needs grpcio: pip install 'wftest[grpc]'") from err
    return grpc


def _abort(context: Any, code_name: str, message: str) -> NoReturn:
    context.abort(getattr(_grpc().StatusCode, code_name), message)
    raise AssertionError("context.abort() returned")  # pragma: no cover


def _errors_to_status(handler: Handler) -> Handler:
    """Turn wftest's errors into gRPC status codes with their message."""

    @functools.wraps(handler)
    def wrapped(self: SidecarService, request: Any, context: Any) -> Any:
        try:
            return handler(self, request, context)
        except (InstanceNotFoundError, UnknownTokenError) as err:
            _abort(context, "NOT_FOUND", str(err))
        except InstanceAlreadyExistsError as err:
            _abort(context, "ALREADY_EXISTS", str(err))
        except InstanceNotCompletedError as err:
            _abort(context, "FAILED_PRECONDITION", str(err))
        except LockLostError as err:
            _abort(context, "ABORTED", str(err))
        except (ValueError, TypeError) as err:
            _abort(context, "INVALID_ARGUMENT", str(err))

    return wrapped  # type: ignore[return-value]


class SidecarService:
    """The RPC handlers. Method names are the RPC names; each takes ``(request, context)``."""

    def __init__(self, engine: SidecarEngine, dispatcher: Dispatcher, *, ping_interval: float) -> None:
        self.engine = engine
        self.backend = engine.backend
        self.client = engine.client
        self.dispatcher = dispatcher
        self.ping_interval = ping_interval

    # -- registration -------------------------------------------------------------------------------

    def generic_handler(self) -> Any:
        """A gRPC generic handler serving every method of the service at ``/TaskHubSidecarService/<Method>``."""
        grpc = _grpc()
        unary = grpc.unary_unary_rpc_method_handler
        stream = grpc.unary_stream_rpc_method_handler

        def rpc(kind: Any, method: Callable[..., Any], request_type: Any, response_type: Any) -> Any:
            return kind(method, request_deserializer=request_type.FromString,
                        response_serializer=response_type.SerializeToString)

        handlers = {
            "Hello": rpc(unary, self.Hello, empty_pb2.Empty, empty_pb2.Empty),
            "StartInstance": rpc(unary, self.StartInstance, pb.CreateInstanceRequest, pb.CreateInstanceResponse),
            "GetInstance": rpc(unary, self.GetInstance, pb.GetInstanceRequest, pb.GetInstanceResponse),
            "RestartInstance": rpc(unary, self.RestartInstance, pb.RestartInstanceRequest,
                                   pb.RestartInstanceResponse),
            "WaitForInstanceStart": rpc(unary, self.WaitForInstanceStart, pb.GetInstanceRequest,
                                        pb.GetInstanceResponse),
            "WaitForInstanceCompletion": rpc(unary, self.WaitForInstanceCompletion, pb.GetInstanceRequest,
                                             pb.GetInstanceResponse),
            "RaiseEvent": rpc(unary, self.RaiseEvent, pb.RaiseEventRequest, pb.RaiseEventResponse),
            "TerminateInstance": rpc(unary, self.TerminateInstance, pb.TerminateRequest, pb.TerminateResponse),
            "SuspendInstance": rpc(unary, self.SuspendInstance, pb.SuspendRequest, pb.SuspendResponse),
            "ResumeInstance": rpc(unary, self.ResumeInstance, pb.ResumeRequest, pb.ResumeResponse),
            "QueryInstances": rpc(unary, self.QueryInstances, pb.QueryInstancesRequest, pb.QueryInstancesResponse),
            "ListInstanceIds": rpc(unary, self.ListInstanceIds, pb.ListInstanceIdsRequest,
                                   pb.ListInstanceIdsResponse),
            "PurgeInstances": rpc(unary, self.PurgeInstances, pb.PurgeInstancesRequest, pb.PurgeInstancesResponse),
            "RewindInstance": rpc(unary, self.RewindInstance, pb.RewindInstanceRequest, pb.RewindInstanceResponse),
            "GetWorkItems": rpc(stream, self.GetWorkItems, pb.GetWorkItemsRequest, pb.WorkItem),
            "CompleteActivityTask": rpc(unary, self.CompleteActivityTask, pb.ActivityResponse,
                                        pb.CompleteTaskResponse),
            "CompleteOrchestratorTask": rpc(unary, self.CompleteOrchestratorTask, pb.OrchestratorResponse,
                                            pb.CompleteTaskResponse),
            "StreamInstanceHistory": rpc(stream, self.StreamInstanceHistory, pb.StreamInstanceHistoryRequest,
                                         pb.HistoryChunk),
            "AbandonTaskActivityWorkItem": rpc(unary, self.AbandonTaskActivityWorkItem, pb.AbandonActivityTaskRequest,
                                               pb.AbandonActivityTaskResponse),
            "AbandonTaskOrchestratorWorkItem": rpc(unary, self.AbandonTaskOrchestratorWorkItem,
                                                   pb.AbandonOrchestrationTaskRequest,
                                                   pb.AbandonOrchestrationTaskResponse),
            "SignalEntity": rpc(unary, self.SignalEntity, pb.SignalEntityRequest, pb.SignalEntityResponse),
            "GetEntity": rpc(unary, self.GetEntity, pb.GetEntityRequest, pb.GetEntityResponse),
            "QueryEntities": rpc(unary, self.QueryEntities, pb.QueryEntitiesRequest, pb.QueryEntitiesResponse),
            "CleanEntityStorage": rpc(unary, self.CleanEntityStorage, pb.CleanEntityStorageRequest,
                                      pb.CleanEntityStorageResponse),
            "CompleteEntityTask": rpc(unary, self.CompleteEntityTask, pb.EntityBatchResult, pb.CompleteTaskResponse),
            "AbandonTaskEntityWorkItem": rpc(unary, self.AbandonTaskEntityWorkItem, pb.AbandonEntityTaskRequest,
                                             pb.AbandonEntityTaskResponse),
        }
        for method, what in _UNSUPPORTED.items():
            handlers[method] = grpc.unary_unary_rpc_method_handler(_unsupported(method, what))
        return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)

    # -- connection ---------------------------------------------------------------------------------

    def Hello(self, request: empty_pb2.Empty, context: Any) -> empty_pb2.Empty:
        """Connection check; workers call it before ``GetWorkItems``."""
        return empty_pb2.Empty()

    # -- instances ----------------------------------------------------------------------------------

    @_errors_to_status
    def StartInstance(self, request: pb.CreateInstanceRequest, context: Any) -> pb.CreateInstanceResponse:
        """Create an instance; ``orchestrationIdReusePolicy.replaceableStatus`` lists the statuses it may replace."""
        if not request.name:
            raise ValueError("StartInstance: the orchestrator name is empty")
        if is_entity_id(request.instanceId):
            raise ValueError(f"StartInstance: instance ids that start with '@' are entity ids "
                             f"({request.instanceId!r}); signal the entity instead")
        instance_id = request.instanceId or uuid.uuid4().hex
        policy = IdReusePolicy.ERROR
        replaceable = set(request.orchestrationIdReusePolicy.replaceableStatus)
        if replaceable:
            existing = self.backend.get_instance(instance_id)
            if existing is not None and existing.status in replaceable:
                policy = IdReusePolicy.TERMINATE
        start_at = to_datetime(request.scheduledStartTimestamp) if request.HasField("scheduledStartTimestamp") else None
        self.client.schedule_new_orchestration(
            request.name,
            input=string_value(request, "input"),
            instance_id=instance_id,
            start_at=start_at,
            reuse_id_policy=policy,
            tags=dict(request.tags) or None,
            version=string_value(request, "version"),
            parent_trace_context=request.parentTraceContext if request.HasField("parentTraceContext") else None,
        )
        self._changed()
        return pb.CreateInstanceResponse(instanceId=instance_id)

    @_errors_to_status
    def GetInstance(self, request: pb.GetInstanceRequest, context: Any) -> pb.GetInstanceResponse:
        """The instance's state (``exists = false`` for an unknown id)."""
        self.dispatcher.client_call()  # a client polling the state may act on it next (see Dispatcher.client_waiting)
        record = None if is_entity_id(request.instanceId) else self.backend.get_instance(request.instanceId)
        return _instance_response(record, request.getInputsAndOutputs)

    @_errors_to_status
    def WaitForInstanceStart(self, request: pb.GetInstanceRequest, context: Any) -> pb.GetInstanceResponse:
        """Block until the instance is no longer PENDING (or the call's deadline passes)."""
        return self._wait(request, context, lambda r: r.status != PENDING, "start")

    @_errors_to_status
    def WaitForInstanceCompletion(self, request: pb.GetInstanceRequest, context: Any) -> pb.GetInstanceResponse:
        """Block until the instance is COMPLETED, FAILED or TERMINATED (or the call's deadline passes)."""
        return self._wait(request, context, lambda r: is_terminal(r.status), "complete")

    def _wait(self, request: pb.GetInstanceRequest, context: Any, done: Callable[[InstanceRecord], bool],
              what: str) -> pb.GetInstanceResponse:
        dispatcher = self.dispatcher
        with dispatcher.client_waiting():
            while True:
                record = None if is_entity_id(request.instanceId) else self.backend.get_instance(request.instanceId)
                if record is None or done(record):
                    return _instance_response(record, request.getInputsAndOutputs)
                if dispatcher.stopping:
                    _abort(context, "UNAVAILABLE", "the sidecar is shutting down")
                if not context.is_active():
                    _abort(context, "CANCELLED", "the caller went away")
                remaining = context.time_remaining()
                if remaining is not None and remaining <= 0:
                    _abort(context, "DEADLINE_EXCEEDED", f"instance {request.instanceId!r} did not {what} in time")
                dispatcher.wait_for_status(
                    _WAIT_POLL_SECONDS if remaining is None else min(_WAIT_POLL_SECONDS, remaining))

    @_errors_to_status
    def RaiseEvent(self, request: pb.RaiseEventRequest, context: Any) -> pb.RaiseEventResponse:
        """Queue an external event for the instance (``NOT_FOUND`` for an unknown id)."""
        self.client.raise_orchestration_event(request.instanceId, request.name, data=string_value(request, "input"))
        self._changed()
        return pb.RaiseEventResponse()

    @_errors_to_status
    def TerminateInstance(self, request: pb.TerminateRequest, context: Any) -> pb.TerminateResponse:
        """Terminate the instance (and, with ``recursive``, its running sub-orchestrations)."""
        self.client.terminate_orchestration(request.instanceId, output=string_value(request, "output"),
                                            recursive=request.recursive)
        self._changed()
        return pb.TerminateResponse()

    @_errors_to_status
    def SuspendInstance(self, request: pb.SuspendRequest, context: Any) -> pb.SuspendResponse:
        """Suspend the instance: its events wait until it is resumed."""
        self.client.suspend_orchestration(request.instanceId, reason=string_value(request, "reason"))
        self._changed()
        return pb.SuspendResponse()

    @_errors_to_status
    def ResumeInstance(self, request: pb.ResumeRequest, context: Any) -> pb.ResumeResponse:
        """Resume a suspended instance."""
        self.client.resume_orchestration(request.instanceId, reason=string_value(request, "reason"))
        self._changed()
        return pb.ResumeResponse()

    @_errors_to_status
    def RestartInstance(self, request: pb.RestartInstanceRequest, context: Any) -> pb.RestartInstanceResponse:
        """Start a finished instance again with its name and input, under its id or a new one."""
        record = self.backend.get_instance(request.instanceId)
        if record is None:
            raise InstanceNotFoundError(request.instanceId)
        if not is_terminal(record.status):
            raise InstanceNotCompletedError(request.instanceId, _status_name(record.status), "restart")
        new_id = uuid.uuid4().hex if request.restartWithNewInstanceId else request.instanceId
        self.client.schedule_new_orchestration(record.name, input=record.input, instance_id=new_id,
                                               reuse_id_policy=IdReusePolicy.TERMINATE, version=record.version)
        self._changed()
        return pb.RestartInstanceResponse(instanceId=new_id)

    @_errors_to_status
    def RewindInstance(self, request: pb.RewindInstanceRequest, context: Any) -> pb.RewindInstanceResponse:
        """Rewind a FAILED instance: its failed activities and sub-orchestrations run again, the rest is kept
        (``NOT_FOUND`` for an unknown id, ``FAILED_PRECONDITION`` if it is not FAILED)."""
        try:
            self.client.rewind_orchestration(request.instanceId, reason=string_value(request, "reason"))
        except OrchestrationStateError as err:
            _abort(context, "FAILED_PRECONDITION", str(err))
        self._changed()
        return pb.RewindInstanceResponse()

    @_errors_to_status
    def QueryInstances(self, request: pb.QueryInstancesRequest, context: Any) -> pb.QueryInstancesResponse:
        """A page of instances matching the query, oldest first, and the token for the next page."""
        query = request.query
        records, token = self.backend.query_instances(
            InstanceQuery(
                runtime_status=list(query.runtimeStatus) or None,
                created_from=to_datetime(query.createdTimeFrom) if query.HasField("createdTimeFrom") else None,
                created_to=to_datetime(query.createdTimeTo) if query.HasField("createdTimeTo") else None,
                instance_id_prefix=string_value(query, "instanceIdPrefix") or None,
                page_size=query.maxInstanceCount if query.maxInstanceCount > 0 else _DEFAULT_PAGE_SIZE,
                continuation_token=string_value(query, "continuationToken") or None,
            )
        )
        response = pb.QueryInstancesResponse(
            orchestrationState=[orchestration_state(r, with_payloads=query.fetchInputsAndOutputs) for r in records
                                if not is_entity_id(r.instance_id)]  # entities are instances too; not shown
        )
        if token is not None:
            response.continuationToken.value = token
        return response

    @_errors_to_status
    def ListInstanceIds(self, request: pb.ListInstanceIdsRequest, context: Any) -> pb.ListInstanceIdsResponse:
        """Ids of finished instances ordered by completion time, a page at a time (``lastInstanceKey``)."""
        statuses = set(request.runtimeStatus)
        since = to_datetime(request.completedTimeFrom) if request.HasField("completedTimeFrom") else None
        until = to_datetime(request.completedTimeTo) if request.HasField("completedTimeTo") else None
        keys: list[tuple[datetime, str]] = []
        for record in self._all_records():
            completed = record.completed_at
            if not is_terminal(record.status) or completed is None or (statuses and record.status not in statuses):
                continue
            if (since is not None and completed < since) or (until is not None and completed >= until):
                continue
            keys.append((completed, record.instance_id))
        keys.sort()
        cursor = string_value(request, "lastInstanceKey")
        if cursor:
            when, separator, after_id = cursor.partition("|")
            if not separator:
                raise ValueError(f"ListInstanceIds: lastInstanceKey {cursor!r} was not issued by this server")
            after = (datetime.fromisoformat(when), after_id)
            keys = [k for k in keys if k > after]
        size = request.pageSize if request.pageSize > 0 else _DEFAULT_PAGE_SIZE
        page = keys[:size]
        response = pb.ListInstanceIdsResponse(instanceIds=[iid for _, iid in page])
        if len(keys) > size:
            response.lastInstanceKey.value = f"{page[-1][0].isoformat()}|{page[-1][1]}"
        return response

    @_errors_to_status
    def PurgeInstances(self, request: pb.PurgeInstancesRequest, context: Any) -> pb.PurgeInstancesResponse:
        """Delete finished instances: one (``NOT_FOUND`` if unknown, ``FAILED_PRECONDITION`` if still running),
        a batch of ids, or every finished instance matching a filter; ``recursive`` takes their finished
        sub-orchestrations too."""
        which = request.WhichOneof("request")
        count = 0
        if which == "instanceId":
            count = self._purge(request.instanceId, request.recursive)
        elif which == "instanceBatch":
            count = sum(self._purge_if_finished(iid, request.recursive) for iid in request.instanceBatch.instanceIds)
        elif which == "purgeInstanceFilter":
            selected = request.purgeInstanceFilter
            statuses = set(selected.runtimeStatus)
            since = to_datetime(selected.createdTimeFrom) if selected.HasField("createdTimeFrom") else None
            until = to_datetime(selected.createdTimeTo) if selected.HasField("createdTimeTo") else None
            ids = [
                r.instance_id for r in self._all_records()
                if is_terminal(r.status) and (not statuses or r.status in statuses)
                and (since is None or r.created_at >= since) and (until is None or r.created_at < until)
            ]
            count = sum(self._purge_if_finished(iid, request.recursive) for iid in ids)
        else:
            raise ValueError("PurgeInstances: give an instanceId, an instanceBatch or a purgeInstanceFilter")
        self._changed()
        return pb.PurgeInstancesResponse(deletedInstanceCount=count, isComplete=wrappers_pb2.BoolValue(value=True))

    def _purge(self, instance_id: str, recursive: bool) -> int:
        """Purge a finished instance and, if ``recursive``, its finished sub-orchestrations (depth first).

        A sub-orchestration still running is left alone: a recursive terminate reaches the children a
        step after their parent, so "terminate, wait for the parent, purge" must not fail on them (as
        durabletask's own test sidecar, which purges only the parent).
        """
        record = self.backend.get_instance(instance_id)
        if record is None:
            raise InstanceNotFoundError(instance_id)
        if not is_terminal(record.status):
            raise InstanceNotCompletedError(instance_id, _status_name(record.status), "purge")
        count = 0
        if recursive:
            for child in created_children(self.backend.get_history(instance_id)):
                child_record = self.backend.get_instance(child)
                if child_record is None:
                    continue
                if not is_terminal(child_record.status):
                    logger.info("purge of %r leaves its sub-orchestration %r, which is %s", instance_id, child,
                                _status_name(child_record.status))
                    continue
                count += self._purge(child, recursive)
        self.backend.purge_instance(instance_id)
        return count + 1

    def _purge_if_finished(self, instance_id: str, recursive: bool) -> int:
        try:
            return self._purge(instance_id, recursive)
        except (InstanceNotFoundError, InstanceNotCompletedError):
            return 0  # not finished, or purged as someone's child meanwhile

    @_errors_to_status
    def StreamInstanceHistory(self, request: pb.StreamInstanceHistoryRequest, context: Any
                              ) -> Iterator[pb.HistoryChunk]:
        """The instance's history (its current execution), in chunks."""
        events = self.backend.get_history(request.instanceId)
        return _chunks(events)

    # -- work items ---------------------------------------------------------------------------------

    def GetWorkItems(self, request: pb.GetWorkItemsRequest, context: Any) -> Iterator[pb.WorkItem]:
        """The work-item stream of one worker: orchestration steps and activities, and a health ping when idle."""
        connection = self.dispatcher.connect(request, str(context.peer()))
        context.add_callback(lambda: self.dispatcher.disconnect(connection))
        try:
            while True:
                try:
                    item = connection.items.get(timeout=self.ping_interval)
                except queue.Empty:
                    # durabletask's worker reconnects after a silence of 120 s by default
                    yield pb.WorkItem(healthPing=pb.HealthPing())
                    continue
                if item is CLOSE:
                    return
                yield item  # type: ignore[misc]
        finally:
            self.dispatcher.disconnect(connection)

    @_errors_to_status
    def CompleteOrchestratorTask(self, request: pb.OrchestratorResponse, context: Any) -> pb.CompleteTaskResponse:
        """A worker's result for an orchestration step: the engine applies its actions."""
        self.dispatcher.complete_orchestration(request)
        return pb.CompleteTaskResponse()

    @_errors_to_status
    def CompleteActivityTask(self, request: pb.ActivityResponse, context: Any) -> pb.CompleteTaskResponse:
        """A worker's result for an activity: it is queued for the orchestration."""
        self.dispatcher.complete_activity(request)
        return pb.CompleteTaskResponse()

    @_errors_to_status
    def AbandonTaskOrchestratorWorkItem(self, request: pb.AbandonOrchestrationTaskRequest, context: Any
                                        ) -> pb.AbandonOrchestrationTaskResponse:
        """A worker gives an orchestration step back; it runs again after a short delay."""
        self.dispatcher.abandon(request.completionToken, "orchestration")
        return pb.AbandonOrchestrationTaskResponse()

    @_errors_to_status
    def AbandonTaskActivityWorkItem(self, request: pb.AbandonActivityTaskRequest, context: Any
                                    ) -> pb.AbandonActivityTaskResponse:
        """A worker gives an activity back; it is delivered again."""
        self.dispatcher.abandon(request.completionToken, "activity")
        return pb.AbandonActivityTaskResponse()

    # -- durable entities (see _entities) -----------------------------------------------------------

    @_errors_to_status
    def SignalEntity(self, request: pb.SignalEntityRequest, context: Any) -> pb.SignalEntityResponse:
        """Queue a one-way operation for an entity (created if new), at ``scheduledTime`` if given."""
        signal_entity(self.dispatcher, request)
        self._changed()
        return pb.SignalEntityResponse()

    @_errors_to_status
    def GetEntity(self, request: pb.GetEntityRequest, context: Any) -> pb.GetEntityResponse:
        """An entity's metadata and state (``exists = false`` if it has neither state nor lock)."""
        self.dispatcher.client_call()  # a client polling the state may act on it next, as for GetInstance
        return get_entity(self.backend, request)

    @_errors_to_status
    def QueryEntities(self, request: pb.QueryEntitiesRequest, context: Any) -> pb.QueryEntitiesResponse:
        """A page of entities ordered by id, and the token for the next page."""
        return query_entities(self.backend, request)

    @_errors_to_status
    def CleanEntityStorage(self, request: pb.CleanEntityStorageRequest, context: Any
                           ) -> pb.CleanEntityStorageResponse:
        """Remove empty entities; release the locks of orchestrations that are gone or finished."""
        response = clean_entity_storage(self.dispatcher, request)
        self._changed()
        return response

    @_errors_to_status
    def CompleteEntityTask(self, request: pb.EntityBatchResult, context: Any) -> pb.CompleteTaskResponse:
        """A worker's result for an entity batch: the entity step commits it."""
        complete_entity_batch(self.dispatcher, request)
        return pb.CompleteTaskResponse()

    @_errors_to_status
    def AbandonTaskEntityWorkItem(self, request: pb.AbandonEntityTaskRequest, context: Any
                                  ) -> pb.AbandonEntityTaskResponse:
        """A worker gives an entity batch back; it runs again after a short delay."""
        self.dispatcher.abandon(request.completionToken, "entity")
        return pb.AbandonEntityTaskResponse()

    # -- internals ----------------------------------------------------------------------------------

    def _changed(self) -> None:
        self.dispatcher.client_call()
        self.dispatcher.wake()
        self.dispatcher.notify_status()

    def _all_records(self) -> Iterator[InstanceRecord]:
        token = None
        while True:
            records, token = self.backend.query_instances(InstanceQuery(page_size=1000, continuation_token=token))
            yield from (r for r in records if not is_entity_id(r.instance_id))
            if token is None:
                return


def _instance_response(record: InstanceRecord | None, with_payloads: bool) -> pb.GetInstanceResponse:
    if record is None:
        return pb.GetInstanceResponse(exists=False)
    state = orchestration_state(record, with_payloads=with_payloads)
    return pb.GetInstanceResponse(exists=True, orchestrationState=state)


def _chunks(events: list[pb.HistoryEvent]) -> Iterator[pb.HistoryChunk]:
    for start in range(0, len(events), _HISTORY_CHUNK):
        yield pb.HistoryChunk(events=events[start:start + _HISTORY_CHUNK])


def _status_name(status: int) -> str:
    return str(pb.OrchestrationStatus.Name(status)).removeprefix("ORCHESTRATION_STATUS_")


def _unsupported(method: str, what: str) -> Callable[[bytes, Any], bytes]:
    def handler(request: bytes, context: Any) -> bytes:
        _abort(context, "UNIMPLEMENTED",
               f"{SERVICE_NAME}/{method}: wftest's sidecar does not support {what}")

    return handler
