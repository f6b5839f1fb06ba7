"""Strict mode (net 3): orchestrator code that reads the wall clock, draws random numbers, makes uuid4s,
sleeps, starts threads, opens sockets or files raises ``NonDeterministicCallError``.

The guard is a profile hook (``sys.setprofile``), installed only while orchestrator code runs on the
current thread, so activities and the rest of the process are untouched and there is nothing to patch.
It sees C calls (``time.time``, ``datetime.now``, ``open``) and Python calls (``uuid.uuid4``,
``Thread.start``, freezegun's fakes), and judges the caller: calls made by the standard library's
logging, by wftest itself, or through ``ctx.random()`` are allowed.
"""

from __future__ import annotations

import _thread
import builtins
import contextlib
import datetime as _dt
import functools
import gc
import os
import random
import socket
import sys
import threading
import time
import types
import uuid
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from wftest.errors import NonDeterministicCallError

_WFTEST_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ALLOWED_CALLER_DIRS = (
    *(os.path.dirname(os.path.abspath(m.__file__ or "")) for m in (__import__("logging"), __import__("json"))),
    _WFTEST_DIR,
)
_ALLOWED_CALLER_FILES = {
    os.path.abspath(f)
    for f in (
        __import__("warnings").__file__,
        __import__("linecache").__file__,
        __import__("tokenize").__file__,  # linecache reads source files through tokenize.open (logged tracebacks)
        __import__("traceback").__file__,
        __import__("inspect").__file__,
        __import__("re").__file__,
    )
    if f
}

_HINT_TIME = "use ctx.current_utc_datetime (orchestration time) instead"
_HINT_RANDOM = "use ctx.random() (seeded from the execution) or ctx.new_uuid()"
_HINT_ACTIVITY = "do it in an activity"
_HINT_TIMER = "use yield ctx.create_timer(...) instead"

# C functions, by identity
_C_CALLS: dict[int, tuple[str, str]] = {
    id(f): (name, hint)
    for f, name, hint in [
        (time.time, "time.time()", _HINT_TIME),
        (time.time_ns, "time.time_ns()", _HINT_TIME),
        (time.monotonic, "time.monotonic()", _HINT_TIME),
        (time.monotonic_ns, "time.monotonic_ns()", _HINT_TIME),
        (time.perf_counter, "time.perf_counter()", _HINT_TIME),
        (time.perf_counter_ns, "time.perf_counter_ns()", _HINT_TIME),
        (time.sleep, "time.sleep()", _HINT_TIMER),
        (os.urandom, "os.urandom()", _HINT_RANDOM),
        (builtins.open, "open()", _HINT_ACTIVITY),
        (_thread.start_new_thread, "_thread.start_new_thread()", _HINT_ACTIVITY),
        (socket.getaddrinfo, "socket.getaddrinfo()", _HINT_ACTIVITY),
    ]
}
# methods of the datetime types that read the clock (bound to the class, so matched by owner and name)
_CLOCK_METHODS = {"now", "utcnow", "today"}

# Python functions, by code object
_PY_CALLS: dict[types.CodeType, tuple[str, str]] = {
    uuid.uuid1.__code__: ("uuid.uuid1()", _HINT_RANDOM),
    uuid.uuid4.__code__: ("uuid.uuid4()", _HINT_RANDOM),
    threading.Thread.start.__code__: ("threading.Thread.start()", _HINT_ACTIVITY),
    socket.socket.__init__.__code__: ("socket.socket()", _HINT_ACTIVITY),
    socket.create_connection.__code__: ("socket.create_connection()", _HINT_ACTIVITY),
}
# Random methods implemented in Python; flagged only for the module-level generator (random.randint(...))
_RANDOM_CODES = {
    getattr(random.Random, name).__code__
    for name in ("randint", "randrange", "choice", "choices", "shuffle", "sample", "uniform", "gauss",
                 "normalvariate", "triangular", "betavariate", "expovariate", "randbytes")
    if hasattr(getattr(random.Random, name, None), "__code__")
}
_GLOBAL_RANDOM = getattr(random, "_inst", None)


