"""`--jobs N`: a replay (and `slamon report`'s review) split across processes, with the output of one process byte
for byte.

The input is read once, here, and streamed in chunks of `CHUNK` lines (bounded memory: at most `QUEUE_CHUNKS` chunks
wait per job). Every chunk goes to every job at once, each job getting its lines of it, so no job waits for lines
another job's chunk holds back.

**A replay splits by item** (`replay`): a ticket's events go to the job `crc32(ticket_id) % N`, a call's to
`crc32(call_id) % N`; probes, surveys and audits go to their client's *reporter* job (clients in contract order,
round robin). A duplicate is a resend of the same event, with the same item, so it lands where its original did.
The reading process places every line (`ItemRouter`): compiled in native/router when built, the Python here being the
reference. Items are independent in the engine, so each job's tickets and calls are exact; what ties a client's items
together is handled here:

- **Lateness** depends on the client's newest accepted event time over *all* its events. Reading the lines, this
  process keeps per client the newest event time of any line that may be accepted (an upper bound of the true
  watermark) and flags the few lines older than it by more than the allowed lateness. A job decides an unflagged
  line as one process would (its own watermark, from its own events, is a lower bound: it can reject nothing the
  true one accepts). For a flagged line that its own watermark does not already reject, the job asks the other jobs
  for their newest accepted event time of the client among their lines before that one (`_Peers`), and rejects
  against the exact watermark.
- **The report**: each job advances to the common instant; per client the other jobs send the reporter their
  ledgers (`SlaLedger.merge`: counts and latency-sketch buckets are integers, breach lists are sorted by the report),
  their open clocks (summed) and their waiting calls; the reporter builds the client's records. Uptime needs no
  merge: every probe of a client is on its reporter.

**The review splits by client** (`review`, `slamon report --jobs`): the review engine's tables per queue and channel,
breach facts and open-ticket lists would need a merge of their own; its clients are placed on jobs by their share of
the first `ROUTE_SAMPLE` lines (largest first, on the least-loaded job).

What a split cannot see: an `event_id` reused by a different ticket or call (not a resend) is judged per job (and per
client in the review), as in the live workers, which partition by client; and the compaction of each job's engine
runs at its own times, so a repeat older than the lateness horizon may count as `late` in one run and as a duplicate
in another (README "Duplicates and the horizon").
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import queue
import re
import resource
import threading
import zlib
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial
from itertools import islice
from multiprocessing.connection import Connection, wait

import orjson

from monitor import compiled_replay
from monitor.compiled import compiled_module
from monitor.compiled_replay import CompiledLoop
from monitor.contracts import Contracts
from monitor.engine import Engine, PipelineStats
from monitor.events import INVALID, Rejection, decode_event, to_us
from monitor.gc_tuning import tune_gc
from monitor.ledger import BUCKET_US, SlaLedger
from monitor.queries import OpenClocks, open_clocks
from monitor.replay import ReplayResult, ReplayTally, replay_lines, replay_result
from monitor.report import SOON_US, Record, build_report
from monitor.review.figures import Review, ReviewError, build_review, not_begun
from monitor.review.groups import ReviewEngine

# The reader's router: the compiled one (native/router) when built, unless SLAMON_ROUTER=python asks for the reference
_router, COMPILED_ROUTER = compiled_module("slamon._router", "SLAMON_ROUTER")

ROUTE_SAMPLE = 20_000  # the review's client placement
CHUNK = 4_096  # lines per chunk
QUEUE_CHUNKS = 8  # chunks waiting per job at most
# How far (in lines) two jobs can be apart: the reader is at most QUEUE_CHUNKS (+ one being sent, one in the pipe)
# chunks ahead of the slowest job. A job keeps its watermark history this far back for the others' questions.
SPREAD = (QUEUE_CHUNKS + 6) * CHUNK
HISTORY_TRIM = 4_096  # a client's watermark history is trimmed (to SPREAD lines back) past this many entries
last_jobs_cpu_s: list[float] = []  # CPU seconds (user + system) of each job of the last run (bench/replay.py)


def default_jobs(by_items: bool = True) -> int:
    """The cores this process may run on; for a replay split by item with the compiled engine, one process on two
    cores or fewer: there the reader's process costs as much as the second job saves (bench/RESULTS.md: `--jobs 2`
    0.9x of one compiled process on two cores)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if by_items and compiled_replay.IN_USE and cores <= COMPILED_MIN_CORES:
        return 1
    return cores


