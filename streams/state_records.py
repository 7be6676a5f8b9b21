"""A partition's checkpoint as keyed records in the compacted snapshots topic (format 2; no pickle).

    records = changed_records(pe)                 # what changed since the last checkpoint, meta last
    pe = restore_partition(partition, contracts, store)   # store: newest value per key, as compaction keeps it

Every key starts with `p<partition>/`. The engine's items, ledger cells, final-ticket days and dedupe ids are
the records of `monitor.engine_state` (its docstring has the table); this module adds:

| key              | value                                                                                   |
|------------------|-----------------------------------------------------------------------------------------|
| `p<n>/meta`      | `Meta`: format version, input offset reflected, counters, clocks, watermarks, the offsets |
|                  | of the newest outputs the broker confirmed per output partition (`published`)             |
| `p<n>/d/<k>`     | dedupe ids added by checkpoint k (`SeenRec`); tombstoned once all are past every horizon |
| `p<n>/o/<i>`     | `OutboxRec`: outputs (dead letters, SLA events) not yet confirmed by the broker          |
| `p<n>/u/...`     | uptime SLAs (see `monitor.engine_state`)                                                 |

A checkpoint writes only what changed since the previous one (a dropped item is a tombstone), then the meta
record; `streams.checkpoint` writes them in one Kafka transaction, so a restore sees a whole checkpoint or the one
before. A meta of another format (format 1 was a pickle) or a record that fails its schema raises
`StateRecordError`, with what to do.
"""

from __future__ import annotations

import gc
import time
from collections import Counter

import msgspec

from monitor.contracts import Contracts
from monitor.engine_state import (
    FORMAT,
    StateRecordError,
    all_records,
    compiled_records,
    decode,
    encode,
    load_seen,
    restore_compiled,
    restore_engine,
    seen_value,
    stats_of,
    stats_value,
)
from monitor.engine_state import changed_records as engine_changes
from streams.partition_engine import CheckpointState, Output, PartitionEngine

SEEN_CHUNK = 20_000  # dedupe ids per record (~45 bytes each: well under the 1 MB message limit)
OUTBOX_CHUNK = 2_000  # outputs per record
REBUILD_HINT = ("rebuild the state from the events topic: stop every worker, delete the snapshots topic, reset the "
                "consumer group to the earliest offsets and start the workers (streams/README.md, 'Old checkpoints')")


class Meta(msgspec.Struct):
    format: int
    partition: int
    offset: int
    received: int
    rejected: dict[str, int]
    misrouted: int
    sla_events: int
    clock_us: int
    now_us: int
    horizon_us: int
    seq: int
    watermarks: dict[str, int]
    stats: dict
    high_water: list[tuple[str, str, str, float]]
    next_chunk: int  # the next dedupe chunk's number (the chunks are the `d/` keys present)
    outbox_chunks: int
    wall: float
    # (topic, partition, offset) of the newest output the broker confirmed per output partition (absent in
    # checkpoints of earlier versions: nothing is then skipped after a restore)
    published: list[tuple[str, int, int]] = []


class OutputRec(msgspec.Struct, array_like=True):
    kind: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


class OutboxRec(msgspec.Struct, array_like=True):
    outputs: list[OutputRec]


_META = msgspec.msgpack.Decoder(Meta)


def prefix_of(partition: int) -> bytes:
    return f"p{partition}/".encode()


def meta_key(partition: int) -> bytes:
    return prefix_of(partition) + b"meta"


