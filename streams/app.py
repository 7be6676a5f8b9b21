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

Modules: this one holds the `Runtime` (partition holders, ingestion, rebalances, clock) and the app factory;
`streams.transport` faust's consumer/transport subclasses; `streams.checkpointing` the checkpoint cycle (restore,
checkpoint before commit, commit cap); `streams.outputs` the publishing of dead letters and SLA events (and not
publishing twice after a restore); `streams.health` /healthz and the ownership metrics; `streams.logs` logging.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import faust
import orjson
from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from monitor import compiled_replay
from monitor.compiled import PATHS
from monitor.contracts import Contracts, load_contracts
from monitor.errors import SlamonError
from monitor.gc_tuning import tune_gc
from streams.checkpointing import CheckpointCollector, Checkpointer
from streams.config import Settings, load_settings
from streams.health import OwnershipCollector, consumer_lag, health
from streams.logs import configure_logging
from streams.metrics import EngineCollector, settle_counters
from streams.metrics_server import BasicAuthGuard, check_bind, web_server_settings
from streams.outputs import OutputPublisher
from streams.partition_engine import PartitionEngine
from streams.scrape import ForkedRenderer, ScrapeError
from streams.transport import SlamonApp, SlamonConsumer, SlamonConsumerThread, SlamonTransport

__all__ = ["Runtime", "SlamonApp", "SlamonConsumer", "SlamonConsumerThread", "SlamonTransport", "create_app",
           "main", "run_worker"]

log = logging.getLogger("slamon.worker")

REWIND_GRACE = 10.0  # seconds a seek back may take to deliver the missing offset


# --- the runtime ---------------------------------------------------------------------------------------------


