"""The diagnostics page: a small read-only web UI over a wftest database (``wftest.ui`` is the public face).

Routes (GET and HEAD only; every other method gets 405)::

    /                                  the instance list; filters and the page in the query string
    /instances/<id>                    one instance: facts, parent and sub-orchestrations, payloads,
                                       failure, the timeline picture and the event table
    /instances/<id>/history.json       its history as a ``.history.json`` file
    /favicon.ico                       204 (the pages declare an empty icon; this keeps logs clean)

Reading never writes: a database file is opened with ``SqliteBackend(path, read_only=True)`` (a sqlite
``mode=ro`` URI, in autocommit mode), so every request sees what the workers have committed and no lock is
ever held between requests. A backend or
engine object (tests) is read through the same three ``Backend`` methods: ``query_instances``,
``get_instance`` and ``get_history``.

Every string from the database is escaped (``html.escape``) or percent-encoded (URLs); the pages carry a
Content-Security-Policy that allows only their own inline style and script (by hash), so even a payload that
slipped through could not run. On a loopback address, requests whose ``Host`` header names another host are
refused (DNS-rebinding protection).
"""

from __future__ import annotations

import html
import ipaddress
import json
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from wftest import _events as ev
from wftest.backends import Backend, InstanceQuery, InstanceRecord
from wftest.backends.sqlite import SqliteBackend
from wftest.errors import InstanceNotFoundError
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.testing import _report

_log = logging.getLogger("wftest.ui")

