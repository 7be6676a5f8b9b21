"""An engine's state as keyed records: what a checkpoint writes and a restore reads (no I/O here).

The record format (MessagePack via msgspec, each struct encoded as an array of its fields in the order below;
version `FORMAT` in the partition's meta record, see `streams.state_records`). Keys are bytes, `<prefix>` is
chosen by the caller (the partition), `\\0` separates names:

| key                              | value                                                               |
|----------------------------------|---------------------------------------------------------------------|
| `<prefix>t/<client>\\0<ticket>`    | `TicketRec`: base state, events since the base, last event time      |
| `<prefix>c/<client>\\0<call>`      | `CallRec`: a call's first offer/answer/abandon/end                  |
| `<prefix>b/<client>\\0<sla>\\0<n>`  | `BucketRec`: 15-minute bucket n of an SLA ledger, with exact instants |
| `<prefix>p/<client>\\0<sla>\\0<lbl>`| `PeriodRec`: one period's tally, priorities, latency sketch          |
| `<prefix>r/<client>\\0<sla>\\0<d>`  | `BreachDayRec`: breached ticket ids decided on UTC day d (reports)   |
| `<prefix>u/<client>\\0<sla>`       | `UptimeRec`: an uptime SLA's first probe ever                        |
| `<prefix>w/<client>\\0<sla>\\0<n>`  | `ProbesRec`: the kept (not yet folded) probes of 15-minute bucket n  |
| `<prefix>v/<client>\\0<sla>\\0<n>`  | `UptimeBucketRec`: folded up/down/unknown time of bucket n          |
| `<prefix>x/<day>`                  | raw bytes: sorted int64 hashes of the tickets made final that day   |
| `<prefix>d/<n>`                    | `SeenRec`: dedupe ids (event_id, ts) added by one checkpoint         |

A value of None (a Kafka tombstone) means the item is gone (final, evicted, pruned). Contract objects are
written by name (SLA name) and resolved against the contracts loaded at restore, so an edited target applies to
restored open clocks; a record naming an SLA the contracts no longer have is refused. Decoding validates every
field's type: a forged or corrupt record raises `StateRecordError` (it never runs code, unlike a pickle).
"""

from __future__ import annotations

import gc
import heapq
from bisect import bisect_left
from collections import Counter
from functools import partial
from sys import intern

import msgspec
from pydantic import BaseModel

from monitor.calls import CallState
from monitor.compiled import compiled_module
from monitor.contracts import Contracts
from monitor.engine import CallItem, Engine, PipelineStats, TicketItem
from monitor.errors import SlamonError
from monitor.events import TicketEvent
from monitor.ledger import BUCKET_US, DAY_US, SlaLedger, Tally, to_millionths
from monitor.periods import PeriodWindow
from monitor.sketch import LogSketch
from monitor.tickets import Clock, TicketState

# A restore's ticket records read by native/ticket_records (the Python loader in `_ticket_loader` is the
# reference, forced with SLAMON_TICKET_RECORDS=python; tests/unit/test_ticket_records_compiled.py holds the two
# together).
_ticket_records, COMPILED_LOADER = compiled_module("monitor._ticket_records", "SLAMON_TICKET_RECORDS")

FORMAT = 2


class StateRecordError(SlamonError, ValueError):
    """A state record that cannot be used; the message names the key and what is wrong."""


# The records of items are decoded by the million and hold no cycles: gc=False (not tracked by the collector, a
# fifth less decoding time; the bytes are the same).
class ClockRec(msgspec.Struct, array_like=True, gc=False):
    sla: str
    target_us: int
    priority: str
    elapsed_us: int
    since_us: int | None
    deadline_us: int | None
    good: bool | None
    decided_us: int | None


class StateRec(msgspec.Struct, array_like=True, gc=False):
    created_us: int | None
    priority: str | None
    queue: str | None
    channel: str | None
    status: str | None
    resolved: bool
    resolved_us: int | None
    orphans: int
    clocks: list[ClockRec]


class EventRec(msgspec.Struct, array_like=True, gc=False):  # what a rebuild applies (not the id: dedupe has its own)
    ts_us: int
    seq: int
    type: str
    priority: str | None
    status: str | None
    queue: str | None
    channel: str | None


class TicketRec(msgspec.Struct, array_like=True, gc=False):  # client and ticket id are in the key
    base: StateRec  # the state before `events` (the current state when there are none)
    state: StateRec | None  # the current state when there are events (restored without replaying them)
    events: list[EventRec]
    last_us: int


class CallRec(msgspec.Struct, array_like=True, gc=False):  # client and call id are in the key
    queue: str | None
    offered_us: int | None
    answered_us: int | None
    abandoned_us: int | None
    ended_us: int | None
    wrapup_s: float


# decided, good, bad, total: the total in whole millionths (an int); a float is seconds or points, as records before
# integer totals held it
TallyRec = tuple[float, float, float, int | float]


class BucketRec(msgspec.Struct, array_like=True):
    client: str
    sla: str
    bucket: int
    tally: TallyRec | None
    instants: list[tuple[int, TallyRec]] | None  # None: pruned (only the bucket tally is kept)


