"""Loading the durabletask package's protobuf schema and Dapr's fork of it into one process.

Both schemas declare the same top-level messages (``HistoryEvent``, ``OrchestrationStatus``, ...) without
a proto package, so whichever is imported second fails in protobuf's default descriptor pool::

    TypeError: Couldn't build proto file into descriptor pool: duplicate symbol 'OrchestrationStatus'

(durabletask's ``durabletask/internal/orchestrator_service.proto`` against Dapr's vendored
``dapr.ext.workflow._durabletask.internal``, whose files are named ``orchestration.proto``,
``history_events.proto``, ...). wftest's own schema declares ``package wftest.protos`` and never collides.

:func:`install` adds an import hook (a ``sys.meta_path`` finder) that loads the generated ``*_pb2``
modules of Dapr's fork under a proto package of their own (``wftest.isolated.dapr``), and, if Dapr's fork
is already loaded without it, durabletask's under ``wftest.isolated.durabletask``. A package changes only
the messages' full names: the wire format, the JSON mapping, the Python class names and the gRPC method
paths (string literals in the ``*_pb2_grpc`` modules) stay the same, so both SDKs work unchanged.

The hook must be in place before the second of the two packages is imported; ``import wftest`` installs
it. It touches nothing else: every other import goes through the normal machinery.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

#: the generated modules of Dapr's vendored durabletask fork
DAPR_PROTO_PREFIX = "dapr.ext.workflow._durabletask.internal."
#: the generated module of the durabletask package
DURABLETASK_PROTO_MODULE = "durabletask.internal.orchestrator_service_pb2"

DAPR_PACKAGE = "wftest.isolated.dapr"
DURABLETASK_PACKAGE = "wftest.isolated.durabletask"

_ADD_FILE_CALL = "_descriptor_pool.Default().AddSerializedFile("
_lock = threading.Lock()


def install() -> None:
    """Install the import hook (idempotent; cheap: nothing is imported until a matching module is)."""
    with _lock:
        if not any(isinstance(finder, _IsolatingFinder) for finder in sys.meta_path):
            sys.meta_path.insert(0, _IsolatingFinder())


def is_isolated(module: ModuleType) -> bool:
    """True if a generated protobuf module was loaded under an isolating package by this hook."""
    return bool(getattr(module, "__wftest_isolated__", False))


def _dapr_loaded_unisolated() -> bool:
    """Whether Dapr's fork already sits in the default pool under its own (package-less) names."""
    for name, module in list(sys.modules.items()):
        if name.startswith(DAPR_PROTO_PREFIX) and name.endswith("_pb2") and not is_isolated(module):
            return True
    return False


class _IsolatingFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if fullname.startswith(DAPR_PROTO_PREFIX) and fullname.endswith("_pb2"):
            package, folder = DAPR_PACKAGE, "wftest/isolated/dapr/"
        elif fullname == DURABLETASK_PROTO_MODULE and _dapr_loaded_unisolated():
            package, folder = DURABLETASK_PACKAGE, "wftest/isolated/durabletask/"
        else:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not spec.origin:
            return None
        spec.loader = _IsolatingLoader(spec.loader, spec.origin, package, folder)
        return spec


class _IsolatingLoader(importlib.abc.Loader):
    """Runs a generated ``*_pb2`` module with its serialized file descriptor moved into ``package``."""

    def __init__(self, inner: Any, origin: str, package: str, folder: str) -> None:
        self._inner = inner
        self._origin = origin
        self._package = package
        self._folder = folder

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        source = self._inner.get_source(module.__name__)
        if source is None or _ADD_FILE_CALL not in source:
            # not the shape protoc generates: load it as it is
            self._inner.exec_module(module)
            return
        package, folder = self._package, self._folder

        def add_file(serialized: bytes) -> Any:
            from google.protobuf import descriptor_pool

            return descriptor_pool.Default().AddSerializedFile(
                rename_package(serialized, package, lambda name: _moved(name, folder))
            )

        module.__dict__["__wftest_add_file__"] = add_file
        module.__dict__["__wftest_isolated__"] = True
        code = compile(source.replace(_ADD_FILE_CALL, "__wftest_add_file__("), self._origin, "exec")
        exec(code, module.__dict__)


def _moved(file_name: str, folder: str) -> str:
    return file_name if file_name.startswith("google/protobuf/") else folder + file_name


def rename_package(serialized: bytes, package: str, rename_file: Callable[[str], str]) -> bytes:
    """A serialized ``FileDescriptorProto`` moved from no package into ``package``.

    Type references to the file's own (package-less) types are qualified with the package; references
    to ``google.protobuf`` types are left alone. The file and its dependencies are renamed with
    ``rename_file`` so that two copies of a schema do not collide by file name either.
    """
    from google.protobuf import descriptor_pb2

    file = descriptor_pb2.FileDescriptorProto.FromString(serialized)
    if file.package:
        raise ValueError(f"{file.name} already declares package {file.package!r}; nothing to isolate")
    file.package = package
    file.name = rename_file(file.name)
    dependencies = [rename_file(name) for name in file.dependency]
    del file.dependency[:]
    file.dependency.extend(dependencies)

    def qualify(type_name: str) -> str:
        if type_name.startswith(".") and not type_name.startswith(".google.protobuf."):
            return f".{package}{type_name}"
        return type_name

    def fix_fields(fields: Any) -> None:
        for field in fields:
            if field.type_name:
                field.type_name = qualify(field.type_name)
            if field.extendee:
                field.extendee = qualify(field.extendee)

    def fix_message(message: Any) -> None:
        fix_fields(message.field)
        fix_fields(message.extension)
        for nested in message.nested_type:
            fix_message(nested)

    for message in file.message_type:
        fix_message(message)
    fix_fields(file.extension)
    for service in file.service:
        for method in service.method:
            method.input_type = qualify(method.input_type)
            method.output_type = qualify(method.output_type)
    return file.SerializeToString()
