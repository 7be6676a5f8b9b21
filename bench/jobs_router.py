"""The `--jobs` reader's routing alone: CPU per line, the compiled router against its Python reference.

    python bench/jobs_router.py [--events 200000] [--rounds 2]

Generates the bench events (bench_events.make_events), then routes them as `slamon replay --jobs 2` does
(`slamon.jobs.ItemRouter`, chunks discarded), the two routers alternated per round. Prints JSON: µs of CPU per
line per run and their medians.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import time

from bench_events import make_events

from monitor.contracts import load_contracts
from slamon.jobs import COMPILED_ROUTER, ItemRouter


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--contracts", default="examples/contracts.yaml")
    args = ap.parse_args()
    if not COMPILED_ROUTER:
        raise SystemExit("the compiled router is not built (pip install -e . with Rust on the PATH)")
    contracts = load_contracts(args.contracts)
    blob = b"\n".join(make_events(contracts, args.events)) + b"\n"
    owner = {name: i % 2 for i, name in enumerate(contracts.clients)}
    lateness = {name: contracts.lateness_us(name) for name in contracts.clients}
    runs: dict[str, list[float]] = {"python": [], "compiled": []}
    for _ in range(args.rounds):
        for name in runs:
            router = ItemRouter(2, owner, lateness, None, compiled=name == "compiled")
            numbers, parts, flagged = [[], []], [[], []], [[], []]

            def chunk(_end: int, tables=(numbers, parts, flagged)) -> None:
                for table in tables:
                    for part in table:
                        part.clear()

            t = time.process_time()
            lines = router.route(io.BytesIO(blob), numbers, parts, flagged, chunk)
            runs[name].append(round((time.process_time() - t) / lines * 1e6, 3))
    medians = {k: round(statistics.median(v), 3) for k, v in runs.items()}
    print(json.dumps({"lines": lines, "cpu_us_per_line": runs, "median_cpu_us_per_line": medians,
                      "python_over_compiled": round(medians["python"] / medians["compiled"], 2),
                      "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                                  "load_average_1m": round(os.getloadavg()[0], 2)}}, indent=2))


if __name__ == "__main__":
    main()
