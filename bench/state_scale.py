"""State scale: bytes per open ticket (in memory and in a snapshot) and recovery of 1M open tickets.

    python bench/state_scale.py memory   [--tickets 10000 100000 1000000] [--span-hours 168]
    python bench/state_scale.py recovery [--tickets 1000000] [--restarts 3] [--bootstrap HOST:PORT]

Open tickets: `created` events only (never resolved), spread evenly over the last `--span-hours` (default 7
days), round-robin over the clients with ticket SLAs, priorities P1-P4. Two scenarios: `backlog` (the example
contracts: most older clocks are breached, so a ticket also carries its breach decisions in the ledgers) and
`running` (month-long targets: every clock still running; the state of an open ticket alone).

memory    builds an engine from N such events, then `compact()` (the steady state: events older than the
          allowed lateness folded into the tickets' base states) and reports per open ticket
          - `deep_bytes`: sys.getsizeof over everything the engine's state reaches (each object once, contract
            objects excluded), engine with N tickets minus an empty engine;
          - `traced_bytes` (N <= --trace-max): tracemalloc's allocated bytes, same difference;
          - `window_traced_bytes` (smallest N only): the same tickets all created within the allowed
            lateness, so the engine still holds their events (no compaction possible yet);
          - `snapshot_bytes`: `monitor.engine_state.snapshot()` per ticket: all the engine's state records
            (MessagePack, uncompressed, as the worker's checkpoints write them) in one value; and
            `snapshot_zlib_bytes`, the same compressed with zlib level 1 (for comparison only: the checkpoint
            producer does not compress, and snapshots before the MessagePack records were a zlib'd pickle);
          plus snapshot and restore (`monitor.engine_state.restore`) seconds, and the biggest object types.
recovery  a real broker (tests/support/procs.KafkaBroker unless --bootstrap), N open-ticket events produced
          with kafka-python (batched, linger 20 ms), a real worker (`python -m streams.app`, event clock)
          applies them and checkpoints; it is killed (SIGKILL) once its stored snapshots reflect every
          event. When the group is empty (the dead member's session expired), a fresh worker is started
          after a few new events were produced, and timed from process start to: the web server answering,
          every partition restored, and the new events applied ("recovered and applying"); the worker's own
          per-partition rebuild figures (records, bytes, seconds) are taken from its log. Repeated --restarts
          times (each a new process restoring from the same snapshots topic); medians reported. Then the
          snapshots topic itself is read in-process as the worker reads it (`streams.checkpoint.
          read_checkpoints`: kafka-python, read_committed, newest value per key) and each partition rebuilt
          with `streams.state_records.restore_partition`, to split the time into reading the records and
          rebuilding the engines from them.

Prints JSON. The machine is shared: use medians of repeats.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import types
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_kafka import PARTITIONS, bench_settings, broker_for  # noqa: E402

from monitor.contracts import Contracts, TicketSla, load_contracts  # noqa: E402
from monitor.engine import Engine  # noqa: E402
from monitor.engine_state import restore, snapshot  # noqa: E402
from monitor.events import decode_event, format_us  # noqa: E402

HOUR_US = 3_600_000_000
END_US = 1_793_574_000_000_000  # 2026-11-01T23:00Z, as bench_events
PRIORITIES = ("P1", "P2", "P3", "P4")
CONTRACTS = ROOT / "examples" / "contracts.yaml"
# The `running` scenario: month-long calendar targets, so every open ticket has both clocks running (no breach
# decisions, whose ledger bookkeeping the `backlog` scenario includes). tests/unit/test_state_size.py guards it.
RUNNING_CONTRACTS = """
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


# --- the events ----------------------------------------------------------------------------------------------


def ticket_clients(contracts: Contracts) -> list[str]:
    return [name for name, client in contracts.clients.items()
            if any(isinstance(s, TicketSla) for s in client.slas)]