class SketchRec(msgspec.Struct, array_like=True):
    buckets: list[tuple[int, int]]
    zeros: int
    count: int


class PeriodRec(msgspec.Struct, array_like=True):
    client: str
    sla: str
    label: str
    window: tuple[int, int] | None  # start, end (None: a rolling period)
    tally: TallyRec | None
    by_priority: list[tuple[str, TallyRec]]
    sketch: SketchRec | None


class BreachDayRec(msgspec.Struct, array_like=True):
    client: str
    sla: str
    day: int
    items: list[tuple[int, str]]


class SeenRec(msgspec.Struct, array_like=True):
    ids: list[str]
    ts: list[int]


_ENCODER = msgspec.msgpack.Encoder()
_DECODERS: dict[type, msgspec.msgpack.Decoder] = {}


def encode(rec: msgspec.Struct) -> bytes:
    return _ENCODER.encode(rec)


def decode(key: bytes, value: bytes, cls: type):
    try:
        decoder = _DECODERS.get(cls)
        if decoder is None:
            decoder = _DECODERS[cls] = msgspec.msgpack.Decoder(cls)
        return decoder.decode(value)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise StateRecordError(f"state record {key[:120]!r}: not a valid {cls.__name__}: {err}") from None


def _name_key(*parts: str) -> bytes:
    return "\0".join(parts).encode()


# --- engine -> records -------------------------------------------------------------------------------------


# Encoding writes tuples in the structs' field order (array_like structs are MessagePack arrays, so the bytes are
# the same): building a Struct per state, clock and event only to encode it cost a third of a checkpoint.


def _state_rec(s: TicketState) -> tuple:  # StateRec
    return (s.created_us, s.priority, s.queue, s.channel, s.status, s.resolved, s.resolved_us, s.orphans,
            [(c.sla.name, c.target_us, c.priority, c.elapsed_us, c.since_us, c.deadline_us, c.good, c.decided_us)
             for c in s.clocks])


def ticket_value(key: tuple[str, str], item: TicketItem) -> bytes:  # TicketRec
    if not item.events:  # compacted: the state is the base
        return encode((_state_rec(item.state), None, (), item.last_us))
    events = [(ts, seq, ev.type, ev.priority, ev.status, ev.queue, ev.channel) for ts, seq, ev in item.events]
    return encode((_state_rec(item.base), _state_rec(item.state), events, item.last_us))


def call_value(key: tuple[str, str], item: CallItem) -> bytes:  # CallRec
    s = item.state
    return encode((s.queue, s.offered_us, s.answered_us, s.abandoned_us, s.ended_us, s.wrapup_s))


def _tally(t: Tally | None) -> TallyRec | None:
    return None if t is None else (t.decided, t.good, t.bad, t.total_us)


def bucket_value(ledger: SlaLedger, bucket: int) -> bytes | None:
    tally = ledger.buckets.get(bucket)
    if tally is None:
        return None
    detail = ledger.instants.get(bucket)
    instants = None if detail is None else [(at, _tally(t)) for at, t in detail.items()]
    return encode(BucketRec(ledger.client, ledger.sla, bucket, _tally(tally), instants))


def period_value(ledger: SlaLedger, label: str) -> bytes | None:
    tally = ledger.periods.get(label)
    if tally is None:
        return None
    window = ledger.windows.get(label)
    sketch = ledger.sketches.get(label)
    return encode(PeriodRec(
        ledger.client, ledger.sla, label, None if window is None else (window.start_us, window.end_us),
        _tally(tally), [(p, _tally(t)) for (lbl, p), t in ledger.by_priority.items() if lbl == label],
        None if sketch is None else SketchRec(sorted(sketch.buckets.items()), sketch.zeros, sketch.count),
    ))


def breach_day_value(ledger: SlaLedger, day: int) -> bytes | None:
    items = ledger.breaches_on(day)
    return encode(BreachDayRec(ledger.client, ledger.sla, day, items)) if items else None


def changed_records(engine: Engine, prefix: bytes) -> list[tuple[bytes, bytes | None]]:
    """Records of what changed since the last call (None: gone), and clears the marks. Dedupe ids are not
    included (the caller chunks `engine.changes.seen`, see `seen_value`)."""
    changes = engine.changes
    if changes is None:
        raise ValueError("the engine does not track changes (Engine(track_changes=True))")
    tickets, calls = engine.tickets, engine.calls
    t, c = prefix.decode() + "t/", prefix.decode() + "c/"
    out: list[tuple[bytes, bytes | None]] = [
        (f"{t}{client}\0{tid}".encode(), None if (item := tickets.get((client, tid))) is None
         else ticket_value((client, tid), item)) for client, tid in changes.tickets]
    out += [(f"{c}{client}\0{cid}".encode(), None if (item := calls.get((client, cid))) is None
             else call_value((client, cid), item)) for client, cid in changes.calls]
    changes.tickets, changes.calls = set(), set()
    for ledger in engine.ledgers.values():
        out.extend(_ledger_records(ledger, prefix, ledger.dirty_buckets, ledger.dirty_labels,
                                   ledger.dirty_breach_days))
        ledger.dirty_buckets, ledger.dirty_labels, ledger.dirty_breach_days = set(), set(), set()
    out.extend(_final_ticket_records(engine, prefix))
    out.extend(uptime_records(engine, prefix, full=False))
    return out


