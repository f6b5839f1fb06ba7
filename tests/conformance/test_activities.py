"""Activities: sequences, fan-out/fan-in, failures and their details, unknown names."""

from __future__ import annotations

from wftest import (
    ActivityContext,
    Engine,
    OrchestrationContext,
    OrchestrationStatus,
    TaskFailedError,
    when_all,
)

from ._support import Gen, ids, of_kind


def add_one(ctx: ActivityContext, value: int) -> int:
    return value + 1


def square(ctx: ActivityContext, value: int) -> int:
    return value * value


def explode(ctx: ActivityContext, value: str) -> None:
    raise ValueError(f"bad input {value!r}")


def test_activity_sequence_passes_each_result_to_the_next() -> None:
    # given an orchestrator chaining three activities
    def chain(ctx: OrchestrationContext, start: int) -> Gen:
        value = start
        for _ in range(3):
            value = yield ctx.call_activity(add_one, input=value)
        return value

    engine = Engine()
    # when it runs
    iid = engine.client.schedule_new_orchestration(chain, input=10, instance_id="chain")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the result went through all three, scheduled one after another with ids 1, 2, 3
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.output == 13
    assert ids(engine.history(iid)) == [
        "ExecutionStarted", "TaskScheduled#1", "TaskCompleted#1", "TaskScheduled#2", "TaskCompleted#2",
        "TaskScheduled#3", "TaskCompleted#3", "ExecutionCompleted",
    ]


def test_activity_receives_its_input_and_returns_json_payloads() -> None:
    # given an activity that reads a structured input
    def describe(ctx: ActivityContext, order: dict) -> dict:
        return {"sku": order["sku"], "total": order["qty"] * 2, "tags": ["a", "b"]}

    def order_flow(ctx: OrchestrationContext, order: dict) -> Gen:
        result = yield ctx.call_activity(describe, input=order)
        return result

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(order_flow, input={"sku": "A1", "qty": 3})
    # then the structured result round-trips
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == {"sku": "A1", "total": 6, "tags": ["a", "b"]}
    scheduled = of_kind(engine.history(iid), "taskScheduled")[0].taskScheduled
    assert scheduled.name == "describe"


def test_fan_out_fan_in_of_100_activities_returns_results_in_input_order() -> None:
    # given an orchestrator that fans out 100 activities at once
    def fan_out(ctx: OrchestrationContext, n: int) -> Gen:
        results = yield when_all([ctx.call_activity(square, input=i) for i in range(n)])
        return results

    engine = Engine()
    # when it runs
    iid = engine.client.schedule_new_orchestration(fan_out, input=100, instance_id="fan")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then all results arrive, in input order, and all 100 were scheduled in the first step with ids 1..100
    assert state.output == [i * i for i in range(100)]
    history = engine.history(iid)
    scheduled = of_kind(history, "taskScheduled")
    assert [e.eventId for e in scheduled] == list(range(1, 101))
    assert history.index(scheduled[-1]) == 101  # OrchestratorStarted, ExecutionStarted, then the 100
    assert len(of_kind(history, "taskCompleted")) == 100


def test_failed_activity_records_task_failed_with_failure_details() -> None:
    # given an orchestrator whose activity raises ValueError, and that does not catch it
    def fails(ctx: OrchestrationContext, value: str) -> Gen:
        yield ctx.call_activity(explode, input=value)
        return "unreachable"

    engine = Engine()
    # when it runs
    iid = engine.client.schedule_new_orchestration(fails, input="x", instance_id="fails")
    engine.client.wait_for_orchestration_completion(iid)
    # then the history holds TaskFailed for task 1 with the error type, message and stack trace
    failed = of_kind(engine.history(iid), "taskFailed")
    assert len(failed) == 1
    body = failed[0].taskFailed
    assert body.taskScheduledId == 1
    assert body.failureDetails.errorType == "builtins.ValueError"
    assert body.failureDetails.errorMessage == "bad input 'x'"
    assert "explode" in body.failureDetails.stackTrace.value
    assert 'raise ValueError(f"bad input {value!r}")' in body.failureDetails.stackTrace.value


