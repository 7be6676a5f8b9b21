"""One Kafka partition's share of the pipeline: raw bytes in, engine state, outputs to publish, snapshots.

Pure Python with no Kafka or faust in it, so the metric collector, the unit tests and the bench drive it
exactly as the worker does:

    pe = PartitionEngine(partition, contracts, source_topic="slamon.events", num_partitions=4)
    pe.process(value, offset, key)   # decode -> engine; rejections become dead letters
    pe.advance(now_us)               # the clock: deadlines <= now are decided
    pe.take_unsent()                 # dead letters and SLA events to hand to a producer
    records = changed_records(pe)    # checkpoint (streams.state_records); restore_partition(...) reads them

With `compiled=True` (what a worker runs where native/engine was built) the engine is the compiled one
(`native/engine/src/live.rs`): `process_records(records, start)` applies a run of fetched records in one call,
`view()` is the Python engine a scrape reads; the Python engine stays the reference
(tests/property/test_compiled_partition.py).

Offsets: `offset` is the last input offset reflected in the state. `process` skips any message at or below
it, so a worker that restored a snapshot and was handed older messages (the committed offset never passes the
snapshot, it may lag it) applies each message exactly once. The engine also dedupes by `event_id`.

Outputs are at-least-once: every output stays in `outbox` until its delivery is confirmed, and a snapshot
carries the unconfirmed ones, which a restored holder publishes again.
"""

from __future__ import annotations

import gc
import logging
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson
from kafka.partitioner.default import murmur2

from monitor.contracts import CallSla, Contracts
from monitor.engine import Engine, engine_error, expired_dropped, expired_final, late
from monitor.events import FUTURE, Rejection, decode_event, from_us
from monitor.ledger import BUCKET_US, Contribution, Tally

log = logging.getLogger("slamon.partition")

DEADLETTER = "deadletter"
SLA_EVENTS = "sla_events"
# A dead letter carries the original bytes plus ~150 bytes of headers: an event just under the 1 MiB message
# limit would make a dead letter the broker refuses, resent forever. Longer values are cut (header
# `original_bytes` says how long the event was).
DEADLETTER_MAX_VALUE = 256 * 1024


@lru_cache(maxsize=65536)  # asked for every output record; clients are few
def designated_partition(client: str, num_partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as in the Java client, kafka-python and aiokafka)
    gives a record keyed by `client`. The owner of that partition exports the client's series."""
    return (murmur2(client.encode()) & 0x7FFFFFFF) % num_partitions


DECIDED, WITHDRAWN = "decided", "withdrawn"
CHANGE_HEADERS = {change: [("change", change.encode())] for change in (DECIDED, WITHDRAWN)}  # shared, never mutated
_CHANGE_HEADERS = (CHANGE_HEADERS[DECIDED], CHANGE_HEADERS[WITHDRAWN])  # by `withdrawn` (LivePartition.take_outputs)


@lru_cache(maxsize=4096)
def _client_key(client: str) -> bytes:
    return client.encode()


