"""The checkpoint record format (streams/state_records.py, monitor/engine_state.py): incremental records restore
the same holder as a full rewrite; old pickles, other formats and forged records are refused with the key and
what to do; a checkpoint writes only what changed."""

from __future__ import annotations

import msgspec
import orjson
import pytest

from monitor.contracts import parse_contracts
from monitor.engine_state import TicketRec, encode
from monitor.report import build_report
from streams.partition_engine import PartitionEngine
from streams.state_records import StateRecordError, changed_records, meta_key, restore_partition
from tests.builders import call, probe, ticket

CONTRACTS = parse_contracts("""
reopen_window: 1h
clients:
  acme:
    timezone: UTC
    slas:
      - {name: fr, kind: first_response, time: calendar, target: {P1: 30m}, objective: 0.9}
      - {name: res, kind: resolution, time: calendar, target: {P1: 4h}, objective: 0.9}
      - {name: sl, kind: service_level, target: 0.8, within: 20s}
      - {name: up, kind: uptime, target: 0.99, service: portal, probe_interval: 60s}
""")


def fed(events: list[dict]) -> PartitionEngine:
    pe = PartitionEngine(0, CONTRACTS)
    for offset, d in enumerate(events):
        pe.process(orjson.dumps(d), offset)
    return pe


def apply(store: dict, records) -> dict:
    for key, value in records:
        if value is None:
            store.pop(key, None)
        else:
            store[key] = value
    return store


EVENTS = [ticket("2026-11-02T08:00:00Z", "T1", "created", priority="P1"),
          probe("2026-11-02T08:00:00Z", "up"),
          call("2026-11-02T08:01:00Z", "C1", "offered"), call("2026-11-02T08:01:30Z", "C1", "answered"),
          ticket("2026-11-02T08:40:00Z", "T1", "agent_reply"), probe("2026-11-02T08:01:00Z", "down"),
          ticket("2026-11-02T09:00:00Z", "T2", "created", priority="P1")]


def test_incremental_checkpoints_restore_what_a_full_rewrite_restores():
    pe = PartitionEngine(0, CONTRACTS)
    store: dict[bytes, bytes] = {}
    for offset, d in enumerate(EVENTS):
        pe.process(orjson.dumps(d), offset)
        apply(store, changed_records(pe))
    full = apply({}, changed_records(pe, full=True))
    at = pe.engine.now_us
    expected = [r.as_dict() for r in build_report(pe.engine, at)]
    for s in (store, full):
        restored = restore_partition(0, CONTRACTS, s)
        assert [r.as_dict() for r in build_report(restored.engine, at)] == expected
        assert restored.offset == len(EVENTS) - 1 and set(restored.engine.seen) == set(pe.engine.seen)


def test_a_checkpoint_writes_only_what_changed():
    pe = fed(EVENTS)
    changed_records(pe)
    pe.process(orjson.dumps(ticket("2026-11-02T09:05:00Z", "T2", "agent_reply")), len(EVENTS))
    keys = [k for k, _ in changed_records(pe)]
    assert keys[-1] == meta_key(0)
    tickets = [k for k in keys if k.startswith(b"p0/t/")]
    assert tickets == [b"p0/t/acme\x00T2"]  # T1 did not change
    assert not any(k.startswith((b"p0/c/", b"p0/w/", b"p0/u/")) for k in keys)


def test_a_format_1_pickle_snapshot_is_refused_with_how_to_rebuild():
    store = {b"p0.meta": b'{"v": 1, "slot": 0}', b"p0.s0.c0": b"\x80\x05..."}
    with pytest.raises(StateRecordError, match=r"format-1 \(pickle\).*delete the snapshots topic, reset the consumer"):
        restore_partition(0, CONTRACTS, store)
    with pytest.raises(StateRecordError, match="rebuild"):
        restore_partition(0, CONTRACTS, store)


def test_a_meta_record_of_another_format_or_partition_is_refused():
    store = apply({}, changed_records(fed(EVENTS)))
    meta = msgspec.msgpack.decode(store[meta_key(0)])
    for change, message in (({"format": 3}, "format 3"), ({"partition": 1}, "says partition 1")):
        with pytest.raises(StateRecordError, match=message):
            restore_partition(0, CONTRACTS, {**store, meta_key(0): msgspec.msgpack.encode({**meta, **change})})
    with pytest.raises(StateRecordError, match="meta record unreadable"):
        restore_partition(0, CONTRACTS, {**store, meta_key(0): b"\xc1garbage"})


def test_forged_records_are_refused_with_their_key_never_executed():
    store = apply({}, changed_records(fed(EVENTS)))
    key = b"p0/t/acme\x00T1"
    rec = msgspec.msgpack.decode(store[key], type=TicketRec)
    (rec.state or rec.base).clocks[0].sla = "no-such-sla"
    cases = {
        encode(rec): "no ticket SLA acme/no-such-sla",
        b"\x80\x04\x95cos\nsystem\n": "not a valid TicketRec",  # a pickle is just invalid bytes here
        msgspec.msgpack.encode([1, 2, 3]): "not a valid TicketRec",
    }
    for value, message in cases.items():
        with pytest.raises(StateRecordError, match=message) as err:
            restore_partition(0, CONTRACTS, {**store, key: value})
        assert "p0/t/acme" in str(err.value)
    with pytest.raises(StateRecordError, match="names no client"):
        restore_partition(0, CONTRACTS, {**store, b"p0/t/nobody\x00T1": store[key]})


def test_a_tally_written_before_integer_totals_restores_in_millionths():
    """Records before integer totals held the summed seconds as a float: read, they are whole millionths again."""
    from monitor.engine_state import PeriodRec, _tally_of, decode

    old = encode(PeriodRec("acme", "sl", "2026-11", None, (3.0, 2.0, 1.0, 0.1 + 0.2), [("P1", (1.0, 1.0, 0.0, 30.5))],
                           None))
    rec = decode(b"p0/p/acme", old, PeriodRec)
    assert (_tally_of(rec.tally).total_us, _tally_of(rec.by_priority[0][1]).total_us) == (300_000, 30_500_000)
    new = encode(PeriodRec("acme", "sl", "2026-11", None, (3.0, 2.0, 1.0, 300_000), [], None))
    assert _tally_of(decode(b"p0/p/acme", new, PeriodRec).tally).total_us == 300_000
