"""wftest.report: an orchestration's history as one self-contained HTML page (Gantt chart and event table)."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from wftest import Engine, RetryPolicy, RunResult, SqliteBackend, TaskFailedError, WorkflowTester, cli, history
from wftest.report import html_timeline, html_timelines, write_html_timeline


class Page(HTMLParser):
    """The parts of a page the tests look at."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.ids: dict[str, dict[str, str]] = {}
        self.lane_labels: dict[str, list[str]] = {}  # chart element id prefix -> lane labels in order
        self._chart = ""
        self._in_label = False
        self.text = text
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append((tag, values))
        if "id" in values:
            self.ids[values["id"]] = {"tag": tag, **values}
        if tag == "div" and values.get("class", "").startswith("chart c"):
            self._chart = values["class"].split()[-1]
            self.lane_labels.setdefault(self._chart, [])
        self._in_label = tag == "text" and values.get("class") == "lane-label"

    def handle_data(self, data: str) -> None:
        if self._in_label:
            self.lane_labels[self._chart].append(data)
            self._in_label = False

    def bars(self, chart: str, lane: int) -> list[str]:
        """The classes of the bars on one lane of the first section's chart."""
        prefix = f"r-{chart}i{lane}-"
        return [values["class"].removeprefix("bar ") for tag, values in self.tags
                if tag == "rect" and "bar" in values.get("class", "").split()
                and self._owner(values) .startswith(prefix)]

    def _owner(self, rect: dict[str, str]) -> str:
        # the <g class="item" id=...> that precedes the rect
        index = next(i for i, (_, v) in enumerate(self.tags) if v is rect)
        for tag, values in reversed(self.tags[:index]):
            if tag == "g" and values.get("class") == "item":
                return values.get("id", "")
        return ""


def flaky(ctx: Any, n: int) -> int:
    raise ConnectionError("gateway down")


def child(ctx: Any, n: int) -> Any:
    yield ctx.create_timer(timedelta(hours=1))
    return n * 2


def busy_workflow(ctx: Any, _: Any) -> Any:
    """A retried activity, a 7-day timer (three 3-day chunks), an event and a sub-orchestration."""
    policy = RetryPolicy(first_retry_interval=timedelta(minutes=1), max_number_of_attempts=2)
    try:
        yield ctx.call_activity(flaky, input=1, retry_policy=policy)
    except TaskFailedError:
        pass
    yield ctx.create_timer(timedelta(days=7))
    approved = yield ctx.wait_for_external_event("approval")
    doubled = yield ctx.call_sub_orchestrator(child, input=21, instance_id="the-child")
    return {"approved": approved, "doubled": doubled}


@pytest.fixture
def busy_run() -> RunResult:
    tester = WorkflowTester()
    tester.at(timedelta(days=8), lambda t: t.raise_event("approval", True))
    result = tester.run(busy_workflow)
    assert result.status == "COMPLETED"
    return result


def test_the_page_is_self_contained(busy_run: RunResult) -> None:
    page = Page(html_timeline(busy_run))
    tags = {tag for tag, _ in page.tags}
    assert not tags & {"link", "img", "iframe", "object", "embed", "base"}
    assert all("src" not in values for _, values in page.tags)
    assert all(values["href"].startswith("#") for _, values in page.tags if "href" in values)
    # the one URL is the SVG namespace name, which browsers never fetch
    assert re.findall(r"https?://[^\s\"'<>]+", page.text) == ["http://www.w3.org/2000/svg"] * 4
    assert "@import" not in page.text and "url(http" not in page.text


def test_every_call_timer_event_and_child_has_a_lane_in_history_order(busy_run: RunResult) -> None:
    page = Page(html_timeline(busy_run))
    assert page.lane_labels["c0"] == [
        "busy_workflow", "#1 flaky", "#3…#5 timer", "event approval", "#6 child",  # the root
        "child", "#1 timer",  # the child's own section
    ]


def test_a_retried_activity_shows_its_attempts_and_the_wait_between_them(busy_run: RunResult) -> None:
    page = Page(html_timeline(busy_run))
    assert page.bars("0", 1) == ["activity-failed", "activity-failed", "retry"]
    assert "activity · 2 attempts" in page.text
    assert 'class="fail-mark"' in page.text


def test_a_long_timer_split_into_chunks_is_one_lane(busy_run: RunResult) -> None:
    page = Page(html_timeline(busy_run))
    assert page.bars("0", 2) == ["timer", "timer", "timer"]
    assert "until 2024-01-08 00:01:00 · 3 chunks" in page.text


