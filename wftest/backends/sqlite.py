"""The sqlite backend: durable state in one file (stdlib ``sqlite3``, WAL), shared by worker processes.

Every operation is one transaction (``BEGIN IMMEDIATE``), so a step's new history, activity tasks,
timers and messages commit together or not at all, and a process killed at any point (even with
SIGKILL) leaves the file consistent. Work items are locked with an owner and an expiry; a worker that
dies loses its locks when they expire; completing with a lost lock raises ``LockLostError`` and writes
nothing. Times are stored as integer microseconds since the epoch (UTC).

Schema: ``wftest_schema`` holds the version; it is created on first use and migrated forward (each step
in its own transaction, so a file is always at one version); a file written by a newer wftest, another
application's database, or a file that is not a database fails at open with ``BackendError`` naming the
file and what is wrong. Versions: 1, the first; 2 adds ``activities.tags`` (the ``TaskScheduled`` tags an
activity's context is extracted from) and an index on ``instances.completed_at`` (retention).

``SqliteBackend(path, read_only=True)`` opens an existing file through a sqlite ``mode=ro`` URI for readers
such as ``wftest ui``: it creates and migrates nothing (an older schema is read as it is when the read path
understands it), and every write raises ``BackendError`` naming the file.

Retention (go-workflows' AutoExpiration): with ``retention=timedelta(...)`` a finished instance (COMPLETED,
FAILED, TERMINATED) is deleted, with its history, once ``retention`` has passed since it finished. The
backend deletes expired instances itself, when a worker looks for work (``fetch_orchestration_work_item``,
``ready_instances``) at a time past their expiry, so with a virtual clock expiry happens exactly when the
clock passes it (it never moves the clock by itself).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, cast

from wftest.backends._base import (
    EPOCH,
    ActivityWorkItem,
    Backend,
    IdReusePolicy,
    InstanceQuery,
    OrchestrationWorkItem,
    available_at,
    micros,
)
from wftest.errors import (
    BackendError,
    InstanceAlreadyExistsError,
    InstanceNotCompletedError,
    InstanceNotFoundError,
    LockLostError,
)
from wftest.protos import orchestrator_service_pb2 as pb
from wftest.runtime import TERMINAL_STATUSES, ActivityTask, InstanceRecord, Message, StepUpdate, is_terminal

logger = logging.getLogger("wftest.backends.sqlite")

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE wftest_schema (version INTEGER NOT NULL);
CREATE TABLE instances (
    instance_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_updated_at INTEGER NOT NULL,
    completed_at INTEGER,
    scheduled_start_at INTEGER,
    execution_id TEXT,
    input TEXT,
    output TEXT,
    custom_status TEXT,
    failure_details BLOB,
    parent_instance_id TEXT,
    parent_task_id INTEGER,
    parent_execution_id TEXT,
    version TEXT,
    history_length INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    locked_until INTEGER,
    abandon_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX instances_created ON instances (created_at, instance_id);
CREATE INDEX instances_completed ON instances (completed_at);
CREATE TABLE history (
    instance_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (instance_id, seq)
);
CREATE TABLE inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT,
    starts INTEGER NOT NULL,
    visible_at INTEGER,
    available_at INTEGER NOT NULL,
    event BLOB NOT NULL
);
CREATE INDEX inbox_instance ON inbox (instance_id, available_at, id);
CREATE INDEX inbox_visible ON inbox (visible_at);
CREATE TABLE activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT,
    task_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    input TEXT,
    scheduled_at INTEGER NOT NULL,
    owner TEXT,
    locked_until INTEGER,
    tags TEXT
);
"""
#: the statements that take a file from the version before to the version given (each in one transaction)
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        "ALTER TABLE activities ADD COLUMN tags TEXT",
        "CREATE INDEX IF NOT EXISTS instances_completed ON instances (completed_at)",
    ),
}
#: the oldest schema version whose instances and history tables the read path (get_instance, get_history,
#: query_instances) reads as they are; read_only=True opens files from this version on without migrating them
_READABLE_FROM = 1
_TERMINAL = tuple(sorted(TERMINAL_STATUSES))
_TABLES = {"wftest_schema", "instances", "history", "inbox", "activities"}