class Runtime:
    """Per-worker state: the partition holders, the output topics, the clock; checkpoints in `checkpointer`
    (streams.checkpointing), output publishing in `outputs` (streams.outputs)."""

    def __init__(self, app: SlamonApp, settings: Settings, contracts: Contracts, num_partitions: int) -> None:
        self.app = app
        self.settings = settings
        self.contracts = contracts
        self.num_partitions = num_partitions
        self.events_topic_name = settings.topics.events
        self.engines: dict[int, PartitionEngine] = {}
        # partitions on the compiled engine (native/engine live.rs) where it was built; SLAMON_ENGINE=python runs the
        # Python engine, the reference
        self.compiled = compiled_replay.IN_USE
        self.assigned: set[int] = set()
        self.stale_messages = 0
        self.max_future_us = (None if settings.clock == "event" or settings.max_future_seconds is None
                              else int(settings.max_future_seconds * 1_000_000))
        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        self.events_topic = app.topic(settings.topics.events, partitions=num_partitions, key_type=bytes,
                                      value_type=bytes, **raw)
        self.deadletter_topic = app.topic(settings.topics.deadletter, **raw)
        self.sla_topic = app.topic(settings.topics.sla_events, **raw)
        self.outputs = OutputPublisher(app, settings)
        self.checkpointer = Checkpointer(self)
        self.scrape = ForkedRenderer(self.render_metrics)  # /metrics off the event loop (streams/scrape.py)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(CheckpointCollector(self.checkpointer))
        self.registry.register(OwnershipCollector(self))
        self.registry.register(EngineCollector(lambda: list(self.engines.values()), clock=self.now_for,
                                               consumer_lag=self.consumer_lag))

    # --- clock ------------------------------------------------------------------------------------------

    def now_for(self, pe: PartitionEngine) -> int:
        if self.settings.clock == "event":
            return max(pe.now_us, pe.clock_us, 0)
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

    async def apply_records(self, tp: TP, records: list, consumer) -> bool:
        """Apply fetched records of one events partition in offset order and ack them (aiokafka's
        `ConsumerRecord`s, straight from the fetch; `SlamonConsumer._drain_messages`). The common case, the
        next offset of an open partition with no rewind pending, goes straight to the holder; anything else
        through `handle`, which may ask to seek back: the seek is made and the rest of the chunk goes on to
        `handle`, which refuses it until the rewind delivers the missing offset. The new outputs are queued once
        per chunk (nothing awaits in between, so the producer sees the same records). False when a rebalance
        began (faust suspended the flow): the rest is read again after it."""
        partition = tp.partition
        suspended = consumer.suspend_flow.is_set
        handle = self.handle
        max_future_us = self.max_future_us
        pe = self.engines.get(partition)
        done = acked = 0  # records[:done] applied (or refused by `handle`), records[:acked] acked
        try:
            while done < len(records):
                if suspended():
                    return False
                record = records[done]
                offset = record.offset
                if pe is not None and pe.native is not None and offset == pe.offset + 1 and pe.rewind_to is None:
                    # a compiled partition takes the run of consecutive records in one call
                    done = pe.process_records(records, done, now_us=None if max_future_us is None
                                              else time.time_ns() // 1000, max_future_us=max_future_us)
                    continue
                if pe is not None and offset == pe.offset + 1 and pe.rewind_to is None:
                    value = record.value
                    pe.process(value if value is not None else b"", offset, record.key,
                               now_us=None if max_future_us is None else time.time_ns() // 1000,
                               max_future_us=max_future_us)
                    done += 1
                    continue
                rewind = handle(partition, offset, record.key, record.value)
                done += 1
                pe = self.engines.get(partition)
                if rewind is not None:
                    consumer.ack_records(tp, records[acked:done])
                    acked = done
                    if pe is not None:
                        self.publish(pe)
                    await consumer.seek_wait({tp: rewind})  # runs in the consumer's thread
                    pe = self.engines.get(partition)
            return True
        finally:
            consumer.ack_records(tp, records[acked:done])
            if pe is not None:
                self.publish(pe)

    def publish(self, pe: PartitionEngine) -> None:
        self.outputs.publish(pe)

    # --- partitions -------------------------------------------------------------------------------------

    def open_partition(self, partition: int) -> PartitionEngine:
        """The holder of a partition: restored from its checkpoint, or fresh when it has none. Its checkpoint
        must have been read (`Checkpointer.load`): never start empty by mistake."""
        if partition not in self.checkpointer.restored:
            raise RuntimeError(f"partition {partition}: opened before its checkpoint was read")
        pe = self.checkpointer.restored.pop(partition)
        if pe is None:
            pe = PartitionEngine(partition, self.contracts, source_topic=self.events_topic_name,
                                 num_partitions=self.num_partitions, compiled=self.compiled)
            log.info("partition %d: no checkpoint, starting empty", partition)
        else:
            log.info("partition %d: restored snapshot at offset %d (%d tickets, %d outputs to re-publish)",
                     partition, pe.restored_offset, pe.held()[0], len(pe.outbox))
        self.engines[partition] = pe
        return pe

    async def on_partitions_assigned(self, assigned: set[TP]) -> None:
        mine = {tp.partition for tp in assigned if tp.topic == self.events_topic_name}
        for partition in sorted(set(self.engines) - mine):
            log.info("partition %d: revoked, dropping its engine", partition)
            del self.engines[partition]
        # before any await: faust may run on_rebalance_complete meanwhile, which must not see the old assignment
        # (it restored partitions given away, fencing their new owner's checkpoint producers)
        self.assigned = mine
        writer = self.checkpointer.writer
        for partition in sorted(set(writer.producers) - mine):
            await writer.close(partition)  # its next owner fences it anyway

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
        await self.checkpointer.load(sorted(self.assigned - set(self.engines)))
        for partition in sorted(self.assigned - set(self.engines)):
            if partition in self.checkpointer.restored:  # else assigned while reading: opened next time
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

    # --- metrics ----------------------------------------------------------------------------------------

    def consumer_lag(self, partition: int) -> int | None:
        return consumer_lag(self, partition)

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
        consumer_group_instance_id=settings.group_instance_id,
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
        topic_disable_leader=True,  # no <app_id>-__assignor-__leader topic: nothing here runs "on the leader only"
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
        if runtime.outputs.pending and runtime.outputs.flush_task is None:
            await runtime.outputs.flush()

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
        async def get(self, request):  # client names only to whoever may read /metrics (streams/health.py)
            return self.json(health(runtime, show_clients=metrics_auth.allows(request.headers.get("Authorization"))))

    @app.on_partitions_assigned.connect
    async def _assigned(sender, assigned, **kwargs):
        await runtime.on_partitions_assigned(assigned)

    @app.on_rebalance_complete.connect
    async def _complete(sender, **kwargs):
        await runtime.on_rebalance_complete()

    @app.on_before_shutdown.connect  # after the consumer stopped (its final commit ran the last checkpoint)
    async def _close_checkpoint_producers(sender, **kwargs):
        await runtime.checkpointer.writer.close_all()

    return app



def compiled_paths_warning() -> str | None:
    """What a worker says at start when its compiled hot paths are not in use (an install without Rust, or a
    reference forced by its variable): it works, but a restore and the first /metrics after it take longer."""
    off = [f"{p.module} ({p.variable}=python)" if p.forced_off else f"{p.module} (not built)"
           for p in PATHS.values() if not p.in_use]
    if not off:
        return None
    return (f"compiled paths not in use: {', '.join(sorted(off))}; their Python references run: the engine "
            "applies events about 3x slower (monitor._engine), a restore takes longer, and the first /metrics "
            "collection after it up to 8x (bench/RESULTS.md). Install with Rust 1.82 or later on the PATH (README), "
            "or unset the variable that forces the reference")


def run_worker(settings: Settings) -> int:
    """Create the topics, build the app and run it until SIGTERM/SIGINT."""
    from streams.topics import ensure_topics

    configure_logging(settings)  # format, level, secrets masked, first-start noise (streams/logs.py)
    check_bind(settings)  # a port taken by another worker on this host: say so now, not after Kafka
    contracts = load_contracts(settings.contracts)
    log.info("settings: %s", orjson.dumps(settings.describe()).decode())
    if (warning := compiled_paths_warning()) is not None:
        log.warning(warning)
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
    try:
        return run_worker(load_settings(args.config))
    except SlamonError as err:  # as `slamon worker` reports them: one line and what to do
        print(f"error: {err}" + (f"\n  hint: {err.hint}" if err.hint else ""), file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