COMPILED_MIN_CORES = 2  # at most this many cores: the compiled replay runs in one process by default


def replay(lines: Iterable[bytes], contracts: Contracts, at_us: int | None = None, jobs: int = 1) -> ReplayResult:
    """`replay_lines` on `jobs` processes (one: in this process), split by item."""
    if jobs <= 1:
        return replay_lines(lines, contracts, at_us)
    with _Jobs(jobs, contracts, at_us, by_items=True) as pool:
        return pool.run(lines)[0]


def review(lines: Iterable[bytes], contracts: Contracts, at_us: int, month: str, clients: list[str] | None = None,
           trend: int = 1, jobs: int = 1) -> tuple[ReplayResult, Review]:
    """The replay and the monthly review of `slamon report` on `jobs` processes, split by client: each job replays
    its clients' events on a `ReviewEngine` and builds their part of the review; the first instant the figures hold
    (which marks partial periods) is the earliest over all jobs, as one engine would see it."""
    if jobs <= 1 or len(contracts.clients) <= 1:
        engine = ReviewEngine(contracts)
        result = replay_lines(lines, contracts, at_us, engine)
        return result, build_review(result, engine, month, clients, trend=trend)
    with _Jobs(min(jobs, len(contracts.clients)), contracts, at_us, by_items=False, engine_class=ReviewEngine,
               part=partial(_review_part, month=month, clients=clients, trend=trend)) as pool:
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


# --- the reading process ------------------------------------------------------------------------------------------

