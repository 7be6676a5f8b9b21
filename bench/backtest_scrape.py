"""The backtest's scrape phase alone, all families against the families the rules read, side by side.

    python bench/backtest_scrape.py [--hours 48] [--seed 9] [--rounds 3]

Generates the example contracts' traffic (`--hours`, seed), then scrapes its history in one process
(`alerts.backtest.history.scrape_history`, jobs=1, 1-minute steps) twice per round: every exported family
(`families=None`) and only those the default alerting config's rules read (`evaluation.families_read`, what
`slamon backtest` writes). Prints JSON: CPU seconds per round and their medians, scrapes and samples.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from alerts.backtest.evaluation import families_read
from alerts.backtest.history import scrape_history
from alerts.backtest.scoring import Settings
from alerts.config import load_alerting
from alerts.rules import rule_files
from monitor.contracts import load_contracts
from monitor.events import to_us
from monitor.simulation.generator import HOUR_US, GeneratorConfig, generate

START = "2026-11-02T00:00:00+00:00"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=int, default=48)
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--contracts", default="examples/contracts.yaml")
    args = ap.parse_args()
    contracts = load_contracts(args.contracts)
    start = to_us(datetime.fromisoformat(START).astimezone(UTC))
    cfg = GeneratorConfig(start_us=start, duration_us=args.hours * HOUR_US, seed=args.seed)
    lines = b"".join(orjson.dumps(e) + b"\n" for e in generate(contracts, cfg)).splitlines()
    read = families_read([rule_files(contracts, load_alerting(None))])
    cpu: dict[str, list[float]] = {"all families": [], "families the rules read": []}
    counts: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as work:
        for _ in range(args.rounds):
            for label, families in (("all families", None), ("families the rules read", read)):
                t = time.process_time()
                h = scrape_history(lines, contracts, Path(work) / "h", Settings(), jobs=1, families=families)
                cpu[label].append(round(time.process_time() - t, 2))
                counts[label] = (h.scrapes, h.samples)
    medians = {k: statistics.median(v) for k, v in cpu.items()}
    print(json.dumps({
        "hours": args.hours, "seed": args.seed, "events": len(lines),
        "families_read_by_the_rules": len(read or ()),
        "cpu_seconds": cpu, "median_cpu_seconds": medians,
        "speedup": round(medians["all families"] / medians["families the rules read"], 2),
        "scrapes_and_samples": counts,
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
    }, indent=2))


if __name__ == "__main__":
    main()
