"""``WorkflowTester``: run orchestrations to completion on a fresh in-memory engine and virtual clock.

Every ``run()`` builds a new engine, so one tester runs many times (hypothesis examples) without leaking
state; mocks and recorded calls belong to the tester and span its runs. After each run the final
histories are replayed from scratch (net 2 of DESIGN.md): code that does not reproduce its own history
fails the test with the diff.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from wftest import _events as ev
from wftest._failure import FailureDetails
from wftest._status import OrchestrationStatus
from wftest.converter import DEFAULT_CONVERTER, Converter
from wftest.engine import DEFAULT_START_TIME, Engine, VirtualClock
from wftest.errors import (
    ExpectationError,
    NonDeterminismError,
    NonDeterministicCallError,
    OrchestrationFailedError,
    OrchestrationStalledError,
    RunLimitError,
    UnexpectedCallError,
)
from wftest.hooks import Hooks, TimePatch, default_hooks
from wftest.orchestration import ActivityContext, Registry
from wftest.orchestration._registry import Activity, Orchestrator, Registrations
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.runtime import ActivityTask, Message, is_terminal
from wftest.testing._mocks import Call, Mock
from wftest.testing._timeline import render_timeline

if TYPE_CHECKING:
    from wftest.strategies import Schedule, ScheduledEvent

Action = Callable[..., Any]


def _note(text: str) -> None:
    """``hypothesis.note`` when running inside a hypothesis test (it is shown for the failing example)."""
    import sys

    if "hypothesis" not in sys.modules:
        return
    from hypothesis import note
    from hypothesis.control import currently_in_test_context

    if currently_in_test_context():
        note(text)


@dataclass(frozen=True)
class RunResult:
    """The outcome of one tester run."""

    instance_id: str
    status: OrchestrationStatus
    output: Any
    serialized_output: str | None
    failure_details: FailureDetails | None
    custom_status: Any
    history: list[pb.HistoryEvent]
    started_at: datetime
    finished_at: datetime
    steps: int
    engine: Engine

    @property
    def virtual_duration(self) -> timedelta:
        """Virtual time from the start of the run to its end."""
        return self.finished_at - self.started_at

    def timeline(self) -> str:
        """The history as an aligned text table."""
        return render_timeline(self.history)

    def history_of(self, instance_id: str) -> list[pb.HistoryEvent]:
        """The history of another instance of the run (a sub-orchestration)."""
        return self.engine.history(instance_id)

    def raise_if_failed(self) -> None:
        """Raise ``OrchestrationFailedError`` (with the timeline) if the run FAILED."""
        if self.status == OrchestrationStatus.FAILED:
            message = self.failure_details.message if self.failure_details else "no failure details"
            raise OrchestrationFailedError(
                f"orchestration {self.instance_id!r} failed: {message}\n\n{self.timeline()}", self.failure_details
            )


def _call_action(action: Action, tester: WorkflowTester) -> None:
    try:
        params = inspect.signature(action).parameters
    except (TypeError, ValueError):
        action(tester)
        return
    if params:
        action(tester)
    else:
        action()


class WorkflowTester(Registrations):
    """Run workflows instantly and deterministically, with mocks and replay checks.

    Args:
        start_time: where the virtual clock starts (fixed by default, so runs are reproducible).
        strict: changed inputs on replay are errors (and, with the strict guards of net 3,
            non-deterministic calls from orchestrator code).
        replay_check: replay every final history from scratch after each run (net 2).
        freeze_activity_time: activities see the virtual time through ``datetime.now()``/``time.time()``
            (freezegun, started once per run and moved with the clock).
        max_steps: stop a run that processes more work items than this (an endless loop?).
        registry: orchestrators and activities by name (functions register themselves on first use).

    Example::

        tester = WorkflowTester()
        tester.on_activity(charge_card).returns({"ok": True})
        result = tester.run(order_workflow, input={"sku": "A1"})
        assert result.status == "COMPLETED"
        tester.assert_expectations()
    """

    def __init__(
        self,
        *,
        start_time: datetime = DEFAULT_START_TIME,
        strict: bool = True,
        replay_check: bool = True,
        freeze_activity_time: bool = True,
        max_steps: int = 100_000,
        registry: Registry | None = None,
        converter: Converter = DEFAULT_CONVERTER,
    ) -> None:
        self.start_time = start_time
        self.strict = strict
        self.replay_check = replay_check
        self.freeze_activity_time = freeze_activity_time
        self.max_steps = max_steps
        self.registry = registry if registry is not None else Registry()
        self.converter = converter
        self._mocks: dict[tuple[str, str], list[Mock]] = {}
        self._calls: dict[str, list[Call]] = {}
        self._unexpected: list[str] = []
        self._callbacks: list[tuple[datetime, int, Action]] = []
        self._pending_at: list[tuple[datetime | timedelta, int, Action]] = []
        self._schedule: Schedule | None = None
        self._engine: Engine | None = None
        self._instance_id: str | None = None
        self._steps = 0
        self._time_patch: TimePatch | None = None
        self._patches: contextlib.ExitStack | None = None
        self._hooks: Hooks | None = None
        #: the result of the most recent run (the pytest plugin reports its timeline on failure)
        self.last_result: RunResult | None = None
        #: called with each finished run's result (``--wftest-record`` writes history files here)
        self.on_run_finished: list[Callable[[RunResult], None]] = []

    # -- mocks --------------------------------------------------------------------------------------

    def on_activity(self, activity: Activity | str, *matchers: Any) -> Mock:
        """Declare a mock for an activity (by function or registered name), optionally for some inputs."""
        return self._mock("activity", self.registry.activity_name(activity), matchers)

    def on_sub_orchestrator(self, orchestrator: Orchestrator | str, *matchers: Any) -> Mock:
        """Declare a mock for a sub-orchestrator: the child does not run, the parent gets the mocked result."""
        return self._mock("sub_orchestrator", self.registry.orchestrator_name(orchestrator), matchers)

    def _mock(self, kind: str, name: str, matchers: tuple[Any, ...]) -> Mock:
        mock = Mock(kind, name, matchers)
        self._mocks.setdefault((kind, name), []).append(mock)
        return mock

    def calls(self, fn_or_name: Activity | Orchestrator | str) -> list[Call]:
        """Every recorded call (mocked or real) of an activity or sub-orchestrator, in order."""
        if isinstance(fn_or_name, str):
            name = fn_or_name
        else:
            name = str(getattr(fn_or_name, "__wftest_name__", None) or getattr(fn_or_name, "__name__", ""))
        return list(self._calls.get(name, []))

    def assert_expectations(self) -> None:
        """Fail if a mock was declared but not called, or not as many times as declared."""
        problems = [p for mocks in self._mocks.values() for m in mocks if (p := m.unmet_expectation())]
        if problems:
            raise ExpectationError("mock expectations not met:\n  " + "\n  ".join(problems))

    # -- running ------------------------------------------------------------------------------------

    def run(self, orchestrator: Orchestrator | str, input: Any = None, *, instance_id: str | None = None,
            schedule: Schedule | None = None) -> RunResult:
        """Run an orchestration to completion on a fresh engine; returns its result.

        With ``schedule`` (from ``wftest.strategies.schedules()``) the order of work, injected faults
        and event delays follow the schedule; inside a hypothesis test the schedule's decisions are noted
        so a failing example shows them.

        Raises ``OrchestrationStalledError`` if it waits for something that never comes,
        ``RunLimitError`` past ``max_steps``, ``NonDeterminismError`` if the replay check fails and
        ``UnexpectedCallError`` if a mocked activity got an input no mock accepts.
        """
        self.start(orchestrator, input, instance_id=instance_id, schedule=schedule)
        return self.run_until(lambda: self._is_done())

    def start(self, orchestrator: Orchestrator | str, input: Any = None, *, instance_id: str | None = None,
              schedule: Schedule | None = None) -> str:
        """Start an orchestration on a fresh engine without running it; drive it with ``step``/``run_until``."""
        if schedule is not None:
            schedule.reset()
        self._schedule = schedule
        engine = Engine(
            clock=VirtualClock(self.start_time),
            registry=self.registry,
            converter=self.converter,
            strict=self.strict,
            hooks=self._hooks,
            scheduler=schedule,
        )
        engine.activity_interceptor = self._intercept_activity
        engine.sub_orchestration_interceptor = self._intercept_sub_orchestration
        self._engine = engine
        self._steps = 0
        self._unexpected = []
        self._callbacks = [(self._when(w), n, a) for w, n, a in self._pending_at]
        self._pending_at = []
        if schedule is not None and schedule.delays_events:
            limit = timedelta(days=36500)
            self._callbacks = [(w + schedule.event_delay(f"event #{n} (at {w.isoformat()})", limit), n, a)
                               for w, n, a in self._callbacks]
        self._instance_id = engine.client.schedule_new_orchestration(
            orchestrator, input=input, instance_id=instance_id or "test-instance"
        )
        return self._instance_id

    def step(self) -> bool:
        """Run the work that is due now (never moves the clock); False if there was none."""
        with self._activity_time():
            processed = self.engine.run_until_idle(limit=self._budget())
        self._count(processed)
        return processed > 0

    def run_until(self, until: datetime | timedelta | Callable[[], bool]) -> RunResult:
        """Run (jumping the clock to each due timer or callback) until a time, or until a condition holds.

        A ``timedelta`` is measured from the start of the run.
        """
        engine = self.engine
        clock = self._clock()
        deadline = None if callable(until) else self._when(until)
        done: Callable[[], bool] = until if callable(until) else (lambda: False)
        with self._activity_time():
            while True:
                self._fire_callbacks()
                self._count(engine.run_until_idle(limit=self._budget()))
                if done() or (self._is_done() and deadline is None):
                    break
                candidates = [t for t in (engine.backend.next_wakeup(), self._next_callback()) if t is not None]
                upcoming = min(candidates) if candidates else None
                if deadline is not None and (upcoming is None or upcoming > deadline):
                    clock.jump_to(max(deadline, clock.now()))
                    self._fire_callbacks()
                    self._count(engine.run_until_idle(limit=self._budget()))
                    break
                if upcoming is None:
                    raise OrchestrationStalledError(
                        f"the run is stuck: nothing is runnable and no timer is pending; "
                        f"{engine.describe_waiting(self.instance_id)}\n\n{render_timeline(engine.history(self.instance_id))}"
                    )
                clock.jump_to(max(upcoming, clock.now()))
        result = self.result()
        if self._schedule is not None:
            _note(f"schedule: {self._schedule!r}\n{self._schedule.timeline()}")
        details = result.failure_details
        if details is not None and details.error_type == "wftest.errors.NonDeterministicCallError":
            raise NonDeterministicCallError(f"{details.message}\n\n{result.timeline()}")
        if self._unexpected:
            raise UnexpectedCallError("\n".join(self._unexpected) + "\n\n" + result.timeline())
        if self._is_done():
            for callback in self.on_run_finished:
                callback(result)
            if self._hooks is not None:
                self._hooks.run_finished(result)
            if self.replay_check:
                self.check_replay()
        return result

    def result(self) -> RunResult:
        """The current state of the run's root instance."""
        engine = self.engine
        state = engine.client.get_orchestration_state(self.instance_id)
        assert state is not None
        result = RunResult(
            instance_id=self.instance_id,
            status=state.runtime_status,
            output=state.output,
            serialized_output=state.serialized_output,
            failure_details=state.failure_details,
            custom_status=state.custom_status,
            history=engine.history(self.instance_id),
            started_at=self.start_time,
            finished_at=engine.clock.now(),
            steps=self._steps,
            engine=engine,
        )
        self.last_result = result
        return result

    def check_replay(self) -> None:
        """Net 2: replay every instance's final history from scratch; raise on any difference."""
        engine = self.engine
        for state in engine.client.get_all_orchestration_states():
            history = engine.history(state.instance_id)
            executor = engine.new_executor(state.instance_id)
            executor.strict = True
            try:
                replayed = executor.execute(history, [])
            except NonDeterminismError as err:
                raise NonDeterminismError(
                    f"replay check failed: replaying the final history of {state.instance_id!r} from scratch did "
                    f"not reproduce it\n{err}\n\n{render_timeline(history)}",
                    index=err.index, expected=err.expected, actual=err.actual, instance_id=state.instance_id,
                ) from None
            problems = [ev.describe_action(a) for a in replayed.actions]
            if replayed.custom_status_set and replayed.custom_status != state.serialized_custom_status:
                problems.append(
                    f"custom status {replayed.custom_status} (the run recorded {state.serialized_custom_status})"
                )
            if problems:
                raise NonDeterminismError(
                    f"replay check failed for {state.instance_id!r}: replaying its final history produced "
                    f"{'; '.join(problems)}\n\n{render_timeline(history)}",
                    instance_id=state.instance_id, actual=problems[0],
                )

    # -- interaction --------------------------------------------------------------------------------

    def at(self, when: datetime | timedelta, action: Action) -> None:
        """Run ``action`` (a callable taking the tester, or nothing) at a virtual time of the next run.

        A ``timedelta`` is measured from the run's start. Declared before ``run()``/``start()``, or
        during a run for a later time.
        """
        if self._engine is not None and not self._is_done():
            self._callbacks.append((self._when(when), len(self._callbacks), action))
        else:
            self._pending_at.append((when, len(self._pending_at), action))

    def raise_events(self, events: Iterable[ScheduledEvent]) -> None:
        """Raise each event (from ``wftest.strategies.external_events``) at its time in the next run."""
        for event in events:
            self.at(event.at, lambda tester, e=event: tester.raise_event(e.name, e.data))

    def raise_event(self, name: str, data: Any = None, *, instance_id: str | None = None) -> None:
        """Raise an external event now (on the run's instance by default)."""
        self.engine.client.raise_orchestration_event(instance_id or self.instance_id, name, data=data)

    def terminate(self, output: Any = None, *, instance_id: str | None = None, recursive: bool = True) -> None:
        """Terminate the run's instance (or another) now."""
        self.engine.client.terminate_orchestration(instance_id or self.instance_id, output=output, recursive=recursive)

    def suspend(self, *, instance_id: str | None = None) -> None:
        """Suspend the run's instance now."""
        self.engine.client.suspend_orchestration(instance_id or self.instance_id)

    def resume(self, *, instance_id: str | None = None) -> None:
        """Resume the run's instance now."""
        self.engine.client.resume_orchestration(instance_id or self.instance_id)

    @property
    def hooks(self) -> Hooks:
        """This tester's plugin manager (shared by all its runs): ``tester.hooks.register(plugin)``."""
        if self._hooks is None:
            self._hooks = Hooks()
        return self._hooks

    @property
    def engine(self) -> Engine:
        """The engine of the current run."""
        if self._engine is None:
            raise RuntimeError("no run yet: call run() or start() first")
        return self._engine

    @property
    def instance_id(self) -> str:
        """The root instance id of the current run."""
        if self._instance_id is None:
            raise RuntimeError("no run yet: call run() or start() first")
        return self._instance_id

    @property
    def now(self) -> datetime:
        """The current virtual time of the run."""
        return self.engine.clock.now()

    # -- internals ----------------------------------------------------------------------------------

    def _clock(self) -> VirtualClock:
        clock = self.engine.clock
        assert isinstance(clock, VirtualClock)
        return clock

    def _when(self, when: datetime | timedelta) -> datetime:
        return self.start_time + when if isinstance(when, timedelta) else when

    def _is_done(self) -> bool:
        record = self.engine.backend.get_instance(self.instance_id)
        return record is not None and is_terminal(record.status)

    def _budget(self) -> int:
        return max(1, self.max_steps - self._steps + 1)

    def _count(self, processed: int) -> None:
        self._steps += processed
        if self._steps > self.max_steps:
            raise RunLimitError(
                f"the run processed more than max_steps={self.max_steps} work items without finishing; an endless "
                f"loop? (raise WorkflowTester(max_steps=...) if it is intended)\n\n"
                f"{render_timeline(self.engine.history(self.instance_id))}"
            )

    def _next_callback(self) -> datetime | None:
        return min((w for w, _, _ in self._callbacks), default=None)

    def _fire_callbacks(self) -> None:
        now = self.engine.clock.now()
        due = sorted((c for c in self._callbacks if c[0] <= now), key=lambda c: (c[0], c[1]))
        if not due:
            return
        self._callbacks = [c for c in self._callbacks if c[0] > now]
        for _, _, action in due:
            _call_action(action, self)

    @contextlib.contextmanager
    def _activity_time(self) -> Iterator[None]:
        # Starting a time patch is slow (freezegun scans every loaded module: milliseconds) and moving
        # it is fast (microseconds), so it is started at most once per drive, when the first real
        # (unmocked) activity runs, moved before each later one, and stopped when the drive ends.
        with contextlib.ExitStack() as patches:
            self._patches = patches if self.freeze_activity_time else None
            try:
                yield
            finally:
                self._patches = None
                self._time_patch = None

    def _patch_activity_time(self, now: datetime) -> None:
        if self._time_patch is not None:
            self._time_patch.move_to(now)
        elif self._patches is not None:
            self._time_patch = self._patches.enter_context((self._hooks or default_hooks()).time_patch(now))

    def _record(self, name: str, value: Any, task_id: int, instance_id: str, mocked: bool) -> Call:
        call = Call(name, value, self.engine.clock.now(), instance_id, task_id, mocked)
        self._calls.setdefault(name, []).append(call)
        return call

    def _intercept_activity(self, task: ActivityTask) -> tuple[pb.HistoryEvent, timedelta | None] | None:
        engine = self.engine
        now = engine.clock.now()
        mocks = self._mocks.get(("activity", task.name))
        value = self.converter.deserialize(task.input)
        if not mocks:
            self._record(task.name, value, task.task_id, task.instance_id, mocked=False)
            self._patch_activity_time(now)
            return None
        mock = next((m for m in mocks if m.accepts(value)), None)
        call = self._record(task.name, value, task.task_id, task.instance_id, mocked=True)
        if mock is None:
            message = (
                f"activity {task.name!r} was called with input {value!r} (instance {task.instance_id!r}, task "
                f"#{task.task_id}) but no declared mock accepts it; declared mocks:\n    "
                + "\n    ".join(m.describe() for m in mocks)
            )
            self._unexpected.append(message)
            failure = FailureDetails(message=message, error_type="wftest.errors.UnexpectedCallError")
            return ev.task_failed(now, task.task_id, failure), None
        mock.recorded_calls.append(call)
        ctx = ActivityContext(task.instance_id, task.task_id, task.name, task.scheduled_at)
        try:
            encoded = self.converter.serialize(mock.answer(ctx, value))
        except Exception as err:
            return ev.task_failed(now, task.task_id, FailureDetails.from_exception(err)), mock.delay
        return ev.task_completed(now, task.task_id, encoded), mock.delay

    def _intercept_sub_orchestration(self, message: Message, now: datetime) -> Message:
        event = message.event
        if not event.HasField("executionStarted") or not event.executionStarted.HasField("parentInstance"):
            return message
        started = event.executionStarted
        parent = started.parentInstance
        parent_id = parent.orchestrationInstance.instanceId
        value = self.converter.deserialize(started.input.value if started.HasField("input") else None)
        mocks = self._mocks.get(("sub_orchestrator", started.name))
        if not mocks:
            self._record(started.name, value, parent.taskScheduledId, parent_id, mocked=False)
            return message
        call = self._record(started.name, value, parent.taskScheduledId, parent_id, mocked=True)
        mock = next((m for m in mocks if m.accepts(value)), None)
        visible_at = None
        if mock is None:
            text = (
                f"sub-orchestrator {started.name!r} was called with input {value!r} (from {parent_id!r}) but no "
                "declared mock accepts it; declared mocks:\n    " + "\n    ".join(m.describe() for m in mocks)
            )
            self._unexpected.append(text)
            result = ev.sub_orchestration_failed(
                now, parent.taskScheduledId,
                FailureDetails(message=text, error_type="wftest.errors.UnexpectedCallError").to_proto(),
            )
        else:
            mock.recorded_calls.append(call)
            visible_at = now + mock.delay if mock.delay else None
            try:
                encoded = self.converter.serialize(mock.answer(None, value))
                result = ev.sub_orchestration_completed(now, parent.taskScheduledId, encoded)
            except Exception as err:
                details = FailureDetails.from_exception(err)
                result = ev.sub_orchestration_failed(now, parent.taskScheduledId, details.to_proto())
        return Message(parent_id, result, visible_at)
