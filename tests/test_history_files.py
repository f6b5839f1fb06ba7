"""History files: both formats round-trip every event kind; each bad file fails naming file, index, field."""

from __future__ import annotations

import json
from collections.abc import Generator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from wftest import Engine, OrchestrationContext, Task, history, when_all
from wftest.errors import HistoryFileError
from wftest.protos import orchestrator_service_pb2 as pb

Gen = Generator[Task[Any], Any, Any]


def echo(ctx: Any, value: Any) -> Any:
    return value


def fails(ctx: Any, _: Any) -> None:
    raise ValueError("nope")


def child(ctx: OrchestrationContext, n: int) -> int:
    return n + 1


def rich(ctx: OrchestrationContext, _: Any) -> Gen:
    yield when_all([ctx.call_activity(echo, input=i) for i in range(2)])
    try:
        yield ctx.call_activity(fails)
    except Exception:
        pass
    yield ctx.call_sub_orchestrator(child, input=1)
    yield ctx.create_timer(timedelta(hours=1))
    ctx.send_event("somewhere-else", "ping", data={"x": 1})
    ctx.set_custom_status({"phase": "waiting"})
    return (yield ctx.wait_for_external_event("go"))


@pytest.fixture(scope="module")
def events() -> list[pb.HistoryEvent]:
    engine = Engine()
    iid = engine.client.schedule_new_orchestration(rich, instance_id="rich-1")
    engine.run_until_idle()
    engine.advance(timedelta(hours=2))
    engine.client.suspend_orchestration(iid)
    engine.client.raise_orchestration_event(iid, "go", data="now")
    engine.client.resume_orchestration(iid)
    engine.client.wait_for_orchestration_completion(iid)
    return engine.history(iid)


def _all_kinds_history() -> list[pb.HistoryEvent]:
    """One event of every HistoryEvent kind, each with a field set (after a valid start)."""
    events = []
    start = pb.HistoryEvent(eventId=-1)
    start.executionStarted.name = "wf"
    start.executionStarted.orchestrationInstance.instanceId = "all"
    events.append(start)
    for field in pb.HistoryEvent.DESCRIPTOR.oneofs_by_name["eventType"].fields:
        if field.name in ("executionStarted", "taskCompleted", "taskFailed", "timerFired",
                          "subOrchestrationInstanceCompleted", "subOrchestrationInstanceFailed"):
            continue
        event = pb.HistoryEvent(eventId=7)
        getattr(event, field.name).SetInParent()
        events.append(event)
    return events


@pytest.mark.parametrize("suffix", [history.JSON_SUFFIX, history.PB_SUFFIX])
def test_run_history_round_trips(events: list[pb.HistoryEvent], tmp_path: Path, suffix: str) -> None:
    path = history.save(tmp_path / f"run{suffix}", events)
    loaded = history.load(path)
    assert [e.SerializeToString() for e in loaded.events] == [e.SerializeToString() for e in events]
    assert (loaded.orchestrator, loaded.instance_id) == ("rich", "rich-1")


@pytest.mark.parametrize("suffix", [history.JSON_SUFFIX, history.PB_SUFFIX])
def test_every_event_kind_round_trips(tmp_path: Path, suffix: str) -> None:
    events = _all_kinds_history()
    path = tmp_path / f"all{suffix}"
    if suffix == history.PB_SUFFIX:
        path.write_bytes(history.dumps_pb(events))
        loaded = history.loads_pb(path.read_bytes())
    else:
        path.write_text(history.dumps_json(events))
        loaded = history.loads_json(path.read_text()).events
    assert [e.SerializeToString() for e in loaded] == [e.SerializeToString() for e in events]


def test_json_is_sorted_and_one_event_per_line(events: list[pb.HistoryEvent]) -> None:
    text = history.dumps_json(events)
    lines = text.splitlines()
    assert lines[0].startswith('{"format": "wftest.history/1", "instanceId": "rich-1", "orchestrator": "rich"')
    assert len(lines) == len(events) + 2
    for line in lines[1:-1]:
        event = json.loads(line.rstrip(","))
        assert list(event) == sorted(event)


def _expect_error(tmp_path: Path, name: str, content: str | bytes, *, index: int | None, field: str | None,
                  reason: str) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(HistoryFileError, match=reason) as err:
        history.load(path)
    assert err.value.path == path and err.value.index == index and err.value.field == field
    assert str(path) in str(err.value)


def test_truncated_pb_names_the_event(events: list[pb.HistoryEvent], tmp_path: Path) -> None:
    data = history.dumps_pb(events)
    _expect_error(tmp_path, "cut.history.pb", data[:-3], index=len(events) - 1, field=None, reason="truncated")


def test_unknown_event_kind_in_pb(tmp_path: Path) -> None:
    start = _all_kinds_history()[0]
    unknown = bytes([0x08, 0x01, 0xFA, 0x03, 0x00])  # eventId=1 and an empty field 63, which no kind uses
    data = history.dumps_pb([start]) + bytes([len(unknown)]) + unknown
    _expect_error(tmp_path, "x.history.pb", data, index=1, field="eventType", reason="unknown event kind")


def test_unknown_event_kind_in_json(tmp_path: Path) -> None:
    doc = {"format": "wftest.history/1", "events": [{"executionStarted": {"name": "wf"}}, {"taskExploded": {}}]}
    _expect_error(tmp_path, "x.history.json", json.dumps(doc), index=1, field="taskExploded",
                  reason="unknown event kind")


def test_wrong_json_shape(tmp_path: Path) -> None:
    _expect_error(tmp_path, "x.history.json", '{"events": {"not": "a list"}}', index=None, field="events",
                  reason="must be a list")
    _expect_error(tmp_path, "y.history.json", '"just a string"', index=None, field=None, reason="JSON object")
    bad_field = {"events": [{"executionStarted": {"name": 3}}]}
    _expect_error(tmp_path, "z.history.json", json.dumps(bad_field), index=0, field="executionStarted",
                  reason="name")


def test_missing_execution_started(tmp_path: Path) -> None:
    doc = {"events": [{"orchestratorStarted": {}}, {"timerCreated": {"fireAt": "2024-01-01T00:00:00Z"}}]}
    _expect_error(tmp_path, "x.history.json", json.dumps(doc), index=None, field="executionStarted",
                  reason="no ExecutionStarted")


def test_result_before_its_request_is_out_of_order(tmp_path: Path) -> None:
    doc = {"events": [{"executionStarted": {"name": "wf"}}, {"taskCompleted": {"taskScheduledId": 4}}]}
    _expect_error(tmp_path, "x.history.json", json.dumps(doc), index=1, field="taskCompleted.taskScheduledId",
                  reason="out of order")


def test_steps_going_back_in_time_are_out_of_order(tmp_path: Path) -> None:
    doc = {"events": [
        {"orchestratorStarted": {}, "timestamp": "2024-01-02T00:00:00Z"},
        {"executionStarted": {"name": "wf"}},
        {"orchestratorStarted": {}, "timestamp": "2024-01-01T00:00:00Z"},
    ]}
    _expect_error(tmp_path, "x.history.json", json.dumps(doc), index=2, field="timestamp", reason="out of order")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(HistoryFileError, match="cannot read"):
        history.load(tmp_path / "missing.history.json")


def test_header_must_match_the_events(tmp_path: Path) -> None:
    doc = {"orchestrator": "other", "events": [{"executionStarted": {"name": "wf"}}]}
    _expect_error(tmp_path, "x.history.json", json.dumps(doc), index=None, field="orchestrator",
                  reason="does not match")
