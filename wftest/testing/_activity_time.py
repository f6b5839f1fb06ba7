"""Activity time for a plain ``Engine`` on a virtual clock: activities see the clock through ``datetime.now()``.

``WorkflowTester`` patches activity time itself. An engine built by hand (the pytest ``wftest_engine``
fixture) gets the same through the hooks of :mod:`wftest.hooks`: register :class:`ActivityTimeFollowsClock`
on ``engine.hooks`` and each activity reads the engine's virtual time from the wall clock. The patch
comes from the ``wftest_start_time_patch`` hook (freezegun unless another plugin, such as
``TimeMachinePlugin``, answers first); like the tester, the plugin starts it right before an activity
and stops it right after, so orchestrator code and the test itself keep the real clock.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from wftest.hooks import hookimpl

if TYPE_CHECKING:
    from wftest.engine import Engine
    from wftest.protos import orchestrator_service_pb2 as pb
    from wftest.runtime import ActivityTask


class ActivityTimeFollowsClock:
    """A hooks plugin: while an activity of ``engine`` runs, the wall clock reads ``engine.clock.now()``.

    Example::

        engine = Engine()                                   # a VirtualClock
        follower = ActivityTimeFollowsClock(engine)
        engine.hooks.register(follower)
        try:
            ...                                             # activities see the virtual time
        finally:
            follower.close()                                # stops a patch an engine error left on
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._patch = contextlib.ExitStack()

    @hookimpl
    def wftest_before_activity(self, task: ActivityTask) -> None:
        """Start the time patch at the clock's time."""
        self._patch.close()
        self._patch.enter_context(self._engine.hooks.time_patch(self._engine.clock.now()))

    @hookimpl
    def wftest_after_activity(self, task: ActivityTask, result: pb.HistoryEvent) -> None:
        """Stop the time patch."""
        self._patch.close()

    def close(self) -> None:
        """Stop the time patch if one is still on (an activity whose ``after`` hook never ran)."""
        self._patch.close()
