"""A mergeable, *retractable* quantile sketch with relative-error guarantees (the DDSketch mapping).

Why not the `ddsketch` package: late events make the engine withdraw a decision it already counted
(spec: out-of-order input must give the sorted result), and `ddsketch` only accepts positive weights.
The logarithmic bucket mapping is the same (Masson et al., VLDB 2019): every value x > 0 falls in bucket
ceil(log_gamma(x)) with gamma = (1 + a) / (1 - a), so any quantile is within relative error `a`.
Buckets are plain counts, so merging is addition and retracting is subtraction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

RELATIVE_ACCURACY = 0.01
_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
_MIN_VALUE = 1e-6  # values below (including 0 s waits) share the zero bucket


@dataclass(slots=True)
class LogSketch:
    buckets: dict[int, int] = field(default_factory=dict)
    zeros: int = 0
    count: int = 0

    def add(self, value: float, weight: int = 1) -> None:
        """Add (weight > 0) or retract (weight < 0) one observation."""
        self.count += weight
        if value <= _MIN_VALUE:
            self.zeros += weight
            return
        key = math.ceil(math.log(value) / _LOG_GAMMA)
        n = self.buckets.get(key, 0) + weight
        if n:
            self.buckets[key] = n
        else:
            del self.buckets[key]

    def merge(self, other: LogSketch) -> None:
        self.count += other.count
        self.zeros += other.zeros
        for key, n in other.buckets.items():
            total = self.buckets.get(key, 0) + n
            if total:
                self.buckets[key] = total
            else:
                self.buckets.pop(key, None)

    def quantile(self, q: float) -> float | None:
        """Value at quantile q in [0, 1] within RELATIVE_ACCURACY; None when empty."""
        return self.quantiles((q,))[0]

    def quantiles(self, qs: tuple[float, ...]) -> list[float | None]:
        """`quantile` of each q, the buckets sorted once (a scrape asks p50, p90 and p99 of every sketch)."""
        if self.count <= 0:
            return [None] * len(qs)
        keys = sorted(self.buckets)
        return [self._at(keys, q) for q in qs]

    def _at(self, keys: list[int], q: float) -> float:
        rank = q * (self.count - 1)
        seen = self.zeros
        if rank < seen:
            return 0.0
        for key in keys:
            seen += self.buckets[key]
            if rank < seen:
                return 2 * _GAMMA**key / (_GAMMA + 1)
        return 2 * _GAMMA ** max(self.buckets) / (_GAMMA + 1)
