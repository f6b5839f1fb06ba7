"""pytest integration for wftest: fixtures, the ``wftest`` marker, options and failure reports.

Imports nothing from wftest at module level: pytest start-up must not pay for the engine (a test checks
it). Fixtures:

- ``workflow_tester``: a fresh :class:`wftest.WorkflowTester` configured from the marker, the command
  line and the ini file (in that order of precedence);
- ``workflow_tester_factory``: session-scoped, makes testers configured the same way; the pattern for
  hypothesis ``@given`` tests (a function-scoped fixture trips hypothesis's health check);
- ``wftest_engine``: an :class:`wftest.Engine` on the in-memory backend and the ``virtual_clock``, whose
  activities see the virtual time through ``datetime.now()`` as the tester's do;
- ``virtual_clock``: a :class:`wftest.VirtualClock` at the configured start time.

Testers from either fixture get the same treatment: the ``pytest_wftest_configure_tester`` hook runs for
each, ``--wftest-record=DIR`` saves the history of every instance of each finished run, and when the
test fails its report gains a "wftest timeline" section with the timeline of the last run.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Generator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from wftest import Engine, Registry, RunResult, VirtualClock, WorkflowTester

_OPTIONS: dict[str, tuple[str, str, str]] = {
    # name: (metavar, help, default as ini text)
    "start_time": (
        "TIME", "where the virtual clock of workflow_tester, wftest_engine and virtual_clock starts: ISO 8601, "
        "UTC unless it has an offset", "2024-01-01T00:00:00",
    ),
    "strict": (
        "BOOL", "strict mode of workflow_tester: orchestrator code calling the wall clock, random, uuid4, sleep, "
        "threads, sockets or open fails, and so does a changed input on replay (true/false)", "true",
    ),
    "replay_check": ("BOOL", "replay every final history from scratch after each tester run (true/false)", "true"),
    "freeze_activity_time": (
        "BOOL", "activities of workflow_tester and wftest_engine see the virtual time through datetime.now() "
        "(true/false)", "true",
    ),
    "max_steps": ("N", "stop a tester run that processes more than N work items (an endless loop?)", "100000"),
    "registry": ("MODULE:ATTR", "the wftest.Registry the fixtures and saved-history tests use", ""),
    "time_backend": (
        "NAME", "how activities see virtual time: freezegun (the default; it scans the loaded modules once per "
        "process, then switches on and off in microseconds), or time-machine (fakes the clock in C instead of "
        "replacing references in modules; needs the time-machine extra)", "freezegun",
    ),
}
#: the keywords of @pytest.mark.wftest and what each accepts
_MARKER_TYPES: dict[str, str] = {
    "start_time": "a datetime or an ISO 8601 string",
    "strict": "True or False",
    "replay_check": "True or False",
    "freeze_activity_time": "True or False",
    "max_steps": "a whole number > 0",
}
_HISTORY_SUFFIXES = (".history.json", ".history.pb")

_TESTERS_KEY = pytest.StashKey[list["WorkflowTester"]]()
_RECORD_COUNT_KEY = pytest.StashKey[Iterator[int]]()
_ITEM_KEY = pytest.StashKey[pytest.Item]()


# -- options, marker, settings ----------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``--wftest-*`` options and the ``wftest_*`` ini keys (``pytest --help`` lists them)."""
    group = parser.getgroup("wftest", "wftest: deterministic workflow testing")
    for name, (metavar, help_text, default) in _OPTIONS.items():
        flag = "--wftest-" + name.replace("_", "-")
        shown = f"; default {default}" if default else ""
        group.addoption(
            flag, dest=f"wftest_{name}", default=None, metavar=metavar,
            help=f"{help_text}{shown} (ini: wftest_{name})",
        )
        parser.addini(f"wftest_{name}", f"{help_text}{shown}", default=default)
    parser.addini(
        "wftest_histories",
        "folders or globs (relative to the rootdir) of saved *.history.json / *.history.pb files to replay as tests",
        type="linelist", default=[],
    )
    group.addoption(
        "--wftest-record", dest="wftest_record", default=None, metavar="DIR",
        help="save the history of every finished tester run as DIR/<test>-<n>.history.json, and each "
        "sub-orchestration's as DIR/<test>-<n>--<instance>.history.json",
    )
    group.addoption(
        "--wftest-report", dest="wftest_report", default=None, metavar="DIR",
        help="when a test that ran a tester fails, write the timeline picture of its last run as DIR/<test>.html",
    )


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Add the ``pytest_wftest_*`` hooks that ``conftest.py`` files may implement."""
    from pytest_plugin import hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``wftest`` marker and check the option values (a bad one is a usage error at once)."""
    _base_settings(config)
    _time_backend(config)
    config.addinivalue_line(
        "markers",
        "wftest(start_time=None, strict=None, replay_check=None, freeze_activity_time=None, max_steps=None): "
        "configure workflow_tester, workflow_tester_factory, wftest_engine and virtual_clock for this test",
    )