def test_a_sub_orchestration_from_a_run_result_gets_a_linked_section(busy_run: RunResult) -> None:
    page = Page(html_timeline(busy_run))
    assert "instance-the-child" in page.ids and page.ids["instance-the-child"]["tag"] == "section"
    assert ("a", {"href": "#instance-the-child"}) in page.tags
    assert "sub-orchestration child" in page.text


def test_bars_and_table_rows_point_at_each_other(busy_run: RunResult) -> None:
    page = Page(html_timeline(busy_run))
    items = [values for tag, values in page.tags if tag == "g" and values.get("class") == "item"]
    rows = [values for tag, values in page.tags if tag == "tr" and "data-items" in values]
    assert items and rows
    for item in items:
        assert all(ref in page.ids for ref in item["data-rows"].split()), item
    for row in rows:
        assert all(ref in page.ids for ref in row["data-items"].split()), row


def test_the_table_has_a_row_per_event_except_step_boundaries(busy_run: RunResult) -> None:
    page = Page(html_timeline(busy_run.history))
    kinds = [e.WhichOneof("eventType") for e in busy_run.history]
    expected = sum(k not in ("orchestratorStarted", "orchestratorCompleted") for k in kinds)
    assert sum(1 for tag, values in page.tags if tag == "tr" and values.get("id", "").startswith("r-e")) == expected


def test_a_failed_orchestration_shows_its_failure_and_all_text_is_escaped() -> None:
    def evil(ctx: Any, _: Any) -> Any:
        yield ctx.call_activity("lookup", input="<img src=x onerror=alert(1)>")
        raise ValueError("<script>alert('boom')</script>")

    tester = WorkflowTester()
    tester.on_activity("lookup").returns("</td></tr><b>")
    result = tester.run(evil)

    text = html_timeline(result)
    assert "<script>alert" not in text and "<img src=x" not in text and "</td></tr><b>" not in text
    assert "&lt;script&gt;alert(&#x27;boom&#x27;)&lt;/script&gt;" in text
    assert '<span class="status FAILED">FAILED</span>' in text
    assert "<summary>stack trace</summary>" in text
    assert Page(text).bars("0", 0) == ["orch-failed"]


def test_an_unfinished_instance_has_open_bars() -> None:
    def waits(ctx: Any, _: Any) -> Any:
        ctx.call_activity("slow")
        yield ctx.create_timer(timedelta(hours=5))

    tester = WorkflowTester()
    tester.on_activity("slow").returns(1).after(timedelta(days=1))
    tester.start(waits)
    tester.run_until(timedelta(hours=1))
    page = Page(html_timeline(tester.result()))

    assert '<span class="status RUNNING">' in page.text
    assert page.bars("0", 0) == ["orch-running"]
    assert page.bars("0", 1) == ["activity-pending"] and page.bars("0", 2) == ["timer-pending"]


def test_a_suspension_is_drawn_on_the_orchestration_lane() -> None:
    def sleeper(ctx: Any, _: Any) -> Any:
        yield ctx.create_timer(timedelta(hours=3))

    tester = WorkflowTester()
    tester.at(timedelta(hours=1), lambda t: t.suspend())
    tester.at(timedelta(hours=2), lambda t: t.resume())
    page = Page(html_timeline(tester.run(sleeper)))

    assert page.bars("0", 0) == ["orch-completed", "suspended"]


def test_the_axis_reads_virtual_offsets_clock_times_or_steps(busy_run: RunResult) -> None:
    def ticks(text: str) -> list[str]:
        first_chart = text.split('<div class="chart c0">')[1].split("</svg>")[0]
        return re.findall(r'text-anchor="middle">([^<]*)<', first_chart)

    assert ticks(html_timeline(busy_run))[:3] == ["0", "+2d", "+4d"]
    assert ticks(html_timeline(busy_run, time="real"))[:3] == ["01-01 00:00", "01-03 00:00", "01-05 00:00"]
    assert ticks(html_timeline(busy_run, time="steps"))[:3] == ["1", "2", "3"]


def test_a_time_axis_comes_with_a_step_axis_to_switch_to(busy_run: RunResult) -> None:
    page = Page(html_timeline(busy_run))
    assert ("input", {"type": "radio", "class": "axis-1", "name": "r-axis", "id": "r-axis-1"}) in page.tags
    assert page.lane_labels["c1"][:5] == page.lane_labels["c0"][:5]


