"""``wftest ui`` / ``wftest.ui.serve``: the read-only diagnostics page over a database, checked over loopback.

The database holds a parent with two sub-orchestrations, a failed instance, a running one, a suspended one,
an instance with a hostile id, orchestrator name and payloads, and a dozen more for paging. Pages are
fetched with urllib; the last tests load them in Debian's headless chromium.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from _chromium import png_size, render

from wftest import BackendError, Engine, OrchestrationContext, SqliteBackend, Task
from wftest.cli import main
from wftest.ui import UiServer, serve

Gen = Generator[Task[Any], Any, Any]

HOSTILE_ID = '<script>alert("id")</script>&\'"/?#%41 x'
HOSTILE_NAME = "<b>evil</b>"
HOSTILE_INPUT = {"html": "<img src=x onerror=alert(1)>"}
HOSTILE_STATUS = "</pre><script>alert(2)</script>"
BULK = [f"bulk-{n:02d}" for n in range(12)]


# -- the orchestrations in the database -------------------------------------------------------------------


def greet(ctx: Any, name: str) -> str:
    return f"hello {name}"


def decline(ctx: Any, _: Any) -> None:
    raise ValueError("card declined <b>4242</b>")


def child(ctx: OrchestrationContext, name: str) -> Gen:
    greeting = yield ctx.call_activity(greet, input=name)
    yield ctx.create_timer(timedelta(minutes=5))
    return greeting


def parent(ctx: OrchestrationContext, names: list[str]) -> Gen:
    ctx.set_custom_status({"stage": "children", "count": len(names)})
    results = []
    for name in names:
        results.append((yield ctx.call_sub_orchestrator(child, input=name, instance_id=f"{ctx.instance_id}:{name}")))
    return results


def payment(ctx: OrchestrationContext, _: Any) -> Gen:
    yield ctx.call_activity(decline)


def waiter(ctx: OrchestrationContext, _: Any) -> Gen:
    return (yield ctx.wait_for_external_event("go"))


def hostile(ctx: OrchestrationContext, _: Any) -> Gen:
    ctx.set_custom_status(HOSTILE_STATUS)
    return (yield ctx.wait_for_external_event("go"))


def build_database(path: Path) -> None:
    """Created at 00:00 (order-1 and its children), 01:00 (pay-1), 02:00 (wait-1, wait-2, the hostile one), 03:00
    (bulk); on the virtual clock's 2024-01-01."""
    backend = SqliteBackend(path)
    engine = Engine(backend=backend)
    engine.add_named_orchestrator(HOSTILE_NAME, hostile)
    client = engine.client
    client.schedule_new_orchestration(parent, input=["ada", "bob"], instance_id="order-1")
    client.wait_for_orchestration_completion("order-1")
    engine.advance(timedelta(minutes=50))
    client.schedule_new_orchestration(payment, instance_id="pay-1")
    engine.run_until_idle()
    engine.advance(timedelta(hours=1))
    client.schedule_new_orchestration(waiter, instance_id="wait-1", input="first")
    client.schedule_new_orchestration(waiter, instance_id="wait-2")
    client.schedule_new_orchestration(HOSTILE_NAME, instance_id=HOSTILE_ID, input=HOSTILE_INPUT)
    engine.run_until_idle()
    client.suspend_orchestration("wait-2")
    engine.run_until_idle()
    engine.advance(timedelta(hours=1))
    for iid in BULK:
        client.schedule_new_orchestration(waiter, instance_id=iid)
    engine.run_until_idle()
    backend.close()


ALL_IDS = ["order-1", "order-1:ada", "order-1:bob", "pay-1", HOSTILE_ID, "wait-1", "wait-2", *BULK]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ui") / "workflows.db"
    build_database(path)
    return path


@pytest.fixture
def ui(db: Path) -> Iterator[UiServer]:
    with serve(db, host="127.0.0.1", port=0) as server:
        yield server


@dataclass
class Page:
    status: int
    text: str
    headers: dict[str, str]


