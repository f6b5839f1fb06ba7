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
from wftest.engine._scheduler import ActivityFails as ActivityFails
from wftest.engine._scheduler import ActivityTimesOut as ActivityTimesOut
from wftest.engine._scheduler import CrashAfterActivity as CrashAfterActivity
from wftest.engine._scheduler import CrashDuringStep as CrashDuringStep
from wftest.engine._scheduler import DuplicateEvent as DuplicateEvent
from wftest.engine._scheduler import Fault as Fault
from wftest.engine._scheduler import FifoScheduler as FifoScheduler
from wftest.engine._scheduler import Scheduler as Scheduler

__all__ = [
    "DEFAULT_START_TIME",
    "ActivityFails",
    "ActivityTimesOut",
    "Clock",
    "CrashAfterActivity",
    "CrashDuringStep",
    "DuplicateEvent",
    "Engine",
    "Fault",
    "FifoScheduler",
    "OrchestrationState",
    "PurgeResult",
    "QueryResult",
    "Scheduler",
    "SystemClock",
    "TaskHubClient",
    "UndeliveredMessage",
    "VirtualClock",
]
