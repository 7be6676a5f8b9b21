"""The Prometheus collector against hand-fed partition engines (no broker): every exported figure equals the
replay report at the same instant, series have one owner, counters never go down, snapshots round-trip."""

from __future__ import annotations

import itertools

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.contracts import parse_contracts
from monitor.events import to_us
from monitor.replay import replay_lines
from streams.metrics import EngineCollector
from streams.partition_engine import DEADLETTER, SLA_EVENTS, PartitionEngine, designated_partition, sla_event
from streams.state_records import changed_records, restore_partition

CONTRACTS = """
allowed_lateness: 1h
clients:
  acme:
    timezone: Europe/Berlin
    slas:
      - name: first-response
        kind: first_response
        time: calendar
        target: {P1: 30m, P2: 2h}
        objective: 0.9
        penalty: {monthly_fee: 1000, currency: EUR, tiers: [{below: 0.9, credit_percent: 5}]}
      - name: resolution
        kind: resolution
        time: calendar
        target: {P1: 4h, P2: 8h}
        objective: 0.8
        pause_statuses: [waiting_on_customer]
      - name: phone-sl
        kind: service_level
        target: 0.8
        within: 20s
        queues: [orders]
        period: week
      - name: asa
        kind: asa
        target: 30s
        queues: [orders]
      - name: csat
        kind: csat
        target: 0.8
  globex:
    timezone: America/New_York
    slas:
      - name: fr
        kind: first_response
        time: calendar
        target: {P1: 1h}
        objective: 0.95
      - name: portal-uptime
        kind: uptime
        service: portal
        target: 0.99
        probe_interval: 60s
  zenith:
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
"""

_ids = itertools.count()


def ev(kind: str, ts: str, client: str, event_id: str | None = None, **fields) -> bytes:
    return orjson.dumps({"event_id": event_id or f"e{next(_ids)}", "kind": kind, "client": client,
                         "ts": ts, **fields})


def ticket(ts, client, tid, type_, **f):
    return ev("ticket", ts, client, ticket_id=tid, type=type_, **f)


def call(ts, client, cid, type_, queue="orders", **f):
    return ev("call", ts, client, call_id=cid, queue=queue, type=type_, **f)


def stream() -> list[bytes]:
    dup = ev("survey", "2026-03-02T10:00:00Z", "acme", event_id="dup-1", score=2)
    return [
        ticket("2026-03-02T09:00:00Z", "acme", "t1", "created", priority="P1"),
        ticket("2026-03-02T09:10:00Z", "acme", "t1", "agent_reply"),
        ticket("2026-03-02T09:00:00Z", "acme", "t2", "created", priority="P2"),  # first response breached
        ticket("2026-03-02T09:20:00Z", "acme", "t1", "resolved"),
        call("2026-03-02T09:00:00Z", "acme", "c1", "offered"),
        call("2026-03-02T09:00:10Z", "acme", "c1", "answered"),
        call("2026-03-02T09:05:00Z", "acme", "c2", "offered"),
        call("2026-03-02T09:05:40Z", "acme", "c2", "answered"),
        dup, dup,
        ev("survey", "2026-03-02T10:05:00Z", "acme", score=5),
        ticket("2026-03-02T11:40:00Z", "acme", "t3", "created", priority="P1"),  # open, deadline 12:10
        call("2026-03-02T11:50:00Z", "acme", "c3", "offered"),  # still waiting
        call("2026-03-02T11:55:00Z", "acme", "c4", "offered", queue="vip"),  # queue not in the contract
        ev("probe", "2026-03-02T11:00:00Z", "globex", service="portal", status="up"),
        ev("probe", "2026-03-02T11:01:00Z", "globex", service="portal", status="down"),
        ev("probe", "2026-03-02T11:02:00Z", "globex", service="portal", status="up"),
        ticket("2026-03-02T11:00:00Z", "globex", "g1", "created", priority="P1"),
        ev("audit", "2026-03-02T08:00:00Z", "zenith", items=100, errors=3),
        ev("survey", "2026-03-02T09:00:00Z", "zenith", score=5),
        ev("survey", "2026-03-02T09:30:00Z", "zenith", score=3),
        b"not json at all",
        ev("ticket", "2026-03-02T09:00:00Z", "nobody", ticket_id="x", type="created", priority="P1"),
        b'{"event_id": "bad", "kind": "ticket", "client": "acme"}',
        b"{" + b" " * 20_000 + b"}",
        ev("audit", "2026-03-02T06:00:00Z", "zenith", items=10, errors=0),  # > 1h behind zenith: late
        ev("probe", "2026-03-02T12:00:00Z", "globex", service="portal", status="up"),  # the newest event
    ]


