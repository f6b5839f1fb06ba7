"""Retry policies: attempts, the history pattern of retries, backoff delays, timeouts, predicates."""

from __future__ import annotations

from datetime import timedelta

import pytest

from wftest import (
    ActivityContext,
    Engine,
    OrchestrationContext,
    OrchestrationStatus,
    RetryPolicy,
    TaskFailedError,
    when_all,
)

from ._support import Gen, at, ids, of_kind


class Flaky:
    """An activity that fails its first ``failures`` calls, then returns the attempt number."""

    def __init__(self, failures: int, error: type[Exception] = ValueError) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0
        self.__name__ = "flaky"

    def __call__(self, ctx: ActivityContext, value: object) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"attempt {self.calls} failed")
        return self.calls


def run_with(policy: RetryPolicy, activity: Flaky, instance_id: str = "r") -> tuple[Engine, str]:
    def retrying(ctx: OrchestrationContext, _: None) -> Gen:
        result = yield ctx.call_activity(activity, retry_policy=policy)
        return result

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(retrying, instance_id=instance_id)
    engine.client.wait_for_orchestration_completion(iid)
    return engine, iid


def retry_delays(engine: Engine, iid: str) -> list[float]:
    """For each retry timer: its fireAt minus the time of the failure it follows, in seconds."""
    delays = []
    last_failure = None
    for event in engine.history(iid):
        if event.HasField("taskFailed") or event.HasField("subOrchestrationInstanceFailed"):
            last_failure = at(event)
        elif event.HasField("timerCreated"):
            assert last_failure is not None
            delays.append((event.timerCreated.fireAt.ToDatetime() - last_failure).total_seconds())
    return delays


def test_retry_succeeds_on_the_third_attempt() -> None:
    # given an activity that fails twice, and a policy of 3 attempts
    flaky = Flaky(failures=2)
    policy = RetryPolicy(first_retry_interval=timedelta(seconds=5), max_number_of_attempts=3)
    # when the orchestration runs
    engine, iid = run_with(policy, flaky)
    # then the third attempt's result is returned
    state = engine.client.get_orchestration_state(iid)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.output == 3
    assert flaky.calls == 3


def test_retry_gives_up_when_attempts_are_exhausted() -> None:
    # given an activity that always fails, and a policy of 3 attempts
    flaky = Flaky(failures=100)
    policy = RetryPolicy(first_retry_interval=timedelta(seconds=5), max_number_of_attempts=3)
    # when the orchestration runs
    engine, iid = run_with(policy, flaky)
    # then it fails after exactly three attempts with the last failure
    state = engine.client.get_orchestration_state(iid)
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert flaky.calls == 3
    assert "attempt 3 failed" in state.failure_details.message


def test_retry_history_reuses_the_task_id_with_a_timer_between_attempts() -> None:
    # given an activity that always fails and a 3-attempt policy
    policy = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=3)
    # when the orchestration runs
    engine, iid = run_with(policy, Flaky(failures=100))
    # then the history follows durabletask-python: the original id again after each retry timer
    assert ids(engine.history(iid)) == [
        "ExecutionStarted",
        "TaskScheduled#1", "TaskFailed#1", "TimerCreated#2", "TimerFired#2",
        "TaskScheduled#1", "TaskFailed#1", "TimerCreated#3", "TimerFired#3",
        "TaskScheduled#1", "TaskFailed#1",
        "ExecutionCompleted",
    ]


def test_retry_delays_grow_by_the_backoff_coefficient_up_to_the_maximum() -> None:
    # given first 2 s, coefficient 2, max 10 s, and 6 attempts that all fail
    policy = RetryPolicy(first_retry_interval=timedelta(seconds=2), backoff_coefficient=2,
                         max_retry_interval=timedelta(seconds=10), max_number_of_attempts=6)
    # when the orchestration runs
    engine, iid = run_with(policy, Flaky(failures=100))
    # then the retry timers fire 2, 4, 8, 10, 10 s after each failure
    assert retry_delays(engine, iid) == [2, 4, 8, 10, 10]
    assert engine.clock.now().isoformat() == "2024-01-01T00:00:34"


