"""Months of traffic through one worker's state: memory, checkpoints and restore must stay bounded.

    python bench/longrun.py [--days 60] [--every-days 10] [--checkpoint-seconds 5] [--tickets-per-hour 400]
                            [--calls-per-hour 400] [--seed 0] [--start 2026-09-07T00:00:00Z]
                            [--contracts examples/contracts.yaml]
    python bench/longrun.py --restore-open-tickets 1000000 [--span-hours 1]
    python bench/longrun.py --restore-open-tickets 100000 --against OLD_TREE [--rounds 5] [--span-hours 1]

The traffic of `slamon generate --hours 24*DAYS` (60 days: 12.7M events) comes from
`monitor.simulation.generator.generate` in a forked child through a pipe, so this process
holds only what a worker holds.
ONE `PartitionEngine(0,
contracts, num_partitions=None)` applies it as the worker does: `process(value, offset, key)`, consecutive
offsets, then `advance` to the event-time clock. Whenever event time crosses a multiple of --checkpoint-seconds,
the outputs are confirmed (done futures) and pruned, and `streams.state_records.changed_records(pe)` is applied
to `store` (newest value per key, as the compacted topic; None deletes). Without that module: the whole
`pe.snapshot()` under one key, "format": "pickle-full" (slow: use --checkpoint-seconds 3600).

One JSON line per --every-days of event time:
  events_per_s  replay so far (checkpoints included, reports not); period_events_per_s: since the last line
  held          calls, tickets, open_tickets, ledger instants and 15-min buckets (as bench/state_growth.py),
                dedupe ids `seen`, deadline `heap`, `outbox`, uptime probes and buckets, ledger `periods`, listed
                `breaches`, `expired_rejected` events, `final_tickets` (dropped tickets kept as hashes). A ticket
                leaves memory 28 days (reopen window) after it is final and its hash 30 days later: those fill up
                until about day 33 and day 63
  rss_mb        this process (/proc/self/statm); generator_rss_mb: the generator child
  checkpoints   since the last line: count, records, bytes per checkpoint (median, max, total), ms of
                `changed_records` (median, p99, max; the event-loop time a checkpoint costs), ms_of_bytes_max,
                share_of_wall, mean_bytes_by_kind (`p0/<kind>/...`: t tickets, c calls, b ledger buckets,
                p periods, u/v uptime, x final-ticket days, d dedupe ids, o outbox, meta)
  store         keys and MB
  restore       `restore_partition(0, contracts, store)` timed in a forked child (the parent's heap and RSS
                untouched; its objects frozen out of the child's GC): s, rss_growth_mb (the restored engine),
                matches: offset and held counts equal the live engine's (but `seen` and `heap`: a restore drops
                dedupe ids past the horizon and superseded deadlines), else differs {field: [live, restored]}
The summary compares the last line with the one nearest half the days (60 vs 30) and with the one before it
(ratios), gives the worst checkpoint from the middle on, the machine, load and git commit.
--restore-open-tickets N: N `created` events of one client (bench/state_scale.py's "running" contracts: nothing
is decided) over the last --span-hours, one checkpoint, then the restore as above.
--against OLD_TREE (e.g. `git worktree add /tmp/restore-before <commit>`): the same restore side by side with another
checkout of this repository (`--against references`: with this tree, its compiled paths forced to their Python
references by SLAMON_TICKET_RECORDS/SLAMON_OPEN_CLOCKS=python). Each tree writes its own checkpoint of the same N
tickets (in a child process with that tree on sys.path), then --rounds rounds time `restore_partition` in a fresh
child per run, the trees alternated (ABBA), the child's objects frozen out of its GC first: wall and CPU seconds
(process_time) per run of the restore (`wall`, `cpu`), of what a worker does next before the partition's figures are
live (`first_*`: `settle_counters` and one /metrics collection of its `EngineCollector`, where the open-clock index is
built) and of both (`live_*`), their medians, the ratios old/new of the medians and the median of the per-round
ratios, and held counts (tickets, open_tickets, orphan_tickets, heap, offset) that must be equal on both sides. span 1
h (the default): every ticket still holds its `created` event; --span-hours 24: most tickets compacted (the state
only), as in a partition whose open tickets are mostly older than the lateness. Progress goes to stderr every ~30 s.
Run by hand; the machine is shared, figures are noisy.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections import Counter
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.contracts import load_contracts  # noqa: E402
from monitor.events import to_us  # noqa: E402
from monitor.gc_tuning import tune_gc  # noqa: E402
from monitor.simulation.generator import GeneratorConfig, generate  # noqa: E402
from streams.partition_engine import PartitionEngine  # noqa: E402

try:
    from streams.state_records import changed_records, restore_partition
    FORMAT = "records"
except ImportError:  # the old checkpoint: the whole state pickled
    changed_records = restore_partition = None
    FORMAT = "pickle-full"

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US


def _rss_mb(pid: int | str = "self") -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return 0.0


def _count(f) -> int | None:
    try:
        return f()
    except Exception:  # an engine field renamed under us: report None rather than stop a long run
        return None


def held(pe: PartitionEngine) -> dict:
    e = pe.engine
    uptime = [lg for m in e.clients.values() for lgs in m.uptime.values() for lg in lgs]
    counts = {  # the first five as bench/state_growth.py's `_held` (not imported: it needs the old pickle API)
        "calls": lambda: len(e.calls), "tickets": lambda: len(e.tickets), "open_tickets": lambda: len(e.open_tickets),
        "instants": lambda: sum(len(d) for lg in e.ledgers.values() for d in lg.instants.values()),
        "buckets": lambda: sum(len(lg.buckets) for lg in e.ledgers.values()),
        "seen": lambda: len(e.seen), "orphan_tickets": lambda: len(e.orphan_tickets), "heap": lambda: len(e._heap),
        "outbox": lambda: len(pe.outbox),
        "probe_points": lambda: sum(len(lg.times) for lg in uptime),
        "uptime_buckets": lambda: sum(len(getattr(lg, "buckets", ())) for lg in uptime),
        "periods": lambda: sum(len(lg.periods) for lg in e.ledgers.values()),
        "breaches": lambda: sum(len(v) for lg in e.ledgers.values() for v in lg.breaches.values()),
    }
    out = {k: _count(f) for k, f in counts.items()}
    out["expired_rejected"] = pe.rejected.get("expired", 0)
    for name in ("expired", "final_tickets"):  # final tickets dropped from memory, remembered as hashes
        if getattr(e, name, None) is not None:
            out[name] = _count(lambda name=name: len(getattr(e, name)))
    return out


DONE: Future = Future()  # a delivered producer future
DONE.set_result(None)


class Checkpoints:
    """The compacted store, and what each checkpoint of the current period cost."""

    def __init__(self, pe: PartitionEngine, contracts) -> None:
        self.pe, self.contracts = pe, contracts
        self.store: dict[bytes, bytes] = {}
        self.bytes: list[int] = []
        self.seconds: list[float] = []
        self.records = 0
        self.by_kind: Counter = Counter()  # bytes per record kind (`p0/<kind>/...`)

    def take(self) -> None:
        for out in self.pe.take_unsent():  # the producer delivered them: confirmed outputs leave the outbox
            out.future = DONE
        self.pe.prune_outbox()
        t = time.perf_counter()
        records = [(b"snapshot", self.pe.snapshot())] if changed_records is None else changed_records(self.pe)
        self.seconds.append(time.perf_counter() - t)
        size = 0
        for key, value in records:
            n = len(key) + (0 if value is None else len(value))
            size += n
            self.by_kind[key.split(b"/")[:2][-1].decode()] += n
            if value is None:
                self.store.pop(key, None)
            else:
                self.store[key] = value
        self.bytes.append(size)
        self.records += len(records)

    def restore(self) -> PartitionEngine:
        if restore_partition is None:
            return PartitionEngine.restore(0, self.contracts, self.store[b"snapshot"])
        return restore_partition(0, self.contracts, self.store)

    def period(self, wall_s: float) -> dict:
        b, ms = self.bytes or [0], sorted(s * 1e3 for s in self.seconds) or [0.0]
        out = {"count": len(self.bytes), "records": self.records, "bytes_median": round(statistics.median(b)),
               "bytes_max": max(b), "bytes_total": sum(b),
               "ms_of_bytes_max": round(self.seconds[b.index(max(b))] * 1e3, 3) if self.seconds else 0.0,
               "ms_median": round(statistics.median(ms), 3),
               "ms_p99": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 3), "ms_max": round(ms[-1], 3),
               "share_of_wall": round(sum(self.seconds) / max(wall_s, 1e-9), 4)}
        out["mean_bytes_by_kind"] = {k: round(v / max(len(self.bytes), 1)) for k, v in self.by_kind.most_common()}
        self.bytes, self.seconds, self.records, self.by_kind = [], [], 0, Counter()
        return out

    def store_figures(self) -> dict:
        return {"keys": len(self.store), "mb": round(sum(len(k) + len(v) for k, v in self.store.items()) / 1e6, 2)}


def in_child(fn) -> dict:
    """fn() in a forked child: the parent's heap (and so its RSS figures) stays as it was."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            gc.freeze()  # the parent's objects: out of the child's collections, as in a fresh process
            out = fn()
        except BaseException as exc:
            traceback.print_exc()
            out = {"error": repr(exc)}
        with os.fdopen(w, "wb") as f:
            f.write(orjson.dumps(out))
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return orjson.loads(data) if data else {"error": "restore child died"}


