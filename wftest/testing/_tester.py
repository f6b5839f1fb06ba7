"""``WorkflowTester``: run orchestrations to completion on a fresh in-memory engine and virtual clock.

Every ``run()`` builds a new engine, so one tester runs many times (hypothesis examples) without leaking
state; mocks and recorded calls belong to the tester and span its runs. After each run the final
histories are replayed from scratch (net 2 of DESIGN.md): code that does not reproduce its own history
fails the test with the diff.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from wftest import _events as ev
from wftest._failure import FailureDetails
from wftest._schedules import Schedule
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
from wftest.testing._mocks import Call, Mock, expectation_report
from wftest.testing._timeline import render_timeline

if TYPE_CHECKING:
    from wftest.strategies import ScheduledEvent

Action = Callable[..., Any]

#: the engine's advice in ``describe_waiting`` names client calls; the tester gives its own
_ENGINE_ADVICE = re.compile(r";\s*(?:raise them|resume it) with client\.\w+\(\)")


def _note(text: Callable[[], str]) -> None:
    """``hypothesis.note(text())`` when running inside a hypothesis test (shown for the failing example).

    The text is built only when hypothesis keeps it (the final, failing example; or verbose output).
    """
    import sys

    if "hypothesis" not in sys.modules:
        return
    from hypothesis import control

    if control.currently_in_test_context():
        should_note = getattr(control, "should_note", None)  # hypothesis >= 6.1xx; else always build it
        if should_note is None or should_note():
            control.note(text())


def _naive_utc(when: datetime) -> datetime:
    """Times are naive UTC everywhere in wftest (like orchestration time); aware times are converted."""
    if when.utcoffset() is not None:
        return when.astimezone(timezone.utc).replace(tzinfo=None)
    return when


@dataclass(frozen=True)
class RunResult:
    """The outcome of one tester run (or of the run so far, for ``run_until`` and ``result()`` mid-run).

    ``started_at`` is the virtual time the run started; ``finished_at`` the virtual time the root
    instance reached its final status (COMPLETED, FAILED, TERMINATED), or, while it is still running,
    the virtual time the run has been driven to. Times are naive UTC.
    """

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
    if getattr(action, "__self__", None) is tester:  # a bound method of the tester: at(t, tester.cancel)
        action()
        return
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
            (freezegun by default). The patch is on only while activity code runs: orchestrator code,
            callbacks and the test itself read the real clock.
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
        self.start_time = _naive_utc(start_time)
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
        #: the current run's end was reported (on_run_finished, hooks, replay check): once per run
        self._finish_reported = False
        #: while the tester drives a run: where activities get their time patch (None: freezing is off)
        self._time_hooks: Hooks | None = None
        #: the time patch of the activities running one after the other now (None: the real clock)
        self._activity_patch: TimePatch | None = None
        self._activity_patch_at = self.start_time
        self._patch_per_activity = False
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
        """Fail if a mock was not called as declared, across every run of this tester so far.

        A mock without a count must be called at least once, ``.times(n)``/``.once()`` exactly ``n``
        times, and ``.any_times()`` any number of times (never reported). The error lists each unmet
        mock with the expected and actual counts and the calls it answered, at their virtual times.
        """
        report = expectation_report([m for mocks in self._mocks.values() for m in mocks])
        if report is not None:
            raise ExpectationError(report)

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
        self._start(orchestrator, input, instance_id, schedule)
        return self.run_until()

    def start(self, orchestrator: Orchestrator | str, input: Any = None, *, instance_id: str | None = None,
              schedule: Schedule | None = None) -> str:
        """Start an orchestration on a fresh engine without running it; drive it with ``step``/``run_until``."""
        return self._start(orchestrator, input, instance_id, schedule)

    def _start(self, orchestrator: Orchestrator | str, input: Any, instance_id: str | None,
               schedule: Schedule | None) -> str:
        """``start()``, for ``start()`` and ``run()`` (a schedule's warnings point at their caller)."""
        if schedule is not None:
            if not isinstance(schedule, Schedule):
                raise TypeError(
                    f"schedule= takes a wftest Schedule (wftest.strategies.schedules(), Schedule.from_string(...), "
                    f"or the one explore() passes), got {schedule!r}; a Scheduler of your own goes to "
                    "Engine(scheduler=...)")
            schedule.begin_run(stacklevel=3)
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
        engine.step_starting = self._stop_activity_time
        self._engine = engine
        self._steps = 0
        self._unexpected = []
        self._finish_reported = False
        self.last_result = None
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
            processed = self._run_due()
        return processed > 0

    def run_until(self, until: datetime | timedelta | Callable[[], bool] | None = None) -> RunResult:
        """Run the started orchestration (jumping the clock to each due timer or callback) and return its result.

        - ``run_until()``: until the root instance finishes (what ``run()`` does after ``start()``);
        - ``run_until(timedelta(hours=1))`` / ``run_until(datetime(...))``: until that virtual time (a
          ``timedelta`` is measured from the start of the run), even if the instance finishes earlier;
        - ``run_until(lambda: ...)``: until the condition holds or the instance finishes.

        The result's ``finished_at`` is when the instance finished, or, if it still runs, the time the
        run has reached. Raises ``OrchestrationStalledError`` if the run must go on but nothing can run
        and nothing is scheduled (the instance waits for something nobody sends).

        Example::

            tester.start(approval_workflow)
            tester.run_until(timedelta(hours=1))            # the request is sent, the approver thinks
            tester.raise_event("approval", True)
            result = tester.run_until()                      # to the end
        """
        engine = self.engine
        clock = self._clock()
        deadline = None if until is None or callable(until) else self._when(until)
        done: Callable[[], bool] = until if callable(until) else (lambda: False)
        try:
            with self._activity_time():
                while True:
                    self._fire_callbacks()
                    self._run_due()
                    if done() or (self._is_done() and deadline is None):
                        break
                    candidates = [t for t in (engine.backend.next_wakeup(), self._next_callback()) if t is not None]
                    upcoming = min(candidates) if candidates else None
                    if deadline is not None and (upcoming is None or upcoming > deadline):
                        clock.jump_to(max(deadline, clock.now()))
                        self._fire_callbacks()
                        self._run_due()
                        break
                    if upcoming is None:
                        self.result()  # so last_result (the pytest failure report) shows this run
                        raise OrchestrationStalledError(self._stall_message())
                    clock.jump_to(max(upcoming, clock.now()))
        finally:
            if self._schedule is not None:  # also when the run stalls or hits max_steps
                schedule = self._schedule
                _note(lambda: f"schedule: {schedule!r}\n{schedule.timeline()}")
        result = self.result()
        if self._schedule is not None and self._is_done():
            self._schedule.warn_if_unused(stacklevel=3)
        details = result.failure_details
        if details is not None and details.error_type == "wftest.errors.NonDeterministicCallError":
            raise NonDeterministicCallError(f"{details.message}\n\n{result.timeline()}")
        if self._unexpected:
            raise UnexpectedCallError("\n".join(self._unexpected) + "\n\n" + result.timeline())
        if self._is_done() and not self._finish_reported:
            self._finish_reported = True
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
            finished_at=state.completed_at if state.runtime_status.is_terminal and state.completed_at
            else engine.clock.now(),
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
            # unwatched: the guard (net 3) watched this code as it ran; replaying the same history must take
            # the same path, or the replay fails below (and the guard would cost as much as the replay)
            executor = engine.new_executor(state.instance_id, watched=False)
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

    def cancel(self, reason: str | None = None, *, instance_id: str | None = None) -> None:
        """Cancel the run's instance (or another) now, cooperatively: see ``TaskHubClient.cancel_orchestration``.

        Before or during a run, at a virtual time::

            tester.at(timedelta(hours=2), lambda t: t.cancel("out of stock"))
            tester.at(timedelta(hours=2), tester.cancel)      # the same, without a reason

        A finished instance is left as it is.
        """
        self.engine.client.cancel_orchestration(instance_id or self.instance_id, reason=reason)

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
        return self.start_time + when if isinstance(when, timedelta) else _naive_utc(when)

    def _stall_message(self) -> str:
        """What each unfinished instance waits for, and how to send it from the test, then the timeline."""
        engine = self.engine
        now = engine.clock.now()
        lines = [
            f"the run is stuck at {now:%Y-%m-%d %H:%M:%S} (+{now - self.start_time}): nothing can run, and no timer "
            "or at() callback is due"
        ]
        hints: list[tuple[str, str, str]] = []  # (what to do, as an at() action, as a direct call)
        for state in engine.client.get_all_orchestration_states():
            if state.runtime_status.is_terminal:
                continue
            iid = state.instance_id
            waiting = _ENGINE_ADVICE.sub("", engine.describe_waiting(iid))
            lines.append(f"  instance {iid!r} ({state.name}): {waiting}")
            if state.runtime_status == OrchestrationStatus.SUSPENDED:
                target = "" if iid == self.instance_id else f"instance_id={iid!r}"
                hints.append((f"resume {iid!r}", f"t.resume({target})", f"tester.resume({target})"))
            elif "external event" in waiting:
                target = "" if iid == self.instance_id else f", instance_id={iid!r}"
                for name in re.findall(r"'([^']*)'", waiting.partition("external event")[2]):
                    call = f"raise_event({name!r}, data{target})"
                    hints.append((f"raise {name!r}", f"t.{call}", f"tester.{call}"))
        if hints:
            for what, action, call in dict.fromkeys(hints):
                lines += [
                    f"To go on, {what} from the test:",
                    f"  - before run():  tester.at(timedelta(...), lambda t: {action})",
                    f"  - mid-run:       tester.start(...); tester.run_until(<time>); {call}; tester.run_until()",
                ]
        else:
            lines.append("To go on, send what it waits for from the test: tester.at(when, action) before run(), or "
                         "tester.raise_event() / tester.resume() between run_until() calls")
        return "\n".join(lines) + "\n\n" + render_timeline(engine.history(self.instance_id))

    def _is_done(self) -> bool:
        record = self.engine.backend.get_instance(self.instance_id)
        return record is not None and is_terminal(record.status)

    def _budget(self) -> int:
        return max(1, self.max_steps - self._steps + 1)

    def _run_due(self) -> int:
        """Run the work due now (``engine.run_until_idle``) and count it; activity time is off afterwards."""
        try:
            processed = self.engine.run_until_idle(limit=self._budget())
        finally:
            self._stop_activity_time()
        self._count(processed)
        return processed

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
        # The wall clock reads the virtual time only while activities run (``_run_activity``), never while
        # orchestrator code, callbacks, mocks or the test run. A drive decides once where the patch comes from.
        previous = self._time_hooks
        hooks = (self._hooks or default_hooks()) if self.freeze_activity_time else None
        self._time_hooks = hooks
        # activities that run one after the other share one patch, moved to each one's time, unless a plugin
        # runs code between them (wftest_before/after_activity), which must not see the frozen clock
        self._patch_per_activity = hooks is not None and hooks.observes_activities
        try:
            yield
        finally:
            self._stop_activity_time()
            self._time_hooks = previous

    def _run_activity(self, task: ActivityTask) -> tuple[pb.HistoryEvent, timedelta | None] | None:
        """Run a real activity with the wall clock patched to the virtual time (None: the worker runs it).

        The patch is started for the first of a series of activities, moved to the time of each next one,
        and stopped by whatever else runs next (an orchestration step, a mock, the end of ``run_until_idle``):
        starting and stopping it costs microseconds, moving it less.
        """
        hooks = self._time_hooks
        if hooks is None:
            return None
        engine = self.engine
        now = engine.clock.now()
        patch = self._activity_patch
        if patch is None:
            self._activity_patch = hooks.start_time_patch(now)
            self._activity_patch_at = now
        elif now != self._activity_patch_at:  # (the clock moves between series, not within one)
            patch.move_to(now)
            self._activity_patch_at = now
        try:
            return engine.worker.execute_activity(task), None
        finally:
            if self._patch_per_activity:
                self._stop_activity_time()

    def _stop_activity_time(self) -> None:
        """Give the wall clock back (the end of a series of activities)."""
        patch, self._activity_patch = self._activity_patch, None
        if patch is not None:
            patch.stop()

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
            return self._run_activity(task)
        mock = next((m for m in mocks if m.accepts(value)), None)
        call = self._record(task.name, value, task.task_id, task.instance_id, mocked=True)
        if mock is None:
            message = (
                f"activity {task.name!r} was called with input {value!r} (instance {task.instance_id!r}, task "
                f"#{task.task_id}) but no declared mock accepts it; declared mocks:\n    "
                + "\n    ".join(m.describe_calls() for m in mocks)
            )
            self._unexpected.append(message)
            failure = FailureDetails(message=message, error_type="wftest.errors.UnexpectedCallError")
            return ev.task_failed(now, task.task_id, failure), None
        mock.recorded_calls.append(call)
        self._stop_activity_time()  # a mock's answer is test code: the real clock
        ctx = ActivityContext(task.instance_id, task.task_id, task.name, task.scheduled_at, task.tags)
        try:
            # a mock's answer sees the request-scoped context the orchestration passed on, as a real activity does
            with engine.hooks.extract_context(task.tags) if self._hooks is not None else contextlib.nullcontext():
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
                "declared mock accepts it; declared mocks:\n    " + "\n    ".join(m.describe_calls() for m in mocks)
            )
            self._unexpected.append(text)
            result = ev.sub_orchestration_failed(
                now, parent.taskScheduledId,
                FailureDetails(message=text, error_type="wftest.errors.UnexpectedCallError").to_proto(),
            )
        else:
            mock.recorded_calls.append(call)
            visible_at = now + mock.delay if mock.delay else None
            arrives = visible_at or now  # the result's event is stamped with the time it arrives
            try:
                encoded = self.converter.serialize(mock.answer(None, value))
                result = ev.sub_orchestration_completed(arrives, parent.taskScheduledId, encoded)
            except Exception as err:
                details = FailureDetails.from_exception(err)
                result = ev.sub_orchestration_failed(arrives, parent.taskScheduledId, details.to_proto())
        return Message(parent_id, result, visible_at)
