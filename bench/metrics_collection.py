"""One /metrics collection of a worker holding many open tickets, side by side with another checkout.

    python bench/metrics_collection.py --tickets 1000000 [--against OLD_TREE] [--rounds 3] [--scenario backlog]
                                       [--python-build]

Each run is a fresh child process that imports slamon from one tree (PYTHONPATH), builds a partition engine
(`streams.partition_engine.PartitionEngine`) holding N open tickets (`created` events spread over 7 days, never
resolved; the scenarios of bench/state_scale.py: `backlog` = the example contracts, most clocks breached by the
end; `running` = month-long targets, both clocks of every ticket running), then times what a worker does for a
scrape (`streams.app.SlamonApp.metrics_body`): `settle_counters` for the holder, then the exposition of its
`EngineCollector` (rendered inline, as the forked child would). Three figures per run:

  first   the first collection after the state was built (or restored): the new tree builds its open-clock
          index here;
  steady  the median of 5 collections, each after 200 new events (new tickets, later in time);
  index_mb  (new tree, --memory) what the open-clock index holds, by tracemalloc.

--python-build adds a third side: this tree with SLAMON_OPEN_CLOCKS=python (the index's first build in Python, the
reference of the compiled one). --compiled adds the partition on the compiled engine (`PartitionEngine(compiled=True)`,
what a worker runs where it was built): each collection hands its state over to a Python engine first.

Runs alternate between the trees (ABBA), medians reported, wall and CPU seconds (the machine is shared).
Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
END_US = 1_793_574_000_000_000  # 2026-11-01T23:00Z, as bench/state_scale.py
SPAN_US = 7 * 24 * 3_600_000_000
PRIORITIES = ("P1", "P2", "P3", "P4")
RUNNING = """
allowed_lateness: 1h
clients:
  acme:
    timezone: Europe/Berlin
    slas:
      - {name: fr, kind: first_response, time: calendar, target: {P1: 30d, P2: 30d, P3: 30d, P4: 30d},
         objective: 0.9, stages: [0.5, 0.8]}
      - {name: res, kind: resolution, time: calendar, target: {P1: 40d, P2: 40d, P3: 40d, P4: 40d}, objective: 0.9,
         pause_statuses: [waiting_on_customer]}
"""


def _lines(contracts, n: int, start_us: int, step_us: int, tag: str):
    import orjson

    from monitor.contracts import TicketSla
    from monitor.events import format_us

    clients = [name for name, c in contracts.clients.items() if any(isinstance(s, TicketSla) for s in c.slas)]
    for i in range(n):
        client = clients[i % len(clients)]
        ticket = f"{client}-{tag}{i:07d}"
        yield orjson.dumps({"event_id": f"{ticket}-1", "kind": "ticket", "client": client,
                            "ts": format_us(start_us + i * step_us), "ticket_id": ticket, "type": "created",
                            "priority": PRIORITIES[i % 4], "channel": "email"})


def child(args) -> dict:
    import gc

    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import generate_latest

    from monitor.contracts import load_contracts, parse_contracts
    from streams.metrics import EngineCollector, settle_counters
    from streams.partition_engine import PartitionEngine

    contracts = parse_contracts(RUNNING) if args.scenario == "running" else \
        load_contracts(ROOT / "examples" / "contracts.yaml")
    pe = PartitionEngine(0, contracts, **({"compiled": True} if args.compiled else {}))
    offset = 0
    for line in _lines(contracts, args.tickets, END_US - SPAN_US, SPAN_US // args.tickets, "T"):
        pe.process(line, offset)
        offset += 1
    (pe.native if args.compiled else pe.engine).compact()
    gc.collect()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(lambda: [pe]))

    def collect() -> tuple[float, float, int]:
        w, c = time.perf_counter(), time.process_time()
        settle_counters(pe)
        body = generate_latest(registry)
        return time.perf_counter() - w, time.process_time() - c, len(body)

    out: dict = {"tree": os.environ.get("PYTHONPATH", str(ROOT)),
                 "open": pe.held()[1] if hasattr(pe, "held") else len(pe.engine.open_tickets)}
    if args.memory:
        import tracemalloc

        from monitor.open_clock_index import index_of
        tracemalloc.start()
        index_of(pe.engine).refresh()
        out["index_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 1)
        tracemalloc.stop()
        return out
    out["first_wall"], out["first_cpu"], out["bytes"] = collect()
    steady = []
    for k in range(5):
        for line in _lines(contracts, 200, END_US + k * 60_000_000, 100_000, f"N{k}-"):
            pe.process(line, offset)
            offset += 1
        steady.append(collect())
    out["steady_wall"] = statistics.median(s[0] for s in steady)
    out["steady_cpu"] = statistics.median(s[1] for s in steady)
    return out


def run(tree: str, args, memory: bool = False, python_build: bool = False, compiled: bool = False) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--tickets", str(args.tickets),
           "--scenario", args.scenario] + (["--memory"] if memory else []) + (["--compiled"] if compiled else [])
    env = dict(os.environ, PYTHONPATH=tree) | ({"SLAMON_OPEN_CLOCKS": "python"} if python_build else {})
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tickets", type=int, default=200_000)
    ap.add_argument("--scenario", choices=("backlog", "running"), default="backlog")
    ap.add_argument("--against", metavar="OLD_TREE", help="another checkout, measured in alternation")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--python-build", action="store_true",
                    help="also this tree with the index's first build in Python (SLAMON_OPEN_CLOCKS=python)")
    ap.add_argument("--compiled", action="store_true",
                    help="also this tree with the partition on the compiled engine (what a worker runs where built)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    trees = {"new": str(ROOT)} | ({"old": str(Path(args.against).resolve())} if args.against else {}) | \
        ({"python_build": str(ROOT)} if args.python_build else {}) | ({"compiled": str(ROOT)} if args.compiled else {})
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    order = list(trees)
    for r in range(args.rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            runs[name].append(run(trees[name], args, python_build=name == "python_build", compiled=name == "compiled"))
            print(name, runs[name][-1], file=sys.stderr)
    summary: dict = {"tickets": args.tickets, "scenario": args.scenario, "rounds": args.rounds,
                     "load": os.getloadavg()}
    for name, rs in runs.items():
        summary[name] = {k: round(statistics.median(r[k] for r in rs), 4)
                         for k in ("first_wall", "first_cpu", "steady_wall", "steady_cpu")} | {"open": rs[0]["open"]}
    for other in ("old", "python_build", "compiled"):
        if other in runs:
            summary[f"speedup_vs_{other}"] = {k: round(summary[other][k] / summary["new"][k], 2)
                                              for k in ("first_wall", "first_cpu", "steady_wall", "steady_cpu")}
    if not args.compiled:  # (a compiled partition's scrape builds the index in its forked child each time)
        summary["new"]["index_mb"] = run(trees["new"], args, memory=True)["index_mb"]
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
