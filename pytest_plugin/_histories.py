"""Saved histories as pytest items: each ``*.history.json`` / ``*.history.pb`` file under the folders
(or globs) of the ``wftest_histories`` ini option is replayed against today's code.

Imported only when such a file is collected, so plain test runs never load the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wftest import history as history_files
from wftest.errors import HistoryFileError
from wftest.testing._replayer import Replayer, ReplayResult


class ReplayFailed(Exception):
    """Raised by a history item whose replay failed; reported as the diff and timeline."""

    def __init__(self, result: ReplayResult) -> None:
        super().__init__(result.report())
        self.result = result


class HistoryFile(pytest.File):
    """One history file; it holds one instance's history, collected as one item."""

    def collect(self) -> Iterator[pytest.Item]:
        """One item named by the history's instance id (or a failing item if the file does not load)."""
        try:
            loaded = history_files.load(self.path)
        except HistoryFileError as err:
            yield BadHistoryItem.from_parent(self, name="load", error=err)
            return
        yield HistoryItem.from_parent(self, name=loaded.instance_id, history=loaded)


class HistoryItem(pytest.Item):
    """Replays one saved history with the configured registry."""

    def __init__(self, *, history: history_files.History, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history = history

    def runtest(self) -> None:
        """Replay the history with the configured registry; raise ``ReplayFailed`` on a difference."""
        from pytest_plugin.plugin import _registry

        registry = _registry(self.config)
        if registry is None:
            raise pytest.UsageError(
                "wftest_histories is set but no registry: set the ini option wftest_registry = package.module:registry"
            )
        result = Replayer(registry).replay(self.history)
        if not result.ok:
            raise ReplayFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """The replay diff and timeline, without a traceback."""
        if isinstance(excinfo.value, ReplayFailed):
            return f"replay of {self.path.name} failed:\n{excinfo.value.result.report()}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """``replay <file>::<instance id>``."""
        return self.path, None, f"replay {self.path.name}::{self.name}"


class BadHistoryItem(pytest.Item):
    """A history file that does not load: fails with the file, event index and field."""

    def __init__(self, *, error: HistoryFileError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        """Fail with the load error."""
        raise self.error

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """``cannot load history file: <file, event index, field>``."""
        return f"cannot load history file: {self.error}"

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """``load <file>``."""
        return self.path, None, f"load {self.path.name}"
