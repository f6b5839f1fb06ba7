"""Histories written through the sidecar replay in wftest against the same code ported by an import change.

The cross-replay corpus (``tests/compat/corpus``) holds 30 orchestrators written twice: for the
``durabletask`` package and, with the import line changed, for wftest. Here the durabletask versions run
in a real durabletask worker connected to wftest's sidecar (virtual clock); then the history of every
instance (children included) goes through wftest's ``Replayer`` with the wftest versions, in strict mode.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from durabletask import client, task

from tests.compat.corpus import activities, dt_orchestrators, wf_orchestrators
from tests.compat.corpus.scenarios import SCENARIOS, Scenario
from wftest import Registry
from wftest.runtime import is_terminal
from wftest.sidecar import SidecarServer
from wftest.testing import Replayer

from ._support import QUIET, running_worker

PREFIX = "via-sidecar-"
#: events at least this far into a scenario are raised after it finished (a timer won the race)
LATE = timedelta(days=1)

KNOWN_DIFFERENCES = {
    "empty_fan_out_first": (
        "durabletask 1.12 bug: when the first task an orchestrator yields is already complete (when_all([])), "
        "its executor does not resume the generator, so the instance never finishes"
    ),
}


def _with_attempts(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A durabletask activity calling a corpus activity with ``ctx.attempt`` (calls so far, per instance and input)."""
    attempts: Counter[tuple[str, str]] = Counter()
    lock = threading.Lock()

    def activity(ctx: task.ActivityContext, value: Any = None) -> Any:
        key = (ctx.orchestration_id, json.dumps(value, sort_keys=True))
        with lock:
            attempts[key] += 1
            attempt = attempts[key]
        return fn(SimpleNamespace(orchestration_id=ctx.orchestration_id, task_id=ctx.task_id, attempt=attempt), value)

    activity.__name__ = fn.__name__
    return activity


@pytest.fixture(scope="module")
def server() -> Iterator[SidecarServer]:
    adapted = [_with_attempts(fn) for fn in activities.ACTIVITIES]
    with SidecarServer(virtual_clock=True) as sidecar, \
            running_worker(sidecar.address, dt_orchestrators.ORCHESTRATORS, adapted):
        yield sidecar


@pytest.fixture(scope="module")
def hub(server: SidecarServer) -> Iterator[client.TaskHubGrpcClient]:
    with client.TaskHubGrpcClient(host_address=server.address, logger=QUIET) as c:
        yield c


@pytest.fixture(scope="module")
def replayer() -> Replayer:
    registry = Registry()
    for fn in wf_orchestrators.ORCHESTRATORS:
        registry.add_orchestrator(fn)
    return Replayer(registry, strict=True)


def _signal(hub: client.TaskHubGrpcClient, instance_id: str, name: str, data: Any) -> None:
    if name == "@terminate":
        hub.terminate_orchestration(instance_id, output=data)
    elif name == "@suspend":
        hub.suspend_orchestration(instance_id, reason=data)
    elif name == "@resume":
        hub.resume_orchestration(instance_id, reason=data)
    else:
        hub.raise_orchestration_event(instance_id, name, data=data)


def _run(hub: client.TaskHubGrpcClient, scenario: Scenario, timeout: float) -> client.OrchestrationState:
    iid = PREFIX + scenario.instance_id
    hub.schedule_new_orchestration(scenario.orchestrator, input=scenario.input, instance_id=iid)
    for offset, name, data in scenario.events:
        if offset < LATE:
            _signal(hub, iid, name, data)
    state = hub.wait_for_orchestration_completion(iid, timeout=timeout)
    assert state is not None
    for offset, name, data in scenario.events:
        if offset >= LATE:
            _signal(hub, iid, name, data)  # to a finished instance: ignored
    return state


def _family(server: SidecarServer, instance_id: str) -> list[str]:
    states = server.engine.client.get_all_orchestration_states(instance_id_prefix=instance_id)
    return [s.instance_id for s in states
            if s.instance_id == instance_id or s.instance_id.startswith((f"{instance_id}:", f"{instance_id}-"))]


SCENARIO_PARAMS = [
    pytest.param(s, id=s.id, marks=pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENCES[s.id]))
    if s.id in KNOWN_DIFFERENCES else pytest.param(s, id=s.id)
    for s in SCENARIOS
]


@pytest.mark.parametrize("scenario", SCENARIO_PARAMS)
def test_the_sidecar_history_replays_against_the_ported_orchestrator(
    scenario: Scenario, server: SidecarServer, hub: client.TaskHubGrpcClient, replayer: Replayer
) -> None:
    state = _run(hub, scenario, timeout=3 if scenario.id in KNOWN_DIFFERENCES else 30)
    assert is_terminal(state.runtime_status.value), f"{scenario.id} is {state.runtime_status}"
    family = _family(server, state.instance_id)
    assert state.instance_id in family
    for instance_id in family:
        result = replayer.replay(server.engine.history(instance_id))
        assert result.ok, result.report()
