"""Timeline pictures: an orchestration's history as one self-contained HTML page.

The page shows a Gantt chart of the instance, with the event table under it:

- activities: a bar from scheduled to completed (blue) or failed (red, with a cross);
- retries: each attempt on the call's lane, with the retry wait between them (hatched amber);
- timers: from created to fired (grey). A long timer split into 3-day chunks shows as one lane;
- sub-orchestrations: purple bars. From a ``RunResult``, each child gets its own section, linked from
  the parent's lane;
- external events (orange diamonds), events sent (teal triangles), suspensions, terminate requests;
- the orchestration itself: its status, output, and failure with the stack trace.

The page needs no network. Its CSS and SVG are inline, and a few lines of inline JavaScript link each
bar to its rows in the table::

    from wftest.report import html_timeline, write_html_timeline

    result = tester.run(order_workflow, input=order)
    write_html_timeline("order.html", result)                  # or html_timeline(result) -> str

``wftest show FILE --html OUT.html`` writes the same page for a history file. The pytest plugin writes one
for every failing ``workflow_tester`` test with ``--wftest-report=DIR``.

.. versionadded:: 0.1
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Union

from wftest.protos import orchestrator_service_pb2 as pb
from wftest.testing import _report

if TYPE_CHECKING:
    from wftest.history import History
    from wftest.testing import RunResult

__all__ = ["HistorySource", "html_timeline", "html_timelines", "write_html_timeline"]

#: what :func:`html_timeline` accepts: events, a tester's ``RunResult``, a loaded ``History``, or a file path
HistorySource = Union[Sequence[pb.HistoryEvent], "RunResult", "History", str, os.PathLike[str]]

_MAX_CHILDREN = 25


def html_timeline(history: HistorySource, *, title: str | None = None, time: str = "virtual",
                  status: str | None = None) -> str:
    """Render a history as one self-contained HTML page (no network, no CDN); returns the page text.

    Args:
        history: a list of ``HistoryEvent``, a ``RunResult`` from ``WorkflowTester.run()`` (its
            sub-orchestrations get sections of their own), a ``wftest.history.History``, or the path of a
            ``.history.json`` / ``.history.pb`` file.
        title: the page's heading; the orchestrator's name by default.
        time: the chart's axis. ``"virtual"`` places events by their timestamps and labels the axis with
            offsets from the start (``+2h``, ``+3d``). ``"real"`` places them the same way and labels
            the axis with clock times; use it for histories from a real-clock engine. ``"steps"`` gives
            each orchestrator step one column. When every event has the same timestamp, as in a run of
            mocks without delays, the chart falls back to steps and says so (for a ``RunResult``, it also
            suggests giving the mocks a delay with ``.after(...)``).
        status: the instance's runtime status, if you know it (``OrchestrationStatus`` or its name, from
            ``client.get_orchestration_state(iid).runtime_status``); the page shows it instead of the status
            the history implies. A history says RUNNING until it completes, or SUSPENDED when it ends with
            a suspension; a ``RunResult`` brings its own status.

    Raises ``ValueError`` for an unknown ``time``, ``TypeError`` for something that is not a history,
    and ``HistoryFileError`` for a bad file.

    Example::

        page = html_timeline(engine.history(iid), title="order 42")
        Path("order-42.html").write_text(page, encoding="utf-8")
    """
    if time not in _report.TIME_MODES:
        raise ValueError(f"time must be one of {', '.join(_report.TIME_MODES)}, not {time!r}")
    events, children = _resolve(history)
    tester_run = _is_run_result(history)
    if status is None and tester_run:
        status = history.status  # type: ignore[union-attr]
    sections_to_show = [cid for cid, _ in children]
    root = _report.render_section(events, mode=time, prefix="r-", heading=title, level=1,
                                  linked=sections_to_show, status=status, mock_hint=tester_run)
    sections = [root]
    for n, (_, child_events) in enumerate(children):
        sections.append(_child_section(child_events, time, f"c{n}-", sections_to_show, mock_hint=tester_run))
    started = next((e.executionStarted for e in events if e.HasField("executionStarted")), None)
    page_title = title or (f"{started.name} · {started.orchestrationInstance.instanceId}" if started else "history")
    return _report.render_page(sections, title=f"{page_title} — wftest timeline")


def html_timelines(histories: Sequence[HistorySource], *, title: str | None = None, time: str = "virtual") -> str:
    """Several histories on one page, one section each (``wftest show A B --html OUT`` writes this).

    Each item is anything :func:`html_timeline` accepts; a ``RunResult`` brings its sub-orchestrations.
    """
    if time not in _report.TIME_MODES:
        raise ValueError(f"time must be one of {', '.join(_report.TIME_MODES)}, not {time!r}")
    resolved = [_resolve(h) for h in histories]
    if not resolved:
        raise ValueError("html_timelines() needs at least one history")
    linked = [cid for _, children in resolved for cid, _ in children]
    linked += [_instance_id(events) for events, _ in resolved]
    sections = []
    for n, ((events, children), source) in enumerate(zip(resolved, histories, strict=True)):
        tester_run = _is_run_result(source)
        status = source.status if tester_run else None  # type: ignore[union-attr]
        sections.append(_report.render_section(events, mode=time, prefix=f"h{n}-", level=1 if len(resolved) == 1
                                               else 2, linked=linked, status=status, mock_hint=tester_run))
        for k, (_, child_events) in enumerate(children):
            sections.append(_child_section(child_events, time, f"h{n}c{k}-", linked, mock_hint=tester_run))
    heading = f"<h1>{html.escape(title)}</h1>" if title else ""
    return _report.render_page([heading, *sections], title=f"{title or 'histories'} — wftest timeline")


def write_html_timeline(path: str | os.PathLike[str], history: HistorySource, *, title: str | None = None,
                        time: str = "virtual", status: str | None = None) -> Path:
    """Write :func:`html_timeline`'s page to ``path`` (UTF-8; parent folders are created); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html_timeline(history, title=title, time=time, status=status), encoding="utf-8")
    return target