STATUSES = ("RUNNING", "PENDING", "SUSPENDED", "COMPLETED", "FAILED", "TERMINATED", "CONTINUED_AS_NEW", "CANCELED")
PAGE_SIZES = (10, 25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
_MAX_PAGE_SIZE = 500
_MAX_CHILDREN = 500  # sub-orchestrations listed on an instance page
_MAX_PAYLOAD = 200_000  # characters of one payload shown on a page
_TIME_AXES = {"real": "clock time", "virtual": "offsets", "steps": "steps"}


# -- what is read ---------------------------------------------------------------------------------------------


def open_source(source: object) -> tuple[Backend, str, bool]:
    """The backend to read, a label for the page header, and whether the server owns (closes) it."""
    if isinstance(source, str | os.PathLike):
        backend = SqliteBackend(source, read_only=True)
        return backend, str(source), True
    inner = getattr(source, "backend", None)  # an Engine (or anything that carries a backend)
    if inner is not None and _is_backend(inner):
        return inner, _label(inner), False
    if _is_backend(source):
        return source, _label(source), False  # type: ignore[return-value]
    raise TypeError(
        "wftest.ui.serve() takes the path of a wftest sqlite database, an Engine or a Backend, "
        f"not {type(source).__qualname__}"
    )


def _is_backend(obj: object) -> bool:
    return all(callable(getattr(obj, name, None)) for name in ("query_instances", "get_instance", "get_history"))


def _label(backend: object) -> str:
    path = getattr(backend, "path", None)
    if isinstance(path, str) and path != ":memory:":
        return path
    return f"{type(backend).__name__} (in this process)"


# -- responses ------------------------------------------------------------------------------------------------


@dataclass
class Response:
    """What one request gets back."""

    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class _BadRequest(ValueError):
    pass


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def instance_href(instance_id: str) -> str:
    """The path of an instance's page (every character of the id percent-encoded but the unreserved ones)."""
    return "/instances/" + quote(instance_id, safe="")


def _link(instance_id: str, text: str | None = None, *, css: str = "iid") -> str:
    return f'<a class="{css}" href="{_e(instance_href(instance_id))}">{_e(instance_id if text is None else text)}</a>'


def _when(value: datetime | None) -> str:
    return "" if value is None else value.isoformat(sep=" ", timespec="seconds")


def _badge(status: str) -> str:
    return f'<span class="status {_e(status)}">{_e(status)}</span>'


_UI_CSS = """
body { padding: 0 0 40px; background: #f7f9fb; }
header.top { display: flex; align-items: baseline; gap: 18px; padding: 12px 28px; background: #1f2933; color: #e4e7eb; }
header.top a { color: #fff; text-decoration: none; font-weight: 600; }
header.top .db { color: #9aa5b1; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px;
  overflow-wrap: anywhere; }
header.top nav { margin-left: auto; font-size: 13px; }
main { padding: 20px 28px; }
main > section, .panel { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px;
  margin: 0 0 18px; }
main > section > :first-child, .panel > h2:first-child { margin-top: 0; }
h1 .mono { font-size: 20px; }
.panel > dl.facts:last-child, .panel > table:last-child { margin-bottom: 0; }
.timeline { position: relative; }
.timeline > section > h2:first-child { margin-top: 0; }
.timeline > .axes { position: absolute; right: 20px; top: 18px; margin: 0; }
.muted { color: var(--muted); }
a { color: #2159c6; }
a.iid, code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px;
  overflow-wrap: anywhere; }
h1 .status, h2 .status { font-size: 12px; }
form.filters { display: flex; flex-wrap: wrap; gap: 10px 16px; align-items: flex-end; }
form.filters fieldset { border: 0; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: 6px 18px;
  flex-basis: 100%; align-items: center; }
form.filters legend { float: left; color: var(--muted); font-size: 12px; margin-right: 6px; }
form.filters fieldset label { font-size: 12px; display: inline-flex; gap: 3px; align-items: center; cursor: pointer; }
form.filters label.field { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 2px; }
form.filters input[type=text], form.filters input[type=datetime-local], form.filters select {
  font: inherit; font-size: 13px; padding: 4px 6px; border: 1px solid #c4cdd5; border-radius: 4px; color: var(--ink);
  background: #fff; min-width: 150px; }
button, a.button { font: inherit; font-size: 13px; padding: 5px 14px; border-radius: 4px; border: 1px solid #2159c6;
  background: #2f6fdf; color: #fff; cursor: pointer; text-decoration: none; display: inline-block; }
a.button.plain { background: #fff; color: #2159c6; border-color: #c4cdd5; }
table.list { border-collapse: collapse; width: 100%; font-size: 13px; }
table.list th { text-align: left; font-weight: 600; padding: 6px 10px; background: #eef2f7;
  border-bottom: 1px solid var(--line); white-space: nowrap; }
table.list td { padding: 6px 10px; border-bottom: 1px solid #edf1f5; vertical-align: top; }
table.list tr:hover td { background: #f5f8fc; }
table.list td.when { white-space: nowrap; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px;
  color: var(--muted); }
table.list .status { margin-left: 0; }
table.list tr:target td { background: #fff4c2; }
.pager { display: flex; gap: 12px; align-items: center; margin-top: 14px; font-size: 13px; }
.pager .spacer { flex: 1; }
pre.payload { margin: 4px 0 12px; padding: 8px 10px; background: #f5f7fa; border: 1px solid var(--line);
  border-radius: 4px; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 12px; max-height: 360px;
  overflow: auto; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 0 24px; }
.grid2 h3 { font-size: 13px; margin: 6px 0 2px; color: var(--muted); font-weight: 600; }
.axes { font-size: 12px; color: var(--muted); margin: 0 0 6px; }
.axes a, .axes strong { margin-left: 8px; }
.error-page { max-width: 760px; }
.error-page h1 { color: var(--failed); }
footer { padding: 0 28px; }
"""

_STYLE = _report.stylesheet() + _UI_CSS
_SCRIPT = _report.script()
_CSP = (f"default-src 'none'; style-src {_report.csp_hash(_STYLE)}; script-src {_report.csp_hash(_SCRIPT)}; "
        "img-src data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


# -- the application ------------------------------------------------------------------------------------------


class App:
    """Turns a request path into a response, reading ``backend`` (no HTTP here: tests can call it directly)."""

    def __init__(self, backend: Backend, label: str) -> None:
        self.backend = backend
        self.label = label

    def handle(self, target: str) -> Response:
        """The response to ``GET target`` (a path with an optional query string)."""
        parts = urlsplit(target)
        path = parts.path
        params = parse_qs(parts.query, keep_blank_values=False)
        try:
            if path in ("/", "/instances", "/instances/"):
                return self._html(HTTPStatus.OK, "Instances", self.list_page(params))
            if path == "/favicon.ico":
                return Response(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            if path.startswith("/instances/"):
                rest = path[len("/instances/"):]
                if rest.endswith("/history.json"):
                    return self.history_file(unquote(rest[: -len("/history.json")]))
                return self.instance_page(unquote(rest), params)
            return self._error(HTTPStatus.NOT_FOUND, "Not found",
                               f"There is no page at {path!r}. The pages are the instance list and one page per "
                               "instance.")
        except _BadRequest as err:
            return self._error(HTTPStatus.BAD_REQUEST, "Bad request", str(err))
        except Exception as err:  # a page must not take the server down; the traceback goes to the log
            _log.exception("wftest ui: %s failed", target)
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal error",
                               f"Reading {self.label} failed: {type(err).__name__}: {err}")

    # -- pages --------------------------------------------------------------------------------------------

    def list_page(self, params: Mapping[str, list[str]]) -> str:
        """The filter form, one page of instances, and the links to the next page."""
        filters = _Filters.parse(params)
        try:
            records, token = self.backend.query_instances(filters.query())
        except ValueError as err:  # a continuation token that is not one
            raise _BadRequest(f"the continuation token {filters.after!r} is not valid ({err}); "
                              "start again from the first page") from None
        parts = [f'<section class="panel"><h1>Instances</h1>{filters.form()}</section>', '<section class="panel">']
        if records:
            rows = ['<table class="list"><thead><tr><th>instance</th><th>orchestrator</th><th>status</th>'
                    "<th>created (UTC)</th><th>last updated (UTC)</th><th>parent</th></tr></thead><tbody>"]
            for record in records:
                parent = _link(record.parent_instance_id) if record.parent_instance_id else ""
                rows.append(
                    f"<tr><td>{_link(record.instance_id)}</td><td>{_e(record.name)}</td>"
                    f"<td>{_badge(ev.status_name(record.status))}</td><td class=\"when\">{_e(_when(record.created_at))}"
                    f'</td><td class="when">{_e(_when(record.last_updated_at))}</td><td>{parent}</td></tr>'
                )
            rows.append("</tbody></table>")
            parts.append("".join(rows))
        else:
            text = "No instance matches these filters." if filters.active() else "The database holds no instances."
            parts.append(f'<p class="muted empty">{_e(text)}</p>')
        shown = f"page {filters.page_number} · {len(records)} instance{'s' if len(records) != 1 else ''}"
        pager = ['<div class="pager">', f'<span class="muted">{_e(shown)}, oldest first</span>',
                 '<span class="spacer"></span>']
        if filters.after:
            pager.append(f'<a class="button plain" href="{_e(filters.href())}">first page</a>')
        if token is not None:
            pager.append(f'<a class="button next" rel="next" href="{_e(filters.href(after=token))}">next page →</a>')
        pager.append("</div></section>")
        parts.extend(pager)
        return "".join(parts)

    def instance_page(self, instance_id: str, params: Mapping[str, list[str]]) -> Response:
        """One instance, or a 404 page that says it is not there."""
        time = (params.get("time") or ["real"])[-1]
        if time not in _TIME_AXES:
            raise _BadRequest(f"time must be one of {', '.join(_TIME_AXES)}, not {time!r}")
        record = self.backend.get_instance(instance_id)
        try:
            history = self.backend.get_history(instance_id) if record is not None else []
        except InstanceNotFoundError:
            record = None  # purged between the two reads
        if record is None:
            return self._not_found(instance_id)
        status = ev.status_name(record.status)
        children = _report.child_instances(history)
        parts = [f'<section class="panel"><h1><span class="mono">{_e(instance_id)}</span>{_badge(status)}</h1>',
                 _facts(record, len(history), self._parent(record) if record.parent_instance_id else None),
                 "</section>"]
        if children:
            parts.append(self._children(children))
        parts.append(_payloads(record))
        if history:
            axes = " ".join(
                f"<strong>{_e(text)}</strong>" if key == time
                else f'<a href="{_e(instance_href(instance_id) + "?" + urlencode({"time": key}))}">{_e(text)}</a>'
                for key, text in _TIME_AXES.items()
            )
            download = f'<a href="{_e(instance_href(instance_id) + "/history.json")}">download .history.json</a>'
            parts.append(f'<section class="panel timeline"><p class="axes">chart axis:{axes} · {download}</p>')
            parts.append(_report.render_section(history, mode=time, prefix="t-", heading="Timeline", level=2,
                                                linked=children, status=status))
            parts.append("</section>")
        else:
            parts.append('<section class="panel"><h2>Timeline</h2><p class="muted">No history yet: the instance has '
                         "not run its first step (a worker has not picked it up, or its start is scheduled for "
                         "later).</p></section>")
        return self._html(HTTPStatus.OK, f"{instance_id} ({record.name})", "".join(parts),
                          footer="Hover a bar to see its events; click it to jump to them.")

    def history_file(self, instance_id: str) -> Response:
        """The instance's history as ``.history.json`` (a download)."""
        from wftest import history as history_files

        record = self.backend.get_instance(instance_id)
        if record is None:
            return self._not_found(instance_id)
        try:
            events = self.backend.get_history(instance_id)
        except InstanceNotFoundError:
            return self._not_found(instance_id)
        text = history_files.dumps_json(events, orchestrator=record.name, instance_id=instance_id)
        safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in instance_id)[:100]
        filename = f"{safe or 'history'}{history_files.JSON_SUFFIX}"
        return Response(HTTPStatus.OK, text.encode("utf-8"), "application/json; charset=utf-8",
                        {"Content-Disposition": f'attachment; filename="{filename}"'})

    def _parent(self, record: InstanceRecord) -> str:
        parent_id = cast(str, record.parent_instance_id)
        parent = self.backend.get_instance(parent_id)
        task = f", its task #{record.parent_task_id}" if record.parent_task_id not in (None, -1) else ""
        if parent is None:
            return f'{_link(parent_id)} <span class="muted">(no longer in the database)</span>'
        return (f'{_link(parent_id)} {_badge(ev.status_name(parent.status))} '
                f'<span class="muted">orchestrator {_e(parent.name)}{_e(task)}</span>')

    def _children(self, children: Sequence[str]) -> str:
        parts = ['<section class="panel children">']
        parts.append(f"<h2>Sub-orchestrations ({len(children)})</h2>")
        parts.append('<table class="list children"><thead><tr><th>instance</th><th>orchestrator</th>'
                     "<th>status</th><th>created (UTC)</th></tr></thead><tbody>")
        for child_id in children[:_MAX_CHILDREN]:
            child = self.backend.get_instance(child_id)
            row_id = _e(_report.anchor(child_id))  # the chart's sub-orchestration lanes link here
            if child is None:
                parts.append(f'<tr id="{row_id}"><td>{_link(child_id)}</td><td colspan="3" class="muted">'
                             "not in the database (not started yet, or purged)</td></tr>")
            else:
                parts.append(f'<tr id="{row_id}"><td>{_link(child_id)}</td><td>{_e(child.name)}</td>'
                             f"<td>{_badge(ev.status_name(child.status))}</td>"
                             f'<td class="when">{_e(_when(child.created_at))}</td></tr>')
        parts.append("</tbody></table>")
        if len(children) > _MAX_CHILDREN:
            parts.append(f'<p class="muted">and {len(children) - _MAX_CHILDREN} more (see the events below)</p>')
        parts.append("</section>")
        return "".join(parts)

    # -- page frame ---------------------------------------------------------------------------------------

    def _not_found(self, instance_id: str) -> Response:
        return self._error(
            HTTPStatus.NOT_FOUND, "No such instance",
            f"There is no instance {instance_id!r} in {self.label}. It may have been purged, or the id is "
            "misspelled (ids are case-sensitive).",
        )

    def _error(self, status: HTTPStatus, title: str, message: str) -> Response:
        body = (f'<section class="panel error-page"><h1>{_e(status.value)} · {_e(title)}</h1>'
                f'<p class="message">{_e(message)}</p><p><a href="/">← all instances</a></p></section>')
        return self._html(status, title, body)

    def _html(self, status: int, title: str, body: str, *, footer: str = "") -> Response:
        page = (
            "<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{_e(title)} — wftest ui</title><style>{_STYLE}</style></head>'
            f'<body><header class="top"><a href="/">wftest diagnostics</a><span class="db">{_e(self.label)}</span>'
            '<nav><a href="/">instances</a></nav></header>'
            f"<main>{body}</main>"
            f"<footer>wftest diagnostics: a read-only view. {_e(footer)}</footer>"
            f"<script>{_SCRIPT}</script></body></html>\n"
        )
        return Response(status, page.encode("utf-8"))


def _facts(record: InstanceRecord, history_length: int, parent: str | None) -> str:
    facts: list[tuple[str, str]] = [("orchestrator", _e(record.name)),
                                    ("created", _e(_when(record.created_at) + " UTC"))]
    facts.append(("last updated", _e(_when(record.last_updated_at) + " UTC")))
    if record.completed_at is not None:
        facts.append(("completed", _e(_when(record.completed_at) + " UTC")))
    if record.scheduled_start_at is not None:
        facts.append(("scheduled start", _e(_when(record.scheduled_start_at) + " UTC")))
    if record.execution_id:
        facts.append(("execution", _e(record.execution_id)))
    if record.version:
        facts.append(("version", _e(record.version)))
    if parent is not None:
        facts.append(("parent", parent))
    facts.append(("history", f"{history_length} events"))
    return '<dl class="facts">' + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>"


def _pretty(payload: str | None) -> str:
    if payload is None:
        return '<p class="muted">none</p>'
    try:
        text = json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    except ValueError:
        text = payload
    note = ""
    if len(text) > _MAX_PAYLOAD:
        note = f'<p class="muted">showing the first {_MAX_PAYLOAD:,} of {len(text):,} characters</p>'
        text = text[:_MAX_PAYLOAD]
    return f'<pre class="payload">{_e(text)}</pre>{note}'


def _failure(details: pb.TaskFailureDetails) -> str:
    parts = []
    depth = 0
    current: pb.TaskFailureDetails | None = details
    while current is not None and depth < 10:
        intro = "caused by " if depth else ""
        trace = current.stackTrace.value if current.HasField("stackTrace") else ""
        shown = f"<details open><summary>stack trace</summary><pre>{_e(trace)}</pre></details>" if trace else ""
        parts.append(f'<div class="failure"><strong>{_e(intro + current.errorType)}</strong>: '
                     f"{_e(current.errorMessage)}"
                     + (" (not retriable)" if current.isNonRetriable else "")
                     + shown + "</div>")
        current = current.innerFailure if current.HasField("innerFailure") else None
        depth += 1
    return "".join(parts)


def _payloads(record: InstanceRecord) -> str:
    parts = ['<section class="panel payloads"><h2>Payloads</h2><div class="grid2">',
             f'<div><h3>input</h3>{_pretty(record.input)}</div>',
             f'<div><h3>output</h3>{_pretty(record.output)}</div>',
             f'<div><h3>custom status</h3>{_pretty(record.custom_status)}</div></div>']
    if record.failure_details is not None:
        parts.append(f"<h3>failure</h3>{_failure(record.failure_details)}")
    parts.append("</section>")
    return "".join(parts)


@dataclass
class _Filters:
    """The list page's filters, read from (and written back to) the query string."""

    statuses: list[str] = field(default_factory=list)
    name: str = ""
    prefix: str = ""
    created_from: str = ""
    created_to: str = ""
    size: int = DEFAULT_PAGE_SIZE
    after: str = ""
    page_number: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, list[str]]) -> _Filters:
        def one(key: str) -> str:
            values = params.get(key) or [""]
            return values[-1].strip()

        statuses = [s.strip().upper() for value in params.get("status", []) for s in value.split(",") if s.strip()]
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown:
            raise _BadRequest(f"unknown status {unknown[0]!r}; the statuses are {', '.join(STATUSES)}")
        filters = cls(statuses=list(dict.fromkeys(statuses)), name=one("name"), prefix=one("prefix"),
                      created_from=one("from"), created_to=one("to"), after=one("after"))
        filters.size = _int(one("size"), "size", DEFAULT_PAGE_SIZE, 1, _MAX_PAGE_SIZE)
        filters.page_number = _int(one("page"), "page", 1, 1, 10**9)
        if not filters.after:
            filters.page_number = 1
        _moment(filters.created_from, "from")
        _moment(filters.created_to, "to")
        return filters

    def active(self) -> bool:
        return bool(self.statuses or self.name or self.prefix or self.created_from or self.created_to)

    def query(self) -> InstanceQuery:
        return InstanceQuery(
            runtime_status=[pb.OrchestrationStatus.Value(f"ORCHESTRATION_STATUS_{s}") for s in self.statuses] or None,
            created_from=_moment(self.created_from, "from"), created_to=_moment(self.created_to, "to"),
            instance_id_prefix=self.prefix or None, name=self.name or None, page_size=self.size,
            continuation_token=self.after or None,
        )

    def href(self, *, after: str | None = None) -> str:
        """The list page with these filters: the first page, or the page after ``after``."""
        pairs: list[tuple[str, str]] = [("status", s) for s in self.statuses]
        pairs += [(k, v) for k, v in (("name", self.name), ("prefix", self.prefix), ("from", self.created_from),
                                      ("to", self.created_to)) if v]
        if self.size != DEFAULT_PAGE_SIZE:
            pairs.append(("size", str(self.size)))
        if after is not None:
            pairs += [("after", after), ("page", str(self.page_number + 1))]
        return "/?" + urlencode(pairs) if pairs else "/"

    def form(self) -> str:
        boxes = "".join(
            f'<label><input type="checkbox" name="status" value="{s}"{" checked" if s in self.statuses else ""}>'
            f"{_badge(s)}</label>" for s in STATUSES
        )
        sizes = sorted({*PAGE_SIZES, self.size})
        options = "".join(f'<option value="{n}"{" selected" if n == self.size else ""}>{n}</option>' for n in sizes)

        def text(label: str, name: str, value: str, kind: str = "text", hint: str = "") -> str:
            extra = ' step="1"' if kind == "datetime-local" else ""
            holder = f' placeholder="{_e(hint)}"' if hint else ""
            return (f'<label class="field">{_e(label)}<input type="{kind}" name="{name}" value="{_e(value)}"'
                    f"{extra}{holder}></label>")

        return (
            '<form class="filters" method="get" action="/">'
            f"<fieldset><legend>status</legend>{boxes}</fieldset>"
            + text("orchestrator", "name", self.name, hint="exact name")
            + text("instance id starts with", "prefix", self.prefix)
            + text("created from (UTC)", "from", _local(self.created_from), "datetime-local")
            + text("created until (UTC)", "to", _local(self.created_to), "datetime-local")
            + f'<label class="field">per page<select name="size">{options}</select></label>'
            + '<button type="submit">Filter</button><a class="button plain" href="/">Clear</a></form>'
        )