class _Jobs:
    def __init__(self, n: int, contracts: Contracts, at_us: int | None, *, by_items: bool,
                 engine_class: type[Engine] = Engine, part: Callable | None = None) -> None:
        # The children inherit the parsed contracts. Lines this process holds *before* the fork (a list in memory)
        # are shared copy-on-write: touching one costs this process a page copy (one page fault per line, measured
        # ~5 µs); lines read from a file after the fork (the command line) cost nothing of the kind.
        ctx = mp.get_context("fork")
        self.n, self.contracts, self.at_us, self.by_items = n, contracts, at_us, by_items
        self.lateness = {name: contracts.lateness_us(name) for name in contracts.clients}
        # client -> the job that reports it (and, split by item, gets its probes, surveys and audits)
        self.owner: dict[str | None, int] = {}
        if by_items:
            self.owner = {name: i % n for i, name in enumerate(contracts.clients)}
        self.load = [0] * n
        peer_ends: dict[tuple[int, int], Connection] = {}
        for i in range(n):
            for j in range(i + 1, n):
                peer_ends[(i, j)], peer_ends[(j, i)] = ctx.Pipe()
        self.conns: list[Connection] = []
        self.procs = []
        for i in range(n):
            mine, theirs = ctx.Pipe()
            peers = {j: peer_ends[(i, j)] for j in range(n) if j != i}
            proc = ctx.Process(target=_job, args=(theirs, peers, i, contracts, at_us, by_items, engine_class, part),
                               daemon=True)
            proc.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(proc)
        for end in peer_ends.values():
            end.close()
        self.queues: list[queue.Queue] = [queue.Queue(QUEUE_CHUNKS) for _ in range(n)]
        self.feeders = [threading.Thread(target=_feed, args=(q, conn), daemon=True)
                        for q, conn in zip(self.queues, self.conns, strict=True)]
        for feeder in self.feeders:
            feeder.start()
        self.numbers: list[list[int]] = [[] for _ in range(n)]
        self.parts: list[list[bytes]] = [[] for _ in range(n)]
        self.flagged: list[list[int]] = [[] for _ in range(n)]

    def __enter__(self) -> _Jobs:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        for q in self.queues:  # a feeder still running (an error on the way) stops at None
            with contextlib.suppress(queue.Full):
                q.put_nowait(None)
        for proc in self.procs:
            if exc_type is None:
                proc.join(5)  # the jobs end by themselves once they have sent their results
            if proc.is_alive():
                proc.kill()
            proc.join()

    def run(self, lines: Iterable[bytes]) -> tuple[ReplayResult, list]:
        count = self._route_items(lines) if self.by_items else self._route_clients(lines)
        self._chunk(count)
        for q in self.queues:
            q.put(None)
        for feeder in self.feeders:
            feeder.join()
        return self._finish(count)

    def _route_items(self, lines: Iterable[bytes]) -> int:
        router = ItemRouter(self.n, self.owner, self.lateness, self.at_us)
        return router.route(lines, self.numbers, self.parts, self.flagged, self._chunk)

    def _route_clients(self, lines: Iterable[bytes]) -> int:
        sample: list[tuple[int, bytes, str | None]] = []
        count = 0
        placed = False
        for count, line in enumerate(lines, 1):
            if placed and count % CHUNK == 0:
                self._chunk(count - 1)
            if not line.strip():
                continue
            if placed:
                self._route(count, line)
                continue
            sample.append((count, line, client_of(line)))
            if len(sample) == ROUTE_SAMPLE:
                self._place(sample)
                placed = True
        if not placed:
            self._place(sample)
        return count

    def _place(self, sample: list[tuple[int, bytes, str | None]]) -> None:
        """The review: clients on jobs, largest share first onto the least-loaded job; then the sampled lines go
        out."""
        shares = Counter(client for _, _, client in sample)
        for client, lines in sorted(shares.items(), key=lambda kv: (-kv[1], kv[0] or "")):
            job = self.load.index(min(self.load))
            self.owner[client] = job
            self.load[job] += lines
        for number, line, _ in sample:
            self._route(number, line)

    def _route(self, number: int, line: bytes) -> None:
        client = client_of(line)
        job = self.owner.get(client)
        if job is None:  # a client first seen after the sample
            job = self.owner[client] = self.load.index(min(self.load))
        self.load[job] += 1
        self.numbers[job].append(number)
        self.parts[job].append(line)

    def _chunk(self, end: int) -> None:
        """Every job gets its lines of the chunk up to line `end` (maybe none: it learns how far the input has
        gone)."""
        for job in range(self.n):
            self.queues[job].put((end, self.numbers[job], self.parts[job], self.flagged[job]))
            self.numbers[job], self.parts[job], self.flagged[job] = [], [], []

    def _finish(self, count: int) -> tuple[ReplayResult, list]:
        reports = [conn.recv() for conn in self.conns]  # (newest event time, first bucket) per job
        at = self.at_us if self.at_us is not None else max(max(newest for newest, _ in reports), 0)
        firsts = [first for _, first in reports if first is not None]
        data_start = min(firsts) if firsts else at // BUCKET_US * BUCKET_US  # as one engine's ledgers give it
        owned: list[list[str]] = [[] for _ in self.conns]
        for name in self.contracts.clients:
            owned[self.owner.get(name, 0)].append(name)
        for conn, names in zip(self.conns, owned, strict=True):
            conn.send((at, names, owned, data_start))
        # Split by item: what each job sends each reporter (pickled there, forwarded as bytes)
        outgoing = [conn.recv() for conn in self.conns]
        for j, conn in enumerate(self.conns):
            conn.send([out[j] for i, out in enumerate(outgoing) if i != j and out and out[j] is not None])
        by_client: dict[str, list[Record]] = {}
        stats, tally, orphans, parts = PipelineStats(), ReplayTally(lines=count), 0, []
        last_jobs_cpu_s.clear()
        for conn in self.conns:
            records, job_stats, job_orphans, job_tally, part, cpu_s = conn.recv()
            last_jobs_cpu_s.append(cpu_s)
            for rec in records:
                by_client.setdefault(rec.client, []).append(rec)
            stats.merge(job_stats)
            tally.merge(job_tally)
            orphans += job_orphans
            parts.append(part)
        records = [rec for name in self.contracts.clients for rec in by_client.get(name, ())]
        return replay_result(_Totals(stats, orphans), tally, at, records), parts


