"""The SLA record (store/): the SLA-events topic replayed into the store gives the replay's figures.

The topic is what workers publish for generated traffic (disorder, duplicate events, reopens, pauses, priority
changes) plus hand-made tickets decided, withdrawn and decided again at one instant; then records are duplicated
the way a restarted worker republishes its unconfirmed outputs, and the store is fed overlapping batches the way
Kafka redelivers after a store crash. The store's records must equal the replay's, field by field.
"""

from __future__ import annotations

import math
import os
import random
import sqlite3
import uuid
from collections import Counter

import orjson
import pytest

from monitor.contracts import parse_contracts
from monitor.engine import Engine
from monitor.events import decode_event
from monitor.report import build_report
from monitor.review.groups import ReviewEngine
from monitor.simulation.generator import GeneratorConfig, generate
from store import pgcluster
from store.db import SCHEMA_VERSION, StoreError, open_store
from store.feed import load_topic, sla_topic
from store.records import DECIDED, WITHDRAWN, net_writes, parse
from store.report import records_from_store
from tests.builders import us

CONTRACTS = """
allowed_lateness: 1h
reopen_window: 2d
clients:
  acme:
    timezone: Europe/Berlin
    calendar: {hours: {mon-fri: "08:00-18:00"}, holidays: {dates: [2026-03-04]}}
    slas:
      - {name: first-response, kind: first_response, time: business, target: {P1: 30m, P2: 2h, P3: 8h},
         objective: 0.9, penalty: {monthly_fee: 1000, currency: EUR, tiers: [{below: 0.9, credit_percent: 5}]}}
      - {name: resolution, kind: resolution, time: calendar, target: {P1: 4h, P2: 8h, P3: 24h}, objective: 0.8,
         pause_statuses: [waiting_on_customer], period: week}
      - {name: csat, kind: csat, target: 0.8, period: {rolling: 7d}}
  hooli:
    timezone: America/Los_Angeles
    slas:
      - {name: phone-sl, kind: service_level, target: 0.8, within: 20s, period: day}
      - {name: asa, kind: asa, target: 30s}
      - {name: abandon-rate, kind: abandon_rate, target: 0.05}
      - {name: aht, kind: aht, target: 400s}
      - {name: portal-uptime, kind: uptime, service: portal, target: 0.99, probe_interval: 60s}
  globex:
    timezone: Asia/Kolkata
    slas:
      - {name: accuracy, kind: accuracy, target: 0.98, period: day}
      - {name: csat-mean, kind: csat, method: mean, target: 4.0}
      - {name: first-response, kind: first_response, time: calendar, target: {P1: 1h, P2: 4h}, objective: 0.9}
      - {name: resolution, kind: resolution, time: calendar, target: {P1: 8h, P2: 24h}, objective: 0.9,
         pause_statuses: [on_hold]}
  initech:  # hand-made tickets only
    timezone: UTC
    slas:
      - {name: first-response, kind: first_response, time: calendar, target: {P1: 1h}, objective: 0.9}
      - {name: resolution, kind: resolution, time: calendar, target: {P1: 8h}, objective: 0.9,
         pause_statuses: [on_hold]}
"""

START = "2026-03-02T00:00:00+00:00"
HOURS = 72
TOPIC = "test.sla-events"


def ev(ts: str, client: str, event_id: str, **fields) -> bytes:
    return orjson.dumps({"event_id": event_id, "kind": "ticket", "client": client, "ts": ts, **fields})