_RECORD_COLUMNS = (
    "instance_id", "name", "status", "created_at", "last_updated_at", "completed_at", "scheduled_start_at",
    "execution_id", "input", "output", "custom_status", "failure_details", "parent_instance_id", "parent_task_id",
    "parent_execution_id", "version", "history_length",
)
_TIME_COLUMNS = {"created_at", "last_updated_at", "completed_at", "scheduled_start_at"}


def _us(when: datetime | None) -> int | None:
    return None if when is None else micros(when)


class _StepToken(NamedTuple):
    """What a fetched step holds: the inbox rows it was given, and the execution it was given them for."""

    rows: list[int]
    execution_id: str | None


def _release_due(tx: sqlite3.Connection, at: int) -> None:
    """Mark the rows due by ``at`` as visible for good (their order is kept by available_at), so that
    ``next_wakeup`` names only times still to come, even while their instance is locked or not started."""
    tx.execute("UPDATE inbox SET visible_at = NULL WHERE visible_at <= ?", (at,))


def _dt(value: int | None) -> datetime | None:
    return None if value is None else EPOCH + timedelta(microseconds=value)


def _starts(event: pb.HistoryEvent) -> bool:
    return event.HasField("executionStarted") or event.HasField("executionTerminated")


class SqliteBackend(Backend):
    """Instances, histories and queues in a sqlite file (or ``":memory:"``); method docs are on ``Backend``.

    Args:
        path: the database file (created if missing), or ``":memory:"``.
        busy_timeout: seconds to wait for another process's transaction.
        retention: delete finished instances this long after they finished (see the module docstring);
            None (the default) keeps them until purged.
        read_only: open an existing file for reading only (a sqlite ``mode=ro`` URI): nothing is created or
            migrated, and every write (scheduling, fetching work, purging) raises ``BackendError``. Each read
            sees the latest commit of the processes writing the file. A file with an older schema is read as
            it is when the read path understands it (version 1 on). With no other process attached, sqlite
            may create the empty ``-wal``/``-shm`` side files that WAL mode keeps; the database file itself
            is never written.

            .. versionadded:: 0.1

    Example::

        engine = Engine(backend=SqliteBackend("workflows.db", retention=timedelta(days=7)), clock=SystemClock())
        viewer = SqliteBackend("workflows.db", read_only=True)   # what wftest ui reads through
    """

    def __init__(self, path: str | os.PathLike[str] = ":memory:", *, busy_timeout: float = 30.0,
                 retention: timedelta | None = None, read_only: bool = False) -> None:
        if retention is not None and (not isinstance(retention, timedelta) or retention <= timedelta(0)):
            raise ValueError(f"retention must be a positive timedelta or None, got {retention!r}")
        if read_only and str(path) == ":memory:":
            raise ValueError("read_only=True needs a database file: a new in-memory database is empty")
        if read_only and retention is not None:
            raise ValueError("retention deletes expired instances, which a read_only=True backend cannot do")
        self.retention = retention
        #: True when the file was opened with read_only=True: every write raises BackendError
        self.read_only = read_only
        #: no instance expires before this (the next sweep); datetime.min: not known yet
        self._next_expiry_check = datetime.min
        self.path = str(path)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        if read_only:
            self._db = self._connect_read_only(Path(path), busy_timeout)
            return
        try:
            self._db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None,
                                       check_same_thread=False)
            self._open()
        except sqlite3.DatabaseError as err:
            raise BackendError(f"{self.path}: cannot use this file as a wftest database: {err}") from None

    def _connect_read_only(self, target: Path, busy_timeout: float) -> sqlite3.Connection:
        """Open an existing file through a ``mode=ro`` URI and check its schema; create and migrate nothing."""
        if not target.is_file():
            what = "is not a file" if target.exists() else "does not exist"
            raise BackendError(f"{target}: no such database file (it {what}); read_only=True opens an existing "
                               "wftest database and never creates one")
        try:
            db = sqlite3.connect(f"{target.resolve().as_uri()}?mode=ro", uri=True, timeout=busy_timeout,
                                 isolation_level=None, check_same_thread=False)
        except sqlite3.Error as err:
            raise BackendError(f"{target}: cannot open the database read-only: {err}") from None
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables - {"sqlite_sequence"}:
                raise BackendError(f"{target}: not a wftest database (it has no tables), and read_only=True "
                                   "cannot create the schema")
            version = self._check_schema(db, tables)
            if version < _READABLE_FROM:
                raise BackendError(
                    f"{target}: the database schema is version {version}; reading it needs a migration to "
                    f"version {SCHEMA_VERSION}, which read_only=True cannot do. Open it once without read_only "
                    "(SqliteBackend(path)) to migrate it"
                )
        except sqlite3.DatabaseError as err:
            db.close()
            raise BackendError(f"{target}: cannot read this file as a wftest database: {err}") from None
        except BackendError:
            db.close()
            raise
        return db

    def _check_schema(self, db: sqlite3.Connection, tables: set[str]) -> int:
        """The schema version of a file with tables in it, after checking that wftest can use it."""
        if "wftest_schema" not in tables:
            raise BackendError(
                f"{self.path}: this sqlite database belongs to another application (tables: "
                f"{', '.join(sorted(tables))}); give wftest a file of its own"
            )
        row = db.execute("SELECT MAX(version) FROM wftest_schema").fetchone()
        version = row[0] if row else None
        if version is None:
            raise BackendError(f"{self.path}: the wftest_schema table is empty; the file is damaged")
        if version > SCHEMA_VERSION:
            raise BackendError(
                f"{self.path}: the database schema is version {version}, newer than this wftest understands "
                f"({SCHEMA_VERSION}); upgrade wftest"
            )
        missing = _TABLES - tables
        if missing:
            raise BackendError(f"{self.path}: tables {', '.join(sorted(missing))} are missing; the file is damaged")
        return int(version)

    def _open(self) -> None:
        db = self._db
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if self.path != ":memory:":
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
        if not tables - {"sqlite_sequence"}:
            with self._transaction() as tx:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        tx.execute(statement)
                tx.execute("INSERT INTO wftest_schema (version) VALUES (?)", (SCHEMA_VERSION,))
            return
        version = self._check_schema(db, tables)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._transaction() as tx:
                current = tx.execute("SELECT MAX(version) FROM wftest_schema").fetchone()[0]
                if current >= target:
                    continue  # another process migrated the file meanwhile
                for statement in _MIGRATIONS[target]:
                    tx.execute(statement)
                tx.execute("UPDATE wftest_schema SET version = ?", (target,))
            logger.info("%s: migrated the database schema from version %d to %d", self.path, target - 1, target)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self.read_only:  # every write goes through here
            raise BackendError(
                f"{self.path}: the database is open read-only (SqliteBackend(..., read_only=True)), so it cannot "
                "be changed; open it without read_only to write"
            )
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._changed.notify_all()

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    # -- records ------------------------------------------------------------------------------------

    def _record(self, row: sqlite3.Row | tuple[Any, ...]) -> InstanceRecord:
        values = dict(zip(_RECORD_COLUMNS, row, strict=True))
        for column in _TIME_COLUMNS:
            values[column] = _dt(values[column])
        if values["failure_details"] is not None:
            details = pb.TaskFailureDetails()
            details.ParseFromString(values["failure_details"])
            values["failure_details"] = details
        return InstanceRecord(**values)

    def _record_values(self, record: InstanceRecord) -> list[Any]:
        values: list[Any] = []
        for column in _RECORD_COLUMNS:
            value = getattr(record, column)
            if column in _TIME_COLUMNS:
                value = _us(value)
            elif column == "failure_details" and value is not None:
                value = value.SerializeToString()
            values.append(value)
        return values

    def _load_record(self, tx: sqlite3.Connection, instance_id: str) -> InstanceRecord | None:
        row = tx.execute(f"SELECT {', '.join(_RECORD_COLUMNS)} FROM instances WHERE instance_id = ?",
                         (instance_id,)).fetchone()
        return self._record(row) if row is not None else None

    def _insert_record(self, tx: sqlite3.Connection, record: InstanceRecord) -> None:
        placeholders = ", ".join("?" for _ in _RECORD_COLUMNS)
        tx.execute(f"INSERT INTO instances ({', '.join(_RECORD_COLUMNS)}) VALUES ({placeholders})",
                   self._record_values(record))

    def _drop(self, tx: sqlite3.Connection, instance_id: str) -> None:
        for table in ("instances", "history", "inbox", "activities"):
            tx.execute(f"DELETE FROM {table} WHERE instance_id = ?", (instance_id,))

    def _deliver(self, tx: sqlite3.Connection, instance_id: str, event: pb.HistoryEvent,
                 visible_at: datetime | None, execution_id: str | None) -> None:
        # events are read in the order they became available (available_at), ties in the order of their ids
        available = available_at(event, visible_at)
        tx.execute(
            "INSERT INTO inbox (instance_id, execution_id, starts, visible_at, available_at, event) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (instance_id, execution_id, int(_starts(event)), _us(visible_at), available, event.SerializeToString()),
        )

    # -- instances ----------------------------------------------------------------------------------

    def create_instance(self, start: pb.HistoryEvent, record: InstanceRecord, *, visible_at: datetime | None,
                        policy: IdReusePolicy, now: datetime) -> bool:
        with self._transaction() as tx:
            existing = self._load_record(tx, record.instance_id)
            if existing is not None:
                if policy is IdReusePolicy.IGNORE:
                    return False
                if policy is IdReusePolicy.ERROR:
                    status = pb.OrchestrationStatus.Name(existing.status).removeprefix("ORCHESTRATION_STATUS_")
                    raise InstanceAlreadyExistsError(record.instance_id, str(status))
                self._drop(tx, record.instance_id)
            self._insert_record(tx, record)
            self._deliver(tx, record.instance_id, start, visible_at, None)
            return True

    def add_event(self, instance_id: str, event: pb.HistoryEvent, *, visible_at: datetime | None = None) -> None:
        with self._transaction() as tx:
            if tx.execute("SELECT 1 FROM instances WHERE instance_id = ?", (instance_id,)).fetchone() is None:
                raise InstanceNotFoundError(instance_id)
            self._deliver(tx, instance_id, event, visible_at, None)

    def get_instance(self, instance_id: str) -> InstanceRecord | None:
        with self._lock:
            return self._load_record(self._db, instance_id)

    def get_history(self, instance_id: str) -> list[pb.HistoryEvent]:
        with self._lock:
            if self._db.execute("SELECT 1 FROM instances WHERE instance_id = ?", (instance_id,)).fetchone() is None:
                raise InstanceNotFoundError(instance_id)
            rows = self._db.execute("SELECT event FROM history WHERE instance_id = ? ORDER BY seq",
                                    (instance_id,)).fetchall()
        events = []
        for (blob,) in rows:
            event = pb.HistoryEvent()
            event.ParseFromString(blob)
            events.append(event)
        return events

    def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceRecord], str | None]:
        clauses: list[str] = []
        params: list[Any] = []
        if query.runtime_status:
            clauses.append(f"status IN ({', '.join('?' for _ in query.runtime_status)})")
            params.extend(query.runtime_status)
        if query.created_from is not None:
            clauses.append("created_at >= ?")
            params.append(_us(query.created_from))
        if query.created_to is not None:
            clauses.append("created_at <= ?")
            params.append(_us(query.created_to))
        if query.instance_id_prefix:
            clauses.append("substr(instance_id, 1, ?) = ?")
            params.extend([len(query.instance_id_prefix), query.instance_id_prefix])
        if query.name is not None:
            clauses.append("name = ?")
            params.append(query.name)
        if query.continuation_token:
            created, _, iid = query.continuation_token.partition("|")
            clauses.append("(created_at > ? OR (created_at = ? AND instance_id > ?))")
            params.extend([_us(datetime.fromisoformat(created)), _us(datetime.fromisoformat(created)), iid])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        size = max(1, query.page_size)
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_RECORD_COLUMNS)} FROM instances {where} ORDER BY created_at, instance_id "
                f"LIMIT ?", [*params, size + 1],
            ).fetchall()
        records = [self._record(r) for r in rows[:size]]
        token = None
        if len(rows) > size:
            last = records[-1]
            token = f"{last.created_at.isoformat()}|{last.instance_id}"
        return records, token

    def purge_expired(self, now: datetime) -> int:
        """Delete the finished instances whose ``retention`` ran out at ``now``; returns how many.

        Called by the backend itself as workers look for work; call it to expire instances at a given time.
        Instances locked by a worker are left for a later sweep. Does nothing without ``retention``.
        """
        if self.retention is None:
            return 0
        at = cast(int, _us(now))
        statuses = ", ".join("?" for _ in _TERMINAL)
        with self._transaction() as tx:
            expired = [row[0] for row in tx.execute(
                f"SELECT instance_id FROM instances WHERE status IN ({statuses}) AND completed_at <= ? "
                "AND (owner IS NULL OR locked_until <= ?)", (*_TERMINAL, _us(now - self.retention), at),
            ).fetchall()]
            for instance_id in expired:
                self._drop(tx, instance_id)
            oldest = tx.execute(
                f"SELECT MIN(completed_at) FROM instances WHERE status IN ({statuses})", _TERMINAL,
            ).fetchone()[0]
        # Whatever finishes from now on (in any process) expires at now + retention or later.
        next_check = now + self.retention
        if oldest is not None:
            next_check = min(next_check, cast(datetime, _dt(oldest)) + self.retention)
        self._next_expiry_check = max(next_check, now + timedelta(microseconds=1))  # (locked ones: a later sweep)
        if expired:
            logger.debug("%s: %d finished instance(s) expired (retention %s)", self.path, len(expired), self.retention)
        return len(expired)

    def _expire(self, now: datetime) -> None:
        if self.retention is not None and now >= self._next_expiry_check:
            self.purge_expired(now)

    def purge_instance(self, instance_id: str) -> None:
        with self._transaction() as tx:
            record = self._load_record(tx, instance_id)
            if record is None:
                raise InstanceNotFoundError(instance_id)
            if not is_terminal(record.status):
                status = pb.OrchestrationStatus.Name(record.status).removeprefix("ORCHESTRATION_STATUS_")
                raise InstanceNotCompletedError(instance_id, str(status), "purge")
            self._drop(tx, instance_id)

    # -- orchestration work items -------------------------------------------------------------------

    def _ready_ids(self, tx: sqlite3.Connection, now: int, limit: int | None) -> list[str]:
        rows = tx.execute(
            "SELECT i.instance_id FROM instances i JOIN inbox x ON x.instance_id = i.instance_id "
            "WHERE (x.visible_at IS NULL OR x.visible_at <= ?) AND (i.owner IS NULL OR i.locked_until <= ?) "
            "GROUP BY i.instance_id "
            "HAVING i.history_length > 0 OR MAX(x.starts) = 1 "
            "ORDER BY MIN(x.available_at), MIN(x.id)" + (" LIMIT ?" if limit is not None else ""),
            (now, now, limit) if limit is not None else (now, now),
        ).fetchall()
        return [r[0] for r in rows]

    def ready_instances(self, now: datetime) -> list[str]:
        self._expire(now)
        at = cast(int, _us(now))
        with self._transaction() as tx:
            _release_due(tx, at)
            return self._ready_ids(tx, at, None)

    def fetch_orchestration_work_item(
        self, owner: str, now: datetime, lock_for: timedelta, *, instance_id: str | None = None
    ) -> OrchestrationWorkItem | None:
        self._expire(now)
        at = cast(int, _us(now))
        with self._transaction() as tx:
            _release_due(tx, at)
            ready = self._ready_ids(tx, at, None if instance_id is not None else 1)
            if instance_id is not None:
                ready = [instance_id] if instance_id in ready else []
            if not ready:
                return None
            target = ready[0]
            until = cast(int, _us(now + lock_for))
            tx.execute("UPDATE instances SET owner = ?, locked_until = ? WHERE instance_id = ?", (owner, until, target))
            record = cast(InstanceRecord, self._load_record(tx, target))
            abandon_count = tx.execute("SELECT abandon_count FROM instances WHERE instance_id = ?",
                                       (target,)).fetchone()[0]
            rows = tx.execute(
                "SELECT id, execution_id, event FROM inbox WHERE instance_id = ? "
                "AND (visible_at IS NULL OR visible_at <= ?) ORDER BY available_at, id", (target, at),
            ).fetchall()
        events = []
        for _, execution_id, blob in rows:
            if execution_id is not None and execution_id != record.execution_id:
                continue  # addressed to an execution that is over: consumed, never delivered
            event = pb.HistoryEvent()
            event.ParseFromString(blob)
            events.append(event)
        return OrchestrationWorkItem(
            instance_id=target, new_events=events, record=record, history_length=record.history_length,
            owner=owner, locked_until=_dt(until) or now, attempts=abandon_count,
            token=_StepToken([r[0] for r in rows], record.execution_id),
        )

    def _check_lock(self, tx: sqlite3.Connection, item: OrchestrationWorkItem) -> None:
        row = tx.execute("SELECT owner, locked_until, execution_id FROM instances WHERE instance_id = ?",
                         (item.instance_id,)).fetchone()
        token = cast(_StepToken, item.token)
        # the execution too: an instance replaced since is another instance, even locked by the same owner at
        # the same time (one engine on a virtual clock)
        if row is None or row[0] != item.owner or row[1] != _us(item.locked_until) or row[2] != token.execution_id:
            raise LockLostError(
                f"the lock on orchestration {item.instance_id!r} held by {item.owner!r} expired and was taken "
                "over (or the instance was purged); nothing was written"
            )

    def complete_orchestration_work_item(
        self, item: OrchestrationWorkItem, update: StepUpdate, now: datetime
    ) -> list[Message]:
        consumed = cast(_StepToken, item.token).rows
        undelivered: list[Message] = []
        with self._transaction() as tx:
            self._check_lock(tx, item)
            tx.executemany("DELETE FROM inbox WHERE id = ?", [(i,) for i in consumed])
            if update.replace_history:
                tx.execute("DELETE FROM history WHERE instance_id = ?", (item.instance_id,))
                base = 0
            else:
                base = item.history_length
            tx.executemany(
                "INSERT INTO history (instance_id, seq, event) VALUES (?, ?, ?)",
                [(item.instance_id, base + n, e.SerializeToString()) for n, e in enumerate(update.new_history)],
            )
            record = update.record
            record.history_length = base + len(update.new_history)
            assignments = ", ".join(f"{c} = ?" for c in _RECORD_COLUMNS[1:])
            tx.execute(
                f"UPDATE instances SET {assignments}, owner = NULL, locked_until = NULL, abandon_count = 0 "
                "WHERE instance_id = ?", [*self._record_values(record)[1:], item.instance_id],
            )
            tx.executemany(
                "INSERT INTO activities (instance_id, execution_id, task_id, name, input, scheduled_at, tags) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(a.instance_id, a.execution_id, a.task_id, a.name, a.input, _us(a.scheduled_at),
                  json.dumps(dict(a.tags), sort_keys=True) if a.tags else None)
                 for a in update.activities],
            )
            for message in update.messages:
                if not self._route(tx, message):
                    undelivered.append(message)
        return undelivered

    def _route(self, tx: sqlite3.Connection, message: Message) -> bool:
        event = message.event
        target = self._load_record(tx, message.instance_id)
        if event.HasField("executionStarted"):
            if target is not None and not is_terminal(target.status):
                return False
            if target is not None:
                self._drop(tx, message.instance_id)
            started = event.executionStarted
            parent = started.parentInstance
            when = event.timestamp.ToDatetime()
            self._insert_record(tx, InstanceRecord(
                instance_id=message.instance_id, name=started.name, status=pb.ORCHESTRATION_STATUS_PENDING,
                created_at=when, last_updated_at=when,
                execution_id=started.orchestrationInstance.executionId.value or None,
                input=started.input.value if started.HasField("input") else None,
                parent_instance_id=parent.orchestrationInstance.instanceId or None,
                parent_task_id=parent.taskScheduledId,
                parent_execution_id=parent.orchestrationInstance.executionId.value or None,
                version=started.version.value if started.HasField("version") else None,
            ))
            self._deliver(tx, message.instance_id, event, message.visible_at, None)
            return True
        if target is None:
            return False
        self._deliver(tx, message.instance_id, event, message.visible_at, message.execution_id)
        return True

    def abandon_orchestration_work_item(self, item: OrchestrationWorkItem, now: datetime, delay: timedelta) -> None:
        with self._transaction() as tx:
            self._check_lock(tx, item)
            tx.execute(
                "UPDATE instances SET owner = NULL, locked_until = NULL, abandon_count = abandon_count + 1 "
                "WHERE instance_id = ?", (item.instance_id,),
            )
            if delay > timedelta(0):
                hidden = _us(now + delay)
                tx.executemany("UPDATE inbox SET visible_at = ? WHERE id = ?",
                               [(hidden, i) for i in cast(_StepToken, item.token).rows])

    def renew_orchestration_work_item_lock(self, item: OrchestrationWorkItem, now: datetime, lock_for: timedelta
                                           ) -> None:
        until = now + lock_for
        with self._renewing(item, until) as tx:
            self._check_lock(tx, item)
            tx.execute("UPDATE instances SET locked_until = ? WHERE instance_id = ?", (_us(until), item.instance_id))

    # -- activity work items ------------------------------------------------------------------------

    def fetch_activity_work_item(self, owner: str, now: datetime, lock_for: timedelta) -> ActivityWorkItem | None:
        at = cast(int, _us(now))
        with self._transaction() as tx:
            row = tx.execute(
                "SELECT id, instance_id, execution_id, task_id, name, input, scheduled_at, tags FROM activities "
                "WHERE owner IS NULL OR locked_until <= ? ORDER BY id LIMIT 1", (at,),
            ).fetchone()
            if row is None:
                return None
            until = now + lock_for
            tx.execute("UPDATE activities SET owner = ?, locked_until = ? WHERE id = ?", (owner, _us(until), row[0]))
        task = ActivityTask(row[1], row[2], row[3], row[4], row[5], cast(datetime, _dt(row[6])),
                            json.loads(row[7]) if row[7] else {})
        return ActivityWorkItem(task=task, owner=owner, locked_until=until, token=row[0])

    def _check_activity_lock(self, tx: sqlite3.Connection, item: ActivityWorkItem) -> None:
        row = tx.execute("SELECT owner, locked_until FROM activities WHERE id = ?", (item.token,)).fetchone()
        if row is None or row[0] != item.owner or row[1] != _us(item.locked_until):
            task = item.task
            raise LockLostError(
                f"the lock on activity {task.name!r} (instance {task.instance_id!r}, task #{task.task_id}) held "
                f"by {item.owner!r} was lost; nothing was written"
            )

    def complete_activity_work_item(
        self, item: ActivityWorkItem, result: pb.HistoryEvent, now: datetime, *, visible_at: datetime | None = None
    ) -> None:
        with self._transaction() as tx:
            self._check_activity_lock(tx, item)
            tx.execute("DELETE FROM activities WHERE id = ?", (item.token,))
            if tx.execute("SELECT 1 FROM instances WHERE instance_id = ?", (item.task.instance_id,)).fetchone():
                self._deliver(tx, item.task.instance_id, result, visible_at, item.task.execution_id)

    def abandon_activity_work_item(self, item: ActivityWorkItem, now: datetime) -> None:
        with self._transaction() as tx:
            self._check_activity_lock(tx, item)
            tx.execute("UPDATE activities SET owner = NULL, locked_until = NULL WHERE id = ?", (item.token,))

    def renew_activity_work_item_lock(self, item: ActivityWorkItem, now: datetime, lock_for: timedelta) -> None:
        until = now + lock_for
        with self._renewing(item, until) as tx:
            self._check_activity_lock(tx, item)
            tx.execute("UPDATE activities SET locked_until = ? WHERE id = ?", (_us(until), item.token))

    @contextmanager
    def _renewing(self, item: OrchestrationWorkItem | ActivityWorkItem, until: datetime
                  ) -> Iterator[sqlite3.Connection]:
        """A transaction that moves ``item``'s lock to ``until``: the item follows the row before the commit,
        under the lock that this process's completions take too, and goes back if the transaction fails."""
        previous = item.locked_until
        try:
            with self._transaction() as tx:
                yield tx
                item.locked_until = until
        except BaseException:
            item.locked_until = previous
            raise

    # -- scheduling queries -------------------------------------------------------------------------

    def next_wakeup(self) -> datetime | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(visible_at) FROM inbox WHERE visible_at IS NOT NULL").fetchone()
        return _dt(row[0]) if row and row[0] is not None else None

    def has_visible_work(self, now: datetime) -> bool:
        at = _us(now)
        with self._lock:
            if self._db.execute("SELECT 1 FROM activities WHERE owner IS NULL OR locked_until <= ? LIMIT 1",
                                (at,)).fetchone():
                return True
            return bool(self._ready_ids(self._db, cast(int, at), 1))

    def wait_for_work(self, timeout: float) -> None:
        # other processes share the file and cannot notify this one: poll, but wake at once for this one
        with self._changed:
            self._changed.wait(min(timeout, 0.05))
        time.sleep(0)
