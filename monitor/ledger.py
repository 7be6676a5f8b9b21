"""Per-SLA bookkeeping of decided items: period tallies, an instant index for windows, latency sketches.

Items (tickets, calls, surveys, audits) hand the ledger *contributions*; a late event that changes an
item's outcome retracts the old contribution and adds the new one (sign -1/+1), so the ledger always
equals the sorted-input result. Uptime time accounting lives in `monitor.uptime`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from monitor.contracts import Rolling
from monitor.periods import PeriodWindow, period_of
from monitor.sketch import LogSketch


@dataclass(slots=True)
class Tally:
    """Counts of one SLA over some span. `total` sums the measured value (seconds or scores)."""

    decided: float = 0
    good: float = 0
    bad: float = 0
    total: float = 0.0

    def add(self, decided: float, good: float, bad: float, total: float, sign: int = 1) -> None:
        self.decided += sign * decided
        self.good += sign * good
        self.bad += sign * bad
        if total:  # most decisions measure nothing: keep the shared 0.0 instead of a new float per tally
            self.total += sign * total

    def merge(self, other: Tally) -> None:
        self.add(other.decided, other.good, other.bad, other.total)

    @property
    def empty(self) -> bool:
        return not (self.decided or self.good or self.bad or self.total)


class Contribution(NamedTuple):
    """What one item adds to one SLA: counted in the period of `at_us` (its decision instant).
    A NamedTuple: created and compared on every decision, so it must be cheap."""

    sla: str
    at_us: int
    decided: float
    good: float
    bad: float
    total: float = 0.0
    sample: float | None = None  # a latency/wait in seconds for the percentile sketch
    priority: str | None = None
    item: str | None = None  # ticket/call id, for breach listings and SLA events


@dataclass(slots=True)
class SlaLedger:
    client: str
    sla: str
    tz: str
    period: object  # "month" | "week" | "day" | Rolling
    list_breaches: bool = False  # keep breached item ids (tickets) for reports
    periods: dict[str, Tally] = field(default_factory=dict)
    windows: dict[str, PeriodWindow] = field(default_factory=dict)
    by_priority: dict[tuple[str, str], Tally] = field(default_factory=dict)
    sketches: dict[str, LogSketch] = field(default_factory=dict)
    instants: dict[int, Tally] = field(default_factory=dict)  # exact decision instants, for windows
    breaches: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # period -> (at, item)

    def apply(self, c: Contribution, sign: int) -> None:
        label = self._label(c.at_us)
        d, g, b, t = c.decided, c.good, c.bad, c.total
        tally = self.periods.get(label) or self._tally(self.periods, label)
        tally.add(d, g, b, t, sign)
        tally = self.instants.get(c.at_us) or self._tally(self.instants, c.at_us)
        tally.add(d, g, b, t, sign)
        if c.priority is not None:
            self._tally(self.by_priority, (label, c.priority)).add(d, g, b, t, sign)
        if c.sample is not None:
            sketch = self.sketches.get(label)
            if sketch is None:
                sketch = self.sketches[label] = LogSketch()
            sketch.add(c.sample, sign)
        if b and self.list_breaches and c.item is not None:
            self._note_breach(label, c.at_us, c.item, sign)

    def _label(self, at_us: int) -> str:
        if isinstance(self.period, Rolling):
            return "rolling"
        window = period_of(at_us, self.period, self.tz)
        self.windows.setdefault(window.label, window)
        return window.label

    @staticmethod
    def _tally(table: dict, key) -> Tally:
        tally = table.get(key)
        if tally is None:
            tally = table[key] = Tally()
        return tally

    def _note_breach(self, label: str, at_us: int, item: str, sign: int) -> None:
        listed = self.breaches.setdefault(label, [])
        if sign > 0:
            listed.append((at_us, item))
        else:
            listed.remove((at_us, item))

    def window(self, start_us: int, end_us: int) -> Tally:
        """Sum of decisions with start <= at < end (exact)."""
        out = Tally()
        for at, tally in self.instants.items():
            if start_us <= at < end_us:
                out.merge(tally)
        return out

    def prune(self, before_us: int) -> None:
        """Drop instant entries older than the longest window anyone asks for."""
        for at in [at for at in self.instants if at < before_us]:
            del self.instants[at]

    def merge(self, other: SlaLedger) -> None:
        for name in ("periods", "by_priority", "instants"):
            mine = getattr(self, name)
            for key, tally in getattr(other, name).items():
                self._tally(mine, key).merge(tally)
        self.windows.update(other.windows)
        for label, sketch in other.sketches.items():
            self.sketches.setdefault(label, LogSketch()).merge(sketch)
        for label, listed in other.breaches.items():
            self.breaches.setdefault(label, []).extend(listed)
