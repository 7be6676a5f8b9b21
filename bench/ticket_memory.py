"""Bytes per restored open ticket (tracemalloc), this tree or another checkout side by side.

    python bench/ticket_memory.py [--tickets 200000] [--span-hours 168] [--against OLD_TREE]

Builds N `created` tickets of bench/longrun.py's "running" contracts over the last --span-hours (168: every ticket
compacted; 1: each still holds its event), checkpoints them, and measures what `restore_partition` allocates and
keeps, per ticket, in a fresh child per tree (the tree first on sys.path). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import gc, json, sys, tracemalloc
tree, n, span_h = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
sys.path[:0] = [tree, tree + "/bench"]
import orjson
from longrun import OPEN_CONTRACTS, OPEN_END_US
from monitor.contracts import parse_contracts
from monitor.events import format_us
from streams.partition_engine import PartitionEngine
from streams.state_records import changed_records, restore_partition
contracts = parse_contracts(OPEN_CONTRACTS)
span = round(span_h * 3_600_000_000)
pe = PartitionEngine(0, contracts, num_partitions=None)
for i in range(n):
    t = f"acme-T{i:07d}"
    pe.process(orjson.dumps({"event_id": f"{t}-1", "kind": "ticket", "client": "acme",
                             "ts": format_us(OPEN_END_US - span + i * (span // n)), "ticket_id": t,
                             "type": "created", "priority": f"P{i % 4 + 1}", "channel": "email"}), i, b"acme")
pe.advance(OPEN_END_US)
store = {k: v for k, v in changed_records(pe) if v is not None}
del pe
gc.collect()
tracemalloc.start()
before = tracemalloc.get_traced_memory()[0]
restored = restore_partition(0, contracts, store)
gc.collect()
print(json.dumps({"bytes_per_ticket": round((tracemalloc.get_traced_memory()[0] - before) / n),
                  "tickets": len(restored.engine.tickets)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickets", type=int, default=200_000)
    ap.add_argument("--span-hours", type=float, default=168.0)
    ap.add_argument("--against", help="another checkout of this repository, measured the same way")
    args = ap.parse_args()
    trees = {"this": str(ROOT), **({"against": str(Path(args.against).resolve())} if args.against else {})}
    out = {"tickets": args.tickets, "span_hours": args.span_hours}
    for name, tree in trees.items():
        done = subprocess.run([sys.executable, "-c", CHILD, tree, str(args.tickets), str(args.span_hours)],
                              cwd=tree, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{tree}:\n{done.stderr[-2000:]}")
        out[name] = {"tree": tree, **json.loads(done.stdout.strip().splitlines()[-1])}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
