"""Checkpoints of partition state in the compacted snapshots topic: written in Kafka transactions, read back
by a new owner. The record format is `streams.state_records` (its docstring has the table).

Why transactions: a checkpoint is many records (the items that changed, tombstones, the meta record with the
input offset). A crash halfway through must not leave a mix of two checkpoints, so each partition's records go
in one transaction and a new owner reads with `isolation_level=read_committed`: it sees whole checkpoints only.
Each partition has its own transactional id (`<app_id>-snapshots-p<n>`, as Kafka Streams did per task): the
next owner's `init_transactions` aborts a transaction its crashed predecessor left open (readers do not wait for
the transaction timeout) and fences a predecessor that is still alive (a zombie cannot write over its state).

Input offsets are still committed by faust after the checkpoint and capped at the offset the newest stored
checkpoint reflects (`Runtime.commit_limit`), so committed offsets never pass stored state; a restored holder
skips input it already reflects (exactly once per message into the state).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

from aiokafka import AIOKafkaProducer

from streams.config import Settings
from streams.state_records import prefix_of

log = logging.getLogger("slamon.checkpoint")

TABLE_NAME = "snapshots"
PROGRESS_SECONDS = 5.0
# Compacted, with short segments: only closed segments are compacted, and a new owner reads what is left.
SNAPSHOT_TOPIC_CONFIG = {
    "cleanup.policy": "compact", "segment.ms": str(10 * 60 * 1000), "min.cleanable.dirty.ratio": "0.1",
    "delete.retention.ms": str(60 * 60 * 1000), "segment.bytes": str(64 * 1024 * 1024),
    "max.message.bytes": str(1024 * 1024),
}


def snapshot_topic_name(settings: Settings) -> str:
    """Same name as the faust table changelog of earlier versions: old format-1 snapshots are found and refused."""
    return f"{settings.app_id}-{TABLE_NAME}-changelog"


class CheckpointWriter:
    """One transactional producer per owned partition."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self.producers: dict[int, AIOKafkaProducer] = {}
        self.written: dict[int, int] = {}  # checkpoints committed per partition by this worker
        # Fault injection for the fault suite: pause this long halfway through a checkpoint's records, from each
        # partition's second checkpoint on (a kill -9 lands mid-checkpoint, after a stored one). Never set in
        # production.
        self.fault_pause = float(os.environ.get("SLAMON_FAULT_MID_CHECKPOINT_PAUSE", "0") or 0)

    async def open(self, partition: int) -> None:
        """Start the partition's producer: fences its previous owner and aborts what that owner left open.
        Call before reading the partition's checkpoint."""
        if partition in self.producers:
            return
        producer = AIOKafkaProducer(
            **self.settings.kafka.aiokafka_config(),
            transactional_id=f"{self.settings.app_id}-snapshots-p{partition}",
            enable_idempotence=True, acks="all", linger_ms=5, max_batch_size=512 * 1024,
            max_request_size=1_048_576,
            transaction_timeout_ms=30_000,  # how long a crashed owner's open transaction can hide later commits
        )
        await producer.start()
        self.producers[partition] = producer

    async def _send(self, producer: AIOKafkaProducer, records: list[tuple[bytes, bytes | None]],
                    partition: int) -> None:
        """Queue the records as record batches (aiokafka's per-record `send` costs ~10 us of event-loop time each:
        a fifth of a second for a 20k-record checkpoint)."""
        batch = producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:
                if batch.record_count():
                    await producer.send_batch(batch, self.topic, partition=partition)
                    batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:  # larger than a batch: alone
                    await producer.send(self.topic, key=key, value=value, partition=partition)
        if batch.record_count():
            await producer.send_batch(batch, self.topic, partition=partition)

    async def _pause_mid_checkpoint(self, partition: int) -> None:
        producer = self.producers[partition]
        await producer.flush()  # the first half is on the broker, inside the open transaction
        log.warning("partition %d: checkpoint half-written, pausing %.1fs (SLAMON_FAULT_MID_CHECKPOINT_PAUSE)",
                    partition, self.fault_pause)
        await asyncio.sleep(self.fault_pause)

    async def close(self, partition: int) -> None:
        producer = self.producers.pop(partition, None)
        if producer is not None:
            try:
                await producer.stop()
            except Exception as exc:  # fenced or broker gone: nothing left to flush that matters
                log.debug("partition %d: stopping the checkpoint producer: %r", partition, exc)

    async def close_all(self) -> None:
        for partition in list(self.producers):
            await self.close(partition)

    async def write(self, partition: int, records: list[tuple[bytes, bytes | None]]) -> None:
        """Write one checkpoint's records atomically (the meta record last); raises when they are not committed.
        On any error the producer is stopped, never aborted or reused (a fenced or failed aiokafka transactional
        producer is in a fatal state where abort() raises or hangs); the next write starts a new one, whose start
        aborts what this one left open."""
        producer = self.producers.get(partition)
        if producer is None:
            await self.open(partition)
            producer = self.producers[partition]
        try:
            await producer.begin_transaction()
            half = len(records) // 2 if self.fault_pause and self.written.get(partition) else -1
            await self._send(producer, records[:half] if half >= 0 else records, partition)
            if half >= 0:
                await self._pause_mid_checkpoint(partition)
                await self._send(producer, records[half:], partition)
            await producer.commit_transaction()  # sends what is queued, then ends the transaction
            self.written[partition] = self.written.get(partition, 0) + 1
        except BaseException:
            await self.close(partition)
            raise