AT = "2026-03-02T12:00:00Z"


def scrape(*holders: PartitionEngine) -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(lambda: list(holders)))
    text = generate_latest(registry).decode()
    out: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in out, f"duplicate series {key}"
            out[key] = sample.value
    return out


def series(metrics: dict, name: str, **labels) -> float | None:
    return metrics.get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))))


def fed(partition: int = 0, num_partitions: int | None = None, lines=None) -> PartitionEngine:
    contracts = parse_contracts(CONTRACTS)
    pe = PartitionEngine(partition, contracts, num_partitions=num_partitions)
    for offset, line in enumerate(lines if lines is not None else stream()):
        pe.process(line, offset)
    return pe


@pytest.fixture(scope="module")
def replay():
    contracts = parse_contracts(CONTRACTS)
    return replay_lines(stream(), contracts, to_us_text(AT))


def to_us_text(text: str) -> int:
    from datetime import datetime

    return to_us(datetime.fromisoformat(text.replace("Z", "+00:00")))


def current(records):
    out = {}
    for rec in records:  # sorted by period within each SLA: the last is the current one
        out[(rec.client, rec.sla)] = rec
    return out


def test_period_figures_equal_the_replay_report(replay):
    pe = fed()
    assert pe.engine.now_us == to_us_text(AT)
    m = scrape(pe)
    recs = current(replay.records)
    checked = 0
    for (client, sla), rec in recs.items():
        labels = {"client": client, "sla": sla}
        if rec.kind == "uptime":
            assert series(m, "slamon_uptime_availability_ratio", service="portal", **labels) == rec.value
            assert series(m, "slamon_uptime_downtime_seconds", service="portal", **labels) == rec.bad
            assert series(m, "slamon_uptime_unknown_seconds", service="portal", **labels) == rec.unknown_seconds
        else:
            assert series(m, "slamon_sla_period_decided", **labels) == rec.decided, (client, sla)
            if rec.good is not None:
                assert series(m, "slamon_sla_period_good", **labels) == rec.good
                assert series(m, "slamon_sla_period_bad", **labels) == rec.bad
        assert series(m, "slamon_sla_compliance_ratio", **labels) == rec.compliance
        assert series(m, "slamon_sla_error_budget_remaining_ratio", **labels) == rec.error_budget_remaining
        assert series(m, "slamon_sla_met", **labels) == float(rec.met)
        for unit in ("ratio", "seconds", "score"):
            value = series(m, f"slamon_sla_value_{unit}", **labels)
            if value is not None:
                assert value == rec.value
                assert series(m, f"slamon_sla_target_{unit}", **labels) == rec.target
                assert series(m, f"slamon_sla_projected_{unit}", **labels) == rec.projected
        if rec.penalty:
            assert series(m, "slamon_penalty_credit", **labels) == rec.penalty["credit"]
            assert series(m, "slamon_penalty_projected_credit", **labels) == rec.penalty["projected_credit"]
        checked += 1
    assert checked == 9
    # the hand-checked figures behind it
    assert series(m, "slamon_sla_period_bad", client="acme", sla="first-response") == 1  # t2 breached at 11:00
    assert series(m, "slamon_sla_compliance_ratio", client="acme", sla="first-response") == 0.5
    assert series(m, "slamon_penalty_credit", client="acme", sla="first-response") == 50
    assert series(m, "slamon_sla_value_seconds", client="acme", sla="asa") == 25  # (10 + 40) / 2
    assert series(m, "slamon_sla_compliance_ratio", client="zenith", sla="accuracy") == 0.97


