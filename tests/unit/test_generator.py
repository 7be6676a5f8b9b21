"""Synthetic traffic generator: validity, determinism, statistical shape and scenarios."""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import orjson
import pytest

from monitor.contracts import CallSla, TicketSla, UptimeSla, load_contracts, parse_contracts
from monitor.events import Rejection, decode_event, to_us
from monitor.simulation.generator import (
    BUCKET_US,
    HOUR_US,
    GeneratorConfig,
    Scenario,
    curve_weight,
    generate,
)

CONTRACTS = Path(__file__).resolve().parents[2] / "examples" / "contracts.yaml"
START = to_us(datetime(2026, 3, 2, tzinfo=UTC))  # a Monday; no holiday in the first half of March
DAY = 24 * HOUR_US


@pytest.fixture(scope="module")
def contracts():
    return load_contracts(CONTRACTS)


def _us(event: dict) -> int:
    return to_us(datetime.fromisoformat(event["ts"]))


def _gen(contracts, **kw) -> list[dict]:
    kw.setdefault("start_us", START)
    kw.setdefault("duration_us", DAY)
    return list(generate(contracts, GeneratorConfig(**kw)))


def test_deterministic_for_a_seed(contracts):
    a = _gen(contracts, seed=7)
    b = _gen(contracts, seed=7)
    c = _gen(contracts, seed=8)
    assert a == b
    assert a != c
    assert len(a) > 5000


def test_every_event_decodes_and_uses_contract_names(contracts):
    outage = Scenario("outage", "globex-bank", START + 10 * HOUR_US, HOUR_US)
    events = _gen(contracts, seed=1, duration_us=2 * DAY, scenarios=[outage],
                  disorder_us=30_000_000, duplicate_rate=0.01)
    kinds = Counter()
    for e in events:
        decoded = decode_event(orjson.dumps(e), contracts.clients)
        assert not isinstance(decoded, Rejection), (e, decoded)
        kinds[(e["client"], e["kind"])] += 1
        client = contracts.clients[e["client"]]
        if e["kind"] == "ticket":
            slas = [s for s in client.slas if isinstance(s, TicketSla)]
            if "priority" in e:
                assert any(e["priority"] in s.target for s in slas)
            if "queue" in e:
                assert any(e["queue"] in s.queues for s in slas)
            if "channel" in e:
                assert any(e["channel"] in s.channels for s in slas)
        elif e["kind"] == "call":
            assert any(e["queue"] in s.queues for s in client.slas if isinstance(s, CallSla))
        elif e["kind"] == "probe":
            assert any(e["service"] == s.service for s in client.slas if isinstance(s, UptimeSla))
    # Each client gets exactly the traffic its SLAs measure.
    assert {k for k in kinds} == {
        ("acme-retail", "ticket"), ("acme-retail", "call"), ("acme-retail", "survey"),
        ("globex-bank", "ticket"), ("globex-bank", "call"), ("globex-bank", "probe"),
        ("zenith-health", "ticket"), ("zenith-health", "survey"), ("zenith-health", "audit"),
    }


def test_in_time_order_without_disorder(contracts):
    events = _gen(contracts, seed=2)
    stamps = [_us(e) for e in events]
    assert stamps == sorted(stamps)
    assert stamps[0] >= START and stamps[-1] < START + DAY
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == len(ids)


def test_ticket_lifecycles_are_varied_and_ordered(contracts):
    events = _gen(contracts, seed=3, duration_us=7 * DAY)
    types = Counter(e.get("type") for e in events if e["kind"] == "ticket")
    for t in ("created", "agent_reply", "customer_reply", "status", "priority", "resolved", "reopened",
              "closed"):
        assert types[t] > 0, t
    statuses = Counter(e["status"] for e in events if e.get("type") == "status")
    assert {"waiting_on_customer", "pending_vendor", "pending_documents"} <= set(statuses)
    prios = Counter(e["priority"] for e in events if e.get("type") == "created")
    assert prios["P1"] < prios["P2"] < prios["P4"] < prios["P3"]
    by_ticket = defaultdict(list)
    for e in events:
        if e["kind"] == "ticket":
            by_ticket[e["ticket_id"]].append(e)
    for evs in by_ticket.values():
        assert evs[0]["type"] == "created"


