"""``Replayer``: replay saved histories against today's code.

The question a CI job asks before deploying a change: would the instances in flight still replay?
Histories of running instances replay up to their last event (the common case: mid-flight);
completed ones must also reproduce their completion and output.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from wftest import history as history_files
from wftest.converter import DEFAULT_CONVERTER, Converter
from wftest.errors import NonDeterminismError, NotRegisteredError, OrchestrationStateError, WftestError
from wftest.hooks import Hooks
from wftest.orchestration import DEFAULT_MAXIMUM_TIMER_INTERVAL, Registry
from wftest.orchestration._foreign import ExecutorOptions, new_executor
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.testing._timeline import render_timeline

HistoryLike = history_files.History | Sequence[pb.HistoryEvent] | str | Path


def load_registry(spec: str | Registry) -> Registry:
    """A registry object, or ``"package.module:attribute"`` naming one."""
    if isinstance(spec, Registry):
        return spec
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"expected 'module:attribute' naming a wftest.Registry, got {spec!r}")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot load the registry {spec!r}: {err}") from err
    if not isinstance(obj, Registry):
        raise ValueError(f"{spec!r} is a {type(obj).__qualname__}, not a wftest.Registry")
    return obj


@dataclass(frozen=True)
class ReplayResult:
    """The outcome of replaying one history."""

    history: history_files.History
    error: WftestError | None

    @property
    def ok(self) -> bool:
        """True if today's code reproduced the history."""
        return self.error is None

    @property
    def name(self) -> str:
        """``file.history.json::instance-id`` (or the instance id alone)."""
        where = self.history.path.name if self.history.path is not None else ""
        return f"{where}::{self.history.instance_id}" if where else self.history.instance_id

    def report(self) -> str:
        """The error (with its side-by-side diff) and the history's timeline; ``"ok"`` on success."""
        if self.error is None:
            return f"{self.name}: ok"
        return f"{self.name}: {self.error}\n\n{render_timeline(self.history.events)}"

    def raise_for_error(self) -> None:
        """Raise the replay error, if any."""
        if self.error is not None:
            raise self.error


class Replayer:
    """Replays histories with the orchestrators of a registry.

    Example::

        results = Replayer("myapp.workflows:registry").replay_many(Path("tests/histories").glob("*.history.*"))
        failures = [r for r in results if not r.ok]
    """

    def __init__(
        self,
        registry: Registry | str,
        *,
        converter: Converter = DEFAULT_CONVERTER,
        strict: bool = True,
        maximum_timer_interval: timedelta | None = DEFAULT_MAXIMUM_TIMER_INTERVAL,
        hooks: Hooks | None = None,
    ) -> None:
        self.registry = load_registry(registry)
        self.converter = converter
        self.strict = strict
        self.maximum_timer_interval = maximum_timer_interval
        #: plugins whose context propagation (``wftest_extract_context``) runs around the replayed code
        self.hooks = hooks

    def replay(self, history: HistoryLike) -> ReplayResult:
        """Replay one history (a loaded ``History``, a list of events, or a file path)."""
        loaded = _as_history(history)
        if self.registry.get_orchestrator(loaded.orchestrator) is None:
            names = self.registry.orchestrator_names
            return ReplayResult(loaded, NotRegisteredError("orchestrator", loaded.orchestrator, names))
        hooks = self.hooks
        executor = new_executor(self.registry, loaded.instance_id, loaded.orchestrator, ExecutorOptions(
            converter=self.converter, maximum_timer_interval=self.maximum_timer_interval, strict=self.strict,
            propagation=hooks if hooks is not None and hooks.propagates_context else None,
        ))
        try:
            executor.execute(loaded.events, [])
        except (NonDeterminismError, OrchestrationStateError) as err:
            return ReplayResult(loaded, err)
        return ReplayResult(loaded, None)

    def replay_many(self, histories: Iterable[HistoryLike]) -> list[ReplayResult]:
        """Replay each history; a folder path expands to the history files in it (recursively)."""
        results: list[ReplayResult] = []
        for item in histories:
            if isinstance(item, (str, Path)) and Path(item).is_dir():
                results.extend(self.replay(p) for p in find_history_files(Path(item)))
            else:
                results.append(self.replay(item))
        return results


def find_history_files(folder: Path) -> list[Path]:
    """The ``*.history.json`` and ``*.history.pb`` files under ``folder``, sorted."""
    return sorted(
        p for p in folder.rglob("*") if p.name.endswith((history_files.JSON_SUFFIX, history_files.PB_SUFFIX))
    )


def _as_history(item: HistoryLike) -> history_files.History:
    if isinstance(item, history_files.History):
        return item
    if isinstance(item, (str, Path)):
        return history_files.load(item)
    events = list(item)
    history_files.validate(events)
    return history_files.History.of(events)
