"""wftest: a durable workflow engine (Durable Task semantics) and a deterministic test harness.

Layout (each layer imports only those below it)::

    protos/          1  protocol: durabletask-compatible protobuf messages
    orchestration/   2  context, tasks, retry policies, the executor (pure)
    runtime/         3  applying a step's actions to an instance
    backends/        4  storage: the Backend protocol, MemoryBackend
    engine/          5  clocks, the worker, Engine, TaskHubClient
    testing/         6  WorkflowTester, mocks, replay checks, timelines

Public names are re-exported here; everything else is internal.
"""

from wftest import history as history
from wftest import interop as interop  # durabletask/Dapr interop; its import hook lets both SDKs share a process
from wftest._failure import FailureDetails as FailureDetails
from wftest._schedules import Schedule as Schedule
from wftest._schedules import ScheduleWarning as ScheduleWarning
from wftest._status import OrchestrationStatus as OrchestrationStatus
from wftest.backends import Backend as Backend
from wftest.backends import IdReusePolicy as IdReusePolicy
from wftest.backends import MemoryBackend as MemoryBackend
from wftest.backends.sqlite import SqliteBackend as SqliteBackend
from wftest.converter import Converter as Converter
from wftest.converter import JsonConverter as JsonConverter
from wftest.engine import ActivityFails as ActivityFails
from wftest.engine import ActivityTimesOut as ActivityTimesOut
from wftest.engine import Clock as Clock
from wftest.engine import CrashAfterActivity as CrashAfterActivity
from wftest.engine import CrashDuringStep as CrashDuringStep
from wftest.engine import DuplicateEvent as DuplicateEvent
from wftest.engine import Engine as Engine
from wftest.engine import Fault as Fault
from wftest.engine import FifoScheduler as FifoScheduler
from wftest.engine import OrchestrationState as OrchestrationState
from wftest.engine import PurgeResult as PurgeResult
from wftest.engine import QueryResult as QueryResult
from wftest.engine import Scheduler as Scheduler
from wftest.engine import SystemClock as SystemClock
from wftest.engine import TaskHubClient as TaskHubClient
from wftest.engine import UndeliveredMessage as UndeliveredMessage
from wftest.engine import VirtualClock as VirtualClock
from wftest.errors import BackendError as BackendError
from wftest.errors import ExpectationError as ExpectationError
from wftest.errors import HistoryFileError as HistoryFileError
from wftest.errors import InstanceAlreadyExistsError as InstanceAlreadyExistsError
from wftest.errors import InstanceNotCompletedError as InstanceNotCompletedError
from wftest.errors import InstanceNotFoundError as InstanceNotFoundError
from wftest.errors import LockLostError as LockLostError
from wftest.errors import NonDeterminismError as NonDeterminismError
from wftest.errors import NonDeterministicCallError as NonDeterministicCallError
from wftest.errors import NonRetryableError as NonRetryableError
from wftest.errors import NotRegisteredError as NotRegisteredError
from wftest.errors import OrchestrationCancelledError as OrchestrationCancelledError
from wftest.errors import OrchestrationFailedError as OrchestrationFailedError
from wftest.errors import OrchestrationStalledError as OrchestrationStalledError
from wftest.errors import OrchestrationStateError as OrchestrationStateError
from wftest.errors import OrchestrationTerminatedError as OrchestrationTerminatedError
from wftest.errors import RunLimitError as RunLimitError
from wftest.errors import TaskCancelledError as TaskCancelledError
from wftest.errors import TaskFailedError as TaskFailedError
from wftest.errors import TaskTimeoutError as TaskTimeoutError
from wftest.errors import UnexpectedCallError as UnexpectedCallError
from wftest.errors import WaitTimeoutError as WaitTimeoutError
from wftest.errors import WftestError as WftestError
from wftest.fuzzing import Exploration as Exploration
from wftest.fuzzing import ScheduleFailure as ScheduleFailure
from wftest.fuzzing import explore as explore
from wftest.orchestration import ActivityContext as ActivityContext
from wftest.orchestration import CancellableTask as CancellableTask
from wftest.orchestration import CompletableTask as CompletableTask
from wftest.orchestration import ExecutionResult as ExecutionResult
from wftest.orchestration import Executor as Executor
from wftest.orchestration import NonDeterminismWarning as NonDeterminismWarning
from wftest.orchestration import OrchestrationContext as OrchestrationContext
from wftest.orchestration import OrchestrationExecutor as OrchestrationExecutor
from wftest.orchestration import Registry as Registry
from wftest.orchestration import RetryPolicy as RetryPolicy
from wftest.orchestration import Task as Task
from wftest.orchestration import TimerTask as TimerTask
from wftest.orchestration import activity_logger as activity_logger
from wftest.orchestration import when_all as when_all
from wftest.orchestration import when_any as when_any
from wftest.orchestration import workflow_logger as workflow_logger
from wftest.propagation import ContextVarPropagator as ContextVarPropagator
from wftest.testing import ANY as ANY
from wftest.testing import ActivityTester as ActivityTester
from wftest.testing import Call as Call
from wftest.testing import Mock as Mock
from wftest.testing import Replayer as Replayer
from wftest.testing import ReplayResult as ReplayResult
from wftest.testing import RunResult as RunResult
from wftest.testing import WorkflowTester as WorkflowTester
from wftest.testing import render_timeline as render_timeline

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "ActivityContext",
    "ActivityFails",
    "ActivityTester",
    "ActivityTimesOut",
    "Backend",
    "BackendError",
    "Call",
    "CancellableTask",
    "Clock",
    "CompletableTask",
    "ContextVarPropagator",
    "Converter",
    "CrashAfterActivity",
    "CrashDuringStep",
    "DuplicateEvent",
    "Engine",
    "ExecutionResult",
    "Executor",
    "ExpectationError",
    "Exploration",
    "FailureDetails",
    "Fault",
    "FifoScheduler",
    "HistoryFileError",
    "IdReusePolicy",
    "InstanceAlreadyExistsError",
    "InstanceNotCompletedError",
    "InstanceNotFoundError",
    "JsonConverter",
    "LockLostError",
    "MemoryBackend",
    "Mock",
    "NonDeterminismError",
    "NonDeterminismWarning",
    "NonDeterministicCallError",
    "NonRetryableError",
    "NotRegisteredError",
    "OrchestrationCancelledError",
    "OrchestrationContext",
    "OrchestrationExecutor",
    "OrchestrationFailedError",
    "OrchestrationStalledError",
    "OrchestrationState",
    "OrchestrationStateError",
    "OrchestrationStatus",
    "OrchestrationTerminatedError",
    "PurgeResult",
    "QueryResult",
    "Registry",
    "ReplayResult",
    "Replayer",
    "RetryPolicy",
    "RunLimitError",
    "RunResult",
    "Schedule",
    "ScheduleFailure",
    "ScheduleWarning",
    "Scheduler",
    "SqliteBackend",
    "SystemClock",
    "Task",
    "TaskCancelledError",
    "TaskFailedError",
    "TaskHubClient",
    "TaskTimeoutError",
    "TimerTask",
    "UndeliveredMessage",
    "UnexpectedCallError",
    "VirtualClock",
    "WaitTimeoutError",
    "WftestError",
    "WorkflowTester",
    "activity_logger",
    "explore",
    "history",
    "render_timeline",
    "when_all",
    "when_any",
    "workflow_logger",
]
