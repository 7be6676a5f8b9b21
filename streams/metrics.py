"""Prometheus exposition of the engines, computed at scrape time (nothing is counted per event).

    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(lambda: engines.values(), clock=now_for))
    body = generate_latest(registry)

Ownership: a client's series are exported by the holder of its designated partition (Kafka's default murmur2
partitioner on the client key), so across workers every (client, sla, ...) series has exactly one owner and
`sum()` over workers equals one worker. Pipeline series carry a `partition` label for the same reason: when a
partition moves, its series move with it (a new series on the new owner, never a counter that goes down).

Period figures come from `monitor.report.build_report` (the replay's code), so a scrape equals a replay at
the same instant. SLA labels come from the contracts only (client, sla, priority, queue, service, plus the
contract's stage levels and fixed window names); pipeline labels are closed sets (partition, kind, reason).

Counters (`slamon_sla_{decided,good,bad}_total`) are the all-periods sums of the SLA's ledger. A late event
can withdraw a decision (a reopened ticket's "met", a call whose late `answered` overrides its `abandoned`),
which would lower the sum; the exported counter is the high-water mark of the sum (kept in the snapshot), so
it never decreases and a withdrawn-then-redecided item is not counted twice. The exact, possibly lower,
period figures are the `slamon_sla_period_*` gauges.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor import conventions as names
from monitor.contracts import CallSla, Rolling, TicketSla, UptimeSla
from monitor.engine import Engine
from monitor.events import KINDS, ORPHAN, REJECT_REASONS
from monitor.open_clock_index import index_of
from monitor.queries import (
    OpenClocks,
    all_periods,
    decided_slas,
    decision_counts_between,
    decisions_between,
    event_watermark,
    last_probe,
    open_clocks,
    waiting_calls,
)
from monitor.report import Record, build_report
from streams.partition_engine import PartitionEngine

US = 1_000_000
MINUTE_US = 60 * US
SOON = {"15m": 15 * MINUTE_US, "30m": 30 * MINUTE_US, "60m": 60 * MINUTE_US}
ROLLING = {"5m": 5 * MINUTE_US, "30m": 30 * MINUTE_US, "1h": 60 * MINUTE_US, "24h": 24 * 60 * MINUTE_US}
OTHER_QUEUE = "other"

_SPECS: dict[str, tuple[str, str, tuple[str, ...]]] = {}


def _spec(name: str, kind: str, doc: str, *labels: str) -> str:
    _SPECS[name] = (kind, doc, labels)
    return name


SLA = (names.CLIENT, names.SLA)
# --- SLA figures, current period --------------------------------------------------------------------------
INFO = _spec(names.SLA_INFO, "gauge", "1 per SLA; kind, period and penalty currency from the contract",
             *SLA, names.KIND, names.PERIOD, names.CURRENCY)
P_DECIDED = _spec(names.SLA_PERIOD_DECIDED, "gauge", "Items decided in the current period", *SLA)
P_GOOD = _spec(names.SLA_PERIOD_GOOD, "gauge", "Items decided good in the current period", *SLA)
P_BAD = _spec(names.SLA_PERIOD_BAD, "gauge", "Items decided bad in the current period", *SLA)
COMPLIANCE = _spec(names.SLA_COMPLIANCE_RATIO, "gauge", "good / decided in the current period", *SLA)
TARGET_RATIO = _spec(names.SLA_TARGET_RATIO, "gauge", "Target (ratio kinds; tickets: the objective)", *SLA)
TARGET_SECONDS = _spec(names.SLA_TARGET_SECONDS, "gauge", "Target of asa/aht (a ceiling)", *SLA)
TARGET_SCORE = _spec(names.SLA_TARGET_SCORE, "gauge", "Target of a csat SLA measured as mean score", *SLA)
VALUE_RATIO = _spec(names.SLA_VALUE_RATIO, "gauge", "Measured value of a ratio SLA, current period", *SLA)
VALUE_SECONDS = _spec(names.SLA_VALUE_SECONDS, "gauge", "Measured asa/aht, current period", *SLA)
VALUE_SCORE = _spec(names.SLA_VALUE_SCORE, "gauge", "Mean csat score, current period", *SLA)
MET = _spec(names.SLA_MET, "gauge", "1 if the current period meets the target so far", *SLA)
BUDGET = _spec(names.SLA_ERROR_BUDGET_REMAINING, "gauge",
               "1 - bad / ((1 - target) x decided), current period; negative when overspent", *SLA)
PROJ_RATIO = _spec(names.SLA_PROJECTED_RATIO, "gauge",
                   "Projected end-of-period compliance (ratio kinds)", *SLA)
PROJ_SECONDS = _spec(names.SLA_PROJECTED_SECONDS, "gauge", "Projected end-of-period asa/aht", *SLA)
PROJ_SCORE = _spec(names.SLA_PROJECTED_SCORE, "gauge", "Projected end-of-period csat mean", *SLA)
BURN = _spec(names.SLA_BURN_RATE, "gauge", "(bad / decided in the window) / (1 - target)", *SLA, names.WINDOW)
PERIOD_START = _spec(names.SLA_PERIOD_START, "gauge", "Start of the current period (Unix)", *SLA)
PERIOD_END = _spec(names.SLA_PERIOD_END, "gauge", "End of the current period (Unix)", *SLA)
LATENCY = _spec(names.SLA_LATENCY, "gauge",
                "Quantiles of response/wait/handle time of items decided in the current period",
                *SLA, names.QUANTILE)
# --- SLA counters, all periods ----------------------------------------------------------------------------
DECIDED_T = _spec(names.SLA_DECIDED, "counter", "Items decided, all periods (monotonic high-water)", *SLA)
GOOD_T = _spec(names.SLA_GOOD, "counter", "Items decided good, all periods (monotonic high-water)", *SLA)
BAD_T = _spec(names.SLA_BAD, "counter", "Items decided bad, all periods (monotonic high-water)", *SLA)
# --- tickets ----------------------------------------------------------------------------------------------
OPEN = _spec(names.SLA_OPEN_ITEMS, "gauge", "Open items (running or paused clocks)", *SLA, names.PRIORITY)
AT_RISK = _spec(names.SLA_AT_RISK_ITEMS, "gauge",
                "Open items whose elapsed time reached the stage (highest stage reached)", *SLA, names.STAGE)
SOON_ITEMS = _spec(names.SLA_BREACHING_SOON_ITEMS, "gauge",
                   "Open items whose deadline falls within the window", *SLA, names.PRIORITY, names.WITHIN)
NEXT_DEADLINE = _spec(names.SLA_NEXT_DEADLINE, "gauge", "Time to the nearest open deadline", *SLA)
# --- calls ------------------------------------------------------------------------------------------------
WAITING = _spec(names.CALLS_WAITING, "gauge", "Calls offered and not yet answered or abandoned",
                names.CLIENT, names.QUEUE)
LONGEST = _spec(names.CALLS_LONGEST_WAIT, "gauge", "now - offer time of the oldest waiting call",
                names.CLIENT, names.QUEUE)
SL_WINDOW = _spec(names.SERVICE_LEVEL_WINDOW, "gauge", "Service level over a rolling window", *SLA, names.WINDOW)
ASA_WINDOW = _spec(names.ASA_WINDOW, "gauge", "Mean wait of answered calls over a rolling window",
                   *SLA, names.WINDOW)
# --- uptime -----------------------------------------------------------------------------------------------
UPTIME = (names.CLIENT, names.SLA, names.SERVICE)
AVAILABILITY = _spec(names.UPTIME_AVAILABILITY, "gauge", "up / (up + down), current period", *UPTIME)
UP_S = _spec(names.UPTIME_UP_SECONDS, "gauge", "Time up in the current period", *UPTIME)
DOWN_S = _spec(names.UPTIME_DOWNTIME_SECONDS, "gauge", "Time down in the current period", *UPTIME)
UNKNOWN_S = _spec(names.UPTIME_UNKNOWN_SECONDS, "gauge",
                  "Time without probes (gaps > 3 probe intervals), current period", *UPTIME)
SERVICE_UP = _spec(names.UPTIME_SERVICE_UP, "gauge", "State of the newest probe (1 up, 0 down)",
                   names.CLIENT, names.SERVICE)
PROBE_AGE = _spec(names.UPTIME_LAST_PROBE_AGE, "gauge", "now - newest probe time",
                  names.CLIENT, names.SERVICE)
# --- penalties --------------------------------------------------------------------------------------------
CREDIT = _spec(names.PENALTY_CREDIT, "gauge",
               "Service credit the period-to-date value earns (contract currency, see slamon_sla_info)", *SLA)
CREDIT_PROJ = _spec(names.PENALTY_PROJECTED_CREDIT, "gauge",
                    "Service credit the projected end-of-period value earns (contract currency)", *SLA)
CREDIT_RATIO = _spec(names.PENALTY_CREDIT_RATIO, "gauge", "Period-to-date credit / monthly fee", *SLA)
CREDIT_PROJ_RATIO = _spec(names.PENALTY_PROJECTED_CREDIT_RATIO, "gauge", "Projected credit / monthly fee",
                          *SLA)
# --- pipeline health --------------------------------------------------------------------------------------
LAG_EVENT = _spec(names.EVENT_TIME_LAG, "gauge", "now - newest event time of the client", names.CLIENT)
RECEIVED = _spec(names.EVENTS_RECEIVED, "counter", "Input messages applied", names.PARTITION)
ACCEPTED = _spec(names.EVENTS, "counter", "Events accepted by the engine", names.PARTITION, names.KIND)
REJECTED = _spec(names.EVENTS_REJECTED, "counter", "Events dead-lettered", names.PARTITION, names.REASON)
DUPLICATES = _spec(names.EVENTS_DUPLICATE, "counter", "Events ignored as repeated event_id", names.PARTITION)
MISROUTED = _spec(names.EVENTS_MISROUTED, "counter",
                  "Events on a partition other than their client's (producer not keying by client with the "
                  "default partitioner)", names.PARTITION)
ORPHANED = _spec(names.EVENTS_ORPHANED, "gauge",
                 "Ticket/call events held for an item whose creating event has not arrived", names.PARTITION)
SKIPPED = _spec(names.EVENTS_SKIPPED, "counter",
                "Messages skipped because the restored snapshot already reflected them (this process)",
                names.PARTITION)
GAPS = _spec(names.INPUT_GAPS, "counter",
             "Input offsets skipped over by the consumer (this process): lost deliveries, or compacted or "
             "transaction-marker offsets", names.PARTITION)
REWINDS = _spec(names.INPUT_REWINDS, "counter",
                "Seeks back for offsets the consumer skipped (this process)", names.PARTITION)
SLA_EVENTS_T = _spec(names.SLA_EVENTS, "counter", "SLA events emitted (decided / withdrawn)", names.PARTITION)
OUTBOX = _spec(names.OUTBOX_UNCONFIRMED, "gauge", "Outputs not yet confirmed by the broker", names.PARTITION)
OFFSET = _spec(names.INPUT_OFFSET, "gauge", "Last input offset reflected in the state", names.PARTITION)
CONSUMER_LAG = _spec(names.CONSUMER_LAG, "gauge", "Input messages not yet applied", names.PARTITION)
CKPT_AGE = _spec(names.CHECKPOINT_AGE, "gauge", "Wall time since the newest snapshot", names.PARTITION)
CKPT_BYTES = _spec(names.CHECKPOINT_SIZE, "gauge", "Size of the newest snapshot", names.PARTITION)
CKPT_OFFSET = _spec(names.CHECKPOINT_OFFSET, "gauge", "Input offset the newest snapshot reflects",
                    names.PARTITION)
ENGINE_NOW = _spec(names.ENGINE_NOW, "gauge", "The engine clock the figures reflect (Unix)",
                   names.PARTITION)
SCRAPE = _spec(names.SCRAPE_DURATION, "gauge", "Time to compute this scrape")


class _Families:
    """A scrape's samples, by family: (label values, value) rows in the order added. Iterating gives
    prometheus_client's families (what /metrics renders); the backtest writes the rows themselves."""

    def __init__(self, wanted: Collection[str] | None = None) -> None:
        self.rows: dict[str, list[tuple[tuple[str, ...], float]]] = {}
        self.wanted = wanted  # None: every family

    def add(self, name: str, labels: tuple[str, ...], value: float | None) -> None:
        """labels: the label values as strings, in the family's label order."""
        if value is None or (self.wanted is not None and name not in self.wanted):
            return
        rows = self.rows.get(name)
        if rows is None:
            rows = self.rows[name] = []
        rows.append((labels, float(value)))

    def __iter__(self):
        for name, rows in self.rows.items():
            kind, doc, labelnames = _SPECS[name]
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            fam = cls(name, doc, labels=list(labelnames))
            for labels, value in rows:
                fam.add_metric(list(labels), value)
            yield fam


