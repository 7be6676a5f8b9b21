"""Webhook gateway throughput and accept latency (issue 16), on one broker, in one run.

    python bench/ingest.py [--bootstrap HOST:PORT] [--requests 30000] [--concurrency 64]
                           [--rate 1000] [--latency-seconds 20] [--max-in-flight 1000]

Starts a single-node Kafka broker (tests/support/procs.py) unless --bootstrap is given, and one `slamon ingest`
process (python -m ingest) with a Zendesk endpoint, then, from this process (an aiohttp client, on the same
machine: it takes CPU from the gateway):

  throughput  --requests signed Zendesk deliveries (each a distinct vendor event: 80 % one event, e.g. a comment;
              20 % a reopen = two events), --concurrency at a time, as fast as the gateway answers:
              deliveries/s and events/s acknowledged by Kafka (every 2xx means acks=all for all its events);
              gateway CPU seconds from /proc;
  latency     an open loop at --rate deliveries/s for --latency-seconds: each request is due at t0 + i/rate and
              its latency is measured from that instant (a late client counts against the gateway, no
              coordinated omission): p50/p90/p99/max of the accept latency (request due -> 2xx received).

Then checks that the events topic holds exactly the acknowledged events. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_kafka import broker_for  # noqa: E402

from tests.ingest.gateway_support import GatewayProcess  # noqa: E402

STAMP = "2026-03-02T14:00:00Z"


def deliveries(n: int, secret: bytes, offset: int = 0) -> list[tuple[bytes, dict, int]]:
    """n signed Zendesk deliveries (body, headers, events it maps to)."""
    out = []
    for i in range(offset, offset + n):
        tid = 100000 + i // 5
        ts = f"2026-03-02T{10 + (i // 3600) % 12:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z"
        if i % 5 == 4:
            event, typ, events = {"current": "open", "previous": "solved"}, "ticket.status_changed", 2
        else:
            event = {"comment": {"id": str(i), "is_public": True, "author": {"id": "9", "is_staff": i % 2 == 0},
                                 "body": "Thanks, we are on it" * 4}}
            typ, events = "ticket.comment_added", 1
        body = orjson.dumps({
            "account_id": 12514403, "id": f"bench-{i:09d}", "time": ts, "type": f"zen:event-type:{typ}",
            "subject": f"zen:ticket:{tid}", "zendesk_event_version": "2022-11-06",
            "detail": {"id": str(tid), "status": "OPEN", "priority": "high", "brand_id": "360001",
                       "group_id": "2000001",
                       "via": {"channel": "web"}, "tags": ["bench"], "updated_at": ts},
            "event": event})
        sig = base64.b64encode(hmac.new(secret, STAMP.encode() + body, hashlib.sha256).digest()).decode()
        out.append((body, {"Content-Type": "application/json", "X-Zendesk-Webhook-Signature": sig,
                           "X-Zendesk-Webhook-Signature-Timestamp": STAMP}, events))
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def throughput(url: str, items, concurrency: int) -> dict:
    import aiohttp

    statuses: dict[int, int] = {}
    events = 0
    queue = iter(items)

    async def worker(session):
        nonlocal events
        for body, headers, n in queue:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                if resp.status == 200:
                    events += n

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    ok = statuses.get(200, 0)
    return {"requests": len(items), "concurrency": concurrency, "seconds": round(seconds, 2),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "deliveries_per_s": round(ok / seconds), "events_per_s": round(events / seconds), "events": events}


async def latency(url: str, items, rate: float) -> dict:
    import aiohttp

    lat: list[float] = []
    statuses: dict[int, int] = {}
    events = 0
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter() + 0.2

        async def one(i, body, headers, n):
            nonlocal events
            due = t0 + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                if resp.status == 200:
                    events += n
                    lat.append(time.perf_counter() - due)

        await asyncio.gather(*(one(i, *item) for i, item in enumerate(items)))
        seconds = time.perf_counter() - t0
    lat.sort()

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2)

    return {"rate": rate, "requests": len(items), "achieved_per_s": round(len(items) / seconds),
            "statuses": {str(k): v for k, v in sorted(statuses.items())}, "events": events,
            "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99), "max_ms": round(lat[-1] * 1000, 2),
            "mean_ms": round(statistics.fmean(lat) * 1000, 2)}


def topic_total(bootstrap: str, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=[bootstrap])
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap")
    ap.add_argument("--requests", type=int, default=30000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--latency-seconds", type=float, default=20)
    ap.add_argument("--max-in-flight", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        bootstrap, broker = broker_for(args.bootstrap, Path(tmp))
        try:
            gw = GatewayProcess(Path(tmp) / "gw", bootstrap, ["zendesk"], max_in_flight=args.max_in_flight)
            gw.start()
            url = f"{gw.base}/hooks/zendesk"
            secret = gw.secrets["zendesk"]
            warm = deliveries(500, secret, offset=10_000_000)
            asyncio.run(throughput(url, warm, 16))  # connections, producer metadata, JIT-free warm caches
            items = deliveries(args.requests, secret)
            cpu0 = cpu_seconds(gw.proc.pid)
            tp = asyncio.run(throughput(url, items, args.concurrency))
            tp["gateway_cpu_seconds"] = round(cpu_seconds(gw.proc.pid) - cpu0, 2)
            n = int(args.rate * args.latency_seconds)
            lt = asyncio.run(latency(url, deliveries(n, secret, offset=args.requests), args.rate))
            on_topic = topic_total(bootstrap, gw.events_topic)
            acknowledged = sum(e for _, _, e in warm) + tp["events"] + lt["events"]
            gw.stop()
        finally:
            if broker is not None:
                broker.stop()
    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "throughput": tp, "latency": lt,
        "events_on_topic": on_topic, "events_acknowledged": acknowledged,
        "nothing_lost_or_extra": on_topic == acknowledged,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
