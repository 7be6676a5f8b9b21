"""Exact shortcuts for the scrape loop of the backtest, where the collector asks for the same figures at every step.

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
from bisect import bisect_left, bisect_right
from collections.abc import Iterator

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


@contextlib.contextmanager
def fast_scrape() -> Iterator[None]:
    """Every shortcut of this module."""
    with fast_uptime():
        yield