def changed_records(pe: PartitionEngine, *, full: bool = False) -> list[tuple[bytes, bytes | None]]:
    """The records of everything that changed since the previous call, the meta record last. Sets
    `snapshot_offset`. `full`: every record (a first checkpoint, or after a write that failed)."""
    pe.prune_outbox()
    engine, prefix = pe.engine, prefix_of(pe.partition)
    ck: CheckpointState = pe.checkpoint_state
    header = _header(pe)
    collecting = gc.isenabled()
    gc.disable()  # a collection in the middle of encoding (allocation heavy, nothing to free) doubles its time
    try:
        if pe.native is not None:
            records, seen = compiled_records(pe.native, engine, prefix, full)
        else:
            records = all_records(engine, prefix) if full else engine_changes(engine, prefix)
            # with `full` every dedupe id again too: the full rewrite stands on its own
            seen, engine.changes.seen = (list(engine.seen.items()) if full else engine.changes.seen), []
    finally:
        if collecting:
            gc.enable()
    oldest = min((wm - engine.clients[c].lateness_us for c, wm in header.watermarks.items()), default=-1)
    records.extend(_seen_records(seen, oldest, prefix, ck))
    records.extend(_outbox_records(pe, prefix, ck))
    records.append((meta_key(pe.partition), encode(_meta(pe, ck, header))))
    pe.snapshot_offset = pe.offset
    return records


class _Header(msgspec.Struct):
    """The engine's scalars a meta record keeps, from whichever engine the holder runs."""

    now_us: int
    horizon_us: int
    seq: int
    watermarks: dict[str, int]
    stats: dict


def _header(pe: PartitionEngine) -> _Header:
    if pe.native is not None:
        now_us, horizon_us, seq, watermarks, (events, duplicates, rejected, rebuilds, errors, evicted, finals) = (
            pe.native.header())
        return _Header(now_us, horizon_us, seq, dict(watermarks), {
            "events": dict(events), "duplicates": duplicates, "rejected": dict(rejected), "rebuilds": rebuilds,
            "errors": errors, "evicted_calls": evicted, "final_tickets": finals})
    engine = pe.engine
    return _Header(engine.now_us, engine.horizon_us, engine._seq, dict(engine.watermarks), stats_value(engine.stats))


def _seen_records(new: list[tuple[str, int]], oldest: int, prefix: bytes, ck: CheckpointState):
    for i in range(0, len(new), SEEN_CHUNK):
        part = new[i : i + SEEN_CHUNK]
        ck.seen_chunks[ck.next_chunk] = max(ts for _, ts in part)
        yield prefix + b"d/" + str(ck.next_chunk).encode(), seen_value(part)
        ck.next_chunk += 1
    for chunk in [c for c, newest in ck.seen_chunks.items() if newest < oldest]:
        del ck.seen_chunks[chunk]
        yield prefix + b"d/" + str(chunk).encode(), None


def _outbox_records(pe: PartitionEngine, prefix: bytes, ck: CheckpointState):
    outputs = [OutputRec(o.kind, o.key, o.value, list(o.headers)) for o in pe.outbox]
    chunks = [outputs[i : i + OUTBOX_CHUNK] for i in range(0, len(outputs), OUTBOX_CHUNK)]
    for i, chunk in enumerate(chunks):
        yield prefix + b"o/" + str(i).encode(), encode(OutboxRec(chunk))
    for i in range(len(chunks), ck.outbox_chunks):
        yield prefix + b"o/" + str(i).encode(), None
    ck.outbox_chunks = len(chunks)


def _meta(pe: PartitionEngine, ck: CheckpointState, header: _Header) -> Meta:
    return Meta(
        format=FORMAT, partition=pe.partition, offset=pe.offset, received=pe.received, rejected=dict(pe.rejected),
        misrouted=pe.misrouted, sla_events=pe.sla_events, clock_us=pe.clock_us, now_us=header.now_us,
        horizon_us=header.horizon_us, seq=header.seq, watermarks=header.watermarks,
        stats=header.stats, high_water=[(c, s, f, v) for (c, s, f), v in pe.high_water.items()],
        next_chunk=ck.next_chunk, outbox_chunks=ck.outbox_chunks,
        wall=time.time(), published=[(t, p, o) for (t, p), o in sorted(pe.published.items())],
    )


