"""History files: the two on-disk formats of a history, and their validation.

- ``*.history.json``: ``{"format": "wftest.history/1", "orchestrator": NAME, "instanceId": ID,
  "events": [HistoryEvent in the protobuf JSON mapping, ...]}``, written with sorted keys and one event
  per line, so diffs of saved histories are readable.
- ``*.history.pb``: the events as length-delimited ``HistoryEvent`` messages (a varint length, then the
  bytes), as protobuf's ``writeDelimitedTo`` writes them.

Both load with :func:`load`. A bad file fails with one :class:`HistoryFileError` that names the file,
the event index and the field: truncated pb, unknown event kind, wrong JSON shape, missing
``ExecutionStarted``, events out of order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from wftest._pbjson import parse_dict
from wftest.errors import HistoryFileError
from wftest.protos import orchestrator_service_pb2 as pb

FORMAT = "wftest.history/1"
JSON_SUFFIX = ".history.json"
PB_SUFFIX = ".history.pb"

_EVENT_KINDS = frozenset(f.name for f in pb.HistoryEvent.DESCRIPTOR.oneofs_by_name["eventType"].fields)
# events that may arrive in the same step as, and before, the ExecutionStarted they wait for
_BEFORE_START = frozenset({"orchestratorStarted", "executionTerminated", "eventRaised", "executionSuspended",
                           "executionResumed"})
_RESULT_KINDS = {
    "taskCompleted": ("taskScheduled", "taskScheduledId"),
    "taskFailed": ("taskScheduled", "taskScheduledId"),
    "subOrchestrationInstanceCompleted": ("subOrchestrationInstanceCreated", "taskScheduledId"),
    "subOrchestrationInstanceFailed": ("subOrchestrationInstanceCreated", "taskScheduledId"),
    "timerFired": ("timerCreated", "timerId"),
}


@dataclass(frozen=True)
class History:
    """A history with what is known about it."""

    events: list[pb.HistoryEvent]
    orchestrator: str
    instance_id: str
    path: Path | None = None

    @classmethod
    def of(cls, events: Sequence[pb.HistoryEvent], *, path: Path | None = None) -> History:
        """Wrap events, taking the orchestrator name and instance id from their ``ExecutionStarted``."""
        started = next((e.executionStarted for e in events if e.HasField("executionStarted")), None)
        if started is None:
            raise HistoryFileError("the history has no ExecutionStarted event", path=path, field="executionStarted")
        return cls(list(events), started.name, started.orchestrationInstance.instanceId, path)


# -- writing ---------------------------------------------------------------------------------------------


def dumps_json(events: Sequence[pb.HistoryEvent], *, orchestrator: str | None = None,
               instance_id: str | None = None) -> str:
    """The JSON file text for ``events`` (sorted keys, one event per line)."""
    history = History.of(events) if orchestrator is None or instance_id is None else None
    head = json.dumps(
        {
            "format": FORMAT,
            "instanceId": instance_id if instance_id is not None else history.instance_id,  # type: ignore[union-attr]
            "orchestrator": orchestrator if orchestrator is not None else history.orchestrator,  # type: ignore[union-attr]
        },
        sort_keys=True,
    )[:-1]
    lines = ",\n".join("    " + json.dumps(json_format.MessageToDict(e), sort_keys=True) for e in events)
    return f'{head}, "events": [\n{lines}\n]}}\n'


def dumps_pb(events: Sequence[pb.HistoryEvent]) -> bytes:
    """The length-delimited binary form of ``events``."""
    chunks = []
    for event in events:
        data = event.SerializeToString(deterministic=True)
        chunks.append(_varint(len(data)))
        chunks.append(data)
    return b"".join(chunks)


def save(path: str | Path, events: Sequence[pb.HistoryEvent], **names: str) -> Path:
    """Write ``events`` to ``path``; the suffix (``.history.json`` or ``.history.pb``) picks the format."""
    path = Path(path)
    if path.name.endswith(PB_SUFFIX):
        History.of(events, path=path)  # refuse to write a file that would not load
        path.write_bytes(dumps_pb(events))
    elif path.name.endswith(JSON_SUFFIX) or path.suffix == ".json":
        path.write_text(dumps_json(events, **names), encoding="utf-8")
    else:
        raise HistoryFileError(f"unknown history file type (use {JSON_SUFFIX} or {PB_SUFFIX})", path=path)
    return path


# -- reading ---------------------------------------------------------------------------------------------


def load(path: str | Path) -> History:
    """Read a ``.history.json`` or ``.history.pb`` file and validate it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise HistoryFileError(f"cannot read the file: {err.strerror or err}", path=path) from None
    if path.name.endswith(PB_SUFFIX):
        events = loads_pb(data, path=path)
        history = History.of(events, path=path)
    else:
        history = loads_json(data, path=path)
    validate(history.events, path=path)
    return history


