"""Spec "Final items": a ticket resolved or closed, every clock decided and no reopen for the contract's
`reopen_window`, is final; later events for it are rejected as `expired` (held or already dropped)."""

from __future__ import annotations

import orjson
import pytest

from monitor.contracts import DEFAULT_REOPEN_WINDOW_US, parse_contracts
from monitor.engine import Engine
from monitor.events import EXPIRED, decode_event
from monitor.final_tickets import DAY_US, RETENTION_DAYS, FinalTickets, ticket_hash
from monitor.report import build_report
from streams.partition_engine import PartitionEngine
from tests.builders import ticket, us

CONTRACTS = """
allowed_lateness: 1h
reopen_window: 2h
clients:
  acme:
    timezone: UTC
    slas:
      - {name: res, kind: resolution, time: calendar, target: {P1: 4h}, objective: 0.9}
  globex:
    timezone: UTC
    reopen_window: 30m
    slas:
      - {name: res, kind: resolution, time: calendar, target: {P1: 4h}, objective: 0.9}
  initech:
    timezone: UTC
    slas:
      - {name: res, kind: resolution, time: calendar, target: {P1: 4h}, objective: 0.9}
"""


def feed(engine: Engine, events: list[dict]) -> list:
    contracts = engine.contracts
    return [engine.ingest(decode_event(orjson.dumps(d), contracts.clients)) for d in events]


def engine() -> Engine:
    return Engine(parse_contracts(CONTRACTS))


def resolution(e: Engine, client: str = "acme"):
    return next(r for r in build_report(e, e.now_us) if r.client == client and r.sla == "res")


def test_the_window_is_per_client_with_a_top_level_default():
    c = parse_contracts(CONTRACTS)
    assert c.reopen_window_us("acme") == 2 * 3600 * 10**6
    assert c.reopen_window_us("globex") == 30 * 60 * 10**6
    assert parse_contracts(CONTRACTS.replace("reopen_window: 2h\n", "")).reopen_window_us("acme") == \
        DEFAULT_REOPEN_WINDOW_US == 7 * DAY_US


def test_a_reopen_inside_the_window_resumes_the_clock():
    e = engine()
    out = feed(e, [ticket("2026-11-02T08:00:00Z", "T1", "created", priority="P1"),
                   ticket("2026-11-02T09:00:00Z", "T1", "resolved"),
                   ticket("2026-11-02T10:59:00Z", "T1", "reopened")])
    assert out == [None, None, None]
    clock = e.tickets[("acme", "T1")].state.clocks[0]
    assert clock.good is None and clock.elapsed_us == 3600 * 10**6  # met withdrawn, elapsed time kept
    assert resolution(e).decided == 0


def test_an_event_after_the_window_is_rejected_as_expired_and_not_applied():
    e = engine()
    out = feed(e, [ticket("2026-11-02T08:00:00Z", "T1", "created", priority="P1"),
                   ticket("2026-11-02T09:00:00Z", "T1", "resolved"),
                   ticket("2026-11-02T11:00:01Z", "T1", "reopened")])
    assert out[:2] == [None, None] and out[2].reason == EXPIRED and "final" in out[2].detail
    assert e.stats.rejected[EXPIRED] == 1
    assert e.tickets[("acme", "T1")].state.resolved
    assert resolution(e).good == 1
    # exactly at the end of the window it still applies (final *after* resolved + window)
    e2 = engine()
    feed(e2, [ticket("2026-11-02T08:00:00Z", "T1", "created", priority="P1"),
              ticket("2026-11-02T09:00:00Z", "T1", "resolved")])
    assert feed(e2, [ticket("2026-11-02T11:00:00Z", "T1", "reopened")]) == [None]


def test_the_window_runs_from_the_resolution_not_from_later_events():
    e = engine()
    out = feed(e, [ticket("2026-11-02T08:00:00Z", "T1", "created", priority="P1"),
                   ticket("2026-11-02T09:00:00Z", "T1", "resolved"),
                   ticket("2026-11-02T10:30:00Z", "T1", "customer_reply"),
                   ticket("2026-11-02T10:45:00Z", "T1", "closed"),
                   ticket("2026-11-02T11:30:00Z", "T1", "reopened")])
    assert out[:4] == [None] * 4 and out[4].reason == EXPIRED


def test_per_client_windows_differ():
    e = engine()
    out = feed(e, [ticket("2026-11-02T08:00:00Z", "T1", "created", priority="P1") | {"client": "globex"},
                   ticket("2026-11-02T09:00:00Z", "T1", "resolved") | {"client": "globex"},
                   ticket("2026-11-02T09:45:00Z", "T1", "reopened") | {"client": "globex"}])
    assert out[2] is not None and out[2].reason == EXPIRED


