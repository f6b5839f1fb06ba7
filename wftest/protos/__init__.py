"""Layer 1, protocol: the durabletask-compatible protobuf messages every other layer speaks.

This package owns ``orchestrator_service.proto`` (written for wftest, wire-compatible with the schema the
``durabletask`` package ships: same message, field and enum names and numbers, so binary and JSON forms are
interchangeable) and the Python modules generated from it by ``scripts/gen_protos.py`` (committed, never
edited by hand; a test fails when they are stale). A history is a list of ``HistoryEvent`` messages
everywhere in wftest. The schema declares ``package wftest.protos`` because durabletask's package-less
schema and a second package-less copy cannot be loaded into one process (duplicate symbols); the package
does not change the wire format or the JSON mapping.

The rest of the library imports the generated module as::

    from wftest.protos import orchestrator_service_pb2 as pb
"""

from . import orchestrator_service_pb2 as orchestrator_service_pb2
from .orchestrator_service_pb2 import ActivityRequest as ActivityRequest
from .orchestrator_service_pb2 import ActivityResponse as ActivityResponse
from .orchestrator_service_pb2 import HistoryEvent as HistoryEvent
from .orchestrator_service_pb2 import OrchestrationInstance as OrchestrationInstance
from .orchestrator_service_pb2 import OrchestrationState as OrchestrationState
from .orchestrator_service_pb2 import OrchestrationStatus as OrchestrationStatus
from .orchestrator_service_pb2 import OrchestratorAction as OrchestratorAction
from .orchestrator_service_pb2 import OrchestratorRequest as OrchestratorRequest
from .orchestrator_service_pb2 import OrchestratorResponse as OrchestratorResponse
from .orchestrator_service_pb2 import ParentInstanceInfo as ParentInstanceInfo
from .orchestrator_service_pb2 import TaskFailureDetails as TaskFailureDetails
from .orchestrator_service_pb2 import TraceContext as TraceContext

__all__ = [
    "ActivityRequest",
    "ActivityResponse",
    "HistoryEvent",
    "OrchestrationInstance",
    "OrchestrationState",
    "OrchestrationStatus",
    "OrchestratorAction",
    "OrchestratorRequest",
    "OrchestratorResponse",
    "ParentInstanceInfo",
    "TaskFailureDetails",
    "TraceContext",
    "orchestrator_service_pb2",
]
