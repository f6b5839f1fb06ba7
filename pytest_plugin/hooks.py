"""Hooks that conftest.py files may implement to customise the wftest fixtures."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec(firstresult=True)
def pytest_wftest_registry(config: pytest.Config) -> Any:
    """Return the ``wftest.Registry`` the fixtures use (overrides the ``wftest_registry`` ini option)."""


def pytest_wftest_configure_tester(tester: Any, request: pytest.FixtureRequest) -> None:
    """Customise each new ``workflow_tester`` (declare common mocks, set a converter, ...)."""
