"""``TaskHubClient.rewind_orchestration``: a FAILED instance runs again from its last good state."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from wftest import Engine, OrchestrationContext, Replayer, RetryPolicy, SqliteBackend
from wftest.errors import InstanceNotFoundError, OrchestrationStateError
from wftest.protos import orchestrator_service_pb2 as pb


class Flaky:
    """Activities that fail while ``broken`` holds their name, and count their calls."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.broken: set[str] = set()

    def __call__(self, name: str, value: Any) -> Any:
        self.calls[name] += 1
        if name in self.broken:
            raise RuntimeError(f"{name} is down")
        return f"{name}:{value}"


@pytest.fixture
def flaky() -> Flaky:
    return Flaky()


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, flaky: Flaky, tmp_path: Path) -> Engine:
    engine = Engine(backend=SqliteBackend(tmp_path / "rewind.db")) if request.param == "sqlite" else Engine()
    engine.add_named_activity("first", lambda ctx, value: flaky("first", value))
    engine.add_named_activity("second", lambda ctx, value: flaky("second", value))
    return engine


def two_steps(ctx: OrchestrationContext, value: str) -> Any:
    a = yield ctx.call_activity("first", input=value)
    b = yield ctx.call_activity("second", input=a)
    return b


def kinds(events: list[pb.HistoryEvent]) -> list[str]:
    return [str(e.WhichOneof("eventType")) for e in events]


def test_rewinding_a_failed_instance_reruns_only_the_failed_activity(engine: Engine, flaky: Flaky) -> None:
    flaky.broken.add("second")
    iid = engine.client.schedule_new_orchestration(two_steps, input="x")
    assert engine.client.wait_for_orchestration_completion(iid).runtime_status == "FAILED"

    flaky.broken.clear()
    engine.client.rewind_orchestration(iid, reason="second is back")
    assert engine.client.get_orchestration_state(iid).runtime_status == "RUNNING"  # type: ignore[union-attr]
    state = engine.client.wait_for_orchestration_completion(iid)

    assert state.runtime_status == "COMPLETED"
    assert state.output == "second:first:x"
    assert state.failure_details is None
    assert flaky.calls == {"first": 1, "second": 2}


def test_the_rewound_history_drops_the_failure_records_the_reason_and_replays(engine: Engine, flaky: Flaky) -> None:
    flaky.broken.add("second")
    iid = engine.client.schedule_new_orchestration(two_steps, input="x")
    failed = engine.client.wait_for_orchestration_completion(iid)
    flaky.broken.clear()

    engine.client.rewind_orchestration(iid, reason="second is back")
    state = engine.client.wait_for_orchestration_completion(iid)

    history = engine.history(iid)
    assert "taskFailed" not in kinds(history)
    assert kinds(history).count("executionCompleted") == 1 and history[-1].HasField("executionCompleted")
    rewound = [e.executionRewound for e in history if e.HasField("executionRewound")]
    assert [r.reason.value for r in rewound] == ["second is back"]
    assert state.execution_id is not None and state.execution_id != failed.execution_id
    assert history[1].executionStarted.orchestrationInstance.executionId.value == state.execution_id
    # the new history is a valid one: it replays against the same code
    Replayer(engine.registry).replay(history).raise_for_error()


def test_a_failed_activity_with_a_retry_policy_is_rewound_without_its_retry_timers(engine: Engine,
                                                                                 flaky: Flaky) -> None:
    policy = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=3)

    def retried(ctx: OrchestrationContext, value: str) -> Any:
        a = yield ctx.call_activity("first", input=value, retry_policy=policy)
        return a

    flaky.broken.add("first")
    iid = engine.client.schedule_new_orchestration(retried, input="x")
    assert engine.client.wait_for_orchestration_completion(iid).runtime_status == "FAILED"
    assert flaky.calls["first"] == 3

    flaky.broken.clear()
    engine.client.rewind_orchestration(iid)
    state = engine.client.wait_for_orchestration_completion(iid)

    assert state.runtime_status == "COMPLETED" and state.output == "first:x"
    assert flaky.calls["first"] == 4
    assert "timerCreated" not in kinds(engine.history(iid))


def test_a_failed_sub_orchestration_is_rewound_with_its_parent(engine: Engine, flaky: Flaky) -> None:
    def parent(ctx: OrchestrationContext, value: str) -> Any:
        before = yield ctx.call_activity("first", input=value)
        child = yield ctx.call_sub_orchestrator(two_steps, input=before, instance_id="the-child")
        return f"parent:{child}"

    flaky.broken.add("second")
    iid = engine.client.schedule_new_orchestration(parent, input="x")
    assert engine.client.wait_for_orchestration_completion(iid).runtime_status == "FAILED"
    assert engine.client.get_orchestration_state("the-child").runtime_status == "FAILED"  # type: ignore[union-attr]

    flaky.broken.clear()
    engine.client.rewind_orchestration(iid)
    state = engine.client.wait_for_orchestration_completion(iid)

    assert state.runtime_status == "COMPLETED"
    assert state.output == "parent:second:first:first:x"
    child = engine.client.get_orchestration_state("the-child")
    assert child is not None and child.runtime_status == "COMPLETED"
    assert child.parent_instance_id == iid
    assert flaky.calls == {"first": 2, "second": 2}  # the parent's and the child's first ran once each


def test_a_purged_failed_sub_orchestration_starts_again(engine: Engine, flaky: Flaky) -> None:
    def parent(ctx: OrchestrationContext, value: str) -> Any:
        child = yield ctx.call_sub_orchestrator(two_steps, input=value, instance_id="purged-child")
        return f"parent:{child}"

    flaky.broken.add("second")
    iid = engine.client.schedule_new_orchestration(parent, input="x")
    assert engine.client.wait_for_orchestration_completion(iid).runtime_status == "FAILED"
    engine.client.purge_orchestration("purged-child")

    flaky.broken.clear()
    engine.client.rewind_orchestration(iid)
    state = engine.client.wait_for_orchestration_completion(iid)

    assert state.runtime_status == "COMPLETED" and state.output == "parent:second:first:x"
    assert flaky.calls == {"first": 2, "second": 2}  # the child ran from scratch


def test_an_instance_can_be_rewound_twice(engine: Engine, flaky: Flaky) -> None:
    flaky.broken.add("second")
    iid = engine.client.schedule_new_orchestration(two_steps, input="x")
    engine.client.wait_for_orchestration_completion(iid)
    engine.client.rewind_orchestration(iid, reason="once")
    assert engine.client.wait_for_orchestration_completion(iid).runtime_status == "FAILED"

    flaky.broken.clear()
    engine.client.rewind_orchestration(iid, reason="twice")
    state = engine.client.wait_for_orchestration_completion(iid)

    assert state.runtime_status == "COMPLETED"
    assert flaky.calls == {"first": 1, "second": 3}
    reasons = [e.executionRewound.reason.value for e in engine.history(iid) if e.HasField("executionRewound")]
    assert reasons == ["once", "twice"]


def test_only_a_failed_instance_can_be_rewound(engine: Engine) -> None:
    iid = engine.client.schedule_new_orchestration(two_steps, input="x")
    engine.client.wait_for_orchestration_completion(iid)

    with pytest.raises(OrchestrationStateError, match=r"it is COMPLETED; only a FAILED instance can be rewound"):
        engine.client.rewind_orchestration(iid)


def test_rewinding_an_unknown_instance_says_so(engine: Engine) -> None:
    with pytest.raises(InstanceNotFoundError, match="cannot rewind orchestration instance 'nope'"):
        engine.client.rewind_orchestration("nope")
