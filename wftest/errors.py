"""Every public exception of wftest.

The tree (each class also subclasses the builtin it resembles, so ``except LookupError`` and friends
keep working)::

    WftestError
    ├── TaskFailedError                  an activity / sub-orchestration failed; raised at the ``yield``
    │   └── TaskTimeoutError (TimeoutError)   a wait with a timeout ran out of time
    ├── OrchestrationCancelledError      the instance was cancelled (``cancel_orchestration``); raised at the ``yield``
    ├── TaskCancelledError               the orchestrator cancelled this task itself (``task.cancel()``)
    ├── NonRetryableError                raised by your code: retry policies stop at once (go-workflows' PermanentError)
    ├── NonDeterminismError (RuntimeError)    replay did not reproduce the history
    ├── NonDeterministicCallError (RuntimeError)  strict mode: orchestrator code called the wall clock, ...
    ├── OrchestrationStateError (RuntimeError)     malformed history or misuse of the executor
    ├── InstanceNotFoundError (LookupError)
    ├── InstanceAlreadyExistsError (ValueError)
    ├── InstanceNotCompletedError (RuntimeError)   e.g. purge of a running instance
    ├── OrchestrationStalledError (RuntimeError)   virtual clock: nothing runnable, no timer pending
    ├── WaitTimeoutError (TimeoutError)            ``wait_for_*`` ran past its timeout
    ├── OrchestrationFailedError (RuntimeError)    ``OrchestrationState.raise_if_failed()``; a failed child
    ├── OrchestrationTerminatedError (RuntimeError)  the error type of a terminated child's failure
    ├── LockLostError (RuntimeError)               a work item was completed after its lock expired
    ├── NotRegisteredError (LookupError)           an orchestrator or activity name is unknown
    ├── RunLimitError (RuntimeError)               the tester's max_steps was reached
    ├── HistoryFileError (ValueError)              a history file is malformed (file, event index, field)
    ├── BackendError (RuntimeError)                the storage cannot be used (a foreign or damaged database)
    ├── UnexpectedCallError (AssertionError)       a mocked activity was called with inputs no mock accepts
    └── ExpectationError (AssertionError)          a declared mock was not called as expected

Messages say what happened, where (instance id, event index, file:line) and what to do next.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wftest._failure import FailureDetails


class WftestError(Exception):
    """Root of every exception raised by wftest."""


class TaskFailedError(WftestError):
    """A task awaited by an orchestrator failed.

    Raised at the ``yield`` (or ``await``) of a failed activity or sub-orchestration. The orchestrator
    may catch it; ``details`` describes the original error::

        try:
            yield ctx.call_activity(charge_card, input=order)
        except TaskFailedError as err:
            if err.details.is_caused_by(ValueError):
                ...
    """

    def __init__(self, message: str, details: FailureDetails) -> None:
        super().__init__(message)
        self.details = details

    @property
    def is_non_retriable(self) -> bool:
        """True if the failure was non-retriable; an orchestrator that lets this error escape fails the same way,
        so a parent's retry policy does not retry it either."""
        return self.details.is_non_retriable


class NonRetryableError(WftestError):
    """An error that retry policies do not retry (go-workflows' ``PermanentError``, Temporal's non-retryable).

    Raise it, or a subclass, from an activity (or an orchestrator run as a sub-orchestration): the failure is
    recorded with ``isNonRetriable`` and a :class:`~wftest.RetryPolicy` stops at once. Any exception whose
    class has ``is_non_retriable = True`` behaves the same. Chain the original error to keep it in the
    failure details::

        def charge(ctx, order):
            try:
                return gateway.charge(order)
            except CardDeclined as err:
                raise NonRetryableError(f"card declined for order {order['id']}") from err

    The orchestrator sees a ``TaskFailedError`` whose ``details.is_non_retriable`` is True and whose
    ``details.is_caused_by(CardDeclined)`` is True.

    .. versionadded:: 0.1
    """

    is_non_retriable = True


class TaskTimeoutError(TaskFailedError, TimeoutError):
    """A ``wait_for_external_event(..., timeout=...)`` ran out of (orchestration) time."""


