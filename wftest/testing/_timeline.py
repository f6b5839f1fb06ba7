"""Timelines: a history rendered as an aligned text table, one event per line.

Used by the CLI, by failure messages and by ``RunResult.timeline()``::

    print(render_timeline(engine.history(iid)))
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from wftest import _events as ev
from wftest.protos import orchestrator_service_pb2 as pb

_HEADER = ("offset", "time (UTC)", "event", "id", "name", "detail")


def _offset(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    micro = delta.microseconds
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"+{days}d{hours:02d}:{minutes:02d}:{secs:02d}" if days else f"+{hours:02d}:{minutes:02d}:{secs:02d}"
    if micro:
        text += f".{micro // 1000:03d}"
    return text


def _columns(event: pb.HistoryEvent) -> tuple[str, str, str, str]:
    kind = event.WhichOneof("eventType") or "?"
    title = kind[0].upper() + kind[1:]
    body = getattr(event, kind) if kind != "?" else None
    ident = ""
    name = ""
    if kind in ("taskScheduled", "timerCreated", "subOrchestrationInstanceCreated", "eventSent"):
        ident = f"#{event.eventId}"
    elif kind in ("taskCompleted", "taskFailed", "subOrchestrationInstanceCompleted", "subOrchestrationInstanceFailed"):
        ident = f"#{body.taskScheduledId}"  # type: ignore[union-attr]
    elif kind == "timerFired":
        ident = f"#{event.timerFired.timerId}"
    if kind in ("taskScheduled", "subOrchestrationInstanceCreated", "executionStarted", "eventRaised", "eventSent"):
        name = body.name  # type: ignore[union-attr]
    full = ev.describe_event(event)
    # the detail is the description without its leading "Kind #id name"
    detail = full[len(title):].strip()
    for prefix in (ident, name):
        if prefix and detail.startswith(prefix):
            detail = detail[len(prefix):].strip()
    return title, ident, name, detail


def render_timeline(history: Sequence[pb.HistoryEvent], *, start: datetime | None = None, width: int = 120) -> str:
    """Render ``history`` as a table: offset from the first event, time, event kind, id, name, detail.

    ``OrchestratorStarted`` lines (one per step) are shown as step separators.
    """
    if not history:
        return "(empty history)"
    first = start or next(
        (e.timestamp.ToDatetime() for e in history if e.HasField("timestamp")), datetime(1970, 1, 1)
    )
    rows: list[tuple[str, ...]] = []
    step = 0
    last_time = first
    for event in history:
        when = event.timestamp.ToDatetime() if event.HasField("timestamp") else last_time
        last_time = when
        if event.HasField("orchestratorStarted"):
            step += 1
            rows.append((_offset(when - first), when.strftime("%Y-%m-%d %H:%M:%S"), f"── step {step}", "", "", ""))
            continue
        title, ident, name, detail = _columns(event)
        rows.append(("", "", title, ident, name, detail))
    widths = [max(len(r[i]) for r in [*rows, _HEADER]) for i in range(5)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(_HEADER, [*widths, 0], strict=True)).rstrip()]
    for row in rows:
        text = "  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths, strict=True)) + "  " + row[5]
        text = text.rstrip()
        lines.append(text if len(text) <= width else text[: width - 1] + "…")
    return "\n".join(lines)
