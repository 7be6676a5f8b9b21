"""`slamon ingest`: the HTTP gateway. One route per configured endpoint, `POST /hooks/<name>`.

A delivery goes through, in order:
1. size (over `max_body_bytes`: 413) and authentication (ingest/auth.py; failure: 401, nothing produced, no
   dead letter: an unauthenticated body is not trusted enough to store);
2. parsing (JSON or form, per connector; failure: 400 + dead letter with the original body);
3. mapping by the connector (a rejection: 422 + dead letter; no events: 200, nothing produced);
4. the client (fixed, or from a payload field through a map; none while there are events: 422 + dead letter);
5. validation of every mapped event with the worker's own decoder (`monitor.events.decode_event`, against the
   contracts' clients; any failure: 422 + dead letter, nothing of the delivery produced);
6. back-pressure: more than `max_in_flight` deliveries waiting for Kafka: 429 with Retry-After;
7. produce, keyed by client, with the idempotent producer; 200 only after Kafka acknowledged every event.
   Kafka unavailable or slower than `produce_timeout_seconds`: 503 with Retry-After (the vendor retries;
   the same event ids make the retry harmless). A dead letter that cannot be written also answers 503.

Dead letters carry the original body and headers `reason` (malformed | unmappable | invalid | unknown_client
| no_client), `detail`, `source` = `ingest`, `endpoint`, `connector`, `content_type`.
`GET /healthz` answers 200 when Kafka is connected (503 before); `GET /metrics` is Prometheus text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.parse
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ingest.config import Endpoint, GatewayConfig, verifier
from ingest.connectors import connector
from ingest.connectors.base import Context, Reject
from ingest.errors import KafkaUnavailable
from ingest.kafka import Producer
from monitor.contracts import load_contracts
from monitor.events import Rejection, decode_event

log = logging.getLogger("slamon.ingest")


class Route:
    """One endpoint, ready to serve: its connector, verifier and options."""

    def __init__(self, name: str, endpoint: Endpoint) -> None:
        self.name = name
        self.endpoint = endpoint
        self.module = connector(endpoint.connector)
        self.verifier = verifier(endpoint)
        self.options = endpoint.parsed_options
        self.ok_status = getattr(self.module, "OK_STATUS", 200)
        self.signs_url = self.verifier.scheme == "twilio"  # (building the request's URL costs a few us)

    def parse(self, body: bytes) -> Any:
        if self.module.BODY == "form":
            return dict(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        return orjson.loads(body)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter("slamon_ingest_deliveries", "webhook deliveries by endpoint and outcome",
                                  ["endpoint", "outcome"], registry=self.registry)
        self.events = Counter("slamon_ingest_events", "events produced to the events topic", ["endpoint"],
                              registry=self.registry)
        self.in_flight = Gauge("slamon_ingest_in_flight", "deliveries waiting for Kafka", registry=self.registry)
        self.latency = Histogram("slamon_ingest_accept_seconds", "time from request to answer (produced)",
                                 ["endpoint"], registry=self.registry,
                                 buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


class Gateway:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.contracts = load_contracts(config.contracts)
        self.clients = self.contracts.clients
        self.routes = {name: Route(name, ep) for name, ep in config.endpoints.items()}
        self.producer: Producer | None = None
        self.metrics = Metrics()
        for name, route in self.routes.items():  # label children resolved once, not per request
            route.latency = self.metrics.latency.labels(name)
            route.accepted = self.metrics.deliveries.labels(name, "accepted")
            route.events = self.metrics.events.labels(name)
        self.in_flight = 0
        self.runner: web.ServerRunner | None = None
        self.native = None  # ingest.http.NativeServer
        self.tails: list = []

    # --- lifecycle ------------------------------------------------------------------------------------------

    def server(self) -> web.Server:
        """aiohttp's low-level server: one dispatch by path instead of an Application (router, middlewares,
        signals), whose machinery cost ~15-20 us of CPU per request on this gateway's 2-core machine."""
        limit = self.config.max_body_bytes
        loop = asyncio.get_running_loop()

        def request(message, payload, protocol, writer, task) -> web.BaseRequest:
            return web.BaseRequest(message, payload, protocol, writer, task, loop, client_max_size=limit)

        return web.Server(self.dispatch, request_factory=request, access_log=None)

    async def dispatch(self, request) -> web.StreamResponse:
        """One request of either server (an aiohttp request or an ingest.http.Request)."""
        path, method = request.path, request.method
        if path.startswith("/hooks/"):
            if method != "POST":
                return _answer(405, {"error": "POST only"}, allow="POST")
            return await self.handle(request, path[7:])
        if path == "/healthz" and method in ("GET", "HEAD"):
            return await self.healthz(request)
        if path == "/metrics" and method in ("GET", "HEAD"):
            return await self.metrics_page(request)
        return _answer(404, {"error": "not found"})

    async def start(self) -> None:
        cfg = self.config
        self.producer = Producer(cfg.kafka, cfg.topics.events, cfg.topics.deadletter,
                                 timeout=cfg.produce_timeout_seconds, linger_ms=cfg.producer.linger_ms)
        self.producer.start()
        if cfg.http_server == "native":
            from ingest.http import NativeServer

            self.native = NativeServer(self.dispatch, max_body_bytes=cfg.max_body_bytes)
            await self.native.start(cfg.host, cfg.port)
        else:
            self.runner = web.ServerRunner(self.server(), handle_signals=False)
            await self.runner.setup()
            site = web.TCPSite(self.runner, cfg.host, cfg.port, backlog=1024)
            await site.start()
        if cfg.tails:
            from ingest.tail import Tailer

            for name, tail in cfg.tails.items():
                t = Tailer(name, tail, self.producer, self.clients)
                t.start()
                self.tails.append(t)
        log.info("slamon ingest listening on %s: %s", cfg.listen,
                 ", ".join(f"/hooks/{n} ({r.endpoint.connector})" for n, r in self.routes.items()) or "no endpoints")

    async def stop(self) -> None:
        for t in self.tails:
            await t.stop()
        if self.runner is not None:
            await self.runner.cleanup()
        if self.native is not None:
            await self.native.stop()
        if self.producer is not None:
            await self.producer.stop()

    # --- requests -------------------------------------------------------------------------------------------

    async def healthz(self, request: web.BaseRequest) -> web.Response:
        ready = self.producer is not None and self.producer.ready.is_set()
        body = {"kafka": ready, "in_flight": self.in_flight, "endpoints": sorted(self.routes)}
        return web.json_response(body, status=200 if ready else 503)

    async def metrics_page(self, request: web.BaseRequest) -> web.Response:
        self.metrics.in_flight.set(self.in_flight)
        return web.Response(body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def handle(self, request: web.BaseRequest, name: str) -> web.Response:
        started = time.perf_counter()
        route = self.routes.get(name)
        if route is None:
            return _answer(404, {"error": "no such endpoint"})
        response = await self._handle(route, request)
        route.latency.observe(time.perf_counter() - started)
        return response

    async def _handle(self, route: Route, request: web.BaseRequest) -> web.Response:
        count = self.metrics.deliveries.labels
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            count(route.name, "too_large").inc()
            return _answer(413, {"error": f"body larger than {self.config.max_body_bytes} bytes"})
        if not route.verifier.verify(request.headers, body, str(request.url) if route.signs_url else ""):
            count(route.name, "unauthorized").inc()
            return _answer(401, {"error": "authentication failed"})
        try:
            payload = route.parse(body)
        except (ValueError, UnicodeDecodeError) as err:
            return await self._refuse(route, request, body, None, 400, "malformed", f"cannot parse the body: {err}")
        client = route.endpoint.client_for(payload)
        ctx = Context(client=client or "", source=route.name, options=route.options)
        try:
            mapped = route.module.map_payload(payload, ctx)
        except Exception as err:  # a connector bug must not take the gateway down; the fuzz tests hunt these
            log.exception("connector %s failed", route.endpoint.connector)
            mapped = Reject(f"connector error: {type(err).__name__}")
        if isinstance(mapped, Reject):
            return await self._refuse(route, request, body, client, 422, "unmappable", mapped.reason)
        if client is None and mapped:  # (a payload that maps to nothing needs no client: acknowledged)
            where = route.endpoint.client.field if not isinstance(route.endpoint.client, str) else "client"
            return await self._refuse(route, request, body, None, 422, "no_client",
                                      f"no client for this payload ({where} has no mapping)")
        records = []
        for event in mapped:
            raw = orjson.dumps(event)
            decoded = decode_event(raw, self.clients)
            if isinstance(decoded, Rejection):
                reason = decoded.reason if decoded.reason == "unknown_client" else "invalid"
                return await self._refuse(route, request, body, client, 422, reason,
                                          f"mapped event {event.get('event_id')!r} is {decoded.reason}: "
                                          f"{decoded.detail}")
            records.append((client.encode(), raw))
        if not records:
            count(route.name, "ignored").inc()
            return _answer(route.ok_status, {"accepted": 0})
        if self.in_flight >= self.config.max_in_flight:
            count(route.name, "throttled").inc()
            return _answer(429, {"error": "too many deliveries in flight"}, self.config.retry_after_seconds)
        self.in_flight += 1
        try:
            await self.producer.deliver(records)
        except KafkaUnavailable as err:
            count(route.name, "unavailable").inc()
            return _answer(503, {"error": str(err)}, self.config.retry_after_seconds)
        finally:
            self.in_flight -= 1
        route.accepted.inc()
        route.events.inc(len(records))
        return _answer(route.ok_status, {"accepted": len(records)})

    async def _refuse(self, route: Route, request: web.BaseRequest, body: bytes, client: str | None, status: int,
                      reason: str, detail: str) -> web.Response:
        """Answer `status` with the reason, after the original body is safely on the dead-letter topic."""
        headers = [("reason", reason.encode()), ("detail", detail.encode()[:1000]), ("source", b"ingest"),
                   ("endpoint", route.name.encode()), ("connector", route.endpoint.connector.encode()),
                   ("content_type", (request.content_type or "").encode()[:200])]
        if client:
            headers.append(("client", client.encode()))
        log.info("endpoint %s: %s: %s", route.name, reason, detail)
        try:
            await self.producer.dead_letter(client.encode() if client else None, body, headers)
        except KafkaUnavailable as err:
            self.metrics.deliveries.labels(route.name, "unavailable").inc()
            return _answer(503, {"error": f"{reason}: {detail}; and the dead letter could not be written: {err}"},
                           self.config.retry_after_seconds)
        self.metrics.deliveries.labels(route.name, reason).inc()
        return _answer(status, {"error": detail, "reason": reason})


def _answer(status: int, body: dict, retry_after: int | None = None, allow: str | None = None) -> web.Response:
    if status == 204:
        return web.Response(status=204, headers={"Content-Type": "application/json"})
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    if allow is not None:
        headers = {"Allow": allow}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=headers)


def _tune_gc() -> None:
    """The objects made at startup (contracts, pydantic models, modules: ~60k) move out of the collector's view,
    and a young collection runs every 20,000 net allocations instead of 700: a delivery frees nearly all it
    allocates by reference counting, so the collector mostly walked the same long-lived objects again and
    again (bench/RESULTS.md, "Ingest gateway": GC time 4 s -> 0.4 s over 30k deliveries, p99 at 1,000/s)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


async def serve(config: GatewayConfig, stop: asyncio.Event | None = None) -> None:
    """Run the gateway until `stop` is set (or SIGINT/SIGTERM)."""
    import signal

    gateway = Gateway(config)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    await gateway.start()
    _tune_gc()
    try:
        await stop.wait()
    finally:
        await gateway.stop()
