"""The generated event set both benchmarks use, so their figures are comparable."""

from __future__ import annotations

import orjson

from monitor.simulation.generator import GeneratorConfig, generate

HOUR_US = 3_600_000_000


def make_events(contracts, n: int, end_us: int | None = None) -> list[bytes]:
    """n generated events (duplicates 1 %, disorder 60 s); ending near end_us when given."""
    hours = 24 * 60  # lazily generated: only as much as n needs is produced
    if end_us is not None:  # the traffic should end near end_us: about 10k events an hour at these rates
        hours = max(1, n // 9_000 + 1)
    start = 1_793_574_000_000_000 if end_us is None else end_us - hours * HOUR_US
    cfg = GeneratorConfig(start_us=start, duration_us=hours * HOUR_US, seed=7, tickets_per_hour=400,
                          calls_per_hour=1200, disorder_us=60_000_000, duplicate_rate=0.01)
    lines = []
    for event in generate(contracts, cfg):
        lines.append(orjson.dumps(event))
        if len(lines) >= n:
            break
    return lines
