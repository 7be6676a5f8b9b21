"""Replay throughput: events per second through decode + engine + report, on one core.

    python bench/replay.py [--events 1000000] [--contracts examples/contracts.yaml] [--repeat 3]

Generates the events once (not timed), then times, side by side in one run: decoding only, and the full
replay (decode + engine + report). Prints JSON; medians over --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

from bench_events import make_events

from monitor.contracts import load_contracts
from monitor.events import decode_event
from monitor.gc_tuning import tune_gc
from monitor.replay import replay_lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--contracts", default="examples/contracts.yaml")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    contracts = load_contracts(args.contracts)
    lines = make_events(contracts, args.events)
    tune_gc()
    decode_s, replay_s = [], []
    result = None
    for _ in range(args.repeat):
        t = time.perf_counter()
        for line in lines:
            decode_event(line, contracts.clients)
        decode_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        result = replay_lines(lines, contracts)
        replay_s.append(time.perf_counter() - t)
    n = len(lines)
    d, r = statistics.median(decode_s), statistics.median(replay_s)
    print(json.dumps({
        "events": n, "repeat": args.repeat,
        "decode_only_events_per_s": round(n / d), "replay_events_per_s": round(n / r),
        "replay_over_decode_time": round(r / d, 2),
        "records": len(result.records), "accepted": result.accepted, "duplicates": result.duplicates,
        "rejected": dict(result.rejected),
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
    }, indent=2))


if __name__ == "__main__":
    main()
