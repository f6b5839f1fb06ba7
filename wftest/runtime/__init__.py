"""Layer 3, runtime state: applies a step's actions to an instance (new history, messages, status)."""

from wftest.runtime._apply import apply_step as apply_step
from wftest.runtime._apply import created_children as created_children
from wftest.runtime._apply import entity_message_target as entity_message_target
from wftest.runtime._apply import needs_history as needs_history
from wftest.runtime._apply import new_execution_id as new_execution_id
from wftest.runtime._apply import refresh_activity_tags as refresh_activity_tags
from wftest.runtime._apply import running_children as running_children
from wftest.runtime._apply import terminate_without_start as terminate_without_start
from wftest.runtime._records import COMPLETED as COMPLETED
from wftest.runtime._records import CONTINUED_AS_NEW as CONTINUED_AS_NEW
from wftest.runtime._records import FAILED as FAILED
from wftest.runtime._records import PENDING as PENDING
from wftest.runtime._records import RUNNING as RUNNING
from wftest.runtime._records import SUSPENDED as SUSPENDED
from wftest.runtime._records import TERMINAL_STATUSES as TERMINAL_STATUSES
from wftest.runtime._records import TERMINATED as TERMINATED
from wftest.runtime._records import ActivityTask as ActivityTask
from wftest.runtime._records import InstanceRecord as InstanceRecord
from wftest.runtime._records import Message as Message
from wftest.runtime._records import StepUpdate as StepUpdate
from wftest.runtime._records import is_terminal as is_terminal

__all__ = [
    "COMPLETED",
    "CONTINUED_AS_NEW",
    "FAILED",
    "PENDING",
    "RUNNING",
    "SUSPENDED",
    "TERMINAL_STATUSES",
    "TERMINATED",
    "ActivityTask",
    "InstanceRecord",
    "Message",
    "StepUpdate",
    "apply_step",
    "created_children",
    "entity_message_target",
    "is_terminal",
    "needs_history",
    "new_execution_id",
    "refresh_activity_tags",
    "running_children",
    "terminate_without_start",
]