class ItemRouter:
    """The reader's split by item: a ticket's or call's line to the job of its id, any other of a known client to
    the client's reporter, the rest to job 0 (rejected wherever it goes); a known client's event time raises its
    newest, or flags the line if it is older than that by more than the allowed lateness (the job settles it
    exactly). This process reads every line and its time is taken from the jobs' cores: the compiled router does it
    when built (native/router); the Python one here is the reference, and a property test holds them together."""

    def __init__(self, n: int, owner: dict[str, int], lateness: dict[str, int], at_us: int | None, *,
                 compiled: bool | None = None) -> None:
        self.n, self.owner, self.lateness, self.at_us = n, owner, lateness, at_us
        self.compiled = COMPILED_ROUTER if compiled is None else compiled
        self.newest: dict[str, int] = {}  # client -> newest event time of a line that may be accepted

    def route(self, lines: Iterable[bytes], numbers: list[list[int]], parts: list[list[bytes]],
              flagged: list[list[int]], chunk: Callable[[int], None]) -> int:
        """Lines appended to their job's `numbers` (1-based) and `parts`, maybe-late ones to `flagged`; `chunk(end)`
        is called before every CHUNK-th line. Returns the count of lines."""
        if not self.compiled:
            return self._route_python(lines, numbers, parts, flagged, chunk)
        router = _router.Router(self.n, [(name, job, self.lateness[name]) for name, job in self.owner.items()],
                                self.at_us, partial(_line_fields, owner=self.owner),
                                partial(_event_time, owner=self.owner))
        it, count, size = iter(lines), 0, CHUNK - 1
        while batch := list(islice(it, size)):
            if count:
                chunk(count)
            router.route(batch, count + 1, numbers, parts, flagged)
            count += len(batch)
            size = CHUNK
        self.newest = router.newest
        return count

    def _route_python(self, lines, numbers, parts, flagged, chunk) -> int:
        count = 0
        for count, line in enumerate(lines, 1):
            if count % CHUNK == 0:
                chunk(count - 1)
            fields = _line_fields(line, self.owner)
            if fields is None:
                continue
            client, item, ts = fields
            job = 0
            if client is not None:
                job = zlib.crc32(item.encode()) % self.n if item is not None else self.owner[client]
                if ts is not None and (self.at_us is None or ts <= self.at_us):
                    last = self.newest.get(client)
                    if last is None or ts > last:
                        self.newest[client] = ts
                    elif ts < last - self.lateness[client]:
                        flagged[job].append(count)
            numbers[job].append(count)
            parts[job].append(line)
        return count


def _feed(q: queue.Queue, conn: Connection) -> None:
    """A job's chunks, sent from a thread so that one busy job never holds the reader (and the others) back."""
    failed = False
    while (item := q.get()) is not None:
        if failed:
            continue
        try:
            conn.send(item)
        except OSError:  # the job died: the reader learns it from the pipe (EOFError) at the end
            failed = True
    if not failed:
        with contextlib.suppress(OSError):
            conn.send(None)


_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")
_MINUTES: dict[str, int] = {}  # "2026-11-02T10:04" -> its µs (UTC), for the common form of event times


def _ts_us(text: str) -> int | None:
    """Event time in µs of the forms above; exactly what the decoder gives (a unit test compares them)."""
    if len(text) == 24 and text[23] == "Z" and text[19] == "." and text[16] == ":":  # 2026-11-02T10:04:05.123Z
        minute = _MINUTES.get(text[:16])
        if minute is None:
            if not _TS.fullmatch(text):
                return None
            try:
                minute = to_us(datetime.fromisoformat(text[:16] + "Z"))
            except ValueError:
                return None
            if len(_MINUTES) > 100_000:
                _MINUTES.clear()
            _MINUTES[text[:16]] = minute
        seconds, millis = text[17:19], text[20:23]
        if seconds.isascii() and seconds.isdigit() and millis.isascii() and millis.isdigit() and seconds < "60":
            return minute + int(seconds) * 1_000_000 + int(millis) * 1_000
        return None
    if not _TS.fullmatch(text):
        return None
    try:
        return to_us(datetime.fromisoformat(text))
    except ValueError:
        return None


