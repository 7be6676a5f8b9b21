"""Uptime from probes (spec section 3).

The state of a service holds from one probe until the next. A gap between consecutive probes longer than
3 x the expected probe interval is `unknown` as a whole (interpretation: the letter of the spec, "a gap
... is unknown time"); the same rule applies to the live tail from the last probe to now. Maintenance
windows are cut out first (neither up, down nor unknown). Availability = up / (up + down).

Recent probes are kept sorted by event time and every recent figure is computed from them at the report
instant, so the result never depends on arrival order. Older segments (probe to next probe, both known and
before the compaction horizon, see `fold`) are folded into 15-minute bucket tallies: a segment's
classification needs only its two ends, so the tallies are exact, and every window the reports ask for is
either whole buckets (periods start on bucket boundaries in every timezone) or recent (now-based windows).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field

from monitor.contracts import Rolling, UptimeSla
from monitor.ledger import BUCKET_US, DAY_US

UNKNOWN_GAP_FACTOR = 3
KEEP_MARGIN_US = 2 * DAY_US  # the longest now-based window (24 h burn rate, 1-day recent) plus a day of clock lag


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

    def as_tuple(self) -> tuple[int, int, int]:
        return self.up_us, self.down_us, self.unknown_us


@dataclass(slots=True)
class UptimeLedger:
    """One uptime SLA: the probe timeline of its service, folded into bucket tallies before `folded_us`."""

    client: str
    sla: UptimeSla
    tz: str
    maintenance: list[tuple[int, int]]
    times: list[int] = field(default_factory=list)  # sorted probe instants from `folded_us` on
    states: dict[int, bool] = field(default_factory=dict)  # instant -> up
    # Time in [first_us, folded_us) is in `buckets` (a bucket may hold only its part before folded_us). The probe
    # at folded_us stays in `times` (times[0]): it starts the first unfolded segment. None: nothing folded.
    buckets: dict[int, UptimeTally] = field(default_factory=dict)  # ts // BUCKET_US -> folded time
    folded_us: int | None = None
    first_us: int | None = None  # the first probe ever, once folding dropped it (before that it is times[0])
    # For incremental checkpoints; the checkpoint writer clears them.
    dirty_buckets: set[int] = field(default_factory=set)
    probes_dirty: bool = False
    dirty_probe_buckets: set[int] = field(default_factory=set)  # 15-minute buckets whose kept probes changed
    # `between`: cumulative up/down/unknown time of the whole segments times[0..j) (j = 0..), kept while probes
    # arrive in order (a probe after the last one adds a segment); None after anything else changed `times`.
    segment_sums: tuple[array, array, array] | None = field(default=None, repr=False, compare=False)
    # the same over the folded buckets (their ids sorted, then cumulative up/down/unknown); None after a fold
    bucket_sums: tuple[list[int], array, array, array] | None = field(default=None, repr=False, compare=False)

    @property
    def first_probe_us(self) -> int | None:
        if self.first_us is not None:
            return self.first_us
        return self.times[0] if self.times else None

    @property
    def detail_keep_us(self) -> int | None:
        """How far back from now the exact probes must stay (compaction folds no segment ending later than
        now minus this): the longest window asked for at "now" plus a margin. None: never fold (kept in line
        with `SlaLedger.detail_keep_us` for rolling lengths that are not whole buckets)."""
        period = self.sla.period
        if isinstance(period, Rolling):
            if period.rolling % BUCKET_US:
                return None
            return period.rolling + KEEP_MARGIN_US
        return KEEP_MARGIN_US

    def add_probe(self, ts: int, up: bool) -> None:
        # A probe at folded_us itself only changes the state of the kept first probe, which no folded segment
        # depends on (a segment's class needs its start state and its length); one before it would split a
        # folded segment.
        if self.folded_us is not None and ts < self.folded_us:
            raise ValueError(f"{self.client}/{self.sla.name}: probe at {ts} falls in the folded range "
                             f"(before {self.folded_us}); the engine must reject it as late")
        if self.times and ts < self.times[-1]:
            self.segment_sums = None  # a segment split or its start probe changed (at the last probe: none)
        if ts not in self.states:  # the same instant twice: the later arrival wins
            insort(self.times, ts)
        self.states[ts] = up
        self.probes_dirty = True
        self.dirty_probe_buckets.add(ts // BUCKET_US)

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
            if start >= b:
                break
            lo, hi = max(start, cursor), min(end, b)
            if hi > lo:
                total += hi - lo
                cursor = hi
        return total

    def fold(self, before_us: int) -> int:
        """Fold every segment ending at or before `before_us` into the bucket tallies and drop its start probe.
        The caller guarantees no probe will arrive before the horizon any more. Returns how many probes went."""
        k = bisect_right(self.times, before_us) - 1  # the last probe at or before the horizon stays
        if k <= 0:
            return 0
        times = self.times
        if self.first_us is None:
            self.first_us = times[0]
        for i in range(k):
            seg_start, seg_end = times[i], times[i + 1]
            a, bucket = seg_start, seg_start // BUCKET_US
            while a < seg_end:
                b = min(seg_end, (bucket + 1) * BUCKET_US)
                piece = self.classify(seg_start, seg_end, a, b)
                if piece.up_us or piece.down_us or piece.unknown_us:  # no tally for buckets wholly in maintenance
                    tally = self.buckets.get(bucket)
                    if tally is None:
                        tally = self.buckets[bucket] = UptimeTally()
                    tally.add(piece)
                    self.dirty_buckets.add(bucket)
                a, bucket = b, bucket + 1
        dropped = times[:k]
        for ts in dropped:
            del self.states[ts]
        del times[:k]
        self.segment_sums = self.bucket_sums = None
        self.folded_us = times[0]
        self.probes_dirty = True
        self.dirty_probe_buckets.update(ts // BUCKET_US for ts in dropped)
        return k

    def between(self, start: int, end: int) -> UptimeTally:
        """Exact up/down/unknown time in [start, end), including the live tail up to `end`. In the folded range
        the window must take each bucket's folded time whole (LookupError otherwise)."""
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
        i = max(0, bisect_right(times, start) - 1)  # the segment holding `start` ...
        k = bisect_left(times, end) - 1  # ... through the last one starting before `end`
        if k - i < 3:
            for j in range(i, k + 1):
                self._piece(j, start, end, out)
            return out
        # The segments between the two ends are whole: their time from the cumulative sums (a scrape asks for
        # the period to date and every burn window at each step: O(1) each instead of O(probes)).
        self._piece(i, start, end, out)
        up, down, unknown = self._segment_sums()
        out.up_us += up[k] - up[i + 1]
        out.down_us += down[k] - down[i + 1]
        out.unknown_us += unknown[k] - unknown[i + 1]
        self._piece(k, start, end, out)
        return out

    def between_by_segments(self, start: int, end: int) -> UptimeTally:
        """`between` adding every segment's and folded bucket's time one by one: the definition the sums are
        tested against."""
        out = UptimeTally()
        if end <= start or not self.times:
            return out
        folded = self.folded_us
        if folded is not None and start < folded:
            self._folded_by_buckets(max(start, self.first_us), min(end, folded), out)
            start = folded
            if end <= start:
                return out
        for j in range(max(0, bisect_right(self.times, start) - 1), bisect_left(self.times, end)):
            self._piece(j, start, end, out)
        return out

    def _piece(self, j: int, start: int, end: int, out: UptimeTally) -> None:
        """Add the part of segment j (from probe j to the next one, or to `end` for the last) in [start, end)."""
        times = self.times
        seg_start = times[j]
        seg_end = times[j + 1] if j + 1 < len(times) else end
        a, b = max(seg_start, start), min(seg_end, end)
        if b > a:
            out.add(self.classify(seg_start, max(seg_end, b), a, b))

    def _segment_sums(self) -> tuple[array, array, array]:
        sums = self.segment_sums
        times = self.times
        if sums is None or len(sums[0]) > len(times):
            sums = self.segment_sums = (array("q", [0]), array("q", [0]), array("q", [0]))
        up, down, unknown = sums
        for j in range(len(up) - 1, len(times) - 1):  # the whole segments added since
            t = self.classify(times[j], times[j + 1], times[j], times[j + 1])
            up.append(up[-1] + t.up_us)
            down.append(down[-1] + t.down_us)
            unknown.append(unknown[-1] + t.unknown_us)
        return sums

    def _folded_between(self, lo: int, hi: int, out: UptimeTally) -> None:
        """Add the folded time in [lo, hi), first_us <= lo, hi <= folded_us, to `out`: the buckets' cumulative
        sums (a month to date is ~3,000 buckets, asked at every scrape). Only the two edge buckets can be cut."""
        if hi <= lo:
            return
        first, last = lo // BUCKET_US, (hi - 1) // BUCKET_US
        for bucket in {first, last}:
            if bucket in self.buckets:  # nothing folded here but maintenance: any part of it is zero
                self._refuse_cut(bucket, lo, hi)
        keys, up, down, unknown = self._bucket_sums()
        i, j = bisect_left(keys, first), bisect_right(keys, last)
        out.up_us += up[j] - up[i]
        out.down_us += down[j] - down[i]
        out.unknown_us += unknown[j] - unknown[i]

    def _folded_by_buckets(self, lo: int, hi: int, out: UptimeTally) -> None:
        """`_folded_between` adding bucket by bucket (for `between_by_segments`)."""
        for bucket in range(lo // BUCKET_US, (hi - 1) // BUCKET_US + 1) if hi > lo else ():
            tally = self.buckets.get(bucket)
            if tally is None:
                continue
            self._refuse_cut(bucket, lo, hi)
            out.add(tally)

    def _refuse_cut(self, bucket: int, lo: int, hi: int) -> None:
        """A folded bucket is whole or nothing: [lo, hi) may not cut its folded time, which lies in
        [max(bucket start, first_us), min(bucket end, folded_us))."""
        b_start, b_end = bucket * BUCKET_US, (bucket + 1) * BUCKET_US
        if lo > max(b_start, self.first_us) or hi < min(b_end, self.folded_us):
            raise LookupError(f"{self.client}/{self.sla.name}: the window cuts a 15-minute bucket at "
                              f"{b_start} whose probes were folded (before {self.folded_us})")

    def _bucket_sums(self) -> tuple[list[int], array, array, array]:
        sums = self.bucket_sums
        if sums is None:
            keys = sorted(self.buckets)
            up, down, unknown = array("q", [0]), array("q", [0]), array("q", [0])
            for bucket in keys:
                t = self.buckets[bucket]
                up.append(up[-1] + t.up_us)
                down.append(down[-1] + t.down_us)
                unknown.append(unknown[-1] + t.unknown_us)
            sums = self.bucket_sums = (keys, up, down, unknown)
        return sums

    def last_probe(self) -> tuple[int, bool] | None:
        if not self.times:
            return None
        return self.times[-1], self.states[self.times[-1]]

    # --- checkpoints and merging ------------------------------------------------------------------------

    def probes(self) -> list[tuple[int, bool]]:
        """The kept probes, oldest first (times[0] is the start of the first unfolded segment)."""
        return [(ts, self.states[ts]) for ts in self.times]

    def restore_state(self, first_us: int | None, probes: list[tuple[int, bool]],
                      buckets: dict[int, tuple[int, int, int]]) -> None:
        """Replace the state with a checkpointed one: `first_us` is `first_probe_us`, `probes` is `probes()`,
        `buckets` maps bucket ids to `UptimeTally.as_tuple()`. Something was folded iff the first probe ever
        is older than the oldest kept one (folding always drops at least one probe)."""
        self.times = [ts for ts, _ in probes]
        self.states = dict(probes)
        self.buckets = {bucket: UptimeTally(*tally) for bucket, tally in buckets.items()}
        folded = bool(probes) and first_us is not None and first_us < probes[0][0]
        if buckets and not folded:
            raise ValueError(f"{self.client}/{self.sla.name}: folded buckets without a folded range")
        self.first_us = first_us if folded else None
        self.folded_us = probes[0][0] if folded else None
        self.dirty_buckets = set()
        self.probes_dirty = False
        self.dirty_probe_buckets = set()
        self.segment_sums = self.bucket_sums = None

    def merge(self, other: UptimeLedger) -> None:
        """Absorb another ledger of the same SLA. Exact when at most one side has folded and the other side's
        probes all lie at or after its folded range (key-disjoint engine states: one side is empty)."""
        if not other.times:
            return
        if other.folded_us is None:
            if self.folded_us is not None and other.times[0] < self.folded_us:
                raise self._overlap_error()  # (add_probe would too, before changing anything: a clearer message)
            for ts in other.times:
                self.add_probe(ts, other.states[ts])
            return
        if self.folded_us is not None or (self.times and self.times[0] < other.folded_us):
            raise self._overlap_error()
        mine = self.probes()
        self.times, self.states = list(other.times), dict(other.states)
        self.segment_sums = self.bucket_sums = None
        self.buckets = {bucket: UptimeTally(*t.as_tuple()) for bucket, t in other.buckets.items()}
        self.folded_us, self.first_us = other.folded_us, other.first_us
        self.dirty_buckets.update(self.buckets)
        self.probes_dirty = True
        self.dirty_probe_buckets.update(ts // BUCKET_US for ts in self.times)
        for ts, up in mine:
            if ts not in self.states:  # the same instant on both sides: the other side's probe wins, as above
                self.add_probe(ts, up)

    def _overlap_error(self) -> ValueError:
        return ValueError(f"{self.client}/{self.sla.name}: cannot merge uptime ledgers when probes of one fall "
                          "in the folded range of the other")
