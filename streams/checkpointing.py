"""The worker's checkpoint cycle: restore partitions when they are assigned, checkpoint before every commit, cap
each commit at what a stored checkpoint reflects.

    checkpointer = Checkpointer(runtime)
    await checkpointer.load([0, 2])      # fence the previous owners, read and rebuild -> checkpointer.restored
    await checkpointer.checkpoint()      # before every offset commit (SlamonConsumer.force_commit)
    checkpointer.commit_limit(tp)        # the highest offset + 1 faust may commit (SlamonConsumer._new_offset)

The snapshots topic's I/O (transactional writer, read_committed reader) is `streams.checkpoint`; the record
format is `streams.state_records`. Why checkpoints and commits are one step: streams/README.md "State,
checkpoints and the delivery guarantee".
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from faust.types import TP

from streams.checkpoint import SNAPSHOT_TOPIC_CONFIG, CheckpointWriter, read_checkpoints, snapshot_topic_name
from streams.metrics import settle_counters
from streams.outputs import read_published
from streams.partition_engine import PartitionEngine
from streams.state_records import StateRecordError, changed_records, restore_partition

if TYPE_CHECKING:
    from streams.app import Runtime

log = logging.getLogger("slamon.worker")


class Checkpointer:
    """Checkpoints of one worker's partition holders: counters, the writer, what was restored."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.checkpoints = 0
        self.checkpoint_failures = 0
        self.restore_records = 0
        self.final_commit = False  # set while faust commits before a rebalance or at shutdown
        self._lock = asyncio.Lock()
        # clear while a checkpoint runs: ingestion waits (SlamonConsumer._drain_messages), so a checkpoint
        # reflects the offsets at its start, its outbox holds only what was in flight, and under a backlog it
        # takes what its own work takes instead of racing the events applied meanwhile (it used to take seconds
        # and fall behind its interval during a catch-up: a crash then re-applied, and re-published, far more)
        self.idle = asyncio.Event()
        self.idle.set()
        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        # Checkpoints go to a compacted topic of our own, written in transactions and read back when partitions
        # are assigned (streams.checkpoint). Not a faust Table: faust's table recovery stalled now and then after
        # a rebalance under CPU contention (issue 3; see `Runtime.on_rebalance_complete`), and it has no
        # transactions.
        self.topic_name = snapshot_topic_name(settings)
        self.topic = runtime.app.topic(
            self.topic_name, partitions=runtime.num_partitions, key_type=bytes, value_type=bytes, **raw,
            compacting=True, deleting=False, acks=False, internal=True,
            config={k: v for k, v in SNAPSHOT_TOPIC_CONFIG.items() if k != "cleanup.policy"},
        )
        self._topic_declared = False
        self.writer = CheckpointWriter(settings, self.topic_name)
        self.restored: dict[int, PartitionEngine | None] = {}  # read for partitions about to be opened

    # --- restore ----------------------------------------------------------------------------------------

    async def load(self, partitions: list[int]) -> None:
        """Restore these partitions' holders into `restored`: fence their previous owners (which aborts a
        checkpoint one of them left half-written), read their checkpoints and rebuild the engines, in a thread
        so the event loop (metrics, the clock) and the consumer's heartbeats go on. Retried until it succeeds
        (a broker restarting), since an engine must never start without its state; a checkpoint this version
        cannot read stops the worker with what to do."""
        runtime = self.runtime
        self.restored.clear()  # only what is read now: another owner may have written since
        if not self._topic_declared:
            await self.topic.maybe_declare()
            self._topic_declared = True
        attempt = 0
        while partitions:
            try:
                for partition in partitions:
                    if partition in runtime.assigned:  # a new assignment may have taken it meanwhile
                        await self.writer.open(partition)
                partitions = [p for p in partitions if p in runtime.assigned]
                self.restored.update(await asyncio.to_thread(self._restore, partitions))
                return
            except StateRecordError as exc:
                log.critical("%s", exc)
                await runtime.app.crash(exc)
                return
            except Exception as exc:
                attempt += 1
                log.warning("could not restore partitions %s (attempt %d), retrying: %r", partitions, attempt, exc)
                await asyncio.sleep(min(5.0, 0.5 * attempt))
                partitions = [p for p in partitions if p in runtime.assigned]  # a new rebalance may take some

    def _restore(self, partitions: list[int]) -> dict[int, PartitionEngine | None]:
        runtime = self.runtime

        def progress(n: int) -> None:
            self.restore_records += n

        stores = read_checkpoints(runtime.settings, self.topic_name, partitions, on_progress=progress)
        out = {}
        for partition, store in stores.items():
            started = time.perf_counter()
            out[partition] = pe = restore_partition(partition, runtime.contracts, store,
                                                    source_topic=runtime.events_topic_name,
                                                    num_partitions=runtime.num_partitions,
                                                    compiled=runtime.compiled)
            if pe is not None:
                pe.checkpoint_bytes = sum(len(k) + len(v) for k, v in store.items())
                log.info("partition %d: rebuilt from %d records (%d bytes) in %.1fs", partition, len(store),
                         pe.checkpoint_bytes, time.perf_counter() - started)
                # here, in this thread: the first scrape would otherwise build the open-clock index on the event
                # loop (1M created tickets, 442k open: 7 s without a heartbeat)
                started = time.perf_counter()
                settle_counters(pe)
                log.info("partition %d: counters and the index of %d open tickets settled in %.1fs", partition,
                         pe.held()[1], time.perf_counter() - started)
                try:  # what the previous owner published after this checkpoint: not sent twice (streams/outputs.py)
                    found = read_published(runtime.settings, pe)
                except Exception as exc:  # only costs duplicates: go on without
                    log.warning("partition %d: could not read the outputs published after the checkpoint (%r); "
                                "they may be sent twice", partition, exc)
                else:
                    if found:
                        log.info("partition %d: %d outputs were published after the checkpoint; those produced "
                                 "again are not sent twice", partition, found)
        return out

    # --- checkpoints ------------------------------------------------------------------------------------

    def commit_limit(self, tp: TP) -> int | None:
        """The highest offset + 1 faust may commit for `tp` (None: not ours to limit)."""
        if tp.topic != self.runtime.events_topic_name:
            return None
        pe = self.runtime.engines.get(tp.partition)
        return 0 if pe is None else pe.durable_offset + 1

    async def checkpoint(self) -> bool:
        """Called before every offset commit: flush the outputs (so the checkpoint carries only what the broker
        has not confirmed), then write each changed holder's records in one transaction per partition. True
        when every write landed; the commit that follows is capped at the offsets the stored checkpoints reflect
        (`commit_limit`). A failed write is sent again (with what changed since) at the next checkpoint."""
        engines, outputs = self.runtime.engines, self.runtime.outputs
        async with self._lock:
            self.idle.clear()
            try:
                return await self._checkpoint(engines, outputs)
            finally:
                self.idle.set()

    async def _checkpoint(self, engines, outputs) -> bool:
        started = time.perf_counter()
        try:
            for pe in engines.values():
                outputs.publish(pe)
            await outputs.drain()
        except Exception as exc:  # producer stopping, broker gone: commit nothing, retry next time
            self.checkpoint_failures += 1
            log.warning("checkpoint failed, not committing: %r", exc)
            return False
        ok, written, jobs = True, [], []
        for pe in list(engines.values()):
            if not pe.dirty and not pe.checkpoint_state.failed:
                continue
            encode_started = time.perf_counter()
            records = pe.checkpoint_state.failed + changed_records(pe)  # synchronous: one consistent state
            jobs.append((pe, records, pe.offset, time.perf_counter() - encode_started))
        # each partition's records go in its own transaction, on its own producer: written side by side
        results = await asyncio.gather(*(self.writer.write(pe.partition, records) for pe, records, _, _ in jobs),
                                       return_exceptions=True)
        for (pe, records, offset, encode_seconds), exc in zip(jobs, results, strict=True):
            if isinstance(exc, BaseException) and not isinstance(exc, Exception):
                raise exc  # cancelled (shutdown): as before, not a failed write
            if exc is not None:
                ok = False
                pe.checkpoint_state.failed = records
                pe.snapshot_offset = pe.durable_offset
                log.warning("partition %d: checkpoint write failed (%r); sent again at the next one",
                            pe.partition, exc)
                continue
            if engines.get(pe.partition) is not pe:
                continue  # revoked meanwhile
            pe.checkpoint_state.failed = []
            pe.durable_offset = max(pe.durable_offset, offset)
            pe.checkpoint_wall = time.time()
            pe.checkpoint_bytes = sum(len(k) + len(v or b"") for k, v in records)
            written.append(f"p{pe.partition}: {len(records)} records, {pe.checkpoint_bytes} B @ {offset} "
                           f"(encoded in {encode_seconds * 1000:.0f} ms)")
        for pe in engines.values():
            failed = pe.prune_outbox()
            if failed:
                log.warning("partition %d: %d outputs failed, sending them again", pe.partition, failed)
            outputs.publish(pe)
        if not ok:
            self.checkpoint_failures += 1
            log.warning("checkpoint: some writes failed; commit held back to the last stored checkpoints")
        if written:
            self.checkpoints += 1
            log.log(logging.INFO if self.final_commit else logging.DEBUG, "stored checkpoints %s in %.3fs%s",
                    "; ".join(written), time.perf_counter() - started, " (final)" if self.final_commit else "")
        return ok


class CheckpointCollector:
    """`slamon_checkpoint_failures_total`: checkpoints that could not be stored (a write or its transaction
    failed, the broker was gone). Each one holds commits back to the last stored checkpoint, so a rising counter
    with a growing `slamon_checkpoint_age_seconds` means a restart would re-read more and more input.
    `slamon_restore_records_total`: checkpoint records read back by this worker (restore progress).
    `slamon_outputs_already_published_total`: outputs produced again after a restore and not sent, because the
    previous owner had published them (streams/outputs.py)."""

    def __init__(self, checkpointer: Checkpointer) -> None:
        self.checkpointer = checkpointer

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        c = self.checkpointer
        yield CounterMetricFamily("slamon_checkpoint_failures", "Checkpoints that could not be stored",
                                  value=c.checkpoint_failures)
        yield CounterMetricFamily("slamon_restore_records", "Checkpoint records read back to restore partitions",
                                  value=c.restore_records)
        yield CounterMetricFamily("slamon_outputs_already_published", "Outputs produced again after a restore and "
                                  "not sent: the previous owner had published them", value=c.runtime.outputs.skipped)
