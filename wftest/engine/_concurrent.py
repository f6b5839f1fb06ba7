"""The engine's real-time mode: worker threads, an activity pool, an event loop, and graceful shutdown.

Layout of one started engine (``Engine.start``):

* ``orchestration_threads`` threads each fetch and run orchestration steps. Several are safe: a backend
  locks an instance while one of its steps runs, so no other thread (or process) can fetch it, and the
  sticky executor cache hands an executor to one step at a time (``Worker._execute`` pops it).
* one dispatcher thread fetches activity tasks, but only while a slot is free to run them: sync
  activities go to ``activity_threads`` pool threads, ``async def`` activities to one event-loop thread
  where up to ``async_activities`` of them run concurrently (with ``async_activities=0`` they run on the
  pool threads instead, one at a time per thread, as in the deterministic mode).
* one thread renews the locks of the work items in flight, every third of the engine's ``lock_timeout``, so
  an activity or step that runs longer than the lock timeout keeps its work item (as DTFx renews its
  locks); only a worker that dies or loses its backend loses its locks, and another worker takes the work
  over once they expire. A lock found lost (taken over, purged) is no longer renewed; the late result is
  refused by the backend and logged.
* ``stop(timeout, drain=True)`` stops fetching, lets in-flight work finish until the timeout, then
  abandons what still runs (the backend releases it at once, so another worker takes it over without
  waiting for the lock to expire) and logs each abandoned item. A result that comes in after its item
  was abandoned is discarded (the backend would refuse it anyway: ``LockLostError``).

Every thread is a daemon: an activity that never returns cannot keep the process alive after ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from wftest.backends import ActivityWorkItem, OrchestrationWorkItem
from wftest.errors import LockLostError
from wftest.protos import orchestrator_service_pb2 as pb

if TYPE_CHECKING:
    from wftest.engine._engine import Engine

logger = logging.getLogger("wftest.engine")

_JOIN_GRACE = 0.25  # seconds stop() waits past its timeout for idle threads to notice it
_IDLE_WAIT = 0.05  # seconds a fetching thread sleeps when there is no work (woken early by local changes)
_LEAST_RENEW_INTERVAL = 0.01  # seconds: the renewing thread never spins, whatever the lock timeout


@dataclass(eq=False)
class _InFlight:
    """One fetched work item that has not finished yet."""

    item: ActivityWorkItem | OrchestrationWorkItem
    description: str
    abandoned: bool = False
    #: its lock was found lost when renewing it: not renewed again
    lost: bool = False


def _describe(item: ActivityWorkItem | OrchestrationWorkItem) -> str:
    if isinstance(item, ActivityWorkItem):
        task = item.task
        return f"activity {task.name!r} (task #{task.task_id} of instance {task.instance_id!r})"
    return f"orchestration step of instance {item.instance_id!r}"


class ConcurrentRunner:
    """The threads of one started engine (see the module docstring); created by ``Engine.start``."""

    def __init__(self, engine: Engine, *, orchestration_threads: int, activity_threads: int,
                 async_activities: int) -> None:
        limits = (("orchestration_threads", orchestration_threads, 1), ("activity_threads", activity_threads, 1),
                  ("async_activities", async_activities, 0))
        for name, value, least in limits:
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"Engine.start(): {name} must be an int >= {least}, got {value!r}")
        self.engine = engine
        self.orchestration_threads = orchestration_threads
        self.activity_threads = activity_threads
        self.async_activities = async_activities
        self._stopping = threading.Event()
        self._state = threading.Condition()  # guards the fields below
        self._in_flight: dict[int, _InFlight] = {}
        self._free_sync = activity_threads
        self._free_async = async_activities
        self._sync_queue: queue.SimpleQueue[_InFlight | None] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every thread."""
        owner = self.engine.owner
        threads = [threading.Thread(target=self._orchestration_loop, name=f"{owner}-orch-{i}", daemon=True)
                   for i in range(self.orchestration_threads)]
        threads.append(threading.Thread(target=self._dispatch_loop, name=f"{owner}-dispatch", daemon=True))
        threads += [threading.Thread(target=self._sync_loop, name=f"{owner}-act-{i}", daemon=True)
                    for i in range(self.activity_threads)]
        threads.append(threading.Thread(target=self._renew_loop, name=f"{owner}-renew", daemon=True))
        if self.async_activities:
            self._loop = asyncio.new_event_loop()
            threads.append(threading.Thread(target=self._loop.run_forever, name=f"{owner}-loop", daemon=True))
        self._threads = threads
        for thread in threads:
            thread.start()

    def stop(self, timeout: float, *, drain: bool) -> list[str]:
        """Stop fetching, drain (or not) until ``timeout``, abandon the rest; the abandoned items, described."""
        deadline = time.monotonic() + (max(0.0, timeout) if drain else 0.0)
        self._stopping.set()
        with self._state:
            self._state.notify_all()
            if drain:
                self._state.wait_for(lambda: not self._in_flight, max(0.0, deadline - time.monotonic()))
            left = [entry for entry in self._in_flight.values() if not entry.abandoned]
            for entry in left:
                entry.abandoned = True
        abandoned = [entry.description for entry in left if self._abandon(entry)]
        if abandoned:
            logger.warning("worker %s stopped with %d work item(s) unfinished; released them for another worker: %s",
                           self.engine.owner, len(abandoned), "; ".join(abandoned))
        for _ in range(self.activity_threads):
            self._sync_queue.put(None)
        loop = self._loop
        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(_cancel_all_and_stop(), loop)
        stuck = []
        # idle threads exit within moments of the signals above: give them a short grace past the deadline
        joined_by = max(deadline, time.monotonic()) + _JOIN_GRACE
        for thread in self._threads:
            thread.join(max(0.0, joined_by - time.monotonic()))
            if thread.is_alive():
                stuck.append(thread.name)
        if loop is not None and not loop.is_running() and not loop.is_closed():
            loop.close()
        if stuck:
            logger.warning("worker %s: thread(s) %s still busy after stop(); they are daemons and their results "
                           "will be discarded", self.engine.owner, ", ".join(stuck))
        self._threads = []
        return abandoned

    def _abandon(self, entry: _InFlight) -> bool:
        """Release an unfinished item in the backend; False if it finished (or was lost) meanwhile."""
        engine = self.engine
        try:
            if isinstance(entry.item, ActivityWorkItem):
                engine.backend.abandon_activity_work_item(entry.item, engine.clock.now())
            else:
                engine.worker._evict(entry.item.instance_id)
                engine.backend.abandon_orchestration_work_item(entry.item, engine.clock.now(), timedelta(0))
        except LockLostError:
            return False  # it completed between the check and the release: nothing to hand over
        except Exception:
            logger.exception("worker %s: could not release %s; it is taken over when its lock expires",
                             engine.owner, entry.description)
            return False
        return True

    # -- locks --------------------------------------------------------------------------------------

    def _renew_loop(self) -> None:
        interval = max(_LEAST_RENEW_INTERVAL, self.engine.lock_timeout.total_seconds() / 3)
        while not self._stopping.wait(interval):
            self.renew_locks()

    def renew_locks(self) -> int:
        """Extend the lock of every work item in flight to the engine's ``lock_timeout`` from now.

        Returns how many were renewed. A lock that is no longer this worker's (its item finished meanwhile,
        or ran past its lock and was taken over, or its instance was purged) is left alone from then on.
        """
        engine = self.engine
        backend = engine.backend
        with self._state:
            entries = [entry for entry in self._in_flight.values() if not entry.abandoned and not entry.lost]
        renewed = 0
        for entry in entries:
            item = entry.item
            try:
                if isinstance(item, ActivityWorkItem):
                    backend.renew_activity_work_item_lock(item, engine.clock.now(), engine.lock_timeout)
                else:
                    backend.renew_orchestration_work_item_lock(item, engine.clock.now(), engine.lock_timeout)
            except LockLostError:
                # usually it just finished (its commit released the lock); if not, its commit is refused and
                # logged then
                entry.lost = True
                logger.debug("worker %s: the lock on %s is no longer held; not renewing it", engine.owner,
                             entry.description)
            except Exception:
                logger.exception("worker %s: renewing the lock on %s failed; trying again later", engine.owner,
                                 entry.description)
            else:
                renewed += 1
        return renewed

    # -- bookkeeping --------------------------------------------------------------------------------

    def _track(self, item: ActivityWorkItem | OrchestrationWorkItem) -> _InFlight:
        entry = _InFlight(item, _describe(item))
        with self._state:
            self._in_flight[id(entry)] = entry
        return entry

    def _done(self, entry: _InFlight, *, sync_slot: bool = False, async_slot: bool = False) -> None:
        with self._state:
            self._in_flight.pop(id(entry), None)
            self._free_sync += sync_slot
            self._free_async += async_slot
            self._state.notify_all()

    def _run(self, entry: _InFlight, work: Callable[[], None]) -> None:
        """Run ``work`` for ``entry``, logging failures (quietly if the item was abandoned meanwhile)."""
        try:
            work()
        except Exception as err:
            self._log_failure(entry, err)

    def _log_failure(self, entry: _InFlight, err: Exception) -> None:
        if entry.abandoned:
            logger.debug("worker %s: %s finished after it was abandoned; its result was discarded (%s)",
                         self.engine.owner, entry.description, err)
        elif isinstance(err, LockLostError):
            # (the worker itself logs a step whose lock was lost)
            log = logger.warning if isinstance(entry.item, ActivityWorkItem) else logger.debug
            log("worker %s: %s lost its lock before it finished (taken over by another worker, or its instance "
                "was purged); its result was discarded: %s", self.engine.owner, entry.description, err)
        else:
            logger.error("worker %s: %s failed; it will be retried", self.engine.owner, entry.description,
                         exc_info=err)

    def _idle(self) -> None:
        engine = self.engine
        wait = _IDLE_WAIT
        wake = engine.backend.next_wakeup()
        if wake is not None:
            wait = min(wait, max(0.0, (wake - engine.clock.now()).total_seconds()))
        engine.backend.wait_for_work(wait)

    # -- orchestrations -----------------------------------------------------------------------------

    def _orchestration_loop(self) -> None:
        engine = self.engine
        while not self._stopping.is_set():
            try:
                item = engine.backend.fetch_orchestration_work_item(engine.owner, engine.clock.now(),
                                                                    engine.lock_timeout)
            except Exception:
                logger.exception("worker %s: fetching an orchestration step failed", engine.owner)
                self._idle()
                continue
            if item is None:
                self._idle()
                continue
            entry = self._track(item)
            try:
                self._run(entry, functools.partial(engine.worker.run_orchestration, item))
            finally:
                self._done(entry)

    # -- activities ---------------------------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        engine = self.engine
        while not self._stopping.is_set():
            with self._state:
                # fetch only when something can run it: a fetched task is locked until it finishes
                if not self._state.wait_for(lambda: self._free_sync > 0 or self._free_async > 0
                                            or self._stopping.is_set(), _IDLE_WAIT):
                    continue
            if self._stopping.is_set():
                return
            try:
                item = engine.backend.fetch_activity_work_item(engine.owner, engine.clock.now(), engine.lock_timeout)
            except Exception:
                logger.exception("worker %s: fetching an activity failed", engine.owner)
                self._idle()
                continue
            if item is None:
                self._idle()
                continue
            self._hand_over(item)

    def _hand_over(self, item: ActivityWorkItem) -> None:
        """Give a fetched activity to the loop (``async def``) or the pool, waiting for a slot of its kind."""
        engine = self.engine
        on_loop = self._loop is not None and engine.worker.is_async_activity(item.task.name)
        entry = self._track(item)

        def free() -> int:
            return self._free_async if on_loop else self._free_sync

        with self._state:
            self._state.wait_for(lambda: free() > 0 or self._stopping.is_set())
            started = free() > 0 and not self._stopping.is_set()
            if started and on_loop:
                self._free_async -= 1
            elif started:
                self._free_sync -= 1
        if not started:
            # stop() came while this task waited for a slot: it never began, so give it back at once
            with contextlib.suppress(Exception):
                engine.backend.abandon_activity_work_item(item, engine.clock.now())
            self._done(entry)
        elif on_loop:
            assert self._loop is not None
            asyncio.run_coroutine_threadsafe(self._run_async(entry, item), self._loop)
        else:
            self._sync_queue.put(entry)

    def _sync_loop(self) -> None:
        worker = self.engine.worker
        try:
            while (entry := self._sync_queue.get()) is not None:
                try:
                    self._run(entry, functools.partial(self._run_sync, entry))
                finally:
                    self._done(entry, sync_slot=True)
        finally:
            worker.close()

    def _run_sync(self, entry: _InFlight) -> None:
        item = entry.item
        assert isinstance(item, ActivityWorkItem)
        self._complete(entry, item, self.engine.worker.activity_outcome(item))

    async def _run_async(self, entry: _InFlight, item: ActivityWorkItem) -> None:
        loop = asyncio.get_running_loop()
        try:
            outcome = await self.engine.worker.activity_outcome_async(item)
            # committing is a database write that may wait for another process: keep it off the loop
            await loop.run_in_executor(None, self._run, entry, lambda: self._complete(entry, item, outcome))
        except asyncio.CancelledError:
            logger.debug("worker %s: %s was cancelled by stop()", self.engine.owner, entry.description)
        except Exception as err:
            self._log_failure(entry, err)
        finally:
            self._done(entry, async_slot=True)

    def _complete(self, entry: _InFlight, item: ActivityWorkItem,
                  outcome: tuple[pb.HistoryEvent, timedelta | None] | None) -> None:
        if outcome is None:
            return  # an injected crash released the task already
        if entry.abandoned:
            logger.debug("worker %s: %s finished after it was abandoned; its result was discarded",
                         self.engine.owner, entry.description)
            return
        self.engine.worker.commit_activity(item, *outcome)


async def _cancel_all_and_stop() -> None:
    """On the engine's loop: cancel the async activities still running (all abandoned by now), then stop."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=1.0)
    asyncio.get_running_loop().stop()
