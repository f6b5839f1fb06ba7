"""Small helpers shared by the conformance tests (black box: only public names and history events)."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from datetime import datetime
from typing import Any

from wftest import Task
from wftest._events import describe_event
from wftest.protos import orchestrator_service_pb2 as pb

Gen = Generator[Task[Any], Any, Any]

#: the virtual clock's start
T0 = datetime(2024, 1, 1)


def kinds(history: Sequence[pb.HistoryEvent]) -> list[str]:
    """The event kinds of a history, e.g. ``["orchestratorStarted", "executionStarted", ...]``."""
    return [e.WhichOneof("eventType") for e in history]


def of_kind(history: Sequence[pb.HistoryEvent], kind: str) -> list[pb.HistoryEvent]:
    """The events of one kind, in history order."""
    return [e for e in history if e.WhichOneof("eventType") == kind]


def described(history: Sequence[pb.HistoryEvent]) -> list[str]:
    """One line per event (``describe_event``), for readable assertion failures."""
    return [describe_event(e) for e in history]


def ids(history: Sequence[pb.HistoryEvent], skip: Sequence[str] = ("orchestratorStarted", "orchestratorCompleted")
        ) -> list[str]:
    """A compact pattern of a history: ``TaskScheduled#1``, ``TaskFailed#1``, ``TimerCreated#2``, ...

    Scheduling events are numbered by ``eventId``, results by the id of the task they complete.
    """
    out: list[str] = []
    for event in history:
        kind = event.WhichOneof("eventType")
        if kind is None or kind in skip:
            continue
        title = kind[0].upper() + kind[1:]
        body = getattr(event, kind)
        if kind in ("taskScheduled", "timerCreated", "subOrchestrationInstanceCreated", "eventSent"):
            out.append(f"{title}#{event.eventId}")
        elif kind in ("taskCompleted", "taskFailed", "subOrchestrationInstanceCompleted",
                      "subOrchestrationInstanceFailed"):
            out.append(f"{title}#{body.taskScheduledId}")
        elif kind == "timerFired":
            out.append(f"{title}#{body.timerId}")
        else:
            out.append(title)
    return out


def at(event: pb.HistoryEvent) -> datetime:
    """An event's timestamp (naive UTC)."""
    return event.timestamp.ToDatetime()
