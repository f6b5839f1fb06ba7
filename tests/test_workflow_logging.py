"""Loggers for workflow code: replay-safe orchestrator loggers and activity loggers, checked with caplog."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from tests.conformance._support import Gen
from wftest import (
    ActivityContext,
    ActivityTester,
    Engine,
    OrchestrationContext,
    WorkflowTester,
    activity_logger,
    workflow_logger,
)

LOGGER = "tests.workflow_logging"


def charge(ctx: ActivityContext, amount: int) -> str:
    ctx.logger.info("charging %d", amount)
    activity_logger(ctx, LOGGER, prefix=False).warning("plain")
    return f"r-{amount}"


def order(ctx: OrchestrationContext, amount: int) -> Gen:
    log = workflow_logger(ctx, LOGGER)
    log.info("started")
    receipt = yield ctx.call_activity(charge, input=amount)
    yield ctx.create_timer(timedelta(hours=1))
    log.info("charged %s", receipt)
    ctx.create_replay_safe_logger(logging.getLogger(LOGGER)).info("done")
    return receipt


def records(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == name]


def test_workflow_records_carry_the_instance_and_are_logged_once_across_replays(
        caplog: pytest.LogCaptureFixture) -> None:
    # given an engine that replays the whole history at every step (no sticky executors)
    engine = Engine(sticky=False)
    caplog.set_level(logging.INFO)
    # when the orchestration runs (three steps, so the first lines are replayed twice)
    iid = engine.client.schedule_new_orchestration(order, input=5, instance_id="order-7")
    assert engine.client.wait_for_orchestration_completion(iid).output == "r-5"
    # then each line was logged once, with the prefix and the attributes
    logged = records(caplog, LOGGER)
    assert [r.getMessage() for r in logged] == [
        "[order order-7] started", "plain", "[order order-7] charged r-5", "done"]
    workflow = [r for r in logged if hasattr(r, "orchestrator_name")]
    assert [(r.instance_id, r.orchestrator_name) for r in workflow] == [("order-7", "order")] * 3  # type: ignore[attr-defined]


def test_the_tester_replay_check_emits_no_duplicate_records(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    result = WorkflowTester().run(order, input=3)  # runs, then replays every history from scratch
    assert result.output == "r-3"
    messages = [r.getMessage() for r in records(caplog, LOGGER)]
    assert messages == ["[order test-instance] started", "plain", "[order test-instance] charged r-3", "done"]


def test_activity_records_carry_the_instance_the_task_id_and_the_name(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    WorkflowTester().run(order, input=9, instance_id="i-9")
    (charging,) = records(caplog, "wftest.activity")
    assert charging.getMessage() == "[charge i-9#1] charging 9"
    assert (charging.instance_id, charging.task_id, charging.activity_name) == ("i-9", 1, "charge")  # type: ignore[attr-defined]
    (plain,) = [r for r in records(caplog, LOGGER) if r.getMessage() == "plain"]
    assert plain.task_id == 1  # type: ignore[attr-defined]  # attributes without the prefix


def test_records_point_at_the_caller_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    ctx = ActivityContext("i1", 4, "act")
    activity_logger(ctx, LOGGER).info("here")
    (record,) = records(caplog, LOGGER)
    assert (record.filename, record.funcName) == ("test_workflow_logging.py", "test_records_point_at_the_caller_line")


def test_extra_and_percent_signs_are_safe(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    ctx = ActivityContext("100%-done", 2, "act")
    log = activity_logger(ctx, LOGGER)
    log.info("rate %d%%", 50, extra={"task_id": "overridden", "order": "o-1"})
    log.info("no args: 100%")
    first, second = records(caplog, LOGGER)
    assert first.getMessage() == "[act 100%-done#2] rate 50%"
    assert (first.task_id, first.order) == ("overridden", "o-1")  # type: ignore[attr-defined]
    assert second.getMessage() == "[act 100%-done#2] no args: 100%"


def test_a_disabled_level_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    activity_logger(ActivityContext("i", 1, "a"), LOGGER).info("hidden")
    assert records(caplog, LOGGER) == []


def test_activity_tester_gives_the_activity_a_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert ActivityTester().run(charge, 2) == "r-2"
    assert any(r.getMessage().endswith("charging 2") for r in records(caplog, "wftest.activity"))


def test_a_bad_logger_argument_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match=r"expected a logging\.Logger, a logger name or None, got int"):
        activity_logger(ActivityContext("i", 1, "a"), 42)  # type: ignore[arg-type]


def test_exception_records_keep_their_traceback(caplog: pytest.LogCaptureFixture) -> None:
    def failing(ctx: OrchestrationContext, _: Any) -> None:
        try:
            raise KeyError("sku")
        except KeyError:
            workflow_logger(ctx, LOGGER).exception("lookup failed")

    caplog.set_level(logging.INFO)
    WorkflowTester().run(failing, instance_id="x")
    (record,) = records(caplog, LOGGER)
    assert record.getMessage() == "[failing x] lookup failed" and record.exc_info is not None
