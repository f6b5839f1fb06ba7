"""Loggers for workflow code: each record says which instance (and task) it comes from.

:func:`workflow_logger` wraps a logger for orchestrator code: its records carry the instance id and the
orchestrator name, as ``LogRecord`` attributes (``record.instance_id``, ``record.orchestrator_name``) and as a
message prefix (``[order_workflow order-7] charged``), and it drops every record while the code replays, so
each line is logged once however often the history is replayed (a cold cache, a restart, the tester's
replay check). :func:`activity_logger` does the same for activity code (``record.instance_id``,
``record.task_id``, ``record.activity_name``; prefix ``[charge order-7#1]``); activities never replay, so
nothing is dropped. ``OrchestrationContext.create_replay_safe_logger(logger)`` (durabletask-python's name)
is the orchestrator logger without the prefix, so ported code logs the same messages as before.

The prefix is part of the message so that plain formatters show it; structured handlers read the
attributes. Both are set on every record; ``extra=`` given to a call is merged in (it wins on a clash).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wftest.orchestration._activity import ActivityContext
    from wftest.orchestration._context import OrchestrationContext

    _Adapter = logging.LoggerAdapter[logging.Logger]
else:  # logging.LoggerAdapter is subscriptable at run time only from Python 3.11
    _Adapter = logging.LoggerAdapter

#: the logger that :func:`workflow_logger` wraps when none is given
WORKFLOW_LOGGER_NAME = "wftest.workflow"
#: the logger that :func:`activity_logger` (and ``ActivityContext.logger``) wraps when none is given
ACTIVITY_LOGGER_NAME = "wftest.activity"


class _ContextLogger(_Adapter):
    """A logger adapter that adds fixed attributes and an optional message prefix to every record."""

    def __init__(self, logger: logging.Logger, extra: Mapping[str, object], prefix: str) -> None:
        super().__init__(logger, extra)
        self._prefix = prefix

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        """Merge this logger's attributes into the call's ``extra`` (the call's own values win)."""
        given = kwargs.get("extra")
        kwargs["extra"] = {**(self.extra or {}), **given} if given else dict(self.extra or {})
        return msg, kwargs

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log ``msg % args`` at ``level`` with this logger's attributes (and prefix)."""
        if not self.isEnabledFor(level):
            return
        msg, processed = self.process(msg, kwargs)
        if self._prefix:
            # with arguments the message is %-formatted: a '%' in an instance id must not be read as a field
            msg = (self._prefix.replace("%", "%%") if args else self._prefix) + str(msg)
        # the caller of info()/warning()/... is one frame further up than logging expects (this method)
        processed["stacklevel"] = processed.get("stacklevel", 1) + 1
        self.logger.log(level, msg, *args, **processed)


class WorkflowLogger(_ContextLogger):
    """A logger for orchestrator code: silent while the code replays; records carry the instance.

    Get one with :func:`workflow_logger` or ``ctx.create_replay_safe_logger(logger)``. Use it like a
    ``logging.Logger`` (``info``, ``warning``, ``exception``, ``log``, ...).
    """

    def __init__(self, logger: logging.Logger, ctx: OrchestrationContext, *, prefix: bool = True) -> None:
        extra = {"instance_id": ctx.instance_id, "orchestrator_name": ctx.name}
        super().__init__(logger, extra, f"[{ctx.name} {ctx.instance_id}] " if prefix else "")
        self._ctx = ctx

    def isEnabledFor(self, level: int) -> bool:
        """False while the orchestrator replays history (nothing is logged twice), else the logger's answer."""
        return not self._ctx.is_replaying and self.logger.isEnabledFor(level)


class ActivityLogger(_ContextLogger):
    """A logger for activity code; records carry the instance, the task id and the activity name.

    Get one with :func:`activity_logger` or ``ctx.logger`` on the :class:`~wftest.ActivityContext`.
    """

    def __init__(self, logger: logging.Logger, ctx: ActivityContext, *, prefix: bool = True) -> None:
        extra = {"instance_id": ctx.instance_id, "task_id": ctx.task_id, "activity_name": ctx.name}
        super().__init__(logger, extra, f"[{ctx.name} {ctx.instance_id}#{ctx.task_id}] " if prefix else "")


def _resolve(logger: logging.Logger | str | None, default: str) -> logging.Logger:
    if logger is None:
        return logging.getLogger(default)
    if isinstance(logger, str):
        return logging.getLogger(logger)
    if isinstance(logger, logging.Logger):
        return logger
    raise TypeError(f"expected a logging.Logger, a logger name or None, got {type(logger).__qualname__}")


def workflow_logger(
    ctx: OrchestrationContext, logger: logging.Logger | str | None = None, *, prefix: bool = True
) -> WorkflowLogger:
    """A replay-safe logger for orchestrator code (go-workflows' ``workflow.Logger(ctx)``).

    Records are dropped while the code replays, so each line is logged once. Every record carries
    ``instance_id`` and ``orchestrator_name`` attributes and, unless ``prefix=False``, starts with
    ``[<orchestrator> <instance id>]``. ``logger`` is the logger to write to (an object or a name;
    default ``wftest.workflow``)::

        def order_workflow(ctx, order):
            log = wftest.workflow_logger(ctx, __name__)
            receipt = yield ctx.call_activity(charge, input=order)
            log.info("charged %s", receipt)      # "[order_workflow order-7] charged r-1", once
            return receipt

    .. versionadded:: 0.1
    """
    return WorkflowLogger(_resolve(logger, WORKFLOW_LOGGER_NAME), ctx, prefix=prefix)


def activity_logger(
    ctx: ActivityContext, logger: logging.Logger | str | None = None, *, prefix: bool = True
) -> ActivityLogger:
    """A logger for activity code whose records carry ``instance_id``, ``task_id`` and ``activity_name``.

    Unless ``prefix=False``, messages start with ``[<activity> <instance id>#<task id>]``. ``logger``
    defaults to ``wftest.activity``; ``ctx.logger`` is the same with the defaults::

        def charge(ctx, order):
            ctx.logger.info("charging %s", order["card"])   # "[charge order-7#1] charging 4242..."

    .. versionadded:: 0.1
    """
    return ActivityLogger(_resolve(logger, ACTIVITY_LOGGER_NAME), ctx, prefix=prefix)
