"""The pytest plugin, exercised through pytest's own ``pytester``."""

from __future__ import annotations

import json
import sys

# Imported here so that pytester's in-process runs find them loaded: each run restores sys.modules to its
# snapshot, so a module first imported inside a run is imported afresh in the next one (hypothesis: seconds;
# freezegun: a second copy of its fakes next to the first).
import freezegun  # noqa: F401
import hypothesis  # noqa: F401
import pytest

WORKFLOW = '''
from datetime import timedelta

def charge(ctx, order):
    raise AssertionError("mocked in tests")

def order_workflow(ctx, order):
    receipt = yield ctx.call_activity(charge, input=order)
    yield ctx.create_timer(timedelta(days=30))
    return {"shipped": True, "receipt": receipt}
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(workflows=WORKFLOW)
    pytester.syspathinsert()
    return pytester


def test_workflow_tester_fixture_runs_a_workflow(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_orders='''
        from workflows import charge, order_workflow

        def test_order_ships(workflow_tester):
            workflow_tester.on_activity(charge).returns("r-1")
            result = workflow_tester.run(order_workflow, input={"sku": "A1"})
            assert result.status == "COMPLETED" and result.output == {"shipped": True, "receipt": "r-1"}
            workflow_tester.assert_expectations()
        '''
    )
    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_failure_report_has_a_timeline_section(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_orders='''
        from workflows import charge, order_workflow

        def test_wrong_expectation(workflow_tester):
            workflow_tester.on_activity(charge).returns("r-1")
            result = workflow_tester.run(order_workflow, input={})
            assert result.output == "something else"
        '''
    )
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*wftest timeline*", "*TaskScheduled*#1*charge*", "*TimerCreated*"])


def test_marker_configures_the_tester(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_marker='''
        import pytest
        from datetime import datetime

        @pytest.mark.wftest(start_time="2030-05-01T12:00:00", replay_check=False, strict=False)
        def test_configured(workflow_tester):
            assert workflow_tester.start_time == datetime(2030, 5, 1, 12)
            assert workflow_tester.replay_check is False and workflow_tester.strict is False
        '''
    )
    project.runpytest().assert_outcomes(passed=1)


def test_command_line_wins_over_ini(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nwftest_start_time = 2025-01-01T00:00:00\nwftest_max_steps = 7\n")
    project.makepyfile(
        test_opts='''
        from datetime import datetime

        def test_options(workflow_tester, virtual_clock):
            assert workflow_tester.start_time == datetime(2026, 2, 3)
            assert virtual_clock.now() == datetime(2026, 2, 3)
            assert workflow_tester.max_steps == 7
        '''
    )
    project.runpytest("--wftest-start-time=2026-02-03T00:00:00").assert_outcomes(passed=1)


def test_bad_option_value_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(test_x="def test_x(workflow_tester):\n    pass\n")
    result = project.runpytest("--wftest-strict=maybe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: wftest_strict: expected true or false, got 'maybe'"])


def test_engine_fixture_runs_on_the_virtual_clock(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_engine='''
        from datetime import timedelta

        def greet(ctx, name):
            return "hello " + name

        def wf(ctx, name):
            text = yield ctx.call_activity(greet, input=name)
            yield ctx.create_timer(timedelta(days=30))
            return text

        def test_engine(wftest_engine):
            iid = wftest_engine.client.schedule_new_orchestration(wf, input="ada")
            state = wftest_engine.client.wait_for_orchestration_completion(iid)
            assert state.output == "hello ada"
            assert (wftest_engine.clock.now() - state.created_at).days == 30
        '''
    )
    project.runpytest().assert_outcomes(passed=1)


def test_record_writes_history_files(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_rec='''
        from workflows import charge, order_workflow

        def test_recorded(workflow_tester):
            workflow_tester.on_activity(charge).returns("r")
            workflow_tester.run(order_workflow, input={"n": 1})
        '''
    )
    project.runpytest("--wftest-record=histories").assert_outcomes(passed=1)
    [path] = list((project.path / "histories").glob("*.history.json"))
    document = json.loads(path.read_text())
    assert document["format"] == "wftest.history/1"
    assert document["orchestrator"] == "order_workflow"
    kinds = [next(k for k in e if k not in ("eventId", "timestamp")) for e in document["events"]]
    assert kinds[:3] == ["orchestratorStarted", "executionStarted", "taskScheduled"]
    assert path.read_text().count("\n") > len(document["events"])  # one event per line


def test_conftest_hook_configures_every_tester(project: pytest.Pytester) -> None:
    project.makeconftest(
        '''
        def pytest_wftest_configure_tester(tester, request):
            from workflows import charge
            tester.on_activity(charge).returns("from-conftest")
        '''
    )
    project.makepyfile(
        test_hook='''
        from workflows import order_workflow

        def test_uses_conftest_mock(workflow_tester):
            assert workflow_tester.run(order_workflow, input={}).output["receipt"] == "from-conftest"
        '''
    )
    project.runpytest().assert_outcomes(passed=1)


def test_plugin_import_does_not_import_the_engine(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_lazy='''
        import sys

        def test_lazy():
            assert "wftest.engine" not in sys.modules
        '''
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_help_lists_the_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--wftest-start-time*", "*--wftest-record=DIR*"])


def test_factory_fixture_works_in_hypothesis_without_health_check_suppression(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_fuzz='''
        from hypothesis import given, settings, strategies as st
        from workflows import charge, order_workflow

        @settings(max_examples=20, deadline=None)
        @given(st.integers(min_value=0, max_value=100))
        def test_any_amount(workflow_tester_factory, amount):
            tester = workflow_tester_factory()
            tester.on_activity(charge).returns(amount)
            assert tester.run(order_workflow, input={"amount": amount}).output["receipt"] == amount
        '''
    )
    project.runpytest().assert_outcomes(passed=1)


def test_time_backend_option_selects_time_machine(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_tm='''
        import datetime

        def now(ctx, _):
            return datetime.datetime.now().isoformat()

        def wf(ctx, _):
            return (yield ctx.call_activity(now))

        def test_time_machine(workflow_tester):
            names = workflow_tester.hooks.manager.list_name_plugin()
            assert any(type(p).__name__ == "TimeMachinePlugin" for _, p in names)
            assert workflow_tester.run(wf).output.startswith("2024-01-01T00:00:00")
        '''
    )
    project.runpytest("--wftest-time-backend=time-machine").assert_outcomes(passed=1)


HISTORY_APP = '''
from datetime import timedelta
from wftest import Registry

