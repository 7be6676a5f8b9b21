"""Reusable pieces of the pipeline integration tests: the contracts and generated stream, worker subprocesses
(`python -m streams.app` configured by environment variables), a `Pipeline` (own topics and consumer group on a
broker), and the comparison of the workers' /metrics with the offline replay of the same events.

Used by tests/integration/test_pipeline.py and tests/integration/test_faults.py (and re-exported by
test_pipeline.py under the same names).
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from monitor.contracts import load_contracts
from monitor.events import format_us, to_us
from monitor.replay import replay_lines
from monitor.simulation.generator import GeneratorConfig, generate
from streams.config import load_settings
from streams.producer import produce
from tests.support.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 4

# Four clients whose names the default (murmur2) partitioner spreads over all four partitions.
CONTRACTS = """
allowed_lateness: 1h
clients:
  acme:
    timezone: Europe/Berlin
    slas:
      - name: first-response
        kind: first_response
        time: calendar
        target: {P1: 30m, P2: 2h, P3: 8h}
        objective: 0.9
        penalty: {monthly_fee: 1000, currency: EUR, tiers: [{below: 0.9, credit_percent: 5}]}
      - name: resolution
        kind: resolution
        time: calendar
        target: {P1: 4h, P2: 8h, P3: 24h}
        objective: 0.8
        pause_statuses: [waiting_on_customer]
  hooli:
    timezone: America/Los_Angeles
    slas:
      - name: phone-sl
        kind: service_level
        target: 0.8
        within: 20s
        period: day
      - name: asa
        kind: asa
        target: 30s
      - name: abandon-rate
        kind: abandon_rate
        target: 0.05
      - name: aht
        kind: aht
        target: 400s
      - name: csat
        kind: csat
        target: 0.8
  initech:
    timezone: America/New_York
    calendar:
      hours: {mon-fri: "08:00-18:00"}
    slas:
      - name: first-response
        kind: first_response
        time: business
        target: {P1: 1h, P2: 4h}
        objective: 0.95
      - name: portal-uptime
        kind: uptime
        service: portal
        target: 0.99
        probe_interval: 60s
  globex:
    timezone: Asia/Kolkata
    slas:
      - name: accuracy
        kind: accuracy
        target: 0.98
        period: day
      - name: csat-mean
        kind: csat
        method: mean
        target: 4.0
      - name: first-response
        kind: first_response
        time: calendar
        target: {P1: 1h, P2: 4h}
        objective: 0.9
