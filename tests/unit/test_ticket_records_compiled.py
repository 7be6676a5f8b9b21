"""A restore's compiled ticket records (native/ticket_records) against the Python loader (`_ticket_loader` in
monitor/engine_state.py): on randomized engines (compacted or not, orphans, decided, paused, reopened and
re-prioritized clocks, events behind the horizon) both restores hold the same items in the same order, the same
shared and interned objects, the same indexes and the same heap; on corrupted records (bytes changed, cut or added,
keys naming no client, SLAs the contracts lack, integers past 64 bits) both raise the same error or restore the
same."""

from __future__ import annotations

import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import engine_state
from monitor.engine_state import ClockRec, StateRec, TicketRec, all_records, encode, restore_engine
from monitor.errors import SlamonError
from tests.unit.test_restore_speed import CONTRACTS, MIN, events_of, live_engine, ticket_plan

compiled_only = pytest.mark.skipif(engine_state._ticket_records is None,
                                   reason="the compiled ticket records are not built (no Rust at install)")


def picture(engine) -> dict:
    """Everything a restore leaves of the tickets, with the identities that matter (one object for a compacted
    ticket's base and state, interned labels, the contracts' SLA and calendar objects)."""
    items = []
    for key, item in engine.tickets.items():
        s = item.state
        labels = [x for x in (s.priority, s.queue, s.channel, s.status) if x is not None]
        labels += [c.priority for c in s.clocks]
        items.append((key, item.base, s, item.base is s, type(item.events),
                      [(ts, seq, type(ev), ev.__dict__, ev.__pydantic_fields_set__, ev.__pydantic_extra__,
                        ev.__pydantic_private__) for ts, seq, ev in item.events],
                      item.last_us, item.contribs, type(item.contribs), item.pushed_deadline,
                      all(x is sys.intern(x) for x in labels), [(id(c.sla), id(c.cal)) for c in s.clocks]))
    return {"items": items, "open": engine.open_tickets, "orphans": engine.orphan_tickets, "heap": engine._heap}


def restore_both(records: dict, watermarks: dict, live, monkeypatch):
    out = []
    for compiled in (True, False):
        monkeypatch.setattr(engine_state, "COMPILED_LOADER", compiled)
        try:
            out.append(picture(restore_engine(CONTRACTS, records, b"p0/", watermarks=watermarks, now_us=live.now_us,
                                              horizon_us=live.horizon_us, seq=live._seq, stats=live.stats)))
        except SlamonError as err:
            out.append((type(err), str(err)))
    return out


@compiled_only
@settings(max_examples=80, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(plans=st.lists(ticket_plan, min_size=1, max_size=25), advance_every=st.integers(1, 7),
       compact_every=st.integers(2, 40), late_by=st.integers(0, 6 * 60))
def test_compiled_records_restore_what_the_python_loader_restores(monkeypatch, plans, advance_every, compact_every,
                                                                   late_by):
    live = live_engine(events_of(plans), advance_every, compact_every)
    watermarks = {c: wm + late_by * MIN for c, wm in live.watermarks.items()}
    records = {k: v for k, v in all_records(live, b"p0/") if v is not None}
    compiled, reference = restore_both(records, watermarks, live, monkeypatch)
    assert compiled == reference


edit = st.one_of(
    st.tuples(st.just("byte"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("append"), st.integers(0, 255), st.just(0)),
    st.tuples(st.just("key"), st.sampled_from([b"nobody\0T1", b"acme", b"acme\0\xff\xfe", b"globex\0"]), st.just(0)),
)


@compiled_only
@settings(max_examples=150, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(plans=st.lists(ticket_plan, min_size=1, max_size=8), edits=st.lists(st.tuples(st.integers(0, 50), edit),
                                                                            min_size=1, max_size=3))
def test_corrupted_records_fail_or_restore_alike(monkeypatch, plans, edits):
    live = live_engine(events_of(plans), 3, 5)
    records = {k: v for k, v in all_records(live, b"p0/") if v is not None}
    for which, (how, a, b) in edits:
        tickets = [k for k in records if k.startswith(b"p0/t/")]
        if not tickets:
            break
        key = tickets[which % len(tickets)]
        value = records[key]
        at = a % (len(value) or 1) if how in ("byte", "cut") else 0  # an earlier edit may have cut it to nothing
        if how == "byte":
            value = value[:at] + bytes([b]) + value[at + 1:]
        elif how == "cut":
            value = value[:at]
        elif how == "append":
            value = value + bytes([a])
        else:
            del records[key]
            key = b"p0/t/" + a
        records[key] = value
    compiled, reference = restore_both(records, dict(live.watermarks), live, monkeypatch)
    assert compiled == reference


@compiled_only
@pytest.mark.parametrize("rec", [
    # integers past 64 bits (msgspec reads them; the compiled reader hands them over)
    TicketRec(StateRec(1, "P1", None, "email", None, False, None, 0, []), None, [], 2**63 + 5),
    TicketRec(StateRec(-2**40, "P1", "q" * 300, "c" * 70_000, "open", True, 2**62, 3, [
        ClockRec("fr", 60 * MIN, "P1", 5, None, 2**40, None, None)]), None, [], -1),
    # an SLA the contracts lack, a clock decided (its contribution), a separate current state (not read)
    TicketRec(StateRec(1, "P2", None, None, None, False, None, 0, [ClockRec("nope", 1, "P2", 0, 0, 1, None, None)]),
              None, [], 5),
    TicketRec(StateRec(1, "P2", None, None, None, False, None, 0, [ClockRec("fr", 1, "P2", 7, None, None, False, 9)]),
              StateRec(None, None, None, None, None, True, None, 1, []), [], 5),
], ids=["uint64", "long-strings", "unknown-sla", "decided"])
def test_edge_records_restore_alike(monkeypatch, rec):
    live = live_engine(events_of([("acme", 0, True, "P1", "email", [])]), 1, 1)
    records = {k: v for k, v in all_records(live, b"p0/") if v is not None}
    records[b"p0/t/acme\0EDGE"] = encode(rec)
    compiled, reference = restore_both(records, dict(live.watermarks), live, monkeypatch)
    assert compiled == reference