def compiled_records(native, shell: Engine, prefix: bytes, full: bool) -> tuple[list[tuple[bytes, bytes | None]], list]:
    """`changed_records` (`full`: `all_records`) of a worker's compiled engine (native/engine `LivePartition`, which
    shapes each record as the functions above do, for the same encoder), the uptime ledgers' from `shell`; and the
    dedupe ids added since the last call (all of them when `full`), as (event_id, ts)."""
    tickets, calls, cells, finals, seen = native.take_changes(full)
    t, c = prefix + b"t/", prefix + b"c/"
    out = [(t + _name_key(client, tid), None if v is None else encode(v)) for client, tid, v in tickets]
    out += [(c + _name_key(client, cid), None if v is None else encode(v)) for client, cid, v in calls]
    out += [(prefix + kind.encode() + b"/" + _name_key(client, sla, key), None if v is None else encode(v))
            for kind, client, sla, key, v in cells]
    out += [(prefix + b"x/" + str(day).encode(), v) for day, v in finals]
    out.extend(uptime_records(shell, prefix, full=full))
    return out, seen


def all_records(engine: Engine, prefix: bytes) -> list[tuple[bytes, bytes | None]]:
    """Every record of the engine's state (a first checkpoint, a rewrite after a failed write); clears the
    change marks. Dedupe ids are not included (see `changed_records`)."""
    if engine.changes is not None:
        engine.changes.tickets, engine.changes.calls = set(), set()
    out: list[tuple[bytes, bytes | None]] = []
    out += [(prefix + b"t/" + _name_key(*key), ticket_value(key, item)) for key, item in engine.tickets.items()]
    out += [(prefix + b"c/" + _name_key(*key), call_value(key, item)) for key, item in engine.calls.items()]
    for ledger in engine.ledgers.values():
        days = {at // DAY_US for listed in ledger.breaches.values() for at, _ in listed}
        out.extend(_ledger_records(ledger, prefix, ledger.buckets, ledger.periods, days))
        ledger.dirty_buckets, ledger.dirty_labels, ledger.dirty_breach_days = set(), set(), set()
    final = engine.final_tickets
    final.dirty_days = set(final.sealed) | ({final.open_day} if final.open_day is not None else set())
    final.dropped_days = set()
    out.extend(_final_ticket_records(engine, prefix))
    out.extend(uptime_records(engine, prefix, full=True))
    return out


def _ledger_records(ledger: SlaLedger, prefix: bytes, buckets, labels, breach_days):
    name = _name_key(ledger.client, ledger.sla)
    for bucket in buckets:
        yield prefix + b"b/" + name + b"\0" + str(bucket).encode(), bucket_value(ledger, bucket)
    for label in labels:
        yield prefix + b"p/" + name + b"\0" + label.encode(), period_value(ledger, label)
    for day in breach_days:
        yield prefix + b"r/" + name + b"\0" + str(day).encode(), breach_day_value(ledger, day)


def _final_ticket_records(engine: Engine, prefix: bytes):
    final = engine.final_tickets
    for day in final.dirty_days:
        yield prefix + b"x/" + str(day).encode(), final.day_bytes(day)
    for day in final.dropped_days:
        yield prefix + b"x/" + str(day).encode(), None
    final.dirty_days, final.dropped_days = set(), set()


def seen_value(entries: list[tuple[str, int]]) -> bytes:
    return encode(SeenRec([e for e, _ in entries], [t for _, t in entries]))


# --- records -> engine -------------------------------------------------------------------------------------


def restore_engine(contracts: Contracts, records: dict[bytes, bytes], prefix: bytes, *, watermarks: dict[str, int],
                   now_us: int, horizon_us: int, seq: int, stats: PipelineStats,
                   others: list[tuple[bytes, bytes]] | None = None, **kwargs) -> Engine:
    """An engine for `contracts` holding the state the records describe (the newest value per key). `others`: a
    list to append the records under `prefix` that are not the engine's to (the caller's own kinds, read without
    a second pass over every record)."""
    collecting = gc.isenabled()
    gc.disable()  # millions of long-lived objects: collections during the build find nothing and cost ~30 %
    try:
        return _restore_engine(contracts, records, prefix, watermarks=watermarks, now_us=now_us,
                               horizon_us=horizon_us, seq=seq, stats=stats, others=others, **kwargs)
    finally:
        if collecting:
            gc.enable()


def _restore_engine(contracts: Contracts, records: dict[bytes, bytes], prefix: bytes, *, watermarks: dict[str, int],
                    now_us: int, horizon_us: int, seq: int, stats: PipelineStats,
                    others: list[tuple[bytes, bytes]] | None = None, **kwargs) -> Engine:
    engine = Engine(contracts, **kwargs)
    engine.watermarks, engine.now_us, engine.horizon_us, engine._seq, engine.stats = (
        dict(watermarks), now_us, horizon_us, seq, stats)
    n = len(prefix)
    uptime: dict[int, tuple] = {}  # an uptime ledger's probes span several records: gathered, then restored
    loaders = {**_LOADERS, b"u/": partial(_load_uptime, parts=uptime), b"w/": partial(_load_probes, parts=uptime),
               b"v/": partial(_load_uptime_bucket, parts=uptime)}
    load_ticket, finish_tickets, load_compiled = _ticket_loader(engine)
    start, ticket_prefix = n + 2, prefix + b"t/"
    # compiled: the ticket records put in on the way (in order), the others handed back for the loop below
    rest = records.items() if load_compiled is None else load_compiled(records, ticket_prefix, start)
    for key, value in rest:
        if key.startswith(ticket_prefix):  # most records
            if value is not None:
                load_ticket(key, value, start)
            continue
        if value is None or not key.startswith(prefix):
            continue
        kind = key[n:start]
        loader = loaders.get(kind)
        if loader is not None:
            loader(engine, key, value, start)
        elif others is not None:
            others.append((key, value))
    _finish_uptime(uptime)
    finish_tickets()
    return engine


def restore_compiled(native, shell: Engine, records: dict[bytes, bytes], prefix: bytes, *, watermarks: dict[str, int],
                     now_us: int, horizon_us: int, seq: int, stats: dict, others: list[tuple[bytes, bytes]]) -> None:
    """`restore_engine` into a worker's compiled engine (native/engine `LivePartition`, fresh): the ticket records
    read there, the others decoded and checked here as `_LOADERS` do and handed over; the uptime ledgers restored into
    `shell`, the Python engine beside it. `others` receives the records under `prefix` that are not the engine's."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        shell.watermarks, shell.now_us, shell.horizon_us, shell._seq = dict(watermarks), now_us, horizon_us, seq
        native.set_header(now_us, horizon_us, seq, list(watermarks.items()), (
            list(stats.get("events", {}).items()), stats.get("duplicates", 0), list(stats.get("rejected", {}).items()),
            stats.get("rebuilds", 0), stats.get("errors", 0), stats.get("evicted_calls", 0),
            stats.get("final_tickets", 0)))
        n = len(prefix)
        start = n + 2
        load_ticket = _ticket_loader(shell)[0]  # a record the compiled reader refuses: the Python loader's error

        def refuse(key: bytes, value: bytes, start: int) -> None:
            load_ticket(key, value, start)

        uptime: dict[int, tuple] = {}
        loaders = {b"u/": partial(_load_uptime, parts=uptime), b"w/": partial(_load_probes, parts=uptime),
                   b"v/": partial(_load_uptime_bucket, parts=uptime)}
        index = {key: i for i, key in enumerate(shell.ledgers)}
        for key, value in native.restore_tickets(records, prefix + b"t/", start, refuse):
            if value is None or not key.startswith(prefix):
                continue
            kind = key[n:start]
            if kind == b"c/":
                rec: CallRec = decode(key, value, CallRec)
                client, call_id = _item_key(shell, key, start)
                native.load_call(client, call_id, rec.queue, rec.offered_us, rec.answered_us, rec.abandoned_us,
                                 rec.ended_us, rec.wrapup_s)
            elif kind == b"b/":
                b: BucketRec = decode(key, value, BucketRec)
                _ledger(shell, key, b.client, b.sla)
                native.load_bucket(index[(b.client, b.sla)], b.bucket, _tally_tuple(b.tally),
                                   None if b.instants is None else [(at, _tally_tuple(t)) for at, t in b.instants])
            elif kind == b"p/":
                p: PeriodRec = decode(key, value, PeriodRec)
                _ledger(shell, key, p.client, p.sla)
                sketch = p.sketch
                native.load_period(index[(p.client, p.sla)], p.label, p.window, _tally_tuple(p.tally),
                                   [(priority, _tally_tuple(t)) for priority, t in p.by_priority],
                                   None if sketch is None else (sketch.buckets, sketch.zeros, sketch.count))
            elif kind == b"r/":
                r: BreachDayRec = decode(key, value, BreachDayRec)
                _ledger(shell, key, r.client, r.sla)
                native.load_breach_day(index[(r.client, r.sla)], r.items)
            elif kind == b"x/":
                try:
                    native.load_final_day(int(key.rsplit(b"/", 1)[1]), value)
                except ValueError as err:
                    raise StateRecordError(f"state record {key[:120]!r}: {err}") from None
            elif (loader := loaders.get(kind)) is not None:
                loader(shell, key, value, start)
            else:
                others.append((key, value))
        _finish_uptime(uptime)
    finally:
        if collecting:
            gc.enable()


def _tally_tuple(t: TallyRec | None) -> tuple[int, int, int, int] | None:
    """A record's tally as the compiled engine holds it: whole counts, the total in millionths."""
    if t is None:
        return None
    decided, good, bad, total = t
    return int(decided), int(good), int(bad), total if type(total) is int else to_millionths(total)


def _sla(engine: Engine, key: bytes, client: str, sla: str):
    model = engine.clients.get(client)
    if model is None:
        raise StateRecordError(f"state record {key[:120]!r}: client {client!r} is not in the contracts")
    found = next((s for s in engine.contracts.clients[client].slas if s.name == sla), None)
    if found is None:
        raise StateRecordError(f"state record {key[:120]!r}: SLA {client}/{sla} is not in the contracts")
    return model, found


def _item_key(engine: Engine, key: bytes, start: int) -> tuple[str, str]:
    client, sep, item = key[start:].partition(b"\0")  # client names never hold a NUL (contracts.Name)
    try:
        names = client.decode(), item.decode()
    except UnicodeDecodeError:
        names = None
    if not sep or names is None or names[0] not in engine.clients:
        raise StateRecordError(f"state record {key[:120]!r}: the key names no client of the contracts")
    return names


def _ticket_loader(engine: Engine):
    """(load, finish, load_compiled): `load(key, value, start)` puts a ticket record into the engine, settled as
    it is built (its contributions, the open and orphan indexes, the deadline heap and its pushed deadline as
    `Engine._settle_ticket` leaves them for a new item, computed in the one pass that builds the clocks, with no
    per-ticket calls into the engine); `finish()` fills the indexes and orders the heap; `load_compiled(records,
    ticket_prefix, start)` (None without the compiled module) loads every ticket record of `records` the same way
    and returns the others. A restore of a partition with a million open tickets is mostly this loop, hence the
    locals (tests/unit/test_restore_speed.py checks it against `_settle_ticket`)."""
    tickets, heap = engine.tickets, engine._heap
    opened: list[tuple[str, str]] = []  # added to the engine's sets at the end, in load order
    orphaned: list[tuple[str, str]] = []
    open_append, orphan_append, heap_append = opened.append, orphaned.append, heap.append
    clients = {name.encode(): name for name in engine.clients}
    # per client: SLA name -> (SLA, calendar), and the lateness horizon (None: no watermark yet)
    named = {name: {s: (sla, model.calendars[s]) for s, sla in model.ticket_sla_named.items()}
             for name, model in engine.clients.items()}
    limits = {name: None if (wm := engine.watermarks.get(name)) is None else wm - model.lateness_us
              for name, model in engine.clients.items()}
    decode = _DECODERS.setdefault(TicketRec, msgspec.msgpack.Decoder(TicketRec)).decode

    def load(key: bytes, value: bytes, start: int) -> None:
        try:
            rec: TicketRec = decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError) as err:
            raise StateRecordError(f"state record {key[:120]!r}: not a valid TicketRec: {err}") from None
        client_b, sep, ticket_b = key[start:].partition(b"\0")  # client names never hold a NUL (contracts.Name)
        client = clients.get(client_b)
        try:
            ticket_id = ticket_b.decode()
        except UnicodeDecodeError:
            client = None
        if client is None or not sep:
            raise StateRecordError(f"state record {key[:120]!r}: the key names no client of the contracts")
        slas = named[client]
        events = rec.events
        base = None  # compacted (the default): the base is the state itself
        if not events:
            current, events = rec.base, ()  # the shared empty tuple, as a compaction leaves it (not a list each)
        elif (current := rec.state) is None:  # not written since format 2's first version: rebuilt from the events
            base = _state(key, client, ticket_id, rec.base, slas)
            item = TicketItem(base, base, _events(client, ticket_id, events), rec.last_us)
            item.state = engine._rebuild(engine.clients[client], item)
            tickets[(client, ticket_id)] = item
            _settle(engine, (client, ticket_id), item, open_append, orphan_append, heap_append)
            return
        elif _behind_horizon(limits[client], rec):
            # events a compaction would fold now: restore the state compacted, without them (restore time, memory)
            _check_slas(key, client, rec.base, slas)
            events = ()
        else:
            base = _state(key, client, ticket_id, rec.base, slas)
            events = _events(client, ticket_id, events)
        clocks = []
        is_open = decided = False
        deadline = None
        # labels shared as in the live engine (`tickets._label`): a million "P3"s would otherwise be a million
        p, q, ch, st = current.priority, current.queue, current.channel, current.status
        for c in current.clocks:
            found = slas.get(c.sla)
            if found is None:
                raise StateRecordError(f"state record {key[:120]!r}: no ticket SLA {client}/{c.sla} in the contracts")
            good, at = c.good, c.deadline_us
            if good is None:
                is_open = True
            else:
                decided = True
            if at is not None and (deadline is None or at < deadline):
                deadline = at
            clocks.append(Clock(found[0], found[1], c.target_us, intern(c.priority), c.elapsed_us, c.since_us, at,
                                good, c.decided_us))
        if p is not None:
            p = intern(p)
        if q is not None:
            q = intern(q)
        if ch is not None:
            ch = intern(ch)
        if st is not None:
            st = intern(st)
        created, orphans, clocks = current.created_us, current.orphans, tuple(clocks)
        if base is None:  # compacted: the base is the state itself, as `Engine.compact` leaves it
            base = state = TicketState(ticket_id, created, p, q, ch, st, current.resolved, current.resolved_us,
                                       orphans, clocks)
        else:
            state = TicketState(ticket_id, created, p, q, ch, st, current.resolved, current.resolved_us, orphans,
                                clocks)
        tkey = (client, ticket_id)
        # contributions() is the shared empty tuple while no clock is decided
        tickets[tkey] = TicketItem(base, state, events, rec.last_us, state.contributions() if decided else (),
                                   deadline)
        if is_open:
            open_append(tkey)
        if created is None or orphans:
            orphan_append(tkey)
        if deadline is not None:
            heap_append((deadline, tkey))

    def finish() -> None:
        engine.open_tickets.update(opened)
        engine.orphan_tickets.update(orphaned)
        heapq.heapify(heap)

    def load_compiled(records: dict[bytes, bytes], ticket_prefix: bytes, start: int) -> list[tuple[bytes, bytes]]:
        classes = (Clock, TicketState, TicketItem, _event_of)
        return _ticket_records.load(records, ticket_prefix, start, clients, named, limits, classes, tickets,
                                    (opened, orphaned, heap), load)

    return load, finish, (load_compiled if COMPILED_LOADER else None)


