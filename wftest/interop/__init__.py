"""Orchestrators written for other SDKs, run unmodified by wftest's engine and tester.

Layout::

    durabletask.py            orchestrator(fn), activity(fn), add_registrations(target, worker)   extra: durabletask
    dapr.py                   workflow(fn), activity(fn), add_registrations(target, runtime),
                              from_dapr_events / to_dapr_events / load_history (Dapr's dialect)    extra: dapr
    _durabletask_executor.py  the adapter around durabletask's own executor (an OrchestrationExecutor)
    _dapr_executor.py         the adapter around the executor Dapr vendors (dapr.ext.workflow._durabletask)
    _dapr_dialect.py          wftest's HistoryEvent <-> Dapr's, field by field
    _sdk_executor.py          what both adapters share: sticky stepping, replay checks, failures
    _protos.py                an import hook that lets durabletask's and Dapr's protobuf schemas share a process

The two public modules import their SDK when they are imported (``import wftest.interop.durabletask``);
this package imports neither, so ``wftest.interop.durabletask`` and ``wftest.interop.dapr`` are loaded on
first attribute access. See docs/interop.md.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from wftest.interop import _protos

# durabletask's and Dapr's generated protobuf modules cannot share a process without this (see _protos)
_protos.install()

__all__ = ["dapr", "durabletask"]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
