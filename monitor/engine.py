"""The SLA engine: pure, deterministic, event-time. The worker and the offline replay both drive this.

    engine = Engine(contracts)
    engine.ingest(event)        # a decoded event; returns a Rejection (late) or None
    engine.advance_to(now_us)   # time passes: deadlines <= now are decided as breaches
    engine.report(at_us)        # spec section 4 records (see monitor.report)

Order independence: ticket states are rebuilt from their events when an event arrives older than what
the state reflects; calls, probes, surveys and audits are functions of their event sets. Every outcome
reaches the ledgers as a contribution that is retracted when a late event changes it. Events older than
the client's watermark minus its allowed lateness are rejected as `late`; older state is compacted.
"""

from __future__ import annotations

import heapq
from bisect import insort
from collections import Counter
from dataclasses import dataclass, field

from monitor.calendar import calendar_for
from monitor.calls import CallState
from monitor.contracts import AccuracySla, CallSla, Contracts, CsatSla, TicketSla, UptimeSla
from monitor.events import (
    EXPIRED,
    INVALID,
    LATE,
    AuditEvent,
    CallEvent,
    ProbeEvent,
    Rejection,
    SurveyEvent,
    TicketEvent,
)
from monitor.final_tickets import FinalTickets, ticket_hash
from monitor.ledger import Contribution, SlaLedger
from monitor.tickets import TicketState
from monitor.uptime import UptimeLedger

DAY_US = 86_400 * 1_000_000
COMPACT_EVERY = 50_000  # events between compaction passes
EVICT_CALLS_EVERY = 2_000  # events between evictions of finished calls (few are held: a cheap scan; spreads the
# checkpoint's tombstones instead of one burst per compaction)


@dataclass(slots=True)
class ClientModel:
    """A client's contract, pre-sorted by what each event kind touches."""

    name: str
    tz: str
    lateness_us: int
    reopen_window_us: int
    ticket_slas: list[TicketSla]
    call_slas: list[CallSla]
    csat_slas: list[CsatSla]
    accuracy_slas: list[AccuracySla]
    uptime: dict[str, list[UptimeLedger]]  # service -> ledgers of its uptime SLAs
    calendars: dict[str, object]
    ticket_sla_named: dict[str, TicketSla]  # a restore resolves a clock's SLA by name

    @classmethod
    def build(cls, name: str, contracts: Contracts) -> ClientModel:
        client = contracts.clients[name]
        slas = client.slas
        uptime: dict[str, list[UptimeLedger]] = {}
        for sla in slas:
            if isinstance(sla, UptimeSla):
                windows = sorted(
                    w.span_us for w in client.maintenance if not w.services or sla.service in w.services
                )
                uptime.setdefault(sla.service, []).append(
                    UptimeLedger(name, sla, client.timezone, _merge_spans(windows))
                )
        return cls(
            name=name,
            tz=client.timezone,
            lateness_us=contracts.lateness_us(name),
            reopen_window_us=contracts.reopen_window_us(name),
            ticket_slas=[s for s in slas if isinstance(s, TicketSla)],
            call_slas=[s for s in slas if isinstance(s, CallSla)],
            csat_slas=[s for s in slas if isinstance(s, CsatSla)],
            accuracy_slas=[s for s in slas if isinstance(s, AccuracySla)],
            uptime=uptime,
            calendars={
                s.name: calendar_for(client.timezone, client.calendar, s.time)
                for s in slas
                if isinstance(s, TicketSla)
            },
            ticket_sla_named={s.name: s for s in slas if isinstance(s, TicketSla)},
        )


def _merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@dataclass(slots=True)
class TicketItem:
    # The state before the first event in `events` (compacted history). Once compacted it is `state` itself, one
    # object instead of two per ticket (a million open tickets: a million fewer); `own_base` copies it before the
    # state changes in place.
    base: TicketState
    state: TicketState
    # (ts, arrival, event) since the base; the shared empty tuple once compacted (most tickets: saves a list each)
    events: list[tuple[int, int, TicketEvent]] | tuple[()] = ()
    last_us: int = -1
    contribs: list[Contribution] = field(default_factory=list)
    pushed_deadline: int | None = None

    def own_base(self) -> None:
        """Call before changing `state` in place: a compacted item's base is the state object itself."""
        if self.base is self.state:
            self.base = self.state.copy()


@dataclass(slots=True)
class CallItem:
    state: CallState
    contribs: list[Contribution] = field(default_factory=list)