def test_compaction_drops_final_tickets_and_remembers_them():
    e = engine()
    feed(e, [ticket("2026-11-02T08:00:00Z", "T1", "created", priority="P1"),
             ticket("2026-11-02T09:00:00Z", "T1", "resolved"),
             ticket("2026-11-02T08:30:00Z", "T2", "created", priority="P1"),  # never resolved: kept
             ticket("2026-11-02T12:01:00Z", "T3", "created", priority="P1")])  # horizon 11:01 > final 11:00
    before = resolution(e)
    e.compact()
    assert ("acme", "T1") not in e.tickets and ("acme", "T2") in e.tickets
    assert e.stats.final_tickets == 1 and len(e.final_tickets) == 1
    after = resolution(e)
    assert (after.decided, after.good, after.bad) == (before.decided, before.good, before.bad)
    out = feed(e, [ticket("2026-11-02T12:05:00Z", "T1", "reopened"),
                   ticket("2026-11-02T12:06:00Z", "T1", "created", priority="P1")])  # never a new ticket
    assert [r.reason for r in out] == [EXPIRED, EXPIRED] and ("acme", "T1") not in e.tickets
    # the same ticket id of another client is another ticket
    assert feed(e, [ticket("2026-11-02T12:07:00Z", "T1", "created", priority="P1") | {"client": "initech"}]) \
        == [None]


def test_a_ticket_is_dropped_only_once_its_final_instant_is_behind_the_lateness_horizon():
    e = engine()
    feed(e, [ticket("2026-11-02T08:00:00Z", "T1", "created", priority="P1"),
             ticket("2026-11-02T09:00:00Z", "T1", "resolved"),
             ticket("2026-11-02T11:59:00Z", "T3", "created", priority="P1")])  # horizon 10:59 < final 11:00
    e.compact()
    assert ("acme", "T1") in e.tickets


def test_the_worker_dead_letters_expired_events_with_their_reason():
    pe = PartitionEngine(0, parse_contracts(CONTRACTS))
    for offset, d in enumerate([ticket("2026-11-02T08:00:00Z", "T1", "created", priority="P1"),
                                ticket("2026-11-02T09:00:00Z", "T1", "resolved"),
                                ticket("2026-11-02T12:00:00Z", "T1", "status", status="open")]):
        pe.process(orjson.dumps(d), offset)
    letters = pe.dead_letters()
    assert len(letters) == 1 and dict(letters[0].headers)["reason"] == EXPIRED.encode()
    assert pe.rejected[EXPIRED] == 1


def test_final_ticket_ids_are_kept_for_the_retention_then_forgotten():
    final = FinalTickets()
    h1, h2 = ticket_hash("acme", "T1"), ticket_hash("acme", "T2")
    assert h1 != h2 and ticket_hash("acme", "T1") == h1
    final.add(h1, us("2026-11-02T09:00:00+00:00"))
    final.add(h2, us("2026-11-03T09:00:00+00:00"))  # seals the first day
    assert h1 in final and h2 in final and ticket_hash("acme", "T3") not in final
    copy = FinalTickets()
    for day in final.dirty_days:
        copy.load_day(day, final.day_bytes(day))
    assert h1 in copy and h2 in copy and len(copy) == 2
    final.forget_before(us("2026-11-02T09:00:00+00:00") + (RETENTION_DAYS + 1) * DAY_US)
    assert h1 not in final and h2 in final
    with pytest.raises(ValueError, match="multiple of 8"):
        copy.load_day(1, b"\x00" * 7)


def test_a_compacted_ticket_holds_one_state_and_copies_it_before_it_changes():
    """Compaction leaves the base as the state object itself; the next in-order event copies it first, so a late
    event after that still rebuilds from the state as it was compacted (equal to the sorted input)."""
    events = [ticket("2026-11-02T08:00:00Z", "T1", "created", priority="P1"),
              ticket("2026-11-02T10:00:00Z", "T2", "created", priority="P1"),  # watermark 10:00: horizon 09:00
              ticket("2026-11-02T09:40:00Z", "T1", "priority", priority="P2"),
              ticket("2026-11-02T09:10:00Z", "T1", "status", status="pending")]  # late, inside the lateness
    e = engine()
    feed(e, events[:2])
    e.compact()
    item = e.tickets[("acme", "T1")]
    assert item.base is item.state and item.events == ()
    compacted = item.state.copy()
    feed(e, events[2:3])
    assert item.base is not item.state and item.base == compacted and item.state.priority == "P2"
    feed(e, events[3:])
    assert e.stats.rebuilds == 1 and item.base == compacted
    ordered = engine()
    feed(ordered, sorted(events, key=lambda d: d["ts"]))
    assert e.tickets[("acme", "T1")].state == ordered.tickets[("acme", "T1")].state
    assert [r.as_dict() for r in build_report(e, e.now_us)] == [r.as_dict() for r in build_report(ordered, e.now_us)]
