"""The gateway's own HTTP/1.1 server (`http_server: native`, the default): an asyncio protocol around httptools'
parser (llhttp, the parser of Node.js), serving the gateway's three routes with the same handlers as the aiohttp
server (`http_server: aiohttp`). Measured on the project's 2-core machine it takes about 0.6x the CPU per
delivery of aiohttp's low-level server (bench/RESULTS.md, "Ingest gateway"): a request is parsed in C into a
header list and a body, and the answer is written as one buffer.

What it does:
- HTTP/1.1 and 1.0, keep-alive (`Connection: close` and 1.0 without keep-alive close after the answer),
  pipelined requests answered in order, chunked request bodies (decoded by the parser), `Expect: 100-continue`;
- limits: request line + headers at most 64 KiB and 100 headers (431), the body at most `max_body_bytes` (413,
  then the connection is closed: the rest of the body is not read), unparseable requests 400 + close,
  connections idle for `keepalive_seconds` (75 s) closed, and those sending one request for longer than that;
- back-pressure: a connection with 16 requests waiting stops being read until they are answered.

Handlers get a `Request` with what they use of aiohttp's: `read()`, `headers` (case-insensitive), `url`,
`content_type`, `method`, `path`; they return an aiohttp `web.Response`, serialized here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

import httptools
from aiohttp import web
from multidict import CIMultiDict

log = logging.getLogger("slamon.ingest")

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
MAX_PIPELINED = 16
REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
           405: "Method Not Allowed", 413: "Payload Too Large", 422: "Unprocessable Entity",
           429: "Too Many Requests", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
           503: "Service Unavailable"}


class Request:
    __slots__ = ("body", "content_type", "headers", "host", "method", "path", "target", "too_large")

    def __init__(self, method: str, target: bytes, headers: CIMultiDict, body: bytes, too_large: int | None):
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.too_large = too_large
        raw_path = httptools.parse_url(target).path or b"/"
        self.path = unquote(raw_path.decode("latin-1"))
        self.content_type = headers.get("Content-Type", "").partition(";")[0].strip().lower()

    async def read(self) -> bytes:
        if self.too_large is not None:
            raise web.HTTPRequestEntityTooLarge(max_size=self.too_large, actual_size=self.too_large + 1)
        return self.body

    @property
    def url(self) -> str:
        """The URL as requested (Twilio signs it): http://<Host><target>."""
        if self.target.startswith(b"http"):
            return self.target.decode("latin-1")
        return f"http://{self.headers.get('Host', '')}{self.target.decode('latin-1')}"


Handler = Callable[[Request], Awaitable[web.StreamResponse]]


def serialize(response: web.Response, keep_alive: bool, head: bool = False) -> bytes:
    body = response.body or b""
    if not isinstance(body, bytes):  # (the gateway's answers are bytes; anything else is a bug, made visible)
        raise TypeError(f"response body of type {type(body).__name__}")
    status = response.status
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, response.reason or 'Unknown')}"]
    for name, value in response.headers.items():
        if name.lower() not in ("content-length", "connection", "transfer-encoding"):
            lines.append(f"{name}: {value}")
    if status != 204:
        lines.append(f"Content-Length: {len(body)}")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head or status == 204 else body)


