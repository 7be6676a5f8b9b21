"""Output publishing: dead letters and SLA events from the partition holders to their topics.

    outputs = OutputPublisher(app, settings)
    outputs.publish(pe)        # queue pe's new outputs (no I/O)
    await outputs.flush()      # hand what is queued to faust's producer as record batches

Each output keeps the producer's future; the holder drops it from its outbox once the broker confirmed it
(`PartitionEngine.prune_outbox`), and a checkpoint carries the unconfirmed ones (at-least-once outputs).
"""

from __future__ import annotations

import asyncio

from streams.config import Settings
from streams.partition_engine import DEADLETTER, PartitionEngine, designated_partition


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

    def publish(self, pe: PartitionEngine) -> None:
        """Queue a holder's new outputs; `flush` hands them to the producer in batches (one `send_soon` per
        record costs about as much as applying the event that caused it)."""
        unsent = pe.take_unsent()
        if unsent:
            self.pending.extend(unsent)
            if len(self.pending) >= 5000 and self.flush_task is None:
                self.flush_task = asyncio.ensure_future(self.flush())

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
                partition = (designated_partition(out.key.decode(errors="replace"), count) if out.key
                             else out_partition(out, count))
                groups.setdefault((topic, partition), []).append(out)
            for (topic, partition), group in groups.items():
                batch, members = producer.create_batch(), []
                for out in group:
                    if batch.append(key=out.key, value=out.value, timestamp=None, headers=out.headers) \
                            is None:
                        fut = await producer.send_batch(batch, topic, partition=partition)
                        for m in members:
                            m.future = fut
                        batch, members = producer.create_batch(), []
                        batch.append(key=out.key, value=out.value, timestamp=None, headers=out.headers)
                    members.append(out)
                if members:
                    fut = await producer.send_batch(batch, topic, partition=partition)
                    for m in members:
                        m.future = fut
        finally:
            self.flush_task = None

    async def drain(self) -> None:
        """Everything queued handed over and acknowledged (before a checkpoint): a running flush, one more
        pass, then the producer's own flush."""
        if self.flush_task is not None:
            await self.flush_task
        await self.flush()
        await self.app.producer.flush()
