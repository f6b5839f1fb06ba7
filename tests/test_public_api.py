"""The public surface: ``wftest.__all__`` is sorted, complete and documented."""

from __future__ import annotations

import inspect

import wftest


def test_all_is_sorted() -> None:
    assert list(wftest.__all__) == sorted(wftest.__all__)


# Public submodules re-exported on purpose (``wftest.history.load(...)``); other submodules are just
# packages that importing wftest loads.
PUBLIC_MODULES = {"history"}


def test_all_names_every_public_attribute() -> None:
    public = {
        name
        for name, value in vars(wftest).items()
        if not name.startswith("_") and (not inspect.ismodule(value) or name in PUBLIC_MODULES)
    }
    assert public == set(wftest.__all__)


def test_every_public_callable_has_a_docstring() -> None:
    undocumented = [
        name for name in wftest.__all__ if callable(getattr(wftest, name)) and not getattr(wftest, name).__doc__
    ]
    assert undocumented == []


def test_public_methods_have_docstrings() -> None:
    missing = []
    for name in wftest.__all__:
        obj = getattr(wftest, name)
        if not inspect.isclass(obj) or obj.__module__.startswith("wftest.protos"):
            continue
        for attr, value in vars(obj).items():
            if attr.startswith("_") or not (inspect.isfunction(value) or isinstance(value, property)):
                continue
            # inspect.getdoc() also finds the docstring of the method a class implements (e.g. a Backend's)
            if not inspect.getdoc(getattr(obj, attr)):
                missing.append(f"{name}.{attr}")
    assert missing == []
