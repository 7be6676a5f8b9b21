"""Uptime from probes (spec section 3).

The state of a service holds from one probe until the next. A gap between consecutive probes longer than
3 x the expected probe interval is `unknown` as a whole (interpretation: the letter of the spec, "a gap
... is unknown time"); the same rule applies to the live tail from the last probe to now. Maintenance
windows are cut out first (neither up, down nor unknown). Availability = up / (up + down).

Probes are kept sorted by event time and every figure is computed from them at the report instant, so
the result never depends on arrival order.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from dataclasses import dataclass, field

from monitor.contracts import UptimeSla

UNKNOWN_GAP_FACTOR = 3


@dataclass(slots=True)
class UptimeTally:
    up_us: int = 0
    down_us: int = 0
    unknown_us: int = 0

    def add(self, other: UptimeTally, sign: int = 1) -> None:
        self.up_us += sign * other.up_us
        self.down_us += sign * other.down_us
        self.unknown_us += sign * other.unknown_us

    @property
    def known_us(self) -> int:
        return self.up_us + self.down_us


@dataclass(slots=True)
class UptimeLedger:
    """One uptime SLA: the probe timeline of its service."""

    client: str
    sla: UptimeSla
    tz: str
    maintenance: list[tuple[int, int]]
    times: list[int] = field(default_factory=list)  # sorted probe instants
    states: dict[int, bool] = field(default_factory=dict)  # instant -> up

    def add_probe(self, ts: int, up: bool) -> None:
        if ts not in self.states:  # the same instant twice: the later arrival wins
            insort(self.times, ts)
        self.states[ts] = up

    def classify(self, seg_start: int, seg_end: int, a: int, b: int) -> UptimeTally:
        """Time of the part [a, b) of the segment [seg_start, seg_end) that starts with a probe."""
        out = UptimeTally()
        length = b - a - self._maintenance_overlap(a, b)
        if seg_end - seg_start > UNKNOWN_GAP_FACTOR * self.sla.probe_interval:
            out.unknown_us = length
        elif self.states[seg_start]:
            out.up_us = length
        else:
            out.down_us = length
        return out

    def _maintenance_overlap(self, a: int, b: int) -> int:
        total, cursor = 0, a
        for start, end in self.maintenance:  # sorted, merged
            lo, hi = max(start, cursor), min(end, b)
            if hi > lo:
                total += hi - lo
                cursor = hi
        return total

    def between(self, start: int, end: int) -> UptimeTally:
        """Exact up/down/unknown time in [start, end), including the live tail up to `end`."""
        out = UptimeTally()
        if end <= start or not self.times:
            return out
        i = max(0, bisect_right(self.times, start) - 1)
        for j in range(i, len(self.times)):
            seg_start = self.times[j]
            if seg_start >= end:
                break
            seg_end = self.times[j + 1] if j + 1 < len(self.times) else end
            a, b = max(seg_start, start), min(seg_end, end)
            if b > a:
                out.add(self.classify(seg_start, max(seg_end, b), a, b))
        return out

    def last_probe(self) -> tuple[int, bool] | None:
        if not self.times:
            return None
        return self.times[-1], self.states[self.times[-1]]

    def merge(self, other: UptimeLedger) -> None:
        for ts in other.times:
            self.add_probe(ts, other.states[ts])