def open_ticket_lines(contracts: Contracts, n: int, *, span_us: int, end_us: int = END_US,
                      tag: str = "T") -> Iterator[bytes]:
    """n `created` events (JSON lines), evenly spread over [end - span, end), never resolved."""
    clients = ticket_clients(contracts)
    queues = {name: next((q for s in contracts.clients[name].slas if isinstance(s, TicketSla) for q in s.queues),
                         None) for name in clients}
    step = span_us // max(n, 1)
    for i in range(n):
        client = clients[i % len(clients)]
        ticket = f"{client}-{tag}{i:07d}"
        yield orjson.dumps({
            "event_id": f"{ticket}-1", "kind": "ticket", "client": client, "ts": format_us(end_us - span_us + i * step),
            "ticket_id": ticket, "type": "created", "priority": PRIORITIES[i % 4], "queue": queues[client],
            "channel": "email",
        })


def build_engine(contracts: Contracts, lines, *, end_us: int = END_US, compact: bool = True) -> Engine:
    engine = Engine(contracts)
    clients = contracts.clients
    for line in lines:
        problem = engine.ingest(decode_event(line, clients))
        assert problem is None, problem
    engine.advance_to(end_us)
    if compact:
        engine.compact()
    return engine


# --- sizes ---------------------------------------------------------------------------------------------------


# What the engine's state is (what the pickle of earlier versions held, plus the final-ticket hashes that came
# with the MessagePack records); the indexes rebuilt on restore (open/orphan tickets), the change tracker and the
# client models (contract objects; uptime probes) are not counted, as before.
_STATE_FIELDS = ("ledgers", "tickets", "calls", "seen", "watermarks", "now_us", "horizon_us", "stats", "decisions",
                 "_heap", "_seq", "final_tickets")


def _state_roots(engine: Engine) -> list:
    return [getattr(engine, name) for name in _STATE_FIELDS]


def _shared_ids(engine: Engine) -> set[int]:
    """Objects an engine holds whatever its size: contracts, client models (calendars, SLA objects)."""
    seen: set[int] = set()
    stack = [engine.contracts, engine.clients]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _OPAQUE):
            continue
        seen.add(id(obj))
        stack.extend(gc.get_referents(obj))
    return seen


# not followed: through them (globals, class dicts) everything in the process is reachable
_OPAQUE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.CodeType)


def deep_size(engine: Engine, breakdown: Counter | None = None) -> int:
    """sys.getsizeof summed over the engine's state, each object once, shared contract objects excluded."""
    seen = _shared_ids(engine)
    total = 0
    stack = _state_roots(engine)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _OPAQUE):
            continue
        seen.add(id(obj))
        size = sys.getsizeof(obj)
        total += size
        if breakdown is not None:
            breakdown[type(obj).__name__] += size
        stack.extend(gc.get_referents(obj))
    return total


def traced_bytes(contracts: Contracts, lines: list[bytes], **kwargs) -> int:
    """tracemalloc: bytes allocated by building the engine from `lines` and kept, minus an empty engine."""
    gc.collect()
    tracemalloc.start()
    try:
        empty = Engine(contracts)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        del empty
        engine = build_engine(contracts, lines, **kwargs)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        del engine
        return after - before
    finally:
        tracemalloc.stop()


