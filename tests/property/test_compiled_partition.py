"""Property: a worker partition on the compiled engine (`PartitionEngine(compiled=True)`, native/engine `live.rs`)
publishes what the Python engine, the reference, publishes: the same dead letters (reason, detail, headers, bytes)
and the same SLA-event records byte for byte, in the same order, on arbitrary streams (the replay property's: disorder
within and past the lateness, resends and reused ids, reopens, priority changes, pauses, orphans, calls, probes,
surveys, audits, junk) with the worker's clock ticking between events, events too far ahead of a wall clock, and
compaction and call eviction every few events.
"""

from __future__ import annotations

import random
from typing import NamedTuple

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import compiled_replay
from monitor import engine as engine_module
from streams.metrics import EngineCollector, settle_counters
from streams.partition_engine import PartitionEngine
from streams.state_records import changed_records, restore_partition
from tests.property.test_compiled_engine import CONTRACT, MIN, START, stream

pytestmark = pytest.mark.skipif(compiled_replay._native is None, reason="the compiled engine was not built")


class Record(NamedTuple):  # what the worker's fast path reads of an aiokafka ConsumerRecord
    offset: int
    key: bytes | None
    value: bytes | None


def outputs(lines: list[bytes], compiled: bool, seed: int, partitions: int, wall: bool,
            batched: bool = False) -> tuple:
    """Every output in order, and the holder's counters. `wall`: a wall clock that runs behind the events, so some
    are too far ahead of it. Lines go in runs of 1-60 (the clock ticks between runs); `batched`: a run in one call
    (`process_records`, a compiled holder's fast path), with now and then a value missing (a tombstone)."""
    rnd = random.Random(seed)
    pe = PartitionEngine(1, CONTRACT, num_partitions=partitions, compiled=compiled)
    out, now, offset = [], START, 0
    while offset < len(lines):
        if rnd.random() < 0.25:  # the clock ticks: deadlines decided with no event
            now += rnd.choice([0, 1, 10, 60, 600, 3 * 1440]) * MIN
            pe.advance(now)
        run = [Record(offset + i, b"k", None if rnd.random() < 0.01 else line)
               for i, line in enumerate(lines[offset:offset + rnd.randint(1, 60)])]
        offset += len(run)
        clock = {"now_us": now, "max_future_us": rnd.choice([0, 30, 600]) * MIN} if wall else {}
        if batched:
            assert pe.process_records(run, 0, **clock) == len(run)
        else:
            for r in run:
                pe.process(r.value if r.value is not None else b"", r.offset, r.key, **clock)
        out += [(o.kind, o.key, o.value, o.headers) for o in pe.take_unsent()]
    pe.advance(now + 40 * 1440 * MIN)
    out += [(o.kind, o.key, o.value, o.headers) for o in pe.take_unsent()]
    misrouted = pe.native.misrouted if compiled else pe.misrouted
    return out, pe.sla_events, dict(pe.rejected), misrouted, pe.received


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), days=st.integers(1, 12), compact_every=st.sampled_from([7, 50, 400, 50_000]),
       evict_every=st.sampled_from([3, 20, 2_000]), partitions=st.sampled_from([1, 2, 4]), wall=st.booleans())
def test_a_compiled_partition_publishes_what_the_reference_publishes(seed, days, compact_every, evict_every,
                                                                     partitions, wall, monkeypatch):
    monkeypatch.setattr(engine_module, "COMPACT_EVERY", compact_every)
    monkeypatch.setattr(engine_module, "EVICT_CALLS_EVERY", evict_every)
    lines = stream(seed, days)
    reference = outputs(lines, False, seed, partitions, wall)
    assert outputs(lines, True, seed, partitions, wall) == reference
    assert outputs(lines, True, seed, partitions, wall, batched=True) == reference


