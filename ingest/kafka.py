"""The gateway's Kafka side: one idempotent aiokafka producer (acks=all), events keyed by client, dead letters
with the original body. `deliver` returns only once Kafka acknowledged every record, or raises
`KafkaUnavailable`; nothing is ever acknowledged to a sender before that.

A delivery that timed out here may still reach Kafka later (the producer keeps retrying its batch until its own
request timeout): the sender, told 503, retries, and the retried events carry the same `event_id`s, which the
engine counts once. So an outage can duplicate records on the topic, never lose one that was answered 2xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ingest.errors import KafkaUnavailable
from streams.config import KafkaSettings

log = logging.getLogger("slamon.ingest")


class Producer:
    def __init__(self, kafka: KafkaSettings, events_topic: str, deadletter_topic: str, *,
                 timeout: float = 5.0, linger_ms: int = 5) -> None:
        self.kafka = kafka
        self.events_topic = events_topic
        self.deadletter_topic = deadletter_topic
        self.timeout = timeout
        self.linger_ms = linger_ms
        self._producer = None
        self._starting: asyncio.Task | None = None
        self.ready = asyncio.Event()

    def _make(self):
        from aiokafka import AIOKafkaProducer

        cfg = self.kafka.aiokafka_config()
        return AIOKafkaProducer(**cfg, enable_idempotence=True, acks="all", linger_ms=self.linger_ms,
                                max_batch_size=256 * 1024, max_request_size=1_048_576)

    def start(self) -> None:
        """Connect in the background, retrying: until then every delivery gets 503."""
        if self._starting is None or self._starting.done():
            self._starting = asyncio.ensure_future(self._connect())

    async def _connect(self) -> None:
        delay = 0.5
        while True:
            producer = self._make()
            try:
                await producer.start()
            except Exception as err:  # broker down or starting: keep trying
                log.warning("Kafka not reachable yet (%s); retrying in %.0fs", type(err).__name__, delay)
                with contextlib.suppress(Exception):
                    await producer.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self._producer = producer
            self.ready.set()
            log.info("producing to %s (dead letters: %s)", self.events_topic, self.deadletter_topic)
            return

    async def wait_ready(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.ready.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def stop(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
        self._producer = None
        self.ready.clear()

    async def deliver(self, records: list[tuple[bytes | None, bytes]], topic: str | None = None,
                      headers: list[tuple[str, bytes]] | None = None) -> None:
        """Send (key, value) records in order and wait for all their acknowledgements."""
        if self._producer is None:
            raise KafkaUnavailable("not connected to Kafka yet")
        topic = topic or self.events_topic
        try:
            async with asyncio.timeout(self.timeout):  # (no task per delivery, unlike wait_for)
                await self._send_all(topic, records, headers)
        except TimeoutError:
            raise KafkaUnavailable(f"Kafka did not acknowledge within {self.timeout:g}s") from None
        except Exception as err:
            from aiokafka.errors import KafkaError

            if not isinstance(err, KafkaError):
                raise
            if not getattr(err, "retriable", False):
                log.warning("producer error %s: reconnecting", type(err).__name__)
                self._restart()
            raise KafkaUnavailable(f"Kafka refused the records: {type(err).__name__}") from None

    async def _send_all(self, topic, records, headers) -> None:
        producer = self._producer
        futures = [await producer.send(topic, value, key=key, headers=headers) for key, value in records]
        if len(futures) == 1:
            await futures[0]
        else:
            await asyncio.gather(*futures)

    def _restart(self) -> None:
        old, self._producer = self._producer, None
        self.ready.clear()
        if old is not None:
            self._stopping = asyncio.ensure_future(old.stop())
        self.start()

    async def dead_letter(self, key: bytes | None, body: bytes, headers: list[tuple[str, bytes]]) -> None:
        await self.deliver([(key, body)], topic=self.deadletter_topic, headers=headers)
