"""Unit tests: how the runtime applies an orchestration's ``sendEntityMessage`` actions (``apply_step``)."""

from __future__ import annotations

from datetime import datetime

import pytest

from wftest import _events as ev
from wftest.orchestration import ExecutionResult
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.runtime import RUNNING, InstanceRecord, apply_step, entity_message_target

NOW = datetime(2024, 1, 1, 12, 0, 0)


def record() -> InstanceRecord:
    return InstanceRecord(instance_id="o1", name="wf", status=RUNNING, created_at=NOW, last_updated_at=NOW,
                          execution_id="e1")


def call_action(action_id: int) -> pb.OrchestratorAction:
    action = pb.OrchestratorAction(id=action_id)
    called = action.sendEntityMessage.entityOperationCalled
    called.requestId, called.operation = "req-1", "add"
    called.input.value = "5"
    called.parentInstanceId.value = "o1"
    called.targetInstanceId.value = "@counter@k"
    return action


def test_a_call_is_recorded_under_its_action_id_and_sent_to_the_entity_for_this_execution() -> None:
    update = apply_step(record(), [ev.orchestrator_started(NOW)], ExecutionResult(actions=[call_action(3)]), NOW,
                        entities=True)
    recorded = update.new_history[-1]
    assert recorded.eventId == 3 and recorded.entityOperationCalled.operation == "add"
    assert not recorded.entityOperationCalled.HasField("parentExecutionId")  # as the SDK wrote it
    [message] = update.messages
    assert message.instance_id == "@counter@k" and message.visible_at is None
    assert message.event.entityOperationCalled.parentExecutionId.value == "e1"


def test_a_delayed_signal_becomes_visible_at_its_time() -> None:
    action = pb.OrchestratorAction(id=1)
    signaled = action.sendEntityMessage.entityOperationSignaled
    signaled.operation, signaled.requestId = "add", "r"
    signaled.targetInstanceId.value = "@counter@k"
    signaled.scheduledTime.FromDatetime(datetime(2024, 1, 2))
    update = apply_step(record(), [], ExecutionResult(actions=[action]), NOW, entities=True)
    assert update.messages[0].visible_at == datetime(2024, 1, 2)


def test_a_lock_request_goes_to_the_entity_at_its_position() -> None:
    action = pb.OrchestratorAction(id=1)
    lock = action.sendEntityMessage.entityLockRequested
    lock.criticalSectionId = "cs"
    lock.lockSet.extend(["@a@1", "@b@1"])
    lock.position = 1
    assert entity_message_target(action.sendEntityMessage) == "@b@1"
    lock.position = 2
    with pytest.raises(ValueError, match="outside its lock set"):
        entity_message_target(action.sendEntityMessage)


def test_engines_that_do_not_run_entities_refuse_entity_messages() -> None:
    with pytest.raises(ValueError, match="entities run only in wftest's gRPC sidecar"):
        apply_step(record(), [], ExecutionResult(actions=[call_action(1)]), NOW)
