"""Helpers for the sidecar tests: the real durabletask worker, quietly; a raw work-item stream for the protocol
tests that need to misbehave on purpose; polling with a deadline."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc
from durabletask import worker as dt_worker
from google.protobuf import message

from wftest.protos import orchestrator_service_pb2 as pb

#: durabletask logs every step at INFO on its own handler; the tests keep it quiet
QUIET = logging.getLogger("tests.sidecar.durabletask")
QUIET.setLevel(logging.ERROR)


@contextlib.contextmanager
def running_worker(
    address: str, orchestrators: Iterable[Callable[..., Any]] = (), activities: Iterable[Callable[..., Any]] = (),
    **options: Any,
) -> Iterator[dt_worker.TaskHubGrpcWorker]:
    """A started durabletask worker with these functions registered; stopped on exit."""
    w = dt_worker.TaskHubGrpcWorker(host_address=address, logger=QUIET, **options)
    for fn in orchestrators:
        w.add_orchestrator(fn)
    for fn in activities:
        w.add_activity(fn)
    w.start()
    try:
        yield w
    finally:
        w.stop()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail the test with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


class RawWorker:
    """A hand-driven worker: it opens ``GetWorkItems`` and answers (or does not) one call at a time."""

    def __init__(self, address: str, **request: Any) -> None:
        self.channel = grpc.insecure_channel(address)
        open_stream = self.channel.unary_stream(
            "/TaskHubSidecarService/GetWorkItems",
            request_serializer=pb.GetWorkItemsRequest.SerializeToString,
            response_deserializer=pb.WorkItem.FromString,
        )
        self.stream = open_stream(pb.GetWorkItemsRequest(**request))
        self.items: queue.Queue[pb.WorkItem] = queue.Queue()
        self.closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with contextlib.suppress(grpc.RpcError):
            for item in self.stream:
                if not item.HasField("healthPing"):
                    self.items.put(item)

    def next_item(self, timeout: float = 10.0) -> pb.WorkItem:
        """The next work item sent to this worker."""
        try:
            return self.items.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no work item within {timeout} s") from None

    def call(self, method: str, request: message.Message, response_type: Any) -> Any:
        """A unary RPC of the service."""
        rpc = self.channel.unary_unary(f"/TaskHubSidecarService/{method}",
                                       request_serializer=type(request).SerializeToString,
                                       response_deserializer=response_type.FromString)
        return rpc(request, timeout=10)

    def complete_activity(self, item: pb.WorkItem, result: str | None) -> None:
        """Answer an activity work item with a result (JSON text)."""
        request = item.activityRequest
        response = pb.ActivityResponse(instanceId=request.orchestrationInstance.instanceId, taskId=request.taskId,
                                       completionToken=item.completionToken)
        if result is not None:
            response.result.value = result
        self.call("CompleteActivityTask", response, pb.CompleteTaskResponse)

    def close(self) -> None:
        """Drop the stream (as a crashed worker would)."""
        self.closed = True
        self.stream.cancel()
        self.channel.close()