def test_counters_are_all_period_sums(replay):
    m = scrape(fed())
    sums: dict[tuple[str, str], list[float]] = {}
    for rec in replay.records:
        if rec.kind == "uptime":
            continue
        total = sums.setdefault((rec.client, rec.sla), [0, 0, 0])
        total[0] += rec.decided
        total[1] += rec.good or 0
        total[2] += rec.bad or 0
    for (client, sla), (decided, good, bad) in sums.items():
        assert series(m, "slamon_sla_decided_total", client=client, sla=sla) == decided
        if sla != "asa":
            assert series(m, "slamon_sla_good_total", client=client, sla=sla) == good
            assert series(m, "slamon_sla_bad_total", client=client, sla=sla) == bad
    assert series(m, "slamon_sla_decided_total", client="zenith", sla="accuracy") == 100


def test_pipeline_health_equals_the_replay(replay):
    m = scrape(fed())
    assert series(m, "slamon_events_received_total", partition=0) == len(stream())
    for reason, count in replay.rejected.items():
        if reason != "orphan":
            assert series(m, "slamon_events_rejected_total", partition=0, reason=reason) == count, reason
    assert set(replay.rejected) >= {"malformed", "unknown_client", "invalid", "oversized", "late"}
    assert series(m, "slamon_events_duplicate_total", partition=0) == replay.duplicates == 1
    accepted = sum(series(m, "slamon_events_total", partition=0, kind=k) for k in
                   ("ticket", "call", "probe", "survey", "audit"))
    assert accepted == replay.accepted
    assert series(m, "slamon_engine_now_seconds", partition=0) == to_us_text(AT) / 1e6
    assert series(m, "slamon_event_time_lag_seconds", client="acme") == 5 * 60  # newest acme event 11:55
    assert series(m, "slamon_input_offset", partition=0) == len(stream()) - 1


def test_live_figures():
    m = scrape(fed())
    acme_fr = {"client": "acme", "sla": "first-response"}
    assert series(m, "slamon_sla_open_items", priority="P1", **acme_fr) == 1  # t3
    assert series(m, "slamon_sla_open_items", priority="P2", **acme_fr) == 0
    assert series(m, "slamon_sla_breaching_soon_items", within="15m", priority="P1", **acme_fr) == 1  # 12:10
    assert series(m, "slamon_sla_breaching_soon_items", within="15m", priority="P2", **acme_fr) == 0
    assert series(m, "slamon_sla_next_deadline_seconds", **acme_fr) == 600
    assert series(m, "slamon_sla_at_risk_items", stage="0.5", **acme_fr) == 1  # 20 of 30 minutes
    assert series(m, "slamon_sla_at_risk_items", stage="0.75", **acme_fr) == 0
    res = {"client": "acme", "sla": "resolution"}
    assert series(m, "slamon_sla_open_items", priority="P2", **res) == 1  # t2 (resolution 8h: 17:00)
    assert series(m, "slamon_sla_breaching_soon_items", within="60m", priority="P2", **res) == 0
    assert series(m, "slamon_calls_waiting", client="acme", queue="orders") == 1
    assert series(m, "slamon_calls_longest_wait_seconds", client="acme", queue="orders") == 600
    assert series(m, "slamon_calls_longest_wait_seconds", client="acme", queue="other") == 300
    assert series(m, "slamon_calls_waiting", client="acme", queue="other") == 1  # "vip": no label explosion
    sl = {"client": "acme", "sla": "phone-sl"}
    assert series(m, "slamon_service_level_ratio", window="5m", **sl) is None  # nothing decided in 5m
    assert series(m, "slamon_service_level_ratio", window="24h", **sl) == 0.5  # 10s ok, 40s late
    assert series(m, "slamon_asa_seconds", client="acme", sla="asa", window="24h") == 25
    assert series(m, "slamon_uptime_service_up", client="globex", service="portal") == 1
    assert series(m, "slamon_sla_info", client="acme", sla="phone-sl", kind="service_level", period="week",
                  currency="") == 1
    labels = {lbl for (_, labels) in m for lbl, _ in labels}
    assert labels <= {"client", "sla", "priority", "queue", "service", "stage", "window", "within",
                      "quantile", "kind", "period", "currency", "partition", "reason"}


