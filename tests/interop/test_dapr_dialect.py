"""Dapr's dialect of the protobuf: the field mapping, round trips, and reading Dapr history files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import dapr.ext.workflow as wf
import pytest
from dapr.ext.workflow._durabletask.internal import protos as dpb
from google.protobuf import json_format
from google.protobuf.message import DecodeError

import wftest.interop.dapr as dapr
from wftest import HistoryFileError, Registry, Replayer, WorkflowTester
from wftest import _events as ev
from wftest.protos import orchestrator_service_pb2 as pb

from . import dapr_corpus as corpus


def dapr_event(**fields: Any) -> Any:
    return json_format.ParseDict(fields, dpb.HistoryEvent())


def test_daprs_bytes_do_not_parse_as_durabletask_events() -> None:
    # TaskScheduledEvent field 5 is a string in Dapr's schema and a map in durabletask's: the reason for
    # translating by field name
    scheduled = dapr_event(eventId=1, taskScheduled={"name": "charge", "taskExecutionId": "abc"})
    with pytest.raises(DecodeError):
        pb.HistoryEvent.FromString(scheduled.SerializeToString())


def test_renamed_fields_map_by_name() -> None:
    created = dapr_event(eventId=3, childWorkflowInstanceCreated={"name": "child", "instanceId": "p:0003",
                                                                  "input": "7"})
    completed = dapr_event(executionCompleted={"workflowStatus": "ORCHESTRATION_STATUS_FAILED",
                                               "failureDetails": {"errorType": "ValueError", "errorMessage": "no"}})
    started = dapr_event(executionStarted={"name": "wf", "workflowInstance": {"instanceId": "p"},
                                           "parentInstance": {"taskScheduledId": 2, "appID": "other-app",
                                                              "workflowInstance": {"instanceId": "root"}}})

    described = ev.describe_event(dapr.from_dapr_event(created))
    assert described == "SubOrchestrationInstanceCreated #3 child id=p:0003 input=7"
    assert dapr.from_dapr_event(completed).executionCompleted.orchestrationStatus == pb.ORCHESTRATION_STATUS_FAILED
    converted = dapr.from_dapr_event(started).executionStarted
    assert converted.orchestrationInstance.instanceId == "p"
    assert converted.parentInstance.orchestrationInstance.instanceId == "root"  # appID has no counterpart: dropped
    assert dapr.to_dapr_event(dapr.from_dapr_event(created)) == created


def test_a_task_execution_id_travels_as_a_tag() -> None:
    scheduled = dapr_event(eventId=1, taskScheduled={"name": "charge", "taskExecutionId": "abc"})

    converted = dapr.from_dapr_event(scheduled)

    assert dict(converted.taskScheduled.tags) == {"dapr.taskExecutionId": "abc"}
    assert dapr.to_dapr_event(converted) == scheduled


def test_what_wftests_schema_cannot_hold_travels_as_marker_events() -> None:
    history = [
        dapr_event(workflowStarted={"version": {"name": "2", "patches": ["p1"]}}),
        dapr_event(executionStarted={"name": "wf", "workflowInstance": {"instanceId": "i"}}),
        dapr_event(executionStalled={"reason": "PATCH_MISMATCH", "description": "p1 is gone"}),
    ]

    converted = dapr.from_dapr_events(history)

    assert [e.WhichOneof("eventType") for e in converted] == [
        "orchestratorStarted", "genericEvent", "executionStarted", "genericEvent",
    ]
    assert dapr.to_dapr_events(converted) == history


def test_wftest_only_events_have_no_dapr_counterpart() -> None:
    assert dapr.to_dapr_event(ev.generic_event(datetime(2024, 1, 1), '{"side": 1}')) is None
    assert dapr.to_dapr_event(pb.HistoryEvent(historyState=pb.HistoryStateEvent())) is None


def test_actions_convert_both_ways() -> None:
    action = dpb.WorkflowAction(id=4)
    action.completeWorkflow.workflowStatus = dpb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW
    action.completeWorkflow.result.value = "[1]"
    action.completeWorkflow.carryoverEvents.add().eventRaised.name = "item"

    converted = dapr.from_dapr_action(action)

    assert converted.completeOrchestration.orchestrationStatus == pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW
    assert converted.completeOrchestration.carryoverEvents[0].eventRaised.name == "item"
    assert dapr.to_dapr_action(converted) == action


@pytest.mark.parametrize("workflow", [corpus.d_children, corpus.d_retry_gives_up, corpus.d_counter, corpus.d_failure])
def test_histories_written_by_dapr_workflows_round_trip(workflow: Any) -> None:
    tester = WorkflowTester()
    tester.on_activity(corpus.always_fails).raises(ValueError("no"))
    result = tester.run(dapr.workflow(workflow), input={"round": 1, "value": 0})
    for state in result.engine.client.get_all_orchestration_states():
        history = result.engine.history(state.instance_id)
        in_dapr = dapr.to_dapr_events(history)
        assert len(in_dapr) == len(history)
        assert dapr.from_dapr_events(in_dapr) == history


# -- Dapr history files --------------------------------------------------------------------------------------


def _dapr_history_of(workflow: Any) -> tuple[list[Any], Any]:
    tester = WorkflowTester()
    tester.at(corpus.HOUR, lambda t: t.raise_event("go", "now"))
    result = tester.run(dapr.workflow(workflow))
    return dapr.to_dapr_events(result.history), result


def _length_delimited(events: list[Any]) -> bytes:
    out = bytearray()
    for event in events:
        data = event.SerializeToString()
        size = len(data)
        while True:
            byte = size & 0x7F
            size >>= 7
            out.append(byte | (0x80 if size else 0))
            if not size:
                break
        out += data
    return bytes(out)


@pytest.mark.parametrize("form", ["list.json", "object.json", "binary.pb"])
def test_a_dapr_history_file_loads_and_replays(tmp_path: Path, form: str) -> None:
    events, result = _dapr_history_of(corpus.d_event)
    path = tmp_path / f"history-{form}"
    if form == "list.json":
        path.write_text("[" + ",".join(json_format.MessageToJson(e) for e in events) + "]")
    elif form == "object.json":
        path.write_text('{"instanceId": "test-instance", "events": ['
                        + ",".join(json_format.MessageToJson(e) for e in events) + "]}")
    else:
        path.write_bytes(_length_delimited(events))

    loaded = dapr.load_history(path)

    assert (loaded.orchestrator, loaded.instance_id) == ("d_event", "test-instance")
    assert loaded.events == result.history
    registry = Registry()
    registry.add_orchestrator(dapr.workflow(corpus.d_event))
    assert Replayer(registry).replay(loaded).ok


def test_a_bad_dapr_history_names_the_file_and_the_event(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[{"workflowStarted": {}}, {"notAnEvent": 1}]')
    with pytest.raises(HistoryFileError, match=r"bad\.json, event 1: not a Dapr HistoryEvent"):
        dapr.load_history(path)

    truncated = tmp_path / "cut.pb"
    truncated.write_bytes(_length_delimited(_dapr_history_of(corpus.d_sequence)[0])[:-3])
    with pytest.raises(HistoryFileError, match=r"cut\.pb, event \d+: truncated"):
        dapr.load_history(truncated)


def test_a_dapr_history_without_a_start_is_refused() -> None:
    with pytest.raises(HistoryFileError, match="no ExecutionStarted"):
        dapr.loads_history('[{"workflowStarted": {}}]')


def test_a_workflow_registered_from_a_function_named_as_dapr_names_it() -> None:
    @wf.alternate_name("Renamed")
    def original(ctx: wf.DaprWorkflowContext, _: Any) -> str:
        return "done"

    assert dapr.workflow(original).__name__ == "Renamed"
    assert WorkflowTester().run(dapr.workflow(original)).output == "done"
