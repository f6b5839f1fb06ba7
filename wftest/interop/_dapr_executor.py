"""The adapter around the executor that Dapr Workflow vendors (``dapr.ext.workflow._durabletask``), and
its registration wrappers. Events and actions are translated by ``_dapr_dialect``. Imported only
through ``wftest.interop.dapr`` (the ``dapr`` extra).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, ClassVar

import dapr.ext.workflow
from dapr.ext.workflow import workflow_runtime as _dapr_runtime
from dapr.ext.workflow._durabletask import task as _dapr_task
from dapr.ext.workflow._durabletask import worker as _dapr_worker
from dapr.ext.workflow._durabletask.internal import helpers as _dapr_helpers
from dapr.ext.workflow._durabletask.internal import protos as _dpb
from dapr.ext.workflow.dapr_workflow_context import DaprWorkflowContext
from dapr.ext.workflow.logger import Logger

from wftest._failure import qualified_name
from wftest.converter import DEFAULT_CONVERTER
from wftest.errors import WftestError
from wftest.interop import _dapr_dialect as dialect
from wftest.interop._sdk_executor import SdkExecutor, guard_generator, mark_custom_status, package_dir
from wftest.orchestration._activity import ActivityContext
from wftest.orchestration._foreign import ExecutorOptions
from wftest.orchestration._registry import Registry
from wftest.protos import orchestrator_service_pb2 as pb

# Dapr's private modules, used untyped (their executor classes are not public API)
dapr_runtime: Any = _dapr_runtime
dapr_task: Any = _dapr_task
dapr_worker: Any = _dapr_worker
dapr_helpers: Any = _dapr_helpers
dpb: Any = _dpb

_LOGGER: Any = Logger("wftest.interop.dapr")


def dapr_name(fn: Any) -> str:
    """The name Dapr registers and calls a function under (its alternate name, else ``__name__``)."""
    name = getattr(fn, "_dapr_alternate_name", None) or getattr(fn, "__name__", None)
    if not name or name == "<lambda>":
        raise ValueError(f"cannot take a name from {fn!r}: give one explicitly (name=...)")
    return str(name)


class DaprWorkflow:
    """A Dapr workflow (``def wf(ctx: DaprWorkflowContext, input)``) for wftest's registry: instances of it
    run in the executor Dapr vendors, with a real ``DaprWorkflowContext``.

    Made by :func:`wftest.interop.dapr.workflow` (from a function) or :func:`wftest.interop.dapr.add_registrations`
    (from a ``WorkflowRuntime``, including versioned workflows).
    """

    def __init__(self, name: str, entry: Any = None, *, fn: Any = None,
                 versions: dict[str, Any] | None = None, latest: str | None = None) -> None:
        self.__name__ = name
        self.__wftest_name__ = name
        if fn is not None:
            self.__wrapped__ = fn
        self.fn = fn
        self.entry = entry  # called by Dapr's executor as entry(inner context, input)
        self.versions = dict(versions or {})
        self.latest = latest

    @classmethod
    def from_function(cls, fn: Any, name: str | None = None) -> DaprWorkflow:
        """Wrap a workflow function as ``WorkflowRuntime.register_workflow`` does."""
        user_fn = inspect.unwrap(fn)
        accepts_input, input_model = dapr_runtime._model_protocol.resolve_input(user_fn)

        def entry(ctx: Any, inp: Any = None) -> Any:
            registry = getattr(ctx, "_wftest_registry", None)
            dctx = _AdoptingContext(ctx, registry) if registry is not None else DaprWorkflowContext(ctx)
            if not accepts_input:
                return user_fn(dctx)
            if inp is not None and input_model is not None and not isinstance(inp, input_model):
                inp = dapr_runtime._model_protocol.coerce_to_model(inp, input_model)
            return user_fn(dctx, inp)

        return cls(name or dapr_name(fn), entry, fn=user_fn)

    def resolve(self, version_name: str | None) -> tuple[Any, str | None]:
        """Dapr's registry lookup: the entry for a version (the latest when None) and the version used."""
        if not self.versions:
            return self.entry, None
        version = version_name or self.latest
        if version is None:
            return None, None
        if version not in self.versions:
            raise dapr_worker.VersionNotRegisteredException(
                f"version {version!r} of workflow {self.__name__!r} is not registered "
                f"(registered: {', '.join(sorted(self.versions))})"
            )
        return self.versions[version], version

    def __wftest_executor__(self, registry: Registry, instance_id: str, options: ExecutorOptions) -> DaprExecutor:
        """The executor for an instance of this workflow (called by the engine)."""
        return DaprExecutor(registry, instance_id, options)

    def __call__(self, ctx: Any, input: Any = None) -> Any:
        raise TypeError(
            f"{self!r} runs in Dapr's executor, which the engine chooses by the workflow's name; "
            "do not call it directly"
        )

    def __repr__(self) -> str:
        return f"wftest.interop.dapr.workflow({self.__name__!r})"