def test_each_series_has_one_owner_and_two_partitions_sum_to_one():
    contracts = parse_contracts(CONTRACTS)
    n = 2
    owners = {c: designated_partition(c, n) for c in contracts.clients}
    holders = [PartitionEngine(p, contracts, num_partitions=n) for p in range(n)]
    single = fed()
    offsets = [0] * n
    for line in stream():
        client = orjson.loads(line).get("client") if line.startswith(b'{"') else None
        p = owners.get(client, 0) if isinstance(client, str) else 0
        holders[p].process(line, offsets[p])
        offsets[p] += 1
    parts = [scrape(h) for h in holders]
    whole = scrape(single)
    sla_names = ("slamon_sla_period_decided", "slamon_sla_period_good", "slamon_sla_period_bad",
                 "slamon_sla_decided_total", "slamon_sla_good_total", "slamon_sla_bad_total")
    for key, value in whole.items():
        if key[0] in sla_names:
            found = [p[key] for p in parts if key in p]
            assert len(found) == 1, key  # exactly one owner
            client = dict(key[1])["client"]
            if (holders[owners[client]].engine.now_us == single.engine.now_us):
                assert found[0] == value, key
    assert sum(h.misrouted for h in holders) == 0
    # together the two workers export every client exactly once (collector dedupe across holders too)
    both = scrape(*holders)
    assert {dict(k[1])["client"] for k in both if k[0] == "slamon_sla_info"} == set(contracts.clients)


def test_misrouted_events_are_counted_not_exported_twice():
    contracts = parse_contracts(CONTRACTS)
    n = 4
    wrong = next(p for p in range(n) if p != designated_partition("acme", n))
    pe = PartitionEngine(wrong, contracts, num_partitions=n)
    pe.process(ticket("2026-03-02T09:00:00Z", "acme", "t1", "created", priority="P1"), 0)
    assert pe.misrouted == 1
    m = scrape(pe)
    assert series(m, "slamon_events_misrouted_total", partition=wrong) == 1
    assert not any(dict(k[1]).get("client") == "acme" for k in m)


def test_counters_never_go_down_when_a_decision_is_withdrawn():
    contracts = parse_contracts(CONTRACTS)
    pe = PartitionEngine(0, contracts)
    lines = [
        ticket("2026-03-02T09:00:00Z", "acme", "r1", "created", priority="P1"),
        ticket("2026-03-02T09:30:00Z", "acme", "r1", "resolved"),
        ev("survey", "2026-03-02T09:40:00Z", "acme", score=5),
    ]
    for i, line in enumerate(lines):
        pe.process(line, i)
    res = {"client": "acme", "sla": "resolution"}
    before = scrape(pe)
    assert series(before, "slamon_sla_good_total", **res) == 1
    pe.process(ticket("2026-03-02T09:45:00Z", "acme", "r1", "reopened"), 3)  # the "met" is withdrawn
    after = scrape(pe)
    assert series(after, "slamon_sla_period_good", **res) == 0
    assert series(after, "slamon_sla_good_total", **res) == 1  # high-water: not decreased
    pe.process(ticket("2026-03-02T10:00:00Z", "acme", "r1", "resolved"), 4)  # decided good again
    again = scrape(pe)
    assert series(again, "slamon_sla_period_good", **res) == 1
    assert series(again, "slamon_sla_good_total", **res) == 1  # not counted twice
    changes = [orjson.loads(o.value)["change"] for o in pe.outbox if o.kind == SLA_EVENTS
               and orjson.loads(o.value)["sla"] == "resolution"]
    assert changes == ["decided", "withdrawn", "decided"]