def _state(key: bytes, client: str, ticket_id: str, rec: StateRec, slas: dict) -> TicketState:
    clocks = []
    for c in rec.clocks:
        found = slas.get(c.sla)
        if found is None:
            raise StateRecordError(f"state record {key[:120]!r}: no ticket SLA {client}/{c.sla} in the contracts")
        clocks.append(Clock(found[0], found[1], c.target_us, intern(c.priority), c.elapsed_us, c.since_us,
                            c.deadline_us, c.good, c.decided_us))
    p, q, ch, st = rec.priority, rec.queue, rec.channel, rec.status
    return TicketState(ticket_id, rec.created_us, p if p is None else intern(p), q if q is None else intern(q),
                       ch if ch is None else intern(ch), st if st is None else intern(st), rec.resolved,
                       rec.resolved_us, rec.orphans, tuple(clocks))


def _behind_horizon(limit: int | None, rec: TicketRec) -> bool:
    if limit is None or rec.last_us >= limit:
        return False
    last_breach = max((c.decided_us for c in rec.state.clocks if c.good is False and c.decided_us is not None),
                      default=-1)
    return last_breach < limit


def _settle(engine: Engine, key: tuple[str, str], item: TicketItem, open_append, orphan_append, heap_append) -> None:
    """The loader's settling, for an item built otherwise (a rebuild)."""
    state = item.state
    item.contribs = state.contributions()
    if any(clock.good is None for clock in state.clocks):
        open_append(key)
    if state.created_us is None or state.orphans:
        orphan_append(key)
    deadline = state.next_deadline()
    if deadline is not None:
        heap_append((deadline, key))
        item.pushed_deadline = deadline


