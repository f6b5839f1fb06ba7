"""Failure details: the Python view of ``TaskFailureDetails`` and its construction from exceptions.

The shape follows the ``durabletask`` package so that histories are interchangeable: ``errorType`` is
the fully qualified class name (``builtins.ValueError``), the stack trace is the formatted traceback,
and the exception's ``__cause__`` / ``__context__`` chain becomes ``innerFailure``.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from wftest.protos import orchestrator_service_pb2 as pb

_MAX_INNER_DEPTH = 10


def qualified_name(cls: type) -> str:
    """``module.QualName`` of a class, as durabletask writes ``errorType`` (``builtins.ValueError``)."""
    module = getattr(cls, "__module__", None)
    name = getattr(cls, "__qualname__", None) or cls.__name__
    return f"{module}.{name}" if module else name


@dataclass(frozen=True)
class FailureDetails:
    """Why a task or an orchestration failed.

    Attributes:
        message: the error message (``str(exception)``).
        error_type: the fully qualified exception class name, e.g. ``builtins.ValueError``. Histories
            written by older SDKs may hold bare names (``ValueError``).
        stack_trace: the formatted traceback, when one was recorded.
        inner_failure: the cause (``raise ... from err``), if any.
        is_non_retriable: the error asked retry policies to stop at once.
        properties: extra structured properties recorded with the failure.
    """

    message: str
    error_type: str
    stack_trace: str | None = None
    inner_failure: FailureDetails | None = None
    is_non_retriable: bool = False
    properties: dict[str, Any] | None = None

    def is_caused_by(self, error_type: str | type[BaseException]) -> bool:
        """Whether this failure (or any inner failure) was raised as ``error_type``.

        The chain of causes (``inner_failure``, from ``raise ... from err`` or an exception raised while
        handling another) is walked to its end. A class matches its subclasses that are imported in this
        process; a string matches the qualified name, or the bare class name when either side is
        unqualified, and also the subclasses of the class it names when that class's module is already
        imported (wftest never imports a module by name)::

            err.details.is_caused_by(ValueError)                   # a LookupError would not match, a subclass would
            err.details.is_caused_by("myapp.errors.OutOfStock")

        The types are compared by name, so failures read back from a saved history match too.
        """
        if isinstance(error_type, str):
            names = {error_type}
            loaded = _loaded_class(error_type)
            if loaded is not None:
                names.update(qualified_name(c) for c in _with_subclasses(loaded))
        elif isinstance(error_type, type) and issubclass(error_type, BaseException):
            names = {qualified_name(c) for c in _with_subclasses(error_type)}
        else:
            raise TypeError(f"is_caused_by() takes an exception class or a name, not {error_type!r}")
        failure: FailureDetails | None = self
        while failure is not None:
            if any(_names_match(failure.error_type, name) for name in names):
                return True
            failure = failure.inner_failure
        return False

    def to_proto(self) -> pb.TaskFailureDetails:
        """This failure as a ``TaskFailureDetails`` message."""
        message = pb.TaskFailureDetails(
            errorType=self.error_type, errorMessage=self.message, isNonRetriable=self.is_non_retriable
        )
        if self.stack_trace is not None:
            message.stackTrace.value = self.stack_trace
        if self.inner_failure is not None:
            message.innerFailure.CopyFrom(self.inner_failure.to_proto())
        for key, value in (self.properties or {}).items():
            json_format.ParseDict(value, message.properties[key])
        return message

    @classmethod
    def from_proto(cls, message: pb.TaskFailureDetails) -> FailureDetails:
        """Read a ``TaskFailureDetails`` message."""
        return cls(
            message=message.errorMessage,
            error_type=message.errorType,
            stack_trace=message.stackTrace.value if message.HasField("stackTrace") else None,
            inner_failure=cls.from_proto(message.innerFailure) if message.HasField("innerFailure") else None,
            is_non_retriable=message.isNonRetriable,
            properties={k: json_format.MessageToDict(v) for k, v in message.properties.items()} or None,
        )

    @classmethod
    def from_exception(cls, error: BaseException) -> FailureDetails:
        """Describe an exception, its traceback and its chain of causes."""
        return _from_exception(error, set())


def _from_exception(error: BaseException, seen: set[int]) -> FailureDetails:
    # The chain ends at a cycle, after _MAX_INNER_DEPTH failures (as durabletask-python bounds it), at a
    # cause that is not an Exception, and where ``raise ... from None`` suppressed the context.
    seen.add(id(error))
    cause = error.__cause__
    if cause is None and not error.__suppress_context__:
        cause = error.__context__
    inner = None
    if isinstance(cause, Exception) and id(cause) not in seen and len(seen) < _MAX_INNER_DEPTH:
        inner = _from_exception(cause, seen)
    stack = "".join(traceback.format_tb(error.__traceback__)) if error.__traceback__ else None
    return FailureDetails(
        message=str(error),
        error_type=qualified_name(type(error)),
        stack_trace=stack,
        inner_failure=inner,
        is_non_retriable=bool(getattr(error, "is_non_retriable", False)),
    )


def _with_subclasses(cls: type) -> list[type]:
    found: list[type] = []
    stack = [cls]
    while stack:
        candidate = stack.pop()
        if candidate in found:
            continue
        found.append(candidate)
        stack.extend(candidate.__subclasses__())
    return found


def _loaded_class(name: str) -> type[BaseException] | None:
    """The exception class called ``module.QualName`` if its module is already imported, else None."""
    import sys

    # the module is the longest prefix that is a loaded module: "a.b.C.D" tries "a.b.C", then "a.b", then "a"
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        target: object = module
        for attribute in parts[cut:]:
            target = getattr(target, attribute, None)
            if target is None:
                return None
        if isinstance(target, type) and issubclass(target, BaseException):
            return target
        return None
    return None


def _names_match(stored: str, wanted: str) -> bool:
    if not stored or not wanted:
        return False
    if stored == wanted:
        return True
    if "." in stored and "." in wanted:
        return False
    return stored.rsplit(".", 1)[-1] == wanted.rsplit(".", 1)[-1]