def measure_memory(contracts: Contracts, n: int, span_us: int, trace: bool, window: bool) -> dict:
    lines = list(open_ticket_lines(contracts, n, span_us=span_us))
    out: dict = {"tickets": n, "span_hours": span_us / HOUR_US}
    t = time.perf_counter()
    engine = build_engine(contracts, lines)
    out["build_s"] = round(time.perf_counter() - t, 2)
    empty = deep_size(Engine(contracts))
    breakdown: Counter = Counter()
    out["deep_bytes"] = round((deep_size(engine, breakdown) - empty) / n)
    out["deep_top_types"] = {k: round(v / n) for k, v in breakdown.most_common(8)}
    clocks = [c for item in engine.tickets.values() for c in item.state.clocks]
    out["open_tickets"] = sum(1 for item in engine.tickets.values() if not item.state.resolved)
    out["clocks"] = {"running": sum(c.good is None for c in clocks), "breached": sum(c.good is False for c in clocks)}
    t = time.perf_counter()
    blob = snapshot(engine)
    out["snapshot_s"] = round(time.perf_counter() - t, 2)
    out["snapshot_bytes"] = round(len(blob) / n)
    import zlib

    out["snapshot_zlib_bytes"] = round(len(zlib.compress(blob, 1)) / n)
    del engine
    gc.collect()
    t = time.perf_counter()
    restored = restore(contracts, blob)
    out["restore_s"] = round(time.perf_counter() - t, 2)
    assert len(restored.tickets) == n
    del restored, blob
    gc.collect()
    if trace:
        out["traced_bytes"] = round(traced_bytes(contracts, lines) / n)
    if window:  # the same tickets, all within the allowed lateness: their events are still held
        recent = list(open_ticket_lines(contracts, n, span_us=HOUR_US // 2))
        out["window_traced_bytes"] = round(traced_bytes(contracts, recent) / n)
    return out


def cmd_memory(args) -> dict:
    from monitor.contracts import parse_contracts
    from monitor.gc_tuning import tune_gc

    scenarios = {"backlog": load_contracts(args.contracts), "running": parse_contracts(RUNNING_CONTRACTS)}
    tune_gc()
    results: dict[str, list] = {}
    for name in args.scenarios:
        for i, n in enumerate(args.tickets):
            res = measure_memory(scenarios[name], n, int(args.span_hours * HOUR_US), trace=n <= args.trace_max,
                                 window=i == 0)
            print(json.dumps({"scenario": name, **res}), file=sys.stderr, flush=True)
            results.setdefault(name, []).append(res)
    return {"memory": results}


# --- recovery through a real broker and worker ---------------------------------------------------------------


def _get(port: int, path: str, timeout: float = 10) -> bytes | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
            return resp.read()
    except OSError:
        return None


class Worker:
    """`python -m streams.app` with its own port and data dir (a fresh pod: state only from the changelog)."""

    def __init__(self, env: dict[str, str], workdir: Path, name: str) -> None:
        from tests.support.procs import free_port

        self.port = free_port()
        self.log_path = workdir / f"{name}.log"
        self.env = {**env, "SLAMON_METRICS_BIND": f"127.0.0.1:{self.port}",
                    "SLAMON_DATA_DIR": str(workdir / f"data-{name}")}
        self.started = time.time()
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()/kill()
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.app"], cwd=ROOT, env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def health(self) -> dict | None:
        body = _get(self.port, "/healthz", timeout=5)
        return orjson.loads(body) if body else None

    def metric(self, name: str) -> dict[int, float]:
        """Per-partition values of a pipeline metric."""
        from prometheus_client.parser import text_string_to_metric_families

        body = _get(self.port, "/metrics", timeout=120)
        out: dict[int, float] = {}
        for family in text_string_to_metric_families((body or b"").decode()):
            for s in family.samples:
                if s.name == name and "partition" in s.labels:
                    out[int(s.labels["partition"])] = s.value
        return out

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._log.close()

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._log.close()

    def restore_log_times(self) -> list[float]:
        """Wall times of the worker's 'restored snapshot' log lines."""
        times = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if "restored snapshot" in line:
                stamp = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})", line)
                if stamp:
                    times.append(datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp())
        return times

    def rebuild_log(self) -> dict[int, dict]:
        """The worker's 'partition N: rebuilt from R records (B bytes) in S s' log lines, by partition."""
        out = {}
        for m in re.finditer(r"partition (\d+): rebuilt from (\d+) records \((\d+) bytes\) in ([\d.]+)s",
                             self.log_path.read_text(errors="replace")):
            out[int(m.group(1))] = {"records": int(m.group(2)), "bytes": int(m.group(3)), "s": float(m.group(4))}
        return out


def _wait(predicate, timeout: float, what: str, worker: Worker | None = None, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker is not None and not worker.alive():
            raise RuntimeError(f"worker exited while waiting for {what}; see {worker.log_path}")
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"{what} not reached in {timeout:.0f}s")


def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def _group_empty(bootstrap: str, group: str) -> bool:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        (desc,) = admin.describe_consumer_groups([group])
        return not desc.members
    finally:
        admin.close()


def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_consumer_group_offsets(group)
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
    finally:
        admin.close()