def _check_slas(key: bytes, client: str, rec: StateRec, slas: dict) -> None:
    for c in rec.clocks:
        if c.sla not in slas:
            raise StateRecordError(f"state record {key[:120]!r}: no ticket SLA {client}/{c.sla} in the contracts")


# A restored event as `TicketEvent.model_construct(event_id="", client=..., kind="ticket", ticket_id=..., type=...,
# priority=..., status=..., queue=..., channel=...)` builds it (no `ts`: the entry holds it), at a fifth of the cost:
# the same __dict__, fields set, extra and private (tests/unit/test_restore_speed.py). The fields set is one shared
# set (the model is frozen: nothing adds to it); model_construct made one per event.
_EVENT_FIELDS = {"event_id", "client", "kind", "ticket_id", "type", "priority", "status", "queue", "channel"}
_new_object = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _event(client: str, ticket_id: str, e: EventRec) -> TicketEvent:
    return _event_of(client, ticket_id, e.type, e.priority, e.status, e.queue, e.channel)


def _event_of(client: str, ticket_id: str, kind: str, priority: str | None, status: str | None, queue: str | None,
              channel: str | None) -> TicketEvent:
    ev = _new_object(TicketEvent)
    _set_dict(ev, {"event_id": "", "client": client, "kind": "ticket", "ticket_id": ticket_id, "type": kind,
                   "priority": priority, "status": status, "queue": queue, "channel": channel})
    _set_fields(ev, _EVENT_FIELDS)
    _set_extra(ev, None)
    _set_private(ev, None)
    return ev


