"""Replay speed: wftest's executor against the ``durabletask`` package's executor, on one history.

    python benchmarks/bench_replay.py [--activities 1000] [--turns 300] [--repeat 30]

One history of a sequential orchestration of ``--activities`` activities (3 events per activity) is built
by running it on wftest's ``Engine``. Then, in the same process:

(a) wftest's ``Executor.execute(old, new)`` replays it from scratch (also shown: ``execute(history, [])``
    over the whole history, completion included);
(b) ``durabletask.worker._OrchestrationExecutor.execute(instance_id, old, new)`` replays the same events
    (converted to its protobuf classes; wire-identical) with the same orchestrator registered;
(c) "turn by turn, as a stateless engine must": a fresh executor per step over the growing history
    (O(n^2) in total) for ``--turns`` activities, extrapolated to ``--activities``, against wftest's
    sticky engine running the whole orchestration.

For (a) and (b) the last step's events are the new events (durabletask refuses an empty list); both
executors return the same ``completeOrchestration`` action, which is checked. Samples of (a) and (b)
alternate, so both see the same machine noise; best and median are printed.

Goals (DESIGN.md, issue 7): replay at least 3x faster than durabletask's executor; the whole
1,000-activity orchestration on the sticky engine well under 100 ms.
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any

from durabletask import worker as dt_worker
from durabletask.internal import orchestrator_service_pb2 as dtpb
from durabletask.serialization import JsonDataConverter

from wftest import Engine, Executor, OrchestrationContext, Task
from wftest.protos import orchestrator_service_pb2 as pb


def work(ctx, n):  # type: ignore[no-untyped-def]
    # no annotations on purpose: durabletask's call_activity looks up an activity's return annotation on
    # every call (to coerce results), so this gives durabletask its fastest path
    return n + 1


def sequential(ctx: OrchestrationContext, n: int) -> Generator[Task[Any], Any, int]:
    """Also registered with durabletask: the body only uses names both SDKs share."""
    total = 0
    for i in range(n):
        total += yield ctx.call_activity(work, input=i)
    return total


def run_on_engine(n: int) -> tuple[Engine, str]:
    engine = Engine()
    engine.add_orchestrator(sequential)
    engine.add_activity(work)
    instance_id = engine.client.schedule_new_orchestration(sequential, input=n)
    state = engine.client.wait_for_orchestration_completion(instance_id)
    assert state.runtime_status == "COMPLETED" and state.output == n * (n + 1) // 2, state
    return engine, instance_id


def split_last_step(history: Sequence[pb.HistoryEvent]) -> tuple[list[pb.HistoryEvent], list[pb.HistoryEvent]]:
    """(old events, the last step's events without the ExecutionCompleted it wrote)."""
    last = max(i for i, e in enumerate(history) if e.HasField("orchestratorStarted"))
    return list(history[:last]), [e for e in history[last:] if not e.HasField("executionCompleted")]


def steps_of(history: Sequence[pb.HistoryEvent]) -> list[list[pb.HistoryEvent]]:
    """The history cut into steps, each from its OrchestratorStarted to before the next one."""
    steps: list[list[pb.HistoryEvent]] = []
    for event in history:
        if event.HasField("orchestratorStarted") or not steps:
            steps.append([])
        steps[-1].append(event)
    return steps


def to_dt(events: Sequence[pb.HistoryEvent]) -> list[dtpb.HistoryEvent]:
    return [dtpb.HistoryEvent.FromString(e.SerializeToString()) for e in events]


_DT_LOGGER = logging.getLogger("benchmarks.durabletask")
_DT_LOGGER.setLevel(logging.CRITICAL)


def dt_registry() -> Any:
    registry = dt_worker._Registry()  # type: ignore[no-untyped-call]
    orchestrator: Any = sequential  # the same function, typed against wftest's context
    registry.add_orchestrator(orchestrator)
    return registry


def dt_execute(registry: Any, instance_id: str, old: list[dtpb.HistoryEvent], new: list[dtpb.HistoryEvent]) -> Any:
    return dt_worker._OrchestrationExecutor(registry, _DT_LOGGER, JsonDataConverter()).execute(instance_id, old, new)


def sample(fn: Callable[[], Any]) -> float:
    gc.collect()
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def interleaved(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, list[float]]:
    """``repeat`` samples of each function, taken in turn (after one warm-up call each)."""
    for fn in fns.values():
        fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            samples[name].append(sample(fn))
    return samples


def row(label: str, seconds: list[float], baseline: float | None = None, per: int | None = None) -> str:
    best, median = min(seconds) * 1e3, statistics.median(seconds) * 1e3
    text = f"  {label:<46} {best:9.2f} {median:9.2f}"
    text += f" {best * 1e3 / per:9.2f}" if per else " " * 10
    if baseline is not None:
        text += f"   {baseline / min(seconds):6.2f}x"
    return text


HEADER = f"  {'':<46} {'best ms':>9} {'median ms':>9} {'us/act':>9}   {'speed-up':>7}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=1000, help="activities in the replayed history")
    parser.add_argument("--turns", type=int, default=300, help="activities for the turn-by-turn run (c)")
    parser.add_argument("--repeat", type=int, default=30, help="samples of (a) and (b)")
    parser.add_argument("--turn-repeat", type=int, default=3, help="samples of (c)")
    args = parser.parse_args()
    n = args.activities

    engine, instance_id = run_on_engine(n)
    history = engine.history(instance_id)
    old, new = split_last_step(history)
    dt_old, dt_new = to_dt(old), to_dt(new)
    registry = dt_registry()

    # both executors must agree on what the last step asks for
    wf_actions = [a.SerializeToString() for a in Executor(engine.registry, instance_id).execute(old, new).actions]
    dt_actions = [a.SerializeToString() for a in dt_execute(registry, instance_id, dt_old, dt_new).actions]
    assert wf_actions == dt_actions, "the two executors disagree on the last step's actions"

    print(f"(a)/(b) replay of one history: {n} activities, {len(history)} events, {args.repeat} samples each")
    samples = interleaved(
        {
            "dt": lambda: dt_execute(registry, instance_id, dt_old, dt_new),
            "wf": lambda: Executor(engine.registry, instance_id).execute(old, new),
            "wf full": lambda: Executor(engine.registry, instance_id).execute(history, []),
        },
        args.repeat,
    )
    baseline = min(samples["dt"])
    print(HEADER)
    print(row("(b) durabletask _OrchestrationExecutor", samples["dt"], baseline, n))
    print(row("(a) wftest Executor.execute(old, last step)", samples["wf"], baseline, n))
    print(row("(a) wftest Executor.execute(history, [])", samples["wf full"], baseline, n))
    ratio = baseline / min(samples["wf"])
    print(f"  wftest replay is {ratio:.2f}x durabletask's (goal >= 3x): {'met' if ratio >= 3 else 'MISSED'}")

    turns = args.turns
    print()
    print(f"(c) a whole orchestration of {turns} activities, {args.turn_repeat} samples each "
          f"({max(5, args.turn_repeat)} of the sticky engine)")
    small_engine, small_id = run_on_engine(turns)
    steps = steps_of(small_engine.history(small_id))
    dt_steps = [to_dt(step) for step in steps]
    wf_registry = small_engine.registry

    def dt_turn_by_turn() -> None:
        past: list[dtpb.HistoryEvent] = []
        for step in dt_steps:
            new_events = [e for e in step if not e.HasField("executionCompleted")]
            dt_execute(registry, small_id, past, new_events)
            past.extend(step)

    def wf_turn_by_turn() -> None:
        past: list[pb.HistoryEvent] = []
        for step in steps:
            new_events = [e for e in step if not e.HasField("executionCompleted")]
            Executor(wf_registry, small_id).execute(past, new_events)
            past.extend(step)

    turn = interleaved({"dt": dt_turn_by_turn, "wf stateless": wf_turn_by_turn}, args.turn_repeat)
    # the sticky runs are short: take more samples of them
    turn.update(interleaved({"wf sticky": lambda: run_on_engine(turns), "wf sticky n": lambda: run_on_engine(n)},
                            max(5, args.turn_repeat)))
    baseline = min(turn["dt"])
    print(HEADER)
    print(row(f"durabletask executor, step by step ({len(steps)} steps)", turn["dt"], baseline, turns))
    print(row("wftest executor, step by step (no stickiness)", turn["wf stateless"], baseline, turns))
    print(row("wftest sticky Engine, whole orchestration", turn["wf sticky"], baseline, turns))
    extrapolated = baseline * (n / turns) ** 2
    print(f"  durabletask step by step extrapolated to {n} activities (x (n/turns)^2): {extrapolated:.1f} s")
    sticky_n = min(turn["wf sticky n"])
    print(f"  wftest sticky Engine, whole orchestration of {n} activities:  {sticky_n * 1e3:.1f} ms "
          f"(goal well under 100 ms: {'met' if sticky_n < 0.1 else 'MISSED'}), "
          f"{extrapolated / sticky_n:.0f}x the extrapolated step-by-step durabletask run")


if __name__ == "__main__":
    main()
