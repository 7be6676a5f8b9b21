"""`--jobs N`: a replay (and `slamon report`'s review) split across processes by client, the way the live workers
split the stream.

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
from collections.abc import Callable, Iterable
from functools import partial
from multiprocessing.connection import Connection

import orjson

from monitor.contracts import Contracts
from monitor.engine import Engine, PipelineStats
from monitor.ledger import BUCKET_US
from monitor.replay import ReplayResult, ReplayTally, ingest_lines, replay_lines, replay_result
from monitor.report import Record, build_report
from monitor.review.figures import Review, ReviewError, build_review, not_begun
from monitor.review.groups import ReviewEngine

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
        return pool.run(lines)[0]


def review(lines: Iterable[bytes], contracts: Contracts, at_us: int, month: str, clients: list[str] | None = None,
           trend: int = 1, jobs: int = 1) -> tuple[ReplayResult, Review]:
    """The replay and the monthly review of `slamon report` on `jobs` processes: each job replays its clients'
    events on a `ReviewEngine` and builds their part of the review; the first instant the figures hold (which
    marks partial periods) is the earliest over all jobs, as one engine would see it."""
    if jobs <= 1 or len(contracts.clients) <= 1:
        engine = ReviewEngine(contracts)
        result = replay_lines(lines, contracts, at_us, engine)
        return result, build_review(result, engine, month, clients, trend=trend)
    with _Jobs(min(jobs, len(contracts.clients)), contracts, at_us, ReviewEngine,
               partial(_review_part, month=month, clients=clients, trend=trend)) as pool:
        result, parts = pool.run(lines)
    wanted = clients or list(contracts.clients)
    by_name = {c.client: c for part in parts for c in part[0]}
    not_started = [name for name in wanted if name in {n for part in parts for n in part[1]}]
    reviews = [by_name[name] for name in wanted if name in by_name]
    if not reviews:
        raise not_begun(result.at_us, month, not_started, contracts)
    return result, Review(month=month, at_us=result.at_us, trend_months=trend, clients=reviews,
                          pipeline=result.pipeline(), not_started=not_started, data_start_us=parts[0][2])


def _review_part(engine: ReviewEngine, result: ReplayResult, names: list[str], data_start_us: int, *, month: str,
                 clients: list[str] | None, trend: int) -> tuple[list, list[str], int]:
    """A job's clients' part of the review: (client reviews, clients whose month has not begun, data start)."""
    mine = [name for name in (clients or names) if name in names]
    if not mine:
        return [], [], data_start_us
    try:
        part = build_review(result, engine, month, mine, trend=trend, data_start_us=data_start_us)
    except ReviewError:  # none of this job's clients has begun the month: the caller decides over all jobs
        return [], mine, data_start_us
    return part.clients, part.not_started, data_start_us


class _Jobs:
    def __init__(self, n: int, contracts: Contracts, at_us: int | None, engine_class: type[Engine] = Engine,
                 part: Callable | None = None) -> None:
        ctx = mp.get_context("fork")  # the children inherit the parsed contracts
        self.contracts, self.at_us = contracts, at_us
        self.conns: list[Connection] = []
        self.procs = []
        for _ in range(n):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_job, args=(theirs, contracts, at_us, engine_class, part), daemon=True)
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

    def run(self, lines: Iterable[bytes]) -> tuple[ReplayResult, list]:
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

    def _finish(self, count: int) -> tuple[ReplayResult, list]:
        reports = [conn.recv() for conn in self.conns]  # (newest event time, first bucket) per job
        at = self.at_us if self.at_us is not None else max(max(newest for newest, _ in reports), 0)
        firsts = [first for _, first in reports if first is not None]
        data_start = min(firsts) if firsts else at // BUCKET_US * BUCKET_US  # as one engine's ledgers give it
        owned: list[list[str]] = [[] for _ in self.conns]
        for name in self.contracts.clients:
            owned[self.owner.get(name, 0)].append(name)
        for conn, names in zip(self.conns, owned, strict=True):
            conn.send((at, names, data_start))
        by_client: dict[str, list[Record]] = {}
        stats, tally, orphans, parts = PipelineStats(), ReplayTally(lines=count), 0, []
        for conn in self.conns:
            records, job_stats, job_orphans, job_tally, part = conn.recv()
            for rec in records:
                by_client.setdefault(rec.client, []).append(rec)
            stats.merge(job_stats)
            tally.merge(job_tally)
            orphans += job_orphans
            parts.append(part)
        records = [rec for name in self.contracts.clients for rec in by_client.get(name, ())]
        return replay_result(_Totals(stats, orphans), tally, at, records), parts


class _Totals:
    """The merged counts of the jobs' engines, shaped as `replay_result` reads an engine."""

    def __init__(self, stats: PipelineStats, orphans: int) -> None:
        self.stats, self._orphans = stats, orphans

    def orphan_events(self) -> int:
        return self._orphans


def _job(conn: Connection, contracts: Contracts, at_us: int | None, engine_class: type[Engine],
         part: Callable | None) -> None:
    engine, tally = engine_class(contracts), ReplayTally()
    while (batch := conn.recv()) is not None:
        ingest_lines(batch, engine, at_us, tally)
    first = min((b for lg in engine.ledgers.values() for b in lg.buckets), default=None)
    conn.send((engine.now_us, None if first is None else first * BUCKET_US))
    at, clients, data_start = conn.recv()
    records = build_report(engine, at, clients=clients)
    extra = None
    if part is not None:
        extra = part(engine, replay_result(engine, tally, at, records), clients, data_start)
    conn.send((records, engine.stats, engine.orphan_events(), tally, extra))
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
