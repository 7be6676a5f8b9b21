"""Streaming throughput and latency on one broker, in one run.

    python bench/pipeline.py [--events 200000] [--repeat 3] [--pair] [--rate 5000] [--latency-seconds 30]
                             [--bootstrap HOST:PORT] [--skip raw slamon naive engine quix latency]

Starts a single-node Kafka broker (tests/support/procs.py) unless --bootstrap is given, produces N generated
events for examples/contracts.yaml once (keyed by client, 4 partitions; not timed), then measures, each
reading the same topic from its start with its own consumer group:

  raw_aiokafka   an aiokafka consumer that only fetches and decodes (orjson.loads) every value: the floor
                 cost of getting events out of Kafka in Python (the issue's "raw ceiling");
  raw_validated  the same consumer decoding with slamon's validating decoder (`decode_event`, pydantic): the
                 ceiling for any implementation that checks events at the edge;
  slamon         the real worker (`python -m streams.app`, event clock, default 5 s checkpoints), timed from
                 the moment it owns its partitions until every event is applied; the last step checks that
                 /metrics shows all N (slamon_events_received_total); its partitions on the compiled engine
                 where built;
  slamon_python  the same worker on the Python engine (SLAMON_ENGINE=python), right after it in each round;
  naive_faust    a textbook faust app: one agent, a windowed (tumbling 1 h) table with one update per event,
                 each update a changelog record; given slamon's 50 ms fetch wait so the ratio is not inflated
                 by faust's fixed 1500 ms (which stalls fetches behind idle partitions);
  quix           the peer a Python user would pick instead: a Quix Streams app (`pip install -e '.[bench]'`),
                 librdkafka consumer, its RocksDB state with changelog topic and 5 s commits (its defaults), one
                 stateful update per event: a count per message key (the client, as slamon keys); timed like
                 slamon, from assignment until all N are processed; checks that the counts read back from the
                 state sum to N and that its state directory holds RocksDB files;
  slamon_baseline  with --baseline DIR: the same worker run from another checkout (e.g. `git worktree add DIR
                 <commit>`), right after slamon in each round: a change's before and after side by side;
  slamon_2_workers  with --pair: two workers in one consumer group (scaling by partitions), timed once the
                 group has split the partitions, over the events still unapplied then (needs spare cores);
  engine_only    decode + engine in-process, no Kafka (the replay path: the compiled loop where built), for
                 reference; engine_only_python: the same with the Python engine, which the worker runs.

Then the latency run: a fresh topic and a wall-clock worker, events produced at a steady --rate for
--latency-seconds; each record's send time and (partition, offset) are matched with the first /healthz poll
(every 20 ms) at which the worker reports that offset applied: "event to metric" is that delay (a scrape
computes from the engines, so an applied event is in the next scrape), and the /metrics scrape time under
that load is reported next to it. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_events import make_events  # noqa: E402
from bench_kafka import PARTITIONS, bench_settings, broker_for  # noqa: E402

from monitor.contracts import load_contracts  # noqa: E402
from monitor.events import decode_event  # noqa: E402
from streams.producer import make_producer, produce  # noqa: E402
from streams.topics import ensure_topics  # noqa: E402

HOUR_US = 3_600_000_000


def _get(port: int, path: str, timeout: float = 30) -> bytes | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
            return resp.read()
    except OSError:
        return None


def _free_port() -> int:
    from tests.support.procs import free_port

    return free_port()


def _settings(bootstrap: str, tag: str):
    return bench_settings(bootstrap, f"bench-{tag}")


# --- (a) raw aiokafka ---------------------------------------------------------------------------------------


async def _raw_consume(bootstrap: str, topic: str, n: int, decode=orjson.loads) -> float:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        count = 0
        started = time.perf_counter()
        while count < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                for record in records:
                    decode(record.value)
                count += sum(len(r) for r in batches.values())
        return time.perf_counter() - started
    finally:
        await consumer.stop()


# --- (b) slamon worker --------------------------------------------------------------------------------------


class WorkerProc:
    def __init__(self, bootstrap: str, tag: str, contracts: str, workdir: Path, clock: str,
                 checkpoint: float = 5.0, run: str = "", member: str = "", root: Path = ROOT,
                 env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SLAMON_")},
            "PYTHONPATH": str(root), "SLAMON_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "SLAMON_APP_ID": f"bench-{tag}-slamon{run}", "SLAMON_TOPICS__EVENTS": f"bench-{tag}.events",
            "SLAMON_TOPICS__DEADLETTER": f"bench-{tag}.deadletter",
            "SLAMON_TOPICS__SLA_EVENTS": f"bench-{tag}.sla-events", "SLAMON_TOPICS__PARTITIONS": str(PARTITIONS),
            "SLAMON_CONTRACTS": contracts, "SLAMON_CLOCK": clock, "SLAMON_METRICS_BIND": f"127.0.0.1:{self.port}",
            "SLAMON_DATA_DIR": str(workdir / f"data-{tag}{run}{member}"), "SLAMON_CHECKPOINT_INTERVAL": str(checkpoint),
            "SLAMON_LOG_LEVEL": "warning", "SLAMON_MAX_FUTURE_SECONDS": "86400",
        }
        # experiments: BENCH_SLAMON_X=v in the bench's environment sets SLAMON_X=v for the workers
        self.env.update({k[len("BENCH_"):]: v for k, v in os.environ.items() if k.startswith("BENCH_SLAMON_")})
        self.env.update(env or {})
        self.log = open(workdir / f"worker-{tag}{run}{member}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.app"], cwd=root, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def health(self) -> dict | None:
        body = _get(self.port, "/healthz", timeout=5)
        return orjson.loads(body) if body else None

    def wait_owned(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("worker exited; see its log")
            h = self.health()
            if h and sorted(h["engines"]) == list(range(PARTITIONS)):
                return
            time.sleep(0.1)
        raise TimeoutError("worker did not get its partitions")

    def applied(self) -> int:
        h = self.health()
        return sum(o + 1 for o in h["offsets"].values()) if h else 0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


def _metric_sum(text: str, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                total += s.value
    return total


def bench_slamon(bootstrap: str, tag: str, contracts: str, workdir: Path, n: int, run: str = "",
                 root: Path = ROOT, env: dict[str, str] | None = None) -> dict:
    w = WorkerProc(bootstrap, tag, contracts, workdir, clock="event", run=run, root=root, env=env)
    try:
        t0 = time.perf_counter()
        w.wait_owned()
        started = time.perf_counter()
        while w.applied() < n:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        t = time.perf_counter()
        body = _get(w.port, "/metrics", timeout=120)
        scrape = time.perf_counter() - t
        received = _metric_sum(body.decode(), "slamon_events_received_total")
        assert received == n, f"/metrics shows {received} of {n}"
        return {"events_per_s": round(n / elapsed), "seconds": round(elapsed, 2),
                "startup_to_owned_s": round(started - t0, 2), "metrics_scrape_s": round(scrape, 3),
                "metrics_received_total": received}
    finally:
        w.stop()


def bench_slamon_pair(bootstrap: str, tag: str, contracts: str, workdir: Path, n: int, run: str = "") -> dict:
    """Two workers in one consumer group (the product scales by partitions, one process per core): timed
    from the moment the group has split the partitions between them, over the events still unapplied then."""
    ws = [WorkerProc(bootstrap, tag, contracts, workdir, clock="event", run=f"{run}-pair", member=m) for m in "ab"]

    def applied(healths: list[dict]) -> int:  # per partition, the furthest any worker got (handover overlap)
        best: dict[str, int] = {}
        for h in healths:
            for p, off in h["offsets"].items():
                best[p] = max(best.get(p, -1), off)
        return sum(off + 1 for off in best.values())

    def healths() -> list[dict] | None:
        hs = [w.health() for w in ws]
        return hs if all(hs) else None

    try:
        deadline = time.monotonic() + 120
        while True:
            hs = healths()
            owned = sorted(p for h in hs for p in h["partitions"]) if hs else []
            if hs and all(h["partitions"] for h in hs) and owned == list(range(PARTITIONS)):
                break
            if time.monotonic() > deadline or any(w.proc.poll() is not None for w in ws):
                raise RuntimeError("the two workers never split the partitions; see their logs")
            time.sleep(0.05)
        started, base = time.perf_counter(), applied(hs)
        while (done := applied(healths() or hs)) < n:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        return {"events_per_s": round((done - base) / elapsed), "seconds": round(elapsed, 2),
                "events_timed": done - base, "partitions": [h["partitions"] for h in hs]}
    finally:
        for w in ws:
            w.stop()


# --- (c) naive faust ----------------------------------------------------------------------------------------


def naive_worker(args) -> None:
    """A textbook faust implementation: windowed counts per (client, kind), one table update per event."""
    from datetime import timedelta

    import faust
    from faust.transport.drivers import aiokafka as driver

    # the same fetch wait as slamon's worker (faust fixes 1500 ms, which stalls fetches behind idle partitions)
    create = driver.AIOKafkaConsumerThread._create_worker_consumer

    def _create_worker_consumer(self, transport):
        consumer = create(self, transport)
        consumer._fetch_max_wait_ms = 50
        return consumer

    driver.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer
    app = faust.App(args.app_id, broker=f"kafka://{args.bootstrap}", store="memory://",
                    web_port=args.port, web_bind="127.0.0.1", web_host="127.0.0.1",
                    topic_partitions=PARTITIONS, datadir=args.datadir, autodiscover=False,
                    consumer_auto_offset_reset="earliest", key_serializer="raw", value_serializer="raw")
    topic = app.topic(args.topic, key_type=bytes, value_type=bytes, partitions=PARTITIONS)
    counts = app.Table("counts", default=int, partitions=PARTITIONS).tumbling(
        timedelta(hours=1), expires=timedelta(days=2))
    seen = {"n": 0}

    @app.agent(topic)
    async def count(stream):
        async for value in stream:
            event = orjson.loads(value)
            key = f"{event.get('client')}:{event.get('kind')}"
            counts[key] += 1
            seen["n"] += 1

    @app.page("/count")
    async def _count(web, request):
        return web.json({"n": seen["n"]})

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def bench_naive(bootstrap: str, tag: str, workdir: Path, n: int, run: str = "") -> dict:
    port = _free_port()
    log = open(workdir / "naive.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "naive-worker",
                             "--bootstrap", bootstrap, "--topic", f"bench-{tag}.events", "--port", str(port),
                             "--app-id", f"bench-{tag}-naive{run}", "--datadir", str(workdir / f"naive-data{run}")],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        started = None
        deadline = time.monotonic() + 900
        seen = 0
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"naive worker exited; see {workdir / 'naive.log'}")
            body = _get(port, "/count", timeout=5)
            if body is not None:
                seen = orjson.loads(body)["n"]
                if started is None:
                    started = time.perf_counter()
                if seen >= n:
                    break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        return {"events_per_s": round(n / elapsed), "seconds": round(elapsed, 2), "counted": seen}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# --- (d) Quix Streams ---------------------------------------------------------------------------------------


def quix_worker(args) -> None:
    """The peer a Python user would pick today: a Quix Streams app (librdkafka consumer, RocksDB state with
    its changelog topic, commits every 5 s: all its defaults) doing one stateful update per event, a count per
    message key (the records are keyed by client, as slamon reads them). /count serves how many events it
    processed, whether it was assigned its partitions, and the sum of the counts read back from the state."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from quixstreams import Application

    status = {"n": 0, "assigned": False, "counts": {}}

    class App(Application):
        def _on_assign(self, consumer, topic_partitions):
            super()._on_assign(consumer, topic_partitions)
            if topic_partitions:
                status["assigned"] = True

    app = App(broker_address=args.bootstrap, consumer_group=args.app_id, auto_offset_reset="earliest",
              state_dir=args.datadir, loglevel="WARNING")
    topic = app.topic(args.topic, key_deserializer="str", value_deserializer="json")
    counts = status["counts"]

    def count(value, key, timestamp, headers, state):
        n = state.get("count", 0) + 1  # RocksDB state of this message key (the client)
        state.set("count", n)
        counts[key] = n
        status["n"] += 1

    app.dataframe(topic).update(count, stateful=True, metadata=True)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = orjson.dumps({"n": status["n"], "assigned": status["assigned"],
                                 "state_sum": sum(counts.values())})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    app.run()