def measure_restore(ck: Checkpoints) -> dict:
    def run() -> dict:
        rss0 = _rss_mb()
        t = time.perf_counter()
        restored = ck.restore()
        seconds = time.perf_counter() - t
        rss1 = _rss_mb()
        live, back = held(ck.pe), held(restored)
        differs = {k: [v, back.get(k)] for k, v in live.items() if back.get(k) != v and k not in ("seen", "heap")}
        if restored.offset != ck.pe.offset:
            differs["offset"] = [ck.pe.offset, restored.offset]
        return {"s": round(seconds, 3), "rss_growth_mb": round(rss1 - rss0, 1), "matches": not differs,
                **({"differs": differs} if differs else {})}

    return in_child(run)


def traffic(contracts, cfg: GeneratorConfig):
    """(pid, lines): the generator in a forked child, `client\\tjson\\n` per event through a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            with os.fdopen(w, "wb", buffering=1 << 20) as out:
                dumps, write = orjson.dumps, out.write
                for event in generate(contracts, cfg):
                    write(event["client"].encode() + b"\t" + dumps(event) + b"\n")
        except BrokenPipeError:
            pass
        except BaseException:
            traceback.print_exc()
            code = 1
        os._exit(code)
    os.close(w)
    return pid, os.fdopen(r, "rb", buffering=1 << 20)


def machine() -> dict:
    def git(*cmd: str) -> str:
        return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return {"cores": os.cpu_count(), "python": platform.python_version(), "load_avg": os.getloadavg(),
            "commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(git("status", "--porcelain")),
            "format": FORMAT}


def ratio(a, b) -> float | None:
    return round(a / b, 3) if isinstance(a, int | float) and isinstance(b, int | float) and b else None


def compare(a: dict, b: dict) -> dict:
    """b / a of what must stay flat."""
    return {"days": [a["day"], b["day"]], "rss": ratio(b["rss_mb"], a["rss_mb"]),
            "store_mb": ratio(b["store"]["mb"], a["store"]["mb"]),
            "restore_s": ratio(b["restore"].get("s"), a["restore"].get("s")),
            "held": {k: ratio(v, a["held"].get(k)) for k, v in b["held"].items()}}


def summary(reports: list[dict], args) -> dict:
    last = reports[-1]
    mid = min(reports, key=lambda r: (abs(r["day"] - last["day"] / 2), -r["day"]))
    steady = [r["checkpoints"] for r in reports if r["day"] >= mid["day"]]
    return {
        "summary": True, "days": args.days, "events": last["events"], "events_per_s": last["events_per_s"],
        "rss_mb": [mid["rss_mb"], last["rss_mb"]], "restore_s": [mid["restore"].get("s"), last["restore"].get("s")],
        "vs_middle": compare(mid, last), "vs_previous": compare(reports[-2] if len(reports) > 1 else mid, last),
        "steady_checkpoint": {"bytes_max": max(c["bytes_max"] for c in steady),
                              "bytes_median_max": max(c["bytes_median"] for c in steady),
                              "ms_p99_max": max(c["ms_p99"] for c in steady),
                              "ms_max": max(c["ms_max"] for c in steady)},
        "checkpoint_seconds": args.checkpoint_seconds, "machine": machine(),
    }


def longrun(args) -> None:
    contracts = load_contracts(args.contracts)
    start = to_us(datetime.fromisoformat(args.start.replace("Z", "+00:00")))
    cfg = GeneratorConfig(start_us=start, duration_us=round(args.days * DAY_US), seed=args.seed,
                          tickets_per_hour=args.tickets_per_hour, calls_per_hour=args.calls_per_hour)
    if FORMAT == "pickle-full" and args.checkpoint_seconds < 600:
        print("note: no streams.state_records yet, every checkpoint pickles the whole state; "
              "try --checkpoint-seconds 3600", file=sys.stderr)
    gen_pid, lines = traffic(contracts, cfg)
    tune_gc()  # as the worker
    pe = PartitionEngine(0, contracts, num_partitions=None)
    ck = Checkpoints(pe, contracts)
    process, advance, engine = pe.process, pe.advance, pe.engine
    ck_us, every_us = round(args.checkpoint_seconds * 1e6), round(args.every_days * DAY_US)
    next_ck, next_report = start + ck_us, start + every_us
    reports: list[dict] = []
    began = period_began = last_progress = time.perf_counter()
    paused = 0.0  # wall time spent in reports
    period_events = 0

    def report(day: float, events: int) -> None:
        nonlocal paused, period_began, period_events
        t = time.perf_counter()
        wall, period_wall = t - began - paused, t - period_began
        out = {"day": round(day, 2), "events": events, "events_per_s": round(events / wall),
               "period_events_per_s": round((events - period_events) / period_wall), "held": held(pe),
               "rss_mb": round(_rss_mb(), 1), "generator_rss_mb": round(_rss_mb(gen_pid), 1) or None,
               "checkpoints": ck.period(period_wall), "store": ck.store_figures(), "restore": measure_restore(ck)}
        print(json.dumps(out), flush=True)
        reports.append(out)
        period_events = events
        period_began = time.perf_counter()
        paused += period_began - t

    offset = -1
    for offset, line in enumerate(lines):
        key, _, value = line[:-1].partition(b"\t")
        process(value, offset, key)
        now = engine.now_us
        advance(now)
        if now >= next_ck:
            ck.take()
            next_ck = (now // ck_us + 1) * ck_us
            if now >= next_report:
                report((now - start) // every_us * args.every_days, offset + 1)
                next_report = (now - start) // every_us * every_us + every_us + start
        if not offset & 4095 and (t := time.perf_counter()) - last_progress >= 30:
            last_progress = t
            print(f"day {(now - start) / DAY_US:.2f}: {offset + 1} events, "
                  f"{(offset + 1) / (t - began - paused):.0f} events/s, rss {_rss_mb():.0f} MB",
                  file=sys.stderr, flush=True)
    _, status = os.waitpid(gen_pid, 0)
    if status:
        raise SystemExit(f"the generator failed (status {status})")
    advance(start + cfg.duration_us)
    ck.take()
    report(args.days, offset + 1)
    print(json.dumps(summary(reports, args), indent=2))


# bench/state_scale.py's "running" scenario (copied: that script imports the pickle API the records replace): one
# client, month-long targets, so an open ticket's clocks keep running and nothing is decided.
OPEN_CONTRACTS = """
allowed_lateness: 1h
clients:
  acme:
    timezone: Europe/Berlin
    slas:
      - {name: fr, kind: first_response, time: calendar, target: {P1: 30d, P2: 30d, P3: 30d, P4: 30d},
         objective: 0.9}
      - {name: res, kind: resolution, time: calendar, target: {P1: 40d, P2: 40d, P3: 40d, P4: 40d}, objective: 0.9,
         pause_statuses: [waiting_on_customer]}
