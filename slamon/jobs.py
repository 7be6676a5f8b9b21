"""`--jobs N`: a replay split across processes by client, the way the live workers split the stream.

The input is read once, here, and streamed: each line goes to the job that owns its client (found without
decoding the whole event), in batches. Every job runs the same `Engine` on its clients' events, reports them at
the common instant, and sends back its records and counts; the result is the one `replay_lines` gives in one
process. Clients are placed on jobs by their share of the first `ROUTE_SAMPLE` lines (largest first, on the
least-loaded job), so one large client does not share a core with the next one.

A client's events never span two jobs, so every figure is exact. What a split cannot see: an `event_id` reused
by two clients counts once per client, as it does in the live workers (which partition by client too).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import Counter
from collections.abc import Iterable
from multiprocessing.connection import Connection

import orjson

from monitor.contracts import Contracts
from monitor.engine import Engine, PipelineStats
from monitor.replay import ReplayResult, ReplayTally, ingest_lines, replay_lines, replay_result
from monitor.report import Record, build_report

ROUTE_SAMPLE = 20_000
BATCH = 2_000


def default_jobs() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def replay(lines: Iterable[bytes], contracts: Contracts, at_us: int | None = None, jobs: int = 1) -> ReplayResult:
    """`replay_lines` on `jobs` processes (one: in this process)."""
    if jobs <= 1 or len(contracts.clients) <= 1:
        return replay_lines(lines, contracts, at_us)
    with _Jobs(min(jobs, len(contracts.clients)), contracts, at_us) as pool:
        return pool.run(lines)


class _Jobs:
    def __init__(self, n: int, contracts: Contracts, at_us: int | None) -> None:
        ctx = mp.get_context("fork")  # the children inherit the parsed contracts
        self.contracts, self.at_us = contracts, at_us
        self.conns: list[Connection] = []
        self.procs = []
        for _ in range(n):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_job, args=(theirs, contracts, at_us), daemon=True)
            proc.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(proc)
        self.owner: dict[str | None, int] = {}
        self.load = [0] * n
        self.batches: list[list[tuple[int, bytes]]] = [[] for _ in range(n)]

    def __enter__(self) -> _Jobs:
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
            proc.join()

    def run(self, lines: Iterable[bytes]) -> ReplayResult:
        sample: list[tuple[int, bytes, str | None]] = []
        count = 0
        for count, line in enumerate(lines, 1):
            if not line.strip():
                continue
            client = client_of(line)
            if len(sample) < ROUTE_SAMPLE:
                sample.append((count, line, client))
                if len(sample) == ROUTE_SAMPLE:
                    self._place(sample)
                continue
            self._send(count, line, client)
        if len(sample) < ROUTE_SAMPLE:
            self._place(sample)
        for job in range(len(self.conns)):
            self._flush(job)
            self.conns[job].send(None)
        return self._finish(count)

    def _place(self, sample: list[tuple[int, bytes, str | None]]) -> None:
        """Clients on jobs, largest share first onto the least-loaded job; then the sampled lines go out."""
        shares = Counter(client for _, _, client in sample)
        for client, lines in sorted(shares.items(), key=lambda kv: (-kv[1], kv[0] or "")):
            job = self.load.index(min(self.load))
            self.owner[client] = job
            self.load[job] += lines
        for number, line, client in sample:
            self._send(number, line, client)

    def _send(self, number: int, line: bytes, client: str | None) -> None:
        job = self.owner.get(client)
        if job is None:  # a client first seen after the sample
            job = self.owner[client] = self.load.index(min(self.load))
        self.load[job] += 1
        batch = self.batches[job]
        batch.append((number, line))
        if len(batch) >= BATCH:
            self._flush(job)

    def _flush(self, job: int) -> None:
        if self.batches[job]:
            self.conns[job].send(self.batches[job])
            self.batches[job] = []

    def _finish(self, count: int) -> ReplayResult:
        newest = max(conn.recv() for conn in self.conns)
        at = self.at_us if self.at_us is not None else max(newest, 0)
        owned: list[list[str]] = [[] for _ in self.conns]
        for name in self.contracts.clients:
            owned[self.owner.get(name, 0)].append(name)
        for conn, names in zip(self.conns, owned, strict=True):
            conn.send((at, names))
        by_client: dict[str, list[Record]] = {}
        stats, tally, orphans = PipelineStats(), ReplayTally(lines=count), 0
        for conn in self.conns:
            records, job_stats, job_orphans, job_tally = conn.recv()
            for rec in records:
                by_client.setdefault(rec.client, []).append(rec)
            stats.merge(job_stats)
            tally.merge(job_tally)
            orphans += job_orphans
        records = [rec for name in self.contracts.clients for rec in by_client.get(name, ())]
        return replay_result(_Totals(stats, orphans), tally, at, records)


class _Totals:
    """The merged counts of the jobs' engines, shaped as `replay_result` reads an engine."""

    def __init__(self, stats: PipelineStats, orphans: int) -> None:
        self.stats, self._orphans = stats, orphans

    def orphan_events(self) -> int:
        return self._orphans


def _job(conn: Connection, contracts: Contracts, at_us: int | None) -> None:
    engine, tally = Engine(contracts), ReplayTally()
    while (batch := conn.recv()) is not None:
        ingest_lines(batch, engine, at_us, tally)
    conn.send(engine.now_us)
    at, clients = conn.recv()
    records = build_report(engine, at, clients=clients)
    conn.send((records, engine.stats, engine.orphan_events(), tally))
    conn.close()


def client_of(line: bytes) -> str | None:
    """The event's `client`, read without decoding the whole line (None when it has none). The fast path takes
    the one `"client": "<plain text>"` pair; anything else (escapes, the word twice) is decoded in full."""
    key = line.find(b'"client"')
    if key < 0 or line.find(b'"client"', key + 8) >= 0:
        return _client_decoded(line)
    colon = _skip_space(line, key + 8)
    if colon >= len(line) or line[colon] != 0x3A:  # ':'
        return _client_decoded(line)
    start = _skip_space(line, colon + 1)
    if start >= len(line) or line[start] != 0x22:  # '"'
        return _client_decoded(line)
    end = line.find(b'"', start + 1)
    value = line[start + 1:end]
    if end < 0 or b"\\" in value:
        return _client_decoded(line)
    try:
        return value.decode()
    except UnicodeDecodeError:
        return None


def _skip_space(line: bytes, i: int) -> int:
    while i < len(line) and line[i] in b" \t\r\n":
        i += 1
    return i


def _client_decoded(line: bytes) -> str | None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    client = obj.get("client") if isinstance(obj, dict) else None
    return client if isinstance(client, str) else None
