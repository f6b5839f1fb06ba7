"""Versioning with ctx.is_patched: old histories keep their path, new instances take the new one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from versioning import order_v1, order_v2, order_v2_unguarded, order_v3, registry_for

from wftest import Engine, NonDeterminismError, Replayer, WorkflowTester, history

ORDER = {"sku": "pen", "amount": 12}


def _in_flight_v1_history(tmp_path: Path) -> Path:
    """Version 1 runs until it waits for the warehouse, and its history is saved (what --wftest-record does)."""
    engine = Engine(registry=registry_for(order_v1))
    iid = engine.client.schedule_new_orchestration("order", input=ORDER, instance_id="order-1")
    engine.run_until_idle()
    return history.save(tmp_path / "order-1.history.json", engine.history(iid))


def test_unguarded_change_breaks_in_flight_instances(tmp_path: Path) -> None:
    saved = _in_flight_v1_history(tmp_path)
    result = Replayer(registry_for(order_v2_unguarded)).replay(saved)
    assert isinstance(result.error, NonDeterminismError)
    assert "reserve" in str(result.error) and "charge" in str(result.error)


def test_guarded_change_replays_old_histories(tmp_path: Path) -> None:
    saved = _in_flight_v1_history(tmp_path)
    assert Replayer(registry_for(order_v2)).replay(saved).ok


def test_in_flight_instance_finishes_on_the_old_path_after_the_deploy() -> None:
    deployed = {"code": order_v1}

    def order(ctx: Any, order: Any) -> Any:
        return deployed["code"](ctx, order)

    # sticky=False: every step replays the history, as a freshly started worker does after a deploy
    engine = Engine(registry=registry_for(order), sticky=False)
    iid = engine.client.schedule_new_orchestration("order", input=ORDER)
    engine.run_until_idle()  # version 1 reserved and charged; it waits a day for the warehouse
    deployed["code"] = order_v2
    state = engine.client.wait_for_orchestration_completion(iid)
    assert state.output == ["reserved pen", "charged 12", "shipped pen"]  # the old order, kept
    fresh = engine.client.schedule_new_orchestration("order", input=ORDER)
    assert engine.client.wait_for_orchestration_completion(fresh).output[0] == "charged 12"


def test_new_instances_take_the_new_path_and_record_the_marker() -> None:
    tester = WorkflowTester(registry=registry_for(order_v2))
    result = tester.run("order", ORDER)
    assert result.output == ["charged 12", "reserved pen", "shipped pen"]
    markers = [e.genericEvent.data.value for e in result.history if e.HasField("genericEvent")]
    assert markers == ['{"wftest.patch": "charge-first"}']


def test_deprecated_patch_replays_histories_with_the_marker(tmp_path: Path) -> None:
    engine = Engine(registry=registry_for(order_v2))
    iid = engine.client.schedule_new_orchestration("order", input=ORDER, instance_id="order-2")
    engine.run_until_idle()
    saved = history.save(tmp_path / "order-2.history.json", engine.history(iid))
    assert Replayer(registry_for(order_v3)).replay(saved).ok


@pytest.mark.parametrize("code", [order_v2, order_v3])
def test_finished_runs_of_each_version_pass_the_replay_check(code: Any) -> None:
    assert WorkflowTester(registry=registry_for(code)).run("order", ORDER).status == "COMPLETED"