def _int(text: str, name: str, default: int, low: int, high: int) -> int:
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise _BadRequest(f"{name} must be a whole number, not {text!r}") from None
    if not low <= value <= high:
        raise _BadRequest(f"{name} must be between {low} and {high}, not {value}")
    return value


def _moment(text: str, name: str) -> datetime | None:
    """An ISO date or date-time (UTC unless it names an offset), as a naive UTC datetime."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise _BadRequest(f"{name} must be an ISO date or date-time such as 2024-01-31T09:30, not {text!r}") from None
    if value.utcoffset() is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _local(text: str) -> str:
    """A filter time as a ``datetime-local`` input shows it (``YYYY-MM-DDTHH:MM:SS``), or '' if it is not one."""
    moment = _moment(text, "time") if text else None
    return moment.isoformat(timespec="seconds") if moment is not None else ""


# -- HTTP -----------------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds a connection may sit idle

    def version_string(self) -> str:
        return "wftest-ui"

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def _refuse(self) -> None:
        body = b"wftest ui is read-only: only GET and HEAD are served\n"
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

    def _respond(self, *, head: bool) -> None:
        if not self.server.host_allowed(self.headers.get("Host")):
            response = Response(HTTPStatus.MISDIRECTED_REQUEST,
                                b"wftest ui answers only requests addressed to the address it listens on\n",
                                "text/plain; charset=utf-8")
        else:
            response = self.server.app.handle(self.path)
        self.send_response(response.status)
        headers = {**_HEADERS, "Content-Type": response.content_type, "Content-Length": str(len(response.body)),
                   **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not head and response.body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s - %s", self.address_string(), format % args)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: App, family: socket.AddressFamily) -> None:
        self.address_family = family
        self.app = app
        self.allowed_hosts: set[str] | None = None
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() looks the host name up (socket.getfqdn); nothing here needs it
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def host_allowed(self, header: str | None) -> bool:
        return self.allowed_hosts is None or (header or "").lower() in self.allowed_hosts


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class UiServer:
    """A running diagnostics page (``wftest.ui.serve`` starts one); ``close()`` stops it.

    Attributes: ``url`` (``http://127.0.0.1:PORT/``), ``host``, ``port``, ``label`` (what it shows).
    Use it as a context manager, or call ``close()``; both are safe to repeat.
    """

    def __init__(self, source: object, *, host: str = "127.0.0.1", port: int = 0) -> None:
        backend, label, owned = open_source(source)
        self._backend = backend if owned else None
        self.label = label
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self._httpd = _HttpServer((host, port), App(backend, label), family)
        except OSError as err:
            self._close_backend()
            raise OSError(err.errno, f"cannot listen on {host}:{port}: {err.strerror or err}") from None
        self.host = host
        self.port = int(self._httpd.server_address[1])
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}/"
        if is_loopback(host):
            names = {shown.lower(), "localhost", "127.0.0.1", "[::1]"}
            allowed = {f"{n}:{self.port}" for n in names}
            if self.port == 80:  # browsers leave the default port out of the Host header
                allowed |= names
            self._httpd.allowed_hosts = allowed
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"wftest-ui-{self.port}", daemon=True)
        self._thread.start()
        self._closed = False
        self._close_lock = threading.Lock()

    @property
    def backend(self) -> Backend:
        """What the page reads."""
        return self._httpd.app.backend

    def close(self) -> None:
        """Stop serving, wait for the server thread, and close the database if the server opened it."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
        self._close_backend()

    def _close_backend(self) -> None:
        if self._backend is not None:
            close: Callable[[], None] | None = getattr(self._backend, "close", None)
            if close is not None:
                close()
            self._backend = None

    def __enter__(self) -> UiServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<UiServer {self.url} over {self.label}>"
