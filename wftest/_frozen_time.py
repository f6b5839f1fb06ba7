"""Activity time with freezegun, cheap to switch on and off (the default time patch of ``wftest.hooks``).

``freeze_time(...).start()`` scans every loaded module for references to the clock (``time.time``,
``datetime.datetime``, ...) and replaces them with freezegun's fakes; ``stop()`` puts them back. The scan
calls ``dir()`` on every module: milliseconds. Activities must read the virtual time and nothing else may
(orchestrator code, test code, tooling), so the patch goes on right before an activity and off as soon
as something else runs: far too often for a scan each time.

:class:`FrozenTime` scans once per process, remembers where the references are, and afterwards switches
exactly those places (plus the clock functions of the ``time`` and ``datetime`` modules, as freezegun
does) on and off: microseconds. Modules imported since the last switch are scanned when next seen, and
modules imported while the time was frozen get the real functions back when it is switched off (they
may have bound a fake: ``from datetime import datetime``). The fakes, freezegun's stack of active freezes
and their semantics are freezegun's own; this module only replaces the scan. It relies on names inside
``freezegun.api`` (stable from 1.4 to 1.5); :func:`frozen_time` returns None when they are missing, and
the caller then uses ``freeze_time`` itself.

A place that does not hold the real function when the time is switched on is left alone (a user's own
``freeze_time`` or ``monkeypatch`` is already there), and is not touched when it is switched off.
"""

from __future__ import annotations

import asyncio
import copyreg
import datetime as _dt
import sys
import time
import uuid
import warnings
from datetime import datetime, timedelta
from typing import Any

_MISSING = object()
_FREEZE_STACKS = ("freeze_factories", "tz_offsets", "ignore_lists", "tick_flags")
# (name in freezegun.api of the real thing, of the fake, the module it lives in, its name there)
_CLOCK = [
    ("real_datetime", "FakeDatetime", _dt, "datetime"),
    ("real_date", "FakeDate", _dt, "date"),
    ("real_time", "fake_time", time, "time"),
    ("real_monotonic", "fake_monotonic", time, "monotonic"),
    ("real_perf_counter", "fake_perf_counter", time, "perf_counter"),
    ("real_localtime", "fake_localtime", time, "localtime"),
    ("real_gmtime", "fake_gmtime", time, "gmtime"),
    ("real_strftime", "fake_strftime", time, "strftime"),
    ("real_time_ns", "fake_time_ns", time, "time_ns"),
    ("real_monotonic_ns", "fake_monotonic_ns", time, "monotonic_ns"),
    ("real_perf_counter_ns", "fake_perf_counter_ns", time, "perf_counter_ns"),
]


