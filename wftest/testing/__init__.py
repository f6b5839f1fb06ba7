"""Layer 6, testing: ``WorkflowTester``, mocks, replay checks and timelines."""

from wftest.testing._activity_tester import ActivityTester as ActivityTester
from wftest.testing._mocks import ANY as ANY
from wftest.testing._mocks import Call as Call
from wftest.testing._mocks import Mock as Mock
from wftest.testing._replayer import Replayer as Replayer
from wftest.testing._replayer import ReplayResult as ReplayResult
from wftest.testing._tester import RunResult as RunResult
from wftest.testing._tester import WorkflowTester as WorkflowTester
from wftest.testing._timeline import render_timeline as render_timeline

__all__ = [
    "ANY",
    "ActivityTester",
    "Call",
    "Mock",
    "ReplayResult",
    "Replayer",
    "RunResult",
    "WorkflowTester",
    "render_timeline",
]
