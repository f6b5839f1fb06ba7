"""``wftest._frozen_time``: freezegun's patches switched on and off cheaply, and every place put back."""

from __future__ import annotations

import datetime as dt
import sys
import time
import types
from collections.abc import Iterator
from datetime import datetime

import pytest
from freezegun import api

from wftest._frozen_time import FrozenTime

WHEN = datetime(2024, 5, 17, 8, 30)


@pytest.fixture
def frozen() -> FrozenTime:
    # no real-time callers: these tests call the clock right from pytest's frames
    return FrozenTime(api, ("_pytest", "pytest", "pluggy", "wftest"), ())


@pytest.fixture
def make_module() -> Iterator[types.SimpleNamespace]:
    names: list[str] = []

    def make(source: str) -> types.ModuleType:
        name = f"frozen_time_probe_{len(names)}"  # not under a never-patched prefix
        module = types.ModuleType(name)
        exec(source, module.__dict__)
        sys.modules[name] = module
        names.append(name)
        return module

    yield types.SimpleNamespace(make=make)
    for name in names:
        sys.modules.pop(name, None)


def test_the_clock_is_frozen_while_active_and_real_afterwards(frozen: FrozenTime) -> None:
    patch = frozen.activate(WHEN)
    try:
        assert dt.datetime.now() == WHEN
        assert time.time() == WHEN.replace(tzinfo=dt.timezone.utc).timestamp()
        patch.move_to(datetime(2030, 1, 1))
        assert dt.date.today() == dt.date(2030, 1, 1)
    finally:
        patch.stop()
    assert time.time is api.real_time and dt.datetime is api.real_datetime and dt.date is api.real_date
    assert dt.datetime.now().year > 2024
    assert not api.freeze_factories


def test_a_module_that_imported_the_clock_before_is_patched_while_active(
    frozen: FrozenTime, make_module: types.SimpleNamespace
) -> None:
    probe = make_module.make("from time import time as now\nfrom datetime import datetime\n")
    patch = frozen.activate(WHEN)
    try:
        assert probe.datetime.now() == WHEN
        assert probe.now() == WHEN.replace(tzinfo=dt.timezone.utc).timestamp()
    finally:
        patch.stop()
    assert probe.now is api.real_time and probe.datetime is api.real_datetime


def test_a_module_imported_while_frozen_gets_the_real_clock_back(
    frozen: FrozenTime, make_module: types.SimpleNamespace
) -> None:
    patch = frozen.activate(WHEN)
    try:
        probe = make_module.make("from datetime import datetime\n")
        assert probe.datetime is api.FakeDatetime  # it bound the fake that datetime.datetime was
    finally:
        patch.stop()
    assert probe.datetime is api.real_datetime
    again = frozen.activate(WHEN)  # and it is patched like the others from now on
    try:
        assert probe.datetime.now() == WHEN
    finally:
        again.stop()


def test_a_place_that_holds_something_else_is_left_alone(
    frozen: FrozenTime, make_module: types.SimpleNamespace
) -> None:
    probe = make_module.make("from time import time\n")
    frozen.activate(WHEN).stop()  # the scan has recorded probe.time
    probe.time = replacement = lambda: 42.0  # e.g. the test's own monkeypatch
    patch = frozen.activate(WHEN)
    try:
        assert probe.time is replacement
    finally:
        patch.stop()
    assert probe.time is replacement


def test_nested_activations_unfreeze_when_the_last_one_stops(frozen: FrozenTime) -> None:
    outer = frozen.activate(WHEN)
    inner = frozen.activate(datetime(2031, 1, 1))
    assert dt.datetime.now() == datetime(2031, 1, 1)
    inner.stop()
    assert dt.datetime.now() == WHEN
    inner.stop()  # stopping twice changes nothing
    assert dt.datetime.now() == WHEN
    outer.stop()
    assert dt.datetime.now().year > 2024


def test_an_outer_freeze_of_the_test_is_kept(frozen: FrozenTime) -> None:
    with api.freeze_time("2020-02-02"):
        patch = frozen.activate(WHEN)
        assert dt.datetime.now() == WHEN
        patch.stop()
        assert dt.datetime.now() == datetime(2020, 2, 2)
    assert dt.datetime.now().year > 2024
    assert time.time is api.real_time