def _plain(status: int, text: str) -> bytes:
    body = f'{{"error": "{text}"}}'.encode()
    return (f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


class Connection(asyncio.Protocol):
    def __init__(self, server: NativeServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.target = b""
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.head_bytes = 0
        self.too_large: int | None = None
        self.queue: deque[tuple[Request, bool]] = deque()
        self.busy = False
        self.closing = False
        self.paused = False
        self.last = time.monotonic()
        self.began: float | None = None  # when the request being read began (a slow sender is cut off)

    # --- the transport --------------------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.server.connections.add(self)

    def connection_lost(self, exc) -> None:
        self.server.connections.discard(self)
        self.closing = True
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.last = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "upgrades are not supported")
        except httptools.HttpParserError:
            if not self.closing:
                self._fail(400, "malformed HTTP request")

    def _fail(self, status: int, text: str) -> None:
        self.closing = True
        self.queue.clear()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_plain(status, text))
            self.transport.close()

    # --- the parser's callbacks -----------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.began = time.monotonic()
        self.target, self.headers, self.body, self.size, self.head_bytes, self.too_large = b"", [], [], 0, 0, None

    def on_url(self, url: bytes) -> None:
        self.target += url
        self.head_bytes += len(url)
        if self.head_bytes > MAX_HEAD_BYTES:
            self._fail(431, "request line and headers too large")
            raise httptools.HttpParserError("too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_bytes += len(name) + len(value)
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))
        if self.head_bytes > MAX_HEAD_BYTES or len(self.headers) > MAX_HEADERS:
            self._fail(431, "request line and headers too large")
            raise httptools.HttpParserError("too large")

    def on_headers_complete(self) -> None:
        for name, value in self.headers:
            if name.lower() == "expect" and value.lower() == "100-continue" and self.transport is not None:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, chunk: bytes) -> None:
        if self.too_large is not None:
            return
        self.size += len(chunk)
        if self.size > self.server.max_body_bytes:
            # answer now (through the handler: it counts and says why) and close: the rest is not read
            self.too_large = self.server.max_body_bytes
            self.body = []
            self._dispatch(keep_alive=False)
            self.closing = True
            raise httptools.HttpParserError("body too large")
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        if self.too_large is None:
            self._dispatch(keep_alive=self.parser.should_keep_alive())

    # --- requests in order ----------------------------------------------------------------------------------

    def _dispatch(self, keep_alive: bool) -> None:
        self.began = None
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        request = Request(self.parser.get_method().decode("latin-1"), self.target, CIMultiDict(self.headers), body,
                          self.too_large)
        self.queue.append((request, keep_alive))
        if len(self.queue) >= MAX_PIPELINED and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        if not self.busy:
            self.busy = True
            self.server.loop.create_task(self._serve())

    async def _serve(self) -> None:
        try:
            while self.queue:
                request, keep_alive = self.queue.popleft()
                try:
                    response = await self.server.handler(request)
                    data = serialize(response, keep_alive, head=request.method == "HEAD")
                except Exception:
                    log.exception("request %s %s failed", request.method, request.path)
                    data, keep_alive = _plain(500, "internal error"), False
                if self.transport is None or self.transport.is_closing():
                    return
                self.transport.write(data)
                self.last = time.monotonic()
                if not keep_alive:
                    self.closing = True
                    self.queue.clear()
                    self.transport.close()
                    return
                if self.paused and len(self.queue) < MAX_PIPELINED // 2:
                    self.paused = False
                    self.transport.resume_reading()
        finally:
            self.busy = False


class NativeServer:
    def __init__(self, handler: Handler, *, max_body_bytes: int, keepalive_seconds: float = 75.0) -> None:
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        self.keepalive_seconds = keepalive_seconds
        self.connections: set[Connection] = set()
        self.loop = asyncio.get_running_loop()
        self.server: asyncio.base_events.Server | None = None
        self._sweeper: asyncio.Task | None = None

    async def start(self, host: str, port: int) -> None:
        self.server = await self.loop.create_server(lambda: Connection(self), host, port, backlog=1024)
        self._sweeper = self.loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        """Close connections idle for longer than keepalive_seconds, and those sending one request for longer
        than that (however slowly the bytes trickle in)."""
        while True:
            await asyncio.sleep(min(5.0, self.keepalive_seconds / 2))
            limit = time.monotonic() - self.keepalive_seconds
            for conn in list(self.connections):
                stuck = conn.began is not None and conn.began < limit
                if (stuck or (conn.last < limit and not conn.busy)) and conn.transport is not None:
                    conn.closing = True
                    conn.transport.close()

    async def stop(self, grace: float = 5.0) -> None:
        if self.server is not None:
            self.server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        deadline = time.monotonic() + grace
        while any(c.busy for c in self.connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()
        if self.server is not None:
            await self.server.wait_closed()
