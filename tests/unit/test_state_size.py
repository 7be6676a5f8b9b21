"""State size guards (bench/state_scale.py has the full figures): a worker may hold a million open tickets, so an
open ticket must stay under 1 KB in memory and far under it in a snapshot; and the copy-on-write clocks that
keep it small must not leak changes between a ticket's compacted base and its live state."""

from __future__ import annotations

import gc
import tracemalloc

import orjson

from monitor.contracts import parse_contracts
from monitor.engine import Engine
from monitor.engine_state import restore, snapshot
from monitor.events import decode_event, format_us
from tests.builders import us

# Month-long calendar targets: every ticket below is open with both clocks running (no breach bookkeeping).
CONTRACT = """
allowed_lateness: 1h
clients:
  acme:
    timezone: Europe/Berlin
    slas:
      - {name: fr, kind: first_response, time: calendar, target: {P1: 30d, P2: 30d}, objective: 0.9}
      - {name: res, kind: resolution, time: calendar, target: {P1: 40d, P2: 40d}, objective: 0.9,
         pause_statuses: [waiting_on_customer]}
"""
N = 10_000
END = us("2026-11-20T12:00:00+00:00")
SPAN = 7 * 86_400_000_000  # a week of arrivals: all but the last hour older than the allowed lateness


def _open_ticket_events(contracts, n: int = N) -> list:
    step = SPAN // n
    return [decode_event(orjson.dumps({
        "event_id": f"acme-T{i:06d}-1", "kind": "ticket", "client": "acme", "ts": format_us(END - SPAN + i * step),
        "ticket_id": f"acme-T{i:06d}", "type": "created", "priority": ("P1", "P2")[i % 2], "channel": "email",
    }), contracts.clients) for i in range(n)]


def _open_engine(contracts, n: int = N) -> Engine:
    engine = Engine(contracts)
    for event in _open_ticket_events(contracts, n):
        assert engine.ingest(event) is None
    engine.advance_to(END)
    engine.compact()  # the steady state: events older than the lateness folded into the base states
    return engine


def test_an_open_ticket_takes_under_1kb_of_memory():
    contracts = parse_contracts(CONTRACT)
    _open_engine(contracts, 2_000)  # warm the process-wide caches (calendars, periods) outside the measure
    gc.collect()
    tracemalloc.start()
    try:
        empty = Engine(contracts)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        del empty
        engine = _open_engine(contracts)
        gc.collect()
        per_ticket = (tracemalloc.get_traced_memory()[0] - before) / N
    finally:
        tracemalloc.stop()
    assert sum(c.good is None for item in engine.tickets.values() for c in item.state.clocks) == 2 * N
    assert len(engine.open_tickets) == N
    assert per_ticket < 1024, f"{per_ticket:.0f} bytes per open ticket"


def test_a_snapshot_takes_under_150_bytes_per_open_ticket_and_keeps_clocks_shared():
    contracts = parse_contracts(CONTRACT)
    engine = _open_engine(contracts)
    blob = snapshot(engine)
    assert len(blob) / N < 150, f"{len(blob) / N:.0f} bytes per open ticket"
    restored = restore(contracts, blob)
    compacted = [item for item in restored.tickets.values() if not item.events]
    assert len(compacted) > N * 0.95
    # the compacted base and the live state hold one clocks tuple until either changes: restored as shared
    assert all(item.base.clocks is item.state.clocks for item in compacted)


def test_changing_a_copy_leaves_the_original_alone():
    contracts = parse_contracts(CONTRACT)
    engine = _open_engine(contracts)
    item = engine.tickets[("acme", "acme-T000000")]
    base_before = [(c.good, c.elapsed_us, c.since_us, c.deadline_us) for c in item.base.clocks]
    model = engine.clients["acme"]
    reply = decode_event(orjson.dumps({"event_id": "r1", "kind": "ticket", "client": "acme", "ts": format_us(END),
                                       "ticket_id": "acme-T000000", "type": "agent_reply"}), contracts.clients)
    item.own_base()  # as the engine does before changing a state in place (compacted: the base is the state)
    assert item.base.clocks is item.state.clocks  # shared until one side changes them
    item.state.apply(reply, END, model.ticket_slas, model.calendars)
    assert [c.good for c in item.state.clocks] == [True, None]
    assert [(c.good, c.elapsed_us, c.since_us, c.deadline_us) for c in item.base.clocks] == base_before
    assert item.base.copy().clocks[0].good is None  # a rebuild starts from the untouched base