def pytest_report_header(config: pytest.Config) -> str:
    """``wftest: start_time=..., strict=..., replay_check=...`` (and the record folder)."""
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


def _as_bool(name: str, value: str) -> bool:
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise pytest.UsageError(f"wftest_{name}: expected true or false, got {value!r}")


def _parse_time(text: str) -> datetime | None:
    """An ISO 8601 time as an aware datetime (UTC unless the text has an offset), or None if it is not one."""
    text = text.strip()
    if text.endswith(("Z", "z")):  # Python 3.10's fromisoformat does not read "Z"
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.utcoffset() is not None else when.replace(tzinfo=timezone.utc)


def _as_time(value: str) -> datetime:
    when = _parse_time(value)
    if when is None:
        raise pytest.UsageError(f"wftest_start_time: expected an ISO 8601 time, got {value!r}")
    return when


def _as_steps(value: str) -> int:
    try:
        steps = int(value.strip())
    except ValueError:
        steps = 0
    if steps <= 0:
        raise pytest.UsageError(f"wftest_max_steps: expected a whole number > 0, got {value!r}")
    return steps


def _registry(config: pytest.Config) -> Registry | None:
    from_hook = config.hook.pytest_wftest_registry(config=config)
    if from_hook is not None:
        return from_hook  # type: ignore[no-any-return]
    spec = _setting(config, "registry").strip()
    if not spec:
        return None
    import importlib

    from wftest import Registry

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise pytest.UsageError(f"wftest_registry: expected 'module:attribute', got {spec!r}")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise pytest.UsageError(f"wftest_registry: cannot load {spec!r}: {err}") from None
    if not isinstance(obj, Registry):
        raise pytest.UsageError(f"wftest_registry: {spec!r} is a {type(obj).__qualname__}, not a wftest.Registry")
    return obj


def _base_settings(config: pytest.Config) -> dict[str, Any]:
    return {
        "start_time": _as_time(_setting(config, "start_time")),
        "strict": _as_bool("strict", _setting(config, "strict")),
        "replay_check": _as_bool("replay_check", _setting(config, "replay_check")),
        "freeze_activity_time": _as_bool("freeze_activity_time", _setting(config, "freeze_activity_time")),
        "max_steps": _as_steps(_setting(config, "max_steps")),
    }


def _time_backend(config: pytest.Config) -> str:
    backend = _setting(config, "time_backend").strip().lower()
    if backend not in ("freezegun", "time-machine"):
        raise pytest.UsageError(f"wftest_time_backend: expected freezegun or time-machine, got {backend!r}")
    return backend


def _marker_value(key: str, value: Any) -> Any:
    """The marker value converted for the tester, or raise ``ValueError`` saying what was expected."""
    if key == "start_time":
        if isinstance(value, datetime):
            return value if value.utcoffset() is not None else value.replace(tzinfo=timezone.utc)
        if isinstance(value, str) and (when := _parse_time(value)) is not None:
            return when
    elif key == "max_steps":
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    elif isinstance(value, bool):
        return value
    raise ValueError(f"{key}={value!r}: expected {_MARKER_TYPES[key]}")


