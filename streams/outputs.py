"""Output publishing: dead letters and SLA events from the partition holders to their topics.

    outputs = OutputPublisher(app, settings)
    outputs.publish(pe)        # queue pe's new outputs (no I/O)
    await outputs.flush()      # hand what is queued to faust's producer as record batches

Each output keeps the producer's future; the holder drops it from its outbox once the broker confirmed it
(`PartitionEngine.prune_outbox`), and a checkpoint carries the unconfirmed ones (at-least-once outputs).

Not sending twice what the broker already has. A checkpoint also records, per output partition, the offset of
the newest output of that source partition the broker confirmed (`PartitionEngine.published`). A new owner
restores the checkpoint and applies the input after it again, producing again the outputs the previous owner
published after the checkpoint. Before it publishes, `read_published` reads those partitions after the recorded
offsets and keeps the records of its source partition, per item (`PartitionEngine.expected`): an SLA event's
item is (client, SLA, item), the key of the topic's reading rule (docs/sla-record.md); a dead letter's is its
input offset. `publish` then skips each output equal to the next expected record of its item (the same record
but for `trigger` and `source_offset`, which depend on when a clock tick ran), and at the first output of an
item that differs it sends that item's skipped ones after all, then the rest: so each item reads, in topic
order, exactly as if everything had been sent again (a sequence of upserts and deletes applied twice in a row
ends where it ends once), only without the repeated prefix; items are independent under the reading rule, so
their interleaving does not matter. A crash during a catch-up used to repeat up to a checkpoint interval's
outputs (8.4k SLA events in the fault suite); now none, unless an item's sequence differs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections import deque

import orjson

from streams.config import Settings
from streams.partition_engine import DEADLETTER, Output, PartitionEngine, designated_partition

log = logging.getLogger("slamon.outputs")

# the future of an output skipped because the broker already has it (confirmed; no RecordMetadata)
ALREADY_PUBLISHED: concurrent.futures.Future = concurrent.futures.Future()
ALREADY_PUBLISHED.set_result(None)


IGNORED = ("trigger", "source_offset")  # when a decision was made, not what: may differ after a restore


def identity(kind: str, key: bytes | None, value: bytes, headers) -> tuple[tuple, object] | None:
    """(item, comparable content) of an output or a record read back; None when it cannot be told."""
    if kind == DEADLETTER:
        offset = next((v for n, v in headers or () if n == "source_offset"), None)
        return (("deadletter", offset), value) if offset is not None else None
    try:
        record = orjson.loads(value)
        item = (record["client"], record["sla"], record["item"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    for name in IGNORED:
        record.pop(name, None)
    return item, record


class Expected:
    """What the previous owner published for one item after the restored checkpoint, in topic order."""

    __slots__ = ("matched", "records")

    def __init__(self) -> None:
        self.records: deque = deque()  # (content, (topic, partition), offset)
        self.matched: list[Output] = []  # skipped so far: sent after all if a later output differs


def out_partition(out, count: int) -> int:
    """Partition of an output without a key (a dead letter of an unkeyed message): its source partition."""
    for name, value in out.headers:
        if name == "source_partition":
            return int(value) % count
    return 0


class OutputPublisher:
    """The queue of outputs handed to faust's producer in batches per (topic, partition)."""

    def __init__(self, app, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.pending: list = []
        self.flush_task = None
        self._partition_counts: dict[str, int] = {}
        self._key_partitions: dict[str, dict[bytes, int]] = {}  # topic -> key -> partition
        self.skipped = 0  # outputs not sent because the broker already had them

    def publish(self, pe: PartitionEngine) -> None:
        """Queue a holder's new outputs; `flush` hands them to the producer in batches (one `send_soon` per
        record costs about as much as applying the event that caused it)."""
        unsent = pe.take_unsent()
        if unsent and pe.expected:
            unsent = self._skip_published(pe, unsent)
        if unsent:
            self.pending.extend(unsent)
            if len(self.pending) >= 5000 and self.flush_task is None:
                self.flush_task = asyncio.ensure_future(self.flush())

    def _skip_published(self, pe: PartitionEngine, outputs: list[Output]) -> list[Output]:
        """The outputs to send, leaving out those the broker already has (module docstring)."""
        send = []
        expected = pe.expected
        for out in outputs:
            ident = identity(out.kind, out.key, out.value, out.headers)
            exp = expected.get(ident[0]) if ident is not None else None
            if exp is None:
                send.append(out)
                continue
            item, content = ident
            head, tp, offset = exp.records[0]
            if head == content:
                exp.records.popleft()
                out.future = ALREADY_PUBLISHED
                exp.matched.append(out)
                if offset > pe.published.get(tp, -1):
                    pe.published[tp] = offset
                self.skipped += 1
                if not exp.records:
                    del expected[item]
                    if not expected:
                        log.info("partition %d: every output the previous owner published after the checkpoint "
                                 "was produced again and not sent twice", pe.partition)
                continue
            # differs: from here on this item must read as if everything had been sent again
            del expected[item]
            log.info("partition %d: an output of %s differs from what the previous owner published (after %d equal "
                     "ones): sending those and the rest", pe.partition, item, len(exp.matched))
            for m in exp.matched:
                m.future = None
                pe.outbox.append(m)
            self.skipped -= len(exp.matched)
            send.extend(exp.matched)
            send.append(out)
        return send

    async def flush(self) -> None:
        """Send the queued outputs as record batches per (topic, partition) with aiokafka's batch API; each
        output's future resolves when its batch is acknowledged. Partitions: murmur2 of the key, as the
        default partitioner would pick.

        One pass over what is queued at the call: events applied meanwhile queue more, and under a backlog a
        loop "until empty" never ended, holding back the checkpoint that awaits it (seen: 728 s without a
        commit). The 50 ms timer and the size trigger in `publish` send the rest."""
        try:
            outputs, self.pending = self.pending, []
            producer = self.app.producer._ensure_producer()  # the AIOKafkaProducer faust runs
            groups: dict[tuple[str, int], list] = {}
            for out in outputs:
                topic = self.settings.topics.deadletter if out.kind == DEADLETTER else \
                    self.settings.topics.sla_events
                count = self._partition_counts.get(topic)
                if count is None:
                    count = self._partition_counts[topic] = len(await producer.partitions_for(topic))
                    self._key_partitions[topic] = {}
                key = out.key
                if key:  # a key's partition found once per topic (the keys are client names: few)
                    known = self._key_partitions[topic]
                    partition = known.get(key)
                    if partition is None:
                        partition = known[key] = designated_partition(key.decode(errors="replace"), count)
                else:
                    partition = out_partition(out, count)
                groups.setdefault((topic, partition), []).append(out)
            for (topic, partition), group in groups.items():
                batch, members = producer.create_batch(), []
                for out in group:
                    if batch.append(key=out.key, value=out.value, timestamp=None, headers=out.headers) \
                            is None:
                        fut = await producer.send_batch(batch, topic, partition=partition)
                        for i, m in enumerate(members):
                            m.future, m.index = fut, i
                        batch, members = producer.create_batch(), []
                        batch.append(key=out.key, value=out.value, timestamp=None, headers=out.headers)
                    members.append(out)
                if members:
                    fut = await producer.send_batch(batch, topic, partition=partition)
                    for i, m in enumerate(members):
                        m.future, m.index = fut, i
        finally:
            self.flush_task = None

    async def drain(self) -> None:
        """Everything queued handed over and acknowledged (before a checkpoint): a running flush, one more
        pass, then the producer's own flush."""
        if self.flush_task is not None:
            await self.flush_task
        await self.flush()
        await self.app.producer.flush()


def read_published(settings: Settings, pe: PartitionEngine, *, timeout: float = 60.0) -> int:
    """Fill `pe.expected`: per item, the records after the offsets in `pe.published` whose source partition is
    `pe.partition`, in order (runs in the restore thread: kafka-python). Returns how many. Outputs are not
    transactional: read_uncommitted, up to the high watermark."""
    if not pe.published:
        return 0
    from kafka import KafkaConsumer, TopicPartition

    kinds = {settings.topics.deadletter: DEADLETTER}  # anything else: SLA events
    config = settings.kafka.kafka_python_config()
    config["client_id"] = f"{config.get('client_id') or 'slamon'}-outputs"
    consumer = KafkaConsumer(**config, group_id=None, enable_auto_commit=False)
    mine = str(pe.partition).encode()
    expected: dict[tuple, Expected] = {}
    count = 0
    try:
        tps = [TopicPartition(t, p) for (t, p) in pe.published]
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        pending = []
        for tp in tps:
            start = pe.published[(tp.topic, tp.partition)] + 1
            if start < ends[tp]:
                consumer.seek(tp, start)
                pending.append(tp)
            else:
                consumer.pause(tp)
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                log.warning("partition %d: outputs after the checkpoint not read in %.0fs: they may be sent twice",
                            pe.partition, timeout)
                return 0
            for tp, batch in consumer.poll(timeout_ms=500, max_records=50_000).items():
                kind = kinds.get(tp.topic)
                for record in batch:
                    if record.offset >= ends[tp] or _source_partition(record) != mine:
                        continue
                    ident = identity(kind, record.key, record.value, record.headers)
                    if ident is not None:
                        exp = expected.get(ident[0])
                        if exp is None:
                            exp = expected[ident[0]] = Expected()
                        exp.records.append((ident[1], (tp.topic, tp.partition), record.offset))
                        count += 1
            pending = [tp for tp in pending if consumer.position(tp) < ends[tp]]
    finally:
        consumer.close()
    pe.expected = expected
    return count


def _source_partition(record) -> bytes | None:
    for name, value in record.headers or ():
        if name == "source_partition":  # a dead letter
            return value
    try:  # an SLA event: JSON
        partition = orjson.loads(record.value).get("source_partition")
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return None
    return None if partition is None else str(partition).encode()
