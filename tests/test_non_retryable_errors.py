"""Errors as go-workflows and Temporal users expect them: non-retryable errors, failure details with the chain
of causes, ``is_caused_by``; through activities, sub-orchestrations and saved histories."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conformance._support import Gen, ids, of_kind
from wftest import (
    ActivityContext,
    Engine,
    FailureDetails,
    NonRetryableError,
    OrchestrationContext,
    OrchestrationStatus,
    Replayer,
    RetryPolicy,
    TaskFailedError,
    WorkflowTester,
    history,
)

POLICY = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=5)


class CardDeclined(NonRetryableError):
    """A domain error that is permanent by inheritance."""


class Flagged(Exception):
    """Not a NonRetryableError, but asks to stop retrying through the attribute."""

    is_non_retriable = True


class GatewayError(Exception):
    """A wrapper raised from a lower-level cause."""


calls: list[str] = []


def declines(ctx: ActivityContext, kind: str) -> None:
    calls.append(kind)
    if kind == "base":
        raise NonRetryableError("card declined")
    if kind == "subclass":
        raise CardDeclined("card 4242 declined")
    if kind == "attribute":
        raise Flagged("flagged")
    raise ValueError("transient")


def retrying(ctx: OrchestrationContext, kind: str) -> Gen:
    try:
        yield ctx.call_activity(declines, input=kind, retry_policy=POLICY)
    except TaskFailedError as err:
        return {"type": err.details.error_type, "non_retriable": err.details.is_non_retriable}
    return None


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [
        ("base", "wftest.errors.NonRetryableError"),
        ("subclass", f"{__name__}.CardDeclined"),
        ("attribute", f"{__name__}.Flagged"),
    ],
)
def test_a_non_retryable_activity_error_stops_the_retry_policy_at_once(kind: str, error_type: str) -> None:
    # given an activity raising a non-retryable error under a 5-attempt policy
    calls.clear()
    engine = Engine()
    # when the orchestration runs
    iid = engine.client.schedule_new_orchestration(retrying, input=kind)
    state = engine.client.wait_for_orchestration_completion(iid)
    # then the activity ran once, no retry timer was created, and the failure is recorded as non-retriable
    assert calls == [kind]
    assert state.output == {"type": error_type, "non_retriable": True}
    history_ = engine.history(iid)
    assert ids(history_) == ["ExecutionStarted", "TaskScheduled#1", "TaskFailed#1", "ExecutionCompleted"]
    failed = of_kind(history_, "taskFailed")[0].taskFailed.failureDetails
    assert failed.isNonRetriable and failed.errorType == error_type


def test_a_retryable_error_is_still_retried() -> None:
    calls.clear()
    result = WorkflowTester().run(retrying, input="transient")
    assert calls == ["transient"] * 5
    assert result.output == {"type": "builtins.ValueError", "non_retriable": False}


def test_the_handle_predicate_sees_the_whole_chain_of_causes() -> None:
    # given an activity that wraps a TimeoutError, and a policy that retries only failures caused by one
    attempts: list[int] = []

    def gateway(ctx: ActivityContext, _: Any) -> str:
        attempts.append(1)
        if len(attempts) < 3:
            try:
                raise TimeoutError("gateway slow")
            except TimeoutError as err:
                raise GatewayError("charge failed") from err
        if len(attempts) == 3:
            raise GatewayError("charge refused")  # no cause: not retried
        return "ok"

    policy = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=10,
                         handle=lambda err: err.details.is_caused_by(TimeoutError))

    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        try:
            yield ctx.call_activity(gateway, retry_policy=policy)
        except TaskFailedError as err:
            return err.details.message
        return "done"

    # when it runs, then the two wrapped timeouts were retried and the plain refusal was not
    result = WorkflowTester().run(wf)
    assert len(attempts) == 3
    assert result.output == "charge refused"


# -- sub-orchestrations -------------------------------------------------------------------------------------

child_runs: list[str] = []


def permanent_child(ctx: OrchestrationContext, how: str) -> Gen:
    if not ctx.is_replaying:  # the tester's replay check runs the code again
        child_runs.append(how)
    if how == "raises":
        raise CardDeclined("declined in the child")
    yield ctx.call_activity(declines, input="base")  # not caught: the failure escapes the child


def transient_child(ctx: OrchestrationContext, _: Any) -> None:
    if not ctx.is_replaying:
        child_runs.append("transient")
    raise ValueError("try again")


def parent(ctx: OrchestrationContext, how: str) -> Gen:
    child = transient_child if how == "transient" else permanent_child
    try:
        yield ctx.call_sub_orchestrator(child, input=how, retry_policy=POLICY)
    except TaskFailedError as err:
        chain = []
        details: FailureDetails | None = err.details
        while details is not None:
            chain.append(details.error_type)
            details = details.inner_failure
        return {"non_retriable": err.details.is_non_retriable, "chain": chain}
    return None


def test_a_child_raising_a_non_retryable_error_is_not_retried_by_the_parent() -> None:
    child_runs.clear()
    result = WorkflowTester().run(parent, input="raises")
    assert child_runs == ["raises"]
    assert result.output == {"non_retriable": True, "chain": [f"{__name__}.CardDeclined"]}


def test_a_child_that_lets_a_non_retryable_activity_failure_escape_is_not_retried_either() -> None:
    # as in go-workflows, where the permanent error passes through the child unchanged
    child_runs.clear()
    calls.clear()
    result = WorkflowTester().run(parent, input="lets-escape")
    assert child_runs == ["lets-escape"] and calls == ["base"]
    assert result.output == {
        "non_retriable": True,
        "chain": ["wftest.errors.TaskFailedError", "wftest.errors.NonRetryableError"],
    }


def test_a_failing_child_is_retried_when_its_error_is_retryable() -> None:
    child_runs.clear()
    result = WorkflowTester().run(parent, input="transient")
    assert child_runs == ["transient"] * 5
    assert result.output == {"non_retriable": False, "chain": ["builtins.ValueError"]}


def test_is_caused_by_reaches_an_activity_error_through_a_failed_child() -> None:
    # given a parent whose child fails because its activity raised a KeyError wrapped in a GatewayError
    def lookup(ctx: ActivityContext, _: Any) -> None:
        try:
            {}["sku"]
        except KeyError as err:
            raise GatewayError("no such sku") from err

    def child(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.call_activity(lookup)

    def top(ctx: OrchestrationContext, _: Any) -> Gen:
        try:
            yield ctx.call_sub_orchestrator(child)
        except TaskFailedError as err:
            d = err.details
            return [d.is_caused_by(KeyError), d.is_caused_by(LookupError), d.is_caused_by(GatewayError),
                    d.is_caused_by("builtins.LookupError"), d.is_caused_by("KeyError"), d.is_caused_by(OSError)]
        return None

    # then the parent sees every link of the chain: child failure -> TaskFailedError -> GatewayError -> KeyError
    assert WorkflowTester().run(top).output == [True, True, True, True, True, False]


# -- failure details ----------------------------------------------------------------------------------------


def raise_chain() -> BaseException:
    """RuntimeError raised from a GatewayError, which was raised while handling an OSError."""
    try:
        try:
            raise OSError("disk")
        except OSError:
            raise GatewayError("implicit context")  # noqa: B904 (the implicit __context__ is the point)
    except GatewayError as implicit:
        try:
            raise RuntimeError("explicit") from implicit
        except RuntimeError as explicit:
            return explicit
    raise AssertionError("unreachable")


def test_failure_details_keep_the_qualified_type_message_stack_and_causes() -> None:
    details = FailureDetails.from_exception(raise_chain())
    chain = []
    link: FailureDetails | None = details
    while link is not None:
        chain.append((link.error_type, link.message))
        link = link.inner_failure
    # explicit cause (__cause__), then the implicit one (__context__)
    assert chain == [
        ("builtins.RuntimeError", "explicit"),
        (f"{__name__}.GatewayError", "implicit context"),
        ("builtins.OSError", "disk"),
    ]
    assert details.stack_trace is not None and "raise_chain" in details.stack_trace


def test_raise_from_none_suppresses_the_context() -> None:
    try:
        try:
            raise KeyError("k")
        except KeyError:
            raise ValueError("clean") from None
    except ValueError as err:
        details = FailureDetails.from_exception(err)
    assert details.inner_failure is None


def test_a_cycle_of_causes_ends_the_chain() -> None:
    first, second = ValueError("a"), KeyError("b")
    first.__cause__, second.__cause__ = second, first
    details = FailureDetails.from_exception(first)
    assert details.inner_failure is not None and details.inner_failure.inner_failure is None


def test_a_long_chain_is_bounded_at_ten_failures() -> None:
    error: BaseException = ValueError("0")
    for n in range(1, 30):
        wrapper = ValueError(str(n))
        wrapper.__cause__ = error
        error = wrapper
    depth = 0
    link: FailureDetails | None = FailureDetails.from_exception(error)
    while link is not None:
        depth += 1
        link = link.inner_failure
    assert depth == 10


def test_failure_details_match_what_durabletask_python_writes() -> None:
    helpers = pytest.importorskip("durabletask.internal.helpers")
    error = raise_chain()
    theirs = helpers.new_failure_details(error)
    ours = FailureDetails.from_exception(error).to_proto()
    while theirs.errorType or ours.errorType:
        assert (ours.errorType, ours.errorMessage) == (theirs.errorType, theirs.errorMessage)
        assert ours.stackTrace.value == theirs.stackTrace.value
        theirs, ours = theirs.innerFailure, ours.innerFailure


def test_is_caused_by_by_name_uses_subclasses_of_a_loaded_class_only() -> None:
    details = FailureDetails(message="m", error_type=f"{__name__}.CardDeclined")
    assert details.is_caused_by(NonRetryableError)
    assert details.is_caused_by("wftest.errors.NonRetryableError")  # a loaded class: its subclasses match
    assert details.is_caused_by("wftest.errors.WftestError")
    assert not details.is_caused_by("not_a_module.NonRetryableError")
    assert details.is_caused_by("CardDeclined")  # bare names compare by class name
    with pytest.raises(TypeError, match="takes an exception class or a name"):
        details.is_caused_by(42)  # type: ignore[arg-type]


def test_non_retriable_failures_and_their_causes_survive_a_saved_history(tmp_path: Path) -> None:
    # given a run whose activity failed permanently, saved as a history file
    def charge(ctx: ActivityContext, _: Any) -> None:
        try:
            raise ConnectionError("gateway down")
        except ConnectionError as err:
            raise CardDeclined("declined") from err

    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        try:
            yield ctx.call_activity(charge, retry_policy=POLICY)
        except TaskFailedError as err:
            return err.details.is_caused_by(ConnectionError)
        return False

    tester = WorkflowTester()
    run = tester.run(wf)
    assert run.output is True
    path = history.save(tmp_path / "declined.history.json", run.history)
    # when it is loaded back
    loaded = history.load(path)
    failed = FailureDetails.from_proto(of_kind(loaded.events, "taskFailed")[0].taskFailed.failureDetails)
    # then the flag, the qualified types and the cause are there, and the history replays
    assert failed.is_non_retriable
    assert failed.error_type == f"{__name__}.CardDeclined"
    assert failed.inner_failure is not None and failed.inner_failure.error_type == "builtins.ConnectionError"
    assert failed.is_caused_by(ConnectionError) and failed.is_caused_by(NonRetryableError)
    assert Replayer(tester.registry).replay(loaded).ok


def test_engine_reports_the_final_failure_with_its_chain() -> None:
    def wf(ctx: OrchestrationContext, _: Any) -> Gen:
        yield ctx.call_activity(declines, input="subclass", retry_policy=POLICY)

    engine = Engine()
    iid = engine.client.schedule_new_orchestration(wf)
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert state.failure_details is not None
    assert state.failure_details.is_caused_by(CardDeclined) and state.failure_details.is_non_retriable