def redecided_at_one_instant() -> list[bytes]:
    """initech tickets whose decisions are withdrawn and decided again at the same instant (a late pause changes a
    met resolution's elapsed time; a late reply turns a first-response breach into a met), and a reopened one."""
    return [
        ev("2026-03-03T10:00:00Z", "initech", "x1", ticket_id="X-1", type="created", priority="P1", queue="office"),
        ev("2026-03-03T10:20:00Z", "initech", "x2", ticket_id="X-1", type="agent_reply"),
        ev("2026-03-03T12:00:00Z", "initech", "x3", ticket_id="X-1", type="resolved"),
        ev("2026-03-03T11:00:00Z", "initech", "x4", ticket_id="X-1", type="status", status="on_hold"),  # late
        ev("2026-03-03T11:30:00Z", "initech", "x5", ticket_id="X-1", type="status", status="in_progress"),  # late
        ev("2026-03-03T13:00:00Z", "initech", "y1", ticket_id="Y-1", type="created", priority="P1", channel="chat"),
        ev("2026-03-03T14:00:01Z", "initech", "y2", ticket_id="Y-1", type="status", status="new"),  # decides FR
        ev("2026-03-03T13:59:00Z", "initech", "y3", ticket_id="Y-1", type="agent_reply"),  # late: FR met after all
        ev("2026-03-03T14:30:00Z", "initech", "y4", ticket_id="Y-1", type="resolved"),
        ev("2026-03-03T15:00:00Z", "initech", "y5", ticket_id="Y-1", type="reopened"),  # withdraws the met
        ev("2026-03-03T16:00:00Z", "initech", "y6", ticket_id="Y-1", type="resolved"),
    ]


@pytest.fixture(scope="module")
def pg():
    """A throwaway PostgreSQL cluster (skipped without Debian's postgresql unless SLAMON_REQUIRE_SERVICES=1)."""
    why = pgcluster.missing()
    if why:
        if os.environ.get("SLAMON_REQUIRE_SERVICES") == "1":
            pytest.fail(why)
        pytest.skip(why)
    cluster = pgcluster.PgCluster(fsync=False).start()
    yield cluster
    cluster.destroy()


