"""The streaming worker: a faust app that runs the pure engine per Kafka partition.

    python -m streams.app [--config FILE]      (also: slamon worker [--config FILE])

Data flow. One agent (concurrency 1) reads the events topic, keyed by client. Each assigned partition has a
`PartitionEngine`; a message is decoded and applied by its partition's holder. Rejections go to the
dead-letter topic, every decision and withdrawal to the SLA-events topic. A timer advances every holder's
clock each `tick_interval` so deadlines are decided with no event. `/metrics` on the faust web server (the
same event loop, so a scrape never races the engine) renders `streams.metrics.EngineCollector`.

Checkpoints and commits are one step. Every offset commit faust makes (its commit timer, set to
`checkpoint_interval`; the commit before a rebalance; the commit at shutdown) goes through
`SlamonConsumer.force_commit`, which first flushes the outputs, then writes what changed in every holder since its
last checkpoint (`streams.state_records`) to the snapshots topic in one transaction per partition
(`streams.checkpoint`); only then does faust commit, and `_new_offset` caps each partition's commit at the offset
its newest stored checkpoint reflects. So the committed offset never passes stored state: a restarted worker
restores the checkpoint, is handed messages from the committed offset (at or before it), skips those the
checkpoint already reflects and applies the rest. Details and the faust issues behind this design:
streams/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

import faust
import orjson
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from monitor.contracts import Contracts, load_contracts
from monitor.gc_tuning import tune_gc
from streams.checkpoint import SNAPSHOT_TOPIC_CONFIG, CheckpointWriter, read_checkpoints, snapshot_topic_name
from streams.config import Settings, load_settings, redact_secrets_in_logs
from streams.metrics import EngineCollector, settle_counters
from streams.metrics_server import BasicAuthGuard, web_server_settings
from streams.partition_engine import DEADLETTER, PartitionEngine, designated_partition
from streams.scrape import ForkedRenderer, ScrapeError
from streams.state_records import StateRecordError, changed_records, restore_partition

log = logging.getLogger("slamon.worker")

REWIND_GRACE = 10.0  # seconds a seek back may take to deliver the missing offset
INGEST_BATCH = 500  # events applied per synchronous step: bounds how long /metrics and the clock wait


def out_partition(out, count: int) -> int:
    """Partition of an output without a key (a dead letter of an unkeyed message): its source partition."""
    for name, value in out.headers:
        if name == "source_partition":
            return int(value) % count
    return 0


# --- faust extension points --------------------------------------------------------------------------------


class SlamonConsumer(aiokafka_driver.Consumer):
    """faust's aiokafka consumer, with every commit preceded by a checkpoint and capped by it."""

    def _new_consumer_thread(self) -> aiokafka_driver.AIOKafkaConsumerThread:
        return SlamonConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def wait_empty(self) -> None:
        """faust commits here before partitions are revoked and when stopping: checkpoint synchronously."""
        runtime: Runtime | None = getattr(self.app, "slamon", None)
        if runtime is not None:
            runtime.final_commit = True
        try:
            await super().wait_empty()
        finally:
            if runtime is not None:
                runtime.final_commit = False

    async def force_commit(self, topics=None, start_new_transaction: bool = True) -> bool:
        runtime: Runtime | None = getattr(self.app, "slamon", None)
        if runtime is not None and not await runtime.checkpoint():
            return False
        return await super().force_commit(topics, start_new_transaction=start_new_transaction)

    async def _drain_messages(self, fetcher) -> None:  # pragma: no cover - runs inside faust's Fetcher
        """faust's fetch loop, with the events topic applied in batches straight from the fetch.

        faust hands every message to its conductor, a channel queue and a stream, with two tasks created per
        message (`wait_first`); that machinery cost several times the engine's own work per event. Events
        bypass it: the runtime applies each fetched batch in offset order and acks it. Nothing else changes:
        other topics (the snapshots changelog during recovery) still go through the conductor, and safety
        never rested on faust's delivery (offsets are checked per partition, commits are capped by
        snapshots). Flow control: faust suspends the flow around rebalances; a batch fetched before that is
        dropped, and the worker seeks every partition to the offset its engine needs once the rebalance
        completes (`Runtime.on_rebalance_complete`)."""
        runtime: Runtime | None = getattr(self.app, "slamon", None)
        if runtime is None:
            await super()._drain_messages(fetcher)
            return
        events_topic = runtime.events_topic_name
        should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        read_offset = self._read_offset
        try:
            while not (should_stop() or fetcher_should_stop()):
                batch: list = []
                await asyncio.sleep(0)  # getmany can return at once in a loop: let the event loop run
                async for tp, message in self.getmany(timeout=1.0):
                    offset = message.offset
                    last = read_offset[tp]
                    if last is not None and offset < last:
                        continue  # faust's own filter: older than what this partition already yielded
                    read_offset[tp] = offset
                    if message.topic == events_topic:
                        batch.append(message)
                        if len(batch) >= INGEST_BATCH:
                            await runtime.apply_batch(batch, self)
                            batch = []
                    else:
                        await runtime.apply_batch(batch, self)
                        batch = []
                        await self.wait_first(self.callback(message), self.suspend_flow.wait())
                if batch:
                    await runtime.apply_batch(batch, self)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    def _new_offset(self, tp: TP) -> int | None:
        runtime: Runtime | None = getattr(self.app, "slamon", None)
        limit = runtime.commit_limit(tp) if runtime is not None else None
        if limit is None:
            return super()._new_offset(tp)
        acked = self._acked[tp]
        held = [offset for offset in acked if offset >= limit]
        if not held:
            return super()._new_offset(tp)
        # Acked but not (durably) reflected by a snapshot: keep them out of this commit, keep them acked.
        acked[:] = [offset for offset in acked if offset < limit]
        try:
            return super()._new_offset(tp) if acked else None
        finally:
            acked.extend(held)


class SlamonConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    """faust's consumer thread with `fetch_max_wait_ms` from the settings (faust fixes it at 1500 ms)."""

    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        runtime: Runtime | None = getattr(self.app, "slamon", None)
        if runtime is not None:
            consumer._fetch_max_wait_ms = runtime.settings.fetch_max_wait_ms  # read by consumer.start()
        return consumer


class SlamonTransport(aiokafka_driver.Transport):
    Consumer = SlamonConsumer


class SlamonApp(faust.App):
    slamon: Runtime | None = None

    def _new_transport(self):
        return SlamonTransport(self.conf.broker_consumer, self)


class CheckpointCollector:
    """`slamon_checkpoint_failures_total`: checkpoints that could not be stored (a write or its transaction
    failed, the broker was gone). Each one holds commits back to the last stored checkpoint, so a rising counter
    with a growing `slamon_checkpoint_age_seconds` means a restart would re-read more and more input.
    `slamon_restore_records_total`: checkpoint records read back by this worker (restore progress)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        runtime = self.runtime
        yield CounterMetricFamily("slamon_checkpoint_failures", "Checkpoints that could not be stored",
                                  value=runtime.checkpoint_failures)
        yield CounterMetricFamily("slamon_restore_records", "Checkpoint records read back to restore partitions",
                                  value=runtime.restore_records)


# --- the runtime ---------------------------------------------------------------------------------------------


class Runtime:
    """Per-worker state: the partition holders, the snapshots topic, the output topics, the clock."""

    def __init__(self, app: SlamonApp, settings: Settings, contracts: Contracts, num_partitions: int) -> None:
        self.app = app
        self.settings = settings
        self.contracts = contracts
        self.num_partitions = num_partitions
        self.events_topic_name = settings.topics.events
        self.engines: dict[int, PartitionEngine] = {}
        self.assigned: set[int] = set()
        self.checkpoints = 0
        self.checkpoint_failures = 0
        self.stale_messages = 0
        self.pending_outputs: list = []
        self._partition_counts: dict[str, int] = {}
        self._flush_task = None
        self.final_commit = False  # set while faust commits before a rebalance or at shutdown
        self.restore_records = 0
        self._checkpoint_lock = asyncio.Lock()
        self.max_future_us = (None if settings.clock == "event" or settings.max_future_seconds is None
                              else int(settings.max_future_seconds * 1_000_000))
        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        self.events_topic = app.topic(settings.topics.events, partitions=num_partitions, key_type=bytes,
                                      value_type=bytes, **raw)
        self.deadletter_topic = app.topic(settings.topics.deadletter, **raw)
        self.sla_topic = app.topic(settings.topics.sla_events, **raw)
        # Checkpoints go to a compacted topic of our own, written in transactions and read back when partitions
        # are assigned (streams.checkpoint). Not a faust Table: faust's table recovery stalled now and then after
        # a rebalance under CPU contention (issue 3; see `on_rebalance_complete`), and it has no transactions.
        self.snapshot_topic_name = snapshot_topic_name(settings)
        self.snapshot_topic = app.topic(
            self.snapshot_topic_name, partitions=num_partitions, key_type=bytes, value_type=bytes, **raw,
            compacting=True, deleting=False, acks=False, internal=True,
            config={k: v for k, v in SNAPSHOT_TOPIC_CONFIG.items() if k != "cleanup.policy"},
        )
        self._snapshot_topic_declared = False
        self.writer = CheckpointWriter(settings, self.snapshot_topic_name)
        self.restored: dict[int, PartitionEngine | None] = {}  # read for partitions about to be opened
        self.scrape = ForkedRenderer(self.render_metrics)  # /metrics off the event loop (streams/scrape.py)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(CheckpointCollector(self))
        self.registry.register(EngineCollector(lambda: list(self.engines.values()), clock=self.now_for,
                                               consumer_lag=self.consumer_lag))

    # --- clock ------------------------------------------------------------------------------------------

    def now_for(self, pe: PartitionEngine) -> int:
        if self.settings.clock == "event":
            return max(pe.engine.now_us, pe.clock_us, 0)
        return time.time_ns() // 1000

    def tick(self) -> None:
        for pe in list(self.engines.values()):
            pe.advance(self.now_for(pe))
            self.publish(pe)
            pe.prune_outbox()

    # --- input ------------------------------------------------------------------------------------------

    def handle(self, partition: int, offset: int, key: bytes | None, value: bytes | None) -> int | None:
        """Apply one message. Returns an offset to seek the partition back to when messages before this one
        were never delivered (the caller seeks; the message is applied when it comes again)."""
        pe = self.engines.get(partition)
        if pe is None:
            if partition not in self.assigned:
                # a message fetched before the partition was revoked: its new owner applies it. Opening the
                # partition here would write snapshots over the new owner's.
                self.stale_messages += 1
                return None
            pe = self.open_partition(partition)
        expected = pe.offset + 1
        if offset > expected:
            # faust dropped messages (e.g. "old generation" ones around a rebalance) and moved on: go back
            # for them rather than apply this one out of order. Messages already fetched behind this one are
            # dropped until the rewind delivers `expected`; after REWIND_GRACE the gap is accepted (retention
            # deleted the data) and counted.
            now = time.monotonic()
            if pe.rewind_to != expected:
                pe.rewind_to, pe.rewind_since, pe.rewind_seek = expected, now, now
                pe.rewinds += 1
                log.warning("partition %d: got offset %d, expected %d: seeking back", partition, offset,
                            expected)
                return expected
            if now - pe.rewind_since < REWIND_GRACE:
                if now - pe.rewind_seek >= 1.0:  # messages fetched before the seek moved faust's read offset
                    pe.rewind_seek = now  # past `expected` again: seek once more now that they are drained
                    return expected
                return None
            log.error("partition %d: offsets %d..%d still missing %.0fs after seeking back; going on",
                      partition, expected, offset - 1, REWIND_GRACE)
        pe.rewind_to = None
        now = time.time_ns() // 1000 if self.max_future_us is not None else None
        pe.process(value if value is not None else b"", offset, key, now_us=now, max_future_us=self.max_future_us)
        self.publish(pe)
        return None

    async def apply_batch(self, messages: list, consumer) -> None:
        """Apply fetched events in order and ack them; a rewind (see `handle`) seeks and drops the rest of
        that partition's messages in this batch, which `handle` would refuse anyway."""
        handle, ack = self.handle, consumer.ack
        for message in messages:
            if consumer.suspend_flow.is_set():
                return  # a rebalance began: the partitions are re-sought when it completes
            rewind = handle(message.partition, message.offset, message.key, message.value)
            ack(message)
            if rewind is not None:
                await consumer.seek_wait({message.tp: rewind})  # runs in the consumer's thread

    def publish(self, pe: PartitionEngine) -> None:
        """Queue a holder's new outputs; `flush_outputs` hands them to the producer in batches (one
        `send_soon` per record costs about as much as applying the event that caused it)."""
        unsent = pe.take_unsent()
        if unsent:
            self.pending_outputs.extend(unsent)
            if len(self.pending_outputs) >= 5000 and self._flush_task is None:
                self._flush_task = asyncio.ensure_future(self.flush_outputs())

    async def flush_outputs(self) -> None:
        """Send the queued outputs as record batches per (topic, partition) with aiokafka's batch API; each
        output's future resolves when its batch is acknowledged. Partitions: murmur2 of the key, as the
        default partitioner would pick.

        One pass over what is queued at the call: events applied meanwhile queue more, and under a backlog a
        loop "until empty" never ended, holding back the checkpoint that awaits it (seen: 728 s without a
        commit). The 50 ms timer and the size trigger in `publish` send the rest."""
        try:
            outputs, self.pending_outputs = self.pending_outputs, []
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
            self._flush_task = None

    # --- partitions -------------------------------------------------------------------------------------

    def open_partition(self, partition: int) -> PartitionEngine:
        """The holder of a partition: restored from its checkpoint, or fresh when it has none. Its checkpoint
        must have been read (`load_checkpoints`): never start empty by mistake."""
        if partition not in self.restored:
            raise RuntimeError(f"partition {partition}: opened before its checkpoint was read")
        pe = self.restored.pop(partition)
        if pe is None:
            pe = PartitionEngine(partition, self.contracts, source_topic=self.events_topic_name,
                                 num_partitions=self.num_partitions)
            log.info("partition %d: no checkpoint, starting empty", partition)
        else:
            log.info("partition %d: restored snapshot at offset %d (%d tickets, %d outputs to re-publish)",
                     partition, pe.restored_offset, len(pe.engine.tickets), len(pe.outbox))
        self.engines[partition] = pe
        return pe

    async def on_partitions_assigned(self, assigned: set[TP]) -> None:
        mine = {tp.partition for tp in assigned if tp.topic == self.events_topic_name}
        for partition in sorted(set(self.engines) - mine):
            log.info("partition %d: revoked, dropping its engine", partition)
            del self.engines[partition]
        for partition in sorted(set(self.writer.producers) - mine):
            await self.writer.close(partition)  # its next owner fences it anyway
        self.assigned = mine

    async def on_rebalance_complete(self) -> None:
        """Streams are still paused: read the snapshots of the newly assigned partitions, bring every
        assigned partition's engine up (so its clients' series exist and its clock runs even before its next
        event), then point the consumer at the first offset each engine still needs.

        Snapshots are read here with a consumer of our own rather than recovered by faust as a table: faust's
        table recovery sometimes never finished after a rebalance on a busy machine ("No event received for
        active tp ... since recovery start", a handful of changelog records never read; issue 3, and
        faust-streaming/faust#155, #176), so the worker has no faust tables and faust's recovery is a no-op.

        The seek closes a hole in faust: messages fetched before a rebalance are dropped by the stream as
        "old generation" (and acked), and faust then seeks only partitions that have a committed offset, so a
        partition without one (a new group, or a partition whose state is newer than its commit) would resume
        after the dropped messages and never see them. faust's own seek to the committed offset follows
        ours; it can only move the position back (the commit never passes a stored snapshot), and the holder
        skips what it already reflects."""
        await self.load_checkpoints(sorted(self.assigned - set(self.engines)))
        for partition in sorted(self.assigned - set(self.engines)):
            if partition in self.restored:  # else assigned while reading: the next completion opens it
                self.open_partition(partition)
        consumer = self.app.consumer
        tps = [TP(self.events_topic_name, p) for p in sorted(self.assigned) if p in self.engines]
        fresh = [tp for tp in tps if self.engines[tp.partition].offset < 0]
        try:
            earliest = await consumer.earliest_offsets(*fresh) if fresh else {}
            for tp in tps:
                pe = self.engines[tp.partition]
                if pe.offset < 0 and earliest.get(tp):
                    pe.offset = pe.snapshot_offset = pe.durable_offset = earliest[tp] - 1  # older ones are gone
            # seek_wait runs in the consumer's thread (faust's plain seek() calls into aiokafka from the
            # event loop's thread and races the fetcher)
            await consumer.seek_wait({tp: self.engines[tp.partition].offset + 1 for tp in tps})
        except Exception as exc:  # a rebalance started again: the next completion seeks
            log.warning("could not seek the assigned partitions: %r", exc)

    async def load_checkpoints(self, partitions: list[int]) -> None:
        """Restore these partitions' holders into `restored`: fence their previous owners (which aborts a
        checkpoint one of them left half-written), read their checkpoints and rebuild the engines, in a thread
        so the event loop (metrics, the clock) and the consumer's heartbeats go on. Retried until it succeeds
        (a broker restarting), since an engine must never start without its state; a checkpoint this version
        cannot read stops the worker with what to do."""
        self.restored.clear()  # only what is read now: another owner may have written since
        if not self._snapshot_topic_declared:
            await self.snapshot_topic.maybe_declare()
            self._snapshot_topic_declared = True
        attempt = 0
        while partitions:
            try:
                for partition in partitions:
                    await self.writer.open(partition)
                self.restored.update(await asyncio.to_thread(self._restore, partitions))
                return
            except StateRecordError as exc:
                log.critical("%s", exc)
                await self.app.crash(exc)
                return
            except Exception as exc:
                attempt += 1
                log.warning("could not restore partitions %s (attempt %d), retrying: %r", partitions, attempt, exc)
                await asyncio.sleep(min(5.0, 0.5 * attempt))
                partitions = [p for p in partitions if p in self.assigned]  # a new rebalance may take some

    def _restore(self, partitions: list[int]) -> dict[int, PartitionEngine | None]:
        def progress(n: int) -> None:
            self.restore_records += n

        stores = read_checkpoints(self.settings, self.snapshot_topic_name, partitions, on_progress=progress)
        out = {}
        for partition, store in stores.items():
            started = time.perf_counter()
            out[partition] = pe = restore_partition(partition, self.contracts, store,
                                                    source_topic=self.events_topic_name,
                                                    num_partitions=self.num_partitions)
            if pe is not None:
                pe.checkpoint_bytes = sum(len(k) + len(v) for k, v in store.items())
                log.info("partition %d: rebuilt from %d records (%d bytes) in %.1fs", partition, len(store),
                         pe.checkpoint_bytes, time.perf_counter() - started)
        return out

    # --- checkpoints ------------------------------------------------------------------------------------

    def commit_limit(self, tp: TP) -> int | None:
        """The highest offset + 1 faust may commit for `tp` (None: not ours to limit)."""
        if tp.topic != self.events_topic_name:
            return None
        pe = self.engines.get(tp.partition)
        return 0 if pe is None else pe.durable_offset + 1

    async def checkpoint(self) -> bool:
        """Called before every offset commit: flush the outputs (so the checkpoint carries only what the broker
        has not confirmed), then write each changed holder's records in one transaction per partition. True
        when every write landed; the commit that follows is capped at the offsets the stored checkpoints reflect
        (`commit_limit`). A failed write is sent again (with what changed since) at the next checkpoint."""
        async with self._checkpoint_lock:
            started = time.perf_counter()
            try:
                for pe in self.engines.values():
                    self.publish(pe)
                if self._flush_task is not None:
                    await self._flush_task
                await self.flush_outputs()
                await self.app.producer.flush()
            except Exception as exc:  # producer stopping, broker gone: commit nothing, retry next time
                self.checkpoint_failures += 1
                log.warning("checkpoint failed, not committing: %r", exc)
                return False
            ok, written = True, []
            for pe in list(self.engines.values()):
                if not pe.dirty and not pe.checkpoint_state.failed:
                    continue
                encode_started = time.perf_counter()
                records = pe.checkpoint_state.failed + changed_records(pe)  # synchronous: one consistent state
                offset = pe.offset
                encode_seconds = time.perf_counter() - encode_started
                try:
                    await self.writer.write(pe.partition, records)
                except Exception as exc:
                    ok = False
                    pe.checkpoint_state.failed = records
                    pe.snapshot_offset = pe.durable_offset
                    log.warning("partition %d: checkpoint write failed (%r); sent again at the next one",
                                pe.partition, exc)
                    continue
                if self.engines.get(pe.partition) is not pe:
                    continue  # revoked meanwhile
                pe.checkpoint_state.failed = []
                pe.durable_offset = max(pe.durable_offset, offset)
                pe.checkpoint_wall = time.time()
                pe.checkpoint_bytes = sum(len(k) + len(v or b"") for k, v in records)
                written.append(f"p{pe.partition}: {len(records)} records, {pe.checkpoint_bytes} B @ {offset} "
                               f"(encoded in {encode_seconds * 1000:.0f} ms)")
            for pe in self.engines.values():
                failed = pe.prune_outbox()
                if failed:
                    log.warning("partition %d: %d outputs failed, sending them again", pe.partition, failed)
                self.publish(pe)
            if not ok:
                self.checkpoint_failures += 1
                log.warning("checkpoint: some writes failed; commit held back to the last stored checkpoints")
            if written:
                self.checkpoints += 1
                log.log(logging.INFO if self.final_commit else logging.DEBUG, "stored checkpoints %s in %.3fs%s",
                        "; ".join(written), time.perf_counter() - started, " (final)" if self.final_commit else "")
            return ok

    # --- metrics ----------------------------------------------------------------------------------------

    def consumer_lag(self, partition: int) -> int | None:
        pe = self.engines.get(partition)
        try:
            highwater = self.app.consumer.highwater(TP(self.events_topic_name, partition))
        except Exception:
            return None
        if highwater is None or pe is None:
            return None
        return max(0, highwater - (pe.offset + 1))

    def render_metrics(self) -> bytes:
        return generate_latest(self.registry)

    async def metrics_body(self) -> bytes:
        """/metrics, rendered in a forked child. What a scrape would change is done here first, in the
        worker: deadlines due now are decided (and published), counters' high-water marks raised."""
        self.tick()
        for pe in self.engines.values():
            settle_counters(pe)
        return await self.scrape()