def _marker_settings(node: pytest.Item | None) -> dict[str, Any]:
    """The closest ``@pytest.mark.wftest`` of ``node``, validated and converted; fails the test if it is wrong."""
    marker = node.get_closest_marker("wftest") if node is not None else None
    if marker is None or node is None:
        return {}
    problems: list[str] = []
    if marker.args:
        problems.append(f"positional arguments {marker.args!r}: give keywords")
    settings: dict[str, Any] = {}
    for key, value in marker.kwargs.items():
        if key not in _MARKER_TYPES:
            problems.append(f"unknown keyword {key!r}")
            continue
        try:
            settings[key] = _marker_value(key, value)
        except ValueError as err:
            problems.append(str(err))
    if problems:
        pytest.fail(
            f"@pytest.mark.wftest on {node.nodeid}: " + "; ".join(problems)
            + f" (keywords: {', '.join(f'{k} ({t})' for k, t in _MARKER_TYPES.items())})",
            pytrace=False,
        )
    return settings


def _settings(config: pytest.Config, node: pytest.Item | None) -> dict[str, Any]:
    settings = _base_settings(config)
    settings.update(_marker_settings(node))
    return settings


# -- testers ----------------------------------------------------------------------------------------


def _make_tester(
    config: pytest.Config, node: pytest.Item | None, request: pytest.FixtureRequest, settings: dict[str, Any]
) -> WorkflowTester:
    """A tester with ``settings``, set up like every fixture tester: time backend, conftest hook, recording
    and the failure report of ``node`` (the current test)."""
    from wftest import WorkflowTester

    backend = _time_backend(config)
    settings.setdefault("registry", _registry(config))
    if "converter" not in settings and (converter := config.hook.pytest_wftest_converter(config=config)) is not None:
        settings["converter"] = converter
    tester = WorkflowTester(**settings)
    if backend == "time-machine":
        from wftest.hooks import TimeMachinePlugin

        tester.hooks.register(TimeMachinePlugin())
    config.hook.pytest_wftest_configure_tester(tester=tester, request=request)
    if node is not None:
        node.stash.setdefault(_TESTERS_KEY, []).append(tester)
    record_dir = config.getoption("wftest_record")
    if record_dir:
        nodeid = node.nodeid if node is not None else "session"
        counter = node.stash.setdefault(_RECORD_COUNT_KEY, itertools.count(1)) if node is not None else (
            itertools.count(1))
        tester.on_run_finished.append(_recorder(Path(record_dir), nodeid, counter))
    return tester


def _item(request: pytest.FixtureRequest) -> pytest.Item | None:
    node = request.node
    return node if isinstance(node, pytest.Item) else None


@pytest.fixture
def workflow_tester(request: pytest.FixtureRequest) -> WorkflowTester:
    """A fresh WorkflowTester configured from the ``wftest`` marker, ``--wftest-*`` options and the ini file.

    Each ``run()`` uses a new engine, so the tester may run many times in one test. In hypothesis
    ``@given`` tests use ``workflow_tester_factory`` instead (hypothesis refuses function-scoped fixtures).
    """
    node = _item(request)
    return _make_tester(request.config, node, request, _settings(request.config, node))


@pytest.fixture(scope="session")
def workflow_tester_factory(request: pytest.FixtureRequest) -> Callable[..., WorkflowTester]:
    """A session-scoped factory of WorkflowTesters configured like ``workflow_tester``.

    Settings come from the current test's ``wftest`` marker, the options and the ini file, and keyword
    overrides win over all three. Testers it makes get the ``pytest_wftest_configure_tester`` hook,
    ``--wftest-record`` and the timeline section on failure, as ``workflow_tester`` does. For hypothesis
    ``@given`` tests (a function-scoped fixture would trip hypothesis's ``function_scoped_fixture`` health
    check): make a fresh tester in each example::

        @given(st.integers())
        def test_any_amount(workflow_tester_factory, amount):
            tester = workflow_tester_factory()            # or workflow_tester_factory(strict=False)
            ...
    """
    config = request.config

    def make(**overrides: Any) -> WorkflowTester:
        node = config.stash.get(_ITEM_KEY, None)
        settings = _settings(config, node)
        settings.update(overrides)
        # the hook gets the current test's request where there is one, as for workflow_tester
        hook_request = getattr(node, "_request", None) if node is not None else None
        return _make_tester(config, node, hook_request if hook_request is not None else request, settings)

    return make


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    """Remember the running test, so that ``workflow_tester_factory`` (session-scoped) knows it."""
    item.config.stash[_ITEM_KEY] = item
    try:
        return (yield)
    finally:
        del item.config.stash[_ITEM_KEY]


