"""Sub-orchestrations: creation events, parent info, default ids, nesting, failures, termination."""

from __future__ import annotations

from datetime import timedelta

from wftest import (
    ActivityContext,
    Engine,
    OrchestrationContext,
    OrchestrationStatus,
    TaskFailedError,
    when_all,
)

from ._support import Gen, ids, of_kind


def double(ctx: ActivityContext, value: int) -> int:
    return value * 2


def doubler(ctx: OrchestrationContext, value: int) -> Gen:
    result = yield ctx.call_activity(double, input=value)
    return result


def failing_child(ctx: OrchestrationContext, reason: str) -> Gen:
    yield ctx.call_activity(double, input=1)
    raise ValueError(f"child broke: {reason}")


def waits_forever(ctx: OrchestrationContext, _: None) -> Gen:
    value = yield ctx.wait_for_external_event("never")
    return value


def test_sub_orchestration_with_explicit_id_records_creation_and_parent_info() -> None:
    # given a parent that starts a child under an explicit id
    def parent(ctx: OrchestrationContext, value: int) -> Gen:
        result = yield ctx.call_sub_orchestrator(doubler, input=value, instance_id="kid")
        return result

    engine = Engine()
    # when it runs
    iid = engine.client.schedule_new_orchestration(parent, input=21, instance_id="p")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the parent's history records the creation and the child's result
    assert state.output == 42
    history = engine.history(iid)
    created = of_kind(history, "subOrchestrationInstanceCreated")
    assert len(created) == 1
    assert created[0].eventId == 1
    body = created[0].subOrchestrationInstanceCreated
    assert (body.name, body.instanceId, body.input.value) == ("doubler", "kid", "21")
    completed = of_kind(history, "subOrchestrationInstanceCompleted")[0].subOrchestrationInstanceCompleted
    assert (completed.taskScheduledId, completed.result.value) == (1, "42")
    # and the child started with parentInstance{taskScheduledId, name, instance} and its own execution id
    child_history = engine.history("kid")
    started = of_kind(child_history, "executionStarted")[0].executionStarted
    assert started.parentInstance.taskScheduledId == 1
    assert started.parentInstance.name.value == "parent"
    assert started.parentInstance.orchestrationInstance.instanceId == "p"
    parent_execution = of_kind(history, "executionStarted")[0].executionStarted.orchestrationInstance.executionId
    assert started.orchestrationInstance.executionId.value
    assert started.orchestrationInstance.executionId.value != parent_execution.value
    child = engine.client.get_orchestration_state("kid")
    assert child.runtime_status == OrchestrationStatus.COMPLETED
    assert child.parent_instance_id == "p"


