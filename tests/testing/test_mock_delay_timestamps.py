"""A mocked result delivered ``.after(delay)`` is stamped with the time it arrives, not the time of the call."""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any

from wftest import OrchestrationContext, Task, TaskFailedError, WorkflowTester
from wftest.protos import orchestrator_service_pb2 as pb

Gen = Generator[Task[Any], Any, Any]


def charge_card(ctx: Any, amount: int) -> str:
    raise AssertionError("the real charge_card must not run in these tests")


def child(ctx: OrchestrationContext, n: int) -> Gen:
    raise AssertionError("the real child must not run")
    yield  # pragma: no cover


def pays(ctx: OrchestrationContext, _: Any) -> Gen:
    try:
        return (yield ctx.call_activity(charge_card, input=10))
    except TaskFailedError as err:
        return err.details.message


def delegates(ctx: OrchestrationContext, _: Any) -> Gen:
    return (yield ctx.call_sub_orchestrator(child, input=20))


def _when(history: list[pb.HistoryEvent], kind: str) -> datetime:
    [event] = [e for e in history if e.WhichOneof("eventType") == kind]
    return event.timestamp.ToDatetime()


def _step_offset_of(timeline: str, kind: str) -> str:
    """The offset printed on the step separator above the first line that names ``kind``."""
    offset = ""
    for line in timeline.splitlines():
        if "── step" in line:
            offset = line.split()[0]
        elif kind in line:
            return offset
    raise AssertionError(f"{kind} not in the timeline:\n{timeline}")


def test_delayed_activity_result_is_stamped_when_it_arrives() -> None:
    tester = WorkflowTester()
    tester.on_activity(charge_card).returns("receipt").after(timedelta(minutes=5))
    result = tester.run(pays)
    assert result.output == "receipt"
    assert _when(result.history, "taskScheduled") == tester.start_time
    assert _when(result.history, "taskCompleted") == tester.start_time + timedelta(minutes=5)
    assert _step_offset_of(result.timeline(), "TaskCompleted") == "+00:05:00"


def test_delayed_activity_failure_is_stamped_when_it_arrives() -> None:
    tester = WorkflowTester()
    tester.on_activity(charge_card).raises(ValueError("declined")).after(timedelta(seconds=30))
    result = tester.run(pays)
    assert result.output == "declined"
    assert _when(result.history, "taskFailed") == tester.start_time + timedelta(seconds=30)
    assert _step_offset_of(result.timeline(), "TaskFailed") == "+00:00:30"


def test_undelayed_mock_result_keeps_the_time_of_the_call() -> None:
    tester = WorkflowTester()
    tester.on_activity(charge_card).returns("receipt")
    result = tester.run(pays)
    assert _when(result.history, "taskCompleted") == _when(result.history, "taskScheduled") == tester.start_time


def test_delayed_sub_orchestration_result_is_stamped_when_it_arrives() -> None:
    tester = WorkflowTester()
    tester.on_sub_orchestrator(child).calls(lambda n: n * 2).after(timedelta(hours=1))
    result = tester.run(delegates)
    assert result.output == 40
    assert _when(result.history, "subOrchestrationInstanceCompleted") == tester.start_time + timedelta(hours=1)
    assert _step_offset_of(result.timeline(), "SubOrchestrationInstanceCompleted") == "+01:00:00"
