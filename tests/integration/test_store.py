"""The SLA record end to end: a real broker, a worker (`python -m streams.app`), and two stores
(`python -m store run`), one on SQLite and one on a throwaway PostgreSQL cluster, reading the worker's SLA-events
topic while the generator's traffic (about 7.8k events, four clients, four partitions) flows. Faults mid-stream:
kill -9 of the worker (its unconfirmed SLA events are published again: duplicates in the topic), kill -9 of each
store, a PostgreSQL restart, and the SQLite file locked longer than the store waits for it. Afterwards each store's
records equal the replay's field by field, and the rows in force are the engine's decisions, none twice.

Prints a `STORE {...}` line with the figures (`pytest -rP`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from monitor.engine import Engine
from monitor.events import Rejection, decode_event
from monitor.report import build_report
from store import pgcluster
from store.db import open_store
from store.report import records_from_store
from streams.producer import produce
from tests.support.pipeline import ROOT, Pipeline, build_stream, read_topic
from tests.unit.test_store import assert_aggregates_match_rows, assert_same_records

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def pg():
    why = pgcluster.missing()
    if why:
        if os.environ.get("SLAMON_REQUIRE_SERVICES", "").strip() not in ("", "0"):
            pytest.fail(f"{why} [SLAMON_REQUIRE_SERVICES is set]", pytrace=False)
        pytest.skip(why)
    cluster = pgcluster.PgCluster().start()
    yield cluster
    cluster.destroy()


class StoreProc:
    """`python -m store run` as a subprocess with the pipeline's settings."""

    def __init__(self, env: dict[str, str], url: str, group: str, log: Path) -> None:
        self.env, self.url, self.group, self.log = env, url, group, log
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> StoreProc:
        self._fh = open(self.log, "ab")  # noqa: SIM115 - closed in kill9/stop
        self.proc = subprocess.Popen([sys.executable, "-m", "store", "run", "--url", self.url, "--group", self.group,
                                      "--batch", "500"], cwd=ROOT, env=self.env, stdout=self._fh,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1
        return self

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._fh.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self._fh.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def sla_topic_ends(p: Pipeline) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=p.settings.kafka.servers)
    try:
        topic = p.settings.topics.sla_events
        parts = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, q) for q in parts])
        return {tp.partition: off for tp, off in ends.items() if off}
    finally:
        consumer.close()


