"""Webhook gateway throughput and accept latency (issue 16), on one broker, in one run.

    python bench/ingest.py [--bootstrap HOST:PORT] [--requests 30000] [--concurrency 64] [--rate 1000]
                           [--latency-seconds 20] [--max-in-flight 1000] [--variants default,aiohttp]
                           [--repeat 3] [--phases throughput,latency] [--stub-kafka]

Starts a single-node Kafka broker (tests/support/procs.py) unless --bootstrap is given; then, for each round
and each variant (alternated, so that the machine's load hits them alike), one `slamon ingest` process (python
-m ingest) with a Zendesk endpoint, and the load from a separate client process (`bench/ingest.py client`: raw
HTTP/1.1 over keep-alive connections on uvloop, requests built and signed before the clock starts, so the
client costs a fraction of the gateway's CPU; on 2 cores it still competes with the gateway and the broker,
which is why the gateway's own CPU per delivery is reported too):

  throughput  --requests signed Zendesk deliveries (each a distinct vendor event: 80 % one event, e.g. a comment;
              20 % a reopen = two events), --concurrency connections with one request at a time each, as fast
              as the gateway answers: deliveries/s and events/s acknowledged by Kafka (every 2xx means acks=all
              for all its events); gateway and client CPU per delivery from /proc;
  latency     an open loop at --rate deliveries/s for --latency-seconds: each request is due at t0 + i/rate and
              its latency is measured from that instant (a late client counts against the gateway, no
              coordinated omission): p50/p90/p99/max of the accept latency (request due -> 2xx received).

Variants (`VARIANTS`): `default` (uvloop, the native HTTP server, linger_ms 5), `aiohttp` (aiohttp's server),
`asyncio` (asyncio's loop), `aiohttp-asyncio` (both: the gateway as it was before), `linger0` / `linger2`
(the producer's linger_ms). With --stub-kafka the gateway's producer acknowledges at once (no Kafka work: the
cost of the HTTP side alone; the topic check is skipped).

Then checks that each events topic holds exactly the acknowledged events. Prints JSON: every run and the
medians per variant.
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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAMP = "2026-03-02T14:00:00Z"
VARIANTS = {  # gateway settings; the defaults are uvloop, the native HTTP server, linger_ms 5
    "default": {},
    "aiohttp": {"http_server": "aiohttp"},
    "asyncio": {"event_loop": "asyncio"},
    "aiohttp-asyncio": {"http_server": "aiohttp", "event_loop": "asyncio"},
    "linger0": {"producer": {"linger_ms": 0}},
    "linger2": {"producer": {"linger_ms": 2}},
}


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


# --- the client process ----------------------------------------------------------------------------------


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time; answers parsed by Content-Length."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15:head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None]) if at >= 0 else 0
        if len(self.buf) < end + 4 + length:
            return
        status = int(head[9:12])
        del self.buf[:end + 4 + length]
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(status)

    def connection_lost(self, exc) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    def request(self, raw: bytes) -> asyncio.Future:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self.waiter


def _raw_requests(host: str, port: int, path: str, items) -> list[tuple[bytes, int]]:
    out = []
    for body, headers, events in items:
        head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        out.append(("\r\n".join(head).encode() + b"\r\n\r\n" + body, events))
    return out


async def _connect(host: str, port: int, n: int) -> list[_Conn]:
    import socket

    loop = asyncio.get_running_loop()
    conns = []
    for _ in range(n):
        transport, proto = await loop.create_connection(_Conn, host, port)
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns.append(proto)
    return conns


async def client_throughput(host: str, port: int, reqs, concurrency: int) -> dict:
    conns = await _connect(host, port, concurrency)
    statuses: dict[int, int] = {}
    events = 0
    queue = iter(reqs)

    async def worker(conn: _Conn) -> None:
        nonlocal events
        for raw, n in queue:
            status = await conn.request(raw)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                events += n

    cpu0 = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    for c in conns:
        c.transport.close()
    ok = statuses.get(200, 0)
    return {"requests": len(reqs), "concurrency": concurrency, "seconds": round(seconds, 3),
            "statuses": {str(k): v for k, v in sorted(statuses.items())}, "events": events,
            "deliveries_per_s": round(ok / seconds), "events_per_s": round(events / seconds),
            "client_cpu_seconds": round(cpu, 3)}


async def client_latency(host: str, port: int, reqs, rate: float, connections: int) -> dict:
    conns = await _connect(host, port, connections)
    idle: asyncio.Queue[_Conn] = asyncio.Queue()
    for c in conns:
        idle.put_nowait(c)
    lat: list[float] = []
    statuses: dict[int, int] = {}
    events = 0

    async def one(due: float, raw: bytes, n: int) -> None:
        nonlocal events
        conn = await idle.get()
        try:
            status = await conn.request(raw)
        finally:
            idle.put_nowait(conn)
        statuses[status] = statuses.get(status, 0) + 1
        if status == 200:
            events += n
            lat.append(time.perf_counter() - due)

    tasks = []
    t0 = time.perf_counter() + 0.1
    for i, (raw, n) in enumerate(reqs):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(due, raw, n)))
    await asyncio.gather(*tasks)
    seconds = time.perf_counter() - t0
    for c in conns:
        c.transport.close()
    lat.sort()

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2)

    return {"rate": rate, "requests": len(reqs), "achieved_per_s": round(len(reqs) / seconds),
            "statuses": {str(k): v for k, v in sorted(statuses.items())}, "events": events,
            "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99), "p999_ms": pct(0.999),
            "max_ms": round(lat[-1] * 1000, 2), "mean_ms": round(statistics.fmean(lat) * 1000, 2)}


def client_main(argv: list[str]) -> int:
    """`bench/ingest.py client MODE URL N OFFSET ARG`: MODE throughput (ARG = connections) or latency (ARG =
    rate); the endpoint's secret in $BENCH_SECRET (hex). Prints one JSON line."""
    mode, url, n, offset, arg = argv[0], argv[1], int(argv[2]), int(argv[3]), float(argv[4])
    from urllib.parse import urlsplit

    u = urlsplit(url)
    reqs = _raw_requests(u.hostname, u.port, u.path, deliveries(n, bytes.fromhex(os.environ["BENCH_SECRET"]),
                                                                offset))
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    if mode == "throughput":
        result = run(client_throughput(u.hostname, u.port, reqs, int(arg)))
    else:
        result = run(client_latency(u.hostname, u.port, reqs, arg, 256))
    print(json.dumps(result), flush=True)
    return 0


