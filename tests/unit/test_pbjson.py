"""The fast JSON reader of history events gives exactly ``json_format.ParseDict``'s result, and its errors."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from google.protobuf import json_format

from wftest import _events as ev
from wftest._failure import FailureDetails
from wftest._pbjson import parse_dict
from wftest.protos import orchestrator_service_pb2 as pb

WHEN = datetime(2024, 2, 29, 23, 59, 58, 123456)


def _sample_events() -> list[pb.HistoryEvent]:
    """Events of most kinds with their fields set: tags, failure details with properties, nanos."""
    started = ev.execution_started(WHEN, "wf", "iid", '{"a": 1}', execution_id="e1")
    started.executionStarted.tags["team"] = "payments"
    started.executionStarted.parentInstance.taskScheduledId = 3
    started.executionStarted.parentInstance.orchestrationInstance.instanceId = "parent"
    failure = FailureDetails(message="boom", error_type="builtins.ValueError", stack_trace="tb",
                             inner_failure=FailureDetails(message="inner", error_type="x.Y"))
    failed = ev.task_failed(WHEN, 4, failure)
    with_properties = pb.HistoryEvent.FromString(failed.SerializeToString())
    with_properties.taskFailed.failureDetails.properties["retry"].number_value = 2.0
    completed = pb.HistoryEvent(eventId=-1)
    completed.timestamp.FromDatetime(WHEN)
    completed.executionCompleted.orchestrationStatus = pb.ORCHESTRATION_STATUS_FAILED
    completed.executionCompleted.failureDetails.CopyFrom(failed.taskFailed.failureDetails)
    lock = pb.HistoryEvent(eventId=9)
    lock.entityLockRequested.lockSet.extend(["a", "b"])
    nanos = ev.orchestrator_started(WHEN)
    nanos.timestamp.nanos = 123456789
    return [
        ev.orchestrator_started(WHEN), started, ev.task_completed(WHEN, 2, '"ok"'), failed, with_properties,
        ev.timer_created(WHEN, ev.create_timer_action(5, WHEN + timedelta(days=3))), ev.event_raised(WHEN, "Go", None),
        ev.execution_terminated(WHEN, '"stop"', True), ev.execution_suspended(WHEN, "hold"), completed, lock,
        nanos, pb.HistoryEvent(eventId=0),
    ]


@pytest.mark.parametrize("event", _sample_events(), ids=lambda e: e.WhichOneof("eventType") or "empty")
def test_written_events_read_back_as_parse_dict_reads_them(event: pb.HistoryEvent) -> None:
    raw = json_format.MessageToDict(event)
    fast = parse_dict(raw, pb.HistoryEvent())
    assert fast.SerializeToString() == json_format.ParseDict(raw, pb.HistoryEvent()).SerializeToString()
    assert fast == event


@pytest.mark.parametrize(
    "raw",
    [
        {"eventId": "12", "orchestratorStarted": {}},  # an int written as a string
        {"eventId": 1, "timestamp": "2024-01-01T10:00:00.5+02:00", "orchestratorStarted": {}},  # an offset
        {"eventId": 1, "timestamp": "2024-01-01T10:00:00.000000001Z", "orchestratorStarted": {}},
        {"eventId": 1, "taskCompleted": []},
        {"eventId": 1, "executionCompleted": {"orchestrationStatus": 3}},  # an enum by number
        {"eventId": 1, "eventRaised": {"name": "x", "input": None}},  # null
        {"eventId": 1, "executionStarted": {"name": "wf", "tags": {}}},
    ],
)
def test_other_spellings_give_parse_dict_result(raw: dict[str, Any]) -> None:
    expected = json_format.ParseDict(raw, pb.HistoryEvent())
    assert parse_dict(raw, pb.HistoryEvent()).SerializeToString() == expected.SerializeToString()


@pytest.mark.parametrize(
    "raw",
    [
        {"eventId": 1, "noSuchField": {}},
        {"eventId": 1, "orchestratorStarted": {}, "taskCompleted": {}},  # two members of the oneof
        {"eventId": 1 << 40, "orchestratorStarted": {}},  # out of int32 range
        {"eventId": True, "orchestratorStarted": {}},
        {"eventId": 1, "timestamp": "2024-02-30T00:00:00Z", "orchestratorStarted": {}},  # no such day
        {"eventId": 1, "executionCompleted": {"orchestrationStatus": "NOT_A_STATUS"}},
        {"event_id": 3, "orchestratorStarted": {}},
    ],
)
def test_bad_input_fails_as_parse_dict_fails(raw: dict[str, Any]) -> None:
    with pytest.raises(json_format.ParseError) as expected:
        json_format.ParseDict(raw, pb.HistoryEvent())
    with pytest.raises(json_format.ParseError) as got:
        parse_dict(raw, pb.HistoryEvent())
    assert str(got.value) == str(expected.value)


def test_a_failed_fast_path_leaves_no_partial_fields() -> None:
    # the fast path fills eventId before it meets the oneof clash; the message must not keep it
    message = pb.HistoryEvent()
    with pytest.raises(json_format.ParseError):
        parse_dict({"eventId": 5, "orchestratorStarted": {}, "taskCompleted": {}}, message)
    raw = {"eventId": "5", "orchestratorStarted": {}}
    assert parse_dict(raw, pb.HistoryEvent()) == json_format.ParseDict(raw, pb.HistoryEvent())
