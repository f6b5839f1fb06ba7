"""``RewindInstance`` through the real durabletask client and worker (1.12)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from durabletask import client, task

from wftest.sidecar import SidecarServer

from ._support import running_worker

COMPLETED = client.OrchestrationStatus.COMPLETED
FAILED = client.OrchestrationStatus.FAILED

CALLS: Counter[str] = Counter()
BROKEN: set[str] = set()
_LOCK = threading.Lock()


def _call(name: str, value: Any) -> str:
    with _LOCK:
        CALLS[name] += 1
        broken = name in BROKEN
    if broken:
        raise RuntimeError(f"{name} is down")
    return f"{name}:{value}"


def first(ctx: task.ActivityContext, value: Any) -> str:
    return _call("first", value)


def second(ctx: task.ActivityContext, value: Any) -> str:
    return _call("second", value)


def two_steps(ctx: task.OrchestrationContext, value: Any) -> Any:
    a = yield ctx.call_activity(first, input=value)
    b = yield ctx.call_activity(second, input=a)
    return b


def parent(ctx: task.OrchestrationContext, value: Any) -> Any:
    child = yield ctx.call_sub_orchestrator(two_steps, input=value, instance_id=f"{ctx.instance_id}-child")
    return f"parent:{child}"


@pytest.fixture(autouse=True)
def fresh_counts() -> Iterator[None]:
    CALLS.clear()
    BROKEN.clear()
    yield
    BROKEN.clear()


@pytest.fixture
def worker(sidecar: SidecarServer) -> Iterator[None]:
    with running_worker(sidecar.address, orchestrators=[two_steps, parent], activities=[first, second]):
        yield


@pytest.mark.usefixtures("worker")
def test_a_rewound_instance_reruns_only_its_failed_activity(dt: client.TaskHubGrpcClient,
                                                            sidecar: SidecarServer) -> None:
    BROKEN.add("second")
    iid = dt.schedule_new_orchestration(two_steps, input="x")
    assert dt.wait_for_orchestration_completion(iid, timeout=30).runtime_status == FAILED  # type: ignore[union-attr]

    BROKEN.clear()
    dt.rewind_orchestration(iid, reason="second is back")
    state = dt.wait_for_orchestration_completion(iid, timeout=30)

    assert state is not None and state.runtime_status == COMPLETED
    assert state.serialized_output == '"second:first:x"'
    assert state.failure_details is None
    assert CALLS == {"first": 1, "second": 2}
    reasons = [e.executionRewound.reason.value for e in sidecar.engine.history(iid) if e.HasField("executionRewound")]
    assert reasons == ["second is back"]


@pytest.mark.usefixtures("worker")
def test_a_failed_sub_orchestration_is_rewound_with_its_parent(dt: client.TaskHubGrpcClient) -> None:
    BROKEN.add("second")
    iid = dt.schedule_new_orchestration(parent, input="x")
    assert dt.wait_for_orchestration_completion(iid, timeout=30).runtime_status == FAILED  # type: ignore[union-attr]

    BROKEN.clear()
    dt.rewind_orchestration(iid)
    state = dt.wait_for_orchestration_completion(iid, timeout=30)

    assert state is not None and state.runtime_status == COMPLETED
    assert state.serialized_output == '"parent:second:first:x"'
    assert CALLS == {"first": 1, "second": 2}


@pytest.mark.usefixtures("worker")
def test_rewinding_an_instance_that_did_not_fail_is_refused(dt: client.TaskHubGrpcClient) -> None:
    iid = dt.schedule_new_orchestration(two_steps, input="x")
    dt.wait_for_orchestration_completion(iid, timeout=30)

    with pytest.raises(grpc.RpcError) as info:
        dt.rewind_orchestration(iid)

    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    assert "only a FAILED instance can be rewound" in str(info.value.details())  # type: ignore[attr-defined]


def test_rewinding_an_unknown_instance_is_not_found(dt: client.TaskHubGrpcClient) -> None:
    with pytest.raises(grpc.RpcError) as info:
        dt.rewind_orchestration("no-such-instance")

    assert info.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
