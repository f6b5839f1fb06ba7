"""The timeline picture in a real headless browser (Debian's chromium, started by the test).

The page of the shipped fan-out example is opened with a small probe added (it records script errors, the
resources the page fetched, what the chart's bars look like once laid out, and whether hovering a bar
highlights its events), and a screenshot is taken. chromium's console log must be empty.
"""

from __future__ import annotations

import importlib.util
import json
import re
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from _chromium import png_size, render

from wftest import RunResult, WorkflowTester
from wftest.report import write_html_timeline

ROOT = Path(__file__).resolve().parent.parent

# Added to a copy of the page: records errors from the very start, and after load writes what it saw into
# attributes of <body>, which --dump-dom shows.
_PROBE_HEAD = """<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message)); });
window.addEventListener("unhandledrejection", function (e) { window.__errors.push(String(e.reason)); });
</script>"""
_PROBE_END = """<script>
window.addEventListener("load", function () {
  var body = document.body, bars = {};
  Array.prototype.forEach.call(document.querySelectorAll(".chart.c0 .bar"), function (bar) {
    var kind = bar.getAttribute("class").replace("bar ", ""), box = bar.getBoundingClientRect();
    var entry = bars[kind] || (bars[kind] = {count: 0, visible: 0, fill: getComputedStyle(bar).fill});
    entry.count += 1;
    if (box.width >= 3 && box.height >= 10) { entry.visible += 1; }
  });
  var failed = document.querySelector(".chart.c0 .item .activity-failed").parentNode;
  failed.dispatchEvent(new MouseEvent("mouseenter"));
  var highlighted = Array.prototype.map.call(document.querySelectorAll("tr.hl"), function (r) { return r.id; });
  var chart = document.querySelector(".chart.c0 svg").getBoundingClientRect();
  body.setAttribute("data-probe", JSON.stringify({
    errors: window.__errors,
    resources: performance.getEntriesByType("resource").map(function (r) { return r.name; }),
    bars: bars, highlighted: highlighted, chart: [Math.round(chart.width), Math.round(chart.height)],
    ready: body.getAttribute("data-ready")
  }));
});
</script>"""


def _fan_out_example() -> ModuleType:
    path = ROOT / "examples" / "fan_out" / "fan_out.py"
    spec = importlib.util.spec_from_file_location("wftest_browser_fan_out", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fan_out_run() -> RunResult:
    """The fan-out example over six files: counting file n takes n minutes; file 4 cannot be read."""
    example = _fan_out_example()
    files = [f"big/{n}.txt" for n in range(1, 7)]
    tester = WorkflowTester()
    tester.on_activity(example.list_files, "big").returns(files).after(timedelta(seconds=30))
    for n, path in enumerate(files, start=1):
        mock = tester.on_activity(example.count_words, path)
        (mock.raises(OSError(f"cannot read {path}")) if n == 4 else mock.returns(10 * n)).after(timedelta(minutes=n))
    result = tester.run(example.word_count, "big")
    assert result.status == "FAILED"
    return result


def _probe(page: Path) -> Path:
    text = page.read_text(encoding="utf-8")
    probed = page.with_name(page.stem + "-probe.html")
    probed.write_text(text.replace("<head>", "<head>" + _PROBE_HEAD, 1).replace("</body>", _PROBE_END + "</body>", 1),
                      encoding="utf-8")
    return probed


def test_fan_out_picture_loads_without_errors_and_is_screenshotted(tmp_path: Path) -> None:
    page = write_html_timeline(tmp_path / "fan_out.html", fan_out_run())
    screenshot = tmp_path / "fan_out.png"

    shown = render(_probe(page), screenshot=screenshot, size=(1320, 1000))

    assert shown.console == [], "the page logged to the console:\n" + "\n".join(shown.console)
    probe_text = re.search(r'data-probe="([^"]*)"', shown.dom)
    assert probe_text is not None, "the probe did not run:\n" + shown.dom[:2000]
    probe: dict[str, Any] = json.loads(probe_text.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert probe["errors"] == []
    assert probe["resources"] == []  # self-contained: nothing fetched
    assert int(probe["ready"]) > 0  # the page's own script ran to its end
    bars = probe["bars"]
    assert bars["activity"] == {"count": 6, "visible": 6, "fill": "rgb(47, 111, 223)"}  # list_files + 5 branches
    assert bars["activity-failed"] == {"count": 1, "visible": 1, "fill": "rgb(214, 69, 69)"}
    assert bars["orch-failed"]["visible"] == 1
    assert len(probe["highlighted"]) == 2  # hovering the failed bar marks its TaskScheduled and TaskFailed rows
    assert probe["chart"][0] > 1000
    assert all(address.startswith("127.0.0.1:") for address in shown.connections), shown.connections
    assert png_size(screenshot) == (1320, 1000)
    assert screenshot.stat().st_size > 30_000  # a blank page of this size compresses to a few kilobytes


def test_a_page_error_would_be_caught(tmp_path: Path) -> None:
    # the check above is not vacuous: a script error on the page shows up in chromium's console log
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><head></head><body><p>x</p><script>notDefined();</script></body></html>")

    shown = render(broken)

    assert any("Uncaught ReferenceError: notDefined is not defined" in line for line in shown.console), shown.console


_TICK_PROBE = """<script>
window.addEventListener("load", function () {
  var svg = document.querySelector(".chart.c0 svg").getBoundingClientRect();
  var labels = Array.prototype.map.call(document.querySelectorAll(".chart.c0 .tick text[text-anchor]"),
    function (t) { var box = t.getBoundingClientRect();
                   return [t.textContent, Math.round(box.left - svg.left), Math.round(box.right - svg.left)]; });
  document.body.setAttribute("data-ticks", JSON.stringify({width: Math.round(svg.width), labels: labels}));
});
</script>"""


def test_the_last_tick_label_is_not_cut_off_at_the_right_edge(tmp_path: Path) -> None:
    def wait(ctx: Any, _: Any) -> Any:
        yield ctx.create_timer(timedelta(seconds=1.6))   # the axis ends on a tick with a long clock-time label

    page = write_html_timeline(tmp_path / "ticks.html", WorkflowTester().run(wait), time="real")
    probed = page.with_name("ticks-probe.html")
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", _TICK_PROBE + "</body>", 1),
                      encoding="utf-8")

    shown = render(probed, screenshot=tmp_path / "ticks.png", size=(1320, 400))

    found = re.search(r'data-ticks="([^"]*)"', shown.dom)
    assert found is not None, shown.dom[:2000]
    ticks = json.loads(found.group(1).replace("&quot;", '"'))
    labels = ticks["labels"]
    assert labels[-1][0] == "00:00:01.600"
    assert all(left >= 0 and right <= ticks["width"] for _, left, right in labels), ticks