def test_retry_delays_are_constant_with_coefficient_one() -> None:
    # given first 2 s and the default coefficient (1)
    policy = RetryPolicy(first_retry_interval=timedelta(seconds=2), max_number_of_attempts=5)
    # when the orchestration runs
    engine, iid = run_with(policy, Flaky(failures=100))
    # then every delay is 2 s
    assert retry_delays(engine, iid) == [2, 2, 2, 2]


def test_retry_timeout_is_measured_in_orchestration_time() -> None:
    # given retries every 10 s (virtual time), up to 10 attempts, but a retry timeout of 25 s
    flaky = Flaky(failures=100)
    policy = RetryPolicy(first_retry_interval=timedelta(seconds=10), max_number_of_attempts=10,
                         retry_timeout=timedelta(seconds=25))
    # when the orchestration runs (only microseconds of wall-clock time pass)
    engine, iid = run_with(policy, flaky)
    # then attempts at 0, 10, 20 and 30 s were made, and the failure at 30 s (past 0 + 25 s) stopped it
    assert flaky.calls == 4
    assert [at(e).second for e in of_kind(engine.history(iid), "taskFailed")] == [0, 10, 20, 30]
    assert engine.client.get_orchestration_state(iid).runtime_status == OrchestrationStatus.FAILED


def test_retry_handle_predicate_stops_retrying_when_it_says_no() -> None:
    # given a policy that retries only ValueError, and an activity raising KeyError
    flaky = Flaky(failures=100, error=KeyError)
    policy = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=5,
                         handle=lambda err: err.details.is_caused_by(ValueError))
    # when the orchestration runs
    engine, iid = run_with(policy, flaky)
    # then there is no retry
    assert flaky.calls == 1
    assert engine.client.get_orchestration_state(iid).runtime_status == OrchestrationStatus.FAILED
    assert "timerCreated" not in [e.WhichOneof("eventType") for e in engine.history(iid)]


def test_retry_handle_predicate_retries_when_it_says_yes() -> None:
    # given the same policy and an activity raising ValueError twice
    flaky = Flaky(failures=2, error=ValueError)
    policy = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=5,
                         handle=lambda err: err.details.is_caused_by(ValueError))
    # when the orchestration runs
    engine, iid = run_with(policy, flaky)
    # then it retried until success
    assert flaky.calls == 3
    assert engine.client.get_orchestration_state(iid).output == 3


def test_retry_policy_requires_a_positive_first_retry_interval() -> None:
    with pytest.raises(ValueError, match="first_retry_interval"):
        RetryPolicy(first_retry_interval=timedelta(0))
    with pytest.raises(ValueError, match="first_retry_interval"):
        RetryPolicy(first_retry_interval=timedelta(seconds=-1))


def test_retry_policy_defaults() -> None:
    policy = RetryPolicy(first_retry_interval=timedelta(seconds=1))
    assert policy.backoff_coefficient == 1
    assert policy.max_retry_interval is None and policy.retry_timeout is None and policy.handle is None


def test_exhausted_retries_raise_task_failed_error_at_the_yield() -> None:
    # given an orchestrator that catches the final failure
    flaky = Flaky(failures=100)
    policy = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=2)

    def catches(ctx: OrchestrationContext, _: None) -> Gen:
        try:
            yield ctx.call_activity(flaky, retry_policy=policy)
        except TaskFailedError as err:
            return err.details.message
        return None

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(catches)
    # then it sees the last attempt's failure
    assert engine.client.wait_for_orchestration_completion(iid).output == "attempt 2 failed"


attempts: dict[str, int] = {}


def flaky_child(ctx: OrchestrationContext, failures: int) -> str:
    attempts[ctx.instance_id] = attempts.get(ctx.instance_id, 0) + 1
    if attempts[ctx.instance_id] <= failures:
        raise RuntimeError(f"child attempt {attempts[ctx.instance_id]} failed")
    return f"child ok after {attempts[ctx.instance_id]}"