def wait_stable_ends(p: Pipeline, quiet: float = 3.0, timeout: float = 60) -> dict[int, int]:
    """The SLA-events topic's end offsets once they stopped moving (the worker has published everything)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        ends = sla_topic_ends(p)
        if ends != last:
            last, since = ends, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return ends
        time.sleep(0.5)
    raise AssertionError(f"the SLA-events topic keeps growing: {last}")


def wait_store_reached(proc: StoreProc, topic: str, ends: dict[int, int], timeout: float = 120) -> float:
    t0 = time.monotonic()
    offsets: dict = {}
    while time.monotonic() - t0 < timeout:
        assert proc.alive(), f"store died:\n{proc.tail()}"
        with contextlib.suppress(Exception), open_store(proc.url) as store:
            offsets = store.offsets(topic)
            if all(offsets.get(q, 0) >= off for q, off in ends.items()):
                return time.monotonic() - t0
        time.sleep(0.5)
    raise AssertionError(f"store at {proc.url} at {offsets}, topic ends {ends}\n{proc.tail()}")


def republish_tails(p: Pipeline, topic: str, ends: dict[int, int], n: int) -> None:
    from kafka import KafkaProducer

    records = read_topic(p.settings, topic, sum(ends.values()))
    producer = KafkaProducer(bootstrap_servers=p.settings.kafka.servers)
    try:
        for part in sorted(ends):
            tail = sorted((r for r in records if r.partition == part), key=lambda r: r.offset)[-n:]
            for r in tail:
                producer.send(topic, value=r.value, key=r.key, partition=part, headers=list(r.headers or []))
        producer.flush(30)
    finally:
        producer.close()


def decisions_in_force(lines: list[bytes], contracts, at: int) -> Counter:
    engine = Engine(contracts, keep_decisions=True)
    for line in lines:
        event = decode_event(line, contracts.clients)
        if not isinstance(event, Rejection):
            engine.ingest(event)
    engine.advance_to(at)
    live: Counter = Counter()
    for client, c, sign in engine.decisions:
        if c.item is not None:
            live[(client, c.sla, c.item, c.at_us, int(c.good), int(c.bad))] += sign
    return +live


def test_store_kill9_and_database_outages_equal_replay(kafka_broker, pg, tmp_path):
    import psycopg

    p = Pipeline(kafka_broker.bootstrap, tmp_path / "pipeline")
    try:
        lines, end, _ = build_stream(p.contracts)
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE it_store")
        env = {**p.env_base, "SLAMON_LOG_LEVEL": "info"}
        sqlite_url = f"sqlite:///{tmp_path}/record.db"
        pg_url = pg.url.rsplit("/", 1)[0] + "/it_store"
        stores = {"sqlite": StoreProc(env, sqlite_url, f"{p.env_base['SLAMON_APP_ID']}-store-sqlite",
                                      tmp_path / "store-sqlite.log"),
                  "postgresql": StoreProc(env, pg_url, f"{p.env_base['SLAMON_APP_ID']}-store-pg",
                                          tmp_path / "store-pg.log")}
        worker = p.worker("w0").start()
        p.wait_assigned([worker])
        for s in stores.values():
            s.start()

        sent = {}
        sender = threading.Thread(target=lambda: sent.update(r=produce(p.settings, lines, rate=len(lines) / 24)),
                                  daemon=True)
        sender.start()
        faults: dict[str, float] = {}
        time.sleep(5)
        worker.kill9()  # its unconfirmed SLA events are published again by the next one: duplicates in the topic
        worker = p.worker("w1").start()
        time.sleep(3)
        stores["sqlite"].kill9()
        stores["postgresql"].kill9()
        time.sleep(1)
        stores["sqlite"].start()
        stores["postgresql"].start()
        time.sleep(3)
        t0 = time.monotonic()
        pg.stop("fast")  # the database goes away under a running store
        time.sleep(4)
        pg.start()
        faults["pg_down_seconds"] = time.monotonic() - t0
        lock = sqlite3.connect(str(tmp_path / "record.db"), timeout=30, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # the store cannot write: it waits (10 s), fails, retries
        time.sleep(13)
        lock.execute("ROLLBACK")
        lock.close()
        assert sender.is_alive() or sent, "the producer"
        sender.join(120)
        assert sent["r"].failed == 0, sent["r"].errors
        p.count += sent["r"].sent
        p.wait_caught_up([worker], timeout=150)
        ends = wait_stable_ends(p)
        topic = p.settings.topics.sla_events
        # a worker that crashed before its outputs were confirmed publishes them again: the tail of each partition
        # twice (the kill above may or may not leave such a tail, depending on where it fell between checkpoints)
        republish_tails(p, topic, ends, 50)
        ends = wait_stable_ends(p)
        caught = {name: wait_store_reached(s, topic, ends) for name, s in stores.items()}
        for s in stores.values():
            assert s.alive(), s.tail()

        engine = Engine(p.contracts)
        for line in lines:
            event = decode_event(line, p.contracts.clients)
            if not isinstance(event, Rejection):
                engine.ingest(event)
        expected = {(r.client, r.sla, r.period): r for r in build_report(engine, end) if r.kind != "uptime"}
        live = decisions_in_force(lines, p.contracts, end)
        assert max(live.values()) == 1
        figures = {"events": len(lines), "sla_records": sum(ends.values()), **faults,
                   "store_caught_up_seconds": caught}
        for name, s in stores.items():
            with open_store(s.url) as store:
                compared = assert_same_records(records_from_store(store, p.contracts, end), expected)
                rows = store.query("SELECT client, sla, item, at_us, good, bad FROM sla_decisions "
                                   "WHERE item IS NOT NULL")
                stored = Counter((c, sla, i, a, int(g), int(b)) for c, sla, i, a, g, b in rows)
                assert stored == live, name  # every decision in force once; none twice, none missing
                assert_aggregates_match_rows(store)
                stats = store.stats()
            log = s.log.read_text(errors="replace")
            figures[name] = {"records_compared": compared, "rows": len(rows), "starts": s.starts,
                             "withdrawn": stats["withdrawn_records"],
                             "redelivered_skipped": stats["redelivered_records"],
                             "outage_retries": log.count("is unavailable")}
            assert compared >= 10
        assert figures["postgresql"]["outage_retries"] >= 1, stores["postgresql"].tail()
        assert figures["sqlite"]["outage_retries"] >= 1, stores["sqlite"].tail()
        published = Counter(r.value for r in read_topic(p.settings, topic, sum(ends.values())))
        figures["topic_duplicates"] = sum(n - 1 for n in published.values())
        assert figures["topic_duplicates"] >= 50 * len(ends)
        print("STORE " + orjson.dumps(figures).decode())
    finally:
        for s in locals().get("stores", {}).values():
            s.stop()
        p.close()