class DaprActivity:
    """A Dapr activity (``def act(ctx: WorkflowActivityContext, input)``) for wftest's registry: it runs
    through Dapr's own activity executor and wrapper, so it receives a real ``WorkflowActivityContext``.

    Dapr's ``task_execution_id`` is not available to activities run by wftest's engine (it reads ``""``).
    """

    def __init__(self, name: str, entry: Any, *, fn: Any = None) -> None:
        self.__name__ = name
        self.__wftest_name__ = name
        if fn is not None:
            self.__wrapped__ = fn
        self.fn = fn
        self.entry = entry  # Dapr's activity wrapper: entry(durabletask ActivityContext, input)

    @classmethod
    def from_function(cls, fn: Any, name: str | None = None) -> DaprActivity:
        """Wrap an activity function as ``WorkflowRuntime.register_activity`` does."""
        user_fn = inspect.unwrap(fn)
        return cls(name or dapr_name(fn), dapr_runtime._make_activity_wrapper(user_fn, _LOGGER), fn=user_fn)

    def __call__(self, ctx: ActivityContext, input: Any = None) -> Any:
        executor = dapr_worker._ActivityExecutor(_LOGGER)
        encoded = DEFAULT_CONVERTER.serialize(input)
        if inspect.iscoroutinefunction(self.entry):
            return self._run_async(executor, ctx, encoded)
        output = executor.execute(self.entry, ctx.orchestration_id, self.__name__, ctx.task_id, encoded)
        return DEFAULT_CONVERTER.deserialize(output)

    async def _run_async(self, executor: Any, ctx: ActivityContext, encoded: str | None) -> Any:
        output = await executor.execute_async(self.entry, ctx.orchestration_id, self.__name__, ctx.task_id, encoded)
        return DEFAULT_CONVERTER.deserialize(output)

    def __repr__(self) -> str:
        return f"wftest.interop.dapr.activity({self.__name__!r})"


def adopt_activity(registry: Registry, activity: Any) -> None:
    """Register a function that Dapr code calls as an activity, on first use (as wftest does)."""
    if isinstance(activity, str) or not callable(activity) or isinstance(activity, DaprActivity):
        return
    name = dapr_name(activity)
    existing = registry.get_activity(name)
    same = existing is None or inspect.unwrap(existing) is inspect.unwrap(activity)
    if same and not isinstance(existing, DaprActivity):
        registry.add_named_activity(name, DaprActivity.from_function(activity, name))


def adopt_workflow(registry: Registry, workflow: Any) -> None:
    """Register a function that Dapr code starts as a child workflow, if its name is not registered."""
    if isinstance(workflow, str) or not callable(workflow) or isinstance(workflow, DaprWorkflow):
        return
    name = dapr_name(workflow)
    if registry.get_orchestrator(name) is None:
        registry.add_named_orchestrator(name, DaprWorkflow.from_function(workflow, name))