def test_snapshot_round_trip_keeps_every_figure_and_the_unconfirmed_outputs():
    contracts = parse_contracts(CONTRACTS)
    pe = fed()
    before = scrape(pe)
    unsent = pe.take_unsent()
    assert any(o.kind == DEADLETTER for o in unsent)
    clone = restore_partition(0, contracts, dict(changed_records(pe)))
    after = scrape(clone)
    volatile = {"slamon_scrape_duration_seconds", "slamon_checkpoint_offset"}
    assert {k: v for k, v in before.items() if k[0] not in volatile} == \
           {k: v for k, v in after.items() if k[0] not in volatile}
    assert clone.offset == pe.offset and clone.durable_offset == pe.offset
    # never confirmed: the restored holder publishes them again (at-least-once)
    assert [o.value for o in clone.take_unsent()] == [o.value for o in pe.outbox]
    # a replayed message (offset already reflected) is skipped, a new one applied
    assert clone.process(stream()[0], 3) is False
    assert clone.process(ev("survey", AT, "acme", score=4), pe.offset + 1) is True


def test_dead_letters_carry_the_original_bytes_and_why():
    pe = fed()
    letters = {dict(o.headers)["reason"].decode(): o for o in pe.dead_letters()}
    assert set(letters) == {"malformed", "unknown_client", "invalid", "oversized", "late"}
    bad = letters["malformed"]
    assert bad.value == b"not json at all"
    headers = dict(bad.headers)
    assert headers["source_topic"] == b"slamon.events"
    assert headers["source_partition"] == b"0"
    assert int(headers["source_offset"]) == stream().index(b"not json at all")
    assert dict(letters["unknown_client"].headers)["event_id"]


def test_future_events_are_dead_lettered_against_the_wall_clock():
    contracts = parse_contracts(CONTRACTS)
    pe = PartitionEngine(0, contracts)
    now = to_us_text("2026-03-02T12:00:00Z")
    assert pe.process(ev("survey", "2026-03-02T12:04:00Z", "acme", score=5), 0, now_us=now,
                      max_future_us=300_000_000)
    assert pe.process(ev("survey", "2026-03-02T12:06:00Z", "acme", score=5), 1, now_us=now,
                      max_future_us=300_000_000)
    assert pe.rejected == {"future": 1}
    assert sum(pe.engine.stats.events.values()) == 1



def test_an_engine_error_dead_letters_the_event_and_the_stream_goes_on(monkeypatch):
    """A bug in the engine on one event must not stop the partition (it would crash at every restart)."""
    from monitor import engine as engine_module

    original = engine_module.Engine._on_call

    def explode_on_c2(self, model, event, ts):
        if event.call_id == "c2":
            raise ZeroDivisionError("boom")
        return original(self, model, event, ts)

    monkeypatch.setattr(engine_module.Engine, "_on_call", explode_on_c2)
    lines = [call(f"2026-03-02T09:00:0{i}Z", "acme", f"c{i}", "offered") for i in (1, 2, 3)]
    pe = PartitionEngine(0, parse_contracts(CONTRACTS), num_partitions=None)
    for offset, line in enumerate(lines):
        assert pe.process(line, offset) is True
    dead = [o for o in pe.take_unsent() if o.kind == DEADLETTER]
    assert len(dead) == 1 and dict(dead[0].headers)["reason"] == b"invalid"
    assert b"engine error: ZeroDivisionError: boom" in dict(dead[0].headers)["detail"]
    assert pe.engine.stats.errors == 1 and pe.offset == 2 and ("acme", "c3") in pe.engine.calls