"""

START = "2026-03-02T14:00:00+00:00"
HOURS = 8

# --- data ---------------------------------------------------------------------------------------------------


def _us(text: str) -> int:
    return to_us(datetime.fromisoformat(text))


def build_stream(contracts) -> tuple[list[bytes], int, dict[str, int]]:
    """Generated traffic (with duplicates and disorder) + junk + one closing survey per client at the same
    instant, so every partition's event clock ends at the same instant as the replay's."""
    start = _us(START)
    cfg = GeneratorConfig(start_us=start, duration_us=HOURS * 3_600_000_000, seed=11, tickets_per_hour=25,
                          calls_per_hour=90, duplicate_rate=0.01, disorder_us=60_000_000)
    lines = [orjson.dumps(e) for e in generate(contracts, cfg)]
    end = start + HOURS * 3_600_000_000
    junk = {
        "malformed": [b"{not json", b"[1, 2, 3]"],
        "unknown_client": [orjson.dumps({"event_id": "u1", "kind": "audit", "client": "nobody",
                                         "ts": format_us(start), "items": 1, "errors": 0})],
        "invalid": [orjson.dumps({"event_id": "i1", "kind": "ticket", "client": "acme", "ts": format_us(start)})],
        "oversized": [orjson.dumps({"event_id": "o1", "kind": "survey", "client": "acme", "ts": format_us(end),
                                    "score": 5, "note": "x" * 20_000})],
    }
    # junk spread through the stream; the late event goes last (hours behind its client's watermark)
    for i, line in enumerate(itertools.chain(*junk.values())):
        lines.insert((i + 1) * len(lines) // 7, line)
    late = orjson.dumps({"event_id": "late-1", "kind": "audit", "client": "globex", "ts": format_us(start),
                         "items": 10, "errors": 0})
    lines.append(late)
    for client in contracts.clients:
        lines.append(orjson.dumps({"event_id": f"close-{client}", "kind": "survey", "client": client,
                                   "ts": format_us(end), "score": 5}))
    expected = {reason: len(items) for reason, items in junk.items()}
    expected["late"] = 1
    return lines, end, expected


# --- worker processes ---------------------------------------------------------------------------------------


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.port = int(env["SLAMON_METRICS_BIND"].rsplit(":", 1)[1])
        self.proc: subprocess.Popen | None = None

    def start(self) -> Worker:
        self._fh = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.app"], cwd=ROOT, env=self.env,
                                     stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def get(self, path: str) -> bytes | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
                return resp.read()
        except OSError:
            return None

    def health(self) -> dict | None:
        body = self.get("/healthz")
        return orjson.loads(body) if body else None

    def metrics(self) -> dict[tuple[str, tuple], float]:
        body = self.get("/metrics")
        assert body is not None, f"worker on {self.port} does not answer; log: {self.tail()}"
        out = {}
        for family in text_string_to_metric_families(body.decode()):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._fh.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None:
            self._fh.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, n: int = 40) -> str:
        try:
            lines = self.log.read_bytes().decode(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(line for line in lines[-n:] if "kafka.conn" not in line)


class Pipeline:
    """Unique topics and consumer group on the shared broker, a contracts file, worker factory."""

    def __init__(self, bootstrap: str, tmp: Path, contracts_text: str = CONTRACTS, clock: str = "event",
                 **extra: str) -> None:
        tag = uuid.uuid4().hex[:8]
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "contracts.yaml").write_text(contracts_text)
        self.contracts = load_contracts(tmp / "contracts.yaml")
        self.env_base = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SLAMON_")},
            "PYTHONPATH": str(ROOT),
            "SLAMON_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "SLAMON_APP_ID": f"it-{tag}",
            "SLAMON_TOPICS__EVENTS": f"it-{tag}.events",
            "SLAMON_TOPICS__DEADLETTER": f"it-{tag}.deadletter",
            "SLAMON_TOPICS__SLA_EVENTS": f"it-{tag}.sla-events",
            "SLAMON_TOPICS__PARTITIONS": str(PARTITIONS),
            "SLAMON_CONTRACTS": str(tmp / "contracts.yaml"),
            "SLAMON_CLOCK": clock,
            "SLAMON_CHECKPOINT_INTERVAL": "1.0",
            "SLAMON_SESSION_TIMEOUT": "6",
            "SLAMON_LOG_LEVEL": "info",
            **extra,
        }
        self.env_base = {k: v for k, v in self.env_base.items() if v is not None}  # None: the worker's default
        self.settings = load_settings(None, app_id=self.env_base["SLAMON_APP_ID"],
                                      kafka={"bootstrap_servers": bootstrap}, topics={
            "events": self.env_base["SLAMON_TOPICS__EVENTS"],
            "deadletter": self.env_base["SLAMON_TOPICS__DEADLETTER"],
            "sla_events": self.env_base["SLAMON_TOPICS__SLA_EVENTS"], "partitions": PARTITIONS})
        self.workers: list[Worker] = []
        self.count = 0

    def worker(self, name: str, **extra: str) -> Worker:
        """A worker (not started) with its own metrics port and data dir; `extra`: more SLAMON_* settings."""
        env = {**self.env_base, "SLAMON_METRICS_BIND": f"127.0.0.1:{free_port()}",
               "SLAMON_DATA_DIR": str(self.tmp / f"data-{name}"), **extra}
        w = Worker(env, self.tmp / f"{name}.log")
        self.workers.append(w)
        return w

    def wait_assigned(self, workers: list[Worker], timeout: float = 90) -> dict[int, Worker]:
        """Until the workers' engines cover every partition exactly once and every worker owns some."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            owners: dict[int, list[Worker]] = defaultdict(list)
            for w in workers:
                assert w.alive(), f"worker died:\n{w.tail()}"
                h = w.health()
                for p in (h or {}).get("engines", []):
                    owners[p].append(w)
            busy = {id(v[0]) for v in owners.values()}
            if sorted(owners) == list(range(PARTITIONS)) and all(len(v) == 1 for v in owners.values()) \
                    and len(busy) == len(workers):  # every worker has joined and owns partitions
                return {p: v[0] for p, v in owners.items()}
            time.sleep(0.3)
        raise AssertionError("partitions not assigned:\n" + "\n---\n".join(w.tail() for w in workers))

    def produce(self, lines: list[bytes], rate: float | None = None) -> None:
        result = produce(self.settings, lines, rate=rate)
        assert result.failed == 0, result.errors
        self.count += result.sent

    def end_offsets(self) -> dict[int, int]:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.settings.kafka.servers)
        try:
            tps = [TopicPartition(self.settings.topics.events, p) for p in range(PARTITIONS)]
            return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
        finally:
            consumer.close()

    def committed_offsets(self) -> dict[int, int]:
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.settings.kafka.servers)
        try:
            offsets = admin.list_consumer_group_offsets(self.env_base["SLAMON_APP_ID"])
            return {tp.partition: meta.offset for tp, meta in offsets.items()
                    if tp.topic == self.settings.topics.events}
        finally:
            admin.close()

    def wait_caught_up(self, workers: list[Worker], timeout: float = 90) -> list[dict]:
        """Until every partition's owner reflects the topic's last offset; returns each worker's scrape."""
        ends = self.end_offsets()
        assert sum(ends.values()) == self.count
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            scrapes = [w.metrics() for w in workers]
            done = {}
            for m in scrapes:
                for (name, labels), value in m.items():
                    if name == "slamon_input_offset":
                        done[int(dict(labels)["partition"])] = value
            if all(done.get(p, -1) == ends[p] - 1 for p in range(PARTITIONS)):
                return scrapes
            time.sleep(0.3)
        raise AssertionError(f"not caught up: {done} vs {ends}\n" + "\n---\n".join(w.tail() for w in workers))

    def applied_offsets(self, workers: list[Worker]) -> dict[int, int]:
        """partition -> last input offset its owner (among `workers`) reflects, from /healthz."""
        out: dict[int, int] = {}
        for w in workers:
            for p, offset in ((w.health() or {}).get("offsets") or {}).items():
                out[int(p)] = max(out.get(int(p), -1), offset)
        return out

    def wait_reached(self, workers: list[Worker], targets: dict[int, int], timeout: float = 120) -> float:
        """Until the workers reflect at least `targets` (partition -> offset); returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            applied = self.applied_offsets(workers)
            if all(applied.get(p, -1) >= off for p, off in targets.items()):
                return time.monotonic() - started
            time.sleep(0.2)
        raise AssertionError(f"offsets {targets} not reached: {self.applied_offsets(workers)}\n"
                             + "\n---\n".join(w.tail() for w in workers))

    def close(self) -> None:
        for w in self.workers:
            w.stop()


def restored_offsets(worker: Worker) -> dict[int, int]:
    """partition -> offset of the snapshot the worker restored it from (its log)."""
    restored = {}
    for line in worker.log.read_text(errors="replace").splitlines():
        match = re.search(r"partition (\d+): restored snapshot at offset (-?\d+)", line)
        if match:
            restored[int(match[1])] = int(match[2])
    return restored


# --- comparisons --------------------------------------------------------------------------------------------


PER_WORKER = {"slamon_scrape_duration_seconds", "slamon_checkpoint_failures_total",
              "slamon_restore_records_total", "slamon_owned_partitions",
              "slamon_outputs_already_published_total"}  # one per process


def merged(scrapes: list[dict]) -> dict[tuple[str, tuple], float]:
    """Union of several workers' series; a series exported by two workers is an error."""
    out: dict = {}
    for m in scrapes:
        for key, value in m.items():
            if key[0] in PER_WORKER:
                continue
            assert key not in out, f"series {key} has two owners"
            out[key] = value
    return out


