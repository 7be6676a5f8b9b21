"""`slamon backtest` wall time per phase over a long history of the example contracts' traffic.

    python bench/backtest.py [--days 30] [--seed 9] [--contracts examples/contracts.yaml] [--jobs 2]
                             [--method inline|backfill] [--events FILE] [--keep DIR] [--progress]

Generates the traffic once (`slamon generate --hours 24*days --seed N`, not timed; or reads --events), then runs
the backtest as the CLI does (default alerting config) and prints JSON: the seconds of each phase (scrape,
promtool backfill, Prometheus start, alert range queries), the total, the history's size and the scores'
headline figures, and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from alerts.backtest.evaluation import run_backtest
from alerts.backtest.scoring import Settings
from alerts.config import load_alerting
from monitor.contracts import load_contracts
from monitor.events import to_us
from monitor.simulation.generator import HOUR_US, GeneratorConfig, generate

START = "2026-11-02T00:00:00+00:00"  # a Monday: the history starts with a week and a month boundary nearby


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=float, default=30)
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--contracts", default="examples/contracts.yaml")
    ap.add_argument("--events", help="a JSON Lines file instead of generated traffic")
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--method", choices=("inline", "backfill"), default="inline")
    ap.add_argument("--keep", help="keep the work directory here")
    ap.add_argument("--progress", action="store_true", help="progress bars on stderr")
    args = ap.parse_args()
    contracts = load_contracts(args.contracts)
    t = time.perf_counter()
    if args.events:
        lines = Path(args.events).read_bytes().splitlines()
    else:  # written to a file and read back, as `slamon generate > F; slamon backtest F` does
        start = to_us(datetime.fromisoformat(START).astimezone(UTC))
        cfg = GeneratorConfig(start_us=start, duration_us=round(args.days * 24 * HOUR_US), seed=args.seed)
        with tempfile.TemporaryFile() as spool:
            for e in generate(contracts, cfg):
                spool.write(orjson.dumps(e) + b"\n")
            spool.seek(0)
            lines = spool.read().splitlines()  # the lines the CLI reads (its scrape processes fork from here)
    generate_s = time.perf_counter() - t
    t = time.perf_counter()
    result = run_backtest(
        lines,
        contracts,
        [("defaults", load_alerting(None))],
        Settings(),
        workdir=Path(args.keep) if args.keep else None,
        progress=args.progress,
        jobs=args.jobs,
        method=args.method,
    )
    total = time.perf_counter() - t
    h, s = result.history, result.configs[0].summary()
    print(
        json.dumps(
            {
                "days": args.days,
                "seed": args.seed,
                "events": h.events,
                "method": args.method,
                "jobs": args.jobs or min(2, os.cpu_count() or 1),
                "scrapes": h.scrapes,
                "samples": h.samples,
                "blocks": len(h.files),
                "seconds": {
                    "generate (not counted)": round(generate_s, 1),
                    **{k: round(v, 1) for k, v in result.timings.items()},
                    "total": round(total, 1),
                },
                "cpu_seconds": result.cpu | {"total": round(sum(result.cpu.values()), 1)},
                "scores": {
                    k: s[k]
                    for k in (
                        "alert_rules",
                        "breaches",
                        "detected",
                        "paged_before_loss",
                        "alert_episodes",
                        "true_positives",
                        "late",
                        "false_alarms",
                        "burn_episodes",
                    )
                }
                | {"episodes": len(result.configs[0].episodes), "items": s["items"]["items"] if s["items"] else 0},
                "machine": {
                    "python": platform.python_version(),
                    "cpu_count": os.cpu_count(),
                    "processor": platform.processor() or platform.machine(),
                    "load_average_1m_at_end": round(os.getloadavg()[0], 2),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
