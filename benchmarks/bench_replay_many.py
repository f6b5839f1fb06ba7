"""Replay throughput over a folder of saved histories: ``Replayer.replay_many`` against durabletask's executor.

    python benchmarks/bench_replay_many.py [--histories 1000] [--repeat 5] [--keep DIR]

A folder of ``--histories`` varied history files is generated first, in a temporary directory: the
orchestrators of the cross-replay corpus (``tests/compat/corpus``: sequences, fan-outs, timers, buffered
and awaited events, sub-orchestrations, activity and sub-orchestration retries, failures, continue-as-new,
custom status, ``when_any`` deadlines, terminate / suspend / resume), each scenario run many times with
other inputs and event times on wftest's ``Engine`` (every instance of a run, children included, gives a
file), plus one in five of them cut after a step (an instance still running, the common case in CI).
The same histories are written twice, as ``*.history.json`` and as ``*.history.pb``.

Then, in the same process, with samples taken in turn:

- ``Replayer(registry).replay_many(folder)``: finding, loading, validating and replaying every file,
  for the JSON folder and the pb folder;
- loading alone (``wftest.history.load`` of every file), so the two above can be read as load + replay;
- pure replay of the loaded histories: ``Replayer.replay(history)`` (a full replay from scratch, with
  the completion check), and wftest's ``Executor.execute(old, new)`` on exactly the inputs given to
- ``durabletask.worker._OrchestrationExecutor(...).execute(instance_id, old, new)`` (a fresh executor
  per history, as its worker does) with the corpus's durabletask orchestrators registered, on the same
  histories parsed into durabletask's protobuf classes: the old events are the history without its
  ``ExecutionCompleted``, the new events one ``OrchestratorStarted`` (durabletask refuses none).

Before timing, every history is checked to replay cleanly in both executors and, for finished ones,
to reach the recorded completion. The two corpus scenarios where durabletask 1.12 knowingly differs
(``tests/compat/test_cross_replay.py``, ``KNOWN_DIFFERENCES``) are left out.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from durabletask import worker as dt_worker
from durabletask.internal import orchestrator_service_pb2 as dtpb
from durabletask.serialization import JsonDataConverter

from wftest import Engine, Registry, Replayer
from wftest import history as history_files
from wftest.orchestration import Executor
from wftest.protos import orchestrator_service_pb2 as pb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the corpus lives in tests/compat

from tests.compat.corpus import activities, dt_orchestrators, wf_orchestrators
from tests.compat.corpus.scenarios import SCENARIOS, Scenario
from tests.compat.driver import instance_tree
from tests.compat.driver import run_on_engine as driver_run_on_engine

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported
from bench_replay import interleaved  # the same interleaved best-of sampling

#: where durabletask 1.12 knowingly differs from wftest (see tests/compat/test_cross_replay.py)
SKIPPED = {"non_retriable_failure", "empty_fan_out_first"}
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


# -- generating the folder ------------------------------------------------------------------------------


def variant(base: Scenario, k: int) -> Scenario:
    """The ``k``-th variation of a corpus scenario: another instance id, and other inputs and event times."""
    sid = f"{base.id}-{k:04d}"
    at = MINUTE * (1 + k % 90)
    if base.orchestrator == "immediate":
        return replace(base, id=sid, input={"x": k, "tags": ["a"] * (k % 4)})
    if base.orchestrator == "sequence":
        return replace(base, id=sid, input=f"user {k}")
    if base.orchestrator == "fan_out_fan_in":
        return replace(base, id=sid, input=1 + k % 20)
    if base.orchestrator == "counter":
        return replace(base, id=sid, input={"round": 1 + k % 3, "value": k})
    if base.orchestrator == "collector":
        return replace(base, id=sid, input=[f"seed {k}"][: k % 2],
                       events=tuple((at, name, f"{data}{k}") for _, name, data in base.events))
    if base.id == "terminated":
        return replace(base, id=sid, events=((at / 2, "@terminate", f"stopped {k}"), (at, "go", k)))
    if base.id == "suspended":
        return replace(base, id=sid, events=((at / 3, "@suspend", "hold"), (at, "go", k), (at * 2, "@resume", "on")))
    if base.orchestrator == "approval_with_deadline":
        when = HOUR * (1 + k % 200)  # the 5-day deadline wins for the later ones
        return replace(base, id=sid, events=((when, "approval", f"user {k}"),))
    if base.orchestrator == "cancel_deadline" and base.events[0][0]:
        return replace(base, id=sid, events=((at, "approval", f"user {k}"),))
    # the rest keep their event times and get other payloads
    return replace(base, id=sid, events=tuple((offset, name, data if name.startswith("@") else {"k": k, "v": data})
                                              for offset, name, data in base.events))


def run_on_engine(scenario: Scenario) -> tuple[Engine, str]:
    """Run a scenario on wftest's engine as the cross-replay tests do (same activities and latency)."""
    return driver_run_on_engine(scenario, wf_orchestrators.ORCHESTRATORS, activities.ACTIVITIES)