@dataclass
class PipelineStats:
    events: Counter = field(default_factory=Counter)  # accepted, by kind
    duplicates: int = 0
    rejected: Counter = field(default_factory=Counter)  # by reason (engine-side: late)
    rebuilds: int = 0
    errors: int = 0  # events the engine failed on (a bug): rejected as invalid, see Engine.ingest
    evicted_calls: int = 0  # finished calls dropped by compaction (class default: older snapshots lack it)
    final_tickets: int = 0  # final tickets dropped by compaction (spec "Final items")

    def merge(self, other: PipelineStats) -> None:
        self.events.update(other.events)
        self.rejected.update(other.rejected)
        self.duplicates += other.duplicates
        self.rebuilds += other.rebuilds
        self.errors += other.errors
        self.evicted_calls += other.evicted_calls
        self.final_tickets += other.final_tickets


@dataclass(slots=True)
class Changes:
    """What changed since the checkpoint writer last looked (`streams.state_records`); ledgers and the final-ticket
    set keep their own marks. A key in `tickets`/`calls` that the engine no longer holds was dropped."""

    tickets: set[tuple[str, str]] = field(default_factory=set)
    calls: set[tuple[str, str]] = field(default_factory=set)
    seen: list[tuple[str, int]] = field(default_factory=list)  # dedupe ids added: (event_id, ts)