def family_spec(name: str) -> tuple[str, str, tuple[str, ...]]:
    """(kind, help text, label names) of an exported family."""
    return _SPECS[name]


def exported_families() -> list[str]:
    """Every family the collector can export."""
    return list(_SPECS)


def _to_s(us: int) -> float:
    return us / US


class EngineCollector(Collector):
    """Computes every series from the partition engines at each scrape.

    engines: the holders this worker owns (called at each scrape).
    clock: the instant to report each holder at (default: its engine's newest event time, the `event` clock).
    consumer_lag: partition -> messages behind (or None when unknown).
    families: only these families (default: all); what feeds only the others is not computed (the backtest
    asks for the families its alert rules read).
    """

    def __init__(self, engines: Callable[[], Iterable[PartitionEngine]], *,
                 clock: Callable[[PartitionEngine], int] | None = None,
                 consumer_lag: Callable[[int], int | None] | None = None,
                 wall: Callable[[], float] = time.time,
                 families: Collection[str] | None = None) -> None:
        unknown = set(families or ()) - set(_SPECS)
        if unknown:
            raise ValueError(f"not exported families: {sorted(unknown)}")
        self._families = None if families is None else frozenset(families)
        # a record's `open` is not exported (open items come from the open clocks, waiting calls per queue)
        self._skip = frozenset({"open"}) | frozenset(
            figure for figure, family in (("burn_rate", BURN), ("latency_seconds", LATENCY))
            if self._families is not None and family not in self._families)
        self._engines = engines
        self._clock = clock
        self._consumer_lag = consumer_lag
        self._wall = wall
        self._cache: dict[int, tuple[tuple[int, int], list]] = {}

    def describe(self):
        return []

    def collect(self):
        yield from self.samples()

    def samples(self) -> _Families:
        """Every series of this scrape, as rows by family (`collect` turns them into prometheus_client's)."""
        started = time.perf_counter()
        fams = _Families(self._families)
        exported: set[str] = set()
        holders = sorted(self._engines(), key=lambda pe: pe.partition)
        for pe in holders:
            at = self._clock(pe) if self._clock is not None else max(pe.now_us, pe.clock_us, 0)
            pe.advance(at)
            engine = pe.view()  # the Python engine, or a compiled partition's state as one
            self._pipeline(fams, pe, engine, at)
            clients = [c for c in pe.contracts.clients if c in pe.owned and c not in exported]
            exported.update(clients)
            if clients:
                self._slas(fams, pe, engine, clients, at)
        live_partitions = {h.partition for h in holders}
        for partition in [p for p in self._cache if p not in live_partitions]:
            del self._cache[partition]
        fams.add(SCRAPE, (), time.perf_counter() - started)
        return fams

    # --- pipeline ---------------------------------------------------------------------------------------

    def _pipeline(self, fams: _Families, pe: PartitionEngine, engine: Engine, at: int) -> None:
        p = (str(pe.partition),)
        fams.add(RECEIVED, p, pe.received)
        for kind in KINDS:
            fams.add(ACCEPTED, (*p, kind), engine.stats.events.get(kind, 0))
        for reason in REJECT_REASONS:
            if reason != ORPHAN:
                fams.add(REJECTED, (*p, reason), pe.rejected.get(reason, 0))
        fams.add(DUPLICATES, p, engine.stats.duplicates)
        fams.add(MISROUTED, p, pe.misrouted)
        if self._wants(ORPHANED):  # walks every call held
            fams.add(ORPHANED, p, engine.orphan_events())
        fams.add(SKIPPED, p, pe.skipped)
        fams.add(GAPS, p, pe.gaps)
        fams.add(REWINDS, p, pe.rewinds)
        fams.add(SLA_EVENTS_T, p, pe.sla_events)
        fams.add(OUTBOX, p, len(pe.outbox))
        fams.add(OFFSET, p, pe.offset)
        if self._consumer_lag is not None:
            fams.add(CONSUMER_LAG, p, self._consumer_lag(pe.partition))
        if pe.checkpoint_wall is not None:
            fams.add(CKPT_AGE, p, max(0.0, self._wall() - pe.checkpoint_wall))
            fams.add(CKPT_BYTES, p, pe.checkpoint_bytes)
        fams.add(CKPT_OFFSET, p, pe.snapshot_offset)
        if at > 0:
            fams.add(ENGINE_NOW, p, _to_s(at))

    # --- SLAs -------------------------------------------------------------------------------------------

    def _slas(self, fams: _Families, pe: PartitionEngine, engine: Engine, clients: list[str], at: int) -> None:
        key = (pe.version, at)
        cached = self._cache.get(pe.partition)
        if cached is not None and cached[0] == key:
            records, live = cached[1]
        else:
            live = open_clocks(engine, at, SOON.values())  # one pass over open clocks for both
            records = build_report(engine, at, current_only=True, live=live, skip=self._skip)  # what is live
            self._cache[pe.partition] = (key, (records, live))
        current: dict[tuple[str, str], Record] = {}
        for rec in records:  # sorted by period start within each SLA: the last one is the current period
            current[(rec.client, rec.sla)] = rec
        for client in clients:
            contract = pe.contracts.clients[client]
            lag_from = event_watermark(engine, client)
            if lag_from is not None:
                fams.add(LAG_EVENT, (client,), max(0, at - lag_from) / US)
            for sla in contract.slas:
                rec = current.get((client, sla.name))
                if rec is None:
                    continue
                labels = (client, sla.name)
                self._sla_figures(fams, labels, sla, rec)
                if isinstance(sla, UptimeSla):
                    self._uptime(fams, pe, engine, client, sla, rec, at)
                    continue
                self._counters(fams, pe, engine, labels, sla)
                if isinstance(sla, TicketSla):
                    self._tickets(fams, labels, sla, rec, live.get(labels))
                elif isinstance(sla, CallSla) and self._wants(SL_WINDOW, ASA_WINDOW):
                    self._rolling(fams, engine, labels, sla, at)
            if self._wants(WAITING, LONGEST):
                self._calls(fams, pe, engine, client, at)

    def _wants(self, *families: str) -> bool:
        return self._families is None or not self._families.isdisjoint(families)

    def _sla_figures(self, fams: _Families, labels: tuple, sla, rec: Record) -> None:
        currency = sla.penalty.currency if sla.penalty is not None else ""
        fams.add(INFO, (*labels, rec.kind, period_label(sla.period), currency), 1)
        unit = sla.unit
        if not isinstance(sla, UptimeSla):
            fams.add(P_DECIDED, labels, rec.decided)
            fams.add(P_GOOD, labels, rec.good)
            fams.add(P_BAD, labels, rec.bad)
        fams.add(COMPLIANCE, labels, rec.compliance)
        fams.add({"ratio": TARGET_RATIO, "seconds": TARGET_SECONDS, "score": TARGET_SCORE}[unit], labels,
                 rec.target)
        fams.add({"ratio": VALUE_RATIO, "seconds": VALUE_SECONDS, "score": VALUE_SCORE}[unit], labels,
                 rec.value)
        fams.add(MET, labels, int(rec.met))
        fams.add(BUDGET, labels, rec.error_budget_remaining)
        fams.add({"ratio": PROJ_RATIO, "seconds": PROJ_SECONDS, "score": PROJ_SCORE}[unit], labels,
                 rec.projected)
        for window, rate in rec.burn_rate.items():
            fams.add(BURN, (*labels, window), rate)
        fams.add(PERIOD_START, labels, rec.start_us / US)
        fams.add(PERIOD_END, labels, rec.end_us / US)
        for q, v in (rec.latency_seconds or {}).items():
            fams.add(LATENCY, (*labels, str(int(q[1:]) / 100)), v)
        if rec.penalty is not None:
            fams.add(CREDIT, labels, rec.penalty["credit"])
            fams.add(CREDIT_PROJ, labels, rec.penalty["projected_credit"])
            fams.add(CREDIT_RATIO, labels, rec.penalty["credit_percent"] / 100)
            fams.add(CREDIT_PROJ_RATIO, labels, rec.penalty["projected_credit_percent"] / 100)

    def _counters(self, fams: _Families, pe: PartitionEngine, engine: Engine, labels: tuple, sla) -> None:
        names = {"decided": DECIDED_T, "good": GOOD_T, "bad": BAD_T}
        total = all_periods(engine, *labels)
        for field, value in _raise_high_water(pe, labels, (total.decided, total.good, total.bad)).items():
            if field != "decided" and not sla.judges_items:
                continue
            fams.add(names[field], labels, value)

    def _tickets(self, fams: _Families, labels: tuple, sla: TicketSla, rec: Record,
                 clocks: OpenClocks | None) -> None:
        clocks = clocks or OpenClocks()
        for priority in sla.target:
            fams.add(OPEN, (*labels, priority), clocks.by_priority.get(priority, 0))
        for stage, count in (rec.at_risk or {}).items():
            fams.add(AT_RISK, (*labels, stage), count)
        for priority in sla.target:
            for window, span in SOON.items():
                fams.add(SOON_ITEMS, (*labels, priority, window), clocks.due.get((priority, span), 0))
        fams.add(NEXT_DEADLINE, labels, rec.next_deadline_seconds)

    def _rolling(self, fams: _Families, engine: Engine, labels: tuple, sla: CallSla, at: int) -> None:
        if sla.answered_within_us is None and sla.mean_of != "wait":  # rolling gauges: service level and ASA
            return
        for window, length in ROLLING.items():
            if sla.answered_within_us is not None:  # a service level: counts only
                counts = decision_counts_between(engine, *labels, at + 1 - length, at + 1)
                if counts.decided:
                    fams.add(SL_WINDOW, (*labels, window), counts.good / counts.decided)
                continue
            tally = decisions_between(engine, *labels, at + 1 - length, at + 1)
            if tally.decided:
                fams.add(ASA_WINDOW, (*labels, window), tally.total / tally.decided)

    def _calls(self, fams: _Families, pe: PartitionEngine, engine: Engine, client: str, at: int) -> None:
        contract = pe.contracts.clients[client]
        queues = sorted({q for s in contract.slas if isinstance(s, CallSla) for q in s.queues})
        if not any(isinstance(s, CallSla) for s in contract.slas):
            return
        waiting: dict[str, int] = defaultdict(int)
        oldest: dict[str, int] = {}
        known = set(queues)
        for queue, calls in waiting_calls(engine, client, at).items():
            queue = queue if queue in known else OTHER_QUEUE
            waiting[queue] += calls.count
            if queue not in oldest or calls.oldest_us < oldest[queue]:
                oldest[queue] = calls.oldest_us
        for queue in [*queues, OTHER_QUEUE]:
            fams.add(WAITING, (client, queue), waiting.get(queue, 0))
            fams.add(LONGEST, (client, queue), (at - oldest[queue]) / US if queue in oldest else 0.0)

    def _uptime(self, fams: _Families, pe: PartitionEngine, engine: Engine, client: str, sla: UptimeSla,
                rec: Record, at: int) -> None:
        labels = (client, sla.name, sla.service)
        fams.add(AVAILABILITY, labels, rec.value)
        fams.add(UP_S, labels, rec.good)
        fams.add(DOWN_S, labels, rec.bad)
        fams.add(UNKNOWN_S, labels, rec.unknown_seconds)
        first_of_service = next(s for s in pe.contracts.clients[client].slas
                                if isinstance(s, UptimeSla) and s.service == sla.service)
        last = last_probe(engine, client, sla.service)
        if last is not None and first_of_service is sla:  # once per service
            fams.add(SERVICE_UP, (client, sla.service), int(last[1]))
            fams.add(PROBE_AGE, (client, sla.service), max(0, at - last[0]) / US)


