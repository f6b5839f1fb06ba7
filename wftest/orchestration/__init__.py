"""Layer 2, the orchestration code runner: context, tasks, retry policies and the executor.

Pure code: no clock, no I/O, no threads. The engine (layer 5) feeds it history events and applies the
actions it returns.
"""

from wftest.orchestration._activity import ActivityContext as ActivityContext
from wftest.orchestration._context import OrchestrationContext as OrchestrationContext
from wftest.orchestration._executor import DEFAULT_MAXIMUM_TIMER_INTERVAL as DEFAULT_MAXIMUM_TIMER_INTERVAL
from wftest.orchestration._executor import ExecutionResult as ExecutionResult
from wftest.orchestration._executor import Executor as Executor
from wftest.orchestration._executor import NonDeterminismWarning as NonDeterminismWarning
from wftest.orchestration._executor import OrchestrationExecutor as OrchestrationExecutor
from wftest.orchestration._logging import ActivityLogger as ActivityLogger
from wftest.orchestration._logging import WorkflowLogger as WorkflowLogger
from wftest.orchestration._logging import activity_logger as activity_logger
from wftest.orchestration._logging import workflow_logger as workflow_logger
from wftest.orchestration._registry import Registry as Registry
from wftest.orchestration._retry import RetryPolicy as RetryPolicy
from wftest.orchestration._task import CancellableTask as CancellableTask
from wftest.orchestration._task import CompletableTask as CompletableTask
from wftest.orchestration._task import Task as Task
from wftest.orchestration._task import TimerTask as TimerTask
from wftest.orchestration._task import WhenAllTask as WhenAllTask
from wftest.orchestration._task import WhenAnyTask as WhenAnyTask
from wftest.orchestration._task import when_all as when_all
from wftest.orchestration._task import when_any as when_any

__all__ = [
    "DEFAULT_MAXIMUM_TIMER_INTERVAL",
    "ActivityContext",
    "ActivityLogger",
    "CancellableTask",
    "CompletableTask",
    "ExecutionResult",
    "Executor",
    "NonDeterminismWarning",
    "OrchestrationContext",
    "OrchestrationExecutor",
    "Registry",
    "RetryPolicy",
    "Task",
    "TimerTask",
    "WhenAllTask",
    "WhenAnyTask",
    "WorkflowLogger",
    "activity_logger",
    "when_all",
    "when_any",
    "workflow_logger",
]