def test_a_run_where_nothing_takes_time_is_laid_out_by_step() -> None:
    def quick(ctx: Any, _: Any) -> Any:
        a = yield ctx.call_activity("a")
        return (yield ctx.call_activity("b", input=a))

    tester = WorkflowTester()
    tester.on_activity("a").returns(1)
    tester.on_activity("b").returns(2)
    text = html_timeline(tester.run(quick))

    assert "every event happened at the same instant" in text
    assert 'class="chart c1"' not in text  # already by step: no switch


def test_histories_are_accepted_as_events_history_or_file(busy_run: RunResult, tmp_path: Path) -> None:
    path = history.save(tmp_path / "busy.history.json", busy_run.history)
    pages = [html_timeline(busy_run.history), html_timeline(history.load(path)), html_timeline(path),
             html_timeline(str(path))]
    assert len(set(pages)) == 1
    assert "sub-orchestration child" not in pages[0]  # only a RunResult knows the child's history


def test_bad_arguments_are_rejected_clearly(busy_run: RunResult) -> None:
    with pytest.raises(ValueError, match="time must be one of virtual, real, steps, not 'wall'"):
        html_timeline(busy_run, time="wall")
    with pytest.raises(TypeError, match="takes a list of HistoryEvent, a RunResult"):
        html_timeline(42)  # type: ignore[arg-type]


def test_title_and_written_file(busy_run: RunResult, tmp_path: Path) -> None:
    target = write_html_timeline(tmp_path / "deep" / "page.html", busy_run, title="order <42>")
    text = target.read_text(encoding="utf-8")
    assert "<h1>order &lt;42&gt;<span" in text and "<title>order &lt;42&gt; — wftest timeline</title>" in text
    assert "<dt>orchestrator</dt><dd>busy_workflow</dd>" in text


def test_several_histories_on_one_page(busy_run: RunResult) -> None:
    other = busy_run.history_of("the-child")
    page = Page(html_timelines([busy_run.history, other], title="two"))
    assert [i for i, v in page.ids.items() if v["tag"] == "section"] == ["instance-test-instance", "instance-the-child"]


# -- wftest show --html ------------------------------------------------------------------------------


