"""The workflow linter: find non-deterministic code in orchestrators without running it.

``wftest lint PATHS`` on the command line; from Python::

    from wftest.lint import lint_paths, lint_source

    for finding in lint_paths(["src/workflows"]):
        print(finding.format())          # path:line:col: WF101 datetime.now() reads the wall clock ... (hint)

The linter parses the files (nothing is imported or run), finds the orchestrator functions (registered
with ``add_orchestrator`` and friends, annotated ``ctx: OrchestrationContext``, or generators and
``async def`` functions that call ``ctx.call_activity`` and the like), and reports the constructs in the code
they run that make a replay differ from the first run: wall-clock time, random numbers, uuid4, sleeps,
threads, I/O, iteration over sets, asyncio primitives, foreign awaitables and global mutable state. Each
rule has a stable code (:data:`RULES`); a ``# wftest: ignore[WF101]`` comment (or a bare
``# wftest: ignore``) on the line silences it. docs/lint.md lists the rules with examples.

It complements strict mode (which catches the calls that actually happen at run time) by finding code on
paths no test happened to take.

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from wftest import _lint
from wftest._lint import RULES as RULES
from wftest._lint import Finding as Finding
from wftest._lint import Rule as Rule

__all__ = ["RULES", "Finding", "Rule", "lint_paths", "lint_source"]


def lint_source(source: str | bytes, filename: str = "<string>") -> list[Finding]:
    """Lint the text of one Python file; the findings sorted by line.

    Raises ``SyntaxError`` (with ``filename`` and the line) if the text is not Python.

    Example::

        >>> code = '''
        ... import random
        ... def wf(ctx, _):
        ...     yield ctx.call_activity("roll", input=random.randint(1, 6))
        ... '''
        >>> [f.code for f in lint_source(code)]
        ['WF102']
    """
    return _lint.lint_source(source, filename)


def lint_paths(paths: Sequence[str | Path] | str | Path) -> list[Finding]:
    """Lint ``.py`` files and folders (searched recursively, skipping hidden folders and ``__pycache__``).

    An orchestrator registered in one of the files (``registry.add_orchestrator(place_order)``) is found
    by name in all of them. Raises ``FileNotFoundError`` for a path that does not exist and
    ``SyntaxError`` (naming the file and line) for a file that is not Python.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    return _lint.lint_paths(list(paths))