def test_uncaught_activity_failure_fails_the_orchestration_with_its_details() -> None:
    # given an orchestrator that does not catch its activity's failure
    def fails_uncaught(ctx: OrchestrationContext, value: str) -> Gen:
        yield ctx.call_activity(explode, input=value)
        return "unreachable"

    engine = Engine()
    # when it runs
    iid = engine.client.schedule_new_orchestration(fails_uncaught, input="y")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then it is FAILED, with the activity's failure in its details
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert state.failure_details is not None
    assert "bad input 'y'" in state.failure_details.message
    assert state.failure_details.is_caused_by(ValueError)
    assert state.failure_details.error_type == "wftest.errors.TaskFailedError"
    assert state.failure_details.inner_failure is not None
    assert state.failure_details.inner_failure.error_type == "builtins.ValueError"


def test_orchestrator_catches_task_failed_error_at_the_yield() -> None:
    # given an orchestrator that catches its activity's failure
    def catches(ctx: OrchestrationContext, value: str) -> Gen:
        try:
            yield ctx.call_activity(explode, input=value)
        except TaskFailedError as err:
            return {"type": err.details.error_type, "message": err.details.message,
                    "has_stack": bool(err.details.stack_trace)}
        return None

    engine = Engine()
    # when it runs
    iid = engine.client.schedule_new_orchestration(catches, input="z")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then it completes with what it read from the error's details
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.output == {"type": "builtins.ValueError", "message": "bad input 'z'", "has_stack": True}


def test_orchestrator_that_raises_fails_with_failure_details() -> None:
    # given an orchestrator that raises
    def broken(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.call_activity(add_one, input=1)
        raise RuntimeError("orchestrator gave up")

    engine = Engine()
    # when it runs
    iid = engine.client.schedule_new_orchestration(broken)
    state = engine.client.wait_for_orchestration_completion(iid)
    # then it is FAILED with the exception's type, message and stack trace
    assert state.runtime_status == OrchestrationStatus.FAILED
    details = state.failure_details
    assert details is not None
    assert details.error_type == "builtins.RuntimeError"
    assert details.message == "orchestrator gave up"
    assert details.stack_trace and "broken" in details.stack_trace
    completed = of_kind(engine.history(iid), "executionCompleted")[0].executionCompleted
    assert completed.failureDetails.errorType == "builtins.RuntimeError"


def test_unregistered_activity_name_fails_the_orchestration_naming_it() -> None:
    # given an orchestrator calling an activity by a name nobody registered
    def calls_unknown(ctx: OrchestrationContext, _: None) -> Gen:
        result = yield ctx.call_activity("no_such_activity", input=1)
        return result

    engine = Engine()
    # when it runs (it must not hang)
    iid = engine.client.schedule_new_orchestration(calls_unknown)
    state = engine.client.wait_for_orchestration_completion(iid)
    # then it is FAILED with a message naming the activity
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert state.failure_details is not None
    assert "no_such_activity" in state.failure_details.message
    failed = of_kind(engine.history(iid), "taskFailed")[0].taskFailed
    assert "no_such_activity" in failed.failureDetails.errorMessage


def test_unregistered_orchestrator_name_fails_naming_it() -> None:
    # given an engine where no orchestrator is registered as "no_such_orchestrator"
    engine = Engine()
    # when an instance of it is scheduled by name
    iid = engine.client.schedule_new_orchestration("no_such_orchestrator", input=1)
    state = engine.client.wait_for_orchestration_completion(iid)
    # then it is FAILED (never hangs) with a message naming it
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert state.failure_details is not None
    assert "no_such_orchestrator" in state.failure_details.message


def test_activity_registered_under_a_name_is_called_by_that_name() -> None:
    # given an activity registered under an explicit name
    engine = Engine()
    engine.add_named_activity("plus-one", add_one)

    def by_name(ctx: OrchestrationContext, value: int) -> Gen:
        result = yield ctx.call_activity("plus-one", input=value)
        return result

    # when an orchestrator calls it by that name
    iid = engine.client.schedule_new_orchestration(by_name, input=41)
    # then it runs
    assert engine.client.wait_for_orchestration_completion(iid).output == 42
