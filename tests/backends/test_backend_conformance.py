"""The Backend contract, run against every backend so they never drift: queues, visibility times, locks
with expiry, atomic commits, purge and query."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from wftest import _events as ev
from wftest.backends import Backend, IdReusePolicy, InstanceQuery, InstanceRecord, MemoryBackend, StepUpdate
from wftest.backends.sqlite import SqliteBackend
from wftest.errors import InstanceAlreadyExistsError, InstanceNotCompletedError, InstanceNotFoundError, LockLostError
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.runtime import COMPLETED, PENDING, ActivityTask, Message

T0 = datetime(2024, 1, 1)
LOCK = timedelta(seconds=30)


@pytest.fixture(params=["memory", "sqlite-memory", "sqlite-file"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "memory":
        return MemoryBackend()
    if request.param == "sqlite-memory":
        return SqliteBackend(":memory:")
    return SqliteBackend(tmp_path / "wftest.db")


def _create(backend: Backend, iid: str = "i1", *, visible_at: datetime | None = None,
            policy: IdReusePolicy = IdReusePolicy.ERROR, created: datetime = T0, name: str = "wf") -> bool:
    record = InstanceRecord(instance_id=iid, name=name, status=PENDING, created_at=created, last_updated_at=created)
    start = ev.execution_started(created, name, iid, None)
    return backend.create_instance(start, record, visible_at=visible_at, policy=policy, now=created)


def _finish(backend: Backend, iid: str) -> None:
    item = backend.fetch_orchestration_work_item("w", T0, LOCK)
    assert item is not None and item.instance_id == iid
    record = item.record.copy()
    record.status = COMPLETED
    backend.complete_orchestration_work_item(item, StepUpdate(record=record, new_history=list(item.new_events)), T0)


def test_new_instance_is_fetchable_with_its_start_event(backend: Backend) -> None:
    _create(backend)
    item = backend.fetch_orchestration_work_item("w", T0, LOCK)
    assert item is not None
    assert [e.WhichOneof("eventType") for e in item.new_events] == ["executionStarted"]
    assert item.history_length == 0


def test_locked_instance_is_not_fetched_twice(backend: Backend) -> None:
    _create(backend)
    assert backend.fetch_orchestration_work_item("a", T0, LOCK) is not None
    assert backend.fetch_orchestration_work_item("b", T0, LOCK) is None


def test_expired_lock_is_taken_over_and_the_old_owner_cannot_commit(backend: Backend) -> None:
    _create(backend)
    first = backend.fetch_orchestration_work_item("a", T0, LOCK)
    assert first is not None
    second = backend.fetch_orchestration_work_item("b", T0 + LOCK + timedelta(seconds=1), LOCK)
    assert second is not None and second.owner == "b"
    with pytest.raises(LockLostError, match="nothing was written"):
        backend.complete_orchestration_work_item(first, StepUpdate(record=first.record, new_history=[]), T0)
    assert backend.get_history("i1") == []


def test_commit_appends_history_and_enqueues_activities_and_timers_atomically(backend: Backend) -> None:
    _create(backend)
    item = backend.fetch_orchestration_work_item("w", T0, LOCK)
    assert item is not None
    fire_at = T0 + timedelta(hours=1)
    timer = ev.timer_fired(fire_at, 2, ev.timestamp(fire_at))
    update = StepUpdate(
        record=item.record,
        new_history=list(item.new_events),
        activities=[ActivityTask("i1", None, 1, "act", None, T0)],
        messages=[Message("i1", timer, fire_at)],
    )
    assert backend.complete_orchestration_work_item(item, update, T0) == []
    assert len(backend.get_history("i1")) == 1
    activity = backend.fetch_activity_work_item("w", T0, LOCK)
    assert activity is not None and activity.task.name == "act"
    assert backend.fetch_orchestration_work_item("w", T0, LOCK) is None  # the timer is not visible yet
    assert backend.next_wakeup() == fire_at
    item = backend.fetch_orchestration_work_item("w", fire_at, LOCK)
    assert item is not None and item.new_events[0].HasField("timerFired")


def test_delayed_start_is_invisible_until_its_time(backend: Backend) -> None:
    later = T0 + timedelta(minutes=5)
    _create(backend, visible_at=later)
    assert backend.fetch_orchestration_work_item("w", T0, LOCK) is None
    assert backend.next_wakeup() == later
    assert backend.fetch_orchestration_work_item("w", later, LOCK) is not None


def test_event_for_unstarted_instance_waits_for_the_start(backend: Backend) -> None:
    later = T0 + timedelta(minutes=5)
    _create(backend, visible_at=later)
    backend.add_event("i1", ev.event_raised(T0, "go", None))
    assert backend.fetch_orchestration_work_item("w", T0, LOCK) is None
    item = backend.fetch_orchestration_work_item("w", later, LOCK)
    assert item is not None
    assert [e.WhichOneof("eventType") for e in item.new_events] == ["eventRaised", "executionStarted"]


def test_abandoned_orchestration_work_reappears_after_the_delay(backend: Backend) -> None:
    _create(backend)
    item = backend.fetch_orchestration_work_item("w", T0, LOCK)
    assert item is not None
    backend.abandon_orchestration_work_item(item, T0, timedelta(seconds=10))
    assert backend.fetch_orchestration_work_item("w", T0, LOCK) is None
    assert backend.fetch_orchestration_work_item("w", T0 + timedelta(seconds=10), LOCK) is not None


def _started(backend: Backend) -> None:
    _create(backend)
    _commit(backend, T0)


def _commit(backend: Backend, now: datetime, messages: list[Message] | None = None) -> list[str]:
    """Fetch and commit the next step; the names of the events it was given."""
    item = backend.fetch_orchestration_work_item("w", now, LOCK)
    assert item is not None
    update = StepUpdate(record=item.record, new_history=list(item.new_events), messages=messages or [])
    backend.complete_orchestration_work_item(item, update, now)
    return [_label(e) for e in item.new_events]


def _label(event: pb.HistoryEvent) -> str:
    kind = event.WhichOneof("eventType")
    return event.eventRaised.name if kind == "eventRaised" else str(kind)


def test_new_events_come_in_the_order_they_became_available(backend: Backend) -> None:
    # a timer when it is due, any other event when it was created; ties in the order they were added
    _started(backend)
    due = T0 + timedelta(hours=1)
    timer = [Message("i1", ev.timer_fired(due, 1, ev.timestamp(due)), due)]
    backend.add_event("i1", ev.event_raised(T0, "before the step", None))
    _commit(backend, T0, timer)
    backend.add_event("i1", ev.event_raised(due, "with the timer", None))  # added after the timer: after it
    backend.add_event("i1", ev.event_raised(due - timedelta(minutes=1), "a minute before", None))
    assert _commit(backend, due) == ["a minute before", "timerFired", "with the timer"]


def test_the_instance_whose_news_came_first_runs_first(backend: Backend) -> None:
    due = T0 + timedelta(hours=1)
    for iid in ("a", "b"):
        _create(backend, iid)
    assert _commit(backend, T0) == ["executionStarted"]  # a
    assert _commit(backend, T0, [Message("b", ev.timer_fired(due, 1, ev.timestamp(due)), due)]) == [
        "executionStarted"]  # b, with a timer due in an hour
    backend.add_event("a", ev.event_raised(due, "at the hour", None))  # raised at the hour, after the timer
    backend.add_event("a", ev.event_raised(due, "also", None))
    assert backend.ready_instances(due) == ["b", "a"]
    item = backend.fetch_orchestration_work_item("w", due, LOCK)
    assert item is not None and item.instance_id == "b"
    assert backend.ready_instances(due) == ["a"]
    assert _commit(backend, due) == ["at the hour", "also"]
    assert backend.ready_instances(due) == []


def test_an_event_added_while_the_instance_is_locked_waits_for_the_next_step(backend: Backend) -> None:
    _started(backend)
    backend.add_event("i1", ev.event_raised(T0, "first", None))
    item = backend.fetch_orchestration_work_item("w", T0, LOCK)
    assert item is not None and [_label(e) for e in item.new_events] == ["first"]
    backend.add_event("i1", ev.event_raised(T0 - timedelta(minutes=1), "stamped earlier", None))
    backend.complete_orchestration_work_item(item, StepUpdate(record=item.record, new_history=[]), T0)
    assert _commit(backend, T0) == ["stamped earlier"]


def test_abandoned_events_keep_their_places_in_the_order(backend: Backend) -> None:
    _started(backend)
    backend.add_event("i1", ev.event_raised(T0, "a", None))
    backend.add_event("i1", ev.event_raised(T0, "b", None))
    item = backend.fetch_orchestration_work_item("w", T0, LOCK)
    assert item is not None
    backend.abandon_orchestration_work_item(item, T0, timedelta(seconds=10))
    backend.add_event("i1", ev.event_raised(T0 + timedelta(seconds=5), "c", None))
    assert _commit(backend, T0 + timedelta(seconds=5)) == ["c"]  # a and b are hidden until the delay is over
    backend.add_event("i1", ev.event_raised(T0 + timedelta(seconds=6), "d", None))
    assert _commit(backend, T0 + timedelta(seconds=10)) == ["a", "b", "d"]


def _with_one_activity(backend: Backend) -> Backend:
    _create(backend)
    item = backend.fetch_orchestration_work_item("w", T0, LOCK)
    assert item is not None
    update = StepUpdate(record=item.record, new_history=[], activities=[ActivityTask("i1", None, 1, "a", None, T0)])
    backend.complete_orchestration_work_item(item, update, T0)
    return backend


def test_abandoned_activity_work_is_visible_at_once(backend: Backend) -> None:
    _with_one_activity(backend)
    activity = backend.fetch_activity_work_item("w", T0, LOCK)
    assert activity is not None
    backend.abandon_activity_work_item(activity, T0)
    again = backend.fetch_activity_work_item("w", T0, LOCK)
    assert again is not None and again.task.task_id == 1


def test_activity_completed_after_its_lock_expired_writes_nothing(backend: Backend) -> None:
    _with_one_activity(backend)
    stale = backend.fetch_activity_work_item("a", T0, LOCK)
    assert stale is not None
    fresh = backend.fetch_activity_work_item("b", T0 + LOCK, LOCK)
    assert fresh is not None
    with pytest.raises(LockLostError):
        backend.complete_activity_work_item(stale, ev.task_completed(T0, 1, "1"), T0)
    assert backend.fetch_orchestration_work_item("w", T0 + LOCK, LOCK) is None


def test_an_expired_lock_nobody_took_over_still_lets_its_holder_commit(backend: Backend) -> None:
    # the lock is the owner and time it was given: expiry lets another worker take the work, and until one
    # does, the holder's late commit is kept rather than thrown away (and the work is not handed out again)
    _started(backend)
    backend.add_event("i1", ev.event_raised(T0, "go", None))
    late = T0 + LOCK + timedelta(seconds=5)
    item = backend.fetch_orchestration_work_item("a", T0, LOCK)
    assert item is not None
    assert backend.ready_instances(late) == ["i1"]  # takeable by another worker now
    update = StepUpdate(record=item.record, new_history=[], activities=[ActivityTask("i1", None, 1, "a", None, late)])
    backend.complete_orchestration_work_item(item, update, late)
    assert backend.ready_instances(late) == []
    assert backend.fetch_orchestration_work_item("b", late, LOCK) is None
    activity = backend.fetch_activity_work_item("a", late, LOCK)
    assert activity is not None
    later = late + LOCK + timedelta(seconds=5)
    assert backend.has_visible_work(later)  # the activity can be taken over
    backend.complete_activity_work_item(activity, ev.task_completed(later, 1, "1"), later)
    assert backend.fetch_activity_work_item("b", later, LOCK) is None  # done: not run again


def test_delayed_events_of_a_replaced_instance_do_not_reach_the_new_one(backend: Backend) -> None:
    _create(backend, visible_at=T0 + timedelta(hours=1))  # a delayed start, then the id is reused
    backend.add_event("i1", ev.event_raised(T0, "for the old one", None), visible_at=T0 + timedelta(minutes=30))
    _create(backend, visible_at=T0 + timedelta(hours=3), policy=IdReusePolicy.TERMINATE)
    assert backend.fetch_orchestration_work_item("w", T0 + timedelta(hours=2), LOCK) is None
    item = backend.fetch_orchestration_work_item("w", T0 + timedelta(hours=3), LOCK)
    assert item is not None and [_label(e) for e in item.new_events] == ["executionStarted"]


def _replace(backend: Backend, execution: str) -> None:
    record = InstanceRecord(instance_id="i1", name="wf", status=PENDING, created_at=T0, last_updated_at=T0,
                            execution_id=execution)
    start = ev.execution_started(T0, "wf", "i1", None, execution_id=execution)
    backend.create_instance(start, record, visible_at=None, policy=IdReusePolicy.TERMINATE, now=T0)


def test_work_of_a_replaced_instance_is_refused_even_under_the_same_owner_and_time(backend: Backend) -> None:
    _replace(backend, "old")
    _commit(backend, T0, [])  # started
    backend.add_event("i1", ev.event_raised(T0, "go", None))
    step = backend.fetch_orchestration_work_item("engine", T0, LOCK)
    assert step is not None
    _replace(backend, "new")  # the same id, a new instance
    fresh = backend.fetch_orchestration_work_item("engine", T0, LOCK)  # the same owner, at the same time
    assert fresh is not None and fresh.record.execution_id == "new"
    done = step.record.copy()
    done.status = COMPLETED
    with pytest.raises(LockLostError):
        backend.complete_orchestration_work_item(step, StepUpdate(record=done, new_history=[]), T0)
    assert backend.get_instance("i1").status == PENDING  # type: ignore[union-attr]


def test_a_late_activity_result_of_a_replaced_instance_is_refused(backend: Backend) -> None:
    _with_one_activity(backend)
    activity = backend.fetch_activity_work_item("w", T0, LOCK)
    assert activity is not None
    _replace(backend, "new")
    with pytest.raises(LockLostError):
        backend.renew_activity_work_item_lock(activity, T0, LOCK)
    with pytest.raises(LockLostError):
        backend.complete_activity_work_item(activity, ev.task_completed(T0, 1, "1"), T0)
    item = backend.fetch_orchestration_work_item("w", T0, LOCK)
    assert item is not None and [_label(e) for e in item.new_events] == ["executionStarted"]


def test_next_wakeup_names_only_times_to_come(backend: Backend) -> None:
    # an event due before its instance starts (a delayed start) is due, not a wakeup: past it, the next
    # wakeup is the start
    start = T0 + timedelta(hours=1)
    _create(backend, visible_at=start)
    backend.add_event("i1", ev.event_raised(T0, "early", None), visible_at=T0 + timedelta(minutes=1))
    assert backend.next_wakeup() == T0 + timedelta(minutes=1)
    assert backend.fetch_orchestration_work_item("w", T0 + timedelta(minutes=2), LOCK) is None
    assert backend.next_wakeup() == start
    assert _commit(backend, start) == ["early", "executionStarted"]
    assert backend.next_wakeup() is None


def test_a_renewed_orchestration_lock_holds_past_its_first_expiry_and_commits(backend: Backend) -> None:
    _create(backend)
    item = backend.fetch_orchestration_work_item("a", T0, LOCK)
    assert item is not None
    backend.renew_orchestration_work_item_lock(item, T0 + timedelta(seconds=20), LOCK)
    assert item.locked_until == T0 + timedelta(seconds=50)
    assert backend.fetch_orchestration_work_item("b", T0 + timedelta(seconds=45), LOCK) is None  # renewed: still a's
    record = item.record.copy()
    record.status = COMPLETED
    backend.complete_orchestration_work_item(item, StepUpdate(record=record, new_history=list(item.new_events)),
                                             T0 + timedelta(seconds=45))
    stored = backend.get_instance("i1")
    assert stored is not None and stored.status == COMPLETED


def test_renewing_a_lost_orchestration_lock_fails_and_changes_nothing(backend: Backend) -> None:
    _create(backend)
    stale = backend.fetch_orchestration_work_item("a", T0, LOCK)
    assert stale is not None
    fresh = backend.fetch_orchestration_work_item("b", T0 + LOCK, LOCK)
    assert fresh is not None
    with pytest.raises(LockLostError, match="'a'"):
        backend.renew_orchestration_work_item_lock(stale, T0 + LOCK, LOCK)
    assert stale.locked_until == T0 + LOCK
    # b still holds it, until its own lock expires
    assert backend.fetch_orchestration_work_item("c", T0 + LOCK + LOCK / 2, LOCK) is None
    backend.complete_orchestration_work_item(fresh, StepUpdate(record=fresh.record, new_history=[]), T0 + LOCK)


def test_a_renewed_activity_lock_holds_past_its_first_expiry_and_commits(backend: Backend) -> None:
    _with_one_activity(backend)
    item = backend.fetch_activity_work_item("a", T0, LOCK)
    assert item is not None
    for seconds in (20, 40, 60):  # renewed three times: the task runs for over two lock timeouts
        backend.renew_activity_work_item_lock(item, T0 + timedelta(seconds=seconds), LOCK)
        assert backend.fetch_activity_work_item("b", T0 + timedelta(seconds=seconds + 25), LOCK) is None
    assert item.locked_until == T0 + timedelta(seconds=90)
    backend.complete_activity_work_item(item, ev.task_completed(T0, 1, "1"), T0 + timedelta(seconds=85))
    assert backend.fetch_activity_work_item("b", T0 + timedelta(hours=1), LOCK) is None  # done: never again


def test_renewing_a_lost_activity_lock_fails_and_changes_nothing(backend: Backend) -> None:
    _with_one_activity(backend)
    stale = backend.fetch_activity_work_item("a", T0, LOCK)
    assert stale is not None
    fresh = backend.fetch_activity_work_item("b", T0 + LOCK, LOCK)
    assert fresh is not None
    with pytest.raises(LockLostError, match="'a'"):
        backend.renew_activity_work_item_lock(stale, T0 + LOCK, LOCK)
    assert stale.locked_until == T0 + LOCK
    backend.complete_activity_work_item(fresh, ev.task_completed(T0, 1, "1"), T0 + LOCK)
    with pytest.raises(LockLostError):  # completed: there is no lock left to renew
        backend.renew_activity_work_item_lock(fresh, T0 + LOCK, LOCK)


def test_duplicate_instance_id_is_an_error_by_default(backend: Backend) -> None:
    _create(backend)
    with pytest.raises(InstanceAlreadyExistsError, match="already exists"):
        _create(backend)


def test_ignore_policy_keeps_the_existing_instance(backend: Backend) -> None:
    _create(backend)
    assert _create(backend, policy=IdReusePolicy.IGNORE) is False


def test_message_to_unknown_instance_is_returned_as_undelivered(backend: Backend) -> None:
    _create(backend)
    item = backend.fetch_orchestration_work_item("w", T0, LOCK)
    assert item is not None
    lost = Message("nobody", ev.event_raised(T0, "hello", None))
    undelivered = backend.complete_orchestration_work_item(
        item, StepUpdate(record=item.record, new_history=[], messages=[lost]), T0
    )
    assert undelivered == [lost]


def test_add_event_to_unknown_instance_fails(backend: Backend) -> None:
    with pytest.raises(InstanceNotFoundError, match="nobody"):
        backend.add_event("nobody", ev.event_raised(T0, "x", None))


def test_purge_refuses_running_and_deletes_completed(backend: Backend) -> None:
    _create(backend)
    with pytest.raises(InstanceNotCompletedError, match="not completed"):
        backend.purge_instance("i1")
    _finish(backend, "i1")
    backend.purge_instance("i1")
    assert backend.get_instance("i1") is None
    with pytest.raises(InstanceNotFoundError):
        backend.purge_instance("i1")


def test_query_filters_and_pages_in_creation_order(backend: Backend) -> None:
    for n in range(5):
        _create(backend, f"job-{n}", created=T0 + timedelta(minutes=n))
    _create(backend, "other", created=T0)
    first, token = backend.query_instances(InstanceQuery(instance_id_prefix="job-", page_size=2))
    assert [r.instance_id for r in first] == ["job-0", "job-1"]
    second, token = backend.query_instances(InstanceQuery(instance_id_prefix="job-", page_size=2,
                                                          continuation_token=token))
    assert [r.instance_id for r in second] == ["job-2", "job-3"]
    third, token = backend.query_instances(InstanceQuery(instance_id_prefix="job-", page_size=2,
                                                         continuation_token=token))
    assert [r.instance_id for r in third] == ["job-4"] and token is None
    recent, _ = backend.query_instances(InstanceQuery(created_from=T0 + timedelta(minutes=3)))
    assert {r.instance_id for r in recent} == {"job-3", "job-4"}
    pending, _ = backend.query_instances(InstanceQuery(runtime_status=[pb.ORCHESTRATION_STATUS_PENDING]))
    assert len(pending) == 6
