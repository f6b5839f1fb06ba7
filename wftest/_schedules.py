"""Schedules: the decisions taken at the engine's choice points, drawn lazily, recorded, and replayable.

A :class:`Schedule` is the engine's ``Scheduler`` plus a record of what it decided, printable as a
timeline and as ``Schedule.from_string('...')``. :class:`DrawnSchedule` draws each decision from a source
of small integers (hypothesis, a seeded random generator, recorded choices). This module does not import
hypothesis: ``wftest.strategies`` builds hypothesis schedules on top of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from wftest.engine._scheduler import ALL_FAULTS, Fault

__all__ = ["Decision", "DrawnSchedule", "Schedule", "ScheduleWarning", "checked_faults", "scripted"]

#: a decision in a schedule string: a choice, a fault point (no fault, or a named fault), an event delay
_TOKEN = re.compile(r"c\d+|f[ase](?:-|:.+)|d\d+")
_KIND_LETTERS = {"a": "activity", "s": "step", "e": "event"}
#: the faults ``Schedule.from_string`` knows without ``faults=``, by the names schedule strings give them
_STANDARD = {name: f for f in ALL_FAULTS for name in (f.describe(), f.code)}


class ScheduleWarning(UserWarning):
    """A schedule given as a string did not fit the run it replayed: some of its decisions were never used
    (the workflow, its input or its faults changed since the schedule was printed, or it is another
    workflow's schedule), so the run did not follow the schedule as printed."""


def checked_faults(faults: Iterable[Fault], where: str) -> list[Fault]:
    """``faults`` as a list, or a ``TypeError`` naming the first that is not a fault instance."""
    if isinstance(faults, Fault) or (isinstance(faults, type) and issubclass(faults, Fault)):
        name = faults.__name__ if isinstance(faults, type) else type(faults).__name__
        raise TypeError(f"{where}: faults= takes a list of faults, got {faults!r}: write faults=[{name}()]")
    if isinstance(faults, str) or not isinstance(faults, Iterable):
        raise TypeError(f"{where}: faults= takes a list of faults (e.g. [CrashAfterActivity()]), got {faults!r}")
    checked = list(faults)
    for fault in checked:
        if not isinstance(fault, Fault):
            hint = (f"write {fault.__name__}(), not {fault.__name__}"
                    if isinstance(fault, type) and issubclass(fault, Fault)
                    else "e.g. CrashAfterActivity(), ActivityFails(ConnectionError('reset'))")
            raise TypeError(f"{where}: faults= takes fault instances, got {fault!r}: {hint}")
    return checked


@dataclass(frozen=True)
class Decision:
    """One decision taken at a choice point."""

    point: str  # "next", "deliver", "activity", "step", "event" or "delay"
    subject: str  # what was decided about (the options, or the work item)
    value: str  # the token: "c2", "fa-", "fa:crash-after", "d30"
    detail: str  # human-readable outcome


class Schedule:
    """A sequence of decisions for the engine's choice points (a ``Scheduler``).

    Built by :func:`schedules` (hypothesis draws each decision), or from a string to replay a schedule
    exactly: ``Schedule.from_string("c1;fa:crash-after;fa-")``. Past the end of its script a schedule
    takes the default (FIFO, no fault). ``timeline()`` lists the decisions taken.

    A check that runs several workflows with one schedule prints one part per run, ``" | "`` between them
    (``"c1;fa- | c0"``): read back, run ``n`` of the check replays part ``n``. A script of one part is
    replayed by every run it is given to. The runs must follow one another (a run starts when the tester
    starts; the tester calls :meth:`begin_run`): testers that run interleaved cannot share a schedule.
    Given to ``Engine(scheduler=...)`` directly, call :meth:`begin_run` before each run.
    """

    def __init__(self, script: Sequence[str] = (), *, faults: Sequence[Fault] = ALL_FAULTS) -> None:
        """``script``: the decisions' tokens, as ``to_string()`` writes them, a ``"|"`` between runs."""
        if isinstance(script, str):
            raise TypeError(f"Schedule() takes a list of decisions, got the string {script!r}: "
                            f"write Schedule.from_string({script!r})")
        self._fault_list = checked_faults(faults, "Schedule")
        self._faults = {f.describe(): f for f in self._fault_list}
        self._faults.update({f.code: f for f in self._fault_list})
        self._fault_kinds = frozenset(f.kind for f in self._fault_list)
        self._parts: list[list[str]] = [[]]
        for token in script:
            if token == "|":
                self._parts.append([])
            else:
                self._parts[-1].append(token)
        for run, part in enumerate(self._parts, 1):
            for number, token in enumerate(part, 1):
                self._check_token(run, number, token)
        self._script = self._parts[0]  # the part the current run replays
        #: per run, (point, options or subject, token, index / fault / seconds) per decision; described lazily
        self._runs: list[list[tuple[str, Any, str, Any]]] = [[]]
        self._taken = self._runs[0]  # the current run's
        self._begun = 0  # runs begun (begin_run); decisions taken before the first belong to run 1
        self._described: list[Decision] = []
        self._position = 0

    def begin_run(self, *, stacklevel: int = 1) -> None:
        """A run starts (the tester calls this): its decisions are recorded as the next run's, and a script
        of several parts moves on to the next part. A ``ScheduleWarning`` when the run cannot get its part
        points ``stacklevel`` frames up from the caller (1: the caller)."""
        if self._begun or self._taken:  # not the first run
            self._next_run_begins()
            unused = self.unused
            if len(self._parts) > 1 and unused:
                self._warn(f"run {len(self._runs) + 1} started before run {len(self._runs)} had used "
                           f"{len(unused)} of its decisions (from #{self._position + 1} {unused[0]!r} on): the "
                           "runs do not follow one another as when the schedule was printed (testers run "
                           "interleaved?), so the decisions do not reach the runs they were taken in",
                           stacklevel=stacklevel + 1)
            self._taken = []
            self._runs.append(self._taken)
        self._begun += 1
        if len(self._parts) > 1:
            run = len(self._runs)
            self._script = self._parts[run - 1] if run <= len(self._parts) else []
            if run == len(self._parts) + 1:
                self._warn(f"run {run} started, but the schedule has {len(self._parts)} parts, one per run of the "
                           "check it was printed for: this run and any later take the defaults. A schedule "
                           "replays one check: make a new one (from_string) for each replay", stacklevel=stacklevel + 1)
        self._position = 0

    def _next_run_begins(self) -> None:
        """A run after the first begins (a hook for schedules whose source keeps runs apart)."""

    def _warn(self, problem: str, stacklevel: int) -> None:
        """Warn (``ScheduleWarning``) at ``stacklevel`` frames up from the caller (1: the caller)."""
        import warnings

        script = _joined(self._parts)
        warnings.warn(f"Schedule.from_string({script!r}): {problem}", ScheduleWarning, stacklevel=stacklevel + 1)

    # -- Scheduler ----------------------------------------------------------------------------------
    #
    # Tokens: "c<i>" a choice; "f<k>-" no fault / "f<k>:<fault>" a fault at a point of kind k (a: activity,
    # s: step, e: event); "d<seconds>" an event delay. Choices are recorded always, fault tokens only at
    # points where a fault of that kind was possible, so a script replays position by position; a token
    # that does not fit the point is left for a later point (the code changed since it was printed), and
    # what is left at the end of the run is reported (``ScheduleWarning``).

    def _check_token(self, run: int, number: int, token: str) -> None:
        """A ``ValueError`` saying what is wrong with the ``number``-th token of the script (of ``run``)."""
        where = f"Schedule: {f'run {run}, ' if len(self._parts) > 1 else ''}decision #{number} {token!r}"
        if not _TOKEN.fullmatch(token):
            raise ValueError(f"{where} is not a decision: expected c<i> (a choice), fa-, fs-, fe- (no fault at "
                             "an activity, step or event), fa:<fault>, fs:<fault>, fe:<fault> (a fault) or "
                             "d<seconds> (an event delay), ';' between decisions and ' | ' between runs")
        if token.startswith("f") and token[2] == ":":
            fault = self._faults.get(token[3:])
            kind = _KIND_LETTERS[token[1]]
            if fault is None:
                known = ", ".join(sorted({f.describe() for f in self._fault_list})) or "none"
                raise ValueError(f"{where} names a fault this schedule does not have (its faults: {known}); "
                                 "pass the faults the schedule was drawn with: Schedule.from_string(..., "
                                 "faults=[...])")
            if fault.kind != kind:
                raise ValueError(f"{where}: {fault.describe()} strikes at a(n) {fault.kind}, not at a(n) {kind} "
                                 f"(write f{fault.kind[0]}:{token[3:]})")

    def choose(self, point: str, options: Sequence[str]) -> int:
        """The option to run now."""
        index = min(max(self._draw_choice(len(options)), 0), len(options) - 1)
        self._taken.append((point, options, f"c{index}", index))
        return index

    def fault(self, kind: str, subject: str) -> Fault | None:
        """The fault to inject at this point, if any."""
        if kind not in self._fault_kinds:
            if self._script:
                self._take(f"f{kind[0]}-")  # printed by a schedule that could inject this kind; no fault here
            return None
        fault = self._draw_fault(kind)
        token = f"f{kind[0]}" + (f":{fault.describe()}" if fault is not None else "-")
        self._taken.append((kind, subject, token, fault))
        return fault

    def event_delay(self, label: str, limit: timedelta) -> timedelta:
        """Extra delay for a scheduled event (``schedules(event_delays=...)``)."""
        seconds = max(0, self._draw_delay(int(limit.total_seconds())))
        self._taken.append(("delay", label, f"d{seconds}", seconds))
        return timedelta(seconds=seconds)

    @property
    def decisions(self) -> list[Decision]:
        """The decisions taken, in order, by every run given this schedule since it was made or ``reset()``
        (described when first asked for: runs are hot)."""
        taken = [decision for run in self._runs for decision in run]
        described = self._described
        for point, about, token, outcome in taken[len(described):]:
            described.append(_describe(point, about, token, outcome))
        return described

    # -- sources of decisions (overridden by the hypothesis schedule) -------------------------------

    def _take(self, prefix: str) -> str | None:
        if self._position < len(self._script) and self._script[self._position].startswith(prefix):
            self._position += 1
            return self._script[self._position - 1][len(prefix):]
        return None

    def _draw_choice(self, count: int) -> int:
        token = self._take("c")
        return int(token) if token else 0

    def _draw_fault(self, kind: str) -> Fault | None:
        token = self._take(f"f{kind[0]}")
        if token is None or token == "-":
            return None
        return self._faults[token.removeprefix(":")]  # known and of this kind: checked by __init__

    def _draw_delay(self, limit: int) -> int:
        token = self._take("d")
        return min(int(token), limit) if token else 0

    # -- presentation -------------------------------------------------------------------------------

    @classmethod
    def from_string(cls, text: str, *, faults: Sequence[Fault] = ALL_FAULTS) -> Schedule:
        """Replay the decisions printed by a failing example (``c``: choice, ``f``: fault, ``d``: delay).

        Decisions are separated by ``;``, the runs of a check that runs several workflows by ``|``.
        """
        names = sorted({name for f in checked_faults(faults, "Schedule.from_string") for name in
                        (f.describe(), f.code)}, key=len, reverse=True)
        return cls(_tokens(text, names), faults=faults)

    def to_string(self) -> str:
        """The decisions taken, in the form ``from_string`` reads (``" | "`` between runs, if several)."""
        return _joined(self.tokens_by_run())

    def tokens_by_run(self) -> list[list[str]]:
        """The tokens of the decisions taken, one list per run given this schedule."""
        return [[token for _, _, token, _ in run] for run in self._runs]

    def timeline(self) -> str:
        """The decisions taken, one per line (defaults that changed nothing are left out), under a heading
        per run when the schedule drove several."""
        decisions = self.decisions
        several = len(self._runs) > 1
        blocks = []
        start = 0
        for run_number, run in enumerate(self._runs, 1):
            lines = [f"{n:3d}. {d.detail}" for n, d in enumerate(decisions[start:start + len(run)], 1)
                     if d.value != "c0" and not d.value.endswith("-") and d.value != "d0"]
            start += len(run)
            text = "\n".join(lines) if lines else f"{'  ' if several else ''}(the default order, no faults)"
            blocks.append(f"run {run_number}:\n{text}" if several else text)
        return "\n".join(blocks)

    def reset(self) -> None:
        """Forget the decisions taken (the next run is run 1 again, from the start of the script)."""
        self._runs = [[]]
        self._taken = self._runs[0]
        self._begun = 0
        self._described = []
        self._script = self._parts[0]
        self._position = 0

    @property
    def delays_events(self) -> bool:
        """Whether events scheduled with ``tester.at()`` get a delay decision."""
        return any(token.startswith("d") for part in self._parts for token in part)

    @property
    def script(self) -> list[str]:
        """The tokens this schedule replays (``from_string``), in order, ``"|"`` between runs; past their end,
        the defaults."""
        return scripted(self._parts)

    @property
    def unused(self) -> list[str]:
        """The tokens of the script the current run did not use (it went another way than the one printed)."""
        return self._script[self._position:]

    def warn_if_unused(self, stacklevel: int = 2) -> None:
        """Warn (``ScheduleWarning``) if the current run left decisions of the script unused."""
        unused = self.unused
        if unused:
            run = f" of run {len(self._runs)}" if len(self._parts) > 1 else ""
            self._warn(
                f"{len(unused)} of its {len(self._script)} decisions{run} were not used, from "
                f"#{self._position + 1} {unused[0]!r} on. The run went another way than the one the schedule was "
                "printed for (the workflow, its input or faults= changed, or it is another workflow's schedule), "
                "so it did not replay that run.", stacklevel=stacklevel + 1)

    def __repr__(self) -> str:
        parts = self.tokens_by_run() if self._begun or self._taken else self._parts  # not run yet: its script
        if not any(parts):
            return "Schedule()"
        text = _joined(parts)
        return f"Schedule.from_string({text!r}{self._faults_argument([t for p in parts for t in p])})"

    def _faults_argument(self, tokens: Sequence[str]) -> str:
        """``, faults=[...]`` when a fault the tokens name is not the one ``from_string`` gives that name by
        default (a custom failure, or a fault of your own named like a standard one)."""
        named = {token[3:] for token in tokens if token[:1] == "f" and token[2:3] == ":"}
        if all(_STANDARD.get(name) == self._faults.get(name) for name in named):
            return ""
        return f", faults=[{', '.join(repr(f) for f in self._fault_list)}]"


def scripted(parts: Iterable[Sequence[str]]) -> list[str]:
    """One token list of the runs' decisions, ``"|"`` between runs (what ``Schedule(...)`` takes)."""
    return [token for number, part in enumerate(parts) for token in ["|"][:number] + list(part)]


def _joined(parts: Iterable[Sequence[str]]) -> str:
    """A schedule string: ``;`` between the decisions of a run, `` | `` between runs (``"c1 | | fa-"``)."""
    text = " | ".join(";".join(tokens) for tokens in parts)
    while "|  |" in text:
        text = text.replace("|  |", "| |")
    return text.strip()


def _tokens(text: str, fault_names: Sequence[str]) -> list[str]:
    """The tokens of a schedule string, ``"|"`` between runs. A fault's name may hold ``;`` or ``|`` (its
    error's message): the longest name of ``fault_names`` that ends where a decision may end is taken whole."""
    tokens: list[str] = []
    position, length = 0, len(text)
    while position < length:
        char = text[position]
        if char in " \t\r\n;":
            position += 1
            continue
        if char == "|":
            tokens.append("|")
            position += 1
            continue
        end = -1
        if text.startswith(("fa:", "fs:", "fe:"), position):
            for name in fault_names:  # longest first
                after = position + 3 + len(name)
                if text.startswith(name, position + 3) and text[after:].lstrip()[:1] in ("", ";", "|"):
                    end = after
                    break
        if end < 0:
            ends = [i for i in (text.find(";", position), text.find("|", position)) if i >= 0]
            end = min(ends) if ends else length
        tokens.append(text[position:end].strip())
        position = end
    return tokens


def _describe(point: str, about: Any, token: str, outcome: Any) -> Decision:
    if token.startswith("c"):
        options: Sequence[str] = about
        verb = "delivered" if point == "deliver" else "ran"
        detail = f"{verb} {options[outcome]}" + (f" ahead of {', '.join(options[:outcome])}" if outcome else "")
        return Decision(point, " | ".join(options), token, detail)
    if token.startswith("d"):
        return Decision(point, about, token, f"{about} delayed by {outcome} s")
    if outcome is not None:
        return Decision(point, about, token, f"{outcome.describe()} at {point} {about}")
    return Decision(point, about, token, f"no fault at {point} {about}")


class DrawnSchedule(Schedule):
    """A schedule that draws each decision lazily, at each choice point, from ``index``.

    ``index(count)`` returns an int in ``range(count)``; 0 is always the default (FIFO order, no fault, no
    delay), so a source that shrinks towards 0 shrinks towards the default schedule. The source is
    hypothesis (``wftest.strategies.schedules``), a seeded random generator or a list of recorded choices
    (``wftest.fuzzing.explore``).
    """

    def __init__(self, index: Callable[[int], int], faults: Sequence[Fault], max_faults: int,
                 event_delays: timedelta | None) -> None:
        super().__init__(faults=faults)
        self._draw_index = index
        self._fault_list = list(faults)
        self._faults_left = max_faults
        self._max_faults = max_faults
        self._event_delays = event_delays

    def __repr__(self) -> str:
        if not self._begun and not self._taken:  # hypothesis shows arguments as generated, before the run
            return "Schedule(<drawn during the run: see the 'schedule:' note>)"
        return super().__repr__()

    def _next_run_begins(self) -> None:
        """A source that keeps runs apart (``explore``'s) is told, so shrinking can drop one run's decisions
        without moving the next run's."""
        tell = getattr(self._draw_index, "begin_run", None)
        if tell is not None:
            tell()

    def reset(self) -> None:
        """Forget the decisions taken. The draws go on from the source (a new example has a new source), and
        at most ``max_faults`` faults strike from here on."""
        super().reset()
        self._faults_left = self._max_faults

    def _draw_choice(self, count: int) -> int:
        return self._draw_index(count)

    def _draw_fault(self, kind: str) -> Fault | None:
        applicable = [f for f in self._fault_list if f.kind == kind]
        if not applicable:
            return None
        # Always draw, even with no faults left, and ignore the draw then: skipping it would make a schedule
        # with more faults *shorter*, and hypothesis shrinks towards shorter (it would keep extra faults).
        # Index 0 is "no fault", so shrinking removes faults.
        index = self._draw_index(len(applicable) + 1)
        if index == 0 or self._faults_left <= 0:
            return None
        self._faults_left -= 1
        return applicable[index - 1]

    def _draw_delay(self, limit: int) -> int:
        if self._event_delays is None or limit <= 0:
            return 0
        return self._draw_index(limit + 1)

    @property
    def delays_events(self) -> bool:
        """Whether events scheduled with ``tester.at()`` get a delay decision."""
        return self._event_delays is not None

    def event_delay(self, label: str, limit: timedelta) -> timedelta:
        """Extra delay for a scheduled event, at most ``event_delays``."""
        if self._event_delays is None:
            return timedelta(0)
        return super().event_delay(label, min(limit, self._event_delays))
