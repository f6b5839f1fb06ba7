"""Dapr workflows, unmodified, on wftest: the same histories as Dapr's own (stateless) executor writes,
and the tester's mocks, virtual clock, replay check, strict mode and fuzzing."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import dapr.ext.workflow as wf
import pytest
from dapr.ext.workflow._durabletask import worker as dapr_worker
from hypothesis import given, settings

import wftest.interop.dapr as dapr
from wftest import (
    CrashAfterActivity,
    CrashDuringStep,
    Engine,
    NonDeterminismError,
    NonDeterministicCallError,
    OrchestrationStalledError,
    Registry,
    Replayer,
    WorkflowTester,
)
from wftest.orchestration import ExecutionResult
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.strategies import Schedule, schedules

from . import dapr_corpus as corpus
from ._compat import Scenario, driver, normalized

_LOG = logging.getLogger("tests.interop.dapr")
_LOG.setLevel(logging.ERROR)
BY_ID = {s.id: s for s in corpus.SCENARIOS}


class DaprStatelessExecutor:
    """Dapr's own worker path, for reference: a fresh ``_OrchestrationExecutor.execute(old, new)`` per step
    over the workflows registered on a ``WorkflowRuntime``."""

    kind = "dapr"

    def __init__(self) -> None:
        self.registry = corpus.reference_runtime()._WorkflowRuntime__worker._registry

    def execute(self, instance_id: str, old_events: Sequence[pb.HistoryEvent],
                new_events: Sequence[pb.HistoryEvent]) -> ExecutionResult:
        executor = dapr_worker._OrchestrationExecutor(self.registry, _LOG)
        results = executor.execute(instance_id, dapr.to_dapr_events(old_events), dapr.to_dapr_events(new_events))
        return ExecutionResult(
            actions=[dapr.from_dapr_action(a) for a in results.actions],
            custom_status=results.encoded_custom_status,
            custom_status_set=results.encoded_custom_status is not None,
        )


def run_on_engine(scenario: Scenario, *, sticky: bool = True) -> tuple[Engine, str]:
    return driver.run_on_engine(scenario, [dapr.workflow(fn) for fn in corpus.WORKFLOWS], corpus.ACTIVITIES,
                                sticky=sticky)


# -- the same histories as Dapr's own executor ---------------------------------------------------------------


@pytest.mark.parametrize("sticky", [True, False], ids=["sticky", "stateless"])
@pytest.mark.parametrize("scenario_id", sorted(BY_ID))
def test_the_engine_writes_the_histories_of_daprs_own_executor(scenario_id: str, sticky: bool) -> None:
    scenario = BY_ID[scenario_id]
    reference = driver.run_scenario(DaprStatelessExecutor(), corpus.ACTIVITIES, scenario)
    engine, root = run_on_engine(scenario, sticky=sticky)

    assert engine.client.get_orchestration_state(root).output == reference.root_instance.output
    for iid, instance in reference.instances.items():
        assert [normalized(e) for e in engine.history(iid)] == [normalized(e) for e in instance.history], iid


@pytest.mark.parametrize("scenario_id", sorted(BY_ID))
def test_final_histories_replay_from_scratch_and_in_daprs_executor(scenario_id: str) -> None:
    engine, _ = run_on_engine(BY_ID[scenario_id])
    reference = DaprStatelessExecutor()
    for state in engine.client.get_all_orchestration_states():
        history = engine.history(state.instance_id)
        executor = engine.new_executor(state.instance_id)
        assert isinstance(executor, dapr.DaprExecutor)
        executor.strict = True
        assert executor.execute(history, []).actions == []
        # Dapr's executor itself, given the history up to its completion, completes the same way
        last_start = max(i for i, e in enumerate(history) if e.HasField("orchestratorStarted"))
        redone = reference.execute(state.instance_id, history[:last_start], history[last_start:-1])
        [completion] = [a for a in redone.actions if a.HasField("completeOrchestration")]
        recorded = history[-1].executionCompleted
        assert completion.completeOrchestration.orchestrationStatus == recorded.orchestrationStatus
        assert completion.completeOrchestration.result == recorded.result


# -- the tester ---------------------------------------------------------------------------------------------


def charge(ctx: wf.WorkflowActivityContext, order: dict[str, Any]) -> str:
    return f"receipt-{order['id']}-{ctx.workflow_id}-{ctx.task_id}"


def order_workflow(ctx: wf.DaprWorkflowContext, order: dict[str, Any]) -> Any:
    receipt = yield ctx.call_activity(charge, input=order)
    approved = yield ctx.wait_for_external_event("approval", timeout=timedelta(days=2))
    return {"receipt": receipt, "approved": approved}


def test_mocks_the_virtual_clock_and_events_work_for_dapr_workflows() -> None:
    tester = WorkflowTester()
    tester.on_activity(charge).returns("r-1").once()
    tester.at(timedelta(hours=30), lambda t: t.raise_event("approval", True))

    result = tester.run(dapr.workflow(order_workflow), input={"id": 7})

    assert result.output == {"receipt": "r-1", "approved": True}
    assert result.virtual_duration == timedelta(hours=30)
    tester.assert_expectations()


def test_activities_receive_a_workflow_activity_context() -> None:
    seen: list[Any] = []

    def record(ctx: wf.WorkflowActivityContext, value: str) -> str:
        seen.append(ctx)
        return value

    def workflow(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
        return (yield ctx.call_activity(record, input="x"))

    assert WorkflowTester().run(dapr.workflow(workflow)).output == "x"
    [ctx] = seen
    assert isinstance(ctx, wf.WorkflowActivityContext)
    assert (ctx.workflow_id, ctx.task_id) == ("test-instance", 1)


def test_a_long_timer_is_one_timer_in_dapr() -> None:
    def nap(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
        yield ctx.create_timer(timedelta(days=30))
        return "rested"

    result = WorkflowTester().run(dapr.workflow(nap))

    assert result.virtual_duration == timedelta(days=30)
    assert sum(e.HasField("timerCreated") for e in result.history) == 1


def test_an_indefinite_wait_records_a_timer_that_never_fires() -> None:
    tester = WorkflowTester()
    tester.at(timedelta(days=400), lambda t: t.raise_event("go", "late"))

    result = tester.run(dapr.workflow(corpus.d_event))

    assert result.output == "late"
    assert result.custom_status == "got it"
    [timer] = [e.timerCreated for e in result.history if e.HasField("timerCreated")]
    assert timer.fireAt.seconds == 253402300799  # Dapr's optional timer: recorded, never delivered
    assert not any(e.HasField("timerFired") for e in result.history)


def test_a_workflow_waiting_forever_stalls_with_the_event_name() -> None:
    with pytest.raises(OrchestrationStalledError, match="'go'"):
        WorkflowTester().run(dapr.workflow(corpus.d_event))


def test_child_workflows_get_default_ids_and_can_be_mocked() -> None:
    tester = WorkflowTester()
    tester.on_sub_orchestrator(corpus.d_child, {"never": "matches"}).returns("no")
    tester.on_sub_orchestrator(corpus.d_child).returns("mocked")

    result = tester.run(dapr.workflow(corpus.d_children))

    assert result.output == ["mocked"] * 4
    assert [c.instance_id for c in tester.calls(corpus.d_child)] == ["test-instance"] * 4
    created = [e.subOrchestrationInstanceCreated.instanceId for e in result.history
               if e.HasField("subOrchestrationInstanceCreated")]
    assert created == ["test-instance:0001", "test-instance:0002", "test-instance:0003", "test-instance-named"]


def test_dapr_retries_schedule_each_attempt_under_a_new_id() -> None:
    tester = WorkflowTester()
    tester.on_activity(corpus.flaky).raises(ConnectionError("down")).times(2)
    tester.on_activity(corpus.flaky).returns("ok")

    result = tester.run(dapr.workflow(corpus.d_retry))

    assert result.output == "ok"
    assert result.virtual_duration == timedelta(seconds=2 + 4)
    assert [e.eventId for e in result.history if e.HasField("taskScheduled")] == [1, 3, 5]


def test_continue_as_new() -> None:
    result = WorkflowTester().run(dapr.workflow(corpus.d_counter), input={"round": 1, "value": 0})
    assert result.output == {"rounds": 3, "value": 3}


def test_is_patched_is_recorded_so_replay_takes_the_same_branch() -> None:
    def patched(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
        yield ctx.create_timer(timedelta(hours=1))
        if ctx.is_patched("faster-shipping"):
            return (yield ctx.call_activity(corpus.greet, input="express"))
        return (yield ctx.call_activity(corpus.greet, input="standard"))

    result = WorkflowTester().run(dapr.workflow(patched))  # the replay check replays it from scratch

    assert result.output == "Hello, express!"
    registry = Registry()
    registry.add_orchestrator(dapr.workflow(patched))
    assert Replayer(registry).replay(result.history).ok
    versions = [e.workflowStarted.version for e in dapr.to_dapr_events(result.history) if e.HasField("workflowStarted")]
    assert [list(v.patches) for v in versions] == [[], ["faster-shipping"], []]  # the step that first asked


def test_versioned_workflows_replay_with_the_version_they_started_with() -> None:
    def v1() -> Any:  # a fresh function per app process (Dapr marks a function as registered)
        def shipping_v1(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
            yield ctx.create_timer(timedelta(hours=1))
            return "v1"

        return shipping_v1

    def stamp(ctx: wf.WorkflowActivityContext, version: str) -> str:
        return f"made by {version}"

    def v2(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
        return (yield ctx.call_activity(stamp, input="v2"))

    old = wf.WorkflowRuntime()
    old.register_versioned_workflow(v1(), name="shipping", version_name="1", is_latest=True)
    tester = WorkflowTester()
    dapr.add_registrations(tester, old)
    tester.start("shipping")
    tester.step()  # v1 started and waits for its timer

    new = wf.WorkflowRuntime()  # a deploy: v2 is the latest, v1 is still registered
    new.register_versioned_workflow(v1(), name="shipping", version_name="1", is_latest=False)
    new.register_versioned_workflow(v2, name="shipping", version_name="2", is_latest=True)
    new.register_activity(stamp)
    engine = Engine(backend=tester.engine.backend, clock=tester.engine.clock)
    dapr.add_registrations(engine, new)

    in_flight = engine.client.wait_for_orchestration_completion("test-instance")
    fresh = engine.client.wait_for_orchestration_completion(engine.client.schedule_new_orchestration("shipping"))

    assert (in_flight.output, fresh.output) == ("v1", "made by v2")


def test_add_registrations_keeps_alternate_names_and_mocks_resolve_them() -> None:
    runtime = wf.WorkflowRuntime()

    @runtime.activity(name="charge_card")
    def charge_it(ctx: wf.WorkflowActivityContext, amount: int) -> str:
        return f"charged {amount}"

    @runtime.workflow(name="Checkout")
    def checkout(ctx: wf.DaprWorkflowContext, amount: int) -> Any:
        return (yield ctx.call_activity(charge_it, input=amount))

    tester = WorkflowTester()
    assert dapr.add_registrations(tester, runtime) == ["Checkout", "charge_card"]
    assert tester.run("Checkout", input=5).output == "charged 5"

    tester.on_activity(charge_it).returns("mocked")  # by the decorated function: resolves to its Dapr name
    assert tester.run("Checkout", input=5).output == "mocked"
    assert [c.name for c in tester.calls("charge_card")] == ["charge_card", "charge_card"]


def test_a_native_parent_calls_a_dapr_child() -> None:
    def native_parent(ctx: Any, _: Any) -> Any:
        return (yield ctx.call_sub_orchestrator(dapr.workflow(corpus.d_child), input=6))

    assert WorkflowTester().run(native_parent).output == {"child": "test-instance:0001", "value": 36}


def test_strict_mode_catches_the_wall_clock_in_dapr_code() -> None:
    def reads_the_clock(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
        return (yield ctx.call_activity(corpus.square, input=datetime.now().second))

    with pytest.raises(NonDeterministicCallError, match="reads_the_clock"):
        WorkflowTester().run(dapr.workflow(reads_the_clock))


def test_the_replay_check_reports_dapr_non_determinism_with_the_event_index() -> None:
    runs = itertools.count()

    def moody(ctx: wf.DaprWorkflowContext, _: Any) -> Any:
        if next(runs) == 0:
            yield ctx.call_activity(corpus.square, input=1)
        else:
            yield ctx.call_activity(corpus.greet, input="1")
        return "done"

    with pytest.raises(NonDeterminismError, match="run by Dapr's executor") as caught:
        WorkflowTester().run(dapr.workflow(moody))
    assert caught.value.index == 2
    assert caught.value.actual == "call_activity #1 greet input=\"1\""


FAULTS = [CrashAfterActivity(), CrashDuringStep()]


@settings(max_examples=30, database=None, derandomize=True, deadline=None)
@given(schedule=schedules(faults=FAULTS))
def test_fuzzed_schedules_keep_the_outcome_of_a_dapr_workflow(schedule: Schedule) -> None:
    tester = WorkflowTester()
    tester.at(timedelta(hours=1), lambda t: t.raise_event("approval", "alice"))

    result = tester.run(dapr.workflow(corpus.d_children), schedule=schedule)  # each run is replay-checked

    assert result.output == [
        {"child": "test-instance:0001", "value": 1},
        {"child": "test-instance:0002", "value": 4},
        {"child": "test-instance:0003", "value": 9},
        {"child": "test-instance-named", "value": 16},
    ]