def mid_flight(events: list[pb.HistoryEvent], k: int) -> list[pb.HistoryEvent] | None:
    """The history cut just before one of its later steps (an instance still running), or None."""
    steps = [i for i, e in enumerate(events) if e.HasField("orchestratorStarted")]
    if len(steps) < 3:
        return None
    return events[: steps[1 + k % (len(steps) - 2)]]


def generate(count: int) -> Iterator[list[pb.HistoryEvent]]:
    """``count`` histories: corpus scenarios in turn, each with a new variation, children and cuts included."""
    bases = [s for s in SCENARIOS if s.id not in SKIPPED]
    made = 0
    for k in range(count):
        engine, root = run_on_engine(variant(bases[k % len(bases)], k))
        for iid in instance_tree(engine, root):
            events = engine.history(iid)
            cut = mid_flight(events, k) if k % 5 == 0 else None
            for history in (events, cut):
                if history is not None:
                    yield history
                    made += 1
                    if made == count:
                        return


def write_folders(root: Path, count: int) -> tuple[Path, Path, int]:
    json_dir, pb_dir = root / "json", root / "pb"
    json_dir.mkdir()
    pb_dir.mkdir()
    events = 0
    for number, history in enumerate(generate(count)):
        name = f"{number:05d}-{history_files.History.of(history).instance_id.replace(':', '_')}"
        history_files.save(json_dir / f"{name}{history_files.JSON_SUFFIX}", history)
        history_files.save(pb_dir / f"{name}{history_files.PB_SUFFIX}", history)
        events += len(history)
    return json_dir, pb_dir, events


# -- the two executors ----------------------------------------------------------------------------------

_DT_LOGGER = logging.getLogger("benchmarks.durabletask")
_DT_LOGGER.setLevel(logging.CRITICAL)


@dataclass
class Case:
    """One history, with the inputs given to both executors."""

    history: history_files.History
    old: list[pb.HistoryEvent]
    new: list[pb.HistoryEvent]
    dt_old: list[dtpb.HistoryEvent]
    dt_new: list[dtpb.HistoryEvent]
    completed: pb.ExecutionCompletedEvent | None


#: the events that record an action of the code (the executors produce these, they do not read them)
_ACTION_EVENTS = {"taskScheduled", "timerCreated", "subOrchestrationInstanceCreated", "eventSent",
                  "executionCompleted"}


def case_of(history: history_files.History) -> Case:
    events = history.events
    completed = events[-1].executionCompleted if events[-1].HasField("executionCompleted") else None
    last = max(i for i, e in enumerate(events) if e.HasField("orchestratorStarted"))
    # the last step as a worker receives it: what arrived, without what the code asked for in it
    old, new = events[:last], [e for e in events[last:] if e.WhichOneof("eventType") not in _ACTION_EVENTS]
    # parsed from the bytes, as durabletask's worker receives them
    dt_old = [dtpb.HistoryEvent.FromString(e.SerializeToString()) for e in old]
    dt_new = [dtpb.HistoryEvent.FromString(e.SerializeToString()) for e in new]
    return Case(history, old, new, dt_old, dt_new, completed)


def dt_registry() -> Any:
    registry = dt_worker._Registry()  # type: ignore[no-untyped-call]
    for fn in dt_orchestrators.ORCHESTRATORS:
        registry.add_orchestrator(fn)
    return registry


def dt_execute(registry: Any, case: Case) -> Any:
    executor = dt_worker._OrchestrationExecutor(registry, _DT_LOGGER, JsonDataConverter())
    return executor.execute(case.history.instance_id, case.dt_old, case.dt_new)


def wf_execute(registry: Registry, case: Case) -> Any:
    return Executor(registry, case.history.instance_id, strict=True).execute(case.old, case.new)


