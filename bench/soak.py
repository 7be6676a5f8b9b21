"""Soak: steady load through a real broker and worker, one worker restart in the middle, then the worker's
figures against `slamon replay` of the same events.

    python bench/soak.py [--minutes 30] [--rate 1000] [--sample-seconds 10] [--bootstrap HOST:PORT]

Starts a single-node Kafka broker (tests/support/procs.py) unless --bootstrap is given. Generated traffic for
examples/contracts.yaml (bench/bench_events.py: tickets, calls, probes, surveys, audits; 1 % duplicates, up
to 60 s of disorder) is produced at a steady --rate (kafka-python, keyed by client) for --minutes into a fresh
4-partition topic. One worker (`python -m streams.app`, event clock, 5 s checkpoints) consumes it; at half
time it gets SIGTERM (final checkpoint) and a new worker process with a fresh data dir takes over from the
changelog. Every --sample-seconds a JSON line: the worker's RSS, consumer lag (slamon_consumer_lag_messages),
events applied (slamon_events_received_total) and produced so far. At the end, once the worker has applied
everything, its /metrics are compared with `slamon replay --format json` of the same events at each
partition's engine clock: current-period decided/good/bad/compliance per (client, SLA), all-period totals,
and the pipeline counts. Prints a summary JSON line (mismatches listed; an empty list means identical). The
`*_total` counters are high-water marks of the ledger sums (streams/README.md, "Metrics"): a decision withdrawn
by a later event (a reopened ticket's met resolution) stays counted, so a counter above the replay's sum is
listed under `counters_above_replay`, not as a mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_events import make_events  # noqa: E402
from bench_kafka import PARTITIONS, bench_settings, broker_for  # noqa: E402

from monitor.contracts import load_contracts  # noqa: E402
from monitor.events import format_us  # noqa: E402
from streams.partition_engine import designated_partition  # noqa: E402
from streams.producer import make_producer, produce  # noqa: E402
from streams.topics import ensure_topics  # noqa: E402

CONTRACTS = ROOT / "examples" / "contracts.yaml"


class Worker:
    def __init__(self, env: dict[str, str], workdir: Path, name: str) -> None:
        from tests.support.procs import free_port

        self.port = free_port()
        self.log_path = workdir / f"{name}.log"
        env = {**env, "SLAMON_METRICS_BIND": f"127.0.0.1:{self.port}", "SLAMON_DATA_DIR": str(workdir / name)}
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.app"], cwd=ROOT, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def metrics(self, timeout: float = 60) -> dict[tuple[str, tuple], float] | None:
        from prometheus_client.parser import text_string_to_metric_families

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=timeout) as resp:
                body = resp.read().decode()
        except OSError:
            return None
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(body) for s in family.samples}

    def rss_mb(self) -> float | None:
        try:
            with open(f"/proc/{self.proc.pid}/statm") as fh:
                return round(int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6, 1)
        except OSError:
            return None

    def stop(self, timeout: float = 120) -> float:
        """SIGTERM (the worker takes a final checkpoint); seconds until it exited."""
        t = time.perf_counter()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        if not self._log.closed:
            self._log.close()
        return time.perf_counter() - t


def total(m: dict, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, lab), v in m.items() if n == name and want <= set(lab))


def by_partition(m: dict, name: str) -> dict[int, float]:
    return {int(dict(lab)["partition"]): v for (n, lab), v in m.items() if n == name and "partition" in dict(lab)}


def replay_json(events_file: Path, contracts: str, at_us: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "slamon.cli", "replay", str(events_file), "--contracts", contracts,
                          "--format", "json", "--at", format_us(at_us)], cwd=ROOT, capture_output=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return orjson.loads(out.stdout)


def report_diff(m: dict, events_file: Path, contracts_path: str, contracts) -> dict:
    """The worker's series against `slamon replay` at each partition's engine clock (each client's figures are
    exported by its designated partition, whose clock is that partition's newest event time)."""
    clocks = by_partition(m, "slamon_engine_now_seconds")
    mismatches: list[dict] = []
    above: list[dict] = []  # all-period counters above the replay's sums: withdrawn decisions (high-water mark)
    compared = 0
    replays: dict[int, dict] = {}

    def check(what: str, worker: float | None, replay: float | None, counter: bool = False) -> None:
        nonlocal compared
        compared += 1
        if worker == replay or (worker is not None and replay is not None and abs(worker - replay) < 1e-9):
            return
        if counter and worker is not None and replay is not None and worker > replay:
            above.append({"what": what, "worker": worker, "replay": replay})
        else:
            mismatches.append({"what": what, "worker": worker, "replay": replay})

    for client in contracts.clients:
        p = designated_partition(client, PARTITIONS)
        at_us = round(clocks[p] * 1e6)
        if p not in replays:
            replays[p] = replay_json(events_file, contracts_path, at_us)
        totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        current: dict[str, dict] = {}
        for rec in replays[p]["records"]:
            if rec["client"] != client:
                continue
            current[rec["sla"]] = rec  # records run oldest period first
            t = totals[rec["sla"]]
            t[0] += rec["decided"]
            t[1] += rec["good"] or 0
            t[2] += rec["bad"] or 0
        for sla, rec in current.items():
            labels = {"client": client, "sla": sla}
            if rec["kind"] == "uptime":
                check(f"{client}/{sla} availability", _one(m, "slamon_uptime_availability_ratio", **labels),
                      rec["value"])
                continue
            for field in ("decided", "good", "bad"):
                if rec[field] is not None:
                    check(f"{client}/{sla} period {field}", _one(m, f"slamon_sla_period_{field}", **labels), rec[field])
            check(f"{client}/{sla} compliance", _one(m, "slamon_sla_compliance_ratio", **labels), rec["compliance"])
            decided, good, bad = totals[sla]
            check(f"{client}/{sla} decided_total", _one(m, "slamon_sla_decided_total", **labels), decided, True)
            if rec["kind"] not in ("asa", "aht"):
                check(f"{client}/{sla} good_total", _one(m, "slamon_sla_good_total", **labels), good, True)
                check(f"{client}/{sla} bad_total", _one(m, "slamon_sla_bad_total", **labels), bad, True)
    pipeline = replays[max(replays, key=lambda p: clocks[p])]["pipeline"]
    check("events accepted", total(m, "slamon_events_total"), pipeline["accepted"])
    check("duplicates", total(m, "slamon_events_duplicate_total"), pipeline["duplicates"])
    return {"compared": compared, "mismatches": mismatches, "counters_above_replay": above}


def _one(m: dict, name: str, **labels: str) -> float | None:
    """The value of the one series of `name` whose labels include `labels` (None if there is no such series)."""
    exact = (name, tuple(sorted(labels.items())))
    if exact in m:
        return m[exact]
    want = set(labels.items())
    values = [v for (n, lab), v in m.items() if n == name and want <= set(lab)]
    assert len(values) <= 1, f"{name}{labels} matches {len(values)} series"
    return values[0] if values else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=1000.0, help="events per second")
    ap.add_argument("--sample-seconds", type=float, default=10.0)
    ap.add_argument("--contracts", default=str(CONTRACTS))
    ap.add_argument("--bootstrap", help="use this broker instead of starting one")
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="slamon-soak-"))
    contracts = load_contracts(args.contracts)
    n = int(args.rate * args.minutes * 60)
    lines = make_events(contracts, n)
    events_file = workdir / "events.jsonl"
    events_file.write_bytes(b"\n".join(lines) + b"\n")
    bootstrap, broker = broker_for(args.bootstrap, workdir)
    tag = uuid.uuid4().hex[:6]
    settings = bench_settings(bootstrap, f"soak-{tag}")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SLAMON_")},
        "PYTHONPATH": str(ROOT), "SLAMON_KAFKA__BOOTSTRAP_SERVERS": bootstrap, "SLAMON_APP_ID": f"soak-{tag}",
        "SLAMON_TOPICS__EVENTS": settings.topics.events, "SLAMON_TOPICS__DEADLETTER": settings.topics.deadletter,
        "SLAMON_TOPICS__SLA_EVENTS": settings.topics.sla_events, "SLAMON_TOPICS__PARTITIONS": str(PARTITIONS),
        "SLAMON_CONTRACTS": args.contracts, "SLAMON_CLOCK": "event", "SLAMON_CHECKPOINT_INTERVAL": "5",
        "SLAMON_LOG_LEVEL": "info",
    }
    samples: list[dict] = []
    workers: list[Worker] = []
    summary: dict = {"minutes": args.minutes, "rate": args.rate, "events": len(lines), "workdir": str(workdir)}
    try:
        ensure_topics(settings)
        worker = Worker(env, workdir, "worker-1")
        workers.append(worker)
        produced = {"n": 0}
        producer_done = threading.Event()

        def send() -> None:
            producer = make_producer(settings, linger_ms=5)
            try:
                result = produce(settings, lines, rate=args.rate, producer=producer,
                                 on_sent=lambda i, _: produced.__setitem__("n", i))
                summary["produce"] = {"sent": result.sent, "failed": result.failed, "rate": round(result.rate)}
            finally:
                producer.close()
                producer_done.set()

        started = time.monotonic()
        threading.Thread(target=send, daemon=True).start()
        restart_at = started + args.minutes * 30
        restarted = False
        while True:
            elapsed = time.monotonic() - started  # next multiple of the interval (a slow restart skips some)
            time.sleep((int(elapsed / args.sample_seconds) + 1) * args.sample_seconds - elapsed)
            if not restarted and time.monotonic() >= restart_at:
                summary["restart"] = {"at_s": round(time.monotonic() - started, 1),
                                      "sigterm_to_exit_s": round(worker.stop(), 1)}
                worker = Worker(env, workdir, "worker-2")
                workers.append(worker)
                summary["restart"]["started_s"] = round(time.monotonic() - started, 1)
                restarted = True
            m = worker.metrics() or {}
            applied = total(m, "slamon_events_received_total") if m else None
            sample = {"t_s": round(time.monotonic() - started, 1), "worker": 2 if restarted else 1,
                      "rss_mb": worker.rss_mb(), "lag": total(m, "slamon_consumer_lag_messages") if m else None,
                      "applied": applied, "produced": produced["n"],
                      "checkpoint_bytes": total(m, "slamon_checkpoint_size_bytes") if m else None}
            samples.append(sample)
            print(json.dumps(sample), flush=True)
            if producer_done.is_set() and applied is not None and applied >= len(lines):
                break
            if time.monotonic() - started > args.minutes * 60 + 900:
                raise TimeoutError("the worker did not catch up within 15 min of the end of the load")
        m = worker.metrics(timeout=300)
        if "restart" in summary:  # first sample of the new worker that shows it applying again
            back = next((s for s in samples if s["worker"] == 2 and s["applied"]), None)
            summary["restart"]["applying_again_by_s"] = back and back["t_s"]
        summary["diff"] = report_diff(m, events_file, args.contracts, contracts)
        summary["identical"] = not summary["diff"]["mismatches"]
        rss = [s["rss_mb"] for s in samples if s["rss_mb"]]
        lags = [s["lag"] for s in samples if s["lag"] is not None]
        summary["rss_mb"] = {"first": rss[0], "max": max(rss), "last": rss[-1]} if rss else None
        summary["lag"] = {"median": statistics.median(lags), "max": max(lags)} if lags else None
    finally:
        for w in workers:
            w.stop()
        if broker is not None:
            broker.stop()
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    main()