def series(m: dict, name: str, **labels) -> float | None:
    return m.get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))))


def assert_equals_replay(m: dict, lines: list[bytes], contracts, at_us: int, expected_rejects: dict,
                         worker_rejects: dict | None = None):
    """The workers' merged scrape `m` equals the replay of `lines` at `at_us`. `worker_rejects`: messages the
    workers received and dead-lettered for a reason the offline replay cannot see (`future`: ahead of the
    worker's wall clock); they are not in `lines`. Returns the replay."""
    worker_rejects = worker_rejects or {}
    replay = replay_lines(lines, contracts, at_us)
    current, totals = {}, defaultdict(lambda: [0.0, 0.0, 0.0])
    for rec in replay.records:
        current[(rec.client, rec.sla)] = rec
        if rec.kind != "uptime":
            t = totals[(rec.client, rec.sla)]
            t[0] += rec.decided
            t[1] += rec.good or 0
            t[2] += rec.bad or 0
    compared = 0
    for (client, sla), rec in current.items():
        labels = {"client": client, "sla": sla}
        if rec.kind == "uptime":
            assert series(m, "slamon_uptime_availability_ratio", service="portal", **labels) == rec.value
            assert series(m, "slamon_uptime_downtime_seconds", service="portal", **labels) == rec.bad
            continue
        assert series(m, "slamon_sla_period_decided", **labels) == rec.decided, (client, sla)
        if rec.good is not None:
            assert series(m, "slamon_sla_period_good", **labels) == rec.good, (client, sla)
            assert series(m, "slamon_sla_period_bad", **labels) == rec.bad, (client, sla)
        assert series(m, "slamon_sla_compliance_ratio", **labels) == rec.compliance, (client, sla)
        decided, good, bad = totals[(client, sla)]
        assert series(m, "slamon_sla_decided_total", **labels) == decided, (client, sla)
        if rec.kind not in ("asa", "aht"):
            assert series(m, "slamon_sla_good_total", **labels) == good, (client, sla)
            assert series(m, "slamon_sla_bad_total", **labels) == bad, (client, sla)
        compared += 1
    assert compared >= 10
    assert sum(v for (name, _), v in m.items() if name == "slamon_sla_decided_total") > 1000
    # pipeline: every message applied once, duplicates and rejections as in the replay
    assert sum(v for (n, _), v in m.items() if n == "slamon_events_received_total") == \
        len(lines) + sum(worker_rejects.values())
    assert sum(v for (n, _), v in m.items() if n == "slamon_events_duplicate_total") == replay.duplicates > 0
    assert sum(v for (n, _), v in m.items() if n == "slamon_events_total") == replay.accepted
    rejected = defaultdict(float)
    for (name, labels), value in m.items():
        if name == "slamon_events_rejected_total":
            rejected[dict(labels)["reason"]] += value
    assert {r: v for r, v in rejected.items() if v} == {**expected_rejects, **worker_rejects}
    assert {r: v for r, v in replay.rejected.items() if r != "orphan"} == expected_rejects
    return replay


# --- reading topics -----------------------------------------------------------------------------------------


def read_topic(settings, topic: str, count: int, *, exact: bool = True, timeout: float = 30) -> list:
    """Every record of `topic` (all partitions, from the start) once at least `count` are there."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.servers, enable_auto_commit=False)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records: list = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
            ends = consumer.end_offsets(tps)
            if len(records) >= count and all(consumer.position(tp) >= ends[tp] for tp in tps):
                break
        if exact:
            assert len(records) == count, f"{topic}: {len(records)} records, expected {count}"
        return records
    finally:
        consumer.close()