def test_cli_show_writes_the_picture_of_a_history_file(busy_run: RunResult, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = history.save(tmp_path / "busy.history.json", busy_run.history)
    out = tmp_path / "out" / "busy.html"

    assert cli.main(["show", str(path), "--html", str(out), "--time", "steps"]) == 0

    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert out.read_text(encoding="utf-8") == html_timelines([busy_run.history], time="steps")


def test_cli_show_writes_the_picture_of_instances_in_a_database(tmp_path: Path) -> None:
    db = tmp_path / "wf.db"
    backend = SqliteBackend(db)
    engine = Engine(backend=backend)
    iid = engine.client.schedule_new_orchestration(child, input=1, instance_id="c-1")
    engine.client.wait_for_orchestration_completion(iid)
    backend.close()
    out = tmp_path / "db.html"

    assert cli.main(["show", "--db", str(db), "c-1", "--html", str(out)]) == 0
    assert cli.main(["show", "--db", str(db), "nope", "--html", str(out)]) == 2

    page = Page(out.read_text(encoding="utf-8"))
    assert "instance-c-1" in page.ids and page.lane_labels["c0"] == ["child", "#1 timer"]


def test_a_mocked_child_has_a_lane_but_no_section() -> None:
    def parent(ctx: Any, _: Any) -> Any:
        return (yield ctx.call_sub_orchestrator(child, input=1))

    tester = WorkflowTester()
    tester.on_sub_orchestrator(child).returns(5)
    page = Page(html_timeline(tester.run(parent)))

    assert page.lane_labels["c0"] == ["parent", "#1 child"]
    assert not any(tag == "a" for tag, _ in page.tags)  # nothing to link to


# -- the last tick label, the mock hint, the status ------------------------------------------------------


def _timed_run(minutes: int, *, seconds: float = 0) -> RunResult:
    def wait(ctx: Any, _: Any) -> Any:
        yield ctx.create_timer(timedelta(minutes=minutes, seconds=seconds))

    return WorkflowTester().run(wait)


def _svg_ticks(text: str) -> tuple[float, list[tuple[float, str]]]:
    """The first chart's width, and its tick labels with their x positions."""
    svg = text.split('<div class="chart c0">')[1].split("</svg>")[0]
    width = float(re.search(r'<svg class="gantt"[^>]* width="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    return width, [(float(x), label) for x, label in re.findall(r'<text x="([\d.]+)" y="\d+" text-anchor="middle">'
                                                                r"([^<]*)<", svg)]


@pytest.mark.parametrize(("minutes", "seconds", "time", "last"), [
    (10, 0, "real", "00:10:00"),        # the last tick sits on the right end of the axis
    (0, 1.6, "real", "00:00:01.600"),   # a long label there
    (60 * 48, 0, "real", "01-03 00:00"),
    (10, 0, "virtual", "+10m"),
])
def test_the_last_tick_label_fits_in_the_picture(minutes: int, seconds: float, time: str, last: str) -> None:
    width, ticks = _svg_ticks(html_timeline(_timed_run(minutes, seconds=seconds), time=time))

    x, label = ticks[-1]
    assert label == last
    # centred on its tick: half of it lies right of x; a generous 0.62em per character of the 11px font
    assert x + len(label) * 11 * 0.62 / 2 <= width


def test_the_picture_keeps_its_width_when_the_last_label_is_far_from_the_edge(busy_run: RunResult) -> None:
    width, ticks = _svg_ticks(html_timeline(busy_run, time="steps"))
    assert width == 300 + 900 + 24
    assert ticks[-1][0] < 300 + 900


def test_the_mock_delay_hint_is_only_for_tester_runs() -> None:
    def quick(ctx: Any, _: Any) -> Any:
        return (yield ctx.call_activity("a"))

    tester = WorkflowTester()
    tester.on_activity("a").returns(1)
    result = tester.run(quick)

    from_tester = html_timeline(result)
    from_events = html_timeline(result.history)          # as from a file or a database
    several = html_timelines([result, result.history])

    assert "every event happened at the same instant" in from_tester and ".after(...)" in from_tester
    assert "every event happened at the same instant" in from_events and ".after(" not in from_events
    assert several.count(".after(...)") == 1


def _suspended_history(*, resumed: bool) -> list[Any]:
    def waiter(ctx: Any, _: Any) -> Any:
        return (yield ctx.wait_for_external_event("go"))

    engine = Engine()
    engine.client.schedule_new_orchestration(waiter, instance_id="w")
    engine.run_until_idle()
    engine.client.suspend_orchestration("w")
    engine.run_until_idle()
    if resumed:
        engine.client.resume_orchestration("w")
        engine.run_until_idle()
    return engine.history("w")


def _badge_and_lane(text: str) -> tuple[str, str]:
    badge = re.search(r'<h1>[^<]*<span class="status ([A-Z_]+)">', text)
    lane = re.search(r'<text class="lane-detail" [^>]*>([^<]*)<', text)
    assert badge is not None and lane is not None
    return badge.group(1), lane.group(1)


def test_a_history_that_ends_suspended_reads_suspended() -> None:
    assert _badge_and_lane(html_timeline(_suspended_history(resumed=False))) == ("SUSPENDED", "suspended")
    assert _badge_and_lane(html_timeline(_suspended_history(resumed=True))) == ("RUNNING", "running")


def test_a_known_status_is_shown_instead_of_the_one_the_history_implies() -> None:
    from wftest import OrchestrationStatus

    events = _suspended_history(resumed=True)

    assert _badge_and_lane(html_timeline(events, status="SUSPENDED")) == ("SUSPENDED", "suspended")
    assert _badge_and_lane(html_timeline(events, status=OrchestrationStatus.SUSPENDED)) == ("SUSPENDED", "suspended")
    assert _badge_and_lane(html_timeline(events, status="ORCHESTRATION_STATUS_PENDING")) == ("PENDING", "pending")


def test_a_tester_run_brings_its_own_status() -> None:
    import dataclasses

    from wftest import OrchestrationStatus

    def waiter(ctx: Any, _: Any) -> Any:
        return (yield ctx.wait_for_external_event("never"))

    tester = WorkflowTester()
    tester.start(waiter)
    running = tester.run_until(timedelta(hours=1))
    assert running.status == "RUNNING"

    relabelled = dataclasses.replace(running, status=OrchestrationStatus.SUSPENDED)
    assert _badge_and_lane(html_timeline(relabelled)) == ("SUSPENDED", "suspended")
    assert _badge_and_lane(html_timeline(relabelled, status="RUNNING")) == ("RUNNING", "running")  # the caller's wins


def test_the_page_embeds_the_shared_stylesheet_and_script_with_matching_hashes() -> None:
    import base64
    import hashlib

    from wftest.testing import _report

    page = html_timeline(_timed_run(1))
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    script = page.split("<script>", 1)[1].split("</script>", 1)[0]

    assert style == _report.stylesheet() and script == _report.script()
    expected = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    assert _report.csp_hash(script) == f"'sha256-{expected}'"
