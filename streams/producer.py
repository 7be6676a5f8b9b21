"""Send events to the events topic with kafka-python, keyed by client.

    result = produce(settings, lines, rate=5000)     # lines: JSON Lines (bytes), one event each

Every record's key is its event's `client` (raw UTF-8), so Kafka's default murmur2 partitioner puts all of a
client's events on one partition (see streams/README.md, "Keying"). A line that is not a JSON object with a
string `client` is sent without a key: the worker dead-letters it with its reason, as it would any producer's
bad record. `rate` paces sending (events per second, smoothed over 10 ms steps); None sends as fast as the
producer accepts.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import orjson

from streams.config import Settings


@dataclass
class ProduceResult:
    sent: int = 0
    bytes: int = 0
    failed: int = 0
    unkeyed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


def event_key(line: bytes) -> bytes | None:
    """The record key of an event line: its client, or None when the line has none."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    client = obj.get("client") if isinstance(obj, dict) else None
    return client.encode() if isinstance(client, str) and client else None


def make_producer(settings: Settings, **overrides):
    from kafka import KafkaProducer

    settings.kafka.check_connection()  # else a rejected password shows as a metadata timeout a minute later
    cfg = settings.kafka.kafka_python_config()
    cfg.update(acks="all", linger_ms=5, batch_size=256 * 1024, max_request_size=1_048_576,
               compression_type=None, retries=5, max_in_flight_requests_per_connection=1)
    cfg.update(overrides)
    return KafkaProducer(**cfg)


class Pacer:
    """Sleeps so that `n` sends take n / rate seconds (no burst larger than 10 ms of traffic)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.start = time.perf_counter()
        self.count = 0

    def wait(self) -> None:
        if not self.rate:
            return
        self.count += 1
        due = self.start + self.count / self.rate
        ahead = due - time.perf_counter()
        if ahead > 0.01:
            time.sleep(ahead)


def produce(settings: Settings, lines: Iterable[bytes], *, rate: float | None = None, topic: str | None = None,
            total: int | None = None, progress: bool = False, producer=None,
            on_sent=None) -> ProduceResult:
    """Send each non-blank line as one record; flush; return counts. `on_sent(i, line)` is called after
    the i-th send is handed to the producer (the bench uses it for send times)."""
    topic = topic or settings.topics.events
    own = producer is None
    producer = producer or make_producer(settings)
    result = ProduceResult()
    pacer = Pacer(rate)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="ev", unit_scale=True, desc=f"produce {topic}", file=sys.stderr,
                   mininterval=0.5)

    def failed(exc: BaseException) -> None:
        result.failed += 1
        if len(result.errors) < 5:
            result.errors.append(repr(exc))

    started = time.perf_counter()
    try:
        for line in lines:
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            key = event_key(line)
            if key is None:
                result.unkeyed += 1
            pacer.wait()
            try:
                producer.send(topic, value=line, key=key).add_errback(failed)
            except Exception as exc:  # too large for the broker, serialization, buffer timeout
                failed(exc)
                continue
            result.sent += 1
            result.bytes += len(line)
            if on_sent is not None:
                on_sent(result.sent, line)
            if bar is not None:
                bar.update(1)
        producer.flush()
    finally:
        result.seconds = time.perf_counter() - started
        if bar is not None:
            bar.close()
        if own:
            producer.close()
    return result


def read_lines(path: str) -> Iterator[bytes]:
    """JSON Lines from a file, or from stdin for '-'."""
    if path == "-":
        yield from sys.stdin.buffer
        return
    with open(path, "rb") as fh:
        yield from fh


def generated_lines(contracts, hours: float, *, start_us: int | None = None, seed: int = 0,
                    **config) -> Iterator[bytes]:
    """Synthetic traffic from `monitor.simulation.generator` as JSON Lines: `hours` of it ending now
    (or from start_us)."""
    from monitor.simulation.generator import GeneratorConfig, generate

    duration = int(hours * 3_600_000_000)
    if start_us is None:
        now = time.time_ns() // 1000
        start_us = now - duration
    cfg = GeneratorConfig(start_us=start_us, duration_us=duration, seed=seed, **config)
    for event in generate(contracts, cfg):
        yield orjson.dumps(event)
