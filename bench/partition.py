"""One worker partition in-process, no Kafka: the Python engine against the compiled one, side by side.

    python bench/partition.py [--events 200000] [--repeat 3] [--memory-tickets 200000]

Speed: the generated events (bench/bench_events.py) applied to a `streams.partition_engine.PartitionEngine` as a
worker applies them, outputs taken every 500 events, CPU seconds, in alternation per round: the Python engine
(`process` per event), the compiled engine with one call per event (`process`) and per run of 500 fetched records
(`process_records`, what the worker does). Medians of the rounds and of the per-round ratios.

Memory (--memory-tickets N): N `created` events of bench/metrics_collection.py's backlog scenario, a fresh child per
engine; RSS growth after applying them and one checkpoint (which drains the change marks), then after the first
scrape's `settle_counters` (a compiled partition makes the copy its scrapes read there). Prints JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]


class Record(NamedTuple):  # what the worker's fast path reads of an aiokafka ConsumerRecord
    offset: int
    key: bytes | None
    value: bytes | None


def _speed(lines: list[bytes], contracts, variant: str) -> float:
    from streams.partition_engine import PartitionEngine

    pe = PartitionEngine(1, contracts, num_partitions=4, compiled=variant != "python")
    records = [Record(i, b"k", v) for i, v in enumerate(lines)] if variant == "compiled_runs" else None
    started = time.process_time()
    for start in range(0, len(lines), 500):
        if records is not None:
            pe.process_records(records[start:start + 500], 0)
        else:
            for i in range(start, min(start + 500, len(lines))):
                pe.process(lines[i], i)
        pe.take_unsent()
        pe.outbox.clear()
    return len(lines) / (time.process_time() - started)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def memory_child(n: int, compiled: bool) -> dict:
    from metrics_collection import END_US, SPAN_US, _lines

    from monitor.contracts import load_contracts
    from monitor.gc_tuning import tune_gc
    from streams.metrics import settle_counters
    from streams.partition_engine import PartitionEngine
    from streams.state_records import changed_records

    tune_gc()
    contracts = load_contracts(ROOT / "examples" / "contracts.yaml")
    lines = list(_lines(contracts, n, END_US - SPAN_US, SPAN_US // n, "T"))
    gc.collect()
    base = _rss_mb()
    pe = PartitionEngine(0, contracts, compiled=compiled)
    for i, line in enumerate(lines):
        pe.process(line, i)
        if i % 1000 == 0:
            pe.take_unsent()
            pe.outbox.clear()
    pe.take_unsent()
    pe.outbox.clear()
    changed_records(pe)
    gc.collect()
    state = _rss_mb() - base
    settle_counters(pe)
    gc.collect()
    return {"open": pe.held()[1], "state_mb": round(state), "after_first_scrape_mb": round(_rss_mb() - base)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--memory-tickets", type=int, default=0)
    ap.add_argument("--memory-child", choices=("python", "compiled"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_tickets, args.memory_child == "compiled")))
        return
    from bench_events import make_events

    from monitor.contracts import load_contracts
    from monitor.gc_tuning import tune_gc

    tune_gc()
    contracts = load_contracts(ROOT / "examples" / "contracts.yaml")
    lines = make_events(contracts, args.events)
    variants = ("python", "compiled", "compiled_runs")
    rounds = [{v: _speed(lines, contracts, v) for v in variants} for _ in range(args.repeat)]
    out: dict = {"events": len(lines), "rounds": [{v: round(r[v]) for v in variants} for r in rounds]}
    out["events_per_cpu_s"] = {v: round(statistics.median(r[v] for r in rounds)) for v in variants}
    out["over_python"] = {v: round(statistics.median(r[v] / r["python"] for r in rounds), 2) for v in variants[1:]}
    if args.memory_tickets:
        out["memory"] = {side: json.loads(subprocess.run(
            [sys.executable, __file__, "--memory-tickets", str(args.memory_tickets), "--memory-child", side],
            capture_output=True, text=True, check=True).stdout) for side in ("python", "compiled")}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