def run_client(mode: str, url: str, secret: bytes, n: int, offset: int, arg: float) -> dict:
    out = subprocess.run([sys.executable, __file__, "client", mode, url, str(n), str(offset), str(arg)],
                         env={**os.environ, "BENCH_SECRET": secret.hex()}, capture_output=True, text=True,
                         timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"client failed: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- a gateway whose producer acknowledges at once (--stub-kafka) ---------------------------------------------


def stub_gateway_main(argv: list[str]) -> int:
    from ingest import kafka

    async def deliver(self, records, topic=None, headers=None) -> None:
        return None

    def start(self) -> None:
        self.ready.set()

    async def stop(self) -> None:
        return None

    kafka.Producer.deliver, kafka.Producer.start, kafka.Producer.stop = deliver, start, stop
    from ingest.cli import main

    return main(argv)


# --- the orchestration ---------------------------------------------------------------------------------------


def topic_total(bootstrap: str, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=[bootstrap])
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def one_run(args, bootstrap: str, tmp: Path, variant: str, offset: int) -> dict:
    from tests.ingest.gateway_support import GatewayProcess

    settings = VARIANTS[variant]
    gw = GatewayProcess(tmp / f"gw-{variant}-{offset}", bootstrap, ["zendesk"], max_in_flight=args.max_in_flight,
                        create=not args.stub_kafka, **settings)
    if args.stub_kafka:
        gw.argv = [sys.executable, __file__, "stub-gateway"]
    gw.start()
    try:
        url = f"{gw.base}/hooks/zendesk"
        secret = gw.secrets["zendesk"]
        warm = run_client("throughput", url, secret, 1000, 10_000_000 + offset, 16)
        acknowledged = warm["events"]
        out: dict = {"variant": variant}
        if "throughput" in args.phases:
            cpu0 = cpu_seconds(gw.proc.pid)
            tp = run_client("throughput", url, secret, args.requests, offset, args.concurrency)
            cpu = cpu_seconds(gw.proc.pid) - cpu0
            ok = tp["statuses"].get("200", 0)
            tp["gateway_cpu_seconds"] = round(cpu, 2)
            tp["gateway_cpu_us_per_delivery"] = round(cpu / max(ok, 1) * 1e6)
            tp["client_cpu_us_per_delivery"] = round(tp["client_cpu_seconds"] / max(ok, 1) * 1e6)
            acknowledged += tp["events"]
            out["throughput"] = tp
        if "latency" in args.phases:
            n = int(args.rate * args.latency_seconds)
            cpu0 = cpu_seconds(gw.proc.pid)
            lt = run_client("latency", url, secret, n, offset + args.requests, args.rate)
            lt["gateway_cpu_us_per_delivery"] = round((cpu_seconds(gw.proc.pid) - cpu0) / max(n, 1) * 1e6)
            acknowledged += lt["events"]
            out["latency"] = lt
        out["loadavg"] = round(os.getloadavg()[0], 2)
    finally:
        gw.stop()
    if not args.stub_kafka:
        on_topic = topic_total(bootstrap, gw.events_topic)
        out["nothing_lost_or_extra"] = on_topic == acknowledged
        out["events_on_topic"], out["events_acknowledged"] = on_topic, acknowledged
    return out


def medians(runs: list[dict]) -> dict:
    out = {}
    for variant in dict.fromkeys(r["variant"] for r in runs):
        mine = [r for r in runs if r["variant"] == variant]
        m: dict = {"runs": len(mine)}
        for phase, keys in (("throughput", ("deliveries_per_s", "events_per_s", "gateway_cpu_us_per_delivery",
                                            "client_cpu_us_per_delivery")),
                            ("latency", ("achieved_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms",
                                         "gateway_cpu_us_per_delivery"))):
            for key in keys:
                values = [r[phase][key] for r in mine if phase in r]
                if values:
                    m[f"{phase}.{key}"] = statistics.median(values)
        out[variant] = m
    return out


def main() -> int:
    if sys.argv[1:2] == ["client"]:
        return client_main(sys.argv[2:])
    if sys.argv[1:2] == ["stub-gateway"]:
        return stub_gateway_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap")
    ap.add_argument("--requests", type=int, default=30000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--latency-seconds", type=float, default=20)
    ap.add_argument("--max-in-flight", type=int, default=1000)
    ap.add_argument("--variants", default="default", help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--repeat", type=int, default=1, help="rounds; the variants alternate within each")
    ap.add_argument("--phases", default="throughput,latency")
    ap.add_argument("--stub-kafka", action="store_true", help="the gateway's producer acknowledges at once")
    args = ap.parse_args()
    args.phases = set(args.phases.split(","))
    variants = args.variants.split(",")
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown variants {unknown}")
    from bench_kafka import broker_for

    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        bootstrap, broker = broker_for(args.bootstrap, Path(tmp))
        try:
            offset = 0
            for _ in range(args.repeat):
                for variant in variants:
                    runs.append(one_run(args, bootstrap, Path(tmp), variant, offset))
                    print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
                    offset += args.requests + int(args.rate * args.latency_seconds) + 1000
        finally:
            if broker is not None:
                broker.stop()
    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "stub_kafka": args.stub_kafka, "medians": medians(runs), "runs": runs,
        "nothing_lost_or_extra": all(r.get("nothing_lost_or_extra", True) for r in runs),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