def step_a(ctx, x):
    return x

def step_b(ctx, x):
    return x

def order(ctx, _):
    yield ctx.call_activity(step_a, input=1)
    yield ctx.create_timer(timedelta(days=1))
    yield ctx.call_activity(step_b, input=2)
    return "done"

registry = Registry()
registry.add_orchestrator(order)
'''


def _saved_history(project: pytest.Pytester) -> None:
    from wftest import Engine, history

    project.makepyfile(myapp=HISTORY_APP)
    project.syspathinsert()
    import importlib
    import sys

    sys.modules.pop("myapp", None)
    myapp = importlib.import_module("myapp")
    engine = Engine(registry=myapp.registry)
    iid = engine.client.schedule_new_orchestration("order", instance_id="order-1")
    engine.client.wait_for_orchestration_completion(iid)
    (project.path / "histories").mkdir()
    history.save(project.path / "histories" / "order.history.json", engine.history(iid))
    sys.modules.pop("myapp", None)  # the in-process pytest run must import the module afresh


def test_saved_histories_are_collected_and_replayed(project: pytest.Pytester) -> None:
    _saved_history(project)
    project.makeini("[pytest]\nwftest_histories = histories\nwftest_registry = myapp:registry\n")
    result = project.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*order.history.json::order-1 PASSED*"])


def test_changed_code_fails_the_history_item_with_a_diff(project: pytest.Pytester) -> None:
    _saved_history(project)
    project.makeini("[pytest]\nwftest_histories = histories\nwftest_registry = myapp:registry\n")
    project.makepyfile(myapp=HISTORY_APP.replace("step_a, input=1", "step_b, input=1"))
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*replay of order.history.json failed*", "*side by side*", "*TaskScheduled*"])
    assert "Traceback" not in result.stdout.str()


def test_broken_history_file_fails_with_file_and_event(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nwftest_histories = histories\nwftest_registry = workflows:order_workflow\n")
    (project.path / "histories").mkdir()
    (project.path / "histories" / "bad.history.json").write_text('{"events": [{"taskExploded": {}}]}')
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cannot load history file*bad.history.json, event 0*taskExploded*"])


def test_history_files_outside_the_option_are_ignored(project: pytest.Pytester) -> None:
    _saved_history(project)
    project.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    project.runpytest().assert_outcomes(passed=1)


# -- the marker: conversion and validation -----------------------------------------------------------


def test_marker_start_time_string_with_an_offset_is_converted_to_utc(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_marker='''
        import pytest
        from datetime import datetime, timedelta

        @pytest.mark.wftest(start_time="2030-05-01T12:00:00+02:00")
        def test_offset(workflow_tester, virtual_clock):
            assert workflow_tester.start_time == datetime(2030, 5, 1, 10)
            assert virtual_clock.now() == datetime(2030, 5, 1, 10)

        @pytest.mark.wftest(start_time="2030-05-01T12:00:00Z")
        def test_zulu(workflow_tester):
            def wf(ctx, _):
                return ctx.current_utc_datetime.isoformat()
            assert workflow_tester.run(wf).output == "2030-05-01T12:00:00"
        '''
    )
    project.runpytest().assert_outcomes(passed=2)


def test_bad_marker_fails_the_test_with_one_error_naming_marker_keys_and_test(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_marker='''
        import pytest

        @pytest.mark.wftest(strcit=False, replay_check="no", start_time="next tuesday", max_steps=0)
        def test_typo(workflow_tester):
            pass

        def test_unaffected(workflow_tester):
            pass
        '''
    )
    result = project.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*@pytest.mark.wftest on test_marker.py::test_typo: unknown keyword 'strcit'; "
        "replay_check='no': expected True or False; start_time='next tuesday': expected a datetime or an "
        "ISO 8601 string; max_steps=0: expected a whole number > 0 (keywords: start_time*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_marker_positional_arguments_are_refused(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_marker='''
        import pytest

        @pytest.mark.wftest(False)
        def test_positional(virtual_clock):
            pass
        '''
    )
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.wftest on test_marker.py::test_positional: positional arguments*"])


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--wftest-max-steps=lots", "wftest_max_steps: expected a whole number > 0, got 'lots'"),
        ("--wftest-start-time=soon", "wftest_start_time: expected an ISO 8601 time, got 'soon'"),
        ("--wftest-time-backend=sundial", "wftest_time_backend: expected freezegun or time-machine, got 'sundial'"),
    ],
)
def test_bad_option_values_stop_the_session_with_a_usage_error(
    project: pytest.Pytester, option: str, message: str
) -> None:
    project.makepyfile(test_x="def test_x():\n    pass\n")
    result = project.runpytest(option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_registry_option_must_name_a_registry(project: pytest.Pytester) -> None:
    project.makepyfile(test_x="def test_x(workflow_tester):\n    pass\n")
    result = project.runpytest("--wftest-registry=workflows:order_workflow")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*wftest_registry: 'workflows:order_workflow' is a function, not a wftest.Registry*"])


# -- wftest_engine: activity time --------------------------------------------------------------------


ENGINE_TIME_TESTS = '''
import datetime
from datetime import timedelta

