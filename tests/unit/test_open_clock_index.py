"""The open-clock index (monitor/open_clock_index.py) answers what a pass over every open clock answers
(`monitor.queries.scan_open_clocks`): on random ticket streams with business-hours and 24x7 clocks, waiting
states, priority changes, reopen, disorder and duplicates, asked at random instants and after each event."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.contracts import load_contracts, parse_contracts
from monitor.engine import Engine
from monitor.events import decode_event
from monitor.queries import open_clocks, scan_open_clocks
from monitor.simulation.generator import HOUR_US, GeneratorConfig, generate
from streams.partition_engine import PartitionEngine

MIN = 60_000_000
T0 = 1_767_603_600_000_000  # Monday 2026-01-05 09:00 UTC
SPANS = (15 * MIN, 30 * MIN, 60 * MIN)

CONTRACT = """
clients:
  acme:
    timezone: Europe/Berlin
    calendar: {hours: {mon-fri: "09:00-17:00"}, holidays: {dates: [2026-01-06]}}
    slas:
      - {name: fr, kind: first_response, time: business, target: {P1: 1h, P2: 4h, P3: 1d}, objective: 0.9,
         stages: [0.5, 0.75, 0.9]}
      - {name: res, kind: resolution, target: {P1: 4h, P2: 1d, P3: 2d}, objective: 0.9, time: calendar,
         pause_statuses: [waiting_customer], stages: [0.25, 0.8]}
  globex:
    timezone: UTC
    slas:
      - {name: res, kind: resolution, target: {P1: 2h, P2: 8h, P3: 1d}, objective: 0.95, time: calendar}
"""


def as_dict(result) -> dict:
    return {k: (v.count, {p: n for p, n in v.by_priority.items() if n}, dict(v.stages), dict(v.due),
                v.next_deadline_us) for k, v in result.items()}


def same(engine: Engine, at: int, clients=None) -> None:
    assert as_dict(open_clocks(engine, at, SPANS, clients)) == as_dict(scan_open_clocks(engine, at, SPANS, clients))


def _iso(t: int) -> str:
    return datetime.fromtimestamp(t / 1e6, UTC).isoformat()


TYPES = ["agent_reply", "customer_reply", "priority", "status", "status", "resolved", "reopened", "closed"]

step = st.tuples(
    st.sampled_from(["acme", "globex"]),
    st.integers(0, 7),  # ticket
    st.sampled_from(["created", "created", *TYPES]),
    st.integers(0, 36 * 60),  # minutes after T0
    st.sampled_from(["P1", "P2", "P3"]),
    st.sampled_from(["waiting_customer", "open", "in_progress"]),
    st.integers(0, 600),  # minutes from the event to the question asked after it
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=60), st.booleans())
def test_index_equals_a_scan_after_every_event(steps, duplicate):
    contracts = parse_contracts(CONTRACT)
    engine = Engine(contracts)
    for n, (client, tid, kind, minute, priority, status, ask) in enumerate(steps):
        ts = T0 + minute * MIN
        raw = {"event_id": f"e{n}", "kind": "ticket", "client": client, "ts": _iso(ts), "ticket_id": f"T{tid}",
               "type": kind}
        if kind in ("created", "priority"):
            raw["priority"] = priority
        if kind == "status":
            raw["status"] = status
        for _ in range(2 if duplicate and n % 3 == 0 else 1):
            event = decode_event(orjson.dumps(raw), contracts.clients)
            if not hasattr(event, "reason"):
                engine.ingest(event)
        at = max(engine.now_us, ts + ask * MIN)
        if n % 2:
            engine.advance_to(at)  # deadlines up to `at` decided, as a scrape does first
        same(engine, at)
        same(engine, at, clients=[client])


def test_index_equals_a_scan_on_generated_traffic():
    """40 hours of the example contracts' traffic, out of order and with duplicates, asked every 7 minutes
    (business-hours and 24x7 clocks, waiting states, priority changes, reopen); the engine compacts on the way."""
    contracts = load_contracts("examples/contracts.yaml")
    cfg = GeneratorConfig(start_us=T0, duration_us=40 * HOUR_US, seed=5, disorder_us=2 * MIN, duplicate_rate=0.01,
                          keep_entity_order=False)
    pe = PartitionEngine(0, contracts)
    rng = random.Random(1)
    at, compared = None, 0
    for offset, event in enumerate(generate(contracts, cfg)):
        line = orjson.dumps(event)
        t = int(datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp() * 1e6)
        at = at if at is not None else (t // (7 * MIN) + 1) * 7 * MIN
        while t > at:
            pe.advance(at)
            same(pe.engine, at)
            same(pe.engine, at + rng.randint(0, 300) * MIN)  # a question ahead of the engine's clock
            compared += 1
            at += 7 * MIN
        pe.process(line, offset)
        if offset % 20_000 == 0:
            pe.engine.compact()
    assert compared > 300
    assert pe.engine.open_tickets, "the history leaves clocks open"


def test_an_index_made_late_and_a_merge_see_every_ticket():
    contracts = load_contracts("examples/contracts.yaml")
    events = list(generate(contracts, GeneratorConfig(start_us=T0, duration_us=10 * HOUR_US, seed=3)))
    halves = [Engine(contracts), Engine(contracts)]
    for event in events:
        ev = decode_event(orjson.dumps(event), contracts.clients)
        key = getattr(ev, "ticket_id", None) or getattr(ev, "call_id", None) or ev.client
        halves[hash(key) % 2].ingest(ev)
    at = max(h.now_us for h in halves)
    same(halves[0], at)  # the index of halves[0] exists before the merge
    halves[0].merge(halves[1])
    same(halves[0], at)
    same(halves[0], at + 3 * HOUR_US)


def test_a_change_the_engine_did_not_announce_is_repaired_at_the_next_one():
    contracts = parse_contracts(CONTRACT)
    engine = Engine(contracts)
    for n, t in enumerate(("T1", "T2")):
        engine.ingest(decode_event(orjson.dumps({"event_id": f"e{n}", "kind": "ticket", "client": "acme",
                                                 "ts": _iso(T0), "ticket_id": t, "type": "created",
                                                 "priority": "P2"}), contracts.clients))
    same(engine, T0 + MIN)
    clock = engine.tickets[("acme", "T1")].state.clocks[0]
    clock.deadline_us += 7 * MIN  # behind the index's back (a bug this safety net is for)
    engine.open_index.before_change(("acme", "T1"))  # the next announced change finds its entries wrong
    same(engine, T0 + MIN)
    assert engine.open_index.rebuilds == 1