def bench_quix(bootstrap: str, tag: str, workdir: Path, n: int, run: str = "") -> dict:
    """Timed as the worker is: from the poll that shows the partitions assigned to the one that shows N events
    processed (polls every 50 ms). Then stopped with SIGTERM (Quix commits its state on the way out), and its
    state directory is checked for RocksDB files."""
    port = _free_port()
    datadir = workdir / f"quix-state{run}"
    log = open(workdir / f"quix{run}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "quix-worker",
                             "--bootstrap", bootstrap, "--topic", f"bench-{tag}.events", "--port", str(port),
                             "--app-id", f"bench-{tag}-quix{run}", "--datadir", str(datadir)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        started = None
        deadline = time.monotonic() + 900
        status: dict = {}
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"quix worker exited; see {workdir / f'quix{run}.log'}")
            body = _get(port, "/count", timeout=5)
            if body is not None:
                status = orjson.loads(body)
                if started is None and status["assigned"]:
                    started = time.perf_counter()
                if status["n"] >= n:
                    break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        assert status["state_sum"] == n, f"quix state holds {status['state_sum']} of {n}"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    rocksdb_files = sorted({p.name.split(".")[-1] for p in datadir.rglob("*") if p.is_file()})
    assert "sst" in rocksdb_files or "log" in rocksdb_files, f"no RocksDB files under {datadir}"
    return {"events_per_s": round(n / elapsed), "seconds": round(elapsed, 2), "counted": status["n"],
            "state_sum": status["state_sum"], "state_dir_files": rocksdb_files}


