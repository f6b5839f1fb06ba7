"""Cooperative cancellation: go-workflows' semantics, recorded with plain Durable Task events.

A cancel request is an ``EventRaised`` named ``wftest.cancel`` whose data is ``{"reason": ...}``
(``client.cancel_orchestration`` queues it; so can any durabletask client, by raising that event). Being an
ordinary event, it is stored in the history where it was processed, held while the instance is suspended,
and read by every durabletask tool. The executor treats it, at that point of the history, as follows
(docs/cancellation.md has the user's view):

* the context becomes cancelled (``ctx.is_cancelled``); the wait the code is in raises
  ``OrchestrationCancelledError`` at its ``yield``, and so does every later wait on a pending task, unless
  the code waits inside ``with ctx.disconnected():``;
* pending timers and event waits fail with that error, and the retry waits of retried calls end with it
  (a cancelled timer's ``TimerFired`` is ignored when it comes); activities keep running: their results
  are delivered to their tasks, which the code may still read (inside ``disconnected()`` if it must wait);
* each running sub-orchestration gets the same event, through a ``sendEvent`` action (an ``EventSent`` in
  this history), so children are cancelled with their parent, recursively;
* new activity, timer, sub-orchestration and event-wait calls fail at once (no action, no sequence
  number) outside ``disconnected()``; tasks created inside it are never cancelled.

Only wftest's executor acts on the event: foreign executors (durabletask, Dapr, a remote SDK) see an
external event that nobody waits for.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from wftest.errors import OrchestrationCancelledError, OrchestrationStateError
from wftest.orchestration._task import TimerTask

if TYPE_CHECKING:
    from wftest.orchestration._context import OrchestrationContext
    from wftest.orchestration._executor import Executor

#: the name of the event that asks an instance to cancel (reserved; matched case-insensitively)
CANCEL_EVENT = "wftest.cancel"
CANCEL_KEY = CANCEL_EVENT.casefold()

#: after this many cancellation errors in one execution, the code is taken to loop on them forever
_MAX_CANCELLATION_ERRORS = 10_000


def encode_cancel(reason: str | None) -> str:
    """The data of a cancel event: ``{"reason": reason}`` as JSON."""
    return json.dumps({"reason": reason})


def decode_reason(data: str | None) -> str | None:
    """The reason carried by a cancel event's data (tolerant: a bare string or any JSON value works)."""
    if not data:
        return None
    try:
        value: Any = json.loads(data)
    except ValueError:
        return data
    if isinstance(value, dict):
        value = value.get("reason")
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def is_cancel_event_name(name: str) -> bool:
    """True for the reserved cancel event name (any letter case)."""
    return name.casefold() == CANCEL_KEY


class Disconnected:
    """What ``ctx.disconnected()`` returns: inside it, a cancelled orchestration works normally."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: OrchestrationContext) -> None:
        self._ctx = ctx

    def __enter__(self) -> None:
        self._ctx._disconnected_depth += 1

    def __exit__(self, *exc_info: object) -> None:
        self._ctx._disconnected_depth -= 1


def _suffix(ctx: OrchestrationContext) -> str:
    return f" (reason: {ctx._cancel_reason})" if ctx._cancel_reason else ""


def _counted(ctx: OrchestrationContext, error: OrchestrationCancelledError) -> OrchestrationCancelledError:
    ctx._cancellation_errors += 1
    if ctx._cancellation_errors > _MAX_CANCELLATION_ERRORS and not ctx._complete:
        ctx._fail(
            OrchestrationStateError(
                f"orchestration {ctx.instance_id!r} was cancelled and then received {_MAX_CANCELLATION_ERRORS} "
                "cancellation errors without finishing: it seems to catch OrchestrationCancelledError and wait "
                "again in a loop. Return (or raise) after a cancel, and wait only inside `with ctx.disconnected():`"
            )
        )
    return error


def _cancelled(ctx: OrchestrationContext) -> OrchestrationCancelledError:
    return OrchestrationCancelledError(
        f"orchestration {ctx.instance_id!r} was cancelled{_suffix(ctx)}; it no longer waits for this task. Catch "
        "OrchestrationCancelledError and clean up inside `with ctx.disconnected():` (tasks already scheduled "
        "can still be waited for there)",
        instance_id=ctx.instance_id, reason=ctx._cancel_reason,
    )


def interrupted(ctx: OrchestrationContext) -> OrchestrationCancelledError:
    """The error thrown into code that waits, outside ``disconnected()``, in a cancelled orchestration."""
    return _counted(ctx, _cancelled(ctx))


def refused(ctx: OrchestrationContext, what: str) -> OrchestrationCancelledError:
    """The failure of a call made, outside ``disconnected()``, after the orchestration was cancelled."""
    return _counted(ctx, OrchestrationCancelledError(
        f"{what} failed at once: orchestration {ctx.instance_id!r} was cancelled{_suffix(ctx)}. After a cancel, "
        "make cleanup calls inside `with ctx.disconnected():`",
        instance_id=ctx.instance_id, reason=ctx._cancel_reason,
    ))


def cancel_instance(executor: Executor, data: str | None) -> None:
    """Process a cancel event at its point in the history (see the module docstring). A second one is a no-op."""
    ctx = executor.ctx
    if ctx._complete or ctx._cancelled:
        return
    ctx._cancelled = True
    ctx._cancel_reason = decode_reason(data)
    shielded = ctx._shielded
    # pending tasks in sequence order, so that the sendEvent actions to children are numbered deterministically
    for action_id, task in list(ctx._pending_tasks.items()):
        if id(task) in shielded:
            continue
        if isinstance(task, TimerTask):
            executor._timeout_of_timer.pop(action_id, None)
            retry = task._retry_of
            task._cancel_with(_cancelled(ctx))
            if retry is not None and not retry.is_complete:
                retry._fail(_cancelled(ctx))  # a retried call waiting for its next attempt: it ends here
        else:
            child = ctx._children.get(action_id)
            if child is not None:
                ctx._send_cancel(child)
    for waiters in list(ctx._event_waiters.values()):
        for waiter in list(waiters):
            if id(waiter) not in shielded:
                executor._timer_of_waiter.pop(id(waiter), None)
                waiter._cancel_with(_cancelled(ctx))
    executor._resume()
