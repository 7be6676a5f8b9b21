"""The SLA-events topic a worker would write for a file of events, without Kafka: for tests, the bench, and
filling a store from an archive (`slamon store load EVENTS`).

    topic = sla_topic(lines, contracts, partitions=4)      # partition -> [record bytes], in publication order
    load_topic(store, "slamon.sla-events", topic)          # applied as `slamon store run` applies them
    load_records(store, "file:x", sla_records(lines, contracts))   # the same, streaming (large files)

Each client's events go to one `streams.partition_engine.PartitionEngine` (the partition Kafka's default
partitioner gives the client, as producers key events by client) on the event clock; its SLA events go to the
SLA-events partition of their key (the client), in the order the worker emits them. At the end every engine is
advanced to `at_us` (default: the newest event time), so the topic holds the decisions a replay reports then.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

from monitor.contracts import Contracts
from monitor.events import Rejection, decode_event
from store.db import Applied, Store
from store.records import parse
from streams.partition_engine import SLA_EVENTS, PartitionEngine, designated_partition


def sla_records(lines: Iterable[bytes], contracts: Contracts, *, partitions: int = 1, at_us: int | None = None,
                until_us: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(SLA-events partition, record) in the order the workers publish them. `until_us`: events after it are left
    out (as `slamon replay --at` does)."""
    engines: dict[int, PartitionEngine] = {}
    offsets: dict[int, int] = defaultdict(int)
    newest = -1

    def drain(pe: PartitionEngine) -> Iterator[tuple[int, bytes]]:
        for out in pe.take_unsent():
            if out.kind == SLA_EVENTS:
                yield designated_partition(out.key.decode(), partitions), out.value
        pe.outbox.clear()

    for line in lines:
        if not line.strip():
            continue
        event = decode_event(line, contracts.clients)
        part = 0 if isinstance(event, Rejection) or not event.client else designated_partition(event.client, partitions)
        if not isinstance(event, Rejection):
            if until_us is not None and event.ts_us > until_us:
                continue
            newest = max(newest, event.ts_us)
        pe = engines.get(part)
        if pe is None:
            pe = engines[part] = PartitionEngine(part, contracts, num_partitions=partitions)
        pe.process(line, offsets[part])
        offsets[part] += 1
        yield from drain(pe)
    end = at_us if at_us is not None else newest
    for pe in engines.values():
        pe.advance(end)
        yield from drain(pe)


def sla_topic(lines: Iterable[bytes], contracts: Contracts, *, partitions: int = 1, at_us: int | None = None
              ) -> dict[int, list[bytes]]:
    """The whole topic in memory: partition -> records in publication order."""
    topic: dict[int, list[bytes]] = defaultdict(list)
    for part, value in sla_records(lines, contracts, partitions=partitions, at_us=at_us):
        topic[part].append(value)
    return dict(topic)


def load_records(store: Store, topic_name: str, records: Iterable[tuple[int, bytes]], *, batch: int = 20_000
                 ) -> Applied:
    """Apply a stream of (partition, record) in transactions of `batch` records; a record's offset is its position
    in its partition of the stream, so loading the same stream again applies nothing."""
    total = Applied()
    pending: list = []

    def flush() -> None:
        applied = store.apply(topic_name, pending)
        total.decided += applied.decided
        total.withdrawn += applied.withdrawn
        total.redelivered += applied.redelivered
        total.next_offsets.update(applied.next_offsets)
        pending.clear()

    counters: dict[int, int] = defaultdict(int)
    for part, value in records:
        pending.append(parse(value, part, counters[part]))
        counters[part] += 1
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return total


def load_topic(store: Store, topic_name: str, topic: dict[int, list[bytes]], *, batch: int = 5000,
               first_offsets: dict[int, int] | None = None) -> Applied:
    """Apply `topic` (partition -> records from `first_offsets`, default 0) in transactions of `batch` records
    per partition, as the consumer does. Returns the sums."""
    total = Applied()
    for partition, values in sorted(topic.items()):
        base = (first_offsets or {}).get(partition, 0)
        for start in range(0, len(values), batch):
            changes = [parse(v, partition, base + start + i) for i, v in enumerate(values[start:start + batch])]
            applied = store.apply(topic_name, changes)
            total.decided += applied.decided
            total.withdrawn += applied.withdrawn
            total.redelivered += applied.redelivered
            total.next_offsets.update(applied.next_offsets)
    return total