def _events(client: str, ticket_id: str, events: list[EventRec]) -> list[tuple[int, int, TicketEvent]]:
    return [(e.ts_us, e.seq, _event(client, ticket_id, e)) for e in events]


def _load_call(engine: Engine, key: bytes, value: bytes, start: int) -> None:
    rec: CallRec = decode(key, value, CallRec)
    client, call_id = _item_key(engine, key, start)
    state = CallState(call_id, rec.queue, rec.offered_us, rec.answered_us, rec.abandoned_us, rec.ended_us,
                      rec.wrapup_s)
    engine.calls[(client, call_id)] = CallItem(state, state.contributions(engine.clients[client].call_slas))


def _ledger(engine: Engine, key: bytes, client: str, sla: str) -> SlaLedger:
    ledger = engine.ledgers.get((client, sla))
    if ledger is None:
        raise StateRecordError(f"state record {key[:120]!r}: no ledger {client}/{sla} in the contracts")
    return ledger


def _tally_of(t: TallyRec) -> Tally:
    decided, good, bad, total = t
    return Tally(decided, good, bad, total if type(total) is int else to_millionths(total))


def _load_bucket(engine: Engine, key: bytes, value: bytes, start: int) -> None:
    rec: BucketRec = decode(key, value, BucketRec)
    ledger = _ledger(engine, key, rec.client, rec.sla)
    if rec.tally is not None:
        ledger.buckets[rec.bucket] = _tally_of(rec.tally)
    if rec.instants is not None:
        ledger.instants[rec.bucket] = {at: _tally_of(t) for at, t in rec.instants}


