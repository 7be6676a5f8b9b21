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

The engine announces every change of a ticket before making it (`before_change`: an event, a decided deadline,
a merge); the ticket's entries are taken out then, computed from its state as it still is, and put back from its
new state at the next question. So nothing is stored per ticket: one 8-byte slot per deadline and per stage
instant (`monitor.sorted_ints`), ~50-70 bytes per open ticket. An index made for an engine that already holds
tickets (the first scrape after a restore) starts with every open one to put in. `scan_open_clocks` in
monitor.queries is the reference pass, and the tests compare both on random streams.

The first build (every open ticket put in at once: the first scrape after a restore, or after a rebuild) is the
costly one, ~10-15 µs an open ticket in Python. It runs compiled when `monitor._open_clocks` is built
(native/open_clocks, `pip install -e .` with a Rust toolchain); the Python path (`_entries`, `_stage_instants`)
stays the reference, forced with SLAMON_OPEN_CLOCKS=python, and a differential test holds the two together.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monitor.calendar import CHUNK_US, MAX_CLOSED_SCAN_US
from monitor.compiled import compiled_module
from monitor.sorted_ints import SortedInts

_open_clocks, COMPILED_BUILD = compiled_module("monitor._open_clocks", "SLAMON_OPEN_CLOCKS")

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


class _Group:
    """The open clocks of one ticket SLA of one client."""

    __slots__ = ("by_priority", "count", "deadlines", "reached", "stages")

    def __init__(self, stages: tuple[float, ...]) -> None:
        self.stages = stages
        self.count = 0
        self.by_priority: dict[str, int] = defaultdict(int)
        self.deadlines: dict[str, SortedInts] = {}  # priority -> deadlines
        self.reached = [SortedInts() for _ in stages]  # per stage -> the instants it is reached


class OpenClockIndex:
    """Holds, for every ticket not in `touched`, exactly the entries its current state gives (`_entries`). The
    engine calls `before_change(key)` before it changes a ticket: its entries are taken out (computed from the
    state still unchanged, so nothing per ticket is stored) and it is touched; `refresh` puts the touched
    tickets' entries back from their new state. Should the entries taken out ever not be found (a change the
    engine did not announce: a bug), the index is rebuilt at the next question and `rebuilds` counts it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._groups: dict[tuple[str, str], _Group] = {}
        self.touched: set[tuple[str, str]] = set(engine.open_tickets)
        self._stale = False
        self._empty = True  # nothing put in yet: every open ticket is touched
        self.rebuilds = 0

    def before_change(self, key: tuple[str, str]) -> None:
        if key in self.touched:
            return  # its entries are out already
        self.touched.add(key)
        for group, priority, deadline, reached in self._entries(key):
            found = group.deadlines[priority].remove(deadline) if deadline is not None else True
            for instants, t in zip(group.reached, reached, strict=True):
                if t is not None:
                    found = instants.remove(t) and found
            group.count -= 1
            group.by_priority[priority] -= 1
            if not found:
                self._stale = True

    def refresh(self) -> None:
        """Put back the entries of every ticket touched since the last refresh."""
        if self._stale:
            self._stale, self._groups = False, {}
            self.touched = set(self._engine.open_tickets)
            self._empty = True
            self.rebuilds += 1
        if self._empty and COMPILED_BUILD:
            self._empty = False
            self._build_compiled()
            return
        self._empty = False
        touched, self.touched = self.touched, set()
        adds: dict[SortedInts, list[int]] = defaultdict(list)  # gathered: an empty set is loaded sorted at once
        for key in touched:
            for group, priority, deadline, reached in self._entries(key):
                group.count += 1
                group.by_priority[priority] += 1
                if deadline is not None:
                    listed = group.deadlines.get(priority)
                    if listed is None:
                        listed = group.deadlines[priority] = SortedInts()
                    adds[listed].append(deadline)
                for instants, t in zip(group.reached, reached, strict=True):
                    if t is not None:
                        adds[instants].append(t)
        for instants, values in adds.items():
            instants.update(values)

    def _build_compiled(self) -> None:
        """Every open ticket's entries at once, into an empty index (where every open ticket is touched)."""
        engine = self._engine
        self.touched = set()
        for client, sla, count, counts, deadlines, reached in _open_clocks.build(
                engine.open_tickets, engine.tickets, CHUNK_US, MAX_CLOSED_SCAN_US, ALREADY):
            group = self._group(client, sla)
            group.count = count
            group.by_priority.update(counts)
            for priority, packed in deadlines:
                group.deadlines[priority] = listed = SortedInts()
                listed.load_sorted(packed)
            for instants, packed in zip(group.reached, reached, strict=True):
                instants.load_sorted(packed)

    def _entries(self, key: tuple[str, str]) -> Iterator[tuple[_Group, str, int | None, tuple[int | None, ...]]]:
        """(group, priority, deadline, the instant each stage is reached) of each open clock of the ticket."""
        engine = self._engine
        if key not in engine.open_tickets:
            return
        item = engine.tickets.get(key)
        if item is None:
            return
        for clock in item.state.clocks:
            if clock.good is None:
                yield self._group(key[0], clock.sla), clock.priority, clock.deadline_us, _stage_instants(clock)

    def _group(self, client: str, sla) -> _Group:
        found = self._groups.get((client, sla.name))
        if found is None:
            found = self._groups[(client, sla.name)] = _Group(tuple(sla.stages))
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
            reached = [instants.count_le(at_us) for instants in group.reached]
            for i, stage in enumerate(group.stages):
                n = reached[i] - (reached[i + 1] if i + 1 < len(reached) else 0)
                if n:
                    entry.stages[stage] = n
            for priority, deadlines in group.deadlines.items():
                first = deadlines.min()
                if first is None:
                    continue
                for span in spans:
                    n = deadlines.count_le(at_us + span)
                    if n:
                        entry.due[(priority, span)] = n
                if entry.next_deadline_us is None or first < entry.next_deadline_us:
                    entry.next_deadline_us = first
        return out


def _stage_instants(clock) -> tuple[int | None, ...]:
    """When the clock reaches each of its SLA's stages: ALREADY, an instant, or None (paused short of it, or
    no business time ahead)."""
    target = clock.target_us
    elapsed = clock.elapsed_us
    since = clock.since_us
    out: list[int | None] = []
    for share in clock.sla.stages:
        rest = math.ceil(share * target) - elapsed
        if rest <= 0:
            out.append(ALREADY)
        elif since is None:
            out.append(None)  # paused: not before it runs again (which changes the ticket)
        else:
            try:
                out.append(clock.cal.add_us(since, rest))
            except ValueError:  # no business time ahead in the calendar
                out.append(None)
    return tuple(out)


def index_of(engine: Engine) -> OpenClockIndex:
    """The engine's index, made at the first question."""
    index = engine.open_index
    if index is None:
        index = engine.open_index = OpenClockIndex(engine)
    return index