def _raise_high_water(pe: PartitionEngine, labels: tuple[str, str], total: tuple[float, float, float]
                      ) -> dict[str, float]:
    """The SLA's all-periods sums (decided, good, bad), raised to (and recorded as) their high-water marks."""
    sums = dict(zip(("decided", "good", "bad"), total, strict=True))
    for field, net in sums.items():
        key = (*labels, field)
        sums[field] = pe.high_water[key] = max(pe.high_water.get(key, 0.0), net)
    return sums


def settle_counters(pe: PartitionEngine) -> None:
    """Raise every counter's high-water mark in this process, and bring its open-clock index up to date. A
    scrape rendered in a forked child (streams/scrape.py) would do both in the child only: a later scrape's
    counter could go down, and every scrape would rebuild the index from all open clocks."""
    engine = pe.view()  # a compiled partition's copy of its state brought up to date here, not in the child
    for labels in decided_slas(engine):
        total = all_periods(engine, *labels)
        _raise_high_water(pe, labels, (total.decided, total.good, total.bad))
    index_of(engine).refresh()


def period_label(period) -> str:
    """'month' | 'week' | 'day' | 'rolling:<seconds>s' (the contract's period, for slamon_sla_info)."""
    return f"rolling:{period.rolling // US}s" if isinstance(period, Rolling) else str(period)


def exported_sla_names() -> list[str]:
    """Every metric family name this collector can export (for docs and tests)."""
    return sorted(name + ("_total" if kind == "counter" else "") for name, (kind, _, _) in _SPECS.items())

