"""Exact shortcuts for the scrape loop of the backtest, where the collector asks for the same figures at every step.

`fast_open_clocks()`: while active, the collector's `open_clocks` keeps, per open ticket clock, the stage it
reached and the instant that stage can next change (the clock's calendar `add_us` to the next stage's share of
its target); a clock whose state is unchanged is not re-timed until then. Deadlines due within a span are
compared at every call, as before. Both are also active in `fast_scrape()`.

`fast_uptime()`: while active, `UptimeLedger.between` adds the tallies of the whole probe segments inside the
window from prefix sums (each segment's tally is still `classify`'s own) and computes only the two partial
segments at its ends. The workers' collector asks for the period-to-date and every burn window of an uptime
SLA at each scrape; without this a scrape costs O(probes kept) per window (the 30-day backtest spent most of
its scrape time there). The sums are dropped when a probe lands anywhere but after the last one, or when the
ledger folds; a probe after the last one extends them. The result is the same integers (tests compare both
on random timelines).

Kept in the backtest because only the backtest asks for every step of a long history; the same prefix sums
could move into `monitor.uptime` itself.
"""

from __future__ import annotations

import contextlib
import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator

from monitor.queries import OpenClocks
from monitor.uptime import UptimeLedger, UptimeTally


class _Sums:
    __slots__ = ("down", "first", "n", "unknown", "up")

    def __init__(self, ledger: UptimeLedger) -> None:
        times = ledger.times
        self.first = times[0] if times else None
        self.n = 0
        self.up, self.down, self.unknown = [0], [0], [0]
        for j in range(len(times) - 1):
            self.extend(ledger, times[j], times[j + 1])
        self.n = len(times)

    def extend(self, ledger: UptimeLedger, seg_start: int, seg_end: int) -> None:
        t = ledger.classify(seg_start, seg_end, seg_start, seg_end)
        self.up.append(self.up[-1] + t.up_us)
        self.down.append(self.down[-1] + t.down_us)
        self.unknown.append(self.unknown[-1] + t.unknown_us)


_SUMS: dict[int, _Sums] = {}


def _sums(ledger: UptimeLedger) -> _Sums:
    s = _SUMS.get(id(ledger))
    times = ledger.times
    if s is None or s.n != len(times) or s.first != (times[0] if times else None):
        s = _SUMS[id(ledger)] = _Sums(ledger)
    return s


def _between(self: UptimeLedger, start: int, end: int) -> UptimeTally:
    out = UptimeTally()
    if end <= start or not self.times:
        return out
    folded = self.folded_us
    if folded is not None and start < folded:
        self._folded_between(max(start, self.first_us), min(end, folded), out)
        start = folded
        if end <= start:
            return out
    times = self.times
    i = max(0, bisect_right(times, start) - 1)
    k = bisect_left(times, end) - 1  # the last segment starting before `end`

    def piece(j: int) -> None:
        seg_start = times[j]
        seg_end = times[j + 1] if j + 1 < len(times) else end
        a, b = max(seg_start, start), min(seg_end, end)
        if b > a:
            out.add(self.classify(seg_start, max(seg_end, b), a, b))

    if k - i < 3:
        for j in range(i, k + 1):
            piece(j)
        return out
    piece(i)
    s = _sums(self)
    out.up_us += s.up[k] - s.up[i + 1]
    out.down_us += s.down[k] - s.down[i + 1]
    out.unknown_us += s.unknown[k] - s.unknown[i + 1]
    piece(k)
    return out