def _offered_per_local_hour(events, client: str, tz: ZoneInfo, kind: str, type_: str) -> Counter:
    counts = Counter()
    for e in events:
        if e["client"] == client and e["kind"] == kind and e["type"] == type_:
            local = datetime.fromisoformat(e["ts"]).astimezone(tz)
            counts[(local.weekday() >= 5, local.hour)] += 1
    return counts


def _expected_per_local_hour(client, start: int, end: int, per_hour: float) -> Counter:
    tz = ZoneInfo(client.timezone)
    spec = client.calendar.holidays
    closed = set(spec.dates)
    closed |= set(holidays.country_holidays(spec.country, subdiv=spec.subdivision, years=2026))
    expected = Counter()
    t = start
    while t < end:
        local = datetime.fromtimestamp((t + BUCKET_US / 2) / 1e6, tz)
        key = (local.weekday() >= 5, local.hour)
        expected[key] += per_hour * curve_weight(local, local.date() in closed) * BUCKET_US / HOUR_US
        t += BUCKET_US
    return expected


@pytest.mark.parametrize(("client", "kind", "type_", "rate_field"), [
    ("acme-retail", "call", "offered", "calls_per_hour"),
    ("zenith-health", "ticket", "created", "tickets_per_hour"),
])
def test_arrivals_follow_the_daily_curve(contracts, client, kind, type_, rate_field):
    rate = 40.0 if kind == "ticket" else 80.0
    duration = 14 * DAY
    events = _gen(contracts, seed=11, duration_us=duration, **{rate_field: rate},
                  **{f: 0.0 for f in ("calls_per_hour", "tickets_per_hour") if f != rate_field})
    tz = ZoneInfo(contracts.clients[client].timezone)
    observed = _offered_per_local_hour(events, client, tz, kind, type_)
    expected = _expected_per_local_hour(contracts.clients[client], START, START + duration, rate)
    assert abs(sum(observed.values()) - sum(expected.values())) < 4 * math.sqrt(sum(expected.values()))
    chi2 = sum((observed[k] - v) ** 2 / v for k, v in expected.items())
    assert chi2 < 48 + 5 * math.sqrt(2 * 48)  # 48 cells (weekday/weekend x 24 h), generous bound
    for k, v in expected.items():
        assert abs(observed[k] - v) <= 5 * math.sqrt(v) + 3, (k, observed[k], v)
    # The shape a BPO sees: busy late morning, dead at night, quiet weekends.
    assert observed[(False, 10)] > 10 * observed[(False, 3)]
    assert observed[(False, 10)] > 2 * observed[(True, 10)] * 5 / 2  # per day: weekday 10h vs weekend 10h


def test_curve_weight_has_weekly_mean_one():
    tz = ZoneInfo("UTC")
    monday = datetime(2026, 3, 2, tzinfo=tz)
    steps = 7 * 24 * 12
    mean = sum(curve_weight(monday + timedelta(minutes=5 * i)) for i in range(steps)) / steps
    assert mean == pytest.approx(1.0, abs=0.01)
    assert curve_weight(monday.replace(hour=10)) > 3 * curve_weight(monday.replace(hour=3)) > 0
    assert curve_weight(monday.replace(hour=10), holiday=True) < curve_weight(monday.replace(hour=10))


def _call_stats(events, client: str, lo: int, hi: int) -> tuple[float, int, int]:
    calls: dict[str, dict[str, int]] = defaultdict(dict)
    for e in events:
        if e["kind"] == "call" and e["client"] == client:
            calls[e["call_id"]][e["type"]] = _us(e)
    waits, abandons, offered = [], 0, 0
    for c in calls.values():
        if not lo <= c["offered"] < hi:
            continue
        offered += 1
        if "answered" in c:
            waits.append((c["answered"] - c["offered"]) / 1e6)
        elif "abandoned" in c and c["abandoned"] - c["offered"] >= 5_000_000:
            abandons += 1
    return sum(waits) / len(waits), abandons, offered


def test_staffing_drop_raises_waits_and_abandons(contracts):
    lo, hi = START + 9 * HOUR_US, START + 13 * HOUR_US  # Monday 09-13 UTC (10-14 Berlin)
    drop = Scenario("staffing_drop", "acme-retail", lo, hi - lo, factor=0.5)
    base = _gen(contracts, seed=4, tickets_per_hour=0)
    dropped = _gen(contracts, seed=4, tickets_per_hour=0, scenarios=[drop])
    wait0, ab0, off0 = _call_stats(base, "acme-retail", lo, hi)
    wait1, ab1, off1 = _call_stats(dropped, "acme-retail", lo, hi)
    assert off0 == off1 > 300  # same arrivals (same seed), different staffing
    assert wait1 > 3 * wait0 and wait1 > 10
    assert ab1 > 3 * max(ab0, 1)
    # Outside the window the other client is untouched.
    assert [e for e in base if e["client"] == "globex-bank"] == [
        e for e in dropped if e["client"] == "globex-bank"]