def _produce(bootstrap: str, topic: str, lines) -> float:
    """Send keyed by client with aiokafka record batches per partition (murmur2 of the client, as the default
    partitioner): kafka-python's per-record send managed ~2k records/s on this machine."""
    import asyncio

    from aiokafka import AIOKafkaProducer

    from streams.partition_engine import designated_partition

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, max_request_size=1_048_576)
        await producer.start()
        try:
            batches: dict[int, object] = {}
            partitions: dict[str, int] = {}
            pending = []
            for line in lines:
                client = orjson.loads(line)["client"]
                partition = partitions.get(client)
                if partition is None:
                    partition = partitions[client] = designated_partition(client, PARTITIONS)
                batch = batches.get(partition) or batches.setdefault(partition, producer.create_batch())
                if batch.append(key=client.encode(), value=line, timestamp=None) is None:
                    pending.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = batches[partition] = producer.create_batch()
                    batch.append(key=client.encode(), value=line, timestamp=None)
            for partition, batch in batches.items():
                pending.append(await producer.send_batch(batch, topic, partition=partition))
            await asyncio.gather(*pending)
        finally:
            await producer.stop()

    t = time.perf_counter()
    asyncio.run(send())
    return time.perf_counter() - t


def _applied_through(worker: Worker, ends: dict[int, int]) -> bool:
    h = worker.health()
    if not h or sorted(h["engines"]) != list(range(PARTITIONS)):
        return False
    offsets = {int(p): o for p, o in h["offsets"].items()}
    return all(offsets.get(p, -1) >= ends[p] - 1 for p in range(PARTITIONS) if ends[p] > 0)


def _changelog_breakdown(settings, contracts_path: str) -> dict:
    """Read the snapshots topic as a new owner does (`read_checkpoints`) and rebuild each partition in-process
    (`restore_partition`): where the time goes. `records_read` counts every record in the topic (older values
    and tombstones not compacted away yet); `records_per_partition` the newest value per key, what is rebuilt."""
    from streams.checkpoint import read_checkpoints, snapshot_topic_name
    from streams.state_records import restore_partition

    contracts = load_contracts(contracts_path)
    read = [0]
    t = time.perf_counter()
    stores = read_checkpoints(settings, snapshot_topic_name(settings), list(range(PARTITIONS)),
                              on_progress=lambda n: read.__setitem__(0, read[0] + n))
    read_s = time.perf_counter() - t
    records, sizes, rebuild = {}, {}, {}
    for p, store in stores.items():
        t = time.perf_counter()
        pe = restore_partition(p, contracts, store, source_topic=settings.topics.events, num_partitions=PARTITIONS)
        if pe is None:
            continue  # a partition none of the clients hashes to: never checkpointed
        rebuild[p] = time.perf_counter() - t
        records[p] = len(store)
        sizes[p] = sum(len(k) + len(v) for k, v in store.items())
        del pe
        gc.collect()
    return {"read_s": round(read_s, 2), "records_read": read[0], "records_per_partition": records,
            "bytes_per_partition": sizes,
            "rebuild_s_per_partition": {p: round(x, 2) for p, x in rebuild.items()},
            "rebuild_s_total": round(sum(rebuild.values()), 2)}


def _timed_restart(w: Worker, ends: dict[int, int], timeout: float) -> dict:
    """Seconds from the process start until its web server answers, each partition is restored, and the
    events produced before the start are applied; then the worker is killed."""
    try:
        web = _wait(lambda: w.health() is not None and time.time(), timeout, "web server", w)
        applying = _wait(lambda: _applied_through(w, ends) and time.time(), timeout, "restored and applying", w)
        return {"web_up_s": round(web - w.started, 1), "recovered_and_applying_s": round(applying - w.started, 1),
                "partitions_restored_s": [round(x - w.started, 1) for x in w.restore_log_times()],
                "rebuilt": w.rebuild_log(),
                "rss_mb": round(_rss_mb(w.proc.pid))}
    finally:
        w.kill()


