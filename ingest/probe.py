"""`slamon probe`: HTTP and TCP checks on each uptime SLA's probe interval, sent as probe events, so uptime SLAs
work without another monitoring product.

    version: 1
    contracts: examples/contracts.yaml
    kafka: {bootstrap_servers: "kafka:9092"}
    topics: {events: slamon.events}
    checks:
      - client: globex-bank
        service: card-portal              # an uptime SLA of that client names this service
        url: https://portal.globex.example/health     # or  tcp: db.globex.example:5432
        # interval: 60s                   # default: the SLA's probe_interval
        # timeout: 10s                    # default: half the interval, at most 10 s
        # expect_status: [200, 399]       # HTTP: inclusive range of good status codes
        # slow_ms: 2000                   # optional: a slower answer counts as down

Each check runs on a grid of its interval (instants that are multiples of it since the epoch), and its event id
is `probe:<client>:<service>:<grid instant>`: two probers run for redundancy produce the same ids, counted once
(so do two checks of one service: the first to arrive counts; give a service one check).
The event's time is the check's start, `latency_ms` its duration. A probe that cannot be delivered (Kafka down)
is retried until the next one is due, then dropped (the gap becomes `unknown` time, as the spec defines).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ingest.errors import IngestConfigError, KafkaUnavailable
from ingest.kafka import Producer
from monitor.contracts import UptimeSla, load_contracts
from monitor.durations import parse_duration_us
from monitor.events import Rejection, decode_event, format_us
from streams.config import KafkaSettings

log = logging.getLogger("slamon.probe")


class Check(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client: str
    service: str
    url: str | None = None
    tcp: str | None = None
    interval: float | None = Field(None, description="seconds (or a duration like 60s); default: the SLA's")
    timeout: float | None = None
    expect_status: tuple[int, int] = (200, 399)
    slow_ms: float | None = Field(None, gt=0)

    @field_validator("interval", "timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration_us(value) / 1e6 if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_target(self):
        if (self.url is None) == (self.tcp is None):
            raise ValueError("give `url` (HTTP) or `tcp` (host:port), one of them")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        if self.tcp is not None:
            host, sep, port = self.tcp.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"tcp is host:port, got {self.tcp!r}")
        return self

    @property
    def kind(self) -> Literal["http", "tcp"]:
        return "http" if self.url else "tcp"


class ProbeTopics(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: str = "slamon.events"
    deadletter: str = "slamon.deadletter"


class ProbeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    contracts: Path
    kafka: KafkaSettings = KafkaSettings()
    topics: ProbeTopics = ProbeTopics()
    checks: list[Check] = Field(min_length=1)


def load_probe_config(path: str | Path) -> ProbeConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise IngestConfigError(f"{path}: cannot read: {err.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise IngestConfigError(f"{path}: not valid YAML: {err}") from None
    try:
        config = ProbeConfig.model_validate(data)
    except ValidationError as err:
        lines = [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors()[:10]]
        raise IngestConfigError(f"{path}: invalid probe config:\n  " + "\n  ".join(lines)) from None
    config.contracts = path.resolve().parent / config.contracts
    contracts = load_contracts(config.contracts)
    for i, check in enumerate(config.checks):
        client = contracts.clients.get(check.client)
        if client is None:
            raise IngestConfigError(f"{path}: checks.{i}: client {check.client!r} is not in {config.contracts}")
        slas = [s for s in client.slas if isinstance(s, UptimeSla) and s.service == check.service]
        if not slas:
            raise IngestConfigError(f"{path}: checks.{i}: {check.client} has no uptime SLA for service "
                                    f"{check.service!r}")
        if check.interval is None:
            check.interval = min(s.probe_interval for s in slas) / 1e6
        if check.timeout is None:
            check.timeout = min(10.0, check.interval / 2)
    return config


async def check_once(check: Check, session) -> tuple[str, float]:
    """('up' | 'down', latency in ms) of one check."""
    started = time.perf_counter()
    status = "down"
    try:
        async with asyncio.timeout(check.timeout):
            if check.kind == "http":
                async with session.get(check.url, allow_redirects=False) as resp:
                    await resp.read()
                    lo, hi = check.expect_status
                    status = "up" if lo <= resp.status <= hi else "down"
            else:
                host, _, port = check.tcp.rpartition(":")
                _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
                writer.close()
                status = "up"
    except Exception as err:  # any failure of the target (refused, reset, TLS, timeout) is "down"
        log.debug("check %s/%s failed: %s", check.client, check.service, err)
    latency = (time.perf_counter() - started) * 1000
    if status == "up" and check.slow_ms is not None and latency > check.slow_ms:
        status = "down"
    return status, latency


def probe_event(check: Check, slot_us: int, started_us: int, status: str, latency_ms: float) -> bytes:
    return orjson.dumps({"event_id": f"probe:{check.client}:{check.service}:{slot_us}"[:128], "kind": "probe",
                         "client": check.client, "ts": format_us(started_us), "service": check.service,
                         "status": status, "latency_ms": round(min(latency_ms, 3_600_000), 3)})


async def run_check(check: Check, producer: Producer, clients, session, stop: asyncio.Event) -> None:
    interval_us = int(check.interval * 1e6)
    while not stop.is_set():
        now_us = time.time_ns() // 1000
        slot = (now_us // interval_us + 1) * interval_us
        try:
            await asyncio.wait_for(stop.wait(), (slot - now_us) / 1e6)
            return
        except TimeoutError:
            pass
        started = time.time_ns() // 1000
        status, latency = await check_once(check, session)
        value = probe_event(check, slot, started, status, latency)
        decoded = decode_event(value, clients)
        if isinstance(decoded, Rejection):
            log.error("probe event rejected by the decoder: %s", decoded.detail)
            continue
        deadline = slot + interval_us
        while time.time_ns() // 1000 < deadline:
            try:
                await producer.deliver([(check.client.encode(), value)])
                break
            except KafkaUnavailable as err:
                log.warning("probe %s/%s not delivered (%s); retrying", check.client, check.service, err)
                await asyncio.sleep(1.0)


async def run_probes(config: ProbeConfig, stop: asyncio.Event | None = None) -> None:
    import contextlib
    import signal

    import aiohttp

    contracts = load_contracts(config.contracts)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    producer = Producer(config.kafka, config.topics.events, config.topics.deadletter)
    producer.start()
    log.info("probing %d targets", len(config.checks))
    async with aiohttp.ClientSession() as session:
        try:
            await asyncio.gather(*(run_check(c, producer, contracts.clients, session, stop) for c in config.checks))
        finally:
            await producer.stop()