def store_url(backend: str, request, tmp_path) -> str:
    """A new, empty store on `backend`: a file, or a database of its own in the test cluster."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/record.db"
    import psycopg

    cluster = request.getfixturevalue("pg")
    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return cluster.url.rsplit("/", 1)[0] + "/" + name


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="module")
def contracts():
    return parse_contracts(CONTRACTS)


@pytest.fixture(scope="module")
def lines(contracts) -> list[bytes]:
    cfg = GeneratorConfig(start_us=us(START), duration_us=HOURS * 3_600_000_000, seed=5, tickets_per_hour=12,
                          calls_per_hour=30, duplicate_rate=0.02, disorder_us=20 * 60_000_000,
                          keep_entity_order=False)
    generated = contracts.model_copy(update={"clients": {k: v for k, v in contracts.clients.items() if k != "initech"}})
    out = [orjson.dumps(e) for e in generate(generated, cfg)]
    hand = redecided_at_one_instant()
    out[len(out) // 2:len(out) // 2] = hand  # mid-stream, in their own (disordered) arrival order
    return out


@pytest.fixture(scope="module")
def replay(contracts, lines):
    engine = ReviewEngine(contracts)  # an Engine that also keeps tallies per queue and channel
    for line in lines:
        event = decode_event(line, contracts.clients)
        assert not hasattr(event, "reason"), event
        engine.ingest(event)
    at = engine.now_us
    records = {(r.client, r.sla, r.period): r for r in build_report(engine, at) if r.kind != "uptime"}
    groups = {(*key, *group): (t.decided, t.good, t.bad) for key, table in engine.groups.items()
              for group, t in table.items() if not t.empty}
    return at, records, groups


@pytest.fixture(scope="module")
def topic(contracts, lines, replay):
    return sla_topic(lines, contracts, partitions=2, at_us=replay[0])


def republished(values: list[bytes], rnd: random.Random, times: int = 3) -> list[bytes]:
    """A worker that crashed publishes again what it had not seen confirmed and re-emits what followed its
    checkpoint: a stretch of the topic appears twice in a row."""
    out = list(values)
    for _ in range(times):
        end = rnd.randrange(len(out) // 4, len(out))
        start = max(0, end - rnd.randrange(1, 400))
        out[end:end] = out[start:end]
    return out


def redelivered(store, values: list[bytes], partition: int, rnd: random.Random) -> None:
    """Batches that overlap (a store that crashed after its database commit reads some records again)."""
    pos = 0
    while pos < len(values):
        start = max(0, pos - rnd.randrange(0, 300))
        end = min(len(values), pos + rnd.randrange(1, 2000))
        store.apply(TOPIC, [parse(values[i], partition, i) for i in range(start, end)])
        pos = end


def assert_same_records(store_records, expected: dict, *, exact_floats: bool = False) -> int:
    got = {(r.client, r.sla, r.period): r for r in store_records}
    assert set(got) == set(expected)
    for key, want in expected.items():
        mine = want.as_dict(), got[key].as_dict()
        for name, value in mine[0].items():
            other = mine[1][name]
            if name in ("open", "at_risk", "breaching_soon", "next_deadline_seconds"):
                continue  # live figures of open items: not decisions, not in the store
            assert type(value) is type(other) or ({type(value), type(other)} <= {int, float} and value == other), \
                (key, name, value, other)
            if isinstance(value, float) and isinstance(other, float) and not exact_floats:
                assert math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-9), (key, name, value, other)
            elif isinstance(value, dict) and not exact_floats:
                assert value.keys() == other.keys(), (key, name)
                for k in value:
                    a, b = value[k], other[k]
                    ok = a == b or (isinstance(a, float) and isinstance(b, float) and math.isclose(a, b, rel_tol=1e-9))
                    assert ok, (key, name, k, a, b)
            else:
                assert value == other, (key, name, value, other)
    return len(expected)


def assert_aggregates_match_rows(store) -> None:
    """sla_buckets and sla_sketches, kept up to date batch by batch, equal a recount of the rows in force."""
    buckets = {k[:4]: k[4:] for k in store.query(
        "SELECT client, sla, period, bucket, n, decided, good, bad FROM sla_buckets")}
    recount = {k[:4]: k[4:] for k in store.query(
        "SELECT client, sla, period, at_us / 900000000, COUNT(*), SUM(decided), SUM(good), SUM(bad) FROM sla_decisions "
        "GROUP BY client, sla, period, at_us / 900000000")}
    assert buckets == recount
    priorities = {k[:4]: k[4:] for k in store.query(
        "SELECT client, sla, period, priority, n, decided, good, bad FROM sla_priorities")}
    assert priorities == {k[:4]: k[4:] for k in store.query(
        "SELECT client, sla, period, priority, COUNT(*), SUM(decided), SUM(good), SUM(bad) FROM sla_decisions "
        "WHERE priority IS NOT NULL GROUP BY client, sla, period, priority")}
    groups = {k[:5]: k[5:] for k in store.query(
        "SELECT client, sla, period, dimension, name, n, decided, good, bad FROM sla_groups")}
    assert groups == {k[:5]: k[5:] for col in ("queue", "channel") for k in store.query(
        f"SELECT client, sla, period, '{col}', {col}, COUNT(*), SUM(decided), SUM(good), SUM(bad) FROM sla_decisions "
        f"WHERE {col} IS NOT NULL GROUP BY client, sla, period, {col}")}
    sketches = set(store.query("SELECT client, sla, period, sketch_key, n FROM sla_sketches"))
    assert sketches == set(store.query("SELECT client, sla, period, sketch_key, COUNT(*) FROM sla_decisions "
                                       "WHERE sketch_key IS NOT NULL GROUP BY client, sla, period, sketch_key"))


def test_topic_has_redecisions_at_one_instant(topic):
    """The case that makes "keep the last record per (client, sla, item, at_us, change)" wrong is in the data."""
    seen: dict[tuple, list[str]] = {}
    for values in topic.values():
        for v in values:
            rec = orjson.loads(v)
            seen.setdefault((rec["client"], rec["sla"], rec["item"], rec["at_us"]), []).append(rec["change"])
    redecided = [k for k, changes in seen.items() if changes[:3] == [DECIDED, WITHDRAWN, DECIDED]]
    assert ("initech", "resolution", "X-1", us("2026-03-03T12:00:00+00:00")) in redecided
    assert len(redecided) >= 2
    assert any(WITHDRAWN in changes for k, changes in seen.items() if k[2] == "Y-1")


@pytest.mark.parametrize("backend", BACKENDS)
def test_duplicated_topic_replayed_into_the_store_gives_the_replays_figures(request, tmp_path, contracts, replay,
                                                                          topic, backend):
    at, expected, _ = replay
    rnd = random.Random(7)
    with open_store(store_url(backend, request, tmp_path)) as store:
        assert store.migrate() == list(range(1, SCHEMA_VERSION + 1))
        for partition, values in sorted(topic.items()):
            redelivered(store, republished(values, rnd), partition, rnd)
        stats = store.stats()
        assert stats["redelivered_records"] > 0 and stats["withdrawn_records"] > 0
        assert_aggregates_match_rows(store)
        assert assert_same_records(records_from_store(store, contracts, at), expected) >= 19
        stored = {k[:5]: k[5:] for k in store.query(  # the review's tables by queue and channel
            "SELECT client, sla, period, dimension, name, decided, good, bad FROM sla_groups "
            "WHERE period <> 'rolling'")}
        assert stored == replay[2] and ("initech", "resolution", "2026-03", "queue", "office") in stored
        assert ("initech", "first-response", "2026-03", "channel", "chat") in stored


def test_every_decision_once(tmp_path, contracts, lines, replay, topic):
    """The rows in force are the engine's decisions: one per (client, sla, item), none twice, none missing."""
    engine = Engine(contracts, keep_decisions=True)
    for line in lines:
        engine.ingest(decode_event(line, contracts.clients))
    engine.advance_to(replay[0])
    live: Counter = Counter()
    for client, c, sign in engine.decisions:
        live[(client, c.sla, c.item, c.at_us, c.good, c.bad)] += sign
    live = +live
    with open_store(f"sqlite:///{tmp_path}/record.db") as store:
        store.migrate()
        load_topic(store, TOPIC, {p: republished(v, random.Random(p)) for p, v in topic.items()}, batch=777)
        rows = store.query("SELECT client, sla, item, at_us, good, bad FROM sla_decisions WHERE item IS NOT NULL")
    stored = Counter((c, s, i, a, int(g), int(b)) for c, s, i, a, g, b in rows)
    assert max(live.values()) == 1 and stored == Counter({(c, s, i, a, int(g), int(b)): n
                                                          for (c, s, i, a, g, b), n in live.items() if i is not None})


