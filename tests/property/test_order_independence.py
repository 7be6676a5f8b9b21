"""Property tests: arrival order within the allowed lateness, duplicates and key-splitting never change
the report (spec section 1: "a repeated id is counted once"; out-of-order within lateness = sorted)."""

from __future__ import annotations

import random
import zlib

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.contracts import parse_contracts
from monitor.engine import Engine
from monitor.engine_state import restore, snapshot
from monitor.events import decode_event, format_us, to_us
from monitor.report import build_report

CONTRACT = parse_contracts("""
allowed_lateness: 1h
clients:
  acme:
    timezone: Europe/Berlin
    calendar: {hours: {mon-fri: "08:00-18:00"}}
    slas:
      - {name: fr, kind: first_response, target: {P1: 30m, P2: 2h}, objective: 0.9}
      - {name: res, kind: resolution, target: {P1: 4h, P2: 1d}, objective: 0.9, time: calendar,
         pause_statuses: [waiting], period: day}
      - {name: sl, kind: service_level, target: 0.8, within: 20s}
      - {name: asa, kind: asa, target: 30s}
      - {name: ab, kind: abandon_rate, target: 0.1, period: {rolling: 2h}}
      - {name: aht, kind: aht, target: 300s}
      - {name: up, kind: uptime, target: 0.99, service: portal, probe_interval: 60s}
      - {name: csat, kind: csat, target: 0.8}
      - {name: acc, kind: accuracy, target: 0.98}
  globex:
    timezone: America/New_York
    slas:
      - {name: fr, kind: first_response, target: {P1: 15m}, objective: 0.95, time: calendar}
      - {name: sl, kind: service_level, target: 0.9, within: 10s, abandons: ignore}
""")
START = to_us(__import__("datetime").datetime.fromisoformat("2026-11-02T07:30:00+01:00"))
MIN = 60_000_000
TICKET_STEPS = ["agent_reply", "customer_reply", "status:waiting", "status:open", "priority:P1",
                "priority:P2", "resolved", "reopened", "closed"]


def scenario(seed: int) -> list[dict]:
    """A few hours of mixed traffic with distinct timestamps per item (ties apply in arrival order)."""
    rnd = random.Random(seed)
    events: list[dict] = []
    n = 0

    def emit(kind: str, t: int, client: str, **fields) -> None:
        nonlocal n
        n += 1
        events.append({"event_id": f"{seed}-{n}", "kind": kind, "client": client, "ts": format_us(t), **fields})

    for i in range(rnd.randint(1, 12)):
        client = rnd.choice(["acme", "globex"])
        t = START + rnd.randint(0, 240) * MIN
        emit("ticket", t, client, ticket_id=f"T{i}", type="created", priority=rnd.choice(["P1", "P2"]))
        for step in rnd.sample(TICKET_STEPS, rnd.randint(0, 5)):
            t += rnd.randint(1, 90) * MIN
            kind, _, value = step.partition(":")
            extra = {"status": value} if kind == "status" else {"priority": value} if kind == "priority" else {}
            emit("ticket", t, client, ticket_id=f"T{i}", type=kind, **extra)
    for i in range(rnd.randint(0, 15)):
        client = rnd.choice(["acme", "globex"])
        t = START + rnd.randint(0, 300) * MIN + rnd.randint(0, 59) * 1_000_000
        emit("call", t, client, call_id=f"C{i}", queue="q", type="offered")
        t += rnd.randint(1, 60) * 1_000_000
        emit("call", t, client, call_id=f"C{i}", queue="q", type=rnd.choice(["answered", "abandoned"]))
        if rnd.random() < 0.5:
            emit("call", t + rnd.randint(10, 600) * 1_000_000, client, call_id=f"C{i}", queue="q",
                 type="ended", wrapup_seconds=rnd.randint(0, 60))
    probe_times = sorted(rnd.sample(range(0, 300), rnd.randint(0, 20)))
    for k in probe_times:
        emit("probe", START + k * MIN, "acme", service="portal", status=rnd.choice(["up", "up", "down"]))
    for _ in range(rnd.randint(0, 5)):
        emit("survey", START + rnd.randint(0, 300) * MIN, "acme", score=rnd.randint(1, 5))
    for _ in range(rnd.randint(0, 3)):
        items = rnd.randint(1, 100)
        emit("audit", START + rnd.randint(0, 300) * MIN, "acme", items=items, errors=rnd.randint(0, items))
    return events