class _AdoptingContext(DaprWorkflowContext):
    """``DaprWorkflowContext`` that registers the functions it is given on first use."""

    def __init__(self, ctx: Any, registry: Registry) -> None:
        super().__init__(ctx)
        self._wftest_registry = registry

    def call_activity(self, activity: Any, **kwargs: Any) -> Any:
        adopt_activity(self._wftest_registry, activity)
        return super().call_activity(activity, **kwargs)

    def call_child_workflow(self, workflow: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        adopt_workflow(self._wftest_registry, workflow)
        return super().call_child_workflow(workflow, **kwargs)


class _RegistryView:
    """Dapr's ``_Registry`` as its executor uses it, answered from wftest's registry."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def get_orchestrator(self, name: str, version_name: str | None = None) -> tuple[Any, str | None]:
        fn = self._registry.get_orchestrator(name)
        if not isinstance(fn, DaprWorkflow):
            return None, None
        return fn.resolve(version_name)


_BaseContext: Any = dapr_worker._RuntimeOrchestrationContext


class _Context(_BaseContext):  # type: ignore[misc]
    _wftest_registry: Registry

    set_custom_status = mark_custom_status(_BaseContext.set_custom_status)
    run = guard_generator(_BaseContext.run)


class DaprExecutor(SdkExecutor):
    """Runs one instance of a Dapr workflow in ``dapr.ext.workflow._durabletask.worker._OrchestrationExecutor``."""

    sdk_name: ClassVar[str] = "Dapr"
    sdk_dirs: ClassVar[tuple[str, ...]] = (package_dir(dapr.ext.workflow),)
    sdk_nondeterminism_error: ClassVar[type[BaseException]] = dapr_task.NonDeterminismError
    skipped_kinds: ClassVar[frozenset[str]] = frozenset({"historyState", "orchestratorCompleted"})
    sdk_state_errors: ClassVar[tuple[type[BaseException], ...]] = (
        dapr_worker.VersionNotRegisteredException, dapr_task.WorkflowStateError,
    )

    def new_sdk_state(self) -> tuple[Any, Any]:
        executor = dapr_worker._OrchestrationExecutor(_RegistryView(self.registry), _LOGGER)
        ctx = _Context(self.instance_id)
        ctx._wftest_registry = self.registry
        self._versions: dict[int, list[dict[str, Any]]] = {}  # orchestratorStarted index -> version markers
        self._recorded_version: Any = dpb.WorkflowVersion()
        return executor, ctx

    def prepare_replay(self, old_events: Sequence[pb.HistoryEvent]) -> None:
        started: int | None = None
        for index, event in enumerate(old_events):
            if event.HasField("orchestratorStarted"):
                started = index
                continue
            found = dialect.read_marker(event)
            if found is not None and found[0] == "version" and started is not None:
                self._versions.setdefault(started, []).append(found[1])
                dialect.merge_version(self._recorded_version, found[1])

    def to_sdk_event(self, event: pb.HistoryEvent, index: int) -> Any:
        converted = dialect.to_dapr_event(event)
        if converted is not None and index in self._versions and converted.HasField("workflowStarted"):
            for body in self._versions[index]:
                dialect.merge_version(converted.workflowStarted.version, body)
        return converted

    def from_sdk_action(self, action: Any) -> pb.OrchestratorAction:
        return dialect.from_dapr_action(action)

    def skip_check(self, sdk_action: Any, event: pb.HistoryEvent) -> bool:
        # an optional timer (indefinite wait) that an older history lacks: Dapr drops it and shifts ids
        return bool(dapr_helpers.is_optional_timer_action(sdk_action))

    def ignorable_leftover(self, action: Any) -> bool:
        return bool(dapr_helpers.is_optional_timer_action(action))

    def adjust_failure(self, action: pb.OrchestratorAction, error: BaseException) -> None:
        # Dapr records the bare class name; wftest's own errors keep their full name, so the tester
        # recognizes them (a NonDeterministicCallError from strict mode, for one)
        if isinstance(error, WftestError):
            action.completeOrchestration.failureDetails.errorType = qualified_name(type(error))

    def extra_generic_events(self) -> list[str]:
        ctx = self._ctx
        version = dpb.WorkflowVersion()
        if ctx._version_name and ctx._version_name != self._recorded_version.name:
            version.name = ctx._version_name
        new_patches = [p for p in dict.fromkeys(ctx._encountered_patches) if p not in self._recorded_version.patches]
        version.patches.extend(new_patches)
        if not version.name and not version.patches:
            return []
        self._recorded_version.MergeFrom(version)
        return [dialect.version_marker(version).genericEvent.data.value]

    def describe_waiting(self) -> str:
        text = super().describe_waiting()
        return text.replace("(activities, timers or sub-orchestrations)", "(activities, timers or child workflows)")
