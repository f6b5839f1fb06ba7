"""Testing a fan-out/fan-in: per-input mocks with their own delays, partial progress, a failed branch."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fan_out import count_words, list_files, publish_report, word_count
from hypothesis import given, settings
from hypothesis import strategies as st

from wftest import Engine, WorkflowTester

FOLDER = [f"big/{n}.txt" for n in range(1, 6)]


def mock_folder(tester: WorkflowTester, *, failing: str | None = None) -> None:
    """Five files; counting file n takes n minutes and finds 10 * n words."""
    tester.on_activity(list_files, "big").returns(FOLDER)
    for n, path in enumerate(FOLDER, start=1):
        mock = tester.on_activity(count_words, path)
        mock = mock.raises(OSError(f"cannot read {path}")) if path == failing else mock.returns(10 * n)
        mock.after(timedelta(minutes=n))


def test_results_are_in_input_order_and_the_branches_run_in_parallel(workflow_tester: WorkflowTester) -> None:
    mock_folder(workflow_tester)
    workflow_tester.on_activity(publish_report).returns(None).once()

    result = workflow_tester.run(word_count, "big")

    assert result.output["total"] == 150
    assert list(result.output["per_file"].values()) == [10, 20, 30, 40, 50]
    assert result.virtual_duration == timedelta(minutes=5)  # the slowest branch, not the sum of them
    [report] = workflow_tester.calls(publish_report)
    assert report.input["total"] == 150
    workflow_tester.assert_expectations()


def test_every_branch_is_scheduled_in_the_same_step(workflow_tester: WorkflowTester) -> None:
    mock_folder(workflow_tester)

    result = workflow_tester.run(word_count, "big")

    # the timeline reads: "── step 2", TaskCompleted #1, then five TaskScheduled count_words
    step_two = result.timeline().split("── step")[2]
    assert step_two.count("TaskScheduled") == 5 and "count_words" in step_two
    assert {c.at for c in workflow_tester.calls(count_words)} == {result.started_at}


def test_partial_progress_can_be_inspected_mid_run(workflow_tester: WorkflowTester) -> None:
    mock_folder(workflow_tester)

    workflow_tester.start(word_count, "big")
    workflow_tester.run_until(timedelta(minutes=3, seconds=30))

    history = workflow_tester.result().history
    counted = [e.taskCompleted.result.value for e in history if e.HasField("taskCompleted")][1:]  # 0: list_files
    assert counted == ["10", "20", "30"]  # payloads are JSON text in the history
    assert workflow_tester.calls(publish_report) == []


def test_one_failed_branch_fails_the_fan_in_once_all_have_finished(workflow_tester: WorkflowTester) -> None:
    mock_folder(workflow_tester, failing="big/2.txt")

    result = workflow_tester.run(word_count, "big")

    assert result.status == "FAILED"
    assert result.failure_details is not None and result.failure_details.is_caused_by(OSError)
    assert "cannot read big/2.txt" in result.failure_details.message
    assert result.virtual_duration == timedelta(minutes=5)  # it waited for big/5.txt before failing
    assert workflow_tester.calls(publish_report) == []


def test_an_empty_folder_fans_out_to_nothing(workflow_tester: WorkflowTester) -> None:
    result = workflow_tester.run(word_count, "empty")  # the real list_files finds no file

    assert result.output == {"folder": "empty", "total": 0, "per_file": {}}
    assert workflow_tester.calls(count_words) == []


def test_real_activities_on_the_engine(wftest_engine: Engine) -> None:
    iid = wftest_engine.client.schedule_new_orchestration(word_count, input="docs")

    wftest_engine.run_until_idle()  # no timers: everything runs at the current virtual time

    state = wftest_engine.client.get_orchestration_state(iid)
    assert state is not None and state.runtime_status == "COMPLETED"
    assert state.output["per_file"] == {"docs/a.txt": 6, "docs/b.txt": 4, "docs/c.txt": 0}


@settings(max_examples=50, deadline=None)
@given(files=st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 600)), max_size=6))
def test_any_sizes_and_speeds_give_an_ordered_report(
    workflow_tester_factory: Callable[..., WorkflowTester], files: list[tuple[int, int]]
) -> None:
    tester = workflow_tester_factory()  # one fresh tester per example: the fixture would be shared
    paths = [f"big/{n}.txt" for n in range(len(files))]
    tester.on_activity(list_files).returns(paths)
    for path, (words, seconds) in zip(paths, files, strict=True):
        tester.on_activity(count_words, path).returns(words).after(timedelta(seconds=seconds))

    result = tester.run(word_count, "big")

    assert list(result.output["per_file"].values()) == [words for words, _ in files]
    assert result.virtual_duration == timedelta(seconds=max((s for _, s in files), default=0))