def _decoded_ts(line: bytes, clients) -> int | None:
    event = decode_event(line, clients)
    return None if isinstance(event, Rejection) else event.ts_us


def _line_fields(line: bytes, owner: dict) -> tuple[str | None, str | None, int | None] | None:
    """What the reader needs of a line: None for a blank one; else its client (None unless one of `owner`'s), its
    item (a ticket's or call's id, if a string) and its event time (None if it has none)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None if not line.strip() else (None, None, None)
    client = obj.get("client") if type(obj) is dict else None
    if type(client) is not str or client not in owner:
        return None, None, None
    kind = obj.get("kind")
    item = obj.get("ticket_id") if kind == "ticket" else obj.get("call_id") if kind == "call" else None
    ts = obj.get("ts")
    return client, item if type(item) is str else None, _event_time(ts if type(ts) is str else None, line, owner)


def _event_time(text: str | None, line: bytes, owner: dict) -> int | None:
    """A known client's line's event time: from its `ts` text if of a form `_ts_us` reads, else as decoded."""
    ts = _ts_us(text) if text is not None else None
    return _decoded_ts(line, owner) if ts is None else ts


class _Totals:
    """The merged counts of the jobs' engines, shaped as `replay_result` reads an engine."""

    def __init__(self, stats: PipelineStats, orphans: int) -> None:
        self.stats, self._orphans = stats, orphans

    def orphan_events(self) -> int:
        return self._orphans


# --- a job --------------------------------------------------------------------------------------------------------

class _Peers:
    """What a job tells the other jobs: its newest accepted event time of a client among its lines before a line,
    once it has handled all its lines before that one."""

    def __init__(self, conns: dict[int, Connection]) -> None:
        self.conns = conns
        self.by_conn = {conn: j for j, conn in conns.items()}
        self.done = 0  # every own line up to this one is handled
        self.finished: set[int] = set()
        self.pending: list[tuple[Connection, str, int]] = []
        self.lines: dict[str, list[int]] = {}  # client -> the lines where this job's newest accepted time rose
        self.times: dict[str, list[int]] = {}  # ... and that time
        self.trimmed: dict[str, bool] = {}

    def accepted(self, client: str, line: int, ts: int) -> None:
        times = self.times.get(client)
        if times is None:
            self.lines[client], times = [], self.times.setdefault(client, [])
        if not times or ts > times[-1]:
            self.lines[client].append(line)
            times.append(ts)

    def newest_before(self, client: str, line: int) -> int | None:
        lines = self.lines.get(client)
        if not lines:
            return None
        i = bisect_left(lines, line)
        if i == 0:
            if client in self.trimmed:  # cannot happen (see SPREAD): never answer wrong
                raise RuntimeError(f"watermark history of {client} trimmed past line {line}")
            return None
        return self.times[client][i - 1]

    def handled(self, line: int, trim: bool = True) -> None:
        """Every own line up to `line` is handled: answer what waited for it, forget history no one can ask."""
        self.done = line
        if self.pending:
            waiting, self.pending = self.pending, []
            for conn, client, asked in waiting:
                self._answer(conn, client, asked)
        if not trim:
            return
        cut = line - SPREAD
        for client, lines in self.lines.items():
            if len(lines) > HISTORY_TRIM and lines[0] < cut:
                i = bisect_left(lines, cut) - 1
                if i > 0:
                    self.trimmed[client] = True
                    del lines[:i]
                    del self.times[client][:i]

    def _answer(self, conn: Connection, client: str, asked: int) -> None:
        if asked - 1 <= self.done:
            conn.send(("a", self.newest_before(client, asked)))
        else:
            self.pending.append((conn, client, asked))

    def serve(self, conn: Connection, answers: dict[int, int | None] | None = None) -> None:
        msg = conn.recv()
        if msg[0] == "q":
            self._answer(conn, msg[1], msg[2])
        elif msg[0] == "a" and answers is not None:
            answers[self.by_conn[conn]] = msg[1]
        elif msg[0] == "done":
            self.finished.add(self.by_conn[conn])

    def ask(self, client: str, line: int) -> list[int]:
        """The other jobs' newest accepted event times of `client` among their lines before `line` (this job is at
        `line`: it answers their questions about earlier lines meanwhile)."""
        self.handled(line - 1)
        for conn in self.conns.values():
            conn.send(("q", client, line))
        answers: dict[int, int | None] = {}
        while len(answers) < len(self.conns):
            for conn in wait(list(self.conns.values())):
                if conn.poll():
                    self.serve(conn, answers)
        return [a for a in answers.values() if a is not None]

    def finish(self) -> None:
        """All input handled: tell the others, answer them until they are all done too."""
        self.handled(1 << 62, trim=False)  # the others may still ask about any line they have not reached
        for conn in self.conns.values():
            conn.send(("done",))
        while len(self.finished) < len(self.conns):
            for conn in wait(list(self.conns.values())):
                if conn.poll():
                    self.serve(conn)