class Engine:
    def __init__(self, contracts: Contracts, *, keep_decisions: bool = False, track_changes: bool = False,
                 keep_breach_history: bool = True) -> None:
        self.contracts = contracts
        self.clients = {name: ClientModel.build(name, contracts) for name in contracts.clients}
        self.ledgers: dict[tuple[str, str], SlaLedger] = {}
        for name, client in contracts.clients.items():
            for sla in client.slas:
                if not isinstance(sla, UptimeSla):
                    self.ledgers[(name, sla.name)] = SlaLedger(
                        name, sla.name, client.timezone, sla.period,
                        list_breaches=isinstance(sla, TicketSla),
                    )
        self.tickets: dict[tuple[str, str], TicketItem] = {}
        # Tickets with an open clock, and tickets holding orphan events: what the live figures and the scrape
        # walk (all tickets are kept for ever, see `compact`). Kept by `_settle_ticket`, rebuilt on restore.
        self.open_tickets: set[tuple[str, str]] = set()
        self.orphan_tickets: set[tuple[str, str]] = set()
        # The open clocks summed per SLA for scrapes (monitor.open_clock_index), made at the first question; it
        # is told of every ticket about to change (`before_change`: `_on_ticket`, `_fire`, `merge`).
        self.open_index = None
        self.calls: dict[tuple[str, str], CallItem] = {}
        self.seen: dict[str, int] = {}  # event_id -> ts, for dedupe within the lateness horizon
        self.watermarks: dict[str, int] = {}
        self.now_us = -1
        self.horizon_us = -1  # every deadline <= horizon has been decided
        self.stats = PipelineStats()
        self.keep_decisions = keep_decisions
        # SLA events for downstream consumers (when keep_decisions): (client, contribution, +1 decided or -1
        # withdrawn); the adapter formats them (streams.partition_engine.sla_event)
        self.decisions: list[tuple[str, Contribution, int]] = []
        self._heap: list[tuple[int, tuple[str, str]]] = []
        self._seq = 0
        self._since_compaction = 0
        self.final_tickets = FinalTickets()
        self.changes: Changes | None = Changes() if track_changes else None
        # The worker keeps breached-ticket lists and 15-minute buckets for the current period (and an ended one
        # for 2 days; a review reads them from the SLA record, not from the worker); a replay keeps them all.
        self.keep_breach_history = keep_breach_history

    # --- ingest -----------------------------------------------------------------------------------------

    def ingest(self, ev) -> Rejection | None:
        """Apply a decoded event; a Rejection when it is refused (late, ...).

        An exception inside the engine is a bug, but one event must not stop a stream (the worker would crash
        on it at every restart): the event is rejected as invalid with the error in the detail and counted in
        `stats.errors`. The item it touched may be left part-applied; replay behaves the same, so the worker
        and a replay still agree."""
        try:
            return self._ingest(ev)
        except Exception as exc:
            self.stats.errors += 1
            self.stats.rejected[INVALID] += 1
            return engine_error(exc, ev.event_id, ev.client)

    def _ingest(self, ev) -> Rejection | None:
        model = self.clients[ev.client]
        ts = ev.ts_us
        if ev.event_id in self.seen:
            self.stats.duplicates += 1
            return None
        watermark = self.watermarks.get(ev.client, ts)
        if ts < watermark - model.lateness_us:
            self.stats.rejected[LATE] += 1
            return late(watermark - ts, model.lateness_us, ev.event_id, ev.client)
        if isinstance(ev, TicketEvent):
            expired = self._expired(model, ev, ts)
            if expired is not None:
                self.stats.rejected[EXPIRED] += 1
                return expired
        self.seen[ev.event_id] = ts
        if self.changes is not None:
            self.changes.seen.append((ev.event_id, ts))
        if ts > watermark or ev.client not in self.watermarks:
            self.watermarks[ev.client] = ts
        self.stats.events[ev.kind] += 1
        if ts > self.now_us:
            self.now_us = ts
            self._fire(ts - 1)
        if isinstance(ev, TicketEvent):
            self._on_ticket(model, ev, ts)
        elif isinstance(ev, CallEvent):
            self._on_call(model, ev, ts)
        elif isinstance(ev, ProbeEvent):
            for ledger in model.uptime.get(ev.service, ()):
                ledger.add_probe(ts, ev.status == "up")
        elif isinstance(ev, SurveyEvent):
            for sla in model.csat_slas:
                good = ev.score >= sla.good_score
                self._contribute(ev.client, Contribution(sla.name, ts, 1, int(good), int(not good),
                                                         float(ev.score)), +1)
        elif isinstance(ev, AuditEvent):
            for sla in model.accuracy_slas:
                self._contribute(ev.client, Contribution(sla.name, ts, ev.items, ev.items - ev.errors,
                                                         ev.errors), +1)
        self._since_compaction += 1
        if self._since_compaction >= COMPACT_EVERY:
            self.compact()
        elif self._since_compaction % EVICT_CALLS_EVERY == 0:
            self._evict_calls(self._horizons())
        return None

    def _expired(self, model: ClientModel, ev: TicketEvent, ts: int) -> Rejection | None:
        """A ticket event after the ticket became final (spec "Final items"): held or already dropped."""
        item = self.tickets.get((model.name, ev.ticket_id))
        if item is None:
            if not self.final_tickets.empty and ticket_hash(model.name, ev.ticket_id) in self.final_tickets:
                return expired_dropped(ev.ticket_id, ev.event_id, ev.client)
            return None
        final = item.state.final_after(model.reopen_window_us)
        if final is None or ts <= final:
            return None
        return expired_final(ev.ticket_id, model.reopen_window_us, ev.event_id, ev.client)

    def _on_ticket(self, model: ClientModel, ev: TicketEvent, ts: int) -> None:
        key = (model.name, ev.ticket_id)
        if self.open_index is not None:
            self.open_index.before_change(key)
        item = self.tickets.get(key)
        if item is None:
            item = self.tickets[key] = TicketItem(TicketState(ev.ticket_id), TicketState(ev.ticket_id))
        self._seq += 1
        entry = (ts, self._seq, ev)
        state = item.state
        if ts >= item.last_us and ts > _last_breach(state):
            item.own_base()
            if item.events:
                item.events.append(entry)
            else:
                item.events = [entry]
            item.last_us = ts
            state.fire(ts - 1)
            state.apply(ev, ts, model.ticket_slas, model.calendars)
            state.fire(self.horizon_us)
        else:
            if not item.events:
                item.events = []
            insort(item.events, entry)
            item.last_us = max(item.last_us, ts)
            item.state = self._rebuild(model, item)
            self.stats.rebuilds += 1
        self._settle_ticket(model.name, key, item)

    def _rebuild(self, model: ClientModel, item: TicketItem) -> TicketState:
        state = item.base.copy()
        for ts, _, ev in item.events:
            state.fire(ts - 1)
            state.apply(ev, ts, model.ticket_slas, model.calendars)
        state.fire(self.horizon_us)
        return state

    def _settle_ticket(self, client: str, key: tuple[str, str], item: TicketItem) -> None:
        """Push the item's outcome changes into the ledgers, schedule its next deadline, index it."""
        if self.changes is not None:
            self.changes.tickets.add(key)
        self._index_ticket(key, item)
        new = item.state.contributions()
        if new != item.contribs:
            self._diff(client, item.contribs, new)
            item.contribs = new
        deadline = item.state.next_deadline()
        if deadline is not None and deadline != item.pushed_deadline:
            heapq.heappush(self._heap, (deadline, key))
            item.pushed_deadline = deadline

    def _index_ticket(self, key: tuple[str, str], item: TicketItem) -> None:
        state = item.state
        if any(clock.good is None for clock in state.clocks):
            self.open_tickets.add(key)
        else:
            self.open_tickets.discard(key)
        if state.created_us is None or state.orphans:
            self.orphan_tickets.add(key)
        else:
            self.orphan_tickets.discard(key)

    def _on_call(self, model: ClientModel, ev: CallEvent, ts: int) -> None:
        key = (model.name, ev.call_id)
        item = self.calls.get(key)
        if item is None:
            item = self.calls[key] = CallItem(CallState(ev.call_id))
        if self.changes is not None:
            self.changes.calls.add(key)
        if not item.state.apply(ev, ts):
            return
        new = item.state.contributions(model.call_slas)
        if new != item.contribs:
            self._diff(model.name, item.contribs, new)
            item.contribs = new

    def _diff(self, client: str, old: list[Contribution], new: list[Contribution]) -> None:
        if not old:  # the common case: a first decision
            for c in new:
                self._contribute(client, c, +1)
            return
        for c in old:
            if c not in new:
                self._contribute(client, c, -1)
        for c in new:
            if c not in old:
                self._contribute(client, c, +1)

    def _contribute(self, client: str, c: Contribution, sign: int) -> None:
        self.ledgers[(client, c.sla)].apply(c, sign)
        if self.keep_decisions:
            self.decisions.append((client, c, sign))

    # --- time -------------------------------------------------------------------------------------------

    def advance_to(self, now_us: int) -> None:
        """Time has reached now_us (a report instant or the worker's clock): decide deadlines <= now."""
        if now_us > self.now_us:
            self.now_us = now_us
        self._fire(now_us)

    def _fire(self, through_us: int) -> None:
        if through_us <= self.horizon_us:
            return
        self.horizon_us = through_us
        heap = self._heap
        while heap and heap[0][0] <= through_us:
            deadline, key = heapq.heappop(heap)
            item = self.tickets.get(key)
            if item is None or deadline != item.pushed_deadline:
                continue  # superseded by a later schedule of the same ticket
            item.pushed_deadline = None
            if self.open_index is not None:
                self.open_index.before_change(key)
            item.own_base()
            item.state.fire(through_us)
            self._settle_ticket(key[0], key, item)

    # --- memory -----------------------------------------------------------------------------------------

    def compact(self) -> None:
        """Fold events older than each client's lateness horizon into the items' base states, drop calls
        that finished before it (they can no longer change: see `_call_finished_before`) and the ledgers' exact
        instants older than any window asks for (`SlaLedger.prune`)."""
        self._since_compaction = 0
        horizons = self._horizons()
        self._evict_calls(horizons)
        for ledger in self.ledgers.values():
            ledger.prune(self.now_us)
            if not self.keep_breach_history:
                ledger.forget_old_periods(self.now_us)
        self._compact_tickets(horizons)
        self._fold_probes(horizons)
        self.final_tickets.forget_before(self.now_us)
        oldest = min(horizons.values(), default=0)
        for event_id in [e for e, ts in self.seen.items() if ts < oldest]:
            del self.seen[event_id]

    def _horizons(self) -> dict[str, int]:
        return {c: wm - self.clients[c].lateness_us for c, wm in self.watermarks.items()}

    def _evict_calls(self, horizons: dict[str, int]) -> None:
        finished = [key for key, item in self.calls.items() if _call_finished_before(item.state, horizons.get(key[0]))]
        for key in finished:
            del self.calls[key]
        if self.changes is not None:
            self.changes.calls.update(finished)
        self.stats.evicted_calls += len(finished)

    def _fold_probes(self, horizons: dict[str, int]) -> None:
        """Probe instants older than the lateness horizon and the longest now-window fold into bucket tallies."""
        for client, model in self.clients.items():
            limit = horizons.get(client)
            if limit is None:
                continue
            for ledgers in model.uptime.values():
                for ledger in ledgers:
                    keep = ledger.detail_keep_us
                    if keep is not None:
                        ledger.fold(min(limit, self.now_us - keep))

    def _compact_tickets(self, horizons: dict[str, int]) -> None:
        """Fold events older than the horizon into the base state; drop final tickets (spec "Final items":
        final before the horizon, so every event the engine still accepts for them is `expired`)."""
        final: list[tuple[tuple[str, str], int]] = []
        changed = self.changes.tickets if self.changes is not None else None
        for key, item in self.tickets.items():
            limit = horizons.get(key[0])
            if limit is None or item.last_us >= limit:
                continue
            final_us = item.state.final_after(self.clients[key[0]].reopen_window_us)
            if final_us is not None and final_us < limit:
                final.append((key, final_us))
                continue
            if not item.events or _last_breach(item.state) >= limit:
                continue
            # Not marked changed: the stored record (base + events) still rebuilds this very state, and
            # rewriting every folded ticket would make each compaction a multi-megabyte checkpoint.
            item.base = item.state  # copied by `own_base` when the state next changes
            item.events = ()
        for key, final_us in final:
            del self.tickets[key]
            self.open_tickets.discard(key)
            self.orphan_tickets.discard(key)
            self.final_tickets.add(ticket_hash(*key), final_us)
        if changed is not None:
            changed.update(key for key, _ in final)
        self.stats.final_tickets += len(final)

    # --- merge ------------------------------------------------------------------------------------------

    def merge(self, other: Engine) -> None:
        """Absorb another engine's state built from a key-disjoint part of the same stream."""
        if self.open_index is not None:
            for key in other.tickets:
                self.open_index.before_change(key)
        self.tickets.update(other.tickets)
        self.final_tickets.merge(other.final_tickets)
        self.calls.update(other.calls)
        self.seen.update(other.seen)
        for client, wm in other.watermarks.items():
            self.watermarks[client] = max(wm, self.watermarks.get(client, wm))
        for key, ledger in other.ledgers.items():
            self.ledgers[key].merge(ledger)
        for client, model in other.clients.items():
            for service, ledgers in model.uptime.items():
                for mine, theirs in zip(self.clients[client].uptime[service], ledgers, strict=True):
                    mine.merge(theirs)
        self.stats.merge(other.stats)
        for item in other.tickets.values():
            item.pushed_deadline = None
        for key, item in other.tickets.items():
            self._settle_ticket(key[0], key, item)
        self.decisions.extend(other.decisions)
        self.now_us = max(self.now_us, other.now_us)
        self._fire(max(self.horizon_us, other.horizon_us))

    # --- queries ----------------------------------------------------------------------------------------

    def orphan_events(self) -> int:
        """Ticket events that arrived for a ticket never created, plus calls never offered."""
        tickets = sum(len(i.events) if i.state.created_us is None else i.state.orphans
                      for i in map(self.tickets.__getitem__, self.orphan_tickets))
        calls = sum(1 for i in self.calls.values() if i.state.orphan)
        return tickets + calls