@functools.cache
def _freezegun_codes_of(api: types.ModuleType) -> dict[types.CodeType, tuple[str, str]]:
    codes: dict[types.CodeType, tuple[str, str]] = {}
    for attr, name, hint in [
        ("fake_time", "time.time()", _HINT_TIME),
        ("fake_monotonic", "time.monotonic()", _HINT_TIME),
        ("fake_perf_counter", "time.perf_counter()", _HINT_TIME),
        ("fake_localtime", "time.localtime()", _HINT_TIME),
        ("fake_gmtime", "time.gmtime()", _HINT_TIME),
    ]:
        fn = getattr(api, attr, None)
        if fn is not None and hasattr(fn, "__code__"):
            codes[fn.__code__] = (name, hint)
    for cls_name, methods in (("FakeDatetime", ("now", "utcnow", "today")), ("FakeDate", ("today",))):
        cls = getattr(api, cls_name, None)
        for method in methods:
            fn = getattr(getattr(cls, method, None), "__func__", None)
            if fn is not None and hasattr(fn, "__code__"):
                codes[fn.__code__] = (f"{'datetime' if cls_name == 'FakeDatetime' else 'date'}.{method}()", _HINT_TIME)
    return codes


def _freezegun_codes() -> dict[types.CodeType, tuple[str, str]]:
    # With freezegun active (the tester freezes activity time), datetime.now() and time.time() are
    # Python fakes; catch those too. Only if freezegun is already loaded (every tester's guard asks: the
    # answer is computed once per freezegun module).
    api = sys.modules.get("freezegun.api")
    return _freezegun_codes_of(api) if api is not None else {}


# Test tooling that runs code at arbitrary points (GC callbacks, timing) is never orchestrator code.
_TOOLING = tuple(f"{os.sep}{name}{os.sep}" for name in ("freezegun", "time_machine", "hypothesis", "_pytest",
                                                          "pluggy", "coverage"))


def _is_user_frame(frame: types.FrameType | None, ignored_codes: set[types.CodeType],
                   allowed_dirs: tuple[str, ...] = _ALLOWED_CALLER_DIRS) -> bool:
    if frame is None:
        return False
    code = frame.f_code
    if code in ignored_codes or code.co_name == "__del__":
        return False  # a GC callback or a finalizer: runs wherever the collector happens to run
    filename = code.co_filename
    if filename.startswith("<"):
        return True
    path = os.path.abspath(filename)
    if path in _ALLOWED_CALLER_FILES or any(tool in path for tool in _TOOLING):
        return False
    return not path.startswith(allowed_dirs)


class StrictGuard:
    """A guard factory for the executor: ``Executor(..., guard=StrictGuard())``.

    Entering the returned context installs the profile hook on this thread; a forbidden call from
    orchestrator code raises ``NonDeterministicCallError`` at the call site. If the code swallows that
    error, it is raised again when the guarded block ends, so it cannot go unnoticed.

    ``trusted_dirs`` are folders whose code is not orchestrator code, like wftest's own: the executors of
    the SDKs that ``wftest.interop`` drives (durabletask, Dapr) run there, between the user's calls.
    """

    def __init__(self, *, trusted_dirs: Sequence[str] = ()) -> None:
        self._py_calls = dict(_PY_CALLS)
        self._freezegun_seen = False
        self.trusted_dirs = tuple(os.path.join(os.path.abspath(d), "") for d in trusted_dirs)
        self._allowed_dirs = _ALLOWED_CALLER_DIRS + self.trusted_dirs

    def trusting(self, dirs: Sequence[str]) -> StrictGuard:
        """A guard like this one that also trusts the code in ``dirs``."""
        return StrictGuard(trusted_dirs=[*self.trusted_dirs, *dirs])

    def __call__(self) -> contextlib.AbstractContextManager[None]:
        if not self._freezegun_seen and "freezegun.api" in sys.modules:
            self._py_calls.update(_freezegun_codes())
            self._freezegun_seen = True
        return _Guarded(self._py_calls, self._allowed_dirs)


