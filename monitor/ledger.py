"""Per-SLA bookkeeping of decided items: period tallies, an instant index for windows, latency sketches.

Items (tickets, calls, surveys, audits) hand the ledger *contributions*; a late event that changes an
item's outcome retracts the old contribution and adds the new one (sign -1/+1), so the ledger always
equals the sorted-input result. Uptime time accounting lives in `monitor.uptime`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from typing import NamedTuple

from monitor.contracts import Rolling
from monitor.periods import PeriodWindow, period_of
from monitor.sketch import LogSketch

US_PER_UNIT = 1_000_000  # `Tally.total_us` counts millionths of a measured unit (µs of a wait, millionths of a score)


def to_millionths(value: float) -> int:
    """A contribution's measured value (seconds or a score) as whole millionths: a wait of `w_us / 1e6` s gives
    back `w_us` exactly."""
    return round(value * US_PER_UNIT)


@dataclass(slots=True)
class Tally:
    """Counts of one SLA over some span. `total_us` sums the measured value (seconds or scores) in millionths: an
    integer, so a sum is the same in any order, merged from any split, and a retraction undoes its addition exactly
    (float seconds drifted in the last bits with the order of additions and retractions)."""

    decided: float = 0
    good: float = 0
    bad: float = 0
    total_us: int = 0

    def add(self, decided: float, good: float, bad: float, total_us: int, sign: int = 1) -> None:
        self.decided += sign * decided
        self.good += sign * good
        self.bad += sign * bad
        if total_us:
            self.total_us += sign * total_us

    def merge(self, other: Tally) -> None:
        self.add(other.decided, other.good, other.bad, other.total_us)

    @property
    def total(self) -> float:
        """The measured sum in its unit (seconds or score points)."""
        return self.total_us / US_PER_UNIT

    @property
    def empty(self) -> bool:
        return not (self.decided or self.good or self.bad or self.total_us)


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


class Counts(NamedTuple):
    """The item counts of a window (`SlaLedger.window_counts`): whole numbers, so sums in any order are exact."""

    decided: float
    good: float
    bad: float


BUCKET_US = 15 * 60 * 1_000_000  # every UTC offset in use is a multiple of 15 minutes: a bucket lies in one local day
DAY_US = 86_400_000_000
PERIOD_GRACE_US = 2 * DAY_US  # an ended period's listings stay this long (month-end reports, late corrections)
_NEVER = 1 << 62  # `counts_stale_from` when every cumulative count is valid


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
    # Windows: 15-minute buckets of decisions (kept), and inside each bucket the exact decision instants (kept
    # for the recent buckets only, see `prune`). Full buckets answer the inside of a window, instants its edges.
    buckets: dict[int, Tally] = field(default_factory=dict)  # at_us // BUCKET_US -> tally
    instants: dict[int, dict[int, Tally]] = field(default_factory=dict)  # bucket -> at_us -> tally
    breaches: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # period -> (at, item)
    # Changed since the checkpoint writer last looked (streams.state_records): buckets, period labels
    dirty_buckets: set[int] = field(default_factory=set, repr=False, compare=False)
    dirty_labels: set[str] = field(default_factory=set, repr=False, compare=False)
    dirty_breach_days: set[int] = field(default_factory=set, repr=False, compare=False)  # UTC days (at // DAY_US)
    # `window_counts`: the bucket ids in order (None: to be sorted again) and the cumulative counts of the first
    # k of them (k = 0..), valid for the buckets before `counts_stale_from` (the first bucket changed since).
    count_keys: list[int] | None = field(default=None, repr=False, compare=False)
    count_sums: list[tuple[float, float, float]] = field(default_factory=list, repr=False, compare=False)
    counts_stale_from: int = field(default=-1, repr=False, compare=False)

    def apply(self, c: Contribution, sign: int) -> None:
        label = self._label(c.at_us)
        d, g, b, t = c.decided, c.good, c.bad, (to_millionths(c.total) if c.total else 0)
        tally = self.periods.get(label) or self._tally(self.periods, label)
        tally.add(d, g, b, t, sign)
        at = c.at_us
        bucket = at // BUCKET_US
        tally = self.buckets.get(bucket) or self._new_bucket(bucket)
        tally.add(d, g, b, t, sign)
        if bucket < self.counts_stale_from:
            self.counts_stale_from = bucket
        detail = self.instants.get(bucket)
        if detail is None:
            detail = self.instants[bucket] = {}
        tally = detail.get(at) or self._tally(detail, at)
        tally.add(d, g, b, t, sign)
        self.dirty_buckets.add(bucket)
        self.dirty_labels.add(label)
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

    def _new_bucket(self, bucket: int) -> Tally:
        tally = self.buckets[bucket] = Tally()
        if self.count_keys is not None:
            insort(self.count_keys, bucket)  # nearly always the last one
        return tally

    @staticmethod
    def _tally(table: dict, key) -> Tally:
        tally = table.get(key)
        if tally is None:
            tally = table[key] = Tally()
        return tally

    def _note_breach(self, label: str, at_us: int, item: str, sign: int) -> None:
        listed = self.breaches.setdefault(label, [])
        self.dirty_breach_days.add(at_us // DAY_US)
        if sign > 0:
            listed.append((at_us, item))
        elif (at_us, item) in listed:  # else its period's listing was forgotten (`forget_old_periods`): a worker's
            listed.remove((at_us, item))  # clock ran days past a silent client whose backlog then withdrew it

    def _forget_buckets_before(self, limit_us: int) -> None:
        old = [bucket for bucket in self.buckets if (bucket + 1) * BUCKET_US <= limit_us]
        for bucket in old:
            del self.buckets[bucket]
            self.instants.pop(bucket, None)
        self.dirty_buckets.update(old)
        if old:
            self.count_keys = None

    def breaches_on(self, day: int) -> list[tuple[int, str]]:
        """The breached items decided on one UTC day (`at_us // DAY_US`), whatever period lists them."""
        lo, hi = day * DAY_US, (day + 1) * DAY_US
        return sorted(pair for label in self._labels_between(lo, hi) for pair in self.breaches.get(label, ())
                      if lo <= pair[0] < hi)

    def _labels_between(self, lo: int, hi: int) -> set[str]:
        if isinstance(self.period, Rolling):
            return {"rolling"}
        return {label for label, w in self.windows.items() if w.start_us < hi and lo < w.end_us}

    def window(self, start_us: int, end_us: int) -> Tally:
        """Sum of decisions with start <= at < end (exact): whole buckets inside, instants at the two edges.
        O(window / 15 min), not O(decisions): every scrape asks for several windows per SLA."""
        out = Tally()
        if end_us <= start_us:
            return out
        first, last = start_us // BUCKET_US, (end_us - 1) // BUCKET_US
        for bucket in range(first, last + 1):
            whole = bucket * BUCKET_US >= start_us and (bucket + 1) * BUCKET_US <= end_us
            if whole:
                tally = self.buckets.get(bucket)
                if tally is not None:
                    out.merge(tally)
                continue
            for tally in self._cut_bucket(bucket, start_us, end_us):
                out.merge(tally)
        return out

    def _cut_bucket(self, bucket: int, start_us: int, end_us: int) -> list[Tally]:
        """The instants' tallies of a bucket the window [start, end) cuts (refused once they were pruned)."""
        detail = self.instants.get(bucket)
        if detail is None and bucket in self.buckets:
            raise LookupError(f"{self.client}/{self.sla}: the window [{start_us}, {end_us}) cuts a 15-minute "
                              "bucket whose decision instants were pruned")
        return [tally for at, tally in (detail or {}).items() if start_us <= at < end_us]

    def window_counts(self, start_us: int, end_us: int) -> Counts:
        """`window(start, end)`'s decided, good and bad: the whole buckets inside from cumulative counts (two
        bisections instead of a sum per bucket), the instants at the two edges as `window` adds them. Counts
        are whole numbers, so the result is the same in any order; `window` also sums `total_us`, for the means
        that need it."""
        if end_us <= start_us:
            return Counts(0, 0, 0)
        first, last = start_us // BUCKET_US, (end_us - 1) // BUCKET_US
        lo = first if first * BUCKET_US >= start_us else first + 1  # whole buckets: lo..hi
        hi = last if (last + 1) * BUCKET_US <= end_us else last - 1
        decided = good = bad = 0
        if lo <= hi:
            keys, sums = self._count_prefix()
            i, j = bisect_left(keys, lo), bisect_right(keys, hi)
            (d0, g0, b0), (d1, g1, b1) = sums[i], sums[j]
            decided, good, bad = d1 - d0, g1 - g0, b1 - b0
        for bucket in {first, last}:
            if lo <= bucket <= hi:
                continue  # whole: counted above
            for tally in self._cut_bucket(bucket, start_us, end_us):
                decided += tally.decided
                good += tally.good
                bad += tally.bad
        return Counts(decided, good, bad)

    def _count_prefix(self) -> tuple[list[int], list[tuple[float, float, float]]]:
        keys, sums = self.count_keys, self.count_sums
        if keys is None or len(keys) != len(self.buckets):  # first use, buckets dropped, merged or restored
            keys = self.count_keys = sorted(self.buckets)
            self.counts_stale_from = -1
        if self.counts_stale_from != _NEVER:
            cut = bisect_left(keys, self.counts_stale_from)
            del sums[cut + 1:]
            if not sums:
                sums.append((0, 0, 0))
            d, g, b = sums[-1]
            for bucket in keys[cut:]:
                tally = self.buckets[bucket]
                d, g, b = d + tally.decided, g + tally.good, b + tally.bad
                sums.append((d, g, b))
            self.counts_stale_from = _NEVER
        return keys, sums

    @property
    def detail_keep_us(self) -> int | None:
        """How far back from the newest decision the exact instants must stay: the longest window asked for
        at "now" (24 h burn rates and metrics windows, a rolling period) plus a day for clocks that lag. None:
        keep them all (a rolling length that is not whole buckets asks for cut buckets at any instant)."""
        if isinstance(self.period, Rolling):
            if self.period.rolling % BUCKET_US:
                return None
            return self.period.rolling + 2 * DAY_US
        return 2 * DAY_US

    def prune(self, now_us: int) -> int:
        """Drop the exact instants of buckets older than `detail_keep_us` before `now_us` (their bucket tallies
        stay: month-end trends and daily misses need only whole buckets). Returns how many buckets."""
        keep = self.detail_keep_us
        if keep is None:
            return 0
        limit = (now_us - keep) // BUCKET_US
        old = [bucket for bucket in self.instants if bucket < limit]
        for bucket in old:
            del self.instants[bucket]
        self.dirty_buckets.update(old)
        return len(old)

    def forget_old_periods(self, now_us: int) -> None:
        """A worker's memory stays flat: drop the breached-item lists and the 15-minute buckets of periods that
        ended more than `PERIOD_GRACE_US` ago (their tallies stay: the report still lists them; older listings
        belong to the SLA record). A rolling period keeps its length plus a day."""
        if isinstance(self.period, Rolling):
            listed = self.breaches.get("rolling")
            limit = now_us - self.period.rolling - DAY_US
            self._forget_buckets_before(limit)
            if listed and min(at for at, _ in listed) < limit:
                self.dirty_breach_days.update(at // DAY_US for at, _ in listed if at < limit)
                self.breaches["rolling"] = [(at, item) for at, item in listed if at >= limit]
            return
        old = [(w.end_us, label) for label, w in self.windows.items() if w.end_us <= now_us - PERIOD_GRACE_US]
        if old:
            self._forget_buckets_before(max(old)[0])
        for _, label in old:
            listed = self.breaches.pop(label, None)
            if listed:
                self.dirty_breach_days.update(at // DAY_US for at, _ in listed)

    def merge(self, other: SlaLedger) -> None:
        for name in ("periods", "by_priority", "buckets"):
            mine = getattr(self, name)
            for key, tally in getattr(other, name).items():
                self._tally(mine, key).merge(tally)
        self.count_keys = None
        for bucket, detail in other.instants.items():
            mine = self.instants.setdefault(bucket, {})
            for at, tally in detail.items():
                self._tally(mine, at).merge(tally)
        self.windows.update(other.windows)
        for label, sketch in other.sketches.items():
            self.sketches.setdefault(label, LogSketch()).merge(sketch)
        for label, listed in other.breaches.items():
            self.breaches.setdefault(label, []).extend(listed)