@pytest.fixture
def virtual_clock(request: pytest.FixtureRequest) -> VirtualClock:
    """A VirtualClock at the configured start time (the ``wftest`` marker's ``start_time`` included)."""
    from wftest import VirtualClock

    return VirtualClock(_settings(request.config, _item(request))["start_time"])


@pytest.fixture
def wftest_engine(virtual_clock: VirtualClock, request: pytest.FixtureRequest) -> Generator[Engine, None, None]:
    """An Engine on the in-memory backend and the ``virtual_clock`` fixture (``wftest_engine.client``).

    As in the tester, activities see the virtual time through ``datetime.now()`` (unless
    ``freeze_activity_time`` is off): the time patch is on while an activity runs, so orchestrator code
    and the test itself read the real clock; ``wftest_engine.clock.now()`` is the virtual time.
    """
    from wftest import Engine

    config = request.config
    converter = config.hook.pytest_wftest_converter(config=config)
    extra = {"converter": converter} if converter is not None else {}
    engine = Engine(clock=virtual_clock, registry=_registry(config), **extra)
    if not _settings(config, _item(request))["freeze_activity_time"]:
        yield engine
        return
    from wftest.testing._activity_time import ActivityTimeFollowsClock

    if _time_backend(config) == "time-machine":
        from wftest.hooks import TimeMachinePlugin

        engine.hooks.register(TimeMachinePlugin())
    follower = ActivityTimeFollowsClock(engine)
    engine.hooks.register(follower, name="wftest.activity-time")
    try:
        yield engine
    finally:
        follower.close()


# -- recording histories ----------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "_"


def _recorder(directory: Path, nodeid: str, counter: Iterator[int]) -> Callable[[RunResult], None]:
    """Saves each finished run: the root as ``<test>-<n>.history.json``, each other instance of the run
    (sub-orchestrations) as ``<test>-<n>--<instance>.history.json``."""
    slug = _slug(nodeid)

    def record(result: RunResult) -> None:
        from wftest import history

        directory.mkdir(parents=True, exist_ok=True)
        base = f"{slug}-{next(counter)}"
        history.save(directory / f"{base}{history.JSON_SUFFIX}", result.history)
        for state in result.engine.client.get_all_orchestration_states():
            if state.instance_id == result.instance_id:
                continue
            events = result.history_of(state.instance_id)
            if any(e.HasField("executionStarted") for e in events):
                history.save(directory / f"{base}--{_slug(state.instance_id)}{history.JSON_SUFFIX}", events)

    return record


# -- saved histories as tests -----------------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect ``*.history.json`` / ``*.history.pb`` files under the ``wftest_histories`` folders or globs."""
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


# -- failure reports --------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Add a "wftest timeline" section with the last tester run to the report of a failed test."""
    report = yield
    if report.failed and call.when == "call":
        testers = item.stash.get(_TESTERS_KEY, [])
        picture = ""
        if testers and (report_dir := item.config.getoption("wftest_report")):
            from pytest_plugin._report import write_failure_page

            picture = write_failure_page(report_dir, item.nodeid, testers)[1]
        result = next((t.last_result for t in reversed(testers) if t.last_result is not None), None)
        if result is not None:
            report.sections.append(
                (
                    "wftest timeline",
                    f"last run: instance {result.instance_id!r}, status {result.status}, "
                    f"{result.steps} work items, virtual time {result.virtual_duration}\n"
                    + (f"{picture}\n" if picture else "") + f"\n{result.timeline()}",
                )
            )
        elif picture:
            report.sections.append(("wftest timeline", picture))
    return report