@contextlib.contextmanager
def fast_uptime() -> Iterator[None]:
    """`UptimeLedger.between` from prefix sums while the context is active (one thread: the scrape loop)."""
    between, add_probe, fold = UptimeLedger.between, UptimeLedger.add_probe, UptimeLedger.fold

    def _add_probe(self: UptimeLedger, ts: int, up: bool) -> None:
        times = self.times
        appended = bool(times) and ts > times[-1]
        last = bool(times) and ts == times[-1]
        add_probe(self, ts, up)
        s = _SUMS.get(id(self))
        if s is None or last:  # the last probe starts no whole segment
            return
        if appended and s.n == len(times) - 1:
            s.extend(self, times[-2], times[-1])
            s.n += 1
        else:
            del _SUMS[id(self)]

    def _fold(self: UptimeLedger, before_us: int) -> int:
        _SUMS.pop(id(self), None)
        return fold(self, before_us)

    UptimeLedger.between, UptimeLedger.add_probe, UptimeLedger.fold = _between, _add_probe, _fold
    try:
        yield
    finally:
        UptimeLedger.between, UptimeLedger.add_probe, UptimeLedger.fold = between, add_probe, fold
        _SUMS.clear()


# --- open ticket clocks -------------------------------------------------------------------------------------

_STAGES: dict[int, tuple] = {}  # id(clock) -> (state, valid from, valid until, stage reached, clock)


def _stage_entry(clock, state: tuple, at_us: int) -> tuple:
    """The last stage the clock reached at `at_us` (as `open_clocks` computes it) and until when it holds."""
    elapsed = clock.elapsed_at(at_us)
    target = clock.target_us
    reached = [s for s in clock.sla.stages if elapsed >= s * target]
    until = math.inf
    if clock.since_us is not None:  # running: the next stage is reached when its share of the target is
        for s in clock.sla.stages:
            if elapsed < s * target:
                rest = math.ceil(s * target) - clock.elapsed_us
                try:
                    t = clock.cal.add_us(clock.since_us, rest) if rest > 0 else clock.since_us
                except ValueError:  # no open time ahead
                    continue
                until = min(until, max(t, at_us + 1))
    return state, at_us, until, reached[-1] if reached else None, clock


def _open_clocks(
    engine, at_us: int, due_within: Iterable[int] = (), clients: Iterable[str] | None = None
) -> dict[tuple[str, str], OpenClocks]:
    """`monitor.queries.open_clocks` with each clock's stage kept while it cannot change."""
    global _STAGES
    wanted = None if clients is None else set(clients)
    spans = tuple(due_within)
    out: dict[tuple[str, str], OpenClocks] = {}
    tickets = engine.tickets
    cache, fresh = _STAGES, {}
    for key in engine.open_tickets:
        client = key[0]
        if wanted is not None and client not in wanted:
            continue
        for clock in tickets[key].state.clocks:
            if clock.good is not None:
                continue
            entry = out.get((client, clock.sla.name))
            if entry is None:
                entry = out[(client, clock.sla.name)] = OpenClocks()
            entry.count += 1
            entry.by_priority[clock.priority] += 1
            state = (clock.sla, clock.cal, clock.target_us, clock.elapsed_us, clock.since_us)
            c = cache.get(id(clock))
            if c is None or c[4] is not clock or c[0] != state or not c[1] <= at_us < c[2]:
                c = _stage_entry(clock, state, at_us)
            fresh[id(clock)] = c
            if c[3] is not None:
                entry.stages[c[3]] += 1
            deadline = clock.deadline_us
            if deadline is not None:
                for span in spans:
                    if deadline <= at_us + span:
                        entry.due[(clock.priority, span)] += 1
                if entry.next_deadline_us is None or deadline < entry.next_deadline_us:
                    entry.next_deadline_us = deadline
    _STAGES = fresh
    return out


@contextlib.contextmanager
def fast_open_clocks() -> Iterator[None]:
    """The collector's `open_clocks` with stages kept between changes, while the context is active."""
    import streams.metrics as metrics

    global _STAGES
    plain = metrics.open_clocks
    metrics.open_clocks = _open_clocks
    try:
        yield
    finally:
        metrics.open_clocks = plain
        _STAGES = {}


@contextlib.contextmanager
def fast_scrape() -> Iterator[None]:
    """Every shortcut of this module."""
    with fast_uptime(), fast_open_clocks():
        yield