def test_the_streams_make_every_kind_of_output():
    """Decisions and withdrawals of every SLA kind, by event and by clock, and dead letters of every reason the
    engine gives (late, expired, future, orphan, malformed, unknown client) occur in these streams."""
    kinds, changes, triggers, reasons = set(), set(), set(), set()
    for seed in range(12):
        out, *_ = outputs(stream(seed, 10), False, seed, 2, wall=seed % 2 == 0)
        for kind, _, value, headers in out:
            if kind == "deadletter":
                reasons.add(dict(headers)["reason"].decode())
                continue
            record = __import__("orjson").loads(value)
            kinds.add(record["kind"])
            changes.add(record["change"])
            triggers.add(record["trigger"])
    assert kinds >= {"first_response", "resolution", "service_level", "asa", "abandon_rate", "aht", "csat",
                     "accuracy"}, kinds
    assert changes == {"decided", "withdrawn"} and triggers == {"event", "clock"}
    assert reasons >= {"late", "expired", "future", "malformed", "unknown_client", "invalid"}, reasons


def checkpoints(lines: list[bytes], compiled: bool, seed: int, restores: bool = False) -> list[dict]:
    """The checkpoint records written at random points (now and then a full rewrite), each as {key: value decoded};
    the meta record without its wall time, a full rewrite's dedupe ids as one set (their order in the records is the
    engine's dict order); then the outputs since the previous checkpoint. `restores`: now and then the holder is
    replaced by one restored from its checkpoints (as compaction keeps them) and fed the messages after them again."""
    rnd = random.Random(seed)
    pe = PartitionEngine(1, CONTRACT, num_partitions=2, compiled=compiled)
    out, now, store, outputs = [], START, {}, []
    offset = 0
    while offset < len(lines):
        if rnd.random() < 0.05:
            now += rnd.choice([0, 1, 10, 60, 600, 3 * 1440]) * MIN
            pe.advance(now)
        pe.process(lines[offset], offset, b"k")
        outputs += [(o.kind, o.value, o.headers) for o in pe.take_unsent()]
        pe.outbox.clear()
        if rnd.random() < 0.08 or offset == len(lines) - 1:
            full = rnd.random() < 0.15
            written = changed_records(pe, full=full)
            if full:  # a full rewrite stands on its own (a fresh snapshots topic): no tombstones for what went
                store = {}
            for key, value in written:
                if value is None:
                    store.pop(key, None)
                else:
                    store[key] = value
            records = {key: value if value is None or key.startswith((b"p1/x/", b"p1/d/"))
                       else msgspec.msgpack.decode(value) for key, value in written}
            meta = records.pop(b"p1/meta")
            meta.pop("wall")
            if full:
                ids = set()
                for key in [k for k in records if k.startswith(b"p1/d/")]:
                    value = records.pop(key)
                    if value is not None:
                        names, ts = msgspec.msgpack.decode(value)
                        ids.update(zip(names, ts, strict=True))
                meta["ids"] = ids
            out.append({**records, b"meta": meta, b"outputs": outputs})
            outputs = []
            if restores and rnd.random() < 0.3:
                # in key order: the topic's order is the checkpoints' (sets' order), which decides the order tickets
                # are held in, hence which day's group a final ticket joins (`FinalTickets.add`)
                restored = restore_partition(1, CONTRACT, dict(sorted(store.items())), num_partitions=2,
                                             compiled=compiled)
                assert restored.offset == pe.offset
                pe = restored
                offset = max(0, offset - rnd.randint(0, 20))  # messages after the checkpoint come again: skipped
        offset += 1
    return out


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), days=st.integers(1, 40), compact_every=st.sampled_from([7, 50, 400, 50_000]),
       evict_every=st.sampled_from([3, 20, 2_000]))