def read_checkpoints(settings: Settings, topic: str, partitions: list[int], *, timeout: float = 300.0,
                     on_progress: Callable[[int], None] | None = None) -> dict[int, dict[bytes, bytes]]:
    """The newest committed value of every key in these partitions of the snapshots topic, read from the start
    to the end (runs in a thread: kafka-python). `on_progress(n)` is told of every n records read."""
    from kafka import KafkaConsumer, TopicPartition

    config = settings.kafka.kafka_python_config()
    config["client_id"] = f"{config.get('client_id') or 'slamon'}-restore"
    consumer = KafkaConsumer(**config, group_id=None, enable_auto_commit=False, isolation_level="read_committed",
                             max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
    started = last_log = time.monotonic()
    count = 0
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)  # read_committed: the last stable offset
        begins = consumer.beginning_offsets(tps)
        for tp in tps:  # explicit offsets: position() after seek_to_beginning hangs on an empty partition
            consumer.seek(tp, begins[tp])
        records: dict[int, dict[bytes, bytes]] = {p: {} for p in partitions}
        pending = [tp for tp in tps if begins[tp] < ends[tp]]
        deadline = started + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"checkpoints of {pending} not read in {timeout:.0f}s")
            n = 0
            for tp, batch in consumer.poll(timeout_ms=500, max_records=50_000).items():
                data = records[tp.partition]
                prefix = prefix_of(tp.partition)
                for record in batch:
                    if record.value is None:
                        data.pop(record.key, None)  # tombstone
                    elif record.key is not None:
                        data[record.key] = record.value
                    n += 1
                    if record.key is not None and not record.key.startswith(prefix) and not \
                            record.key.startswith(f"p{tp.partition}.".encode()):
                        log.warning("snapshots partition %d holds a record of another partition: %r",
                                    tp.partition, record.key[:80])
            count += n
            if on_progress is not None and n:
                on_progress(n)
            now = time.monotonic()
            if now - last_log >= PROGRESS_SECONDS:
                last_log = now
                log.info("restoring partitions %s: %d records read in %.0fs", partitions, count, now - started)
            # control markers (transaction commits) take offsets too: the position reaches the end past them
            pending = [tp for tp in pending if consumer.position(tp) < ends[tp]]
        log.info("read the checkpoints of partitions %s: %d records in %.1fs", partitions, count,
                 time.monotonic() - started)
        return records
    finally:
        consumer.close()
