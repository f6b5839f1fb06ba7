"""The tests/compat corpus, written for durabletask, runs unmodified on wftest's engine through
``wftest.interop.durabletask`` and writes, event for event, the histories that the same orchestrators
ported to wftest (an import change) write; the histories replay from scratch with either executor.

Activities are the corpus's deterministic functions, run by the compat driver's runner (its flaky
activities count attempts), with the same latency on both engines.
"""

from __future__ import annotations

from typing import Any

import pytest

import wftest.interop.durabletask as dt
from wftest import Engine
from wftest.orchestration import Executor, Registry
from wftest.protos import orchestrator_service_pb2 as pb

from ._compat import (
    KNOWN_DIFFERENCES,
    SCENARIOS,
    Scenario,
    activities,
    driver,
    dt_orchestrators,
    normalized,
    wf_orchestrators,
)

IDS = [
    pytest.param(s.id, marks=pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENCES[s.id]))
    if s.id in KNOWN_DIFFERENCES else s.id
    for s in SCENARIOS
]
BY_ID = {s.id: s for s in SCENARIOS}


def run_on_engine(scenario: Scenario, *, foreign: bool, sticky: bool = True) -> tuple[Engine, str]:
    orchestrators = ([dt.orchestrator(fn) for fn in dt_orchestrators.ORCHESTRATORS] if foreign
                     else wf_orchestrators.ORCHESTRATORS)
    return driver.run_on_engine(scenario, orchestrators, activities.ACTIVITIES, sticky=sticky)


def as_dicts(history: list[pb.HistoryEvent]) -> list[dict[str, Any]]:
    return [normalized(e) for e in history]


def assert_same_histories(foreign: tuple[Engine, str], native: tuple[Engine, str]) -> None:
    (f_engine, root), (n_engine, _) = foreign, native
    assert driver.instance_tree(f_engine, root) == driver.instance_tree(n_engine, root)
    for iid in driver.instance_tree(f_engine, root):
        assert as_dicts(f_engine.history(iid)) == as_dicts(n_engine.history(iid)), iid


@pytest.mark.parametrize("scenario_id", IDS)
def test_durabletask_orchestrators_write_the_histories_of_their_wftest_port(scenario_id: str) -> None:
    scenario = BY_ID[scenario_id]
    assert_same_histories(run_on_engine(scenario, foreign=True), run_on_engine(scenario, foreign=False))


@pytest.mark.parametrize("scenario_id", IDS)
def test_a_stateless_engine_replaying_every_step_writes_the_same_histories(scenario_id: str) -> None:
    # sticky=False: every step runs durabletask's executor over the whole history (execute, not resume)
    scenario = BY_ID[scenario_id]
    assert_same_histories(run_on_engine(scenario, foreign=True, sticky=False),
                          run_on_engine(scenario, foreign=False))


@pytest.mark.parametrize("scenario_id", IDS)
def test_final_histories_replay_from_scratch_in_both_executors(scenario_id: str) -> None:
    engine, root = run_on_engine(BY_ID[scenario_id], foreign=True)
    native = Registry()
    for fn in wf_orchestrators.ORCHESTRATORS:
        native.add_orchestrator(fn)
    for iid in driver.instance_tree(engine, root):
        history = engine.history(iid)
        foreign_executor = engine.new_executor(iid)
        assert isinstance(foreign_executor, dt.DurableTaskExecutor)
        foreign_executor.strict = True
        assert foreign_executor.execute(history, []).actions == [], iid
        assert Executor(native, iid, strict=True).execute(history, []).actions == [], iid
