"""Replay throughput: events per second through decode + engine + report, on one core.

    python bench/replay.py [--events 1000000] [--contracts examples/contracts.yaml] [--repeat 3] [--jobs 2]

Generates the events once (not timed), then times, side by side in one run: decoding only, the full
replay (decode + engine + report) in one process, and with --jobs N the same replay split across N processes
by client (`slamon.jobs`). Prints JSON; medians over --repeat runs.
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
from slamon.jobs import replay as replay_in_jobs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--contracts", default="examples/contracts.yaml")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=0, help="also time the replay on this many processes")
    args = ap.parse_args()
    contracts = load_contracts(args.contracts)
    lines = make_events(contracts, args.events)
    tune_gc()
    decode_s, replay_s, jobs_s = [], [], []
    result = None
    for _ in range(args.repeat):
        t = time.perf_counter()
        for line in lines:
            decode_event(line, contracts.clients)
        decode_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        result = replay_lines(lines, contracts)
        replay_s.append(time.perf_counter() - t)
        if args.jobs > 1:
            t = time.perf_counter()
            split = replay_in_jobs(lines, contracts, jobs=args.jobs)
            jobs_s.append(time.perf_counter() - t)
            assert [r.as_dict() for r in split.records] == [r.as_dict() for r in result.records]
    n = len(lines)
    d, r = statistics.median(decode_s), statistics.median(replay_s)
    print(json.dumps({
        "events": n, "repeat": args.repeat,
        "decode_only_events_per_s": round(n / d), "replay_events_per_s": round(n / r),
        "replay_over_decode_time": round(r / d, 2),
        **({f"replay_jobs_{args.jobs}_events_per_s": round(n / statistics.median(jobs_s)),
            f"jobs_{args.jobs}_speedup_median_of_rounds": round(statistics.median(
                a / b for a, b in zip(replay_s, jobs_s, strict=True)), 2)} if jobs_s else {}),
        "records": len(result.records), "accepted": result.accepted, "duplicates": result.duplicates,
        "rejected": dict(result.rejected),
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
    }, indent=2))


if __name__ == "__main__":
    main()
