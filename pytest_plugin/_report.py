"""``--wftest-report=DIR``: the timeline picture of a failing test's tester run, written as an HTML page.

Imported by the plugin only when a test fails with the option set, so a passing session pays nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


def write_failure_page(directory: str, nodeid: str, testers: list[Any]) -> tuple[Path | None, str]:
    """Write ``DIR/<test>.html`` for the last run of the test's testers; returns (path, a line for the report).

    The run is the one the "wftest timeline" section shows; a run that stopped without a result (stalled,
    over ``max_steps``) is drawn as far as it got. Returns ``(None, "")`` if no tester ran.
    """
    from wftest.report import write_html_timeline

    result = next((t.last_result for t in reversed(testers) if t.last_result is not None), None)
    if result is None:
        for tester in reversed(testers):
            try:
                result = tester.result()
            except Exception:  # no run started: nothing to draw
                continue
            finally:
                tester.last_result = None  # result() records itself; the report must not change because of us
            break
    if result is None:
        return None, ""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_") or "test"
    target = Path(directory) / f"{slug}.html"
    try:
        written = write_html_timeline(target, result, title=nodeid).resolve()
    except OSError as err:
        return None, f"timeline picture: could not write {target}: {err}"
    return written, f"timeline picture: {written}"