def _comparable(action: Any) -> bytes:
    """An action's bytes; durabletask re-sends a retried call's absent input as "" (both mean no value)."""
    action = pb.OrchestratorAction.FromString(action.SerializeToString())
    task = action.scheduleTask
    if action.HasField("scheduleTask") and task.HasField("input") and not task.input.value:
        task.ClearField("input")
    return action.SerializeToString()


def check(cases: list[Case], replayer: Replayer, registry: Any) -> None:
    """Every history replays cleanly in both executors; finished ones complete as recorded."""
    for case in cases:
        name = case.history.path.name if case.history.path else case.history.instance_id
        replayer.replay(case.history).raise_for_error()
        dt_actions = dt_execute(registry, case).actions
        wf_actions = wf_execute(replayer.registry, case).actions
        for action in dt_actions:
            if action.HasField("completeOrchestration"):
                details = action.completeOrchestration.failureDetails
                assert "NonDeterminism" not in details.errorType, f"{name}: durabletask: {details.errorMessage}"
        assert [_comparable(a) for a in dt_actions] == [_comparable(a) for a in wf_actions] or (
            case.completed is not None  # failures may differ in their stack traces and wrapper types
        ), f"{name}: the two executors ask for different actions"
        if case.completed is not None:
            [action] = dt_actions
            body = action.completeOrchestration
            assert body.orchestrationStatus == case.completed.orchestrationStatus, name
            assert body.result.value == case.completed.result.value, name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--histories", type=int, default=1000, help="history files in the folder")
    parser.add_argument("--repeat", type=int, default=5, help="samples of each measurement")
    parser.add_argument("--keep", type=Path, help="write the folders here (must not exist) and keep them")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="wftest-bench-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=args.keep is None)
        started = time.perf_counter()
        json_dir, pb_dir, events = write_folders(root, args.histories)
        made = time.perf_counter() - started

        registry = Registry()
        for fn in wf_orchestrators.ORCHESTRATORS:
            registry.add_orchestrator(fn)
        replayer = Replayer(registry)
        histories = [history_files.load(p) for p in sorted(json_dir.iterdir())]
        cases = [case_of(h) for h in histories]
        dt_reg = dt_registry()
        check(cases, replayer, dt_reg)
        running = sum(c.completed is None for c in cases)
        kinds = sorted({h.orchestrator for h in histories})
        print(f"{len(histories)} histories ({running} still running), {events} events "
              f"({events / len(histories):.1f} per history), {len(kinds)} orchestrators; generated in {made:.1f} s")
        print(f"{args.repeat} samples each, taken in turn")

        def replay_folder(folder: Path) -> None:
            results = replayer.replay_many([folder])
            assert len(results) == len(histories) and all(r.ok for r in results)

        samples = interleaved(
            {
                "dt": lambda: [dt_execute(dt_reg, c) for c in cases],
                "wf exec": lambda: [wf_execute(registry, c) for c in cases],
                "wf replay": lambda: [replayer.replay(h) for h in histories],
                "load json": lambda: [history_files.load(p) for p in json_dir.iterdir()],
                "load pb": lambda: [history_files.load(p) for p in pb_dir.iterdir()],
                "many json": lambda: replay_folder(json_dir),
                "many pb": lambda: replay_folder(pb_dir),
            },
            args.repeat,
        )

    baseline = min(samples["dt"])
    rows = [
        ("durabletask _OrchestrationExecutor.execute (baseline)", "dt"),
        ("wftest Executor.execute, the same inputs", "wf exec"),
        ("wftest Replayer.replay(history), loaded histories", "wf replay"),
        ("wftest Replayer.replay_many(folder), *.history.pb", "many pb"),
        ("wftest Replayer.replay_many(folder), *.history.json", "many json"),
        ("  of which loading: history.load, *.history.pb", "load pb"),
        ("  of which loading: history.load, *.history.json", "load json"),
    ]
    print(f"  {'':<54} {'best ms':>9} {'median ms':>9} {'events/s':>10} {'histories/s':>11} {'vs dt':>7}")
    for label, key in rows:
        best, median = min(samples[key]), statistics.median(samples[key])
        print(f"  {label:<54} {best * 1e3:9.1f} {median * 1e3:9.1f} {events / best:10,.0f} "
              f"{len(histories) / best:11,.0f} {baseline / best:6.2f}x")
    print(f"  pure replay: wftest is {baseline / min(samples['wf exec']):.2f}x durabletask's executor; "
          f"replay_many over files (load included) {baseline / min(samples['many pb']):.2f}x (pb), "
          f"{baseline / min(samples['many json']):.2f}x (json)")


if __name__ == "__main__":
    main()