class _Guarded:
    """One entry of the guard: the profile hook is on this thread from ``__enter__`` to ``__exit__``.

    (A class rather than a ``contextlib.contextmanager`` generator: the executor enters the guard at every
    step of orchestrator code.)
    """

    __slots__ = ("_allowed", "_chained", "_previous", "_py_calls", "_violations")

    def __init__(self, py_calls: dict[types.CodeType, tuple[str, str]], allowed: tuple[str, ...]) -> None:
        self._py_calls = py_calls
        self._allowed = allowed
        self._violations: list[NonDeterministicCallError] = []
        self._previous: Any = None
        self._chained: Any = None

    def __enter__(self) -> None:
        ignored = {c for c in (getattr(cb, "__code__", None) for cb in gc.callbacks) if c is not None}
        previous = self._previous = sys.getprofile()
        # a Python-level profiler is chained; a C profiler (cProfile's Profile object) cannot be called
        # from here, so it simply sees nothing of orchestrator code while the guard is on
        chained = self._chained = previous if callable(previous) else None
        sys.setprofile(_hook(self._py_calls, self._allowed, ignored, self._violations, chained))

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        previous = self._previous
        if previous is None or self._chained is not None:
            sys.setprofile(previous)
        else:
            # a C profiler: sys.setprofile() cannot take it back, its own enable() re-installs it
            sys.setprofile(None)
            enable = getattr(previous, "enable", None)
            if callable(enable):
                enable()
        if exc_type is None and self._violations:
            raise self._violations[0]


def _hook(
    py_calls: dict[types.CodeType, tuple[str, str]],
    allowed: tuple[str, ...],
    ignored: set[types.CodeType],
    violations: list[NonDeterministicCallError],
    chained: Any,
) -> Callable[[types.FrameType, str, Any], None]:
    """The profile hook of one guard entry."""

    def profile(frame: types.FrameType, event: str, arg: Any) -> None:
        if event == "c_call":
            found = _C_CALLS.get(id(arg))
            if found is None:
                owner = getattr(arg, "__self__", None)
                if isinstance(owner, type) and issubclass(owner, _dt.date) and arg.__name__ in _CLOCK_METHODS:
                    found = (f"{owner.__name__}.{arg.__name__}()", _HINT_TIME)
                elif owner is _GLOBAL_RANDOM and owner is not None:
                    found = (f"random.{arg.__name__}()", _HINT_RANDOM)
            if found is not None and _is_user_frame(frame, ignored, allowed):
                _violate(found, frame, violations)
        elif event == "call":
            code = frame.f_code
            found = py_calls.get(code)
            if found is None and code in _RANDOM_CODES and frame.f_locals.get("self") is _GLOBAL_RANDOM:
                found = (f"random.{code.co_name}()", _HINT_RANDOM)
            if found is not None and _is_user_frame(frame.f_back, ignored, allowed):
                _violate(found, frame.f_back, violations)
        if chained is not None:
            chained(frame, event, arg)

    return profile


_HOOK_CODE = _hook({}, (), set(), [], None).__code__

P = ParamSpec("P")
R = TypeVar("R")


def unwatched(method: Callable[P, R]) -> Callable[P, R]:
    """Run ``method`` (a context API that orchestrator code calls) with the strict-mode hook paused.

    The guard watches orchestrator code, not wftest's: pausing it while the context does its own work
    (registry, payloads, actions) skips the profile events of wftest's internals, which are most of what
    strict mode costs. A function handed to the method (``side_effect(fn)``) runs unwatched too: it is
    where non-deterministic values belong, since its result is recorded.
    """

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        hook = sys.getprofile()
        # (attribute reads, not getattr(): every builtin called here is one more event for the hook)
        if hook.__class__ is not types.FunctionType or hook.__code__ is not _HOOK_CODE:
            return method(*args, **kwargs)
        sys.setprofile(None)
        try:
            return method(*args, **kwargs)
        finally:
            sys.setprofile(hook)

    return call


def _violate(
    found: tuple[str, str], frame: types.FrameType | None, violations: list[NonDeterministicCallError]
) -> None:
    name, hint = found
    where = f"{frame.f_code.co_filename}:{frame.f_lineno} (in {frame.f_code.co_name})" if frame else "unknown"
    error = NonDeterministicCallError(
        f"orchestrator code called {name} at {where}: its result differs on replay; {hint}. "
        "(Strict mode; turn it off with strict=False.)"
    )
    violations.append(error)
    raise error
