"""``ActivityContext``: what an activity function receives besides its input."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

from wftest.orchestration._logging import ActivityLogger, activity_logger

_NO_TAGS: Mapping[str, str] = MappingProxyType({})


class ActivityContext:
    """Identifies one activity invocation.

    Activities are plain functions (sync or ``async def``) taking the context and the input::

        def charge_card(ctx: ActivityContext, order: dict) -> dict:
            return payments.charge(order["card"], idempotency_key=f"{ctx.orchestration_id}:{ctx.task_id}")

    ``orchestration_id`` plus ``task_id`` is stable across retries of the same call, which makes a good
    idempotency key.
    """

    __slots__ = ("_name", "_orchestration_id", "_scheduled_at", "_tags", "_task_id")

    def __init__(self, orchestration_id: str, task_id: int, name: str = "", scheduled_at: datetime | None = None,
                 tags: Mapping[str, str] | None = None):
        self._orchestration_id = orchestration_id
        self._task_id = task_id
        self._name = name
        self._scheduled_at = scheduled_at
        self._tags = MappingProxyType(dict(tags)) if tags else _NO_TAGS

    @property
    def orchestration_id(self) -> str:
        """The id of the orchestration instance that scheduled this activity."""
        return self._orchestration_id

    @property
    def instance_id(self) -> str:
        """Alias of :attr:`orchestration_id`."""
        return self._orchestration_id

    @property
    def task_id(self) -> int:
        """The sequence number of the call in its orchestration (the same for every retry)."""
        return self._task_id

    @property
    def name(self) -> str:
        """The name the activity was called under."""
        return self._name

    @property
    def scheduled_at(self) -> datetime | None:
        """Orchestration time at which the activity was scheduled (naive UTC), when known."""
        return self._scheduled_at

    @property
    def tags(self) -> Mapping[str, str]:
        """The tags of the ``TaskScheduled`` event (read-only): what orchestrator code passed as ``tags=`` and
        what context propagation (``wftest.ContextVarPropagator``) carried to this activity."""
        return self._tags

    @property
    def logger(self) -> ActivityLogger:
        """A logger (``wftest.activity``) whose records carry this activity's instance id, task id and name.

        ``ctx.logger.info("charging")`` logs ``[charge order-7#1] charging``; see :func:`wftest.activity_logger`.
        """
        return activity_logger(self)

    def __repr__(self) -> str:
        return (
            f"ActivityContext(orchestration_id={self._orchestration_id!r}, task_id={self._task_id}, "
            f"name={self._name!r})"
        )
