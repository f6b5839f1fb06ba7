"""Layer 5, clock and engine: ``Engine``, its worker, ``TaskHubClient`` and the clocks."""

from wftest.engine._client import OrchestrationState as OrchestrationState
from wftest.engine._client import PurgeResult as PurgeResult
from wftest.engine._client import QueryResult as QueryResult
from wftest.engine._client import TaskHubClient as TaskHubClient
from wftest.engine._clock import DEFAULT_START_TIME as DEFAULT_START_TIME
from wftest.engine._clock import Clock as Clock
from wftest.engine._clock import SystemClock as SystemClock
from wftest.engine._clock import VirtualClock as VirtualClock
from wftest.engine._engine import Engine as Engine
from wftest.engine._engine import UndeliveredMessage as UndeliveredMessage

__all__ = [
    "DEFAULT_START_TIME",
    "Clock",
    "Engine",
    "OrchestrationState",
    "PurgeResult",
    "QueryResult",
    "SystemClock",
    "TaskHubClient",
    "UndeliveredMessage",
    "VirtualClock",
]
