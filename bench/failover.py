"""Failover: how long a worker's partitions wait for a new owner after it is killed (-9) or stopped (SIGTERM).

    python bench/failover.py [--repeat 3] [--rate 150] [--bootstrap HOST:PORT] [--only NAME ...]

Starts a single-node broker (tests/support/procs.py) unless --bootstrap is given. Each round: a fresh
4-partition pipeline (its own topics and group, the generated stream of tests/support/pipeline.py produced at a
steady --rate), workers A and B (event clock, default checkpoint interval), 2 s of traffic, then A is killed or
stopped. Measured from the signal, polling /healthz every 0.1 s:

  owned      every partition has an engine again (the new owner restored it from its checkpoint);
  takeover   the new owners reflect at least the offsets A had applied when it was signalled: the state is
             back where A left it and the stream moves on.

Variants (--only picks some):

  kill9_session30       kill -9, dynamic membership, 30 s session timeout (the default before issue 13)
  kill9_session10       kill -9, dynamic membership, 10 s session timeout (the default since)
  kill9_session10_restart  the same, a replacement A' started at once (dynamic: it waits like B)
  kill9_static_restart  kill -9, static membership (SLAMON_GROUP_INSTANCE_ID), 30 s session, A' started at once
                        under A's name: it gets A's partitions back without waiting for the session timeout
  kill9_static_norestart  the same without a replacement: A's partitions wait the session timeout
  term_session30        SIGTERM, 30 s session (heartbeat every 3 s: B learns of the rebalance at its next one)
  term_session10        SIGTERM, 10 s session (heartbeat every 1 s)

Prints one JSON line per round and a summary (medians). The machine is shared: read ratios and medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.producer import produce  # noqa: E402
from tests.support.pipeline import PARTITIONS, Pipeline, Worker, build_stream  # noqa: E402

VARIANTS: dict[str, dict] = {
    "kill9_session30": {"signal": "kill9", "session": 30},
    "kill9_session10": {"signal": "kill9", "session": 10},
    "kill9_session10_restart": {"signal": "kill9", "session": 10, "restart": True},
    "kill9_static_restart": {"signal": "kill9", "session": 30, "static": True, "restart": True},
    "kill9_static_norestart": {"signal": "kill9", "session": 30, "static": True},
    "term_session30": {"signal": "term", "session": 30},
    "term_session10": {"signal": "term", "session": 10},
}


def healthz(workers: list[Worker]) -> tuple[set[int], dict[int, int]]:
    engines: set[int] = set()
    offsets: dict[int, int] = {}
    for w in workers:
        h = w.health() or {}
        engines.update(int(p) for p in h.get("engines", []))
        for p, off in (h.get("offsets") or {}).items():
            offsets[int(p)] = max(offsets.get(int(p), -1), off)
    return engines, offsets


def one_round(bootstrap: str, tmp: Path, name: str, variant: dict, rate: float) -> dict:
    extra = {"SLAMON_SESSION_TIMEOUT": str(variant["session"]), "SLAMON_CHECKPOINT_INTERVAL": "5"}
    p = Pipeline(bootstrap, tmp, **extra)
    lines, _, _ = build_stream(p.contracts)
    static = variant.get("static")
    try:
        a = p.worker("a", **({"SLAMON_GROUP_INSTANCE_ID": "worker-a"} if static else {})).start()
        b = p.worker("b", **({"SLAMON_GROUP_INSTANCE_ID": "worker-b"} if static else {})).start()
        p.wait_assigned([a, b], timeout=120)
        mine = sorted(int(x) for x in (a.health() or {}).get("engines", []))
        sender = threading.Thread(target=produce, args=(p.settings, lines), kwargs={"rate": rate}, daemon=True)
        sender.start()
        time.sleep(2.0)
        _, applied = healthz([a])
        t0 = time.monotonic()
        if variant["signal"] == "kill9":
            a.kill9()
        else:
            a.proc.send_signal(15)
        survivors = [b]
        if variant.get("restart"):
            # a static member comes back as the same worker (same name, same port: faust's assignor checks the
            # URL in the assignment the broker hands back)
            same = {"SLAMON_GROUP_INSTANCE_ID": "worker-a", "SLAMON_METRICS_BIND": a.env["SLAMON_METRICS_BIND"]}
            a2 = p.worker("a2", **(same if static else {})).start()
            survivors.append(a2)
        stopped = None
        owned = takeover = None
        deadline = t0 + 90
        while time.monotonic() < deadline and takeover is None:
            if stopped is None and not a.alive():
                stopped = time.monotonic() - t0
            engines, offsets = healthz(survivors)
            now = time.monotonic() - t0
            if owned is None and all(q in engines for q in mine):
                owned = now
            if owned is not None and all(offsets.get(q, -1) >= applied.get(q, -1) for q in mine):
                takeover = now
            time.sleep(0.1)
        sender.join(120)
        return {"variant": name, "partitions_moved": len(mine), "stopped_s": _r(stopped), "owned_s": _r(owned),
                "takeover_s": _r(takeover), "applied_at_signal": {q: applied.get(q) for q in mine}}
    finally:
        p.close()


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=float, default=150.0, help="events per second during the round")
    parser.add_argument("--bootstrap", help="an existing broker (default: start one)")
    parser.add_argument("--only", nargs="*", choices=sorted(VARIANTS), help="variants to run (default: all)")
    args = parser.parse_args(argv)
    names = args.only or list(VARIANTS)
    with tempfile.TemporaryDirectory(prefix="slamon-failover-") as tmpdir:
        tmp = Path(tmpdir)
        broker = None
        bootstrap = args.bootstrap
        if bootstrap is None:
            from tests.support.procs import KafkaBroker

            broker = KafkaBroker(tmp / "kafka").start()
            bootstrap = broker.bootstrap
        results: dict[str, list[dict]] = {n: [] for n in names}
        try:
            for r in range(args.repeat):
                for n in names:  # every variant once per round, back to back: same machine load
                    out = one_round(bootstrap, tmp / f"{n}-{r}", n, VARIANTS[n], args.rate)
                    out["round"] = r
                    print(json.dumps(out), flush=True)
                    results[n].append(out)
        finally:
            if broker is not None:
                broker.stop()
    summary = {}
    for n, rows in results.items():
        owned = [x["owned_s"] for x in rows if x["owned_s"] is not None]
        took = [x["takeover_s"] for x in rows if x["takeover_s"] is not None]
        summary[n] = {"rounds": len(rows), "owned_median_s": _r(statistics.median(owned)) if owned else None,
                      "takeover_median_s": _r(statistics.median(took)) if took else None,
                      "takeover_max_s": max(took) if took else None,
                      "missed": len(rows) - len(took)}
    print(json.dumps({"summary": summary, "partitions": PARTITIONS}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
