"""What one incremental checkpoint writes and costs at a given load, in one process (no Kafka).

    python bench/checkpoint_size.py [--events 300000] [--every 5000] [--contracts examples/contracts.yaml]

Feeds bench_events traffic (400 tickets + 1,200 calls an hour per client, 1 % duplicates, 60 s disorder) into one
`PartitionEngine` and takes `streams.state_records.changed_records` every --every events (5,000 = a 5 s checkpoint
at 1k events/s; 25,000 = at 5k events/s), as the worker does in its event loop. Outputs count as confirmed. Prints
JSON: checkpoints, bytes (key + value) median / max, encoding ms median / max, and the mean bytes per
checkpoint by record kind after the first 100k events (t tickets, c calls, d dedupe ids, b ledger buckets, ...).
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_events import make_events  # noqa: E402

from monitor.contracts import load_contracts  # noqa: E402
from streams.partition_engine import PartitionEngine  # noqa: E402
from streams.state_records import changed_records  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--every", type=int, default=5_000, help="events per checkpoint")
    ap.add_argument("--contracts", default=str(ROOT / "examples" / "contracts.yaml"))
    args = ap.parse_args()
    contracts = load_contracts(args.contracts)
    pe = PartitionEngine(0, contracts)
    sizes, times, kinds, steady = [], [], collections.Counter(), 0
    for offset, value in enumerate(make_events(contracts, args.events)):
        pe.process(value, offset)
        if offset % 500 == 499:
            pe.advance(pe.engine.now_us)
            for out in pe.take_unsent():  # confirmed by the broker
                pe.outbox.remove(out)
        if offset % args.every == args.every - 1:
            started = time.perf_counter()
            records = changed_records(pe)
            times.append(time.perf_counter() - started)
            sizes.append(sum(len(k) + len(v or b"") for k, v in records))
            if offset >= 100_000:
                steady += 1
                for key, v in records:
                    kinds[key.split(b"/")[1].decode()] += len(key) + len(v or b"")
    print(json.dumps({
        "events": args.events, "every": args.every, "checkpoints": len(sizes),
        "bytes_median": statistics.median(sizes), "bytes_max": max(sizes),
        "ms_median": round(statistics.median(times) * 1000, 1), "ms_max": round(max(times) * 1000, 1),
        "mean_bytes_by_kind": {k: round(v / max(1, steady)) for k, v in kinds.most_common()},
    }))


if __name__ == "__main__":
    main()