def stamp(ctx, _):
    return [datetime.datetime.now().isoformat(), datetime.date.today().isoformat()]

def wf(ctx, _):
    first = yield ctx.call_activity(stamp)
    yield ctx.create_timer(timedelta(days=3))
    second = yield ctx.call_activity(stamp)
    return [first, second]

def test_activities_see_virtual_time(wftest_engine):
    iid = wftest_engine.client.schedule_new_orchestration(wf)
    state = wftest_engine.client.wait_for_orchestration_completion(iid)
    assert state.output[0][0] == "2024-01-01T00:00:00"
    assert state.output[1][0] == "2024-01-04T00:00:00"
    assert state.output[1][1] == "2024-01-04"
    assert datetime.datetime.now().year > 2024  # the test itself keeps the real clock

def test_the_clock_is_real_again_after_the_test():
    assert datetime.datetime.now().year > 2024
'''


def test_engine_fixture_activities_see_the_virtual_time(project: pytest.Pytester) -> None:
    project.makepyfile(test_engine_time=ENGINE_TIME_TESTS)
    project.runpytest().assert_outcomes(passed=2)


def test_engine_fixture_activity_time_honours_the_time_backend(project: pytest.Pytester) -> None:
    project.makepyfile(test_engine_time=ENGINE_TIME_TESTS)
    project.runpytest("--wftest-time-backend=time-machine").assert_outcomes(passed=2)


def test_engine_fixture_activity_time_follows_the_marker_start_time(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_engine_time='''
        import datetime
        import pytest

        def stamp(ctx, _):
            return datetime.datetime.now().isoformat()

        def wf(ctx, _):
            return (yield ctx.call_activity(stamp))

        @pytest.mark.wftest(start_time="2031-07-04T09:30:00")
        def test_marker(wftest_engine):
            iid = wftest_engine.client.schedule_new_orchestration(wf)
            assert wftest_engine.client.wait_for_orchestration_completion(iid).output == "2031-07-04T09:30:00"

        @pytest.mark.wftest(freeze_activity_time=False)
        def test_opt_out(wftest_engine):
            iid = wftest_engine.client.schedule_new_orchestration(wf)
            assert wftest_engine.client.wait_for_orchestration_completion(iid).output[:4] != "2024"
        '''
    )
    project.runpytest().assert_outcomes(passed=2)


# -- workflow_tester_factory: the same treatment as workflow_tester -----------------------------------


def test_factory_testers_get_the_conftest_hook_with_the_tests_request(project: pytest.Pytester) -> None:
    project.makeconftest(
        '''
        def pytest_wftest_configure_tester(tester, request):
            from workflows import charge
            tester.on_activity(charge).returns("from-conftest:" + request.node.name).any_times()
        '''
    )
    project.makepyfile(
        test_hook='''
        from hypothesis import given, settings, strategies as st
        from workflows import order_workflow

        @settings(max_examples=5, deadline=None)
        @given(st.integers())
        def test_factory(workflow_tester_factory, n):
            tester = workflow_tester_factory()
            assert tester.run(order_workflow, input={"n": n}).output["receipt"] == "from-conftest:test_factory"
            tester.assert_expectations()
        '''
    )
    project.runpytest().assert_outcomes(passed=1)


def test_factory_testers_honour_the_marker_and_keyword_overrides(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_marker='''
        import pytest
        from datetime import datetime

        @pytest.mark.wftest(start_time="2030-01-01T00:00:00", strict=False)
        def test_factory(workflow_tester_factory):
            tester = workflow_tester_factory(replay_check=False)
            assert tester.start_time == datetime(2030, 1, 1)
            assert tester.strict is False and tester.replay_check is False
            assert workflow_tester_factory(strict=True).strict is True
        '''
    )
    project.runpytest().assert_outcomes(passed=1)


def test_factory_failure_report_has_the_timeline_of_the_last_run(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_fuzz='''
        from hypothesis import given, settings, strategies as st
        from workflows import charge, order_workflow

        @settings(max_examples=10, database=None, deadline=None)
        @given(st.integers(min_value=0, max_value=10))
        def test_small_amounts(workflow_tester_factory, amount):
            tester = workflow_tester_factory()
            tester.on_activity(charge).returns(amount)
            assert tester.run(order_workflow, input={"amount": amount}).output["receipt"] < 5
        '''
    )
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*wftest timeline*", "last run: instance 'test-instance', status COMPLETED*", "*TaskCompleted*#1*result=5*"]
    )


def test_factory_testers_are_recorded(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_rec='''
        from workflows import charge, order_workflow

        def test_recorded(workflow_tester_factory):
            for n in range(2):
                tester = workflow_tester_factory()
                tester.on_activity(charge).returns(n)
                tester.run(order_workflow, input={"n": n})
        '''
    )
    project.runpytest("--wftest-record=histories").assert_outcomes(passed=1)
    names = sorted(p.name for p in (project.path / "histories").iterdir())
    assert names == ["test_rec.py_test_recorded-1.history.json", "test_rec.py_test_recorded-2.history.json"]


def test_timeline_section_for_a_stalled_run(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_stall='''
        def waits(ctx, _):
            return (yield ctx.wait_for_external_event("approval"))

        def test_stalls(workflow_tester):
            workflow_tester.run(waits)
        '''
    )
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*OrchestrationStalledError*",
        "*tester.at(timedelta(...), lambda t: t.raise_event('approval', data))*",
        "*wftest timeline*",
        "last run: instance 'test-instance', status RUNNING*",
    ])


# -- recording sub-orchestrations --------------------------------------------------------------------


SUB_APP = '''
from wftest import Registry

