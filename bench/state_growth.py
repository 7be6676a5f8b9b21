"""How the engine's state and its read costs grow with history, in one process (no Kafka).

    python bench/state_growth.py [--events 1000000] [--breakdown]

Replays N generated events (bench_events.make_events, examples/contracts.yaml) into one Engine, compacts, then
prints JSON: replay events/s, the engine's RSS growth, the snapshot size, what is held (calls, tickets, open
tickets, exact ledger instants, 15-minute buckets), one `build_report` and one `/metrics` collection
(`EngineCollector.collect`, what the forked scrape child computes). With --breakdown, tracemalloc attributes the
engine's memory to calls, ledger instants, tickets and dedupe ids by dropping them one after the other (slow).

`snapshot_mb` is the size of all the engine's state records (`monitor.engine_state.snapshot`: every record of
`all_records` plus the dedupe ids, in one value), uncompressed MessagePack: about what a full checkpoint writes to
the snapshots topic (the checkpoint producer does not compress). Versions before the MessagePack records reported
a zlib-compressed pickle here, so the two are not comparable.

To compare two versions side by side, run the script from each checkout one after the other.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_events import make_events  # noqa: E402

from monitor.contracts import load_contracts  # noqa: E402
from monitor.engine import Changes, Engine  # noqa: E402
from monitor.engine_state import snapshot  # noqa: E402
from monitor.events import decode_event  # noqa: E402
from monitor.report import build_report  # noqa: E402


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


def _held(engine: Engine) -> dict:
    return {
        "calls": len(engine.calls), "tickets": len(engine.tickets), "open_tickets": len(engine.open_tickets),
        "instants": sum(len(d) for lg in engine.ledgers.values() for d in lg.instants.values()),
        "buckets": sum(len(lg.buckets) for lg in engine.ledgers.values()),
    }


def _breakdown(engine: Engine) -> dict:
    import tracemalloc

    def current() -> float:
        gc.collect()
        return tracemalloc.get_traced_memory()[0] / 1e6

    out, before = {}, current()
    for name, drop in (("calls", engine.calls.clear),
                       ("ledger_instants", lambda: [lg.instants.clear() for lg in engine.ledgers.values()]),
                       ("tickets", engine.tickets.clear), ("dedupe_ids", engine.seen.clear)):
        drop()
        now = current()
        out[name + "_mb"], before = round(before - now, 1), now
    out["rest_mb"] = round(before, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--contracts", default=str(ROOT / "examples" / "contracts.yaml"))
    ap.add_argument("--breakdown", action="store_true", help="memory by component (tracemalloc; slow)")
    args = ap.parse_args()
    contracts = load_contracts(args.contracts)
    lines = make_events(contracts, args.events)
    if args.breakdown:
        import tracemalloc

        tracemalloc.start()
    gc.collect()
    rss0 = _rss_mb()
    engine = Engine(contracts)
    started = time.perf_counter()
    for line in lines:
        engine.ingest(decode_event(line, contracts.clients))
    replay_s = time.perf_counter() - started
    engine.compact()
    gc.collect()
    out = {"events": len(lines), "replay_events_per_s": round(len(lines) / replay_s),
           "engine_rss_mb": round(_rss_mb() - rss0), "snapshot_mb": round(len(snapshot(engine)) / 1e6, 2),
           **_held(engine)}
    t = time.perf_counter()
    build_report(engine, engine.now_us)
    out["build_report_s"] = round(time.perf_counter() - t, 2)

    from streams.metrics import EngineCollector
    from streams.partition_engine import PartitionEngine

    # the replay above uses a plain Engine (figures comparable with earlier versions); a partition's holder wants
    # one that tracks changes for its checkpoints: give it an empty tracker (the collector only reads)
    engine.changes = Changes()
    holder = PartitionEngine(0, contracts, engine=engine)
    collector = EngineCollector(lambda: [holder], clock=lambda pe: engine.now_us)
    t = time.perf_counter()
    list(collector.collect())
    out["metrics_collect_s"] = round(time.perf_counter() - t, 2)
    if args.breakdown:
        out["memory_by_component"] = _breakdown(engine)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