def _job(conn: Connection, peer_conns: dict[int, Connection], me: int, contracts: Contracts, at_us: int | None,
         by_items: bool, engine_class: type[Engine], part: Callable | None) -> None:
    tune_gc()  # as the command line does for one process
    tally, peers = ReplayTally(), _Peers(peer_conns)
    if compiled_replay.IN_USE and (engine_class is Engine or getattr(engine_class, "compiled_review", False)):
        engine = _compiled_job(conn, peers, engine_class(contracts), contracts, at_us, by_items, tally)
    else:
        engine = _python_job(conn, peers, engine_class(contracts), contracts, at_us, by_items, tally)
    first = min((b for lg in engine.ledgers.values() for b in lg.buckets), default=None)
    conn.send((engine.now_us, None if first is None else first * BUCKET_US))
    at, names, owned, data_start = conn.recv()
    engine.advance_to(at)
    live = open_clocks(engine, at, (SOON_US,))
    if by_items:
        conn.send([None if j == me else pickle.dumps(_share(engine, at, live, theirs), pickle.HIGHEST_PROTOCOL)
                   for j, theirs in enumerate(owned)])
        shares = [pickle.loads(raw) for raw in conn.recv()]
        _absorb(engine, live, shares)
    else:
        conn.send(None)
        conn.recv()
    records = build_report(engine, at, clients=names, live=live)
    extra = None
    if part is not None:
        extra = part(engine, replay_result(engine, tally, at, records), names, data_start)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    conn.send((records, engine.stats, engine.orphan_events(), tally, extra, usage.ru_utime + usage.ru_stime))
    conn.close()


def _python_job(conn: Connection, peers: _Peers, engine: Engine, contracts: Contracts, at_us: int | None,
                by_items: bool, tally: ReplayTally) -> Engine:
    """A job's lines through the Python engine (the reference; a review's engine)."""
    clients, stats, seen = contracts.clients, engine.stats, engine.seen
    lateness = {name: contracts.lateness_us(name) for name in clients}
    for end, numbers, lines, flagged in _chunks(conn, peers):
        flagged = set(flagged)
        for number, line in zip(numbers, lines, strict=True):
            tally.lines = number
            event = decode_event(line, clients)
            if isinstance(event, Rejection):
                tally.reject(number, event)
                continue
            ts = event.ts_us
            if at_us is not None and ts > at_us:
                tally.after_at += 1
                continue
            if by_items and number in flagged:
                _settle_watermark(engine, peers, event, number, lateness[event.client])
            duplicates = stats.duplicates
            problem = engine.ingest(event)
            if problem is not None:
                tally.reject(number, problem)
            if by_items and stats.duplicates == duplicates and (
                    problem is None or (problem.reason == INVALID and event.event_id in seen)):
                peers.accepted(event.client, number, ts)  # passed dedupe and lateness: the watermark has it
        peers.handled(end)
    peers.finish()
    return engine