def _load_period(engine: Engine, key: bytes, value: bytes, start: int) -> None:
    rec: PeriodRec = decode(key, value, PeriodRec)
    ledger = _ledger(engine, key, rec.client, rec.sla)
    if rec.window is not None:
        ledger.windows[rec.label] = PeriodWindow(rec.label, *rec.window)
    if rec.tally is not None:
        ledger.periods[rec.label] = _tally_of(rec.tally)
    for priority, t in rec.by_priority:
        ledger.by_priority[(rec.label, priority)] = _tally_of(t)
    if rec.sketch is not None:
        ledger.sketches[rec.label] = LogSketch(dict(rec.sketch.buckets), rec.sketch.zeros, rec.sketch.count)


def _load_breach_day(engine: Engine, key: bytes, value: bytes, start: int) -> None:
    rec: BreachDayRec = decode(key, value, BreachDayRec)
    ledger = _ledger(engine, key, rec.client, rec.sla)
    for at, item in rec.items:
        ledger.breaches.setdefault(ledger._label(at), []).append((at, item))


def _load_final_day(engine: Engine, key: bytes, value: bytes, start: int) -> None:
    try:
        day = int(key.rsplit(b"/", 1)[1])
        engine.final_tickets.load_day(day, value)
    except ValueError as err:
        raise StateRecordError(f"state record {key[:120]!r}: {err}") from None


def load_seen(engine: Engine, key: bytes, value: bytes, oldest_us: int, native=None) -> int:
    """Add a dedupe record's ids (those still inside a lateness horizon) to the engine, or to the compiled engine
    `native` (`LivePartition`) when given; returns the record's newest instant."""
    rec: SeenRec = decode(key, value, SeenRec)
    if len(rec.ids) != len(rec.ts):
        raise StateRecordError(f"state record {key[:120]!r}: {len(rec.ids)} ids but {len(rec.ts)} instants")
    if not rec.ts:
        return -1
    ids, ts = rec.ids, rec.ts
    if min(ts) < oldest_us:  # else the usual case: every id still inside the horizon
        kept = [(event_id, t) for event_id, t in zip(ids, ts, strict=True) if t >= oldest_us]
        ids, ts = [e for e, _ in kept], [t for _, t in kept]
    if native is not None:
        native.load_seen(ids, ts)
    else:
        engine.seen.update(zip(ids, ts, strict=True))
    return max(rec.ts)


_LOADERS = {b"c/": _load_call, b"b/": _load_bucket, b"p/": _load_period,
            b"r/": _load_breach_day, b"x/": _load_final_day}


def stats_value(stats: PipelineStats) -> dict:
    return {"events": dict(stats.events), "duplicates": stats.duplicates, "rejected": dict(stats.rejected),
            "rebuilds": stats.rebuilds, "errors": stats.errors, "evicted_calls": stats.evicted_calls,
            "final_tickets": stats.final_tickets}


def stats_of(data: dict) -> PipelineStats:
    return PipelineStats(Counter(data.get("events", {})), data.get("duplicates", 0), Counter(data.get("rejected", {})),
                         data.get("rebuilds", 0), data.get("errors", 0), data.get("evicted_calls", 0),
                         data.get("final_tickets", 0))


# --- whole engines (tests, tools): every record plus the engine's scalars, in one MessagePack value ---------


class EngineMeta(msgspec.Struct, array_like=True):
    watermarks: dict[str, int]
    now_us: int
    horizon_us: int
    seq: int
    stats: dict
    seen: list[tuple[str, int]]


class EngineSnapshot(msgspec.Struct, array_like=True):
    format: int
    meta: EngineMeta
    records: dict[bytes, bytes]


def snapshot(engine: Engine) -> bytes:
    """The whole engine as one value (a test or a tool's copy; the worker writes records, `streams.checkpoint`)."""
    records = {k: v for k, v in all_records(engine, b"") if v is not None}
    meta = EngineMeta(dict(engine.watermarks), engine.now_us, engine.horizon_us, engine._seq,
                      stats_value(engine.stats), list(engine.seen.items()))
    return encode(EngineSnapshot(FORMAT, meta, records))


