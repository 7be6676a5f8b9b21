"""The backtest's prefix-sum `UptimeLedger.between` (alerts.backtest.speedups) gives the engine's own figures:
random probe timelines (late and repeated probes, gaps, maintenance, folding) and random windows, compared
with the plain method on a twin ledger."""

from __future__ import annotations

import random

import pytest

from alerts.backtest.speedups import fast_uptime
from monitor.contracts import UptimeSla
from monitor.uptime import UptimeLedger

T0 = 1_793_581_200_000_000  # a bucket boundary
MIN = 60_000_000


def _ledger(maintenance) -> UptimeLedger:
    sla = UptimeSla(name="up", kind="uptime", target=0.99, service="portal", probe_interval="60s", period="month")
    return UptimeLedger("acme", sla, "UTC", list(maintenance))


@pytest.mark.parametrize("seed", range(6))
def test_prefix_sums_give_the_engines_figures(seed):
    rng = random.Random(seed)
    maintenance = [(T0 + 300 * MIN, T0 + 340 * MIN), (T0 + 900 * MIN, T0 + 901 * MIN)] if seed % 2 else []
    fast, plain = _ledger(maintenance), _ledger(maintenance)
    probes, ts = [], T0
    while ts < T0 + 2000 * MIN:
        probes.append((ts, rng.random() > 0.1))
        ts += rng.choice([MIN, MIN, MIN, 30_000_000, 5 * MIN])  # now and then a gap of more than 3 intervals
    checked = 0
    for n, (ts, up) in enumerate(probes):
        if rng.random() < 0.05 and n > 5:  # a late probe, or the same instant again
            ts = probes[n - rng.randint(1, 5)][0] + rng.choice([0, 7_000_000])
        plain.add_probe(ts, up)
        with fast_uptime():
            fast.add_probe(ts, up)
            if n % 97 == 0 and n:
                horizon = ts - 200 * MIN
                fast.fold(horizon)
                plain.fold(horizon)
            for _ in range(3):
                end = ts + rng.randint(0, 3 * MIN)
                start = end - rng.choice([5 * MIN, 60 * MIN, 180 * MIN, 2000 * MIN])
                if plain.folded_us is not None and start < plain.folded_us:
                    start = max(start, plain.folded_us)  # a window inside the folded range cuts buckets
                assert fast.between(start, end).as_tuple() == plain.between(start, end).as_tuple(), (n, start, end)
                checked += 1
    assert checked > 1000
    assert UptimeLedger.between.__name__ == "between"  # restored after the context