def test_net_writes_follow_topic_order():
    def change(kind, at, n):
        return parse(orjson.dumps({"client": "a", "sla": "s", "item": "T", "at_us": at, "outcome": "good",
                                   "change": kind, "kind": "resolution", "period": "2026-03", "decided": 1,
                                   "good": 1, "bad": 0, "total": 0.0, "sample": 1.0}), 0, n)
    up, down, withdrawn = net_writes([change(DECIDED, 5, 0), change(WITHDRAWN, 5, 1), change(DECIDED, 5, 2)])
    assert [r[6] for r in up] == [5] and down == [] and len(withdrawn) == 1
    up, down, withdrawn = net_writes([change(DECIDED, 5, 0), change(WITHDRAWN, 5, 1)])
    assert up == [] and down == [("a", "s", "T")]
    up, down, _ = net_writes([change(DECIDED, 5, 0), change(WITHDRAWN, 5, 1), change(DECIDED, 9, 2),
                              change(DECIDED, 9, 3)])
    assert [r[6] for r in up] == [9] and down == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_offsets_commit_with_the_rows(request, tmp_path, backend):
    """A batch that fails inside its transaction leaves neither rows nor offsets: the batch is read again."""
    def rec(n):
        return orjson.dumps({"client": "a", "sla": "s", "item": f"T{n}", "at_us": n, "outcome": "good",
                             "change": DECIDED, "kind": "resolution", "period": "1970-01", "decided": 1, "good": 1,
                             "bad": 0, "total": 0.0, "sample": 1.0})
    with open_store(store_url(backend, request, tmp_path)) as store:
        store.migrate()
        store.apply(TOPIC, [parse(rec(n), 0, n) for n in range(10)])
        assert store.offsets(TOPIC) == {0: 10} and store.count() == 10
        bad = [parse(rec(n), 0, n) for n in range(10, 20)]
        bad[5].row = (*bad[5].row[:4], None, *bad[5].row[5:])  # kind NOT NULL: fails mid-batch
        with pytest.raises((sqlite3.IntegrityError, _pg_integrity_error())):
            store.apply(TOPIC, bad)
        assert store.offsets(TOPIC) == {0: 10} and store.count() == 10
        applied = store.apply(TOPIC, [parse(rec(n), 0, n) for n in range(5, 20)])
        assert (applied.decided, applied.redelivered) == (10, 5) and store.count() == 20
        with pytest.raises(StoreError, match="records the topic"):
            store.apply("another.topic", [parse(rec(1), 0, 1)])