class FrozenTime:
    """freezegun's patches for one process, switched on for the duration of each :meth:`activate`.

    Args:
        api: the ``freezegun.api`` module.
        never_patched: module name prefixes whose references are never replaced (test tooling, wftest);
            freezegun's default ignore list is added.
        real_time_callers: module name prefixes that read the real clock even while the time is frozen
            (freezegun looks a few frames up the stack of each ``time.time()`` call).
    """

    def __init__(self, api: Any, never_patched: tuple[str, ...], real_time_callers: tuple[str, ...]) -> None:
        self._api = api
        # as freezegun does, its own default ignore list (threading, queue, ...) is never patched either:
        # threading.Condition.wait(timeout) must not read a frozen monotonic clock
        settings = getattr(sys.modules.get("freezegun.config"), "settings", None)
        defaults = tuple(getattr(settings, "default_ignore_list", ()))
        self._never_patched = (*never_patched, *defaults)
        self._ignore = (*real_time_callers, *defaults)
        self._core: list[tuple[Any, str, Any, Any]] = []
        for real_name, fake_name, owner, attribute in _CLOCK:
            real, fake = getattr(api, real_name, _MISSING), getattr(api, fake_name, _MISSING)
            if real is not _MISSING and fake is not _MISSING and hasattr(owner, attribute):
                self._core.append((owner, attribute, real, fake))
        # uuid1() reads the clock through these when they are None (freezegun sets them so while frozen)
        generate_time = getattr(api, "uuid_generate_time_attr", None)
        if generate_time:
            self._core.append((uuid, generate_time, getattr(api, "real_uuid_generate_time", None), None))
        self._core.append((uuid, "_UuidCreate", getattr(api, "real_uuid_create", None), None))
        self._fake_of = {id(real): fake for _, _, real, fake in self._core if real is not None}
        self._real_of = {id(fake): real for _, _, real, fake in self._core if fake is not None}
        self._sites: list[tuple[Any, str, Any, Any]] = []  # (module, attribute, real, fake) found by the scan
        # what a switch visits: (the module's namespace, attribute, real, fake); dict operations are the
        # cheapest way to read and set a module attribute
        self._targets = tuple((vars(owner), attribute, real, fake) for owner, attribute, real, fake in self._core)
        self._known: set[str] = set()
        self._known_count = -1
        self._loop_class: type | None = None
        self._changed: list[tuple[dict[str, Any], str, Any]] = []
        self._pickled: list[Any] = []
        self._loop_time: Any = _MISSING
        self._depth = 0

    def activate(self, now: datetime) -> FrozenTimePatch:
        """Freeze the clock at ``now`` (naive UTC) until the returned patch is stopped."""
        api = self._api
        if len(sys.modules) != self._known_count:
            self._scan_new_modules()
        if self._depth == 0:
            self._switch_on()
        self._depth += 1
        factory = api.FrozenDateTimeFactory(now)
        api.freeze_factories.append(factory)
        api.tz_offsets.append(timedelta(0))
        api.ignore_lists.append(self._ignore)
        api.tick_flags.append(False)
        return FrozenTimePatch(self, factory)

    def _deactivate(self, factory: Any) -> None:
        api = self._api
        factories = api.freeze_factories
        for index in range(len(factories) - 1, -1, -1):
            if factories[index] is factory:
                for name in _FREEZE_STACKS:
                    del getattr(api, name)[index]
                break
        else:
            return  # stopped already
        self._depth -= 1
        if self._depth == 0:
            self._switch_off()

    # -- switching -----------------------------------------------------------------------------------

    def _switch_on(self) -> None:
        changed: list[tuple[dict[str, Any], str, Any]] = []
        append = changed.append
        for namespace, attribute, real, fake in self._targets:
            if namespace.get(attribute, _MISSING) is real:
                namespace[attribute] = fake
                append((namespace, attribute, real))
        self._changed = changed
        api = self._api
        uuid._last_timestamp = None  # type: ignore[attr-defined]
        pickled = self._pickled
        for real, pickler in ((api.real_datetime, "pickle_fake_datetime"), (api.real_date, "pickle_fake_date")):
            function = getattr(api, pickler, None)
            if function is not None and real not in copyreg.dispatch_table:
                copyreg.dispatch_table[real] = function
                pickled.append(real)
        # asyncio's event loops keep the real monotonic clock, or asyncio.sleep() would never end
        loop_class = self._event_loop_class()
        self._loop_time = loop_class.__dict__.get("time", _MISSING)
        real_monotonic = api.real_monotonic
        loop_class.time = lambda self: real_monotonic()  # type: ignore[attr-defined]

    def _switch_off(self) -> None:
        changed, self._changed = self._changed, []
        for namespace, attribute, real in changed:
            namespace[attribute] = real
        while self._pickled:
            copyreg.dispatch_table.pop(self._pickled.pop(), None)
        loop_class = self._event_loop_class()
        if self._loop_time is _MISSING:
            del loop_class.time  # type: ignore[attr-defined]
        else:
            loop_class.time = self._loop_time  # type: ignore[attr-defined]
        uuid._last_timestamp = None  # type: ignore[attr-defined]
        if len(sys.modules) != self._known_count:
            # imported while the time was frozen: may hold fakes (``from datetime import datetime``)
            self._scan_new_modules(restore=True)

    def _event_loop_class(self) -> type:
        if self._loop_class is None:
            loop = asyncio.new_event_loop()
            loop.close()
            self._loop_class = type(loop)
        return self._loop_class

    # -- finding the references ------------------------------------------------------------------------

    def _scan_new_modules(self, *, restore: bool = False) -> None:
        """Record the references to the clock in modules not seen yet (first giving back the real ones)."""
        known = self._known
        new = [name for name in list(sys.modules) if name not in known]
        known.update(new)
        self._known_count = len(sys.modules)
        api_name = self._api.__name__
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name in new:
                module = sys.modules.get(name)
                if (module is None or name == api_name or name.startswith(self._never_patched)
                        or name.endswith(".six.moves")
                        or getattr(module, "__name__", None) in (None, "datetime", "time")):
                    continue
                try:
                    attributes = dir(module)
                except Exception:
                    continue
                for attribute in attributes:
                    try:
                        value = getattr(module, attribute)
                    except Exception:
                        continue
                    if restore and id(value) in self._real_of:
                        value = self._real_of[id(value)]
                        setattr(module, attribute, value)
                    fake = self._fake_of.get(id(value))
                    if fake is not None:
                        self._sites.append((module, attribute, value, fake))
                        self._targets += ((vars(module), attribute, value, fake),)


class FrozenTimePatch:
    """One activation of :class:`FrozenTime` (a ``wftest.hooks.TimePatch``)."""

    def __init__(self, owner: FrozenTime, factory: Any) -> None:
        self._owner = owner
        self._factory = factory

    def move_to(self, when: datetime) -> None:
        """Make the frozen clock read ``when`` (naive UTC)."""
        self._factory.move_to(when)

    def stop(self) -> None:
        """Unfreeze (the real clock is back once no other activation is on)."""
        self._owner._deactivate(self._factory)


_PROCESS: list[FrozenTime] = []  # freezegun's patches are process-wide, and so is the record of them


def frozen_time(never_patched: tuple[str, ...], real_time_callers: tuple[str, ...]) -> FrozenTime | None:
    """The process's :class:`FrozenTime` (created on first use); None if this freezegun lacks what it needs."""
    if _PROCESS:
        return _PROCESS[0]
    from freezegun import api

    needed = (*_FREEZE_STACKS, "FrozenDateTimeFactory", "real_datetime", "real_date", "real_monotonic",
              "fake_time", "FakeDatetime")
    if not all(hasattr(api, name) for name in needed):
        return None
    _PROCESS.append(FrozenTime(api, never_patched, real_time_callers))
    return _PROCESS[0]
