"""``TaskHubClient``: start, inspect, signal and manage orchestration instances.

Names follow durabletask-python's client, so code ports with an import change. On an engine with a
virtual clock the ``wait_*`` methods run the engine themselves (deterministically, jumping the clock to
the next timer whenever nothing else is runnable); with a real clock they wait for the workers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from wftest import _events as ev
from wftest._failure import FailureDetails
from wftest._status import OrchestrationStatus
from wftest.backends import IdReusePolicy, InstanceQuery
from wftest.converter import Converter
from wftest.engine._rewind import rewind_event, rewind_index
from wftest.errors import (
    InstanceNotCompletedError,
    InstanceNotFoundError,
    OrchestrationFailedError,
    OrchestrationStateError,
)
from wftest.orchestration._cancel import CANCEL_EVENT, encode_cancel
from wftest.orchestration._registry import Orchestrator
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.runtime import (
    FAILED,
    PENDING,
    TERMINAL_STATUSES,
    InstanceRecord,
    created_children,
    is_terminal,
    new_execution_id,
)

if TYPE_CHECKING:
    from wftest.engine._engine import Engine

#: how many times ``rewind_orchestration`` tries to take the instance's lock (10 ms apart) before giving up
_REWIND_ATTEMPTS = 500


@dataclass(frozen=True)
class OrchestrationState:
    """A snapshot of one instance.

    ``input``, ``output`` and ``custom_status`` are decoded with the engine's converter; the
    ``serialized_*`` fields hold the JSON text as stored.
    """

    instance_id: str
    name: str
    runtime_status: OrchestrationStatus
    created_at: datetime
    last_updated_at: datetime
    serialized_input: str | None = None
    serialized_output: str | None = None
    serialized_custom_status: str | None = None
    failure_details: FailureDetails | None = None
    completed_at: datetime | None = None
    scheduled_start_at: datetime | None = None
    execution_id: str | None = None
    parent_instance_id: str | None = None
    _converter: Converter | None = field(default=None, repr=False, compare=False)

    @property
    def input(self) -> Any:
        """The decoded input."""
        return self._decode(self.serialized_input)

    @property
    def output(self) -> Any:
        """The decoded output (for a terminated instance, the terminate output)."""
        return self._decode(self.serialized_output)

    @property
    def custom_status(self) -> Any:
        """The decoded custom status; one that is not JSON (Dapr's SDK stores the string it is given) reads
        as that string."""
        try:
            return self._decode(self.serialized_custom_status)
        except ValueError:
            return self.serialized_custom_status

    def raise_if_failed(self) -> None:
        """Raise ``OrchestrationFailedError`` if the instance FAILED."""
        if self.runtime_status == OrchestrationStatus.FAILED:
            details = self.failure_details
            message = details.message if details is not None else "no failure details"
            raise OrchestrationFailedError(f"orchestration {self.instance_id!r} failed: {message}", details)

    def _decode(self, data: str | None) -> Any:
        if data is None:
            return None
        if self._converter is None:
            raise RuntimeError("this state has no converter; read the serialized_* fields")
        return self._converter.deserialize(data)

    @classmethod
    def from_record(cls, record: InstanceRecord, converter: Converter | None, fetch_payloads: bool = True
                    ) -> OrchestrationState:
        """Build a state from a backend record."""
        return cls(
            instance_id=record.instance_id,
            name=record.name,
            runtime_status=OrchestrationStatus.from_proto(record.status),
            created_at=record.created_at,
            last_updated_at=record.last_updated_at,
            serialized_input=record.input if fetch_payloads else None,
            serialized_output=record.output if fetch_payloads else None,
            serialized_custom_status=record.custom_status if fetch_payloads else None,
            failure_details=FailureDetails.from_proto(record.failure_details) if record.failure_details else None,
            completed_at=record.completed_at,
            scheduled_start_at=record.scheduled_start_at,
            execution_id=record.execution_id,
            parent_instance_id=record.parent_instance_id,
            _converter=converter,
        )


@dataclass(frozen=True)
class PurgeResult:
    """How many instances a purge deleted."""

    deleted_instance_count: int


@dataclass(frozen=True)
class QueryResult:
    """A page of instances and the token for the next page (None at the end)."""

    states: list[OrchestrationState]
    continuation_token: str | None


def _status_numbers(statuses: Sequence[OrchestrationStatus | str] | None) -> list[int] | None:
    if not statuses:
        return None
    return [OrchestrationStatus(s).to_proto() for s in statuses]


class TaskHubClient:
    """The client of one engine. Get it as ``engine.client``.

    Example::

        iid = client.schedule_new_orchestration(order_workflow, input={"sku": "A1"})
        state = client.wait_for_orchestration_completion(iid)
        assert state.runtime_status == "COMPLETED"
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- starting -----------------------------------------------------------------------------------

    def schedule_new_orchestration(
        self,
        orchestrator: Orchestrator | str,
        *,
        input: Any = None,
        instance_id: str | None = None,
        start_at: datetime | None = None,
        reuse_id_policy: IdReusePolicy = IdReusePolicy.ERROR,
        tags: dict[str, str] | None = None,
        version: str | None = None,
        parent_trace_context: pb.TraceContext | None = None,
    ) -> str:
        """Start an orchestration (now, or at ``start_at``); returns its instance id.

        ``orchestrator`` is the function (registered under its name on first use) or a registered
        name. Without ``instance_id`` a fresh id is made (deterministic on a virtual clock).

        ``parent_trace_context`` is the creator's W3C trace context (``traceParent``, ``traceState``), as
        durabletask's ``CreateInstanceRequest`` carries it: it is stored in the ``ExecutionStarted`` event, so
        the orchestration's spans join the creator's trace (and :class:`wftest.tracing.TracingPlugin` then
        makes no ``create_orchestration`` span of its own). The gRPC sidecar passes it on; in-process code
        usually lets the tracing plugin take the active span instead.
        """
        engine = self._engine
        name = engine.registry.orchestrator_name(orchestrator)
        iid = instance_id if instance_id is not None else engine.new_instance_id()
        if not iid:
            raise ValueError("instance_id must not be empty")
        now = engine.clock.now()
        encoded = engine.converter.serialize(input)
        start_at = ev_naive(start_at)
        hooks = engine._hooks
        if hooks is not None and hooks.propagates_context:
            # the caller's request-scoped values (wftest_inject_context); tags given here win on a clash
            tags = {**hooks.inject_context({}), **(tags or {})}
        # a replaced instance must get a new execution id even in the same instant, so that results
        # still addressed to the old execution are dropped rather than delivered to the new one
        existing = engine.backend.get_instance(iid)
        previous = existing.execution_id if existing is not None else None
        start = ev.execution_started(
            now, name, iid, encoded, execution_id=new_execution_id(iid, now, previous),
            scheduled_start=start_at, version=version, tags=tags,
        )
        if parent_trace_context is not None and parent_trace_context.traceParent:
            start.executionStarted.parentTraceContext.CopyFrom(parent_trace_context)
        if engine._hooks is not None:
            engine._hooks.client_starting(start)  # plugins inject the caller's context (trace context, tags)
        record = InstanceRecord(
            instance_id=iid, name=name, status=PENDING, created_at=now, last_updated_at=now,
            execution_id=start.executionStarted.orchestrationInstance.executionId.value,
            input=encoded, scheduled_start_at=start_at, version=version,
        )
        visible_at = start_at if start_at is not None and start_at > now else None
        engine.backend.create_instance(start, record, visible_at=visible_at, policy=reuse_id_policy, now=now)
        engine._notify_started()
        return iid

    # -- reading ------------------------------------------------------------------------------------

    def get_orchestration_state(self, instance_id: str, *, fetch_payloads: bool = True) -> OrchestrationState | None:
        """The instance's current state, or None if there is no such instance."""
        record = self._engine.backend.get_instance(instance_id)
        if record is None:
            return None
        return OrchestrationState.from_record(record, self._engine.converter, fetch_payloads)

    def wait_for_orchestration_start(self, instance_id: str, *, timeout: float | timedelta | None = None
                                     ) -> OrchestrationState:
        """Wait until the instance has started (is no longer PENDING)."""
        return self._wait(instance_id, lambda r: r.status != PENDING, "start", timeout)

    def wait_for_orchestration_completion(self, instance_id: str, *, timeout: float | timedelta | None = None
                                          ) -> OrchestrationState:
        """Wait until the instance is COMPLETED, FAILED or TERMINATED; returns its final state.

        On a virtual clock this runs the engine (``timeout`` is then virtual time) and raises
        ``OrchestrationStalledError`` if the instance can never finish without outside help.
        """
        return self._wait(instance_id, lambda r: is_terminal(r.status), "completion", timeout)

    def _wait(self, instance_id: str, done: Any, what: str, timeout: float | timedelta | None) -> OrchestrationState:
        if isinstance(timeout, (int, float)):
            timeout = timedelta(seconds=timeout)
        record = self._engine.wait_for(instance_id, done, what, timeout)
        return OrchestrationState.from_record(record, self._engine.converter)

    def query_instances(
        self,
        *,
        runtime_status: Sequence[OrchestrationStatus | str] | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        instance_id_prefix: str | None = None,
        name: str | None = None,
        page_size: int = 100,
        continuation_token: str | None = None,
        fetch_payloads: bool = True,
    ) -> QueryResult:
        """One page of instances matching every given filter, oldest first."""
        records, token = self._engine.backend.query_instances(
            InstanceQuery(
                runtime_status=_status_numbers(runtime_status), created_from=created_from, created_to=created_to,
                instance_id_prefix=instance_id_prefix, name=name, page_size=page_size,
                continuation_token=continuation_token,
            )
        )
        states = [OrchestrationState.from_record(r, self._engine.converter, fetch_payloads) for r in records]
        return QueryResult(states, token)

    def get_all_orchestration_states(self, **filters: Any) -> list[OrchestrationState]:
        """Every instance matching the filters of :meth:`query_instances`, across all pages."""
        return list(self._iter_states(**filters))

    def _iter_states(self, **filters: Any) -> Iterator[OrchestrationState]:
        token = None
        while True:
            page = self.query_instances(continuation_token=token, **filters)
            yield from page.states
            token = page.continuation_token
            if token is None:
                return

    # -- signalling ---------------------------------------------------------------------------------

    def raise_orchestration_event(self, instance_id: str, event_name: str, *, data: Any = None) -> None:
        """Raise an external event on an instance (buffered if it is not waiting yet)."""
        engine = self._engine
        event = ev.event_raised(engine.clock.now(), event_name, engine.converter.serialize(data))
        engine.backend.add_event(instance_id, event)
        if engine.scheduler is not None and engine.scheduler.fault("event", f"{event_name} to {instance_id}"):
            engine.backend.add_event(instance_id, event)  # injected fault: delivered twice

    def terminate_orchestration(self, instance_id: str, *, output: Any = None, recursive: bool = True) -> None:
        """Stop an instance now; it ends TERMINATED with ``output``.

        With ``recursive`` (the default) its running sub-orchestrations are terminated too.
        """
        engine = self._engine
        event = ev.execution_terminated(engine.clock.now(), engine.converter.serialize(output), recursive)
        engine.backend.add_event(instance_id, event)

    def cancel_orchestration(self, instance_id: str, *, reason: str | None = None) -> None:
        """Ask an instance to stop, cooperatively (go-workflows' ``CancelWorkflowInstance``); see docs/cancellation.md.

        Unlike terminate, the orchestrator keeps running: the wait it is in raises
        ``OrchestrationCancelledError``, and so do new activity, timer, sub-orchestration and event-wait calls,
        except inside ``with ctx.disconnected():`` where cleanup runs normally. Activities already running
        finish and their results are delivered; running sub-orchestrations are cancelled too (recursively).
        The instance ends COMPLETED if the code catches the error and returns, FAILED (error type
        ``wftest.errors.OrchestrationCancelledError``) if it lets it escape.

        The request is an ``EventRaised`` named ``wftest.cancel`` with data ``{"reason": reason}``, recorded in
        the history like any event (held while the instance is suspended). Cancelling an instance that has
        already finished does nothing; a second cancel is ignored. Raises ``InstanceNotFoundError`` for an
        unknown id.

        Example::

            client.cancel_orchestration(iid, reason="the customer changed their mind")
            state = client.wait_for_orchestration_completion(iid)
        """
        engine = self._engine
        record = engine.backend.get_instance(instance_id)
        if record is None:
            raise InstanceNotFoundError(
                instance_id, f"cannot cancel orchestration instance {instance_id!r}: no instance has this id"
            )
        if is_terminal(record.status):
            return  # nothing left to cancel
        event = ev.event_raised(engine.clock.now(), CANCEL_EVENT, encode_cancel(reason))
        engine.backend.add_event(instance_id, event)
        if engine.scheduler is not None and engine.scheduler.fault("event", f"cancel to {instance_id}"):
            engine.backend.add_event(instance_id, event)  # injected fault: delivered twice

    def suspend_orchestration(self, instance_id: str, *, reason: str | None = None) -> None:
        """Pause an instance: events are held until it is resumed (terminate still works)."""
        engine = self._engine
        engine.backend.add_event(instance_id, ev.execution_suspended(engine.clock.now(), reason))

    def resume_orchestration(self, instance_id: str, *, reason: str | None = None) -> None:
        """Resume a suspended instance; held events are processed in arrival order."""
        engine = self._engine
        engine.backend.add_event(instance_id, ev.execution_resumed(engine.clock.now(), reason))

    def rewind_orchestration(self, instance_id: str, *, reason: str | None = None) -> None:
        """Run a FAILED instance again from its last good state (durabletask's ``rewind_orchestration``).

        The failed activities and sub-orchestrations are removed from the history and run again; the
        activities and children that succeeded keep their results and do not run again. A failed
        sub-orchestration is rewound too, and one that was purged starts again. The instance gets a new
        execution id, and its history records an ``ExecutionRewound`` event with ``reason``. When this
        returns the instance is RUNNING (wait for it as usual). See docs/engine.md for the exact rules.

        Raises ``InstanceNotFoundError`` for an unknown id and ``OrchestrationStateError`` if the instance is
        not FAILED.

        Example::

            state = client.wait_for_orchestration_completion(iid)
            assert state.runtime_status == "FAILED"          # say a downstream service was down
            client.rewind_orchestration(iid, reason="the service is back")
            state = client.wait_for_orchestration_completion(iid)
            assert state.runtime_status == "COMPLETED"

        .. versionadded:: 0.1
        """
        engine = self._engine
        backend = engine.backend
        record = backend.get_instance(instance_id)
        if record is None:
            raise InstanceNotFoundError(
                instance_id, f"cannot rewind orchestration instance {instance_id!r}: no instance has this id"
            )
        if record.status != FAILED:
            status = OrchestrationStatus.from_proto(record.status).value
            raise OrchestrationStateError(
                f"cannot rewind orchestration instance {instance_id!r}: it is {status}; only a FAILED instance can "
                "be rewound"
            )
        backend.add_event(instance_id, rewind_event(engine.clock.now(), reason))
        # Commit the rewind now (it runs no user code), so that the instance is RUNNING when this returns. If a
        # worker holds the instance, it commits the rewind itself when it gets to the event: wait for that.
        for _ in range(_REWIND_ATTEMPTS):
            item = backend.fetch_orchestration_work_item(engine.owner, engine.clock.now(), engine.lock_timeout,
                                                         instance_id=instance_id)
            if item is not None:
                if rewind_index(item.record, item.new_events) is not None:
                    engine.worker.run_orchestration(item)  # commits the rewind and runs no orchestrator code
                else:  # rewound meanwhile by a worker: this is an ordinary step, which is the workers' to run
                    backend.abandon_orchestration_work_item(item, engine.clock.now(), timedelta(0))
            current = backend.get_instance(instance_id)
            if current is None or current.status != FAILED or current.execution_id != record.execution_id:
                engine._notify_started()
                return
            backend.wait_for_work(0.01)
        raise OrchestrationStateError(
            f"the rewind of orchestration instance {instance_id!r} is queued, but the instance stayed locked by a "
            "worker; it is rewound when the worker releases it"
        )

    def purge_orchestration(self, instance_id: str, *, recursive: bool = True) -> PurgeResult:
        """Delete a completed instance and its history (and its sub-orchestrations', if recursive).

        Raises ``InstanceNotFoundError`` for an unknown id and ``InstanceNotCompletedError`` for an
        instance that is still running.
        """
        return PurgeResult(self._purge(instance_id, recursive))

    def purge_orchestrations(
        self,
        *,
        created_before: datetime | None = None,
        created_after: datetime | None = None,
        completed_before: datetime | None = None,
        statuses: Sequence[OrchestrationStatus | str] | None = None,
        name: str | None = None,
        recursive: bool = True,
    ) -> PurgeResult:
        """Delete every finished instance that matches all the filters given; returns how many were deleted.

        Args:
            created_before: only instances created strictly before this time.
            created_after: only instances created strictly after this time.
            completed_before: only instances that finished strictly before this time (retention by age).
            statuses: only these final statuses (default: COMPLETED, FAILED and TERMINATED); a status that is
                not final (RUNNING, PENDING, ...) is a ``ValueError``: running instances are never purged.
            name: only instances of this orchestrator.
            recursive: also delete each purged instance's sub-orchestrations, whatever their own creation
                time, status or name, and theirs in turn (as :meth:`purge_orchestration` does). An instance
                with a sub-orchestration still running is left alone, with its children, until they finish.

        Sub-orchestrations match the filters like any instance: with ``recursive=False`` a finished child
        whose parent still runs may be purged on its own. Example (keep a week of history)::

            week_ago = engine.clock.now() - timedelta(days=7)
            deleted = client.purge_orchestrations(completed_before=week_ago).deleted_instance_count
        """
        wanted = _status_numbers(statuses) or sorted(TERMINAL_STATUSES)
        running = [OrchestrationStatus.from_proto(s).value for s in wanted if not is_terminal(s)]
        if running:
            raise ValueError(
                f"purge_orchestrations() deletes finished instances only; statuses {', '.join(running)} are not final "
                "(terminate those instances first)"
            )
        created_before, created_after = ev_naive(created_before), ev_naive(created_after)
        completed_before = ev_naive(completed_before)
        matching = [
            state.instance_id
            for state in self._iter_states(runtime_status=[OrchestrationStatus.from_proto(s) for s in wanted],
                                           created_from=created_after, created_to=created_before, name=name,
                                           fetch_payloads=False)
            if (created_before is None or state.created_at < created_before)
            and (created_after is None or state.created_at > created_after)
            and (completed_before is None or (state.completed_at is not None and state.completed_at < completed_before))
        ]
        backend = self._engine.backend
        count = 0
        for instance_id in matching:
            if backend.get_instance(instance_id) is None:
                continue  # already purged as a sub-orchestration of an earlier match
            if recursive and not self._tree_finished(instance_id):
                continue
            count += self._purge(instance_id, recursive)
        return PurgeResult(count)

    def _tree_finished(self, instance_id: str) -> bool:
        backend = self._engine.backend
        record = backend.get_instance(instance_id)
        if record is None:
            return True
        if not is_terminal(record.status):
            return False
        return all(self._tree_finished(child) for child in created_children(backend.get_history(instance_id)))

    def _purge(self, instance_id: str, recursive: bool) -> int:
        backend = self._engine.backend
        record = backend.get_instance(instance_id)
        if record is None:
            raise InstanceNotFoundError(instance_id)
        if not is_terminal(record.status):
            raise InstanceNotCompletedError(instance_id, OrchestrationStatus.from_proto(record.status).value, "purge")
        count = 0
        if recursive:
            for child in created_children(backend.get_history(instance_id)):
                if backend.get_instance(child) is not None:
                    count += self._purge(child, recursive)
        backend.purge_instance(instance_id)
        return count + 1


def ev_naive(when: datetime | None) -> datetime | None:
    """Naive UTC for a datetime that may be aware."""
    if when is None or when.utcoffset() is None:
        return when
    from datetime import timezone

    return when.astimezone(timezone.utc).replace(tzinfo=None)
