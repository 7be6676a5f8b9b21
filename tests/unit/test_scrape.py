"""The forked /metrics renderer: same bytes as inline, a consistent copy, never blocks the event loop."""

from __future__ import annotations

import asyncio
import itertools
import os
import time

import pytest

from streams.scrape import ForkedRenderer, ScrapeError

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def test_forked_render_returns_the_inline_bytes():
    state = {"n": 41}
    render = lambda: f"value {state['n']}\n".encode() * 50_000  # noqa: E731  (~500 KB: more than a pipe buffer)
    body = asyncio.run(ForkedRenderer(render)())
    assert body == render()


def test_the_child_renders_the_state_at_the_fork():
    state = {"n": 1}

    def render() -> bytes:
        time.sleep(0.3)  # the parent changes the state meanwhile
        return str(state["n"]).encode()

    async def scenario() -> bytes:
        task = asyncio.ensure_future(ForkedRenderer(render)())
        await asyncio.sleep(0.1)
        state["n"] = 2
        return await task

    assert asyncio.run(scenario()) == b"1"


def test_the_event_loop_keeps_running_while_the_child_renders():
    ticks: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.02)

    async def scenario() -> None:
        stop = asyncio.Event()
        t = asyncio.ensure_future(ticker(stop))
        await ForkedRenderer(lambda: (time.sleep(1.0), b"ok")[1])()
        stop.set()
        await t

    asyncio.run(scenario())
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) > 20 and max(gaps) < 0.5  # inline, one gap would be the whole second


def test_concurrent_scrapes_share_one_render(tmp_path):
    marker = tmp_path / "renders"

    def render() -> bytes:
        with open(marker, "a") as f:  # each child appends a line
            f.write("x\n")
        time.sleep(0.3)
        return b"body"

    async def scenario() -> list[bytes]:
        r = ForkedRenderer(render)
        return await asyncio.gather(r(), r(), r())

    assert asyncio.run(scenario()) == [b"body"] * 3
    assert marker.read_text() == "x\n"


def test_a_failing_render_raises_with_its_reason():
    def render() -> bytes:
        raise ValueError("ledger exploded")

    with pytest.raises(ScrapeError, match="ledger exploded"):
        asyncio.run(ForkedRenderer(render)())


def test_a_hung_render_is_killed_after_the_timeout():
    with pytest.raises(ScrapeError, match="killed"):
        asyncio.run(ForkedRenderer(lambda: (time.sleep(30), b"")[1], timeout=0.5)())


def test_inline_mode(monkeypatch):
    monkeypatch.setenv("SLAMON_SCRAPE_INLINE", "1")
    r = ForkedRenderer(lambda: b"inline")
    assert not r.fork and asyncio.run(r()) == b"inline"