def loads_json(text: str | bytes, *, path: Path | None = None) -> History:
    """Parse the JSON format (see the module docstring)."""
    try:
        document = json.loads(text)
    except ValueError as err:
        raise HistoryFileError(f"not valid JSON: {err}", path=path) from None
    if isinstance(document, list):
        document = {"format": FORMAT, "events": document}
    if not isinstance(document, dict):
        raise HistoryFileError(f"expected a JSON object, found {type(document).__name__}", path=path)
    if document.get("format", FORMAT) != FORMAT:
        raise HistoryFileError(f"unknown format {document.get('format')!r} (expected {FORMAT!r})", path=path,
                               field="format")
    raw_events = document.get("events")
    if not isinstance(raw_events, list):
        raise HistoryFileError("'events' must be a list of history events", path=path, field="events")
    events = []
    for index, raw in enumerate(raw_events):
        if not isinstance(raw, dict):
            raise HistoryFileError(f"expected an object, found {type(raw).__name__}", path=path, index=index)
        kinds = [k for k in raw if k in _EVENT_KINDS]
        unknown = [k for k in raw if k not in _EVENT_KINDS and k not in ("eventId", "timestamp")]
        if unknown:
            raise HistoryFileError(f"unknown event kind or field {unknown[0]!r}", path=path, index=index,
                                   field=unknown[0])
        if len(kinds) != 1:
            raise HistoryFileError("an event must have exactly one kind (executionStarted, taskScheduled, ...)",
                                   path=path, index=index)
        try:
            events.append(parse_dict(raw, pb.HistoryEvent()))  # ParseDict's result, faster
        except json_format.ParseError as err:
            raise HistoryFileError(str(err), path=path, index=index, field=kinds[0]) from None
    history = History.of(events, path=path)
    names = {"orchestrator": history.orchestrator, "instanceId": history.instance_id}
    for key, value in names.items():
        if key in document and document[key] != value:
            raise HistoryFileError(f"{key} {document[key]!r} does not match the ExecutionStarted event ({value!r})",
                                   path=path, field=key)
    return history


def loads_pb(data: bytes, *, path: Path | None = None) -> list[pb.HistoryEvent]:
    """Parse length-delimited ``HistoryEvent`` messages."""
    events: list[pb.HistoryEvent] = []
    position = 0
    while position < len(data):
        index = len(events)
        try:
            size, start = _read_varint(data, position)
        except IndexError:
            raise HistoryFileError("truncated length prefix", path=path, index=index) from None
        end = start + size
        if end > len(data):
            raise HistoryFileError(f"truncated: the event needs {size} bytes, {len(data) - start} remain",
                                   path=path, index=index)
        event = pb.HistoryEvent()
        try:
            event.ParseFromString(data[start:end])
        except Exception as err:
            raise HistoryFileError(f"not a HistoryEvent: {err}", path=path, index=index) from None
        if event.WhichOneof("eventType") is None:
            numbers = sorted({field for field, _ in _unknown_fields(event)})
            detail = f" (unknown field number {numbers[0]})" if numbers else ""
            raise HistoryFileError(f"unknown event kind{detail}", path=path, index=index, field="eventType")
        events.append(event)
        position = end
    return events


