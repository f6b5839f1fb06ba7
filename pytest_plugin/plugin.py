"""pytest integration for wftest: fixtures, the ``wftest`` marker, options and failure reports.

Imports nothing from wftest at module level: pytest start-up must not pay for the engine. Fixtures:

- ``workflow_tester``: a fresh :class:`wftest.WorkflowTester` configured from the marker, the command
  line and the ini file (in that order of precedence);
- ``workflow_tester_factory``: session-scoped, makes testers; the pattern for hypothesis ``@given``;
- ``wftest_engine``: an :class:`wftest.Engine` on the in-memory backend and a virtual clock;
- ``virtual_clock``: a :class:`wftest.VirtualClock` at the configured start time.

When a test that used ``workflow_tester`` fails, its report gains a "wftest timeline" section with the
timeline of the tester's last run. ``--wftest-record=DIR`` saves the history of every tester run.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from wftest import Engine, Registry, VirtualClock, WorkflowTester

_OPTIONS: dict[str, tuple[str, str]] = {
    # name: (help, default as ini text)
    "start_time": ("virtual clock start (ISO 8601) for workflow_tester and virtual_clock", "2024-01-01T00:00:00"),
    "strict": ("changed inputs on replay are errors in workflow_tester (true/false)", "true"),
    "replay_check": ("replay every final history from scratch after each tester run (true/false)", "true"),
    "freeze_activity_time": ("activities see virtual time through datetime.now() (true/false)", "true"),
    "max_steps": ("stop a tester run after this many work items", "100000"),
    "registry": ("module:attribute of a wftest.Registry used by the fixtures", ""),
    "time_backend": ("how activities see virtual time: freezegun (default) or time-machine (faster)", "freezegun"),
}
_HISTORY_SUFFIXES = (".history.json", ".history.pb")

_TESTER_KEY = pytest.StashKey["WorkflowTester"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wftest", "wftest: deterministic workflow testing")
    for name, (help_text, default) in _OPTIONS.items():
        flag = "--wftest-" + name.replace("_", "-")
        group.addoption(flag, dest=f"wftest_{name}", default=None, help=f"{help_text} (ini: wftest_{name})")
        parser.addini(f"wftest_{name}", help_text, default=default)
    parser.addini(
        "wftest_histories", "folders or globs (relative to the rootdir) of saved histories to replay as tests",
        type="linelist", default=[],
    )
    group.addoption(
        "--wftest-record", dest="wftest_record", default=None, metavar="DIR",
        help="save the history of every workflow_tester run as DIR/<test>-<n>.history.json",
    )


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_plugin import hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "wftest(start_time=None, strict=None, replay_check=None, freeze_activity_time=None, max_steps=None): "
        "configure the workflow_tester fixture for this test",
    )


def pytest_report_header(config: pytest.Config) -> str:
    record = config.getoption("wftest_record")
    return (
        f"wftest: start_time={_setting(config, 'start_time')}, strict={_setting(config, 'strict')}, "
        f"replay_check={_setting(config, 'replay_check')}" + (f", recording to {record}" if record else "")
    )


def _setting(config: pytest.Config, name: str) -> str:
    value = config.getoption(f"wftest_{name}")
    if value is None:
        value = config.getini(f"wftest_{name}")
    return str(value)


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise pytest.UsageError(f"wftest_{name}: expected true or false, got {value!r}")


def _as_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise pytest.UsageError(f"wftest_start_time: expected an ISO 8601 time, got {value!r}") from None


def _registry(config: pytest.Config) -> Registry | None:
    spec = _setting(config, "registry")
    from_hook = config.hook.pytest_wftest_registry(config=config)
    if from_hook is not None:
        return from_hook  # type: ignore[no-any-return]
    if not spec:
        return None
    import importlib

    module_name, _, attr = spec.partition(":")
    if not attr:
        raise pytest.UsageError(f"wftest_registry: expected 'module:attribute', got {spec!r}")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise pytest.UsageError(f"wftest_registry: cannot load {spec!r}: {err}") from None
    return obj  # type: ignore[no-any-return]


def _base_settings(config: pytest.Config) -> dict[str, Any]:
    return {
        "start_time": _as_time(_setting(config, "start_time")),
        "strict": _as_bool("strict", _setting(config, "strict")),
        "replay_check": _as_bool("replay_check", _setting(config, "replay_check")),
        "freeze_activity_time": _as_bool("freeze_activity_time", _setting(config, "freeze_activity_time")),
        "max_steps": int(_setting(config, "max_steps")),
    }


def _make_tester(config: pytest.Config, settings: dict[str, Any]) -> WorkflowTester:
    from wftest import WorkflowTester

    backend = _setting(config, "time_backend").strip().lower()
    if backend not in ("freezegun", "time-machine"):
        raise pytest.UsageError(f"wftest_time_backend: expected freezegun or time-machine, got {backend!r}")
    settings.setdefault("registry", _registry(config))
    tester = WorkflowTester(**settings)
    if backend == "time-machine":
        from wftest.hooks import TimeMachinePlugin

        tester.hooks.register(TimeMachinePlugin())
    return tester


def _settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    settings = _base_settings(request.config)
    marker = request.node.get_closest_marker("wftest")
    if marker is not None:
        unknown = set(marker.kwargs) - set(settings)
        if unknown or marker.args:
            raise pytest.UsageError(
                f"@pytest.mark.wftest takes keyword arguments {sorted(settings)}; got {sorted(unknown) or marker.args}"
            )
        for key, value in marker.kwargs.items():
            settings[key] = _as_time(value) if key == "start_time" else value
    return settings


@pytest.fixture
def workflow_tester(request: pytest.FixtureRequest) -> Generator[WorkflowTester, None, None]:
    """A fresh WorkflowTester configured from the ``wftest`` marker, ``--wftest-*`` options and the ini file.

    Each ``run()`` uses a new engine, so the fixture is safe inside hypothesis ``@given`` tests when the
    test body calls ``run()`` for every example (no state carries over between runs).
    """
    tester = _make_tester(request.config, _settings(request))
    request.config.hook.pytest_wftest_configure_tester(tester=tester, request=request)
    request.node.stash[_TESTER_KEY] = tester
    record_dir = request.config.getoption("wftest_record")
    if record_dir:
        tester.on_run_finished.append(_recorder(Path(record_dir), request.node.nodeid))
    yield tester


@pytest.fixture(scope="session")
def workflow_tester_factory(pytestconfig: pytest.Config) -> Any:
    """A session-scoped factory of WorkflowTesters configured from options and the ini file.

    For hypothesis ``@given`` tests (a function-scoped fixture would trip hypothesis's
    ``function_scoped_fixture`` health check): make a fresh tester in each example::

        @given(st.integers())
        def test_any_amount(workflow_tester_factory, amount):
            tester = workflow_tester_factory()
            ...
    """
    def make(**overrides: Any) -> WorkflowTester:
        settings = _base_settings(pytestconfig)
        settings.update(overrides)
        return _make_tester(pytestconfig, settings)

    return make


@pytest.fixture
def virtual_clock(request: pytest.FixtureRequest) -> VirtualClock:
    """A VirtualClock at the configured start time."""
    from wftest import VirtualClock

    return VirtualClock(_settings(request)["start_time"])


@pytest.fixture
def wftest_engine(virtual_clock: VirtualClock, request: pytest.FixtureRequest) -> Generator[Engine, None, None]:
    """An Engine on the in-memory backend and the ``virtual_clock`` fixture (``wftest_engine.client``)."""
    from wftest import Engine

    yield Engine(clock=virtual_clock, registry=_registry(request.config))


def _recorder(directory: Path, nodeid: str) -> Any:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")
    count = {"n": 0}

    def record(result: Any) -> None:
        from wftest import history

        directory.mkdir(parents=True, exist_ok=True)
        count["n"] += 1
        history.save(directory / f"{slug}-{count['n']}{history.JSON_SUFFIX}", result.history)

    return record


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if not file_path.name.endswith(_HISTORY_SUFFIXES):
        return None
    patterns = parent.config.getini("wftest_histories")
    if not patterns or not _matches_any(file_path, Path(parent.config.rootpath), patterns):
        return None
    from pytest_plugin._histories import HistoryFile

    return HistoryFile.from_parent(parent, path=file_path)


def _matches_any(path: Path, root: Path, patterns: list[str]) -> bool:
    for pattern in patterns:
        base = root / pattern
        if base.is_dir():
            if base.resolve() in path.resolve().parents:
                return True
        elif path.resolve() in {p.resolve() for p in root.glob(pattern)}:
            return True
    return False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if report.failed and call.when == "call":
        tester = item.stash.get(_TESTER_KEY, None)
        result = getattr(tester, "last_result", None) if tester is not None else None
        if result is not None:
            report.sections.append(
                (
                    "wftest timeline",
                    f"last run: instance {result.instance_id!r}, status {result.status}, "
                    f"{result.steps} work items, virtual time {result.virtual_duration}\n\n{result.timeline()}",
                )
            )
    return report
