"""``ActivityTester``: call an activity function directly, as the engine would."""

from __future__ import annotations

import asyncio
import inspect
from datetime import datetime
from typing import Any

from wftest.converter import DEFAULT_CONVERTER, Converter
from wftest.engine import DEFAULT_START_TIME
from wftest.hooks import Hooks, default_hooks
from wftest.orchestration import ActivityContext
from wftest.orchestration._registry import Activity, function_name


class ActivityTester:
    """Run one activity with a test ``ActivityContext``, its input and output round-tripped as JSON.

    Args:
        instance_id: the orchestration id the context reports.
        now: what ``datetime.now()`` reads inside the activity (naive UTC); ``None`` leaves time real.
        converter: the payload converter (inputs and outputs go through it, as in a real run).

    Example::

        result = ActivityTester(now=datetime(2024, 6, 1)).run(charge_card, {"amount": 10}, task_id=3)
    """

    def __init__(
        self,
        *,
        instance_id: str = "test-instance",
        now: datetime | None = DEFAULT_START_TIME,
        converter: Converter = DEFAULT_CONVERTER,
        hooks: Hooks | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.now = now
        self.converter = converter
        self.hooks = hooks
        self._task_ids = 0

    def run(self, activity: Activity, input: Any = None, *, task_id: int | None = None, name: str | None = None) -> Any:
        """Call ``activity(ctx, input)`` (or ``activity(ctx)``) and return its decoded result.

        Exceptions propagate unchanged. A non-JSON input or output raises ``TypeError`` here, as it
        would fail the task in a real run.
        """
        self._task_ids += 1
        ctx = ActivityContext(
            self.instance_id,
            task_id if task_id is not None else self._task_ids,
            name or function_name(activity),
            self.now,
        )
        value = self.converter.deserialize(self.converter.serialize(input))
        takes_input = len(inspect.signature(activity).parameters) >= 2
        if self.now is None:
            output = self._call(activity, ctx, value, takes_input)
        else:
            with (self.hooks or default_hooks()).time_patch(self.now):
                output = self._call(activity, ctx, value, takes_input)
        return self.converter.deserialize(self.converter.serialize(output))

    @staticmethod
    def _call(activity: Activity, ctx: ActivityContext, value: Any, takes_input: bool) -> Any:
        output = activity(ctx, value) if takes_input else activity(ctx)
        if inspect.isawaitable(output):
            async def wait() -> Any:
                return await output

            output = asyncio.run(wait())
        return output
