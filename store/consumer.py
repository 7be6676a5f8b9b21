"""`slamon store run`: a consumer of the SLA-events topic of its own, writing the SLA record.

Why a consumer of its own and not an option of the worker: the worker's hot path stays free of database
latency and outages (a slow or down database would otherwise stall event processing and the clock), the store
can be restarted, rebuilt from the topic or moved to another database without touching the workers, and one
store serves any number of workers. It reads the topic the workers already publish (at-least-once, in order per
partition), so it adds no load to them.

Delivery: each poll's records are applied in one database transaction together with the partitions' next
offsets (`store.db.Store.apply`); a record below the stored offset is skipped, so a redelivered record (the
store crashed after the database commit and before Kafka's) is never applied twice. Kafka's committed offsets
are written only after the database commit, and only for monitoring (consumer lag): at every assignment the
consumer seeks to the offsets the database holds. A record the worker published twice (after a worker crash)
is an upsert of the same row (store.records). A database outage (connection refused, locked, disk full) rolls
the batch back, pauses the partitions and retries with backoff; when the database answers again the consumer
seeks back to the stored offsets and goes on: it stalls and loses nothing, as long as the topic keeps the
records (its retention must exceed the longest outage; a record gone before it was read is logged as an error).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field

from store.db import Store, StoreUnavailable, open_store
from store.records import RecordError, parse

log = logging.getLogger("slamon.store")

DEFAULT_RETENTION_US = 400 * 86_400_000_000  # 13 months: a year-over-year trend of the review plus its month
PRUNE_EVERY_S = 600.0
PROGRESS_EVERY_S = 10.0


@dataclass
class StoreStats:
    polled: int = 0
    decided: int = 0
    withdrawn: int = 0
    redelivered: int = 0
    batches: int = 0
    outages: int = 0
    lost: int = 0  # records deleted from the topic before the store read them
    commit_failures: int = 0
    started: float = field(default_factory=time.monotonic)


class StoreConsumer:
    """Reads `settings.topics.sla_events` with its own consumer group and applies it to the store at `url`."""

    def __init__(self, settings, url: str, *, group: str | None = None, retention_us: int | None = DEFAULT_RETENTION_US,
                 max_records: int = 5000, poll_ms: int = 500, contracts=None) -> None:
        self.settings = settings
        self.topic = settings.topics.sla_events
        self.group = group or f"{settings.app_id}-store"
        self.store: Store = open_store(url)
        self.retention_us = retention_us
        self.max_records = max_records
        self.poll_ms = poll_ms
        self.fill = None
        if contracts is not None:
            from store.records import contract_filler

            self.fill = contract_filler(contracts)
        self.stop_event = threading.Event()
        self.stats = StoreStats()
        self.consumer = None
        self._reseek = True
        self._backoff = 0.5
        self._last_prune = 0.0
        self._last_progress = time.monotonic()

    # --- lifecycle --------------------------------------------------------------------------------------

    def stop(self, *_args) -> None:
        self.stop_event.set()

    def run(self, *, install_signals: bool = True) -> StoreStats:
        if install_signals:
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        self._connect_store()
        if self.stop_event.is_set():
            return self.stats
        self.consumer = self._consumer()
        log.info("store: reading %s (group %s) into %s, retention %s", self.topic, self.group, self.store.url,
                 "none" if not self.retention_us else f"{self.retention_us / 86_400_000_000:g} days")
        try:
            while not self.stop_event.is_set():
                self.step()
        finally:
            self.consumer.close(autocommit=False)
            self.store.close()
            log.info("store: stopped (%d decided, %d withdrawn, %d redelivered records applied or skipped)",
                     self.stats.decided, self.stats.withdrawn, self.stats.redelivered)
        return self.stats

    def _connect_store(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.store.connect()
                self.store.migrate()
                self._backoff = 0.5
                return
            except StoreUnavailable as err:
                self._outage(err)

    def _consumer(self):
        from kafka import ConsumerRebalanceListener, KafkaConsumer

        owner = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                pass

            def on_partitions_assigned(self, assigned):
                owner._reseek = True  # seek to the database's offsets before applying anything

        self.settings.kafka.check_connection()
        cfg = self.settings.kafka.kafka_python_config()
        cfg.update(group_id=self.group, enable_auto_commit=False, auto_offset_reset="earliest",
                   max_poll_records=self.max_records, session_timeout_ms=int(self.settings.session_timeout * 1000),
                   heartbeat_interval_ms=max(1000, int(self.settings.session_timeout * 1000) // 5),
                   max_poll_interval_ms=300_000)
        consumer = KafkaConsumer(**cfg)
        consumer.subscribe([self.topic], listener=Listener())
        return consumer

    # --- the loop ---------------------------------------------------------------------------------------

    def step(self) -> None:
        consumer = self.consumer
        if self._reseek and consumer.assignment():
            try:
                self._seek_to_stored()
            except StoreUnavailable as err:
                consumer.pause(*consumer.assignment())
                self._outage(err)
                consumer.poll(timeout_ms=0)  # keep the group membership while the database is away
                return
        polled = consumer.poll(timeout_ms=self.poll_ms, max_records=self.max_records)
        if self._reseek:  # assigned during this poll: what it fetched may be from Kafka's committed offsets
            return
        changes = []
        for tp, batch in polled.items():
            for msg in batch:
                changes.append(parse(msg.value, tp.partition, msg.offset, self.fill))
        if changes:
            self.stats.polled += len(changes)
            try:
                applied = self.store.apply(self.topic, changes)
            except StoreUnavailable as err:
                consumer.pause(*consumer.assignment())
                self._reseek = True  # the records polled are dropped; read again from the stored offsets
                self._outage(err)
                return
            self._backoff = 0.5
            self.stats.batches += 1
            self.stats.decided += applied.decided
            self.stats.withdrawn += applied.withdrawn
            self.stats.redelivered += applied.redelivered
            self._commit(applied.next_offsets)
        self._housekeeping()

    def _seek_to_stored(self) -> None:
        from kafka import TopicPartition

        consumer = self.consumer
        stored = self.store.offsets(self.topic)
        assigned = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        beginnings = consumer.beginning_offsets(assigned)
        for tp in assigned:
            first = beginnings.get(tp, 0)
            position = stored.get(tp.partition)
            if position is None:
                position = first
            elif position < first:
                self.stats.lost += first - position
                log.error("store: %s partition %d: offsets %d..%d were deleted from the topic before the store "
                          "read them (topic retention shorter than the store's outage): their decisions are "
                          "missing from the record", self.topic, tp.partition, position, first - 1)
                position = first
            consumer.seek(TopicPartition(tp.topic, tp.partition), position)
        consumer.resume(*assigned)
        self._reseek = False
        log.info("store: partitions %s at offsets %s", [tp.partition for tp in assigned],
                 {tp.partition: stored.get(tp.partition, beginnings.get(tp, 0)) for tp in assigned})

    def _commit(self, next_offsets: dict[int, int]) -> None:
        if not next_offsets:
            return
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        try:
            self.consumer.commit({TopicPartition(self.topic, p): OffsetAndMetadata(off, "", -1)
                                  for p, off in next_offsets.items()})
        except Exception as err:  # a rebalance or a broker hiccup: the database holds the truth
            self.stats.commit_failures += 1
            log.warning("store: committing offsets to Kafka failed (%s: %s); the database has them", type(err).__name__,
                        err)

    def _outage(self, err: StoreUnavailable) -> None:
        self.stats.outages += 1
        log.warning("%s; retrying in %.1f s", err, self._backoff)
        self.stop_event.wait(self._backoff)
        self._backoff = min(self._backoff * 2, 10.0)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if self.retention_us and now - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = now
            try:
                pruned = self.store.prune(self.retention_us)
                if pruned:
                    log.info("store: retention removed %d rows", pruned)
            except StoreUnavailable as err:
                log.warning("store: retention pass skipped: %s", err)
        if now - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = now
            s = self.stats
            log.info("store: %d records read, %d decided, %d withdrawn, %d redelivered skipped, %d outages",
                     s.polled, s.decided, s.withdrawn, s.redelivered, s.outages)


def run_store(settings, url: str, **options) -> StoreStats:
    return StoreConsumer(settings, url, **options).run()


__all__ = ["DEFAULT_RETENTION_US", "RecordError", "StoreConsumer", "StoreStats", "run_store"]
