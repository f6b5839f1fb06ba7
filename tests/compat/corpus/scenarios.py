"""How each corpus orchestrator is run: its input and the external events raised to it, and when.

An event offset is measured from the start (virtual time); offset 0 means the event is already
waiting when the orchestration first runs. Names starting with ``@`` are management requests
(``@terminate`` with the output, ``@suspend`` / ``@resume`` with the reason).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class Scenario:
    id: str
    orchestrator: str
    input: Any = None
    #: (offset from the start, event name, data), raised on the scenario's instance
    events: tuple[tuple[timedelta, str, Any], ...] = field(default=())

    @property
    def instance_id(self) -> str:
        return self.id


SECOND, HOUR, DAY = timedelta(seconds=1), timedelta(hours=1), timedelta(days=1)

SCENARIOS = [
    Scenario("immediate", "immediate", {"x": 1}),
    Scenario("sequence", "sequence", "World"),
    Scenario("fan_out_fan_in", "fan_out_fan_in", 5),
    Scenario("timers", "timers"),
    Scenario("event_buffered", "event_buffered", events=((0 * SECOND, "approval", "first"),
                                                         (0 * SECOND, "APPROVAL", "second"))),
    Scenario("event_awaited", "event_awaited", events=((HOUR, "go", 42),)),
    Scenario("terminated", "event_awaited", events=((HOUR / 2, "@terminate", "stopped"), (HOUR, "go", 42))),
    Scenario("suspended", "event_awaited",
             events=((HOUR / 6, "@suspend", "hold"), (HOUR, "go", 42), (2 * HOUR, "@resume", "go on"))),
    Scenario("sub_orchestrations", "sub_orchestrations"),
    Scenario("retry_activity", "retry_activity"),
    Scenario("retry_no_input", "retry_no_input"),
    Scenario("fan_out_retries", "fan_out_retries"),
    Scenario("retry_while_waiting", "retry_while_waiting", events=((3 * SECOND, "signal", "now"),)),
    Scenario("retry_gives_up", "retry_gives_up"),
    Scenario("non_retriable_failure", "non_retriable"),
    Scenario("empty_fan_out_first", "empty_fan_out", []),
    Scenario("failure_caught", "failure_caught"),
    Scenario("failure_uncaught", "failure_uncaught"),
    Scenario("sub_orchestration_failure_caught", "sub_orchestration_failure_caught"),
    Scenario("sub_orchestration_retry", "sub_orchestration_retry"),
    Scenario("continue_as_new", "counter", {"round": 1, "value": 0}),
    Scenario("continue_as_new_save_events", "collector", [],
             events=((SECOND, "Item", "a"), (SECOND, "ITEM", "b"), (SECOND, "item", "c"))),
    Scenario("custom_status", "custom_status"),
    Scenario("new_uuid", "uuids"),
    Scenario("when_any_event_wins", "approval_with_deadline", events=((HOUR, "approval", "alice"),)),
    Scenario("when_any_timer_wins", "approval_with_deadline", events=((6 * DAY, "approval", "too late"),)),
    Scenario("timer_cancelled_same_step", "cancel_deadline", events=((0 * SECOND, "approval", "bob"),)),
    Scenario("timer_cancelled_later", "cancel_deadline", events=((HOUR, "approval", "carol"),)),
    Scenario("send_event", "send_event"),
    Scenario("mixed_when_all", "mixed", events=((HOUR, "data", {"k": "v"}),)),
]