def double(ctx, x):
    return 2 * x

def child(ctx, x):
    return (yield ctx.call_activity(double, input=x))

def parent(ctx, xs):
    results = []
    for x in xs:
        results.append((yield ctx.call_sub_orchestrator(child, input=x)))
    return results

registry = Registry()
registry.add_orchestrator(parent)
registry.add_orchestrator(child)
registry.add_activity(double)
'''


def test_record_saves_sub_orchestration_histories_that_replay_as_tests(project: pytest.Pytester) -> None:
    project.makepyfile(subapp=SUB_APP)
    project.makepyfile(
        test_sub='''
        from subapp import parent

        def test_parent(workflow_tester):
            assert workflow_tester.run(parent, input=[1, 2]).output == [2, 4]
        '''
    )
    project.runpytest("--wftest-record=histories").assert_outcomes(passed=1)
    names = sorted(p.name for p in (project.path / "histories").iterdir())
    assert names == [
        "test_sub.py_test_parent-1--test-instance_0001.history.json",
        "test_sub.py_test_parent-1--test-instance_0002.history.json",
        "test_sub.py_test_parent-1.history.json",
    ]
    child = json.loads((project.path / "histories" / names[0]).read_text())
    assert child["orchestrator"] == "child" and child["instanceId"] == "test-instance:0001"

    (project.path / "test_sub.py").unlink()
    project.makeini("[pytest]\nwftest_histories = histories\nwftest_registry = subapp:registry\n")
    result = project.runpytest("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test-instance_0001.history.json::test-instance:0001 PASSED*"])


# -- help and import cost ----------------------------------------------------------------------------


def test_help_documents_every_option_and_ini_key(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines([
        "wftest: deterministic workflow testing:",
        "*--wftest-start-time=TIME*",
        "*--wftest-strict=BOOL*",
        "*--wftest-replay-check=BOOL*",
        "*--wftest-freeze-activity-time=BOOL*",
        "*--wftest-max-steps=N*",
        "*--wftest-registry=MODULE:ATTR*",
        "*--wftest-time-backend=NAME*",
        "*--wftest-record=DIR*",
    ])
    text = " ".join(result.stdout.str().split())
    for key in ("start_time", "strict", "replay_check", "freeze_activity_time", "max_steps", "registry",
                "time_backend", "histories"):
        assert f"wftest_{key} (" in text, key
    assert "default 2024-01-01T00:00:00 (ini: wftest_start_time)" in text


def test_plugin_module_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    script = pytester.makepyfile(
        check_imports='''
        import sys
        import pytest

        before = set(sys.modules)
        import pytest_plugin.plugin
        new = sorted(set(sys.modules) - before)
        print("NEW", new)
        assert set(new) <= {"pytest_plugin", "pytest_plugin.plugin", "itertools"}, new
        '''
    )
    result = pytester.run(sys.executable, str(script))
    assert result.ret == 0, result.stdout.str() + result.stderr.str()


def test_conftest_converter_hook_sets_the_converter_of_testers_and_engine(project: pytest.Pytester) -> None:
    project.makeconftest(
        '''
        import json

        class Upper:
            def serialize(self, value):
                return None if value is None else json.dumps(value).upper()

            def deserialize(self, data):
                return None if not data else json.loads(data)

        def pytest_wftest_converter(config):
            return Upper()
        '''
    )
    project.makepyfile(
        test_conv='''
        def echo(ctx, text):
            return text

        def wf(ctx, text):
            return (yield ctx.call_activity(echo, input=text))

        def test_tester(workflow_tester, workflow_tester_factory):
            assert workflow_tester.run(wf, "abc").output == "ABC"
            assert workflow_tester_factory().run(wf, "abc").output == "ABC"

        def test_engine(wftest_engine):
            iid = wftest_engine.client.schedule_new_orchestration(wf, input="abc")
            assert wftest_engine.client.wait_for_orchestration_completion(iid).output == "ABC"
        '''
    )
    project.runpytest().assert_outcomes(passed=2)