def sla_event(client: str, c: Contribution, change: str, trigger: str, partition: int, offset: int | None,
              engine: Engine | None = None, facts: SlaFacts | None = None) -> bytes:
    """One record of the SLA-events topic (JSON). `at` is ISO 8601 UTC with microseconds when not whole
    seconds, as everywhere else (orjson formats the datetime: half the cost of isoformat).

    With the `engine` that made the decision, the record carries what the SLA record (`store/`) keeps: the SLA's
    `kind`, the `period` it counts in (the ledger's label: `2026-11`, `2026-W47`, `2026-11-23`, `rolling`), the
    ledger amounts (`decided`, `good`, `bad`, `total`, `sample`) and the item's facts: `start_us` (created,
    offered or answered), `deadline_us`, `stop_us` (null for a breach: decided at its deadline, not stopped),
    `elapsed_s`, `paused_s` (clock time between start and stop that did not count: pause statuses, or a resolved
    spell before a reopen), `target_s`, `queue`, `channel`. A withdrawn record describes the decision it
    withdraws. Field meanings: docs/sla-record.md. `facts`: the (client, SLA)'s `SlaFacts`, kept by the caller
    (looked up here without)."""
    at = c.at_us
    outcome = "good" if c.good else ("bad" if c.bad else "measured")
    if engine is None:
        return _dumps({"client": client, "sla": c.sla, "item": c.item, "at": from_us(at), "at_us": at,
                       "outcome": outcome, "change": change, "priority": c.priority, "trigger": trigger,
                       "source_partition": partition, "source_offset": offset}, option=_UTC_Z)
    f = facts if facts is not None else SlaFacts(engine, client, c.sla)
    ledger = engine.ledgers[(client, c.sla)]
    bucket = at // BUCKET_US  # the period label is the same all through a 15-minute bucket (monitor/ledger.py)
    if bucket == f.bucket and ledger is f.ledger:
        label = f.label
    else:
        label = f.label = ledger._label(at)
        f.bucket, f.ledger = bucket, ledger
    cal = f.cal
    if cal is not None:  # a ticket clock: its facts follow from the decision, the ticket and the contract
        item = engine.tickets.get((client, c.item))
        state = item.state if item is not None else None
        target = f.targets.get(c.priority)
        sample = c.sample
        elapsed = round(sample * 1_000_000) if sample is not None else None
        start = state.created_us if state is not None else None
        deadline = paused = None
        if target is not None and elapsed is not None:
            deadline = at if not c.good or elapsed >= target else cal.add_us(at, target - elapsed)
            if start is not None:
                paused = max(0, cal.elapsed_us(start, at) - elapsed) / 1e6
        return _dumps({"client": client, "sla": c.sla, "item": c.item, "at": from_us(at), "at_us": at,
                       "outcome": outcome, "change": change, "priority": c.priority, "trigger": trigger,
                       "source_partition": partition, "source_offset": offset, "kind": f.kind, "period": label,
                       "decided": c.decided, "good": c.good, "bad": c.bad, "total": c.total, "sample": sample,
                       "start_us": start, "deadline_us": deadline, "stop_us": at if c.good else None,
                       "elapsed_s": sample, "paused_s": paused, "target_s": None if target is None else target / 1e6,
                       "queue": state.queue if state is not None else None,
                       "channel": state.channel if state is not None else None}, option=_UTC_Z)
    record = {"client": client, "sla": c.sla, "item": c.item, "at": from_us(at), "at_us": at, "outcome": outcome,
              "change": change, "priority": c.priority, "trigger": trigger, "source_partition": partition,
              "source_offset": offset, "kind": f.kind, "period": label, "decided": c.decided, "good": c.good,
              "bad": c.bad, "total": c.total, "sample": c.sample}
    if f.is_call:
        item = engine.calls.get((client, c.item))
        call = item.state if item is not None else None
        start = deadline = None
        within = f.within
        if call is not None:
            start = call.answered_us if f.handle else call.offered_us
            if within is not None and start is not None:
                deadline = start + within
        record.update(start_us=start, deadline_us=deadline, stop_us=at,
                      elapsed_s=c.sample if c.sample is not None else (None if start is None else (at - start) / 1e6),
                      paused_s=None, target_s=None if within is None else within / 1e6,
                      queue=call.queue if call is not None else None, channel=None)
    return _dumps(record, option=_UTC_Z)


_dumps, _UTC_Z = orjson.dumps, orjson.OPT_UTC_Z


class SlaFacts:
    """What the SLA events of one (client, SLA) need from the contract and the engine, looked up once per holder
    (`PartitionEngine._drain`), with the period label of the newest 15-minute bucket an event fell in."""

    __slots__ = ("bucket", "cal", "handle", "is_call", "kind", "label", "ledger", "targets", "within")

    def __init__(self, engine: Engine, client: str, name: str) -> None:
        sla = next(s for s in engine.contracts.clients[client].slas if s.name == name)
        self.kind = sla.kind
        self.cal = engine.clients[client].calendars.get(name)  # a ticket clock's calendar, else None
        self.targets = sla.target if self.cal is not None else None
        self.is_call = isinstance(sla, CallSla)
        self.within = sla.answered_within_us if self.is_call else None
        self.handle = self.is_call and sla.mean_of == "handle"
        self.ledger = self.bucket = self.label = None