def _child_section(events: list[pb.HistoryEvent], time: str, prefix: str, linked: list[str], *,
                   mock_hint: bool = False) -> str:
    name = next((e.executionStarted.name for e in events if e.HasField("executionStarted")), "?")
    return _report.render_section(events, mode=time, prefix=prefix, heading=f"sub-orchestration {name}", level=2,
                                  linked=linked, mock_hint=mock_hint)


def _is_run_result(source: object) -> bool:
    """A tester's run (its mocks may have had no delay), as opposed to a history from a file or a database."""
    from wftest.testing import RunResult

    return isinstance(source, RunResult)


def _instance_id(events: Sequence[pb.HistoryEvent]) -> str:
    return next((e.executionStarted.orchestrationInstance.instanceId for e in events
                 if e.HasField("executionStarted")), "")


def _resolve(source: HistorySource) -> tuple[list[pb.HistoryEvent], list[tuple[str, list[pb.HistoryEvent]]]]:
    """The root history, and (for a RunResult) the histories of its sub-orchestrations, breadth first."""
    from wftest import history as history_files
    from wftest.errors import InstanceNotFoundError
    from wftest.testing import RunResult

    if isinstance(source, str | os.PathLike):
        return list(history_files.load(Path(source)).events), []
    if isinstance(source, history_files.History):
        return list(source.events), []
    if isinstance(source, RunResult):
        children: list[tuple[str, list[pb.HistoryEvent]]] = []
        queue = _report.child_instances(source.history)
        seen = {source.instance_id}
        while queue and len(children) < _MAX_CHILDREN:
            child_id = queue.pop(0)
            if child_id in seen:
                continue
            seen.add(child_id)
            try:
                child = source.history_of(child_id)
            except InstanceNotFoundError:  # a mocked child never ran: nothing to show
                continue
            if child:
                children.append((child_id, list(child)))
                queue.extend(_report.child_instances(child))
        return list(source.history), children
    if isinstance(source, Sequence) and all(isinstance(e, pb.HistoryEvent) for e in source):
        return [e for e in source if isinstance(e, pb.HistoryEvent)], []
    raise TypeError(
        "html_timeline() takes a list of HistoryEvent, a RunResult, a wftest.history.History or a file path, "
        f"not {type(source).__qualname__}"
    )