def _compiled_job(conn: Connection, peers: _Peers, shell: Engine, contracts: Contracts, at_us: int | None,
                  by_items: bool, tally: ReplayTally) -> Engine:
    """A job's lines through the compiled loop (monitor/compiled_replay.py), handed back to `shell`; split by item,
    it asks `peers` for a flagged line's watermark and tells them what it accepted, as `_python_job` does."""
    loop = CompiledLoop(contracts, tally, shell)

    def settle(client: str, number: int, own: int | None) -> int | None:
        newest = peers.ask(client, number)
        if own is not None:
            newest.append(own)
        return max(newest) if newest else None

    def accepted(batch: list[tuple[str, int, int]]) -> None:
        for client, number, ts in batch:
            peers.accepted(client, number, ts)

    for end, numbers, lines, flagged in _chunks(conn, peers):
        if numbers:
            tally.after_at += (loop.native.feed_job(numbers, lines, flagged, at_us, settle, accepted) if by_items
                               else loop.native.feed_job(numbers, lines, [], at_us))
            tally.lines = numbers[-1]
        peers.handled(end)
    peers.finish()
    return loop.engine()


def _chunks(conn: Connection, peers: _Peers):
    """The job's chunks as they arrive, the other jobs' questions answered meanwhile (a question answered in
    `ask` is gone by then); a peer's message left unread at the end is served by `peers.finish`."""
    inputs = [conn, *peers.conns.values()]
    while True:
        ready = wait(inputs)
        for peer in ready:
            if peer is not conn and peer.poll():
                peers.serve(peer)
        if conn in ready:
            chunk = conn.recv()
            if chunk is None:
                return
            yield chunk


def _settle_watermark(engine: Engine, peers: _Peers, event, number: int, lateness_us: int) -> None:
    """A line the reader flagged as maybe late: unless this job's own watermark (a lower bound) already rejects it,
    set the exact one (the newest accepted event time of the client over every job's lines before this one)."""
    client = event.client
    own = engine.watermarks.get(client)
    if own is not None and event.ts_us < own - lateness_us:
        return
    newest = peers.ask(client, number)
    if own is not None:
        newest.append(own)
    if newest:
        engine.watermarks[client] = max(newest)


def _share(engine: Engine, at: int, live: dict[tuple[str, str], OpenClocks], clients: list[str]) -> dict:
    """What a reporter of `clients` needs from this job: ledgers, open clocks, waiting calls."""
    wanted = set(clients)
    return {
        "ledgers": {key: lg for key, lg in engine.ledgers.items() if key[0] in wanted and _holds(lg)},
        "live": {key: clocks for key, clocks in live.items() if key[0] in wanted},
        "calls": {key: item for key, item in engine.calls.items()
                  if key[0] in wanted and item.state.waiting and item.state.offered_us <= at},
    }


def _holds(ledger: SlaLedger) -> bool:
    return bool(ledger.periods or ledger.buckets or ledger.sketches or ledger.breaches)


def _absorb(engine: Engine, live: dict[tuple[str, str], OpenClocks], shares: list[dict]) -> None:
    """The reporter merges the other jobs' shares of its clients into its engine and `live`."""
    for share in shares:
        for key, ledger in share["ledgers"].items():
            engine.ledgers[key].merge(ledger)
        for key, clocks in share["live"].items():
            _add_clocks(live.setdefault(key, OpenClocks()), clocks)
        engine.calls.update(share["calls"])


def _add_clocks(mine: OpenClocks, other: OpenClocks) -> None:
    mine.count += other.count
    for name in ("by_priority", "stages", "due"):
        table = getattr(mine, name)
        for key, n in getattr(other, name).items():
            table[key] += n
    if other.next_deadline_us is not None and (mine.next_deadline_us is None
                                               or other.next_deadline_us < mine.next_deadline_us):
        mine.next_deadline_us = other.next_deadline_us


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