"""
OPEN_END_US = 1_793_574_000_000_000  # 2026-11-01T23:00Z, as state_scale


def restore_open_tickets(args) -> None:
    from monitor.contracts import parse_contracts
    from monitor.events import format_us

    contracts = parse_contracts(OPEN_CONTRACTS)
    tune_gc()
    rss0 = _rss_mb()
    pe = PartitionEngine(0, contracts, num_partitions=None)
    n, span = args.restore_open_tickets, round(args.span_hours * HOUR_US)
    t = time.perf_counter()
    for i in range(n):
        ticket = f"acme-T{i:07d}"
        pe.process(orjson.dumps({
            "event_id": f"{ticket}-1", "kind": "ticket", "client": "acme", "ts": format_us(OPEN_END_US - span + i * (
                span // n)), "ticket_id": ticket, "type": "created", "priority": f"P{i % 4 + 1}", "channel": "email",
        }), i, b"acme")
    pe.advance(OPEN_END_US)
    out = {"open_tickets_wanted": n, "span_hours": args.span_hours, "build_s": round(time.perf_counter() - t, 1),
           "held": held(pe), "sla_events": pe.sla_events, "engine_rss_mb": round(_rss_mb() - rss0, 1)}
    ck = Checkpoints(pe, contracts)
    ck.take()
    out.update(checkpoint=ck.period(1.0), store=ck.store_figures(), restore=measure_restore(ck), machine=machine())
    out["checkpoint"].pop("share_of_wall")
    print(json.dumps(out, indent=2))


SIDE_CHILD = r"""
import gc, sys, time
tree, mode, n, span_h, path = sys.argv[1:6]
sys.path[:0] = [tree, tree + "/bench"]
import msgspec, orjson
from longrun import OPEN_CONTRACTS, OPEN_END_US
from monitor.contracts import parse_contracts
from monitor.events import format_us
from monitor.gc_tuning import tune_gc
from streams.partition_engine import PartitionEngine
from streams.state_records import changed_records, restore_partition
contracts = parse_contracts(OPEN_CONTRACTS)
n, span = int(n), round(float(span_h) * 3_600_000_000)
if mode == "build":
    tune_gc()
    pe = PartitionEngine(0, contracts, num_partitions=None)
    for i in range(n):
        ticket = f"acme-T{i:07d}"
        pe.process(orjson.dumps({"event_id": f"{ticket}-1", "kind": "ticket", "client": "acme",
                                 "ts": format_us(OPEN_END_US - span + i * (span // n)), "ticket_id": ticket,
                                 "type": "created", "priority": f"P{i % 4 + 1}", "channel": "email"}), i, b"acme")
    pe.advance(OPEN_END_US)
    store = {k: v for k, v in changed_records(pe) if v is not None}
    with open(path, "wb") as f:
        f.write(msgspec.msgpack.encode(store))
    print(orjson.dumps({"keys": len(store), "events": sum(b"created" in v for k, v in store.items()
                                                          if k.startswith(b"p0/t/"))}).decode())
else:
    with open(path, "rb") as f:
        store = msgspec.msgpack.decode(f.read(), type=dict[bytes, bytes])
    tune_gc()
    gc.freeze()
    import inspect
    try:  # on the compiled engine where this tree has one and it is in use (SLAMON_ENGINE=python: the Python one)
        from monitor.compiled_replay import IN_USE as compiled
    except ImportError:
        compiled = False
    compiled = compiled and "compiled" in inspect.signature(restore_partition).parameters
    t, c = time.perf_counter(), time.process_time()
    pe = restore_partition(0, contracts, store, **({"compiled": True} if compiled else {}))
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    # then what a worker does before the partition's figures are live: settle its counters, one /metrics collection
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import generate_latest
    from streams.metrics import EngineCollector, settle_counters
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(lambda: [pe]))
    t, c = time.perf_counter(), time.process_time()
    settle_counters(pe)
    body = generate_latest(registry)
    first_wall, first_cpu = time.perf_counter() - t, time.process_time() - c
    tickets, open_tickets = pe.held() if hasattr(pe, "held") else (len(pe.engine.tickets), len(pe.engine.open_tickets))
    print(orjson.dumps({"wall": wall, "cpu": cpu, "first_wall": first_wall, "first_cpu": first_cpu,
                        "live_wall": wall + first_wall, "live_cpu": cpu + first_cpu, "bytes": len(body),
                        "compiled": bool(compiled), "held": {"tickets": tickets, "open_tickets": open_tickets,
                                                             "offset": pe.offset}}).decode())
"""


# monitor/compiled.py: a restore's paths, and the compiled engine a worker's partitions run on
REFERENCE_VARIABLES = ("SLAMON_TICKET_RECORDS", "SLAMON_OPEN_CLOCKS", "SLAMON_ENGINE")


def restore_side_by_side(args) -> None:
    import tempfile

    references = args.against == "references"  # this tree, every compiled path forced to its Python reference
    trees = {"old": str(ROOT if references else Path(args.against).resolve()), "new": str(ROOT)}
    envs = {"old": dict(os.environ) | ({v: "python" for v in REFERENCE_VARIABLES} if references else {}),
            "new": dict(os.environ)}
    n, span = args.restore_open_tickets, args.span_hours

    def child(side: str, mode: str, path: str) -> dict:
        tree = trees[side]
        done = subprocess.run([sys.executable, "-c", SIDE_CHILD, tree, mode, str(n), str(span), path], cwd=tree,
                              capture_output=True, text=True, env=envs[side])
        if done.returncode:
            raise SystemExit(f"{mode} in {tree} failed:\n{done.stderr}")
        return orjson.loads(done.stdout.strip().splitlines()[-1])

    with tempfile.TemporaryDirectory() as tmp:
        stores = {side: f"{tmp}/{side}.msgpack" for side in trees}
        out: dict = {"open_tickets": n, "span_hours": span, "trees": trees,
                     "stores": {side: child(side, "build", stores[side]) for side in trees}}
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        for r in range(args.rounds):
            for side in (("old", "new") if r % 2 == 0 else ("new", "old")):
                runs[side].append(child(side, "restore", stores[side]))
                print(f"round {r + 1} {side}: restore {runs[side][-1]['wall']:.3f} s wall, {runs[side][-1]['cpu']:.3f}"
                      f" s cpu; first collection {runs[side][-1]['first_cpu']:.3f} s cpu", file=sys.stderr, flush=True)
    figures = ("wall", "cpu", "first_wall", "first_cpu", "live_wall", "live_cpu")
    med = {side: {k: round(statistics.median(x[k] for x in rs), 3) for k in figures} for side, rs in runs.items()}
    out["runs"] = {side: [{k: round(x[k], 3) for k in figures} for x in rs] for side, rs in runs.items()}
    out["median"] = med
    out["ratio_old_over_new"] = {k: round(med["old"][k] / med["new"][k], 2) for k in figures}
    out["median_round_ratio"] = {k: round(statistics.median(o[k] / w[k] for o, w in zip(runs["old"], runs["new"],
                                                                                         strict=True)), 2)
                                 for k in figures}
    helds = [x["held"] for rs in runs.values() for x in rs]
    out["held"] = helds[0]
    out["held_equal"] = all(h == helds[0] for h in helds)
    out["machine"] = machine()
    print(json.dumps(out, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=float, default=60.0)
    ap.add_argument("--every-days", type=float, default=10.0)
    ap.add_argument("--checkpoint-seconds", type=float, default=5.0, help="of event time")
    ap.add_argument("--tickets-per-hour", type=float, default=400.0)
    ap.add_argument("--calls-per-hour", type=float, default=400.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", default="2026-09-07T00:00:00Z", help="first event time (a Monday)")
    ap.add_argument("--contracts", default=str(ROOT / "examples" / "contracts.yaml"))
    ap.add_argument("--restore-open-tickets", type=int, metavar="N", help="only the N-open-ticket restore")
    ap.add_argument("--span-hours", type=float, default=1.0, help="with --restore-open-tickets")
    ap.add_argument("--against", metavar="OLD_TREE", help="with --restore-open-tickets: beside that checkout, or "
                    "`references`: beside this tree with every compiled path forced to its Python reference")
    ap.add_argument("--rounds", type=int, default=5, help="with --against")
    args = ap.parse_args()
    if args.restore_open_tickets and args.against:
        restore_side_by_side(args)
    elif args.restore_open_tickets:
        restore_open_tickets(args)
    else:
        longrun(args)


if __name__ == "__main__":
    main()