def too_far_ahead(ahead_us: int, max_future_us: int, event_id: str, client: str) -> Rejection:
    return Rejection(FUTURE, f"{ahead_us / 1e6:.0f}s ahead of the worker clock, at most {max_future_us / 1e6:.0f}s "
                             "allowed", event_id, client)


def refusal(problem: tuple, max_future_us: int | None) -> Rejection:
    """The rejection a compiled partition's refusal stands for (`LivePartition.process`), worded as the Python
    engine words it."""
    reason = problem[0]
    if reason == "future":
        return too_far_ahead(problem[1], max_future_us, problem[2], problem[3])
    if reason == "error":
        return engine_error(*problem[1:])
    _, a, b, event_id, client, ticket_id = problem
    if reason == "late":
        return late(a, b, event_id, client)
    if reason == "expired_dropped":
        return expired_dropped(ticket_id, event_id, client)
    return expired_final(ticket_id, a, event_id, client)


def live_partition(engine: Engine, partition: int, owned: set[str]):
    """The compiled engine of a partition (native/engine `LivePartition`); `engine` keeps the uptime ledgers."""
    from monitor.compiled_replay import _native, engine_spec  # not at import: monitor.compiled_replay is optional

    if _native is None:
        raise RuntimeError("the compiled engine (monitor._engine) was not built")

    def fold_probes(horizons: dict[str, int], now_us: int) -> None:
        engine.now_us = now_us
        engine._fold_probes(horizons)

    spec = engine_spec(engine, fold_probes=fold_probes, fallback=None, refuse=None, engine_error=None)
    return _native.LivePartition({**spec, "owned": sorted(owned)}, partition)


@dataclass(slots=True)
class Output:
    """A record to publish: a dead letter or an SLA event."""

    kind: str  # DEADLETTER | SLA_EVENTS
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    future: Any = None  # the producer's future once handed over (resolves to its batch's RecordMetadata)
    index: int = 0  # its place in that batch: its offset is the batch's base offset + index

    @property
    def confirmed(self) -> bool:
        fut = self.future
        return fut is not None and fut.done() and not fut.cancelled() and fut.exception() is None

    @property
    def failed(self) -> bool:
        fut = self.future
        return fut is not None and fut.done() and (fut.cancelled() or fut.exception() is not None)


_NO_FUTURE = object()
_PENDING, _CONFIRMED, _FAILED = "pending", "confirmed", "failed"


class CheckpointState:
    """What the writer remembers between checkpoints of one partition (streams.state_records)."""

    def __init__(self, seen_chunks: dict[int, int] | None = None, next_chunk: int = 0, outbox_chunks: int = 0):
        self.seen_chunks = dict(seen_chunks or {})
        self.next_chunk = next_chunk
        self.outbox_chunks = outbox_chunks
        self.failed: list[tuple[bytes, bytes | None]] = []  # records of a write that failed: sent again first


