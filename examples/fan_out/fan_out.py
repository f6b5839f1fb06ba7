"""Fan-out/fan-in: start many activities at once, then wait for all of them and aggregate.

Every ``call_activity`` made before the ``yield`` is scheduled in the same step, so the activities run
in parallel on however many workers there are. ``when_all`` resumes the orchestrator once every one has
finished, with the results in the order the tasks were given (not the order they finished in). If some
fail, the first failure is raised at the ``yield``, but only after all of them have finished.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from wftest import ActivityContext, OrchestrationContext, Task, when_all

#: a stand-in for a file store
FILES = {
    "docs/a.txt": "to be or not to be",
    "docs/b.txt": "that is the question",
    "docs/c.txt": "",
}


def list_files(ctx: ActivityContext, folder: str) -> list[str]:
    """The files under ``folder``."""
    return sorted(path for path in FILES if path.startswith(folder + "/"))


def count_words(ctx: ActivityContext, path: str) -> int:
    """Count the words of one file (the slow part, done in parallel)."""
    return len(FILES[path].split())


def publish_report(ctx: ActivityContext, report: dict[str, Any]) -> None:
    """Store the report somewhere people can read it."""


def word_count(ctx: OrchestrationContext, folder: str) -> Generator[Task[Any], Any, dict[str, Any]]:
    """Count the words of every file in ``folder``, one activity per file, and publish the total."""
    files = yield ctx.call_activity(list_files, input=folder)
    counts = yield when_all([ctx.call_activity(count_words, input=path) for path in files])
    report = {"folder": folder, "total": sum(counts), "per_file": dict(zip(files, counts, strict=True))}
    yield ctx.call_activity(publish_report, input=report)
    return report
