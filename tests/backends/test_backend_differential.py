"""MemoryBackend and SqliteBackend side by side under random sequences of the calls engines make: both hand out
the same work in the same order, accept and refuse the same commits, and deliver every event exactly once.

Each sequence is seeded; a difference fails with the sequence of calls that led to it (the repro)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from wftest import _events as ev
from wftest.backends import Backend, IdReusePolicy, InstanceRecord, MemoryBackend, StepUpdate
from wftest.backends.sqlite import SqliteBackend
from wftest.errors import LockLostError
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.runtime import PENDING, ActivityTask, Message

T0 = datetime(2024, 1, 1)
LOCK = timedelta(seconds=30)
INSTANCES = ("a", "b", "c")
SEQUENCES = 150
CALLS = 80


def _label(event: pb.HistoryEvent) -> str:
    kind = event.WhichOneof("eventType")
    return event.eventRaised.name if kind == "eventRaised" else str(kind)


class Pair:
    """The two backends, driven alike; every call's outcome on each is compared."""

    def __init__(self) -> None:
        self.backends: list[Backend] = [MemoryBackend(), SqliteBackend(":memory:")]
        self.now = T0
        self.log: list[str] = []
        self.items: list[dict[int, Any]] = [{}, {}]  # work items held, by the number of the call that took them
        self.activities: list[dict[int, Any]] = [{}, {}]
        self.sent: dict[str, list[str]] = {iid: [] for iid in INSTANCES}
        self.delivered: dict[str, list[str]] = {iid: [] for iid in INSTANCES}
        self.calls = 0

    def both(self, what: str, call: Callable[[Backend, int], Any]) -> None:
        outcomes = []
        for side, backend in enumerate(self.backends):
            try:
                outcomes.append(call(backend, side))
            except LockLostError:
                outcomes.append("lock lost")
        self.log.append(f"{what} -> {outcomes[0]}")
        assert outcomes[0] == outcomes[1], (f"memory and sqlite differ at call {len(self.log)}: memory {outcomes[0]}, "
                                            f"sqlite {outcomes[1]}\n" + "\n".join(self.log))

    # -- the calls ----------------------------------------------------------------------------------

    def create(self, rng: random.Random) -> None:
        for iid in INSTANCES:
            self.start(rng, iid, IdReusePolicy.ERROR)

    def start(self, rng: random.Random, iid: str, policy: IdReusePolicy) -> None:
        delay = rng.choice([0, 0, 15])  # some start later
        self.calls += 1
        execution = f"x{self.calls}"
        self.both(f"create {iid} ({execution}, {policy.name}) visible at +{delay}s", lambda b, _: b.create_instance(
            ev.execution_started(self.now, "wf", iid, None, execution_id=execution),
            InstanceRecord(instance_id=iid, name="wf", status=PENDING, created_at=self.now,
                           last_updated_at=self.now, execution_id=execution),
            visible_at=self.now + timedelta(seconds=delay) if delay else None, policy=policy, now=self.now))

    def replace(self, rng: random.Random) -> None:
        # a new instance with the same id: what the old one had queued, held or scheduled never reaches it
        iid = rng.choice(INSTANCES)
        self.sent[iid] = []
        self.delivered[iid] = []
        self.start(rng, iid, IdReusePolicy.TERMINATE)

    def add_event(self, rng: random.Random) -> None:
        iid = rng.choice(INSTANCES)
        self.calls += 1
        name = f"e{self.calls}"
        stamp = self.now - timedelta(seconds=rng.choice([0, 0, 5, 20]))  # some are stamped before they arrive
        delayed = self.now + timedelta(seconds=rng.randint(-5, 20)) if rng.random() < 0.3 else None
        self.sent[iid].append(name)
        self.both(f"add {name} to {iid} stamped {stamp.time()} visible {delayed and delayed.time()}",
                  lambda b, _: b.add_event(iid, ev.event_raised(stamp, name, None), visible_at=delayed))

    def fetch(self, rng: random.Random) -> None:
        self._take(rng, "fetch", self.items, lambda b, owner: b.fetch_orchestration_work_item(owner, self.now, LOCK),
                   lambda item: (item.instance_id, [_label(e) for e in item.new_events]))

    def fetch_activity(self, rng: random.Random) -> None:
        self._take(rng, "fetch activity", self.activities,
                   lambda b, owner: b.fetch_activity_work_item(owner, self.now, LOCK),
                   lambda item: (item.task.instance_id, item.task.task_id))

    def _take(self, rng: random.Random, what: str, held: list[dict[int, Any]],
              fetch: Callable[[Backend, str], Any], outcome: Callable[[Any], Any]) -> None:
        owner = rng.choice(["w1", "w2"])
        self.calls += 1
        number = self.calls

        def take(backend: Backend, side: int) -> Any:
            item = fetch(backend, owner)
            if item is None:
                return None
            held[side][number] = item
            return outcome(item)

        self.both(f"{what} #{number} by {owner}", take)

    def finish(self, rng: random.Random) -> None:
        if not self.items[0]:
            return
        number = rng.choice(sorted(self.items[0]))
        how = rng.choice(["complete", "complete", "abandon", "abandon later", "renew"])
        schedule_work = rng.random() < 0.5

        def finish(backend: Backend, side: int) -> Any:
            item = self.items[side].pop(number, None) if how != "renew" else self.items[side].get(number)
            if item is None:
                return "not held"
            if how == "renew":
                backend.renew_orchestration_work_item_lock(item, self.now, LOCK)
                return "renewed"
            if how.startswith("abandon"):
                backend.abandon_orchestration_work_item(item, self.now, timedelta(seconds=10 if "later" in how else 0))
                return "abandoned"
            activities, messages = [], []
            if schedule_work:
                activities = [ActivityTask(item.instance_id, None, number, "act", None, self.now)]
                due = self.now + timedelta(seconds=12)
                messages = [Message(item.instance_id, ev.timer_fired(due, number, ev.timestamp(due)), due)]
            update = StepUpdate(record=item.record, new_history=list(item.new_events), activities=activities,
                                messages=messages)
            backend.complete_orchestration_work_item(item, update, self.now)
            if side == 0 and item.record.execution_id == backend.get_instance(item.instance_id).execution_id:
                self.delivered[item.instance_id] += [e.eventRaised.name for e in item.new_events
                                                     if e.HasField("eventRaised")]
            return "completed"

        self.both(f"{how} #{number}", finish)

    def finish_activity(self, rng: random.Random) -> None:
        if not self.activities[0]:
            return
        number = rng.choice(sorted(self.activities[0]))
        how = rng.choice(["complete", "complete", "abandon", "renew"])

        def finish(backend: Backend, side: int) -> Any:
            item = self.activities[side].pop(number, None) if how != "renew" else self.activities[side].get(number)
            if item is None:
                return "not held"
            if how == "renew":
                backend.renew_activity_work_item_lock(item, self.now, LOCK)
            elif how == "abandon":
                backend.abandon_activity_work_item(item, self.now)
            else:
                result = ev.task_completed(self.now, item.task.task_id, None)
                backend.complete_activity_work_item(item, result, self.now)
            return how

        self.both(f"{how} activity #{number}", finish)

    def poll(self, rng: random.Random) -> None:
        self.both("ready instances", lambda b, _: b.ready_instances(self.now))
        self.both("next wakeup", lambda b, _: b.next_wakeup())

    def tick(self, rng: random.Random) -> None:
        self.now += timedelta(seconds=rng.choice([1, 5, 10, 31]))  # 31: past every lock taken before
        self.log.append(f"clock at {self.now.time()}")

    def drain(self) -> None:
        """Everything left, on memory: every event raised reached its instance exactly once."""
        self.now += timedelta(hours=1)
        memory = self.backends[0]
        while (item := memory.fetch_orchestration_work_item("drain", self.now, LOCK)) is not None:
            update = StepUpdate(record=item.record, new_history=list(item.new_events))
            memory.complete_orchestration_work_item(item, update, self.now)
            self.delivered[item.instance_id] += [e.eventRaised.name for e in item.new_events
                                                 if e.HasField("eventRaised")]
        for iid in INSTANCES:
            assert sorted(self.delivered[iid]) == sorted(self.sent[iid]), "\n".join(self.log)


@pytest.mark.parametrize("block", range(3))
def test_memory_and_sqlite_hand_out_the_same_work_in_the_same_order(block: int) -> None:
    for seed in range(block * SEQUENCES, (block + 1) * SEQUENCES):
        rng = random.Random(seed)
        pair = Pair()
        pair.log.append(f"seed {seed}")
        pair.create(rng)
        calls = [pair.add_event] * 4 + [pair.fetch] * 3 + [pair.finish] * 3 + [pair.fetch_activity] * 2 + \
            [pair.finish_activity] * 2 + [pair.poll, pair.tick, pair.tick, pair.replace]
        for _ in range(CALLS):
            rng.choice(calls)(rng)
        pair.drain()