class PartitionEngine:
    def __init__(self, partition: int, contracts: Contracts, *, source_topic: str = "slamon.events",
                 num_partitions: int | None = None, engine: Engine | None = None, compiled: bool = False) -> None:
        self.partition = partition
        self.contracts = contracts
        self.clients = contracts.clients
        self.source_topic = source_topic
        self.num_partitions = num_partitions
        self.engine = engine if engine is not None else Engine(contracts, keep_decisions=True, track_changes=True,
                                                               keep_breach_history=False)
        self.engine.keep_decisions = True
        if self.engine.changes is None:
            raise ValueError("a partition's engine must track changes (its checkpoints are incremental)")
        self._sla_facts: dict[tuple[str, str], SlaFacts] = {}  # (client, SLA) -> what its SLA events need
        self.checkpoint_state = CheckpointState()  # what the checkpoint writer remembers (streams.state_records)
        self.offset = -1  # last input offset reflected in the state
        self.snapshot_offset = -1  # offset reflected by the newest snapshot taken
        self.durable_offset = -1  # offset reflected by the newest snapshot known stored (set by the worker)
        self.restored_offset = -1  # offset of the snapshot this holder was restored from (-1: fresh)
        self.received = 0  # messages applied (not counting skipped ones)
        self.rejected: Counter = Counter()  # reason -> dead-lettered events (decode, late, future)
        self._misrouted = 0  # events whose client the default partitioner puts on another partition
        self.sla_events = 0  # SLA events emitted
        self.high_water: dict[tuple[str, str, str], float] = {}  # monotonic counters, see streams.metrics
        self.outbox: list[Output] = []  # unconfirmed outputs (dead letters, SLA events)
        self._unsent: list[Output] = []  # outputs not handed to a producer yet
        # (topic, partition) -> offset of the newest output of this partition the broker confirmed there (kept in
        # the checkpoint); after a restore, the outputs the previous owner published after those offsets, which
        # the restored holder is about to produce again and does not send twice (streams/outputs.py)
        self.published: dict[tuple[str, int], int] = {}
        self.expected: dict[tuple, Any] = {}  # item -> streams.outputs.Expected
        self.skipped = 0  # messages at or below `offset` (replayed after a restore); not persisted
        self.gaps = 0  # offsets never handed to `process` between two that were; not persisted
        self.rewinds = 0  # seeks back for undelivered offsets (set by the worker); not persisted
        self.rewind_to: int | None = None
        self.rewind_since = 0.0
        self.rewind_seek = 0.0
        self.version = 0  # bumps on every change (cache key for the metrics)
        self.clock_us = self.engine.now_us  # the instant the holder was last advanced to
        self.checkpoint_wall: float | None = None  # wall time of the newest snapshot (set by the worker)
        self.checkpoint_bytes = 0
        self.owned = {c for c in contracts.clients
                      if num_partitions is None or designated_partition(c, num_partitions) == partition}
        # the compiled engine (native/engine live.rs `LivePartition`): decode, ingest, clock, SLA-event records,
        # change marks and checkpoint records, restore; `engine` above then holds only the uptime ledgers (probes
        # stay Python objects), and scrapes read `view()`
        self.native = live_partition(self.engine, partition, self.owned) if compiled else None
        self._view: tuple[int, Engine] | None = None  # (version, the engine handed over): `view`

    @property
    def misrouted(self) -> int:
        """Events whose client the default partitioner puts on another partition."""
        return self._misrouted + (0 if self.native is None else self.native.misrouted)

    @misrouted.setter
    def misrouted(self, value: int) -> None:
        self._misrouted = value - (0 if self.native is None else self.native.misrouted)

    # --- input ------------------------------------------------------------------------------------------

    def process(self, value: bytes, offset: int, key: bytes | None = None, *, now_us: int | None = None,
                max_future_us: int | None = None) -> bool:
        """Apply one input message. False if it was already reflected (offset at or below `offset`)."""
        if offset <= self.offset:
            self.skipped += 1
            return False
        if offset > self.offset + 1:
            self.gaps += offset - self.offset - 1
            log.warning("partition %d: offsets %d..%d never delivered", self.partition, self.offset + 1,
                        offset - 1)
        self.offset = offset
        self.received += 1
        self.version += 1
        if self.native is not None:
            self._process_compiled(value, offset, key, now_us, max_future_us)
            return True
        event = decode_event(value, self.clients)
        if isinstance(event, Rejection):
            self._dead_letter(event, value, key, offset)
            return True
        if max_future_us is not None and now_us is not None and (ts_us := event.ts_us) > now_us + max_future_us:
            self._dead_letter(too_far_ahead(ts_us - now_us, max_future_us, event.event_id, event.client), value, key,
                              offset)
            return True
        if event.client not in self.owned:
            self._misrouted += 1
        errors = self.engine.stats.errors
        problem = self.engine.ingest(event)
        if problem is not None:
            if self.engine.stats.errors != errors:  # a bug in the engine: dead-lettered, the stream goes on
                log.error("partition %d offset %d: %s (event %s dead-lettered)", self.partition, offset,
                          problem.detail, problem.event_id)
            self._dead_letter(problem, value, key, offset)
        self._drain(offset)
        return True

    def _process_compiled(self, value: bytes, offset: int, key: bytes | None, now_us: int | None,
                          max_future_us: int | None) -> None:
        native = self.native
        problem = native.process(value, offset, now_us, max_future_us)
        if problem is not None:
            if problem == "decode":  # the fast decoder declined it: the Python decoder decides and words it
                event = decode_event(value, self.clients)
                if isinstance(event, Rejection):
                    self._dead_letter(event, value, key, offset)
                    return
                problem = native.process_event(event, offset, now_us, max_future_us)
            if problem is not None:
                self._refused(problem, value, key, offset, max_future_us)
        if native.pending:
            self._take_compiled()

    def _refused(self, problem: tuple, value: bytes | None, key: bytes | None, offset: int,
                 max_future_us: int | None) -> None:
        """A compiled partition's refusal dead-lettered (an engine error logged, as `process` logs it)."""
        rejection = refusal(problem, max_future_us)
        if problem[0] == "error":
            log.error("partition %d offset %d: %s (event %s dead-lettered)", self.partition, offset,
                      rejection.detail, rejection.event_id)
        self._dead_letter(rejection, value if value is not None else b"", key, offset)

    def _take_compiled(self) -> None:
        self._emit_outputs(self.native.take_outputs(Output, SLA_EVENTS, _CHANGE_HEADERS))

    def _emit_outputs(self, outputs: list[Output]) -> None:  # as _emit
        self.outbox += outputs
        self._unsent += outputs
        self.sla_events += len(outputs)

    def process_records(self, records: list, start: int, *, now_us: int | None = None,
                        max_future_us: int | None = None) -> int:
        """A compiled partition's fast path: apply fetched records (aiokafka `ConsumerRecord`s) from
        `records[start]`, as `process` applies each, while their offsets follow on from `offset`. Returns the index
        of the first record not applied (one whose offset does not follow, or `len(records)`)."""
        native = self.native
        if type(records) is not list:
            records = list(records)
        i, n = start, len(records)
        while i < n:
            first = self.offset + 1
            end, problem, split = native.process_records(records, i, first, now_us, max_future_us)
            applied = end - i  # records[i:end] (a refused one among them; not one the fast decoder declined)
            if applied:
                self.offset = first + applied - 1
                self.received += applied
                self.version += applied
            if problem is None:
                if native.pending:
                    self._take_compiled()
                return end
            if problem == "decode":  # records[end]: the Python decoder decides it, through `process`
                if native.pending:
                    self._take_compiled()
                record = records[end]
                self.process(record.value if record.value is not None else b"", record.offset, record.key,
                             now_us=now_us, max_future_us=max_future_us)
                i = end + 1
                continue
            # records[end - 1] was refused: its dead letter after the SLA events of the records before it
            outputs = native.take_outputs(Output, SLA_EVENTS, _CHANGE_HEADERS) if native.pending else []
            self._emit_outputs(outputs[:split])
            record = records[end - 1]
            self._refused(problem, record.value, record.key, record.offset, max_future_us)
            self._emit_outputs(outputs[split:])
            i = end
        return n

    def advance(self, now_us: int) -> None:
        """Time has reached `now_us`: decide every deadline <= now (no-op if the clock is past it)."""
        native = self.native
        if now_us <= self.clock_us and now_us <= (self.engine if native is None else native).horizon_us:
            return
        self.clock_us = max(self.clock_us, now_us)
        self.version += 1
        if native is not None:
            native.advance(now_us)
            if native.pending:
                self._take_compiled()
            return
        self.engine.advance_to(now_us)
        self._drain(None)

    def _dead_letter(self, rejection: Rejection, value: bytes, key: bytes | None, offset: int) -> None:
        self.rejected[rejection.reason] += 1
        headers = [
            ("reason", rejection.reason.encode()),
            ("detail", rejection.detail.encode()[:1000]),
            ("source_topic", self.source_topic.encode()),
            ("source_partition", str(self.partition).encode()),
            ("source_offset", str(offset).encode()),
        ]
        if rejection.event_id:
            headers.append(("event_id", rejection.event_id.encode()))
        if rejection.client:
            headers.append(("client", rejection.client.encode()))
        if len(value) > DEADLETTER_MAX_VALUE:
            headers.append(("original_bytes", str(len(value)).encode()))
            value = value[:DEADLETTER_MAX_VALUE]
        self._emit(Output(DEADLETTER, key, bytes(value), headers))

    def _drain(self, offset: int | None) -> None:
        decisions = self.engine.decisions
        if not decisions:
            return
        trigger = "clock" if offset is None else "event"
        partition, engine, facts = self.partition, self.engine, self._sla_facts
        outbox, unsent = self.outbox, self._unsent
        for client, c, sign in decisions:
            change = DECIDED if sign > 0 else WITHDRAWN
            f = facts.get((client, c.sla))
            if f is None:
                f = facts[(client, c.sla)] = SlaFacts(engine, client, c.sla)
            output = Output(SLA_EVENTS, _client_key(client),
                            sla_event(client, c, change, trigger, partition, offset, engine, f), CHANGE_HEADERS[change])
            outbox.append(output)  # as _emit
            unsent.append(output)
        self.sla_events += len(decisions)
        decisions.clear()

    # --- outputs ----------------------------------------------------------------------------------------

    def _emit(self, output: Output) -> None:
        self.outbox.append(output)
        self._unsent.append(output)

    def take_unsent(self) -> list[Output]:
        """Outputs to hand to a producer now (set their `future`), oldest first."""
        unsent, self._unsent = self._unsent, []
        return unsent

    def prune_outbox(self) -> int:
        """Drop confirmed outputs; failed ones are queued to be sent again. Returns how many failed. The outputs
        of one producer batch share its future: its state is read once per run of outputs holding it."""
        failed = 0
        kept = []
        published = self.published
        last, state, meta = _NO_FUTURE, _PENDING, None
        for o in self.outbox:
            fut = o.future
            if fut is not last:  # as Output.confirmed / Output.failed
                last, meta = fut, None
                if fut is None or not fut.done():
                    state = _PENDING
                elif fut.cancelled() or fut.exception() is not None:
                    state = _FAILED
                else:
                    state, meta = _CONFIRMED, fut.result()
            if state is _CONFIRMED:
                if meta is not None:  # None: matched with what the previous owner published (streams/outputs.py)
                    tp, offset = (meta.topic, meta.partition), meta.offset + o.index
                    if offset > published.get(tp, -1):
                        published[tp] = offset
                continue
            if state is _FAILED:
                o.future = None
                self._unsent.append(o)
                failed += 1
            kept.append(o)
        self.outbox = kept
        return failed

    # --- queries ----------------------------------------------------------------------------------------

    @property
    def now_us(self) -> int:
        """The engine's time: its newest event or the clock it was advanced to."""
        return self.engine.now_us if self.native is None else self.native.now_us

    def view(self) -> Engine:
        """The engine a scrape reads: the Python engine itself, or for a compiled partition a Python engine holding
        what a report reads of its state (the uptime ledgers shared), made at the first scrape and then brought up
        to date with what changed (`LivePartition.sync_view`): a scrape costs what changed, as with the Python
        engine, whose open-clock index the copy keeps the same way. `streams.metrics.settle_counters` syncs it in
        the worker before a scrape forks, so the child finds it current."""
        if self.native is None:
            return self.engine
        if self._view is None or self._view[0] != self.version:
            from monitor.compiled_replay import ViewSync

            copy = self._view[1] if self._view is not None else None
            if copy is None:
                copy = Engine(self.contracts, keep_breach_history=False)
                for name, model in copy.clients.items():
                    model.uptime = self.engine.clients[name].uptime
            collecting = gc.isenabled()
            gc.disable()  # as a restore: only long-lived objects are made
            try:
                self.native.sync_view(Tally, ViewSync(copy), self._view is None)
            finally:
                if collecting:
                    gc.enable()
            self._view = (self.version, copy)
        return self._view[1]

    def held(self) -> tuple[int, int]:
        """Tickets held, and those with a clock running."""
        if self.native is not None:
            return self.native.held()
        return len(self.engine.tickets), len(self.engine.open_tickets)

    @property
    def dirty(self) -> bool:
        """State changed by input since the newest snapshot."""
        return self.offset != self.snapshot_offset

    def dead_letters(self) -> list[Output]:
        return [o for o in self.outbox if o.kind == DEADLETTER]
