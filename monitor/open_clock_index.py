"""The open ticket clocks of an engine, summed per (client, SLA) and kept as tickets change.

A scrape asks, at every instant, how many clocks are open per priority, which stage of their target each has
reached and how many deadlines fall within the next 15/30/60 minutes. A pass over every open clock costs
O(open clocks) per question (4,000 clocks: ~20 ms a scrape; a million: seconds). The index keeps the answer's
parts instead, so a question costs O(tickets changed since the last one + log n):

- per group, the open clocks by priority (counts) and their deadlines by priority (sorted): "due within w" is a
  bisection at `at + w`, the next deadline the smallest;
- per group and stage, the sorted instants at which each open clock reaches that stage. A running clock reaches
  the share s of its target at `cal.add_us(since, ceil(s * target) - elapsed)` (the earliest instant its
  business time gets there, the same arithmetic that sets its deadline); a paused clock either has reached it
  (an instant before every question) or will not until it runs again. Clocks that reached stage s are those
  whose instant is <= at; the last stage reached is the highest such (stages increase, elapsed time never
  goes back), so the count at stage s is reached(s) - reached(next stage).

The engine marks every ticket it settles (`Engine._index_ticket`: each event, each decided deadline, a merge, a
restore) in `touched`; the entries of those tickets are recomputed at the next question. An index made for an
engine that already holds tickets starts with every open one touched. `scan_open_clocks` in monitor.queries is
the reference pass, and the tests compare both on random streams.

Memory: one small tuple per open clock and one 8-byte slot per deadline and per stage instant.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right, insort
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.engine import Engine

@dataclass(slots=True)
class OpenClocks:
    """The open clocks of one ticket SLA of one client."""

    count: int = 0
    by_priority: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    stages: dict[float, int] = field(default_factory=lambda: defaultdict(int))  # by the last stage reached
    due: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))  # (priority, within_us)
    next_deadline_us: int | None = None

    def due_within(self, within_us: int) -> int:
        """Clocks, of every priority, whose deadline is at most `within_us` after the instant asked."""
        return sum(n for (_, w), n in self.due.items() if w == within_us)


ALREADY = -(1 << 62)  # the stage instant of a clock that reached it before any instant asked about

# one open clock: (client, SLA name), priority, deadline (or None), the instant it reaches each stage (or None)
Entry = tuple[tuple[str, str], str, "int | None", tuple["int | None", ...]]


class _Group:
    """The open clocks of one ticket SLA of one client."""

    __slots__ = ("by_priority", "count", "deadlines", "reached", "stages")

    def __init__(self, stages: tuple[float, ...]) -> None:
        self.stages = stages
        self.count = 0
        self.by_priority: dict[str, int] = defaultdict(int)
        self.deadlines: dict[str, array] = {}  # priority -> sorted deadlines
        self.reached = [array("q") for _ in stages]  # per stage -> sorted instants it is reached

    def add(self, entry: Entry) -> None:
        _, priority, deadline, reached = entry
        self.count += 1
        self.by_priority[priority] += 1
        if deadline is not None:
            listed = self.deadlines.get(priority)
            if listed is None:
                listed = self.deadlines[priority] = array("q")
            insort(listed, deadline)
        for instants, t in zip(self.reached, reached, strict=True):
            if t is not None:
                insort(instants, t)

    def remove(self, entry: Entry) -> None:
        _, priority, deadline, reached = entry
        self.count -= 1
        self.by_priority[priority] -= 1
        if deadline is not None:
            _discard(self.deadlines[priority], deadline)
        for instants, t in zip(self.reached, reached, strict=True):
            if t is not None:
                _discard(instants, t)


def _discard(instants: array, t: int) -> None:
    del instants[bisect_left(instants, t)]


class OpenClockIndex:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._groups: dict[tuple[str, str], _Group] = {}
        self._entries: dict[tuple[str, str], tuple[Entry, ...]] = {}
        self.touched: set[tuple[str, str]] = set(engine.open_tickets)

    def refresh(self) -> None:
        """Recompute the entries of every ticket touched since the last refresh."""
        touched, self.touched = self.touched, set()
        for key in touched:
            old = self._entries.pop(key, ())
            for entry in old:
                self._groups[entry[0]].remove(entry)
            new = self._entries_of(key)
            if new:
                self._entries[key] = new
                for entry in new:
                    self._group(entry[0], key[0]).add(entry)

    def _entries_of(self, key: tuple[str, str]) -> tuple[Entry, ...]:
        engine = self._engine
        if key not in engine.open_tickets:
            return ()
        item = engine.tickets.get(key)
        if item is None:
            return ()
        return tuple(_entry(key[0], clock) for clock in item.state.clocks if clock.good is None)

    def _group(self, group: tuple[str, str], client: str) -> _Group:
        found = self._groups.get(group)
        if found is None:
            sla = self._engine.clients[client].ticket_sla_named[group[1]]
            found = self._groups[group] = _Group(tuple(sla.stages))
        return found

    def at(self, at_us: int, due_within: Iterable[int] = (),
           clients: Iterable[str] | None = None) -> dict[tuple[str, str], OpenClocks]:
        """What `monitor.queries.open_clocks` answers, from the index."""
        self.refresh()
        wanted = None if clients is None else set(clients)
        spans = tuple(due_within)
        out: dict[tuple[str, str], OpenClocks] = {}
        for key, group in self._groups.items():
            if not group.count or (wanted is not None and key[0] not in wanted):
                continue
            entry = out[key] = OpenClocks()
            entry.count = group.count
            for priority, n in group.by_priority.items():
                if n:
                    entry.by_priority[priority] = n
            reached = [bisect_right(instants, at_us) for instants in group.reached]
            for i, stage in enumerate(group.stages):
                n = reached[i] - (reached[i + 1] if i + 1 < len(reached) else 0)
                if n:
                    entry.stages[stage] = n
            for priority, deadlines in group.deadlines.items():
                if not deadlines:
                    continue
                for span in spans:
                    n = bisect_right(deadlines, at_us + span)
                    if n:
                        entry.due[(priority, span)] = n
                if entry.next_deadline_us is None or deadlines[0] < entry.next_deadline_us:
                    entry.next_deadline_us = deadlines[0]
        return out


def _entry(client: str, clock) -> Entry:
    target = clock.target_us
    elapsed = clock.elapsed_us
    since = clock.since_us
    reached: list[int | None] = []
    for share in clock.sla.stages:
        rest = math.ceil(share * target) - elapsed
        if rest <= 0:
            reached.append(ALREADY)
        elif since is None:
            reached.append(None)  # paused: not before it runs again (and is touched)
        else:
            try:
                reached.append(clock.cal.add_us(since, rest))
            except ValueError:  # no business time ahead in the calendar
                reached.append(None)
    return (client, clock.sla.name), clock.priority, clock.deadline_us, tuple(reached)


def index_of(engine: Engine) -> OpenClockIndex:
    """The engine's index, made at the first question."""
    index = engine.open_index
    if index is None:
        index = engine.open_index = OpenClockIndex(engine)
    return index