def test_short_abandons_happen(contracts):
    events = _gen(contracts, seed=5, tickets_per_hour=0)
    calls: dict[str, dict[str, int]] = defaultdict(dict)
    for e in events:
        if e["kind"] == "call":
            calls[e["call_id"]][e["type"]] = _us(e)
    short = [c for c in calls.values() if "abandoned" in c and c["abandoned"] - c["offered"] < 5_000_000]
    assert short
    ended = [e for e in events if e.get("type") == "ended"]
    assert all(e["wrapup_seconds"] >= 0 for e in ended)


def test_outage_produces_down_probes_in_its_window(contracts):
    lo, hi = START + 10 * HOUR_US, START + 11 * HOUR_US
    events = _gen(contracts, seed=6, tickets_per_hour=0, calls_per_hour=0,
                  scenarios=[Scenario("outage", "globex-bank", lo, hi - lo, service="ivr")])
    ivr = [(_us(e), e["status"]) for e in events if e["kind"] == "probe" and e["service"] == "ivr"]
    inside = [s for t, s in ivr if lo <= t < hi]
    outside = [s for t, s in ivr if not lo <= t < hi]
    assert len(inside) >= 55 and set(inside) == {"down"}
    assert len(outside) > 1000 and set(outside) == {"up"}
    other = {e["status"] for e in events if e["kind"] == "probe" and e["service"] == "online-banking"}
    assert other == {"up"}
    # Probes come every interval (60 s for ivr), with jitter and a few missing.
    stamps = [t for t, _ in ivr]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert 55_000_000 < sorted(gaps)[len(gaps) // 2] < 65_000_000


def test_maintenance_window_is_down_time(contracts):
    start = to_us(datetime(2026, 3, 15, tzinfo=UTC))
    events = _gen(contracts, seed=6, start_us=start, tickets_per_hour=0, calls_per_hour=0)
    lo = to_us(datetime(2026, 3, 15, 2, tzinfo=ZoneInfo("America/New_York")))
    hi = to_us(datetime(2026, 3, 15, 4, tzinfo=ZoneInfo("America/New_York")))
    ob = [(_us(e), e["status"]) for e in events if e.get("service") == "online-banking"]
    assert {s for t, s in ob if lo <= t < hi} == {"down"}
    assert {s for t, s in ob if not lo <= t < hi} == {"up"}


def test_backlog_surge_multiplies_ticket_arrivals(contracts):
    lo, hi = START + 8 * HOUR_US, START + 16 * HOUR_US
    surge = Scenario("backlog_surge", "acme-retail", lo, hi - lo, factor=4.0)

    def created(events):
        return sum(1 for e in events if e.get("type") == "created" and e["client"] == "acme-retail"
                   and lo <= _us(e) < hi)

    base = created(_gen(contracts, seed=9, calls_per_hour=0, tickets_per_hour=40))
    surged = created(_gen(contracts, seed=9, calls_per_hour=0, tickets_per_hour=40, scenarios=[surge]))
    assert base > 100
    assert 3.0 < surged / base < 5.0


def test_duplicates_keep_event_id(contracts):
    plain = _gen(contracts, seed=10)
    duped = _gen(contracts, seed=10, duplicate_rate=0.05)
    counts = Counter(e["event_id"] for e in duped)
    repeats = [i for i, n in counts.items() if n > 1]
    assert max(counts.values()) == 2
    assert 0.04 < len(repeats) / len(plain) < 0.06
    assert len(duped) == len(plain) + len(repeats)
    first: dict[str, dict] = {}
    for e in duped:
        assert first.setdefault(e["event_id"], e) == e  # verbatim copy
    assert {e["event_id"] for e in duped} == {e["event_id"] for e in plain}


@pytest.mark.parametrize("keep_order", [True, False])
def test_disorder_stays_within_bound(contracts, keep_order):
    bound = 120_000_000
    plain = _gen(contracts, seed=12)
    shuffled = _gen(contracts, seed=12, disorder_us=bound, keep_entity_order=keep_order)
    assert sorted(orjson.dumps(e) for e in plain) == sorted(orjson.dumps(e) for e in shuffled)
    high, late = 0, 0
    for e in shuffled:
        t = _us(e)
        assert high - t <= bound
        late += t < high
        high = max(high, t)
    assert late > 100  # really out of order
    if keep_order:  # events of one ticket/call keep their order
        seen: dict[str, int] = {}
        for e in shuffled:
            if e["kind"] in ("ticket", "call"):  # surveys are separate messages
                key = e["ticket_id"] if e["kind"] == "ticket" else e["call_id"]
                assert seen.get(key, 0) <= _us(e)
                seen[key] = _us(e)


def _elapsed_calendar(events: list[dict]) -> dict[str, tuple[str, int]]:
    """First-response elapsed time per ticket (calendar time), for tickets without a priority change."""
    out, created, changed = {}, {}, set()
    for e in events:
        if e["kind"] != "ticket":
            continue
        tid = e["ticket_id"]
        if e["type"] == "created":
            created[tid] = e
        elif e["type"] == "priority":
            changed.add(tid)
        elif e["type"] in ("agent_reply", "resolved", "closed") and tid not in out and tid in created:
            out[tid] = (created[tid]["priority"], _us(e) - _us(created[tid]))
    return {k: v for k, v in out.items() if k not in changed}


def test_ticket_breach_rate_is_about_the_configured_share(contracts):
    events = _gen(contracts, seed=13, duration_us=10 * DAY, calls_per_hour=0, tickets_per_hour=60,
                  ticket_breach_rate=0.1)
    (fr,) = [s for s in contracts.clients["globex-bank"].slas if s.name == "first-response"]
    assert fr.time == "calendar"
    elapsed = _elapsed_calendar([e for e in events if e["client"] == "globex-bank"])
    assert len(elapsed) > 5000
    late = sum(1 for prio, us in elapsed.values() if us > fr.target[prio])
    assert 0.08 < late / len(elapsed) < 0.12


def test_business_time_replies_land_in_business_hours(contracts):
    events = _gen(contracts, seed=14, duration_us=7 * DAY, calls_per_hour=0)
    tz = ZoneInfo("Asia/Kolkata")
    hours = contracts.clients["zenith-health"].calendar.weekly_minutes()
    replies = [e for e in events if e["client"] == "zenith-health" and e.get("type") == "agent_reply"]
    assert len(replies) > 500
    for e in replies:
        local = datetime.fromisoformat(e["ts"]).astimezone(tz)
        minute = local.hour * 60 + local.minute + local.second / 60
        assert any(a <= minute <= b for a, b in hours.get(local.weekday(), ())), local


def test_only_contract_names_with_minimal_contract():
    contracts = parse_contracts("""
clients:
  tiny:
    timezone: UTC
    slas:
      - {name: sl, kind: service_level, target: 0.8, within: 20s}
      - {name: fr, kind: first_response, time: calendar, target: {urgent: 1h, normal: 8h}, objective: 0.9}
""")
    events = _gen(contracts, seed=1)
    assert {e["queue"] for e in events if e["kind"] == "call"} == {"default"}
    assert {e["priority"] for e in events if e.get("type") == "created"} == {"urgent", "normal"}
    assert all("queue" not in e for e in events if e["kind"] == "ticket")


def test_bad_scenarios_are_rejected(contracts):
    for bad in (Scenario("outage", "nobody", START, HOUR_US),
                Scenario("outage", "globex-bank", START, HOUR_US, service="web"),
                Scenario("staffing_drop", "acme-retail", START, HOUR_US, queue="nope"),
                Scenario("backlog_surge", "acme-retail", START, 0)):
        with pytest.raises(ValueError):
            _gen(contracts, scenarios=[bad])


@pytest.mark.slow
def test_volume_of_five_days(contracts, capsys):
    """The event count for five days at these rates; speed is printed, not asserted (bench/ measures it)."""
    cfg = GeneratorConfig(start_us=START, duration_us=5 * DAY, seed=1, tickets_per_hour=40,
                          calls_per_hour=150)
    t0 = time.perf_counter()
    n = sum(1 for _ in generate(contracts, cfg))
    seconds = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\ngenerator: {n} events in {seconds:.2f} s ({n / seconds:,.0f} events/s)")
    assert n > 150_000
