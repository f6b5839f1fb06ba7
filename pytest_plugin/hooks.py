"""Hooks that conftest.py files may implement to customise the wftest fixtures.

They are added to pytest through ``pytest_addhooks``; implement them in a ``conftest.py`` (or a plugin)::

    def pytest_wftest_registry(config):
        from myapp.workflows import registry
        return registry
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec(firstresult=True)
def pytest_wftest_registry(config: pytest.Config) -> Any:
    """Return the ``wftest.Registry`` the fixtures use (overrides the ``wftest_registry`` ini option).

    The first non-None result wins; None falls back to the option (and, without it, a fresh registry).
    """


@pytest.hookspec(firstresult=True)
def pytest_wftest_converter(config: pytest.Config) -> Any:
    """Return the payload converter (``wftest.converter.Converter``) of the testers and ``wftest_engine``.

    The first non-None result wins; None keeps the default JSON converter. A keyword override of
    ``workflow_tester_factory(converter=...)`` still wins over it.
    """


def pytest_wftest_configure_tester(tester: Any, request: pytest.FixtureRequest) -> None:
    """Customise each new tester of ``workflow_tester`` and ``workflow_tester_factory``.

    Register plugins, add activities, declare common mocks (with ``.any_times()`` unless every test must
    call them). ``request`` is the fixture request of the test the tester is for.
    """