# --- assembly ------------------------------------------------------------------------------------------------


def create_app(settings: Settings, contracts: Contracts, num_partitions: int) -> SlamonApp:
    """The faust app with its agent, timer, web routes and rebalance hooks (no broker contact yet)."""
    k = settings.kafka
    (settings.data_dir / settings.app_id).mkdir(parents=True, exist_ok=True)
    app = SlamonApp(
        settings.app_id,
        broker=[f"kafka://{server}" for server in k.servers],
        broker_credentials=k.faust_credentials(),
        broker_client_id=k.client_id,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=max(0.5, settings.session_timeout / 10),
        broker_request_timeout=max(90.0, settings.session_timeout * 1.5),
        store="memory://",
        datadir=str(settings.data_dir / settings.app_id),
        topic_partitions=num_partitions,
        topic_replication_factor=settings.topics.replication,
        broker_commit_interval=settings.checkpoint_interval,
        broker_commit_every=1_000_000_000,  # commits (= checkpoints) by time only
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=True,
        stream_buffer_maxsize=settings.stream_buffer_maxsize,
        processing_guarantee="at_least_once",
        key_serializer="raw",
        value_serializer="raw",
        **web_server_settings(settings),  # bind address, TLS; faust's unauthenticated table views off
        autodiscover=False,
        producer_max_request_size=1_048_576,
        producer_linger=0.005,  # batch outputs and snapshot chunks into fewer produce requests
        producer_max_batch_size=512 * 1024,
        **({"broker_max_poll_records": settings.max_poll_records} if settings.max_poll_records else {}),
    )
    runtime = Runtime(app, settings, contracts, num_partitions)
    app.slamon = runtime

    # The agent subscribes the consumer to the events topic; the events themselves are applied in batches by
    # SlamonConsumer._drain_messages and never reach this stream (kept correct should one ever arrive).
    @app.agent(runtime.events_topic, concurrency=1, name="slamon.ingest")
    async def ingest(stream):
        handle = runtime.handle
        async for event in stream.events():
            message = event.message
            rewind = handle(message.partition, message.offset, message.key, message.value)
            if rewind is not None:
                await app.consumer.seek_wait({message.tp: rewind})  # runs in the consumer's thread

    @app.timer(settings.tick_interval, name="slamon.clock")
    async def clock():
        runtime.tick()

    @app.timer(0.05, name="slamon.outputs")
    async def outputs():
        if runtime.pending_outputs and runtime._flush_task is None:
            await runtime.flush_outputs()

    metrics_auth = BasicAuthGuard.from_settings(settings)

    @app.page("/metrics", name="slamon.metrics")
    class Metrics(faust.web.View):
        async def get(self, request):
            if not metrics_auth.allows(request.headers.get("Authorization")):
                return self.text("unauthorized\n", status=401, headers=metrics_auth.challenge_headers)
            try:
                body = await runtime.metrics_body()
            except ScrapeError as exc:
                log.error("%s", exc)
                return self.text(f"{exc}\n", status=500)
            return self.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz", name="slamon.health")
    class Health(faust.web.View):  # open on purpose: liveness probes send no credentials (metrics_server.py)
        async def get(self, request):
            return self.json({
                "partitions": sorted(runtime.assigned), "engines": sorted(runtime.engines),
                "offsets": {p: pe.offset for p, pe in runtime.engines.items()},
                "checkpoints": runtime.checkpoints, "checkpoint_failures": runtime.checkpoint_failures,
                "clock": settings.clock,
            })

    @app.on_partitions_assigned.connect
    async def _assigned(sender, assigned, **kwargs):
        await runtime.on_partitions_assigned(assigned)

    @app.on_rebalance_complete.connect
    async def _complete(sender, **kwargs):
        await runtime.on_rebalance_complete()

    @app.on_before_shutdown.connect  # after the consumer stopped (its final commit ran the last checkpoint)
    async def _close_checkpoint_producers(sender, **kwargs):
        await runtime.writer.close_all()

    return app



def run_worker(settings: Settings) -> int:
    """Create the topics, build the app and run it until SIGTERM/SIGINT."""
    from streams.topics import ensure_topics

    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact_secrets_in_logs(settings)
    contracts = load_contracts(settings.contracts)
    log.info("settings: %s", orjson.dumps(settings.describe()).decode())
    counts = ensure_topics(settings)
    partitions = counts[settings.topics.events]
    if partitions != settings.topics.partitions:
        log.warning("topic %s has %d partitions (settings say %d); using %d", settings.topics.events,
                    partitions, settings.topics.partitions, partitions)
    app = create_app(settings, contracts, partitions)
    tune_gc()  # the engines hold many long-lived objects, as in a replay
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.app", description="run a slamon worker")
    parser.add_argument("--config", help="YAML settings file (env SLAMON_* overrides it)")
    args = parser.parse_args(argv)
    return run_worker(load_settings(args.config))


if __name__ == "__main__":
    raise SystemExit(main())