def cmd_recovery(args) -> dict:
    from streams.topics import ensure_topics

    workdir = Path(tempfile.mkdtemp(prefix="slamon-state-scale-"))
    bootstrap, broker = broker_for(args.bootstrap, workdir)
    tag = uuid.uuid4().hex[:6]
    app_id = f"scale-{tag}"
    settings = bench_settings(bootstrap, app_id).model_copy(update={"app_id": app_id})  # as the worker's env
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SLAMON_")},
        "PYTHONPATH": str(ROOT), "SLAMON_KAFKA__BOOTSTRAP_SERVERS": bootstrap, "SLAMON_APP_ID": app_id,
        "SLAMON_TOPICS__EVENTS": settings.topics.events, "SLAMON_TOPICS__DEADLETTER": settings.topics.deadletter,
        "SLAMON_TOPICS__SLA_EVENTS": settings.topics.sla_events, "SLAMON_TOPICS__PARTITIONS": str(PARTITIONS),
        "SLAMON_CONTRACTS": args.contracts, "SLAMON_CLOCK": "event", "SLAMON_CHECKPOINT_INTERVAL": "5",
        "SLAMON_SESSION_TIMEOUT": str(args.session_timeout), "SLAMON_LOG_LEVEL": "info",
    }
    out: dict = {"tickets": args.tickets, "partitions": PARTITIONS, "workdir": str(workdir),
                 "session_timeout_s": args.session_timeout}
    workers: list[Worker] = []
    try:
        contracts = load_contracts(args.contracts)
        ensure_topics(settings)
        span = int(args.span_hours * HOUR_US)
        out["produce_s"] = round(_produce(bootstrap, settings.topics.events,
                                          open_ticket_lines(contracts, args.tickets, span_us=span)), 1)
        print("produced", out["produce_s"], file=sys.stderr, flush=True)
        ends = _end_offsets(bootstrap, settings.topics.events)

        first = Worker(env, workdir, "first")
        workers.append(first)
        t = time.perf_counter()
        _wait(lambda: _applied_through(first, ends), args.timeout, "all events applied", first, every=1.0)
        out["first_apply_s"] = round(time.perf_counter() - t, 1)
        print("applied", out["first_apply_s"], file=sys.stderr, flush=True)
        t = time.perf_counter()
        # the commit is capped at the newest stored snapshot: a commit at the end means a snapshot of it all
        _wait(lambda: all(_committed(bootstrap, app_id, settings.topics.events).get(p, -1) >= ends[p]
                          for p in range(PARTITIONS) if ends[p] > 0),
              args.timeout, "a stored snapshot of every event", first, every=2.0)
        out["first_checkpoint_wait_s"] = round(time.perf_counter() - t, 1)
        out["first_checkpoint_bytes"] = first.metric("slamon_checkpoint_size_bytes")
        out["first_rss_mb"] = round(_rss_mb(first.proc.pid))
        first.kill()

        runs = []
        for i in range(args.restarts):
            _wait(lambda: _group_empty(bootstrap, app_id), 120, "the consumer group to be empty", every=1.0)
            _produce(bootstrap, settings.topics.events, open_ticket_lines(contracts, 6, span_us=60_000_000,
                                                                    tag=f"R{i}-"))
            ends = _end_offsets(bootstrap, settings.topics.events)
            workers.append(Worker(env, workdir, f"restart{i}"))
            run = _timed_restart(workers[-1], ends, args.timeout)
            print(json.dumps(run), file=sys.stderr, flush=True)
            runs.append(run)
        out["restarts"] = runs
        out["recovered_and_applying_s_median"] = statistics.median(r["recovered_and_applying_s"] for r in runs)
        breakdowns = [_changelog_breakdown(settings, args.contracts) for _ in range(args.restarts)]
        out["breakdown"] = breakdowns
        out["breakdown_median"] = {
            "read_s": statistics.median(b["read_s"] for b in breakdowns),
            "rebuild_s_total": statistics.median(b["rebuild_s_total"] for b in breakdowns),
        }
    finally:
        for w in workers:  # a worker left running by an error (a timeout) would outlive the broker
            if w.alive():
                w.kill()
        if broker is not None:
            broker.stop()
    return out


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--contracts", default=str(CONTRACTS))
    ap.add_argument("--span-hours", type=float, default=168.0)
    sub = ap.add_subparsers(dest="cmd", required=True)
    mem = sub.add_parser("memory")
    mem.add_argument("--tickets", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    mem.add_argument("--trace-max", type=int, default=100_000, help="tracemalloc up to this N (slow)")
    mem.add_argument("--scenarios", nargs="+", default=["backlog", "running"], choices=("backlog", "running"))
    rec = sub.add_parser("recovery")
    rec.add_argument("--tickets", type=int, default=1_000_000)
    rec.add_argument("--restarts", type=int, default=3)
    rec.add_argument("--bootstrap", help="use this broker instead of starting one")
    rec.add_argument("--session-timeout", type=float, default=30.0)
    rec.add_argument("--timeout", type=float, default=3600.0)
    args = ap.parse_args()
    result = cmd_memory(args) if args.cmd == "memory" else cmd_recovery(args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
