"""The fast ticket restore (monitor/engine_state.py `_Tickets`, issue 18) settles each ticket while it builds its
clocks instead of asking the engine: what it leaves (contributions, the open and orphan indexes, the deadline heap
and each item's pushed deadline) must be what `Engine._settle_ticket` computes from the restored states, and the
states, bases and events what the live engine held; on randomized engines, compacted or not, with orphans, decided,
paused, reopened and re-prioritized clocks, events behind the horizon, and records of every path."""

from __future__ import annotations

import heapq

import msgspec
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.contracts import parse_contracts
from monitor.engine import Engine, TicketItem
from monitor.engine_state import EventRec, TicketRec, _event, all_records, encode, restore, restore_engine, snapshot
from monitor.events import TicketEvent, decode_event, format_us
from streams.partition_engine import PartitionEngine
from streams.state_records import changed_records, restore_partition
from tests.builders import us

CONTRACTS = parse_contracts("""
allowed_lateness: 1h
reopen_window: 2h
clients:
  acme:
    timezone: Europe/Berlin
    calendar: {hours: {mon-fri: "08:00-18:00"}}
    slas:
      - {name: fr, kind: first_response, target: {P1: 30m, P2: 2h}, objective: 0.9}
      - {name: res, kind: resolution, target: {P1: 4h, P2: 1d}, objective: 0.9, time: calendar,
         pause_statuses: [waiting]}
      - {name: email_fr, kind: first_response, target: {P1: 1h, P2: 3h}, objective: 0.9, channels: [email]}
  globex:
    timezone: UTC
    slas:
      - {name: fr, kind: first_response, time: calendar, target: {P1: 15m}, objective: 0.95}
""")
START = us("2026-11-02T07:30:00+01:00")
MIN = 60_000_000
STEPS = ["agent_reply", "customer_reply", "status:waiting", "status:open", "priority:P1", "priority:P2", "resolved",
         "reopened", "closed"]

ticket_plan = st.tuples(
    st.sampled_from(["acme", "globex"]),
    st.integers(0, 48 * 60),  # created, minutes after START
    st.booleans(),  # created at all (else: orphan events only)
    st.sampled_from(["P1", "P2"]),
    st.sampled_from(["email", "chat"]),
    st.lists(st.tuples(st.integers(-90, 600), st.sampled_from(STEPS)), max_size=5),  # (minutes after the previous)
)


def events_of(plans) -> list[dict]:
    out = []
    for i, (client, created, has_created, priority, channel, steps) in enumerate(plans):
        t = START + created * MIN
        tid = f"T{i}"
        if has_created:
            out.append({"kind": "ticket", "client": client, "ticket_id": tid, "type": "created", "ts": t,
                        "priority": priority, "channel": channel})
        for delta, step in steps:
            t += delta * MIN  # a negative step: an event older than the ticket's newest (a rebuild)
            kind, _, value = step.partition(":")
            extra = {"status": value} if kind == "status" else {"priority": value} if kind == "priority" else {}
            out.append({"kind": "ticket", "client": client, "ticket_id": tid, "type": kind, "ts": t, **extra})
    out.sort(key=lambda d: d["ts"])
    for n, d in enumerate(out):
        d["event_id"], d["ts"] = f"e{n}", format_us(d["ts"])
    return out


def live_engine(events: list[dict], advance_every: int, compact_every: int) -> Engine:
    engine = Engine(CONTRACTS)
    for n, d in enumerate(events):
        ev = decode_event(orjson.dumps(d), CONTRACTS.clients)
        assert not hasattr(ev, "reason"), ev
        engine.ingest(ev)
        if n % advance_every == 0:
            engine.advance_to(ev.ts_us + 30 * MIN)
        if n % compact_every == compact_every - 1:
            engine.compact()
    return engine


def resettled(engine: Engine) -> Engine:
    """A blank engine holding the restored items, each settled by the engine itself (`_settle_ticket`)."""
    fresh = Engine(CONTRACTS)
    for key, item in engine.tickets.items():
        copy = TicketItem(item.base, item.state, item.events, item.last_us)
        fresh.tickets[key] = copy
        fresh._settle_ticket(key[0], key, copy)
    return fresh


def assert_settled_as_the_engine_would(restored: Engine) -> None:
    ref = resettled(restored)
    assert restored.open_tickets == ref.open_tickets
    assert restored.orphan_tickets == ref.orphan_tickets
    for key, item in restored.tickets.items():
        again = ref.tickets[key]
        assert item.contribs == again.contribs and type(item.contribs) is type(again.contribs), key
        assert item.pushed_deadline == again.pushed_deadline == item.state.next_deadline(), key
    assert sorted(restored._heap) == sorted(ref._heap)
    heap = list(restored._heap)
    heapq.heapify(heap)
    assert heap == restored._heap  # a heap already


