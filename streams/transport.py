"""faust's Kafka transport with slamon's extension points: the app, the transport, the consumer and its thread.

- `SlamonConsumer.force_commit` runs a checkpoint before every offset commit faust makes, and `_new_offset`
  caps each partition's commit at the offset the newest stored checkpoint reflects (`streams.checkpointing`).
- `SlamonConsumer._drain_messages` applies the events topic's messages in batches straight from the fetch
  (`Runtime.apply_batch`) instead of faust's per-message conductor, channel and stream, and applies nothing while a
  checkpoint runs.
- `SlamonConsumerThread` sets aiokafka's `fetch_max_wait_ms` from the settings (faust fixes it at 1500 ms).

Everything here reaches the worker through `app.slamon` (a `streams.app.Runtime`); without one (no runtime
attached) faust's own behaviour is unchanged. Why each override exists: streams/README.md "faust issues
designed around".
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

if TYPE_CHECKING:
    from streams.app import Runtime

INGEST_BATCH = 500  # events applied per synchronous step (then the loop yields): bounds how long /metrics,
# the clock and the commit timer wait


class SlamonConsumer(aiokafka_driver.Consumer):
    """faust's aiokafka consumer, with every commit preceded by a checkpoint and capped by it."""

    def _new_consumer_thread(self) -> aiokafka_driver.AIOKafkaConsumerThread:
        return SlamonConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def wait_empty(self) -> None:
        """faust commits here before partitions are revoked and when stopping: checkpoint synchronously."""
        runtime: Runtime | None = getattr(self.app, "slamon", None)
        if runtime is not None:
            runtime.checkpointer.final_commit = True
        try:
            await super().wait_empty()
        finally:
            if runtime is not None:
                runtime.checkpointer.final_commit = False

    async def force_commit(self, topics=None, start_new_transaction: bool = True) -> bool:
        runtime: Runtime | None = getattr(self.app, "slamon", None)
        if runtime is not None and not await runtime.checkpointer.checkpoint():
            return False
        return await super().force_commit(topics, start_new_transaction=start_new_transaction)

    async def _drain_messages(self, fetcher) -> None:  # pragma: no cover - runs inside faust's Fetcher
        """faust's fetch loop, with the events topic applied in batches straight from the fetch.

        faust hands every message to its conductor, a channel queue and a stream, with two tasks created per
        message (`wait_first`); that machinery cost several times the engine's own work per event. Events
        bypass it, and faust's `getmany` too (it wraps every record in a `ConsumerMessage`, looks up the
        partition's highwater and checks the flow and generation per record): the runtime applies each
        partition's fetched records in offset order, in chunks of `INGEST_BATCH`, and they are acked per
        chunk (`ack_records`). Nothing else changes: other topics still go through the conductor, and safety
        never rested on faust's delivery (offsets are checked per partition, commits are capped by
        snapshots). Flow control: faust suspends the flow around rebalances; a chunk stops there, and the
        worker seeks every partition to the offset its engine needs once the rebalance completes
        (`Runtime.on_rebalance_complete`)."""
        runtime: Runtime | None = getattr(self.app, "slamon", None)
        if runtime is None:
            await super()._drain_messages(fetcher)
            return
        app = self.app
        events_topic = runtime.events_topic_name
        should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        read_offset = self._read_offset
        idle = runtime.checkpointer.idle
        apply_records = runtime.apply_records
        try:
            while not (should_stop() or fetcher_should_stop()):
                await asyncio.sleep(0)  # the fetch can return at once in a loop: let the event loop run
                if not idle.is_set():  # a checkpoint runs: apply nothing until it is stored (Checkpointer.idle)
                    await idle.wait()
                records, active = await self._wait_next_records(1.0)
                if records is None or self.should_stop:
                    continue
                if not self.flow_active:  # as faust's getmany: seek back to the committed offsets
                    try:
                        await self.perform_seek()
                    except Exception as exc:
                        self.log.warning(f"exception performing seek when flow not active {exc}")
                    continue
                generation_id = app.consumer_generation_id
                for tp, fetched in records.items():
                    if not self.flow_active or app.consumer_generation_id != generation_id:
                        break  # a rebalance began: what was fetched is read again after it
                    if not fetched or (active is not None and tp not in active
                                       and tp not in self._buffered_partitions):
                        continue
                    app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    last = read_offset[tp]
                    if last is not None and fetched[0].offset < last:
                        # faust's own filter: older than what this partition already yielded
                        fetched = [record for record in fetched if record.offset >= last]
                    if tp.topic != events_topic:
                        for record in fetched:
                            read_offset[tp] = record.offset
                            await self.wait_first(self.callback(self._to_message(tp, record)),
                                                  self.suspend_flow.wait())
                        continue
                    for start in range(0, len(fetched), INGEST_BATCH):
                        chunk = fetched[start:start + INGEST_BATCH]
                        read_offset[tp] = chunk[-1].offset
                        if not await apply_records(tp, chunk, self):
                            break  # a rebalance began: the partitions are re-sought when it completes
                        # applying never awaits: yield here, or a fetch of thousands of events keeps the
                        # clock, /metrics and the commit timer waiting for all of them (seen: 1-2 s)
                        await asyncio.sleep(0)
                        if not idle.is_set():
                            await idle.wait()
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    def ack_records(self, tp: TP, records) -> None:
        """faust's `ack` for fetched records of one partition, at once: what `ack(message)` records per
        message (the acked offsets the commit is computed from), without a `ConsumerMessage` each."""
        if not records or not self.app.topics.acks_enabled_for(tp.topic):
            return
        offsets = [record.offset for record in records]
        with ack_lock:
            committed = self._committed_offset[tp]
            acked_index = self._acked_index[tp]
            if committed is not None and min(offsets) < committed:
                offsets = [offset for offset in offsets if offset >= committed]
            new = [offset for offset in offsets if offset not in acked_index]
            acked_index.update(new)
            self._acked[tp].extend(new)
            self._n_acked += len(new)
            notify(self._waiting_for_ack)

    def _filter_tps_with_pending_acks(self, topics=None):
        """faust commits only partitions with acked messages; the owned events partitions are always offered
        too, so that `_filter_committable_offsets` can commit what a restored checkpoint reflects."""
        tps = list(super()._filter_tps_with_pending_acks(topics))
        runtime: Runtime | None = getattr(self.app, "slamon", None)
        if runtime is not None:
            for partition in sorted(runtime.engines):
                tp = TP(runtime.events_topic_name, partition)
                if tp not in tps and (topics is None or tp in topics or tp.topic in topics):
                    tps.append(tp)
        return iter(tps)

    def _filter_committable_offsets(self, tps) -> dict[TP, int]:
        """faust's acked offsets, plus, for an owned partition with nothing new acked, the offset its newest
        stored checkpoint reflects when the group's committed offset is behind it: a partition restored from a
        checkpoint with no input after it (or whose commit was lost in a rebalance) would otherwise keep an old
        committed offset, and Kafka's lag view (kafka-consumer-groups.sh) would show it behind for good."""
        tps = list(tps)
        offsets = super()._filter_committable_offsets(tps)
        runtime: Runtime | None = getattr(self.app, "slamon", None)
        if runtime is not None:
            for tp in tps:
                limit = runtime.checkpointer.commit_limit(tp)
                if limit and tp not in offsets and self._should_commit(tp, limit):
                    offsets[tp] = limit
        return offsets

    def _new_offset(self, tp: TP) -> int | None:
        runtime: Runtime | None = getattr(self.app, "slamon", None)
        limit = runtime.checkpointer.commit_limit(tp) if runtime is not None else None
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