def test_a_compiled_partition_writes_the_reference_checkpoints(seed, days, compact_every, evict_every,
                                                               monkeypatch):
    """Every checkpoint record (tickets, calls, ledger buckets and periods, breach days, final-ticket days, dedupe
    ids, uptime, meta) is the reference's, incremental and full, over spans where periods end and are forgotten
    and final tickets pass their retention."""
    monkeypatch.setattr(engine_module, "COMPACT_EVERY", compact_every)
    monkeypatch.setattr(engine_module, "EVICT_CALLS_EVERY", evict_every)
    lines = stream(seed, days, probe_gap=1 if days < 15 else 60)
    compiled = checkpoints(lines, True, seed)
    reference = checkpoints(lines, False, seed)
    assert len(compiled) == len(reference)
    for mine, theirs in zip(compiled, reference, strict=True):
        assert mine.keys() == theirs.keys()
        for key in theirs:
            assert mine[key] == theirs[key], key


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), days=st.integers(1, 40), compact_every=st.sampled_from([7, 50, 400, 50_000]),
       evict_every=st.sampled_from([3, 20, 2_000]))
def test_a_restored_compiled_partition_goes_on_as_the_reference(seed, days, compact_every, evict_every, monkeypatch):
    """Restored from its own checkpoints now and then (tickets compacted or with their events, with and without an
    open clock, calls, ledger cells, breach days, final-ticket days, dedupe ids, uptime), a compiled holder goes on
    publishing and checkpointing as a restored reference holder does."""
    monkeypatch.setattr(engine_module, "COMPACT_EVERY", compact_every)
    monkeypatch.setattr(engine_module, "EVICT_CALLS_EVERY", evict_every)
    lines = stream(seed, days, probe_gap=1 if days < 15 else 60)
    compiled = checkpoints(lines, True, seed, restores=True)
    reference = checkpoints(lines, False, seed, restores=True)
    assert len(compiled) == len(reference)
    for mine, theirs in zip(compiled, reference, strict=True):
        assert mine.keys() == theirs.keys()
        for key in theirs:
            assert mine[key] == theirs[key], key


def scrapes(lines: list[bytes], compiled: bool, seed: int) -> list[dict]:
    """Every family's rows of scrapes taken at random points (the scrape's own duration left out), with the
    counters' settling between them as the worker does before each scrape, and a restore now and then."""
    rnd = random.Random(seed)
    pe = PartitionEngine(0, CONTRACT, num_partitions=1, compiled=compiled)
    out, now = [], START
    for offset, line in enumerate(lines):
        if rnd.random() < 0.05:
            now += rnd.choice([0, 1, 10, 60, 600, 1440]) * MIN
            pe.advance(now)
        pe.process(line, offset, b"k")
        pe.take_unsent()
        pe.outbox.clear()
        if rnd.random() < 0.04 or offset == len(lines) - 1:
            settle_counters(pe)
            at = max(pe.now_us, pe.clock_us) + rnd.choice([0, 0, 5 * MIN, 3 * 1440 * MIN])
            rows = EngineCollector(lambda pe=pe: [pe], clock=lambda _, at=at: at).samples().rows
            rows.pop("slamon_scrape_duration_seconds")
            out.append(rows)
            if rnd.random() < 0.2:
                store = dict(changed_records(pe, full=True))
                pe = restore_partition(0, CONTRACT, {k: v for k, v in sorted(store.items()) if v is not None},
                                       num_partitions=1, compiled=compiled)
    return out


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), days=st.integers(1, 12), compact_every=st.sampled_from([7, 400, 50_000]))
def test_a_compiled_partition_scrapes_as_the_reference(seed, days, compact_every, monkeypatch):
    """/metrics of a compiled holder (its state handed over to a Python engine for the scrape) is the reference
    holder's, family by family: period figures, open clocks and deadlines due soon, rolling windows, waiting calls,
    uptime, counters with their high-water marks, pipeline counts, at the engine's time and days later."""
    monkeypatch.setattr(engine_module, "COMPACT_EVERY", compact_every)
    lines = stream(seed, days)
    assert scrapes(lines, True, seed) == scrapes(lines, False, seed)