def _unknown_fields(message: Any) -> list[tuple[int, Any]]:
    from google.protobuf import unknown_fields

    found = unknown_fields.UnknownFieldSet(message)
    return [(found[i].field_number, found[i].data) for i in range(len(found))]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    """Decode a varint at ``position``; returns (value, next position). IndexError if truncated."""
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise IndexError("varint too long")


# -- validation ------------------------------------------------------------------------------------------


def validate(events: Sequence[pb.HistoryEvent], *, path: Path | None = None) -> None:
    """Check that ``events`` form a history: it starts, time never goes back, results follow requests."""
    started = False
    last_time = None
    scheduled: dict[str, set[int]] = {"taskScheduled": set(), "subOrchestrationInstanceCreated": set(),
                                      "timerCreated": set()}
    for index, event in enumerate(events):
        kind = event.WhichOneof("eventType")
        if kind is None:
            raise HistoryFileError("event has no kind", path=path, index=index, field="eventType")
        if kind == "executionStarted":
            started = True
        elif not started and kind not in _BEFORE_START:
            raise HistoryFileError(f"{kind} before ExecutionStarted", path=path, index=index, field=kind)
        if kind == "orchestratorStarted" and (event.timestamp.seconds or event.timestamp.nanos):
            # Steps are in time order. (Other events carry the time they were created, which may be
            # earlier than the step that reads them: a timer fires at its fireAt, a step runs later.)
            when = (event.timestamp.seconds, event.timestamp.nanos)
            if last_time is not None and when < last_time:
                raise HistoryFileError("events out of order: this step starts before the previous one", path=path,
                                       index=index, field="timestamp")
            last_time = when
        if kind in scheduled:
            scheduled[kind].add(event.eventId)
        elif kind in _RESULT_KINDS:
            request, id_field = _RESULT_KINDS[kind]
            target = getattr(getattr(event, kind), id_field)
            if target not in scheduled[request]:
                raise HistoryFileError(
                    f"events out of order: {kind} refers to #{target}, which no earlier {request} created",
                    path=path, index=index, field=f"{kind}.{id_field}",
                )
    if not started:
        raise HistoryFileError("the history has no ExecutionStarted event", path=path, field="executionStarted")


# -- durabletask-go databases ----------------------------------------------------------------------------


def from_durabletask_sqlite(path: str | Path, instance_id: str | None = None) -> list[History]:
    """Read histories from a durabletask-go sqlite database (its ``History`` table of protobuf events).

    Returns one :class:`History` per instance (only ``instance_id``'s when given), ordered by instance id.
    The database is opened read-only; a file that is not such a database fails with ``HistoryFileError``.
    """
    import sqlite3

    path = Path(path)
    if not path.is_file():
        raise HistoryFileError("no such database file", path=path)
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as err:
        raise HistoryFileError(f"cannot open the database: {err}", path=path) from None
    try:
        try:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as err:
            raise HistoryFileError(f"not a sqlite database: {err}", path=path) from None
        if "History" not in tables:
            raise HistoryFileError(
                "not a durabletask-go database: it has no History table (tables: "
                + (", ".join(sorted(tables)) or "none") + ")", path=path, field="History",
            )
        query = "SELECT InstanceID, SequenceNumber, EventPayload FROM History"
        params: tuple[str, ...] = ()
        if instance_id is not None:
            query += " WHERE InstanceID = ?"
            params = (instance_id,)
        rows = connection.execute(query + " ORDER BY InstanceID, SequenceNumber", params).fetchall()
    finally:
        connection.close()
    if instance_id is not None and not rows:
        raise HistoryFileError(f"no history for instance {instance_id!r}", path=path, field="InstanceID")
    grouped: dict[str, list[pb.HistoryEvent]] = {}
    for iid, sequence, payload in rows:
        event = pb.HistoryEvent()
        try:
            event.ParseFromString(payload)
        except Exception as err:
            raise HistoryFileError(f"instance {iid!r}: EventPayload is not a HistoryEvent: {err}", path=path,
                                   index=sequence, field="EventPayload") from None
        grouped.setdefault(iid, []).append(event)
    histories = []
    for iid, events in grouped.items():
        validate(events, path=Path(f"{path}::{iid}"))
        histories.append(History(events, History.of(events).orchestrator, iid, path))
    return histories
