"""Layer 6, testing: timelines now; the WorkflowTester, mocks and replay checks build on the engine."""

from wftest.testing._timeline import render_timeline as render_timeline

__all__ = ["render_timeline"]
