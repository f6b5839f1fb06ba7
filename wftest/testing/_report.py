"""Timeline pictures: a history as one self-contained HTML page (``wftest.report`` is the public face).

The page holds a Gantt chart (inline SVG) of the orchestration, with one lane per activity, timer,
sub-orchestration and event name, and the event table under it. It uses no network: the CSS, the SVG and a
few lines of JavaScript (hovering a bar highlights its events in the table) are inline.

The chart is built in two steps: :func:`build_chart` turns events into lanes of segments and markers
placed on a numeric axis (seconds from the start, or step numbers), and :func:`render_page` draws them.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from wftest import _events as ev
from wftest.orchestration import DEFAULT_MAXIMUM_TIMER_INTERVAL
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.testing._timeline import _columns, _offset

TIME_MODES = ("virtual", "real", "steps")

_Pos = Callable[[int], float]  # event index -> position on the axis

_RESULT_KINDS = {"taskCompleted": "ok", "taskFailed": "failed", "subOrchestrationInstanceCompleted": "ok",
                 "subOrchestrationInstanceFailed": "failed"}


# -- the chart model ----------------------------------------------------------------------------------


@dataclass
class Segment:
    """A bar on a lane, from ``start`` to ``end`` on the axis (``end`` None: still open at the end)."""

    start: float
    end: float | None
    css: str
    tip: str
    rows: list[int]
    failed: bool = False


@dataclass
class Marker:
    """A point on a lane."""

    at: float
    css: str
    shape: str  # diamond | triangle | circle | square
    tip: str
    rows: list[int]


@dataclass
class Lane:
    """One row of the chart."""

    label: str
    detail: str
    css: str
    first: int  # index of the first event, for ordering
    segments: list[Segment] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    link: str | None = None


@dataclass
class Chart:
    """Lanes on an axis, and what the page says about the instance."""

    lanes: list[Lane]
    mode: str  # the axis actually used: virtual | real | steps
    note: str
    start: datetime
    extent: float  # the axis runs from 0 to extent
    steps: int
    name: str
    instance_id: str
    status: str
    output: str | None
    failure: pb.TaskFailureDetails | None
    finished: datetime | None
    step_of: list[int]
    time_of: list[datetime]


@dataclass
class _Attempt:
    scheduled: int  # event index
    result: int | None = None
    ok: bool = True


@dataclass
class _Call:
    """An activity or sub-orchestration call: every attempt under one sequence number."""

    kind: str  # activity | sub
    task_id: int
    name: str
    instance: str = ""
    attempts: list[_Attempt] = field(default_factory=list)
    waits: list[tuple[int, int | None]] = field(default_factory=list)  # retry timers: (created, fired)


@dataclass
class _Timer:
    ids: list[int]
    created: int
    fired: int | None = None
    fire_at: datetime | None = None
    chunks: list[tuple[int, int | None]] = field(default_factory=list)


def _ts(event: pb.HistoryEvent) -> datetime | None:
    return event.timestamp.ToDatetime() if event.HasField("timestamp") else None


def build_chart(history: Sequence[pb.HistoryEvent], mode: str = "virtual", *, status: str | None = None,
                mock_hint: bool = False) -> Chart:
    """Lay ``history`` out as lanes; ``mode`` is ``virtual`` or ``real`` (time axis) or ``steps``.

    ``status`` is the instance's runtime status when the caller knows it (a backend's record, a tester's
    result): the chart shows it instead of the status the history implies (RUNNING for a history that has
    not completed, SUSPENDED for one that ends suspended). ``mock_hint`` (tester runs only) adds the hint
    to give mocks a delay when every event has the same timestamp.
    """
    if mode not in TIME_MODES:
        raise ValueError(f"time must be one of {', '.join(TIME_MODES)}, not {mode!r}")
    status_override = _status_name(status)
    kinds = [e.WhichOneof("eventType") or "" for e in history]
    # when each event happened: its own time, but never before the step that read it (a mocked result is
    # stamped when it was made and read when its delay is over)
    step_of: list[int] = []
    time_of: list[datetime] = []
    step = 0
    step_time: datetime | None = None
    first = next((t for t in map(_ts, history) if t is not None), datetime(1970, 1, 1))
    last = first
    for event, kind in zip(history, kinds, strict=True):
        own = _ts(event)
        if kind == "orchestratorStarted":
            step += 1
            step_time = own or last
        when = max(t for t in (own, step_time, first) if t is not None) if own or step_time else last
        step_of.append(max(step, 1))
        time_of.append(when)
        last = when
    steps = max(step, 1)

    calls: dict[tuple[str, int], _Call] = {}
    timers: dict[int, _Timer] = {}
    timer_list: list[_Timer] = []
    events: dict[str, Lane] = {}
    sent: list[Lane] = []
    orchestration = Lane("orchestration", "", "orch", -1)
    name = instance_id = ""
    status = "RUNNING"
    output: str | None = None
    failure: pb.TaskFailureDetails | None = None
    finished: datetime | None = None
    started_at: int | None = None
    completed_at: int | None = None
    suspended: int | None = None
    suspensions: list[tuple[int, int | None]] = []
    marks: list[tuple[int, str, str, str]] = []  # (index, css, shape, tip) on the orchestration lane

    for i, (event, kind) in enumerate(zip(history, kinds, strict=True)):
        body = getattr(event, kind) if kind else None
        if kind == "executionStarted":
            name, instance_id = body.name, body.orchestrationInstance.instanceId  # type: ignore[union-attr]
            started_at = i
        elif kind == "executionCompleted":
            completed_at = i
            status = ev.status_name(body.orchestrationStatus)  # type: ignore[union-attr]
            output = body.result.value if body.HasField("result") else None  # type: ignore[union-attr]
            failure = body.failureDetails if body.HasField("failureDetails") else None  # type: ignore[union-attr]
            finished = time_of[i]
        elif kind == "executionTerminated":
            marks.append((i, "terminate", "square", "terminate requested"))
        elif kind == "executionSuspended":
            suspended = i
        elif kind == "executionResumed" and suspended is not None:
            suspensions.append((suspended, i))
            suspended = None
        elif kind in ("taskScheduled", "subOrchestrationInstanceCreated"):
            call_kind = "activity" if kind == "taskScheduled" else "sub"
            key = (call_kind, event.eventId)
            call = calls.get(key)
            if call is None:
                instance = body.instanceId if call_kind == "sub" else ""  # type: ignore[union-attr]
                call = calls[key] = _Call(call_kind, event.eventId, body.name, instance)  # type: ignore[union-attr]
            call.attempts.append(_Attempt(i))
        elif kind in _RESULT_KINDS:
            call_kind = "activity" if kind.startswith("task") else "sub"
            call = calls.get((call_kind, body.taskScheduledId))  # type: ignore[union-attr]
            if call is not None and call.attempts and call.attempts[-1].result is None:
                call.attempts[-1].result = i
                call.attempts[-1].ok = _RESULT_KINDS[kind] == "ok"
        elif kind == "timerCreated":
            timer = _Timer([event.eventId], i, fire_at=body.fireAt.ToDatetime())  # type: ignore[union-attr]
            timers[event.eventId] = timer
            timer_list.append(timer)
        elif kind == "timerFired":
            fired = timers.get(body.timerId)  # type: ignore[union-attr]
            if fired is not None and fired.fired is None:
                fired.fired = i
        elif kind == "eventRaised":
            key_name = body.name.casefold()  # type: ignore[union-attr]
            lane = events.get(key_name)
            if lane is None:
                lane = events[key_name] = Lane(f"event {body.name}", "external event", "event", i)  # type: ignore[union-attr]
            lane.markers.append(Marker(0.0, "event", "diamond", ev.describe_event(event), [i]))
        elif kind == "eventSent":
            lane = Lane(f"#{event.eventId} send {body.name}", f"to {body.instanceId}", "sent", i)  # type: ignore[union-attr]
            lane.markers.append(Marker(0.0, "sent", "triangle", ev.describe_event(event), [i]))
            sent.append(lane)
    if suspended is not None:
        suspensions.append((suspended, None))
        if completed_at is None:
            status = "SUSPENDED"  # suspended, and not resumed since
    if status_override:
        status = status_override

    _attach_retry_timers(calls, timer_list, history, kinds, step_of)
    timer_list = _merge_chunks([t for t in timer_list if t.ids], step_of, time_of)

    # -- the axis ------------------------------------------------------------------------------------
    note = ""
    axis = mode
    span = (time_of[-1] - first).total_seconds() if time_of else 0.0
    if axis != "steps" and span <= 0 and steps > 1:
        axis = "steps"
        note = "every event happened at the same instant, so the chart is laid out by step"
        if mock_hint:
            note += "; give mocks a delay with .after(...) to see durations"

    def pos(index: int) -> float:
        if axis == "steps":
            return step_of[index] - 0.5
        return (time_of[index] - first).total_seconds()

    end_of_history = float(steps) - 0.5 if axis == "steps" else max(span, 0.0)

    # -- lanes ---------------------------------------------------------------------------------------
    lanes: list[Lane] = []
    start_pos = pos(started_at) if started_at is not None else 0.0
    if completed_at is not None:
        css = {"COMPLETED": "orch-completed", "FAILED": "orch-failed", "TERMINATED": "orch-terminated",
               "CONTINUED_AS_NEW": "orch-continued"}.get(status, "orch-completed")
        rows = [r for r in (started_at, completed_at) if r is not None]
        orchestration.segments.append(Segment(start_pos, pos(completed_at), css,
                                              f"{name}: {status}", rows, failed=status == "FAILED"))
    else:
        still = "suspended" if status == "SUSPENDED" else "still running"
        orchestration.segments.append(Segment(start_pos, None, "orch-running", f"{name}: {still}",
                                              [started_at] if started_at is not None else []))
    for begin, end in suspensions:
        orchestration.segments.append(Segment(pos(begin), pos(end) if end is not None else None, "suspended",
                                              "suspended", [begin] + ([end] if end is not None else [])))
    for index, css, shape, tip in marks:
        orchestration.markers.append(Marker(pos(index), css, shape, tip, [index]))
    for index, kind in enumerate(kinds):
        if kind == "orchestratorStarted":
            stamp = time_of[index].isoformat(sep=" ", timespec="milliseconds")
            rows = list(range(index + 1, min(index + 2, len(kinds))))
            orchestration.markers.append(Marker(pos(index), "step", "tick", f"step {step_of[index]} at {stamp}", rows))
    orchestration.label = f"{name or 'orchestration'}"
    orchestration.detail = status.lower().replace("_", " ")
    lanes.append(orchestration)

    for call in calls.values():
        lanes.append(_call_lane(call, history, pos))
    for timer in timer_list:
        lanes.append(_timer_lane(timer, history, pos))
    for lane in [*events.values(), *sent]:
        for marker in lane.markers:
            marker.at = pos(marker.rows[0])
        lanes.append(lane)
    lanes[1:] = sorted(lanes[1:], key=lambda lane: lane.first)

    extent = end_of_history
    if axis != "steps" and completed_at is None:
        # a running instance: show the pending timers' due times too
        for timer in timer_list:
            if timer.fired is None and timer.fire_at is not None:
                extent = max(extent, (timer.fire_at - first).total_seconds())
    if extent <= 0:
        extent = 1.0 if axis != "steps" else float(steps)
    if axis == "steps":
        extent = float(steps)
    return Chart(lanes, axis, note, first, extent, steps, name, instance_id, status, output, failure, finished,
                 step_of, time_of)


def _status_name(status: object) -> str:
    """``OrchestrationStatus.SUSPENDED``, ``"suspended"`` or ``"ORCHESTRATION_STATUS_SUSPENDED"`` as ``SUSPENDED``."""
    if status is None:
        return ""
    text = str(getattr(status, "value", status)).strip().upper().removeprefix("ORCHESTRATION_STATUS_")
    return text


def _attach_retry_timers(calls: dict[tuple[str, int], _Call], timers: list[_Timer],
                         history: Sequence[pb.HistoryEvent], kinds: list[str], step_of: list[int]) -> None:
    """A retry waits on a timer created in the step where the attempt failed and fired in the step that
    schedules the call again (durabletask's retry mechanics); draw that timer on the call's lane."""
    for call in calls.values():
        for before, after in zip(call.attempts, call.attempts[1:], strict=False):
            if before.result is None or before.ok:
                continue
            failed_step, retry_step = step_of[before.result], step_of[after.scheduled]
            for timer in timers:
                if (timer.ids and step_of[timer.created] == failed_step and timer.fired is not None
                        and step_of[timer.fired] == retry_step):
                    call.waits.append((timer.created, timer.fired))
                    timer.ids = []  # drawn on the call's lane, not on its own
                    break


def _merge_chunks(timers: list[_Timer], step_of: list[int], time_of: list[datetime]) -> list[_Timer]:
    """Long timers are split into chunks of DEFAULT_MAXIMUM_TIMER_INTERVAL, each a new timer created in
    the step where the previous one fired: show the chain as one timer."""
    merged: list[_Timer] = []
    open_chain: dict[int, _Timer] = {}  # step where the chain's last chunk fired -> chain
    for timer in timers:
        chain = open_chain.pop(step_of[timer.created], None)
        if chain is not None:
            chain.ids.extend(timer.ids)
            chain.chunks.append((timer.created, timer.fired))
            chain.fired, chain.fire_at = timer.fired, timer.fire_at
        else:
            chain = timer
            chain.chunks = [(timer.created, timer.fired)]
            merged.append(chain)
        last_created, last_fired = chain.chunks[-1]
        if (last_fired is not None and timer.fire_at is not None
                and timer.fire_at - time_of[last_created] == DEFAULT_MAXIMUM_TIMER_INTERVAL):
            open_chain[step_of[last_fired]] = chain
    return merged


def _call_lane(call: _Call, history: Sequence[pb.HistoryEvent], pos: _Pos) -> Lane:
    first = call.attempts[0].scheduled
    attempts = len(call.attempts)
    if call.kind == "activity":
        label, css, detail = f"#{call.task_id} {call.name}", "activity", "activity"
    else:
        label, css, detail = f"#{call.task_id} {call.name}", "sub", f"sub-orchestration {call.instance}"
    if attempts > 1:
        detail += f" · {attempts} attempts"
    lane = Lane(label, detail, css, first, link=call.instance if call.kind == "sub" else None)
    for n, attempt in enumerate(call.attempts, start=1):
        what = f"{'activity' if call.kind == 'activity' else 'sub-orchestration'} #{call.task_id} {call.name}"
        if attempts > 1:
            what += f", attempt {n} of {attempts}"
        scheduled = ev.describe_event(history[attempt.scheduled])
        if attempt.result is None:
            lane.segments.append(Segment(pos(attempt.scheduled), None, f"{css}-pending",
                                         f"{what}\n{scheduled}\nno result yet", [attempt.scheduled]))
            continue
        result = ev.describe_event(history[attempt.result])
        bar_css = css if attempt.ok else f"{css}-failed"
        lane.segments.append(Segment(pos(attempt.scheduled), pos(attempt.result), bar_css,
                                     f"{what}\n{scheduled}\n{result}", [attempt.scheduled, attempt.result],
                                     failed=not attempt.ok))
    for created, fired in call.waits:
        lane.segments.append(Segment(pos(created), pos(fired) if fired is not None else None, "retry",
                                     f"retry wait\n{ev.describe_event(history[created])}",
                                     [created] + ([fired] if fired is not None else [])))
    return lane


def _timer_lane(timer: _Timer, history: Sequence[pb.HistoryEvent], pos: _Pos) -> Lane:
    ids = timer.ids
    label = f"#{ids[0]} timer" if len(ids) == 1 else f"#{ids[0]}…#{ids[-1]} timer"
    due = timer.fire_at.isoformat(sep=" ") if timer.fire_at is not None else "?"
    detail = f"until {due}" + (f" · {len(ids)} chunks" if len(ids) > 1 else "")
    lane = Lane(label, detail, "timer", timer.created)
    for created, fired in timer.chunks:
        text = ev.describe_event(history[created])
        if fired is None:
            lane.segments.append(Segment(pos(created), None, "timer-pending", f"{text}\nnot fired", [created]))
        else:
            lane.segments.append(Segment(pos(created), pos(fired), "timer", f"{text}\nfired", [created, fired]))
    return lane


# -- drawing ------------------------------------------------------------------------------------------------

_LABEL_W = 300
_PLOT_W = 900
_RIGHT = 24
_AXIS_H = 34
_LANE_H = 34
_BAR_H = 16
_MIN_BAR = 4.0

_NICE_SECONDS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600,
                 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400,
                 14 * 86400, 30 * 86400, 60 * 86400, 90 * 86400, 180 * 86400, 365 * 86400]

LEGEND = [
    ("activity", "activity"),
    ("activity-failed", "failed"),
    ("retry", "retry wait"),
    ("timer", "timer"),
    ("sub", "sub-orchestration"),
    ("pending", "no result yet"),
    ("event", "external event"),
    ("sent", "event sent"),
    ("suspended", "suspended"),
]

_CSS = """
:root { --ink: #1f2933; --muted: #66788a; --line: #d9e2ec; --bg: #ffffff; --band: #f5f7fa;
  --activity: #2f6fdf; --failed: #d64545; --retry: #e8a33d; --timer: #8f9bb3; --sub: #8250df;
  --event: #f08c2e; --sent: #159a8c; --ok: #2f9e44; --running: #2f6fdf; --terminated: #7b8794; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 28px 48px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto,
  "DejaVu Sans", sans-serif; color: var(--ink); background: var(--bg); }
h1 { font-size: 20px; margin: 0 0 4px; font-weight: 600; }
h2 { font-size: 16px; margin: 32px 0 6px; font-weight: 600; }
.sub-title { color: var(--muted); margin-bottom: 12px; }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
  color: #fff; vertical-align: 2px; margin-left: 8px; letter-spacing: .02em; }
.status.COMPLETED { background: var(--ok); } .status.FAILED { background: var(--failed); }
.status.RUNNING, .status.PENDING { background: var(--running); }
.status.TERMINATED, .status.CANCELED { background: var(--terminated); }
.status.SUSPENDED, .status.CONTINUED_AS_NEW { background: var(--retry); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 8px 0 14px; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; font-family: ui-monospace, "DejaVu Sans Mono",
  monospace; font-size: 13px; overflow-wrap: anywhere; }
.failure { border-left: 4px solid var(--failed); background: #fdf0f0; padding: 8px 12px; margin: 8px 0 14px; }
.failure pre { margin: 6px 0 0; white-space: pre-wrap; font-size: 12px; max-height: 320px; overflow: auto; }
.note { color: var(--muted); font-style: italic; margin: 4px 0 8px; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; margin: 10px 0 8px; font-size: 12px;
  color: var(--muted); }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.legend svg { flex: none; }
.chart { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
svg.gantt { display: block; font-size: 12px; max-width: 100%; min-width: 900px; height: auto; }
svg.gantt text { fill: var(--ink); }
svg.gantt .tick text { fill: var(--muted); font-size: 11px; }
svg.gantt .tick line { stroke: var(--line); }
svg.gantt .band { fill: var(--band); }
svg.gantt .lane-label { font-weight: 600; }
svg.gantt .lane-detail { fill: var(--muted); font-size: 11px; }
svg.gantt a .lane-label { fill: var(--sub); text-decoration: underline; }
.bar { stroke-width: 1; }
.activity { fill: var(--activity); } .activity-failed, .sub-failed { fill: var(--failed); }
.activity-pending { fill: #dbe7fb; stroke: var(--activity); stroke-dasharray: 4 2; }
.sub { fill: var(--sub); } .sub-pending { fill: #ece2fb; stroke: var(--sub); stroke-dasharray: 4 2; }
.retry { fill: url(#hatch-retry); stroke: var(--retry); }
.timer { fill: var(--timer); } .timer-pending { fill: #eef0f4; stroke: var(--timer); stroke-dasharray: 4 2; }
.orch-completed { fill: #c9ead2; stroke: var(--ok); } .orch-failed { fill: #f8d3d3; stroke: var(--failed); }
.orch-running { fill: #dbe7fb; stroke: var(--running); stroke-dasharray: 4 2; }
.orch-terminated { fill: #e4e7eb; stroke: var(--terminated); } .orch-continued { fill: #fbe7c6; stroke: var(--retry); }
.suspended { fill: url(#hatch-suspended); stroke: var(--terminated); }
.mark.event { fill: var(--event); } .mark.sent { fill: var(--sent); } .mark.terminate { fill: var(--terminated); }
.mark { stroke: #fff; stroke-width: 1; }
.fail-mark circle { fill: var(--failed); stroke: #fff; stroke-width: 1.5; }
.fail-mark path { stroke: #fff; stroke-width: 1.8; stroke-linecap: round; }
.mark.step { stroke: #2f9e44; stroke-width: 1.5; opacity: .55; }
.view { position: relative; }
.view > input { position: absolute; opacity: 0; pointer-events: none; }
.view > label { display: inline-block; padding: 2px 12px; border: 1px solid var(--line); cursor: pointer;
  font-size: 12px; color: var(--muted); background: #fff; margin: 0 -1px 0 0; }
.view > label:first-of-type { border-radius: 4px 0 0 4px; } .view > label:last-of-type { border-radius: 0 4px 4px 0; }
.view > input:checked + label { background: #eef2f7; color: var(--ink); font-weight: 600; }
.view > .legend { display: inline-flex; margin-left: 14px; vertical-align: middle; }
.charts > .c1 { display: none; }
.axis-1:checked ~ .charts > .c0 { display: none; } .axis-1:checked ~ .charts > .c1 { display: block; }
.item { cursor: pointer; }
.item.hl .bar, .item.hl .mark { stroke: #111; stroke-width: 2; }
table.events { border-collapse: collapse; width: 100%; font-size: 13px; margin-top: 6px; }
table.events th { position: sticky; top: 0; background: #eef2f7; text-align: left; font-weight: 600;
  padding: 5px 8px; border-bottom: 1px solid var(--line); }
table.events td { padding: 3px 8px; border-bottom: 1px solid #edf1f5; vertical-align: top; white-space: nowrap; }
table.events td.detail { white-space: normal; }
table.events td.mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
table.events td.detail { overflow-wrap: anywhere; }
table.events tr.step td { border-top: 2px solid var(--line); }
table.events tr.hl td { background: #fff4c2; }
table.events tr.failed td.kind { color: var(--failed); font-weight: 600; }
footer { margin-top: 28px; color: var(--muted); font-size: 12px; }
"""

_JS = """
(function () {
  function rowsOf(item) {
    return (item.getAttribute("data-rows") || "").split(" ").filter(Boolean)
      .map(function (id) { return document.getElementById(id); }).filter(Boolean);
  }
  function mark(item, on) {
    item.classList.toggle("hl", on);
    rowsOf(item).forEach(function (row) { row.classList.toggle("hl", on); });
  }
  var items = document.querySelectorAll(".item[data-rows]");
  Array.prototype.forEach.call(items, function (item) {
    item.addEventListener("mouseenter", function () { mark(item, true); });
    item.addEventListener("mouseleave", function () { mark(item, false); });
    item.addEventListener("click", function () {
      var rows = rowsOf(item);
      if (rows.length) { rows[0].scrollIntoView({block: "center", behavior: "smooth"}); }
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll("tr[data-items]"), function (row) {
    var owners = row.getAttribute("data-items").split(" ")
      .map(function (id) { return document.getElementById(id); }).filter(Boolean);
    row.addEventListener("mouseenter", function () { owners.forEach(function (i) { mark(i, true); }); });
    row.addEventListener("mouseleave", function () { owners.forEach(function (i) { mark(i, false); }); });
  });
  document.body.setAttribute("data-ready", String(items.length));
})();
"""


def _nice_step(extent: float, target: int = 8) -> float:
    for candidate in _NICE_SECONDS:
        if extent / candidate <= target:
            return candidate
    return _NICE_SECONDS[-1] * max(1, round(extent / _NICE_SECONDS[-1] / target))


def _short_offset(seconds: float) -> str:
    if seconds == 0:
        return "0"
    if seconds < 1:
        return f"+{seconds * 1000:.0f}ms"
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else "",
             f"{secs}s" if secs else ""]
    return "+" + "".join(p for p in parts if p)


def _ticks(chart: Chart) -> list[tuple[float, str]]:
    if chart.mode == "steps":
        every = next(n for n in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10**9) if chart.steps / n <= 24)
        return [(k - 0.5, str(k)) for k in range(1, chart.steps + 1) if k == 1 or k % every == 0]
    step = _nice_step(chart.extent)
    ticks = []
    n = 0
    while n * step <= chart.extent * 1.0001:
        value = n * step
        if chart.mode == "virtual":
            text = _short_offset(value)
        else:
            at = chart.start + timedelta(seconds=value)
            fmt = "%m-%d %H:%M" if chart.extent >= 86400 else "%H:%M:%S" if step >= 1 else "%H:%M:%S.%f"
            text = at.strftime(fmt)[:-3] if fmt.endswith("%f") else at.strftime(fmt)
        ticks.append((value, text))
        n += 1
    return ticks


def _text_width(text: str, size: float = 11.0) -> float:
    """A generous estimate of the width of ``text`` in the page's sans-serif font at ``size`` px (an SVG has
    no layout to ask before it is drawn): digits and most letters are about 0.64em wide, narrow marks less."""
    narrow = sum(1 for c in text if c in ":.,;' -|il")
    return size * (0.66 * (len(text) - narrow) + 0.36 * narrow)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _shape(shape: str, x: float, y: float, r: float = 6.0) -> str:
    if shape == "diamond":
        return f'<polygon points="{x:.1f},{y - r:.1f} {x + r:.1f},{y:.1f} {x:.1f},{y + r:.1f} {x - r:.1f},{y:.1f}"'
    if shape == "triangle":
        return f'<polygon points="{x - r:.1f},{y - r:.1f} {x + r:.1f},{y:.1f} {x - r:.1f},{y + r:.1f}"'
    if shape == "tick":
        return f'<line x1="{x:.1f}" y1="{y - r - 2:.1f}" x2="{x:.1f}" y2="{y + r + 2:.1f}"'
    if shape == "square":
        return f'<rect x="{x - r + 1:.1f}" y="{y - r + 1:.1f}" width="{2 * r - 2:.1f}" height="{2 * r - 2:.1f}"'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r - 1:.1f}"'


def anchor(instance_id: str) -> str:
    """The id of an instance's section on the page."""
    return "instance-" + "_".join(instance_id.split())


def _svg(chart: Chart, prefix: str, row_prefix: str, linked: Collection[str]) -> str:
    """The chart; element ids start with ``prefix``, and bars name their table rows ``{row_prefix}e{index}``."""
    ticks = _ticks(chart)

    def x(value: float) -> float:
        return _LABEL_W + min(max(value, 0.0), chart.extent) / chart.extent * _PLOT_W

    # tick labels are centred on their tick: make room on the right for the last one (a tick at the end of
    # the axis would otherwise be cut off at the edge of the picture)
    right = max([_RIGHT, *(x(value) - _LABEL_W - _PLOT_W + _text_width(text) / 2 + 6 for value, text in ticks)])
    width = round(_LABEL_W + _PLOT_W + right)
    height = _AXIS_H + _LANE_H * len(chart.lanes) + 8

    out = [f'<svg class="gantt" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="timeline chart">',
           '<defs><pattern id="hatch-retry" width="6" height="6" patternUnits="userSpaceOnUse" '
           'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fcefd9"/>'
           '<line x1="0" y1="0" x2="0" y2="6" stroke="#e8a33d" stroke-width="3"/></pattern>'
           '<pattern id="hatch-suspended" width="6" height="6" patternUnits="userSpaceOnUse" '
           'patternTransform="rotate(45)"><rect width="6" height="6" fill="#eef0f3"/>'
           '<line x1="0" y1="0" x2="0" y2="6" stroke="#9aa5b1" stroke-width="2"/></pattern></defs>']
    for i in range(len(chart.lanes)):
        if i % 2 == 0:
            out.append(f'<rect class="band" x="0" y="{_AXIS_H + i * _LANE_H}" width="{width}" height="{_LANE_H}"/>')
    out.append('<g class="tick">')
    for value, text in ticks:
        tx = x(value)
        out.append(f'<line x1="{tx:.1f}" y1="{_AXIS_H - 6}" x2="{tx:.1f}" y2="{height - 4}"/>'
                   f'<text x="{tx:.1f}" y="{_AXIS_H - 12}" text-anchor="middle">{_e(text)}</text>')
    axis_title = {"virtual": "virtual time from the start", "real": "time (UTC)", "steps": "step"}[chart.mode]
    out.append(f'<text x="12" y="{_AXIS_H - 12}" class="axis-title">{_e(axis_title)}</text></g>')
    for i, lane in enumerate(chart.lanes):
        top = _AXIS_H + i * _LANE_H
        mid = top + _LANE_H / 2
        label = f'<text class="lane-label" x="12" y="{mid - 2:.1f}">{_e(_clip(lane.label, 38))}</text>'
        if lane.link is not None and lane.link in linked:
            label = f'<a href="#{_e(anchor(lane.link))}">{label}</a>'
        out.append(f'<g class="lane {lane.css}"><title>{_e(lane.label)}: {_e(lane.detail)}</title>{label}'
                   f'<text class="lane-detail" x="12" y="{mid + 11:.1f}">{_e(_clip(lane.detail, 48))}</text></g>')
        failures: list[float] = []
        for n, seg in enumerate(lane.segments):
            x1 = x(seg.start)
            x2 = x(seg.end) if seg.end is not None else x(chart.extent)
            w = max(x2 - x1, _MIN_BAR)
            if x1 + w > width - 2:
                x1 = width - 2 - w
            item_id = f"{prefix}i{i}-{n}"
            rows = " ".join(f"{row_prefix}e{r}" for r in seg.rows)
            bar_h = _BAR_H if not seg.css.startswith(("orch", "suspended")) else _BAR_H + 4
            shape = (f'<rect class="bar {seg.css}" x="{x1:.1f}" y="{mid - bar_h / 2:.1f}" width="{w:.1f}" '
                     f'height="{bar_h}" rx="2"/>')
            if seg.failed:
                failures.append(x1 + w)
            out.append(f'<g class="item" id="{item_id}" data-rows="{rows}"><title>{_e(seg.tip)}</title>{shape}</g>')
        for fx in failures:
            out.append(_fail_mark(fx, mid))
        for n, marker in enumerate(lane.markers):
            item_id = f"{prefix}m{i}-{n}"
            rows = " ".join(f"{row_prefix}e{r}" for r in marker.rows)
            out.append(f'<g class="item" id="{item_id}" data-rows="{rows}"><title>{_e(marker.tip)}</title>'
                       f'{_shape(marker.shape, x(marker.at), mid)} class="mark {marker.css}"/></g>')
    out.append("</svg>")
    return "".join(out)


def _fail_mark(x: float, y: float) -> str:
    return (f'<g class="fail-mark"><circle cx="{x:.1f}" cy="{y:.1f}" r="6.5"/>'
            f'<path d="M{x - 2.6:.1f},{y - 2.6:.1f} L{x + 2.6:.1f},{y + 2.6:.1f} '
            f'M{x - 2.6:.1f},{y + 2.6:.1f} L{x + 2.6:.1f},{y - 2.6:.1f}"/></g>')


def _present(chart: Chart) -> set[str]:
    """The legend entries a chart uses."""
    found: set[str] = set()
    for lane in chart.lanes:
        for seg in lane.segments:
            css = seg.css
            if seg.failed and not css.startswith("orch"):
                found.add("activity-failed")
            if css.endswith("-pending"):
                found.add("pending")
            found.add(css.removesuffix("-failed").removesuffix("-pending"))
        found.update(marker.css for marker in lane.markers)
    return found


def _legend(present: set[str]) -> str:
    parts = []
    for css, text in LEGEND:
        if css not in present:
            continue
        if css in ("event", "sent"):
            glyph = f'{_shape("diamond" if css == "event" else "triangle", 8, 8)} class="mark {css}"/>'
        elif css == "pending":
            glyph = '<rect class="activity-pending" x="1" y="3" width="22" height="10" rx="2"/>'
        elif css == "activity-failed":
            glyph = '<rect class="activity-failed" x="1" y="3" width="14" height="10" rx="2"/>' + _fail_mark(16.5, 8)
        else:
            glyph = f'<rect class="{css}" x="1" y="3" width="22" height="10" rx="2"/>'
        parts.append(f'<span><svg width="24" height="16" viewBox="0 0 24 16">{glyph}</svg>{_e(text)}</span>')
    return f'<div class="legend">{"".join(parts)}</div>'


def _table(history: Sequence[pb.HistoryEvent], charts: list[tuple[Chart, str]], prefix: str) -> str:
    # which chart items each event row belongs to, so hovering a row highlights its bars
    owner: dict[int, list[str]] = {}
    for chart, chart_prefix in charts:
        for i, lane in enumerate(chart.lanes):
            for n, seg in enumerate(lane.segments):
                for r in seg.rows:
                    owner.setdefault(r, []).append(f"{chart_prefix}i{i}-{n}")
            for n, marker in enumerate(lane.markers):
                if marker.css != "step":
                    for r in marker.rows:
                        owner.setdefault(r, []).append(f"{chart_prefix}m{i}-{n}")
    chart = charts[0][0]
    rows = ['<table class="events"><thead><tr><th>#</th><th>step</th><th>offset</th><th>time (UTC)</th>'
            '<th>event</th><th>id</th><th>name</th><th>detail</th></tr></thead><tbody>']
    previous_step = 0
    for i, event in enumerate(history):
        kind = event.WhichOneof("eventType") or "?"
        if kind == "orchestratorStarted" or kind == "orchestratorCompleted":
            continue
        title, ident, name, detail = _columns(event)
        step = chart.step_of[i]
        classes = []
        if step != previous_step:
            classes.append("step")
            previous_step = step
        if kind in ("taskFailed", "subOrchestrationInstanceFailed") or (
                kind == "executionCompleted" and event.executionCompleted.HasField("failureDetails")):
            classes.append("failed")
        when = chart.time_of[i]
        items = owner.get(i)
        attrs = f' class="{" ".join(classes)}"' if classes else ""
        attrs += f' data-items="{" ".join(items)}"' if items else ""
        rows.append(
            f'<tr id="{prefix}e{i}"{attrs}><td class="mono">{i}</td><td class="mono">{step}</td>'
            f'<td class="mono">{_e(_offset(when - chart.start))}</td>'
            f'<td class="mono">{_e(when.isoformat(sep=" ", timespec="milliseconds"))}</td>'
            f'<td class="kind">{_e(title)}</td><td class="mono">{_e(ident)}</td><td>{_e(name)}</td>'
            f'<td class="mono detail">{_e(detail)}</td></tr>'
        )
    rows.append("</tbody></table>")
    return "".join(rows)


def _duration(delta: timedelta) -> str:
    return _offset(delta).lstrip("+")


def render_section(history: Sequence[pb.HistoryEvent], *, mode: str = "virtual", prefix: str = "",
                   heading: str | None = None, level: int = 1, linked: Collection[str] = (),
                   status: str | None = None, mock_hint: bool = False) -> str:
    """One instance: heading, facts, failure, the chart (with a switch to a step axis) and the event table.

    ``prefix`` keeps the element ids of several sections on one page apart; ``linked`` names the
    instances that have a section on the page (sub-orchestration lanes link to them). ``status`` and
    ``mock_hint`` are passed to :func:`build_chart`.
    """
    chart = build_chart(history, mode, status=status, mock_hint=mock_hint)
    charts = [(chart, f"{prefix}0")]
    if chart.mode != "steps":
        charts.append((build_chart(history, "steps", status=status, mock_hint=mock_hint), f"{prefix}1"))
    facts = [("instance", chart.instance_id), ("started", f"{chart.start.isoformat(sep=' ')} UTC")]
    if heading is not None and heading != chart.name:
        facts.insert(0, ("orchestrator", chart.name))
    if chart.finished is not None:
        facts.append(("duration", f"{_duration(chart.finished - chart.start)}"
                                  f"{' (virtual time)' if mode == 'virtual' else ''}"))
    facts.append(("steps", f"{chart.steps} steps, {len(history)} events"))
    if chart.output is not None:
        facts.append(("output", _clip(chart.output, 400)))
    title = heading or chart.name or "orchestration"
    tag = f"h{level}"
    parts = [f'<section id="{_e(anchor(chart.instance_id))}">',
             f'<{tag}>{_e(title)}<span class="status {_e(chart.status)}">{_e(chart.status)}</span></{tag}>',
             '<dl class="facts">' + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts) + "</dl>"]
    if chart.failure is not None:
        failure = chart.failure
        trace = failure.stackTrace.value if failure.HasField("stackTrace") else ""
        parts.append(f'<div class="failure"><strong>{_e(failure.errorType)}</strong>: {_e(failure.errorMessage)}'
                     + (f"<details><summary>stack trace</summary><pre>{_e(trace)}</pre></details>" if trace else "")
                     + "</div>")
    if chart.note:
        parts.append(f'<p class="note">{_e(chart.note)}</p>')
    parts.append('<div class="view">')
    if len(charts) > 1:
        names = ["time", "steps"]
        for k in range(len(charts)):
            checked = " checked" if k == 0 else ""
            parts.append(f'<input type="radio" class="axis-{k}" name="{prefix}axis" id="{prefix}axis-{k}"{checked}>'
                         f'<label for="{prefix}axis-{k}">{names[k]}</label>')
    parts.append(_legend(_present(chart)))
    parts.append('<div class="charts">')
    for k, (c, chart_prefix) in enumerate(charts):
        parts.append(f'<div class="chart c{k}">{_svg(c, chart_prefix, prefix, linked)}</div>')
    parts.append("</div></div>")
    sub = "h3" if level > 1 else "h2"
    parts.append(f"<{sub}>Events</{sub}>")
    parts.append(_table(history, charts, prefix))
    parts.append("</section>")
    return "".join(parts)


def child_instances(history: Sequence[pb.HistoryEvent]) -> list[str]:
    """The sub-orchestration instance ids a history started, in order, without repeats."""
    seen: dict[str, None] = {}
    for event in history:
        if event.HasField("subOrchestrationInstanceCreated"):
            seen.setdefault(event.subOrchestrationInstanceCreated.instanceId, None)
    return list(seen)


def stylesheet() -> str:
    """The CSS of a timeline section (chart, legend, event table, status badges), for a page's ``<style>``.

    A page that embeds sections (the diagnostics page) puts this in its stylesheet, and may add its own rules
    after it.
    """
    return _CSS


def script() -> str:
    """The JavaScript that links chart items to their table rows, for one ``<script>`` at the end of a page.

    It wires every section on the page, and sets ``data-ready`` on ``<body>`` to the number of chart items
    it found.
    """
    return _JS


def csp_hash(text: str) -> str:
    """The Content-Security-Policy source that allows one inline ``<style>`` or ``<script>`` holding ``text``.

    Example::

        policy = f"style-src {csp_hash(stylesheet())}; script-src {csp_hash(script())}"
    """
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"


def render_page(sections: list[str], *, title: str) -> str:
    """The whole page around rendered sections."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{stylesheet()}</style></head><body>"
        + "".join(sections)
        + '<footer>Written by wftest. Hover a bar to see its events; click it to jump to them.</footer>'
        + f"<script>{script()}</script></body></html>\n"
    )
