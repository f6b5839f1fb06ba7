"""Layer 4, backends: where instances, histories, queues and locks live.

``MemoryBackend`` is the default (and what tests run on); every backend implements :class:`Backend`.
"""

from wftest.backends._base import ActivityWorkItem as ActivityWorkItem
from wftest.backends._base import Backend as Backend
from wftest.backends._base import IdReusePolicy as IdReusePolicy
from wftest.backends._base import InstanceQuery as InstanceQuery
from wftest.backends._base import OrchestrationWorkItem as OrchestrationWorkItem
from wftest.backends.memory import MemoryBackend as MemoryBackend
from wftest.runtime import ActivityTask as ActivityTask
from wftest.runtime import InstanceRecord as InstanceRecord
from wftest.runtime import Message as Message
from wftest.runtime import StepUpdate as StepUpdate
from wftest.runtime import is_terminal as is_terminal

__all__ = [
    "ActivityTask",
    "ActivityWorkItem",
    "Backend",
    "IdReusePolicy",
    "InstanceQuery",
    "InstanceRecord",
    "MemoryBackend",
    "Message",
    "OrchestrationWorkItem",
    "StepUpdate",
    "is_terminal",
]