def test_sub_orchestration_retries_with_the_same_pattern() -> None:
    # given a child that fails twice, called with a 3-attempt retry policy
    attempts.clear()
    policy = RetryPolicy(first_retry_interval=timedelta(seconds=2), backoff_coefficient=2,
                         max_number_of_attempts=3)

    def retrying_parent(ctx: OrchestrationContext, _: None) -> Gen:
        result = yield ctx.call_sub_orchestrator(flaky_child, input=2, retry_policy=policy)
        return result

    engine = Engine()
    # when the parent runs
    iid = engine.client.schedule_new_orchestration(retrying_parent, instance_id="p")
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the third attempt succeeds, retried under the original id and child instance id
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.output == "child ok after 3"
    history = engine.history(iid)
    assert ids(history) == [
        "ExecutionStarted",
        "SubOrchestrationInstanceCreated#1", "SubOrchestrationInstanceFailed#1", "TimerCreated#2", "TimerFired#2",
        "SubOrchestrationInstanceCreated#1", "SubOrchestrationInstanceFailed#1", "TimerCreated#3", "TimerFired#3",
        "SubOrchestrationInstanceCreated#1", "SubOrchestrationInstanceCompleted#1",
        "ExecutionCompleted",
    ]
    created = of_kind(history, "subOrchestrationInstanceCreated")
    children = {e.subOrchestrationInstanceCreated.instanceId for e in created}
    assert children == {"p:0001"}
    assert retry_delays(engine, iid) == [2, 4]


class Permanent(Exception):
    """An error that asks retry policies to stop at once."""

    is_non_retriable = True


def test_non_retriable_failure_is_not_retried() -> None:
    # given an activity that raises a non-retriable error under a 5-attempt policy
    calls: list[int] = []

    def permanent(ctx: ActivityContext, _: None) -> None:
        calls.append(1)
        raise Permanent("do not retry")

    policy = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=5)

    def retrying_permanent(ctx: OrchestrationContext, _: None) -> Gen:
        yield ctx.call_activity(permanent, retry_policy=policy)

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(retrying_permanent)
    state = engine.client.wait_for_orchestration_completion(iid)
    # then it was tried once
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert calls == [1]


def test_retry_delay_longer_than_three_days_waits_on_chunked_timers_then_retries_under_the_original_id() -> None:
    # given an activity that fails once and a 7-day retry interval
    flaky = Flaky(failures=1)
    policy = RetryPolicy(first_retry_interval=timedelta(days=7), max_number_of_attempts=2)
    # when the orchestration runs
    engine, iid = run_with(policy, flaky)
    # then the retry waited 7 days in 3-day chunks and rescheduled task #1
    assert engine.client.get_orchestration_state(iid).output == 2
    assert ids(engine.history(iid)) == [
        "ExecutionStarted", "TaskScheduled#1", "TaskFailed#1",
        "TimerCreated#2", "TimerFired#2", "TimerCreated#3", "TimerFired#3", "TimerCreated#4", "TimerFired#4",
        "TaskScheduled#1", "TaskCompleted#1", "ExecutionCompleted",
    ]
    assert engine.clock.now().isoformat() == "2024-01-08T00:00:00"


def test_parallel_retried_activities_each_keep_their_own_id() -> None:
    # given two activities in parallel, each failing twice, under a 3-attempt policy
    failures: dict[str, int] = {}

    def fails_twice(ctx: ActivityContext, key: str) -> str:
        failures[key] = failures.get(key, 0) + 1
        if failures[key] < 3:
            raise ValueError(key)
        return key

    policy = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=3)

    def parallel(ctx: OrchestrationContext, _: None) -> Gen:
        results = yield when_all([ctx.call_activity(fails_twice, input=k, retry_policy=policy) for k in "ab"])
        return results

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(parallel)
    assert engine.client.wait_for_orchestration_completion(iid).output == ["a", "b"]
    # then the retries reuse ids 1 and 2, and each retry timer takes a new id
    assert ids(engine.history(iid)) == [
        "ExecutionStarted", "TaskScheduled#1", "TaskScheduled#2",
        "TaskFailed#1", "TaskFailed#2", "TimerCreated#3", "TimerCreated#4",
        "TimerFired#3", "TimerFired#4", "TaskScheduled#1", "TaskScheduled#2",
        "TaskFailed#1", "TaskFailed#2", "TimerCreated#5", "TimerCreated#6",
        "TimerFired#5", "TimerFired#6", "TaskScheduled#1", "TaskScheduled#2",
        "TaskCompleted#1", "TaskCompleted#2", "ExecutionCompleted",
    ]
