"""Reports from the SLA record: the replay's records and the monthly review, from the stored decisions.

    review = review_from_store("sqlite:///record.db", "2026-11", contracts)        # monitor.review.figures.Review
    records = records_from_store(store, contracts, at_us)                          # monitor.report.Record list

The store holds every decision in force with the ledger amounts the engine added for it, and keeps their
15-minute bucket tallies and latency-sketch counts (`store.records.sketch_key` is the bucket
`monitor.sketch.LogSketch` puts a sample in) up to date in the same transactions, so the ledgers of an engine
are rebuilt from those aggregates instead of from events: period tallies and buckets, sketches, breached items
(an index on the bad rows), and windows at any instant (a SUM over the decision instants: exact, the store keeps
every instant). The report code then runs unchanged, so a record
from the store equals the record of a replay whose engine holds the same decisions (tests/unit/test_store.py
compares them field by field).

What the store cannot give:
- uptime: measured from probes, which are not decisions; the review from the store leaves uptime SLAs out and
  says so;
- live figures of a current period (open tickets, stages reached, time to the next deadline): open items are
  not decisions: the review's open-ticket backlog is replaced by a sentence saying so (`BACKLOG_NOT_IN_STORE`);
- "as of" an earlier instant: the store holds the decisions in force now, with every correction made since (a
  reopened ticket's withdrawn "met", a late event). `slamon report EVENTS` replays only the events up to the
  review instant, so a correction after the month's end shows in the store's review and not in the replay's.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.contracts import TICKET_KINDS, Contracts, Rolling, TicketSla, UptimeSla
from monitor.engine import Engine
from monitor.ledger import BUCKET_US, DAY_US, Counts, SlaLedger, Tally, to_millionths
from monitor.replay import ReplayResult
from monitor.report import Record, _ledger_records
from monitor.review.figures import (
    DEFAULT_TREND,
    Review,
    ReviewError,
    build_review,
    display_names,
    month_window,
    parse_month,
    review_at,
    shift_month,
)
from monitor.review.groups import ReviewEngine
from monitor.sketch import LogSketch
from store.db import Store, open_store
from store.records import ZERO_KEY

LOOK_AHEAD_US = 40 * DAY_US  # the longest period (a month) that starts before the report instant ends within this
BACKLOG_NOT_IN_STORE = (
    "Not in this review: the open-ticket backlog. This review is built from the SLA records, which hold each "
    "ticket's outcome once it is settled (met, or breached at its deadline) but not whether the ticket is still "
    "open, so the number and age of open tickets cannot be given here. The review built from the ticket events "
    "shows them.")


@dataclass(slots=True)
class StoreLedger(SlaLedger):
    """A ledger whose periods, buckets, sketches and breaches were loaded from the store for a span of time, and
    whose windows are summed by the database (exact at any instant)."""

    source: Store | None = None

    def window(self, start_us: int, end_us: int) -> Tally:
        if end_us <= start_us:
            return Tally()
        d, g, b, t = self.source.query(
            "SELECT COALESCE(SUM(decided), 0), COALESCE(SUM(good), 0), COALESCE(SUM(bad), 0), "
            "COALESCE(SUM(total), 0) FROM sla_decisions WHERE client = ? AND sla = ? AND at_us >= ? AND at_us < ?",
            (self.client, self.sla, start_us, end_us))[0]
        return _row_tally(d, g, b, t)

    def window_counts(self, start_us: int, end_us: int) -> Counts:
        t = self.window(start_us, end_us)
        return Counts(t.decided, t.good, t.bad)


def _row_tally(decided, good, bad, total) -> Tally:
    """A tally from a row's sums: counts as the engine holds them, the summed seconds or points (SQL keeps them as
    floats) in whole millionths."""
    return Tally(_count(decided), _count(good), _count(bad), to_millionths(float(total)))


def _count(x) -> float:
    """A sum of item counts as the engine's tallies hold it: an int when whole (JSON `5`, not `5.0`)."""
    x = float(x)
    return int(x) if x.is_integer() else x


def _float(x) -> float | None:
    return None if x is None else float(x)


def without_uptime(contracts: Contracts) -> Contracts:
    """The contracts with their uptime SLAs left out (the store holds no probes)."""
    clients = {name: client.model_copy(update={"slas": tuple(s for s in client.slas if not isinstance(s, UptimeSla))})
               for name, client in contracts.clients.items()}
    return contracts.model_copy(update={"clients": clients})


