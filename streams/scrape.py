"""/metrics rendered in a forked child, so a scrape never stalls the event loop.

A scrape computes every figure from the engines (period reports, rolling windows, items at risk): with a few
hundred thousand events of state that takes a second or more of pure Python, during which the worker would
apply no events and decide no deadlines. `ForkedRenderer` forks (copy-on-write: the child sees the engines
exactly as they are at the fork, between two events, so a scrape is as consistent as an inline one), the
child renders and writes the body to a pipe and leaves with `os._exit`; the event loop reads the pipe without
blocking. Scrapes that arrive while a render runs share it. Without fork (or with SLAMON_SCRAPE_INLINE=1) it
renders inline.

The child does nothing but call the render function and write: no asyncio, no Kafka, no logging, GC off (the
same discipline as the snapshot child in streams/app.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
from collections.abc import Callable

from monitor.errors import SlamonError

FAILED = b"\x00slamon-scrape-failed\x00"  # the child's last bytes when rendering raised


class ScrapeError(SlamonError, RuntimeError):
    pass


class ForkedRenderer:
    def __init__(self, render: Callable[[], bytes], *, fork: bool = True, timeout: float = 60.0) -> None:
        self.render = render
        self.timeout = timeout
        self.fork = fork and hasattr(os, "fork") and os.environ.get("SLAMON_SCRAPE_INLINE") != "1"
        self._inflight: asyncio.Future | None = None

    async def __call__(self) -> bytes:
        if not self.fork:
            return self.render()
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._render_in_child())
            self._inflight.add_done_callback(self._clear)
        return await asyncio.shield(self._inflight)

    def _clear(self, _future) -> None:
        self._inflight = None

    async def _render_in_child(self) -> bytes:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(read_fd)
            _child(self.render, write_fd)
        os.close(write_fd)
        try:
            body = await asyncio.wait_for(_read_all(read_fd), self.timeout)
        except TimeoutError:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            raise ScrapeError(f"metrics render took over {self.timeout:.0f}s; killed") from None
        finally:
            os.close(read_fd)
            await _reap(pid)
        if body.endswith(FAILED):
            raise ScrapeError(body[: -len(FAILED)].decode(errors="replace") or "render failed")
        return body


def _child(render: Callable[[], bytes], write_fd: int) -> None:
    code = 1
    try:
        gc.disable()
        try:
            data = render()
            code = 0
        except BaseException as exc:
            data = f"metrics render failed: {exc!r}".encode(errors="replace") + FAILED
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view):]
    finally:
        os._exit(code)


async def _read_all(fd: int) -> bytes:
    """Read the pipe to EOF from the event loop (reader callbacks, never a blocking read)."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    done = loop.create_future()

    def on_readable() -> None:
        try:
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    if not done.done():
                        done.set_result(None)
                    return
                chunks.append(chunk)
        except BlockingIOError:
            return
        except OSError as exc:
            if not done.done():
                done.set_exception(exc)

    loop.add_reader(fd, on_readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
    return b"".join(chunks)


async def _reap(pid: int) -> None:
    for _ in range(1000):  # the child exits right after closing the pipe
        with contextlib.suppress(ChildProcessError):
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done == 0:
                await asyncio.sleep(0.005)
                continue
        return
