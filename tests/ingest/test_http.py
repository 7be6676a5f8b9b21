"""ingest/http.py, the gateway's own HTTP/1.1 server, over raw sockets: keep-alive, pipelining in order,
chunked bodies, Expect: 100-continue, the limits (413, 431, 400), HEAD, connection close, a handler error (500)."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from ingest.http import NativeServer
from tests.support.procs import free_port


async def _handler(request) -> web.Response:
    if request.path == "/boom":
        raise RuntimeError("boom")
    if request.path == "/slow":
        await asyncio.sleep(0.05)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return web.Response(status=413, body=b'{"error": "too large"}', content_type="application/json")
    answer = {"method": request.method, "path": request.path, "body": body.decode(), "url": request.url,
              "sig": request.headers.get("x-signature"), "type": request.content_type}
    return web.Response(status=200, body=orjson.dumps(answer), content_type="application/json",
                        headers={"Retry-After": "2"})


async def _exchange(raw: bytes, answers: int, *, max_body: int = 1024, chunks: list[bytes] | None = None,
                    wait: float = 5.0) -> tuple[bytes, bool]:
    """Send `raw` (then `chunks`), read until `answers` complete answers or EOF; (bytes read, closed by server)."""
    server = NativeServer(_handler, max_body_bytes=max_body)
    port = free_port()
    await server.start("127.0.0.1", port)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        for chunk in chunks or []:
            await asyncio.sleep(0.02)
            writer.write(chunk)
        data, closed = b"", False
        while data.count(b"HTTP/1.1 ") - data.count(b"HTTP/1.1 100 ") < answers or not _complete(data):
            chunk = await asyncio.wait_for(reader.read(65536), wait)
            if not chunk:
                closed = True
                break
            data += chunk
        if not closed:
            try:
                closed = await asyncio.wait_for(reader.read(1), 0.2) == b""
            except TimeoutError:
                closed = False
        writer.close()
        return data, closed
    finally:
        await server.stop()


def _complete(data: bytes) -> bool:
    """The last answer in `data` has all of its Content-Length."""
    at = data.rfind(b"HTTP/1.1 ")
    head, sep, body = data[at:].partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def _answers(data: bytes) -> list[tuple[int, dict, bytes]]:
    out = []
    for part in data.split(b"HTTP/1.1 ")[1:]:
        head, _, body = part.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = {k.strip().lower().decode(): v.strip().decode() for k, _, v in (h.partition(b":") for h in lines[1:])}
        out.append((int(lines[0][:3]), headers, body))
    return out


def _post(path: str, body: bytes, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: gw.example:8088\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"X-Signature: abc\r\nContent-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def test_keep_alive_and_pipelined_requests_are_answered_in_order():
    raw = _post("/slow", b'{"n": 1}') + _post("/hooks/a%2Db?x=1", b'{"n": 2}') + _post("/c", b"")
    data, closed = asyncio.run(_exchange(raw, 3))
    answers = _answers(data)
    assert [a[0] for a in answers] == [200, 200, 200] and not closed
    got = [orjson.loads(a[2]) for a in answers]
    assert [g["body"] for g in got] == ['{"n": 1}', '{"n": 2}', ""]
    assert got[1]["path"] == "/hooks/a-b" and got[1]["url"] == "http://gw.example:8088/hooks/a%2Db?x=1"
    assert got[0]["sig"] == "abc" and got[0]["type"] == "application/json"
    assert answers[0][1]["retry-after"] == "2" and answers[0][1]["content-type"] == "application/json"


def test_chunked_body_and_expect_continue():
    head = (b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n"
            b"Connection: close\r\n\r\n")
    data, closed = asyncio.run(_exchange(head, 1, chunks=[b"4\r\nabcd\r\n", b"3\r\nefg\r\n0\r\n\r\n"]))
    assert data.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    (status, headers, body), = _answers(data[len(b"HTTP/1.1 100 Continue\r\n\r\n"):])
    assert status == 200 and orjson.loads(body)["body"] == "abcdefg"
    assert headers["connection"] == "close" and closed


def test_body_over_the_limit_is_413_and_closes():
    data, closed = asyncio.run(_exchange(_post("/x", b"x" * 5000), 1, max_body=1024))
    ((status, _, _),) = _answers(data)
    assert status == 413 and closed


def test_oversized_head_malformed_request_and_handler_error():
    big = b"GET /x HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1000) for i in range(80))
    data, closed = asyncio.run(_exchange(big + b"\r\n", 1))
    assert _answers(data)[0][0] == 431 and closed
    data, closed = asyncio.run(_exchange(b"NONSENSE\r\n\r\n", 1))
    assert _answers(data)[0][0] == 400 and closed
    data, closed = asyncio.run(_exchange(_post("/boom", b"{}"), 1))
    assert _answers(data)[0][0] == 500 and closed


def test_head_has_no_body_and_http10_closes():
    data, closed = asyncio.run(_exchange(b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\nGET /y HTTP/1.1\r\nHost: h\r\n\r\n", 2))
    (status, headers, body), (status2, _, body2) = _answers(data)
    assert status == 200 and int(headers["content-length"]) > 0 and body == b"" and not closed
    assert status2 == 200 and orjson.loads(body2)["path"] == "/y"
    data, closed = asyncio.run(_exchange(b"GET /x HTTP/1.0\r\n\r\n", 1))
    assert _answers(data)[0][0] == 200 and closed


def test_idle_and_slow_connections_are_closed():
    async def run() -> tuple[bool, bool]:
        server = NativeServer(_handler, max_body_bytes=1024, keepalive_seconds=0.6)
        port = free_port()
        await server.start("127.0.0.1", port)
        try:
            idle_reader, _idle = await asyncio.open_connection("127.0.0.1", port)
            slow_reader, slow = await asyncio.open_connection("127.0.0.1", port)
            slow.write(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n")
            cut = False
            for _ in range(30):  # a byte every 0.1 s: never idle, never done
                await asyncio.sleep(0.1)
                if slow.is_closing() or slow_reader.at_eof():
                    cut = True
                    break
                try:
                    slow.write(b"x")
                    await slow.drain()
                except ConnectionError:
                    cut = True
                    break
            assert cut, "a request trickling in for 3 s was not cut off"
            return (len(server.connections) == 0 and await idle_reader.read() == b"", await slow_reader.read() == b"")
        finally:
            await server.stop()

    all_closed, slow_closed = asyncio.run(run())
    assert all_closed and slow_closed