def _pg_integrity_error():
    import psycopg

    return psycopg.IntegrityError


@pytest.mark.parametrize("backend", BACKENDS)
def test_schema_is_versioned_and_migrates(request, tmp_path, backend):
    with open_store(store_url(backend, request, tmp_path)) as store:
        assert store.version() == 0
        with pytest.raises(StoreError, match="schema version 0") as err:
            store.check_schema()
        assert "slamon store migrate" in err.value.hint
        assert store.migrate(target=2) == [1, 2]
        assert store.version() == 2
        rows = [parse(orjson.dumps({  # rows a version-2 store holds
            "client": "a", "sla": "s", "item": f"T{n}", "at_us": n * 600_000_000, "outcome": "good", "change": DECIDED,
            "kind": "resolution", "period": "1970-01", "decided": 1, "good": n % 2, "bad": 1 - n % 2, "total": 0.0,
            "sample": float(n), "queue": f"q{n % 3}" if n % 5 else None, "channel": "web" if n % 2 else None}), 0,
            n).row for n in range(50)]
        with store.transaction() as cur:
            cur.executemany(f"INSERT INTO sla_decisions VALUES ({', '.join([store.p] * len(rows[0]))})", rows)
        assert store.migrate() == list(range(3, SCHEMA_VERSION + 1)) and store.migrate() == []
        assert store.query("SELECT SUM(n), SUM(good) FROM sla_buckets") == [(50, 25.0)]  # backfilled by version 3
        assert store.query("SELECT SUM(n) FROM sla_groups WHERE dimension = 'queue'") == [(40,)]  # and version 5
        assert_aggregates_match_rows(store)
        store.check_schema()
        store.query("SELECT 1")
        with store.transaction() as cur:
            cur.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', 'x')")
        with pytest.raises(StoreError, match="knows up to") as err:
            store.migrate()
        assert "upgrade slamon" in err.value.hint


@pytest.mark.parametrize("backend", BACKENDS)
def test_retention_is_event_time(request, tmp_path, backend):
    day = 86_400_000_000

    def rec(n, at):
        return orjson.dumps({"client": "a", "sla": "s", "item": f"T{n}", "at_us": at, "outcome": "good",
                             "change": DECIDED, "kind": "resolution", "period": "x", "decided": 1, "good": 1,
                             "bad": 0, "total": 0.0, "sample": 1.0, "queue": f"q{n % 2}", "channel": "web"})
    with open_store(store_url(backend, request, tmp_path)) as store:
        store.migrate()
        store.apply(TOPIC, [parse(rec(n, n * day), 0, n) for n in range(100)])
        assert store.prune(None) == 0
        assert store.prune(30 * day) == 69  # the newest is day 99: days 0..68 are older than 30 days
        assert store.count() == 31 and store.stats()["pruned_rows"] == 69
        assert_aggregates_match_rows(store)