def restore(contracts: Contracts, data: bytes, **kwargs) -> Engine:
    try:
        snap = msgspec.msgpack.decode(data, type=EngineSnapshot)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise StateRecordError(f"engine snapshot unreadable: {err}") from None
    if snap.format != FORMAT:
        raise StateRecordError(f"engine snapshot format {snap.format}, this version reads {FORMAT}")
    m = snap.meta
    engine = restore_engine(contracts, snap.records, b"", watermarks=m.watermarks, now_us=m.now_us,
                            horizon_us=m.horizon_us, seq=m.seq, stats=stats_of(m.stats), **kwargs)
    engine.seen = dict(m.seen)
    return engine


# --- uptime ----------------------------------------------------------------------------------------------------


class UptimeRec(msgspec.Struct, array_like=True):
    client: str
    sla: str
    first_us: int | None


class ProbesRec(msgspec.Struct, array_like=True):
    client: str
    sla: str
    bucket: int
    probes: list[tuple[int, bool]]


class UptimeBucketRec(msgspec.Struct, array_like=True):
    client: str
    sla: str
    bucket: int
    tally: tuple[int, int, int]  # up, down, unknown microseconds


def _uptime_ledgers(engine: Engine):
    for model in engine.clients.values():
        for ledgers in model.uptime.values():
            yield from ledgers


def uptime_records(engine: Engine, prefix: bytes, full: bool):
    for ledger in _uptime_ledgers(engine):
        name = _name_key(ledger.client, ledger.sla.name)
        if full or ledger.probes_dirty:
            yield prefix + b"u/" + name, encode(UptimeRec(ledger.client, ledger.sla.name, ledger.first_probe_us))
        probe_buckets = {ts // BUCKET_US for ts in ledger.times} if full else ledger.dirty_probe_buckets
        for bucket in probe_buckets:
            lo = bisect_left(ledger.times, bucket * BUCKET_US)
            hi = bisect_left(ledger.times, (bucket + 1) * BUCKET_US)
            probes = [(ts, ledger.states[ts]) for ts in ledger.times[lo:hi]]
            yield (prefix + b"w/" + name + b"\0" + str(bucket).encode(),
                   encode(ProbesRec(ledger.client, ledger.sla.name, bucket, probes)) if probes else None)
        for bucket in (ledger.buckets if full else ledger.dirty_buckets):
            tally = ledger.buckets.get(bucket)
            yield (prefix + b"v/" + name + b"\0" + str(bucket).encode(),
                   None if tally is None else encode(UptimeBucketRec(ledger.client, ledger.sla.name, bucket,
                                                                     tally.as_tuple())))
        ledger.probes_dirty, ledger.dirty_buckets, ledger.dirty_probe_buckets = False, set(), set()


def _uptime_ledger(engine: Engine, key: bytes, client: str, sla: str):
    model, _ = _sla(engine, key, client, sla)
    for ledgers in model.uptime.values():
        for ledger in ledgers:
            if ledger.sla.name == sla:
                return ledger
    raise StateRecordError(f"state record {key[:120]!r}: {client}/{sla} is not an uptime SLA")


class _UptimeParts:
    """An uptime ledger's records, gathered while reading (its probes span several records)."""

    def __init__(self) -> None:
        self.first_us: int | None = None
        self.probes: list[tuple[int, bool]] = []
        self.buckets: dict[int, tuple[int, int, int]] = {}


def _parts(engine: Engine, key: bytes, client: str, sla: str, parts: dict) -> _UptimeParts:
    ledger = _uptime_ledger(engine, key, client, sla)
    return parts.setdefault(id(ledger), (ledger, _UptimeParts()))[1]


def _load_uptime(engine: Engine, key: bytes, value: bytes, start: int, *, parts: dict) -> None:
    rec: UptimeRec = decode(key, value, UptimeRec)
    _parts(engine, key, rec.client, rec.sla, parts).first_us = rec.first_us


def _load_probes(engine: Engine, key: bytes, value: bytes, start: int, *, parts: dict) -> None:
    rec: ProbesRec = decode(key, value, ProbesRec)
    _parts(engine, key, rec.client, rec.sla, parts).probes.extend((ts, up) for ts, up in rec.probes)


def _load_uptime_bucket(engine: Engine, key: bytes, value: bytes, start: int, *, parts: dict) -> None:
    rec: UptimeBucketRec = decode(key, value, UptimeBucketRec)
    _parts(engine, key, rec.client, rec.sla, parts).buckets[rec.bucket] = rec.tally


def _finish_uptime(parts: dict) -> None:
    for ledger, gathered in parts.values():
        try:
            ledger.restore_state(gathered.first_us, sorted(gathered.probes), gathered.buckets)
        except ValueError as err:
            raise StateRecordError(f"uptime records of {ledger.client}/{ledger.sla.name}: {err}") from None

