"""The sidecar hands an activity's ``TaskScheduled`` tags to the SDK worker (``ActivityRequest.tags``)."""

from __future__ import annotations

from collections.abc import Callable

from durabletask import client as dt_client

from wftest import _events as ev
from wftest.protos import orchestrator_service_pb2 as pb

from ._support import RawWorker


def test_an_activity_request_carries_the_tags_of_its_task_scheduled_event(
        dt: dt_client.TaskHubGrpcClient, raw_worker: Callable[..., RawWorker]) -> None:
    raw = raw_worker()
    dt.schedule_new_orchestration("hello")
    step = raw.next_item()
    action = ev.schedule_task_action(1, "greet", '"ada"', {"tenant": "acme"})
    raw.call("CompleteOrchestratorTask",
             pb.OrchestratorResponse(instanceId=step.orchestratorRequest.instanceId, actions=[action],
                                     completionToken=step.completionToken),
             pb.CompleteTaskResponse)
    request = raw.next_item().activityRequest
    assert (request.name, dict(request.tags)) == ("greet", {"tenant": "acme"})
