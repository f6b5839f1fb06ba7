"""Tasks: what orchestrator code yields (or awaits), and the composites ``when_all`` / ``when_any``.

A task is completed by the executor when the history event that carries its result is read. Parents
(composites) are notified synchronously, so a ``when_all`` completes in the same step as its last child.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from wftest.errors import OrchestrationCancelledError, TaskCancelledError, TaskFailedError
from wftest.orchestration._sandbox import unwatched

if TYPE_CHECKING:
    from wftest.orchestration._retry import RetryPolicy
    from wftest.protos import orchestrator_service_pb2 as pb

T = TypeVar("T")

#: what a task can fail with: its own failure, or a cancellation (of the instance, or of the task itself)
TaskError = TaskFailedError | OrchestrationCancelledError | TaskCancelledError

_PENDING: Any = object()


class Task(Generic[T]):
    """Something an orchestrator waits for: ``result = yield task`` (or ``await task``).

    Tasks are created by the context (``ctx.call_activity(...)`` and friends) and completed by the
    executor from history; user code only reads them.
    """

    __slots__ = ("_exception", "_parents", "_result")

    def __init__(self) -> None:
        self._result: Any = _PENDING
        self._exception: TaskError | None = None
        self._parents: list[CompositeTask[Any]] | None = None

    @property
    def is_complete(self) -> bool:
        """True once the task has a result or a failure."""
        return self._result is not _PENDING or self._exception is not None

    @property
    def is_failed(self) -> bool:
        """True if the task completed with a failure."""
        return self._exception is not None

    def get_result(self) -> T:
        """The result; raises the task's error if it failed (``TaskFailedError``, or ``TaskCancelledError`` /
        ``OrchestrationCancelledError`` if it was cancelled), ``ValueError`` if pending."""
        if self._exception is not None:
            raise self._exception
        if self._result is _PENDING:
            raise ValueError("the task has not completed yet")
        return cast(T, self._result)

    @property
    def result(self) -> T:
        """Alias of :meth:`get_result`."""
        return self.get_result()

    def get_exception(self) -> TaskError:
        """The failure of a failed (or cancelled) task (``ValueError`` if it did not fail)."""
        if self._exception is None:
            raise ValueError("the task has not failed")
        return self._exception

    def __await__(self) -> Generator[Task[T], Any, T]:
        # ``async def`` orchestrators: the executor drives the coroutine exactly like a generator,
        # so awaiting a task hands the task itself to the executor and gets the result sent back.
        result: T = yield self
        return result

    def _complete(self, result: Any) -> None:
        self._result = result
        if self._parents:
            self._notify()

    def _fail(self, error: TaskError) -> None:
        self._exception = error
        self._notify()

    def _notify(self) -> None:
        parents = self._parents
        if parents:
            self._parents = None
            for parent in parents:
                parent._on_child_completed(self)

    def _add_parent(self, parent: CompositeTask[Any]) -> None:
        if self._parents is None:
            self._parents = [parent]
        else:
            self._parents.append(parent)


class CompletableTask(Task[T]):
    """A task completed by one history event: an activity, a sub-orchestration, an external event."""

    __slots__ = ()


class CancellableTask(CompletableTask[T]):
    """A task that orchestrator code may give up on (timers, external-event waits)."""

    __slots__ = ("_cancel_handler", "_is_cancelled")

    def __init__(self) -> None:
        super().__init__()
        self._is_cancelled = False
        self._cancel_handler: Callable[[], None] | None = None

    @property
    def is_cancelled(self) -> bool:
        """True if :meth:`cancel` took effect."""
        return self._is_cancelled

    def cancel(self) -> bool:
        """Give up on this timer or event wait: a later timer firing or event no longer completes it.

        The task ends cancelled (``is_complete`` and ``is_cancelled`` are True, as in durabletask-python):
        yielding it, or reading its result, raises ``TaskCancelledError``; a ``when_all`` over it fails with
        that error, a ``when_any`` counts it as finished. A timer cancelled in the step that created it is
        never scheduled; one scheduled earlier still fires in the backend, and that ``TimerFired`` is ignored
        (on replay too). Cancelling an event wait with a timeout cancels its timeout timer. Deterministic:
        replay cancels at the same point of the code.

        Returns False (and changes nothing) if the task had already completed.

        Example::

            deadline = ctx.create_timer(timedelta(days=1))
            approval = ctx.wait_for_external_event("approval")
            winner = yield when_any([approval, deadline])
            if winner is approval:
                deadline.cancel()   # the instance no longer waits for it
        """
        if self.is_complete:
            return False
        if self._cancel_handler is not None:
            self._cancel_handler()
        self._is_cancelled = True
        self._fail(TaskCancelledError(f"the {self._what()} was cancelled by the orchestrator (task.cancel())"))
        return True

    def _cancel_with(self, error: OrchestrationCancelledError) -> None:
        """The instance was cancelled: stop waiting, and fail with ``error`` (the executor calls this)."""
        if self.is_complete:
            return
        if self._cancel_handler is not None:
            self._cancel_handler()
        self._is_cancelled = True
        self._fail(error)

    def _what(self) -> str:
        return "event wait"


class TimerTask(CancellableTask[None]):
    """A durable timer. Long timers are split into chunks of at most the engine's maximum interval."""

    __slots__ = ("_final_fire_at", "_retry_of", "fire_at")

    def __init__(self, fire_at: datetime, final_fire_at: datetime) -> None:
        super().__init__()
        #: when the timer completes (the last chunk's fire time)
        self.fire_at = final_fire_at
        self._final_fire_at = final_fire_at
        self._retry_of: RetryableTask[Any] | None = None

    def _what(self) -> str:
        return f"timer (fire at {self.fire_at.isoformat()})"