def read_meta(partition: int, store: dict[bytes, bytes]) -> Meta | None:
    """The partition's meta record, None when it has no checkpoint; refuses other formats with what to do."""
    raw = store.get(meta_key(partition))
    if raw is None:
        old = [k for k in store if k.startswith(f"p{partition}.".encode())]
        if old:
            raise StateRecordError(f"partition {partition}: the snapshots topic holds a format-1 (pickle) snapshot "
                                   f"({len(old)} records), which this version no longer reads; {REBUILD_HINT}")
        return None
    try:
        meta = _META.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise StateRecordError(f"partition {partition}: meta record unreadable ({err}); {REBUILD_HINT}") from None
    if meta.format != FORMAT:
        raise StateRecordError(f"partition {partition}: checkpoint format {meta.format}, this worker reads "
                               f"{FORMAT}; {REBUILD_HINT}")
    if meta.partition != partition:
        raise StateRecordError(f"partition {partition}: meta record says partition {meta.partition}")
    return meta


def restore_partition(partition: int, contracts: Contracts, store: dict[bytes, bytes], *,
                      source_topic: str = "slamon.events", num_partitions: int | None = None,
                      compiled: bool = False) -> PartitionEngine | None:
    """The holder a partition's records describe, or None when the store has no checkpoint of it. `compiled`: on
    the compiled engine (`PartitionEngine(compiled=True)`)."""
    meta = read_meta(partition, store)
    if meta is None:
        return None
    prefix = prefix_of(partition)
    others: list[tuple[bytes, bytes]] = []  # this module's records (dedupe ids, outbox, meta): one pass over the store
    if compiled:
        pe = PartitionEngine(partition, contracts, source_topic=source_topic, num_partitions=num_partitions,
                             compiled=True)
        restore_compiled(pe.native, pe.engine, store, prefix, watermarks=meta.watermarks, now_us=meta.now_us,
                         horizon_us=meta.horizon_us, seq=meta.seq, stats=meta.stats, others=others)
        engine = pe.engine
    else:
        engine = restore_engine(contracts, store, prefix, watermarks=meta.watermarks, now_us=meta.now_us,
                                horizon_us=meta.horizon_us, seq=meta.seq, stats=stats_of(meta.stats), others=others,
                                keep_decisions=True, track_changes=True, keep_breach_history=False)
        pe = PartitionEngine(partition, contracts, source_topic=source_topic, num_partitions=num_partitions,
                             engine=engine)
    oldest = min((wm - engine.clients[c].lateness_us for c, wm in meta.watermarks.items()), default=-1)
    seen_chunks: dict[int, int] = {}
    dedupe = prefix + b"d/"
    for key, value in others:
        if key.startswith(dedupe):
            try:
                chunk = int(key[len(dedupe):])
            except ValueError:
                raise StateRecordError(f"partition {partition}: dedupe record key {key[:120]!r}") from None
            seen_chunks[chunk] = load_seen(engine, key, value, oldest, pe.native)
    pe.offset = pe.snapshot_offset = pe.durable_offset = pe.restored_offset = meta.offset
    pe.received, pe.rejected, pe.misrouted = meta.received, Counter(meta.rejected), meta.misrouted
    pe.sla_events, pe.clock_us = meta.sla_events, meta.clock_us
    pe.high_water = {(c, s, f): v for c, s, f, v in meta.high_water}
    pe.published = {(t, p): o for t, p, o in meta.published}
    outputs = []
    for i in range(meta.outbox_chunks):
        key = prefix + b"o/" + str(i).encode()
        if store.get(key) is None:
            raise StateRecordError(f"partition {partition}: outbox record {key!r} missing; {REBUILD_HINT}")
        outputs += decode(key, store[key], OutboxRec).outputs
    pe.outbox = [Output(o.kind, o.key, o.value, [(k, v) for k, v in o.headers]) for o in outputs]
    pe._unsent = list(pe.outbox)  # unconfirmed when the checkpoint was taken: publish again
    pe.checkpoint_state = CheckpointState(seen_chunks, meta.next_chunk, meta.outbox_chunks)
    return pe
