"""`UptimeLedger.between` from the cumulative sums of whole probe segments gives what adding every segment
gives (`between_by_segments`): random probe timelines (late and repeated probes, gaps, maintenance, folding,
merges) and random windows."""

from __future__ import annotations

import random

import pytest

from monitor.contracts import UptimeSla
from monitor.ledger import BUCKET_US
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
    ledger = _ledger(maintenance)
    probes, ts = [], T0
    while ts < T0 + 2000 * MIN:
        probes.append((ts, rng.random() > 0.1))
        ts += rng.choice([MIN, MIN, MIN, 30_000_000, 5 * MIN])  # now and then a gap of more than 3 intervals
    checked = folded_checked = 0
    for n, (ts, up) in enumerate(probes):
        if rng.random() < 0.05 and n > 5:  # a late probe, or the same instant again
            ts = probes[n - rng.randint(1, 5)][0] + rng.choice([0, 7_000_000])
        ledger.add_probe(ts, up)
        if n % 97 == 0 and n:
            ledger.fold(ts - 200 * MIN)
        if n % 131 == 0 and n:  # a merge of another side's later probes
            other = _ledger(maintenance)
            other.add_probe(ts + rng.randint(1, 3) * 7_000_000, rng.random() > 0.5)
            ledger.merge(other)
        for _ in range(3):
            end = ts + rng.randint(0, 3 * MIN)
            start = end - rng.choice([5 * MIN, 60 * MIN, 180 * MIN, 2000 * MIN])
            if ledger.folded_us is not None and start < ledger.folded_us:
                start = max(start, ledger.folded_us)  # a window inside the folded range cuts buckets
            fast, plain = ledger.between(start, end), ledger.between_by_segments(start, end)
            assert fast.as_tuple() == plain.as_tuple(), (n, start, end)
            checked += 1
        if ledger.folded_us is not None:  # windows reaching into the folded range: whole buckets, or refused
            start = T0 + rng.randint(0, (ledger.folded_us - T0) // BUCKET_US) * BUCKET_US + rng.choice([0, 0, MIN])
            end = ts + rng.randint(0, 3 * MIN)
            try:
                plain = ledger.between_by_segments(start, end)
            except LookupError:
                with pytest.raises(LookupError):
                    ledger.between(start, end)
            else:
                assert ledger.between(start, end).as_tuple() == plain.as_tuple(), (n, start, end)
                folded_checked += 1
    assert checked > 1000 and folded_checked > 500