class RetryableTask(CompletableTask[T]):
    """An activity or sub-orchestration call with a retry policy; retries wait on durable timers."""

    __slots__ = ("_action", "_attempt", "_is_sub_orchestration", "_policy", "_started_at")

    def __init__(
        self, policy: RetryPolicy, action: pb.OrchestratorAction, started_at: datetime, is_sub: bool
    ) -> None:
        super().__init__()
        self._policy = policy
        self._action = action
        self._attempt = 1
        self._started_at = started_at
        self._is_sub_orchestration = is_sub


class CompositeTask(Task[T]):
    """A task made of other tasks."""

    __slots__ = ("_children",)

    def __init__(self, tasks: Sequence[Task[Any]]) -> None:
        super().__init__()
        self._children: list[Task[Any]] = list(tasks)
        for child in self._children:
            if not isinstance(child, Task):
                raise TypeError(f"expected a Task, got {type(child).__qualname__}: {child!r}")

    def _on_child_completed(self, child: Task[Any]) -> None:
        raise NotImplementedError

    def _subscribe(self) -> None:
        for child in self._children:
            if self.is_complete:
                return
            if child.is_complete:
                self._on_child_completed(child)
            else:
                child._add_parent(self)


class WhenAllTask(CompositeTask[list[T]]):
    """Completes when every child has completed; the result lists the children's results in order.

    If a child fails, the first failure (in completion order) is raised, but only once every child has
    finished, as .NET's ``Task.WhenAll`` and durabletask do.
    """

    __slots__ = ("_first_failure", "_pending")

    def __init__(self, tasks: Sequence[Task[T]]) -> None:
        super().__init__(tasks)
        self._first_failure: TaskError | None = None
        # Children by identity, with how often each is listed (a task may appear twice).
        self._pending: dict[int, int] = {}
        for child in self._children:
            self._pending[id(child)] = self._pending.get(id(child), 0) + 1
        if not self._children:
            self._complete([])
        else:
            self._subscribe()

    def _on_child_completed(self, child: Task[Any]) -> None:
        if self._pending.pop(id(child), None) is None or self.is_complete:
            return
        if child._exception is not None and self._first_failure is None:
            self._first_failure = child._exception
        if not self._pending:
            if self._first_failure is not None:
                self._fail(self._first_failure)
            else:
                self._complete([c._result for c in self._children])

    def _subscribe(self) -> None:
        # A child listed twice must be subscribed (or counted) once.
        for child in {id(c): c for c in self._children}.values():
            if child.is_complete:
                self._on_child_completed(child)
            else:
                child._add_parent(self)


class WhenAnyTask(CompositeTask[Task[T]]):
    """Completes when the first child completes (or fails); the result is that child task.

    The other children keep running; their results are simply not waited for.
    """

    __slots__ = ()

    def __init__(self, tasks: Sequence[Task[T]]) -> None:
        super().__init__(tasks)
        if not self._children:
            raise ValueError("when_any() needs at least one task")
        self._subscribe()

    def _on_child_completed(self, child: Task[Any]) -> None:
        if not self.is_complete:
            self._complete(child)


def when_all(tasks: Iterable[Task[T]]) -> WhenAllTask[T]:
    """A task that completes when all ``tasks`` have completed, with their results in input order.

    Example::

        results = yield when_all([ctx.call_activity(work, input=i) for i in range(10)])
    """
    return _new_when_all(list(tasks))  # the iterable may be the user's generator: consumed while watched


def when_any(tasks: Iterable[Task[T]]) -> WhenAnyTask[T]:
    """A task that completes with the first of ``tasks`` to complete (the task itself, not its result).

    Example (an approval with a deadline)::

        approval = ctx.wait_for_external_event("approval")
        winner = yield when_any([approval, ctx.create_timer(timedelta(days=1))])
        if winner is approval:
            ...
    """
    return _new_when_any(list(tasks))


_new_when_all = unwatched(WhenAllTask)  # strict mode needs not watch wftest's own work (see unwatched)
_new_when_any = unwatched(WhenAnyTask)
