"""The monthly review from the SLA record vs from a replay of the month's events (issue 15: < 30 s for a month).

    python bench/report_store.py [--month 2026-11] [--scale 12] [--workdir /tmp/slamon-bench-store]
                                 [--backends sqlite,postgresql] [--repeat 3]

1. Generates a month of the example contracts' traffic (`slamon generate` with `--scale` times the default
   rates: the default 12 gives about 6M events, 6.4 about 3.25M; kept in the workdir and reused).
2. Times the replay-based review as `slamon report EVENTS --period M --format html` runs it in-process (newest
   event scan, replay, review, HTML).
3. Fills a store per backend with the SLA-events topic of the same events (`store.feed`: the records the workers
   publish, applied as `slamon store run` applies them; timed, not part of the target).
4. Times `review_from_store` + HTML per backend (median of --repeat), and checks that the month's figures
   (decided/good/bad/value per SLA period, breached ids, credits) equal the replay's. The store is filled with
   the events up to the review instant, as the replay reads them: a store fed past the month's end also holds
   the corrections made since (a reopened ticket), which the replay at the month's end does not see.
Prints one JSON object; bench/RESULTS.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.contracts import load_contracts  # noqa: E402
from monitor.gc_tuning import tune_gc  # noqa: E402
from monitor.replay import replay_lines  # noqa: E402
from monitor.review.figures import build_review, month_window, review_at, shift_month  # noqa: E402
from monitor.review.groups import ReviewEngine  # noqa: E402
from monitor.review.render import render_html  # noqa: E402
from monitor.simulation.generator import GeneratorConfig, generate  # noqa: E402
from store.db import open_store  # noqa: E402
from store.feed import load_records, sla_records  # noqa: E402
from store.report import review_from_store  # noqa: E402


def events_file(contracts, month: str, scale: float, workdir: Path) -> Path:
    path = workdir / f"events-{month}-x{scale:g}.jsonl"
    if path.exists():
        return path
    start = month_window(month, "UTC").start_us - 86_400_000_000  # a day before: every zone's month is covered
    end = month_window(shift_month(month, 1), "UTC").start_us + 86_400_000_000
    cfg = GeneratorConfig(start_us=start, duration_us=end - start, seed=15, tickets_per_hour=20 * scale,
                          calls_per_hour=60 * scale)
    tmp = path.with_suffix(".part")
    t = time.perf_counter()
    n = 0
    with open(tmp, "wb") as f:
        for event in generate(contracts, cfg):
            f.write(orjson.dumps(event) + b"\n")
            n += 1
    tmp.rename(path)
    print(f"generated {n:,} events in {time.perf_counter() - t:.0f} s -> {path}", file=sys.stderr)
    return path


def newest_us(path: Path) -> int:
    from slamon.review_cli import newest_event_us

    return newest_event_us(str(path))


def replay_review(contracts, path: Path, month: str):
    t = time.perf_counter()
    at = review_at(contracts, month, None, newest_us(path))
    engine = ReviewEngine(contracts)  # as `slamon report` does: also the tables per queue and channel
    with open(path, "rb") as f:
        result = replay_lines(f, contracts, at, engine)
    review = build_review(result, engine, month)
    html = render_html(review)
    return time.perf_counter() - t, review, result, len(html)


def fill(url: str, contracts, path: Path, until_us: int) -> dict:
    with open_store(url) as store:
        store.migrate()
        if store.count():
            return {"seconds": None, "rows": store.count(), "reused": True}
        t = time.perf_counter()
        with open(path, "rb") as f:
            done = load_records(store, "bench", sla_records(f, contracts, partitions=4, at_us=until_us,
                                                            until_us=until_us))
        seconds = time.perf_counter() - t
        return {"seconds": round(seconds, 1), "decided_records": done.decided, "withdrawn_records": done.withdrawn,
                "rows": store.count()}


def figures(review) -> dict:
    out = {}
    for cr in review.clients:
        for s in cr.slas:
            for r in s.records:
                out[(cr.client, s.sla, r.period)] = (r.decided, r.good, r.bad, None if r.value is None else
                                                     round(r.value, 9), tuple(r.breaches or ()))
            out[(cr.client, s.sla, "credits")] = round(s.credits, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--month", default="2026-11")
    ap.add_argument("--scale", type=float, default=12.0)
    ap.add_argument("--contracts", default=str(ROOT / "examples" / "contracts.yaml"))
    ap.add_argument("--workdir", default="/tmp/slamon-bench-store")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-replay", action="store_true")
    args = ap.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    contracts = load_contracts(args.contracts)
    tune_gc()
    path = events_file(contracts, args.month, args.scale, workdir)
    with open(path, "rb") as f:
        lines = sum(1 for _ in f)
    out: dict = {"month": args.month, "events": lines, "events_mb": round(path.stat().st_size / 1e6),
                 "machine": f"{platform.machine()}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}"}
    replayed = None
    at = review_at(contracts, args.month, None, newest_us(path))
    if not args.skip_replay:
        seconds, replayed, result, _ = replay_review(contracts, path, args.month)
        out["replay_review_seconds"] = round(seconds, 1)
        out["replay_accepted"] = result.accepted
    pg = None
    for backend in args.backends.split(","):
        if backend == "sqlite":
            url = f"sqlite:///{workdir}/record-{args.month}-x{args.scale:g}.db"
        else:
            from store.pgcluster import PgCluster

            pg = PgCluster(workdir / f"pg-{args.month}-x{args.scale:g}", port=None).start()
            url = pg.url
        entry = {"fill": fill(url, contracts, path, at)}
        times = []
        review = None
        for _ in range(args.repeat):
            t = time.perf_counter()
            review = review_from_store(url, args.month, contracts, at_us=at)
            render_html(review)
            times.append(time.perf_counter() - t)
        entry["review_seconds"] = [round(x, 2) for x in times]
        entry["review_median_seconds"] = round(statistics.median(times), 2)
        if backend == "sqlite":
            entry["file_mb"] = round(Path(url[len("sqlite://"):]).stat().st_size / 1e6)
        if replayed is not None:
            mine, theirs = figures(review), figures(replayed)
            uptime = {k for k in theirs if k not in mine}
            diff = [k for k in mine if mine[k] != theirs.get(k)]
            entry["figures_compared"] = len(mine)
            entry["figures_different"] = [str(k) for k in diff[:10]]
            entry["left_out_uptime_keys"] = len(uptime)
        out[backend] = entry
        if pg is not None:
            pg.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