def store_engine(store: Store, contracts: Contracts, lo_us: int, hi_us: int) -> Engine:
    """An engine with no items whose ledgers hold the store's decisions of the periods starting in [lo, hi):
    tallies and 15-minute buckets (table sla_buckets), sketches (sla_sketches), tallies per priority
    (sla_priorities) and breached items, and whose `groups` hold the tallies per queue and channel (sla_groups; see
    monitor.review.groups). A period cut by `lo` is left out."""
    engine = ReviewEngine(contracts)
    ledgers: dict[tuple[str, str], StoreLedger] = {}
    for name, client in contracts.clients.items():
        for sla in client.slas:
            if isinstance(sla, UptimeSla):
                continue
            ledgers[(name, sla.name)] = StoreLedger(name, sla.name, client.timezone, sla.period,
                                                    list_breaches=isinstance(sla, TicketSla), source=store)
    engine.ledgers = ledgers
    rolling = {key for key, lg in ledgers.items() if isinstance(lg.period, Rolling)}
    for client, sla, bucket, d, g, b, t in store.query(
            "SELECT client, sla, bucket, decided, good, bad, total FROM sla_buckets WHERE bucket >= ? AND bucket < ?",
            (-(-lo_us // BUCKET_US), -(-hi_us // BUCKET_US))):
        ledger = ledgers.get((client, sla))
        if ledger is None:  # an SLA the contracts no longer have
            continue
        tally = _row_tally(d, g, b, t)
        label = ledger._label(bucket * BUCKET_US)  # a bucket lies in one period: boundaries are on the 15-min grid
        ledger._tally(ledger.periods, label).merge(tally)
        ledger._tally(ledger.buckets, bucket).merge(tally)
    labels = set()
    for key, ledger in ledgers.items():  # a period that began before `lo` holds only part of its decisions here
        for label, window in list(ledger.windows.items()):
            if window.start_us < lo_us:
                del ledger.windows[label]
                ledger.periods.pop(label, None)
        labels.update((*key, label) for label in ledger.periods if key not in rolling)
    periods = sorted({label for _, _, label in labels})
    for start in range(0, len(periods), 500):
        chunk = periods[start:start + 500]
        for client, sla, period, key, n in store.query(
                "SELECT client, sla, period, sketch_key, n FROM sla_sketches WHERE period IN "
                f"({', '.join('?' * len(chunk))})", chunk):
            if (client, sla, period) in labels:
                _add_sketch(ledgers[(client, sla)], period, key, n)
    for start in range(0, len(periods), 500):
        chunk = periods[start:start + 500]
        for client, sla, period, priority, d, g, b, t in store.query(
                "SELECT client, sla, period, priority, decided, good, bad, total FROM sla_priorities WHERE period IN "
                f"({', '.join('?' * len(chunk))})", chunk):
            if (client, sla, period) in labels:
                ledgers[(client, sla)].by_priority[(period, priority)] = _row_tally(d, g, b, t)
    for start in range(0, len(periods), 500):
        chunk = periods[start:start + 500]
        for client, sla, period, dimension, name, d, g, b, t in store.query(
                "SELECT client, sla, period, dimension, name, decided, good, bad, total FROM sla_groups WHERE period "
                f"IN ({', '.join('?' * len(chunk))})", chunk):
            if (client, sla, period) in labels:
                engine.groups.setdefault((client, sla), {})[(period, dimension, name)] = _row_tally(d, g, b, t)
    if rolling:  # the engine's rolling sketch holds every decision
        for client, sla, _period, key, n in store.query(
                "SELECT client, sla, period, sketch_key, n FROM sla_sketches WHERE period = 'rolling'"):
            if (client, sla) in rolling:
                _add_sketch(ledgers[(client, sla)], "rolling", key, n)
    kinds = ", ".join(f"'{k}'" for k in TICKET_KINDS)
    for client, sla, period, at, item, priority, elapsed, target, paused in store.query(
            "SELECT client, sla, period, at_us, item, priority, elapsed_s, target_s, paused_s FROM sla_decisions "
            f"WHERE bad > 0 AND at_us >= ? AND at_us < ? AND item IS NOT NULL AND kind IN ({kinds}) "
            "ORDER BY at_us, item", (lo_us, hi_us)):
        ledger = ledgers.get((client, sla))
        if ledger is not None and ledger.list_breaches:
            ledger.breaches.setdefault(period, []).append((at, item))
            if priority is not None:
                engine.breach_priorities[(client, sla, item)] = priority
            engine.breach_facts[(client, sla, item)] = (_float(elapsed), _float(target), _float(paused))
    return engine


def _add_sketch(ledger: SlaLedger, label: str, key: int, n: int) -> None:
    sketch = ledger.sketches.get(label)
    if sketch is None:
        sketch = ledger.sketches[label] = LogSketch()
    sketch.count += n
    if key == ZERO_KEY:
        sketch.zeros += n
    else:
        sketch.buckets[key] = sketch.buckets.get(key, 0) + n


def records_from_store(store: Store, contracts: Contracts, at_us: int, since_us: int | None = None) -> list[Record]:
    """The report records (`slamon replay --at`) of every non-uptime SLA's periods that start in
    [since, at] (default: every period), from the decisions the store holds."""
    contracts = without_uptime(contracts)
    lo = since_us if since_us is not None else -(2**62)
    engine = store_engine(store, contracts, lo, at_us + LOOK_AHEAD_US)
    return _records(engine, contracts, at_us)


def _records(engine: Engine, contracts: Contracts, at_us: int) -> list[Record]:
    out = []
    for name, client in contracts.clients.items():
        for sla in client.slas:
            out.extend(_ledger_records(engine, engine.ledgers[(name, sla.name)], sla, at_us))
    return out


def review_from_store(url: str | Store, period: str, contracts: Contracts, clients: list[str] | None = None,
                      trend: int = DEFAULT_TREND, at_us: int | None = None) -> Review:
    """The monthly review of `period` (YYYY-MM) from the store at `url`: `slamon report --store URL`. The review
    instant is the end of the month's last contract period, or the newest decision the store holds if that is
    earlier (month to date); `at_us` overrides it."""
    parse_month(period)
    store = open_store(url) if isinstance(url, str) else url
    own = isinstance(url, str)
    try:
        if store.conn is None:
            store.connect()
        store.check_schema()
        newest = store.stats().get("newest_at_us")
        if newest is None:
            raise ReviewError(f"the store at {store.url} holds no decisions yet",
                              hint="run `slamon store run` against the SLA-events topic first")
        names = clients or list(contracts.clients)
        for name in names:
            if name not in contracts.clients:
                raise ReviewError(f"client {name!r} is not in the contracts (known: {', '.join(contracts.clients)})")
        at = at_us if at_us is not None else review_at(contracts, period, names, newest)
        first = shift_month(period, -(trend - 1))
        lo = min(month_window(first, contracts.clients[n].timezone).start_us for n in names) - 7 * DAY_US
        measured = without_uptime(contracts)
        engine = store_engine(store, measured, lo, at + LOOK_AHEAD_US)
        result = ReplayResult(at_us=at, records=_records(engine, measured, at))
        first_bucket = store.query("SELECT MIN(bucket) FROM sla_buckets")[0][0]
        review = build_review(result, engine, period, names, trend=trend,
                              data_start_us=None if first_bucket is None else first_bucket * BUCKET_US)
        stats = store.stats()
        review.pipeline = {"source": "store", "store": store.url, "at": result.pipeline()["at"],
                           "decisions": store.count(), "newest_at_us": stats.get("newest_at_us"),
                           "withdrawn": stats.get("withdrawn_records"),
                           "redelivered": stats.get("redelivered_records")}
        for cr in review.clients:
            shown = display_names(contracts.clients[cr.client].slas)
            left_out = [shown[s.name] for s in contracts.clients[cr.client].slas if isinstance(s, UptimeSla)]
            if left_out:
                cr.notes.append(f"Not in this review: {', '.join(left_out)} (uptime is measured from monitoring "
                                "probes, which are not part of the records this review is built from).")
            if any(s.backlog is not None for s in cr.slas):  # ticket SLAs: the store holds no open tickets
                for s in cr.slas:
                    s.backlog = None
                cr.backlog_unavailable = BACKLOG_NOT_IN_STORE
        return review
    finally:
        if own:
            store.close()