def feed(engine: Engine, events: list[dict]) -> Engine:
    for d in events:
        event = decode_event(orjson.dumps(d), CONTRACT.clients)
        assert engine.ingest(event) is None, d
    return engine


def report(engine: Engine, at: int) -> list[dict]:
    check_ticket_index(engine)
    rows = []
    for r in build_report(engine, at):
        d = r.as_dict()
        rows.append({k: _round(v) for k, v in d.items()})
    return rows


def check_ticket_index(engine: Engine) -> None:
    """The engine's open/orphan ticket sets (what reports and scrapes walk) equal a walk over every ticket."""
    tickets = engine.tickets.items()
    assert engine.open_tickets == {k for k, i in tickets if any(c.good is None for c in i.state.clocks)}
    assert engine.orphan_tickets == {k for k, i in tickets if i.state.created_us is None or i.state.orphans}


def _round(v):
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    return v


def in_order(events: list[dict]) -> list[dict]:
    return sorted(events, key=lambda d: d["ts"])  # stable: same-ts events keep their order


def report_instant(events: list[dict]) -> int:
    return max((to_us(__import__("datetime").datetime.fromisoformat(d["ts"])) for d in events), default=START)


def disorder(events: list[dict], rnd: random.Random, lateness_us: int) -> list[dict]:
    """Arrival = event time + a delay below the lateness: every event arrives within its lateness.
    Events of one item with equal delays keep their relative order (ties apply in arrival order)."""
    keyed = [(to_us(__import__("datetime").datetime.fromisoformat(d["ts"])) + rnd.randint(0, lateness_us), i, d)
             for i, d in enumerate(events)]
    return [d for _, _, d in sorted(keyed, key=lambda x: (x[0], x[1]))]


PROFILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROFILE
@given(seed=st.integers(0, 10_000), shuffle=st.randoms(use_true_random=False))
def test_arrival_order_within_lateness_never_changes_the_report(seed, shuffle):
    events = in_order(scenario(seed))
    at = report_instant(events)
    expected = report(feed(Engine(CONTRACT), events), at)
    got = report(feed(Engine(CONTRACT), disorder(events, shuffle, 59 * MIN)), at)
    assert got == expected


@PROFILE
@given(seed=st.integers(0, 10_000), pick=st.randoms(use_true_random=False))
def test_duplicates_never_change_the_report(seed, pick):
    events = in_order(scenario(seed))
    at = report_instant(events)
    expected = report(feed(Engine(CONTRACT), events), at)
    doubled = list(events)
    for d in pick.sample(events, min(len(events), pick.randint(1, 10))):
        doubled.insert(pick.randint(doubled.index(d), len(doubled)), dict(d))
    engine = feed(Engine(CONTRACT), doubled)
    assert report(engine, at) == expected
    assert engine.stats.duplicates == len(doubled) - len(events)


def item_key(d: dict) -> str:
    return d["client"] + "/" + (d.get("ticket_id") or d.get("call_id") or d.get("service") or d["event_id"])


@PROFILE
@given(seed=st.integers(0, 10_000), parts=st.integers(2, 4), salt=st.integers(0, 1000))
def test_splitting_by_key_and_merging_states_gives_the_same_report(seed, parts, salt):
    events = in_order(scenario(seed))
    at = report_instant(events)
    expected = report(feed(Engine(CONTRACT), events), at)
    engines = [Engine(CONTRACT) for _ in range(parts)]
    for d in events:
        feed(engines[zlib.crc32(f"{item_key(d)}{salt}".encode()) % parts], [d])
    merged = engines[0]
    for other in engines[1:]:
        merged.merge(other)
    assert report(merged, at) == expected


@PROFILE
@given(seed=st.integers(0, 10_000), cut=st.floats(0, 1))
def test_snapshot_and_restore_midway_gives_the_same_report(seed, cut):
    events = in_order(scenario(seed))
    at = report_instant(events)
    expected = report(feed(Engine(CONTRACT), events), at)
    k = int(len(events) * cut)
    engine = restore(CONTRACT, snapshot(feed(Engine(CONTRACT), events[:k])))
    assert report(feed(engine, events[k:]), at) == expected