# --- latency -------------------------------------------------------------------------------------------------


def bench_latency(bootstrap: str, tag: str, contracts_path: str, contracts, workdir: Path, rate: float,
                  seconds: float) -> dict:
    settings = _settings(bootstrap, tag)
    ensure_topics(settings)
    n = int(rate * seconds)
    lines = make_events(contracts, n, end_us=time.time_ns() // 1000)
    w = WorkerProc(bootstrap, tag, contracts_path, workdir, clock="wall")
    applied: dict[int, list[tuple[int, float]]] = {p: [] for p in range(PARTITIONS)}  # (offset, seen at)
    stop = threading.Event()
    scrapes: list[float] = []

    def poll():
        last = {p: -1 for p in range(PARTITIONS)}
        while not stop.is_set():
            h = w.health()
            now = time.perf_counter()
            if h:
                for p, off in h["offsets"].items():
                    p = int(p)
                    if off > last[p]:
                        applied[p].append((off, now))
                        last[p] = off
            time.sleep(0.02)

    def scrape():
        while not stop.is_set():
            t = time.perf_counter()
            if _get(w.port, "/metrics", timeout=30) is not None:
                scrapes.append(time.perf_counter() - t)
            stop.wait(2.0)

    try:
        w.wait_owned()
        producer = make_producer(settings, linger_ms=1)
        pollers = [threading.Thread(target=poll, daemon=True), threading.Thread(target=scrape, daemon=True)]
        for t in pollers:
            t.start()

        keys = [orjson.loads(line)["client"].encode() for line in lines]  # not in the paced loop: same CPU
        started = time.perf_counter()
        for i, line in enumerate(lines):
            due = started + i / rate
            ahead = due - time.perf_counter()
            if ahead > 0.001:
                time.sleep(ahead)
            t_send = time.perf_counter()
            fut = producer.send(settings.topics.events, value=line, key=keys[i])
            fut.add_callback(lambda md, ts=t_send: _record(md, ts))
        producer.flush()
        produce_s = time.perf_counter() - started

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and w.applied() < len(lines):
            time.sleep(0.05)
        time.sleep(0.1)
        stop.set()
        for t in pollers:
            t.join(5)
        producer.close()
    finally:
        w.stop()

    latencies, trace = [], []
    for p, off, t_send in list(_SENT):
        seen_at = next((t for o, t in applied[p] if o >= off), None)
        if seen_at is not None:
            latencies.append(max(0.0, seen_at - t_send))
            trace.append((round(t_send - started, 4), p, round(latencies[-1], 4)))
    latencies.sort()
    if os.environ.get("BENCH_LATENCY_TRACE"):  # (send time since start, partition, latency) per event
        Path(os.environ["BENCH_LATENCY_TRACE"]).write_bytes(orjson.dumps(sorted(trace)))

    def q(x: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(x * len(latencies)))] * 1000, 1)

    scr = sorted(scrapes)
    return {
        "target_rate": rate, "achieved_rate": round(len(lines) / produce_s), "events": len(lines),
        "matched": len(latencies),
        "event_to_applied_ms": {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": q(1.0)} if latencies else None,
        "metrics_scrape_ms": {"p50": round(scr[len(scr) // 2] * 1000, 1), "max": round(scr[-1] * 1000, 1),
                              "count": len(scr)} if scr else None,
        "poll_interval_ms": 20,
    }


_SENT: list[tuple[int, int, float]] = []  # (partition, offset, send time), from producer callbacks


def _record(metadata, t_send: float) -> None:
    _SENT.append((metadata.partition, metadata.offset, t_send))


VARIANTS = ("raw_aiokafka", "raw_validated", "engine_only", "engine_only_python", "slamon", "slamon_python",
            "slamon_baseline", "slamon_2_workers", "naive_faust", "quix")


def _round(args, bootstrap: str, tag: str, settings, contracts, lines: list[bytes], workdir: Path,
           run: str) -> dict:
    """One measurement of every variant, back to back, on the same topic (fresh consumer groups)."""
    n = len(lines)
    out: dict = {}
    if "raw" not in args.skip:
        secs = asyncio.run(_raw_consume(bootstrap, settings.topics.events, n))
        out["raw_aiokafka"] = {"events_per_s": round(n / secs), "seconds": round(secs, 2)}
        print(run, "raw", out["raw_aiokafka"], file=sys.stderr)
        clients = contracts.clients
        secs = asyncio.run(_raw_consume(bootstrap, settings.topics.events, n,
                                        decode=lambda value: decode_event(value, clients)))
        out["raw_validated"] = {"events_per_s": round(n / secs), "seconds": round(secs, 2)}
        print(run, "raw validated", out["raw_validated"], file=sys.stderr)
    if "engine" not in args.skip:
        from monitor import compiled_replay
        from monitor.replay import replay_lines

        compiled = compiled_replay.IN_USE
        for name, in_use in (("engine_only", compiled), ("engine_only_python", False)):
            compiled_replay.IN_USE = in_use
            t = time.perf_counter()
            replay_lines(lines, contracts)
            secs = time.perf_counter() - t
            out[name] = {"events_per_s": round(n / secs), "seconds": round(secs, 2)}
            print(run, name, out[name], file=sys.stderr)
        compiled_replay.IN_USE = compiled
    if "slamon" not in args.skip:
        out["slamon"] = bench_slamon(bootstrap, tag, args.contracts, workdir, n, run=run)
        print(run, "slamon", out["slamon"], file=sys.stderr)
        if "slamon_python" not in args.skip:
            out["slamon_python"] = bench_slamon(bootstrap, tag, args.contracts, workdir, n, run=f"{run}-py",
                                                env={"SLAMON_ENGINE": "python"})
            print(run, "slamon, Python engine", out["slamon_python"], file=sys.stderr)
        if args.baseline:
            out["slamon_baseline"] = bench_slamon(bootstrap, tag, args.contracts, workdir, n, run=f"{run}-base",
                                                  root=Path(args.baseline).resolve())
            print(run, "slamon baseline", out["slamon_baseline"], file=sys.stderr)
    if args.pair:
        out["slamon_2_workers"] = bench_slamon_pair(bootstrap, tag, args.contracts, workdir, n, run=run)
        print(run, "slamon x2", out["slamon_2_workers"], file=sys.stderr)
    if "naive" not in args.skip:
        out["naive_faust"] = bench_naive(bootstrap, tag, workdir, n, run=run)
        print(run, "naive", out["naive_faust"], file=sys.stderr)
    if "quix" not in args.skip:
        out["quix"] = bench_quix(bootstrap, tag, workdir, n, run=run)
        print(run, "quix", out["quix"], file=sys.stderr)
    return out


# --- main ----------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd")
    for name in ("naive-worker", "quix-worker"):
        nw = sub.add_parser(name)
        for a in ("--bootstrap", "--topic", "--app-id", "--datadir"):
            nw.add_argument(a, required=True)
        nw.add_argument("--port", type=int, required=True)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--latency-seconds", type=float, default=30)
    ap.add_argument("--repeat", type=int, default=3, help="rounds of the throughput variants (medians)")
    ap.add_argument("--contracts", default=str(ROOT / "examples" / "contracts.yaml"))
    ap.add_argument("--bootstrap", help="use this broker instead of starting one")
    ap.add_argument("--skip", nargs="*", default=[],
                    choices=("raw", "slamon", "slamon_python", "naive", "engine", "quix", "latency"))
    ap.add_argument("--pair", action="store_true", help="also run two workers in one group (slamon_2_workers)")
    ap.add_argument("--baseline", metavar="DIR", help="also run the worker from this checkout, right after slamon in "
                    "every round (slamon_baseline: before/after a change, side by side)")
    args = ap.parse_args()
    if args.cmd == "naive-worker":
        naive_worker(args)
        return
    if args.cmd == "quix-worker":
        quix_worker(args)
        return
    workdir = Path(tempfile.mkdtemp(prefix="slamon-bench-"))
    bootstrap, broker = broker_for(args.bootstrap, workdir)
    out: dict = {"events": args.events, "partitions": PARTITIONS, "workdir": str(workdir),
                 "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count()}}
    try:
        contracts = load_contracts(args.contracts)
        lines = make_events(contracts, args.events)
        n = len(lines)
        tag = uuid.uuid4().hex[:6]
        settings = _settings(bootstrap, tag)
        ensure_topics(settings)
        t = time.perf_counter()
        result = produce(settings, lines)
        out["produce"] = {"events_per_s": round(result.sent / (time.perf_counter() - t)), "failed": result.failed}
        print(f"produced {n} events", file=sys.stderr)
        rounds = [_round(args, bootstrap, tag, settings, contracts, lines, workdir, f"-r{i}")
                  for i in range(args.repeat)]
        out["rounds"] = rounds
        for variant in VARIANTS:
            figures = [r[variant]["events_per_s"] for r in rounds if variant in r]
            if figures:
                out[variant] = {"events_per_s": round(statistics.median(figures)), "rounds": figures}
        # ratios per round (each round's variants ran back to back), then the median over rounds
        ratios: dict[str, list[float]] = {}
        for r in rounds:
            for top in ("slamon", "slamon_2_workers"):
                for k in VARIANTS:
                    if top in r and k in r and k not in ("slamon", "slamon_2_workers") and not (
                            top == "slamon_2_workers" and k == "slamon_baseline"):
                        ratios.setdefault(f"{top}_over_{k}", []).append(
                            r[top]["events_per_s"] / r[k]["events_per_s"])
        out["ratios"] = {k: {"median": round(statistics.median(v), 3), "rounds": [round(x, 3) for x in v]}
                         for k, v in ratios.items()}
        if "latency" not in args.skip:
            _SENT.clear()
            out["latency"] = bench_latency(bootstrap, uuid.uuid4().hex[:6], args.contracts, contracts, workdir,
                                           args.rate, args.latency_seconds)
    finally:
        if broker is not None:
            broker.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