def test_sub_orchestration_default_id_is_parent_id_colon_sequence_in_hex() -> None:
    # given a parent that calls activities and then children without ids
    def parent_default(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.call_activity(double, input=1)  # id 1
        first = yield ctx.call_sub_orchestrator(doubler, input=1)  # id 2
        for i in range(7):  # ids 3..9
            yield ctx.call_activity(double, input=i)
        tenth = yield ctx.call_sub_orchestrator(doubler, input=5)  # id 10
        return [first, tenth]

    engine = Engine()
    # when it runs
    iid = engine.client.schedule_new_orchestration(parent_default, instance_id="p")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the children are "p:0002" and "p:000a"
    assert state.output == [2, 10]
    created = [e.subOrchestrationInstanceCreated.instanceId
               for e in of_kind(engine.history(iid), "subOrchestrationInstanceCreated")]
    assert created == ["p:0002", "p:000a"]
    assert engine.client.get_orchestration_state("p:0002").runtime_status == OrchestrationStatus.COMPLETED


def test_first_sub_orchestration_default_id_is_p_0001() -> None:
    # given a parent whose first action is a child without an id
    def parent_first(ctx: OrchestrationContext, _: None) -> Gen:
        result = yield ctx.call_sub_orchestrator(doubler, input=4)
        return result

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(parent_first, instance_id="p")
    assert engine.client.wait_for_orchestration_completion(iid).output == 8
    # then the child is "p:0001"
    assert engine.client.get_orchestration_state("p:0001").parent_instance_id == "p"


def test_sub_orchestrations_nest_three_deep() -> None:
    # given an orchestrator that calls itself until depth 3
    def nested(ctx: OrchestrationContext, depth: int) -> Gen:
        if depth == 3:
            leaf = yield ctx.call_activity(double, input=depth)
            return [ctx.instance_id, leaf]
        below = yield ctx.call_sub_orchestrator(nested, input=depth + 1)
        return [ctx.instance_id, *below]

    engine = Engine()
    # when the top runs
    iid = engine.client.schedule_new_orchestration(nested, input=1, instance_id="top")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then each level ran under the default id of its parent and the leaf's result came all the way up
    assert state.output == ["top", "top:0001", "top:0001:0001", 6]
    assert engine.client.get_orchestration_state("top:0001:0001").parent_instance_id == "top:0001"


def test_sub_orchestration_failure_message_includes_the_childs_message() -> None:
    # given a parent whose child fails
    def parent_of_failure(ctx: OrchestrationContext, _: None) -> Gen:
        try:
            yield ctx.call_sub_orchestrator(failing_child, input="disk full")
        except TaskFailedError as err:
            return str(err)
        return None

    engine = Engine()
    # when it runs
    iid = engine.client.schedule_new_orchestration(parent_of_failure, instance_id="p")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the parent's task fails with a message that includes the child's
    assert "child broke: disk full" in state.output
    failed = of_kind(engine.history(iid), "subOrchestrationInstanceFailed")[0].subOrchestrationInstanceFailed
    assert failed.taskScheduledId == 1
    assert "child broke: disk full" in failed.failureDetails.errorMessage
    assert engine.client.get_orchestration_state("p:0001").runtime_status == OrchestrationStatus.FAILED


def test_uncaught_sub_orchestration_failure_fails_the_parent() -> None:
    # given a parent that does not catch its child's failure
    def parent_uncaught(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.call_sub_orchestrator(failing_child, input="boom")
        return None

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(parent_uncaught)
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the parent is FAILED and its message includes the child's
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert "child broke: boom" in state.failure_details.message


def test_terminated_child_fails_the_parents_task() -> None:
    # given a parent waiting on a child that waits forever
    def parent_of_terminated(ctx: OrchestrationContext, _: None) -> Gen:
        try:
            yield ctx.call_sub_orchestrator(waits_forever, instance_id="stuck")
        except TaskFailedError as err:
            return {"type": err.details.error_type, "message": err.details.message}
        return "succeeded"

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(parent_of_terminated, instance_id="p")
    engine.run_until_idle()
    # when the child is terminated
    engine.client.terminate_orchestration("stuck", output="stop")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the parent's task fails (wftest's choice), and the parent can read why
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.output["type"] == "wftest.errors.OrchestrationTerminatedError"
    assert "terminated" in state.output["message"]
    assert engine.client.get_orchestration_state("stuck").runtime_status == OrchestrationStatus.TERMINATED
    assert "SubOrchestrationInstanceFailed#1" in ids(engine.history(iid))


def test_parallel_sub_orchestrations_get_distinct_default_ids() -> None:
    # given a parent fanning out three children at once
    def parent_fan(ctx: OrchestrationContext, _: None) -> Gen:
        results = yield when_all([ctx.call_sub_orchestrator(doubler, input=i) for i in (1, 2, 3)])
        return results

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(parent_fan, instance_id="p")
    # then results come back in input order from p:0001..p:0003
    assert engine.client.wait_for_orchestration_completion(iid).output == [2, 4, 6]
    for child in ("p:0001", "p:0002", "p:0003"):
        assert engine.client.get_orchestration_state(child).runtime_status == OrchestrationStatus.COMPLETED


def test_sub_orchestration_with_the_id_of_a_running_instance_fails_the_parents_task() -> None:
    # given an instance "busy" that is running
    def parent_of_clash(ctx: OrchestrationContext, _: None) -> Gen:
        try:
            yield ctx.call_sub_orchestrator(doubler, input=1, instance_id="busy")
        except TaskFailedError as err:
            return [err.details.error_type, err.details.message]
        return "started"

    engine = Engine()
    engine.client.schedule_new_orchestration(waits_forever, instance_id="busy")
    engine.run_until_idle()
    # when a parent starts a child under that id
    iid = engine.client.schedule_new_orchestration(parent_of_clash)
    error_type, message = engine.client.wait_for_orchestration_completion(iid).output
    # then the parent's task fails (never hangs) with a message naming the id, and "busy" is untouched
    assert error_type == "wftest.errors.InstanceAlreadyExistsError"
    assert "'busy'" in message and "already exists" in message
    assert engine.client.get_orchestration_state("busy").name == "waits_forever"


def test_child_that_continues_as_new_returns_its_final_result_to_the_parent() -> None:
    # given a child that continues as new three times
    def restarting_child(ctx: OrchestrationContext, n: int) -> Gen:
        if n < 3:
            yield ctx.create_timer(timedelta(seconds=1))
            ctx.continue_as_new(n + 1)
            return None
        return [n, ctx.parent_instance_id]

    def parent_of_restarting(ctx: OrchestrationContext, _: None) -> Gen:
        result = yield ctx.call_sub_orchestrator(restarting_child, input=0)
        return result

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(parent_of_restarting, instance_id="p")
    # then the parent gets the last generation's result, and the child keeps its parent
    assert engine.client.wait_for_orchestration_completion(iid).output == [3, "p"]