# Refusals worded once, for this engine and the compiled one (monitor/compiled_replay.py)

def late(behind_us: int, lateness_us: int, event_id: str, client: str) -> Rejection:
    return Rejection(LATE, f"{behind_us / 1e6:.0f}s behind the client's newest event, "
                           f"allowed lateness is {lateness_us / 1e6:.0f}s", event_id, client)


def expired_dropped(ticket_id: str, event_id: str, client: str) -> Rejection:
    return Rejection(EXPIRED, f"ticket {ticket_id} is final (resolved or closed for longer than the reopen window) "
                              "and no longer held", event_id, client)


def expired_final(ticket_id: str, reopen_window_us: int, event_id: str, client: str) -> Rejection:
    return Rejection(EXPIRED, f"ticket {ticket_id} is final: resolved or closed for longer than the reopen "
                              f"window ({reopen_window_us / 3.6e9:g}h) at this event's time", event_id, client)


def engine_error(exc: BaseException, event_id: str, client: str) -> Rejection:
    return Rejection(INVALID, f"engine error: {type(exc).__name__}: {exc}"[:500], event_id, client)


def _call_finished_before(state: CallState, limit: int | None) -> bool:
    """A call offered and ended (or abandoned) before `limit`, the client's lateness horizon: every event the
    engine still accepts is at or after the horizon, and `CallState.apply` keeps the first offer/answer/abandon
    and the earliest end, so none of them can change what the call contributed (already in the ledgers). The
    call is dropped; only an event after its end (a producer error) would then be held as an orphan.
    Tickets are kept: a resolved or closed ticket can be reopened at any time (spec, Reopen)."""
    if limit is None or state.offered_us is None:
        return False
    end = state.ended_us if state.ended_us is not None else state.abandoned_us
    return end is not None and end < limit


def _last_breach(state: TicketState) -> int:
    last = -1
    for clock in state.clocks:
        if clock.good is False and clock.decided_us > last:
            last = clock.decided_us
    return last
