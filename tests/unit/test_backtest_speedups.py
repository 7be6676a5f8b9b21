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


def test_kept_stages_give_the_engines_open_clocks():
    """Replay 14 hours (business-hours and 24x7 clocks, priorities, pauses) and ask both at every 7 minutes."""
    from datetime import datetime

    import orjson

    from alerts.backtest.speedups import _open_clocks, fast_open_clocks
    from monitor.contracts import load_contracts
    from monitor.events import to_us
    from monitor.queries import open_clocks
    from monitor.simulation.generator import HOUR_US, GeneratorConfig, generate
    from streams.partition_engine import PartitionEngine

    contracts = load_contracts("examples/contracts.yaml")
    events = generate(contracts, GeneratorConfig(start_us=T0, duration_us=14 * HOUR_US, seed=7))
    lines = [orjson.dumps(e) for e in events]
    pe = PartitionEngine(0, contracts)
    step, at, compared = 7 * MIN, None, 0

    def as_dict(result):
        return {
            k: (v.count, dict(v.by_priority), dict(v.stages), dict(v.due), v.next_deadline_us)
            for k, v in result.items()
        }

    with fast_open_clocks():
        for offset, line in enumerate(lines):
            ts = orjson.loads(line).get("ts")
            from datetime import datetime

            from monitor.events import to_us

            t = to_us(datetime.fromisoformat(ts.replace("Z", "+00:00")))
            at = at if at is not None else (t // step + 1) * step
            while t > at:
                pe.advance(at)
                spans = (30 * MIN, 2 * HOUR_US)
                assert as_dict(_open_clocks(pe.engine, at, spans)) == as_dict(open_clocks(pe.engine, at, spans))
                compared += 1
                at += step
            pe.process(line, offset)
    assert compared > 100