class OrchestrationCancelledError(WftestError):
    """The instance was cancelled (``client.cancel_orchestration``, ``tester.cancel()``): cooperative cancellation.

    Raised at the ``yield`` (or ``await``) the orchestrator was waiting on when the cancel arrived, and by
    every later wait and every new activity, timer, sub-orchestration or event wait, except inside
    ``with ctx.disconnected():``, where cleanup runs normally. An orchestrator that catches it and returns
    completes normally; one that lets it escape ends FAILED with this error type::

        try:
            yield ctx.call_activity(ship, input=order)
        except OrchestrationCancelledError as err:
            with ctx.disconnected():
                yield ctx.call_activity(release_stock, input=order)
            return {"status": "cancelled", "reason": err.reason}

    Attributes: ``instance_id``, ``reason`` (the text given to ``cancel_orchestration``, or None).

    .. versionadded:: 0.1
    """

    def __init__(self, message: str, *, instance_id: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.instance_id = instance_id
        self.reason = reason


class TaskCancelledError(WftestError):
    """The orchestrator cancelled this timer or event wait itself (``task.cancel()``) and then waited on it.

    durabletask-python's name (``durabletask.task.TaskCancelledError``), so ported code catches it unchanged.

    .. versionadded:: 0.1
    """


class NonDeterminismError(WftestError, RuntimeError):
    """Replaying the history with today's code did not reproduce it.

    Attributes:
        index: position in the history of the first event that does not match (``None`` when the
            mismatch is an action that the history never recorded, at the end of the history).
        expected: short description of what the history holds there.
        actual: short description of what the code did instead.
        instance_id: the instance whose history was replayed, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        expected: str | None = None,
        actual: str | None = None,
        instance_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.index = index
        self.expected = expected
        self.actual = actual
        self.instance_id = instance_id


class NonDeterministicCallError(WftestError, RuntimeError):
    """Strict mode: orchestrator code called something whose result differs on replay."""


class OrchestrationStateError(WftestError, RuntimeError):
    """The history handed to the executor is malformed, or the executor was misused."""


class InstanceNotFoundError(WftestError, LookupError):
    """No orchestration instance has this id."""

    def __init__(self, instance_id: str, message: str | None = None) -> None:
        super().__init__(message or f"no orchestration instance with id {instance_id!r}")
        self.instance_id = instance_id


class InstanceAlreadyExistsError(WftestError, ValueError):
    """An instance with this id exists and the id-reuse policy forbids replacing it."""

    def __init__(self, instance_id: str, status: str) -> None:
        super().__init__(
            f"orchestration instance already exists: {instance_id!r} (status {status}); pass "
            "reuse_id_policy=IdReusePolicy.TERMINATE to replace it or IdReusePolicy.IGNORE to keep it"
        )
        self.instance_id = instance_id


class InstanceNotCompletedError(WftestError, RuntimeError):
    """The operation needs a completed instance (e.g. purge) but this one is still running."""

    def __init__(self, instance_id: str, status: str, operation: str) -> None:
        super().__init__(
            f"cannot {operation} orchestration instance {instance_id!r}: it is {status}, not completed; "
            "terminate it first"
        )
        self.instance_id = instance_id


class OrchestrationStalledError(WftestError, RuntimeError):
    """With a virtual clock, the engine is idle, no timer is pending and the instance is not done.

    Nothing can ever move it on except something from outside (an event, a terminate), so waiting
    would hang forever. The message says what the instance is waiting for.
    """


class WaitTimeoutError(WftestError, TimeoutError):
    """``wait_for_orchestration_start`` / ``..._completion`` did not finish within its timeout."""


class OrchestrationFailedError(WftestError, RuntimeError):
    """Raised by ``OrchestrationState.raise_if_failed()`` for a FAILED instance."""

    def __init__(self, message: str, details: FailureDetails | None) -> None:
        super().__init__(message)
        self.details = details


class LockLostError(WftestError, RuntimeError):
    """A work item was completed or abandoned by an owner whose lock had expired or been taken over.

    Nothing was written: another worker owns the work now.
    """


class NotRegisteredError(WftestError, LookupError):
    """An orchestrator or activity was referenced by a name that no registry knows."""

    def __init__(self, kind: str, name: str, known: Any = ()) -> None:
        names = ", ".join(sorted(known)) or "none"
        plural = "activities" if kind == "activity" else f"{kind}s"
        super().__init__(f"no {kind} named {name!r} is registered (registered {plural}: {names})")
        self.kind = kind
        self.name = name


class RunLimitError(WftestError, RuntimeError):
    """The tester processed ``max_steps`` work items without the run finishing (an endless loop?)."""


class UnexpectedCallError(WftestError, AssertionError):
    """An activity or sub-orchestrator that has mocks was called with an input none of them accepts."""


class ExpectationError(WftestError, AssertionError):
    """``assert_expectations()``: a mock was not called, or not as often as declared."""


class HistoryFileError(WftestError, ValueError):
    """A history file (or history) is malformed. The message names the file, the event index and the field.

    Attributes: ``path``, ``index`` (event position, or None), ``field`` (or None), ``reason``.
    """

    def __init__(self, reason: str, *, path: object = None, index: int | None = None, field: str | None = None) -> None:
        where = [str(path) if path is not None else "history"]
        if index is not None:
            where.append(f"event {index}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {reason}")
        self.path = path
        self.index = index
        self.field = field
        self.reason = reason


class OrchestrationTerminatedError(WftestError, RuntimeError):
    """The error type recorded when a sub-orchestration was terminated.

    The parent's task fails with a ``TaskFailedError`` whose ``details.is_caused_by(OrchestrationTerminatedError)``
    is true (wftest's choice; durabletask-go lets the task succeed).
    """


class BackendError(WftestError, RuntimeError):
    """The backend's storage cannot be used: a file that is not a wftest database, a damaged one, or one
    written by a newer wftest. Nothing was changed."""
