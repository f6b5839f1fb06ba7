"""The pytest plugin, exercised through pytest's own ``pytester``."""

from __future__ import annotations

import json

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
    result.stdout.fnmatch_lines(["*wftest_strict: expected true or false, got 'maybe'*"])


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

        @settings(max_examples=20)
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