def assert_same_items(restored: Engine, live: Engine) -> None:
    assert set(restored.tickets) == set(live.tickets)
    assert restored.open_tickets == live.open_tickets
    assert restored.orphan_tickets == live.orphan_tickets
    for key, item in restored.tickets.items():
        was = live.tickets[key]
        assert item.state == was.state and item.contribs == was.contribs, key
        assert item.last_us == was.last_us, key
        if item.events:  # else compacted by the restore (behind the horizon): the state is the base
            assert item.base == was.base, key
            assert [(ts, seq, ev.type, ev.priority, ev.status, ev.queue, ev.channel) for ts, seq, ev in item.events] \
                == [(ts, seq, ev.type, ev.priority, ev.status, ev.queue, ev.channel) for ts, seq, ev in was.events]
        else:
            assert item.events == () and type(item.events) is tuple, key  # the shared empty tuple, no list each
            assert item.base is item.state, key  # one object, copied (`own_base`) before the state next changes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(plans=st.lists(ticket_plan, min_size=1, max_size=25), advance_every=st.integers(1, 7),
       compact_every=st.integers(3, 40), late_by=st.integers(0, 6 * 60))
def test_restored_tickets_are_settled_as_the_engine_settles_them(plans, advance_every, compact_every, late_by):
    live = live_engine(events_of(plans), advance_every, compact_every)
    # a watermark moved on since (late_by minutes): records with events behind the horizon are restored compacted
    watermarks = {c: wm + late_by * MIN for c, wm in live.watermarks.items()}
    records = {k: v for k, v in all_records(live, b"p0/") if v is not None}
    restored = restore_engine(CONTRACTS, records, b"p0/", watermarks=watermarks, now_us=live.now_us,
                              horizon_us=live.horizon_us, seq=live._seq, stats=live.stats)
    assert_settled_as_the_engine_would(restored)
    assert_same_items(restored, live)
    again = restore(CONTRACTS, snapshot(live))  # the whole-engine snapshot: the live watermarks
    assert_settled_as_the_engine_would(again)
    assert_same_items(again, live)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans=st.lists(ticket_plan, min_size=1, max_size=12))
def test_a_record_without_its_state_is_rebuilt_from_its_events_and_settled(plans):
    live = live_engine(events_of(plans), 3, 10_000)
    records = {}
    for key, value in all_records(live, b""):
        if value is not None and key.startswith(b"t/"):
            rec = msgspec.msgpack.decode(value, type=TicketRec)
            if rec.events:
                value = encode(TicketRec(rec.base, None, rec.events, rec.last_us))
        if value is not None:
            records[key] = value
    restored = restore_engine(CONTRACTS, records, b"", watermarks=dict(live.watermarks), now_us=live.now_us,
                              horizon_us=live.horizon_us, seq=live._seq, stats=live.stats)
    assert_settled_as_the_engine_would(restored)
    assert_same_items(restored, live)


def test_a_restored_event_is_what_model_construct_builds():
    for e in (EventRec(5, 7, "priority", "P1", None, "q", None), EventRec(1, 2, "status", None, "waiting", None, "x")):
        fast = _event("acme", "T1", e)
        slow = TicketEvent.model_construct(event_id="", client="acme", kind="ticket", ticket_id="T1", type=e.type,
                                           priority=e.priority, status=e.status, queue=e.queue, channel=e.channel)
        assert type(fast) is TicketEvent and fast == slow
        assert fast.__dict__ == slow.__dict__ and list(fast.__dict__) == list(slow.__dict__)
        assert fast.model_fields_set == slow.model_fields_set
        assert fast.__pydantic_extra__ is None and fast.__pydantic_private__ is None
        assert fast.model_dump() == slow.model_dump()


def test_a_partition_restore_reads_its_dedupe_ids_from_the_one_pass():
    pe = PartitionEngine(0, CONTRACTS)
    for offset, d in enumerate(events_of([("acme", 10, True, "P1", "email", [(5, "agent_reply")]),
                                          ("globex", 20, True, "P1", "chat", [])])):
        pe.process(orjson.dumps(d), offset)
    store = {k: v for k, v in changed_records(pe) if v is not None}
    back = restore_partition(0, CONTRACTS, store)
    assert back.engine.seen == pe.engine.seen and back.checkpoint_state.seen_chunks == pe.checkpoint_state.seen_chunks
    assert_settled_as_the_engine_would(back.engine)
    assert_same_items(back.engine, pe.engine)
