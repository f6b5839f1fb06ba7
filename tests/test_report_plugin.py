"""``--wftest-report=DIR``: a failing test that ran a tester leaves the timeline picture of its last run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

WORKFLOW = '''
from datetime import timedelta

def charge(ctx, order):
    raise AssertionError("mocked in tests")

def order_workflow(ctx, order):
    receipt = yield ctx.call_activity(charge, input=order)
    yield ctx.create_timer(timedelta(days=1))
    return {"shipped": True, "receipt": receipt}

def waits_forever(ctx, _):
    yield ctx.wait_for_external_event("never")
'''

TESTS = '''
import pytest
from workflows import charge, order_workflow, waits_forever

def test_passes(workflow_tester):
    workflow_tester.on_activity(charge).returns("r-1")
    assert workflow_tester.run(order_workflow, input={}).status == "COMPLETED"

def test_wrong_expectation(workflow_tester):
    workflow_tester.on_activity(charge).returns("r-1")
    result = workflow_tester.run(order_workflow, input={"sku": "A1"})
    assert result.output == "something else"

def test_stalls(workflow_tester):
    workflow_tester.run(waits_forever)

def test_factory_tester(workflow_tester_factory):
    tester = workflow_tester_factory()
    tester.on_activity(charge).raises(ValueError("card declined"))
    assert tester.run(order_workflow, input={}).status == "COMPLETED"

def test_fails_without_a_tester():
    assert False
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(workflows=WORKFLOW, test_orders=TESTS)
    pytester.syspathinsert()
    return pytester


def _pictures(output: str) -> dict[str, Path]:
    """Test name -> the page named in its failure section."""
    found: dict[str, Path] = {}
    sections = re.split(r"\n_+ (test_\w+) _+\n", output)
    for name, body in zip(sections[1::2], sections[2::2], strict=True):
        match = re.search(r"timeline picture: (\S+\.html)", body)
        if match:
            found[name] = Path(match.group(1))
    return found


def test_each_failing_tester_test_names_its_picture(project: pytest.Pytester) -> None:
    result = project.runpytest("--wftest-report=pictures", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=4)

    pictures = _pictures(result.stdout.str())
    assert sorted(pictures) == ["test_factory_tester", "test_stalls", "test_wrong_expectation"]
    folder = project.path / "pictures"
    assert sorted(p.name for p in folder.iterdir()) == [
        "test_orders.py_test_factory_tester.html", "test_orders.py_test_stalls.html",
        "test_orders.py_test_wrong_expectation.html",
    ]
    for path in pictures.values():
        assert path.is_absolute() and path.parent == folder.resolve()
    page = pictures["test_wrong_expectation"].read_text(encoding="utf-8")
    assert "<h1>test_orders.py::test_wrong_expectation<span" in page
    assert "<dt>orchestrator</dt><dd>order_workflow</dd>" in page and "#1 charge" in page
    stalled = pictures["test_stalls"].read_text(encoding="utf-8")
    assert '<span class="status RUNNING">' in stalled  # drawn as far as it got
    declined = pictures["test_factory_tester"].read_text(encoding="utf-8")
    assert "card declined" in declined and '<span class="status FAILED">' in declined


def test_the_picture_line_sits_in_the_timeline_section(project: pytest.Pytester) -> None:
    result = project.runpytest("--wftest-report=pictures", "-k", "wrong_expectation")
    result.assert_outcomes(failed=1, deselected=4)
    result.stdout.fnmatch_lines([
        "*- wftest timeline -*",
        "last run: instance 'test-instance', status COMPLETED*",
        f"timeline picture: {project.path.resolve() / 'pictures'}*test_wrong_expectation.html",
        "",
        "offset*time (UTC)*event*",
    ])


def test_without_the_option_nothing_is_written(project: pytest.Pytester) -> None:
    result = project.runpytest("-k", "wrong_expectation")
    result.assert_outcomes(failed=1, deselected=4)
    assert "timeline picture" not in result.stdout.str()
    assert not (project.path / "pictures").exists()


def test_passing_tests_write_nothing(project: pytest.Pytester) -> None:
    result = project.runpytest("--wftest-report=pictures", "-k", "passes")
    result.assert_outcomes(passed=1, deselected=4)
    assert not (project.path / "pictures").exists()


def test_an_unwritable_folder_is_reported_not_raised(project: pytest.Pytester) -> None:
    (project.path / "taken").write_text("a file where the folder should be")
    result = project.runpytest("--wftest-report=taken", "-k", "wrong_expectation")
    result.assert_outcomes(failed=1, deselected=4)
    result.stdout.fnmatch_lines(["timeline picture: could not write taken*test_wrong_expectation.html: *"])
