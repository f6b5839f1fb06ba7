"""``OrchestrationStatus``: the runtime status of an instance, as a string enum.

``state.runtime_status == OrchestrationStatus.COMPLETED`` and ``state.runtime_status == "COMPLETED"``
both hold. ``to_proto()`` / ``from_proto()`` convert to the protobuf enum numbers.
"""

from __future__ import annotations

import enum

from wftest.protos import orchestrator_service_pb2 as pb


class OrchestrationStatus(str, enum.Enum):
    """The runtime status of an orchestration instance."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    CONTINUED_AS_NEW = "CONTINUED_AS_NEW"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    TERMINATED = "TERMINATED"
    PENDING = "PENDING"
    SUSPENDED = "SUSPENDED"

    def __str__(self) -> str:
        return self.value

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETED, FAILED, TERMINATED and CANCELED: the instance never runs again."""
        return self in (OrchestrationStatus.COMPLETED, OrchestrationStatus.FAILED,
                        OrchestrationStatus.TERMINATED, OrchestrationStatus.CANCELED)

    def to_proto(self) -> int:
        """The protobuf ``OrchestrationStatus`` number (``ORCHESTRATION_STATUS_<NAME>``)."""
        return int(pb.OrchestrationStatus.Value(f"ORCHESTRATION_STATUS_{self.value}"))

    @classmethod
    def from_proto(cls, value: int) -> OrchestrationStatus:
        """The status for a protobuf enum number."""
        return cls(str(pb.OrchestrationStatus.Name(value)).removeprefix("ORCHESTRATION_STATUS_"))