def test_sla_event_record_is_exact():
    """The SLA-events topic's wire format, field by field (downstream consumers parse it)."""
    contracts = parse_contracts(CONTRACTS)
    pe = PartitionEngine(0, contracts)
    pe.process(ticket("2026-03-02T09:00:00.250Z", "acme", "r1", "created", priority="P1"), 0)
    pe.process(ticket("2026-03-02T09:30:00.5Z", "acme", "r1", "resolved"), 1)
    records = [(o.key, orjson.loads(o.value), o.headers) for o in pe.outbox if o.kind == SLA_EVENTS]
    key, first, headers = records[0]
    assert key == b"acme" and headers == [("change", b"decided")]
    assert set(first) == {"client", "sla", "item", "at", "at_us", "outcome", "change", "priority", "trigger",
                          "source_partition", "source_offset",
                          # the SLA record's fields (store/, docs/sla-record.md)
                          "kind", "period", "decided", "good", "bad", "total", "sample", "start_us", "deadline_us",
                          "stop_us", "elapsed_s", "paused_s", "target_s", "queue", "channel"}
    resolution = next(r for _, r, _ in records if r["sla"] == "resolution")
    assert resolution == {
        "client": "acme", "sla": "resolution", "item": "r1", "at": "2026-03-02T09:30:00.500000Z",
        "at_us": 1_772_443_800_500_000, "outcome": "good", "change": "decided", "priority": "P1",
        "trigger": "event", "source_partition": 0, "source_offset": 1,
        "kind": "resolution", "period": "2026-03", "decided": 1, "good": 1, "bad": 0, "total": 0.0,
        "sample": 1800.25, "start_us": 1_772_442_000_250_000, "deadline_us": 1_772_456_400_250_000,
        "stop_us": 1_772_443_800_500_000, "elapsed_s": 1800.25, "paused_s": 0.0, "target_s": 14400.0,
        "queue": None, "channel": None,
    }
    whole = orjson.loads(sla_event("acme", resolution_contribution(), "withdrawn", "clock", 2, None))
    assert whole["at"] == "2026-03-02T09:30:00Z" and whole["trigger"] == "clock" and whole["source_offset"] is None


def resolution_contribution():
    from monitor.ledger import Contribution

    return Contribution("resolution", 1_772_443_800_000_000, 1, 1, 0, priority="P1", item="r1")


def test_families_asked_for_are_exactly_the_full_scrapes_rows_of_them():
    """`families=`: the rows of those families equal the full scrape's (what feeds only the others, burn rates,
    sketch quantiles, rolling windows, waiting calls, is not computed); an unknown family is refused."""
    from streams.metrics import exported_families

    pe = fed()
    at = max(pe.engine.now_us, pe.clock_us)
    full = EngineCollector(lambda: [pe], clock=lambda _: at).samples().rows
    for wanted in ({"slamon_sla_decided", "slamon_sla_at_risk_items", "slamon_calls_longest_wait_seconds"},
                   {"slamon_sla_burn_rate", "slamon_sla_latency_seconds", "slamon_service_level_ratio"},
                   set(exported_families()) - {"slamon_scrape_duration_seconds"}):
        rows = EngineCollector(lambda: [pe], clock=lambda _: at, families=wanted).samples().rows
        assert set(rows) == wanted & set(full)
        assert rows == {name: r for name, r in full.items() if name in wanted}
    with pytest.raises(ValueError, match="slamon_nope"):
        EngineCollector(lambda: [pe], families={"slamon_nope"})


def test_skipped_report_figures_are_left_out_and_the_rest_unchanged():
    from monitor.report import build_report

    pe = fed()
    at = max(pe.engine.now_us, pe.clock_us)
    full = build_report(pe.engine, at, current_only=True)
    lean = build_report(pe.engine, at, current_only=True, skip={"burn_rate", "latency_seconds", "open"})
    assert any(r.burn_rate for r in full) and any(r.latency_seconds for r in full)
    assert any(r.open for r in full if r.kind in ("service_level", "asa"))
    assert all(not r.burn_rate and r.latency_seconds is None for r in lean)
    assert all(r.open is None for r in lean if r.kind in ("service_level", "asa"))
    strip = ("burn_rate", "latency_seconds", "open")
    assert [{k: v for k, v in r.as_dict().items() if k not in strip} for r in lean] == \
        [{k: v for k, v in r.as_dict().items() if k not in strip} for r in full]
    with pytest.raises(ValueError, match="compliance"):
        build_report(pe.engine, at, skip={"compliance"})