def fetch(url: str, *, method: str = "GET", headers: dict[str, str] | None = None) -> Page:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Page(response.status, response.read().decode("utf-8"), dict(response.headers))
    except urllib.error.HTTPError as err:
        return Page(err.code, err.read().decode("utf-8"), dict(err.headers))


def page_of(ui: UiServer, instance_id: str, query: str = "") -> Page:
    return fetch(ui.url + "instances/" + quote(instance_id, safe="") + query)


def listed(page: Page) -> list[str]:
    """The instance ids in the list table, in order (unescaped)."""
    parser = _Links()
    parser.feed(page.text.split('<table class="list">', 1)[-1].split("</table>", 1)[0] if "<table" in page.text
                else "")
    return [text for _, text, css, cell in parser.cells if css == "iid" and cell == 1]


class _Links(HTMLParser):
    """Collects every <a> (href, text, class), and the table cell (1-based) it sits in."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []
        self.cells: list[tuple[str, str, str, int]] = []
        self._cell = 0
        self._open: tuple[str, str] | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "tr":
            self._cell = 0
        elif tag == "td":
            self._cell += 1
        elif tag == "a":
            self._open = (values.get("href") or "", values.get("class") or "")
            self._text = ""

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.links.append((self._open[0], self._text, self._open[1]))
            self.cells.append((self._open[0], self._text, self._open[1], self._cell))
            self._open = None


def links(page: Page) -> list[tuple[str, str, str]]:
    parser = _Links()
    parser.feed(page.text)
    return parser.links


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(page: Page) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(page.text)
    return parser.tags


def next_href(page: Page) -> str | None:
    found = re.search(r'<a class="button next" rel="next" href="([^"]*)"', page.text)
    return found.group(1).replace("&amp;", "&") if found else None


# -- the list -------------------------------------------------------------------------------------------------


def test_the_list_shows_every_instance_oldest_first(ui: UiServer) -> None:
    page = fetch(ui.url)

    assert page.status == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert listed(page) == ALL_IDS
    assert "page 1 · 19 instances, oldest first" in page.text
    assert next_href(page) is None  # 19 fit on one page of 50


def test_the_list_links_each_instance_and_its_parent(ui: UiServer) -> None:
    page = fetch(ui.url)

    hrefs = {text: href for href, text, css in links(page) if css == "iid"}
    assert hrefs["order-1:ada"] == "/instances/order-1%3Aada"
    row = page.text.split('href="/instances/order-1%3Abob"', 1)[1].split("</tr>", 1)[0]
    assert 'href="/instances/order-1"' in row  # the parent column


@pytest.mark.parametrize(("query", "expected"), [
    ("?status=FAILED", ["pay-1"]),
    ("?status=SUSPENDED", ["wait-2"]),
    ("?status=COMPLETED&status=FAILED", ["order-1", "order-1:ada", "order-1:bob", "pay-1"]),
    ("?status=completed,failed", ["order-1", "order-1:ada", "order-1:bob", "pay-1"]),
    ("?name=child", ["order-1:ada", "order-1:bob"]),
    ("?prefix=order-1%3A", ["order-1:ada", "order-1:bob"]),
    ("?prefix=bulk-1", ["bulk-10", "bulk-11"]),
    ("?from=2024-01-01T01:00&to=2024-01-01T02:30", ["pay-1", HOSTILE_ID, "wait-1", "wait-2"]),
    ("?from=2024-01-01T02:00:00Z", [HOSTILE_ID, "wait-1", "wait-2", *BULK]),
    ("?to=2024-01-01T03:30%2B03:00", ["order-1", "order-1:ada", "order-1:bob"]),  # 00:30 UTC
    ("?name=waiter&status=RUNNING&prefix=wait", ["wait-1"]),
])
def test_filters_narrow_the_list(ui: UiServer, query: str, expected: list[str]) -> None:
    page = fetch(ui.url + query)

    assert page.status == 200, page.text
    assert listed(page) == expected


def test_filters_are_kept_in_the_form(ui: UiServer) -> None:
    page = fetch(ui.url + "?status=FAILED&name=payment&prefix=pa&from=2024-01-01T01:00&size=25")

    fields = [attrs for tag, attrs in tags(page) if tag == "input" and attrs.get("type") != "checkbox"]
    inputs = {attrs.get("name"): attrs for attrs in fields}
    assert inputs["name"]["value"] == "payment" and inputs["prefix"]["value"] == "pa"
    assert inputs["from"]["value"] == "2024-01-01T01:00:00"
    checked = [attrs["value"] for tag, attrs in tags(page) if tag == "input" and "checked" in attrs]
    assert checked == ["FAILED"]
    assert '<option value="25" selected>' in page.text


def test_no_match_says_so(ui: UiServer) -> None:
    page = fetch(ui.url + "?prefix=zzz")

    assert listed(page) == [] and "No instance matches these filters." in page.text


def test_pages_follow_the_continuation_token_to_the_end(ui: UiServer) -> None:
    seen: list[str] = []
    page = fetch(ui.url + "?size=5")
    numbers = []
    while True:
        assert page.status == 200, page.text
        seen += listed(page)
        numbers.append(int(re.search(r"page (\d+) ·", page.text).group(1)))  # type: ignore[union-attr]
        href = next_href(page)
        if href is None:
            break
        assert "size=5" in href  # the page size (and every filter) rides along
        page = fetch(ui.url.rstrip("/") + href)

    assert seen == ALL_IDS  # every instance once, in order
    assert numbers == [1, 2, 3, 4]
    assert 'href="/?size=5">first page</a>' in page.text


def test_paging_keeps_the_filters(ui: UiServer) -> None:
    first = fetch(ui.url + "?status=RUNNING&size=10")
    href = next_href(first)
    assert href is not None and "status=RUNNING" in href
    second = fetch(ui.url.rstrip("/") + href)

    assert listed(first) + listed(second) == [HOSTILE_ID, "wait-1", *BULK]
    assert next_href(second) is None


@pytest.mark.parametrize(("query", "message"), [
    ("?status=DONE", "unknown status &#x27;DONE&#x27;"),
    ("?from=yesterday", "from must be an ISO date or date-time"),
    ("?size=0", "size must be between 1 and 500, not 0"),
    ("?size=ten", "size must be a whole number"),
    ("?after=garbage", "the continuation token &#x27;garbage&#x27; is not valid"),
])
def test_bad_filters_get_a_400_page_that_says_what_is_wrong(ui: UiServer, query: str, message: str) -> None:
    page = fetch(ui.url + query)

    assert page.status == 400
    assert message in page.text and 'href="/">← all instances</a>' in page.text


# -- an instance ----------------------------------------------------------------------------------------------


def test_an_unknown_instance_is_a_404_page_that_says_so(ui: UiServer) -> None:
    page = page_of(ui, "no-such-order")

    assert page.status == 404
    assert "404 · No such instance" in page.text
    assert "There is no instance &#x27;no-such-order&#x27; in" in page.text and "purged" in page.text
    assert page_of(ui, "no-such-order", "/history.json").status == 404


def test_an_unknown_path_is_a_404_page(ui: UiServer) -> None:
    page = fetch(ui.url + "admin")

    assert page.status == 404 and "There is no page at &#x27;/admin&#x27;" in page.text


def test_a_failed_instance_shows_its_failure_and_timeline(ui: UiServer) -> None:
    page = page_of(ui, "pay-1")

    assert page.status == 200
    assert '<span class="status FAILED">FAILED</span>' in page.text
    assert "wftest.errors.TaskFailedError</strong>: activity task #1 failed: card declined &lt;b&gt;4242&lt;/b&gt;" \
        in page.text
    assert "caused by builtins.ValueError" in page.text and "stack trace" in page.text
    assert '<svg class="gantt"' in page.text and "#1 decline" in page.text  # the chart, with the activity's lane
    assert "<td class=\"kind\">TaskFailed</td>" in page.text  # the event table


def test_an_instance_shows_its_facts_and_payloads(ui: UiServer) -> None:
    page = page_of(ui, "order-1")

    assert "<dt>orchestrator</dt><dd>parent</dd>" in page.text
    assert "<dt>created</dt><dd>2024-01-01 00:00:00 UTC</dd>" in page.text
    assert "<dt>completed</dt><dd>2024-01-01 00:10:00 UTC</dd>" in page.text
    payloads = page.text.split('<section class="panel payloads">', 1)[1].split("</section>", 1)[0]
    assert '<h3>input</h3><pre class="payload">[\n  &quot;ada&quot;,\n  &quot;bob&quot;\n]</pre>' in payloads
    assert "&quot;hello bob&quot;" in payloads
    assert "&quot;stage&quot;: &quot;children&quot;" in payloads  # the custom status, pretty-printed


def test_a_running_and_a_suspended_instance(ui: UiServer) -> None:
    running = page_of(ui, "wait-1")
    suspended = page_of(ui, "wait-2")

    assert '<h1><span class="mono">wait-1</span><span class="status RUNNING">RUNNING</span></h1>' in running.text
    assert "<h3>output</h3><p class=\"muted\">none</p>" in running.text
    assert '<span class="status SUSPENDED">SUSPENDED</span></h1>' in suspended.text
    assert "ExecutionSuspended" in suspended.text


def test_the_timeline_of_a_suspended_instance_says_suspended(ui: UiServer) -> None:
    timeline = page_of(ui, "wait-2").text.split('<section class="panel timeline">', 1)[1]

    assert '<h2>Timeline<span class="status SUSPENDED">SUSPENDED</span></h2>' in timeline
    assert '<text class="lane-detail" x="12" y="62.0">suspended</text>' in timeline
    assert "RUNNING" not in timeline and "still running" not in timeline


def test_the_timeline_shows_the_status_of_the_record() -> None:
    # the page passes the record's status to the chart: a history that ended resumed, under a record that
    # says SUSPENDED (as when a suspend request is recorded and not yet in the history), reads SUSPENDED
    import dataclasses

    from wftest import _ui
    from wftest.protos import orchestrator_service_pb2 as pb

    engine = Engine()
    engine.client.schedule_new_orchestration(waiter, instance_id="w")
    engine.run_until_idle()

    class Suspended:
        def __getattr__(self, name: str) -> Any:
            return getattr(engine.backend, name)

        def get_instance(self, instance_id: str) -> Any:
            record = engine.backend.get_instance(instance_id)
            return dataclasses.replace(record, status=pb.ORCHESTRATION_STATUS_SUSPENDED) if record else None

    page = _ui.App(Suspended(), "test").handle("/instances/w").body.decode("utf-8")  # type: ignore[arg-type]
    timeline = page.split('<section class="panel timeline">', 1)[1]

    assert '<h2>Timeline<span class="status SUSPENDED">SUSPENDED</span></h2>' in timeline
    assert "RUNNING" not in timeline


def test_pages_from_a_database_do_not_suggest_mock_delays(ui: UiServer) -> None:
    page = page_of(ui, "wait-2")  # every event at one instant: laid out by step

    assert "every event happened at the same instant" in page.text
    assert ".after(" not in page.text and "mocks" not in page.text


def test_a_parent_links_to_its_sub_orchestrations(ui: UiServer) -> None:
    page = page_of(ui, "order-1")

    children = page.text.split('<section class="panel children">', 1)[1].split("</section>", 1)[0]
    assert "Sub-orchestrations (2)" in children
    assert [(href, text) for href, text, css in links(Page(200, children, {})) if css == "iid"] == [
        ("/instances/order-1%3Aada", "order-1:ada"), ("/instances/order-1%3Abob", "order-1:bob")]
    # the chart's sub-orchestration lanes link to the rows of that table
    assert '<a href="#instance-order-1:ada">' in page.text and '<tr id="instance-order-1:ada">' in page.text


def test_a_sub_orchestration_links_back_to_its_parent(ui: UiServer) -> None:
    page = page_of(ui, "order-1:bob")

    parent_cell = page.text.split("<dt>parent</dt><dd>", 1)[1].split("</dd>", 1)[0]
    assert '<a class="iid" href="/instances/order-1">order-1</a>' in parent_cell
    assert "orchestrator parent, its task #2" in parent_cell and "COMPLETED" in parent_cell


def test_the_chart_axis_can_be_switched(ui: UiServer) -> None:
    real = page_of(ui, "order-1:ada")
    virtual = page_of(ui, "order-1:ada", "?time=virtual")

    assert "time (UTC)" in real.text and 'href="/instances/order-1%3Aada?time=virtual"' in real.text
    assert "virtual time from the start" in virtual.text and "+1m" in virtual.text
    assert page_of(ui, "order-1:ada", "?time=sideways").status == 400


def test_the_history_downloads_as_a_history_file(ui: UiServer) -> None:
    page = page_of(ui, "order-1:ada", "/history.json")

    assert page.status == 200 and page.headers["Content-Type"] == "application/json; charset=utf-8"
    assert page.headers["Content-Disposition"] == 'attachment; filename="order-1_ada.history.json"'
    data = json.loads(page.text)
    assert data["format"] == "wftest.history/1" and data["instanceId"] == "order-1:ada"
    assert data["orchestrator"] == "child" and "orchestratorStarted" in data["events"][0]
    assert data["events"][1]["executionStarted"]["input"] == '"ada"'


# -- safety ---------------------------------------------------------------------------------------------------


def _assert_inert(page: Page) -> None:
    """Nothing from the database became markup: one script (the page's own), no images, no handlers."""
    found = tags(page)
    assert [tag for tag, _ in found].count("script") == 1
    assert "img" not in [tag for tag, _ in found] and "b" not in [tag for tag, _ in found]
    assert not [(tag, name) for tag, attrs in found for name in attrs if name.startswith("on")]


def test_hostile_ids_names_and_payloads_are_escaped(ui: UiServer) -> None:
    listing = fetch(ui.url)
    page = page_of(ui, HOSTILE_ID)

    assert page.status == 200
    for shown in (listing, page):
        _assert_inert(shown)
        assert "&lt;script&gt;alert(&quot;id&quot;)&lt;/script&gt;&amp;&#x27;&quot;/?#%41 x" in shown.text
        assert "&lt;b&gt;evil&lt;/b&gt;" in shown.text
    assert HOSTILE_ID in listed(listing)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "&lt;/pre&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in page.text
    # the link in the list is the page's address: every reserved character percent-encoded
    assert f'href="/instances/{quote(HOSTILE_ID, safe="")}"'.replace("&", "&amp;") in listing.text


def test_hostile_filter_values_are_escaped(ui: UiServer) -> None:
    page = fetch(ui.url + "?name=" + quote('"><script>alert(3)</script>', safe=""))

    _assert_inert(page)
    assert 'value="&quot;&gt;&lt;script&gt;alert(3)&lt;/script&gt;"' in page.text


def test_pages_allow_only_their_own_style_and_script(ui: UiServer) -> None:
    page = fetch(ui.url)

    policy = page.headers["Content-Security-Policy"]
    assert policy.startswith("default-src 'none'; style-src 'sha256-") and "script-src 'sha256-" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_the_history_file_name_is_sanitised(ui: UiServer) -> None:
    page = page_of(ui, HOSTILE_ID, "/history.json")

    assert page.status == 200
    assert re.fullmatch(r'attachment; filename="[A-Za-z0-9._-]+\.history\.json"', page.headers["Content-Disposition"])


def test_only_get_and_head_are_served(ui: UiServer) -> None:
    head = fetch(ui.url, method="HEAD")
    post = fetch(ui.url, method="POST")

    assert head.status == 200 and head.text == "" and int(head.headers["Content-Length"]) > 1000
    assert post.status == 405 and post.headers["Allow"] == "GET, HEAD"


def test_a_request_for_another_host_name_is_refused(ui: UiServer) -> None:
    # DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 must not read the database
    refused = fetch(ui.url, headers={"Host": f"evil.example:{ui.port}"})
    local = fetch(ui.url, headers={"Host": f"localhost:{ui.port}"})

    assert refused.status == 421 and local.status == 200


def _fingerprint(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_mtime_ns, stat.st_size


def test_browsing_leaves_the_database_file_unchanged(db: Path) -> None:
    before = _fingerprint(db)

    with serve(db, port=0) as ui:
        pages = [fetch(ui.url), fetch(ui.url + "?size=5&status=RUNNING")]
        pages += [page_of(ui, iid) for iid in ALL_IDS] + [page_of(ui, "order-1", "/history.json")]

    assert all(p.status == 200 for p in pages)
    assert _fingerprint(db) == before
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # nothing was logged for a later checkpoint either


def test_the_database_is_opened_read_only(ui: UiServer, db: Path) -> None:
    backend = ui.backend

    assert isinstance(backend, SqliteBackend) and backend.read_only
    with pytest.raises(BackendError, match="open read-only"):
        backend.purge_instance("order-1")
    assert backend.get_instance("order-1") is not None  # the instance is still there


def test_a_worker_writing_the_same_file_is_not_disturbed(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    writer = SqliteBackend(path)
    engine = Engine(backend=writer)
    engine.client.schedule_new_orchestration(waiter, instance_id="early")
    engine.run_until_idle()

    with serve(path, port=0) as ui:
        assert listed(fetch(ui.url)) == ["early"]
        engine.client.schedule_new_orchestration(waiter, instance_id="late")   # the worker keeps writing
        engine.client.raise_orchestration_event("early", "go", data=1)
        engine.run_until_idle()
        assert listed(fetch(ui.url)) == ["early", "late"]  # each request sees the latest commit
        assert '<span class="status COMPLETED">COMPLETED</span></h1>' in page_of(ui, "early").text
        engine.client.raise_orchestration_event("late", "go", data=2)
        assert engine.client.wait_for_orchestration_completion("late").output == 2
    writer.close()


# -- serving ------------------------------------------------------------------------------------------------


def test_serve_shows_an_engine_in_memory() -> None:
    engine = Engine()
    engine.client.schedule_new_orchestration(parent, input=["cy"], instance_id="mem-1")
    engine.client.wait_for_orchestration_completion("mem-1")

    with serve(engine) as ui:
        assert "MemoryBackend (in this process)" in fetch(ui.url).text
        assert listed(fetch(ui.url)) == ["mem-1", "mem-1:cy"]
        assert "/instances/mem-1%3Acy" in page_of(ui, "mem-1").text
    with serve(engine.backend) as ui:
        assert listed(fetch(ui.url + "?status=COMPLETED&name=child")) == ["mem-1:cy"]


def test_port_zero_picks_a_free_port_and_close_stops_serving(db: Path) -> None:
    first = serve(db, port=0)
    second = serve(db, port=0)
    try:
        assert first.port != second.port and first.port > 0
        assert first.url == f"http://127.0.0.1:{first.port}/"
        assert fetch(second.url).status == 200
    finally:
        first.close()
        second.close()
    second.close()  # a second close does nothing
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(first.url, timeout=5)


def test_a_busy_port_is_a_clear_error(ui: UiServer, db: Path) -> None:
    with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{ui.port}"):
        serve(db, port=ui.port)


def test_what_is_not_a_wftest_database_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    text = tmp_path / "notes.txt"
    text.write_text("not a database, but long enough to have a header of sorts " * 10)

    with pytest.raises(BackendError, match="no such database file"):
        serve(tmp_path / "missing.db")
    with pytest.raises(BackendError, match=r"belongs to another application \(tables: t\)"):
        serve(other)
    with pytest.raises(BackendError, match="cannot read this file as a wftest database"):
        serve(text)
    with pytest.raises(TypeError, match="takes the path of a wftest sqlite database, an Engine or a Backend"):
        serve(42)
    assert not (tmp_path / "missing.db").exists()



def test_the_example_in_the_docs_runs() -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "ui.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", docs, re.S)

    assert len(blocks) == 1
    exec(compile(blocks[0], "docs/ui.md", "exec"), {})  # its own assert checks the page


def test_the_public_surface_is_documented() -> None:
    import inspect

    import wftest.ui

    assert wftest.ui.__all__ == sorted(wftest.ui.__all__) == ["UiServer", "serve"]
    assert all(getattr(wftest.ui, name).__doc__ for name in wftest.ui.__all__)
    public = [name for name, value in vars(UiServer).items() if not name.startswith("_")
              and (inspect.isfunction(value) or isinstance(value, property))]
    assert public == ["backend", "close"] and all(getattr(UiServer, name).__doc__ for name in public)

# -- the command ----------------------------------------------------------------------------------------------


def test_cli_help_lists_ui(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["ui", "--help"])
    out = capsys.readouterr().out
    assert "--db DB" in out and "0 picks a free one" in out and "default 127.0.0.1" in out


def test_cli_ui_with_a_missing_database_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ui", "--db", str(tmp_path / "nope.db")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wftest ui: ") and "nope.db: no such database file" in err


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_cli_ui_prints_its_url_and_stops_cleanly(db: Path, stop: signal.Signals) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "wftest", "ui", "--db", str(db), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        found = re.search(r"at (http://127\.0\.0\.1:\d+/); Ctrl-C stops it", first)
        assert found, first + (process.stderr.read() if process.poll() is not None and process.stderr else "")
        assert "order-1:ada" in fetch(found.group(1)).text
        process.send_signal(stop)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert out.strip() == "wftest ui stopped" and err == ""


# -- in a real browser ----------------------------------------------------------------------------------------


def _ready(dom: str) -> int:
    found = re.search(r'<body data-ready="(\d+)"', dom)
    return int(found.group(1)) if found else -1


@pytest.mark.slow
def test_the_list_page_in_a_browser(ui: UiServer, tmp_path: Path) -> None:
    screenshot = tmp_path / "ui-list.png"

    shown = render(ui.url + "?size=10", screenshot=screenshot, size=(1320, 900))

    assert shown.console == [], "the page logged to the console:\n" + "\n".join(shown.console)
    assert _ready(shown.dom) == 0  # the page's script ran (the policy let it) and found no chart
    assert 'class="iid" href="/instances/order-1%3Aada"' in shown.dom and "next page →" in shown.dom
    assert "<script>alert" not in shown.dom  # the hostile id stayed text
    assert shown.connections and all(a.startswith("127.0.0.1:") for a in shown.connections), shown.connections
    assert png_size(screenshot) == (1320, 900)
    assert screenshot.stat().st_size > 30_000  # a blank page of this size compresses to a few kilobytes


@pytest.mark.slow
@pytest.mark.parametrize("instance_id", ["order-1", "pay-1", "wait-2", HOSTILE_ID])
def test_an_instance_page_in_a_browser(ui: UiServer, tmp_path: Path, instance_id: str) -> None:
    screenshot = tmp_path / "ui-instance.png"

    shown = render(ui.url + "instances/" + quote(instance_id, safe=""), screenshot=screenshot, size=(1320, 1400))

    assert shown.console == [], "the page logged to the console:\n" + "\n".join(shown.console)
    assert _ready(shown.dom) > 0  # the chart's hover script ran and wired up its bars
    assert '<svg class="gantt"' in shown.dom
    assert "<img" not in shown.dom and "<script>alert" not in shown.dom
    assert all(a.startswith("127.0.0.1:") for a in shown.connections), shown.connections
    assert png_size(screenshot) == (1320, 1400) and screenshot.stat().st_size > 30_000


@pytest.mark.slow
def test_a_script_the_policy_does_not_allow_would_be_caught() -> None:
    # the console checks above are not vacuous: had a payload become a script, chromium would refuse to run it
    # and say so on the console. Here the app is swapped for one that adds a script of its own to the page.
    from wftest import _ui

    class Injecting(_ui.App):
        def handle(self, target: str) -> _ui.Response:
            response = super().handle(target)
            response.body = response.body.replace(b"</body>", b"<script>document.title = 'x';</script></body>")
            return response

    with serve(Engine(), port=0) as server:
        server._httpd.app = Injecting(server.backend, "injected")
        shown = render(server.url)

    assert any("Content Security Policy" in line for line in shown.console), shown.console
